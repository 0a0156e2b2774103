//! Throwaway stores for tests, here and in `tests/it`.
//!
//! PostgreSQL comes from `CHORUS_SYNC_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each store gets its own new
//! schema. An unreachable server fails the test: it is never skipped.
//! Schemas are swept once they are two hours old, by the next test process.
#![doc(hidden)]

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicUsize, Ordering},
};

use chrono::Utc;
use sqlx::{AnyConnection, Connection};
use tempfile::TempDir;

use super::Store;
use crate::secret::Secret;

pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store in a new SQLite file; the file goes with the `TempDir`.
pub async fn fresh_sqlite() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory for the test store");
    let url = Secret::new(sqlite_test_url(&dir));
    let store = Store::connect(&url).await.expect("open a fresh SQLite test store");
    (store, dir)
}

/// `sqlite://<dir>/store.db`.
pub fn sqlite_test_url(dir: &TempDir) -> String {
    format!("sqlite://{}/store.db", dir.path().display())
}

/// A store in a new, empty PostgreSQL schema.
pub async fn fresh_postgres() -> Store {
    let (url, schema) = create_pg_schema().await;
    Store::connect(&url).await.unwrap_or_else(|e| panic!("open the PostgreSQL test store in schema {schema}: {e}"))
}

/// The test server's URL.
pub fn pg_base_url() -> String {
    std::env::var("CHORUS_SYNC_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.to_string())
}

/// `base` with its search path set to `schema`: the form `[store] url` takes.
pub fn pg_url_with_schema(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Creates a new schema and returns a URL that uses it, and its name. Usable
/// from sync tests and from inside a runtime (it runs on its own thread).
pub fn test_url_pg_schema() -> (Secret<String>, String) {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("start a runtime to create the test schema");
        rt.block_on(create_pg_schema())
    })
    .join()
    .expect("create a PostgreSQL test schema")
}

static SCHEMA_SEQ: AtomicUsize = AtomicUsize::new(0);
static SWEPT: std::sync::Once = std::sync::Once::new();

/// `cs_test_<pid>_<n>_<rand>`: unique across processes and machines.
fn schema_name() -> String {
    let n = SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_usize(n);
    format!("cs_test_{}_{n}_{:08x}", std::process::id(), h.finish() as u32)
}

pub async fn create_pg_schema() -> (Secret<String>, String) {
    sqlx::any::install_default_drivers();
    let base = pg_base_url();
    let masked = crate::secret::mask_url(&base);
    let mut conn = AnyConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL test server unreachable at {masked} ({e}). Start it, or point CHORUS_SYNC_TEST_PG \
             at one; store tests never skip PostgreSQL."
        )
    });
    let mut sweep = false;
    SWEPT.call_once(|| sweep = true);
    if sweep {
        sweep_old_schemas(&mut conn).await;
    }
    let schema = schema_name();
    // The schema name is generated here from digits and letters only.
    let create = format!("CREATE SCHEMA {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create test schema {schema} at {masked}: {e}"));
    let comment =
        format!("COMMENT ON SCHEMA {schema} IS 'chorus-sync test {}'", crate::core::approval::rfc3339(&Utc::now()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(comment))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("comment test schema {schema}: {e}"));
    conn.close().await.ok();
    (Secret::new(pg_url_with_schema(&base, &schema)), schema)
}

/// Drops a test schema and everything in it.
pub async fn drop_pg_schema(schema: &str) {
    sqlx::any::install_default_drivers();
    let Ok(mut conn) = AnyConnection::connect(&pg_base_url()).await else { return };
    if is_test_schema(schema) {
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok();
    }
    conn.close().await.ok();
}

fn is_test_schema(name: &str) -> bool {
    name.starts_with("cs_test_") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Drops test schemas left by earlier processes, once they are two hours
/// old (no test runs that long). Best effort: errors are ignored.
async fn sweep_old_schemas(conn: &mut AnyConnection) {
    let rows: Vec<(String, Option<String>)> = match sqlx::query_as(
        "SELECT nspname::text AS name, obj_description(oid, 'pg_namespace')::text AS note \
         FROM pg_namespace WHERE nspname LIKE 'cs\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(rows) => rows,
        Err(_) => return,
    };
    let cutoff = Utc::now() - chrono::Duration::hours(2);
    for (name, note) in rows {
        let created = note
            .as_deref()
            .and_then(|n| n.strip_prefix("chorus-sync test "))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if created.is_some_and(|t| t < cutoff) && is_test_schema(&name) {
            let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.ok();
        }
    }
}

/// Turns `async fn x(store: Store)` tests into `x::sqlite` and `x::postgres`
/// tests, one fresh store each.
#[macro_export]
#[doc(hidden)]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (store, _dir) = $crate::store::testing::fresh_sqlite().await;
                    super::$name(store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let (url, schema) = $crate::store::testing::create_pg_schema().await;
                    let store = $crate::store::Store::connect(&url)
                        .await
                        .unwrap_or_else(|e| panic!("open the PostgreSQL test store in schema {schema}: {e}"));
                    super::$name(store.clone()).await;
                    // Left behind when the test fails, for a look; swept later.
                    store.close().await;
                    $crate::store::testing::drop_pg_schema(&schema).await;
                }
            }
        )*
    };
}
