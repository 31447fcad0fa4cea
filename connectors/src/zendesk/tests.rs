//! The Zendesk connector against wiremock, with requests and answers shaped like Zendesk's
//! Support API (see `/work/shared/reference/crm-and-ticketing.md` B.2 and Zendesk's API
//! reference: tickets, ticket comments, users, uploads, pagination, webhooks).

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use wiremock::matchers::{
    body_partial_json, header, method, path, path_regex, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::conformance::{self, Subject, Target};
use crate::{Attachment, Secret, TicketRef, TicketRouting};

const EMAIL: &str = "agent@acme.com";
const TOKEN: &str = "zd-api-token-0123456789";
/// The requester Zendesk gives the customer.
const REQUESTER: u64 = 9873843;
/// The id the mock gives a new ticket.
const NEW_TICKET: u64 = 35436;
const UPLOAD_TOKEN: &str = "6bk3gql82em5nmf";
const CONVERSATION: &str = "whatsapp:106540352242922:96890000001";

fn basic(email: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{email}/token:{token}"))
    )
}

fn ticket_json(server: &str, id: u64, status: &str, updated_at: &str) -> Value {
    json!({
        "url": format!("{server}/api/v2/tickets/{id}.json"),
        "id": id,
        "external_id": CONVERSATION,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": updated_at,
        "type": null,
        "subject": "WhatsApp: Aisha (+96890000001)",
        "raw_subject": "WhatsApp: Aisha (+96890000001)",
        "description": "Hello",
        "priority": null,
        "status": status,
        "requester_id": REQUESTER,
        "submitter_id": REQUESTER,
        "assignee_id": null,
        "group_id": null,
        "tags": ["whatsapp"],
        "is_public": true
    })
}

fn cursor_page(key: &str, items: Vec<Value>, after: Option<&str>) -> Value {
    json!({
        key: items,
        "meta": {"has_more": after.is_some(), "after_cursor": after, "before_cursor": null},
        "links": {"prev": null, "next": after.map(|a| format!("https://acme.zendesk.com/next?page[after]={a}"))}
    })
}

fn comment_json(id: u64, author: u64, body: &str, public: bool) -> Value {
    json!({
        "id": id, "type": "Comment", "author_id": author, "body": body,
        "html_body": format!("<div class=\"zd-comment\"><p>{body}</p></div>"),
        "plain_body": body, "public": public, "attachments": [], "audit_id": id + 1,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": null}},
        "created_at": "2026-11-01T10:00:00Z"
    })
}

fn user_json(id: u64, role: &str) -> Value {
    json!({
        "id": id, "url": format!("https://acme.zendesk.com/api/v2/users/{id}.json"),
        "name": "Aisha", "email": null, "phone": "+96890000001", "shared_phone_number": false,
        "external_id": "wa:96890000001", "role": role, "active": true,
        "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
    })
}

/// Mounts Zendesk's answers: ticket 1 is open, no ticket carries the conversation's external
/// id, no user the customer's, creates get [`REQUESTER`] and [`NEW_TICKET`].
async fn mount_zendesk(server: &MockServer, auth: &str) {
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/api/v2/users/me.json"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": {
            "id": 1900000001u64, "name": "WhatsApp Bot", "email": EMAIL, "role": "admin",
            "active": true, "verified": true
        }})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1.json"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ticket": ticket_json(&uri, 1, "open", "2026-11-02T10:00:00Z")
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets.json"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "tickets",
            vec![],
            None,
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v2/tickets/\d+/comments\.json$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "comments",
            vec![comment_json(
                100,
                REQUESTER,
                "Hello\n\n-- \nWhatsApp text message from Aisha (+96890000001), \
                 2026-11-01 10:00:00 UTC\n[wa:wamid.OLDER]",
                true,
            )],
            None,
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [], "next_page": null, "previous_page": null, "count": 0
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users/create_or_update.json"))
        .and(header("Authorization", auth))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"user": user_json(REQUESTER, "end-user")})),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/uploads.json"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"upload": {
            "token": UPLOAD_TOKEN, "expires_at": "2026-11-27T10:30:00Z",
            "attachments": [{"id": 498483, "file_name": "parcel.jpg",
                             "content_type": "image/jpeg", "size": 11}],
            "attachment": {"id": 498483, "file_name": "parcel.jpg",
                           "content_type": "image/jpeg", "size": 11}
        }})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets.json"))
        .and(header("Authorization", auth))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header(
                    "Location",
                    format!("{uri}/api/v2/tickets/{NEW_TICKET}.json"),
                )
                .set_body_json(json!({
                    "ticket": ticket_json(&uri, NEW_TICKET, "new", "2026-11-27T09:30:05Z"),
                    "audit": {"id": 7001, "ticket_id": NEW_TICKET, "events": []}
                })),
        )
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/api/v2/tickets/\d+\.json$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ticket": ticket_json(&uri, 1, "open", "2026-11-27T09:30:05Z"),
            "audit": {"id": 7002, "ticket_id": 1, "events": []}
        })))
        .mount(server)
        .await;
}

struct Zendesk;

#[async_trait::async_trait]
impl Subject for Zendesk {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_zendesk(server, &basic(EMAIL, conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        let mut config = ZendeskConfig::with_url(&target.url);
        config.email = Some(EMAIL.to_owned());
        config.api_token = Some(target.secret.clone());
        config.timeout_secs = target.timeout.as_secs().max(1);
        Ok(Box::new(ZendeskConnector::new(config)?))
    }
}

#[tokio::test]
async fn zendesk_passes_the_conformance_suite() {
    conformance::run_suite(&Zendesk).await;
}

fn config(server: &MockServer) -> ZendeskConfig {
    let mut config = ZendeskConfig::with_url(server.uri());
    config.email = Some(EMAIL.into());
    config.api_token = Some(Secret::new(TOKEN));
    config.timeout_secs = 5;
    config
}

fn connector(server: &MockServer) -> ZendeskConnector {
    ZendeskConnector::new(config(server)).expect("builds")
}

async fn zendesk() -> MockServer {
    let server = MockServer::start().await;
    mount_zendesk(&server, &basic(EMAIL, TOKEN)).await;
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

/// JSON bodies received for `verb` + `route` (exact path).
async fn received(server: &MockServer, verb: &str, route: &str) -> Vec<Value> {
    requests(server, verb, route)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn known(id: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(id.to_owned())),
        maybe_delivered,
    }
}

fn unrecorded(maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: None,
        maybe_delivered,
    }
}

fn days_ago(days: i64) -> String {
    (Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn mount_ticket(server: &MockServer, id: u64, status: &str, updated_at: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v2/tickets/{id}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ticket": ticket_json(&server.uri(), id, status, updated_at)
        })))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn mount_conversation_tickets(server: &MockServer, tickets: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets.json"))
        .and(query_param("external_id", CONVERSATION))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(cursor_page("tickets", tickets, None)),
        )
        .with_priority(1)
        .mount(server)
        .await;
}

fn comment_of(body: &Value) -> &str {
    body["ticket"]["comment"]["body"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn opens_a_ticket_as_the_customer_with_marker_and_attachment() {
    let server = zendesk().await;
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

    // The conversation's tickets were listed by external id, none found.
    let lists = requests(&server, "GET", "/api/v2/tickets.json").await;
    assert_eq!(lists.len(), 1);
    let query: Vec<(String, String)> = lists[0].url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("external_id".into(), CONVERSATION.into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("page[size]".into(), "100".into())),
        "{query:?}"
    );

    // The requester: looked up by external id, then created with name, number, role.
    let searches = requests(&server, "GET", "/api/v2/users/search.json").await;
    assert_eq!(
        searches[0]
            .url
            .query_pairs()
            .into_owned()
            .collect::<Vec<_>>(),
        [("external_id".to_owned(), "wa:96890000001".to_owned())]
    );
    assert_eq!(
        received(&server, "POST", "/api/v2/users/create_or_update.json").await,
        [
            json!({"user": {"name": "Aisha", "external_id": "wa:96890000001",
                         "role": "end-user", "phone": "+96890000001"}})
        ]
    );

    // The photo: uploaded as raw bytes with its type and name.
    let uploads = requests(&server, "POST", "/api/v2/uploads.json").await;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].body, conformance::message().attachments[0].data);
    assert_eq!(
        uploads[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/jpeg")
    );
    assert_eq!(
        uploads[0]
            .url
            .query_pairs()
            .into_owned()
            .collect::<Vec<_>>(),
        [("filename".to_owned(), "parcel.jpg".to_owned())]
    );

    // The ticket.
    let creates = received(&server, "POST", "/api/v2/tickets.json").await;
    assert_eq!(creates.len(), 1);
    let ticket = &creates[0]["ticket"];
    assert_eq!(ticket["subject"], "WhatsApp: Aisha (+96890000001)");
    assert_eq!(ticket["requester_id"], REQUESTER);
    assert_eq!(ticket["submitter_id"], REQUESTER);
    assert_eq!(ticket["external_id"], CONVERSATION);
    assert_eq!(ticket["tags"], json!(["whatsapp"]));
    assert!(ticket.get("via_followup_source_id").is_none());
    let comment = &ticket["comment"];
    assert_eq!(comment["public"], true);
    assert_eq!(comment["author_id"], REQUESTER);
    assert_eq!(comment["uploads"], json!([UPLOAD_TOKEN]));
    let body = comment_of(&creates[0]);
    assert!(body.starts_with("Where is my order #1001?"), "{body}");
    assert!(body.contains("image message from Aisha (+96890000001), 2026-11-27 09:30:00 UTC"));
    assert!(
        body.trim_end().ends_with(&marker(conformance::MESSAGE_ID)),
        "{body}"
    );

    // No comment was read: nothing may have been delivered before.
    assert!(requests(
        &server,
        "GET",
        &format!("/api/v2/tickets/{NEW_TICKET}/comments.json")
    )
    .await
    .is_empty());
}

#[tokio::test]
async fn sets_group_brand_priority_and_tags_from_the_config() {
    let server = zendesk().await;
    let mut config = config(&server);
    config.group_id = Some(360001234567);
    config.brand_id = Some(360000111);
    config.priority = Some("high".into());
    config.tags = vec!["whatsapp".into(), "vip".into()];
    ZendeskConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    let creates = received(&server, "POST", "/api/v2/tickets.json").await;
    let ticket = &creates[0]["ticket"];
    assert_eq!(ticket["group_id"], 360001234567u64);
    assert_eq!(ticket["brand_id"], 360000111u64);
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["tags"], json!(["whatsapp", "vip"]));
}

#[tokio::test]
async fn uploads_several_files_as_one_upload_and_attaches_its_token() {
    let server = zendesk().await;
    let mut message = conformance::message();
    message.attachments.push(Attachment {
        filename: "invoice 11/2026.pdf".into(),
        mime_type: "application/pdf".into(),
        data: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(),
    });
    connector(&server)
        .deliver(&conformance::conversation(), &message, &known("1", false))
        .await
        .expect("delivered");
    let uploads = requests(&server, "POST", "/api/v2/uploads.json").await;
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[1].body, message.attachments[1].data);
    assert_eq!(
        uploads[1]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    // The second file joins the first upload with its token.
    assert_eq!(
        uploads[1]
            .url
            .query_pairs()
            .into_owned()
            .collect::<Vec<_>>(),
        [
            ("filename".to_owned(), "invoice 11/2026.pdf".to_owned()),
            ("token".to_owned(), UPLOAD_TOKEN.to_owned())
        ]
    );
    let updates = received(&server, "PUT", "/api/v2/tickets/1.json").await;
    assert_eq!(
        updates[0]["ticket"]["comment"]["uploads"],
        json!([UPLOAD_TOKEN])
    );
}

#[tokio::test]
async fn reuses_the_existing_requester_without_changing_it() {
    let server = zendesk().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .and(query_param("external_id", "wa:96890000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [user_json(777, "end-user")], "next_page": null,
            "previous_page": null, "count": 1
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert!(
        received(&server, "POST", "/api/v2/users/create_or_update.json")
            .await
            .is_empty()
    );
    let creates = received(&server, "POST", "/api/v2/tickets.json").await;
    assert_eq!(creates[0]["ticket"]["requester_id"], 777);
    assert_eq!(creates[0]["ticket"]["comment"]["author_id"], 777);
}

#[tokio::test]
async fn creates_the_requester_without_the_phone_when_zendesk_refuses_it() {
    let server = zendesk().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users/create_or_update.json"))
        .and(body_partial_json(json!({"user": {"phone": "+96890000001"}})))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "error": "RecordInvalid", "description": "Record validation errors",
            "details": {"phone": [{"description": "Phone: +96890000001 is already being used by another user",
                                   "error": "DuplicateValue"}]}
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    assert!(delivered.opened_ticket);
    let users = received(&server, "POST", "/api/v2/users/create_or_update.json").await;
    assert_eq!(users.len(), 2);
    assert_eq!(
        users[1],
        json!({"user": {"name": "Aisha", "external_id": "wa:96890000001", "role": "end-user"}})
    );
}

#[tokio::test]
async fn comments_on_the_recorded_open_ticket_as_the_customer_without_lookup() {
    let server = zendesk().await;
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
    let updates = received(&server, "PUT", "/api/v2/tickets/1.json").await;
    assert_eq!(updates.len(), 1);
    let update = &updates[0]["ticket"];
    assert!(
        update.get("status").is_none(),
        "an open ticket keeps its status"
    );
    assert_eq!(update["comment"]["public"], true);
    assert_eq!(update["comment"]["author_id"], REQUESTER);
    assert!(comment_of(&updates[0]).contains(&marker(conformance::MESSAGE_ID)));
    // Ticket, upload, update: nothing else (no comment read, no user call).
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /api/v2/tickets/1.json",
            "POST /api/v2/uploads.json",
            "PUT /api/v2/tickets/1.json"
        ]
    );
}

#[tokio::test]
async fn writes_private_notes_when_customer_messages_are_private() {
    let server = zendesk().await;
    let mut config = config(&server);
    config.customer_messages = CustomerMessages::Private;
    let connector = ZendeskConnector::new(config).expect("builds");
    connector
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    connector
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect("delivered");
    let updates = received(&server, "PUT", "/api/v2/tickets/1.json").await;
    assert_eq!(updates[0]["ticket"]["comment"]["public"], false);
    assert!(updates[0]["ticket"]["comment"].get("author_id").is_none());
    let creates = received(&server, "POST", "/api/v2/tickets.json").await;
    let ticket = &creates[0]["ticket"];
    assert_eq!(ticket["comment"]["public"], false);
    assert!(ticket["comment"].get("author_id").is_none());
    assert!(ticket.get("submitter_id").is_none());
    assert_eq!(ticket["requester_id"], REQUESTER);
}

#[tokio::test]
async fn writes_nothing_when_the_marker_is_on_a_later_page_of_comments() {
    let server = zendesk().await;
    let mut first_page = Vec::new();
    for id in 0..100u64 {
        first_page.push(comment_json(
            200 + id,
            REQUESTER,
            &format!("message {id}"),
            true,
        ));
    }
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/comments.json"))
        .and(query_param_is_missing("page[after]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "comments",
            first_page,
            Some("xyz"),
        )))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1/comments.json"))
        .and(query_param("page[after]", "xyz"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "comments",
            vec![comment_json(
                400,
                REQUESTER,
                &format!(
                    "Where is my order?\n\n-- \n{}",
                    marker(conformance::MESSAGE_ID)
                ),
                true,
            )],
            None,
        )))
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
        requests(&server, "GET", "/api/v2/tickets/1/comments.json")
            .await
            .len(),
        2
    );
    assert!(received(&server, "PUT", "/api/v2/tickets/1.json")
        .await
        .is_empty());
    assert!(requests(&server, "POST", "/api/v2/uploads.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn comments_after_a_lookup_that_finds_nothing() {
    let server = zendesk().await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", true),
        )
        .await
        .expect("delivered");
    assert_eq!(
        requests(&server, "GET", "/api/v2/tickets/1/comments.json")
            .await
            .len(),
        1
    );
    assert_eq!(
        received(&server, "PUT", "/api/v2/tickets/1.json")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn finds_the_ticket_an_earlier_attempt_opened() {
    let server = zendesk().await;
    let uri = server.uri();
    mount_conversation_tickets(
        &server,
        vec![ticket_json(&uri, NEW_TICKET, "new", "2026-11-27T09:30:05Z")],
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v2/tickets/{NEW_TICKET}/comments.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "comments",
            vec![comment_json(
                500,
                REQUESTER,
                &format!(
                    "Where is my order?\n\n-- \n{}",
                    marker(conformance::MESSAGE_ID)
                ),
                true,
            )],
            None,
        )))
        .with_priority(1)
        .mount(&server)
        .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &unrecorded(true),
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
    assert!(received(&server, "POST", "/api/v2/tickets.json")
        .await
        .is_empty());
    assert!(requests(&server, "GET", "/api/v2/users/search.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn continues_the_conversations_open_ticket_the_daemon_did_not_record() {
    let server = zendesk().await;
    let uri = server.uri();
    mount_conversation_tickets(
        &server,
        vec![
            ticket_json(&uri, 7, "closed", "2026-01-01T00:00:00Z"),
            ticket_json(&uri, 9, "open", "2026-11-20T00:00:00Z"),
        ],
    )
    .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &unrecorded(false),
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("9".into()),
            opened_ticket: false,
            already_present: false
        }
    );
    let updates = received(&server, "PUT", "/api/v2/tickets/9.json").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["ticket"]["comment"]["author_id"], REQUESTER);
    assert!(received(&server, "POST", "/api/v2/tickets.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn reopens_pending_on_hold_and_recently_solved_tickets() {
    for (status, updated_at) in [
        ("pending", days_ago(3)),
        ("hold", days_ago(3)),
        ("solved", days_ago(1)),
    ] {
        let server = zendesk().await;
        mount_ticket(&server, 1, status, &updated_at).await;
        let delivered = connector(&server)
            .deliver(
                &conformance::conversation(),
                &conformance::message(),
                &known("1", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
        assert_eq!(delivered.ticket, TicketRef("1".into()), "{status}");
        assert!(!delivered.opened_ticket, "{status}");
        let updates = received(&server, "PUT", "/api/v2/tickets/1.json").await;
        assert_eq!(updates.len(), 1, "{status}");
        // One request: the comment and the status change together.
        assert_eq!(updates[0]["ticket"]["status"], "open", "{status}");
        assert!(
            comment_of(&updates[0]).contains(&marker(conformance::MESSAGE_ID)),
            "{status}"
        );
    }
}

#[tokio::test]
async fn opens_a_new_ticket_for_closed_old_solved_or_missing_tickets() {
    for (status, updated_at, follow_up) in [
        ("closed", days_ago(2), Some(5)),
        ("solved", days_ago(31), None),
        ("missing", String::new(), None),
    ] {
        let server = zendesk().await;
        if status != "missing" {
            mount_ticket(&server, 5, status, &updated_at).await;
        }
        let delivered = connector(&server)
            .deliver(
                &conformance::conversation(),
                &conformance::message(),
                &known("5", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
        assert_eq!(
            delivered.ticket,
            TicketRef(NEW_TICKET.to_string()),
            "{status}"
        );
        assert!(delivered.opened_ticket, "{status}");
        assert!(received(&server, "PUT", "/api/v2/tickets/5.json")
            .await
            .is_empty());
        let creates = received(&server, "POST", "/api/v2/tickets.json").await;
        assert_eq!(
            creates[0]["ticket"]
                .get("via_followup_source_id")
                .and_then(Value::as_u64),
            follow_up,
            "{status}"
        );
    }
}

#[tokio::test]
async fn never_reopens_with_a_zero_window() {
    let server = zendesk().await;
    mount_ticket(&server, 1, "solved", &days_ago(0)).await;
    let mut config = config(&server);
    config.reopen_within_days = 0;
    let delivered = ZendeskConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    assert!(delivered.opened_ticket);
}

#[tokio::test]
async fn retries_after_429_honouring_retry_after() {
    let server = zendesk().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets.json"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "93")
                .insert_header("X-Rate-Limit", "700")
                .insert_header("X-Rate-Limit-Remaining", "0")
                .insert_header("Content-Type", "text/plain")
                .set_body_string("Rate limited"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect_err("rate limited");
    match err {
        ConnectorError::Retryable {
            retry_after,
            reason,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(93)));
            assert!(reason.contains("Rate limited"), "{reason}");
            assert!(!reason.contains("96890000001"), "{reason}");
        }
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn fails_permanently_on_422_with_zendesks_messages() {
    let server = zendesk().await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/tickets/1.json"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"base": [{"description": "Status: closed prevents ticket update",
                                  "error": "ClosedPreventsUpdate"}]}
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "zendesk: adding the comment: HTTP 422 Unprocessable Entity: RecordInvalid: \
                     Record validation errors: Status: closed prevents ticket update"
                .into()
        }
    );
}

#[tokio::test]
async fn check_passes_for_an_agent() {
    let server = zendesk().await;
    connector(&server).check().await.expect("check passes");
}

#[tokio::test]
async fn check_fails_permanently_when_zendesk_answers_as_anonymous() {
    let server = zendesk().await;
    // What Zendesk answers `users/me` without usable credentials: 200 and an anonymous user.
    Mock::given(method("GET"))
        .and(path("/api/v2/users/me.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": {
            "id": null, "url": null, "name": "Anonymous user", "email": "invalid@example.com",
            "role": "end-user", "active": true
        }})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("fails");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("did not recognise the credentials"),
        "{err}"
    );
}

#[tokio::test]
async fn check_explains_refused_credentials_and_end_users() {
    let server = zendesk().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/me.json"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": "Couldn't authenticate you"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("fails");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(text.contains("Couldn't authenticate you"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    let server = zendesk().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/me.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"user": user_json(5, "end-user")})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("fails");
    assert!(err.to_string().contains("end user"), "{err}");
}

#[tokio::test]
async fn authenticates_with_an_oauth_token_when_configured() {
    let server = MockServer::start().await;
    mount_zendesk(&server, "Bearer oauth-token-abc").await;
    let mut config = ZendeskConfig::with_url(server.uri());
    config.oauth_token = Some(Secret::new("oauth-token-abc"));
    let connector = ZendeskConnector::new(config).expect("builds");
    connector.check().await.expect("check passes");
    assert!(!format!("{connector:?}").contains("oauth-token-abc"));
}

#[tokio::test]
async fn writes_notes_as_private_comments() {
    let server = zendesk().await;
    connector(&server)
        .note(
            &TicketRef("1".into()),
            "Reply not sent: the 24 h window is closed.",
        )
        .await
        .expect("noted");
    assert_eq!(
        received(&server, "PUT", "/api/v2/tickets/1.json").await,
        [json!({"ticket": {"comment": {
            "body": "Reply not sent: the 24 h window is closed.", "public": false
        }}})]
    );
    let err = connector(&server)
        .note(&TicketRef("RT-1".into()), "x")
        .await
        .expect_err("not a Zendesk id");
    assert!(!err.is_retryable());
}

// ---- The "agent replied" webhook -------------------------------------------------------

const SIGNING_SECRET: &str = "whsec-zendesk-test-5f0c";
const SIGNED_AT: &str = "2026-11-27T09:31:00Z";
const SIGNED_BODY: &str = r#"{"ticket_id":"35436","comment_id":"54509451282203","comment":"Your parcel ships tomorrow.","public":"true","author_id":"1900000001","requester_id":"9873843","author_role":"Agent","updated_at":"2026-11-27T09:31Z"}"#;
/// base64(HMAC-SHA256(SIGNING_SECRET, SIGNED_AT + SIGNED_BODY)), computed outside this code
/// base (Python's `hmac` module).
const SIGNATURE: &str = "vimwkSkUxAP/92ft4PUdzHctr7/v/N2mFLnUqSq2JwQ=";

fn webhook_connector() -> ZendeskConnector {
    let mut config = ZendeskConfig::new("acme");
    config.email = Some(EMAIL.into());
    config.api_token = Some(Secret::new(TOKEN));
    config.webhook_secret = Some(Secret::new(SIGNING_SECRET));
    ZendeskConnector::new(config).expect("builds")
}

fn signed_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 31, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn headers(signature: Option<&str>, timestamp: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-zendesk-webhook-id",
        HeaderValue::from_static("01F1KRFQ6BG29CNWFR60NK5FNY"),
    );
    if let Some(signature) = signature {
        headers.insert(
            "X-Zendesk-Webhook-Signature",
            HeaderValue::from_str(signature).unwrap(),
        );
    }
    if let Some(timestamp) = timestamp {
        headers.insert(
            "X-Zendesk-Webhook-Signature-Timestamp",
            HeaderValue::from_str(timestamp).unwrap(),
        );
    }
    headers
}

fn request<'a>(
    headers: &'a HeaderMap,
    body: &'a [u8],
    received_at: DateTime<Utc>,
) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        path_and_query: "/connectors/zendesk/webhook",
        headers,
        body,
        received_at,
    }
}

fn unauthorized(result: Result<(), WebhookRejection>) -> String {
    match result {
        Err(WebhookRejection::Unauthorized(why)) => why,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn accepts_a_webhook_signed_with_the_signing_secret() {
    let headers = headers(Some(SIGNATURE), Some(SIGNED_AT));
    let connector = webhook_connector();
    assert_eq!(
        connector.verify_webhook(&request(&headers, SIGNED_BODY.as_bytes(), signed_at())),
        Ok(())
    );
    // Within the tolerance either way.
    for skew in [-299, 299] {
        let at = signed_at() + chrono::Duration::seconds(skew);
        assert_eq!(
            connector.verify_webhook(&request(&headers, SIGNED_BODY.as_bytes(), at)),
            Ok(())
        );
    }
}

#[test]
fn accepts_a_freshly_signed_webhook() {
    // Signed here with ring's `hmac::sign`, the way Zendesk documents it.
    let now = Utc::now();
    let timestamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = br#"{"ticket_id":"1","comment_id":"2","comment":"Hi"}"#;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING_SECRET.as_bytes());
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    let signature =
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &message));
    let headers = headers(Some(&signature), Some(&timestamp));
    assert_eq!(
        webhook_connector().verify_webhook(&request(&headers, body, now)),
        Ok(())
    );
}

#[test]
fn returns_401_on_a_wrong_signature_or_a_changed_body() {
    let connector = webhook_connector();
    let wrong = headers(
        Some("EiqWE3SXTPQpPulBV6OSuuGziIishZNc1VwNZYqZrHU="),
        Some(SIGNED_AT),
    );
    let why = unauthorized(connector.verify_webhook(&request(
        &wrong,
        SIGNED_BODY.as_bytes(),
        signed_at(),
    )));
    assert!(why.contains("does not match"), "{why}");

    let right = headers(Some(SIGNATURE), Some(SIGNED_AT));
    let tampered = SIGNED_BODY.replace("ships tomorrow", "ships never");
    unauthorized(connector.verify_webhook(&request(&right, tampered.as_bytes(), signed_at())));

    // The same signature under another timestamp is not valid either.
    let moved = headers(Some(SIGNATURE), Some("2026-11-27T09:31:01Z"));
    unauthorized(connector.verify_webhook(&request(&moved, SIGNED_BODY.as_bytes(), signed_at())));

    let garbage = headers(Some("not base64 at all!"), Some(SIGNED_AT));
    unauthorized(connector.verify_webhook(&request(&garbage, SIGNED_BODY.as_bytes(), signed_at())));

    // Signed with another secret.
    let mut config = ZendeskConfig::new("acme");
    config.oauth_token = Some(Secret::new("o"));
    config.webhook_secret = Some(Secret::new("another-secret"));
    let other = ZendeskConnector::new(config).expect("builds");
    unauthorized(other.verify_webhook(&request(&right, SIGNED_BODY.as_bytes(), signed_at())));
}

#[test]
fn returns_401_on_a_stale_or_future_timestamp() {
    let connector = webhook_connector();
    let headers = headers(Some(SIGNATURE), Some(SIGNED_AT));
    for skew in [301, -301, 86_400] {
        let at = signed_at() + chrono::Duration::seconds(skew);
        let why =
            unauthorized(connector.verify_webhook(&request(&headers, SIGNED_BODY.as_bytes(), at)));
        assert!(why.contains("tolerance"), "{skew}: {why}");
    }
}

#[test]
fn returns_401_when_a_signature_header_is_missing() {
    let connector = webhook_connector();
    for (signature, timestamp) in [
        (None, Some(SIGNED_AT)),
        (Some(SIGNATURE), None),
        (None, None),
    ] {
        let headers = headers(signature, timestamp);
        let why = unauthorized(connector.verify_webhook(&request(
            &headers,
            SIGNED_BODY.as_bytes(),
            signed_at(),
        )));
        assert!(why.contains("missing"), "{why}");
    }
    let unreadable = headers(Some(SIGNATURE), Some("yesterday"));
    unauthorized(connector.verify_webhook(&request(
        &unreadable,
        SIGNED_BODY.as_bytes(),
        signed_at(),
    )));
}

#[test]
fn takes_no_webhooks_without_a_signing_secret() {
    let mut config = ZendeskConfig::new("acme");
    config.oauth_token = Some(Secret::new("o"));
    let connector = ZendeskConnector::new(config).expect("builds");
    let headers = headers(Some(SIGNATURE), Some(SIGNED_AT));
    assert_eq!(
        connector.verify_webhook(&request(&headers, SIGNED_BODY.as_bytes(), signed_at())),
        Err(WebhookRejection::NotSupported)
    );
}

#[test]
fn reads_the_agents_reply_out_of_the_trigger_body() {
    let replies = webhook_connector()
        .replies_from_webhook(SIGNED_BODY.as_bytes())
        .expect("readable");
    assert_eq!(
        replies,
        [AgentReply {
            id: "zendesk-comment-54509451282203".into(),
            ticket: TicketRef("35436".into()),
            text: "Your parcel ships tomorrow.".into(),
            at: Utc
                .with_ymd_and_hms(2026, 11, 27, 9, 31, 0)
                .single()
                .expect("valid"),
        }]
    );
}

#[test]
fn the_documented_trigger_body_renders_to_a_readable_reply() {
    // What Zendesk sends after replacing the placeholders of TRIGGER_BODY (JSON-escaped).
    let rendered = TRIGGER_BODY
        .replace("{{ticket.id}}", "35436")
        .replace("{{ticket.latest_comment.id}}", "54509363035291")
        .replace(
            "{{ticket.latest_comment.value}}",
            "Hi Aisha,\\n\\nit ships \\\"tomorrow\\\".",
        )
        .replace("{{ticket.latest_comment.is_public}}", "true")
        .replace("{{ticket.latest_comment.author.id}}", "1900000001")
        .replace("{{ticket.requester.id}}", "9873843")
        .replace("{{current_user.role}}", "Agent")
        .replace("{{ticket.updated_at_with_timestamp}}", "2026-11-27T09:35Z");
    let replies = webhook_connector()
        .replies_from_webhook(rendered.as_bytes())
        .expect("readable");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].id, "zendesk-comment-54509363035291");
    assert_eq!(replies[0].text, "Hi Aisha,\n\nit ships \"tomorrow\".");
    assert_eq!(
        replies[0].at,
        Utc.with_ymd_and_hms(2026, 11, 27, 9, 35, 0)
            .single()
            .expect("valid")
    );
}

#[test]
fn ignores_comments_that_are_not_an_agents_public_reply() {
    let connector = webhook_connector();
    let base: Value = serde_json::from_str(SIGNED_BODY).expect("json");
    for (key, value) in [
        ("author_role", json!("End-user")),
        ("public", json!("false")),
        // wabridge's own customer comment: authored by the requester through an agent.
        ("author_id", json!("9873843")),
        ("comment", json!(format!("Hi\n-- \n{}", marker("wamid.X")))),
        ("comment", json!("  ")),
    ] {
        let mut body = base.clone();
        body[key] = value.clone();
        let replies = connector
            .replies_from_webhook(body.to_string().as_bytes())
            .expect("readable");
        assert!(replies.is_empty(), "{key} = {value}");
    }
}

#[test]
fn rejects_unreadable_webhook_bodies_as_permanent() {
    let connector = webhook_connector();
    for body in [
        "not json",
        "[]",
        r#"{"comment_id": "1", "comment": "Hi"}"#,
        r#"{"ticket_id": "1", "comment_id": "", "comment": "Hi"}"#,
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
    let conversation = conformance::conversation();
    assert_eq!(ticket_external_id(&conversation), CONVERSATION);
    let mut contact = conversation.contact.clone();
    assert_eq!(
        user_external_id(&contact).as_deref(),
        Some("wa:96890000001")
    );
    contact.wa_id = None;
    contact.user_id = Some("US.1349120865530_27".into());
    assert_eq!(
        user_external_id(&contact).as_deref(),
        Some("wa-u:US.1349120865530_27")
    );
    assert_eq!(
        ticket_subject(&contact),
        "WhatsApp: Aisha (US.1349120865530_27)"
    );
    contact.user_id = None;
    assert_eq!(user_external_id(&contact), None);
}

#[tokio::test]
async fn refuses_a_contact_without_number_or_bsuid() {
    let server = zendesk().await;
    let mut conversation = conformance::conversation();
    conversation.contact.wa_id = None;
    let err = connector(&server)
        .deliver(
            &conversation,
            &conformance::message(),
            &DeliveryContext::default(),
        )
        .await
        .expect_err("no identity");
    assert!(!err.is_retryable());
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let err = ZendeskConnector::new(ZendeskConfig::new("acme")).expect_err("no credentials");
    assert!(!err.is_retryable());
}

#[test]
fn debug_output_shows_no_credential() {
    let mut config = ZendeskConfig::new("acme");
    config.email = Some(EMAIL.into());
    config.api_token = Some(Secret::new(TOKEN));
    config.webhook_secret = Some(Secret::new(SIGNING_SECRET));
    let connector = ZendeskConnector::new(config).expect("builds");
    let debug = format!("{connector:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains(SIGNING_SECRET), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}

// ---- Routing -------------------------------------------------------------------------------

const AGENT_EMAIL: &str = "Lena.Agent@acme.com";
const AGENT_ID: u64 = 1900000042;
const BILLING_GROUP: u64 = 360001234567;

/// Ticket 1 with the fields routing reads.
fn routed_ticket(
    server: &str,
    status: &str,
    group: Option<u64>,
    assignee: Option<u64>,
    priority: Option<&str>,
    tags: &[&str],
) -> Value {
    let mut ticket = ticket_json(server, 1, status, "2026-11-27T09:00:00Z");
    ticket["group_id"] = json!(group);
    ticket["assignee_id"] = json!(assignee);
    ticket["priority"] = json!(priority);
    ticket["tags"] = json!(tags);
    json!({ "ticket": ticket })
}

/// Ticket 1 answers `before` once, then `after`.
async fn mount_routed(server: &MockServer, before: Value, after: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets/1.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(after))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Groups on two pages (Billing on the second); the agent found by e-mail.
async fn mount_groups_and_agent(server: &MockServer) {
    let group = |id: u64, name: &str, deleted: bool| {
        json!({"id": id, "name": name, "deleted": deleted, "default": false,
               "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
    };
    Mock::given(method("GET"))
        .and(path("/api/v2/groups.json"))
        .and(query_param_is_missing("page[after]"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "groups",
            vec![
                group(360000000001, "Support", false),
                group(360000000002, "Old Billing", true),
            ],
            Some("g2"),
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/groups.json"))
        .and(query_param("page[after]", "g2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
            "groups",
            vec![group(BILLING_GROUP, "Billing", false)],
            None,
        )))
        .mount(server)
        .await;
    let mut agent = user_json(AGENT_ID, "agent");
    agent["email"] = json!("lena.agent@acme.com");
    let mut namesake = user_json(AGENT_ID + 1, "end-user");
    namesake["email"] = json!("lena.agent@acme.com.example");
    Mock::given(method("GET"))
        .and(path("/api/v2/users/search.json"))
        .and(query_param("query", AGENT_EMAIL))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [namesake, agent], "next_page": null, "previous_page": null, "count": 2
        })))
        .with_priority(1)
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
async fn routes_group_assignee_priority_and_new_tags_in_one_put() {
    let server = zendesk().await;
    mount_groups_and_agent(&server).await;
    let uri = server.uri();
    mount_routed(
        &server,
        routed_ticket(&uri, "open", None, None, None, &["whatsapp", "vip"]),
        routed_ticket(
            &uri,
            "open",
            Some(BILLING_GROUP),
            Some(AGENT_ID),
            Some("high"),
            &["whatsapp", "vip", "late_delivery"],
        ),
    )
    .await;
    let connector = connector(&server);
    let routing = route_to(
        "billing",
        AGENT_EMAIL,
        "High",
        &["VIP", "Late  Delivery", "late delivery"],
    );
    for _ in 0..2 {
        connector
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect("routed");
    }
    // The second route finds everything in place and writes nothing.
    assert_eq!(
        received(&server, "PUT", "/api/v2/tickets/1.json").await,
        [json!({"ticket": {
            "group_id": BILLING_GROUP, "assignee_id": AGENT_ID, "priority": "high",
            "additional_tags": ["late_delivery"]
        }})]
    );
    // Names resolved once.
    assert_eq!(
        requests(&server, "GET", "/api/v2/groups.json").await.len(),
        2
    );
    assert_eq!(
        requests(&server, "GET", "/api/v2/users/search.json")
            .await
            .len(),
        1
    );
    // Nothing to say without a hand-over: no comment read.
    assert!(requests(&server, "GET", "/api/v2/tickets/1/comments.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn takes_numeric_group_and_assignee_ids_without_lookups() {
    let server = zendesk().await;
    let uri = server.uri();
    let ticket = routed_ticket(&uri, "open", None, None, Some("low"), &["whatsapp"]);
    mount_routed(&server, ticket.clone(), ticket).await;
    connector(&server)
        .route(
            &TicketRef("1".into()),
            &route_to("360009999999", "1900000077", "", &[]),
        )
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/api/v2/tickets/1.json").await,
        [json!({"ticket": {"group_id": 360009999999u64, "assignee_id": 1900000077u64}})]
    );
    assert!(requests(&server, "GET", "/api/v2/groups.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn hands_over_with_status_open_priority_high_and_a_private_note_in_the_same_put() {
    let server = zendesk().await;
    let uri = server.uri();
    mount_routed(
        &server,
        routed_ticket(&uri, "pending", None, None, Some("normal"), &["whatsapp"]),
        routed_ticket(&uri, "open", None, None, Some("high"), &["whatsapp"]),
    )
    .await;
    let routing = TicketRouting {
        handover: Some("wants a refund".into()),
        ..TicketRouting::default()
    };
    connector(&server)
        .route(&TicketRef("1".into()), &routing)
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/api/v2/tickets/1.json").await,
        [json!({"ticket": {
            "status": "open", "priority": "high",
            "comment": {"body": "wabridge: the customer asked for a person: wants a refund\n\
                                 [wa:routing]", "public": false}
        }})]
    );
    // Reopening is news: the comments were not read.
    assert!(requests(&server, "GET", "/api/v2/tickets/1/comments.json")
        .await
        .is_empty());
}

#[tokio::test]
async fn notes_a_hand_over_on_an_open_ticket_once_per_reason() {
    for (reason, expected) in [("wants a refund", false), ("wants an invoice", true)] {
        let server = zendesk().await;
        let uri = server.uri();
        let ticket = routed_ticket(&uri, "open", None, None, Some("urgent"), &["whatsapp"]);
        mount_routed(&server, ticket.clone(), ticket).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/tickets/1/comments.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(cursor_page(
                "comments",
                vec![
                    comment_json(
                        200,
                        1900000001,
                        "wabridge: the customer asked for a person: wants a refund\n[wa:routing]",
                        false,
                    ),
                    comment_json(201, REQUESTER, "Hello?\n\n-- \n[wa:wamid.X]", true),
                ],
                None,
            )))
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
        let puts = received(&server, "PUT", "/api/v2/tickets/1.json").await;
        if expected {
            // Urgent stays urgent; open stays open: only the note.
            assert_eq!(
                puts,
                [json!({"ticket": {"comment": {
                    "body": "wabridge: the customer asked for a person: wants an invoice\n\
                             [wa:routing]",
                    "public": false
                }}})]
            );
        } else {
            assert!(puts.is_empty(), "{puts:?}");
        }
    }
}

#[tokio::test]
async fn refuses_unknown_groups_agents_and_priorities_before_writing() {
    for (routing, expected) in [
        (
            route_to("Bilvarbling", "", "", &[]),
            "Zendesk has no group named `Bilvarbling`",
        ),
        (
            route_to("Old Billing", "", "", &[]),
            "Zendesk has no group named `Old Billing`",
        ),
        (
            route_to("", "nobody@acme.com", "", &[]),
            "no agent with the e-mail address `nobody@acme.com`",
        ),
        (
            route_to("", "Lena", "", &[]),
            "neither an agent's e-mail address nor a numeric user id",
        ),
    ] {
        let server = zendesk().await;
        mount_groups_and_agent(&server).await;
        let err = connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("http"), "{text}");
        assert!(received(&server, "PUT", "/api/v2/tickets/1.json")
            .await
            .is_empty());
    }
}

#[tokio::test]
async fn fails_permanently_when_zendesk_refuses_the_assignee() {
    let server = zendesk().await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/tickets/1.json"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "error": "RecordInvalid", "description": "Record validation errors",
            "details": {"assignee": [{"description": "Assignee is not a member of the group",
                                      "error": "InvalidValue"}]}
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .route(
            &TicketRef("1".into()),
            &route_to("360000000001", "1900000077", "", &[]),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "zendesk: routing: updating the ticket: HTTP 422 Unprocessable Entity: \
                     RecordInvalid: Record validation errors: Assignee is not a member of the \
                     group"
                .into()
        }
    );
}

#[tokio::test]
async fn tells_solved_closed_and_missing_tickets_apart() {
    for (status, expected) in [
        ("new", false),
        ("open", false),
        ("pending", false),
        ("hold", false),
        ("solved", true),
        ("closed", true),
        ("missing", true),
    ] {
        let server = zendesk().await;
        if status == "missing" {
            Mock::given(method("GET"))
                .and(path("/api/v2/tickets/1.json"))
                .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                    "error": "RecordNotFound", "description": "Not found"
                })))
                .with_priority(1)
                .mount(&server)
                .await;
        } else {
            mount_ticket(&server, 1, status, "2026-11-27T09:00:00Z").await;
        }
        let resolved = connector(&server)
            .is_resolved(&TicketRef("1".into()))
            .await
            .expect("read");
        assert_eq!(resolved, expected, "{status}");
    }
}

#[test]
fn writes_tags_and_notes_as_zendesk_keeps_them() {
    assert_eq!(zendesk_tag("  Late \t Delivery "), "late_delivery");
    assert_eq!(
        handover_note(" "),
        "wabridge: the customer asked for a person.\n[wa:routing]"
    );
}
