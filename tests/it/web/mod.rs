//! The approvals web console: HTTP-level tests of every route on the router
//! (`client`), and the real binary driven by a headless Chromium (`browser`).

/// `name_sqlite` and `name_postgres` tests running `name(backend)`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::support::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(crate::support::Backend::Postgres).await;
                }
            }
        )*
    };
}

pub(crate) mod browser;
mod client;
mod fixture;
mod oidc;
mod provider;
mod routes;
