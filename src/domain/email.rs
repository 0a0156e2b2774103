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
        let trimmed = raw.trim();
        // ASCII is already NFC and lower-cases the same either way; skipping
        // the normalisation saves a few percent of a plan.
        let normalized: String = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            trimmed.nfc().flat_map(char::to_lowercase).collect()
        };
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
        Ok(Email(normalized.into()))
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
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.chars().count() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld_ok = labels.last().is_some_and(|t| t.chars().count() >= 2 && !t.chars().all(|c| c.is_ascii_digit()));
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
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
        check("marie@acme.f", Err(EmailError::BadDomain));
        check("marie@10.0.0.1", Err(EmailError::BadDomain));
        check("marie@acme_fr.fr", Err(EmailError::BadDomain));
        check(&format!("{}@acme.fr", "a".repeat(65)), Err(EmailError::BadLocal));
        check(&format!("a@{}.fr", "b".repeat(260)), Err(EmailError::TooLong));
    }
}
