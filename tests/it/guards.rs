//! Commands that must change nothing: a rejected source (exit 3), a plan a
//! guard holds (exit 4), a portal export with a bad row (exit 3).

use crate::support::{Backend, Env};

fn requests(env: &Env) -> usize {
    env.run(&["approvals", "list", "--format", "json"]).expect(0).json().as_array().unwrap().len()
}

fn missing_column_rejects_the_source(backend: Backend) {
    let env = Env::new(backend, |c| c.replace("email = \"Courriel\"\nlast_name", "email = \"Mail\"\nlast_name"));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let run = env.run(&["run"]).expect(3);
    assert!(run.stdout.contains("REJECTED"), "{}", run.stdout);
    assert!(run.stdout.contains("samples/hr.xlsx"), "{}", run.stdout);
    assert!(run.stdout.contains("\"Mail\""), "the error names the missing column: {}", run.stdout);
    assert_eq!(requests(&env), 0);
    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    assert_eq!(runs[0]["outcome"], "rejected");
}

fn a_mass_detach_is_held(backend: Backend) {
    let env = Env::new(backend, |c| c.replace("max_detach = 50", "max_detach = 1"));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let run = env.run(&["run"]).expect(4);
    assert!(run.stdout.contains("max_detach: 3 detaches would be raised, the limit is 1"), "{}", run.stdout);
    assert_eq!(requests(&env), 0);
    // The report shows what would have happened.
    let changes = env.read("reports/1/changes.csv");
    assert!(changes.contains("claire.moreau@acme.fr"), "{changes}");
    // An operator accepts the held plan.
    env.run(&["run", "--force", "--as", "gp@acme.fr"]).expect(0);
    assert_eq!(requests(&env), 10);
    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    assert_eq!(runs[0]["forced_by"], "gp@acme.fr");
    assert_eq!(runs[1]["outcome"], "held");
}

#[test]
fn missing_column_rejects_the_source_sqlite() {
    missing_column_rejects_the_source(Backend::Sqlite);
}

#[test]
fn missing_column_rejects_the_source_postgres() {
    missing_column_rejects_the_source(Backend::Postgres);
}

#[test]
fn a_mass_detach_is_held_sqlite() {
    a_mass_detach_is_held(Backend::Sqlite);
}

#[test]
fn a_mass_detach_is_held_postgres() {
    a_mass_detach_is_held(Backend::Postgres);
}

fn a_bad_portal_export_imports_nothing(backend: Backend) {
    let env = Env::new(backend, |c| c);
    let mut export = env.read("samples/portal-export.csv");
    export.push_str("pas-une-adresse;X;Y;12345678200010;COMPTA;factures:consultation\r\n");
    export.push_str("z@acme.fr;Z;Z;12345678200011;COMPTA;factures:consultation\r\n");
    std::fs::write(env.path("samples/bad-export.csv"), export).unwrap();
    let import = env.run(&["import-current", "samples/bad-export.csv"]).expect(3);
    assert!(import.stdout.contains("REJECTED, nothing imported (2 problem(s))"), "{}", import.stdout);
    assert!(import.stdout.contains("samples/bad-export.csv, row 36: column Adresse électronique"), "{}", import.stdout);
    assert!(import.stdout.contains("row 37: column Identifiant structure"), "{}", import.stdout);
    // Nothing imported: a plan still sees an empty portal.
    let plan = env.run(&["plan"]).expect(0);
    assert!(plan.stdout.contains("no current attachments are known"), "{}", plan.stdout);
}

#[test]
fn a_bad_portal_export_imports_nothing_sqlite() {
    a_bad_portal_export_imports_nothing(Backend::Sqlite);
}

#[test]
fn a_bad_portal_export_imports_nothing_postgres() {
    a_bad_portal_export_imports_nothing(Backend::Postgres);
}

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
