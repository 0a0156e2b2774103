//! Sign-in, sessions and CSRF.
//!
//! - A session id is 256 random bits, sent in an HttpOnly, SameSite=Strict
//!   (and, unless `--insecure-cookies`, Secure) cookie; the store keeps only
//!   its SHA-256, with the e-mail, an expiry and the session's CSRF token.
//! - Every POST form carries the session's CSRF token, compared in constant
//!   time. The sign-in form, before any session, uses a double-submit cookie.
//! - Sign-in spends one argon2 verification whether the address has an
//!   account or not, and an address is locked out for a minute after
//!   `MAX_FAILURES` failures in a row. The count is kept in the store, so
//!   every instance on one database shares it.
//! - OpenID Connect sign-in (`oidc`) ends in `open_session` like a password.

use axum::{
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    WebError, WebResult, WebState,
    accounts::{random_bytes, verify_password},
    form::{Form, Query},
    i18n::Lang,
    page,
};
use crate::{domain::Email, domain::StructureId, store::WebSession};

pub const SESSION_COOKIE: &str = "chorus_session";
const LOGIN_COOKIE: &str = "chorus_login";
const MAX_FAILURES: u64 = 5;
const LOCKOUT: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A signed-in manager or delegate, and the structures they may decide for.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub email: Email,
    pub csrf: String,
    pub lang: Lang,
    pub structures: Vec<StructureId>,
    /// This page's path and query without `lang`, for the language link.
    pub here: String,
}

impl Viewer {
    pub fn sees(&self, structure: &StructureId) -> bool {
        self.structures.contains(structure)
    }

    /// Is this the form's CSRF token? Constant time.
    pub fn check_csrf(&self, form: &super::form::Fields) -> Result<(), WebError> {
        let sent = form.get("csrf").unwrap_or("");
        if same(sent, &self.csrf) { Ok(()) } else { Err(WebError::bad_csrf(self.lang.texts())) }
    }
}

fn same(a: &str, b: &str) -> bool {
    !b.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store keeps of a cookie's random id.
pub(crate) fn id_hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

pub(crate) fn random_token() -> Result<String, WebError> {
    random_bytes().map(|b| hex(&b)).map_err(|e| WebError::internal(e.to_string()))
}

/// The value of cookie `name` in the request's Cookie headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

pub(crate) fn set_cookie(state: &WebState, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = if state.inner.options.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Only a local path: never an open redirect to another site.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/approvals".to_string(),
    }
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Viewer, Response> {
        let lang = parts.extensions.get::<Lang>().copied().unwrap_or_default();
        let to_sign_in = || {
            let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            Redirect::to(&format!("/sign-in?{}", super::form::encode([("next", here)]))).into_response()
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_sign_in());
        };
        let session =
            state.store().session(&id_hash(id), Utc::now()).await.map_err(|e| WebError::from(e).into_response())?;
        let Some(session) = session else {
            return Err(to_sign_in());
        };
        let Ok(email) = Email::parse(&session.email) else {
            return Err(to_sign_in());
        };
        // The configuration may have changed since sign-in: rights are read now.
        let structures = state.config().catalog.decidable_by(&email);
        if structures.is_empty() {
            return Err(WebError::forbidden(lang.texts()).into_response());
        }
        let query = super::form::Fields::parse(parts.uri.query().unwrap_or("").as_bytes());
        let kept = query.pairs().filter(|(k, _)| *k != "lang");
        let here = format!("{}?{}", parts.uri.path(), super::form::encode(kept));
        Ok(Viewer { email, csrf: session.csrf, lang, structures, here })
    }
}

/// The provider's button label, when one is configured.
fn oidc_button(state: &WebState) -> Option<String> {
    state.config().web.oidc.as_ref().map(|o| o.button_label.clone())
}

pub(crate) async fn sign_in_page(State(state): State<WebState>, lang: Lang, Query(q): Query) -> WebResult {
    let token = random_token()?;
    let body =
        page::sign_in(lang, &token, q.get("next").unwrap_or("/approvals"), None, None, oidc_button(&state).as_deref());
    let cookie = set_cookie(&state, LOGIN_COOKIE, &token, "/sign-in", 3600);
    Ok(([(header::SET_COOKIE, cookie)], body).into_response())
}

pub(crate) async fn sign_in(State(state): State<WebState>, lang: Lang, headers: HeaderMap, Form(f): Form) -> WebResult {
    let t = lang.texts();
    let next = f.get("next").unwrap_or("/approvals").to_string();
    if !same(f.get("csrf").unwrap_or(""), cookie(&headers, LOGIN_COOKIE).unwrap_or("")) {
        return Err(WebError::bad_csrf(t));
    }
    let typed = f.get("email").unwrap_or("").to_string();
    let retry = |status: StatusCode, message: &str| -> WebResult {
        let token = random_token()?;
        let body = page::sign_in(lang, &token, &next, Some(&typed), Some(message), oidc_button(&state).as_deref());
        let cookie = set_cookie(&state, LOGIN_COOKIE, &token, "/sign-in", 3600);
        Ok((status, [(header::SET_COOKIE, cookie)], body).into_response())
    };
    let key = typed.trim().to_lowercase();
    if locked_out(&state, &key).await? {
        return retry(StatusCode::TOO_MANY_REQUESTS, t.too_many_attempts);
    }
    let email = Email::parse(&typed).ok().filter(|e| !state.config().catalog.decidable_by(e).is_empty());
    let stored = match &email {
        Some(e) => state.store().password_hash(e.as_str()).await?,
        None => None,
    };
    let password = f.get("password").unwrap_or("").to_string();
    // Unknown address or no password set: verify against a throwaway hash so
    // the answer takes as long as for a real account.
    let (hash, known) = match stored {
        Some(h) => (h, true),
        None => (dummy_hash().to_string(), false),
    };
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| WebError::internal(e.to_string()))?;
    let Some(email) = email.filter(|_| known && matches) else {
        let now = Utc::now();
        state.store().record_sign_in_failure(&key, now, now - LOCKOUT).await?;
        return retry(StatusCode::UNAUTHORIZED, t.bad_credentials);
    };
    state.store().clear_sign_in_failures(&key).await?;
    let session = open_session(&state, &email, "password").await?;
    let mut resp = Redirect::to(&safe_next(Some(&next))).into_response();
    let h = resp.headers_mut();
    for c in [session, set_cookie(&state, LOGIN_COOKIE, "", "/sign-in", 0)] {
        h.append(header::SET_COOKIE, c.parse().map_err(|_| WebError::internal("cookie header".into()))?);
    }
    Ok(resp)
}

/// Stores a new session for `email` (signed in by `method`) and returns the
/// Set-Cookie value that hands it to the browser.
pub(crate) async fn open_session(state: &WebState, email: &Email, method: &str) -> Result<String, WebError> {
    let id = random_token()?;
    let now = Utc::now();
    let hours = state.inner.options.session_hours;
    let session = WebSession {
        email: email.to_string(),
        csrf: random_token()?,
        expires_at: now + chrono::Duration::hours(i64::from(hours)),
    };
    state.store().create_session(&id_hash(&id), &session, now).await?;
    tracing::info!(user = %email, method, "signed in to the web console");
    Ok(set_cookie(state, SESSION_COOKIE, &id, "/", i64::from(hours) * 3600))
}

pub(crate) async fn sign_out(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form,
) -> WebResult {
    viewer.check_csrf(&f)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.store().delete_session(&id_hash(id)).await?;
    }
    let clear = set_cookie(&state, SESSION_COOKIE, "", "/", 0);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/sign-in")).into_response())
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| super::accounts::hash_password("no account here").unwrap_or_default())
}

/// `MAX_FAILURES` failures in a row, the last less than `LOCKOUT` ago.
async fn locked_out(state: &WebState, key: &str) -> Result<bool, WebError> {
    Ok(state.store().sign_in_failures(key, Utc::now() - LOCKOUT).await? >= MAX_FAILURES)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{cookie, safe_next};

    #[test]
    fn next_stays_on_this_site() {
        for (next, expect) in [
            (Some("/approvals/3"), "/approvals/3"),
            (Some("//evil.example/x"), "/approvals"),
            (Some("https://evil.example"), "/approvals"),
            (Some("/\\evil.example"), "/approvals"),
            (None, "/approvals"),
        ] {
            assert_eq!(safe_next(next), expect, "{next:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("chorus_lang=en; chorus_session=abc"));
        assert_eq!(cookie(&h, "chorus_session"), Some("abc"));
        assert_eq!(cookie(&h, "chorus_lang"), Some("en"));
        assert_eq!(cookie(&h, "chorus"), None);
    }
}
