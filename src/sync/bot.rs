//! Routing and the bot, on the daemon's side (the rules themselves are `crate::routing`, pure).
//!
//! Every customer message of a conversation gets two jobs in the queue of its first ticketing
//! destination, around the message's delivery there:
//!
//! - `Route`, just before it:
//!   1. reads the conversation's routing state; when it is escalated, asks the ticketing system
//!      whether the ticket was resolved (before this message reopens it), and if so the bot may
//!      speak again;
//!   2. lets the rules decide (department, assignee, priority, tags, hand-over, replies);
//!   3. in one transaction: stores the new state and the ticket actions to apply, marks the
//!      message routed, and queues one `Bot` send per reply (each once). A retried job that
//!      finds the message routed stops.
//! - `RouteTicket`, just after it (so a new conversation's ticket exists): applies the stored
//!   ticket actions through the connector (idempotent), then forgets them.
//!
//! A `Bot` send is free-form: it passes the policy gate (only inside the 24-hour window, never
//! after an opt-out) and the rate limits like an agent's reply, and is then written into the
//! ticket as an internal note (a `Note` job behind the conversation's messages) so the agent
//! sees the whole conversation.

use chrono::{DateTime, Utc};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use wabridge_connectors::{TicketRef, TicketRouting};

use super::dispatch::{JobPayload, OUTBOX};
use super::{connector_failure, store_failure, Runner};
use crate::policy::{self, Decision as Gate, Intent, Origin, PolicyConfig};
use crate::queue::{Failure, NewJob};
use crate::routing::{BotReply, ConversationState, Inbound};
use crate::store::{encode, AuditEntry, Store, StoreError};
use crate::whatsapp::model::Message;
use crate::whatsapp::sender::{OutboundMessage, SendRequest};

/// Key of a routed message's ticket actions, waiting for `RouteTicket`.
fn pending_key(message_id: &str) -> Vec<u8> {
    format!("t:{message_id}").into_bytes()
}

/// How long without a customer message before the next one starts a new conversation (and is
/// greeted again): WhatsApp's customer-service window.
pub const NEW_CONVERSATION_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// What the rules read from a customer message.
pub fn inbound_of(message: &Message, first_message: bool) -> Inbound<'_> {
    let mut text = message.text.as_ref().map(|t| t.body.as_str());
    let mut reply_id = None;
    if let Some(button) = &message.button {
        text = button.text.as_deref();
        reply_id = button.payload.as_deref();
    }
    if let Some(interactive) = &message.interactive {
        if let Some(reply) = &interactive.button_reply {
            (text, reply_id) = (Some(reply.title.as_str()), Some(reply.id.as_str()));
        } else if let Some(reply) = &interactive.list_reply {
            (text, reply_id) = (Some(reply.title.as_str()), Some(reply.id.as_str()));
        }
    }
    if text.is_none() {
        text = [&message.image, &message.video, &message.document]
            .into_iter()
            .flatten()
            .find_map(|media| media.caption.as_deref());
    }
    Inbound {
        text,
        kind: message.kind.as_str(),
        reply_id,
        wa_id: message.from.as_deref(),
        profile_language: None,
        first_message,
    }
}

impl Runner {
    /// The routing state of a conversation (empty when never routed).
    fn routing_state(&self, conversation: &str) -> Result<ConversationState, Failure> {
        Ok(self
            .store
            .routing_state(conversation)
            .map_err(store_failure)?
            .unwrap_or_default())
    }

    /// Records that an agent answered the customer: the bot keeps quiet as the rules say.
    pub(super) fn agent_answered(&self, conversation: &str, at: DateTime<Utc>) {
        if self.routing.is_none() {
            return;
        }
        let updated = self.routing_state(conversation).and_then(|mut state| {
            state.agent_replied(at);
            let bytes = encode(&state).map_err(store_failure)?;
            self.store
                .routing
                .insert(conversation.as_bytes(), bytes)
                .map_err(|e| store_failure(e.into()))?;
            Ok(())
        });
        if let Err(err) = updated {
            tracing::warn!(error = ?err, "Recording an agent's reply in the routing state failed.");
        }
    }

    /// The first ticketing destination and the conversation's ticket there, if any.
    fn primary_ticket(&self, conversation: &str) -> Result<Option<(String, TicketRef)>, Failure> {
        let Some(name) = self.destination_names().into_iter().next() else {
            return Ok(None);
        };
        Ok(self
            .store
            .link(&name, conversation)
            .map_err(store_failure)?
            .map(|ticket| (name, TicketRef(ticket))))
    }

    /// One attempt of routing a customer message.
    pub(super) async fn route(
        &self,
        conversation: &wabridge_connectors::Conversation,
        message: &Message,
        first_message: bool,
    ) -> Result<(), Failure> {
        let Some(routing) = &self.routing else {
            return Ok(());
        };
        let key = conversation.key();
        let routed = format!("route:{}", message.id);
        if self
            .store
            .seen
            .get(routed.as_bytes())
            .map_err(|e| store_failure(e.into()))?
            .is_some()
        {
            return Ok(());
        }
        let mut state = self.routing_state(&key)?;
        if state.escalated() {
            let primary = self.primary_ticket(&key)?;
            if let Some((name, ticket)) = &primary {
                if let Some(connector) = self.connectors.ticketing.get(name) {
                    if connector
                        .is_resolved(ticket)
                        .await
                        .map_err(connector_failure)?
                    {
                        tracing::info!(ticket = %ticket, "The handed-over ticket was resolved; the bot may answer again.");
                        state.clear_escalation();
                    }
                }
            }
        }
        let now = Utc::now();
        let decision = routing.decide(&inbound_of(message, first_message), &state, now);
        for rule in &decision.matched {
            tracing::debug!(rule = %rule.name, line = rule.line, "Routing rule matched.");
        }

        let actions = &decision.ticket;
        if let Some(reason) = &actions.handover {
            let entry = AuditEntry::new(now, Some(key.clone()), "bot", "handover", reason.clone());
            self.store.audit(&entry).map_err(store_failure)?;
        }

        // State, the "routed" mark and the replies, together.
        let sequence = self.store.next_id().map_err(store_failure)?;
        let mut jobs = Vec::new();
        for (index, reply) in decision.replies.iter().enumerate() {
            let payload = JobPayload::Bot {
                conversation: key.clone(),
                message_id: message.id.clone(),
                index,
                reply: reply.clone(),
            };
            jobs.push(NewJob {
                queue: format!("{OUTBOX}/{key}"),
                timestamp: message.timestamp,
                sequence: sequence + index as u64,
                payload: serde_json::to_value(&payload).map_err(|e| store_failure(e.into()))?,
            });
        }
        let state_bytes = encode(&decision.state).map_err(store_failure)?;
        let pending = TicketRouting {
            department: actions.department.as_ref().map(|department| {
                let kind = self
                    .destination_names()
                    .first()
                    .and_then(|name| self.connectors.ticketing.get(name))
                    .map(|connector| connector.kind())
                    .unwrap_or("");
                routing
                    .department(department)
                    .map(|d| d.target(kind).to_owned())
                    .unwrap_or_else(|| department.clone())
            }),
            assignee: actions.assignee.clone(),
            priority: actions.priority,
            tags: actions.tags.clone(),
            handover: actions.handover.clone(),
        };
        let pending = (pending != TicketRouting::default())
            .then(|| encode(&pending))
            .transpose()
            .map_err(store_failure)?;
        let created = (&self.store.seen, &self.store.jobs, &self.store.routing)
            .transaction(|(seen, job_tree, states)| {
                if seen.get(routed.as_bytes())?.is_some() {
                    return Ok(Vec::new());
                }
                seen.insert(routed.as_bytes(), &[])?;
                states.insert(key.as_bytes(), state_bytes.clone())?;
                if let Some(pending) = &pending {
                    states.insert(pending_key(&message.id).as_slice(), pending.clone())?;
                }
                let mut created = Vec::new();
                for job in &jobs {
                    created.push(Store::insert_job(job_tree, job, now)?);
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(created)
            })
            .map_err(|e| store_failure(e.into()))?;
        self.store.durable().await.map_err(store_failure)?;
        self.add_fresh(created);
        Ok(())
    }

    /// One attempt of a bot reply: through the gate, sent once, then noted in the ticket.
    pub(super) async fn send_bot_reply(
        &self,
        conversation: &str,
        message_id: &str,
        index: usize,
        reply: &BotReply,
    ) -> Result<(), Failure> {
        let key = format!("bot:{message_id}:{index}");
        let message = match reply.clone() {
            BotReply::Text { body } => OutboundMessage::Text {
                body,
                preview_url: false,
            },
            BotReply::Buttons { body, buttons } => OutboundMessage::Buttons { body, buttons },
            BotReply::List {
                body,
                button,
                sections,
            } => OutboundMessage::List {
                body,
                button,
                sections,
            },
        };
        let sent = self
            .send_free_form(
                conversation,
                Origin::BotReply,
                "bot reply",
                &key,
                message,
                None,
            )
            .await?;
        if !sent {
            return Ok(());
        }
        // Into the ticket, behind the conversation's messages (its ticket exists by then).
        let Some(primary) = self.destination_names().into_iter().next() else {
            return Ok(());
        };
        let payload = JobPayload::Note {
            destination: primary.clone(),
            conversation: conversation.to_owned(),
            text: format!("wabridge bot → customer:\n{}", reply.plain_text()),
        };
        // A second later than now: after the delivery of the message it answers, even one
        // Meta stamped this very second (jobs of one second are ordered by arrival, and this
        // note's sequence is smaller than any webhook's).
        let job = NewJob {
            queue: format!("{primary}/{conversation}"),
            timestamp: Utc::now().timestamp() + 1,
            sequence: self.store.next_id().map_err(store_failure)?,
            payload: serde_json::to_value(&payload).map_err(|e| store_failure(e.into()))?,
        };
        let dedupe = format!("botnote:{key}");
        let now = Utc::now();
        let created = (&self.store.seen, &self.store.jobs)
            .transaction(|(seen, job_tree)| {
                if seen.get(dedupe.as_bytes())?.is_some() {
                    return Ok(None);
                }
                seen.insert(dedupe.as_bytes(), &[])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(Some(Store::insert_job(
                    job_tree, &job, now,
                )?))
            })
            .map_err(|e| store_failure(e.into()))?;
        self.store.durable().await.map_err(store_failure)?;
        self.add_fresh(created.into_iter().collect());
        Ok(())
    }

    /// One attempt of applying a routed message's ticket actions (stored by `route`).
    pub(super) async fn route_ticket(
        &self,
        conversation: &str,
        message_id: &str,
    ) -> Result<(), Failure> {
        let key = pending_key(message_id);
        let Some(bytes) = self
            .store
            .routing
            .get(&key)
            .map_err(|e| store_failure(e.into()))?
        else {
            return Ok(());
        };
        let routing: TicketRouting =
            serde_json::from_slice(&bytes).map_err(|err| Failure::Permanent {
                reason: format!("stored ticket routing unreadable: {err}"),
            })?;
        if let Some((name, ticket)) = self.primary_ticket(conversation)? {
            if let Some(connector) = self.connectors.ticketing.get(&name) {
                connector
                    .route(&ticket, &routing)
                    .await
                    .map_err(connector_failure)?;
            }
        }
        self.store
            .routing
            .remove(&key)
            .map_err(|e| store_failure(e.into()))?;
        Ok(())
    }

    /// Sends free-form `message` once under `key` if the policy gate allows it now; a refusal
    /// is audited and is not an error. Returns whether it was sent (now or by an earlier
    /// attempt).
    pub(super) async fn send_free_form(
        &self,
        conversation: &str,
        origin: Origin,
        subject: &str,
        key: &str,
        message: OutboundMessage,
        reply_to: Option<String>,
    ) -> Result<bool, Failure> {
        if self
            .store
            .sent
            .get(key.as_bytes())
            .map_err(|e| store_failure(e.into()))?
            .is_some()
        {
            return Ok(true);
        }
        let (phone_number_id, to) = super::replies::recipient_of(conversation)?;
        let state = self.contact_state(conversation)?;
        let decision = policy::decide(
            &Intent::FreeForm { origin },
            &state,
            Utc::now(),
            &PolicyConfig {
                window_margin: self.consent.window_margin(),
            },
        );
        match decision {
            Gate::Allow => {}
            Gate::Block(reason) => {
                let entry = AuditEntry::new(
                    Utc::now(),
                    Some(conversation.to_owned()),
                    subject,
                    "block",
                    reason.to_string(),
                );
                self.store.audit(&entry).map_err(store_failure)?;
                return Ok(false);
            }
            Gate::Defer { .. } => return Ok(false),
        }
        let request = SendRequest {
            phone_number_id: phone_number_id.to_owned(),
            to,
            message,
            reply_to,
            callback_data: Some(key.chars().take(512).collect()),
        };
        self.send_once(key, conversation, subject, &request).await?;
        Ok(true)
    }
}
