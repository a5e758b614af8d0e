//! What free text and ids may contain. Names, descriptions and client/request ids are shown on
//! pages, in CSV exports and in logs; control characters (NUL, escape sequences) and Unicode
//! bidirectional controls (which make `txt.exe` read as `exe.txt`, "Trojan Source") are refused
//! at the edge with the field's name, never stored.

use crate::error::ApiError;

/// Whether `c` reorders or isolates text direction (U+200E/F, U+202A–U+202E, U+2066–U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses control and bidi-control characters in `value`; `multiline` allows line breaks and
/// tabs (descriptions).
pub fn check_text(field: &str, value: &str, multiline: bool) -> Result<(), ApiError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    let bad = value
        .chars()
        .find(|c| (c.is_control() && !allowed(*c)) || is_bidi_control(*c));
    match bad {
        None => Ok(()),
        Some(c) => Err(ApiError::invalid(
            field,
            format!(
                "must not contain control or text-direction characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_text;

    #[test]
    fn refuses_control_and_bidi_characters_and_allows_the_rest() {
        assert!(check_text("name", "Beethoven – Sinfonie Nr. 9 🎻", false).is_ok());
        assert!(check_text("description", "line one\nline two\tindented", true).is_ok());
        assert!(check_text("name", "line one\nline two", false).is_err());
        for bad in [
            "a\u{0}b",
            "\u{1b}[31mred",
            "abc\u{202E}txt.exe",
            "\u{2066}x",
            "\u{200F}",
        ] {
            assert!(check_text("name", bad, false).is_err(), "{bad:?}");
            assert!(check_text("description", bad, true).is_err(), "{bad:?}");
        }
    }
}
