//! The csv reader (encoding and delimiter detection, quoting, line ends) on
//! arbitrary bytes. Inputs that are not text are left to `sheet_reader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("input.csv");
    std::fs::write(&path, data).expect("write input");
    if !matches!(chorus_sync::source::detect_format(&path), Ok(chorus_sync::source::Format::Csv)) {
        return;
    }
    common::read(&path, &common::columns());
});
