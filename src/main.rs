//! The command line (DESIGN.md §4): arguments parsed once, configuration
//! validated once, then one engine call and its output. Exit codes are a
//! contract: 0 done, 1 internal or store error, 2 usage or configuration,
//! 3 source rejected, 4 held by a guard.

mod cli;

/// mimalloc instead of glibc's malloc: a quarter of a plan's CPU went to
/// glibc's slow paths, and it returns an idle daemon's memory (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's option enum (the -sys crate names
/// only the options before it; `tests::purge_delay_option` checks it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc 3 keeps freed memory resident for a second before giving it back
/// (`purge_delay`, 1,000 ms). A plan's phases free tens of megabytes each (the
/// sorts' key arrays, the current state) a fraction of a second before the
/// next allocates: held, they were ~30 MB of a million-row plan's peak
/// (276 MB against 244 MB at 0 ms, 258 MB at 10 ms, same wall time;
/// BENCHMARKS.md, session 7). Purged at once unless `MIMALLOC_PURGE_DELAY`
/// says otherwise.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's option integers: no pointer crosses,
        // and mimalloc reads its options atomically from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
}

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "chorus-sync",
    version,
    about = "Keeps Chorus Pro attachments in line with HR exports and the directory"
)]
struct Cli {
    /// Configuration file [default: $CHORUS_SYNC_CONFIG, else chorus-sync.toml]
    #[arg(long, global = true, env = "CHORUS_SYNC_CONFIG", default_value = "chorus-sync.toml")]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logging (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Errors only.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the configuration; print it resolved, secrets masked.
    CheckConfig,
    /// Load a portal export of current attachments into the store.
    ImportCurrent { file: PathBuf },
    /// Dry run: write the reports of what would change; the store is not changed.
    Plan(PlanArgs),
    /// Plan, apply the guards, raise approval requests, write the reports.
    Run {
        #[command(flatten)]
        plan: PlanArgs,
        /// Accept a plan that a guard would hold.
        #[arg(long)]
        force: bool,
        /// Who accepts the held plan (recorded in the run).
        #[arg(long = "as", value_name = "EMAIL", requires = "force")]
        who: Option<String>,
    },
    /// Approval requests: list, show, approve, refuse, export.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Runs: list, show.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Run each source on its schedule until SIGINT/SIGTERM; SIGHUP reloads the configuration.
    Daemon {
        /// Serve the web console, /healthz and /metrics on this address
        /// (IP:PORT; port 0 picks one, logged).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Serve the approvals web console (and /healthz, /metrics) until SIGINT/SIGTERM.
    Serve {
        /// Address and port to listen on (IP:PORT; port 0: any free port, printed on start).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Web console accounts.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// How the web console serves its cookies (`serve`, `daemon --listen`).
#[derive(Args, Debug, Clone, Copy)]
pub struct WebArgs {
    /// Cookies without `Secure`, for plain http on localhost only (behind
    /// an https proxy, leave it off).
    #[arg(long)]
    insecure_cookies: bool,
    /// Hours a sign-in to the web console lasts.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=720))]
    session_hours: u32,
}

impl From<WebArgs> for chorus_sync::web::WebOptions {
    fn from(a: WebArgs) -> Self {
        chorus_sync::web::WebOptions { secure_cookies: !a.insecure_cookies, session_hours: a.session_hours }
    }
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Set the console password of a main manager or delegate (read from
    /// stdin: typed without echo on a terminal, else the first line).
    SetPassword { email: String },
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Only these sources (repeatable) [default: all].
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,
    /// Write the reports into DIR instead of <reports.dir>/<run id>/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// List requests (all states unless --state).
    List {
        /// pending, approved, refused, superseded, expired, applied (repeatable).
        #[arg(long, value_name = "S")]
        state: Vec<String>,
        /// A structure identifier (repeatable).
        #[arg(long, value_name = "ID")]
        structure: Vec<String>,
        /// One manager's queue (main manager or delegate).
        #[arg(long, value_name = "EMAIL")]
        manager: Option<String>,
        /// attach, detach, move, rights (repeatable).
        #[arg(long, value_name = "KIND")]
        kind: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One request with its history.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// Approve requests (all or none).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all_pending", "held"])))]
    Approve {
        #[command(flatten)]
        select: Selection,
        /// Who decides: the structure's main manager or a delegate.
        #[arg(long = "as", value_name = "EMAIL", required = true)]
        who: String,
        /// A comment kept in the history.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Refuse requests with a motive (all or none).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all_pending", "held"])))]
    Refuse {
        #[command(flatten)]
        select: Selection,
        /// Who decides: the structure's main manager or a delegate.
        #[arg(long = "as", value_name = "EMAIL", required = true)]
        who: String,
        /// Why (required, not blank): the requester sees it.
        #[arg(long)]
        motive: Option<String>,
    },
    /// Release held requests (kept by a run a guard held) into the managers'
    /// queues as pending (all or none); the operator is recorded.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "held"])))]
    Release {
        /// Who releases them: any operator; a release decides nothing.
        #[arg(long = "as", value_name = "EMAIL", required = true)]
        who: String,
        /// Why, kept in each request's history.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        select: Selection,
    },
    /// Write the approved, not yet applied changes (.csv or .xlsx).
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Expire requests pending too long (every structure) and send the reminders due (for cron).
    Housekeeping,
}

/// Which requests a decision is about: ids, or every pending (or held)
/// request of the structures `--as` may decide for, narrowed by structure and kind.
#[derive(Args, Debug, Clone)]
#[group(skip)]
pub struct Selection {
    /// Request ids.
    pub ids: Vec<i64>,
    /// Every pending request the decider may decide (with --structure / --kind to narrow).
    #[arg(long, conflicts_with_all = ["ids", "held"])]
    pub all_pending: bool,
    /// Every held request (of a run a guard held) the decider may decide, or
    /// for `release` every held request (with --structure / --kind to narrow).
    #[arg(long, conflicts_with = "ids")]
    pub held: bool,
    /// With --all-pending or --held: only this structure (repeatable).
    #[arg(long, value_name = "ID")]
    pub structure: Vec<String>,
    /// With --all-pending or --held: only this kind: attach, detach, move, rights (repeatable).
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    List {
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    Show {
        id: i64,
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { cli::EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A daemon's log is its only output: info by default.
    let verbose =
        if matches!(cli.command, Command::Daemon { .. }) && !cli.quiet { cli.verbose.max(1) } else { cli.verbose };
    cli::init_logging(cli.log_format, verbose, cli.quiet);
    let code = match cli::dispatch(&cli.config, cli.command.into()) {
        Ok(code) => code,
        Err(e) => {
            // Library errors often repeat their source's text; print each cause once.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1).map(ToString::to_string) {
                if !msg.contains(&cause) {
                    msg = format!("{msg}: {cause}");
                }
            }
            eprintln!("error: {msg}");
            cli::EXIT_INTERNAL
        }
    };
    ExitCode::from(code)
}

impl From<Command> for cli::Command {
    fn from(c: Command) -> cli::Command {
        match c {
            Command::CheckConfig => cli::Command::CheckConfig,
            Command::ImportCurrent { file } => cli::Command::ImportCurrent(file),
            Command::Plan(p) => {
                cli::Command::Run { sources: p.sources, out: p.out, dry_run: true, force: false, who: None }
            }
            Command::Run { plan, force, who } => {
                cli::Command::Run { sources: plan.sources, out: plan.out, dry_run: false, force, who }
            }
            Command::Approvals(a) => cli::Command::Approvals(a),
            Command::Runs(r) => cli::Command::Runs(r),
            Command::Daemon { listen, web } => cli::Command::Daemon { listen, web: web.into() },
            Command::Serve { listen, web } => cli::Command::Serve { listen, web: web.into() },
            Command::Users(UsersCommand::SetPassword { email }) => cli::Command::SetPassword(email),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option set at start is the purge delay: mimalloc 3's default for
    /// it is 1,000 ms, and no other option defaults to that.
    #[test]
    fn purge_delay_option() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads one of mimalloc's option integers.
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) }, 1000);
        }
    }
}
