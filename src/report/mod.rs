//! Reports: CSV and XLSX files written atomically (DESIGN.md §8).
//!
//! Two layers: generic tables written as CSV or XLSX (also used by the CLI's
//! exports), and the run reports built from a run's changes, anomalies and
//! counts, whose column names are a contract.

mod csv;
mod run;
mod table;
mod xlsx;

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
};

pub use self::csv::{write_csv, write_csv_source, write_csv_to};
pub use self::run::{
    ANOMALIES_COLUMNS, CHANGES_COLUMNS, PENDING_COLUMNS, ReportFiles, ReportedChange, RunReport, RunReportData,
    SUMMARY_COLUMNS, TOTAL, anomalies_table, changes_table, pending_table, run_info_table, summary_table,
    write_run_reports,
};
pub use self::table::{Table, TableSource, Value, collect, neutralize};
pub use self::xlsx::{write_xlsx, write_xlsx_sources};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {message}", path.display())]
    Xlsx { path: PathBuf, message: String },
    #[error("cannot write {}: {message}", path.display())]
    Csv { path: PathBuf, message: String },
    /// A row with another number of cells than the table has columns: a bug
    /// in the caller, reported rather than written misaligned.
    #[error("cannot write {}: table {table}, row {row} has {got} cells for {expected} columns", path.display())]
    RowLength { path: PathBuf, table: String, row: usize, expected: usize, got: usize },
}

impl ReportError {
    /// A row must have one cell per header, or the columns would shift.
    pub(crate) fn check_row(
        path: &Path,
        table: &str,
        row: usize,
        expected: usize,
        got: usize,
    ) -> Result<(), ReportError> {
        if got == expected {
            return Ok(());
        }
        Err(ReportError::RowLength { path: path.to_path_buf(), table: table.to_string(), row, expected, got })
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
        move |source| ReportError::Io { path: path.to_path_buf(), source }
    }

    /// The reader went away (e.g. `| head`): the CLI may stop quietly.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ReportError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The directory `path` goes into, `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `path` through a hidden temporary file in the same directory, then
/// renames it into place: a reader sees the old file or the whole new one,
/// and on error nothing is left behind (the temporary file is removed on drop).
fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> Result<(), ReportError>) -> Result<(), ReportError> {
    let dir = parent_dir(path);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile defaults to 0600; reports get the usual umask-governed mode.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(ReportError::io(path))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(ReportError::io(path))?;
    tmp.persist(path).map_err(|e| ReportError::io(path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: Vec<Vec<Value<'static>>>) -> Table {
        Table { name: "T".into(), headers: vec!["a".into(), "b".into()], rows }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    type Writer = fn(&Path, &Table) -> Result<(), ReportError>;
    const WRITERS: [(&str, Writer); 2] =
        [("x.csv", |p, t| write_csv(p, t, b';')), ("x.xlsx", |p, t| write_xlsx(p, std::slice::from_ref(t)))];

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let good = table(vec![vec!["1".into(), "2".into()]]);
        let bad = table(vec![vec!["1".into(), "2".into()], vec!["only one".into()]]);
        for (file, write) in WRITERS {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join(file);
            write(&path, &good).unwrap();
            let before = std::fs::read(&path).unwrap();
            let err = write(&path, &bad).unwrap_err();
            assert!(matches!(err, ReportError::RowLength { row: 2, expected: 2, got: 1, .. }), "{file}: {err:?}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), before, "{file}");
            assert_eq!(listing(tmp.path()), [file], "{file}");
        }
    }

    #[test]
    fn an_unwritable_target_is_an_io_error_naming_it() {
        let t = table(vec![]);
        for (file, write) in WRITERS {
            let tmp = tempfile::tempdir().unwrap();
            // A directory where the file should go: the final rename fails, even for root.
            let path = tmp.path().join(file);
            std::fs::create_dir(&path).unwrap();
            let err = write(&path, &t).unwrap_err();
            assert!(matches!(&err, ReportError::Io { path: p, .. } if *p == path), "{file}: {err:?}");
            assert!(err.to_string().starts_with(&format!("cannot write {}: ", path.display())), "{err}");
            assert_eq!(listing(tmp.path()), [file], "{file}");
            // A missing directory.
            let path = tmp.path().join("missing").join(file);
            let err = write(&path, &t).unwrap_err();
            assert!(matches!(&err, ReportError::Io { path: p, .. } if *p == path), "{file}: {err:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_directory_is_an_io_error_naming_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let t = table(vec![vec![Value::Int(1), "x".into()]]);
        for (file, write) in WRITERS {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("ro");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            let path = dir.join(file);
            // Root ignores permissions: then the write succeeds, still leaving no temporary.
            let privileged = std::fs::File::create(dir.join("probe")).is_ok();
            let _ = std::fs::remove_file(dir.join("probe"));
            let got = write(&path, &t);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            if privileged {
                assert!(got.is_ok(), "{file}: {got:?}");
                assert_eq!(listing(&dir), [file]);
            } else {
                let err = got.unwrap_err();
                assert!(matches!(&err, ReportError::Io { path: p, .. } if *p == path), "{file}: {err:?}");
                assert!(err.to_string().contains(&path.display().to_string()), "{err}");
                assert!(listing(&dir).is_empty(), "{file}");
            }
        }
    }

    #[test]
    fn broken_pipes_are_recognised() {
        struct Closed;
        impl io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_csv_to(Closed, &table(vec![]), b';', true).unwrap_err();
        assert!(err.is_broken_pipe(), "{err:?}");
        assert!(err.to_string().starts_with("cannot write <output>: "), "{err}");
    }
}
