//! The end-to-end story, on SQLite and on PostgreSQL: an HR team's exports
//! and a portal export go in; approval requests, decisions and reports come out.

use std::collections::BTreeSet;

use crate::support::{Backend, Env, csv_rows, golden};

const CHANGES_COLUMNS: [&str; 13] = [
    "run_id",
    "kind",
    "structure",
    "structure_name",
    "service",
    "user_email",
    "last_name",
    "first_name",
    "before",
    "after",
    "reason",
    "approval_id",
    "approval_state",
];
const ANOMALIES_COLUMNS: [&str; 6] = ["run_id", "source", "location", "user_email", "code", "message"];

/// `kind user_email service reason` for each row of a changes.csv.
fn changes(env: &Env, dir: &str) -> Vec<String> {
    let rows = csv_rows(&env.path(&format!("{dir}/changes.csv")));
    assert_eq!(rows[0], CHANGES_COLUMNS);
    rows[1..].iter().map(|r| format!("{} {} {} {}", r[1], r[5], r[4], r[10])).collect()
}

fn anomaly_codes(env: &Env, dir: &str) -> Vec<String> {
    let rows = csv_rows(&env.path(&format!("{dir}/anomalies.csv")));
    assert_eq!(rows[0], ANOMALIES_COLUMNS);
    rows[1..].iter().map(|r| format!("{} {}", r[4], r[3])).collect()
}

fn story(backend: Backend) {
    let env = Env::new(backend, |c| c);
    env.run(&["check-config"]).expect(0);

    // A dry run on an empty store: everyone would be attached; nothing is stored.
    let plan = env.run(&["plan", "--out", "plan0"]).expect(0);
    assert!(plan.stdout.contains("dry run"), "{}", plan.stdout);
    assert!(changes(&env, "plan0").iter().all(|c| c.starts_with("attach ")));
    assert_eq!(env.run(&["runs", "list", "--format", "json"]).expect(0).json(), serde_json::json!([]));

    // The portal's current state, then the first real run.
    let import = env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    assert!(import.stdout.contains("12345678200010 ACME France: 27 attachment(s)"), "{}", import.stdout);
    assert!(import.stdout.contains("1 row(s) of structures not in the configuration ignored"), "{}", import.stdout);

    let run1 = env.run(&["run"]).expect(0);
    if backend == Backend::Sqlite {
        golden("run1.txt", &run1.stdout);
        for f in ["summary.csv", "changes.csv", "anomalies.csv"] {
            golden(&format!("run1-{f}"), &env.read(&format!("reports/1/{f}")));
        }
        // The queue as a manager's script reads it (no BOM on stdout).
        golden("run1-approvals.csv", &env.run(&["approvals", "list", "--format", "csv"]).expect(0).stdout);
    }
    let expected_changes = [
        "detach claire.moreau@acme.fr ACHATS left: end date 2026-10-31",
        "attach julie.lefebvre@acme.fr ACHATS new in source",
        "move jean.martin@acme.fr ACHATS service changed in source",
        "detach paul.durand@acme.fr COMPTA left: status Sorti",
        "rights sophie.bernard@acme.fr COMPTA rights changed in source",
        "attach luc.petit@acme.fr RH new in source",
        "attach camille.bonnet@acme.fr  new in source",
        "detach jerome.nicolas@acme-services.fr VENTES left: end date 2026-11-15",
        "move francois.roche@acme-services.fr VENTES service changed in source",
        "attach agnes.fabre@acme-services.fr VENTES new in source",
    ];
    let got: BTreeSet<String> = changes(&env, "reports/1").into_iter().collect();
    assert_eq!(got, expected_changes.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    let anomalies = anomaly_codes(&env, "reports/1");
    for expect in [
        "invalid_email thomas.roux@",
        "unknown_structure emma.fournier@acme.fr",
        "unknown_service nicolas.garnier@acme.fr",
        "invalid_rights lea.chevalier@acme.fr",
        "missing_email ",
        "main_manager_protected gp@acme.fr",
        "main_manager_protected gp@acme-services.fr",
        "absent_in_grace antoine.girard@acme.fr",
        "absent_in_grace thomas.roux@acme.fr",
    ] {
        assert!(anomalies.contains(&expect.to_string()), "missing anomaly {expect:?} in {anomalies:#?}");
    }
    // Protected by their invalid rows: no change for them.
    assert!(!got.iter().any(|c| c.contains("nicolas.garnier") || c.contains("lea.chevalier")));

    // The same input again raises nothing new: the requests are kept pending.
    let run2 = env.run(&["run"]).expect(0);
    assert!(run2.stdout.contains("raised 0 request(s), superseded 0"), "{}", run2.stdout);
    assert!(
        run2.stdout.contains("note: source hr: samples/hr.xlsx is the same file as in the last accepted run"),
        "{}",
        run2.stdout
    );
    let rows = csv_rows(&env.path("reports/2/changes.csv"));
    assert!(rows[1..].iter().all(|r| r[12] == "pending" && !r[11].is_empty()), "{rows:?}");

    // The manager's queue, as JSON (DESIGN.md §4 contract).
    let list = env.run(&["approvals", "list", "--state", "pending", "--format", "json"]).expect(0).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 10);
    for key in [
        "id",
        "state",
        "kind",
        "description",
        "requester",
        "structure",
        "structure_name",
        "service",
        "user_email",
        "reason",
        "created_at",
        "run_id",
        "manager",
        "decided_by",
        "decided_at",
        "motive",
        "comment",
    ] {
        assert!(list[0].get(key).is_some(), "approvals list JSON lacks {key:?}: {}", list[0]);
    }
    let find = |email: &str| {
        list.iter().find(|r| r["user_email"] == email).unwrap_or_else(|| panic!("no request for {email}"))["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let luc = find("luc.petit@acme.fr");
    let claire = find("claire.moreau@acme.fr");
    let agnes = find("agnes.fabre@acme-services.fr");
    let luc_json = list.iter().find(|r| r["user_email"] == "luc.petit@acme.fr").unwrap();
    assert_eq!(
        luc_json["description"],
        "Rattacher Luc Petit au service RH de ACME France avec les droits factures:consultation"
    );
    assert_eq!(luc_json["created_at"], "2026-11-23T08:00:00Z");
    assert_eq!(luc_json["manager"], "gp@acme.fr");
    assert_eq!(luc_json["requester"], "chorus-sync, source hr, run 1");
    let jerome = list.iter().find(|r| r["user_email"] == "jerome.nicolas@acme-services.fr").unwrap();
    assert_eq!(jerome["requester"], "chorus-sync, source acme-services, run 1");
    assert_eq!(jerome["reason"], "left: end date 2026-11-15");

    // One manager's queue.
    let mine = env.run(&["approvals", "list", "--manager", "gp@acme-services.fr", "--format", "json"]).expect(0).json();
    assert_eq!(mine.as_array().unwrap().len(), 3);

    // Refusing needs a motive; an outsider cannot decide; nothing changes.
    let r = env.run(&["approvals", "refuse", &claire, "--as", "gp@acme.fr"]).expect(2);
    assert!(r.stderr.contains("motive"), "{}", r.stderr);
    let r = env.run(&["approvals", "refuse", &claire, "--as", "gp@acme.fr", "--motive", "   "]).expect(2);
    assert!(r.stderr.contains("motive"), "{}", r.stderr);
    let r = env.run(&["approvals", "approve", &luc, &agnes, "--as", "gp@acme.fr"]).expect(2);
    assert!(r.stdout.contains("may not decide"), "{}", r.stdout);
    let state = |id: &str| env.run(&["approvals", "show", id, "--format", "json"]).expect(0).json()["state"].clone();
    assert_eq!(state(&luc), "pending", "a failed bulk decision changes nothing");

    // Decisions by the main manager and a delegate.
    env.run(&["approvals", "refuse", &claire, "--as", "gp@acme.fr", "--motive", "Départ reporté au 31/12"]).expect(0);
    env.run(&["approvals", "approve", &luc, "--as", "adjoint@acme.fr", "--comment", "ok"]).expect(0);
    let again = env.run(&["approvals", "approve", &luc, "--as", "gp@acme.fr"]).expect(2);
    assert!(again.stdout.contains("request is approved"), "{}", again.stdout);
    let shown = env.run(&["approvals", "show", &claire, "--format", "json"]).expect(0).json();
    assert_eq!(shown["state"], "refused");
    assert_eq!(shown["motive"], "Départ reporté au 31/12");
    assert_eq!(shown["decided_by"], "gp@acme.fr");
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[1]["from"].as_str(), history[1]["to"].as_str()), (Some("pending"), Some("refused")));
    let table = env.run(&["approvals", "show", &luc]).expect(0);
    assert!(table.stdout.contains("adjoint@acme.fr"), "{}", table.stdout);

    // Third run: the refused detach is not raised again while the facts stay
    // the same; people absent for a third run in a row (grace_runs = 2) are
    // now proposed for detach.
    let run3 = env.run(&["run"]).expect(0);
    assert!(run3.stdout.contains("raised 2 request(s)"), "{}", run3.stdout);
    let rows = csv_rows(&env.path("reports/3/changes.csv"));
    let claire_row = rows.iter().find(|r| r[5] == "claire.moreau@acme.fr").unwrap();
    assert_eq!(claire_row[12], "refused");
    let got = changes(&env, "reports/3");
    assert!(
        got.contains(&"detach antoine.girard@acme.fr ACHATS absent from source for 3 runs".to_string()),
        "{got:#?}"
    );
    assert!(got.contains(&"detach thomas.roux@acme.fr COMPTA absent from source for 3 runs".to_string()), "{got:#?}");

    // The action list, applied in the portal, confirmed by the next import.
    env.run(&["approvals", "export", "--out", "actions.csv"]).expect(0);
    let actions = csv_rows(&env.path("actions.csv"));
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[1][5], "luc.petit@acme.fr");
    env.run(&["approvals", "export", "--out", "actions.xlsx"]).expect(0);
    assert!(env.path("actions.xlsx").metadata().unwrap().len() > 0);
    let mut export = env.read("samples/portal-export.csv");
    export.push_str("luc.petit@acme.fr;Petit;Luc;12345678200010;RH;factures:consultation\r\n");
    std::fs::write(env.path("samples/portal-export.csv"), export).unwrap();
    let import = env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    assert!(import.stdout.contains(&format!("applied: #{luc}")), "{}", import.stdout);
    assert_eq!(state(&luc), "applied");

    // Bulk: every pending attach of ACME Services, by its main manager, in one go.
    let bulk = env
        .run(&[
            "approvals",
            "approve",
            "--all-pending",
            "--structure",
            "98765432400001",
            "--kind",
            "attach",
            "--as",
            "gp@acme-services.fr",
        ])
        .expect(0);
    assert_eq!(bulk.stdout, format!("#{agnes}: approved\n"));
    assert_eq!(state(&agnes), "approved");
    let outsider =
        env.run(&["approvals", "approve", "--all-pending", "--structure", "98765432400001", "--as", "gp@acme.fr"]);
    assert!(outsider.expect(2).stderr.contains("may not decide for structure 98765432400001"));

    // Luc is attached now: nothing more to do for him, nothing new raised.
    let run4 = env.run(&["run"]).expect(0);
    assert!(run4.stdout.contains("raised 0 request(s), superseded 0"), "{}", run4.stdout);
    assert!(!changes(&env, "reports/4").iter().any(|c| c.contains("luc.petit")));

    // HR changes an address: with the employee id, an anomaly, not a detach plus an attach.
    let services = std::fs::read(env.path("samples/acme-services.csv")).unwrap();
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&services);
    let text = text.replace("benoit.caron@acme-services.fr", "benoit.caron-martin@acme-services.fr");
    std::fs::write(env.path("samples/acme-services.csv"), encoding_rs::WINDOWS_1252.encode(&text).0).unwrap();
    env.run(&["run", "--source", "acme-services"]).expect(0);
    let anomalies = anomaly_codes(&env, "reports/5");
    assert!(anomalies.contains(&"email_changed benoit.caron-martin@acme-services.fr".to_string()), "{anomalies:#?}");
    assert!(
        !changes(&env, "reports/5").iter().any(|c| c.contains("benoit.caron")),
        "{:#?}",
        changes(&env, "reports/5")
    );

    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    assert_eq!(runs.as_array().unwrap().len(), 5);
    assert!(runs.as_array().unwrap().iter().all(|r| r["outcome"] == "done"));
    let shown = env.run(&["runs", "show", "1"]).expect(0);
    assert!(shown.stdout.contains("source hr: samples/hr.xlsx, 30 rows"), "{}", shown.stdout);
}

#[test]
fn story_sqlite() {
    story(Backend::Sqlite);
}

#[test]
fn story_postgres() {
    story(Backend::Postgres);
}
