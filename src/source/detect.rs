//! File format by content: HR tools name files `.xls` when they are html or
//! csv, so the extension is only a hint (xlsx vs xlsm).

use std::{
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use super::{Format, SourceError};

const OLE2: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const ODS_MIME: &str = "application/vnd.oasis.opendocument.spreadsheet";

/// Tells the format of `path` from its first bytes (and, for zip files, the
/// names inside).
pub fn detect_format(path: &Path) -> Result<Format, SourceError> {
    let origin = path.display().to_string();
    let mut file = File::open(path).map_err(|e| SourceError::io(&origin, e))?;
    let mut head = Vec::with_capacity(8192);
    (&mut file).take(8192).read_to_end(&mut head).map_err(|e| SourceError::io(&origin, e))?;

    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return zip_format(path, &origin);
    }
    if head.starts_with(&OLE2) {
        return Ok(Format::Xls);
    }
    if let Some(why) = other_text_format(&head) {
        return Err(SourceError::UnknownFormat { path: origin, why: why.into() });
    }
    match binary_byte(&head) {
        None => Ok(Format::Csv),
        Some(_) if super::delimited::utf16_without_bom(&head).is_some() => Ok(Format::Csv),
        Some((at, byte)) => Err(SourceError::UnknownFormat {
            path: origin,
            why: format!(
                "neither a spreadsheet (xlsx, xlsm, xlsb, xls, ods) nor a text (csv) file (byte 0x{byte:02X} at offset {at})"
            ),
        }),
    }
}

/// Text files that are not tables, told apart so the message says what to do.
fn other_text_format(head: &[u8]) -> Option<&'static str> {
    let start = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = &start[start.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(start.len())..];
    let lower: Vec<u8> = start.iter().take(1024).map(u8::to_ascii_lowercase).collect();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"%pdf-") {
        Some("a PDF document, not a spreadsheet")
    } else if lower.starts_with(b"{\\rtf") {
        Some("an RTF document, not a spreadsheet")
    } else if lower.starts_with(b"<?xml")
        && (has(b"excel.sheet") || has(b"urn:schemas-microsoft-com:office:spreadsheet"))
    {
        Some("an Excel 2003 XML spreadsheet; open it in Excel and save it as xlsx")
    } else if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") || lower.starts_with(b"<table") {
        Some("an HTML page (a web export named like a spreadsheet?); open it in Excel and save it as xlsx or csv")
    } else if lower.starts_with(b"<?xml") {
        Some("an XML file, not a spreadsheet")
    } else {
        None
    }
}

fn zip_format(path: &Path, origin: &str) -> Result<Format, SourceError> {
    let file = File::open(path).map_err(|e| SourceError::io(origin, e))?;
    let corrupt = |e: zip::result::ZipError| SourceError::Spreadsheet {
        path: origin.to_string(),
        message: format!("corrupt zip archive: {e}"),
    };
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(corrupt)?;
    if zip.index_for_name("xl/workbook.bin").is_some() {
        return Ok(Format::Xlsb);
    }
    if zip.file_names().any(|n| n.is_ok_and(|n| n.starts_with("xl/"))) {
        let xlsm = zip.index_for_name("xl/vbaProject.bin").is_some()
            || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsm"));
        return Ok(if xlsm { Format::Xlsm } else { Format::Xlsx });
    }
    if zip.index_for_name("mimetype").is_some() {
        let mut mime = String::new();
        zip.by_name("mimetype").map_err(corrupt)?.take(200).read_to_string(&mut mime).map_err(|e| {
            SourceError::Spreadsheet { path: origin.to_string(), message: format!("corrupt zip archive: {e}") }
        })?;
        let mime = mime.trim();
        if mime == ODS_MIME {
            return Ok(Format::Ods);
        }
        return Err(SourceError::UnknownFormat {
            path: origin.to_string(),
            why: format!("an OpenDocument file of type {mime}, not a spreadsheet"),
        });
    }
    Err(SourceError::UnknownFormat { path: origin.to_string(), why: "a zip archive that is not a spreadsheet".into() })
}

/// `None` for text: a BOM, or no NUL and no control characters but tab, CR,
/// LF and form feed (Windows-1252 bytes above 0x7F are text too); else the
/// first byte that is not, with its offset.
fn binary_byte(head: &[u8]) -> Option<(usize, u8)> {
    if head.starts_with(b"\xEF\xBB\xBF") || head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return None;
    }
    head.iter().copied().enumerate().find(|&(_, b)| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/source").join(name)
    }

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn by_magic_whatever_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let check = |bytes: Vec<u8>, name: &str, expect: Result<Format, &str>| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let got = detect_format(&path).map_err(|e| e.to_string());
            match expect {
                Ok(f) => assert_eq!(got, Ok(f), "{name}"),
                Err(text) => {
                    let got = got.unwrap_err();
                    assert!(got.contains(text), "{name}: {got}");
                    assert!(got.starts_with(&path.display().to_string()), "{got}");
                }
            }
        };
        let read = |n: &str| std::fs::read(fixture(n)).unwrap();
        check(read("hr.xlsx"), "export.csv", Ok(Format::Xlsx));
        check(read("hr.xlsx"), "export.xlsm", Ok(Format::Xlsm));
        check(read("hr.xls"), "export.xlsx", Ok(Format::Xls));
        check(read("hr.ods"), "export.xls", Ok(Format::Ods));
        check(read("hr-utf8.csv"), "export.xlsx", Ok(Format::Csv));
        check(read("hr-cp1252.csv"), "export.ods", Ok(Format::Csv));
        check(read("hr-utf16le-tab.csv"), "export.txt", Ok(Format::Csv));
        check(Vec::new(), "empty.csv", Ok(Format::Csv));
        check(zip_with(&[("xl/workbook.bin", b"")]), "a.xlsx", Ok(Format::Xlsb));
        check(zip_with(&[("xl/workbook.xml", b""), ("xl/vbaProject.bin", b"")]), "a.xlsx", Ok(Format::Xlsm));
        check(
            zip_with(&[("mimetype", b"application/vnd.oasis.opendocument.text")]),
            "a.ods",
            Err("an OpenDocument file of type application/vnd.oasis.opendocument.text, not a spreadsheet"),
        );
        check(zip_with(&[("word/document.xml", b"")]), "a.xlsx", Err("a zip archive that is not a spreadsheet"));
        check(b"PK\x03\x04garbage".to_vec(), "a.xlsx", Err("corrupt zip archive"));
        check(b"\x89PNG\r\n\x1a\n\0\0\0".to_vec(), "a.csv", Err("unknown file format"));
        check(b"%PDF-1.4\n\x01\x02".to_vec(), "a.csv", Err("unknown file format"));
    }

    #[test]
    fn other_text_formats_are_named() {
        for (head, expect) in [
            (&b"%PDF-1.7\n"[..], Some("a PDF document, not a spreadsheet")),
            (b"{\\rtf1\\ansi", Some("an RTF document, not a spreadsheet")),
            (b"\xEF\xBB\xBF  <!DOCTYPE HTML><table>", Some("an HTML page")),
            (b"<TABLE border=1><tr>", Some("an HTML page")),
            (b"<?xml version=\"1.0\"?><?mso-application progid=\"Excel.Sheet\"?>", Some("an Excel 2003 XML")),
            (b"<?xml version=\"1.0\"?><root/>", Some("an XML file")),
            (b"Courriel;Nom\n<b>x</b>", None),
            (b"", None),
        ] {
            let got = other_text_format(head);
            match expect {
                Some(e) => assert!(got.is_some_and(|g| g.starts_with(e)), "{head:?}: {got:?}"),
                None => assert_eq!(got, None, "{head:?}"),
            }
        }
        assert_eq!(binary_byte(b"a;b\r\n\tc\x0C\xE9"), None);
        assert_eq!(binary_byte(b"a;b\0c"), Some((3, 0)));
        assert_eq!(binary_byte(b"\xFF\xFEa\0"), None);
    }

    #[test]
    fn missing_file_names_it() {
        let err = detect_format(Path::new("no/such/file.xlsx")).unwrap_err().to_string();
        assert!(err.starts_with("no/such/file.xlsx: "), "{err}");
    }
}
