//! What a reader hands to the mapping: one row's cells for the configured fields.

use std::fmt;

use chrono::NaiveDateTime;

/// The fields chorus-sync understands; sources map their columns or
/// attributes onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Email,
    LastName,
    FirstName,
    EmployeeId,
    Structure,
    Service,
    Rights,
    EndDate,
    Status,
}

impl Field {
    pub const COUNT: usize = 9;
    pub const ALL: [Field; Field::COUNT] = [
        Field::Email,
        Field::LastName,
        Field::FirstName,
        Field::EmployeeId,
        Field::Structure,
        Field::Service,
        Field::Rights,
        Field::EndDate,
        Field::Status,
    ];

    /// The configuration key naming this field (`[sources.columns] email = …`).
    pub fn key(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::LastName => "last_name",
            Field::FirstName => "first_name",
            Field::EmployeeId => "employee_id",
            Field::Structure => "structure",
            Field::Service => "service",
            Field::Rights => "rights",
            Field::EndDate => "end_date",
            Field::Status => "status",
        }
    }

    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A cell's value as the file typed it. Readers never interpret values; the
/// mapping does, so every format gets the same rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell {
    #[default]
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A cell the spreadsheet itself typed as a date or date-time.
    DateTime(NaiveDateTime),
    /// A spreadsheet error value such as `#N/A`.
    Error(String),
}

/// A [`Cell`] whose text is borrowed: what a reader hands to a record (from
/// the parser's own buffer) and what a record answers (from its text).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum CellRef<'a> {
    #[default]
    Empty,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
    Error(&'a str),
}

impl Cell {
    pub fn as_ref(&self) -> CellRef<'_> {
        match self {
            Cell::Empty => CellRef::Empty,
            Cell::Text(s) => CellRef::Text(s),
            Cell::Int(i) => CellRef::Int(*i),
            Cell::Float(f) => CellRef::Float(*f),
            Cell::Bool(b) => CellRef::Bool(*b),
            Cell::DateTime(d) => CellRef::DateTime(*d),
            Cell::Error(e) => CellRef::Error(e),
        }
    }

    /// The cell as people see it (see [`CellRef::to_text`]).
    pub fn to_text(&self) -> String {
        self.as_ref().to_text()
    }
}

impl CellRef<'_> {
    pub fn to_owned(self) -> Cell {
        match self {
            CellRef::Empty => Cell::Empty,
            CellRef::Text(s) => Cell::Text(s.to_string()),
            CellRef::Int(i) => Cell::Int(i),
            CellRef::Float(f) => Cell::Float(f),
            CellRef::Bool(b) => Cell::Bool(b),
            CellRef::DateTime(d) => Cell::DateTime(d),
            CellRef::Error(e) => Cell::Error(e.to_string()),
        }
    }

    /// True for empty cells and cells holding only white space.
    pub fn is_blank(self) -> bool {
        match self {
            CellRef::Empty => true,
            CellRef::Text(s) => crate::domain::text::trim(s).is_empty(),
            _ => false,
        }
    }

    /// The cell as people see it. Whole floats print without `.0`, because
    /// spreadsheets store typed numbers such as SIRETs and ids as floats.
    pub fn to_text(self) -> String {
        match self {
            CellRef::Empty => String::new(),
            CellRef::Text(s) | CellRef::Error(s) => s.to_string(),
            CellRef::Int(i) => i.to_string(),
            CellRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", f as i64),
            CellRef::Float(f) => f.to_string(),
            CellRef::Bool(b) => b.to_string(),
            CellRef::DateTime(d) => {
                if d.time() == chrono::NaiveTime::MIN {
                    d.date().format("%Y-%m-%d").to_string()
                } else {
                    d.format("%Y-%m-%dT%H:%M:%S").to_string()
                }
            }
        }
    }
}

impl PartialEq<Cell> for CellRef<'_> {
    fn eq(&self, other: &Cell) -> bool {
        *self == other.as_ref()
    }
}

/// A record's cell, its text (if any) a span of the record's text.
#[derive(Debug, Clone, Copy, Default)]
enum Slot {
    #[default]
    Empty,
    Text(Span),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
    Error(Span),
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// One data row: its 1-based row number in the file (or sheet) and one cell
/// per field, empty for fields the source does not map.
///
/// The cells' text sits in one buffer per record, not one `String` per cell:
/// a reader fills a million of them on one thread and the mapping reads them
/// on another, and the buffer goes back to the reader to be filled again
/// (source/pipeline.rs). One buffer a row instead of nine took 3–8% of the
/// CPU time of the reader thread of a million-row plan (BENCHMARKS.md,
/// session 15).
#[derive(Clone, Default)]
pub struct Record {
    pub row: u64,
    /// The text of the text and error cells, one after another.
    text: String,
    slots: [Slot; Field::COUNT],
    /// The directory entry (DN) the record comes from; `None` for files.
    pub entry: Option<std::sync::Arc<str>>,
    /// Set by directory readers that know the account has left (disabled,
    /// expired); it wins over end date and status.
    pub left: Option<super::change::LeftWhy>,
}

impl Record {
    pub fn new(row: u64) -> Record {
        Record { row, ..Default::default() }
    }

    /// An empty record that writes its text into `buffer` (cleared first),
    /// keeping the buffer's allocation.
    pub fn with_buffer(mut buffer: String) -> Record {
        buffer.clear();
        Record { text: buffer, ..Default::default() }
    }

    /// Empties the record to be filled again, keeping its text's allocation.
    pub fn clear(&mut self) {
        *self = Record::with_buffer(std::mem::take(&mut self.text));
    }

    /// The record's text buffer, for [`Record::with_buffer`].
    pub fn into_buffer(self) -> String {
        self.text
    }

    pub fn get(&self, field: Field) -> CellRef<'_> {
        let text = |s: Span| &self.text[s.start..s.start + s.len];
        match self.slots[field.index()] {
            Slot::Empty => CellRef::Empty,
            Slot::Text(s) => CellRef::Text(text(s)),
            Slot::Int(i) => CellRef::Int(i),
            Slot::Float(f) => CellRef::Float(f),
            Slot::Bool(b) => CellRef::Bool(b),
            Slot::DateTime(d) => CellRef::DateTime(d),
            Slot::Error(s) => CellRef::Error(text(s)),
        }
    }

    /// Sets a field, copying its text into the record. A field set twice
    /// keeps the text it had before in the buffer, unused, until the record
    /// is refilled.
    #[inline]
    pub fn set(&mut self, field: Field, cell: CellRef<'_>) {
        let mut span = |s: &str| {
            let start = self.text.len();
            self.text.push_str(s);
            Span { start, len: s.len() }
        };
        self.slots[field.index()] = match cell {
            CellRef::Empty => Slot::Empty,
            CellRef::Text(s) => Slot::Text(span(s)),
            CellRef::Int(i) => Slot::Int(i),
            CellRef::Float(f) => Slot::Float(f),
            CellRef::Bool(b) => Slot::Bool(b),
            CellRef::DateTime(d) => Slot::DateTime(d),
            CellRef::Error(s) => Slot::Error(span(s)),
        };
    }

    /// True when every mapped cell is blank: such rows are skipped, as HR
    /// exports often end with thousands of formatted but empty rows.
    pub fn is_blank(&self) -> bool {
        Field::ALL.iter().all(|f| self.get(*f).is_blank())
    }
}

/// The cells as they read, not the slots into the text.
impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<_> = Field::ALL.iter().map(|field| (field.key(), self.get(*field))).collect();
        f.debug_struct("Record")
            .field("row", &self.row)
            .field("cells", &cells)
            .field("entry", &self.entry)
            .field("left", &self.left)
            .finish()
    }
}

/// Records are equal when they say the same: their buffers may differ.
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.row == other.row
            && self.entry == other.entry
            && self.left == other.left
            && Field::ALL.iter().all(|f| self.get(*f) == other.get(*f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_text() {
        assert_eq!(Cell::Float(12345678200010.0).to_text(), "12345678200010");
        assert_eq!(Cell::Float(1.5).to_text(), "1.5");
        assert_eq!(Cell::Int(42).to_text(), "42");
        let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(Cell::DateTime(d).to_text(), "2026-10-31");
        assert!(CellRef::Text(" \t").is_blank());
        assert!(!CellRef::Int(0).is_blank());
    }

    #[test]
    fn a_record_answers_what_was_set_whatever_it_held_before() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let mut r = Record::new(3);
        r.set(Field::FirstName, CellRef::Text(&"stale text".repeat(10)));
        r.entry = Some("uid=x".into());
        r.left = Some(super::super::change::LeftWhy::Disabled);
        let capacity = r.text.capacity();
        for round in 0..3 {
            r.clear();
            assert_eq!(r, Record::new(0), "round {round}: an emptied record is as new");
            r.set(Field::Email, CellRef::Text("m@acme.fr"));
            r.set(Field::LastName, CellRef::Text("Martin"));
            // Set twice: the second value wins.
            r.set(Field::LastName, CellRef::Text("Dupont"));
            r.set(Field::Structure, CellRef::Float(12345678200010.0));
            r.set(Field::EndDate, CellRef::DateTime(d));
            r.set(Field::Status, CellRef::Error("#N/A"));
            r.set(Field::Service, CellRef::Text(""));
            assert_eq!(r.get(Field::Email), CellRef::Text("m@acme.fr"));
            assert_eq!(r.get(Field::LastName), Cell::Text("Dupont".into()));
            assert_eq!(r.get(Field::FirstName), CellRef::Empty);
            assert_eq!(r.get(Field::Structure).to_text(), "12345678200010");
            assert_eq!(r.get(Field::EndDate), CellRef::DateTime(d));
            assert_eq!(r.get(Field::Status), CellRef::Error("#N/A"));
            assert_eq!(r.get(Field::Service), CellRef::Text(""));
            assert!(!r.is_blank());
            let mut same = Record::new(0);
            for f in Field::ALL {
                same.set(f, r.get(f).to_owned().as_ref());
            }
            assert_eq!(same, r, "equal whatever their buffers hold");
            same.set(Field::Rights, CellRef::Int(1));
            assert_ne!(same, r);
        }
        assert_eq!(r.text.capacity(), capacity, "the text's allocation is kept");
        let again = Record::with_buffer(r.into_buffer());
        assert_eq!((again.text.capacity(), again), (capacity, Record::new(0)), "a buffer handed on is emptied");
    }

    #[test]
    fn field_keys_round_trip() {
        for f in Field::ALL {
            assert_eq!(Field::from_key(f.key()), Some(f));
            assert_eq!(Field::ALL[f.index()], f);
        }
    }
}

/// Which header (or attribute) feeds each field, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap(std::collections::BTreeMap<Field, String>);

impl ColumnMap {
    pub fn new(entries: impl IntoIterator<Item = (Field, String)>) -> ColumnMap {
        ColumnMap(entries.into_iter().collect())
    }

    pub fn get(&self, field: Field) -> Option<&str> {
        self.0.get(&field).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Field, &str)> {
        self.0.iter().map(|(f, h)| (*f, h.as_str()))
    }

    pub fn contains(&self, field: Field) -> bool {
        self.0.contains_key(&field)
    }
}
