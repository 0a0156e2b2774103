//! The diff's output: what should change, and what the store knows already.

use std::collections::BTreeMap;

use super::{
    anomaly::Anomaly,
    approval::{RequestId, RequestState},
    change::{Change, ChangeKey, ChangeKind},
};
use crate::domain::{Email, StructureId};

/// A request the store already holds for a change that has not happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub id: RequestId,
    /// `Pending` or `Approved`.
    pub state: RequestState,
    pub key: ChangeKey,
}

/// A refused request, with the facts it was refused on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedChange {
    pub id: RequestId,
    pub key: ChangeKey,
    pub reason_category: String,
}

/// What becomes of a planned change when the run is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Disposition {
    /// A new approval request is raised.
    Raise,
    /// The same change is already pending: kept, not duplicated.
    Pending(RequestId),
    /// Already approved, waiting to be applied in the portal.
    Approved(RequestId),
    /// Refused earlier on the same facts: not raised again.
    Refused(RequestId),
}

impl Disposition {
    pub fn request_id(self) -> Option<RequestId> {
        match self {
            Disposition::Raise => None,
            Disposition::Pending(id) | Disposition::Approved(id) | Disposition::Refused(id) => Some(id),
        }
    }

    pub fn state(self) -> Option<RequestState> {
        match self {
            Disposition::Raise => None,
            Disposition::Pending(_) => Some(RequestState::Pending),
            Disposition::Approved(_) => Some(RequestState::Approved),
            Disposition::Refused(_) => Some(RequestState::Refused),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    pub change: Change,
    pub disposition: Disposition,
}

/// How many complete runs in a row a person has been missing from the source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbsenceStreak {
    pub structure: StructureId,
    pub email: Email,
    pub missed_runs: u32,
}

/// Per-structure counts for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructureCounts {
    /// Attachments in the portal today.
    pub current: u64,
    /// Attachments the source wants.
    pub desired: u64,
    pub attach: u64,
    pub detach: u64,
    pub moves: u64,
    pub rights: u64,
    /// New requests this run would raise.
    pub raised: u64,
    pub anomalies: u64,
}

impl StructureCounts {
    pub fn of_kind(&self, kind: ChangeKind) -> u64 {
        match kind {
            ChangeKind::Attach => self.attach,
            ChangeKind::Detach => self.detach,
            ChangeKind::Move => self.moves,
            ChangeKind::Rights => self.rights,
        }
    }

    pub fn add_kind(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Attach => self.attach += 1,
            ChangeKind::Detach => self.detach += 1,
            ChangeKind::Move => self.moves += 1,
            ChangeKind::Rights => self.rights += 1,
        }
    }

    /// Adds another count of the same structure (the diff counts each half
    /// of the people on its own thread).
    pub fn absorb(&mut self, other: &StructureCounts) {
        let StructureCounts { current, desired, attach, detach, moves, rights, raised, anomalies } = other;
        self.current += current;
        self.desired += desired;
        self.attach += attach;
        self.detach += detach;
        self.moves += moves;
        self.rights += rights;
        self.raised += raised;
        self.anomalies += anomalies;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In report order (structure, service, e-mail, kind).
    pub changes: Vec<PlannedChange>,
    /// Sorted.
    pub anomalies: Vec<Anomaly>,
    /// Open requests the plan no longer contains, or contains with other values.
    pub supersede: Vec<RequestId>,
    /// Streaks to keep for the next run; people not listed have none.
    pub absences: Vec<AbsenceStreak>,
    pub counts: BTreeMap<StructureId, StructureCounts>,
}

impl Plan {
    pub fn to_raise(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.disposition == Disposition::Raise).map(|c| &c.change)
    }
}
