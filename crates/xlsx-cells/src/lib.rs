//! calamine's streaming cell loop over an xlsx or xlsb worksheet, in a crate
//! of its own so that the compiler sees it as the bare read sees it.
//!
//! Why a crate: the loop calls generic calamine code (`XlsxCellReader<RS>`),
//! which is compiled in the crate that names the concrete reader. Compiled
//! inside chorus-sync, among thousands of functions, the inliner left small
//! helpers that calamine calls per cell (`str::find('_')` when unescaping,
//! `contains('.')` on numbers) out of line; compiled here, as in
//! `examples/bare.rs`, it inlines them. callgrind, plan of 100,000 rows: the
//! reader thread ran 5.43 G instructions, 5.16 G with this crate, against
//! 4.92 G for the bare read; calamine's own functions now cost what they
//! cost in the bare read (BENCHMARKS.md, session 11).
//!
//! The functions are not generic: a generic one would be compiled in the
//! caller's crate again. Each cell goes to `each`, which returns `false` to
//! stop the loop (the caller keeps its own error).

use std::{fs::File, io::BufReader};

use calamine::{DataRef, Xlsb, XlsbError, Xlsx, XlsxError};

/// What receives each cell: (0-based row, 0-based column, value); `false` stops.
pub type Each<'a> = dyn FnMut(u32, u32, &DataRef<'_>) -> bool + 'a;

// calamine's xlsx and xlsb cell readers share no trait: one body for both.
macro_rules! stream {
    ($(#[$doc:meta])* $name:ident, $book:ty, $error:ty) => {
        $(#[$doc])*
        pub fn $name(wb: &mut $book, sheet: &str, each: &mut Each<'_>) -> Result<(), $error> {
            let mut cells = wb.worksheet_cells_reader(sheet)?;
            while let Some(cell) = cells.next_cell()? {
                let (row, col) = cell.get_position();
                if !each(row, col, cell.get_value()) {
                    break;
                }
            }
            Ok(())
        }
    };
}

stream!(
    /// Streams the cells of `sheet` in `wb`, in file order (row by row).
    xlsx,
    Xlsx<BufReader<File>>,
    XlsxError
);
stream!(
    /// [`xlsx`] for binary workbooks.
    xlsb,
    Xlsb<BufReader<File>>,
    XlsbError
);

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, open_workbook};

    use super::*;

    fn sample() -> (Xlsx<BufReader<File>>, String) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/hr.xlsx");
        let wb: Xlsx<_> = open_workbook(path).unwrap();
        let sheet = wb.sheet_names()[0].clone();
        (wb, sheet)
    }

    #[test]
    fn every_cell_comes_as_the_whole_sheet_holds_it() {
        let (mut wb, sheet) = sample();
        let mut streamed = Vec::new();
        xlsx(&mut wb, &sheet, &mut |row, col, value| {
            streamed.push((row, col, Data::from(value.clone()).to_string()));
            true
        })
        .unwrap();
        let range = wb.worksheet_range(&sheet).unwrap();
        let start = range.start().unwrap();
        let whole: Vec<_> = range
            .cells()
            .filter(|(_, _, v)| **v != Data::Empty)
            .map(|(r, c, v)| (r as u32 + start.0, c as u32 + start.1, v.to_string()))
            .collect();
        let streamed: Vec<_> = streamed.into_iter().filter(|(_, _, v)| !v.is_empty()).collect();
        assert!(whole.len() > 10, "the sample has cells: {}", whole.len());
        assert_eq!(streamed, whole);
    }

    #[test]
    fn false_stops_the_loop() {
        let (mut wb, sheet) = sample();
        let mut seen = 0;
        xlsx(&mut wb, &sheet, &mut |_, _, _| {
            seen += 1;
            seen < 3
        })
        .unwrap();
        assert_eq!(seen, 3);
    }
}
