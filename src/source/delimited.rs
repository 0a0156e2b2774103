//! csv (and tab-separated) files: encoding and delimiter detection, then a
//! streaming read through `encoding_rs_io` and the `csv` crate.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;
use sha2::{Digest, Sha256};

use crate::core::record::CellRef;

use super::{
    Format, HEADER_SCAN_ROWS, SourceError, TableInfo, TableSpec,
    assemble::{Assembler, Sink},
    hex,
};

/// Encoding and delimiter are guessed from this much of the file.
const SNIFF: usize = 64 * 1024;
const DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];

/// The encoding of a file starting with `head` and the length of its BOM.
/// A BOM wins; then `configured`; then UTF-16 without a BOM when every other
/// byte is NUL; then UTF-8 if `head` is valid UTF-8 (`truncated`: `head` may
/// end inside a character); else Windows-1252.
pub fn detect_encoding(
    head: &[u8],
    truncated: bool,
    configured: Option<&'static Encoding>,
) -> (&'static Encoding, usize) {
    if let Some((enc, bom)) = Encoding::for_bom(head) {
        return (enc, bom);
    }
    if let Some(enc) = configured {
        return (enc, 0);
    }
    if let Some(enc) = utf16_without_bom(head) {
        return (enc, 0);
    }
    match std::str::from_utf8(head) {
        Ok(_) => (UTF_8, 0),
        // Cut inside a character at the end of the sample: still UTF-8.
        Err(e) if truncated && e.error_len().is_none() => (UTF_8, 0),
        Err(_) => (WINDOWS_1252, 0),
    }
}

/// UTF-16 saved without a BOM: mostly Latin text, so the high byte of most
/// characters is NUL (odd offsets for little-endian), and low bytes rarely are.
pub(super) fn utf16_without_bom(head: &[u8]) -> Option<&'static Encoding> {
    let pairs = head.len().min(4096) / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for pair in head[..pairs * 2].chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    let mostly = |n: usize| n * 10 >= pairs * 7;
    let rarely = |n: usize| n * 10 < pairs;
    if mostly(odd) && rarely(even) {
        Some(UTF_16LE)
    } else if mostly(even) && rarely(odd) {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Turns lone CRs (old Mac line ends, or a mix) into LFs and CRLFs into LFs,
/// so the csv reader, which ends records at LF, counts lines right. Only
/// used when the sample has a lone CR: it costs a pass over every byte.
struct LoneCr<R> {
    inner: R,
    after_cr: bool,
}

impl<R: Read> Read for LoneCr<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut out = 0;
            for i in 0..n {
                let b = buf[i];
                if b == b'\n' && self.after_cr {
                    self.after_cr = false;
                    continue;
                }
                self.after_cr = b == b'\r';
                buf[out] = if b == b'\r' { b'\n' } else { b };
                out += 1;
            }
            // A chunk that was a single LF after a CR: read on rather than signal the end.
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

/// Whether `text` has a CR not followed by LF.
fn has_lone_cr(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| b == b'\r' && bytes.get(i + 1).is_some_and(|&n| n != b'\n'))
}

/// The delimiter among `;` `,` tab `|` that splits the most lines of `text`
/// into the same non-zero number of fields; quoted parts are ignored, and on
/// a tie the earlier in that list wins. `;` when nothing splits any line.
pub fn detect_delimiter(text: &str) -> u8 {
    // counts[line][delimiter]
    let mut counts: Vec<[usize; 4]> = Vec::new();
    let mut line = [0usize; 4];
    let mut in_quotes = false;
    let mut non_empty = false;
    for c in text.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            '\n' if !in_quotes => {
                if non_empty {
                    counts.push(line);
                }
                if counts.len() as u64 >= HEADER_SCAN_ROWS {
                    break;
                }
                line = [0; 4];
                non_empty = false;
                continue;
            }
            _ if !in_quotes => {
                if let Some(i) = DELIMITERS.iter().position(|d| *d as char == c) {
                    line[i] += 1;
                }
            }
            _ => {}
        }
        if c != '\r' {
            non_empty = true;
        }
    }
    if non_empty && (counts.len() as u64) < HEADER_SCAN_ROWS {
        counts.push(line);
    }
    let mut best = (0usize, DELIMITERS[0]);
    for (i, d) in DELIMITERS.iter().enumerate() {
        // The most frequent non-zero count, and how many lines have it.
        let mut freq: Vec<(usize, usize)> = Vec::new();
        for l in &counts {
            let n = l[i];
            if n == 0 {
                continue;
            }
            match freq.iter_mut().find(|(k, _)| *k == n) {
                Some((_, f)) => *f += 1,
                None => freq.push((n, 1)),
            }
        }
        let lines = freq.iter().map(|(_, f)| *f).max().unwrap_or(0);
        // Strictly more lines: on a tie the earlier delimiter stays.
        if lines > best.0 {
            best = (lines, *d);
        }
    }
    best.1
}

/// Hashes every byte read through it.
struct Tee<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

pub(super) fn read(spec: &TableSpec<'_>, origin: &str, sink: &mut Sink<'_>) -> Result<TableInfo, SourceError> {
    let io_err = |e| SourceError::io(origin, e);
    let mut file = File::open(spec.path).map_err(io_err)?;
    let mut head = Vec::with_capacity(SNIFF);
    (&mut file).take(SNIFF as u64).read_to_end(&mut head).map_err(io_err)?;
    let truncated = head.len() == SNIFF;
    let (encoding, bom) = detect_encoding(&head, truncated, spec.csv.encoding);

    let (sample, _) = encoding.decode_without_bom_handling(&head[bom..]);
    let lone_cr = has_lone_cr(&sample);
    let delimiter = match spec.csv.delimiter {
        Some(d) => d,
        None => {
            let text = if lone_cr { sample.replace("\r\n", "\n").replace('\r', "\n") } else { sample.into_owned() };
            // Leave out a last line the sample may have cut.
            let text = if truncated { text.rsplit_once('\n').map_or("", |(t, _)| t) } else { &text };
            detect_delimiter(text)
        }
    };

    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let tee = Tee { inner: file, hasher: &mut hasher };
    let mut builder = DecodeReaderBytesBuilder::new();
    builder.bom_sniffing(false).strip_bom(true);
    if encoding == UTF_8 {
        // Pass UTF-8 through: cells are checked one by one, only when mapped.
        builder.utf8_passthru(true);
    } else {
        builder.encoding(Some(encoding));
    }
    let decoder: Box<dyn Read + '_> = match builder.build(tee) {
        d if lone_cr => Box::new(LoneCr { inner: d, after_cr: false }),
        d => Box::new(d),
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        // With the default CRLF terminator csv-core counts a record's line
        // from the previous line's `\n`; ending records at `\n` keeps row
        // numbers exact, and the `\r` is stripped below.
        .terminator(::csv::Terminator::Any(b'\n'))
        .buffer_capacity(1 << 16)
        .from_reader(decoder);

    let mut asm = Assembler::new(origin, None, spec.columns, spec.required, spec.limits);
    let mut record = ::csv::ByteRecord::new();
    let mut count = 0u64;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| SourceError::Csv {
            path: origin.to_string(),
            row: e.position().map_or(count + 1, |p| p.line()),
            message: e.to_string(),
        })?;
        if !more {
            break;
        }
        count += 1;
        let row = record.position().map_or(count, |p| p.line());
        let last = record.len().saturating_sub(1);
        for (col, field) in record.iter().enumerate() {
            let field = if col == last { field.strip_suffix(b"\r").unwrap_or(field) } else { field };
            let Ok(col) = u32::try_from(col) else { break };
            if field.contains(&b'\n') && field.contains(&delimiter) {
                return Err(SourceError::Csv {
                    path: origin.to_string(),
                    row,
                    message: format!(
                        "column {}: a quoted value runs over several lines and holds the delimiter: is a quote left \
                         open? (a quote inside quotes is written \"\")",
                        col + 1
                    ),
                });
            }
            if field.is_empty() || !asm.wants(col) {
                continue;
            }
            let text = std::str::from_utf8(field).map_err(|_| SourceError::Csv {
                path: origin.to_string(),
                row,
                message: format!(
                    "column {}: not valid {}; set the source's csv encoding (e.g. windows-1252)",
                    col + 1,
                    encoding.name()
                ),
            })?;
            asm.push(row, col, CellRef::Text(text), sink)?;
        }
    }
    let table = asm.finish(sink)?;
    drop(reader);
    Ok(TableInfo {
        origin: origin.to_string(),
        format: Format::Csv,
        sheet: None,
        header_row: table.header_row,
        rows: table.rows,
        headers: table.headers,
        encoding: Some(encoding.name()),
        delimiter: Some(delimiter as char),
        sha256: hex(&hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use encoding_rs::{UTF_16BE, UTF_16LE};

    use super::*;

    #[test]
    fn encoding_detection() {
        for (head, truncated, configured, expect, bom) in [
            (&b"\xEF\xBB\xBFNom;Pr\xC3\xA9nom"[..], false, None, "UTF-8", 3),
            (b"\xFF\xFEN\0o\0m\0", false, None, "UTF-16LE", 2),
            (b"\xFE\xFF\0N\0o\0m", false, None, "UTF-16BE", 2),
            (b"Nom;Pr\xC3\xA9nom", false, None, "UTF-8", 0),
            (b"Nom;Pr\xE9nom", false, None, "windows-1252", 0),
            (b"plain ascii", false, None, "UTF-8", 0),
            (b"", false, None, "UTF-8", 0),
            // Sample cut in the middle of "é": still UTF-8; not when the file ends there.
            (b"Pr\xC3", true, None, "UTF-8", 0),
            (b"Pr\xC3", false, None, "windows-1252", 0),
            // Configured wins over guessing, a BOM wins over configured.
            (b"Nom;Pr\xC3\xA9nom", false, Some(WINDOWS_1252), "windows-1252", 0),
            (b"\xFF\xFEN\0", false, Some(WINDOWS_1252), "UTF-16LE", 2),
            (b"x", false, Some(UTF_16BE), "UTF-16BE", 0),
            (b"x", false, Some(UTF_16LE), "UTF-16LE", 0),
        ] {
            let (enc, len) = detect_encoding(head, truncated, configured);
            assert_eq!((enc.name(), len), (expect, bom), "{head:?}");
        }
    }

    #[test]
    fn delimiter_detection() {
        for (text, expect) in [
            ("a;b;c\n1;2;3\n", ';'),
            ("a,b,c\n1,2,3\n", ','),
            ("a\tb\tc\n1\t2\t3\n", '\t'),
            ("a|b|c\n1|2|3\n", '|'),
            // Commas in values of a semicolon file.
            ("Nom;Prénom;Ville\nDupont, Marie;M;Paris, 15e\nMartin;L;Lyon\n", ';'),
            // Quoted delimiters do not count.
            ("\"a;b\",c,d\n\"x;y;z\",1,2\n", ','),
            ("\"multi\nline;;;\",c,d\n1,2,3\n", ','),
            // Title lines above the header.
            ("Export RH, 2026\n\nNom;Prénom;Courriel\nD;M;m@a.fr\nL;J;j@a.fr\n", ';'),
            // Tie: ; first, then ,.
            ("a;b,c\n", ';'),
            ("a,b|c\n", ','),
            ("a\tb|c\n", '\t'),
            // A single column: nothing to split on.
            ("Courriel\nm@a.fr\n", ';'),
            ("", ';'),
            // CRLF, and an Excel-padded file.
            ("a,b\r\n1,2\r\n,\r\n,\r\n", ','),
        ] {
            assert_eq!(detect_delimiter(text) as char, expect, "{text:?}");
        }
    }

    #[test]
    fn utf16_without_bom_detection() {
        let le: Vec<u8> = "Nom;Prénom\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = "Nom;Prénom\r\n".encode_utf16().flat_map(u16::to_be_bytes).collect();
        for (head, expect) in [
            (&le[..], Some("UTF-16LE")),
            (&be[..], Some("UTF-16BE")),
            (b"Nom;Prenom\r\n", None),
            (b"\0\0\0\0", None),
            (b"N\0", None),
            (b"", None),
        ] {
            assert_eq!(utf16_without_bom(head).map(|e| e.name()), expect, "{head:?}");
        }
        assert_eq!(detect_encoding(&le, false, None), (UTF_16LE, 0));
        assert_eq!(detect_encoding(&le, false, Some(WINDOWS_1252)), (WINDOWS_1252, 0));
    }

    #[test]
    fn lone_cr_become_line_feeds() {
        for (input, expect) in
            [("a\rb\r\nc\nd\r", "a\nb\nc\nd\n"), ("\r\n\r\n", "\n\n"), ("x\r\ry", "x\n\ny"), ("plain", "plain")]
        {
            // One byte per read, so a CRLF always straddles two reads.
            let mut reader = LoneCr { inner: io::BufReader::with_capacity(1, input.as_bytes()), after_cr: false };
            let mut out = String::new();
            let mut byte = [0u8; 1];
            while reader.read(&mut byte).unwrap() == 1 {
                out.push(byte[0] as char);
            }
            assert_eq!(out, expect, "{input:?}");
        }
        assert!(has_lone_cr("a\rb"));
        assert!(!has_lone_cr("a\r\nb\r"));
    }
}
