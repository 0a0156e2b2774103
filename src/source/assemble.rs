//! Turns a stream of cells, in row order, into a header row and records.
//!
//! Every format feeds cells through [`Assembler::push`], so header detection,
//! blank-row skipping and column mapping behave the same for all of them.

use crate::{
    config::LimitsConfig,
    core::record::{CellRef, ColumnMap, Field, Record},
    domain::text::fold,
};

use super::{HEADER_SCAN_ROWS, SourceError, limits::limit, pipeline::spare_record};

/// What the assembler learned, for `TableInfo`.
#[derive(Debug)]
pub(super) struct Table {
    pub header_row: u64,
    pub rows: u64,
    pub headers: Vec<(Field, String)>,
}

pub(super) use super::pipeline::Hand as Sink;

pub(super) struct Assembler<'a> {
    origin: &'a str,
    sheet: Option<&'a str>,
    required: &'a [Field],
    /// Only `max_rows` and `max_cell_chars` matter here.
    limits: LimitsConfig,
    /// Configured fields with their folded header text.
    configured: Vec<(Field, String, &'a str)>,
    phase: Phase,
    /// Current physical row, 1-based; 0 before the first cell.
    row: u64,
    seen_any: bool,
    rows: u64,
    header_row: u64,
    headers: Vec<(Field, String)>,
}

enum Phase {
    Header {
        /// The row's cells as text, with their columns: all a header needs.
        texts: Vec<(u32, String)>,
        best: Option<Candidate>,
    },
    /// `by_col[c]` is a bit set of the fields fed by column `c`.
    Data {
        by_col: Vec<u16>,
        /// Boxed to keep the enum small; filled row after row, copied out at each row's end.
        record: Box<Record>,
        dirty: bool,
    },
}

/// The header-like row with the most matches, to explain a failure.
struct Candidate {
    required_hits: usize,
    hits: usize,
    missing: Vec<String>,
    texts: Vec<String>,
}

impl<'a> Assembler<'a> {
    pub fn new(
        origin: &'a str,
        sheet: Option<&'a str>,
        columns: &'a ColumnMap,
        required: &'a [Field],
        limits: LimitsConfig,
    ) -> Self {
        Assembler {
            origin,
            sheet,
            required,
            limits,
            configured: columns.iter().map(|(f, h)| (f, fold(h), h)).collect(),
            phase: Phase::Header { texts: Vec::new(), best: None },
            row: 0,
            seen_any: false,
            rows: 0,
            header_row: 0,
            headers: Vec::new(),
        }
    }

    /// Whether a cell in column `col` (0-based) matters; lets readers skip
    /// converting cells of unmapped columns.
    #[inline]
    pub fn wants(&self, col: u32) -> bool {
        match &self.phase {
            Phase::Header { .. } => true,
            Phase::Data { by_col, .. } => by_col.get(col as usize).is_some_and(|m| *m != 0),
        }
    }

    /// Feeds one cell; `row` is 1-based and must not go backwards, `col` is 0-based.
    /// Empty cells are ignored, so formatted empty rows cost nothing.
    ///
    /// Inlined into the readers' loops for the usual cell (a data row's next
    /// cell, of one field, short enough), which it stores and nothing else;
    /// every other cell takes [`Assembler::push_any`].
    #[inline]
    pub fn push(&mut self, row: u64, col: u32, cell: CellRef<'_>, sink: &mut Sink<'_>) -> Result<(), SourceError> {
        let short = match cell {
            CellRef::Empty => false,
            CellRef::Text(text) => text.len() as u64 <= self.limits.max_cell_chars,
            _ => true,
        };
        if short
            && row == self.row
            && let Phase::Data { by_col, record, dirty } = &mut self.phase
            && let Some(&mask) = by_col.get(col as usize)
            && mask.is_power_of_two()
        {
            *dirty = true;
            record.set(Field::ALL[mask.trailing_zeros() as usize], cell);
            return Ok(());
        }
        self.push_any(row, col, cell, sink)
    }

    fn push_any(&mut self, row: u64, col: u32, cell: CellRef<'_>, sink: &mut Sink<'_>) -> Result<(), SourceError> {
        if matches!(cell, CellRef::Empty) {
            return Ok(());
        }
        if let CellRef::Text(text) = cell {
            let max = self.limits.max_cell_chars;
            // Bytes bound characters from above: count only when it may matter.
            if text.len() as u64 > max && text.chars().count() as u64 > max {
                let chars = text.chars().count();
                return Err(limit(
                    self.origin,
                    format!(
                        "{}, column {}: a cell of {chars} characters, more than max_cell_chars = {max}",
                        self.at(row),
                        u64::from(col) + 1
                    ),
                ));
            }
        }
        if row != self.row {
            self.end_row(sink)?;
            self.row = row;
            if matches!(self.phase, Phase::Header { .. }) && row > HEADER_SCAN_ROWS {
                return Err(self.missing_columns());
            }
        }
        self.seen_any = true;
        match &mut self.phase {
            Phase::Header { texts, .. } => texts.push((col, cell.to_text())),
            Phase::Data { by_col, record, dirty } => {
                let Some(&mask) = by_col.get(col as usize) else { return Ok(()) };
                if mask == 0 {
                    return Ok(());
                }
                *dirty = true;
                // Several fields may share a column.
                for field in Field::ALL.iter().filter(|f| mask & (1 << f.index()) != 0) {
                    record.set(*field, cell);
                }
            }
        }
        Ok(())
    }

    /// Ends the input: flushes the last row and reports what was found.
    pub fn finish(mut self, sink: &mut Sink<'_>) -> Result<Table, SourceError> {
        self.end_row(sink)?;
        if let Phase::Header { .. } = self.phase {
            if !self.seen_any {
                return Err(SourceError::EmptySheet {
                    path: self.origin.to_string(),
                    sheet: self.sheet.map(str::to_string),
                });
            }
            return Err(self.missing_columns());
        }
        Ok(Table { header_row: self.header_row, rows: self.rows, headers: self.headers })
    }

    fn end_row(&mut self, sink: &mut Sink<'_>) -> Result<(), SourceError> {
        match &mut self.phase {
            Phase::Header { texts, .. } if texts.is_empty() => Ok(()),
            Phase::Header { texts, best } => {
                let texts = std::mem::take(texts);
                let best = best.take();
                self.header_candidate(texts, best)
            }
            Phase::Data { record, dirty, .. } => {
                if !*dirty {
                    return Ok(());
                }
                *dirty = false;
                if record.is_blank() {
                    record.clear();
                    return Ok(());
                }
                let mut done = std::mem::replace(&mut **record, spare_record());
                done.row = self.row;
                if self.rows >= self.limits.max_rows {
                    let max = self.limits.max_rows;
                    return Err(limit(self.origin, format!("{}: more than max_rows = {max} rows", self.at(self.row))));
                }
                self.rows += 1;
                sink(done)
            }
        }
    }

    /// Checks whether the row just ended is the header row; if so switches
    /// to data, else keeps it as the best candidate when it is one.
    fn header_candidate(&mut self, texts: Vec<(u32, String)>, best: Option<Candidate>) -> Result<(), SourceError> {
        let folded: Vec<String> = texts.iter().map(|(_, t)| fold(t)).collect();
        // Columns (0-based) matching each configured field.
        let matches: Vec<Vec<usize>> = self
            .configured
            .iter()
            .map(|(_, want, _)| folded.iter().enumerate().filter(|(_, f)| *f == want).map(|(i, _)| i).collect())
            .collect();
        let found =
            |field: Field| self.configured.iter().zip(&matches).any(|((f, _, _), m)| *f == field && !m.is_empty());
        let required_hits = self.required.iter().filter(|f| found(**f)).count();

        if required_hits == self.required.len() {
            let mut by_col = Vec::new();
            let mut headers = Vec::new();
            for ((field, _, _), m) in self.configured.iter().zip(&matches) {
                match m.as_slice() {
                    [] => {}
                    [i] => {
                        let (col, text) = &texts[*i];
                        let col = *col as usize;
                        if by_col.len() <= col {
                            by_col.resize(col + 1, 0u16);
                        }
                        by_col[col] |= 1 << field.index();
                        headers.push((*field, text.clone()));
                    }
                    many => {
                        return Err(SourceError::DuplicateColumn {
                            path: self.origin.to_string(),
                            sheet: self.sheet.map(str::to_string),
                            row: self.row,
                            header: texts[many[0]].1.clone(),
                            columns: many.iter().map(|i| texts[*i].0 + 1).collect(),
                        });
                    }
                }
            }
            self.header_row = self.row;
            self.headers = headers;
            self.phase = Phase::Data { by_col, record: Box::new(spare_record()), dirty: false };
            return Ok(());
        }

        let hits = matches.iter().filter(|m| !m.is_empty()).count();
        let better = best.as_ref().is_none_or(|b| (required_hits, hits) > (b.required_hits, b.hits));
        let best = if better {
            let missing = self
                .required
                .iter()
                .filter(|f| !found(**f))
                .filter_map(|f| self.configured.iter().find(|(c, _, _)| c == f).map(|(_, _, h)| h.to_string()))
                .collect();
            let texts = texts.into_iter().map(|(_, t)| t).filter(|t| !t.trim().is_empty()).collect();
            Some(Candidate { required_hits, hits, missing, texts })
        } else {
            best
        };
        self.phase = Phase::Header { texts: Vec::new(), best };
        Ok(())
    }

    /// `sheet "Personnel", row 12` (or `row 12` for csv), for limit messages.
    fn at(&self, row: u64) -> String {
        match self.sheet {
            Some(sheet) => format!("sheet \"{sheet}\", row {row}"),
            None => format!("row {row}"),
        }
    }

    fn missing_columns(&mut self) -> SourceError {
        let best = match &mut self.phase {
            Phase::Header { best, .. } => best.take(),
            Phase::Data { .. } => None,
        };
        let (missing, found) = match best {
            Some(b) => (b.missing, b.texts),
            None => (
                self.required
                    .iter()
                    .filter_map(|f| self.configured.iter().find(|(c, _, _)| c == f).map(|(_, _, h)| h.to_string()))
                    .collect(),
                Vec::new(),
            ),
        };
        SourceError::MissingColumns {
            path: self.origin.to_string(),
            sheet: self.sheet.map(str::to_string),
            missing,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::Cell;

    fn columns() -> ColumnMap {
        ColumnMap::new([
            (Field::Email, "Courriel".to_string()),
            (Field::LastName, "Nom".to_string()),
            (Field::FirstName, "Prenom".to_string()),
            (Field::Status, "Statut".to_string()),
        ])
    }

    type Row = (u64, Vec<&'static str>);
    /// (row, email, last name, first name)
    type Out = (u64, String, String, String);

    /// Feeds text rows and returns the records as (row, email, last, first) or the error text.
    fn run(rows: &[Row], required: &[Field]) -> Result<(Table, Vec<Out>), String> {
        let columns = columns();
        let mut asm = Assembler::new("t.csv", None, &columns, required, LimitsConfig::default());
        let mut out = Vec::new();
        let mut sink = |r: Record| {
            out.push((
                r.row,
                r.get(Field::Email).to_text(),
                r.get(Field::LastName).to_text(),
                r.get(Field::FirstName).to_text(),
            ));
            assert_eq!(r.get(Field::Status), Cell::Empty);
            Ok(())
        };
        for (row, cells) in rows {
            for (c, text) in cells.iter().enumerate() {
                let cell = if text.is_empty() { CellRef::Empty } else { CellRef::Text(text) };
                asm.push(*row, c as u32, cell, &mut sink).map_err(|e| e.to_string())?;
            }
        }
        let table = asm.finish(&mut sink).map_err(|e| e.to_string())?;
        Ok((table, out))
    }

    #[test]
    fn finds_header_below_titles_and_skips_blank_rows() {
        let rows: Vec<Row> = vec![(1, vec!["Export RH"]), (2, vec!["Nom", "Courriel"])];
        let (table, recs) = run(&rows, &[Field::Email]).unwrap();
        assert_eq!(table.header_row, 2);
        assert!(recs.is_empty());

        let rows: Vec<Row> = vec![
            (1, vec!["Export RH", "Courriel"]),
            (2, vec![]),
            (3, vec!["x", "PRÉNOM ", "Nom", "courriel"]),
            (4, vec!["", "Marie", "Dupont", "m@a.fr"]),
            (5, vec!["ignored only"]),
            (6, vec!["", "  ", "", "\t"]),
            (8, vec!["", "Luc", "", "l@a.fr"]),
        ];
        let (table, recs) = run(&rows, &[Field::Email, Field::LastName]).unwrap();
        assert_eq!(table.header_row, 3);
        assert_eq!(table.rows, 2);
        assert_eq!(
            table.headers,
            vec![
                (Field::Email, "courriel".to_string()),
                (Field::LastName, "Nom".to_string()),
                (Field::FirstName, "PRÉNOM ".to_string())
            ]
        );
        assert_eq!(
            recs,
            vec![(4, "m@a.fr".into(), "Dupont".into(), "Marie".into()), (8, "l@a.fr".into(), "".into(), "Luc".into())]
        );
    }

    #[test]
    fn header_errors() {
        for (rows, required, expect) in [
            (
                vec![(1, vec!["Titre"]), (2, vec!["Nom", "Prénom", "Mail"]), (3, vec!["a", "b", "c"])],
                vec![Field::Email],
                r#"t.csv: missing column(s) "Courriel"; the header row has: "Nom", "Prénom", "Mail""#,
            ),
            (
                vec![(1, vec!["Nom", "Courriel", "x", "COURRIEL"])],
                vec![Field::Email],
                r#"t.csv: column "Courriel" appears more than once in the header row 1 (columns 2, 4)"#,
            ),
            (vec![], vec![Field::Email], "t.csv: the sheet is empty"),
            (
                vec![(51, vec!["Courriel"])],
                vec![Field::Email],
                r#"t.csv: missing column(s) "Courriel"; no non-empty row in the first 50 rows"#,
            ),
            (
                vec![(3, vec!["Nom"]), (60, vec!["Courriel", "Nom"])],
                vec![Field::Email, Field::LastName],
                r#"t.csv: missing column(s) "Courriel"; the header row has: "Nom""#,
            ),
        ] {
            let got = run(&rows, &required).map(|_| ()).unwrap_err();
            assert_eq!(got, expect);
        }
    }

    #[test]
    fn unmapped_columns_are_not_wanted_after_the_header() {
        let columns = columns();
        let mut asm = Assembler::new("t.csv", None, &columns, &[Field::Email], LimitsConfig::default());
        let mut sink = |_: Record| Ok(());
        assert!(asm.wants(7));
        for (c, h) in ["x", "Courriel", "y", "Nom"].iter().enumerate() {
            asm.push(1, c as u32, CellRef::Text(h), &mut sink).unwrap();
        }
        asm.push(2, 1, CellRef::Text("a@b.fr"), &mut sink).unwrap();
        assert_eq!((0..6).map(|c| asm.wants(c)).collect::<Vec<_>>(), [false, true, false, true, false, false]);
    }

    #[test]
    fn shared_column_feeds_both_fields() {
        let columns = ColumnMap::new([(Field::Email, "Mail".to_string()), (Field::EmployeeId, "mail".to_string())]);
        let mut asm = Assembler::new("t.csv", None, &columns, &[Field::Email], LimitsConfig::default());
        let mut got = Vec::new();
        let mut sink = |r: Record| {
            got.push(r);
            Ok(())
        };
        asm.push(1, 0, CellRef::Text("Mail"), &mut sink).unwrap();
        asm.push(2, 0, CellRef::Text("a@b.fr"), &mut sink).unwrap();
        asm.finish(&mut sink).unwrap();
        assert_eq!(got[0].get(Field::Email), Cell::Text("a@b.fr".into()));
        assert_eq!(got[0].get(Field::EmployeeId), Cell::Text("a@b.fr".into()));
    }

    /// The cells after the first of a data row take `push`'s inlined path:
    /// it must refuse a long cell, feed a shared column to both fields and
    /// ignore empty and unmapped cells, as the first cell's path does.
    #[test]
    fn the_later_cells_of_a_row_are_read_as_the_first() {
        let columns = ColumnMap::new([
            (Field::Email, "Courriel".to_string()),
            (Field::LastName, "Nom".to_string()),
            (Field::EmployeeId, "nom".to_string()),
            (Field::Status, "Statut".to_string()),
        ]);
        let limits = LimitsConfig { max_cell_chars: 8, ..LimitsConfig::default() };
        let mut asm = Assembler::new("t.csv", None, &columns, &[Field::Email], limits);
        let mut got = Vec::new();
        let mut sink = |r: Record| {
            got.push(r);
            Ok(())
        };
        for (c, h) in ["Courriel", "x", "Nom", "Statut"].iter().enumerate() {
            asm.push(1, c as u32, CellRef::Text(h), &mut sink).unwrap();
        }
        for (c, cell) in [CellRef::Text("a@b.fr"), CellRef::Text("unmapped"), CellRef::Text("Dupont"), CellRef::Empty]
            .into_iter()
            .enumerate()
        {
            asm.push(2, c as u32, cell, &mut sink).unwrap();
        }
        asm.push(3, 0, CellRef::Text("c@d.fr"), &mut sink).unwrap();
        let err = asm.push(3, 3, CellRef::Text("abcdefghi"), &mut sink).unwrap_err();
        assert_eq!(err.to_string(), "t.csv: row 3, column 4: a cell of 9 characters, more than max_cell_chars = 8");
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(r.get(Field::Email), Cell::Text("a@b.fr".into()));
        assert_eq!(r.get(Field::LastName), Cell::Text("Dupont".into()));
        assert_eq!(r.get(Field::EmployeeId), Cell::Text("Dupont".into()));
        assert_eq!(r.get(Field::Status), Cell::Empty);
    }

    #[test]
    fn sink_error_stops_the_read() {
        let columns = columns();
        let mut asm = Assembler::new("t.csv", None, &columns, &[Field::Email], LimitsConfig::default());
        let mut sink =
            |r: Record| Err(SourceError::Limit { path: "t.csv".into(), message: format!("stop at {}", r.row) });
        asm.push(1, 0, CellRef::Text("Courriel"), &mut sink).unwrap();
        asm.push(2, 0, CellRef::Text("a@b.fr"), &mut sink).unwrap();
        let err = asm.push(3, 0, CellRef::Text("c@d.fr"), &mut sink).unwrap_err();
        assert_eq!(err.to_string(), "t.csv: stop at 2");
    }

    #[test]
    fn row_and_cell_limits() {
        let columns = columns();
        let limits = LimitsConfig { max_rows: 2, max_cell_chars: 8, ..LimitsConfig::default() };
        let run = |sheet: Option<&str>, rows: &[(u64, &str)]| {
            let mut asm = Assembler::new("hr.xlsx", sheet, &columns, &[Field::Email], limits);
            let mut seen = Vec::new();
            let mut sink = |r: Record| {
                seen.push(r.row);
                Ok(())
            };
            let result = rows
                .iter()
                .try_for_each(|(row, text)| asm.push(*row, 1, CellRef::Text(text), &mut sink))
                .and_then(|()| asm.finish(&mut sink).map(|_| ()));
            (seen, result.map_err(|e| e.to_string()))
        };
        for (sheet, rows, expect_seen, expect) in [
            // Two data rows pass; blank cells and blank rows do not count.
            (Some("P"), vec![(1, "Statut"), (2, "Courriel"), (3, "a@b"), (9, "c@d")], vec![3, 9], Ok(())),
            (
                None,
                vec![(1, "Courriel"), (2, "a@b"), (4, "c@d"), (7, "e@f")],
                vec![2, 4],
                Err("hr.xlsx: row 7: more than max_rows = 2 rows"),
            ),
            (
                Some("Personnel"),
                vec![(1, "Courriel"), (2, "a@b"), (3, "c@d"), (5, "e@f")],
                vec![2, 3],
                Err("hr.xlsx: sheet \"Personnel\", row 5: more than max_rows = 2 rows"),
            ),
            // Eight characters (not bytes: "é" is two) pass, nine do not, in the header too.
            (Some("P"), vec![(1, "Courriel"), (2, "éééééééé")], vec![2], Ok(())),
            (
                Some("P"),
                vec![(1, "Courriel"), (2, "abcdefghi")],
                vec![],
                Err("hr.xlsx: sheet \"P\", row 2, column 2: a cell of 9 characters, more than max_cell_chars = 8"),
            ),
            (
                None,
                vec![(4, "Courriel+")],
                vec![],
                Err("hr.xlsx: row 4, column 2: a cell of 9 characters, more than max_cell_chars = 8"),
            ),
        ] {
            let (seen, got) = run(sheet, &rows);
            assert_eq!(got, expect.map_err(str::to_string), "{rows:?}");
            assert_eq!(seen, expect_seen, "{rows:?}");
        }
    }
}
