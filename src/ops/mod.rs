//! `daemon --listen ADDR`: `/healthz` and `/metrics` over HTTP (axum).
//!
//! - `/healthz` (`health.rs`): JSON; 200 when the store answers a query on
//!   its schema, 503 otherwise; per configured source its last run and outcome.
//! - `/metrics` (`metrics.rs`, `exposition.rs`): Prometheus text format 0.0.4.
//! - Both read the store when asked: runs, requests and anomalies are already
//!   there, shared by every instance and kept across restarts. What the store
//!   cannot know (a run that failed and rolled back, a skipped slot) is
//!   counted in this process (`activity.rs`).
//!
//! [`router`] is a plain `axum::Router`, so the web console can mount it on
//! its own server; [`serve`] runs one until `shutdown` resolves.

mod activity;
mod exposition;
mod health;
mod metrics;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, routing::get};

pub use activity::{Activity, Failure, SourceActivity};
pub use exposition::{Exposition, MetricType};

use crate::{config::Config, store::Store};

/// How long a probe or a scrape waits for the store before calling it unreachable.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// The configuration and store in force (replaced on reload), as the
/// handlers see them.
pub type View = Arc<dyn Fn() -> (Arc<Config>, Store) + Send + Sync>;

/// What the handlers read.
#[derive(Clone)]
pub struct OpsState {
    view: View,
    activity: Arc<Activity>,
}

impl OpsState {
    /// `view` is asked for the configuration and store at every request.
    pub fn new(view: View, activity: Arc<Activity>) -> OpsState {
        OpsState { view, activity }
    }

    /// A fixed configuration and store, with no scheduled activity (e.g. the web console).
    pub fn fixed(config: Arc<Config>, store: Store) -> OpsState {
        OpsState::new(Arc::new(move || (config.clone(), store.clone())), Arc::new(Activity::default()))
    }
}

/// `/healthz` and `/metrics`.
pub fn router(state: OpsState) -> Router {
    Router::new().route("/healthz", get(health::handler)).route("/metrics", get(metrics::handler)).with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in progress finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// `fut`, or an error saying the store did not answer in time.
async fn in_time<T>(fut: impl Future<Output = Result<T, crate::store::StoreError>>) -> Result<T, String> {
    match tokio::time::timeout(STORE_TIMEOUT, fut).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("the store did not answer within {} s", STORE_TIMEOUT.as_secs())),
    }
}
