//! Tryton as a CRM: parties found or created by their WhatsApp number, every message a note
//! on the party, and paid sales as `order.paid` events — over JSON-RPC (trytond 7.0 or later;
//! tested with 8.2.1, see `scripts/tryton-setup.sh`).
//!
//! **Session.** The connector logs in with `common.db.login` on first use and keeps the
//! session; when Tryton answers 401 (expired or revoked session) it logs in again once and
//! repeats the call. A 401 on the login itself is a wrong username or password, a 404 an
//! unknown database; both are permanent. The `client` module's docs say how every answer is
//! classified.
//!
//! **Contacts.** `upsert_contact` searches `party.contact_mechanism` for a `mobile` or `phone`
//! mechanism whose `value_compact` is the E.164 number (Tryton fills `value_compact` with E.164
//! when the server has the `phonenumbers` package, else with the value as typed — so numbers
//! typed with spaces are only found when `phonenumbers` is installed) and returns its party,
//! the oldest match first. When none matches it creates the party — named after the WhatsApp
//! profile, else `WhatsApp +<E.164>` — with one mechanism of [`TrytonConfig::mechanism_type`]
//! holding the E.164 number. Contacts whose number Meta withholds (BSUID only) fail
//! permanently: Tryton has no field to find them by, and a party per BSUID would become a
//! duplicate as soon as the number is known.
//!
//! **Timeline.** Tryton's party and sale modules have no activity model; the connector writes
//! **one `ir.note` per message** attached to the party (`resource = party.party,<id>`: the
//! notes shown in the client's *Notes* tab), all messages of a call in one
//! `model.ir.note.create`. Each note says the direction, who, the business number and the time,
//! then the text, and ends with the marker `[wa:<message id>]` ([`note_text`]).
//!
//! **Once in effect.** With `maybe_delivered` the connector first searches the party's notes
//! for the markers (`message like %[wa:<id>]%`, 50 markers per search, checked again exactly on
//! our side) and writes only the messages not found. Without it no lookup is made.
//!
//! **Events.** [`Crm::events_since`] reads Tryton's own record of workflow transitions,
//! `ir.model.log` (`event = transition`), for sales (`resource like sale.sale,%`) that made the
//! transition [`TrytonConfig::paid_when`] names — `state:processing` (default: the sale was
//! confirmed and processed) or `invoice_state:paid` — after the cursor, 100 per poll, in log
//! order. A transition is reported once, whenever the sale changes later, and orders that
//! made it before wabridge started watching are never reported. The cursor is `log:<last
//! ir.model.log id>`; with no cursor (or an unreadable one) the connector returns no event and
//! the newest log id. A sale that cannot be read (deleted since) is skipped with a warning.
//!
//! The user the connector logs in as needs to create parties (any user may) and, for events,
//! to read sales: give it the group *Sales*.
//!
//! # Event JSON
//!
//! The same shape as the shop event `mappings/order_paid.toml` reads, so a Tryton connector
//! named after that mapping's `source` sends the order confirmation without a new mapping
//! (keys may be added, never renamed):
//!
//! ```json
//! {
//!   "event": "order.paid",
//!   "id": "tryton-sale-42-processing",
//!   "order": {"id": 42, "number": "SO42", "reference": null, "total": "12.500",
//!             "currency": "OMR", "state": "processing", "invoice_state": "none",
//!             "sale_date": "2026-11-27"},
//!   "customer": {"id": 7, "name": "Aisha Al-Said", "phone": "+96890000001"},
//!   "transition": "state:processing",
//!   "occurred_at": "2026-11-27T06:44:18.661246Z"
//! }
//! ```
//!
//! - `id` is `tryton-sale-<sale id>-processing` (or `-paid` with `paid_when = "invoice_paid"`):
//!   stable per sale, so a sale that re-enters the state is deduplicated.
//! - `order.total` is the sale's `total_amount` (taxes included) as Tryton's decimal text, with
//!   the currency's digits (`"12.500"` for OMR).
//! - `customer.phone` is the sale's contact when it is a phone or mobile, else the party's
//!   mechanism of `mechanism_type`, else its other phone type (by the party's order): E.164 when
//!   written internationally (`+…`, `00…`), else as stored (for the mapping's
//!   `default_country_code`); `null` when the party has none, which the mapping then blocks
//!   with a reason.

mod client;
mod config;

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{json, Value};

use crate::{
    Activity, ConnectorError, Contact, Conversation, Crm, CrmContactId, Direction, SourceEvent,
};
use client::{date_text, datetime_of, decimal_text, TrytonClient};
pub use config::{MechanismType, PaidWhen, TrytonConfig, DEFAULT_TIMEOUT_SECS};

/// The contact mechanism types a WhatsApp number is looked up in.
pub const PHONE_TYPES: [&str; 2] = ["mobile", "phone"];

/// Notes written per `create` call.
const NOTE_BATCH: usize = 100;

/// Markers searched per `search_read` call.
const MARKER_BATCH: usize = 50;

/// Transitions read per poll.
pub const EVENT_BATCH: usize = 100;

/// The prefix of the events cursor.
const CURSOR_PREFIX: &str = "log:";

/// The fields of a sale an event carries.
const SALE_FIELDS: [&str; 11] = [
    "number",
    "reference",
    "state",
    "invoice_state",
    "total_amount",
    "sale_date",
    "currency.code",
    "party",
    "party.name",
    "contact.type",
    "contact.value_compact",
];

/// The marker that ends every note the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("[wa:{message_id}]")
}

/// The text of one note: a line with the direction, who, the business number and the time;
/// the message; the marker.
///
/// ```text
/// Inbound WhatsApp message from Aisha (+96890000001) to +15550783881, 2026-11-27 09:30:00 UTC
/// Where is my order?
/// [wa:wamid.…]
/// ```
pub fn note_text(conversation: &Conversation, activity: &Activity) -> String {
    let who = conversation.contact.display();
    let business = conversation
        .display_phone_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| format!("+{}", n.trim_start_matches('+')));
    let (title, detail) = match (activity.direction, business) {
        (Direction::Inbound, Some(b)) => ("Inbound", format!("from {who} to {b}")),
        (Direction::Inbound, None) => ("Inbound", format!("from {who}")),
        (Direction::Outbound, Some(b)) => ("Outbound", format!("from {b} to {who}")),
        (Direction::Outbound, None) => ("Outbound", format!("to {who}")),
    };
    format!(
        "{title} WhatsApp message {detail}, {at} UTC\n{text}\n{marker}",
        at = activity.at.format("%Y-%m-%d %H:%M:%S"),
        text = activity.text.trim_end(),
        marker = marker(&activity.id),
    )
}

/// The event id of a sale's transition: `tryton-sale-<id>-<processing|paid>`.
pub fn event_id(sale: u64, paid_when: PaidWhen) -> String {
    format!("tryton-sale-{sale}-{}", paid_when.event_suffix())
}

/// A phone number as a mapping should see it: E.164 when written internationally (`+…` or
/// `00…`), else as stored. `None` when it has no digits.
fn event_phone(stored: &str) -> Option<String> {
    let trimmed = stored.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    if trimmed.starts_with('+') {
        Some(format!("+{digits}"))
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(format!("+{rest}"))
    } else {
        Some(trimmed.to_owned())
    }
}

/// The id of a party given as a [`CrmContactId`].
fn party_id(contact: &CrmContactId) -> Result<u64, ConnectorError> {
    contact
        .0
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ConnectorError::Permanent {
            reason: "tryton: the contact id is not a Tryton party id".to_owned(),
        })
}

/// A record id in a `many2one` value or a `model,id` reference.
fn record_id(value: &Value, model: &str) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .split_once(',')
            .filter(|(m, _)| *m == model)
            .and_then(|(_, id)| id.trim().parse().ok()),
        _ => None,
    }
}

/// The nested record of a dotted field (`"party.": {"name": …}`), as Tryton 8 returns it.
fn nested<'a>(record: &'a Value, field: &str, key: &str) -> Option<&'a Value> {
    record
        .get(format!("{field}."))
        .and_then(|nested| nested.get(key))
        .filter(|v| !v.is_null())
}

/// Parses `log:<id>`.
fn parse_cursor(cursor: &str) -> Option<u64> {
    cursor.trim().strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

fn render_cursor(log_id: u64) -> String {
    format!("{CURSOR_PREFIX}{log_id}")
}

/// The Tryton connector (see the module docs).
pub struct TrytonConnector {
    config: TrytonConfig,
    client: TrytonClient,
}

impl fmt::Debug for TrytonConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is a `Secret`; the client redacts the session.
        f.debug_struct("TrytonConnector")
            .field("config", &self.config)
            .field("client", &self.client)
            .finish()
    }
}

impl TrytonConnector {
    /// Builds the connector from a configuration that passed [`TrytonConfig::validate`] (no
    /// network call; use [`Crm::check`] for that).
    pub fn new(config: TrytonConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("tryton: {}: {}", problem.field, problem.message),
            });
        }
        let client = TrytonClient::new(
            &config.url,
            &config.database,
            &config.username,
            &config.password,
            std::time::Duration::from_secs(config.timeout_secs),
        )?;
        Ok(TrytonConnector { config, client })
    }

    /// The party owning a phone mechanism with this E.164 number, the oldest first.
    async fn find_party(&self, e164: &str) -> Result<Option<u64>, ConnectorError> {
        let found = self
            .client
            .search_read(
                "party.contact_mechanism",
                json!([["type", "in", PHONE_TYPES], ["value_compact", "=", e164]]),
                Some(1),
                json!([["id", "ASC"]]),
                &["party"],
                "tryton: looking up the party by its number",
            )
            .await?;
        Ok(found
            .first()
            .and_then(|mechanism| mechanism.get("party"))
            .and_then(|party| record_id(party, "party.party")))
    }

    /// Which of the wanted markers are already in the party's notes.
    async fn present_markers(
        &self,
        party: u64,
        wanted: &[String],
    ) -> Result<HashSet<String>, ConnectorError> {
        let mut found = HashSet::new();
        for chunk in wanted.chunks(MARKER_BATCH) {
            let mut any = vec![json!("OR")];
            any.extend(
                chunk
                    .iter()
                    .map(|marker| json!(["message", "like", format!("%{marker}%")])),
            );
            let notes = self
                .client
                .search_read(
                    "ir.note",
                    json!([["resource", "=", format!("party.party,{party}")], any]),
                    None,
                    json!([["id", "ASC"]]),
                    &["message"],
                    "tryton: looking up the party's notes",
                )
                .await?;
            for note in &notes {
                let Some(message) = note.get("message").and_then(Value::as_str) else {
                    continue;
                };
                for marker in chunk {
                    if message.contains(marker.as_str()) {
                        found.insert(marker.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// The newest `ir.model.log` id: where watching starts.
    async fn position(&self) -> Result<u64, ConnectorError> {
        let newest = self
            .client
            .search_read(
                "ir.model.log",
                json!([]),
                Some(1),
                json!([["id", "DESC"]]),
                &["id"],
                "tryton: reading the newest log entry",
            )
            .await?;
        Ok(newest
            .first()
            .and_then(|log| log.get("id"))
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// The phone of each party, as [`event_phone`] presents it (see the module docs).
    async fn party_phones(&self, parties: &[u64]) -> Result<HashMap<u64, String>, ConnectorError> {
        if parties.is_empty() {
            return Ok(HashMap::new());
        }
        let mechanisms = self
            .client
            .search_read(
                "party.contact_mechanism",
                json!([["party", "in", parties], ["type", "in", PHONE_TYPES]]),
                None,
                json!([["party", "ASC"], ["sequence", "ASC"], ["id", "ASC"]]),
                &["party", "type", "value", "value_compact"],
                "tryton: reading the customers' phone numbers",
            )
            .await?;
        let preferred = self.config.mechanism_type.as_str();
        // (preferred type first, then Tryton's order) per party.
        let mut phones: HashMap<u64, (bool, String)> = HashMap::new();
        for mechanism in &mechanisms {
            let Some(party) = mechanism
                .get("party")
                .and_then(|p| record_id(p, "party.party"))
            else {
                continue;
            };
            let stored = ["value_compact", "value"]
                .iter()
                .filter_map(|key| mechanism.get(*key).and_then(Value::as_str))
                .find_map(event_phone);
            let Some(phone) = stored else { continue };
            let is_preferred = mechanism.get("type").and_then(Value::as_str) == Some(preferred);
            match phones.get(&party) {
                Some((true, _)) => {}
                Some((false, _)) if !is_preferred => {}
                _ => {
                    phones.insert(party, (is_preferred, phone));
                }
            }
        }
        Ok(phones
            .into_iter()
            .map(|(party, (_, phone))| (party, phone))
            .collect())
    }

    /// The transitions after log id `after`, as events, and the last log id read.
    async fn events_after(&self, after: u64) -> Result<(Vec<SourceEvent>, u64), ConnectorError> {
        let paid_when = self.config.paid_when;
        let logs = self
            .client
            .search_read(
                "ir.model.log",
                json!([
                    ["id", ">", after],
                    ["event", "=", "transition"],
                    ["target", "=", paid_when.log_target()],
                    ["resource", "like", "sale.sale,%"],
                ]),
                Some(EVENT_BATCH),
                json!([["id", "ASC"]]),
                &["resource", "create_date"],
                "tryton: reading the sales' transitions",
            )
            .await?;
        let mut last = after;
        let mut transitions = Vec::new();
        let mut sale_ids = Vec::new();
        for log in &logs {
            let Some(log_id) = log.get("id").and_then(Value::as_u64) else {
                return Err(ConnectorError::Permanent {
                    reason: "tryton: a log entry without an id".to_owned(),
                });
            };
            last = last.max(log_id);
            let Some(sale) = log.get("resource").and_then(|r| record_id(r, "sale.sale")) else {
                continue;
            };
            if !sale_ids.contains(&sale) {
                sale_ids.push(sale);
                let at = log.get("create_date").and_then(datetime_of);
                transitions.push((sale, at));
            }
        }
        if sale_ids.is_empty() {
            return Ok((Vec::new(), last));
        }

        let sales = self
            .client
            .search_read(
                "sale.sale",
                json!([["id", "in", sale_ids]]),
                None,
                Value::Null,
                &SALE_FIELDS,
                "tryton: reading the sales",
            )
            .await?;
        let sales: HashMap<u64, &Value> = sales
            .iter()
            .filter_map(|sale| Some((sale.get("id")?.as_u64()?, sale)))
            .collect();
        let mut parties: Vec<u64> = sales
            .values()
            .filter_map(|sale| sale.get("party").and_then(|p| record_id(p, "party.party")))
            .collect();
        parties.sort_unstable();
        parties.dedup();
        let phones = self.party_phones(&parties).await?;

        let mut events = Vec::new();
        for (sale_id, at) in transitions {
            let Some(sale) = sales.get(&sale_id) else {
                tracing::warn!(
                    sale = sale_id,
                    "Tryton sale transition skipped: the sale cannot be read (deleted?)."
                );
                continue;
            };
            let party = sale.get("party").and_then(|p| record_id(p, "party.party"));
            let contact_phone = nested(sale, "contact", "type")
                .and_then(Value::as_str)
                .filter(|t| PHONE_TYPES.contains(t))
                .and_then(|_| nested(sale, "contact", "value_compact"))
                .and_then(Value::as_str)
                .and_then(event_phone);
            let phone = contact_phone.or_else(|| party.and_then(|p| phones.get(&p).cloned()));
            let text = |key: &str| sale.get(key).and_then(Value::as_str).map(str::to_owned);
            events.push(SourceEvent {
                id: event_id(sale_id, paid_when),
                event: json!({
                    "event": "order.paid",
                    "id": event_id(sale_id, paid_when),
                    "order": {
                        "id": sale_id,
                        "number": text("number"),
                        "reference": text("reference"),
                        "total": sale.get("total_amount").and_then(decimal_text),
                        "currency": nested(sale, "currency", "code"),
                        "state": text("state"),
                        "invoice_state": text("invoice_state"),
                        "sale_date": sale.get("sale_date").and_then(date_text),
                    },
                    "customer": {
                        "id": party,
                        "name": nested(sale, "party", "name"),
                        "phone": phone,
                    },
                    "transition": paid_when.log_target(),
                    "occurred_at": at.map(|at| at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
                }),
            });
        }
        Ok((events, last))
    }
}

#[async_trait::async_trait]
impl Crm for TrytonConnector {
    fn kind(&self) -> &'static str {
        "tryton"
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        let what = "tryton: counting parties";
        let count = self
            .client
            .model("party.party", "search_count", vec![json!([])], what)
            .await?;
        if count.is_u64() {
            Ok(())
        } else {
            Err(ConnectorError::Permanent {
                reason: format!("{what}: unexpected answer from Tryton: {count}"),
            })
        }
    }

    async fn upsert_contact(&self, contact: &Contact) -> Result<CrmContactId, ConnectorError> {
        let digits = contact.wa_id.as_deref().map(str::trim).unwrap_or_default();
        if digits.is_empty() {
            return Err(ConnectorError::Permanent {
                reason: if contact.user_id.is_some() {
                    "tryton: the contact has no phone number, only a BSUID; Tryton parties are \
                     found by their number, so this contact cannot be logged"
                        .to_owned()
                } else {
                    "tryton: the contact has neither a phone number nor a BSUID".to_owned()
                },
            });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::Permanent {
                reason: "tryton: the contact's number is not digits".to_owned(),
            });
        }
        let e164 = format!("+{digits}");
        if let Some(party) = self.find_party(&e164).await? {
            return Ok(CrmContactId(party.to_string()));
        }
        let name = contact
            .profile_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("WhatsApp {e164}"));
        let party = json!({
            "name": name,
            "contact_mechanisms": [["create", [{
                "type": self.config.mechanism_type.as_str(),
                "value": e164,
            }]]],
        });
        // A create racing another one (Tryton's party code sequence, the same customer) is
        // refused as not unique: look again, then create again, a few times.
        let mut attempts = 0;
        let ids = loop {
            attempts += 1;
            match self
                .client
                .create(
                    "party.party",
                    vec![party.clone()],
                    "tryton: creating the party",
                )
                .await
            {
                Err(ConnectorError::Retryable { reason, .. })
                    if attempts < 3 && reason.contains("must be unique") =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempts)).await;
                    if let Some(found) = self.find_party(&e164).await? {
                        return Ok(CrmContactId(found.to_string()));
                    }
                }
                other => break other?,
            }
        };
        let party = ids.first().ok_or_else(|| ConnectorError::Permanent {
            reason: "tryton: creating the party: Tryton returned no id".to_owned(),
        })?;
        Ok(CrmContactId(party.to_string()))
    }

    async fn log_activity(
        &self,
        contact: &CrmContactId,
        conversation: &Conversation,
        activities: &[Activity],
        maybe_delivered: bool,
    ) -> Result<(), ConnectorError> {
        let party = party_id(contact)?;
        // One note per message id, in the order given.
        let mut seen = HashSet::new();
        let mut pending: Vec<&Activity> = activities
            .iter()
            .filter(|a| !a.id.trim().is_empty() && seen.insert(a.id.as_str()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if maybe_delivered {
            let wanted: Vec<String> = pending.iter().map(|a| marker(&a.id)).collect();
            let present = self.present_markers(party, &wanted).await?;
            if !present.is_empty() {
                tracing::debug!(
                    present = present.len(),
                    of = wanted.len(),
                    "Some messages are already in the Tryton party's notes."
                );
            }
            pending.retain(|a| !present.contains(&marker(&a.id)));
        }
        let resource = format!("party.party,{party}");
        for chunk in pending.chunks(NOTE_BATCH) {
            let notes = chunk
                .iter()
                .map(|activity| {
                    json!({
                        "resource": resource,
                        "message": note_text(conversation, activity),
                    })
                })
                .collect();
            self.client
                .create("ir.note", notes, "tryton: writing the notes")
                .await?;
        }
        Ok(())
    }

    async fn events_since(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<SourceEvent>, Option<String>), ConnectorError> {
        let parsed = cursor.and_then(parse_cursor);
        let Some(after) = parsed else {
            if cursor.is_some() {
                tracing::warn!("Unreadable Tryton events cursor; watching from now on.");
            }
            // First look: start from now, never report old orders.
            let position = self.position().await?;
            return Ok((Vec::new(), Some(render_cursor(position))));
        };
        let (events, last) = self.events_after(after).await?;
        Ok((events, Some(render_cursor(last))))
    }
}

#[cfg(test)]
mod tests;
