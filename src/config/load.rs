//! Reading the configuration: TOML file, then `CHORUS_SYNC__…` environment
//! overrides, then validation into `Config`. Every problem is collected and
//! reported at once, each with the path of the key it concerns.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    path::{Path, PathBuf},
};

use config::{ConfigError, Environment, File, FileFormat, Value, ValueKind};
use serde::de::DeserializeOwned;

use super::{
    ApprovalsConfig, Config, CsvOptions, CurrentConfig, DEFAULT_HOUSEKEEPING_SCHEDULE, DEFAULT_OIDC_SCOPES, GroupRule,
    GuardsConfig, LdapSource, LimitsConfig, NotificationsConfig, OIDC_CALLBACK_PATH, OidcConfig, PasswordFrom,
    ReportsConfig, SmtpCredentials, SmtpTls, SourceConfig, SourceKind, SpreadsheetSource, StoreConfig, ValueMaps,
    WebConfig,
    raw::{
        self, Limit, RawApprovals, RawCurrent, RawGroup, RawGuards, RawLimits, RawNotifications, RawOidc, RawReports,
        RawSource, RawStore, RawStructure, RawValues, RawWeb,
    },
};
use crate::{
    core::{
        catalog::{Catalog, StructureInfo},
        record::{ColumnMap, Field},
    },
    domain::{Email, IdentifierType, Rights, ServiceCode, StructureId, text::fold},
    secret::{Secret, mask_url},
};

/// Environment variables starting with this (any case) override keys.
pub const ENV_PREFIX: &str = "CHORUS_SYNC__";
const DEFAULT_TIMEZONE: &str = "Europe/Paris";
const DEFAULT_STORE_URL: &str = "sqlite://chorus-sync.db";
const DEFAULT_REPORTS_DIR: &str = "reports";
/// File extensions a spreadsheet source may have (see DESIGN §5).
const SPREADSHEET_EXTENSIONS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods", "csv"];
/// How `import-current` reads a portal export unless `[current.columns]` says otherwise.
pub const CURRENT_COLUMN_DEFAULTS: &[(Field, &str)] = &[
    (Field::Email, "Adresse électronique"),
    (Field::LastName, "Nom"),
    (Field::FirstName, "Prénom"),
    (Field::Structure, "Identifiant structure"),
    (Field::Service, "Code service"),
    (Field::Rights, "Profil"),
];

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `structures[1].main_manager`, an environment variable name, or
    /// empty for the file as a whole.
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into() }
    }
}

/// Everything wrong with a configuration, one line per problem.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: Option<PathBuf>,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if let Some(file) = &self.file {
                write!(f, "{}: ", file.display())?;
            }
            if !p.path.is_empty() {
                write!(f, "{}: ", p.path)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads `path` and the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: Some(path.to_path_buf()),
        problems: vec![Problem::new("", format!("cannot read the configuration file: {e}"))],
    })?;
    let mut env = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Ok(key) = key.into_string() else { continue };
        // Other variables are kept for `password_env`; only overrides must be readable.
        match value.into_string() {
            Ok(value) => env.push((key, value)),
            Err(_) if is_override(&key) => problems.push(Problem::new(key, "the value is not valid Unicode")),
            Err(_) => {}
        }
    }
    load_inner(&text, Some(path), &env, problems)
}

/// Loads from `text` as if read from `file`, with `env` as the environment
/// (pairs not starting with `CHORUS_SYNC__` override nothing; `password_env`
/// looks them up).
pub fn load_from(text: &str, file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    load_inner(text, file, env, Vec::new())
}

fn is_override(key: &str) -> bool {
    // `get` rather than slicing: a non-ASCII name must not panic.
    key.len() > ENV_PREFIX.len() && key.get(..ENV_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

fn load_inner(
    text: &str,
    file: Option<&Path>,
    env: &[(String, String)],
    problems: Vec<Problem>,
) -> Result<Config, ConfigErrors> {
    let mut v = Validator { problems, env };
    let config = v.parse(text, env).map(|(top, env_paths)| {
        let config = v.validate(top, file);
        v.annotate(&env_paths);
        config
    });
    match config {
        Some(config) if v.problems.is_empty() => Ok(config),
        _ => Err(ConfigErrors { file: file.map(Path::to_path_buf), problems: v.problems }),
    }
}

/// Parsed values of the top-level keys, each taken once by validation.
type Top = BTreeMap<String, Value>;

/// Entries of an array of tables; `broken` when some could not be read, so
/// that "none configured" is not reported on top of the real problem.
struct Entries<T> {
    items: Vec<(usize, T)>,
    broken: bool,
}

struct Validator<'e> {
    problems: Vec<Problem>,
    /// The environment, for `password_env`.
    env: &'e [(String, String)],
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// File plus environment, merged by the `config` crate. Also returns which
    /// environment variable set which key path, to name it in problems.
    fn parse(&mut self, text: &str, env: &[(String, String)]) -> Option<(Top, Vec<(String, String)>)> {
        let file_only = config::Config::builder().add_source(File::from_str(text, FileFormat::Toml)).build();
        let file_top: Top = match file_only.and_then(config::Config::try_deserialize) {
            Ok(top) => top,
            Err(e) => {
                self.problems.push(syntax_problem(text, e));
                return None;
            }
        };
        let array_len = |key: &str| match file_top.get(key).map(|v| &v.kind) {
            Some(ValueKind::Array(a)) => a.len(),
            _ => 0,
        };
        let mut overrides = config::Map::new();
        let mut env_paths = Vec::new();
        for (name, value) in env.iter().filter(|(k, _)| is_override(k)) {
            let rest = name[ENV_PREFIX.len()..].to_lowercase();
            let segments: Vec<&str> = rest.split("__").collect();
            if segments.iter().any(|s| s.is_empty() || s.contains(['.', '[', ']'])) {
                self.problem(name, "not a key path: segments are separated by a double underscore");
                continue;
            }
            // The `config` crate would replace a whole array by a table for
            // `SOURCES__0__PATH`; rewritten as `sources[0].path` it sets the
            // key of the existing entry instead.
            let (key, path) = match segments[0] {
                array @ ("sources" | "structures") => {
                    let len = array_len(array);
                    match segments.get(1).and_then(|s| s.parse::<usize>().ok()) {
                        Some(i) if i < len && segments.len() > 2 => {
                            let tail = segments[2..].join("__");
                            (format!("{array}[{i}]__{tail}"), format!("{array}[{i}].{}", segments[2..].join(".")))
                        }
                        Some(i) if i >= len => {
                            self.problem(
                                name,
                                format!(
                                    "there is no {array}[{i}] in the file; the environment can only override \
                                     keys of existing entries"
                                ),
                            );
                            continue;
                        }
                        _ => {
                            self.problem(
                                name,
                                format!(
                                    "[[{array}]] entries are addressed by index and key, \
                                     e.g. {ENV_PREFIX}{}__0__NAME",
                                    array.to_uppercase()
                                ),
                            );
                            continue;
                        }
                    }
                }
                _ => (segments.join("__"), segments.join(".")),
            };
            overrides.insert(format!("{ENV_PREFIX}{key}"), value.clone());
            env_paths.push((path, name.clone()));
        }
        // No `try_parsing`: it would turn "01234" into 1234 and lose the
        // zero of an identifier or code. Numbers and booleans are read from
        // strings where the key expects them.
        let env_source = Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("__")
            .separator("__")
            .source(Some(overrides));
        let merged = config::Config::builder()
            .add_source(File::from_str(text, FileFormat::Toml))
            .add_source(env_source)
            .build()
            .and_then(config::Config::try_deserialize);
        match merged {
            Ok(top) => Some((top, env_paths)),
            Err(e) => {
                self.problem("", e.to_string());
                None
            }
        }
    }

    /// Names the environment variable behind a problem's key, so people do
    /// not search the file for a value that is not there.
    fn annotate(&mut self, env_paths: &[(String, String)]) {
        for p in &mut self.problems {
            if let Some((_, name)) = env_paths.iter().find(|(path, _)| *path == p.path) {
                p.message.push_str(&format!(" (set by {name})"));
            }
        }
    }

    fn validate(&mut self, mut top: Top, file: Option<&Path>) -> Config {
        let unknown: Vec<String> = top.keys().filter(|k| !raw::TOP_KEYS.contains(&k.as_str())).cloned().collect();
        for key in unknown {
            self.unknown_key(key_path("", &key), &key, raw::TOP_KEYS);
        }
        let timezone = self.scalar::<String>(top.remove("timezone"), "timezone");
        let store = self.table::<RawStore>(top.remove("store"), "store").unwrap_or_default();
        let reports = self.table::<RawReports>(top.remove("reports"), "reports").unwrap_or_default();
        let structures = self.array::<RawStructure>(top.remove("structures"), "structures");
        let sources = self.array::<RawSource>(top.remove("sources"), "sources");
        let current = self.table::<RawCurrent>(top.remove("current"), "current").unwrap_or_default();
        let guards = self.table::<RawGuards>(top.remove("guards"), "guards").unwrap_or_default();
        let approvals = self.table::<RawApprovals>(top.remove("approvals"), "approvals").unwrap_or_default();
        let limits = self.table::<RawLimits>(top.remove("limits"), "limits").unwrap_or_default();
        let notifications = top.remove("notifications");
        let notifications = notifications.and_then(|v| self.table::<RawNotifications>(Some(v), "notifications"));
        let web = self.table::<RawWeb>(top.remove("web"), "web").unwrap_or_default();

        let timezone = self.timezone(timezone);
        let store = self.store(store);
        let reports = self.reports(reports);
        let catalog = self.structures(structures);
        let sources = self.sources(sources, &catalog);
        let current = self.current(current);
        let guards = self.guards(guards);
        let approvals = self.approvals(approvals);
        let limits = self.limits(limits);
        let notifications = notifications.and_then(|n| self.notifications(n));
        let web = WebConfig { oidc: web.oidc.and_then(|o| self.oidc(o)) };
        let file = file.map(Path::to_path_buf);
        Config {
            file,
            timezone,
            store,
            reports,
            catalog,
            sources,
            current,
            guards,
            approvals,
            limits,
            notifications,
            web,
        }
    }

    // ---- reading raw values -------------------------------------------------

    fn scalar<T: DeserializeOwned>(&mut self, value: Option<Value>, path: &str) -> Option<T> {
        self.deserialize(value?, path, path)
    }

    fn table<T: DeserializeOwned>(&mut self, value: Option<Value>, path: &str) -> Option<T> {
        let value = value?;
        if !matches!(value.kind, ValueKind::Table(_)) {
            self.problem(path, format!("expected a table, found {}", kind_name(&value.kind)));
            return None;
        }
        self.deserialize(value, path, path)
    }

    fn array<T: DeserializeOwned>(&mut self, value: Option<Value>, path: &str) -> Entries<T> {
        let mut entries = Entries { items: Vec::new(), broken: false };
        let Some(value) = value else { return entries };
        let ValueKind::Array(items) = value.kind else {
            self.problem(path, format!("expected an array of tables ([[{path}]]), found {}", kind_name(&value.kind)));
            entries.broken = true;
            return entries;
        };
        for (i, item) in items.into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if !matches!(item.kind, ValueKind::Table(_)) {
                self.problem(&item_path, format!("expected a table, found {}", kind_name(&item.kind)));
                entries.broken = true;
                continue;
            }
            match self.deserialize(item, &item_path, path) {
                Some(t) => entries.items.push((i, t)),
                None => entries.broken = true,
            }
        }
        entries
    }

    /// Deserializes one value, reporting every unknown key in it (with a
    /// suggestion) and the first type error. `level` is `path` without
    /// indices, to find the valid keys.
    fn deserialize<T: DeserializeOwned>(&mut self, value: Value, path: &str, level: &str) -> Option<T> {
        let mut ignored: Vec<(String, String, String)> = Vec::new();
        let result: Result<T, ConfigError> = serde_ignored::deserialize(value, |p| {
            let mut segments = Vec::new();
            segments_of(&p, &mut segments);
            let mut full = path.to_string();
            let mut parent_level = level.to_string();
            for (n, seg) in segments.iter().enumerate() {
                match seg {
                    Segment::Index(i) => full.push_str(&format!("[{i}]")),
                    Segment::Key(k) => {
                        full = key_path(&full, k);
                        if n + 1 < segments.len() {
                            parent_level =
                                if parent_level.is_empty() { k.clone() } else { format!("{parent_level}.{k}") };
                        }
                    }
                }
            }
            let key = match segments.last() {
                Some(Segment::Key(k)) => k.clone(),
                _ => String::new(),
            };
            ignored.push((full, key, parent_level));
        });
        // Tables are maps without order: sort so the report is stable.
        ignored.sort();
        for (full, key, parent_level) in ignored {
            let valid = raw::keys_at(&parent_level).unwrap_or(&[]);
            self.unknown_key(full, &key, valid);
        }
        match result {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems.push(type_problem(path, e));
                None
            }
        }
    }

    fn unknown_key(&mut self, path: String, key: &str, valid: &[&str]) {
        let message = match suggest(key, valid) {
            Some(s) => format!("unknown key (did you mean {s:?}?)"),
            None if valid.is_empty() => "unknown key".to_string(),
            None => format!("unknown key (expected one of: {})", valid.join(", ")),
        };
        self.problem(path, message);
    }

    // ---- sections -----------------------------------------------------------

    fn timezone(&mut self, raw: Option<String>) -> chrono_tz::Tz {
        let default = chrono_tz::Europe::Paris;
        let Some(raw) = raw else { return default };
        raw.trim().parse().unwrap_or_else(|_| {
            self.problem(
                "timezone",
                format!("unknown time zone {raw:?} (expected an IANA name such as {DEFAULT_TIMEZONE:?} or \"UTC\")"),
            );
            default
        })
    }

    fn store(&mut self, raw: RawStore) -> StoreConfig {
        let url = raw.url.map(|u| u.trim().to_string()).unwrap_or_else(|| DEFAULT_STORE_URL.to_string());
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        if !url.contains(':') || !matches!(scheme.as_str(), "sqlite" | "postgres" | "postgresql") {
            // The URL may hold a password: only its masked form is shown.
            self.problem(
                "store.url",
                format!("must start with sqlite:, postgres: or postgresql: (got {:?})", mask_url(&url)),
            );
        }
        StoreConfig { url: Secret::new(url) }
    }

    fn reports(&mut self, raw: RawReports) -> ReportsConfig {
        let dir = raw.dir.unwrap_or_else(|| DEFAULT_REPORTS_DIR.to_string());
        if dir.trim().is_empty() {
            self.problem("reports.dir", "must not be empty");
        }
        let csv_delimiter = match raw.csv_delimiter {
            None => b';',
            Some(d) => self.delimiter("reports.csv_delimiter", &d).unwrap_or(b';'),
        };
        ReportsConfig { dir: PathBuf::from(dir), csv_delimiter }
    }

    fn structures(&mut self, entries: Entries<RawStructure>) -> Catalog {
        if entries.items.is_empty() && !entries.broken {
            self.problem(
                "structures",
                "at least one [[structures]] is required: only configured structures are ever targets",
            );
        }
        let mut infos = Vec::new();
        let mut seen: HashMap<StructureId, usize> = HashMap::new();
        for (i, raw) in entries.items {
            let p = format!("structures[{i}]");
            let identifier_type = match raw.identifier_type.as_deref() {
                None => Some(IdentifierType::Siret),
                Some(t) => t.parse().map_err(|e| self.problem(format!("{p}.identifier_type"), e)).ok(),
            };
            let id = match (&raw.identifier, identifier_type) {
                (None, _) => {
                    self.problem(format!("{p}.identifier"), "missing (the structure's SIRET or other identifier)");
                    None
                }
                (Some(_), None) => None,
                (Some(raw_id), Some(t)) => {
                    StructureId::parse(t, raw_id).map_err(|e| self.problem(format!("{p}.identifier"), e)).ok()
                }
            };
            if let Some(id) = &id {
                if let Some(first) = seen.get(id) {
                    self.problem(
                        format!("{p}.identifier"),
                        format!("{id} is already configured by structures[{first}]"),
                    );
                } else {
                    seen.insert(id.clone(), i);
                }
            }
            let name = self.required_text(&p, "name", raw.name.as_deref(), "the structure's legal name");
            let main_manager = match raw.main_manager.as_deref() {
                None => {
                    self.problem(format!("{p}.main_manager"), "missing (the e-mail address of the main manager)");
                    None
                }
                Some(m) => self.email(format!("{p}.main_manager"), m),
            };
            let delegates: Vec<Option<Email>> = (raw.delegates.iter().flatten().enumerate())
                .map(|(j, d)| self.email(format!("{p}.delegates[{j}]"), d))
                .collect();
            let services = raw.services.as_ref().map(|list| self.services(&p, list));
            if let Some(kind) = &raw.kind
                && !matches!(kind.trim().to_ascii_uppercase().as_str(), "PRIVEE" | "PUBLIQUE")
            {
                self.problem(
                    format!("{p}.kind"),
                    format!("unknown structure kind {kind:?} (expected PRIVEE or PUBLIQUE)"),
                );
            }
            if let (Some(id), Some(identifier_type), Some(name), Some(main_manager)) =
                (id, identifier_type, name, main_manager)
            {
                let delegates = delegates.into_iter().flatten().collect();
                let services = services.map(|s| s.into_iter().flatten().collect());
                infos.push(StructureInfo { id, identifier_type, name, main_manager, delegates, services });
            }
        }
        Catalog::new(infos)
    }

    fn services(&mut self, p: &str, list: &[String]) -> Vec<Option<ServiceCode>> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (j, raw) in list.iter().enumerate() {
            let path = format!("{p}.services[{j}]");
            match ServiceCode::parse(raw) {
                Err(e) => {
                    self.problem(path, format!("{raw:?}: {e}"));
                    out.push(None);
                }
                Ok(code) => match seen.get(&fold(code.as_str())) {
                    // Codes are matched ignoring case, so these would be one.
                    Some(k) => self.problem(path, format!("{code} is listed twice (see services[{k}])")),
                    None => {
                        seen.insert(fold(code.as_str()), j);
                        out.push(Some(code));
                    }
                },
            }
        }
        out
    }

    fn sources(&mut self, entries: Entries<RawSource>, catalog: &Catalog) -> Vec<SourceConfig> {
        let mut out = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        // Sources whose scope is known: index, name, scope.
        let mut scopes: Vec<(usize, String, BTreeSet<StructureId>)> = Vec::new();
        for (i, raw) in entries.items {
            let p = format!("sources[{i}]");
            let name = self.required_text(&p, "name", raw.name.as_deref(), "a short name such as \"hr\"");
            if let Some(name) = &name {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    self.problem(format!("{p}.name"), format!("{name:?}: use only letters, digits, '_' and '-'"));
                } else if let Some(first) = names.get(name) {
                    self.problem(format!("{p}.name"), format!("{name:?} is already the name of sources[{first}]"));
                } else {
                    names.insert(name.clone(), i);
                }
            }
            let kind = self.source_kind(&p, &raw);
            let schedule = raw.schedule.as_deref().and_then(|s| self.schedule(&p, s));
            // Directories map fields to attributes, files to column headers: same rules.
            let (key, raw_columns, hint) = if is_ldap(&raw) {
                ("attributes", &raw.attributes, "map at least the e-mail attribute (email = \"mail\")")
            } else {
                ("columns", &raw.columns, "map at least the e-mail column (email = \"…\")")
            };
            let columns = match raw_columns {
                Some(map) => Some(self.columns(&format!("{p}.{key}"), map, &[], &[Field::Email])),
                None => {
                    self.problem(format!("{p}.{key}"), format!("missing: {hint}"));
                    None
                }
            };
            let values = self.values(&p, raw.values.as_ref(), columns.as_ref());
            let lookup = |v: &mut Validator, path: String, raw_id: &str| match catalog.lookup(raw_id) {
                Ok(info) => Some(info.id.clone()),
                Err(e) => {
                    v.problem(path, e.to_string());
                    None
                }
            };
            let default_structure =
                raw.default_structure.as_deref().and_then(|d| lookup(self, format!("{p}.default_structure"), d));
            let explicit: Option<BTreeSet<StructureId>> = raw.structures.as_ref().map(|list| {
                list.iter().enumerate().filter_map(|(j, s)| lookup(self, format!("{p}.structures[{j}]"), s)).collect()
            });
            let has_structure_column = columns.as_ref().is_some_and(|c| c.contains(Field::Structure));
            let scope = match (explicit, &default_structure) {
                (Some(scope), default) => {
                    if let Some(d) = default
                        && !scope.contains(d)
                    {
                        self.problem(
                            format!("{p}.default_structure"),
                            format!("{d} is not among this source's structures"),
                        );
                    }
                    Some(scope)
                }
                (None, _) if has_structure_column => Some(catalog.ids().cloned().collect()),
                (None, Some(d)) => Some(BTreeSet::from([d.clone()])),
                (None, None) if raw.default_structure.is_none() && columns.is_some() => {
                    self.problem(
                        &p,
                        "the source places nobody: map a structure column, or set default_structure or structures",
                    );
                    None
                }
                (None, None) => None,
            };
            if let (Some(scope), Some(name)) = (&scope, &name) {
                for (j, other, other_scope) in &scopes {
                    let shared: Vec<String> = scope.intersection(other_scope).map(|s| s.to_string()).collect();
                    if !shared.is_empty() {
                        self.problem(
                            format!("{p}.structures"),
                            format!(
                                "structure {} is governed by both sources {other:?} (sources[{j}]) and {name:?}; \
                                 each structure belongs to one source (list each source's structures = [...])",
                                shared.join(", ")
                            ),
                        );
                    }
                }
                scopes.push((i, name.clone(), scope.clone()));
            }
            if let (Some(name), Some(kind), Some(columns), Some(values), Some(scope)) =
                (name, kind, columns, values, scope)
            {
                out.push(SourceConfig { name, kind, schedule, default_structure, scope, columns, values });
            }
        }
        out
    }

    fn source_kind(&mut self, p: &str, raw: &RawSource) -> Option<SourceKind> {
        match raw.kind.as_deref().map(str::trim).unwrap_or("spreadsheet") {
            "spreadsheet" => {
                for key in raw.set_keys(raw::LDAP_ONLY_KEYS) {
                    self.problem(key_path(p, key), "only for directory sources (kind = \"ldap\")");
                }
                let csv = self.csv_options(p, raw.csv_delimiter.as_deref(), raw.encoding.as_deref());
                let sheet = self.sheet(p, raw.sheet.as_deref());
                let path = self.spreadsheet_path(p, raw.path.as_deref())?;
                Some(SourceKind::Spreadsheet(SpreadsheetSource { path, sheet, csv: csv? }))
            }
            "ldap" => {
                for key in raw.set_keys(raw::SPREADSHEET_ONLY_KEYS) {
                    let message = if key == "columns" {
                        "directory sources map fields to attributes in [sources.attributes]"
                    } else {
                        "only for spreadsheet sources"
                    };
                    self.problem(key_path(p, key), message);
                }
                self.ldap_source(p, raw).map(SourceKind::Ldap)
            }
            other => {
                self.problem(
                    format!("{p}.kind"),
                    format!("unknown source kind {other:?} (expected \"spreadsheet\" or \"ldap\")"),
                );
                None
            }
        }
    }

    fn ldap_source(&mut self, p: &str, raw: &RawSource) -> Option<LdapSource> {
        let before = self.problems.len();
        let start_tls = raw.start_tls.is_some_and(|f| f.0);
        let tls_insecure = raw.tls_insecure.is_some_and(|f| f.0);
        let url = self.ldap_url(p, raw.url.as_deref(), start_tls);
        let tls = url.as_deref().is_some_and(|u| u.starts_with("ldaps://")) || start_tls;
        let bind_dn = match raw.bind_dn.as_deref().map(str::trim) {
            Some("") => {
                self.problem(format!("{p}.bind_dn"), "must not be empty (leave it out to bind anonymously)");
                None
            }
            other => other.map(str::to_string),
        };
        let (password, password_from) = self.ldap_password(p, raw).unzip();
        match (&bind_dn, &password) {
            (Some(_), None) if password_from.is_none() && self.problems.len() == before => {
                self.problem(format!("{p}.bind_dn"), "a bind DN needs a password: set password_env (or password_file)")
            }
            (None, Some(_)) => self.problem(format!("{p}.bind_dn"), "missing: the password is for binding as this DN"),
            _ => {}
        }
        let ca_file = raw.ca_file.as_deref().map(str::trim).and_then(|f| {
            if f.is_empty() {
                self.problem(format!("{p}.ca_file"), "must not be empty (leave it out to trust the system roots)");
                return None;
            }
            if !Path::new(f).is_file() {
                self.problem(format!("{p}.ca_file"), format!("{f:?}: no such file (a PEM file of CA certificates)"));
            } else if url.is_some() && !tls {
                self.problem(format!("{p}.ca_file"), "has no effect without TLS (ldaps:// or start_tls = true)");
            }
            Some(PathBuf::from(f))
        });
        let name = raw.name.as_deref().unwrap_or("?");
        if tls_insecure {
            tracing::warn!(
                source = name,
                "{p}.tls_insecure = true: the directory's certificate is NOT verified; anyone on the network \
                 path can impersonate it and read the bind password"
            );
        } else if url.is_some() && !tls && password.is_some() {
            tracing::warn!(
                source = name,
                "{p}: the bind password is sent in clear text; use ldaps:// or start_tls = true"
            );
        }
        let base_dn = self.required_text(
            p,
            "base_dn",
            raw.base_dn.as_deref(),
            "where to search, e.g. ou=people,dc=example,dc=org",
        );
        let filter = self.required_text(p, "filter", raw.filter.as_deref(), "e.g. (&(objectClass=person)(mail=*))");
        if let Some(f) = &filter
            && ldap3::parse_filter(f).is_err()
        {
            self.problem(format!("{p}.filter"), format!("{f:?} is not a valid LDAP filter (RFC 4515)"));
        }
        let page_size = self.whole(&format!("{p}.page_size"), raw.page_size, 500, 1, i64::from(i32::MAX));
        let timeout_s = self.whole(&format!("{p}.timeout_s"), raw.timeout_s, 30, 1, 86_400);
        let nested_groups = raw.nested_groups.is_some_and(|f| f.0);
        let groups = self.groups(p, raw.groups.as_deref().unwrap_or_default());
        if self.problems.len() != before {
            return None;
        }
        Some(LdapSource {
            url: url?,
            start_tls,
            bind_dn,
            password,
            password_from,
            ca_file,
            tls_insecure,
            base_dn: base_dn?,
            filter: filter?,
            page_size: u32::try_from(page_size).ok()?,
            timeout: std::time::Duration::from_secs(timeout_s),
            nested_groups,
            groups,
        })
    }

    fn ldap_url(&mut self, p: &str, raw: Option<&str>, start_tls: bool) -> Option<String> {
        let path = format!("{p}.url");
        let Some(url) = raw.map(str::trim).filter(|u| !u.is_empty()) else {
            self.problem(path, "missing (ldaps://host or ldap://host with start_tls = true)");
            return None;
        };
        let lower = url.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("ldaps://").or_else(|| lower.strip_prefix("ldap://")) else {
            self.problem(path, format!("{:?}: must start with ldaps:// or ldap://", mask_url(url)));
            return None;
        };
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority.contains('@') {
            self.problem(path, "must not hold credentials: set bind_dn and password_env");
            return None;
        }
        if authority.is_empty() {
            self.problem(path, format!("{url:?}: no host"));
            return None;
        }
        if rest.get(authority.len()..).is_some_and(|t| !t.trim_matches('/').is_empty()) {
            self.problem(path, format!("{url:?}: give the base DN and filter as base_dn and filter, not in the URL"));
            return None;
        }
        if start_tls && lower.starts_with("ldaps://") {
            self.problem(format!("{p}.start_tls"), "StartTLS is for ldap:// URLs; ldaps:// is already encrypted");
        }
        Some(url.trim_end_matches('/').to_string())
    }

    /// The password from exactly one of `password_env`, `password_file`, `password`.
    fn ldap_password(&mut self, p: &str, raw: &RawSource) -> Option<(Secret<String>, PasswordFrom)> {
        let given = raw.set_keys(&["password_env", "password_file", "password"]);
        if given.len() > 1 {
            self.problem(p, format!("set only one of {}", given.join(", ")));
            return None;
        }
        let (key, from, value) = if let Some(name) = &raw.password_env {
            let name = name.trim();
            let value = self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            if value.is_none() {
                self.problem(format!("{p}.password_env"), format!("the environment variable {name} is not set"));
                return None;
            }
            ("password_env", PasswordFrom::Env(name.to_string()), value)
        } else if let Some(file) = &raw.password_file {
            let file = file.trim();
            match std::fs::read_to_string(file) {
                // One trailing line break is the file's, not the password's.
                Ok(text) => {
                    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                    ("password_file", PasswordFrom::File(PathBuf::from(file)), Some(text.to_string()))
                }
                Err(e) => {
                    self.problem(format!("{p}.password_file"), format!("{file:?}: cannot read it: {e}"));
                    return None;
                }
            }
        } else if let Some(password) = &raw.password {
            tracing::warn!(
                "{p}.password: a clear-text password in the configuration; prefer password_env or password_file"
            );
            ("password", PasswordFrom::Inline, Some(password.clone()))
        } else {
            return None;
        };
        match value {
            // An empty password makes a simple bind anonymous (RFC 4513 §5.1.2).
            Some(v) if v.is_empty() => {
                self.problem(format!("{p}.{key}"), "the password is empty");
                None
            }
            Some(v) => Some((Secret::new(v), from)),
            None => None,
        }
    }

    fn groups(&mut self, p: &str, raw: &[RawGroup]) -> Vec<GroupRule> {
        let mut out = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (j, g) in raw.iter().enumerate() {
            let gp = format!("{p}.groups[{j}]");
            let dn = self.required_text(&gp, "dn", g.dn.as_deref(), "the group's DN");
            if let Some(dn) = &dn {
                let key = dn.to_lowercase();
                if let Some(first) = seen.get(&key) {
                    self.problem(format!("{gp}.dn"), format!("the same group as groups[{first}]"));
                } else {
                    seen.insert(key, j);
                }
            }
            let service = g.service.as_deref().and_then(|s| match ServiceCode::parse(s) {
                Ok(code) => Some(code.as_str().to_string()),
                Err(e) => {
                    self.problem(format!("{gp}.service"), format!("{s:?}: {e}"));
                    None
                }
            });
            let rights = g.rights.as_deref().and_then(|r| match Rights::parse(r) {
                Ok(r) => Some(r.to_string()),
                Err(e) => {
                    self.problem(
                        format!("{gp}.rights"),
                        format!("{e} (rights are written application:mode, e.g. factures:modification)"),
                    );
                    None
                }
            });
            if g.service.is_none() && g.rights.is_none() {
                self.problem(&gp, "gives neither service nor rights");
            }
            if let Some(dn) = dn {
                out.push(GroupRule { dn, service, rights });
            }
        }
        out
    }

    /// A whole number between `min` and `max`, `default` when absent.
    fn whole(&mut self, path: &str, raw: Option<Limit>, default: u64, min: i64, max: i64) -> u64 {
        match raw {
            None => default,
            Some(Limit::Int(n)) if (min..=max).contains(&n) => n.unsigned_abs(),
            Some(other) => {
                self.problem(path, format!("{}: must be a whole number from {min} to {max}", limit_text(other)));
                default
            }
        }
    }

    fn spreadsheet_path(&mut self, p: &str, raw: Option<&str>) -> Option<PathBuf> {
        let path = format!("{p}.path");
        let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
            self.problem(path, "missing (the file to read, relative to the working directory)");
            return None;
        };
        let ext = Path::new(raw).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if !SPREADSHEET_EXTENSIONS.contains(&ext.as_str()) {
            self.problem(
                path,
                format!(
                    "{raw:?}: the file type is told by its extension, one of {}",
                    SPREADSHEET_EXTENSIONS.join(", ")
                ),
            );
            return None;
        }
        Some(PathBuf::from(raw))
    }

    fn sheet(&mut self, p: &str, raw: Option<&str>) -> Option<String> {
        let raw = raw?;
        if raw.trim().is_empty() {
            self.problem(format!("{p}.sheet"), "must not be empty (leave it out to read the first sheet)");
            return None;
        }
        Some(raw.to_string())
    }

    fn schedule(&mut self, p: &str, raw: &str) -> Option<String> {
        self.cron(&format!("{p}.schedule"), raw)
    }

    fn cron(&mut self, path: &str, raw: &str) -> Option<String> {
        // Same parser settings as tokio-cron-scheduler, which runs these.
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(raw);
        match parsed {
            Ok(_) => Some(raw.trim().to_string()),
            Err(e) => {
                self.problem(
                    path,
                    format!("{raw:?} is not a valid cron schedule with seconds (sec min hour day month weekday): {e}"),
                );
                None
            }
        }
    }

    fn csv_options(&mut self, p: &str, delimiter: Option<&str>, encoding: Option<&str>) -> Option<CsvOptions> {
        let d = delimiter.map(|d| self.delimiter(&format!("{p}.csv_delimiter"), d));
        let e = encoding.map(|e| self.encoding(&format!("{p}.encoding"), e));
        match (d, e) {
            (Some(None), _) | (_, Some(None)) => None,
            (d, e) => Some(CsvOptions { delimiter: d.flatten(), encoding: e.flatten() }),
        }
    }

    fn delimiter(&mut self, path: &str, raw: &str) -> Option<u8> {
        let mut chars = raw.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\n' | '\r') => Some(c as u8),
            _ => {
                self.problem(
                    path,
                    format!("{raw:?}: must be exactly one ASCII character, not a double quote or a line break"),
                );
                None
            }
        }
    }

    fn encoding(&mut self, path: &str, raw: &str) -> Option<&'static encoding_rs::Encoding> {
        let found = encoding_rs::Encoding::for_label_no_replacement(raw.trim().as_bytes());
        if found.is_none() {
            self.problem(
                path,
                format!("unknown encoding {raw:?} (e.g. utf-8, windows-1252, iso-8859-15, utf-16le, utf-16be)"),
            );
        }
        found
    }

    /// Checks a column map: known field keys, non-empty headers, `required`
    /// fields present, and no header feeding two fields.
    fn columns(
        &mut self,
        path: &str,
        raw: &BTreeMap<String, String>,
        defaults: &[(Field, &str)],
        required: &[Field],
    ) -> ColumnMap {
        let mut map: BTreeMap<Field, String> = defaults.iter().map(|(f, h)| (*f, (*h).to_string())).collect();
        let keys: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        for (key, header) in raw {
            match Field::from_key(key) {
                None => self.unknown_key(key_path(path, key), key, &keys),
                Some(field) if header.trim().is_empty() => {
                    map.remove(&field);
                    self.problem(key_path(path, key), "the header must not be empty");
                }
                Some(field) => {
                    map.insert(field, header.trim().to_string());
                }
            }
        }
        for field in required {
            if !map.contains_key(field) && !raw.contains_key(field.key()) {
                self.problem(key_path(path, field.key()), "missing (this column is required)");
            }
        }
        let mut seen: HashMap<String, Field> = HashMap::new();
        for (field, header) in &map {
            match seen.get(&fold(header)) {
                Some(first) => self.problem(
                    key_path(path, field.key()),
                    format!("{header:?} is already the header of {first}: one column feeds one field"),
                ),
                None => {
                    seen.insert(fold(header), *field);
                }
            }
        }
        ColumnMap::new(map)
    }

    fn values(&mut self, p: &str, raw: Option<&RawValues>, columns: Option<&ColumnMap>) -> Option<ValueMaps> {
        let mut out = ValueMaps::default();
        let Some(raw) = raw else { return Some(out) };
        let before = self.problems.len();
        let base = format!("{p}.values");
        if let Some(rights) = &raw.rights {
            let path = key_path(&base, "rights");
            if columns.is_some_and(|c| !c.contains(Field::Rights)) {
                self.problem(&path, "has no effect without a rights column in [sources.columns]");
            }
            let mut seen: HashMap<String, &str> = HashMap::new();
            for (label, text) in rights {
                let entry = key_path(&path, label);
                let folded = fold(label);
                if folded.is_empty() {
                    self.problem(entry, "the label must not be empty");
                    continue;
                }
                if let Some(first) = seen.get(&folded) {
                    self.problem(entry, format!("same label as {first:?} once case, accents and spaces are ignored"));
                    continue;
                }
                seen.insert(folded.clone(), label);
                match Rights::parse(text) {
                    Ok(r) => {
                        out.rights.insert(folded, r.to_string());
                    }
                    Err(e) => self.problem(
                        entry,
                        format!("{e} (rights are written application:mode, e.g. factures:modification)"),
                    ),
                }
            }
        }
        if let Some(statuses) = &raw.inactive_status {
            let path = key_path(&base, "inactive_status");
            if columns.is_some_and(|c| !c.contains(Field::Status)) {
                self.problem(&path, "has no effect without a status column in [sources.columns]");
            }
            for (j, s) in statuses.iter().enumerate() {
                let folded = fold(s);
                if folded.is_empty() {
                    self.problem(format!("{path}[{j}]"), "must not be empty");
                } else {
                    out.inactive_status.insert(folded);
                }
            }
        }
        (self.problems.len() == before).then_some(out)
    }

    fn current(&mut self, raw: RawCurrent) -> CurrentConfig {
        let columns = self.columns(
            "current.columns",
            &raw.columns.unwrap_or_default(),
            CURRENT_COLUMN_DEFAULTS,
            &[Field::Email, Field::Structure],
        );
        let sheet = self.sheet("current", raw.sheet.as_deref());
        let csv =
            self.csv_options("current", raw.csv_delimiter.as_deref(), raw.encoding.as_deref()).unwrap_or_default();
        CurrentConfig { columns, sheet, csv }
    }

    fn guards(&mut self, raw: RawGuards) -> GuardsConfig {
        let d = GuardsConfig::default();
        let grace_runs = match raw.grace_runs {
            None => d.grace_runs,
            Some(Limit::Int(n)) if (0..=i64::from(u32::MAX)).contains(&n) => n as u32,
            Some(other) => {
                self.problem(
                    "guards.grace_runs",
                    format!("{}: must be a whole number ≥ 0 (0 = detach at once)", limit_text(other)),
                );
                d.grace_runs
            }
        };
        GuardsConfig {
            max_detach: self.count_limit("guards.max_detach", raw.max_detach, d.max_detach),
            max_detach_percent: self.percent_limit(
                "guards.max_detach_percent",
                raw.max_detach_percent,
                d.max_detach_percent,
            ),
            max_attach: self.count_limit("guards.max_attach", raw.max_attach, d.max_attach),
            max_attach_percent: self.percent_limit(
                "guards.max_attach_percent",
                raw.max_attach_percent,
                d.max_attach_percent,
            ),
            max_move: self.count_limit("guards.max_move", raw.max_move, d.max_move),
            max_move_percent: self.percent_limit("guards.max_move_percent", raw.max_move_percent, d.max_move_percent),
            max_rights: self.count_limit("guards.max_rights", raw.max_rights, d.max_rights),
            max_rights_percent: self.percent_limit(
                "guards.max_rights_percent",
                raw.max_rights_percent,
                d.max_rights_percent,
            ),
            min_rows_ratio: self.bounded("guards.min_rows_ratio", raw.min_rows_ratio, 1.0).unwrap_or(d.min_rows_ratio),
            min_fill_ratio: self.bounded("guards.min_fill_ratio", raw.min_fill_ratio, 1.0).unwrap_or(d.min_fill_ratio),
            grace_runs,
        }
    }

    fn approvals(&mut self, raw: RawApprovals) -> ApprovalsConfig {
        ApprovalsConfig {
            expire_after_days: self.days("approvals.expire_after_days", raw.expire_after_days),
            apply_within_days: self.days("approvals.apply_within_days", raw.apply_within_days),
            housekeeping_schedule: match &raw.housekeeping_schedule {
                Some(text) => self
                    .cron("approvals.housekeeping_schedule", text)
                    .unwrap_or_else(|| DEFAULT_HOUSEKEEPING_SCHEDULE.to_string()),
                None => DEFAULT_HOUSEKEEPING_SCHEDULE.to_string(),
            },
        }
    }

    /// `[notifications]`: present means enabled, so its required keys are required.
    fn notifications(&mut self, raw: RawNotifications) -> Option<NotificationsConfig> {
        const P: &str = "notifications";
        let host = self.required_text(P, "smtp_host", raw.smtp_host.as_deref(), "the SMTP server's host name");
        let tls = match raw.tls.as_deref().map(str::trim) {
            None | Some("starttls") => Some(SmtpTls::StartTls),
            Some("tls") => Some(SmtpTls::Tls),
            Some("none") => Some(SmtpTls::None),
            Some(other) => {
                self.problem(format!("{P}.tls"), format!("{other:?}: expected starttls, tls or none"));
                None
            }
        };
        let port = match raw.smtp_port {
            None => tls.map(SmtpTls::default_port),
            Some(Limit::Int(n)) if (1..=65535).contains(&n) => Some(n as u16),
            Some(other) => {
                self.problem(format!("{P}.smtp_port"), format!("{}: must be a port number 1–65535", limit_text(other)));
                None
            }
        };
        let ca_file = self.ca_file(P, raw.ca_file.as_deref());
        let credentials = self.smtp_credentials(&raw);
        let from = self.required_text(P, "from", raw.from.as_deref(), "the sender address").and_then(|f| {
            match f.parse::<lettre::message::Mailbox>() {
                Ok(_) => Some(f),
                Err(e) => {
                    self.problem(format!("{P}.from"), format!("{f:?}: not a mailbox ({e})"));
                    None
                }
            }
        });
        let console_url = raw.console_url.as_deref().map(str::trim).and_then(|u| {
            if u.starts_with("https://") || u.starts_with("http://") {
                Some(u.trim_end_matches('/').to_string())
            } else {
                self.problem(format!("{P}.console_url"), format!("{u:?}: expected an http:// or https:// URL"));
                None
            }
        });
        let remind_after_days = self.days("notifications.remind_after_days", raw.remind_after_days);
        let timeout_s = self.positive("notifications.timeout_s", raw.timeout_s, 30);
        Some(NotificationsConfig {
            smtp_host: host?,
            smtp_port: port?,
            tls: tls?,
            ca_file,
            credentials: credentials?,
            from: from?,
            console_url,
            remind_after_days,
            timeout: std::time::Duration::from_secs(timeout_s),
        })
    }

    /// Both `username_env` and `password_env`, or neither; `Some(None)`: no authentication.
    fn smtp_credentials(&mut self, raw: &RawNotifications) -> Option<Option<SmtpCredentials>> {
        const P: &str = "notifications";
        let mut read = |key: &str, name: &Option<String>| -> Option<Option<(String, String)>> {
            let Some(name) = name.as_deref().map(str::trim) else { return Some(None) };
            self.env_value(&format!("{P}.{key}"), name).map(|v| Some((name.to_string(), v)))
        };
        let user = read("username_env", &raw.username_env);
        let password = read("password_env", &raw.password_env);
        match (raw.username_env.is_some(), raw.password_env.is_some()) {
            (true, false) => self.problem(format!("{P}.password_env"), "missing: username_env needs password_env"),
            (false, true) => self.problem(format!("{P}.username_env"), "missing: password_env needs username_env"),
            _ => {}
        }
        match (user?, password?) {
            (None, None) => Some(None),
            (Some((username_env, username)), Some((password_env, password))) => {
                Some(Some(SmtpCredentials { username_env, password_env, username, password: Secret::new(password) }))
            }
            _ => None,
        }
    }

    /// The non-empty value of the environment variable `name`, named by `path`.
    fn env_value(&mut self, path: &str, name: &str) -> Option<String> {
        match self.env.iter().find(|(k, _)| k == name) {
            Some((_, v)) if !v.is_empty() => Some(v.clone()),
            Some(_) => {
                self.problem(path, format!("the environment variable {name} is empty"));
                None
            }
            None => {
                self.problem(path, format!("the environment variable {name} is not set"));
                None
            }
        }
    }

    /// `ca_file` of section `p`: an existing file.
    fn ca_file(&mut self, p: &str, raw: Option<&str>) -> Option<PathBuf> {
        let f = raw.map(str::trim)?;
        if Path::new(f).is_file() {
            Some(PathBuf::from(f))
        } else {
            self.problem(format!("{p}.ca_file"), format!("{f:?}: no such file"));
            None
        }
    }

    /// `[web.oidc]`: present means enabled, so its required keys are required.
    fn oidc(&mut self, raw: RawOidc) -> Option<OidcConfig> {
        const P: &str = "web.oidc";
        let issuer = self
            .required_text(P, "issuer", raw.issuer.as_deref(), "the provider's issuer URL")
            .and_then(|u| self.web_url(P, "issuer", u));
        let client_id = self.required_text(P, "client_id", raw.client_id.as_deref(), "the console's client id");
        let secret_env = self.required_text(
            P,
            "client_secret_env",
            raw.client_secret_env.as_deref(),
            "the name of the environment variable holding the client secret",
        );
        let secret = secret_env.as_deref().and_then(|name| self.env_value(&format!("{P}.client_secret_env"), name));
        let redirect_url = self
            .required_text(P, "redirect_url", raw.redirect_url.as_deref(), "the console's URL + /auth/oidc/callback")
            .and_then(|u| self.web_url(P, "redirect_url", u))
            .and_then(|u| {
                if u.ends_with(OIDC_CALLBACK_PATH) {
                    Some(u)
                } else {
                    self.problem(format!("{P}.redirect_url"), format!("{u:?}: must end with {OIDC_CALLBACK_PATH}"));
                    None
                }
            });
        let scopes = match raw.scopes {
            None => Some(DEFAULT_OIDC_SCOPES.iter().map(|s| (*s).to_string()).collect()),
            Some(list) => {
                let list: Vec<String> = list.iter().map(|s| s.trim().to_string()).collect();
                if let Some(bad) = list.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
                    self.problem(format!("{P}.scopes"), format!("{bad:?}: a scope is one word"));
                    None
                } else if !list.iter().any(|s| s == "openid") {
                    self.problem(format!("{P}.scopes"), "must include \"openid\"");
                    None
                } else {
                    Some(list)
                }
            }
        };
        let email_claim = self.text_or(P, "email_claim", raw.email_claim.as_deref(), "email");
        let ca_file = self.ca_file(P, raw.ca_file.as_deref());
        let button_label = self.text_or(P, "button_label", raw.button_label.as_deref(), "OpenID Connect");
        Some(OidcConfig {
            issuer: issuer?,
            client_id: client_id?,
            client_secret_env: secret_env?,
            client_secret: Secret::new(secret?),
            redirect_url: redirect_url?,
            scopes: scopes?,
            email_claim: email_claim?,
            require_verified_email: raw.require_verified_email.is_none_or(|f| f.0),
            ca_file,
            button_label: button_label?,
        })
    }

    /// An https URL (http only to this machine), without query or fragment.
    fn web_url(&mut self, p: &str, key: &str, raw: String) -> Option<String> {
        let url = match reqwest::Url::parse(&raw) {
            Ok(u) => u,
            Err(e) => {
                self.problem(format!("{p}.{key}"), format!("{raw:?}: not a URL ({e})"));
                return None;
            }
        };
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        let problem = match url.scheme() {
            "https" => None,
            "http" if local => None,
            "http" => Some("expected an https:// URL (http:// only to localhost)"),
            _ => Some("expected an https:// URL"),
        }
        .or_else(|| (url.query().is_some() || url.fragment().is_some()).then_some("no query or fragment allowed"));
        match problem {
            Some(m) => {
                self.problem(format!("{p}.{key}"), format!("{raw:?}: {m}"));
                None
            }
            None => Some(raw),
        }
    }

    /// A number of days ≥ 1, or `false` (the default) for never.
    fn days(&mut self, path: &str, raw: Option<Limit>) -> Option<u32> {
        match raw {
            None | Some(Limit::Off) => None,
            Some(Limit::Int(n)) if (1..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
            Some(other) => {
                self.problem(path, format!("{}: must be a whole number of days ≥ 1, or false", limit_text(other)));
                None
            }
        }
    }

    fn limits(&mut self, raw: RawLimits) -> LimitsConfig {
        let d = LimitsConfig::default();
        LimitsConfig {
            max_file_bytes: self.positive("limits.max_file_bytes", raw.max_file_bytes, d.max_file_bytes),
            max_rows: self.positive("limits.max_rows", raw.max_rows, d.max_rows),
            max_cell_chars: self.positive("limits.max_cell_chars", raw.max_cell_chars, d.max_cell_chars),
            max_sheets: self.positive("limits.max_sheets", raw.max_sheets, d.max_sheets),
            max_inflated_bytes: self.positive(
                "limits.max_inflated_bytes",
                raw.max_inflated_bytes,
                d.max_inflated_bytes,
            ),
            max_zip_ratio: self.positive("limits.max_zip_ratio", raw.max_zip_ratio, d.max_zip_ratio),
        }
    }

    /// A limit: a whole number ≥ 1. No `false`: a limit is raised, not removed.
    fn positive(&mut self, path: &str, raw: Option<Limit>, default: u64) -> u64 {
        match raw {
            None => default,
            Some(Limit::Int(n)) if n >= 1 => n.unsigned_abs(),
            Some(other) => {
                self.problem(path, format!("{}: must be a whole number ≥ 1", limit_text(other)));
                default
            }
        }
    }

    /// A count guard: a whole number ≥ 0, or `false`.
    fn count_limit(&mut self, path: &str, raw: Option<Limit>, default: Option<u64>) -> Option<u64> {
        match raw {
            None => default,
            Some(Limit::Off) => None,
            Some(Limit::Int(n)) if n >= 0 => Some(n.unsigned_abs()),
            Some(other) => {
                self.problem(path, format!("{}: must be a whole number ≥ 0, or false", limit_text(other)));
                default
            }
        }
    }

    /// A percentage guard: 0–100, or `false`.
    fn percent_limit(&mut self, path: &str, raw: Option<Limit>, default: Option<f64>) -> Option<f64> {
        self.bounded(path, raw, 100.0).unwrap_or(default)
    }

    /// A guard between 0 and `max`, or `false`; `None` when absent or wrong.
    fn bounded(&mut self, path: &str, raw: Option<Limit>, max: f64) -> Option<Option<f64>> {
        let value = match raw? {
            Limit::Off => return Some(None),
            Limit::Int(n) => n as f64,
            Limit::Float(f) => f,
        };
        if (0.0..=max).contains(&value) {
            Some(Some(value))
        } else {
            self.problem(path, format!("{value}: must be between 0 and {max}, or false"));
            None
        }
    }

    fn required_text(&mut self, p: &str, key: &str, raw: Option<&str>, what: &str) -> Option<String> {
        match raw.map(str::trim) {
            None => {
                self.problem(format!("{p}.{key}"), format!("missing ({what})"));
                None
            }
            Some("") => {
                self.problem(format!("{p}.{key}"), "must not be empty");
                None
            }
            Some(t) => Some(t.to_string()),
        }
    }

    /// An optional text key: `default` when left out, never blank.
    fn text_or(&mut self, p: &str, key: &str, raw: Option<&str>, default: &str) -> Option<String> {
        match raw {
            None => Some(default.to_string()),
            Some(_) => self.required_text(p, key, raw, ""),
        }
    }

    fn email(&mut self, path: String, raw: &str) -> Option<Email> {
        Email::parse(raw).map_err(|e| self.problem(path, format!("{raw:?}: {e}"))).ok()
    }
}

fn is_ldap(raw: &RawSource) -> bool {
    raw.kind.as_deref().map(str::trim) == Some("ldap")
}

fn limit_text(l: Limit) -> String {
    match l {
        Limit::Off => "false".into(),
        Limit::Int(n) => n.to_string(),
        Limit::Float(f) => format!("{f:?}"),
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

fn segments_of(p: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path;
    match p {
        Path::Root => {}
        Path::Seq { parent, index } => {
            segments_of(parent, out);
            out.push(Segment::Index(*index));
        }
        Path::Map { parent, key } => {
            segments_of(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            segments_of(parent, out)
        }
    }
}

/// `base.key`, quoting keys that are not bare TOML keys (`rights."Chef de service"`).
pub(crate) fn key_path(base: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_string() } else { format!("{key:?}") };
    if base.is_empty() { key } else { format!("{base}.{key}") }
}

/// The closest valid key within two edits, if any.
fn suggest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (edit_distance(&key.to_lowercase(), v), *v))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn kind_name(kind: &ValueKind) -> &'static str {
    match kind {
        ValueKind::Nil => "nothing",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => "an integer",
        ValueKind::Float(_) => "a number",
        ValueKind::String(_) => "a string",
        ValueKind::Table(_) => "a table",
        ValueKind::Array(_) => "an array",
    }
}

/// A deserialization error at `base`, with the key path the `config` crate
/// tracked below it.
fn type_problem(base: &str, e: ConfigError) -> Problem {
    let join = |key: Option<String>| match key {
        None => base.to_string(),
        Some(k) if k.starts_with('[') || base.is_empty() => format!("{base}{k}"),
        Some(k) => format!("{base}.{k}"),
    };
    match e {
        ConfigError::Type { unexpected, expected, key, .. } => {
            Problem::new(join(key), format!("invalid type: {unexpected}, expected {expected}"))
        }
        ConfigError::At { error, key, .. } => Problem::new(join(key), error.to_string()),
        other => Problem::new(base, other.to_string()),
    }
}

/// A TOML syntax error as `line L, column C: message`.
fn syntax_problem(text: &str, e: ConfigError) -> Problem {
    if let ConfigError::FileParse { cause, .. } = &e
        && let Some(toml_error) = cause.downcast_ref::<toml::de::Error>()
    {
        let message = toml_error.message().trim().replace('\n', " ");
        if let Some(span) = toml_error.span() {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Problem::new(format!("line {line}, column {column}"), format!("invalid TOML: {message}"));
        }
        return Problem::new("", format!("invalid TOML: {message}"));
    }
    Problem::new("", format!("invalid TOML: {}", e.to_string().replace('\n', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::render;

    /// DESIGN §5, verbatim but for the `[current]` header that the example
    /// leaves empty before `[current.columns]`.
    const DESIGN_EXAMPLE: &str = r#"
timezone = "Europe/Paris"          # for dates in sources, schedules and reports

[store]
url = "sqlite://chorus-sync.db"    # or postgres://user@host/db

[reports]
dir = "reports"                    # a run writes into <dir>/<run id>/ unless --out is given
csv_delimiter = ";"

[[structures]]
identifier = "12345678200010"      # SIRET unless identifier_type says otherwise
identifier_type = "SIRET"
name = "ACME France"
main_manager = "gp@acme.fr"
services = ["COMPTA", "ACHATS"]    # known service codes; an unknown code is an anomaly

[[sources]]
name = "hr"
kind = "spreadsheet"               # spreadsheet (xlsx, xlsm, xlsb, xls, ods, csv) | ldap
path = "samples/hr.xlsx"
sheet = "Personnel"                # optional: first sheet by default
schedule = "0 30 6 * * Mon-Fri"    # optional, cron with seconds, in `timezone`
default_structure = "12345678200010"  # optional: when there is no structure column
[sources.columns]                  # field = header text in the file (matched ignoring case, accents, spaces)
email = "Courriel"                 # the only required field
last_name = "Nom"
first_name = "Prénom"
employee_id = "Matricule"          # optional stable id (see §6)
structure = "SIRET"
service = "Code service"
rights = "Profil"
end_date = "Date de sortie"
status = "Statut"
[sources.values]                   # optional value maps
rights = { "Comptable" = "factures:modification", "Lecteur" = "factures:consultation" }
inactive_status = ["Sorti", "Inactif"]

[current]                          # how import-current reads a portal export
[current.columns]
email = "Adresse électronique"
last_name = "Nom"
first_name = "Prénom"
structure = "Identifiant structure"
service = "Code service"
rights = "Profil"

[guards]
max_detach = 50                    # per run, absolute
max_detach_percent = 10.0          # per structure, of its current attachments
min_rows_ratio = 0.8               # source rows vs the last accepted run of that source
grace_runs = 2                     # absent people are proposed for detach on the (grace_runs+1)-th consecutive complete run without them; 0 = at once
"#;

    /// Two structures and nothing else: every other key takes its default.
    const STRUCTURES: &str = r#"
[[structures]]
identifier = "12345678200010"
name = "ACME France"
main_manager = "gp@acme.fr"
services = ["COMPTA", "ACHATS"]

[[structures]]
identifier = "732 829 320 00074"
name = "ACME Services"
main_manager = "gp@acme-services.fr"
"#;

    const SOURCE: &str = r#"
[[sources]]
name = "hr"
path = "hr.xlsx"
[sources.columns]
email = "Courriel"
structure = "SIRET"
"#;

    fn load_str(text: &str) -> Result<Config, ConfigErrors> {
        load_from(text, Some(Path::new("chorus-sync.toml")), &[])
    }

    fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load_from(text, Some(Path::new("chorus-sync.toml")), &env)
    }

    fn problems(result: Result<Config, ConfigErrors>) -> Vec<(String, String)> {
        match result {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| (p.path, p.message)).collect(),
        }
    }

    /// Loads `text` and requires exactly the `expect`ed problems: each a path
    /// and a fragment of its message.
    fn check(text: &str, expect: &[(&str, &str)]) {
        let got = problems(load_str(text));
        let matches = got.len() == expect.len()
            && expect.iter().all(|(path, msg)| got.iter().any(|(p, m)| p == path && m.contains(msg)));
        assert!(matches, "for\n{text}\nexpected {expect:#?}\ngot {got:#?}");
    }

    #[test]
    fn design_example_loads() {
        let c = load_str(DESIGN_EXAMPLE).unwrap();
        assert_eq!(c.timezone, chrono_tz::Europe::Paris);
        assert_eq!(c.store.url.expose(), "sqlite://chorus-sync.db");
        assert_eq!(c.reports.dir, PathBuf::from("reports"));
        assert_eq!(c.reports.csv_delimiter, b';');
        assert_eq!(c.catalog.len(), 1);
        let acme = c.catalog.lookup("12345678200010").unwrap();
        assert_eq!(acme.services.as_ref().map(Vec::len), Some(2));
        let hr = &c.sources[0];
        assert_eq!(hr.name, "hr");
        let SourceKind::Spreadsheet(s) = &hr.kind else { panic!("not a spreadsheet") };
        assert_eq!(s.path, PathBuf::from("samples/hr.xlsx"));
        assert_eq!(s.sheet.as_deref(), Some("Personnel"));
        assert_eq!(hr.schedule.as_deref(), Some("0 30 6 * * Mon-Fri"));
        assert_eq!(hr.default_structure.as_ref().map(StructureId::as_str), Some("12345678200010"));
        assert_eq!(hr.scope.len(), 1, "a structure column scopes the source to every structure");
        assert_eq!(hr.columns.get(Field::FirstName), Some("Prénom"));
        assert_eq!(hr.columns.iter().count(), 9);
        assert_eq!(hr.values.rights.get("comptable").map(String::as_str), Some("factures:modification"));
        assert!(hr.values.inactive_status.contains("sorti"));
        assert_eq!(c.current.columns.get(Field::Structure), Some("Identifiant structure"));
        assert_eq!(c.guards, GuardsConfig::default());
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = load_str(STRUCTURES).unwrap();
        assert_eq!(c.timezone, chrono_tz::Europe::Paris);
        assert_eq!(c.store.url.expose(), DEFAULT_STORE_URL);
        assert_eq!(c.reports.dir, PathBuf::from("reports"));
        assert_eq!(c.reports.csv_delimiter, b';');
        assert!(c.sources.is_empty());
        assert_eq!(c.catalog.lookup("73282932000074").unwrap().name, "ACME Services", "SIRET stored compact");
        for (field, header) in CURRENT_COLUMN_DEFAULTS {
            assert_eq!(c.current.columns.get(*field), Some(*header));
        }
        assert_eq!(c.guards, GuardsConfig::default());
    }

    #[test]
    fn partial_current_columns_override_only_their_keys() {
        let c = load_str(&format!("{STRUCTURES}\n[current.columns]\nemail = \"Mail\"\nstatus = \"État\"\n")).unwrap();
        assert_eq!(c.current.columns.get(Field::Email), Some("Mail"));
        assert_eq!(c.current.columns.get(Field::Status), Some("État"));
        assert_eq!(c.current.columns.get(Field::LastName), Some("Nom"));
    }

    #[test]
    fn source_scopes() {
        let scope = |text: &str| {
            let c = load_str(&format!("{STRUCTURES}{text}")).unwrap();
            c.sources[0].scope.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let all = vec!["12345678200010".to_string(), "73282932000074".to_string()];
        assert_eq!(scope(SOURCE), all, "structure column: every configured structure");
        let default_only = "[[sources]]\nname = \"a\"\npath = \"a.csv\"\ndefault_structure = \"123 456 782 00010\"\n\
                            columns = { email = \"Mail\" }\n";
        assert_eq!(scope(default_only), vec!["12345678200010".to_string()]);
        let explicit = "[[sources]]\nname = \"a\"\npath = \"a.csv\"\nstructures = [\"73282932000074\"]\n\
                        columns = { email = \"Mail\", structure = \"SIRET\" }\n";
        assert_eq!(scope(explicit), vec!["73282932000074".to_string()]);
    }

    #[test]
    fn each_rule_reports_its_problem() {
        let s = STRUCTURES;
        // Top level and simple sections.
        check(&format!("timezone = \"Mars/Olympus\"\n{s}"), &[("timezone", "unknown time zone \"Mars/Olympus\"")]);
        check(
            &format!("[store]\nurl = \"mysql://app:hunter2@db/x\"\n{s}"),
            &[("store.url", "must start with sqlite:, postgres: or postgresql: (got \"mysql://app:[REDACTED]@db/x\")")],
        );
        check(&format!("[reports]\ndir = \" \"\n{s}"), &[("reports.dir", "must not be empty")]);
        for bad in ["\"\"", "\";;\"", "'\"'", "\"\\n\"", "\"§\""] {
            check(&format!("[reports]\ncsv_delimiter = {bad}\n{s}"), &[("reports.csv_delimiter", "exactly one ASCII")]);
        }
        check(&format!("[reports]\ncsv_delimiter = \"\\t\"\n{s}"), &[]);
        // Structures.
        check("", &[("structures", "at least one [[structures]] is required")]);
        check(
            "[[structures]]\nidentifier = \"12345678200011\"\nname = \"X\"\nmain_manager = \"gp@x.fr\"\n",
            &[("structures[0].identifier", "not a valid SIRET: the SIRET checksum is wrong")],
        );
        check(
            "[[structures]]\nidentifier = \"R-1\"\nidentifier_type = \"RIDET\"\nname = \"X\"\nmain_manager = \"gp@x.nc\"\n",
            &[],
        );
        check(
            "[[structures]]\nidentifier = \"1\"\nidentifier_type = \"SIREN\"\nname = \"X\"\nmain_manager = \"gp@x.fr\"\n",
            &[("structures[0].identifier_type", "unknown identifier type \"SIREN\"")],
        );
        check(
            &format!("{s}[[structures]]\nidentifier = \"12345678200010\"\nname = \"Y\"\nmain_manager = \"gp@y.fr\"\n"),
            &[("structures[2].identifier", "12345678200010 is already configured by structures[0]")],
        );
        check(
            "[[structures]]\nidentifier = \"12345678200010\"\n",
            &[("structures[0].name", "missing"), ("structures[0].main_manager", "missing")],
        );
        check(
            "[[structures]]\nidentifier = \"12345678200010\"\nname = \"X\"\nmain_manager = \"gp at acme\"\n\
             delegates = [\"ok@acme.fr\", \"bad@\"]\nservices = [\"COMPTA\", \"compta\", \" \"]\nkind = \"MIXTE\"\n",
            &[
                ("structures[0].main_manager", "\"gp at acme\": the e-mail address contains white space"),
                ("structures[0].delegates[1]", "\"bad@\": the domain"),
                ("structures[0].services[1]", "compta is listed twice (see services[0])"),
                ("structures[0].services[2]", "the service code is empty"),
                ("structures[0].kind", "unknown structure kind \"MIXTE\" (expected PRIVEE or PUBLIQUE)"),
            ],
        );
        // Sources.
        let src = |body: &str| format!("{s}\n[[sources]]\n{body}\n");
        let cols = "[sources.columns]\nemail = \"Mail\"\nstructure = \"SIRET\"";
        check(&src(&format!("name = \"h r\"\npath = \"a.csv\"\n{cols}")), &[("sources[0].name", "use only letters")]);
        check(&src(&format!("path = \"a.csv\"\n{cols}")), &[("sources[0].name", "missing")]);
        check(&src(&format!("name = \"hr\"\nkind = \"sql\"\n{cols}")), &[("sources[0].kind", "unknown source kind")]);
        check(&src(&format!("name = \"hr\"\n{cols}")), &[("sources[0].path", "missing")]);
        check(&src(&format!("name = \"hr\"\npath = \"hr.pdf\"\n{cols}")), &[("sources[0].path", "extension")]);
        check(
            &src(&format!("name = \"hr\"\npath = \"a.csv\"\nschedule = \"30 6 * * *\"\n{cols}")),
            &[("sources[0].schedule", "not a valid cron schedule with seconds")],
        );
        check(&src(&format!("name = \"hr\"\npath = \"a.csv\"\nschedule = \"0 30 6 * * Mon-Fri 2030\"\n{cols}")), &[]);
        check(
            &src(&format!("name = \"hr\"\npath = \"a.csv\"\nschedule = \"0 61 6 * * *\"\n{cols}")),
            &[("sources[0].schedule", "not a valid cron schedule")],
        );
        check(
            &src(&format!("name = \"hr\"\npath = \"a.csv\"\ncsv_delimiter = \"ab\"\nencoding = \"klingon\"\n{cols}")),
            &[
                ("sources[0].csv_delimiter", "exactly one ASCII"),
                ("sources[0].encoding", "unknown encoding \"klingon\""),
            ],
        );
        check(&src(&format!("name = \"hr\"\npath = \"a.csv\"\nencoding = \"ISO-8859-15\"\n{cols}")), &[]);
        check(&src("name = \"hr\"\npath = \"a.csv\""), &[("sources[0].columns", "missing")]);
        check(
            &src(
                "name = \"hr\"\npath = \"a.csv\"\n[sources.columns]\nlast_name = \"Nom\"\nfirst_name = \" NOM \"\nservice = \"\"\nstructure = \"SIRET\"",
            ),
            &[
                ("sources[0].columns.email", "missing"),
                ("sources[0].columns.first_name", "\"NOM\" is already the header of last_name"),
                ("sources[0].columns.service", "the header must not be empty"),
            ],
        );
        check(
            &src("name = \"hr\"\npath = \"a.csv\"\n[sources.columns]\nemail = \"Mail\""),
            &[("sources[0]", "the source places nobody")],
        );
        check(
            &src(
                "name = \"hr\"\npath = \"a.csv\"\ndefault_structure = \"73282932000017\"\n[sources.columns]\nemail = \"Mail\"",
            ),
            &[("sources[0].default_structure", "structure \"73282932000017\" is not one of the configured structures")],
        );
        check(
            &src(
                "name = \"hr\"\npath = \"a.csv\"\ndefault_structure = \"12345678200010\"\nstructures = [\"73282932000074\", \"x\"]\ncolumns = { email = \"Mail\" }",
            ),
            &[
                ("sources[0].structures[1]", "structure \"x\" is not one of the configured structures"),
                ("sources[0].default_structure", "12345678200010 is not among this source's structures"),
            ],
        );
        check(
            &src(&format!(
                "name = \"hr\"\npath = \"a.csv\"\n{cols}\n[sources.values]\nrights = {{ \"Chef\" = \"factures:tout\", \
                 \"Lecteur\" = \"factures:consultation\", \"LECTEUR \" = \"x:consultation\" }}\ninactive_status = [\"Sorti\", \" \"]"
            )),
            &[
                ("sources[0].values.rights.Chef", "\"factures:tout\": the mode must be consultation or modification"),
                ("sources[0].values.rights.Lecteur", "same label as \"LECTEUR \""),
                ("sources[0].values.rights", "has no effect without a rights column"),
                ("sources[0].values.inactive_status", "has no effect without a status column"),
                ("sources[0].values.inactive_status[1]", "must not be empty"),
            ],
        );
        // Two sources governing one structure.
        let hr2 = "[[sources]]\nname = \"hr2\"\npath = \"b.xlsx\"\ndefault_structure = \"73282932000074\"\ncolumns = { email = \"Mail\" }\n";
        check(
            &format!("{s}{SOURCE}{hr2}"),
            &[(
                "sources[1].structures",
                "structure 73282932000074 is governed by both sources \"hr\" (sources[0]) and \"hr2\"",
            )],
        );
        let hr_scoped = SOURCE.replace("path = \"hr.xlsx\"", "path = \"hr.xlsx\"\nstructures = [\"12345678200010\"]");
        check(&format!("{s}{hr_scoped}{hr2}"), &[]);
        check(
            &format!("{s}{SOURCE}{}", SOURCE.replace("hr.xlsx", "other.xlsx")),
            &[
                ("sources[1].name", "\"hr\" is already the name of sources[0]"),
                ("sources[1].structures", "governed by both sources"),
            ],
        );
        // Current and guards.
        check(
            &format!("{s}[current.columns]\nemail = \"\"\nservice = \"Nom\"\n"),
            &[
                ("current.columns.email", "the header must not be empty"),
                ("current.columns.service", "\"Nom\" is already the header of last_name"),
            ],
        );
        check(
            &format!(
                "{s}[guards]\nmax_detach = -1\nmax_detach_percent = 150\nmin_rows_ratio = 1.5\nmin_fill_ratio = -0.1\ngrace_runs = false\n"
            ),
            &[
                ("guards.max_detach", "-1: must be a whole number ≥ 0, or false"),
                ("guards.max_detach_percent", "150: must be between 0 and 100"),
                ("guards.min_rows_ratio", "1.5: must be between 0 and 1"),
                ("guards.min_fill_ratio", "-0.1: must be between 0 and 1"),
                ("guards.grace_runs", "false: must be a whole number ≥ 0"),
            ],
        );
        check(&format!("{s}[guards]\nmax_detach = true\n"), &[("guards.max_detach", "expected a number or false")]);
    }

    /// A directory source that loads, with `{}` for extra lines.
    const LDAP: &str = r#"
[[sources]]
name = "annuaire"
kind = "ldap"
url = "ldaps://ldap.example.org"
bind_dn = "cn=chorus-sync,ou=apps,dc=example,dc=org"
password_env = "LDAP_PW"
base_dn = "ou=people,dc=example,dc=org"
filter = "(&(objectClass=person)(mail=*))"
default_structure = "12345678200010"
{}
[sources.attributes]
email = "mail"
last_name = "sn"
service = "departmentNumber"
end_date = "accountExpires"
[[sources.groups]]
dn = "cn=compta,ou=groups,dc=example,dc=org"
service = "COMPTA"
rights = "factures:modification"
"#;

    fn ldap(extra: &str) -> String {
        format!("{STRUCTURES}{}", LDAP.replace("{}", extra))
    }

    fn load_ldap(text: &str) -> Result<Config, ConfigErrors> {
        load_env(text, &[("LDAP_PW", "s3cr3t-pw")])
    }

    #[test]
    fn ldap_sources_load() {
        let c = load_ldap(&ldap("")).unwrap();
        let s = &c.sources[0];
        let SourceKind::Ldap(l) = &s.kind else { panic!("not ldap") };
        assert_eq!(l.url, "ldaps://ldap.example.org");
        assert!(!l.start_tls && !l.tls_insecure && !l.nested_groups);
        assert_eq!(l.password.as_ref().map(|p| p.expose().as_str()), Some("s3cr3t-pw"));
        assert_eq!(l.password_from, Some(PasswordFrom::Env("LDAP_PW".into())));
        assert_eq!((l.page_size, l.timeout.as_secs()), (500, 30), "defaults");
        assert_eq!(s.columns.get(Field::Service), Some("departmentNumber"));
        assert_eq!(
            l.groups,
            vec![GroupRule {
                dn: "cn=compta,ou=groups,dc=example,dc=org".into(),
                service: Some("COMPTA".into()),
                rights: Some("factures:modification".into()),
            }]
        );
        assert_eq!(s.scope.len(), 1);
        let c = load_ldap(&ldap("page_size = 200\ntimeout_s = \"5\"\nnested_groups = true")).unwrap();
        let SourceKind::Ldap(l) = &c.sources[0].kind else { panic!("not ldap") };
        assert_eq!((l.page_size, l.timeout.as_secs(), l.nested_groups), (200, 5, true));
        // From a file, one trailing line break dropped.
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "from-file\r\n").unwrap();
        let text =
            ldap("").replace("password_env = \"LDAP_PW\"", &format!("password_file = {:?}", pw.display().to_string()));
        let c = load_str(&text).unwrap();
        let SourceKind::Ldap(l) = &c.sources[0].kind else { panic!("not ldap") };
        assert_eq!(l.password.as_ref().map(|p| p.expose().as_str()), Some("from-file"));
        // StartTLS on ldap://, overridden from the environment.
        let c = load_env(
            &ldap(""),
            &[
                ("LDAP_PW", "x"),
                ("CHORUS_SYNC__SOURCES__0__URL", "ldap://ldap.example.org:389"),
                ("CHORUS_SYNC__SOURCES__0__START_TLS", "true"),
            ],
        )
        .unwrap();
        let SourceKind::Ldap(l) = &c.sources[0].kind else { panic!("not ldap") };
        assert_eq!((l.url.as_str(), l.start_tls), ("ldap://ldap.example.org:389", true));
    }

    #[test]
    fn ldap_rules_report_their_problems() {
        let check_ldap = |text: &str, expect: &[(&str, &str)]| {
            let got = problems(load_ldap(text));
            let ok = got.len() == expect.len()
                && expect.iter().all(|(path, msg)| got.iter().any(|(p, m)| p == path && m.contains(msg)));
            assert!(ok, "for\n{text}\nexpected {expect:#?}\ngot {got:#?}");
        };
        let base = ldap("");
        let with = |from: &str, to: &str| {
            assert!(base.contains(from), "{from}");
            base.replace(from, to)
        };
        check_ldap(&base, &[]);
        check_ldap(
            &with("url = \"ldaps://ldap.example.org\"", "url = \"http://ldap.example.org\""),
            &[("sources[0].url", "must start with ldaps:// or ldap://")],
        );
        check_ldap(
            &with("url = \"ldaps://ldap.example.org\"", "url = \"ldaps://admin:pw@ldap.example.org\""),
            &[("sources[0].url", "must not hold credentials")],
        );
        check_ldap(
            &with("url = \"ldaps://ldap.example.org\"", "url = \"ldaps://ldap.example.org/dc=x\""),
            &[("sources[0].url", "give the base DN and filter as base_dn and filter")],
        );
        check_ldap(&ldap("start_tls = true"), &[("sources[0].start_tls", "StartTLS is for ldap:// URLs")]);
        check_ldap(&ldap("start_tls = \"maybe\""), &[("sources[0].start_tls", "true or false")]);
        check_ldap(
            &with("password_env = \"LDAP_PW\"", "password_env = \"NOT_SET_ANYWHERE\""),
            &[("sources[0].password_env", "the environment variable NOT_SET_ANYWHERE is not set")],
        );
        check_ldap(
            &with("password_env = \"LDAP_PW\"", "password_file = \"/no/such/pw\""),
            &[("sources[0].password_file", "\"/no/such/pw\": cannot read it")],
        );
        check_ldap(
            &with("password_env = \"LDAP_PW\"", "password = \"\""),
            &[("sources[0].password", "the password is empty")],
        );
        check_ldap(&with("password_env = \"LDAP_PW\"", "password = \"inline\""), &[]);
        check_ldap(&ldap("password = \"inline\""), &[("sources[0]", "set only one of password_env, password")]);
        check_ldap(&with("password_env = \"LDAP_PW\"\n", ""), &[("sources[0].bind_dn", "a bind DN needs a password")]);
        check_ldap(
            &with("bind_dn = \"cn=chorus-sync,ou=apps,dc=example,dc=org\"\n", ""),
            &[("sources[0].bind_dn", "missing: the password is for binding as this DN")],
        );
        check_ldap(
            &ldap("ca_file = \"/no/such/ca.pem\""),
            &[("sources[0].ca_file", "\"/no/such/ca.pem\": no such file")],
        );
        check_ldap(
            &with("base_dn = \"ou=people,dc=example,dc=org\"\nfilter = \"(&(objectClass=person)(mail=*))\"\n", ""),
            &[("sources[0].base_dn", "missing"), ("sources[0].filter", "missing")],
        );
        check_ldap(
            &with("filter = \"(&(objectClass=person)(mail=*))\"", "filter = \"(&(objectClass=person)(mail=*)\""),
            &[("sources[0].filter", "not a valid LDAP filter")],
        );
        check_ldap(
            &ldap("page_size = 0\ntimeout_s = -1"),
            &[
                ("sources[0].page_size", "0: must be a whole number from 1 to 2147483647"),
                ("sources[0].timeout_s", "-1: must be a whole number from 1 to 86400"),
            ],
        );
        check_ldap(
            &ldap("path = \"hr.xlsx\"\nsheet = \"x\""),
            &[
                ("sources[0].path", "only for spreadsheet sources"),
                ("sources[0].sheet", "only for spreadsheet sources"),
            ],
        );
        check_ldap(
            &with("[sources.attributes]", "[sources.columns]"),
            &[
                ("sources[0].columns", "directory sources map fields to attributes in [sources.attributes]"),
                ("sources[0].attributes", "missing: map at least the e-mail attribute"),
            ],
        );
        check_ldap(
            &with("email = \"mail\"\n", "emial = \"mail\"\n"),
            &[
                ("sources[0].attributes.emial", "unknown key (did you mean \"email\"?)"),
                ("sources[0].attributes.email", "missing"),
            ],
        );
        check_ldap(
            &format!(
                "{base}[[sources.groups]]\ndn = \"CN=Compta,ou=groups,dc=example,dc=org\"\nservice = \" \"\n\
                 rights = \"factures:tout\"\n[[sources.groups]]\ndn = \" \"\n[[sources.groups]]\ndn = \"cn=x\"\ncolour = 1\n"
            ),
            &[
                ("sources[0].groups[1].dn", "the same group as groups[0]"),
                ("sources[0].groups[1].service", "the service code is empty"),
                ("sources[0].groups[1].rights", "the mode must be consultation or modification"),
                ("sources[0].groups[2].dn", "must not be empty"),
                ("sources[0].groups[2]", "gives neither service nor rights"),
                ("sources[0].groups[3]", "gives neither service nor rights"),
                ("sources[0].groups[3].colour", "unknown key (expected one of: dn, service, rights)"),
            ],
        );
        // Directory keys on a spreadsheet source.
        check(
            &format!("{STRUCTURES}{}", SOURCE.replace("path = \"hr.xlsx\"", "path = \"hr.xlsx\"\nbase_dn = \"dc=x\"")),
            &[("sources[0].base_dn", "only for directory sources (kind = \"ldap\")")],
        );
    }

    #[test]
    fn ldap_passwords_are_never_shown() {
        let c = load_ldap(&ldap("")).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-pw"), "Debug shows the password");
        let shown = render(&c);
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("password_env = \"LDAP_PW\""), "{shown}");
        assert!(shown.contains("[sources.attributes]\n"), "{shown}");
        let again = load_ldap(&shown).unwrap_or_else(|e| panic!("{e}\n{shown}"));
        assert_eq!(render(&again), shown);
        let SourceKind::Ldap(l) = &again.sources[0].kind else { panic!("not ldap") };
        assert_eq!(l.groups.len(), 1);
        let inline = ldap("").replace("password_env = \"LDAP_PW\"", "password = \"s3cr3t-pw\"");
        let shown = render(&load_str(&inline).unwrap());
        assert!(!shown.contains("s3cr3t-pw") && shown.contains("password = \"[REDACTED]\""), "{shown}");
    }

    #[test]
    fn guards_can_be_disabled() {
        let c = load_str(&format!(
            "{STRUCTURES}[guards]\nmax_detach = false\nmax_detach_percent = false\nmin_rows_ratio = false\nmin_fill_ratio = false\ngrace_runs = 0\n"
        ))
        .unwrap();
        assert_eq!(
            c.guards,
            GuardsConfig {
                max_detach: None,
                max_detach_percent: None,
                min_rows_ratio: None,
                min_fill_ratio: None,
                grace_runs: 0,
                ..GuardsConfig::default()
            }
        );
        let c = load_str(&format!("{STRUCTURES}[guards]\nmax_detach_percent = 5\nmin_rows_ratio = 1\n")).unwrap();
        assert_eq!(c.guards.max_detach_percent, Some(5.0));
        assert_eq!(c.guards.min_rows_ratio, Some(1.0));
    }

    #[test]
    fn notifications_section() {
        let none = load_str(STRUCTURES).unwrap();
        assert!(none.notifications.is_none(), "absent section: no mail");
        assert_eq!(none.approvals.housekeeping_schedule, DEFAULT_HOUSEKEEPING_SCHEDULE);
        let text = format!(
            "{STRUCTURES}[approvals]\nhousekeeping_schedule = \"0 30 6 * * Mon-Fri\"\n[notifications]\n\
             smtp_host = \"smtp.acme.fr\"\nusername_env = \"SMTP_USER\"\npassword_env = \"SMTP_PW\"\n\
             from = \"chorus-sync <noreply@acme.fr>\"\nconsole_url = \"https://cs.acme.fr/\"\nremind_after_days = 3\n"
        );
        let env = [("SMTP_USER", "chorus"), ("SMTP_PW", "s3cr3t-smtp")];
        let c = load_env(&text, &env).unwrap();
        let n = c.notifications.as_ref().unwrap();
        assert_eq!((n.smtp_host.as_str(), n.smtp_port, n.tls), ("smtp.acme.fr", 587, SmtpTls::StartTls));
        assert_eq!(n.credentials.as_ref().map(|c| c.password.expose().as_str()), Some("s3cr3t-smtp"));
        assert_eq!((n.console_url.as_deref(), n.remind_after_days), (Some("https://cs.acme.fr"), Some(3)));
        assert_eq!(c.approvals.housekeeping_schedule, "0 30 6 * * Mon-Fri");
        let shown = render(&c);
        assert!(shown.contains("password_env = \"SMTP_PW\""), "{shown}");
        assert!(!shown.contains("s3cr3t-smtp") && !format!("{c:?}").contains("s3cr3t-smtp"), "{shown}");
        // Shown, it loads back the same.
        let again = load_env(&shown, &env).unwrap();
        assert_eq!(render(&again), shown);
        // The environment overrides a key, and the port follows `tls` unless set.
        let c = load_env(&text, &[env[0], env[1], ("CHORUS_SYNC__NOTIFICATIONS__TLS", "tls")]).unwrap();
        assert_eq!(c.notifications.as_ref().map(|n| (n.tls, n.smtp_port)), Some((SmtpTls::Tls, 465)));

        // Every problem at once.
        let bad = format!(
            "{STRUCTURES}[approvals]\nhousekeeping_schedule = \"daily\"\n[notifications]\nsmtp_port = 70000\n\
             tls = \"ssl\"\nusername_env = \"NOT_SET_ANYWHERE\"\nfrom = \"not an address\"\n\
             console_url = \"cs.acme.fr\"\nremind_after_days = 0\nsmtp_hots = \"x\"\nca_file = \"/no/such/ca.pem\"\n"
        );
        check(
            &bad,
            &[
                ("approvals.housekeeping_schedule", "\"daily\" is not a valid cron schedule with seconds"),
                ("notifications.console_url", "\"cs.acme.fr\": expected an http:// or https:// URL"),
                ("notifications.from", "\"not an address\": not a mailbox"),
                ("notifications.ca_file", "\"/no/such/ca.pem\": no such file"),
                ("notifications.password_env", "missing: username_env needs password_env"),
                ("notifications.remind_after_days", "0: must be a whole number of days ≥ 1, or false"),
                ("notifications.smtp_host", "missing (the SMTP server's host name)"),
                ("notifications.smtp_hots", "unknown key (did you mean \"smtp_host\"?)"),
                ("notifications.smtp_port", "70000: must be a port number 1–65535"),
                ("notifications.tls", "\"ssl\": expected starttls, tls or none"),
                ("notifications.username_env", "the environment variable NOT_SET_ANYWHERE is not set"),
            ],
        );
    }

    #[test]
    fn web_oidc_section() {
        assert!(load_str(STRUCTURES).unwrap().web.oidc.is_none(), "absent: passwords only");
        let text = format!(
            "{STRUCTURES}[web.oidc]\nissuer = \"https://sso.acme.fr/realms/acme\"\nclient_id = \"chorus\"\n\
             client_secret_env = \"OIDC_SECRET\"\nredirect_url = \"https://cs.acme.fr/auth/oidc/callback\"\n"
        );
        let env = [("OIDC_SECRET", "s3cr3t-oidc")];
        let c = load_env(&text, &env).unwrap();
        let o = c.web.oidc.as_ref().unwrap();
        assert_eq!((o.issuer.as_str(), o.client_id.as_str()), ("https://sso.acme.fr/realms/acme", "chorus"));
        assert_eq!(o.client_secret.expose(), "s3cr3t-oidc");
        assert_eq!(o.scopes, ["openid", "email", "profile"]);
        assert_eq!((o.email_claim.as_str(), o.require_verified_email), ("email", true));
        assert_eq!(o.button_label, "OpenID Connect");
        let shown = render(&c);
        assert!(shown.contains("client_secret_env = \"OIDC_SECRET\""), "{shown}");
        assert!(!shown.contains("s3cr3t-oidc") && !format!("{c:?}").contains("s3cr3t-oidc"), "{shown}");
        let again = load_env(&shown, &env).unwrap();
        assert_eq!(render(&again), shown);
        // The environment overrides a key of the nested table.
        let c = load_env(&text, &[env[0], ("CHORUS_SYNC__WEB__OIDC__BUTTON_LABEL", "Acme SSO")]).unwrap();
        assert_eq!(c.web.oidc.unwrap().button_label, "Acme SSO");
        // http to this machine only (a test provider).
        let local = text.replace("https://sso.acme.fr", "http://127.0.0.1:8080");
        assert!(load_env(&local, &env).is_ok());

        // Every problem at once.
        let bad = format!(
            "{STRUCTURES}[web]\nlisten = 1\n[web.oidc]\nissuer = \"http://sso.acme.fr\"\nclient_secret_env = \"NOT_SET_ANYWHERE\"\n\
             redirect_url = \"https://cs.acme.fr/callback\"\nscopes = [\"email\"]\nemail_claim = \" \"\n\
             ca_file = \"/no/such/ca.pem\"\nbutton_lable = \"x\"\n"
        );

        check(
            &bad,
            &[
                ("web.listen", "unknown key (expected one of: oidc)"),
                ("web.oidc.button_lable", "unknown key (did you mean \"button_label\"?)"),
                ("web.oidc.issuer", "\"http://sso.acme.fr\": expected an https:// URL (http:// only to localhost)"),
                ("web.oidc.client_id", "missing (the console's client id)"),
                ("web.oidc.client_secret_env", "the environment variable NOT_SET_ANYWHERE is not set"),
                ("web.oidc.redirect_url", "must end with /auth/oidc/callback"),
                ("web.oidc.scopes", "must include \"openid\""),
                ("web.oidc.email_claim", "must not be empty"),
                ("web.oidc.ca_file", "\"/no/such/ca.pem\": no such file"),
            ],
        );
    }

    #[test]
    fn limits_section() {
        let c = load_str(STRUCTURES).unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        let c = load_env(
            &format!("{STRUCTURES}[limits]\nmax_rows = 1000\nmax_zip_ratio = \"50\"\n"),
            &[("CHORUS_SYNC__LIMITS__MAX_FILE_BYTES", "4096")],
        )
        .unwrap();
        assert_eq!(
            c.limits,
            LimitsConfig { max_rows: 1000, max_zip_ratio: 50, max_file_bytes: 4096, ..LimitsConfig::default() }
        );
        check(
            &format!(
                "{STRUCTURES}[limits]\nmax_file_bytes = 0\nmax_rows = false\nmax_cell_chars = 1.5\nmax_sheets = -3\n\
                 max_zip_ratio = 200\nmax_row = 1\n"
            ),
            &[
                ("limits.max_file_bytes", "0: must be a whole number ≥ 1"),
                ("limits.max_rows", "false: must be a whole number ≥ 1"),
                ("limits.max_cell_chars", "1.5: must be a whole number ≥ 1"),
                ("limits.max_sheets", "-3: must be a whole number ≥ 1"),
                ("limits.max_row", "unknown key (did you mean \"max_rows\"?)"),
            ],
        );
        check(
            &format!("{STRUCTURES}[limits]\nmax_inflated_bytes = \"lots\"\n"),
            &[("limits.max_inflated_bytes", "expected a number or false")],
        );
    }

    #[test]
    fn unknown_keys_are_all_reported_with_suggestions() {
        let text = format!(
            "timezon = \"UTC\"\n[store]\nurl = \"sqlite://x.db\"\npassword = \"x\"\n[guards]\nmax_detatch = 3\n{STRUCTURES}\
             mainmanager = \"x@y.fr\"\n[[sources]]\nname = \"hr\"\npath = \"hr.xlsx\"\n[sources.columns]\nemial = \"Mail\"\n\
             email = \"Mail\"\nstructure = \"SIRET\"\n[sources.values]\nright = {{}}\n"
        );
        check(
            &text,
            &[
                ("timezon", "unknown key (did you mean \"timezone\"?)"),
                ("store.password", "unknown key (expected one of: url)"),
                ("guards.max_detatch", "unknown key (did you mean \"max_detach\"?)"),
                ("structures[1].mainmanager", "unknown key (did you mean \"main_manager\"?)"),
                ("sources[0].columns.emial", "unknown key (did you mean \"email\"?)"),
                ("sources[0].values.right", "unknown key (did you mean \"rights\"?)"),
            ],
        );
    }

    #[test]
    fn several_problems_are_all_reported_and_displayed_one_per_line() {
        let text = "timezone = \"Nowhere\"\n[[structures]]\nidentifier = \"1\"\nname = \"\"\nmain_manager = \"x\"\n\
                    [[sources]]\nname = \"hr\"\npath = \"a.csv\"\n[sources.columns]\nemial = \"Mail\"\n";
        let err = load_str(text).unwrap_err();
        let shown = err.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), err.problems.len(), "{shown}");
        assert!(err.problems.len() >= 6, "{shown}");
        assert!(lines.contains(&"chorus-sync.toml: sources[0].columns.emial: unknown key (did you mean \"email\"?)"));
        assert!(lines.contains(&"chorus-sync.toml: sources[0].columns.email: missing (this column is required)"));
        assert!(lines.iter().any(|l| l.starts_with("chorus-sync.toml: timezone: unknown time zone")));
        assert!(lines.iter().any(|l| l.starts_with("chorus-sync.toml: structures[0].identifier: ")));
        assert!(lines.iter().any(|l| l.starts_with("chorus-sync.toml: structures[0].name: must not be empty")));
        assert!(lines.iter().any(|l| l.starts_with("chorus-sync.toml: structures[0].main_manager: ")));
    }

    #[test]
    fn type_errors_name_their_key() {
        check(
            &format!("{STRUCTURES}[[sources]]\nname = \"hr\"\npath = \"a.csv\"\ncolumns = {{ email = [\"a\"] }}\n"),
            &[("sources[0].columns.email", "invalid type: sequence, expected a string")],
        );
        check(
            &format!("store = \"postgres://u:pw@h/db\"\n{STRUCTURES}"),
            &[("store", "expected a table, found a string")],
        );
        check(&format!("{STRUCTURES}[[guards]]\n"), &[("guards", "expected a table, found an array")]);
        check("structures = 3\n", &[("structures", "expected an array of tables ([[structures]]), found an integer")]);
        // A SIRET typed as a number is read as its digits.
        check("[[structures]]\nidentifier = 12345678200010\nname = \"X\"\nmain_manager = \"gp@x.fr\"\n", &[]);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let got = problems(load_str("[store]\nurl = \"sqlite://x.db\"\nbroken = = 1\n"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].0.starts_with("line 3, column "), "{got:?}");
        assert!(got[0].1.starts_with("invalid TOML: "), "{got:?}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = format!("[store]\nurl = \"sqlite://file.db\"\n[guards]\nmax_detach = 5\n{STRUCTURES}{SOURCE}");
        let c = load_env(
            &text,
            &[
                ("CHORUS_SYNC__STORE__URL", "postgres://app:pw@db/chorus"),
                ("CHORUS_SYNC__GUARDS__MAX_DETACH", "10"),
                ("chorus_sync__guards__min_rows_ratio", "false"),
                ("CHORUS_SYNC__GUARDS__MAX_DETACH_PERCENT", "2.5"),
                ("CHORUS_SYNC__TIMEZONE", "UTC"),
                ("CHORUS_SYNC__REPORTS__CSV_DELIMITER", ","),
                ("CHORUS_SYNC__SOURCES__0__PATH", "override.csv"),
                ("CHORUS_SYNC__SOURCES__0__COLUMNS__EMAIL", "Adresse"),
                ("CHORUS_SYNC__STRUCTURES__1__NAME", "ACME Services SAS"),
                ("CHORUS_SYNC_CONFIG", "not an override"),
                ("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.store.url.expose(), "postgres://app:pw@db/chorus");
        assert_eq!(c.guards.max_detach, Some(10));
        assert_eq!(c.guards.min_rows_ratio, None);
        assert_eq!(c.guards.max_detach_percent, Some(2.5));
        assert_eq!(c.timezone, chrono_tz::UTC);
        assert_eq!(c.reports.csv_delimiter, b',');
        let SourceKind::Spreadsheet(s) = &c.sources[0].kind else { panic!("not a spreadsheet") };
        assert_eq!(s.path, PathBuf::from("override.csv"));
        assert_eq!(c.sources[0].columns.get(Field::Email), Some("Adresse"));
        assert_eq!(c.sources[0].columns.get(Field::Structure), Some("SIRET"), "the rest of the entry is kept");
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.catalog.lookup("73282932000074").unwrap().name, "ACME Services SAS");
        assert_eq!(c.catalog.len(), 2);
    }

    #[test]
    fn environment_keeps_leading_zeros() {
        let text = "[[structures]]\nidentifier = \"X\"\nidentifier_type = \"AUTRE\"\nname = \"X\"\nmain_manager = \"gp@x.fr\"\n";
        let c = load_env(text, &[("CHORUS_SYNC__STRUCTURES__0__IDENTIFIER", "007")]).unwrap();
        assert_eq!(c.catalog.iter().next().unwrap().id.as_str(), "007");
    }

    #[test]
    fn environment_problems_name_the_variable() {
        let got = problems(load_env(
            STRUCTURES,
            &[
                ("CHORUS_SYNC__GUARDS__MAX_DETACH", "many"),
                ("CHORUS_SYNC__STORE__URLL", "sqlite://x.db"),
                ("CHORUS_SYNC__SOURCES__3__PATH", "x.csv"),
                ("CHORUS_SYNC__SOURCES__PATH", "x.csv"),
                ("CHORUS_SYNC__STORE____URL", "sqlite://x.db"),
            ],
        ));
        let expect = [
            ("guards.max_detach", "expected a number or false (set by CHORUS_SYNC__GUARDS__MAX_DETACH)"),
            ("store.urll", "unknown key (did you mean \"url\"?) (set by CHORUS_SYNC__STORE__URLL)"),
            ("CHORUS_SYNC__SOURCES__3__PATH", "there is no sources[3] in the file"),
            ("CHORUS_SYNC__SOURCES__PATH", "entries are addressed by index and key"),
            ("CHORUS_SYNC__STORE____URL", "not a key path"),
        ];
        assert_eq!(got.len(), expect.len(), "{got:#?}");
        for (path, msg) in expect {
            assert!(got.iter().any(|(p, m)| p == path && m.contains(msg)), "{path}: {msg} not in {got:#?}");
        }
    }

    #[test]
    fn secrets_stay_hidden() {
        let text = format!("[store]\nurl = \"postgres://u:pw@h/db\"\n{STRUCTURES}");
        let c = load_str(&text).unwrap();
        assert!(!format!("{c:?}").contains("pw@"), "Debug shows the password");
        let shown = render(&c);
        assert!(shown.contains("url = \"postgres://u:[REDACTED]@h/db\""), "{shown}");
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn render_loads_back_to_the_same_config() {
        let original = load_env(
            DESIGN_EXAMPLE,
            &[
                ("CHORUS_SYNC__GUARDS__MAX_DETACH", "false"),
                ("CHORUS_SYNC__SOURCES__0__ENCODING", "latin1"),
                ("CHORUS_SYNC__LIMITS__MAX_ROWS", "7"),
            ],
        )
        .unwrap();
        let shown = render(&original);
        assert_eq!(load_str(&shown).unwrap().limits.max_rows, 7);
        let again = load_str(&shown).unwrap_or_else(|e| panic!("{e}\n{shown}"));
        assert_eq!(render(&again), shown);
        assert_eq!(again.guards.max_detach, None);
        let SourceKind::Spreadsheet(s) = &again.sources[0].kind else { panic!("not a spreadsheet") };
        assert_eq!(s.csv.encoding, Some(encoding_rs::WINDOWS_1252));
        assert_eq!(again.sources[0].values.rights, original.sources[0].values.rights);
        assert!(shown.contains("max_detach = false"), "{shown}");
        assert!(shown.contains("max_detach_percent = 10.0"), "{shown}");
    }

    #[test]
    fn reference_config_loads_without_problems() {
        let text = include_str!("../../config/reference.toml");
        let c = load_from(text, Some(Path::new("config/reference.toml")), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.guards, GuardsConfig::default());
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.store.url.expose(), DEFAULT_STORE_URL);
    }

    #[test]
    fn reference_oidc_example_loads_once_uncommented() {
        let text = include_str!("../../config/reference.toml");
        let start = text.find("# [web.oidc]\n").expect("the OpenID Connect example");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter(|l| !l.starts_with("# ca_file") && (l.contains(" = ") || l.starts_with("# [")))
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let c = load_env(&format!("{STRUCTURES}{block}"), &[("CHORUS_SYNC_OIDC_SECRET", "s")])
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert_eq!(c.web.oidc.map(|o| o.button_label), Some("SSO".to_string()));
    }

    #[test]
    fn reference_directory_example_loads_once_uncommented() {
        let text = include_str!("../../config/reference.toml");
        let start = text.find("# [[sources]]\n# name = \"annuaire\"").expect("the directory example");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        // The example's CA file is not on this machine.
        let block = block.replace("ca_file = \"/etc/ssl/corp-ca.pem\"\n", "");
        let c = load_env(&format!("{STRUCTURES}{block}"), &[("CHORUS_SYNC_LDAP_PASSWORD", "pw")])
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        let SourceKind::Ldap(l) = &c.sources[0].kind else { panic!("not ldap") };
        assert_eq!(l.groups.len(), 1);
        assert_eq!(c.sources[0].columns.get(Field::EndDate), Some("accountExpires"));
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chorus-sync.toml");
        std::fs::write(&path, STRUCTURES).unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.file.as_deref(), Some(path.as_path()));
        assert_eq!(c.catalog.len(), 2);
        std::fs::write(&path, "timezone = \"Nowhere\"\n").unwrap();
        let shown = load(&path).unwrap_err().to_string();
        assert!(shown.starts_with(&format!("{}: timezone: unknown time zone", path.display())), "{shown}");
        let missing = dir.path().join("missing.toml");
        let err = load(&missing).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.to_string().contains("missing.toml: cannot read the configuration file"), "{err}");
    }

    #[test]
    fn odd_input_does_not_panic() {
        assert!(!is_override("CHORUS_SYNé_X"));
        assert!(!is_override("CHORUS_SYNC__"));
        assert!(is_override("chorus_sync__store__url"));
        let got = problems(load_str("name = \"é\" = \"x\"\n"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].0.starts_with("line 1, column "), "{got:?}");
        check(
            &format!("{STRUCTURES}[guards]\ngrace_runs = 2.0\n"),
            &[("guards.grace_runs", "2.0: must be a whole number")],
        );
    }

    #[test]
    fn suggestions() {
        for (key, expect) in [
            ("emial", Some("email")),
            ("EMAIL", Some("email")),
            ("last-name", Some("last_name")),
            ("lastname", Some("last_name")),
            ("surname", None),
            ("", None),
        ] {
            let keys: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
            assert_eq!(suggest(key, &keys), expect, "suggest({key:?})");
        }
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(key_path("a.rights", "Chef de service"), "a.rights.\"Chef de service\"");
        assert_eq!(key_path("", "store"), "store");
    }
}
