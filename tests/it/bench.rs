//! The benchmarks run (issue 7): the generator's data at a small size, read
//! by the real binary from every generated format, gives exactly the churn
//! the generator put in. Nothing here is timed; bench/run.sh measures.

use std::{path::PathBuf, process::Command};

use crate::{
    slapd::{Flavor, Slapd},
    support::{Backend, Env, Run},
};

/// The example binary, built (or brought up to date) first: `cargo test
/// --all-targets` compiles examples only as test harnesses, without their
/// `main`. Cargo has released its build lock while tests run.
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_chorus-sync"));
    let release = bin.parent().is_some_and(|d| d.ends_with("release"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--example", name])
        .args(release.then_some("--release"))
        .current_dir(crate::support::repo())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo build --example {name}: {}", String::from_utf8_lossy(&out.stderr));
    let path = bin.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is missing after cargo build --example {name}", path.display());
    path
}

fn generate(env: &Env, formats: &str) -> serde_json::Value {
    let out = Command::new(example("gen"))
        .args(["--rows", "200", "--churn", "0.3", "--bad", "0.03", "--structures", "3", "--formats", formats, "--out"])
        .arg(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "gen failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&env.read("expected.json")).unwrap()
}

/// The plan's totals line, as the generator's counts would print it.
fn changes_line(e: &serde_json::Value) -> String {
    let raised = ["attach", "detach", "move", "rights"].iter().map(|k| e[k].as_u64().unwrap()).sum::<u64>();
    format!(
        "changes: {} attach, {} detach, {} move, {} rights; would raise {raised} request(s), superseded 0; {} anomalies",
        e["attach"], e["detach"], e["move"], e["rights"], e["anomalies"]
    )
}

#[track_caller]
fn assert_plan(run: Run, expected: &serde_json::Value, what: &str) {
    let line =
        run.stdout.lines().find(|l| l.starts_with("changes:")).unwrap_or_else(|| panic!("{what}: {}", run.stdout));
    assert_eq!(line, changes_line(expected), "{what}\n{}", run.stdout);
}

#[test]
fn generated_files_plan_exactly_the_generated_churn() {
    let env = Env::with_config(Backend::Sqlite, |_| String::new());
    let expected = generate(&env, "xlsx,csv,csv1252,ldif");
    for kind in ["attach", "detach", "move", "rights", "anomalies"] {
        assert!(expected[kind].as_u64().unwrap() > 0, "the generator made no {kind}: {expected}");
    }
    env.run(&["import-current", "portal.csv"]).expect(0);
    for file in ["hr.xlsx", "hr.csv", "hr-1252.csv"] {
        let run = env.run_with_env(&["plan", "--out", "plan"], &[("CHORUS_SYNC__SOURCES__0__PATH", file)]).expect(0);
        assert_plan(run, &expected, file);
    }
    let server = Slapd::start_with_data(Flavor::OpenLdap, &env.read("annuaire.ldif"), "");
    let run = env
        .run_with_env(
            &["--config", "chorus-sync-ldap.toml", "plan", "--out", "plan"],
            &[("CHORUS_SYNC__SOURCES__0__URL", &server.url()), ("LDAP_PW", "bench-secret")],
        )
        .expect(0);
    assert_plan(run, &expected, "annuaire.ldif");
}
