//! Routing an RT ticket: queue, owner, priority, tags and hand-over (see
//! [`TicketSystem::route`](crate::TicketSystem::route)).
//!
//! - One `GET /ticket/{id}` first; only what differs is written, so the same routing applied
//!   twice writes nothing the second time.
//! - The queue (a name or id) is resolved with `GET /queue/{name}` and the owner (a user name or
//!   id) with `GET /user/{name}`, once per process (cached). Unknown ones are permanent errors
//!   before anything is written: RT itself answers a `PUT` naming an unknown queue or user with
//!   200 and a message ("Queue X does not exist").
//! - The changes go in one `PUT /ticket/{id}`; when both the queue and the owner change, the
//!   owner goes in a second `PUT` (RT applies fields in alphabetical order, so the owner would
//!   otherwise be checked against the old queue's rights). RT answers 200 even when it refused
//!   a change, so the ticket is read again and anything that did not take is a permanent error
//!   carrying RT's messages.
//! - Priorities are numbers from [`RtPriorities`](super::config::RtPriorities).
//! - Tags go into the ticket custom field `tags_custom_field` (its values and the new tags);
//!   without one they are listed in the routing comment.
//! - A hand-over sets the status `open`, raises the priority to at least `high`, and writes an
//!   internal comment `wabridge: the customer asked for a person: <reason>` ending with
//!   [`ROUTING_MARKER`]. The comment is skipped when the ticket's newest routing comment says the
//!   same and was written after the ticket was last resolved. The comment follows the `PUT`: a
//!   crash in between leaves the status changed and the comment missing, which the retry writes.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::client::{FoundText, TicketState};
use super::RtConnector;
use crate::routing_support::{non_blank, same_text};
use crate::{ConnectorError, Priority, TicketRef, TicketRouting};

/// The line that ends every routing comment; the newest comment holding it is the last routing
/// comment.
pub const ROUTING_MARKER: &str = "[wa:routing]";

/// The statuses in which a ticket counts as resolved (the bot may speak again).
const RESOLVED_STATUSES: &[&str] = &["resolved", "rejected", "deleted"];

/// A routing with its blanks dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted<'a> {
    department: Option<&'a str>,
    assignee: Option<&'a str>,
    priority: Option<Priority>,
    tags: Vec<String>,
    handover: Option<&'a str>,
}

impl<'a> Wanted<'a> {
    fn from(routing: &'a TicketRouting) -> Result<Self, ConnectorError> {
        let mut tags: Vec<String> = Vec::new();
        for tag in routing.tags.iter().map(|t| t.trim()) {
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        Ok(Wanted {
            department: non_blank(routing.department.as_ref()),
            assignee: non_blank(routing.assignee.as_ref()),
            priority: routing.priority,
            tags,
            handover: routing.handover.as_deref().map(str::trim),
        })
    }
}

/// The routing comment: the hand-over's reason and/or the tags, then [`ROUTING_MARKER`]; `None`
/// when there is nothing to say.
pub fn routing_comment(handover: Option<&str>, tags: &[String]) -> Option<String> {
    let mut lines = Vec::new();
    match handover.map(str::trim) {
        Some("") => lines.push("wabridge: the customer asked for a person.".to_owned()),
        Some(reason) => lines.push(format!(
            "wabridge: the customer asked for a person: {reason}"
        )),
        None => {}
    }
    if !tags.is_empty() {
        lines.push(format!("wabridge: tags: {}", tags.join(", ")));
    }
    if lines.is_empty() {
        return None;
    }
    lines.push(ROUTING_MARKER.to_owned());
    Some(lines.join("\n"))
}

/// A ticket id the daemon recorded, if it is an RT one.
fn ticket_id(ticket: &TicketRef) -> Result<&str, ConnectorError> {
    let id = ticket.0.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConnectorError::Permanent {
            reason: "rt: the ticket reference is not an RT ticket id".to_owned(),
        });
    }
    Ok(id)
}

/// A name → value cache; a poisoned lock only costs a lookup.
#[derive(Debug, Default)]
pub(crate) struct Cache(Mutex<HashMap<String, String>>);

impl Cache {
    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: &str, value: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key.to_owned(), value.to_owned());
        }
    }
}

/// What a routing changes on a ticket.
#[derive(Debug, Default)]
struct Changes {
    queue: Option<String>,
    owner: Option<String>,
    priority: Option<i64>,
    status: Option<&'static str>,
    /// The custom field (as configured) and every value it should hold.
    tags: Option<(String, Vec<String>)>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.queue.is_none()
            && self.owner.is_none()
            && self.priority.is_none()
            && self.status.is_none()
            && self.tags.is_none()
    }

    /// The `PUT` bodies, in order (the owner after a queue move).
    fn bodies(&self) -> Vec<Value> {
        let mut first = Map::new();
        if let Some(queue) = &self.queue {
            first.insert("Queue".into(), Value::from(queue.as_str()));
        }
        if let Some(priority) = self.priority {
            first.insert("Priority".into(), Value::from(priority));
        }
        if let Some(status) = self.status {
            first.insert("Status".into(), Value::from(status));
        }
        if let Some((field, values)) = &self.tags {
            first.insert("CustomFields".into(), json!({ field.as_str(): values }));
        }
        let mut bodies = Vec::new();
        match &self.owner {
            Some(owner) if self.queue.is_some() => {
                bodies.push(Value::Object(first));
                bodies.push(json!({ "Owner": owner }));
            }
            Some(owner) => {
                first.insert("Owner".into(), Value::from(owner.as_str()));
                bodies.push(Value::Object(first));
            }
            None => bodies.push(Value::Object(first)),
        }
        bodies
    }

    /// What did not take, read from the ticket after the write.
    fn not_applied(&self, after: &TicketState) -> Vec<String> {
        let mut missing = Vec::new();
        if let Some(queue) = &self.queue {
            if after.queue.as_deref() != Some(queue.as_str()) {
                missing.push("the queue".to_owned());
            }
        }
        if let Some(owner) = &self.owner {
            if !after
                .owner
                .as_deref()
                .is_some_and(|now| now.eq_ignore_ascii_case(owner))
            {
                missing.push("the owner".to_owned());
            }
        }
        if let Some(priority) = self.priority {
            if after.priority != Some(priority) {
                missing.push("the priority".to_owned());
            }
        }
        if let Some(status) = self.status {
            if after.status != status {
                missing.push(format!("the status `{status}`"));
            }
        }
        if let Some((field, values)) = &self.tags {
            let held = after
                .custom_fields
                .iter()
                .find(|cf| cf.is(field))
                .map(|cf| cf.values.as_slice())
                .unwrap_or_default();
            if !values.iter().all(|v| held.contains(v)) {
                missing.push(format!(
                    "the tags (custom field `{field}` must exist, take several values, be \
                     applied to the ticket's queue, and the user needs ModifyCustomField)"
                ));
            }
        }
        missing
    }
}

impl RtConnector {
    /// The queue's id: `GET /queue/{department}` once, then cached.
    async fn queue_id(&self, department: &str) -> Result<String, ConnectorError> {
        if let Some(id) = self.queues.get(department) {
            return Ok(id);
        }
        let id =
            self.client
                .queue_id(department)
                .await?
                .ok_or_else(|| ConnectorError::Permanent {
                    reason: format!(
                        "rt: routing: RT has no queue `{department}`, or the connector's user may \
                     not see it (it needs SeeQueue, ShowTicket and ModifyTicket there)"
                    ),
                })?;
        self.queues.put(department, &id);
        Ok(id)
    }

    /// The user's name: `GET /user/{assignee}` once, then cached.
    async fn user_name(&self, assignee: &str) -> Result<String, ConnectorError> {
        if let Some(name) = self.users.get(assignee) {
            return Ok(name);
        }
        let name =
            self.client
                .user_name(assignee)
                .await?
                .ok_or_else(|| ConnectorError::Permanent {
                    reason: format!(
                        "rt: routing: RT has no user `{assignee}` (give the user name or numeric \
                     id of an RT user who may own tickets)"
                    ),
                })?;
        self.users.put(assignee, &name);
        Ok(name)
    }

    fn priority_number(&self, priority: Priority) -> i64 {
        let p = &self.config.priorities;
        match priority {
            Priority::Low => p.low,
            Priority::Normal => p.normal,
            Priority::High => p.high,
            Priority::Urgent => p.urgent,
        }
    }

    fn tags_field(&self) -> Option<&str> {
        self.config
            .tags_custom_field
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
    }

    async fn changes(
        &self,
        ticket: &TicketState,
        wanted: &Wanted<'_>,
    ) -> Result<Changes, ConnectorError> {
        let mut changes = Changes::default();
        if let Some(department) = wanted.department {
            let id = self.queue_id(department).await?;
            if ticket.queue.as_deref() != Some(id.as_str()) {
                changes.queue = Some(id);
            }
        }
        if let Some(assignee) = wanted.assignee {
            let current = ticket.owner.as_deref().unwrap_or_default();
            if !current.eq_ignore_ascii_case(assignee) {
                let name = self.user_name(assignee).await?;
                if !current.eq_ignore_ascii_case(&name) {
                    changes.owner = Some(name);
                }
            }
        }
        let mut priority = wanted.priority.map(|p| self.priority_number(p));
        if wanted.handover.is_some() {
            let high = self.priority_number(Priority::High);
            let base = priority.or(ticket.priority).unwrap_or(i64::MIN);
            priority = Some(base.max(high));
            if ticket.status != "open" {
                changes.status = Some("open");
            }
        }
        changes.priority = priority.filter(|p| ticket.priority != Some(*p));
        if let (Some(field), false) = (self.tags_field(), wanted.tags.is_empty()) {
            let mut values = ticket
                .custom_fields
                .iter()
                .find(|cf| cf.is(field))
                .map(|cf| cf.values.clone())
                .unwrap_or_default();
            let before = values.len();
            for tag in &wanted.tags {
                if !values.contains(tag) {
                    values.push(tag.clone());
                }
            }
            if values.len() != before {
                changes.tags = Some((field.to_owned(), values));
            }
        }
        Ok(changes)
    }

    /// Whether the comment must be written: not when the newest routing comment says the same
    /// and was written after the ticket was last resolved.
    fn comment_due(found: Option<&FoundText>, ticket: &TicketState, text: &str) -> bool {
        let Some(found) = found else {
            return true;
        };
        let after_resolve = match (found.created, ticket.resolved) {
            (_, None) => true,
            (Some(created), Some(resolved)) => created > resolved,
            (None, Some(_)) => false,
        };
        !(after_resolve && same_text(&found.content, text))
    }

    pub(super) async fn apply_routing(
        &self,
        ticket: &TicketRef,
        routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        let id = ticket_id(ticket)?;
        let wanted = Wanted::from(routing)?;
        let state = self
            .client
            .ticket(id)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "rt: routing: ticket {id} does not exist, or the connector's user may not \
                     see it"
                ),
            })?;
        let changes = self.changes(&state, &wanted).await?;
        if !changes.is_empty() {
            let mut messages = Vec::new();
            for body in changes.bodies() {
                messages.extend(self.client.update_ticket(id, &body).await?);
            }
            let after = self
                .client
                .ticket(id)
                .await?
                .ok_or_else(|| ConnectorError::Permanent {
                    reason: format!(
                        "rt: routing: ticket {id} is no longer visible after the update (moved \
                         to a queue the connector's user may not see?)"
                    ),
                })?;
            let missing = changes.not_applied(&after);
            if !missing.is_empty() {
                let said: Vec<String> = messages
                    .iter()
                    .map(|m| m.chars().take(200).collect())
                    .collect();
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "rt: routing: RT did not apply {} to ticket {id} (RT said: {})",
                        missing.join(", "),
                        if said.is_empty() {
                            "nothing".to_owned()
                        } else {
                            said.join("; ")
                        }
                    ),
                });
            }
            tracing::debug!(ticket = id, "Routing applied to the RT ticket.");
        }
        let noted_tags: &[String] = if self.tags_field().is_some() {
            &[]
        } else {
            &wanted.tags
        };
        if let Some(text) = routing_comment(wanted.handover, noted_tags) {
            let found = self.client.newest_text_with(id, ROUTING_MARKER).await?;
            if Self::comment_due(found.as_ref(), &state, &text) {
                let body = json!({ "Content": text, "ContentType": "text/plain" });
                self.client.comment(id, &body).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn resolved(&self, ticket: &TicketRef) -> Result<bool, ConnectorError> {
        let id = ticket_id(ticket)?;
        // A ticket that is gone (deleted for good, or out of sight) holds no conversation.
        Ok(self
            .client
            .ticket(id)
            .await?
            .is_none_or(|state| RESOLVED_STATUSES.contains(&state.status.as_str())))
    }
}
