//! Reading and mapping on two threads: a reader parses the file on its own
//! thread and hands records over in batches; the caller's sink (mapping, the
//! desired state) runs on the calling thread meanwhile.
//!
//! Why: parsing a workbook (inflating, XML) and mapping its rows cost about
//! the same; on two cores they overlap. Records go in batches so the hand-off
//! (a channel send, a wake-up) is paid once per batch, not once per row.

use std::sync::mpsc;

use crate::core::record::Record;

use super::SourceError;

/// Records per hand-off.
const BATCH: usize = 512;
/// Batches in flight: enough to ride out a slow row, few enough to bound memory.
const IN_FLIGHT: usize = 8;

/// Runs `read` on a scoped thread, feeding its records to `sink` on this one,
/// in order. The first error wins: a sink error stops the reader (its next
/// hand-off fails) and is returned; otherwise the reader's result is.
pub(super) fn pipelined<T: Send>(
    read: impl FnOnce(&mut dyn FnMut(Record) -> Result<(), SourceError>) -> Result<T, SourceError> + Send,
    sink: &mut dyn FnMut(Record) -> Result<(), SourceError>,
) -> Result<T, SourceError> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Record>>(IN_FLIGHT);
        let reader = std::thread::Builder::new()
            .name("chorus-sync-reader".into())
            .spawn_scoped(scope, move || {
                let mut batch = Vec::with_capacity(BATCH);
                let mut hand_over = |record: Record| {
                    batch.push(record);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        tx.send(full).map_err(|_| SourceError::Other("reading stopped".into()))?;
                    }
                    Ok(())
                };
                let result = read(&mut hand_over);
                if !batch.is_empty() {
                    // Also after an error: the rows before it are counted, as
                    // when reading on one thread. The receiver only goes away
                    // after a sink error, which wins anyway.
                    let _ = tx.send(batch);
                }
                result
            })
            .map_err(|e| SourceError::Other(format!("cannot start a reader thread: {e}")))?;
        let mut sink_error = None;
        'batches: for batch in rx.iter() {
            for record in batch {
                if let Err(e) = sink(record) {
                    sink_error = Some(e);
                    break 'batches;
                }
            }
        }
        // Dropping the receiver makes the reader's next hand-off fail: it stops.
        drop(rx);
        let read = reader.join();
        if let Some(e) = sink_error {
            return Err(e);
        }
        match read {
            Ok(result) => result,
            Err(_) => Err(SourceError::Other("the reader thread stopped unexpectedly".into())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u64) -> impl Iterator<Item = Record> {
        (1..=n).map(Record::new)
    }

    #[test]
    fn every_record_arrives_once_in_order_across_batch_boundaries() {
        for n in [0, 1, BATCH as u64 - 1, BATCH as u64, BATCH as u64 + 1, 10 * BATCH as u64 + 7] {
            let mut seen = Vec::new();
            let out = pipelined(
                |sink| {
                    for r in records(n) {
                        sink(r)?;
                    }
                    Ok("done")
                },
                &mut |r| {
                    seen.push(r.row);
                    Ok(())
                },
            );
            assert_eq!(out.unwrap(), "done");
            assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "{n} records");
        }
    }

    #[test]
    fn a_reader_error_is_returned_after_the_records_before_it() {
        let mut seen = 0;
        let out: Result<(), _> = pipelined(
            |sink| {
                for r in records(5) {
                    sink(r)?;
                }
                Err(SourceError::Other("bad row 6".into()))
            },
            &mut |_| {
                seen += 1;
                Ok(())
            },
        );
        assert_eq!(out.unwrap_err().to_string(), "bad row 6");
        assert_eq!(seen, 5, "the rows before the error are handed over, as on one thread");
    }

    #[test]
    fn a_sink_error_stops_the_reader_and_wins() {
        let mut produced = 0u64;
        let out: Result<(), _> = pipelined(
            |sink| {
                for r in records(1_000_000) {
                    produced += 1;
                    sink(r)?;
                }
                Ok(())
            },
            &mut |r| if r.row == 3 { Err(SourceError::Other("sink says no".into())) } else { Ok(()) },
        );
        assert_eq!(out.unwrap_err().to_string(), "sink says no");
        assert!(produced < 1_000_000, "the reader stopped early ({produced} records)");
    }
}
