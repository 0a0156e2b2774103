//! What happens when a source's schedule fires: find the slot, make sure no
//! run of that source is going on here, claim the slot in the store (so one
//! instance of several runs it), run, log.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::slot::Schedule;
use crate::{
    config::Config,
    core::approval::rfc3339,
    engine::{Clock, Engine, EngineError, HousekeepingSummary, RunOptions, RunSummary},
    store::Store,
};

/// A tick older than this after its slot is stray (see `Schedule::due_at`);
/// the scheduler fires within about a second.
pub const TOLERANCE: Duration = Duration::seconds(30);

/// Why a scheduled run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the run stopped abnormally: {0}")]
    Aborted(String),
}

/// Runs one source: the engine in the daemon, something slower or failing in tests.
pub type Runner = Arc<
    dyn Fn(Arc<Config>, Store, String) -> Pin<Box<dyn Future<Output = Result<RunSummary, RunError>> + Send>>
        + Send
        + Sync,
>;

/// The engine as a runner. The engine reads its sources synchronously, so a
/// run goes on a blocking thread: the runtime's workers stay free for
/// signals, the scheduler and the other sources.
pub fn engine_runner() -> Runner {
    Arc::new(|config, store, source| {
        Box::pin(async move {
            let handle = tokio::runtime::Handle::current();
            let run = tokio::task::spawn_blocking(move || {
                // A daemon runs "now", never at a fixed test time.
                let engine = Engine { config, store, clock: Clock { now: Utc::now() } };
                let opts = RunOptions { sources: vec![source], progress: false, ..RunOptions::default() };
                handle.block_on(engine.run(&opts))
            });
            match run.await {
                Ok(result) => result.map_err(RunError::Engine),
                Err(e) => Err(RunError::Aborted(e.to_string())),
            }
        })
    })
}

/// A source's schedule as a job runs it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub source: String,
    pub schedule: Schedule,
    pub tz: Tz,
}

/// The housekeeping job's name where a source's would be (its lock and its
/// slots); no source can be called so, names take no `@`.
pub const HOUSEKEEPING: &str = "@housekeeping";

impl JobSpec {
    /// Expiry across all structures and reminders, not a source's run.
    pub fn is_housekeeping(&self) -> bool {
        self.source == HOUSEKEEPING
    }
}

/// What one tick did.
#[derive(Debug)]
pub enum TickOutcome {
    /// The run happened (done, held or rejected: see the summary).
    Ran { slot: DateTime<Utc>, summary: Box<RunSummary> },
    /// The housekeeping job ran.
    Housekept { slot: DateTime<Utc>, summary: HousekeepingSummary },
    /// The run, or the claim, failed; the daemon goes on.
    Failed { slot: DateTime<Utc>, error: String },
    /// The previous run of this source still holds its lock here.
    Busy { slot: DateTime<Utc> },
    /// Another instance (or an earlier tick) already claimed the slot.
    Taken { slot: DateTime<Utc> },
    /// No slot is due: a stray tick (see `Schedule::due_at`).
    NotDue,
    /// The daemon is stopping: no new run.
    Stopping,
}

/// The configuration and the store in force; replaced together on reload.
#[derive(Clone)]
pub struct Current {
    pub config: Arc<Config>,
    pub store: Store,
}

/// State shared by the daemon loop and the jobs.
pub struct Shared {
    pub instance: String,
    current: RwLock<Current>,
    /// One lock per source name, kept across reloads so a run started under
    /// the previous configuration still holds off the next slot.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    stopping: AtomicBool,
    runner: Runner,
    /// What the jobs did, for `/healthz` and `/metrics`.
    pub activity: Arc<crate::ops::Activity>,
}

impl Shared {
    pub fn new(instance: String, current: Current, runner: Runner) -> Shared {
        Shared {
            instance,
            current: RwLock::new(current),
            locks: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            runner,
            activity: Arc::default(),
        }
    }

    pub fn current(&self) -> Current {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn replace(&self, current: Current) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = current;
    }

    fn lock_for(&self, source: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(source.to_string()).or_default().clone()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Takes no new run, and returns once the runs in progress have ended.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let locks: Vec<_> = self.locks.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for lock in locks {
            // A tick that gets the lock after this sees `stopping` and leaves.
            drop(lock.lock().await);
        }
    }

    /// One firing of `job`'s schedule at `fired_at`.
    pub async fn tick(&self, job: &JobSpec, fired_at: DateTime<Utc>) -> TickOutcome {
        if self.is_stopping() {
            return TickOutcome::Stopping;
        }
        let Some(slot) = job.schedule.due_at(job.tz, fired_at, TOLERANCE) else { return TickOutcome::NotDue };
        let lock = self.lock_for(&job.source);
        let Ok(guard) = lock.try_lock_owned() else { return TickOutcome::Busy { slot } };
        // Checked again under the lock: `stop` waits for holders only.
        if self.is_stopping() {
            return TickOutcome::Stopping;
        }
        let Current { config, store } = self.current();
        match store.claim_slot(&job.source, slot, &self.instance).await {
            Ok(true) => {}
            Ok(false) => return TickOutcome::Taken { slot },
            Err(e) => return TickOutcome::Failed { slot, error: format!("cannot claim the slot: {e}") },
        }
        tracing::info!(source = %job.source, slot = %rfc3339(&slot), instance = %self.instance, "scheduled run started");
        if job.is_housekeeping() {
            // No source to read: it stays on this task.
            let engine = Engine { config, store, clock: Clock { now: Utc::now() } };
            let result = engine.housekeeping().await;
            drop(guard);
            return match result {
                Ok(summary) => TickOutcome::Housekept { slot, summary },
                Err(e) => TickOutcome::Failed { slot, error: crate::error_chain::error_chain(&e) },
            };
        }
        let result = (self.runner)(config, store, job.source.clone()).await;
        drop(guard);
        match result {
            Ok(summary) => TickOutcome::Ran { slot, summary: Box::new(summary) },
            Err(e) => TickOutcome::Failed { slot, error: crate::error_chain::error_chain(&e) },
        }
    }
}

/// Logs a tick's outcome with structured fields.
pub fn log(source: &str, instance: &str, outcome: &TickOutcome) {
    match outcome {
        TickOutcome::Ran { slot, summary } => {
            let c = &summary.totals;
            let run_id = summary.run_id.unwrap_or_default();
            let outcome = summary.outcome.as_str();
            let why = summary.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            macro_rules! ran {
                ($level:ident) => {
                    tracing::$level!(
                        source, slot = %rfc3339(slot), instance, run_id, outcome,
                        attach = c.attach, detach = c.detach, moves = c.moves, rights = c.rights,
                        raised = c.raised, superseded = c.superseded, anomalies = c.anomalies,
                        "scheduled run finished{why}"
                    )
                };
            }
            if summary.outcome == crate::core::run::RunOutcome::Done {
                ran!(info);
            } else {
                ran!(warn);
            }
        }
        TickOutcome::Housekept { slot, summary } => {
            let (expired, reminded, failures) = (summary.expired.len(), summary.reminded.len(), summary.failures.len());
            if failures == 0 {
                tracing::info!(slot = %rfc3339(slot), instance, expired, reminded, "housekeeping finished");
            } else {
                let why = summary.failures.join("; ");
                tracing::warn!(slot = %rfc3339(slot), instance, expired, reminded, failures, "housekeeping finished: {why}");
            }
        }
        TickOutcome::Failed { slot, error } => {
            tracing::error!(source, slot = %rfc3339(slot), instance, error = %error, "scheduled run failed")
        }
        TickOutcome::Busy { slot } => tracing::warn!(
            source, slot = %rfc3339(slot), instance,
            "slot skipped: the previous run of this source is still going"
        ),
        TickOutcome::Taken { slot } => {
            tracing::info!(source, slot = %rfc3339(slot), instance, "slot skipped: another instance claimed it")
        }
        TickOutcome::NotDue => tracing::debug!(source, instance, "tick with no due slot ignored"),
        TickOutcome::Stopping => tracing::info!(source, instance, "slot skipped: the daemon is stopping"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::{Notify, Semaphore};

    use super::*;
    use crate::{
        config::load_from,
        core::run::{RunCounts, RunOutcome},
        store::testing::fresh_sqlite,
    };

    const CONFIG: &str = r#"
[[structures]]
identifier = "12345678200010"
name = "ACME France"
main_manager = "gp@acme.fr"

[[sources]]
name = "hr"
path = "hr.csv"
schedule = "*/2 * * * * *"
default_structure = "12345678200010"
[sources.columns]
email = "Courriel"
"#;

    fn summary() -> RunSummary {
        RunSummary {
            run_id: Some(7),
            outcome: RunOutcome::Done,
            dry_run: false,
            message: None,
            report_dir: None,
            sources: Vec::new(),
            counts: Default::default(),
            totals: RunCounts::default(),
            held: 0,
            raised_ids: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A runner that counts its runs and, when gated, waits for a permit.
    fn gated_runner(started: Arc<AtomicUsize>, gate: Option<Arc<Semaphore>>, running: Arc<Notify>) -> Runner {
        Arc::new(move |_config, _store, _source| {
            let (started, gate, running) = (started.clone(), gate.clone(), running.clone());
            Box::pin(async move {
                started.fetch_add(1, Ordering::SeqCst);
                running.notify_one();
                if let Some(gate) = gate {
                    let _permit = gate.acquire().await.map_err(|e| RunError::Aborted(e.to_string()))?;
                }
                Ok(summary())
            })
        })
    }

    async fn shared(runner: Runner, instance: &str) -> (Arc<Shared>, JobSpec, tempfile::TempDir) {
        let config = Arc::new(load_from(CONFIG, None, &[]).unwrap());
        let (store, dir) = fresh_sqlite().await;
        let job =
            JobSpec { source: "hr".into(), schedule: Schedule::parse("*/2 * * * * *").unwrap(), tz: config.timezone };
        (Arc::new(Shared::new(instance.into(), Current { config, store }, runner)), job, dir)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn kind(o: &TickOutcome) -> String {
        match o {
            TickOutcome::Ran { slot, .. } => format!("ran {}", rfc3339(slot)),
            TickOutcome::Housekept { slot, summary } => {
                format!("housekept {} expired {:?}", rfc3339(slot), summary.expired)
            }
            TickOutcome::Failed { slot, error } => format!("failed {} {error}", rfc3339(slot)),
            TickOutcome::Busy { slot } => format!("busy {}", rfc3339(slot)),
            TickOutcome::Taken { slot } => format!("taken {}", rfc3339(slot)),
            TickOutcome::NotDue => "not due".into(),
            TickOutcome::Stopping => "stopping".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slot_that_comes_while_the_previous_run_goes_on_is_skipped() {
        let (started, running, gate) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
        let (shared, job, _dir) =
            shared(gated_runner(started.clone(), Some(gate.clone()), running.clone()), "a:1").await;

        let first = {
            let (shared, job) = (shared.clone(), job.clone());
            tokio::spawn(async move { shared.tick(&job, at("2026-11-23T08:00:00.300Z")).await })
        };
        running.notified().await;
        // The next slot comes while the first run waits at the gate.
        let second = shared.tick(&job, at("2026-11-23T08:00:02.300Z")).await;
        assert_eq!(kind(&second), "busy 2026-11-23T08:00:02Z");
        gate.add_permits(1);
        assert_eq!(kind(&first.await.unwrap()), "ran 2026-11-23T08:00:00Z");
        // Free again: the slot after runs.
        gate.add_permits(1);
        assert_eq!(kind(&shared.tick(&job, at("2026-11-23T08:00:04.100Z")).await), "ran 2026-11-23T08:00:04Z");
        assert_eq!(started.load(Ordering::SeqCst), 2, "the busy slot never ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_slot_runs_once_even_when_ticks_straddle_a_second() {
        let started = Arc::new(AtomicUsize::new(0));
        let (shared, job, _dir) = shared(gated_runner(started.clone(), None, Arc::new(Notify::new())), "a:1").await;
        // Another instance on the same store (same store, other id).
        let other =
            Shared::new("b:2".into(), shared.current(), gated_runner(started.clone(), None, Arc::new(Notify::new())));
        let ticks = [
            (&*shared, "2026-11-23T08:00:00.998Z", "ran 2026-11-23T08:00:00Z"),
            (&other, "2026-11-23T08:00:01.003Z", "taken 2026-11-23T08:00:00Z"),
            (&other, "2026-11-23T08:00:02.010Z", "ran 2026-11-23T08:00:02Z"),
            (&*shared, "2026-11-23T08:00:02.400Z", "taken 2026-11-23T08:00:02Z"),
            (&*shared, "2026-11-23T08:10:00.400Z", "ran 2026-11-23T08:10:00Z"),
        ];
        for (who, now, expect) in ticks {
            assert_eq!(kind(&who.tick(&job, at(now)).await), expect, "{} at {now}", who.instance);
        }
        assert_eq!(started.load(Ordering::SeqCst), 3);
        let claims = shared.current().store.claimed_slots().await.unwrap();
        let owners: Vec<(String, &str)> = claims.iter().map(|c| (rfc3339(&c.slot_at), c.instance.as_str())).collect();
        assert_eq!(
            owners,
            [
                ("2026-11-23T08:00:00Z".to_string(), "a:1"),
                ("2026-11-23T08:00:02Z".to_string(), "b:2"),
                ("2026-11-23T08:10:00Z".to_string(), "a:1")
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_waits_for_the_run_in_progress_and_refuses_new_ones() {
        let (started, running, gate) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
        let (shared, job, _dir) =
            shared(gated_runner(started.clone(), Some(gate.clone()), running.clone()), "a:1").await;
        let run = {
            let (shared, job) = (shared.clone(), job.clone());
            tokio::spawn(async move { shared.tick(&job, at("2026-11-23T08:00:00.300Z")).await })
        };
        running.notified().await;
        let stop = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.stop().await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!stop.is_finished(), "stop waits for the run");
        assert_eq!(kind(&shared.tick(&job, at("2026-11-23T08:00:02.300Z")).await), "stopping");
        gate.add_permits(1);
        stop.await.unwrap();
        assert_eq!(kind(&run.await.unwrap()), "ran 2026-11-23T08:00:00Z");
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_do_each_housekeeping_slot_once() {
        let started = Arc::new(AtomicUsize::new(0));
        let (shared, _, _dir) = shared(gated_runner(started.clone(), None, Arc::new(Notify::new())), "a:1").await;
        let other =
            Shared::new("b:2".into(), shared.current(), gated_runner(started.clone(), None, Arc::new(Notify::new())));
        let job = JobSpec {
            source: HOUSEKEEPING.into(),
            schedule: Schedule::parse("0 0 7 * * *").unwrap(),
            tz: shared.current().config.timezone,
        };
        let ticks = [
            (&*shared, "2026-11-23T06:00:00.400Z", "housekept 2026-11-23T06:00:00Z expired []"),
            (&other, "2026-11-23T06:00:00.500Z", "taken 2026-11-23T06:00:00Z"),
            (&other, "2026-11-24T06:00:00.300Z", "housekept 2026-11-24T06:00:00Z expired []"),
            (&*shared, "2026-11-24T06:00:01.100Z", "taken 2026-11-24T06:00:00Z"),
        ];
        for (who, now, expect) in ticks {
            assert_eq!(kind(&who.tick(&job, at(now)).await), expect, "{} at {now}", who.instance);
        }
        assert_eq!(started.load(Ordering::SeqCst), 0, "housekeeping runs no source");
        let claims = shared.current().store.claimed_slots().await.unwrap();
        let owners: Vec<(&str, &str)> = claims.iter().map(|c| (c.source.as_str(), c.instance.as_str())).collect();
        assert_eq!(owners, [(HOUSEKEEPING, "a:1"), (HOUSEKEEPING, "b:2")]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_run_is_reported_and_a_stray_tick_ignored() {
        let failing: Runner = Arc::new(|_, _, _| {
            Box::pin(async { Err(RunError::Engine(EngineError::Usage("the store went away".into()))) })
        });
        let (shared, job, _dir) = shared(failing, "a:1").await;
        let outcome = shared.tick(&job, at("2026-11-23T08:00:00.300Z")).await;
        assert_eq!(kind(&outcome), "failed 2026-11-23T08:00:00Z the store went away");
        let hourly = JobSpec { schedule: Schedule::parse("0 0 * * * *").unwrap(), ..job };
        assert_eq!(kind(&shared.tick(&hourly, at("2026-11-23T08:31:00Z")).await), "not due");
    }
}
