//! Shared by the reader targets: the columns of the seed files and a read
//! that must return, never panic.

use std::path::Path;

use chorus_sync::{
    config::{CsvOptions, LimitsConfig},
    core::record::{ColumnMap, Field},
    source::{TableSpec, read_table},
};

pub fn columns() -> ColumnMap {
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

/// The reader turns a panic inside calamine into the file's error (found by
/// this fuzzer: tests/data/bad/fuzz-xls-cfb-sector-past-end.xls), as it does
/// in production; libFuzzer's hook would abort first. Panics anywhere else,
/// ours included, still abort and are reported.
pub fn tolerate_calamine_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_calamine = info.location().is_some_and(|l| l.file().contains("/calamine-"));
            if !in_calamine {
                abort(info);
            }
        }));
    });
}

/// Reads `path` with small limits, so the fuzzer spends its time on parsing,
/// not on inputs that a limit would refuse anyway.
pub fn read(path: &Path, columns: &ColumnMap) {
    let limits = LimitsConfig {
        max_file_bytes: 1 << 20,
        max_rows: 10_000,
        max_inflated_bytes: 64 << 20,
        ..LimitsConfig::default()
    };
    let spec = TableSpec { path, sheet: None, csv: CsvOptions::default(), columns, required: &[Field::Email], limits };
    let mut rows = 0u64;
    // Errors are expected: the point is that there is one, not a panic.
    let _ = read_table(&spec, &mut |record| {
        rows += 1;
        assert!(record.row > 0, "rows are 1-based");
        Ok(())
    });
}
