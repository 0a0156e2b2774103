//! Mails around the engine: the digests after a run that raised requests,
//! and the housekeeping job (expiry across all structures, reminders).
//!
//! Sending happens after the run committed: a mail that fails is logged and
//! noted on the run, and never undoes it.

use std::collections::BTreeSet;

use super::{Engine, EngineError};
use crate::{
    config::NotificationsConfig,
    core::approval::{RequestId, RequestState, RunId},
    domain::{Email, StructureId},
    notify::{self, DigestInput, Mail, Mailer, ReminderInput},
    store::RequestFilter,
};

/// What one housekeeping did.
#[derive(Debug, Clone, Default)]
pub struct HousekeepingSummary {
    /// Requests that were pending too long and are now expired.
    pub expired: Vec<RequestId>,
    /// Who got a reminder.
    pub reminded: Vec<String>,
    /// Mails that could not be sent (no secret in them).
    pub failures: Vec<String>,
}

impl Engine {
    /// Sends one digest per person concerned by the requests run `run_id`
    /// raised; returns the failures, which are also noted on the run.
    pub(super) async fn notify_run(&self, run_id: RunId, raised: &[RequestId]) -> Vec<String> {
        let Some(config) = &self.config.notifications else { return Vec::new() };
        let failures = match self.send_digests(config, raised).await {
            Ok(failures) => failures,
            Err(e) => vec![format!("notifications: {e}")],
        };
        if !failures.is_empty() {
            let note = failures.join("; ");
            if let Err(e) = self.store.note_on_run(run_id, &note).await {
                tracing::warn!(run_id, "cannot note the failed notifications on the run: {e}");
            }
        }
        failures
    }

    /// The digests of a run that put `raised` in the queues: new requests,
    /// and held ones it released (raised by an earlier, held run).
    async fn send_digests(
        &self,
        config: &NotificationsConfig,
        raised: &[RequestId],
    ) -> Result<Vec<String>, EngineError> {
        let mut new = self.store.requests_by_id(raised).await?;
        new.retain(|r| r.state == RequestState::Pending);
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let pending_only = RequestFilter { states: vec![RequestState::Pending], ..Default::default() };
        let pending = self.store.list_requests(&pending_only).await?;
        let input = DigestInput {
            catalog: &self.config.catalog,
            new: &new,
            pending: &pending,
            console_url: config.console_url.as_deref(),
        };
        let mails = notify::digests(&input);
        let (_, failed) = send_all(config, &mails, "digest", |_| async { true }).await;
        Ok(failed.into_iter().map(|(_, why)| why).collect())
    }

    /// Expires the requests of every structure pending longer than
    /// `expire_after_days` (one transaction), then sends the reminders due.
    pub async fn housekeeping(&self) -> Result<HousekeepingSummary, EngineError> {
        let mut tx = self.store.begin().await?;
        // An empty scope is every structure.
        let expired = self.expire(&mut tx, &[]).await?;
        tx.commit().await?;
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "requests pending too long expired");
        }
        let mut summary = HousekeepingSummary { expired, ..Default::default() };
        if let Some(config) = &self.config.notifications
            && let Some(days) = config.remind_after_days
        {
            self.send_reminders(config, days, &mut summary).await?;
        }
        Ok(summary)
    }

    async fn send_reminders(
        &self,
        config: &NotificationsConfig,
        days: u32,
        summary: &mut HousekeepingSummary,
    ) -> Result<(), EngineError> {
        let today = self.clock.today(self.config.timezone);
        let reminded_today: BTreeSet<Email> =
            self.store.reminded_on(today).await?.iter().filter_map(|e| Email::parse(e).ok()).collect();
        let filter = RequestFilter { states: vec![RequestState::Pending], ..Default::default() };
        let pending = self.store.list_requests(&filter).await?;
        let input = ReminderInput {
            catalog: &self.config.catalog,
            pending: &pending,
            remind_after_days: days,
            now: self.clock.now,
            reminded_today: &reminded_today,
            console_url: config.console_url.as_deref(),
        };
        let mails = notify::reminders(&input);
        let now = self.clock.now;
        // Claimed before sending, so two instances never both send; given
        // back when the mail fails, so a later housekeeping retries.
        let claim = |mail: &Mail| {
            let to = mail.to.to_string();
            async move { self.store.claim_reminder(&to, today, now).await.unwrap_or(false) }
        };
        let (sent, failed) = send_all(config, &mails, "reminder", claim).await;
        for (to, why) in failed {
            if let Some(to) = to {
                self.store.release_reminder(&to, today).await?;
            }
            summary.failures.push(why);
        }
        summary.reminded = sent;
        Ok(())
    }

    /// Requests of `scope` expired since the last run of one of `sources`
    /// (by housekeeping, or a run of another source), for this run's report.
    pub(super) async fn expired_since_last_run(
        &self,
        sources: &[String],
        scope: &[StructureId],
    ) -> Result<Vec<RequestId>, EngineError> {
        let runs = self.store.list_runs(Some(200)).await?;
        let Some(last) = runs.iter().find(|r| r.sources.iter().any(|s| sources.contains(s))) else {
            return Ok(Vec::new());
        };
        let ids = self.store.expired_since(last.started_at).await?;
        if ids.is_empty() {
            return Ok(ids);
        }
        let filter = RequestFilter { ids, structures: scope.to_vec(), ..Default::default() };
        Ok(self.store.list_requests(&filter).await?.iter().map(|r| r.id).collect())
    }
}

/// Sends each mail that `claim` lets through; returns who got one and the
/// failures (the recipient, `None` when nothing could be sent). A failure is logged as a warning (the server and the address,
/// never a credential) and does not stop the others.
async fn send_all<F, Fut>(
    config: &NotificationsConfig,
    mails: &[Mail],
    what: &str,
    claim: F,
) -> (Vec<String>, Vec<(Option<String>, String)>)
where
    F: Fn(&Mail) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (mut sent, mut failures) = (Vec::new(), Vec::new());
    if mails.is_empty() {
        return (sent, failures);
    }
    let mailer = match Mailer::new(config) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("{what} not sent: {e}");
            // Nothing was claimed yet: nothing to give back.
            return (sent, vec![(None, format!("{what} not sent: {e}"))]);
        }
    };
    for mail in mails {
        if !claim(mail).await {
            continue;
        }
        match mailer.send(mail).await {
            Ok(()) => {
                tracing::info!(to = %mail.to, subject = %mail.subject, "{what} sent");
                sent.push(mail.to.to_string());
            }
            Err(e) => {
                tracing::warn!("{what} not sent: {e}");
                failures.push((Some(mail.to.to_string()), format!("{what} to {} not sent: {e}", mail.to)));
            }
        }
    }
    (sent, failures)
}
