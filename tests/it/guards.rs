//! Commands that must change nothing: a rejected source (exit 3), a plan a
//! guard holds (exit 4), a portal export with a bad row (exit 3).

use serde_json::json;

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
    // Nothing raised: the would-be requests are only kept as held.
    let pending = env.run(&["approvals", "list", "--state", "pending", "--format", "json"]).expect(0).json();
    assert_eq!(pending, json!([]));
    assert_eq!(states(&env).iter().filter(|(_, s)| s == "held").count(), 10);
    // The report shows what would have happened.
    let changes = env.read("reports/1/changes.csv");
    assert!(changes.contains("claire.moreau@acme.fr"), "{changes}");
    // An operator accepts the held plan.
    env.run(&["run", "--force", "--as", "gp@acme.fr"]).expect(0);
    assert_eq!(states(&env), (1..=10).map(|i| (i, "pending".to_string())).collect::<Vec<_>>());
    assert_eq!(history(&env, 1).last().unwrap(), &("gp@acme.fr".into(), "held".into(), "pending".into()));
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

/// `(id, state)` of every request, by id.
fn states(env: &Env) -> Vec<(i64, String)> {
    let list = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    list.as_array().unwrap().iter().map(|r| (r["id"].as_i64().unwrap(), r["state"].as_str().unwrap().into())).collect()
}

fn history(env: &Env, id: i64) -> Vec<(String, String, String)> {
    let show = env.run(&["approvals", "show", &id.to_string(), "--format", "json"]).expect(0).json();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    show["history"].as_array().unwrap().iter().map(|h| (text(&h["by"]), text(&h["from"]), text(&h["to"]))).collect()
}

/// A held run keeps its would-be requests as `held`; the manager decides some
/// directly, an operator releases others, the next run supersedes what its
/// plan dropped and releases the rest once the guards pass.
fn a_held_plan_is_decided_item_by_item(backend: Backend) {
    let env = Env::new(backend, |c| c.replace("max_detach = 50", "max_detach = 1"));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let run = env.run(&["run"]).expect(4);
    assert!(run.stdout.contains("10 change(s) kept as held requests"), "{}", run.stdout);
    let held: Vec<(i64, String)> = (1..=10).map(|i| (i, "held".to_string())).collect();
    assert_eq!(states(&env), held);
    assert_eq!(env.run(&["approvals", "list", "--state", "pending", "--format", "json"]).expect(0).json(), json!([]));
    let changes = crate::support::csv_rows(&env.path("reports/1/changes.csv"));
    assert_eq!(changes[0][11..], ["approval_id", "approval_state"]);
    assert!(changes[1..].iter().all(|r| r[12] == "held" && !r[11].is_empty()), "{changes:?}");

    // Held again with the same plan: the same requests, not new ones.
    env.run(&["run"]).expect(4);
    assert_eq!(states(&env), held);
    // Agnès Fabre (#8, attach) leaves the source: the next held run supersedes her request.
    let services = std::fs::read(env.path("samples/acme-services.csv")).unwrap();
    let kept: Vec<&[u8]> = services.split(|b| *b == b'\n').filter(|l| !l.starts_with(b"S005;")).collect();
    std::fs::write(env.path("samples/acme-services.csv"), kept.join(&b'\n')).unwrap();
    env.run(&["run"]).expect(4);
    assert_eq!(states(&env)[7], (8, "superseded".to_string()));
    assert_eq!(history(&env, 8).last().unwrap(), &("chorus-sync".into(), "held".into(), "superseded".into()));

    // The manager approves one held detach and refuses another; someone else may not.
    env.run(&["approvals", "approve", "2", "--as", "intrus@acme.fr"]).expect(2);
    env.run(&["approvals", "approve", "2", "--as", "gp@acme.fr"]).expect(0);
    env.run(&["approvals", "refuse", "5", "--as", "gp@acme.fr", "--motive", "toujours en poste"]).expect(0);
    // An operator releases the held attaches into the managers' queues.
    let out = env.run(&["approvals", "release", "--held", "--kind", "attach", "--as", "ops@acme.fr"]).expect(0);
    assert_eq!(out.stdout.lines().filter(|l| l.ends_with(": pending")).count(), 3, "{}", out.stdout);
    assert_eq!(history(&env, 1).last().unwrap(), &("ops@acme.fr".into(), "held".into(), "pending".into()));
    env.run(&["approvals", "release", "2", "--as", "ops@acme.fr"]).expect(2);
    // The manager refuses the held moves of their structure in one go.
    let refuse = ["approvals", "refuse", "--held", "--kind", "move", "--as", "gp@acme.fr", "--motive", "pas encore"];
    assert_eq!(env.run(&refuse).expect(0).stdout.trim(), "#3: refused");

    // One new detach is left (#10): under the limit, the run is done and
    // releases the held requests it still plans, keeping their ids.
    let run = env.run(&["run"]).expect(0);
    assert!(run.stdout.contains("run 4: done"), "{}", run.stdout);
    let expect: Vec<(i64, &str)> = vec![
        (1, "pending"),
        (2, "approved"),
        (3, "refused"),
        (4, "pending"),
        (5, "refused"),
        (6, "pending"),
        (7, "pending"),
        (8, "superseded"),
        (9, "pending"),
        (10, "pending"),
    ];
    assert_eq!(states(&env), expect.iter().map(|(i, s)| (*i, s.to_string())).collect::<Vec<_>>());
    assert_eq!(
        history(&env, 2),
        [
            ("chorus-sync, source hr, run 1".into(), "".into(), "held".into()),
            ("gp@acme.fr".into(), "held".into(), "approved".into())
        ]
    );
    assert_eq!(history(&env, 10).last().unwrap(), &("chorus-sync".into(), "held".into(), "pending".into()));
}

#[test]
fn a_held_plan_is_decided_item_by_item_sqlite() {
    a_held_plan_is_decided_item_by_item(Backend::Sqlite);
}

#[test]
fn a_held_plan_is_decided_item_by_item_postgres() {
    a_held_plan_is_decided_item_by_item(Backend::Postgres);
}

/// Every service blank in an export that had them: rejected (exit 3) with the
/// column and both counts, nothing changed; a sparse column emptying is fine.
fn a_column_that_empties_rejects_the_source(backend: Backend) {
    let env = Env::new(backend, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    let before = states(&env);
    let services = std::fs::read(env.path("samples/acme-services.csv")).unwrap();
    let blank = |field: usize| -> Vec<u8> {
        let lines: Vec<Vec<u8>> = services
            .split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, l)| {
                if i == 0 || l.is_empty() {
                    return l.to_vec();
                }
                let mut cells: Vec<&[u8]> = l.split(|b| *b == b';').collect();
                cells[field] = b"";
                cells.join(&b';')
            })
            .collect();
        lines.join(&b'\n')
    };
    // Column 4 is "Code service", filled in every row; column 6 "Date de sortie" in one.
    std::fs::write(env.path("samples/acme-services.csv"), blank(4)).unwrap();
    let run = env.run(&["run"]).expect(3);
    assert!(
        run.stdout.contains(
            "column \"Code service\" (service) is filled in 0 of 6 rows (0%), against 6 of 6 (100%) in the last accepted run; min_fill_ratio = 0.5"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(states(&env), before, "a rejected source changes nothing");
    // Disabled, the same file goes through.
    env.run_with_env(&["plan"], &[("CHORUS_SYNC__GUARDS__MIN_FILL_RATIO", "false")]).expect(0);
    // The end date column emptying (the leaver is gone) is no reason to reject.
    std::fs::write(env.path("samples/acme-services.csv"), blank(6)).unwrap();
    env.run(&["plan"]).expect(0);
}

#[test]
fn a_column_that_empties_rejects_the_source_sqlite() {
    a_column_that_empties_rejects_the_source(Backend::Sqlite);
}

#[test]
fn a_column_that_empties_rejects_the_source_postgres() {
    a_column_that_empties_rejects_the_source(Backend::Postgres);
}
