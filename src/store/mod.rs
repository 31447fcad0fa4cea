//! The embedded store: one sled database with one tree per kind of record.
//!
//! Guarantees:
//! - [`Store::accept`] returns only after the raw webhook body is on disk (group commit: one
//!   flush covers every body written while the previous flush ran). A flush I/O error is fatal:
//!   the daemon stops rather than acknowledge what may not be on disk.
//! - Every state change that spans trees is one sled transaction with no I/O inside.
//! - Keys are big-endian ids, so iteration order is arrival order.

pub mod batch;
mod group_commit;
mod records;

use std::path::Path;
use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::Notify;

pub use group_commit::GroupCommit;
pub use records::{AuditEntry, DeadLetter, Quarantined, StatusRecord, UpdateRecord};

/// sled tree names, in one place.
pub mod trees {
    /// Signed webhook bodies not yet dispatched: `u64 id` → the bodies of one group commit
    /// (see [`super::batch`]).
    pub const INBOX: &str = "inbox";
    /// Bodies that could not be parsed: `u64 id` → [`super::Quarantined`].
    pub const QUARANTINE: &str = "quarantine";
    /// Dedupe keys already dispatched (`m:{wamid}`, `s:{id}:{status}`) → inbox id.
    pub const SEEN: &str = "seen";
    /// Queued jobs: queue key, `0x00`, timestamp, sequence → job record.
    pub const JOBS: &str = "jobs";
    /// Dead letters: `u64 id` → [`super::DeadLetter`].
    pub const DEAD: &str = "dead";
    /// Links between conversations and tickets: `destination 0x00 conversation` → ticket ref.
    pub const LINKS: &str = "links";
    /// Latest status per outbound message: wamid → [`super::StatusRecord`].
    pub const STATUSES: &str = "statuses";
    /// Other webhook updates (templates, preferences, account): `u64 id` → record.
    pub const UPDATES: &str = "updates";
    /// Consent ledger and window per conversation: `{phone_number_id}:{contact}` →
    /// [`crate::policy::ContactState`].
    pub const CONTACTS: &str = "contacts";
    /// The template catalog: `{name} 0x00 {language}` → [`crate::whatsapp::templates::Template`].
    pub const TEMPLATES: &str = "templates";
    /// Small daemon state (reply cursors per destination).
    pub const META: &str = "meta";
    /// Every outbound decision: `u64 id` → [`super::AuditEntry`].
    pub const AUDIT: &str = "audit";
    /// Outbound sends that reached Meta: idempotency key → wamid.
    pub const SENT: &str = "sent";
    /// Outbound sends written to Meta whose answer is not recorded yet: idempotency key → time.
    /// Present after a crash or a timeout: the outcome is unknown, the send is not repeated.
    pub const SENDING: &str = "sending";
    /// Conversation key → the routing state (menu position, escalation, away message sent).
    pub const ROUTING: &str = "routing";
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// The store directory is used by another process (a running daemon).
    #[error("the store at {0} is locked by another process (is the daemon running?)")]
    Locked(String),
    /// A flush failed: what was written may not be on disk.
    #[error("flush failed: {0}")]
    Flush(String),
    /// A record could not be (de)serialised.
    #[error("record: {0}")]
    Record(#[from] serde_json::Error),
}

impl StoreError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Sled(_) => "sled",
            StoreError::Locked(_) => "locked",
            StoreError::Flush(_) => "flush",
            StoreError::Record(_) => "record",
        }
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(err: sled::transaction::TransactionError<StoreError>) -> Self {
        match err {
            sled::transaction::TransactionError::Abort(err) => err,
            sled::transaction::TransactionError::Storage(err) => StoreError::Sled(err),
        }
    }
}

/// Where accepted webhook bodies go: the only thing ingress needs from storage.
///
/// The embedded implementation is [`Store`]; a broker-backed one (NATS JetStream) can take its
/// place without touching ingress.
#[async_trait::async_trait]
pub trait Inbox: Send + Sync {
    /// Stores a signed raw body; returns once it is durable.
    async fn accept(&self, raw: &[u8]) -> Result<(), StoreError>;
}

/// The sled database and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub(crate) inbox: sled::Tree,
    pub(crate) quarantine: sled::Tree,
    pub(crate) seen: sled::Tree,
    pub(crate) jobs: sled::Tree,
    pub(crate) dead: sled::Tree,
    pub(crate) links: sled::Tree,
    pub(crate) statuses: sled::Tree,
    pub(crate) updates: sled::Tree,
    pub(crate) contacts: sled::Tree,
    pub(crate) templates: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) sent: sled::Tree,
    pub(crate) sending: sled::Tree,
    pub(crate) routing: sled::Tree,
    commit: GroupCommit,
    /// Woken when a body lands in the inbox.
    pub inbox_signal: Arc<Notify>,
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|err| match err {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked(path.display().to_string())
                }
                sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                    StoreError::Locked(path.display().to_string())
                }
                other => StoreError::Sled(other),
            })?;
        let tree = |name: &str| db.open_tree(name);
        let inbox = tree(trees::INBOX)?;
        let inbox_signal = Arc::new(Notify::new());
        Ok(Store {
            commit: GroupCommit::start(db.clone(), inbox.clone(), inbox_signal.clone()),
            inbox_signal,
            inbox,
            quarantine: tree(trees::QUARANTINE)?,
            seen: tree(trees::SEEN)?,
            jobs: tree(trees::JOBS)?,
            dead: tree(trees::DEAD)?,
            links: tree(trees::LINKS)?,
            statuses: tree(trees::STATUSES)?,
            updates: tree(trees::UPDATES)?,
            contacts: tree(trees::CONTACTS)?,
            templates: tree(trees::TEMPLATES)?,
            audit: tree(trees::AUDIT)?,
            meta: tree(trees::META)?,
            sent: tree(trees::SENT)?,
            sending: tree(trees::SENDING)?,
            routing: tree(trees::ROUTING)?,
            db,
        })
    }

    /// The routing state of a conversation, if it was ever routed.
    pub fn routing_state(
        &self,
        conversation: &str,
    ) -> Result<Option<crate::routing::ConversationState>, StoreError> {
        match self.routing.get(conversation.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// A new id, unique and increasing for the life of the store.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Waits until everything written so far is on disk (group commit).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.flush().await
    }

    /// Flushes and stops the committer; once every clone is dropped the directory can be
    /// opened again (tests, orderly shutdown).
    pub async fn close(self) -> Result<(), StoreError> {
        self.commit.close().await
    }

    /// Group-commit flushes so far.
    pub fn flush_count(&self) -> u64 {
        self.commit.flush_count()
    }

    /// The ticket recorded for a conversation in a destination.
    pub fn link(
        &self,
        destination: &str,
        conversation: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .links
            .get(link_key(destination, conversation))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The conversation (`{phone_number_id}:{contact}`) whose ticket in `destination` is
    /// `ticket`, if wabridge recorded one.
    pub fn conversation_of(
        &self,
        destination: &str,
        ticket: &str,
    ) -> Result<Option<String>, StoreError> {
        let prefix = link_key(destination, "");
        for item in self.links.scan_prefix(&prefix) {
            let (key, value) = item?;
            if value.as_ref() == ticket.as_bytes() {
                return Ok(Some(
                    String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                ));
            }
        }
        Ok(None)
    }

    /// Every quarantined body, oldest first.
    pub fn quarantined(&self) -> Result<Vec<(u64, Quarantined)>, StoreError> {
        scan(&self.quarantine)
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        scan(&self.dead)
    }

    /// The latest status recorded for an outbound message.
    pub fn status(&self, wamid: &str) -> Result<Option<StatusRecord>, StoreError> {
        match self.statuses.get(wamid.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The consent ledger and window of a conversation (`{phone_number_id}:{contact}`).
    pub fn contact(&self, key: &str) -> Result<Option<crate::policy::ContactState>, StoreError> {
        match self.contacts.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Records a consent event (admin CLI/API), atomically; returns the new state.
    pub fn record_consent(
        &self,
        key: &str,
        event: crate::policy::ConsentEvent,
    ) -> Result<crate::policy::ContactState, StoreError> {
        let updated = self.contacts.update_and_fetch(key.as_bytes(), |old| {
            let mut state: crate::policy::ContactState = old
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or_default();
            state.record(event.clone());
            serde_json::to_vec(&state).ok()
        })?;
        match updated {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(crate::policy::ContactState::default()),
        }
    }

    /// Conversation keys (`{phone_number_id}:{contact}`) known for a contact.
    pub fn contact_keys(&self, contact: &str) -> Result<Vec<String>, StoreError> {
        let suffix = format!(":{contact}");
        let mut keys = Vec::new();
        for key in self.contacts.iter().keys() {
            let key = String::from_utf8_lossy(&key?).into_owned();
            if key.ends_with(&suffix) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// The template catalog, by name then language.
    pub fn templates(&self) -> Result<Vec<crate::whatsapp::templates::Template>, StoreError> {
        self.templates
            .iter()
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
            .collect()
    }

    /// Replaces the catalog with a fresh copy from Meta, atomically.
    pub fn replace_templates(
        &self,
        catalog: &[crate::whatsapp::templates::Template],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut fresh = std::collections::HashSet::new();
        for template in catalog {
            let key = template_key(&template.name, &template.language);
            batch.insert(key.clone(), encode(template)?);
            fresh.insert(key);
        }
        for key in self.templates.iter().keys() {
            let key = key?.to_vec();
            if !fresh.contains(&key) {
                batch.remove(key);
            }
        }
        self.templates.apply_batch(batch)?;
        Ok(())
    }

    /// Appends an audit entry.
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let id = self.next_id()?;
        self.audit.insert(id.to_be_bytes(), encode(entry)?)?;
        Ok(())
    }

    /// Audit entries, oldest first, optionally for one contact (digits).
    pub fn audit_entries(&self, contact: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let all: Vec<(u64, AuditEntry)> = scan(&self.audit)?;
        Ok(all
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| match (contact, &entry.contact) {
                (None, _) => true,
                (Some(digits), Some(key)) => key.ends_with(&format!(":{digits}")),
                (Some(_), None) => false,
            })
            .collect())
    }

    /// Number of webhook updates recorded (templates, preferences, account events).
    pub fn update_count(&self) -> usize {
        self.updates.len()
    }

    /// Bodies accepted but not dispatched yet.
    pub fn inbox_len(&self) -> usize {
        self.inbox
            .iter()
            .values()
            .filter_map(Result::ok)
            .map(|record| batch::count(&record))
            .sum()
    }
}

#[async_trait::async_trait]
impl Inbox for Store {
    async fn accept(&self, raw: &[u8]) -> Result<(), StoreError> {
        self.commit
            .append(batch::WHATSAPP.to_owned(), raw.to_vec())
            .await
    }
}

/// Where authenticated CRM/shop events go (the events route's view of storage).
#[async_trait::async_trait]
pub trait EventInbox: Send + Sync {
    /// Stores an event body from `source`; returns once it is durable.
    async fn accept_event(&self, source: &str, raw: &[u8]) -> Result<(), StoreError>;

    /// Stores a request connector `name`'s system pushed (already verified); returns once it
    /// is durable.
    async fn accept_webhook(&self, name: &str, raw: &[u8]) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
impl EventInbox for Store {
    async fn accept_event(&self, source: &str, raw: &[u8]) -> Result<(), StoreError> {
        self.commit
            .append(batch::event_origin(source), raw.to_vec())
            .await
    }

    async fn accept_webhook(&self, name: &str, raw: &[u8]) -> Result<(), StoreError> {
        self.commit
            .append(batch::connector_origin(name), raw.to_vec())
            .await
    }
}

/// Key of the links tree.
pub fn link_key(destination: &str, conversation: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(destination.len() + conversation.len() + 1);
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key.extend_from_slice(conversation.as_bytes());
    key
}

/// Key of the templates tree.
pub fn template_key(name: &str, language: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + language.len() + 1);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(language.as_bytes());
    key
}

/// Reads a big-endian u64 key.
pub fn id_of(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

fn scan<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<(u64, T)>, StoreError> {
    tree.iter()
        .map(|item| {
            let (key, value) = item?;
            Ok((id_of(&key), serde_json::from_slice(&value)?))
        })
        .collect()
}

/// Serialises a record for a tree.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(record)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Opens a store again after it was closed in this process. sled's background I/O threads
    /// may hold the directory lock for a moment after the last handle is dropped.
    pub(crate) async fn reopen(path: &Path) -> Store {
        for _ in 0..100 {
            match Store::open(path) {
                Ok(store) => return store,
                Err(StoreError::Locked(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(err) => panic!("reopen: {err}"),
            }
        }
        panic!("the store stayed locked after close");
    }

    #[tokio::test]
    async fn accepted_body_is_in_the_inbox_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            store.accept(b"{\"a\":1}").await.expect("accept");
            store.close().await.expect("close");
        }
        let store = crate::store::tests::reopen(dir.path()).await;
        let records: Vec<_> = store
            .inbox
            .iter()
            .values()
            .map(|v| v.expect("value"))
            .collect();
        assert_eq!(records.len(), 1);
        assert_eq!(
            batch::decode(&records[0]),
            Some(vec![(batch::WHATSAPP, &b"{\"a\":1}"[..])])
        );
    }

    #[tokio::test]
    async fn many_concurrent_accepts_share_flushes_and_all_land() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.accept(format!("{i}").as_bytes()).await
            }));
        }
        for task in tasks {
            task.await.expect("join").expect("accept");
        }
        assert_eq!(store.inbox_len(), 200);
        assert!(
            store.inbox.len() < 200,
            "bodies that waited together share one inbox record, saw {}",
            store.inbox.len()
        );
        assert!(
            store.commit.flush_count() < 200,
            "group commit should batch flushes, saw {}",
            store.commit.flush_count()
        );
    }

    #[tokio::test]
    async fn second_open_of_the_same_directory_reports_locked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Store::open(dir.path()).expect("open");
        match Store::open(dir.path()) {
            Err(StoreError::Locked(_)) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("expected Locked, got a second handle"),
        }
    }
}
