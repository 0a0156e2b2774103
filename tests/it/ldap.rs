//! Directory sources against a real slapd: an Active Directory look-alike
//! with 2,600 people and AD's paging limits, and a plain OpenLDAP tree with
//! groups, read over ldaps and StartTLS.

use std::path::Path;

use crate::{
    slapd::{BIND_DN, BIND_PW, Flavor, PEOPLE, Person, Slapd, cutting_proxy, make_ca},
    support::{Backend, Env, Run, csv_rows},
};

const SIRET: &str = "12345678200010";
const COMPTA: &str = "cn=compta,ou=groups,dc=example,dc=org";
/// accountExpires (FILETIME) of 2026-11-01T00:00:00Z and of 2030-01-01.
const EXPIRED_2026_11_01: i64 = 134_379_648_000_000_000;
const LATER_2030: i64 = 135_379_296_000_000_000;

fn config(store: &str, url: &str, extra: &str, groups: &str) -> String {
    format!(
        r#"timezone = "Europe/Paris"
[store]
url = "{store}"
[reports]
dir = "reports"
[[structures]]
identifier = "{SIRET}"
name = "ACME France"
main_manager = "gp@acme.fr"
services = ["COMPTA", "ACHATS", "RH"]
[[sources]]
name = "annuaire"
kind = "ldap"
url = "{url}"
bind_dn = "{BIND_DN}"
password_env = "LDAP_PW"
base_dn = "{PEOPLE}"
filter = "(&(objectClass=inetOrgPerson)(mail=*))"
default_structure = "{SIRET}"
{extra}
[sources.attributes]
email = "mail"
last_name = "sn"
first_name = "givenName"
employee_id = "employeeNumber"
service = "departmentNumber"
end_date = "accountExpires"
{groups}
[guards]
max_detach = false
max_detach_percent = false
grace_runs = 0
"#
    )
}

fn env(backend: Backend, url: &str, extra: &str, groups: &str) -> Env {
    let mut env = Env::with_config(backend, |store| config(store, url, extra, groups));
    env.vars.push(("LDAP_PW".into(), BIND_PW.into()));
    env
}

/// `kind email service after reason` per row of a changes.csv.
fn changes(env: &Env, dir: &str) -> Vec<String> {
    let rows = csv_rows(&env.path(&format!("{dir}/changes.csv")));
    rows[1..].iter().map(|r| format!("{} {} {} {} {}", r[1], r[5], r[4], r[9], r[10])).collect()
}

fn count(changes: &[String], pred: impl Fn(&str) -> bool) -> usize {
    changes.iter().filter(|c| pred(c)).count()
}

fn approvals(env: &Env) -> usize {
    env.run(&["approvals", "list", "--format", "json"]).expect(0).json().as_array().map_or(0, Vec::len)
}

/// Output and every file written (reports, store): the password is in none.
fn assert_no_password(env: &Env, run: &Run) {
    assert!(!run.stdout.contains(BIND_PW) && !run.stderr.contains(BIND_PW), "{}\n{}", run.stdout, run.stderr);
    fn walk(dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let found = bytes.windows(BIND_PW.len()).any(|w| w == BIND_PW.as_bytes());
                assert!(!found, "the password is written in {}", path.display());
            }
        }
    }
    walk(env.dir.path());
}

#[track_caller]
fn rejected(run: Run, why: &str) -> Run {
    let run = run.expect(3);
    let all = format!("{}\n{}", run.stdout, run.stderr);
    assert!(all.contains(why), "expected {why:?} in\n{all}");
    run
}

fn ad_people() -> Vec<Person> {
    (0..2600)
        .map(|i| {
            let mut p = Person::new(&format!("p{i:04}"), &format!("p{i:04}@acme.fr"));
            p.employee = Some(format!("E{i:04}"));
            p.uac = Some(if i % 100 == 1 { 514 } else { 512 });
            p.account_expires = Some(match i % 100 {
                2 => EXPIRED_2026_11_01,
                3 => LATER_2030,
                4 => i64::MAX,
                _ => 0,
            });
            if i % 10 == 5 {
                // As AD writes it: other case and spaces than the configured DN.
                p.member_of.push("CN=Compta, OU=Groups, DC=example, DC=org".into());
            }
            if i % 10 == 7 {
                p.department = Some("ACHATS".into());
            }
            p
        })
        .collect()
}

fn ad_story(backend: Backend) {
    let people = ad_people();
    // The group entry exists; its members are known from memberOf (AD would
    // list big groups' members in ranges).
    let group = format!("dn: {COMPTA}\nobjectClass: groupOfNames\ncn: compta\nmember: uid=p0005,{PEOPLE}\n");
    let server = Slapd::start(Flavor::ActiveDirectory, &people, &group);
    let groups =
        format!("[[sources.groups]]\ndn = \"{COMPTA}\"\nservice = \"COMPTA\"\nrights = \"factures:modification\"\n");
    let mut env = env(backend, &server.url(), "page_size = 500", &groups);
    env.run(&["check-config"]).expect(0);

    // The leavers are attached today.
    let mut current = "Adresse électronique;Nom;Prénom;Identifiant structure;Code service;Profil\n".to_string();
    for p in people.iter().filter(|p| matches!(p.uid[1..].parse::<u32>().unwrap() % 100, 1 | 2)) {
        current.push_str(&format!("{};{};{};{SIRET};;\n", p.mail, p.sn, p.given));
    }
    std::fs::write(env.path("current.csv"), current).unwrap();
    env.run(&["import-current", "current.csv"]).expect(0);

    // More than 2,500 entries, read completely through 500-entry pages
    // although the server refuses unpaged searches over 1000.
    env.run(&["plan", "--out", "plan1"]).expect(0);
    let c = changes(&env, "plan1");
    assert_eq!(count(&c, |c| c.starts_with("attach ")), 2548, "{:?}", &c[..5]);
    assert_eq!(count(&c, |c| c.starts_with("detach ") && c.ends_with("left: account disabled")), 26);
    assert_eq!(count(&c, |c| c.starts_with("detach ") && c.ends_with("left: account expired 2026-11-01")), 26);
    assert_eq!(c.len(), 2600);
    // Group rules → service and rights; the service attribute otherwise.
    assert_eq!(count(&c, |c| c.starts_with("attach ") && c.contains(" COMPTA COMPTA [factures:modification] ")), 260);
    assert!(
        c.contains(&"attach p0005@acme.fr COMPTA COMPTA [factures:modification] new in source".to_string()),
        "{c:?}"
    );
    assert_eq!(count(&c, |c| c.starts_with("attach ") && c.contains(" ACHATS ")), 260);
    // Not expired yet (2030, or "never") stays.
    assert!(c.iter().any(|l| l.starts_with("attach p0003@acme.fr ")));
    assert!(c.iter().any(|l| l.starts_with("attach p0004@acme.fr ")));

    let run = env.run(&["run"]).expect(0);
    assert_no_password(&env, &run);
    assert_eq!(approvals(&env), 2600);

    // Every incomplete read rejects the source: exit 3, nothing changed.
    let mut try_with = |vars: &[(&str, &str)], why: &str| {
        let saved = env.vars.clone();
        env.vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let run = rejected(env.run(&["run"]), why);
        assert!(run.stdout.contains("nothing changed") || run.stderr.contains("nothing changed"), "{}", run.stdout);
        assert_no_password(&env, &run);
        env.vars = saved;
        assert_eq!(approvals(&env), 2600, "a rejected read changed the requests");
    };
    // Pages larger than the server allows: it answers with an admin limit.
    try_with(&[("CHORUS_SYNC__SOURCES__0__PAGE_SIZE", "2000")], "administrative limit");
    // A filter that returns nobody is not "everyone left".
    try_with(&[("CHORUS_SYNC__SOURCES__0__FILTER", "(mail=nobody@*)")], "returned no entries");
    // Wrong password: refused, and never shown.
    try_with(&[("LDAP_PW", "not-the-password")], "wrong bind DN or password");
    // The server goes away in the middle of the paged read.
    let cut = cutting_proxy(server.port, 200_000);
    try_with(&[("CHORUS_SYNC__SOURCES__0__URL", &format!("ldap://127.0.0.1:{cut}"))], "the read stopped after page");

    let runs = env.run(&["runs", "list", "--format", "json"]).expect(0).json();
    let outcomes: Vec<&str> = runs.as_array().unwrap().iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "rejected").count(), 4, "{runs}");
}

#[test]
fn active_directory_sqlite() {
    ad_story(Backend::Sqlite);
}

#[test]
fn active_directory_postgres() {
    ad_story(Backend::Postgres);
}

#[test]
fn openldap_groups_over_tls() {
    let people: Vec<Person> = (1..=20).map(|i| Person::new(&format!("u{i:02}"), &format!("u{i:02}@acme.fr"))).collect();
    let dn = |i: u32| format!("uid=u{i:02},{PEOPLE}");
    // groupOfNames feeds the memberof overlay; groupOfUniqueNames is only
    // known by its members, read from the group entry.
    let groups_ldif = format!(
        "dn: {COMPTA}\nobjectClass: groupOfNames\ncn: compta\nmember: {}\nmember: {}\n\n\
         dn: cn=achats,ou=groups,dc=example,dc=org\nobjectClass: groupOfUniqueNames\ncn: achats\n\
         uniqueMember: {}\nuniqueMember: {}\n",
        dn(1),
        dn(2),
        dn(3),
        dn(4)
    );
    let server = Slapd::start(Flavor::OpenLdap, &people, &groups_ldif);
    let groups = format!(
        "[[sources.groups]]\ndn = \"{COMPTA}\"\nservice = \"COMPTA\"\nrights = \"factures:modification\"\n\
         [[sources.groups]]\ndn = \"cn=achats,ou=groups,dc=example,dc=org\"\nservice = \"ACHATS\"\n\
         rights = \"factures:consultation\"\n"
    );
    let ca = server.ca().display().to_string();
    let wrong_ca = make_ca(server.dir.path(), "other-ca").display().to_string();
    let expect = |env: &Env, dir: &str| {
        let c = changes(env, dir);
        assert_eq!(c.len(), 20, "{c:?}");
        for (who, what) in [
            ("u01", "COMPTA COMPTA [factures:modification]"),
            ("u02", "COMPTA COMPTA [factures:modification]"),
            ("u03", "ACHATS ACHATS [factures:consultation]"),
            ("u04", "ACHATS ACHATS [factures:consultation]"),
        ] {
            assert!(c.contains(&format!("attach {who}@acme.fr {what} new in source")), "{who}: {c:?}");
        }
        assert!(c.contains(&"attach u05@acme.fr  (structure) new in source".to_string()), "{c:?}");
    };

    // ldaps with the test CA.
    let env1 = env(Backend::Sqlite, &server.ldaps_url(), &format!("ca_file = {ca:?}"), &groups);
    env1.run(&["plan", "--out", "p"]).expect(0);
    expect(&env1, "p");
    // StartTLS on ldap://.
    let env2 = env(Backend::Sqlite, &server.url(), &format!("start_tls = true\nca_file = {ca:?}"), &groups);
    env2.run(&["plan", "--out", "p"]).expect(0);
    expect(&env2, "p");
    // A certificate from another CA is refused, on both; never a clear-text retry.
    for (url, extra) in [
        (server.ldaps_url(), format!("ca_file = {wrong_ca:?}")),
        (server.url(), format!("start_tls = true\nca_file = {wrong_ca:?}")),
    ] {
        let env3 = env(Backend::Sqlite, &url, &extra, &groups);
        let run = rejected(env3.run(&["run"]), "certificate was refused");
        assert_no_password(&env3, &run);
        assert_eq!(approvals(&env3), 0);
    }
}

/// The shipped `samples/annuaire.ldif` with the README's directory source: the
/// sample directory and the documented keys work together.
#[test]
fn the_sample_directory_with_the_readme_config() {
    let ldif = std::fs::read_to_string(crate::support::repo().join("samples/annuaire.ldif")).unwrap();
    let server = Slapd::start_with_data(Flavor::OpenLdap, &ldif, "");
    let readme = std::fs::read_to_string(crate::support::repo().join("README.md")).unwrap();
    let start = readme.find("[[sources]]\nname = \"annuaire\"").expect("the README shows a directory source");
    let source = &readme[start..start + readme[start..].find("```").unwrap()];
    let source = source
        .replace("ldaps://ldap.example.org", &server.url())
        .replace("ca_file = \"/etc/ssl/corp-ca.pem\"", "")
        .replace("CHORUS_SYNC_LDAP_PASSWORD", "LDAP_PW");
    let mut env = Env::with_config(Backend::Sqlite, |store| {
        format!(
            "[store]\nurl = \"{store}\"\n[[structures]]\nidentifier = \"{SIRET}\"\nname = \"ACME France\"\n\
             main_manager = \"gp@acme.fr\"\nservices = [\"COMPTA\", \"ACHATS\", \"RH\"]\n{source}"
        )
    });
    env.vars.push(("LDAP_PW".into(), "change-me".into()));
    let run = env.run(&["plan", "--out", "out"]).expect(0);
    assert!(run.stdout.contains("source annuaire: ldap://127.0.0.1"), "{}", run.stdout);
    let changes: Vec<String> =
        csv_rows(&env.path("out/changes.csv"))[1..].iter().map(|r| format!("{} {} {}", r[1], r[5], r[9])).collect();
    for expect in [
        "attach luc.petit@acme.fr RH [factures:consultation]",
        "attach marie.dupont@acme.fr COMPTA [factures:modification]",
        "attach camille.bonnet@acme.fr (structure) [factures:consultation]",
    ] {
        assert!(changes.contains(&expect.to_string()), "{expect:?} not in {changes:#?}");
    }
    // Paul Durand's employeeType is "Sorti": a leaver, never attached.
    assert!(!changes.iter().any(|c| c.contains("paul.durand")), "{changes:#?}");
}
