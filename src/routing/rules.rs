//! `[[rule]]`s: conditions on a message and the actions they set, plus the `[handover]`
//! keywords that reach a person from any state.

use regex::Regex;

use super::text::{Keyword, LocalText};
use super::Priority;

/// A compiled `[[rule]]`.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) conditions: Conditions,
    pub(crate) actions: Actions,
    /// No rule after this one is evaluated when it matches.
    pub(crate) stop: bool,
}

/// Conditions of a rule; all given ones must hold. Keywords and regexes together form one
/// condition: the text matches one of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    pub(crate) keywords: Vec<Keyword>,
    pub(crate) regexes: Vec<(String, Regex)>,
    pub(crate) message_types: Vec<String>,
    /// Exact ids, or prefixes when ending in `*`.
    pub(crate) reply_ids: Vec<String>,
    /// Digit prefixes of the customer's number (calling codes or longer).
    pub(crate) countries: Vec<String>,
    pub(crate) languages: Vec<String>,
    pub(crate) first_message: Option<bool>,
    /// `Some(true)`: only while open; `Some(false)`: only while closed.
    pub(crate) open: Option<bool>,
}

/// What a condition check looks at.
pub(crate) struct MatchInput<'a> {
    /// Folded text (empty when none).
    pub(crate) folded: &'a str,
    /// Its words.
    pub(crate) words: &'a [&'a str],
    pub(crate) kind: &'a str,
    pub(crate) reply_id: Option<&'a str>,
    /// The customer's number, digits only.
    pub(crate) number: Option<&'a str>,
    pub(crate) language: &'a str,
    pub(crate) first_message: bool,
    pub(crate) open: Option<bool>,
}

/// Whether a `reply_id` condition value (exact, or a prefix ending in `*`) matches `id`.
pub(crate) fn id_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

impl Conditions {
    /// `Some(reasons)` when every condition holds, one reason per condition.
    pub(crate) fn check(&self, input: &MatchInput<'_>) -> Option<Vec<String>> {
        let mut why = Vec::new();
        if !self.keywords.is_empty() || !self.regexes.is_empty() {
            if let Some(k) = self.keywords.iter().find(|k| k.is_in(input.words)) {
                why.push(format!("keyword {:?}", k.source));
            } else if let Some((source, _)) =
                self.regexes.iter().find(|(_, r)| r.is_match(input.folded))
            {
                why.push(format!("regex {source:?}"));
            } else {
                return None;
            }
        }
        if !self.message_types.is_empty() {
            if !self.message_types.iter().any(|t| t == input.kind) {
                return None;
            }
            why.push(format!("message type {}", input.kind));
        }
        if !self.reply_ids.is_empty() {
            let id = input.reply_id?;
            let pattern = self.reply_ids.iter().find(|p| id_matches(p, id))?;
            why.push(if pattern.ends_with('*') {
                format!("reply id {id:?} (matches {pattern:?})")
            } else {
                format!("reply id {id:?}")
            });
        }
        if !self.countries.is_empty() {
            let number = input.number?;
            let prefix = self
                .countries
                .iter()
                .find(|c| number.starts_with(c.as_str()))?;
            why.push(format!("number starts with calling code {prefix}"));
        }
        if !self.languages.is_empty() {
            if !self.languages.iter().any(|l| l == input.language) {
                return None;
            }
            why.push(format!("language {}", input.language));
        }
        if let Some(first) = self.first_message {
            if first != input.first_message {
                return None;
            }
            why.push(if first {
                "first message of the conversation".to_owned()
            } else {
                "not the first message".to_owned()
            });
        }
        if let Some(open) = self.open {
            if input.open != Some(open) {
                return None;
            }
            why.push(if open {
                "business hours: open".to_owned()
            } else {
                "business hours: closed".to_owned()
            });
        }
        if why.is_empty() {
            why.push("no conditions: matches every message".to_owned());
        }
        Some(why)
    }
}

/// Actions of a rule or menu option.
#[derive(Debug, Clone, Default)]
pub(crate) struct Actions {
    pub(crate) department: Option<String>,
    pub(crate) assignee: Option<String>,
    pub(crate) priority: Option<Priority>,
    pub(crate) tags: Vec<String>,
    /// `[reply.<name>]`s to send, in order.
    pub(crate) replies: Vec<String>,
    /// A `[menu.<name>]` to show.
    pub(crate) menu: Option<String>,
    /// Hand over to a person, for this reason.
    pub(crate) handover: Option<String>,
}

impl Actions {
    /// Whether it says something to the customer or hands over (the bot's response).
    pub(crate) fn responds(&self) -> bool {
        !self.replies.is_empty() || self.menu.is_some() || self.handover.is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.responds()
            && self.department.is_none()
            && self.assignee.is_none()
            && self.priority.is_none()
            && self.tags.is_empty()
    }

    /// The response part, for reports: `reply hours, location`, `menu main`, `handover`.
    pub(crate) fn describe_response(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.replies.is_empty() {
            out.push(format!("reply {}", self.replies.join(", ")));
        }
        if let Some(menu) = &self.menu {
            out.push(format!("menu {menu}"));
        }
        if self.handover.is_some() {
            out.push("handover".to_owned());
        }
        out
    }
}

/// `[handover]`: words that reach a person from any state, and what the customer is told.
#[derive(Debug, Clone)]
pub(crate) struct Handover {
    pub(crate) line: usize,
    pub(crate) keywords: Vec<Keyword>,
    pub(crate) text: Option<LocalText>,
    pub(crate) tags: Vec<String>,
    pub(crate) priority: Option<Priority>,
}

/// Hand-over keywords when the file has no `[handover]` section.
pub(crate) const DEFAULT_HANDOVER_KEYWORDS: &[&str] = &["agent", "human", "person", "موظف"];

impl Handover {
    /// The first hand-over keyword in the folded text.
    pub(crate) fn keyword_in(&self, words: &[&str]) -> Option<&Keyword> {
        self.keywords.iter().find(|k| k.is_in(words))
    }
}
