//! Anomalies: what a run noticed but must not act on by itself.

use std::{fmt, sync::Arc};

use serde::Serialize;

use crate::domain::StructureId;

/// What a source read: its name, the file (or directory) and the sheet.
/// One per source and run, shared by the locations of all its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceFile {
    pub source: Box<str>,
    /// File path or directory URL the source read.
    pub origin: Box<str>,
    pub sheet: Option<Box<str>>,
}

impl SourceFile {
    pub fn new(source: &str, origin: &str, sheet: Option<&str>) -> Arc<SourceFile> {
        Arc::new(SourceFile { source: source.into(), origin: origin.into(), sheet: sheet.map(Into::into) })
    }
}

/// Where something was read: a source, a file, a sheet, a row, a column.
///
/// The source, file and sheet sit behind one shared pointer: a location is
/// kept for every placement of the desired state, and three `Arc<str>`s
/// made it 112 bytes instead of 56 (and three reference counts to bump).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: Arc<SourceFile>,
    /// 1-based row in the file or sheet.
    pub row: Option<u64>,
    /// The column header as configured, or the directory attribute.
    pub column: Option<Arc<str>>,
    /// The directory entry (its DN) for directory sources.
    pub entry: Option<Arc<str>>,
}

impl fmt::Display for Location {
    /// `samples/hr.xlsx, sheet Personnel, row 12, column Courriel`, or
    /// `ldaps://ldap.example.org, entry uid=marie,ou=people,dc=example,dc=org, column mail`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file.origin)?;
        if let Some(sheet) = &self.file.sheet {
            write!(f, ", sheet {sheet}")?;
        }
        if let Some(entry) = &self.entry {
            write!(f, ", entry {entry}")?;
        }
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyCode {
    /// The row has no e-mail address.
    MissingEmail,
    InvalidEmail,
    /// The structure cell is not a well-formed identifier.
    InvalidStructure,
    /// A well-formed identifier that is not configured (a client's SIRET).
    UnknownStructure,
    /// A configured structure that another source governs.
    StructureOutOfScope,
    /// No structure column value and no `default_structure`.
    NoStructure,
    InvalidService,
    UnknownService,
    InvalidRights,
    InvalidDate,
    /// Several rows for one person disagree on who they are.
    ConflictingRows,
    /// The employee id now comes with another e-mail address.
    EmailChanged,
    /// A change that would detach or demote a main manager.
    MainManagerProtected,
    /// Absent from the source, but still within `grace_runs`.
    AbsentInGrace,
}

impl AnomalyCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyCode::MissingEmail => "missing_email",
            AnomalyCode::InvalidEmail => "invalid_email",
            AnomalyCode::InvalidStructure => "invalid_structure",
            AnomalyCode::UnknownStructure => "unknown_structure",
            AnomalyCode::StructureOutOfScope => "structure_out_of_scope",
            AnomalyCode::NoStructure => "no_structure",
            AnomalyCode::InvalidService => "invalid_service",
            AnomalyCode::UnknownService => "unknown_service",
            AnomalyCode::InvalidRights => "invalid_rights",
            AnomalyCode::InvalidDate => "invalid_date",
            AnomalyCode::ConflictingRows => "conflicting_rows",
            AnomalyCode::EmailChanged => "email_changed",
            AnomalyCode::MainManagerProtected => "main_manager_protected",
            AnomalyCode::AbsentInGrace => "absent_in_grace",
        }
    }
}

impl fmt::Display for AnomalyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Anomaly {
    /// The structure it concerns, when known (for per-structure counts).
    pub structure: Option<StructureId>,
    pub location: Option<Location>,
    /// The e-mail address as read, normalised when it parsed.
    pub email: Option<String>,
    pub code: AnomalyCode,
    pub message: String,
}

impl Anomaly {
    /// The source's name, empty for anomalies not tied to a source.
    pub fn source(&self) -> &str {
        self.location.as_ref().map_or("", |l| &l.file.source)
    }

    /// The `location` report column: the place in the source, else the structure.
    pub fn location_text(&self) -> String {
        match (&self.location, &self.structure) {
            (Some(l), _) => l.to_string(),
            (None, Some(s)) => format!("structure {s}"),
            (None, None) => String::new(),
        }
    }
}
