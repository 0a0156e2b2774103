//! Services: units inside a structure, identified by a code.

use std::{fmt, sync::Arc};

use serde::Serialize;

/// A service code as the portal knows it, trimmed. Codes are compared exactly;
/// matching a typed code against the configured list ignores case (see
/// `core::catalog`), which then hands out the configured spelling.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceCode(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceCodeError {
    #[error("the service code is empty")]
    Empty,
    #[error("the service code is longer than 100 characters")]
    TooLong,
    #[error("the service code contains a control character")]
    Control,
}

impl ServiceCode {
    pub fn parse(raw: &str) -> Result<ServiceCode, ServiceCodeError> {
        let t = raw.trim();
        if t.is_empty() {
            Err(ServiceCodeError::Empty)
        } else if t.chars().count() > 100 {
            Err(ServiceCodeError::TooLong)
        } else if t.chars().any(char::is_control) {
            Err(ServiceCodeError::Control)
        } else {
            Ok(ServiceCode(t.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceCode({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes() {
        assert_eq!(ServiceCode::parse(" COMPTA ").unwrap().as_str(), "COMPTA");
        assert_eq!(ServiceCode::parse("Serv 01-B").unwrap().as_str(), "Serv 01-B");
        assert_eq!(ServiceCode::parse("  "), Err(ServiceCodeError::Empty));
        assert_eq!(ServiceCode::parse("A\u{0}B"), Err(ServiceCodeError::Control));
        assert_eq!(ServiceCode::parse(&"x".repeat(101)), Err(ServiceCodeError::TooLong));
    }
}
