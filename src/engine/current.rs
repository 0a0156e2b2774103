//! `import-current`: a portal export of the attachments that exist today
//! replaces the store's picture of the structures it covers, and approved
//! requests it shows done become `applied`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, EngineError};
use crate::{
    core::{
        approval::{ApprovalRequest, RequestState},
        catalog::StructureLookupError,
        diff::CurrentAttachment,
        record::{Field, Record},
    },
    domain::{Attachment, Email, PersonName, Placement, Rights, ServiceCode, StructureId, text::fold},
    source::{self, TableSpec},
    store::RequestFilter,
};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub rows: u64,
    /// Attachments loaded, per structure.
    pub structures: BTreeMap<StructureId, u64>,
    /// Rows naming structures this organisation does not manage: ignored.
    pub skipped_unmanaged: u64,
    /// Approved requests the export shows done.
    pub applied: Vec<i64>,
    /// Why the file was rejected: every bad row, nothing imported.
    pub errors: Vec<String>,
    /// Approved longer than `apply_within_days` ago and still not done in the portal.
    pub overdue: Vec<ApprovalRequest>,
}

impl Engine {
    pub async fn import_current(&self, path: &Path) -> Result<ImportSummary, EngineError> {
        let cfg = &self.config.current;
        let required = [Field::Email, Field::Structure];
        let spec = TableSpec {
            path,
            sheet: cfg.sheet.as_deref(),
            csv: cfg.csv,
            columns: &cfg.columns,
            required: &required,
            limits: self.config.limits,
        };
        let mut summary = ImportSummary::default();
        let mut rows: BTreeSet<CurrentAttachment> = BTreeSet::new();
        let origin = path.display().to_string();
        let read = source::read_table(&spec, &mut |record| {
            summary.rows += 1;
            match self.map_current(record) {
                Ok(Some(a)) => {
                    rows.insert(a);
                }
                Ok(None) => summary.skipped_unmanaged += 1,
                Err(e) => summary.errors.push(format!("{origin}, row {}: {e}", record.row)),
            }
            Ok(())
        });
        if let Err(e) = read {
            summary.errors.insert(0, e.to_string());
        }
        if !summary.errors.is_empty() {
            return Ok(summary);
        }
        // One attachment per (structure, e-mail, service): duplicates merge their rights.
        let mut merged: BTreeMap<(StructureId, Email, Option<ServiceCode>), CurrentAttachment> = BTreeMap::new();
        for a in rows {
            let k =
                (a.attachment.structure.clone(), a.attachment.email.clone(), a.attachment.placement.service.clone());
            match merged.get_mut(&k) {
                Some(m) => {
                    m.attachment.placement.rights = m.attachment.placement.rights.union(&a.attachment.placement.rights)
                }
                None => {
                    merged.insert(k, a);
                }
            }
        }
        let rows: Vec<CurrentAttachment> = merged.into_values().collect();
        for r in &rows {
            *summary.structures.entry(r.attachment.structure.clone()).or_default() += 1;
        }
        let covered: Vec<StructureId> = summary.structures.keys().cloned().collect();
        let approved = self
            .store
            .list_requests(&RequestFilter {
                states: vec![RequestState::Approved],
                structures: covered.clone(),
                ..Default::default()
            })
            .await?;
        let present: BTreeSet<&Attachment> = rows.iter().map(|r| &r.attachment).collect();
        let mut tx = self.store.begin().await?;
        tx.replace_current(&covered, &rows, self.clock.now).await?;
        let now = self.clock.now;
        let cutoff = self.config.approvals.apply_within_days.map(|d| now - chrono::Duration::days(i64::from(d)));
        for req in &approved {
            if is_done(req, &present) {
                tx.transition(req.id, RequestState::Approved, RequestState::Applied, Some("import-current"), now, None)
                    .await?;
                summary.applied.push(req.id);
            } else if cutoff.is_some_and(|c| req.decided_at.is_some_and(|d| d < c)) {
                summary.overdue.push(req.clone());
            }
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// `Ok(None)` for a structure that is not ours (the export lists all the
    /// person's structures, clients included).
    fn map_current(&self, record: &Record) -> Result<Option<CurrentAttachment>, String> {
        let text = |f: Field| {
            let t = record.get(f).to_text();
            let t = t.trim().to_string();
            (!t.is_empty()).then_some(t)
        };
        let column = |f: Field| self.config.current.columns.get(f).unwrap_or(f.key()).to_string();
        let raw_email =
            text(Field::Email).ok_or_else(|| format!("column {}: no e-mail address", column(Field::Email)))?;
        let email =
            Email::parse(&raw_email).map_err(|e| format!("column {}: {raw_email:?}: {e}", column(Field::Email)))?;
        let raw_structure =
            text(Field::Structure).ok_or_else(|| format!("column {}: no structure", column(Field::Structure)))?;
        let info = match self.config.catalog.lookup(&raw_structure) {
            Ok(info) => info,
            Err(StructureLookupError::Unknown(_)) => return Ok(None),
            Err(StructureLookupError::Invalid(m)) => return Err(format!("column {}: {m}", column(Field::Structure))),
        };
        let service = match text(Field::Service) {
            None => None,
            Some(raw) => {
                Some(ServiceCode::parse(&raw).map_err(|e| format!("column {}: {raw:?}: {e}", column(Field::Service)))?)
            }
        };
        let rights = match text(Field::Rights) {
            None => Rights::default(),
            Some(raw) => {
                let mapped = self.config.sources.iter().find_map(|s| s.values.rights.get(&fold(&raw)));
                Rights::parse(mapped.map_or(raw.as_str(), String::as_str))
                    .map_err(|e| format!("column {}: {e}", column(Field::Rights)))?
            }
        };
        Ok(Some(CurrentAttachment {
            attachment: Attachment { structure: info.id.clone(), email, placement: Placement { service, rights } },
            name: PersonName {
                last_name: text(Field::LastName).map(Into::into),
                first_name: text(Field::FirstName).map(Into::into),
            },
        }))
    }
}

/// Does the portal now show this approved change done?
fn is_done(req: &ApprovalRequest, present: &BTreeSet<&Attachment>) -> bool {
    let at = |p: &Placement| Attachment {
        structure: req.key.structure.clone(),
        email: req.key.email.clone(),
        placement: p.clone(),
    };
    let after_ok = req.key.after.as_ref().is_none_or(|a| present.contains(&at(a)));
    let before_gone = match (&req.key.before, &req.key.after) {
        (Some(b), Some(a)) if b.service == a.service => true,
        (Some(b), _) => !present.contains(&at(b)),
        (None, _) => true,
    };
    after_ok && before_gone
}
