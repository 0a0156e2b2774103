//! What the store examples share: their arguments and store, and what they
//! measure a read with (the process's CPU time and resident memory, Linux).
//! Each example uses part of it.
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

/// What a store example reads from its arguments `CONFIG.toml [TIMES] [rest…]`:
/// the configured structures, their store, how many times to read, and
/// the arguments after TIMES.
pub struct Setup {
    pub structures: Vec<chorus_sync::domain::StructureId>,
    pub store: chorus_sync::store::Store,
    pub times: usize,
    pub rest: Vec<String>,
}

/// [`Setup`] from the command line; `usage` is shown when CONFIG is missing.
pub async fn setup(usage: &str) -> anyhow::Result<Setup> {
    let mut args = std::env::args().skip(1);
    let config = args.next().ok_or_else(|| anyhow::anyhow!("usage: {usage}"))?;
    let times: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let config = chorus_sync::config::load(std::path::Path::new(&config)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let structures = config.catalog.ids().cloned().collect();
    let store = chorus_sync::store::Store::connect(&config.store.url).await?;
    Ok(Setup { structures, store, times, rest: args.collect() })
}
