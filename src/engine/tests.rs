//! The engine's order of reads: the current state is read beside the
//! sources, on either runtime flavour, and checked in the write transaction.

use std::time::Duration;

use super::*;
use crate::{
    config::load_from,
    domain::{Attachment, PersonName, Placement, Rights},
    store::{CurrentAttachment, testing::fresh_sqlite},
};

const ACME: &str = "12345678200010";

fn acme() -> StructureId {
    StructureId::parse(crate::domain::IdentifierType::Siret, ACME).unwrap()
}

/// `who` attached to ACME at structure level, without rights.
fn current(who: &str) -> CurrentAttachment {
    CurrentAttachment {
        attachment: Attachment {
            structure: acme(),
            email: Email::parse(who).unwrap(),
            placement: Placement { service: None, rights: Rights::default() },
        },
        name: PersonName::default(),
    }
}

async fn import(store: &Store, people: &[&str]) {
    let rows: Vec<CurrentAttachment> = people.iter().map(|p| current(p)).collect();
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[acme()], &rows, Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
}

fn emails(state: &CurrentState) -> Vec<&str> {
    state.emails().collect()
}

/// An engine over a csv of `a@` and `b@`, governing ACME, absent people
/// detached at once and no guard in the way.
fn engine(store: Store, dir: &tempfile::TempDir) -> Engine {
    let csv = dir.path().join("hr.csv");
    std::fs::write(&csv, "Courriel\na@acme.fr\nb@acme.fr\n").unwrap();
    let text = format!(
        r#"
[[structures]]
identifier = "{ACME}"
name = "ACME France"
main_manager = "gp@acme.fr"

[guards]
grace_runs = 0
max_detach = 100
max_detach_percent = 100.0

[[sources]]
name = "hr"
path = "{}"
default_structure = "{ACME}"
[sources.columns]
email = "Courriel"
"#,
        csv.display()
    );
    let config = load_from(&text, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    Engine { config: Arc::new(config), store, clock: Clock { now: Utc::now() } }
}

/// A plan against a portal holding `a@` and `c@`: attach `b@`, detach `c@`.
async fn plan_diffs_against_the_current_state() {
    let (store, dir) = fresh_sqlite().await;
    import(&store, &["a@acme.fr", "c@acme.fr"]).await;
    let engine = engine(store, &dir);
    let opts = RunOptions { dry_run: true, out: Some(dir.path().join("plan")), ..RunOptions::default() };
    let summary = engine.run(&opts).await.unwrap();
    assert_eq!(summary.outcome, RunOutcome::Done, "{:?}", summary.message);
    assert_eq!((summary.totals.attach, summary.totals.detach), (1, 1));
}

/// The command line runs the engine in the multi-thread runtime's `block_on`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_in_a_multi_thread_runtime() {
    plan_diffs_against_the_current_state().await;
}

/// The daemon runs it on a blocking thread, through the runtime's handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_on_a_blocking_thread_as_the_daemon_does() {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(plan_diffs_against_the_current_state())).await.unwrap();
}

/// A current-thread runtime cannot read beside the sources: the store is read
/// after them, with the same result.
#[tokio::test(flavor = "current_thread")]
async fn plan_on_a_current_thread_runtime() {
    plan_diffs_against_the_current_state().await;
}

/// Waits until the snapshot read is done (so what follows comes after it).
async fn finished(read: &SnapshotRead) {
    while !read.0.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The snapshot is used as it is when nothing replaced the current state
/// since; after an `import-current` committed in between, the run's
/// transaction reads the new rows.
async fn the_run_reads_again_what_was_replaced_after_the_snapshot(store: Store) {
    import(&store, &["a@acme.fr"]).await;
    let read = SnapshotRead::start(&store, vec![acme()]);
    finished(&read).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(emails(&read.current_in(&mut tx, &[acme()]).await.unwrap()), ["a@acme.fr"]);
    tx.rollback().await.unwrap();

    let read = SnapshotRead::start(&store, vec![acme()]);
    finished(&read).await;
    import(&store, &["b@acme.fr", "c@acme.fr"]).await;
    let mut tx = store.begin().await.unwrap();
    let current = read.current_in(&mut tx, &[acme()]).await.unwrap();
    assert_eq!(emails(&current), ["b@acme.fr", "c@acme.fr"], "the snapshot was stale");
    tx.rollback().await.unwrap();
}

crate::both_backends!(the_run_reads_again_what_was_replaced_after_the_snapshot);
