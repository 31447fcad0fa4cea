//! The Freshdesk connector against wiremock, with requests and answers shaped like Freshdesk's
//! API v2 (see `/work/shared/reference/crm-and-ticketing.md` B.3 and Freshdesk's API
//! reference: contacts, tickets, notes, conversations, pagination, rate-limit headers).

use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::conformance::{self, Subject, Target};
use crate::{Attachment, Secret, TicketRef, TicketRouting};

const API_KEY: &str = "fd-api-key-0123456789";
/// The contact Freshdesk gives the customer.
const REQUESTER: u64 = 432;
/// The id the mock gives a new ticket.
const NEW_TICKET: u64 = 1001;
const WEBHOOK_SECRET: &str = "wabridge-fd-7c1e0b5a9d3f";

fn basic(api_key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{api_key}:X"))
    )
}

/// Freshdesk's rate-limit headers on every answer.
fn answer(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("X-RateLimit-Total", "3000")
        .insert_header("X-RateLimit-Remaining", "2987")
        .insert_header("X-RateLimit-Used-CurrentRequest", "1")
}

fn ticket_json(id: u64, status: u64, updated_at: &str) -> Value {
    json!({
        "cc_emails": [], "fwd_emails": [], "reply_cc_emails": [], "ticket_cc_emails": [],
        "fr_escalated": false, "spam": false, "email_config_id": null, "group_id": null,
        "priority": 1, "requester_id": REQUESTER, "responder_id": null, "source": 7,
        "company_id": null, "status": status, "subject": "WhatsApp: Aisha (+96890000001)",
        "support_email": null, "to_emails": null, "product_id": null, "id": id, "type": null,
        "due_by": "2026-11-30T10:00:00Z", "fr_due_by": "2026-11-28T10:00:00Z",
        "is_escalated": false,
        "description": "<div>Hello</div><div>-- <br>[wa:wamid.OLDER]</div>",
        "description_text": "Hello -- [wa:wamid.OLDER]",
        "custom_fields": {}, "created_at": "2026-11-01T10:00:00Z", "updated_at": updated_at,
        "tags": ["whatsapp"], "attachments": []
    })
}

/// A ticket as `GET /tickets` lists it: without the description.
fn listed_ticket(id: u64, status: u64, updated_at: &str) -> Value {
    let mut ticket = ticket_json(id, status, updated_at);
    if let Some(fields) = ticket.as_object_mut() {
        fields.remove("description");
        fields.remove("description_text");
    }
    ticket
}

fn note_json(id: u64, ticket: u64, body: &str, incoming: bool, private: bool) -> Value {
    json!({
        "body": body, "body_text": body.replace("<br>", " "), "id": id,
        "incoming": incoming, "private": private, "user_id": REQUESTER,
        "support_email": null, "source": 2, "category": 2, "ticket_id": ticket,
        "to_emails": [], "from_email": null, "cc_emails": [], "bcc_emails": [],
        "attachments": [], "created_at": "2026-11-02T10:00:00Z",
        "updated_at": "2026-11-02T10:00:00Z"
    })
}

fn contact_json(id: u64) -> Value {
    json!({
        "active": false, "address": null, "company_id": null, "description": null,
        "email": null, "id": id, "job_title": null, "language": "en",
        "mobile": "+96890000001", "name": "Aisha", "phone": null, "time_zone": "UTC",
        "twitter_id": null, "unique_external_id": "wa:96890000001", "other_emails": [],
        "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
    })
}

/// Mounts Freshdesk's answers: ticket 1 is open, the customer has no contact and no
/// tickets, creates get [`REQUESTER`] and [`NEW_TICKET`].
async fn mount_freshdesk(server: &MockServer, auth: &str) {
    Mock::given(method("GET"))
        .and(path("/api/v2/agents/me"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(json!({
            "available": false, "occasional": false, "id": 80000000001u64, "signature": null,
            "ticket_scope": 1, "type": "support_agent",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "contact": {"active": true, "email": "agent@acme.com", "name": "WhatsApp Bot",
                        "language": "en", "time_zone": "UTC"}
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(ticket_json(1, 2, "2026-11-02T10:00:00Z")))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(json!([])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v2/tickets/\d+/conversations$"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(json!([note_json(
            50,
            1,
            "<div>Earlier</div><div>-- <br>[wa:wamid.OLDER]</div>",
            true,
            false
        )])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/contacts"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(json!([])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/contacts"))
        .and(header("Authorization", auth))
        .respond_with(answer(201).set_body_json(contact_json(REQUESTER)))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .and(header("Authorization", auth))
        .respond_with(answer(201).set_body_json(ticket_json(NEW_TICKET, 2, "2026-11-27T09:30:05Z")))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/v2/tickets/\d+/notes$"))
        .and(header("Authorization", auth))
        .respond_with(answer(201).set_body_json(note_json(77, 1, "<div>Note</div>", true, false)))
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/api/v2/tickets/\d+$"))
        .and(header("Authorization", auth))
        .respond_with(answer(200).set_body_json(ticket_json(1, 2, "2026-11-27T09:30:05Z")))
        .mount(server)
        .await;
}

struct Freshdesk;

#[async_trait::async_trait]
impl Subject for Freshdesk {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_freshdesk(server, &basic(conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        let mut config = FreshdeskConfig::with_url(&target.url, target.secret.clone());
        config.timeout_secs = target.timeout.as_secs().max(1);
        Ok(Box::new(FreshdeskConnector::new(config)?))
    }
}

#[tokio::test]
async fn freshdesk_passes_the_conformance_suite() {
    conformance::run_suite(&Freshdesk).await;
}

fn config(server: &MockServer) -> FreshdeskConfig {
    let mut config = FreshdeskConfig::with_url(server.uri(), Secret::new(API_KEY));
    config.timeout_secs = 5;
    config
}

fn connector(server: &MockServer) -> FreshdeskConnector {
    FreshdeskConnector::new(config(server)).expect("builds")
}

async fn freshdesk() -> MockServer {
    let server = MockServer::start().await;
    mount_freshdesk(&server, &basic(API_KEY)).await;
    server
}

async fn requests(server: &MockServer, verb: &str, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .collect()
}

async fn received_json(server: &MockServer, verb: &str, route: &str) -> Vec<Value> {
    requests(server, verb, route)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

async fn trail(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, PartialEq, Eq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

impl Part {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Splits a multipart request body (RFC 7578) into its parts.
fn parts(request: &Request) -> Vec<Part> {
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {content_type}"));
    let delimiter = format!("--{boundary}");
    let mut body = &request.body[..];
    let mut found = Vec::new();
    let start = find(body, delimiter.as_bytes()).expect("first boundary");
    body = &body[start + delimiter.len()..];
    while body.starts_with(b"\r\n") {
        let end = find(body, format!("\r\n{delimiter}").as_bytes()).expect("next boundary");
        let part = &body[2..end];
        let split = find(part, b"\r\n\r\n").expect("part headers");
        let headers = String::from_utf8_lossy(&part[..split]).into_owned();
        let param = |key: &str| {
            headers.split(';').find_map(|piece| {
                piece
                    .trim()
                    .strip_prefix(&format!("{key}=\""))
                    .and_then(|v| v.split('"').next())
                    .map(str::to_owned)
            })
        };
        let content_type = headers
            .lines()
            .find_map(|line| line.strip_prefix("Content-Type: "))
            .map(str::to_owned);
        found.push(Part {
            name: param("name").expect("name"),
            filename: param("filename"),
            content_type,
            data: part[split + 4..].to_vec(),
        });
        body = &body[end + 2 + delimiter.len()..];
    }
    assert!(body.starts_with(b"--"), "closing boundary");
    found
}

fn field(parts: &[Part], name: &str) -> Option<String> {
    parts.iter().find(|p| p.name == name).map(Part::text)
}

fn known(id: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(id.to_owned())),
        maybe_delivered,
    }
}

fn days_ago(days: i64) -> String {
    (Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn mount_ticket(server: &MockServer, id: u64, ticket: Value) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v2/tickets/{id}")))
        .respond_with(answer(200).set_body_json(ticket))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn mount_requester_tickets(server: &MockServer, tickets: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(query_param("requester_id", REQUESTER.to_string()))
        .respond_with(answer(200).set_body_json(tickets))
        .with_priority(1)
        .mount(server)
        .await;
}

fn text_only() -> InboundMessage {
    let mut message = conformance::message();
    message.kind = "text".into();
    message.text = "Is it <b>really</b> \"lost\"?\nPlease check & call me.".into();
    message.attachments.clear();
    message
}

#[tokio::test]
async fn opens_a_ticket_with_requester_marker_and_attachment_as_multipart() {
    let server = freshdesk().await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(NEW_TICKET.to_string()),
            opened_ticket: true,
            already_present: false
        }
    );
    assert_eq!(
        trail(&server).await,
        [
            "GET /api/v2/contacts",
            "POST /api/v2/contacts",
            "GET /api/v2/tickets",
            "POST /api/v2/tickets"
        ]
    );

    // The requester: looked up by external id, then created with name, mobile, external id.
    let lookups = requests(&server, "GET", "/api/v2/contacts").await;
    assert_eq!(
        lookups[0]
            .url
            .query_pairs()
            .into_owned()
            .collect::<Vec<_>>(),
        [("unique_external_id".to_owned(), "wa:96890000001".to_owned())]
    );
    assert_eq!(
        received_json(&server, "POST", "/api/v2/contacts").await,
        [
            json!({"name": "Aisha", "unique_external_id": "wa:96890000001",
                "mobile": "+96890000001"})
        ]
    );
    // The requester's newest tickets were listed.
    let lists = requests(&server, "GET", "/api/v2/tickets").await;
    assert_eq!(
        lists[0].url.query_pairs().into_owned().collect::<Vec<_>>(),
        [
            ("requester_id".to_owned(), "432".to_owned()),
            ("order_by".to_owned(), "created_at".to_owned()),
            ("order_type".to_owned(), "desc".to_owned()),
            ("per_page".to_owned(), "100".to_owned())
        ]
    );

    // The ticket, as multipart with the photo.
    let creates = requests(&server, "POST", "/api/v2/tickets").await;
    let parts = parts(&creates[0]);
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "subject",
            "description",
            "requester_id",
            "status",
            "priority",
            "source",
            "tags[]",
            "attachments[]"
        ]
    );
    assert_eq!(
        field(&parts, "subject").as_deref(),
        Some("WhatsApp: Aisha (+96890000001)")
    );
    assert_eq!(field(&parts, "requester_id").as_deref(), Some("432"));
    assert_eq!(field(&parts, "status").as_deref(), Some("2"));
    assert_eq!(field(&parts, "priority").as_deref(), Some("1"));
    assert_eq!(field(&parts, "source").as_deref(), Some("7"));
    assert_eq!(field(&parts, "tags[]").as_deref(), Some("whatsapp"));
    let description = field(&parts, "description").unwrap_or_default();
    assert!(
        description.starts_with("<div>Where is my order #1001? (photo attached)</div>"),
        "{description}"
    );
    assert!(
        description
            .contains("WhatsApp image message from Aisha (+96890000001), 2026-11-27 09:30:00 UTC"),
        "{description}"
    );
    assert!(
        description.ends_with(&format!("<br>{}</div>", marker(conformance::MESSAGE_ID))),
        "{description}"
    );
    let file = &parts[7];
    assert_eq!(file.filename.as_deref(), Some("parcel.jpg"));
    assert_eq!(file.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(file.data, conformance::message().attachments[0].data);
}

#[tokio::test]
async fn opens_a_ticket_as_json_without_attachments() {
    let server = freshdesk().await;
    let mut config = config(&server);
    config.group_id = Some(80000123456);
    config.priority = 3;
    config.tags = vec!["whatsapp".into(), "vip".into()];
    FreshdeskConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    let creates = requests(&server, "POST", "/api/v2/tickets").await;
    assert_eq!(
        creates[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&creates[0].body).expect("json");
    let description = format!(
        "<div>Is it &lt;b&gt;really&lt;/b&gt; &quot;lost&quot;?<br>Please check &amp; call me.</div>\
         <div><br></div><div>-- <br>WhatsApp text message from Aisha (+96890000001), \
         2026-11-27 09:30:00 UTC<br>{}</div>",
        marker(conformance::MESSAGE_ID)
    );
    assert_eq!(
        body,
        json!({
            "subject": "WhatsApp: Aisha (+96890000001)",
            "description": description,
            "requester_id": 432,
            "status": 2,
            "priority": 3,
            "source": 7,
            "tags": ["whatsapp", "vip"],
            "group_id": 80000123456u64
        })
    );
}

#[tokio::test]
async fn takes_the_contact_that_already_has_the_number() {
    let server = freshdesk().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/contacts"))
        .respond_with(answer(409).set_body_json(json!({
            "description": "Validation failed",
            "errors": [{"field": "mobile", "message": "It should be a unique value",
                        "code": "duplicate_value", "additional_info": {"user_id": 555}}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    let lists = requests(&server, "GET", "/api/v2/tickets").await;
    assert!(lists[0]
        .url
        .query_pairs()
        .any(|(k, v)| k == "requester_id" && v == "555"));
    let creates = received_json(&server, "POST", "/api/v2/tickets").await;
    assert_eq!(creates[0]["requester_id"], 555);
}

#[tokio::test]
async fn reuses_the_contact_found_by_external_id() {
    let server = freshdesk().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/contacts"))
        .and(query_param("unique_external_id", "wa:96890000001"))
        .respond_with(answer(200).set_body_json(json!([contact_json(REQUESTER)])))
        .with_priority(1)
        .mount(&server)
        .await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert!(requests(&server, "POST", "/api/v2/contacts")
        .await
        .is_empty());
}

#[tokio::test]
async fn adds_a_public_incoming_note_by_the_customer_to_the_recorded_ticket() {
    let server = freshdesk().await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("1".into()),
            opened_ticket: false,
            already_present: false
        }
    );
    // No lookup without maybe_delivered.
    assert_eq!(
        trail(&server).await,
        ["GET /api/v2/tickets/1", "POST /api/v2/tickets/1/notes"]
    );
    let notes = requests(&server, "POST", "/api/v2/tickets/1/notes").await;
    let parts = parts(&notes[0]);
    assert_eq!(field(&parts, "private").as_deref(), Some("false"));
    assert_eq!(field(&parts, "incoming").as_deref(), Some("true"));
    assert_eq!(field(&parts, "user_id").as_deref(), Some("432"));
    assert!(field(&parts, "body")
        .unwrap_or_default()
        .contains(&marker(conformance::MESSAGE_ID)));
    let file = parts
        .iter()
        .find(|p| p.name == "attachments[]")
        .expect("file");
    assert_eq!(file.data, conformance::message().attachments[0].data);
    assert_eq!(file.filename.as_deref(), Some("parcel.jpg"));
}

#[tokio::test]
async fn sends_several_files_in_one_note() {
    let server = freshdesk().await;
    let mut message = conformance::message();
    message.attachments.push(Attachment {
        filename: "voice.ogg".into(),
        mime_type: "audio/ogg; codecs=opus".into(),
        data: b"OggS\x00\x02".to_vec(),
    });
    connector(&server)
        .deliver(&conformance::conversation(), &message, &known("1", false))
        .await
        .expect("delivered");
    let notes = requests(&server, "POST", "/api/v2/tickets/1/notes").await;
    let files: Vec<Part> = parts(&notes[0])
        .into_iter()
        .filter(|p| p.name == "attachments[]")
        .collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].filename.as_deref(), Some("voice.ogg"));
    assert_eq!(
        files[1].content_type.as_deref(),
        Some("audio/ogg; codecs=opus")
    );
    assert_eq!(files[1].data, b"OggS\x00\x02");
}

#[tokio::test]
async fn writes_private_notes_when_customer_messages_are_private() {
    let server = freshdesk().await;
    let mut config = config(&server);
    config.customer_messages = CustomerMessages::Private;
    let connector = FreshdeskConnector::new(config).expect("builds");
    connector
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    assert_eq!(
        received_json(&server, "POST", "/api/v2/tickets/1/notes").await[0],
        json!({"body": entry_html(&conformance::conversation(), &text_only()),
               "private": true, "incoming": true})
    );

    // A new ticket: a description that names the conversation, the message as a note.
    let delivered = connector
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert!(delivered.opened_ticket);
    let creates = received_json(&server, "POST", "/api/v2/tickets").await;
    let description = creates[0]["description"].as_str().unwrap_or_default();
    assert_eq!(
        description,
        "<div>WhatsApp conversation with Aisha (+96890000001). The messages are private notes.</div>"
    );
    let notes = requests(
        &server,
        "POST",
        &format!("/api/v2/tickets/{NEW_TICKET}/notes"),
    )
    .await;
    let parts = parts(&notes[0]);
    assert_eq!(field(&parts, "private").as_deref(), Some("true"));
    assert_eq!(field(&parts, "user_id"), None);
    assert!(field(&parts, "body")
        .unwrap_or_default()
        .contains(&marker(conformance::MESSAGE_ID)));
}

#[tokio::test]
async fn writes_nothing_when_the_marker_is_on_a_later_page_of_conversations() {
    let server = freshdesk().await;
    let uri = server.uri();
    let first: Vec<Value> = (0..100)
        .map(|i| note_json(100 + i, 1, &format!("<div>message {i}</div>"), true, false))
        .collect();
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/conversations"))
        .and(query_param("page", "1"))
        .respond_with(
            answer(200)
                .set_body_json(Value::Array(first))
                .insert_header(
                    "Link",
                    format!(
                        "<{uri}/api/v2/tickets/1/conversations?per_page=100&page=2>; rel=\"next\""
                    ),
                ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/conversations"))
        .and(query_param("page", "2"))
        .respond_with(answer(200).set_body_json(json!([note_json(
            300,
            1,
            &format!(
                "<div>Where?</div><div>-- <br>{}</div>",
                marker(conformance::MESSAGE_ID)
            ),
            true,
            false
        )])))
        .with_priority(1)
        .mount(&server)
        .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", true),
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("1".into()),
            opened_ticket: false,
            already_present: true
        }
    );
    assert_eq!(
        requests(&server, "GET", "/api/v2/tickets/1/conversations")
            .await
            .len(),
        2
    );
    assert!(requests(&server, "POST", "/api/v2/tickets/1/notes")
        .await
        .is_empty());
}

#[tokio::test]
async fn adds_the_note_after_a_lookup_that_finds_nothing() {
    let server = freshdesk().await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", true),
        )
        .await
        .expect("delivered");
    assert_eq!(
        trail(&server).await,
        [
            "GET /api/v2/tickets/1",
            "GET /api/v2/tickets/1/conversations",
            "POST /api/v2/tickets/1/notes"
        ]
    );
}

#[tokio::test]
async fn finds_the_ticket_an_earlier_attempt_opened() {
    let server = freshdesk().await;
    mount_requester_tickets(
        &server,
        json!([listed_ticket(NEW_TICKET, 2, "2026-11-27T09:30:05Z")]),
    )
    .await;
    let mut opened = ticket_json(NEW_TICKET, 2, "2026-11-27T09:30:05Z");
    opened["description"] = Value::from(entry_html(
        &conformance::conversation(),
        &conformance::message(),
    ));
    mount_ticket(&server, NEW_TICKET, opened).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/contacts"))
        .respond_with(answer(200).set_body_json(json!([contact_json(REQUESTER)])))
        .with_priority(1)
        .mount(&server)
        .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext {
                ticket: None,
                maybe_delivered: true,
            },
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(NEW_TICKET.to_string()),
            opened_ticket: true,
            already_present: true
        }
    );
    assert_eq!(
        trail(&server).await,
        [
            "GET /api/v2/contacts",
            "GET /api/v2/tickets",
            "GET /api/v2/tickets/1001"
        ]
    );
}

#[tokio::test]
async fn continues_the_requesters_open_ticket_the_daemon_did_not_record() {
    let server = freshdesk().await;
    mount_requester_tickets(
        &server,
        json!([
            listed_ticket(9, 2, "2026-11-20T00:00:00Z"),
            listed_ticket(7, 5, "2026-01-01T00:00:00Z")
        ]),
    )
    .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert_eq!(delivered.ticket, TicketRef("9".into()));
    assert!(!delivered.opened_ticket);
    let notes = received_json(&server, "POST", "/api/v2/tickets/9/notes").await;
    assert_eq!(notes[0]["user_id"], REQUESTER);
    assert!(requests(&server, "POST", "/api/v2/tickets")
        .await
        .is_empty());
}

#[tokio::test]
async fn reopens_pending_and_recently_resolved_tickets_before_the_note() {
    for (status, updated_at) in [(3, days_ago(5)), (4, days_ago(1))] {
        let server = freshdesk().await;
        mount_ticket(&server, 1, ticket_json(1, status, &updated_at)).await;
        let delivered = connector(&server)
            .deliver(
                &conformance::conversation(),
                &text_only(),
                &known("1", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
        assert_eq!(delivered.ticket, TicketRef("1".into()));
        assert_eq!(
            trail(&server).await,
            [
                "GET /api/v2/tickets/1",
                "PUT /api/v2/tickets/1",
                "POST /api/v2/tickets/1/notes"
            ],
            "{status}"
        );
        assert_eq!(
            received_json(&server, "PUT", "/api/v2/tickets/1").await,
            [json!({"status": 2})]
        );
    }
}

#[tokio::test]
async fn opens_a_new_ticket_for_closed_old_resolved_deleted_spam_or_missing_tickets() {
    let mut deleted = ticket_json(5, 2, &days_ago(1));
    deleted["deleted"] = Value::from(true);
    let mut spam = ticket_json(5, 2, &days_ago(1));
    spam["spam"] = Value::from(true);
    for (case, ticket) in [
        ("closed", Some(ticket_json(5, 5, &days_ago(1)))),
        ("resolved long ago", Some(ticket_json(5, 4, &days_ago(31)))),
        ("deleted", Some(deleted)),
        ("spam", Some(spam)),
        ("missing", None),
    ] {
        let server = freshdesk().await;
        if let Some(ticket) = ticket {
            mount_ticket(&server, 5, ticket).await;
        }
        let delivered = connector(&server)
            .deliver(
                &conformance::conversation(),
                &text_only(),
                &known("5", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{case}: {err}"));
        assert_eq!(
            delivered.ticket,
            TicketRef(NEW_TICKET.to_string()),
            "{case}"
        );
        assert!(delivered.opened_ticket, "{case}");
        assert!(
            requests(&server, "PUT", "/api/v2/tickets/5")
                .await
                .is_empty(),
            "{case}"
        );
        assert!(
            requests(&server, "POST", "/api/v2/tickets/5/notes")
                .await
                .is_empty(),
            "{case}"
        );
    }
}

#[tokio::test]
async fn retries_after_429_honouring_retry_after() {
    let server = freshdesk().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/v2/tickets/\d+/notes$"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "41")
                .insert_header("X-RateLimit-Total", "3000")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Used-CurrentRequest", "1"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .deliver(
            &conformance::conversation(),
            &text_only(),
            &known("1", false),
        )
        .await
        .expect_err("rate limited");
    assert!(
        matches!(
            err,
            ConnectorError::Retryable {
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(41)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn fails_permanently_on_validation_errors_with_freshdesks_messages() {
    for status in [400u16, 422] {
        let server = freshdesk().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/tickets"))
            .respond_with(answer(status).set_body_json(json!({
                "description": "Validation failed",
                "errors": [{"field": "group_id", "message": "There is no group matching the given group_id",
                            "code": "invalid_value"}]
            })))
            .with_priority(1)
            .mount(&server)
            .await;
        let err = connector(&server)
            .deliver(
                &conformance::conversation(),
                &text_only(),
                &DeliveryContext::default(),
            )
            .await
            .expect_err("refused");
        match err {
            ConnectorError::Permanent { reason } => assert!(
                reason.ends_with(
                    "Validation failed: group_id: There is no group matching the given \
                     group_id (invalid_value)"
                ),
                "{reason}"
            ),
            other => panic!("{status}: expected permanent, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn check_passes_with_a_working_key() {
    let server = freshdesk().await;
    connector(&server).check().await.expect("check passes");
    assert_eq!(trail(&server).await, ["GET /api/v2/agents/me"]);
}

#[tokio::test]
async fn check_explains_a_wrong_key_and_a_wrong_domain() {
    let server = freshdesk().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/agents/me"))
        .respond_with(answer(401).set_body_json(json!({
            "code": "invalid_credentials",
            "message": "You have to be logged in to perform this action."
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("fails");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("Freshdesk refused the API key"), "{text}");
    assert!(text.contains("invalid_credentials"), "{text}");
    assert!(!text.contains(API_KEY), "{text}");

    // Nothing mounted: every path is 404, as for a domain without a helpdesk.
    let empty = MockServer::start().await;
    let err = connector(&empty).check().await.expect_err("fails");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("check domain or url"), "{err}");
}

#[tokio::test]
async fn writes_notes_as_private_notes() {
    let server = freshdesk().await;
    connector(&server)
        .note(
            &TicketRef("1".into()),
            "Reply not sent: the 24 h window is closed.\nUse a template.",
        )
        .await
        .expect("noted");
    assert_eq!(
        received_json(&server, "POST", "/api/v2/tickets/1/notes").await,
        [
            json!({"body": "<div>Reply not sent: the 24 h window is closed.<br>Use a template.</div>",
                "private": true})
        ]
    );
}

// ---- The "agent replied" webhook -------------------------------------------------------

fn webhook_connector() -> FreshdeskConnector {
    let mut config = FreshdeskConfig::new("acme", Secret::new(API_KEY));
    config.webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    FreshdeskConnector::new(config).expect("builds")
}

fn request<'a>(headers: &'a HeaderMap, path_and_query: &'a str) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        path_and_query,
        headers,
        body: br#"{"ticket_id":"1","reply":"<div>Hi</div>"}"#,
        received_at: Utc::now(),
    }
}

fn with_secret(secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "X-Wabridge-Secret",
        HeaderValue::from_str(secret).expect("ascii"),
    );
    headers
}

fn unauthorized(result: Result<(), WebhookRejection>) -> String {
    match result {
        Err(WebhookRejection::Unauthorized(why)) => why,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn accepts_the_shared_secret_in_the_header_or_the_query() {
    let connector = webhook_connector();
    let headers = with_secret(WEBHOOK_SECRET);
    assert_eq!(
        connector.verify_webhook(&request(&headers, "/connectors/freshdesk/webhook")),
        Ok(())
    );
    let none = HeaderMap::new();
    assert_eq!(
        connector.verify_webhook(&request(
            &none,
            &format!("/connectors/freshdesk/webhook?x=1&secret={WEBHOOK_SECRET}")
        )),
        Ok(())
    );
}

#[test]
fn returns_401_on_a_wrong_or_missing_secret() {
    let connector = webhook_connector();
    for wrong in [
        "wabridge-fd-7c1e0b5a9d3e",
        "wabridge-fd-7c1e0b5a9d3f0",
        "wabridge",
    ] {
        let headers = with_secret(wrong);
        let why = unauthorized(
            connector.verify_webhook(&request(&headers, "/connectors/freshdesk/webhook")),
        );
        assert!(why.contains("does not match"), "{why}");
    }
    let none = HeaderMap::new();
    let why =
        unauthorized(connector.verify_webhook(&request(&none, "/connectors/freshdesk/webhook")));
    assert!(why.contains("missing"), "{why}");
    unauthorized(connector.verify_webhook(&request(
        &none,
        "/connectors/freshdesk/webhook?secret=nope-nope-nope-nope",
    )));
    // A wrong header is not rescued by a right query parameter.
    let headers = with_secret("wrong-wrong-wrong-wrong");
    unauthorized(connector.verify_webhook(&request(
        &headers,
        &format!("/connectors/freshdesk/webhook?secret={WEBHOOK_SECRET}"),
    )));
}

#[test]
fn takes_no_webhooks_without_a_secret() {
    let connector = FreshdeskConnector::new(FreshdeskConfig::new("acme", Secret::new(API_KEY)))
        .expect("builds");
    let headers = with_secret(WEBHOOK_SECRET);
    assert_eq!(
        connector.verify_webhook(&request(&headers, "/connectors/freshdesk/webhook")),
        Err(WebhookRejection::NotSupported)
    );
}

#[test]
fn reads_the_agents_reply_out_of_the_automation_body() {
    // What Freshdesk sends after replacing the placeholders of AUTOMATION_BODY.
    let rendered = AUTOMATION_BODY
        .replace("{{ticket.id}}", "1001")
        .replace(
            "{{ticket.latest_public_comment}}",
            "<div>Hi Aisha,<br>it ships &quot;tomorrow&quot;.</div>\
             <div class=\\\"freshdesk_quote\\\"><blockquote class=\\\"freshdesk_quote\\\">\
             Aisha wrote: where is it?</blockquote></div>",
        )
        .replace("{{ticket.agent.email}}", "agent@acme.com")
        .replace("{{triggered_event}}", "{Reply sent}");
    let connector = webhook_connector();
    let replies = connector
        .replies_from_webhook(rendered.as_bytes())
        .expect("readable");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].ticket, TicketRef("1001".into()));
    assert_eq!(replies[0].text, "Hi Aisha,\nit ships \"tomorrow\".");
    assert!(
        replies[0].id.starts_with("freshdesk-reply-1001-") && replies[0].id.len() == 37,
        "{}",
        replies[0].id
    );
    // The same delivery again: the same id, so it is sent once.
    let again = connector
        .replies_from_webhook(rendered.as_bytes())
        .expect("readable");
    assert_eq!(again[0].id, replies[0].id);
    // Another reply: another id.
    let other = connector
        .replies_from_webhook(br#"{"ticket_id": 1001, "reply": "<div>Shipped.</div>"}"#)
        .expect("readable");
    assert_ne!(other[0].id, replies[0].id);
    assert_eq!(other[0].text, "Shipped.");
}

#[test]
fn ignores_customer_messages_and_empty_replies() {
    let connector = webhook_connector();
    let customer =
        json!({"ticket_id": "1", "reply": entry_html(&conformance::conversation(), &text_only())});
    for body in [
        customer.to_string(),
        json!({"ticket_id": "1", "reply": "<div><br></div>"}).to_string(),
        json!({"ticket_id": "1"}).to_string(),
    ] {
        assert_eq!(
            connector
                .replies_from_webhook(body.as_bytes())
                .expect("readable"),
            [],
            "{body}"
        );
    }
}

#[test]
fn rejects_unreadable_webhook_bodies_as_permanent() {
    let connector = webhook_connector();
    for body in [
        "ticket_id=1",
        "[]",
        r#"{"reply": "<div>Hi</div>"}"#,
        r#"{"ticket_id": "{{ticket.id}}", "reply": "x"}"#,
    ] {
        let err = connector
            .replies_from_webhook(body.as_bytes())
            .expect_err(body);
        assert!(!err.is_retryable(), "{body}");
    }
}

// ---- Identifiers and construction --------------------------------------------------------

#[test]
fn builds_external_ids_from_number_or_bsuid() {
    let mut contact = conformance::conversation().contact;
    assert_eq!(
        contact_external_id(&contact).as_deref(),
        Some("wa:96890000001")
    );
    contact.wa_id = None;
    contact.user_id = Some("US.1349120865530_27".into());
    assert_eq!(
        contact_external_id(&contact).as_deref(),
        Some("wa-u:US.1349120865530_27")
    );
    contact.user_id = None;
    assert_eq!(contact_external_id(&contact), None);
}

#[tokio::test]
async fn creates_a_contact_without_number_for_a_bsuid_only_customer() {
    let server = freshdesk().await;
    let mut conversation = conformance::conversation();
    conversation.contact.wa_id = None;
    conversation.contact.user_id = Some("US.1349120865530_27".into());
    conversation.contact.profile_name = None;
    connector(&server)
        .deliver(&conversation, &text_only(), &DeliveryContext::default())
        .await
        .expect("delivered");
    assert_eq!(
        received_json(&server, "POST", "/api/v2/contacts").await,
        [json!({"name": "US.1349120865530_27", "unique_external_id": "wa-u:US.1349120865530_27"})]
    );
    let creates = received_json(&server, "POST", "/api/v2/tickets").await;
    assert_eq!(creates[0]["subject"], "WhatsApp: US.1349120865530_27");
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let err =
        FreshdeskConnector::new(FreshdeskConfig::new("acme", Secret::new(""))).expect_err("no key");
    assert!(!err.is_retryable());
}

#[test]
fn debug_output_shows_no_credential() {
    let connector = webhook_connector();
    let debug = format!("{connector:?}");
    assert!(!debug.contains(API_KEY), "{debug}");
    assert!(!debug.contains(WEBHOOK_SECRET), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}

// ---- Routing -------------------------------------------------------------------------------

const AGENT_EMAIL: &str = "Lena.Agent@acme.com";
const AGENT_ID: u64 = 80000000042;
const BILLING_GROUP: u64 = 80000123456;

/// Ticket 1 with the fields routing reads.
fn routed_ticket(
    status: u64,
    group: Option<u64>,
    responder: Option<u64>,
    priority: u64,
    tags: &[&str],
) -> Value {
    let mut ticket = ticket_json(1, status, "2026-11-27T09:00:00Z");
    ticket["group_id"] = json!(group);
    ticket["responder_id"] = json!(responder);
    ticket["priority"] = json!(priority);
    ticket["tags"] = json!(tags);
    ticket
}

/// Ticket 1 answers `before` once, then `after`.
async fn mount_routed(server: &MockServer, before: Value, after: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1"))
        .respond_with(answer(200).set_body_json(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1"))
        .respond_with(answer(200).set_body_json(after))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Groups on two pages (Billing on the second); the agent found by e-mail.
async fn mount_groups_and_agent(server: &MockServer) {
    let group = |id: u64, name: &str| {
        json!({"id": id, "name": name, "description": null, "escalate_to": null,
               "unassigned_for": "30m", "business_hour_id": null, "group_type": "support_agent_group",
               "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
    };
    Mock::given(method("GET"))
        .and(path("/api/v2/groups"))
        .and(query_param("page", "1"))
        .respond_with(
            answer(200)
                .insert_header(
                    "Link",
                    "<https://acme.freshdesk.com/api/v2/groups?per_page=100&page=2>; rel=\"next\"",
                )
                .set_body_json(json!([group(80000000001, "Support")])),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/groups"))
        .and(query_param("page", "2"))
        .respond_with(answer(200).set_body_json(json!([group(BILLING_GROUP, "Billing")])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/agents"))
        .and(query_param("email", AGENT_EMAIL))
        .respond_with(answer(200).set_body_json(json!([{
            "available": true, "occasional": false, "id": AGENT_ID, "ticket_scope": 1,
            "type": "support_agent", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "contact": {"active": true, "email": "lena.agent@acme.com", "name": "Lena Agent"}
        }])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/agents"))
        .respond_with(answer(200).set_body_json(json!([])))
        .with_priority(10)
        .mount(server)
        .await;
}

fn route_to(department: &str, assignee: &str, priority: &str, tags: &[&str]) -> TicketRouting {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    TicketRouting {
        department: some(department),
        assignee: some(assignee),
        priority: crate::Priority::parse(priority),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        handover: None,
    }
}

#[tokio::test]
async fn routes_group_agent_priority_and_the_union_of_tags_in_one_put() {
    let server = freshdesk().await;
    mount_groups_and_agent(&server).await;
    mount_routed(
        &server,
        routed_ticket(2, None, None, 1, &["whatsapp", "VIP"]),
        routed_ticket(
            2,
            Some(BILLING_GROUP),
            Some(AGENT_ID),
            4,
            &["whatsapp", "VIP", "late delivery"],
        ),
    )
    .await;
    let connector = connector(&server);
    let routing = route_to(
        "BILLING",
        AGENT_EMAIL,
        "urgent",
        &["vip", " late delivery ", "late delivery"],
    );
    for _ in 0..2 {
        connector
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect("routed");
    }
    // Freshdesk replaces tags: the ticket's own ones go along. The second route writes nothing.
    assert_eq!(
        received_json(&server, "PUT", "/api/v2/tickets/1").await,
        [json!({
            "group_id": BILLING_GROUP, "responder_id": AGENT_ID, "priority": 4,
            "tags": ["whatsapp", "VIP", "late delivery"]
        })]
    );
    assert_eq!(requests(&server, "GET", "/api/v2/groups").await.len(), 2);
    assert_eq!(requests(&server, "GET", "/api/v2/agents").await.len(), 1);
    assert!(requests(&server, "POST", "/api/v2/tickets/1/notes")
        .await
        .is_empty());
}

#[tokio::test]
async fn hands_over_with_a_private_note_before_opening_and_raising_the_priority() {
    let server = freshdesk().await;
    mount_routed(
        &server,
        routed_ticket(3, None, None, 2, &["whatsapp"]),
        routed_ticket(2, None, None, 3, &["whatsapp"]),
    )
    .await;
    let routing = TicketRouting {
        handover: Some("wants a <refund> & more".into()),
        ..TicketRouting::default()
    };
    connector(&server)
        .route(&TicketRef("1".into()), &routing)
        .await
        .expect("routed");
    assert_eq!(
        trail(&server).await,
        [
            "GET /api/v2/tickets/1",
            "POST /api/v2/tickets/1/notes",
            "PUT /api/v2/tickets/1"
        ]
    );
    assert_eq!(
        received_json(&server, "POST", "/api/v2/tickets/1/notes").await,
        [json!({
            "body": "<div>wabridge: the customer asked for a person: wants a &lt;refund&gt; \
                     &amp; more<br>[wa:routing]</div>",
            "private": true
        })]
    );
    assert_eq!(
        received_json(&server, "PUT", "/api/v2/tickets/1").await,
        [json!({"status": 2, "priority": 3})]
    );
}

#[tokio::test]
async fn notes_a_hand_over_on_an_open_ticket_once_per_reason() {
    for (reason, expected) in [("wants a refund", 0), ("wants an invoice", 1)] {
        let server = freshdesk().await;
        let ticket = routed_ticket(2, None, None, 4, &["whatsapp"]);
        mount_routed(&server, ticket.clone(), ticket).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/tickets/1/conversations"))
            .respond_with(answer(200).set_body_json(json!([
                note_json(
                    60,
                    1,
                    "<div>wabridge: the customer asked for a person: wants a refund<br>\
                     [wa:routing]</div>",
                    false,
                    true
                ),
                note_json(61, 1, "<div>Hello?</div>", true, false),
            ])))
            .with_priority(1)
            .mount(&server)
            .await;
        let routing = TicketRouting {
            handover: Some(reason.into()),
            ..TicketRouting::default()
        };
        connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect("routed");
        assert_eq!(
            requests(&server, "POST", "/api/v2/tickets/1/notes")
                .await
                .len(),
            expected,
            "{reason}"
        );
        // Open and urgent already: no update.
        assert!(requests(&server, "PUT", "/api/v2/tickets/1")
            .await
            .is_empty());
    }
}

#[tokio::test]
async fn refuses_unknown_groups_agents_and_priorities_before_writing() {
    for (routing, expected) in [
        (
            route_to("Sales", "", "", &[]),
            "Freshdesk has no group named `Sales`",
        ),
        (
            route_to("", "nobody@acme.com", "", &[]),
            "no agent with the e-mail address `nobody@acme.com`",
        ),
        (
            route_to("", "Lena", "", &[]),
            "neither an agent's e-mail address nor a numeric agent id",
        ),
    ] {
        let server = freshdesk().await;
        mount_groups_and_agent(&server).await;
        let err = connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("http"), "{text}");
        assert!(requests(&server, "PUT", "/api/v2/tickets/1")
            .await
            .is_empty());
    }
}

#[tokio::test]
async fn fails_permanently_with_freshdesks_words_on_an_invalid_update() {
    let server = freshdesk().await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/tickets/1"))
        .respond_with(answer(400).set_body_json(json!({
            "description": "Validation failed",
            "errors": [{"field": "responder_id", "message": "There is no agent with id 5",
                        "code": "invalid_value"}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .route(&TicketRef("1".into()), &route_to("", "5", "", &[]))
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "freshdesk: routing: updating the ticket: HTTP 400 Bad Request: Validation \
                     failed: responder_id: There is no agent with id 5 (invalid_value)"
                .into()
        }
    );
}

#[tokio::test]
async fn tells_resolved_closed_deleted_and_missing_tickets_apart() {
    for (status, discarded, expected) in [
        (2, false, false),
        (3, false, false),
        (6, false, false),
        (4, true, true),
        (4, false, true),
        (5, false, true),
        (2, true, true),
        (0, false, true),
    ] {
        let server = freshdesk().await;
        if status == 0 {
            Mock::given(method("GET"))
                .and(path("/api/v2/tickets/1"))
                .respond_with(answer(404))
                .with_priority(1)
                .mount(&server)
                .await;
        } else {
            let mut ticket = ticket_json(1, status, "2026-11-27T09:00:00Z");
            ticket["deleted"] = json!(discarded);
            mount_ticket(&server, 1, ticket).await;
        }
        let resolved = connector(&server)
            .is_resolved(&TicketRef("1".into()))
            .await
            .expect("read");
        assert_eq!(resolved, expected, "{status} {discarded}");
    }
}
