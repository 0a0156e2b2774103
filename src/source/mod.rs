//! Sources: read rows from HR spreadsheets and from the directory (LDAP).
//!
//! [`read_table`] finds the header row of a sheet or csv file, then streams
//! one [`Record`] per non-blank data row to a sink. It only delivers typed
//! cells; `core::mapping` interprets them, so every format gets the same rules.

mod assemble;
mod delimited;
mod detect;
pub mod ldap;
mod limits;
mod ole2;
mod pipeline;
mod sheet;

use std::{fmt, fs::File, io::Read, path::Path};

use sha2::{Digest, Sha256};

use crate::{
    config::{CsvOptions, LimitsConfig},
    core::record::{ColumnMap, Field, Record},
};

pub use self::delimited::{detect_delimiter, detect_encoding};
pub use self::detect::detect_format;
pub use self::ldap::{DirectoryInfo, DirectorySpec, read_directory};

/// The header row must be found within this many rows of the top.
pub const HEADER_SCAN_ROWS: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Xlsx,
    Xlsm,
    Xlsb,
    Xls,
    Ods,
    Csv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Xlsx => "xlsx",
            Format::Xlsm => "xlsm",
            Format::Xlsb => "xlsb",
            Format::Xls => "xls",
            Format::Ods => "ods",
            Format::Csv => "csv",
        })
    }
}

/// What to read and which columns to look for.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec<'a> {
    pub path: &'a Path,
    /// Sheet name (matched exactly, then ignoring case and accents); `None` =
    /// the first visible worksheet. Ignored for csv.
    pub sheet: Option<&'a str>,
    /// Delimiter / encoding overrides for csv; a BOM still wins over the encoding.
    pub csv: CsvOptions,
    /// Field -> header text as configured.
    pub columns: &'a ColumnMap,
    /// Fields whose headers must all be on the header row, e.g. `[Email]`.
    pub required: &'a [Field],
    /// Size, rows, cells, sheets, zip inflation: beyond one the read fails.
    pub limits: LimitsConfig,
}

/// What was read, for logs, reports and the "same file as last run" check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The path as given, display form.
    pub origin: String,
    pub format: Format,
    /// The sheet actually read (`None` for csv).
    pub sheet: Option<String>,
    /// 1-based.
    pub header_row: u64,
    /// Non-blank data records delivered to the sink.
    pub rows: u64,
    /// Configured field -> header text as found in the file (found fields only).
    pub headers: Vec<(Field, String)>,
    /// csv only: "UTF-8", "UTF-16LE", "UTF-16BE", "windows-1252", …
    pub encoding: Option<&'static str>,
    /// csv only.
    pub delimiter: Option<char>,
    /// Hex SHA-256 of the file bytes.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unknown file format: {why}")]
    UnknownFormat { path: String, why: String },
    #[error("{path}: cannot read the spreadsheet: {message}")]
    Spreadsheet { path: String, message: String },
    #[error("{path}: no sheet named \"{sheet}\"; the workbook has: {}", quoted(.available))]
    SheetNotFound { path: String, sheet: String, available: Vec<String> },
    #[error("{path}{}: the sheet is empty", in_sheet(.sheet))]
    EmptySheet { path: String, sheet: Option<String> },
    #[error("{path}{}: missing column(s) {}; {}", in_sheet(.sheet), quoted(.missing), header_has(.found))]
    MissingColumns { path: String, sheet: Option<String>, missing: Vec<String>, found: Vec<String> },
    #[error(
        "{path}{}: column \"{header}\" appears more than once in the header row {row} (columns {})",
        in_sheet(.sheet),
        numbers(.columns)
    )]
    DuplicateColumn { path: String, sheet: Option<String>, row: u64, header: String, columns: Vec<u32> },
    #[error("{path}: no column is configured for the required field {field}")]
    Unconfigured { path: String, field: Field },
    #[error("{path}: row {row}: {message}")]
    Csv { path: String, row: u64, message: String },
    /// A `[limits]` bound was passed; the message names the key and its value.
    #[error("{path}: {message}")]
    Limit { path: String, message: String },
    /// A directory read that failed or may be incomplete: `url` has no
    /// credentials; `message` names the LDAP result code and text.
    #[error("{url}{}: {message}", base.as_ref().map(|b| format!(", base {b}")).unwrap_or_default())]
    Directory { url: String, base: Option<String>, message: String },
    /// Anything else a sink needs to report; the message should name the file.
    #[error("{0}")]
    Other(String),
}

fn quoted(items: &[String]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

fn in_sheet(sheet: &Option<String>) -> String {
    sheet.as_ref().map(|s| format!(", sheet \"{s}\"")).unwrap_or_default()
}

fn header_has(found: &[String]) -> String {
    if found.is_empty() {
        format!("no non-empty row in the first {HEADER_SCAN_ROWS} rows")
    } else {
        format!("the header row has: {}", quoted(found))
    }
}

fn numbers(columns: &[u32]) -> String {
    columns.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

impl SourceError {
    pub(crate) fn io(path: &str, source: std::io::Error) -> SourceError {
        SourceError::Io { path: path.to_string(), source }
    }
}

/// Reads the table described by `spec`, handing each non-blank data record
/// to `sink` in file order. An error from the sink stops the read and is
/// returned as is.
pub fn read_table(
    spec: &TableSpec<'_>,
    sink: &mut dyn FnMut(&Record) -> Result<(), SourceError>,
) -> Result<TableInfo, SourceError> {
    pipeline::pipelined(|records| read_table_here(spec, records), sink)
}

/// [`read_table`] on the calling thread.
fn read_table_here(spec: &TableSpec<'_>, sink: &mut pipeline::Hand<'_>) -> Result<TableInfo, SourceError> {
    let origin = spec.path.display().to_string();
    if let Some(field) = spec.required.iter().find(|f| !spec.columns.contains(**f)) {
        return Err(SourceError::Unconfigured { path: origin, field: *field });
    }
    limits::check_file_size(spec.path, &origin, &spec.limits)?;
    let format = detect_format(spec.path)?;
    match format {
        Format::Csv => delimited::read(spec, &origin, sink),
        _ => {
            if matches!(format, Format::Xlsx | Format::Xlsm | Format::Xlsb | Format::Ods) {
                limits::check_zip(spec.path, &origin, format, &spec.limits)?;
            }
            // Zip-based workbooks are read at random, so hash in a plain pass,
            // on a thread of its own: off the read's path (~30 ms at a million rows).
            let (sheet, table, sha256) = std::thread::scope(|scope| {
                let hashing = scope.spawn(|| hash_file(spec.path, &origin));
                let read = sheet::read(spec, format, &origin, sink);
                // A panic there is a bug, carried on as if it had happened here.
                let sha256 = hashing.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                read.and_then(|(sheet, table)| Ok((sheet, table, sha256?)))
            })?;
            Ok(TableInfo {
                origin,
                format,
                sheet: Some(sheet),
                header_row: table.header_row,
                rows: table.rows,
                headers: table.headers,
                encoding: None,
                delimiter: None,
                sha256,
            })
        }
    }
}

fn hash_file(path: &Path, origin: &str) -> Result<String, SourceError> {
    let mut file = File::open(path).map_err(|e| SourceError::io(origin, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SourceError::io(origin, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
