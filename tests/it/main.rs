//! The one integration test binary: the real `chorus-sync` executable run
//! against real SQLite files and real PostgreSQL schemas.

mod support;

mod bad_input;
mod bench;
mod cli;
mod daemon;
mod faults;
mod formats;
mod guards;
mod hostile;
mod ldap;
mod notify;
mod ops;
mod slapd;
mod story;
mod unavailable;
mod web;
mod workflow;
