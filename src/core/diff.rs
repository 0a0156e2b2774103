//! The reconciliation (DESIGN.md §6): desired state from the sources, current
//! state from the portal, open and refused requests from the store, in; a
//! plan of changes and anomalies out. Pure and deterministic.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    ops::Range,
    sync::{Mutex, PoisonError},
};

use litemap::LiteMap;

use super::{
    anomaly::{Anomaly, AnomalyCode, Location},
    approval::RequestState,
    catalog::Catalog,
    change::{Change, ChangeKey, Reason},
    current::CurrentPerson,
    desired::DesiredRows,
    plan::{AbsenceStreak, Disposition, OpenRequest, Plan, PlannedChange, RefusedChange, StructureCounts},
};
use crate::domain::{Attachment, Email, PersonName, Placement, Rights, ServiceCode, StructureId};

pub use super::{
    current::{CurrentAttachment, CurrentState},
    desired::{Desired, DesiredBuilder, DesiredPerson, Key},
};

/// Everything the diff reads; the store and the sources fill it.
pub struct DiffInput<'a> {
    pub catalog: &'a Catalog,
    /// Structures the run's sources govern; nothing outside changes.
    pub scope: &'a BTreeSet<StructureId>,
    pub desired: &'a Desired,
    pub current: &'a CurrentState,
    /// Pending and approved requests of the scope.
    pub open: &'a [OpenRequest],
    pub refused: &'a [RefusedChange],
    /// Streaks recorded by earlier complete runs.
    pub absences: &'a [AbsenceStreak],
    /// Employee id → the address earlier runs saw, for the ids whose address
    /// differs now (the store answers only those).
    pub known_ids: &'a HashMap<Box<str>, Email>,
    pub grace_runs: u32,
}

pub fn diff(input: &DiffInput<'_>) -> Plan {
    diff_with::<true>(input, SPLIT_MIN)
}

/// People from which the diff compares on two threads, each half of the
/// people on its own (a million people: ~0.2 s on one). Debug builds (the
/// tests') split from two people on, so that every test's diff is split.
const SPLIT_MIN: usize = if cfg!(debug_assertions) { 2 } else { 20_000 };

/// The diff; `FAST = false` (tests only) sends everyone through the full
/// comparison, which the fast path must agree with. From `split_min`
/// people on, the people are compared in two halves on two threads.
fn diff_with<const FAST: bool>(input: &DiffInput<'_>, split_min: usize) -> Plan {
    let desired = input.desired;
    let mut anomalies = desired.anomalies.clone();
    let mut protected = desired.protected.clone();
    changed_addresses::<FAST>(input, &mut protected, &mut anomalies);

    let streaks: HashMap<(&StructureId, &Email), u32> =
        input.absences.iter().map(|s| ((&s.structure, &s.email), s.missed_runs)).collect();
    let protected_addresses: HashSet<&str, foldhash::fast::RandomState> = protected.iter().map(Email::as_str).collect();
    let people = People { input, protected: &protected, protected_addresses: &protected_addresses, streaks: &streaks };

    // The second half starts at a desired person, and the current state's
    // at that person's place: each person falls in one half, both sides of
    // it together, and the halves in order are the whole.
    let (count, all) = (desired.len(), input.current.len());
    // Both halves add to one vector, which grows as a single merge's would:
    // two vectors joined after were 8 MB more at the peak of a plan.
    let changes = Mutex::new(Vec::new());
    let halves = if count >= split_min.max(2) {
        let mid = count / 2;
        let (structure, email) = desired.person_key(mid);
        let at = input.current.position(structure, email);
        std::thread::scope(|scope| {
            let high = scope.spawn(|| people.compare::<FAST>(mid..count, at..all, &changes));
            let low = people.compare::<FAST>(0..mid, 0..at, &changes);
            // A panic there is a bug, carried on as if it had happened here.
            vec![low, high.join().unwrap_or_else(|e| std::panic::resume_unwind(e))]
        })
    } else {
        vec![people.compare::<FAST>(0..count, 0..all, &changes)]
    };
    // Planned from the start (as raised), so `dispose` decides in place: a
    // second vector of 50,000 changes was 12 MB at the peak of a plan.
    let mut changes = changes.into_inner().unwrap_or_else(PoisonError::into_inner);

    let mut counts: BTreeMap<StructureId, StructureCounts> =
        input.scope.iter().map(|s| (s.clone(), StructureCounts::default())).collect();
    let mut absences: Vec<AbsenceStreak> = Vec::new();
    for half in halves {
        anomalies.extend(half.anomalies);
        absences.extend(half.absences);
        for (structure, c) in &half.counts {
            counts.entry(structure.clone()).or_default().absorb(c);
        }
    }

    // The halves' changes are interleaved in the vector; the sort below
    // makes the order the one a single merge would give.
    // A plan's change keys are unique (one change per person, structure and
    // placement pair), so an unstable sort gives the one order, without the
    // stable sort's buffer (8 MB for 50,000 changes, at the peak of a plan).
    changes.sort_unstable_by(|a, b| {
        let (a, b) = (&a.change, &b.change);
        a.sort_key().cmp(&b.sort_key()).then_with(|| a.key.cmp(&b.key))
    });
    debug_assert!(changes.windows(2).all(|w| w[0].change.key != w[1].change.key), "a change key twice");
    let supersede = dispose(&mut changes, input, &protected);
    for c in changes.iter().filter(|c| c.disposition == Disposition::Raise) {
        counts.entry(c.change.key.structure.clone()).or_default().raised += 1;
    }
    anomalies.sort();
    for a in &anomalies {
        if let Some(s) = &a.structure {
            counts.entry(s.clone()).or_default().anomalies += 1;
        }
    }
    Plan { changes, anomalies, supersede, absences, counts }
}

/// What the comparison of people reads, shared by the halves.
struct People<'i, 'a> {
    input: &'i DiffInput<'a>,
    /// People nothing may change, and their addresses.
    protected: &'i BTreeSet<Email>,
    protected_addresses: &'i HashSet<&'i str, foldhash::fast::RandomState>,
    /// Absence streaks of earlier runs.
    streaks: &'i HashMap<(&'i StructureId, &'i Email), u32>,
}

/// What comparing some of the people finds.
#[derive(Default)]
struct Found {
    anomalies: Vec<Anomaly>,
    absences: Vec<AbsenceStreak>,
    counts: BTreeMap<StructureId, StructureCounts>,
}

impl People<'_, '_> {
    /// Compares the desired people in `wanted` (indexes) with the current
    /// attachments in `attached` (a range of the same people's places),
    /// adding the changes to `out` a few hundred at a time.
    fn compare<const FAST: bool>(
        &self,
        wanted: Range<usize>,
        attached: Range<usize>,
        out: &Mutex<Vec<PlannedChange>>,
    ) -> Found {
        const BATCH: usize = 256;
        let People { input, protected, protected_addresses, streaks } = *self;
        let Found { mut anomalies, mut absences, mut counts } = Found::default();
        let flush = |changes: &mut Vec<PlannedChange>| {
            out.lock().unwrap_or_else(PoisonError::into_inner).append(changes);
        };
        let mut changes = Vec::with_capacity(BATCH);
        // A merge of two sorted sequences, person by person: the desired state
        // and the current attachments, both in (structure, e-mail) order.
        let mut current = input.current.people_in(attached).filter(|p| input.scope.contains(p.structure())).peekable();
        // The desired side is made one person at a time (see `Desired`), and
        // only for people the fast path below cannot settle.
        let mut wanted =
            input.desired.people_rows_in(wanted).filter(|w| input.scope.contains(w.structure())).peekable();
        loop {
            let order = match (wanted.peek(), current.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(w), Some(p)) => (w.structure(), w.email()).cmp(&(p.structure(), p.email())),
            };
            let wanted_now = if order.is_le() { wanted.next() } else { None };
            let group = if order.is_ge() { current.next() } else { None };
            // Most people are on both sides and unchanged: counted from the rows as
            // the full comparison would count them, which would find nothing else.
            if FAST
                && let (Some(w), Some(p)) = (&wanted_now, &group)
                && !protected_addresses.contains(w.email())
                && let Some(placements) = unchanged(w, p)
            {
                let counts = counts.entry(w.structure().clone()).or_default();
                counts.current += placements;
                counts.desired += placements;
                continue;
            }
            // The person: the desired side's, or made from the portal's key.
            let ((structure, email), want) = match (wanted_now.map(|w| w.person()), &group) {
                (Some(person), _) => person,
                (None, Some(p)) => {
                    ((p.structure().clone(), Email::from_normalized(p.email())), DesiredPerson::default())
                }
                (None, None) => unreachable!("one side has the smaller person"),
            };
            let (structure, email, want) = (&structure, &email, &want);
            let (have, current_name) = match group {
                Some(person) => (Some(person.placements()), Some(person.name())),
                None => (None, None),
            };
            let have_count = have.as_ref().map_or(0, LiteMap::len) as u64;
            let counts = counts.entry(structure.clone()).or_default();
            counts.current += have_count;
            counts.desired += want.placements.len() as u64;
            if protected.contains(email) {
                // Untouched this run, and their absence streak is neither reset nor extended.
                if let Some(runs) = streaks.get(&(structure, email)) {
                    absences.push(AbsenceStreak {
                        structure: structure.clone(),
                        email: email.clone(),
                        missed_runs: *runs,
                    });
                }
                continue;
            }
            let name = if want.name.is_empty() { current_name.unwrap_or_default() } else { want.name.clone() };
            let is_main_manager = input.catalog.get(structure).is_some_and(|s| s.main_manager == *email);
            let mut person = PersonChanges { structure, email, name: &name, out: Vec::new() };
            let have: LiteMap<Option<ServiceCode>, Rights> = have.unwrap_or_default();
            let have = &have;

            // Same service, other rights.
            for (service, (rights, loc)) in &want.placements {
                if let Some(current_rights) = have.get(service).filter(|r| *r != rights) {
                    person.push(
                        Some(placement(service, current_rights)),
                        Some(placement(service, rights)),
                        Reason::RightsChanged,
                        Some(loc),
                    );
                }
            }
            // Other services: pair them into moves, the rest are attaches or detaches.
            let only_want: Vec<_> = want.placements.iter().filter(|(s, _)| !have.contains_key(*s)).collect();
            let only_have: Vec<_> = have.iter().filter(|(s, _)| !want.placements.contains_key(*s)).collect();
            let pairs = only_want.len().min(only_have.len());
            for ((ws, (wr, loc)), (hs, hr)) in only_want.iter().zip(&only_have) {
                person.push(Some(placement(hs, hr)), Some(placement(ws, wr)), Reason::ServiceChanged, Some(loc));
            }
            for (ws, (wr, loc)) in &only_want[pairs..] {
                person.push(None, Some(placement(ws, wr)), Reason::New, Some(loc));
            }
            let detach_reason = if !want.placements.is_empty() {
                Some((Reason::ServiceDropped, None))
            } else if let Some((why, loc)) = want.left.as_deref() {
                Some((Reason::Left(why.clone()), Some(loc)))
            } else if have.is_empty() {
                None
            } else if is_main_manager {
                // Main managers are often not in HR exports: no grace, no streak;
                // the detach below becomes a main_manager_protected anomaly.
                Some((Reason::Absent { runs: 1 }, None))
            } else {
                let runs = streaks.get(&(structure, email)).copied().unwrap_or(0) + 1;
                absences.push(AbsenceStreak { structure: structure.clone(), email: email.clone(), missed_runs: runs });
                if runs > input.grace_runs {
                    Some((Reason::Absent { runs }, None))
                } else {
                    anomalies.push(Anomaly {
                        structure: Some(structure.clone()),
                        location: None,
                        email: Some(email.to_string()),
                        code: AnomalyCode::AbsentInGrace,
                        message: format!(
                            "absent from the source for {runs} run(s); a detach is proposed after {} run(s)",
                            input.grace_runs + 1
                        ),
                    });
                    None
                }
            };
            if let Some((reason, loc)) = detach_reason {
                for (hs, hr) in &only_have[pairs..] {
                    person.push(Some(placement(hs, hr)), None, reason.clone(), loc);
                }
            }

            let mut person_changes = person.out;
            if is_main_manager {
                person_changes.retain(|c| {
                    let demotes = match (&c.key.before, &c.key.after) {
                        (Some(_), None) => true,
                        (Some(b), Some(a)) => b.rights.is_reduced_by(&a.rights),
                        _ => false,
                    };
                    if demotes {
                        anomalies.push(Anomaly {
                            structure: Some(structure.clone()),
                            location: c.origin.clone(),
                            email: Some(email.to_string()),
                            code: AnomalyCode::MainManagerProtected,
                            message: format!(
                                "{email} is the main manager of {structure}: not proposed ({} {}, {})",
                                c.kind,
                                c.key.before.as_ref().map_or(String::new(), Placement::label),
                                c.reason
                            ),
                        });
                    }
                    !demotes
                });
            }
            for c in &person_changes {
                counts.add_kind(c.kind);
            }
            changes.extend(
                person_changes.into_iter().map(|change| PlannedChange { change, disposition: Disposition::Raise }),
            );
            if changes.len() >= BATCH {
                flush(&mut changes);
            }
        }
        flush(&mut changes);
        Found { anomalies, absences, counts }
    }
}

/// How many placements a person on both sides has, when the full comparison
/// would find nothing to change (nor streak, nor anomaly) for them; `None`
/// when in doubt. That is: every desired row is a placement (a leaver row
/// makes facts of its own) whose rights equal, by value, those of the same
/// service in the portal, and each attachment has such a row. Rows that
/// differ but whose union is the portal's rights, and a service attached
/// twice (a row only ever finds the first), take the full comparison. The
/// caller checks that the person is not protected (a protected person keeps
/// their absence streak).
fn unchanged(want: &DesiredRows<'_>, have: &CurrentPerson<'_>) -> Option<u64> {
    // One bit per attachment: a person has one or two, rarely more.
    let attached = have.placement_refs().count();
    if attached > 64 {
        return None;
    }
    let mut wanted = 0u64;
    for row in want.placements() {
        let (service, rights) = row?;
        let (i, (_, have_rights)) = have.placement_refs().enumerate().find(|(_, (s, _))| *s == service)?;
        if have_rights != rights {
            return None;
        }
        wanted |= 1 << i;
    }
    (wanted.count_ones() as usize == attached).then_some(attached as u64)
}

fn placement(service: &Option<ServiceCode>, rights: &Rights) -> Placement {
    Placement { service: service.clone(), rights: rights.clone() }
}

struct PersonChanges<'a> {
    structure: &'a StructureId,
    email: &'a Email,
    name: &'a PersonName,
    out: Vec<Change>,
}

impl PersonChanges<'_> {
    fn push(&mut self, before: Option<Placement>, after: Option<Placement>, reason: Reason, origin: Option<&Location>) {
        let key = ChangeKey { structure: self.structure.clone(), email: self.email.clone(), before, after };
        self.out.extend(Change::new(key, reason, self.name.clone(), origin.cloned()));
    }
}

/// An employee id the store knows under another address that is still
/// attached: report it, and touch neither address. `FAST = false` (tests)
/// always reads every identity, which the search must agree with.
fn changed_addresses<const FAST: bool>(
    input: &DiffInput<'_>,
    protected: &mut BTreeSet<Email>,
    anomalies: &mut Vec<Anomaly>,
) {
    let (known, desired) = (input.known_ids, input.desired);
    if known.is_empty() {
        return;
    }
    // Each id once (the map's keys; `identities` gives each id once), in id order.
    let mut found: Vec<(&str, &str, &Email)> = if FAST && search_pays(known.len(), desired.identities().len()) {
        // A run's few changed addresses are each found in the desired
        // state's id order. Reading every identity to find them was a
        // million random reads after a run: ~0.1 s (BENCHMARKS.md, session 16).
        let mut found: Vec<_> =
            known.iter().filter_map(|(id, old)| Some((&**id, desired.address_of_id(id)?, old))).collect();
        found.sort_unstable_by_key(|(id, _, _)| *id);
        found
    } else {
        desired.identities().filter_map(|(id, email)| Some((id, email, known.get(id)?))).collect()
    };
    found.retain(|(_, email, old)| old.as_str() != *email);
    // Only the old addresses still attached count. They are few: one pass
    // over the attachments answers them all (a set of every attached address
    // was a million entries after a run).
    let mut attached: HashMap<&str, bool> = found.iter().map(|(_, _, old)| (old.as_str(), false)).collect();
    if !attached.is_empty() {
        for email in input.current.emails() {
            if let Some(is) = attached.get_mut(email) {
                *is = true;
            }
        }
    }
    found.retain(|(_, _, old)| attached[old.as_str()]);
    if found.is_empty() {
        return;
    }
    let places = input.desired.first_places(found.iter().map(|(_, email, _)| *email).collect());
    for (id, email, old) in found {
        let (structure, location) = places.get(email).cloned().map_or((None, None), |(s, l)| (Some(s), l));
        protected.insert(old.clone());
        protected.insert(Email::from_normalized(email));
        anomalies.push(Anomaly {
            structure,
            location,
            email: Some(email.to_string()),
            code: AnomalyCode::EmailChanged,
            message: format!("employee id {id:?} was {old}, now {email}: update the address in the portal"),
        });
    }
}

/// Whether `known` binary searches among `identities` (about log2 of them
/// read each) cost less than reading them all: not when every address
/// changed at once (a new e-mail domain).
fn search_pays(known: usize, identities: usize) -> bool {
    identities > 0 && known.saturating_mul(identities.ilog2() as usize + 1) < identities
}

/// Matches planned changes with the requests the store holds: same change
/// pending or approved → kept; refused on the same facts → not raised again;
/// open requests nothing matches any more → superseded.
fn dispose(
    changes: &mut [PlannedChange],
    input: &DiffInput<'_>,
    protected: &BTreeSet<Email>,
) -> Vec<super::approval::RequestId> {
    // foldhash, not SipHash: after a first adoption a million changes each
    // look up their key among a million open requests, and SipHash over the
    // keys' text was a third of the diff (BENCHMARKS.md, session 14).
    let open: foldhash::HashMap<&ChangeKey, usize> = input
        .open
        .iter()
        .enumerate()
        .filter(|(_, o)| input.scope.contains(&o.key.structure))
        .map(|(i, o)| (&o.key, i))
        .collect();
    let mut refused: foldhash::HashMap<(&ChangeKey, &str), super::approval::RequestId> = Default::default();
    for r in input.refused {
        let id = refused.entry((&r.key, r.reason_category.as_str())).or_insert(r.id);
        *id = (*id).max(r.id);
    }
    // By position in `input.open`.
    let mut kept = vec![false; input.open.len()];
    for PlannedChange { change, disposition } in changes.iter_mut() {
        *disposition = match open.get(&change.key) {
            Some(&i) => {
                kept[i] = true;
                let o = &input.open[i];
                if o.state == RequestState::Approved { Disposition::Approved(o.id) } else { Disposition::Pending(o.id) }
            }
            None => match refused.get(&(&change.key, change.reason.category())) {
                Some(id) => Disposition::Refused(*id),
                None => Disposition::Raise,
            },
        };
    }
    let mut supersede: Vec<_> = input
        .open
        .iter()
        .zip(&kept)
        .filter(|(o, kept)| input.scope.contains(&o.key.structure) && !**kept && !protected.contains(&o.key.email))
        .map(|(o, _)| o.id)
        .collect();
    supersede.sort_unstable();
    supersede
}

/// The attachments after applying `changes` to `current`: what the portal
/// will hold once every request is approved and applied.
pub fn apply(current: &[Attachment], changes: &[Change]) -> BTreeSet<Attachment> {
    let mut state: BTreeSet<Attachment> = current.iter().cloned().collect();
    for c in changes {
        let at = |p: &Placement| Attachment {
            structure: c.key.structure.clone(),
            email: c.key.email.clone(),
            placement: p.clone(),
        };
        if let Some(b) = &c.key.before {
            state.remove(&at(b));
        }
        if let Some(a) = &c.key.after {
            state.insert(at(a));
        }
    }
    state
}

#[cfg(test)]
mod tests;
