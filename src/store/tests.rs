//! Store tests: each runs on SQLite and on PostgreSQL (`both_backends!`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::*;
use crate::{
    core::{
        approval::QueuedRequest,
        change::ChangeKey,
        run::{RunCounts, RunOutcome, SourceRun},
    },
    domain::{Attachment, Email, IdentifierType, PersonName, Placement, Rights, ServiceCode},
};

// ---- fixtures ------------------------------------------------------------------

const ACME: &str = "12345678200010";
const OTHER: &str = "73282932000074";
const NOUMEA: &str = "R-1234";

fn sid(s: &str) -> StructureId {
    let kind = if s.starts_with("R-") { IdentifierType::Ridet } else { IdentifierType::Siret };
    StructureId::parse(kind, s).unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn place(service: Option<&str>, rights: &str) -> Option<Placement> {
    Some(Placement { service: service.map(|s| ServiceCode::parse(s).unwrap()), rights: Rights::parse(rights).unwrap() })
}

fn run_record(outcome: RunOutcome) -> RunRecord {
    RunRecord {
        id: 0,
        started_at: at("2026-03-02T06:30:00Z"),
        finished_at: at("2026-03-02T06:31:05Z"),
        sources: vec!["hr".into(), "ldap, paris".into()],
        outcome,
        forced_by: None,
        message: None,
        report_dir: Some("reports/1".into()),
        counts: RunCounts { attach: 3, detach: 1, moves: 2, rights: 0, raised: 5, superseded: 1, anomalies: 7 },
    }
}

fn request(
    run_id: RunId,
    structure: &str,
    who: &str,
    before: Option<Placement>,
    after: Option<Placement>,
) -> ApprovalRequest {
    let key = ChangeKey { structure: sid(structure), email: email(who), before, after };
    ApprovalRequest {
        id: 0,
        run_id,
        state: RequestState::Pending,
        kind: key.kind().unwrap(),
        key,
        name: PersonName { last_name: Some("Dupont".into()), first_name: Some("Marie".into()) },
        reason: "new in source".into(),
        reason_category: "new".into(),
        description: format!("Rattacher {who}"),
        requester: format!("chorus-sync source hr, run {run_id}"),
        structure_name: "ACME France".into(),
        manager: "gp@acme.fr".into(),
        origin: Some("hr.xlsx!Personnel:12".into()),
        created_at: at("2026-03-02T06:31:00Z"),
        decided_by: None,
        decided_at: None,
        motive: None,
        comment: None,
    }
}

/// Inserts a `done` run and returns its id.
async fn new_run(store: &Store) -> RunId {
    let mut tx = store.begin().await.unwrap();
    let id = tx.insert_run(&run_record(RunOutcome::Done)).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn insert(store: &Store, reqs: &[ApprovalRequest]) -> Vec<RequestId> {
    let mut tx = store.begin().await.unwrap();
    let ids = tx.insert_requests(reqs).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

fn with_id(mut r: ApprovalRequest, id: RequestId) -> ApprovalRequest {
    r.id = id;
    r
}

/// PostgreSQL: how many of `table`'s columns have planner statistics.
async fn columns_with_statistics(store: &Store, table: &str) -> i64 {
    let sql =
        format!("SELECT COUNT(*) AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = '{table}'");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&store.pool).await.unwrap();
    sqlx::Row::get::<i64, _>(&row, "n")
}

async fn raw_count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&store.pool).await.unwrap();
    sqlx::Row::get::<i64, _>(&row, "n")
}

// ---- tests ---------------------------------------------------------------------

async fn requests_round_trip_every_placement_shape(store: Store) {
    let run = new_run(&store).await;
    let mut decided = request(run, ACME, "d@acme.fr", place(Some("COMPTA"), ""), place(Some("ACHATS"), ""));
    decided.state = RequestState::Refused;
    decided.decided_by = Some("gp@acme.fr".into());
    decided.decided_at = Some(at("2026-03-03T09:00:00Z"));
    decided.motive = Some("n'appartient pas au service".into());
    decided.comment = Some("vu".into());
    decided.origin = None;
    decided.name = PersonName::default();
    // Text that JSON escapes or spells in several bytes (the bulk insert is one JSON array).
    let mut awkward = request(run, ACME, "o'brien@acme.fr", None, place(Some("COMPTA"), ""));
    awkward.name = PersonName {
        last_name: Some("O'Brien \"Jr\" \\ Ñúñez 😀".into()),
        first_name: Some("Zoë\tAnn\n".into()),
    };
    awkward.description = "Rattacher « O'Brien » {\"x\": [1]} $1 ? :name".into();
    let reqs = vec![
        // attach, service level with rights
        request(run, ACME, "a1@acme.fr", None, place(Some("COMPTA"), "factures:modification")),
        // attach, structure level, portal's default rights
        request(run, ACME, "a2@acme.fr", None, place(None, "")),
        // detach from the structure level with rights
        request(run, ACME, "d1@acme.fr", place(None, "factures:consultation,engagements:modification"), None),
        // detach from a service, no rights
        request(run, NOUMEA, "d2@acme.nc", place(Some("Serv 01"), ""), None),
        // rights at structure level: none → some
        request(run, ACME, "r1@acme.fr", place(None, ""), place(None, "factures:modification")),
        // move from structure level to a service
        request(
            run,
            ACME,
            "m1@acme.fr",
            place(None, "factures:consultation"),
            place(Some("COMPTA"), "factures:consultation"),
        ),
        decided,
        awkward,
    ];
    let ids = insert(&store, &reqs).await;
    assert_eq!(ids.len(), reqs.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in input order: {ids:?}");
    let expect: Vec<ApprovalRequest> = reqs.iter().cloned().zip(&ids).map(|(r, &id)| with_id(r, id)).collect();

    assert_eq!(store.list_requests(&RequestFilter::default()).await.unwrap(), expect);
    for e in &expect {
        assert_eq!(store.get_request(e.id).await.unwrap().as_ref(), Some(e));
    }
    assert_eq!(store.get_request(ids[ids.len() - 1] + 1000).await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    let picked = tx.requests_by_id(&[ids[3], ids[0], 999_999]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(picked, vec![expect[0].clone(), expect[3].clone()]);

    // Each insert starts the history: from nothing to its state, by the requester.
    let h = store.history(ids[6]).await.unwrap();
    assert_eq!(
        h,
        vec![HistoryEntry {
            at: at("2026-03-02T06:31:00Z"),
            by: Some(format!("chorus-sync source hr, run {run}")),
            from: None,
            to: RequestState::Refused,
            comment: None,
        }]
    );
}

async fn filters_select_requests(store: Store) {
    let run1 = new_run(&store).await;
    let run2 = new_run(&store).await;
    let mut reqs = vec![
        request(run1, ACME, "a@acme.fr", None, place(Some("COMPTA"), "")),
        request(run1, ACME, "b@acme.fr", place(None, ""), None),
        request(run1, OTHER, "c@acme.fr", None, place(None, "")),
        request(run2, ACME, "d@acme.fr", place(Some("COMPTA"), ""), place(Some("ACHATS"), "")),
        request(run2, NOUMEA, "e@acme.nc", None, place(None, "")),
    ];
    reqs[1].state = RequestState::Approved;
    reqs[2].manager = "gp@other.fr".into();
    reqs[4].manager = "gp@acme.nc".into();
    reqs[4].state = RequestState::Refused;
    let ids = insert(&store, &reqs).await;

    let check = |f: RequestFilter, expect: Vec<usize>| {
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let got: Vec<RequestId> = store.list_requests(&f).await.unwrap().iter().map(|r| r.id).collect();
            let want: Vec<RequestId> = expect.iter().map(|&i| ids[i]).collect();
            assert_eq!(got, want, "{f:?}");
            assert_eq!(store.count_requests(&f).await.unwrap(), want.len() as u64, "count {f:?}");
        }
    };
    let f = RequestFilter::default;
    check(f(), vec![0, 1, 2, 3, 4]).await;
    check(RequestFilter { states: vec![RequestState::Pending], ..f() }, vec![0, 2, 3]).await;
    check(RequestFilter { states: vec![RequestState::Approved, RequestState::Refused], ..f() }, vec![1, 4]).await;
    check(RequestFilter { structures: vec![sid(ACME)], ..f() }, vec![0, 1, 3]).await;
    check(RequestFilter { structures: vec![sid(OTHER), sid(NOUMEA)], ..f() }, vec![2, 4]).await;
    check(RequestFilter { structures: vec![sid(ACME)], states: vec![RequestState::Pending], ..f() }, vec![0, 3]).await;
    check(RequestFilter { kinds: vec![ChangeKind::Attach], ..f() }, vec![0, 2, 4]).await;
    check(RequestFilter { kinds: vec![ChangeKind::Detach, ChangeKind::Move], ..f() }, vec![1, 3]).await;
    check(RequestFilter { manager: Some("gp@acme.fr".into()), ..f() }, vec![0, 1, 3]).await;
    check(RequestFilter { manager: Some("nobody@acme.fr".into()), ..f() }, vec![]).await;
    check(RequestFilter { ids: vec![ids[4], ids[1]], ..f() }, vec![1, 4]).await;
    check(RequestFilter { run_id: Some(run2), ..f() }, vec![3, 4]).await;
    check(RequestFilter { run_id: Some(run2), states: vec![RequestState::Pending], ..f() }, vec![3]).await;
}

async fn transitions_record_decisions_and_history(store: Store) {
    let run = new_run(&store).await;
    let reqs: Vec<ApprovalRequest> = ["a@acme.fr", "b@acme.fr", "c@acme.fr", "d@acme.fr", "e@acme.fr"]
        .iter()
        .map(|who| request(run, ACME, who, None, place(None, "")))
        .collect();
    let ids = insert(&store, &reqs).await;
    let t1 = at("2026-03-03T09:00:00Z");

    let mut tx = store.begin().await.unwrap();
    tx.transition(ids[0], RequestState::Pending, RequestState::Approved, Some("gp@acme.fr"), t1, Some("ok"))
        .await
        .unwrap();
    tx.transition(ids[1], RequestState::Pending, RequestState::Refused, Some("gp@acme.fr"), t1, Some("hors périmètre"))
        .await
        .unwrap();
    tx.transition_many(&[ids[2], ids[3], ids[2]], RequestState::Pending, RequestState::Superseded, None, t1)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let approved = store.get_request(ids[0]).await.unwrap().unwrap();
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("gp@acme.fr"));
    assert_eq!(approved.decided_at, Some(t1));
    assert_eq!(approved.comment.as_deref(), Some("ok"));
    assert_eq!(approved.motive, None);

    let refused = store.get_request(ids[1]).await.unwrap().unwrap();
    assert_eq!(refused.state, RequestState::Refused);
    assert_eq!(refused.decided_by.as_deref(), Some("gp@acme.fr"));
    assert_eq!(refused.motive.as_deref(), Some("hors périmètre"));
    assert_eq!(refused.comment, None);

    for &id in &ids[2..4] {
        let r = store.get_request(id).await.unwrap().unwrap();
        assert_eq!((r.state, r.decided_by, r.decided_at), (RequestState::Superseded, None, None));
        let h = store.history(id).await.unwrap();
        assert_eq!(h.len(), 2, "superseded once despite the duplicate id");
        assert_eq!(
            (h[1].from, h[1].to, h[1].by.as_deref()),
            (Some(RequestState::Pending), RequestState::Superseded, None)
        );
    }
    assert_eq!(store.get_request(ids[4]).await.unwrap().unwrap().state, RequestState::Pending);

    let h = store.history(ids[0]).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[1],
        HistoryEntry {
            at: t1,
            by: Some("gp@acme.fr".into()),
            from: Some(RequestState::Pending),
            to: RequestState::Approved,
            comment: Some("ok".into()),
        }
    );

    // approved → applied keeps the decision.
    let t2 = at("2026-03-04T06:30:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.transition(ids[0], RequestState::Approved, RequestState::Applied, None, t2, None).await.unwrap();
    tx.commit().await.unwrap();
    let applied = store.get_request(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (applied.state, applied.decided_at, applied.comment.as_deref()),
        (RequestState::Applied, Some(t1), Some("ok"))
    );
    assert_eq!(store.history(ids[0]).await.unwrap().len(), 3);
}

async fn stale_transitions_conflict_and_change_nothing(store: Store) {
    let run = new_run(&store).await;
    let reqs: Vec<ApprovalRequest> =
        ["a@acme.fr", "b@acme.fr"].iter().map(|who| request(run, ACME, who, None, place(None, ""))).collect();
    let ids = insert(&store, &reqs).await;
    let t = at("2026-03-03T09:00:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.transition(ids[0], RequestState::Pending, RequestState::Approved, Some("gp@acme.fr"), t, None).await.unwrap();
    tx.commit().await.unwrap();
    let before = store.list_requests(&RequestFilter::default()).await.unwrap();
    let history_rows = raw_count(&store, "request_history").await;

    let mut tx = store.begin().await.unwrap();
    let err = tx
        .transition(ids[0], RequestState::Pending, RequestState::Refused, Some("gp@acme.fr"), t, Some("non"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { id, expected: RequestState::Pending } if id == ids[0]), "{err}");
    let err = tx.transition(9_999_999, RequestState::Pending, RequestState::Approved, None, t, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { id: 9_999_999, .. }), "{err}");
    // One stale id in a batch: none of them moves.
    let err = tx
        .transition_many(&[ids[1], ids[0]], RequestState::Pending, RequestState::Superseded, None, t)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { id, .. } if id == ids[0]), "{err}");
    tx.commit().await.unwrap();

    assert_eq!(store.list_requests(&RequestFilter::default()).await.unwrap(), before);
    assert_eq!(raw_count(&store, "request_history").await, history_rows);
}

async fn history_is_append_only(store: Store) {
    let run = new_run(&store).await;
    let ids = insert(&store, &[request(run, ACME, "a@acme.fr", None, place(None, ""))]).await;
    for sql in [
        "UPDATE request_history SET comment = 'forged'",
        "UPDATE request_history SET to_state = 'approved' WHERE request_id > 0",
        "DELETE FROM request_history",
    ] {
        let err = sqlx::query(sql).execute(&store.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if store.backend() == Backend::Postgres {
        let err = sqlx::query("TRUNCATE request_history CASCADE").execute(&store.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    let h = store.history(ids[0]).await.unwrap();
    assert_eq!((h.len(), h[0].comment.as_deref()), (1, None));
}

async fn rollback_leaves_nothing(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let run = tx.insert_run(&run_record(RunOutcome::Done)).await.unwrap();
    tx.insert_requests(&[request(run, ACME, "a@acme.fr", None, place(None, ""))]).await.unwrap();
    tx.insert_source_runs(run, &[source_run("hr", 10, None)]).await.unwrap();
    tx.rollback().await.unwrap();

    // Dropped without commit: rolled back too.
    {
        let mut tx = store.begin().await.unwrap();
        let run = tx.insert_run(&run_record(RunOutcome::Done)).await.unwrap();
        tx.insert_requests(&[request(run, ACME, "b@acme.fr", None, place(None, ""))]).await.unwrap();
    }

    assert!(store.list_runs(None).await.unwrap().is_empty());
    assert_eq!(store.count_requests(&RequestFilter::default()).await.unwrap(), 0);
    for table in ["runs", "requests", "request_history", "source_runs"] {
        assert_eq!(raw_count(&store, table).await, 0, "{table}");
    }
}

fn current(structure: &str, who: &str, service: Option<&str>, rights: &str, last: Option<&str>) -> CurrentAttachment {
    let placement = place(service, rights).unwrap();
    CurrentAttachment {
        attachment: Attachment { structure: sid(structure), email: email(who), placement },
        name: PersonName { last_name: last.map(Into::into), first_name: None },
    }
}

async fn replace_current_touches_only_listed_structures(store: Store) {
    let t = at("2026-03-01T05:00:00Z");
    let acme_v1 = vec![
        current(ACME, "a@acme.fr", None, "", Some("Martin")),
        current(ACME, "a@acme.fr", Some("COMPTA"), "factures:modification", Some("Martin")),
        current(ACME, "b@acme.fr", Some("ACHATS"), "", None),
    ];
    let other = vec![current(OTHER, "c@other.fr", None, "factures:consultation", Some("Petit"))];
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[sid(ACME)], &acme_v1, t).await.unwrap();
    tx.replace_current(&[sid(OTHER)], &other, t).await.unwrap();
    assert_eq!(
        tx.current_attachments(&[sid(ACME)]).await.unwrap().attachments().collect::<Vec<_>>(),
        acme_v1,
        "read in the same transaction"
    );
    tx.commit().await.unwrap();

    let acme_v2 = vec![current(ACME, "d@acme.fr", None, "engagements:consultation", Some("Durand"))];
    let mut tx = store.begin().await.unwrap();
    // NOUMEA has nothing yet: listing it empties nothing else.
    tx.replace_current(&[sid(ACME), sid(NOUMEA)], &acme_v2, t).await.unwrap();
    let err = tx.replace_current(&[sid(ACME)], &other, t).await.unwrap_err();
    assert!(matches!(err, StoreError::OutsideStructures { .. }), "{err}");
    tx.commit().await.unwrap();

    assert_eq!(store.current_attachments(&[sid(ACME)]).await.unwrap().attachments().collect::<Vec<_>>(), acme_v2);
    assert_eq!(store.current_attachments(&[sid(OTHER)]).await.unwrap().attachments().collect::<Vec<_>>(), other);
    let mut all = acme_v2.clone();
    all.extend(other.clone());
    all.sort_by(|a, b| a.attachment.cmp(&b.attachment));
    assert_eq!(
        store
            .current_attachments(&[sid(OTHER), sid(ACME), sid(NOUMEA)])
            .await
            .unwrap()
            .attachments()
            .collect::<Vec<_>>(),
        all
    );
    assert!(store.current_attachments(&[]).await.unwrap().attachments().collect::<Vec<_>>().is_empty());
}

/// Regression: right after `import-current` PostgreSQL had no statistics on
/// the table, so it read each snapshot page by sorting every row left in the
/// structure (a 1M-row plan took 8.8 s instead of 5.0 s). A replacement
/// analyzes the table in its transaction; SQLite needs no statistics.
async fn a_replacement_leaves_planner_statistics_on_postgres(store: Store) {
    let rows: Vec<CurrentAttachment> =
        (0..50).map(|i| current(ACME, &format!("p{i:02}@acme.fr"), None, "", Some("Martin"))).collect();
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[sid(ACME)], &rows, at("2026-03-01T05:00:00Z")).await.unwrap();
    tx.commit().await.unwrap();
    if store.backend() == Backend::Postgres {
        assert_eq!(columns_with_statistics(&store, "current_attachments").await, 7);
    }
    assert_eq!(store.current_attachments(&[sid(ACME)]).await.unwrap().attachments().count(), 50);
}

/// `replace_current` counts a generation for each structure it lists (an
/// empty one too, once however often listed), and for no other.
async fn generations_count_replacements_per_structure(store: Store) {
    let t = at("2026-03-01T05:00:00Z");
    let scope = [sid(ACME), sid(OTHER), sid(NOUMEA)];
    let generations =
        |acme, other, noumea| Generations::from([(sid(ACME), acme), (sid(OTHER), other), (sid(NOUMEA), noumea)]);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.current_generations(&scope).await.unwrap(), generations(0, 0, 0), "never replaced: 0");
    let acme = vec![current(ACME, "a@acme.fr", None, "", Some("Martin"))];
    tx.replace_current(&[sid(ACME)], &acme, t).await.unwrap();
    assert_eq!(tx.current_generations(&scope).await.unwrap(), generations(1, 0, 0));
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[sid(ACME), sid(NOUMEA), sid(ACME)], &acme, t).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.current_generations(&scope).await.unwrap(), generations(2, 0, 1));
    assert_eq!(tx.current_generations(&[sid(OTHER)]).await.unwrap(), Generations::from([(sid(OTHER), 0)]));
    assert!(tx.current_generations(&[]).await.unwrap().is_empty());
    // A replacement that rolls back counts nothing.
    tx.replace_current(&[sid(OTHER)], &[], t).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.current_snapshot(&scope).await.unwrap().generations, generations(2, 0, 1));
}

/// A run reads the current state in a snapshot beside its sources, then
/// checks it inside its write transaction: an `import-current` committed in
/// between shows there as another generation, and the transaction reads its
/// rows. A writer still open neither blocks the snapshot nor shows in it.
async fn a_replacement_after_the_snapshot_shows_in_the_write_transaction(store: Store) {
    let t = at("2026-03-01T05:00:00Z");
    let scope = [sid(ACME), sid(OTHER)];
    let v1 = vec![
        current(ACME, "a@acme.fr", Some("COMPTA"), "factures:modification", Some("Martin")),
        current(OTHER, "c@other.fr", None, "", None),
    ];
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&scope, &v1, t).await.unwrap();
    tx.commit().await.unwrap();

    let v2 = vec![current(ACME, "b@acme.fr", None, "factures:consultation", Some("Bernard"))];
    let mut writer = store.begin().await.unwrap();
    writer.replace_current(&[sid(ACME)], &v2, t).await.unwrap();
    let snapshot = tokio::time::timeout(Duration::from_secs(3), store.current_snapshot(&scope))
        .await
        .expect("the snapshot does not wait for a writer")
        .unwrap();
    assert_eq!(snapshot.attachments.attachments().collect::<Vec<_>>(), v1, "nothing uncommitted in the snapshot");
    assert_eq!(snapshot.generations, Generations::from([(sid(ACME), 1), (sid(OTHER), 1)]));
    writer.rollback().await.unwrap();

    // Nothing replaced since: the write transaction sees the same generations.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.current_generations(&scope).await.unwrap(), snapshot.generations);
    tx.rollback().await.unwrap();

    // import-current commits between the snapshot and the run's transaction.
    let mut import = store.begin().await.unwrap();
    import.replace_current(&[sid(ACME)], &v2, t).await.unwrap();
    import.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let now = tx.current_generations(&scope).await.unwrap();
    assert_ne!(now, snapshot.generations, "the run must see that the snapshot is stale");
    assert_eq!(now, Generations::from([(sid(ACME), 2), (sid(OTHER), 1)]));
    let mut expected = v2.clone();
    expected.push(v1[1].clone());
    assert_eq!(
        tx.current_attachments(&scope).await.unwrap().attachments().collect::<Vec<_>>(),
        expected,
        "read again: the new rows"
    );
    tx.rollback().await.unwrap();
}

/// Current attachments are read in pages of 10,000 rows, walked by key: a
/// person whose services straddle a page boundary (at a key with quotes,
/// separators and non-ASCII), a structure of exactly one page and awkward
/// names all come back once, in order.
async fn current_attachments_read_in_pages_lose_and_repeat_nothing(store: Store) {
    let names = [Some("O'Brien \"Jo\""), Some("Back\\slash\ttab"), Some("Hélène Œuvray 🦀"), None];
    let mut acme: Vec<CurrentAttachment> = (0..12_344)
        .map(|i| {
            let (service, rights) = if i % 3 == 0 {
                (None, "")
            } else {
                (Some("COMPTA"), "factures:modification,engagements:consultation")
            };
            current(ACME, &format!("p{i:05}@acme.fr"), service, rights, names[i % names.len()])
        })
        .collect();
    // Sorted, p09998's COMPTA is row 9,999: its placements straddle the
    // first page's end, which is the awkward one (in byte order).
    for service in [Some("Zé:1,\"\\"), Some("été")] {
        acme.push(current(ACME, "p09998@acme.fr", service, "factures:consultation", None));
    }
    for service in [Some("ACHATS"), Some("ZETA")] {
        acme.push(current(ACME, "p09999@acme.fr", service, "factures:consultation", None));
    }
    let other: Vec<CurrentAttachment> =
        (0..10_000).map(|i| current(OTHER, &format!("q{i:05}@other.fr"), None, "", Some("Petit"))).collect();
    let mut tx = store.begin().await.unwrap();
    let t = at("2026-03-01T05:00:00Z");
    tx.replace_current(&[sid(ACME)], &acme, t).await.unwrap();
    tx.replace_current(&[sid(OTHER)], &other, t).await.unwrap();
    tx.commit().await.unwrap();

    let mut all: Vec<CurrentAttachment> = acme.iter().chain(&other).cloned().collect();
    all.sort_by(|a, b| a.attachment.cmp(&b.attachment));
    let read = store.current_attachments(&[sid(OTHER), sid(ACME)]).await.unwrap().attachments().collect::<Vec<_>>();
    assert_eq!(read.len(), all.len());
    assert!(read == all, "the paged read differs from what was written");
    assert_eq!(
        store.current_attachments(&[sid(OTHER)]).await.unwrap().attachments().collect::<Vec<_>>().len(),
        10_000,
        "exactly one full page"
    );
}

/// Text of every awkward kind reads back exactly: the page's lengths count
/// what the answer holds, whatever the content (separators, quotes,
/// backslashes, control characters, non-ASCII, empty text, NULL).
async fn current_attachments_read_awkward_values_back_exactly(store: Store) {
    let sqlite = store.backend() == Backend::Sqlite;
    let mut names: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("O'Brien \"Jo\""),
        Some("Back\\slash\\"),
        Some("12:34:"),
        Some(":"),
        Some("5:abcde"),
        Some(",|;[]{}"),
        Some("tab\tnew\nline\rcr\x01\x1f\x7f"),
        Some("Hélène Œuvray"),
        Some("🦀 中文 e\u{301}"),
        Some("\u{a0}\u{2028}\u{feff}"),
        Some(" padded "),
    ];
    if sqlite {
        // PostgreSQL text holds no NUL; SQLite's does, past which `length` stops counting.
        names.push(Some("before\0after"));
    }
    let services = [None, Some("COMPTA"), Some("Zé:1,\"\\"), Some("5:x"), Some("服务")];
    let rights = ["", "factures:modification,engagements:consultation"];
    let emails = ["a@acme.fr", "am\u{e9}lie@acme.fr", "o'neil+1@acme.fr", "z@xn--acme.fr"];
    let mut rows = Vec::new();
    for (i, last) in names.iter().enumerate() {
        for (j, first) in names.iter().enumerate() {
            let (local, domain) = emails[(i + j) % emails.len()].split_once('@').unwrap();
            let who = format!("{local}.{i}x{j}@{domain}");
            // Some people have every placement: their address repeats across rows.
            let theirs = if j == 0 { &services[..] } else { &services[(i + j) % services.len()..][..1] };
            for (k, service) in theirs.iter().enumerate() {
                let mut row = current(ACME, &who, *service, rights[(j + k) % 2], *last);
                row.name.first_name = first.map(Into::into);
                rows.push(row);
            }
        }
    }
    rows.sort_by(|a, b| a.attachment.cmp(&b.attachment));
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[sid(ACME)], &rows, at("2026-03-01T05:00:00Z")).await.unwrap();
    tx.commit().await.unwrap();

    let read = store.current_attachments(&[sid(ACME)]).await.unwrap().attachments().collect::<Vec<_>>();
    pretty_assertions::assert_eq!(read, rows);
    if !sqlite {
        // A server in another encoding than UTF8 is read with lengths in
        // characters: the same rows.
        let mut conn = store.pool.acquire().await.unwrap();
        let chars = current::read_current(&mut conn, &[sid(ACME)], framing::Unit::Chars).await.unwrap();
        pretty_assertions::assert_eq!(chars.attachments().collect::<Vec<_>>(), rows, "lengths in characters");
    }
}

/// A value no import would have stored is reported with its structure,
/// address and column, not read into the diff; an address stored in another
/// spelling of itself reads as its normal form.
async fn corrupt_current_rows_are_reported_by_row_and_column(store: Store) {
    /// A stored value: text, or (SQLite) bytes that are not UTF-8.
    #[derive(Clone, Copy)]
    enum V {
        T(&'static str),
        B(&'static [u8]),
    }
    let insert = async |email: V, service: V, rights: V, last_name: V| {
        let mut conn = store.pool.acquire().await.unwrap();
        sqlx::query("DELETE FROM current_attachments").execute(&mut *conn).await.unwrap();
        let mut rows = vec![[V::T("a@acme.fr"), V::T(""), V::T(""), V::T("Martin")]];
        rows.push([email, service, rights, last_name]);
        rows.push([V::T("zz@acme.fr"), V::T("COMPTA"), V::T(""), V::T("Petit")]);
        for row in rows {
            let mut b = sql::Binds::new(&conn);
            let marks: Vec<String> = row
                .iter()
                .map(|v| match *v {
                    V::T(t) => b.push(t.to_string()),
                    V::B(bytes) => b.push(bytes.to_vec()),
                })
                .collect();
            let sql = format!(
                "INSERT INTO current_attachments (structure, email, service, rights, last_name, imported_at) \
                 VALUES ('{ACME}', {}, 'x')",
                marks.join(", ")
            );
            sql::query(sql, b, "test").unwrap().execute(&mut *conn).await.unwrap();
        }
    };
    let t = V::T;
    let mut cases = vec![
        ((t("not an email"), t(""), t(""), t("M")), ("not an email", "email", "white space")),
        ((t("b@acme"), t(""), t(""), t("M")), ("b@acme", "email", "not a valid domain")),
        ((t("b@acme.fr"), t("bad\tservice"), t(""), t("M")), ("b@acme.fr", "service", "control")),
        ((t("b@acme.fr"), t("COMPTA"), t("factures:peut-être"), t("M")), ("b@acme.fr", "rights", "peut-être")),
    ];
    if store.backend() == Backend::Sqlite {
        // Only SQLite stores bytes that are not UTF-8 in a text column.
        cases.push(((t("b@acme.fr"), t(""), t(""), V::B(b"Ma\xffrtin")), ("b@acme.fr", "last_name", "not UTF-8")));
        // Named as it reads, with a replacement character.
        cases.push(((V::B(b"b\xc3@acme.fr"), t(""), t(""), t("M")), ("b\u{fffd}@acme.fr", "email", "not UTF-8")));
    }
    for ((email, service, rights, last_name), (row, column, message)) in cases {
        insert(email, service, rights, last_name).await;
        match store.current_attachments(&[sid(ACME)]).await {
            Err(StoreError::Corrupt { table, row: r, column: c, message: m }) => {
                assert_eq!((table, r.as_str(), c), ("current_attachments", format!("{ACME}/{row}").as_str(), column));
                assert!(m.contains(message), "{row} {column}: {m:?} lacks {message:?}");
            }
            other => panic!("{row} {column}: expected a corrupt row, got {other:?}"),
        }
    }

    insert(t("Marie.Dupont@ACME.fr"), t(""), t(""), t("Dupont")).await;
    let emails: Vec<String> =
        store.current_attachments(&[sid(ACME)]).await.unwrap().emails().map(str::to_string).collect();
    assert_eq!(emails, ["a@acme.fr", "marie.dupont@acme.fr", "zz@acme.fr"]);
}

fn identity_writes(new: &[(&str, &str)], changed: &[(&str, &str)]) -> IdentityWrites {
    let mut writes = IdentityWrites::default();
    new.iter().for_each(|(id, e)| writes.push_new(id, e));
    changed.iter().for_each(|(id, e)| writes.push_changed(id, e));
    writes
}

/// Pairs go to the store as one JSON array per 50,000; only the ids it does
/// not hold with the same address come back (spelling kept exactly).
/// Stores `stored`, asks `asked` (sorted by id here, as a run asks) and
/// compares the answer with the one computed pair by pair.
async fn check_identity_changes(store: &Store, stored: &[(String, Email)], asked: &[(String, Email)]) {
    let mut tx = store.begin().await.unwrap();
    sqlx::query("DELETE FROM identities").execute(tx.conn()).await.unwrap();
    let pairs: Vec<(&str, &str)> = stored.iter().map(|(i, e)| (i.as_str(), e.as_str())).collect();
    let writes = identity_writes(&pairs, &[]);
    tx.record_identities(writes, at("2026-03-01T05:00:00Z")).await.unwrap();
    tx.commit().await.unwrap();
    let mut asked: Vec<(&str, &str)> = asked.iter().map(|(i, e)| (i.as_str(), e.as_str())).collect();
    asked.sort_unstable();
    let known: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
    let mut tx = store.begin().await.unwrap();
    let answer = tx.identity_changes(asked.iter().copied()).await.unwrap();
    tx.rollback().await.unwrap();
    let unknown: Vec<bool> = asked.iter().map(|(id, _)| !known.contains_key(id)).collect();
    assert_eq!(answer.unknown, unknown, "one flag per pair asked, in order");
    let mut changed: Vec<(&str, &str)> = answer.changed.iter().map(|(i, e)| (&**i, e.as_str())).collect();
    changed.sort_unstable();
    let expect: Vec<(&str, &str)> =
        asked.iter().filter_map(|(id, e)| known.get(id).filter(|old| *old != e).map(|old| (*id, *old))).collect();
    assert_eq!(changed, expect, "the ids whose address changed, with the old address");
}

async fn identity_changes_answer_only_new_and_changed_ids(store: Store) {
    // Ids with quotes, backslashes and accents, many a prefix of others
    // ("E1", "E10"); every other one stored; p0 and p1007 moved elsewhere.
    let id = |i: usize| if i % 1_000 == 7 { format!("E\"{i}\\é") } else { format!("E{i}") };
    let all: Vec<(String, Email)> = (0..60_000).map(|i| (id(i), email(&format!("p{i}@acme.fr")))).collect();
    let stored: Vec<(String, Email)> = all.iter().step_by(2).cloned().collect();
    let mut asked = all.clone();
    asked[0].1 = email("p0.new@acme.fr");
    asked[1007].1 = email("p1007.new@acme.fr");
    // Many pairs: the identities are read in pages and merged (several pages).
    check_identity_changes(&store, &stored, &asked).await;
    // Few pairs against many identities: looked up one by one.
    let few: Vec<(String, Email)> = asked.iter().step_by(997).cloned().collect();
    check_identity_changes(&store, &stored, &few).await;
    // Sparse pairs, still many: pages start at the next id asked.
    let sparse: Vec<(String, Email)> = asked.iter().step_by(7).cloned().collect();
    check_identity_changes(&store, &stored, &sparse).await;
    // A first run: nothing stored.
    check_identity_changes(&store, &[], &asked[..100]).await;
    // Ids asked at both ends of the stored ones, pages apart: the page read
    // ahead during a merge holds none of them, and the read starts again at
    // the next id asked. Ids beyond every stored one are new.
    let padded: Vec<(String, Email)> =
        (0..40_000).map(|i| (format!("P{i:06}"), email(&format!("q{i}@acme.fr")))).collect();
    let mut ends: Vec<(String, Email)> = padded[..5_000].iter().chain(&padded[35_000..]).cloned().collect();
    ends[17].1 = email("q17.new@acme.fr");
    ends[9_999].1 = email("q39999.new@acme.fr");
    ends.push(("P999999".into(), email("new@acme.fr")));
    check_identity_changes(&store, &padded, &ends).await;
    // No pair asked.
    check_identity_changes(&store, &stored, &[]).await;
}

/// New ids are inserted and changed ones overwritten; an id recorded as new
/// that the store already holds is an error, never a silent overwrite.
async fn identities_are_inserted_when_new_and_overwritten_when_changed(store: Store) {
    let when = at("2026-03-01T05:00:00Z");
    let mut tx = store.begin().await.unwrap();
    let new = vec![("E1", "a@acme.fr"), ("E2", "b@acme.fr")];
    tx.record_identities(identity_writes(&new, &[]), when).await.unwrap();
    let changed = vec![("E1", "a.new@acme.fr")];
    tx.record_identities(identity_writes(&[("E3", "c@acme.fr")], &changed), when).await.unwrap();
    let asked = [("E1", "a.new@acme.fr"), ("E2", "b@acme.fr"), ("E3", "c@acme.fr"), ("E4", "d@acme.fr")];
    let answer = tx.identity_changes(asked.into_iter()).await.unwrap();
    assert_eq!(answer.unknown, [false, false, false, true]);
    assert!(answer.changed.is_empty(), "{:?}", answer.changed);
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let again = identity_writes(&[("E2", "b.other@acme.fr")], &[]);
    let err = tx.record_identities(again, when).await.unwrap_err();
    assert!(matches!(err, StoreError::Query { context: "record identities", .. }), "{err}");
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let answer = tx.identity_changes([("E2", "b@acme.fr")].into_iter()).await.unwrap();
    assert_eq!((answer.unknown, answer.changed.len()), (vec![false], 0), "E2 kept its address");
}

/// The choice between look-ups and a merge counts the identities only as far
/// as it needs to, and exactly, however far apart their rowids are.
async fn stored_identities_are_compared_with_a_limit(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let pairs: Vec<(String, String)> = (0..10).map(|i| (format!("E{i}"), format!("p{i}@acme.fr"))).collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(i, e)| (i.as_str(), e.as_str())).collect();
    for limit in [0, 1, 10] {
        assert!(!super::identities::stored_more_than(tx.conn(), limit).await.unwrap(), "empty, {limit}");
    }
    tx.record_identities(identity_writes(&pairs, &[]), at("2026-03-01T05:00:00Z")).await.unwrap();
    for (limit, expect) in [(0, true), (9, true), (10, false), (11, false), (usize::MAX, false)] {
        assert_eq!(super::identities::stored_more_than(tx.conn(), limit).await.unwrap(), expect, "10 stored, {limit}");
    }
    // Rows gone from the middle: SQLite's largest rowid stays 10, the count is 3.
    sqlx::query("DELETE FROM identities WHERE employee_id NOT IN ('E0', 'E5', 'E9')").execute(tx.conn()).await.unwrap();
    for (limit, expect) in [(2, true), (3, false), (5, false)] {
        assert_eq!(super::identities::stored_more_than(tx.conn(), limit).await.unwrap(), expect, "3 stored, {limit}");
    }
    tx.rollback().await.unwrap();
}

/// The merge needs the pairs in byte order: pairs out of order are refused,
/// never merged wrong. With nothing stored there is nothing to merge: every
/// id is new, whatever the order.
async fn identity_changes_refuse_pairs_out_of_order(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let unsorted = [("E2", "a@acme.fr"), ("E10", "b@acme.fr")];
    let answer = tx.identity_changes(unsorted.into_iter()).await.unwrap();
    assert_eq!((answer.unknown, answer.changed.len()), (vec![true, true], 0), "nothing stored");
    tx.record_identities(identity_writes(&[("E1", "c@acme.fr")], &[]), at("2026-03-01T05:00:00Z")).await.unwrap();
    let err = tx.identity_changes(unsorted.into_iter()).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(ref m) if m.contains("out of order")), "{err}");
}

/// PostgreSQL sorts employee ids in byte order whatever the database's
/// locale (migration 0009): the merge of [`identity_changes`] relies on it.
async fn employee_ids_sort_in_byte_order(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let ids = ["a-2", "A1", "a1", "a_1", "b", "B", "É", "e"];
    let new: Vec<(&str, &str)> = ids.iter().map(|i| (*i, "x@acme.fr")).collect();
    tx.record_identities(identity_writes(&new, &[]), at("2026-03-01T05:00:00Z")).await.unwrap();
    let rows =
        sqlx::query("SELECT employee_id FROM identities ORDER BY employee_id").fetch_all(tx.conn()).await.unwrap();
    let got: Vec<String> = rows.iter().map(|r| sqlx::Row::get(r, 0)).collect();
    let mut expect: Vec<&str> = ids.to_vec();
    expect.sort_unstable();
    assert_eq!(got, expect);
    if store.backend() == Backend::Postgres {
        // This server's own locale may sort in byte order already: the column says "C".
        let sql = "SELECT CAST(collation_name AS TEXT) FROM information_schema.columns \
                   WHERE table_schema = current_schema() AND table_name = 'identities' AND column_name = 'employee_id'";
        let row = sqlx::query(sql).fetch_one(tx.conn()).await.unwrap();
        assert_eq!(sqlx::Row::get::<Option<String>, _>(&row, 0).as_deref(), Some("C"));
    }
}

async fn absences_are_replaced_per_structure(store: Store) {
    let streak = |s: &str, who: &str, n: u32| AbsenceStreak { structure: sid(s), email: email(who), missed_runs: n };
    let mut tx = store.begin().await.unwrap();
    tx.replace_absences(&[sid(ACME), sid(OTHER)], &[streak(ACME, "a@acme.fr", 1), streak(OTHER, "o@other.fr", 2)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.replace_absences(&[sid(ACME)], &[streak(ACME, "a@acme.fr", 2), streak(ACME, "b@acme.fr", 1)]).await.unwrap();
    let got = tx.absences(&[sid(ACME), sid(OTHER)]).await.unwrap();
    assert_eq!(got, vec![streak(ACME, "a@acme.fr", 2), streak(ACME, "b@acme.fr", 1), streak(OTHER, "o@other.fr", 2)]);
    // A structure that no longer has absent people loses its streaks.
    tx.replace_absences(&[sid(OTHER)], &[]).await.unwrap();
    let err = tx.replace_absences(&[sid(OTHER)], &[streak(ACME, "x@acme.fr", 1)]).await.unwrap_err();
    assert!(matches!(err, StoreError::OutsideStructures { .. }), "{err}");
    assert_eq!(tx.absences(&[sid(OTHER)]).await.unwrap(), vec![]);
    assert_eq!(tx.absences(&[sid(ACME)]).await.unwrap().len(), 2);
    tx.commit().await.unwrap();
}

fn source_run(source: &str, rows: u64, rejected: Option<&str>) -> SourceRunRecord {
    SourceRunRecord {
        run: SourceRun {
            source: source.into(),
            origin: format!("samples/{source}.xlsx"),
            rows,
            valid_rows: rows.saturating_sub(1),
            rejected: rejected.map(Into::into),
        },
        sha256: Some(format!("{rows:064x}")),
        fill: [(crate::core::record::Field::Email, rows)].into_iter().collect(),
    }
}

async fn last_accepted_source_run_ignores_held_and_rejected(store: Store) {
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.last_accepted_source_run("hr").await.unwrap(), None);
    for (outcome, rows, rejected) in [
        (RunOutcome::Done, 100, None),
        (RunOutcome::Done, 120, None),
        (RunOutcome::Held, 10, None),
        (RunOutcome::Rejected, 5, Some("no header row")),
        (RunOutcome::Done, 7, Some("empty file")),
    ] {
        let id = tx.insert_run(&run_record(outcome)).await.unwrap();
        tx.insert_source_runs(id, &[source_run("hr", rows, rejected), source_run("ldap", rows + 1, None)])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.last_accepted_source_run("hr").await.unwrap(), Some(source_run("hr", 120, None)));
    // ldap was accepted in the last run even though hr was rejected there.
    assert_eq!(tx.last_accepted_source_run("ldap").await.unwrap(), Some(source_run("ldap", 8, None)));
    assert_eq!(tx.last_accepted_source_run("other").await.unwrap(), None);
    tx.rollback().await.unwrap();
}

async fn runs_round_trip(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let first = tx.insert_run(&run_record(RunOutcome::Done)).await.unwrap();
    let mut held = run_record(RunOutcome::Held);
    held.message = Some("max_detach exceeded: 80 > 50".into());
    held.sources = vec![];
    held.report_dir = None;
    let second = tx.insert_run(&held).await.unwrap();
    tx.insert_source_runs(second, &[source_run("hr", 3, None), source_run("ldap", 4, Some("timeout"))]).await.unwrap();
    held.id = second;
    held.outcome = RunOutcome::Done;
    held.forced_by = Some("admin@acme.fr".into());
    held.counts.raised = 80;
    tx.update_run(&held).await.unwrap();
    let err = tx.update_run(&RunRecord { id: 424_242, ..held.clone() }).await.unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(424_242)), "{err}");
    tx.commit().await.unwrap();

    let first_rec = RunRecord { id: first, ..run_record(RunOutcome::Done) };
    assert_eq!(store.list_runs(None).await.unwrap(), vec![held.clone(), first_rec.clone()]);
    assert_eq!(store.list_runs(Some(1)).await.unwrap(), vec![held.clone()]);
    assert_eq!(
        store.get_run(second).await.unwrap(),
        Some((held, vec![source_run("hr", 3, None), source_run("ldap", 4, Some("timeout"))]))
    );
    assert_eq!(store.get_run(first).await.unwrap(), Some((first_rec, vec![])));
    assert_eq!(store.get_run(first + 100).await.unwrap(), None);
}

async fn open_and_refused_requests(store: Store) {
    let run = new_run(&store).await;
    let key_a = (None, place(Some("COMPTA"), ""));
    let mut reqs = vec![
        request(run, ACME, "a@acme.fr", key_a.0.clone(), key_a.1.clone()), // refused, older
        request(run, ACME, "a@acme.fr", key_a.0.clone(), key_a.1.clone()), // refused, latest
        request(run, ACME, "b@acme.fr", None, place(None, "")),            // pending
        request(run, ACME, "c@acme.fr", place(None, ""), None),            // approved
        request(run, ACME, "d@acme.fr", place(None, ""), None),            // superseded
        request(run, OTHER, "e@other.fr", None, place(None, "")),          // pending, other structure
    ];
    reqs[0].state = RequestState::Refused;
    reqs[0].reason_category = "absent".into();
    reqs[1].state = RequestState::Refused;
    reqs[3].state = RequestState::Approved;
    reqs[4].state = RequestState::Superseded;
    let ids = insert(&store, &reqs).await;

    let mut tx = store.begin().await.unwrap();
    let open = tx.open_requests(&[sid(ACME)]).await.unwrap();
    assert_eq!(
        open,
        vec![
            OpenRequest { id: ids[2], state: RequestState::Pending, key: reqs[2].key.clone() },
            OpenRequest { id: ids[3], state: RequestState::Approved, key: reqs[3].key.clone() },
        ]
    );
    assert_eq!(tx.open_requests(&[sid(ACME), sid(OTHER)]).await.unwrap().len(), 3);
    assert_eq!(tx.open_requests(&[]).await.unwrap(), vec![]);
    let refused = tx.refused_changes(&[sid(ACME)]).await.unwrap();
    assert_eq!(refused, vec![RefusedChange { id: ids[1], key: reqs[1].key.clone(), reason_category: "new".into() }]);
    assert_eq!(tx.refused_changes(&[sid(OTHER)]).await.unwrap(), vec![]);
    tx.rollback().await.unwrap();
}

/// The lean reads of the diff (`open_requests`, `refused_changes`: a few
/// columns, decoded as they stream) give what the full rows say, for every
/// placement shape in every state, and `held_requests` the full held rows.
async fn open_refused_and_held_keys_of_every_placement_shape(store: Store) {
    let run = new_run(&store).await;
    let shapes: Vec<(&str, Option<Placement>, Option<Placement>)> = vec![
        // attach at a service with rights, at the structure level with the portal's defaults
        (ACME, None, place(Some("COMPTA"), "factures:modification")),
        (ACME, None, place(None, "")),
        // detach from the structure level with rights, from a service without
        (ACME, place(None, "factures:consultation,engagements:modification"), None),
        (NOUMEA, place(Some("Serv 01"), ""), None),
        // rights, at the structure level and at a service
        (ACME, place(None, ""), place(None, "factures:modification")),
        (OTHER, place(Some("ACHATS"), "factures:consultation"), place(Some("ACHATS"), "")),
        // moves: structure level to a service, service to service
        (ACME, place(None, "factures:consultation"), place(Some("COMPTA"), "factures:consultation")),
        (OTHER, place(Some("COMPTA"), ""), place(Some("ACHATS"), "engagements:consultation")),
    ];
    let states = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Refused,
        RequestState::Held,
        RequestState::Superseded,
    ];
    let categories = ["new", "left", "absent", "service", "rights"];
    let mut reqs = Vec::new();
    for (i, (structure, before, after)) in shapes.iter().enumerate() {
        for (j, state) in states.iter().enumerate() {
            // One address per shape and state: every refused key is its own.
            let who = format!("p{i}.{j}@acme.fr");
            let mut r = request(run, structure, &who, before.clone(), after.clone());
            r.state = *state;
            r.reason_category = categories[(i + j) % categories.len()].into();
            // No name, and characters of two to four bytes (framed reads count bytes).
            match (i + j) % 3 {
                0 => r.name = PersonName::default(),
                1 => r.name.last_name = Some("Lefèvre-Núñez 😀".into()),
                _ => {}
            }
            reqs.push(r);
        }
    }
    let ids = insert(&store, &reqs).await;
    let full = store.list_requests(&RequestFilter::default()).await.unwrap();
    let stored: Vec<ApprovalRequest> = reqs.iter().cloned().zip(&ids).map(|(r, &id)| with_id(r, id)).collect();
    assert_eq!(full, stored, "the full rows read back as written");

    let scope = [sid(ACME), sid(OTHER), sid(NOUMEA)];
    let in_state = |states: &'static [RequestState]| stored.iter().filter(move |r| states.contains(&r.state));
    let mut tx = store.begin().await.unwrap();
    let open = tx.open_requests(&scope).await.unwrap();
    let want: Vec<OpenRequest> = in_state(&[RequestState::Pending, RequestState::Approved])
        .map(|r| OpenRequest { id: r.id, state: r.state, key: r.key.clone() })
        .collect();
    assert_eq!(want.len(), 2 * shapes.len());
    assert_eq!(open, want);
    let refused = tx.refused_changes(&scope).await.unwrap();
    let want: Vec<RefusedChange> = in_state(&[RequestState::Refused])
        .map(|r| RefusedChange { id: r.id, key: r.key.clone(), reason_category: r.reason_category.clone() })
        .collect();
    assert_eq!(want.len(), shapes.len());
    assert_eq!(refused, want);
    let held = tx.held_requests(&scope).await.unwrap();
    let want: Vec<ApprovalRequest> = in_state(&[RequestState::Held]).cloned().collect();
    assert_eq!(want.len(), shapes.len());
    assert_eq!(held, want);
    // Only the structures asked for.
    let open = tx.open_requests(&[sid(OTHER)]).await.unwrap();
    assert_eq!(open.len(), 2 * 2);
    assert!(open.iter().all(|o| o.key.structure == sid(OTHER)), "{open:?}");
    tx.rollback().await.unwrap();

    // The queues' read (a run's pending sheet): what the full rows say, by
    // id, whatever the page size and however the structures are chunked.
    let want: Vec<QueuedRequest> =
        in_state(&[RequestState::Pending, RequestState::Approved]).map(QueuedRequest::from).collect();
    assert_eq!(store.queued_requests(&scope).await.unwrap().iter().collect::<Vec<_>>(), want);
    let mut conn = store.conn().await.unwrap();
    let unit = framing::length_unit(&mut conn).await.unwrap();
    for page in [1, 3, want.len(), want.len() + 1] {
        let read = queue::read_queue(&mut conn, &scope, unit, page).await.unwrap();
        assert_eq!(read.iter().collect::<Vec<_>>(), want, "pages of {page}");
    }
    // The diff's read of the same requests, in pages too.
    let open: Vec<OpenRequest> = want
        .iter()
        .map(|q| stored.iter().find(|r| r.id == q.id).unwrap())
        .map(|r| OpenRequest { id: r.id, state: r.state, key: r.key.clone() })
        .collect();
    for page in [1, 3, open.len(), open.len() + 1] {
        let read = queue::read_open(&mut conn, &scope, unit, page).await.unwrap();
        assert_eq!(read, open, "pages of {page}");
    }
    drop(conn);
    let other: Vec<QueuedRequest> = want.iter().filter(|r| *r.structure == sid(OTHER)).copied().collect();
    assert_eq!(other.len(), 2 * 2);
    assert_eq!(store.queued_requests(&[sid(OTHER)]).await.unwrap().iter().collect::<Vec<_>>(), other);
    assert!(store.queued_requests(&[]).await.unwrap().is_empty());
}

/// More rows than one statement takes on either backend (1,200 a VALUES
/// list on SQLite, 10,000 a jsonb array on PostgreSQL).
/// Each statement of a bulk insert is built while the one before it runs
/// (`sql::bulk_insert`): every chunk still gets its own rows back, in
/// order, and a statement that fails ends the insert with its error, the
/// statements after it never run.
async fn a_bulk_insert_answers_each_statement_in_order_and_stops_at_the_first_failure(store: Store) {
    /// Inserts `who` in statements of three; answers each statement's chunk and returned rows.
    async fn insert(tx: &mut StoreTx, who: &[String]) -> (Result<(), StoreError>, Vec<(Vec<String>, Vec<String>)>) {
        let mut answers = Vec::new();
        let result = sql::bulk_insert_in(
            tx.conn(),
            who,
            3,
            |w: &String| [ACME.into(), w.as_str().into(), 1i64.into()],
            |source| format!("INSERT INTO absences (structure, email, missed_runs) {source} RETURNING email"),
            "insert absences",
            |chunk, rows| {
                // RETURNING promises no order within a statement.
                let mut returned: Vec<String> = rows.iter().map(|r| sqlx::Row::try_get(r, 0).unwrap()).collect();
                returned.sort();
                answers.push((chunk.to_vec(), returned));
                Ok(())
            },
        )
        .await;
        (result, answers)
    }
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let mut tx = store.begin().await.unwrap();
    let who = names(&["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr", "e@x.fr", "f@x.fr", "g@x.fr"]);
    let (result, answers) = insert(&mut tx, &who).await;
    result.unwrap();
    let chunks: Vec<Vec<String>> = who.chunks(3).map(<[String]>::to_vec).collect();
    assert_eq!(answers, chunks.iter().map(|c| (c.clone(), c.clone())).collect::<Vec<_>>());
    assert_eq!(tx.absences(&[sid(ACME)]).await.unwrap().len(), 7);

    // The second statement repeats a stored key: the first is answered,
    // the third (built meanwhile) never runs.
    let again = names(&["h@x.fr", "i@x.fr", "j@x.fr", "k@x.fr", "a@x.fr", "l@x.fr", "m@x.fr"]);
    let (result, answers) = insert(&mut tx, &again).await;
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Query { context: "insert absences", .. }), "{err}");
    assert_eq!(answers, vec![(again[..3].to_vec(), again[..3].to_vec())]);
    tx.rollback().await.unwrap();
    assert_eq!(raw_count(&store, "absences").await, 0);
}

async fn bulk_insert_of_10_500_requests(store: Store) {
    let run = new_run(&store).await;
    let pg = store.backend() == Backend::Postgres;
    insert(&store, &[request(run, ACME, "first@acme.fr", None, place(None, ""))]).await;
    if pg {
        assert_eq!(columns_with_statistics(&store, "requests").await, 0, "a small insert is not analyzed");
    }
    let reqs: Vec<ApprovalRequest> = (0..10_500)
        .map(|i| {
            let after = if i % 2 == 0 { place(Some("COMPTA"), "factures:modification") } else { place(None, "") };
            request(run, ACME, &format!("p{i:05}@acme.fr"), None, after)
        })
        .collect();
    // In two calls, as a run raises them (chunk by chunk): neither reaches
    // the 10,000 rows that call for statistics, the transaction does.
    let mut tx = store.begin().await.unwrap();
    let mut ids = tx.insert_requests(&reqs[..5_250]).await.unwrap();
    ids.extend(tx.insert_requests(&reqs[5_250..]).await.unwrap());
    if pg {
        assert_eq!(columns_with_statistics(&store, "requests").await, 0, "analyzed at commit, not before");
    }
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 10_500);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    if pg {
        // Regression: without statistics each page of the pending sheet
        // sorted every request left (100,000 pending: 0.68 s in 10 pages).
        assert!(columns_with_statistics(&store, "requests").await > 20, "a bulk load is analyzed");
    }
    assert_eq!(store.count_requests(&RequestFilter::default()).await.unwrap(), 10_501);
    assert_eq!(raw_count(&store, "request_history").await, 10_501);
    // Ids line up with the input across chunk boundaries.
    let got = store.list_requests(&RequestFilter { ids: ids.clone(), ..RequestFilter::default() }).await.unwrap();
    for (i, r) in got.iter().enumerate() {
        assert_eq!((r.id, r.key.email.as_str()), (ids[i], format!("p{i:05}@acme.fr").as_str()));
    }
    // Superseding thousands at once.
    let mut tx = store.begin().await.unwrap();
    tx.transition_many(&ids, RequestState::Pending, RequestState::Superseded, None, at("2026-03-05T06:00:00Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let f = RequestFilter { states: vec![RequestState::Superseded], ..RequestFilter::default() };
    assert_eq!(store.count_requests(&f).await.unwrap(), 10_500);
    assert_eq!(raw_count(&store, "request_history").await, 21_001);
}

async fn concurrent_writers_are_serialised(store: Store) {
    let tx1 = store.begin().await.unwrap();
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx2 = store.begin().await.unwrap();
            let acquired = Instant::now();
            tx2.insert_run(&run_record(RunOutcome::Held)).await.unwrap();
            tx2.commit().await.unwrap();
            acquired
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!second.is_finished(), "the second writer must wait for the first");
    // Readers are not blocked by the writer.
    assert!(store.list_runs(None).await.unwrap().is_empty());
    let released = Instant::now();
    tx1.commit().await.unwrap();
    let acquired = tokio::time::timeout(Duration::from_secs(10), second).await.unwrap().unwrap();
    assert!(acquired >= released, "second writer got in before the first committed");
    assert_eq!(store.list_runs(None).await.unwrap().len(), 1);
}

/// Commits a run of `sources` (each read, none rejected) and returns its id.
async fn run_of(store: &Store, sources: &[&str], outcome: RunOutcome, anomalies: u64, started: &str) -> RunId {
    let started_at = at(started);
    let record = RunRecord {
        started_at,
        finished_at: started_at + chrono::Duration::seconds(4),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        counts: RunCounts { anomalies, ..RunCounts::default() },
        ..run_record(outcome)
    };
    let reads: Vec<SourceRunRecord> = sources
        .iter()
        .map(|s| SourceRunRecord {
            run: SourceRun {
                source: s.to_string(),
                origin: format!("{s}.csv"),
                rows: 3,
                valid_rows: 3,
                rejected: None,
            },
            sha256: None,
            fill: Default::default(),
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    let id = tx.insert_run(&record).await.unwrap();
    tx.insert_source_runs(id, &reads).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// `store/stats.rs`, what /healthz and /metrics read.
async fn ops_figures_count_each_source_of_a_run_and_each_request(store: Store) {
    store.ping().await.unwrap();
    assert!(store.last_run_per_source().await.unwrap().is_empty());
    assert_eq!(store.anomalies_reported().await.unwrap(), 0);
    let both = run_of(&store, &["hr", "ldap"], RunOutcome::Done, 7, "2026-03-02T06:30:00Z").await;
    let held = run_of(&store, &["hr"], RunOutcome::Held, 2, "2026-03-02T06:40:00Z").await;
    let rejected = run_of(&store, &["ldap"], RunOutcome::Rejected, 0, "2026-03-02T06:50:00Z").await;

    let count = |source: &str, outcome, runs| OutcomeCount { source: source.into(), outcome, runs };
    assert_eq!(
        store.runs_per_source().await.unwrap(),
        [
            count("hr", RunOutcome::Done, 1),
            count("hr", RunOutcome::Held, 1),
            count("ldap", RunOutcome::Done, 1),
            count("ldap", RunOutcome::Rejected, 1),
        ]
    );
    let last: Vec<(String, RunId, RunOutcome)> =
        store.last_run_per_source().await.unwrap().into_iter().map(|l| (l.source, l.run.id, l.run.outcome)).collect();
    assert_eq!(last, [("hr".into(), held, RunOutcome::Held), ("ldap".into(), rejected, RunOutcome::Rejected)]);
    assert_eq!(store.anomalies_reported().await.unwrap(), 9, "each run once, whatever its sources");

    let attach = |who| request(both, ACME, who, None, place(None, ""));
    let ids = insert(
        &store,
        &[attach("a@acme.fr"), attach("b@acme.fr"), request(both, ACME, "c@acme.fr", place(None, ""), None)],
    )
    .await;
    let mut tx = store.begin().await.unwrap();
    tx.transition(
        ids[0],
        RequestState::Pending,
        RequestState::Approved,
        Some("gp@acme.fr"),
        at("2026-03-03T09:00:00Z"),
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let n = |kind, state, count| RequestCount { structure: ACME.into(), kind, state, count };
    assert_eq!(
        store.request_counts().await.unwrap(),
        [
            n(ChangeKind::Attach, RequestState::Approved, 1),
            n(ChangeKind::Attach, RequestState::Pending, 1),
            n(ChangeKind::Detach, RequestState::Pending, 1),
        ]
    );
}

async fn search_ignores_case_and_accents(store: Store) {
    let run = new_run(&store).await;
    let people = [
        ("helene.lefevre@acme.fr", "Lefèvre", "Hélène"),
        ("noel@acme.fr", "NOËL", "Jérôme"),
        ("oeuvray@acme.fr", "Œuvray", "Zoé"),
        ("ørsted@acme.fr", "Ørsted", "Ana\u{301}is"),
        ("plain@acme.fr", "Martin", "Paul"),
        ("pct@acme.fr", "100%", "a_b"),
    ];
    let named = |(_, last, first): (&str, &str, &str)| PersonName {
        last_name: Some(last.into()),
        first_name: Some(first.into()),
    };
    let reqs: Vec<_> = people
        .iter()
        .map(|p| ApprovalRequest { name: named(*p), ..request(run, ACME, p.0, None, place(None, "")) })
        .collect();
    insert(&store, &reqs).await;
    let currents: Vec<_> =
        people.iter().map(|p| CurrentAttachment { name: named(*p), ..current(ACME, p.0, None, "", None) }).collect();
    let mut tx = store.begin().await.unwrap();
    tx.replace_current(&[sid(ACME)], &currents, at("2026-03-01T05:00:00Z")).await.unwrap();
    tx.commit().await.unwrap();
    for (search, expect) in [
        ("helene", &["helene.lefevre@acme.fr"][..]),
        ("HÉLÈNE", &["helene.lefevre@acme.fr"]),
        ("Lefevre", &["helene.lefevre@acme.fr"]),
        ("lefèvre", &["helene.lefevre@acme.fr"]),
        ("noel", &["noel@acme.fr"]),
        ("Noël", &["noel@acme.fr"]),
        ("jerome", &["noel@acme.fr"]),
        ("oeuvray", &["oeuvray@acme.fr"]),
        ("Œuvray", &["oeuvray@acme.fr"]),
        ("ZOE", &["oeuvray@acme.fr"]),
        ("orsted", &["ørsted@acme.fr"]),
        ("anais", &["ørsted@acme.fr"]),
        ("Anaïs", &["ørsted@acme.fr"]),
        ("%", &["pct@acme.fr"]),
        ("a_b", &["pct@acme.fr"]),
        ("  paul ", &["plain@acme.fr"]),
        ("hélène martin", &[]),
    ] {
        let q = RequestQuery { search: Some(search.into()), ..RequestQuery::default() };
        let (rows, total) = store.request_page(&q, 50, 0).await.unwrap();
        let found: Vec<&str> = rows.iter().map(|r| r.key.email.as_str()).collect();
        assert_eq!((found.as_slice(), total), (expect, expect.len() as u64), "requests, {search:?}");
        let q = AttachmentQuery { structures: vec![sid(ACME)], service: None, search: Some(search.into()) };
        let (rows, _) = store.attachment_page(&q, None).await.unwrap();
        let found: Vec<&str> = rows.iter().map(|r| r.attachment.email.as_str()).collect();
        assert_eq!(found.as_slice(), expect, "attachments, {search:?}");
    }
}

async fn sign_in_failures_count_in_a_window(store: Store) {
    let t0 = at("2026-03-02T08:00:00Z");
    let minute = chrono::TimeDelta::seconds(60);
    for i in 0..3 {
        store.record_sign_in_failure("gp@acme.fr", t0 + chrono::TimeDelta::seconds(i), t0 - minute).await.unwrap();
    }
    store.record_sign_in_failure("other@acme.fr", t0, t0 - minute).await.unwrap();
    assert_eq!(store.sign_in_failures("gp@acme.fr", t0 - minute).await.unwrap(), 3);
    assert_eq!(store.sign_in_failures("gp@acme.fr", t0 + chrono::TimeDelta::seconds(3)).await.unwrap(), 0, "stale");
    // A failure after the window starts the count again.
    let later = t0 + chrono::TimeDelta::seconds(200);
    store.record_sign_in_failure("gp@acme.fr", later, later - minute).await.unwrap();
    assert_eq!(store.sign_in_failures("gp@acme.fr", later - minute).await.unwrap(), 1);
    assert_eq!(raw_count(&store, "web_sign_in_failures").await, 1, "stale rows go");
    store.clear_sign_in_failures("gp@acme.fr").await.unwrap();
    assert_eq!(store.sign_in_failures("gp@acme.fr", later - minute).await.unwrap(), 0);
}

async fn oidc_flows_are_taken_once_and_expire(store: Store) {
    let now = at("2026-03-02T08:00:00Z");
    let flow = |minutes: i64| OidcFlow {
        state: "s".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        next: "/approvals".into(),
        expires_at: now + chrono::TimeDelta::minutes(minutes),
    };
    store.create_oidc_flow("a", &flow(10), now).await.unwrap();
    store.create_oidc_flow("b", &flow(10), now).await.unwrap();
    assert_eq!(store.take_oidc_flow("a", now).await.unwrap(), Some(flow(10)));
    assert_eq!(store.take_oidc_flow("a", now).await.unwrap(), None, "once");
    assert_eq!(store.take_oidc_flow("b", now + chrono::TimeDelta::minutes(11)).await.unwrap(), None, "expired");
    assert_eq!(store.take_oidc_flow("nope", now).await.unwrap(), None);
    // Expired flows are swept when a new one is stored.
    store.create_oidc_flow("c", &flow(1), now).await.unwrap();
    store.create_oidc_flow("d", &flow(10), now + chrono::TimeDelta::minutes(5)).await.unwrap();
    assert_eq!(raw_count(&store, "web_oidc_flows").await, 1);
}

crate::both_backends!(
    sign_in_failures_count_in_a_window,
    oidc_flows_are_taken_once_and_expire,
    requests_round_trip_every_placement_shape,
    search_ignores_case_and_accents,
    ops_figures_count_each_source_of_a_run_and_each_request,
    filters_select_requests,
    transitions_record_decisions_and_history,
    stale_transitions_conflict_and_change_nothing,
    history_is_append_only,
    rollback_leaves_nothing,
    replace_current_touches_only_listed_structures,
    a_replacement_leaves_planner_statistics_on_postgres,
    current_attachments_read_in_pages_lose_and_repeat_nothing,
    current_attachments_read_awkward_values_back_exactly,
    corrupt_current_rows_are_reported_by_row_and_column,
    generations_count_replacements_per_structure,
    a_replacement_after_the_snapshot_shows_in_the_write_transaction,
    identity_changes_answer_only_new_and_changed_ids,
    identities_are_inserted_when_new_and_overwritten_when_changed,
    identity_changes_refuse_pairs_out_of_order,
    stored_identities_are_compared_with_a_limit,
    employee_ids_sort_in_byte_order,
    absences_are_replaced_per_structure,
    last_accepted_source_run_ignores_held_and_rejected,
    runs_round_trip,
    open_and_refused_requests,
    open_refused_and_held_keys_of_every_placement_shape,
    bulk_insert_of_10_500_requests,
    a_bulk_insert_answers_each_statement_in_order_and_stops_at_the_first_failure,
    concurrent_writers_are_serialised,
);

// ---- connecting ------------------------------------------------------------------

/// Connecting again to a migrated store applies nothing and loses nothing.
async fn reconnect_keeps_data(url: Secret<String>) {
    let store = Store::connect(&url).await.unwrap();
    let run = new_run(&store).await;
    store.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.list_runs(None).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![run]);
    again.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = Secret::new(testing::sqlite_test_url(&dir));
    reconnect_keeps_data(url).await;
    assert!(dir.path().join("store.db").exists(), "the SQLite file is created");
}

#[tokio::test]
async fn migrations_are_idempotent_postgres() {
    let (url, schema) = testing::create_pg_schema().await;
    reconnect_keeps_data(url).await;
    // The other documented URL form reaches the same schema, and the tables
    // live there, not in `public`.
    let base = testing::pg_base_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = Secret::new(format!("{base}{sep}options[search_path]={schema}"));
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.list_runs(None).await.unwrap().len(), 1);
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name IN \
         ('runs', 'source_runs', 'requests', 'request_history', 'current_attachments', 'absences')",
    )
    .bind(schema.clone())
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&row, "n"), 6);
    store.close().await;
    testing::drop_pg_schema(&schema).await;
}

#[tokio::test]
async fn connection_errors_mask_the_password() {
    let url = Secret::new("postgres://app:hunter2@127.0.0.1:1/chorus".to_string());
    let err = Store::connect(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{text}");
    assert!(text.contains("postgres://app:[REDACTED]@127.0.0.1:1/chorus"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let err = Store::connect(&Secret::new("mysql://u:pw@db/x".to_string())).await.unwrap_err();
    assert!(matches!(err, StoreError::Scheme { .. }), "{err}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

#[test]
fn backends_and_sqlite_urls() {
    for (url, expect) in [
        ("sqlite://chorus-sync.db", Some(Backend::Sqlite)),
        ("sqlite::memory:", Some(Backend::Sqlite)),
        ("postgres://u@h/db", Some(Backend::Postgres)),
        ("PostgreSQL://u@h/db", Some(Backend::Postgres)),
        ("mysql://u@h/db", None),
        ("chorus.db", None),
    ] {
        assert_eq!(Backend::of_url(url), expect, "{url}");
    }
    for (url, expect) in [
        ("sqlite://a.db", "sqlite://a.db?mode=rwc"),
        ("sqlite://a.db?cache=shared", "sqlite://a.db?cache=shared&mode=rwc"),
        ("sqlite://a.db?mode=ro", "sqlite://a.db?mode=ro"),
    ] {
        assert_eq!(sqlite_url(url), expect, "{url}");
    }
}

/// 100,000 requests in one transaction: a measurement, run by hand with
/// `cargo test --lib bulk_100k -- --ignored --nocapture`.
async fn bulk_100k(store: Store) {
    let run = new_run(&store).await;
    let reqs: Vec<ApprovalRequest> = (0..100_000)
        .map(|i| request(run, ACME, &format!("p{i:06}@acme.fr"), None, place(Some("COMPTA"), "")))
        .collect();
    let start = Instant::now();
    let ids = insert(&store, &reqs).await;
    let took = start.elapsed();
    println!("{}: inserted {} requests in {took:?}", store.backend(), ids.len());
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[tokio::test]
#[ignore = "measurement"]
async fn bulk_100k_sqlite() {
    let (store, _dir) = testing::fresh_sqlite().await;
    bulk_100k(store).await;
}

#[tokio::test]
#[ignore = "measurement"]
async fn bulk_100k_postgres() {
    let (url, schema) = testing::create_pg_schema().await;
    bulk_100k(Store::connect(&url).await.unwrap()).await;
    testing::drop_pg_schema(&schema).await;
}

/// Migration 0006 rebuilds SQLite's `requests` (a CHECK cannot be altered):
/// requests, their history, its append-only triggers and the foreign keys survive.
#[tokio::test]
async fn migration_0006_keeps_requests_history_and_keys_sqlite() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("migrations-0003");
    std::fs::create_dir(&old).unwrap();
    for f in ["0001_init.sql", "0002_identities.sql", "0003_slots.sql"] {
        std::fs::copy(format!("{}/migrations/sqlite/{f}", env!("CARGO_MANIFEST_DIR")), old.join(f)).unwrap();
    }
    let url = testing::sqlite_test_url(&dir);
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("{url}?mode=rwc")).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&mut conn).await.unwrap();
    let run = queries::insert_run(&mut conn, &run_record(RunOutcome::Done)).await.unwrap();
    let req = request(run, ACME, "a@acme.fr", None, place(Some("COMPTA"), ""));
    let ids = queries::insert_requests(&mut conn, std::slice::from_ref(&req)).await.unwrap();
    let t = at("2026-03-03T08:00:00Z");
    queries::transition(&mut conn, ids[0], RequestState::Pending, RequestState::Approved, Some("gp@acme.fr"), t, None)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = Store::connect(&Secret::new(url)).await.unwrap();
    let got = store.get_request(ids[0]).await.unwrap().unwrap();
    assert_eq!((got.state, got.key), (RequestState::Approved, req.key.clone()));
    assert_eq!(store.history(ids[0]).await.unwrap().len(), 2);
    let mut tx = store.begin().await.unwrap();
    let held = tx.insert_requests(&[ApprovalRequest { state: RequestState::Held, ..req.clone() }]).await.unwrap();
    assert!(held[0] > ids[0], "ids keep growing after the rebuild");
    // Foreign keys still hold: a request of an unknown run is refused.
    assert!(tx.insert_requests(&[ApprovalRequest { run_id: 999, ..req }]).await.is_err());
    tx.rollback().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let err = sqlx::query("DELETE FROM request_history").execute(&mut *conn).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
