//! The connector API of wabridge, and one module per external system.
//!
//! A connector speaks one external system's API and nothing else: it never opens the daemon's
//! store, queue or configuration. The daemon hands it a [`Conversation`], an [`InboundMessage`]
//! and a [`DeliveryContext`] (what the daemon already knows, e.g. the ticket it recorded for this
//! conversation) and receives a [`Delivered`] receipt that it records in its own links tree.
//!
//! Guarantees every connector gives:
//! - **Once in effect.** When [`DeliveryContext::maybe_delivered`] is set, an earlier attempt may
//!   have reached the system (a crash or a timeout after the request was written). The connector
//!   then looks up what exists (the ticket for the conversation, a marker carrying the message id)
//!   before it creates anything, so a retry never writes a second ticket or history entry.
//! - **Classified errors.** Every failure is [`ConnectorError::Retryable`] (5xx, 429, timeouts,
//!   connection errors; honouring `Retry-After`) or [`ConnectorError::Permanent`] (other 4xx, bad
//!   configuration), decided where it happens.
//! - **No secret in `Debug`.** Credentials live in [`Secret`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod files;
pub mod freshdesk;
pub mod http;
pub mod hubspot;
pub mod redmine;
mod routing_support;
pub mod rt;
pub mod salesforce;
pub mod tryton;
pub mod zendesk;

/// The customer side of a WhatsApp conversation.
///
/// A contact is known by its phone number (`wa_id`), by its business-scoped user id (BSUID,
/// `user_id`), or both: from 2026 on Meta may withhold the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Phone number as digits without `+` (Meta's `wa_id` / `from`), when known.
    pub wa_id: Option<String>,
    /// Business-scoped user id (`user_id` / `from_user_id`), when known.
    pub user_id: Option<String>,
    /// The WhatsApp profile name, when Meta sent one.
    pub profile_name: Option<String>,
}

impl Contact {
    /// The phone number in E.164 form (`+` and digits), when known.
    pub fn e164(&self) -> Option<String> {
        self.wa_id.as_ref().map(|digits| format!("+{digits}"))
    }

    /// The stable identity used in keys: the phone number digits, else `u:` and the BSUID.
    pub fn key(&self) -> String {
        match (&self.wa_id, &self.user_id) {
            (Some(digits), _) => digits.clone(),
            (None, Some(user)) => format!("u:{user}"),
            (None, None) => "unknown".to_owned(),
        }
    }

    /// How a person reads this contact: `Name (+96890000001)`, or the BSUID when no number.
    pub fn display(&self) -> String {
        let id = self
            .e164()
            .or_else(|| self.user_id.clone())
            .unwrap_or_else(|| "unknown contact".to_owned());
        match self.profile_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => format!("{name} ({id})"),
            _ => id,
        }
    }
}

/// One conversation: a business phone number and a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Meta's `phone_number_id` of the business number that received the message.
    pub phone_number_id: String,
    /// The business number as displayed (digits), when Meta sent it.
    pub display_phone_number: Option<String>,
    /// The customer.
    pub contact: Contact,
}

impl Conversation {
    /// Stable key of the conversation: `{phone_number_id}:{contact key}`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.phone_number_id, self.contact.key())
    }
}

/// A file that came with a message (image, audio, document, ...), already downloaded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name to show, with an extension that matches the MIME type.
    pub filename: String,
    /// MIME type as Meta reported it, e.g. `image/jpeg`.
    pub mime_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("mime_type", &self.mime_type)
            .field("len", &self.data.len())
            .finish()
    }
}

/// One message the customer sent, ready to be written into another system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Meta's message id (`wamid.…`): the idempotency key of every write about this message.
    pub id: String,
    /// Meta's timestamp of the message.
    pub timestamp: DateTime<Utc>,
    /// Meta's message type (`text`, `image`, `location`, ...; unknown types verbatim).
    pub kind: String,
    /// The message as readable text: the body, a caption, coordinates and a map link, a
    /// contact card, a button title, ... Never empty.
    pub text: String,
    /// Media that came with the message.
    pub attachments: Vec<Attachment>,
}

/// A reference to a ticket (or issue, case...) in a ticketing system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketRef(pub String);

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the daemon knows when it asks a connector to deliver a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryContext {
    /// The ticket the daemon recorded for this conversation, if any.
    pub ticket: Option<TicketRef>,
    /// An earlier attempt may have reached the system: look up before creating anything.
    pub maybe_delivered: bool,
}

/// What a successful delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The ticket now holding the message (record it for the next message).
    pub ticket: TicketRef,
    /// Whether a new ticket was opened for this message.
    pub opened_ticket: bool,
    /// Whether the message was already there (found by lookup) and nothing was written.
    pub already_present: bool,
}

/// A public reply an agent wrote in a ticket, to go back to the customer on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    /// The system's id of the reply (idempotency key of the send).
    pub id: String,
    /// The ticket it was written in.
    pub ticket: TicketRef,
    /// The reply as plain text.
    pub text: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// A ticketing system: a ticket per conversation, every message an entry in it.
#[async_trait::async_trait]
pub trait TicketSystem: Send + Sync + fmt::Debug {
    /// The connector kind, e.g. `rt` (a bounded string: used in metrics and logs).
    fn kind(&self) -> &'static str;

    /// Writes one message into the conversation's ticket, opening or reopening the ticket as
    /// needed. Idempotent per [`InboundMessage::id`] (see the crate docs).
    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError>;

    /// A real, harmless read call that proves the credentials and the address work.
    async fn check(&self) -> Result<(), ConnectorError>;

    /// Agents' public replies written after `cursor` (exclusive), oldest first, with the cursor
    /// to pass next time. With no cursor yet, returns none and the current position (replies
    /// written before wabridge started watching are not sent). Systems without replies (the
    /// transcript files) keep the default.
    async fn replies_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<AgentReply>, Option<String>), ConnectorError> {
        Ok((Vec::new(), cursor.map(str::to_owned)))
    }

    /// Writes an internal note in a ticket (e.g. why a reply was not sent). Default: nothing.
    async fn note(&self, _ticket: &TicketRef, _text: &str) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Verifies a request the system pushed to `POST /connectors/{name}/webhook` (e.g. a signed
    /// "agent replied" webhook). Runs before anything is stored: a rejected request is answered
    /// 401 (or 404 when the connector takes no webhooks, the default) and stored nowhere.
    fn verify_webhook(&self, _request: &WebhookRequest<'_>) -> Result<(), WebhookRejection> {
        Err(WebhookRejection::NotSupported)
    }

    /// Reads the agents' public replies out of a verified, stored webhook body. A body that
    /// cannot be read is `Permanent` (the daemon quarantines it).
    fn replies_from_webhook(&self, _body: &[u8]) -> Result<Vec<AgentReply>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Applies routing to the conversation's ticket: idempotent (applying the same routing twice
    /// changes nothing more). A hand-over makes the ticket visibly need a person (e.g. status
    /// open, priority at least high, an internal note with the reason). Default: nothing.
    async fn route(
        &self,
        _ticket: &TicketRef,
        _routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Whether the ticket is resolved/closed (so a bot that handed over may speak again).
    /// Default: false.
    async fn is_resolved(&self, _ticket: &TicketRef) -> Result<bool, ConnectorError> {
        Ok(false)
    }
}

/// A ticket priority, mapped by each connector to its own scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// `low`, `normal`, `high` or `urgent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Reads `low`, `normal`, `high` or `urgent` (any case, surrounding blanks ignored).
    pub fn parse(text: &str) -> Option<Priority> {
        match text.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "normal" => Some(Priority::Normal),
            "high" => Some(Priority::High),
            "urgent" => Some(Priority::Urgent),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What routing decided for a conversation's ticket (every field optional; empty = nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketRouting {
    /// The department: an RT queue name, a Zendesk/Freshdesk group (name or numeric id), a
    /// Redmine issue category of the configured project... as the admin wrote it.
    pub department: Option<String>,
    /// The assignee: an RT user name, a Zendesk/Freshdesk agent (e-mail or numeric id), a
    /// Redmine user (login or id).
    pub assignee: Option<String>,
    /// The priority (each connector maps it to its own scale).
    pub priority: Option<Priority>,
    /// Tags to add (never removes tags).
    pub tags: Vec<String>,
    /// Set when the bot hands the conversation over to a human: why (shown to agents).
    pub handover: Option<String>,
}

/// A request a system pushed to wabridge, as it was received.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// `POST`, usually.
    pub method: &'a str,
    /// The path and query as received, e.g. `/connectors/zendesk/webhook`.
    pub path_and_query: &'a str,
    /// The request headers.
    pub headers: &'a reqwest::header::HeaderMap,
    /// The raw body, exactly as received (signatures are computed over these bytes).
    pub body: &'a [u8],
    /// When wabridge received it (for timestamp tolerances).
    pub received_at: DateTime<Utc>,
}

/// Why a pushed request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    /// This connector takes no webhooks (answered 404).
    #[error("this connector takes no webhooks")]
    NotSupported,
    /// Missing or wrong signature, token or timestamp (answered 401, stored nowhere).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

/// The id a CRM gave a contact (HubSpot's contact id, a Salesforce Contact Id, a Tryton party).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CrmContactId(pub String);

impl fmt::Display for CrmContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The customer wrote to the business.
    Inbound,
    /// The business (an agent, a template send, a bot) wrote to the customer.
    Outbound,
}

/// One message of a conversation, to be logged on the contact's timeline in a CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// The message id (`wamid.…`): the idempotency key of the timeline entry.
    pub id: String,
    /// Who wrote it.
    pub direction: Direction,
    /// Meta's timestamp of the message.
    pub at: DateTime<Utc>,
    /// The message as readable text (as in [`InboundMessage::text`]).
    pub text: String,
}

/// An event a system reports (an order paid, a deal stage changed): the input of the mapping
/// files whose `source` is the connector's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEvent {
    /// A stable id of the event (deduplication: the same id twice is one event).
    pub id: String,
    /// The event as JSON, the document the mappings' jsonpaths read.
    pub event: serde_json::Value,
}

/// A CRM: the contact upserted by phone number (or BSUID), every message logged on its
/// timeline, and optionally a source of business events.
#[async_trait::async_trait]
pub trait Crm: Send + Sync + fmt::Debug {
    /// The connector kind, e.g. `hubspot`.
    fn kind(&self) -> &'static str;

    /// A real, harmless read call that proves the credentials and the address work.
    async fn check(&self) -> Result<(), ConnectorError>;

    /// Finds the contact by its phone number (E.164) or BSUID and creates it when missing,
    /// filling the name from the WhatsApp profile. Idempotent: an upsert on a unique property,
    /// or a lookup before the create.
    async fn upsert_contact(&self, contact: &Contact) -> Result<CrmContactId, ConnectorError>;

    /// Logs messages on the contact's timeline, in the order given. Idempotent per
    /// [`Activity::id`]: with `maybe_delivered` an earlier attempt may have written some of
    /// them, and the connector looks them up before writing.
    async fn log_activity(
        &self,
        contact: &CrmContactId,
        conversation: &Conversation,
        activities: &[Activity],
        maybe_delivered: bool,
    ) -> Result<(), ConnectorError>;

    /// Business events reported after `cursor` (polled systems such as Tryton), oldest first,
    /// with the cursor to pass next time. Default: this CRM reports no events by polling.
    async fn events_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<SourceEvent>, Option<String>), ConnectorError> {
        Ok((Vec::new(), cursor.map(str::to_owned)))
    }

    /// Verifies an event webhook the CRM pushed to `POST /connectors/{name}/webhook` with the
    /// CRM's own signature scheme. Default: not supported.
    fn verify_webhook(&self, _request: &WebhookRequest<'_>) -> Result<(), WebhookRejection> {
        Err(WebhookRejection::NotSupported)
    }

    /// Turns a verified, stored webhook body into events (fetching what the notification only
    /// points at, e.g. the deal and its contact's phone number).
    async fn events_from_webhook(&self, _body: &[u8]) -> Result<Vec<SourceEvent>, ConnectorError> {
        Ok(Vec::new())
    }
}

/// What a `[connectors.<name>]` section builds: a ticketing system, a CRM, or both.
#[derive(Debug, Default)]
pub struct Connector {
    /// The ticketing role, when the system has one.
    pub ticketing: Option<Box<dyn TicketSystem>>,
    /// The CRM role, when the system has one.
    pub crm: Option<Box<dyn Crm>>,
}

impl Connector {
    /// A connector with only the ticketing role.
    pub fn ticketing(system: impl TicketSystem + 'static) -> Self {
        Connector {
            ticketing: Some(Box::new(system)),
            crm: None,
        }
    }

    /// A connector with only the CRM role.
    pub fn crm(system: impl Crm + 'static) -> Self {
        Connector {
            ticketing: None,
            crm: Some(Box::new(system)),
        }
    }
}

/// Why a connector call failed, decided where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The same call may succeed later (5xx, 429, timeout, connection refused).
    #[error("retryable: {reason}")]
    Retryable {
        /// How long the system asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// What went wrong, for the dead-letter record and logs (never a secret).
        reason: String,
    },
    /// Retrying the same call cannot help (other 4xx, invalid data, configuration).
    #[error("permanent: {reason}")]
    Permanent {
        /// What went wrong, for the dead-letter record and logs (never a secret).
        reason: String,
    },
}

impl ConnectorError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorError::Retryable { .. } => "retryable",
            ConnectorError::Permanent { .. } => "permanent",
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectorError::Retryable { .. } => true,
            ConnectorError::Permanent { .. } => false,
        }
    }

    /// Classifies an HTTP answer that was not a success: 5xx, 408 and 429 are retryable
    /// (honouring `Retry-After` in seconds), every other status is permanent.
    pub fn from_status(
        status: reqwest::StatusCode,
        retry_after: Option<&reqwest::header::HeaderValue>,
        what: &str,
        body: &str,
    ) -> Self {
        let snippet: String = body.chars().take(300).collect();
        let reason = format!("{what}: HTTP {status}: {snippet}");
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            let retry_after = retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            ConnectorError::Retryable {
                retry_after,
                reason,
            }
        } else {
            ConnectorError::Permanent { reason }
        }
    }

    /// Classifies a transport error: timeouts and connection failures are retryable, a request
    /// that could not even be built is permanent. After a timeout the outcome is unknown (the
    /// system may still be working on the request), so the retry — which looks up first —
    /// waits [`UNKNOWN_OUTCOME_WAIT`] to let it finish.
    pub fn from_transport(err: &reqwest::Error, what: &str) -> Self {
        let reason = format!("{what}: {}", transport_reason(err));
        if err.is_builder() {
            ConnectorError::Permanent { reason }
        } else {
            ConnectorError::Retryable {
                retry_after: err.is_timeout().then_some(UNKNOWN_OUTCOME_WAIT),
                reason,
            }
        }
    }
}

/// How long to wait before retrying a request that timed out: it may still be completing on
/// the other side, and the retry's lookup must not run before it has.
pub const UNKNOWN_OUTCOME_WAIT: Duration = Duration::from_secs(30);

/// The HTTP client every connector uses: `timeout` to connect and for a whole call, wabridge's
/// user agent, and redirects **not followed** (a redirect could carry the credential header to
/// another host; a 3xx answer is an error that names the status instead).
pub fn http_client(kind: &str, timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("wabridge/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| {
            ConnectorError::from_transport(&err, &format!("{kind}: building the HTTP client"))
        })
}

/// Describes a transport error **without its URL**: request URLs may carry a customer's phone
/// number (a search query) and must not reach logs or dead-letter records.
pub fn transport_reason(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "unreadable response"
    } else if err.is_builder() {
        "invalid request"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}

/// A credential. `Debug` and `Display` print `**redacted**`; use [`Secret::expose`] to read it.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (a configuration error wherever a secret is required).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

/// What a connector needs from the daemon to be built.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The daemon's store directory (the `files` connector writes under it by default).
    pub store_dir: PathBuf,
    /// The name of the connector's section (`[connectors.<name>]`).
    pub name: String,
}

/// One configuration problem: the field path inside the connector's section and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Field name inside the section, e.g. `url`.
    pub field: String,
    /// What is wrong, in words an admin understands.
    pub message: String,
}

impl ConfigProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The `[connectors.<name>]` section: `kind` selects the connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnectorConfig {
    /// Request Tracker 5 over REST2.
    Rt(rt::RtConfig),
    /// Readable transcripts on disk (the embedded default).
    Files(files::FilesConfig),
    /// Redmine 4/5 over its REST API.
    Redmine(redmine::RedmineConfig),
    /// Zendesk Support.
    Zendesk(zendesk::ZendeskConfig),
    /// Freshdesk (API v2).
    Freshdesk(freshdesk::FreshdeskConfig),
    /// HubSpot CRM (contacts, WhatsApp communications, deal/contact webhooks).
    Hubspot(hubspot::HubspotConfig),
    /// Any plain JSON REST API, its requests described in the section (ticketing, CRM, or
    /// both). Boxed: it holds every request of the section.
    Http(Box<http::HttpConfig>),
    /// Salesforce (contacts and Tasks as a CRM, Cases as a ticketing system, or both).
    Salesforce(salesforce::SalesforceConfig),
    /// Tryton over JSON-RPC (parties, notes, paid sales as events).
    Tryton(tryton::TrytonConfig),
}

impl ConnectorConfig {
    /// The kinds a user may write in `kind = "…"`.
    pub const KINDS: &'static [&'static str] = &[
        "rt",
        "redmine",
        "zendesk",
        "freshdesk",
        "hubspot",
        "salesforce",
        "tryton",
        "http",
        "files",
    ];

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        match self {
            ConnectorConfig::Rt(config) => config.validate(),
            ConnectorConfig::Files(config) => config.validate(),
            ConnectorConfig::Redmine(config) => config.validate(),
            ConnectorConfig::Zendesk(config) => config.validate(),
            ConnectorConfig::Freshdesk(config) => config.validate(),
            ConnectorConfig::Hubspot(config) => config.validate(),
            ConnectorConfig::Http(config) => config.validate(),
            ConnectorConfig::Salesforce(config) => config.validate(),
            ConnectorConfig::Tryton(config) => config.validate(),
        }
    }

    /// What is valid but risky in the section (e.g. no lookup to avoid a duplicate after a
    /// crash); `wabridge validate` prints these as warnings.
    pub fn warnings(&self) -> Vec<ConfigProblem> {
        match self {
            ConnectorConfig::Http(config) => config.warnings(),
            _ => Vec::new(),
        }
    }

    /// Builds the connector (may do I/O such as creating directories, never network calls).
    pub fn build(&self, context: &BuildContext) -> Result<Connector, ConnectorError> {
        match self {
            ConnectorConfig::Rt(config) => {
                Ok(Connector::ticketing(rt::RtConnector::new(config.clone())?))
            }
            ConnectorConfig::Files(config) => Ok(Connector::ticketing(files::FilesConnector::new(
                config.clone(),
                context,
            )?)),
            ConnectorConfig::Redmine(config) => Ok(Connector::ticketing(
                redmine::RedmineConnector::new(config.clone())?,
            )),
            ConnectorConfig::Zendesk(config) => Ok(Connector::ticketing(
                zendesk::ZendeskConnector::new(config.clone())?,
            )),
            ConnectorConfig::Freshdesk(config) => Ok(Connector::ticketing(
                freshdesk::FreshdeskConnector::new(config.clone())?,
            )),
            ConnectorConfig::Hubspot(config) => Ok(Connector::crm(hubspot::HubspotConnector::new(
                config.clone(),
            )?)),
            ConnectorConfig::Http(config) => http::build(config),
            ConnectorConfig::Salesforce(config) => {
                Ok(salesforce::SalesforceConnector::new(config.clone())?.into_connector())
            }
            ConnectorConfig::Tryton(config) => Ok(Connector::crm(tryton::TrytonConnector::new(
                config.clone(),
            )?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "**redacted**");
        assert_eq!(format!("{secret}"), "**redacted**");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn contact_display_prefers_name_and_e164() {
        let contact = Contact {
            wa_id: Some("96890000001".into()),
            user_id: Some("OM.123".into()),
            profile_name: Some("Aisha".into()),
        };
        assert_eq!(contact.display(), "Aisha (+96890000001)");
        assert_eq!(contact.key(), "96890000001");
        let bsuid_only = Contact {
            wa_id: None,
            user_id: Some("OM.123".into()),
            profile_name: None,
        };
        assert_eq!(bsuid_only.display(), "OM.123");
        assert_eq!(bsuid_only.key(), "u:OM.123");
    }

    #[tokio::test]
    async fn transport_errors_never_carry_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let err = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{port}/REST/2.0/tickets?query=wa%2B96890000001"
            ))
            .send()
            .await
            .expect_err("nothing listens there");
        let classified = ConnectorError::from_transport(&err, "rt: searching");
        assert!(classified.is_retryable());
        let text = classified.to_string();
        assert!(
            !text.contains("96890000001") && !text.contains("REST"),
            "{text}"
        );
        assert!(text.contains("could not connect"), "{text}");
    }

    #[test]
    fn builds_zendesk_and_freshdesk_from_their_sections() {
        let context = BuildContext {
            store_dir: PathBuf::from("/nonexistent"),
            name: "helpdesk".into(),
        };
        for (section, kind) in [
            (
                serde_json::json!({"kind": "zendesk", "subdomain": "acme",
                                   "email": "agent@acme.com", "api_token": "t"}),
                "zendesk",
            ),
            (
                serde_json::json!({"kind": "freshdesk", "domain": "acme", "api_key": "k"}),
                "freshdesk",
            ),
        ] {
            let config: ConnectorConfig = serde_json::from_value(section).expect("parses");
            assert!(
                config.validate().is_empty(),
                "{kind}: {:?}",
                config.validate()
            );
            assert!(ConnectorConfig::KINDS.contains(&kind));
            let connector = config.build(&context).expect("builds");
            assert_eq!(connector.ticketing.map(|t| t.kind()), Some(kind));
            assert!(connector.crm.is_none());
        }
        let broken: ConnectorConfig =
            serde_json::from_value(serde_json::json!({"kind": "zendesk", "subdomain": "acme"}))
                .expect("parses");
        assert_eq!(broken.validate()[0].field, "api_token");
    }

    #[test]
    fn classifies_statuses() {
        use reqwest::header::HeaderValue;
        use reqwest::StatusCode;
        let retry = HeaderValue::from_static("7");
        assert_eq!(
            ConnectorError::from_status(StatusCode::TOO_MANY_REQUESTS, Some(&retry), "x", ""),
            ConnectorError::Retryable {
                retry_after: Some(Duration::from_secs(7)),
                reason: "x: HTTP 429 Too Many Requests: ".into()
            }
        );
        assert!(ConnectorError::from_status(StatusCode::BAD_GATEWAY, None, "x", "").is_retryable());
        assert!(
            !ConnectorError::from_status(StatusCode::BAD_REQUEST, None, "x", "").is_retryable()
        );
        assert!(
            !ConnectorError::from_status(StatusCode::UNAUTHORIZED, None, "x", "").is_retryable()
        );
    }

    #[derive(Debug)]
    struct Plain;

    #[async_trait::async_trait]
    impl TicketSystem for Plain {
        fn kind(&self) -> &'static str {
            "plain"
        }

        async fn deliver(
            &self,
            _conversation: &Conversation,
            _message: &InboundMessage,
            _context: &DeliveryContext,
        ) -> Result<Delivered, ConnectorError> {
            Err(ConnectorError::Permanent {
                reason: "not used".into(),
            })
        }

        async fn check(&self) -> Result<(), ConnectorError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn routing_defaults_to_nothing_and_never_resolved() {
        let ticket = TicketRef("1".into());
        let routing = TicketRouting {
            handover: Some("wants a person".into()),
            ..TicketRouting::default()
        };
        assert_eq!(Plain.route(&ticket, &routing).await, Ok(()));
        assert_eq!(Plain.is_resolved(&ticket).await, Ok(false));
        let round_trip: TicketRouting =
            serde_json::from_value(serde_json::to_value(&routing).expect("serialises"))
                .expect("parses");
        assert_eq!(round_trip, routing);
    }
}
