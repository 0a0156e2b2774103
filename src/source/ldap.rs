//! Directory sources: LDAP and Active Directory, read with paged searches
//! (RFC 2696) into the same [`Record`]s the spreadsheet readers produce.
//!
//! Safety first: any read that may be incomplete (connection lost, a size or
//! time limit, a referral, a missing page cookie, an empty result) is an
//! error, so the engine rejects the source instead of detaching everyone the
//! directory failed to return.
//!
//! ldap3's sync API runs its own Tokio runtime, which cannot start inside the
//! engine's; the connection therefore lives on a scoped thread that hands
//! records back through a bounded channel, and the sink runs on the caller's
//! thread.

mod entry;

use std::sync::Arc;

use chrono::NaiveDate;
use ldap3::{
    LdapConn, LdapConnSettings, LdapError, LdapResult, Scope, SearchOptions,
    controls::{Control, ControlType, PagedResults, RawControl},
};

use super::{SourceError, pipeline::Hand};
use crate::{
    config::LdapSource,
    core::record::{ColumnMap, Field, Record},
    secret::mask_url,
};

pub use self::entry::{
    Entry, GroupIndex, account_expired, end_date_cell, filetime_to_utc, normalize_dn, parse_generalized_time,
    uac_disabled,
};

/// The AD matching rule that follows nested group membership.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// Read for every entry: Active Directory's "has left" flags.
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
const AD_ATTRIBUTES: [&str; 2] = ["userAccountControl", "accountExpires"];

/// What to read and how to turn entries into records.
#[derive(Debug, Clone, Copy)]
pub struct DirectorySpec<'a> {
    pub source: &'a LdapSource,
    /// Field -> attribute name (`[sources.attributes]`).
    pub attributes: &'a ColumnMap,
    /// Fields that must be mapped, e.g. `[Email]`.
    pub required: &'a [Field],
    /// Today in `timezone`: an `accountExpires` on or before it means "left".
    pub today: NaiveDate,
    pub timezone: chrono_tz::Tz,
}

/// What was read, for logs and the run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryInfo {
    /// The URL, without credentials.
    pub origin: String,
    /// Entries returned by the search.
    pub entries: u64,
    /// Records handed to the sink (one per matching group rule).
    pub records: u64,
    /// Pages of the people search.
    pub pages: u64,
}

/// Reads the directory described by `spec`, handing records to `sink` in
/// the order the server returns entries. An error from the sink stops the
/// read and is returned as is.
pub fn read_directory(
    spec: &DirectorySpec<'_>,
    sink: &mut dyn FnMut(&Record) -> Result<(), SourceError>,
) -> Result<DirectoryInfo, SourceError> {
    let origin = mask_url(&spec.source.url);
    if let Some(field) = spec.required.iter().find(|f| !spec.attributes.contains(**f)) {
        return Err(SourceError::Unconfigured { path: origin, field: *field });
    }
    // ldap3's sync API runs its own runtime, which cannot nest in the
    // engine's: the reader has its own thread, records come back in batches.
    let mut records = 0u64;
    let mut counted = |record: &Record| {
        records += 1;
        sink(record)
    };
    let (entries, pages) = super::pipeline::pipelined(|out| Reader::new(spec).read(out), &mut counted)?;
    Ok(DirectoryInfo { origin, entries, records, pages })
}

/// Why a paged search stopped early.
enum Stop {
    Error(SourceError),
    /// The consumer went away (its sink failed): its error is reported.
    Closed,
}

impl From<SourceError> for Stop {
    fn from(e: SourceError) -> Stop {
        Stop::Error(e)
    }
}

struct Reader<'a> {
    spec: &'a DirectorySpec<'a>,
    origin: String,
}

impl<'a> Reader<'a> {
    fn new(spec: &'a DirectorySpec<'a>) -> Reader<'a> {
        Reader { spec, origin: mask_url(&spec.source.url) }
    }

    fn src(&self) -> &LdapSource {
        self.spec.source
    }

    fn error(&self, base: Option<&str>, message: impl Into<String>) -> SourceError {
        SourceError::Directory { url: self.origin.clone(), base: base.map(str::to_string), message: message.into() }
    }

    /// Connects, binds, reads group members, then pages through the people.
    /// Returns (entries, pages).
    fn read(&self, out: &mut Hand<'_>) -> Result<(u64, u64), SourceError> {
        let mut conn = self.connect()?;
        let result = self.bind(&mut conn).and_then(|()| self.search_people(&mut conn, out));
        // Best effort: the server drops the connection anyway.
        let _ = conn.unbind();
        match result {
            Ok(counts) => Ok(counts),
            Err(Stop::Error(e)) => Err(e),
            Err(Stop::Closed) => Ok((0, 0)),
        }
    }

    fn connect(&self) -> Result<LdapConn, SourceError> {
        let src = self.src();
        let mut settings = LdapConnSettings::new().set_conn_timeout(src.timeout).set_starttls(src.start_tls);
        let tls = src.start_tls || src.url.to_ascii_lowercase().starts_with("ldaps://");
        if tls {
            if src.tls_insecure {
                tracing::warn!(url = %self.origin, "tls_insecure: the directory's certificate is NOT verified");
                settings = settings.set_no_tls_verify(true);
            } else {
                settings = settings.set_config(Arc::new(self.tls_config()?));
            }
        }
        LdapConn::with_settings(settings, &src.url).map_err(|e| self.error(None, connect_message(&e, tls)))
    }

    /// Certificates are always verified: against `ca_file`, else the system roots.
    fn tls_config(&self) -> Result<rustls::ClientConfig, SourceError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        match &self.src().ca_file {
            Some(path) => {
                let shown = path.display();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| self.error(None, format!("ca_file {shown}: cannot read it: {e}")))?;
                for cert in certs {
                    let cert = cert.map_err(|e| self.error(None, format!("ca_file {shown}: not PEM: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| self.error(None, format!("ca_file {shown}: not a usable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(self.error(None, format!("ca_file {shown}: no certificate in it")));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // An odd system certificate is skipped, as TLS clients do.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(self.error(None, "no trusted CA certificates found on this system; set ca_file"));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.error(None, format!("TLS set-up: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }

    fn bind(&self, conn: &mut LdapConn) -> Result<(), Stop> {
        let src = self.src();
        let (Some(dn), Some(password)) = (&src.bind_dn, &src.password) else { return Ok(()) };
        let result = conn
            .with_timeout(src.timeout)
            .simple_bind(dn, password.expose())
            .map_err(|e| self.error(None, format!("bind as {dn} failed: {}", ldap_error(&e))))?;
        if result.rc != 0 {
            let why = if result.rc == 49 { "wrong bind DN or password" } else { "refused" };
            return Err(self.error(None, format!("bind as {dn}: {why} ({})", result_text(&result))).into());
        }
        Ok(())
    }

    fn search_people(&self, conn: &mut LdapConn, out: &mut Hand<'_>) -> Result<(u64, u64), Stop> {
        let src = self.src();
        let groups = self.group_index(conn)?;
        let mut attrs: Vec<String> = self.spec.attributes.iter().map(|(_, a)| a.to_string()).collect();
        attrs.extend(AD_ATTRIBUTES.iter().map(|a| a.to_string()));
        if !src.groups.is_empty() {
            attrs.push("memberOf".into());
        }
        attrs.sort_by_key(|a| a.to_ascii_lowercase());
        attrs.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let mut entries = 0u64;
        let pages = self.paged_search(conn, &src.base_dn, Scope::Subtree, &src.filter, &attrs, &mut |e| {
            entries += 1;
            let Some(entry) = e else { return Ok(()) };
            for record in entry.records(entries, self.spec, &groups) {
                // Fails only when the consumer stopped; its error is the one reported.
                out(record).map_err(|_| Stop::Closed)?;
            }
            Ok(())
        })?;
        if entries == 0 {
            return Err(self
                .error(
                    Some(&src.base_dn),
                    format!("the search {} returned no entries; refusing to treat everyone as gone", src.filter),
                )
                .into());
        }
        Ok((entries, pages))
    }

    /// Members of each group rule: from the group entry's `member` /
    /// `uniqueMember` (OpenLDAP without memberOf), and with `nested_groups`
    /// from a search with the AD in-chain matching rule. `memberOf` on the
    /// people entries counts as well (see `GroupIndex::matches`).
    fn group_index(&self, conn: &mut LdapConn) -> Result<GroupIndex, Stop> {
        let src = self.src();
        let mut index = GroupIndex::new(&src.groups);
        for (j, rule) in src.groups.iter().enumerate() {
            let mut found = false;
            let attrs = vec!["member".to_string(), "uniqueMember".to_string()];
            self.paged_search(conn, &rule.dn, Scope::Base, "(objectClass=*)", &attrs, &mut |e| {
                if let Some(entry) = e {
                    found = true;
                    for a in ["member", "uniquemember"] {
                        index.add_members(j, entry.values(a));
                    }
                }
                Ok(())
            })
            .map_err(|stop| match stop {
                Stop::Error(SourceError::Directory { message, .. }) if message.contains("rc=32") => {
                    Stop::Error(self.error(None, format!("group {} (groups[{j}]) does not exist", rule.dn)))
                }
                other => other,
            })?;
            if !found {
                return Err(self.error(None, format!("group {} (groups[{j}]) cannot be read", rule.dn)).into());
            }
            if src.nested_groups {
                let filter = nested_filter(&src.filter, &rule.dn);
                let attrs = vec!["1.1".to_string()];
                self.paged_search(conn, &src.base_dn, Scope::Subtree, &filter, &attrs, &mut |e| {
                    if let Some(entry) = e {
                        index.add_member(j, &entry.dn);
                    }
                    Ok(())
                })?;
            }
        }
        Ok(index)
    }

    /// One search, page by page, until the server's cookie is empty. Every
    /// page must end in success and carry the paged-results control; anything
    /// else means entries may be missing. `on_entry` gets `None` for an entry
    /// that could not be decoded (counted, then the read fails).
    fn paged_search(
        &self,
        conn: &mut LdapConn,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        on_entry: &mut dyn FnMut(Option<Entry>) -> Result<(), Stop>,
    ) -> Result<u64, Stop> {
        let src = self.src();
        let fail = |message: String| Stop::Error(self.error(Some(base), message));
        let timelimit = i32::try_from(src.timeout.as_secs()).unwrap_or(i32::MAX);
        let mut cookie: Vec<u8> = Vec::new();
        let mut pages = 0u64;
        loop {
            pages += 1;
            let mut control: RawControl = PagedResults { size: page_size(src.page_size), cookie }.into();
            // A server that cannot page must refuse, not answer unpaged (and truncated).
            control.crit = true;
            let mut stream = conn
                .with_timeout(src.timeout)
                .with_search_options(SearchOptions::new().timelimit(timelimit))
                .with_controls(control)
                .streaming_search(base, scope, filter, attrs.to_vec())
                .map_err(|e| fail(format!("search {filter} failed: {}", ldap_error(&e))))?;
            let mut referrals = 0u64;
            loop {
                match stream.next() {
                    Ok(Some(re)) if re.is_ref() => referrals += 1,
                    Ok(Some(re)) if re.is_intermediate() => {}
                    Ok(Some(re)) => match Entry::parse(re.0) {
                        Some(entry) => on_entry(Some(entry))?,
                        None => return Err(fail("the server sent an entry that cannot be decoded".into())),
                    },
                    Ok(None) => break,
                    Err(e) => {
                        return Err(fail(format!("the read stopped after page {pages}: {}", ldap_error(&e))));
                    }
                }
            }
            let result = stream.result();
            check_page(&result, referrals).map_err(|m| fail(format!("page {pages}: {m}")))?;
            match paged_cookie(&result.ctrls) {
                None => {
                    return Err(fail(format!(
                        "page {pages}: the server did not return the paged-results control (no page cookie)"
                    )));
                }
                Some(next) if next.is_empty() => return Ok(pages),
                Some(next) => cookie = next,
            }
        }
    }
}

fn page_size(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The filter of the people search restricted to members of `group_dn`,
/// nested groups included (AD only).
pub fn nested_filter(filter: &str, group_dn: &str) -> String {
    format!("(&{filter}(memberOf:{IN_CHAIN}:={}))", ldap3::ldap_escape(group_dn))
}

/// A page's end: success, and no referral left unfollowed.
fn check_page(result: &LdapResult, referrals: u64) -> Result<(), String> {
    let why = match result.rc {
        0 if referrals == 0 && result.refs.is_empty() => return Ok(()),
        0 => "continuation references (referrals) are not followed".to_string(),
        3 => "the server's time limit was hit".into(),
        4 => "the server's size limit was hit".into(),
        10 => format!("referral to {} not followed", result.refs.join(", ")),
        11 => "an administrative limit was hit".into(),
        12 => "the server does not support paged results".into(),
        _ => "the search did not complete".into(),
    };
    Err(format!("{why} ({}); the read is incomplete", result_text(result)))
}

/// The cookie of the paged-results response control: `None` when the
/// control is missing or malformed, empty at the last page.
fn paged_cookie(ctrls: &[Control]) -> Option<Vec<u8>> {
    use ldap3::asn1::parse_tag;
    let raw = ctrls.iter().find_map(|c| match c {
        Control(Some(ControlType::PagedResults), raw) => Some(raw),
        Control(None, raw) if raw.ctype == PAGED_RESULTS_OID => Some(raw),
        _ => None,
    })?;
    // Parsed here: ldap3's parser panics on a malformed value.
    let (_, tag) = parse_tag(raw.val.as_deref()?).ok()?;
    let mut parts = tag.expect_constructed()?.into_iter();
    let _size = parts.next()?;
    parts.next()?.expect_primitive()
}

fn result_text(r: &LdapResult) -> String {
    let mut s = r.to_string();
    if !r.refs.is_empty() {
        s.push_str(&format!(", referrals: {}", r.refs.join(", ")));
    }
    s
}

fn ldap_error(e: &LdapError) -> String {
    match e {
        LdapError::LdapResult { result } => result_text(result),
        LdapError::Timeout { .. } => "no answer within timeout_s".into(),
        other => other.to_string(),
    }
}

/// Names a refused certificate plainly: it is the usual cause.
fn connect_message(e: &LdapError, tls: bool) -> String {
    let text = ldap_error(e);
    let lower = text.to_ascii_lowercase();
    if tls && (lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("notvalidforname")) {
        format!("TLS: the directory's certificate was refused ({text}); check ca_file. Nothing was sent in clear text")
    } else if tls {
        format!("cannot connect with TLS: {text}")
    } else {
        format!("cannot connect: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_filters_escape_the_group() {
        assert_eq!(
            nested_filter("(objectClass=user)", "cn=Compta (Paris),ou=g,dc=x"),
            "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=cn=Compta \\28Paris\\29,ou=g,dc=x))"
        );
        assert!(ldap3::parse_filter(nested_filter("(mail=*)", "cn=a*b,dc=x")).is_ok());
    }

    #[test]
    fn page_ends() {
        let result = |rc: u32, refs: &[&str]| LdapResult {
            rc,
            matched: String::new(),
            text: "x".into(),
            refs: refs.iter().map(|s| s.to_string()).collect(),
            ctrls: vec![],
        };
        assert!(check_page(&result(0, &[]), 0).is_ok());
        for (rc, refs, referrals, expect) in [
            (0, &[][..], 1, "referrals) are not followed"),
            (4, &[][..], 0, "size limit"),
            (3, &[][..], 0, "time limit"),
            (10, &["ldap://other/dc=x"][..], 0, "referral to ldap://other/dc=x not followed"),
            (11, &[][..], 0, "administrative limit"),
            (12, &[][..], 0, "does not support paged results"),
            (52, &[][..], 0, "rc=52 (unavailable)"),
        ] {
            let got = check_page(&result(rc, refs), referrals).unwrap_err();
            assert!(got.contains(expect) && got.contains("incomplete"), "rc {rc}: {got}");
        }
    }

    #[test]
    fn page_cookies() {
        let control = |cookie: &[u8]| {
            let raw: RawControl = PagedResults { size: 0, cookie: cookie.to_vec() }.into();
            Control(Some(ControlType::PagedResults), raw)
        };
        assert_eq!(paged_cookie(&[control(b"abc")]), Some(b"abc".to_vec()));
        assert_eq!(paged_cookie(&[control(b"")]), Some(Vec::new()));
        assert_eq!(paged_cookie(&[]), None, "a missing control is not the last page");
        let garbage = RawControl { ctype: PAGED_RESULTS_OID.into(), crit: false, val: Some(vec![0xff, 0x01]) };
        assert_eq!(paged_cookie(&[Control(Some(ControlType::PagedResults), garbage)]), None);
    }
}
