//! The store: current attachments, approval requests, history, runs.
//!
//! One code path for both backends through sqlx's `Any` driver: SQLite (a
//! file, the embedded default) and PostgreSQL (shared by several instances).
//! The schema lives in `migrations/sqlite` and `migrations/postgres`, applied
//! by [`Store::connect`].
//!
//! URLs:
//! - `sqlite://chorus-sync.db` (relative to the working directory) or
//!   `sqlite:///var/lib/chorus-sync/store.db`; the file is created if missing.
//! - `postgres://user[:password]@host[:port]/db`; to keep the tables in a
//!   schema other than `public`, set the search path in the URL:
//!   `postgres://user@host/db?options=-c%20search_path%3Dmyschema` (or
//!   `?options[search_path]=myschema`). The schema must exist.
//!
//! Writers are serialised ([`Store::begin`]); readers never wait for them.

mod accounts;
mod current;
mod framing;
mod identities;
mod page;
mod queries;
mod queue;
mod reminders;
mod slots;
mod sql;
mod stats;
pub mod testing;
#[cfg(test)]
mod tests;

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{Any, AnyConnection, AnyPool, any::AnyPoolOptions};

use crate::{
    core::{
        approval::{ApprovalRequest, HistoryEntry, RequestId, RequestState, RunId},
        change::ChangeKind,
        plan::{AbsenceStreak, OpenRequest, RefusedChange},
        queue::Queue,
        run::{RunRecord, SourceRun},
    },
    domain::StructureId,
    secret::{Secret, mask_url},
};

/// Key class of the PostgreSQL advisory lock that serialises writers; the
/// second key is the schema's hash, so stores in different schemas of one
/// database do not block each other. ("chor" in ASCII.)
const PG_WRITE_LOCK_CLASS: i32 = 0x6368_6f72;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {url}: unsupported scheme (expected sqlite:// or postgres://)")]
    Scheme { url: String },
    #[error("cannot open the store {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot migrate the store {url}: {source}")]
    Migrate { url: String, source: sqlx::migrate::MigrateError },
    #[error("store: {context}: {source}")]
    Query { context: &'static str, source: sqlx::Error },
    #[error("store: table {table}, row {row}, column {column}: {message}")]
    Corrupt { table: &'static str, row: String, column: &'static str, message: String },
    #[error("request {id} is not {expected} (someone changed it, or it does not exist): nothing was changed")]
    Conflict { id: RequestId, expected: RequestState },
    #[error("run {0} does not exist")]
    RunNotFound(RunId),
    #[error("store: {table}: structure {structure} is not among the structures being replaced")]
    OutsideStructures { table: &'static str, structure: String },
    #[error("store: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names, by scheme.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Which requests to list; an empty list (or `None`) does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub ids: Vec<RequestId>,
    pub states: Vec<RequestState>,
    pub structures: Vec<StructureId>,
    pub kinds: Vec<ChangeKind>,
    /// Exact match on the stored manager address.
    pub manager: Option<String>,
    pub run_id: Option<RunId>,
}

pub use accounts::{OidcFlow, WebSession};
pub use identities::{IdentityChanges, IdentityWrites};
pub use page::{AttachmentQuery, RequestQuery, RequestSort};
pub use slots::SlotClaim;
pub use stats::{OutcomeCount, RequestCount, SourceLastRun};

/// An attachment as the last current-state import showed it (the core's type).
pub use crate::core::diff::{CurrentAttachment, CurrentState};

/// How many times the current attachments of each structure were replaced
/// (`replace_current`); a structure never replaced is at 0.
pub type Generations = std::collections::BTreeMap<StructureId, i64>;

/// The current attachments of some structures and their generations, read
/// in one snapshot ([`Store::current_snapshot`]).
#[derive(Debug, Clone, Default)]
pub struct CurrentSnapshot {
    /// Sorted as [`Store::current_attachments`] sorts them.
    pub attachments: CurrentState,
    pub generations: Generations,
}

/// A source's contribution to a run, with the digest of the file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRunRecord {
    pub run: SourceRun,
    pub sha256: Option<String>,
    /// Non-blank cells per mapped field (empty when not counted: older runs).
    pub fill: crate::core::guards::FieldFill,
}

/// A connection pool to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: how [`Store::ping`] reopens the file (no password in it).
    probe_url: Option<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// SQLite needs `mode=rwc` to create a missing file.
fn sqlite_url(url: &str) -> String {
    let has_mode = url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("mode=")));
    if has_mode {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl Store {
    /// Opens the store and brings its schema up to date. Errors show the URL
    /// with any password masked.
    pub async fn connect(url: &Secret<String>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let masked = mask_url(url.expose());
        let backend = Backend::of_url(url.expose()).ok_or_else(|| StoreError::Scheme { url: masked.clone() })?;
        let connect_url = match backend {
            Backend::Sqlite => sqlite_url(url.expose()),
            Backend::Postgres => url.expose().clone(),
        };
        let connect_err = |source| StoreError::Connect { url: masked.clone(), source };
        // One direct connection first: the pool would retry a refused
        // connection until its acquire timeout; a user wants the error now.
        // It also applies the migrations, and the pool connects lazily: every
        // connection costs a TLS handshake on PostgreSQL (~90 ms here), and a
        // pool connected up front opened a second and a third one (issue 7).
        use sqlx::Connection;
        let mut probe = tokio::time::timeout(Duration::from_secs(15), sqlx::AnyConnection::connect(&connect_url))
            .await
            .map_err(|_| connect_err(sqlx::Error::PoolTimedOut))?
            .map_err(connect_err)?;
        if backend == Backend::Sqlite {
            // WAL lets readers work while a run writes; it sticks to the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&mut probe).await.map_err(connect_err)?;
        }
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&mut probe).await.map_err(|source| StoreError::Migrate { url: masked.clone(), source })?;
        probe.close().await.map_err(connect_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy(&connect_url)
            .map_err(connect_err)?;
        let probe_url = if backend == Backend::Sqlite { stats::sqlite_probe_url(url.expose()) } else { None };
        Ok(Store { pool, backend, probe_url })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. Writers are serialised: a second `begin`
    /// waits until the first transaction ends (on SQLite for at most the
    /// 5 s busy timeout, then it fails).
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        const CTX: &str = "begin write transaction";
        let tx = match self.backend {
            // IMMEDIATE takes the write lock now rather than at the first
            // write, so two runs cannot both read and then collide.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(sql::db(CTX))?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await.map_err(sql::db(CTX))?;
                // `SELECT 1 FROM` because the Any driver cannot decode `void`.
                sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1, hashtext(current_schema()))")
                    .bind(PG_WRITE_LOCK_CLASS)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::db(CTX))?;
                tx
            }
        };
        Ok(StoreTx { tx, added_requests: 0 })
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>, StoreError> {
        self.pool.acquire().await.map_err(sql::db("acquire a connection"))
    }

    /// The pending and approved requests of `structures` as the managers'
    /// queues show them (a run's pending sheet), by id.
    pub async fn queued_requests(&self, structures: &[StructureId]) -> Result<Queue, StoreError> {
        queue::queued_requests(&mut *self.conn().await?, structures).await
    }

    /// Requests matching `f`, by id.
    pub async fn list_requests(&self, f: &RequestFilter) -> Result<Vec<ApprovalRequest>, StoreError> {
        queries::list_requests(&mut *self.conn().await?, f).await
    }

    /// The requests with these ids that exist, by id (in chunks the
    /// statement can bind).
    pub async fn requests_by_id(&self, ids: &[RequestId]) -> Result<Vec<ApprovalRequest>, StoreError> {
        queries::requests_by_id(&mut *self.conn().await?, ids).await
    }

    pub async fn count_requests(&self, f: &RequestFilter) -> Result<u64, StoreError> {
        queries::count_requests(&mut *self.conn().await?, f).await
    }

    pub async fn get_request(&self, id: RequestId) -> Result<Option<ApprovalRequest>, StoreError> {
        let f = RequestFilter { ids: vec![id], ..RequestFilter::default() };
        Ok(queries::list_requests(&mut *self.conn().await?, &f).await?.into_iter().next())
    }

    /// A request's transitions, oldest first.
    pub async fn history(&self, id: RequestId) -> Result<Vec<HistoryEntry>, StoreError> {
        queries::history(&mut *self.conn().await?, id).await
    }

    /// Runs, newest first.
    pub async fn list_runs(&self, limit: Option<u64>) -> Result<Vec<RunRecord>, StoreError> {
        queries::list_runs(&mut *self.conn().await?, limit).await
    }

    pub async fn get_run(&self, id: RunId) -> Result<Option<(RunRecord, Vec<SourceRunRecord>)>, StoreError> {
        queries::get_run(&mut *self.conn().await?, id).await
    }

    /// One page of the requests `q` selects, and how many it selects in all.
    pub async fn request_page(
        &self,
        q: &RequestQuery,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<ApprovalRequest>, u64), StoreError> {
        let mut conn = self.conn().await?;
        let rows = page::page(&mut conn, q, limit, offset).await?;
        let total = page::count(&mut conn, q).await?;
        Ok((rows, total))
    }

    /// The ids of every request `q` selects, in its order.
    pub async fn request_ids(&self, q: &RequestQuery) -> Result<Vec<RequestId>, StoreError> {
        page::ids(&mut *self.conn().await?, q).await
    }

    /// One page of the current attachments `q` selects (`None`: all), and
    /// how many it selects in all.
    pub async fn attachment_page(
        &self,
        q: &AttachmentQuery,
        page: Option<(u64, u64)>,
    ) -> Result<(Vec<CurrentAttachment>, u64), StoreError> {
        let mut conn = self.conn().await?;
        let rows = page::attachments(&mut conn, q, page).await?;
        let total = page::count_attachments(&mut conn, q).await?;
        Ok((rows, total))
    }

    /// Stores (or replaces) the web console password hash of `email`, and
    /// ends their sessions.
    pub async fn set_password_hash(&self, email: &str, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        accounts::set_password_hash(&mut *self.conn().await?, email, hash, at).await
    }

    pub async fn password_hash(&self, email: &str) -> Result<Option<String>, StoreError> {
        accounts::password_hash(&mut *self.conn().await?, email).await
    }

    /// Stores a session under the hash of its id; expired sessions go.
    pub async fn create_session(&self, id_hash: &str, s: &WebSession, now: DateTime<Utc>) -> Result<(), StoreError> {
        accounts::create_session(&mut *self.conn().await?, id_hash, s, now).await
    }

    /// The live session stored under `id_hash`.
    pub async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<WebSession>, StoreError> {
        accounts::session(&mut *self.conn().await?, id_hash, now).await
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        accounts::delete_session(&mut *self.conn().await?, id_hash).await
    }

    /// Stores an OpenID Connect sign-in under the hash of its cookie.
    pub async fn create_oidc_flow(&self, id_hash: &str, f: &OidcFlow, now: DateTime<Utc>) -> Result<(), StoreError> {
        accounts::create_oidc_flow(&mut *self.conn().await?, id_hash, f, now).await
    }

    /// The live flow stored under `id_hash`, deleted as it is read.
    pub async fn take_oidc_flow(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<OidcFlow>, StoreError> {
        accounts::take_oidc_flow(&mut *self.conn().await?, id_hash, now).await
    }

    /// Failed sign-ins in a row for `key`, the last one at or after `since`.
    pub async fn sign_in_failures(&self, key: &str, since: DateTime<Utc>) -> Result<u64, StoreError> {
        accounts::sign_in_failures(&mut *self.conn().await?, key, since).await
    }

    /// One more failed sign-in for `key`; counts older than `stale_before` restart.
    pub async fn record_sign_in_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        accounts::record_sign_in_failure(&mut *self.conn().await?, key, now, stale_before).await
    }

    pub async fn clear_sign_in_failures(&self, key: &str) -> Result<(), StoreError> {
        accounts::clear_sign_in_failures(&mut *self.conn().await?, key).await
    }

    /// Current attachments of the listed structures (none for an empty
    /// list), sorted by structure, e-mail, placement.
    pub async fn current_attachments(&self, structures: &[StructureId]) -> Result<CurrentState, StoreError> {
        current::current_attachments(&mut *self.conn().await?, structures).await
    }

    /// The current attachments of `structures` and their generations, in one
    /// read snapshot that does not wait for writers nor block them (SQLite: a
    /// deferred transaction in WAL mode; PostgreSQL: repeatable read, read
    /// only). A write transaction that finds other generations
    /// ([`StoreTx::current_generations`]) knows a replacement committed since.
    pub async fn current_snapshot(&self, structures: &[StructureId]) -> Result<CurrentSnapshot, StoreError> {
        const CTX: &str = "begin read transaction";
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut tx = self.pool.begin_with(begin).await.map_err(sql::db(CTX))?;
        // The first read fixes the snapshot; both come from it.
        let generations = queries::current_generations(&mut tx, structures).await?;
        let attachments = current::current_attachments(&mut tx, structures).await?;
        tx.rollback().await.map_err(sql::db("end read transaction"))?;
        Ok(CurrentSnapshot { attachments, generations })
    }
}

/// A write transaction (see [`Store::begin`]). Dropped without `commit`, it
/// rolls back. After an error, roll back: on PostgreSQL the transaction
/// refuses further statements.
pub struct StoreTx {
    tx: sqlx::Transaction<'static, Any>,
    /// Requests inserted so far: analyzed at commit when they are many
    /// (`sql::analyze_after_load`), however many calls inserted them.
    added_requests: usize,
}

impl fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreTx")
    }
}

impl StoreTx {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub async fn current_attachments(&mut self, structures: &[StructureId]) -> Result<CurrentState, StoreError> {
        current::current_attachments(self.conn(), structures).await
    }

    /// The generation of each of `structures` as this transaction sees it.
    pub async fn current_generations(&mut self, structures: &[StructureId]) -> Result<Generations, StoreError> {
        queries::current_generations(self.conn(), structures).await
    }

    /// Replaces the current attachments of `structures` by `rows`, and counts
    /// one more generation for each; other structures are untouched. Every
    /// row must belong to a listed structure.
    pub async fn replace_current(
        &mut self,
        structures: &[StructureId],
        rows: &[CurrentAttachment],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queries::replace_current(self.conn(), structures, rows, at).await
    }

    /// Held requests of `structures` (the would-be requests of held runs), by id.
    pub async fn held_requests(&mut self, structures: &[StructureId]) -> Result<Vec<ApprovalRequest>, StoreError> {
        queries::held_requests(self.conn(), structures).await
    }

    /// Pending and approved requests of `structures`, by id.
    pub async fn open_requests(&mut self, structures: &[StructureId]) -> Result<Vec<OpenRequest>, StoreError> {
        queue::open_requests(self.conn(), structures).await
    }

    /// The latest refused request of each change key of `structures`, by id.
    pub async fn refused_changes(&mut self, structures: &[StructureId]) -> Result<Vec<RefusedChange>, StoreError> {
        queries::refused_changes(self.conn(), structures).await
    }

    pub async fn absences(&mut self, structures: &[StructureId]) -> Result<Vec<AbsenceStreak>, StoreError> {
        queries::absences(self.conn(), structures).await
    }

    /// Replaces the streaks of `structures`; every streak must belong to one.
    pub async fn replace_absences(
        &mut self,
        structures: &[StructureId],
        streaks: &[AbsenceStreak],
    ) -> Result<(), StoreError> {
        queries::replace_absences(self.conn(), structures, streaks).await
    }

    /// Which of these (employee id, address) pairs the store does not hold
    /// (addresses as `Email` spells them): ids it knows under another
    /// address, and ids it has never seen. The pairs come sorted by id in
    /// byte order, each id once (as `Desired::identities` gives them).
    pub async fn identity_changes<'a>(
        &mut self,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<IdentityChanges, StoreError> {
        identities::identity_changes(self.conn(), pairs).await
    }

    /// Remembers employee id → address pairs: new ids inserted, changed
    /// ones overwritten.
    pub async fn record_identities(&mut self, ids: IdentityWrites, at: DateTime<Utc>) -> Result<(), StoreError> {
        queries::record_identities(self.conn(), ids, at).await
    }

    /// The latest non-rejected read of `source` in a run that ended `done`.
    pub async fn last_accepted_source_run(&mut self, source: &str) -> Result<Option<SourceRunRecord>, StoreError> {
        queries::last_accepted_source_run(self.conn(), source).await
    }

    /// Inserts a run (its `id` is ignored) and returns the new id.
    pub async fn insert_run(&mut self, run: &RunRecord) -> Result<RunId, StoreError> {
        queries::insert_run(self.conn(), run).await
    }

    /// Overwrites the run with id `run.id`.
    pub async fn update_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        queries::update_run(self.conn(), run).await
    }

    pub async fn insert_source_runs(&mut self, run_id: RunId, runs: &[SourceRunRecord]) -> Result<(), StoreError> {
        queries::insert_source_runs(self.conn(), run_id, runs).await
    }

    /// Inserts requests (their `id` is ignored), each with a first history
    /// entry (from nothing to its state, by its requester, at its creation).
    /// Returns the new ids in input order.
    pub async fn insert_requests(&mut self, reqs: &[ApprovalRequest]) -> Result<Vec<RequestId>, StoreError> {
        let ids = queries::insert_requests(self.conn(), reqs).await?;
        self.added_requests += reqs.len();
        Ok(ids)
    }

    /// The requests with these ids that exist, by id.
    pub async fn requests_by_id(&mut self, ids: &[RequestId]) -> Result<Vec<ApprovalRequest>, StoreError> {
        queries::requests_by_id(self.conn(), ids).await
    }

    /// Moves request `id` from `from` to `to` and records it in the history
    /// with `text` as comment. Approving or refusing also records who and
    /// when, and `text` as the comment (approval) or motive (refusal). If the
    /// request is not in state `from`, nothing changes: `Conflict`.
    /// Whether the transition is allowed is `core::approval::next_state`'s call.
    pub async fn transition(
        &mut self,
        id: RequestId,
        from: RequestState,
        to: RequestState,
        by: Option<&str>,
        at: DateTime<Utc>,
        text: Option<&str>,
    ) -> Result<(), StoreError> {
        queries::transition(self.conn(), id, from, to, by, at, text).await
    }

    /// `transition` for many requests at once, without text. If any of them
    /// is not in state `from`, nothing changes: `Conflict` names the first.
    pub async fn transition_many(
        &mut self,
        ids: &[RequestId],
        from: RequestState,
        to: RequestState,
        by: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queries::transition_many(self.conn(), ids, from, to, by, at).await
    }

    /// Commits; on PostgreSQL, requests inserted in bulk are analyzed first
    /// (the pending sheet and the queues read them in keyset pages by id).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let added = sql::Analyze::Grown(self.added_requests);
        sql::analyze_after_load(self.conn(), "requests", added, "analyze requests").await?;
        self.tx.commit().await.map_err(sql::db("commit"))
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await.map_err(sql::db("roll back"))
    }
}
