//! Secrets (passwords, database URLs with credentials) that must never reach
//! a log, a report or `check-config`'s output.

use std::fmt;

/// Holds a secret; `Debug` and `Display` print `[REDACTED]`. Read it with
/// `expose`, only where it is handed to the component that needs it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A connection URL with any password replaced by `[REDACTED]`, for logs and
/// `check-config`: `postgres://app:[REDACTED]@db/chorus`.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return mask_query_password(url);
    };
    let userinfo = &authority[..at];
    let masked_userinfo = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:[REDACTED]"),
        None => userinfo.to_string(),
    };
    let masked = format!("{}://{}{}", &url[..scheme_end], masked_userinfo, &rest[at..]);
    mask_query_password(&masked)
}

/// `?password=…` in a query string is a secret too.
fn mask_query_password(url: &str) -> String {
    let Some(q) = url.find('?') else { return url.to_string() };
    let (base, query) = url.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                format!("{k}=[REDACTED]")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_are_masked() {
        for (input, expect) in [
            ("sqlite://chorus-sync.db", "sqlite://chorus-sync.db"),
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/test"),
            ("postgres://app:s3cr%40t@db:5432/chorus", "postgres://app:[REDACTED]@db:5432/chorus"),
            ("postgres://app:p@ss@db/chorus", "postgres://app:[REDACTED]@db/chorus"),
            ("postgres://db/chorus?user=app&password=x", "postgres://db/chorus?user=app&password=[REDACTED]"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(mask_url(input), expect, "mask_url({input:?})");
        }
    }
}
