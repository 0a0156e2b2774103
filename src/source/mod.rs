//! Sources: read rows from HR spreadsheets (and later the directory).
