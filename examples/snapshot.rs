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

use std::time::Instant;

use common::{Setup, cpu_seconds};

// The binary's allocator, so the read costs what it costs in a run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Setup { structures, store, times, .. } = common::setup("snapshot CONFIG.toml [TIMES]").await?;
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
