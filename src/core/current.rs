//! The current state: the attachments the portal holds today, as the store
//! last imported them. Compact like the desired state (see `compact`): a
//! million attachments are a million 32-byte records and their text, and a
//! person's placements are made only when the diff reaches them.

use litemap::LiteMap;

use super::{
    compact::{Table, TextAt, email_length, field, length, permute, present, push_strings, ranks},
    sort::{self, Pair},
};
use crate::domain::{Attachment, Email, PersonName, Placement, Rights, ServiceCode, StructureId};

/// One attachment in the portal today, with the name the export gave.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CurrentAttachment {
    pub attachment: Attachment,
    pub name: PersonName,
}

/// One attachment. Its strings are `text[text..]`: e-mail, last name, first name.
#[derive(Debug, Clone, Copy)]
struct Row {
    text: TextAt,
    email: u16,
    /// Lengths, or [`NONE`](super::compact::NONE).
    last_name: u32,
    first_name: u32,
    structure: u32,
    service: u32,
    rights: u32,
}

// A million of them at a plan's peak of memory (compact::TextAt).
const _: () = assert!(size_of::<Row>() == 28);

/// The attachments of the structures a run reads, in (structure, e-mail,
/// service) order once [`CurrentState::finish`] has run.
#[derive(Debug, Clone, Default)]
pub struct CurrentState {
    text: String,
    rows: Vec<Row>,
    structures: Table<StructureId>,
    services: Table<Option<ServiceCode>>,
    rights: Table<Rights>,
}

/// One person's attachments in one structure.
#[derive(Clone, Copy)]
pub struct CurrentPerson<'a> {
    state: &'a CurrentState,
    rows: &'a [Row],
}

impl<'a> CurrentPerson<'a> {
    pub fn structure(&self) -> &'a StructureId {
        self.state.structure(&self.rows[0])
    }

    pub fn email(&self) -> &'a str {
        self.state.email(&self.rows[0])
    }

    /// The name on the person's first attachment.
    pub fn name(&self) -> PersonName {
        self.state.name(&self.rows[0])
    }

    /// Service (or structure level) → rights.
    pub fn placements(&self) -> LiteMap<Option<ServiceCode>, Rights> {
        let mut placements = LiteMap::with_capacity(self.rows.len());
        for r in self.rows {
            placements.insert(self.state.service(r).clone(), self.state.rights(r).clone());
        }
        placements
    }
}

impl CurrentState {
    /// Adds one attachment: its structure, address, (service, rights) and
    /// (last name, first name).
    pub fn push(
        &mut self,
        structure: &StructureId,
        email: &Email,
        (service, rights): (&Option<ServiceCode>, &Rights),
        (last_name, first_name): (Option<&str>, Option<&str>),
    ) {
        self.push_address(structure, email.as_str(), (service, rights), (last_name, first_name));
    }

    /// [`CurrentState::push`] of an address's text, which must be an
    /// [`Email`]'s (`Email::is_normalized`): the store's reader checks it so
    /// instead of making an `Email` per row.
    pub(crate) fn push_address(
        &mut self,
        structure: &StructureId,
        email: &str,
        (service, rights): (&Option<ServiceCode>, &Rights),
        (last_name, first_name): (Option<&str>, Option<&str>),
    ) {
        debug_assert!(Email::is_normalized(email), "not a parsed address: {email:?}");
        self.rows.push(Row {
            text: push_strings(&mut self.text, [Some(email), last_name, first_name]),
            email: email_length(email),
            last_name: length(last_name),
            first_name: length(first_name),
            structure: self.structures.intern_ref(structure),
            service: self.services.intern_ref(service),
            rights: self.rights.intern_ref(rights),
        });
    }

    /// Sorts the attachments by (structure, e-mail, service), unless they
    /// came in that order (the store reads them so on SQLite; a PostgreSQL
    /// collation may differ from byte order).
    pub fn finish(mut self) -> CurrentState {
        let rank = ranks(&self.structures.values);
        let services = ranks(&self.services.values);
        let order = |a: &Row, b: &Row| {
            rank[a.structure as usize]
                .cmp(&rank[b.structure as usize])
                .then_with(|| self.email(a).cmp(self.email(b)))
                .then(services[a.service as usize].cmp(&services[b.service as usize]))
        };
        if self.rows.is_sorted_by(|a, b| order(a, b).is_le()) {
            return self;
        }
        let mut keys: Vec<Pair> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| Pair::new(u64::from(rank[r.structure as usize]), i as u32))
            .collect();
        sort::by_text(&mut keys, sort::head_bytes(rank.len()), |i| self.email(&self.rows[i as usize]).as_bytes());
        let mut order = sort::indexes(keys);
        permute(&mut self.rows, &mut order);
        // Then each person's attachments by service (a few each).
        let (text, rows) = (&self.text, &mut self.rows);
        let email = |r: &Row| &text[r.text.span(r.email)];
        for person in rows.chunk_by_mut(|a, b| a.structure == b.structure && email(a) == email(b)) {
            person.sort_unstable_by_key(|r| services[r.service as usize]);
        }
        self
    }

    /// How many attachments.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each person's attachments, in (structure, e-mail) order.
    pub fn people(&self) -> impl Iterator<Item = CurrentPerson<'_>> + '_ {
        self.people_in(0..self.rows.len())
    }

    /// [`CurrentState::people`] of the attachments in `rows` (a range that
    /// [`CurrentState::position`] bounds, so that it cuts no person).
    pub fn people_in(&self, rows: std::ops::Range<usize>) -> impl Iterator<Item = CurrentPerson<'_>> + '_ {
        self.rows[rows]
            .chunk_by(|a, b| a.structure == b.structure && self.email(a) == self.email(b))
            .map(|rows| CurrentPerson { state: self, rows })
    }

    /// How many attachments come before the person `(structure, email)`'s
    /// place in the (structure, e-mail) order.
    pub fn position(&self, structure: &StructureId, email: &str) -> usize {
        self.rows.partition_point(|r| (self.structure(r), self.email(r)) < (structure, email))
    }

    /// Every attached address (once per attachment).
    pub fn emails(&self) -> impl Iterator<Item = &str> + '_ {
        self.rows.iter().map(|r| self.email(r))
    }

    /// The attachments as domain values, in order: for tests and small reads.
    pub fn attachments(&self) -> impl Iterator<Item = CurrentAttachment> + '_ {
        self.rows.iter().map(|r| CurrentAttachment {
            attachment: Attachment {
                structure: self.structure(r).clone(),
                email: Email::from_normalized(self.email(r)),
                placement: Placement { service: self.service(r).clone(), rights: self.rights(r).clone() },
            },
            name: self.name(r),
        })
    }

    fn email(&self, r: &Row) -> &str {
        &self.text[r.text.span(r.email)]
    }

    fn name(&self, r: &Row) -> PersonName {
        let at = r.text.get() + usize::from(r.email);
        PersonName {
            last_name: field(&self.text, at, r.last_name).map(Into::into),
            first_name: field(&self.text, at + present(r.last_name), r.first_name).map(Into::into),
        }
    }

    fn structure(&self, r: &Row) -> &StructureId {
        &self.structures.values[r.structure as usize]
    }

    fn service(&self, r: &Row) -> &Option<ServiceCode> {
        &self.services.values[r.service as usize]
    }

    fn rights(&self, r: &Row) -> &Rights {
        &self.rights.values[r.rights as usize]
    }
}

impl FromIterator<CurrentAttachment> for CurrentState {
    fn from_iter<I: IntoIterator<Item = CurrentAttachment>>(iter: I) -> CurrentState {
        let mut state = CurrentState::default();
        for c in iter {
            let (a, name) = (&c.attachment, &c.name);
            let placement = (&a.placement.service, &a.placement.rights);
            state.push(&a.structure, &a.email, placement, (name.last_name.as_deref(), name.first_name.as_deref()));
        }
        state.finish()
    }
}

impl<'a> CurrentPerson<'a> {
    /// Each attachment's (service, rights), in service order, as the state holds them.
    pub fn placement_refs(&self) -> impl Iterator<Item = (&'a Option<ServiceCode>, &'a Rights)> + 'a {
        let state = self.state;
        self.rows.iter().map(move |r| (state.service(r), state.rights(r)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::IdentifierType;

    fn attachment(
        s: usize,
        e: usize,
        service: Option<usize>,
        rights: usize,
        last: Option<String>,
    ) -> CurrentAttachment {
        let structures = ["73282932000074", "12345678200010", "31840258547688"];
        CurrentAttachment {
            attachment: Attachment {
                structure: StructureId::parse(IdentifierType::Siret, structures[s]).unwrap(),
                email: Email::parse(&format!("marie.martin{e}@x.fr")).unwrap(),
                placement: Placement {
                    service: service.map(|v| ServiceCode::parse(["COMPTA", "ACHATS", "RH"][v]).unwrap()),
                    rights: Rights::parse(["", "factures:consultation"][rights]).unwrap(),
                },
            },
            name: PersonName { last_name: last.map(Into::into), first_name: Some("Marie".into()) },
        }
    }

    proptest! {
        /// Whatever order they come in, the attachments come out sorted,
        /// each unchanged, grouped by person.
        #[test]
        fn attachments_come_out_sorted_and_unchanged(
            rows in prop::collection::vec(
                (0..3usize, 0..12usize, prop::option::of(0..3usize), 0..2usize, prop::option::of("[a-c]{0,2}")),
                0..40,
            )
        ) {
            let mut given: Vec<CurrentAttachment> = rows.into_iter().map(|(s, e, v, r, l)| attachment(s, e, v, r, l)).collect();
            // One attachment per (structure, e-mail, service), as in the store.
            given.sort();
            given.dedup_by(|a, b| {
                (&a.attachment.structure, &a.attachment.email, &a.attachment.placement.service)
                    == (&b.attachment.structure, &b.attachment.email, &b.attachment.placement.service)
            });
            let state: CurrentState = given.iter().rev().cloned().collect();
            let got: Vec<CurrentAttachment> = state.attachments().collect();
            prop_assert_eq!(&got, &given);
            let people: Vec<(String, String, usize)> = state
                .people()
                .map(|p| (p.structure().to_string(), p.email().to_string(), p.placements().len()))
                .collect();
            let mut expected: Vec<(String, String, usize)> = Vec::new();
            for g in given.chunk_by(|a, b| (&a.attachment.structure, &a.attachment.email) == (&b.attachment.structure, &b.attachment.email)) {
                expected.push((g[0].attachment.structure.to_string(), g[0].attachment.email.to_string(), g.len()));
            }
            prop_assert_eq!(people, expected);
        }
    }
}
