//! HubSpot CRM: the contact upserted on a unique property, every message a WhatsApp
//! Communication on its timeline, and deal/contact webhooks as an event source.
//!
//! **Contacts.** `upsert_contact` is one `POST <objects_path>/contacts/batch/upsert` on
//! [`HubspotConfig::id_property`] (E.164 digits), setting `phone` to the E.164 number. The
//! WhatsApp profile name goes into `firstname`/`lastname` **only when HubSpot created the
//! contact** (`"new": true`, then one `PATCH`): an upsert overwrites every property it
//! carries, and a name a salesperson corrected in HubSpot is better than a WhatsApp profile
//! name (often a nickname or an emoji). That PATCH is best effort — the contact exists, so
//! a failure only warns. Contacts without a number are upserted on
//! [`HubspotConfig::bsuid_property`] when it is set, and fail permanently (dead letter with
//! a reason) when it is not.
//!
//! **Timeline.** `log_activity` writes one Communication (`hs_communication_channel_type =
//! WHATS_APP`, `logged_from = CRM`) — or one Note with `activity = "notes"` — **per message**,
//! all messages of the call in one `POST …/batch/create` (100 per call). Each entry says the
//! direction and ends with the marker `[wa:<message id>]`, and is associated to the contact
//! with the association type id looked up once (`GET <associations_path>/associations/
//! communications/contacts/labels`) and cached — never hard-coded.
//!
//! **Once in effect.** With `maybe_delivered` the connector lists the contact's associated
//! communications (v4 associations, read from the store, not from the eventually consistent
//! search index), reads their bodies 100 at a time, newest first, stopping once every wanted
//! marker is found, and writes only the messages whose marker is not there. Without it no
//! lookup is made. A 207 (some written, some not) is an error; the daemon's retry runs with
//! `maybe_delivered` and writes only the rest.
//!
//! **Rate limits.** A 429 with `policyName: DAILY` waits for the next full UTC hour at least an
//! hour away ([`client::daily_limit_wait`]); other 429s honour `Retry-After`, else HubSpot's
//! interval header, else 10 s.
//!
//! **Events.** See [`webhook`] for the signature. [`Crm::events_from_webhook`] turns each
//! `creation`/`propertyChange` notification for contacts, deals, tickets, companies or generic
//! objects into one [`SourceEvent`] with id `hubspot-<eventId>`, fetching the object and its
//! first associated contact that has a phone number (at most 10 are read; a contact event's
//! contact is the object itself). Other subscription types (deletions, merges, association
//! changes) and notifications that cannot be resolved (object gone, no contact, no phone) are
//! skipped with a reason in the log, never with a phone number. A failing fetch fails the
//! whole body (retryable or permanent as classified); events are deduplicated by id.
//!
//! # Event JSON
//!
//! The document mapping files read with JSONPath (stable; keys may be added, never renamed):
//!
//! ```json
//! {
//!   "event": "deal.propertyChange",
//!   "event_id": "567890123",
//!   "portal_id": 12345678,
//!   "object_type": "deals",
//!   "object_id": "65059681032",
//!   "object": {"dealname": "Order 55012", "dealstage": "closedwon", "amount": "12.5",
//!              "deal_currency_code": "OMR", "hs_object_id": "65059681032"},
//!   "contact": {"id": "512", "name": "Aisha Al-Said", "firstname": "Aisha",
//!               "lastname": "Al-Said", "email": null, "phone": "+96890000001"},
//!   "property": {"name": "dealstage", "value": "closedwon"},
//!   "change_source": "CRM_UI",
//!   "occurred_at": "2024-02-26T22:29:58.741Z"
//! }
//! ```
//!
//! - `event` is HubSpot's `subscriptionType`; `object_type` the API name (`contacts`,
//!   `deals`, `tickets`, `companies`) or, for generic subscriptions, the `objectTypeId`
//!   (e.g. `0-123` for orders).
//! - `object` holds the object's properties as HubSpot returns them *now* (strings): the
//!   built-in list per type, `event_properties`, and the changed property.
//! - `property` is the change the notification reported (`null` for creations): conditions
//!   should test `$.property.value`, not `$.object`, which may have changed since.
//! - `contact.phone` is E.164 from `id_property` when set, else `mobilephone`, else `phone`
//!   (E.164 when written internationally, else as stored, for the mapping's
//!   `default_country_code`). `name` is `firstname lastname`, or `null`.

mod client;
mod config;
pub mod webhook;

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::SecondsFormat;
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use crate::{
    Activity, ConnectorError, Contact, Conversation, Crm, CrmContactId, Direction, SourceEvent,
    WebhookRejection, WebhookRequest,
};
pub use client::daily_limit_wait;
use client::{AssociationType, HubspotClient, BATCH_LIMIT};
pub use config::{
    ActivityObject, HubspotConfig, DEFAULT_ASSOCIATIONS_PATH, DEFAULT_ID_PROPERTY,
    DEFAULT_OBJECTS_PATH, DEFAULT_TIMEOUT_SECS, DEFAULT_URL,
};

/// The marker that ends every timeline entry the connector writes: `[wa:<message id>]`.
pub fn marker(message_id: &str) -> String {
    format!("[wa:{message_id}]")
}

/// Escapes text for HubSpot's rich-text (HTML) bodies.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The body of one timeline entry (HubSpot bodies are rich text): a line with the direction,
/// who, the business number and the time; the message; the marker.
///
/// ```text
/// <p><strong>Inbound WhatsApp message</strong> from Aisha (+96890000001) to +15550783881, 2026-11-27 09:30:00 UTC</p>
/// <p>Where is my order?</p>
/// <p>[wa:wamid.…]</p>
/// ```
pub fn entry_body(conversation: &Conversation, activity: &Activity) -> String {
    let who = html_escape(&conversation.contact.display());
    let business = conversation
        .display_phone_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| format!("+{}", n.trim_start_matches('+')));
    let (title, detail) = match (activity.direction, business) {
        (Direction::Inbound, Some(b)) => ("Inbound", format!("from {who} to {}", html_escape(&b))),
        (Direction::Inbound, None) => ("Inbound", format!("from {who}")),
        (Direction::Outbound, Some(b)) => {
            ("Outbound", format!("from {} to {who}", html_escape(&b)))
        }
        (Direction::Outbound, None) => ("Outbound", format!("to {who}")),
    };
    let text = html_escape(activity.text.trim_end()).replace('\n', "<br>");
    format!(
        "<p><strong>{title} WhatsApp message</strong> {detail}, {at} UTC</p>\n<p>{text}</p>\n\
         <p>{marker}</p>",
        at = activity.at.format("%Y-%m-%d %H:%M:%S"),
        marker = html_escape(&marker(&activity.id)),
    )
}

/// `firstname` and `lastname` from a profile name: the first word, and the rest if any.
fn split_name(profile_name: &str) -> Option<(String, Option<String>)> {
    let name = profile_name.trim();
    if name.is_empty() {
        return None;
    }
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) if !rest.trim().is_empty() => {
            Some((first.to_owned(), Some(rest.trim().to_owned())))
        }
        _ => Some((name.to_owned(), None)),
    }
}

/// A phone number as a mapping should see it: E.164 (`+` and digits) when it is written
/// internationally (`+…` or `00…`), else as stored (a national number, which the mapping's
/// `default_country_code` completes). `None` when it has no digits.
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

/// The HubSpot connector (see the module docs).
pub struct HubspotConnector {
    config: HubspotConfig,
    client: HubspotClient,
    /// The parsed `public_url`, when webhooks are configured.
    public_url: Option<reqwest::Url>,
    /// The activity → contact association type, looked up on first use.
    association: OnceCell<AssociationType>,
}

impl fmt::Debug for HubspotConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's token and app secret are `Secret`s; the client redacts its header.
        f.debug_struct("HubspotConnector")
            .field("config", &self.config)
            .field("client", &self.client)
            .field("association", &self.association.get())
            .finish()
    }
}

/// Built-in properties fetched per object type for events (besides `event_properties` and
/// the changed property); empty means HubSpot's default set.
fn builtin_properties(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "contacts" => &[
            "firstname",
            "lastname",
            "email",
            "phone",
            "mobilephone",
            "lifecyclestage",
            "hubspot_owner_id",
        ],
        "deals" => &[
            "dealname",
            "dealstage",
            "pipeline",
            "amount",
            "deal_currency_code",
            "closedate",
            "hubspot_owner_id",
        ],
        "tickets" => &[
            "subject",
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "hubspot_owner_id",
        ],
        "companies" => &["name", "domain", "phone", "hubspot_owner_id"],
        _ => &[],
    }
}

/// What an event says about the contact, or why there is none.
type Resolved = Result<(Value, Value), &'static str>;

impl HubspotConnector {
    /// Builds the connector from a configuration that passed [`HubspotConfig::validate`] (no
    /// network call; use [`Crm::check`] for that).
    pub fn new(config: HubspotConfig) -> Result<Self, ConnectorError> {
        if let Some(problem) = config.validate().into_iter().next() {
            return Err(ConnectorError::Permanent {
                reason: format!("hubspot: {}: {}", problem.field, problem.message),
            });
        }
        let token = config
            .token
            .as_ref()
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "hubspot: token: required".to_owned(),
            })?;
        let client = HubspotClient::new(
            &config.url,
            &config.objects_path,
            &config.associations_path,
            token,
            std::time::Duration::from_secs(config.timeout_secs),
        )?;
        let public_url =
            match &config.public_url {
                Some(url) => Some(reqwest::Url::parse(url.trim()).map_err(|err| {
                    ConnectorError::Permanent {
                        reason: format!("hubspot: public_url is not valid: {err}"),
                    }
                })?),
                None => None,
            };
        Ok(HubspotConnector {
            config,
            client,
            public_url,
            association: OnceCell::new(),
        })
    }

    fn activity_type(&self) -> &'static str {
        self.config.activity.object_type()
    }

    /// The activity → contact association type, looked up once.
    async fn association(&self) -> Result<AssociationType, ConnectorError> {
        self.association
            .get_or_try_init(|| {
                self.client
                    .association_type(self.activity_type(), "contacts")
            })
            .await
            .copied()
    }

    /// The properties of one new timeline entry.
    fn entry_properties(&self, conversation: &Conversation, activity: &Activity) -> Value {
        let body = entry_body(conversation, activity);
        let timestamp = activity.at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut properties = match self.config.activity {
            ActivityObject::Communications => json!({
                "hs_communication_channel_type": "WHATS_APP",
                "hs_communication_logged_from": "CRM",
                "hs_communication_body": body,
                "hs_timestamp": timestamp,
            }),
            ActivityObject::Notes => json!({
                "hs_note_body": body,
                "hs_timestamp": timestamp,
            }),
        };
        if let Some(owner) = &self.config.owner_id {
            properties["hubspot_owner_id"] = Value::from(owner.trim());
        }
        properties
    }

    /// Which of the wanted markers are already in the contact's entries.
    async fn present_markers(
        &self,
        contact: &str,
        wanted: &HashSet<String>,
    ) -> Result<HashSet<String>, ConnectorError> {
        let mut found = HashSet::new();
        let mut ids = self
            .client
            .associated_ids("contacts", contact, self.activity_type())
            .await?;
        // Newest first (HubSpot ids grow over time), so a recent write is found early.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        let body_property = self.config.activity.body_property();
        for chunk in ids.chunks(BATCH_LIMIT) {
            let ids: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let entries = self
                .client
                .batch_read(
                    self.activity_type(),
                    &ids,
                    &[body_property],
                    "hubspot: reading the contact's entries",
                )
                .await?;
            for (_, properties) in entries {
                let Some(body) = properties.get(body_property).and_then(Value::as_str) else {
                    continue;
                };
                for wanted_marker in wanted {
                    if body.contains(wanted_marker.as_str())
                        || body.contains(&html_escape(wanted_marker))
                    {
                        found.insert(wanted_marker.clone());
                    }
                }
            }
            if found.len() == wanted.len() {
                break;
            }
        }
        Ok(found)
    }

    /// The object a notification names and its contact as event JSON (`object`, `contact`).
    async fn resolve(
        &self,
        object_type: &str,
        id: &str,
        property: Option<&str>,
    ) -> Result<Resolved, ConnectorError> {
        let mut properties: Vec<String> = builtin_properties(object_type)
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        if object_type == "contacts" {
            properties.push(self.config.id_property.trim().to_owned());
        }
        properties.extend(
            self.config
                .event_properties
                .iter()
                .map(|p| p.trim().to_owned()),
        );
        if let Some(name) = property
            .map(str::trim)
            .filter(|p| config::is_property_name(p))
        {
            properties.push(name.to_owned());
        }
        let mut seen = HashSet::new();
        properties.retain(|p| seen.insert(p.clone()));

        let Some(object) = self
            .client
            .object_with_contacts(object_type, id, &properties)
            .await?
        else {
            return Ok(Err("the object no longer exists"));
        };
        let object_properties = object["properties"].clone();
        if object_type == "contacts" {
            return Ok(match self.contact_json(id, &object_properties) {
                Some(contact) => Ok((object_properties, contact)),
                None => Err("the contact has no phone number"),
            });
        }

        let mut contact_ids: Vec<String> = Vec::new();
        for entry in object["associations"]["contacts"]["results"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(contact) = entry.get("id").and_then(client::id_of) {
                if !contact_ids.contains(&contact) {
                    contact_ids.push(contact);
                }
            }
        }
        if contact_ids.is_empty() {
            return Ok(Err("no contact is associated with the object"));
        }
        contact_ids.truncate(10);
        let mut read: Vec<&str> = builtin_properties("contacts").to_vec();
        read.push(self.config.id_property.trim());
        let contacts = self
            .client
            .batch_read(
                "contacts",
                &contact_ids,
                &read,
                "hubspot: reading the object's contacts",
            )
            .await?;
        // In association order: the first associated contact with a phone number.
        for wanted in &contact_ids {
            if let Some((cid, props)) = contacts.iter().find(|(cid, _)| cid == wanted) {
                if let Some(contact) = self.contact_json(cid, props) {
                    return Ok(Ok((object_properties, contact)));
                }
            }
        }
        Ok(Err("no associated contact has a phone number"))
    }

    /// `{"id", "name", "firstname", "lastname", "email", "phone"}`; `None` without a phone.
    /// The phone is the `id_property` digits as E.164 when set, else `mobilephone`, else
    /// `phone`.
    fn contact_json(&self, id: &str, properties: &Value) -> Option<Value> {
        let text = |name: &str| {
            properties
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let whatsapp = text(self.config.id_property.trim())
            .map(|v| v.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|digits| !digits.is_empty())
            .map(|digits| format!("+{digits}"));
        let phone = whatsapp.or_else(|| {
            ["mobilephone", "phone"]
                .iter()
                .filter_map(|p| text(p))
                .find_map(|p| event_phone(&p))
        })?;
        let first = text("firstname");
        let last = text("lastname");
        let name = [first.as_deref(), last.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Some(json!({
            "id": id,
            "name": if name.is_empty() { Value::Null } else { Value::from(name) },
            "firstname": first,
            "lastname": last,
            "email": text("email"),
            "phone": phone,
        }))
    }
}

/// One event from one notification (see "Event JSON" in the module docs).
fn build_event(
    n: &webhook::Notification,
    object_type: &str,
    object: Value,
    contact: Value,
) -> SourceEvent {
    let property = match &n.property_name {
        Some(name) => json!({
            "name": name,
            "value": n.property_value.clone().unwrap_or(Value::Null),
        }),
        None => Value::Null,
    };
    let mut event = Map::new();
    event.insert("event".into(), Value::from(n.subscription_type.as_str()));
    event.insert("event_id".into(), Value::from(n.event_id.as_str()));
    event.insert(
        "portal_id".into(),
        n.portal_id.clone().unwrap_or(Value::Null),
    );
    event.insert("object_type".into(), Value::from(object_type));
    event.insert("object_id".into(), Value::from(n.object_id.as_str()));
    event.insert("object".into(), object);
    event.insert("contact".into(), contact);
    event.insert("property".into(), property);
    event.insert(
        "change_source".into(),
        n.change_source.clone().map_or(Value::Null, Value::from),
    );
    event.insert(
        "occurred_at".into(),
        n.occurred_at
            .map(|t| Value::from(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .unwrap_or(Value::Null),
    );
    SourceEvent {
        id: format!("hubspot-{}", n.event_id),
        event: Value::Object(event),
    }
}

#[async_trait::async_trait]
impl Crm for HubspotConnector {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.read_one_contact().await?;
        // Proves the association schema is readable and warms the cache.
        self.association().await.map(drop)
    }

    async fn upsert_contact(&self, contact: &Contact) -> Result<CrmContactId, ConnectorError> {
        let digits: Option<String> = contact
            .wa_id
            .as_deref()
            .map(|d| d.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| !d.is_empty());
        let bsuid = contact
            .user_id
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let bsuid_property = self
            .config
            .bsuid_property
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());

        let mut properties = Map::new();
        let (id_property, id) = match (&digits, bsuid, bsuid_property) {
            (Some(digits), _, _) => {
                properties.insert("phone".into(), Value::from(format!("+{digits}")));
                if let (Some(bsuid), Some(property)) = (bsuid, bsuid_property) {
                    properties.insert(property.into(), Value::from(bsuid));
                }
                (self.config.id_property.trim(), digits.clone())
            }
            (None, Some(bsuid), Some(property)) => (property, bsuid.to_owned()),
            (None, Some(_), None) => {
                return Err(ConnectorError::Permanent {
                    reason: "hubspot: the contact has no phone number, only a BSUID; set \
                             bsuid_property to a unique contact property to log such contacts"
                        .to_owned(),
                })
            }
            (None, None, _) => {
                return Err(ConnectorError::Permanent {
                    reason: "hubspot: the contact has neither a phone number nor a BSUID"
                        .to_owned(),
                })
            }
        };
        let (contact_id, created) = self
            .client
            .upsert_contact(id_property, &id, Value::Object(properties))
            .await?;

        if created {
            if let Some((first, last)) = contact.profile_name.as_deref().and_then(split_name) {
                let mut name = json!({ "firstname": first });
                if let Some(last) = last {
                    name["lastname"] = Value::from(last);
                }
                if let Err(err) = self
                    .client
                    .update(
                        "contacts",
                        &contact_id,
                        name,
                        "hubspot: naming the new contact",
                    )
                    .await
                {
                    let kind = err.kind();
                    tracing::warn!(kind, contact = %contact_id, "Could not set the new HubSpot contact's name.");
                }
            }
        }
        Ok(CrmContactId(contact_id))
    }

    async fn log_activity(
        &self,
        contact: &CrmContactId,
        conversation: &Conversation,
        activities: &[Activity],
        maybe_delivered: bool,
    ) -> Result<(), ConnectorError> {
        let contact_id = contact.0.trim();
        if contact_id.is_empty() || !contact_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::Permanent {
                reason: "hubspot: the contact id is not a HubSpot record id".to_owned(),
            });
        }
        // One entry per message id, in the order given.
        let mut seen = HashSet::new();
        let mut pending: Vec<&Activity> = activities
            .iter()
            .filter(|a| !a.id.trim().is_empty() && seen.insert(a.id.as_str()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let association = self.association().await?;

        if maybe_delivered {
            let wanted: HashSet<String> = pending.iter().map(|a| marker(&a.id)).collect();
            let present = self.present_markers(contact_id, &wanted).await?;
            if !present.is_empty() {
                tracing::debug!(
                    present = present.len(),
                    of = wanted.len(),
                    "Some messages are already on the HubSpot timeline."
                );
            }
            pending.retain(|a| !present.contains(&marker(&a.id)));
        }

        for chunk in pending.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk
                .iter()
                .map(|activity| {
                    json!({
                        "properties": self.entry_properties(conversation, activity),
                        "associations": [{
                            "to": { "id": contact_id },
                            "types": [{
                                "associationCategory": association.category,
                                "associationTypeId": association.type_id,
                            }],
                        }],
                    })
                })
                .collect();
            self.client
                .batch_create(self.activity_type(), inputs)
                .await?;
        }
        Ok(())
    }

    fn verify_webhook(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookRejection> {
        match (&self.config.app_secret, &self.public_url) {
            (Some(secret), Some(public_url)) => {
                webhook::verify(secret.expose().trim().as_bytes(), public_url, request)
            }
            _ => Err(WebhookRejection::NotSupported),
        }
    }

    async fn events_from_webhook(&self, body: &[u8]) -> Result<Vec<SourceEvent>, ConnectorError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|err| ConnectorError::Permanent {
                reason: format!("hubspot: the webhook body is not JSON: {err}"),
            })?;
        let Some(notifications) = value.as_array() else {
            return Err(ConnectorError::Permanent {
                reason: "hubspot: the webhook body is not an array of notifications".to_owned(),
            });
        };
        let mut resolved: HashMap<(String, String, Option<String>), Resolved> = HashMap::new();
        let mut events = Vec::new();
        for entry in notifications {
            let n = match webhook::notification(entry) {
                Ok(n) => n,
                Err(reason) => {
                    tracing::warn!(reason, "HubSpot notification skipped.");
                    continue;
                }
            };
            let object_type = match n.object_type() {
                Ok(object_type) => object_type,
                Err(reason) => {
                    tracing::debug!(
                        event_id = %n.event_id,
                        subscription = %n.subscription_type,
                        reason,
                        "HubSpot notification skipped."
                    );
                    continue;
                }
            };
            let key = (
                object_type.clone(),
                n.object_id.clone(),
                n.property_name.clone(),
            );
            let outcome = match resolved.get(&key) {
                Some(outcome) => outcome.clone(),
                None => {
                    let outcome = self
                        .resolve(&object_type, &n.object_id, n.property_name.as_deref())
                        .await?;
                    resolved.insert(key, outcome.clone());
                    outcome
                }
            };
            match outcome {
                Ok((object, contact)) => {
                    events.push(build_event(&n, &object_type, object, contact));
                }
                Err(reason) => tracing::warn!(
                    event_id = %n.event_id,
                    subscription = %n.subscription_type,
                    object_id = %n.object_id,
                    reason,
                    "HubSpot notification skipped: no event."
                ),
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests;
