use std::collections::{BTreeSet, HashMap};

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;
use crate::core::anomaly::SourceFile;
use crate::core::{
    change::LeftWhy,
    mapping::{Mapped, SourceRow},
};
use crate::{
    core::{approval::RequestId, catalog::tests::sample},
    domain::IdentifierType,
};

const ACME: &str = "12345678200010";

fn sid(s: &str) -> StructureId {
    if s.starts_with("R-") {
        StructureId::parse(IdentifierType::Ridet, s).unwrap()
    } else {
        StructureId::parse(IdentifierType::Siret, s).unwrap()
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// `"COMPTA factures:modification"`, `"- "` for structure level without rights.
fn place(spec: &str) -> Placement {
    let (service, rights) = spec.split_once(' ').unwrap_or((spec, ""));
    Placement {
        service: (service != "-").then(|| ServiceCode::parse(service).unwrap()),
        rights: Rights::parse(rights).unwrap(),
    }
}

fn loc(row: u64) -> Location {
    Location { file: SourceFile::new("hr", "hr.csv", None), row: Some(row), column: None, entry: None }
}

/// Desired rows: (email, placement spec, left?).
fn desired(rows: &[(&str, &str, Option<LeftWhy>)]) -> DesiredBuilder {
    let mut d = DesiredBuilder::default();
    for (i, (e, p, left)) in rows.iter().enumerate() {
        d.add(Mapped::Row(SourceRow {
            email: email(e),
            name: PersonName::default(),
            employee_id: None,
            structure: sid(ACME),
            placement: place(p),
            left: left.clone(),
            location: loc(i as u64 + 2),
        }));
    }
    d
}

fn current(rows: &[(&str, &str)]) -> Vec<CurrentAttachment> {
    rows.iter()
        .map(|(e, p)| CurrentAttachment {
            attachment: Attachment { structure: sid(ACME), email: email(e), placement: place(p) },
            name: PersonName::default(),
        })
        .collect()
}

#[derive(Default)]
struct Case<'a> {
    desired: Vec<(&'a str, &'a str, Option<LeftWhy>)>,
    rejected: Vec<&'a str>,
    current: Vec<(&'a str, &'a str)>,
    /// (id, state, email, before, after) with "" for none.
    open: Vec<(RequestId, RequestState, &'a str, &'a str, &'a str)>,
    refused: Vec<(RequestId, &'a str, &'a str, &'a str, &'a str)>,
    absences: Vec<(&'a str, u32)>,
    grace: u32,
}

fn key(e: &str, before: &str, after: &str) -> ChangeKey {
    let opt = |s: &str| (!s.is_empty()).then(|| place(s));
    ChangeKey { structure: sid(ACME), email: email(e), before: opt(before), after: opt(after) }
}

fn run(case: &Case) -> Plan {
    let catalog = sample();
    let scope: BTreeSet<StructureId> = [sid(ACME)].into_iter().collect();
    let mut d = desired(&case.desired);
    for e in &case.rejected {
        d.add(Mapped::Rejected { email: Some(email(e)), anomalies: vec![] });
    }
    let d = d.finish();
    let cur = current(&case.current);
    let open: Vec<OpenRequest> =
        case.open.iter().map(|(id, st, e, b, a)| OpenRequest { id: *id, state: *st, key: key(e, b, a) }).collect();
    let refused: Vec<RefusedChange> = case
        .refused
        .iter()
        .map(|(id, e, b, a, cat)| RefusedChange { id: *id, key: key(e, b, a), reason_category: cat.to_string() })
        .collect();
    let absences: Vec<AbsenceStreak> = case
        .absences
        .iter()
        .map(|(e, n)| AbsenceStreak { structure: sid(ACME), email: email(e), missed_runs: *n })
        .collect();
    let known = HashMap::new();
    let cur: CurrentState = cur.into_iter().collect();
    diff_checked(&DiffInput {
        catalog: &catalog,
        scope: &scope,
        desired: &d,
        current: &cur,
        open: &open,
        refused: &refused,
        absences: &absences,
        known_ids: &known,
        grace_runs: case.grace,
    })
}

/// The plan, checked against the one the full comparison of every person
/// makes on one thread (`diff` compares in two halves from two people on in
/// debug builds).
fn diff_checked(input: &DiffInput<'_>) -> Plan {
    let plan = diff(input);
    assert_eq!(plan, diff_with::<false>(input, usize::MAX), "the fast path changed the plan");
    plan
}

/// The diff over the ACME scope with no request history and `grace_runs = 0`.
fn plan_of(
    desired: &Desired,
    current: &[CurrentAttachment],
    open: &[OpenRequest],
    known: &HashMap<Box<str>, Email>,
) -> Plan {
    let catalog = sample();
    let scope: BTreeSet<StructureId> = [sid(ACME)].into_iter().collect();
    let current: CurrentState = current.iter().cloned().collect();
    diff_checked(&DiffInput {
        catalog: &catalog,
        scope: &scope,
        desired,
        current: &current,
        open,
        refused: &[],
        absences: &[],
        known_ids: known,
        grace_runs: 0,
    })
}

/// Changes as `kind email before -> after (reason) disposition`.
fn show(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|p| {
            let c = &p.change;
            let label = |x: &Option<Placement>| x.as_ref().map_or("_".to_string(), Placement::label);
            let disp = match p.disposition {
                Disposition::Raise => "raise".to_string(),
                Disposition::Pending(id) => format!("pending#{id}"),
                Disposition::Approved(id) => format!("approved#{id}"),
                Disposition::Refused(id) => format!("refused#{id}"),
            };
            format!(
                "{} {} {} -> {} ({}) {disp}",
                c.kind,
                c.key.email,
                label(&c.key.before),
                label(&c.key.after),
                c.reason
            )
        })
        .collect()
}

fn codes(plan: &Plan) -> Vec<String> {
    plan.anomalies.iter().map(|a| format!("{} {}", a.code, a.email.as_deref().unwrap_or(""))).collect()
}

fn check(case: Case, expect: &[&str]) -> Plan {
    let plan = run(&case);
    assert_eq!(show(&plan), expect);
    plan
}

#[test]
fn attach_at_service_or_structure_level() {
    check(
        Case { desired: vec![("a@x.fr", "COMPTA", None), ("b@x.fr", "-", None)], ..Default::default() },
        &["attach b@x.fr _ -> (structure) (new in source) raise", "attach a@x.fr _ -> COMPTA (new in source) raise"],
    );
}

#[test]
fn nothing_when_source_and_portal_agree() {
    let plan = check(
        Case {
            desired: vec![("a@x.fr", "COMPTA factures:modification", None)],
            current: vec![("a@x.fr", "COMPTA factures:modification")],
            ..Default::default()
        },
        &[],
    );
    assert_eq!(plan.counts[&sid(ACME)].current, 1);
    assert_eq!(plan.counts[&sid(ACME)].desired, 1);
}

#[test]
fn other_service_is_one_move() {
    check(
        Case { desired: vec![("a@x.fr", "ACHATS", None)], current: vec![("a@x.fr", "COMPTA")], ..Default::default() },
        &["move a@x.fr COMPTA -> ACHATS (service changed in source) raise"],
    );
}

#[test]
fn other_rights_is_a_rights_change() {
    check(
        Case {
            desired: vec![("a@x.fr", "COMPTA factures:modification", None)],
            current: vec![("a@x.fr", "COMPTA factures:consultation")],
            ..Default::default()
        },
        &[
            "rights a@x.fr COMPTA [factures:consultation] -> COMPTA [factures:modification] (rights changed in source) raise",
        ],
    );
}

#[test]
fn several_rows_count_as_a_union() {
    check(
        Case {
            desired: vec![
                ("a@x.fr", "COMPTA factures:consultation", None),
                ("a@x.fr", "COMPTA factures:modification", None),
                ("a@x.fr", "ACHATS", None),
            ],
            current: vec![("a@x.fr", "COMPTA factures:modification")],
            ..Default::default()
        },
        &["attach a@x.fr _ -> ACHATS (new in source) raise"],
    );
}

#[test]
fn a_service_left_while_staying_in_another_is_detached_at_once() {
    check(
        Case {
            desired: vec![("a@x.fr", "ACHATS", None)],
            current: vec![("a@x.fr", "ACHATS"), ("a@x.fr", "COMPTA")],
            ..Default::default()
        },
        &["detach a@x.fr COMPTA -> _ (no longer in this service in source) raise"],
    );
}

#[test]
fn leavers_are_detached_at_once_whatever_the_grace() {
    let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    check(
        Case {
            desired: vec![
                ("a@x.fr", "COMPTA", Some(LeftWhy::EndDate(d))),
                ("b@x.fr", "-", Some(LeftWhy::Status("Sorti".into()))),
            ],
            current: vec![("a@x.fr", "COMPTA"), ("b@x.fr", "-")],
            grace: 5,
            ..Default::default()
        },
        &[
            "detach b@x.fr (structure) -> _ (left: status Sorti) raise",
            "detach a@x.fr COMPTA -> _ (left: end date 2026-10-31) raise",
        ],
    );
}

#[test]
fn a_leaver_not_attached_is_not_attached() {
    let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    check(Case { desired: vec![("a@x.fr", "COMPTA", Some(LeftWhy::EndDate(d)))], ..Default::default() }, &[]);
}

#[test]
fn absent_people_wait_grace_runs() {
    // grace_runs = 2: detach on the third consecutive run without them.
    for (earlier, expect_detach) in [(0, false), (1, false), (2, true), (7, true)] {
        let plan = run(&Case {
            current: vec![("a@x.fr", "COMPTA")],
            absences: if earlier > 0 { vec![("a@x.fr", earlier)] } else { vec![] },
            grace: 2,
            ..Default::default()
        });
        let runs = earlier + 1;
        assert_eq!(
            plan.absences,
            vec![AbsenceStreak { structure: sid(ACME), email: email("a@x.fr"), missed_runs: runs }]
        );
        if expect_detach {
            assert_eq!(
                show(&plan),
                vec![format!("detach a@x.fr COMPTA -> _ (absent from source for {runs} runs) raise")]
            );
            assert!(codes(&plan).is_empty());
        } else {
            assert!(show(&plan).is_empty());
            assert_eq!(codes(&plan), vec!["absent_in_grace a@x.fr"]);
        }
    }
    // grace_runs = 0: at once.
    check(
        Case { current: vec![("a@x.fr", "COMPTA")], ..Default::default() },
        &["detach a@x.fr COMPTA -> _ (absent from source) raise"],
    );
}

#[test]
fn coming_back_ends_the_absence_streak() {
    let plan = check(
        Case {
            desired: vec![("a@x.fr", "COMPTA", None)],
            current: vec![("a@x.fr", "COMPTA")],
            absences: vec![("a@x.fr", 1)],
            grace: 2,
            ..Default::default()
        },
        &[],
    );
    assert!(plan.absences.is_empty());
}

#[test]
fn the_main_manager_is_never_detached_or_demoted() {
    let plan = check(
        Case {
            desired: vec![("gp@acme.fr", "COMPTA factures:consultation", None)],
            current: vec![("gp@acme.fr", "COMPTA factures:modification"), ("gp@acme.fr", "-")],
            ..Default::default()
        },
        &[],
    );
    assert_eq!(codes(&plan), vec!["main_manager_protected gp@acme.fr", "main_manager_protected gp@acme.fr"]);
    // Absent from the source altogether: still an anomaly, not a detach.
    let plan = check(Case { current: vec![("gp@acme.fr", "-")], ..Default::default() }, &[]);
    assert_eq!(codes(&plan), vec!["main_manager_protected gp@acme.fr"]);
    // Gaining rights is fine.
    check(
        Case {
            desired: vec![("gp@acme.fr", "- factures:modification", None)],
            current: vec![("gp@acme.fr", "- factures:consultation")],
            ..Default::default()
        },
        &[
            "rights gp@acme.fr (structure) [factures:consultation] -> (structure) [factures:modification] (rights changed in source) raise",
        ],
    );
}

#[test]
fn a_rejected_row_protects_its_person_and_their_requests() {
    let plan = check(
        Case {
            rejected: vec!["a@x.fr"],
            current: vec![("a@x.fr", "COMPTA")],
            open: vec![(4, RequestState::Pending, "a@x.fr", "COMPTA", "")],
            ..Default::default()
        },
        &[],
    );
    assert!(plan.supersede.is_empty());
    assert!(plan.absences.is_empty());
    // An absence streak already running is kept as it is.
    let plan = run(&Case {
        rejected: vec!["a@x.fr"],
        current: vec![("a@x.fr", "COMPTA")],
        absences: vec![("a@x.fr", 2)],
        grace: 2,
        ..Default::default()
    });
    assert!(plan.changes.is_empty());
    assert_eq!(plan.absences, vec![AbsenceStreak { structure: sid(ACME), email: email("a@x.fr"), missed_runs: 2 }]);
}

#[test]
fn open_requests_are_kept_or_superseded() {
    let plan = check(
        Case {
            desired: vec![
                ("a@x.fr", "COMPTA", None),
                ("b@x.fr", "ACHATS factures:modification", None),
                ("c@x.fr", "-", None),
            ],
            open: vec![
                (1, RequestState::Pending, "a@x.fr", "", "COMPTA"),
                (2, RequestState::Pending, "b@x.fr", "", "ACHATS factures:consultation"),
                (3, RequestState::Approved, "c@x.fr", "", "-"),
                (4, RequestState::Pending, "d@x.fr", "", "COMPTA"),
            ],
            ..Default::default()
        },
        &[
            "attach c@x.fr _ -> (structure) (new in source) approved#3",
            "attach b@x.fr _ -> ACHATS [factures:modification] (new in source) raise",
            "attach a@x.fr _ -> COMPTA (new in source) pending#1",
        ],
    );
    assert_eq!(plan.supersede, vec![2, 4]);
    assert_eq!(plan.counts[&sid(ACME)].raised, 1);
    assert_eq!(plan.counts[&sid(ACME)].attach, 3);
}

#[test]
fn a_refused_change_is_not_raised_again_on_the_same_facts() {
    check(
        Case {
            desired: vec![("a@x.fr", "COMPTA", None)],
            refused: vec![(9, "a@x.fr", "", "COMPTA", "new")],
            ..Default::default()
        },
        &["attach a@x.fr _ -> COMPTA (new in source) refused#9"],
    );
    // Other facts (now a leaver, not merely absent): raised again.
    let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    check(
        Case {
            desired: vec![("a@x.fr", "COMPTA", Some(LeftWhy::EndDate(d)))],
            current: vec![("a@x.fr", "COMPTA")],
            refused: vec![(9, "a@x.fr", "COMPTA", "", "absent")],
            ..Default::default()
        },
        &["detach a@x.fr COMPTA -> _ (left: end date 2026-10-31) raise"],
    );
}

/// Rows (row number, e-mail, employee id), each in COMPTA of ACME, in that order.
fn with_ids(rows: &[(u64, &str, &str)]) -> Desired {
    Desired::from_rows(rows.iter().map(|(row, e, id)| {
        Mapped::Row(SourceRow {
            email: email(e),
            name: PersonName::default(),
            employee_id: Some((*id).into()),
            structure: sid(ACME),
            placement: place("COMPTA"),
            left: None,
            location: loc(*row),
        })
    }))
}

#[test]
fn conflicting_employee_ids_protect_everyone_involved() {
    let d = with_ids(&[(2, "a@x.fr", "100"), (3, "b@x.fr", "100")]);
    let cur = current(&[("a@x.fr", "ACHATS"), ("b@x.fr", "ACHATS")]);
    let plan = plan_of(&d, &cur, &[], &HashMap::new());
    assert_eq!(show(&plan), Vec::<String>::new());
    assert_eq!(codes(&plan), vec!["conflicting_rows b@x.fr"]);
}

/// Each row is compared with the FIRST row of its employee id and of its
/// address (rows arrive in file order; the check runs once all are in).
#[test]
fn identity_conflicts_name_the_first_row_of_the_id_and_of_the_address() {
    // row 2: a=100; row 3: b=100 (id taken by a); row 4: a=200 (a already 100); row 5: a=100 again (fine).
    let d = with_ids(&[(2, "a@x.fr", "100"), (3, "b@x.fr", "100"), (4, "a@x.fr", "200"), (5, "a@x.fr", "100")]);
    let messages: Vec<(Option<u64>, &str)> =
        d.anomalies.iter().map(|a| (a.location.as_ref().and_then(|l| l.row), a.message.as_str())).collect();
    assert_eq!(
        messages,
        vec![
            (Some(4), "a@x.fr also has employee id \"100\" (row 2)"),
            (Some(3), "employee id \"100\" also belongs to a@x.fr (row 2)"),
        ]
    );
    let protected: Vec<&str> = d.protected.iter().map(Email::as_str).collect();
    assert_eq!(protected, ["a@x.fr", "b@x.fr"]);
    let ids: Vec<(&str, &str)> = d.identities().collect();
    assert_eq!(ids, [("100", "a@x.fr"), ("200", "a@x.fr")], "the first address of each id");
    // The same pairs, searched for by id.
    let found: Vec<Option<&str>> = ["100", "200", "10", "1000", ""].iter().map(|id| d.address_of_id(id)).collect();
    assert_eq!(found, [Some("a@x.fr"), Some("a@x.fr"), None, None, None]);
    assert_eq!(d.identities().len(), 2);
}

#[test]
fn a_changed_address_is_an_anomaly_not_a_detach_and_an_attach() {
    let d = with_ids(&[(2, "marie.martin@x.fr", "E42")]);
    let cur = current(&[("marie.dupont@x.fr", "COMPTA")]);
    let known: HashMap<Box<str>, Email> = [("E42".into(), email("marie.dupont@x.fr"))].into_iter().collect();
    let plan = plan_of(&d, &cur, &[], &known);
    assert_eq!(show(&plan), Vec::<String>::new());
    assert_eq!(codes(&plan), vec!["email_changed marie.martin@x.fr"]);
    // The old address no longer attached: nothing to keep apart, the new one is attached.
    let cur = current(&[("paul.durand@x.fr", "COMPTA")]);
    let plan = plan_of(&d, &cur, &[], &known);
    assert_eq!(codes(&plan).iter().filter(|c| c.starts_with("email_changed")).count(), 0, "{:?}", codes(&plan));
    assert!(show(&plan).iter().any(|c| c.contains("marie.martin@x.fr")), "{:?}", show(&plan));
}

/// Regression: finding a run's few changed addresses read every identity
/// of the desired state (a million random reads after a run). They are now
/// searched for by id; the slow path, which `diff_checked` compares, still
/// reads them all.
#[test]
fn a_few_changed_addresses_are_searched_for_by_id() {
    let people: Vec<(u64, String, String)> =
        (0..40).map(|i| (i + 2, format!("p{i:02}@x.fr"), format!("E{i:02}"))).collect();
    let rows: Vec<(u64, &str, &str)> = people.iter().map(|(r, e, id)| (*r, e.as_str(), id.as_str())).collect();
    let d = with_ids(&rows);
    let cur = current(&[("old@x.fr", "COMPTA"), ("p20@x.fr", "COMPTA")]);
    let known: HashMap<Box<str>, Email> = [
        // Changed, and the old address still attached.
        ("E07".into(), email("old@x.fr")),
        // The same address as now: nothing.
        ("E20".into(), email("p20@x.fr")),
        // Not among the desired ids: nothing.
        ("E99".into(), email("z@x.fr")),
    ]
    .into_iter()
    .collect();
    assert!(search_pays(known.len(), d.identities().len()), "this case is meant to take the search");
    let plan = plan_of(&d, &cur, &[], &known);
    let changed: Vec<String> = codes(&plan).into_iter().filter(|c| c.starts_with("email_changed")).collect();
    assert_eq!(changed, ["email_changed p07@x.fr"]);
    // Neither address of E07 is touched; p20 stays attached.
    assert!(show(&plan).iter().all(|c| !c.contains("old@x.fr") && !c.contains("p07@x.fr")), "{:?}", show(&plan));
}

#[test]
fn searching_ids_pays_for_few_of_many() {
    let check = |known: usize, identities: usize, expect: bool| {
        assert_eq!(search_pays(known, identities), expect, "{known} among {identities}");
    };
    check(1, 0, false);
    check(1, 1, false);
    check(1, 2, false);
    check(1, 3, true);
    check(20, 1_000_000, true);
    // log2 of a million is about 20: a binary search reads ~20 identities.
    check(49_999, 1_000_000, true);
    check(50_000, 1_000_000, false);
    // A new e-mail domain: every address changed at once.
    check(1_000_000, 1_000_000, false);
    check(usize::MAX, 1_000_000, false);
}

#[test]
fn structures_outside_the_scope_are_never_touched() {
    let cur = vec![CurrentAttachment {
        attachment: Attachment { structure: sid("R-1234"), email: email("a@x.nc"), placement: place("-") },
        name: PersonName::default(),
    }];
    let open = vec![OpenRequest {
        id: 1,
        state: RequestState::Pending,
        key: ChangeKey { structure: sid("R-1234"), email: email("b@x.nc"), before: None, after: Some(place("-")) },
    }];
    let plan = plan_of(&Desired::default(), &cur, &open, &HashMap::new());
    assert!(plan.changes.is_empty() && plan.supersede.is_empty() && plan.absences.is_empty());
}

#[test]
fn order_is_structure_service_email_kind() {
    check(
        Case {
            desired: vec![("z@x.fr", "ACHATS", None), ("a@x.fr", "COMPTA", None), ("b@x.fr", "ACHATS", None)],
            current: vec![("c@x.fr", "ACHATS")],
            ..Default::default()
        },
        &[
            "attach b@x.fr _ -> ACHATS (new in source) raise",
            "detach c@x.fr ACHATS -> _ (absent from source) raise",
            "attach z@x.fr _ -> ACHATS (new in source) raise",
            "attach a@x.fr _ -> COMPTA (new in source) raise",
        ],
    );
}

// Properties: over random current and desired states (no main manager, no
// history, grace 0), diff(x, x) is empty and applying the plan to the current
// state gives exactly the desired state.

fn arb_state() -> impl Strategy<Value = Vec<(u8, Option<u8>, u8)>> {
    // (person, service, rights) with 6 people, 3 services, 4 rights sets.
    prop::collection::vec((0u8..6, prop::option::of(0u8..3), 0u8..4), 0..14)
}

fn to_attachments(state: &[(u8, Option<u8>, u8)]) -> Vec<Attachment> {
    let services = ["COMPTA", "ACHATS", "RH"];
    let rights =
        ["", "factures:consultation", "factures:modification", "factures:consultation,engagements:modification"];
    // One rights set per (person, service), as in the portal.
    let mut map: BTreeMap<(u8, Option<u8>), u8> = BTreeMap::new();
    for (p, s, r) in state {
        map.insert((*p, *s), *r);
    }
    map.into_iter()
        .map(|((p, s), r)| Attachment {
            structure: sid(ACME),
            email: email(&format!("p{p}@x.fr")),
            placement: Placement {
                service: s.map(|s| ServiceCode::parse(services[s as usize]).unwrap()),
                rights: Rights::parse(rights[r as usize]).unwrap(),
            },
        })
        .collect()
}

fn desired_of(attachments: &[Attachment]) -> Desired {
    let mut d = DesiredBuilder::default();
    for (i, a) in attachments.iter().enumerate() {
        d.add(Mapped::Row(SourceRow {
            email: a.email.clone(),
            name: PersonName::default(),
            employee_id: None,
            structure: a.structure.clone(),
            placement: a.placement.clone(),
            left: None,
            location: loc(i as u64 + 2),
        }));
    }
    d.finish()
}

fn plan_for(current: &[Attachment], desired: &[Attachment]) -> Plan {
    let cur: Vec<CurrentAttachment> =
        current.iter().map(|a| CurrentAttachment { attachment: a.clone(), name: PersonName::default() }).collect();
    plan_of(&desired_of(desired), &cur, &[], &HashMap::new())
}

proptest! {
    #[test]
    fn diff_of_a_state_with_itself_is_empty(state in arb_state()) {
        let x = to_attachments(&state);
        let plan = plan_for(&x, &x);
        prop_assert!(plan.changes.is_empty(), "{:?}", show(&plan));
        prop_assert!(plan.anomalies.is_empty());
    }

    #[test]
    fn applying_the_plan_yields_the_desired_state(cur in arb_state(), want in arb_state()) {
        let (cur, want) = (to_attachments(&cur), to_attachments(&want));
        let plan = plan_for(&cur, &want);
        let changes: Vec<Change> = plan.changes.iter().map(|p| p.change.clone()).collect();
        prop_assert_eq!(apply(&cur, &changes), want.iter().cloned().collect::<BTreeSet<_>>());
        // And the plan is minimal: applying it then diffing again finds nothing.
        let after: Vec<Attachment> = apply(&cur, &changes).into_iter().collect();
        prop_assert!(plan_for(&after, &want).changes.is_empty());
    }

    #[test]
    fn the_plan_is_deterministic(cur in arb_state(), want in arb_state()) {
        let (cur, mut want) = (to_attachments(&cur), to_attachments(&want));
        let a = show(&plan_for(&cur, &want));
        want.reverse();
        prop_assert_eq!(a, show(&plan_for(&cur, &want)));
    }
}

// The fast path: people on both sides whose rows match the portal are only
// counted. Which people it may settle, and that it never changes a plan.

/// (e-mail, placement spec, left?), as `desired` takes them.
type DesiredRow<'a> = (&'a str, &'a str, Option<LeftWhy>);

/// What `unchanged` answers for the first person of these desired rows
/// (`"-"` rows are structure level) and these attachments, in ACME.
fn fast_path(want: &[DesiredRow], have: &[(&str, &str)]) -> Option<u64> {
    let d = desired(want).finish();
    let cur: CurrentState = current(have).into_iter().collect();
    let (w, p) = (d.people_rows().next().unwrap(), cur.people().next().unwrap());
    assert_eq!((w.structure(), w.email()), (p.structure(), p.email()), "one person on both sides");
    unchanged(&w, &p)
}

#[test]
fn only_rows_that_match_the_portal_skip_the_full_comparison() {
    let check = |what: &str, want: &[DesiredRow], have: &[(&str, &str)], expect: Option<u64>| {
        assert_eq!(fast_path(want, have), expect, "{what}");
    };
    let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let (read, write) = ("COMPTA factures:consultation", "COMPTA factures:modification");
    check("same service and rights", &[("a@x.fr", write, None)], &[("a@x.fr", write)], Some(1));
    check("structure level", &[("a@x.fr", "-", None)], &[("a@x.fr", "-")], Some(1));
    check(
        "two services, rows in another order",
        &[("a@x.fr", "RH", None), ("a@x.fr", "- factures:consultation", None)],
        &[("a@x.fr", "- factures:consultation"), ("a@x.fr", "RH")],
        Some(2),
    );
    check("a placement repeated", &[("a@x.fr", write, None), ("a@x.fr", write, None)], &[("a@x.fr", write)], Some(1));
    // Each of these needs the full comparison.
    check("other rights", &[("a@x.fr", read, None)], &[("a@x.fr", write)], None);
    check(
        "rows whose union is the portal's rights",
        &[("a@x.fr", read, None), ("a@x.fr", write, None)],
        &[("a@x.fr", write)],
        None,
    );
    check(
        "a service only in the source",
        &[("a@x.fr", "COMPTA", None), ("a@x.fr", "RH", None)],
        &[("a@x.fr", "COMPTA")],
        None,
    );
    check(
        "a service only in the portal",
        &[("a@x.fr", "COMPTA", None)],
        &[("a@x.fr", "COMPTA"), ("a@x.fr", "RH")],
        None,
    );
    check("another service", &[("a@x.fr", "RH", None)], &[("a@x.fr", "COMPTA")], None);
    check(
        "structure level in the source, a service in the portal",
        &[("a@x.fr", "-", None)],
        &[("a@x.fr", "COMPTA")],
        None,
    );
    check(
        "a leaver row beside a matching one",
        &[("a@x.fr", "COMPTA", None), ("a@x.fr", "COMPTA", Some(LeftWhy::EndDate(d)))],
        &[("a@x.fr", "COMPTA")],
        None,
    );
    check("only a leaver row", &[("a@x.fr", "COMPTA", Some(LeftWhy::Disabled))], &[("a@x.fr", "COMPTA")], None);
    check(
        "a service attached twice in the portal",
        &[("a@x.fr", read, None)],
        &[("a@x.fr", read), ("a@x.fr", write)],
        None,
    );
    // One bit per attachment: 64 at most.
    let services: Vec<String> = (0..65).map(|i| format!("S{i:02}")).collect();
    for (n, expect) in [(64, Some(64)), (65, None)] {
        let want: Vec<DesiredRow> = services[..n].iter().map(|s| ("a@x.fr", s.as_str(), None)).collect();
        let have: Vec<(&str, &str)> = services[..n].iter().map(|s| ("a@x.fr", s.as_str())).collect();
        check(&format!("{n} attachments"), &want, &have, expect);
    }
}

/// A protected person keeps their absence streak even when their rows match
/// the portal (a present person's streak ends): the fast path must not take
/// them, whatever protects them.
#[test]
fn protected_people_keep_their_streak_though_unchanged() {
    let streak = |e: &str, n| AbsenceStreak { structure: sid(ACME), email: email(e), missed_runs: n };
    // A rejected row.
    let plan = run(&Case {
        desired: vec![("a@x.fr", "COMPTA", None)],
        rejected: vec!["a@x.fr"],
        current: vec![("a@x.fr", "COMPTA")],
        absences: vec![("a@x.fr", 2)],
        grace: 2,
        ..Default::default()
    });
    assert_eq!(plan.absences, vec![streak("a@x.fr", 2)]);
    // Two addresses for one employee id.
    let d = with_ids(&[(2, "a@x.fr", "100"), (3, "b@x.fr", "100")]);
    let cur: CurrentState = current(&[("a@x.fr", "COMPTA"), ("b@x.fr", "COMPTA")]).into_iter().collect();
    let scope: BTreeSet<StructureId> = [sid(ACME)].into_iter().collect();
    let absences = [streak("a@x.fr", 1), streak("b@x.fr", 3)];
    let (catalog, known) = (sample(), HashMap::new());
    let input = |known| DiffInput {
        catalog: &catalog,
        scope: &scope,
        desired: &d,
        current: &cur,
        open: &[],
        refused: &[],
        absences: &absences,
        known_ids: known,
        grace_runs: 5,
    };
    assert_eq!(diff_checked(&input(&known)).absences, absences.to_vec());
    // An employee id the store knows under an address still attached: both addresses.
    let d = with_ids(&[(2, "a@x.fr", "E42"), (3, "b@x.fr", "E43")]);
    let known: HashMap<Box<str>, Email> = [("E42".into(), email("b@x.fr"))].into_iter().collect();
    let plan = diff_checked(&DiffInput { desired: &d, ..input(&known) });
    assert_eq!(plan.absences, absences.to_vec());
    assert_eq!(codes(&plan), vec!["email_changed a@x.fr"]);
}

/// Random states where most people are unchanged and the rest differ in
/// every way the diff knows: for each current attachment a fate (kept,
/// dropped, other rights, other service, a repeated or leaver row beside it),
/// extra rows, rejected rows, streaks, open and refused requests, changed
/// addresses, two structures in scope and one outside, main managers.
#[derive(Debug, Clone)]
struct World {
    current: Vec<Attached>,
    extra: Vec<Extra>,
    rejected: Vec<usize>,
    absences: Vec<(usize, usize, u32)>,
    requests: Vec<Request>,
    known: Vec<(usize, usize)>,
    ids: Vec<Option<usize>>,
    acme_only: bool,
    grace: u32,
}

/// Indexes into the tables below: (structure, person, service, rights, fate).
type Attached = (usize, usize, Option<usize>, usize, u8);
/// (structure, person, service, rights, leaver: by status or disabled).
type Extra = (usize, usize, Option<usize>, usize, Option<bool>);
/// (service, rights).
type Place = (Option<usize>, usize);
/// (structure, person, before, after, pending | approved | refused as absent | as new).
type Request = (usize, usize, Option<Place>, Option<Place>, u8);

const STRUCTURES: [&str; 3] = [ACME, "R-1234", "73282932000074"];
const PEOPLE: [&str; 10] =
    ["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr", "e@x.fr", "f@x.fr", "g@x.fr", "h@x.fr", "gp@acme.fr", "gp@acme.nc"];
const SERVICES: [&str; 3] = ["COMPTA", "ACHATS", "RH"];
const RIGHTS: [&str; 4] =
    ["", "factures:consultation", "factures:modification", "factures:consultation,engagements:modification"];

fn world() -> impl Strategy<Value = World> {
    let s = || 0..STRUCTURES.len();
    let p = || 0..PEOPLE.len();
    let service = || prop::option::of(0..SERVICES.len());
    let placement = move || prop::option::of((service(), 0..RIGHTS.len()));
    (
        prop::collection::vec((s(), p(), service(), 0..RIGHTS.len(), 0u8..14), 0..16),
        prop::collection::vec((s(), p(), service(), 0..RIGHTS.len(), prop::option::of(any::<bool>())), 0..5),
        prop::collection::vec(p(), 0..2),
        prop::collection::vec((s(), p(), 1u32..4), 0..4),
        prop::collection::vec((s(), p(), placement(), placement(), 0u8..4), 0..4),
        prop::collection::vec((0..3usize, p()), 0..2),
        // Few ids: people who share one are protected.
        prop::collection::vec(prop::option::weighted(0.2, 0..3usize), PEOPLE.len()),
        any::<bool>(),
        0u32..3,
    )
        .prop_map(|(current, extra, rejected, absences, requests, known, ids, acme_only, grace)| World {
            current,
            extra,
            rejected,
            absences,
            requests,
            known,
            ids,
            acme_only,
            grace,
        })
}

/// The plans of a world with and without the fast path.
fn both_plans(w: &World) -> (Plan, Plan) {
    let structure = |s: usize| sid(STRUCTURES[s]);
    let service = |v: Option<usize>| v.map(|v| ServiceCode::parse(SERVICES[v]).unwrap());
    let rights = |r: usize| Rights::parse(RIGHTS[r]).unwrap();
    let placement = |v: Option<usize>, r: usize| Placement { service: service(v), rights: rights(r) };
    let name = |i: usize| PersonName { last_name: Some(["Martin", "Dupont"][i % 2].into()), first_name: None };
    let mut rows: Vec<(usize, usize, Placement, Option<LeftWhy>)> = Vec::new();
    let mut attached = Vec::new();
    for (i, &(s, p, v, r, fate)) in w.current.iter().enumerate() {
        attached.push(CurrentAttachment {
            attachment: Attachment { structure: structure(s), email: email(PEOPLE[p]), placement: placement(v, r) },
            name: name(i),
        });
        let (other_rights, other_service) =
            ((r + 1) % RIGHTS.len(), v.map_or(Some(0), |v| (v + 1 < SERVICES.len()).then_some(v + 1)));
        match fate {
            // Most people are unchanged.
            0..=8 => rows.push((s, p, placement(v, r), None)),
            9 => {}
            10 => rows.push((s, p, placement(v, other_rights), None)),
            11 => rows.push((s, p, placement(other_service, r), None)),
            12 => rows.extend([(s, p, placement(v, r), None), (s, p, placement(v, other_rights), None)]),
            _ => rows.extend([(s, p, placement(v, r), None), (s, p, placement(v, r), Some(LeftWhy::Disabled))]),
        }
    }
    for &(s, p, v, r, left) in &w.extra {
        let why = left.map(|b| if b { LeftWhy::Status("Sorti".into()) } else { LeftWhy::Disabled });
        rows.push((s, p, placement(v, r), why));
    }
    let mut builder = DesiredBuilder::default();
    for (i, (s, p, placement, left)) in rows.into_iter().enumerate() {
        builder.add(Mapped::Row(SourceRow {
            email: email(PEOPLE[p]),
            name: name(i + 1),
            employee_id: w.ids[p].map(|id| format!("E{id}").into()),
            structure: structure(s),
            placement,
            left,
            location: loc(i as u64 + 2),
        }));
    }
    for &p in &w.rejected {
        builder.add(Mapped::Rejected { email: Some(email(PEOPLE[p])), anomalies: vec![] });
    }
    let desired = builder.finish();
    let current: CurrentState = attached.into_iter().collect();
    let scope: BTreeSet<StructureId> = STRUCTURES[..if w.acme_only { 1 } else { 2 }].iter().map(|s| sid(s)).collect();
    let key = |s, p, before: Option<Place>, after: Option<Place>| ChangeKey {
        structure: structure(s),
        email: email(PEOPLE[p]),
        before: before.map(|(v, r)| placement(v, r)),
        after: after.map(|(v, r)| placement(v, r)),
    };
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for (id, &(s, p, before, after, what)) in w.requests.iter().enumerate() {
        let (id, key) = (id as RequestId + 1, key(s, p, before, after));
        match what {
            0 => open.push(OpenRequest { id, state: RequestState::Pending, key }),
            1 => open.push(OpenRequest { id, state: RequestState::Approved, key }),
            _ => refused.push(RefusedChange {
                id,
                key,
                reason_category: ["absent", "new"][usize::from(what - 2)].into(),
            }),
        }
    }
    let absences: Vec<AbsenceStreak> = w
        .absences
        .iter()
        .map(|&(s, p, n)| AbsenceStreak { structure: structure(s), email: email(PEOPLE[p]), missed_runs: n })
        .collect();
    let known: HashMap<Box<str>, Email> =
        w.known.iter().map(|&(id, p)| (format!("E{id}").into(), email(PEOPLE[p]))).collect();
    let input = DiffInput {
        catalog: &sample(),
        scope: &scope,
        desired: &desired,
        current: &current,
        open: &open,
        refused: &refused,
        absences: &absences,
        known_ids: &known,
        grace_runs: w.grace,
    };
    (diff(&input), diff_with::<false>(&input, usize::MAX))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn neither_the_fast_path_nor_the_halves_change_the_plan(w in world()) {
        let (fast, full) = both_plans(&w);
        prop_assert_eq!(fast, full);
    }
}
