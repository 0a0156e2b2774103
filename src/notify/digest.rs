//! The mails themselves, composed as pure functions: requests and the
//! catalog in, one `Mail` per person out. No clock, no I/O.
//!
//! A person is the main manager or a delegate of a structure; each gets one
//! mail covering every structure they may decide for.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::{
    core::{
        approval::{ApprovalRequest, RequestState},
        catalog::{Catalog, StructureInfo},
    },
    domain::{Email, StructureId},
};

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

/// Everyone who may decide for a structure: the main manager first, then the delegates.
fn deciders(s: &StructureInfo) -> impl Iterator<Item = &Email> {
    std::iter::once(&s.main_manager).chain(s.delegates.iter())
}

/// Person → the structures they may decide for.
fn structures_by_person(catalog: &Catalog) -> BTreeMap<&Email, BTreeSet<&StructureId>> {
    let mut out: BTreeMap<&Email, BTreeSet<&StructureId>> = BTreeMap::new();
    for s in catalog.iter() {
        for who in deciders(s) {
            out.entry(who).or_default().insert(&s.id);
        }
    }
    out
}

/// "1 nouvelle demande", "3 nouvelles demandes".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One request as a few lines: id, structure, service, then the description.
fn request_lines(r: &ApprovalRequest, out: &mut String) {
    let service = r.service().map(|s| format!(", service {s}")).unwrap_or_default();
    out.push_str(&format!("  #{}  {} ({}){service}\n", r.id, r.structure_name, r.key.structure));
    out.push_str(&format!("        {}\n", r.description));
}

/// The pending count per structure of a person, in structure order.
fn pending_lines(catalog: &Catalog, theirs: &BTreeSet<&StructureId>, pending: &[&ApprovalRequest], out: &mut String) {
    for id in theirs {
        let n = pending.iter().filter(|r| r.key.structure == **id).count();
        if n > 0 {
            let name = catalog.get(id).map_or("", |s| s.name.as_str());
            out.push_str(&format!("  {name} ({id}) : {}\n", count(n, "demande", "demandes")));
        }
    }
}

/// How to act: the commands, and the console when there is one.
fn how_to_act(who: &Email, console_url: Option<&str>, out: &mut String) {
    out.push_str("Pour décider, avec la ligne de commande :\n");
    out.push_str(&format!("  chorus-sync approvals list --manager {who} --state pending\n"));
    out.push_str(&format!("  chorus-sync approvals approve ID... --as {who} [--comment \"…\"]\n"));
    out.push_str(&format!("  chorus-sync approvals refuse ID... --as {who} --motive \"…\"\n"));
    out.push_str(&format!(
        "  chorus-sync approvals approve --all-pending --as {who}   (toutes les demandes en attente)\n"
    ));
    if let Some(url) = console_url {
        out.push_str(&format!("ou dans la console : {url}\n"));
    }
    out.push_str("Un refus demande un motif ; une demande non traitée peut expirer.\n\n-- \nchorus-sync\n");
}

/// What a run's digests are made of.
pub struct DigestInput<'a> {
    pub catalog: &'a Catalog,
    /// The requests the run raised.
    pub new: &'a [ApprovalRequest],
    /// Every pending request (the new ones included); other states are ignored.
    pub pending: &'a [ApprovalRequest],
    pub console_url: Option<&'a str>,
}

/// One digest per person who may decide for a structure with new requests,
/// listing their new requests and counting all they have pending. Nothing
/// new, no mail.
pub fn digests(input: &DigestInput) -> Vec<Mail> {
    let pending: Vec<&ApprovalRequest> = input.pending.iter().filter(|r| r.state == RequestState::Pending).collect();
    let mut mails = Vec::new();
    for (who, theirs) in structures_by_person(input.catalog) {
        let mut new: Vec<&ApprovalRequest> = input.new.iter().filter(|r| theirs.contains(&r.key.structure)).collect();
        if new.is_empty() {
            continue;
        }
        new.sort_by_key(|r| r.id);
        let mine: Vec<&ApprovalRequest> =
            pending.iter().copied().filter(|r| theirs.contains(&r.key.structure)).collect();
        // The new requests are pending too, even if the list was read before them.
        let waiting = mine.iter().map(|r| r.id).chain(new.iter().map(|r| r.id)).collect::<BTreeSet<_>>().len();
        let subject = format!(
            "chorus-sync : {}, {} en attente",
            count(new.len(), "nouvelle demande", "nouvelles demandes"),
            waiting
        );
        let mut body = String::from("Bonjour,\n\n");
        body.push_str(&format!(
            "chorus-sync a créé {} d'approbation pour les structures dont vous êtes gestionnaire principal \
             ou délégué. Vous avez {} en attente au total.\n\n",
            count(new.len(), "nouvelle demande", "nouvelles demandes"),
            count(waiting, "demande", "demandes"),
        ));
        body.push_str("Nouvelles demandes :\n");
        for r in &new {
            request_lines(r, &mut body);
        }
        body.push_str("\nEn attente par structure :\n");
        let mut all: Vec<&ApprovalRequest> = mine;
        all.extend(new.iter().copied().filter(|n| !all.iter().any(|m| m.id == n.id)).collect::<Vec<_>>());
        pending_lines(input.catalog, &theirs, &all, &mut body);
        body.push('\n');
        how_to_act(who, input.console_url, &mut body);
        mails.push(Mail { to: who.clone(), subject, body });
    }
    mails
}

/// What reminders are chosen from.
pub struct ReminderInput<'a> {
    pub catalog: &'a Catalog,
    /// Pending requests (other states are ignored).
    pub pending: &'a [ApprovalRequest],
    /// A request pending longer than this is overdue.
    pub remind_after_days: u32,
    pub now: DateTime<Utc>,
    /// People already reminded today (at most one reminder a day).
    pub reminded_today: &'a BTreeSet<Email>,
    pub console_url: Option<&'a str>,
}

/// One reminder per person with requests pending more than
/// `remind_after_days` in their structures, unless reminded today already.
pub fn reminders(input: &ReminderInput) -> Vec<Mail> {
    let cutoff = input.now - Duration::days(i64::from(input.remind_after_days));
    let pending: Vec<&ApprovalRequest> = input.pending.iter().filter(|r| r.state == RequestState::Pending).collect();
    let mut mails = Vec::new();
    for (who, theirs) in structures_by_person(input.catalog) {
        if input.reminded_today.contains(who) {
            continue;
        }
        let mine: Vec<&ApprovalRequest> =
            pending.iter().copied().filter(|r| theirs.contains(&r.key.structure)).collect();
        let mut overdue: Vec<&ApprovalRequest> = mine.iter().copied().filter(|r| r.created_at < cutoff).collect();
        if overdue.is_empty() {
            continue;
        }
        overdue.sort_by_key(|r| (r.created_at, r.id));
        let days = input.remind_after_days;
        let late = count(overdue.len(), "demande attend", "demandes attendent");
        let subject = format!("chorus-sync : rappel, {late} depuis plus de {} jours", days);
        let mut body = String::from("Bonjour,\n\n");
        body.push_str(&format!(
            "Rappel : {late} votre décision depuis plus de {days} jours. Vous avez {} en attente au total.\n\n",
            count(mine.len(), "demande", "demandes")
        ));
        body.push_str("Demandes en attente depuis le plus longtemps :\n");
        for r in &overdue {
            request_lines(r, &mut body);
            body.push_str(&format!("        créée le {}\n", r.created_at.format("%d/%m/%Y")));
        }
        body.push_str("\nEn attente par structure :\n");
        pending_lines(input.catalog, &theirs, &mine, &mut body);
        body.push('\n');
        how_to_act(who, input.console_url, &mut body);
        mails.push(Mail { to: who.clone(), subject, body });
    }
    mails
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::{catalog::StructureInfo, change::ChangeKind},
        domain::{IdentifierType, PersonName, Placement, ServiceCode},
    };

    const ACME: &str = "12345678200010";
    const SERVICES: &str = "73282932000074";

    fn catalog() -> Catalog {
        let info = |id: &str, name: &str, gp: &str, delegates: &[&str]| StructureInfo {
            id: StructureId::parse(IdentifierType::Siret, id).unwrap(),
            identifier_type: IdentifierType::Siret,
            name: name.into(),
            main_manager: Email::parse(gp).unwrap(),
            delegates: delegates.iter().map(|d| Email::parse(d).unwrap()).collect(),
            services: None,
        };
        Catalog::new([
            info(ACME, "ACME France", "gp@acme.fr", &["adjoint@acme.fr"]),
            info(SERVICES, "ACME Services", "gp@acme-services.fr", &["adjoint@acme.fr"]),
        ])
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A pending attach of `user` to `service` of `structure`, created at `created`.
    fn request(id: i64, structure: &str, user: &str, service: &str, created: &str) -> ApprovalRequest {
        let structure = StructureId::parse(IdentifierType::Siret, structure).unwrap();
        let name = if structure.as_str() == ACME { "ACME France" } else { "ACME Services" };
        let after = Placement { service: Some(ServiceCode::parse(service).unwrap()), rights: Default::default() };
        ApprovalRequest {
            id,
            run_id: 1,
            state: RequestState::Pending,
            kind: ChangeKind::Attach,
            key: crate::core::change::ChangeKey {
                structure,
                email: Email::parse(user).unwrap(),
                before: None,
                after: Some(after),
            },
            name: PersonName::default(),
            reason: "new".into(),
            reason_category: "new".into(),
            description: format!("Rattacher {user} au service {service} de {name}"),
            requester: "chorus-sync, source hr, run 1".into(),
            structure_name: name.into(),
            manager: String::new(),
            origin: None,
            created_at: at(created),
            decided_by: None,
            decided_at: None,
            motive: None,
            comment: None,
        }
    }

    /// What, new requests, pending requests, expected (recipient, subject).
    type DigestCase<'a> = (&'a str, Vec<ApprovalRequest>, Vec<ApprovalRequest>, Vec<(&'a str, &'a str)>);
    /// What, pending requests, delay, reminded today, expected (recipient, subject).
    type ReminderCase<'a> = (&'a str, Vec<ApprovalRequest>, u32, Vec<&'a str>, Vec<(&'a str, &'a str)>);

    fn summary(mails: &[Mail]) -> Vec<(String, String)> {
        mails.iter().map(|m| (m.to.to_string(), m.subject.clone())).collect()
    }

    #[test]
    fn digests_go_to_the_deciders_of_structures_with_new_requests() {
        let old = request(1, ACME, "ancien@acme.fr", "COMPTA", "2026-11-01T08:00:00Z");
        let a = request(5, ACME, "marie@acme.fr", "COMPTA", "2026-11-23T08:00:00Z");
        let b = request(6, ACME, "paul@acme.fr", "ACHATS", "2026-11-23T08:00:00Z");
        let s = request(7, SERVICES, "lea@acme-services.fr", "RH", "2026-11-23T08:00:00Z");
        let mut decided = request(2, SERVICES, "x@acme-services.fr", "RH", "2026-11-01T08:00:00Z");
        decided.state = RequestState::Approved;
        let cases: Vec<DigestCase> = vec![
            ("nothing new, no mail", vec![], vec![old.clone()], vec![]),
            (
                "one structure: its manager and its delegate; the pending list may predate the new ones",
                vec![a.clone(), b.clone()],
                vec![old.clone()],
                vec![
                    ("adjoint@acme.fr", "chorus-sync : 2 nouvelles demandes, 3 en attente"),
                    ("gp@acme.fr", "chorus-sync : 2 nouvelles demandes, 3 en attente"),
                ],
            ),
            (
                "a delegate of both gets one mail for both; decided requests do not count",
                vec![a.clone(), s.clone()],
                vec![old.clone(), a.clone(), s.clone(), decided.clone()],
                vec![
                    ("adjoint@acme.fr", "chorus-sync : 2 nouvelles demandes, 3 en attente"),
                    ("gp@acme-services.fr", "chorus-sync : 1 nouvelle demande, 1 en attente"),
                    ("gp@acme.fr", "chorus-sync : 1 nouvelle demande, 2 en attente"),
                ],
            ),
        ];
        let catalog = catalog();
        for (what, new, pending, expect) in cases {
            let mails = digests(&DigestInput { catalog: &catalog, new: &new, pending: &pending, console_url: None });
            let expect: Vec<(String, String)> = expect.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            assert_eq!(summary(&mails), expect, "{what}");
        }
    }

    #[test]
    fn a_digest_says_what_how_and_where() {
        let catalog = catalog();
        let new = [request(5, ACME, "marie@acme.fr", "COMPTA", "2026-11-23T08:00:00Z")];
        let pending = [request(1, ACME, "ancien@acme.fr", "COMPTA", "2026-11-01T08:00:00Z")];
        let input =
            DigestInput { catalog: &catalog, new: &new, pending: &pending, console_url: Some("https://cs.acme.fr") };
        let mails = digests(&input);
        let gp = mails.iter().find(|m| m.to.as_str() == "gp@acme.fr").unwrap();
        for expect in [
            "1 nouvelle demande d'approbation",
            "Vous avez 2 demandes en attente au total",
            "#5  ACME France (12345678200010), service COMPTA",
            "Rattacher marie@acme.fr au service COMPTA de ACME France",
            "ACME France (12345678200010) : 2 demandes",
            "chorus-sync approvals list --manager gp@acme.fr --state pending",
            "chorus-sync approvals approve ID... --as gp@acme.fr",
            "chorus-sync approvals refuse ID... --as gp@acme.fr --motive",
            "console : https://cs.acme.fr",
        ] {
            assert!(gp.body.contains(expect), "{expect:?} not in\n{}", gp.body);
        }
        assert!(!gp.body.contains("#1 "), "only new requests are listed");
    }

    #[test]
    fn reminders_after_the_delay_at_most_once_a_day() {
        let now = at("2026-11-23T07:00:00Z");
        let old_acme = request(1, ACME, "a@acme.fr", "COMPTA", "2026-11-15T08:00:00Z"); // 8 days
        let older_acme = request(2, ACME, "b@acme.fr", "COMPTA", "2026-11-10T08:00:00Z"); // 13 days
        let fresh_acme = request(3, ACME, "c@acme.fr", "COMPTA", "2026-11-20T08:00:00Z"); // 3 days
        let old_services = request(4, SERVICES, "d@acme-services.fr", "RH", "2026-11-01T08:00:00Z");
        let mut refused = request(5, SERVICES, "e@acme-services.fr", "RH", "2026-11-01T08:00:00Z");
        refused.state = RequestState::Refused;
        let edge = request(6, ACME, "f@acme.fr", "COMPTA", "2026-11-16T07:00:00Z"); // exactly 7 days: not more
        let cases: Vec<ReminderCase> = vec![
            ("nothing pending", vec![], 7, vec![], vec![]),
            ("only fresh requests", vec![fresh_acme.clone(), edge.clone()], 7, vec![], vec![]),
            (
                "overdue in one structure",
                vec![old_acme.clone(), older_acme.clone(), fresh_acme.clone()],
                7,
                vec![],
                vec![
                    ("adjoint@acme.fr", "chorus-sync : rappel, 2 demandes attendent depuis plus de 7 jours"),
                    ("gp@acme.fr", "chorus-sync : rappel, 2 demandes attendent depuis plus de 7 jours"),
                ],
            ),
            (
                "a longer delay; refused requests never count",
                vec![old_acme.clone(), older_acme.clone(), old_services.clone(), refused.clone()],
                10,
                vec![],
                vec![
                    ("adjoint@acme.fr", "chorus-sync : rappel, 2 demandes attendent depuis plus de 10 jours"),
                    ("gp@acme-services.fr", "chorus-sync : rappel, 1 demande attend depuis plus de 10 jours"),
                    ("gp@acme.fr", "chorus-sync : rappel, 1 demande attend depuis plus de 10 jours"),
                ],
            ),
            (
                "already reminded today",
                vec![old_acme.clone(), old_services.clone()],
                7,
                vec!["gp@acme.fr", "adjoint@acme.fr"],
                vec![("gp@acme-services.fr", "chorus-sync : rappel, 1 demande attend depuis plus de 7 jours")],
            ),
        ];
        let catalog = catalog();
        for (what, pending, days, reminded, expect) in cases {
            let reminded_today: BTreeSet<Email> = reminded.iter().map(|e| Email::parse(e).unwrap()).collect();
            let input = ReminderInput {
                catalog: &catalog,
                pending: &pending,
                remind_after_days: days,
                now,
                reminded_today: &reminded_today,
                console_url: None,
            };
            let expect: Vec<(String, String)> = expect.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            assert_eq!(summary(&reminders(&input)), expect, "{what}");
        }
    }

    #[test]
    fn a_reminder_lists_the_oldest_first_with_their_dates() {
        let catalog = catalog();
        let pending = [
            request(1, ACME, "a@acme.fr", "COMPTA", "2026-11-15T08:00:00Z"),
            request(2, ACME, "b@acme.fr", "COMPTA", "2026-11-10T08:00:00Z"),
            request(3, ACME, "c@acme.fr", "COMPTA", "2026-11-22T08:00:00Z"),
        ];
        let none = BTreeSet::new();
        let input = ReminderInput {
            catalog: &catalog,
            pending: &pending,
            remind_after_days: 7,
            now: at("2026-11-23T07:00:00Z"),
            reminded_today: &none,
            console_url: None,
        };
        let mails = reminders(&input);
        let body = &mails.iter().find(|m| m.to.as_str() == "gp@acme.fr").unwrap().body;
        let (first, second) = (body.find("#2 ").unwrap(), body.find("#1 ").unwrap());
        assert!(first < second, "oldest first:\n{body}");
        assert!(body.contains("créée le 10/11/2026"), "{body}");
        assert!(!body.contains("#3 "), "a fresh request is not overdue:\n{body}");
        assert!(body.contains("Vous avez 3 demandes en attente au total"), "{body}");
    }
}
