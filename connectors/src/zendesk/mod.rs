//! Zendesk Support: one ticket per conversation, one comment per message, agents' public
//! replies back to WhatsApp through a signed webhook.
//!
//! - The customer is a Zendesk end user found by its external id `wa:<digits>` (or
//!   `wa-u:<bsuid>` when Meta withholds the number), created when missing with the WhatsApp
//!   profile name and the E.164 phone number (`POST /users/create_or_update.json`; Zendesk
//!   matches users on e-mail or external id only, never on phone).
//! - A conversation's tickets carry the external id `whatsapp:<phone_number_id>:<contact>`
//!   (see [`ticket_external_id`]), which `GET /tickets.json?external_id=…` finds at once (the
//!   search index lags by minutes). The subject is `WhatsApp: <name> (+<E.164>)`.
//! - The first message is the ticket's first comment (its description), later messages are
//!   comments added with `PUT /tickets/{id}.json`; each ends with the marker `[wa:<message
//!   id>]`. By default they are public comments authored by the customer; with
//!   `customer_messages = "private"` internal notes by the API user.
//! - Media are uploaded first (`POST /uploads.json?filename=…`, one upload token for all files
//!   of a message) and attached through `comment.uploads`.
//! - Which ticket takes a message: the one the daemon recorded if it can; else the
//!   conversation's newest ticket that can. New, open → comment; pending, on-hold → comment
//!   and set to open; solved less than `reopen_within_days` ago (by its last update) →
//!   comment and reopen; solved longer ago, closed, deleted → a new ticket (a follow-up of a
//!   closed one, `via_followup_source_id`).
//!
//! **Once in effect.** With [`DeliveryContext::maybe_delivered`] the connector reads the
//! comments of the ticket it is about to write to and writes nothing if the marker is there.
//! A ticket an earlier attempt opened is found by its external id. Without
//! `maybe_delivered` no comment is read.
//!
//! **Agents' replies** arrive by webhook only. Polling is not offered: the only API that
//! lists new comments account-wide is the incremental ticket-event export, which is
//! admin-only, limited to 10 requests a minute, and does not say whether an author is an
//! agent. Set-up in Zendesk (Admin Center):
//!
//! 1. Apps and integrations → Webhooks → Create webhook → "Trigger or automation";
//!    endpoint `https://<wabridge>/connectors/<name>/webhook`, method `POST`, format `JSON`,
//!    no authentication. Copy its signing secret into `webhook_secret`.
//! 2. Objects and rules → Triggers → Add trigger, conditions (all): `Ticket | Is | Updated`,
//!    `Comment | Is | Public`, `Current user | Is | (agent)`, `Tags | Contains at least one
//!    of the following | whatsapp`; action `Notify by | Active webhook | (the webhook)` with
//!    the JSON body [`TRIGGER_BODY`]:
//!
//! ```json
//! {
//!   "ticket_id": "{{ticket.id}}",
//!   "comment_id": "{{ticket.latest_comment.id}}",
//!   "comment": "{{ticket.latest_comment.value}}",
//!   "public": "{{ticket.latest_comment.is_public}}",
//!   "author_id": "{{ticket.latest_comment.author.id}}",
//!   "requester_id": "{{ticket.requester.id}}",
//!   "author_role": "{{current_user.role}}",
//!   "updated_at": "{{ticket.updated_at_with_timestamp}}"
//! }
//! ```
//!
//! [`TicketSystem::verify_webhook`] checks Zendesk's signature (timestamp within
//! `webhook_tolerance_secs`); [`TicketSystem::replies_from_webhook`] turns the body into an
//! [`AgentReply`] with the id `zendesk-comment-<comment id>`. wabridge's own customer comments
//! also fire the trigger (an agent's credentials write them): they are recognised by their
//! author (the requester) and their marker and give no reply.
//!
//! **Routing** ([`TicketSystem::route`]) sets the group, assignee, priority and tags and, on a
//! hand-over, opens the ticket with a private comment; see the `routing` module.

mod client;
mod config;
mod routing;
mod webhook;

use std::fmt;

use chrono::Utc;
use serde_json::{json, Value};

use crate::{
    AgentReply, Attachment, ConnectorError, Contact, Conversation, Delivered, DeliveryContext,
    InboundMessage, TicketRef, TicketRouting, TicketSystem, WebhookRejection, WebhookRequest,
};
use client::{Credentials, TicketState, ZendeskClient};
pub use config::{
    CustomerMessages, ZendeskConfig, DEFAULT_REOPEN_WITHIN_DAYS, DEFAULT_TAGS,
    DEFAULT_TIMEOUT_SECS, DEFAULT_WEBHOOK_TOLERANCE_SECS, PRIORITIES,
};
pub use routing::{handover_note, zendesk_tag, ROUTING_MARKER};
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, TRIGGER_BODY};

/// How every marker starts.
const MARKER_PREFIX: &str = "[wa:";

/// The marker that ends every comment the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("{MARKER_PREFIX}{message_id}]")
}

/// The external id of a contact's Zendesk user: `wa:<digits>`, else `wa-u:<bsuid>`.
pub fn user_external_id(contact: &Contact) -> Option<String> {
    if let Some(digits) = contact.wa_id.as_deref().map(str::trim) {
        let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            return Some(format!("wa:{digits}"));
        }
    }
    let user = contact.user_id.as_deref().map(str::trim)?;
    (!user.is_empty()).then(|| format!("wa-u:{user}"))
}

/// The external id of a conversation's tickets: `whatsapp:<phone_number_id>:<contact key>`,
/// e.g. `whatsapp:106540352242922:96890000001` (one business number, one customer).
pub fn ticket_external_id(conversation: &Conversation) -> String {
    format!("whatsapp:{}", conversation.key())
}

/// The subject of a conversation's ticket: `WhatsApp: Aisha (+96890000001)`.
pub fn ticket_subject(contact: &Contact) -> String {
    format!("WhatsApp: {}", contact.display())
}

/// The text of one comment: the message, a line saying what and when, the marker.
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

/// What the connector does with a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// New or open: comment on it.
    Comment,
    /// Pending, on-hold, or solved recently: comment and set it to open.
    Reopen,
    /// Solved too long ago, or closed: open a new ticket.
    Replace,
}

/// The Zendesk connector (see the module docs).
pub struct ZendeskConnector {
    config: ZendeskConfig,
    client: ZendeskClient,
    /// Routing: group names and agent e-mail addresses resolved so far.
    names: crate::routing_support::Names,
}

impl fmt::Debug for ZendeskConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's credentials are `Secret`s; the client redacts its header.
        f.debug_struct("ZendeskConnector")
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

/// A ticket id the daemon recorded, if it is a Zendesk one.
fn ticket_id(ticket: &TicketRef) -> Option<u64> {
    let id = ticket.0.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

impl ZendeskConnector {
    /// Builds the connector from a configuration that passed [`ZendeskConfig::validate`] (no
    /// network call; use [`TicketSystem::check`] for that).
    pub fn new(config: ZendeskConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("zendesk: {}: {}", problem.field, problem.message),
            });
        }
        let credentials = match (&config.oauth_token, &config.email, &config.api_token) {
            (Some(token), _, _) => Credentials::OAuth(token),
            (None, Some(email), Some(token)) => Credentials::ApiToken { email, token },
            _ => {
                return Err(ConnectorError::Permanent {
                    reason: "zendesk: email + api_token or oauth_token required".to_owned(),
                })
            }
        };
        let url = config.base_url().ok_or_else(|| ConnectorError::Permanent {
            reason: "zendesk: subdomain or url required".to_owned(),
        })?;
        let timeout = std::time::Duration::from_secs(config.timeout_secs);
        let client = ZendeskClient::new(&url, credentials, timeout)?;
        Ok(ZendeskConnector {
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
        match ticket.status.as_str() {
            "new" | "open" => Disposition::Comment,
            "pending" | "hold" => Disposition::Reopen,
            "solved" => {
                let window = chrono::Duration::days(i64::from(self.config.reopen_within_days));
                match ticket.updated_at {
                    Some(at) if self.config.reopen_within_days > 0 && Utc::now() - at < window => {
                        Disposition::Reopen
                    }
                    _ => Disposition::Replace,
                }
            }
            "closed" | "deleted" => Disposition::Replace,
            // A status this connector does not know: leave it as it is, add the comment.
            _ => Disposition::Comment,
        }
    }

    /// Uploads the message's files as one upload; its token, if there were files.
    async fn upload(&self, attachments: &[Attachment]) -> Result<Option<String>, ConnectorError> {
        let mut token: Option<String> = None;
        for attachment in attachments {
            let uploaded = self.client.upload(attachment, token.as_deref()).await?;
            token.get_or_insert(uploaded);
        }
        Ok(token)
    }

    /// The `comment` object of a customer message.
    async fn comment_json(
        &self,
        author: Option<u64>,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<Value, ConnectorError> {
        // A public comment must be the customer's: by the API user it would read as an
        // agent's reply (and come back through the "agent replied" trigger).
        let author = author.filter(|_| self.public());
        let mut comment = json!({
            "body": entry_body(conversation, message),
            "public": author.is_some(),
        });
        if let Some(author) = author {
            comment["author_id"] = Value::from(author);
        }
        if let Some(token) = self.upload(&message.attachments).await? {
            comment["uploads"] = json!([token]);
        }
        Ok(comment)
    }

    /// Adds the message to an existing ticket (one `PUT`, with the status change if due).
    async fn add_comment(
        &self,
        ticket: &TicketState,
        disposition: Disposition,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<(), ConnectorError> {
        let comment = self
            .comment_json(ticket.requester_id, conversation, message)
            .await?;
        let mut update = json!({ "comment": comment });
        if disposition == Disposition::Reopen {
            update["status"] = Value::from("open");
        }
        self.client
            .update_ticket(
                ticket.id,
                &json!({ "ticket": update }),
                "zendesk: adding the comment",
            )
            .await
    }

    /// The customer's Zendesk user: found by external id, else created.
    async fn requester(&self, contact: &Contact, external_id: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = self.client.user_with_external_id(external_id).await? {
            return Ok(id);
        }
        let name = contact
            .profile_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| contact.display());
        let mut user = json!({
            "name": name,
            "external_id": external_id,
            "role": "end-user",
        });
        if let Some(e164) = contact.e164() {
            user["phone"] = Value::from(e164);
        }
        self.client.create_or_update_user(&user).await
    }

    async fn open_ticket(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        follow_up_of: Option<u64>,
    ) -> Result<u64, ConnectorError> {
        let contact = &conversation.contact;
        let external_id = user_external_id(contact).ok_or_else(|| ConnectorError::Permanent {
            reason: "zendesk: the contact has neither a phone number nor a BSUID".to_owned(),
        })?;
        let requester = self.requester(contact, &external_id).await?;
        let comment = self
            .comment_json(Some(requester), conversation, message)
            .await?;
        let mut ticket = json!({
            "subject": ticket_subject(contact),
            "requester_id": requester,
            "external_id": ticket_external_id(conversation),
            "tags": self.config.tags,
            "comment": comment,
        });
        if self.public() {
            // The submitter authors the first comment.
            ticket["submitter_id"] = Value::from(requester);
        }
        if let Some(group) = self.config.group_id {
            ticket["group_id"] = Value::from(group);
        }
        if let Some(brand) = self.config.brand_id {
            ticket["brand_id"] = Value::from(brand);
        }
        if let Some(priority) = &self.config.priority {
            ticket["priority"] = Value::from(priority.trim());
        }
        if let Some(closed) = follow_up_of {
            ticket["via_followup_source_id"] = Value::from(closed);
        }
        self.client
            .create_ticket(&json!({ "ticket": ticket }))
            .await
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
            if let Some(found) = self
                .client
                .find_marker(ticket.id, &marker(&message.id))
                .await?
            {
                return Ok(delivered(ticket.id, found.in_first_comment, true));
            }
        }
        self.add_comment(ticket, disposition, conversation, message)
            .await?;
        Ok(delivered(ticket.id, false, false))
    }
}

#[async_trait::async_trait]
impl TicketSystem for ZendeskConnector {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        if user_external_id(&conversation.contact).is_none() {
            return Err(ConnectorError::Permanent {
                reason: "zendesk: the contact has neither a phone number nor a BSUID".to_owned(),
            });
        }
        let lookup = context.maybe_delivered;

        // 1. The recorded ticket, if it can still take the message.
        let mut replaced: Option<TicketState> = None;
        match context.ticket.as_ref().map(ticket_id) {
            Some(Some(id)) => {
                if let Some(ticket) = self.client.ticket(id).await? {
                    let disposition = self.disposition(&ticket);
                    tracing::debug!(ticket = ticket.id, status = %ticket.status, ?disposition, "Recorded Zendesk ticket.");
                    if disposition != Disposition::Replace {
                        return self
                            .continue_ticket(&ticket, disposition, lookup, conversation, message)
                            .await;
                    }
                    replaced = Some(ticket);
                }
            }
            Some(None) => {
                tracing::warn!(
                    "The recorded ticket is not a Zendesk ticket id; looking for another."
                );
            }
            None => {}
        }

        // 2. The conversation's newest ticket that can take it: an earlier attempt may have
        //    opened it, or the daemon never recorded it.
        let tickets = self
            .client
            .tickets_with_external_id(&ticket_external_id(conversation))
            .await?;
        let usable = tickets
            .iter()
            .rev()
            .map(|ticket| (ticket, self.disposition(ticket)))
            .find(|(_, disposition)| *disposition != Disposition::Replace);
        if let Some((ticket, disposition)) = usable {
            return self
                .continue_ticket(ticket, disposition, lookup, conversation, message)
                .await;
        }

        // 3. A new ticket; a follow-up when the last one is closed.
        let previous = replaced.or_else(|| tickets.last().cloned());
        let follow_up_of = previous
            .filter(|ticket| ticket.status == "closed")
            .map(|ticket| ticket.id);
        let id = self
            .open_ticket(conversation, message, follow_up_of)
            .await?;
        Ok(delivered(id, true, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        let me = self.client.me().await?;
        if me.id.is_none() {
            return Err(ConnectorError::Permanent {
                reason: "zendesk: Zendesk did not recognise the credentials (it answered as an \
                         anonymous visitor): check email and api_token, or oauth_token"
                    .to_owned(),
            });
        }
        if me.role == "end-user" {
            return Err(ConnectorError::Permanent {
                reason: "zendesk: the credentials belong to an end user; wabridge needs an \
                         agent or admin"
                    .to_owned(),
            });
        }
        Ok(())
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let id = ticket_id(ticket).ok_or_else(|| ConnectorError::Permanent {
            reason: "zendesk: the ticket reference is not a Zendesk ticket id".to_owned(),
        })?;
        let body = json!({ "ticket": { "comment": { "body": text, "public": false } } });
        self.client
            .update_ticket(id, &body, "zendesk: adding the note")
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
        let tolerance = i64::try_from(self.config.webhook_tolerance_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX);
        webhook::verify(secret.expose().as_bytes(), tolerance, request)
    }

    fn replies_from_webhook(&self, body: &[u8]) -> Result<Vec<AgentReply>, ConnectorError> {
        webhook::replies(body)
    }
}

#[cfg(test)]
mod tests;
