//! Mapping: one source record, as typed cells, into a validated row of the
//! desired state, or into anomalies that name the row, the column and the
//! value. Every format and every source kind goes through the same rules.

use std::{
    borrow::Cow,
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::{
    anomaly::{Anomaly, AnomalyCode, Location, SourceFile},
    catalog::{Catalog, ServiceLookupError, StructureInfo, StructureLookupError},
    change::LeftWhy,
    record::{CellRef, ColumnMap, Field, Record},
};
use crate::{
    config::ValueMaps,
    domain::{
        Email, EmailError, PersonName, Placement, Rights, StructureId,
        text::{fold, trim},
    },
};

/// A valid row: one person in one structure (and service), or a leaver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub email: Email,
    pub name: PersonName,
    pub employee_id: Option<Box<str>>,
    pub structure: StructureId,
    pub placement: Placement,
    /// Set when the row says the person has left (end date reached, inactive status).
    pub left: Option<LeftWhy>,
    pub location: Location,
}

/// The outcome of mapping one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Row(SourceRow),
    /// The row is unusable. When its e-mail parsed, the person is protected:
    /// nothing this run would detach them, since the source may just be wrong.
    Rejected {
        email: Option<Email>,
        anomalies: Vec<Anomaly>,
    },
}

/// Everything the mapping needs, fixed for one source and one run.
pub struct Mapper<'a> {
    /// The source, file and sheet every location of this source names.
    pub file: Arc<SourceFile>,
    pub catalog: &'a Catalog,
    /// The structures this source may attach people to.
    pub scope: &'a BTreeSet<StructureId>,
    pub default_structure: Option<&'a StructureId>,
    pub columns: &'a ColumnMap,
    pub values: &'a ValueMaps,
    /// Today in the configured time zone: end dates on or before it mean "left".
    pub today: NaiveDate,
    /// Cells already resolved, for this source only.
    pub resolved: Resolved<'a>,
}

/// Structure, service and rights cells already resolved. An HR file repeats a
/// handful of them over a million rows; resolving each costs allocations and
/// Unicode folding (a fifth of reading a file). Only successes are kept, so
/// every bad cell is reported where it is.
///
/// Statuses are folded to be compared, so their answers are kept too. The
/// keys are few and the look-ups four a row: a quick hash, not SipHash
/// (which was a tenth of mapping a row).
#[derive(Default)]
pub struct Resolved<'a> {
    structures: RefCell<Map<Box<str>, &'a StructureInfo>>,
    services: RefCell<Map<StructureId, Map<Box<str>, crate::domain::ServiceCode>>>,
    rights: RefCell<Map<Box<str>, Rights>>,
    inactive: RefCell<Map<Box<str>, bool>>,
}

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl Mapper<'_> {
    fn location(&self, record: &Record, field: Option<Field>) -> Location {
        Location {
            file: self.file.clone(),
            // Directory entries have a DN, not a row number.
            row: record.entry.is_none().then_some(record.row),
            column: field.and_then(|f| self.columns.get(f)).map(Arc::from),
            entry: record.entry.clone(),
        }
    }

    pub fn map(&self, record: &Record) -> Mapped {
        let mut problems: Vec<(Field, AnomalyCode, String)> = Vec::new();
        let text = |f: Field| trimmed(record.get(f));

        let email = match text(Field::Email) {
            None => {
                problems.push((Field::Email, AnomalyCode::MissingEmail, "no e-mail address".into()));
                None
            }
            Some(raw) => match Email::parse(&raw) {
                Ok(e) => Some(e),
                Err(e) => {
                    problems.push((Field::Email, AnomalyCode::InvalidEmail, email_message(&raw, &e)));
                    None
                }
            },
        };

        let structure = self.structure(record.get(Field::Structure), &mut problems);

        let service = match (structure, text(Field::Service)) {
            (Some(info), Some(raw)) => match self.service(info, &raw) {
                Ok(code) => Some(Some(code)),
                Err(ServiceLookupError::Invalid(m)) => {
                    problems.push((Field::Service, AnomalyCode::InvalidService, m));
                    None
                }
                Err(e @ ServiceLookupError::Unknown { .. }) => {
                    problems.push((Field::Service, AnomalyCode::UnknownService, e.to_string()));
                    None
                }
            },
            (_, None) => Some(None),
            (None, Some(_)) => None,
        };

        let rights = match text(Field::Rights) {
            None => Some(Rights::default()),
            Some(raw) => match self.rights(&raw) {
                Ok(r) => Some(r),
                Err(e) => {
                    let known = if self.values.rights.is_empty() {
                        String::new()
                    } else {
                        let mut labels: Vec<&str> = self.values.rights.keys().map(String::as_str).collect();
                        labels.sort_unstable();
                        format!(" (mapped labels: {})", labels.join(", "))
                    };
                    problems.push((Field::Rights, AnomalyCode::InvalidRights, format!("{e}{known}")));
                    None
                }
            },
        };

        let end_date = match record.get(Field::EndDate) {
            c if c.is_blank() => None,
            c => match parse_date(c) {
                Some(d) => Some(d),
                None => {
                    problems.push((
                        Field::EndDate,
                        AnomalyCode::InvalidDate,
                        format!(
                            "{:?} is not a date (expected dd/mm/yyyy, yyyy-mm-dd or a spreadsheet date)",
                            c.to_text()
                        ),
                    ));
                    None
                }
            },
        };

        let status_left = text(Field::Status).filter(|s| self.is_inactive(s)).map(Cow::into_owned);

        let structure_id = structure.map(|s| s.id.clone());
        if !problems.is_empty() || email.is_none() {
            let email_text = email.as_ref().map(Email::to_string).or_else(|| text(Field::Email).map(Cow::into_owned));
            let anomalies = problems
                .into_iter()
                .map(|(field, code, message)| Anomaly {
                    structure: structure_id.clone(),
                    location: Some(self.location(record, Some(field))),
                    email: email_text.clone(),
                    code,
                    message,
                })
                .collect();
            return Mapped::Rejected { email, anomalies };
        }
        let (Some(email), Some(info), Some(service), Some(rights)) = (email, structure, service, rights) else {
            unreachable!("every missing value above records a problem")
        };

        let left = match (end_date, status_left) {
            _ if record.left.is_some() => record.left.clone(),
            (Some(d), _) if d <= self.today => Some(LeftWhy::EndDate(d)),
            (_, Some(s)) => Some(LeftWhy::Status(s)),
            _ => None,
        };
        let name = PersonName {
            last_name: text(Field::LastName).map(Into::into),
            first_name: text(Field::FirstName).map(Into::into),
        };
        Mapped::Row(SourceRow {
            email,
            name,
            employee_id: text(Field::EmployeeId).map(Into::into),
            structure: info.id.clone(),
            placement: Placement { service, rights },
            left,
            location: self.location(record, None),
        })
    }

    fn structure(&self, cell: CellRef<'_>, problems: &mut Vec<(Field, AnomalyCode, String)>) -> Option<&StructureInfo> {
        let info = if cell.is_blank() {
            match self.default_structure.and_then(|id| self.catalog.get(id)) {
                Some(info) => info,
                None => {
                    let m = "no structure in the row and no default_structure for the source".to_string();
                    problems.push((Field::Structure, AnomalyCode::NoStructure, m));
                    return None;
                }
            }
        } else {
            let raw = structure_text(cell);
            let known = self.resolved.structures.borrow().get(&*raw).copied();
            match known.ok_or(()).or_else(|()| self.catalog.lookup(&raw)) {
                Ok(info) => {
                    if known.is_none() {
                        self.resolved.structures.borrow_mut().insert(raw.as_ref().into(), info);
                    }
                    info
                }
                Err(StructureLookupError::Invalid(m)) => {
                    problems.push((Field::Structure, AnomalyCode::InvalidStructure, m));
                    return None;
                }
                Err(e @ StructureLookupError::Unknown(_)) => {
                    problems.push((Field::Structure, AnomalyCode::UnknownStructure, e.to_string()));
                    return None;
                }
            }
        };
        if !self.scope.contains(&info.id) {
            let m = format!("structure {} ({}) is governed by another source", info.id, info.name);
            problems.push((Field::Structure, AnomalyCode::StructureOutOfScope, m));
            return None;
        }
        Some(info)
    }
}

impl<'a> Mapper<'a> {
    fn service(&self, info: &StructureInfo, raw: &str) -> Result<crate::domain::ServiceCode, ServiceLookupError> {
        if let Some(code) = self.resolved.services.borrow().get(&info.id).and_then(|m| m.get(raw)) {
            return Ok(code.clone());
        }
        let code = self.catalog.service(info, raw)?;
        self.resolved.services.borrow_mut().entry(info.id.clone()).or_default().insert(raw.into(), code.clone());
        Ok(code)
    }

    /// Is `status` (trimmed) one of `inactive_status`, folded? The first
    /// statuses seen are kept: a free-text column would not fill memory.
    fn is_inactive(&self, status: &str) -> bool {
        const KEPT: usize = 1_024;
        if let Some(known) = self.resolved.inactive.borrow().get(status) {
            return *known;
        }
        let inactive = self.values.inactive_status.contains(&fold(status));
        let mut kept = self.resolved.inactive.borrow_mut();
        if kept.len() < KEPT {
            kept.insert(status.into(), inactive);
        }
        inactive
    }

    /// A rights cell: a configured label, or `app:mode` pairs.
    fn rights(&self, raw: &str) -> Result<Rights, crate::domain::RightsError> {
        if let Some(r) = self.resolved.rights.borrow().get(raw) {
            return Ok(r.clone());
        }
        let mapped = self.values.rights.get(&fold(raw)).map(String::as_str);
        let r = Rights::parse(mapped.unwrap_or(raw))?;
        self.resolved.rights.borrow_mut().insert(raw.into(), r.clone());
        Ok(r)
    }
}

/// A cell's text without surrounding white space, `None` when blank;
/// borrowed from text cells (most of them).
fn trimmed(cell: CellRef<'_>) -> Option<Cow<'_, str>> {
    match cell {
        CellRef::Text(s) => Some(trim(s)).filter(|t| !t.is_empty()).map(Cow::Borrowed),
        other => {
            let t = other.to_text();
            let t = t.trim();
            (!t.is_empty()).then(|| Cow::Owned(t.to_string()))
        }
    }
}

fn email_message(raw: &str, e: &EmailError) -> String {
    format!("{raw:?} is not a valid e-mail address: {e}")
}

/// A structure cell as text. Spreadsheets that typed a SIRET as a number
/// drop its leading zero (13 digits): put it back.
fn structure_text(cell: CellRef<'_>) -> Cow<'_, str> {
    if let CellRef::Text(s) = cell {
        return Cow::Borrowed(s);
    }
    let t = cell.to_text();
    let numeric = matches!(cell, CellRef::Int(_) | CellRef::Float(_));
    Cow::Owned(if numeric && t.len() == 13 && t.bytes().all(|b| b.is_ascii_digit()) { format!("0{t}") } else { t })
}

/// Dates as HR exports write them: typed spreadsheet dates, Excel serial
/// numbers, `dd/mm/yyyy` (French order, never US), ISO `yyyy-mm-dd`, with or
/// without a time.
pub fn parse_date(cell: CellRef<'_>) -> Option<NaiveDate> {
    match cell {
        CellRef::DateTime(d) => Some(d.date()),
        CellRef::Int(n) => excel_serial(n as f64),
        CellRef::Float(f) => excel_serial(f),
        CellRef::Text(s) => parse_date_text(s.trim()),
        _ => None,
    }
}

fn excel_serial(n: f64) -> Option<NaiveDate> {
    // 1900 date system; serials below 61 predate Excel's phantom 29/02/1900
    // and no HR end date lives there, so the usual epoch applies throughout.
    if !(1.0..=2_958_465.0).contains(&n) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(n.floor() as u64))
}

fn parse_date_text(s: &str) -> Option<NaiveDate> {
    if s.is_empty() {
        return None;
    }
    for fmt in ["%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return plausible(d);
        }
    }
    for fmt in ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return plausible(d.date());
        }
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return plausible(d.date_naive());
    }
    // A serial number exported as text.
    if s.bytes().all(|b| b.is_ascii_digit()) && (4..=6).contains(&s.len()) {
        return s.parse::<f64>().ok().and_then(excel_serial);
    }
    None
}

/// Two-digit years parsed by `%Y` give year 26 AD: not a real end date.
fn plausible(d: NaiveDate) -> Option<NaiveDate> {
    (1900..=9999).contains(&d.year()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::tests::sample;
    use crate::core::record::Cell;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn columns() -> ColumnMap {
        ColumnMap::new([
            (Field::Email, "Courriel".to_string()),
            (Field::LastName, "Nom".to_string()),
            (Field::FirstName, "Prénom".to_string()),
            (Field::Structure, "SIRET".to_string()),
            (Field::Service, "Code service".to_string()),
            (Field::Rights, "Profil".to_string()),
            (Field::EndDate, "Date de sortie".to_string()),
            (Field::Status, "Statut".to_string()),
        ])
    }

    fn values() -> ValueMaps {
        ValueMaps {
            rights: [("comptable".to_string(), "factures:modification".to_string())].into_iter().collect(),
            inactive_status: ["sorti".to_string()].into_iter().collect(),
        }
    }

    /// Runs `f` with a mapper over the sample catalog (ACME France by default).
    fn with_mapper<R>(source: &str, origin: &str, f: impl FnOnce(&Mapper) -> R) -> R {
        let catalog = sample();
        let scope: BTreeSet<StructureId> = catalog.ids().cloned().collect();
        let default = StructureId::parse(crate::domain::IdentifierType::Siret, "12345678200010").unwrap();
        let (columns, values) = (columns(), values());
        f(&Mapper {
            file: SourceFile::new(source, origin, None),
            catalog: &catalog,
            scope: &scope,
            default_structure: Some(&default),
            columns: &columns,
            values: &values,
            today: today(),
            resolved: Resolved::default(),
        })
    }

    fn map(cells: &[(Field, Cell)]) -> Mapped {
        let mut record = Record::new(7);
        for (f, c) in cells {
            record.set(*f, c.as_ref());
        }
        with_mapper("hr", "hr.csv", |m| m.map(&record))
    }

    fn t(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    /// Expect a valid row: (structure, placement label, left).
    fn check_row(cells: &[(Field, Cell)], expect: (&str, &str, Option<LeftWhy>)) {
        match map(cells) {
            Mapped::Row(r) => {
                assert_eq!((r.structure.as_str(), r.placement.label().as_str(), r.left), expect, "{cells:?}")
            }
            Mapped::Rejected { anomalies, .. } => panic!("{cells:?} rejected: {anomalies:?}"),
        }
    }

    /// Expect a rejection with these codes and these located columns.
    fn check_rejected(cells: &[(Field, Cell)], expect: &[(AnomalyCode, &str)]) {
        match map(cells) {
            Mapped::Row(r) => panic!("{cells:?} accepted: {r:?}"),
            Mapped::Rejected { anomalies, .. } => {
                let got: Vec<(AnomalyCode, String)> = anomalies
                    .iter()
                    .map(|a| (a.code, a.location.as_ref().unwrap().column.as_deref().unwrap_or("").to_string()))
                    .collect();
                let expect: Vec<(AnomalyCode, String)> = expect.iter().map(|(c, s)| (*c, s.to_string())).collect();
                assert_eq!(got, expect, "{cells:?}");
                assert!(anomalies.iter().all(|a| a.location.as_ref().unwrap().row == Some(7)));
            }
        }
    }

    const ACME: &str = "12345678200010";

    /// Statuses are answered from what one mapper kept, for every spelling,
    /// and still answered once it keeps no more (a free-text column).
    #[test]
    fn statuses_answered_the_same_when_kept_and_when_not() {
        let left = |m: &Mapper, status: &str| {
            let mut record = Record::new(2);
            record.set(Field::Email, t("m@acme.fr").as_ref());
            record.set(Field::Status, t(status).as_ref());
            match m.map(&record) {
                Mapped::Row(r) => r.left,
                Mapped::Rejected { anomalies, .. } => panic!("{status:?} rejected: {anomalies:?}"),
            }
        };
        with_mapper("hr", "hr.csv", |m| {
            for _ in 0..2 {
                assert_eq!(left(m, "Sorti"), Some(LeftWhy::Status("Sorti".into())));
                assert_eq!(left(m, " SORTI"), Some(LeftWhy::Status("SORTI".into())));
                assert_eq!(left(m, "Actif"), None);
            }
            for i in 0..1_100 {
                assert_eq!(left(m, &format!("note {i}")), None);
            }
            assert!(m.resolved.inactive.borrow().len() <= 1_024);
            assert_eq!(left(m, "sOrTi"), Some(LeftWhy::Status("sOrTi".into())), "not kept, still folded");
            assert_eq!(left(m, "Sorti"), Some(LeftWhy::Status("Sorti".into())));
            assert_eq!(left(m, "Actif"), None);
        });
    }

    #[test]
    fn valid_rows() {
        use Field::*;
        check_row(&[(Email, t("Marie.Dupont@ACME.fr"))], (ACME, "(structure)", None));
        check_row(&[(Email, t("m@acme.fr")), (Service, t("compta"))], (ACME, "COMPTA", None));
        check_row(
            &[(Email, t("m@acme.fr")), (Rights, t("Comptable"))],
            (ACME, "(structure) [factures:modification]", None),
        );
        check_row(
            &[(Email, t("m@acme.fr")), (Rights, t("factures:consultation|engagements:modification"))],
            (ACME, "(structure) [engagements:modification,factures:consultation]", None),
        );
        check_row(&[(Email, t("m@acme.nc")), (Structure, t("R-1234")), (Service, t("X"))], ("R-1234", "X", None));
        // A SIRET typed as a number, and one typed with spaces.
        check_row(&[(Email, t("m@acme.fr")), (Structure, Cell::Float(12345678200010.0))], (ACME, "(structure)", None));
        check_row(&[(Email, t("m@acme.fr")), (Structure, t("123 456 782 00010"))], (ACME, "(structure)", None));
    }

    #[test]
    fn leavers() {
        use Field::*;
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let left = |y, m, dd| Some(LeftWhy::EndDate(d(y, m, dd)));
        check_row(&[(Email, t("m@acme.fr")), (EndDate, t("23/11/2026"))], (ACME, "(structure)", left(2026, 11, 23)));
        check_row(&[(Email, t("m@acme.fr")), (EndDate, t("24/11/2026"))], (ACME, "(structure)", None));
        check_row(&[(Email, t("m@acme.fr")), (EndDate, t("2026-01-31"))], (ACME, "(structure)", left(2026, 1, 31)));
        check_row(
            &[(Email, t("m@acme.fr")), (EndDate, Cell::Float(46000.0))],
            (ACME, "(structure)", left(2025, 12, 9)),
        );
        check_row(
            &[(Email, t("m@acme.fr")), (Status, t("SORTI "))],
            (ACME, "(structure)", Some(LeftWhy::Status("SORTI".into()))),
        );
        check_row(&[(Email, t("m@acme.fr")), (Status, t("Actif"))], (ACME, "(structure)", None));
    }

    #[test]
    fn rejected_rows_name_every_bad_field() {
        use AnomalyCode as A;
        use Field::*;
        check_rejected(&[(LastName, t("Dupont"))], &[(A::MissingEmail, "Courriel")]);
        check_rejected(&[(Email, t("marie.dupont"))], &[(A::InvalidEmail, "Courriel")]);
        check_rejected(&[(Email, t("m@acme.fr")), (Structure, t("73282932000074"))], &[(A::UnknownStructure, "SIRET")]);
        check_rejected(&[(Email, t("m@acme.fr")), (Structure, t("12345678200011"))], &[(A::InvalidStructure, "SIRET")]);
        check_rejected(&[(Email, t("m@acme.fr")), (Service, t("RH"))], &[(A::UnknownService, "Code service")]);
        check_rejected(&[(Email, t("m@acme.fr")), (Rights, t("Chef"))], &[(A::InvalidRights, "Profil")]);
        check_rejected(&[(Email, t("m@acme.fr")), (EndDate, t("31/02/2026"))], &[(A::InvalidDate, "Date de sortie")]);
        check_rejected(&[(Email, t("m@acme.fr")), (EndDate, t("bientôt"))], &[(A::InvalidDate, "Date de sortie")]);
        check_rejected(
            &[(Email, t("x")), (Service, t("RH")), (Rights, t("Chef")), (EndDate, t("?"))],
            &[
                (A::InvalidEmail, "Courriel"),
                (A::UnknownService, "Code service"),
                (A::InvalidRights, "Profil"),
                (A::InvalidDate, "Date de sortie"),
            ],
        );
    }

    #[test]
    fn a_rejected_row_keeps_the_email_that_parsed() {
        match map(&[(Field::Email, t(" M@Acme.fr ")), (Field::Service, t("RH"))]) {
            Mapped::Rejected { email, anomalies } => {
                assert_eq!(email.unwrap().as_str(), "m@acme.fr");
                assert_eq!(anomalies[0].email.as_deref(), Some("m@acme.fr"));
                assert_eq!(anomalies[0].location_text(), "hr.csv, row 7, column Code service");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directory_records_carry_their_entry_and_left_flag() {
        let mut record = Record::new(3);
        record.entry = Some("uid=marie,ou=people,dc=example,dc=org".into());
        record.left = Some(LeftWhy::Disabled);
        record.set(Field::Email, t("marie@acme.fr").as_ref());
        match with_mapper("annuaire", "ldaps://ldap.example.org", |m| m.map(&record)) {
            Mapped::Row(r) => {
                assert_eq!(r.left, Some(LeftWhy::Disabled));
                assert_eq!(
                    r.location.to_string(),
                    "ldaps://ldap.example.org, entry uid=marie,ou=people,dc=example,dc=org"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dates() {
        let d = |y, m, dd| Some(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        for (cell, expect) in [
            (t("01/02/2026"), d(2026, 2, 1)),
            (t("1/2/2026"), d(2026, 2, 1)),
            (t("2026-02-01"), d(2026, 2, 1)),
            (t("01.02.2026"), d(2026, 2, 1)),
            (t("01/02/2026 00:00:00"), d(2026, 2, 1)),
            (t("2026-02-01T10:00:00"), d(2026, 2, 1)),
            (t("46054"), d(2026, 2, 1)),
            (Cell::Int(46054), d(2026, 2, 1)),
            (Cell::Float(46054.5), d(2026, 2, 1)),
            (t("13/13/2026"), None),
            (t("01/02/26"), None),
            (t("n/a"), None),
            (Cell::Bool(true), None),
            (Cell::Float(-3.0), None),
        ] {
            assert_eq!(parse_date(cell.as_ref()), expect, "{cell:?}");
        }
    }
}
