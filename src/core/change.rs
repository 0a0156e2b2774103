//! Changes: one difference between the source and the portal, to be raised
//! as an approval request.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::anomaly::Location;
use crate::domain::{Email, PersonName, Placement, ServiceCode, StructureId};

/// The portal's four operations. The order is the report order within one
/// person and service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Attach,
    Detach,
    Move,
    Rights,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 4] = [ChangeKind::Attach, ChangeKind::Detach, ChangeKind::Move, ChangeKind::Rights];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Attach => "attach",
            ChangeKind::Detach => "detach",
            ChangeKind::Move => "move",
            ChangeKind::Rights => "rights",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the source says a person has left.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeftWhy {
    /// End date on or before today, in the configured time zone.
    EndDate(NaiveDate),
    /// A status listed in `inactive_status`.
    Status(String),
    /// A disabled directory account.
    Disabled,
    /// A directory account whose expiry date has passed.
    Expired(NaiveDate),
}

/// Why a change is proposed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// In the source, not attached yet.
    New,
    /// In the source under another service.
    ServiceChanged,
    /// In the source with other rights.
    RightsChanged,
    /// The source says they have left: detached at once.
    Left(LeftWhy),
    /// Missing from the source for this many complete runs in a row.
    Absent { runs: u32 },
    /// Still in the structure per the source, but no longer in this service.
    ServiceDropped,
}

impl Reason {
    /// The part of the reason that counts as a fact when deciding whether a
    /// refused change may be raised again.
    pub fn category(&self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::ServiceChanged => "service_changed",
            Reason::RightsChanged => "rights_changed",
            Reason::Left(_) => "left",
            Reason::Absent { .. } => "absent",
            Reason::ServiceDropped => "service_dropped",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::New => f.write_str("new in source"),
            Reason::ServiceChanged => f.write_str("service changed in source"),
            Reason::RightsChanged => f.write_str("rights changed in source"),
            Reason::Left(LeftWhy::EndDate(d)) => write!(f, "left: end date {d}"),
            Reason::Left(LeftWhy::Status(s)) => write!(f, "left: status {s}"),
            Reason::Left(LeftWhy::Disabled) => f.write_str("left: account disabled"),
            Reason::Left(LeftWhy::Expired(d)) => write!(f, "left: account expired {d}"),
            Reason::Absent { runs: 1 } => f.write_str("absent from source"),
            Reason::Absent { runs } => write!(f, "absent from source for {runs} runs"),
            Reason::ServiceDropped => f.write_str("no longer in this service in source"),
        }
    }
}

/// What makes two changes "the same change": who, where, from what, to what.
/// A pending request with the same key is kept rather than raised again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeKey {
    pub structure: StructureId,
    pub email: Email,
    pub before: Option<Placement>,
    pub after: Option<Placement>,
}

impl ChangeKey {
    /// `None` for a key that changes nothing (before == after, or neither).
    pub fn kind(&self) -> Option<ChangeKind> {
        match (&self.before, &self.after) {
            (None, Some(_)) => Some(ChangeKind::Attach),
            (Some(_), None) => Some(ChangeKind::Detach),
            (Some(b), Some(a)) if b.service != a.service => Some(ChangeKind::Move),
            (Some(b), Some(a)) if b.rights != a.rights => Some(ChangeKind::Rights),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub key: ChangeKey,
    pub reason: Reason,
    pub name: PersonName,
    /// The source row or entry behind the change, when there is one.
    pub origin: Option<Location>,
}

impl Change {
    /// Builds a change from its key; `None` when the key changes nothing.
    pub fn new(key: ChangeKey, reason: Reason, name: PersonName, origin: Option<Location>) -> Option<Change> {
        Some(Change { kind: key.kind()?, key, reason, name, origin })
    }

    /// The service the change is about: where the person goes, or for a
    /// detach where they leave.
    pub fn service(&self) -> Option<&ServiceCode> {
        match (&self.key.after, &self.key.before) {
            (Some(after), _) => after.service.as_ref(),
            (None, Some(before)) => before.service.as_ref(),
            (None, None) => None,
        }
    }

    /// Report order: structure, service, e-mail, kind (DESIGN.md §6).
    pub fn sort_key(&self) -> (&StructureId, Option<&ServiceCode>, &Email, ChangeKind) {
        (&self.key.structure, self.service(), &self.key.email, self.kind)
    }
}
