//! The one integration test binary: the real `chorus-sync` executable run
//! against real SQLite files and real PostgreSQL schemas.

mod support;

mod bad_input;
mod bench;
mod cli;
mod daemon;
mod formats;
mod guards;
mod hostile;
mod ldap;
mod slapd;
mod story;
mod workflow;
