//! chorus-sync keeps Chorus Pro attachments in line with HR exports and the
//! corporate directory. See ARCHITECTURE.md for the map of this crate.

pub(crate) mod caught;
pub mod config;
pub mod core;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod error_chain;
pub mod notify;
pub mod ops;
pub mod report;
pub mod secret;
pub mod source;
pub mod store;
pub mod web;
