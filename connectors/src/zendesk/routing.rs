//! Routing a Zendesk ticket: group, assignee, priority, tags and hand-over (see
//! [`TicketSystem::route`](crate::TicketSystem::route)).
//!
//! - One `GET /tickets/{id}.json` first; only what differs is written, in one `PUT
//!   /tickets/{id}.json` (fields and note together, so a crash leaves all or nothing). The same
//!   routing applied twice writes nothing the second time.
//! - A group is a numeric id or a name, resolved through `GET /groups.json` (read once and
//!   cached; read again when a name is not in it). An assignee is a numeric id or an agent's
//!   e-mail address, resolved through `GET /users/search.json?query=<e-mail>` (cached) and sent
//!   as `assignee_id`, which is what the ticket shows and so what makes the write idempotent.
//!   Unknown names are permanent errors before anything is written.
//! - Priorities are Zendesk's own (`low`, `normal`, `high`, `urgent`).
//! - Tags go in `additional_tags` (Zendesk adds them, removing none), only those the ticket
//!   lacks, lowercased with spaces as `_` (Zendesk's tags have neither capitals nor spaces).
//! - A hand-over sets the status `open`, raises the priority to at least `high`, and adds a
//!   private comment `wabridge: the customer asked for a person: <reason>` ending with
//!   [`ROUTING_MARKER`]. The comment is skipped when the ticket is open already and its newest
//!   routing comment says the same.

use serde_json::{json, Map, Value};

use super::client::TicketState;
use super::{ticket_id, ZendeskConnector};
use crate::routing_support::{non_blank, numeric, same_text};
use crate::{ConnectorError, TicketRef, TicketRouting};

/// The line that ends every routing note; the newest comment holding it is the last one.
pub const ROUTING_MARKER: &str = "[wa:routing]";

/// The statuses in which a ticket counts as resolved (the bot may speak again).
const RESOLVED_STATUSES: &[&str] = &["solved", "closed", "deleted"];

/// Zendesk's priorities, lowest first.
const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

/// The rank of a priority name in [`PRIORITIES`].
fn rank(priority: &str) -> Option<usize> {
    PRIORITIES.iter().position(|p| *p == priority)
}

/// The routing comment for a hand-over.
pub fn handover_note(reason: &str) -> String {
    match reason.trim() {
        "" => format!("wabridge: the customer asked for a person.\n{ROUTING_MARKER}"),
        reason => format!("wabridge: the customer asked for a person: {reason}\n{ROUTING_MARKER}"),
    }
}

/// A tag as Zendesk stores it: lowercase, whitespace as `_`.
pub fn zendesk_tag(tag: &str) -> String {
    tag.split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

impl ZendeskConnector {
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
                    "zendesk: routing: Zendesk has no group named `{department}` (Admin Center \
                     → People → Groups), or the API user may not see it"
                ),
            })
    }

    async fn assignee_id(&self, assignee: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = numeric(assignee) {
            return Ok(id);
        }
        if !assignee.contains('@') {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "zendesk: routing: the assignee `{assignee}` is neither an agent's e-mail \
                     address nor a numeric user id"
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
                    "zendesk: routing: Zendesk has no agent with the e-mail address `{assignee}`"
                ),
            })?;
        self.names.set_agent(assignee, id);
        Ok(id)
    }

    /// The `ticket` object of the update: empty when the ticket is routed already.
    async fn routing_update(
        &self,
        state: &TicketState,
        routing: &TicketRouting,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let mut update = Map::new();
        // Zendesk's priorities are named like wabridge's.
        let wanted_priority = routing.priority.map(|p| p.as_str().to_owned());
        if let Some(department) = non_blank(routing.department.as_ref()) {
            let id = self.group_id(department).await?;
            if state.group_id != Some(id) {
                update.insert("group_id".into(), Value::from(id));
            }
        }
        if let Some(assignee) = non_blank(routing.assignee.as_ref()) {
            let id = self.assignee_id(assignee).await?;
            if state.assignee_id != Some(id) {
                update.insert("assignee_id".into(), Value::from(id));
            }
        }
        let mut priority = wanted_priority;
        if routing.handover.is_some() {
            let base = priority.clone().or_else(|| state.priority.clone());
            let high = "high".to_owned();
            priority = Some(match base {
                Some(base) if rank(&base) >= rank("high") => base,
                _ => high,
            });
            if state.status != "open" {
                update.insert("status".into(), Value::from("open"));
            }
        }
        if let Some(priority) = priority.filter(|p| state.priority.as_ref() != Some(p)) {
            update.insert("priority".into(), Value::from(priority));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in routing.tags.iter().map(|t| zendesk_tag(t)) {
            if !tag.is_empty() && !tags.contains(&tag) && !state.tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if !tags.is_empty() {
            update.insert("additional_tags".into(), Value::from(tags));
        }
        if let Some(reason) = routing.handover.as_deref() {
            let note = handover_note(reason);
            let due = if update.contains_key("status") {
                true
            } else {
                match self
                    .client
                    .newest_comment_with(state.id, ROUTING_MARKER)
                    .await?
                {
                    Some(texts) => !texts.iter().any(|text| same_text(text, &note)),
                    None => true,
                }
            };
            if due {
                update.insert("comment".into(), json!({ "body": note, "public": false }));
            }
        }
        Ok(update)
    }

    pub(super) async fn apply_routing(
        &self,
        ticket: &TicketRef,
        routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "zendesk: the ticket reference is not a Zendesk ticket id".to_owned(),
        })?;
        let state = self
            .client
            .ticket(id)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "zendesk: routing: ticket {id} does not exist, or the API user may not see it"
                ),
            })?;
        let update = self.routing_update(&state, routing).await?;
        if update.is_empty() {
            return Ok(());
        }
        self.client
            .update_ticket(
                id,
                &json!({ "ticket": update }),
                "zendesk: routing: updating the ticket",
            )
            .await
    }

    pub(super) async fn resolved(&self, ticket: &TicketRef) -> Result<bool, ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "zendesk: the ticket reference is not a Zendesk ticket id".to_owned(),
        })?;
        // A ticket that is gone (deleted, or out of sight) holds no conversation.
        Ok(self
            .client
            .ticket(id)
            .await?
            .is_none_or(|state| RESOLVED_STATUSES.contains(&state.status.as_str())))
    }
}
