//! Text folding used wherever people type names: headers, value maps, statuses.
//!
//! HR exports spell the same header "Prénom", "PRENOM " or "prénom"; folding
//! makes them one key so configuration does not have to list every variant.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Lower-cases, strips accents and collapses runs of white space (including
/// non-breaking spaces) into one space, trimming both ends.
pub fn fold(s: &str) -> String {
    // Most cells are ASCII: NFD leaves ASCII as is and no ASCII character is
    // a combining mark, so the decomposition (~5% of a plan) is skipped.
    if s.is_ascii() {
        fold_chars(s.chars(), s.len())
    } else {
        fold_chars(s.nfd().filter(|c| !is_combining_mark(*c)), s.len())
    }
}

fn fold_chars(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `str::trim`, quicker for text that neither starts nor ends with white
/// space, as nearly every cell: `trim` decodes a character at each end (~50
/// instructions a call), and a plan trims each of a million rows' cells twice.
pub fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::{fold, trim};

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "é",
            " é ",
            "\u{a0}a\u{a0}",
            "a\u{2003}",
            "\u{1}a\u{7f}",
            "ab",
            "a b",
            "\u{3000}x",
            "x\u{85}",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn trim_agrees_with_str_trim(s in "[ \\t\\n\u{a0}\u{2003}\u{1}aé]{0,5}|.{0,8}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn folds_case_accents_and_spaces() {
        for (input, expect) in [
            ("Prénom", "prenom"),
            ("  PRENOM  ", "prenom"),
            ("Date  de\u{a0}sortie", "date de sortie"),
            ("Adresse électronique", "adresse electronique"),
            ("Œuvre", "œuvre"),
            ("", ""),
            ("   ", ""),
            // ASCII takes a shortcut that must agree: every ASCII white space
            // (vertical tab and form feed included) collapses, case folds.
            ("\tSORTI\x0b\x0c le\r\nMOIS ", "sorti le mois"),
            ("Code_Service-2", "code_service-2"),
            ("e\u{301}", "e"),
        ] {
            assert_eq!(fold(input), expect, "fold({input:?})");
        }
    }
}
