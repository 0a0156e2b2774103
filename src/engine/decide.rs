//! Managers' decisions: approve or refuse requests, one or many, in one
//! transaction. Either every decision of a command holds, or none does.

use super::{Engine, EngineError};
use crate::{
    core::approval::{RequestId, RequestState, Transition, decide},
    domain::Email,
};

#[derive(Debug, Clone)]
pub struct Decision {
    pub ids: Vec<RequestId>,
    pub who: Email,
    /// `Approve` or `Refuse(motive)`.
    pub transition: Transition,
    /// Optional comment on an approval.
    pub comment: Option<String>,
}

/// One id's outcome: its new state, or why it could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionOutcome {
    pub id: RequestId,
    pub result: Result<RequestState, String>,
}

impl Engine {
    /// Applies the decision to every id, or to none when one of them cannot
    /// be decided; each id's outcome is returned either way.
    pub async fn decide(&self, d: &Decision) -> Result<(Vec<DecisionOutcome>, bool), EngineError> {
        let mut tx = self.store.begin().await?;
        let found = tx.requests_by_id(&d.ids).await?;
        let now = self.clock.now;
        let mut outcomes = Vec::with_capacity(d.ids.len());
        let mut ok = true;
        let mut seen = std::collections::BTreeSet::new();
        for id in &d.ids {
            if !seen.insert(*id) {
                continue;
            }
            let result = match found.iter().find(|r| r.id == *id) {
                None => Err(format!("no approval request #{id}")),
                Some(req) => match self.config.catalog.get(&req.key.structure) {
                    None => Err(format!("structure {} is no longer configured", req.key.structure)),
                    Some(info) => decide(info, &d.who, req.state, &d.transition).map_err(|e| e.to_string()),
                },
            };
            if let Ok(to) = &result {
                let text = match &d.transition {
                    Transition::Refuse(m) => Some(m.as_str()),
                    _ => d.comment.as_deref(),
                };
                let from = found.iter().find(|r| r.id == *id).map(|r| r.state).unwrap_or(RequestState::Pending);
                tx.transition(*id, from, *to, Some(d.who.as_str()), now, text).await?;
            }
            ok &= result.is_ok();
            outcomes.push(DecisionOutcome { id: *id, result });
        }
        if ok {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok((outcomes, ok))
    }
}
