//! The reconciliation (DESIGN.md §6): desired state from the sources, current
//! state from the portal, open and refused requests from the store, in; a
//! plan of changes and anomalies out. Pure and deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use litemap::LiteMap;

use super::{
    anomaly::{Anomaly, AnomalyCode, Location},
    approval::RequestState,
    catalog::Catalog,
    change::{Change, ChangeKey, LeftWhy, Reason},
    mapping::{Mapped, SourceRow},
    plan::{AbsenceStreak, Disposition, OpenRequest, Plan, PlannedChange, RefusedChange, StructureCounts},
};
use crate::domain::{Attachment, Email, PersonName, Placement, Rights, ServiceCode, StructureId};

/// A person in a structure.
pub type Key = (StructureId, Email);

/// One attachment in the portal today, with the name the export gave.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CurrentAttachment {
    pub attachment: Attachment,
    pub name: PersonName,
}

/// What the sources say about one person in one structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredPerson {
    pub name: PersonName,
    /// Service (or structure level) → rights (the union of the rows) and the first row saying so.
    /// A sorted vector, not a BTreeMap: people have one or two placements, and a BTreeMap's
    /// first node holds room for eleven (1.4 KB a person, 1.4 GB for a million-row file).
    pub placements: LiteMap<Option<ServiceCode>, (Rights, Location)>,
    /// Set when a row says the person has left. Boxed: few rows say so, and
    /// inline it made every person 80 bytes larger.
    pub left: Option<Box<(LeftWhy, Location)>>,
}

impl DesiredPerson {
    /// Folds a later row's person into this one: the first name, the first
    /// leaver row and each service's first row win; rights are the union.
    fn absorb(&mut self, later: DesiredPerson) {
        if self.name.is_empty() {
            self.name = later.name;
        }
        if self.left.is_none() {
            self.left = later.left;
        }
        for (service, (rights, location)) in later.placements {
            match self.placements.get_mut(&service) {
                Some(entry) => entry.0 = entry.0.union(&rights),
                None => {
                    self.placements.insert(service, (rights, location));
                }
            }
        }
    }
}

/// Where the row that carried an employee id was: enough to name it in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    row: Option<u64>,
    entry: Option<std::sync::Arc<str>>,
}

impl Seen {
    fn of(location: &Location) -> Seen {
        Seen { row: location.row, entry: location.entry.clone() }
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.entry, self.row) {
            (Some(entry), _) => write!(f, "entry {entry}"),
            (None, Some(row)) => write!(f, "row {row}"),
            (None, None) => f.write_str("an earlier row"),
        }
    }
}

/// The desired state of a run as its sources are read: rows go in one by
/// one, in source order; [`DesiredBuilder::finish`] sorts and merges them.
///
/// Rows are kept in a vector and sorted once rather than inserted in a
/// BTreeMap: a million inserts cost twenty string comparisons each, node
/// allocations and pointer chasing (`memcmp` was 12% of a plan; BENCHMARKS.md).
#[derive(Debug, Clone, Default)]
pub struct DesiredBuilder {
    /// One entry per valid row, with its arrival order for a stable result.
    rows: Vec<(Key, u32, DesiredPerson)>,
    protected: BTreeSet<Email>,
    anomalies: Vec<Anomaly>,
    /// Every row that carried an employee id; checked once all are in.
    ids: Vec<IdRow>,
}

/// A row's employee id, with what a conflict's anomaly names.
#[derive(Debug, Clone)]
struct IdRow {
    id: Box<str>,
    email: Email,
    structure: StructureId,
    seq: u32,
    location: Location,
}

/// The desired state of a run: what all its sources say, one entry per
/// person and structure, sorted by (structure, e-mail).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    people: Vec<(Key, DesiredPerson)>,
    /// People a rejected or contradictory row names: nothing may detach them.
    pub protected: BTreeSet<Email>,
    pub anomalies: Vec<Anomaly>,
    /// Employee id → the address that carried it first, sorted by id.
    ids: Vec<(Box<str>, Email)>,
}

impl DesiredBuilder {
    pub fn add(&mut self, mapped: Mapped) {
        match mapped {
            Mapped::Rejected { email, anomalies } => {
                self.protected.extend(email);
                self.anomalies.extend(anomalies);
            }
            Mapped::Row(row) => self.add_row(row),
        }
    }

    fn add_row(&mut self, row: SourceRow) {
        // u32 is enough: the row limits stop a source long before 4 billion rows.
        let seq = u32::try_from(self.rows.len()).unwrap_or(u32::MAX);
        if let Some(id) = row.employee_id {
            self.ids.push(IdRow {
                id,
                email: row.email.clone(),
                structure: row.structure.clone(),
                seq,
                location: row.location.clone(),
            });
        }
        let mut person = DesiredPerson { name: row.name, ..DesiredPerson::default() };
        match row.left {
            Some(why) => person.left = Some(Box::new((why, row.location))),
            None => {
                person.placements.insert(row.placement.service, (row.placement.rights, row.location));
            }
        }
        self.rows.push(((row.structure, row.email), seq, person));
    }

    /// One person, one employee id: rows that disagree protect everyone
    /// involved. Each row is compared with the first row of its id and the
    /// first row of its address (sorted vectors: two hash maps of a million
    /// entries took 300 MB).
    fn check_identities(ids: &mut [IdRow], protected: &mut BTreeSet<Email>, anomalies: &mut Vec<Anomaly>) {
        let mut conflict = |row: &IdRow, other: &Email, first: &IdRow, what: String| {
            protected.insert(other.clone());
            protected.insert(row.email.clone());
            let seen = Seen::of(&first.location);
            anomalies.push(Anomaly {
                structure: Some(row.structure.clone()),
                location: Some(row.location.clone()),
                email: Some(row.email.to_string()),
                code: AnomalyCode::ConflictingRows,
                message: format!("{what} ({seen})"),
            });
        };
        ids.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.seq.cmp(&b.seq)));
        for group in ids.chunk_by(|a, b| a.id == b.id) {
            let first = &group[0];
            for row in group[1..].iter().filter(|r| r.email != first.email) {
                conflict(row, &first.email, first, format!("employee id {:?} also belongs to {}", row.id, first.email));
            }
        }
        ids.sort_unstable_by(|a, b| a.email.cmp(&b.email).then(a.seq.cmp(&b.seq)));
        for group in ids.chunk_by(|a, b| a.email == b.email) {
            let first = &group[0];
            for row in group[1..].iter().filter(|r| r.id != first.id) {
                conflict(row, &row.email, first, format!("{} also has employee id {:?}", row.email, first.id));
            }
        }
    }

    /// Sorts the rows by (structure, e-mail) and merges each person's rows,
    /// in place: the first row of a person keeps its place and absorbs the
    /// later ones, so the result is the same as adding them one by one.
    /// The anomalies alone (mapping and employee-id conflicts), for a run
    /// whose source was rejected: nothing is diffed, so the rows are not sorted.
    pub fn into_anomalies(self) -> Vec<Anomaly> {
        let DesiredBuilder { rows: _, mut protected, mut anomalies, mut ids } = self;
        DesiredBuilder::check_identities(&mut ids, &mut protected, &mut anomalies);
        anomalies
    }

    pub fn finish(self) -> Desired {
        let DesiredBuilder { mut rows, mut protected, mut anomalies, mut ids } = self;
        DesiredBuilder::check_identities(&mut ids, &mut protected, &mut anomalies);
        // The first address of each id, for the next run's changed-address check.
        ids.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.seq.cmp(&b.seq)));
        ids.dedup_by(|later, first| later.id == first.id);
        let ids = ids.into_iter().map(|r| (r.id, r.email)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        rows.dedup_by(|later, first| {
            if later.0 != first.0 {
                return false;
            }
            first.2.absorb(std::mem::take(&mut later.2));
            true
        });
        let people = rows.into_iter().map(|(key, _, person)| (key, person)).collect();
        Desired { people, protected, anomalies, ids }
    }
}

impl Desired {
    /// The desired state of these rows, added in order: for tests and callers
    /// that have all their rows at hand.
    pub fn from_rows(rows: impl IntoIterator<Item = Mapped>) -> Desired {
        let mut builder = DesiredBuilder::default();
        for row in rows {
            builder.add(row);
        }
        builder.finish()
    }

    /// Everyone the sources name, sorted by (structure, e-mail).
    pub fn people(&self) -> &[(Key, DesiredPerson)] {
        &self.people
    }

    /// Employee ids seen with their addresses, for the next run's
    /// changed-address check.
    pub fn identities(&self) -> impl Iterator<Item = (&str, &Email)> {
        self.ids.iter().map(|(id, email)| (&**id, email))
    }
}

/// Everything the diff reads; the store and the sources fill it.
pub struct DiffInput<'a> {
    pub catalog: &'a Catalog,
    /// Structures the run's sources govern; nothing outside changes.
    pub scope: &'a BTreeSet<StructureId>,
    pub desired: &'a Desired,
    pub current: &'a [CurrentAttachment],
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
    let desired = input.desired;
    let mut anomalies = desired.anomalies.clone();
    let mut protected = desired.protected.clone();
    changed_addresses(input, &mut protected, &mut anomalies);

    let streaks: HashMap<(&StructureId, &Email), u32> =
        input.absences.iter().map(|s| ((&s.structure, &s.email), s.missed_runs)).collect();

    let mut counts: BTreeMap<StructureId, StructureCounts> =
        input.scope.iter().map(|s| (s.clone(), StructureCounts::default())).collect();
    let mut changes: Vec<Change> = Vec::new();
    let mut absences: Vec<AbsenceStreak> = Vec::new();
    let empty = DesiredPerson::default();

    // A merge of two sorted sequences, person by person: the desired state
    // (sorted by its builder) and the current attachments (sorted by the
    // store; sorted here when a caller did not).
    let mut current: Vec<&CurrentAttachment> =
        input.current.iter().filter(|c| input.scope.contains(&c.attachment.structure)).collect();
    if !current.is_sorted_by(|a, b| person_of(a) <= person_of(b)) {
        current.sort_by(|a, b| person_of(a).cmp(&person_of(b)));
    }
    let mut current = current.chunk_by(|a, b| person_of(a) == person_of(b)).peekable();
    let mut wanted = desired.people.iter().filter(|((s, _), _)| input.scope.contains(s)).peekable();
    loop {
        let next_want = wanted.peek().copied().map(|(k, _)| (&k.0, &k.1));
        let next_have = current.peek().map(|g| person_of(g[0]));
        let (structure, email) = match (next_want, next_have) {
            (None, None) => break,
            (Some(w), None) => w,
            (None, Some(h)) => h,
            (Some(w), Some(h)) => w.min(h),
        };
        let want = wanted.next_if(|(k, _)| (&k.0, &k.1) == (structure, email)).map_or(&empty, |(_, p)| p);
        let group = current.next_if(|g| person_of(g[0]) == (structure, email));
        let (have, current_name) = match group {
            Some(group) => {
                let mut have = LiteMap::new();
                for c in group {
                    have.insert(c.attachment.placement.service.clone(), c.attachment.placement.rights.clone());
                }
                (Some(have), Some(&group[0].name))
            }
            None => (None, None),
        };
        let have_count = have.as_ref().map_or(0, LiteMap::len) as u64;
        let counts = counts.entry(structure.clone()).or_default();
        counts.current += have_count;
        counts.desired += want.placements.len() as u64;
        if protected.contains(email) {
            // Untouched this run, and their absence streak is neither reset nor extended.
            if let Some(runs) = streaks.get(&(structure, email)) {
                absences.push(AbsenceStreak { structure: structure.clone(), email: email.clone(), missed_runs: *runs });
            }
            continue;
        }
        let name = if want.name.is_empty() { current_name.cloned().unwrap_or_default() } else { want.name.clone() };
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
        changes.extend(person_changes);
    }

    changes.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.key.cmp(&b.key)));
    let (changes, supersede) = dispose(changes, input, &protected);
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

fn person_of(c: &CurrentAttachment) -> (&StructureId, &Email) {
    (&c.attachment.structure, &c.attachment.email)
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
/// attached: report it, and touch neither address.
fn changed_addresses(input: &DiffInput<'_>, protected: &mut BTreeSet<Email>, anomalies: &mut Vec<Anomaly>) {
    if input.known_ids.is_empty() {
        return;
    }
    let attached: BTreeSet<&Email> = input.current.iter().map(|c| &c.attachment.email).collect();
    let mut seen: BTreeSet<(&str, &Email)> = BTreeSet::new();
    for (id, email) in input.desired.identities() {
        let Some(old) = input.known_ids.get(id) else { continue };
        if old == email || !attached.contains(old) || !seen.insert((id, email)) {
            continue;
        }
        let (structure, location) = input
            .desired
            .people
            .iter()
            .find(|((_, e), _)| e == email)
            .map(|((s, _), p)| (Some(s.clone()), p.placements.values().next().map(|(_, l)| l.clone())))
            .unwrap_or((None, None));
        protected.insert(old.clone());
        protected.insert(email.clone());
        anomalies.push(Anomaly {
            structure,
            location,
            email: Some(email.to_string()),
            code: AnomalyCode::EmailChanged,
            message: format!("employee id {id:?} was {old}, now {email}: update the address in the portal"),
        });
    }
}

/// Matches planned changes with the requests the store holds: same change
/// pending or approved → kept; refused on the same facts → not raised again;
/// open requests nothing matches any more → superseded.
fn dispose(
    changes: Vec<Change>,
    input: &DiffInput<'_>,
    protected: &BTreeSet<Email>,
) -> (Vec<PlannedChange>, Vec<super::approval::RequestId>) {
    let open: HashMap<&ChangeKey, &OpenRequest> =
        input.open.iter().filter(|o| input.scope.contains(&o.key.structure)).map(|o| (&o.key, o)).collect();
    let mut refused: HashMap<(&ChangeKey, &str), super::approval::RequestId> = HashMap::new();
    for r in input.refused {
        let id = refused.entry((&r.key, r.reason_category.as_str())).or_insert(r.id);
        *id = (*id).max(r.id);
    }
    let mut kept = BTreeSet::new();
    let planned = changes
        .into_iter()
        .map(|change| {
            let disposition = match open.get(&change.key) {
                Some(o) => {
                    kept.insert(o.id);
                    if o.state == RequestState::Approved {
                        Disposition::Approved(o.id)
                    } else {
                        Disposition::Pending(o.id)
                    }
                }
                None => match refused.get(&(&change.key, change.reason.category())) {
                    Some(id) => Disposition::Refused(*id),
                    None => Disposition::Raise,
                },
            };
            PlannedChange { change, disposition }
        })
        .collect();
    let mut supersede: Vec<_> = input
        .open
        .iter()
        .filter(|o| input.scope.contains(&o.key.structure))
        .filter(|o| !kept.contains(&o.id) && !protected.contains(&o.key.email))
        .map(|o| o.id)
        .collect();
    supersede.sort_unstable();
    (planned, supersede)
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
