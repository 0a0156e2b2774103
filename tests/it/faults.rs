//! Faults: the real binary killed with SIGKILL at random points of `run` and
//! of a bulk `approve`, fifty times per backend, then the store checked: no
//! half run, no duplicated request, no lost decision, and the next command works.
//!
//! The seed is printed; `FAULT_SEED=N` replays a sequence of kill delays.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chorus_sync::{
    core::approval::{ApprovalRequest, RequestState},
    secret::Secret,
    store::{RequestFilter, Store},
};

use crate::support::{Backend, Env};

const PEOPLE: usize = 200;
const KILLS: usize = 50;

/// One structure, one csv source, no guards in the way: every run raises,
/// supersedes and records absences, so a kill has a lot to interrupt.
fn config(url: &str) -> String {
    format!(
        r#"timezone = "Europe/Paris"
[store]
url = "{url}"
[reports]
dir = "reports"
[[structures]]
identifier = "12345678200010"
name = "ACME France"
main_manager = "gp@acme.fr"
services = ["COMPTA", "ACHATS"]
[[sources]]
name = "hr"
kind = "spreadsheet"
path = "hr.csv"
default_structure = "12345678200010"
[sources.columns]
email = "Courriel"
service = "Code service"
[guards]
max_detach = false
max_detach_percent = false
min_rows_ratio = false
min_fill_ratio = false
grace_runs = 0
"#
    )
}

/// Version `v` of the HR file: every other person changes service between
/// versions, so each run supersedes half the open requests and raises as many.
fn write_source(env: &Env, v: usize) {
    let mut csv = String::from("Courriel;Code service\n");
    for i in 0..PEOPLE {
        let service = if (i + v).is_multiple_of(2) || i.is_multiple_of(3) { "COMPTA" } else { "ACHATS" };
        csv.push_str(&format!("p{i}@acme.fr;{service}\n"));
    }
    std::fs::write(env.path("hr.csv"), csv).unwrap();
}

/// Runs the binary and SIGKILLs it after `delay`; `Some(code)` if it exited first.
fn run_killed(env: &Env, args: &[&str], delay: Duration) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-sync"))
        .args(args)
        .current_dir(env.dir.path())
        .env("CHORUS_SYNC_NOW", &env.now)
        .env_remove("CHORUS_SYNC_CONFIG")
        .env_remove("CHORUS_SYNC_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    // It may have finished between the last poll and the kill.
    status.code()
}

fn timed(env: &Env, args: &[&str]) -> Duration {
    let start = Instant::now();
    env.run(args).expect(0);
    start.elapsed()
}

fn requests(rt: &tokio::runtime::Runtime, store: &Store) -> Vec<ApprovalRequest> {
    rt.block_on(store.list_requests(&RequestFilter::default())).unwrap()
}

/// No half run, no duplicated live request.
#[track_caller]
fn assert_consistent(rt: &tokio::runtime::Runtime, store: &Store, what: &str) {
    // A killed client's last COMMIT may still be running on the PostgreSQL
    // server: take the write lock once so the checks read a settled store.
    rt.block_on(async { store.begin().await.unwrap().rollback().await.unwrap() });
    let reqs = requests(rt, store);
    let runs = rt.block_on(store.list_runs(None)).unwrap();
    let mut per_run: BTreeMap<i64, u64> = BTreeMap::new();
    for r in &reqs {
        *per_run.entry(r.run_id).or_default() += 1;
    }
    for run in &runs {
        assert_eq!(run.outcome.as_str(), "done", "{what}: run {}", run.id);
        let (_, sources) = rt.block_on(store.get_run(run.id)).unwrap().unwrap();
        assert_eq!(sources.len(), 1, "{what}: run {} has its source record", run.id);
        assert_eq!(per_run.remove(&run.id).unwrap_or(0), run.counts.raised, "{what}: requests of run {}", run.id);
    }
    assert!(per_run.is_empty(), "{what}: requests of runs that are not recorded: {per_run:?}");
    let mut live = BTreeSet::new();
    for r in
        reqs.iter().filter(|r| matches!(r.state, RequestState::Held | RequestState::Pending | RequestState::Approved))
    {
        assert!(live.insert(r.key.clone()), "{what}: request #{} duplicates a live request: {:?}", r.id, r.key);
    }
}

/// Every request's history ends in its state (one query per request: once, at the end).
fn assert_histories_match(rt: &tokio::runtime::Runtime, store: &Store) {
    for r in requests(rt, store) {
        let history = rt.block_on(store.history(r.id)).unwrap();
        assert_eq!(history.last().map(|h| h.to), Some(r.state), "history of #{} ends in its state", r.id);
    }
}

fn sigkill_never_leaves_a_half_run_a_duplicate_or_a_lost_decision(backend: Backend) {
    let mut url = String::new();
    let env = Env::with_config(backend, |u| {
        url = u.to_string();
        config(u)
    });
    let seed = std::env::var("FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("faults ({backend:?}): FAULT_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    // One full run and one full approval, to know how long each takes.
    write_source(&env, 0);
    let run_time = timed(&env, &["run"]);
    let store = rt
        .block_on(Store::connect(&Secret::new(
            url.replace("sqlite://", &format!("sqlite://{}/", env.dir.path().display())),
        )))
        .unwrap();
    let approve = ["approvals", "approve", "--all-pending", "--as", "gp@acme.fr"];
    let approve_time = timed(&env, &approve);
    assert_consistent(&rt, &store, "after the first run");

    // Ids whose approval command exited 0, and the ones a killed bulk decided.
    let mut decided: BTreeSet<i64> = requests(&rt, &store).iter().map(|r| r.id).collect();
    let (mut hits, mut version) = (0, 0);
    // Kills that landed before the commit (nothing kept) and after it (all kept).
    let (mut rolled_back, mut committed) = (0, 0);
    for i in 0..KILLS {
        if i.is_multiple_of(2) {
            version += 1;
            write_source(&env, version);
            let delay = Duration::from_secs_f64(run_time.as_secs_f64() * rng.f64() * 1.1);
            let runs_before = rt.block_on(store.list_runs(None)).unwrap().len();
            let code = run_killed(&env, &["run"], delay);
            hits += usize::from(code.is_none());
            assert!(matches!(code, None | Some(0)), "run exited {code:?}");
            assert_consistent(&rt, &store, &format!("kill {i} (run after {delay:?})"));
            if code.is_none() {
                let kept = rt.block_on(store.list_runs(None)).unwrap().len() > runs_before;
                (rolled_back, committed) =
                    if kept { (rolled_back, committed + 1) } else { (rolled_back + 1, committed) };
            }
            // The next run works, and sees the same file: nothing left to raise twice.
            env.run(&["run"]).expect(0);
            assert_consistent(&rt, &store, &format!("the run after kill {i}"));
        } else {
            let pending: BTreeSet<i64> =
                requests(&rt, &store).iter().filter(|r| r.state == RequestState::Pending).map(|r| r.id).collect();
            assert!(!pending.is_empty(), "each run leaves requests to approve");
            let delay = Duration::from_secs_f64(approve_time.as_secs_f64() * rng.f64() * 1.1);
            let code = run_killed(&env, &approve, delay);
            hits += usize::from(code.is_none());
            let approved: BTreeSet<i64> = requests(&rt, &store)
                .iter()
                .filter(|r| pending.contains(&r.id) && r.state == RequestState::Approved)
                .map(|r| r.id)
                .collect();
            match code {
                Some(0) => assert_eq!(approved, pending, "kill {i}: a bulk approval that exited 0 is all there"),
                None => assert!(
                    approved.is_empty() || approved == pending,
                    "kill {i}: a killed bulk approval is all or nothing ({} of {})",
                    approved.len(),
                    pending.len()
                ),
                Some(c) => panic!("approve exited {c}"),
            }
            if code.is_none() {
                (rolled_back, committed) =
                    if approved.is_empty() { (rolled_back + 1, committed) } else { (rolled_back, committed + 1) };
            }
            decided.extend(approved);
            assert_consistent(&rt, &store, &format!("kill {i} (approve after {delay:?})"));
        }
    }
    // No decision lost: every approval that happened is in its request's history.
    for id in &decided {
        let history = rt.block_on(store.history(*id)).unwrap();
        assert!(
            history.iter().any(|h| h.to == RequestState::Approved && h.by.as_deref() == Some("gp@acme.fr")),
            "#{id}: approval lost: {history:?}"
        );
    }
    write_source(&env, version + 1);
    env.run(&["run"]).expect(0);
    env.run(&approve).expect(0);
    assert_consistent(&rt, &store, "at the end");
    assert_histories_match(&rt, &store);
    println!(
        "faults ({backend:?}): {hits} of {KILLS} kills hit a running process: {rolled_back} left nothing, \
         {committed} had committed (run {run_time:?}, approve {approve_time:?})"
    );
    assert!(hits >= KILLS / 4, "too few kills landed mid-command ({hits}): the delays are off");
    rt.block_on(store.close());
}

#[test]
fn sigkill_never_leaves_a_half_run_a_duplicate_or_a_lost_decision_sqlite() {
    sigkill_never_leaves_a_half_run_a_duplicate_or_a_lost_decision(Backend::Sqlite);
}

#[test]
fn sigkill_never_leaves_a_half_run_a_duplicate_or_a_lost_decision_postgres() {
    sigkill_never_leaves_a_half_run_a_duplicate_or_a_lost_decision(Backend::Postgres);
}
