//! The durable job queue: keyed FIFO queues on sled, retry schedule, dead letters, replay.
//!
//! A job belongs to one *queue* — a destination and a conversation — and is ordered inside it
//! by Meta's timestamp, then arrival. Only the head of a queue may run, so the jobs of one
//! conversation reach a destination one at a time and in order, while other queues proceed.
//!
//! "Processing" is never persisted (as in Meilisearch's task queue): a crash leaves every
//! unfinished job queued, and the next attempt is told it may already have taken effect (the
//! connector then looks up before writing). Retry times are persisted (`next_attempt_at`),
//! computed from the attempt number, so retries survive restarts.

mod retry;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

pub use retry::RetryPolicy;

use crate::store::{encode, DeadLetter, Store, StoreError};

/// A job as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    /// What to do (interpreted by the sync workers).
    pub payload: serde_json::Value,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was first attempted.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Not before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// The last error, if an attempt failed.
    pub last_error: Option<String>,
}

/// A job to put in a queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The queue: destination and conversation, e.g. `helpdesk/106540352242922:16505551234`.
    pub queue: String,
    /// Order inside the queue: Meta's timestamp (unix seconds).
    pub timestamp: i64,
    /// Tie-breaker: arrival sequence.
    pub sequence: u64,
    /// What to do.
    pub payload: serde_json::Value,
}

/// The key of a job in the jobs tree: `queue 0x00 timestamp(8, BE) sequence(8, BE)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(pub Vec<u8>);

impl JobKey {
    /// Builds the key.
    pub fn new(queue: &str, timestamp: i64, sequence: u64) -> JobKey {
        let mut key = Vec::with_capacity(queue.len() + 17);
        key.extend_from_slice(queue.as_bytes());
        key.push(0);
        // Offset so negative timestamps still sort below positive ones.
        key.extend_from_slice(&((timestamp as u64) ^ (1 << 63)).to_be_bytes());
        key.extend_from_slice(&sequence.to_be_bytes());
        JobKey(key)
    }

    /// The queue part.
    pub fn queue(&self) -> &str {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(self.0.len());
        std::str::from_utf8(&self.0[..end]).unwrap_or("")
    }

    /// Hex form, for the dead letters and the CLI.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(text: &str) -> Option<JobKey> {
        hex::decode(text).ok().map(JobKey)
    }
}

/// A job at the head of its queue.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its key.
    pub key: JobKey,
    /// Its record.
    pub record: JobRecord,
}

/// How a failed attempt ends.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Try again later, not before `retry_after` if the remote system said so.
    Retry {
        /// What went wrong.
        reason: String,
        /// The remote system's requested wait.
        retry_after: Option<std::time::Duration>,
    },
    /// Never retry: straight to the dead letters.
    Permanent {
        /// What went wrong.
        reason: String,
    },
}

/// What happened to a failed job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Scheduled for another attempt at this time.
    Retrying(DateTime<Utc>),
    /// Moved to the dead letters under this id.
    DeadLettered(u64),
}

/// Counts for `wabridge queue stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Webhook bodies accepted and not yet dispatched.
    pub inbox: usize,
    /// Jobs queued.
    pub jobs: usize,
    /// Queues (destination × conversation) with work.
    pub queues: usize,
    /// Queue heads waiting for a retry time.
    pub waiting_retry: usize,
    /// Dead letters.
    pub dead: usize,
    /// Quarantined bodies.
    pub quarantined: usize,
    /// Jobs per destination.
    pub per_destination: HashMap<String, usize>,
}

/// The queue operations the dispatcher, the workers and the admin tools use.
///
/// The embedded implementation is on sled ([`Store`]); a broker (NATS JetStream) can implement
/// the same trait.
pub trait JobQueue: Send + Sync {
    /// The head job of every queue, in queue order.
    fn heads(&self) -> Result<Vec<Job>, StoreError>;
    /// Removes a finished job, and records `link` (links-tree key and value) in the same
    /// transaction.
    fn complete(&self, job: &Job, link: Option<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError>;
    /// Records a failed attempt: rescheduled with backoff, or dead-lettered.
    fn fail(
        &self,
        job: &Job,
        failure: Failure,
        policy: &RetryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError>;
    /// Puts a dead letter back in its queue with a fresh attempt count; returns the job key.
    fn replay(&self, dead_id: u64, now: DateTime<Utc>) -> Result<Option<JobKey>, StoreError>;
    /// Counts.
    fn stats(&self, now: DateTime<Utc>) -> Result<Stats, StoreError>;
}

impl Store {
    /// Inserts jobs inside a transaction of the jobs tree (used by the dispatcher).
    pub(crate) fn insert_job(
        jobs: &TransactionalTree,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<JobKey, ConflictableTransactionError<StoreError>> {
        let key = JobKey::new(&job.queue, job.timestamp, job.sequence);
        let record = JobRecord {
            payload: job.payload.clone(),
            attempts: 0,
            created_at: now,
            first_attempt_at: None,
            next_attempt_at: now,
            last_error: None,
        };
        let value = encode(&record).map_err(ConflictableTransactionError::Abort)?;
        jobs.insert(key.0.clone(), value)?;
        Ok(key)
    }

    /// Reads one job (tests and tools).
    pub fn job(&self, key: &JobKey) -> Result<Option<JobRecord>, StoreError> {
        match self.jobs.get(&key.0)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }
}

impl JobQueue for Store {
    fn heads(&self) -> Result<Vec<Job>, StoreError> {
        let mut heads = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        // Skip-scan: the first key of a queue is its head; then jump past that queue.
        while let Some(item) = self.jobs.range(from.clone()..).next() {
            let (key, value) = item?;
            let key = JobKey(key.to_vec());
            let queue_len = key.queue().len();
            from = key.0[..queue_len].to_vec();
            from.push(1);
            let record = serde_json::from_slice(&value)?;
            heads.push(Job { key, record });
        }
        Ok(heads)
    }

    fn complete(&self, job: &Job, link: Option<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        (&self.jobs, &self.links).transaction(|(jobs, links)| {
            jobs.remove(job.key.0.clone())?;
            if let Some((key, value)) = &link {
                links.insert(key.clone(), value.clone())?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    fn fail(
        &self,
        job: &Job,
        failure: Failure,
        policy: &RetryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let mut record = job.record.clone();
        record.attempts += 1;
        let first = *record.first_attempt_at.get_or_insert(now);
        let (reason, retry_after, permanent) = match failure {
            Failure::Retry {
                reason,
                retry_after,
            } => (reason, retry_after, false),
            Failure::Permanent { reason } => (reason, None, true),
        };
        record.last_error = Some(reason.clone());
        let exhausted = record.attempts >= policy.max_attempts
            || (now - first).to_std().unwrap_or_default() >= policy.max_age;
        if !permanent && !exhausted {
            let delay = policy.delay(record.attempts, retry_after);
            record.next_attempt_at =
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            let value = encode(&record)?;
            // Only update the job as we read it; if it changed meanwhile (it cannot while it
            // runs, as only one worker holds a queue head) the newer state wins.
            let _unchanged =
                self.jobs
                    .compare_and_swap(&job.key.0, Some(encode(&job.record)?), Some(value))?;
            return Ok(Outcome::Retrying(record.next_attempt_at));
        }
        let reason = if exhausted && !permanent {
            format!("gave up after {} attempts: {reason}", record.attempts)
        } else {
            reason
        };
        let id = self.next_id()?;
        let dead = DeadLetter {
            job_key: job.key.to_hex(),
            queue: job.key.queue().to_owned(),
            job: record,
            reason,
            dead_at: now,
        };
        let value = encode(&dead)?;
        (&self.jobs, &self.dead).transaction(|(jobs, dead)| {
            jobs.remove(job.key.0.clone())?;
            dead.insert(&id.to_be_bytes(), value.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(Outcome::DeadLettered(id))
    }

    fn replay(&self, dead_id: u64, now: DateTime<Utc>) -> Result<Option<JobKey>, StoreError> {
        let Some(bytes) = self.dead.get(dead_id.to_be_bytes())? else {
            return Ok(None);
        };
        let dead: DeadLetter = serde_json::from_slice(&bytes)?;
        let Some(key) = JobKey::from_hex(&dead.job_key) else {
            return Ok(None);
        };
        let mut record = dead.job;
        record.attempts = 0;
        record.first_attempt_at = None;
        record.next_attempt_at = now;
        let value = encode(&record)?;
        (&self.jobs, &self.dead).transaction(|(jobs, dead)| {
            dead.remove(&dead_id.to_be_bytes())?;
            jobs.insert(key.0.clone(), value.clone())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(Some(key))
    }

    fn stats(&self, now: DateTime<Utc>) -> Result<Stats, StoreError> {
        let heads = self.heads()?;
        let mut per_destination: HashMap<String, usize> = HashMap::new();
        for item in self.jobs.iter().keys() {
            let key = JobKey(item?.to_vec());
            let destination = key.queue().split('/').next().unwrap_or("").to_owned();
            *per_destination.entry(destination).or_default() += 1;
        }
        Ok(Stats {
            inbox: self.inbox_len(),
            jobs: self.jobs.len(),
            queues: heads.len(),
            waiting_retry: heads
                .iter()
                .filter(|h| h.record.next_attempt_at > now)
                .count(),
            dead: self.dead.len(),
            quarantined: self.quarantine.len(),
            per_destination,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: 3,
            max_age: Duration::from_secs(3600),
        }
    }

    fn enqueue(store: &Store, jobs: &[NewJob]) -> Vec<JobKey> {
        let now = Utc::now();
        store
            .jobs
            .transaction(|tree| {
                jobs.iter()
                    .map(|job| Store::insert_job(tree, job, now))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("enqueue")
    }

    fn job(queue: &str, timestamp: i64, sequence: u64) -> NewJob {
        NewJob {
            queue: queue.into(),
            timestamp,
            sequence,
            payload: serde_json::json!({ "n": sequence }),
        }
    }

    #[tokio::test]
    async fn head_of_each_queue_is_its_earliest_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        enqueue(
            &store,
            &[
                job("d/a", 20, 1),
                job("d/a", 10, 2),
                job("d/b", 5, 3),
                job("d/ab", 1, 4),
            ],
        );
        let heads = store.heads().expect("heads");
        let seen: Vec<(String, u64)> = heads
            .iter()
            .map(|h| {
                (
                    h.key.queue().to_owned(),
                    h.record.payload["n"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [("d/a".into(), 2), ("d/ab".into(), 4), ("d/b".into(), 3)]
        );
        store.complete(&heads[0], None).expect("complete");
        let heads = store.heads().expect("heads");
        assert_eq!(heads[0].record.payload["n"], 1);
    }

    #[tokio::test]
    async fn retry_is_persisted_with_a_growing_delay_then_dead_letters_after_max_attempts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        enqueue(&store, &[job("d/a", 1, 1)]);
        let now = Utc::now();
        let retry = || Failure::Retry {
            reason: "HTTP 503".into(),
            retry_after: None,
        };
        let head = store.heads().expect("heads").remove(0);
        let Outcome::Retrying(first) = store.fail(&head, retry(), &policy(), now).expect("fail")
        else {
            panic!("expected a retry")
        };
        assert!(first > now);
        let head = store.heads().expect("heads").remove(0);
        assert_eq!(head.record.attempts, 1);
        assert_eq!(head.record.next_attempt_at, first);
        let Outcome::Retrying(_) = store.fail(&head, retry(), &policy(), now).expect("fail") else {
            panic!("expected a retry")
        };
        let head = store.heads().expect("heads").remove(0);
        let outcome = store.fail(&head, retry(), &policy(), now).expect("fail");
        let Outcome::DeadLettered(id) = outcome else {
            panic!("expected a dead letter, got {outcome:?}")
        };
        assert!(store.heads().expect("heads").is_empty());
        let dead = store.dead_letters().expect("dead");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].0, id);
        assert!(dead[0]
            .1
            .reason
            .contains("gave up after 3 attempts: HTTP 503"));

        let key = store.replay(id, now).expect("replay").expect("found");
        assert!(store.dead_letters().expect("dead").is_empty());
        let record = store.job(&key).expect("job").expect("queued again");
        assert_eq!(record.attempts, 0);
        assert_eq!(record.payload["n"], 1);
    }

    #[tokio::test]
    async fn permanent_failure_dead_letters_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        enqueue(&store, &[job("d/a", 1, 1), job("d/a", 2, 2)]);
        let head = store.heads().expect("heads").remove(0);
        let failure = Failure::Permanent {
            reason: "HTTP 403 no permission".into(),
        };
        let outcome = store
            .fail(&head, failure, &policy(), Utc::now())
            .expect("fail");
        assert!(matches!(outcome, Outcome::DeadLettered(_)));
        // The conversation goes on with its next job.
        let heads = store.heads().expect("heads");
        assert_eq!(heads[0].record.payload["n"], 2);
    }

    #[tokio::test]
    async fn retry_after_from_the_remote_system_is_honoured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        enqueue(&store, &[job("d/a", 1, 1)]);
        let now = Utc::now();
        let head = store.heads().expect("heads").remove(0);
        let failure = Failure::Retry {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        let Outcome::Retrying(at) = store.fail(&head, failure, &policy(), now).expect("fail")
        else {
            panic!("expected retry")
        };
        assert!(at - now >= chrono::Duration::seconds(7));
    }

    #[tokio::test]
    async fn retries_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = {
            let store = Store::open(dir.path()).expect("open");
            enqueue(&store, &[job("d/a", 1, 1)]);
            let head = store.heads().expect("heads").remove(0);
            let failure = Failure::Retry {
                reason: "503".into(),
                retry_after: None,
            };
            let Outcome::Retrying(at) = store
                .fail(&head, failure, &policy(), Utc::now())
                .expect("fail")
            else {
                panic!("expected retry")
            };
            store.close().await.expect("close");
            at
        };
        let store = crate::store::tests::reopen(dir.path()).await;
        let head = store.heads().expect("heads").remove(0);
        assert_eq!(head.record.attempts, 1);
        assert_eq!(head.record.next_attempt_at, at);
    }
}
