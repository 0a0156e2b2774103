//! What each command does with the engine, and how it prints.

mod output;

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use chorus_sync::{
    config,
    core::{
        approval::{Motive, RequestState, Transition},
        change::ChangeKind,
        run::RunOutcome,
    },
    domain::{Email, IdentifierType, StructureId},
    engine::{Clock, Decision, Engine, EngineError, RunOptions},
    store::{RequestFilter, Store},
};

use crate::{ApprovalsCommand, LogFormat, RunsCommand, Selection};

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_REJECTED: u8 = 3;
pub const EXIT_HELD: u8 = 4;

pub enum Command {
    CheckConfig,
    ImportCurrent(PathBuf),
    Run { sources: Vec<String>, out: Option<PathBuf>, dry_run: bool, force: bool, who: Option<String> },
    Approvals(ApprovalsCommand),
    Runs(RunsCommand),
    Daemon { listen: Option<std::net::SocketAddr>, web: chorus_sync::web::WebOptions },
    Serve { listen: std::net::SocketAddr, web: chorus_sync::web::WebOptions },
    SetPassword(String),
}

pub fn init_logging(format: LogFormat, verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHORUS_SYNC_LOG")
        // The scheduler's own info lines ("Job creator created") are noise.
        .unwrap_or_else(|_| {
            let scheduler = if quiet { "error" } else { "warn" };
            tracing_subscriber::EnvFilter::new(format!("{default},tokio_cron_scheduler={scheduler}"))
        });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A usage problem found after parsing (bad e-mail in `--as`, blank motive…).
fn usage(msg: impl std::fmt::Display) -> anyhow::Result<u8> {
    eprintln!("error: {msg}");
    Ok(EXIT_USAGE)
}

pub fn dispatch(config_path: &Path, command: Command) -> anyhow::Result<u8> {
    let config = match config::load(config_path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_USAGE);
        }
    };
    if let Command::CheckConfig = command {
        print!("{}", config::render(&config));
        return Ok(EXIT_OK);
    }
    let clock = match Clock::from_env() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if let Command::Daemon { listen, web } = command {
        let config = Arc::unwrap_or_clone(config);
        let result = runtime.block_on(chorus_sync::daemon::run(config_path, config, listen, web));
        // After a second signal, runs may still hold blocking threads: do not wait for them.
        runtime.shutdown_timeout(std::time::Duration::from_millis(500));
        result?;
        return Ok(EXIT_OK);
    }
    if let Command::Serve { listen, web } = command {
        runtime.block_on(chorus_sync::web::serve(config, listen, web))?;
        return Ok(EXIT_OK);
    }
    runtime.block_on(async move {
        let store = Store::connect(&config.store.url).await?;
        let engine = Engine { config, store, clock };
        // Connection errors name the store already; later ones say which store too.
        let code = execute(&engine, command).await.map_err(|e| {
            let is_store = matches!(e.downcast_ref::<EngineError>(), Some(EngineError::Store(_)))
                || e.downcast_ref::<chorus_sync::store::StoreError>().is_some();
            if is_store {
                e.context(format!("store {}", chorus_sync::secret::mask_url(engine.config.store.url.expose())))
            } else {
                e
            }
        });
        engine.store.close().await;
        code
    })
}

async fn execute(engine: &Engine, command: Command) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::CheckConfig | Command::Daemon { .. } | Command::Serve { .. } => {
            unreachable!("handled before the store opens")
        }
        Command::SetPassword(email) => set_password(engine, &email, &mut out).await,
        Command::ImportCurrent(file) => {
            let summary = engine.import_current(&file).await?;
            output::import_summary(&mut out, &file, &summary, &engine.config)?;
            Ok(if summary.errors.is_empty() { EXIT_OK } else { EXIT_REJECTED })
        }
        Command::Run { sources, out: dir, dry_run, force, who } => {
            let forced_by = match who.as_deref().map(Email::parse).transpose() {
                Ok(w) => w,
                Err(e) => return usage(format!("--as: {e}")),
            };
            let progress = std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::WARN);
            let opts = RunOptions { sources, out: dir, dry_run, force, forced_by, progress };
            let summary = match engine.run(&opts).await {
                Ok(s) => s,
                Err(EngineError::UnknownSource(n)) => {
                    return usage(format!("no source named {n:?} in the configuration"));
                }
                Err(e) => return Err(e.into()),
            };
            output::run_summary(&mut out, &summary, &engine.config)?;
            Ok(match summary.outcome {
                RunOutcome::Done => EXIT_OK,
                RunOutcome::Held => EXIT_HELD,
                RunOutcome::Rejected => EXIT_REJECTED,
            })
        }
        Command::Approvals(cmd) => approvals(engine, cmd, &mut out).await,
        Command::Runs(cmd) => runs(engine, cmd, &mut out).await,
    }
}

fn structure_arg(engine: &Engine, raw: &str) -> Result<StructureId, String> {
    engine
        .config
        .catalog
        .lookup(raw)
        .map(|s| s.id.clone())
        .or_else(|e| StructureId::parse(IdentifierType::Autre, raw).map_err(|_| e.to_string()))
}

async fn approvals(engine: &Engine, cmd: ApprovalsCommand, out: &mut impl Write) -> anyhow::Result<u8> {
    match cmd {
        ApprovalsCommand::List { state, structure, manager, kind, format } => {
            let mut filter = RequestFilter::default();
            for s in &state {
                match RequestState::parse(s) {
                    Some(st) => filter.states.push(st),
                    None => {
                        return usage(format!(
                            "--state {s:?}: expected one of held, pending, approved, refused, superseded, expired, applied"
                        ));
                    }
                }
            }
            for k in &kind {
                match ChangeKind::parse(k) {
                    Some(kd) => filter.kinds.push(kd),
                    None => return usage(format!("--kind {k:?}: expected one of attach, detach, move, rights")),
                }
            }
            for s in &structure {
                match structure_arg(engine, s) {
                    Ok(id) => filter.structures.push(id),
                    Err(e) => return usage(format!("--structure {s:?}: {e}")),
                }
            }
            if let Some(m) = &manager {
                let who = match Email::parse(m) {
                    Ok(e) => e,
                    Err(e) => return usage(format!("--manager {m:?}: {e}")),
                };
                // A manager's queue: the structures they may decide for.
                let theirs = engine.config.catalog.decidable_by(&who);
                if theirs.is_empty() {
                    return usage(format!("{who} is not the main manager or a delegate of any configured structure"));
                }
                if filter.structures.is_empty() {
                    filter.structures = theirs;
                } else {
                    filter.structures.retain(|s| theirs.contains(s));
                }
            }
            let requests = engine.store.list_requests(&filter).await?;
            let (delimiter, tz) = (engine.config.reports.csv_delimiter, engine.config.timezone);
            output::approvals_list(out, &requests, format, delimiter, tz)?;
            Ok(EXIT_OK)
        }
        ApprovalsCommand::Show { id, format } => {
            let Some(req) = engine.store.get_request(id).await? else {
                eprintln!("error: no approval request #{id}");
                return Ok(EXIT_USAGE);
            };
            let history = engine.store.history(id).await?;
            output::approval_show(out, &req, &history, format)?;
            Ok(EXIT_OK)
        }
        ApprovalsCommand::Approve { select, who, comment } => {
            let who = match Email::parse(&who) {
                Ok(w) => w,
                Err(e) => return usage(format!("--as: {e}")),
            };
            let ids = match selected(engine, &select, &who, false).await? {
                Ok(ids) => ids,
                Err(e) => return usage(e),
            };
            decide(engine, out, Decision { ids, who, transition: Transition::Approve, comment }).await
        }
        ApprovalsCommand::Refuse { select, who, motive } => {
            let who = match Email::parse(&who) {
                Ok(w) => w,
                Err(e) => return usage(format!("--as: {e}")),
            };
            let motive = match Motive::parse(motive.as_deref().unwrap_or("")) {
                Ok(m) => m,
                Err(e) => return usage(e),
            };
            let ids = match selected(engine, &select, &who, false).await? {
                Ok(ids) => ids,
                Err(e) => return usage(e),
            };
            decide(engine, out, Decision { ids, who, transition: Transition::Refuse(motive), comment: None }).await
        }
        ApprovalsCommand::Release { select, who, comment } => {
            let who = match Email::parse(&who) {
                Ok(w) => w,
                Err(e) => return usage(format!("--as: {e}")),
            };
            if select.all_pending {
                return usage("release takes held requests: give their ids or --held");
            }
            let ids = match selected(engine, &select, &who, true).await? {
                Ok(ids) => ids,
                Err(e) => return usage(e),
            };
            decide(engine, out, Decision { ids, who, transition: Transition::Release, comment }).await
        }
        ApprovalsCommand::Export { out: file } => {
            let ext = file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("csv" | "xlsx")) {
                return usage(format!("--out {}: the file name must end in .csv or .xlsx", file.display()));
            }
            let filter = RequestFilter { states: vec![RequestState::Approved], ..Default::default() };
            let requests = engine.store.list_requests(&filter).await?;
            output::export_actions(&file, &requests, engine.config.reports.csv_delimiter)?;
            writeln!(out, "{} approved change(s) to apply written to {}", requests.len(), file.display())?;
            Ok(EXIT_OK)
        }
        ApprovalsCommand::Housekeeping => {
            let summary = engine.housekeeping().await?;
            output::housekeeping(out, &summary)?;
            Ok(EXIT_OK)
        }
    }
}

/// The ids a decision is about; `Err` is a usage problem. A release is not a
/// decision: its `--held` selection spans every structure.
async fn selected(
    engine: &Engine,
    select: &Selection,
    who: &Email,
    release: bool,
) -> anyhow::Result<Result<Vec<i64>, String>> {
    if !select.all_pending && !select.held {
        if !select.structure.is_empty() || !select.kind.is_empty() {
            return Ok(Err("--structure and --kind narrow --all-pending or --held, not ids".to_string()));
        }
        return Ok(Ok(select.ids.clone()));
    }
    let state = if select.held { RequestState::Held } else { RequestState::Pending };
    let mut filter = RequestFilter { states: vec![state], ..Default::default() };
    for k in &select.kind {
        match ChangeKind::parse(k) {
            Some(kind) => filter.kinds.push(kind),
            None => return Ok(Err(format!("--kind {k:?}: expected one of attach, detach, move, rights"))),
        }
    }
    let theirs = engine.config.catalog.decidable_by(who);
    for s in &select.structure {
        match structure_arg(engine, s) {
            Ok(id) if release || theirs.contains(&id) => filter.structures.push(id),
            Ok(id) => return Ok(Err(format!("{who} may not decide for structure {id}"))),
            Err(e) => return Ok(Err(format!("--structure {s:?}: {e}"))),
        }
    }
    if filter.structures.is_empty() && !release {
        if theirs.is_empty() {
            return Ok(Err(format!("{who} is not the main manager or a delegate of any configured structure")));
        }
        filter.structures = theirs;
    }
    let ids: Vec<i64> = engine.store.list_requests(&filter).await?.iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(Err(format!("no {state} request matches")));
    }
    Ok(Ok(ids))
}

async fn decide(engine: &Engine, out: &mut impl Write, d: Decision) -> anyhow::Result<u8> {
    let (outcomes, ok) = engine.decide(&d).await?;
    output::decisions(out, &outcomes, ok)?;
    Ok(if ok { EXIT_OK } else { EXIT_USAGE })
}

/// `users set-password EMAIL`: the password comes from stdin, never from
/// an argument (it would show in `ps` and the shell history).
async fn set_password(engine: &Engine, email: &str, out: &mut impl Write) -> anyhow::Result<u8> {
    use chorus_sync::web::accounts::{AccountError, set_password};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {email}: "))?;
        if rpassword::prompt_password("Again: ")? != first {
            return usage("the two passwords differ: nothing changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    match set_password(&engine.config, &engine.store, email, &password, engine.clock.now).await {
        Ok(who) => {
            writeln!(out, "password set for {who}")?;
            Ok(EXIT_OK)
        }
        Err(e @ (AccountError::Email(_) | AccountError::NotAManager(_) | AccountError::TooShort)) => usage(e),
        Err(e) => Err(e.into()),
    }
}

async fn runs(engine: &Engine, cmd: RunsCommand, out: &mut impl Write) -> anyhow::Result<u8> {
    match cmd {
        RunsCommand::List { format } => {
            let runs = engine.store.list_runs(None).await?;
            output::runs_list(out, &runs, format, engine.config.timezone)?;
            Ok(EXIT_OK)
        }
        RunsCommand::Show { id, format } => {
            let Some((run, sources)) = engine.store.get_run(id).await? else {
                eprintln!("error: no run #{id}");
                return Ok(EXIT_USAGE);
            };
            output::run_show(out, &run, &sources, format)?;
            Ok(EXIT_OK)
        }
    }
}
