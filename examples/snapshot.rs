//! The current-state read alone: `Store::current_snapshot` of every
//! structure of a config, a few times, with the process's CPU time and the
//! wall time of each read. The benchmarks compare store read strategies
//! with it.
//!
//! ```text
//! cd target/bench/data-1000000-s8
//! CHORUS_SYNC__STORE__URL='sqlite://store.db?mode=ro' \
//!     ../../release/examples/snapshot chorus-sync.toml 5
//! ```

mod common;

use std::{path::Path, time::Instant};

use chorus_sync::{domain::StructureId, store::Store};
use common::cpu_seconds;

// The binary's allocator, so the read costs what it costs in a run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let config = args.next().ok_or_else(|| anyhow::anyhow!("usage: snapshot CONFIG.toml [TIMES]"))?;
    let times: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let config = chorus_sync::config::load(Path::new(&config)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let structures: Vec<StructureId> = config.catalog.ids().cloned().collect();
    let store = Store::connect(&config.store.url).await?;
    for _ in 0..times {
        let (wall, cpu) = (Instant::now(), cpu_seconds()?);
        let snapshot = store.current_snapshot(&structures).await?;
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds()? - cpu);
        println!(
            "{} attachments of {} structures: {wall:.3} s wall, {cpu:.2} s CPU",
            snapshot.attachments.len(),
            structures.len()
        );
    }
    store.close().await;
    Ok(())
}
