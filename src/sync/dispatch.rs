//! The dispatcher: turns accepted webhook bodies into work.
//!
//! Each inbox record (the bodies of one group commit) is handled in one transaction: removed
//! from the inbox, each body either quarantined (unparseable) or split into events — messages become one job per destination
//! (deduplicated by wamid), statuses update the status tree (deduplicated by id and status,
//! never moving backwards), other updates are recorded. A crash before the transaction leaves
//! the body in the inbox; after it, everything is there: nothing is lost or done twice.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use wabridge_connectors::Conversation;

use crate::mapping::{MappingSet, Outcome, SendIntent};
use crate::policy::{ConsentEvent, ContactState};
use crate::queue::{JobKey, NewJob};
use crate::store::AuditEntry;
use crate::store::{batch, encode, Quarantined, StatusRecord, Store, StoreError, UpdateRecord};
use crate::sync::consent::{self, PolicySettings};
use crate::whatsapp::model::{self, Event};
use crate::whatsapp::sender::Action;
use crate::whatsapp::templates::Template;

/// The queue prefix of outbound sends (a destination name no connector may take).
pub const OUTBOX: &str = "outbox";

/// What a job asks a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobPayload {
    /// Send a template decided by a mapping (through the policy gate, then the Graph API).
    Outbound {
        /// The business number to send from.
        phone_number_id: String,
        /// What to send.
        intent: SendIntent,
    },
    /// Confirm an opt-out to the customer (free-form: only inside the window).
    Confirmation {
        /// `{phone_number_id}:{contact}`.
        conversation: String,
        /// The confirmation text.
        text: String,
        /// The customer's STOP message (idempotency).
        message_id: String,
    },
    /// Send an agent's reply from a ticket (through the policy gate).
    Reply {
        /// The connector it came from.
        destination: String,
        /// `{phone_number_id}:{contact}`.
        conversation: String,
        /// The reply.
        reply: wabridge_connectors::AgentReply,
    },
    /// Write an internal note in the conversation's ticket at a destination (e.g. a message
    /// Meta reported as failed). Skipped when the destination has no ticket for it yet.
    Note {
        /// The connector name.
        destination: String,
        /// `{phone_number_id}:{contact}`.
        conversation: String,
        /// The note.
        text: String,
    },
    /// Log a message on the contact's timeline in a CRM (the contact is upserted first).
    Activity {
        /// The CRM connector's name.
        destination: String,
        /// The conversation.
        conversation: Conversation,
        /// The message.
        activity: wabridge_connectors::Activity,
    },
    /// Read a request a connector's system pushed (verified before it was stored): agents'
    /// replies become sends, CRM events go to the mappings.
    ConnectorWebhook {
        /// The connector's name.
        connector: String,
        /// The body as received, base64.
        body: String,
    },
    /// Route a customer message: the rules decide department, assignee, tags, hand-over and
    /// the bot's replies (queued just before the message's delivery to the first destination).
    Route {
        /// The conversation.
        conversation: Conversation,
        /// The message as Meta sent it.
        message: model::Message,
        /// Whether it opens a conversation (no customer message in the 24 hours before).
        first_message: bool,
    },
    /// Apply what routing decided for a message to the conversation's ticket (queued just
    /// after the message's delivery to the first destination).
    RouteTicket {
        /// `{phone_number_id}:{contact}`.
        conversation: String,
        /// The routed message.
        message_id: String,
    },
    /// Send one of the bot's replies (free-form: only inside the window).
    Bot {
        /// `{phone_number_id}:{contact}`.
        conversation: String,
        /// The customer message it answers (idempotency).
        message_id: String,
        /// Its position among the replies to that message.
        index: usize,
        /// What to send.
        reply: crate::routing::BotReply,
    },
    /// Deliver a customer message to a destination.
    Inbound {
        /// The connector name (`[connectors.<name>]`).
        destination: String,
        /// The conversation.
        conversation: Conversation,
        /// The message as Meta sent it.
        message: model::Message,
    },
}

/// What the dispatcher needs besides the store.
pub struct DispatchContext<'a> {
    /// Ticketing connector names: every customer message goes to each.
    pub destinations: &'a [String],
    /// CRM connector names: every message is logged on the contact's timeline in each.
    pub crms: &'a [String],
    /// Whether routing rules are configured (every customer message is then routed).
    pub routing: bool,
    /// Consent keywords.
    pub consent: &'a PolicySettings,
    /// Mapping files: events become template sends.
    pub mappings: &'a MappingSet,
    /// The business number outbound sends go from (the first of `[[whatsapp.numbers]]`).
    pub phone_number_id: Option<&'a str>,
}

/// Result of one drain.
#[derive(Debug, Default)]
pub struct Drained {
    /// Bodies handled.
    pub bodies: usize,
    /// Jobs created (already durable).
    pub jobs: Vec<JobKey>,
    /// Bodies quarantined.
    pub quarantined: usize,
    /// Events skipped as duplicates.
    pub duplicates: usize,
}

/// Dispatches every record in the inbox, then flushes once.
pub async fn drain(store: &Store, context: &DispatchContext<'_>) -> Result<Drained, StoreError> {
    let mut drained = Drained::default();
    loop {
        let records: Vec<(u64, Vec<u8>)> = store
            .inbox
            .iter()
            .take(64)
            .map(|item| item.map(|(k, v)| (crate::store::id_of(&k), v.to_vec())))
            .collect::<Result<_, _>>()?;
        if records.is_empty() {
            break;
        }
        for (id, record) in records {
            dispatch_record(store, context, id, &record, Utc::now(), &mut drained)?;
        }
    }
    if drained.bodies > 0 {
        // New jobs are durable before their first attempt, so a first attempt in this
        // process cannot have happened before a crash.
        store.durable().await?;
    }
    Ok(drained)
}

/// What one body of a record became.
enum Parsed<'a> {
    Events(Vec<Event>),
    /// A connector's pushed request (`connector:<name>`), read later by a job.
    ConnectorWebhook {
        connector: &'a str,
        raw: &'a [u8],
    },
    /// A CRM/shop event and what each mapping of its source makes of it.
    Outbound(Vec<Outcome>),
    Quarantine {
        raw: &'a [u8],
        reason: String,
    },
}

/// Parses one body according to where it came from.
fn parse_body<'a>(origin: &'a str, raw: &'a [u8], context: &DispatchContext<'_>) -> Parsed<'a> {
    if let Some(connector) = origin.strip_prefix(batch::CONNECTOR_PREFIX) {
        return Parsed::ConnectorWebhook { connector, raw };
    }
    match origin.strip_prefix("event:") {
        None => match model::parse(raw) {
            Ok(envelope) => Parsed::Events(envelope.events()),
            Err(err) => Parsed::Quarantine {
                raw,
                reason: err.to_string(),
            },
        },
        Some(source) => match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(event) => Parsed::Outbound(
                context
                    .mappings
                    .for_source(source)
                    .map(|mapping| mapping.render(&event))
                    .collect(),
            ),
            Err(err) => Parsed::Quarantine {
                raw,
                reason: format!("event from {source} is not JSON: {err}"),
            },
        },
    }
}

/// Dispatches one inbox record (the bodies of one group commit) in one transaction.
fn dispatch_record(
    store: &Store,
    context: &DispatchContext<'_>,
    record_id: u64,
    record: &[u8],
    now: DateTime<Utc>,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    let record_key = record_id.to_be_bytes();
    let parsed: Vec<Parsed> = match batch::decode(record) {
        Some(bodies) => bodies
            .into_iter()
            .map(|(origin, raw)| parse_body(origin, raw, context))
            .collect(),
        // Not a record this version wrote: keep it whole rather than guess.
        None => vec![Parsed::Quarantine {
            raw: record,
            reason: "inbox record is not in the batch format".into(),
        }],
    };
    let mut quarantine_records = Vec::new();
    for (index, body) in parsed.iter().enumerate() {
        if let Parsed::Quarantine { raw, reason } = body {
            tracing::warn!(inbox_record = record_id, body = index, error = %reason, "Webhook body quarantined: it could not be parsed.");
            let key = (record_id << 24) | (index as u64 & 0xff_ffff);
            quarantine_records.push((
                key.to_be_bytes(),
                encode(&Quarantined {
                    received_at: now,
                    reason: reason.clone(),
                    body: String::from_utf8_lossy(raw).into_owned(),
                    body_base64: base64::engine::general_purpose::STANDARD.encode(raw),
                })?,
            ));
        }
    }
    let (jobs, duplicates) = (
        &store.inbox,
        &store.seen,
        &store.jobs,
        &store.statuses,
        &store.updates,
        &store.quarantine,
        &store.contacts,
        &store.templates,
        &store.audit,
    )
        .transaction(
            |(inbox, seen, jobs, statuses, updates, quarantine, contacts, templates, audit)| {
                inbox.remove(&record_key)?;
                for (key, value) in &quarantine_records {
                    quarantine.insert(key, value.clone())?;
                }
                let mut created = Vec::new();
                let mut duplicates = 0;
                // Arrival order inside the record: record id, then a running event counter.
                let mut sequence = record_id << 24;
                for body in &parsed {
                    let Parsed::ConnectorWebhook { connector, raw } = body else {
                        continue;
                    };
                    sequence += 1;
                    let payload = JobPayload::ConnectorWebhook {
                        connector: (*connector).to_owned(),
                        body: base64::engine::general_purpose::STANDARD.encode(raw),
                    };
                    let job = NewJob {
                        queue: format!("{connector}/webhooks"),
                        timestamp: now.timestamp(),
                        sequence,
                        payload: serde_json::to_value(&payload).map_err(|e| {
                            ConflictableTransactionError::Abort(StoreError::Record(e))
                        })?,
                    };
                    created.push(Store::insert_job(jobs, &job, now)?);
                }
                for outcomes in parsed.iter().filter_map(|body| match body {
                    Parsed::Outbound(outcomes) => Some(outcomes),
                    Parsed::Events(_)
                    | Parsed::ConnectorWebhook { .. }
                    | Parsed::Quarantine { .. } => None,
                }) {
                    for outcome in outcomes {
                        sequence += 1;
                        match queue_outbound(
                            outcome, context, sequence, now, seen, jobs, contacts, audit,
                        )? {
                            Some(key) => created.push(key),
                            None => duplicates += usize::from(matches!(outcome, Outcome::Send(_))),
                        }
                    }
                }
                let events = parsed.iter().filter_map(|body| match body {
                    Parsed::Events(events) => Some(events),
                    Parsed::Outbound(_)
                    | Parsed::ConnectorWebhook { .. }
                    | Parsed::Quarantine { .. } => None,
                });
                for event in events.flatten() {
                    sequence += 1;
                    match event {
                        Event::Message {
                            conversation,
                            message,
                        } => {
                            if !first_time(seen, &message.dedupe_key(), &record_key)? {
                                duplicates += 1;
                                continue;
                            }
                            let mut events = consent::from_message(message, context.consent)
                                .into_iter()
                                .collect::<Vec<_>>();
                            if let Some(ConsentEvent::OptOut { .. }) = events.first() {
                                // Confirm the opt-out (sent only while the window is open).
                                let text = consent::confirmation_text(message, context.consent);
                                let payload = JobPayload::Confirmation {
                                    conversation: conversation.key(),
                                    text,
                                    message_id: message.id.clone(),
                                };
                                let job = NewJob {
                                    queue: format!("{OUTBOX}/{}", conversation.key()),
                                    timestamp: message.timestamp,
                                    sequence,
                                    payload: serde_json::to_value(&payload).map_err(|e| {
                                        ConflictableTransactionError::Abort(StoreError::Record(e))
                                    })?,
                                };
                                created.push(Store::insert_job(jobs, &job, now)?);
                            }
                            let inbound = DateTime::<Utc>::from_timestamp(message.timestamp, 0);
                            let mut first_message = true;
                            update_contact(contacts, &conversation.key(), |state| {
                                first_message = match (state.last_inbound_at, inbound) {
                                    (Some(last), Some(at)) => {
                                        at - last > super::bot::NEW_CONVERSATION_AFTER
                                    }
                                    (Some(_), None) => false,
                                    (None, _) => true,
                                };
                                if let Some(at) = inbound {
                                    state.record_inbound(at);
                                }
                                for event in events.drain(..) {
                                    state.record(event);
                                }
                            })?;
                            // Routing: decided just before the message's delivery to the
                            // first destination (whether a handed-over ticket was resolved is
                            // read before this message reopens it), applied to the ticket just
                            // after it (so a new conversation's ticket exists by then).
                            let primary_queue = match context.destinations.first() {
                                Some(primary) => format!("{primary}/{}", conversation.key()),
                                None => format!("{OUTBOX}/{}", conversation.key()),
                            };
                            if context.routing {
                                // Its own sequence: without a ticketing destination it shares
                                // the outbox queue (and timestamp) with the STOP confirmation.
                                sequence += 1;
                                let payload = JobPayload::Route {
                                    conversation: conversation.clone(),
                                    message: message.clone(),
                                    first_message,
                                };
                                let job = NewJob {
                                    queue: primary_queue.clone(),
                                    timestamp: message.timestamp,
                                    sequence,
                                    payload: serde_json::to_value(&payload).map_err(|e| {
                                        ConflictableTransactionError::Abort(StoreError::Record(e))
                                    })?,
                                };
                                created.push(Store::insert_job(jobs, &job, now)?);
                                sequence += 1;
                            }
                            for destination in context.destinations {
                                let payload = JobPayload::Inbound {
                                    destination: destination.clone(),
                                    conversation: conversation.clone(),
                                    message: message.clone(),
                                };
                                let job = NewJob {
                                    queue: format!("{destination}/{}", conversation.key()),
                                    timestamp: message.timestamp,
                                    sequence,
                                    payload: serde_json::to_value(&payload).map_err(|e| {
                                        ConflictableTransactionError::Abort(StoreError::Record(e))
                                    })?,
                                };
                                created.push(Store::insert_job(jobs, &job, now)?);
                            }
                            if context.routing && !context.destinations.is_empty() {
                                sequence += 1;
                                let payload = JobPayload::RouteTicket {
                                    conversation: conversation.key(),
                                    message_id: message.id.clone(),
                                };
                                let job = NewJob {
                                    queue: primary_queue,
                                    timestamp: message.timestamp,
                                    sequence,
                                    payload: serde_json::to_value(&payload).map_err(|e| {
                                        ConflictableTransactionError::Abort(StoreError::Record(e))
                                    })?,
                                };
                                created.push(Store::insert_job(jobs, &job, now)?);
                            }
                            let activity = wabridge_connectors::Activity {
                                id: message.id.clone(),
                                direction: wabridge_connectors::Direction::Inbound,
                                at: DateTime::<Utc>::from_timestamp(message.timestamp, 0)
                                    .unwrap_or(now),
                                text: crate::whatsapp::render::render(message).text,
                            };
                            created.extend(queue_activity(
                                jobs,
                                context.crms,
                                conversation,
                                &activity,
                                sequence,
                                now,
                            )?);
                        }
                        Event::Status {
                            phone_number_id,
                            status,
                        } => {
                            if !first_time(seen, &status.dedupe_key(), &record_key)? {
                                duplicates += 1;
                                continue;
                            }
                            // Kept whether or not the send is recorded yet: statuses are
                            // joined with sends by wamid when they are read.
                            record_status(statuses, status)?;
                            if status.status == "failed" {
                                created.extend(status_failed(
                                    phone_number_id,
                                    status,
                                    context,
                                    sequence,
                                    now,
                                    (jobs, contacts, audit),
                                )?);
                            }
                        }
                        Event::Update { field, value } => {
                            apply_update(value, contacts, templates)?;
                            let record = UpdateRecord {
                                received_at: now,
                                field: field.clone(),
                                value: serde_json::to_value(value).map_err(|e| {
                                    ConflictableTransactionError::Abort(StoreError::Record(e))
                                })?,
                            };
                            let value =
                                encode(&record).map_err(ConflictableTransactionError::Abort)?;
                            updates.insert(&sequence.to_be_bytes(), value)?;
                        }
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>((created, duplicates))
            },
        )?;
    drained.bodies += parsed.len();
    drained.quarantined += quarantine_records.len();
    drained.jobs.extend(jobs);
    drained.duplicates += duplicates;
    Ok(())
}

/// Reads, changes and writes a conversation's consent state inside the transaction.
fn update_contact(
    contacts: &TransactionalTree,
    key: &str,
    change: impl FnOnce(&mut ContactState),
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    let mut state: ContactState = match contacts.get(key.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(abort)?,
        None => ContactState::default(),
    };
    change(&mut state);
    contacts.insert(key.as_bytes(), serde_json::to_vec(&state).map_err(abort)?)?;
    Ok(())
}

/// Queues a mapping's send (deduplicated by its idempotency key, its opt-in evidence recorded),
/// or audits why it cannot be sent. Returns the new job's key.
#[allow(clippy::too_many_arguments)]
fn queue_outbound(
    outcome: &Outcome,
    context: &DispatchContext<'_>,
    sequence: u64,
    now: DateTime<Utc>,
    seen: &TransactionalTree,
    jobs: &TransactionalTree,
    contacts: &TransactionalTree,
    audit: &TransactionalTree,
) -> Result<Option<JobKey>, ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    match outcome {
        Outcome::Skip { .. } => Ok(None),
        Outcome::Invalid { reason } => {
            let entry = AuditEntry::new(now, None, "mapping", "invalid", reason.clone());
            audit.insert(
                &sequence.to_be_bytes(),
                serde_json::to_vec(&entry).map_err(abort)?,
            )?;
            Ok(None)
        }
        Outcome::Send(intent) => {
            let Some(phone_number_id) = context.phone_number_id else {
                let entry = AuditEntry::new(
                    now,
                    None,
                    &format!("template {} ({})", intent.template, intent.mapping),
                    "invalid",
                    "no [[whatsapp.numbers]] configured: no number to send from".into(),
                );
                audit.insert(
                    &sequence.to_be_bytes(),
                    serde_json::to_vec(&entry).map_err(abort)?,
                )?;
                return Ok(None);
            };
            if !first_time(
                seen,
                &format!("o:{}", intent.idempotency_key),
                &sequence.to_be_bytes(),
            )? {
                return Ok(None);
            }
            let contact_key = format!("{phone_number_id}:{}", intent.to);
            if let Some(evidence) = &intent.opt_in {
                // An event's opt-in field (often a sticky account setting) never overrides a
                // customer's STOP: only the customer (START) or an admin can undo that.
                update_contact(contacts, &contact_key, |state| {
                    if state.opted_out().is_some() {
                        return;
                    }
                    state.record(ConsentEvent::OptIn {
                        at: crate::policy::whole_seconds(now),
                        source: format!("mapping {}", intent.mapping),
                        evidence: format!(
                            "{} ({} = {})",
                            evidence.evidence, evidence.path, evidence.value
                        ),
                    });
                })?;
            }
            let payload = JobPayload::Outbound {
                phone_number_id: phone_number_id.to_owned(),
                intent: intent.clone(),
            };
            let job = NewJob {
                queue: format!("{OUTBOX}/{contact_key}"),
                timestamp: now.timestamp(),
                sequence,
                payload: serde_json::to_value(&payload).map_err(abort)?,
            };
            Ok(Some(Store::insert_job(jobs, &job, now)?))
        }
    }
}

/// What an update changes besides being recorded: marketing preferences go to the consent
/// ledger, template status/quality/category changes to the catalog.
fn apply_update(
    value: &model::ChangeValue,
    contacts: &TransactionalTree,
    templates: &TransactionalTree,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    match value {
        model::ChangeValue::UserPreferences(preferences) => {
            for (key, event) in consent::from_user_preferences(preferences) {
                update_contact(contacts, &key, |state| {
                    state.record(event);
                })?;
            }
        }
        model::ChangeValue::TemplateStatus(update) => {
            if let (Some(name), Some(language), Some(event)) = (
                &update.message_template_name,
                &update.message_template_language,
                &update.event,
            ) {
                update_template(templates, update.message_template_id, name, language, |t| {
                    t.apply_status_event(event);
                    if let Some(category) = &update.message_template_category {
                        t.category = category.clone();
                    }
                })?;
            }
        }
        model::ChangeValue::TemplateQuality(update) => {
            if let (Some(name), Some(language)) = (
                &update.message_template_name,
                &update.message_template_language,
            ) {
                update_template(templates, update.message_template_id, name, language, |t| {
                    t.quality = update.new_quality_score.clone();
                })?;
            }
        }
        model::ChangeValue::TemplateCategory(update) => {
            if let (Some(name), Some(language), Some(category)) = (
                &update.message_template_name,
                &update.message_template_language,
                &update.new_category,
            ) {
                update_template(templates, update.message_template_id, name, language, |t| {
                    t.category = category.clone();
                })?;
            }
        }
        model::ChangeValue::Messages(_)
        | model::ChangeValue::TemplateComponents(_)
        | model::ChangeValue::AccountUpdate(_)
        | model::ChangeValue::Other(_) => {}
    }
    Ok(())
}

/// Applies a template webhook to its catalog entry (creating a placeholder when the catalog
/// has not been synced yet), inside the transaction.
fn update_template(
    templates: &TransactionalTree,
    id: Option<u64>,
    name: &str,
    language: &str,
    change: impl FnOnce(&mut Template),
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    let key = crate::store::template_key(name, language);
    let mut template: Template = match templates.get(&key)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(abort)?,
        None => Template::placeholder(id, name, language),
    };
    change(&mut template);
    templates.insert(key, serde_json::to_vec(&template).map_err(abort)?)?;
    Ok(())
}

/// Records a dedupe key; false when it was already there.
fn first_time(
    seen: &TransactionalTree,
    dedupe_key: &str,
    inbox_key: &[u8],
) -> Result<bool, ConflictableTransactionError<StoreError>> {
    if seen.get(dedupe_key.as_bytes())?.is_some() {
        return Ok(false);
    }
    seen.insert(dedupe_key.as_bytes(), inbox_key)?;
    Ok(true)
}

/// Queues a message's timeline entry for every CRM, behind the conversation's earlier ones.
pub(crate) fn queue_activity(
    jobs: &TransactionalTree,
    crms: &[String],
    conversation: &Conversation,
    activity: &wabridge_connectors::Activity,
    sequence: u64,
    now: DateTime<Utc>,
) -> Result<Vec<JobKey>, ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    let mut created = Vec::new();
    for crm in crms {
        let payload = JobPayload::Activity {
            destination: crm.clone(),
            conversation: conversation.clone(),
            activity: activity.clone(),
        };
        let job = NewJob {
            queue: format!("{crm}/{}", conversation.key()),
            timestamp: activity.at.timestamp(),
            sequence,
            payload: serde_json::to_value(&payload).map_err(abort)?,
        };
        created.push(Store::insert_job(jobs, &job, now)?);
    }
    Ok(created)
}

/// Acts on a `failed` status: the error feeds the consent ledger (131026 undeliverable,
/// 131050 marketing stopped), the failure is audited, and every destination gets a note job
/// for the conversation's ticket (queued behind the conversation's messages there).
fn status_failed(
    phone_number_id: &str,
    status: &model::Status,
    context: &DispatchContext<'_>,
    sequence: u64,
    now: DateTime<Utc>,
    (jobs, contacts, audit): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
) -> Result<Vec<JobKey>, ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    let contact = match (&status.recipient_id, &status.recipient_user_id) {
        (Some(digits), _) => digits.clone(),
        (None, Some(user)) => format!("u:{user}"),
        (None, None) => return Ok(Vec::new()),
    };
    let conversation = format!("{phone_number_id}:{contact}");
    let at = status.time().unwrap_or(now);
    for error in &status.errors {
        let event = match Action::for_code(error.code) {
            Action::Undeliverable => ConsentEvent::Undeliverable { at },
            Action::MarketingOptOut => ConsentEvent::MarketingStop { at },
            _ => continue,
        };
        update_contact(contacts, &conversation, |state| {
            state.record(event);
        })?;
    }
    let why = failure_text(status);
    let entry = AuditEntry::new(
        now,
        Some(conversation.clone()),
        &format!("message {}", status.id),
        "failed",
        format!("Meta reported the message as not delivered: {why}"),
    )
    .with_wamid(&status.id);
    audit.insert(
        &sequence.to_be_bytes(),
        serde_json::to_vec(&entry).map_err(abort)?,
    )?;
    let text = format!(
        "wabridge: a WhatsApp message to the customer was NOT delivered. {why} (message {})",
        status.id
    );
    let mut created = Vec::new();
    for destination in context.destinations {
        let payload = JobPayload::Note {
            destination: destination.clone(),
            conversation: conversation.clone(),
            text: text.clone(),
        };
        let job = NewJob {
            queue: format!("{destination}/{conversation}"),
            timestamp: status.timestamp,
            sequence,
            payload: serde_json::to_value(&payload).map_err(abort)?,
        };
        created.push(Store::insert_job(jobs, &job, now)?);
    }
    Ok(created)
}

/// Why Meta could not deliver a message, and what an agent can do about it.
fn failure_text(status: &model::Status) -> String {
    let Some(error) = status.errors.first() else {
        return "Meta gave no reason.".to_owned();
    };
    let title = error
        .title
        .as_deref()
        .or(error.message.as_deref())
        .unwrap_or("no title");
    let details = error
        .error_data
        .as_ref()
        .and_then(|data| data.details.as_deref())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let hint = match Action::for_code(error.code) {
        Action::WindowClosed => {
            " The 24-hour window is closed: only an approved template can reach the customer now."
        }
        Action::Undeliverable => {
            " The number may not use WhatsApp, may have blocked the business, or runs an old app; wabridge sends nothing more until the customer writes again."
        }
        Action::MarketingOptOut => {
            " The customer stopped marketing messages; wabridge sends them no more marketing templates."
        }
        Action::PerUserMarketingLimit => {
            " Meta limits how many marketing messages one person receives; try again in a day or use a utility template."
        }
        _ => "",
    };
    format!("Error {}: {title}{details}.{hint}", error.code)
}

/// Keeps the furthest status of a message: a late `delivered` never overwrites `read`.
fn record_status(
    statuses: &TransactionalTree,
    status: &model::Status,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let abort = |e| ConflictableTransactionError::Abort(StoreError::Record(e));
    let incoming = StatusRecord {
        status: status.status.clone(),
        timestamp: status.timestamp,
        raw: serde_json::to_value(status).map_err(abort)?,
    };
    if let Some(current) = statuses.get(status.id.as_bytes())? {
        let current: StatusRecord = serde_json::from_slice(&current).map_err(abort)?;
        if StatusRecord::rank(&current.status) >= StatusRecord::rank(&incoming.status) {
            return Ok(());
        }
    }
    statuses.insert(
        status.id.as_bytes(),
        serde_json::to_vec(&incoming).map_err(abort)?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Inbox;

    #[tokio::test]
    async fn a_routed_stop_keeps_its_confirmation_when_the_outbox_is_the_only_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let message = serde_json::json!({
            "id": "wamid.STOP", "timestamp": "1790000000", "type": "text", "text": { "body": "STOP" }
        });
        let webhook =
            crate::whatsapp::message_webhook("106540352242922", "96890000001", "Aisha", message);
        store
            .accept(&serde_json::to_vec(&webhook).expect("json"))
            .await
            .expect("accepted");
        let consent = PolicySettings::default();
        let mappings = MappingSet::default();
        let context = DispatchContext {
            destinations: &[],
            crms: &[],
            routing: true,
            consent: &consent,
            mappings: &mappings,
            phone_number_id: None,
        };
        let drained = drain(&store, &context).await.expect("drained");
        let payloads: Vec<&str> = drained
            .jobs
            .iter()
            .filter_map(|key| store.job(key).ok().flatten())
            .map(|job| match job.payload["type"].as_str() {
                Some("confirmation") => "confirmation",
                Some("route") => "route",
                _ => "other",
            })
            .collect();
        assert_eq!(drained.jobs.len(), 2, "{payloads:?}");
        assert!(
            payloads.contains(&"confirmation") && payloads.contains(&"route"),
            "{payloads:?}"
        );
    }
}
