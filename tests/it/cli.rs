//! Command-line behaviour that scripts rely on: JSON logs, masked secrets,
//! usage errors.

use crate::support::{Backend, Env};

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let env = Env::new(Backend::Sqlite, |c| c);
    let run = env.run(&["--log-format", "json", "-v", "plan"]).expect(0);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", run.stderr);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{line}");
    }
    assert!(run.stdout.starts_with("plan: "), "stdout keeps the summary: {}", run.stdout);
}

#[test]
fn a_store_password_is_never_printed() {
    let env = Env::new(Backend::Sqlite, |c| c);
    let url = [("CHORUS_SYNC__STORE__URL", "postgres://app:s3cr3t-pw@127.0.0.1:1/chorus")];
    let shown = env.run_with_env(&["check-config"], &url).expect(0);
    assert!(shown.stdout.contains("postgres://app:[REDACTED]@127.0.0.1:1/chorus"), "{}", shown.stdout);
    // Unreachable store: exit 1, and the error still masks the password.
    let run = env.run_with_env(&["-vv", "plan"], &url).expect(1);
    assert!(run.stderr.contains("[REDACTED]"), "{}", run.stderr);
    for out in [&shown.stdout, &shown.stderr, &run.stdout, &run.stderr] {
        assert!(!out.contains("s3cr3t-pw"), "password leaked: {out}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["plan", "--source", "nope"]).expect(2);
    env.run(&["approvals", "list", "--state", "ouvert"]).expect(2);
    env.run(&["approvals", "approve", "1", "--as", "pas-une-adresse"]).expect(2);
    env.run(&["approvals", "show", "999"]).expect(2);
    env.run(&["approvals", "export", "--out", "actions.pdf"]).expect(2);
    env.run(&["frobnicate"]).expect(2);
    env.run(&["approvals", "approve", "--as", "gp@acme.fr"]).expect(2);
    env.run(&["approvals", "approve", "3", "--all-pending", "--as", "gp@acme.fr"]).expect(2);
    let missing = env.run(&["--config", "absent.toml", "check-config"]).expect(2);
    assert!(missing.stderr.contains("absent.toml"), "{}", missing.stderr);
}
