//! The layout every page shares, and the language middleware.

use axum::{
    extract::{FromRequestParts, Request},
    http::{HeaderValue, header, request::Parts},
    middleware::Next,
    response::Response,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{
    auth::cookie,
    form::{Fields, encode},
    i18n::Lang,
};

const LANG_COOKIE: &str = "chorus_lang";

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1e1e1e;background:#f6f6f6}
header{background:#000091;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#fff}header .who{margin-left:auto}header form{display:inline}
a.button{display:inline-block;background:#000091;color:#fff;padding:.4em 1em;text-decoration:none;border-radius:.2em}
.badge{background:#e1000f;color:#fff;border-radius:1em;padding:0 .5em;font-weight:bold}
main{padding:1em 1.2em;max-width:80em}
table{border-collapse:collapse;background:#fff;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}
form.filters{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin-bottom:.5em}
label{display:flex;flex-direction:column;font-size:.9em}
.error{background:#fee;border:1px solid #e1000f;padding:.5em}
.ok{background:#efe;border:1px solid #18753c;padding:.5em}
.actions{display:flex;gap:2em;flex-wrap:wrap;margin:1em 0}
.actions form{background:#fff;border:1px solid #ccc;padding:.8em}
textarea{width:22em;height:4em}
button{padding:.3em .9em;cursor:pointer}
.state-pending{color:#b34000}.state-approved{color:#18753c}.state-refused{color:#e1000f}
";

/// Picks the page language: `?lang=` (remembered in a cookie), else the
/// cookie, else Accept-Language, else French; sets the security headers.
pub(crate) async fn language(mut req: Request, next: Next) -> Response {
    let asked = req.uri().query().and_then(|q| Fields::parse(q.as_bytes()).get("lang").and_then(Lang::parse));
    let lang = asked
        .or_else(|| cookie(req.headers(), LANG_COOKIE).and_then(Lang::parse))
        .or_else(|| req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok().and_then(Lang::from_accept_language))
        .unwrap_or_default();
    req.extensions_mut().insert(lang);
    let mut resp = next.run(req).await;
    // No framing (clickjacking), no script at all, forms only to this site,
    // and no copy of a manager's pages in shared caches.
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Some(l) = asked {
        let c = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict", l.code());
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Self::Rejection> {
        Ok(parts.extensions.get::<Lang>().copied().unwrap_or_default())
    }
}

/// `refresh`: a page to move on to at once.
fn head(_lang: Lang, title: &str, refresh: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        head {
            meta charset="utf-8";
            @if let Some(url) = refresh { meta http-equiv="refresh" content={ "0; url=" (url) }; }
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " — chorus-sync" }
            style { (PreEscaped(CSS)) }
        }
    }
}

/// A page with only a message (errors, sign-in).
pub(crate) fn bare(lang: Lang, title: &str, message: &str) -> Markup {
    html! {
        html lang=(lang.code()) {
            (head(lang, title, None))
            body { main { p.error { (message) } p { a href="/approvals" { "chorus-sync" } } } }
        }
    }
}

/// The end of a sign-in that arrives from another site (the identity
/// provider): the browser sends no SameSite=Strict cookie on a redirect
/// chain that started elsewhere, so this page sends it on from here.
pub(crate) fn continue_to(lang: Lang, next: &str) -> Markup {
    let t = lang.texts();
    html! {
        html lang=(lang.code()) {
            (head(lang, t.signed_in, Some(next)))
            body { main { p.ok #signed-in { (t.signed_in) } p { a #continue href=(next) { (t.continue_) } } } }
        }
    }
}

/// A sign-in that did not go through, and the way back to the sign-in page.
pub(crate) fn sign_in_refused(lang: Lang, message: &str) -> Markup {
    let t = lang.texts();
    html! {
        html lang=(lang.code()) {
            (head(lang, t.sign_in, None))
            body {
                header { strong { (t.app) } }
                main {
                    h1 { (t.sign_in) }
                    p.error role="alert" #sign-in-refused { (message) }
                    p { a href="/sign-in" { (t.back_to_sign_in) } }
                }
            }
        }
    }
}

/// Who is signed in, for the header.
pub(crate) struct Chrome<'a> {
    pub viewer: &'a super::Viewer,
    pub pending: u64,
}

pub(crate) fn layout(chrome: &Chrome<'_>, title: &str, body: Markup) -> Markup {
    let lang = chrome.viewer.lang;
    let t = lang.texts();
    let other = if lang == Lang::Fr { ("en", "English") } else { ("fr", "Français") };
    html! {
        html lang=(lang.code()) {
            (head(lang, title, None))
            body {
                header {
                    strong { (t.app) }
                    a href="/approvals" { (t.queue) " " span.badge #pending-count { (chrome.pending) } " " (t.pending) }
                    a href="/runs" { (t.runs) }
                    a href="/users" { (t.users) }
                    a href={ (chrome.viewer.here) @if !chrome.viewer.here.ends_with('?') { "&" } "lang=" (other.0) } hreflang=(other.0) #lang { (other.1) }
                    span.who {
                        (chrome.viewer.email.as_str()) " "
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(chrome.viewer.csrf);
                            button type="submit" #sign-out { (t.sign_out) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The sign-in page; `oidc`: the provider's button label, when one is configured.
pub(crate) fn sign_in(
    lang: Lang,
    csrf: &str,
    next: &str,
    email: Option<&str>,
    error: Option<&str>,
    oidc: Option<&str>,
) -> Markup {
    let t = lang.texts();
    let other = if lang == Lang::Fr { ("en", "English") } else { ("fr", "Français") };
    html! {
        html lang=(lang.code()) {
            (head(lang, t.sign_in, None))
            body {
                header {
                    strong { (t.app) }
                    a href={ "/sign-in?" (encode([("next", next), ("lang", other.0)])) } hreflang=(other.0) #lang { (other.1) }
                }
                main {
                    h1 { (t.sign_in) }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    @if let Some(label) = oidc {
                        p { a.button #sign-in-oidc href={ "/auth/oidc/start?" (encode([("next", next)])) } { (t.sign_in_with) " " (label) } }
                        p { (t.or_with_password) }
                    }
                    form method="post" action="/sign-in" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        p { label { (t.email) input type="email" name="email" required autocomplete="username" value=(email.unwrap_or("")); } }
                        p { label { (t.password) input type="password" name="password" required autocomplete="current-password"; } }
                        p { button type="submit" #sign-in { (t.sign_in) } }
                    }
                }
            }
        }
    }
}

/// A `<select>` with an "all" first option.
pub(crate) fn select(name: &str, label: &str, all: &str, options: &Options, chosen: Option<&str>) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" { (all) }
                @for (value, text) in options {
                    option value=(value) selected[chosen == Some(value.as_str())] { (text) }
                }
            }
        }
    }
}

/// `<select>` options: (value, text).
pub(crate) type Options = Vec<(String, String)>;

/// The viewer's structures and their known services, as `<select>` options.
pub(crate) fn scope_options(state: &super::WebState, viewer: &super::Viewer) -> (Options, Options) {
    let catalog = &state.config().catalog;
    let theirs: Vec<_> = viewer.structures.iter().filter_map(|id| catalog.get(id)).collect();
    let structures = theirs.iter().map(|s| (s.id.to_string(), format!("{} ({})", s.name, s.id))).collect();
    let mut services: Vec<(String, String)> =
        theirs.iter().flat_map(|s| s.services.iter().flatten()).map(|c| (c.to_string(), c.to_string())).collect();
    services.sort();
    services.dedup();
    (structures, services)
}
