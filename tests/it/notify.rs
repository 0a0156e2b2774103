//! Notification mails from the real binary to a real SMTP server (Python's
//! aiosmtpd, started per test): digests after `run`, nothing when nothing is
//! new, reminders from `approvals housekeeping` once `remind_after_days` have
//! passed, STARTTLS with authentication, and a dead server that never fails a run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    slapd::{make_ca, make_server_cert},
    support::{Backend, Env, repo},
};

/// A running aiosmtpd saving each message as JSON into `dir`.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// TLS and credentials for the server: (cert, key, user, password).
type Secure<'a> = Option<(&'a Path, &'a Path, &'a str, &'a str)>;

impl SmtpServer {
    /// Starts the server; a missing aiosmtpd is a failure, never a skip.
    pub fn start(secure: Secure) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/it/smtp_server.py")).args([
            "--port",
            &port.to_string(),
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        if let Some((cert, key, user, password)) = secure {
            cmd.args(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the SMTP tests (scripts/test.sh installs aiosmtpd)");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        if line.trim() != "READY" {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the test SMTP server did not start (is aiosmtpd installed? python3 -m pip install aiosmtpd):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        SmtpServer { child, port, dir }
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
    }

    /// Waits until at least `n` messages arrived.
    #[track_caller]
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[notifications]` section for a server on `port`.
pub fn notifications(port: u16, extra: &str) -> String {
    format!(
        "\n[notifications]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nfrom = \"chorus-sync <noreply@acme.fr>\"\n\
         console_url = \"https://chorus-sync.acme.fr\"\nremind_after_days = 7\n{extra}"
    )
}

/// (recipient, subject) of each message, sorted.
fn envelopes(messages: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            let to = m["rcpt_tos"].as_array().unwrap();
            assert_eq!(to.len(), 1, "one recipient per mail: {m}");
            (to[0].as_str().unwrap().to_string(), m["subject"].as_str().unwrap().to_string())
        })
        .collect();
    out.sort();
    out
}

/// The pending request ids of a manager's queue, from the command line.
fn pending_of(env: &Env, manager: &str) -> Vec<i64> {
    let list = env.run(&["approvals", "list", "--manager", manager, "--state", "pending", "--format", "json"]);
    list.expect(0).json().as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

const MANAGERS: [&str; 3] = ["adjoint@acme.fr", "gp@acme-services.fr", "gp@acme.fr"];

#[test]
fn a_run_sends_one_digest_per_manager_then_nothing_until_something_changes_then_reminders() {
    let server = SmtpServer::start(None);
    let mut env = Env::new(Backend::Sqlite, |c| c + &notifications(server.port, "tls = \"none\"\n"));
    env.run(&["run"]).expect(0);

    // One mail per person who may decide: both main managers and ACME France's delegate.
    let messages = server.wait_for(3);
    let mut expect = Vec::new();
    for who in MANAGERS {
        let n = pending_of(&env, who).len();
        assert!(n > 0, "{who} has requests");
        let subject = format!("chorus-sync : {}, {n} en attente", plural(n, "nouvelle demande", "nouvelles demandes"));
        expect.push((who.to_string(), subject));
    }
    expect.sort();
    assert_eq!(envelopes(&messages), expect);
    for m in &messages {
        let who = m["rcpt_tos"][0].as_str().unwrap();
        let body = m["body"].as_str().unwrap();
        assert_eq!(m["mail_from"], "noreply@acme.fr");
        for id in pending_of(&env, who) {
            assert!(body.contains(&format!("#{id} ")), "{who}: request #{id} listed\n{body}");
        }
        for line in [
            format!("chorus-sync approvals list --manager {who} --state pending"),
            format!("chorus-sync approvals approve ID... --as {who}"),
            format!("chorus-sync approvals refuse ID... --as {who} --motive"),
            "console : https://chorus-sync.acme.fr".to_string(),
            "Rattacher ".to_string(),
        ] {
            assert!(body.contains(&line), "{who}: {line:?} in\n{body}");
        }
    }
    // gp@acme.fr's digest covers ACME France only; the delegate's the same structure.
    let gp = messages.iter().find(|m| m["rcpt_tos"][0] == "gp@acme.fr").unwrap()["body"].as_str().unwrap();
    assert!(gp.contains("ACME France (12345678200010)") && !gp.contains("ACME Services"), "{gp}");

    // The same input again: nothing new, nothing sent.
    env.run(&["run"]).expect(0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.messages().len(), 3, "a run that raised nothing sends nothing");

    // Six days later: not overdue yet.
    env.now = "2026-11-29T08:00:00Z".into();
    let out = env.run(&["approvals", "housekeeping"]).expect(0);
    assert!(out.stdout.contains("reminders: none sent"), "{}", out.stdout);
    // Eight days later: one reminder each, once that day.
    env.now = "2026-12-01T07:00:00Z".into();
    let out = env.run(&["approvals", "housekeeping"]).expect(0);
    assert!(out.stdout.contains("reminders: 3 sent"), "{}", out.stdout);
    let messages = server.wait_for(6);
    let reminders: Vec<(String, String)> = envelopes(&messages[3..]);
    let expect: Vec<(String, String)> = MANAGERS
        .iter()
        .map(|who| {
            let n = pending_of(&env, who).len();
            let late = plural(n, "demande attend", "demandes attendent");
            (who.to_string(), format!("chorus-sync : rappel, {late} depuis plus de 7 jours"))
        })
        .collect();
    assert_eq!(reminders, expect);
    env.now = "2026-12-01T18:00:00Z".into();
    let out = env.run(&["approvals", "housekeeping"]).expect(0);
    assert!(out.stdout.contains("reminders: none sent"), "at most one a day: {}", out.stdout);
    // The next day, still pending: reminded again.
    env.now = "2026-12-02T07:00:00Z".into();
    env.run(&["approvals", "housekeeping"]).expect(0);
    assert_eq!(server.wait_for(9).len(), 9);
}

#[test]
fn starttls_with_authentication() {
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_cert(certs.path());
    let (cert, key, ca) =
        (certs.path().join("server.pem"), certs.path().join("server.key"), certs.path().join("ca.pem"));
    let server = SmtpServer::start(Some((&cert, &key, "chorus", "s3cr3t-smtp")));
    let extra = format!(
        "tls = \"starttls\"\nca_file = {:?}\nusername_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"\n",
        ca.display().to_string()
    );
    let mut env = Env::new(Backend::Postgres, |c| c + &notifications(server.port, &extra));
    env.vars = vec![("SMTP_USER".into(), "chorus".into()), ("SMTP_PASSWORD".into(), "s3cr3t-smtp".into())];
    let shown = env.run(&["check-config"]).expect(0).stdout;
    assert!(shown.contains("password_env = \"SMTP_PASSWORD\"") && !shown.contains("s3cr3t-smtp"), "{shown}");

    let out = env.run(&["run"]).expect(0);
    assert!(!out.stdout.contains("not sent"), "{}\n{}", out.stdout, out.stderr);
    let messages = server.wait_for(3);
    assert_eq!(messages.len(), 3);
    for m in &messages {
        assert_eq!((m["tls"].as_bool(), m["login"].as_str()), (Some(true), Some("chorus")), "{m}");
    }

    // A refused login: the run still commits, the failure is a note, and the
    // password appears nowhere.
    let mut refused = Env::new(Backend::Sqlite, |c| c + &notifications(server.port, &extra));
    refused.vars = vec![("SMTP_USER".into(), "chorus".into()), ("SMTP_PASSWORD".into(), "wrong-s3cr3t".into())];
    let out = refused.run(&["run"]).expect(0);
    assert!(out.stdout.contains("digest to gp@acme.fr not sent"), "{}", out.stdout);
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("wrong-s3cr3t"), "{}\n{}", out.stdout, out.stderr);
    let run = refused.run(&["runs", "show", "1", "--format", "json"]).expect(0).json();
    assert_eq!(run["outcome"], "done");
    assert!(run["message"].as_str().is_some_and(|m| m.contains("not sent") && !m.contains("wrong-s3cr3t")), "{run}");
    assert_eq!(server.messages().len(), 3, "nothing went through");
}

#[test]
fn an_unreachable_smtp_server_never_fails_the_run() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = Env::new(Backend::Sqlite, |c| c + &notifications(port, "tls = \"none\"\ntimeout_s = 5\n"));
    let out = env.run(&["run"]).expect(0);
    assert!(out.stdout.contains("digest to gp@acme.fr not sent"), "{}", out.stdout);
    assert!(out.stderr.contains("digest not sent") || out.stderr.contains("not sent"), "{}", out.stderr);
    // The run committed, its requests stand, and the run records what failed.
    assert!(!pending_of(&env, "gp@acme.fr").is_empty());
    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    let id = runs[0]["id"].as_i64().unwrap();
    let run = env.run(&["runs", "show", &id.to_string(), "--format", "json"]).expect(0).json();
    assert_eq!(run["outcome"], "done", "{run}");
    assert!(run.to_string().contains("not sent"), "{run}");

    // A reminder that fails is not counted as sent: the next housekeeping that day tries again.
    let mut env = env;
    env.now = "2026-12-01T07:00:00Z".into();
    for _ in 0..2 {
        let out = env.run(&["approvals", "housekeeping"]).expect(0);
        assert!(out.stdout.contains("reminders: none sent"), "{}", out.stdout);
        assert!(out.stdout.contains("warning: reminder to gp@acme.fr not sent"), "{}", out.stdout);
    }
}

/// Regression: a done run that released held requests (raised by the held
/// run before it, so under that run's id) sent no digest for them.
#[test]
fn a_forced_run_announces_the_held_requests_it_releases() {
    let server = SmtpServer::start(None);
    let env = Env::new(Backend::Sqlite, |c| {
        c.replace("max_detach = 50", "max_detach = 1") + &notifications(server.port, "tls = \"none\"\n")
    });
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(4);
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.messages().is_empty(), "a held run mails nobody");

    env.run(&["run", "--force", "--as", "ops@acme.fr"]).expect(0);
    let messages = server.wait_for(3);
    assert_eq!(messages.len(), 3, "{messages:?}");
    for m in &messages {
        let who = m["rcpt_tos"][0].as_str().unwrap();
        let body = m["body"].as_str().unwrap();
        let mine = pending_of(&env, who);
        assert!(!mine.is_empty(), "{who}");
        for id in mine {
            assert!(body.contains(&format!("#{id} ")), "{who}: released request #{id} announced\n{body}");
        }
    }
}
