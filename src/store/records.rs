//! Records kept in the store's trees (JSON values).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A signed body that could not be parsed, kept for inspection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quarantined {
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Why it could not be parsed (with the JSON path).
    pub reason: String,
    /// The body as received (lossy UTF-8 for display; `body_base64` is exact).
    pub body: String,
    /// The exact bytes, base64.
    pub body_base64: String,
}

/// A job that will not be retried, with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job's key in the jobs tree (hex), where a replay puts it back.
    pub job_key: String,
    /// The queue (destination and conversation) it belonged to.
    pub queue: String,
    /// The job as it was.
    pub job: crate::queue::JobRecord,
    /// The last error.
    pub reason: String,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
}

/// The latest known status of a message the business sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusRecord {
    /// sent, delivered, read, played, failed (or a newer value, kept verbatim).
    pub status: String,
    /// Meta's timestamp of that status (unix seconds).
    pub timestamp: i64,
    /// The raw status object.
    pub raw: serde_json::Value,
}

impl StatusRecord {
    /// Rank for monotonic updates: a later stage never goes back (a late `delivered` never
    /// overwrites `read`); `failed` is final.
    pub fn rank(status: &str) -> u8 {
        match status {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "played" => 4,
            "failed" => 5,
            _ => 0,
        }
    }
}

/// A webhook update other than a message or a status (template status, quality, category,
/// user preferences, account updates, errors, unknown fields), kept for the parts that use them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// When it was dispatched.
    pub received_at: DateTime<Utc>,
    /// The webhook field (`message_template_status_update`, ...).
    pub field: String,
    /// The change value.
    pub value: serde_json::Value,
}

/// One decision about an outbound message, for `wabridge audit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// `{phone_number_id}:{contact}`, when known.
    pub contact: Option<String>,
    /// What was to be sent (`template order_confirmation (order_paid)`, `agent reply`, ...).
    pub subject: String,
    /// `sent`, `allow`, `block`, `defer`, `invalid`, `failed`, `unknown_outcome`.
    pub decision: String,
    /// Why, in words an agent understands.
    pub reason: String,
    /// The WhatsApp message id, for a message Meta accepted (or reported failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    /// The message's furthest status (`sent`, `delivered`, `read`, `failed`), joined from the
    /// status webhooks when the entry is read, whichever arrived first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

impl AuditEntry {
    /// An entry.
    pub fn new(
        at: DateTime<Utc>,
        contact: Option<String>,
        subject: &str,
        decision: &str,
        reason: String,
    ) -> AuditEntry {
        AuditEntry {
            at,
            contact,
            subject: subject.to_owned(),
            decision: decision.to_owned(),
            reason,
            wamid: None,
            delivery: None,
        }
    }

    /// The same entry about the WhatsApp message `wamid`.
    pub fn with_wamid(mut self, wamid: &str) -> AuditEntry {
        self.wamid = Some(wamid.to_owned());
        self
    }
}
