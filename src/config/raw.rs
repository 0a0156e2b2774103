//! The configuration as written: every key optional, every value as typed.
//!
//! Nothing here is trusted. Keys are optional even when required so that a
//! missing key is reported by validation along with every other problem,
//! instead of stopping deserialization at the first one.

use std::{collections::BTreeMap, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{self, Visitor},
};

/// Top-level keys, in the order `render` writes them.
pub const TOP_KEYS: &[&str] = &[
    "timezone",
    "store",
    "reports",
    "structures",
    "sources",
    "current",
    "guards",
    "approvals",
    "limits",
    "notifications",
    "web",
];
/// `[web]`: the console; only its `[web.oidc]` table so far.
pub const WEB_KEYS: &[&str] = &["oidc"];
pub const OIDC_KEYS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret_env",
    "redirect_url",
    "scopes",
    "email_claim",
    "require_verified_email",
    "ca_file",
    "button_label",
];
pub const LIMITS_KEYS: &[&str] =
    &["max_file_bytes", "max_rows", "max_cell_chars", "max_sheets", "max_inflated_bytes", "max_zip_ratio"];
pub const APPROVALS_KEYS: &[&str] = &["expire_after_days", "apply_within_days", "housekeeping_schedule"];
pub const NOTIFICATIONS_KEYS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "tls",
    "ca_file",
    "username_env",
    "password_env",
    "from",
    "console_url",
    "remind_after_days",
    "timeout_s",
];
pub const STORE_KEYS: &[&str] = &["url"];
pub const REPORTS_KEYS: &[&str] = &["dir", "csv_delimiter"];
pub const STRUCTURE_KEYS: &[&str] =
    &["identifier", "identifier_type", "name", "main_manager", "delegates", "services", "kind"];
pub const SOURCE_KEYS: &[&str] = &[
    "name",
    "kind",
    "path",
    "sheet",
    "schedule",
    "default_structure",
    "structures",
    "csv_delimiter",
    "encoding",
    "columns",
    "values",
    // Directory (kind = "ldap") keys.
    "url",
    "start_tls",
    "bind_dn",
    "password_env",
    "password_file",
    "password",
    "ca_file",
    "tls_insecure",
    "base_dn",
    "filter",
    "page_size",
    "timeout_s",
    "nested_groups",
    "attributes",
    "groups",
];
/// Keys only a spreadsheet source takes, and keys only a directory source takes.
pub const SPREADSHEET_ONLY_KEYS: &[&str] = &["path", "sheet", "csv_delimiter", "encoding", "columns"];
pub const LDAP_ONLY_KEYS: &[&str] = &[
    "url",
    "start_tls",
    "bind_dn",
    "password_env",
    "password_file",
    "password",
    "ca_file",
    "tls_insecure",
    "base_dn",
    "filter",
    "page_size",
    "timeout_s",
    "nested_groups",
    "attributes",
    "groups",
];
pub const GROUP_KEYS: &[&str] = &["dn", "service", "rights"];
pub const VALUES_KEYS: &[&str] = &["rights", "inactive_status"];
pub const CURRENT_KEYS: &[&str] = &["columns", "sheet", "csv_delimiter", "encoding"];
pub const GUARDS_KEYS: &[&str] = &[
    "max_detach",
    "max_detach_percent",
    "max_attach",
    "max_attach_percent",
    "max_move",
    "max_move_percent",
    "max_rights",
    "max_rights_percent",
    "min_rows_ratio",
    "min_fill_ratio",
    "grace_runs",
];

/// The valid keys of the table at `level`, a path without indices such as
/// `sources.values`; `None` for free-form tables (column and value maps).
pub fn keys_at(level: &str) -> Option<&'static [&'static str]> {
    Some(match level {
        "" => TOP_KEYS,
        "store" => STORE_KEYS,
        "reports" => REPORTS_KEYS,
        "structures" => STRUCTURE_KEYS,
        "sources" => SOURCE_KEYS,
        "sources.values" => VALUES_KEYS,
        "sources.groups" => GROUP_KEYS,
        "current" => CURRENT_KEYS,
        "guards" => GUARDS_KEYS,
        "approvals" => APPROVALS_KEYS,
        "limits" => LIMITS_KEYS,
        "notifications" => NOTIFICATIONS_KEYS,
        "web" => WEB_KEYS,
        "web.oidc" => OIDC_KEYS,
        _ => return None,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawReports {
    pub dir: Option<String>,
    pub csv_delimiter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStructure {
    pub identifier: Option<String>,
    pub identifier_type: Option<String>,
    pub name: Option<String>,
    pub main_manager: Option<String>,
    pub delegates: Option<Vec<String>>,
    pub services: Option<Vec<String>>,
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub path: Option<String>,
    pub sheet: Option<String>,
    pub schedule: Option<String>,
    pub default_structure: Option<String>,
    pub structures: Option<Vec<String>>,
    pub csv_delimiter: Option<String>,
    pub encoding: Option<String>,
    /// Field key → header; keys are checked against `Field` by validation.
    pub columns: Option<BTreeMap<String, String>>,
    pub values: Option<RawValues>,
    pub url: Option<String>,
    pub start_tls: Option<Flag>,
    pub bind_dn: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<String>,
    pub tls_insecure: Option<Flag>,
    pub base_dn: Option<String>,
    pub filter: Option<String>,
    pub page_size: Option<Limit>,
    pub timeout_s: Option<Limit>,
    pub nested_groups: Option<Flag>,
    /// Field key → attribute name, for directory sources.
    pub attributes: Option<BTreeMap<String, String>>,
    pub groups: Option<Vec<RawGroup>>,
}

impl RawSource {
    /// The keys of `keys` this entry sets, to tell which kind they belong to.
    pub fn set_keys(&self, keys: &[&'static str]) -> Vec<&'static str> {
        let set = |k: &str| match k {
            "path" => self.path.is_some(),
            "sheet" => self.sheet.is_some(),
            "csv_delimiter" => self.csv_delimiter.is_some(),
            "encoding" => self.encoding.is_some(),
            "columns" => self.columns.is_some(),
            "url" => self.url.is_some(),
            "start_tls" => self.start_tls.is_some(),
            "bind_dn" => self.bind_dn.is_some(),
            "password_env" => self.password_env.is_some(),
            "password_file" => self.password_file.is_some(),
            "password" => self.password.is_some(),
            "ca_file" => self.ca_file.is_some(),
            "tls_insecure" => self.tls_insecure.is_some(),
            "base_dn" => self.base_dn.is_some(),
            "filter" => self.filter.is_some(),
            "page_size" => self.page_size.is_some(),
            "timeout_s" => self.timeout_s.is_some(),
            "nested_groups" => self.nested_groups.is_some(),
            "attributes" => self.attributes.is_some(),
            "groups" => self.groups.is_some(),
            _ => false,
        };
        keys.iter().copied().filter(|k| set(k)).collect()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGroup {
    pub dn: Option<String>,
    pub service: Option<String>,
    pub rights: Option<String>,
}

/// A boolean; "true"/"false" strings are accepted too, since environment
/// variables are strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        deserializer.deserialize_any(FlagVisitor)
    }
}

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = Flag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
        Ok(Flag(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Flag(true)),
            "false" => Ok(Flag(false)),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawValues {
    pub rights: Option<BTreeMap<String, String>>,
    pub inactive_status: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCurrent {
    pub columns: Option<BTreeMap<String, String>>,
    pub sheet: Option<String>,
    pub csv_delimiter: Option<String>,
    pub encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawApprovals {
    pub expire_after_days: Option<Limit>,
    pub apply_within_days: Option<Limit>,
    pub housekeeping_schedule: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNotifications {
    pub smtp_host: Option<String>,
    pub smtp_port: Option<Limit>,
    pub tls: Option<String>,
    pub ca_file: Option<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    pub from: Option<String>,
    pub console_url: Option<String>,
    pub remind_after_days: Option<Limit>,
    pub timeout_s: Option<Limit>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawWeb {
    pub oidc: Option<RawOidc>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub redirect_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub email_claim: Option<String>,
    pub require_verified_email: Option<Flag>,
    pub ca_file: Option<String>,
    pub button_label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    pub max_file_bytes: Option<Limit>,
    pub max_rows: Option<Limit>,
    pub max_cell_chars: Option<Limit>,
    pub max_sheets: Option<Limit>,
    pub max_inflated_bytes: Option<Limit>,
    pub max_zip_ratio: Option<Limit>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGuards {
    pub max_detach: Option<Limit>,
    pub max_detach_percent: Option<Limit>,
    pub max_attach: Option<Limit>,
    pub max_attach_percent: Option<Limit>,
    pub max_move: Option<Limit>,
    pub max_move_percent: Option<Limit>,
    pub max_rights: Option<Limit>,
    pub max_rights_percent: Option<Limit>,
    pub min_rows_ratio: Option<Limit>,
    pub min_fill_ratio: Option<Limit>,
    pub grace_runs: Option<Limit>,
}

/// A guard value: a number, or `false` to disable the guard. Strings that
/// read as one are accepted too, since environment variables are strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Off,
    Int(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Limit, D::Error> {
        deserializer.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl Visitor<'_> for LimitVisitor {
    type Value = Limit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Limit, E> {
        if v { Err(E::invalid_value(de::Unexpected::Bool(v), &self)) } else { Ok(Limit::Off) }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
        Ok(Limit::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
        i64::try_from(v).map(Limit::Int).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Limit, E> {
        Ok(Limit::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Limit, E> {
        let t = v.trim();
        if t.eq_ignore_ascii_case("false") {
            Ok(Limit::Off)
        } else if let Ok(i) = t.parse::<i64>() {
            Ok(Limit::Int(i))
        } else {
            // `parse::<f64>` would also take "nan" and "inf", which no guard means.
            match t.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Limit::Float(f)),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TOML value with every key of `keys`, to check that the key lists
    /// match the structs (an ignored key would be a list naming a field the
    /// struct lacks).
    fn ignored_keys<T: for<'de> Deserialize<'de>>(keys: &[&str]) -> Vec<String> {
        let mut table = toml::Table::new();
        for k in keys {
            table.insert((*k).to_string(), toml::Value::Integer(0));
        }
        let mut ignored = Vec::new();
        // The values have the wrong type on purpose: only the keys matter.
        let _: Result<T, toml::de::Error> =
            serde_ignored::deserialize(toml::Value::Table(table), |p| ignored.push(p.to_string()));
        ignored
    }

    #[test]
    fn key_lists_match_the_structs() {
        fn check<T: for<'de> Deserialize<'de>>(keys: &[&str]) {
            // One key at a time: a type error stops deserialization.
            for k in keys {
                let ignored = ignored_keys::<T>(&[k]);
                assert!(ignored.is_empty(), "{k} is not a field: {ignored:?}");
            }
            assert_eq!(ignored_keys::<T>(&["no_such_key"]), vec!["no_such_key".to_string()]);
        }
        check::<RawStore>(STORE_KEYS);
        check::<RawReports>(REPORTS_KEYS);
        check::<RawStructure>(STRUCTURE_KEYS);
        check::<RawSource>(SOURCE_KEYS);
        check::<RawValues>(VALUES_KEYS);
        check::<RawGroup>(GROUP_KEYS);
        for k in SPREADSHEET_ONLY_KEYS.iter().chain(LDAP_ONLY_KEYS) {
            assert!(SOURCE_KEYS.contains(k), "{k}");
        }
        check::<RawCurrent>(CURRENT_KEYS);
        check::<RawGuards>(GUARDS_KEYS);
        check::<RawLimits>(LIMITS_KEYS);
        check::<RawApprovals>(APPROVALS_KEYS);
        check::<RawNotifications>(NOTIFICATIONS_KEYS);
        check::<RawWeb>(WEB_KEYS);
        check::<RawOidc>(OIDC_KEYS);
    }

    #[test]
    fn limits() {
        let parse = |s: &str| toml::from_str::<RawGuards>(&format!("max_detach = {s}")).map(|g| g.max_detach.unwrap());
        assert_eq!(parse("false").unwrap(), Limit::Off);
        assert_eq!(parse("12").unwrap(), Limit::Int(12));
        assert_eq!(parse("-1").unwrap(), Limit::Int(-1));
        assert_eq!(parse("2.5").unwrap(), Limit::Float(2.5));
        assert_eq!(parse("\" 7 \"").unwrap(), Limit::Int(7));
        assert_eq!(parse("\"FALSE\"").unwrap(), Limit::Off);
        assert!(parse("true").is_err());
        assert!(parse("\"nan\"").is_err());
        assert!(parse("\"lots\"").is_err());
    }
}
