//! Guards: the checks that stop a run from doing damage when a source is
//! truncated or a plan is too large to be plausible. Pure functions over
//! counts; the engine records a held or rejected run from what they return.

use std::{collections::BTreeMap, fmt};

use super::{
    change::ChangeKind,
    plan::{Disposition, Plan},
    record::{ColumnMap, Field},
};
use crate::{config::GuardsConfig, domain::StructureId};

/// Non-blank cells per mapped field in one source run.
pub type FieldFill = BTreeMap<Field, u64>;

/// What a source run looked like, for comparison with the next one.
#[derive(Debug, Clone, Copy)]
pub struct SourceShape<'a> {
    pub rows: u64,
    pub fill: &'a FieldFill,
}

/// A column counts as "used to be filled" when at least this share of the
/// last accepted run's rows had it: sparse columns (end dates, statuses of
/// leavers) legitimately empty out, and must not reject a source.
const MOSTLY_FILLED: f64 = 0.5;

/// Why a source is not trusted this run (exit code 3): nothing changes.
/// `columns` names each field's header, for the message.
pub fn check_source(
    now: SourceShape,
    last_accepted: Option<SourceShape>,
    columns: &ColumnMap,
    guards: &GuardsConfig,
) -> Result<(), String> {
    let rows = now.rows;
    if rows == 0 {
        return Err("the source has no data rows; refusing to treat everyone as gone".to_string());
    }
    let Some(last) = last_accepted else { return Ok(()) };
    if let Some(ratio) = guards.min_rows_ratio {
        let min = (last.rows as f64 * ratio).ceil() as u64;
        if rows < min {
            return Err(format!(
                "{rows} rows, fewer than {min} ({:.0}% of the {} rows of the last accepted run, min_rows_ratio = {ratio})",
                ratio * 100.0,
                last.rows
            ));
        }
    }
    let Some(ratio) = guards.min_fill_ratio else { return Ok(()) };
    let share = |filled: u64, rows: u64| if rows == 0 { 0.0 } else { filled as f64 / rows as f64 };
    let mut emptied = Vec::new();
    for (field, header) in columns.iter() {
        let (Some(&before), Some(&after)) = (last.fill.get(&field), now.fill.get(&field)) else { continue };
        let (was, is) = (share(before, last.rows), share(after, rows));
        if was >= MOSTLY_FILLED && is < was * ratio {
            emptied.push(format!(
                "column {header:?} ({field}) is filled in {after} of {rows} rows ({:.0}%), against {before} of {} ({:.0}%) in the last accepted run",
                is * 100.0,
                last.rows,
                was * 100.0
            ));
        }
    }
    if emptied.is_empty() { Ok(()) } else { Err(format!("{}; min_fill_ratio = {ratio}", emptied.join("; "))) }
}

/// A guard that tripped: the run is held (exit code 4), nothing is raised.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardTrip {
    /// `max_<kind>`: too many new requests of one kind in the run.
    Max { kind: ChangeKind, count: u64, limit: u64 },
    /// `max_<kind>_percent`: too many for one structure's size.
    MaxPercent { kind: ChangeKind, structure: StructureId, count: u64, current: u64, limit: f64 },
}

impl fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardTrip::Max { kind, count, limit } => {
                write!(f, "max_{kind}: {count} {} would be raised, the limit is {limit} per run", plural(*kind))
            }
            GuardTrip::MaxPercent { kind, structure, count, current, limit } => write!(
                f,
                "max_{kind}_percent: {count} {} of {current} attachments in structure {structure} ({:.1}%), the limit is {limit}%",
                plural(*kind),
                *count as f64 * 100.0 / *current as f64
            ),
        }
    }
}

fn plural(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Attach => "attaches",
        ChangeKind::Detach => "detaches",
        ChangeKind::Move => "moves",
        ChangeKind::Rights => "rights changes",
    }
}

/// The guards a plan trips; empty means go. Only new requests count: a
/// change already pending was accepted by an earlier run. Percentages are
/// of the structure's current attachments; a structure with none known
/// (never imported) has no base for one.
pub fn evaluate(plan: &Plan, guards: &GuardsConfig) -> Vec<GuardTrip> {
    let mut per_run: BTreeMap<ChangeKind, u64> = BTreeMap::new();
    let mut per_structure: BTreeMap<(ChangeKind, &StructureId), u64> = BTreeMap::new();
    for c in plan.changes.iter().filter(|c| c.disposition == Disposition::Raise) {
        *per_run.entry(c.change.kind).or_default() += 1;
        *per_structure.entry((c.change.kind, &c.change.key.structure)).or_default() += 1;
    }
    let mut trips = Vec::new();
    for kind in ChangeKind::ALL {
        let (max, max_percent) = guards.limits(kind);
        let count = per_run.get(&kind).copied().unwrap_or(0);
        if let Some(limit) = max.filter(|l| count > *l) {
            trips.push(GuardTrip::Max { kind, count, limit });
        }
        let Some(limit) = max_percent else { continue };
        for (structure, counts) in &plan.counts {
            let count = per_structure.get(&(kind, structure)).copied().unwrap_or(0);
            if count > 0 && counts.current > 0 && count as f64 * 100.0 > limit * counts.current as f64 {
                let (structure, current) = (structure.clone(), counts.current);
                trips.push(GuardTrip::MaxPercent { kind, structure, count, current, limit });
            }
        }
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{
            change::{Change, ChangeKey, Reason},
            plan::{PlannedChange, StructureCounts},
        },
        domain::{Email, IdentifierType, PersonName, Placement},
    };

    fn guards(max: Option<u64>, pct: Option<f64>, ratio: Option<f64>) -> GuardsConfig {
        GuardsConfig {
            max_detach: max,
            max_detach_percent: pct,
            min_rows_ratio: ratio,
            grace_runs: 0,
            ..GuardsConfig::default()
        }
    }

    #[test]
    fn source_checks() {
        let g = guards(None, None, Some(0.8));
        let none = FieldFill::new();
        let shape = |rows| SourceShape { rows, fill: &none };
        let cols = ColumnMap::default();
        for (rows, last, ok) in [
            (100, None, true),
            (0, None, false),
            (0, Some(0), false),
            (80, Some(100), true),
            (79, Some(100), false),
            (1, Some(1), true),
            (500, Some(100), true),
        ] {
            assert_eq!(check_source(shape(rows), last.map(shape), &cols, &g).is_ok(), ok, "rows {rows}, last {last:?}");
        }
        let msg = check_source(shape(40), Some(shape(100)), &cols, &g).unwrap_err();
        assert_eq!(msg, "40 rows, fewer than 80 (80% of the 100 rows of the last accepted run, min_rows_ratio = 0.8)");
        assert!(check_source(shape(1), Some(shape(100)), &cols, &guards(None, None, None)).is_ok());
    }

    /// (field's fill last run of 100 rows, fill now of `rows` rows, rows, min_fill_ratio, accepted)
    #[test]
    fn a_column_that_empties_rejects_the_source() {
        type Case = (Option<u64>, Option<u64>, u64, Option<f64>, bool);
        let table: &[Case] = &[
            (Some(100), Some(100), 100, Some(0.5), true),
            (Some(100), Some(50), 100, Some(0.5), true),
            (Some(100), Some(49), 100, Some(0.5), false),
            (Some(100), Some(0), 100, Some(0.5), false),
            (Some(100), Some(0), 100, None, true),
            // The ratio is of shares: half the rows, half the fill is fine.
            (Some(100), Some(45), 90, Some(0.5), true),
            (Some(80), Some(30), 100, Some(0.5), false),
            // A sparse column (end dates of leavers) may empty out.
            (Some(49), Some(0), 100, Some(0.5), true),
            (Some(50), Some(0), 100, Some(0.5), false),
            // Not counted on one side (a newly mapped column): no comparison.
            (None, Some(0), 100, Some(0.5), true),
            (Some(100), None, 100, Some(0.5), true),
            (Some(100), Some(99), 100, Some(1.0), false),
        ];
        let cols =
            ColumnMap::new([(Field::Email, "Courriel".to_string()), (Field::Service, "Code service".to_string())]);
        for (before, after, rows, ratio, ok) in table {
            let fill = |n: &Option<u64>| -> FieldFill {
                let mut f = FieldFill::new();
                if let Some(n) = n {
                    f.insert(Field::Service, *n);
                }
                f
            };
            let (last, now) = (fill(before), fill(after));
            let g = GuardsConfig { min_rows_ratio: None, min_fill_ratio: *ratio, ..GuardsConfig::default() };
            let got = check_source(
                SourceShape { rows: *rows, fill: &now },
                Some(SourceShape { rows: 100, fill: &last }),
                &cols,
                &g,
            );
            assert_eq!(got.is_ok(), *ok, "{before:?} -> {after:?} of {rows}, ratio {ratio:?}: {got:?}");
        }
        let last: FieldFill = [(Field::Email, 120), (Field::Service, 118)].into_iter().collect();
        let now: FieldFill = [(Field::Email, 120), (Field::Service, 0)].into_iter().collect();
        let msg = check_source(
            SourceShape { rows: 120, fill: &now },
            Some(SourceShape { rows: 120, fill: &last }),
            &cols,
            &GuardsConfig::default(),
        )
        .unwrap_err();
        assert_eq!(
            msg,
            "column \"Code service\" (service) is filled in 0 of 120 rows (0%), against 118 of 120 (98%) in the last accepted run; min_fill_ratio = 0.5"
        );
    }

    fn plan(detaches: &[(&str, Disposition)], current: u64) -> Plan {
        let s = StructureId::parse(IdentifierType::Siret, "12345678200010").unwrap();
        let changes = detaches
            .iter()
            .map(|(e, d)| PlannedChange {
                change: Change::new(
                    ChangeKey {
                        structure: s.clone(),
                        email: Email::parse(e).unwrap(),
                        before: Some(Placement { service: None, rights: Default::default() }),
                        after: None,
                    },
                    Reason::Absent { runs: 1 },
                    PersonName::default(),
                    None,
                )
                .unwrap(),
                disposition: *d,
            })
            .collect();
        let counts = [(s, StructureCounts { current, ..Default::default() })].into_iter().collect();
        Plan { changes, counts, ..Default::default() }
    }

    #[test]
    fn every_kind_has_its_thresholds() {
        let s = StructureId::parse(IdentifierType::Siret, "12345678200010").unwrap();
        let change = |e: &str, before: Option<&str>, after: Option<&str>| {
            let place = |svc: &str| Placement {
                service: Some(crate::domain::ServiceCode::parse(svc).unwrap()),
                rights: Default::default(),
            };
            let key = ChangeKey {
                structure: s.clone(),
                email: Email::parse(e).unwrap(),
                before: before.map(place),
                after: after.map(place),
            };
            PlannedChange {
                change: Change::new(key, Reason::New, PersonName::default(), None).unwrap(),
                disposition: Disposition::Raise,
            }
        };
        let changes = vec![
            change("a@x.fr", None, Some("COMPTA")),
            change("b@x.fr", None, Some("COMPTA")),
            change("c@x.fr", Some("COMPTA"), Some("ACHATS")),
        ];
        let counts = [(s.clone(), StructureCounts { current: 10, ..Default::default() })].into_iter().collect();
        let plan = Plan { changes, counts, ..Default::default() };
        let g = GuardsConfig { max_attach: Some(1), max_move_percent: Some(5.0), ..GuardsConfig::default() };
        let trips: Vec<String> = evaluate(&plan, &g).iter().map(ToString::to_string).collect();
        assert_eq!(
            trips,
            [
                "max_attach: 2 attaches would be raised, the limit is 1 per run",
                "max_move_percent: 1 moves of 10 attachments in structure 12345678200010 (10.0%), the limit is 5%",
            ]
        );
        // A structure with no known attachments has no base for a percentage.
        let mut empty = plan.clone();
        empty.counts.values_mut().for_each(|c| c.current = 0);
        let g = GuardsConfig { max_attach_percent: Some(5.0), ..GuardsConfig::default() };
        assert!(evaluate(&empty, &g).is_empty());
    }

    #[test]
    fn detach_thresholds() {
        let r = Disposition::Raise;
        let three = [("a@x.fr", r), ("b@x.fr", r), ("c@x.fr", Disposition::Pending(1))];
        // (max_detach, max_detach_percent, current attachments, guards expected to trip)
        type Case<'a> = (Option<u64>, Option<f64>, u64, &'a [&'a str]);
        let table: &[Case] = &[
            (Some(2), None, 100, &[]),
            (Some(1), None, 100, &["max_detach"]),
            (None, Some(10.0), 20, &[]),
            (None, Some(10.0), 19, &["max_detach_percent"]),
            (Some(1), Some(5.0), 20, &["max_detach", "max_detach_percent"]),
            (None, None, 2, &[]),
        ];
        for (max, pct, current, expect) in table {
            let trips = evaluate(&plan(&three, *current), &guards(*max, *pct, None));
            let names: Vec<String> =
                trips.iter().map(|t| t.to_string().split(':').next().unwrap().to_string()).collect();
            assert_eq!(names, *expect, "max {max:?} pct {pct:?} current {current}");
        }
        let trips = evaluate(&plan(&three, 19), &guards(None, Some(10.0), None));
        assert_eq!(
            trips[0].to_string(),
            "max_detach_percent: 2 detaches of 19 attachments in structure 12345678200010 (10.5%), the limit is 10%"
        );
    }
}
