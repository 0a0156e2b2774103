//! The store: current attachments, approval requests, history, runs.
