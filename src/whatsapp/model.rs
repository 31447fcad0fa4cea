//! The WhatsApp Cloud API webhook body as typed data, and the events the daemon acts on.
//!
//! [`parse`] turns the raw bytes of a webhook POST into an [`Envelope`]; [`Envelope::events`]
//! turns the envelope into owned [`Event`]s (customer messages with their conversation, statuses
//! of messages the business sent, and every other update).
//!
//! Guarantees:
//! - **Unknown is kept, never rejected.** Every struct keeps the fields it does not know in
//!   `extra`; every enum-like value (message type, status, template event...) is an open string;
//!   a change `field` we do not model is kept as raw JSON ([`ChangeValue::Other`]).
//! - **A known field with a wrong shape is an error.** A `messages` change whose `messages` is not
//!   an array, a message without `id`, a timestamp that is not a number: [`parse`] fails with the
//!   JSON path of the problem, and the daemon quarantines the body.
//! - **Lenient where Meta is inconsistent.** Timestamps are strings of unix seconds in messages and
//!   statuses but integers elsewhere: both are accepted everywhere. Template ids are `u64`
//!   (they exceed 2^32) and may arrive as strings. Order quantities and prices may be numbers or
//!   strings.
//! - **Every entry and every change is read**; nothing assumes index 0.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use wabridge_connectors::{Contact, Conversation};

/// Unknown fields of a JSON object, kept verbatim.
pub type Extra = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Why a webhook body could not be parsed. The body is then quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON at all (or is truncated).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The body is JSON, but a field we model has the wrong shape (missing, wrong type...).
    #[error("{path}: {message}")]
    Shape {
        /// Where, as a JSON path: `entry[0].changes[1].value.messages[0].timestamp`.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl ParseError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::Shape { .. } => "shape",
        }
    }
}

/// Parses a raw webhook body; an error means the body is malformed (it will be quarantined).
///
/// Decoding runs in two passes so that every error names its full JSON path: first the envelope
/// with raw change values, then each change value typed according to its `field`.
pub fn parse(raw: &[u8]) -> Result<Envelope, ParseError> {
    let mut json = serde_json::Deserializer::from_slice(raw);
    let skeleton: Envelope<RawChange> =
        serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_data() {
                ParseError::Shape {
                    path,
                    message: inner.to_string(),
                }
            } else {
                invalid_json(&inner)
            }
        })?;
    json.end().map_err(|err| invalid_json(&err))?;

    let mut entries = Vec::with_capacity(skeleton.entry.len());
    for (entry_index, entry) in skeleton.entry.into_iter().enumerate() {
        let mut changes = Vec::with_capacity(entry.changes.len());
        for (change_index, raw_change) in entry.changes.into_iter().enumerate() {
            let value =
                ChangeValue::decode(&raw_change.field, raw_change.value).map_err(|err| {
                    ParseError::Shape {
                        path: join_path(
                            &format!("entry[{entry_index}].changes[{change_index}].value"),
                            &err.path().to_string(),
                        ),
                        message: err.into_inner().to_string(),
                    }
                })?;
            changes.push(Change {
                field: raw_change.field,
                value,
                extra: raw_change.extra,
            });
        }
        entries.push(Entry {
            id: entry.id,
            time: entry.time,
            changes,
            extra: entry.extra,
        });
    }
    Ok(Envelope {
        object: skeleton.object,
        entry: entries,
        extra: skeleton.extra,
    })
}

/// A syntax error, its message without the position serde_json appends (we report it apart).
fn invalid_json(err: &serde_json::Error) -> ParseError {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    ParseError::InvalidJson {
        line: err.line(),
        column: err.column(),
        message: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
    }
}

/// Joins an outer path and the path `serde_path_to_error` reports inside it (`.` when empty).
fn join_path(outer: &str, inner: &str) -> String {
    if inner.is_empty() || inner == "." {
        outer.to_owned()
    } else if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/// A webhook body: `{ "object": "whatsapp_business_account", "entry": [...] }`.
///
/// The type parameter only exists so that [`parse`] can decode change values in a second pass
/// with exact error paths; everywhere else use `Envelope` (that is, `Envelope<Change>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<C = Change> {
    /// `whatsapp_business_account` for WhatsApp; anything else is kept as is.
    #[serde(default)]
    pub object: String,
    /// One entry per WhatsApp Business Account (Meta may batch several).
    pub entry: Vec<Entry<C>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One WhatsApp Business Account's changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<C = Change> {
    /// The WhatsApp Business Account id.
    pub id: String,
    /// Unix seconds; Meta sends it on non-message fields only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_int_number"
    )]
    pub time: Option<i64>,
    /// The changes, in Meta's order.
    #[serde(default = "Vec::new")]
    pub changes: Vec<C>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One change: the subscribed `field` and its value, typed according to the field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The webhook field (`messages`, `message_template_status_update`, ...; unknown verbatim).
    pub field: String,
    /// The value, typed when the field is known, raw JSON otherwise.
    pub value: ChangeValue,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl<'de> Deserialize<'de> for Change {
    /// Decodes the value according to `field` (Meta sends `value` before `field`, so the value
    /// is buffered first). [`parse`] gives better error paths than this impl.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawChange::deserialize(deserializer)?;
        let value = ChangeValue::decode(&raw.field, raw.value).map_err(|err| {
            de::Error::custom(format!(
                "{}: {}",
                join_path("value", &err.path().to_string()),
                err.inner()
            ))
        })?;
        Ok(Change {
            field: raw.field,
            value,
            extra: raw.extra,
        })
    }
}

/// A change whose value is not decoded yet (first pass of [`parse`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct RawChange {
    field: String,
    #[serde(default)]
    value: Value,
    #[serde(flatten)]
    extra: Extra,
}

/// A change value, typed according to the change's `field`.
///
/// Serialises as the inner value. It has no standalone `Deserialize`: which variant applies
/// depends on the field name, so [`Change`] decodes it (see [`ChangeValue::decode`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChangeValue {
    /// `messages`: customer messages, statuses of sent messages, errors.
    Messages(MessagesValue),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// `message_template_components_update`.
    TemplateComponents(TemplateComponentsUpdate),
    /// `user_preferences` (marketing opt-out / resume / signup).
    UserPreferences(UserPreferencesValue),
    /// `account_update`.
    AccountUpdate(AccountUpdate),
    /// Any other field, kept raw.
    Other(Value),
}

impl ChangeValue {
    /// Decodes a change value according to its field name. Unknown fields become
    /// [`ChangeValue::Other`]; a known field whose value has the wrong shape is an error with the
    /// path inside the value.
    pub fn decode(
        field: &str,
        value: Value,
    ) -> Result<ChangeValue, serde_path_to_error::Error<serde_json::Error>> {
        fn typed<T: de::DeserializeOwned>(
            value: Value,
        ) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
            serde_path_to_error::deserialize(value)
        }
        Ok(match field {
            "messages" => ChangeValue::Messages(typed(value)?),
            "message_template_status_update" => ChangeValue::TemplateStatus(typed(value)?),
            "message_template_quality_update" => ChangeValue::TemplateQuality(typed(value)?),
            "template_category_update" => ChangeValue::TemplateCategory(typed(value)?),
            "message_template_components_update" => ChangeValue::TemplateComponents(typed(value)?),
            "user_preferences" => ChangeValue::UserPreferences(typed(value)?),
            "account_update" => ChangeValue::AccountUpdate(typed(value)?),
            _ => ChangeValue::Other(value),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The `messages` field
// ---------------------------------------------------------------------------------------------

/// The value of a `messages` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesValue {
    /// Always `whatsapp` so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// The business number that received the messages or sent the messages the statuses are about.
    pub metadata: Metadata,
    /// Profiles of the customers the messages come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ValueContact>,
    /// Customer messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// Statuses of messages the business sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<Status>,
    /// Out-of-band errors (e.g. `130429` rate limit hit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ApiError>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The business phone number of a `messages` (or `user_preferences`) change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The number as displayed, digits only, no `+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// Meta's id of the business phone number.
    pub phone_number_id: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A customer profile in `value.contacts[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueContact {
    /// The WhatsApp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The phone number (digits); absent when Meta withholds it (BSUID only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The parent BSUID (shared across a business portfolio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A WhatsApp profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The name the customer chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The customer's WhatsApp username, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A message a customer sent.
///
/// The typed nodes are boxed so that a `Message` (and an [`Event`]) stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Meta's message id (`wamid.…`).
    pub id: String,
    /// The sender's phone number (digits); absent when only the BSUID is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The sender's BSUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<String>,
    /// Unix seconds (a string on the wire; a number is accepted too).
    #[serde(with = "secs_string")]
    pub timestamp: i64,
    /// The message type: `text`, `image`, ..., `unsupported`; unknown types verbatim.
    #[serde(rename = "type")]
    pub kind: String,
    /// Set on replies and forwarded messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Box<Context>>,
    /// Set when the customer came from a click-to-WhatsApp ad or post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Box<Referral>>,
    /// Problems with this message (unsupported type, media download failed...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ApiError>,
    /// `type: text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Box<Text>>,
    /// `type: image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Box<Media>>,
    /// `type: video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Box<Media>>,
    /// `type: audio` (a voice note has `voice: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Box<Media>>,
    /// `type: voice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Box<Media>>,
    /// `type: sticker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Box<Media>>,
    /// `type: document`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Box<Media>>,
    /// `type: location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Box<Location>>,
    /// `type: contacts`: shared contact cards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactCard>,
    /// `type: interactive`: a reply to a button, list or flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Box<Interactive>>,
    /// `type: button`: a template quick-reply tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Box<Button>>,
    /// `type: reaction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<Box<Reaction>>,
    /// `type: order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<Order>>,
    /// `type: system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Box<System>>,
    /// Security-code change details (next to `system` on `customer_identity_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Box<Identity>>,
    /// Unknown fields (including the nodes of unknown types, e.g. `revoke`, `edit`).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// The key to deduplicate redelivered messages: `m:{id}`.
    pub fn dedupe_key(&self) -> String {
        format!("m:{}", self.id)
    }

    /// The message time, when the timestamp is in chrono's range.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.timestamp, 0)
    }

    /// The media node (image, video, audio, voice, sticker, document) with its kind: the node
    /// named by `type` first, else the first present.
    pub fn media(&self) -> Option<MediaRef> {
        let (kind, media) = self.media_node()?;
        Some(MediaRef::new(kind, media))
    }

    /// The media node and its kind, without building a [`MediaRef`].
    pub fn media_node(&self) -> Option<(&'static str, &Media)> {
        let nodes: [(&'static str, Option<&Media>); 6] = [
            ("image", self.image.as_deref()),
            ("video", self.video.as_deref()),
            ("audio", self.audio.as_deref()),
            ("voice", self.voice.as_deref()),
            ("sticker", self.sticker.as_deref()),
            ("document", self.document.as_deref()),
        ];
        let named = nodes
            .iter()
            .find(|(kind, node)| *kind == self.kind && node.is_some());
        named
            .or_else(|| nodes.iter().find(|(_, node)| node.is_some()))
            .and_then(|(kind, node)| node.map(|node| (*kind, node)))
    }
}

/// Reply and forwarding context of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The sender of the message replied to (the business number for replies to us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The id of the message replied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The message was forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<bool>,
    /// The message was forwarded many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequently_forwarded: Option<bool>,
    /// The product the customer asks about (product inquiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<ReferredProduct>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A catalog product a message refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferredProduct {
    /// The catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// The product's retailer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_retailer_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A click-to-WhatsApp ad or post the customer came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// The ad or post URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The ad or post id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// `ad` or `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// The ad's body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The ad's headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// `image` or `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The ad's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The ad's video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    /// The ad's thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Click id for conversion tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
    /// Unknown fields (e.g. `welcome_message`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An error object, as in `messages[].errors`, `statuses[].errors` and `value.errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The WhatsApp error code, e.g. `131051`.
    #[serde(with = "int_number")]
    pub code: i64,
    /// Short title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Message (often the same as the title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    /// Link to the documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ApiError {
    /// `title` (else `message`) and the details, for people: `Message type unknown: details`.
    pub fn describe(&self) -> String {
        let title = self
            .title
            .as_deref()
            .or(self.message.as_deref())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let details = self
            .error_data
            .as_ref()
            .and_then(|data| data.details.as_deref())
            .map(str::trim)
            .filter(|d| !d.is_empty());
        match (title, details) {
            (Some(title), Some(details)) if title != details => format!("{title}: {details}"),
            (Some(title), _) => title.to_owned(),
            (None, Some(details)) => details.to_owned(),
            (None, None) => "no details".to_owned(),
        }
    }
}

/// `error_data` of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// The details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `text` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The text the customer wrote.
    pub body: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A media node (`image`, `video`, `audio`, `voice`, `sticker`, `document`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// The media id to resolve with `GET /{media-id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// MIME type, e.g. `image/jpeg`, `audio/ogg; codecs=opus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// SHA-256 of the file, **base64** (not hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Caption the customer wrote (image, video, document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Original file name (document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A voice note (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// An animated sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    /// A download URL, when Meta includes one (needs the access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A media file referenced by a message, ready to be resolved and downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// `image`, `video`, `audio`, `voice`, `sticker` or `document`.
    pub kind: String,
    /// The media id to resolve with `GET /{media-id}`.
    pub id: Option<String>,
    /// A direct URL, when the webhook carried one.
    pub url: Option<String>,
    /// MIME type as Meta reported it.
    pub mime_type: Option<String>,
    /// Base64 SHA-256 to verify the downloaded bytes.
    pub sha256: Option<String>,
    /// Suggested file name: the document's own name, else `<kind>-<id>.<ext from mime>`.
    pub filename: String,
}

impl MediaRef {
    /// Builds the reference for a media node of `kind`.
    pub fn new(kind: &str, media: &Media) -> MediaRef {
        let own_name = media
            .filename
            .as_deref()
            .map(sanitize_filename)
            .filter(|name| !name.is_empty());
        let filename = own_name.unwrap_or_else(|| {
            let id: String = media
                .id
                .as_deref()
                .unwrap_or("media")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(64)
                .collect();
            let id = if id.is_empty() {
                "media".to_owned()
            } else {
                id
            };
            let ext = extension_for(media.mime_type.as_deref().unwrap_or(""));
            format!("{kind}-{id}.{ext}")
        });
        MediaRef {
            kind: kind.to_owned(),
            id: media.id.clone(),
            url: media.url.clone(),
            mime_type: media.mime_type.clone(),
            sha256: media.sha256.clone(),
            filename,
        }
    }
}

/// The last path component of a customer-supplied file name, without control characters.
fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned == "." || cleaned == ".." {
        String::new()
    } else {
        cleaned.to_owned()
    }
}

/// A file extension for a MIME type (`bin` when unknown).
pub fn extension_for(mime_type: &str) -> &'static str {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/jpeg" | "image/jpg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/heic" => "heic",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "video/quicktime" => "mov",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/wav" | "audio/x-wav" => "wav",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "application/zip" => "zip",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    }
}

/// `location` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude in degrees.
    #[serde(with = "flex_f64")]
    pub latitude: f64,
    /// Longitude in degrees.
    #[serde(with = "flex_f64")]
    pub longitude: f64,
    /// Name of the place, for a chosen place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address of the place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Website or map URL of the place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A shared contact card (`contacts[]` inside a message). Loose: every part is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// The name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<CardName>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<CardPhone>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<CardEmail>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<CardOrg>,
    /// Web sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<CardUrl>,
    /// Postal addresses, kept raw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Value>,
    /// Birthday, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ContactCard {
    /// The name to show: `formatted_name`, else the parts joined, else `None`.
    pub fn display_name(&self) -> Option<String> {
        let name = self.name.as_ref()?;
        if let Some(formatted) = name.formatted_name.as_deref().map(str::trim) {
            if !formatted.is_empty() {
                return Some(formatted.to_owned());
            }
        }
        let parts: Vec<&str> = [&name.prefix, &name.first_name, &name.middle_name]
            .into_iter()
            .chain([&name.last_name, &name.suffix])
            .filter_map(|part| part.as_deref().map(str::trim))
            .filter(|part| !part.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// `name` of a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardName {
    /// The full name as shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted_name: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Name suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Name prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A phone of a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPhone {
    /// The number as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The WhatsApp id of the number, when it has WhatsApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// `CELL`, `MAIN`, `IPHONE`, `HOME`, `WORK`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An e-mail address of a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEmail {
    /// The address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `HOME`, `WORK`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The organisation of a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardOrg {
    /// Company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A web site of a contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardUrl {
    /// The URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `HOME`, `WORK`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `interactive` node: the customer's answer to an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    /// `button_reply`, `list_reply`, `nfm_reply`; unknown verbatim (its node is in `extra`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The reply button tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<ButtonReply>,
    /// The list row chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<ListReply>,
    /// A completed Flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfm_reply: Option<NfmReply>,
    /// Unknown fields (e.g. `call_permission_reply`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `button_reply` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReply {
    /// The button id the business chose.
    pub id: String,
    /// The button title the customer saw.
    pub title: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `list_reply` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    /// The row id the business chose.
    pub id: String,
    /// The row title the customer saw.
    pub title: String,
    /// The row description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `nfm_reply` node (a completed WhatsApp Flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NfmReply {
    /// `flow` so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Sent` so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The answers, as a JSON **string**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_json: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `button` node: a template quick-reply tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The payload the business set on the button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The button text the customer saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `reaction` node. An empty or missing emoji removes the reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The message reacted to.
    pub message_id: String,
    /// The emoji; empty or absent when the customer removed the reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Reaction {
    /// The emoji, unless this removes a reaction.
    pub fn emoji(&self) -> Option<&str> {
        self.emoji
            .as_deref()
            .map(str::trim)
            .filter(|emoji| !emoji.is_empty())
    }
}

/// `order` node: a cart sent from a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// Text the customer wrote with the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_items: Vec<ProductItem>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One item of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductItem {
    /// The product's retailer id.
    pub product_retailer_id: String,
    /// How many.
    pub quantity: NumberOrString,
    /// Unit price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_price: Option<NumberOrString>,
    /// ISO 4217 currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `system` node: a number or identity change of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    /// Text Meta wrote, e.g. `User A changed from 1 to 2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `user_changed_number`, `customer_identity_changed`, ...; unknown verbatim.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The new number (current payloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The new number (older payloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_wa_id: Option<String>,
    /// Identity change details, when inside the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A customer's security-code (identity) change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Whether the change was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<bool>,
    /// Unix seconds (string or number).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_secs_string"
    )]
    pub created_timestamp: Option<i64>,
    /// Identifier of the new identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The status of a message the business sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The id of the message the business sent (`wamid.…`).
    pub id: String,
    /// `sent`, `delivered`, `read`, `played`, `failed`; unknown verbatim.
    pub status: String,
    /// Unix seconds (a string on the wire; a number is accepted too).
    #[serde(with = "secs_string")]
    pub timestamp: i64,
    /// The customer's phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The customer's BSUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<String>,
    /// Conversation-based pricing details (legacy; often absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<StatusConversation>,
    /// Pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ApiError>,
    /// The opaque data the business attached when sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// Unknown fields (e.g. `recipient_type: group`).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Status {
    /// The key to deduplicate redelivered statuses: `s:{id}:{status}`.
    pub fn dedupe_key(&self) -> String {
        format!("s:{}:{}", self.id, self.status)
    }

    /// The status time, when the timestamp is in chrono's range.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.timestamp, 0)
    }
}

/// `conversation` of a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusConversation {
    /// The conversation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the conversation window ends, unix seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_secs_string"
    )]
    pub expiration_timestamp: Option<i64>,
    /// How the conversation started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `origin` of a status conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `service`, `marketing`, `utility`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `pricing` of a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    /// Whether the message is billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    /// `CBP` or `PMP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// Other fields
// ---------------------------------------------------------------------------------------------

/// Value of `message_template_status_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, ...; unknown verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The template id (exceeds 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64")]
    pub message_template_id: Option<u64>,
    /// The template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    /// The template language, e.g. `en_US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    /// `NONE` normally, a rejection reason, or null (on `DELETED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_category: Option<String>,
    /// Set on `DISABLED`, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_info: Option<Value>,
    /// Set on `PAUSED` and others, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_info: Option<Value>,
    /// Set on `REJECTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_info: Option<RejectionInfo>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionInfo {
    /// The reason, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Value of `message_template_quality_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateQualityUpdate {
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_quality_score: Option<String>,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_quality_score: Option<String>,
    /// The template id (exceeds 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64")]
    pub message_template_id: Option<u64>,
    /// The template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    /// The template language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Value of `template_category_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCategoryUpdate {
    /// The template id (exceeds 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64")]
    pub message_template_id: Option<u64>,
    /// The template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    /// The template language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    /// The category before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_category: Option<String>,
    /// The category now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_category: Option<String>,
    /// The category Meta will apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_category: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Value of `message_template_components_update` (loose: the components are in `extra`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateComponentsUpdate {
    /// The template id (exceeds 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64")]
    pub message_template_id: Option<u64>,
    /// The template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_name: Option<String>,
    /// The template language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_language: Option<String>,
    /// Unknown fields (`message_template_element`, `_title`, `_footer`, `_buttons`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Value of `user_preferences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPreferencesValue {
    /// Always `whatsapp` so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// The business number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Profiles of the customers concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ValueContact>,
    /// The preference changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_preferences: Vec<UserPreference>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One preference change of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPreference {
    /// The customer's phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The customer's BSUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Meta's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `marketing_messages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `stop`, `resume`, `signup`; unknown verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Unix seconds (an integer on the wire; a string is accepted too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_int_number"
    )]
    pub timestamp: Option<i64>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Value of `account_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// `VERIFIED_ACCOUNT`, `ACCOUNT_RESTRICTION`, `ACCOUNT_DELETED`, ...; unknown verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The phone number concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Restrictions, on `ACCOUNT_RESTRICTION`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restriction_info: Vec<RestrictionInfo>,
    /// Unknown fields (`ban_info`, `waba_info`, `violation_info`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One restriction of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestrictionInfo {
    /// e.g. `RESTRICTED_BIZ_INITIATED_MESSAGING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction_type: Option<String>,
    /// Unix seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_int_number"
    )]
    pub expiration: Option<i64>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What the daemon acts on, one per message, status or other update.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A customer message, with the conversation it belongs to.
    Message {
        /// The business number and the customer.
        conversation: Conversation,
        /// The message.
        message: Message,
    },
    /// A delivery/read/failed status of a message the business sent.
    Status {
        /// The business number that sent the message.
        phone_number_id: String,
        /// The status.
        status: Status,
    },
    /// Anything else (template status/quality/category updates, user_preferences, account
    /// updates, errors, unknown fields): field name and typed-or-raw value.
    Update {
        /// The webhook field.
        field: String,
        /// The value. For a `messages` change it is the value without its messages and
        /// statuses (those became their own events): metadata, contacts, errors, unknown keys.
        value: ChangeValue,
    },
}

impl Envelope {
    /// Every event of every entry and change, in order.
    ///
    /// A `messages` change gives one [`Event::Message`] per message and one [`Event::Status`]
    /// per status, plus an [`Event::Update`] when it carries `errors`, unknown keys, or neither
    /// messages nor statuses (so nothing is silently dropped). Every other change gives one
    /// [`Event::Update`].
    pub fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for entry in &self.entry {
            for change in &entry.changes {
                match &change.value {
                    ChangeValue::Messages(value) => {
                        for message in &value.messages {
                            events.push(Event::Message {
                                conversation: value.conversation_for(message),
                                message: message.clone(),
                            });
                        }
                        for status in &value.statuses {
                            events.push(Event::Status {
                                phone_number_id: value.metadata.phone_number_id.clone(),
                                status: status.clone(),
                            });
                        }
                        let nothing_else = value.messages.is_empty() && value.statuses.is_empty();
                        if !value.errors.is_empty() || !value.extra.is_empty() || nothing_else {
                            let rest = MessagesValue {
                                messages: Vec::new(),
                                statuses: Vec::new(),
                                ..value.clone()
                            };
                            events.push(Event::Update {
                                field: change.field.clone(),
                                value: ChangeValue::Messages(rest),
                            });
                        }
                    }
                    other => events.push(Event::Update {
                        field: change.field.clone(),
                        value: other.clone(),
                    }),
                }
            }
        }
        events
    }
}

impl MessagesValue {
    /// The conversation a message belongs to: this business number and the sender.
    ///
    /// The sender's profile is the `contacts[]` entry whose `wa_id` equals the message's `from`
    /// or whose `user_id` equals its `from_user_id`; else the only entry, if there is exactly one
    /// and it does not name a different number or BSUID; else none (system messages carry no
    /// contacts). The message's own `from`/`from_user_id` win over the profile's ids.
    pub fn conversation_for(&self, message: &Message) -> Conversation {
        let from = non_empty(message.from.as_deref());
        let from_user_id = non_empty(message.from_user_id.as_deref());
        let matches = |contact: &&ValueContact| {
            (from.is_some() && non_empty(contact.wa_id.as_deref()) == from)
                || (from_user_id.is_some() && non_empty(contact.user_id.as_deref()) == from_user_id)
        };
        let contradicts = |contact: &ValueContact| {
            let wa_id = non_empty(contact.wa_id.as_deref());
            let user_id = non_empty(contact.user_id.as_deref());
            (from.is_some() && wa_id.is_some() && wa_id != from)
                || (from_user_id.is_some() && user_id.is_some() && user_id != from_user_id)
        };
        let profile = self
            .contacts
            .iter()
            .find(matches)
            .or(match self.contacts.as_slice() {
                [only] if !contradicts(only) => Some(only),
                _ => None,
            });
        let contact = Contact {
            wa_id: from
                .or_else(|| profile.and_then(|p| non_empty(p.wa_id.as_deref())))
                .map(str::to_owned),
            user_id: from_user_id
                .or_else(|| profile.and_then(|p| non_empty(p.user_id.as_deref())))
                .map(str::to_owned),
            profile_name: profile
                .and_then(|p| p.profile.as_ref())
                .and_then(|p| non_empty(p.name.as_deref()))
                .map(str::to_owned),
        };
        Conversation {
            phone_number_id: self.metadata.phone_number_id.clone(),
            display_phone_number: self.metadata.display_phone_number.clone(),
            contact,
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Lenient numbers
// ---------------------------------------------------------------------------------------------

/// A number that may arrive as a JSON number or as a string (`2`, `"2"`, `30.5`, `"30.50"`).
/// It serialises back the way it came.
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOrString {
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string.
    Text(String),
}

impl NumberOrString {
    /// The value as `f64`, when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            NumberOrString::Number(number) => number.as_f64(),
            NumberOrString::Text(text) => text.trim().parse::<f64>().ok(),
        }
        .filter(|v| v.is_finite())
    }

    /// The value as a whole `i64`, when it is one.
    pub fn as_i64(&self) -> Result<i64, String> {
        match self {
            NumberOrString::Number(number) => number
                .as_i64()
                .or_else(|| {
                    number
                        .as_f64()
                        .filter(|v| v.fract() == 0.0 && v.abs() < 9.0e15)
                        .map(|v| v as i64)
                })
                .ok_or_else(|| format!("{number} is not a whole number in range")),
            NumberOrString::Text(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|err| format!("{text:?}: {err}")),
        }
    }

    /// The value as `u64`, when it is one.
    pub fn as_u64(&self) -> Result<u64, String> {
        match self {
            NumberOrString::Number(number) => number
                .as_u64()
                .ok_or_else(|| format!("{number} is not a non-negative whole number in range")),
            NumberOrString::Text(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|err| format!("{text:?}: {err}")),
        }
    }
}

impl fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberOrString::Number(number) => write!(f, "{number}"),
            NumberOrString::Text(text) => f.write_str(text.trim()),
        }
    }
}

impl Serialize for NumberOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NumberOrString::Number(number) => number.serialize(serializer),
            NumberOrString::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberOrStringVisitor;

        impl Visitor<'_> for NumberOrStringVisitor {
            type Value = NumberOrString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string holding a number")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(NumberOrString::Number(v.into()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(NumberOrString::Number(v.into()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                serde_json::Number::from_f64(v)
                    .map(NumberOrString::Number)
                    .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(NumberOrString::Text(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(NumberOrString::Text(v))
            }
        }

        deserializer.deserialize_any(NumberOrStringVisitor)
    }
}

fn flex_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    NumberOrString::deserialize(deserializer)?
        .as_i64()
        .map_err(|err| de::Error::custom(format!("invalid number: {err}")))
}

fn opt_flex_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<NumberOrString>::deserialize(deserializer)?
        .map(|value| value.as_i64())
        .transpose()
        .map_err(|err| de::Error::custom(format!("invalid number: {err}")))
}

/// Unix seconds: read from a string or a number, written as a string (messages, statuses).
mod secs_string {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        super::flex_i64(deserializer)
    }
}

/// Optional unix seconds: read from a string or a number, written as a string.
mod opt_secs_string {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        super::opt_flex_i64(deserializer)
    }
}

/// An integer (unix seconds, error code): read from a number or a string, written as a number.
mod int_number {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(*value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        super::flex_i64(deserializer)
    }
}

/// Optional integer: read from a number or a string, written as a number.
mod opt_int_number {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_i64(*value),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        super::opt_flex_i64(deserializer)
    }
}

/// Optional `u64` id: read from a number or a string, written as a number.
mod opt_u64 {
    use serde::de::{self, Deserialize, Deserializer};
    use serde::Serializer;

    use super::NumberOrString;

    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_u64(*value),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        Option::<NumberOrString>::deserialize(deserializer)?
            .map(|value| value.as_u64())
            .transpose()
            .map_err(|err| de::Error::custom(format!("invalid id: {err}")))
    }
}

/// `f64` (coordinates): read from a number or a string, written as a number.
mod flex_f64 {
    use serde::de::{self, Deserialize, Deserializer};
    use serde::Serializer;

    use super::NumberOrString;

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(*value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        let value = NumberOrString::deserialize(deserializer)?;
        value
            .as_f64()
            .ok_or_else(|| de::Error::custom(format!("invalid number: {value}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::path::{Path, PathBuf};

    pub(crate) const FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whatsapp");

    /// Parses a fixture file (path relative to `tests/fixtures/whatsapp`).
    pub(crate) fn fixture(name: &str) -> Envelope {
        let path = Path::new(FIXTURES).join(name);
        let raw = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        parse(&raw).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    fn parse_json(body: &Value) -> Result<Envelope, ParseError> {
        parse(body.to_string().as_bytes())
    }

    /// The events of a fixture that are customer messages.
    fn messages(envelope: &Envelope) -> Vec<(Conversation, Message)> {
        envelope
            .events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Message {
                    conversation,
                    message,
                } => Some((conversation, message)),
                _ => None,
            })
            .collect()
    }

    fn only_message(name: &str) -> (Conversation, Message) {
        let mut found = messages(&fixture(name));
        assert_eq!(found.len(), 1, "{name}: expected exactly one message");
        found.remove(0)
    }

    /// A `messages` webhook around the given messages (and optional contacts).
    fn messages_body(contacts: Value, messages: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID"},
                "contacts": contacts,
                "messages": messages
            }, "field": "messages"}]}]
        })
    }

    fn webhook_files() -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in ["meta-openapi/webhooks", "pywa"] {
            let dir = Path::new(FIXTURES).join(dir);
            let listing =
                std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
            for entry in listing {
                let path = entry.expect("directory entry").path();
                if path.extension().and_then(|ext| ext.to_str()) == Some("json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_fixture_parses() {
        let files = webhook_files();
        assert!(
            files.len() > 80,
            "expected the fixture set, found {}",
            files.len()
        );
        let mut failures = Vec::new();
        for path in &files {
            let raw = std::fs::read(path).expect("readable fixture");
            match parse(&raw) {
                Ok(envelope) if envelope.events().is_empty() => {
                    failures.push(format!("{}: no event", path.display()))
                }
                Ok(_) => {}
                Err(err) => failures.push(format!("{}: {err}", path.display())),
            }
        }
        assert!(
            failures.is_empty(),
            "failing fixtures:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn every_fixture_round_trips_through_serialize() {
        let mut failures = Vec::new();
        for path in webhook_files() {
            let raw = std::fs::read(&path).expect("readable fixture");
            let Ok(envelope) = parse(&raw) else { continue };
            let written = serde_json::to_vec(&envelope).expect("serialisable");
            match parse(&written) {
                Ok(again) if again == envelope => {}
                Ok(_) => failures.push(format!("{}: differs after round trip", path.display())),
                Err(err) => failures.push(format!("{}: {err}", path.display())),
            }
            // The derived Deserialize (not only `parse`) reads it too.
            if let Err(err) = serde_json::from_slice::<Envelope>(&raw) {
                failures.push(format!("{}: Deserialize: {err}", path.display()));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn text_message_gives_conversation_and_message() {
        let (conversation, message) = only_message("meta-openapi/webhooks/text-message.json");
        assert_eq!(conversation.phone_number_id, "106540352242922");
        assert_eq!(
            conversation.display_phone_number.as_deref(),
            Some("15550783881")
        );
        assert_eq!(conversation.contact.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(
            conversation.contact.profile_name.as_deref(),
            Some("Sheena Nelson")
        );
        assert_eq!(conversation.key(), "106540352242922:16505551234");
        assert_eq!(message.kind, "text");
        assert_eq!(message.timestamp, 1_749_416_383);
        assert_eq!(
            message.text.as_ref().map(|t| t.body.as_str()),
            Some("Does it come in another color?")
        );
        assert_eq!(
            message.dedupe_key(),
            "m:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
        );
        assert_eq!(
            message.time().map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-06-08T20:59:43+00:00")
        );
    }

    #[test]
    fn records_both_wa_id_and_bsuid_when_present() {
        let (conversation, message) =
            only_message("pywa/callback_button__quick_reply_without_context.json");
        assert_eq!(
            message.from_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(conversation.contact.wa_id.as_deref(), Some("972987654321"));
        assert_eq!(
            conversation.contact.user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(
            conversation.contact.profile_name.as_deref(),
            Some("Test Name")
        );
    }

    #[test]
    fn bsuid_only_contact_has_no_wa_id() {
        let body = messages_body(
            json!([
                {"profile": {"name": "Other"}, "wa_id": "111"},
                {"profile": {"name": "Aisha", "username": "@aisha"}, "user_id": "OM.42",
                 "parent_user_id": "OM.ENT.1"}
            ]),
            json!([{"from_user_id": "OM.42", "id": "wamid.B", "timestamp": "1700000000",
                    "type": "text", "text": {"body": "hi"}}]),
        );
        let envelope = parse_json(&body).expect("parses");
        let (conversation, message) = messages(&envelope).remove(0);
        assert_eq!(message.from, None);
        assert_eq!(conversation.contact.wa_id, None);
        assert_eq!(conversation.contact.user_id.as_deref(), Some("OM.42"));
        assert_eq!(conversation.contact.profile_name.as_deref(), Some("Aisha"));
        assert_eq!(conversation.key(), "PNID:u:OM.42");
        let ChangeValue::Messages(value) = &envelope.entry[0].changes[0].value else {
            panic!("typed messages value");
        };
        let profile = value.contacts[1].profile.as_ref().expect("profile");
        assert_eq!(profile.username.as_deref(), Some("@aisha"));
        assert_eq!(
            value.contacts[1].parent_user_id.as_deref(),
            Some("OM.ENT.1")
        );
    }

    #[test]
    fn picks_the_contact_matching_the_sender_among_several() {
        let body = messages_body(
            json!([
                {"profile": {"name": "First"}, "wa_id": "111"},
                {"profile": {"name": "Second"}, "wa_id": "222"}
            ]),
            json!([
                {"from": "222", "id": "wamid.1", "timestamp": "1", "type": "text",
                 "text": {"body": "a"}},
                {"from": "333", "id": "wamid.2", "timestamp": "2", "type": "text",
                 "text": {"body": "b"}}
            ]),
        );
        let found = messages(&parse_json(&body).expect("parses"));
        assert_eq!(found[0].0.contact.profile_name.as_deref(), Some("Second"));
        assert_eq!(found[1].0.contact.wa_id.as_deref(), Some("333"));
        assert_eq!(found[1].0.contact.profile_name, None);
    }

    #[test]
    fn single_contact_naming_another_number_is_not_used() {
        // pywa's edited-message fixture: `from` 16505551234, the only contact is 972987654321.
        let (conversation, _) = only_message("pywa/edited_message__image.json");
        assert_eq!(conversation.contact.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(conversation.contact.user_id, None);
        assert_eq!(conversation.contact.profile_name, None);
    }

    #[test]
    fn system_message_without_contacts_still_gives_a_message_event() {
        let (conversation, message) = only_message("meta-openapi/webhooks/system-message.json");
        assert_eq!(conversation.contact.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(conversation.contact.profile_name, None);
        let system = message.system.expect("system node");
        assert_eq!(system.kind.as_deref(), Some("user_changed_number"));
        assert_eq!(system.wa_id.as_deref(), Some("12195555358"));
    }

    #[test]
    fn identity_change_keeps_identity_node() {
        let (_, message) = only_message("pywa/system__identity_change.json");
        let identity = message.identity.expect("identity");
        assert_eq!(identity.acknowledged, Some(true));
        assert_eq!(identity.created_timestamp, Some(1_697_044_706));
        assert_eq!(identity.hash.as_deref(), Some("xyzxyz"));
    }

    #[test]
    fn failed_status_gives_status_event_with_errors() {
        let events = fixture("pywa/message_status__failed.json").events();
        assert_eq!(events.len(), 1);
        let Event::Status {
            phone_number_id,
            status,
        } = &events[0]
        else {
            panic!("expected a status, got {:?}", events[0]);
        };
        assert_eq!(phone_number_id, "1122334455667");
        assert_eq!(status.status, "failed");
        assert_eq!(status.timestamp, 1_689_380_458);
        assert_eq!(status.dedupe_key(), "s:wamid.xyzxyz:failed");
        assert_eq!(status.errors[0].code, 130_472);
        assert_eq!(
            status.errors[0].href.as_deref(),
            Some("https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/")
        );
        assert!(status.errors[0]
            .describe()
            .contains("part of an experiment"));
    }

    #[test]
    fn sent_status_keeps_conversation_pricing_and_tracker() {
        let events = fixture("pywa/message_status__with_tracker.json").events();
        let Event::Status { status, .. } = &events[0] else {
            panic!("expected a status");
        };
        let conversation = status.conversation.as_ref().expect("conversation");
        assert_eq!(conversation.expiration_timestamp, Some(1_698_339_900));
        assert_eq!(
            conversation.origin.as_ref().and_then(|o| o.kind.as_deref()),
            Some("service")
        );
        let pricing = status.pricing.as_ref().expect("pricing");
        assert_eq!(pricing.billable, Some(true));
        assert_eq!(pricing.pricing_model.as_deref(), Some("CBP"));
        assert_eq!(pricing.category.as_deref(), Some("service"));
        assert_eq!(
            status.biz_opaque_callback_data.as_deref(),
            Some("some data")
        );
    }

    #[test]
    fn unknown_status_value_and_status_fields_are_kept() {
        let events = fixture("pywa/message_status__group.json").events();
        let Event::Status { status, .. } = &events[0] else {
            panic!("expected a status");
        };
        assert_eq!(status.extra.get("recipient_type"), Some(&json!("group")));
        let played = fixture("pywa/message_status__played.json").events();
        assert!(matches!(&played[0], Event::Status { status, .. } if status.status == "played"));
    }

    #[test]
    fn timestamp_accepts_string_and_integer_and_writes_a_string() {
        let message = |timestamp: Value| {
            let body = messages_body(
                json!([]),
                json!([{"from": "1", "id": "wamid.T", "timestamp": timestamp, "type": "text",
                        "text": {"body": "x"}}]),
            );
            messages(&parse_json(&body).expect("parses")).remove(0).1
        };
        let from_string = message(json!("1697043223"));
        let from_int = message(json!(1_697_043_223));
        assert_eq!(from_string.timestamp, 1_697_043_223);
        assert_eq!(from_string, from_int);
        let written = serde_json::to_value(&from_int).expect("serialisable");
        assert_eq!(written["timestamp"], json!("1697043223"));
    }

    #[test]
    fn user_preferences_keep_integer_timestamp_and_open_value() {
        let events = fixture("pywa/user_marketing_preferences__signup.json").events();
        let Event::Update {
            field,
            value: ChangeValue::UserPreferences(value),
        } = &events[0]
        else {
            panic!("expected user preferences, got {:?}", events[0]);
        };
        assert_eq!(field, "user_preferences");
        let preference = &value.user_preferences[0];
        assert_eq!(preference.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(preference.value.as_deref(), Some("signup"));
        assert_eq!(preference.category.as_deref(), Some("marketing_messages"));
        assert_eq!(preference.timestamp, Some(1_731_705_721));
        assert_eq!(
            preference.extra.get("signup_id"),
            Some(&json!("13176843987434774"))
        );
    }

    #[test]
    fn template_id_above_u32_is_kept_as_u64() {
        let events = fixture("pywa/template_status_update__approved.json").events();
        let Event::Update {
            value: ChangeValue::TemplateStatus(update),
            ..
        } = &events[0]
        else {
            panic!("expected a template status update");
        };
        assert_eq!(update.message_template_id, Some(1_689_556_908_129_832));
        assert!(update.message_template_id > Some(u64::from(u32::MAX)));
        assert_eq!(update.event.as_deref(), Some("APPROVED"));

        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "time": 1, "changes": [
            {"field": "message_template_quality_update", "value": {
                "message_template_id": 18_446_744_073_709_551_615_u64}},
            {"field": "template_category_update", "value": {
                "message_template_id": "5000000000", "new_category": "MARKETING"}}
        ]}]});
        let envelope = parse_json(&body).expect("parses");
        let events = envelope.events();
        assert!(matches!(&events[0], Event::Update {
            value: ChangeValue::TemplateQuality(q), ..
        } if q.message_template_id == Some(u64::MAX)));
        assert!(matches!(&events[1], Event::Update {
            value: ChangeValue::TemplateCategory(c), ..
        } if c.message_template_id == Some(5_000_000_000)));
        let written = serde_json::to_value(&envelope).expect("serialisable");
        assert_eq!(
            written["entry"][0]["changes"][1]["value"]["message_template_id"],
            json!(5_000_000_000_u64)
        );
    }

    #[test]
    fn rejected_template_keeps_rejection_info() {
        let events = fixture("pywa/template_status_update__rejected.json").events();
        let Event::Update {
            value: ChangeValue::TemplateStatus(update),
            ..
        } = &events[0]
        else {
            panic!("expected a template status update");
        };
        assert_eq!(update.reason.as_deref(), Some("INVALID_FORMAT"));
        let info = update.rejection_info.as_ref().expect("rejection info");
        assert!(info
            .recommendation
            .as_deref()
            .is_some_and(|r| r.contains("Separate")));
    }

    #[test]
    fn deleted_template_with_null_reason_parses() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "message_template_status_update", "value": {
                "event": "DELETED", "message_template_id": 1, "reason": null}}]}]});
        let events = parse_json(&body).expect("parses").events();
        assert!(matches!(&events[0], Event::Update {
            value: ChangeValue::TemplateStatus(u), ..
        } if u.reason.is_none() && u.event.as_deref() == Some("DELETED")));
    }

    #[test]
    fn account_update_keeps_restrictions_and_unknown_details() {
        let events = fixture("pywa/account_update__account_restriction.json").events();
        let Event::Update {
            value: ChangeValue::AccountUpdate(update),
            ..
        } = &events[0]
        else {
            panic!("expected an account update");
        };
        assert_eq!(update.event.as_deref(), Some("ACCOUNT_RESTRICTION"));
        assert_eq!(update.restriction_info.len(), 2);
        assert_eq!(update.restriction_info[0].expiration, Some(1_641_330_498));
        let disabled = fixture("pywa/account_update__account_disabled.json").events();
        assert!(matches!(&disabled[0], Event::Update {
            value: ChangeValue::AccountUpdate(u), ..
        } if u.extra.contains_key("ban_info")));
        assert_eq!(
            fixture("pywa/account_update__account_restriction.json").entry[0].time,
            Some(1_641_330_498)
        );
    }

    #[test]
    fn template_components_update_is_loose() {
        let envelope = fixture("pywa/template_components_update__element.json");
        // pywa's file nests a second envelope under a top-level "all" key: kept, not rejected.
        assert!(envelope.extra.contains_key("all"));
        let events = envelope.events();
        let Event::Update {
            value: ChangeValue::TemplateComponents(update),
            ..
        } = &events[0]
        else {
            panic!("expected a components update");
        };
        assert_eq!(update.message_template_id, Some(12_345_678));
        assert!(update.extra.contains_key("message_template_element"));
    }

    #[test]
    fn unknown_field_is_kept_raw() {
        let events = fixture("pywa/call_connect__user_initiated.json").events();
        let Event::Update {
            field,
            value: ChangeValue::Other(raw),
        } = &events[0]
        else {
            panic!("expected a raw update, got {:?}", events[0]);
        };
        assert_eq!(field, "calls");
        assert_eq!(raw["calls"][0]["event"], json!("connect"));

        // An unknown field never errors, whatever its shape.
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "brand_new_field", "value": [1, "two", {"three": 3}]}]}]});
        let events = parse_json(&body).expect("parses").events();
        assert!(
            matches!(&events[0], Event::Update { value: ChangeValue::Other(Value::Array(a)), .. } if a.len() == 3)
        );
    }

    #[test]
    fn unknown_message_type_and_fields_are_kept() {
        let body = messages_body(
            json!([]),
            json!([{"from": "1", "id": "wamid.U", "timestamp": "1", "type": "hologram",
                    "hologram": {"depth": 3}, "brand_new_top_level": true}]),
        );
        let envelope = parse_json(&body).expect("parses");
        let (_, message) = messages(&envelope).remove(0);
        assert_eq!(message.kind, "hologram");
        assert_eq!(message.extra.get("hologram"), Some(&json!({"depth": 3})));
        assert_eq!(message.extra.get("brand_new_top_level"), Some(&json!(true)));
        let written = serde_json::to_value(&message).expect("serialisable");
        assert_eq!(written["hologram"]["depth"], json!(3));

        let (_, revoke) = only_message("pywa/deleted_message__revoke.json");
        assert_eq!(revoke.kind, "revoke");
        assert!(revoke.extra.contains_key("revoke"));
    }

    #[test]
    fn other_object_is_kept_not_rejected() {
        let body = json!({"object": "page", "entry": [{"id": "1", "changes": [
            {"field": "feed", "value": {"x": 1}}]}]});
        let envelope = parse_json(&body).expect("parses");
        assert_eq!(envelope.object, "page");
        assert_eq!(envelope.events().len(), 1);
    }

    #[test]
    fn iterates_every_entry_and_change() {
        let message = |id: &str| {
            json!({"value": {"metadata": {"phone_number_id": "P"},
                "messages": [{"from": "1", "id": id, "timestamp": "1", "type": "text",
                              "text": {"body": id}}]}, "field": "messages"})
        };
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "A", "changes": [message("m1")]},
            {"id": "B", "changes": [message("m2"), message("m3"),
                {"field": "account_update", "value": {"event": "X"}}]}
        ]});
        let events = parse_json(&body).expect("parses").events();
        let ids: Vec<String> = events
            .iter()
            .map(|event| match event {
                Event::Message { message, .. } => message.id.clone(),
                Event::Status { status, .. } => status.id.clone(),
                Event::Update { field, .. } => field.clone(),
            })
            .collect();
        assert_eq!(ids, ["m1", "m2", "m3", "account_update"]);
    }

    #[test]
    fn value_errors_give_an_update() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "1", "phone_number_id": "P"},
                "errors": [{"code": 130429, "title": "Rate limit hit",
                            "error_data": {"details": "Too many messages"}}]}}]}]});
        let events = parse_json(&body).expect("parses").events();
        assert_eq!(events.len(), 1);
        let Event::Update {
            field,
            value: ChangeValue::Messages(value),
        } = &events[0]
        else {
            panic!("expected an update");
        };
        assert_eq!(field, "messages");
        assert_eq!(value.errors[0].code, 130_429);
        assert_eq!(
            value.errors[0].describe(),
            "Rate limit hit: Too many messages"
        );
    }

    #[test]
    fn wrong_timestamp_is_an_error_naming_the_path() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "changes": [
            {"field": "account_update", "value": {"event": "X"}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": "P"},
                "messages": [{"from": "1", "id": "wamid.X", "timestamp": "17x",
                              "type": "text", "text": {"body": "x"}}]}}
        ]}]});
        let err = parse_json(&body).expect_err("bad timestamp");
        assert_eq!(err.kind(), "shape");
        let shown = err.to_string();
        assert!(
            shown.starts_with("entry[0].changes[1].value.messages[0].timestamp: "),
            "{shown}"
        );
        assert!(shown.contains("invalid digit"), "{shown}");
    }

    #[test]
    fn known_field_with_wrong_shape_is_an_error() {
        let cases = [
            (
                json!({"metadata": {"phone_number_id": "P"}, "messages": {"id": "x"}}),
                "entry[0].changes[0].value.messages: ",
            ),
            (
                json!({"metadata": {"phone_number_id": "P"},
                       "messages": [{"from": "1", "timestamp": "1", "type": "text"}]}),
                "entry[0].changes[0].value.messages[0]: missing field `id`",
            ),
            (
                json!({"metadata": {"phone_number_id": "P"},
                       "statuses": [{"id": "s", "status": 3, "timestamp": "1"}]}),
                "entry[0].changes[0].value.statuses[0].status: ",
            ),
            (
                json!({"messages": []}),
                "entry[0].changes[0].value: missing field `metadata`",
            ),
        ];
        for (value, expected) in cases {
            let body = json!({"object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]});
            let shown = parse_json(&body).expect_err("wrong shape").to_string();
            assert!(
                shown.starts_with(expected),
                "{shown} does not start with {expected}"
            );
        }

        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "message_template_status_update",
                         "value": {"message_template_id": {"nested": 1}}}]}]});
        let shown = parse_json(&body).expect_err("wrong id").to_string();
        assert!(
            shown.starts_with("entry[0].changes[0].value.message_template_id: "),
            "{shown}"
        );

        let shown = parse(br#"{"object":"x","entry":{"id":"1"}}"#)
            .expect_err("entry not a list")
            .to_string();
        assert!(shown.starts_with("entry: invalid type: map"), "{shown}");
    }

    #[test]
    fn invalid_json_is_an_error_with_position() {
        let err = parse(b"{\"object\": \"whatsapp_business_account\", \"entry\": [")
            .expect_err("truncated");
        assert_eq!(err.kind(), "invalid_json");
        assert!(
            matches!(err, ParseError::InvalidJson { line: 1, .. }),
            "{err:?}"
        );
        let trailing = parse(br#"{"object":"x","entry":[]} junk"#).expect_err("trailing data");
        assert_eq!(trailing.kind(), "invalid_json");
    }

    #[test]
    fn escaped_non_ascii_body_parses_to_unicode() {
        // Meta signs its \uXXXX-escaped serialisation; the parsed text is the real characters.
        let raw = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"P"},"contacts":[{"profile":{"name":"J\u00fcrgen"},"wa_id":"49"}],"messages":[{"from":"49","id":"wamid.U","timestamp":"1","type":"text","text":{"body":"\u00e4\u00f6\u00e5 \ud83d\udc4d"}}]},"field":"messages"}]}]}"#;
        let (conversation, message) = messages(&parse(raw).expect("parses")).remove(0);
        assert_eq!(message.text.map(|t| t.body).as_deref(), Some("äöå 👍"));
        assert_eq!(conversation.contact.profile_name.as_deref(), Some("Jürgen"));
    }

    #[test]
    fn media_nodes_give_media_refs() {
        let (_, image) = only_message("meta-openapi/webhooks/image-message.json");
        let media = image.media().expect("image media");
        assert_eq!(media.kind, "image");
        assert_eq!(media.id.as_deref(), Some("1003383421387256"));
        assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(
            media.sha256.as_deref(),
            Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")
        );
        assert_eq!(media.filename, "image-1003383421387256.jpg");

        let (_, document) = only_message("pywa/message__document.json");
        let media = document.media().expect("document media");
        assert_eq!(
            (media.kind.as_str(), media.filename.as_str()),
            ("document", "filename.pdf")
        );

        let (_, voice) = only_message("pywa/message__voice.json");
        let media = voice.media().expect("voice media");
        assert_eq!(media.kind, "audio");
        assert_eq!(media.filename, "audio-1234567890987654321.ogg");
        assert_eq!(voice.audio.as_ref().and_then(|a| a.voice), Some(true));

        let (_, sticker) = only_message("pywa/message__animated_sticker.json");
        assert_eq!(
            sticker.media().map(|m| m.filename).as_deref(),
            Some("sticker-1234567890987654321.webp")
        );
        assert_eq!(
            sticker.sticker.as_ref().and_then(|s| s.animated),
            Some(true)
        );

        let (_, with_url) = only_message("pywa/message__media_with_url.json");
        assert!(with_url
            .media()
            .and_then(|m| m.url)
            .is_some_and(|url| url.starts_with("https://lookaside.fbsbx.com/")));

        let (_, text) = only_message("pywa/message__text.json");
        assert_eq!(text.media(), None);
    }

    #[test]
    fn document_filename_is_reduced_to_its_last_component() {
        let body = messages_body(
            json!([]),
            json!([{"from": "1", "id": "wamid.D", "timestamp": "1", "type": "document",
                    "document": {"id": "9", "mime_type": "application/pdf",
                                 "filename": "../../etc/Rechnung März.pdf"}}]),
        );
        let (_, message) = messages(&parse_json(&body).expect("parses")).remove(0);
        assert_eq!(
            message.media().map(|m| m.filename).as_deref(),
            Some("Rechnung März.pdf")
        );
    }

    #[test]
    fn order_accepts_numbers_and_strings() {
        let (_, message) = only_message("meta-openapi/webhooks/order-message.json");
        let order = message.order.expect("order");
        assert_eq!(order.catalog_id.as_deref(), Some("194836987003835"));
        assert_eq!(order.product_items[0].quantity.as_f64(), Some(2.0));
        assert_eq!(
            order.product_items[0]
                .item_price
                .as_ref()
                .and_then(|p| p.as_f64()),
            Some(30.0)
        );

        let body = messages_body(
            json!([]),
            json!([{"from": "1", "id": "wamid.O", "timestamp": "1", "type": "order",
                    "order": {"catalog_id": "C", "product_items": [
                        {"product_retailer_id": "P", "quantity": "3", "item_price": "12.50",
                         "currency": "EUR"}]}}]),
        );
        let (_, message) = messages(&parse_json(&body).expect("parses")).remove(0);
        let item = &message.order.expect("order").product_items[0];
        assert_eq!(item.quantity.as_f64(), Some(3.0));
        assert_eq!(
            item.item_price.as_ref().and_then(|p| p.as_f64()),
            Some(12.5)
        );
        let written = serde_json::to_value(item).expect("serialisable");
        assert_eq!(written["item_price"], json!("12.50"));
    }

    #[test]
    fn typed_nodes_are_extracted() {
        let (_, location) = only_message("meta-openapi/webhooks/location-message.json");
        let node = location.location.expect("location");
        assert_eq!(
            (node.latitude, node.longitude),
            (37.44221496582, -122.16165924072)
        );
        assert_eq!(node.name.as_deref(), Some("Philz Coffee"));

        let (_, contacts) = only_message("meta-openapi/webhooks/contact-sharing-message.json");
        let card = &contacts.contacts[0];
        assert_eq!(card.display_name().as_deref(), Some("Lucía Gómez"));
        assert_eq!(card.phones[0].wa_id.as_deref(), Some("19835552319"));
        assert_eq!(
            card.org.as_ref().and_then(|o| o.company.as_deref()),
            Some("Google")
        );

        let (_, list) = only_message("meta-openapi/webhooks/interactive-list-reply-message.json");
        let interactive = list.interactive.expect("interactive");
        assert_eq!(interactive.kind, "list_reply");
        assert_eq!(
            interactive
                .list_reply
                .and_then(|r| r.description)
                .as_deref(),
            Some("Next Day to 2 Days")
        );

        let (_, flow) = only_message("pywa/flow_completion__completion.json");
        let nfm = flow
            .interactive
            .and_then(|i| i.nfm_reply)
            .expect("nfm_reply");
        assert!(nfm
            .response_json
            .is_some_and(|json| json.contains("flow_token")));

        let (_, button) = only_message("meta-openapi/webhooks/button-message.json");
        assert_eq!(
            button.button.and_then(|b| b.payload).as_deref(),
            Some("Unsubscribe")
        );
        assert_eq!(
            button.context.and_then(|c| c.from).as_deref(),
            Some("15550783881")
        );

        let (_, reaction) = only_message("meta-openapi/webhooks/reaction-message.json");
        assert_eq!(
            reaction.reaction.as_ref().and_then(|r| r.emoji()),
            Some("👍")
        );

        let (_, ad) =
            only_message("meta-openapi/webhooks/text-message-from-click-to-whatsapp-ad.json");
        let referral = ad.referral.expect("referral");
        assert_eq!(referral.headline.as_deref(), Some("Chat with us"));
        assert!(referral.extra.contains_key("welcome_message"));

        let (_, inquiry) =
            only_message("meta-openapi/webhooks/text-message-with-context-product-inquiry.json");
        let product = inquiry
            .context
            .and_then(|c| c.referred_product)
            .expect("product");
        assert_eq!(product.product_retailer_id.as_deref(), Some("di9ozbzfi4"));

        let (_, forwarded) = only_message("pywa/message__forwarded_many_times.json");
        assert_eq!(
            forwarded.context.and_then(|c| c.frequently_forwarded),
            Some(true)
        );

        let (_, unsupported) = only_message("meta-openapi/webhooks/unsupported-message.json");
        assert_eq!(unsupported.errors[0].code, 131_051);
    }

    #[test]
    fn unreaction_has_no_emoji() {
        for name in [
            "pywa/message__unreaction_empty.json",
            "pywa/message__unreaction_no_emoji.json",
        ] {
            let (_, message) = only_message(name);
            let reaction = message.reaction.expect("reaction");
            assert_eq!(reaction.emoji(), None, "{name}");
            assert_eq!(reaction.message_id, "wamid.yzxyzx=");
        }
    }

    #[test]
    fn extension_follows_mime_type() {
        assert_eq!(extension_for("audio/ogg; codecs=opus"), "ogg");
        assert_eq!(extension_for("IMAGE/JPEG"), "jpg");
        assert_eq!(extension_for("application/x-unknown"), "bin");
        assert_eq!(extension_for(""), "bin");
    }
}
