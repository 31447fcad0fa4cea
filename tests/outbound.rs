//! End-to-end outbound: a signed shop event → the shipped `order_paid` mapping → the policy
//! gate → a template send to a contract-faithful Graph API mock (wiremock), with dedupe, the
//! consent (no send without a recorded opt-in), and a STOP that blocks the next send.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHOP_SECRET: &str = "shop-secret";

/// The event of the fixed interface.
fn order_event(order_id: u64, phone: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": "order.paid", "id": format!("evt_{order_id}"),
        "order": { "number": order_id.to_string(), "total": "24.500", "currency": "OMR" },
        "customer": { "name": "Aisha", "phone": phone }
    }))
    .expect("json")
}

async fn post_event(url: &str, source: &str, body: &[u8], secret: Option<&str>) -> u16 {
    use hmac::{Hmac, Mac};
    let mut request = reqwest::Client::new()
        .post(format!("{url}/events/{source}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(secret) = secret {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        let signature = hex::encode(mac.finalize().into_bytes());
        request = request.header("x-signature", signature);
    }
    request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The WABA's catalog: `order_confirmation` (en) approved, with the three body parameters the
/// shipped `order_paid` mapping fills.
async fn mount_catalog(graph: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/message_templates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{
                "id": "1001", "name": "order_confirmation", "language": "en",
                "status": "APPROVED", "category": "UTILITY",
                "components": [{ "type": "BODY", "text": "Hi {{1}}, order {{2}} of {{3}} is confirmed." }]
            }],
            "paging": { "cursors": { "before": "A", "after": "B" } }
        })))
        .mount(graph)
        .await;
}

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    mount_catalog(&graph).await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": "96891234567", "wa_id": "96891234567" }],
            "messages": [{ "id": "wamid.SENT1", "message_status": "accepted" }]
        })))
        .mount(&graph)
        .await;
    graph
}

fn start(dir: &std::path::Path, graph: &MockServer) -> Daemon {
    // The fixed interface: [[whatsapp.numbers]] and [sources.shop] as written there.
    let extra = format!(
        "[connectors.archive]\nkind = \"files\"\n\n[mappings]\ndir = \"{}\"\n\n[[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\nwaba_id = \"555000\"\nmps = 80\n\n[sources.shop]\nauth = \"hmac-sha256\"\nheader = \"X-Signature\"\nsecret = \"{SHOP_SECRET}\"\n",
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings")
    );
    let config = write_config(dir, &extra, Some(&graph.uri()));
    let daemon = Daemon::start(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out) = daemon.cli(&["templates", "list", "--json"]);
        if out.contains("order_confirmation") {
            return daemon;
        }
        assert!(
            Instant::now() < deadline,
            "catalog not synced: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paid_order_event_becomes_one_template_send_and_stop_blocks_the_next() {
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(dir.path(), &graph);

    // Refused: no signature, wrong signature, unknown source. Nothing is stored or sent.
    let event = order_event(10482, "9123 4567");
    assert_eq!(post_event(&daemon.url, "shop", &event, None).await, 401);
    assert_eq!(
        post_event(&daemon.url, "shop", &event, Some("wrong")).await,
        401
    );
    assert_eq!(
        post_event(&daemon.url, "crm", &event, Some(SHOP_SECRET)).await,
        404
    );

    // Before any opt-in: accepted, but blocked by the policy gate; nothing is sent.
    let early = order_event(10481, "9123 4567");
    assert_eq!(
        post_event(&daemon.url, "shop", &early, Some(SHOP_SECRET)).await,
        202
    );
    daemon.wait_idle(Duration::from_secs(15));
    assert!(posted_bodies(&graph).await.is_empty());
    let (_, out) = daemon.cli(&["dlq", "list"]);
    assert!(out.contains("opt-in") || out.contains("opted in"), "{out}");

    // The admin records the customer's opt-in (while the daemon runs).
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96891234567",
        "--source",
        "checkout",
        "--evidence",
        "order form box",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");

    // Accepted twice (the shop retries): one send.
    assert_eq!(
        post_event(&daemon.url, "shop", &event, Some(SHOP_SECRET)).await,
        202
    );
    assert_eq!(
        post_event(&daemon.url, "shop", &event, Some(SHOP_SECRET)).await,
        202
    );
    daemon.wait_idle(Duration::from_secs(15));
    let sent = posted_bodies(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}\n{}", tail(&daemon.log(), 30));
    let body = &sent[0];
    assert_eq!(body["to"], "96891234567");
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "order_confirmation");
    assert_eq!(
        body["template"]["components"][0]["parameters"][2]["currency"]["amount_1000"],
        24500
    );

    // The customer writes STOP: the next order is not sent, and the dead letter says why.
    let stop = text_webhook(
        "96891234567",
        "Aisha",
        "wamid.STOP",
        chrono::Utc::now().timestamp(),
        "STOP",
    );
    assert_eq!(daemon.post(&stop).await, 200);
    daemon.wait_idle(Duration::from_secs(15));
    // The STOP is confirmed (the window is open), as a reply to the customer's message.
    let sent = posted_bodies(&graph).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["type"], "text");
    assert_eq!(sent[1]["context"]["message_id"], "wamid.STOP");
    assert!(sent[1]["text"]["body"]
        .as_str()
        .unwrap_or("")
        .contains("START"));
    let next = order_event(10483, "+968 9123 4567");
    assert_eq!(
        post_event(&daemon.url, "shop", &next, Some(SHOP_SECRET)).await,
        202
    );
    daemon.wait_idle(Duration::from_secs(15));
    assert_eq!(
        posted_bodies(&graph).await.len(),
        2,
        "nothing sent after STOP"
    );
    let (_, out) = daemon.cli(&["dlq", "list"]);
    assert!(out.contains("blocked by policy"), "{out}");
    let stats = daemon.stats();
    assert_eq!(
        stats["dead"], 2,
        "the early send and the one after STOP: {stats}"
    );
    let (code, out) = daemon.cli(&["audit", "--contact", "+96891234567"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].contains("\tblock\t") && lines[0].contains("opted in"),
        "{out}"
    );
    assert!(
        lines[1].contains("\tsent\ttemplate order_confirmation"),
        "{out}"
    );
    assert!(lines[2].contains("\tsent\topt-out confirmation"), "{out}");
    assert!(
        lines[3].contains("\tblock\t") && lines[3].contains("opted out"),
        "{out}"
    );
    assert!(!out.contains("91234567\t"), "numbers are redacted: {out}");
    let (_, out) = daemon.cli(&["contacts", "show", "+96891234567"]);
    assert!(
        out.contains("recent decisions:") && out.contains("  block  template order_confirmation"),
        "{out}"
    );
    // Events are counted apart from Meta's webhooks (one: the STOP).
    let metrics = reqwest::get(format!("{}/metrics", daemon.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "wabridge_webhooks_accepted_total 1",
        "wabridge_webhooks_rejected_total{reason=\"signature\"} 0",
        "wabridge_pushed_accepted_total{kind=\"event\"} 4",
        "wabridge_pushed_rejected_total{kind=\"event\"} 2",
        "wabridge_pushed_accepted_total{kind=\"connector\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_131026_dead_letters_and_marks_the_contact_undeliverable() {
    let graph = MockServer::start().await;
    mount_catalog(&graph).await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": { "message": "(#131026) Message undeliverable", "type": "OAuthException",
                       "code": 131026, "error_data": { "messaging_product": "whatsapp", "details": "Message Undeliverable." },
                       "fbtrace_id": "AbC" }
        })))
        .expect(1)
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(dir.path(), &graph);
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96891234568",
        "--source",
        "checkout",
        "--evidence",
        "box",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");
    let event = order_event(20001, "9123 4568");
    assert_eq!(
        post_event(&daemon.url, "shop", &event, Some(SHOP_SECRET)).await,
        202
    );
    daemon.wait_idle(Duration::from_secs(15));
    let (_, out) = daemon.cli(&["dlq", "list"]);
    assert!(out.contains("131026"), "{out}");
    let (_, out) = daemon.cli(&["contacts", "show", "+96891234568", "--json"]);
    assert!(
        out.contains("Undeliverable") || out.contains("undeliverable"),
        "{out}"
    );
}

/// A status webhook for a message the business sent, as Meta sends it.
fn status_webhook(wamid: &str, status: &str, to: &str, error: Option<(i64, &str)>) -> Vec<u8> {
    let mut value = serde_json::json!({
        "id": wamid, "status": status, "timestamp": chrono::Utc::now().timestamp().to_string(),
        "recipient_id": to
    });
    if let Some((code, title)) = error {
        value["errors"] = serde_json::json!([{
            "code": code, "title": title, "message": title,
            "error_data": { "details": format!("{title} (details)") }
        }]);
    }
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "555000", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
            "statuses": [value]
        }}]}]
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_join_the_sends_in_either_order_and_failures_reach_the_ticket() {
    use wiremock::matchers::body_string_contains;
    let graph = MockServer::start().await;
    mount_catalog(&graph).await;
    for (order, wamid) in [("30001", "wamid.SENT1"), ("30002", "wamid.SENT2")] {
        Mock::given(method("POST"))
            .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
            .and(body_string_contains(order))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": "96891234569", "wa_id": "96891234569" }],
                "messages": [{ "id": wamid, "message_status": "accepted" }]
            })))
            .mount(&graph)
            .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(dir.path(), &graph);
    let customer = "96891234569";

    // The customer wrote first: the conversation has a ticket (a transcript).
    let hello = text_webhook(
        customer,
        "Aisha",
        "wamid.HELLO",
        chrono::Utc::now().timestamp(),
        "Hello",
    );
    assert_eq!(daemon.post(&hello).await, 200);
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96891234569",
        "--source",
        "checkout",
        "--evidence",
        "box",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");

    // A failure reported for wamid.SENT2 before that send is even made: kept, applied later.
    // Meta redelivers it: one note, not two.
    let early_failure = status_webhook(
        "wamid.SENT2",
        "failed",
        customer,
        Some((130472, "User's number is part of an experiment")),
    );
    assert_eq!(daemon.post(&early_failure).await, 200);
    assert_eq!(daemon.post(&early_failure).await, 200);

    for order in [30001, 30002] {
        let event = order_event(order, "+96891234569");
        assert_eq!(
            post_event(&daemon.url, "shop", &event, Some(SHOP_SECRET)).await,
            202
        );
        daemon.wait_idle(Duration::from_secs(15));
    }
    assert_eq!(posted_bodies(&graph).await.len(), 2);

    // wamid.SENT1: delivered, read, then a late delivered that must not win.
    for status in ["delivered", "read", "delivered"] {
        let webhook = status_webhook("wamid.SENT1", status, customer, None);
        assert_eq!(daemon.post(&webhook).await, 200);
    }
    daemon.wait_idle(Duration::from_secs(15));

    let (code, out) = daemon.cli(&["audit", "--contact", "+96891234569"]);
    assert_eq!(code, 0, "{out}");
    let sent1 = out
        .lines()
        .find(|l| l.contains("accepted by Meta as wamid.SENT1"))
        .unwrap_or_else(|| panic!("no audit line for SENT1: {out}"));
    assert!(sent1.ends_with("[now: read]"), "{out}");
    let sent2 = out
        .lines()
        .find(|l| l.contains("accepted by Meta as wamid.SENT2"))
        .unwrap_or_else(|| panic!("no audit line for SENT2: {out}"));
    assert!(sent2.ends_with("[now: failed]"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("\tfailed\tmessage wamid.SENT2") && l.contains("130472")),
        "{out}"
    );

    // The ticket got one internal note about the failure, after the customer's message.
    let transcript = dir
        .path()
        .join(format!("data/transcripts/{PHONE_NUMBER_ID}/{customer}.txt"));
    let text = std::fs::read_to_string(&transcript).expect("transcript");
    assert_eq!(
        text.matches("was NOT delivered").count(),
        1,
        "{text}\n{}",
        tail(&daemon.log(), 30)
    );
    let note = &text[text.find("wabridge note").expect("note")..];
    assert!(
        note.contains("Error 130472") && note.contains("wamid.SENT2"),
        "{text}"
    );

    // A 131050 failure stops marketing for this contact in the consent ledger.
    let stopped = status_webhook(
        "wamid.OTHER",
        "failed",
        customer,
        Some((131050, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.")),
    );
    assert_eq!(daemon.post(&stopped).await, 200);
    daemon.wait_idle(Duration::from_secs(15));
    let (_, out) = daemon.cli(&["contacts", "show", "+96891234569", "--json"]);
    assert!(out.contains("\"marketing_stop\""), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_that_does_not_fit_the_synced_catalog_stops_the_next_start() {
    // The WABA's order_confirmation takes two body parameters; the shipped mapping gives three.
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/message_templates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{
                "id": "1001", "name": "order_confirmation", "language": "en",
                "status": "APPROVED", "category": "UTILITY",
                "components": [{ "type": "BODY", "text": "Hi {{1}}, order {{2}} is confirmed." }]
            }]
        })))
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // No catalog yet: the daemon starts, syncs, and says what does not fit.
    let mut daemon = start(dir.path(), &graph);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log().contains("does not fit its template") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(daemon.terminate().code(), Some(0));

    // With the catalog known, the next start is refused, naming the file and line.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["serve", "--config"])
        .arg(&daemon.config)
        .output()
        .expect("run wabridge");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("order_paid.toml:") && err.contains("against the template catalog"),
        "{err}"
    );
    // Templates merely missing from the catalog (the other shipped mappings) are warnings.
    let refusals: Vec<&str> = err.lines().filter(|l| !l.contains("WARN")).collect();
    assert!(
        !refusals.iter().any(|l| l.contains("order_shipped.toml:")),
        "{err}"
    );
    assert!(
        err.contains("WARN") && err.contains("order_shipped.toml:"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_wins_over_a_send_already_queued() {
    use wiremock::matchers::body_string_contains;
    let graph = MockServer::start().await;
    mount_catalog(&graph).await;
    // Meta is slow to answer the first send: the second waits behind it in the queue.
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .and(body_string_contains("40001"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_json(serde_json::json!({
                    "messaging_product": "whatsapp",
                    "messages": [{ "id": "wamid.FIRST" }]
                })),
        )
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.OTHER" }]
        })))
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(dir.path(), &graph);
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96891234570",
        "--source",
        "checkout",
        "--evidence",
        "box",
        "--phone-number-id",
        PHONE_NUMBER_ID,
    ]);
    assert_eq!(code, 0, "{out}");
    for order in [40001, 40002] {
        let event = order_event(order, "+96891234570");
        assert_eq!(
            post_event(&daemon.url, "shop", &event, Some(SHOP_SECRET)).await,
            202
        );
    }
    // While the first send is in flight and the second is queued, the customer says STOP.
    let deadline = Instant::now() + Duration::from_secs(5);
    while graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .all(|r| r.method.as_str() != "POST")
    {
        assert!(Instant::now() < deadline, "first send never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stop = text_webhook(
        "96891234570",
        "Aisha",
        "wamid.STOP2",
        chrono::Utc::now().timestamp(),
        "إيقاف",
    );
    assert_eq!(daemon.post(&stop).await, 200);
    daemon.wait_idle(Duration::from_secs(20));

    let sent = posted_bodies(&graph).await;
    let templates: Vec<_> = sent.iter().filter(|b| b["type"] == "template").collect();
    assert_eq!(
        templates.len(),
        1,
        "only the send already in flight: {sent:?}"
    );
    assert!(templates[0].to_string().contains("40001"), "{sent:?}");
    // The confirmation (in Arabic, like the STOP) is the only other message.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["type"], "text");
    let (_, out) = daemon.cli(&["audit", "--contact", "+96891234570"]);
    let blocked = out
        .lines()
        .find(|l| l.contains("\tblock\t"))
        .unwrap_or_else(|| panic!("the queued send was not blocked: {out}"));
    assert!(blocked.contains("opted out"), "{out}");
}
