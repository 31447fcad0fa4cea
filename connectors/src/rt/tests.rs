//! The RT connector against wiremock, with answers shaped like RT 5.0.3's REST2 (see
//! `/work/shared/reference/crm-and-ticketing.md` A.3, re-checked on a real RT 5.0.3).

use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::conformance::{self, Subject, Target};
use crate::{Secret, TicketRef, TicketRouting};

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

// ---- Routing -------------------------------------------------------------------------------

/// A ticket as RT 5.0.3 shows it, with the fields routing reads.
fn routed_ticket(
    server: &str,
    status: &str,
    queue: &str,
    owner: &str,
    priority: &str,
    resolved: &str,
    custom_fields: Value,
) -> Value {
    let mut ticket = ticket_json(server, 1, status, resolved);
    ticket["Queue"] = json!({"type": "queue", "id": queue,
                             "_url": format!("{server}/REST/2.0/queue/{queue}")});
    ticket["Owner"] = json!({"type": "user", "id": owner,
                             "_url": format!("{server}/REST/2.0/user/{owner}")});
    ticket["Priority"] = json!(priority);
    ticket["InitialPriority"] = json!("0");
    ticket["FinalPriority"] = json!("0");
    ticket["CustomFields"] = custom_fields;
    ticket
}

/// Ticket 1 answers `before` once, then `after`.
async fn mount_states(server: &MockServer, before: Value, after: Value) {
    Mock::given(method("GET"))
        .and(path("/REST/2.0/ticket/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/ticket/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(after))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Queue `Billing` is id 3; user `alice` (id 22) exists.
async fn mount_queue_and_user(server: &MockServer) {
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/REST/2.0/queue/Billing"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 3, "Name": "Billing", "Disabled": "0", "Lifecycle": "default",
            "_url": format!("{uri}/REST/2.0/queue/3")
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/user/22"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 22, "Name": "alice", "EmailAddress": "alice@example.com", "Privileged": 1,
            "Disabled": "0"
        })))
        .mount(server)
        .await;
    for unknown in ["/REST/2.0/queue/Nope", "/REST/2.0/user/nobody-here"] {
        Mock::given(method("GET"))
            .and(path(unknown))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
            .mount(server)
            .await;
    }
}

/// The newest routing comment RT finds: `content` written at `created`.
async fn mount_last_routing_comment(server: &MockServer, content: &str, created: &str) {
    Mock::given(method("POST"))
        .and(path("/REST/2.0/ticket/1/attachments"))
        .and(body_partial_json(json!([
            {"field": "ContentType", "value": "text/plain"},
            {"field": "Content", "operator": "LIKE", "value": ROUTING_MARKER}
        ])))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(collection(vec![json!({
                "type": "attachment", "id": "4719", "TransactionId": "6227",
                "Content": content, "Created": created,
                "_url": format!("{}/REST/2.0/attachment/4719", server.uri())
            })])),
        )
        .with_priority(1)
        .mount(server)
        .await;
}

fn routing(department: &str, assignee: &str, priority: &str) -> TicketRouting {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    TicketRouting {
        department: some(department),
        assignee: some(assignee),
        priority: crate::Priority::parse(priority),
        tags: Vec::new(),
        handover: None,
    }
}

const NEVER: &str = "1970-01-01T00:00:00Z";

#[tokio::test]
async fn routes_queue_then_owner_and_priority_and_checks_what_took() {
    let server = rt().await;
    mount_queue_and_user(&server).await;
    let uri = server.uri();
    mount_states(
        &server,
        routed_ticket(&uri, "open", "1", "Nobody", "0", NEVER, json!([])),
        routed_ticket(&uri, "open", "3", "alice", "100", NEVER, json!([])),
    )
    .await;
    connector(&server)
        .route(&TicketRef("1".into()), &routing("Billing", "22", "HIGH"))
        .await
        .expect("routed");
    // The owner after the queue move: RT applies fields alphabetically (Owner < Queue).
    assert_eq!(
        received(&server, "PUT", "/REST/2.0/ticket/1").await,
        [
            json!({"Queue": "3", "Priority": 100}),
            json!({"Owner": "alice"})
        ]
    );
    assert_eq!(
        received(&server, "GET", "/REST/2.0/ticket/1").await.len(),
        2
    );
    // Nothing to say: no comment, no comment lookup.
    assert!(received(&server, "POST", "/REST/2.0/ticket/1/comment")
        .await
        .is_empty());
    assert!(received(&server, "POST", "/REST/2.0/ticket/1/attachments")
        .await
        .is_empty());
}

#[tokio::test]
async fn sets_the_owner_in_the_same_put_when_the_queue_stays() {
    let server = rt().await;
    mount_queue_and_user(&server).await;
    let uri = server.uri();
    mount_states(
        &server,
        routed_ticket(&uri, "new", "3", "Nobody", "50", NEVER, json!([])),
        routed_ticket(&uri, "new", "3", "alice", "0", NEVER, json!([])),
    )
    .await;
    connector(&server)
        .route(&TicketRef("1".into()), &routing("Billing", "22", "low"))
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/REST/2.0/ticket/1").await,
        [json!({"Priority": 0, "Owner": "alice"})]
    );
}

#[tokio::test]
async fn writes_nothing_when_the_ticket_is_already_routed_and_caches_lookups() {
    let server = rt().await;
    mount_queue_and_user(&server).await;
    let uri = server.uri();
    let routed = routed_ticket(&uri, "open", "3", "alice", "50", NEVER, json!([]));
    mount_states(&server, routed.clone(), routed).await;
    let connector = connector(&server);
    for assignee in ["alice", "22", "22"] {
        connector
            .route(
                &TicketRef("1".into()),
                &routing("Billing", assignee, "normal"),
            )
            .await
            .expect("routed");
    }
    assert!(received(&server, "PUT", "/REST/2.0/ticket/1")
        .await
        .is_empty());
    assert!(received(&server, "POST", "/REST/2.0/ticket/1/comment")
        .await
        .is_empty());
    // One queue lookup for three routes; the user by id once, by matching name never.
    assert_eq!(
        received(&server, "GET", "/REST/2.0/queue/Billing")
            .await
            .len(),
        1
    );
    assert_eq!(received(&server, "GET", "/REST/2.0/user/22").await.len(), 1);
    assert!(received(&server, "GET", "/REST/2.0/user/alice")
        .await
        .is_empty());
}

#[tokio::test]
async fn hands_over_with_status_open_high_priority_and_one_comment() {
    let server = rt().await;
    let uri = server.uri();
    mount_states(
        &server,
        routed_ticket(&uri, "new", "1", "Nobody", "0", NEVER, json!([])),
        routed_ticket(&uri, "open", "1", "Nobody", "100", NEVER, json!([])),
    )
    .await;
    let handover = TicketRouting {
        tags: vec![" refund ".into(), "vip".into(), "refund".into(), "".into()],
        handover: Some("wants to talk about a refund".into()),
        ..TicketRouting::default()
    };
    connector(&server)
        .route(&TicketRef("1".into()), &handover)
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/REST/2.0/ticket/1").await,
        [json!({"Priority": 100, "Status": "open"})]
    );
    // No tags custom field: the tags are in the comment.
    assert_eq!(
        received(&server, "POST", "/REST/2.0/ticket/1/comment").await,
        [json!({
            "Content": "wabridge: the customer asked for a person: wants to talk about a refund\n\
                        wabridge: tags: refund, vip\n[wa:routing]",
            "ContentType": "text/plain"
        })]
    );
}

#[tokio::test]
async fn keeps_a_priority_above_high_and_an_open_status_on_hand_over() {
    let server = rt().await;
    let uri = server.uri();
    let mut config = RtConfig::new(server.uri(), "General");
    config.token = Some(Secret::new(TOKEN));
    config.priorities = RtPriorities {
        low: 10,
        normal: 50,
        high: 80,
        urgent: 120,
    };
    let connector = RtConnector::new(config).expect("builds");
    let ticket = routed_ticket(&uri, "open", "1", "Nobody", "120", NEVER, json!([]));
    mount_states(&server, ticket.clone(), ticket).await;
    let handover = TicketRouting {
        handover: Some(String::new()),
        ..TicketRouting::default()
    };
    connector
        .route(&TicketRef("1".into()), &handover)
        .await
        .expect("routed");
    assert!(received(&server, "PUT", "/REST/2.0/ticket/1")
        .await
        .is_empty());
    assert_eq!(
        received(&server, "POST", "/REST/2.0/ticket/1/comment").await[0]["Content"],
        "wabridge: the customer asked for a person.\n[wa:routing]"
    );
}

#[tokio::test]
async fn does_not_repeat_the_hand_over_comment_until_the_ticket_was_resolved_again() {
    let text = "wabridge: the customer asked for a person: refund\n[wa:routing]";
    let handover = TicketRouting {
        handover: Some("refund".into()),
        ..TicketRouting::default()
    };
    // (ticket last resolved, comment written, reason) → comment expected
    for (resolved, created, reason, expected) in [
        (NEVER, "2026-11-27T07:19:35Z", "refund", 0),
        ("2026-11-20T00:00:00Z", "2026-11-27T07:19:35Z", "refund", 0),
        // Resolved after the last hand-over: a new hand-over is news.
        ("2026-11-27T08:00:00Z", "2026-11-27T07:19:35Z", "refund", 1),
        // Another reason.
        (NEVER, "2026-11-27T07:19:35Z", "invoice", 1),
    ] {
        let server = rt().await;
        let uri = server.uri();
        let ticket = routed_ticket(&uri, "open", "1", "Nobody", "100", resolved, json!([]));
        mount_states(&server, ticket.clone(), ticket).await;
        // RT returns the text part as stored (CRLF line ends survive the comparison).
        mount_last_routing_comment(&server, &text.replace('\n', "\r\n"), created).await;
        let routing = TicketRouting {
            handover: Some(reason.into()),
            ..handover.clone()
        };
        connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect("routed");
        assert!(received(&server, "PUT", "/REST/2.0/ticket/1")
            .await
            .is_empty());
        assert_eq!(
            received(&server, "POST", "/REST/2.0/ticket/1/comment")
                .await
                .len(),
            expected,
            "{resolved} {created} {reason}"
        );
    }
}

#[tokio::test]
async fn adds_tags_to_the_configured_custom_field_keeping_its_values() {
    let server = rt().await;
    let uri = server.uri();
    let cf = |values: Value| {
        json!([{"type": "customfield", "id": "7", "name": "Tags", "values": values,
                "_url": format!("{uri}/REST/2.0/customfield/7")}])
    };
    mount_states(
        &server,
        routed_ticket(&uri, "open", "1", "Nobody", "0", NEVER, cf(json!(["vip"]))),
        routed_ticket(
            &uri,
            "open",
            "1",
            "Nobody",
            "0",
            NEVER,
            cf(json!(["vip", "billing"])),
        ),
    )
    .await;
    let mut config = RtConfig::new(server.uri(), "General");
    config.token = Some(Secret::new(TOKEN));
    config.tags_custom_field = Some("tags".into());
    let routing = TicketRouting {
        tags: vec!["vip".into(), "billing".into()],
        ..TicketRouting::default()
    };
    RtConnector::new(config)
        .expect("builds")
        .route(&TicketRef("1".into()), &routing)
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/REST/2.0/ticket/1").await,
        [json!({"CustomFields": {"tags": ["vip", "billing"]}})]
    );
    assert!(received(&server, "POST", "/REST/2.0/ticket/1/comment")
        .await
        .is_empty());
}

#[tokio::test]
async fn notes_tags_once_without_a_custom_field() {
    let server = rt().await;
    let uri = server.uri();
    let ticket = routed_ticket(&uri, "open", "1", "Nobody", "0", NEVER, json!([]));
    mount_states(&server, ticket.clone(), ticket).await;
    mount_last_routing_comment(
        &server,
        "wabridge: tags: vip\n[wa:routing]",
        "2026-11-27T07:19:35Z",
    )
    .await;
    let routing = TicketRouting {
        tags: vec!["vip".into()],
        ..TicketRouting::default()
    };
    connector(&server)
        .route(&TicketRef("1".into()), &routing)
        .await
        .expect("routed");
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .all(|r| r.method.as_str() == "GET" || r.url.path().ends_with("/attachments")));
}

#[tokio::test]
async fn refuses_an_unknown_queue_or_user_before_writing_anything() {
    for (department, assignee, expected) in [
        ("Nope", "", "RT has no queue `Nope`"),
        ("", "nobody-here", "RT has no user `nobody-here`"),
    ] {
        let server = rt().await;
        mount_queue_and_user(&server).await;
        let err = connector(&server)
            .route(
                &TicketRef("1".into()),
                &routing(department, assignee, "high"),
            )
            .await
            .expect_err("unknown");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("http"), "{text}");
        assert!(server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .all(|r| r.method.as_str() == "GET"));
    }
}

#[tokio::test]
async fn fails_permanently_with_rts_words_when_a_change_did_not_take() {
    let server = rt().await;
    mount_queue_and_user(&server).await;
    let uri = server.uri();
    let unchanged = routed_ticket(&uri, "open", "1", "Nobody", "0", NEVER, json!([]));
    mount_states(&server, unchanged.clone(), unchanged).await;
    // RT 5.0.3 answers a refused change with 200 and a message.
    Mock::given(method("PUT"))
        .and(path("/REST/2.0/ticket/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            "Ticket 1: That user may not own tickets in that queue"
        ])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .route(&TicketRef("1".into()), &routing("", "22", ""))
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "rt: routing: RT did not apply the owner to ticket 1 (RT said: Ticket 1: \
                     That user may not own tickets in that queue)"
                .into()
        }
    );
}

#[tokio::test]
async fn refuses_a_foreign_ticket_reference() {
    let server = rt().await;
    let err = connector(&server)
        .route(&TicketRef("ZD-1".into()), &routing("", "", "high"))
        .await
        .expect_err("not an RT id");
    assert!(!err.is_retryable());
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn routing_retries_when_rt_is_unavailable() {
    let server = rt().await;
    Mock::given(method("GET"))
        .and(path("/REST/2.0/ticket/1"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "12"))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .route(&TicketRef("1".into()), &routing("", "", "high"))
        .await
        .expect_err("unavailable");
    assert_eq!(
        err,
        ConnectorError::Retryable {
            retry_after: Some(std::time::Duration::from_secs(12)),
            reason: "rt: reading the ticket: HTTP 503 Service Unavailable: ".into()
        }
    );
}

#[tokio::test]
async fn tells_resolved_rejected_deleted_and_missing_tickets_apart() {
    for (status, expected) in [
        ("new", false),
        ("open", false),
        ("stalled", false),
        ("resolved", true),
        ("rejected", true),
        ("deleted", true),
        ("missing", true),
    ] {
        let server = rt().await;
        if status != "missing" {
            mount_ticket(&server, 5, status, NEVER).await;
        }
        let resolved = connector(&server)
            .is_resolved(&TicketRef("5".into()))
            .await
            .expect("read");
        assert_eq!(resolved, expected, "{status}");
    }
    let server = rt().await;
    assert!(connector(&server)
        .is_resolved(&TicketRef("x".into()))
        .await
        .is_err());
}

#[test]
fn writes_the_routing_comment() {
    assert_eq!(routing_comment(None, &[]), None);
    assert_eq!(
        routing_comment(None, &["a".into(), "b".into()]).as_deref(),
        Some("wabridge: tags: a, b\n[wa:routing]")
    );
    assert_eq!(
        routing_comment(Some(" sick of bots "), &[]).as_deref(),
        Some("wabridge: the customer asked for a person: sick of bots\n[wa:routing]")
    );
}
