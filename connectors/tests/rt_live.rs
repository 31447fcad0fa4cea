//! The RT connector against a real Request Tracker 5 (REST2).
//!
//! Needs `WABRIDGE_TEST_RT_URL` and `WABRIDGE_TEST_RT_TOKEN` in the environment or in
//! `target/rt-test.env`, both written by `scripts/rt-setup.sh`. Without them every test fails
//! (never skips). Each test uses its own phone numbers, so runs can share one RT.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};
use wabridge_connectors::rt::{marker, RtConfig, RtConnector};
use wabridge_connectors::{
    Attachment, Contact, Conversation, DeliveryContext, InboundMessage, Secret, TicketRef,
    TicketRouting, TicketSystem,
};

const QUEUE: &str = "General";

struct Live {
    url: String,
    token: String,
    http: reqwest::Client,
}

fn settings() -> HashMap<String, String> {
    let mut values = HashMap::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/rt-test.env");
    if let Ok(text) = std::fs::read_to_string(file) {
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
    for key in ["WABRIDGE_TEST_RT_URL", "WABRIDGE_TEST_RT_TOKEN"] {
        if let Ok(value) = std::env::var(key) {
            values.insert(key.to_owned(), value);
        }
    }
    values
}

fn live() -> Live {
    let settings = settings();
    let (Some(url), Some(token)) = (
        settings
            .get("WABRIDGE_TEST_RT_URL")
            .filter(|v| !v.is_empty()),
        settings
            .get("WABRIDGE_TEST_RT_TOKEN")
            .filter(|v| !v.is_empty()),
    ) else {
        panic!(
            "no RT test server configured (WABRIDGE_TEST_RT_URL / WABRIDGE_TEST_RT_TOKEN, \
             or target/rt-test.env): run scripts/rt-setup.sh first"
        );
    };
    Live {
        url: url.trim_end_matches('/').to_owned(),
        token: token.clone(),
        http: reqwest::Client::new(),
    }
}

impl Live {
    fn config(&self) -> RtConfig {
        let mut config = RtConfig::new(&self.url, QUEUE);
        config.token = Some(Secret::new(&self.token));
        config
    }

    fn connector(&self) -> RtConnector {
        RtConnector::new(self.config()).expect("connector builds")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/REST/2.0/{path}", self.url))
            .header("Authorization", format!("token {}", self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("RT answers");
        let status = response.status();
        let text = response.text().await.expect("RT body");
        assert!(status.is_success(), "{path}: {status}: {text}");
        serde_json::from_str(&text).expect("RT sends JSON")
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn ticket(&self, id: &TicketRef) -> Value {
        self.get(&format!("ticket/{id}")).await
    }

    async fn set_status(&self, id: &TicketRef, status: &str) {
        self.call(
            reqwest::Method::PUT,
            &format!("ticket/{id}"),
            Some(json!({ "Status": status })),
        )
        .await;
    }

    /// Types of the ticket's transactions, oldest first.
    async fn history(&self, id: &TicketRef) -> Vec<String> {
        let value = self
            .get(&format!(
                "ticket/{id}/history?fields=Type&per_page=100&orderby=id&order=ASC"
            ))
            .await;
        value["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["Type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The ticket's text of transactions of `kind`, oldest first.
    async fn texts(&self, id: &TicketRef, kind: &str) -> Vec<String> {
        let history = self
            .get(&format!(
                "ticket/{id}/history?fields=Type&per_page=100&orderby=id&order=ASC"
            ))
            .await;
        let mut texts = Vec::new();
        for item in history["items"].as_array().expect("items") {
            if item["Type"] != kind {
                continue;
            }
            let txn = item["id"].as_str().expect("id");
            let parts = self
                .get(&format!(
                    "transaction/{txn}/attachments?fields=ContentType,Content"
                ))
                .await;
            for part in parts["items"].as_array().expect("items") {
                if part["ContentType"] == "text/plain" {
                    let content = part["Content"].as_str().unwrap_or_default();
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .unwrap_or_else(|| content.to_owned());
                    texts.push(decoded);
                }
            }
        }
        texts
    }

    /// The bytes of the ticket's attachment named `filename`.
    async fn attachment(&self, id: &TicketRef, filename: &str) -> (String, Vec<u8>) {
        let list = self
            .call(
                reqwest::Method::POST,
                &format!("ticket/{id}/attachments?fields=Filename,ContentType"),
                Some(json!([{ "field": "Filename", "value": filename }])),
            )
            .await;
        let item = &list["items"][0];
        assert_eq!(item["Filename"], filename, "{list}");
        let attachment_id = item["id"].as_str().expect("id");
        let full = self.get(&format!("attachment/{attachment_id}")).await;
        // REST2 sends the content as MIME base64, with line breaks.
        let content: String = full["Content"]
            .as_str()
            .expect("Content")
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .expect("base64 Content");
        (
            item["ContentType"].as_str().unwrap_or_default().to_owned(),
            bytes,
        )
    }

    /// Ids of all tickets of the requestor in the queue.
    async fn tickets_of(&self, requestor: &str) -> Vec<String> {
        let query = format!("Queue = '{QUEUE}' AND Requestor.EmailAddress = '{requestor}'");
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("tickets?query={}&per_page=100", url_encode(&query)),
                None,
            )
            .await;
        value["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A phone number no other test or run uses: 88 + 11 digits from the clock and a counter.
fn unique_digits() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed =
        (nanos / 1000 + n * 7_919 + u64::from(std::process::id()) * 104_729) % 100_000_000_000;
    format!("88{mixed:011}")
}

fn conversation(name: &str) -> Conversation {
    Conversation {
        phone_number_id: "106540352242922".into(),
        display_phone_number: Some("15550783881".into()),
        contact: Contact {
            wa_id: Some(unique_digits()),
            user_id: None,
            profile_name: Some(name.into()),
        },
    }
}

fn requestor(conversation: &Conversation) -> String {
    format!(
        "wa+{}@whatsapp.invalid",
        conversation.contact.wa_id.as_deref().unwrap_or_default()
    )
}

fn message(conversation: &Conversation, n: u32, text: &str) -> InboundMessage {
    InboundMessage {
        id: format!(
            "wamid.LIVE{}x{n}",
            conversation.contact.wa_id.as_deref().unwrap_or_default()
        ),
        timestamp: Utc::now(),
        kind: "text".into(),
        text: text.into(),
        attachments: Vec::new(),
    }
}

fn context(ticket: Option<&TicketRef>, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: ticket.cloned(),
        maybe_delivered,
    }
}

#[tokio::test]
async fn opens_a_ticket_named_after_the_customer_and_comments_the_next_message() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Aisha Live");
    let first = message(&conv, 1, "Hello, my order has not arrived.");
    let started = Instant::now();
    let delivered = rt
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("first message delivered");
    eprintln!("create: {:?}", started.elapsed());
    assert!(delivered.opened_ticket && !delivered.already_present);

    let ticket = live.ticket(&delivered.ticket).await;
    let subject = ticket["Subject"].as_str().unwrap_or_default();
    let e164 = conv.contact.e164().expect("number");
    assert!(subject.contains("Aisha Live"), "{subject}");
    assert!(subject.contains(&e164), "{subject}");
    assert_eq!(ticket["Requestor"][0]["id"], requestor(&conv));
    let user = live.get(&format!("user/{}", requestor(&conv))).await;
    assert_eq!(user["RealName"], "Aisha Live");
    assert_eq!(user["MobilePhone"], e164.as_str());

    let second = message(&conv, 2, "Any update?");
    let started = Instant::now();
    let again = rt
        .deliver(&conv, &second, &context(Some(&delivered.ticket), false))
        .await
        .expect("second message delivered");
    eprintln!("comment on a known ticket: {:?}", started.elapsed());
    assert_eq!(again.ticket, delivered.ticket);
    assert!(!again.opened_ticket && !again.already_present);

    let creates = live.texts(&delivered.ticket, "Create").await;
    assert!(creates
        .iter()
        .any(|t| t.contains("Hello, my order has not arrived.") && t.contains(&marker(&first.id))));
    let comments = live.texts(&delivered.ticket, "Comment").await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("Any update?") && comments[0].contains(&marker(&second.id)));
    assert_eq!(
        live.history(&delivered.ticket)
            .await
            .iter()
            .filter(|t| *t == "Correspond")
            .count(),
        0
    );
}

#[tokio::test]
async fn attachments_arrive_byte_for_byte_on_create_and_comment() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Media Sender");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut first = message(&conv, 1, "[image] photo of the parcel");
    first.kind = "image".into();
    first.attachments.push(Attachment {
        filename: "parcel.jpg".into(),
        mime_type: "image/jpeg".into(),
        data: bytes.clone(),
    });
    let delivered = rt
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("delivered");
    let (mime, stored) = live.attachment(&delivered.ticket, "parcel.jpg").await;
    assert_eq!(mime, "image/jpeg");
    assert!(
        stored == bytes,
        "create attachment differs ({} bytes)",
        stored.len()
    );

    let mut second = message(&conv, 2, "[document] invoice.pdf");
    second.kind = "document".into();
    let pdf = b"%PDF-1.4\n\x00\x01\x02 binary \xff\xfe".to_vec();
    second.attachments.push(Attachment {
        filename: "invoice.pdf".into(),
        mime_type: "application/pdf".into(),
        data: pdf.clone(),
    });
    rt.deliver(&conv, &second, &context(Some(&delivered.ticket), false))
        .await
        .expect("delivered");
    let (mime, stored) = live.attachment(&delivered.ticket, "invoice.pdf").await;
    assert_eq!(mime, "application/pdf");
    assert_eq!(stored, pdf);
}

#[tokio::test]
async fn redelivering_with_maybe_delivered_writes_nothing() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Twice Sent");
    let first = message(&conv, 1, "first");
    let second = message(&conv, 2, "second");
    let ticket = rt
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("first")
        .ticket;
    rt.deliver(&conv, &second, &context(Some(&ticket), false))
        .await
        .expect("second");
    let before = live.history(&ticket).await;

    let started = Instant::now();
    let again = rt
        .deliver(&conv, &second, &context(Some(&ticket), true))
        .await
        .expect("redelivery of the comment");
    eprintln!("lookup on a known ticket (hit): {:?}", started.elapsed());
    assert_eq!(again.ticket, ticket);
    assert!(again.already_present && !again.opened_ticket);

    let started = Instant::now();
    let again = rt
        .deliver(&conv, &first, &context(None, true))
        .await
        .expect("redelivery of the ticket's first message");
    eprintln!(
        "lookup by requestor (hit in Create): {:?}",
        started.elapsed()
    );
    assert_eq!(again.ticket, ticket);
    assert!(again.already_present && again.opened_ticket);

    assert_eq!(live.history(&ticket).await, before);
    assert_eq!(live.tickets_of(&requestor(&conv)).await.len(), 1);

    // A message that did not arrive yet is written after the lookup.
    let third = message(&conv, 3, "third");
    let started = Instant::now();
    let written = rt
        .deliver(&conv, &third, &context(Some(&ticket), true))
        .await
        .expect("third");
    eprintln!(
        "lookup on a known ticket (miss) + comment: {:?}",
        started.elapsed()
    );
    assert!(!written.already_present);
    assert_eq!(live.texts(&ticket, "Comment").await.len(), 2);
}

#[tokio::test]
async fn maybe_delivered_without_a_recorded_ticket_continues_the_open_one() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Lost Record");
    let ticket = rt
        .deliver(&conv, &message(&conv, 1, "first"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    let second = message(&conv, 2, "second");
    let delivered = rt
        .deliver(&conv, &second, &context(None, true))
        .await
        .expect("second");
    assert_eq!(delivered.ticket, ticket);
    assert!(!delivered.opened_ticket && !delivered.already_present);
    let again = rt
        .deliver(&conv, &second, &context(None, true))
        .await
        .expect("second again");
    assert_eq!(again.ticket, ticket);
    assert!(again.already_present && !again.opened_ticket);
    assert_eq!(
        live.tickets_of(&requestor(&conv)).await,
        std::slice::from_ref(&ticket.0)
    );
    assert_eq!(live.texts(&ticket, "Comment").await.len(), 1);
}

#[tokio::test]
async fn a_resolved_ticket_is_reopened_and_a_rejected_one_replaced() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Came Back");
    let ticket = rt
        .deliver(&conv, &message(&conv, 1, "first"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    live.set_status(&ticket, "resolved").await;
    let delivered = rt
        .deliver(
            &conv,
            &message(&conv, 2, "one more question"),
            &context(Some(&ticket), false),
        )
        .await
        .expect("second");
    assert_eq!(delivered.ticket, ticket);
    assert!(!delivered.opened_ticket);
    assert_eq!(live.ticket(&ticket).await["Status"], "open");

    live.set_status(&ticket, "rejected").await;
    let replaced = rt
        .deliver(
            &conv,
            &message(&conv, 3, "hello again"),
            &context(Some(&ticket), false),
        )
        .await
        .expect("third");
    assert_ne!(replaced.ticket, ticket);
    assert!(replaced.opened_ticket);
    assert_eq!(live.ticket(&replaced.ticket).await["Status"], "new");

    // With reopening switched off, a resolved ticket is replaced too.
    live.set_status(&replaced.ticket, "resolved").await;
    let mut config = live.config();
    config.reopen_within_days = 0;
    let strict = RtConnector::new(config).expect("builds");
    let fresh = strict
        .deliver(
            &conv,
            &message(&conv, 4, "and again"),
            &context(Some(&replaced.ticket), false),
        )
        .await
        .expect("fourth");
    assert_ne!(fresh.ticket, replaced.ticket);
    assert_eq!(live.ticket(&replaced.ticket).await["Status"], "resolved");
}

#[tokio::test]
async fn check_passes_with_good_credentials_and_fails_permanently_with_a_bad_token() {
    let live = live();
    let started = Instant::now();
    live.connector()
        .check()
        .await
        .expect("check with the token");
    eprintln!("check: {:?}", started.elapsed());

    let mut basic = RtConfig::new(&live.url, QUEUE);
    basic.username = Some("root".into());
    basic.password = Some(Secret::new("password"));
    RtConnector::new(basic)
        .expect("builds")
        .check()
        .await
        .expect("check with basic auth");

    let mut bad = live.config();
    bad.token = Some(Secret::new("1-14-00000000000000000000000000000000"));
    let err = RtConnector::new(bad)
        .expect("builds")
        .check()
        .await
        .expect_err("a bad token is refused");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    let mut no_queue = live.config();
    no_queue.queue = "NoSuchQueue-wabridge".into();
    let err = RtConnector::new(no_queue)
        .expect("builds")
        .check()
        .await
        .expect_err("a missing queue is refused");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_contact_without_a_number_gets_a_bsuid_requestor() {
    let live = live();
    let rt = live.connector();
    let mut conv = conversation("No Number");
    let bsuid = format!("US.{}", unique_digits());
    conv.contact.wa_id = None;
    conv.contact.user_id = Some(bsuid.clone());
    let first = message(&conv, 1, "hi");
    let first = InboundMessage {
        id: format!("wamid.LIVE{bsuid}x1"),
        ..first
    };
    let delivered = rt
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("delivered");
    let ticket = live.ticket(&delivered.ticket).await;
    assert!(ticket["Subject"]
        .as_str()
        .unwrap_or_default()
        .contains(&bsuid));
    assert_eq!(
        ticket["Requestor"][0]["id"],
        format!("wa-{bsuid}@whatsapp.invalid").as_str()
    );
}

#[tokio::test]
async fn routing_hands_over_once_and_again_after_a_resolve() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Wants A Human");
    let ticket = rt
        .deliver(
            &conv,
            &message(&conv, 1, "I want a person"),
            &context(None, false),
        )
        .await
        .expect("first")
        .ticket;
    assert!(!rt.is_resolved(&ticket).await.expect("read"));
    let routing = TicketRouting {
        department: Some(QUEUE.to_lowercase()),
        assignee: Some("root".into()),
        priority: Some(wabridge_connectors::Priority::Normal),
        tags: vec!["refund".into(), "vip".into()],
        handover: Some("asked for a refund".into()),
    };
    let started = Instant::now();
    rt.route(&ticket, &routing).await.expect("routed");
    eprintln!("route (hand-over): {:?}", started.elapsed());
    let state = live.ticket(&ticket).await;
    assert_eq!(state["Status"], "open");
    assert_eq!(state["Owner"]["id"], "root");
    // A hand-over raises `normal` to at least `high` (100, RT's "High").
    assert_eq!(state["Priority"], "100");
    let comments = live.texts(&ticket, "Comment").await;
    assert_eq!(
        comments,
        [
            "wabridge: the customer asked for a person: asked for a refund\n\
          wabridge: tags: refund, vip\n[wa:routing]"
        ]
    );

    // The same routing again changes nothing.
    let before = live.history(&ticket).await;
    let started = Instant::now();
    rt.route(&ticket, &routing).await.expect("routed again");
    eprintln!("route (nothing to do): {:?}", started.elapsed());
    assert_eq!(live.history(&ticket).await, before);

    // Resolved: the bot may speak; a new hand-over reopens it and says so again.
    live.set_status(&ticket, "resolved").await;
    assert!(rt.is_resolved(&ticket).await.expect("read"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    rt.route(&ticket, &routing)
        .await
        .expect("routed after resolve");
    assert_eq!(live.ticket(&ticket).await["Status"], "open");
    assert!(!rt.is_resolved(&ticket).await.expect("read"));
    assert_eq!(live.texts(&ticket, "Comment").await.len(), 2);
}

#[tokio::test]
async fn routing_to_an_unknown_queue_or_user_fails_permanently_and_writes_nothing() {
    let live = live();
    let rt = live.connector();
    let conv = conversation("Misrouted");
    let ticket = rt
        .deliver(&conv, &message(&conv, 1, "hello"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    let before = live.history(&ticket).await;
    for routing in [
        TicketRouting {
            department: Some("No Such Queue".into()),
            ..TicketRouting::default()
        },
        TicketRouting {
            assignee: Some("no-such-user".into()),
            handover: Some("x".into()),
            ..TicketRouting::default()
        },
    ] {
        let err = rt.route(&ticket, &routing).await.expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        assert!(!err.to_string().contains("http"), "{err}");
        eprintln!("{err}");
    }
    assert_eq!(live.history(&ticket).await, before);
}
