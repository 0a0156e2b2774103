//! Printing: tables for people, CSV and JSON for scripts. The JSON shapes
//! of `approvals list/show` are a contract (DESIGN.md §4).

use std::{io::Write, path::Path};

use chorus_sync::{
    config::Config,
    core::{
        approval::{ApprovalRequest, HistoryEntry, RequestState, rfc3339},
        run::{RunOutcome, RunRecord, SourceRun},
    },
    engine::{DecisionOutcome, HousekeepingSummary, ImportSummary, RunSummary},
    report::{self, Table, Value},
    store::SourceRunRecord,
};
use comfy_table::{ContentArrangement, Table as Grid, presets::UTF8_FULL_CONDENSED};

use crate::{Format, ShowFormat};

fn grid(headers: &[&str]) -> Grid {
    let mut g = Grid::new();
    g.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    g
}

/// `approvals housekeeping`: what expired, who was reminded, what failed.
pub fn housekeeping(out: &mut impl Write, s: &HousekeepingSummary) -> std::io::Result<()> {
    let ids: Vec<String> = s.expired.iter().map(|id| format!("#{id}")).collect();
    match ids.len() {
        0 => writeln!(out, "expired: none")?,
        n => writeln!(out, "expired: {n} request(s) pending too long: {}", ids.join(", "))?,
    }
    match s.reminded.len() {
        0 => writeln!(out, "reminders: none sent")?,
        n => writeln!(out, "reminders: {n} sent: {}", s.reminded.join(", "))?,
    }
    for f in &s.failures {
        writeln!(out, "  warning: {f}")?;
    }
    Ok(())
}

pub fn run_summary(out: &mut impl Write, s: &RunSummary, config: &Config) -> std::io::Result<()> {
    let what = if s.dry_run { "plan".to_string() } else { format!("run {}", s.run_id.unwrap_or(0)) };
    let outcome = match (s.dry_run, s.outcome) {
        (true, RunOutcome::Done) => "dry run, nothing changed in the store".to_string(),
        (true, RunOutcome::Held) => "would be HELD by a guard; nothing changed".to_string(),
        (false, RunOutcome::Held) => "HELD by a guard: nothing raised".to_string(),
        (_, RunOutcome::Rejected) => "source REJECTED: nothing changed".to_string(),
        (false, RunOutcome::Done) => "done".to_string(),
    };
    writeln!(out, "{what}: {outcome}")?;
    if let Some(m) = &s.message {
        writeln!(out, "  why: {m}")?;
    }
    if s.held > 0 {
        writeln!(
            out,
            "  {} change(s) kept as held requests: managers may approve or refuse them one by one \
             (approvals approve|refuse ID… or --held), an operator may release them to the managers' queues \
             (approvals release ID… or --held --kind K --as EMAIL); `approvals list --state held` lists them",
            s.held
        )?;
    }
    for src in &s.sources {
        writeln!(out, "  {}", source_line(src))?;
    }
    if s.outcome != RunOutcome::Rejected {
        let mut g = grid(&[
            "structure",
            "name",
            "current",
            "desired",
            "attach",
            "detach",
            "move",
            "rights",
            "raised",
            "anomalies",
        ]);
        for (id, c) in &s.counts {
            let name = config.catalog.get(id).map_or("", |i| i.name.as_str());
            g.add_row(vec![
                id.to_string(),
                name.to_string(),
                c.current.to_string(),
                c.desired.to_string(),
                c.attach.to_string(),
                c.detach.to_string(),
                c.moves.to_string(),
                c.rights.to_string(),
                c.raised.to_string(),
                c.anomalies.to_string(),
            ]);
        }
        writeln!(out, "{g}")?;
        let t = &s.totals;
        let verb = if s.dry_run { "would raise" } else { "raised" };
        writeln!(
            out,
            "changes: {} attach, {} detach, {} move, {} rights; {verb} {} request(s), superseded {}; {} anomalies",
            t.attach, t.detach, t.moves, t.rights, t.raised, t.superseded, t.anomalies
        )?;
    } else if s.totals.anomalies > 0 {
        writeln!(out, "{} anomalies in the source", s.totals.anomalies)?;
    }
    for note in &s.notes {
        writeln!(out, "note: {note}")?;
    }
    let empty: Vec<&str> = s
        .counts
        .iter()
        .filter(|(_, c)| c.current == 0 && c.desired > 0)
        .map(|(id, _)| config.catalog.get(id).map_or(id.as_str(), |i| i.name.as_str()))
        .collect();
    if s.outcome != RunOutcome::Rejected && !empty.is_empty() {
        writeln!(
            out,
            "note: no current attachments are known for {}, so everyone is proposed for attach; \
             load the portal's export first with `chorus-sync import-current FILE`",
            empty.join(", ")
        )?;
    }
    if let Some(dir) = &s.report_dir {
        writeln!(out, "reports: {}/ (summary.csv, changes.csv, anomalies.csv, report.xlsx)", dir.display())?;
    }
    Ok(())
}

pub fn import_summary(out: &mut impl Write, file: &Path, s: &ImportSummary, config: &Config) -> std::io::Result<()> {
    if !s.errors.is_empty() {
        writeln!(out, "import-current {}: REJECTED, nothing imported ({} problem(s))", file.display(), s.errors.len())?;
        for e in s.errors.iter().take(50) {
            writeln!(out, "  {e}")?;
        }
        if s.errors.len() > 50 {
            writeln!(out, "  … and {} more", s.errors.len() - 50)?;
        }
        return Ok(());
    }
    writeln!(out, "import-current {}: {} rows", file.display(), s.rows)?;
    for (id, n) in &s.structures {
        let name = config.catalog.get(id).map_or("", |i| i.name.as_str());
        writeln!(out, "  {id} {name}: {n} attachment(s)")?;
    }
    if s.skipped_unmanaged > 0 {
        writeln!(out, "  {} row(s) of structures not in the configuration ignored", s.skipped_unmanaged)?;
    }
    if !s.applied.is_empty() {
        let ids: Vec<String> = s.applied.iter().map(|i| format!("#{i}")).collect();
        writeln!(out, "  applied: {}", ids.join(", "))?;
    }
    if let (false, Some(days)) = (s.overdue.is_empty(), config.approvals.apply_within_days) {
        writeln!(out, "  approved more than {days} days ago and still not applied in the portal:")?;
        for r in &s.overdue {
            let when = r.decided_at.as_ref().map(rfc3339).unwrap_or_default();
            writeln!(
                out,
                "    #{} {} (approved {when} by {})",
                r.id,
                r.description,
                r.decided_by.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

const LIST_COLUMNS: [&str; 10] =
    ["id", "state", "kind", "structure", "service", "user_email", "description", "created_at", "manager", "run_id"];

fn list_row(r: &ApprovalRequest) -> Vec<Value<'_>> {
    vec![
        Value::Int(r.id),
        r.state.as_str().into(),
        r.kind.as_str().into(),
        r.key.structure.as_str().into(),
        r.service().unwrap_or("").into(),
        r.key.email.as_str().into(),
        r.description.as_str().into(),
        rfc3339(&r.created_at).into(),
        r.manager.as_str().into(),
        Value::Int(r.run_id),
    ]
}

pub fn approvals_list(
    out: &mut impl Write,
    reqs: &[ApprovalRequest],
    format: Format,
    delimiter: u8,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let views: Vec<_> = reqs.iter().map(|r| r.view(None)).collect();
            serde_json::to_writer_pretty(&mut *out, &views)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut table = Table::new("Approvals", LIST_COLUMNS);
            for r in reqs {
                table.push(list_row(r));
            }
            report::write_csv_to(&mut *out, &table, delimiter, false)?;
        }
        Format::Table => {
            let mut g = grid(&["id", "state", "kind", "structure", "service", "user", "description", "created"]);
            for r in reqs {
                g.add_row(vec![
                    r.id.to_string(),
                    r.state.to_string(),
                    r.kind.to_string(),
                    r.key.structure.to_string(),
                    r.service().unwrap_or("").to_string(),
                    r.key.email.to_string(),
                    r.description.clone(),
                    r.created_at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
                ]);
            }
            writeln!(out, "{g}")?;
            let pending = reqs.iter().filter(|r| r.state == RequestState::Pending).count();
            writeln!(out, "{} request(s), {pending} pending", reqs.len())?;
        }
    }
    Ok(())
}

pub fn approval_show(
    out: &mut impl Write,
    r: &ApprovalRequest,
    history: &[HistoryEntry],
    format: ShowFormat,
) -> anyhow::Result<()> {
    let view = r.view(Some(history));
    if format == ShowFormat::Json {
        serde_json::to_writer_pretty(&mut *out, &view)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "#{} {} {} — {}", r.id, r.kind, r.state, r.description)?;
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let lines: Vec<(&str, String)> = vec![
        ("structure", format!("{} {}", view.structure, view.structure_name)),
        ("service", opt(&view.service)),
        ("user", view.user_email.clone()),
        ("name", [opt(&view.first_name), opt(&view.last_name)].join(" ").trim().to_string()),
        ("before", opt(&view.before)),
        ("after", opt(&view.after)),
        ("reason", view.reason.clone()),
        ("facts", opt(&view.origin)),
        ("requester", view.requester.clone()),
        ("created", view.created_at.clone()),
        ("manager", view.manager.clone()),
        ("decided by", opt(&view.decided_by)),
        ("decided at", opt(&view.decided_at)),
        ("motive", opt(&view.motive)),
        ("comment", opt(&view.comment)),
    ];
    for (k, v) in lines.into_iter().filter(|(_, v)| !v.is_empty()) {
        writeln!(out, "  {k:<11} {v}")?;
    }
    let mut g = grid(&["at", "by", "from", "to", "comment"]);
    for h in history {
        g.add_row(vec![
            rfc3339(&h.at),
            h.by.clone().unwrap_or_default(),
            h.from.map_or(String::new(), |s| s.to_string()),
            h.to.to_string(),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "history:\n{g}")?;
    Ok(())
}

pub fn decisions(out: &mut impl Write, outcomes: &[DecisionOutcome], ok: bool) -> std::io::Result<()> {
    for o in outcomes {
        match &o.result {
            Ok(state) if ok => writeln!(out, "#{}: {state}", o.id)?,
            Ok(state) => writeln!(out, "#{}: would be {state}, not applied (another id failed)", o.id)?,
            Err(e) => writeln!(out, "#{}: ERROR {e}", o.id)?,
        }
    }
    if !ok {
        writeln!(out, "nothing changed: fix or remove the ids in error and try again")?;
    }
    Ok(())
}

/// The action list for the portal: approved changes not yet applied.
pub fn export_actions(file: &Path, reqs: &[ApprovalRequest], delimiter: u8) -> anyhow::Result<()> {
    let headers = [
        "approval_id",
        "kind",
        "structure",
        "structure_name",
        "service",
        "user_email",
        "last_name",
        "first_name",
        "before",
        "after",
        "description",
        "decided_by",
        "decided_at",
    ];
    let rows = reqs
        .iter()
        .map(|r| {
            let view = r.view(None);
            vec![
                Value::Int(r.id),
                r.kind.as_str().into(),
                view.structure.into(),
                view.structure_name.into(),
                view.service.into(),
                view.user_email.into(),
                view.last_name.into(),
                view.first_name.into(),
                view.before.into(),
                view.after.into(),
                view.description.into(),
                view.decided_by.into(),
                view.decided_at.into(),
            ]
        })
        .collect();
    let table = Table { name: "Actions".into(), headers: headers.iter().map(|s| s.to_string()).collect(), rows };
    let is_xlsx = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if is_xlsx {
        report::write_xlsx(file, &[table])?
    } else {
        report::write_csv(file, &table, delimiter)?
    }
    Ok(())
}

pub fn runs_list(
    out: &mut impl Write,
    runs: &[RunRecord],
    format: ShowFormat,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    if format == ShowFormat::Json {
        serde_json::to_writer_pretty(&mut *out, runs)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut g = grid(&[
        "id",
        "started",
        "outcome",
        "sources",
        "attach",
        "detach",
        "move",
        "rights",
        "raised",
        "anomalies",
        "message",
    ]);
    for r in runs {
        let c = &r.counts;
        g.add_row(vec![
            r.id.to_string(),
            r.started_at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
            r.outcome.to_string(),
            r.sources.join(","),
            c.attach.to_string(),
            c.detach.to_string(),
            c.moves.to_string(),
            c.rights.to_string(),
            c.raised.to_string(),
            c.anomalies.to_string(),
            r.message.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "{g}")?;
    Ok(())
}

pub fn run_show(
    out: &mut impl Write,
    r: &RunRecord,
    sources: &[SourceRunRecord],
    format: ShowFormat,
) -> anyhow::Result<()> {
    if format == ShowFormat::Json {
        let srcs: Vec<_> = sources.iter().map(|s| &s.run).collect();
        let mut v = serde_json::to_value(r)?;
        v["source_runs"] = serde_json::to_value(srcs)?;
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let c = &r.counts;
    writeln!(out, "run {} {}", r.id, r.outcome)?;
    writeln!(out, "  started   {}", rfc3339(&r.started_at))?;
    writeln!(out, "  finished  {}", rfc3339(&r.finished_at))?;
    if let Some(m) = &r.message {
        writeln!(out, "  message   {m}")?;
    }
    if let Some(by) = &r.forced_by {
        writeln!(out, "  forced by {by}")?;
    }
    if let Some(d) = &r.report_dir {
        writeln!(out, "  reports   {d}")?;
    }
    writeln!(
        out,
        "  changes   {} attach, {} detach, {} move, {} rights; raised {}, superseded {}; {} anomalies",
        c.attach, c.detach, c.moves, c.rights, c.raised, c.superseded, c.anomalies
    )?;
    for s in sources {
        writeln!(out, "  {}", source_line(&s.run))?;
    }
    Ok(())
}

/// `source hr: samples/hr.xlsx, 30 rows, 25 valid[ — rejected]`
fn source_line(s: &SourceRun) -> String {
    // The reason itself is the run's message, printed once above.
    let status = if s.rejected.is_some() { " — rejected" } else { "" };
    format!("source {}: {}, {} rows, {} valid{status}", s.source, s.origin, s.rows, s.valid_rows)
}
