//! Limits of the text fields records carry, and the one function that
//! makes any text fit them: the agent applies it before it stores a
//! record, the console again before it stores what it received.

use std::borrow::Cow;

/// Longest application name, in bytes (`UsageSpan::app`, `raw_app`).
pub const MAX_APP_BYTES: usize = 256;
/// Longest user name, in bytes.
pub const MAX_USER_BYTES: usize = 64;
/// Longest window title, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest host name, in bytes (a DNS name's limit).
pub const MAX_HOSTNAME_BYTES: usize = 253;
/// Longest IANA time-zone name, in bytes (the longest known is 32).
pub const MAX_TIME_ZONE_BYTES: usize = 64;

/// `text` cut to at most `max_bytes` on a character boundary, with
/// control characters (newlines, escapes) turned into spaces, so it can
/// reach a terminal, a CSV cell or a screen only as text; borrowed when
/// it is already fine.
pub fn cap_text(text: &str, max_bytes: usize) -> Cow<'_, str> {
    let fits = text.len() <= max_bytes;
    if fits && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(
        text[..end]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_capped_on_char_boundaries_and_controls_become_spaces() {
        let cases: &[(&str, usize, &str)] = &[
            ("Firefox", 256, "Firefox"),
            ("", 4, ""),
            ("abcdef", 4, "abcd"),
            // 'é' is two bytes: a cut inside it keeps the whole char out.
            ("aé", 2, "a"),
            ("aé", 3, "aé"),
            ("日本語", 7, "日本"),
            ("line\nbreak\ttab\u{1b}[31m", 64, "line break tab [31m"),
            ("\u{85}next-line", 64, " next-line"),
        ];
        for (text, max_bytes, want) in cases {
            let capped = cap_text(text, *max_bytes);
            assert_eq!(capped, *want, "{text:?} {max_bytes}");
            assert!(capped.len() <= *max_bytes);
        }
        assert!(matches!(cap_text("Firefox", 256), Cow::Borrowed(_)));
        let huge = "x".repeat(4 << 20);
        assert_eq!(cap_text(&huge, MAX_APP_BYTES).len(), MAX_APP_BYTES);
    }
}
