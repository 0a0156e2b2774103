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
