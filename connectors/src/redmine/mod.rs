//! Redmine 4/5 over its REST API: one issue per conversation, one journal note per message.
//!
//! - A conversation's first message opens an issue in the configured project: subject
//!   `WhatsApp: <profile name> (+<E.164>)` (the BSUID when the number is withheld), the message
//!   as its description, the number in `phone_custom_field_id` when configured.
//! - Every later message is a journal note (`PUT /issues/{id}.json`), private when
//!   `private_messages` is set. Media are uploaded first (`POST /uploads.json`) and attached to
//!   the same create or note. A file Redmine refuses (too large, forbidden extension) is named
//!   in the note instead of failing the message.
//! - Each entry says who wrote it and when, then the text, and ends with the marker
//!   `[wa:<message id>]`.
//! - Without a recorded issue, or when the recorded one cannot take the message, the
//!   conversation's issue is looked up by subject (the number or BSUID, checked again on our
//!   side) before a new one is opened, so a conversation keeps one open issue.
//! - A closed issue is reopened (status `reopen_status_id`, in the same call as the note) when
//!   it was closed less than `reopen_within_days` ago, else a new issue is opened.
//! - Agents' replies are the public notes written by any user but the API key's own.
//!
//! **Once in effect.** With [`DeliveryContext::maybe_delivered`] the connector reads the issue
//! it is about to write to with its journals (`include=journals`) and writes nothing when the
//! marker is in the description or a note; a conversation without a usable recorded issue is
//! always looked up by subject first, so the issue an earlier attempt opened is found. Without
//! `maybe_delivered` no marker lookup is made: a message for a recorded open issue costs one
//! read and one write (plus one upload per file).
//!
//! **Agents' replies** are polled: the issues of the project changed since the cursor's
//! watermark (minus [`REPLY_OVERLAP`]) are read with their journals. The cursor is
//! `<watermark>|<journal ids>`: Redmine's newest `updated_on` seen, and the replies already
//! returned from the overlap window, so each reply is returned once even when it was written
//! while the previous poll was running.
//!
//! **Routing** ([`TicketSystem::route`]) sets the issue's category, assignee and priority, notes
//! tags, and on a hand-over reopens the issue with a private note; see the `routing` module.

mod client;
mod config;
mod routing;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::{
    AgentReply, Attachment, ConnectorError, Contact, Conversation, Delivered, DeliveryContext,
    InboundMessage, TicketRef, TicketRouting, TicketSystem,
};
use client::{timestamp, Enumeration, Issue, Journal, RedmineClient, Upload, PAGE};
pub use config::{
    RedmineConfig, DEFAULT_PRIVATE_MESSAGES, DEFAULT_REOPEN_WITHIN_DAYS, DEFAULT_TIMEOUT_SECS,
};
pub use routing::{routing_note, ROUTING_MARKER};

/// The longest subject Redmine stores.
const MAX_SUBJECT_CHARS: usize = 255;

/// How far back every poll for agents' replies looks again before its cursor. Covers a note
/// written while the previous poll was reading other issues, notes committed a moment late, and
/// Redmine's one-second timestamps; replies seen in this window are remembered in the cursor.
pub const REPLY_OVERLAP: Duration = Duration::from_secs(60);

/// The prefix of every marker; notes carrying it are the connector's own.
const MARKER_PREFIX: &str = "[wa:";

/// The marker that ends every entry the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("{MARKER_PREFIX}{message_id}]")
}

/// What identifies the conversation in its issue's subject (as [`Contact::display`] shows it):
/// the E.164 number, else the BSUID.
pub fn conversation_term(contact: &Contact) -> Option<String> {
    if contact
        .wa_id
        .as_deref()
        .is_some_and(|digits| !digits.trim().is_empty())
    {
        return contact.e164();
    }
    contact
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|user| !user.is_empty())
        .map(str::to_owned)
}

/// The subject of a conversation's issue: `WhatsApp: Aisha (+96890000001)`, at most 255
/// characters (a long profile name is shortened, the number is kept), on one line.
pub fn issue_subject(contact: &Contact) -> String {
    let one_line = |text: &str| -> String {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let mut contact = contact.clone();
    contact.profile_name = contact.profile_name.as_deref().map(one_line);
    let subject = format!("WhatsApp: {}", contact.display());
    let excess = subject.chars().count().saturating_sub(MAX_SUBJECT_CHARS);
    if excess == 0 {
        return subject;
    }
    // Only a long profile name can push it over: shorten the name, keep the identity.
    if let Some(name) = contact.profile_name.as_deref() {
        let keep = name.chars().count().saturating_sub(excess + 1);
        let short: String = name.chars().take(keep).collect();
        contact.profile_name = Some(format!("{}…", short.trim_end()));
    }
    format!("WhatsApp: {}", contact.display())
        .chars()
        .take(MAX_SUBJECT_CHARS)
        .collect()
}

/// Whether `subject` names the conversation `term` as a whole word: `(+96890000001)` does,
/// `(+968900000012)` does not.
pub fn subject_mentions(subject: &str, term: &str) -> bool {
    if term.is_empty() {
        return false;
    }
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    subject.match_indices(term).any(|(at, _)| {
        let before = subject[..at].chars().next_back();
        let after = subject[at + term.len()..].chars().next();
        !before.is_some_and(|c| is_word(c) && !term.starts_with('+')) && !after.is_some_and(is_word)
    })
}

/// The text of one entry (the description or a note): who wrote when, the message, files
/// Redmine refused, and the marker.
pub fn entry_text(
    conversation: &Conversation,
    message: &InboundMessage,
    refused: &[String],
) -> String {
    let who = conversation.contact.display();
    let at = message.timestamp.format("%Y-%m-%d %H:%M:%S");
    let mut text = if message.kind == "text" {
        format!("{who} wrote on WhatsApp, {at} UTC:\n\n")
    } else {
        format!(
            "{who} sent a WhatsApp {} message, {at} UTC:\n\n",
            message.kind
        )
    };
    text.push_str(message.text.trim());
    text.push_str("\n\n");
    for line in refused {
        text.push_str(line);
        text.push('\n');
    }
    if !refused.is_empty() {
        text.push('\n');
    }
    text.push_str(&marker(&message.id));
    text
}

/// `Some(opened)` when the message's marker is in the issue: in its description (`true`: the
/// message opened it) or in a note (`false`).
fn marker_in(issue: &Issue, message: &InboundMessage) -> Option<bool> {
    let marker = marker(&message.id);
    if issue.description.contains(&marker) {
        return Some(true);
    }
    issue
        .journals
        .iter()
        .any(|journal| journal.notes.contains(&marker))
        .then_some(false)
}

/// Whether a journal is an agent's public reply (not ours, not private, not empty, no marker).
fn is_agent_reply(journal: &Journal, own_user: u64) -> bool {
    let notes = journal.notes.trim();
    !notes.is_empty()
        && !journal.private_notes
        && journal
            .user
            .as_ref()
            .is_some_and(|user| user.id != own_user)
        && !notes.contains(MARKER_PREFIX)
}

/// Where [`TicketSystem::replies_since`] stands: replies before `watermark - REPLY_OVERLAP` are
/// done; `seen` are the replies already returned from the overlap window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    watermark: DateTime<Utc>,
    seen: BTreeSet<u64>,
}

impl Cursor {
    /// `2026-11-27T06:16:52Z|12,15` (the journal ids may be empty: `…Z|`).
    fn parse(text: &str) -> Option<Cursor> {
        let (at, ids) = text.split_once('|')?;
        let watermark = DateTime::parse_from_rfc3339(at.trim())
            .ok()?
            .with_timezone(&Utc);
        let seen = ids
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| id.parse::<u64>().ok())
            .collect::<Option<BTreeSet<u64>>>()?;
        Some(Cursor { watermark, seen })
    }

    fn render(&self) -> String {
        let ids: Vec<String> = self.seen.iter().map(u64::to_string).collect();
        format!("{}|{}", timestamp(self.watermark), ids.join(","))
    }

    /// The start of the window a poll reads again.
    fn window_start(&self) -> DateTime<Utc> {
        let overlap = chrono::Duration::from_std(REPLY_OVERLAP).unwrap_or_default();
        self.watermark - overlap
    }
}

/// What the connector does with an issue that belongs to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Open: add the note.
    Note,
    /// Closed recently: add the note and reopen it in the same call.
    Reopen,
    /// Closed too long ago: open a new issue.
    Replace,
}

/// The Redmine connector (see the module docs).
pub struct RedmineConnector {
    config: RedmineConfig,
    client: RedmineClient,
    /// The API key's user id (its notes are never agents' replies), read once.
    own_user: OnceCell<u64>,
    /// The status reopened issues get, when not configured: read once.
    reopen_status: OnceCell<u64>,
    /// Routing: the active issue priorities, lowest first, read once.
    priorities: OnceCell<Vec<Enumeration>>,
    /// Routing: category names and logins resolved so far.
    names: routing::Names,
}

impl fmt::Debug for RedmineConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's key is a `Secret`; the client redacts its header.
        f.debug_struct("RedmineConnector")
            .field("config", &self.config)
            .field("client", &self.client)
            .finish()
    }
}

fn delivered(issue: u64, opened_ticket: bool, already_present: bool) -> Delivered {
    Delivered {
        ticket: TicketRef(issue.to_string()),
        opened_ticket,
        already_present,
    }
}

impl RedmineConnector {
    /// Builds the connector from a configuration that passed [`RedmineConfig::validate`] (no
    /// network call; use [`TicketSystem::check`] for that).
    pub fn new(config: RedmineConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("redmine: {}: {}", problem.field, problem.message),
            });
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = RedmineClient::new(&config.url, &config.api_key, timeout)?;
        Ok(RedmineConnector {
            config,
            client,
            own_user: OnceCell::new(),
            reopen_status: OnceCell::new(),
            priorities: OnceCell::new(),
            names: routing::Names::default(),
        })
    }

    fn project(&self) -> &str {
        self.config.project.trim()
    }

    fn disposition(&self, issue: &Issue) -> Disposition {
        if !issue.status.is_closed {
            return Disposition::Note;
        }
        let window = chrono::Duration::days(i64::from(self.config.reopen_within_days));
        match issue.closed_on.or(issue.updated_on) {
            Some(at) if self.config.reopen_within_days > 0 && Utc::now() - at < window => {
                Disposition::Reopen
            }
            _ => Disposition::Replace,
        }
    }

    async fn own_user(&self) -> Result<u64, ConnectorError> {
        self.own_user
            .get_or_try_init(|| self.client.current_user())
            .await
            .copied()
    }

    async fn reopen_status(&self) -> Result<u64, ConnectorError> {
        if let Some(id) = self.config.reopen_status_id {
            return Ok(u64::from(id));
        }
        self.reopen_status
            .get_or_try_init(|| self.client.first_open_status())
            .await
            .copied()
    }

    /// Uploads the message's files: the `uploads` entries to attach, and a line for each file
    /// Redmine refused.
    async fn upload(
        &self,
        attachments: &[Attachment],
    ) -> Result<(Vec<Value>, Vec<String>), ConnectorError> {
        let mut uploads = Vec::new();
        let mut refused = Vec::new();
        for attachment in attachments {
            let filename = match attachment.filename.trim() {
                "" => "attachment",
                name => name,
            };
            match self.client.upload(filename, &attachment.data).await? {
                Upload::Stored(token) => {
                    let mime = attachment.mime_type.trim();
                    uploads.push(json!({
                        "token": token,
                        "filename": filename,
                        "content_type": if mime.is_empty() { "application/octet-stream" } else { mime },
                    }));
                }
                Upload::Refused(why) => {
                    tracing::warn!(
                        bytes = attachment.data.len(),
                        "Redmine refused an attachment; the note names it instead."
                    );
                    refused.push(format!(
                        "(The attached file {filename}, {} bytes, could not be stored in \
                         Redmine: {why})",
                        attachment.data.len()
                    ));
                }
            }
        }
        Ok((uploads, refused))
    }

    /// Adds the message as a note to `issue`, reopening it when asked.
    async fn add_note(
        &self,
        issue: u64,
        conversation: &Conversation,
        message: &InboundMessage,
        reopen: bool,
    ) -> Result<(), ConnectorError> {
        let status = if reopen {
            Some(self.reopen_status().await?)
        } else {
            None
        };
        let (uploads, refused) = self.upload(&message.attachments).await?;
        let mut fields = json!({
            "notes": entry_text(conversation, message, &refused),
            "private_notes": self.config.private_messages,
        });
        if let Some(status) = status {
            fields["status_id"] = Value::from(status);
        }
        if !uploads.is_empty() {
            fields["uploads"] = Value::Array(uploads);
        }
        self.client
            .update_issue(
                issue,
                &json!({ "issue": fields }),
                "redmine: adding the message to the issue",
            )
            .await
    }

    /// Opens the conversation's issue with the message as its description.
    async fn open_issue(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
    ) -> Result<u64, ConnectorError> {
        let (uploads, refused) = self.upload(&message.attachments).await?;
        let mut fields = json!({
            "project_id": self.project(),
            "subject": issue_subject(&conversation.contact),
            "description": entry_text(conversation, message, &refused),
        });
        if let Some(tracker) = self.config.tracker_id {
            fields["tracker_id"] = Value::from(tracker);
        }
        if let Some(priority) = self.config.priority_id {
            fields["priority_id"] = Value::from(priority);
        }
        if let (Some(field), Some(e164)) = (
            self.config.phone_custom_field_id,
            conversation.contact.e164(),
        ) {
            fields["custom_fields"] = json!([{ "id": field, "value": e164 }]);
        }
        if !uploads.is_empty() {
            fields["uploads"] = Value::Array(uploads);
        }
        self.client.create_issue(&json!({ "issue": fields })).await
    }

    /// The conversation's issue found by subject (the newest open one, else the newest closed
    /// one), leaving out `except`.
    async fn find_issue(
        &self,
        term: &str,
        except: Option<u64>,
    ) -> Result<Option<Issue>, ConnectorError> {
        let candidates: Vec<Issue> = self
            .client
            .issues_with_subject(self.project(), term)
            .await?
            .into_iter()
            .filter(|issue| subject_mentions(&issue.subject, term) && Some(issue.id) != except)
            .collect();
        let open = candidates.iter().position(|issue| !issue.status.is_closed);
        Ok(match open {
            Some(index) => candidates.into_iter().nth(index),
            None => candidates.into_iter().next(),
        })
    }

    /// One pass over the issues changed since the cursor's window: the agents' replies not
    /// returned yet, oldest first, and the cursor after them (which remembers them). With
    /// `until`, journals written after it are left alone (neither returned nor remembered) and
    /// the watermark stays at or before it.
    async fn scan(
        &self,
        cursor: &Cursor,
        until: Option<DateTime<Utc>>,
    ) -> Result<(Vec<AgentReply>, Cursor), ConnectorError> {
        let own_user = self.own_user().await?;
        let since = cursor.window_start();
        let mut watermark = cursor.watermark;
        let mut replies = Vec::new();
        // Every journal of the window (reply or not) and when it was written.
        let mut recent = BTreeMap::new();
        let mut fetched = BTreeSet::new();
        let mut offset = 0;
        loop {
            // Sorted by id, so issues changing meanwhile shift nothing out of the listing.
            let page = self
                .client
                .issues_updated(self.project(), Some(since), offset, PAGE)
                .await?;
            for listed in &page.issues {
                if let Some(updated) = listed.updated_on {
                    watermark = watermark.max(until.map_or(updated, |until| updated.min(until)));
                }
                if !fetched.insert(listed.id) {
                    continue;
                }
                // Gone since it was listed: nothing to read.
                let Some(issue) = self.client.issue(listed.id, true).await? else {
                    continue;
                };
                for journal in &issue.journals {
                    let Some(created) = journal
                        .created_on
                        .filter(|at| *at >= since && until.is_none_or(|until| *at <= until))
                    else {
                        continue;
                    };
                    recent.insert(journal.id, created);
                    if cursor.seen.contains(&journal.id) || !is_agent_reply(journal, own_user) {
                        continue;
                    }
                    replies.push((
                        journal.id,
                        AgentReply {
                            id: format!("redmine-journal-{}", journal.id),
                            ticket: TicketRef(issue.id.to_string()),
                            text: journal.notes.trim().to_owned(),
                            at: created,
                        },
                    ));
                }
            }
            offset += page.issues.len();
            if page.issues.is_empty() || offset >= page.total_count {
                break;
            }
        }
        replies.sort_by_key(|(id, _)| *id);
        let mut next = Cursor {
            watermark,
            seen: BTreeSet::new(),
        };
        // Remember the replies the next window still covers; older ones are never read again.
        let window = next.window_start();
        next.seen = cursor
            .seen
            .iter()
            .chain(replies.iter().map(|(id, _)| id))
            .filter(|id| recent.get(id).is_some_and(|at| *at >= window))
            .copied()
            .collect();
        Ok((replies.into_iter().map(|(_, reply)| reply).collect(), next))
    }

    /// The position now: the project's newest change, with every reply of the window before it
    /// marked as returned.
    async fn position(&self) -> Result<Cursor, ConnectorError> {
        let newest = self
            .client
            .issues_updated(self.project(), None, 0, 1)
            .await?;
        let watermark = newest
            .issues
            .first()
            .and_then(|issue| issue.updated_on)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let start = Cursor {
            watermark,
            seen: BTreeSet::new(),
        };
        // Only what existed when the position was taken: a reply written while this first scan
        // runs (it reads every issue of the window, which takes a while) is a new one.
        let (_skipped, cursor) = self.scan(&start, Some(watermark)).await?;
        Ok(cursor)
    }
}

#[async_trait::async_trait]
impl TicketSystem for RedmineConnector {
    fn kind(&self) -> &'static str {
        "redmine"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        let term =
            conversation_term(&conversation.contact).ok_or_else(|| ConnectorError::Permanent {
                reason: "redmine: the contact has neither a phone number nor a BSUID".to_owned(),
            })?;
        let lookup = context.maybe_delivered;

        // 1. The recorded issue, if it can still take the message.
        let recorded = context.ticket.as_ref().and_then(|TicketRef(id)| {
            let parsed = id.trim().parse::<u64>().ok().filter(|id| *id > 0);
            if parsed.is_none() {
                tracing::warn!(
                    "The recorded ticket is not a Redmine issue number; looking for the \
                     conversation's issue."
                );
            }
            parsed
        });
        if let Some(id) = recorded {
            if let Some(issue) = self.client.issue(id, lookup).await? {
                let disposition = self.disposition(&issue);
                tracing::debug!(
                    issue = issue.id,
                    status = issue.status.id,
                    ?disposition,
                    "Recorded Redmine issue."
                );
                if disposition != Disposition::Replace {
                    if lookup {
                        if let Some(opened) = marker_in(&issue, message) {
                            return Ok(delivered(issue.id, opened, true));
                        }
                    }
                    let reopen = disposition == Disposition::Reopen;
                    self.add_note(issue.id, conversation, message, reopen)
                        .await?;
                    return Ok(delivered(issue.id, false, false));
                }
            }
        }

        // 2. The conversation's issue by subject: one an agent or an earlier attempt opened,
        //    or one the daemon did not record.
        if let Some(found) = self.find_issue(&term, recorded).await? {
            if lookup {
                if let Some(full) = self.client.issue(found.id, true).await? {
                    if let Some(opened) = marker_in(&full, message) {
                        return Ok(delivered(full.id, opened, true));
                    }
                }
            }
            let disposition = self.disposition(&found);
            tracing::debug!(
                issue = found.id,
                status = found.status.id,
                ?disposition,
                "Conversation's Redmine issue found by subject."
            );
            if disposition != Disposition::Replace {
                let reopen = disposition == Disposition::Reopen;
                self.add_note(found.id, conversation, message, reopen)
                    .await?;
                return Ok(delivered(found.id, false, false));
            }
        }

        // 3. A new issue.
        let id = self.open_issue(conversation, message).await?;
        Ok(delivered(id, true, false))
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        // A wrong key reads a public project as the anonymous user: prove the key first.
        self.own_user().await?;
        let project = self.client.project(self.project()).await?;
        let what = "redmine: checking the project";
        if !project
            .enabled_modules
            .iter()
            .any(|module| module.name == "issue_tracking")
        {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: the module \"Issue tracking\" is not enabled in project `{}` \
                     (project Settings → Modules)",
                    self.project()
                ),
            });
        }
        if let Some(tracker) = self.config.tracker_id {
            let enabled: Vec<String> = project
                .trackers
                .iter()
                .map(|tracker| tracker.id.to_string())
                .collect();
            if !project.trackers.iter().any(|t| t.id == u64::from(tracker)) {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "{what}: tracker_id {tracker} is not enabled in project `{}` (enabled: \
                         {}); Redmine would silently use another tracker",
                        self.project(),
                        enabled.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    async fn replies_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<AgentReply>, Option<String>), ConnectorError> {
        let parsed = cursor.and_then(Cursor::parse);
        let Some(cursor) = parsed else {
            if cursor.is_some() {
                tracing::warn!("Unreadable Redmine reply cursor; watching from now on.");
            }
            // First look: start from now, never replay old replies.
            let position = self.position().await?;
            return Ok((Vec::new(), Some(position.render())));
        };
        let (replies, next) = self.scan(&cursor, None).await?;
        Ok((replies, Some(next.render())))
    }

    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let id = ticket
            .0
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "redmine: the ticket is not a Redmine issue number".to_owned(),
            })?;
        let body = json!({ "issue": { "notes": text, "private_notes": true } });
        self.client
            .update_issue(id, &body, "redmine: adding an internal note")
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
}

#[cfg(test)]
mod tests;
