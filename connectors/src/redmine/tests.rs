//! The Redmine connector against wiremock, with answers shaped like Redmine 5.0.4's REST API
//! (see `/work/shared/reference/crm-and-ticketing.md` A.4, re-checked on a real Redmine 5.0.4).

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::conformance::{self, Subject, Target};
use crate::{Secret, TicketRef, TicketRouting};

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const PROJECT: &str = "wa-support";
/// The API key's own user in the mocks.
const OWN_USER: u64 = 1;
/// An agent in the mocks.
const AGENT: u64 = 5;
const SUBJECT: &str = "WhatsApp: Aisha (+96890000001)";

fn issue_json(id: u64, subject: &str, closed: bool, closed_on: Option<&str>) -> Value {
    let (status_id, status_name) = if closed { (5, "Closed") } else { (1, "New") };
    json!({
        "id": id,
        "project": {"id": 1, "name": "WhatsApp Support"},
        "tracker": {"id": 3, "name": "Support"},
        "status": {"id": status_id, "name": status_name, "is_closed": closed},
        "priority": {"id": 2, "name": "Normal"},
        "author": {"id": OWN_USER, "name": "WhatsApp Bridge"},
        "subject": subject,
        "description": "Aisha (+96890000001) wrote on WhatsApp, 2026-11-01 10:00:00 UTC:\n\nhi\n\n[wa:wamid.FIRST]",
        "start_date": "2026-11-01",
        "done_ratio": 0,
        "is_private": false,
        "created_on": "2026-11-01T10:00:00Z",
        "updated_on": closed_on.unwrap_or("2026-11-02T10:00:00Z"),
        "closed_on": closed_on,
    })
}

fn with_journals(mut issue: Value, journals: Vec<Value>) -> Value {
    issue["journals"] = Value::Array(journals);
    issue
}

fn journal(id: u64, user: u64, notes: &str, private: bool, created_on: &str) -> Value {
    json!({
        "id": id, "user": {"id": user, "name": if user == OWN_USER { "WhatsApp Bridge" } else { "Alex Agent" }},
        "notes": notes, "created_on": created_on, "private_notes": private, "details": []
    })
}

fn listing(issues: Vec<Value>) -> Value {
    let total = issues.len();
    json!({"issues": issues, "total_count": total, "offset": 0, "limit": 100})
}

/// Mounts Redmine's answers: issue 1 is open without journals, searches find nothing, creates
/// get id 2, uploads get token `7.abc`, updates answer 204.
async fn mount_redmine(server: &MockServer, key: &str) {
    let auth = || header("X-Redmine-API-Key", key);
    Mock::given(method("GET"))
        .and(path("/users/current.json"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": {
            "id": OWN_USER, "login": "wabridge", "admin": false, "firstname": "WhatsApp",
            "lastname": "Bridge", "created_on": "2026-11-01T09:00:00Z", "api_key": key
        }})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/projects/{PROJECT}.json")))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"project": {
            "id": 1, "name": "WhatsApp Support", "identifier": PROJECT, "status": 1,
            "is_public": true,
            "trackers": [{"id": 1, "name": "Bug"}, {"id": 3, "name": "Support"}],
            "enabled_modules": [{"id": 1, "name": "issue_tracking"}],
            "created_on": "2026-11-01T09:00:00Z", "updated_on": "2026-11-01T09:00:00Z"
        }})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issues/1.json"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issue": with_journals(issue_json(1, SUBJECT, false, None), vec![])
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(listing(vec![])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/issues.json"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", format!("{}/issues/2", server.uri()))
                .set_body_json(json!({"issue": issue_json(2, SUBJECT, false, None)})),
        )
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(wiremock::matchers::path_regex(r"^/issues/\d+\.json$"))
        .and(auth())
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/uploads.json"))
        .and(header("Content-Type", "application/octet-stream"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"upload": {"id": 7, "token": "7.abc"}})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issue_statuses.json"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issue_statuses": [
                {"id": 5, "name": "Closed", "is_closed": true},
                {"id": 1, "name": "New", "is_closed": false},
                {"id": 2, "name": "In Progress", "is_closed": false}
            ]})),
        )
        .mount(server)
        .await;
}

struct Redmine;

#[async_trait::async_trait]
impl Subject for Redmine {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_redmine(server, conformance::SECRET).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        let mut config = RedmineConfig::new(&target.url, target.secret.clone(), PROJECT);
        config.timeout_secs = target.timeout.as_secs().max(1);
        Ok(Box::new(RedmineConnector::new(config)?))
    }
}

#[tokio::test]
async fn redmine_passes_the_conformance_suite() {
    conformance::run_suite(&Redmine).await;
}

fn base_config(server: &MockServer) -> RedmineConfig {
    let mut config = RedmineConfig::new(server.uri(), Secret::new(KEY), PROJECT);
    config.timeout_secs = 5;
    config
}

fn connector(server: &MockServer) -> RedmineConnector {
    RedmineConnector::new(base_config(server)).expect("builds")
}

async fn redmine() -> MockServer {
    let server = MockServer::start().await;
    mount_redmine(&server, KEY).await;
    server
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// JSON bodies of the requests received for `verb` + exact `route`.
async fn received(server: &MockServer, verb: &str, route: &str) -> Vec<Value> {
    requests(server)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// The query pairs of each `GET /issues.json` received.
async fn listings(server: &MockServer) -> Vec<Vec<(String, String)>> {
    requests(server)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == "/issues.json")
        .map(|r| r.url.query_pairs().into_owned().collect())
        .collect()
}

async fn writes(server: &MockServer) -> Vec<Request> {
    requests(server)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect()
}

fn known(id: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(id.to_owned())),
        maybe_delivered,
    }
}

fn fresh(maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: None,
        maybe_delivered,
    }
}

async fn mount_issue(server: &MockServer, issue: Value) {
    let id = issue["id"].as_u64().unwrap_or_default();
    Mock::given(method("GET"))
        .and(path(format!("/issues/{id}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "issue": issue })))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn mount_search(server: &MockServer, issues: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(query_param("subject", "~+96890000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listing(issues)))
        .with_priority(1)
        .mount(server)
        .await;
}

fn days_ago(days: i64) -> String {
    timestamp(Utc::now() - chrono::Duration::days(days))
}

const EXPECTED_DESCRIPTION: &str = "Aisha (+96890000001) sent a WhatsApp image message, \
     2026-11-27 09:30:00 UTC:\n\nWhere is my order #1001? (photo attached)\n\n\
     [wa:wamid.HBgMOTY4OTAwMDAwMDAxFQIAEhggQ09ORk9STUFOQ0UwMDAx]";

#[tokio::test]
async fn opens_an_issue_with_subject_description_marker_and_upload() {
    let server = redmine().await;
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

    // The bytes went up first, named, as octet-stream.
    let uploads: Vec<Request> = requests(&server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == "/uploads.json")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].body, conformance::message().attachments[0].data);
    assert_eq!(
        uploads[0]
            .url
            .query_pairs()
            .into_owned()
            .collect::<Vec<_>>(),
        [("filename".to_owned(), "parcel.jpg".to_owned())]
    );

    let creates = received(&server, "POST", "/issues.json").await;
    assert_eq!(
        creates,
        [json!({"issue": {
            "project_id": PROJECT,
            "subject": SUBJECT,
            "description": EXPECTED_DESCRIPTION,
            "uploads": [{"token": "7.abc", "filename": "parcel.jpg", "content_type": "image/jpeg"}]
        }})]
    );

    // Before opening it looked for the conversation's issue by number, in the project.
    let searches = listings(&server).await;
    assert_eq!(searches.len(), 1);
    for pair in [
        ("project_id", PROJECT),
        ("status_id", "*"),
        ("subject", "~+96890000001"),
        ("sort", "id:desc"),
    ] {
        assert!(
            searches[0].contains(&(pair.0.to_owned(), pair.1.to_owned())),
            "{pair:?} in {:?}",
            searches[0]
        );
    }
}

#[tokio::test]
async fn sets_tracker_priority_and_phone_custom_field_when_configured() {
    let server = redmine().await;
    let mut config = base_config(&server);
    config.tracker_id = Some(3);
    config.priority_id = Some(4);
    config.phone_custom_field_id = Some(2);
    let mut message = conformance::message();
    message.attachments.clear();
    message.kind = "text".into();
    RedmineConnector::new(config)
        .expect("builds")
        .deliver(&conformance::conversation(), &message, &fresh(false))
        .await
        .expect("delivered");
    let creates = received(&server, "POST", "/issues.json").await;
    let issue = &creates[0]["issue"];
    assert_eq!(issue["tracker_id"], 3);
    assert_eq!(issue["priority_id"], 4);
    assert_eq!(
        issue["custom_fields"],
        json!([{"id": 2, "value": "+96890000001"}])
    );
    assert!(issue.get("uploads").is_none());
    assert!(
        issue["description"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Aisha (+96890000001) wrote on WhatsApp, 2026-11-27 09:30:00 UTC:"),
        "{issue}"
    );
}

#[tokio::test]
async fn adds_a_note_to_the_recorded_open_issue_without_lookups() {
    let server = redmine().await;
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
    assert_eq!(
        received(&server, "PUT", "/issues/1.json").await,
        [json!({"issue": {
            "notes": EXPECTED_DESCRIPTION,
            "private_notes": false,
            "uploads": [{"token": "7.abc", "filename": "parcel.jpg", "content_type": "image/jpeg"}]
        }})]
    );
    // The issue was read without journals, and nothing was searched.
    let reads: Vec<Request> = requests(&server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == "/issues/1.json" && r.method.as_str() == "GET")
        .collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].url.query(), None);
    assert!(listings(&server).await.is_empty());
}

#[tokio::test]
async fn writes_private_notes_when_configured() {
    let server = redmine().await;
    let mut config = base_config(&server);
    config.private_messages = true;
    RedmineConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    let notes = received(&server, "PUT", "/issues/1.json").await;
    assert_eq!(notes[0]["issue"]["private_notes"], true);
}

#[tokio::test]
async fn writes_nothing_when_the_marker_is_already_in_a_note() {
    let server = redmine().await;
    mount_issue(
        &server,
        with_journals(
            issue_json(1, SUBJECT, false, None),
            vec![
                journal(
                    3,
                    OWN_USER,
                    "earlier\n\n[wa:wamid.OTHER]",
                    false,
                    "2026-11-27T09:00:00Z",
                ),
                journal(
                    4,
                    OWN_USER,
                    EXPECTED_DESCRIPTION,
                    false,
                    "2026-11-27T09:31:00Z",
                ),
            ],
        ),
    )
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
    // Not even the attachment was uploaded again.
    assert!(writes(&server).await.is_empty());
    let reads: Vec<Request> = requests(&server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == "/issues/1.json")
        .collect();
    assert_eq!(reads[0].url.query(), Some("include=journals"));
}

#[tokio::test]
async fn a_marker_of_another_message_is_no_match() {
    let server = redmine().await;
    let mut other = conformance::message();
    other.id = format!("{}X", conformance::MESSAGE_ID);
    mount_issue(
        &server,
        with_journals(
            issue_json(1, SUBJECT, false, None),
            vec![journal(
                4,
                OWN_USER,
                &format!("text\n\n{}", marker(&other.id)),
                false,
                "2026-11-27T09:31:00Z",
            )],
        ),
    )
    .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", true),
        )
        .await
        .expect("delivered");
    assert!(!delivered.already_present);
    assert_eq!(received(&server, "PUT", "/issues/1.json").await.len(), 1);
}

#[tokio::test]
async fn finds_the_issue_an_earlier_attempt_opened() {
    let server = redmine().await;
    let mut opened = issue_json(7, SUBJECT, false, None);
    opened["description"] = Value::from(EXPECTED_DESCRIPTION);
    mount_search(&server, vec![opened.clone()]).await;
    mount_issue(&server, with_journals(opened, vec![])).await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &fresh(true),
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
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn continues_the_newest_open_issue_of_the_conversation() {
    let server = redmine().await;
    mount_search(
        &server,
        vec![
            issue_json(9, SUBJECT, true, Some(&days_ago(2))),
            // Same digits and one more: another customer.
            issue_json(8, "WhatsApp: Omar (+968900000012)", false, None),
            issue_json(
                7,
                "[VIP] WhatsApp: Aisha B. (+96890000001) refund",
                false,
                None,
            ),
            issue_json(6, SUBJECT, false, None),
        ],
    )
    .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &fresh(false),
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
    assert_eq!(received(&server, "PUT", "/issues/7.json").await.len(), 1);
    assert!(received(&server, "POST", "/issues.json").await.is_empty());
}

#[tokio::test]
async fn look_alike_numbers_get_their_own_issue() {
    let server = redmine().await;
    mount_search(
        &server,
        vec![issue_json(8, "WhatsApp: Omar (+968900000012)", false, None)],
    )
    .await;
    let delivered = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &fresh(false),
        )
        .await
        .expect("delivered");
    assert_eq!(delivered.ticket, TicketRef("2".into()));
    assert!(delivered.opened_ticket);
    assert!(received(&server, "PUT", "/issues/8.json").await.is_empty());
}

#[tokio::test]
async fn reopens_an_issue_closed_within_the_window_in_the_same_call_as_the_note() {
    let server = redmine().await;
    mount_issue(&server, issue_json(1, SUBJECT, true, Some(&days_ago(1)))).await;
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
    let updates = received(&server, "PUT", "/issues/1.json").await;
    assert_eq!(updates.len(), 1);
    // The first status that is not closed.
    assert_eq!(updates[0]["issue"]["status_id"], 1);
    assert_eq!(updates[0]["issue"]["notes"], EXPECTED_DESCRIPTION);

    // A configured status is used as it is, without reading the statuses.
    let server = redmine().await;
    mount_issue(&server, issue_json(1, SUBJECT, true, Some(&days_ago(1)))).await;
    let mut config = base_config(&server);
    config.reopen_status_id = Some(2);
    RedmineConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered");
    let updates = received(&server, "PUT", "/issues/1.json").await;
    assert_eq!(updates[0]["issue"]["status_id"], 2);
    assert!(requests(&server)
        .await
        .iter()
        .all(|r| r.url.path() != "/issue_statuses.json"));
}

#[tokio::test]
async fn opens_a_new_issue_for_one_closed_long_ago_or_gone() {
    for case in ["closed long ago", "reopening off", "gone"] {
        let server = redmine().await;
        let mut config = base_config(&server);
        match case {
            "closed long ago" => {
                mount_issue(&server, issue_json(5, SUBJECT, true, Some(&days_ago(45)))).await
            }
            "reopening off" => {
                config.reopen_within_days = 0;
                mount_issue(&server, issue_json(5, SUBJECT, true, Some(&days_ago(1)))).await
            }
            _ => {}
        }
        // The search finds the recorded issue itself, which is not taken again.
        mount_search(
            &server,
            vec![issue_json(5, SUBJECT, true, Some(&days_ago(45)))],
        )
        .await;
        let delivered = RedmineConnector::new(config)
            .expect("builds")
            .deliver(
                &conformance::conversation(),
                &conformance::message(),
                &known("5", false),
            )
            .await
            .unwrap_or_else(|err| panic!("{case}: {err}"));
        assert_eq!(delivered.ticket, TicketRef("2".into()), "{case}");
        assert!(delivered.opened_ticket, "{case}");
        assert!(
            received(&server, "PUT", "/issues/5.json").await.is_empty(),
            "{case}"
        );
        assert_eq!(
            received(&server, "POST", "/issues.json").await.len(),
            1,
            "{case}"
        );
    }
}

#[tokio::test]
async fn names_a_file_redmine_refuses_in_the_note_and_delivers_the_text() {
    let server = redmine().await;
    Mock::given(method("POST"))
        .and(path("/uploads.json"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
            "This file cannot be uploaded because it exceeds the maximum allowed file size (5242880)"
        ]})))
        .with_priority(1)
        .mount(&server)
        .await;
    connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &known("1", false),
        )
        .await
        .expect("delivered without the file");
    let updates = received(&server, "PUT", "/issues/1.json").await;
    let issue = &updates[0]["issue"];
    assert!(issue.get("uploads").is_none(), "{issue}");
    let notes = issue["notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains(
            "(The attached file parcel.jpg, 11 bytes, could not be stored in Redmine: This file \
             cannot be uploaded because it exceeds the maximum allowed file size (5242880))"
        ),
        "{notes}"
    );
    assert!(notes.ends_with(&marker(conformance::MESSAGE_ID)), "{notes}");
}

#[tokio::test]
async fn a_refused_create_is_permanent_with_redmines_messages() {
    let server = redmine().await;
    Mock::given(method("POST"))
        .and(path("/issues.json"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
            "Tracker is not included in the list", "Subject is too long (maximum is 255 characters)"
        ]})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &fresh(false),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent {
            reason: "redmine: creating the issue: Redmine refused the data (HTTP 422): Tracker \
                     is not included in the list; Subject is too long (maximum is 255 characters)"
                .into()
        }
    );
}

#[tokio::test]
async fn errors_never_carry_the_phone_number() {
    let server = redmine().await;
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_secs(3)))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut config = base_config(&server);
    config.timeout_secs = 1;
    let err = RedmineConnector::new(config)
        .expect("builds")
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &fresh(false),
        )
        .await
        .expect_err("times out");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(
        !text.contains("96890000001") && !text.contains("issues.json"),
        "{text}"
    );
}

#[tokio::test]
async fn note_is_a_private_note() {
    let server = redmine().await;
    connector(&server)
        .note(
            &TicketRef("1".into()),
            "Reply not sent: outside the 24 h window.",
        )
        .await
        .expect("noted");
    assert_eq!(
        received(&server, "PUT", "/issues/1.json").await,
        [
            json!({"issue": {"notes": "Reply not sent: outside the 24 h window.", "private_notes": true}})
        ]
    );
    let err = connector(&server)
        .note(&TicketRef("RT-1".into()), "x")
        .await
        .expect_err("not an issue number");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn check_reads_the_key_user_and_the_project() {
    let server = redmine().await;
    let mut config = base_config(&server);
    config.tracker_id = Some(3);
    RedmineConnector::new(config)
        .expect("builds")
        .check()
        .await
        .expect("check passes");
    let paths: Vec<String> = requests(&server)
        .await
        .iter()
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or_default()))
        .collect();
    assert_eq!(
        paths,
        [
            "/users/current.json?",
            "/projects/wa-support.json?include=trackers%2Cenabled_modules"
        ]
    );
}

#[tokio::test]
async fn check_explains_a_wrong_key_the_api_off_a_missing_project_and_a_disabled_tracker() {
    // A wrong key: 401 on /users/current.json (a public project would still answer 200).
    let server = MockServer::start().await;
    mount_redmine(&server, "another-key").await;
    Mock::given(method("GET"))
        .and(path("/users/current.json"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(10)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("wrong key");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("refused the API key"), "{err}");
    assert!(!err.to_string().contains(KEY), "{err}");

    // The REST API switched off: 403 for every API call.
    let server = redmine().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("API off");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("enable the REST API"), "{err}");

    let server = redmine().await;
    let mut config = base_config(&server);
    config.project = "no-such-project".into();
    let err = RedmineConnector::new(config)
        .expect("builds")
        .check()
        .await
        .expect_err("missing project");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("there is no project `no-such-project`"),
        "{err}"
    );

    let server = redmine().await;
    let mut config = base_config(&server);
    config.tracker_id = Some(2);
    let err = RedmineConnector::new(config)
        .expect("builds")
        .check()
        .await
        .expect_err("tracker not enabled");
    assert!(
        err.to_string()
            .contains("tracker_id 2 is not enabled in project `wa-support` (enabled: 1, 3)"),
        "{err}"
    );

    let server = redmine().await;
    Mock::given(method("GET"))
        .and(path(format!("/projects/{PROJECT}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"project": {
            "id": 1, "identifier": PROJECT, "trackers": [{"id": 1, "name": "Bug"}],
            "enabled_modules": [{"id": 2, "name": "wiki"}]
        }})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("no issues");
    assert!(
        err.to_string()
            .contains("\"Issue tracking\" is not enabled"),
        "{err}"
    );
}

/// Mounts the reply-polling answers: the listing (any `sort`), and each issue with journals.
async fn mount_changes(server: &MockServer, newest: &str, issues: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(query_param("sort", "updated_on:desc,id:desc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issues": [issues.iter().find(|i| i["updated_on"] == newest).cloned().unwrap_or(Value::Null)],
            "total_count": issues.len(), "offset": 0, "limit": 1
        })))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(query_param("sort", "id"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(listing(
                issues
                    .iter()
                    .map(|issue| {
                        let mut listed = issue.clone();
                        if let Some(map) = listed.as_object_mut() {
                            map.remove("journals");
                        }
                        listed
                    })
                    .collect(),
            )),
        )
        .with_priority(1)
        .mount(server)
        .await;
    for issue in issues {
        mount_issue(server, issue).await;
    }
}

fn changed(id: u64, updated_on: &str, journals: Vec<Value>) -> Value {
    let mut issue = with_journals(issue_json(id, SUBJECT, false, None), journals);
    issue["updated_on"] = Value::from(updated_on);
    issue
}

#[tokio::test]
async fn replies_since_returns_agents_public_notes_once_in_order() {
    let server = redmine().await;
    let redmine = connector(&server);

    // First look: nothing is returned, and the replies already there are remembered.
    let before = vec![
        journal(9, AGENT, "Long ago", false, "2026-11-27T09:00:00Z"),
        journal(10, AGENT, "Just before", false, "2026-11-27T09:59:30Z"),
    ];
    mount_changes(
        &server,
        "2026-11-27T10:00:00Z",
        vec![changed(1, "2026-11-27T10:00:00Z", before.clone())],
    )
    .await;
    let (replies, cursor) = redmine.replies_since(None).await.expect("first look");
    assert!(replies.is_empty(), "{replies:?}");
    let cursor = cursor.expect("a position");
    assert_eq!(cursor, "2026-11-27T10:00:00Z|10");

    // Then: agents' public notes, oldest first; not ours, not private, not empty, no marker.
    server.reset().await;
    mount_redmine(&server, KEY).await;
    let mut one = before;
    one.extend([
        journal(
            11,
            OWN_USER,
            "Aisha wrote…\n\n[wa:wamid.X]",
            false,
            "2026-11-27T10:01:00Z",
        ),
        journal(
            12,
            AGENT,
            "internal: check stock",
            true,
            "2026-11-27T10:02:00Z",
        ),
        journal(
            14,
            AGENT,
            "It ships tomorrow.",
            false,
            "2026-11-27T10:04:10Z",
        ),
        journal(15, AGENT, "", false, "2026-11-27T10:04:20Z"),
        journal(
            16,
            AGENT,
            "Quoting: [wa:wamid.X]",
            false,
            "2026-11-27T10:04:30Z",
        ),
    ]);
    let three = vec![journal(
        13,
        AGENT,
        "  Your refund is on its way.\n",
        false,
        "2026-11-27T10:03:00Z",
    )];
    mount_changes(
        &server,
        "2026-11-27T10:05:00Z",
        vec![
            changed(1, "2026-11-27T10:04:30Z", one),
            changed(3, "2026-11-27T10:05:00Z", three),
        ],
    )
    .await;
    let (replies, next) = redmine.replies_since(Some(&cursor)).await.expect("replies");
    assert_eq!(
        replies,
        [
            AgentReply {
                id: "redmine-journal-13".into(),
                ticket: TicketRef("3".into()),
                text: "Your refund is on its way.".into(),
                at: "2026-11-27T10:03:00Z".parse().expect("time"),
            },
            AgentReply {
                id: "redmine-journal-14".into(),
                ticket: TicketRef("1".into()),
                text: "It ships tomorrow.".into(),
                at: "2026-11-27T10:04:10Z".parse().expect("time"),
            },
        ]
    );
    // The window reads again from the cursor's watermark minus the overlap.
    let polls = listings(&server).await;
    assert_eq!(polls.len(), 1);
    for pair in [
        ("project_id", PROJECT),
        ("status_id", "*"),
        ("updated_on", ">=2026-11-27T09:59:00Z"),
        ("sort", "id"),
        ("offset", "0"),
        ("limit", "100"),
    ] {
        assert!(
            polls[0].contains(&(pair.0.to_owned(), pair.1.to_owned())),
            "{pair:?} in {:?}",
            polls[0]
        );
    }
    // Only 14 is still in the next window (10:04:00 on).
    let next = next.expect("cursor");
    assert_eq!(next, "2026-11-27T10:05:00Z|14");

    // Polling again with the same data returns nothing twice.
    let (again, last) = redmine.replies_since(Some(&next)).await.expect("again");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(last.as_deref(), Some(next.as_str()));
}

#[tokio::test]
async fn a_reply_written_while_the_first_look_runs_is_returned_by_the_next_poll() {
    // The first look lists the newest change (10:00:00), then reads the issues of its window:
    // by then an agent has answered (10:00:05). That reply is new, not "before wabridge".
    let server = redmine().await;
    // (The position listing answers issue 2; issue 1 changed right after it.)
    mount_changes(
        &server,
        "2026-11-27T10:00:00Z",
        vec![
            changed(
                2,
                "2026-11-27T10:00:00Z",
                vec![journal(
                    10,
                    AGENT,
                    "Just before",
                    false,
                    "2026-11-27T09:59:30Z",
                )],
            ),
            changed(
                1,
                "2026-11-27T10:00:05Z",
                vec![journal(
                    11,
                    AGENT,
                    "Written during the scan",
                    false,
                    "2026-11-27T10:00:05Z",
                )],
            ),
        ],
    )
    .await;
    let redmine = connector(&server);
    let (replies, cursor) = redmine.replies_since(None).await.expect("first look");
    assert!(replies.is_empty(), "{replies:?}");
    let cursor = cursor.expect("a position");
    assert_eq!(cursor, "2026-11-27T10:00:00Z|10");
    let (replies, _) = redmine
        .replies_since(Some(&cursor))
        .await
        .expect("next poll");
    let texts: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["Written during the scan"]);
}

#[tokio::test]
async fn a_reply_written_while_the_previous_poll_ran_is_not_lost() {
    // The previous poll saw issue 3 changed at 10:05 and returned reply 14; meanwhile an agent
    // answered on issue 1, which that poll had already read: written 10:04:59, id 13.
    let server = redmine().await;
    mount_changes(
        &server,
        "2026-11-27T10:05:00Z",
        vec![
            changed(
                1,
                "2026-11-27T10:04:59Z",
                vec![journal(
                    13,
                    AGENT,
                    "Late but here.",
                    false,
                    "2026-11-27T10:04:59Z",
                )],
            ),
            changed(
                3,
                "2026-11-27T10:05:00Z",
                vec![journal(
                    14,
                    AGENT,
                    "Returned before.",
                    false,
                    "2026-11-27T10:04:10Z",
                )],
            ),
        ],
    )
    .await;
    let (replies, cursor) = connector(&server)
        .replies_since(Some("2026-11-27T10:05:00Z|14"))
        .await
        .expect("replies");
    let texts: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["Late but here."]);
    assert_eq!(cursor.as_deref(), Some("2026-11-27T10:05:00Z|13,14"));
}

#[tokio::test]
async fn replies_since_reads_every_page_of_changed_issues() {
    let server = redmine().await;
    let page = |ids: std::ops::Range<u64>| -> Value {
        json!({
            "issues": ids.map(|id| {
                let mut issue = issue_json(id, SUBJECT, false, None);
                issue["updated_on"] = Value::from("2026-11-27T10:00:00Z");
                issue
            }).collect::<Vec<_>>(),
            "total_count": 150, "offset": 0, "limit": 100
        })
    };
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1..101)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issues.json"))
        .and(query_param("offset", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(101..151)))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_issue(
        &server,
        changed(
            150,
            "2026-11-27T10:00:00Z",
            vec![journal(
                99,
                AGENT,
                "On the last page.",
                false,
                "2026-11-27T10:00:00Z",
            )],
        ),
    )
    .await;
    let (replies, _) = connector(&server)
        .replies_since(Some("2026-11-27T10:00:00Z|"))
        .await
        .expect("replies");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].ticket, TicketRef("150".into()));
    assert_eq!(
        listings(&server)
            .await
            .iter()
            .filter_map(|q| q
                .iter()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.clone()))
            .collect::<Vec<_>>(),
        ["0", "100"]
    );
}

#[tokio::test]
async fn an_unreadable_cursor_starts_from_now() {
    let server = redmine().await;
    mount_changes(
        &server,
        "2026-11-27T10:00:00Z",
        vec![changed(
            1,
            "2026-11-27T10:00:00Z",
            vec![journal(10, AGENT, "Before", false, "2026-11-27T09:59:59Z")],
        )],
    )
    .await;
    let (replies, cursor) = connector(&server)
        .replies_since(Some("42"))
        .await
        .expect("restarts");
    assert!(replies.is_empty());
    assert_eq!(cursor.as_deref(), Some("2026-11-27T10:00:00Z|10"));
}

#[test]
fn cursors_round_trip() {
    for text in ["2026-11-27T10:00:00Z|", "2026-11-27T10:00:00Z|3,12,99"] {
        let cursor = Cursor::parse(text).expect("parses");
        assert_eq!(cursor.render(), text);
    }
    for bad in ["", "42", "yesterday|1", "2026-11-27T10:00:00Z|x"] {
        assert_eq!(Cursor::parse(bad), None, "{bad}");
    }
}

#[test]
fn subjects_name_the_customer_and_match_whole_numbers_only() {
    let mut contact = conformance::conversation().contact;
    assert_eq!(issue_subject(&contact), SUBJECT);
    assert!(subject_mentions(SUBJECT, "+96890000001"));
    assert!(subject_mentions("WhatsApp: +96890000001", "+96890000001"));
    assert!(!subject_mentions(
        "WhatsApp: (+968900000012)",
        "+96890000001"
    ));
    assert!(subject_mentions(
        "WhatsApp: US.13491208655302741918",
        "US.13491208655302741918"
    ));
    assert!(!subject_mentions(
        "WhatsApp: XUS.13491208655302741918",
        "US.13491208655302741918"
    ));

    contact.profile_name = Some(format!("{}\nevil", "A".repeat(400)));
    let subject = issue_subject(&contact);
    assert_eq!(subject.chars().count(), 255);
    assert!(subject.ends_with("… (+96890000001)"), "{subject}");
    assert!(!subject.contains('\n'));

    contact.wa_id = None;
    contact.user_id = Some("US.1349120865530".into());
    contact.profile_name = None;
    assert_eq!(issue_subject(&contact), "WhatsApp: US.1349120865530");
    assert_eq!(
        conversation_term(&contact).as_deref(),
        Some("US.1349120865530")
    );
    contact.user_id = None;
    assert_eq!(conversation_term(&contact), None);
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let config = RedmineConfig::new("http://127.0.0.1:3300", Secret::new(""), PROJECT);
    let err = RedmineConnector::new(config).expect_err("no key");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("api_key"), "{err}");
}

#[test]
fn debug_output_shows_no_key() {
    let config = RedmineConfig::new("http://127.0.0.1:3300", Secret::new(KEY), PROJECT);
    let connector = RedmineConnector::new(config).expect("builds");
    let debug = format!("{connector:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}

// ---- Routing -------------------------------------------------------------------------------

/// Issue 1 with the fields routing reads (priority by id, closed or open) and journals.
fn routed_issue(
    closed: bool,
    priority: u64,
    assignee: Option<u64>,
    category: Option<u64>,
    journals: Vec<Value>,
) -> Value {
    let mut issue = issue_json(1, SUBJECT, closed, closed.then_some("2026-11-20T10:00:00Z"));
    let names = ["", "Low", "Normal", "High", "Urgent", "Immediate"];
    issue["priority"] =
        json!({"id": priority, "name": names.get(priority as usize).copied().unwrap_or("?")});
    if let Some(user) = assignee {
        issue["assigned_to"] = json!({"id": user, "name": "Alex Agent"});
    }
    if let Some(category) = category {
        issue["category"] = json!({"id": category, "name": "Billing"});
    }
    json!({ "issue": with_journals(issue, journals) })
}

/// Issue 1 answers `before` once, then `after`.
async fn mount_routed(server: &MockServer, before: Value, after: Value) {
    Mock::given(method("GET"))
        .and(path("/issues/1.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/issues/1.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(after))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Redmine 5.0.4's default priorities, its `users.json` (admin key), the project's categories.
async fn mount_routing_lists(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/enumerations/issue_priorities.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issue_priorities": [
                {"id": 1, "name": "Low", "is_default": false, "active": true},
                {"id": 2, "name": "Normal", "is_default": true, "active": true},
                {"id": 3, "name": "High", "is_default": false, "active": true},
                {"id": 4, "name": "Urgent", "is_default": false, "active": true},
                {"id": 5, "name": "Immediate", "is_default": false, "active": true}
            ]})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users.json"))
        .and(query_param("name", "agent"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"users": [
            {"id": 9, "login": "agent2", "admin": false, "firstname": "Other", "lastname": "Agent",
             "mail": "agent2@example.invalid"},
            {"id": AGENT, "login": "agent", "admin": false, "firstname": "Alex",
             "lastname": "Agent", "mail": "agent@example.invalid"}
        ], "total_count": 2, "offset": 0, "limit": 25})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users.json"))
        .and(query_param("name", "ghost"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [], "total_count": 0, "offset": 0, "limit": 25
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/projects/{PROJECT}/issue_categories.json")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issue_categories": [
            {"id": 11, "project": {"id": 1, "name": "WhatsApp Support"}, "name": "Shipping"},
            {"id": 12, "project": {"id": 1, "name": "WhatsApp Support"}, "name": "Billing",
             "assigned_to": {"id": AGENT, "name": "Alex Agent"}}
        ], "total_count": 2})),
        )
        .mount(server)
        .await;
}

fn route_to(department: &str, assignee: &str, priority: &str) -> TicketRouting {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    TicketRouting {
        department: some(department),
        assignee: some(assignee),
        priority: crate::Priority::parse(priority),
        tags: Vec::new(),
        handover: None,
    }
}

#[tokio::test]
async fn routes_category_assignee_and_priority_in_one_put_and_checks_them() {
    let server = redmine().await;
    mount_routing_lists(&server).await;
    mount_routed(
        &server,
        routed_issue(false, 2, None, None, vec![]),
        routed_issue(false, 4, Some(AGENT), Some(12), vec![]),
    )
    .await;
    let connector = connector(&server);
    for _ in 0..2 {
        connector
            .route(
                &TicketRef("1".into()),
                &route_to("billing", "agent", "urgent"),
            )
            .await
            .expect("routed");
    }
    // The second route finds everything in place and writes nothing.
    assert_eq!(
        received(&server, "PUT", "/issues/1.json").await,
        [json!({"issue": {"category_id": 12, "assigned_to_id": AGENT, "priority_id": 4}})]
    );
    let reads = |route: &'static str| {
        let server = &server;
        async move {
            requests(server)
                .await
                .iter()
                .filter(|r| r.method.as_str() == "GET" && r.url.path() == route)
                .count()
        }
    };
    assert_eq!(reads("/enumerations/issue_priorities.json").await, 1);
    assert_eq!(reads("/users.json").await, 1);
    assert_eq!(reads("/projects/wa-support/issue_categories.json").await, 1);
    // Read before each route, and once after the write to check it took.
    assert_eq!(reads("/issues/1.json").await, 3);
}

#[tokio::test]
async fn hands_over_by_reopening_raising_the_priority_and_noting_reason_and_tags() {
    let server = redmine().await;
    mount_routing_lists(&server).await;
    mount_routed(
        &server,
        routed_issue(true, 1, None, None, vec![]),
        routed_issue(false, 3, None, None, vec![]),
    )
    .await;
    let routing = TicketRouting {
        tags: vec!["refund".into(), " vip ".into(), "refund".into()],
        handover: Some("wants a refund".into()),
        ..TicketRouting::default()
    };
    connector(&server)
        .route(&TicketRef("1".into()), &routing)
        .await
        .expect("routed");
    assert_eq!(
        received(&server, "PUT", "/issues/1.json").await,
        [json!({"issue": {
            "priority_id": 3, "status_id": 1,
            "notes": "wabridge: the customer asked for a person: wants a refund\n\
                      wabridge: tags: refund, vip\n[wa:routing]",
            "private_notes": true
        }})]
    );
}

#[tokio::test]
async fn notes_a_hand_over_on_an_open_issue_once_per_reason() {
    let said = "wabridge: the customer asked for a person: wants a refund\n[wa:routing]";
    for (reason, expected) in [("wants a refund", false), ("wants an invoice", true)] {
        let server = redmine().await;
        mount_routing_lists(&server).await;
        let journals = vec![
            journal(40, OWN_USER, said, true, "2026-11-27T09:00:00Z"),
            journal(
                41,
                OWN_USER,
                "Aisha wrote ... [wa:wamid.X]",
                false,
                "2026-11-27T09:01:00Z",
            ),
        ];
        let issue = routed_issue(false, 5, None, None, journals);
        mount_routed(&server, issue.clone(), issue).await;
        let routing = TicketRouting {
            handover: Some(reason.into()),
            ..TicketRouting::default()
        };
        connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect("routed");
        let puts = received(&server, "PUT", "/issues/1.json").await;
        if expected {
            // Immediate stays (above High); open stays open: only the note, nothing to check.
            assert_eq!(
                puts,
                [json!({"issue": {
                    "notes": "wabridge: the customer asked for a person: wants an invoice\n\
                              [wa:routing]",
                    "private_notes": true
                }})]
            );
        } else {
            assert!(puts.is_empty(), "{puts:?}");
        }
        assert_eq!(
            requests(&server)
                .await
                .iter()
                .filter(|r| r.url.path() == "/issues/1.json" && r.method.as_str() == "GET")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn fails_permanently_when_redmine_ignores_a_field() {
    let server = redmine().await;
    mount_routing_lists(&server).await;
    // Redmine answers 204 but keeps the priority (the user may not change it).
    let unchanged = routed_issue(false, 2, None, None, vec![]);
    mount_routed(&server, unchanged.clone(), unchanged).await;
    let err = connector(&server)
        .route(&TicketRef("1".into()), &route_to("", "", "high"))
        .await
        .expect_err("ignored");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("Redmine did not apply the priority to issue 1"),
        "{err}"
    );
}

#[tokio::test]
async fn refuses_unknown_categories_users_and_priorities_before_writing() {
    for (routing, expected) in [
        (
            route_to("Sales", "", ""),
            "project `wa-support` has no issue category `Sales`",
        ),
        (
            route_to("", "ghost", ""),
            "Redmine has no active user with the login `ghost`",
        ),
    ] {
        let server = redmine().await;
        mount_routing_lists(&server).await;
        let err = connector(&server)
            .route(&TicketRef("1".into()), &routing)
            .await
            .expect_err("refused");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("http"), "{text}");
        assert!(writes(&server).await.is_empty());
    }
}

#[tokio::test]
async fn explains_that_logins_need_an_admin_key_and_renamed_priorities() {
    let server = redmine().await;
    Mock::given(method("GET"))
        .and(path("/users.json"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/enumerations/issue_priorities.json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issue_priorities": [
                {"id": 1, "name": "Niedrig", "is_default": false, "active": true},
                {"id": 2, "name": "Normal", "is_default": true, "active": true},
                {"id": 3, "name": "Hoch", "is_default": false, "active": true}
            ]})),
        )
        .mount(&server)
        .await;
    let connector = connector(&server);
    let err = connector
        .route(&TicketRef("1".into()), &route_to("", "alex", ""))
        .await
        .expect_err("not an admin");
    assert!(
        err.to_string()
            .contains("give the assignee's numeric user id"),
        "{err}"
    );
    let err = connector
        .route(&TicketRef("1".into()), &route_to("", "", "high"))
        .await
        .expect_err("no High");
    assert!(
        err.to_string()
            .contains("Redmine has no active issue priority named `High`"),
        "{err}"
    );
    assert!(writes(&server).await.is_empty());
}

#[tokio::test]
async fn tells_closed_open_and_missing_issues_apart() {
    for (closed, missing, expected) in [
        (false, false, false),
        (true, false, true),
        (false, true, true),
    ] {
        let server = redmine().await;
        if missing {
            Mock::given(method("GET"))
                .and(path("/issues/1.json"))
                .respond_with(ResponseTemplate::new(404))
                .with_priority(1)
                .mount(&server)
                .await;
        } else {
            let issue = routed_issue(closed, 2, None, None, vec![]);
            mount_routed(&server, issue.clone(), issue).await;
        }
        let resolved = connector(&server)
            .is_resolved(&TicketRef("1".into()))
            .await
            .expect("read");
        assert_eq!(resolved, expected, "closed {closed}, missing {missing}");
    }
    let server = redmine().await;
    assert!(connector(&server)
        .is_resolved(&TicketRef("RT-1".into()))
        .await
        .is_err());
}

#[test]
fn writes_the_routing_note() {
    assert_eq!(routing_note(None, &[]), None);
    assert_eq!(
        routing_note(Some(""), &["vip".into()]).as_deref(),
        Some("wabridge: the customer asked for a person.\nwabridge: tags: vip\n[wa:routing]")
    );
}
