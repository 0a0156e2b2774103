//! The requests in the managers' queues as a run's Pending sheet shows them,
//! held compactly: one text for all their strings, a fixed-size entry each.
//!
//! After a first adoption (a request per person) the queues hold a million
//! requests, and a plan or run shows them all. As owned rows (a dozen
//! strings each) they took the peak of that plan to 1.21 GB and of the run
//! to 1.09 GB; here each takes its text and 64 bytes, and the peaks are
//! 0.99 and 0.87 GB (BENCHMARKS.md, session 14).

use chrono::{DateTime, Utc};

use super::{
    approval::{QueuedRequest, RequestId, RequestState},
    change::ChangeKind,
    compact::{Table, TextAt, field, length, present, push_strings},
};
use crate::domain::StructureId;

/// Requests in the order they were pushed until [`Queue::sort_by_id`].
#[derive(Debug, Clone, Default)]
pub struct Queue {
    text: String,
    entries: Vec<Entry>,
    structures: Table<StructureId>,
    /// Structure names and managers: a few distinct ones each.
    names: Table<String>,
    managers: Table<String>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: RequestId,
    created_at: DateTime<Utc>,
    /// The strings, one after the other: service, e-mail, last name, first
    /// name, description, reason.
    text: TextAt,
    /// Their lengths in that order; `NONE` for an absent one.
    lengths: [u32; 6],
    structure: u32,
    structure_name: u32,
    manager: u32,
    state: RequestState,
    kind: ChangeKind,
}

const _: () = assert!(size_of::<Entry>() == 64);

impl Queue {
    pub fn push(&mut self, r: &QueuedRequest<'_>) {
        let strings = [r.service, Some(r.email), r.last_name, r.first_name, Some(r.description), Some(r.reason)];
        self.entries.push(Entry {
            id: r.id,
            created_at: r.created_at,
            text: push_strings(&mut self.text, strings),
            lengths: strings.map(length),
            structure: self.structures.intern_ref(r.structure),
            structure_name: self.names.intern_borrowed(r.structure_name),
            manager: self.managers.intern_borrowed(r.manager),
            state: r.state,
            kind: r.kind,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = QueuedRequest<'_>> + '_ {
        self.entries.iter().map(|e| self.request(e))
    }

    /// Keeps the requests whose id `keep` accepts (their text stays: a
    /// queue only shrinks by the few a run expires or supersedes).
    pub fn retain(&mut self, mut keep: impl FnMut(RequestId) -> bool) {
        self.entries.retain(|e| keep(e.id));
    }

    /// Sorts by id; a read by id, then requests raised after it, are most
    /// often in order already.
    pub fn sort_by_id(&mut self) {
        if !self.entries.is_sorted_by_key(|e| e.id) {
            self.entries.sort_unstable_by_key(|e| e.id);
        }
    }

    fn request<'q>(&'q self, e: &Entry) -> QueuedRequest<'q> {
        let mut at = e.text.get();
        let [service, email, last_name, first_name, description, reason] = e.lengths.map(|len| {
            let s = field(&self.text, at, len);
            at += present(len);
            s
        });
        QueuedRequest {
            id: e.id,
            state: e.state,
            kind: e.kind,
            structure: &self.structures.values[e.structure as usize],
            structure_name: &self.names.values[e.structure_name as usize],
            service,
            email: email.unwrap_or_default(),
            last_name,
            first_name,
            description: description.unwrap_or_default(),
            reason: reason.unwrap_or_default(),
            created_at: e.created_at,
            manager: &self.managers.values[e.manager as usize],
        }
    }
}

impl<'a> FromIterator<QueuedRequest<'a>> for Queue {
    fn from_iter<I: IntoIterator<Item = QueuedRequest<'a>>>(requests: I) -> Queue {
        let mut q = Queue::default();
        for r in requests {
            q.push(&r);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdentifierType;

    fn sid(s: &str) -> StructureId {
        StructureId::parse(IdentifierType::Siret, s).unwrap()
    }

    fn request<'a>(
        id: RequestId,
        structure: &'a StructureId,
        email: &'a str,
        service: Option<&'a str>,
    ) -> QueuedRequest<'a> {
        QueuedRequest {
            id,
            state: if id % 2 == 0 { RequestState::Approved } else { RequestState::Pending },
            kind: ChangeKind::Attach,
            structure,
            structure_name: if id % 3 == 0 { "" } else { "ACME" },
            service,
            email,
            last_name: (id % 2 == 0).then_some("Noël"),
            first_name: None,
            description: "Rattacher à ACME",
            reason: "new in source",
            created_at: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            manager: "gp@acme.fr",
        }
    }

    #[test]
    fn requests_read_back_as_pushed_then_filtered_added_to_and_sorted_by_id() {
        let (a, b) = (sid("12345678200010"), sid("98765432100015"));
        let emails: Vec<String> = (0..8).map(|i| format!("p{i}@acme.fr")).collect();
        let all: Vec<QueuedRequest> = [7, 3, 5, 4, 8, 1, 6, 2]
            .into_iter()
            .zip(&emails)
            .map(|(id, e)| request(id, if id < 5 { &a } else { &b }, e, (id % 4 == 0).then_some("COMPTA")))
            .collect();
        let mut q: Queue = all[..5].iter().copied().collect();
        assert_eq!(q.iter().collect::<Vec<_>>(), all[..5]);
        q.retain(|id| id != 5);
        for r in &all[5..] {
            q.push(r);
        }
        q.sort_by_id();
        let mut want: Vec<QueuedRequest> = all.iter().copied().filter(|r| r.id != 5).collect();
        want.sort_by_key(|r| r.id);
        assert_eq!(q.iter().collect::<Vec<_>>(), want);
        assert_eq!((q.len(), Queue::default().is_empty()), (7, true));
    }
}
