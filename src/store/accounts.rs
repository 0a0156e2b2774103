//! Web console accounts and sessions. The store only keeps what it is given:
//! hashing passwords and drawing session ids is `web::auth`'s job.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{
    StoreError,
    sql::{Binds, Cols, db, query},
};
use crate::core::approval::rfc3339;

/// A signed-in session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub email: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

pub(crate) async fn set_password_hash(
    conn: &mut AnyConnection,
    email: &str,
    hash: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "set password";
    let mut b = Binds::new(conn);
    let sql = format!(
        "INSERT INTO web_users (email, password_hash, updated_at) VALUES ({},{},{}) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        b.push(email.to_string()),
        b.push(hash.to_string()),
        b.push(rfc3339(&at))
    );
    query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    // A new password signs the account out everywhere.
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_sessions WHERE email = {}", b.push(email.to_string()));
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}

pub(crate) async fn password_hash(conn: &mut AnyConnection, email: &str) -> Result<Option<String>, StoreError> {
    const CTX: &str = "read password";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT password_hash FROM web_users WHERE email = {}", b.push(email.to_string()));
    let row = query(sql, b, CTX)?.fetch_optional(conn).await.map_err(db(CTX))?;
    row.map(|r| Cols::new(&r, "web_users").keyed(email.to_string()).text("password_hash")).transpose()
}

/// Stores a new session and forgets the expired ones.
pub(crate) async fn create_session(
    conn: &mut AnyConnection,
    id_hash: &str,
    session: &WebSession,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "create session";
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_sessions WHERE expires_at < {}", b.push(rfc3339(&now)));
    query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    let mut b = Binds::new(conn);
    let sql = format!(
        "INSERT INTO web_sessions (id_hash, email, csrf, created_at, expires_at) VALUES ({},{},{},{},{})",
        b.push(id_hash.to_string()),
        b.push(session.email.clone()),
        b.push(session.csrf.clone()),
        b.push(rfc3339(&now)),
        b.push(rfc3339(&session.expires_at))
    );
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}

/// The session stored under `id_hash`, if it has not expired at `now`.
pub(crate) async fn session(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebSession>, StoreError> {
    const CTX: &str = "read session";
    let mut b = Binds::new(conn);
    let sql =
        format!("SELECT email, csrf, expires_at FROM web_sessions WHERE id_hash = {}", b.push(id_hash.to_string()));
    let Some(row) = query(sql, b, CTX)?.fetch_optional(conn).await.map_err(db(CTX))? else {
        return Ok(None);
    };
    let c = Cols::new(&row, "web_sessions").keyed("(hashed id)".to_string());
    let s = WebSession { email: c.text("email")?, csrf: c.text("csrf")?, expires_at: c.time("expires_at")? };
    Ok((s.expires_at > now).then_some(s))
}

pub(crate) async fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> Result<(), StoreError> {
    const CTX: &str = "delete session";
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_sessions WHERE id_hash = {}", b.push(id_hash.to_string()));
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}

/// An OpenID Connect sign-in under way: what the callback must find again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcFlow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The console page to open once signed in.
    pub next: String,
    pub expires_at: DateTime<Utc>,
}

/// Stores a flow under the hash of its cookie and forgets the expired ones.
pub(crate) async fn create_oidc_flow(
    conn: &mut AnyConnection,
    id_hash: &str,
    flow: &OidcFlow,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "create sign-in flow";
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_oidc_flows WHERE expires_at < {}", b.push(rfc3339(&now)));
    query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    let mut b = Binds::new(conn);
    let sql = format!(
        "INSERT INTO web_oidc_flows (id_hash, state, nonce, pkce_verifier, next, expires_at) VALUES ({},{},{},{},{},{})",
        b.push(id_hash.to_string()),
        b.push(flow.state.clone()),
        b.push(flow.nonce.clone()),
        b.push(flow.pkce_verifier.clone()),
        b.push(flow.next.clone()),
        b.push(rfc3339(&flow.expires_at))
    );
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}

/// Reads and deletes, in one statement, the flow stored under `id_hash`:
/// a second callback with the same cookie finds nothing. Expired: `None`.
pub(crate) async fn take_oidc_flow(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<OidcFlow>, StoreError> {
    const CTX: &str = "take sign-in flow";
    let mut b = Binds::new(conn);
    let sql = format!(
        "DELETE FROM web_oidc_flows WHERE id_hash = {} RETURNING state, nonce, pkce_verifier, next, expires_at",
        b.push(id_hash.to_string())
    );
    let Some(row) = query(sql, b, CTX)?.fetch_optional(conn).await.map_err(db(CTX))? else {
        return Ok(None);
    };
    let c = Cols::new(&row, "web_oidc_flows").keyed("(hashed id)".to_string());
    let flow = OidcFlow {
        state: c.text("state")?,
        nonce: c.text("nonce")?,
        pkce_verifier: c.text("pkce_verifier")?,
        next: c.text("next")?,
        expires_at: c.time("expires_at")?,
    };
    Ok((flow.expires_at > now).then_some(flow))
}

/// Failed sign-ins in a row for `key` whose last one is at or after `since`.
pub(crate) async fn sign_in_failures(
    conn: &mut AnyConnection,
    key: &str,
    since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    const CTX: &str = "read sign-in failures";
    let mut b = Binds::new(conn);
    let sql = format!(
        "SELECT count FROM web_sign_in_failures WHERE email = {} AND last_at >= {}",
        b.push(key.to_string()),
        b.push(rfc3339(&since))
    );
    let row = query(sql, b, CTX)?.fetch_optional(conn).await.map_err(db(CTX))?;
    row.map_or(Ok(0), |r| Cols::new(&r, "web_sign_in_failures").keyed(key.to_string()).count("count"))
}

/// One more failure for `key` at `now`; a count whose last failure is
/// before `stale_before` starts again from one (and such rows go).
pub(crate) async fn record_sign_in_failure(
    conn: &mut AnyConnection,
    key: &str,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "record sign-in failure";
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_sign_in_failures WHERE last_at < {}", b.push(rfc3339(&stale_before)));
    query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    let mut b = Binds::new(conn);
    let sql = format!(
        "INSERT INTO web_sign_in_failures (email, count, last_at) VALUES ({},1,{}) \
         ON CONFLICT (email) DO UPDATE SET count = web_sign_in_failures.count + 1, last_at = excluded.last_at",
        b.push(key.to_string()),
        b.push(rfc3339(&now))
    );
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}

pub(crate) async fn clear_sign_in_failures(conn: &mut AnyConnection, key: &str) -> Result<(), StoreError> {
    const CTX: &str = "clear sign-in failures";
    let mut b = Binds::new(conn);
    let sql = format!("DELETE FROM web_sign_in_failures WHERE email = {}", b.push(key.to_string()));
    query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    Ok(())
}
