//! Rights (habilitations): per application, read (`consultation`) or write
//! (`modification`).

use std::{fmt, sync::Arc};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read-only; `modification` includes it, hence the order.
    Consultation,
    Modification,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Consultation => "consultation",
            Mode::Modification => "modification",
        }
    }
}

/// A canonical set of rights: one mode per application, applications
/// lower-cased and sorted. Written `app:mode,app:mode`. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rights(Arc<[(Box<str>, Mode)]>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RightsError {
    #[error("{0:?} is not of the form application:mode")]
    NotAppMode(String),
    #[error("{0:?}: the application name is empty")]
    EmptyApplication(String),
    #[error("{0:?}: the mode must be consultation or modification")]
    BadMode(String),
}

impl Rights {
    /// Parses `app:mode` items separated by `,` or `|`. Empty items are
    /// ignored, so `""` is the empty set (the portal's defaults).
    pub fn parse(raw: &str) -> Result<Rights, RightsError> {
        let mut items = Vec::new();
        for item in raw.split([',', '|']).map(str::trim).filter(|s| !s.is_empty()) {
            items.push(parse_item(item)?);
        }
        Ok(Rights::from_items(items))
    }

    /// Builds the canonical set; when an application appears twice the
    /// stronger mode wins, since `modification` includes `consultation`.
    pub fn from_items(items: impl IntoIterator<Item = (Box<str>, Mode)>) -> Rights {
        let mut v: Vec<(Box<str>, Mode)> = items.into_iter().collect();
        v.sort();
        // After sorting, the strongest mode of each application comes last.
        let mut out: Vec<(Box<str>, Mode)> = Vec::with_capacity(v.len());
        for (app, mode) in v {
            match out.last_mut() {
                Some((last, m)) if *last == app => *m = (*m).max(mode),
                _ => out.push((app, mode)),
            }
        }
        Rights(out.into())
    }

    /// Union of two sets, the stronger mode winning per application.
    pub fn union(&self, other: &Rights) -> Rights {
        if other.is_empty() || self == other {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        Rights::from_items(self.iter().chain(other.iter()).map(|(a, m)| (a.into(), m)))
    }

    /// True when `after` takes away an application or lowers a mode that
    /// `self` grants: a demotion.
    pub fn is_reduced_by(&self, after: &Rights) -> bool {
        self.iter().any(|(app, mode)| after.mode_of(app).is_none_or(|m| m < mode))
    }

    pub fn mode_of(&self, app: &str) -> Option<Mode> {
        self.0.iter().find(|(a, _)| &**a == app).map(|(_, m)| *m)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Mode)> {
        self.0.iter().map(|(a, m)| (&**a, *m))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_item(item: &str) -> Result<(Box<str>, Mode), RightsError> {
    let (app, mode) = item.rsplit_once(':').ok_or_else(|| RightsError::NotAppMode(item.to_string()))?;
    let app = crate::domain::text::fold(app);
    if app.is_empty() {
        return Err(RightsError::EmptyApplication(item.to_string()));
    }
    let mode = match crate::domain::text::fold(mode).as_str() {
        "consultation" => Mode::Consultation,
        "modification" => Mode::Modification,
        _ => return Err(RightsError::BadMode(item.to_string())),
    };
    Ok((app.into(), mode))
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (app, mode)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{app}:{}", mode.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

impl Serialize for Rights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, RightsError>) {
        let got = Rights::parse(input).map(|r| r.to_string());
        assert_eq!(got, expect.map(str::to_string), "parse({input:?})");
    }

    #[test]
    fn parses_to_canonical_form() {
        check("", Ok(""));
        check("factures:modification", Ok("factures:modification"));
        check(" Factures : Modification ", Ok("factures:modification"));
        check("mémoires:consultation|factures:modification", Ok("factures:modification,memoires:consultation"));
        check("factures:consultation,factures:modification", Ok("factures:modification"));
        check("factures:modification, ,", Ok("factures:modification"));
        check("factures", Err(RightsError::NotAppMode("factures".into())));
        check(":modification", Err(RightsError::EmptyApplication(":modification".into())));
        check("factures:ecriture", Err(RightsError::BadMode("factures:ecriture".into())));
    }

    #[test]
    fn canonical_form_round_trips() {
        let r = Rights::parse("b:consultation,a:modification").unwrap();
        assert_eq!(Rights::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn union_and_reduction() {
        let read = Rights::parse("factures:consultation").unwrap();
        let write = Rights::parse("factures:modification").unwrap();
        let both = Rights::parse("factures:consultation,engagements:modification").unwrap();
        assert_eq!(read.union(&write), write);
        assert_eq!(read.union(&both), both);
        assert!(write.is_reduced_by(&read));
        assert!(!read.is_reduced_by(&write));
        assert!(both.is_reduced_by(&read), "losing an application is a reduction");
        assert!(!Rights::default().is_reduced_by(&read));
        assert!(read.is_reduced_by(&Rights::default()));
    }
}
