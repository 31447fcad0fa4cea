//! The RT connector against wiremock, with answers shaped like RT 5.0.3's REST2 (see
//! `/work/shared/reference/crm-and-ticketing.md` A.3, re-checked on a real RT 5.0.3).

use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::conformance::{self, Subject, Target};
use crate::{Secret, TicketRef};

const TOKEN: &str = "1-14-0123456789abcdef";

fn ticket_json(server: &str, id: u64, status: &str, resolved: &str) -> Value {
    json!({
        "id": id,
        "Subject": "WhatsApp: Aisha (+96890000001)",
        "Status": status,
        "Queue": {"type": "queue", "id": "1", "_url": format!("{server}/REST/2.0/queue/1")},
        "Requestor": [{"type": "user", "id": "wa+96890000001@whatsapp.invalid",
                        "_url": format!("{server}/REST/2.0/user/wa+96890000001@whatsapp.invalid")}],
        "Created": "2026-11-01T10:00:00Z",
        "Resolved": resolved,
        "LastUpdated": "2026-11-02T10:00:00Z",
        "EffectiveId": {"type": "ticket", "id": id.to_string(), "_url": format!("{server}/REST/2.0/ticket/{id}")},
    })
}

fn collection(items: Vec<Value>) -> Value {
    let total = items.len();
    json!({"count": total, "total": total, "page": 1, "per_page": 20,
           "pages": if total == 0 { 0 } else { 1 }, "items": items})
}

/// Mounts RT's answers: ticket 1 is open, nothing found by searches, creates get id 2.
async fn mount_rt(server: &MockServer, auth: &str) {
    let uri = server.uri();
    Mock::given(method("POST"))
        .and(path("/REST/2.0/ticket"))
        .and(header("Authorization", auth))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", "/REST/2.0/ticket/2")
                .set_body_json(json!({"type": "ticket", "id": "2",
                                      "_url": format!("{uri}/REST/2.0/ticket/2")})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/ticket/1"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(ticket_json(
            &uri,
            1,
            "open",
            "1970-01-01T00:00:00Z",
        )))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/REST/2\.0/ticket/\d+/comment$"))
        .and(header("Authorization", auth))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", "/REST/2.0/transaction/35")
                .set_body_json(json!(["Comments added"])),
        )
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/REST/2\.0/ticket/\d+$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            "Ticket 1: Status changed from 'resolved' to 'open'"
        ])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/REST/2\.0/ticket/\d+/attachments$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(vec![])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/tickets"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(collection(vec![])))
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/REST/2\.0/user/.+$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            "User wa+96890000001@whatsapp.invalid: RealName changed from (no value) to 'Aisha'"
        ])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/queue/General"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "Name": "General", "Disabled": "0",
            "_url": format!("{uri}/REST/2.0/queue/1")
        })))
        .mount(server)
        .await;
}

struct Rt;

#[async_trait::async_trait]
impl Subject for Rt {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_rt(server, &format!("token {}", conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        let mut config = RtConfig::new(&target.url, "General");
        config.token = Some(target.secret.clone());
        config.timeout_secs = target.timeout.as_secs().max(1);
        Ok(Box::new(RtConnector::new(config)?))
    }
}

#[tokio::test]
async fn rt_passes_the_conformance_suite() {
    conformance::run_suite(&Rt).await;
}

fn connector(server: &MockServer) -> RtConnector {
    let mut config = RtConfig::new(server.uri(), "General");
    config.token = Some(Secret::new(TOKEN));
    config.timeout_secs = 5;
    RtConnector::new(config).expect("builds")
}

async fn rt() -> MockServer {
    let server = MockServer::start().await;
    mount_rt(&server, &format!("token {TOKEN}")).await;
    server
}

/// Requests received for `method` + `path` (exact path).
async fn received(server: &MockServer, verb: &str, route: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn known(id: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(id.to_owned())),
        maybe_delivered,
    }
}

async fn mount_ticket(server: &MockServer, id: u64, status: &str, resolved: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/REST/2.0/ticket/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(ticket_json(
            &server.uri(),
            id,
            status,
            resolved,
        )))
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn opens_a_ticket_with_name_number_requestor_marker_and_attachment() {
    let server = rt().await;
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
            ticket: TicketRef("2".into()),
            opened_ticket: true,
            already_present: false
        }
    );
    let creates = received(&server, "POST", "/REST/2.0/ticket").await;
    assert_eq!(creates.len(), 1);
    let body = &creates[0];
    assert_eq!(body["Queue"], "General");
    assert_eq!(body["Subject"], "WhatsApp: Aisha (+96890000001)");
    assert_eq!(body["Requestor"], "wa+96890000001@whatsapp.invalid");
    assert_eq!(body["ContentType"], "text/plain");
    let content = body["Content"].as_str().unwrap_or_default();
    assert!(content.starts_with("Where is my order #1001?"), "{content}");
    assert!(content.contains("2026-11-27 09:30:00 UTC"), "{content}");
    assert!(
        content
            .trim_end()
            .ends_with(&marker(conformance::MESSAGE_ID)),
        "{content}"
    );
    assert_eq!(
        body["Attachments"],
        json!([{"FileName": "parcel.jpg", "FileType": "image/jpeg",
                "FileContent": "/9j/4AAQSkZJRgA="}])
    );
    // No lookups without maybe_delivered; the requestor gets name and number.
    assert!(received(&server, "GET", "/REST/2.0/tickets")
        .await
        .is_empty());
    let users = received(
        &server,
        "PUT",
        "/REST/2.0/user/wa+96890000001@whatsapp.invalid",
    )
    .await;
    assert_eq!(
        users,
        [json!({"RealName": "Aisha", "MobilePhone": "+96890000001"})]
    );
}

#[tokio::test]
async fn comments_on_the_recorded_open_ticket_without_any_lookup() {
    let server = rt().await;
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
    let comments = received(&server, "POST", "/REST/2.0/ticket/1/comment").await;
    assert_eq!(comments.len(), 1);
    assert!(comments[0]["Content"]
        .as_str()
        .unwrap_or_default()
        .contains(&marker(conformance::MESSAGE_ID)));
    assert_eq!(comments[0]["Attachments"][0]["FileName"], "parcel.jpg");
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        2
    );
}

#[tokio::test]
async fn writes_nothing_when_the_marker_is_already_in_the_ticket() {
    let server = rt().await;
    Mock::given(method("POST"))
        .and(path("/REST/2.0/ticket/1/attachments"))
        .and(body_partial_json(json!([
            {"field": "ContentType", "value": "text/plain"},
            {"field": "Content", "operator": "LIKE",
             "value": marker(conformance::MESSAGE_ID)}
        ])))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(collection(vec![json!({
                "type": "attachment", "id": "8", "TransactionId": "35",
                "_url": format!("{}/REST/2.0/attachment/8", server.uri())
            })])),
        )
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
    assert!(received(&server, "POST", "/REST/2.0/ticket/1/comment")
        .await
        .is_empty());
}

#[tokio::test]
async fn reopens_a_ticket_resolved_within_the_window() {
    let server = rt().await;
    let yesterday = (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    mount_ticket(&server, 1, "resolved", &yesterday).await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    assert_eq!(delivered.ticket, TicketRef("1".into()));
    assert!(!delivered.opened_ticket);
    assert_eq!(
        received(&server, "PUT", "/REST/2.0/ticket/1").await,
        [json!({"Status": "open"})]
    );
    assert_eq!(
        received(&server, "POST", "/REST/2.0/ticket/1/comment")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn opens_a_new_ticket_for_old_rejected_deleted_or_missing_tickets() {
    for (status, resolved) in [
        ("resolved", "2020-01-01T00:00:00Z"),
        ("rejected", "1970-01-01T00:00:00Z"),
        ("deleted", "1970-01-01T00:00:00Z"),
        ("missing", ""),
    ] {
        let server = rt().await;
        let id = 5;
        if status != "missing" {
            mount_ticket(&server, id, status, resolved).await;
        }
        let delivered = connector(&server)
            .deliver(
                &conformance::conversation(),
                &conformance::message(),
                &known("5", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
        assert_eq!(delivered.ticket, TicketRef("2".into()), "{status}");
        assert!(delivered.opened_ticket, "{status}");
        assert!(received(&server, "PUT", "/REST/2.0/ticket/5")
            .await
            .is_empty());
    }
}

#[tokio::test]
async fn finds_the_ticket_an_earlier_attempt_opened() {
    let server = rt().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/REST/2.0/tickets"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(collection(vec![json!({
                "type": "ticket", "id": "7", "Status": "new",
                "_url": format!("{uri}/REST/2.0/ticket/7")
            })])),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/REST/2.0/ticket/7/attachments"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(collection(vec![json!({
                "type": "attachment", "id": "2", "TransactionId": "33",
                "_url": format!("{uri}/REST/2.0/attachment/2")
            })])),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/transaction/33"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 33, "Type": "Create", "ObjectType": "RT::Ticket"
        })))
        .mount(&server)
        .await;
    let context = DeliveryContext {
        ticket: None,
        maybe_delivered: true,
    };
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &context,
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("7".into()),
            opened_ticket: true,
            already_present: true
        }
    );
    assert!(received(&server, "POST", "/REST/2.0/ticket")
        .await
        .is_empty());
    let searches = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/REST/2.0/tickets")
        .map(|r| r.url.query_pairs().into_owned().collect::<Vec<_>>())
        .collect::<Vec<_>>();
    assert!(searches[0].contains(&(
        "query".into(),
        "Queue = 'General' AND Requestor.EmailAddress = 'wa+96890000001@whatsapp.invalid' \
         AND Status = '__Active__'"
            .into()
    )));
}

#[tokio::test]
async fn continues_an_open_ticket_the_daemon_did_not_record() {
    let server = rt().await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/tickets"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(collection(vec![json!({
                "type": "ticket", "id": "7", "Status": "open",
                "_url": format!("{}/REST/2.0/ticket/7", server.uri())
            })])),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let context = DeliveryContext {
        ticket: None,
        maybe_delivered: true,
    };
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &context,
        )
        .await
        .expect("delivered");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef("7".into()),
            opened_ticket: false,
            already_present: false
        }
    );
    assert_eq!(
        received(&server, "POST", "/REST/2.0/ticket/7/comment")
            .await
            .len(),
        1
    );
    assert!(received(&server, "POST", "/REST/2.0/ticket")
        .await
        .is_empty());
}

#[tokio::test]
async fn authenticates_with_basic_auth_when_configured() {
    let server = MockServer::start().await;
    // root:password
    mount_rt(&server, "Basic cm9vdDpwYXNzd29yZA==").await;
    let mut config = RtConfig::new(server.uri(), "General");
    config.username = Some("root".into());
    config.password = Some(Secret::new("password"));
    let connector = RtConnector::new(config).expect("builds");
    connector.check().await.expect("check passes");
    assert!(!format!("{connector:?}").contains("password\""));
    assert!(!format!("{connector:?}").contains("cm9vdDpwYXNzd29yZA"));
}

#[tokio::test]
async fn check_fails_permanently_on_a_bad_token() {
    let server = rt().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("fails");
    assert!(!err.is_retryable(), "{err}");
}

#[test]
fn builds_requestor_addresses_from_number_or_bsuid() {
    let mut contact = conformance::conversation().contact;
    assert_eq!(
        requestor_email(&contact, "whatsapp.invalid").as_deref(),
        Some("wa+96890000001@whatsapp.invalid")
    );
    contact.wa_id = None;
    contact.user_id = Some("US.1349120865530_27/41918".into());
    assert_eq!(
        requestor_email(&contact, "whatsapp.invalid").as_deref(),
        Some("wa-US.1349120865530.27.41918@whatsapp.invalid")
    );
    assert_eq!(
        ticket_subject(&contact),
        "WhatsApp: Aisha (US.1349120865530_27/41918)"
    );
    contact.user_id = None;
    assert_eq!(requestor_email(&contact, "whatsapp.invalid"), None);
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let config = RtConfig::new("http://127.0.0.1:8181", "General");
    let err = RtConnector::new(config).expect_err("no credentials");
    assert!(!err.is_retryable());
}

#[test]
fn debug_output_shows_no_credential() {
    let mut config = RtConfig::new("http://127.0.0.1:8181", "General");
    config.token = Some(Secret::new(TOKEN));
    let connector = RtConnector::new(config).expect("builds");
    let debug = format!("{connector:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}
