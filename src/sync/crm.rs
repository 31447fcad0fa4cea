//! The CRM role and pushed webhooks, on the daemon's side.
//!
//! - **Timeline entries**: every message of a conversation (the customer's, and every send
//!   Meta accepted) is an `Activity` job per CRM, queued behind the conversation's earlier
//!   ones. The first one upserts the contact; its id is kept in the links tree like a ticket.
//! - **Pushed webhooks** (`POST /connectors/{name}/webhook`) were verified by the connector
//!   and stored before the answer; a job reads them: agents' replies become reply jobs (once
//!   per reply id), CRM events go into the inbox as events of source `<name>`, where the
//!   mapping files whose `source` is the connector's name turn them into template sends.
//! - **Polled events** (`Crm::events_since`, e.g. Tryton's paid sales) take the same path,
//!   with a persisted cursor. A crash between storing the events and the cursor replays
//!   them; the mappings' idempotency keys make that harmless.

use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use tokio::sync::watch;
use wabridge_connectors::{Activity, AgentReply, Contact, Conversation, CrmContactId, SourceEvent};

use super::dispatch::{queue_activity, JobPayload, OUTBOX};
use super::{connector_failure, store_failure, Runner};
use crate::queue::{Failure, NewJob};
use crate::store::{link_key, EventInbox, Store, StoreError};

/// Key of a CRM's event cursor in the meta tree.
fn events_cursor_key(crm: &str) -> Vec<u8> {
    format!("events:{crm}").into_bytes()
}

/// The conversation a `{phone_number_id}:{contact}` key names (no profile name).
pub(super) fn conversation_from_key(key: &str) -> Option<Conversation> {
    let (phone_number_id, contact) = key.split_once(':')?;
    let contact = match contact.strip_prefix("u:") {
        Some(user) => Contact {
            wa_id: None,
            user_id: Some(user.to_owned()),
            profile_name: None,
        },
        None => Contact {
            wa_id: Some(contact.to_owned()),
            user_id: None,
            profile_name: None,
        },
    };
    Some(Conversation {
        phone_number_id: phone_number_id.to_owned(),
        display_phone_number: None,
        contact,
    })
}

impl Runner {
    /// Queues the timeline entry of a message the business sent (Meta accepted it) for every
    /// CRM. A failure is logged, never fails the send.
    pub(super) async fn log_sent(&self, contact_key: &str, wamid: &str, text: String) {
        let crms = self.crm_names();
        let Some(conversation) = conversation_from_key(contact_key) else {
            return;
        };
        if crms.is_empty() {
            return;
        }
        let activity = Activity {
            id: wamid.to_owned(),
            direction: wabridge_connectors::Direction::Outbound,
            at: Utc::now(),
            text,
        };
        let queued = async {
            let sequence = self.store.next_id()?;
            let now = Utc::now();
            let created = self
                .store
                .jobs
                .transaction(|jobs| {
                    queue_activity(jobs, &crms, &conversation, &activity, sequence, now)
                })
                .map_err(StoreError::from)?;
            self.store.durable().await?;
            self.add_fresh(created);
            Ok::<_, StoreError>(())
        };
        if let Err(err) = queued.await {
            tracing::error!(error = %err, "Queueing a sent message for the CRMs failed.");
        }
    }

    /// One attempt of a timeline entry: the contact (recorded, or upserted now), then the
    /// entry. Returns the contact link to record.
    pub(super) async fn log_activity(
        &self,
        destination: &str,
        conversation: &Conversation,
        activity: &Activity,
        maybe_delivered: bool,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, Failure> {
        let crm = self
            .connectors
            .crm
            .get(destination)
            .ok_or_else(|| Failure::Permanent {
                reason: format!("CRM \"{destination}\" is no longer configured"),
            })?;
        let key = conversation.key();
        let contact = match self.store.link(destination, &key).map_err(store_failure)? {
            Some(id) => CrmContactId(id),
            None => crm
                .upsert_contact(&conversation.contact)
                .await
                .map_err(connector_failure)?,
        };
        crm.log_activity(
            &contact,
            conversation,
            std::slice::from_ref(activity),
            maybe_delivered,
        )
        .await
        .map_err(connector_failure)?;
        Ok(Some((link_key(destination, &key), contact.0.into_bytes())))
    }

    /// One attempt of a pushed webhook: replies to reply jobs, events to the inbox.
    pub(super) async fn read_webhook(&self, connector: &str, body: &str) -> Result<(), Failure> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|err| Failure::Permanent {
                reason: format!("stored webhook body unreadable: {err}"),
            })?;
        if let Some(ticketing) = self.connectors.ticketing.get(connector) {
            let replies = ticketing
                .replies_from_webhook(&raw)
                .map_err(connector_failure)?;
            self.queue_replies(connector, replies, None)
                .await
                .map_err(store_failure)?;
        }
        if let Some(crm) = self.connectors.crm.get(connector) {
            let events = crm
                .events_from_webhook(&raw)
                .await
                .map_err(connector_failure)?;
            self.accept_events(connector, &events)
                .await
                .map_err(store_failure)?;
        }
        Ok(())
    }

    /// Queues agents' replies from `destination` (once per reply id) as sends, and advances
    /// the reply cursor in the same transaction when given. Replies in tickets wabridge did not
    /// open for a conversation are not sent.
    pub(super) async fn queue_replies(
        &self,
        destination: &str,
        replies: Vec<AgentReply>,
        cursor: Option<(Vec<u8>, String)>,
    ) -> Result<(), StoreError> {
        let store = &self.store;
        let now = Utc::now();
        let mut jobs = Vec::new();
        for reply in replies {
            let Some(conversation) = store.conversation_of(destination, &reply.ticket.0)? else {
                continue;
            };
            let sequence = store.next_id()?;
            let payload = JobPayload::Reply {
                destination: destination.to_owned(),
                conversation: conversation.clone(),
                reply: reply.clone(),
            };
            jobs.push((
                format!("r:{destination}:{}", reply.id),
                NewJob {
                    queue: format!("{OUTBOX}/{conversation}"),
                    timestamp: reply.at.timestamp(),
                    sequence,
                    payload: serde_json::to_value(&payload)?,
                },
            ));
        }
        if jobs.is_empty() && cursor.is_none() {
            return Ok(());
        }
        let created = (&store.seen, &store.jobs, &store.meta)
            .transaction(|(seen, job_tree, meta)| {
                let mut created = Vec::new();
                for (dedupe, job) in &jobs {
                    if seen.get(dedupe.as_bytes())?.is_some() {
                        continue;
                    }
                    seen.insert(dedupe.as_bytes(), &[])?;
                    created.push(Store::insert_job(job_tree, job, now)?);
                }
                if let Some((key, next)) = &cursor {
                    meta.insert(key.as_slice(), next.as_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(created)
            })
            .map_err(StoreError::from)?;
        store.durable().await?;
        if !created.is_empty() {
            self.add_fresh(created);
        }
        Ok(())
    }

    /// Stores a CRM's events as events of source `crm` (durably, before returning).
    async fn accept_events(&self, crm: &str, events: &[SourceEvent]) -> Result<(), StoreError> {
        for event in events {
            let body = serde_json::to_vec(&event.event)?;
            self.store.accept_event(crm, &body).await?;
        }
        Ok(())
    }

    /// Polls every CRM for events until shutdown (at the reply-poll interval).
    pub async fn run_event_poller(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            for name in self.crm_names() {
                if let Err(err) = self.poll_events(&name).await {
                    tracing::warn!(connector = %name, error = %err, "Polling a CRM's events failed; retrying at the next round.");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.reply_poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn poll_events(&self, name: &str) -> Result<(), String> {
        let Some(crm) = self.connectors.crm.get(name) else {
            return Ok(());
        };
        let key = events_cursor_key(name);
        let cursor = self
            .store
            .meta
            .get(&key)
            .map_err(|e| e.to_string())?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        let (events, next) = crm
            .events_since(cursor.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        if !events.is_empty() {
            tracing::info!(connector = %name, events = events.len(), "Events from a CRM.");
        }
        self.accept_events(name, &events)
            .await
            .map_err(|e| e.to_string())?;
        if next != cursor {
            if let Some(next) = next {
                self.store
                    .meta
                    .insert(&key, next.as_bytes())
                    .map_err(|e| e.to_string())?;
                self.store.durable().await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_name_a_number_or_a_bsuid() {
        let by_number = conversation_from_key("106540352242922:96890000001").expect("key");
        assert_eq!(by_number.phone_number_id, "106540352242922");
        assert_eq!(by_number.contact.wa_id.as_deref(), Some("96890000001"));
        assert_eq!(by_number.key(), "106540352242922:96890000001");
        let by_user = conversation_from_key("106540352242922:u:OM.123").expect("key");
        assert_eq!(by_user.contact.user_id.as_deref(), Some("OM.123"));
        assert_eq!(by_user.key(), "106540352242922:u:OM.123");
        assert!(conversation_from_key("no-separator").is_none());
    }
}
