//! The life of requests after they are raised: expiry and the closed loop
//! with the portal.

use crate::support::{Backend, Env};

fn old_pending_requests_expire_and_are_raised_again(backend: Backend) {
    let mut env = Env::new(backend, |c| format!("{c}\n[approvals]\nexpire_after_days = 7\n"));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    let first = env.run(&["approvals", "list", "--state", "pending", "--format", "json"]).expect(0).json();
    assert_eq!(first.as_array().unwrap().len(), 10);
    env.run(&["approvals", "approve", "1", "--as", "gp@acme.fr"]).expect(0);
    // Six days later nothing expires; eight days later the pending ones do.
    env.now = "2026-11-29T08:00:00Z".into();
    let run = env.run(&["run"]).expect(0);
    assert!(!run.stdout.contains("expired"), "{}", run.stdout);
    env.now = "2026-12-01T08:00:00Z".into();
    let run = env.run(&["run"]).expect(0);
    assert!(run.stdout.contains("note: 9 request(s) pending more than 7 days expired"), "{}", run.stdout);
    let expired = env.run(&["approvals", "list", "--state", "expired", "--format", "json"]).expect(0).json();
    assert_eq!(expired.as_array().unwrap().len(), 9);
    // Still needed: raised again as fresh requests; the approved one stays.
    let pending = env.run(&["approvals", "list", "--state", "pending", "--format", "json"]).expect(0).json();
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 9 + 2, "9 raised again, and the 2 absent people now past their grace");
    assert!(pending.iter().all(|r| r["created_at"] == "2026-12-01T08:00:00Z"));
    let approved = env.run(&["approvals", "list", "--state", "approved", "--format", "json"]).expect(0).json();
    assert_eq!(approved[0]["id"], 1);
    let history = env.run(&["approvals", "show", "2", "--format", "json"]).expect(0).json()["history"].clone();
    assert_eq!(history[1]["to"], "expired");
}

#[test]
fn old_pending_requests_expire_and_are_raised_again_sqlite() {
    old_pending_requests_expire_and_are_raised_again(Backend::Sqlite);
}

#[test]
fn old_pending_requests_expire_and_are_raised_again_postgres() {
    old_pending_requests_expire_and_are_raised_again(Backend::Postgres);
}

fn approved_changes_not_applied_in_time_are_reported(backend: Backend) {
    let mut env = Env::new(backend, |c| format!("{c}\n[approvals]\napply_within_days = 3\n"));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    env.run(&["approvals", "approve", "1", "7", "--as", "gp@acme.fr", "--comment", "à faire"]).expect(0);
    env.now = "2026-11-25T08:00:00Z".into();
    let early = env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    assert!(!early.stdout.contains("still not applied"), "{}", early.stdout);
    env.now = "2026-11-27T08:00:00Z".into();
    let late = env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    assert!(
        late.stdout.contains("approved more than 3 days ago and still not applied in the portal:"),
        "{}",
        late.stdout
    );
    assert!(late.stdout.contains("#1 Rattacher Camille Bonnet à la structure de ACME France"), "{}", late.stdout);
    assert!(late.stdout.contains("#7 Rattacher Luc Petit au service RH"), "{}", late.stdout);
}

#[test]
fn approved_changes_not_applied_in_time_are_reported_sqlite() {
    approved_changes_not_applied_in_time_are_reported(Backend::Sqlite);
}

#[test]
fn approved_changes_not_applied_in_time_are_reported_postgres() {
    approved_changes_not_applied_in_time_are_reported(Backend::Postgres);
}
