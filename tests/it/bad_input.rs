//! Bad input, through the real binary: each case gives a clear error naming
//! the file, the exit code of DESIGN.md §4, and changes nothing in the store.

use crate::support::{Backend, Env, repo};

/// How a case breaks the samples.
enum Break {
    /// Replace a sample file with these bytes.
    File(&'static str, Vec<u8>),
    /// Edit the configuration text.
    Config(fn(String) -> String),
}

/// Returns the run's output (stdout then stderr) for further checks.
fn check(name: &str, brk: Break, code: i32, expect: &[&str]) -> String {
    let env = match brk {
        Break::Config(edit) => Env::new(Backend::Sqlite, edit),
        Break::File(file, bytes) => {
            let env = Env::new(Backend::Sqlite, |c| c);
            std::fs::write(env.path(&format!("samples/{file}")), bytes).unwrap();
            env
        }
    };
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let run = env.run(&["run"]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, code, "{name}: exit code\n{out}");
    for e in expect {
        assert!(out.contains(e), "{name}: output lacks {e:?}:\n{out}");
    }
    let requests = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    assert_eq!(requests, serde_json::json!([]), "{name}: nothing may be raised");
    out
}

fn hr_xlsx() -> Vec<u8> {
    std::fs::read(repo().join("samples/hr.xlsx")).unwrap()
}

fn services_csv(edit: impl Fn(&str) -> String) -> Vec<u8> {
    let bytes = std::fs::read(repo().join("samples/acme-services.csv")).unwrap();
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
    encoding_rs::WINDOWS_1252.encode(&edit(&text)).0.into_owned()
}

fn empty_workbook() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet().set_name("Personnel").unwrap();
    wb.save_to_buffer().unwrap()
}

#[test]
fn missing_file() {
    let edit = |c: String| c.replace("samples/hr.xlsx", "samples/absent.xlsx");
    check("missing file", Break::Config(edit), 3, &["REJECTED", "samples/absent.xlsx"]);
}

#[test]
fn truncated_xlsx() {
    let half = hr_xlsx()[..3000].to_vec();
    check("truncated xlsx", Break::File("hr.xlsx", half), 3, &["REJECTED", "samples/hr.xlsx"]);
}

/// calamine 0.38 panics on this truncated OLE2 sector chain (found by
/// fuzzing): the file is rejected with the parser's message, and the panic is
/// not printed as a raw line (it would break JSON logs).
#[test]
fn a_parser_panic_is_a_rejection_not_a_printed_panic() {
    let bytes = std::fs::read(repo().join("tests/data/bad/fuzz-xls-cfb-sector-past-end.xls")).unwrap();
    let expect = ["REJECTED", "samples/hr.xlsx", "the spreadsheet parser failed on it"];
    let out = check("parser panic", Break::File("hr.xlsx", bytes), 3, &expect);
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn password_protected_workbook() {
    let bytes = std::fs::read(repo().join("tests/data/bad/encrypted-hr.xlsx")).unwrap();
    check("encrypted", Break::File("hr.xlsx", bytes), 3, &["samples/hr.xlsx", "password-protected"]);
}

#[test]
fn empty_sheet() {
    check("empty sheet", Break::File("hr.xlsx", empty_workbook()), 3, &["REJECTED", "samples/hr.xlsx", "Personnel"]);
}

#[test]
fn not_a_spreadsheet() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    check("png", Break::File("hr.xlsx", png), 3, &["REJECTED", "samples/hr.xlsx"]);
}

#[test]
fn duplicate_headers() {
    let csv = services_csv(|t| t.replacen("Nom;", "Courriel;", 1));
    check("duplicate headers", Break::File("acme-services.csv", csv), 3, &["samples/acme-services.csv", "Courriel"]);
}

#[test]
fn csv_in_another_encoding_than_configured() {
    let edit = |c: String| {
        c.replace("path = \"samples/acme-services.csv\"", "path = \"samples/acme-services.csv\"\nencoding = \"utf-8\"")
    };
    check("encoding", Break::Config(edit), 3, &["samples/acme-services.csv", "UTF-8"]);
}

#[test]
fn a_renamed_column_names_what_was_found() {
    let csv = services_csv(|t| t.replacen("Courriel", "Mail", 1));
    check(
        "renamed column",
        Break::File("acme-services.csv", csv),
        3,
        &["samples/acme-services.csv", "missing column(s) \"Courriel\"", "\"Mail\""],
    );
}

#[test]
fn conflicting_rows_are_anomalies_and_touch_nobody() {
    let env = Env::new(Backend::Sqlite, |c| c);
    let csv = services_csv(|t| format!("{t}S099;Caron;Benoît;benoit.caron@acme-services.fr;VENTES;Lecteur;;Actif\r\n"));
    std::fs::write(env.path("samples/acme-services.csv"), csv).unwrap();
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(0);
    let anomalies = env.read("reports/1/anomalies.csv");
    assert!(anomalies.contains("conflicting_rows"), "{anomalies}");
    let changes = env.read("reports/1/changes.csv");
    assert!(!changes.contains("benoit.caron"), "{changes}");
}

#[test]
fn a_bad_configuration_lists_every_problem() {
    let env = Env::new(Backend::Sqlite, |c| {
        c.replace("csv_delimiter = \";\"", "csv_delimter = \";\"")
            .replace("main_manager = \"gp@acme.fr\"", "main_manager = \"pas une adresse\"")
            .replace("grace_runs = 2", "grace_runs = -1")
    });
    let run = env.run(&["run"]).expect(2);
    for e in
        ["reports.csv_delimter", "did you mean \"csv_delimiter\"", "structures[0].main_manager", "guards.grace_runs"]
    {
        assert!(run.stderr.contains(e), "lacks {e:?}:\n{}", run.stderr);
    }
    assert!(!env.path("chorus-sync.db").exists(), "a bad configuration must not even open the store");
}
