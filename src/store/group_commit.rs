//! Group commit: many writers, one write and one flush.
//!
//! Ingress hands each signed body to the committer task and waits. The committer takes every
//! body queued so far, writes them as **one** inbox record (a batch), runs **one** flush, and
//! answers them all; bodies that arrive meanwhile form the next batch. So both the sled write
//! and the flush are paid once per batch, not once per request, and every answered body was
//! written before the flush that covered it. A flush error is fatal: the daemon stops rather
//! than acknowledge what may not be on disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{batch, StoreError};

/// Largest batch, in bytes of bodies, written as one inbox record.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Largest batch, in bodies.
const MAX_BATCH_BODIES: usize = 1024;

type Reply = oneshot::Sender<Result<(), String>>;

enum Request {
    /// Store this body (with its origin) durably.
    Append(String, Vec<u8>, Reply),
    /// Answer once everything written before this request is on disk.
    Flush(Reply),
    /// Flush, answer, and stop (releasing the database).
    Close(Reply),
}

/// Handle to the committer task.
#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
    flushes: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the committer for `inbox` of `db` on the current tokio runtime; `landed` is
    /// woken after each batch reaches the disk.
    pub fn start(db: sled::Db, inbox: sled::Tree, landed: Arc<Notify>) -> GroupCommit {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        tokio::spawn(async move {
            let mut carried: Option<Request> = None;
            loop {
                let first = match carried.take() {
                    Some(request) => request,
                    None => match rx.recv().await {
                        Some(request) => request,
                        None => return,
                    },
                };
                let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
                let mut bytes = 0;
                let mut replies: Vec<Reply> = Vec::new();
                let mut close: Option<Reply> = None;
                let mut next = Some(first);
                while let Some(request) = next.take() {
                    match request {
                        Request::Append(origin, body, reply) => {
                            let full = !bodies.is_empty()
                                && (bytes + body.len() > MAX_BATCH_BYTES
                                    || bodies.len() >= MAX_BATCH_BODIES);
                            if full {
                                carried = Some(Request::Append(origin, body, reply));
                                break;
                            }
                            bytes += body.len();
                            bodies.push((origin, body));
                            replies.push(reply);
                        }
                        Request::Flush(reply) => replies.push(reply),
                        Request::Close(reply) => {
                            close = Some(reply);
                            break;
                        }
                    }
                    next = rx.try_recv().ok();
                }
                let wrote = !bodies.is_empty();
                let db_for_flush = db.clone();
                let inbox_for_write = inbox.clone();
                let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
                    if !bodies.is_empty() {
                        let id = db_for_flush.generate_id().map_err(|e| e.to_string())?;
                        inbox_for_write
                            .insert(id.to_be_bytes(), batch::encode(&bodies))
                            .map_err(|e| e.to_string())?;
                        crate::failpoint::hit("after_commit_before_flush");
                    }
                    db_for_flush.flush().map(|_| ()).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|err| Err(err.to_string()));
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = &result {
                    // Durability is lost: stop loudly rather than acknowledge anything more.
                    tracing::error!(error = %err, "Write or flush to disk failed; stopping.");
                }
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
                if result.is_err() {
                    std::process::exit(74);
                }
                if wrote {
                    landed.notify_one();
                }
                if let Some(reply) = close {
                    // Release the database before answering, so the caller may reopen it.
                    drop(db);
                    drop(inbox);
                    let _ = reply.send(Ok(()));
                    return;
                }
            }
        });
        GroupCommit {
            requests: tx,
            flushes,
        }
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Request) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .map_err(|_| StoreError::Flush("the committer has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(StoreError::Flush(err)),
            Err(_) => Err(StoreError::Flush("the committer has stopped".into())),
        }
    }

    /// Stores `body` (from `origin`, see [`super::batch`]) in the inbox; returns once it is on
    /// disk.
    pub async fn append(&self, origin: String, body: Vec<u8>) -> Result<(), StoreError> {
        self.call(|reply| Request::Append(origin, body, reply))
            .await
    }

    /// Returns once everything written before this call is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(Request::Flush).await
    }

    /// Flushes and stops the committer, so the database can be closed and reopened.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.call(Request::Close).await
    }

    /// Flushes done so far (tests, benchmarks, metrics).
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}
