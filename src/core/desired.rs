//! The desired state of a run: what its sources say, one entry per person
//! and structure, built row by row as the sources are read and sorted once.
//!
//! Compact on purpose (issue 7): a million-row source is a million rows held
//! until the diff. Each row is a fixed record; its strings (e-mail, names,
//! employee id, directory entry) sit one after another in one text buffer,
//! and its structure, service, rights, file and leaving reason are indexes
//! into small tables of shared values. Domain values (`Email`,
//! [`DesiredPerson`]) are made one person at a time as the diff walks the
//! state, and dropped behind it.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Range,
    sync::Arc,
};

use litemap::LiteMap;

use super::{
    anomaly::{Anomaly, AnomalyCode, Location, SourceFile},
    change::LeftWhy,
    compact::{NONE, Table, TextAt, email_length, field, length, permute, present, push_strings, ranks},
    mapping::{Mapped, SourceRow},
    sort::{self, Pair},
};
use crate::domain::{Email, PersonName, Rights, ServiceCode, StructureId};

/// A person in a structure.
pub type Key = (StructureId, Email);

/// What the sources say about one person in one structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredPerson {
    pub name: PersonName,
    /// Service (or structure level) → rights (the union of the rows) and the first row saying so.
    pub placements: LiteMap<Option<ServiceCode>, (Rights, Location)>,
    /// Set when a row says the person has left: the first such row.
    pub left: Option<Box<(LeftWhy, Location)>>,
}

/// One valid source row. Its strings are `text[text..]`, in field order.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Where this row's strings start in the builder's text.
    text: TextAt,
    email: u16,
    /// Lengths, or [`NONE`].
    last_name: u32,
    first_name: u32,
    employee_id: u32,
    entry: u32,
    /// 1-based row in the file, or [`NONE`] for a directory entry.
    row: u32,
    structure: u32,
    service: u32,
    rights: u32,
    file: u32,
    /// Index + 1 into the leaving reasons, or 0 when the row does not say the person left.
    left: u32,
}

// A million of them at a plan's peak of memory (compact::TextAt).
const _: () = assert!(size_of::<Row>() == 48);

/// The shared values of a desired state.
#[derive(Debug, Clone, Default)]
struct Values {
    structures: Table<StructureId>,
    services: Table<Option<ServiceCode>>,
    rights: Table<Rights>,
    left: Table<LeftWhy>,
    /// Few and compared by pointer: the last one is checked first.
    files: Vec<Arc<SourceFile>>,
}

impl Values {
    fn file(&mut self, file: &Arc<SourceFile>) -> u32 {
        let i = match self.files.iter().rposition(|f| Arc::ptr_eq(f, file) || f == file) {
            Some(i) => i,
            None => {
                self.files.push(file.clone());
                self.files.len() - 1
            }
        };
        u32::try_from(i).expect("fewer than 4 billion files")
    }
}

/// Rows and their text: what both the builder and the finished state hold.
#[derive(Debug, Clone, Default)]
struct Rows {
    text: String,
    rows: Vec<Row>,
    values: Values,
}

impl Rows {
    fn push(&mut self, row: SourceRow) {
        let SourceRow { email, name, employee_id, structure, placement, left, location } = row;
        let fields = [
            Some(email.as_str()),
            name.last_name.as_deref(),
            name.first_name.as_deref(),
            employee_id.as_deref(),
            location.entry.as_deref(),
        ];
        let values = &mut self.values;
        let record = Row {
            text: push_strings(&mut self.text, fields),
            email: email_length(email.as_str()),
            last_name: length(name.last_name.as_deref()),
            first_name: length(name.first_name.as_deref()),
            employee_id: length(employee_id.as_deref()),
            entry: length(location.entry.as_deref()),
            row: location.row.and_then(|r| u32::try_from(r).ok()).unwrap_or(NONE),
            structure: values.structures.intern_ref(&structure),
            service: values.services.intern_ref(&placement.service),
            rights: values.rights.intern_ref(&placement.rights),
            file: values.file(&location.file),
            left: left.map_or(0, |why| values.left.intern(why) + 1),
        };
        self.rows.push(record);
    }

    /// The row's field that starts `skip` bytes into its text and is `len` long.
    fn field(&self, r: &Row, skip: usize, len: u32) -> Option<&str> {
        field(&self.text, r.text.get() + skip, len)
    }

    fn email(&self, r: &Row) -> &str {
        &self.text[r.text.span(r.email)]
    }

    fn last_name(&self, r: &Row) -> Option<&str> {
        self.field(r, usize::from(r.email), r.last_name)
    }

    fn first_name(&self, r: &Row) -> Option<&str> {
        self.field(r, usize::from(r.email) + present(r.last_name), r.first_name)
    }

    fn employee_id(&self, r: &Row) -> Option<&str> {
        self.field(r, usize::from(r.email) + present(r.last_name) + present(r.first_name), r.employee_id)
    }

    fn entry(&self, r: &Row) -> Option<&str> {
        let skip = usize::from(r.email) + present(r.last_name) + present(r.first_name) + present(r.employee_id);
        self.field(r, skip, r.entry)
    }

    fn structure(&self, r: &Row) -> &StructureId {
        &self.values.structures.values[r.structure as usize]
    }

    fn service(&self, r: &Row) -> &Option<ServiceCode> {
        &self.values.services.values[r.service as usize]
    }

    fn rights(&self, r: &Row) -> &Rights {
        &self.values.rights.values[r.rights as usize]
    }

    fn name(&self, r: &Row) -> PersonName {
        PersonName { last_name: self.last_name(r).map(Into::into), first_name: self.first_name(r).map(Into::into) }
    }

    fn location(&self, r: &Row) -> Location {
        Location {
            file: self.values.files[r.file as usize].clone(),
            row: (r.row != NONE).then_some(u64::from(r.row)),
            column: None,
            entry: self.entry(r).map(Arc::from),
        }
    }

    /// The person a group of rows (one key, in arrival order) describes:
    /// the first name given, the first leaver row, each service's first row;
    /// rights are the union of the rows.
    fn person(&self, group: &[Row]) -> DesiredPerson {
        let mut person = DesiredPerson::default();
        for r in group {
            if person.name.is_empty() {
                person.name = self.name(r);
            }
            if r.left != 0 {
                if person.left.is_none() {
                    let why = self.values.left.values[r.left as usize - 1].clone();
                    person.left = Some(Box::new((why, self.location(r))));
                }
                continue;
            }
            let (service, rights) = (self.service(r), self.rights(r));
            match person.placements.get_mut(service) {
                Some(entry) => entry.0 = entry.0.union(rights),
                None => {
                    person.placements.insert(service.clone(), (rights.clone(), self.location(r)));
                }
            }
        }
        person
    }

    fn key(&self, r: &Row) -> Key {
        (self.structure(r).clone(), Email::from_normalized(self.email(r)))
    }
}

/// The desired state of a run as its sources are read: rows go in one by
/// one, in source order; [`DesiredBuilder::finish`] sorts them by person.
#[derive(Debug, Clone, Default)]
pub struct DesiredBuilder {
    rows: Rows,
    protected: BTreeSet<Email>,
    anomalies: Vec<Anomaly>,
}

/// The desired state of a run: what all its sources say, one entry per
/// person and structure, in (structure, e-mail) order.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Sorted by (structure, e-mail, arrival).
    rows: Rows,
    /// Where each person's rows start in `rows.rows`, then the end.
    people: Vec<u32>,
    /// People a rejected or contradictory row names: nothing may detach them.
    pub protected: BTreeSet<Email>,
    pub anomalies: Vec<Anomaly>,
    /// For each employee id, its first row (an index into `rows.rows`), sorted by id.
    ids: Vec<u32>,
}

impl DesiredBuilder {
    pub fn add(&mut self, mapped: Mapped) {
        match mapped {
            Mapped::Rejected { email, anomalies } => {
                self.protected.extend(email);
                self.anomalies.extend(anomalies);
            }
            Mapped::Row(row) => self.rows.push(row),
        }
    }

    /// The anomalies alone (mapping and employee-id conflicts), for a run
    /// whose source was rejected: nothing is diffed, so the rows are not sorted.
    pub fn into_anomalies(self) -> Vec<Anomaly> {
        let DesiredBuilder { rows, mut anomalies, .. } = self;
        let (by_email, ties, _) = email_order(&rows);
        anomalies.extend(email_conflicts(&rows, &by_email, &ties).anomalies);
        anomalies.extend(id_conflicts(&rows).0.anomalies);
        anomalies
    }

    /// Sorts the rows by (structure, e-mail, arrival) and checks that each
    /// employee id belongs to one address and each address to one id.
    pub fn finish(self) -> Desired {
        let DesiredBuilder { mut rows, mut protected, mut anomalies } = self;
        // Two sorts, side by side (they only read the rows, in arrival order:
        // a row's index is its arrival): by e-mail, which gives both the
        // address check and the person order; by employee id for the id check.
        // One text sort each: on two cores a million rows take half the time.
        let ((by_id, ids), (by_address, (mut order, same))) = std::thread::scope(|scope| {
            let checking = scope.spawn(|| id_conflicts(&rows));
            let (by_email, ties, rank) = email_order(&rows);
            // The address check reads the tied rows only (people with several
            // rows); the order by structure reads every row, at random.
            let conflicts = email_conflicts(&rows, &by_email, &ties);
            let order = by_structure(&rows, &by_email, &ties, &rank);
            // A panic there is a bug, carried on as if it had happened here.
            (checking.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), (conflicts, order))
        });
        // As one check over the addresses then the ids would have found them.
        for found in [by_address, by_id] {
            protected.extend(found.protected);
            anomalies.extend(found.anomalies);
        }
        // Row indexes change: the ids follow them.
        let mut moved_to = vec![0u32; rows.rows.len()];
        for (to, from) in order.iter().enumerate() {
            moved_to[*from as usize] = to as u32;
        }
        let ids = ids.into_iter().map(|i| moved_to[i as usize]).collect();
        drop(moved_to);
        permute(&mut rows.rows, &mut order);

        let mut people: Vec<u32> = same.iter().enumerate().filter(|(_, same)| !**same).map(|(i, _)| i as u32).collect();
        people.push(rows.rows.len() as u32);
        Desired { rows, people, protected, anomalies, ids }
    }
}

/// Every row's index in (e-mail, arrival) order, the ties (rows of one
/// address), and each structure's rank.
fn email_order(rows: &Rows) -> (Vec<Pair>, Vec<Range<u32>>, Vec<u32>) {
    let mut order: Vec<Pair> = (0..rows.rows.len() as u32).map(|i| Pair::new(0, i)).collect();
    let ties = sort::by_text(&mut order, 0, |i| rows.email(&rows.rows[i as usize]).as_bytes());
    (order, ties, ranks(&rows.values.structures.values))
}

/// For each position of a sorted sequence of `len`, the first position of
/// its text: its tie's start, or itself.
fn first_of_text(len: usize, ties: &[Range<u32>]) -> impl Iterator<Item = u32> + '_ {
    let mut ties = ties.iter().peekable();
    (0..len as u32).map(move |k| {
        while ties.next_if(|t| t.end <= k).is_some() {}
        match ties.peek() {
            Some(t) if t.start <= k => t.start,
            _ => k,
        }
    })
}

/// The rows' indexes in (structure, e-mail, arrival) order, from the
/// (e-mail, arrival) order: a stable counting sort by structure rank. Beside
/// it, whether each row is the same person as the row before it: same
/// structure, same address, which the ties tell without reading addresses.
fn by_structure(rows: &Rows, by_email: &[Pair], ties: &[Range<u32>], rank: &[u32]) -> (Vec<u32>, Vec<bool>) {
    let mut next = vec![0usize; rank.len() + 1];
    for r in &rows.rows {
        next[rank[r.structure as usize] as usize + 1] += 1;
    }
    for k in 1..next.len() {
        next[k] += next[k - 1];
    }
    let mut order = vec![0u32; by_email.len()];
    let mut same = vec![false; by_email.len()];
    // The address (first position in e-mail order) of each structure's last row so far.
    let mut last = vec![u32::MAX; rank.len()];
    for (p, address) in by_email.iter().zip(first_of_text(by_email.len(), ties)) {
        let i = p.index();
        let s = rank[rows.rows[i as usize].structure as usize] as usize;
        let slot = next[s];
        order[slot] = i;
        same[slot] = last[s] == address;
        last[s] = address;
        next[s] += 1;
    }
    (order, same)
}

/// Rows that contradict each other about who is who: every address
/// involved is protected, each row told as an anomaly.
#[derive(Debug, Default)]
struct Conflicts {
    protected: BTreeSet<Email>,
    anomalies: Vec<Anomaly>,
}

impl Conflicts {
    /// `r` contradicts `first`, an earlier row, about `other`.
    fn add(&mut self, rows: &Rows, r: &Row, other: &str, first: &Row, what: String) {
        self.protected.insert(Email::from_normalized(other));
        self.protected.insert(Email::from_normalized(rows.email(r)));
        let seen = match (rows.entry(first), first.row) {
            (Some(entry), _) => format!("entry {entry}"),
            (None, NONE) => "an earlier row".to_string(),
            (None, n) => format!("row {n}"),
        };
        self.anomalies.push(Anomaly {
            structure: Some(rows.structure(r).clone()),
            location: Some(rows.location(r)),
            email: Some(rows.email(r).to_string()),
            code: AnomalyCode::ConflictingRows,
            message: format!("{what} ({seen})"),
        });
    }
}

/// One address, one employee id: each row with an id is compared with the
/// first row with an id of its address. `by_email`: every row, in (e-mail,
/// arrival) order; `ties`: its rows of one address (an address of one row
/// cannot conflict).
fn email_conflicts(rows: &Rows, by_email: &[Pair], ties: &[Range<u32>]) -> Conflicts {
    let mut found = Conflicts::default();
    for tie in ties {
        let tied = &by_email[tie.start as usize..tie.end as usize];
        let mut with_id = tied.iter().map(|p| &rows.rows[p.index() as usize]).filter(|r| r.employee_id != NONE);
        let Some(f) = with_id.next() else { continue };
        for r in with_id {
            if rows.employee_id(r) != rows.employee_id(f) {
                let id = rows.employee_id(f).unwrap_or_default();
                found.add(rows, r, rows.email(r), f, format!("{} also has employee id {id:?}", rows.email(r)));
            }
        }
    }
    found
}

/// One employee id, one address: each row is compared with the first row of
/// its id. Rows must be in arrival order. Answers, beside the conflicts, the
/// first row of each id, in id order.
fn id_conflicts(rows: &Rows) -> (Conflicts, Vec<u32>) {
    let mut found = Conflicts::default();
    let row = |i: u32| &rows.rows[i as usize];
    let id_of = |r: &Row| rows.employee_id(r).unwrap_or_default();
    let mut ids: Vec<Pair> =
        (0..rows.rows.len() as u32).filter(|i| row(*i).employee_id != NONE).map(|i| Pair::new(0, i)).collect();
    let ties = sort::by_text(&mut ids, 0, |i| id_of(row(i)).as_bytes());
    for tie in &ties {
        let group = &ids[tie.start as usize..tie.end as usize];
        let first = row(group[0].index());
        for r in group[1..].iter().map(|p| row(p.index())).filter(|r| rows.email(r) != rows.email(first)) {
            let what = format!("employee id {:?} also belongs to {}", id_of(r), rows.email(first));
            found.add(rows, r, rows.email(first), first, what);
        }
    }
    // Sized exactly: a million of them at a plan's peak of memory.
    let mut firsts = Vec::with_capacity(ids.len() - ties.iter().map(|t| t.len() - 1).sum::<usize>());
    let first = first_of_text(ids.len(), &ties).enumerate().filter(|(k, first)| *k as u32 == *first);
    firsts.extend(first.map(|(k, _)| ids[k].index()));
    (found, firsts)
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

    /// How many people (person and structure) the sources name.
    pub fn len(&self) -> usize {
        self.people.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everyone the sources name, in (structure, e-mail) order, made one by one.
    pub fn people(&self) -> impl Iterator<Item = (Key, DesiredPerson)> + '_ {
        self.people_rows().map(|rows| rows.person())
    }

    /// Each person's rows, in (structure, e-mail) order.
    fn groups(&self) -> impl Iterator<Item = &[Row]> + '_ {
        self.groups_from(&self.people)
    }

    /// The rows of the people whose starts are `starts`, the last entry
    /// being where the last of them ends (a window of `people`).
    fn groups_from<'s>(&'s self, starts: &'s [u32]) -> impl Iterator<Item = &'s [Row]> + 's {
        starts.windows(2).map(|w| &self.rows.rows[w[0] as usize..w[1] as usize])
    }

    /// For each of these addresses, the structure of the first person with
    /// it and the location of their first placement: where an anomaly about
    /// the address points. One pass, however many addresses.
    pub fn first_places<'a>(&self, mut emails: BTreeSet<&'a str>) -> HashMap<&'a str, (StructureId, Option<Location>)> {
        let mut places = HashMap::new();
        for group in self.groups() {
            if emails.is_empty() {
                break;
            }
            let Some(email) = emails.take(self.rows.email(&group[0])) else { continue };
            let first = self.rows.person(group).placements.values().next().map(|(_, l)| l.clone());
            places.insert(email, (self.rows.structure(&group[0]).clone(), first));
        }
        places
    }

    /// Employee ids seen with the address of their first row, sorted by id,
    /// for the next run's changed-address check.
    pub fn identities(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.ids.iter().map(|i| self.identity(*i))
    }

    /// The address [`identities`](Self::identities) pairs with employee id
    /// `id`, found by binary search.
    pub fn address_of_id(&self, id: &str) -> Option<&str> {
        let k = self.ids.binary_search_by(|i| self.identity(*i).0.cmp(id)).ok()?;
        Some(self.identity(self.ids[k]).1)
    }

    /// Row `i`'s (employee id, address).
    fn identity(&self, i: u32) -> (&str, &str) {
        let r = &self.rows.rows[i as usize];
        (self.rows.employee_id(r).unwrap_or_default(), self.rows.email(r))
    }
}

/// One person's rows as the state holds them, in arrival order: the diff
/// compares them with the current state before making anything of them
/// (most people are unchanged, and then nothing needs to be made).
#[derive(Clone, Copy)]
pub struct DesiredRows<'a> {
    rows: &'a Rows,
    group: &'a [Row],
}

impl<'a> DesiredRows<'a> {
    pub fn structure(&self) -> &'a StructureId {
        self.rows.structure(&self.group[0])
    }

    pub fn email(&self) -> &'a str {
        self.rows.email(&self.group[0])
    }

    /// Each row's (service, rights), or `None` for a row saying the person left.
    pub fn placements(&self) -> impl Iterator<Item = Option<(&'a Option<ServiceCode>, &'a Rights)>> + 'a {
        let rows = self.rows;
        self.group.iter().map(move |r| (r.left == 0).then(|| (rows.service(r), rows.rights(r))))
    }

    /// The person these rows describe, as [`Desired::people`] makes it.
    pub fn person(&self) -> (Key, DesiredPerson) {
        (self.rows.key(&self.group[0]), self.rows.person(self.group))
    }
}

impl Desired {
    /// Everyone the sources name, in (structure, e-mail) order, as their rows.
    pub fn people_rows(&self) -> impl Iterator<Item = DesiredRows<'_>> + '_ {
        self.people_rows_in(0..self.len())
    }

    /// The (structure, e-mail) of the `i`-th person.
    pub fn person_key(&self, i: usize) -> (&StructureId, &str) {
        let r = &self.rows.rows[self.people[i] as usize];
        (self.rows.structure(r), self.rows.email(r))
    }

    /// [`Desired::people_rows`] of the people in `people` (indexes in that order).
    pub fn people_rows_in(&self, people: std::ops::Range<usize>) -> impl Iterator<Item = DesiredRows<'_>> + '_ {
        // The people's starts, then the end of the last.
        let starts = &self.people[people.start..people.end + usize::from(!self.people.is_empty())];
        // A person's text sits where their first row arrived: read in key
        // order, each address is a random read (a cache miss at a million
        // rows), which the diff would wait for person after person. Touched
        // BATCH people at a time in a tight loop (first and last byte: an
        // address may straddle two cache lines), the reads are independent
        // and under way together; a 1M-row diff takes ~0.1 s less.
        const BATCH: usize = 16;
        let text = self.rows.text.as_bytes();
        self.groups_from(starts).enumerate().map(move |(i, group)| {
            if i % BATCH == 0 {
                let mut touched = 0u8;
                for start in starts.iter().skip(i).take(BATCH) {
                    if let Some(r) = self.rows.rows.get(*start as usize) {
                        let first = r.text.get();
                        let last = first + usize::from(r.email).saturating_sub(1);
                        touched ^= text.get(first).copied().unwrap_or_default();
                        touched ^= text.get(last).copied().unwrap_or_default();
                    }
                }
                std::hint::black_box(touched);
            }
            DesiredRows { rows: &self.rows, group }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{IdentifierType, Placement};

    fn sid(s: &str) -> StructureId {
        StructureId::parse(IdentifierType::Siret, s).unwrap()
    }

    /// What the compact state must answer: each row folded into its person
    /// in arrival order (first name, first leaver row and each service's
    /// first row win; rights are the union), people in key order.
    fn model(rows: &[SourceRow]) -> Vec<(Key, DesiredPerson)> {
        let mut people: BTreeMap<Key, DesiredPerson> = BTreeMap::new();
        for r in rows {
            let p = people.entry((r.structure.clone(), r.email.clone())).or_default();
            if p.name.is_empty() {
                p.name = r.name.clone();
            }
            match &r.left {
                Some(why) => {
                    if p.left.is_none() {
                        p.left = Some(Box::new((why.clone(), r.location.clone())));
                    }
                }
                None => match p.placements.get_mut(&r.placement.service) {
                    Some(e) => e.0 = e.0.union(&r.placement.rights),
                    None => {
                        p.placements
                            .insert(r.placement.service.clone(), (r.placement.rights.clone(), r.location.clone()));
                    }
                },
            }
        }
        people.into_iter().collect()
    }

    /// Rows from small alphabets, so that people repeat, addresses share
    /// their first 8 bytes and structures interleave.
    fn rows() -> impl Strategy<Value = Vec<SourceRow>> {
        let structures = ["73282932000074", "12345678200010", "31840258547688"];
        let row = (
            0..3usize,
            0..6usize,
            prop::option::of(0..3usize),
            0..3usize,
            prop::option::of(0..2usize),
            prop::option::of(0..2usize),
            prop::option::of("[a-c]{0,2}"),
            any::<bool>(),
        );
        prop::collection::vec(row, 0..40).prop_map(move |rows| {
            let file = SourceFile::new("hr", "hr.csv", None);
            rows.into_iter()
                .enumerate()
                .map(|(i, (s, e, service, rights, left, id, last, dn))| {
                    let rights =
                        ["", "factures:consultation", "factures:modification,engagements:consultation"][rights];
                    SourceRow {
                        email: Email::parse(&format!("marie.martin{e}@x.fr")).unwrap(),
                        name: PersonName { last_name: last.map(Into::into), first_name: None },
                        employee_id: id.map(|i| format!("E{i}").into()),
                        structure: sid(structures[s]),
                        placement: Placement {
                            service: service.map(|v| ServiceCode::parse(["COMPTA", "ACHATS", "RH"][v]).unwrap()),
                            rights: Rights::parse(rights).unwrap(),
                        },
                        left: left.map(|l| if l == 0 { LeftWhy::Disabled } else { LeftWhy::Status("Sorti".into()) }),
                        location: Location {
                            file: file.clone(),
                            row: (!dn).then_some(i as u64 + 2),
                            column: None,
                            entry: dn.then(|| Arc::from(format!("uid=p{i},dc=x").as_str())),
                        },
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn people_are_the_rows_folded_in_arrival_order(rows in rows()) {
            let desired = Desired::from_rows(rows.iter().cloned().map(Mapped::Row));
            let people: Vec<(Key, DesiredPerson)> = desired.people().collect();
            prop_assert_eq!(desired.len(), people.len());
            prop_assert_eq!(people, model(&rows));
            // Each id once, with the address of its first row, sorted by id.
            let mut first: BTreeMap<&str, &str> = BTreeMap::new();
            for r in &rows {
                if let Some(id) = &r.employee_id {
                    first.entry(&**id).or_insert(r.email.as_str());
                }
            }
            let ids: Vec<(&str, &str)> = desired.identities().collect();
            prop_assert_eq!(ids, first.into_iter().collect::<Vec<_>>());
            // The conflicts, found by comparing every row with every other.
            let (protected, anomalies) = conflicts_model(&rows);
            let found: Vec<(String, String)> =
                desired.anomalies.iter().map(|a| (a.email.clone().unwrap_or_default(), a.message.clone())).collect();
            prop_assert_eq!(found, anomalies);
            prop_assert_eq!(desired.protected.iter().map(|e| e.as_str().to_string()).collect::<BTreeSet<_>>(), protected);
        }
    }

    #[test]
    fn each_position_knows_the_first_of_its_text() {
        /// `ties` as (start, end) pairs.
        #[track_caller]
        fn check(len: usize, ties: &[(u32, u32)], expect: &[u32]) {
            let ties: Vec<Range<u32>> = ties.iter().map(|(start, end)| *start..*end).collect();
            assert_eq!(first_of_text(len, &ties).collect::<Vec<_>>(), expect);
        }
        check(0, &[], &[]);
        check(3, &[], &[0, 1, 2]);
        check(5, &[(1, 3)], &[0, 1, 1, 3, 4]);
        check(6, &[(0, 2), (2, 5)], &[0, 0, 2, 2, 2, 5]);
        check(4, &[(2, 4)], &[0, 1, 2, 2]);
    }

    /// Each row with an id against the first row with an id of its address,
    /// then each row against the first row of its id: addresses, then ids,
    /// in byte order, rows in arrival order; (row's address, message).
    fn conflicts_model(rows: &[SourceRow]) -> (BTreeSet<String>, Vec<(String, String)>) {
        let seen = |r: &SourceRow| match (&r.location.entry, r.location.row) {
            (Some(entry), _) => format!("entry {entry}"),
            (None, Some(n)) => format!("row {n}"),
            (None, None) => "an earlier row".to_string(),
        };
        let mut protected = BTreeSet::new();
        let mut anomalies = Vec::new();
        let with_id: Vec<&SourceRow> = rows.iter().filter(|r| r.employee_id.is_some()).collect();
        let mut addresses: Vec<&str> = with_id.iter().map(|r| r.email.as_str()).collect();
        addresses.sort_unstable();
        addresses.dedup();
        for address in addresses {
            let of: Vec<&&SourceRow> = with_id.iter().filter(|r| r.email.as_str() == address).collect();
            let first = of[0];
            for r in of.iter().skip(1).filter(|r| r.employee_id != first.employee_id) {
                let id = first.employee_id.as_deref().unwrap_or_default();
                anomalies
                    .push((address.to_string(), format!("{address} also has employee id {id:?} ({})", seen(first))));
                protected.extend([address.to_string(), r.email.as_str().to_string()]);
            }
        }
        let mut ids: Vec<&str> = with_id.iter().filter_map(|r| r.employee_id.as_deref()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let of: Vec<&&SourceRow> = with_id.iter().filter(|r| r.employee_id.as_deref() == Some(id)).collect();
            let first = of[0];
            for r in of.iter().skip(1).filter(|r| r.email != first.email) {
                let message = format!("employee id {id:?} also belongs to {} ({})", first.email.as_str(), seen(first));
                anomalies.push((r.email.as_str().to_string(), message));
                protected.extend([first.email.as_str().to_string(), r.email.as_str().to_string()]);
            }
        }
        (protected, anomalies)
    }
}
