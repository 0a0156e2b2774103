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
pub const TOP_KEYS: &[&str] =
    &["timezone", "store", "reports", "structures", "sources", "current", "guards", "approvals", "limits"];
pub const LIMITS_KEYS: &[&str] =
    &["max_file_bytes", "max_rows", "max_cell_chars", "max_sheets", "max_inflated_bytes", "max_zip_ratio"];
pub const APPROVALS_KEYS: &[&str] = &["expire_after_days"];
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
];
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
        "current" => CURRENT_KEYS,
        "guards" => GUARDS_KEYS,
        "approvals" => APPROVALS_KEYS,
        "limits" => LIMITS_KEYS,
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
        check::<RawCurrent>(CURRENT_KEYS);
        check::<RawGuards>(GUARDS_KEYS);
        check::<RawLimits>(LIMITS_KEYS);
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
