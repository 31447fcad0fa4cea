//! Routing: an admin-written `mappings/routing.toml` decides, for each inbound customer message,
//! which department gets the conversation, its assignee, priority and tags, what the bot
//! answers (text, reply buttons, lists, menus, an away message outside business hours) and when
//! the bot steps aside for a person.
//!
//! Guarantees:
//! - Pure: [`Routing::decide`] reads no clock and does no I/O; the time and the conversation's
//!   [`ConversationState`] are passed in, and the next state comes back in the [`Decision`] for
//!   the daemon to persist. The same input always gives the same decision.
//! - Everything is checked at load time, every problem at once as `file:line: field: message`
//!   (unknown keys, references, regexes, time zones, WhatsApp's limits on buttons and lists).
//! - A customer can always reach a person: the `[handover]` keywords (by default "agent",
//!   "human", "person", "موظف") work in every state and every menu has an exit key (default
//!   `0`). Once handed over, the conversation gets no bot reply at all until the daemon clears
//!   the escalation ([`ConversationState::clear_escalation`], when the ticket is resolved).
//! - The away message goes out at most once per `away_every_hours` per conversation, and never
//!   within `quiet_after_agent_minutes` of an agent's reply.
//! - Every `[[example]]` of the file runs in `cargo test` and in [`Routing::check_examples`].
//!
//! Bot replies are free-form messages: the daemon's policy gate sends them only inside the 24 h
//! window. The file format is documented in the shipped `mappings/routing.toml`.

mod country;
mod decide;
mod example;
mod hours;
mod load;
mod menu;
mod reply;
mod report;
mod rules;
mod spec;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mapping::MappingProblem;

use example::Example;
use hours::BusinessHours;
use menu::Menu;
use reply::ReplyDef;
use rules::{Handover, Rule};
use text::{Lang, LocalText, Value};

/// A loaded, fully checked routing file.
#[derive(Debug, Clone)]
pub struct Routing {
    file: PathBuf,
    default_language: Lang,
    default_department: Option<String>,
    departments: BTreeMap<String, Department>,
    values: BTreeMap<String, Value>,
    hours: Option<BusinessHours>,
    away: Option<Away>,
    handover: Handover,
    replies: BTreeMap<String, ReplyDef>,
    menus: BTreeMap<String, Menu>,
    rules: Vec<Rule>,
    examples: Vec<Example>,
}

/// `[away]`: the message sent outside business hours.
#[derive(Debug, Clone)]
struct Away {
    text: LocalText,
    every: chrono::Duration,
    quiet_after_agent: chrono::Duration,
}

/// A `[department.<key>]`: who handles a kind of conversation in the ticket systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// The key used in rules and in [`TicketActions::department`] (`orders`).
    pub key: String,
    /// Display name, and the queue / group / owner name in every system without its own entry
    /// in `targets` (`Orders`).
    pub name: String,
    /// Per ticket system (connector name → queue, group or owner), e.g. `zendesk = "360001"`.
    pub targets: BTreeMap<String, String>,
}

impl Department {
    /// The queue / group / owner to use in `system` (a connector name such as `rt`): its own
    /// entry in `targets`, else [`Department::name`].
    pub fn target(&self, system: &str) -> &str {
        self.targets.get(system).map_or(&self.name, String::as_str)
    }
}

/// Loads and checks a routing file; every problem at once.
pub fn load_file(path: &Path) -> Result<Routing, Vec<MappingProblem>> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![MappingProblem {
            file: path.to_path_buf(),
            line: None,
            field: String::new(),
            message: format!("cannot read file: {e}"),
        }]
    })?;
    parse(path, &src)
}

/// Checks routing-file text as if read from `file` (for tests and `route test`).
pub fn parse(file: &Path, src: &str) -> Result<Routing, Vec<MappingProblem>> {
    load::parse_routing(file, src)
}

impl Routing {
    /// Runs every `[[example]]` block; one problem per failing example (empty when all pass).
    pub fn check_examples(&self) -> Vec<MappingProblem> {
        example::check(self)
    }

    /// Decides what happens with one inbound message, given the conversation's state and the
    /// current time. Pure.
    pub fn decide(
        &self,
        inbound: &Inbound<'_>,
        state: &ConversationState,
        now: DateTime<Utc>,
    ) -> Decision {
        decide::decide(self, inbound, state, now)
    }

    /// The file this was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// A department by key.
    pub fn department(&self, key: &str) -> Option<&Department> {
        self.departments.get(key)
    }

    /// All departments, by key.
    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    /// Number of `[[example]]` blocks (for `validate` output).
    pub fn example_count(&self) -> usize {
        self.examples.len()
    }
}

/// One inbound customer message, as the daemon parsed it from Meta's webhook.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inbound<'a> {
    /// Body, caption, or the title of a tapped button or list row.
    pub text: Option<&'a str>,
    /// Meta's message type: `text`, `image`, `interactive`, `button`, ...
    pub kind: &'a str,
    /// Interactive `button_reply` / `list_reply` id, or a template quick-reply payload.
    pub reply_id: Option<&'a str>,
    /// The customer's number, digits only (`None` when Meta withholds it).
    pub wa_id: Option<&'a str>,
    /// The customer's profile language, if known (`ar`, `en_US`); used when the text has no
    /// letters and the conversation has no language yet.
    pub profile_language: Option<&'a str>,
    /// Whether this is the conversation's first inbound message.
    pub first_message: bool,
}

/// Per-conversation routing state, persisted by the daemon between messages. Unknown fields
/// are ignored and missing ones default, so stored states survive upgrades.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct ConversationState {
    /// The menu waiting for the customer's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub menu: Option<MenuPosition>,
    /// Set when the conversation was handed to a person; the bot stays silent while set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// When the away message was last sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub away_sent_at: Option<DateTime<Utc>>,
    /// When an agent last replied (set by the daemon through [`ConversationState::agent_replied`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_replied_at: Option<DateTime<Utc>>,
    /// The department the conversation is assigned to (a `[department.<key>]` key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The customer's language as last detected from their text (`ar` or `en`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Where a conversation is in a menu.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MenuPosition {
    /// The `[menu.<name>]` shown last.
    pub menu: String,
    /// When it was shown.
    pub entered_at: DateTime<Utc>,
    /// The customer's last message in this menu (or `entered_at`); the menu expires
    /// `expire_minutes` after it.
    pub last_activity: DateTime<Utc>,
    /// Invalid inputs in a row in this menu.
    #[serde(default)]
    pub invalid: u32,
}

/// A hand-over to a person.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// When it happened.
    pub since: DateTime<Utc>,
    /// Why (keyword, menu exit, rule, repeated invalid input).
    pub reason: String,
}

impl ConversationState {
    /// Whether the conversation is with a person (no bot replies).
    pub fn escalated(&self) -> bool {
        self.escalation.is_some()
    }

    /// The ticket was resolved: the bot may answer again. Also leaves any menu.
    pub fn clear_escalation(&mut self) {
        self.escalation = None;
        self.menu = None;
    }

    /// An agent replied at `at`: no away message for `quiet_after_agent_minutes`, and any menu
    /// is left (the customer is now talking to a person, not choosing options).
    pub fn agent_replied(&mut self, at: DateTime<Utc>) {
        self.agent_replied_at = Some(at);
        self.menu = None;
    }
}

/// Ticket priority, mapped by each connector to its own scale.
pub use wabridge_connectors::Priority;

/// What the daemon does to the conversation's ticket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketActions {
    /// Move the ticket to this department (a key of [`Routing::department`]); only set when it
    /// differs from the conversation's current department.
    pub department: Option<String>,
    /// Assign to this agent (as written in the file: an e-mail or login).
    pub assignee: Option<String>,
    /// Set this priority.
    pub priority: Option<Priority>,
    /// Add these tags (from every matching rule), in order, without duplicates.
    pub tags: Vec<String>,
    /// Hand the conversation to a person, for this reason: mark / assign the ticket.
    pub handover: Option<String>,
}

/// A list row: (id, title ≤ 24 characters, description ≤ 72 characters).
pub type ListRow = (String, String, Option<String>);

/// A list section: (title, empty when none; rows).
pub type ListSection = (String, Vec<ListRow>);

/// A message the bot sends (free-form, inside the 24 h window).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum BotReply {
    /// A text message.
    Text {
        /// The text.
        body: String,
    },
    /// An interactive message with up to 3 reply buttons.
    Buttons {
        /// The message text (≤ 1024 characters).
        body: String,
        /// (id, title ≤ 20 characters).
        buttons: Vec<(String, String)>,
    },
    /// An interactive list message (≤ 10 rows in all).
    List {
        /// The message text (≤ 1024 characters).
        body: String,
        /// The button that opens the list (≤ 20 characters).
        button: String,
        /// (section title, rows of (id, title ≤ 24, description ≤ 72)).
        sections: Vec<ListSection>,
    },
}

/// A rule (or menu step, or hand-over keyword) that matched, for `wabridge route test`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MatchedRule {
    /// The rule's `name`; `menu:<menu>:<key>` for a menu choice (`menu:main:invalid` for input
    /// that is none of the options), `handover` for a `[handover]` keyword.
    pub name: String,
    /// Line in the file.
    pub line: usize,
    /// Why it matched, one entry per condition (`keyword "hours"`, `calling code 968`).
    pub why: Vec<String>,
    /// Its actions that took effect (`department orders`, `reply hours`).
    pub applied: Vec<String>,
    /// Its actions that did not, and why (`reply hours: an earlier rule already answers`).
    pub ignored: Vec<String>,
}

/// What was known about the message when deciding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The message type.
    pub kind: String,
    /// The text, if any.
    pub text: Option<String>,
    /// The interactive reply id or button payload, if any.
    pub reply_id: Option<String>,
    /// The language used for the conversation: `ar`, `en`, or a profile language.
    pub language: String,
    /// How the language was found: `text`, `conversation`, `profile` or `default`.
    pub language_from: String,
    /// The customer's country calling code, if the number is known.
    pub calling_code: Option<String>,
    /// Whether the business is open (`None` without `[hours]`).
    pub open: Option<bool>,
    /// The local time in the business's time zone (`None` without `[hours]`).
    pub local_time: Option<String>,
    /// Whether it is the conversation's first message.
    pub first_message: bool,
}

/// The routing decision for one inbound message. `Display` prints the `route test` report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Decision {
    /// The routing file.
    pub file: PathBuf,
    /// What was known about the message.
    pub facts: Facts,
    /// Rules, menu steps and hand-over keywords that matched, in evaluation order.
    pub matched: Vec<MatchedRule>,
    /// What to do to the ticket.
    pub ticket: TicketActions,
    /// Bot replies, in order; empty when the conversation is with a person.
    pub replies: Vec<BotReply>,
    /// The next state to persist.
    pub state: ConversationState,
    /// State changes and other things worth knowing (`menu main entered`, `away message sent`).
    pub notes: Vec<String>,
}

impl Decision {
    /// Whether this decision hands the conversation to a person.
    pub fn hands_over(&self) -> bool {
        self.ticket.handover.is_some()
    }
}

#[cfg(test)]
mod tests;
