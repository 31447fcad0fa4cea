//! The routing file as written: serde structs with spans, deserialized piece by piece so one
//! bad `[[rule]]` does not hide the problems of the next.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// Top-level scalar keys.
pub(super) const HEAD_KEYS: &[&str] = &["default_language", "default_department"];

/// Top-level tables and arrays of tables, each deserialized on its own.
pub(super) const SECTION_KEYS: &[&str] = &[
    "department",
    "values",
    "hours",
    "away",
    "handover",
    "reply",
    "menu",
    "rule",
    "example",
];

/// Keys of a `[department.<key>]`.
pub(super) const DEPARTMENT_KEYS: &[&str] = &["name", "targets"];
/// Keys of `[hours]`.
pub(super) const HOURS_KEYS: &[&str] = &[
    "timezone",
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "holidays",
];
/// Keys of `[away]`.
pub(super) const AWAY_KEYS: &[&str] = &[
    "text",
    "text_ar",
    "away_every_hours",
    "quiet_after_agent_minutes",
];
/// Keys of `[handover]`.
pub(super) const HANDOVER_KEYS: &[&str] = &["keywords", "text", "text_ar", "tags", "priority"];
/// Keys of a `[reply.<name>]`.
pub(super) const REPLY_KEYS: &[&str] = &[
    "text",
    "text_ar",
    "buttons",
    "list_button",
    "list_button_ar",
    "section_title",
    "section_title_ar",
    "rows",
];
/// Keys of a `[menu.<name>]` (besides its `[[menu.<name>.option]]`s).
pub(super) const MENU_KEYS: &[&str] = &[
    "text",
    "text_ar",
    "style",
    "list_button",
    "list_button_ar",
    "exit",
    "exit_label",
    "exit_label_ar",
    "invalid",
    "invalid_ar",
    "max_invalid",
    "expire_minutes",
    "option",
];
/// Action keys shared by rules and menu options.
pub(super) const ACTION_KEYS: &[&str] = &[
    "department",
    "assignee",
    "priority",
    "tags",
    "reply",
    "menu",
    "handover",
];
/// Keys of a `[[menu.<name>.option]]` besides the actions.
pub(super) const OPTION_KEYS: &[&str] =
    &["key", "label", "label_ar", "description", "description_ar"];
/// Keys of a `[[rule]]` besides the actions.
pub(super) const RULE_KEYS: &[&str] = &[
    "name",
    "keywords",
    "regex",
    "message_type",
    "reply_id",
    "country",
    "language",
    "first_message",
    "hours",
    "stop",
];
/// Keys of an `[[example]]`.
pub(super) const EXAMPLE_KEYS: &[&str] = &[
    "name",
    "text",
    "message_type",
    "reply_id",
    "wa_id",
    "profile_language",
    "first_message",
    "at",
    "state",
    "expect_rules",
    "expect_department",
    "expect_assignee",
    "expect_priority",
    "expect_tags",
    "expect_replies",
    "expect_handover",
    "expect_escalated",
    "expect_menu",
];

/// One string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    /// `reply = "hours"`
    One(String),
    /// `reply = ["hours", "location"]`
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// `handover = true` or `handover = "reason"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum HandoverSpec {
    /// `handover = true`
    Flag(bool),
    /// `handover = "customer reported a problem"`
    Reason(String),
}

/// The top-level scalar keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHead {
    /// `en` or `ar`: the reply language when nothing else tells.
    pub default_language: Option<Spanned<String>>,
    /// Department of a conversation no rule assigned.
    pub default_department: Option<Spanned<String>>,
}

/// A `[department.<key>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDepartment {
    /// Display name and default queue / group / owner name.
    pub name: Spanned<String>,
    /// Per-system target: connector name → queue, group or owner.
    pub targets: Option<Spanned<BTreeMap<String, String>>>,
}

/// `[hours]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHours {
    /// IANA time zone, e.g. `Asia/Muscat`.
    pub timezone: Spanned<String>,
    /// Opening ranges of Sundays.
    pub sunday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Mondays.
    pub monday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Tuesdays.
    pub tuesday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Wednesdays.
    pub wednesday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Thursdays.
    pub thursday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Fridays.
    pub friday: Option<Spanned<OneOrMany>>,
    /// Opening ranges of Saturdays.
    pub saturday: Option<Spanned<OneOrMany>>,
    /// Closed dates or date ranges.
    pub holidays: Option<Vec<Spanned<String>>>,
}

/// `[away]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAway {
    /// The away message.
    pub text: Spanned<String>,
    /// Its Arabic version.
    pub text_ar: Option<Spanned<String>>,
    /// At most one away message per conversation per this many hours.
    pub away_every_hours: Option<Spanned<i64>>,
    /// No away message this many minutes after an agent's reply.
    pub quiet_after_agent_minutes: Option<Spanned<i64>>,
}

/// `[handover]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHandover {
    /// Words that reach a person in any state.
    pub keywords: Option<Vec<Spanned<String>>>,
    /// What the customer is told when handed over.
    pub text: Option<Spanned<String>>,
    /// Its Arabic version.
    pub text_ar: Option<Spanned<String>>,
    /// Tags added on hand-over.
    pub tags: Option<Spanned<Vec<String>>>,
    /// Priority set on hand-over (unless a rule set one).
    pub priority: Option<Spanned<String>>,
}

/// A reply button.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawButton {
    /// Id echoed back when tapped.
    pub id: Spanned<String>,
    /// Title (≤ 20 characters).
    pub title: Spanned<String>,
    /// Arabic title.
    pub title_ar: Option<Spanned<String>>,
}

/// A list row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRow {
    /// Id echoed back when chosen.
    pub id: Spanned<String>,
    /// Title (≤ 24 characters).
    pub title: Spanned<String>,
    /// Arabic title.
    pub title_ar: Option<Spanned<String>>,
    /// Description (≤ 72 characters).
    pub description: Option<Spanned<String>>,
    /// Arabic description.
    pub description_ar: Option<Spanned<String>>,
}

/// A `[reply.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReply {
    /// The text (the body of an interactive message).
    pub text: Spanned<String>,
    /// Its Arabic version.
    pub text_ar: Option<Spanned<String>>,
    /// Up to 3 reply buttons.
    pub buttons: Option<Spanned<Vec<Spanned<RawButton>>>>,
    /// The button opening the list.
    pub list_button: Option<Spanned<String>>,
    /// Its Arabic version.
    pub list_button_ar: Option<Spanned<String>>,
    /// Title of the list's section.
    pub section_title: Option<Spanned<String>>,
    /// Its Arabic version.
    pub section_title_ar: Option<Spanned<String>>,
    /// List rows (≤ 10).
    pub rows: Option<Spanned<Vec<Spanned<RawRow>>>>,
}

/// A `[menu.<name>]` without its options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMenu {
    /// The prompt.
    pub text: Spanned<String>,
    /// Its Arabic version.
    pub text_ar: Option<Spanned<String>>,
    /// text | buttons | list
    pub style: Option<Spanned<String>>,
    /// The button opening the list (style list).
    pub list_button: Option<Spanned<String>>,
    /// Its Arabic version.
    pub list_button_ar: Option<Spanned<String>>,
    /// The key that hands over to a person (default `0`).
    pub exit: Option<Spanned<String>>,
    /// The exit's label.
    pub exit_label: Option<Spanned<String>>,
    /// Its Arabic version.
    pub exit_label_ar: Option<Spanned<String>>,
    /// Hint shown before the prompt after invalid input.
    pub invalid: Option<Spanned<String>>,
    /// Its Arabic version.
    pub invalid_ar: Option<Spanned<String>>,
    /// Invalid inputs in a row that hand over.
    pub max_invalid: Option<Spanned<i64>>,
    /// Minutes without an answer after which the menu is dropped.
    pub expire_minutes: Option<Spanned<i64>>,
}

/// A `[[menu.<name>.option]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOption {
    /// What the customer types (`1`).
    pub key: Spanned<String>,
    /// What the option is called.
    pub label: Spanned<String>,
    /// Its Arabic version.
    pub label_ar: Option<Spanned<String>>,
    /// Row description (style list).
    pub description: Option<Spanned<String>>,
    /// Its Arabic version.
    pub description_ar: Option<Spanned<String>>,
    /// Action: department key.
    pub department: Option<Spanned<String>>,
    /// Action: assignee.
    pub assignee: Option<Spanned<String>>,
    /// Action: priority.
    pub priority: Option<Spanned<String>>,
    /// Action: tags.
    pub tags: Option<Spanned<Vec<String>>>,
    /// Action: replies.
    pub reply: Option<Spanned<OneOrMany>>,
    /// Action: next menu.
    pub menu: Option<Spanned<String>>,
    /// Action: hand over.
    pub handover: Option<Spanned<HandoverSpec>>,
}

/// A `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    /// Unique name.
    pub name: Spanned<String>,
    /// Condition: one of these keywords.
    pub keywords: Option<Vec<Spanned<String>>>,
    /// Condition: one of these regexes.
    pub regex: Option<Spanned<OneOrMany>>,
    /// Condition: Meta message type.
    pub message_type: Option<Spanned<OneOrMany>>,
    /// Condition: interactive reply id or button payload.
    pub reply_id: Option<Spanned<OneOrMany>>,
    /// Condition: calling code.
    pub country: Option<Spanned<OneOrMany>>,
    /// Condition: language.
    pub language: Option<Spanned<OneOrMany>>,
    /// Condition: first message or not.
    pub first_message: Option<Spanned<bool>>,
    /// Condition: open or closed.
    pub hours: Option<Spanned<String>>,
    /// Stop evaluating later rules.
    pub stop: Option<Spanned<bool>>,
    /// Action: department key.
    pub department: Option<Spanned<String>>,
    /// Action: assignee.
    pub assignee: Option<Spanned<String>>,
    /// Action: priority.
    pub priority: Option<Spanned<String>>,
    /// Action: tags.
    pub tags: Option<Spanned<Vec<String>>>,
    /// Action: replies.
    pub reply: Option<Spanned<OneOrMany>>,
    /// Action: menu.
    pub menu: Option<Spanned<String>>,
    /// Action: hand over.
    pub handover: Option<Spanned<HandoverSpec>>,
}

/// The state before an example's message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExampleState {
    /// A menu is waiting.
    pub menu: Option<String>,
    /// Minutes since the customer's last activity in that menu (default 1).
    pub menu_idle_minutes: Option<i64>,
    /// Invalid inputs so far in that menu.
    pub invalid: Option<u32>,
    /// With a person.
    pub escalated: Option<bool>,
    /// Minutes since the away message was sent.
    pub away_sent_minutes_ago: Option<i64>,
    /// Minutes since an agent replied.
    pub agent_replied_minutes_ago: Option<i64>,
    /// Current department.
    pub department: Option<String>,
    /// Conversation language.
    pub language: Option<String>,
}

/// An `[[example]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExample {
    /// What it shows.
    pub name: Option<String>,
    /// Message text.
    pub text: Option<String>,
    /// Message type (default `text`, or `interactive` with a reply_id).
    pub message_type: Option<Spanned<String>>,
    /// Interactive reply id.
    pub reply_id: Option<String>,
    /// Customer's number.
    pub wa_id: Option<Spanned<String>>,
    /// Profile language.
    pub profile_language: Option<String>,
    /// First message of the conversation.
    pub first_message: Option<bool>,
    /// RFC 3339 time.
    pub at: Option<Spanned<toml::Value>>,
    /// State before.
    pub state: Option<Spanned<RawExampleState>>,
    /// Expected matched names.
    pub expect_rules: Option<Vec<String>>,
    /// Expected department.
    pub expect_department: Option<Spanned<String>>,
    /// Expected assignee.
    pub expect_assignee: Option<String>,
    /// Expected priority.
    pub expect_priority: Option<Spanned<String>>,
    /// Expected tags.
    pub expect_tags: Option<Vec<String>>,
    /// Expected replies: one text each reply contains.
    pub expect_replies: Option<Vec<String>>,
    /// Expected hand-over.
    pub expect_handover: Option<bool>,
    /// Expected escalated state after.
    pub expect_escalated: Option<bool>,
    /// Expected waiting menu after ("" for none).
    pub expect_menu: Option<Spanned<String>>,
}
