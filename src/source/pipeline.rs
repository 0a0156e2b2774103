//! Reading and mapping on two threads: a reader parses the file on its own
//! thread and hands records over in batches; the caller's sink (mapping, the
//! desired state) runs on the calling thread meanwhile.
//!
//! Why: parsing a workbook (inflating, XML) and mapping its rows cost about
//! the same; on two cores they overlap. Records go in batches so the hand-off
//! (a channel send, a wake-up) is paid once per batch, not once per row.

//!
//! A record's text buffer goes back to the reader once the sink is done with
//! its batch, and the reader's next records are written into those buffers
//! ([`spare_buffer`]): allocated on one thread and freed on the other, they
//! cost a tenth of the reader's time at a million rows. Records themselves
//! move by value: a reader fills one record, always the same, hot in its
//! cache, and copies it into the batch; boxed records handed over and
//! recycled whole cost the reader 2–3% more (BENCHMARKS.md, session 15).

use std::{
    cell::RefCell,
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::core::record::Record;

use super::SourceError;

/// Records per hand-off.
const BATCH: usize = 512;
/// Batches in flight: enough to ride out a slow row, few enough to bound memory.
const IN_FLIGHT: usize = 8;
/// Spare text buffers a reader keeps at most (two batches' worth).
const SPARE_MAX: usize = 2 * BATCH;
/// Buffers larger than this are freed, not kept: a few long rows must not
/// pin their size in every spare.
const SPARE_CAPACITY_MAX: usize = 1024;

/// What a reader hands over, one record at a time.
pub(super) type Hand<'s> = dyn FnMut(Record) -> Result<(), SourceError> + 's;

thread_local! {
    /// This thread's spare text buffers: those of records a sink is done with.
    static SPARE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// An empty record to fill, its text in a spare buffer when this (reader)
/// thread has one.
pub(super) fn spare_record() -> Record {
    Record::with_buffer(SPARE.with_borrow_mut(Vec::pop).unwrap_or_default())
}

/// Runs `read` on a scoped thread, feeding its records to `sink` on this one,
/// in order. The first error wins: a sink error stops the reader (its next
/// hand-off fails) and is returned; otherwise the reader's result is.
pub(super) fn pipelined<T: Send>(
    read: impl FnOnce(&mut Hand<'_>) -> Result<T, SourceError> + Send,
    sink: &mut dyn FnMut(&Record) -> Result<(), SourceError>,
) -> Result<T, SourceError> {
    let (result, waits) = timed(read, sink);
    if let Some(Waits { reader, sink }) = waits {
        // Which side bounds the read (BENCHMARKS.md, session 12).
        tracing::debug!(
            reader_waited_ms = reader.as_millis() as u64,
            sink_waited_ms = sink.as_millis() as u64,
            "read pipeline: time each side waited for the other"
        );
    }
    result
}

/// How long each side of a read waited for the other.
#[derive(Debug, Clone, Copy)]
struct Waits {
    /// Blocked on a full hand-off: the sink was the bottleneck.
    reader: Duration,
    /// Waiting for a batch: the reader was.
    sink: Duration,
}

/// [`pipelined`], answering also each side's waits (none when the reader
/// thread did not end normally).
fn timed<T: Send>(
    read: impl FnOnce(&mut Hand<'_>) -> Result<T, SourceError> + Send,
    sink: &mut dyn FnMut(&Record) -> Result<(), SourceError>,
) -> (Result<T, SourceError>, Option<Waits>) {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Record>>(IN_FLIGHT);
        // Text buffers going back; never waited on by either side.
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<String>>(IN_FLIGHT);
        let reader = std::thread::Builder::new().name("chorus-sync-reader".into()).spawn_scoped(scope, move || {
            let mut batch = Vec::with_capacity(BATCH);
            // Time blocked on a full hand-off: the sink is then the bottleneck.
            let mut waited = Duration::ZERO;
            let mut hand_over = |record: Record| {
                if let Ok(buffers) = spare_rx.try_recv() {
                    SPARE.with_borrow_mut(|spare| {
                        let room = SPARE_MAX.saturating_sub(spare.len());
                        spare.extend(buffers.into_iter().take(room));
                    });
                }
                batch.push(record);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    let stopped = || SourceError::Other("reading stopped".into());
                    match tx.try_send(full) {
                        Err(mpsc::TrySendError::Full(full)) => {
                            let since = Instant::now();
                            tx.send(full).map_err(|_| stopped())?;
                            waited += since.elapsed();
                        }
                        sent => sent.map_err(|_| stopped())?,
                    }
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
            (result, waited)
        });
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => return (Err(SourceError::Other(format!("cannot start a reader thread: {e}"))), None),
        };
        let mut sink_error = None;
        // Time spent waiting for a batch: the reader is then the bottleneck.
        let mut idle = Duration::ZERO;
        'batches: loop {
            let since = Instant::now();
            let Ok(batch) = rx.recv() else { break };
            idle += since.elapsed();
            let mut buffers = Vec::with_capacity(BATCH);
            for record in batch {
                if let Err(e) = sink(&record) {
                    sink_error = Some(e);
                    break 'batches;
                }
                let text = record.into_buffer();
                if text.capacity() <= SPARE_CAPACITY_MAX {
                    buffers.push(text);
                }
            }
            // The reader may be ahead with its spares: then these are freed.
            let _ = spare_tx.try_send(buffers);
        }
        // Dropping the receiver makes the reader's next hand-off fail: it stops.
        drop(rx);
        let read = reader.join();
        let waits = read.as_ref().ok().map(|(_, waited)| Waits { reader: *waited, sink: idle });
        let result = match (sink_error, read) {
            (Some(e), _) => Err(e),
            (None, Ok((result, _))) => result,
            (None, Err(_)) => Err(SourceError::Other("the reader thread stopped unexpectedly".into())),
        };
        (result, waits)
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
    fn recycled_text_buffers_carry_no_stale_text() {
        use crate::core::record::{CellRef, Field};
        let n = 50 * BATCH as u64;
        let mut reused = 0;
        let mut checked = 0u64;
        let out = pipelined(
            |sink| {
                for row in 1..=n {
                    reused += usize::from(SPARE.with_borrow(|s| !s.is_empty()));
                    let mut r = spare_record();
                    r.row = row;
                    // Texts of other lengths row after row: a buffer keeps its capacity, never its text.
                    r.set(Field::Email, CellRef::Text(&format!("p{row}@acme.fr")));
                    if row % 3 == 0 {
                        r.set(Field::LastName, CellRef::Text(&"x".repeat(row as usize % 40)));
                    }
                    if row % 100 == 0 {
                        r.set(Field::FirstName, CellRef::Text(&"long ".repeat(300)));
                    }
                    let kept = SPARE.with_borrow(|s| s.iter().map(String::capacity).max().unwrap_or(0));
                    assert!(kept <= SPARE_CAPACITY_MAX, "a spare of {kept} bytes was kept");
                    sink(r)?;
                }
                Ok(reused)
            },
            &mut |r| {
                assert_eq!(r.get(Field::Email), CellRef::Text(&format!("p{}@acme.fr", r.row)));
                let last = "x".repeat(r.row as usize % 40);
                let last = if r.row % 3 == 0 { CellRef::Text(&last) } else { CellRef::Empty };
                assert_eq!(r.get(Field::LastName), last, "row {}", r.row);
                let first = "long ".repeat(300);
                let first = if r.row % 100 == 0 { CellRef::Text(&first) } else { CellRef::Empty };
                assert_eq!(r.get(Field::FirstName), first, "row {}", r.row);
                checked += 1;
                Ok(())
            },
        );
        assert_eq!(checked, n);
        // The reader blocks once IN_FLIGHT batches wait, so the sink has
        // given buffers back long before the fiftieth batch.
        assert!(out.unwrap() > 0, "the reader never reused a buffer");
    }

    /// Each side's waits in milliseconds, for a reader that makes `n`
    /// records and a sink, each pausing at the start of every batch.
    fn waits(n: u64, reader_pause: Duration, sink_pause: Duration) -> (u128, u128) {
        let (result, waits) = timed(
            |sink| {
                for r in records(n) {
                    if r.row % BATCH as u64 == 1 {
                        std::thread::sleep(reader_pause);
                    }
                    sink(r)?;
                }
                Ok(())
            },
            &mut |r| {
                if r.row % BATCH as u64 == 1 {
                    std::thread::sleep(sink_pause);
                }
                Ok(())
            },
        );
        result.unwrap();
        let Waits { reader, sink } = waits.expect("the reader ended normally");
        (reader.as_millis(), sink.as_millis())
    }

    #[test]
    fn the_read_tells_which_side_waited_for_the_other() {
        let batches = 3 * IN_FLIGHT as u64;
        let pause = Duration::from_millis(5);
        // A slow sink: once IN_FLIGHT batches wait, each hand-off waits for
        // a pause of the sink (lower bounds only: sleeps never end early).
        let (reader, _) = waits(batches * BATCH as u64, Duration::ZERO, pause);
        assert!(reader >= 10, "the reader waited {reader} ms for a slow sink");
        // A slow reader: the sink waits for every batch.
        let (_, sink) = waits(batches * BATCH as u64, pause, Duration::ZERO);
        assert!(sink >= 10, "the sink waited {sink} ms for a slow reader");
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
