//! Plain French descriptions of changes, as the portal's approval screen
//! would word them ("Rattacher Marie Dupont au service COMPTA de ACME France").

use super::change::{Change, ChangeKind, LeftWhy, Reason};
use crate::domain::Placement;

fn place(p: &Placement) -> String {
    match &p.service {
        Some(s) => format!("au service {s}"),
        None => "à la structure".to_string(),
    }
}

fn from_place(p: &Placement) -> String {
    match &p.service {
        Some(s) => format!("du service {s}"),
        None => "de la structure".to_string(),
    }
}

fn rights(p: &Placement) -> String {
    if p.rights.is_empty() { "droits par défaut".to_string() } else { p.rights.to_string() }
}

fn why(reason: &Reason) -> Option<String> {
    Some(match reason {
        Reason::Left(LeftWhy::EndDate(d)) => format!("sortie le {}", d.format("%d/%m/%Y")),
        Reason::Left(LeftWhy::Status(s)) => format!("statut « {s} »"),
        Reason::Left(LeftWhy::Disabled) => "compte désactivé".to_string(),
        Reason::Left(LeftWhy::Expired(d)) => format!("compte expiré le {}", d.format("%d/%m/%Y")),
        Reason::Absent { runs: 1 } => "absent(e) de la source".to_string(),
        Reason::Absent { runs } => format!("absent(e) de la source depuis {runs} exécutions"),
        Reason::ServiceDropped => "n'est plus dans ce service selon la source".to_string(),
        Reason::New | Reason::ServiceChanged | Reason::RightsChanged => return None,
    })
}

pub fn describe(change: &Change, structure_name: &str) -> String {
    let who = change.name.display().unwrap_or_else(|| change.key.email.to_string());
    let (before, after) = (&change.key.before, &change.key.after);
    let text = match (change.kind, before, after) {
        (ChangeKind::Attach, _, Some(a)) => {
            let with = if a.rights.is_empty() { String::new() } else { format!(" avec les droits {}", a.rights) };
            format!("Rattacher {who} {} de {structure_name}{with}", place(a))
        }
        (ChangeKind::Detach, Some(b), _) => format!("Détacher {who} {} de {structure_name}", from_place(b)),
        (ChangeKind::Move, Some(b), Some(a)) => {
            let with = if a.rights == b.rights { String::new() } else { format!(" ({} → {})", rights(b), rights(a)) };
            format!("Déplacer {who} {} vers {} de {structure_name}{with}", from_place(b), after_place(a))
        }
        (ChangeKind::Rights, Some(b), Some(a)) => {
            let at = match &a.service {
                Some(s) => format!("dans le service {s}"),
                None => "dans la structure".to_string(),
            };
            format!("Modifier les droits de {who} {at} de {structure_name} : {} → {}", rights(b), rights(a))
        }
        _ => format!("{} {who} ({structure_name})", change.kind),
    };
    match why(&change.reason) {
        Some(w) => format!("{text} ({w})"),
        None => text,
    }
}

fn after_place(p: &Placement) -> String {
    match &p.service {
        Some(s) => format!("le service {s}"),
        None => "la structure".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::change::ChangeKey;
    use crate::domain::{Email, IdentifierType, PersonName, Rights, ServiceCode, StructureId};
    use chrono::NaiveDate;

    fn placement(service: Option<&str>, rights: &str) -> Placement {
        Placement { service: service.map(|s| ServiceCode::parse(s).unwrap()), rights: Rights::parse(rights).unwrap() }
    }

    fn check(before: Option<Placement>, after: Option<Placement>, reason: Reason, expect: &str) {
        let key = ChangeKey {
            structure: StructureId::parse(IdentifierType::Siret, "12345678200010").unwrap(),
            email: Email::parse("marie.dupont@acme.fr").unwrap(),
            before,
            after,
        };
        let name = PersonName { last_name: Some("Dupont".into()), first_name: Some("Marie".into()) };
        let change = Change::new(key, reason, name, None).unwrap();
        assert_eq!(describe(&change, "ACME France"), expect);
    }

    #[test]
    fn descriptions() {
        check(
            None,
            Some(placement(Some("COMPTA"), "")),
            Reason::New,
            "Rattacher Marie Dupont au service COMPTA de ACME France",
        );
        check(
            None,
            Some(placement(None, "factures:modification")),
            Reason::New,
            "Rattacher Marie Dupont à la structure de ACME France avec les droits factures:modification",
        );
        check(
            Some(placement(Some("COMPTA"), "")),
            None,
            Reason::Left(LeftWhy::EndDate(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap())),
            "Détacher Marie Dupont du service COMPTA de ACME France (sortie le 31/10/2026)",
        );
        check(
            Some(placement(Some("COMPTA"), "")),
            None,
            Reason::Absent { runs: 3 },
            "Détacher Marie Dupont du service COMPTA de ACME France (absent(e) de la source depuis 3 exécutions)",
        );
        check(
            Some(placement(Some("COMPTA"), "factures:consultation")),
            Some(placement(Some("ACHATS"), "factures:consultation")),
            Reason::ServiceChanged,
            "Déplacer Marie Dupont du service COMPTA vers le service ACHATS de ACME France",
        );
        check(
            Some(placement(Some("COMPTA"), "factures:consultation")),
            Some(placement(Some("COMPTA"), "factures:modification")),
            Reason::RightsChanged,
            "Modifier les droits de Marie Dupont dans le service COMPTA de ACME France : factures:consultation → factures:modification",
        );
    }
}
