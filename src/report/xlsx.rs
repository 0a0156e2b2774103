//! XLSX output with rust_xlsxwriter in constant-memory mode: each row goes
//! to a temporary file as it is written, so a million-row sheet stays small
//! in RAM. Rows are therefore written strictly in order.

use std::{collections::HashSet, path::Path};

use chrono::{DateTime, Utc};
use rust_xlsxwriter::{ColNum, DocProperties, ExcelDateTime, Format, RowNum, Workbook, Worksheet, XlsxError};

use super::{
    ReportError, parent_dir,
    table::{Table, TableSource, Value, neutralize},
    write_atomic,
};

/// Rows looked at to size the columns.
const WIDTH_SAMPLE_ROWS: usize = 1000;
const MAX_COLUMN_WIDTH: usize = 60;
const MIN_COLUMN_WIDTH: usize = 6;
/// Excel's limits.
const MAX_SHEET_NAME: usize = 31;
const MAX_CELL_CHARS: usize = 32_767;
const MAX_ROWS: usize = 1_048_576;
/// Integers beyond 2^53 lose digits as Excel numbers: they are written as text.
const MAX_EXACT_INT: u64 = 1 << 53;

/// Writes one sheet per table, in order, atomically; the workbook is
/// created now.
pub fn write_xlsx(path: &Path, tables: &[Table]) -> Result<(), ReportError> {
    let sources: Vec<&(dyn TableSource + Sync)> = tables.iter().map(|t| t as &(dyn TableSource + Sync)).collect();
    write_xlsx_sources(path, &sources, Utc::now())
}

/// Same as [`write_xlsx`] for rows built on the fly.
///
/// A source with more rows than a sheet holds (1,048,575 under the header)
/// goes on over as many sheets as it takes, `Changes`, `Changes (2)`...,
/// each with the header: a first adoption of more than a million people
/// raises as many requests, and its run must still have its reports.
///
/// `created_at` is the workbook's creation date (`docProps/core.xml`), the
/// only thing in it that the rows do not decide: the same rows and date
/// give the same bytes.
pub fn write_xlsx_sources(
    path: &Path,
    sources: &[&(dyn TableSource + Sync)],
    created_at: DateTime<Utc>,
) -> Result<(), ReportError> {
    write_with_limit(path, sources, MAX_ROWS, created_at)
}

/// The workbook's deflate level: Excel's own. The default, 6, deflated a
/// plan's 32 MB Changes sheet in 0.22 s on one core, the last step of a
/// million-row plan; at 3 the reports take 0.10 s less and the file is 13%
/// larger (level 1: 0.15 s less, 64% larger). BENCHMARKS.md, session 15.
const ZIP_LEVEL: u8 = 3;

/// [`write_xlsx_sources`] with sheets of at most `max_rows` rows, the
/// header's included (the tests choose).
fn write_with_limit(
    path: &Path,
    sources: &[&(dyn TableSource + Sync)],
    max_rows: usize,
    created_at: DateTime<Utc>,
) -> Result<(), ReportError> {
    let xlsx_err = |context: String| {
        move |e: XlsxError| ReportError::Xlsx { path: path.to_path_buf(), message: format!("{context}: {e}") }
    };
    let created = ExcelDateTime::from_timestamp(created_at.timestamp()).map_err(xlsx_err("creation date".into()))?;
    // rust_xlsxwriter (0.96 to 0.102) unwraps the flush of a constant-memory sheet's
    // row file before packaging it: on a full disk it panics instead of
    // returning the error. Caught here, it is this file's error; the
    // temporary files go with their handles.
    let written = crate::caught::panics(|| {
        write_atomic(path, |file| {
            let mut workbook = Workbook::new();
            // Keep the row buffers next to the report rather than in a /tmp that
            // may live in RAM.
            workbook.set_tempdir(parent_dir(path)).map_err(xlsx_err("temporary directory".into()))?;
            workbook.set_zip_compression_level(ZIP_LEVEL);
            workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
            let bold = Format::new().set_bold();
            let mut names = HashSet::new();
            let mut tables = Vec::with_capacity(sources.len());
            for source in sources {
                // Continued sheets are named as duplicates are: "Changes (2)".
                let parts = source.row_count().map_or(1, |n| n.div_ceil(max_rows - 1).max(1));
                let mut sheets = Vec::with_capacity(parts);
                for _ in 0..parts {
                    let name = sheet_name(source.name(), &mut names);
                    let mut sheet =
                        workbook.new_worksheet_with_constant_memory().map_err(xlsx_err(format!("sheet {name}")))?;
                    sheet.set_name(&name).map_err(xlsx_err(format!("sheet {name}")))?;
                    sheets.push((sheet, name));
                }
                tables.push((sheets, *source));
            }
            // Each table's rows become XML on a thread of its own (the changes
            // and the pending requests are tens of thousands of rows each after a
            // run); the workbook takes them back in order.
            let written: Vec<Result<Vec<Worksheet>, ReportError>> = std::thread::scope(|scope| {
                let threads: Vec<_> = tables
                    .into_iter()
                    .map(|(mut sheets, source)| {
                        let bold = &bold;
                        scope.spawn(move || {
                            write_table(&mut sheets, source, bold, path, max_rows)
                                .map(|()| sheets.into_iter().map(|(sheet, _)| sheet).collect())
                        })
                    })
                    .collect();
                // A panic there is a bug, carried on as if it had happened here.
                threads.into_iter().map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            });
            for sheets in written {
                for sheet in sheets? {
                    workbook.push_worksheet(sheet);
                }
            }
            workbook.save_to_writer(std::io::BufWriter::new(file)).map_err(xlsx_err("saving".into()))
        })
    });
    written.unwrap_or_else(|why| {
        Err(ReportError::Xlsx { path: path.to_path_buf(), message: format!("the XLSX writer failed: {why}") })
    })
}

/// Writes `source` into `sheets`, `max_rows - 1` rows under the header of each.
fn write_table(
    sheets: &mut [(Worksheet, String)],
    source: &dyn TableSource,
    bold: &Format,
    path: &Path,
    max_rows: usize,
) -> Result<(), ReportError> {
    let err = |name: &str, row: usize, e: XlsxError| ReportError::Xlsx {
        path: path.to_path_buf(),
        message: format!("sheet {name}, row {row}: {e}"),
    };
    let headers = source.headers();
    if headers.is_empty() {
        return Ok(());
    }
    let first = sheets.first().map_or(source.name(), |(_, name)| name.as_str()).to_string();
    let last_col = ColNum::try_from(headers.len() - 1)
        .map_err(|_| err(&first, 1, XlsxError::ParameterError(format!("{} columns", headers.len()))))?;

    // Widths must be known up front: written rows are gone from memory.
    // Header width leaves room for the filter arrow.
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count() + 3).collect();
    for row in source.rows().take(WIDTH_SAMPLE_ROWS) {
        for (w, v) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(v.display_len() + 1);
        }
    }
    for (sheet, name) in sheets.iter_mut() {
        for (col, w) in (0..=last_col).zip(&widths) {
            let width = (*w).clamp(MIN_COLUMN_WIDTH, MAX_COLUMN_WIDTH) as f64;
            sheet.set_column_width(col, width).map_err(|e| err(name, 1, e))?;
        }
        sheet.set_freeze_panes(1, 0).map_err(|e| err(name, 1, e))?;
        for (col, h) in (0..=last_col).zip(&headers) {
            sheet.write_string_with_format(0, col, neutralize(h), bold).map_err(|e| err(name, 1, e))?;
        }
    }
    let per_sheet = max_rows - 1;
    let mut last_rows: Vec<RowNum> = vec![0; sheets.len()];
    for (i, row) in source.rows().enumerate() {
        // Only a source that said fewer rows than it gives runs out of sheets.
        let Some((sheet, name)) = sheets.get_mut(i / per_sheet) else {
            let message = format!("sheet {first}: more than {} data rows, Excel's limit", per_sheet * sheets.len());
            return Err(ReportError::Xlsx { path: path.to_path_buf(), message });
        };
        let at = i % per_sheet + 1;
        ReportError::check_row(path, source.name(), i + 1, headers.len(), row.len())?;
        // Fits: `at` < max_rows ≤ Excel's limit.
        let r = at as RowNum;
        last_rows[i / per_sheet] = r;
        for (col, value) in (0..=last_col).zip(row.iter()) {
            write_cell(sheet, r, col, value).map_err(|e| err(name, at + 1, e))?;
        }
    }
    for ((sheet, name), last_row) in sheets.iter_mut().zip(last_rows) {
        sheet.autofilter(0, 0, last_row, last_col).map_err(|e| err(name, 1, e))?;
    }
    Ok(())
}

fn write_cell(sheet: &mut Worksheet, row: RowNum, col: ColNum, value: &Value) -> Result<(), XlsxError> {
    match value {
        Value::Empty => {}
        Value::Int(i) if i.unsigned_abs() <= MAX_EXACT_INT => {
            // Exact: |i| ≤ 2^53.
            sheet.write_number(row, col, *i as f64)?;
        }
        Value::Int(i) => {
            sheet.write_string(row, col, i.to_string())?;
        }
        Value::Text(s) if s.is_empty() => {}
        Value::Text(_) => {
            // Same text as the CSV cell, `'` included; never a formula. Only
            // text beyond Excel's cell limit is cut (the CSV keeps it whole).
            let text = value.to_text();
            let text = match text.char_indices().nth(MAX_CELL_CHARS) {
                Some((cut, _)) => &text[..cut],
                None => &text,
            };
            sheet.write_string(row, col, text)?;
        }
    }
    Ok(())
}

/// A sheet name Excel accepts: no `[]:*?/\`, no leading or trailing `'`, at
/// most 31 characters, not empty, unique (case-insensitively) in the workbook.
fn sheet_name(raw: &str, taken: &mut HashSet<String>) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') || c.is_control() { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_matches('\'').trim();
    let base: String = if cleaned.is_empty() { "Sheet".into() } else { cleaned.chars().take(MAX_SHEET_NAME).collect() };
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.to_lowercase()) {
        let suffix = format!(" ({n})");
        let keep = MAX_SHEET_NAME - suffix.chars().count();
        name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use calamine::{Data, Reader, Xlsx, open_workbook};

    use super::*;

    #[test]
    fn cells_keep_their_type() {
        let mut t = Table::new("Cells: types?", ["n", "text"]);
        t.rows.push(vec![Value::Int(-5), "-5".into()]);
        t.rows.push(vec![Value::Int(i64::MAX), "x".repeat(40_000).into()]);
        t.rows.push(vec![Value::Empty, "".into()]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        write_xlsx(&path, &[t.clone(), t]).unwrap();
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(wb.sheet_names(), ["Cells_ types_", "Cells_ types_ (2)"]);
        let range = wb.worksheet_range("Cells_ types_").unwrap();
        let check = |cell: (u32, u32), expect: Data| assert_eq!(range.get_value(cell), Some(&expect), "{cell:?}");
        // A negative number stays a number; the same text is neutralised.
        check((1, 0), Data::Float(-5.0));
        check((1, 1), Data::String("'-5".into()));
        // Too big for an exact Excel number: kept as digits.
        check((2, 0), Data::String(i64::MAX.to_string()));
        check((2, 1), Data::String("x".repeat(MAX_CELL_CHARS)));
        // Empty cells are not written: the blank last row ends the range.
        assert_eq!(range.height(), 3);
    }

    /// Regression: a table longer than a sheet holds made the whole
    /// workbook fail ("more than 1048575 data rows, Excel's limit"), so a run
    /// raising more than a million requests could not be recorded.
    #[test]
    fn a_table_longer_than_a_sheet_goes_on_over_more_sheets_each_with_the_header() {
        let mut long = Table::new("Changes", ["n", "text"]);
        for i in 0..5 {
            long.rows.push(vec![Value::Int(i), format!("row {i}").into()]);
        }
        let short = Table::new("Changes (2)", ["other"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        let sources: Vec<&(dyn TableSource + Sync)> = vec![&long, &short];
        // Sheets of three rows: the header and two data rows.
        write_with_limit(&path, &sources, 3, Utc::now()).unwrap();
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(wb.sheet_names(), ["Changes", "Changes (2)", "Changes (3)", "Changes (2) (2)"]);
        let mut rows = Vec::new();
        for sheet in ["Changes", "Changes (2)", "Changes (3)"] {
            let range = wb.worksheet_range(sheet).unwrap();
            let texts: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(ToString::to_string).collect()).collect();
            assert_eq!(texts[0], ["n", "text"], "{sheet}");
            rows.extend(texts[1..].iter().cloned());
        }
        let want: Vec<Vec<String>> = (0..5).map(|i| vec![i.to_string(), format!("row {i}")]).collect();
        assert_eq!(rows, want);
        // A source that does not say how many rows it has keeps to one sheet.
        struct Unsized(Table);
        impl TableSource for Unsized {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn headers(&self) -> Vec<&str> {
                self.0.headers()
            }
            fn rows(&self) -> Box<dyn Iterator<Item = Cow<'_, [Value<'_>]>> + '_> {
                self.0.rows()
            }
        }
        let unsized_long = Unsized(long);
        let err = write_with_limit(&path, &[&unsized_long], 3, Utc::now()).unwrap_err().to_string();
        assert!(err.contains("sheet Changes: more than 2 data rows, Excel's limit"), "{err}");
    }

    #[test]
    fn sheet_names() {
        let mut taken = HashSet::new();
        let mut check = |raw: &str, expect: &str| assert_eq!(sheet_name(raw, &mut taken), expect, "{raw:?}");
        check("Summary", "Summary");
        check("summary", "summary (2)");
        check("a/b:c?", "a_b_c_");
        check("'quoted'", "quoted");
        check("", "Sheet");
        check("Approvals of structure 12345678200010", "Approvals of structure 12345678");
        check("Approvals of structure 12345678200011", "Approvals of structure 1234 (2)");
    }
}
