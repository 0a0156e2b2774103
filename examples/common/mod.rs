//! What the store examples measure a read with: the process's CPU time and
//! resident memory (Linux). Each example uses part of it.
#![allow(dead_code)]

/// User + system time of the whole process (every thread), from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s).
pub fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces: count from its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).copied().unwrap_or_default().parse::<f64>()?) };
    // `rest` starts at field 3.
    Ok((ticks(14 - 3)? + ticks(15 - 3)?) / 100.0)
}

/// Resident memory in MB, from `/proc/self/statm` (pages of 4 KiB).
pub fn resident_mb() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).unwrap_or_default().parse()?;
    Ok(pages * 4096 / 1_000_000)
}
