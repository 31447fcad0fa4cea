//! The dispatcher: turns accepted webhook bodies into work.
//!
//! Each inbox body is handled in one transaction: removed from the inbox and either
//! quarantined (unparseable) or split into events — messages become one job per destination
//! (deduplicated by wamid), statuses update the status tree (deduplicated by id and status,
//! never moving backwards), other updates are recorded. A crash before the transaction leaves
//! the body in the inbox; after it, everything is there: nothing is lost or done twice.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use wabridge_connectors::Conversation;

use crate::queue::{JobKey, NewJob};
use crate::store::{encode, Quarantined, StatusRecord, Store, StoreError, UpdateRecord};
use crate::whatsapp::model::{self, Event};

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

/// Dispatches every body in the inbox, then flushes once.
pub async fn drain(store: &Store, destinations: &[String]) -> Result<Drained, StoreError> {
    let mut drained = Drained::default();
    loop {
        let batch: Vec<(u64, Vec<u8>)> = store
            .inbox
            .iter()
            .take(256)
            .map(|item| item.map(|(k, v)| (crate::store::id_of(&k), v.to_vec())))
            .collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        for (id, raw) in batch {
            dispatch_one(store, destinations, id, &raw, Utc::now(), &mut drained)?;
            drained.bodies += 1;
        }
    }
    if drained.bodies > 0 {
        // New jobs are durable before their first attempt, so a first attempt in this
        // process cannot have happened before a crash.
        store.durable().await?;
    }
    Ok(drained)
}

fn dispatch_one(
    store: &Store,
    destinations: &[String],
    id: u64,
    raw: &[u8],
    now: DateTime<Utc>,
    drained: &mut Drained,
) -> Result<(), StoreError> {
    let key = id.to_be_bytes();
    let envelope = match model::parse(raw) {
        Ok(envelope) => envelope,
        Err(err) => {
            tracing::warn!(inbox_id = id, error = %err, "Webhook body quarantined: it could not be parsed.");
            let record = encode(&Quarantined {
                received_at: now,
                reason: err.to_string(),
                body: String::from_utf8_lossy(raw).into_owned(),
                body_base64: base64::engine::general_purpose::STANDARD.encode(raw),
            })?;
            (&store.inbox, &store.quarantine).transaction(|(inbox, quarantine)| {
                inbox.remove(&key)?;
                quarantine.insert(&key, record.clone())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
            drained.quarantined += 1;
            return Ok(());
        }
    };
    let events = envelope.events();
    let (jobs, duplicates) = (
        &store.inbox,
        &store.seen,
        &store.jobs,
        &store.statuses,
        &store.updates,
    )
        .transaction(|(inbox, seen, jobs, statuses, updates)| {
            inbox.remove(&key)?;
            let mut created = Vec::new();
            let mut duplicates = 0;
            for (index, event) in events.iter().enumerate() {
                let sequence = (id << 16) | (index as u64 & 0xffff);
                match event {
                    Event::Message {
                        conversation,
                        message,
                    } => {
                        if !first_time(seen, &message.dedupe_key(), &key)? {
                            duplicates += 1;
                            continue;
                        }
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
                        if !first_time(seen, &status.dedupe_key(), &key)? {
                            duplicates += 1;
                            continue;
                        }
                        record_status(statuses, status)?;
                    }
                    Event::Update { field, value } => {
                        let record = UpdateRecord {
                            received_at: now,
                            field: field.clone(),
                            value: serde_json::to_value(value).map_err(|e| {
                                ConflictableTransactionError::Abort(StoreError::Record(e))
                            })?,
                        };
                        let value = encode(&record).map_err(ConflictableTransactionError::Abort)?;
                        updates.insert(&sequence.to_be_bytes(), value)?;
                    }
                }
            }
            Ok::<_, ConflictableTransactionError<StoreError>>((created, duplicates))
        })?;
    drained.jobs.extend(jobs);
    drained.duplicates += duplicates;
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
