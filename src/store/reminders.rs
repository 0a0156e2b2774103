//! Reminder mails sent (`reminders` table, one per person and local day) and
//! the expiries a run has not reported yet.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Store, StoreError,
    sql::{Binds, Cols, db, query},
};
use crate::core::approval::{RequestId, RunId, rfc3339};

impl Store {
    /// Appends `note` to a committed run's message (mails that failed after
    /// the run, which they never undo).
    pub async fn note_on_run(&self, id: RunId, note: &str) -> Result<(), StoreError> {
        let Some((mut run, _)) = self.get_run(id).await? else { return Ok(()) };
        run.message = Some(match run.message.take() {
            Some(m) => format!("{m}; {note}"),
            None => note.to_string(),
        });
        let mut tx = self.begin().await?;
        tx.update_run(&run).await?;
        tx.commit().await
    }

    /// The people reminded on `day` (a local date).
    pub async fn reminded_on(&self, day: NaiveDate) -> Result<BTreeSet<String>, StoreError> {
        const CTX: &str = "list reminders";
        let mut conn = self.conn().await?;
        let mut b = Binds::new(&conn);
        let sql = format!("SELECT manager FROM reminders WHERE day = {}", b.push(day.to_string()));
        let rows = query(sql, b, CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter().map(|row| Cols::new(row, "reminders").text("manager")).collect()
    }

    /// Claims the reminder of `manager` for `day`: `true` when this call won
    /// it (send it), `false` when it was already sent (by this instance or
    /// another). Committed at once, like a slot.
    pub async fn claim_reminder(&self, manager: &str, day: NaiveDate, at: DateTime<Utc>) -> Result<bool, StoreError> {
        const CTX: &str = "record a reminder";
        let mut conn = self.conn().await?;
        let mut b = Binds::new(&conn);
        let values = [manager.to_string(), day.to_string(), rfc3339(&at)].map(|v| b.push(v)).join(",");
        let sql = format!(
            "INSERT INTO reminders (manager, day, sent_at) VALUES ({values}) ON CONFLICT (manager, day) DO NOTHING"
        );
        let done = query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claimed reminder back after its mail failed, so a later
    /// housekeeping the same day tries again.
    pub async fn release_reminder(&self, manager: &str, day: NaiveDate) -> Result<(), StoreError> {
        const CTX: &str = "release a reminder";
        let mut conn = self.conn().await?;
        let mut b = Binds::new(&conn);
        let sql = format!(
            "DELETE FROM reminders WHERE manager = {} AND day = {}",
            b.push(manager.to_string()),
            b.push(day.to_string())
        );
        query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
        Ok(())
    }

    /// Requests that became `expired` after `since` (by a run or housekeeping;
    /// not at `since` itself, the instant a run expires its own).
    pub async fn expired_since(&self, since: DateTime<Utc>) -> Result<Vec<RequestId>, StoreError> {
        const CTX: &str = "list recent expiries";
        let mut conn = self.conn().await?;
        let mut b = Binds::new(&conn);
        // `at` is RFC 3339 UTC with whole seconds: text order is time order.
        let sql = format!(
            "SELECT DISTINCT request_id FROM request_history WHERE to_state = 'expired' AND at > {} \
             ORDER BY request_id",
            b.push(rfc3339(&since))
        );
        let rows = query(sql, b, CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter().map(|row| Cols::new(row, "request_history").count("request_id").map(|n| n as RequestId)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    async fn one_reminder_per_person_and_day(store: Store) {
        let (d1, d2, now) = (day("2026-11-23"), day("2026-11-24"), Utc::now());
        assert!(store.claim_reminder("gp@acme.fr", d1, now).await.unwrap(), "first claim wins");
        assert!(!store.claim_reminder("gp@acme.fr", d1, now).await.unwrap(), "same day again loses");
        assert!(store.claim_reminder("adjoint@acme.fr", d1, now).await.unwrap(), "per person");
        assert!(store.claim_reminder("gp@acme.fr", d2, now).await.unwrap(), "and per day");
        let seen: Vec<String> = store.reminded_on(d1).await.unwrap().into_iter().collect();
        assert_eq!(seen, ["adjoint@acme.fr", "gp@acme.fr"]);
        store.release_reminder("gp@acme.fr", d1).await.unwrap();
        assert!(store.claim_reminder("gp@acme.fr", d1, now).await.unwrap(), "a released reminder can be sent again");
    }

    crate::both_backends!(one_reminder_per_person_and_day);
}
