//! `[[example]]` blocks: a message (+ optional state and time) and what must come of it. Run by
//! `cargo test` and by [`super::Routing::check_examples`], which `wabridge validate` calls.

use chrono::{DateTime, Utc};

use super::{ConversationState, Inbound, MappingProblem, Priority, Routing};

/// A compiled `[[example]]`.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub(crate) field: String,
    pub(crate) line: usize,
    pub(crate) name: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) kind: String,
    pub(crate) reply_id: Option<String>,
    pub(crate) wa_id: Option<String>,
    pub(crate) profile_language: Option<String>,
    pub(crate) first_message: bool,
    pub(crate) at: DateTime<Utc>,
    pub(crate) state: ConversationState,
    pub(crate) expect: Expect,
}

/// What an example expects; `None` fields are not checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expect {
    /// Names in `Decision::matched`, exactly and in order.
    pub(crate) rules: Option<Vec<String>>,
    pub(crate) department: Option<String>,
    pub(crate) assignee: Option<String>,
    pub(crate) priority: Option<Priority>,
    /// Exactly these tags, in order.
    pub(crate) tags: Option<Vec<String>>,
    /// As many replies, each containing its text.
    pub(crate) replies: Option<Vec<String>>,
    pub(crate) handover: Option<bool>,
    pub(crate) escalated: Option<bool>,
    /// The waiting menu after; `Some("")` for none.
    pub(crate) menu: Option<String>,
}

impl Expect {
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_none()
            && self.department.is_none()
            && self.assignee.is_none()
            && self.priority.is_none()
            && self.tags.is_none()
            && self.replies.is_none()
            && self.handover.is_none()
            && self.escalated.is_none()
            && self.menu.is_none()
    }
}

/// Runs every example of `routing`.
pub(super) fn check(routing: &Routing) -> Vec<MappingProblem> {
    routing
        .examples
        .iter()
        .filter_map(|example| {
            let failures = run(routing, example);
            if failures.is_empty() {
                return None;
            }
            let what = match &example.name {
                Some(name) => format!("example {name:?} failed: "),
                None => "example failed: ".to_owned(),
            };
            Some(MappingProblem {
                file: routing.file.clone(),
                line: Some(example.line),
                field: example.field.clone(),
                message: format!("{what}{}", failures.join("; ")),
            })
        })
        .collect()
}

/// The differences between an example's expectations and the decision.
fn run(routing: &Routing, example: &Example) -> Vec<String> {
    let inbound = Inbound {
        text: example.text.as_deref(),
        kind: &example.kind,
        reply_id: example.reply_id.as_deref(),
        wa_id: example.wa_id.as_deref(),
        profile_language: example.profile_language.as_deref(),
        first_message: example.first_message,
    };
    let decision = routing.decide(&inbound, &example.state, example.at);
    let expect = &example.expect;
    let mut failures = Vec::new();
    if let Some(rules) = &expect.rules {
        let got: Vec<&str> = decision.matched.iter().map(|m| m.name.as_str()).collect();
        if got != rules.iter().map(String::as_str).collect::<Vec<_>>() {
            failures.push(format!("matched {got:?}, expected {rules:?}"));
        }
    }
    if let Some(department) = &expect.department {
        if decision.ticket.department.as_ref() != Some(department) {
            failures.push(format!(
                "department {:?}, expected {department:?}",
                decision.ticket.department
            ));
        }
    }
    if let Some(assignee) = &expect.assignee {
        if decision.ticket.assignee.as_ref() != Some(assignee) {
            failures.push(format!(
                "assignee {:?}, expected {assignee:?}",
                decision.ticket.assignee
            ));
        }
    }
    if let Some(priority) = expect.priority {
        if decision.ticket.priority != Some(priority) {
            failures.push(format!(
                "priority {:?}, expected {}",
                decision.ticket.priority.map(Priority::as_str),
                priority
            ));
        }
    }
    if let Some(tags) = &expect.tags {
        if &decision.ticket.tags != tags {
            failures.push(format!(
                "tags {:?}, expected {tags:?}",
                decision.ticket.tags
            ));
        }
    }
    if let Some(replies) = &expect.replies {
        let got: Vec<String> = decision.replies.iter().map(|r| r.plain_text()).collect();
        if got.len() != replies.len() {
            failures.push(format!(
                "{} replies {got:?}, expected {} containing {replies:?}",
                got.len(),
                replies.len()
            ));
        } else {
            for (i, (reply, want)) in got.iter().zip(replies).enumerate() {
                if !reply.contains(want.as_str()) {
                    failures.push(format!(
                        "reply {} is {reply:?}, expected it to contain {want:?}",
                        i + 1
                    ));
                }
            }
        }
    }
    if let Some(handover) = expect.handover {
        if decision.hands_over() != handover {
            failures.push(format!(
                "hand-over {:?}, expected {}",
                decision.ticket.handover,
                if handover { "one" } else { "none" }
            ));
        }
    }
    if let Some(escalated) = expect.escalated {
        if decision.state.escalated() != escalated {
            failures.push(format!(
                "escalated after: {}, expected {escalated}",
                decision.state.escalated()
            ));
        }
    }
    if let Some(menu) = &expect.menu {
        let got = decision.state.menu.as_ref().map_or("", |p| p.menu.as_str());
        if got != menu {
            failures.push(format!("menu after: {got:?}, expected {menu:?}"));
        }
    }
    failures
}
