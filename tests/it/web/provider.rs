//! A small OpenID provider the tests start on 127.0.0.1:0:
//! - discovery (`/.well-known/openid-configuration`);
//! - `/authorize` approves at once the user the test chose and redirects
//!   back with a code and the state;
//! - `/token` checks the client's credentials (by the method it advertises),
//!   the redirect URI, the PKCE verifier (S256), and that a code serves once;
//! - `/jwks`: the public keys.
//!
//! ID tokens are signed RS256 with `oidc-provider-TEST-ONLY-rsa-key.pem` (a
//! key made for these tests and nothing else) or ES256 with a P-256 key
//! drawn at start. `Settings` makes the provider misbehave one way at a time.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use p256::ecdsa::{Signature, SigningKey as EcKey};
use rsa::{
    RsaPrivateKey,
    pkcs1v15::SigningKey as RsaSigner,
    pkcs8::DecodePrivateKey,
    signature::{SignatureEncoding, Signer},
    traits::PublicKeyParts,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "chorus-console";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";
/// The variable the console reads the secret from.
pub const SECRET_ENV: &str = "CHORUS_TEST_OIDC_CLIENT_SECRET";
const RSA_KID: &str = "test-rsa";
const EC_KID: &str = "test-ec";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

/// How the next sign-ins go.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who approves at /authorize.
    pub email: String,
    pub email_verified: Option<bool>,
    pub alg: Alg,
    /// Signs with a P-256 key the JWKS does not hold (under the real kid).
    pub rogue_key: bool,
    /// Puts another nonce in the ID token than the one asked.
    pub wrong_nonce: bool,
    /// Seconds the ID token lives; negative: expired already.
    pub lifetime: i64,
    /// Advertises and accepts only client_secret_post (else only basic).
    pub post_only: bool,
}

impl Settings {
    fn new(email: &str) -> Settings {
        Settings {
            email: email.to_string(),
            email_verified: Some(true),
            alg: Alg::Rs256,
            rogue_key: false,
            wrong_nonce: false,
            lifetime: 300,
            post_only: false,
        }
    }
}

struct Grant {
    redirect_uri: String,
    nonce: String,
    challenge: String,
    settings: Settings,
}

struct Keys {
    rsa: RsaPrivateKey,
    ec: EcKey,
    rogue: EcKey,
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    settings: Arc<Mutex<Settings>>,
    codes: Arc<Mutex<HashMap<String, Grant>>>,
    keys: Arc<Keys>,
}

pub struct Provider {
    pub issuer: String,
    settings: Arc<Mutex<Settings>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random_hex() -> String {
    let mut b = [0_u8; 16];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ec_key() -> EcKey {
    let mut b = [0_u8; 32];
    getrandom::fill(&mut b).unwrap();
    EcKey::from_slice(&b).expect("a P-256 scalar")
}

impl Provider {
    /// A provider approving `email`, on a port of its own.
    pub async fn start(email: &str) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let pem = include_str!("oidc-provider-TEST-ONLY-rsa-key.pem");
        let keys = Keys { rsa: RsaPrivateKey::from_pkcs8_pem(pem).unwrap(), ec: ec_key(), rogue: ec_key() };
        let shared = Shared {
            issuer: format!("http://{addr}"),
            settings: Arc::new(Mutex::new(Settings::new(email))),
            codes: Arc::default(),
            keys: Arc::new(keys),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Provider { issuer: shared.issuer, settings: shared.settings, task }
    }

    /// Changes how the next sign-ins go.
    pub fn set(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut self.settings.lock().unwrap());
    }

    /// What a browser does at the provider: GET the authorization URL and
    /// read where it is sent back to.
    pub async fn approve(authorization_url: &str) -> String {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let resp = http.get(authorization_url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 303, "the provider approves: {:?}", resp.text().await);
        resp.headers()[header::LOCATION].to_str().unwrap().to_string()
    }

    /// The `[web.oidc]` table for a console at `console` (its base URL).
    pub fn config(&self, console: &str) -> String {
        format!(
            "\n[web.oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"{SECRET_ENV}\"\n\
             redirect_url = \"{console}/auth/oidc/callback\"\nbutton_label = \"Acme SSO\"\n",
            self.issuer
        )
    }

    /// The same as `CHORUS_SYNC__WEB__OIDC__*` variables, for a binary.
    pub fn env(&self, console: &str) -> Vec<(String, String)> {
        [
            ("ISSUER", self.issuer.clone()),
            ("CLIENT_ID", CLIENT_ID.to_string()),
            ("CLIENT_SECRET_ENV", SECRET_ENV.to_string()),
            ("REDIRECT_URL", format!("{console}/auth/oidc/callback")),
            ("BUTTON_LABEL", "Acme SSO".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("CHORUS_SYNC__WEB__OIDC__{k}"), v))
        .chain([(SECRET_ENV.to_string(), CLIENT_SECRET.to_string())])
        .collect()
    }
}

async fn discovery(State(s): State<Shared>) -> Json<Value> {
    let post_only = s.settings.lock().unwrap().post_only;
    let methods = if post_only { json!(["client_secret_post"]) } else { json!(["client_secret_basic"]) };
    Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

fn bad(status: StatusCode, error: &str, why: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": why }))).into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("response_type") != "code" {
        return bad(StatusCode::BAD_REQUEST, "invalid_request", "unknown client or response type");
    }
    if field("code_challenge_method") != "S256" || field("code_challenge").is_empty() {
        return bad(StatusCode::BAD_REQUEST, "invalid_request", "PKCE with S256 is required");
    }
    if !field("scope").split(' ').any(|x| x == "openid") || field("nonce").is_empty() {
        return bad(StatusCode::BAD_REQUEST, "invalid_request", "openid scope and nonce required");
    }
    let code = random_hex();
    let grant = Grant {
        redirect_uri: field("redirect_uri"),
        nonce: field("nonce"),
        challenge: field("code_challenge"),
        settings: s.settings.lock().unwrap().clone(),
    };
    s.codes.lock().unwrap().insert(code.clone(), grant);
    let mut back = reqwest::Url::parse(&field("redirect_uri")).unwrap();
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", &field("state"));
    Redirect::to(back.as_str()).into_response()
}

/// The client id and secret, from the method the provider advertises only.
fn credentials(headers: &HeaderMap, form: &HashMap<String, String>, post_only: bool) -> Option<(String, String)> {
    if post_only {
        return Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()));
    }
    let basic = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let dec = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((dec(id)?, dec(secret)?))
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let post_only = s.settings.lock().unwrap().post_only;
    if credentials(&headers, &form, post_only) != Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())) {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client", "bad client credentials");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return bad(StatusCode::BAD_REQUEST, "unsupported_grant_type", "authorization_code only");
    }
    // One use: the code is gone once presented, whatever happens next.
    let Some(grant) = form.get("code").and_then(|c| s.codes.lock().unwrap().remove(c)) else {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or already used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri differs");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if B64.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
    }
    let now = chrono::Utc::now().timestamp();
    let st = &grant.settings;
    let mut claims = json!({
        "iss": s.issuer,
        "sub": format!("sub-{}", st.email),
        "aud": CLIENT_ID,
        "iat": now.min(now + st.lifetime - 60),
        "exp": now + st.lifetime,
        "nonce": if st.wrong_nonce { "another-nonce".to_string() } else { grant.nonce.clone() },
        "email": st.email,
    });
    if let Some(v) = st.email_verified {
        claims["email_verified"] = json!(v);
    }
    let id_token = sign(&s.keys, st, &claims);
    Json(json!({ "access_token": random_hex(), "token_type": "Bearer", "expires_in": 300, "id_token": id_token }))
        .into_response()
}

/// A compact JWS of `claims` as `settings` say.
fn sign(keys: &Keys, settings: &Settings, claims: &Value) -> String {
    let (alg, kid) = match settings.alg {
        Alg::Rs256 => ("RS256", RSA_KID),
        Alg::Es256 => ("ES256", EC_KID),
    };
    let header = json!({ "alg": alg, "kid": kid, "typ": "JWT" });
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = match (settings.alg, settings.rogue_key) {
        (Alg::Rs256, false) => RsaSigner::<Sha256>::new(keys.rsa.clone()).sign(input.as_bytes()).to_vec(),
        (Alg::Es256, false) => Signer::<Signature>::sign(&keys.ec, input.as_bytes()).to_bytes().to_vec(),
        (_, true) => Signer::<Signature>::sign(&keys.rogue, input.as_bytes()).to_bytes().to_vec(),
    };
    format!("{input}.{}", B64.encode(signature))
}

async fn jwks(State(s): State<Shared>) -> Json<Value> {
    let public = s.keys.rsa.to_public_key();
    let point = s.keys.ec.verifying_key().to_encoded_point(false);
    Json(json!({ "keys": [
        {
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": RSA_KID,
            "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be()),
        },
        {
            "kty": "EC", "use": "sig", "alg": "ES256", "kid": EC_KID, "crv": "P-256",
            "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()),
        },
    ] }))
}
