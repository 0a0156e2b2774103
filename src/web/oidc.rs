//! Sign-in through an OpenID Connect provider (`[web.oidc]`): the
//! authorization code flow with PKCE (S256), `state` and `nonce`.
//!
//! - `/auth/oidc/start` reads the provider's discovery document, draws the
//!   state, nonce and PKCE verifier, keeps them in the store under the
//!   SHA-256 of a random `chorus_oidc` cookie (HttpOnly, SameSite=Lax so
//!   that it comes back on the provider's redirect, ten minutes), and sends
//!   the browser to the provider.
//! - `/auth/oidc/callback` takes that flow (read and deleted at once: a
//!   second callback finds nothing), checks the state, exchanges the code
//!   with the verifier at the token endpoint (client_secret_basic, or _post
//!   when the provider offers only that), verifies the ID token (signature
//!   against the provider's JWKS, asymmetric algorithms only; iss, aud, exp,
//!   iat, nonce), reads the e-mail claim, and opens a session exactly as a
//!   password does, for a configured main manager or delegate only.
//!
//! Every failure is a page naming the problem in the viewer's language and
//! a log line naming the reason; never a session. Codes, tokens and the
//! client secret are never logged.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use base64::Engine as _;
use chrono::Utc;
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJwsSigningAlgorithm, CoreProviderMetadata},
};
use subtle::ConstantTimeEq;

use super::{
    WebError, WebResult, WebState,
    auth::{cookie, id_hash, open_session, random_token, safe_next, set_cookie},
    form::Query,
    i18n::{Lang, Texts},
    page,
};
use crate::{config::OidcConfig, domain::Email, store::OidcFlow};

const FLOW_COOKIE: &str = "chorus_oidc";
const FLOW_PATH: &str = "/auth/oidc";
/// A sign-in must come back from the provider within this time.
const FLOW_MINUTES: i64 = 10;
/// Every request to the provider (discovery, keys, token).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Tolerated clock difference with the provider for `iat`.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Why a sign-in through the provider did not open a session.
#[derive(Debug)]
enum Refusal {
    /// No flow for this browser: no cookie, unknown, already used or expired.
    FlowLost,
    /// `state` differs from the one drawn for this browser.
    StateMismatch,
    /// The provider sent the browser back with an `error`.
    ProviderError(String),
    /// Discovery, keys or token endpoint unreachable or unreadable.
    Unreachable(String),
    /// The token endpoint refused the code (replayed, expired, wrong verifier…).
    CodeRejected(String),
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce…).
    InvalidToken(String),
    NoEmail,
    Unverified(String),
    NoAccount(String),
}

impl Refusal {
    /// For the log line.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::FlowLost => "no sign-in under way for this browser",
            Refusal::StateMismatch => "state mismatch",
            Refusal::ProviderError(_) => "the provider returned an error",
            Refusal::Unreachable(_) => "provider unreachable",
            Refusal::CodeRejected(_) => "code refused by the token endpoint",
            Refusal::InvalidToken(_) => "invalid ID token",
            Refusal::NoEmail => "no e-mail claim",
            Refusal::Unverified(_) => "e-mail not verified",
            Refusal::NoAccount(_) => "not a main manager or delegate",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Refusal::ProviderError(d)
            | Refusal::Unreachable(d)
            | Refusal::CodeRejected(d)
            | Refusal::InvalidToken(d)
            | Refusal::Unverified(d)
            | Refusal::NoAccount(d) => d,
            Refusal::FlowLost | Refusal::StateMismatch | Refusal::NoEmail => "",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::FlowLost | Refusal::StateMismatch => StatusCode::BAD_REQUEST,
            Refusal::Unreachable(_) => StatusCode::BAD_GATEWAY,
            Refusal::CodeRejected(_) | Refusal::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Refusal::ProviderError(_) | Refusal::NoEmail | Refusal::Unverified(_) | Refusal::NoAccount(_) => {
                StatusCode::FORBIDDEN
            }
        }
    }

    fn message(&self, t: &'static Texts) -> &'static str {
        match self {
            Refusal::FlowLost | Refusal::StateMismatch => t.oidc_flow_lost,
            Refusal::ProviderError(_) => t.oidc_provider_refused,
            Refusal::Unreachable(_) => t.oidc_unreachable,
            Refusal::CodeRejected(_) => t.oidc_code_rejected,
            Refusal::InvalidToken(_) => t.oidc_invalid_token,
            Refusal::NoEmail => t.oidc_no_email,
            Refusal::Unverified(_) => t.oidc_unverified,
            Refusal::NoAccount(_) => t.oidc_no_account,
        }
    }

    /// The page, and the log line naming the reason.
    fn respond(self, state: &WebState, lang: Lang) -> Response {
        tracing::warn!(reason = self.reason(), detail = self.detail(), "OpenID Connect sign-in refused");
        let clear = set_cookie(state, FLOW_COOKIE, "", FLOW_PATH, 0);
        (self.status(), [(header::SET_COOKIE, clear)], page::sign_in_refused(lang, self.message(lang.texts())))
            .into_response()
    }
}

/// The provider's metadata and a client for it, read at each sign-in so a
/// key rotation or a configuration reload shows at once.
struct Provider {
    /// Authorization endpoint set, token and userinfo maybe (as discovered).
    client: CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>,
    http: reqwest::Client,
}

/// An HTTP client that follows no redirect (the OpenID specs forbid it),
/// trusts the system roots plus `ca_file`, and gives up after a while.
fn http_client(config: &OidcConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .connect_timeout(PROVIDER_TIMEOUT);
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {}: not PEM certificates ({e})", path.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

async fn discover(config: &OidcConfig) -> Result<Provider, Refusal> {
    let http = http_client(config).map_err(Refusal::Unreachable)?;
    let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| Refusal::Unreachable(format!("issuer: {e}")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| Refusal::Unreachable(format!("discovery at {}: {}", config.issuer, error_chain(&e))))?;
    // client_secret_basic unless the provider lists only client_secret_post.
    let post_only = metadata.token_endpoint_auth_methods_supported().is_some_and(|m| {
        m.contains(&CoreClientAuthMethod::ClientSecretPost) && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
    });
    let redirect = RedirectUrl::new(config.redirect_url.clone())
        .map_err(|e| Refusal::Unreachable(format!("redirect_url: {e}")))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.expose().clone())),
    )
    .set_redirect_uri(redirect)
    .set_auth_type(if post_only { AuthType::RequestBody } else { AuthType::BasicAuth });
    Ok(Provider { client, http })
}

/// An error and its sources on one line (no response bodies: they may hold tokens).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn oidc_config(state: &WebState, lang: Lang) -> Result<OidcConfig, WebError> {
    state.config().web.oidc.clone().ok_or_else(|| WebError::not_found(lang.texts()))
}

/// `GET /auth/oidc/start?next=…`: off to the provider.
pub(crate) async fn start(State(state): State<WebState>, lang: Lang, Query(q): Query) -> WebResult {
    let config = oidc_config(&state, lang)?;
    let provider = match discover(&config).await {
        Ok(p) => p,
        Err(refusal) => return Ok(refusal.respond(&state, lang)),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = provider
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge);
    for scope in config.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf_state, nonce) = request.url();
    let id = random_token()?;
    let now = Utc::now();
    let flow = OidcFlow {
        state: csrf_state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: safe_next(q.get("next")),
        expires_at: now + chrono::TimeDelta::minutes(FLOW_MINUTES),
    };
    state.store().create_oidc_flow(&id_hash(&id), &flow, now).await?;
    let mut resp = Redirect::to(url.as_str()).into_response();
    resp.headers_mut().append(header::SET_COOKIE, flow_cookie(&state, &id)?);
    Ok(resp)
}

/// SameSite=Lax, not Strict: the browser must send it back on the
/// provider's redirect, a top-level navigation from another site.
fn flow_cookie(state: &WebState, id: &str) -> Result<HeaderValue, WebError> {
    let strict = set_cookie(state, FLOW_COOKIE, id, FLOW_PATH, FLOW_MINUTES * 60);
    strict.replace("SameSite=Strict", "SameSite=Lax").parse().map_err(|_| WebError::internal("cookie header".into()))
}

/// `GET /auth/oidc/callback?code=…&state=…`: back from the provider.
pub(crate) async fn callback(
    State(state): State<WebState>,
    lang: Lang,
    headers: axum::http::HeaderMap,
    Query(q): Query,
) -> WebResult {
    let config = oidc_config(&state, lang)?;
    let flow = match cookie(&headers, FLOW_COOKIE) {
        Some(id) if !id.is_empty() => state.store().take_oidc_flow(&id_hash(id), Utc::now()).await?,
        _ => None,
    };
    let outcome = match flow {
        None => Err(Refusal::FlowLost),
        Some(flow) => signed_in_email(&state, &config, &flow, &q).await.map(|email| (email, flow.next)),
    };
    let (email, next) = match outcome {
        Ok(v) => v,
        Err(refusal) => return Ok(refusal.respond(&state, lang)),
    };
    let session = open_session(&state, &email, "openid-connect").await?;
    let next = safe_next(Some(&next));
    let mut resp = page::continue_to(lang, &next).into_response();
    let h = resp.headers_mut();
    for c in [session, set_cookie(&state, FLOW_COOKIE, "", FLOW_PATH, 0)] {
        h.append(header::SET_COOKIE, c.parse().map_err(|_| WebError::internal("cookie header".into()))?);
    }
    Ok(resp)
}

/// Every check between the provider's redirect and a session.
async fn signed_in_email(
    state: &WebState,
    config: &OidcConfig,
    flow: &OidcFlow,
    q: &super::form::Fields,
) -> Result<Email, Refusal> {
    let sent = q.get("state").unwrap_or("");
    if !bool::from(sent.as_bytes().ct_eq(flow.state.as_bytes())) {
        return Err(Refusal::StateMismatch);
    }
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").unwrap_or("");
        return Err(Refusal::ProviderError(format!("{error} {description}").trim().to_string()));
    }
    let code = q.get("code").ok_or_else(|| Refusal::ProviderError("no code in the redirect".into()))?;
    let provider = discover(config).await?;
    let request = provider
        .client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| Refusal::Unreachable(format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()));
    let tokens = request.request_async(&provider.http).await.map_err(|e| match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.error_description().map_or(String::new(), |d| format!(": {d}"));
            Refusal::CodeRejected(format!("{}{description}", r.error()))
        }
        RequestTokenError::Request(e) => Refusal::Unreachable(format!("token endpoint: {}", error_chain(&e))),
        // The body may hold tokens: only where it went wrong.
        RequestTokenError::Parse(e, _) => {
            Refusal::Unreachable(format!("token endpoint: unreadable answer at {}", e.path()))
        }
        RequestTokenError::Other(e) => Refusal::Unreachable(format!("token endpoint: {e}")),
    })?;
    let id_token = tokens.id_token().ok_or_else(|| Refusal::InvalidToken("no ID token in the answer".into()))?;
    let now = Utc::now();
    let verifier =
        provider.client.id_token_verifier().set_allowed_algs(ASYMMETRIC_ALGS.to_vec()).set_issue_time_verifier_fn(
            move |iat| {
                if iat > now + CLOCK_SKEW { Err(format!("issued in the future ({iat})")) } else { Ok(()) }
            },
        );
    id_token.claims(&verifier, &Nonce::new(flow.nonce.clone())).map_err(|e| Refusal::InvalidToken(error_chain(&e)))?;
    // The checks passed on this very token: its payload is the provider's.
    let claims = payload(&id_token.to_string()).ok_or_else(|| Refusal::InvalidToken("unreadable claims".into()))?;
    let raw = claims.get(&config.email_claim).and_then(|v| v.as_str()).ok_or(Refusal::NoEmail)?;
    let email = Email::parse(raw).map_err(|e| Refusal::NoAccount(format!("{raw:?}: {e}")))?;
    if config.require_verified_email && !verified(claims.get("email_verified")) {
        return Err(Refusal::Unverified(email.to_string()));
    }
    if state.config().catalog.decidable_by(&email).is_empty() {
        return Err(Refusal::NoAccount(email.to_string()));
    }
    Ok(email)
}

/// Signatures a provider makes with its private key; never HMAC with the
/// client secret, never `none`.
const ASYMMETRIC_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// `email_verified: true` (some providers send the string "true").
fn verified(claim: Option<&serde_json::Value>) -> bool {
    match claim {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The claims of a compact JWS, as JSON.
fn payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::{payload, verified};

    #[test]
    fn only_a_true_email_verified_counts() {
        use serde_json::json;
        for (claim, expect) in [
            (Some(json!(true)), true),
            (Some(json!("true")), true),
            (Some(json!(false)), false),
            (Some(json!("false")), false),
            (Some(json!(1)), false),
            (None, false),
        ] {
            assert_eq!(verified(claim.as_ref()), expect, "{claim:?}");
        }
    }

    #[test]
    fn payload_reads_the_middle_part() {
        // {"email":"gp@acme.fr"}
        let claims = payload("e30.eyJlbWFpbCI6ImdwQGFjbWUuZnIifQ.c2ln").unwrap();
        assert_eq!(claims["email"], "gp@acme.fr");
        assert!(payload("not a token").is_none());
    }
}
