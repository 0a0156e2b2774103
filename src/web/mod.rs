//! The approvals web console (`chorus-sync serve`): server-rendered pages for
//! main managers and delegates. Every decision goes through `Engine::decide`,
//! every list through the store's queries, exactly as the command line does;
//! this module only turns HTTP into those calls and their results into HTML.
//!
//! - `auth`: passwords (argon2), sessions in the store, CSRF, the `Viewer`.
//! - `oidc`: sign-in through an OpenID Connect provider (`[web.oidc]`).
//! - `queue`: the queue, one request, single and bulk decisions.
//! - `runs`: runs and their report files; `users`: who is attached where.
//! - `page`: the layout; `i18n`: the texts; `form`: form and query fields.

pub mod accounts;
mod auth;
mod form;
pub mod i18n;
mod oidc;
mod page;
mod queue;
mod runs;
mod users;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use crate::{
    config::Config,
    engine::{Clock, Engine, EngineError},
    ops,
    store::{Store, StoreError},
};

pub use auth::{SESSION_COOKIE, Viewer};
use i18n::{Lang, Texts};

/// How the console serves its cookies and sessions.
#[derive(Debug, Clone, Copy)]
pub struct WebOptions {
    /// `Secure` cookies (the browser sends them over https only). Off only
    /// for plain http on localhost (`serve --insecure-cookies`).
    pub secure_cookies: bool,
    /// A session ends this long after sign-in.
    pub session_hours: u32,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions { secure_cookies: true, session_hours: 8 }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    /// The configuration and store in force: the daemon swaps them on reload.
    view: ops::View,
    options: WebOptions,
}

impl WebState {
    /// A fixed configuration and store (`chorus-sync serve`).
    pub fn new(config: Arc<Config>, store: Store, options: WebOptions) -> WebState {
        WebState::with_view(Arc::new(move || (config.clone(), store.clone())), options)
    }

    /// The configuration and store asked of `view` at every request (the
    /// daemon's, so a reload shows at the next click).
    pub fn with_view(view: ops::View, options: WebOptions) -> WebState {
        WebState { inner: Arc::new(Inner { view, options }) }
    }

    fn config(&self) -> Arc<Config> {
        (self.inner.view)().0
    }

    fn store(&self) -> Store {
        (self.inner.view)().1
    }

    /// An engine with the clock read now: a server lives for days, so each
    /// request gets its own "now" (`CHORUS_SYNC_NOW` still fixes it in tests).
    fn engine(&self) -> Result<Engine, WebError> {
        let clock = Clock::from_env().map_err(|e| WebError::internal(e.to_string()))?;
        let (config, store) = (self.inner.view)();
        Ok(Engine { config, store, clock })
    }
}

/// The console's routes. The daemon can mount it beside its own.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/approvals") }))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/auth/oidc/start", get(oidc::start))
        .route(crate::config::OIDC_CALLBACK_PATH, get(oidc::callback))
        .route("/approvals", get(queue::list))
        .route("/approvals/bulk", post(queue::bulk))
        .route("/approvals/{id}", get(queue::show))
        .route("/approvals/{id}/{decision}", post(queue::decide))
        .route("/runs", get(runs::list))
        .route("/runs/{id}/reports/{file}", get(runs::download))
        .route("/users", get(users::list))
        .route("/users/export.csv", get(users::export_csv))
        .route("/users/export.xlsx", get(users::export_xlsx))
        .layer(axum::middleware::from_fn(page::language))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("web server: {0}")]
    Io(#[from] std::io::Error),
}

/// `chorus-sync serve`: the console, `/healthz` and `/metrics` on `listen`
/// until SIGINT or SIGTERM.
pub async fn serve(config: Arc<Config>, listen: SocketAddr, options: WebOptions) -> Result<(), ServeError> {
    let store = Store::connect(&config.store.url).await?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Bind { addr: listen, source })?;
    let addr: SocketAddr = listener.local_addr()?;
    // On stdout so a script (or a test) learns the port when ADDR ends in :0.
    println!("chorus-sync web console listening on http://{addr}");
    if !options.secure_cookies {
        tracing::warn!("cookies without Secure: use this only for plain http on localhost");
    }
    let health = ops::router(ops::OpsState::fixed(config.clone(), store.clone()));
    let app = router(WebState::new(config, store.clone(), options)).merge(health);
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    store.close().await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A page that could not be served: a status and a sentence for the user.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
}

impl WebError {
    fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into() }
    }

    fn not_found(t: &Texts) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, t.not_found)
    }

    fn forbidden(t: &Texts) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, t.forbidden)
    }

    fn bad_csrf(t: &Texts) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, t.bad_csrf)
    }

    fn internal(detail: String) -> WebError {
        // The detail goes to the log, not to the browser.
        tracing::error!("web console: {detail}");
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne / Internal error")
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        WebError::internal(e.to_string())
    }
}

impl From<EngineError> for WebError {
    fn from(e: EngineError) -> WebError {
        WebError::internal(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.status, page::bare(Lang::default(), "chorus-sync", &self.message)).into_response()
    }
}

type WebResult = Result<Response, WebError>;
