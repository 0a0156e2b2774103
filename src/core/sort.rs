//! Sorting row indexes by (head, text, index) with integer comparisons only:
//! multi-level key refinement. A million e-mail addresses share long
//! prefixes (every `valerie.` ties on its first 8 bytes); a comparator that
//! falls back to the text reads two random places in memory per comparison.
//! Here each level reads each text of a run once, to make its next key.

/// Text bytes in one level's key; the key's last byte says where the text ends.
const WIDTH: usize = 7;

/// A key's last byte when the text goes on past the key's bytes. Otherwise
/// it is the number of bytes left (0 to [`WIDTH`]): a text that ends sorts
/// before a longer one whose next bytes are 0x00, as the strings do.
const GOES_ON: u8 = u8::MAX;

/// The bytes a head of `0..values` takes: 2 up to 65,536 values (structure
/// ranks), 4 beyond.
pub(super) fn head_bytes(values: usize) -> usize {
    if values > 1 << 16 { 4 } else { 2 }
}

/// Sorts `(head, index)` pairs by (head, text, index), `text` giving each
/// index's text, heads taking `head_bytes` bytes (0: no head, the first
/// members are ignored). The first members are scratch for the keys: on
/// return they hold no head any more, only the order of the pairs matters.
///
/// Every level sorts a run by `(key, index)` as integers, the key being the
/// head (first level only), the next bytes of the text, and the end marker.
/// Runs of equal keys whose texts go on are sorted again by their next
/// bytes; equal keys that end their texts are equal (head, text): they stay
/// in index order, i.e. arrival.
pub(super) fn by_text<'t>(pairs: &mut [(u64, u32)], head_bytes: usize, text: impl Fn(u32) -> &'t [u8]) {
    debug_assert!(head_bytes == 0 || head_bytes <= 4 && pairs.iter().all(|(head, _)| head >> (8 * head_bytes) == 0));
    for (key, i) in pairs.iter_mut() {
        *key = level_key(&key.to_be_bytes()[8 - head_bytes..], text(*i), 0);
    }
    pairs.sort_unstable();
    // A stack, one entry per level being refined (not per run): where that
    // level's scan is, where its range ends, and the depth in the text of
    // the bytes after its keys'.
    let mut levels = vec![(0, pairs.len(), WIDTH - head_bytes)];
    while let Some(level) = levels.last_mut() {
        let (start, end, depth) = *level;
        if start == end {
            levels.pop();
            continue;
        }
        let key = pairs[start].0;
        let run_end = start + pairs[start..end].iter().take_while(|(k, _)| *k == key).count();
        level.0 = run_end;
        if run_end - start > 1 && key as u8 == GOES_ON {
            let run = &mut pairs[start..run_end];
            for (key, i) in run.iter_mut() {
                *key = level_key(&[], text(*i), depth);
            }
            run.sort_unstable();
            levels.push((start, run_end, depth + WIDTH));
        }
    }
}

/// `head`, then the text's bytes from `depth` on (zero-padded to
/// `WIDTH - head.len()` bytes), then the end marker, as a big-endian
/// integer. The text goes on at least to `depth` (its run's keys said so).
fn level_key(head: &[u8], text: &[u8], depth: usize) -> u64 {
    let width = WIDTH - head.len();
    let rest = &text[depth..];
    let n = rest.len().min(width);
    let mut key = [0u8; 8];
    key[..head.len()].copy_from_slice(head);
    key[head.len()..head.len() + n].copy_from_slice(&rest[..n]);
    key[WIDTH] = if rest.len() > width { GOES_ON } else { rest.len() as u8 };
    u64::from_be_bytes(key)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The order `by_text` gives these (head, text) pairs, as their indexes.
    fn sorted(head_bytes: usize, input: &[(u32, &[u8])]) -> Vec<u32> {
        let mut pairs: Vec<(u64, u32)> = (0..input.len() as u32).map(|i| (u64::from(input[i as usize].0), i)).collect();
        by_text(&mut pairs, head_bytes, |i| input[i as usize].1);
        pairs.into_iter().map(|(_, i)| i).collect()
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
        check(0, &[(0, "abcdefgb-"), (0, "abcdefga~")], &[1, 0]);
        check(0, &[(0, "abcdefghijklmnb-"), (0, "abcdefghijklmna~")], &[1, 0]);
        check(2, &[(0, "abcdeb-"), (0, "abcdea~")], &[1, 0]);
        check(2, &[(0, "abcdefghijklb-"), (0, "abcdefghijkla~")], &[1, 0]);
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
        // 0x00 bytes are not the end of the text, at every level.
        let zeros =
            [(0, "a\0"), (0, "a"), (0, "a\0\0"), (0, "abcdefg\0"), (0, "abcdefg"), (0, "abcdefg\0\0\0\0\0\0\0\0")];
        check(0, &zeros, &[1, 0, 2, 4, 3, 5]);
        check(2, &zeros, &[1, 0, 2, 4, 3, 5]);
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
