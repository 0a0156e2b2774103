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

impl Cell {
    /// True for empty cells and cells holding only white space.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => crate::domain::text::trim(s).is_empty(),
            _ => false,
        }
    }

    /// The cell as people see it. Whole floats print without `.0`, because
    /// spreadsheets store typed numbers such as SIRETs and ids as floats.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", *f as i64),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::DateTime(d) => {
                if d.time() == chrono::NaiveTime::MIN {
                    d.date().format("%Y-%m-%d").to_string()
                } else {
                    d.format("%Y-%m-%dT%H:%M:%S").to_string()
                }
            }
            Cell::Error(e) => e.clone(),
        }
    }
}

/// One data row: its 1-based row number in the file (or sheet) and one cell
/// per field, `Cell::Empty` for fields the source does not map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub row: u64,
    pub cells: [Cell; Field::COUNT],
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

    pub fn get(&self, field: Field) -> &Cell {
        &self.cells[field.index()]
    }

    pub fn set(&mut self, field: Field, cell: Cell) {
        self.cells[field.index()] = cell;
    }

    /// True when every mapped cell is blank: such rows are skipped, as HR
    /// exports often end with thousands of formatted but empty rows.
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(Cell::is_blank)
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
        assert!(Cell::Text(" \t".into()).is_blank());
        assert!(!Cell::Int(0).is_blank());
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
