//! Limits on what a source file may hold (`[limits]`), checked before a
//! reader commits memory or time to it: file size, then, for zip workbooks,
//! what their parts will inflate to (a zip bomb is a few hundred KB on disk).
//! Rows, cells and sheets are checked as the reader meets them.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use super::{Format, SourceError};
use crate::config::LimitsConfig;

/// Below this many inflated bytes the ratio is not checked: a small file
/// cannot exhaust anything, whatever it compresses to.
pub const RATIO_FLOOR: u64 = 16 << 20;

/// `SourceError::Limit` for `origin`.
pub(super) fn limit(origin: &str, message: String) -> SourceError {
    SourceError::Limit { path: origin.to_string(), message }
}

/// Refuses a file larger than `max_file_bytes`.
pub(super) fn check_file_size(path: &Path, origin: &str, limits: &LimitsConfig) -> Result<(), SourceError> {
    let size = std::fs::metadata(path).map_err(|e| SourceError::io(origin, e))?.len();
    if size > limits.max_file_bytes {
        return Err(limit(
            origin,
            format!("the file has {size} bytes, more than max_file_bytes = {}", limits.max_file_bytes),
        ));
    }
    Ok(())
}

/// How a reader uses a zip entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Inflated whole into memory when the workbook is opened.
    Whole,
    /// A worksheet, streamed; only the one asked for is read.
    Streamed,
    /// Never read on our path (images, printer settings, macros, pivot caches…).
    Unread,
}

fn use_of(format: Format, name: &str) -> Use {
    let name = name.replace('\\', "/").to_ascii_lowercase();
    let name = name.trim_start_matches('/');
    const UNREAD: [&str; 12] = [
        "xl/media/",
        "xl/embeddings/",
        "xl/printersettings/",
        "xl/pivotcache/",
        "xl/pivottables/",
        "xl/charts/",
        "xl/drawings/",
        "xl/vbaproject.bin",
        "docprops/thumbnail",
        "customxml/",
        "pictures/",
        "thumbnails/",
    ];
    if name.ends_with('/') || UNREAD.iter().any(|p| name.starts_with(p)) {
        return Use::Unread;
    }
    match format {
        // calamine parses every sheet of an ods at once from content.xml.
        Format::Ods => Use::Whole,
        _ if name.starts_with("xl/worksheets/") && !name.starts_with("xl/worksheets/_rels/") => Use::Streamed,
        _ => Use::Whole,
    }
}

/// What the central directory says the reader will inflate.
#[derive(Debug, Default, PartialEq, Eq)]
struct Budget {
    /// Declared uncompressed bytes: parts read whole plus the largest worksheet.
    inflated: u64,
    /// Their compressed bytes.
    compressed: u64,
}

fn budget<R: Read + std::io::Seek>(zip: &zip::ZipArchive<R>, format: Format) -> Budget {
    let mut b = Budget::default();
    let mut sheet = (0u64, 0u64);
    for i in 0..zip.len() {
        let Ok(entry) = zip.by_index_data(i) else { continue };
        let Ok(name) = entry.name() else { continue };
        let (size, packed) = (entry.size(), entry.compressed_size());
        match use_of(format, &name) {
            Use::Whole => {
                b.inflated = b.inflated.saturating_add(size);
                b.compressed = b.compressed.saturating_add(packed);
            }
            Use::Streamed if size > sheet.0 => sheet = (size, packed),
            Use::Streamed | Use::Unread => {}
        }
    }
    b.inflated = b.inflated.saturating_add(sheet.0);
    b.compressed = b.compressed.saturating_add(sheet.1);
    b
}

/// Zip bomb guard, before calamine opens the file: the declared sizes of the
/// parts it will inflate (those read whole, plus the largest worksheet), and
/// their ratio to the compressed size. A declared size cannot lie: the zip
/// crate (which calamine uses too) fails a read past it, so this also caps
/// the bytes actually inflated (see `declared_sizes_bound_what_zip_inflates`).
pub(super) fn check_zip(path: &Path, origin: &str, format: Format, limits: &LimitsConfig) -> Result<(), SourceError> {
    let file = File::open(path).map_err(|e| SourceError::io(origin, e))?;
    let zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| SourceError::Spreadsheet {
        path: origin.to_string(),
        message: format!("corrupt zip archive: {e}"),
    })?;
    let b = budget(&zip, format);
    let max = limits.max_inflated_bytes;
    if b.inflated > max {
        return Err(limit(
            origin,
            format!("the zip parts to read inflate to {} bytes, more than max_inflated_bytes = {max}", b.inflated),
        ));
    }
    if b.inflated > RATIO_FLOOR {
        let ratio = b.inflated / b.compressed.max(1);
        if ratio > limits.max_zip_ratio {
            return Err(limit(
                origin,
                format!(
                    "the zip parts to read inflate to {} bytes from {} (ratio {ratio}), more than max_zip_ratio = {}",
                    b.inflated, b.compressed, limits.max_zip_ratio
                ),
            ));
        }
    }
    Ok(())
}

/// The `max_sheets` check, once the workbook lists its sheets.
pub(super) fn check_sheets(count: usize, origin: &str, limits: &LimitsConfig) -> Result<(), SourceError> {
    let count = count as u64;
    if count > limits.max_sheets {
        return Err(limit(
            origin,
            format!("the workbook has {count} sheets, more than max_sheets = {}", limits.max_sheets),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::{CompressionMethod, write::SimpleFileOptions};

    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig::default()
    }

    /// A zip of `(name, bytes)`, deflated.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, data) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn entry_uses() {
        for (format, name, expect) in [
            (Format::Xlsx, "xl/sharedStrings.xml", Use::Whole),
            (Format::Xlsx, "xl/workbook.xml", Use::Whole),
            (Format::Xlsx, "_rels/.rels", Use::Whole),
            (Format::Xlsx, "xl/worksheets/sheet1.xml", Use::Streamed),
            (Format::Xlsx, "XL\\Worksheets\\Sheet2.xml", Use::Streamed),
            (Format::Xlsx, "xl/worksheets/_rels/sheet1.xml.rels", Use::Whole),
            (Format::Xlsb, "xl/worksheets/sheet1.bin", Use::Streamed),
            (Format::Xlsb, "xl/sharedStrings.bin", Use::Whole),
            (Format::Xlsx, "xl/media/image1.png", Use::Unread),
            (Format::Xlsm, "xl/vbaProject.bin", Use::Unread),
            (Format::Xlsx, "xl/pivotCache/pivotCacheRecords1.xml", Use::Unread),
            (Format::Xlsx, "xl/", Use::Unread),
            (Format::Ods, "content.xml", Use::Whole),
            (Format::Ods, "Pictures/1.png", Use::Unread),
        ] {
            assert_eq!(use_of(format, name), expect, "{format} {name}");
        }
    }

    #[test]
    fn budget_counts_parts_read_whole_and_the_largest_sheet() {
        let bytes = zip_of(&[
            ("xl/workbook.xml", &[b'w'; 100]),
            ("xl/sharedStrings.xml", &[b's'; 1000]),
            ("xl/worksheets/sheet1.xml", &[b'a'; 5000]),
            ("xl/worksheets/sheet2.xml", &[b'b'; 7000]),
            ("xl/media/image1.png", &[b'i'; 90_000]),
        ]);
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let b = budget(&zip, Format::Xlsx);
        assert_eq!(b.inflated, 100 + 1000 + 7000);
        assert!(b.compressed > 0 && b.compressed < 500, "{}", b.compressed);
    }

    #[test]
    fn each_limit_names_its_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; (RATIO_FLOOR + 1000) as usize];
        let sheet = vec![b'a'; 3000];
        let small = write(dir.path(), "small.xlsx", &zip_of(&[("xl/worksheets/sheet1.xml", &sheet)]));
        let bomb = write(dir.path(), "bomb.xlsx", &zip_of(&[("xl/sharedStrings.xml", &zeros)]));
        let tight = |f: fn(&mut LimitsConfig)| {
            let mut l = limits();
            f(&mut l);
            l
        };
        let err = |r: Result<(), SourceError>| r.unwrap_err().to_string();
        let p = |path: &Path| path.display().to_string();

        check_file_size(&small, &p(&small), &limits()).unwrap();
        let size = std::fs::metadata(&small).unwrap().len();
        assert_eq!(
            err(check_file_size(&small, &p(&small), &tight(|l| l.max_file_bytes = 100))),
            format!("{}: the file has {size} bytes, more than max_file_bytes = 100", p(&small))
        );

        check_zip(&small, &p(&small), Format::Xlsx, &limits()).unwrap();
        assert_eq!(
            err(check_zip(&small, &p(&small), Format::Xlsx, &tight(|l| l.max_inflated_bytes = 2999))),
            format!("{}: the zip parts to read inflate to 3000 bytes, more than max_inflated_bytes = 2999", p(&small))
        );
        // Not a ratio problem below the floor, however well it compresses.
        assert!(check_zip(&small, &p(&small), Format::Xlsx, &tight(|l| l.max_zip_ratio = 1)).is_ok());

        let got = err(check_zip(&bomb, &p(&bomb), Format::Xlsx, &limits()));
        assert!(
            got.starts_with(&format!("{}: the zip parts to read inflate to 16778216 bytes from ", p(&bomb))),
            "{got}"
        );
        assert!(got.ends_with("more than max_zip_ratio = 200"), "{got}");
        check_zip(&bomb, &p(&bomb), Format::Xlsx, &tight(|l| l.max_zip_ratio = 2000)).unwrap();

        check_sheets(255, "hr.xlsx", &limits()).unwrap();
        assert_eq!(
            err(check_sheets(256, "hr.xlsx", &limits())),
            "hr.xlsx: the workbook has 256 sheets, more than max_sheets = 255"
        );
    }

    /// A part whose central directory entry declares fewer bytes than it
    /// inflates to passes the declared check, but the zip crate stops reading
    /// it at the declared size; this pins that behaviour, on which the
    /// inflation cap rests (tests/data/bad/zip-liar.xlsx shows the whole read).
    #[test]
    fn declared_sizes_bound_what_zip_inflates() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![b'x'; 100_000];
        let mut bytes = zip_of(&[("xl/sharedStrings.xml", &data)]);
        patch_sizes(&mut bytes, 100_000, 1000);
        let path = write(dir.path(), "liar.xlsx", &bytes);
        check_zip(&path, "liar.xlsx", Format::Xlsx, &limits()).unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let mut out = Vec::new();
        let err = zip.by_index(0).unwrap().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.to_string(), "File is larger than its declared uncompressed size");
        assert!(out.len() <= 1000 + (1 << 16), "{}", out.len());
    }

    /// Rewrites every little-endian u32 `from` in the local and central
    /// headers' size fields to `to`.
    fn patch_sizes(bytes: &mut [u8], from: u32, to: u32) {
        // Uncompressed size: offset 22 in a local header, 24 in a central one.
        for (sig, off) in [(&b"PK\x03\x04"[..], 22), (&b"PK\x01\x02"[..], 24)] {
            let starts: Vec<usize> = bytes.windows(4).enumerate().filter(|(_, w)| *w == sig).map(|(i, _)| i).collect();
            for s in starts {
                let f = &mut bytes[s + off..s + off + 4];
                if u32::from_le_bytes([f[0], f[1], f[2], f[3]]) == from {
                    f.copy_from_slice(&to.to_le_bytes());
                }
            }
        }
    }
}
