//! The corpus of broken and hostile files (tests/data/bad/, written by
//! scripts/make-bad-corpus.py): each gives exactly its expected result, and
//! none panics. Every file of the folder must be in the table.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use super::*;
use crate::core::mapping::parse_date;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad")
}

fn columns() -> ColumnMap {
    ColumnMap::new(
        [
            (Field::Email, "Courriel"),
            (Field::LastName, "Nom"),
            (Field::FirstName, "Prénom"),
            (Field::EmployeeId, "Matricule"),
            (Field::Structure, "SIRET"),
            (Field::Service, "Code service"),
            (Field::EndDate, "Date de sortie"),
        ]
        .map(|(f, h)| (f, h.to_string())),
    )
}

/// What a case may change from the defaults.
#[derive(Default)]
struct Tweak {
    sheet: Option<&'static str>,
    limits: LimitsConfig,
}

fn none(_: &mut Tweak) {}

fn read(path: &Path, tweak: fn(&mut Tweak)) -> Result<Vec<Record>, SourceError> {
    let mut t = Tweak::default();
    tweak(&mut t);
    let columns = columns();
    let spec = TableSpec {
        path,
        sheet: t.sheet,
        csv: CsvOptions::default(),
        columns: &columns,
        required: &[Field::Email],
        limits: t.limits,
    };
    let mut records = Vec::new();
    read_table(&spec, &mut |r| {
        records.push(r.clone());
        Ok(())
    })?;
    Ok(records)
}

enum Expect {
    /// The e-mail cells read, in order, with their row numbers.
    Rows(&'static [(u64, &'static str)]),
    /// How many rows, and the last one.
    Many(usize, (u64, &'static str)),
    /// The exact message; `{p}` stands for the file's path.
    Err(&'static str),
}
use Expect::*;

/// The three people of the script's table, from row 2.
const THREE: &[(u64, &str)] = &[(2, "marie.dupont@acme.fr"), (3, "eloise.martin@acme.fr"), (4, "jn.lefevre@acme.fr")];

const CFB_PANIC: &str = "{p}: cannot read the spreadsheet: the file is malformed (the spreadsheet parser failed on it: \
                         slice index starts at 12288 but ends at 11875)";

const FAT_LOOP: &str =
    "{p}: cannot read the spreadsheet: corrupt xls file: the sector chain through sector 0 loops back on itself";

/// (file in tests/data/bad, config change, expected result)
type Case = (&'static str, fn(&mut Tweak), Expect);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // ---- containers and magic: errors -----------------------------------------------------------------
        ("truncated.xlsx", none, Err("{p}: cannot read the spreadsheet: corrupt zip archive: invalid Zip archive: Could not find EOCD")),
        ("ods-truncated.ods", none, Err("{p}: cannot read the spreadsheet: corrupt zip archive: invalid Zip archive: Could not find EOCD")),
        // 300 MB of zeros in the worksheet from 300 KB: refused from the central directory alone.
        ("zip-bomb.xlsx", none, Err("{p}: the zip parts to read inflate to 314576362 bytes from 307073 (ratio 1024), more than max_zip_ratio = 200")),
        // Twenty entries overlapping one 250 MB kernel: 5 GB declared from 250 KB.
        ("zip-bomb-overlap.xlsx", none, Err("{p}: the zip parts to read inflate to 5242881411 bytes, more than max_inflated_bytes = 4294967296")),
        ("zip-declared-5gib.xlsx", none, Err("{p}: the zip parts to read inflate to 5368712706 bytes, more than max_inflated_bytes = 4294967296")),
        // Declares 1000 bytes, inflates to 2 MB: the zip crate stops at the declared size.
        ("zip-liar.xlsx", none, Err("{p}: cannot read the spreadsheet: Xml error: I/O error: File is larger than its declared uncompressed size")),
        ("wrong-magic.xlsx", none, Err("{p}: unknown file format: neither a spreadsheet (xlsx, xlsm, xlsb, xls, ods) nor a text (csv) file (byte 0x1A at offset 6)")),
        ("binary-garbage.csv", none, Err("{p}: unknown file format: neither a spreadsheet (xlsx, xlsm, xlsb, xls, ods) nor a text (csv) file (byte 0x0B at offset 0)")),
        ("pdf-named.csv", none, Err("{p}: unknown file format: a PDF document, not a spreadsheet")),
        ("rtf-named.csv", none, Err("{p}: unknown file format: an RTF document, not a spreadsheet")),
        ("html-as.xls", none, Err("{p}: unknown file format: an HTML page (a web export named like a spreadsheet?); open it in Excel and save it as xlsx or csv")),
        ("xml-spreadsheet-2003.xls", none, Err("{p}: unknown file format: an Excel 2003 XML spreadsheet; open it in Excel and save it as xlsx")),
        ("empty-zip.xlsx", none, Err("{p}: unknown file format: a zip archive that is not a spreadsheet")),
        ("docx-named.xlsx", none, Err("{p}: unknown file format: a zip archive that is not a spreadsheet")),
        ("odt-named.ods", none, Err("{p}: unknown file format: an OpenDocument file of type application/vnd.oasis.opendocument.text, not a spreadsheet")),
        ("encrypted-hr.xlsx", none, Err("{p}: cannot read the spreadsheet: the workbook is password-protected (encrypted); save it without a password")),
        ("xls-bogus-biff.xls", none, Err("{p}: cannot read the spreadsheet: End of stream 'record length'")),
        ("xls-truncated.xls", none, Err("{p}: cannot read the spreadsheet: Cfb error: Sector 8 points past end of file")),
        ("ole2-garbage.xls", none, Err("{p}: cannot read the spreadsheet: Cfb error: Invalid sector shift, expecting 0x09 or 0x0C found 1716")),
        ("xlsx-no-workbook.xlsx", none, Err("{p}: cannot read the spreadsheet: the workbook has no worksheet")),
        ("no-sheets.xlsx", none, Err("{p}: cannot read the spreadsheet: the workbook has no worksheet")),
        ("xlsx-bad-xml.xlsx", none, Err("{p}: cannot read the spreadsheet: Xml error: syntax error: tag not closed: `>` not found before end of input")),
        ("xlsx-bad-shared-string.xlsx", none, Err("{p}: cannot read the spreadsheet: Cell string index not found in shared strings table")),
        ("ods-bad-xml.ods", none, Err("{p}: cannot read the spreadsheet: Expecting 'table-cell', found 'Start(BytesStart { buf: Borrowed(\"table:table-cell</table:table\"), name_len: 29 })'")),
        // Found by fuzzing (see fuzz_found_* below): calamine panics, the panic becomes this file's error.
        ("fuzz-xls-cfb-sector-past-end.xls", none, Err(CFB_PANIC)),
        // Found by fuzzing: a FAT loop made calamine allocate without end; refused before it reads.
        ("fuzz-xls-fat-cycle.xls", none, Err(FAT_LOOP)),
        ("many-sheets.xlsx", none, Err("{p}: the workbook has 300 sheets, more than max_sheets = 255")),
        // ---- text files: errors ---------------------------------------------------------------------------
        ("empty.csv", none, Err("{p}: the sheet is empty")),
        ("bom-only.csv", none, Err("{p}: the sheet is empty")),
        ("only-delimiters.csv", none, Err("{p}: the sheet is empty")),
        ("nul-bytes.csv", none, Err("{p}: unknown file format: neither a spreadsheet (xlsx, xlsm, xlsb, xls, ods) nor a text (csv) file (byte 0x00 at offset 74)")),
        ("unbalanced-quotes.csv", none, Err("{p}: row 3: column 2: a quoted value runs over several lines and holds the delimiter: is a quote left open? (a quote inside quotes is written \"\")")),
        ("unbalanced-quotes-long.csv", none, Err("{p}: row 3: column 2: a quoted value runs over several lines and holds the delimiter: is a quote left open? (a quote inside quotes is written \"\")")),
        ("header-60-down.csv", none, Err("{p}: missing column(s) \"Courriel\"; the header row has: \"Note 0\"")),
        ("duplicate-headers.csv", none, Err("{p}: column \"Courriel\" appears more than once in the header row 1 (columns 4, 8)")),
        ("duplicate-headers.xlsx", none, Err("{p}, sheet \"Personnel\": column \"Courriel\" appears more than once in the header row 1 (columns 4, 8)")),
        ("renamed-column.csv", none, Err("{p}: missing column(s) \"Courriel\"; the header row has: \"Matricule\", \"Nom\", \"Prénom\", \"E-mail\", \"SIRET\", \"Code service\", \"Date de sortie\"")),
        ("empty-sheet.xlsx", none, Err("{p}, sheet \"Personnel\": the sheet is empty")),
        // The first visible sheet is a cover page.
        ("accented-sheet-name.xlsx", none, Err("{p}, sheet \"Résumé\": missing column(s) \"Courriel\"; the header row has: \"Rien\"")),
        // ---- NOT errors: read as they should be -------------------------------------------------------------
        // The configured sheet is found ignoring case and accents.
        ("accented-sheet-name.xlsx", |t| t.sheet = Some("donnees rh"), Rows(THREE)),
        // Cached values of formulas are read (#DIV/0! stays an error cell for the mapping).
        ("formulas.xlsx", none, Rows(&[(2, "marie.dupont@acme.fr")])),
        // A title merged over the header's columns: the header is found below it.
        ("merged-header.xlsx", none, Rows(&[(3, "marie.dupont@acme.fr"), (4, "eloise.martin@acme.fr"), (5, "jn.lefevre@acme.fr")])),
        ("merged-header-cell.xlsx", none, Rows(THREE)),
        // The hidden first sheet is skipped; a workbook of hidden sheets only gives its first.
        ("hidden-sheet.xlsx", none, Rows(THREE)),
        ("only-hidden-sheets.xlsx", none, Rows(THREE)),
        ("header-30-down.xlsx", none, Rows(&[(31, "marie.dupont@acme.fr"), (32, "eloise.martin@acme.fr"), (33, "jn.lefevre@acme.fr")])),
        // Three date formats: read as text here, parsed by the mapping (checked below).
        ("dates-as-text.csv", none, Rows(THREE)),
        ("dimension-2gb.xlsx", none, Rows(THREE)),
        ("last-row-1048576.xlsx", none, Rows(THREE)),
        // A million empty rows compress 400 times: over the ratio guard; allowed, read in a blink.
        ("million-empty-rows.xlsx", none, Err("{p}: the zip parts to read inflate to 19003586 bytes from 47438 (ratio 400), more than max_zip_ratio = 200")),
        ("million-empty-rows.xlsx", |t| t.limits.max_zip_ratio = 1000, Rows(THREE)),
        // 1,048,000 repeated rows of 16,384 repeated cells: not expanded.
        ("million-empty-rows.ods", none, Rows(THREE)),
        ("mixed-line-endings.csv", none, Rows(THREE)),
        ("cr-only.csv", none, Rows(THREE)),
        ("utf16le-no-bom.csv", none, Rows(THREE)),
        ("utf16be-no-bom.csv", none, Rows(THREE)),
        ("cp1252.csv", none, Rows(THREE)),
        ("xlsx-named.csv", none, Rows(THREE)),
        // A bogus string count in the SST record: the strings are read as they come.
        ("xls-bogus-sst.xls", none, Rows(THREE)),
        // Read as is; the mapping rejects the e-mail, the reports neutralise the rest.
        ("formula-injection.csv", none, Rows(&[(2, "@SUM(A1)")])),
        ("error-cells.xlsx", none, Rows(&[(2, "#N/A"), (3, "marie.dupont@acme.fr"), (4, "eloise.martin@acme.fr"), (5, "jn.lefevre@acme.fr")])),
        // A NUL past the 8 KiB sniffed: read; the mapping rejects that row's e-mail.
        ("nul-bytes-late.csv", none, Many(404, (405, "nul\0@acme.fr"))),
        // No data rows is not an error for the reader; the engine rejects an empty source.
        ("header-only.csv", none, Rows(&[])),
        // ---- limits on ordinary files -----------------------------------------------------------------------
        ("cp1252.csv", |t| t.limits.max_rows = 2, Err("{p}: row 4: more than max_rows = 2 rows")),
        ("hidden-sheet.xlsx", |t| t.limits.max_rows = 2, Err("{p}: sheet \"Personnel\", row 4: more than max_rows = 2 rows")),
        ("cp1252.csv", |t| t.limits.max_file_bytes = 100, Err("{p}: the file has 263 bytes, more than max_file_bytes = 100")),
        ("hidden-sheet.xlsx", |t| t.limits.max_sheets = 1, Err("{p}: the workbook has 2 sheets, more than max_sheets = 1")),
    ]
}

#[test]
fn every_bad_file_gives_exactly_its_result() {
    let mut failures = Vec::new();
    for (file, tweak, expect) in cases() {
        let path = dir().join(file);
        let p = path.display().to_string();
        let got = read(&path, tweak)
            .map(|rows| rows.iter().map(|r| (r.row, r.get(Field::Email).to_text())).collect::<Vec<_>>());
        let ok = match (&expect, &got) {
            (Rows(want), Ok(rows)) => want.iter().map(|(r, e)| (*r, e.to_string())).eq(rows.iter().cloned()),
            (Many(n, (row, email)), Ok(rows)) => rows.len() == *n && rows.last() == Some(&(*row, email.to_string())),
            (Err(want), Result::Err(e)) => e.to_string() == want.replace("{p}", &p),
            _ => false,
        };
        if !ok {
            let shown = match got {
                Ok(rows) => format!("Ok({} rows: {:?})", rows.len(), &rows[..rows.len().min(5)]),
                Result::Err(e) => format!("Err({:?})", e.to_string().replace(&p, "{p}")),
            };
            failures.push(format!("{file}: {shown}"));
        }
    }
    assert!(failures.is_empty(), "unexpected results:\n{}", failures.join("\n"));
}

#[test]
fn the_table_covers_the_whole_folder() {
    let listed: std::collections::BTreeSet<&str> = cases().iter().map(|(f, _, _)| *f).collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !listed.contains(name.as_str()) && name != "README.md" {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "not in the table: {missing:?}");
    assert!(listed.len() >= 40, "{}", listed.len());
    for f in &listed {
        assert!(dir().join(f).exists(), "{f} is listed but missing");
    }
}

#[test]
fn dates_as_text_in_three_formats_parse_to_the_same_day() {
    let records = read(&dir().join("dates-as-text.csv"), none).unwrap();
    let texts: Vec<String> = records.iter().map(|r| r.get(Field::EndDate).to_text()).collect();
    assert_eq!(texts, ["31/10/2026", "2026-10-31", "31.10.2026"]);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 31);
    for r in &records {
        assert_eq!(parse_date(r.get(Field::EndDate)), day, "row {}", r.row);
    }
}

/// 10 MB in one cell: made here, not committed.
#[test]
fn a_ten_megabyte_cell_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big-cell.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"Matricule;Courriel;Nom\r\nE1;").unwrap();
    f.write_all(&vec![b'a'; 10 << 20]).unwrap();
    f.write_all(b"@acme.fr;Dupont\r\n").unwrap();
    drop(f);
    let err = read(&path, none).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: row 2, column 2: a cell of 10485768 characters, more than max_cell_chars = 32767", path.display())
    );
}

/// Regression, found by `cargo fuzz run sheet_reader`: an OLE2 file whose
/// sector chain points one sector past the end made calamine 0.38 slice out
/// of bounds (cfb.rs, `Sectors::get`) and take the process down. The reader
/// now turns a parser panic into the file's error, under every extension.
#[test]
fn fuzz_found_cfb_sector_past_end_is_an_error_not_a_crash() {
    let bytes = std::fs::read(dir().join("fuzz-xls-cfb-sector-past-end.xls")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for ext in ["xls", "xlsx", "csv"] {
        let path = tmp.path().join(format!("hr.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path, none).unwrap_err().to_string();
        assert_eq!(err, CFB_PANIC.replace("{p}", &path.display().to_string()), "{ext}");
    }
}

/// Regression, found by `cargo fuzz run sheet_reader` (out of memory): a
/// 14 KB xls whose FAT chain loops made calamine 0.38 grow a buffer without
/// end (cfb.rs, `Sectors::get_chain`). The chains are checked first.
#[test]
fn fuzz_found_xls_fat_loop_is_refused_before_calamine_reads_it() {
    let path = dir().join("fuzz-xls-fat-cycle.xls");
    let err = read(&path, none).unwrap_err().to_string();
    assert_eq!(err, FAT_LOOP.replace("{p}", &path.display().to_string()));
}
