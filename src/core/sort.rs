//! Sorting row indexes by (head, text, index) with integer comparisons only:
//! multi-level key refinement. A million e-mail addresses share long
//! prefixes (every `valerie.` ties on its first 8 bytes); a comparator that
//! falls back to the text reads two random places in memory per comparison.
//! Here each level reads each text of a run once, to make its next key, and
//! sorts integers; nothing is allocated per element.
//!
//! The sort also says which pairs tie (equal head and text): it finds them on
//! its way, so callers that group equal texts (one person's rows, one
//! employee id's rows) need not compare the texts again, which would read
//! them at random a second time (a million addresses: ~0.2 s).

use std::ops::Range;

/// The bytes a head of `0..values` takes: 2 up to 65,536 values (structure
/// ranks), 4 beyond.
pub(super) fn head_bytes(values: usize) -> usize {
    if values > 1 << 16 { 4 } else { 2 }
}

/// A (key, index) pair in 12 bytes, ordered as `(key, index)`: a
/// `(u64, u32)` takes 16 with its padding, and a plan sorts a million pairs
/// on each of two threads at its peak of memory (8 MB less in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pair([u32; 3]);

impl Pair {
    pub(super) fn new(key: u64, index: u32) -> Pair {
        Pair([(key >> 32) as u32, key as u32, index])
    }

    pub(super) fn key(self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }

    pub(super) fn index(self) -> u32 {
        self.0[2]
    }

    fn set_key(&mut self, key: u64) {
        *self = Pair::new(key, self.index());
    }
}

/// The indexes of sorted pairs, in a vector of their own size (collected in
/// place, the pairs' three times larger allocation would stay).
pub(super) fn indexes(pairs: Vec<Pair>) -> Vec<u32> {
    let mut out = Vec::with_capacity(pairs.len());
    out.extend(pairs.iter().map(|p| p.index()));
    out
}

/// Sorts `(head, index)` pairs by (head, text, index), `text` giving each
/// index's text, heads taking `head_bytes` bytes (0: no head, the first
/// members are ignored). The first members are scratch for the keys: on
/// return they hold no head any more, only the order of the pairs matters.
///
/// Each level sorts a run by `(key, index)` as integers, the key being the
/// next 8 bytes of the texts, zero-padded (after the head, at the first
/// level); a run of equal keys is sorted again by the bytes after. A key
/// that ends in 0x00 may hide texts that end there: that run is first sorted
/// by length (a text that ends sorts before a longer one whose next bytes
/// are 0x00; texts that end together are equal, in index order, i.e.
/// arrival), and only the texts that go on are refined.
///
/// Answers the ties: the ranges of sorted positions whose pairs have equal
/// heads and texts, two pairs or more each, in order. A pair in none is the
/// only one of its text.
///
/// From [`SPLIT_MIN`] pairs on, on two threads: the sort is the largest
/// serial step between the end of a read and the diff (a million addresses,
/// ~0.3 s), and the second core is idle for most of it (the id sort beside
/// it is shorter).
pub(super) fn by_text<'t>(
    pairs: &mut [Pair],
    head_bytes: usize,
    text: impl Fn(u32) -> &'t [u8] + Sync,
) -> Vec<Range<u32>> {
    by_text_split(pairs, head_bytes, text, SPLIT_MIN)
}

/// Pairs from which [`by_text`] sorts on two threads (a thread costs tens of
/// microseconds; a half of this many pairs sorts in about a millisecond).
const SPLIT_MIN: usize = 32_768;

/// [`by_text`], on two threads from `split_min` pairs on (the tests choose).
///
/// The pairs are split around a first-level key (the median of a sample):
/// those below it, those from it on. Equal first-level keys fall on one
/// side, so each side sorts and refines its runs as the whole would, and
/// the two sorted sides are the sorted whole.
fn by_text_split<'t>(
    pairs: &mut [Pair],
    head_bytes: usize,
    text: impl Fn(u32) -> &'t [u8] + Sync,
    split_min: usize,
) -> Vec<Range<u32>> {
    debug_assert!(head_bytes == 0 || (head_bytes <= 4 && pairs.iter().all(|p| p.key() >> (8 * head_bytes) == 0)));
    for p in pairs.iter_mut() {
        let head = if head_bytes == 0 { 0 } else { p.key() << (64 - 8 * head_bytes) };
        p.set_key(head | window(text(p.index()), 0) >> (8 * head_bytes));
    }
    let mid = if pairs.len() >= split_min.max(2) { split(pairs) } else { None };
    let mut ties = Vec::new();
    match mid {
        Some(mid) => {
            let (low, high) = pairs.split_at_mut(mid);
            let high_ties = std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    let mut ties = Vec::new();
                    refine(high, head_bytes, &text, &mut ties);
                    ties
                });
                refine(low, head_bytes, &text, &mut ties);
                // A panic there is a bug, carried on as if it had happened here.
                other.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            });
            let mid = mid as u32;
            ties.extend(high_ties.into_iter().map(|t| t.start + mid..t.end + mid));
        }
        None => refine(pairs, head_bytes, &text, &mut ties),
    }
    ties
}

/// Puts the pairs whose first-level key is below a pivot first and answers
/// how many they are; `None` when a side would be empty (every key equal).
/// The pivot is the median of up to 63 keys taken across the pairs.
fn split(pairs: &mut [Pair]) -> Option<usize> {
    let step = (pairs.len() / 63).max(1);
    let mut sample: Vec<u64> = pairs.iter().step_by(step).map(|p| p.key()).collect();
    sample.sort_unstable();
    let median = sample[sample.len() / 2];
    // Below the median, or (when the median is the smallest key) up to it.
    let pivot = if median > sample[0] { median } else { median.checked_add(1)? };
    let mut below = 0;
    for i in 0..pairs.len() {
        if pairs[i].key() < pivot {
            pairs.swap(i, below);
            below += 1;
        }
    }
    (below > 0 && below < pairs.len()).then_some(below)
}

/// Sorts pairs holding their first-level keys, and refines runs of equal
/// keys level by level (see [`by_text`]), adding the ties to `ties` in order
/// (positions in `pairs`). The levels go depth first, left to right: ties
/// are found in sorted order.
fn refine<'t>(pairs: &mut [Pair], head_bytes: usize, text: &impl Fn(u32) -> &'t [u8], ties: &mut Vec<Range<u32>>) {
    pairs.sort_unstable();
    // A stack, one entry per level being refined (not per run): where that
    // level's scan is, where its range ends, and how many text bytes its
    // keys have covered.
    let mut levels = vec![(0, pairs.len(), 8 - head_bytes)];
    while let Some(level) = levels.last_mut() {
        let (start, end, depth) = *level;
        if start == end {
            levels.pop();
            continue;
        }
        let key = pairs[start].key();
        let mut run = start..start + pairs[start..end].iter().take_while(|p| p.key() == key).count();
        level.0 = run.end;
        if run.len() > 1 && key as u8 == 0 {
            let goes_on = depth as u64 + 1;
            for p in &mut pairs[run.clone()] {
                p.set_key((text(p.index()).len() as u64).min(goes_on));
            }
            pairs[run.clone()].sort_unstable();
            let ended = pairs[run.clone()].partition_point(|p| p.key() < goes_on);
            // Texts that end together are equal.
            let mut at = run.start;
            for group in pairs[run.start..run.start + ended].chunk_by(|a, b| a.key() == b.key()) {
                if group.len() > 1 {
                    ties.push(at as u32..(at + group.len()) as u32);
                }
                at += group.len();
            }
            run.start += ended;
        }
        if run.len() > 1 {
            for p in &mut pairs[run.clone()] {
                p.set_key(window(text(p.index()), depth));
            }
            pairs[run.clone()].sort_unstable();
            levels.push((run.start, run.end, depth + 8));
        }
    }
}

/// The 8 bytes of `text` from `at` (at most its length), zero-padded, as a
/// big-endian integer: where two differ, they order as the texts do.
fn window(text: &[u8], at: usize) -> u64 {
    let rest = &text[at..];
    match rest.first_chunk::<8>() {
        Some(bytes) => u64::from_be_bytes(*bytes),
        None => {
            let mut bytes = [0u8; 8];
            bytes[..rest.len()].copy_from_slice(rest);
            u64::from_be_bytes(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The order `by_text` gives these (head, text) pairs, as their indexes,
    /// on one thread and split on two: asserted to be the same, and the
    /// ties it answers to be those of the full comparison.
    fn sorted(head_bytes: usize, input: &[(u32, &[u8])]) -> Vec<u32> {
        let [one, two] = [usize::MAX, 2].map(|split_min| {
            let mut pairs: Vec<Pair> =
                (0..input.len() as u32).map(|i| Pair::new(u64::from(input[i as usize].0), i)).collect();
            let ties = by_text_split(&mut pairs, head_bytes, |i| input[i as usize].1, split_min);
            let order = indexes(pairs);
            assert_eq!(ties, tied(input, &order), "ties, split from {split_min}: {input:?}");
            order
        });
        assert_eq!(one, two, "split on two threads: {input:?}");
        one
    }

    /// The ranges of equal (head, text) in `order`, two or more each.
    fn tied(input: &[(u32, &[u8])], order: &[u32]) -> Vec<Range<u32>> {
        let mut ties = Vec::new();
        let mut at = 0;
        for group in order.chunk_by(|a, b| input[*a as usize] == input[*b as usize]) {
            if group.len() > 1 {
                ties.push(at..at + group.len() as u32);
            }
            at += group.len() as u32;
        }
        ties
    }

    /// The order of the full comparison: (head, text, index).
    fn compared(input: &[(u32, &[u8])]) -> Vec<u32> {
        let mut order: Vec<u32> = (0..input.len() as u32).collect();
        order.sort_by(|a, b| input[*a as usize].cmp(&input[*b as usize]).then(a.cmp(b)));
        order
    }

    #[test]
    fn texts_sort_as_the_full_comparison() {
        #[track_caller]
        fn check(head_bytes: usize, input: &[(u32, &str)], expect: &[u32]) {
            let input: Vec<(u32, &[u8])> = input.iter().map(|(h, t)| (*h, t.as_bytes())).collect();
            assert_eq!(sorted(head_bytes, &input), expect, "{input:?}");
            assert_eq!(compared(&input), expect, "the table itself");
        }
        // Nothing, one.
        check(0, &[], &[]);
        check(2, &[(0, "a")], &[0]);
        // Long common prefixes, past several levels.
        let long = [
            (0, "valerie.hebert.123@example.fr"),
            (0, "valerie.hebert.12@example.fr"),
            (0, "valerie.hebert.123@example.com"),
            (0, "valerie.hebert.1@example.fr"),
        ];
        check(0, &long, &[2, 0, 1, 3]);
        check(2, &long, &[2, 0, 1, 3]);
        // A difference at the first byte of the second and third levels, the last bytes deciding otherwise.
        check(0, &[(0, "abcdefghb-"), (0, "abcdefgha~")], &[1, 0]);
        check(0, &[(0, "abcdefghijklmnopb-"), (0, "abcdefghijklmnopa~")], &[1, 0]);
        check(2, &[(0, "abcdefb-"), (0, "abcdefa~")], &[1, 0]);
        check(2, &[(0, "abcdefghijklmnb-"), (0, "abcdefghijklmna~")], &[1, 0]);
        check(4, &[(0, "abcdb-"), (0, "abcda~")], &[1, 0]);
        // A text that is a prefix of another, at and around each level's end.
        let prefixes = [(0, "abcdefgh"), (0, "abcdefg"), (0, "abcdef"), (0, "abcdefghijklmno"), (0, "abcdefghijklmn")];
        check(0, &prefixes, &[2, 1, 0, 4, 3]);
        check(2, &prefixes, &[2, 1, 0, 4, 3]);
        check(4, &prefixes, &[2, 1, 0, 4, 3]);
        // Equal texts keep their arrival order, at the first level and deeper.
        check(0, &[(0, "b"), (0, "a"), (0, "b"), (0, "a")], &[1, 3, 0, 2]);
        check(2, &[(0, "same.long.text@x.fr"), (0, "same.long.text@x.f"), (0, "same.long.text@x.fr")], &[1, 0, 2]);
        // Empty texts first, in arrival order.
        check(0, &[(0, "a"), (0, ""), (0, "\0"), (0, "")], &[1, 3, 2, 0]);
        // 0x00 bytes are not the end of the text, within a level and at its end.
        let zeros = [
            (0, "a\0"),
            (0, "a"),
            (0, "a\0\0"),
            (0, "abcdefgh\0"),
            (0, "abcdefgh"),
            (0, "abcdefgh\0\0\0\0\0\0\0\0\0"),
            (0, "abcdefgh\0\0\0\0\0\0\0\0"),
            (0, "abcdef"),
            (0, "abcdef\0"),
        ];
        check(0, &zeros, &[1, 0, 2, 7, 8, 4, 3, 6, 5]);
        check(2, &zeros, &[1, 0, 2, 7, 8, 4, 3, 6, 5]);
        check(4, &zeros, &[1, 0, 2, 7, 8, 4, 3, 6, 5]);
        // Non-ASCII bytes sort above ASCII, as bytes.
        check(0, &[(0, "éa"), (0, "z"), (0, "ea"), (0, "é")], &[2, 1, 3, 0]);
        // The head first, then the text.
        check(2, &[(1, "a"), (0, "b"), (1, ""), (0, "b")], &[1, 3, 2, 0]);
        // Many structures (more than 65,536): 4-byte heads.
        let wide = [(70_000, "a"), (65_536, "b"), (70_000, ""), (1, "zzzzzzzz"), (65_536, "abcdefghij")];
        check(4, &wide, &[3, 4, 1, 2, 0]);
        check(2, &[(65_535, "a"), (0, "b")], &[1, 0]);
    }

    /// Texts from few letters and long shared prefixes, so that keys tie at
    /// several levels; 0x00 and non-ASCII bytes among them.
    fn texts(heads: u32) -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
        let prefixes = prop::sample::select(vec!["", "valerie.", "valerie.hebert.1", "abcdefghijklmnopqrstu"]);
        let tail = prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0, 0xC3, 0xA9]), 0..10);
        let text = (prefixes, tail).prop_map(|(p, t)| [p.as_bytes(), &t].concat());
        prop::collection::vec((0..heads, text), 0..60)
    }

    proptest! {
        #[test]
        fn by_text_equals_the_full_comparison(
            (head_bytes, input) in prop_oneof![
                texts(1).prop_map(|t| (0, t)),
                texts(3).prop_map(|t| (2, t)),
                texts(3).prop_map(|t| (4, t.into_iter().map(|(h, s)| (h * 70_000, s)).collect())),
            ]
        ) {
            let input: Vec<(u32, &[u8])> = input.iter().map(|(h, t)| (*h, t.as_slice())).collect();
            prop_assert_eq!(sorted(head_bytes, &input), compared(&input));
        }
    }
}
