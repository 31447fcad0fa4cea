//! Salesforce: the contact upserted by its WhatsApp number, every message a completed Task on
//! it (CRM role), and a Case per conversation with every message a case comment, agents'
//! published comments going back to WhatsApp (ticketing role). One `[connectors.<name>]`
//! section builds both roles (`roles`); they share one client and one OAuth session (see
//! [`client`](self) docs: client credentials flow, token cached and renewed on expiry or on a
//! 401).
//!
//! **Contacts.** A contact is found by `GET sobjects/Contact/<external_id_field>/<digits>`.
//! Only when there is none it is created by the upsert `PATCH
//! sobjects/Contact/<external_id_field>/<digits>` (201 created; 200, or 204 and a read-back,
//! when another writer created it meanwhile) with `LastName` (and `FirstName`) from the
//! WhatsApp profile name — `WhatsApp +<E.164>` without one — and `Phone` and `MobilePhone` set
//! to the E.164 number, under `account_id` when configured. **An existing contact is never
//! changed**: a name or number a person entered in Salesforce is better than a WhatsApp
//! profile name (often a nickname), and no contact triggers or flows fire per message.
//! Contacts without a phone number (BSUID only) cannot be matched and fail permanently.
//!
//! **Timeline (CRM).** `log_activity` writes one Task per message (`Subject` "WhatsApp message
//! from/to …", `Description` with direction, business number, time, text and the marker
//! `[wa:<message id>]`, `WhoId`, `ActivityDate`, `Status = Completed`, `TaskSubtype = Task`),
//! up to 200 in one `POST composite/sobjects` call with `allOrNone` (all or none written). With
//! `maybe_delivered` the contact's Tasks created since the earliest message (less a day of
//! clock slack) are read with SOQL and the markers are matched in their descriptions — Task
//! `Description` is a long text area, which SOQL cannot filter on — and only messages whose
//! marker is missing are written.
//!
//! **Cases (ticketing).** Which case takes a message: the one the daemon recorded, if it still
//! exists and is open (or closed less than `reopen_within_days` ago, by `ClosedDate`); else the
//! contact's newest open case with `Origin = case_origin` (SOQL), else its newest recently
//! closed one; else a new case (`Subject` "WhatsApp: Aisha (+96890000001)", `ContactId`,
//! `Origin`, `Status = case_status_new`, `Description` = the first message). Whether a case is
//! closed is Salesforce's `IsClosed`; reopening sets `case_status_reopened`. Later messages are
//! case comments (`IsPublished` per `customer_messages`), media are Files (`ContentVersion`
//! with `FirstPublishLocationId` = the case). The case or comment, a reopening, and the files
//! of one message are **one composite request with `allOrNone`**: all of it is written or
//! nothing. Files beyond [`INLINE_FILES_MAX_BYTES`] per message (Salesforce takes at most
//! 37.5 MB of base64 data in a JSON request) are named in the entry instead. A case comment
//! holds 4000 bytes: a longer message is shortened there and attached in full as a text file.
//!
//! **Once in effect.** With [`DeliveryContext::maybe_delivered`] the case about to be written
//! to is checked first: its `Description` (the message opened it) and its comments (SOQL
//! `CommentBody LIKE '%[wa:<id>]%'`, the literal escaped, the match confirmed exactly). A case
//! an earlier attempt opened is found as the contact's open case. Without `maybe_delivered`
//! no marker lookup is made.
//!
//! **Agents' replies** are polled: published case comments on cases with `Origin =
//! case_origin`, not written by the integration (run-as) user, created since the cursor's
//! watermark less [`REPLY_OVERLAP`], oldest first (`ORDER BY CreatedDate, Id`). The cursor is
//! `<watermark>|<comment ids>`: the newest `CreatedDate` seen and the replies already returned
//! from the overlap window, so each reply is returned once even when its transaction committed
//! a moment late. Comments carrying a marker are never replies. The reply id is
//! `salesforce-casecomment-<Id>`, the ticket the case Id.

mod client;
mod config;
pub mod soql;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::{
    Activity, AgentReply, Attachment, Connector, ConnectorError, Contact, Conversation, Crm,
    CrmContactId, Delivered, DeliveryContext, Direction, InboundMessage, TicketRef, TicketSystem,
};
use client::{SalesforceClient, SubResponse, COLLECTION_LIMIT, COMPOSITE_LIMIT};
pub use client::{CONCURRENT_LIMIT_WAIT, DAILY_LIMIT_WAIT};
use config::is_record_id;
pub use config::{
    CustomerMessages, Role, SalesforceConfig, DEFAULT_API_VERSION, DEFAULT_CASE_ORIGIN,
    DEFAULT_CASE_STATUS_NEW, DEFAULT_CASE_STATUS_REOPENED, DEFAULT_EXTERNAL_ID_FIELD,
    DEFAULT_REOPEN_WITHIN_DAYS, DEFAULT_TIMEOUT_SECS,
};

/// How every marker starts; entries carrying it are the connector's own.
const MARKER_PREFIX: &str = "[wa:";
/// The most a case comment's `CommentBody` holds, in bytes.
pub const COMMENT_MAX_BYTES: usize = 4000;
/// The most a `Description` (Case, Task) holds, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 32_000;
/// The most a `Subject` (Case, Task) or a file title holds, in characters.
const SUBJECT_MAX_CHARS: usize = 255;
/// File bytes sent with one message (base64 makes them a third larger in the JSON request).
pub const INLINE_FILES_MAX_BYTES: usize = 25 * 1024 * 1024;
/// The name of the file holding a message too long for a case comment.
pub const FULL_TEXT_FILE: &str = "whatsapp-message.txt";
/// How far back every poll for agents' replies looks again before its cursor (transactions
/// that committed late, and Salesforce's one-second timestamps).
pub const REPLY_OVERLAP: Duration = Duration::from_secs(60);
/// Entries written for a message are created after it was sent; this much earlier is still
/// searched (clocks differ).
const LOOKUP_SLACK_HOURS: i64 = 24;
/// Cases of a contact read when looking for the conversation's case.
const CASES_READ: usize = 20;

/// The marker that ends every entry the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("{MARKER_PREFIX}{message_id}]")
}

/// The contact's number as digits (the external id value), when it has one.
fn digits_of(contact: &Contact) -> Option<String> {
    let digits: String = contact
        .wa_id
        .as_deref()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<prefix><contact>` in at most 255 characters on one line: a long profile name is
/// shortened, the number is kept.
fn titled(prefix: &str, contact: &Contact) -> String {
    let mut contact = contact.clone();
    contact.profile_name = contact.profile_name.as_deref().map(one_line);
    let title = format!("{prefix}{}", contact.display());
    let excess = title.chars().count().saturating_sub(SUBJECT_MAX_CHARS);
    if excess == 0 {
        return title;
    }
    if let Some(name) = contact.profile_name.as_deref() {
        let keep = name.chars().count().saturating_sub(excess + 1);
        let short: String = name.chars().take(keep).collect();
        contact.profile_name = Some(format!("{}…", short.trim_end()));
    }
    format!("{prefix}{}", contact.display())
        .chars()
        .take(SUBJECT_MAX_CHARS)
        .collect()
}

/// The subject of a conversation's case: `WhatsApp: Aisha (+96890000001)`.
pub fn case_subject(contact: &Contact) -> String {
    titled("WhatsApp: ", contact)
}

/// The subject of a message's Task: `WhatsApp message from Aisha (+96890000001)` (or `to`).
pub fn task_subject(contact: &Contact, direction: Direction) -> String {
    match direction {
        Direction::Inbound => titled("WhatsApp message from ", contact),
        Direction::Outbound => titled("WhatsApp message to ", contact),
    }
}

/// How a limit is counted.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Bytes,
    Chars,
}

impl Unit {
    fn of(self, text: &str) -> usize {
        match self {
            Unit::Bytes => text.len(),
            Unit::Chars => text.chars().count(),
        }
    }
    fn of_char(self, c: char) -> usize {
        match self {
            Unit::Bytes => c.len_utf8(),
            Unit::Chars => 1,
        }
    }
}

/// `head + text + tail` within `max`; when too long, the text is cut and `note` follows it.
/// Whether the text was cut.
fn fit(head: &str, text: &str, tail: &str, note: &str, max: usize, unit: Unit) -> (String, bool) {
    let whole = format!("{head}{text}{tail}");
    if unit.of(&whole) <= max {
        return (whole, false);
    }
    let mut budget = max.saturating_sub(unit.of(head) + unit.of(tail) + unit.of(note));
    let mut cut = String::new();
    for c in text.chars() {
        let size = unit.of_char(c);
        if size > budget {
            break;
        }
        budget -= size;
        cut.push(c);
    }
    (format!("{head}{}{note}{tail}", cut.trim_end()), true)
}

/// The text of one case entry (the case's description or a case comment): who wrote when, the
/// message, files not attached, and the marker; at most `max` (`unit`). Whether the message had
/// to be shortened (then attach it in full as [`FULL_TEXT_FILE`]).
fn case_entry(
    conversation: &Conversation,
    message: &InboundMessage,
    not_attached: &[String],
    max: usize,
    unit: Unit,
) -> (String, bool) {
    let who = conversation.contact.display();
    let at = message.timestamp.format("%Y-%m-%d %H:%M:%S");
    let head = if message.kind == "text" {
        format!("{who} wrote on WhatsApp, {at} UTC:\n\n")
    } else {
        format!(
            "{who} sent a WhatsApp {} message, {at} UTC:\n\n",
            message.kind
        )
    };
    let mut tail = String::from("\n\n");
    for line in not_attached {
        tail.push_str(line);
        tail.push('\n');
    }
    if !not_attached.is_empty() {
        tail.push('\n');
    }
    tail.push_str(&marker(&message.id));
    let note = format!(
        "…\n\n(The message is longer than Salesforce keeps here; the full text is attached as \
         {FULL_TEXT_FILE}.)"
    );
    fit(&head, message.text.trim(), &tail, &note, max, unit)
}

/// The text of a case's description when `message` opens it (see [`case_entry`]).
pub fn case_description(conversation: &Conversation, message: &InboundMessage) -> String {
    case_entry(
        conversation,
        message,
        &[],
        DESCRIPTION_MAX_CHARS,
        Unit::Chars,
    )
    .0
}

/// The text of the case comment for `message` (see [`case_entry`]), at most 4000 bytes.
pub fn case_comment(conversation: &Conversation, message: &InboundMessage) -> String {
    case_entry(conversation, message, &[], COMMENT_MAX_BYTES, Unit::Bytes).0
}

/// The description of one message's Task:
///
/// ```text
/// Inbound WhatsApp message from Aisha (+96890000001) to +15550783881, 2026-11-27 09:30:00 UTC
///
/// Where is my order?
///
/// [wa:wamid.…]
/// ```
pub fn task_description(conversation: &Conversation, activity: &Activity) -> String {
    let who = conversation.contact.display();
    let business = conversation
        .display_phone_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| format!("+{}", n.trim_start_matches('+')));
    let (title, detail) = match (activity.direction, business) {
        (Direction::Inbound, Some(b)) => ("Inbound", format!("from {who} to {b}")),
        (Direction::Inbound, None) => ("Inbound", format!("from {who}")),
        (Direction::Outbound, Some(b)) => ("Outbound", format!("from {b} to {who}")),
        (Direction::Outbound, None) => ("Outbound", format!("to {who}")),
    };
    let head = format!(
        "{title} WhatsApp message {detail}, {} UTC\n\n",
        activity.at.format("%Y-%m-%d %H:%M:%S")
    );
    let tail = format!("\n\n{}", marker(&activity.id));
    fit(
        &head,
        activity.text.trim(),
        &tail,
        "… (shortened)",
        DESCRIPTION_MAX_CHARS,
        Unit::Chars,
    )
    .0
}

/// `(FirstName, LastName)` of a new contact: the profile name's first word and the rest (a
/// one-word name is the last name), else `WhatsApp +<E.164>` as the last name.
pub fn contact_name(contact: &Contact, e164: &str) -> (Option<String>, String) {
    let name = contact.profile_name.as_deref().map(one_line);
    let take = |text: &str, max: usize| -> String { text.chars().take(max).collect() };
    match name.as_deref() {
        Some(name) if !name.is_empty() => match name.split_once(' ') {
            Some((first, rest)) => (Some(take(first, 40)), take(rest, 80)),
            None => (None, take(name, 80)),
        },
        _ => (None, format!("WhatsApp {e164}")),
    }
}

/// A file name Salesforce can take: no path, no control characters, at most 255 characters.
fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(SUBJECT_MAX_CHARS)
        .collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "attachment".to_owned()
    } else {
        clean
    }
}

fn size_text(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// The files that go with the message in its composite request, and a line for each one that
/// does not. `slots` is how many subrequests are left for files.
fn split_files(attachments: &[Attachment], slots: usize) -> (Vec<&Attachment>, Vec<String>) {
    let mut inline = Vec::new();
    let mut skipped = Vec::new();
    let mut total = 0usize;
    for attachment in attachments {
        let name = file_name(&attachment.filename);
        let size = attachment.data.len();
        if size == 0 {
            skipped.push(format!("File {name} is empty and was not attached."));
        } else if inline.len() >= slots || total + size > INLINE_FILES_MAX_BYTES {
            skipped.push(format!(
                "File {name} ({}, {}) was not attached: a message's files may take at most {} \
                 MB in Salesforce through wabridge.",
                attachment.mime_type,
                size_text(size),
                INLINE_FILES_MAX_BYTES / (1024 * 1024)
            ));
        } else {
            total += size;
            inline.push(attachment);
        }
    }
    (inline, skipped)
}

/// A case as the connector needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaseState {
    id: String,
    status: String,
    is_closed: bool,
    closed_date: Option<DateTime<Utc>>,
    /// Read only for a marker lookup.
    description: Option<String>,
}

impl CaseState {
    fn from_record(record: &Value) -> Option<CaseState> {
        let id = record.get("Id")?.as_str().filter(|id| is_record_id(id))?;
        Some(CaseState {
            id: id.to_owned(),
            status: record
                .get("Status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            is_closed: record.get("IsClosed")?.as_bool()?,
            closed_date: record
                .get("ClosedDate")
                .and_then(Value::as_str)
                .and_then(soql::parse_datetime),
            description: record
                .get("Description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// What the connector does with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Open: add the comment.
    Comment,
    /// Closed recently: reopen it and add the comment, in one transaction.
    Reopen,
    /// Closed too long ago: open a new case.
    Replace,
}

/// Where [`TicketSystem::replies_since`] stands: replies before `watermark - REPLY_OVERLAP` are
/// done; `seen` are the replies already returned from the overlap window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    watermark: DateTime<Utc>,
    seen: BTreeSet<String>,
}

impl Cursor {
    /// `2026-11-27T09:30:00Z|00a5g00000AbCdEAAV,00a5g00000AbCdFAAV` (the ids may be empty).
    fn parse(text: &str) -> Option<Cursor> {
        let (at, ids) = text.split_once('|')?;
        let watermark = soql::parse_datetime(at)?;
        let seen = ids
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| is_record_id(id).then(|| id.to_owned()))
            .collect::<Option<BTreeSet<String>>>()?;
        Some(Cursor { watermark, seen })
    }

    fn render(&self) -> String {
        let ids: Vec<&str> = self.seen.iter().map(String::as_str).collect();
        format!("{}|{}", soql::datetime(self.watermark), ids.join(","))
    }

    fn window_start(&self) -> DateTime<Utc> {
        let overlap = chrono::Duration::from_std(REPLY_OVERLAP).unwrap_or_default();
        self.watermark - overlap
    }
}

fn delivered(case: &str, opened_ticket: bool, already_present: bool) -> Delivered {
    Delivered {
        ticket: TicketRef(case.to_owned()),
        opened_ticket,
        already_present,
    }
}

fn no_number() -> ConnectorError {
    ConnectorError::Permanent {
        reason: "salesforce: the contact has no phone number (only a BSUID); Salesforce \
                 contacts are matched on the number in external_id_field"
            .to_owned(),
    }
}

struct Inner {
    config: SalesforceConfig,
    client: SalesforceClient,
}

/// The Salesforce connector (see the module docs). Cheap to clone: clones share the client and
/// its session; [`SalesforceConnector::into_connector`] hands one to each configured role.
#[derive(Clone)]
pub struct SalesforceConnector {
    inner: Arc<Inner>,
}

impl fmt::Debug for SalesforceConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's secret is a `Secret`; the client redacts its session.
        f.debug_struct("SalesforceConnector")
            .field("config", &self.inner.config)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl SalesforceConnector {
    /// Builds the connector from a configuration that passed [`SalesforceConfig::validate`]
    /// (no network call; use `check` for that).
    pub fn new(config: SalesforceConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("salesforce: {}: {}", problem.field, problem.message),
            });
        }
        let required = |field: &str| ConnectorError::Permanent {
            reason: format!("salesforce: {field}: required"),
        };
        let url = config.url.as_deref().ok_or_else(|| required("url"))?;
        let client_id = config
            .client_id
            .as_deref()
            .ok_or_else(|| required("client_id"))?;
        let secret = config
            .client_secret
            .as_ref()
            .ok_or_else(|| required("client_secret"))?;
        let client = SalesforceClient::new(
            url,
            &config.api_version,
            client_id,
            secret,
            Duration::from_secs(config.timeout_secs),
        )?;
        Ok(SalesforceConnector {
            inner: Arc::new(Inner { config, client }),
        })
    }

    /// The roles the configuration asks for, sharing this connector.
    pub fn into_connector(self) -> Connector {
        let ticketing: Option<Box<dyn TicketSystem>> = self
            .inner
            .config
            .has_role(Role::Ticketing)
            .then(|| Box::new(self.clone()) as Box<dyn TicketSystem>);
        let crm: Option<Box<dyn Crm>> = self
            .inner
            .config
            .has_role(Role::Crm)
            .then(|| Box::new(self) as Box<dyn Crm>);
        Connector { ticketing, crm }
    }

    fn config(&self) -> &SalesforceConfig {
        &self.inner.config
    }

    fn client(&self) -> &SalesforceClient {
        &self.inner.client
    }

    fn field(&self) -> &str {
        self.config().external_id_field.trim()
    }

    // ---- contacts -------------------------------------------------------------------------

    /// The contact's Id: found by the external id, else created (see the module docs).
    async fn contact_id(&self, contact: &Contact) -> Result<String, ConnectorError> {
        let digits = digits_of(contact).ok_or_else(no_number)?;
        if let Some(id) = self
            .client()
            .contact_by_external_id(self.field(), &digits)
            .await?
        {
            return Ok(id);
        }
        let e164 = format!("+{digits}");
        let (first, last) = contact_name(contact, &e164);
        let mut body = json!({
            "LastName": last,
            "Phone": e164,
            "MobilePhone": e164,
        });
        if let Some(first) = first {
            body["FirstName"] = Value::from(first);
        }
        if let Some(account) = &self.config().account_id {
            body["AccountId"] = Value::from(account.trim());
        }
        let (id, created) = self
            .client()
            .upsert_contact(self.field(), &digits, &body)
            .await?;
        if !created {
            tracing::debug!("The Salesforce contact appeared while it was being created.");
        }
        Ok(id)
    }

    /// The external id field exists on Contact and is an External ID.
    async fn check_contact_field(&self) -> Result<(), ConnectorError> {
        let describe = self.client().describe("Contact").await?;
        let field = self.field();
        let found = describe["fields"].as_array().and_then(|fields| {
            fields.iter().find(|f| {
                f["name"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case(field))
            })
        });
        let Some(found) = found else {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "salesforce: Contact has no field {field} that the connected app's run-as \
                     user can see: create a Text field marked \"External ID\" and \"Unique\" \
                     (or set external_id_field), and give the user access to it"
                ),
            });
        };
        if found["externalId"].as_bool() != Some(true) {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "salesforce: the Contact field {field} is not marked \"External ID\": edit \
                     the field and tick \"External ID\" and \"Unique\""
                ),
            });
        }
        if found["unique"].as_bool() != Some(true) {
            tracing::warn!(
                field,
                "The Salesforce Contact field is not Unique: duplicates may appear, and upserts \
                 need the \"View All Data\" permission."
            );
        }
        Ok(())
    }

    // ---- cases ----------------------------------------------------------------------------

    /// The configured Case picklist values exist (a missing value of a restricted picklist is
    /// an error, of another picklist a warning).
    async fn check_case_fields(&self) -> Result<(), ConnectorError> {
        let describe = self.client().describe("Case").await?;
        let config = self.config();
        let mut wanted = vec![
            ("Origin", "case_origin", config.case_origin.trim()),
            ("Status", "case_status_new", config.case_status_new.trim()),
            (
                "Status",
                "case_status_reopened",
                config.case_status_reopened.trim(),
            ),
        ];
        if let Some(priority) = &config.case_priority {
            wanted.push(("Priority", "case_priority", priority.trim()));
        }
        let fields = describe["fields"].as_array().cloned().unwrap_or_default();
        for (name, key, value) in wanted {
            let Some(field) = fields.iter().find(|f| f["name"].as_str() == Some(name)) else {
                continue;
            };
            let values: Vec<&str> = field["picklistValues"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["active"].as_bool() != Some(false))
                .filter_map(|v| v["value"].as_str())
                .collect();
            if values.contains(&value) {
                continue;
            }
            if field["restrictedPicklist"].as_bool() == Some(true) {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "salesforce: {key} = \"{value}\" is not a value of the Case {name} \
                         picklist: add it (Setup → Object Manager → Case → Fields & \
                         Relationships → {name}) or change {key}"
                    ),
                });
            }
            tracing::warn!(
                key,
                value,
                "The value is not in the Salesforce Case picklist; cases will show it as an \
                 inactive value. Add it to the picklist."
            );
        }
        Ok(())
    }

    fn case_fields(lookup: bool) -> &'static [&'static str] {
        if lookup {
            &["Id", "Status", "IsClosed", "ClosedDate", "Description"]
        } else {
            &["Id", "Status", "IsClosed", "ClosedDate"]
        }
    }

    /// The recorded case; `None` when it no longer exists.
    async fn case(&self, id: &str, lookup: bool) -> Result<Option<CaseState>, ConnectorError> {
        let what = "salesforce: reading the case";
        match self
            .client()
            .record("Case", id, Self::case_fields(lookup), what)
            .await?
        {
            None => Ok(None),
            Some(record) => {
                CaseState::from_record(&record)
                    .map(Some)
                    .ok_or_else(|| ConnectorError::Permanent {
                        reason: format!("{what}: unexpected answer from Salesforce"),
                    })
            }
        }
    }

    /// The contact's cases with the configured origin, newest first.
    async fn contact_cases(
        &self,
        contact_id: &str,
        lookup: bool,
    ) -> Result<Vec<CaseState>, ConnectorError> {
        let soql = format!(
            "SELECT {} FROM Case WHERE ContactId = {} AND Origin = {} ORDER BY CreatedDate DESC \
             LIMIT {CASES_READ}",
            Self::case_fields(lookup).join(", "),
            soql::literal(contact_id),
            soql::literal(self.config().case_origin.trim()),
        );
        let records = self
            .client()
            .query(&soql, "salesforce: looking for the contact's cases", |_| {
                true
            })
            .await?;
        Ok(records.iter().filter_map(CaseState::from_record).collect())
    }

    fn disposition(&self, case: &CaseState) -> Disposition {
        if !case.is_closed {
            return Disposition::Comment;
        }
        let days = self.config().reopen_within_days;
        let window = chrono::Duration::days(i64::from(days));
        match case.closed_date {
            Some(closed) if days > 0 && Utc::now() - closed < window => Disposition::Reopen,
            _ => Disposition::Replace,
        }
    }

    /// Whether a comment of the case carries `marker`.
    async fn comment_with_marker(&self, case: &str, marker: &str) -> Result<bool, ConnectorError> {
        let soql = format!(
            "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = {} AND CommentBody LIKE {} \
             LIMIT 10",
            soql::literal(case),
            soql::contains_pattern(marker),
        );
        let records = self
            .client()
            .query(
                &soql,
                "salesforce: looking for the message in the case",
                |_| true,
            )
            .await?;
        // LIKE ignores case; message ids do not.
        Ok(records.iter().any(|r| {
            r["CommentBody"]
                .as_str()
                .is_some_and(|body| body.contains(marker))
        }))
    }

    fn public(&self) -> bool {
        match self.config().customer_messages {
            CustomerMessages::Public => true,
            CustomerMessages::Private => false,
        }
    }

    /// The `ContentVersion` subrequest of one file published to `parent`.
    fn file_request(
        &self,
        index: usize,
        attachment: &Attachment,
        parent: &str,
        message: &InboundMessage,
    ) -> Value {
        let name = file_name(&attachment.filename);
        json!({
            "method": "POST",
            "url": self.client().data_path(&["sobjects", "ContentVersion"]),
            "referenceId": format!("file{index}"),
            "body": {
                "Title": name,
                "PathOnClient": name,
                "Description": format!("From WhatsApp {}", marker(&message.id)),
                "VersionData": base64::engine::general_purpose::STANDARD.encode(&attachment.data),
                "FirstPublishLocationId": parent,
            },
        })
    }

    /// The entry text for `message` and the files that go with it (the media that fit, and
    /// the full text when the entry had to shorten it).
    fn entry_and_files<'a>(
        &self,
        conversation: &Conversation,
        message: &'a InboundMessage,
        slots: usize,
        max: usize,
        unit: Unit,
    ) -> (String, Vec<std::borrow::Cow<'a, Attachment>>) {
        // One slot stays free for the full text.
        let (inline, skipped) = split_files(&message.attachments, slots.saturating_sub(1));
        let (text, shortened) = case_entry(conversation, message, &skipped, max, unit);
        let mut files: Vec<std::borrow::Cow<'a, Attachment>> =
            inline.into_iter().map(std::borrow::Cow::Borrowed).collect();
        if shortened {
            files.push(std::borrow::Cow::Owned(Attachment {
                filename: FULL_TEXT_FILE.to_owned(),
                mime_type: "text/plain".to_owned(),
                data: message.text.trim().as_bytes().to_vec(),
            }));
        }
        (text, files)
    }

    /// Adds the message to an existing case: one composite request with the reopening (if
    /// due), the comment and the files.
    async fn add_comment(
        &self,
        case: &CaseState,
        reopen: bool,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<(), ConnectorError> {
        let mut requests = Vec::new();
        if reopen {
            requests.push(json!({
                "method": "PATCH",
                "url": self.client().data_path(&["sobjects", "Case", &case.id]),
                "referenceId": "reopenCase",
                "body": { "Status": self.config().case_status_reopened.trim() },
            }));
        }
        let slots = COMPOSITE_LIMIT - requests.len() - 1;
        let (body, files) =
            self.entry_and_files(conversation, message, slots, COMMENT_MAX_BYTES, Unit::Bytes);
        requests.push(json!({
            "method": "POST",
            "url": self.client().data_path(&["sobjects", "CaseComment"]),
            "referenceId": "comment",
            "body": {
                "ParentId": case.id,
                "CommentBody": body,
                "IsPublished": self.public(),
            },
        }));
        for (index, file) in files.iter().enumerate() {
            requests.push(self.file_request(index, file, &case.id, message));
        }
        self.client()
            .composite(requests, "salesforce: adding the message to the case")
            .await
            .map(drop)
    }

    /// Opens a case for the contact with the message as its description: one composite
    /// request with the case and the files. The new case's Id.
    async fn open_case(
        &self,
        contact_id: &str,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<String, ConnectorError> {
        let config = self.config();
        let (description, files) = self.entry_and_files(
            conversation,
            message,
            COMPOSITE_LIMIT - 1,
            DESCRIPTION_MAX_CHARS,
            Unit::Chars,
        );
        let mut case = json!({
            "Subject": case_subject(&conversation.contact),
            "Description": description,
            "ContactId": contact_id,
            "Origin": config.case_origin.trim(),
            "Status": config.case_status_new.trim(),
        });
        if let Some(priority) = &config.case_priority {
            case["Priority"] = Value::from(priority.trim());
        }
        if let Some(owner) = &config.case_owner_id {
            case["OwnerId"] = Value::from(owner.trim());
        }
        let mut requests = vec![json!({
            "method": "POST",
            "url": self.client().data_path(&["sobjects", "Case"]),
            "referenceId": "newCase",
            "body": case,
        })];
        for (index, file) in files.iter().enumerate() {
            requests.push(self.file_request(index, file, "@{newCase.id}", message));
        }
        let what = "salesforce: opening the case";
        let responses = self.client().composite(requests, what).await?;
        responses
            .iter()
            .find(|r: &&SubResponse| r.reference == "newCase")
            .and_then(|r| r.body.get("id"))
            .and_then(Value::as_str)
            .filter(|id| is_record_id(id))
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!("{what}: Salesforce did not return the new case's Id"),
            })
    }

    /// Writes into `case` unless (with `lookup`) the marker is already there.
    async fn continue_case(
        &self,
        case: &CaseState,
        disposition: Disposition,
        lookup: bool,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<Delivered, ConnectorError> {
        if lookup {
            let marker = marker(&message.id);
            if case
                .description
                .as_deref()
                .is_some_and(|d| d.contains(&marker))
            {
                return Ok(delivered(&case.id, true, true));
            }
            if self.comment_with_marker(&case.id, &marker).await? {
                return Ok(delivered(&case.id, false, true));
            }
        }
        self.add_comment(
            case,
            disposition == Disposition::Reopen,
            conversation,
            message,
        )
        .await?;
        Ok(delivered(&case.id, false, false))
    }

    // ---- replies --------------------------------------------------------------------------

    /// Published comments on the configured origin's cases not written by the integration
    /// user: the SOQL condition.
    async fn reply_condition(&self) -> Result<String, ConnectorError> {
        let own = self.client().own_user().await?;
        Ok(format!(
            "IsPublished = true AND CreatedById != {} AND Parent.Origin = {}",
            soql::literal(&own),
            soql::literal(self.config().case_origin.trim()),
        ))
    }

    async fn scan(&self, cursor: &Cursor) -> Result<(Vec<AgentReply>, Cursor), ConnectorError> {
        let soql = format!(
            "SELECT Id, ParentId, CommentBody, CreatedDate FROM CaseComment WHERE {} AND \
             CreatedDate >= {} ORDER BY CreatedDate, Id",
            self.reply_condition().await?,
            soql::datetime(cursor.window_start()),
        );
        let records = self
            .client()
            .query(&soql, "salesforce: reading agents' replies", |_| false)
            .await?;
        let mut watermark = cursor.watermark;
        let mut replies = Vec::new();
        let mut recent: Vec<(String, DateTime<Utc>)> = Vec::new();
        for record in &records {
            let Some(id) = record["Id"].as_str().filter(|id| is_record_id(id)) else {
                continue;
            };
            let Some(created) = record["CreatedDate"]
                .as_str()
                .and_then(soql::parse_datetime)
            else {
                continue;
            };
            watermark = watermark.max(created);
            recent.push((id.to_owned(), created));
            if cursor.seen.contains(id) {
                continue;
            }
            let Some(case) = record["ParentId"].as_str().filter(|id| is_record_id(id)) else {
                continue;
            };
            let text = record["CommentBody"].as_str().unwrap_or_default().trim();
            if text.is_empty() || text.contains(MARKER_PREFIX) {
                continue;
            }
            replies.push(AgentReply {
                id: format!("salesforce-casecomment-{id}"),
                ticket: TicketRef(case.to_owned()),
                text: text.to_owned(),
                at: created,
            });
        }
        let mut next = Cursor {
            watermark,
            seen: BTreeSet::new(),
        };
        // Remember the replies the next window still covers; older ones are never read again.
        let window = next.window_start();
        let returned: HashSet<&str> = replies
            .iter()
            .filter_map(|r| r.id.strip_prefix("salesforce-casecomment-"))
            .collect();
        next.seen = recent
            .into_iter()
            .filter(|(id, at)| {
                *at >= window && (cursor.seen.contains(id) || returned.contains(id.as_str()))
            })
            .map(|(id, _)| id)
            .collect();
        Ok((replies, next))
    }

    /// The position now: the newest reply's time, with every reply of the window before it
    /// marked as returned.
    async fn position(&self) -> Result<Cursor, ConnectorError> {
        let soql = format!(
            "SELECT Id, CreatedDate FROM CaseComment WHERE {} ORDER BY CreatedDate DESC, Id DESC \
             LIMIT 1",
            self.reply_condition().await?,
        );
        let newest = self
            .client()
            .query(&soql, "salesforce: reading the newest reply", |_| true)
            .await?;
        let watermark = newest
            .first()
            .and_then(|r| r["CreatedDate"].as_str())
            .and_then(soql::parse_datetime)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let start = Cursor {
            watermark,
            seen: BTreeSet::new(),
        };
        let (_skipped, cursor) = self.scan(&start).await?;
        Ok(cursor)
    }

    // ---- tasks ----------------------------------------------------------------------------

    /// Which of the wanted markers are in the descriptions of the contact's Tasks created
    /// since `since`.
    async fn present_task_markers(
        &self,
        contact: &str,
        since: DateTime<Utc>,
        wanted: &HashSet<String>,
    ) -> Result<HashSet<String>, ConnectorError> {
        let soql = format!(
            "SELECT Id, Description FROM Task WHERE WhoId = {} AND CreatedDate >= {} ORDER BY \
             CreatedDate DESC",
            soql::literal(contact),
            soql::datetime(since),
        );
        let found_in = |records: &[Value]| -> HashSet<String> {
            let mut found = HashSet::new();
            for description in records.iter().filter_map(|r| r["Description"].as_str()) {
                for marker in wanted {
                    if description.contains(marker.as_str()) {
                        found.insert(marker.clone());
                    }
                }
            }
            found
        };
        let records = self
            .client()
            .query(
                &soql,
                "salesforce: looking for the messages among the contact's tasks",
                |records| found_in(records).len() == wanted.len(),
            )
            .await?;
        Ok(found_in(&records))
    }

    fn task_record(
        &self,
        contact: &str,
        conversation: &Conversation,
        activity: &Activity,
    ) -> Value {
        json!({
            "attributes": { "type": "Task" },
            "Subject": task_subject(&conversation.contact, activity.direction),
            "Description": task_description(conversation, activity),
            "WhoId": contact,
            "ActivityDate": activity.at.format("%Y-%m-%d").to_string(),
            "Status": "Completed",
            "TaskSubtype": "Task",
        })
    }
}

#[async_trait::async_trait]
impl TicketSystem for SalesforceConnector {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        if digits_of(&conversation.contact).is_none() {
            return Err(no_number());
        }
        let lookup = context.maybe_delivered;

        // 1. The recorded case, if it can still take the message.
        if let Some(TicketRef(recorded)) = &context.ticket {
            let recorded = recorded.trim();
            if is_record_id(recorded) && recorded.starts_with("500") {
                if let Some(case) = self.case(recorded, lookup).await? {
                    let disposition = self.disposition(&case);
                    tracing::debug!(case = %case.id, status = %case.status, ?disposition, "Recorded Salesforce case.");
                    if disposition != Disposition::Replace {
                        return self
                            .continue_case(&case, disposition, lookup, conversation, message)
                            .await;
                    }
                }
            } else {
                tracing::warn!(
                    "The recorded ticket is not a Salesforce Case Id; looking for the contact's \
                     case."
                );
            }
        }

        // 2. The contact's open case, else a recently closed one: an earlier attempt may have
        //    opened it, or the daemon never recorded it.
        let contact_id = self.contact_id(&conversation.contact).await?;
        let cases = self.contact_cases(&contact_id, lookup).await?;
        let usable = cases.iter().find(|case| !case.is_closed).or_else(|| {
            cases
                .iter()
                .find(|case| self.disposition(case) == Disposition::Reopen)
        });
        if let Some(case) = usable {
            let disposition = self.disposition(case);
            return self
                .continue_case(case, disposition, lookup, conversation, message)
                .await;
        }

        // 3. A new case.
        let id = self.open_case(&contact_id, conversation, message).await?;
        Ok(delivered(&id, true, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client().ensure_session().await?;
        self.check_contact_field().await?;
        self.check_case_fields().await?;
        // Agents' replies are told apart from wabridge's own comments by this user.
        self.client().own_user().await.map(drop)
    }

    async fn replies_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<AgentReply>, Option<String>), ConnectorError> {
        let parsed = cursor.and_then(Cursor::parse);
        let Some(cursor) = parsed else {
            if cursor.is_some() {
                tracing::warn!("Unreadable Salesforce reply cursor; watching from now on.");
            }
            // First look: start from now, never replay old replies.
            let position = self.position().await?;
            return Ok((Vec::new(), Some(position.render())));
        };
        let (replies, next) = self.scan(&cursor).await?;
        Ok((replies, Some(next.render())))
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let case = ticket.0.trim();
        if !is_record_id(case) {
            return Err(ConnectorError::Permanent {
                reason: "salesforce: the ticket is not a Salesforce Case Id".to_owned(),
            });
        }
        let (body, _) = fit(
            "",
            text.trim(),
            "",
            "… (shortened)",
            COMMENT_MAX_BYTES,
            Unit::Bytes,
        );
        self.client()
            .create(
                "CaseComment",
                &json!({ "ParentId": case, "CommentBody": body, "IsPublished": false }),
                "salesforce: adding an internal note to the case",
            )
            .await
            .map(drop)
    }
}

#[async_trait::async_trait]
impl Crm for SalesforceConnector {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client().ensure_session().await?;
        self.check_contact_field().await
    }

    async fn upsert_contact(&self, contact: &Contact) -> Result<CrmContactId, ConnectorError> {
        self.contact_id(contact).await.map(CrmContactId)
    }

    async fn log_activity(
        &self,
        contact: &CrmContactId,
        conversation: &Conversation,
        activities: &[Activity],
        maybe_delivered: bool,
    ) -> Result<(), ConnectorError> {
        let contact = contact.0.trim();
        if contact.is_empty()
            || contact.len() > 18
            || !contact.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ConnectorError::Permanent {
                reason: "salesforce: the contact id is not a Salesforce record Id".to_owned(),
            });
        }
        // One Task per message id, in the order given.
        let mut seen = HashSet::new();
        let mut pending: Vec<&Activity> = activities
            .iter()
            .filter(|a| !a.id.trim().is_empty() && seen.insert(a.id.as_str()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }

        if maybe_delivered {
            let wanted: HashSet<String> = pending.iter().map(|a| marker(&a.id)).collect();
            let earliest = pending.iter().map(|a| a.at).min().unwrap_or_else(Utc::now);
            let since = earliest - chrono::Duration::hours(LOOKUP_SLACK_HOURS);
            let present = self.present_task_markers(contact, since, &wanted).await?;
            if !present.is_empty() {
                tracing::debug!(
                    present = present.len(),
                    of = wanted.len(),
                    "Some messages are already Tasks in Salesforce."
                );
            }
            pending.retain(|a| !present.contains(&marker(&a.id)));
        }

        for chunk in pending.chunks(COLLECTION_LIMIT) {
            let records = chunk
                .iter()
                .map(|activity| self.task_record(contact, conversation, activity))
                .collect();
            self.client()
                .create_collection(records, "salesforce: logging the messages as tasks")
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
