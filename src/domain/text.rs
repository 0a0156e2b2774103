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

#[cfg(test)]
mod tests {
    use super::fold;

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
