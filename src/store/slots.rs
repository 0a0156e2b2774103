//! Scheduled slots claimed by daemon instances (`slots` table). Several
//! daemons may share one store; the primary key (source, slot) lets exactly
//! one of them run each scheduled slot.

use chrono::{DateTime, Utc};

use super::{
    Store, StoreError,
    sql::{Binds, Cols, db, query},
};
use crate::core::approval::rfc3339;

/// One claimed slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotClaim {
    pub source: String,
    /// The scheduled instant (whole seconds).
    pub slot_at: DateTime<Utc>,
    /// Who claimed it: `host:pid`.
    pub instance: String,
    pub claimed_at: DateTime<Utc>,
}

impl Store {
    /// Claims the slot `slot_at` of `source` for `instance`; `true` when this
    /// call won it, `false` when someone (this instance included) already had.
    /// The claim commits at once, outside any run: an instance that dies after
    /// claiming loses that slot, and its run, one transaction, leaves nothing.
    pub async fn claim_slot(&self, source: &str, slot_at: DateTime<Utc>, instance: &str) -> Result<bool, StoreError> {
        const CTX: &str = "claim a scheduled slot";
        let mut conn = self.conn().await?;
        let mut b = Binds::new(&conn);
        let values = [source.to_string(), rfc3339(&slot_at), instance.to_string(), rfc3339(&Utc::now())]
            .map(|v| b.push(v))
            .join(",");
        let sql = format!(
            "INSERT INTO slots (source, slot_at, instance, claimed_at) VALUES ({values}) \
             ON CONFLICT (source, slot_at) DO NOTHING"
        );
        let done = query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every claimed slot, by source and time.
    pub async fn claimed_slots(&self) -> Result<Vec<SlotClaim>, StoreError> {
        const CTX: &str = "list claimed slots";
        let mut conn = self.conn().await?;
        let sql = "SELECT source, slot_at, instance, claimed_at FROM slots ORDER BY source, slot_at".to_string();
        let rows = query(sql, Binds::new(&conn), CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "slots");
                let (source, slot_at) = (c.text("source")?, c.text("slot_at")?);
                let c = c.keyed(format!("{source} {slot_at}"));
                Ok(SlotClaim {
                    source,
                    slot_at: c.time("slot_at")?,
                    instance: c.text("instance")?,
                    claimed_at: c.time("claimed_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    async fn one_claim_per_slot(store: Store) {
        let slot = at("2026-03-29T01:00:00Z");
        assert!(store.claim_slot("hr", slot, "a:1").await.unwrap(), "the first claim wins");
        assert!(!store.claim_slot("hr", slot, "b:2").await.unwrap(), "another instance loses");
        assert!(!store.claim_slot("hr", slot, "a:1").await.unwrap(), "a repeated claim loses too");
        assert!(store.claim_slot("acme", slot, "b:2").await.unwrap(), "slots are per source");
        assert!(store.claim_slot("hr", at("2026-03-30T00:30:00Z"), "b:2").await.unwrap(), "and per time");
        let claims = store.claimed_slots().await.unwrap();
        let seen: Vec<(&str, String, &str)> =
            claims.iter().map(|c| (c.source.as_str(), rfc3339(&c.slot_at), c.instance.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("acme", "2026-03-29T01:00:00Z".to_string(), "b:2"),
                ("hr", "2026-03-29T01:00:00Z".to_string(), "a:1"),
                ("hr", "2026-03-30T00:30:00Z".to_string(), "b:2"),
            ]
        );
    }

    /// Claims racing from many tasks: exactly one wins each slot.
    async fn concurrent_claims_have_one_winner(store: Store) {
        let slot = at("2026-11-23T08:00:00Z");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_slot("hr", slot, &format!("host:{i}")).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1);
    }

    crate::both_backends!(one_claim_per_slot, concurrent_claims_have_one_winner);
}
