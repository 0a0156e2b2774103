//! `import-current`: a portal export of the attachments that exist today
//! replaces the store's picture of the structures it covers, and approved
//! requests it shows done become `applied`.

use std::collections::BTreeMap;

use super::{Engine, EngineError};
use crate::{
    core::{
        approval::{ApprovalRequest, RequestState},
        catalog::StructureLookupError,
        change::ChangeKey,
        diff::CurrentAttachment,
        record::{Field, Record},
    },
    domain::{Attachment, Email, Interner, PersonName, Placement, Rights, StructureId, text::fold},
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
        let mut rows: Vec<CurrentAttachment> = Vec::new();
        // Services and rights repeat on most rows: parsed once each.
        let mut shared = Interner::default();
        let origin = path.display().to_string();
        let read = source::read_table(&spec, &mut |record| {
            summary.rows += 1;
            match self.map_current(record, &mut shared) {
                Ok(Some(a)) => rows.push(a),
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
        drop(shared);
        let rows = merge(rows);
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
        let mut tx = self.store.begin().await?;
        tx.replace_current(&covered, &rows, self.clock.now).await?;
        let now = self.clock.now;
        let cutoff = self.config.approvals.apply_within_days.map(|d| now - chrono::Duration::days(i64::from(d)));
        for req in &approved {
            if is_done(&req.key, &rows) {
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
    fn map_current(&self, record: &Record, shared: &mut Interner) -> Result<Option<CurrentAttachment>, String> {
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
            Some(raw) => shared.service(&raw).map_err(|m| format!("column {}: {m}", column(Field::Service)))?,
        };
        let rights = match text(Field::Rights) {
            None => Rights::default(),
            Some(raw) => {
                let mapped = self.config.sources.iter().find_map(|s| s.values.rights.get(&fold(&raw)));
                shared
                    .rights(mapped.map_or(raw.as_str(), String::as_str))
                    .map_err(|m| format!("column {}: {m}", column(Field::Rights)))?
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

/// The export's rows, one per (structure, e-mail, service), in that order:
/// duplicates merge their rights and keep the name of the first of them in
/// `CurrentAttachment`'s order (rights, then name). Sorted in place: a million rows in a
/// tree, then in a map by key, then in a vector, were three copies.
fn merge(mut rows: Vec<CurrentAttachment>) -> Vec<CurrentAttachment> {
    rows.sort_unstable();
    rows.dedup_by(|later, kept| {
        let same = same_key(later, kept);
        if same {
            kept.attachment.placement.rights =
                kept.attachment.placement.rights.union(&later.attachment.placement.rights);
        }
        same
    });
    rows
}

/// One attachment per (structure, e-mail, service) in the store.
fn same_key(a: &CurrentAttachment, b: &CurrentAttachment) -> bool {
    let (a, b) = (&a.attachment, &b.attachment);
    a.structure == b.structure && a.email == b.email && a.placement.service == b.placement.service
}

/// Does the portal now show this approved change done? `present`: the
/// export's rows as [`merge`] leaves them, sorted by attachment.
fn is_done(key: &ChangeKey, present: &[CurrentAttachment]) -> bool {
    let shows = |p: &Placement| {
        let at = Attachment { structure: key.structure.clone(), email: key.email.clone(), placement: p.clone() };
        present.binary_search_by(|r| r.attachment.cmp(&at)).is_ok()
    };
    let after_ok = key.after.as_ref().is_none_or(shows);
    let before_gone = match (&key.before, &key.after) {
        (Some(b), Some(a)) if b.service == a.service => true,
        (Some(b), _) => !shows(b),
        (None, _) => true,
    };
    after_ok && before_gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdentifierType, ServiceCode};

    const ACME: &str = "12345678200010";
    const OTHER: &str = "73282932000074";

    fn place(service: Option<&str>, rights: &str) -> Placement {
        Placement { service: service.map(|s| ServiceCode::parse(s).unwrap()), rights: Rights::parse(rights).unwrap() }
    }

    /// (structure, e-mail, service, rights, last name)
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, &'a str);

    fn row(&(structure, email, service, rights, last): &Row<'_>) -> CurrentAttachment {
        CurrentAttachment {
            attachment: Attachment {
                structure: StructureId::parse(IdentifierType::Siret, structure).unwrap(),
                email: Email::parse(email).unwrap(),
                placement: place(service, rights),
            },
            name: PersonName { last_name: Some(last.into()), first_name: None },
        }
    }

    #[track_caller]
    fn check(input: &[Row<'_>], expect: &[Row<'_>]) {
        let merged = merge(input.iter().map(row).collect());
        assert_eq!(merged, expect.iter().map(row).collect::<Vec<_>>());
    }

    #[test]
    fn export_rows_merge_per_structure_address_and_service() {
        check(&[], &[]);
        // Sorted by structure, address, service (structure level first).
        check(
            &[
                (OTHER, "a@x.fr", None, "", "A"),
                (ACME, "b@x.fr", Some("COMPTA"), "", "B"),
                (ACME, "b@x.fr", None, "", "B"),
                (ACME, "a@x.fr", None, "", "A"),
            ],
            &[
                (ACME, "a@x.fr", None, "", "A"),
                (ACME, "b@x.fr", None, "", "B"),
                (ACME, "b@x.fr", Some("COMPTA"), "", "B"),
                (OTHER, "a@x.fr", None, "", "A"),
            ],
        );
        // The same row twice is one attachment.
        check(
            &[
                (ACME, "a@x.fr", None, "factures:consultation", "A"),
                (ACME, "a@x.fr", None, "factures:consultation", "A"),
            ],
            &[(ACME, "a@x.fr", None, "factures:consultation", "A")],
        );
        // Rows of one key merge their rights, the name of the first in
        // order (fewer rights first, then the name) kept, wherever they are.
        check(
            &[
                (ACME, "a@x.fr", Some("COMPTA"), "factures:modification", "Zed"),
                (ACME, "c@x.fr", None, "", "C"),
                (ACME, "a@x.fr", Some("COMPTA"), "engagements:consultation", "Alpha"),
                (ACME, "a@x.fr", Some("COMPTA"), "engagements:consultation", "Beta"),
            ],
            &[
                (ACME, "a@x.fr", Some("COMPTA"), "engagements:consultation,factures:modification", "Alpha"),
                (ACME, "c@x.fr", None, "", "C"),
            ],
        );
    }

    #[test]
    fn an_approved_change_is_done_when_the_export_shows_its_after_and_no_longer_its_before() {
        let present = merge(
            [(ACME, "a@x.fr", Some("COMPTA"), "factures:modification", "A"), (ACME, "b@x.fr", None, "", "B")]
                .iter()
                .map(row)
                .collect(),
        );
        let key = |email: &str, before: Option<Placement>, after: Option<Placement>| ChangeKey {
            structure: StructureId::parse(IdentifierType::Siret, ACME).unwrap(),
            email: Email::parse(email).unwrap(),
            before,
            after,
        };
        let compta = |rights| Some(place(Some("COMPTA"), rights));
        for (change, done) in [
            // An attach: shown with its rights.
            (key("a@x.fr", None, compta("factures:modification")), true),
            (key("a@x.fr", None, compta("factures:consultation")), false),
            (key("c@x.fr", None, Some(place(None, ""))), false),
            // A detach: gone.
            (key("c@x.fr", Some(place(None, "")), None), true),
            (key("b@x.fr", Some(place(None, "")), None), false),
            // A move: at the new service, gone from the old one.
            (key("b@x.fr", compta(""), Some(place(None, ""))), true),
            (key("a@x.fr", Some(place(None, "")), compta("factures:modification")), true),
            (key("b@x.fr", Some(place(None, "")), compta("")), false),
            // New rights in the same service: the new ones are what counts.
            (key("a@x.fr", compta("factures:consultation"), compta("factures:modification")), true),
            (key("a@x.fr", compta("factures:modification"), compta("factures:consultation")), false),
        ] {
            assert_eq!(is_done(&change, &present), done, "{change:?}");
        }
    }
}
