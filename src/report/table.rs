//! Generic tables: a name, headers and rows of cells, written as CSV or XLSX.

use std::borrow::Cow;

/// One cell. Text is neutralised on output; integers stay numbers. Text
/// borrows what it can: a report's rows are built as they are written, and
/// most of their cells are strings the run already holds (issue 7: no
/// allocation per cell for a value that can be borrowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Value<'a> {
    #[default]
    Empty,
    Text(Cow<'a, str>),
    Int(i64),
}

impl Value<'_> {
    /// The cell as written in a CSV file (and as the text of an XLSX cell).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Empty => Cow::Borrowed(""),
            Value::Text(s) => neutralize(s),
            Value::Int(i) => Cow::Owned(i.to_string()),
        }
    }

    /// Characters shown, for column widths.
    pub(crate) fn display_len(&self) -> usize {
        match self {
            Value::Empty => 0,
            Value::Text(s) => s.chars().count() + usize::from(needs_neutralizing(s)),
            Value::Int(i) => i.to_string().len(),
        }
    }

    /// The same cell, owning its text (for a table kept in memory).
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Empty => Value::Empty,
            Value::Text(s) => Value::Text(Cow::Owned(s.into_owned())),
            Value::Int(i) => Value::Int(i),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Text(Cow::Owned(s))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Value<'a> {
        Value::Text(Cow::Borrowed(s))
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<u64> for Value<'_> {
    /// Beyond `i64::MAX` the digits are kept as text rather than wrapped.
    fn from(u: u64) -> Self {
        i64::try_from(u).map_or_else(|_| Value::Text(Cow::Owned(u.to_string())), Value::Int)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(o: Option<T>) -> Value<'a> {
        o.map_or(Value::Empty, Into::into)
    }
}

/// A table held in memory. Sheet names are cleaned up for XLSX (≤ 31
/// characters, no `[]:*?/\`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Value<'static>>>,
}

impl Table {
    pub fn new<S: Into<String>>(name: impl Into<String>, headers: impl IntoIterator<Item = S>) -> Table {
        Table { name: name.into(), headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Adds a row, its text copied: a table outlives what its rows are made from.
    pub fn push(&mut self, row: Vec<Value<'_>>) {
        self.rows.push(owned(row));
    }
}

/// A row that owns its text.
fn owned(row: Vec<Value<'_>>) -> Vec<Value<'static>> {
    row.into_iter().map(Value::into_owned).collect()
}

/// Anything that can hand out its rows in order, more than once: a `Table`,
/// or a view that builds rows on the fly so a million-row report never
/// exists in memory as cells.
pub trait TableSource {
    fn name(&self) -> &str;
    fn headers(&self) -> Vec<&str>;
    /// Called twice by the XLSX writer (column widths, then data).
    fn rows(&self) -> Box<dyn Iterator<Item = Cow<'_, [Value<'_>]>> + '_>;
    /// How many rows `rows` gives, when known: the XLSX writer continues a
    /// table longer than a sheet holds on as many sheets as it takes.
    fn row_count(&self) -> Option<usize> {
        None
    }
}

impl TableSource for Table {
    fn name(&self) -> &str {
        &self.name
    }

    fn headers(&self) -> Vec<&str> {
        self.headers.iter().map(String::as_str).collect()
    }

    fn rows(&self) -> Box<dyn Iterator<Item = Cow<'_, [Value<'_>]>> + '_> {
        Box::new(self.rows.iter().map(|r| Cow::Borrowed(r.as_slice())))
    }

    fn row_count(&self) -> Option<usize> {
        Some(self.rows.len())
    }
}

/// Builds an in-memory table from any source.
pub fn collect(source: &dyn TableSource) -> Table {
    Table {
        name: source.name().to_string(),
        headers: source.headers().into_iter().map(str::to_string).collect(),
        rows: source.rows().map(|row| owned(row.into_owned())).collect(),
    }
}

fn needs_neutralizing(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// Prefixes `'` to text a spreadsheet could run as a formula (DESIGN.md §8):
/// anything starting with `=`, `+`, `-`, `@`, tab or carriage return.
pub fn neutralize(s: &str) -> Cow<'_, str> {
    if needs_neutralizing(s) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralize_table() {
        let check = |input: &str, expect: &str| assert_eq!(neutralize(input), expect, "neutralize({input:?})");
        check("=1+1", "'=1+1");
        check("+33 1 23 45 67 89", "'+33 1 23 45 67 89");
        check("-x", "'-x");
        check("@SUM(A1:A2)", "'@SUM(A1:A2)");
        check("\tx", "'\tx");
        check("\rx", "'\rx");
        check("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")");
        check("a=b", "a=b");
        check("", "");
        check(" =1", " =1");
        check("'=1", "'=1");
        check("Élodie", "Élodie");
    }

    #[test]
    fn untouched_text_is_borrowed() {
        assert!(matches!(neutralize("a=b"), Cow::Borrowed(_)));
    }

    #[test]
    fn values_as_text() {
        let check = |v: Value, expect: &str| assert_eq!(v.to_text(), expect, "{v:?}");
        check(Value::Int(-5), "-5");
        check(Value::from(-5i64), "-5");
        check(Value::Text("-5".into()), "'-5");
        check(Value::from(42u64), "42");
        check(Value::from(u64::MAX), "18446744073709551615");
        check(Value::from(None::<&str>), "");
        check(Value::from(Some("x")), "x");
        check(Value::from(Some(7i64)), "7");
        check(Value::Empty, "");
    }

    #[test]
    fn display_len_counts_the_prefix() {
        assert_eq!(Value::from("=1").display_len(), 3);
        assert_eq!(Value::from("Élodie").display_len(), 6);
        assert_eq!(Value::Int(-120).display_len(), 4);
    }
}
