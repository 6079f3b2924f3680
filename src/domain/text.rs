//! The rule every free-text value a client sends must pass (names, emails,
//! plan and meter ids, keys, URLs, query parameters): no control characters.
//! C0 (NUL included: PostgreSQL refuses it in `text`, which made it a 500),
//! DEL and C1 have no place in any of them, and a newline or an escape in a
//! name would reach logs, Stripe's dashboard and the settings page.

/// What a field with a control character is told.
pub const CONTROL_CHARACTER: &str = "must not contain control characters";

/// True when `value` holds a control character (Unicode `Cc`: U+0000–U+001F,
/// U+007F–U+009F).
pub fn has_control_character(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A quick pre-check on a JSON document's bytes: false when none of its
/// strings can hold a control character. Raw C0 bytes are not allowed inside
/// JSON strings, so such a character arrives escaped (`\u0000`, `\n`, …), as
/// a raw DEL (0x7F), or as a raw C1 character (UTF-8 `C2 80`–`C2 9F`).
pub fn json_may_hold_control_character(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\\'
            || b == 0x7F
            || (b == 0xC2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9F).contains(n)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_c0_del_and_c1() {
        for bad in [
            "\0",
            "a\u{1}b",
            "\n",
            "\t",
            "\r",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
        ] {
            assert!(has_control_character(bad), "{bad:?}");
        }
        for fine in [
            "",
            "Acme Inc",
            "Zoë & Søn",
            "株式会社",
            "\u{a0}",
            "\u{200b}",
            "😀",
        ] {
            assert!(!has_control_character(fine), "{fine:?}");
        }
    }

    #[test]
    fn the_json_pre_check_never_misses_one() {
        for value in ["\0", "\n", "\u{7f}", "\u{85}", "a\u{9f}"] {
            let json = serde_json::to_string(value).unwrap();
            assert!(json_may_hold_control_character(json.as_bytes()), "{json}");
        }
        assert!(!json_may_hold_control_character(
            b"{\"billing_name\":\"Zo\xc3\xab\",\"n\":1}"
        ));
        assert!(!json_may_hold_control_character(
            "{\"a\":\"é ü ©\"}".as_bytes()
        ));
    }
}
