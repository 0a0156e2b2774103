//! The workbook readers (calamine behind format detection, the zip bomb
//! guard, sheet choice) on arbitrary bytes, under every extension.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::tolerate_calamine_panics();
    let dir = tempfile::tempdir().expect("temp dir");
    let columns = common::columns();
    for ext in ["xlsx", "xlsm", "xlsb", "xls", "ods"] {
        let path = dir.path().join(format!("input.{ext}"));
        std::fs::write(&path, data).expect("write input");
        common::read(&path, &columns);
    }
});
