//! The same HR export as xlsx and as a Windows-1252 csv gives the same plan.

use crate::support::{Backend, Env, csv_rows};

fn plan(source_path: &'static str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let env = Env::new(Backend::Sqlite, |c| c.replace("samples/hr.xlsx", source_path));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["plan", "--out", "out"]).expect(0);
    let changes = csv_rows(&env.path("out/changes.csv"));
    // Anomalies without the location, which names the file.
    let anomalies = csv_rows(&env.path("out/anomalies.csv")).into_iter().map(|r| [&r[..2], &r[3..]].concat()).collect();
    (changes, anomalies)
}

#[test]
fn xlsx_and_windows_1252_csv_give_the_same_plan() {
    let (xlsx_changes, xlsx_anomalies) = plan("samples/hr.xlsx");
    let (csv_changes, csv_anomalies) = plan("samples/hr.csv");
    assert!(xlsx_changes.len() > 10, "{xlsx_changes:?}");
    pretty_assertions::assert_eq!(xlsx_changes, csv_changes);
    pretty_assertions::assert_eq!(xlsx_anomalies, csv_anomalies);
}
