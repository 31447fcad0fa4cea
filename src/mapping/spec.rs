//! The mapping file as written: serde structs with spans, deserialized piece by piece so one
//! bad `[[body]]` entry does not hide the problems of the next.

use serde::Deserialize;
use toml::Spanned;

/// Top-level scalar keys of a mapping file.
pub(super) const HEAD_KEYS: &[&str] = &[
    "name",
    "description",
    "source",
    "event",
    "event_path",
    "recipient",
    "default_country_code",
    "national_number_length",
    "template",
    "language",
    "idempotency_key",
];

/// Top-level tables and arrays of tables, each deserialized on its own.
pub(super) const SECTION_KEYS: &[&str] =
    &["condition", "opt_in", "header", "body", "button", "example"];

/// Keys of a `[header]` / `[[body]]` parameter.
pub(super) const PARAM_KEYS: &[&str] = &[
    "type",
    "name",
    "path",
    "text",
    "link",
    "amount_path",
    "code",
    "code_path",
    "fallback_path",
    "format",
];
/// Keys of a `[[button]]`.
pub(super) const BUTTON_KEYS: &[&str] = &["sub_type", "index", "path", "text", "payload"];
/// Keys of a `[[condition]]`.
pub(super) const CONDITION_KEYS: &[&str] = &["path", "equals", "one_of", "not_one_of"];
/// Keys of `[opt_in]`.
pub(super) const OPT_IN_KEYS: &[&str] = &["path", "equals", "evidence"];
/// Keys of an `[[example]]`.
pub(super) const EXAMPLE_KEYS: &[&str] = &[
    "name",
    "event",
    "expect_request",
    "expect_skip",
    "expect_invalid",
    "expect_idempotency_key",
];

/// The top-level scalar keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHead {
    /// Mapping name; defaults to the file stem.
    pub name: Option<Spanned<String>>,
    /// Free text for admins.
    pub description: Option<String>,
    /// Event source (the `{source}` in `POST /events/{source}`).
    pub source: Spanned<String>,
    /// Event type this mapping handles, compared with the value at `event_path`.
    pub event: Option<Spanned<String>>,
    /// Where the event type is in the event; default `$.event`.
    pub event_path: Option<Spanned<String>>,
    /// JSONPath to the customer's phone number.
    pub recipient: Spanned<String>,
    /// Country calling code for national numbers.
    pub default_country_code: Option<Spanned<String>>,
    /// Digits of a national number, to tell national from international bare numbers.
    pub national_number_length: Option<Spanned<u8>>,
    /// Approved template name.
    pub template: Spanned<String>,
    /// Template language code, e.g. `en_US`.
    pub language: Spanned<String>,
    /// JSONPath (or list of JSONPaths) whose values make the send's idempotency key.
    pub idempotency_key: Spanned<KeySpec>,
}

/// One JSONPath or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum KeySpec {
    /// `idempotency_key = "$.order.id"`
    One(String),
    /// `idempotency_key = ["$.appointment.id", "$.reminder.kind"]`
    Many(Vec<String>),
}

/// A `[header]` or `[[body]]` parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParam {
    /// text | currency | date_time | image | document | video
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// `parameter_name` for templates with named parameters.
    pub name: Option<Spanned<String>>,
    /// JSONPath to the value (text, date_time, media link).
    pub path: Option<Spanned<String>>,
    /// Fixed text (text, date_time).
    pub text: Option<Spanned<String>>,
    /// Fixed media link.
    pub link: Option<Spanned<String>>,
    /// JSONPath to the amount (currency).
    pub amount_path: Option<Spanned<String>>,
    /// Fixed ISO 4217 currency code.
    pub code: Option<Spanned<String>>,
    /// JSONPath to the currency code.
    pub code_path: Option<Spanned<String>>,
    /// JSONPath to preformatted amount text.
    pub fallback_path: Option<Spanned<String>>,
    /// chrono strftime format for date_time.
    pub format: Option<Spanned<String>>,
}

/// A `[[button]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawButton {
    /// url | quick_reply
    pub sub_type: Spanned<String>,
    /// Button position in the template, from 0.
    pub index: Spanned<i64>,
    /// JSONPath to the URL suffix or payload.
    pub path: Option<Spanned<String>>,
    /// Fixed URL suffix.
    pub text: Option<Spanned<String>>,
    /// Fixed quick-reply payload.
    pub payload: Option<Spanned<String>>,
}

/// A `[[condition]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    /// JSONPath to test.
    pub path: Spanned<String>,
    /// Holds when the value equals this.
    pub equals: Option<Spanned<toml::Value>>,
    /// Holds when the value equals one of these.
    pub one_of: Option<Spanned<Vec<toml::Value>>>,
    /// Holds when the value is present and equals none of these.
    pub not_one_of: Option<Spanned<Vec<toml::Value>>>,
}

/// `[opt_in]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOptIn {
    /// JSONPath to the field proving opt-in.
    pub path: Spanned<String>,
    /// Value that proves opt-in; default: any truthy value.
    pub equals: Option<Spanned<toml::Value>>,
    /// Where the customer opted in, recorded with the consent.
    pub evidence: Spanned<String>,
}

/// An `[[example]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExample {
    /// What the example shows.
    pub name: Option<String>,
    /// The event, as JSON.
    pub event: Spanned<String>,
    /// The expected Graph API request body, as JSON.
    pub expect_request: Option<Spanned<String>>,
    /// Text the skip reason must contain.
    pub expect_skip: Option<Spanned<String>>,
    /// Text the invalid reason must contain.
    pub expect_invalid: Option<Spanned<String>>,
    /// The expected idempotency key.
    pub expect_idempotency_key: Option<Spanned<String>>,
}
