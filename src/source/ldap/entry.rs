//! One directory entry: decoding, attribute look-up (names ignore case),
//! Active Directory's flags and times, group rules, and the records it yields.

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ldap3::asn1::StructureTag;

use super::DirectorySpec;
use crate::{
    config::GroupRule,
    core::{
        change::LeftWhy,
        record::{Cell, CellRef, Field, Record},
    },
};

/// An entry as the server sent it: its DN and raw values by attribute.
/// LDAP names ignore case, and servers answer in their own: names are
/// compared without case. The few attributes a search asks for are looked
/// up in a vector: hashing their names cost more than comparing them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    pub fn new<'a>(dn: &str, attrs: impl IntoIterator<Item = (&'a str, Vec<Vec<u8>>)>) -> Entry {
        let mut entry = Entry { dn: dn.to_string(), attrs: Vec::new() };
        for (name, values) in attrs {
            entry.add(name.to_string(), values);
        }
        entry
    }

    /// Adds values to an attribute: one sent twice (in two cases) keeps both.
    fn add(&mut self, name: String, values: Vec<Vec<u8>>) {
        match self.attrs.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, old)) => old.extend(values),
            None => self.attrs.push((name, values)),
        }
    }

    /// Decodes a SearchResultEntry (RFC 4511 §4.5.2); `None` if malformed.
    /// Done here because ldap3's `SearchEntry::construct` panics on bad input
    /// and turns binary values it cannot read as UTF-8 into a separate map.
    pub fn parse(tag: StructureTag) -> Option<Entry> {
        let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let attrs = parts.next()?.expect_constructed()?;
        let mut entry = Entry { dn, attrs: Vec::with_capacity(attrs.len()) };
        // The values are moved, not copied: this runs for every entry.
        for attr in attrs {
            let mut pair = attr.expect_constructed()?.into_iter();
            let name = String::from_utf8(pair.next()?.expect_primitive()?).ok()?;
            let values = pair.next()?.expect_constructed()?.into_iter().map(StructureTag::expect_primitive);
            entry.add(name, values.collect::<Option<Vec<_>>>()?);
        }
        Some(entry)
    }

    fn raw(&self, name: &str) -> &[Vec<u8>] {
        self.attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or(&[], |(_, values)| values.as_slice())
    }

    /// Every value of `name`, as text.
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = String> + 'a {
        self.raw(name).iter().map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value: multi-valued attributes feed a field with one value.
    pub fn first(&self, name: &str) -> Option<String> {
        self.values(name).next()
    }

    /// Sets `field` of `record` from the first value of `attr`, if any.
    fn set_cell(&self, record: &mut Record, field: Field, attr: &str, tz: chrono_tz::Tz) {
        let Some(raw) = self.raw(attr).first() else { return };
        if field == Field::EmployeeId && attr.eq_ignore_ascii_case("objectGUID") && raw.len() == 16 {
            return record.set(field, CellRef::Text(&guid(raw)));
        }
        let text = String::from_utf8_lossy(raw);
        match field {
            Field::EndDate => record.set(field, end_date_cell(&text, tz).as_ref()),
            _ => record.set(field, CellRef::Text(&text)),
        }
    }

    /// AD: a disabled account, or one whose `accountExpires` has passed.
    pub fn left(&self, today: NaiveDate, tz: chrono_tz::Tz) -> Option<LeftWhy> {
        if self.first("userAccountControl").and_then(|v| uac_disabled(&v)) == Some(true) {
            return Some(LeftWhy::Disabled);
        }
        let expires = self.first("accountExpires")?;
        account_expired(&expires, tz, today).map(LeftWhy::Expired)
    }

    /// One record per group rule the entry matches, or one record with the
    /// attributes' service and rights when it matches none (or there are no
    /// rules): the filter decides who is in, groups only place them.
    pub fn records(&self, row: u64, spec: &DirectorySpec<'_>, groups: &GroupIndex) -> Vec<Record> {
        let mut base = Record::new(row);
        base.entry = Some(Arc::from(self.dn.as_str()));
        for (field, attr) in spec.attributes.iter() {
            self.set_cell(&mut base, field, attr, spec.timezone);
        }
        base.left = self.left(spec.today, spec.timezone);
        let matched = groups.matches(self);
        if matched.is_empty() {
            return vec![base];
        }
        matched
            .into_iter()
            .map(|rule| {
                let mut r = base.clone();
                if let Some(service) = &rule.service {
                    r.set(Field::Service, CellRef::Text(service));
                }
                if let Some(rights) = &rule.rights {
                    r.set(Field::Rights, CellRef::Text(rights));
                }
                r
            })
            .collect()
    }
}

/// The group rules with their DNs normalised and their known members.
#[derive(Debug, Clone, Default)]
pub struct GroupIndex {
    rules: Vec<(GroupRule, String, HashSet<String>)>,
}

impl GroupIndex {
    pub fn new(rules: &[GroupRule]) -> GroupIndex {
        GroupIndex { rules: rules.iter().map(|r| (r.clone(), normalize_dn(&r.dn), HashSet::new())).collect() }
    }

    /// Adds member DNs of rule `j` (`member` or `uniqueMember` values).
    pub fn add_members(&mut self, j: usize, dns: impl Iterator<Item = String>) {
        for dn in dns {
            self.add_member(j, &dn);
        }
    }

    pub fn add_member(&mut self, j: usize, dn: &str) {
        // uniqueMember may end with an optional UID: `dn#'0101'B`.
        let dn = match dn.rfind("#'") {
            Some(i) if dn.ends_with("'B") => &dn[..i],
            _ => dn,
        };
        if let Some((_, _, members)) = self.rules.get_mut(j) {
            members.insert(normalize_dn(dn));
        }
    }

    /// The rules whose group lists the entry (its `memberOf`, or the group's members).
    pub fn matches(&self, entry: &Entry) -> Vec<&GroupRule> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let member_of: HashSet<String> = entry.values("memberOf").map(|d| normalize_dn(&d)).collect();
        let dn = normalize_dn(&entry.dn);
        self.rules
            .iter()
            .filter(|(_, group, members)| member_of.contains(group) || members.contains(&dn))
            .map(|(rule, _, _)| rule)
            .collect()
    }
}

/// A DN for comparison: lower case, no spaces around unescaped `,` `+` `=`
/// (`CN=Compta, OU=Groups` and `cn=compta,ou=groups` are the same group).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    let mut skip_spaces = true;
    for c in dn.trim().chars() {
        if escaped {
            escaped = false;
            out.extend(c.to_lowercase());
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                skip_spaces = false;
                out.push(c);
            }
            ',' | '+' | '=' => {
                while out.ends_with(' ') && !out.ends_with("\\ ") {
                    out.pop();
                }
                out.push(c);
                skip_spaces = true;
            }
            ' ' if skip_spaces => {}
            _ => {
                skip_spaces = false;
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

/// Windows FILETIME (100 ns since 1601-01-01 UTC) as an instant; `None` for
/// 0 and `i64::MAX`, which AD uses for "never", and for nonsense.
pub fn filetime_to_utc(ticks: i64) -> Option<DateTime<Utc>> {
    const EPOCH_DIFF_S: i64 = 11_644_473_600;
    if ticks <= 0 || ticks == i64::MAX {
        return None;
    }
    let secs = ticks / 10_000_000 - EPOCH_DIFF_S;
    let nanos = u32::try_from((ticks % 10_000_000) * 100).ok()?;
    DateTime::from_timestamp(secs, nanos)
}

/// LDAP GeneralizedTime (RFC 4517 §3.3.13): `YYYYMMDDHH[MM[SS]][(.|,)frac](Z|±HH[MM])`.
pub fn parse_generalized_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if !matches!(digits, 10 | 12 | 14) {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<u32>().ok();
    let year = i32::try_from(num(0, 4)?).ok()?;
    let (month, day, hour) = (num(4, 6)?, num(6, 8)?, num(8, 10)?);
    let minute = if digits >= 12 { num(10, 12)? } else { 0 };
    let second = if digits >= 14 { num(12, 14)? } else { 0 };
    let mut rest = &s[digits..];
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset_s: i64 = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = &rest[1..];
            if !matches!(tz.len(), 2 | 4) || !tz.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let h: i64 = tz[..2].parse().ok()?;
            let m: i64 = if tz.len() == 4 { tz[2..].parse().ok()? } else { 0 };
            sign * (h * 3600 + m * 60)
        }
    };
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)?;
    Some(Utc.from_utc_datetime(&(local - chrono::Duration::seconds(offset_s))))
}

/// An end-date attribute as a cell: AD FILETIME (17+ digits; 0 and
/// `i64::MAX` mean never → empty), GeneralizedTime, else the text itself for
/// the mapping's usual date rules. Instants become dates in `tz`.
pub fn end_date_cell(value: &str, tz: chrono_tz::Tz) -> Cell {
    let v = value.trim();
    let local = |t: DateTime<Utc>| -> NaiveDateTime { t.with_timezone(&tz).naive_local() };
    if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
        match v.parse::<i64>() {
            Ok(0) | Ok(i64::MAX) => return Cell::Empty,
            Ok(n) if v.len() >= 17 => {
                return filetime_to_utc(n).map_or_else(|| Cell::Text(v.to_string()), |t| Cell::DateTime(local(t)));
            }
            _ => {}
        }
    }
    match parse_generalized_time(v) {
        Some(t) => Cell::DateTime(local(t)),
        None => Cell::Text(v.to_string()),
    }
}

/// `userAccountControl` bit 2 (ACCOUNTDISABLE); `None` if not a number.
pub fn uac_disabled(value: &str) -> Option<bool> {
    value.trim().parse::<i64>().ok().map(|v| v & 0x2 != 0)
}

/// The expiry date (in `tz`) of an `accountExpires` on or before `today`.
pub fn account_expired(value: &str, tz: chrono_tz::Tz, today: NaiveDate) -> Option<NaiveDate> {
    let at = filetime_to_utc(value.trim().parse().ok()?)?;
    let date = at.with_timezone(&tz).date_naive();
    (date <= today).then_some(date)
}

/// objectGUID bytes in the usual text form (first three groups little-endian).
fn guid(b: &[u8]) -> String {
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rev = |bytes: &[u8]| bytes.iter().rev().copied().collect::<Vec<u8>>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&rev(&b[0..4])),
        hex(&rev(&b[4..6])),
        hex(&rev(&b[6..8])),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        config::{LdapSource, PasswordFrom},
        core::record::ColumnMap,
    };

    const PARIS: chrono_tz::Tz = chrono_tz::Europe::Paris;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&day(y, m, d).and_hms_opt(h, mi, s).unwrap())
    }

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        Entry::new(dn, attrs.iter().map(|(n, vs)| (*n, vs.iter().map(|v| v.as_bytes().to_vec()).collect())))
    }

    #[test]
    fn filetimes() {
        for (ticks, expect) in [
            (0, None),
            (i64::MAX, None),
            (-5, None),
            (116_444_736_000_000_000, Some(at(1970, 1, 1, 0, 0, 0))),
            // 2026-11-01T00:00:00Z
            (134_379_648_000_000_000, Some(at(2026, 11, 1, 0, 0, 0))),
            (134_379_648_005_000_000, Some(at(2026, 11, 1, 0, 0, 0) + chrono::Duration::milliseconds(500))),
        ] {
            assert_eq!(filetime_to_utc(ticks), expect, "{ticks}");
        }
    }

    #[test]
    fn generalized_times() {
        for (text, expect) in [
            ("20261031120000Z", Some(at(2026, 10, 31, 12, 0, 0))),
            ("20261031120000.0Z", Some(at(2026, 10, 31, 12, 0, 0))),
            ("20261031120000,123Z", Some(at(2026, 10, 31, 12, 0, 0))),
            ("202610311200Z", Some(at(2026, 10, 31, 12, 0, 0))),
            ("2026103112Z", Some(at(2026, 10, 31, 12, 0, 0))),
            ("20261031120000+0100", Some(at(2026, 10, 31, 11, 0, 0))),
            ("20261031120000-02", Some(at(2026, 10, 31, 14, 0, 0))),
            ("20261031120000", None),
            ("20261331120000Z", None),
            ("20261031120000.Z", None),
            ("20261031120000+1", None),
            ("2026-10-31", None),
            ("", None),
            ("é", None),
        ] {
            assert_eq!(parse_generalized_time(text), expect, "{text:?}");
        }
    }

    #[test]
    fn end_date_cells() {
        let dt = |y, m, d, h| Cell::DateTime(day(y, m, d).and_hms_opt(h, 0, 0).unwrap());
        for (value, expect) in [
            ("0", Cell::Empty),
            ("9223372036854775807", Cell::Empty),
            // Midnight UTC is 01:00 in Paris in November.
            ("134379648000000000", dt(2026, 11, 1, 1)),
            ("20261031230000Z", dt(2026, 11, 1, 0)),
            ("31/10/2026", Cell::Text("31/10/2026".into())),
            ("20261031", Cell::Text("20261031".into())),
            ("99999999999999999999", Cell::Text("99999999999999999999".into())),
        ] {
            assert_eq!(end_date_cell(value, PARIS), expect, "{value:?}");
        }
    }

    #[test]
    fn account_control_and_expiry() {
        for (uac, expect) in
            [("512", Some(false)), ("514", Some(true)), ("66050", Some(true)), ("2", Some(true)), ("x", None)]
        {
            assert_eq!(uac_disabled(uac), expect, "{uac}");
        }
        let today = day(2026, 11, 23);
        for (value, expect) in [
            ("0", None),
            ("9223372036854775807", None),
            ("134379648000000000", Some(day(2026, 11, 1))),
            // 2026-11-23T00:00Z: today, so expired.
            ("134398656000000000", Some(day(2026, 11, 23))),
            // 2026-11-24T00:00Z: tomorrow.
            ("134399520000000000", None),
            ("soon", None),
        ] {
            assert_eq!(account_expired(value, PARIS, today), expect, "{value}");
        }
    }

    #[test]
    fn dns_compare_ignoring_case_and_spaces() {
        for (a, b, same) in [
            ("CN=Compta, OU=Groups,DC=example", "cn=compta,ou=groups,dc=example", true),
            ("cn = a , dc=x", "cn=a,dc=x", true),
            ("cn=a\\, b,dc=x", "cn=a\\,b,dc=x", false),
            ("cn=Jean Martin,dc=x", "cn=jean martin,dc=x", true),
            ("cn=a,dc=x", "cn=b,dc=x", false),
        ] {
            assert_eq!(normalize_dn(a) == normalize_dn(b), same, "{a:?} vs {b:?}");
        }
    }

    fn source(groups: Vec<GroupRule>) -> LdapSource {
        LdapSource {
            url: "ldap://127.0.0.1".into(),
            start_tls: false,
            bind_dn: None,
            password: None,
            password_from: None::<PasswordFrom>,
            ca_file: None,
            tls_insecure: false,
            base_dn: "dc=x".into(),
            filter: "(mail=*)".into(),
            page_size: 500,
            timeout: Duration::from_secs(30),
            nested_groups: false,
            groups,
        }
    }

    fn rule(dn: &str, service: Option<&str>, rights: Option<&str>) -> GroupRule {
        GroupRule { dn: dn.into(), service: service.map(Into::into), rights: rights.map(Into::into) }
    }

    #[test]
    fn attributes_ignore_case_and_take_the_first_value() {
        let attributes = ColumnMap::new([
            (Field::Email, "MAIL".to_string()),
            (Field::LastName, "sn".to_string()),
            (Field::Service, "departmentNumber".to_string()),
            (Field::EndDate, "accountExpires".to_string()),
            (Field::EmployeeId, "objectGUID".to_string()),
        ]);
        let src = source(vec![]);
        let spec = DirectorySpec {
            source: &src,
            attributes: &attributes,
            required: &[],
            today: day(2026, 11, 23),
            timezone: PARIS,
        };
        let mut e = entry(
            "uid=m,dc=x",
            &[
                ("mail", &["m@acme.fr", "m2@acme.fr"]),
                ("SN", &["Martin"]),
                ("departmentnumber", &["COMPTA"]),
                ("accountExpires", &["9223372036854775807"]),
                ("userAccountControl", &["512"]),
            ],
        );
        let guid_bytes: Vec<u8> = (0u8..16).collect();
        e.add("objectGUID".into(), vec![guid_bytes]);
        let records = e.records(7, &spec, &GroupIndex::new(&[]));
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.row, 7);
        assert_eq!(r.entry.as_deref(), Some("uid=m,dc=x"));
        assert_eq!(r.get(Field::Email), Cell::Text("m@acme.fr".into()));
        assert_eq!(r.get(Field::LastName), Cell::Text("Martin".into()));
        assert_eq!(r.get(Field::Service), Cell::Text("COMPTA".into()));
        assert_eq!(r.get(Field::EndDate), Cell::Empty);
        assert_eq!(r.get(Field::EmployeeId), Cell::Text("03020100-0504-0706-0809-0a0b0c0d0e0f".into()));
        assert_eq!(r.get(Field::FirstName), Cell::Empty);
        assert_eq!(r.left, None);
    }

    #[test]
    fn left_accounts() {
        let today = day(2026, 11, 23);
        for (attrs, expect) in [
            (vec![("userAccountControl", "514")], Some(LeftWhy::Disabled)),
            (
                vec![("userAccountControl", "512"), ("accountExpires", "134379648000000000")],
                Some(LeftWhy::Expired(day(2026, 11, 1))),
            ),
            (vec![("userAccountControl", "514"), ("accountExpires", "134379648000000000")], Some(LeftWhy::Disabled)),
            (vec![("accountExpires", "0")], None),
            (vec![], None),
        ] {
            let pairs: Vec<(&str, &[&str])> = Vec::new();
            let mut e = entry("cn=x", &pairs);
            for (n, v) in &attrs {
                e.add(n.to_string(), vec![v.as_bytes().to_vec()]);
            }
            assert_eq!(e.left(today, PARIS), expect, "{attrs:?}");
        }
    }

    #[test]
    fn group_rules() {
        let rules = vec![
            rule("cn=compta,ou=groups,dc=x", Some("COMPTA"), Some("factures:modification")),
            rule("CN=Achats, OU=Groups, DC=x", Some("ACHATS"), None),
            rule("cn=lecteurs,ou=groups,dc=x", None, Some("factures:consultation")),
        ];
        let mut index = GroupIndex::new(&rules);
        // OpenLDAP without memberOf: the group lists its members.
        index.add_members(2, ["UID=Paul,OU=People,DC=x#'0101'B".to_string()].into_iter());
        let attributes =
            ColumnMap::new([(Field::Email, "mail".to_string()), (Field::Service, "departmentNumber".to_string())]);
        let src = source(rules.clone());
        let spec = DirectorySpec {
            source: &src,
            attributes: &attributes,
            required: &[],
            today: day(2026, 11, 23),
            timezone: PARIS,
        };
        let cases: Vec<(Entry, Vec<(Cell, Cell)>)> = vec![
            (
                entry(
                    "uid=marie,ou=people,dc=x",
                    &[
                        ("mail", &["marie@x.fr"]),
                        ("memberOf", &["cn=Compta,ou=groups,dc=x", "cn=achats,ou=groups,dc=x"]),
                    ],
                ),
                vec![
                    (Cell::Text("COMPTA".into()), Cell::Text("factures:modification".into())),
                    (Cell::Text("ACHATS".into()), Cell::Empty),
                ],
            ),
            (
                entry("uid=paul,ou=people,dc=x", &[("mail", &["paul@x.fr"]), ("departmentNumber", &["RH"])]),
                vec![(Cell::Text("RH".into()), Cell::Text("factures:consultation".into()))],
            ),
            (
                entry("uid=zoe,ou=people,dc=x", &[("mail", &["zoe@x.fr"]), ("memberOf", &["cn=other,dc=x"])]),
                vec![(Cell::Empty, Cell::Empty)],
            ),
        ];
        for (e, expect) in cases {
            let got: Vec<(Cell, Cell)> = e
                .records(1, &spec, &index)
                .into_iter()
                .map(|r| (r.get(Field::Service).to_owned(), r.get(Field::Rights).to_owned()))
                .collect();
            assert_eq!(got, expect, "{}", e.dn);
        }
    }

    #[test]
    fn decodes_entries_and_refuses_malformed_ones() {
        use ldap3::asn1::{ASNTag, OctetString, Sequence, Set, Tag};
        let octets = |s: &[u8]| Tag::OctetString(OctetString { inner: s.to_vec(), ..Default::default() });
        let attr = |name: &str, values: &[&[u8]]| {
            Tag::Sequence(Sequence {
                inner: vec![
                    octets(name.as_bytes()),
                    Tag::Set(Set { inner: values.iter().map(|v| octets(v)).collect(), ..Default::default() }),
                ],
                ..Default::default()
            })
        };
        let entry_tag = |inner: Vec<Tag>| {
            Tag::Sequence(Sequence { id: 4, class: ldap3::asn1::TagClass::Application, inner }).into_structure()
        };
        let good = entry_tag(vec![
            octets(b"uid=m,dc=x"),
            Tag::Sequence(Sequence {
                inner: vec![
                    attr("Mail", &[b"m@x.fr"]),
                    attr("objectGUID", &[&[0xff, 0xfe]]),
                    attr("MAIL", &[b"m2@x.fr"]),
                ],
                ..Default::default()
            }),
        ]);
        let e = Entry::parse(good).unwrap();
        assert_eq!(e.dn, "uid=m,dc=x");
        assert_eq!(e.first("mail").as_deref(), Some("m@x.fr"));
        // One attribute sent twice in two cases: one name, both values in order.
        assert_eq!(e.values("Mail").collect::<Vec<_>>(), ["m@x.fr", "m2@x.fr"]);
        assert_eq!(e.raw("OBJECTGUID"), &[vec![0xff, 0xfe]]);
        assert_eq!(Entry::parse(entry_tag(vec![octets(b"uid=m,dc=x")])), None);
        assert_eq!(Entry::parse(entry_tag(vec![octets(&[0xff]), Tag::Sequence(Sequence::default())])), None);
    }
}
