//! Values a bulk read repeats on most rows (a handful of structures,
//! services and sets of rights; a person's address on their consecutive
//! rows), parsed once per distinct text and shared. Used by the store's
//! reads and by `import-current`.

use super::{Email, IdentifierType, Rights, ServiceCode, StructureId};

/// Distinct texts kept of each kind: a few thousand services is a large
/// organisation; a file with a different text on every row gains nothing
/// from keeping them, and must not hold them twice.
const KEPT: usize = 10_000;

/// Parses each distinct text once (up to [`KEPT`] of each kind) and hands
/// out shared values: a million rows each holding their own parse took
/// hundreds of megabytes more (an allocation and a parse per row).
#[derive(Default)]
pub struct Interner {
    structures: foldhash::HashMap<Box<str>, StructureId>,
    services: foldhash::HashMap<Box<str>, ServiceCode>,
    rights: foldhash::HashMap<Box<str>, Rights>,
    last_email: Option<Email>,
}

/// The value of `s` in `kept`, or `parse`d and kept while there is room.
fn shared<T: Clone, E>(
    kept: &mut foldhash::HashMap<Box<str>, T>,
    s: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(v) = kept.get(s) {
        return Ok(v.clone());
    }
    let v = parse(s)?;
    if kept.len() < KEPT {
        kept.insert(s.into(), v.clone());
    }
    Ok(v)
}

impl Interner {
    /// A structure id as stored: already canonical (SIRETs without
    /// separators), which the generic rule (trimmed, no control character)
    /// rebuilds as is.
    pub fn structure(&mut self, s: &str) -> Result<StructureId, String> {
        shared(&mut self.structures, s, |s| StructureId::parse(IdentifierType::Autre, s))
    }

    /// `''` is the structure level.
    pub fn service(&mut self, s: &str) -> Result<Option<ServiceCode>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        shared(&mut self.services, s, |s| ServiceCode::parse(s).map_err(|e| format!("{s:?}: {e}"))).map(Some)
    }

    pub fn rights(&mut self, s: &str) -> Result<Rights, String> {
        shared(&mut self.rights, s, |s| Rights::parse(s).map_err(|e| e.to_string()))
    }

    /// A person's attachments are read one after the other: their address repeats.
    pub fn email(&mut self, s: &str) -> Result<Email, String> {
        if let Some(last) = &self.last_email
            && last.as_str() == s
        {
            return Ok(last.clone());
        }
        let v = Email::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
        self.last_email = Some(v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_past_the_kept_count_are_parsed_each_time_and_not_kept() {
        let mut interner = Interner::default();
        for n in 0..KEPT + 5 {
            let code = interner.service(&format!("S{n}")).unwrap().unwrap();
            assert_eq!(code.as_str(), format!("S{n}"));
        }
        assert_eq!(interner.services.len(), KEPT);
        // A kept text answers the kept value: the same allocation.
        let (a, b) = (interner.service("S1").unwrap().unwrap(), interner.service("S1").unwrap().unwrap());
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(interner.service("").unwrap(), None);
        assert!(interner.rights("factures:n'importe").is_err());
        assert_eq!(interner.rights("").unwrap(), Rights::default());
    }
}
