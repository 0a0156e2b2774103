//! Reports: CSV and XLSX reconciliation reports, written atomically.
