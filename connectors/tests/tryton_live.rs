//! The Tryton connector against a real Tryton 8.2 (JSON-RPC, party + sale, `phonenumbers`).
//!
//! Needs `target/tryton-test.env` (or the same variables in the environment), written by
//! `bash scripts/tryton-setup.sh`: `WABRIDGE_TEST_TRYTON_URL`, `WABRIDGE_TEST_TRYTON_DATABASE`,
//! `WABRIDGE_TEST_TRYTON_USERNAME` and `WABRIDGE_TEST_TRYTON_PASSWORD` (a user with a company
//! whose currency is OMR). Without them every test fails (never skips). Each test uses its own
//! phone numbers, so runs can share one database. Sales are made the way a Tryton user makes
//! them: create, Quote, Confirm (Tryton then processes the sale).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use chrono::{TimeZone as _, Utc};
use serde_json::{json, Value};
use wabridge_connectors::tryton::{marker, TrytonConfig, TrytonConnector};
use wabridge_connectors::{
    Activity, Contact, Conversation, Crm, CrmContactId, Direction, Secret, SourceEvent,
};

const KEYS: [&str; 4] = [
    "WABRIDGE_TEST_TRYTON_URL",
    "WABRIDGE_TEST_TRYTON_DATABASE",
    "WABRIDGE_TEST_TRYTON_USERNAME",
    "WABRIDGE_TEST_TRYTON_PASSWORD",
];

struct Live {
    url: String,
    database: String,
    username: String,
    password: String,
    http: reqwest::Client,
}

fn settings() -> HashMap<String, String> {
    let mut values = HashMap::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/tryton-test.env");
    if let Ok(text) = std::fs::read_to_string(file) {
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
    for key in KEYS {
        if let Ok(value) = std::env::var(key) {
            values.insert(key.to_owned(), value);
        }
    }
    values
}

fn live() -> Live {
    let settings = settings();
    let value = |key: &str| settings.get(key).filter(|v| !v.is_empty()).cloned();
    let (Some(url), Some(database), Some(username), Some(password)) = (
        value(KEYS[0]),
        value(KEYS[1]),
        value(KEYS[2]),
        value(KEYS[3]),
    ) else {
        panic!(
            "no Tryton test server configured ({}, or target/tryton-test.env): run \
             `bash scripts/tryton-setup.sh` first (as root)",
            KEYS.join(" / ")
        );
    };
    Live {
        url: url.trim_end_matches('/').to_owned(),
        database,
        username,
        password,
        http: reqwest::Client::new(),
    }
}

/// A JSON-RPC session of the test itself (what a Tryton user's client does).
struct Session<'a> {
    live: &'a Live,
    authorization: String,
    company: u64,
}

impl Live {
    fn config(&self) -> TrytonConfig {
        TrytonConfig::new(
            &self.url,
            &self.database,
            &self.username,
            Secret::new(&self.password),
        )
    }

    fn connector(&self) -> TrytonConnector {
        TrytonConnector::new(self.config()).expect("connector builds")
    }

    async fn post(&self, authorization: Option<&str>, method: &str, params: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/{}/rpc/", self.url, self.database))
            .json(&json!({"id": 1, "method": method, "params": params}));
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request.send().await.expect("Tryton answers");
        let status = response.status();
        let text = response.text().await.expect("Tryton body");
        assert!(status.is_success(), "{method}: {status}: {text}");
        let value: Value = serde_json::from_str(&text).expect("Tryton sends JSON");
        assert!(value.get("error").is_none(), "{method}: {text}");
        value["result"].clone()
    }

    async fn session(&self) -> Session<'_> {
        let login = self
            .post(
                None,
                "common.db.login",
                json!([self.username, {"password": self.password}, "en"]),
            )
            .await;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}:{}",
            self.username,
            login[0].as_u64().expect("user id"),
            login[1].as_str().expect("session")
        ));
        let authorization = format!("Session {token}");
        let user = self
            .post(
                Some(&authorization),
                "model.res.user.read",
                json!([[login[0]], ["company"], {}]),
            )
            .await;
        let company = user[0]["company"]
            .as_u64()
            .expect("the user has a company (see scripts/tryton-setup.sh)");
        Session {
            live: self,
            authorization,
            company,
        }
    }
}

impl Session<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.live
            .post(Some(&self.authorization), method, params)
            .await
    }

    /// The notes of a party, oldest first.
    async fn notes(&self, party: &CrmContactId) -> Vec<String> {
        self.call(
            "model.ir.note.search_read",
            json!([
                [["resource", "=", format!("party.party,{party}")]],
                0,
                null,
                [["id", "ASC"]],
                ["message"],
                {}
            ]),
        )
        .await
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n["message"].as_str().unwrap_or_default().to_owned())
        .collect()
    }

    /// A sale of 2 × 6.250 OMR for `party`, quoted and confirmed: Tryton processes it.
    async fn confirmed_sale(&self, party: &CrmContactId) -> u64 {
        let party: u64 = party.0.parse().expect("a party id");
        let context = json!({"company": self.company});
        let address = self
            .call(
                "model.party.address.create",
                json!([[{"party": party}], context]),
            )
            .await[0]
            .clone();
        let currency = self
            .call(
                "model.currency.currency.search",
                json!([[["code", "=", "OMR"]], 0, 1, null, {}]),
            )
            .await[0]
            .clone();
        let sale = self
            .call(
                "model.sale.sale.create",
                json!([[{
                    "party": party, "company": self.company, "currency": currency,
                    "invoice_address": address, "shipment_address": address,
                    "invoice_method": "manual", "shipment_method": "manual",
                    "lines": [["create", [{
                        "type": "line", "description": "Dates 1 kg", "quantity": 2,
                        "unit_price": {"__class__": "Decimal", "decimal": "6.250"}
                    }]]]
                }], context]),
            )
            .await[0]
            .as_u64()
            .expect("a sale id");
        self.call("model.sale.sale.quote", json!([[sale], context]))
            .await;
        self.call("model.sale.sale.confirm", json!([[sale], context]))
            .await;
        sale
    }
}

/// German mobile numbers (+49 151 …) that `phonenumbers` accepts, unique per call and run.
fn unique_digits() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (nanos / 1000 + n * 7_919 + u64::from(std::process::id()) * 104_729) % 100_000_000;
    format!("49151{mixed:08}")
}

fn conversation(name: Option<&str>) -> Conversation {
    Conversation {
        phone_number_id: "106540352242922".into(),
        display_phone_number: Some("15550783881".into()),
        contact: Contact {
            wa_id: Some(unique_digits()),
            user_id: None,
            profile_name: name.map(str::to_owned),
        },
    }
}

fn activity(conversation: &Conversation, n: u32, direction: Direction, text: &str) -> Activity {
    Activity {
        id: format!(
            "wamid.live.{}.{n}",
            conversation.contact.wa_id.as_deref().unwrap_or_default()
        ),
        direction,
        at: Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 30 + n, 0)
            .single()
            .expect("a time"),
        text: text.to_owned(),
    }
}

#[tokio::test]
async fn upsert_creates_the_party_then_finds_the_same_one() {
    let live = live();
    let conversation = conversation(Some("Layla Live"));
    let e164 = conversation.contact.e164().expect("a number");
    let connector = live.connector();
    let created = connector
        .upsert_contact(&conversation.contact)
        .await
        .expect("created");
    let found = connector
        .upsert_contact(&conversation.contact)
        .await
        .expect("found");
    assert_eq!(found, created);
    // Another connector (a new session) finds it too.
    let again = live
        .connector()
        .upsert_contact(&conversation.contact)
        .await
        .expect("found");
    assert_eq!(again, created);

    let session = live.session().await;
    let party: u64 = created.0.parse().expect("a party id");
    let parties = session
        .call("model.party.party.read", json!([[party], ["name"], {}]))
        .await;
    assert_eq!(parties[0]["name"], "Layla Live");
    let mechanisms = session
        .call(
            "model.party.contact_mechanism.search_read",
            json!([
                [["party", "=", party]],
                0,
                null,
                null,
                ["type", "value", "value_compact"],
                {}
            ]),
        )
        .await;
    let mechanisms = mechanisms.as_array().expect("mechanisms");
    assert_eq!(mechanisms.len(), 1, "{mechanisms:?}");
    assert_eq!(mechanisms[0]["type"], "mobile");
    assert_eq!(mechanisms[0]["value_compact"], e164.as_str());
    // phonenumbers formats the value for people: "+49 151 …".
    assert_ne!(mechanisms[0]["value"], e164.as_str());

    // A party without profile name is named after its number.
    let anonymous = conversation_without_name();
    let id = connector
        .upsert_contact(&anonymous.contact)
        .await
        .expect("created");
    let parties = session
        .call(
            "model.party.party.read",
            json!([[id.0.parse::<u64>().expect("id")], ["name"], {}]),
        )
        .await;
    assert_eq!(
        parties[0]["name"],
        format!("WhatsApp {}", anonymous.contact.e164().expect("a number"))
    );
}

fn conversation_without_name() -> Conversation {
    conversation(None)
}

#[tokio::test]
async fn notes_are_logged_once_in_order_and_not_duplicated_under_maybe_delivered() {
    let live = live();
    let connector = live.connector();
    let conversation = conversation(Some("Nadia Notes"));
    let party = connector
        .upsert_contact(&conversation.contact)
        .await
        .expect("upserted");
    let first = vec![
        activity(
            &conversation,
            1,
            Direction::Inbound,
            "Is my order on its way?",
        ),
        activity(
            &conversation,
            2,
            Direction::Outbound,
            "Yes, it left today.\nTracking: 1Z999",
        ),
    ];
    connector
        .log_activity(&party, &conversation, &first, false)
        .await
        .expect("logged");
    // A retry after a lost answer, with one new message.
    let mut retry = first.clone();
    retry.push(activity(&conversation, 3, Direction::Inbound, "Thanks!"));
    connector
        .log_activity(&party, &conversation, &retry, true)
        .await
        .expect("logged the rest");
    // And the same again: nothing to write.
    connector
        .log_activity(&party, &conversation, &retry, true)
        .await
        .expect("nothing to do");

    let notes = live.session().await.notes(&party).await;
    assert_eq!(notes.len(), 3, "{notes:#?}");
    for (note, activity) in notes.iter().zip(&retry) {
        assert!(note.ends_with(&marker(&activity.id)), "{note}");
        assert!(note.contains(&activity.text), "{note}");
    }
    let e164 = conversation.contact.e164().expect("a number");
    assert_eq!(
        notes[0],
        format!(
            "Inbound WhatsApp message from Nadia Notes ({e164}) to +15550783881, 2026-11-27 \
             09:31:00 UTC\nIs my order on its way?\n{}",
            marker(&retry[0].id)
        )
    );
    assert!(notes[1].starts_with("Outbound WhatsApp message from +15550783881 to Nadia Notes"));
}

/// The events about `sale` in a batch.
fn about(events: &[SourceEvent], sale: u64) -> Vec<&SourceEvent> {
    events
        .iter()
        .filter(|e| e.event["order"]["id"] == json!(sale))
        .collect()
}

#[tokio::test]
async fn a_confirmed_sale_comes_back_once_in_the_order_paid_shape() {
    let live = live();
    let connector = live.connector();
    let (events, cursor) = connector.events_since(None).await.expect("polled");
    assert!(events.is_empty(), "no cursor: no event");
    let cursor = cursor.expect("a position");

    let conversation = conversation(Some("Omar Orders"));
    let e164 = conversation.contact.e164().expect("a number");
    let party = connector
        .upsert_contact(&conversation.contact)
        .await
        .expect("upserted");
    let session = live.session().await;
    let sale = session.confirmed_sale(&party).await;
    let read = session
        .call(
            "model.sale.sale.read",
            json!([[sale], ["number", "state"], {}]),
        )
        .await;
    assert_eq!(read[0]["state"], "processing", "{read}");
    let number = read[0]["number"].as_str().expect("a number").to_owned();

    // Other tests may confirm sales meanwhile: read until the cursor stops moving.
    let mut seen = Vec::new();
    let mut cursor = Some(cursor);
    loop {
        let (events, next) = connector
            .events_since(cursor.as_deref())
            .await
            .expect("polled");
        seen.extend(about(&events, sale).into_iter().cloned());
        let done = events.is_empty();
        cursor = next;
        if done {
            break;
        }
    }
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let event = &seen[0];
    assert_eq!(event.id, format!("tryton-sale-{sale}-processing"));
    assert_eq!(event.event["event"], "order.paid");
    assert_eq!(event.event["id"], event.id.as_str());
    assert_eq!(event.event["order"]["number"], number.as_str());
    assert_eq!(event.event["order"]["total"], "12.500");
    assert_eq!(event.event["order"]["currency"], "OMR");
    assert_eq!(event.event["customer"]["name"], "Omar Orders");
    assert_eq!(event.event["customer"]["phone"], e164.as_str());
    assert_eq!(event.event["transition"], "state:processing");

    // Processing it again changes nothing that is reported.
    session
        .call(
            "model.sale.sale.process",
            json!([[sale], {"company": session.company}]),
        )
        .await;
    let (events, _) = connector
        .events_since(cursor.as_deref())
        .await
        .expect("polled");
    assert!(about(&events, sale).is_empty(), "{events:#?}");

    // And a first look after the sale exists reports nothing either.
    let (events, _) = live.connector().events_since(None).await.expect("polled");
    assert!(events.is_empty());
}

#[tokio::test]
async fn check_passes_and_fails_permanently_on_a_wrong_password_or_database() {
    let live = live();
    live.connector().check().await.expect("checked");

    let mut wrong = live.config();
    wrong.password = Secret::new("not-the-password");
    let err = TrytonConnector::new(wrong)
        .expect("builds")
        .check()
        .await
        .expect_err("refused");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("username or the password is wrong"),
        "{err}"
    );

    let mut wrong = live.config();
    wrong.database = "no_such_database".into();
    let err = TrytonConnector::new(wrong)
        .expect("builds")
        .check()
        .await
        .expect_err("no such database");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("has no database `no_such_database`"),
        "{err}"
    );
}
