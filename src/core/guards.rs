//! Guards: the checks that stop a run from doing damage when a source is
//! truncated or a plan is too large to be plausible. Pure functions over
//! counts; the engine records a held or rejected run from what they return.

use std::fmt;

use super::{
    change::ChangeKind,
    plan::{Disposition, Plan},
};
use crate::{config::GuardsConfig, domain::StructureId};

/// Why a source is not trusted this run (exit code 3): nothing changes.
pub fn check_source(rows: u64, last_accepted_rows: Option<u64>, guards: &GuardsConfig) -> Result<(), String> {
    if rows == 0 {
        return Err("the source has no data rows; refusing to treat everyone as gone".to_string());
    }
    if let (Some(ratio), Some(last)) = (guards.min_rows_ratio, last_accepted_rows) {
        let min = (last as f64 * ratio).ceil() as u64;
        if rows < min {
            return Err(format!(
                "{rows} rows, fewer than {min} ({:.0}% of the {last} rows of the last accepted run, min_rows_ratio = {ratio})",
                ratio * 100.0
            ));
        }
    }
    Ok(())
}

/// A guard that tripped: the run is held (exit code 4), nothing is raised.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardTrip {
    MaxDetach { count: u64, limit: u64 },
    MaxDetachPercent { structure: StructureId, count: u64, current: u64, limit: f64 },
}

impl fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardTrip::MaxDetach { count, limit } => {
                write!(f, "max_detach: {count} detaches would be raised, the limit is {limit} per run")
            }
            GuardTrip::MaxDetachPercent { structure, count, current, limit } => write!(
                f,
                "max_detach_percent: {count} detaches of {current} attachments in structure {structure} ({:.1}%), the limit is {limit}%",
                *count as f64 * 100.0 / *current as f64
            ),
        }
    }
}

/// The guards a plan trips; empty means go. Only new requests count: a
/// detach already pending was accepted by an earlier run.
pub fn evaluate(plan: &Plan, guards: &GuardsConfig) -> Vec<GuardTrip> {
    let raised = |kind: ChangeKind, structure: Option<&StructureId>| {
        plan.changes
            .iter()
            .filter(|c| c.disposition == Disposition::Raise && c.change.kind == kind)
            .filter(|c| structure.is_none_or(|s| *s == c.change.key.structure))
            .count() as u64
    };
    let mut trips = Vec::new();
    if let Some(limit) = guards.max_detach {
        let count = raised(ChangeKind::Detach, None);
        if count > limit {
            trips.push(GuardTrip::MaxDetach { count, limit });
        }
    }
    if let Some(limit) = guards.max_detach_percent {
        for (structure, counts) in &plan.counts {
            let count = raised(ChangeKind::Detach, Some(structure));
            if count > 0 && count as f64 * 100.0 > limit * counts.current as f64 {
                trips.push(GuardTrip::MaxDetachPercent {
                    structure: structure.clone(),
                    count,
                    current: counts.current,
                    limit,
                });
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
        GuardsConfig { max_detach: max, max_detach_percent: pct, min_rows_ratio: ratio, grace_runs: 0 }
    }

    #[test]
    fn source_checks() {
        let g = guards(None, None, Some(0.8));
        for (rows, last, ok) in [
            (100, None, true),
            (0, None, false),
            (0, Some(0), false),
            (80, Some(100), true),
            (79, Some(100), false),
            (1, Some(1), true),
            (500, Some(100), true),
        ] {
            assert_eq!(check_source(rows, last, &g).is_ok(), ok, "rows {rows}, last {last:?}");
        }
        let msg = check_source(40, Some(100), &g).unwrap_err();
        assert_eq!(msg, "40 rows, fewer than 80 (80% of the 100 rows of the last accepted run, min_rows_ratio = 0.8)");
        assert!(check_source(1, Some(100), &guards(None, None, None)).is_ok());
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
