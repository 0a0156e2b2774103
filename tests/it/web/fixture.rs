//! A store with the samples' requests and three console accounts:
//! - gp@acme.fr, main manager of ACME France;
//! - adjoint@acme.fr, delegate of ACME France;
//! - gp@acme-services.fr, main manager of ACME Services.
//!
//! Run 1 reads source `hr` (ACME France), run 2 `acme-services`.

use std::sync::Arc;

use chorus_sync::{
    config,
    secret::Secret,
    store::Store,
    web::{WebOptions, WebState, router},
};

use super::client::Client;
use crate::support::{Backend, Env, Run};

pub const PASSWORD: &str = "un mot de passe assez long";
pub const GP: &str = "gp@acme.fr";
pub const DELEGATE: &str = "adjoint@acme.fr";
pub const GP_SERVICES: &str = "gp@acme-services.fr";

pub struct Fixture {
    pub env: Env,
    pub store: Store,
    pub config: Arc<config::Config>,
    pub app: axum::Router,
}

/// `chorus-sync users set-password EMAIL` with the password on stdin.
pub fn set_password(env: &Env, email: &str, password: &str) -> Run {
    env.run_with_stdin(&["users", "set-password", email], &format!("{password}\n"))
}

/// The samples, with the store and reports at absolute paths so the binary
/// and this test process (whose working directory differs) agree.
pub fn env(backend: Backend) -> Env {
    let env = absolute(Env::new(backend, |c| c));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run", "--source", "hr"]).expect(0);
    env.run(&["run", "--source", "acme-services"]).expect(0);
    for who in [GP, DELEGATE, GP_SERVICES] {
        set_password(&env, who, PASSWORD).expect(0);
    }
    env
}

/// The samples with `max_detach = 1`: the first run is held, its ten
/// changes kept as `held` requests.
pub fn held_env(backend: Backend) -> Env {
    let env = absolute(Env::new(backend, |c| c.replace("max_detach = 50", "max_detach = 1")));
    env.run(&["import-current", "samples/portal-export.csv"]).expect(0);
    env.run(&["run"]).expect(4);
    for who in [GP, DELEGATE, GP_SERVICES] {
        set_password(&env, who, PASSWORD).expect(0);
    }
    env
}

/// The store and reports of `env`'s config at absolute paths.
fn absolute(env: Env) -> Env {
    let path = env.path("chorus-sync.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "url = \"sqlite://chorus-sync.db\"",
            &format!("url = \"sqlite://{}\"", env.path("chorus-sync.db").display()),
        )
        .replace("dir = \"reports\"", &format!("dir = \"{}\"", env.path("reports").display()));
    std::fs::write(&path, text).unwrap();
    env
}

fn console(config: &Arc<config::Config>, store: &Store) -> axum::Router {
    let options = WebOptions { secure_cookies: true, session_hours: 8 };
    router(WebState::new(config.clone(), store.clone(), options))
}

impl Fixture {
    pub async fn new(backend: Backend) -> Fixture {
        Fixture::on(env(backend)).await
    }

    pub async fn on(env: Env) -> Fixture {
        let config = config::load(&env.path("chorus-sync.toml")).expect("the fixture's config loads");
        Fixture::build(env, config).await
    }

    /// The samples' fixture whose console (only: the file is unchanged) also
    /// reads `extra` (a `[web.oidc]` table) with the variables `vars`.
    pub async fn with(backend: Backend, extra: &str, vars: &[(String, String)]) -> Fixture {
        let env = env(backend);
        let path = env.path("chorus-sync.toml");
        let text = std::fs::read_to_string(&path).unwrap() + extra;
        let config = config::load_from(&text, Some(&path), vars).unwrap_or_else(|e| panic!("{e}"));
        Fixture::build(env, config).await
    }

    async fn build(env: Env, config: config::Config) -> Fixture {
        let store = Store::connect(&Secret::new(config.store.url.expose().clone())).await.expect("open the store");
        let config = Arc::new(config);
        let app = console(&config, &store);
        Fixture { env, store, config, app }
    }

    /// Another console over the same configuration and store: a second
    /// instance of the console behind the same load balancer.
    pub fn second_instance(&self) -> Client {
        Client::new(console(&self.config, &self.store))
    }

    pub fn client(&self) -> Client {
        Client::new(self.app.clone())
    }

    /// A client signed in as `who`.
    pub async fn signed_in(&self, who: &str) -> Client {
        let mut c = self.client();
        let r = c.sign_in(who, PASSWORD).await;
        assert_eq!(r.status, 303, "sign in as {who}: {}", r.body);
        c
    }

    /// `approvals show ID --format json` from the real binary.
    pub fn show(&self, id: i64) -> serde_json::Value {
        self.env.run(&["approvals", "show", &id.to_string(), "--format", "json"]).expect(0).json()
    }

    /// `approvals list --format json` ids in a state.
    pub fn ids_in(&self, state: &str) -> Vec<i64> {
        let list = self.env.run(&["approvals", "list", "--state", state, "--format", "json"]).expect(0).json();
        list.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
    }
}
