//! End to end with the real binary and a real Tryton 8.2 (started by `scripts/tryton-setup.sh`,
//! which `scripts/test.sh` runs): a customer's WhatsApp message creates their party and lands in
//! its notes; a sale confirmed for that party in Tryton becomes an `order.paid` event that the
//! shipped `order_paid` mapping turns into one `order_confirmation` template send.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A JSON-RPC session on the test Tryton, as a user of its client would act.
struct Tryton {
    url: String,
    database: String,
    username: String,
    password: String,
    authorization: String,
    http: reqwest::Client,
}

impl Tryton {
    /// Logs in with `target/tryton-test.env`; fails loudly when it is missing (never skips).
    async fn login() -> Tryton {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tryton-test.env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|err| {
            panic!(
                "{}: {err}. Start the test Tryton first: bash scripts/tryton-setup.sh",
                file.display()
            )
        });
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.trim_start_matches("export ").split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let var = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        let mut tryton = Tryton {
            url: var("WABRIDGE_TEST_TRYTON_URL"),
            database: var("WABRIDGE_TEST_TRYTON_DATABASE"),
            username: var("WABRIDGE_TEST_TRYTON_USERNAME"),
            password: var("WABRIDGE_TEST_TRYTON_PASSWORD"),
            authorization: String::new(),
            http: reqwest::Client::new(),
        };
        let login = tryton
            .call(
                "common.db.login",
                json!([tryton.username, {"password": tryton.password}, "en"]),
            )
            .await;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}:{}",
            tryton.username,
            login[0].as_u64().expect("user id"),
            login[1].as_str().expect("session")
        ));
        tryton.authorization = format!("Session {token}");
        tryton
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/{}/rpc/", self.url, self.database))
            .json(&json!({"id": 1, "method": method, "params": params}));
        if !self.authorization.is_empty() {
            request = request.header("Authorization", &self.authorization);
        }
        let text = request
            .send()
            .await
            .expect("Tryton answers")
            .text()
            .await
            .expect("body");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert!(value.get("error").is_none(), "{method}: {text}");
        value["result"].clone()
    }

    /// The party whose mobile number is `e164`, once wabridge created it.
    async fn party_of(&self, e164: &str) -> Option<u64> {
        let found = self
            .call(
                "model.party.contact_mechanism.search_read",
                json!([[["value_compact", "=", e164]], 0, 1, null, ["party"], {}]),
            )
            .await;
        found[0]["party"].as_u64()
    }

    /// A sale of 2 × 6.250 OMR for `party`, quoted and confirmed (Tryton processes it).
    async fn confirmed_sale(&self, party: u64) -> String {
        let user = self
            .call("model.res.user.get_preferences", json!([true, {}]))
            .await;
        let company = user["company"]
            .as_u64()
            .expect("a company (tryton-setup.sh)");
        let context = json!({"company": company});
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
                    "party": party, "company": company, "currency": currency,
                    "invoice_address": address, "shipment_address": address,
                    "invoice_method": "manual", "shipment_method": "manual",
                    "lines": [["create", [{
                        "type": "line", "description": "Dates 1 kg", "quantity": 2,
                        "unit_price": {"__class__": "Decimal", "decimal": "6.250"}
                    }]]]
                }], context]),
            )
            .await[0]
            .clone();
        self.call("model.sale.sale.quote", json!([[sale], context]))
            .await;
        self.call("model.sale.sale.confirm", json!([[sale], context]))
            .await;
        let read = self
            .call("model.sale.sale.read", json!([[sale], ["number"], {}]))
            .await;
        read[0]["number"]
            .as_str()
            .expect("a sale number")
            .to_owned()
    }
}

/// German mobile numbers (+49 151 …) that Tryton's `phonenumbers` accepts, unique per run.
fn unique_number() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("49151{:08}", nanos % 100_000_000)
}

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/message_templates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{
                "id": "1001", "name": "order_confirmation", "language": "en",
                "status": "APPROVED", "category": "UTILITY",
                "components": [{ "type": "BODY", "text": "Hi {{1}}, order {{2}} of {{3}} is confirmed." }]
            }]
        })))
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.TRYTON1" }]
        })))
        .mount(&graph)
        .await;
    graph
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_creates_the_party_and_a_confirmed_sale_sends_the_order_confirmation() {
    let tryton = Tryton::login().await;
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The section is named after the source the shipped order_paid mapping listens to.
    let extra = format!(
        "[connectors.shop]\nkind = \"tryton\"\nurl = \"{}\"\ndatabase = \"{}\"\n\
         username = \"{}\"\npassword = \"{}\"\n\n\
         [mappings]\ndir = \"{}\"\n\n\
         [[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\nwaba_id = \"555000\"\n",
        tryton.url,
        tryton.database,
        tryton.username,
        tryton.password,
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings")
    );
    let config = write_config(dir.path(), &extra, Some(&graph.uri()));
    let daemon = Daemon::start(&config);
    let customer = unique_number();
    let e164 = format!("+{customer}");

    let hello = text_webhook(
        &customer,
        "Aisha Tryton",
        &format!("wamid.TR{customer}"),
        chrono::Utc::now().timestamp(),
        "I would like to order dates",
    );
    assert_eq!(daemon.post(&hello).await, 200);
    daemon.wait_idle(Duration::from_secs(30));
    let party = tryton
        .party_of(&e164)
        .await
        .unwrap_or_else(|| panic!("no party for the customer: {}", tail(&daemon.log(), 30)));
    let notes = tryton
        .call(
            "model.ir.note.search_read",
            json!([
                [["resource", "=", format!("party.party,{party}")]],
                0,
                null,
                null,
                ["message"],
                {}
            ]),
        )
        .await;
    let notes: Vec<&str> = notes
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["message"].as_str())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("I would like to order dates"),
        "{notes:?}"
    );

    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        &e164,
        "--source",
        "shop",
        "--evidence",
        "checkout box",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");

    // A sale is confirmed in Tryton; the daemon polls it as an event.
    let number = tryton.confirmed_sale(party).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if posted_bodies(&graph)
            .await
            .iter()
            .any(|b| b["type"] == "template")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no confirmation sent: {}",
            tail(&daemon.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A few more polls: still one send.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.wait_idle(Duration::from_secs(15));
    let sent: Vec<Value> = posted_bodies(&graph)
        .await
        .into_iter()
        .filter(|b| b["type"] == "template")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], customer.as_str());
    assert_eq!(sent[0]["template"]["name"], "order_confirmation");
    let params = &sent[0]["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "Aisha Tryton");
    assert_eq!(params[1]["text"], number.as_str());
    assert_eq!(params[2]["currency"]["code"], "OMR");
    assert_eq!(params[2]["currency"]["amount_1000"], 12500);
}
