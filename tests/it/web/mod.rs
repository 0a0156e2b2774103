//! The approvals web console: HTTP-level tests of every route on the router
//! (`client`), and the real binary driven by a headless Chromium (`browser`).

pub(crate) mod browser;
mod client;
mod fixture;
mod routes;
