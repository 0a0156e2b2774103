//! A tiny browser over `Router::oneshot`: a cookie jar and forms.

use axum::{
    Router,
    body::Body,
    http::{Request, header},
};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Client {
    app: Router,
    cookies: Vec<(String, String)>,
    /// Extra request headers (Accept-Language…).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").unwrap_or_else(|| panic!("no csrf field in:\n{}", self.body))
    }

    /// Request ids listed in the queue table, in order.
    pub fn row_ids(&self) -> Vec<i64> {
        self.body.split("<tr data-id=\"").skip(1).map(|s| s[..s.find('"').unwrap()].parse().unwrap()).collect()
    }
}

pub fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Client {
    pub fn new(app: Router) -> Client {
        Client { app, cookies: Vec::new(), headers: Vec::new() }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(k, _)| k != name);
        self.cookies.push((name.to_string(), value.to_string()));
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Resp {
        let mut req = req;
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Resp { status, headers, bytes, body }
    }

    pub async fn get(&mut self, uri: &str) -> Resp {
        self.send(Request::get(uri), Body::empty()).await
    }

    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Resp {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        let req = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, Body::from(s.finish())).await
    }

    /// A bulk decision with the session's token `csrf` and `fields`.
    pub async fn bulk(&mut self, csrf: &str, fields: &[(&str, &str)]) -> Resp {
        let all: Vec<(&str, &str)> = [("csrf", csrf)].into_iter().chain(fields.iter().copied()).collect();
        self.post("/approvals/bulk", &all).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Resp {
        let page = self.get("/sign-in").await;
        assert_eq!(page.status, 200);
        let csrf = page.csrf();
        self.post("/sign-in", &[("email", email), ("password", password), ("csrf", &csrf), ("next", "/approvals")])
            .await
    }

    /// The session's CSRF token, read from the queue page.
    pub async fn csrf(&mut self) -> String {
        self.get("/approvals").await.csrf()
    }
}
