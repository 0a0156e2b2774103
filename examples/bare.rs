//! The physical limit of reading a source file: a calamine streaming read of
//! an xlsx sheet (`worksheet_cells_reader`) or a csv-crate read of a csv
//! file, touching every cell and doing nothing else. The benchmarks compare
//! `plan` with this.
//!
//! ```text
//! cargo run --release --example bare -- target/bench/data/hr.xlsx
//! ```

use std::{fs::File, io::BufReader, path::Path};

use calamine::{Reader, Xlsx};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: bare FILE.xlsx|FILE.csv"))?;
    let path = Path::new(&path);
    let (cells, bytes) = match path.extension().and_then(|e| e.to_str()) {
        Some("xlsx") => xlsx(path)?,
        Some("csv") => csv(path)?,
        _ => anyhow::bail!("{}: xlsx or csv expected", path.display()),
    };
    // Printed so the reads cannot be optimised away.
    println!("{cells} cells, {bytes} bytes of text");
    Ok(())
}

fn xlsx(path: &Path) -> anyhow::Result<(u64, u64)> {
    let mut wb: Xlsx<_> = Xlsx::new(BufReader::new(File::open(path)?))?;
    let sheet = wb.sheet_names().first().cloned().ok_or_else(|| anyhow::anyhow!("no sheet"))?;
    let mut reader = wb.worksheet_cells_reader(&sheet)?;
    let (mut cells, mut bytes) = (0u64, 0u64);
    while let Some(cell) = reader.next_cell()? {
        cells += 1;
        if let calamine::DataRef::SharedString(s) = cell.get_value() {
            bytes += s.len() as u64;
        } else if let calamine::DataRef::String(s) = cell.get_value() {
            bytes += s.len() as u64;
        }
    }
    Ok((cells, bytes))
}

fn csv(path: &Path) -> anyhow::Result<(u64, u64)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(b';')
        .buffer_capacity(1 << 16)
        .from_reader(File::open(path)?);
    let mut record = csv::ByteRecord::new();
    let (mut cells, mut bytes) = (0u64, 0u64);
    while reader.read_byte_record(&mut record)? {
        cells += record.len() as u64;
        bytes += record.as_slice().len() as u64;
    }
    Ok((cells, bytes))
}
