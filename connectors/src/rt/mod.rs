//! Request Tracker 5 over REST2: one ticket per conversation, one history entry per message.
//!
//! - A conversation's first message opens a ticket in the configured queue; its subject is
//!   `WhatsApp: <profile name> (+<E.164>)` (the BSUID when the number is withheld) and its
//!   requestor is a made-up address `wa+<digits>@<requestor_domain>` (`wa-<bsuid>@…`), because RT
//!   finds users only by e-mail address.
//! - Every later message is a private **comment** (`POST /ticket/{id}/comment`), so the agents'
//!   replies (Correspond) stay distinguishable for the way back to WhatsApp.
//! - Each entry ends with the marker `[wa:<message id>]`; media are attachments of the same entry.
//! - A resolved ticket is reopened when it was resolved less than `reopen_within_days` ago, else
//!   (and for rejected, deleted or vanished tickets) a new ticket is opened.
//!
//! **Once in effect.** With [`DeliveryContext::maybe_delivered`] the connector first asks RT
//! whether the marker is already in the ticket (one `Content LIKE` search over the ticket's text
//! parts, done by RT's database) and writes nothing if it is. Without it no lookup is made: each
//! RT call costs ~0.3 s.
//!
//! **Routing** ([`TicketSystem::route`]) moves the ticket to a queue, sets its owner and
//! priority, adds tags to a custom field, and on a hand-over opens it with an internal comment;
//! see the `routing` module for the calls and their idempotency.

mod client;
mod config;
mod routing;

use std::fmt;

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use crate::{
    AgentReply, Attachment, ConnectorError, Contact, Conversation, Delivered, DeliveryContext,
    InboundMessage, TicketRef, TicketRouting, TicketSystem,
};
use client::{Credentials, RtClient, TicketState};
pub use config::{
    RtConfig, RtPriorities, DEFAULT_PRIORITY_HIGH, DEFAULT_PRIORITY_LOW, DEFAULT_PRIORITY_NORMAL,
    DEFAULT_PRIORITY_URGENT, DEFAULT_REOPEN_WITHIN_DAYS, DEFAULT_REQUESTOR_DOMAIN,
    DEFAULT_TIMEOUT_SECS, DEFAULT_UPDATE_REQUESTOR,
};
pub use routing::{routing_comment, ROUTING_MARKER};

/// The marker that ends every history entry the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("[wa:{message_id}]")
}

/// The requestor address of a contact: `wa+<digits>@<domain>`, else `wa-<bsuid>@<domain>`
/// (the BSUID reduced to letters, digits, `.` and `-`), else `None`.
pub fn requestor_email(contact: &Contact, domain: &str) -> Option<String> {
    let domain = domain.trim();
    if let Some(digits) = contact.wa_id.as_deref().map(str::trim) {
        let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            return Some(format!("wa+{digits}@{domain}"));
        }
    }
    let user = contact.user_id.as_deref().map(str::trim)?;
    let sanitised: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    // No leading, trailing or doubled dots in a local part.
    let sanitised = sanitised
        .split('.')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    (!sanitised.is_empty()).then(|| format!("wa-{sanitised}@{domain}"))
}

/// The subject of a conversation's ticket: `WhatsApp: Aisha (+96890000001)`.
pub fn ticket_subject(contact: &Contact) -> String {
    format!("WhatsApp: {}", contact.display())
}

/// The text of one history entry: the message, a line saying what and when, the marker.
pub fn entry_body(conversation: &Conversation, message: &InboundMessage) -> String {
    format!(
        "{text}\n\n-- \nWhatsApp {kind} message from {who}, {at} UTC\n{marker}\n",
        text = message.text.trim_end(),
        kind = message.kind,
        who = conversation.contact.display(),
        at = message.timestamp.format("%Y-%m-%d %H:%M:%S"),
        marker = marker(&message.id),
    )
}

fn attachments_json(attachments: &[Attachment]) -> Vec<Value> {
    attachments
        .iter()
        .map(|attachment| {
            let mime = attachment.mime_type.trim();
            json!({
                "FileName": attachment.filename,
                "FileType": if mime.is_empty() { "application/octet-stream" } else { mime },
                "FileContent": base64::engine::general_purpose::STANDARD.encode(&attachment.data),
            })
        })
        .collect()
}

/// What the connector does with the ticket the daemon recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Still active (new, open, stalled, or a custom active status): comment on it.
    Comment,
    /// Resolved recently: reopen it, then comment.
    Reopen,
    /// Resolved too long ago, rejected, deleted or gone: open a new ticket.
    Replace,
}

/// The RT connector (see the module docs).
pub struct RtConnector {
    config: RtConfig,
    client: RtClient,
    /// Routing: queue names (as the routing gave them) → queue ids.
    queues: routing::Cache,
    /// Routing: user names or ids (as the routing gave them) → user names.
    users: routing::Cache,
}

impl fmt::Debug for RtConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's credentials are `Secret`s; the client redacts its header.
        f.debug_struct("RtConnector")
            .field("config", &self.config)
            .field("client", &self.client)
            .finish()
    }
}

impl RtConnector {
    /// Builds the connector from a configuration that passed [`RtConfig::validate`] (no network
    /// call; use [`TicketSystem::check`] for that).
    pub fn new(config: RtConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("rt: {}: {}", problem.field, problem.message),
            });
        }
        let credentials = match (&config.token, &config.username, &config.password) {
            (Some(token), _, _) => Credentials::Token(token),
            (None, Some(username), Some(password)) => Credentials::Basic { username, password },
            _ => {
                return Err(ConnectorError::Permanent {
                    reason: "rt: token or username + password required".to_owned(),
                })
            }
        };
        let timeout = std::time::Duration::from_secs(config.timeout_secs);
        let client = RtClient::new(&config.url, credentials, timeout)?;
        Ok(RtConnector {
            config,
            client,
            queues: routing::Cache::default(),
            users: routing::Cache::default(),
        })
    }

    fn disposition(&self, ticket: &TicketState) -> Disposition {
        match ticket.status.as_str() {
            "rejected" | "deleted" => Disposition::Replace,
            "resolved" => {
                let resolved_at = ticket.resolved.or(ticket.last_updated);
                let window = chrono::Duration::days(i64::from(self.config.reopen_within_days));
                match resolved_at {
                    Some(at) if self.config.reopen_within_days > 0 && Utc::now() - at < window => {
                        Disposition::Reopen
                    }
                    _ => Disposition::Replace,
                }
            }
            _ => Disposition::Comment,
        }
    }

    /// Whether the message's marker is already in `ticket`; `Some(opened)` when it is, where
    /// `opened` says whether the message opened that ticket (its Create entry).
    async fn lookup(
        &self,
        ticket: &str,
        message: &InboundMessage,
        need_opened: bool,
    ) -> Result<Option<bool>, ConnectorError> {
        let Some(transaction) = self
            .client
            .transaction_with(ticket, &marker(&message.id))
            .await?
        else {
            return Ok(None);
        };
        if !need_opened {
            return Ok(Some(false));
        }
        let kind = self.client.transaction_type(&transaction).await?;
        Ok(Some(kind == "Create"))
    }

    async fn comment(
        &self,
        ticket: &str,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<(), ConnectorError> {
        let mut body = json!({
            "Content": entry_body(conversation, message),
            "ContentType": "text/plain",
        });
        if !message.attachments.is_empty() {
            body["Attachments"] = Value::Array(attachments_json(&message.attachments));
        }
        self.client.comment(ticket, &body).await
    }

    async fn open_ticket(
        &self,
        requestor: &str,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<String, ConnectorError> {
        let mut body = json!({
            "Queue": self.config.queue.trim(),
            "Subject": ticket_subject(&conversation.contact),
            "Requestor": requestor,
            "Content": entry_body(conversation, message),
            "ContentType": "text/plain",
        });
        if !message.attachments.is_empty() {
            body["Attachments"] = Value::Array(attachments_json(&message.attachments));
        }
        let id = self.client.create_ticket(&body).await?;
        if self.config.update_requestor {
            self.update_requestor(requestor, &conversation.contact)
                .await;
        }
        Ok(id)
    }

    /// Best effort: the ticket exists already, so a failure here only warns.
    async fn update_requestor(&self, requestor: &str, contact: &Contact) {
        let mut fields = serde_json::Map::new();
        if let Some(name) = contact.profile_name.as_deref().map(str::trim) {
            if !name.is_empty() {
                fields.insert("RealName".into(), Value::from(name));
            }
        }
        if let Some(e164) = contact.e164() {
            fields.insert("MobilePhone".into(), Value::from(e164));
        }
        if fields.is_empty() {
            return;
        }
        if let Err(err) = self
            .client
            .update_user(requestor, &Value::Object(fields))
            .await
        {
            // The reason may echo the address (the phone number): log only its class.
            let kind = err.kind();
            tracing::warn!(kind, "Could not set the requestor's name and phone in RT.");
        }
    }
}

fn delivered(ticket: String, opened_ticket: bool, already_present: bool) -> Delivered {
    Delivered {
        ticket: TicketRef(ticket),
        opened_ticket,
        already_present,
    }
}

#[async_trait::async_trait]
impl TicketSystem for RtConnector {
    fn kind(&self) -> &'static str {
        "rt"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        let requestor = requestor_email(&conversation.contact, &self.config.requestor_domain)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "rt: the contact has neither a phone number nor a BSUID".to_owned(),
            })?;
        let lookup = context.maybe_delivered;

        // 1. The recorded ticket, if it can still take the message.
        let known = match &context.ticket {
            Some(TicketRef(id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                self.client.ticket(id).await?
            }
            Some(_) => {
                tracing::warn!("The recorded ticket is not an RT ticket id; opening a new one.");
                None
            }
            None => None,
        };
        if let Some(ticket) = &known {
            let disposition = self.disposition(ticket);
            tracing::debug!(ticket = %ticket.id, status = %ticket.status, ?disposition, "Recorded RT ticket.");
            match disposition {
                Disposition::Comment | Disposition::Reopen => {
                    if lookup && self.lookup(&ticket.id, message, false).await?.is_some() {
                        return Ok(delivered(ticket.id.clone(), false, true));
                    }
                    if disposition == Disposition::Reopen {
                        self.client.set_status(&ticket.id, "open").await?;
                    }
                    self.comment(&ticket.id, conversation, message).await?;
                    return Ok(delivered(ticket.id.clone(), false, false));
                }
                Disposition::Replace => {}
            }
        }

        // 2. A new ticket is due. In the crash window an earlier attempt may have opened it
        //    (then the marker is in it), or the daemon may have lost the ticket it recorded.
        if lookup {
            let queue = self.config.queue.trim();
            if let Some(found) = self.client.newest_active_ticket(queue, &requestor).await? {
                if let Some(opened) = self.lookup(&found, message, true).await? {
                    return Ok(delivered(found, opened, true));
                }
                if context.ticket.is_none() {
                    // The conversation's ticket exists but was not recorded: continue it.
                    self.comment(&found, conversation, message).await?;
                    return Ok(delivered(found, false, false));
                }
            }
        }
        let id = self.open_ticket(&requestor, conversation, message).await?;
        Ok(delivered(id, true, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.queue(self.config.queue.trim()).await
    }

    async fn replies_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<AgentReply>, Option<String>), ConnectorError> {
        let Some(after) = cursor.and_then(|c| c.parse::<u64>().ok()) else {
            // First look: start from now, never replay old correspondence.
            let newest = self.client.newest_transaction().await?;
            return Ok((Vec::new(), Some(newest.to_string())));
        };
        let mut replies = Vec::new();
        let mut last = after;
        for (id, ticket, created) in self.client.correspondence_after(after).await? {
            let text = self.client.transaction_text(id).await?;
            last = last.max(id);
            if text.is_empty() {
                continue;
            }
            replies.push(AgentReply {
                id: id.to_string(),
                ticket: TicketRef(ticket),
                text,
                at: created.unwrap_or_else(Utc::now),
            });
        }
        Ok((replies, Some(last.to_string())))
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let body = json!({ "Content": text, "ContentType": "text/plain" });
        self.client.comment(&ticket.0, &body).await
    }

    async fn route(
        &self,
        ticket: &TicketRef,
        routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        self.apply_routing(ticket, routing).await
    }

    async fn is_resolved(&self, ticket: &TicketRef) -> Result<bool, ConnectorError> {
        self.resolved(ticket).await
    }
}

#[cfg(test)]
mod tests;
