//! `chorus-sync daemon --listen`: /healthz and /metrics of the real binary,
//! checked against what the store holds, on SQLite and PostgreSQL.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{Backend, Daemon, Env, field};

const EVERY_2S: &str = "schedule = \"*/2 * * * * *\"";
const HR_SCHEDULE: &str = "schedule = \"0 30 6 * * Mon-Fri\"";

/// A response: status code, `Content-Type`, body.
struct Response {
    status: u16,
    content_type: String,
    body: String,
}

/// `GET path` over HTTP/1.1, the connection closed by the server.
fn get(address: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {raw:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    assert!(!headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")), "{head}");
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    Response { status, content_type, body: body.to_string() }
}

fn healthz(address: &str) -> (u16, Value) {
    let r = get(address, "/healthz");
    assert_eq!(r.content_type, "application/json");
    (r.status, serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body)))
}

/// Samples by series (`name{labels}`), after checking every sample's family has HELP and TYPE.
fn metrics(address: &str) -> BTreeMap<String, f64> {
    let r = get(address, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    let mut samples = BTreeMap::new();
    for line in r.body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(r.body.contains(&format!("# HELP {name} ")), "no HELP for {name}");
        assert!(r.body.contains(&format!("# TYPE {name} ")), "no TYPE for {name}");
        samples.insert(series.to_string(), value.parse::<f64>().unwrap());
    }
    samples
}

#[track_caller]
fn sample(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("no sample {series} in {m:#?}"))
}

/// The address the daemon logged it serves on.
fn address(d: &Daemon) -> String {
    let serving = d.wait_for("serving /healthz and /metrics", 1, Duration::from_secs(20));
    field(&serving[0].1, "address").as_str().unwrap().to_string()
}

/// Stops the schedule (SIGHUP with hr's daily schedule back) and waits
/// until the runs in progress finished, so the store stays still.
fn quiesce(env: &Env, d: &Daemon) {
    let config = env.read("chorus-sync.toml").replace(EVERY_2S, HR_SCHEDULE);
    std::fs::write(env.path("chorus-sync.toml"), config).unwrap();
    d.signal("HUP");
    d.wait_for("configuration reloaded", 1, Duration::from_secs(10));
    let runs_done = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while d.find("scheduled run started").len() > d.find("scheduled run finished").len() {
            assert!(Instant::now() < deadline, "a run never finished: {}", d.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Twice, a schedule period apart: a tick already firing at the reload has started by then.
    runs_done();
    std::thread::sleep(Duration::from_secs(3));
    runs_done();
}

/// Health and metrics match `runs list` and `approvals list` exactly.
fn check_against_store(env: &Env, address: &str, backend: &str) {
    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    let runs = runs.as_array().unwrap();
    let requests = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    let requests = requests.as_array().unwrap();
    assert!(!runs.is_empty() && !requests.is_empty(), "the daemon ran and raised requests");
    let last = &runs[0]; // newest first
    assert_eq!(last["sources"], serde_json::json!(["hr"]));

    let (status, h) = healthz(address);
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["store"], serde_json::json!({ "backend": backend, "reachable": true, "error": null }));
    let names: Vec<&str> = h["sources"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hr", "acme-services"], "the configured sources, in order");
    let hr = &h["sources"][0];
    assert_eq!(hr["outcome"], "done");
    assert_eq!(hr["schedule"], "0 30 6 * * Mon-Fri");
    assert_eq!(hr["failed_runs"], 0);
    let lr = &hr["last_run"];
    assert_eq!(lr["id"], last["id"]);
    for key in ["started_at", "finished_at", "outcome"] {
        assert_eq!(lr[key], last[key], "{key}");
    }
    assert_eq!(lr["changes_raised"], last["counts"]["raised"]);
    assert_eq!(lr["counts"], last["counts"]);
    let other = &h["sources"][1];
    assert_eq!((&other["outcome"], &other["last_run"]), (&Value::Null, &Value::Null), "acme-services never ran");

    let m = metrics(address);
    assert_eq!(sample(&m, "chorus_sync_store_up"), 1.0);
    let done = runs.iter().filter(|r| r["outcome"] == "done").count() as f64;
    assert_eq!(sample(&m, r#"chorus_sync_runs_total{source="hr",outcome="done"}"#), done);
    assert_eq!(sample(&m, r#"chorus_sync_runs_total{source="hr",outcome="failed"}"#), 0.0);
    assert_eq!(sample(&m, r#"chorus_sync_runs_total{source="acme-services",outcome="done"}"#), 0.0);
    assert_eq!(sample(&m, r#"chorus_sync_guard_holds_total{source="hr"}"#), 0.0);
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(last[k].as_str().unwrap()).unwrap().timestamp();
    let duration = (time("finished_at") - time("started_at")) as f64;
    assert_eq!(sample(&m, r#"chorus_sync_last_run_duration_seconds{source="hr"}"#), duration);
    assert_eq!(sample(&m, r#"chorus_sync_last_run_timestamp_seconds{source="hr"}"#), time("finished_at") as f64);
    let anomalies: u64 = runs.iter().map(|r| r["counts"]["anomalies"].as_u64().unwrap()).sum();
    assert_eq!(sample(&m, "chorus_sync_anomalies_total"), anomalies as f64);
    assert_eq!(
        sample(&m, r#"chorus_sync_last_run_anomalies{source="hr"}"#),
        last["counts"]["anomalies"].as_f64().unwrap()
    );
    for kind in ["attach", "detach", "move", "rights"] {
        let raised = requests.iter().filter(|r| r["kind"] == kind).count() as f64;
        assert_eq!(sample(&m, &format!(r#"chorus_sync_requests_raised_total{{kind="{kind}"}}"#)), raised, "{kind}");
        for structure in ["12345678200010", "98765432400001"] {
            let pending = requests
                .iter()
                .filter(|r| r["kind"] == kind && r["structure"] == structure && r["state"] == "pending")
                .count() as f64;
            let series = format!(r#"chorus_sync_pending_requests{{structure="{structure}",kind="{kind}"}}"#);
            assert_eq!(sample(&m, &series), pending, "{series}");
        }
    }
    let pending = requests.iter().filter(|r| r["state"] == "pending").count() as f64;
    assert!(pending > 0.0);
    assert_eq!(sample(&m, r#"chorus_sync_requests{state="pending"}"#), pending);
}

#[test]
fn healthz_and_metrics_match_the_sqlite_store_and_fail_when_its_file_is_gone() {
    let env = Env::new(Backend::Sqlite, |c| c.replace(HR_SCHEDULE, EVERY_2S));
    let mut d = Daemon::start_with(&env, "daemon", &["--listen", "127.0.0.1:0"]);
    let address = address(&d);
    d.wait_for("scheduled run finished", 2, Duration::from_secs(30));
    quiesce(&env, &d);
    check_against_store(&env, &address, "sqlite");
    // The web console is mounted beside them, behind its sign-in.
    let r = get(&address, "/approvals");
    assert_eq!(r.status, 303, "{}", r.body);
    let r = get(&address, "/sign-in");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html") && r.body.contains("type=\"password\""), "{}", r.body);

    // The file removed: the pool's open connections would still answer, the probe does not.
    for f in ["chorus-sync.db", "chorus-sync.db-wal", "chorus-sync.db-shm"] {
        let _ = std::fs::remove_file(env.path(f));
    }
    let (status, h) = healthz(&address);
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["status"], "unavailable");
    assert_eq!(h["store"]["reachable"], false);
    assert!(h["store"]["error"].as_str().unwrap().contains("unable to open database file"), "{h}");
    assert!(!env.path("chorus-sync.db").exists(), "the probe did not create the file");
    let m = metrics(&address);
    assert_eq!(sample(&m, "chorus_sync_store_up"), 0.0);
    assert!(!m.keys().any(|k| k.starts_with("chorus_sync_pending_requests")), "no store figures: {m:?}");

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", d.log());
    assert!(TcpStream::connect(&address).is_err(), "the server stopped with the daemon");
}

#[test]
fn healthz_and_metrics_match_the_postgres_store_and_a_dropped_schema_fails_runs_and_health() {
    let env = Env::new(Backend::Postgres, |c| c.replace(HR_SCHEDULE, EVERY_2S));
    let config = env.read("chorus-sync.toml");
    let schema = config.split("search_path%3D").nth(1).unwrap().split('"').next().unwrap().to_string();
    let mut d = Daemon::start_with(&env, "daemon", &["--listen", "127.0.0.1:0"]);
    let address = address(&d);
    d.wait_for("scheduled run finished", 2, Duration::from_secs(30));
    quiesce(&env, &d);
    check_against_store(&env, &address, "postgres");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(chorus_sync::store::testing::drop_pg_schema(&schema));
    let (status, h) = healthz(&address);
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["store"]["reachable"], false);
    assert!(h["store"]["error"].as_str().unwrap().contains("does not exist"), "{h}");

    // Scheduled again: each run now fails (its slot cannot be claimed), which only this process knows.
    std::fs::write(env.path("chorus-sync.toml"), &config).unwrap();
    d.signal("HUP");
    d.wait_for("scheduled run failed", 1, Duration::from_secs(20));
    let (status, h) = healthz(&address);
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["sources"][0]["outcome"], "failed", "{h}");
    assert!(h["sources"][0]["last_failure"]["error"].as_str().unwrap().contains("cannot claim the slot"), "{h}");
    let m = metrics(&address);
    assert_eq!(sample(&m, "chorus_sync_store_up"), 0.0);
    assert!(sample(&m, r#"chorus_sync_runs_total{source="hr",outcome="failed"}"#) >= 1.0, "{m:?}");

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(20)).code(), Some(0), "{}", d.log());
}

#[test]
fn a_listen_address_in_use_is_a_clear_error_before_anything_runs() {
    let env = Env::new(Backend::Sqlite, |c| c.replace(HR_SCHEDULE, EVERY_2S));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut d = Daemon::start_with(&env, "daemon", &["--listen", &addr]);
    assert_eq!(d.wait_exit(Duration::from_secs(20)).code(), Some(1), "{}", d.log());
    let log = d.log();
    assert!(log.contains(&format!("error: cannot listen on {addr}")), "{log}");
    assert!(d.find("daemon started").is_empty() && d.find("scheduled run started").is_empty(), "{log}");
}

#[test]
fn serve_has_healthz_and_metrics_too() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    let (_serve, url) = crate::web::browser::serve(&env);
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let (status, h) = healthz(address);
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["sources"][0]["outcome"], "done", "{h}");
    assert_eq!(sample(&metrics(address), "chorus_sync_store_up"), 1.0);
}
