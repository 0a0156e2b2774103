//! Form bodies and query strings as ordered (name, value) pairs: checkboxes
//! repeat a name, which serde_urlencoded cannot hold.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};

#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(raw: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when missing or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// Was `name` sent at all, even blank?
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The query string's fields.
pub struct Query(pub Fields);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, Self::Rejection> {
        Ok(Query(Fields::parse(parts.uri.query().unwrap_or("").as_bytes())))
    }
}

/// A urlencoded form body's fields.
pub struct Form(pub Fields);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = axum::extract::rejection::BytesRejection;

    async fn from_request(req: Request, state: &S) -> Result<Form, Self::Rejection> {
        let body = Bytes::from_request(req, state).await?;
        Ok(Form(Fields::parse(&body)))
    }
}

/// A query string for links: the pairs, urlencoded.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::Fields;

    #[test]
    fn repeated_and_blank_fields() {
        let f = Fields::parse(b"ids=1&ids=7&motive=+&q=Dupont%20J");
        assert_eq!(f.all("ids").collect::<Vec<_>>(), ["1", "7"]);
        assert_eq!(f.get("motive"), None, "blank is missing");
        assert_eq!(f.get("q"), Some("Dupont J"));
        assert_eq!(f.get("nope"), None);
    }
}
