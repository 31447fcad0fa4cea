//! End to end with the real binary and a contract-faithful HubSpot mock (wiremock, built from the
//! reference): a customer's WhatsApp message lands on the contact's timeline (contact upserted on
//! its unique property, a WHATS_APP communication associated with it), and a signed HubSpot deal
//! webhook becomes a template send through the shipped `hubspot_deal_won` mapping.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "pat-eu1-test-token";
const HUBSPOT_SECRET: &str = "hs-app-secret";
const PUBLIC_URL: &str = "https://wabridge.example.com";
const CUSTOMER: &str = "96891234571";

/// Answers a batch create with one new object per input, as HubSpot does.
struct BatchCreated;

impl Respond for BatchCreated {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let results: Vec<Value> = body["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, input)| {
                json!({"id": (9001 + i).to_string(), "properties": input["properties"],
                                     "createdAt": "2026-11-27T09:31:00.000Z",
                                     "updatedAt": "2026-11-27T09:31:00.000Z", "archived": false})
            })
            .collect();
        ResponseTemplate::new(201).set_body_json(json!({
            "status": "COMPLETE", "results": results,
            "startedAt": "2026-11-27T09:31:00.000Z", "completedAt": "2026-11-27T09:31:00.100Z"
        }))
    }
}

async fn hubspot() -> MockServer {
    let server = MockServer::start().await;
    let auth = format!("Bearer {TOKEN}");
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .and(header("Authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE",
            "results": [{"id": "512", "new": false, "properties": {"whatsapp_id": CUSTOMER},
                         "createdAt": "2026-11-01T10:00:00Z", "updatedAt": "2026-11-27T09:30:00Z",
                         "archived": false}],
            "startedAt": "2026-11-27T09:30:00Z", "completedAt": "2026-11-27T09:30:00Z"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v4/associations/communications/contacts/labels"))
        .and(header("Authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"category": "HUBSPOT_DEFINED", "typeId": 81, "label": null}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/communications/batch/create"))
        .and(header("Authorization", auth.as_str()))
        .respond_with(BatchCreated)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/crm/v4/objects/contacts/\d+/associations/communications$",
        ))
        .and(header("Authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&server)
        .await;
    // The deal the webhook points at, with its contact.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals/65059681032"))
        .and(header("Authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "65059681032",
            "properties": {"amount": "12.5", "deal_currency_code": "OMR", "dealname": "Order 55012",
                           "dealstage": "closedwon", "hs_object_id": "65059681032",
                           "pipeline": "default"},
            "associations": {"contacts": {"results": [{"id": "512", "type": "deal_to_contact"}]}},
            "createdAt": "2026-11-20T08:00:00Z", "updatedAt": "2026-11-27T09:00:01Z",
            "archived": false
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .and(header("Authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE",
            "results": [{"id": "512", "properties": {"firstname": "Aisha", "lastname": "Al-Said",
                         "phone": format!("+{CUSTOMER}"), "whatsapp_id": CUSTOMER},
                         "archived": false}],
            "startedAt": "2026-11-27T09:00:02Z", "completedAt": "2026-11-27T09:00:02Z"
        })))
        .mount(&server)
        .await;
    server
}

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/message_templates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{
                "id": "2001", "name": "deal_won_thank_you", "language": "en",
                "status": "APPROVED", "category": "UTILITY",
                "components": [{ "type": "BODY", "text": "Thank you {{1}}! {{2}} ({{3}}) is confirmed." }]
            }]
        })))
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.DEALWON" }]
        })))
        .mount(&graph)
        .await;
    graph
}

/// HubSpot's v3 signature: base64(HMAC-SHA256(secret, method + URI + body + timestamp)).
fn sign_v3(body: &str, timestamp: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HUBSPOT_SECRET.as_bytes()).expect("key");
    mac.update(format!("POST{PUBLIC_URL}/connectors/hubspot/webhook{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn post_hubspot(url: &str, body: &str, signature: &str, timestamp: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/connectors/hubspot/webhook"))
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", signature)
        .header("X-HubSpot-Request-Timestamp", timestamp)
        .body(body.to_owned())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn requests_to(server: &MockServer, route: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_reach_the_hubspot_timeline_and_a_won_deal_sends_its_template() {
    let hubspot = hubspot().await;
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "[connectors.archive]\nkind = \"files\"\n\n\
         [connectors.hubspot]\nkind = \"hubspot\"\ntoken = \"{TOKEN}\"\nurl = \"{}\"\n\
         app_secret = \"{HUBSPOT_SECRET}\"\npublic_url = \"{PUBLIC_URL}\"\n\n\
         [mappings]\ndir = \"{}\"\n\n\
         [[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\nwaba_id = \"555000\"\n",
        hubspot.uri(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings")
    );
    let config = write_config(dir.path(), &extra, Some(&graph.uri()));
    let daemon = Daemon::start(&config);

    // The customer writes: the contact is upserted once, the message logged once.
    let hello = text_webhook(
        CUSTOMER,
        "Aisha",
        "wamid.HS1",
        chrono::Utc::now().timestamp(),
        "Is my order ready?",
    );
    assert_eq!(daemon.post(&hello).await, 200);
    daemon.wait_idle(Duration::from_secs(20));
    let upserts = requests_to(&hubspot, "/crm/v3/objects/contacts/batch/upsert").await;
    assert_eq!(upserts.len(), 1, "{upserts:?}");
    assert_eq!(upserts[0]["inputs"][0]["id"], CUSTOMER);
    let logged = requests_to(&hubspot, "/crm/v3/objects/communications/batch/create").await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    let entry = &logged[0]["inputs"][0];
    assert_eq!(
        entry["properties"]["hs_communication_channel_type"],
        "WHATS_APP"
    );
    let text = entry["properties"]["hs_communication_body"]
        .as_str()
        .unwrap_or("");
    assert!(
        text.contains("Is my order ready?") && text.contains("[wa:wamid.HS1]"),
        "{text}"
    );
    assert_eq!(entry["associations"][0]["to"]["id"], "512");

    // The customer agreed to WhatsApp messages (recorded by the admin).
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        &format!("+{CUSTOMER}"),
        "--source",
        "crm",
        "--evidence",
        "deal form",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");

    // A deal is won in HubSpot. A forged notification is refused and stored nowhere.
    let now_ms = chrono::Utc::now().timestamp_millis().to_string();
    let body = format!(
        r#"[{{"eventId":567890123,"subscriptionId":234567,"portalId":12345678,"appId":987654,"occurredAt":{now_ms},"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":65059681032,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI","sourceId":"userId:45678"}}]"#
    );
    let forged = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    assert_eq!(
        post_hubspot(&daemon.url, &body, &forged, &now_ms).await,
        401
    );
    let signature = sign_v3(&body, &now_ms);
    assert_eq!(
        post_hubspot(&daemon.url, &body, &signature, &now_ms).await,
        200
    );
    // HubSpot retries the same notification: still one send.
    assert_eq!(
        post_hubspot(&daemon.url, &body, &signature, &now_ms).await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        daemon.wait_idle(Duration::from_secs(20));
        if !posted_bodies(&graph).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no template sent: {}",
            tail(&daemon.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = posted_bodies(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], CUSTOMER);
    assert_eq!(sent[0]["template"]["name"], "deal_won_thank_you");
    let params = &sent[0]["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "Aisha");
    assert_eq!(params[1]["text"], "Order 55012");
    assert_eq!(params[2]["currency"]["amount_1000"], 12500);

    // The accepted send is on the timeline too, as an outbound entry.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = requests_to(&hubspot, "/crm/v3/objects/communications/batch/create").await;
        if let Some(outbound) = logged.iter().find(|b| {
            b["inputs"][0]["properties"]["hs_communication_body"]
                .as_str()
                .is_some_and(|t| t.contains("[wa:wamid.DEALWON]"))
        }) {
            let text = outbound["inputs"][0]["properties"]["hs_communication_body"]
                .as_str()
                .unwrap_or("");
            assert!(text.contains("deal_won_thank_you"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the send was not logged: {logged:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
