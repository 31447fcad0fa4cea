//! Freshdesk (API v2): one ticket per conversation, one note per message, agents' replies
//! back to WhatsApp through an automation-rule webhook.
//!
//! - The customer is a Freshdesk contact found by its `unique_external_id` `wa:<digits>` (or
//!   `wa-u:<bsuid>` when Meta withholds the number), created when missing with the WhatsApp
//!   profile name and the E.164 number as `mobile`. When Freshdesk answers 409 (the number
//!   belongs to a contact already) that contact is the requester.
//! - The first message opens a ticket (status Open, `source` and `priority` from the config,
//!   subject `WhatsApp: <name> (+<E.164>)`) and is its description; later messages are
//!   public incoming notes by the customer (`POST /tickets/{id}/notes` with `incoming: true`,
//!   `user_id` = the requester), as Freshdesk shows what a customer wrote. With
//!   `customer_messages = "private"` every message is a private note and the description only
//!   names the conversation. Texts are HTML (escaped, line breaks kept) and end with the
//!   marker `[wa:<message id>]`.
//! - Media go with the same write as `multipart/form-data` files (`attachments[]`).
//! - Which ticket takes a message: the one the daemon recorded if it can; else the
//!   requester's newest ticket that can. Open or custom status → note; Pending → set to Open,
//!   then note; Resolved less than `reopen_within_days` ago (by its last update) → reopen,
//!   then note; Resolved longer ago, Closed, deleted, spam → a new ticket.
//!
//! **Once in effect.** With [`DeliveryContext::maybe_delivered`] the connector reads the
//! description and the conversations of the ticket it is about to write to and writes nothing
//! if the marker is there. A ticket an earlier attempt opened is the requester's newest.
//! Freshdesk lists a requester's tickets created in the last 30 days, which is where such a
//! ticket is.
//!
//! **Agents' replies** arrive by webhook. Freshdesk does not sign webhooks, so an automation
//! rule sends a shared secret. Set-up in Freshdesk (Admin → Workflows → Automations → Ticket
//! updates → New rule): event "Reply is sent", performed by "Agent"; condition "Tags | is |
//! whatsapp" (or "Source | is | Chat"); action "Trigger webhook": request type `POST`, URL
//! `https://<wabridge>/connectors/<name>/webhook`, custom header `X-Wabridge-Secret:
//! <webhook_secret>`, encoding JSON, content "Advanced" with [`AUTOMATION_BODY`]:
//!
//! ```json
//! {
//!   "ticket_id": "{{ticket.id}}",
//!   "reply": "{{ticket.latest_public_comment}}",
//!   "agent_email": "{{ticket.agent.email}}",
//!   "event": "{{triggered_event}}"
//! }
//! ```
//!
//! The reply arrives as HTML and is turned into text without the quoted history. Freshdesk
//! offers no placeholder for the reply's id, so the reply's id is derived from the ticket and
//! the text: a repeated delivery is sent once, and so are two identical replies on one ticket.
//! [`TicketSystem::replies_since`] (polling) is not offered.
//!
//! **Routing** ([`TicketSystem::route`]) sets the group, agent, priority and tags and, on a
//! hand-over, opens the ticket with a private note; see the `routing` module.

mod client;
mod config;
mod routing;
mod webhook;

use std::fmt;

use chrono::Utc;
use serde_json::Value;

use crate::{
    AgentReply, ConnectorError, Contact, Conversation, Delivered, DeliveryContext, InboundMessage,
    TicketRef, TicketRouting, TicketSystem, WebhookRejection, WebhookRequest,
};
use client::{Fields, FreshdeskClient, TicketState};
pub use config::{
    CustomerMessages, FreshdeskConfig, DEFAULT_PRIORITY, DEFAULT_REOPEN_WITHIN_DAYS,
    DEFAULT_SOURCE, DEFAULT_TAGS, DEFAULT_TIMEOUT_SECS, MIN_WEBHOOK_SECRET_LEN,
};
pub use routing::{handover_note, ROUTING_MARKER};
pub use webhook::{html_to_text, AUTOMATION_BODY, SECRET_HEADER, SECRET_PARAMETER};

/// How every marker starts.
const MARKER_PREFIX: &str = "[wa:";

/// Freshdesk's ticket statuses the connector uses.
const OPEN: u64 = 2;
const PENDING: u64 = 3;
const RESOLVED: u64 = 4;
const CLOSED: u64 = 5;

/// The marker that ends every text the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("{MARKER_PREFIX}{message_id}]")
}

/// The `unique_external_id` of a contact: `wa:<digits>`, else `wa-u:<bsuid>`.
pub fn contact_external_id(contact: &Contact) -> Option<String> {
    if let Some(digits) = contact.wa_id.as_deref().map(str::trim) {
        let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            return Some(format!("wa:{digits}"));
        }
    }
    let user = contact.user_id.as_deref().map(str::trim)?;
    (!user.is_empty()).then(|| format!("wa-u:{user}"))
}

/// The subject of a conversation's ticket: `WhatsApp: Aisha (+96890000001)`.
pub fn ticket_subject(contact: &Contact) -> String {
    format!("WhatsApp: {}", contact.display())
}

/// Text as HTML: `&`, `<`, `>` and `"` escaped.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Lines of text as HTML, line breaks kept.
fn html_lines(text: &str) -> String {
    escape_html(text)
        .replace("\r\n", "\n")
        .replace('\n', "<br>")
}

/// The HTML of one message: the text, a line saying what and when, the marker.
pub fn entry_html(conversation: &Conversation, message: &InboundMessage) -> String {
    format!(
        "<div>{text}</div><div><br></div><div>-- <br>WhatsApp {kind} message from {who}, {at} \
         UTC<br>{marker}</div>",
        text = html_lines(message.text.trim_end()),
        kind = escape_html(&message.kind),
        who = escape_html(&conversation.contact.display()),
        at = message.timestamp.format("%Y-%m-%d %H:%M:%S"),
        marker = escape_html(&marker(&message.id)),
    )
}

/// What the connector does with a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Open or a custom status: add the note.
    Note,
    /// Pending, or resolved recently: set it to Open, then add the note.
    Reopen,
    /// Resolved too long ago, closed, deleted or spam: open a new ticket.
    Replace,
}

/// The Freshdesk connector (see the module docs).
pub struct FreshdeskConnector {
    config: FreshdeskConfig,
    client: FreshdeskClient,
    /// Routing: group names and agent e-mail addresses resolved so far.
    names: crate::routing_support::Names,
}

impl fmt::Debug for FreshdeskConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's credentials are `Secret`s; the client redacts its header.
        f.debug_struct("FreshdeskConnector")
            .field("config", &self.config)
            .field("client", &self.client)
            .finish()
    }
}

fn delivered(ticket: u64, opened_ticket: bool, already_present: bool) -> Delivered {
    Delivered {
        ticket: TicketRef(ticket.to_string()),
        opened_ticket,
        already_present,
    }
}

/// A ticket id the daemon recorded, if it is a Freshdesk one.
fn ticket_id(ticket: &TicketRef) -> Option<u64> {
    let id = ticket.0.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

impl FreshdeskConnector {
    /// Builds the connector from a configuration that passed [`FreshdeskConfig::validate`]
    /// (no network call; use [`TicketSystem::check`] for that).
    pub fn new(config: FreshdeskConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("freshdesk: {}: {}", problem.field, problem.message),
            });
        }
        let url = config.base_url().ok_or_else(|| ConnectorError::Permanent {
            reason: "freshdesk: domain or url required".to_owned(),
        })?;
        let timeout = std::time::Duration::from_secs(config.timeout_secs);
        let client = FreshdeskClient::new(&url, &config.api_key, timeout)?;
        Ok(FreshdeskConnector {
            config,
            client,
            names: crate::routing_support::Names::default(),
        })
    }

    fn public(&self) -> bool {
        match self.config.customer_messages {
            CustomerMessages::Public => true,
            CustomerMessages::Private => false,
        }
    }

    fn disposition(&self, ticket: &TicketState) -> Disposition {
        if ticket.discarded {
            return Disposition::Replace;
        }
        match ticket.status {
            PENDING => Disposition::Reopen,
            RESOLVED => {
                let window = chrono::Duration::days(i64::from(self.config.reopen_within_days));
                match ticket.updated_at {
                    Some(at) if self.config.reopen_within_days > 0 && Utc::now() - at < window => {
                        Disposition::Reopen
                    }
                    _ => Disposition::Replace,
                }
            }
            CLOSED => Disposition::Replace,
            // Open, or a custom status this connector does not know: leave it as it is.
            _ => Disposition::Note,
        }
    }

    /// The customer's contact: found by external id, else created (or, on 409, the contact
    /// that has the number already).
    async fn requester(&self, contact: &Contact) -> Result<u64, ConnectorError> {
        let external_id =
            contact_external_id(contact).ok_or_else(|| ConnectorError::Permanent {
                reason: "freshdesk: the contact has neither a phone number nor a BSUID".to_owned(),
            })?;
        if let Some(id) = self.client.contact_with_external_id(&external_id).await? {
            return Ok(id);
        }
        let name = contact
            .profile_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| contact.display());
        let mut body = serde_json::json!({ "name": name, "unique_external_id": external_id });
        if let Some(e164) = contact.e164() {
            body["mobile"] = Value::from(e164);
        }
        self.client.create_contact(&body).await
    }

    /// The note of a customer message: public and incoming by the requester, or private.
    async fn add_note(
        &self,
        ticket: &TicketState,
        requester: Option<u64>,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<(), ConnectorError> {
        let author = requester.filter(|_| self.public());
        let mut fields: Fields = vec![
            ("body", Value::from(entry_html(conversation, message))),
            ("private", Value::from(author.is_none())),
            ("incoming", Value::from(true)),
        ];
        if let Some(author) = author {
            fields.push(("user_id", Value::from(author)));
        }
        self.client
            .add_note(
                ticket.id,
                &fields,
                &message.attachments,
                "freshdesk: adding the note",
            )
            .await
    }

    async fn open_ticket(
        &self,
        requester: u64,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<u64, ConnectorError> {
        let contact = &conversation.contact;
        let (description, attachments) = if self.public() {
            (entry_html(conversation, message), &message.attachments[..])
        } else {
            (
                format!(
                    "<div>WhatsApp conversation with {}. The messages are private notes.</div>",
                    escape_html(&contact.display())
                ),
                &[][..],
            )
        };
        let fields: Fields = vec![
            ("subject", Value::from(ticket_subject(contact))),
            ("description", Value::from(description)),
            ("requester_id", Value::from(requester)),
            ("status", Value::from(OPEN)),
            ("priority", Value::from(self.config.priority)),
            ("source", Value::from(self.config.source)),
            ("tags", Value::from(self.config.tags.clone())),
            (
                "group_id",
                self.config.group_id.map_or(Value::Null, Value::from),
            ),
        ];
        let id = self.client.create_ticket(&fields, attachments).await?;
        if !self.public() {
            let ticket = TicketState {
                id,
                status: OPEN,
                requester_id: Some(requester),
                updated_at: None,
                discarded: false,
                description: None,
                group_id: self.config.group_id,
                responder_id: None,
                priority: Some(u64::from(self.config.priority)),
                tags: self.config.tags.clone(),
            };
            self.add_note(&ticket, None, conversation, message).await?;
        }
        Ok(id)
    }

    /// Writes into `ticket` unless (with `lookup`) the marker is already there.
    async fn continue_ticket(
        &self,
        ticket: &TicketState,
        disposition: Disposition,
        lookup: bool,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<Delivered, ConnectorError> {
        if lookup {
            let id = marker(&message.id);
            let forms = [escape_html(&id), id];
            if let Some(found) = self.client.find_marker(ticket, &forms).await? {
                return Ok(delivered(ticket.id, found.in_description, true));
            }
        }
        if disposition == Disposition::Reopen {
            // First: should the note fail, the retry finds an open ticket and adds it.
            self.client.set_status(ticket.id, OPEN).await?;
        }
        self.add_note(ticket, ticket.requester_id, conversation, message)
            .await?;
        Ok(delivered(ticket.id, false, false))
    }
}

#[async_trait::async_trait]
impl TicketSystem for FreshdeskConnector {
    fn kind(&self) -> &'static str {
        "freshdesk"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        if contact_external_id(&conversation.contact).is_none() {
            return Err(ConnectorError::Permanent {
                reason: "freshdesk: the contact has neither a phone number nor a BSUID".to_owned(),
            });
        }
        let lookup = context.maybe_delivered;

        // 1. The recorded ticket, if it can still take the message.
        match context.ticket.as_ref().map(ticket_id) {
            Some(Some(id)) => {
                if let Some(ticket) = self.client.ticket(id).await? {
                    let disposition = self.disposition(&ticket);
                    tracing::debug!(
                        ticket = ticket.id,
                        status = ticket.status,
                        ?disposition,
                        "Recorded Freshdesk ticket."
                    );
                    if disposition != Disposition::Replace {
                        return self
                            .continue_ticket(&ticket, disposition, lookup, conversation, message)
                            .await;
                    }
                }
            }
            Some(None) => {
                tracing::warn!(
                    "The recorded ticket is not a Freshdesk ticket id; looking for another."
                );
            }
            None => {}
        }

        // 2. The requester's newest ticket that can take it: an earlier attempt may have
        //    opened it, or the daemon never recorded it.
        let requester = self.requester(&conversation.contact).await?;
        let tickets = self.client.tickets_of(requester).await?;
        let usable = tickets
            .iter()
            .map(|ticket| (ticket, self.disposition(ticket)))
            .find(|(_, disposition)| *disposition != Disposition::Replace);
        if let Some((ticket, disposition)) = usable {
            return self
                .continue_ticket(ticket, disposition, lookup, conversation, message)
                .await;
        }

        // 3. A new ticket.
        let id = self.open_ticket(requester, conversation, message).await?;
        Ok(delivered(id, true, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.me().await
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "freshdesk: the ticket reference is not a Freshdesk ticket id".to_owned(),
        })?;
        let fields: Fields = vec![
            (
                "body",
                Value::from(format!("<div>{}</div>", html_lines(text))),
            ),
            ("private", Value::from(true)),
        ];
        self.client
            .add_note(id, &fields, &[], "freshdesk: adding the note")
            .await
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

    fn verify_webhook(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookRejection> {
        let Some(secret) = &self.config.webhook_secret else {
            return Err(WebhookRejection::NotSupported);
        };
        webhook::verify(secret.expose(), request)
    }

    fn replies_from_webhook(&self, body: &[u8]) -> Result<Vec<AgentReply>, ConnectorError> {
        webhook::replies(body)
    }
}

#[cfg(test)]
mod tests;
