//! Group commit: many writers, one flush.
//!
//! A writer inserts, then calls [`GroupCommit::flush`]. A single flusher task takes every
//! waiter queued so far, runs one `flush`, and answers them all. A waiter registered while a
//! flush runs waits for the next one, so every answered waiter's write preceded its flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// A flush request: the database to flush (a clone, so the flusher holds none between
/// flushes and dropping every `Store` closes the database) and where to answer.
type Waiter = (sled::Db, oneshot::Sender<Result<(), String>>);

/// Handle to the flusher task.
#[derive(Clone)]
pub struct GroupCommit {
    waiters: mpsc::UnboundedSender<Waiter>,
    flushes: Arc<AtomicU64>,
    db: sled::Db,
}

impl GroupCommit {
    /// Starts the flusher for `db` on the current tokio runtime.
    pub fn start(db: sled::Db) -> GroupCommit {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = flushes.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some((db, first)) = rx.recv().await {
                batch.push(first);
                while let Ok((_, next)) = rx.try_recv() {
                    batch.push(next);
                }
                let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = &result {
                    // Durability is lost: stop loudly rather than acknowledge anything more.
                    tracing::error!(error = %err, "Flush to disk failed; stopping.");
                }
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
                if result.is_err() {
                    std::process::exit(74);
                }
            }
        });
        GroupCommit {
            waiters: tx,
            flushes,
            db,
        }
    }

    /// Returns once a flush that started after this call has completed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .send((self.db.clone(), tx))
            .map_err(|_| StoreError::Flush("the flusher has stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(StoreError::Flush(err)),
            Err(_) => Err(StoreError::Flush("the flusher has stopped".into())),
        }
    }

    /// Flushes done so far (tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}
