//! The user's identity in Chorus Pro: an e-mail address.

use std::{fmt, sync::Arc};

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// A plausible e-mail address, trimmed, Unicode-NFC and lower-cased.
///
/// Parsing is the only way to build one, so two spellings of the same address
/// always compare equal. Cloning is cheap: big runs keep one per person in
/// several maps.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the e-mail address is empty")]
    Empty,
    #[error("the e-mail address has no '@'")]
    NoAt,
    #[error("the e-mail address has more than one '@'")]
    SeveralAt,
    #[error("the e-mail address contains white space")]
    Whitespace,
    #[error("the part before '@' is empty or invalid")]
    BadLocal,
    #[error("the domain after '@' is not a valid domain name")]
    BadDomain,
    #[error("the e-mail address is longer than 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let trimmed = super::text::trim(raw);
        // ASCII is already NFC and lower-cases the same either way; skipping
        // the normalisation saves a few percent of a plan.
        let normalized: String = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            trimmed.nfc().flat_map(char::to_lowercase).collect()
        };
        check(&normalized)?;
        Ok(Email(normalized.into()))
    }

    /// Is `s` an address as [`Email::parse`] writes it (parsing gives it back
    /// unchanged)? What a store holds: its reader checks each address so,
    /// without the allocations of parsing it again (ASCII, the usual case).
    pub(crate) fn is_normalized(s: &str) -> bool {
        if !s.is_ascii() {
            return Email::parse(s).is_ok_and(|e| *e.0 == *s);
        }
        // ASCII is NFC already; `parse` would lower-case it and trim it, but
        // white space anywhere fails `check`, so untrimmed text fails too.
        !s.bytes().any(|b| b.is_ascii_uppercase()) && check(s).is_ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An address that was an `Email` already, kept as text (the desired
    /// state's compact rows): parsed once, not twice.
    pub(crate) fn from_normalized(s: &str) -> Email {
        debug_assert_eq!(Email::parse(s).as_ref().map(Email::as_str), Ok(s), "not a parsed address");
        Email(Arc::from(s))
    }
}

/// The rules a trimmed, NFC, lower-cased address must follow.
fn check(normalized: &str) -> Result<(), EmailError> {
    if normalized.is_ascii() { check_ascii(normalized.as_bytes()) } else { check_chars(normalized) }
}

/// [`check_chars`] for ASCII, byte by byte through a table (characters are
/// bytes; an ASCII character is white space or control exactly when it is
/// at most ' ' or DEL): a store's million addresses are checked when read,
/// and a source's when mapped.
fn check_ascii(s: &[u8]) -> Result<(), EmailError> {
    const LOCAL: u8 = 1;
    const LABEL: u8 = 2;
    /// What each byte may be: in a local part, in a domain label.
    const CLASS: [u8; 256] = {
        let mut class = [0; 256];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            class[b] = if c <= b' ' || c == 0x7f {
                0
            } else {
                let forbidden =
                    matches!(c, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'\\' | b',' | b';' | b':' | b'"' | b'@');
                let label = c.is_ascii_alphanumeric() || c == b'-';
                (if forbidden { 0 } else { LOCAL }) | (if label { LABEL } else { 0 })
            };
            b += 1;
        }
        class
    };
    let class = |b: &u8| CLASS[usize::from(*b)];
    if s.is_empty() {
        return Err(EmailError::Empty);
    }
    if s.len() > 254 {
        return Err(EmailError::TooLong);
    }
    // Folds rather than early exits: a few dozen bytes, no branch per byte.
    if s.iter().fold(false, |space, &b| space | (b <= b' ') | (b == 0x7f)) {
        return Err(EmailError::Whitespace);
    }
    let at = s.iter().position(|&b| b == b'@').ok_or(EmailError::NoAt)?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if domain.contains(&b'@') {
        return Err(EmailError::SeveralAt);
    }
    let forbidden = local.iter().fold(0, |all, b| all | (!class(b) & LOCAL)) != 0;
    let dots = local.windows(2).fold(false, |dots, w| dots | (w == b".."));
    if local.is_empty() || local.len() > 64 || local[0] == b'.' || local[local.len() - 1] == b'.' || dots || forbidden {
        return Err(EmailError::BadLocal);
    }
    let label_ok = |l: &[u8]| {
        !l.is_empty()
            && l.len() <= 63
            && l.first() != Some(&b'-')
            && l.last() != Some(&b'-')
            && l.iter().all(|b| class(b) & LABEL != 0)
    };
    let tld = domain.rsplit(|&b| b == b'.').next().unwrap_or_default();
    let tld_ok = tld.len() >= 2 && !tld.iter().all(u8::is_ascii_digit);
    if !(domain.contains(&b'.') && domain.split(|&b| b == b'.').all(label_ok) && tld_ok) {
        return Err(EmailError::BadDomain);
    }
    Ok(())
}

/// [`check`] for any text.
fn check_chars(normalized: &str) -> Result<(), EmailError> {
    if normalized.is_empty() {
        return Err(EmailError::Empty);
    }
    if normalized.chars().count() > 254 {
        return Err(EmailError::TooLong);
    }
    if normalized.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::Whitespace);
    }
    let mut parts = normalized.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), None, _) => return Err(EmailError::NoAt),
        (Some(l), Some(d), None) => (l, d),
        _ => return Err(EmailError::SeveralAt),
    };
    if !valid_local(local) {
        return Err(EmailError::BadLocal);
    }
    if !valid_domain(domain) {
        return Err(EmailError::BadDomain);
    }
    Ok(())
}

fn valid_local(local: &str) -> bool {
    const FORBIDDEN: &[char] = &['(', ')', '<', '>', '[', ']', '\\', ',', ';', ':', '"'];
    !local.is_empty()
        && local.chars().count() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.contains(FORBIDDEN)
}

fn valid_domain(domain: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().count() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    // Split twice rather than collected: no allocation per address.
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let tld_ok = tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit());
    domain.contains('.') && domain.split('.').all(label_ok) && tld_ok
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Email, EmailError};

    fn check(input: &str, expect: Result<&str, EmailError>) {
        let got = Email::parse(input);
        assert_eq!(got.as_ref().map(Email::as_str), expect.as_ref().map(|s| *s), "parse({input:?})");
    }

    #[test]
    fn parses_and_normalizes() {
        check("marie.dupont@acme.fr", Ok("marie.dupont@acme.fr"));
        check("  Marie.Dupont@ACME.fr \t", Ok("marie.dupont@acme.fr"));
        // NFD "é" (e + combining acute) becomes the single NFC code point.
        check("ame\u{301}lie@acme.fr", Ok("am\u{e9}lie@acme.fr"));
        check("a+tag@sub.acme.co.uk", Ok("a+tag@sub.acme.co.uk"));
        check("jean-luc.o'neil@acme-groupe.fr", Ok("jean-luc.o'neil@acme-groupe.fr"));
        // The ASCII shortcut and the Unicode path give the same address.
        check("MARIE.DUPONT@ACME.FR", Ok("marie.dupont@acme.fr"));
        check("\u{c9}LODIE@ACME.FR", Ok("\u{e9}lodie@acme.fr"));
        check("\x0bmarie@acme.fr\x0c", Ok("marie@acme.fr"));
    }

    #[test]
    fn rejects_implausible_addresses() {
        check("", Err(EmailError::Empty));
        check("   ", Err(EmailError::Empty));
        check("marie.dupont", Err(EmailError::NoAt));
        check("a@b@acme.fr", Err(EmailError::SeveralAt));
        check("marie dupont@acme.fr", Err(EmailError::Whitespace));
        check("@acme.fr", Err(EmailError::BadLocal));
        check(".marie@acme.fr", Err(EmailError::BadLocal));
        check("marie..d@acme.fr", Err(EmailError::BadLocal));
        check("marie<d>@acme.fr", Err(EmailError::BadLocal));
        check("marie@acme", Err(EmailError::BadDomain));
        check("marie@acme.", Err(EmailError::BadDomain));
        check("marie@-acme.fr", Err(EmailError::BadDomain));
        check("marie@acme-.fr", Err(EmailError::BadDomain));
        check("marie@acme.f-", Err(EmailError::BadDomain));
        check("marie@acme.f", Err(EmailError::BadDomain));
        check("marie@10.0.0.1", Err(EmailError::BadDomain));
        check("marie@acme_fr.fr", Err(EmailError::BadDomain));
        check(&format!("{}@acme.fr", "a".repeat(65)), Err(EmailError::BadLocal));
        check(&format!("a@{}.fr", "b".repeat(260)), Err(EmailError::TooLong));
    }

    /// `is_normalized` answers what parsing and comparing would: stored
    /// addresses are checked with it instead of parsed again.
    #[test]
    fn is_normalized_is_parse_giving_the_text_back() {
        for (text, expect) in [
            ("marie.dupont@acme.fr", true),
            ("am\u{e9}lie@acme.fr", true),
            ("Marie.Dupont@acme.fr", false),
            (" marie@acme.fr", false),
            ("marie@acme.fr\t", false),
            ("ame\u{301}lie@acme.fr", false),
            ("\u{c9}lodie@acme.fr", false),
            ("marie@acme", false),
            ("marie..d@acme.fr", false),
            ("", false),
        ] {
            assert_eq!(Email::is_normalized(text), expect, "{text:?}");
        }
    }

    proptest! {
        /// The byte-wise rules are the character-wise ones on ASCII.
        #[test]
        fn ascii_rules_are_the_general_rules(text in "[ -~\t\x0b\x00\x7f]{0,12}(@[a-cA-C.@0-9_\\-]{0,10})?") {
            prop_assert_eq!(super::check_ascii(text.as_bytes()), super::check_chars(&text));
        }

        /// … on near addresses, where every rule gets its turn.
        #[test]
        fn ascii_rules_are_the_general_rules_near_addresses(
            local in "[ -~]{0,6}", domain in "([ab0-9\\-]{0,3}[.]){0,3}[abA0-9_ @\\-]{0,3}",
        ) {
            let text = format!("{local}@{domain}");
            prop_assert_eq!(super::check_ascii(text.as_bytes()), super::check_chars(&text));
        }

        /// … and at the length limits (64 before '@', 63 per label, 254 in all).
        #[test]
        fn ascii_rules_are_the_general_rules_at_the_limits(
            local in 60..70usize, labels in prop::collection::vec(60..66usize, 1..5), tld in "[a-c0-9]{1,3}",
        ) {
            let domain: Vec<String> = labels.iter().map(|&n| "b".repeat(n)).collect();
            let text = format!("{}@{}.{tld}", "a".repeat(local), domain.join("."));
            prop_assert_eq!(super::check_ascii(text.as_bytes()), super::check_chars(&text));
        }

        #[test]
        fn is_normalized_agrees_with_parse(text in "[ a-cA-C.@\\-_0-9\u{e9}\u{c9}\u{301}\t]{0,24}") {
            let parsed = Email::parse(&text).is_ok_and(|e| e.as_str() == text);
            prop_assert_eq!(Email::is_normalized(&text), parsed);
        }

        #[test]
        fn is_normalized_agrees_with_parse_on_near_addresses(
            local in "[a-cA.\\-]{0,5}", domain in "[a-cB0-9.\\-]{0,8}", tld in "[a-c0-9]{0,3}",
        ) {
            let text = format!("{local}@{domain}.{tld}");
            let parsed = Email::parse(&text).is_ok_and(|e| e.as_str() == text);
            prop_assert_eq!(Email::is_normalized(&text), parsed);
        }
    }
}
