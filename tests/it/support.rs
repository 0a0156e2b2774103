//! A throwaway working directory with the samples, a config pointing at a
//! fresh store, and a way to run the real binary in it.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use chorus_sync::store::testing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub now: String,
    /// Extra environment variables for the binary (e.g. a directory password).
    pub vars: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Env {
    /// The shipped samples and `config/example.toml`, with the store moved to
    /// a fresh SQLite file or PostgreSQL schema, and `edit` applied to the config.
    pub fn new(backend: Backend, edit: impl FnOnce(String) -> String) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("samples")).unwrap();
        for f in ["hr.xlsx", "hr.csv", "acme-services.csv", "portal-export.csv"] {
            std::fs::copy(repo().join("samples").join(f), dir.path().join("samples").join(f)).unwrap();
        }
        let url = match backend {
            Backend::Sqlite => "sqlite://chorus-sync.db".to_string(),
            Backend::Postgres => testing::test_url_pg_schema().0.expose().clone(),
        };
        let config = std::fs::read_to_string(repo().join("config/example.toml")).unwrap();
        let config = config.replace("url = \"sqlite://chorus-sync.db\"", &format!("url = \"{url}\""));
        std::fs::write(dir.path().join("chorus-sync.toml"), edit(config)).unwrap();
        Env { dir, now: "2026-11-23T08:00:00Z".into(), vars: Vec::new() }
    }

    /// A fresh store and the config `make(store_url)` writes; no samples.
    pub fn with_config(backend: Backend, make: impl FnOnce(&str) -> String) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => "sqlite://chorus-sync.db".to_string(),
            Backend::Postgres => testing::test_url_pg_schema().0.expose().clone(),
        };
        std::fs::write(dir.path().join("chorus-sync.toml"), make(&url)).unwrap();
        Env { dir, now: "2026-11-23T08:00:00Z".into(), vars: Vec::new() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        Run::from(self.command(args, vars).output().expect("run chorus-sync"))
    }

    /// `chorus-sync ARGS` with `input` on its standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chorus-sync");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// The binary in this directory, at this clock, with this config only.
    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chorus-sync"));
        cmd.args(args)
            .envs(vars.iter().copied())
            .current_dir(self.dir.path())
            .env("CHORUS_SYNC_NOW", &self.now)
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("CHORUS_SYNC_CONFIG")
            .env_remove("CHORUS_SYNC_LOG");
        cmd
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// A CSV report's rows as vectors of fields (BOM stripped, `;`).
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text.strip_prefix('\u{feff}').expect("CSV reports start with a UTF-8 BOM");
    csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Compares with a golden file under tests/it/golden; `UPDATE_GOLDEN=1` rewrites it.
#[track_caller]
pub fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/it/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expect = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    pretty_assertions::assert_eq!(expect, actual, "golden file {name} differs (UPDATE_GOLDEN=1 to accept)");
}

/// A running daemon whose JSON log lines are collected as they come.
pub struct Daemon {
    pub child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    pub name: &'static str,
}

impl Daemon {
    pub fn start(env: &Env, name: &'static str) -> Daemon {
        Daemon::start_with(env, name, &[])
    }

    /// `chorus-sync --log-format json daemon ARGS...`.
    pub fn start_with(env: &Env, name: &'static str, args: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-sync"))
            .args(["--log-format", "json", "daemon"])
            .args(args)
            .current_dir(env.dir.path())
            .env_remove("CHORUS_SYNC_NOW")
            .env_remove("CHORUS_SYNC_CONFIG")
            .env_remove("CHORUS_SYNC_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chorus-sync daemon");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                sink.lock().unwrap().push(v);
            }
        });
        Daemon { child, lines, name }
    }

    pub fn events(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    pub fn log(&self) -> String {
        self.events().iter().map(|v| format!("{v}\n")).collect()
    }

    /// Log events whose message starts with `message`, with their position.
    pub fn find(&self, message: &str) -> Vec<(usize, Value)> {
        self.events().into_iter().enumerate().filter(|(_, v)| msg(v).starts_with(message)).collect()
    }

    /// Waits until `n` events with this message were logged.
    #[track_caller]
    pub fn wait_for(&self, message: &str, n: usize, timeout: Duration) -> Vec<(usize, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.find(message);
            if found.len() >= n {
                return found;
            }
            if Instant::now() > deadline {
                panic!("{}: {n} × {message:?} not logged within {timeout:?}; log:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -s {sig} {}", self.name);
    }

    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                panic!("{} still running {timeout:?} after the signal; log:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn msg(v: &Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or("")
}

pub fn field<'v>(v: &'v Value, name: &str) -> &'v Value {
    &v["fields"][name]
}
