//! Phone number normalisation to the digits Meta's `to` field wants (E.164 without the `+`).

/// How a mapping file says national numbers are to be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneRules {
    /// Country calling code (digits, no `+`) given to numbers written without one, e.g. `"968"`.
    pub default_country_code: Option<String>,
    /// Digits in a national number without trunk prefix (8 in Oman, 10 in India and the US).
    /// When set, a bare number of exactly that length is national and one of
    /// country-code-plus-that-length is international; anything else is rejected.
    pub national_number_length: Option<usize>,
}

/// Normalises `raw` to 8–15 digits (E.164 without `+`). The error never repeats the number,
/// so it may be logged and shown in tickets.
///
/// Rules, in order: spaces, dashes, dots, slashes and parentheses are dropped; a leading `+` or
/// `00` means the number is international; a leading `0` is a national trunk prefix, dropped
/// and replaced by `default_country_code`; a bare number is national (gets the default country
/// code) unless it already starts with that code and is long enough to be international
/// (see [`PhoneRules::national_number_length`] for the exact rule); with no default country
/// code a bare number is taken as international as written.
pub fn normalise(raw: &str, rules: &PhoneRules) -> Result<String, String> {
    let mut cleaned = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        match c {
            '0'..='9' => cleaned.push(c),
            '+' if cleaned.is_empty() => cleaned.push(c),
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
            _ => return Err("contains characters that are not part of a phone number".into()),
        }
    }
    let digits =
        if let Some(rest) = cleaned.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = cleaned.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = cleaned.strip_prefix('0') {
            match &rules.default_country_code {
                Some(cc) => format!("{cc}{rest}"),
                None => return Err(
                    "is a national number (leading 0) and the mapping has no default_country_code"
                        .into(),
                ),
            }
        } else {
            match (&rules.default_country_code, rules.national_number_length) {
                (None, _) => cleaned,
                (Some(cc), Some(n)) => {
                    if cleaned.len() == n {
                        format!("{cc}{cleaned}")
                    } else if cleaned.len() == cc.len() + n && cleaned.starts_with(cc.as_str()) {
                        cleaned
                    } else {
                        return Err(format!(
                            "has {} digits; expected {n} (national) or {} starting with {cc}",
                            cleaned.len(),
                            cc.len() + n
                        ));
                    }
                }
                (Some(cc), None) => {
                    if cleaned.starts_with(cc.as_str()) && cleaned.len() >= cc.len() + 8 {
                        cleaned
                    } else {
                        format!("{cc}{cleaned}")
                    }
                }
            }
        };
    if digits.starts_with('0') {
        return Err(
            "has no valid country code (starts with 0 after the international prefix)".into(),
        );
    }
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "has {} digits after normalisation; E.164 allows 8 to 15",
            digits.len()
        ));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oman() -> PhoneRules {
        PhoneRules {
            default_country_code: Some("968".into()),
            national_number_length: None,
        }
    }

    #[test]
    fn normalises_e164_variants() {
        let r = oman();
        for (input, want) in [
            ("+968 9123 4567", "96891234567"),
            ("+968-9123-4567", "96891234567"),
            ("00968 9123 4567", "96891234567"),
            ("(+968) 9123.4567", "96891234567"),
            ("9123 4567", "96891234567"),
            ("09123 4567", "96891234567"),
            ("96891234567", "96891234567"),
            ("+1 (415) 555-0100", "14155550100"),
            ("+44 20 7946 0958", "442079460958"),
        ] {
            assert_eq!(normalise(input, &r).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn without_default_country_code_bare_digits_are_international() {
        let r = PhoneRules::default();
        assert_eq!(normalise("14155550100", &r).as_deref(), Ok("14155550100"));
        assert!(normalise("0171 1234567", &r)
            .unwrap_err()
            .contains("default_country_code"));
    }

    #[test]
    fn national_number_length_disambiguates() {
        let india = PhoneRules {
            default_country_code: Some("91".into()),
            national_number_length: Some(10),
        };
        assert_eq!(
            normalise("91234 56789", &india).as_deref(),
            Ok("919123456789")
        );
        assert_eq!(
            normalise("919123456789", &india).as_deref(),
            Ok("919123456789")
        );
        assert!(normalise("9123456", &india).is_err());
    }

    #[test]
    fn rejects_garbage_and_wrong_lengths_without_echoing_the_number() {
        let r = oman();
        assert!(normalise("call me", &r).is_err());
        assert!(normalise("+12 34", &r).unwrap_err().contains("8 to 15"));
        assert!(normalise("+1234567890123456", &r).is_err());
        assert!(normalise("+0123456789", &r).is_err());
        assert!(!normalise("+12 34", &r).unwrap_err().contains("1234"));
        assert!(normalise("", &r).is_err());
    }
}
