//! The generic HTTP connector (`kind = "http"`): any system with a plain JSON REST API, its
//! requests described in the configuration instead of in Rust.
//!
//! One section gives a system the ticketing role (a `[….ticket]` table), the CRM role (a
//! `[….contact]` table), or both; both share one HTTP client. Everything is checked when the
//! configuration is loaded (`wabridge validate`): methods, paths, every placeholder name,
//! that each body is JSON once filled in, every `id` JSONPath, and that every entry written
//! carries the idempotency marker. Each problem names its field, e.g. `ticket.append.body`.
//!
//! # Example
//!
//! ```toml
//! [connectors.helpdesk]
//! kind = "http"
//! url = "https://api.example.com/v2"      # base address; each path is appended to it
//! timeout_secs = 30
//! check = { path = "/me" }                # a harmless read proving address and credential
//!
//! [connectors.helpdesk.auth]              # one of: bearer | header + value | username + password
//! bearer = "…"
//!
//! [connectors.helpdesk.headers]           # optional, sent with every request
//! X-Api-Version = "2024-01"
//!
//! [connectors.helpdesk.ticket]            # the ticketing role
//! find = { path = "/tickets?external_id={conversation.key}&status=open", id = "$.tickets[0].id" }
//! create = { path = "/tickets", id = "$.ticket.id", body = '''
//!   {"subject": "WhatsApp: {contact.display}", "external_id": "{conversation.key}",
//!    "body": "{message.text}\n\n{message.marker}"}''' }
//! append = { path = "/tickets/{ticket}/comments", body = '''
//!   {"body": "{message.text}\n\n{message.marker}"}''' }
//! exists = { path = "/tickets/{ticket}/comments?search={message.marker}", id = "$.comments[0].id" }
//! note = { path = "/tickets/{ticket}/comments", body = '''{"body": "{note}", "public": false}''' }
//! attach = { path = "/tickets/{ticket}/attachments", body = '''
//!   {"filename": "{attachment.filename}", "content_type": "{attachment.mime_type}",
//!    "data": "{attachment.base64}"}''' }
//!
//! [connectors.helpdesk.contact]           # the CRM role
//! find = { path = "/contacts?phone={contact.e164}", id = "$.contacts[0].id" }
//! upsert = { method = "PUT", path = "/contacts/by-phone/{contact.e164}", id = "$.id", body = '''
//!   {"name": "{contact.name}", "phone": "{contact.e164}"}''' }
//! activity = { path = "/contacts/{contact_id}/activities", body = '''
//!   {"direction": "{activity.direction}", "at": "{activity.at}",
//!    "text": "{activity.text}\n{activity.marker}"}''' }
//! exists = { path = "/contacts/{contact_id}/activities?search={activity.marker}", id = "$.activities[0].id" }
//! ```
//!
//! Requests may also be written as tables (`[connectors.helpdesk.ticket.create]` with
//! `path = …`, `body = '''…'''` on their own lines).
//!
//! # Requests
//!
//! Every request has a `path` (appended to `url`, starting with `/`, query allowed), an
//! optional JSON `body` (sent as `application/json`), an optional `method` (`GET`, `POST`,
//! `PUT`, `PATCH`; default `POST` with a body, else `GET`; lookups and `check` only `GET` or
//! `POST`), and where the answer is read an `id`: a JSONPath (RFC 9535) selecting a string or
//! a number in the JSON answer. A lookup (`find`, `exists`) found nothing when its `id`
//! selects nothing, `null` or `""`; with `empty_on_404 = true` a 404 answer also means
//! nothing found (by default a 404 is an error, so a mistyped path cannot make every message
//! open a new ticket).
//!
//! | request | when | `id` |
//! |---|---|---|
//! | `check` (required) | `wabridge check`, start-up | — |
//! | `ticket.find` | no ticket recorded for the conversation | the ticket |
//! | `ticket.create` (required) | no ticket recorded or found | the new ticket |
//! | `ticket.append` (required) | a ticket is recorded or found | — |
//! | `ticket.exists` | before writing, when an earlier attempt may have written | any: present |
//! | `ticket.attach` | once per file, before `append` / after `create` | — |
//! | `ticket.note` | an internal note (e.g. why a reply was not sent) | — |
//! | `contact.find` | before `upsert` | the contact |
//! | `contact.upsert` (required) | the contact was not found (or no `find`) | the contact |
//! | `contact.activity` (required) | once per message, in order | — |
//! | `contact.exists` | before each activity, when an earlier attempt may have written | any: present |
//!
//! # Placeholders
//!
//! `{name}` in a path is percent-encoded (`+968…` → `%2B968…`); an empty value there (e.g. no
//! phone number) fails the call permanently instead of building a wrong URL. In a body, inside
//! a JSON string it is JSON-escaped (quotes, backslashes, line breaks; Arabic and emoji kept);
//! outside a string it becomes a whole JSON value: a number when the value is a plain integer
//! (`"ticket_id": {ticket}` → `42`), else a string. A `{` not followed by a name and `}` is
//! plain text, so JSON needs no escaping. Unknown names, or names not available in a request,
//! are load errors. Missing values (no profile name, no BSUID) are empty strings.
//!
//! | placeholder | value | in |
//! |---|---|---|
//! | `conversation.key` | `{phone_number_id}:{contact.key}`, stable per conversation | ticket.* but note, contact.activity/exists |
//! | `conversation.phone_number_id` | Meta's id of the business number | 〃 |
//! | `conversation.display_phone_number` | the business number's digits, as Meta sent them | 〃 |
//! | `contact.key` | the customer's digits, else `u:` + BSUID | all but check and ticket.note |
//! | `contact.e164` | `+96890000001`, empty without a number | 〃 |
//! | `contact.digits` | `96890000001` (`wa_id`), empty without a number | 〃 |
//! | `contact.bsuid` | the business-scoped user id, empty when not sent | 〃 |
//! | `contact.name` | the WhatsApp profile name, empty when not sent | 〃 |
//! | `contact.display` | `Aisha (+96890000001)` (the BSUID without a number) | 〃 |
//! | `message.id` | the `wamid.…` | ticket.find/create/append/exists/attach |
//! | `message.marker` | `[wa:<wamid>]` | 〃 |
//! | `message.text` | the message as text; files not forwarded are named after it | 〃 |
//! | `message.kind` | `text`, `image`, `location`, … | 〃 |
//! | `message.timestamp` | RFC 3339, `2026-11-27T09:30:00Z` | 〃 |
//! | `ticket` | the ticket's id | ticket.append/exists/attach/note |
//! | `attachment.filename`, `.mime_type`, `.size` (bytes), `.base64` | one file | ticket.attach |
//! | `note` | the note's text | ticket.note |
//! | `contact_id` | the id `contact.find`/`upsert` read | contact.activity/exists |
//! | `activity.id` | the `wamid.…` | contact.activity/exists |
//! | `activity.marker` | `[wa:<wamid>]` | 〃 |
//! | `activity.text` | the message as text | 〃 |
//! | `activity.direction` | `inbound` or `outbound` | 〃 |
//! | `activity.at` | RFC 3339 | 〃 |
//!
//! # Once in effect
//!
//! `ticket.create` and `ticket.append` must carry `{message.marker}`, `contact.activity`
//! `{activity.marker}` (in the path or the body), or the configuration is rejected: the
//! marker is how a retry finds what an earlier attempt wrote, and how people see which
//! WhatsApp message an entry is.
//!
//! When an earlier attempt may have reached the system ([`DeliveryContext::maybe_delivered`]:
//! a crash or a timeout after the request was written), the connector asks `ticket.exists` /
//! `contact.exists` first and writes nothing that is already there; `exists` must find what
//! both `create` and `append` wrote (e.g. a search over the ticket's text for the marker). A
//! conversation without a recorded ticket always asks `ticket.find` first, so the ticket an
//! earlier attempt opened is continued, not opened again.
//!
//! **Without `exists`** (or `ticket.find`) such a crash may duplicate an entry (or a ticket):
//! the configuration is accepted, and [`HttpConfig::warnings`] names the missing request
//! (logged as a WARN when the connector is built). An upsert `POST` without `contact.find`
//! is warned about too.
//!
//! # What it does not do
//!
//! - It does not know a ticket's status: the recorded ticket is always continued. Reopening is
//!   the system's business (many reopen on a new comment, or let `append` set
//!   `"status": "open"`); a `find` that only finds open tickets gives a conversation whose
//!   ticket is not recorded a new one.
//! - A recorded ticket that was deleted makes `append` fail (the system's 404 or 410, a
//!   permanent error: the message is dead-lettered with the reason).
//! - Files go as base64 in a JSON body, one request per file, the whole file in memory;
//!   multipart uploads are not supported. Under `maybe_delivered`, when `exists` finds the
//!   message, its files are not sent again (on a known ticket they are sent before the entry,
//!   so a crash between them resends files rather than losing them; on a new ticket they
//!   follow the create).
//! - When `exists` finds the message on a ticket `find` returned, the receipt says the ticket
//!   was not opened by it (it cannot tell).
//! - No agents' replies and no webhooks (the defaults of [`TicketSystem`] and [`Crm`]).

mod client;
mod config;
mod template;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chrono::SecondsFormat;

use crate::{
    Activity, Connector, ConnectorError, Contact, Conversation, Crm, CrmContactId, Delivered,
    DeliveryContext, Direction, InboundMessage, TicketRef, TicketSystem,
};
use client::HttpClient;
use config::{Call, ContactPlan, TicketPlan};
pub use config::{
    ContactRequests, HttpAuth, HttpConfig, HttpRequest, TicketRequests, DEFAULT_TIMEOUT_SECS,
};
use template::Values;

/// The marker every entry carries: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("[wa:{message_id}]")
}

/// Builds the roles the section configures, sharing one HTTP client (no network call; use
/// `check` for that). Logs [`HttpConfig::warnings`] at WARN.
pub fn build(config: &HttpConfig) -> Result<Connector, ConnectorError> {
    let plan = config.plan().map_err(|problems| {
        let listed: Vec<String> = problems
            .iter()
            .map(|problem| format!("{}: {}", problem.field, problem.message))
            .collect();
        ConnectorError::Permanent {
            reason: format!("http: {}", listed.join("; ")),
        }
    })?;
    for warning in config.warnings() {
        tracing::warn!(
            field = %warning.field,
            warning = %warning.message,
            "HTTP connector configuration accepted with a warning."
        );
    }
    let client = Arc::new(HttpClient::new(config)?);
    let ticketing = plan.ticket.map(|requests| {
        Box::new(HttpTicketing {
            client: Arc::clone(&client),
            check: plan.check.clone(),
            requests,
        }) as Box<dyn TicketSystem>
    });
    let crm = plan.contact.map(|requests| {
        Box::new(HttpCrm {
            client: Arc::clone(&client),
            check: plan.check.clone(),
            requests,
        }) as Box<dyn Crm>
    });
    Ok(Connector { ticketing, crm })
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn contact_values(values: &mut Values, contact: &Contact) {
    let text = |value: Option<&String>| value.map(|v| v.trim().to_owned()).unwrap_or_default();
    values.set("contact.key", contact.key());
    values.set("contact.e164", contact.e164().unwrap_or_default());
    values.set("contact.digits", text(contact.wa_id.as_ref()));
    values.set("contact.bsuid", text(contact.user_id.as_ref()));
    values.set("contact.name", text(contact.profile_name.as_ref()));
    values.set("contact.display", contact.display());
}

fn conversation_values(values: &mut Values, conversation: &Conversation) {
    values.set("conversation.key", conversation.key());
    values.set(
        "conversation.phone_number_id",
        conversation.phone_number_id.trim(),
    );
    values.set(
        "conversation.display_phone_number",
        conversation
            .display_phone_number
            .as_deref()
            .map(str::trim)
            .unwrap_or_default(),
    );
    contact_values(values, &conversation.contact);
}

/// The message's text; when files are not forwarded, a line naming them follows.
pub fn message_text(message: &InboundMessage, files_forwarded: bool) -> String {
    if files_forwarded || message.attachments.is_empty() {
        return message.text.clone();
    }
    let files: Vec<String> = message
        .attachments
        .iter()
        .map(|file| {
            format!(
                "{} ({}, {} bytes)",
                file.filename.trim(),
                file.mime_type.trim(),
                file.data.len()
            )
        })
        .collect();
    format!(
        "{}\n\n(Not forwarded by wabridge: {})",
        message.text.trim_end(),
        files.join("; ")
    )
}

/// The ticketing role (see the module docs).
pub struct HttpTicketing {
    client: Arc<HttpClient>,
    check: Call,
    requests: TicketPlan,
}

impl fmt::Debug for HttpTicketing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTicketing")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn delivered(ticket: String, opened_ticket: bool, already_present: bool) -> Delivered {
    Delivered {
        ticket: TicketRef(ticket),
        opened_ticket,
        already_present,
    }
}

impl HttpTicketing {
    /// Sends the message's files to the ticket in `values`, one `attach` per file.
    async fn attach(
        &self,
        values: &Values,
        message: &InboundMessage,
    ) -> Result<(), ConnectorError> {
        let Some(attach) = &self.requests.attach else {
            return Ok(());
        };
        for file in &message.attachments {
            let mut values = values.clone();
            values.set("attachment.filename", file.filename.trim());
            values.set("attachment.mime_type", file.mime_type.trim());
            values.set("attachment.size", file.data.len().to_string());
            values.set(
                "attachment.base64",
                base64::engine::general_purpose::STANDARD.encode(&file.data),
            );
            self.client.send(attach, &values).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TicketSystem for HttpTicketing {
    fn kind(&self) -> &'static str {
        "http"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        let mut values = Values::default();
        conversation_values(&mut values, conversation);
        values.set("message.id", message.id.trim());
        values.set("message.marker", marker(message.id.trim()));
        values.set(
            "message.text",
            message_text(message, self.requests.attach.is_some()),
        );
        values.set("message.kind", message.kind.trim());
        values.set("message.timestamp", rfc3339(message.timestamp));

        // The recorded ticket, else the conversation's ticket the system knows.
        let recorded = context
            .ticket
            .as_ref()
            .map(|TicketRef(id)| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        let ticket = match (recorded, &self.requests.find) {
            (Some(ticket), _) => Some(ticket),
            (None, Some(find)) => self.client.lookup(find, &values).await?,
            (None, None) => None,
        };

        let Some(ticket) = ticket else {
            let ticket = self.client.create(&self.requests.create, &values).await?;
            values.set("ticket", ticket.clone());
            self.attach(&values, message).await?;
            return Ok(delivered(ticket, true, false));
        };
        values.set("ticket", ticket.clone());
        if context.maybe_delivered {
            if let Some(exists) = &self.requests.exists {
                if self.client.lookup(exists, &values).await?.is_some() {
                    tracing::debug!("The message is already in the ticket; nothing written.");
                    return Ok(delivered(ticket, false, true));
                }
            }
        }
        // Files first: a crash between them resends files rather than losing them.
        self.attach(&values, message).await?;
        self.client.send(&self.requests.append, &values).await?;
        Ok(delivered(ticket, false, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client
            .send(&self.check, &Values::default())
            .await
            .map(drop)
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let Some(note) = &self.requests.note else {
            tracing::debug!("No ticket.note request configured; the note is not written.");
            return Ok(());
        };
        let id = ticket.0.trim();
        if id.is_empty() {
            return Err(ConnectorError::Permanent {
                reason: "http: ticket.note: the ticket id is empty".to_owned(),
            });
        }
        let mut values = Values::default();
        values.set("ticket", id);
        values.set("note", text);
        self.client.send(note, &values).await.map(drop)
    }
}

/// The CRM role (see the module docs).
pub struct HttpCrm {
    client: Arc<HttpClient>,
    check: Call,
    requests: ContactPlan,
}

impl fmt::Debug for HttpCrm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCrm")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Crm for HttpCrm {
    fn kind(&self) -> &'static str {
        "http"
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client
            .send(&self.check, &Values::default())
            .await
            .map(drop)
    }

    async fn upsert_contact(&self, contact: &Contact) -> Result<CrmContactId, ConnectorError> {
        let mut values = Values::default();
        contact_values(&mut values, contact);
        if let Some(find) = &self.requests.find {
            if let Some(id) = self.client.lookup(find, &values).await? {
                return Ok(CrmContactId(id));
            }
        }
        let id = self.client.create(&self.requests.upsert, &values).await?;
        Ok(CrmContactId(id))
    }

    async fn log_activity(
        &self,
        contact: &CrmContactId,
        conversation: &Conversation,
        activities: &[Activity],
        maybe_delivered: bool,
    ) -> Result<(), ConnectorError> {
        let contact_id = contact.0.trim();
        if contact_id.is_empty() {
            return Err(ConnectorError::Permanent {
                reason: "http: contact.activity: the contact id is empty".to_owned(),
            });
        }
        let mut base = Values::default();
        conversation_values(&mut base, conversation);
        base.set("contact_id", contact_id);
        // One entry per message id, in the order given.
        let mut seen = HashSet::new();
        for activity in activities {
            let id = activity.id.trim();
            if id.is_empty() || !seen.insert(id) {
                continue;
            }
            let mut values = base.clone();
            values.set("activity.id", id);
            values.set("activity.marker", marker(id));
            values.set("activity.text", activity.text.as_str());
            values.set(
                "activity.direction",
                match activity.direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
            );
            values.set("activity.at", rfc3339(activity.at));
            if maybe_delivered {
                if let Some(exists) = &self.requests.exists {
                    if self.client.lookup(exists, &values).await?.is_some() {
                        tracing::debug!("The activity is already on the timeline; skipped.");
                        continue;
                    }
                }
            }
            self.client.send(&self.requests.activity, &values).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
