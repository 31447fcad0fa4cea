//! The generic HTTP connector against a fictional REST helpdesk ("Deskly") on wiremock,
//! configured through TOML text the way an admin writes it in `wabridge.toml`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::conformance::crm::{self as crm_suite, CrmSubject};
use crate::conformance::{self, Subject, Target, MESSAGE_ID};
use crate::{ConfigProblem, ConnectorConfig};

const TOKEN: &str = "deskly-tok-7f3e9a";
/// The conversation key of [`conformance::conversation`].
const CONVERSATION_KEY: &str = "106540352242922:96890000001";

/// A complete section for Deskly: both roles, every optional request. `$URL`, `$TOKEN` and
/// `$TIMEOUT` are filled in per test.
const DESKLY: &str = r#"
[connectors.helpdesk]
kind = "http"
url = "$URL/api"
timeout_secs = $TIMEOUT
check = { path = "/me" }

[connectors.helpdesk.auth]
bearer = "$TOKEN"

[connectors.helpdesk.ticket]
find = { path = "/tickets?external_id={conversation.key}", id = "$.tickets[0].id" }
append = { path = "/tickets/{ticket}/comments", body = '''{"body": "{message.text}\n{message.marker}"}''' }
exists = { path = "/tickets/{ticket}/comments?search={message.marker}", id = "$.comments[0].id" }
note = { path = "/tickets/{ticket}/comments", body = '''{"body": "{note}", "private": true}''' }
attach = { path = "/tickets/{ticket}/attachments", body = '''{"filename": "{attachment.filename}", "type": "{attachment.mime_type}", "size": {attachment.size}, "data": "{attachment.base64}"}''' }

[connectors.helpdesk.ticket.create]
method = "POST"
path = "/tickets"
id = "$.ticket.id"
body = '''
{"subject": "WhatsApp: {contact.display}",
 "body": "{message.text}\n{message.marker}",
 "external_id": "{conversation.key}",
 "sent_at": "{message.timestamp}", "kind": "{message.kind}"}
'''

[connectors.helpdesk.contact]
upsert = { method = "PUT", path = "/contacts/by-phone/{contact.e164}", body = '''{"name": "{contact.name}", "phone": "{contact.e164}"}''', id = "$.id" }
activity = { path = "/contacts/{contact_id}/activities", body = '''{"text": "{activity.text}", "direction": "{activity.direction}", "at": "{activity.at}", "ref": "{activity.marker}"}''' }
exists = { path = "/contacts/{contact_id}/activities?ref={activity.marker}", id = "$.activities[0].id" }
"#;

#[derive(Deserialize)]
struct File {
    connectors: BTreeMap<String, ConnectorConfig>,
}

/// Parses a `wabridge.toml` text and returns its `[connectors.helpdesk]` section.
fn parse(text: &str) -> Result<ConnectorConfig, String> {
    let mut file: File = toml::from_str(text).map_err(|err| err.to_string())?;
    file.connectors
        .remove("helpdesk")
        .ok_or_else(|| "no [connectors.helpdesk]".to_owned())
}

fn deskly_text(url: &str, token: &str, timeout_secs: u64) -> String {
    DESKLY
        .replace("$URL", url)
        .replace("$TOKEN", token)
        .replace("$TIMEOUT", &timeout_secs.to_string())
}

fn http_config(text: &str) -> HttpConfig {
    match parse(text).expect("parses") {
        ConnectorConfig::Http(config) => *config,
        other => panic!("not an http section: {other:?}"),
    }
}

fn connector_from(text: &str) -> Connector {
    let config = parse(text).expect("parses");
    assert_eq!(config.validate(), Vec::<ConfigProblem>::new());
    let context = crate::BuildContext {
        store_dir: std::path::PathBuf::from("/nonexistent"),
        name: "helpdesk".into(),
    };
    config.build(&context).expect("builds")
}

fn deskly(server: &MockServer) -> Connector {
    connector_from(&deskly_text(&server.uri(), TOKEN, 5))
}

fn ticketing(server: &MockServer) -> Box<dyn TicketSystem> {
    deskly(server).ticketing.expect("ticketing role")
}

fn crm(server: &MockServer) -> Box<dyn Crm> {
    deskly(server).crm.expect("CRM role")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Deskly's answers: no ticket found, new tickets get id 901, every ticket has no comments
/// yet, the contact is 512 with no activities; every route requires `authorization`.
async fn mount_deskly(server: &MockServer, authorization: &str) {
    let routes = [
        (
            "GET",
            r"^/api/me$",
            200,
            json!({"id": 1, "name": "wabridge"}),
        ),
        ("GET", r"^/api/tickets$", 200, json!({"tickets": []})),
        (
            "POST",
            r"^/api/tickets$",
            201,
            json!({"ticket": {"id": 901, "status": "open"}}),
        ),
        (
            "GET",
            r"^/api/tickets/[^/]+/comments$",
            200,
            json!({"comments": []}),
        ),
        (
            "POST",
            r"^/api/tickets/[^/]+/comments$",
            201,
            json!({"comment": {"id": 5}}),
        ),
        (
            "POST",
            r"^/api/tickets/[^/]+/attachments$",
            201,
            json!({"attachment": {"id": 6}}),
        ),
        (
            "PUT",
            r"^/api/contacts/by-phone/%2B96890000001$",
            200,
            json!({"id": 512, "name": "Aisha", "phone": "+96890000001"}),
        ),
        (
            "GET",
            r"^/api/contacts/512/activities$",
            200,
            json!({"activities": []}),
        ),
        (
            "POST",
            r"^/api/contacts/512/activities$",
            201,
            json!({"activity": {"id": "act-1"}}),
        ),
    ];
    for (verb, route, status, answer) in routes {
        Mock::given(method(verb))
            .and(path_regex(route))
            .and(header("Authorization", authorization))
            .respond_with(ResponseTemplate::new(status).set_body_json(answer))
            .mount(server)
            .await;
    }
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    mount_deskly(&server, &bearer(TOKEN)).await;
    server
}

/// Answers `verb` + exact `route` with `answer`, ahead of the defaults.
async fn answer(server: &MockServer, verb: &str, route: &str, status: u16, answer: Value) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_json(answer))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// The requests received for `verb` + exact (encoded) `route`.
async fn received(server: &MockServer, verb: &str, route: &str) -> Vec<Request> {
    requests(server)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .collect()
}

/// The raw bodies received for `verb` + `route`.
async fn bodies(server: &MockServer, verb: &str, route: &str) -> Vec<String> {
    received(server, verb, route)
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn query(request: &Request) -> Vec<(String, String)> {
    request.url.query_pairs().into_owned().collect()
}

async fn writes(server: &MockServer) -> Vec<String> {
    requests(server)
        .await
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

fn known(ticket: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(ticket.to_owned())),
        maybe_delivered,
    }
}

/// A text message with quotes, a backslash, a line break and Arabic.
fn tricky_message() -> InboundMessage {
    let mut message = conformance::message();
    message.kind = "text".into();
    message.attachments.clear();
    message.text = "He said \"where's my order?\"\nمرحبا \\ شكرا".into();
    message
}

fn marker_of(id: &str) -> String {
    format!("[wa:{id}]")
}

// ---------------------------------------------------------------------------------------
// Conformance

struct Deskly;

#[async_trait::async_trait]
impl Subject for Deskly {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_deskly(server, &bearer(conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        let text = deskly_text(
            &target.url,
            target.secret.expose(),
            target.timeout.as_secs().max(1),
        );
        let config = http_config(&text);
        build(&config)?
            .ticketing
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "no ticketing role".into(),
            })
    }
}

#[tokio::test]
async fn http_passes_the_conformance_suite() {
    conformance::run_suite(&Deskly).await;
}

#[async_trait::async_trait]
impl CrmSubject for Deskly {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_deskly(server, &bearer(conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn Crm>, ConnectorError> {
        let text = deskly_text(
            &target.url,
            target.secret.expose(),
            target.timeout.as_secs().max(1),
        );
        build(&http_config(&text))?
            .crm
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "no CRM role".into(),
            })
    }
}

#[tokio::test]
async fn http_passes_the_crm_conformance_suite() {
    crm_suite::run_crm_suite(&Deskly).await;
}

// ---------------------------------------------------------------------------------------
// Ticketing

#[tokio::test]
async fn finds_nothing_then_creates_then_appends_with_exact_escaped_bodies() {
    let server = server().await;
    let ticketing = ticketing(&server);
    let conversation = conformance::conversation();
    let message = tricky_message();

    let first = ticketing
        .deliver(&conversation, &message, &DeliveryContext::default())
        .await
        .expect("delivered");
    assert_eq!(
        first,
        Delivered {
            ticket: TicketRef("901".into()),
            opened_ticket: true,
            already_present: false
        }
    );
    // The lookup asked by conversation key, percent-encoded.
    let finds = received(&server, "GET", "/api/tickets").await;
    assert_eq!(finds.len(), 1);
    assert_eq!(
        finds[0].url.query(),
        Some("external_id=106540352242922%3A96890000001")
    );
    assert_eq!(
        query(&finds[0]),
        [("external_id".to_owned(), CONVERSATION_KEY.to_owned())]
    );
    let created = bodies(&server, "POST", "/api/tickets").await;
    let expected_create = format!(
        "{{\"subject\": \"WhatsApp: Aisha (+96890000001)\",\n \
         \"body\": \"He said \\\"where's my order?\\\"\\nمرحبا \\\\ شكرا\\n[wa:{MESSAGE_ID}]\",\n \
         \"external_id\": \"{CONVERSATION_KEY}\",\n \
         \"sent_at\": \"2026-11-27T09:30:00Z\", \"kind\": \"text\"}}\n"
    );
    assert_eq!(created, [expected_create]);
    let parsed: Value = serde_json::from_str(&created[0]).expect("JSON");
    assert_eq!(
        parsed["body"],
        format!("{}\n{}", message.text, marker_of(MESSAGE_ID))
    );
    let create = &received(&server, "POST", "/api/tickets").await[0];
    assert_eq!(
        create
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );

    // The next message goes into the recorded ticket, without a lookup.
    let mut second = tricky_message();
    second.id = "wamid.SECOND".into();
    second.text = "Tab\there, emoji 📦, quote \"".into();
    let next = ticketing
        .deliver(&conversation, &second, &known("901", false))
        .await
        .expect("delivered");
    assert_eq!(
        next,
        Delivered {
            ticket: TicketRef("901".into()),
            opened_ticket: false,
            already_present: false
        }
    );
    assert_eq!(
        bodies(&server, "POST", "/api/tickets/901/comments").await,
        ["{\"body\": \"Tab\\there, emoji 📦, quote \\\"\\n[wa:wamid.SECOND]\"}"]
    );
    assert_eq!(received(&server, "GET", "/api/tickets").await.len(), 1);
    // Without maybe_delivered nothing is looked up before the write.
    assert!(received(&server, "GET", "/api/tickets/901/comments")
        .await
        .is_empty());
}

#[tokio::test]
async fn continues_the_ticket_find_returns_with_a_numeric_or_string_id() {
    for (found, id) in [(json!(77), "77"), (json!("TCK-77"), "TCK-77")] {
        let server = server().await;
        answer(
            &server,
            "GET",
            "/api/tickets",
            200,
            json!({"tickets": [{"id": found, "status": "open"}]}),
        )
        .await;
        let delivered = ticketing(&server)
            .deliver(
                &conformance::conversation(),
                &tricky_message(),
                &DeliveryContext::default(),
            )
            .await
            .expect("delivered");
        assert_eq!(
            delivered,
            Delivered {
                ticket: TicketRef(id.into()),
                opened_ticket: false,
                already_present: false
            }
        );
        assert_eq!(
            writes(&server).await,
            [format!("POST /api/tickets/{id}/comments")]
        );
    }
}

#[tokio::test]
async fn writes_nothing_when_exists_finds_the_marker_under_maybe_delivered() {
    let server = server().await;
    answer(
        &server,
        "GET",
        "/api/tickets/901/comments",
        200,
        json!({"comments": [{"id": 31, "body": format!("hi\n{}", marker_of(MESSAGE_ID))}]}),
    )
    .await;
    let delivered = ticketing(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("901", true),
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("901".into()),
            opened_ticket: false,
            already_present: true
        }
    );
    assert!(writes(&server).await.is_empty());
    let lookups = received(&server, "GET", "/api/tickets/901/comments").await;
    assert_eq!(
        query(&lookups[0]),
        [("search".to_owned(), marker_of(MESSAGE_ID))]
    );
}

#[tokio::test]
async fn finds_the_ticket_an_earlier_attempt_opened_and_the_message_in_it() {
    let server = server().await;
    answer(
        &server,
        "GET",
        "/api/tickets",
        200,
        json!({"tickets": [{"id": 901}]}),
    )
    .await;
    answer(
        &server,
        "GET",
        "/api/tickets/901/comments",
        200,
        json!({"comments": [{"id": 1}]}),
    )
    .await;
    let delivered = ticketing(&server)
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
    assert!(delivered.already_present);
    assert_eq!(delivered.ticket, TicketRef("901".into()));
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn writes_when_exists_finds_nothing_under_maybe_delivered() {
    let server = server().await;
    let delivered = ticketing(&server)
        .deliver(
            &conformance::conversation(),
            &tricky_message(),
            &known("901", true),
        )
        .await
        .expect("delivered");
    assert!(!delivered.already_present);
    assert_eq!(
        received(&server, "GET", "/api/tickets/901/comments")
            .await
            .len(),
        1
    );
    assert_eq!(writes(&server).await, ["POST /api/tickets/901/comments"]);
}

#[tokio::test]
async fn sends_each_file_as_base64_before_the_entry_and_after_a_create() {
    let server = server().await;
    let message = conformance::message();
    ticketing(&server)
        .deliver(&conformance::conversation(), &message, &known("901", false))
        .await
        .expect("delivered");
    assert_eq!(
        writes(&server).await,
        [
            "POST /api/tickets/901/attachments",
            "POST /api/tickets/901/comments"
        ]
    );
    assert_eq!(
        bodies(&server, "POST", "/api/tickets/901/attachments").await,
        [
            r#"{"filename": "parcel.jpg", "type": "image/jpeg", "size": 11, "data": "/9j/4AAQSkZJRgA="}"#
        ]
    );
    // Files forwarded: the text is the message's own.
    let appended: Value =
        serde_json::from_str(&bodies(&server, "POST", "/api/tickets/901/comments").await[0])
            .expect("JSON");
    assert_eq!(
        appended["body"],
        format!("{}\n{}", message.text, marker_of(MESSAGE_ID))
    );

    let fresh = MockServer::start().await;
    mount_deskly(&fresh, &bearer(TOKEN)).await;
    ticketing(&fresh)
        .deliver(
            &conformance::conversation(),
            &message,
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert_eq!(
        writes(&fresh).await,
        ["POST /api/tickets", "POST /api/tickets/901/attachments"]
    );
}

#[tokio::test]
async fn names_files_it_does_not_forward_in_the_text_when_attach_is_not_configured() {
    let server = server().await;
    let text = deskly_text(&server.uri(), TOKEN, 5);
    let without_attach: String = text
        .lines()
        .filter(|line| !line.starts_with("attach ="))
        .collect::<Vec<_>>()
        .join("\n");
    let ticketing = connector_from(&without_attach)
        .ticketing
        .expect("ticketing");
    ticketing
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("901", false),
        )
        .await
        .expect("delivered");
    assert_eq!(writes(&server).await, ["POST /api/tickets/901/comments"]);
    let appended: Value =
        serde_json::from_str(&bodies(&server, "POST", "/api/tickets/901/comments").await[0])
            .expect("JSON");
    assert_eq!(
        appended["body"],
        format!(
            "Where is my order #1001? (photo attached)\n\n(Not forwarded by wabridge: \
             parcel.jpg (image/jpeg, 11 bytes))\n{}",
            marker_of(MESSAGE_ID)
        )
    );
}

#[tokio::test]
async fn note_is_written_with_the_configured_request() {
    let server = server().await;
    ticketing(&server)
        .note(
            &TicketRef("901".into()),
            "Reply not sent: \"24 h window closed\"",
        )
        .await
        .expect("noted");
    assert_eq!(
        bodies(&server, "POST", "/api/tickets/901/comments").await,
        [r#"{"body": "Reply not sent: \"24 h window closed\"", "private": true}"#]
    );
}

#[tokio::test]
async fn a_recorded_ticket_that_is_gone_is_a_permanent_error_without_the_url() {
    let server = server().await;
    answer(
        &server,
        "POST",
        "/api/tickets/404/comments",
        404,
        json!({"error": "not found"}),
    )
    .await;
    let err = ticketing(&server)
        .deliver(
            &conformance::conversation(),
            &tricky_message(),
            &known("404", false),
        )
        .await
        .expect_err("fails");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("http: ticket.append: HTTP 404"), "{text}");
    assert!(
        !text.contains("/api/tickets") && !text.contains("127.0.0.1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_create_answer_without_the_id_is_permanent() {
    let server = server().await;
    answer(&server, "POST", "/api/tickets", 201, json!({"ok": true})).await;
    let err = ticketing(&server)
        .deliver(
            &conformance::conversation(),
            &tricky_message(),
            &DeliveryContext::default(),
        )
        .await
        .expect_err("fails");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "http: ticket.create: the answer has no id at $.ticket.id: {\"ok\":true}"
                .into()
        }
    );
}

#[tokio::test]
async fn check_reads_the_configured_path() {
    let server = server().await;
    let connector = deskly(&server);
    connector
        .ticketing
        .expect("ticketing")
        .check()
        .await
        .expect("ok");
    connector.crm.expect("crm").check().await.expect("ok");
    assert_eq!(received(&server, "GET", "/api/me").await.len(), 2);
}

// ---------------------------------------------------------------------------------------
// CRM

#[tokio::test]
async fn upserts_the_contact_and_logs_each_activity_with_exact_bodies() {
    let server = server().await;
    let crm = crm(&server);
    let id = crm
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("upserted");
    assert_eq!(id, CrmContactId("512".into()));
    assert_eq!(
        bodies(&server, "PUT", "/api/contacts/by-phone/%2B96890000001").await,
        [r#"{"name": "Aisha", "phone": "+96890000001"}"#]
    );

    crm.log_activity(
        &id,
        &conformance::conversation(),
        &crm_suite::activities(),
        false,
    )
    .await
    .expect("logged");
    assert_eq!(
        bodies(&server, "POST", "/api/contacts/512/activities").await,
        [
            format!(
                r#"{{"text": "Where is my order #1001?", "direction": "inbound", "at": "2026-11-27T09:30:00Z", "ref": "[wa:{MESSAGE_ID}]"}}"#
            ),
            format!(
                r#"{{"text": "It left our warehouse today.\nTracking: 1Z999", "direction": "outbound", "at": "2026-11-27T09:31:00Z", "ref": "[wa:{}]"}}"#,
                crm_suite::OUTBOUND_ID
            ),
        ]
    );
    // No lookups without maybe_delivered.
    assert!(received(&server, "GET", "/api/contacts/512/activities")
        .await
        .is_empty());
}

#[tokio::test]
async fn logs_only_the_activities_exists_does_not_find_under_maybe_delivered() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/api/contacts/512/activities"))
        .and(query_param("ref", marker_of(MESSAGE_ID)))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"activities": [{"id": "act-1"}]})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let mut activities = crm_suite::activities();
    // The same message twice is logged once.
    activities.push(activities[1].clone());
    crm(&server)
        .log_activity(
            &CrmContactId("512".into()),
            &conformance::conversation(),
            &activities,
            true,
        )
        .await
        .expect("logged");
    let written = bodies(&server, "POST", "/api/contacts/512/activities").await;
    assert_eq!(written.len(), 1);
    assert!(written[0].contains(crm_suite::OUTBOUND_ID), "{written:?}");
    assert_eq!(
        received(&server, "GET", "/api/contacts/512/activities")
            .await
            .len(),
        2
    );
}

const CONTACT_FIND: &str = r#"
[connectors.helpdesk]
kind = "http"
url = "$URL/api"
check = { path = "/me" }
[connectors.helpdesk.auth]
bearer = "$TOKEN"
[connectors.helpdesk.contact]
find = { path = "/contacts/search?phone={contact.e164}", id = "$.contacts[0].id", empty_on_404 = true }
upsert = { method = "POST", path = "/contacts", body = '''{"phone": "{contact.e164}", "name": "{contact.name}"}''', id = "$.contact.id" }
activity = { path = "/contacts/{contact_id}/activities", body = '''{"text": "{activity.text} {activity.marker}"}''' }
"#;

#[tokio::test]
async fn contact_find_skips_the_upsert_and_404_means_not_found_when_configured() {
    let server = server().await;
    let text = CONTACT_FIND
        .replace("$URL", &server.uri())
        .replace("$TOKEN", TOKEN);
    answer(
        &server,
        "GET",
        "/api/contacts/search",
        200,
        json!({"contacts": [{"id": "c-9"}]}),
    )
    .await;
    let connector = connector_from(&text);
    assert!(connector.ticketing.is_none());
    let crm = connector.crm.expect("crm");
    let contact = conformance::conversation().contact;
    assert_eq!(
        crm.upsert_contact(&contact).await.expect("found"),
        CrmContactId("c-9".into())
    );
    assert!(writes(&server).await.is_empty());
    let search = &received(&server, "GET", "/api/contacts/search").await[0];
    assert_eq!(search.url.query(), Some("phone=%2B96890000001"));

    let missing = MockServer::start().await;
    mount_deskly(&missing, &bearer(TOKEN)).await;
    answer(
        &missing,
        "GET",
        "/api/contacts/search",
        404,
        json!({"error": "no such contact"}),
    )
    .await;
    answer(
        &missing,
        "POST",
        "/api/contacts",
        201,
        json!({"contact": {"id": 1024}}),
    )
    .await;
    let text = CONTACT_FIND
        .replace("$URL", &missing.uri())
        .replace("$TOKEN", TOKEN);
    let crm = connector_from(&text).crm.expect("crm");
    assert_eq!(
        crm.upsert_contact(&contact).await.expect("created"),
        CrmContactId("1024".into())
    );
    assert_eq!(
        bodies(&missing, "POST", "/api/contacts").await,
        [r#"{"phone": "+96890000001", "name": "Aisha"}"#]
    );

    // Without empty_on_404 a 404 on a lookup is an error, not "create another one".
    let strict = text.replace(", empty_on_404 = true", "");
    let err = connector_from(&strict)
        .crm
        .expect("crm")
        .upsert_contact(&contact)
        .await
        .expect_err("fails");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("contact.find: HTTP 404"), "{err}");
}

#[tokio::test]
async fn a_path_needing_a_missing_phone_number_fails_permanently_without_a_request() {
    let server = server().await;
    let bsuid_only = Contact {
        wa_id: None,
        user_id: Some("OM.123".into()),
        profile_name: None,
    };
    let err = crm(&server)
        .upsert_contact(&bsuid_only)
        .await
        .expect_err("fails");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "http: contact.upsert: path: {contact.e164} is empty here (e.g. a contact \
                     without a phone number), and a path cannot be built without it"
                .into()
        }
    );
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn errors_never_carry_the_url_or_the_phone_number() {
    let server = server().await;
    answer(
        &server,
        "PUT",
        "/api/contacts/by-phone/%2B96890000001",
        503,
        json!({"message": "busy"}),
    )
    .await;
    let err = crm(&server)
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect_err("fails");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("http: contact.upsert: HTTP 503"), "{text}");
    assert!(
        !text.contains("96890000001") && !text.contains("by-phone"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Credentials

const AUTH_ONLY: &str = r#"
[connectors.helpdesk]
kind = "http"
url = "$URL"
check = { path = "/me" }
[connectors.helpdesk.headers]
X-Api-Version = "2024-01"
[connectors.helpdesk.auth]
$AUTH
[connectors.helpdesk.ticket]
create = { path = "/t", body = '''{"m": "{message.marker}"}''', id = "$.id" }
append = { path = "/t/{ticket}", body = '''{"m": "{message.marker}"}''' }
"#;

#[tokio::test]
async fn sends_the_configured_credential_and_headers_and_never_prints_them() {
    for (auth, name, expected) in [
        (
            "bearer = \"tok-1\"".to_owned(),
            "authorization",
            "Bearer tok-1",
        ),
        (
            "header = \"X-Api-Key\"\nvalue = \"key-2\"".to_owned(),
            "x-api-key",
            "key-2",
        ),
        (
            "username = \"wabridge\"\npassword = \"p@ss w0rd\"".to_owned(),
            "authorization",
            "Basic d2FicmlkZ2U6cEBzcyB3MHJk",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/me"))
            .and(header(name, expected))
            .and(header("X-Api-Version", "2024-01"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
        let text = AUTH_ONLY
            .replace("$URL", &server.uri())
            .replace("$AUTH", &auth);
        let connector = connector_from(&text);
        let ticketing = connector.ticketing.expect("ticketing");
        ticketing.check().await.expect("credential accepted");
        let shown = format!("{ticketing:?} {:?}", http_config(&text));
        for secret in ["tok-1", "key-2", "p@ss", "d2FicmlkZ2U6", "2024-01"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

#[tokio::test]
async fn a_refused_credential_is_permanent_and_says_where_to_look() {
    let server = MockServer::start().await;
    mount_deskly(&server, &bearer("the-right-one")).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("{\"error\":\"bad token\"}"))
        .mount(&server)
        .await;
    let err = ticketing(&server).check().await.expect_err("refused");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("check [auth]"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Configuration

const MINIMAL_HEAD: &str = r#"
[connectors.helpdesk]
kind = "http"
url = "https://api.example.com/v2"
check = { path = "/me" }
[connectors.helpdesk.auth]
bearer = "t"
"#;
const CREATE: &str = r#"create = { path = "/tickets", body = '''{"body": "{message.text} {message.marker}"}''', id = "$.id" }"#;
const APPEND: &str = r#"append = { path = "/tickets/{ticket}/comments", body = '''{"body": "{message.text} {message.marker}"}''' }"#;

/// A section with `[….ticket]` holding `lines`.
fn with_ticket(lines: &[&str]) -> String {
    format!(
        "{MINIMAL_HEAD}[connectors.helpdesk.ticket]\n{}\n",
        lines.join("\n")
    )
}

fn problems(text: &str) -> Vec<ConfigProblem> {
    parse(text).expect("parses").validate()
}

/// The single problem of `text`: its field and message.
fn only_problem(text: &str) -> (String, String) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    (found[0].field.clone(), found[0].message.clone())
}

#[test]
fn the_documented_and_minimal_configurations_are_valid() {
    assert_eq!(problems(&with_ticket(&[CREATE, APPEND])), []);
    assert_eq!(
        problems(&deskly_text("https://deskly.example", "t", 30)),
        []
    );
    let config = http_config(&with_ticket(&[CREATE, APPEND]));
    assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
    assert!(config.contact.is_none());
    // The example in the module docs, as an admin would copy it.
    let docs = include_str!("mod.rs");
    let example: String = docs
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("//! ```").next())
        .expect("an example")
        .lines()
        .map(|line| {
            line.strip_prefix("//! ")
                .unwrap_or(line.trim_start_matches("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(problems(&example), [], "{example}");
}

#[test]
fn rejects_an_unknown_placeholder_naming_the_field() {
    let (field, message) = only_problem(&with_ticket(&[
        CREATE,
        r#"append = { path = "/tickets/{ticket}/comments", body = '''{"body": "{message.txt} {message.marker}"}''' }"#,
    ]));
    assert_eq!(field, "ticket.append.body");
    assert!(
        message.starts_with("unknown placeholder {message.txt}; available here: "),
        "{message}"
    );
    assert!(message.contains("{message.text}"), "{message}");
}

#[test]
fn rejects_a_placeholder_not_available_in_the_request() {
    let (field, message) = only_problem(&with_ticket(&[
        r#"create = { path = "/tickets/{ticket}", body = '''{"body": "{message.marker}"}''', id = "$.id" }"#,
        APPEND,
    ]));
    assert_eq!(field, "ticket.create.path");
    assert!(
        message.starts_with("{ticket} not available in this request"),
        "{message}"
    );
}

#[test]
fn rejects_a_body_that_is_not_json_once_filled_in() {
    let (field, message) = only_problem(&with_ticket(&[
        r#"create = { path = "/tickets", body = '''{"body": "{message.text}" "marker": "{message.marker}"}''', id = "$.id" }"#,
        APPEND,
    ]));
    assert_eq!(field, "ticket.create.body");
    assert!(
        message.starts_with("is not valid JSON once its placeholders are filled in"),
        "{message}"
    );
}

#[test]
fn rejects_a_bad_jsonpath_naming_the_field() {
    let (field, message) = only_problem(&with_ticket(&[
        r#"create = { path = "/tickets", body = '''{"body": "{message.marker}"}''', id = "$.ticket[" }"#,
        APPEND,
    ]));
    assert_eq!(field, "ticket.create.id");
    assert_eq!(
        message,
        "invalid JSONPath \"$.ticket[\": column 10: expected selector"
    );
}

#[test]
fn rejects_an_entry_without_the_marker_and_says_why() {
    let (field, message) = only_problem(&with_ticket(&[
        CREATE,
        r#"append = { path = "/tickets/{ticket}/comments", body = '''{"body": "{message.text} ({message.id})"}''' }"#,
    ]));
    assert_eq!(field, "ticket.append");
    assert!(
        message.starts_with("must carry {message.marker} in its path or body: it is how a retry"),
        "{message}"
    );
    // The marker in the path is enough.
    assert_eq!(
        problems(&with_ticket(&[
            CREATE,
            r#"append = { path = "/tickets/{ticket}/comments?ref={message.marker}", body = '''{"body": "{message.text}"}''' }"#,
        ])),
        []
    );
    // The CRM role's activities need theirs.
    let crm = format!(
        "{MINIMAL_HEAD}[connectors.helpdesk.contact]\n\
         upsert = {{ method = \"PUT\", path = \"/c/{{contact.e164}}\", id = \"$.id\" }}\n\
         activity = {{ path = \"/c/{{contact_id}}/notes\", body = '''{{\"text\": \"{{activity.text}}\"}}''' }}\n"
    );
    let (field, message) = only_problem(&crm);
    assert_eq!(field, "contact.activity");
    assert!(
        message.starts_with("must carry {activity.marker}"),
        "{message}"
    );
}

#[test]
fn reports_every_problem_at_once() {
    let text = format!(
        "{}\n[connectors.helpdesk.contact]\nupsert = {{ path = \"/c\", body = '''{{}}''' }}\n\
         activity = {{ path = \"/a\", body = '''{{\"t\": \"{{activity.marker}}\"}}''', id = \"$.id\" }}\n",
        with_ticket(&[
            r#"find = { path = "tickets", id = "$.id" }"#,
            r#"create = { method = "DELETE", path = "/tickets", body = '''{"m": "{message.marker}"}''' }"#,
            r#"append = { path = "/t/{ticket}", body = '''{"m": "{message.marker}"}''', empty_on_404 = true }"#,
            r#"note = { method = "GET", path = "/t/{ticket}", body = '''{"n": "{note}"}''' }"#,
            r#"exists = { path = "/t/{ticket}/c" }"#,
        ])
        .replace("url = \"https://api.example.com/v2\"", "url = \"ftp://x\"\ntimeout_secs = 0")
        .replace("bearer = \"t\"", "bearer = \"t\"\nusername = \"u\"")
        .replace(
            "check = { path = \"/me\" }",
            "check = { method = \"GET\", path = \"/me\", body = '''{}''' }",
        )
    );
    let fields: Vec<String> = problems(&text).into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        [
            "url",
            "timeout_secs",
            "auth",
            "auth.password",
            "check.body",
            "ticket.find.path",
            "ticket.create.method",
            "ticket.create.id",
            "ticket.append.empty_on_404",
            "ticket.exists.id",
            "ticket.note.method",
            "contact.upsert.id",
            "contact.activity.id",
        ]
    );
}

#[test]
fn needs_a_role_and_rejects_unknown_keys() {
    let (field, message) = only_problem(MINIMAL_HEAD);
    assert_eq!(field, "ticket");
    assert!(message.contains("at least one role"), "{message}");
    let typo = with_ticket(&[CREATE, APPEND, "exist = { path = \"/x\", id = \"$.id\" }"]);
    let err = parse(&typo).expect_err("rejected");
    assert!(err.contains("unknown field `exist`"), "{err}");
}

#[test]
fn warns_about_what_may_duplicate_after_a_crash() {
    let fields = |text: &str| -> Vec<String> {
        http_config(text)
            .warnings()
            .into_iter()
            .map(|w| w.field)
            .collect()
    };
    assert_eq!(
        fields(&deskly_text("https://d.example", "t", 5)),
        Vec::<String>::new()
    );
    assert_eq!(
        fields(&with_ticket(&[CREATE, APPEND])),
        ["ticket.exists", "ticket.find"]
    );
    assert_eq!(
        fields(&CONTACT_FIND.replace("$URL", "https://d.example")),
        ["contact.exists"]
    );
    let post_upsert = CONTACT_FIND
        .replace("$URL", "https://d.example")
        .lines()
        .filter(|line| !line.starts_with("find ="))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(fields(&post_upsert), ["contact.exists", "contact.upsert"]);
}

#[test]
fn builds_the_roles_the_section_configures() {
    assert!(ConnectorConfig::KINDS.contains(&"http"));
    let ticket_only = connector_from(&with_ticket(&[CREATE, APPEND]));
    assert_eq!(ticket_only.ticketing.map(|t| t.kind()), Some("http"));
    assert!(ticket_only.crm.is_none());
    let both = connector_from(&deskly_text("https://d.example", "t", 5));
    assert_eq!(both.ticketing.map(|t| t.kind()), Some("http"));
    assert_eq!(both.crm.map(|c| c.kind()), Some("http"));
    // An invalid section does not build, and says why.
    let broken = parse(&with_ticket(&[CREATE])).expect_err("append is required");
    assert!(broken.contains("missing field `append`"), "{broken}");
    let config = parse(&with_ticket(&[CREATE, APPEND]).replace("/me", "me")).expect("parses");
    let context = crate::BuildContext {
        store_dir: std::path::PathBuf::from("/nonexistent"),
        name: "helpdesk".into(),
    };
    let err = config.build(&context).expect_err("invalid");
    assert!(
        err.to_string()
            .contains("http: check.path: must start with `/`"),
        "{err}"
    );
}

#[test]
fn a_bad_url_is_reported_once_not_per_request() {
    let text = with_ticket(&[CREATE, APPEND]).replace("https://api.example.com/v2", "api example");
    let (field, message) = only_problem(&text);
    assert_eq!(field, "url");
    assert!(message.starts_with("is not a valid URL"), "{message}");
}
