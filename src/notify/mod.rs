//! E-mail notifications: digests after a run that raised requests, and
//! reminders of requests pending too long.
//!
//! `digest` composes the mails (pure, table-tested); `smtp` sends them with
//! lettre over tokio and rustls (ring). A mail that cannot be sent is the
//! caller's to log; it never undoes the run it is about.

pub mod digest;
mod smtp;

pub use digest::{DigestInput, Mail, ReminderInput, digests, reminders};
pub use smtp::{Mailer, NotifyError};
