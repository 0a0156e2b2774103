//! Domain values that parse instead of validate: holding one means it is valid.

pub mod email;
pub mod intern;
pub mod rights;
pub mod service;
pub mod structure;
pub mod text;

pub use email::{Email, EmailError};
pub use intern::Interner;
pub use rights::{Mode, Rights, RightsError};
pub use service::{ServiceCode, ServiceCodeError};
pub use structure::{IdentifierType, Siret, SiretError, StructureId};

/// Where a person sits inside a structure: a service (or the structure
/// itself, the portal's *maille structure*) and the rights they hold there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    pub service: Option<ServiceCode>,
    pub rights: Rights,
}

impl Placement {
    /// `COMPTA [factures:modification]`, `(structure)` for structure level.
    pub fn label(&self) -> String {
        let service = self.service.as_ref().map_or("(structure)", ServiceCode::as_str);
        if self.rights.is_empty() { service.to_string() } else { format!("{service} [{}]", self.rights) }
    }
}

/// One attachment of a person to a structure, at structure or service level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attachment {
    pub structure: StructureId,
    pub email: Email,
    pub placement: Placement,
}

/// A person's name as a source spells it; only for people reading reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonName {
    pub last_name: Option<Box<str>>,
    pub first_name: Option<Box<str>>,
}

impl PersonName {
    pub fn is_empty(&self) -> bool {
        self.last_name.is_none() && self.first_name.is_none()
    }

    /// "Marie Dupont", or `None` when the source gave no name.
    pub fn display(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.to_string()),
            (None, None) => None,
        }
    }
}
