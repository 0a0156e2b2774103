//! `check-config` output: the resolved configuration as TOML, defaults filled
//! in and secrets masked. It loads back to the same configuration (but for a
//! masked password).

use super::{
    Config, CsvOptions, LdapSource, NotificationsConfig, OidcConfig, PasswordFrom, SourceKind, load::key_path,
};
use crate::{core::record::ColumnMap, secret::mask_url};

pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if let Some(file) = &config.file {
        line(format!("# resolved from {} and CHORUS_SYNC__* environment variables", file.display()));
    }
    line(format!("timezone = {}", q(config.timezone.name())));
    line(String::new());
    line("[store]".into());
    line(format!("url = {}", q(&mask_url(config.store.url.expose()))));
    line(String::new());
    line("[reports]".into());
    line(format!("dir = {}", q(&config.reports.dir.to_string_lossy())));
    line(format!("csv_delimiter = {}", q(&char::from(config.reports.csv_delimiter).to_string())));
    for s in config.catalog.iter() {
        line(String::new());
        line("[[structures]]".into());
        line(format!("identifier = {}", q(s.id.as_str())));
        line(format!("identifier_type = {}", q(s.identifier_type.as_str())));
        line(format!("name = {}", q(&s.name)));
        line(format!("main_manager = {}", q(s.main_manager.as_str())));
        line(format!("delegates = {}", list(s.delegates.iter().map(|d| d.as_str()))));
        match &s.services {
            Some(services) => line(format!("services = {}", list(services.iter().map(|c| c.as_str())))),
            None => line("# services: not listed, any well-formed code is accepted".into()),
        }
    }
    for s in &config.sources {
        line(String::new());
        line("[[sources]]".into());
        line(format!("name = {}", q(&s.name)));
        match &s.kind {
            SourceKind::Spreadsheet(sheet) => {
                line(format!("kind = {}", q("spreadsheet")));
                line(format!("path = {}", q(&sheet.path.to_string_lossy())));
                if let Some(name) = &sheet.sheet {
                    line(format!("sheet = {}", q(name)));
                }
                csv_lines(&mut line, &sheet.csv);
            }
            SourceKind::Ldap(ldap) => ldap_lines(&mut line, ldap),
        }
        if let Some(schedule) = &s.schedule {
            line(format!("schedule = {}", q(schedule)));
        }
        if let Some(d) = &s.default_structure {
            line(format!("default_structure = {}", q(d.as_str())));
        }
        line(format!("structures = {}", list(s.scope.iter().map(|id| id.as_str()))));
        match &s.kind {
            SourceKind::Spreadsheet(_) => line("[sources.columns]".into()),
            SourceKind::Ldap(_) => line("[sources.attributes]".into()),
        }
        columns(&mut line, &s.columns);
        if !s.values.rights.is_empty() || !s.values.inactive_status.is_empty() {
            line("[sources.values]".into());
            let mut rights: Vec<_> = s.values.rights.iter().collect();
            rights.sort();
            let items: Vec<String> = rights.iter().map(|(k, v)| format!("{} = {}", key_path("", k), q(v))).collect();
            let rights = if items.is_empty() { "{}".to_string() } else { format!("{{ {} }}", items.join(", ")) };
            line(format!("rights = {rights}"));
            line(format!("inactive_status = {}", list(s.values.inactive_status.iter().map(String::as_str))));
        }
        if let SourceKind::Ldap(ldap) = &s.kind {
            for g in &ldap.groups {
                line("[[sources.groups]]".into());
                line(format!("dn = {}", q(&g.dn)));
                if let Some(service) = &g.service {
                    line(format!("service = {}", q(service)));
                }
                if let Some(rights) = &g.rights {
                    line(format!("rights = {}", q(rights)));
                }
            }
        }
    }
    line(String::new());
    line("[current]".into());
    if let Some(name) = &config.current.sheet {
        line(format!("sheet = {}", q(name)));
    }
    csv_lines(&mut line, &config.current.csv);
    line("[current.columns]".into());
    columns(&mut line, &config.current.columns);
    line(String::new());
    let g = &config.guards;
    line("[guards]".into());
    for kind in crate::core::change::ChangeKind::ALL {
        let (max, percent) = g.limits(kind);
        line(format!("max_{kind} = {}", max.map_or("false".to_string(), |n| n.to_string())));
        line(format!("max_{kind}_percent = {}", percent.map_or("false".to_string(), float)));
    }
    line(format!("min_rows_ratio = {}", g.min_rows_ratio.map_or("false".to_string(), float)));
    line(format!("min_fill_ratio = {}", g.min_fill_ratio.map_or("false".to_string(), float)));
    line(format!("grace_runs = {}", g.grace_runs));
    line(String::new());
    line("[approvals]".into());
    let days = |d: Option<u32>| d.map_or("false".to_string(), |d| d.to_string());
    line(format!("expire_after_days = {}", days(config.approvals.expire_after_days)));
    line(format!("apply_within_days = {}", days(config.approvals.apply_within_days)));
    line(format!("housekeeping_schedule = {}", q(&config.approvals.housekeeping_schedule)));
    line(String::new());
    let l = &config.limits;
    line("[limits]".into());
    line(format!("max_file_bytes = {}", l.max_file_bytes));
    line(format!("max_rows = {}", l.max_rows));
    line(format!("max_cell_chars = {}", l.max_cell_chars));
    line(format!("max_sheets = {}", l.max_sheets));
    line(format!("max_inflated_bytes = {}", l.max_inflated_bytes));
    line(format!("max_zip_ratio = {}", l.max_zip_ratio));
    match &config.notifications {
        Some(n) => {
            line(String::new());
            notification_lines(&mut line, n, days);
        }
        None => {
            line(String::new());
            line("# [notifications]: absent, no e-mail is sent".into());
        }
    }
    line(String::new());
    match &config.web.oidc {
        Some(o) => oidc_lines(&mut line, o),
        None => line("# [web.oidc]: absent, sign-in with passwords only".into()),
    }
    out
}

/// The provider's keys; the client secret only by the name of its variable.
fn oidc_lines(line: &mut impl FnMut(String), o: &OidcConfig) {
    line("[web.oidc]".into());
    line(format!("issuer = {}", q(&o.issuer)));
    line(format!("client_id = {}", q(&o.client_id)));
    line(format!("client_secret_env = {}", q(&o.client_secret_env)));
    line(format!("redirect_url = {}", q(&o.redirect_url)));
    line(format!("scopes = {}", list(o.scopes.iter().map(String::as_str))));
    line(format!("email_claim = {}", q(&o.email_claim)));
    line(format!("require_verified_email = {}", o.require_verified_email));
    match &o.ca_file {
        Some(f) => line(format!("ca_file = {}", q(&f.to_string_lossy()))),
        None => line("# ca_file: the system's trusted roots".into()),
    }
    line(format!("button_label = {}", q(&o.button_label)));
}

/// The SMTP keys; credentials only by the names of their variables.
fn notification_lines(line: &mut impl FnMut(String), n: &NotificationsConfig, days: impl Fn(Option<u32>) -> String) {
    line("[notifications]".into());
    line(format!("smtp_host = {}", q(&n.smtp_host)));
    line(format!("smtp_port = {}", n.smtp_port));
    line(format!("tls = {}", q(n.tls.as_str())));
    match &n.ca_file {
        Some(f) => line(format!("ca_file = {}", q(&f.to_string_lossy()))),
        None => line("# ca_file: the system's trusted roots".into()),
    }
    match &n.credentials {
        Some(c) => {
            line(format!("username_env = {}", q(&c.username_env)));
            line(format!("password_env = {}", q(&c.password_env)));
        }
        None => line("# no username_env / password_env: no authentication".into()),
    }
    line(format!("from = {}", q(&n.from)));
    if let Some(url) = &n.console_url {
        line(format!("console_url = {}", q(url)));
    }
    line(format!("remind_after_days = {}", days(n.remind_after_days)));
    line(format!("timeout_s = {}", n.timeout.as_secs()));
}

/// The directory keys; the password itself never: where it comes from, or a mask.
fn ldap_lines(line: &mut impl FnMut(String), ldap: &LdapSource) {
    line(format!("kind = {}", q("ldap")));
    line(format!("url = {}", q(&ldap.url)));
    line(format!("start_tls = {}", ldap.start_tls));
    if let Some(dn) = &ldap.bind_dn {
        line(format!("bind_dn = {}", q(dn)));
    }
    match &ldap.password_from {
        Some(PasswordFrom::Env(name)) => line(format!("password_env = {}", q(name))),
        Some(PasswordFrom::File(path)) => line(format!("password_file = {}", q(&path.to_string_lossy()))),
        Some(PasswordFrom::Inline) => line(format!("password = {}", q("[REDACTED]"))),
        None => line("# no bind: anonymous".into()),
    }
    match &ldap.ca_file {
        Some(f) => line(format!("ca_file = {}", q(&f.to_string_lossy()))),
        None => line("# ca_file: the system's trusted roots".into()),
    }
    line(format!("tls_insecure = {}", ldap.tls_insecure));
    line(format!("base_dn = {}", q(&ldap.base_dn)));
    line(format!("filter = {}", q(&ldap.filter)));
    line(format!("page_size = {}", ldap.page_size));
    line(format!("timeout_s = {}", ldap.timeout.as_secs()));
    line(format!("nested_groups = {}", ldap.nested_groups));
}

fn csv_lines(line: &mut impl FnMut(String), csv: &CsvOptions) {
    match csv.delimiter {
        Some(d) => line(format!("csv_delimiter = {}", q(&char::from(d).to_string()))),
        None => line("# csv_delimiter: detected".into()),
    }
    match csv.encoding {
        Some(e) => line(format!("encoding = {}", q(e.name()))),
        None => line("# encoding: detected".into()),
    }
}

fn columns(line: &mut impl FnMut(String), map: &ColumnMap) {
    for (field, header) in map.iter() {
        line(format!("{} = {}", field.key(), q(header)));
    }
}

/// A TOML string literal, escaped.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", items.map(q).collect::<Vec<_>>().join(", "))
}

/// A float that reads back as a float (`10.0`, not `10`).
fn float(f: f64) -> String {
    let s = f.to_string();
    if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") }
}
