//! Sync workers: drive queued jobs through the connectors.
//!
//! The runner keeps, in memory only, which queues have a job in flight; on start every queued
//! job is simply eligible again. At most one job per queue (destination × conversation) runs at
//! a time, so a conversation reaches a destination in order, while up to `queue.workers`
//! different queues run in parallel and a failing queue only delays itself.
//!
//! A job's first attempt in this process, when the job was also created (and flushed) by this
//! process, cannot have reached the remote system before; every other attempt — a retry, or
//! any job found at start-up — is flagged `maybe_delivered`, and the connector looks up before
//! writing. That is how a crash between "written remotely" and "recorded here" is repaired by
//! lookup instead of a duplicate. So that the lookup does not race a request the dead process
//! still had in flight (the remote system may finish it after we died), jobs found at start-up
//! wait `queue.recovery_grace_secs` before their first attempt.

mod bot;
pub mod consent;
pub use bot::{inbound_of, NEW_CONVERSATION_AFTER};
mod crm;
pub mod dispatch;
mod outbound;
mod replies;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;
use wabridge_connectors::{
    ConnectorError, Crm, DeliveryContext, InboundMessage, TicketRef, TicketSystem,
    WebhookRejection, WebhookRequest,
};

use crate::logging;
use crate::queue::{Failure, Job, JobKey, JobQueue, Outcome, RetryPolicy};
use crate::store::{link_key, Store, StoreError};
use crate::whatsapp::graph::{GraphClient, GraphError};
use crate::whatsapp::render;
use crate::whatsapp::sender::Sender;
use dispatch::JobPayload;

/// Longest a single delivery may take before it counts as a (retryable) timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The configured connectors, by role and name (`[connectors.<name>]`).
#[derive(Debug, Default)]
pub struct Connectors {
    /// Ticketing systems: every customer message goes to each.
    pub ticketing: HashMap<String, Arc<dyn TicketSystem>>,
    /// CRMs: every message of a conversation is logged on the contact's timeline.
    pub crm: HashMap<String, Arc<dyn Crm>>,
}

impl Connectors {
    /// Verifies a request pushed to `POST /connectors/{name}/webhook` by the connector of that
    /// name (its ticketing role first, then its CRM role).
    pub fn verify_webhook(
        &self,
        name: &str,
        request: &WebhookRequest<'_>,
    ) -> Result<(), WebhookRejection> {
        let mut verdict = Err(WebhookRejection::NotSupported);
        if let Some(ticketing) = self.ticketing.get(name) {
            verdict = ticketing.verify_webhook(request);
        }
        if verdict == Err(WebhookRejection::NotSupported) {
            if let Some(crm) = self.crm.get(name) {
                verdict = crm.verify_webhook(request);
            }
        }
        verdict
    }

    /// Names of the connectors with `role`, in a stable order.
    fn names<T: ?Sized>(map: &HashMap<String, Arc<T>>) -> Vec<String> {
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Runs jobs.
pub struct Runner {
    store: Store,
    connectors: Arc<Connectors>,
    graph: GraphClient,
    policy: RetryPolicy,
    workers: usize,
    /// Until then, jobs this process did not create wait: a request a previous process had
    /// in flight when it died may still be completing remotely, and looking up before it has
    /// would miss it and write a duplicate.
    recovery_until: chrono::DateTime<Utc>,
    /// Jobs created and flushed by this process and never attempted.
    fresh: Mutex<HashSet<JobKey>>,
    /// Woken when jobs are added or replayed.
    pub wake: Arc<Notify>,
    /// Consent keywords and window margin.
    consent: consent::PolicySettings,
    /// Mapping files (events → template sends).
    mappings: Arc<crate::mapping::MappingSet>,
    /// Routing rules and the bot, when configured.
    routing: Option<Arc<crate::routing::Routing>>,
    /// The business number outbound sends go from.
    phone_number_id: Option<String>,
    /// The Graph API sender.
    sender: Sender,
    /// How often destinations are asked for agents' replies.
    reply_poll: Duration,
}

/// Everything a [`Runner`] is built from.
pub struct RunnerParts {
    /// The store.
    pub store: Store,
    /// Connectors by role and name.
    pub connectors: Arc<Connectors>,
    /// Graph client (media downloads).
    pub graph: GraphClient,
    /// Graph sender (template sends).
    pub sender: Sender,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Parallel jobs.
    pub workers: usize,
    /// How long jobs left by a previous process wait after start.
    pub recovery_grace: Duration,
    /// `[policy]`
    pub consent: consent::PolicySettings,
    /// Mapping files.
    pub mappings: Arc<crate::mapping::MappingSet>,
    /// Routing rules, when `[routing]` is configured.
    pub routing: Option<Arc<crate::routing::Routing>>,
    /// The number template sends go from (first of `[[whatsapp.numbers]]`).
    pub phone_number_id: Option<String>,
    /// How often destinations are asked for agents' replies.
    pub reply_poll: Duration,
}

impl Runner {
    /// A runner from its parts.
    pub fn new(parts: RunnerParts) -> Arc<Runner> {
        Arc::new(Runner {
            store: parts.store,
            connectors: parts.connectors,
            graph: parts.graph,
            policy: parts.retry,
            workers: parts.workers.max(1),
            recovery_until: Utc::now()
                + chrono::Duration::from_std(parts.recovery_grace)
                    .unwrap_or(chrono::Duration::zero()),
            fresh: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
            consent: parts.consent,
            mappings: parts.mappings,
            routing: parts.routing,
            phone_number_id: parts.phone_number_id,
            sender: parts.sender,
            reply_poll: parts.reply_poll,
        })
    }

    /// The ticketing destinations' names, in a stable order.
    pub fn destination_names(&self) -> Vec<String> {
        Connectors::names(&self.connectors.ticketing)
    }

    /// The CRMs' names, in a stable order.
    pub fn crm_names(&self) -> Vec<String> {
        Connectors::names(&self.connectors.crm)
    }

    /// Marks jobs as created by this process (after their creation was flushed) and wakes
    /// the scheduler.
    pub fn add_fresh(&self, keys: Vec<JobKey>) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.extend(keys);
        }
        self.wake.notify_one();
    }

    fn is_fresh(&self, key: &JobKey) -> bool {
        self.fresh.lock().map(|f| f.contains(key)).unwrap_or(false)
    }

    /// Moves inbox bodies into jobs until shutdown.
    pub async fn run_dispatcher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let destinations = self.destination_names();
        let crms = self.crm_names();
        let signal = self.store.inbox_signal.clone();
        loop {
            let context = dispatch::DispatchContext {
                destinations: &destinations,
                crms: &crms,
                routing: self.routing.is_some(),
                consent: &self.consent,
                mappings: &self.mappings,
                phone_number_id: self.phone_number_id.as_deref(),
            };
            match dispatch::drain(&self.store, &context).await {
                Ok(drained) => {
                    if drained.bodies > 0 {
                        tracing::debug!(
                            bodies = drained.bodies,
                            jobs = drained.jobs.len(),
                            duplicates = drained.duplicates,
                            quarantined = drained.quarantined,
                            "Dispatched webhook bodies."
                        );
                    }
                    if !drained.jobs.is_empty() {
                        self.add_fresh(drained.jobs);
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "Dispatch failed; retrying in 1 s.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Schedules queue heads onto workers until shutdown, then waits up to `grace` for the
    /// jobs in flight (unfinished ones simply stay queued).
    pub async fn run_workers(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        // Task id → queue of every attempt in flight (at most `workers` entries).
        let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            let now = Utc::now();
            let mut next_due: Option<chrono::DateTime<Utc>> = None;
            match self.store.heads() {
                Ok(heads) => {
                    for job in heads {
                        if running.len() >= self.workers {
                            break;
                        }
                        let queue = job.key.queue().to_owned();
                        if in_flight.values().any(|q| *q == queue) {
                            continue;
                        }
                        let mut due = job.record.next_attempt_at;
                        if now < self.recovery_until && !self.is_fresh(&job.key) {
                            due = due.max(self.recovery_until);
                        }
                        if due > now {
                            next_due = Some(next_due.map_or(due, |d| d.min(due)));
                            continue;
                        }
                        let runner = self.clone();
                        let handle = running.spawn(async move { runner.attempt(job).await });
                        in_flight.insert(handle.id(), queue);
                    }
                }
                Err(err) => tracing::error!(error = %err, "Reading the queue failed."),
            }
            let sleep = next_due
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or(Duration::from_secs(30))
                .min(Duration::from_secs(30));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    in_flight.remove(&finished_id(done));
                }
                _ = shutdown.changed() => break,
            }
            // Collect every other attempt that finished meanwhile.
            while let Some(done) = running.try_join_next_with_id() {
                in_flight.remove(&finished_id(done));
            }
        }
        if !running.is_empty() {
            tracing::info!(
                in_flight = running.len(),
                grace_secs = grace.as_secs(),
                "Waiting for jobs in flight."
            );
            let _ = tokio::time::timeout(grace, async {
                while running.join_next().await.is_some() {}
            })
            .await;
        }
    }

    /// One attempt of one job, with its outcome recorded.
    async fn attempt(&self, job: Job) {
        let maybe_delivered = match self.fresh.lock() {
            Ok(mut fresh) => !fresh.remove(&job.key),
            Err(_) => true,
        };
        let queue = job.key.queue().to_owned();
        let destination = queue.split('/').next().unwrap_or("").to_owned();
        let span = tracing::info_span!(
            "job",
            queue = %logging::conversation(&queue),
            connector = %destination,
            attempt = job.record.attempts + 1,
        );
        async {
            let result = tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                self.execute(&job, maybe_delivered),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Retry {
                    reason: format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                    retry_after: None,
                })
            });
            let recorded = match result {
                Ok(link) => self.store.complete(&job, link).map(|()| None),
                Err(failure) => self
                    .store
                    .fail(&job, failure.clone(), &self.policy, Utc::now())
                    .map(|outcome| Some((failure, outcome))),
            };
            match recorded {
                Ok(None) => tracing::debug!("Job delivered."),
                Ok(Some((failure, Outcome::Retrying(at)))) => {
                    let retry_in_ms = (at - Utc::now()).num_milliseconds().max(0);
                    tracing::warn!(retry_in_ms, error = %failure_reason(&failure), "Delivery failed; retry scheduled.");
                }
                Ok(Some((failure, Outcome::DeadLettered(id)))) => {
                    tracing::error!(dead_letter = id, error = %failure_reason(&failure), "Delivery failed for good; job moved to the dead letters.");
                }
                Err(err) => {
                    tracing::error!(error = %err, "Recording the job outcome failed; it stays queued.");
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Does the work; returns the link to record on success.
    async fn execute(
        &self,
        job: &Job,
        maybe_delivered: bool,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, Failure> {
        let payload: JobPayload =
            serde_json::from_value(job.record.payload.clone()).map_err(|err| {
                Failure::Permanent {
                    reason: format!("job payload unreadable: {err}"),
                }
            })?;
        match payload {
            JobPayload::Confirmation {
                conversation,
                text,
                message_id,
            } => self
                .send_confirmation(&conversation, &text, &message_id)
                .await
                .map(|()| None),
            JobPayload::Reply {
                destination,
                conversation,
                reply,
            } => self
                .send_reply(&destination, &conversation, &reply)
                .await
                .map(|()| None),
            JobPayload::Outbound {
                phone_number_id,
                intent,
            } => self
                .send_outbound(&phone_number_id, &intent, maybe_delivered)
                .await
                .map(|()| None),
            JobPayload::Route {
                conversation,
                message,
                first_message,
            } => self
                .route(&conversation, &message, first_message)
                .await
                .map(|()| None),
            JobPayload::RouteTicket {
                conversation,
                message_id,
            } => self
                .route_ticket(&conversation, &message_id)
                .await
                .map(|()| None),
            JobPayload::Bot {
                conversation,
                message_id,
                index,
                reply,
            } => self
                .send_bot_reply(&conversation, &message_id, index, &reply)
                .await
                .map(|()| None),
            JobPayload::Activity {
                destination,
                conversation,
                activity,
            } => {
                self.log_activity(&destination, &conversation, &activity, maybe_delivered)
                    .await
            }
            JobPayload::ConnectorWebhook { connector, body } => {
                self.read_webhook(&connector, &body).await.map(|()| None)
            }
            JobPayload::Note {
                destination,
                conversation,
                text,
            } => {
                let Some(connector) = self.connectors.ticketing.get(&destination) else {
                    return Ok(None);
                };
                let Some(ticket) = self
                    .store
                    .link(&destination, &conversation)
                    .map_err(store_failure)?
                else {
                    return Ok(None);
                };
                connector
                    .note(&TicketRef(ticket), &text)
                    .await
                    .map_err(connector_failure)?;
                Ok(None)
            }
            JobPayload::Inbound {
                destination,
                conversation,
                message,
            } => {
                let connector = self.connectors.ticketing.get(&destination).ok_or_else(|| {
                    Failure::Permanent {
                        reason: format!("destination \"{destination}\" is no longer configured"),
                    }
                })?;
                let rendered = render::render(&message);
                let mut text = rendered.text;
                let mut attachments = Vec::new();
                if let Some(media) = rendered.media {
                    match &media.id {
                        Some(id) => match self
                            .graph
                            .download_media(
                                id,
                                &media.filename,
                                media.mime_type.as_deref(),
                                media.sha256.as_deref(),
                            )
                            .await
                        {
                            Ok(attachment) => attachments.push(attachment),
                            Err(GraphError::Retryable {
                                reason,
                                retry_after,
                            }) => {
                                return Err(Failure::Retry {
                                    reason: format!("media download: {reason}"),
                                    retry_after,
                                })
                            }
                            Err(GraphError::Permanent { reason, .. }) => {
                                text.push_str(&format!(
                                    "\n[the {} could not be downloaded from WhatsApp: {reason}]",
                                    media.kind
                                ));
                            }
                        },
                        None => text
                            .push_str(&format!("\n[the {} came without a media id]", media.kind)),
                    }
                }
                let inbound = InboundMessage {
                    id: message.id.clone(),
                    timestamp: chrono::DateTime::from_timestamp(message.timestamp, 0)
                        .unwrap_or_else(Utc::now),
                    kind: message.kind.clone(),
                    text,
                    attachments,
                };
                let link = link_key(&destination, &conversation.key());
                let ticket = self
                    .store
                    .link(&destination, &conversation.key())
                    .map_err(store_failure)?
                    .map(TicketRef);
                let context = DeliveryContext {
                    ticket,
                    maybe_delivered,
                };
                let delivered = connector
                    .deliver(&conversation, &inbound, &context)
                    .await
                    .map_err(connector_failure)?;
                crate::failpoint::hit("after_remote_success");
                if delivered.opened_ticket {
                    tracing::info!(ticket = %delivered.ticket, "Ticket opened for a conversation.");
                }
                if delivered.already_present {
                    tracing::info!(ticket = %delivered.ticket, "Message was already in the ticket; nothing written.");
                }
                Ok(Some((link, delivered.ticket.0.into_bytes())))
            }
        }
    }
}

/// The task id of a finished attempt, whether it returned or panicked.
fn finished_id(done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => id,
        Err(err) => {
            tracing::error!(error = %err, "A job attempt panicked; the job stays queued.");
            err.id()
        }
    }
}

fn failure_reason(failure: &Failure) -> &str {
    match failure {
        Failure::Retry { reason, .. } | Failure::Permanent { reason } => reason,
    }
}

fn connector_failure(err: ConnectorError) -> Failure {
    match err {
        ConnectorError::Retryable {
            retry_after,
            reason,
        } => Failure::Retry {
            reason,
            retry_after,
        },
        ConnectorError::Permanent { reason } => Failure::Permanent { reason },
    }
}

fn store_failure(err: StoreError) -> Failure {
    Failure::Retry {
        reason: format!("store: {err}"),
        retry_after: None,
    }
}
