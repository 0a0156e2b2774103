//! The structures this organisation manages, as configured. Only they are
//! ever targets: a SIRET that is not here is a client's, not ours.

use std::collections::BTreeMap;

use crate::domain::{Email, IdentifierType, ServiceCode, StructureId, text::fold};

#[derive(Debug, Clone)]
pub struct StructureInfo {
    pub id: StructureId,
    pub identifier_type: IdentifierType,
    pub name: String,
    pub main_manager: Email,
    /// People besides the main manager who may decide on requests.
    pub delegates: Vec<Email>,
    /// Known service codes; `None` when the configuration lists none, in which
    /// case any well-formed code is accepted.
    pub services: Option<Vec<ServiceCode>>,
}

impl StructureInfo {
    /// May `who` decide on this structure's requests?
    pub fn may_decide(&self, who: &Email) -> bool {
        *who == self.main_manager || self.delegates.contains(who)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructureLookupError {
    #[error("{0}")]
    Invalid(String),
    #[error("structure {0:?} is not one of the configured structures")]
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceLookupError {
    #[error("{0}")]
    Invalid(String),
    #[error("service {code:?} is not a known service of structure {structure} (known: {known})")]
    Unknown { code: String, structure: StructureId, known: String },
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    structures: BTreeMap<StructureId, StructureInfo>,
    /// Folded service code → configured spelling, per structure.
    services: foldhash::HashMap<StructureId, foldhash::HashMap<String, ServiceCode>>,
}

impl Catalog {
    /// Builds the catalog; identifiers are unique (configuration validation
    /// guarantees it, a later duplicate replaces an earlier one).
    pub fn new(structures: impl IntoIterator<Item = StructureInfo>) -> Catalog {
        let mut catalog = Catalog::default();
        for s in structures {
            if let Some(list) = &s.services {
                let by_folded = list.iter().map(|c| (fold(c.as_str()), c.clone())).collect();
                catalog.services.insert(s.id.clone(), by_folded);
            }
            catalog.structures.insert(s.id.clone(), s);
        }
        catalog
    }

    pub fn get(&self, id: &StructureId) -> Option<&StructureInfo> {
        self.structures.get(id)
    }

    /// The structures `who` may decide for (as main manager or delegate):
    /// a manager's queue, in the CLI and in the web console.
    pub fn decidable_by(&self, who: &Email) -> Vec<StructureId> {
        self.iter().filter(|s| s.may_decide(who)).map(|s| s.id.clone()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StructureInfo> {
        self.structures.values()
    }

    pub fn ids(&self) -> impl Iterator<Item = &StructureId> {
        self.structures.keys()
    }

    pub fn len(&self) -> usize {
        self.structures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.structures.is_empty()
    }

    /// Finds the configured structure a cell names. A SIRET may be written
    /// with separators; a well-formed SIRET that is not configured is
    /// `Unknown` (a client's), a malformed one `Invalid`.
    pub fn lookup(&self, raw: &str) -> Result<&StructureInfo, StructureLookupError> {
        let trimmed = raw.trim();
        let compact: String = trimmed.chars().filter(|c| !(c.is_whitespace() || matches!(c, '.' | '-'))).collect();
        for candidate in [trimmed, compact.as_str()] {
            if let Some(s) = self.structures.values().find(|s| s.id.as_str() == candidate) {
                return Ok(s);
            }
        }
        let looks_like_siret = !compact.is_empty() && compact.chars().all(|c| c.is_ascii_digit());
        if looks_like_siret {
            StructureId::parse(IdentifierType::Siret, trimmed).map_err(StructureLookupError::Invalid)?;
        }
        Err(StructureLookupError::Unknown(trimmed.to_string()))
    }

    /// Resolves a typed service code to the configured spelling, ignoring
    /// case, accents and extra spaces.
    pub fn service(&self, structure: &StructureInfo, raw: &str) -> Result<ServiceCode, ServiceLookupError> {
        let code = ServiceCode::parse(raw).map_err(|e| ServiceLookupError::Invalid(format!("{raw:?}: {e}")))?;
        match self.services.get(&structure.id) {
            None => Ok(code),
            Some(known) => known.get(&fold(code.as_str())).cloned().ok_or_else(|| {
                let mut list: Vec<&str> = known.values().map(ServiceCode::as_str).collect();
                list.sort_unstable();
                ServiceLookupError::Unknown {
                    code: code.as_str().to_string(),
                    structure: structure.id.clone(),
                    known: if list.is_empty() { "none".into() } else { list.join(", ") },
                }
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Catalog {
        let email = |s: &str| Email::parse(s).unwrap();
        Catalog::new([
            StructureInfo {
                id: StructureId::parse(IdentifierType::Siret, "12345678200010").unwrap(),
                identifier_type: IdentifierType::Siret,
                name: "ACME France".into(),
                main_manager: email("gp@acme.fr"),
                delegates: vec![email("adjoint@acme.fr")],
                services: Some(vec![ServiceCode::parse("COMPTA").unwrap(), ServiceCode::parse("ACHATS").unwrap()]),
            },
            StructureInfo {
                id: StructureId::parse(IdentifierType::Ridet, "R-1234").unwrap(),
                identifier_type: IdentifierType::Ridet,
                name: "ACME Nouméa".into(),
                main_manager: email("gp@acme.nc"),
                delegates: vec![],
                services: None,
            },
        ])
    }

    #[test]
    fn lookup_structures() {
        let c = sample();
        assert_eq!(c.lookup("12345678200010").unwrap().name, "ACME France");
        assert_eq!(c.lookup(" 123 456 782 00010 ").unwrap().name, "ACME France");
        assert_eq!(c.lookup("R-1234").unwrap().name, "ACME Nouméa");
        assert_eq!(c.lookup("73282932000074").unwrap_err(), StructureLookupError::Unknown("73282932000074".into()));
        assert!(matches!(c.lookup("12345678200011"), Err(StructureLookupError::Invalid(_))));
        assert!(matches!(c.lookup("Client SA"), Err(StructureLookupError::Unknown(_))));
    }

    #[test]
    fn lookup_services() {
        let c = sample();
        let acme = c.lookup("12345678200010").unwrap();
        assert_eq!(c.service(acme, " compta ").unwrap().as_str(), "COMPTA");
        assert!(matches!(c.service(acme, "RH"), Err(ServiceLookupError::Unknown { .. })));
        assert!(matches!(c.service(acme, " "), Err(ServiceLookupError::Invalid(_))));
        let noumea = c.lookup("R-1234").unwrap();
        assert_eq!(c.service(noumea, "anything").unwrap().as_str(), "anything");
        assert!(acme.may_decide(&Email::parse("adjoint@acme.fr").unwrap()));
        assert!(!acme.may_decide(&Email::parse("gp@acme.nc").unwrap()));
    }
}
