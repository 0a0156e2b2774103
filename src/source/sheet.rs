//! Workbooks through calamine: xlsx/xlsm/xlsb streamed cell by cell (an HR
//! export may have a million rows), xls/ods as a range (calamine has no
//! streaming reader for them).

use std::{
    fs::File,
    io::{BufReader, Read, Seek},
};

use calamine::{Data, DataRef, ExcelDateTime, Ods, Reader, Sheet, SheetType, SheetVisible, Xls, Xlsb, Xlsx};

use super::{
    Format, SourceError, TableSpec,
    assemble::{Assembler, Sink, Table},
    limits,
};
use crate::{core::record::CellRef, domain::text::fold};

/// Reads the sheet `spec` names; returns the sheet's name and what was found.
pub(super) fn read(
    spec: &TableSpec<'_>,
    format: Format,
    origin: &str,
    sink: &mut Sink<'_>,
) -> Result<(String, Table), SourceError> {
    // Last line of defence: a parser panic on a malformed workbook becomes
    // this file's error instead of taking the daemon down. Nothing shared is
    // left half-updated: the sink only collects records of a read that fails.
    // (Found by fuzzing: calamine 0.38 slices past the end of a truncated
    // OLE2 sector chain; see tests/data/bad/fuzz-xls-cfb-sector-past-end.xls.)
    crate::caught::panics(|| read_workbook(spec, format, origin, sink)).unwrap_or_else(|why| {
        Err(SourceError::Spreadsheet {
            path: origin.to_string(),
            message: format!("the file is malformed (the spreadsheet parser failed on it: {why})"),
        })
    })
}

fn read_workbook(
    spec: &TableSpec<'_>,
    format: Format,
    origin: &str,
    sink: &mut Sink<'_>,
) -> Result<(String, Table), SourceError> {
    let file = File::open(spec.path).map_err(|e| SourceError::io(origin, e))?;
    let rs = BufReader::new(file);
    match format {
        Format::Xlsx | Format::Xlsm => {
            let wb = Xlsx::new(rs).map_err(|e| failed(origin, &e))?;
            read_streamed(wb, xlsx_cells::xlsx, spec, origin, sink)
        }
        Format::Xlsb => {
            let wb = Xlsb::new(rs).map_err(|e| failed(origin, &e))?;
            read_streamed(wb, xlsx_cells::xlsb, spec, origin, sink)
        }
        Format::Xls => {
            super::ole2::check(spec.path, origin)?;
            let wb = Xls::new(rs).map_err(|e| failed(origin, &explain_xls(e, spec)))?;
            read_range(wb, spec, origin, sink)
        }
        Format::Ods => {
            let wb = Ods::new(rs).map_err(|e| failed(origin, &e))?;
            read_range(wb, spec, origin, sink)
        }
        Format::Csv => {
            Err(SourceError::UnknownFormat { path: origin.to_string(), why: "csv is not a workbook".into() })
        }
    }
}

/// calamine's error reading `origin`, as this file's error.
fn failed(origin: &str, e: &dyn std::fmt::Display) -> SourceError {
    SourceError::Spreadsheet { path: origin.to_string(), message: e.to_string() }
}

/// xlsx and xlsb, cell by cell: `stream` is the `xlsx-cells` crate's loop
/// for the format (why a crate of its own: its lib.rs).
fn read_streamed<RS: Read + Seek, R: Reader<RS>, E: std::fmt::Display>(
    mut wb: R,
    stream: fn(&mut R, &str, &mut xlsx_cells::Each<'_>) -> Result<(), E>,
    spec: &TableSpec<'_>,
    origin: &str,
    sink: &mut Sink<'_>,
) -> Result<(String, Table), SourceError> {
    let name = pick_sheet(wb.sheets_metadata(), spec, origin)?;
    let mut asm = Assembler::new(origin, Some(&name), spec.columns, spec.required, spec.limits);
    let mut stopped = None;
    stream(&mut wb, &name, &mut |row, col, value| {
        if asm.wants(col)
            && let Err(e) = with_ref(value, |cell| asm.push(u64::from(row) + 1, col, cell, sink))
        {
            stopped = Some(e);
            return false;
        }
        true
    })
    .map_err(|e| failed(origin, &e))?;
    if let Some(e) = stopped {
        return Err(e);
    }
    Ok((name.clone(), asm.finish(sink)?))
}

fn read_range<RS: Read + Seek, R: Reader<RS>>(
    mut wb: R,
    spec: &TableSpec<'_>,
    origin: &str,
    sink: &mut Sink<'_>,
) -> Result<(String, Table), SourceError>
where
    R::Error: std::fmt::Display,
{
    let name = pick_sheet(wb.sheets_metadata(), spec, origin)?;
    let range = wb.worksheet_range(&name).map_err(|e| failed(origin, &e))?;
    let mut asm = Assembler::new(origin, Some(&name), spec.columns, spec.required, spec.limits);
    if let Some((top, left)) = range.start() {
        // `used_cells` skips empty cells, row by row.
        for (r, c, data) in range.used_cells() {
            let (Ok(r), Ok(c)) = (u32::try_from(r), u32::try_from(c)) else { continue };
            let col = left.saturating_add(c);
            if asm.wants(col) {
                with_data(data, |cell| asm.push(u64::from(top) + u64::from(r) + 1, col, cell, sink))?;
            }
        }
    }
    Ok((name.clone(), asm.finish(sink)?))
}

/// The configured sheet (exact name, else ignoring case and accents), or the
/// first visible worksheet.
fn pick_sheet(sheets: &[Sheet], spec: &TableSpec<'_>, origin: &str) -> Result<String, SourceError> {
    limits::check_sheets(sheets.len(), origin, &spec.limits)?;
    choose_sheet(sheets, spec.sheet, origin)
}

fn choose_sheet(sheets: &[Sheet], wanted: Option<&str>, origin: &str) -> Result<String, SourceError> {
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    let found = match wanted {
        Some(w) => {
            let folded = fold(w);
            worksheets().find(|s| s.name == w).or_else(|| worksheets().find(|s| fold(&s.name) == folded))
        }
        None => worksheets().find(|s| s.visible == SheetVisible::Visible).or_else(|| worksheets().next()),
    };
    match (found, wanted) {
        (Some(s), _) => Ok(s.name.clone()),
        (None, None) => Err(SourceError::Spreadsheet {
            path: origin.to_string(),
            message: "the workbook has no worksheet".to_string(),
        }),
        (None, Some(w)) => Err(SourceError::SheetNotFound {
            path: origin.to_string(),
            sheet: w.to_string(),
            available: sheets.iter().map(|s| s.name.clone()).collect(),
        }),
    }
}

/// A password-protected xlsx is an OLE2 file too; say so instead of
/// calamine's complaint about a missing workbook stream.
fn explain_xls(e: calamine::XlsError, spec: &TableSpec<'_>) -> String {
    let encrypted = std::fs::read(spec.path).is_ok_and(|bytes| {
        let needle: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes).collect();
        bytes.windows(needle.len()).any(|w| w == needle)
    });
    if encrypted {
        "the workbook is password-protected (encrypted); save it without a password".to_string()
    } else {
        e.to_string()
    }
}

/// Hands a cell to `f`, its text borrowed from calamine's (an error value's
/// text is made for the call).
fn with_ref<T>(value: &DataRef<'_>, f: impl FnOnce(CellRef<'_>) -> T) -> T {
    let error;
    f(match value {
        DataRef::Empty => CellRef::Empty,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => CellRef::Text(s),
        DataRef::SharedString(s) => CellRef::Text(s),
        DataRef::Int(i) => CellRef::Int(*i),
        DataRef::Float(f) => CellRef::Float(*f),
        DataRef::Bool(b) => CellRef::Bool(*b),
        DataRef::DateTime(d) => from_excel_datetime(d),
        DataRef::Error(e) => {
            error = e.to_string();
            CellRef::Error(&error)
        }
    })
}

/// [`with_ref`] for a whole range's cells (xls, ods).
fn with_data<T>(value: &Data, f: impl FnOnce(CellRef<'_>) -> T) -> T {
    let error;
    f(match value {
        Data::Empty => CellRef::Empty,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => CellRef::Text(s),
        Data::Int(i) => CellRef::Int(*i),
        Data::Float(f) => CellRef::Float(*f),
        Data::Bool(b) => CellRef::Bool(*b),
        Data::DateTime(d) => from_excel_datetime(d),
        Data::Error(e) => {
            error = e.to_string();
            CellRef::Error(&error)
        }
    })
}

/// A serial typed as a date; durations (and dates out of range) stay numbers.
fn from_excel_datetime(d: &ExcelDateTime) -> CellRef<'static> {
    match d.as_datetime() {
        Some(dt) if d.is_datetime() => CellRef::DateTime(dt),
        _ => CellRef::Float(d.as_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(name: &str, typ: SheetType, visible: SheetVisible) -> Sheet {
        Sheet { name: name.to_string(), typ, visible }
    }

    #[test]
    fn sheet_choice() {
        use SheetType::*;
        use SheetVisible::*;
        let sheets = [
            sheet("Graphique", ChartSheet, Visible),
            sheet("Caché", WorkSheet, Hidden),
            sheet("Personnel", WorkSheet, Visible),
            sheet("Référentiel", WorkSheet, Visible),
            sheet("REFERENTIEL", WorkSheet, Visible),
        ];
        for (wanted, expect) in [
            (None, Ok("Personnel")),
            (Some("Personnel"), Ok("Personnel")),
            (Some("  personnel "), Ok("Personnel")),
            (Some("REFERENTIEL"), Ok("REFERENTIEL")),
            (Some("referentiel"), Ok("Référentiel")),
            (Some("caché"), Ok("Caché")),
            (Some("Graphique"), Err(())),
            (Some("Agents"), Err(())),
        ] {
            let got = choose_sheet(&sheets, wanted, "hr.xlsx");
            match expect {
                Ok(name) => assert_eq!(got.unwrap(), name, "{wanted:?}"),
                Err(()) => assert!(matches!(got, Err(SourceError::SheetNotFound { .. })), "{wanted:?}"),
            }
        }
        let hidden_only = [sheet("Caché", WorkSheet, Hidden)];
        assert_eq!(choose_sheet(&hidden_only, None, "hr.xlsx").unwrap(), "Caché");
        let err = choose_sheet(&[], None, "hr.xlsx").unwrap_err().to_string();
        assert_eq!(err, "hr.xlsx: cannot read the spreadsheet: the workbook has no worksheet");
        let chart_only = [sheet("Graphique", ChartSheet, Visible)];
        let err = choose_sheet(&chart_only, Some("Agents"), "hr.xlsx").unwrap_err().to_string();
        assert_eq!(err, "hr.xlsx: no sheet named \"Agents\"; the workbook has: \"Graphique\"");
    }

    #[test]
    fn cell_conversion() {
        use calamine::{CellErrorType, ExcelDateTimeType};

        use crate::core::record::Cell;
        let date = ExcelDateTime::new(46326.0, ExcelDateTimeType::DateTime, false);
        let expect_date = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let duration = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        for (data, expect) in [
            (Data::Empty, Cell::Empty),
            (Data::String("x".into()), Cell::Text("x".into())),
            (Data::Int(7), Cell::Int(7)),
            (Data::Float(12345678200010.0), Cell::Float(12345678200010.0)),
            (Data::Bool(true), Cell::Bool(true)),
            (Data::DateTime(date), Cell::DateTime(expect_date)),
            (Data::DateTime(duration), Cell::Float(1.5)),
            (Data::DateTimeIso("2026-10-31".into()), Cell::Text("2026-10-31".into())),
            (Data::DurationIso("PT1H".into()), Cell::Text("PT1H".into())),
            (Data::Error(CellErrorType::NA), Cell::Error("#N/A".into())),
        ] {
            assert_eq!(with_data(&data, |c| c.to_owned()), expect, "{data:?}");
        }
        assert_eq!(with_ref(&DataRef::SharedString("partagé"), |c| c.to_owned()), Cell::Text("partagé".into()));
        assert_eq!(with_ref(&DataRef::DateTime(date), |c| c.to_owned()), Cell::DateTime(expect_date));
        let error = DataRef::Error(CellErrorType::Div0);
        assert_eq!(with_ref(&error, |c| c.to_owned()), Cell::Error("#DIV/0!".into()));
    }
}
