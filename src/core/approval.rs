//! Approval requests and their state machine (DESIGN.md §7).
//!
//! ```text
//!  held ──release──▶ pending ──approve──▶ approved ──apply──▶ applied
//!   │ ├──approve──────────────────────────▲   └──supersede──▶ superseded
//!   │ ├──refuse (motive)──▶ refused ◀──refuse (motive)──┤
//!   │ └──supersede──▶ superseded ◀──supersede───────────┤
//!   │                                     └──expire──▶ expired
//! ```
//! `approved → superseded` extends the design: an approved change the source
//! no longer wants must leave the action list before someone applies it.
//! `held` extends it too: the would-be requests of a run a guard held. A
//! manager may approve or refuse them one by one; an operator releases them
//! into the managers' queues (`approvals release`, or `run --force`); the next
//! run supersedes those its plan no longer holds.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    catalog::StructureInfo,
    change::{ChangeKey, ChangeKind},
};
use crate::domain::{Email, PersonName, StructureId};

pub type RequestId = i64;
pub type RunId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Part of a plan a guard held: nobody is asked yet.
    Held,
    Pending,
    Approved,
    Refused,
    Superseded,
    Expired,
    Applied,
}

impl RequestState {
    pub const ALL: [RequestState; 7] = [
        RequestState::Held,
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Refused,
        RequestState::Superseded,
        RequestState::Expired,
        RequestState::Applied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Held => "held",
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Refused => "refused",
            RequestState::Superseded => "superseded",
            RequestState::Expired => "expired",
            RequestState::Applied => "applied",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Waiting for a manager's decision: pending, or held by a guard (which
    /// a manager may decide item by item).
    pub fn is_undecided(self) -> bool {
        matches!(self, RequestState::Pending | RequestState::Held)
    }

    /// Open requests still stand for a change that has not happened.
    pub fn is_open(self) -> bool {
        matches!(self, RequestState::Pending | RequestState::Approved)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal motive: required and never blank (the portal's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motive(String);

impl Motive {
    pub fn parse(raw: &str) -> Result<Motive, TransitionError> {
        let t = raw.trim();
        if t.is_empty() { Err(TransitionError::MotiveRequired) } else { Ok(Motive(t.to_string())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Something that moves a request from one state to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Approve,
    Refuse(Motive),
    /// The source no longer wants this change, or wants it with other values.
    Supersede,
    /// Pending longer than the configured limit.
    Expire,
    /// A current-state import shows the change done.
    Apply,
    /// A held request goes to the manager's queue.
    Release,
}

impl Transition {
    pub fn target(&self) -> RequestState {
        match self {
            Transition::Approve => RequestState::Approved,
            Transition::Refuse(_) => RequestState::Refused,
            Transition::Supersede => RequestState::Superseded,
            Transition::Expire => RequestState::Expired,
            Transition::Apply => RequestState::Applied,
            Transition::Release => RequestState::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a refusal needs a motive (--motive TEXT)")]
    MotiveRequired,
    #[error("request is {from}, it cannot become {to}")]
    Invalid { from: RequestState, to: RequestState },
    #[error("{who} may not decide for structure {structure} (main manager: {manager})")]
    NotAllowed { who: String, structure: String, manager: String },
}

/// The state after `t`, or why `t` is not allowed from `from`.
pub fn next_state(from: RequestState, t: &Transition) -> Result<RequestState, TransitionError> {
    use RequestState::*;
    let to = t.target();
    match (from, t) {
        (Pending, Transition::Approve | Transition::Refuse(_) | Transition::Supersede | Transition::Expire)
        | (Approved, Transition::Apply | Transition::Supersede)
        | (Held, Transition::Approve | Transition::Refuse(_) | Transition::Supersede | Transition::Release) => Ok(to),
        _ => Err(TransitionError::Invalid { from, to }),
    }
}

/// Checks that `who` may decide a request of `structure`, then the transition.
/// A release decides nothing (it puts a held request in the manager's queue),
/// so the operator who releases need not be the manager; they are recorded.
pub fn decide(
    structure: &StructureInfo,
    who: &Email,
    from: RequestState,
    t: &Transition,
) -> Result<RequestState, TransitionError> {
    if *t != Transition::Release && !structure.may_decide(who) {
        return Err(TransitionError::NotAllowed {
            who: who.to_string(),
            structure: structure.id.to_string(),
            manager: structure.main_manager.to_string(),
        });
    }
    next_state(from, t)
}

/// An approval request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: RequestId,
    pub run_id: RunId,
    pub state: RequestState,
    pub kind: ChangeKind,
    pub key: ChangeKey,
    pub name: PersonName,
    /// Human-readable reason, e.g. `left: end date 2026-10-31`.
    pub reason: String,
    /// `Reason::category`, kept to compare facts with later runs.
    pub reason_category: String,
    /// Plain French sentence for the manager.
    pub description: String,
    /// Who asks: `chorus-sync, source hr, run 12`.
    pub requester: String,
    pub structure_name: String,
    pub manager: String,
    /// The source row or entry behind it.
    pub origin: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub motive: Option<String>,
    pub comment: Option<String>,
}

/// One state transition in a request's append-only history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub from: Option<RequestState>,
    pub to: RequestState,
    pub comment: Option<String>,
}

/// The JSON shape of `approvals list/show` (DESIGN.md §4, contract), with a
/// few extra fields after the contract ones.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequestView {
    pub id: RequestId,
    pub state: RequestState,
    pub kind: ChangeKind,
    pub description: String,
    pub requester: String,
    pub structure: String,
    pub structure_name: String,
    pub service: Option<String>,
    pub user_email: String,
    pub reason: String,
    pub created_at: String,
    pub run_id: RunId,
    pub manager: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub motive: Option<String>,
    pub comment: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntryView>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntryView {
    pub at: String,
    pub by: Option<String>,
    pub from: Option<RequestState>,
    pub to: RequestState,
    pub comment: Option<String>,
}

pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An open request as a manager's queue shows it: what a run's pending
/// sheet says of each (the store reads only these columns for it), borrowed
/// from a [`super::queue::Queue`] or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedRequest<'a> {
    pub id: RequestId,
    pub state: RequestState,
    pub kind: ChangeKind,
    pub structure: &'a StructureId,
    /// As the request was raised; empty in requests of older versions.
    pub structure_name: &'a str,
    /// See [`ApprovalRequest::service`].
    pub service: Option<&'a str>,
    pub email: &'a str,
    pub last_name: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub description: &'a str,
    pub reason: &'a str,
    pub created_at: DateTime<Utc>,
    pub manager: &'a str,
}

impl<'a> From<&'a ApprovalRequest> for QueuedRequest<'a> {
    fn from(r: &'a ApprovalRequest) -> QueuedRequest<'a> {
        QueuedRequest {
            id: r.id,
            state: r.state,
            kind: r.kind,
            structure: &r.key.structure,
            structure_name: &r.structure_name,
            service: r.service(),
            email: r.key.email.as_str(),
            last_name: r.name.last_name.as_deref(),
            first_name: r.name.first_name.as_deref(),
            description: &r.description,
            reason: &r.reason,
            created_at: r.created_at,
            manager: &r.manager,
        }
    }
}

impl ApprovalRequest {
    /// The service the request is about (see `Change::service`).
    pub fn service(&self) -> Option<&str> {
        match (&self.key.after, &self.key.before) {
            (Some(a), _) => a.service.as_ref().map(|s| s.as_str()),
            (None, Some(b)) => b.service.as_ref().map(|s| s.as_str()),
            (None, None) => None,
        }
    }

    pub fn view(&self, history: Option<&[HistoryEntry]>) -> ApprovalRequestView {
        ApprovalRequestView {
            id: self.id,
            state: self.state,
            kind: self.kind,
            description: self.description.clone(),
            requester: self.requester.clone(),
            structure: self.key.structure.to_string(),
            structure_name: self.structure_name.clone(),
            service: self.service().map(str::to_string),
            user_email: self.key.email.to_string(),
            reason: self.reason.clone(),
            created_at: rfc3339(&self.created_at),
            run_id: self.run_id,
            manager: self.manager.clone(),
            decided_by: self.decided_by.clone(),
            decided_at: self.decided_at.as_ref().map(rfc3339),
            motive: self.motive.clone(),
            comment: self.comment.clone(),
            last_name: self.name.last_name.as_deref().map(str::to_string),
            first_name: self.name.first_name.as_deref().map(str::to_string),
            before: self.key.before.as_ref().map(|p| p.label()),
            after: self.key.after.as_ref().map(|p| p.label()),
            origin: self.origin.clone(),
            history: history.map(|h| {
                h.iter()
                    .map(|e| HistoryEntryView {
                        at: rfc3339(&e.at),
                        by: e.by.clone(),
                        from: e.from,
                        to: e.to,
                        comment: e.comment.clone(),
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestState::*;

    fn motive() -> Transition {
        Transition::Refuse(Motive::parse("n'appartient pas au service").unwrap())
    }

    #[test]
    fn transitions_table() {
        let table: &[(RequestState, Transition, Result<RequestState, ()>)] = &[
            (Pending, Transition::Approve, Ok(Approved)),
            (Pending, motive(), Ok(Refused)),
            (Pending, Transition::Supersede, Ok(Superseded)),
            (Pending, Transition::Expire, Ok(Expired)),
            (Pending, Transition::Apply, Err(())),
            (Approved, Transition::Apply, Ok(Applied)),
            (Approved, Transition::Supersede, Ok(Superseded)),
            (Approved, Transition::Approve, Err(())),
            (Approved, motive(), Err(())),
            (Approved, Transition::Expire, Err(())),
            (Refused, Transition::Approve, Err(())),
            (Refused, Transition::Supersede, Err(())),
            (Superseded, Transition::Approve, Err(())),
            (Expired, Transition::Approve, Err(())),
            (Applied, Transition::Supersede, Err(())),
            (Applied, Transition::Apply, Err(())),
            (Pending, Transition::Release, Err(())),
            (Held, Transition::Approve, Ok(Approved)),
            (Held, motive(), Ok(Refused)),
            (Held, Transition::Supersede, Ok(Superseded)),
            (Held, Transition::Release, Ok(Pending)),
            // Held requests were never in a queue: they do not expire, and
            // only an approved change can be applied.
            (Held, Transition::Expire, Err(())),
            (Held, Transition::Apply, Err(())),
            (Approved, Transition::Release, Err(())),
            (Refused, Transition::Release, Err(())),
            (Superseded, Transition::Release, Err(())),
        ];
        for (from, t, expect) in table {
            let got = next_state(*from, t);
            match expect {
                Ok(to) => assert_eq!(got, Ok(*to), "{from} --{t:?}-->"),
                Err(()) => {
                    assert_eq!(got, Err(TransitionError::Invalid { from: *from, to: t.target() }), "{from} --{t:?}-->")
                }
            }
        }
    }

    #[test]
    fn a_refusal_needs_a_non_blank_motive() {
        assert_eq!(Motive::parse(""), Err(TransitionError::MotiveRequired));
        assert_eq!(Motive::parse(" \t\n"), Err(TransitionError::MotiveRequired));
        assert_eq!(Motive::parse("  hors périmètre ").unwrap().as_str(), "hors périmètre");
    }

    #[test]
    fn only_the_main_manager_or_a_delegate_decides() {
        let catalog = super::super::catalog::tests::sample();
        let acme = catalog.iter().find(|s| s.name == "ACME France").unwrap();
        let email = |s: &str| Email::parse(s).unwrap();
        assert_eq!(decide(acme, &email("gp@acme.fr"), Pending, &Transition::Approve), Ok(Approved));
        assert_eq!(decide(acme, &email("adjoint@acme.fr"), Pending, &motive()), Ok(Refused));
        assert!(matches!(
            decide(acme, &email("intrus@acme.fr"), Pending, &Transition::Approve),
            Err(TransitionError::NotAllowed { .. })
        ));
        // Authorisation is checked before the state, so an outsider learns nothing.
        assert!(matches!(
            decide(acme, &email("intrus@acme.fr"), Refused, &Transition::Approve),
            Err(TransitionError::NotAllowed { .. })
        ));
        // A held request: the manager decides it directly; an operator may
        // only release it to the manager's queue.
        assert_eq!(decide(acme, &email("gp@acme.fr"), Held, &Transition::Approve), Ok(Approved));
        assert_eq!(decide(acme, &email("ops@acme.fr"), Held, &Transition::Release), Ok(Pending));
        assert!(matches!(
            decide(acme, &email("ops@acme.fr"), Held, &Transition::Approve),
            Err(TransitionError::NotAllowed { .. })
        ));
    }
}
