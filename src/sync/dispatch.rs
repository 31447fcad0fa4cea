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

use crate::policy::ContactState;
use crate::queue::{JobKey, NewJob};
use crate::store::{batch, encode, Quarantined, StatusRecord, Store, StoreError, UpdateRecord};
use crate::sync::consent::{self, PolicySettings};
use crate::whatsapp::model::{self, Event};
use crate::whatsapp::templates::Template;

/// What a job asks a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobPayload {
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
pub async fn drain(
    store: &Store,
    destinations: &[String],
    consent: &PolicySettings,
) -> Result<Drained, StoreError> {
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
            dispatch_record(
                store,
                destinations,
                consent,
                id,
                &record,
                Utc::now(),
                &mut drained,
            )?;
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
    Quarantine { raw: &'a [u8], reason: String },
}

/// Dispatches one inbox record (the bodies of one group commit) in one transaction.
#[allow(clippy::too_many_arguments)]
fn dispatch_record(
    store: &Store,
    destinations: &[String],
    consent: &PolicySettings,
    record_id: u64,
    record: &[u8],
    now: DateTime<Utc>,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    let record_key = record_id.to_be_bytes();
    let parsed: Vec<Parsed> = match batch::decode(record) {
        Some(bodies) => bodies
            .into_iter()
            .map(|raw| match model::parse(raw) {
                Ok(envelope) => Parsed::Events(envelope.events()),
                Err(err) => Parsed::Quarantine {
                    raw,
                    reason: err.to_string(),
                },
            })
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
    )
        .transaction(
            |(inbox, seen, jobs, statuses, updates, quarantine, contacts, templates)| {
                inbox.remove(&record_key)?;
                for (key, value) in &quarantine_records {
                    quarantine.insert(key, value.clone())?;
                }
                let mut created = Vec::new();
                let mut duplicates = 0;
                // Arrival order inside the record: record id, then a running event counter.
                let mut sequence = record_id << 24;
                let events = parsed.iter().filter_map(|body| match body {
                    Parsed::Events(events) => Some(events),
                    Parsed::Quarantine { .. } => None,
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
                            let mut events = consent::from_message(message, consent)
                                .into_iter()
                                .collect::<Vec<_>>();
                            let inbound = DateTime::<Utc>::from_timestamp(message.timestamp, 0);
                            update_contact(contacts, &conversation.key(), |state| {
                                if let Some(at) = inbound {
                                    state.record_inbound(at);
                                }
                                for event in events.drain(..) {
                                    state.record(event);
                                }
                            })?;
                            for destination in destinations {
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
                        }
                        Event::Status { status, .. } => {
                            if !first_time(seen, &status.dedupe_key(), &record_key)? {
                                duplicates += 1;
                                continue;
                            }
                            record_status(statuses, status)?;
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
