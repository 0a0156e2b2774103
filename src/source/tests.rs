//! The same HR table in every format (see scripts/make-source-fixtures.py)
//! must give the same records.

use std::path::{Path, PathBuf};

use super::*;
use crate::core::record::Cell;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/source").join(name)
}

fn columns() -> ColumnMap {
    ColumnMap::new(
        [
            (Field::Email, "Courriel"),
            (Field::LastName, "NOM"),
            (Field::FirstName, "Prenom"), // the files say "Prénom"
            (Field::EmployeeId, "Matricule"),
            (Field::Structure, "SIRET"),
            (Field::Service, "Code  service"),
            (Field::EndDate, "Date de sortie"),
            (Field::Status, "Statut"), // not in the files: optional, stays empty
        ]
        .map(|(f, h)| (f, h.to_string())),
    )
}

const REQUIRED: [Field; 2] = [Field::Email, Field::Structure];

fn read(path: &Path, sheet: Option<&str>, csv: CsvOptions) -> Result<(TableInfo, Vec<Record>), SourceError> {
    let columns = columns();
    let spec = TableSpec { path, sheet, csv, columns: &columns, required: &REQUIRED, limits: LimitsConfig::default() };
    let mut records = Vec::new();
    let info = read_table(&spec, &mut |r| {
        records.push(r.clone());
        Ok(())
    })?;
    Ok((info, records))
}

/// Row number and the text of each field, in `Field::ALL` order.
fn texts(records: &[Record]) -> Vec<(u64, Vec<String>)> {
    records.iter().map(|r| (r.row, Field::ALL.iter().map(|f| r.get(*f).to_text()).collect())).collect()
}

fn expected() -> Vec<(u64, Vec<String>)> {
    // email, last, first, employee id, structure, service, rights, end date, status
    let rows: [(u64, [&str; 9]); 5] = [
        (4, ["marie.dupont@acme.fr", "Dupont", "Marie", "E001", "12345678200010", "COMPTA", "", "", ""]),
        (5, ["eloise.martin@acme.fr", "Martin", "Éloïse", "1005", "12345678200010", "ACHATS", "", "2026-10-31", ""]),
        (7, ["jn.lefevre@acme.fr", "Lefèvre", "Jean-Noël", "E003", "12345678200010", "", "", "", ""]),
        (8, ["zoe.garcon@acme.fr", "Garçon", "Zoé", "E004", "98765432100014", "COMPTA", "", "", ""]),
        (9, [" luc.petit@acme.fr ", "Petit", "Luc", "E005", "12345678200010", "ACHATS", "", "2027-01-15", ""]),
    ];
    rows.iter().map(|(row, cells)| (*row, cells.iter().map(|s| s.to_string()).collect())).collect()
}

#[test]
fn same_records_in_every_format() {
    let expect_headers = vec![
        (Field::Email, "Courriel".to_string()),
        (Field::LastName, "Nom".to_string()),
        (Field::FirstName, "Prénom".to_string()),
        (Field::EmployeeId, "Matricule".to_string()),
        (Field::Structure, "SIRET".to_string()),
        (Field::Service, "Code service".to_string()),
        (Field::EndDate, "Date de sortie".to_string()),
    ];
    for (file, format, sheet, encoding, delimiter) in [
        ("hr.xlsx", Format::Xlsx, Some("Personnel"), None, None),
        ("hr.xls", Format::Xls, Some("Personnel"), None, None),
        ("hr.ods", Format::Ods, Some("Personnel"), None, None),
        ("hr-utf8.csv", Format::Csv, None, Some("UTF-8"), Some(';')),
        ("hr-utf8-bom.csv", Format::Csv, None, Some("UTF-8"), Some(',')),
        ("hr-cp1252.csv", Format::Csv, None, Some("windows-1252"), Some(';')),
        ("hr-utf16le-tab.csv", Format::Csv, None, Some("UTF-16LE"), Some('\t')),
    ] {
        let path = fixture(file);
        let (info, records) = read(&path, None, CsvOptions::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(texts(&records), expected(), "{file}");
        assert_eq!(info.origin, path.display().to_string());
        assert_eq!(info.format, format, "{file}");
        assert_eq!(info.sheet.as_deref(), sheet, "{file}");
        assert_eq!(info.header_row, 3, "{file}");
        assert_eq!(info.rows, 5, "{file}");
        assert_eq!(info.headers, expect_headers, "{file}");
        assert_eq!(info.encoding, encoding, "{file}");
        assert_eq!(info.delimiter, delimiter, "{file}");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(info.sha256, hex(&Sha256::digest(&bytes)), "{file}");
        assert_eq!(info.sha256.len(), 64);
    }
}

#[test]
fn workbooks_keep_cell_types() {
    let siret = Cell::Float(12345678200010.0);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap().and_hms_opt(0, 0, 0).unwrap();
    for (file, expect_date) in [
        ("hr.xlsx", Cell::DateTime(date)),
        ("hr.xls", Cell::DateTime(date)),
        // ODS stores dates as ISO text; calamine hands them over as such.
        ("hr.ods", Cell::Text("2026-10-31".into())),
    ] {
        let (_, records) = read(&fixture(file), None, CsvOptions::default()).unwrap();
        assert_eq!(records[1].get(Field::Structure), siret, "{file}");
        assert_eq!(records[1].get(Field::EndDate), expect_date, "{file}");
        assert_eq!(records[1].get(Field::EmployeeId).to_text(), "1005", "{file}");
        assert_eq!(records[0].get(Field::Status), Cell::Empty, "{file}");
    }
    let (_, records) = read(&fixture("hr-utf8.csv"), None, CsvOptions::default()).unwrap();
    assert_eq!(records[1].get(Field::Structure), Cell::Text("12345678200010".into()));
}

#[test]
fn sheet_by_name_and_not_found() {
    for file in ["hr.xlsx", "hr.xls", "hr.ods"] {
        let path = fixture(file);
        // "referentiel" finds "Référentiel", whose table has no Courriel column.
        let err = read(&path, Some("referentiel"), CsvOptions::default()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}, sheet \"Référentiel\": missing column(s) \"Courriel\", \"SIRET\"; the header row has: \"Code service\", \"Libellé\"",
                path.display()
            )
        );
        let err = read(&path, Some("Agents"), CsvOptions::default()).unwrap_err();
        match &err {
            SourceError::SheetNotFound { sheet, available, .. } => {
                assert_eq!(sheet, "Agents");
                assert_eq!(available, &["Personnel", "Référentiel"]);
            }
            other => panic!("{file}: {other}"),
        }
        assert_eq!(
            err.to_string(),
            format!("{}: no sheet named \"Agents\"; the workbook has: \"Personnel\", \"Référentiel\"", path.display())
        );
    }
}

#[test]
fn sheet_is_ignored_for_csv_and_overrides_apply() {
    let path = fixture("hr-utf8.csv");
    let csv = CsvOptions { delimiter: Some(b';'), encoding: Some(encoding_rs::UTF_8) };
    let (info, records) = read(&path, Some("Personnel"), csv).unwrap();
    assert_eq!(info.sheet, None);
    assert_eq!(texts(&records), expected());
    // A wrong delimiter leaves one column per line: no header row.
    let csv = CsvOptions { delimiter: Some(b'|'), encoding: None };
    assert!(matches!(read(&path, None, csv), Err(SourceError::MissingColumns { .. })));
    // Configured encoding is used when there is no BOM.
    let csv = CsvOptions { delimiter: None, encoding: Some(encoding_rs::WINDOWS_1252) };
    let (info, records) = read(&path, None, csv).unwrap();
    assert_eq!(info.encoding, Some("windows-1252"));
    assert_eq!(records[2].get(Field::LastName).to_text(), "LefÃ¨vre");
    // …and "Prénom" no longer matches: an optional field simply not found.
    assert!(!info.headers.iter().any(|(f, _)| *f == Field::FirstName));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn csv_errors_name_file_row_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, bytes: &[u8], expect: &str| {
        let path = write(dir.path(), name, bytes);
        let got = read(&path, None, CsvOptions::default()).map(|(_, r)| texts(&r));
        let err = got.expect_err(name).to_string();
        assert_eq!(err, format!("{}{expect}", path.display()), "{name}");
    };
    check(
        "missing.csv",
        "Nom;Prénom;Mail;SIRET\nDupont;Marie;m@a.fr;1\n".as_bytes(),
        r#": missing column(s) "Courriel"; the header row has: "Nom", "Prénom", "Mail", "SIRET""#,
    );
    check(
        "dup.csv",
        b"Export\nCourriel;SIRET;Nom;courriel \nm@a.fr;1;D;x\n",
        r#": column "Courriel" appears more than once in the header row 2 (columns 1, 4)"#,
    );
    check("empty.csv", b"", ": the sheet is empty");
    check("blank.csv", b";;;\n\n;;\n", ": the sheet is empty");
    // Valid UTF-8 in the first 64 KiB, then a Windows-1252 byte.
    let mut late = b"Courriel;SIRET\n".to_vec();
    for i in 0..5000 {
        late.extend_from_slice(format!("user{i}@acme.fr;12345678200010\n").as_bytes());
    }
    late.extend_from_slice(b"z\xE9@acme.fr;1\n");
    check(
        "late.csv",
        &late,
        ": row 5002: column 1: not valid UTF-8; set the source's csv encoding (e.g. windows-1252)",
    );
}

#[test]
fn csv_quoting_and_ragged_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "q.csv",
        b"Courriel,SIRET,Nom\n\"a@b.fr\",\"1\",\"Dupont, \"\"Jr\"\"\"\nc@d.fr,2\n\"multi\nline@x.fr\",3,M,extra,cells\n",
    );
    let (info, records) = read(&path, None, CsvOptions::default()).unwrap();
    assert_eq!(info.delimiter, Some(','));
    let got: Vec<_> =
        records.iter().map(|r| (r.row, r.get(Field::Email).to_text(), r.get(Field::LastName).to_text())).collect();
    assert_eq!(
        got,
        vec![
            (2, "a@b.fr".to_string(), "Dupont, \"Jr\"".to_string()),
            (3, "c@d.fr".to_string(), String::new()),
            (4, "multi\nline@x.fr".to_string(), "M".to_string()),
        ]
    );
}

#[test]
fn sink_errors_propagate() {
    let columns = columns();
    let path = fixture("hr.xlsx");
    let spec = TableSpec {
        path: &path,
        sheet: None,
        csv: CsvOptions::default(),
        columns: &columns,
        required: &REQUIRED,
        limits: LimitsConfig::default(),
    };
    let mut seen = 0;
    let err = read_table(&spec, &mut |r| {
        seen += 1;
        if seen == 2 {
            return Err(SourceError::Limit { path: "hr.xlsx".into(), message: format!("too many rows at {}", r.row) });
        }
        Ok(())
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "hr.xlsx: too many rows at 5");
    assert_eq!(seen, 2);
}

#[test]
fn unconfigured_required_field() {
    let columns = ColumnMap::new([(Field::Email, "Courriel".to_string())]);
    let path = fixture("hr.xlsx");
    let spec = TableSpec {
        path: &path,
        sheet: None,
        csv: CsvOptions::default(),
        columns: &columns,
        required: &[Field::Email, Field::Structure],
        limits: LimitsConfig::default(),
    };
    let err = read_table(&spec, &mut |_| Ok(())).unwrap_err().to_string();
    assert!(err.ends_with(": no column is configured for the required field structure"), "{err}");
}

#[test]
fn unknown_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let png = write(dir.path(), "photo.xlsx", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let err = read(&png, None, CsvOptions::default()).unwrap_err();
    assert!(matches!(err, SourceError::UnknownFormat { .. }), "{err}");
    let broken = write(dir.path(), "broken.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 not really");
    let err = read(&broken, None, CsvOptions::default()).unwrap_err();
    assert!(matches!(err, SourceError::Spreadsheet { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: cannot read the spreadsheet: ", broken.display())), "{err}");
    // A password-protected xlsx is an OLE2 container holding an "EncryptedPackage" stream.
    let mut locked = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    locked.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
    let locked = write(dir.path(), "locked.xlsx", &locked);
    let err = read(&locked, None, CsvOptions::default()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: cannot read the spreadsheet: the workbook is password-protected (encrypted); save it without a password",
            locked.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    let err = read(&missing, None, CsvOptions::default()).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }), "{err}");
}

/// Formatted but empty trailing rows (HR exports have a million) are
/// skipped without records; here 100,000 of them, written with
/// rust_xlsxwriter, which is also how the report writer makes xlsx files.
#[test]
fn many_formatted_empty_rows_in_xlsx() {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Agents").unwrap();
    ws.write_string(0, 0, "Courriel").unwrap();
    ws.write_string(0, 1, "SIRET").unwrap();
    ws.write_string(1, 0, "a@b.fr").unwrap();
    ws.write_number(1, 1, 12345678200010.0).unwrap();
    let yellow = XFormat::new().set_background_color(rust_xlsxwriter::Color::Yellow);
    for row in 2..100_000u32 {
        ws.write_blank(row, 0, &yellow).unwrap();
        ws.write_blank(row, 1, &yellow).unwrap();
    }
    ws.write_string(100_000, 0, "last@b.fr").unwrap();
    wb.save(&path).unwrap();
    let (info, records) = read(&path, None, CsvOptions::default()).unwrap();
    assert_eq!(info.sheet.as_deref(), Some("Agents"));
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].row, 100_001);
    assert_eq!(records[1].get(Field::Email).to_text(), "last@b.fr");
}

/// Not a timed test: with `SOURCE_BIG_ROWS=1000000 SOURCE_BIG_PATH=/tmp/big.xlsx`,
/// `cargo test --lib big_xlsx -- --ignored` writes the file once; a second run
/// under `/usr/bin/time -v` only reads it and shows the peak memory of the read.
#[test]
#[ignore]
fn big_xlsx_streams() {
    let rows: u32 = std::env::var("SOURCE_BIG_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("SOURCE_BIG_PATH").map_or_else(|| dir.path().join("big.xlsx"), PathBuf::from);
    if !path.exists() {
        write_big_xlsx(&path, rows);
    }
    let start = std::time::Instant::now();
    let columns = columns();
    let required = [Field::Email];
    let spec = TableSpec {
        path: &path,
        sheet: None,
        csv: CsvOptions::default(),
        columns: &columns,
        required: &required,
        limits: LimitsConfig::default(),
    };
    let mut seen = 0u64;
    let info = read_table(&spec, &mut |_| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    eprintln!("read {} rows in {:?}", info.rows, start.elapsed());
    assert_eq!((info.rows, seen), (u64::from(rows), u64::from(rows)));
}

fn write_big_xlsx(path: &Path, rows: u32) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Matricule", "Nom", "Prénom", "Courriel", "SIRET", "Code service"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=rows {
        ws.write_string(r, 0, format!("E{r:07}")).unwrap();
        ws.write_string(r, 1, "Dupont").unwrap();
        ws.write_string(r, 2, "Marie").unwrap();
        ws.write_string(r, 3, format!("user{r}@acme.fr")).unwrap();
        ws.write_number(r, 4, 12345678200010.0).unwrap();
        ws.write_string(r, 5, "COMPTA").unwrap();
    }
    wb.save(path).unwrap();
}

/// `TableSpec::limits` reaches every reader.
#[test]
fn limits_reach_every_reader() {
    let columns = columns();
    let check = |file: &str, tweak: fn(&mut LimitsConfig), expect: &str| {
        let path = fixture(file);
        let mut limits = LimitsConfig::default();
        tweak(&mut limits);
        let spec = TableSpec {
            path: &path,
            sheet: None,
            csv: CsvOptions::default(),
            columns: &columns,
            required: &REQUIRED,
            limits,
        };
        let err = read_table(&spec, &mut |_| Ok(())).unwrap_err().to_string();
        assert_eq!(err, format!("{}: {expect}", path.display()), "{file}");
    };
    let size = std::fs::metadata(fixture("hr-utf8.csv")).unwrap().len();
    check(
        "hr-utf8.csv",
        |l| l.max_file_bytes = 100,
        &format!("the file has {size} bytes, more than max_file_bytes = 100"),
    );
    check("hr-utf8.csv", |l| l.max_rows = 4, "row 9: more than max_rows = 4 rows");
    check("hr-utf16le-tab.csv", |l| l.max_rows = 1, "row 5: more than max_rows = 1 rows");
    for file in ["hr.xlsx", "hr.xls", "hr.ods"] {
        check(file, |l| l.max_rows = 2, "sheet \"Personnel\", row 7: more than max_rows = 2 rows");
        check(file, |l| l.max_sheets = 1, "the workbook has 2 sheets, more than max_sheets = 1");
        check(
            file,
            |l| l.max_cell_chars = 7,
            "sheet \"Personnel\", row 1, column 1: a cell of 41 characters, more than max_cell_chars = 7",
        );
    }
    check(
        "hr.xlsx",
        |l| l.max_inflated_bytes = 1000,
        "the zip parts to read inflate to 52923 bytes, more than max_inflated_bytes = 1000",
    );
    check(
        "hr.ods",
        |l| l.max_inflated_bytes = 1000,
        "the zip parts to read inflate to 9207 bytes, more than max_inflated_bytes = 1000",
    );
}
