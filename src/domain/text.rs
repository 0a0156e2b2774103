//! Text folding used wherever people type names: headers, value maps, statuses.
//!
//! HR exports spell the same header "Prénom", "PRENOM " or "prénom"; folding
//! makes them one key so configuration does not have to list every variant.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Lower-cases, strips accents and collapses runs of white space (including
/// non-breaking spaces) into one space, trimming both ends.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
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
        ] {
            assert_eq!(fold(input), expect, "fold({input:?})");
        }
    }
}
