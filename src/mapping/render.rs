//! Rendering: one event → one [`Outcome`]; and the exact Graph API request for a send.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};

use super::load::{is_currency_code, is_http_url};
use super::phone;
use super::{
    Button, ButtonKind, ConditionTest, Mapping, OptInEvidence, Outcome, Param, ParamKind,
    SendIntent, ValueSource,
};

impl Mapping {
    /// Decides what this mapping makes of `event`: skip when the event type or a condition does
    /// not match, invalid when the event lacks what the template needs (every missing piece is
    /// listed), otherwise the send.
    pub fn render(&self, event: &Value) -> Outcome {
        if let Some(expected) = &self.event {
            match self.event_path.first(event) {
                Ok(Some(Value::String(found))) if found == expected => {}
                Ok(found) => {
                    return Outcome::Skip {
                        reason: format!(
                            "event type at {} is {}; this mapping handles {expected:?}",
                            self.event_path.as_str(),
                            describe(found)
                        ),
                    }
                }
                Err(e) => {
                    return Outcome::Invalid {
                        reason: format!("event_path {e}"),
                    }
                }
            }
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            match condition.path.first(event) {
                Ok(found) if condition.test.holds(found) => {}
                Ok(found) => {
                    return Outcome::Skip {
                        reason: format!(
                            "condition[{i}] not met: {} should {}, found {}",
                            condition.path.as_str(),
                            condition.test.describe(),
                            describe(found)
                        ),
                    }
                }
                Err(e) => {
                    return Outcome::Invalid {
                        reason: format!("condition[{i}] {e}"),
                    }
                }
            }
        }

        let mut errors = Vec::new();
        let to = match self.recipient.first(event) {
            Ok(Some(Value::String(raw))) => phone::normalise(raw, &self.phone),
            Ok(Some(Value::Number(n))) => phone::normalise(&n.to_string(), &self.phone),
            Ok(found) => Err(format!("is {}, not a phone number", describe_kind(found))),
            Err(e) => Err(e),
        }
        .map_err(|e| errors.push(format!("recipient ({}) {e}", self.recipient.as_str())))
        .ok();

        let mut components = Vec::new();
        if let Some(header) = &self.header {
            if let Some(p) = collect(&mut errors, render_param(header, event)) {
                components.push(json!({"type": "header", "parameters": [p]}));
            }
        }
        if !self.body.is_empty() {
            let params: Vec<Value> = self
                .body
                .iter()
                .filter_map(|p| collect(&mut errors, render_param(p, event)))
                .collect();
            components.push(json!({"type": "body", "parameters": params}));
        }
        let mut buttons: Vec<&Button> = self.buttons.iter().collect();
        buttons.sort_by_key(|b| b.index);
        for button in buttons {
            if let Some(c) = collect(&mut errors, render_button(button, event)) {
                components.push(c);
            }
        }

        let mut parts = Vec::new();
        for path in &self.idempotency_key {
            let part = path
                .first(event)
                .and_then(text_of)
                .map_err(|e| format!("idempotency_key ({}) {e}", path.as_str()));
            if let Some(part) = collect(&mut errors, part) {
                parts.push(part);
            }
        }

        match to {
            Some(to) if errors.is_empty() => Outcome::Send(SendIntent {
                mapping: self.name.clone(),
                to,
                template: self.template.clone(),
                language: self.language.clone(),
                components,
                idempotency_key: format!("{}:{}", self.name, parts.join(":")),
                opt_in: self.opt_in_evidence(event),
            }),
            _ => Outcome::Invalid {
                reason: errors.join("; "),
            },
        }
    }

    /// Meta's exact template-send body for `intent` (`POST /{phone-number-id}/messages`).
    pub fn request_body(intent: &SendIntent) -> Value {
        let mut template = json!({
            "name": intent.template,
            "language": {"code": intent.language},
        });
        if !intent.components.is_empty() {
            template["components"] = Value::Array(intent.components.clone());
        }
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": intent.to,
            "type": "template",
            "template": template,
        })
    }

    /// What `wabridge mapping test` prints: the exact request that would be sent, or why not.
    pub fn dry_run(&self, event: &Value) -> String {
        match self.render(event) {
            Outcome::Send(intent) => {
                let body = Self::request_body(&intent);
                let pretty =
                    serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string());
                let mut out = format!(
                    "SEND (mapping {}, idempotency key {})\n",
                    intent.mapping, intent.idempotency_key
                );
                if let Some(opt_in) = &intent.opt_in {
                    let _ = writeln!(
                        out,
                        "opt-in evidence: {} ({} = {})",
                        opt_in.evidence, opt_in.path, opt_in.value
                    );
                }
                let _ = writeln!(out, "POST /{{phone-number-id}}/messages\n{pretty}");
                out
            }
            Outcome::Skip { reason } => format!("SKIP (mapping {}): {reason}\n", self.name),
            Outcome::Invalid { reason } => format!("BLOCKED (mapping {}): {reason}\n", self.name),
        }
    }

    fn opt_in_evidence(&self, event: &Value) -> Option<OptInEvidence> {
        let rule = self.opt_in.as_ref()?;
        let value = rule.path.first(event).ok()??;
        let proves = match &rule.equals {
            Some(expected) => loose_eq(value, expected),
            None => truthy(value),
        };
        proves.then(|| OptInEvidence {
            evidence: rule.evidence.clone(),
            path: rule.path.as_str().to_owned(),
            value: value.clone(),
        })
    }
}

/// Keeps `Ok` values, pushes errors.
fn collect<T>(errors: &mut Vec<String>, result: Result<T, String>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

impl ConditionTest {
    fn holds(&self, found: Option<&Value>) -> bool {
        match self {
            ConditionTest::Truthy => found.is_some_and(truthy),
            ConditionTest::Equals(v) => found.is_some_and(|f| loose_eq(f, v)),
            ConditionTest::OneOf(vs) => found.is_some_and(|f| vs.iter().any(|v| loose_eq(f, v))),
            ConditionTest::NotOneOf(vs) => {
                found.is_some_and(|f| !f.is_null() && !vs.iter().any(|v| loose_eq(f, v)))
            }
        }
    }

    fn describe(&self) -> String {
        let list = |vs: &[Value]| {
            vs.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ConditionTest::Truthy => "be present and not false, null, 0 or empty".to_owned(),
            ConditionTest::Equals(v) => format!("equal {v}"),
            ConditionTest::OneOf(vs) => format!("be one of [{}]", list(vs)),
            ConditionTest::NotOneOf(vs) => format!("be present and none of [{}]", list(vs)),
        }
    }
}

/// Equality where `1` equals `1.0`.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A value for a reason text (short; strings quoted).
fn describe(found: Option<&Value>) -> String {
    match found {
        None => "nothing".to_owned(),
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null)) => {
            let text = v.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(60).collect::<String>())
            } else {
                text
            }
        }
        Some(other) => describe_kind(Some(other)),
    }
}

/// The kind of a value, never its content (for values that may be personal data).
fn describe_kind(found: Option<&Value>) -> String {
    match found {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
    .to_owned()
}

/// A scalar as text; nothing, null, arrays and objects are errors.
fn text_of(found: Option<&Value>) -> Result<String, String> {
    match found {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        other => Err(format!("is {}", describe_kind(other))),
    }
}

/// Meta rejects parameter text with newlines, tabs or more than four spaces in a row (132018),
/// and empty text: whitespace runs become one space.
fn clean_text(text: &str) -> Result<String, String> {
    let cleaned = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        Err("is empty".to_owned())
    } else {
        Ok(cleaned)
    }
}

/// Resolves a value source to text; errors name the field and path.
fn resolve(field: &str, source: &ValueSource, event: &Value) -> Result<String, String> {
    match source {
        ValueSource::Literal(text) => Ok(text.clone()),
        ValueSource::Path(path) => path
            .first(event)
            .and_then(text_of)
            .map_err(|e| format!("{field} ({}) {e}", path.as_str())),
    }
}

fn source_label(source: &ValueSource) -> String {
    match source {
        ValueSource::Literal(_) => "fixed value".to_owned(),
        ValueSource::Path(p) => p.as_str().to_owned(),
    }
}

fn render_param(param: &Param, event: &Value) -> Result<Value, String> {
    let field = param.field.as_str();
    let mut value = match &param.kind {
        ParamKind::Text(source) => {
            let text = resolve(field, source, event)?;
            let text =
                clean_text(&text).map_err(|e| format!("{field} ({}) {e}", source_label(source)))?;
            json!({"type": "text", "text": text})
        }
        ParamKind::Currency {
            amount,
            code,
            fallback,
        } => {
            let found = amount
                .first(event)
                .map_err(|e| format!("{field}.amount_path {e}"))?;
            let (number, amount_text) = match found {
                Some(Value::Number(n)) => (n.as_f64(), n.to_string()),
                Some(Value::String(s)) => (s.trim().parse::<f64>().ok(), s.trim().to_owned()),
                other => (None, describe_kind(other)),
            };
            let number = number
                .filter(|x| x.is_finite() && x.abs() < 1e12)
                .ok_or_else(|| {
                    format!(
                        "{field} ({}) is {amount_text}, not an amount",
                        amount.as_str()
                    )
                })?;
            let code = resolve(field, code, event)?.trim().to_ascii_uppercase();
            if !is_currency_code(&code) {
                return Err(format!(
                    "{field} currency code {code:?} is not an ISO 4217 code"
                ));
            }
            // A fallback path that selects nothing falls back to "CODE amount".
            let fallback_text = match fallback {
                Some(path) => match path.first(event) {
                    Ok(None | Some(Value::Null)) => None,
                    found => Some(
                        found
                            .and_then(text_of)
                            .and_then(|t| clean_text(&t))
                            .map_err(|e| format!("{field} ({}) {e}", path.as_str()))?,
                    ),
                },
                None => None,
            };
            let fallback_value = fallback_text.unwrap_or_else(|| format!("{code} {amount_text}"));
            // Rounded to the nearest thousandth; the range check above keeps it in i64.
            #[allow(clippy::cast_possible_truncation)]
            let amount_1000 = (number * 1000.0).round() as i64;
            json!({"type": "currency", "currency": {
                "fallback_value": fallback_value,
                "code": code,
                "amount_1000": amount_1000,
            }})
        }
        ParamKind::DateTime { value, format } => {
            let text = resolve(field, value, event)?;
            let text = match format {
                Some(format) => format_date(&text, format)
                    .map_err(|e| format!("{field} ({}) {e}", source_label(value)))?,
                None => text,
            };
            let text =
                clean_text(&text).map_err(|e| format!("{field} ({}) {e}", source_label(value)))?;
            json!({"type": "date_time", "date_time": {"fallback_value": text}})
        }
        ParamKind::Media { kind, link } => {
            let url = resolve(field, link, event)?;
            let url = url.trim().to_owned();
            if !is_http_url(&url) {
                return Err(format!(
                    "{field} ({}) is not an https:// URL",
                    source_label(link)
                ));
            }
            json!({"type": kind.as_str(), kind.as_str(): {"link": url}})
        }
    };
    if let (Some(name), Value::Object(map)) = (&param.name, &mut value) {
        map.insert("parameter_name".to_owned(), Value::String(name.clone()));
    }
    Ok(value)
}

/// Formats an RFC 3339 timestamp (in its own offset), a `YYYY-MM-DD HH:MM:SS` time or a date.
fn format_date(text: &str, format: &str) -> Result<String, String> {
    let text = text.trim();
    let mut out = String::new();
    let written = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        write!(out, "{}", t.format(format))
    } else if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
    {
        write!(out, "{}", t.format(format))
    } else if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        write!(out, "{}", d.format(format))
    } else {
        return Err("is not an RFC 3339 timestamp or YYYY-MM-DD date".to_owned());
    };
    written.map(|()| out).map_err(|_| {
        format!(
            "cannot be formatted with {format:?} (a date has no time; a local time has no offset)"
        )
    })
}

fn render_button(button: &Button, event: &Value) -> Result<Value, String> {
    let field = button.field.as_str();
    let (sub_type, parameter) = match &button.kind {
        ButtonKind::Url(source) => {
            let suffix = resolve(field, source, event)?;
            let suffix = clean_text(&suffix)
                .map_err(|e| format!("{field} ({}) {e}", source_label(source)))?;
            ("url", json!({"type": "text", "text": suffix}))
        }
        ButtonKind::QuickReply(source) => {
            let payload = resolve(field, source, event)?;
            (
                "quick_reply",
                json!({"type": "payload", "payload": payload}),
            )
        }
    };
    let mut component = Map::new();
    component.insert("type".into(), json!("button"));
    component.insert("sub_type".into(), json!(sub_type));
    component.insert("index".into(), json!(button.index.to_string()));
    component.insert("parameters".into(), json!([parameter]));
    Ok(Value::Object(component))
}
