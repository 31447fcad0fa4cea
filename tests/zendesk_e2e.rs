//! End to end with the real binary and a contract-faithful Zendesk mock (wiremock, built from
//! the reference): a WhatsApp message opens a ticket, and an agent's public comment, pushed by
//! Zendesk's signed webhook, goes back to the customer once (a forged webhook: 401, nothing
//! stored, nothing sent).

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEBHOOK_SECRET: &str = "zd-signing-secret";
const CUSTOMER: &str = "96891234572";
const REQUESTER: u64 = 4242;
const TICKET: u64 = 77;

async fn zendesk() -> MockServer {
    let server = MockServer::start().await;
    let uri = server.uri();
    let user = json!({
        "id": REQUESTER, "url": format!("{uri}/api/v2/users/{REQUESTER}.json"),
        "name": "Aisha", "email": null, "phone": format!("+{CUSTOMER}"),
        "external_id": format!("wa:{CUSTOMER}"), "role": "end-user", "active": true,
        "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:00:00Z"
    });
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [], "next_page": null, "previous_page": null, "count": 0
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users/create_or_update.json"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "user": user })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [], "meta": {"has_more": false, "after_cursor": null, "before_cursor": null},
            "links": {"next": null, "prev": null}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets.json"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", format!("{uri}/api/v2/tickets/{TICKET}.json"))
                .set_body_json(json!({
                    "ticket": {
                        "url": format!("{uri}/api/v2/tickets/{TICKET}.json"), "id": TICKET,
                        "external_id": format!("whatsapp:{PHONE_NUMBER_ID}:{CUSTOMER}"),
                        "created_at": "2026-11-27T09:30:05Z", "updated_at": "2026-11-27T09:30:05Z",
                        "subject": format!("WhatsApp: Aisha (+{CUSTOMER})"), "status": "new",
                        "requester_id": REQUESTER, "submitter_id": REQUESTER, "tags": ["whatsapp"],
                        "is_public": true
                    },
                    "audit": {"id": 7001, "ticket_id": TICKET, "events": []}
                })),
        )
        .mount(&server)
        .await;
    server
}

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.ZDREPLY" }]
        })))
        .mount(&graph)
        .await;
    graph
}

/// Zendesk's signature: base64(HMAC-SHA256(secret, timestamp + body)).
fn sign(timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("key");
    mac.update(format!("{timestamp}{body}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn push(url: &str, body: &str, signature: &str, timestamp: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/connectors/helpdesk/webhook"))
        .header("content-type", "application/json")
        .header("X-Zendesk-Webhook-Signature", signature)
        .header("X-Zendesk-Webhook-Signature-Timestamp", timestamp)
        .body(body.to_owned())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_is_opened_and_an_agents_signed_comment_goes_back_once() {
    let zendesk = zendesk().await;
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "[connectors.helpdesk]\nkind = \"zendesk\"\nurl = \"{}\"\nemail = \"bot@acme.example\"\n\
         api_token = \"zd-token\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n\n\
         [[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n",
        zendesk.uri()
    );
    let config = write_config(dir.path(), &extra, Some(&graph.uri()));
    let daemon = Daemon::start(&config);

    let hello = text_webhook(
        CUSTOMER,
        "Aisha",
        "wamid.ZD1",
        chrono::Utc::now().timestamp(),
        "Where is my parcel?",
    );
    assert_eq!(daemon.post(&hello).await, 200);
    daemon.wait_idle(Duration::from_secs(20));
    let created: Vec<Value> = zendesk
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/tickets.json")
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let ticket = &created[0]["ticket"];
    assert_eq!(
        ticket["subject"],
        format!("WhatsApp: Aisha (+{CUSTOMER})").as_str()
    );
    let comment = ticket["comment"]["body"]
        .as_str()
        .or_else(|| ticket["comment"]["html_body"].as_str())
        .unwrap_or("");
    assert!(
        comment.contains("Where is my parcel?") && comment.contains("[wa:wamid.ZD1]"),
        "{ticket}"
    );

    // The agent answers in Zendesk; the trigger's webhook arrives signed.
    let body = json!({
        "ticket_id": TICKET.to_string(), "comment_id": "9001",
        "comment": "It left our warehouse today.", "public": "true",
        "author_id": "1900000001", "requester_id": REQUESTER.to_string(),
        "author_role": "Agent", "updated_at": chrono::Utc::now().to_rfc3339()
    })
    .to_string();
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let forged = sign(&timestamp, "something else");
    assert_eq!(push(&daemon.url, &body, &forged, &timestamp).await, 401);
    let signature = sign(&timestamp, &body);
    assert_eq!(push(&daemon.url, &body, &signature, &timestamp).await, 200);
    // Zendesk retries the webhook: still one message to the customer.
    assert_eq!(push(&daemon.url, &body, &signature, &timestamp).await, 200);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        daemon.wait_idle(Duration::from_secs(20));
        if !posted_bodies(&graph).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent's comment was not sent: {}",
            tail(&daemon.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = posted_bodies(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], CUSTOMER);
    assert_eq!(sent[0]["text"]["body"], "It left our warehouse today.");
}
