//! The request reads of a run alone, a few times each, with the process's
//! CPU time, the wall time and the resident memory after each: the open
//! requests (`StoreTx::open_requests`, what the diff needs), the refused
//! changes, and the full pending and approved requests (`Store::list_requests`,
//! the report's pending sheet), all of every structure of a config.
//!
//! `open_requests` runs in a write transaction that is rolled back: run it on
//! a copy of the store. A third argument picks one read (`open`, `refused`,
//! `list`; `none` only connects), e.g. to count its instructions under
//! valgrind.
//!
//! ```text
//! cd /tmp/copy-of-a-primed-store
//! .../target/release/examples/requests chorus-sync.toml 5
//! valgrind --tool=cachegrind --cache-sim=no .../requests chorus-sync.toml 1 list
//! ```

mod common;

use std::time::Instant;

use chorus_sync::{core::approval::RequestState, store::RequestFilter};
use common::{Setup, cpu_seconds, resident_mb};

// The binary's allocator, so the read costs what it costs in a run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Setup { structures, store, times, rest } =
        common::setup("requests CONFIG.toml [TIMES] [open|refused|list]").await?;
    let only = rest.first();
    let run = |what: &str| only.is_none_or(|o| o == what);
    let open_filter = RequestFilter {
        states: vec![RequestState::Pending, RequestState::Approved],
        structures: structures.clone(),
        ..Default::default()
    };
    for _ in 0..times {
        let mut tx = store.begin().await?;
        if run("open") {
            let (wall, cpu) = (Instant::now(), cpu_seconds()?);
            let open = tx.open_requests(&structures).await?;
            report("open_requests", open.len(), wall, cpu)?;
        }
        if run("refused") {
            let (wall, cpu) = (Instant::now(), cpu_seconds()?);
            let refused = tx.refused_changes(&structures).await?;
            report("refused_changes", refused.len(), wall, cpu)?;
        }
        tx.rollback().await?;
        if run("list") {
            let (wall, cpu) = (Instant::now(), cpu_seconds()?);
            let pending = store.list_requests(&open_filter).await?;
            report("list_requests (pending, approved)", pending.len(), wall, cpu)?;
        }
    }
    store.close().await;
    Ok(())
}

fn report(what: &str, n: usize, wall: Instant, cpu: f64) -> anyhow::Result<()> {
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds()? - cpu);
    println!("{what}: {n} in {wall:.3} s wall, {cpu:.2} s CPU, {} MB resident", resident_mb()?);
    Ok(())
}
