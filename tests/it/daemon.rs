//! `chorus-sync daemon`, the real binary as a child process: schedules,
//! signals, reloads, and two instances on one PostgreSQL store.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use crate::support::{Backend, Daemon, Env, field, msg};

const EVERY_2S: &str = "*/2 * * * * *";
const HR_SCHEDULE: &str = "schedule = \"0 30 6 * * Mon-Fri\"";

/// Runs as the store has them: id → (outcome, sources, raised).
fn stored_runs(env: &Env) -> BTreeMap<i64, (String, Vec<String>, u64)> {
    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let sources = r["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
            let raised = r["counts"]["raised"].as_u64().unwrap();
            (r["id"].as_i64().unwrap(), (r["outcome"].as_str().unwrap().to_string(), sources, raised))
        })
        .collect()
}

/// Every request belongs to a stored run, and each run raised as many as it says.
#[track_caller]
fn assert_requests_match_runs(env: &Env, runs: &BTreeMap<i64, (String, Vec<String>, u64)>) {
    let requests = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    let mut per_run: BTreeMap<i64, u64> = BTreeMap::new();
    for r in requests.as_array().unwrap() {
        *per_run.entry(r["run_id"].as_i64().unwrap()).or_default() += 1;
    }
    let raised: BTreeMap<i64, u64> = runs.iter().filter(|(_, r)| r.2 > 0).map(|(id, r)| (*id, r.2)).collect();
    assert_eq!(per_run, raised, "requests per run vs the runs' raised counts");
}

/// The run ids a daemon logged as finished.
fn finished_runs(d: &Daemon) -> BTreeSet<i64> {
    d.find("scheduled run finished").iter().map(|(_, v)| field(v, "run_id").as_i64().unwrap()).collect()
}

/// The sample config with `schedule` on the hr source.
fn hr_every(schedule: &str) -> impl FnOnce(String) -> String {
    let line = format!("schedule = \"{schedule}\"");
    move |c: String| {
        assert!(c.contains(HR_SCHEDULE));
        c.replace(HR_SCHEDULE, &line)
    }
}

#[test]
fn runs_on_schedule_and_stops_cleanly_on_sigterm() {
    let env = Env::new(Backend::Sqlite, hr_every(EVERY_2S));
    let mut d = Daemon::start(&env, "daemon");
    let started = d.wait_for("daemon started", 1, Duration::from_secs(20));
    assert_eq!(field(&started[0].1, "jobs"), 1, "only hr has a schedule");
    d.wait_for("scheduled run finished", 2, Duration::from_secs(20));
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", d.log());
    assert_eq!(d.find("daemon stopped").len(), 1);

    let finished = d.find("scheduled run finished");
    let mut slots = BTreeSet::new();
    for (_, e) in &finished {
        assert_eq!(field(e, "source"), "hr");
        assert_eq!(field(e, "outcome"), "done", "{e}");
        let slot = field(e, "slot").as_str().unwrap().to_string();
        // A */2 schedule: whole even seconds, each once.
        let at = chrono::DateTime::parse_from_rfc3339(&slot).unwrap();
        assert_eq!((at.timestamp() % 2, at.timestamp_subsec_nanos()), (0, 0), "{slot}");
        assert!(slots.insert(slot.clone()), "slot {slot} ran twice");
    }
    // Every run started finished, and the store holds exactly those runs.
    assert_eq!(d.find("scheduled run started").len(), finished.len(), "{}", d.log());
    let runs = stored_runs(&env);
    assert_eq!(runs.keys().copied().collect::<BTreeSet<_>>(), finished_runs(&d));
    for (id, (outcome, sources, _)) in &runs {
        assert_eq!((outcome.as_str(), sources.as_slice()), ("done", &["hr".to_string()][..]), "run {id}");
        for f in ["summary.csv", "changes.csv", "anomalies.csv", "report.xlsx"] {
            assert!(env.path(&format!("reports/{id}/{f}")).is_file(), "run {id}: {f}");
        }
    }
    assert!(runs.values().next().is_some_and(|r| r.2 > 0), "the first run raised requests");
    assert_requests_match_runs(&env, &runs);
}

/// 8,000 people for ACME Services: a run that lasts a couple of seconds.
fn slow_source(env: &Env) {
    let mut csv = String::from("Matricule;Nom;Prénom;Courriel;Code service;Profil;Date de sortie;Statut\n");
    for i in 0..8_000 {
        let service = if i % 2 == 0 { "SUPPORT" } else { "VENTES" };
        csv.push_str(&format!("B{i};Nom{i};Prénom;p{i}@acme-services.fr;{service};Lecteur;;Actif\n"));
    }
    std::fs::write(env.path("samples/acme-services.csv"), csv).unwrap();
}

fn slow_every_second(c: String) -> String {
    let c = c.replace(HR_SCHEDULE, "");
    c.replace(
        "path = \"samples/acme-services.csv\"\n",
        "path = \"samples/acme-services.csv\"\nschedule = \"* * * * * *\"\n",
    )
}

#[test]
fn a_slot_during_a_run_is_skipped_and_sigterm_lets_the_run_finish() {
    let env = Env::new(Backend::Sqlite, slow_every_second);
    slow_source(&env);
    let mut d = Daemon::start(&env, "daemon");
    d.wait_for("scheduled run started", 1, Duration::from_secs(20));
    // The next second's slot comes while the run goes on.
    let busy = d.wait_for("slot skipped: the previous run of this source is still going", 1, Duration::from_secs(20));
    assert_eq!(busy[0].1["level"], "WARN");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", d.log());

    let stopping = d.find("stopping")[0].0;
    let finished = d.find("scheduled run finished");
    assert_eq!(d.find("scheduled run started").len(), finished.len(), "every run started finished: {}", d.log());
    assert!(finished.iter().any(|(i, _)| *i > stopping), "the run in progress finished after SIGTERM: {}", d.log());
    let runs = stored_runs(&env);
    assert_eq!(runs.keys().copied().collect::<BTreeSet<_>>(), finished_runs(&d));
    assert_eq!(runs.values().next().map(|r| (r.0.as_str(), r.2)), Some(("done", 8_000)));
    assert_requests_match_runs(&env, &runs);
}

#[test]
fn a_second_signal_abandons_the_run_in_progress_which_rolls_back() {
    let env = Env::new(Backend::Sqlite, slow_every_second);
    slow_source(&env);
    let mut d = Daemon::start(&env, "daemon");
    d.wait_for("scheduled run started", 1, Duration::from_secs(20));
    d.signal("TERM");
    d.wait_for("stopping", 1, Duration::from_secs(10));
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(1), "{}", d.log());
    let started = d.find("scheduled run started").len();
    assert!(started > d.find("scheduled run finished").len(), "a run was abandoned: {}", d.log());
    // Only runs that finished are in the store; the abandoned one left nothing.
    let runs = stored_runs(&env);
    assert_eq!(runs.keys().copied().collect::<BTreeSet<_>>(), finished_runs(&d));
    assert_requests_match_runs(&env, &runs);
}

#[test]
fn reload_keeps_the_old_config_when_the_new_one_is_invalid_and_picks_up_a_valid_one() {
    let env = Env::new(Backend::Sqlite, hr_every(EVERY_2S));
    let good = env.read("chorus-sync.toml");
    let mut d = Daemon::start(&env, "daemon");
    d.wait_for("scheduled run finished", 1, Duration::from_secs(20));

    // Two problems; SIGHUP at once (the file watcher may see it first: either reloads).
    let bad = good
        .replace(&format!("schedule = \"{EVERY_2S}\""), "schedule = \"every morning\"")
        .replace("main_manager = \"gp@acme.fr\"", "main_manager = \"not-an-address\"");
    std::fs::write(env.path("chorus-sync.toml"), &bad).unwrap();
    d.signal("HUP");
    let refused = d.wait_for("configuration not reloaded", 1, Duration::from_secs(10));
    assert_eq!(refused[0].1["level"], "ERROR");
    let errors: String = d.events().iter().filter(|v| v["level"] == "ERROR").map(|v| format!("{}\n", msg(v))).collect();
    assert!(errors.contains("sources[0].schedule") && errors.contains("every morning"), "{errors}");
    assert!(errors.contains("structures[0].main_manager"), "{errors}");
    // Still running on the old configuration: hr keeps running.
    let before = d.find("scheduled run finished").len();
    d.wait_for("scheduled run finished", before + 2, Duration::from_secs(20));
    assert!(d.child.try_wait().unwrap().is_none(), "still running");

    // A valid change, picked up from the file alone: acme-services instead of hr.
    let switched = good.replace(&format!("schedule = \"{EVERY_2S}\""), "").replace(
        "path = \"samples/acme-services.csv\"\n",
        &format!("path = \"samples/acme-services.csv\"\nschedule = \"{EVERY_2S}\"\n"),
    );
    std::fs::write(env.path("chorus-sync.toml"), switched).unwrap();
    let reloaded = d.wait_for("configuration reloaded", 1, Duration::from_secs(10));
    assert_eq!(field(&reloaded[0].1, "trigger"), "the configuration file changed");
    let reload_at = reloaded[0].0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !d.find("scheduled run finished").iter().any(|(_, e)| field(e, "source") == "acme-services") {
        assert!(Instant::now() < deadline, "acme-services never ran: {}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let hr_after =
        d.find("scheduled run started").iter().filter(|(i, e)| *i > reload_at && field(e, "source") == "hr").count();
    assert_eq!(hr_after, 0, "hr is no longer scheduled: {}", d.log());

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", d.log());
    let runs = stored_runs(&env);
    assert!(runs.values().any(|r| r.1 == ["acme-services"]), "{runs:?}");
    assert_requests_match_runs(&env, &runs);
}

#[test]
fn two_daemons_on_one_postgres_store_run_each_slot_once() {
    let env = Env::new(Backend::Postgres, hr_every("* * * * * *"));
    let mut a = Daemon::start(&env, "daemon a");
    let mut b = Daemon::start(&env, "daemon b");
    a.wait_for("daemon started", 1, Duration::from_secs(20));
    b.wait_for("daemon started", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(6));
    a.signal("TERM");
    b.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", a.log());
    assert_eq!(b.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", b.log());

    // Each slot ran once, by one of them.
    let mut by_slot: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for d in [&a, &b] {
        for (_, e) in d.find("scheduled run finished") {
            by_slot.entry(field(&e, "slot").as_str().unwrap().to_string()).or_default().push(d.name);
        }
        assert!(d.find("scheduled run failed").is_empty(), "{}", d.log());
    }
    assert!(by_slot.len() >= 4, "about one slot a second for 6 s: {by_slot:?}");
    let twice: Vec<_> = by_slot.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(twice.is_empty(), "slots run more than once: {twice:?}");
    // The other instance saw the slots it lost.
    let taken = a.find("slot skipped: another instance claimed it").len()
        + b.find("slot skipped: another instance claimed it").len();
    assert!(taken >= 1, "no contention seen:\n{}\n{}", a.log(), b.log());

    // The store agrees: one run per slot, exactly the runs logged.
    let runs = stored_runs(&env);
    let logged: BTreeSet<i64> = finished_runs(&a).union(&finished_runs(&b)).copied().collect();
    assert_eq!(runs.keys().copied().collect::<BTreeSet<_>>(), logged);
    assert_eq!(runs.len(), by_slot.len());
    assert_requests_match_runs(&env, &runs);
    // And each slot that ran was claimed in the slots table by the instance that ran it.
    let claims = claimed_slots(&env);
    for d in [&a, &b] {
        for (_, e) in d.find("scheduled run finished") {
            let slot = field(&e, "slot").as_str().unwrap();
            assert_eq!(claims.get(slot).map(String::as_str), field(&e, "instance").as_str(), "slot {slot}");
        }
    }
}

/// The slots table (slot → instance) of the env's store.
fn claimed_slots(env: &Env) -> BTreeMap<String, String> {
    let config = chorus_sync::config::load(&env.path("chorus-sync.toml")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = chorus_sync::store::Store::connect(&config.store.url).await.unwrap();
        let claims = store.claimed_slots().await.unwrap();
        store.close().await;
        claims.into_iter().map(|c| (chorus_sync::core::approval::rfc3339(&c.slot_at), c.instance)).collect()
    })
}

/// The pending request ids, from the command line.
fn ids_in_state(env: &Env, state: &str) -> BTreeSet<i64> {
    let list = env.run(&["approvals", "list", "--state", state, "--format", "json"]).expect(0).json();
    list.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[test]
fn the_housekeeping_job_expires_every_structure_and_the_next_run_lists_and_raises_them_again() {
    // No source on a schedule: housekeeping alone, every 2 seconds.
    let mut env = Env::new(Backend::Sqlite, |c| {
        assert!(c.contains(HR_SCHEDULE));
        c.replace(HR_SCHEDULE, "")
            + &format!("\n[approvals]\nexpire_after_days = 7\nhousekeeping_schedule = \"{EVERY_2S}\"\n")
    });
    // Requests raised 30 days ago; the daemon lives on the real clock.
    let secs = chrono::SecondsFormat::Secs;
    env.now = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339_opts(secs, true);
    env.run(&["run"]).expect(0);
    let raised = ids_in_state(&env, "pending");
    assert!(raised.len() > 3, "both structures have requests: {raised:?}");

    let mut d = Daemon::start(&env, "daemon");
    let started = d.wait_for("daemon started", 1, Duration::from_secs(20));
    assert_eq!(field(&started[0].1, "jobs"), 1, "the housekeeping job only");
    d.wait_for("housekeeping finished", 2, Duration::from_secs(20));
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", d.log());
    let expired: Vec<u64> =
        d.find("housekeeping finished").iter().map(|(_, e)| field(e, "expired").as_u64().unwrap()).collect();
    assert_eq!(expired[0], raised.len() as u64, "the first expires them all: {expired:?}");
    assert!(expired[1..].iter().all(|n| *n == 0), "and then there is nothing left: {expired:?}");
    assert_eq!(ids_in_state(&env, "expired"), raised);
    assert!(ids_in_state(&env, "pending").is_empty());

    // The next run lists them in its report and raises the changes again.
    env.now = chrono::Utc::now().to_rfc3339_opts(secs, true);
    let out = env.run(&["run"]).expect(0);
    let note = format!("{} request(s) expired since the last run", raised.len());
    assert!(out.stdout.contains(&note), "{}", out.stdout);
    // New requests (people whose end date passed in the meantime are not attached).
    let again = ids_in_state(&env, "pending");
    assert!(!again.is_empty() && again.len() <= raised.len(), "{again:?}");
    assert!(again.is_disjoint(&raised));
}

#[test]
fn a_scheduled_run_sends_its_digests_once() {
    let server = crate::notify::SmtpServer::start(None);
    let smtp = crate::notify::notifications(server.port, "tls = \"none\"\n");
    let env = Env::new(Backend::Sqlite, |c| hr_every(EVERY_2S)(c) + &smtp);
    let mut d = Daemon::start(&env, "daemon");
    d.wait_for("scheduled run finished", 2, Duration::from_secs(20));
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", d.log());
    // hr governs ACME France: its main manager and its delegate, from the first run only.
    let mut to: Vec<String> =
        server.wait_for(2).iter().map(|m| m["rcpt_tos"][0].as_str().unwrap().to_string()).collect();
    to.sort();
    assert_eq!(to, ["adjoint@acme.fr", "gp@acme.fr"], "{}", d.log());
    assert_eq!(d.find("digest sent").len(), 2, "{}", d.log());
}
