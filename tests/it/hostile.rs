//! Files from the hostile corpus (tests/data/bad/) through the real binary:
//! `plan` and `run` reject the source with exit code 3 and a message naming
//! the file and the problem, and the requests raised by an earlier good run
//! stay exactly as they were (none superseded, none added).

use crate::support::{Backend, Env, repo};

fn bad(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/data/bad").join(name)).unwrap()
}

#[test]
fn hostile_files_are_rejected_and_change_nothing() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    let before = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    assert!(before.as_array().is_some_and(|a| !a.is_empty()), "the good run raises requests: {before}");
    let good_hr = std::fs::read(env.path("samples/hr.xlsx")).unwrap();
    let good_services = std::fs::read(env.path("samples/acme-services.csv")).unwrap();

    for (file, sample, expect) in [
        ("zip-bomb.xlsx", "hr.xlsx", "more than max_zip_ratio = 200"),
        ("zip-bomb-overlap.xlsx", "hr.xlsx", "more than max_inflated_bytes = 4294967296"),
        ("many-sheets.xlsx", "hr.xlsx", "the workbook has 300 sheets, more than max_sheets = 255"),
        ("xls-bogus-biff.xls", "hr.xlsx", "cannot read the spreadsheet: End of stream 'record length'"),
        ("html-as.xls", "hr.xlsx", "an HTML page"),
        ("unbalanced-quotes.csv", "acme-services.csv", "row 3: column 2: a quoted value runs over several lines"),
        ("nul-bytes.csv", "acme-services.csv", "(byte 0x00 at offset 74)"),
    ] {
        std::fs::write(env.path("samples/hr.xlsx"), &good_hr).unwrap();
        std::fs::write(env.path("samples/acme-services.csv"), &good_services).unwrap();
        std::fs::write(env.path(&format!("samples/{sample}")), bad(file)).unwrap();
        for command in ["plan", "run"] {
            let out = env.run(&[command]);
            let text = format!("{}{}", out.stdout, out.stderr);
            assert_eq!(out.code, 3, "{file}, {command}: exit code\n{text}");
            let named = format!("samples/{sample}: ");
            assert!(text.contains(&named) && text.contains(expect), "{file}, {command}: lacks {expect:?}\n{text}");
            assert!(!text.contains("panicked"), "{file}, {command}: {text}");
        }
        let after = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
        assert_eq!(after, before, "{file}: the requests must stay as they were");
    }
}

/// A limit lowered in the configuration (here from the environment) applies
/// to sources and to portal exports alike.
#[test]
fn limits_come_from_the_configuration() {
    let env = Env::new(Backend::Sqlite, |c| c);
    let low = [("CHORUS_SYNC__LIMITS__MAX_ROWS", "3")];
    let out = env.run_with_env(&["import-current", "samples/portal-export.csv"], &low);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("samples/portal-export.csv: row 5: more than max_rows = 3 rows"), "{}", out.stdout);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let out = env.run_with_env(&["run"], &low);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 3, "{text}");
    assert!(text.contains("more than max_rows = 3 rows"), "{text}");
    let requests = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    assert_eq!(requests, serde_json::json!([]));
    let shown = env.run_with_env(&["check-config"], &low).expect(0).stdout;
    assert!(shown.contains("[limits]\nmax_file_bytes = 1073741824\nmax_rows = 3\n"), "{shown}");
}
