//! SOQL literals and Salesforce timestamps.
//!
//! Every value the connector puts into a SOQL query goes through [`literal`] or
//! [`contains_pattern`] (string literals, escaped as the SOQL reference lists: `\'`, `\"`,
//! `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and in `LIKE` patterns `\_` and `\%`) or [`datetime`]
//! (unquoted dateTime literals), so no message id, name or configured value can change a
//! query's meaning.

use chrono::{DateTime, SecondsFormat, Utc};

fn escape_into(out: &mut String, value: &str, like: bool) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '_' if like => out.push_str("\\_"),
            '%' if like => out.push_str("\\%"),
            // No escape exists for other control characters; they never belong in a value.
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// A SOQL string literal holding exactly `value`: `'…'`, escaped.
pub fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    escape_into(&mut out, value, false);
    out.push('\'');
    out
}

/// A `LIKE` pattern literal matching text that contains `value` anywhere: `'%…%'`, escaped,
/// with `_` and `%` in `value` matching only themselves.
pub fn contains_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    out.push_str("'%");
    escape_into(&mut out, value, true);
    out.push_str("%'");
    out
}

/// A SOQL dateTime literal (unquoted, UTC, whole seconds): `2026-11-27T09:30:00Z`.
pub fn datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a Salesforce dateTime as the REST API returns it (`2026-11-27T09:30:00.000+0000`),
/// or RFC 3339.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(literal("O'Brien"), r"'O\'Brien'");
        assert_eq!(literal(r#"a\b"c"#), r#"'a\\b\"c'"#);
        assert_eq!(literal("line\nnext\ttab\u{0}"), r"'line\nnext\ttab'");
        // Outside LIKE, _ and % are plain characters and stay as they are.
        assert_eq!(literal("50%_off"), "'50%_off'");
        assert_eq!(literal("' OR Id != '"), r"'\' OR Id != \''");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(
            contains_pattern("[wa:wamid.a_b%c']"),
            r"'%[wa:wamid.a\_b\%c\']%'"
        );
    }

    #[test]
    fn formats_and_parses_salesforce_datetimes() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 30, 0)
            .single()
            .expect("time");
        assert_eq!(datetime(at), "2026-11-27T09:30:00Z");
        assert_eq!(parse_datetime("2026-11-27T09:30:00.000+0000"), Some(at));
        assert_eq!(parse_datetime("2026-11-27T11:30:00.000+0200"), Some(at));
        assert_eq!(parse_datetime("2026-11-27T09:30:00Z"), Some(at));
        assert_eq!(parse_datetime("yesterday"), None);
    }
}
