//! Configuration: raw TOML and environment overrides turned, once and at the
//! edge, into a validated `Config` that the rest of the program trusts.
//!
//! The types in this file are the validated configuration. Loading and
//! validation live in `load.rs`; printing for `check-config` in `render.rs`.

mod load;
mod raw;
mod render;

pub use load::{ConfigErrors, ENV_PREFIX, Problem, load, load_from};
pub use render::render;

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
};

use crate::{
    core::{catalog::Catalog, record::ColumnMap},
    domain::StructureId,
    secret::Secret,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (`None` when built in code, e.g. in tests).
    pub file: Option<PathBuf>,
    /// For dates in sources, schedules and reports (`timezone`).
    pub timezone: chrono_tz::Tz,
    pub store: StoreConfig,
    pub reports: ReportsConfig,
    /// The `[[structures]]`: the only possible targets of any change.
    pub catalog: Catalog,
    pub sources: Vec<SourceConfig>,
    pub current: CurrentConfig,
    pub guards: GuardsConfig,
    pub approvals: ApprovalsConfig,
    pub limits: LimitsConfig,
    /// `[notifications]`: e-mail digests and reminders; `None` when the section is absent.
    pub notifications: Option<NotificationsConfig>,
    /// `[web]`: the console's settings.
    pub web: WebConfig,
}

/// `[web]`: the console's settings beyond its command-line flags.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// `[web.oidc]`: sign-in through an OpenID Connect provider; `None`
    /// when the table is absent (passwords only).
    pub oidc: Option<OidcConfig>,
}

/// Where the provider sends the browser back: `redirect_url` ends with it.
pub const OIDC_CALLBACK_PATH: &str = "/auth/oidc/callback";

/// The scopes asked when `scopes` is left out.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// An OpenID Connect provider (`[web.oidc]`). Its client secret is read
/// from the environment at load time and never shown.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer exactly as the provider writes it in its tokens;
    /// discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The variable the secret came from, for `check-config`.
    pub client_secret_env: String,
    pub client_secret: Secret<String>,
    /// The console's public URL + `/auth/oidc/callback`, as registered at the provider.
    pub redirect_url: String,
    /// Always includes `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim holding the e-mail address (`email`).
    pub email_claim: String,
    /// Refuse unless the token says `email_verified: true`.
    pub require_verified_email: bool,
    /// PEM file of CA(s) to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Shown on the sign-in button: "Se connecter avec <button_label>".
    pub button_label: String,
}

/// Bounds on a source file (`[limits]`): a file beyond one is rejected
/// before it can exhaust memory or time. Defaults fit a 1,000,000-row export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Size of the file on disk.
    pub max_file_bytes: u64,
    /// Non-blank data rows.
    pub max_rows: u64,
    /// Characters in one cell (Excel's own limit is 32,767).
    pub max_cell_chars: u64,
    /// Sheets in a workbook.
    pub max_sheets: u64,
    /// Zip workbooks: declared uncompressed bytes of the parts a reader inflates.
    pub max_inflated_bytes: u64,
    /// Zip workbooks: those bytes over their compressed size (checked above 16 MiB).
    pub max_zip_ratio: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_file_bytes: 1 << 30,
            max_rows: 5_000_000,
            max_cell_chars: 32_767,
            max_sheets: 255,
            max_inflated_bytes: 4 << 30,
            max_zip_ratio: 200,
        }
    }
}

/// The life of approval requests (`[approvals]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// Pending longer than this many days → `expired` at the next run, which
    /// raises the change again if it is still needed. `None`: never.
    pub expire_after_days: Option<u32>,
    /// Approved changes still not applied in the portal this many days after
    /// the decision are reported by `import-current`. `None`: never.
    pub apply_within_days: Option<u32>,
    /// When the daemon's housekeeping job (expiry across all structures,
    /// reminders) runs: cron with seconds, in `timezone`; validated.
    pub housekeeping_schedule: String,
}

/// The default `housekeeping_schedule`: every day at 07:00.
pub const DEFAULT_HOUSEKEEPING_SCHEDULE: &str = "0 0 7 * * *";

impl Default for ApprovalsConfig {
    fn default() -> ApprovalsConfig {
        ApprovalsConfig {
            expire_after_days: None,
            apply_within_days: None,
            housekeeping_schedule: DEFAULT_HOUSEKEEPING_SCHEDULE.to_string(),
        }
    }
}

/// How the SMTP connection is secured (`[notifications] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, never optional).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Clear text: only for a relay on the same host or a test server.
    None,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// SMTP credentials, read from the environment at load time.
#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    /// The variables they came from, for `check-config`.
    pub username_env: String,
    pub password_env: String,
    pub username: String,
    pub password: Secret<String>,
}

/// E-mail digests after runs and reminders (`[notifications]`).
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// PEM file of the CA(s) to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// `None`: no authentication.
    pub credentials: Option<SmtpCredentials>,
    /// The sender mailbox (`chorus-sync <noreply@acme.fr>`), already checked to parse.
    pub from: String,
    /// The web console, linked from the mails.
    pub console_url: Option<String>,
    /// A manager with requests pending longer gets a reminder (at most one a
    /// day); `None`: never.
    pub remind_after_days: Option<u32>,
    /// Connection and command timeout.
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://…` or `postgres://…`; may carry a password, hence `Secret`.
    pub url: Secret<String>,
}

#[derive(Debug, Clone)]
pub struct ReportsConfig {
    pub dir: PathBuf,
    pub csv_delimiter: u8,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// Cron with seconds, evaluated in `timezone`; validated.
    pub schedule: Option<String>,
    /// Applies to rows without a structure value (or without the column).
    pub default_structure: Option<StructureId>,
    /// The structures this source governs: it may attach people only there,
    /// and people of these structures absent from it are candidates for
    /// detach. Each configured structure belongs to at most one source.
    pub scope: BTreeSet<StructureId>,
    pub columns: ColumnMap,
    pub values: ValueMaps,
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    Spreadsheet(SpreadsheetSource),
    /// A directory (LDAP, Active Directory); `SourceConfig::columns` then maps
    /// fields to attribute names (`[sources.attributes]`).
    Ldap(LdapSource),
}

#[derive(Debug, Clone)]
pub struct LdapSource {
    /// `ldap://host[:port]` or `ldaps://host[:port]`, without credentials.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub start_tls: bool,
    /// Simple bind as this DN; anonymous when `None`.
    pub bind_dn: Option<String>,
    /// Resolved at load time from `password_env`, `password_file` or `password`.
    pub password: Option<Secret<String>>,
    /// Where the password came from, for `check-config` (never the value).
    pub password_from: Option<PasswordFrom>,
    /// PEM file of the CA(s) to trust; the system roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Skips certificate verification (loudly warned about).
    pub tls_insecure: bool,
    pub base_dn: String,
    pub filter: String,
    /// RFC 2696 page size.
    pub page_size: u32,
    /// Connection and per-operation timeout.
    pub timeout: std::time::Duration,
    /// Group rules follow nested groups (AD matching rule 1.2.840.113556.1.4.1941).
    pub nested_groups: bool,
    /// `[[sources.groups]]`: membership gives the service and rights.
    pub groups: Vec<GroupRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordFrom {
    Env(String),
    File(PathBuf),
    /// Written in the configuration (accepted with a warning).
    Inline,
}

/// Members of the group `dn` get `service` and `rights` (each optional: the
/// attribute, if any, fills what the rule leaves out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRule {
    pub dn: String,
    pub service: Option<String>,
    /// Already checked to parse as rights.
    pub rights: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SpreadsheetSource {
    /// Relative paths are relative to the working directory.
    pub path: PathBuf,
    /// Sheet name; the first sheet when `None`. Ignored for csv.
    pub sheet: Option<String>,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// Detected among `;` `,` tab `|` when `None`.
    pub delimiter: Option<u8>,
    /// Detected (BOM, else UTF-8 if valid, else Windows-1252) when `None`.
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// Optional translations of cell values (`[sources.values]`).
#[derive(Debug, Clone, Default)]
pub struct ValueMaps {
    /// Folded profile label (see `domain::text::fold`) → rights text
    /// (`app:mode,…`, already checked to parse).
    pub rights: HashMap<String, String>,
    /// Folded statuses meaning the person has left.
    pub inactive_status: BTreeSet<String>,
}

/// How `import-current` reads a portal export of current attachments.
#[derive(Debug, Clone)]
pub struct CurrentConfig {
    pub columns: ColumnMap,
    pub sheet: Option<String>,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GuardsConfig {
    /// Per run, absolute; `None` = no limit.
    pub max_detach: Option<u64>,
    /// Per structure, percent of its current attachments.
    pub max_detach_percent: Option<f64>,
    /// The same limits for the other kinds of change; none by default.
    pub max_attach: Option<u64>,
    pub max_attach_percent: Option<f64>,
    pub max_move: Option<u64>,
    pub max_move_percent: Option<f64>,
    pub max_rights: Option<u64>,
    pub max_rights_percent: Option<f64>,
    /// Source rows vs the last accepted run of that source.
    pub min_rows_ratio: Option<f64>,
    /// A mapped column's share of filled rows vs the last accepted run's, for
    /// columns that were mostly filled then (see `core::guards`).
    pub min_fill_ratio: Option<f64>,
    /// Complete runs a person may be missing before a detach is proposed.
    pub grace_runs: u32,
}

impl GuardsConfig {
    /// The per-run and per-structure limits for one kind of change.
    pub fn limits(&self, kind: crate::core::change::ChangeKind) -> (Option<u64>, Option<f64>) {
        use crate::core::change::ChangeKind::*;
        match kind {
            Attach => (self.max_attach, self.max_attach_percent),
            Detach => (self.max_detach, self.max_detach_percent),
            Move => (self.max_move, self.max_move_percent),
            Rights => (self.max_rights, self.max_rights_percent),
        }
    }
}

impl Default for GuardsConfig {
    fn default() -> GuardsConfig {
        GuardsConfig {
            max_detach: Some(50),
            max_detach_percent: Some(10.0),
            max_attach: None,
            max_attach_percent: None,
            max_move: None,
            max_move_percent: None,
            max_rights: None,
            max_rights_percent: None,
            min_rows_ratio: Some(0.8),
            min_fill_ratio: Some(0.5),
            grace_runs: 2,
        }
    }
}
