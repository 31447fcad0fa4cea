//! The Redmine connector against a real Redmine 5 (REST API with API keys).
//!
//! Needs `target/redmine-test.env` (or the same variables in the environment), written by
//! `bash scripts/redmine-setup.sh`: `WABRIDGE_TEST_REDMINE_URL`, `WABRIDGE_TEST_REDMINE_KEY`,
//! `WABRIDGE_TEST_REDMINE_PROJECT` and `WABRIDGE_TEST_REDMINE_AGENT_KEY` (a second user, member
//! of the project, who writes the agents' replies). Without them every test fails (never
//! skips). Each test uses its own phone numbers, so runs can share one Redmine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde_json::{json, Value};
use wabridge_connectors::redmine::{marker, RedmineConfig, RedmineConnector};
use wabridge_connectors::{
    Attachment, Contact, Conversation, DeliveryContext, InboundMessage, Secret, TicketRef,
    TicketRouting, TicketSystem,
};

const KEYS: [&str; 4] = [
    "WABRIDGE_TEST_REDMINE_URL",
    "WABRIDGE_TEST_REDMINE_KEY",
    "WABRIDGE_TEST_REDMINE_PROJECT",
    "WABRIDGE_TEST_REDMINE_AGENT_KEY",
];

struct Live {
    url: String,
    key: String,
    project: String,
    agent_key: String,
    http: reqwest::Client,
}

fn settings() -> HashMap<String, String> {
    let mut values = HashMap::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/redmine-test.env");
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
    let (Some(url), Some(key), Some(project), Some(agent_key)) = (
        value(KEYS[0]),
        value(KEYS[1]),
        value(KEYS[2]),
        value(KEYS[3]),
    ) else {
        panic!(
            "no Redmine test server configured ({}, or target/redmine-test.env): run \
             `bash scripts/redmine-setup.sh` first (as root)",
            KEYS.join(" / ")
        );
    };
    Live {
        url: url.trim_end_matches('/').to_owned(),
        key,
        project,
        agent_key,
        http: reqwest::Client::new(),
    }
}

impl Live {
    fn config(&self) -> RedmineConfig {
        RedmineConfig::new(&self.url, Secret::new(&self.key), &self.project)
    }

    fn connector(&self) -> RedmineConnector {
        RedmineConnector::new(self.config()).expect("connector builds")
    }

    async fn call_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/{path}", self.url))
            .header("X-Redmine-API-Key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Redmine answers");
        let status = response.status();
        let text = response.text().await.expect("Redmine body");
        assert!(status.is_success(), "{path}: {status}: {text}");
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("Redmine sends JSON")
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.call_as(&self.key, reqwest::Method::GET, path, None)
            .await
    }

    /// The issue with its journals and attachments.
    async fn issue(&self, id: &TicketRef) -> Value {
        self.get(&format!("issues/{id}.json?include=journals,attachments"))
            .await["issue"]
            .clone()
    }

    async fn journals(&self, id: &TicketRef) -> Vec<Value> {
        self.issue(id).await["journals"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The notes of the issue's journals that have one, oldest first.
    async fn notes(&self, id: &TicketRef) -> Vec<String> {
        self.journals(id)
            .await
            .iter()
            .filter_map(|j| j["notes"].as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    async fn set_status(&self, id: &TicketRef, status: u64) {
        self.call_as(
            &self.key,
            reqwest::Method::PUT,
            &format!("issues/{id}.json"),
            Some(json!({"issue": {"status_id": status}})),
        )
        .await;
    }

    /// Ids of all issues of the project whose subject holds the conversation's number.
    async fn issues_of(&self, conversation: &Conversation) -> Vec<String> {
        let number = conversation.contact.e164().expect("number");
        let value = self
            .call_as(
                &self.key,
                reqwest::Method::GET,
                &format!(
                    "issues.json?project_id={}&status_id=*&limit=100&subject=~{}",
                    self.project,
                    number.replace('+', "%2B")
                ),
                None,
            )
            .await;
        value["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .map(|issue| issue["id"].to_string())
            .collect()
    }

    /// The bytes and content type of the issue's attachment named `filename`.
    async fn attachment(&self, id: &TicketRef, filename: &str) -> (String, Vec<u8>) {
        let issue = self.issue(id).await;
        let attachment = issue["attachments"]
            .as_array()
            .expect("attachments")
            .iter()
            .find(|a| a["filename"] == filename)
            .unwrap_or_else(|| panic!("no attachment {filename} in {issue}"))
            .clone();
        let url = attachment["content_url"].as_str().expect("content_url");
        let response = self
            .http
            .get(url)
            .header("X-Redmine-API-Key", &self.key)
            .send()
            .await
            .expect("download");
        assert!(response.status().is_success(), "{}", response.status());
        let bytes = response.bytes().await.expect("bytes").to_vec();
        (
            attachment["content_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            bytes,
        )
    }
}

/// A phone number no other test or run uses: 87 + 11 digits from the clock and a counter.
fn unique_digits() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed =
        (nanos / 1000 + n * 7_919 + u64::from(std::process::id()) * 104_729) % 100_000_000_000;
    format!("87{mixed:011}")
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

fn message(conversation: &Conversation, n: u32, text: &str) -> InboundMessage {
    InboundMessage {
        id: format!(
            "wamid.LIVE{}x{n}",
            conversation.contact.key().replace(':', "_")
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
async fn opens_an_issue_named_after_the_customer_and_adds_the_next_message_as_a_note() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Aisha Live");
    let first = message(&conv, 1, "Hello, my order has not arrived.");
    let started = Instant::now();
    let delivered = redmine
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("first message delivered");
    eprintln!("search + create: {:?}", started.elapsed());
    assert!(delivered.opened_ticket && !delivered.already_present);

    let issue = live.issue(&delivered.ticket).await;
    let e164 = conv.contact.e164().expect("number");
    assert_eq!(issue["subject"], format!("WhatsApp: Aisha Live ({e164})"));
    assert_eq!(issue["project"]["name"], "WhatsApp Support");
    let description = issue["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(&format!("Aisha Live ({e164}) wrote on WhatsApp, ")),
        "{description}"
    );
    assert!(
        description.contains("Hello, my order has not arrived.")
            && description.ends_with(&marker(&first.id)),
        "{description}"
    );

    let second = message(&conv, 2, "Any update?");
    let started = Instant::now();
    let again = redmine
        .deliver(&conv, &second, &context(Some(&delivered.ticket), false))
        .await
        .expect("second message delivered");
    eprintln!("note on a known issue: {:?}", started.elapsed());
    assert_eq!(again.ticket, delivered.ticket);
    assert!(!again.opened_ticket && !again.already_present);
    let journals = live.journals(&delivered.ticket).await;
    assert_eq!(journals.len(), 1, "{journals:?}");
    let note = journals[0]["notes"].as_str().unwrap_or_default();
    assert!(
        note.contains("Any update?") && note.ends_with(&marker(&second.id)),
        "{note}"
    );
    assert_eq!(journals[0]["private_notes"], false);
}

#[tokio::test]
async fn redelivering_with_maybe_delivered_writes_nothing() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Twice Sent");
    let first = message(&conv, 1, "first");
    let second = message(&conv, 2, "second");
    let ticket = redmine
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("first")
        .ticket;
    redmine
        .deliver(&conv, &second, &context(Some(&ticket), false))
        .await
        .expect("second");
    let before = live.journals(&ticket).await;

    let started = Instant::now();
    let again = redmine
        .deliver(&conv, &second, &context(Some(&ticket), true))
        .await
        .expect("redelivery of the note");
    eprintln!("lookup on a known issue (hit): {:?}", started.elapsed());
    assert_eq!(again.ticket, ticket);
    assert!(again.already_present && !again.opened_ticket);

    let started = Instant::now();
    let again = redmine
        .deliver(&conv, &first, &context(None, true))
        .await
        .expect("redelivery of the issue's first message");
    eprintln!(
        "lookup by subject (hit in the description): {:?}",
        started.elapsed()
    );
    assert_eq!(again.ticket, ticket);
    assert!(again.already_present && again.opened_ticket);

    assert_eq!(live.journals(&ticket).await, before);
    assert_eq!(live.issues_of(&conv).await, std::slice::from_ref(&ticket.0));

    // A message that did not arrive yet is written after the lookup.
    let third = message(&conv, 3, "third");
    let written = redmine
        .deliver(&conv, &third, &context(Some(&ticket), true))
        .await
        .expect("third");
    assert!(!written.already_present);
    assert_eq!(live.notes(&ticket).await.len(), 2);
}

#[tokio::test]
async fn five_messages_arrive_in_order_each_once() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("In Order");
    let mut ticket: Option<TicketRef> = None;
    let messages: Vec<InboundMessage> = (1..=5)
        .map(|n| message(&conv, n, &format!("message number {n}")))
        .collect();
    for message in &messages {
        let delivered = redmine
            .deliver(&conv, message, &context(ticket.as_ref(), false))
            .await
            .expect("delivered");
        ticket = Some(delivered.ticket);
    }
    let ticket = ticket.expect("ticket");
    let issue = live.issue(&ticket).await;
    assert!(issue["description"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&marker(&messages[0].id)));
    let notes = live.notes(&ticket).await;
    assert_eq!(notes.len(), 4, "{notes:?}");
    for (note, message) in notes.iter().zip(&messages[1..]) {
        assert!(note.contains(&message.text), "{note}");
        assert!(note.ends_with(&marker(&message.id)), "{note}");
    }
}

#[tokio::test]
async fn attachments_arrive_byte_for_byte_on_create_and_note() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Media Sender");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut first = message(&conv, 1, "[image] photo of the parcel");
    first.kind = "image".into();
    first.attachments.push(Attachment {
        filename: "parcel.jpg".into(),
        mime_type: "image/jpeg".into(),
        data: bytes.clone(),
    });
    let started = Instant::now();
    let delivered = redmine
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("delivered");
    eprintln!("search + upload 70 kB + create: {:?}", started.elapsed());
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
    redmine
        .deliver(&conv, &second, &context(Some(&delivered.ticket), false))
        .await
        .expect("delivered");
    let (mime, stored) = live.attachment(&delivered.ticket, "invoice.pdf").await;
    assert_eq!(mime, "application/pdf");
    assert_eq!(stored, pdf);
}

#[tokio::test]
async fn a_file_redmine_refuses_is_named_in_the_note() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Big Video");
    let ticket = redmine
        .deliver(&conv, &message(&conv, 1, "hi"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    let mut video = message(&conv, 2, "[video] unboxing");
    video.kind = "video".into();
    video.attachments.push(Attachment {
        filename: "unboxing.mp4".into(),
        mime_type: "video/mp4".into(),
        // Redmine's default limit is 5 MB.
        data: vec![7u8; 6 * 1024 * 1024],
    });
    redmine
        .deliver(&conv, &video, &context(Some(&ticket), false))
        .await
        .expect("delivered without the file");
    let notes = live.notes(&ticket).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("unboxing.mp4, 6291456 bytes, could not be stored in Redmine"),
        "{}",
        notes[0]
    );
    assert!(live.issue(&ticket).await["attachments"]
        .as_array()
        .is_some_and(Vec::is_empty));
}

#[tokio::test]
async fn a_closed_issue_is_reopened_and_an_old_one_replaced() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Came Back");
    let ticket = redmine
        .deliver(&conv, &message(&conv, 1, "first"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    live.set_status(&ticket, 5).await; // Closed
    assert_eq!(live.issue(&ticket).await["status"]["is_closed"], true);
    let delivered = redmine
        .deliver(
            &conv,
            &message(&conv, 2, "one more question"),
            &context(Some(&ticket), false),
        )
        .await
        .expect("second");
    assert_eq!(delivered.ticket, ticket);
    assert!(!delivered.opened_ticket);
    let issue = live.issue(&ticket).await;
    assert_eq!(issue["status"]["is_closed"], false, "{issue}");
    assert_eq!(issue["status"]["name"], "New");

    // Without a recorded issue, the open one is continued (found by the number).
    let third = redmine
        .deliver(
            &conv,
            &message(&conv, 3, "hello again"),
            &context(None, false),
        )
        .await
        .expect("third");
    assert_eq!(third.ticket, ticket);
    assert!(!third.opened_ticket);

    // With reopening switched off, a closed issue is replaced.
    live.set_status(&ticket, 5).await;
    let mut config = live.config();
    config.reopen_within_days = 0;
    let strict = RedmineConnector::new(config).expect("builds");
    let fresh = strict
        .deliver(
            &conv,
            &message(&conv, 4, "and again"),
            &context(Some(&ticket), false),
        )
        .await
        .expect("fourth");
    assert_ne!(fresh.ticket, ticket);
    assert!(fresh.opened_ticket);
    assert_eq!(live.issue(&ticket).await["status"]["is_closed"], true);
    assert_eq!(live.issues_of(&conv).await.len(), 2);
}

#[tokio::test]
async fn note_is_private_and_written_as_the_connector() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Noted");
    let ticket = redmine
        .deliver(&conv, &message(&conv, 1, "hi"), &context(None, false))
        .await
        .expect("first")
        .ticket;
    redmine
        .note(&ticket, "Reply not sent: the 24 h window is closed.")
        .await
        .expect("noted");
    let journals = live.journals(&ticket).await;
    assert_eq!(journals.len(), 1, "{journals:?}");
    assert_eq!(
        journals[0]["notes"],
        "Reply not sent: the 24 h window is closed."
    );
    assert_eq!(journals[0]["private_notes"], true);
    let me = live.get("users/current.json").await;
    assert_eq!(journals[0]["user"]["id"], me["user"]["id"]);
}

#[tokio::test]
async fn an_agents_public_note_comes_back_once_and_ours_never() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Waiting Reply");
    let ticket = redmine
        .deliver(
            &conv,
            &message(&conv, 1, "where is it?"),
            &context(None, false),
        )
        .await
        .expect("first")
        .ticket;

    let started = Instant::now();
    let (none, cursor) = redmine.replies_since(None).await.expect("first look");
    eprintln!("replies_since(None): {:?}", started.elapsed());
    assert!(none.is_empty(), "{none:?}");
    let cursor = cursor.expect("position");

    // Our own writes: a customer message and an internal note.
    redmine
        .deliver(
            &conv,
            &message(&conv, 2, "hello?"),
            &context(Some(&ticket), false),
        )
        .await
        .expect("second");
    redmine.note(&ticket, "internal").await.expect("note");
    // The agent: a public reply, a private note, and a status change without notes.
    let issue_path = format!("issues/{ticket}.json");
    let agent = |body: Value| {
        live.call_as(
            &live.agent_key,
            reqwest::Method::PUT,
            &issue_path,
            Some(body),
        )
    };
    agent(json!({"issue": {"notes": "It ships tomorrow."}})).await;
    agent(json!({"issue": {"notes": "check stock first", "private_notes": true}})).await;
    agent(json!({"issue": {"status_id": 2}})).await;

    let started = Instant::now();
    let (replies, next) = redmine.replies_since(Some(&cursor)).await.expect("replies");
    eprintln!("replies_since(cursor): {:?}", started.elapsed());
    let mine: Vec<_> = replies.iter().filter(|r| r.ticket == ticket).collect();
    assert_eq!(mine.len(), 1, "{replies:?}");
    assert_eq!(mine[0].text, "It ships tomorrow.");
    assert!(mine[0].id.starts_with("redmine-journal-"), "{}", mine[0].id);
    let journal_id = mine[0].id.trim_start_matches("redmine-journal-");
    let journals = live.journals(&ticket).await;
    let written = journals
        .iter()
        .find(|j| j["id"].as_u64() == journal_id.parse().ok())
        .expect("the reply's journal");
    assert_eq!(written["notes"], "It ships tomorrow.");
    assert!((Utc::now() - mine[0].at).num_seconds().abs() < 300);

    // Polling again (and again) does not bring it back.
    let next = next.expect("cursor");
    let (again, next) = redmine.replies_since(Some(&next)).await.expect("again");
    assert!(again.iter().all(|r| r.ticket != ticket), "{again:?}");
    let (again, _) = redmine
        .replies_since(next.as_deref())
        .await
        .expect("and again");
    assert!(again.iter().all(|r| r.ticket != ticket), "{again:?}");
}

#[tokio::test]
async fn check_passes_and_fails_permanently_with_a_wrong_key_or_project() {
    let live = live();
    let started = Instant::now();
    live.connector().check().await.expect("check with the key");
    eprintln!("check: {:?}", started.elapsed());

    let mut bad = live.config();
    bad.api_key = Secret::new("0000000000000000000000000000000000000000");
    let err = RedmineConnector::new(bad)
        .expect("builds")
        .check()
        .await
        .expect_err("a wrong key is refused");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("refused the API key"), "{err}");

    let mut missing = live.config();
    missing.project = "no-such-project-wabridge".into();
    let err = RedmineConnector::new(missing)
        .expect("builds")
        .check()
        .await
        .expect_err("a missing project is refused");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("no-such-project-wabridge"),
        "{err}"
    );
}

#[tokio::test]
async fn a_contact_without_a_number_gets_a_bsuid_subject() {
    let live = live();
    let redmine = live.connector();
    let mut conv = conversation("No Number");
    let bsuid = format!("US.{}", unique_digits());
    conv.contact.wa_id = None;
    conv.contact.user_id = Some(bsuid.clone());
    let first = message(&conv, 1, "hi");
    let delivered = redmine
        .deliver(&conv, &first, &context(None, false))
        .await
        .expect("delivered");
    let issue = live.issue(&delivered.ticket).await;
    assert_eq!(issue["subject"], format!("WhatsApp: No Number ({bsuid})"));
    // The next message without a recorded issue finds it by the BSUID.
    let again = redmine
        .deliver(&conv, &message(&conv, 2, "hello?"), &context(None, false))
        .await
        .expect("delivered");
    assert_eq!(again.ticket, delivered.ticket);
}

#[tokio::test]
async fn routing_assigns_hands_over_once_and_reopens_a_closed_issue() {
    let live = live();
    let redmine = live.connector();
    let conv = conversation("Wants A Human");
    let ticket = redmine
        .deliver(
            &conv,
            &message(&conv, 1, "a person please"),
            &context(None, false),
        )
        .await
        .expect("first")
        .ticket;
    assert!(!redmine.is_resolved(&ticket).await.expect("read"));
    // The agent user the setup script made (a project member) by login: needs an admin key.
    let agent = live
        .call_as(
            &live.agent_key,
            reqwest::Method::GET,
            "users/current.json",
            None,
        )
        .await;
    let login = agent["user"]["login"].as_str().expect("login").to_owned();
    let routing = TicketRouting {
        assignee: Some(login),
        priority: Some(wabridge_connectors::Priority::Normal),
        tags: vec!["refund".into()],
        handover: Some("asked for a refund".into()),
        ..TicketRouting::default()
    };
    let started = Instant::now();
    redmine.route(&ticket, &routing).await.expect("routed");
    eprintln!("route (hand-over): {:?}", started.elapsed());
    let issue = live.issue(&ticket).await;
    assert_eq!(issue["assigned_to"]["id"], agent["user"]["id"], "{issue}");
    assert_eq!(issue["priority"]["name"], "High", "{issue}");
    // Redmine keeps a private note apart from the field changes made with it: two journals.
    let journals = live.journals(&ticket).await;
    let noted: Vec<&Value> = journals
        .iter()
        .filter(|j| j["notes"].as_str().is_some_and(|n| !n.is_empty()))
        .collect();
    assert_eq!(noted.len(), 1, "{journals:?}");
    assert_eq!(
        noted[0]["notes"],
        "wabridge: the customer asked for a person: asked for a refund\n\
         wabridge: tags: refund\n[wa:routing]"
    );
    assert_eq!(noted[0]["private_notes"], true);

    // The same routing again writes nothing.
    let before = journals.len();
    let started = Instant::now();
    redmine
        .route(&ticket, &routing)
        .await
        .expect("routed again");
    eprintln!("route (nothing to do): {:?}", started.elapsed());
    assert_eq!(live.journals(&ticket).await.len(), before);

    // Closed: the bot may speak; a new hand-over reopens it and notes it again.
    live.set_status(&ticket, 5).await;
    assert!(redmine.is_resolved(&ticket).await.expect("read"));
    redmine
        .route(&ticket, &routing)
        .await
        .expect("routed after close");
    let issue = live.issue(&ticket).await;
    assert_eq!(issue["status"]["is_closed"], false, "{issue}");
    assert!(!redmine.is_resolved(&ticket).await.expect("read"));
    let notes = live.notes(&ticket).await;
    assert_eq!(
        notes.iter().filter(|n| n.contains("[wa:routing]")).count(),
        2
    );

    // Unknown names are refused before anything is written.
    let before = live.journals(&ticket).await.len();
    for routing in [
        TicketRouting {
            department: Some("No Such Category".into()),
            ..TicketRouting::default()
        },
        TicketRouting {
            assignee: Some("no-such-login".into()),
            ..TicketRouting::default()
        },
    ] {
        let err = redmine.route(&ticket, &routing).await.expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        eprintln!("{err}");
    }
    assert_eq!(live.journals(&ticket).await.len(), before);
}
