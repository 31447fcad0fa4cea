//! Routing a Freshdesk ticket: group, agent, priority, tags and hand-over (see
//! [`TicketSystem::route`](crate::TicketSystem::route)).
//!
//! - One `GET /tickets/{id}` first; only what differs is written, in one `PUT /tickets/{id}`.
//!   The same routing applied twice writes nothing the second time.
//! - A group is a numeric id or a name, resolved through `GET /groups` (read once and cached;
//!   read again when a name is not in it). An agent is a numeric id or an e-mail address,
//!   resolved through `GET /agents?email=…` (cached) and sent as `responder_id`. Unknown names
//!   are permanent errors before anything is written.
//! - Priorities: `low` 1, `normal` 2 (Medium), `high` 3, `urgent` 4.
//! - Freshdesk replaces a ticket's tags on update, so the `PUT` carries the ticket's tags plus
//!   the new ones (compared without regard to case), and only when one is new.
//! - A hand-over sets the status Open (2), raises the priority to at least High (3), and adds a
//!   private note `wabridge: the customer asked for a person: <reason>` ending with
//!   [`ROUTING_MARKER`]. The note is skipped when the ticket is open already and its newest
//!   routing note says the same. The note is written before the `PUT`: after a crash between
//!   the two the retry writes it once more (one duplicate), rather than finding the ticket open
//!   and writing none.

use serde_json::{Map, Value};

use super::client::{Fields, TicketState};
use super::{html_lines, ticket_id, FreshdeskConnector, CLOSED, OPEN, RESOLVED};
use crate::routing_support::{non_blank, numeric, same_text};
use crate::{ConnectorError, Priority, TicketRef, TicketRouting};

/// The line that ends every routing note; the newest note holding it is the last one.
pub const ROUTING_MARKER: &str = "[wa:routing]";

/// Freshdesk's High priority: a hand-over raises the priority to at least this.
const HIGH: u64 = 3;

/// A routing priority as Freshdesk's number.
fn priority_number(priority: Priority) -> u64 {
    match priority {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => HIGH,
        Priority::Urgent => 4,
    }
}

/// The routing note for a hand-over, as text.
pub fn handover_note(reason: &str) -> String {
    match reason.trim() {
        "" => format!("wabridge: the customer asked for a person.\n{ROUTING_MARKER}"),
        reason => format!("wabridge: the customer asked for a person: {reason}\n{ROUTING_MARKER}"),
    }
}

impl FreshdeskConnector {
    async fn group_id(&self, department: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = numeric(department) {
            return Ok(id);
        }
        if let Some(id) = self.names.group(department) {
            return Ok(id);
        }
        // Not cached (or a group created since): read the list again.
        self.names.set_groups(self.client.groups().await?);
        self.names
            .group(department)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "freshdesk: routing: Freshdesk has no group named `{department}` (Admin → \
                     Team → Groups)"
                ),
            })
    }

    async fn responder_id(&self, assignee: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = numeric(assignee) {
            return Ok(id);
        }
        if !assignee.contains('@') {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "freshdesk: routing: the assignee `{assignee}` is neither an agent's e-mail \
                     address nor a numeric agent id"
                ),
            });
        }
        if let Some(id) = self.names.agent(assignee) {
            return Ok(id);
        }
        let id = self
            .client
            .agent_with_email(assignee)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "freshdesk: routing: Freshdesk has no agent with the e-mail address \
                     `{assignee}`"
                ),
            })?;
        self.names.set_agent(assignee, id);
        Ok(id)
    }

    /// The fields to update (empty when the ticket is routed already).
    async fn routing_fields(
        &self,
        state: &TicketState,
        routing: &TicketRouting,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let mut fields = Map::new();
        let mut priority = routing.priority.map(priority_number);
        if let Some(department) = non_blank(routing.department.as_ref()) {
            let id = self.group_id(department).await?;
            if state.group_id != Some(id) {
                fields.insert("group_id".into(), Value::from(id));
            }
        }
        if let Some(assignee) = non_blank(routing.assignee.as_ref()) {
            let id = self.responder_id(assignee).await?;
            if state.responder_id != Some(id) {
                fields.insert("responder_id".into(), Value::from(id));
            }
        }
        if routing.handover.is_some() {
            priority = Some(priority.or(state.priority).unwrap_or(HIGH).max(HIGH));
            if state.status != OPEN {
                fields.insert("status".into(), Value::from(OPEN));
            }
        }
        if let Some(priority) = priority.filter(|p| state.priority != Some(*p)) {
            fields.insert("priority".into(), Value::from(priority));
        }
        let mut tags = state.tags.clone();
        for tag in routing.tags.iter().map(|t| t.trim()) {
            if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                tags.push(tag.to_owned());
            }
        }
        if tags.len() != state.tags.len() {
            fields.insert("tags".into(), Value::from(tags));
        }
        Ok(fields)
    }

    pub(super) async fn apply_routing(
        &self,
        ticket: &TicketRef,
        routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "freshdesk: the ticket reference is not a Freshdesk ticket id".to_owned(),
        })?;
        let state = self
            .client
            .ticket(id)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "freshdesk: routing: ticket {id} does not exist, or the API key's agent may \
                     not see it"
                ),
            })?;
        let fields = self.routing_fields(&state, routing).await?;
        if let Some(reason) = routing.handover.as_deref() {
            let note = handover_note(reason);
            let html = format!("<div>{}</div>", html_lines(&note));
            let due = if fields.contains_key("status") {
                true
            } else {
                match self.client.newest_note_with(id, ROUTING_MARKER).await? {
                    Some((body, body_text)) => {
                        !(same_text(&body_text, &note) || same_text(&body, &html))
                    }
                    None => true,
                }
            };
            if due {
                let note: Fields =
                    vec![("body", Value::from(html)), ("private", Value::from(true))];
                self.client
                    .add_note(id, &note, &[], "freshdesk: routing: adding the note")
                    .await?;
            }
        }
        if fields.is_empty() {
            return Ok(());
        }
        self.client
            .update_ticket(
                id,
                &Value::Object(fields),
                "freshdesk: routing: updating the ticket",
            )
            .await
    }

    pub(super) async fn resolved(&self, ticket: &TicketRef) -> Result<bool, ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "freshdesk: the ticket reference is not a Freshdesk ticket id".to_owned(),
        })?;
        // A ticket that is gone (deleted for good, in the trash, spam) holds no conversation.
        Ok(self.client.ticket(id).await?.is_none_or(|state| {
            state.discarded || state.status == RESOLVED || state.status == CLOSED
        }))
    }
}
