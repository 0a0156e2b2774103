//! CSV output: UTF-8 with a BOM, the configured delimiter, CRLF line ends
//! (what Excel expects), quoting only where needed, every text cell neutralised.

use std::{io::Write, path::Path};

use super::{
    ReportError,
    table::{Table, TableSource},
    write_atomic,
};

const BOM: &[u8] = "\u{feff}".as_bytes();

/// Writes `table` to `path` atomically, with a BOM.
pub fn write_csv(path: &Path, table: &Table, delimiter: u8) -> Result<(), ReportError> {
    write_csv_source(path, table, delimiter)
}

/// Same as [`write_csv`] for rows built on the fly.
pub fn write_csv_source(path: &Path, source: &dyn TableSource, delimiter: u8) -> Result<(), ReportError> {
    write_atomic(path, |file| write_rows(file, source, delimiter, true, path))
}

/// Writes `table` to any writer (stdout for the CLI); errors name `<output>`.
pub fn write_csv_to<W: Write>(w: W, table: &Table, delimiter: u8, bom: bool) -> Result<(), ReportError> {
    write_rows(w, table, delimiter, bom, Path::new("<output>"))
}

fn write_rows<W: Write>(
    mut w: W,
    source: &dyn TableSource,
    delimiter: u8,
    bom: bool,
    path: &Path,
) -> Result<(), ReportError> {
    let io = |e| ReportError::Io { path: path.to_path_buf(), source: e };
    if bom {
        w.write_all(BOM).map_err(io)?;
    }
    let mut out = csv::WriterBuilder::new().delimiter(delimiter).terminator(csv::Terminator::CRLF).from_writer(w);
    let csv_err = |e: csv::Error| {
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(e) => io(e),
            _ => ReportError::Csv { path: path.to_path_buf(), message },
        }
    };
    let headers = source.headers();
    out.write_record(headers.iter().map(|h| super::neutralize(h).into_owned())).map_err(csv_err)?;
    for (i, row) in source.rows().enumerate() {
        ReportError::check_row(path, source.name(), i + 1, headers.len(), row.len())?;
        for v in row.iter() {
            out.write_field(v.to_text().as_bytes()).map_err(csv_err)?;
        }
        out.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    out.flush().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Value;

    fn render(table: &Table, delimiter: u8, bom: bool) -> String {
        let mut buf = Vec::new();
        write_csv_to(&mut buf, table, delimiter, bom).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn quoting_neutralising_and_line_ends() {
        let mut t = Table::new("T", ["name", "n", "note"]);
        t.rows.push(vec!["a;b".into(), Value::Int(-3), "say \"hi\"".into()]);
        t.rows.push(vec!["=1+1".into(), Value::Empty, "two\nlines".into()]);
        t.rows.push(vec!["-3".into(), Value::from(0u64), "".into()]);
        let expect = "name;n;note\r\n\"a;b\";-3;\"say \"\"hi\"\"\"\r\n'=1+1;;\"two\nlines\"\r\n'-3;0;\r\n";
        assert_eq!(render(&t, b';', false), expect);
        assert_eq!(render(&t, b';', true), format!("\u{feff}{expect}"));
        // With a comma delimiter, the semicolon no longer needs quotes.
        assert!(render(&t, b',', false).starts_with("name,n,note\r\na;b,-3,"));
    }

    #[test]
    fn a_misshapen_row_is_an_error_not_a_shifted_column() {
        let mut t = Table::new("Things", ["a", "b"]);
        t.rows.push(vec!["x".into()]);
        let err = write_csv_to(Vec::new(), &t, b';', true).unwrap_err();
        assert!(matches!(err, ReportError::RowLength { row: 1, expected: 2, got: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("table Things, row 1"), "{err}");
    }
}
