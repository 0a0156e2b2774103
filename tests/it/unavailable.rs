//! The store or the report folder unavailable: a clear error naming what is
//! unavailable (never a password), exit 1, nothing half written, and the next
//! run works once it is back.

use std::{net::TcpListener, process::Command};

use sqlx::Connection;

use crate::support::{Backend, Env};

fn runs(env: &Env) -> usize {
    env.run(&["runs", "list", "--format", "json"]).expect(0).json().as_array().unwrap().len()
}

#[test]
fn postgres_unreachable_names_the_store_without_its_password() {
    let env = Env::new(Backend::Postgres, |c| c);
    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres:s3cret-pw@127.0.0.1:{port}/test");
    let run = env.run_with_env(&["run"], &[("CHORUS_SYNC__STORE__URL", &url)]).expect(1);
    assert!(
        run.stderr.contains(&format!("cannot open the store postgres://postgres:[REDACTED]@127.0.0.1:{port}/test")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret") && !run.stdout.contains("s3cret"), "{}", run.stderr);
    // Back to the reachable store: the run works, and it is the first one.
    env.run(&["run"]).expect(0);
    assert_eq!(runs(&env), 1);
}

#[test]
fn a_read_only_sqlite_store_is_named_and_nothing_is_written() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let ro = [("CHORUS_SYNC__STORE__URL", "sqlite://chorus-sync.db?mode=ro")];
    let run = env.run_with_env(&["run"], &ro).expect(1);
    assert!(run.stderr.contains("store sqlite://chorus-sync.db?mode=ro: "), "{}", run.stderr);
    assert!(run.stderr.contains("readonly database"), "{}", run.stderr);
    assert!(!env.path("reports/1").exists(), "no report for a run that is not recorded");
    assert_eq!(runs(&env), 0);
    env.run(&["run"]).expect(0);
    assert_eq!(runs(&env), 1);
}

#[test]
fn a_locked_sqlite_store_times_out_with_a_clear_error_then_works() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("sqlite://{}", env.path("chorus-sync.db").display());
    let mut holder = rt.block_on(sqlx::SqliteConnection::connect(&url)).unwrap();
    // Another process holding the write lock (a stuck job, a backup tool).
    rt.block_on(sqlx::query("BEGIN EXCLUSIVE").execute(&mut holder)).unwrap();
    let run = env.run(&["run"]).expect(1);
    assert!(run.stderr.contains("store sqlite://chorus-sync.db: "), "{}", run.stderr);
    assert!(run.stderr.contains("database is locked"), "{}", run.stderr);
    rt.block_on(sqlx::query("ROLLBACK").execute(&mut holder)).unwrap();
    assert_eq!(runs(&env), 0);
    env.run(&["run"]).expect(0);
    assert_eq!(runs(&env), 1);
}

fn a_report_folder_that_cannot_be_written_records_no_run(backend: Backend) {
    let env = Env::new(backend, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    std::fs::write(env.path("reports"), "not a folder").unwrap();
    let run = env.run(&["run"]).expect(1);
    assert!(
        run.stderr.contains("the run was not recorded, nothing changed in the store: cannot write reports/1: "),
        "{}",
        run.stderr
    );
    assert_eq!(runs(&env), 0);
    let pending = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    assert_eq!(pending.as_array().unwrap().len(), 0);
    std::fs::remove_file(env.path("reports")).unwrap();
    env.run(&["run"]).expect(0);
    let list = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // PostgreSQL sequences do not roll back: the id may have moved on.
    assert!(env.path(&format!("reports/{}/report.xlsx", list[0]["id"])).exists());
}

#[test]
fn a_report_folder_that_cannot_be_written_records_no_run_sqlite() {
    a_report_folder_that_cannot_be_written_records_no_run(Backend::Sqlite);
}

#[test]
fn a_report_folder_that_cannot_be_written_records_no_run_postgres() {
    a_report_folder_that_cannot_be_written_records_no_run(Backend::Postgres);
}

/// A tmpfs of 8 KiB, unmounted on drop.
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    fn mount(path: std::path::PathBuf) -> TinyDisk {
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8k", "tmpfs"]).arg(&path).status().unwrap();
        assert!(status.success(), "mount a tiny tmpfs (tests run as root)");
        TinyDisk(path)
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_records_no_run_and_leaves_no_half_report() {
    let env = Env::new(Backend::Sqlite, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let disk = TinyDisk::mount(env.path("full"));
    let full = [("CHORUS_SYNC__REPORTS__DIR", "full")];
    let run = env.run_with_env(&["run"], &full).expect(1);
    assert!(run.stderr.contains("the run was not recorded"), "{}", run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert_eq!(runs(&env), 0);
    let left: Vec<_> = std::fs::read_dir(disk.0.join("1")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no half report: {left:?}");
    drop(disk);
    env.run(&["run"]).expect(0);
    assert_eq!(runs(&env), 1);
}

/// Runs SQL against the store of `env` (its URL read from the config).
fn store_sql(env: &Env, backend: Backend, statements: &[&'static str]) {
    let config = env.read("chorus-sync.toml");
    let url = config.lines().find_map(|l| l.strip_prefix("url = \"")?.split('"').next()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match backend {
            Backend::Sqlite => {
                let path = env.path("chorus-sync.db");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                for s in statements {
                    sqlx::raw_sql(*s).execute(&mut c).await.unwrap();
                }
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                for s in statements {
                    sqlx::raw_sql(*s).execute(&mut c).await.unwrap();
                }
            }
        }
    });
}

/// The identities and absences are written while the reports are (on
/// another thread): a failure there still records nothing and leaves no
/// report behind.
fn a_store_write_beside_the_reports_that_fails_records_no_run_and_leaves_no_report(backend: Backend) {
    let env = Env::new(backend, |c| c);
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    let (refuse, allow): (&[&'static str], &[&'static str]) = match backend {
        Backend::Sqlite => (
            &["CREATE TRIGGER refuse_identities BEFORE INSERT ON identities \
               BEGIN SELECT RAISE(ABORT, 'identities refused by a test trigger'); END"],
            &["DROP TRIGGER refuse_identities"],
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse_identities() RETURNS trigger LANGUAGE plpgsql AS \
                 $$BEGIN RAISE EXCEPTION 'identities refused by a test trigger'; END$$",
                "CREATE TRIGGER refuse_identities BEFORE INSERT ON identities \
                 FOR EACH STATEMENT EXECUTE FUNCTION refuse_identities()",
            ],
            &["DROP TRIGGER refuse_identities ON identities", "DROP FUNCTION refuse_identities()"],
        ),
    };
    store_sql(&env, backend, refuse);
    let run = env.run(&["run"]).expect(1);
    assert!(run.stderr.contains("record identities"), "{}", run.stderr);
    assert!(run.stderr.contains("identities refused by a test trigger"), "{}", run.stderr);
    assert_eq!(runs(&env), 0);
    let pending = env.run(&["approvals", "list", "--format", "json"]).expect(0).json();
    assert_eq!(pending.as_array().unwrap().len(), 0, "no request of the failed run");
    let reports = std::fs::read_dir(env.path("reports")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(reports, 0, "no report of the failed run");
    store_sql(&env, backend, allow);
    env.run(&["run"]).expect(0);
    assert_eq!(runs(&env), 1);
}

#[test]
fn a_store_write_beside_the_reports_that_fails_records_no_run_and_leaves_no_report_sqlite() {
    a_store_write_beside_the_reports_that_fails_records_no_run_and_leaves_no_report(Backend::Sqlite);
}

#[test]
fn a_store_write_beside_the_reports_that_fails_records_no_run_and_leaves_no_report_postgres() {
    a_store_write_beside_the_reports_that_fails_records_no_run_and_leaves_no_report(Backend::Postgres);
}

/// rust_xlsxwriter (0.96 to 0.102) unwraps the flush of a constant-memory sheet's row
/// file when it packages the workbook: a disk that fills up there panicked
/// the run (seen when the CSV files came to be written beside the workbook).
/// Now it is the workbook's error, and nothing is left on the disk.
#[test]
fn a_disk_that_fills_while_the_workbook_is_packaged_is_an_error_not_a_panic() {
    use std::io::Write;

    use chorus_sync::report::{Table, Value, write_xlsx};

    let tmp = tempfile::tempdir().unwrap();
    let disk = TinyDisk::mount(tmp.path().join("full"));
    // Fill the disk to the last byte: the sheet's rows stay in the row
    // file's buffer until packaging flushes them.
    let mut filler = std::fs::File::create(disk.0.join("filler")).unwrap();
    while filler.write(&[b'x'; 512]).is_ok_and(|n| n > 0) {}
    while filler.write(b"x").is_ok_and(|n| n > 0) {}
    drop(filler);
    let rows = (0..50).map(|i| vec![Value::from(format!("person{i}@acme.fr")), Value::from(i as i64)]).collect();
    let table = Table { name: "Changes".into(), headers: vec!["email".into(), "n".into()], rows };
    let path = disk.0.join("report.xlsx");
    let err = write_xlsx(&path, &[table]).unwrap_err().to_string();
    assert!(err.contains("report.xlsx") && err.contains("No space left on device"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&disk.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["filler"], "nothing but the filler is left");
}
