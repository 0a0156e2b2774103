//! Every route of the console on the router, on SQLite and PostgreSQL.

use super::fixture::{DELEGATE, Fixture, GP, GP_SERVICES, PASSWORD, held_env, set_password};
use crate::support::Backend;

on_both!(
    no_session_redirects_to_sign_in,
    sign_in_refuses_wrong_passwords_and_locks_out,
    a_manager_sees_and_decides_only_their_structures,
    forms_without_the_session_csrf_token_are_refused,
    a_blank_refusal_motive_is_refused_by_the_server,
    single_decisions_are_recorded_as_the_cli_shows_them,
    bulk_decisions_are_all_or_nothing,
    bulk_all_matching_the_filter,
    queue_filters_search_sort_and_pages,
    run_reports_download_with_access_control,
    users_of_a_structure_and_their_export,
    french_by_default_english_on_request,
    sign_out_ends_the_session,
    the_queue_pages_through_tens_of_thousands,
    held_requests_are_decided_item_by_item,
    two_instances_share_the_sign_in_lockout,
    the_runs_list_shows_a_manager_the_runs_of_their_structures,
);

async fn no_session_redirects_to_sign_in(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.client();
    for path in ["/approvals", "/approvals/1", "/runs", "/runs/1/reports/changes.csv", "/users", "/users/export.csv"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert!(r.location().starts_with("/sign-in?next="), "{path}: {}", r.location());
    }
    let r = c.post("/approvals/1/approve", &[("csrf", "x")]).await;
    assert_eq!(r.status, 303);
    assert!(fx.ids_in("pending").contains(&1));
    // A made-up session cookie is no session.
    c.set_cookie("chorus_session", "00112233");
    assert_eq!(c.get("/approvals").await.status, 303);
    assert_eq!(c.get("/").await.location(), "/approvals");
}

async fn sign_in_refuses_wrong_passwords_and_locks_out(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.client();
    let r = c.sign_in(GP, "not the password").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Adresse ou mot de passe incorrect."), "{}", r.body);
    assert!(c.cookie("chorus_session").is_none());
    // An address with no account, and one that is nobody's manager, answer the same.
    assert_eq!(c.sign_in("someone@acme.fr", PASSWORD).await.status, 401);
    // The session cookie is HttpOnly, SameSite=Strict and Secure.
    let ok = c.sign_in(DELEGATE, PASSWORD).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/approvals");
    let set: Vec<&str> = ok.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("chorus_session=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert_eq!(session.split(';').next().unwrap().len(), "chorus_session=".len() + 64, "256 bits in hex");
    // Five failures (one above, four here) lock the address for a minute,
    // even with the right password.
    let mut other = fx.client();
    for _ in 0..4 {
        assert_eq!(other.sign_in(GP, "wrong").await.status, 401);
    }
    let locked = other.sign_in(GP, PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    // No login cookie (a forged cross-site post): refused before any check.
    let mut bare = fx.client();
    let r = bare.post("/sign-in", &[("email", DELEGATE), ("password", PASSWORD), ("csrf", "abc")]).await;
    assert_eq!(r.status, 403);
}

async fn a_manager_sees_and_decides_only_their_structures(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP_SERVICES).await;
    let queue = c.get("/approvals").await;
    assert_eq!(queue.status, 200);
    assert_eq!(queue.row_ids(), [8, 9, 10], "only ACME Services");
    assert!(queue.body.contains("<span class=\"badge\" id=\"pending-count\">3</span>"), "{}", queue.body);
    // Another structure's request is not found, to see or to decide.
    assert_eq!(c.get("/approvals/1").await.status, 404);
    assert_eq!(c.get("/approvals/8").await.status, 200);
    let csrf = c.csrf().await;
    assert_eq!(c.post("/approvals/1/approve", &[("csrf", &csrf)]).await.status, 404);
    assert_eq!(c.post("/approvals/1/refuse", &[("csrf", &csrf), ("motive", "non")]).await.status, 404);
    let bulk = c.bulk(&csrf, &[("action", "approve"), ("ids", "8"), ("ids", "1")]).await;
    assert_eq!(bulk.status, 409);
    assert!(bulk.body.contains("no approval request #1"), "{}", bulk.body);
    // Filtering on a structure that is not theirs shows nothing.
    let other = c.get("/approvals?structure=12345678200010").await;
    assert!(other.row_ids().is_empty());
    assert_eq!(fx.ids_in("pending"), (1..=10).collect::<Vec<_>>(), "nothing changed");
    // The delegate of ACME France sees its seven.
    let mut d = fx.signed_in(DELEGATE).await;
    assert_eq!(d.get("/approvals").await.row_ids(), (1..=7).collect::<Vec<_>>());
}

async fn forms_without_the_session_csrf_token_are_refused(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let csrf = c.csrf().await;
    assert_eq!(csrf.len(), 64);
    for fields in [vec![], vec![("csrf", "0".repeat(64))], vec![("csrf", String::new())]] {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(c.post("/approvals/1/approve", &f).await.status, 403, "{f:?}");
        let mut refuse = f.clone();
        refuse.push(("motive", "non"));
        assert_eq!(c.post("/approvals/1/refuse", &refuse).await.status, 403);
        let mut bulk = f.clone();
        bulk.extend([("action", "approve"), ("ids", "2")]);
        assert_eq!(c.post("/approvals/bulk", &bulk).await.status, 403);
        assert_eq!(c.post("/sign-out", &f).await.status, 403);
    }
    // Another session's token does not do either.
    let mut other = fx.signed_in(DELEGATE).await;
    let theirs = other.csrf().await;
    assert_ne!(theirs, csrf);
    assert_eq!(c.post("/approvals/1/approve", &[("csrf", &theirs)]).await.status, 403);
    assert_eq!(fx.ids_in("pending"), (1..=10).collect::<Vec<_>>());
    assert_eq!(c.get("/approvals").await.status, 200, "still signed in");
}

async fn a_blank_refusal_motive_is_refused_by_the_server(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let csrf = c.csrf().await;
    for motive in [None, Some(""), Some("   \n\t ")] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(motive.map(|m| ("motive", m)));
        let r = c.post("/approvals/2/refuse", &f).await;
        assert_eq!(r.status, 422, "{motive:?}");
        assert!(r.body.contains("le motif est obligatoire"), "{}", r.body);
        let bulk = c.post("/approvals/bulk", &[&f[..], &[("action", "refuse"), ("ids", "3")]].concat()).await;
        assert_eq!(bulk.status, 422);
    }
    assert_eq!(fx.show(2)["state"], "pending");
    assert_eq!(fx.show(3)["state"], "pending");
}

async fn single_decisions_are_recorded_as_the_cli_shows_them(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(DELEGATE).await;
    let page = c.get("/approvals/1").await;
    assert!(page.body.contains("Rattacher Camille Bonnet"), "{}", page.body);
    assert!(page.body.contains("id=\"history\""));
    let csrf = page.csrf();
    let r = c.post("/approvals/1/approve", &[("csrf", &csrf), ("comment", "vu avec la RH")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/approvals/1?done=1");
    let r = c.post("/approvals/5/refuse", &[("csrf", &csrf), ("motive", "  toujours en poste  ")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let one = fx.show(1);
    assert_eq!(one["state"], "approved");
    assert_eq!(one["decided_by"], DELEGATE);
    assert_eq!(one["comment"], "vu avec la RH");
    let five = fx.show(5);
    assert_eq!(five["state"], "refused");
    assert_eq!(five["motive"], "toujours en poste");
    assert_eq!(five["history"][1]["by"], DELEGATE);
    // The page now shows the decision and no forms; deciding again is a clear error.
    let page = c.get("/approvals/5?done=1").await;
    assert!(page.body.contains("Décision enregistrée."));
    assert!(!page.body.contains("refuse-form"));
    let again = c.post("/approvals/5/approve", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("request is refused, it cannot become approved"), "{}", again.body);
    assert_eq!(fx.show(5)["state"], "refused");
}

async fn bulk_decisions_are_all_or_nothing(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let csrf = c.csrf().await;
    let r = c.bulk(&csrf, &[("action", "approve"), ("ids", "2"), ("ids", "3"), ("comment", "ok")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.row_ids(), [2, 3]);
    assert_eq!(fx.ids_in("approved"), [2, 3]);
    assert_eq!(fx.show(3)["comment"], "ok");
    // 3 is no longer pending: nothing of this one holds, 4 stays pending.
    let r = c.bulk(&csrf, &[("action", "refuse"), ("motive", "non"), ("ids", "4"), ("ids", "3")]).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("request is approved, it cannot become refused"), "{}", r.body);
    assert!(r.body.contains("Rien n&#39;a été modifié") || r.body.contains("Rien n'a été modifié"), "{}", r.body);
    assert_eq!(fx.show(4)["state"], "pending");
    // Nothing selected.
    let r = c.bulk(&csrf, &[("action", "approve")]).await;
    assert_eq!(r.status, 422);
    let r = c.bulk(&csrf, &[("action", "approve"), ("ids", "x")]).await;
    assert_eq!(r.status, 400);
}

async fn bulk_all_matching_the_filter(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let csrf = c.csrf().await;
    // Every pending attach of ACME France (1, 4, 7); not ACME Services' 8 (not theirs).
    let r = c.bulk(&csrf, &[("action", "approve"), ("all_matching", "1"), ("kind", "attach"), ("ids", "2")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.row_ids(), [1, 4, 7], "the filter wins over checked boxes");
    assert_eq!(fx.ids_in("approved"), [1, 4, 7]);
    // All matching, narrowed by a service and a search.
    let r = c
        .post(
            "/approvals/bulk",
            &[
                ("csrf", &csrf),
                ("action", "refuse"),
                ("motive", "à revoir"),
                ("all_matching", "1"),
                ("service", "COMPTA"),
                ("q", "durand"),
            ],
        )
        .await;
    assert_eq!(r.row_ids(), [5]);
    assert_eq!(fx.ids_in("refused"), [5]);
    // Nothing matches any more: nothing selected.
    let r = c.bulk(&csrf, &[("action", "approve"), ("all_matching", "1"), ("kind", "attach")]).await;
    assert_eq!(r.status, 422);
}

async fn queue_filters_search_sort_and_pages(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    for (query, expect) in [
        ("", vec![1, 2, 3, 4, 5, 6, 7]),
        ("?kind=attach", vec![1, 4, 7]),
        ("?service=ACHATS", vec![2, 3, 4]),
        ("?q=MARTIN", vec![3]),
        ("?q=julie.lef", vec![4]),
        ("?q=%25", vec![]),
        ("?sort=email", vec![1, 2, 3, 4, 7, 5, 6]),
        ("?sort=id&desc=1", vec![7, 6, 5, 4, 3, 2, 1]),
        ("?state=approved", vec![]),
        ("?structure=12345678200010&kind=detach", vec![2, 5]),
    ] {
        let r = c.get(&format!("/approvals{query}")).await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.row_ids(), expect, "{query}");
    }
    let csrf = c.csrf().await;
    c.post("/approvals/1/approve", &[("csrf", &csrf)]).await;
    assert_eq!(c.get("/approvals?state=approved").await.row_ids(), [1]);
    assert_eq!(c.get("/approvals?state=").await.row_ids().len(), 7, "blank state: every state");
    assert_eq!(c.get("/approvals").await.row_ids().len(), 6, "the pending queue by default");

    // 120 more pending requests: pages of 50 in SQL, no overlap, in order.
    let template = fx.store.get_request(2).await.unwrap().unwrap();
    let more: Vec<_> = (0..120)
        .map(|i| {
            let mut r = template.clone();
            r.key.email = chorus_sync::domain::Email::parse(&format!("p{i:03}@acme.fr")).unwrap();
            r
        })
        .collect();
    let mut tx = fx.store.begin().await.unwrap();
    tx.insert_requests(&more).await.unwrap();
    tx.commit().await.unwrap();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = c.get(&format!("/approvals?sort=id&page={page}")).await;
        assert!(r.body.contains("126 résultat(s)"), "{}", r.body);
        seen.extend(r.row_ids());
        assert_eq!(r.body.contains("rel=\"next\""), page < 3);
    }
    assert_eq!(seen.len(), 126);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

async fn run_reports_download_with_access_control(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let runs = c.get("/runs").await;
    assert_eq!(runs.status, 200);
    assert_eq!(runs.row_ids(), [1], "run 2 covers ACME Services only: not gp@acme.fr's");
    assert!(runs.body.contains("terminée"));
    assert!(runs.body.contains("/runs/1/reports/changes.csv"));
    let csv = c.get("/runs/1/reports/changes.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-disposition"), "attachment; filename=\"run-1-changes.csv\"");
    assert!(csv.body.starts_with("\u{feff}run_id;kind;structure;structure_name;service;user_email"), "{}", csv.body);
    assert_eq!(csv.bytes, std::fs::read(fx.env.path("reports/1/changes.csv")).unwrap());
    let xlsx = c.get("/runs/1/reports/report.xlsx").await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.bytes.starts_with(b"PK"));
    assert_eq!(c.get("/runs/2/reports/changes.csv").await.status, 403);
    assert_eq!(c.get("/runs/99/reports/changes.csv").await.status, 404);
    // Only the four report names: nothing else from the folder or above it.
    std::fs::write(fx.env.path("reports/1/secret.txt"), "no").unwrap();
    for path in [
        "/runs/1/reports/secret.txt",
        "/runs/1/reports/..%2F..%2Fchorus-sync.toml",
        "/runs/1/reports/%2E%2E",
        "/runs/1/reports/..",
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("no") || r.body.contains("Introuvable"), "{path}");
    }
    let mut s = fx.signed_in(GP_SERVICES).await;
    assert_eq!(s.get("/runs/2/reports/summary.csv").await.status, 200);
    assert_eq!(s.get("/runs/1/reports/summary.csv").await.status, 403);
}

async fn the_runs_list_shows_a_manager_the_runs_of_their_structures(backend: Backend) {
    let fx = Fixture::new(backend).await;
    // Run 3 reads both sources: ACME France and ACME Services.
    fx.env.run(&["run"]).expect(0);
    let mut gp = fx.signed_in(GP).await;
    let runs = gp.get("/runs").await;
    assert_eq!(runs.row_ids(), [3, 1], "not run 2, ACME Services' only");
    assert!(runs.body.contains("/runs/1/reports/changes.csv"));
    assert!(!runs.body.contains("/runs/3/reports/"), "run 3 covers another structure: no download");
    assert!(runs.body.contains("rapports réservés à qui décide pour toutes"), "{}", runs.body);
    let mut services = fx.signed_in(GP_SERVICES).await;
    let runs = services.get("/runs").await;
    assert_eq!(runs.row_ids(), [3, 2]);
    assert!(runs.body.contains("/runs/2/reports/changes.csv") && !runs.body.contains("/runs/3/reports/"));
}

async fn users_of_a_structure_and_their_export(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP_SERVICES).await;
    let page = c.get("/users").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("francois.roche@acme-services.fr"), "{}", page.body);
    assert!(!page.body.contains("@acme.fr<"), "ACME France people are not theirs");
    let search = c.get("/users?q=roche").await;
    assert!(search.body.contains("francois.roche@acme-services.fr"));
    assert!(!search.body.contains("jerome.nicolas"));
    let by_service = c.get("/users?service=SUPPORT").await;
    assert!(by_service.body.contains("francois.roche@acme-services.fr"));
    assert!(!by_service.body.contains("jerome.nicolas"), "{}", by_service.body);
    assert!(c.get("/users?structure=12345678200010").await.body.contains("0 résultat(s)"));
    // Pages of 100 in SQL: the second page of a short list is empty, the count stays.
    let all = c.get("/users").await;
    let second = c.get("/users?page=2").await;
    let count = |body: &str| body.split("<tr>").count() - 2;
    assert!(count(&all.body) > 0);
    assert_eq!(count(&second.body), 0);
    let total = |body: &str| body[..body.find(" résultat(s)").unwrap()].rsplit('>').next().unwrap().to_string();
    assert_eq!(total(&all.body), total(&second.body));
    assert_eq!(total(&all.body), count(&all.body).to_string());

    let csv = c.get("/users/export.csv?q=roche").await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "structure;structure_name;service;user_email;last_name;first_name;rights");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].starts_with("98765432400001;ACME Services;SUPPORT;francois.roche@acme-services.fr;"), "{lines:?}");
    let xlsx = c.get("/users/export.xlsx").await;
    assert_eq!(xlsx.status, 200);
    let path = fx.env.path("users.xlsx");
    std::fs::write(&path, &xlsx.bytes).unwrap();
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto(&path).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let all = c.get("/users/export.csv").await.body;
    assert_eq!(sheet.height(), all.trim_start_matches('\u{feff}').lines().count());
    assert_eq!(sheet.get((0, 3)).unwrap().to_string(), "user_email");
}

async fn french_by_default_english_on_request(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let fr = c.get("/approvals").await;
    assert!(
        fr.body.contains("<html lang=\"fr\">") && fr.body.contains("Approuver") && fr.body.contains("rattachement")
    );
    let en = c.get("/approvals?lang=en").await;
    assert!(
        en.body.contains("<html lang=\"en\">") && en.body.contains("Approve") && en.body.contains(">attach<"),
        "{}",
        en.body
    );
    assert_eq!(c.cookie("chorus_lang"), Some("en"));
    // The language link keeps the page and its filters.
    let filtered = c.get("/approvals?kind=attach&q=a%26b").await;
    assert!(filtered.body.contains("href=\"/approvals?kind=attach&amp;q=a%26b&amp;lang=fr\""), "{}", filtered.body);
    assert!(c.get("/runs").await.body.contains("Runs"), "remembered");
    let mut browser = fx.signed_in(DELEGATE).await;
    browser.headers.push(("accept-language".into(), "en-GB,en;q=0.9".into()));
    assert!(browser.get("/approvals").await.body.contains("<html lang=\"en\">"));
    let mut anon = fx.client();
    anon.headers.push(("accept-language".into(), "en".into()));
    assert!(anon.get("/sign-in").await.body.contains("Sign in"));
    // The sign-in page's language link keeps the page to return to.
    let page = anon.get("/sign-in?next=%2Fapprovals%2F3").await;
    assert!(page.body.contains("href=\"/sign-in?next=%2Fapprovals%2F3&amp;lang=fr\""), "{}", page.body);
    let fr = anon.get("/sign-in?next=%2Fapprovals%2F3&lang=fr").await;
    assert!(fr.body.contains("name=\"next\" value=\"/approvals/3\""), "{}", fr.body);
}

async fn two_instances_share_the_sign_in_lockout(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let (mut a, mut b) = (fx.client(), fx.second_instance());
    for _ in 0..3 {
        assert_eq!(a.sign_in(GP, "wrong").await.status, 401);
    }
    for _ in 0..2 {
        assert_eq!(b.sign_in(GP, "wrong").await.status, 401);
    }
    // Five failures in all, on two instances: locked on both, even with
    // the right password.
    assert_eq!(a.sign_in(GP, PASSWORD).await.status, 429);
    assert_eq!(b.sign_in(GP, PASSWORD).await.status, 429);
    // Per address: another is not locked, and its success clears only its own count.
    assert_eq!(b.sign_in(DELEGATE, PASSWORD).await.status, 303);
    assert_eq!(a.sign_in(GP, PASSWORD).await.status, 429);
}

async fn sign_out_ends_the_session(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let mut c = fx.signed_in(GP).await;
    let stolen = c.cookie("chorus_session").unwrap().to_string();
    let csrf = c.csrf().await;
    let r = c.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/sign-in");
    assert!(c.cookie("chorus_session").is_none());
    // The old cookie value is dead in the store too.
    let mut replay = fx.client();
    replay.set_cookie("chorus_session", &stolen);
    assert_eq!(replay.get("/approvals").await.status, 303);
    // A new password ends the account's other sessions.
    let mut laptop = fx.signed_in(GP).await;
    let page = laptop.get("/approvals").await;
    assert_eq!(page.status, 200);
    for (header, value) in
        [("x-content-type-options", "nosniff"), ("cache-control", "no-store"), ("referrer-policy", "same-origin")]
    {
        assert_eq!(page.header(header), value);
    }
    assert!(page.header("content-security-policy").contains("frame-ancestors 'none'"));
    set_password(&fx.env, GP, "un tout nouveau mot de passe").expect(0);
    assert_eq!(laptop.get("/approvals").await.status, 303);
}

#[test]
fn set_password_accepts_only_managers_and_long_passwords() {
    let env = super::fixture::env(Backend::Sqlite);
    let r = set_password(&env, "someone@acme.fr", PASSWORD).expect(2);
    assert!(r.stderr.contains("someone@acme.fr is not the main manager or a delegate"), "{}", r.stderr);
    let r = set_password(&env, GP, "short").expect(2);
    assert!(r.stderr.contains("at least 12 characters"), "{}", r.stderr);
    let r = set_password(&env, "not an address", PASSWORD).expect(2);
    assert!(r.stderr.contains("not an address"), "{}", r.stderr);
    let r = set_password(&env, "GP@ACME.FR", "un autre mot de passe").expect(0);
    assert_eq!(r.stdout.trim(), "password set for gp@acme.fr");
    let db = std::fs::read(env.path("chorus-sync.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains("un autre mot de passe") && text.contains("$argon2id$"), "only the hash is stored");
}

async fn the_queue_pages_through_tens_of_thousands(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let template = fx.store.get_request(2).await.unwrap().unwrap();
    let more: Vec<_> = (0..30_000)
        .map(|i| {
            let mut r = template.clone();
            r.key.email = chorus_sync::domain::Email::parse(&format!("p{i:05}@acme.fr")).unwrap();
            r
        })
        .collect();
    let mut tx = fx.store.begin().await.unwrap();
    tx.insert_requests(&more).await.unwrap();
    tx.commit().await.unwrap();
    let mut c = fx.signed_in(GP).await;
    // 30,007 pending of ACME France: 601 pages, the last with 7 rows.
    let last = c.get("/approvals?sort=id&page=601").await;
    assert!(last.body.contains("30007 résultat(s) — Page 601 / 601"), "{}", last.body);
    assert_eq!(last.row_ids(), (30_004..=30_010).collect::<Vec<_>>());
    assert!(last.body.contains("rel=\"prev\"") && !last.body.contains("rel=\"next\""));
    let found = c.get("/approvals?q=p29999%40").await;
    assert_eq!(found.row_ids(), [30_010]);
    assert_eq!(c.get("/approvals?page=602").await.row_ids(), Vec::<i64>::new(), "past the end: empty, not an error");
    // Regression: a huge page number overflowed the offset.
    assert_eq!(c.get("/approvals?page=18446744073709551615").await.status, 200);
    assert_eq!(c.get("/users?page=18446744073709551615").await.status, 200);
    let head = c.get("/approvals").await;
    assert!(head.body.contains("<span class=\"badge\" id=\"pending-count\">30007</span>"));
}

#[test]
fn serve_refuses_an_address_in_use() {
    let env = super::fixture::env(Backend::Sqlite);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = env.run(&["serve", "--listen", &addr]).expect(1);
    assert!(r.stderr.contains(&format!("cannot listen on {addr}")), "{}", r.stderr);
}

/// A plan held by a guard: its items are not in the default queue, the
/// "held" filter shows them, and the manager decides them one by one or all
/// matching that filter (never the pending ones it does not show).
async fn held_requests_are_decided_item_by_item(backend: Backend) {
    let fx = Fixture::on(held_env(backend)).await;
    let held = fx.ids_in("held");
    assert_eq!(held.len(), 10, "{held:?}");
    let mut c = fx.signed_in(GP).await;
    let queue = c.get("/approvals").await;
    assert_eq!(queue.row_ids(), Vec::<i64>::new(), "{}", queue.body);
    let page = c.get("/approvals?state=held").await;
    let shown = page.row_ids();
    assert!(!shown.is_empty() && shown.iter().all(|id| held.contains(id)), "{shown:?}");
    assert!(page.body.contains("retenue par un garde-fou"), "{}", page.body);

    let csrf = page.csrf();
    let first = shown[0];
    let r = c.post(&format!("/approvals/{first}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(fx.show(first)["state"], "approved");
    assert_eq!(fx.show(first)["decided_by"], GP);

    let r = c
        .post(
            "/approvals/bulk",
            &[
                ("csrf", &csrf),
                ("action", "refuse"),
                ("motive", "plan à revoir"),
                ("all_matching", "1"),
                ("state", "held"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.row_ids(), shown[1..].to_vec());
    for id in &shown[1..] {
        assert_eq!(fx.show(*id)["state"], "refused");
    }
    // Another structure's held items stay held; a decided-state filter decides nothing.
    let others: Vec<i64> = held.iter().copied().filter(|id| !shown.contains(id)).collect();
    assert!(!others.is_empty());
    assert_eq!(fx.ids_in("held"), others);
    let r = c.bulk(&csrf, &[("action", "approve"), ("all_matching", "1"), ("state", "refused")]).await;
    assert_eq!(r.status, 422, "{}", r.body);
}
