//! OpenID Connect sign-in on the router, against the test provider
//! (`provider`), on SQLite and PostgreSQL: the flow is kept in the store.

use super::{
    client::{Client, Resp},
    fixture::{DELEGATE, Fixture, GP, GP_SERVICES},
    provider::{Alg, CLIENT_SECRET, Provider, SECRET_ENV},
};
use crate::support::Backend;
use std::sync::Mutex;

/// What the test binary logs while `f` runs (the console's lines among them).
///
/// tracing caches, per callsite, whether any subscriber listens. With only
/// scoped subscribers (one per capture, as before), that cache raced the
/// other tests' threads and a capture came back empty now and then (CI, twice,
/// even after rebuilding the cache under the scoped subscriber). So the test
/// binary gets ONE global subscriber, installed on first use, that always
/// listens and writes into a sink only while a capture is on; captures take
/// turns. Lines of tests running meanwhile may land in a capture too: the
/// assertions look for this test's lines, and for what must never be logged.
async fn logged<T>(f: impl Future<Output = T>) -> (T, String) {
    static SINK: Mutex<Option<Vec<u8>>> = Mutex::new(None);
    struct Sink;
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Some(buf) = SINK.lock().unwrap().as_mut() {
                buf.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(|| Sink).finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the test binary");
    });
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    *SINK.lock().unwrap() = Some(Vec::new());
    let out = f.await;
    let text = SINK.lock().unwrap().take().unwrap_or_default();
    (out, String::from_utf8(text).unwrap())
}

/// The console's public URL in these tests (http is accepted to localhost).
const CONSOLE: &str = "http://localhost";

on_both!(
    a_manager_signs_in_through_the_provider,
    the_provider_must_vouch_for_a_verified_address_of_a_manager,
    forged_tokens_are_refused,
    a_tampered_state_or_a_replayed_code_opens_no_session,
    an_unreachable_provider_is_a_clear_error,
);

async fn fixture(backend: Backend, provider: &Provider) -> Fixture {
    Fixture::with(backend, &provider.config(CONSOLE), &[(SECRET_ENV.to_string(), CLIENT_SECRET.to_string())]).await
}

/// The console's start, the provider's approval: where the browser is sent back.
async fn to_provider_and_back(c: &mut Client, next: &str) -> String {
    let start = c
        .get(&format!(
            "/auth/oidc/start?{}",
            form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish()
        ))
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let back = Provider::approve(start.location()).await;
    back.strip_prefix(CONSOLE).unwrap_or_else(|| panic!("sent back elsewhere: {back}")).to_string()
}

/// A whole sign-in: the callback's answer.
async fn sign_in(c: &mut Client) -> Resp {
    let back = to_provider_and_back(c, "/approvals").await;
    c.get(&back).await
}

/// A refused sign-in: `status`, the page says `message`, and no session.
async fn refused(c: &mut Client, r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.body.contains(message), "{message:?} not in {}", r.body);
    assert!(c.cookie("chorus_session").is_none(), "no session cookie");
    assert_eq!(c.get("/approvals").await.status, 303, "still signed out");
}

async fn a_manager_signs_in_through_the_provider(backend: Backend) {
    let provider = Provider::start(GP_SERVICES).await;
    let fx = fixture(backend, &provider).await;
    let mut c = fx.client();
    // The sign-in page offers the provider beside the password form.
    let page = c.get("/sign-in?next=%2Fruns").await;
    assert!(page.body.contains("Se connecter avec Acme SSO"), "{}", page.body);
    assert!(page.body.contains("href=\"/auth/oidc/start?next=%2Fruns\""), "{}", page.body);
    assert!(page.body.contains("name=\"password\""), "password sign-in stays");

    // Off to the provider: code flow, PKCE S256, state, nonce, the scopes.
    let start = c.get("/auth/oidc/start?next=%2Fapprovals%3Fkind%3Dattach").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let to = reqwest::Url::parse(start.location()).unwrap();
    assert_eq!(to.as_str().split('?').next(), Some(format!("{}/authorize", provider.issuer).as_str()));
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["redirect_uri"], format!("{CONSOLE}/auth/oidc/callback"));
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16 && q["code_challenge"].len() == 43, "{q:?}");
    let flow_cookie = start.header("set-cookie");
    for attr in ["chorus_oidc=", "Path=/auth/oidc", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=600"] {
        assert!(flow_cookie.contains(attr), "{flow_cookie}");
    }

    // Back: a session as a password gives, then on to `next` from this site.
    let back = Provider::approve(start.location()).await;
    let done = c.get(back.strip_prefix(CONSOLE).unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("content=\"0; url=/approvals?kind=attach\""), "{}", done.body);
    let set: Vec<&str> = done.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("chorus_session=")).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(c.cookie("chorus_oidc").is_none(), "the flow cookie is cleared");
    let queue = c.get("/approvals").await;
    assert_eq!(queue.status, 200);
    assert_eq!(queue.row_ids(), [8, 9, 10], "only ACME Services");
    assert!(queue.body.contains(GP_SERVICES));
    // Same session as a password's: CSRF and decisions work.
    let csrf = c.csrf().await;
    assert_eq!(c.post("/approvals/8/approve", &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(fx.show(8)["decided_by"], GP_SERVICES);

    // ES256 tokens, and a provider that takes client_secret_post only.
    provider.set(|s| {
        s.email = DELEGATE.to_string();
        s.alg = Alg::Es256;
        s.post_only = true;
    });
    let mut d = fx.client();
    assert_eq!(sign_in(&mut d).await.status, 200);
    assert_eq!(d.get("/approvals").await.row_ids(), (1..=7).collect::<Vec<_>>());
}

async fn the_provider_must_vouch_for_a_verified_address_of_a_manager(backend: Backend) {
    let provider = Provider::start("someone@acme.fr").await;
    let fx = fixture(backend, &provider).await;
    // A real person at the provider, but nobody's manager or delegate.
    let mut c = fx.client();
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 403, "ni gestionnaire principal ni délégué").await;
    // A manager's address, but not verified (false, or not said).
    provider.set(|s| {
        s.email = GP.to_string();
        s.email_verified = Some(false);
    });
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 403, "adresse électronique n'est pas vérifiée").await;
    provider.set(|s| s.email_verified = None);
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 403, "adresse électronique n'est pas vérifiée").await;
    // In English too.
    c.headers.push(("Accept-Language".into(), "en".into()));
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 403, "Your e-mail address is not verified").await;
    // Verified: in.
    provider.set(|s| s.email_verified = Some(true));
    assert_eq!(sign_in(&mut c).await.status, 200);
    assert_eq!(c.get("/approvals").await.row_ids(), (1..=7).collect::<Vec<_>>());
}

async fn forged_tokens_are_refused(backend: Backend) {
    let provider = Provider::start(GP).await;
    let fx = fixture(backend, &provider).await;
    let mut c = fx.client();
    let invalid = "La réponse du fournisseur d'identité n'est pas valable";
    provider.set(|s| s.wrong_nonce = true);
    let (r, log) = logged(sign_in(&mut c)).await;
    refused(&mut c, &r, 401, invalid).await;
    assert!(log.contains("OpenID Connect sign-in refused") && log.contains("invalid ID token"), "{log}");
    assert!(log.contains("nonce"), "the log names the failed check: {log}");
    assert!(!log.contains(CLIENT_SECRET) && !log.contains("eyJ"), "no secret, no token in the log: {log}");
    provider.set(|s| {
        s.wrong_nonce = false;
        s.lifetime = -60;
    });
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 401, invalid).await;
    provider.set(|s| {
        s.lifetime = 300;
        s.alg = Alg::Es256;
        s.rogue_key = true;
    });
    let r = sign_in(&mut c).await;
    refused(&mut c, &r, 401, invalid).await;
    // The same provider, honest again: in.
    provider.set(|s| s.rogue_key = false);
    assert_eq!(sign_in(&mut c).await.status, 200);
    assert_eq!(c.get("/approvals").await.status, 200);
}

async fn a_tampered_state_or_a_replayed_code_opens_no_session(backend: Backend) {
    let provider = Provider::start(GP).await;
    let fx = fixture(backend, &provider).await;
    let lost = "Cette connexion a expiré ou a été commencée dans un autre navigateur";
    // Another state than the one drawn for this browser.
    let mut c = fx.client();
    let back = to_provider_and_back(&mut c, "/approvals").await;
    let tampered = back.replace("state=", "state=x");
    let r = c.get(&tampered).await;
    refused(&mut c, &r, 400, lost).await;
    // The flow is spent: the genuine redirect does not work afterwards either.
    let r = c.get(&back).await;
    refused(&mut c, &r, 400, lost).await;
    // A callback in a browser that did not start the sign-in.
    let mut other = fx.client();
    let back = to_provider_and_back(&mut c, "/approvals").await;
    let r = other.get(&back).await;
    refused(&mut other, &r, 400, lost).await;

    // A code used once, presented again with a fresh flow's state: the
    // provider refuses it and the console says so.
    let mut c = fx.client();
    let used = to_provider_and_back(&mut c, "/approvals").await;
    assert_eq!(c.get(&used).await.status, 200);
    let code = query_value(&used, "code");
    let mut replay = fx.client();
    let fresh = to_provider_and_back(&mut replay, "/approvals").await;
    let replayed = format!("/auth/oidc/callback?code={code}&state={}", query_value(&fresh, "state"));
    let (r, log) = logged(replay.get(&replayed)).await;
    refused(&mut replay, &r, 401, "n'a pas accepté cette connexion").await;
    assert!(log.contains("code refused by the token endpoint") && log.contains("invalid_grant"), "{log}");
    assert!(!log.contains(&code) && !log.contains(CLIENT_SECRET), "no code, no secret in the log: {log}");
    // The provider sending back an error.
    let fresh = to_provider_and_back(&mut replay, "/approvals").await;
    let state = query_value(&fresh, "state");
    let r = replay.get(&format!("/auth/oidc/callback?error=access_denied&state={state}")).await;
    refused(&mut replay, &r, 403, "Le fournisseur d'identité a refusé la connexion").await;
}

fn query_value(path_and_query: &str, name: &str) -> String {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    let found = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name);
    found.unwrap_or_else(|| panic!("no {name} in {path_and_query}")).1.into_owned()
}

async fn an_unreachable_provider_is_a_clear_error(backend: Backend) {
    let provider = Provider::start(GP).await;
    let fx = fixture(backend, &provider).await;
    let down = "Le fournisseur d'identité ne répond pas";
    // Down between the start and the return.
    let mut c = fx.client();
    let back = to_provider_and_back(&mut c, "/approvals").await;
    drop(provider);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = c.get(&back).await;
    refused(&mut c, &r, 502, down).await;
    // Down at the start: no flow cookie, the password form still offered.
    let r = c.get("/auth/oidc/start").await;
    assert!(!r.header("set-cookie").contains("chorus_oidc=") || r.header("set-cookie").contains("Max-Age=0"));
    refused(&mut c, &r, 502, down).await;
    assert!(c.get("/sign-in").await.body.contains("name=\"password\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_there_is_no_provider_sign_in() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let mut c = fx.client();
    assert!(!c.get("/sign-in").await.body.contains("sign-in-oidc"));
    assert_eq!(c.get("/auth/oidc/start").await.status, 404);
    assert_eq!(c.get("/auth/oidc/callback?code=x&state=y").await.status, 404);
}
