//! Request templates and answer paths, compiled once when the configuration is loaded.
//!
//! A [`Template`] is a path or a JSON body with `{placeholder}`s. In a path every value is
//! percent-encoded (everything but `A–Z a–z 0–9 - . _ ~`, so `+968…` becomes `%2B968…`). In a
//! body a placeholder inside a JSON string literal is JSON-escaped (`"` → `\"`, newline → `\n`,
//! non-ASCII kept as UTF-8); a placeholder outside any string literal becomes a whole JSON
//! value: a number when the value is a plain integer (`"id": {ticket}` → `"id": 42`), else a
//! string. Either way a body that parses with sample values parses with any values.
//!
//! A placeholder is `{` + a name (`[A-Za-z_][A-Za-z0-9_.]*`) + `}`; any other `{` is kept as it
//! is, so JSON objects (`{"a": …}`, `{}`) need no escaping. An [`IdPath`] is a JSONPath
//! (RFC 9535, evaluated by `jsonpath-rust`) that reads an id out of an answer.

use std::collections::BTreeMap;
use std::fmt;

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// `conversation.*`: the conversation (ticketing requests, activities).
pub(crate) const CONVERSATION: &[&str] = &[
    "conversation.key",
    "conversation.phone_number_id",
    "conversation.display_phone_number",
];
/// `contact.*`: the customer.
pub(crate) const CONTACT: &[&str] = &[
    "contact.key",
    "contact.e164",
    "contact.digits",
    "contact.bsuid",
    "contact.name",
    "contact.display",
];
/// `message.*`: the message being delivered (ticketing role).
pub(crate) const MESSAGE: &[&str] = &[
    "message.id",
    "message.marker",
    "message.text",
    "message.kind",
    "message.timestamp",
];
/// `attachment.*`: one file of the message (`ticket.attach` only).
pub(crate) const ATTACHMENT: &[&str] = &[
    "attachment.filename",
    "attachment.mime_type",
    "attachment.size",
    "attachment.base64",
];
/// `activity.*`: the message being logged on the contact's timeline (CRM role).
pub(crate) const ACTIVITY: &[&str] = &[
    "activity.id",
    "activity.marker",
    "activity.text",
    "activity.direction",
    "activity.at",
];
/// The ticket's id (known, found by `ticket.find`, or answered by `ticket.create`).
pub(crate) const TICKET: &str = "ticket";
/// The text of an internal note (`ticket.note` only).
pub(crate) const NOTE: &str = "note";
/// The CRM's id of the contact (`contact.activity`, `contact.exists`).
pub(crate) const CONTACT_ID: &str = "contact_id";

/// Every placeholder name, in the order the docs list them.
fn all_names() -> impl Iterator<Item = &'static str> {
    CONVERSATION
        .iter()
        .chain(CONTACT)
        .chain(MESSAGE)
        .chain(ATTACHMENT)
        .chain(ACTIVITY)
        .copied()
        .chain([TICKET, NOTE, CONTACT_ID])
}

/// Where a template is used, which decides how values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The path and query after the base URL: values percent-encoded.
    Path,
    /// A JSON body: values JSON-escaped.
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    /// A placeholder; `quoted` when it sits inside a JSON string literal of a body.
    Slot {
        name: &'static str,
        quoted: bool,
    },
}

/// A compiled path or body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    place: Place,
    segments: Vec<Segment>,
}

/// Why a template could not be rendered for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// A path placeholder whose value is empty for this call (e.g. no phone number).
    Empty(&'static str),
    /// No value was provided (a bug: the scope promised it).
    Missing(&'static str),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Empty(name) => write!(
                f,
                "{{{name}}} is empty here (e.g. a contact without a phone number), and a path \
                 cannot be built without it"
            ),
            RenderError::Missing(name) => write!(f, "no value for {{{name}}}"),
        }
    }
}

/// The length of the placeholder name at the start of `rest` (which follows a `{`), when
/// `rest` starts with a name and `}`.
fn name_len(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return None,
    }
    for (at, c) in chars {
        if c == '}' {
            return Some(at);
        }
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return None;
        }
    }
    None
}

impl Template {
    /// Compiles `text`; every placeholder must be one of `available`. The error names every
    /// unknown or unavailable placeholder and lists the available ones.
    pub(crate) fn parse(
        text: &str,
        place: Place,
        available: &[&'static str],
    ) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut unknown = Vec::new();
        let mut unavailable = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut at = 0;
        while let Some(c) = text[at..].chars().next() {
            if c == '{' {
                if let Some(len) = name_len(&text[at + 1..]) {
                    let written = &text[at + 1..at + 1 + len];
                    match available.iter().find(|name| **name == written) {
                        Some(name) => {
                            if !literal.is_empty() {
                                segments.push(Segment::Text(std::mem::take(&mut literal)));
                            }
                            segments.push(Segment::Slot {
                                name,
                                quoted: in_string,
                            });
                        }
                        None if all_names().any(|name| name == written) => {
                            unavailable.push(format!("{{{written}}}"));
                        }
                        None => unknown.push(format!("{{{written}}}")),
                    }
                    at += len + 2;
                    continue;
                }
            }
            if place == Place::Body {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        in_string = false;
                    }
                } else if c == '"' {
                    in_string = true;
                }
            }
            literal.push(c);
            at += c.len_utf8();
        }
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        let mut problems = Vec::new();
        if !unknown.is_empty() {
            problems.push(format!("unknown placeholder {}", unknown.join(", ")));
        }
        if !unavailable.is_empty() {
            problems.push(format!(
                "{} not available in this request",
                unavailable.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(Template { place, segments })
        } else {
            let listed: Vec<String> = available.iter().map(|n| format!("{{{n}}}")).collect();
            let listed = if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(" ")
            };
            Err(format!("{}; available here: {listed}", problems.join("; ")))
        }
    }

    /// Whether the template uses the placeholder `name`.
    pub(crate) fn uses(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|segment| matches!(segment, Segment::Slot { name: used, .. } if *used == name))
    }

    /// The text with every placeholder replaced by its encoded value.
    pub(crate) fn render(&self, values: &Values) -> Result<String, RenderError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot { name, quoted } => {
                    let value = values.get(name).ok_or(RenderError::Missing(name))?;
                    match (self.place, quoted) {
                        (Place::Path, _) if value.is_empty() => {
                            return Err(RenderError::Empty(name))
                        }
                        (Place::Path, _) => out.push_str(&percent_encode(value)),
                        (Place::Body, true) => out.push_str(&json_escape(value)),
                        (Place::Body, false) => out.push_str(&json_value(value)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The values of one call's placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Values(BTreeMap<&'static str, String>);

impl Values {
    /// Sets `name` to `value`.
    pub(crate) fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.0.insert(name, value.into());
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every name of `scope` set to `value` (for checking templates at load).
    pub(crate) fn sample(scope: &[&'static str], value: &str) -> Self {
        let mut values = Values::default();
        for name in scope {
            values.set(name, value);
        }
        values
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `value` escaped for the inside of a JSON string literal (without the quotes).
fn json_escape(value: &str) -> String {
    let quoted = Value::String(value.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// `value` as a whole JSON value: a plain integer as a number, anything else as a string.
fn json_value(value: &str) -> String {
    let plain_integer = !value.is_empty()
        && value.len() <= 15
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if plain_integer {
        value.to_owned()
    } else {
        Value::String(value.to_owned()).to_string()
    }
}

/// A JSONPath compiled at load, with the text the admin wrote (for messages).
#[derive(Clone)]
pub(crate) struct IdPath {
    text: String,
    query: JpQuery,
}

impl fmt::Debug for IdPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl IdPath {
    /// Compiles `text`; the error is one readable line.
    pub(crate) fn compile(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if !text.starts_with('$') {
            return Err(format!(
                "invalid JSONPath {text:?}: a path starts with `$` (the answer's root), e.g. \
                 \"$.ticket.id\""
            ));
        }
        parse_json_path(text)
            .map(|query| IdPath {
                text: text.to_owned(),
                query,
            })
            .map_err(|err| format!("invalid JSONPath {text:?}: {}", one_line(&err.to_string())))
    }

    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The first value the path selects, `None` when it selects nothing.
    pub(crate) fn first<'a>(&self, answer: &'a Value) -> Result<Option<&'a Value>, String> {
        js_path_process(&self.query, answer)
            .map(|found| found.into_iter().next().map(|hit| hit.val))
            .map_err(|err| format!("{}: {}", self.text, one_line(&err.to_string())))
    }
}

/// Turns pest's multi-line report ("--> 1:9 … = expected selector") into "column 9: expected
/// selector".
fn one_line(message: &str) -> String {
    let column = message
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|position| position.split(':').nth(1))
        .map(str::trim);
    let expected = message
        .lines()
        .rev()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("= "));
    match (column, expected) {
        (Some(column), Some(what)) => format!("column {column}: {what}"),
        _ => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCOPE: &[&str] = &["message.text", "ticket", "contact.e164"];

    fn values() -> Values {
        let mut values = Values::default();
        values.set("message.text", "He said \"hi\"\\\nمرحبا {x}");
        values.set("ticket", "42");
        values.set("contact.e164", "+96890000001");
        values
    }

    #[test]
    fn escapes_values_inside_json_strings_and_keeps_json_braces() {
        let template = Template::parse(
            r#"{"body": "Text: {message.text}", "meta": {}, "n": "{ticket}"}"#,
            Place::Body,
            SCOPE,
        )
        .expect("compiles");
        let rendered = template.render(&values()).expect("renders");
        assert_eq!(
            rendered,
            r#"{"body": "Text: He said \"hi\"\\\nمرحبا {x}", "meta": {}, "n": "42"}"#
        );
        let parsed: Value = serde_json::from_str(&rendered).expect("JSON");
        assert_eq!(parsed["body"], "Text: He said \"hi\"\\\nمرحبا {x}");
    }

    #[test]
    fn a_placeholder_outside_quotes_is_a_whole_json_value() {
        let template = Template::parse(
            r#"{"id": {ticket}, "text": {message.text}, "phone": {contact.e164}}"#,
            Place::Body,
            SCOPE,
        )
        .expect("compiles");
        let parsed: Value =
            serde_json::from_str(&template.render(&values()).expect("renders")).expect("JSON");
        assert_eq!(
            parsed,
            json!({"id": 42, "text": "He said \"hi\"\\\nمرحبا {x}", "phone": "+96890000001"})
        );
        for (value, expected) in [("0", "0"), ("007", "\"007\""), ("", "\"\"")] {
            assert_eq!(json_value(value), expected);
        }
    }

    #[test]
    fn an_escaped_quote_does_not_end_the_string() {
        let template = Template::parse(
            r#"{"a": "say \"{ticket}\"", "b": {ticket}}"#,
            Place::Body,
            SCOPE,
        )
        .expect("compiles");
        assert_eq!(
            template.render(&values()).expect("renders"),
            r#"{"a": "say \"42\"", "b": 42}"#
        );
    }

    #[test]
    fn percent_encodes_path_values_and_refuses_empty_ones() {
        let template = Template::parse(
            "/contacts/{contact.e164}?q={message.text}",
            Place::Path,
            SCOPE,
        )
        .expect("compiles");
        assert_eq!(
            template.render(&values()).expect("renders"),
            "/contacts/%2B96890000001?q=He%20said%20%22hi%22%5C%0A%D9%85%D8%B1%D8%AD%D8%A8%D8%A7%20%7Bx%7D"
        );
        let mut empty = values();
        empty.set("contact.e164", "");
        assert_eq!(
            template.render(&empty),
            Err(RenderError::Empty("contact.e164"))
        );
    }

    #[test]
    fn names_unknown_and_unavailable_placeholders() {
        let err = Template::parse(
            "/t/{ticket}/{message.txt}/{note}/{Contact.e164}",
            Place::Path,
            SCOPE,
        )
        .expect_err("rejected");
        assert_eq!(
            err,
            "unknown placeholder {message.txt}, {Contact.e164}; {note} not available in this \
             request; available here: {message.text} {ticket} {contact.e164}"
        );
    }

    #[test]
    fn compiles_id_paths_and_reads_the_first_match() {
        let path = IdPath::compile("$.tickets[0].id").expect("compiles");
        let answer = json!({"tickets": [{"id": 7}, {"id": 8}]});
        assert_eq!(path.first(&answer).expect("evaluates"), Some(&json!(7)));
        assert_eq!(
            path.first(&json!({"tickets": []})).expect("evaluates"),
            None
        );
        assert_eq!(
            IdPath::compile("$.tickets[").expect_err("bad"),
            "invalid JSONPath \"$.tickets[\": column 11: expected selector"
        );
        assert!(IdPath::compile("tickets.id")
            .expect_err("bad")
            .contains("starts with `$`"));
    }
}
