//! Text that people read in the admin pages and logs (labels, client names,
//! scope descriptions): no control characters, and no format characters, which
//! render as nothing or reorder what follows (U+202E RIGHT-TO-LEFT OVERRIDE makes
//! `home-1<U+202E>2-emoh` look like another site; U+200B ZERO WIDTH SPACE makes two
//! labels that look the same differ). Stored in Unicode Normalization Form C, so
//! that `é` typed as one character or as `e` and a combining accent is one label.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` is a format character (Unicode general category Cf, Unicode 15):
/// invisible, or changing how the text around it is shown.
pub fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Whether `s` holds a control or format character.
pub fn has_hidden(s: &str) -> bool {
    if s.is_ascii() {
        return s.bytes().any(|b| b.is_ascii_control());
    }
    s.chars().any(|c| c.is_control() || is_format(c))
}

/// `s` in Normalization Form C (ASCII, most labels, already is).
pub fn nfc(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    s.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_hidden() {
        for s in [
            "home\u{202E}1",
            "ho\u{200B}me",
            "\u{FEFF}home",
            "a\u{2066}b",
            "x\u{00AD}y",
        ] {
            assert!(has_hidden(s), "{s:?}");
        }
        for s in [
            "Maison Sainte-Anne, Lyon",
            "care-home-042",
            "Zürich",
            "東京",
        ] {
            assert!(!has_hidden(s), "{s:?}");
        }
    }

    #[test]
    fn decomposed_text_is_composed() {
        assert_eq!(nfc("Cafe\u{0301}"), "Café");
        assert_eq!(nfc("Café"), "Café");
    }
}
