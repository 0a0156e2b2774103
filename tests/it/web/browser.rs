//! The real `chorus-sync serve` driven by a real headless Chromium through
//! chromedriver (fantoccini): sign in, filter, approve one, refuse one with
//! a motive, bulk-approve, download a report, sign out. Screenshots of the
//! main pages go to docs/screenshots/. A missing Chromium or chromedriver is
//! a failure, never a skip: scripts/test.sh installs them.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{ClientBuilder, Locator};

use super::{
    fixture::{self, DELEGATE, PASSWORD},
    provider::Provider,
};
use crate::support::{Backend, Env, repo};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when the test ends, however it ends.
pub(crate) struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `chorus-sync serve` on a free port; returns it with its base URL.
pub(crate) fn serve(env: &Env) -> (Killed, String) {
    serve_on(env, "127.0.0.1:0", &[])
}

/// `chorus-sync serve --listen ADDR` with the variables `vars` besides the test's.
fn serve_on(env: &Env, listen: &str, vars: &[(String, String)]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-sync"))
        .args(["serve", "--listen", listen, "--insecure-cookies"])
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .current_dir(env.dir.path())
        .env("CHORUS_SYNC_NOW", &env.now)
        .env_remove("CHORUS_SYNC_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chorus-sync serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("chorus-sync web console listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
        .to_string();
    (Killed(child), url)
}

fn chromedriver() -> (Killed, String) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: the browser tests need the Debian packages chromium and chromium-driver \
             (scripts/test.sh installs them)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

fn screenshots() -> PathBuf {
    let dir = repo().join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn row_ids(b: &fantoccini::Client) -> Vec<i64> {
    let mut ids = Vec::new();
    for row in b.find_all(Locator::Css("#queue tbody tr[data-id]")).await.unwrap() {
        ids.push(row.attr("data-id").await.unwrap().unwrap().parse().unwrap());
    }
    ids
}

/// The element, once the page shows it (at most 10 s).
async fn soon(
    b: &fantoccini::Client,
    at: Locator<'_>,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    b.wait().at_most(Duration::from_secs(10)).for_element(at).await
}

async fn shot(b: &fantoccini::Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshots().join(name), png).unwrap();
}

/// Waits for a file to appear complete in `dir` (Chromium writes `.crdownload` first).
fn downloaded(dir: &Path, name: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let path = dir.join(name);
        if path.exists() && !dir.join(format!("{name}.crdownload")).exists() {
            return std::fs::read(path).unwrap();
        }
        assert!(Instant::now() < deadline, "{name} was not downloaded into {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_works_through_the_queue_in_chromium_sqlite() {
    works_through_the_queue(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_works_through_the_queue_in_chromium_postgres() {
    works_through_the_queue(Backend::Postgres).await;
}

async fn works_through_the_queue(backend: Backend) {
    // One run keeps the screenshots: the two run at the same time.
    let shots = backend == Backend::Sqlite;
    let shot = async |b: &fantoccini::Client, name: &str| {
        if shots {
            shot(b, name).await;
        }
    };
    let env = fixture::env(backend);
    // The console on a port known before it starts: the provider sends
    // the browser back to it.
    let provider = Provider::start(DELEGATE).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let (_server, base) = serve_on(&env, &listen, &provider.env(&format!("http://{listen}")));
    let (_driver, webdriver) = chromedriver();
    let downloads = env.path("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=fr-FR"],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "intl.accept_languages": "fr-FR,fr"
            }
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let b = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a chromedriver session");

    // No session: the queue sends to sign-in, which brings back to it.
    b.goto(&format!("{base}/approvals")).await.unwrap();
    soon(&b, Locator::Id("sign-in")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/sign-in"));
    shot(&b, "sign-in.png").await;
    b.find(Locator::Css("input[name=email]")).await.unwrap().send_keys(DELEGATE).await.unwrap();
    b.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    b.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Id("queue")).await.unwrap();
    assert_eq!(row_ids(&b).await, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(b.find(Locator::Id("pending-count")).await.unwrap().text().await.unwrap(), "7");
    shot(&b, "queue.png").await;

    // Filter: the attaches.
    b.find(Locator::Css("select[name=kind]")).await.unwrap().select_by_value("attach").await.unwrap();
    b.find(Locator::Id("apply-filter")).await.unwrap().click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.current_url().await.unwrap().query().unwrap_or("").contains("kind=attach") {
        assert!(Instant::now() < deadline, "the filter form was not submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(row_ids(&b).await, [1, 4, 7]);

    // Approve one, with a comment.
    b.find(Locator::Css("#queue a[href='/approvals/1']")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Id("approve-form")).await.unwrap();
    shot(&b, "request.png").await;
    b.find(Locator::Css("#approve-form textarea[name=comment]")).await.unwrap().send_keys("vu").await.unwrap();
    b.find(Locator::Id("approve")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Css("p.ok")).await.unwrap();
    let one = env.run(&["approvals", "show", "1", "--format", "json"]).expect(0).json();
    assert_eq!((one["state"].as_str(), one["decided_by"].as_str()), (Some("approved"), Some(DELEGATE)));

    // Refuse one with a motive.
    b.goto(&format!("{base}/approvals/5")).await.unwrap();
    b.find(Locator::Css("#refuse-form textarea[name=motive]"))
        .await
        .unwrap()
        .send_keys("toujours en poste")
        .await
        .unwrap();
    b.find(Locator::Id("refuse")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Css("p.ok")).await.unwrap();
    let five = env.run(&["approvals", "show", "5", "--format", "json"]).expect(0).json();
    assert_eq!((five["state"].as_str(), five["motive"].as_str()), (Some("refused"), Some("toujours en poste")));

    // Bulk-approve two checked requests.
    b.goto(&format!("{base}/approvals")).await.unwrap();
    for id in [2, 3] {
        b.find(Locator::Css(&format!("input[name=ids][value='{id}']"))).await.unwrap().click().await.unwrap();
    }
    b.find(Locator::Id("bulk-approve")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Id("outcomes")).await.unwrap();
    shot(&b, "bulk.png").await;
    let approved = env.run(&["approvals", "list", "--state", "approved", "--format", "json"]).expect(0).json();
    let ids: Vec<i64> = approved.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);

    // Download a run's report.
    b.goto(&format!("{base}/runs")).await.unwrap();
    shot(&b, "runs.png").await;
    b.find(Locator::Css("a[href='/runs/1/reports/changes.csv']")).await.unwrap().click().await.unwrap();
    let bytes = downloaded(&downloads, "run-1-changes.csv");
    assert_eq!(bytes, std::fs::read(env.path("reports/1/changes.csv")).unwrap());

    // Users of the structure.
    b.goto(&format!("{base}/users")).await.unwrap();
    soon(&b, Locator::Id("users")).await.unwrap();
    shot(&b, "users.png").await;

    // Sign out: the queue sends to sign-in again.
    b.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Id("sign-in")).await.unwrap();
    b.goto(&format!("{base}/approvals")).await.unwrap();
    soon(&b, Locator::Id("sign-in")).await.unwrap();

    // Sign in again through the OpenID provider: off to it, approved, back
    // to the queue with a session.
    b.find(Locator::Id("sign-in-oidc")).await.unwrap().click().await.unwrap();
    soon(&b, Locator::Id("queue")).await.unwrap();
    let who = b.find(Locator::Css("header .who")).await.unwrap().text().await.unwrap();
    assert!(who.contains(DELEGATE), "{who}");
    assert_eq!(row_ids(&b).await, [4, 6, 7], "the delegate's pending requests");
    b.close().await.unwrap();
}
