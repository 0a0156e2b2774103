//! What the compact states (the desired state, the current state) share:
//! rows as fixed records whose strings live in one text buffer and whose
//! repeated values (structures, services, rights…) are indexes into tables.
//! A million rows then cost tens of bytes each, not hundreds.

use std::{borrow::Borrow, collections::HashMap, hash::Hash};

/// "No value" in a row's optional fields (lengths and row numbers).
pub(super) const NONE: u32 = u32::MAX;

/// Values many rows share, each stored once and named by its index.
#[derive(Debug, Clone)]
pub(super) struct Table<T> {
    pub(super) values: Vec<T>,
    index: HashMap<T, u32, foldhash::fast::RandomState>,
    /// The index answered last.
    last: u32,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { values: Vec::new(), index: HashMap::default(), last: NONE }
    }
}

impl<T: Clone + Eq + Hash> Table<T> {
    /// The index of a value equal to `value`, stored first if new. Rows
    /// often repeat the value of the row before: it is compared before any hashing.
    pub(super) fn intern_ref(&mut self, value: &T) -> u32 {
        if let Some(last) = self.values.get(self.last as usize)
            && last == value
        {
            return self.last;
        }
        self.last = match self.index.get(value) {
            Some(&i) => i,
            None => self.intern(value.clone()),
        };
        self.last
    }

    /// [`Table::intern_ref`] given a borrowed form of a value (`&str` for
    /// `String`): nothing is allocated for a value already there. Kept apart
    /// from `intern_ref`, which the row pushes of both states call: as one
    /// generic function the million-row plans peaked 1.5–3 MB higher (seven
    /// and three interleaved pairs, session 14).
    pub(super) fn intern_borrowed<Q>(&mut self, value: &Q) -> u32
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = T> + ?Sized,
    {
        if let Some(last) = self.values.get(self.last as usize)
            && last.borrow() == value
        {
            return self.last;
        }
        self.last = match self.index.get(value) {
            Some(&i) => i,
            None => self.intern(value.to_owned()),
        };
        self.last
    }

    pub(super) fn intern(&mut self, value: T) -> u32 {
        if let Some(&i) = self.index.get(&value) {
            return i;
        }
        let i = u32::try_from(self.values.len()).expect("fewer than 4 billion distinct values");
        self.values.push(value.clone());
        self.index.insert(value, i);
        i
    }
}

/// The bytes a field with this length takes in a row's text.
pub(super) fn present(len: u32) -> usize {
    if len == NONE { 0 } else { len as usize }
}

pub(super) fn length(s: Option<&str>) -> u32 {
    s.map_or(NONE, |s| u32::try_from(s.len()).expect("a cell shorter than 4 GB"))
}

/// Where a row's strings start in its state's text, in 6 bytes (48 bits:
/// 256 TiB). A `usize` took 8 and aligned the whole row to 8: a desired row
/// took 56 bytes and takes 48, a current row 32 and 28 (a million-row plan
/// holds a million of each at its peak of memory: 12 MB less).
#[derive(Debug, Clone, Copy)]
pub(super) struct TextAt([u16; 3]);

impl TextAt {
    fn new(at: usize) -> TextAt {
        let at = at as u64;
        assert!(at >> 48 == 0, "a state's text is under 256 TiB");
        TextAt([at as u16, (at >> 16) as u16, (at >> 32) as u16])
    }

    pub(super) fn get(self) -> usize {
        let [a, b, c] = self.0.map(u64::from);
        (a | b << 16 | c << 32) as usize
    }

    /// The `len` bytes from here (a row's first string: its e-mail).
    pub(super) fn span(self, len: u16) -> std::ops::Range<usize> {
        let at = self.get();
        at..at + usize::from(len)
    }
}

/// Appends a row's present strings one after the other; answers where they start.
pub(super) fn push_strings<'s>(text: &mut String, strings: impl IntoIterator<Item = Option<&'s str>>) -> TextAt {
    let start = text.len();
    for s in strings.into_iter().flatten() {
        text.push_str(s);
    }
    TextAt::new(start)
}

/// The field of `text` that starts at `at` and is `len` bytes long, or `None` for [`NONE`].
pub(super) fn field(text: &str, at: usize, len: u32) -> Option<&str> {
    (len != NONE).then(|| &text[at..at + len as usize])
}

/// An address's length in a row: at most 254 characters (`Email::parse`),
/// so at most 1,016 bytes.
pub(super) fn email_length(email: &str) -> u16 {
    u16::try_from(email.len()).expect("an e-mail address of at most 254 characters")
}

/// Each value's rank in sorted order, by its index in `values`: rows then
/// compare by integer first.
pub(super) fn ranks<T: Ord>(values: &[T]) -> Vec<u32> {
    let mut by_value: Vec<u32> = (0..values.len() as u32).collect();
    by_value.sort_unstable_by(|a, b| values[*a as usize].cmp(&values[*b as usize]));
    let mut rank = vec![0u32; by_value.len()];
    for (position, i) in by_value.iter().enumerate() {
        rank[*i as usize] = position as u32;
    }
    rank
}

/// Puts `rows[order[i]]` at `i` for every `i`, in place (following each
/// cycle of the permutation): no second copy of a million rows.
pub(super) fn permute<T: Copy>(rows: &mut [T], order: &mut [u32]) {
    const DONE: u32 = u32::MAX;
    for start in 0..rows.len() {
        if order[start] == DONE {
            continue;
        }
        let first = rows[start];
        let mut at = start;
        loop {
            let from = order[at] as usize;
            order[at] = DONE;
            if from == start {
                rows[at] = first;
                break;
            }
            rows[at] = rows[from];
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_at_keeps_48_bits() {
        for at in [0, 1, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, (1 << 48) - 1] {
            assert_eq!(TextAt::new(at).get(), at, "{at:#x}");
        }
        assert_eq!(size_of::<TextAt>(), 6);
    }

    #[test]
    #[should_panic(expected = "under 256 TiB")]
    fn text_at_refuses_more_than_48_bits() {
        TextAt::new(1 << 48);
    }

    #[test]
    fn permute_follows_every_cycle() {
        let rows: Vec<usize> = (0..7).collect();
        // Two cycles (0 3 5) (1 6) and a fixed point 2, 4.
        let order = [3u32, 6, 2, 5, 4, 0, 1];
        let mut permuted = rows.clone();
        permute(&mut permuted, &mut order.clone());
        let got: Vec<usize> = permuted.clone();
        assert_eq!(got, order.iter().map(|i| *i as usize).collect::<Vec<_>>());
    }
}
