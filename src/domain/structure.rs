//! Structures: the organisations of Chorus Pro, keyed by an identifier.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Serialize};

/// SIREN of La Poste, whose establishments follow a different SIRET checksum.
const LA_POSTE_SIREN: &str = "356000000";

/// How a structure is identified in the portal (`type d'identifiant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdentifierType {
    Siret,
    UeHorsFrance,
    HorsUe,
    Ridet,
    Tahiti,
    Autre,
    Particulier,
}

impl IdentifierType {
    pub const ALL: [IdentifierType; 7] = [
        IdentifierType::Siret,
        IdentifierType::UeHorsFrance,
        IdentifierType::HorsUe,
        IdentifierType::Ridet,
        IdentifierType::Tahiti,
        IdentifierType::Autre,
        IdentifierType::Particulier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Siret => "SIRET",
            IdentifierType::UeHorsFrance => "UE_HORS_FRANCE",
            IdentifierType::HorsUe => "HORS_UE",
            IdentifierType::Ridet => "RIDET",
            IdentifierType::Tahiti => "TAHITI",
            IdentifierType::Autre => "AUTRE",
            IdentifierType::Particulier => "PARTICULIER",
        }
    }
}

impl FromStr for IdentifierType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdentifierType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let all: Vec<_> = IdentifierType::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown identifier type {s:?} (expected one of {})", all.join(", "))
        })
    }
}

/// A French establishment number: 14 digits with a valid checksum.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Siret(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiretError {
    #[error("a SIRET has 14 digits, this has {0}")]
    Length(usize),
    #[error("a SIRET has only digits")]
    NotDigits,
    #[error("the SIRET checksum is wrong (mistyped digit?)")]
    Checksum,
}

impl Siret {
    /// Accepts the common ways people write a SIRET: with spaces, non-breaking
    /// spaces, dots or dashes between the digit groups.
    pub fn parse(raw: &str) -> Result<Siret, SiretError> {
        let digits: String = raw.chars().filter(|c| !(c.is_whitespace() || matches!(c, '.' | '-'))).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(SiretError::NotDigits);
        }
        if digits.len() != 14 {
            return Err(SiretError::Length(digits.len()));
        }
        if luhn_valid(&digits) || (digits.starts_with(LA_POSTE_SIREN) && digit_sum(&digits).is_multiple_of(5)) {
            Ok(Siret(digits))
        } else {
            Err(SiretError::Checksum)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn digit_sum(digits: &str) -> u32 {
    digits.bytes().map(|b| u32::from(b - b'0')).sum()
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The identifier of a configured structure, in its canonical spelling
/// (a SIRET without separators). Only configuration creates these, so holding
/// one means the structure is managed by this organisation.
#[derive(Clone, Eq, Serialize)]
#[serde(transparent)]
pub struct StructureId(Arc<str>);

// Ids of one structure almost always share one allocation (the catalog's, or
// the store reader's interned one): a pointer check settles most comparisons
// of a million-row sort before any byte is compared.
impl PartialEq for StructureId {
    fn eq(&self, other: &StructureId) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Ord for StructureId {
    fn cmp(&self, other: &StructureId) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) { std::cmp::Ordering::Equal } else { self.0.cmp(&other.0) }
    }
}

// By the text, as equality is (the pointer check only short-cuts it).
impl std::hash::Hash for StructureId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for StructureId {
    fn partial_cmp(&self, other: &StructureId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl StructureId {
    /// Canonical spelling of `raw` for an identifier type: SIRETs are checked
    /// and stripped of separators; other identifiers are trimmed.
    pub fn parse(kind: IdentifierType, raw: &str) -> Result<StructureId, String> {
        match kind {
            IdentifierType::Siret => Siret::parse(raw)
                .map(|s| StructureId(s.0.into()))
                .map_err(|e| format!("{raw:?} is not a valid SIRET: {e}")),
            _ => {
                let t = raw.trim();
                if t.is_empty() || t.chars().any(char::is_control) {
                    Err(format!("{raw:?} is not a valid {} identifier", kind.as_str()))
                } else {
                    Ok(StructureId(t.into()))
                }
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StructureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StructureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StructureId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, SiretError>) {
        let got = Siret::parse(input);
        assert_eq!(got.as_ref().map(Siret::as_str), expect.as_ref().map(|s| *s), "parse({input:?})");
    }

    #[test]
    fn siret_checksums() {
        check("12345678200010", Ok("12345678200010"));
        check("123 456 782 00010", Ok("12345678200010"));
        check("123\u{a0}456\u{a0}782\u{a0}00010", Ok("12345678200010"));
        check("123.456.782-00010", Ok("12345678200010"));
        check("73282932000074", Ok("73282932000074"));
        check("12345678200011", Err(SiretError::Checksum));
        check("1234567820001", Err(SiretError::Length(13)));
        check("123456782000100", Err(SiretError::Length(15)));
        check("1234567820001A", Err(SiretError::NotDigits));
        check("", Err(SiretError::Length(0)));
    }

    #[test]
    fn la_poste_establishments_use_the_digit_sum_rule() {
        // Digit sum 3+5+6+0+0+0+0+0+0+0+0+0+0+1 = 15, a multiple of 5, but not Luhn-valid.
        assert!(!luhn_valid("35600000000001"));
        check("35600000000001", Ok("35600000000001"));
        // The La Poste SIREN itself with a digit sum that is not a multiple of 5.
        check("35600000000002", Err(SiretError::Checksum));
        // The digit-sum rule does not apply outside La Poste.
        assert!(!luhn_valid("12300000000009"));
        check("12300000000009", Err(SiretError::Checksum));
    }

    #[test]
    fn structure_ids() {
        assert_eq!(StructureId::parse(IdentifierType::Siret, "123 456 782 00010").unwrap().as_str(), "12345678200010");
        assert!(StructureId::parse(IdentifierType::Siret, "12345678200011").is_err());
        assert_eq!(StructureId::parse(IdentifierType::Ridet, " 1234567 ").unwrap().as_str(), "1234567");
        assert!(StructureId::parse(IdentifierType::Autre, "  ").is_err());
        assert_eq!("siret".parse::<IdentifierType>(), Ok(IdentifierType::Siret));
        assert!("SIREN".parse::<IdentifierType>().is_err());
    }
}
