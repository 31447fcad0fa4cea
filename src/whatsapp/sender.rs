//! Outbound messages through the Cloud API: `POST /{phone-number-id}/messages`.
//!
//! Guarantees:
//! - [`SendRequest::body`] is Meta's documented JSON (checked against Meta's examples).
//! - Every send first takes a permit from the shared [`RateLimiter`]; Meta's throughput
//!   (130429) and pair (131056) limits feed back into it.
//! - Every failure is classified once, here, by Meta's `error.code` (via
//!   [`graph::classify_response`]) and then the HTTP class: [`SendError::Retry`] may be sent
//!   again, [`SendError::Rejected`] must not be, and [`SendError::UnknownOutcome`] means the
//!   request left but no answer came back, so the message may exist. Resending that one can
//!   duplicate it: reconcile first (e.g. by the `biz_opaque_callback_data` echoed on status
//!   webhooks).
//! - Error reasons never contain the access token, the recipient or the request URL.
//!
//! A 2xx answer means Meta **accepted** the message, not that it was delivered: 131026,
//! 131047, 131049 and others may still arrive later as a `failed` status webhook.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use wabridge_connectors::Secret;

use crate::config::WhatsAppConfig;
use crate::whatsapp::graph::{self, GraphError};
use crate::whatsapp::ratelimit::RateLimiter;

/// Meta's limit on `biz_opaque_callback_data`, in characters.
pub const CALLBACK_DATA_MAX_CHARS: usize = 512;

/// Who receives a message.
#[derive(Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A phone number in international format, digits only (sent as `"to"`).
    Phone(String),
    /// A business-scoped user id (sent as `"recipient"`).
    Bsuid(String),
}

impl Recipient {
    /// The phone number or BSUID as sent (also the pair rate-limit key).
    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Phone(id) | Recipient::Bsuid(id) => id,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Recipient::Phone(_) => "to",
            Recipient::Bsuid(_) => "recipient",
        }
    }
}

/// Shows only the last two characters: recipients are personal data.
impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.as_str();
        let tail: String = id
            .chars()
            .skip(id.chars().count().saturating_sub(2))
            .collect();
        match self {
            Recipient::Phone(_) => write!(f, "Phone(…{tail})"),
            Recipient::Bsuid(_) => write!(f, "Bsuid(…{tail})"),
        }
    }
}

/// The kinds of media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `image` (jpeg/png, ≤ 5 MB).
    Image,
    /// `audio` (aac/amr/mp3/m4a/ogg-opus, ≤ 16 MB); no caption.
    Audio,
    /// `video` (mp4/3gp, ≤ 16 MB).
    Video,
    /// `document` (≤ 100 MB); the only kind with a filename.
    Document,
    /// `sticker` (webp 512×512); no caption.
    Sticker,
}

impl MediaKind {
    /// Meta's `type` value and node name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    fn takes_caption(self) -> bool {
        match self {
            MediaKind::Image | MediaKind::Video | MediaKind::Document => true,
            MediaKind::Audio | MediaKind::Sticker => false,
        }
    }
}

/// Where Meta gets the media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A public `https://` URL Meta downloads (`"link"`).
    Link(String),
    /// A media id from an upload to `/{phone-number-id}/media` (`"id"`).
    Id(String),
}

/// A section of a list message: its title and rows `(id, title, description)`.
pub type ListSection = (String, Vec<(String, String, Option<String>)>);

/// What can be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundMessage {
    /// A text message (only inside the 24 h customer-service window).
    Text {
        /// The text.
        body: String,
        /// Whether WhatsApp renders a preview of the first URL.
        preview_url: bool,
    },
    /// An approved template (the only thing allowed outside the window).
    Template {
        /// The template's name.
        name: String,
        /// Its language code, e.g. `en_US`.
        language: String,
        /// Meta's component objects (`header`/`body`/`button` with `parameters`), as JSON;
        /// omitted from the request when empty.
        components: Vec<Value>,
    },
    /// An image, audio, video, document or sticker.
    Media {
        /// Which kind.
        kind: MediaKind,
        /// Link or uploaded id.
        source: MediaSource,
        /// Caption (image, video and document only).
        caption: Option<String>,
        /// File name shown to the user (document only).
        filename: Option<String>,
    },
    /// Up to three reply buttons under a text (only inside the window).
    Buttons {
        /// The text above the buttons.
        body: String,
        /// `(id, title)` of each button: the id comes back in the customer's reply.
        buttons: Vec<(String, String)>,
    },
    /// A list the customer opens with a button and picks one row from (only inside the window).
    List {
        /// The text above the list button.
        body: String,
        /// The list button's label.
        button: String,
        /// Sections: a title and rows `(id, title, description)`.
        sections: Vec<ListSection>,
    },
    /// A reaction to a message; an empty emoji removes it.
    Reaction {
        /// The `wamid` reacted to.
        message_id: String,
        /// The emoji.
        emoji: String,
    },
}

impl OutboundMessage {
    /// Meta's `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            OutboundMessage::Text { .. } => "text",
            OutboundMessage::Template { .. } => "template",
            OutboundMessage::Media { kind, .. } => kind.as_str(),
            OutboundMessage::Reaction { .. } => "reaction",
            OutboundMessage::Buttons { .. } | OutboundMessage::List { .. } => "interactive",
        }
    }

    /// The node named after the type.
    fn node(&self) -> Value {
        match self {
            OutboundMessage::Buttons { body, buttons } => json!({
                "type": "button",
                "body": { "text": body },
                "action": { "buttons": buttons.iter().map(|(id, title)| json!({
                    "type": "reply", "reply": { "id": id, "title": title }
                })).collect::<Vec<_>>() }
            }),
            OutboundMessage::List {
                body,
                button,
                sections,
            } => json!({
                "type": "list",
                "body": { "text": body },
                "action": {
                    "button": button,
                    "sections": sections.iter().map(|(title, rows)| json!({
                        "title": title,
                        "rows": rows.iter().map(|(id, title, description)| {
                            let mut row = json!({ "id": id, "title": title });
                            if let Some(description) = description {
                                row["description"] = Value::from(description.as_str());
                            }
                            row
                        }).collect::<Vec<_>>()
                    })).collect::<Vec<_>>()
                }
            }),
            OutboundMessage::Text { body, preview_url } => {
                json!({ "body": body, "preview_url": preview_url })
            }
            OutboundMessage::Template {
                name,
                language,
                components,
            } => {
                let mut node = json!({ "name": name, "language": { "code": language } });
                if !components.is_empty() {
                    node["components"] = Value::Array(components.clone());
                }
                node
            }
            OutboundMessage::Media {
                source,
                caption,
                filename,
                ..
            } => {
                let mut node = Map::new();
                match source {
                    MediaSource::Link(url) => node.insert("link".into(), url.as_str().into()),
                    MediaSource::Id(id) => node.insert("id".into(), id.as_str().into()),
                };
                if let Some(caption) = caption {
                    node.insert("caption".into(), caption.as_str().into());
                }
                if let Some(filename) = filename {
                    node.insert("filename".into(), filename.as_str().into());
                }
                Value::Object(node)
            }
            OutboundMessage::Reaction { message_id, emoji } => {
                json!({ "message_id": message_id, "emoji": emoji })
            }
        }
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The business number it is sent from (Meta's phone number id, digits).
    pub phone_number_id: String,
    /// Who receives it.
    pub to: Recipient,
    /// What is sent.
    pub message: OutboundMessage,
    /// The `wamid` this message quotes (`context.message_id`).
    pub reply_to: Option<String>,
    /// Echoed on every status webhook of this message (`biz_opaque_callback_data`,
    /// ≤ 512 characters); never in the send response.
    pub callback_data: Option<String>,
}

impl SendRequest {
    /// Meta's request body.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("messaging_product".into(), "whatsapp".into());
        body.insert("recipient_type".into(), "individual".into());
        body.insert(self.to.field().into(), self.to.as_str().into());
        body.insert("type".into(), self.message.type_name().into());
        if let Some(message_id) = &self.reply_to {
            body.insert("context".into(), json!({ "message_id": message_id }));
        }
        if let Some(data) = &self.callback_data {
            body.insert("biz_opaque_callback_data".into(), data.as_str().into());
        }
        body.insert(self.message.type_name().into(), self.message.node());
        Value::Object(body)
    }

    /// Every reason Meta would refuse this request, or that it is unsafe to send; empty when
    /// valid. Pure: [`Sender::send`] runs it before anything leaves.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(problem) = phone_number_id_problem(&self.phone_number_id) {
            problems.push(problem);
        }
        if self.to.as_str().trim().is_empty() {
            problems.push("the recipient is empty".to_owned());
        }
        if let Some(data) = &self.callback_data {
            let chars = data.chars().count();
            if chars > CALLBACK_DATA_MAX_CHARS {
                problems.push(format!(
                    "callback data is {chars} characters, over Meta's {CALLBACK_DATA_MAX_CHARS}"
                ));
            }
        }
        match &self.message {
            OutboundMessage::Text { body, .. } => {
                if body.trim().is_empty() {
                    problems.push("the text is empty".to_owned());
                }
            }
            OutboundMessage::Template { name, language, .. } => {
                if name.trim().is_empty() {
                    problems.push("the template name is empty".to_owned());
                }
                if language.trim().is_empty() {
                    problems.push("the template language is empty".to_owned());
                }
            }
            OutboundMessage::Media {
                kind,
                source,
                caption,
                filename,
            } => {
                let (MediaSource::Link(value) | MediaSource::Id(value)) = source;
                if value.trim().is_empty() {
                    problems.push(format!("the {} has no link or id", kind.as_str()));
                }
                if caption.is_some() && !kind.takes_caption() {
                    problems.push(format!("Meta takes no caption on {}", kind.as_str()));
                }
                if filename.is_some() && *kind != MediaKind::Document {
                    problems.push(format!(
                        "only documents have a filename, not {}",
                        kind.as_str()
                    ));
                }
            }
            OutboundMessage::Reaction { message_id, .. } => {
                if message_id.trim().is_empty() {
                    problems.push("the reaction names no message".to_owned());
                }
            }
            OutboundMessage::Buttons { body, buttons } => {
                if body.trim().is_empty() {
                    problems.push("the text above the buttons is empty".to_owned());
                }
                if buttons.is_empty() || buttons.len() > 3 {
                    problems.push(format!("{} buttons; Meta takes 1 to 3", buttons.len()));
                }
                for (_, title) in buttons {
                    if title.chars().count() > 20 {
                        problems.push(format!("button title {title:?} is over 20 characters"));
                    }
                }
            }
            OutboundMessage::List { body, sections, .. } => {
                if body.trim().is_empty() {
                    problems.push("the text above the list is empty".to_owned());
                }
                let rows: usize = sections.iter().map(|(_, rows)| rows.len()).sum();
                if rows == 0 || rows > 10 {
                    problems.push(format!("{rows} list rows; Meta takes 1 to 10"));
                }
                for (_, title, _) in sections.iter().flat_map(|(_, rows)| rows) {
                    if title.chars().count() > 24 {
                        problems.push(format!("list row title {title:?} is over 24 characters"));
                    }
                }
            }
        }
        problems
    }
}

/// The body that marks an inbound message read, optionally showing a typing indicator (for up
/// to 25 s or until the next message).
pub fn mark_read_body(message_id: &str, typing: bool) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
    });
    if typing {
        body["typing_indicator"] = json!({ "type": "text" });
    }
    body
}

/// A message Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Its id (`messages[0].id`), which status webhooks refer to.
    pub wamid: String,
    /// `accepted`, `held_for_quality_assessment` or `paused`, when Meta says.
    pub message_status: Option<String>,
}

/// What the caller must do beyond not resending a rejected request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing specific: fix the request or give up on it.
    None,
    /// 131047: more than 24 h since the user last wrote; only a template can go now.
    WindowClosed,
    /// 131050: the user stopped marketing messages.
    MarketingOptOut,
    /// 131026: not a WhatsApp user, terms not accepted, client too old, or blocked.
    Undeliverable,
    /// 131049: Meta's per-user marketing limit; not before 24 h, if at all.
    PerUserMarketingLimit,
    /// 132015: template paused for low quality; wait for its `APPROVED` webhook.
    TemplatePaused,
    /// 132016: template disabled for good.
    TemplateDisabled,
    /// 132001: no approved template of that name in that language.
    TemplateMissing,
    /// 132000, 132008, 132012: parameters do not fit the template.
    ParamMismatch,
    /// 190 (or an HTTP 401 without a code): the access token is invalid or expired. Pause
    /// every send and alert; nothing succeeds until the token is replaced.
    TokenInvalid,
    /// 131031, 131042, 133010, 368: the account is locked, unpaid, unregistered or blocked
    /// for policy. Pause the number's sends and alert.
    AccountProblem,
}

impl Action {
    /// The action for a Meta error code.
    pub fn for_code(code: i64) -> Action {
        match code {
            131047 => Action::WindowClosed,
            131050 => Action::MarketingOptOut,
            131026 => Action::Undeliverable,
            131049 => Action::PerUserMarketingLimit,
            132015 => Action::TemplatePaused,
            132016 => Action::TemplateDisabled,
            132001 => Action::TemplateMissing,
            132000 | 132008 | 132012 => Action::ParamMismatch,
            190 => Action::TokenInvalid,
            131031 | 131042 | 133010 | 368 => Action::AccountProblem,
            _ => Action::None,
        }
    }

    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "rejected",
            Action::WindowClosed => "window_closed",
            Action::MarketingOptOut => "marketing_opt_out",
            Action::Undeliverable => "undeliverable",
            Action::PerUserMarketingLimit => "per_user_marketing_limit",
            Action::TemplatePaused => "template_paused",
            Action::TemplateDisabled => "template_disabled",
            Action::TemplateMissing => "template_missing",
            Action::ParamMismatch => "param_mismatch",
            Action::TokenInvalid => "token_invalid",
            Action::AccountProblem => "account_problem",
        }
    }

    /// Whether every other send (from this number, or at all for the token) will fail too.
    pub fn halts_sending(self) -> bool {
        match self {
            Action::TokenInvalid | Action::AccountProblem => true,
            Action::None
            | Action::WindowClosed
            | Action::MarketingOptOut
            | Action::Undeliverable
            | Action::PerUserMarketingLimit
            | Action::TemplatePaused
            | Action::TemplateDisabled
            | Action::TemplateMissing
            | Action::ParamMismatch => false,
        }
    }
}

/// A send that did not (knowingly) succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing was accepted; the same request may be sent again, after `retry_after` if set.
    #[error("WhatsApp send failed, retryable: {reason}")]
    Retry {
        /// What happened (no token, recipient or URL).
        reason: String,
        /// How long to wait at least (Meta's `Retry-After`, its estimated time to regain
        /// access, or the pair-limit delay).
        retry_after: Option<Duration>,
    },
    /// Meta refused this request; never send it again as is.
    #[error("WhatsApp send rejected ({}): {reason}", .action.as_str())]
    Rejected {
        /// Meta's `error.code`, when it sent one.
        code: Option<i64>,
        /// What happened (no token, recipient or URL).
        reason: String,
        /// What the caller must do about it.
        action: Action,
    },
    /// The request was sent but no answer arrived: the message may exist. Do not resend
    /// blindly; reconcile (status webhooks echo the callback data) or accept a duplicate.
    #[error("WhatsApp send outcome unknown: {reason}")]
    UnknownOutcome {
        /// What happened (no token, recipient or URL).
        reason: String,
    },
}

impl SendError {
    /// A bounded label for metrics: `retry`, `unknown_outcome`, or the rejection's action.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Retry { .. } => "retry",
            SendError::Rejected { action, .. } => action.as_str(),
            SendError::UnknownOutcome { .. } => "unknown_outcome",
        }
    }
}

#[derive(Deserialize)]
struct MessageResponse {
    #[serde(default)]
    messages: Vec<MessageId>,
}

#[derive(Deserialize)]
struct MessageId {
    id: String,
    #[serde(default)]
    message_status: Option<String>,
}

#[derive(Deserialize)]
struct SuccessResponse {
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize)]
struct ErrorCodeBody {
    error: ErrorCode,
}

#[derive(Deserialize)]
struct ErrorCode {
    #[serde(default)]
    code: Option<i64>,
}

/// Whether a request may simply be sent again when its answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeatable {
    /// Sending twice is harmless (mark as read).
    Yes,
    /// Sending twice may deliver twice (messages).
    No,
}

/// Sends messages through the Graph API. Cheap to clone; share one per daemon.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    base: String,
    token: Secret,
    limiter: Arc<RateLimiter>,
    /// Sending paused after Meta refused the token (key `""`: every number) or a number's
    /// account (key: its phone number id): until when, and why.
    paused: Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, String)>>>,
}

impl Sender {
    /// Default time allowed to connect to Meta.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default time allowed for a whole request.
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    /// How long sending pauses after Meta refused the token or an account (190, 131031, …):
    /// the sends wait and are retried, one probe per pause, until an admin fixed it.
    pub const PAUSE: Duration = Duration::from_secs(300);

    /// A sender for the configured Graph API, sharing `limiter` with every other sender.
    pub fn new(
        config: &WhatsAppConfig,
        limiter: Arc<RateLimiter>,
    ) -> Result<Sender, reqwest::Error> {
        Sender::with_timeouts(config, limiter, Sender::CONNECT_TIMEOUT, Sender::TIMEOUT)
    }

    /// As [`Sender::new`], with other timeouts. Keep `connect_timeout` below `timeout`: a
    /// connect failure is safely retried, any later timeout is an unknown outcome.
    pub fn with_timeouts(
        config: &WhatsAppConfig,
        limiter: Arc<RateLimiter>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Sender, reqwest::Error> {
        let base = format!(
            "{}/{}",
            config.graph_url.trim_end_matches('/'),
            config.api_version
        );
        Sender::from_parts(
            base,
            config.access_token.clone(),
            limiter,
            connect_timeout,
            timeout,
        )
    }

    /// A sender posting to `base` (the Graph API's URL with its version, e.g.
    /// `https://graph.facebook.com/v23.0`) with `token`.
    pub fn from_parts(
        base: String,
        token: Secret,
        limiter: Arc<RateLimiter>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Sender, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Sender {
            http,
            base,
            token,
            limiter,
            paused: Arc::default(),
        })
    }

    /// The shared rate limiter.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Sends one message once: validates it, waits for a rate-limit permit, posts it, and
    /// returns Meta's `wamid`. Retrying is the caller's decision, guided by the error.
    pub async fn send(&self, request: &SendRequest) -> Result<Sent, SendError> {
        let problems = request.validate();
        if !problems.is_empty() {
            return Err(SendError::Rejected {
                code: None,
                reason: self.scrub(problems.join("; "), Some(&request.to)),
                action: Action::None,
            });
        }
        if let Some((wait, why)) = self.pause_of(&request.phone_number_id) {
            return Err(SendError::Retry {
                reason: format!("sending is paused: {why}"),
                retry_after: Some(wait),
            });
        }
        let recipient = request.to.as_str();
        let permit = self
            .limiter
            .acquire(&request.phone_number_id, recipient)
            .await;
        let answer = self
            .post(&request.phone_number_id, &request.body(), Repeatable::No)
            .await;
        // Meta counted the message somewhere before its answer: the permit's window starts now.
        drop(permit);
        let (status, headers, body) =
            answer.map_err(|err| self.scrubbed(err, Some(&request.to)))?;

        if !status.is_success() {
            let code = error_code(&body);
            let error = self.classify(status, &headers, &body, Some(&request.to));
            if let SendError::Retry { .. } = error {
                return Err(self.throttle(code, request, error));
            }
            if let SendError::Rejected { action, .. } = &error {
                if action.halts_sending() {
                    return Err(self.pause(*action, request, error));
                }
            }
            return Err(error);
        }
        let Some(message) = serde_json::from_str::<MessageResponse>(&body)
            .ok()
            .and_then(|response| response.messages.into_iter().next())
        else {
            // Accepted, most likely, but without the id nothing can be tracked.
            return Err(SendError::UnknownOutcome {
                reason: format!("HTTP {status} without messages[0].id"),
            });
        };
        tracing::debug!(
            message_type = request.message.type_name(),
            "Message accepted."
        );
        Ok(Sent {
            wamid: message.id,
            message_status: message.message_status,
        })
    }

    /// Marks an inbound message (and the ones before it) read, optionally showing a typing
    /// indicator. Repeating it is harmless, so a lost answer is [`SendError::Retry`].
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
        typing: bool,
    ) -> Result<(), SendError> {
        if let Some(problem) = phone_number_id_problem(phone_number_id) {
            return Err(SendError::Rejected {
                code: None,
                reason: problem,
                action: Action::None,
            });
        }
        let (status, headers, body) = self
            .post(
                phone_number_id,
                &mark_read_body(message_id, typing),
                Repeatable::Yes,
            )
            .await
            .map_err(|err| self.scrubbed(err, None))?;
        if !status.is_success() {
            if error_code(&body) == Some(130429) {
                self.limiter.slow_down(phone_number_id);
            }
            return Err(self.classify(status, &headers, &body, None));
        }
        match serde_json::from_str::<SuccessResponse>(&body) {
            Ok(SuccessResponse { success: true }) => Ok(()),
            Ok(SuccessResponse { success: false }) | Err(_) => Err(SendError::Retry {
                reason: format!("HTTP {status} without \"success\": true"),
                retry_after: None,
            }),
        }
    }

    /// Posts to `/{phone_number_id}/messages`; a transport failure is already classified.
    async fn post(
        &self,
        phone_number_id: &str,
        body: &Value,
        repeatable: Repeatable,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), SendError> {
        let response = self
            .http
            .post(format!("{}/{phone_number_id}/messages", self.base))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|err| transport_error(&err, repeatable))?;
        let status = response.status();
        let headers = response.headers().clone();
        match response.text().await {
            Ok(text) => Ok((status, headers, text)),
            // The answer started: for a success the message exists, otherwise Meta refused it
            // and the status alone classifies it.
            Err(err) if status.is_success() => Err(match repeatable {
                Repeatable::No => SendError::UnknownOutcome {
                    reason: format!(
                        "HTTP {status} but the body was lost: {}",
                        wabridge_connectors::transport_reason(&err)
                    ),
                },
                Repeatable::Yes => transport_error(&err, repeatable),
            }),
            Err(_) => Ok((status, headers, String::new())),
        }
    }

    /// Classifies a non-success answer through [`graph::classify_response`].
    fn classify(
        &self,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &str,
        recipient: Option<&Recipient>,
    ) -> SendError {
        let code = error_code(body);
        match graph::classify_response(status, graph::retry_after(headers), body) {
            GraphError::Retryable {
                reason,
                retry_after,
            } => {
                let regain = if code == Some(80007) {
                    regain_access(headers)
                } else {
                    None
                };
                SendError::Retry {
                    reason: self.scrub(reason, recipient),
                    retry_after: retry_after.max(regain),
                }
            }
            GraphError::Permanent { reason, code } => {
                let action = match code {
                    Some(code) => Action::for_code(code),
                    None if status == reqwest::StatusCode::UNAUTHORIZED => Action::TokenInvalid,
                    None => Action::None,
                };
                SendError::Rejected {
                    code,
                    reason: self.scrub(reason, recipient),
                    action,
                }
            }
        }
    }

    /// Meta refused the token or the number's account: nothing else can succeed until an admin
    /// acts, so every send (token) or the number's sends (account) pause for [`Sender::PAUSE`],
    /// and this one is retried after it (it was not sent).
    fn pause(&self, action: Action, request: &SendRequest, error: SendError) -> SendError {
        let (key, why) = match action {
            Action::TokenInvalid => (
                String::new(),
                "Meta refused the access token (invalid or expired): replace \
                 whatsapp.access_token and restart; sends resume then"
                    .to_owned(),
            ),
            _ => (
                request.phone_number_id.clone(),
                format!(
                    "Meta refused the account of number {} (locked, unpaid or blocked): see \
                     WhatsApp Manager; sends resume when it is fixed",
                    request.phone_number_id
                ),
            ),
        };
        tracing::error!(
            action = action.as_str(),
            pause_secs = Self::PAUSE.as_secs(),
            "ALERT: sending paused. {why}. ({error})"
        );
        if let Ok(mut paused) = self.paused.lock() {
            paused.insert(key, (std::time::Instant::now() + Self::PAUSE, why.clone()));
        }
        SendError::Retry {
            reason: format!("{error}; sending paused: {why}"),
            retry_after: Some(Self::PAUSE),
        }
    }

    /// How long sends from `phone_number_id` still wait, and why, if they are paused.
    fn pause_of(&self, phone_number_id: &str) -> Option<(Duration, String)> {
        let now = std::time::Instant::now();
        let paused = self.paused.lock().ok()?;
        ["", phone_number_id]
            .iter()
            .filter_map(|key| paused.get(*key))
            .filter(|(until, _)| *until > now)
            .map(|(until, why)| (*until - now, why.clone()))
            .max_by_key(|(wait, _)| *wait)
    }

    /// Feeds Meta's throughput and pair limits back into the limiter.
    fn throttle(&self, code: Option<i64>, request: &SendRequest, error: SendError) -> SendError {
        match (code, error) {
            (Some(130429), error) => {
                tracing::warn!(
                    phone_number_id = %request.phone_number_id,
                    "Meta's throughput limit hit (130429); halving this number's send rate for a while."
                );
                self.limiter.slow_down(&request.phone_number_id);
                error
            }
            (
                Some(131056),
                SendError::Retry {
                    reason,
                    retry_after,
                },
            ) => {
                let wait = retry_after.unwrap_or_else(|| self.limiter.config().pair_interval());
                tracing::debug!(
                    retry_in_ms = wait.as_millis() as u64,
                    "Pair rate limit hit (131056); delaying this recipient only."
                );
                self.limiter
                    .delay_recipient(&request.phone_number_id, request.to.as_str(), wait);
                SendError::Retry {
                    reason,
                    retry_after: Some(wait),
                }
            }
            (_, error) => error,
        }
    }

    fn scrubbed(&self, error: SendError, recipient: Option<&Recipient>) -> SendError {
        match error {
            SendError::Retry {
                reason,
                retry_after,
            } => SendError::Retry {
                reason: self.scrub(reason, recipient),
                retry_after,
            },
            SendError::Rejected {
                code,
                reason,
                action,
            } => SendError::Rejected {
                code,
                reason: self.scrub(reason, recipient),
                action,
            },
            SendError::UnknownOutcome { reason } => SendError::UnknownOutcome {
                reason: self.scrub(reason, recipient),
            },
        }
    }

    /// Removes the token and the recipient from text Meta or the network produced (Meta's
    /// messages sometimes echo parameter values).
    fn scrub(&self, mut reason: String, recipient: Option<&Recipient>) -> String {
        let token = self.token.expose();
        if !token.is_empty() {
            reason = reason.replace(token, "**redacted**");
        }
        if let Some(recipient) = recipient {
            let id = recipient.as_str().trim();
            if id.len() >= 4 {
                reason = reason.replace(id, "**recipient**");
            }
        }
        reason
    }
}

/// A transport failure: nothing sent (connect) → retry; sent but unanswered → unknown outcome
/// unless repeating is harmless.
fn transport_error(err: &reqwest::Error, repeatable: Repeatable) -> SendError {
    let reason = format!("Graph API: {}", wabridge_connectors::transport_reason(err));
    if err.is_builder() {
        return SendError::Rejected {
            code: None,
            reason,
            action: Action::None,
        };
    }
    if err.is_connect() {
        return SendError::Retry {
            reason,
            retry_after: None,
        };
    }
    match repeatable {
        Repeatable::Yes => SendError::Retry {
            reason,
            retry_after: None,
        },
        Repeatable::No => SendError::UnknownOutcome { reason },
    }
}

/// The phone number id goes into the URL path: digits only.
fn phone_number_id_problem(phone_number_id: &str) -> Option<String> {
    if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
        Some("the phone number id must be Meta's numeric id".to_owned())
    } else {
        None
    }
}

fn error_code(body: &str) -> Option<i64> {
    serde_json::from_str::<ErrorCodeBody>(body)
        .ok()
        .and_then(|b| b.error.code)
}

/// The largest `estimated_time_to_regain_access` (minutes) in `x-business-use-case-usage`:
/// `{"<business id>": [{"type": "whatsapp", …, "estimated_time_to_regain_access": 5}]}`.
fn regain_access(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let usage: Value =
        serde_json::from_str(headers.get("x-business-use-case-usage")?.to_str().ok()?).ok()?;
    usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_u64())
        .filter(|minutes| *minutes > 0)
        .max()
        .map(|minutes| Duration::from_secs(minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::ratelimit::RateLimitConfig;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "EAAG-test-token-1234567890";
    const NUMBER_ID: &str = "106540352242922";
    const PHONE: &str = "16505551234";
    const PATH: &str = "/v23.0/106540352242922/messages";
    const PLACEHOLDER: &str = "{{Recipient-Phone-Number}}";

    macro_rules! fixture {
        ($name:literal) => {
            serde_json::from_str::<Value>(include_str!(concat!(
                "../../tests/fixtures/whatsapp/meta-openapi/send/",
                $name,
                ".json"
            )))
            .expect("Meta's example is JSON")
        };
    }

    fn request(message: OutboundMessage) -> SendRequest {
        SendRequest {
            phone_number_id: NUMBER_ID.to_owned(),
            to: Recipient::Phone(PHONE.to_owned()),
            message,
            reply_to: None,
            callback_data: None,
        }
    }

    fn to_placeholder(message: OutboundMessage) -> SendRequest {
        SendRequest {
            to: Recipient::Phone(PLACEHOLDER.to_owned()),
            ..request(message)
        }
    }

    fn text(body: &str) -> OutboundMessage {
        OutboundMessage::Text {
            body: body.to_owned(),
            preview_url: false,
        }
    }

    fn media(kind: MediaKind, source: MediaSource) -> OutboundMessage {
        OutboundMessage::Media {
            kind,
            source,
            caption: None,
            filename: None,
        }
    }

    fn limiter(messages_per_second: u32) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(RateLimitConfig {
            messages_per_second,
            ..RateLimitConfig::default()
        }))
    }

    fn sender_for(base: String, limiter: Arc<RateLimiter>, timeout: Duration) -> Sender {
        Sender::from_parts(
            base,
            Secret::new(TOKEN),
            limiter,
            Duration::from_secs(2),
            timeout,
        )
        .expect("client builds")
    }

    fn sender(server: &MockServer) -> Sender {
        sender_for(
            format!("{}/v23.0", server.uri()),
            limiter(80),
            Duration::from_secs(5),
        )
    }

    fn accepted(wamid: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": PHONE, "wa_id": PHONE }],
            "messages": [{ "id": wamid, "message_status": "accepted" }]
        }))
    }

    fn meta_error(status: u16, code: i64, message: &str, details: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "error": {
                "message": format!("(#{code}) {message}"),
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": details },
                "fbtrace_id": "AbCdEf"
            }
        }))
    }

    async fn answered_with(response: ResponseTemplate) -> (SendError, Sender) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        let sender = sender(&server);
        let error = sender
            .send(&request(text("hi")))
            .await
            .expect_err("Meta refused");
        (error, sender)
    }

    // --- Request bodies against Meta's own examples -------------------------------------

    #[test]
    fn text_body_matches_meta_example() {
        let body = to_placeholder(text("text-message-content")).body();
        assert_eq!(body, fixture!("send-text-message"));
    }

    #[test]
    fn text_with_preview_url_matches_meta_example() {
        let req = to_placeholder(OutboundMessage::Text {
            body: "Please visit https://youtu.be/hpltvTEiRrY.".to_owned(),
            preview_url: true,
        });
        // Meta's example leaves out the two envelope fields every other example has.
        let mut expected = fixture!("send-text-message-with-preview-url");
        expected["recipient_type"] = json!("individual");
        expected["type"] = json!("text");
        assert_eq!(req.body(), expected);
    }

    #[test]
    fn template_bodies_match_meta_examples() {
        for expected in [
            fixture!("send-message-template-text"),
            fixture!("send-message-template-media"),
        ] {
            let components = expected["template"]["components"]
                .as_array()
                .expect("components")
                .clone();
            let req = to_placeholder(OutboundMessage::Template {
                name: "template-name".to_owned(),
                language: "language-and-locale-code".to_owned(),
                components,
            });
            assert_eq!(req.body(), expected);
        }
    }

    #[test]
    fn interactive_bodies_match_meta_examples() {
        let buttons = to_placeholder(OutboundMessage::Buttons {
            body: "<BUTTON_TEXT>".to_owned(),
            buttons: vec![
                (
                    "<UNIQUE_BUTTON_ID_1>".to_owned(),
                    "<BUTTON_TITLE_1>".to_owned(),
                ),
                (
                    "<UNIQUE_BUTTON_ID_2>".to_owned(),
                    "<BUTTON_TITLE_2>".to_owned(),
                ),
            ],
        });
        assert_eq!(buttons.body(), fixture!("send-reply-button"));
        let row = |s: u8, r: u8| {
            (
                format!("<LIST_SECTION_{s}_ROW_{r}_ID>"),
                format!("<SECTION_{s}_ROW_{r}_TITLE>"),
                Some(format!("<SECTION_{s}_ROW_{r}_DESC>")),
            )
        };
        let list = to_placeholder(OutboundMessage::List {
            body: "<BODY_TEXT>".to_owned(),
            button: "<BUTTON_TEXT>".to_owned(),
            sections: vec![
                (
                    "<LIST_SECTION_1_TITLE>".to_owned(),
                    vec![row(1, 1), row(1, 2)],
                ),
                (
                    "<LIST_SECTION_2_TITLE>".to_owned(),
                    vec![row(2, 1), row(2, 2)],
                ),
            ],
        });
        // Meta's example also has the optional header and footer, which wabridge does not use.
        let mut expected = fixture!("send-list-message");
        if let Some(node) = expected["interactive"].as_object_mut() {
            node.remove("header");
            node.remove("footer");
        }
        assert_eq!(list.body(), expected);
        let too_many = request(OutboundMessage::Buttons {
            body: "Pick".to_owned(),
            buttons: (0..4)
                .map(|i| (i.to_string(), "A very long button title".to_owned()))
                .collect(),
        });
        let problems = too_many.validate();
        assert!(
            problems.iter().any(|p| p.contains("4 buttons")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("over 20")),
            "{problems:?}"
        );
    }

    #[test]
    fn template_without_components_omits_them() {
        let req = request(OutboundMessage::Template {
            name: "hello_world".to_owned(),
            language: "en_US".to_owned(),
            components: Vec::new(),
        });
        assert_eq!(
            req.body()["template"],
            json!({ "name": "hello_world", "language": { "code": "en_US" } })
        );
    }

    #[test]
    fn media_bodies_by_link_and_id_match_meta_examples() {
        let link = |s: &str| MediaSource::Link(s.to_owned());
        let id = |s: &str| MediaSource::Id(s.to_owned());
        let cases = [
            (
                media(MediaKind::Image, id("<IMAGE_OBJECT_ID>")),
                fixture!("send-image-message-by-id"),
            ),
            (
                media(MediaKind::Image, link("http(s)://image-url")),
                fixture!("send-image-message-by-url"),
            ),
            (
                media(MediaKind::Audio, link("<http(s)://audio-url>")),
                fixture!("send-audio-message-by-url"),
            ),
            (
                media(MediaKind::Sticker, id("<MEDIA_OBJECT_ID>")),
                fixture!("send-sticker-message-by-id"),
            ),
            (
                OutboundMessage::Media {
                    kind: MediaKind::Video,
                    source: id("<VIDEO_OBJECT_ID>"),
                    caption: Some("<VIDEO_CAPTION_TEXT>".to_owned()),
                    filename: None,
                },
                fixture!("send-video-message-by-id"),
            ),
            (
                OutboundMessage::Media {
                    kind: MediaKind::Document,
                    source: link("<http(s)://document-url>"),
                    caption: Some("<DOCUMENT-CAPTION-TEXT>".to_owned()),
                    filename: None,
                },
                fixture!("send-document-message-by-url"),
            ),
            (
                OutboundMessage::Media {
                    kind: MediaKind::Document,
                    source: id("<DOCUMENT_OBJECT_ID>"),
                    caption: Some("<DOCUMENT_CAPTION_TO_SEND>".to_owned()),
                    filename: Some("<DOCUMENT_FILENAME>".to_owned()),
                },
                fixture!("send-document-message-by-id"),
            ),
        ];
        for (message, expected) in cases {
            let req = to_placeholder(message);
            assert!(req.validate().is_empty(), "{:?}", req.validate());
            assert_eq!(req.body(), expected);
        }
    }

    #[test]
    fn reply_context_matches_meta_examples() {
        let mut req = to_placeholder(text("<TEXT_MSG_CONTENT>"));
        req.reply_to = Some("<MSGID_OF_PREV_MSG>".to_owned());
        assert_eq!(req.body(), fixture!("send-reply-to-text-message"));

        let mut req = to_placeholder(media(
            MediaKind::Image,
            MediaSource::Id("<IMAGE_OBJECT_ID>".to_owned()),
        ));
        req.reply_to = Some("<MSGID_OF_PREV_MSG>".to_owned());
        assert_eq!(req.body(), fixture!("send-reply-to-image-message-by-id"));
    }

    #[test]
    fn reaction_matches_meta_example() {
        let req = to_placeholder(OutboundMessage::Reaction {
            message_id: "wamid.HBgLM...".to_owned(),
            emoji: "😀".to_owned(),
        });
        assert_eq!(req.body(), fixture!("send-reply-with-reaction-message"));
    }

    #[test]
    fn mark_read_shape() {
        let id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA=";
        assert_eq!(
            mark_read_body(id, true),
            fixture!("send-typing-indicator-and-read-receipt")
        );
        assert_eq!(
            mark_read_body(id, false),
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": id })
        );
    }

    #[test]
    fn callback_data_is_sent_and_limited_to_512_chars() {
        let mut req = request(text("hi"));
        req.callback_data = Some("é".repeat(512));
        assert!(req.validate().is_empty());
        assert_eq!(
            req.body()["biz_opaque_callback_data"],
            json!("é".repeat(512))
        );
        req.callback_data = Some("x".repeat(513));
        assert_eq!(req.validate().len(), 1);
    }

    #[test]
    fn validation_lists_every_problem() {
        let req = SendRequest {
            phone_number_id: "123/../456".to_owned(),
            to: Recipient::Phone(String::new()),
            message: OutboundMessage::Media {
                kind: MediaKind::Sticker,
                source: MediaSource::Id("1".to_owned()),
                caption: Some("no".to_owned()),
                filename: Some("no.webp".to_owned()),
            },
            reply_to: None,
            callback_data: None,
        };
        assert_eq!(req.validate().len(), 4, "{:?}", req.validate());
    }

    #[test]
    fn action_table_follows_the_reference() {
        let cases = [
            (131047, Action::WindowClosed),
            (131050, Action::MarketingOptOut),
            (131026, Action::Undeliverable),
            (131049, Action::PerUserMarketingLimit),
            (132015, Action::TemplatePaused),
            (132016, Action::TemplateDisabled),
            (132001, Action::TemplateMissing),
            (132000, Action::ParamMismatch),
            (132008, Action::ParamMismatch),
            (132012, Action::ParamMismatch),
            (190, Action::TokenInvalid),
            (131031, Action::AccountProblem),
            (131042, Action::AccountProblem),
            (133010, Action::AccountProblem),
            (368, Action::AccountProblem),
            (100, Action::None),
        ];
        for (code, action) in cases {
            assert_eq!(Action::for_code(code), action, "code {code}");
            // Every code with an action is one the shared table never retries.
            assert_eq!(
                graph::classify_code(code),
                Some(graph::Verdict::Permanent),
                "code {code}"
            );
        }
        assert!(Action::TokenInvalid.halts_sending());
        assert!(!Action::WindowClosed.halts_sending());
    }

    #[test]
    fn recipient_debug_hides_the_number() {
        let debug = format!("{:?}", request(text("hi")));
        assert!(!debug.contains(PHONE), "{debug}");
        assert!(debug.contains("Phone(…34)"), "{debug}");
    }

    // --- Against a local Graph API ------------------------------------------------------

    #[tokio::test]
    async fn sends_text_with_meta_shape_and_returns_wamid() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": PHONE,
                "type": "text",
                "context": { "message_id": "wamid.PREV" },
                "biz_opaque_callback_data": "job-42",
                "text": { "body": "Hello", "preview_url": false }
            })))
            .respond_with(accepted("wamid.NEW"))
            .expect(1)
            .mount(&server)
            .await;
        let mut req = request(text("Hello"));
        req.reply_to = Some("wamid.PREV".to_owned());
        req.callback_data = Some("job-42".to_owned());
        let sent = sender(&server).send(&req).await.expect("accepted");
        assert_eq!(
            sent,
            Sent {
                wamid: "wamid.NEW".to_owned(),
                message_status: Some("accepted".to_owned()),
            }
        );
    }

    #[tokio::test]
    async fn bsuid_recipient_uses_recipient_field() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "recipient": "US.13491208655302741918",
                "type": "reaction",
                "reaction": { "message_id": "wamid.X", "emoji": "👍" }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "messages": [{ "id": "wamid.R" }]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let mut req = request(OutboundMessage::Reaction {
            message_id: "wamid.X".to_owned(),
            emoji: "👍".to_owned(),
        });
        req.to = Recipient::Bsuid("US.13491208655302741918".to_owned());
        assert!(req.body().get("to").is_none());
        let sent = sender(&server).send(&req).await.expect("accepted");
        assert_eq!(sent.wamid, "wamid.R");
        assert_eq!(sent.message_status, None);
    }

    #[tokio::test]
    async fn retries_on_130429_sent_as_http_400() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(
                meta_error(
                    400,
                    130429,
                    "Rate limit hit",
                    "Cloud API message throughput has been reached.",
                )
                .insert_header("retry-after", "3"),
            )
            .expect(1)
            .mount(&server)
            .await;
        // 10 msg/s; after 130429 the number runs at 5 msg/s with no burst left.
        let sender = sender_for(
            format!("{}/v23.0", server.uri()),
            limiter(10),
            Duration::from_secs(5),
        );
        let error = sender
            .send(&request(text("hi")))
            .await
            .expect_err("limited");
        assert_eq!(error.kind(), "retry");
        assert!(matches!(
            error,
            SendError::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        let start = std::time::Instant::now();
        sender.limiter().acquire(NUMBER_ID, "a").await;
        sender.limiter().acquire(NUMBER_ID, "b").await;
        assert!(start.elapsed() >= Duration::from_millis(150), "not slowed");
    }

    /// Sends `n` texts to distinct recipients at once through `sender`; returns the answers.
    async fn blast(sender: Arc<Sender>, n: usize) -> Vec<Result<Sent, SendError>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let sender = Arc::clone(&sender);
                tokio::spawn(async move {
                    let request = SendRequest {
                        to: Recipient::Phone(format!("9689{i:07}")),
                        ..request(text("hi"))
                    };
                    sender.send(&request).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("send task"));
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit_holds_against_a_graph_api_enforcing_80_per_second() {
        let fake = crate::whatsapp::fake::FakeGraph::start(80)
            .await
            .expect("fake starts");
        // Control: a sender configured above Meta's limit is refused by the fake.
        let careless = Arc::new(sender_for(
            fake.base_url(),
            limiter(1000),
            Duration::from_secs(5),
        ));
        let answers = blast(careless, 200).await;
        let refused = answers
            .iter()
            .filter(|a| matches!(a, Err(SendError::Retry { .. })))
            .count();
        assert!(refused >= 100, "the fake let {} through", 200 - refused);
        tokio::time::sleep(Duration::from_millis(1100)).await;

        // At the configured 80 msg/s: every message accepted, none refused.
        let before = fake.counts();
        let paced = Arc::new(sender_for(
            fake.base_url(),
            limiter(80),
            Duration::from_secs(5),
        ));
        let start = std::time::Instant::now();
        let answers = blast(paced, 240).await;
        let elapsed = start.elapsed();
        let after = fake.counts();
        let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} failed, first: {:?}",
            failed.len(),
            failed.first()
        );
        assert_eq!(after.throttled, before.throttled, "130429 from the fake");
        assert_eq!(after.accepted - before.accepted, 240);
        // Three windows' worth: the first 80 at once, then 80 per window.
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    }

    #[tokio::test]
    async fn pair_limit_131056_delays_only_that_recipient() {
        let (error, sender) = answered_with(meta_error(
            400,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ))
        .await;
        assert!(matches!(
            error,
            SendError::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(6)
        ));
        let limiter = sender.limiter();
        tokio::time::timeout(
            Duration::from_millis(200),
            limiter.acquire(NUMBER_ID, "other"),
        )
        .await
        .expect("another recipient is not delayed");
        assert!(
            tokio::time::timeout(
                Duration::from_millis(200),
                limiter.acquire(NUMBER_ID, PHONE)
            )
            .await
            .is_err(),
            "the limited recipient waits"
        );
    }

    #[tokio::test]
    async fn business_use_case_limit_80007_waits_the_announced_minutes() {
        let (error, _) = answered_with(
            meta_error(400, 80007, "Rate limit issues", "")
                .insert_header("retry-after", "30")
                .insert_header(
                    "x-business-use-case-usage",
                    r#"{"102290129340398":[{"type":"whatsapp","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":5}]}"#,
                ),
        )
        .await;
        assert!(matches!(
            error,
            SendError::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(300)
        ));
    }

    #[tokio::test]
    async fn server_errors_retry_honouring_retry_after() {
        let (error, _) =
            answered_with(ResponseTemplate::new(503).insert_header("retry-after", "7")).await;
        assert_eq!(
            error,
            SendError::Retry {
                reason: "HTTP 503 Service Unavailable: ".to_owned(),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        for code in [131000, 131016, 131057, 1, 2, 4] {
            let (error, _) = answered_with(meta_error(400, code, "transient", "")).await;
            assert_eq!(error.kind(), "retry", "code {code}");
        }
    }

    #[tokio::test]
    async fn rejects_131047_as_window_closed() {
        let (error, _) = answered_with(meta_error(
            400,
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ))
        .await;
        assert!(matches!(
            error,
            SendError::Rejected {
                code: Some(131047),
                action: Action::WindowClosed,
                ..
            }
        ));
        assert_eq!(error.kind(), "window_closed");
    }

    #[tokio::test]
    async fn rejects_131026_as_undeliverable_and_template_errors_with_their_action() {
        for (code, kind) in [
            (131026, "undeliverable"),
            (131050, "marketing_opt_out"),
            (132001, "template_missing"),
            (132015, "template_paused"),
            (132012, "param_mismatch"),
            (100, "rejected"),
        ] {
            let (error, _) = answered_with(meta_error(400, code, "refused", "")).await;
            assert_eq!(error.kind(), kind, "code {code}");
        }
    }

    #[tokio::test]
    async fn expired_token_190_pauses_every_send_and_a_bare_401_too() {
        let (error, sender) = answered_with(meta_error(
            401,
            190,
            "Error validating access token: Session has expired",
            "",
        ))
        .await;
        // Not sent, so retried — after the pause, not at once.
        let SendError::Retry {
            reason,
            retry_after,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*retry_after, Some(Sender::PAUSE));
        assert!(
            reason.contains("190") && reason.contains("access token"),
            "{reason}"
        );
        // The next send does not even reach Meta (answered_with expects exactly one call).
        let next = sender
            .send(&request(text("second")))
            .await
            .expect_err("paused");
        assert!(
            matches!(&next, SendError::Retry { reason, retry_after: Some(wait) }
                if reason.starts_with("sending is paused") && *wait <= Sender::PAUSE),
            "{next:?}"
        );
        let (error, _) = answered_with(ResponseTemplate::new(401)).await;
        assert!(
            matches!(&error, SendError::Retry { retry_after: Some(wait), .. } if *wait == Sender::PAUSE),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_account_pauses_only_that_number() {
        let (error, sender) = answered_with(meta_error(
            400,
            131031,
            "Business Account locked",
            "The account has been locked.",
        ))
        .await;
        assert!(matches!(error, SendError::Retry { .. }), "{error:?}");
        assert!(sender.pause_of(NUMBER_ID).is_some());
        assert!(sender.pause_of("another-number").is_none());
    }

    #[tokio::test]
    async fn unknown_4xx_is_rejected_by_http_class() {
        let (error, _) = answered_with(ResponseTemplate::new(404).set_body_string("<html>")).await;
        assert!(matches!(
            error,
            SendError::Rejected {
                code: None,
                action: Action::None,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn accepted_without_a_message_id_is_unknown_outcome() {
        let (error, _) = answered_with(ResponseTemplate::new(200).set_body_string("{}")).await;
        assert_eq!(error.kind(), "unknown_outcome");
    }

    #[tokio::test]
    async fn timeout_after_send_is_unknown_outcome_not_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .respond_with(accepted("wamid.LATE").set_delay(Duration::from_secs(3)))
            .expect(1)
            .mount(&server)
            .await;
        let sender = sender_for(
            format!("{}/v23.0", server.uri()),
            limiter(80),
            Duration::from_millis(300),
        );
        let error = sender
            .send(&request(text("hi")))
            .await
            .expect_err("timed out");
        assert!(
            matches!(error, SendError::UnknownOutcome { .. }),
            "{error:?}"
        );
        assert_eq!(error.kind(), "unknown_outcome");
        // Meta did receive it.
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
    }

    #[tokio::test]
    async fn mark_read_shape_and_lost_answer_is_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(mark_read_body("wamid.IN", true)))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "success": true })))
            .expect(1)
            .mount(&server)
            .await;
        sender(&server)
            .mark_read(NUMBER_ID, "wamid.IN", true)
            .await
            .expect("marked read");

        let slow = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "success": true }))
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&slow)
            .await;
        let sender = sender_for(
            format!("{}/v23.0", slow.uri()),
            limiter(80),
            Duration::from_millis(300),
        );
        let error = sender
            .mark_read(NUMBER_ID, "wamid.IN", false)
            .await
            .expect_err("timed out");
        assert_eq!(error.kind(), "retry");
    }

    /// A loopback port with nothing listening.
    async fn closed_port() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        port
    }

    #[tokio::test]
    async fn connection_refused_is_retry() {
        let port = closed_port().await;
        let sender = sender_for(
            format!("http://127.0.0.1:{port}/v23.0"),
            limiter(80),
            Duration::from_secs(5),
        );
        let error = sender
            .send(&request(text("hi")))
            .await
            .expect_err("refused");
        assert!(matches!(error, SendError::Retry { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn invalid_request_is_rejected_before_anything_is_sent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("wamid.NO"))
            .expect(0)
            .mount(&server)
            .await;
        let mut req = request(text("hi"));
        req.callback_data = Some("x".repeat(600));
        let error = sender(&server).send(&req).await.expect_err("invalid");
        assert!(matches!(
            error,
            SendError::Rejected {
                code: None,
                action: Action::None,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn token_never_in_error_or_debug() {
        let server = MockServer::start().await;
        // A hostile or careless answer echoing the token and the recipient.
        Mock::given(method("POST"))
            .respond_with(meta_error(
                400,
                100,
                &format!("Invalid parameter: to={PHONE}"),
                &format!("token {TOKEN} cannot send to +{PHONE}"),
            ))
            .mount(&server)
            .await;
        let sender = sender(&server);
        let refused = sender
            .send(&request(text("hi")))
            .await
            .expect_err("refused");

        let port = closed_port().await;
        let offline = sender_for(
            format!("http://127.0.0.1:{port}/v23.0"),
            limiter(80),
            Duration::from_secs(5),
        );
        let unreachable = offline
            .send(&request(text("hi")))
            .await
            .expect_err("unreachable");

        for text in [
            format!("{sender:?}"),
            format!("{refused}"),
            format!("{refused:?}"),
            format!("{unreachable}"),
            format!("{unreachable:?}"),
        ] {
            assert!(!text.contains(TOKEN), "token leaked: {text}");
            assert!(!text.contains(PHONE), "recipient leaked: {text}");
        }
        for text in [format!("{refused}"), format!("{unreachable}")] {
            assert!(!text.contains("127.0.0.1"), "URL leaked: {text}");
        }
        assert!(format!("{refused}").contains("**redacted**"));
    }
}
