//! The run reports (DESIGN.md §8): summary, changes, anomalies and pending
//! requests, as CSV files and one XLSX workbook. Column names are a contract.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    iter,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};

use super::{
    ReportError,
    csv::write_csv_source,
    table::{Table, TableSource, Value, collect},
    xlsx::write_xlsx_sources,
};
use crate::{
    core::{
        anomaly::Anomaly,
        approval::{QueuedRequest, RequestId, RequestState, RunId, rfc3339},
        catalog::Catalog,
        change::Change,
        plan::{PlannedChange, StructureCounts},
        queue::Queue,
    },
    domain::{Placement, ServiceCode, StructureId},
};

pub const CHANGES_COLUMNS: [&str; 13] = [
    "run_id",
    "kind",
    "structure",
    "structure_name",
    "service",
    "user_email",
    "last_name",
    "first_name",
    "before",
    "after",
    "reason",
    "approval_id",
    "approval_state",
];
pub const ANOMALIES_COLUMNS: [&str; 6] = ["run_id", "source", "location", "user_email", "code", "message"];
pub const SUMMARY_COLUMNS: [&str; 11] = [
    "run_id",
    "structure",
    "structure_name",
    "current",
    "desired",
    "attach",
    "detach",
    "move",
    "rights",
    "raised",
    "anomalies",
];
pub const PENDING_COLUMNS: [&str; 13] = [
    "approval_id",
    "state",
    "kind",
    "structure",
    "structure_name",
    "service",
    "user_email",
    "last_name",
    "first_name",
    "description",
    "reason",
    "created_at",
    "manager",
];
const INFO_COLUMNS: [&str; 2] = ["key", "value"];
/// The `structure` cell of the summary's last row.
pub const TOTAL: &str = "TOTAL";

/// A change as reported: with the request that carries it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedChange {
    pub change: Change,
    pub approval_id: Option<RequestId>,
    pub approval_state: Option<RequestState>,
}

impl From<PlannedChange> for ReportedChange {
    /// Changes to raise have no request yet: the run sets the one it raised.
    fn from(p: PlannedChange) -> ReportedChange {
        ReportedChange {
            approval_id: p.disposition.request_id(),
            approval_state: p.disposition.state(),
            change: p.change,
        }
    }
}

/// Everything a run's reports show.
#[derive(Debug, Clone, Copy)]
pub struct RunReport<'a> {
    /// `None` for `plan` (dry run): the run_id cells are empty.
    pub run_id: Option<RunId>,
    /// For structure names.
    pub catalog: &'a Catalog,
    /// Already in report order.
    pub changes: &'a [ReportedChange],
    /// Already sorted.
    pub anomalies: &'a [Anomaly],
    pub counts: &'a BTreeMap<StructureId, StructureCounts>,
    /// Open (pending/approved) requests of the run's structures after the run.
    pub pending: &'a Queue,
    /// Key/value lines of the last sheet, "Run" (outcome, sources, guard message...).
    pub info: &'a [(String, String)],
    /// The workbook's creation date: the run's clock, so that the same run
    /// at the same `CHORUS_SYNC_NOW` writes the same bytes.
    pub created_at: DateTime<Utc>,
}

/// What a [`RunReport`] shows, owned: the engine hands it to the thread
/// that writes the reports while the store writes.
#[derive(Debug, Clone, Default)]
pub struct RunReportData {
    pub run_id: Option<RunId>,
    pub changes: Vec<ReportedChange>,
    pub anomalies: Vec<Anomaly>,
    pub counts: BTreeMap<StructureId, StructureCounts>,
    pub pending: Queue,
    pub info: Vec<(String, String)>,
    pub created_at: DateTime<Utc>,
}

impl RunReportData {
    pub fn view<'a>(&'a self, catalog: &'a Catalog) -> RunReport<'a> {
        RunReport {
            run_id: self.run_id,
            catalog,
            changes: &self.changes,
            anomalies: &self.anomalies,
            counts: &self.counts,
            pending: &self.pending,
            info: &self.info,
            created_at: self.created_at,
        }
    }
}

/// Where a run's reports went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    pub dir: PathBuf,
    /// In the order written: summary.csv, changes.csv, anomalies.csv, report.xlsx.
    pub files: Vec<PathBuf>,
}

/// Writes `summary.csv`, `changes.csv`, `anomalies.csv` and `report.xlsx`
/// (sheets Summary, Changes, Anomalies, Pending, Run) into `dir`, creating it
/// if needed. Each file is replaced atomically, and the set is all or
/// nothing: when one fails (disk full), those already written are removed,
/// so no folder holds half a run's reports.
pub fn write_run_reports(dir: &Path, report: &RunReport<'_>, delimiter: u8) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    let view = |part| View { report, part };
    let (summary, changes, anomalies) = (view(Part::Summary), view(Part::Changes), view(Part::Anomalies));
    let (pending, info) = (view(Part::Pending), view(Part::Info));
    // The CSV files are written on a thread of their own while the workbook
    // is written here: its last step, compressing the sheets, runs on one
    // core (about half of a million-row plan's reports).
    let csv = [("summary.csv", &summary), ("changes.csv", &changes), ("anomalies.csv", &anomalies)];
    let xlsx = dir.join("report.xlsx");
    let (csv_written, xlsx_written) = std::thread::scope(|scope| {
        let csv_thread = scope.spawn(|| {
            let mut files = Vec::with_capacity(csv.len());
            for (file, source) in csv {
                let path = dir.join(file);
                if let Err(e) = write_csv_source(&path, source, delimiter) {
                    return (files, Err(e));
                }
                files.push(path);
            }
            (files, Ok(()))
        });
        let xlsx_written =
            write_xlsx_sources(&xlsx, &[&summary, &changes, &anomalies, &pending, &info], report.created_at);
        // A panic there is a bug, carried on as if it had happened here.
        (csv_thread.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), xlsx_written)
    });
    let (mut files, csv_written) = csv_written;
    if xlsx_written.is_ok() {
        files.push(xlsx);
    }
    if let Err(e) = csv_written.and(xlsx_written) {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(ReportFiles { dir: dir.to_path_buf(), files })
}

pub fn changes_table(r: &RunReport<'_>) -> Table {
    collect(&View { report: r, part: Part::Changes })
}

pub fn anomalies_table(r: &RunReport<'_>) -> Table {
    collect(&View { report: r, part: Part::Anomalies })
}

/// One row per structure in `counts`, then a `TOTAL` row. The total's
/// anomalies also count those tied to no structure in `counts` (a client's
/// SIRET, a row without structure), so it matches `anomalies.csv`.
pub fn summary_table(r: &RunReport<'_>) -> Table {
    collect(&View { report: r, part: Part::Summary })
}

pub fn pending_table(r: &RunReport<'_>) -> Table {
    collect(&View { report: r, part: Part::Pending })
}

/// The "Run" sheet: `key`, `value`.
pub fn run_info_table(r: &RunReport<'_>) -> Table {
    collect(&View { report: r, part: Part::Info })
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Summary,
    Changes,
    Anomalies,
    Pending,
    Info,
}

/// One report table, its rows built as they are written.
struct View<'v, 'a> {
    report: &'v RunReport<'a>,
    part: Part,
}

impl TableSource for View<'_, '_> {
    fn name(&self) -> &str {
        match self.part {
            Part::Summary => "Summary",
            Part::Changes => "Changes",
            Part::Anomalies => "Anomalies",
            Part::Pending => "Pending",
            Part::Info => "Run",
        }
    }

    fn headers(&self) -> Vec<&str> {
        match self.part {
            Part::Summary => SUMMARY_COLUMNS.to_vec(),
            Part::Changes => CHANGES_COLUMNS.to_vec(),
            Part::Anomalies => ANOMALIES_COLUMNS.to_vec(),
            Part::Pending => PENDING_COLUMNS.to_vec(),
            Part::Info => INFO_COLUMNS.to_vec(),
        }
    }

    fn rows(&self) -> Box<dyn Iterator<Item = Cow<'_, [Value<'_>]>> + '_> {
        let r = self.report;
        match self.part {
            Part::Summary => Box::new(summary_rows(r).map(Cow::Owned)),
            Part::Changes => Box::new(r.changes.iter().map(|c| Cow::Owned(change_row(r, c)))),
            Part::Anomalies => Box::new(r.anomalies.iter().map(|a| Cow::Owned(anomaly_row(r, a)))),
            Part::Pending => Box::new(r.pending.iter().map(|p| Cow::Owned(pending_row(r, p)))),
            Part::Info => Box::new(r.info.iter().map(|(k, v)| Cow::Owned(vec![k.into(), v.into()]))),
        }
    }

    fn row_count(&self) -> Option<usize> {
        let r = self.report;
        Some(match self.part {
            // A row per structure, then the total.
            Part::Summary => r.counts.len() + 1,
            Part::Changes => r.changes.len(),
            Part::Anomalies => r.anomalies.len(),
            Part::Pending => r.pending.len(),
            Part::Info => r.info.len(),
        })
    }
}

fn structure_name<'a>(r: &RunReport<'a>, id: &StructureId) -> Option<&'a str> {
    r.catalog.get(id).map(|s| s.name.as_str())
}

fn change_row<'v>(r: &'v RunReport<'_>, rc: &'v ReportedChange) -> Vec<Value<'v>> {
    let c = &rc.change;
    vec![
        r.run_id.into(),
        c.kind.as_str().into(),
        c.key.structure.as_str().into(),
        structure_name(r, &c.key.structure).into(),
        c.service().map(ServiceCode::as_str).into(),
        c.key.email.as_str().into(),
        c.name.last_name.as_deref().into(),
        c.name.first_name.as_deref().into(),
        c.key.before.as_ref().map(Placement::label).into(),
        c.key.after.as_ref().map(Placement::label).into(),
        c.reason.to_string().into(),
        rc.approval_id.into(),
        rc.approval_state.map(RequestState::as_str).into(),
    ]
}

fn anomaly_row<'v>(r: &'v RunReport<'_>, a: &'v Anomaly) -> Vec<Value<'v>> {
    vec![
        r.run_id.into(),
        a.source().into(),
        a.location_text().into(),
        a.email.as_deref().into(),
        a.code.as_str().into(),
        a.message.as_str().into(),
    ]
}

fn summary_rows<'v>(r: &'v RunReport<'_>) -> impl Iterator<Item = Vec<Value<'v>>> + 'v {
    let mut total = StructureCounts::default();
    for c in r.counts.values() {
        total.current += c.current;
        total.desired += c.desired;
        total.attach += c.attach;
        total.detach += c.detach;
        total.moves += c.moves;
        total.rights += c.rights;
        total.raised += c.raised;
        total.anomalies += c.anomalies;
    }
    let unattributed = r.anomalies.iter().filter(|a| a.structure.as_ref().is_none_or(|s| !r.counts.contains_key(s)));
    total.anomalies += unattributed.count() as u64;
    let row = move |structure: Value<'v>, name: Value<'v>, c: &StructureCounts| {
        vec![
            r.run_id.into(),
            structure,
            name,
            c.current.into(),
            c.desired.into(),
            c.attach.into(),
            c.detach.into(),
            c.moves.into(),
            c.rights.into(),
            c.raised.into(),
            c.anomalies.into(),
        ]
    };
    r.counts
        .iter()
        .map(move |(id, c)| row(id.as_str().into(), structure_name(r, id).into(), c))
        .chain(iter::once_with(move || row(TOTAL.into(), Value::Empty, &total)))
}

fn pending_row<'v>(r: &'v RunReport<'_>, p: QueuedRequest<'v>) -> Vec<Value<'v>> {
    // The request keeps the name it was raised with; fall back to the catalog.
    let name =
        if p.structure_name.is_empty() { structure_name(r, p.structure).unwrap_or_default() } else { p.structure_name };
    vec![
        p.id.into(),
        p.state.as_str().into(),
        p.kind.as_str().into(),
        p.structure.as_str().into(),
        name.into(),
        p.service.into(),
        p.email.into(),
        p.last_name.into(),
        p.first_name.into(),
        p.description.into(),
        p.reason.into(),
        rfc3339(&p.created_at).into(),
        p.manager.into(),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use calamine::{Data, Reader, Xlsx, open_workbook};
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::{
        core::{
            anomaly::{AnomalyCode, Location, SourceFile},
            approval::ApprovalRequest,
            catalog::tests::sample,
            change::{ChangeKey, ChangeKind, LeftWhy, Reason},
        },
        domain::{Email, IdentifierType, PersonName, Rights},
    };

    const ACME: &str = "12345678200010";
    const HOSTILE: &str = "=HYPERLINK(\"http://evil.example\";\"x\")";

    fn sid(kind: IdentifierType, raw: &str) -> StructureId {
        StructureId::parse(kind, raw).unwrap()
    }

    fn place(service: Option<&str>, rights: &str) -> Placement {
        Placement { service: service.map(|s| ServiceCode::parse(s).unwrap()), rights: Rights::parse(rights).unwrap() }
    }

    fn name(last: &str, first: &str) -> PersonName {
        PersonName { last_name: Some(last.into()), first_name: Some(first.into()) }
    }

    fn change(
        structure: StructureId,
        email: &str,
        before: Option<Placement>,
        after: Option<Placement>,
        reason: Reason,
        who: PersonName,
    ) -> Change {
        let key = ChangeKey { structure, email: Email::parse(email).unwrap(), before, after };
        Change::new(key, reason, who, None).unwrap()
    }

    struct Fixture {
        catalog: Catalog,
        data: RunReportData,
    }

    impl Fixture {
        fn new() -> Fixture {
            let acme = sid(IdentifierType::Siret, ACME);
            let noumea = sid(IdentifierType::Ridet, "R-1234");
            let attach = change(
                acme.clone(),
                "Marie.Dupont@acme.fr",
                None,
                Some(place(Some("COMPTA"), "factures:modification")),
                Reason::New,
                name("Dupont", "Marie"),
            );
            let detach = change(
                acme.clone(),
                "eve@acme.fr",
                Some(place(None, "")),
                None,
                Reason::Left(LeftWhy::EndDate(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap())),
                name(HOSTILE, "Ève"),
            );
            let moved = change(
                noumea.clone(),
                "kai@acme.nc",
                Some(place(Some("A"), "")),
                Some(place(Some("B"), "")),
                Reason::ServiceChanged,
                PersonName::default(),
            );
            let changes = vec![
                ReportedChange {
                    change: attach.clone(),
                    approval_id: Some(101),
                    approval_state: Some(RequestState::Pending),
                },
                ReportedChange { change: detach, approval_id: None, approval_state: None },
                ReportedChange { change: moved, approval_id: Some(102), approval_state: Some(RequestState::Approved) },
            ];
            let anomalies = vec![
                Anomaly {
                    structure: None,
                    location: Some(Location {
                        file: SourceFile::new("hr", "samples/hr.xlsx", Some("Personnel")),
                        row: Some(12),
                        column: Some(Arc::from("SIRET")),
                        entry: None,
                    }),
                    email: Some("x@client.fr".into()),
                    code: AnomalyCode::UnknownStructure,
                    message: "structure \"73282932000074\" is not one of the configured structures".into(),
                },
                Anomaly {
                    structure: Some(acme.clone()),
                    location: None,
                    email: Some("gp@acme.fr".into()),
                    code: AnomalyCode::MainManagerProtected,
                    message: "-> the main manager is never detached".into(),
                },
            ];
            let mut counts = BTreeMap::new();
            let c = StructureCounts {
                current: 10,
                desired: 10,
                attach: 1,
                detach: 1,
                raised: 1,
                anomalies: 1,
                ..Default::default()
            };
            counts.insert(acme.clone(), c);
            counts.insert(noumea, StructureCounts { current: 2, desired: 2, moves: 1, ..Default::default() });
            let pending = [QueuedRequest::from(&ApprovalRequest {
                id: 101,
                run_id: 7,
                state: RequestState::Pending,
                kind: ChangeKind::Attach,
                key: attach.key.clone(),
                name: attach.name.clone(),
                reason: "new in source".into(),
                reason_category: "new".into(),
                description: "Rattacher Marie Dupont au service COMPTA de ACME France".into(),
                requester: "chorus-sync source hr, run 7".into(),
                structure_name: "ACME France".into(),
                manager: "gp@acme.fr".into(),
                origin: None,
                created_at: Utc.with_ymd_and_hms(2026, 3, 2, 5, 30, 0).unwrap(),
                decided_by: None,
                decided_at: None,
                motive: None,
                comment: None,
            })]
            .into_iter()
            .collect();
            let info = vec![("outcome".to_string(), "done".to_string()), ("sources".into(), "hr".into())];
            Fixture {
                catalog: sample(),
                data: RunReportData {
                    run_id: None,
                    changes,
                    anomalies,
                    counts,
                    pending,
                    info,
                    created_at: Utc.with_ymd_and_hms(2026, 3, 2, 5, 30, 0).unwrap(),
                },
            }
        }

        fn report(&self, run_id: Option<RunId>) -> RunReport<'_> {
            RunReport { run_id, ..self.data.view(&self.catalog) }
        }
    }

    fn read(path: &Path) -> String {
        String::from_utf8(std::fs::read(path).unwrap()).unwrap()
    }

    /// Files in `dir`, hidden temporaries included.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// The CSV files and the workbook are written on two threads: whichever
    /// fails, the files the other wrote go too, and the error names the file.
    #[test]
    fn one_report_that_cannot_be_written_takes_the_others_with_it() {
        let fx = Fixture::new();
        for blocked in ["changes.csv", "anomalies.csv", "report.xlsx"] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("7");
            // A folder where the file should go: it cannot be renamed over.
            std::fs::create_dir_all(dir.join(blocked).join("inside")).unwrap();
            let err = write_run_reports(&dir, &fx.report(Some(7)), b';').unwrap_err();
            assert!(err.to_string().contains(blocked), "{blocked}: {err}");
            assert_eq!(listing(&dir), [blocked], "{blocked}: only what was there before is left");
        }
    }

    #[test]
    fn csv_golden() {
        let fx = Fixture::new();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("7");
        let files = write_run_reports(&dir, &fx.report(Some(7)), b';').unwrap();
        assert_eq!(files.dir, dir);
        let expect_files: Vec<PathBuf> =
            ["summary.csv", "changes.csv", "anomalies.csv", "report.xlsx"].iter().map(|f| dir.join(f)).collect();
        assert_eq!(files.files, expect_files);
        assert_eq!(listing(&dir), ["anomalies.csv", "changes.csv", "report.xlsx", "summary.csv"]);

        let changes = concat!(
            "\u{feff}run_id;kind;structure;structure_name;service;user_email;last_name;first_name;before;after;",
            "reason;approval_id;approval_state\r\n",
            "7;attach;12345678200010;ACME France;COMPTA;marie.dupont@acme.fr;Dupont;Marie;;",
            "COMPTA [factures:modification];new in source;101;pending\r\n",
            "7;detach;12345678200010;ACME France;;eve@acme.fr;",
            "\"'=HYPERLINK(\"\"http://evil.example\"\";\"\"x\"\")\";Ève;(structure);;left: end date 2026-01-31;;\r\n",
            "7;move;R-1234;ACME Nouméa;B;kai@acme.nc;;;A;B;service changed in source;102;approved\r\n",
        );
        assert_eq!(read(&dir.join("changes.csv")), changes);

        let anomalies = concat!(
            "\u{feff}run_id;source;location;user_email;code;message\r\n",
            "7;hr;samples/hr.xlsx, sheet Personnel, row 12, column SIRET;x@client.fr;unknown_structure;",
            "\"structure \"\"73282932000074\"\" is not one of the configured structures\"\r\n",
            "7;;structure 12345678200010;gp@acme.fr;main_manager_protected;'-> the main manager is never detached\r\n",
        );
        assert_eq!(read(&dir.join("anomalies.csv")), anomalies);

        // R-1234 sorts before the SIRET; the total counts the anomaly tied to no structure.
        let summary = concat!(
            "\u{feff}run_id;structure;structure_name;current;desired;attach;detach;move;rights;raised;anomalies\r\n",
            "7;12345678200010;ACME France;10;10;1;1;0;0;1;1\r\n",
            "7;R-1234;ACME Nouméa;2;2;0;0;1;0;0;0\r\n",
            "7;TOTAL;;12;12;1;1;1;0;1;2\r\n",
        );
        assert_eq!(read(&dir.join("summary.csv")), summary);
    }

    #[test]
    fn a_dry_run_leaves_run_id_empty() {
        let fx = Fixture::new();
        let r = fx.report(None);
        for table in [changes_table(&r), anomalies_table(&r), summary_table(&r)] {
            assert_eq!(table.headers[0], "run_id");
            assert!(!table.rows.is_empty());
            assert!(table.rows.iter().all(|row| row[0] == Value::Empty), "{}", table.name);
        }
        let pending = pending_table(&r);
        assert_eq!(pending.headers, PENDING_COLUMNS);
        assert_eq!(
            pending.rows[0],
            [
                Value::Int(101),
                "pending".into(),
                "attach".into(),
                ACME.into(),
                "ACME France".into(),
                "COMPTA".into(),
                "marie.dupont@acme.fr".into(),
                "Dupont".into(),
                "Marie".into(),
                "Rattacher Marie Dupont au service COMPTA de ACME France".into(),
                "new in source".into(),
                "2026-03-02T05:30:00Z".into(),
                "gp@acme.fr".into(),
            ]
        );
    }

    #[test]
    fn planned_changes_report_their_disposition() {
        use crate::core::plan::Disposition;
        let fx = Fixture::new();
        let c = fx.data.changes[0].change.clone();
        let check = |d: Disposition, id: Option<RequestId>, state: Option<RequestState>| {
            let rc = ReportedChange::from(PlannedChange { change: c.clone(), disposition: d });
            assert_eq!((rc.approval_id, rc.approval_state), (id, state), "{d:?}");
        };
        check(Disposition::Raise, None, None);
        check(Disposition::Pending(5), Some(5), Some(RequestState::Pending));
        check(Disposition::Approved(6), Some(6), Some(RequestState::Approved));
        check(Disposition::Refused(7), Some(7), Some(RequestState::Refused));
    }

    fn sheet(path: &Path, name: &str) -> calamine::Range<Data> {
        let mut wb: Xlsx<_> = open_workbook(path).unwrap();
        wb.worksheet_range(name).unwrap()
    }

    fn row_texts(range: &calamine::Range<Data>, row: usize) -> Vec<String> {
        range.rows().nth(row).unwrap().iter().map(|c| c.to_string()).collect()
    }

    /// Regression: the workbook's creation date was the wall clock, so the
    /// same run at the same `CHORUS_SYNC_NOW` wrote another report.xlsx each
    /// time (and a benchmark could not compare two builds' with `cmp`).
    #[test]
    fn the_workbook_is_dated_by_the_run_and_the_same_report_writes_the_same_bytes() {
        let fx = Fixture::new();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_run_reports(a.path(), &fx.report(Some(7)), b';').unwrap();
        write_run_reports(b.path(), &fx.report(Some(7)), b';').unwrap();
        let bytes = |dir: &tempfile::TempDir| std::fs::read(dir.path().join("report.xlsx")).unwrap();
        assert!(bytes(&a) == bytes(&b), "two writes of one report differ");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(a.path().join("report.xlsx")).unwrap()).unwrap();
        let mut core = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("docProps/core.xml").unwrap(), &mut core).unwrap();
        assert!(core.contains(">2026-03-02T05:30:00Z</dcterms:created>"), "{core}");
    }

    #[test]
    fn xlsx_reads_back() {
        let fx = Fixture::new();
        let tmp = tempfile::tempdir().unwrap();
        write_run_reports(tmp.path(), &fx.report(Some(7)), b';').unwrap();
        let path = tmp.path().join("report.xlsx");
        let wb: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(wb.sheet_names(), ["Summary", "Changes", "Anomalies", "Pending", "Run"]);

        let changes = sheet(&path, "Changes");
        assert_eq!(changes.height(), 4);
        assert_eq!(row_texts(&changes, 0), CHANGES_COLUMNS);
        // The hostile name is text with the same `'` as in the CSV, not a formula.
        assert_eq!(changes.get_value((2, 6)), Some(&Data::String(format!("'{HOSTILE}"))));
        assert_eq!(changes.get_value((1, 0)), Some(&Data::Float(7.0)));
        assert_eq!(changes.get_value((1, 11)), Some(&Data::Float(101.0)));
        assert_eq!(changes.get_value((2, 11)), Some(&Data::Empty));
        assert_eq!(changes.get_value((3, 2)), Some(&Data::String("R-1234".into())));

        let summary = sheet(&path, "Summary");
        assert_eq!(row_texts(&summary, 0), SUMMARY_COLUMNS);
        assert_eq!(summary.height(), 4);
        assert_eq!(summary.get_value((3, 1)), Some(&Data::String(TOTAL.into())));
        assert_eq!(summary.get_value((3, 3)), Some(&Data::Float(12.0)));

        let anomalies = sheet(&path, "Anomalies");
        assert_eq!(row_texts(&anomalies, 0), ANOMALIES_COLUMNS);
        assert_eq!(anomalies.height(), 3);
        assert_eq!(anomalies.get_value((2, 5)), Some(&Data::String("'-> the main manager is never detached".into())));

        let pending = sheet(&path, "Pending");
        assert_eq!(row_texts(&pending, 0), PENDING_COLUMNS);
        assert_eq!(pending.height(), 2);
        assert_eq!(pending.get_value((1, 0)), Some(&Data::Float(101.0)));

        let run = sheet(&path, "Run");
        assert_eq!(row_texts(&run, 0), INFO_COLUMNS);
        assert_eq!(row_texts(&run, 1), ["outcome", "done"]);
    }

    #[test]
    fn xlsx_has_frozen_header_filter_and_widths() {
        let fx = Fixture::new();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("changes.xlsx");
        let mut long = changes_table(&fx.report(Some(7)));
        long.rows[0][10] = Value::from("x".repeat(500));
        crate::report::write_xlsx(&path, &[long]).unwrap();
        // calamine does not expose view settings: look at the sheet XML.
        let xml = zip_sheet(&path);
        assert!(xml.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#), "{xml}");
        assert!(xml.contains(r#"<autoFilter ref="A1:M4"/>"#), "{xml}");
        // The 500-character reason column is capped at 60; e-mails set their column's width.
        assert!(xml.contains(r#"<col min="11" max="11" width="60.7109375" customWidth="1"/>"#), "{xml}");
        assert!(xml.contains(r#"<col min="6" max="6" width="21.7109375" customWidth="1"/>"#), "{xml}");
        // Header cells are bold (style 1), data cells plain.
        assert!(xml.contains(r#"<c r="A1" s="1" t="inlineStr"><is><t>run_id</t></is></c>"#), "{xml}");
        assert!(xml.contains(r#"<c r="A2"><v>7</v></c>"#), "{xml}");
    }

    /// The first worksheet's XML, read with the zip reader calamine uses.
    fn zip_sheet(path: &Path) -> String {
        use std::io::Read;
        let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut xml = String::new();
        archive.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut xml).unwrap();
        xml
    }

    #[test]
    fn a_200k_row_changes_sheet_streams_through() {
        let fx = Fixture::new();
        let base = &fx.data.changes[0];
        let changes: Vec<ReportedChange> = (0..200_000)
            .map(|i| {
                let mut rc = base.clone();
                rc.change.key.email = Email::parse(&format!("user{i:06}@acme.fr")).unwrap();
                rc.approval_id = Some(i);
                rc
            })
            .collect();
        let report = RunReport { changes: &changes, ..fx.report(Some(8)) };
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.xlsx");
        write_xlsx_sources(&path, &[&View { report: &report, part: Part::Changes }], report.created_at).unwrap();
        assert_eq!(listing(tmp.path()), ["big.xlsx"]);
        // Streamed back from the zip: calamine's generic reader is slow in
        // unoptimised test builds, and the other tests cover it.
        let (rows, tail) = stream_sheet(&path);
        assert_eq!(rows, 200_001);
        let last = &tail[tail.rfind(r#"<row r="200001""#).expect("last row")..];
        assert!(last.contains(r#"<c r="A200001"><v>8</v></c>"#), "{last}");
        assert!(last.contains("<t>user199999@acme.fr</t>"), "{last}");
        assert!(last.contains(r#"<c r="L200001"><v>199999</v></c>"#), "{last}");
        assert!(last.ends_with("</worksheet>"), "{last}");
    }

    /// Counts the rows of the first sheet and keeps the end of its XML.
    fn stream_sheet(path: &Path) -> (usize, String) {
        use std::io::Read;
        const TAIL: usize = 1 << 14;
        let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut entry = archive.by_name("xl/worksheets/sheet1.xml").unwrap();
        let (mut rows, mut tail, mut buf) = (0, Vec::new(), vec![0; 1 << 20]);
        loop {
            let n = entry.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            // Every row ends with `</row>`: search the new bytes plus the 5
            // before them, so a tag across two reads counts once.
            let seam = tail.len().saturating_sub(5);
            tail.extend_from_slice(&buf[..n]);
            rows += String::from_utf8_lossy(&tail[seam..]).matches("</row>").count();
            let keep = tail.len().saturating_sub(TAIL);
            tail.drain(..keep);
        }
        (rows, String::from_utf8_lossy(&tail).into_owned())
    }
}
