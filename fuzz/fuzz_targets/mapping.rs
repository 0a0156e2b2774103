//! `core::mapping`: a record of arbitrary cells mapped with the reference
//! configuration (structures, services, value maps). Cells are separated by
//! 0xFF; the first byte of each picks its type.
#![no_main]

use std::{
    path::Path,
    sync::OnceLock,
};

use chorus_sync::{
    config::{Config, load_from},
    core::{
        anomaly::SourceFile,
        mapping::{Mapped, Mapper},
        record::{Cell, Field, Record},
    },
};
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = include_str!("../../config/reference.toml");
        load_from(text, Some(Path::new("reference.toml")), &[]).expect("the reference configuration loads")
    })
}

fn cell(bytes: &[u8]) -> Cell {
    let Some((&kind, rest)) = bytes.split_first() else { return Cell::Empty };
    let number = || {
        let mut b = [0u8; 8];
        b[..rest.len().min(8)].copy_from_slice(&rest[..rest.len().min(8)]);
        b
    };
    match kind % 7 {
        0 => Cell::Empty,
        1 => Cell::Int(i64::from_le_bytes(number())),
        2 => Cell::Float(f64::from_le_bytes(number())),
        3 => Cell::Bool(rest.first().is_some_and(|b| b & 1 == 1)),
        4 => match chrono::DateTime::from_timestamp(i64::from_le_bytes(number()) % 400_000_000_000, 0) {
            Some(d) => Cell::DateTime(d.naive_utc()),
            None => Cell::Empty,
        },
        5 => Cell::Error(String::from_utf8_lossy(rest).into_owned()),
        _ => Cell::Text(String::from_utf8_lossy(rest).into_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let source = &config.sources[0];
    let mut record = Record::new(2);
    for (field, bytes) in Field::ALL.iter().zip(data.split(|b| *b == 0xFF)) {
        record.set(*field, cell(bytes).as_ref());
    }
    let mapper = Mapper {
        file: SourceFile::new(&source.name, "fuzz.xlsx", Some("Personnel")),
        catalog: &config.catalog,
        scope: &source.scope,
        default_structure: source.default_structure.as_ref(),
        columns: &source.columns,
        values: &source.values,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
        resolved: Default::default(),
    };
    match mapper.map(&record) {
        Mapped::Row(row) => assert!(config.catalog.get(&row.structure).is_some(), "only configured structures"),
        Mapped::Rejected { anomalies, .. } => assert!(!anomalies.is_empty(), "a rejected row says why"),
    }
});
