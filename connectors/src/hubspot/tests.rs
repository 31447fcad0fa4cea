//! The HubSpot connector against wiremock, with requests and answers shaped like HubSpot's
//! documented API (see `/work/shared/reference/crm-and-ticketing.md` B.1).

use std::time::Duration;

use chrono::TimeZone as _;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
use crate::conformance::crm::{self, CrmSubject, CONTACT_ID, OUTBOUND_ID};
use crate::conformance::{self, Target, MESSAGE_ID};
use crate::{Connector, ConnectorConfig, Secret};

const TOKEN: &str = "pat-eu1-11111111-2222-3333-4444-555555555555";
const APP_SECRET: &str = "hs-app-secret-0f3a";
const PUBLIC_URL: &str = "https://wabridge.example.com";
const WEBHOOK_PATH: &str = "/connectors/hubspot/webhook";
/// A deal stage change as HubSpot posts it (reference B.1), with `occurredAt` in 2026.
const DEAL_WON_BODY: &str = r#"[{"eventId":567890123,"subscriptionId":234567,"portalId":12345678,"appId":987654,"occurredAt":1790000000000,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":65059681032,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI","sourceId":"userId:45678"}]"#;
/// `X-HubSpot-Request-Timestamp` for the vectors below.
const SIGNED_AT_MS: i64 = 1_790_000_001_000;
/// base64(HMAC-SHA256(APP_SECRET, "POST" + PUBLIC_URL + WEBHOOK_PATH + DEAL_WON_BODY +
/// "1790000001000")), computed with Python's `hmac` module, not with this crate.
const DEAL_WON_SIGNATURE: &str = "qWhoIG13fhGa15JYTX0gSqfJFAk/xd7VDiGDKRPdXvg=";
/// The same with the query `?tag=a%3Ab%40c` (signed decoded: `?tag=a:b@c`).
const DEAL_WON_SIGNATURE_WITH_QUERY: &str = "Ubm3DxpnuXZCeVyqAg+2RSsILatbmKsLo3Rog5lh9vc=";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn upsert_answer(id: &str, new: bool) -> Value {
    json!({
        "status": "COMPLETE",
        "results": [{
            "id": id, "new": new,
            "properties": {"createdate": "2026-11-27T09:30:01.123Z", "hs_object_id": id,
                           "lastmodifieddate": "2026-11-27T09:30:01.123Z",
                           "phone": "+96890000001", "whatsapp_id": "96890000001"},
            "createdAt": "2026-11-27T09:30:01.123Z", "updatedAt": "2026-11-27T09:30:01.123Z",
            "archived": false
        }],
        "startedAt": "2026-11-27T09:30:01.100Z", "completedAt": "2026-11-27T09:30:01.150Z"
    })
}

fn labels(type_id: u64) -> Value {
    json!({"results": [
        {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": null},
        {"category": "USER_DEFINED", "typeId": 3, "label": "Follow-up"}
    ]})
}

/// Answers a batch create like HubSpot: 201 with one result per input, ids from 9001.
struct BatchCreated;

impl Respond for BatchCreated {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let results: Vec<Value> = body["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, input)| {
                json!({"id": (9001 + i).to_string(), "properties": input["properties"],
                       "createdAt": "2026-11-27T09:31:00.000Z",
                       "updatedAt": "2026-11-27T09:31:00.000Z", "archived": false})
            })
            .collect();
        ResponseTemplate::new(201).set_body_json(json!({
            "status": "COMPLETE", "results": results,
            "startedAt": "2026-11-27T09:31:00.000Z", "completedAt": "2026-11-27T09:31:00.100Z"
        }))
    }
}

/// Mounts HubSpot's answers: contact 512 exists (not new), no entries logged on it yet.
async fn mount_hubspot(server: &MockServer, auth: &str) {
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(upsert_answer("512", false)))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/crm/v3/objects/contacts/\d+$"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "512", "properties": {"firstname": "Aisha"}, "archived": false
        })))
        .mount(server)
        .await;
    for (object_type, type_id) in [("communications", 81), ("notes", 202)] {
        Mock::given(method("GET"))
            .and(path(format!(
                "/crm/v4/associations/{object_type}/contacts/labels"
            )))
            .and(header("Authorization", auth))
            .respond_with(ResponseTemplate::new(200).set_body_json(labels(type_id)))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/crm/v3/objects/{object_type}/batch/create")))
            .and(header("Authorization", auth))
            .respond_with(BatchCreated)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!(
                r"^/crm/v4/objects/contacts/\d+/associations/{object_type}$"
            )))
            .and(header("Authorization", auth))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/crm/v3/objects/{object_type}/batch/read")))
            .and(header("Authorization", auth))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "status": "COMPLETE", "results": [],
                "startedAt": "2026-11-27T09:31:00.000Z", "completedAt": "2026-11-27T09:31:00.010Z"
            })))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(header("Authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"id": "512", "properties": {"createdate": "2026-11-01T10:00:00Z",
                         "hs_object_id": "512", "lastmodifieddate": "2026-11-02T10:00:00Z"},
                         "createdAt": "2026-11-01T10:00:00Z", "updatedAt": "2026-11-02T10:00:00Z",
                         "archived": false}],
            "paging": {"next": {"after": "513",
                       "link": "https://api.hubapi.com/crm/v3/objects/contacts?after=513"}}
        })))
        .mount(server)
        .await;
}

struct Hubspot;

#[async_trait::async_trait]
impl CrmSubject for Hubspot {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_hubspot(server, &bearer(conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn Crm>, ConnectorError> {
        let mut config = HubspotConfig::new(target.secret.clone());
        config.url = target.url.clone();
        config.timeout_secs = target.timeout.as_secs().max(1);
        // The same secret as app secret: the suite then also checks it never leaks.
        config.app_secret = Some(target.secret.clone());
        config.public_url = Some(PUBLIC_URL.to_owned());
        Ok(Box::new(HubspotConnector::new(config)?))
    }
}

#[tokio::test]
async fn hubspot_passes_the_crm_conformance_suite() {
    crm::run_crm_suite(&Hubspot).await;
}

async fn hubspot() -> MockServer {
    let server = MockServer::start().await;
    mount_hubspot(&server, &bearer(TOKEN)).await;
    server
}

fn config(server: &MockServer) -> HubspotConfig {
    let mut config = HubspotConfig::new(Secret::new(TOKEN));
    config.url = server.uri();
    config.timeout_secs = 5;
    config.app_secret = Some(Secret::new(APP_SECRET));
    config.public_url = Some(PUBLIC_URL.to_owned());
    config
}

fn connector(server: &MockServer) -> HubspotConnector {
    HubspotConnector::new(config(server)).expect("builds")
}

/// JSON bodies of the requests received for `verb` + exact `route`.
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

fn contact_512() -> CrmContactId {
    CrmContactId(CONTACT_ID.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Contacts

#[tokio::test]
async fn upserts_on_the_unique_property_with_digits_and_the_e164_phone() {
    let server = hubspot().await;
    let id = connector(&server)
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("upserted");
    assert_eq!(id, CrmContactId("512".into()));
    assert_eq!(
        received(&server, "POST", "/crm/v3/objects/contacts/batch/upsert").await,
        [json!({"inputs": [{
            "idProperty": "whatsapp_id",
            "id": "96890000001",
            "properties": {"phone": "+96890000001"}
        }]})]
    );
    // An existing contact keeps the name a CRM user may have edited.
    assert!(received(&server, "PATCH", "/crm/v3/objects/contacts/512")
        .await
        .is_empty());
}

#[tokio::test]
async fn names_the_contact_from_the_profile_only_when_hubspot_created_it() {
    let server = hubspot().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(ResponseTemplate::new(200).set_body_json(upsert_answer("613", true)))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut contact = conformance::conversation().contact;
    contact.profile_name = Some("  Aisha Al-Said Jr ".into());
    let id = connector(&server)
        .upsert_contact(&contact)
        .await
        .expect("upserted");
    assert_eq!(id, CrmContactId("613".into()));
    assert_eq!(
        received(&server, "PATCH", "/crm/v3/objects/contacts/613").await,
        [json!({"properties": {"firstname": "Aisha", "lastname": "Al-Said Jr"}})]
    );
}

#[tokio::test]
async fn a_failed_naming_of_a_new_contact_only_warns() {
    let server = hubspot().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(ResponseTemplate::new(200).set_body_json(upsert_answer("613", true)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(502))
        .with_priority(1)
        .mount(&server)
        .await;
    let id = connector(&server)
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("the contact exists, so the upsert succeeded");
    assert_eq!(id, CrmContactId("613".into()));
}

#[tokio::test]
async fn a_contact_with_only_a_bsuid_needs_bsuid_property() {
    let server = hubspot().await;
    let contact = Contact {
        wa_id: None,
        user_id: Some("OM.1349120865530".into()),
        profile_name: Some("Aisha".into()),
    };
    let err = connector(&server)
        .upsert_contact(&contact)
        .await
        .expect_err("no number and no bsuid_property");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("bsuid_property"), "{err}");
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());

    let mut with_bsuid = config(&server);
    with_bsuid.bsuid_property = Some("whatsapp_bsuid".into());
    let connector = HubspotConnector::new(with_bsuid).expect("builds");
    connector.upsert_contact(&contact).await.expect("upserted");
    // With a number too, the BSUID is filled so the contact is found when it is withheld.
    connector
        .upsert_contact(&Contact {
            wa_id: Some("96890000001".into()),
            ..contact.clone()
        })
        .await
        .expect("upserted");
    assert_eq!(
        received(&server, "POST", "/crm/v3/objects/contacts/batch/upsert").await,
        [
            json!({"inputs": [{"idProperty": "whatsapp_bsuid", "id": "OM.1349120865530",
                               "properties": {}}]}),
            json!({"inputs": [{"idProperty": "whatsapp_id", "id": "96890000001",
                               "properties": {"phone": "+96890000001",
                                              "whatsapp_bsuid": "OM.1349120865530"}}]}),
        ]
    );
}

#[tokio::test]
async fn a_207_upsert_is_classified_by_its_error_category() {
    for (category, retryable) in [("VALIDATION_ERROR", false), ("RATE_LIMITS", true)] {
        let server = hubspot().await;
        Mock::given(method("POST"))
            .and(path("/crm/v3/objects/contacts/batch/upsert"))
            .respond_with(ResponseTemplate::new(207).set_body_json(json!({
                "status": "COMPLETE", "results": [], "numErrors": 1,
                "errors": [{"status": "error", "category": category,
                            "message": "Property values were not valid", "context": {}}],
                "startedAt": "2026-11-27T09:30:01.100Z", "completedAt": "2026-11-27T09:30:01.150Z"
            })))
            .with_priority(1)
            .mount(&server)
            .await;
        let err = connector(&server)
            .upsert_contact(&conformance::conversation().contact)
            .await
            .expect_err("207 is a failure");
        assert_eq!(err.is_retryable(), retryable, "{category}: {err}");
        assert!(err.to_string().contains(category), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Timeline

#[tokio::test]
async fn logs_one_whatsapp_communication_per_message_in_one_batch_call() {
    let server = hubspot().await;
    connector(&server)
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect("logged");
    let batches = received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create",
    )
    .await;
    assert_eq!(batches.len(), 1, "one API call for the whole batch");
    let inputs = batches[0]["inputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(inputs.len(), 2);
    let association = json!([{"to": {"id": "512"},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 81}]}]);
    for (input, (id, direction, timestamp)) in inputs.iter().zip([
        (
            MESSAGE_ID,
            "Inbound WhatsApp message</strong> from Aisha (+96890000001) to +15550783881",
            "2026-11-27T09:30:00.000Z",
        ),
        (
            OUTBOUND_ID,
            "Outbound WhatsApp message</strong> from +15550783881 to Aisha (+96890000001)",
            "2026-11-27T09:31:00.000Z",
        ),
    ]) {
        let properties = &input["properties"];
        assert_eq!(properties["hs_communication_channel_type"], "WHATS_APP");
        assert_eq!(properties["hs_communication_logged_from"], "CRM");
        assert_eq!(properties["hs_timestamp"], timestamp);
        assert!(properties.get("hubspot_owner_id").is_none());
        let body = properties["hs_communication_body"]
            .as_str()
            .unwrap_or_default();
        assert!(body.contains(direction), "{body}");
        assert!(body.ends_with(&format!("<p>[wa:{id}]</p>")), "{body}");
        assert_eq!(input["associations"], association);
    }
    let outbound = inputs[1]["properties"]["hs_communication_body"]
        .as_str()
        .unwrap_or_default();
    assert!(
        outbound.contains("<p>It left our warehouse today.<br>Tracking: 1Z999</p>"),
        "{outbound}"
    );
    // Fresh: no lookup of what is on the timeline.
    assert!(
        received(&server, "POST", "/crm/v3/objects/communications/batch/read")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn escapes_html_in_message_text() {
    let conversation = conformance::conversation();
    let activity = Activity {
        id: "wamid.X".into(),
        direction: Direction::Inbound,
        at: chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 30, 0)
            .single()
            .expect("time"),
        text: "<script>alert(1)</script> & \"quotes\"".into(),
    };
    let body = entry_body(&conversation, &activity);
    assert!(
        body.contains("<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;</p>"),
        "{body}"
    );
}

#[tokio::test]
async fn uses_the_association_type_hubspot_reports_and_looks_it_up_once() {
    let server = hubspot().await;
    Mock::given(method("GET"))
        .and(path("/crm/v4/associations/communications/contacts/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"category": "USER_DEFINED", "typeId": 7, "label": "WhatsApp thread"},
            {"category": "HUBSPOT_DEFINED", "typeId": 4711, "label": null}
        ]})))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    let connector = connector(&server);
    for activity in crm::activities() {
        connector
            .log_activity(
                &contact_512(),
                &conformance::conversation(),
                &[activity],
                false,
            )
            .await
            .expect("logged");
    }
    let batches = received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create",
    )
    .await;
    assert_eq!(batches.len(), 2);
    for batch in batches {
        assert_eq!(
            batch["inputs"][0]["associations"][0]["types"],
            json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4711}])
        );
    }
}

#[tokio::test]
async fn fails_permanently_when_hubspot_defines_no_association() {
    let server = hubspot().await;
    Mock::given(method("GET"))
        .and(path("/crm/v4/associations/communications/contacts/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect_err("no association type");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn logs_notes_with_the_note_association_and_owner_when_configured() {
    let server = hubspot().await;
    let mut config = config(&server);
    config.activity = ActivityObject::Notes;
    config.owner_id = Some("123".into());
    HubspotConnector::new(config)
        .expect("builds")
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect("logged");
    assert!(received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create"
    )
    .await
    .is_empty());
    let batches = received(&server, "POST", "/crm/v3/objects/notes/batch/create").await;
    assert_eq!(batches.len(), 1);
    let first = &batches[0]["inputs"][0];
    assert_eq!(
        first["properties"]["hs_timestamp"],
        "2026-11-27T09:30:00.000Z"
    );
    assert_eq!(first["properties"]["hubspot_owner_id"], "123");
    assert!(first["properties"]
        .get("hs_communication_channel_type")
        .is_none());
    let body = first["properties"]["hs_note_body"]
        .as_str()
        .unwrap_or_default();
    assert!(body.contains("Inbound WhatsApp message"), "{body}");
    assert!(body.contains(&marker(MESSAGE_ID)), "{body}");
    assert_eq!(
        first["associations"][0]["types"][0]["associationTypeId"],
        json!(202)
    );
}

/// The contact's communications: 9001 (holding `marker`) on page one, 9002 on page two.
async fn mount_timeline(server: &MockServer, first_body: &str) {
    Mock::given(method("GET"))
        .and(path(
            "/crm/v4/objects/contacts/512/associations/communications",
        ))
        .and(query_param("after", "cursor-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"toObjectId": 9002, "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 82, "label": null}]}
        ]})))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/crm/v4/objects/contacts/512/associations/communications",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"toObjectId": 9001, "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 82, "label": null}]}],
            "paging": {"next": {"after": "cursor-2",
                                "link": "https://api.hubapi.com/crm/v4/…?after=cursor-2"}}
        })))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/communications/batch/read"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE",
            "results": [
                {"id": "9002", "properties": {"hs_communication_body": "<p>Unrelated call notes</p>",
                 "hs_object_id": "9002"}, "archived": false},
                {"id": "9001", "properties": {"hs_communication_body": first_body,
                 "hs_object_id": "9001"}, "archived": false}
            ]
        })))
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn skips_messages_already_on_the_timeline_when_maybe_delivered() {
    let server = hubspot().await;
    mount_timeline(
        &server,
        &format!("<p><strong>Inbound WhatsApp message</strong> …</p><p>[wa:{MESSAGE_ID}]</p>"),
    )
    .await;
    connector(&server)
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            true,
        )
        .await
        .expect("logged");
    // Both pages were listed; the bodies were read newest first.
    let reads = received(&server, "POST", "/crm/v3/objects/communications/batch/read").await;
    assert_eq!(
        reads,
        [json!({"properties": ["hs_communication_body"],
                "inputs": [{"id": "9002"}, {"id": "9001"}]})]
    );
    let batches = received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create",
    )
    .await;
    assert_eq!(batches.len(), 1);
    let inputs = batches[0]["inputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(inputs.len(), 1, "only the message not yet logged");
    let body = inputs[0]["properties"]["hs_communication_body"]
        .as_str()
        .unwrap_or_default();
    assert!(body.contains(&marker(OUTBOUND_ID)), "{body}");
}

#[tokio::test]
async fn writes_nothing_when_every_message_is_already_there() {
    let server = hubspot().await;
    mount_timeline(
        &server,
        &format!("<p>[wa:{MESSAGE_ID}]</p> and <p>[wa:{OUTBOUND_ID}]</p>"),
    )
    .await;
    let mut twice = crm::activities();
    twice.extend(crm::activities());
    connector(&server)
        .log_activity(&contact_512(), &conformance::conversation(), &twice, true)
        .await
        .expect("logged");
    assert!(received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create"
    )
    .await
    .is_empty());
}

#[tokio::test]
async fn writes_a_message_given_twice_once() {
    let server = hubspot().await;
    let mut twice = crm::activities();
    twice.extend(crm::activities());
    connector(&server)
        .log_activity(&contact_512(), &conformance::conversation(), &twice, false)
        .await
        .expect("logged");
    let batches = received(
        &server,
        "POST",
        "/crm/v3/objects/communications/batch/create",
    )
    .await;
    assert_eq!(batches[0]["inputs"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_partially_written_batch_says_how_much_was_written() {
    let server = hubspot().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/communications/batch/create"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({
            "status": "COMPLETE",
            "results": [{"id": "9001", "properties": {}, "archived": false}],
            "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                        "message": "hs_communication_body is too long", "context": {}}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect_err("partial");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("1 of 2 written"), "{err}");
}

#[tokio::test]
async fn refuses_a_contact_id_that_is_not_a_hubspot_id() {
    let server = hubspot().await;
    let err = connector(&server)
        .log_activity(
            &CrmContactId("96890000001@whatsapp".into()),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect_err("not an id");
    assert!(!err.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Rate limits

#[tokio::test]
async fn retries_a_ten_secondly_429_after_retry_after_or_the_interval() {
    let limit = json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT", "correlationId": "c0ffee", "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "private-app"});
    for (retry_after, expected) in [(Some("3"), 3), (None, 10)] {
        let server = hubspot().await;
        let mut answer = ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            .insert_header("X-HubSpot-RateLimit-Max", "190")
            .insert_header("X-HubSpot-RateLimit-Remaining", "0")
            .set_body_json(limit.clone());
        if let Some(value) = retry_after {
            answer = answer.insert_header("Retry-After", value);
        }
        Mock::given(method("POST"))
            .respond_with(answer)
            .with_priority(1)
            .mount(&server)
            .await;
        let err = connector(&server)
            .upsert_contact(&conformance::conversation().contact)
            .await
            .expect_err("429");
        match err {
            ConnectorError::Retryable { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(expected)))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn waits_for_a_full_hour_after_the_daily_limit() {
    let server = hubspot().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "status": "error", "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT", "correlationId": "c0ffee", "policyName": "DAILY",
            "groupName": "private-app"
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = connector(&server)
        .log_activity(
            &contact_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect_err("429");
    match &err {
        ConnectorError::Retryable {
            retry_after: Some(wait),
            reason,
        } => {
            assert!(
                *wait >= Duration::from_secs(3600) && *wait <= Duration::from_secs(7200),
                "{wait:?}"
            );
            assert!(reason.contains("daily API limit"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// check()

#[tokio::test]
async fn check_reads_a_contact_and_the_association_schema() {
    let server = hubspot().await;
    connector(&server).check().await.expect("check passes");
    let requests = server.received_requests().await.unwrap_or_default();
    let paths: Vec<String> = requests.iter().map(|r| r.url.path().to_owned()).collect();
    assert_eq!(
        paths,
        [
            "/crm/v3/objects/contacts",
            "/crm/v4/associations/communications/contacts/labels"
        ]
    );
    assert_eq!(requests[0].url.query(), Some("limit=1&archived=false"));
}

#[tokio::test]
async fn check_names_the_problem_on_401_and_403() {
    for (status, body, expected) in [
        (
            401,
            json!({"status": "error", "message": "Authentication credentials not found.",
                     "category": "INVALID_AUTHENTICATION"}),
            "the HubSpot token is wrong or expired",
        ),
        (
            403,
            json!({"status": "error",
                     "message": "This app hasn't been granted all required scopes to make this call.",
                     "errors": [{"message": "One or more of the following scopes are required.",
                                 "context": {"requiredGranularScopes": ["crm.objects.contacts.read"]}}],
                     "category": "MISSING_SCOPES"}),
            "lacks a scope; it needs crm.objects.contacts.read",
        ),
    ] {
        let server = hubspot().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .with_priority(1)
            .mount(&server)
            .await;
        let err = connector(&server).check().await.expect_err("fails");
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.to_string().contains(TOKEN), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook signatures

fn signed_headers(signature: Option<&str>, timestamp: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(signature) = signature {
        headers.insert(
            "X-HubSpot-Signature-v3",
            HeaderValue::from_str(signature).expect("header"),
        );
    }
    if let Some(timestamp) = timestamp {
        headers.insert(
            "X-HubSpot-Request-Timestamp",
            HeaderValue::from_str(timestamp).expect("header"),
        );
    }
    headers
}

fn received_at(offset_ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .timestamp_millis_opt(SIGNED_AT_MS + offset_ms)
        .single()
        .expect("time")
}

fn webhook<'a>(
    path_and_query: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
    offset_ms: i64,
) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        path_and_query,
        headers,
        body,
        received_at: received_at(offset_ms),
    }
}

fn webhook_connector() -> HubspotConnector {
    let mut config = HubspotConfig::new(Secret::new(TOKEN));
    config.app_secret = Some(Secret::new(APP_SECRET));
    config.public_url = Some(PUBLIC_URL.to_owned());
    HubspotConnector::new(config).expect("builds")
}

/// base64(HMAC-SHA256) written out here, step by step, as HubSpot documents it.
fn sign(secret: &str, method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    use base64::Engine as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let source = format!("{method}{uri}{body}{timestamp}");
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, source.as_bytes()))
}

#[test]
fn the_test_signer_matches_the_python_vector() {
    assert_eq!(
        sign(
            APP_SECRET,
            "POST",
            &format!("{PUBLIC_URL}{WEBHOOK_PATH}"),
            DEAL_WON_BODY,
            &SIGNED_AT_MS.to_string()
        ),
        DEAL_WON_SIGNATURE
    );
}

#[test]
fn accepts_a_valid_v3_signature() {
    let connector = webhook_connector();
    let timestamp = SIGNED_AT_MS.to_string();
    let headers = signed_headers(Some(DEAL_WON_SIGNATURE), Some(&timestamp));
    for offset_ms in [0, 299_000, -299_000] {
        assert_eq!(
            connector.verify_webhook(&webhook(
                WEBHOOK_PATH,
                &headers,
                DEAL_WON_BODY.as_bytes(),
                offset_ms
            )),
            Ok(()),
            "{offset_ms}"
        );
    }
    // The query is signed with HubSpot's decodings (%3A → ':', %40 → '@').
    let headers = signed_headers(Some(DEAL_WON_SIGNATURE_WITH_QUERY), Some(&timestamp));
    assert_eq!(
        connector.verify_webhook(&webhook(
            "/connectors/hubspot/webhook?tag=a%3Ab%40c",
            &headers,
            DEAL_WON_BODY.as_bytes(),
            0
        )),
        Ok(())
    );
}

#[test]
fn rejects_a_wrong_signature_a_changed_body_or_another_url() {
    let connector = webhook_connector();
    let timestamp = SIGNED_AT_MS.to_string();
    let wrong = sign(
        "another-secret",
        "POST",
        &format!("{PUBLIC_URL}{WEBHOOK_PATH}"),
        DEAL_WON_BODY,
        &timestamp,
    );
    let cases: [(String, &str, String); 4] = [
        (wrong, WEBHOOK_PATH, DEAL_WON_BODY.to_owned()),
        (
            DEAL_WON_SIGNATURE.to_owned(),
            WEBHOOK_PATH,
            DEAL_WON_BODY.replace("closedwon", "closedlost"),
        ),
        (
            DEAL_WON_SIGNATURE.to_owned(),
            "/connectors/other/webhook",
            DEAL_WON_BODY.to_owned(),
        ),
        (
            "not base64!".to_owned(),
            WEBHOOK_PATH,
            DEAL_WON_BODY.to_owned(),
        ),
    ];
    for (signature, route, body) in cases {
        let headers = signed_headers(Some(&signature), Some(&timestamp));
        let result = connector.verify_webhook(&webhook(route, &headers, body.as_bytes(), 0));
        assert!(
            matches!(result, Err(WebhookRejection::Unauthorized(_))),
            "{route} {signature}: {result:?}"
        );
    }
    // Another timestamp in the header than the one signed.
    let headers = signed_headers(Some(DEAL_WON_SIGNATURE), Some("1790000002000"));
    assert!(matches!(
        connector.verify_webhook(&webhook(
            WEBHOOK_PATH,
            &headers,
            DEAL_WON_BODY.as_bytes(),
            0
        )),
        Err(WebhookRejection::Unauthorized(_))
    ));
}

#[test]
fn rejects_a_stale_or_future_timestamp_even_when_correctly_signed() {
    let connector = webhook_connector();
    let timestamp = SIGNED_AT_MS.to_string();
    let headers = signed_headers(Some(DEAL_WON_SIGNATURE), Some(&timestamp));
    for offset_ms in [300_001, -300_001, 3_600_000] {
        let result = connector.verify_webhook(&webhook(
            WEBHOOK_PATH,
            &headers,
            DEAL_WON_BODY.as_bytes(),
            offset_ms,
        ));
        match result {
            Err(WebhookRejection::Unauthorized(reason)) => {
                assert!(reason.contains("5 minutes"), "{reason}")
            }
            other => panic!("{offset_ms}: {other:?}"),
        }
    }
}

#[test]
fn rejects_missing_or_malformed_headers() {
    let connector = webhook_connector();
    let timestamp = SIGNED_AT_MS.to_string();
    for headers in [
        signed_headers(None, Some(&timestamp)),
        signed_headers(Some(DEAL_WON_SIGNATURE), None),
        signed_headers(Some(DEAL_WON_SIGNATURE), Some("yesterday")),
        signed_headers(None, None),
    ] {
        assert!(matches!(
            connector.verify_webhook(&webhook(
                WEBHOOK_PATH,
                &headers,
                DEAL_WON_BODY.as_bytes(),
                0
            )),
            Err(WebhookRejection::Unauthorized(_))
        ));
    }
}

#[test]
fn takes_no_webhooks_without_an_app_secret() {
    let connector = HubspotConnector::new(HubspotConfig::new(Secret::new(TOKEN))).expect("builds");
    let timestamp = SIGNED_AT_MS.to_string();
    let headers = signed_headers(Some(DEAL_WON_SIGNATURE), Some(&timestamp));
    assert_eq!(
        connector.verify_webhook(&webhook(
            WEBHOOK_PATH,
            &headers,
            DEAL_WON_BODY.as_bytes(),
            0
        )),
        Err(WebhookRejection::NotSupported)
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook notifications → events

fn deal_answer(id: &str, stage: &str, contacts: &[&str]) -> Value {
    let mut deal = json!({
        "id": id,
        "properties": {"amount": "12.5", "closedate": "2026-11-27T09:00:00Z",
                       "createdate": "2026-11-20T08:00:00Z", "deal_currency_code": "OMR",
                       "dealname": "Order 55012", "dealstage": stage,
                       "hs_lastmodifieddate": "2026-11-27T09:00:01Z", "hs_object_id": id,
                       "hubspot_owner_id": "123", "pipeline": "default"},
        "createdAt": "2026-11-20T08:00:00Z", "updatedAt": "2026-11-27T09:00:01Z",
        "archived": false
    });
    if !contacts.is_empty() {
        let results: Vec<Value> = contacts
            .iter()
            .map(|c| json!({"id": c, "type": "deal_to_contact"}))
            .collect();
        deal["associations"] = json!({"contacts": {"results": results}});
    }
    deal
}

async fn mount_deal(server: &MockServer, id: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/crm/v3/objects/deals/{id}")))
        .and(header("Authorization", bearer(TOKEN).as_str()))
        .respond_with(answer)
        .mount(server)
        .await;
}

async fn mount_contacts(server: &MockServer, contacts: Value) {
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .and(header("Authorization", bearer(TOKEN).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE", "results": contacts,
            "startedAt": "2026-11-27T09:00:02Z", "completedAt": "2026-11-27T09:00:02Z"
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn turns_a_deal_stage_change_into_an_event_with_the_contact_phone() {
    let server = hubspot().await;
    mount_deal(
        &server,
        "65059681032",
        ResponseTemplate::new(200).set_body_json(deal_answer(
            "65059681032",
            "closedwon",
            &["700", "512"],
        )),
    )
    .await;
    mount_contacts(
        &server,
        json!([
            {"id": "512", "properties": {"firstname": "Aisha", "lastname": "Al-Said",
             "phone": "+968 9000 0001", "mobilephone": null, "email": null,
             "hs_object_id": "512", "whatsapp_id": "96890000001"}, "archived": false},
            {"id": "700", "properties": {"firstname": "Omar", "lastname": null,
             "phone": null, "mobilephone": null, "email": "omar@example.com",
             "hs_object_id": "700", "whatsapp_id": null}, "archived": false}
        ]),
    )
    .await;
    let events = connector(&server)
        .events_from_webhook(DEAL_WON_BODY.as_bytes())
        .await
        .expect("events");
    assert_eq!(
        events,
        [SourceEvent {
            id: "hubspot-567890123".into(),
            event: json!({
                "event": "deal.propertyChange",
                "event_id": "567890123",
                "portal_id": 12345678,
                "object_type": "deals",
                "object_id": "65059681032",
                "object": deal_answer("65059681032", "closedwon", &[])["properties"],
                // Omar (first) has no phone: the first associated contact with one is used.
                "contact": {"id": "512", "name": "Aisha Al-Said", "firstname": "Aisha",
                            "lastname": "Al-Said", "email": null, "phone": "+96890000001"},
                "property": {"name": "dealstage", "value": "closedwon"},
                "change_source": "CRM_UI",
                "occurred_at": "2026-09-21T14:13:20.000Z"
            }),
        }]
    );
    // The deal was read with its contacts and the properties mappings need.
    let deal_reads: Vec<_> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/crm/v3/objects/deals/65059681032")
        .map(|r| r.url.query_pairs().into_owned().collect::<Vec<_>>())
        .collect();
    assert_eq!(
        deal_reads,
        [vec![
            (
                "properties".to_owned(),
                "dealname,dealstage,pipeline,amount,deal_currency_code,closedate,hubspot_owner_id"
                    .to_owned()
            ),
            ("associations".to_owned(), "contacts".to_owned()),
        ]]
    );
    assert_eq!(
        received(&server, "POST", "/crm/v3/objects/contacts/batch/read").await,
        [
            json!({"properties": ["firstname", "lastname", "email", "phone", "mobilephone",
                               "lifecyclestage", "hubspot_owner_id", "whatsapp_id"],
                "inputs": [{"id": "700"}, {"id": "512"}]})
        ]
    );
}

#[tokio::test]
async fn turns_a_contact_creation_into_an_event_without_a_second_read() {
    let server = hubspot().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/901"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "901",
            "properties": {"firstname": "Sara", "lastname": null, "mobilephone": "0096895550101",
                           "phone": "24 123 456", "hs_object_id": "901"},
            "createdAt": "2026-11-27T09:00:00Z", "updatedAt": "2026-11-27T09:00:00Z",
            "archived": false
        })))
        .mount(&server)
        .await;
    let body = r#"[{"eventId":1001,"subscriptionId":1,"portalId":12345678,"appId":987654,"occurredAt":1790000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":901,"changeFlag":"CREATED","changeSource":"CRM"}]"#;
    let events = connector(&server)
        .events_from_webhook(body.as_bytes())
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "hubspot-1001");
    assert_eq!(events[0].event["event"], "contact.creation");
    assert_eq!(events[0].event["property"], Value::Null);
    assert_eq!(
        events[0].event["contact"],
        json!({"id": "901", "name": "Sara", "firstname": "Sara", "lastname": null,
               "email": null, "phone": "+96895550101"})
    );
    assert!(
        received(&server, "POST", "/crm/v3/objects/contacts/batch/read")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn skips_notifications_it_cannot_resolve_and_keeps_the_others() {
    let server = hubspot().await;
    mount_deal(
        &server,
        "1",
        ResponseTemplate::new(404).set_body_json(json!({
            "status": "error", "message": "Object not found.  objectId are usually numeric.",
            "category": "OBJECT_NOT_FOUND"
        })),
    )
    .await;
    mount_deal(
        &server,
        "2",
        ResponseTemplate::new(200).set_body_json(deal_answer("2", "closedwon", &[])),
    )
    .await;
    mount_deal(
        &server,
        "3",
        ResponseTemplate::new(200).set_body_json(deal_answer("3", "closedwon", &["700"])),
    )
    .await;
    mount_deal(
        &server,
        "4",
        ResponseTemplate::new(200).set_body_json(deal_answer("4", "closedwon", &["512"])),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .and(body_partial_json(json!({"inputs": [{"id": "700"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE",
            "results": [{"id": "700", "properties": {"firstname": "Omar", "phone": ""}}]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_contacts(
        &server,
        json!([{"id": "512", "properties": {"firstname": "Aisha", "whatsapp_id": "96890000001"}}]),
    )
    .await;
    let notification = |event: u64, kind: &str, object: u64| {
        json!({"eventId": event, "portalId": 12345678, "occurredAt": 1790000000000_i64,
               "subscriptionType": kind, "objectId": object, "propertyName": "dealstage",
               "propertyValue": "closedwon", "changeSource": "CRM_UI"})
    };
    let body = json!([
        notification(11, "deal.propertyChange", 1),  // deleted since
        notification(12, "deal.propertyChange", 2),  // no contact
        notification(13, "deal.propertyChange", 3),  // contact without phone
        notification(14, "deal.deletion", 4),        // not an event source
        {"eventId": 15, "subscriptionType": "deal.propertyChange"}, // no objectId
        notification(16, "deal.propertyChange", 4),  // fine
        notification(17, "deal.propertyChange", 4),  // fine, same deal: read once
    ]);
    let events = connector(&server)
        .events_from_webhook(body.to_string().as_bytes())
        .await
        .expect("events");
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["hubspot-16", "hubspot-17"]);
    let deal_4_reads = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/crm/v3/objects/deals/4")
        .count();
    assert_eq!(deal_4_reads, 1);
}

#[tokio::test]
async fn a_failing_fetch_fails_the_body_as_classified() {
    let server = hubspot().await;
    mount_deal(
        &server,
        "65059681032",
        ResponseTemplate::new(503).insert_header("Retry-After", "4"),
    )
    .await;
    let err = connector(&server)
        .events_from_webhook(DEAL_WON_BODY.as_bytes())
        .await
        .expect_err("503");
    assert_eq!(
        err,
        ConnectorError::Retryable {
            retry_after: Some(Duration::from_secs(4)),
            reason: "hubspot: reading the object a webhook names: HTTP 503 Service Unavailable: "
                .into()
        }
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_array_of_notifications_is_permanent() {
    let server = hubspot().await;
    for body in [&b"{\"eventId\": 1}"[..], b"not json"] {
        let err = connector(&server)
            .events_from_webhook(body)
            .await
            .expect_err("not an array");
        assert!(!err.is_retryable(), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Building

#[test]
fn builds_from_a_connector_section_as_a_crm() {
    let section: ConnectorConfig = serde_json::from_value(json!({
        "kind": "hubspot", "token": TOKEN, "activity": "notes"
    }))
    .expect("parses");
    assert!(section.validate().is_empty());
    assert!(ConnectorConfig::KINDS.contains(&"hubspot"));
    let context = crate::BuildContext {
        store_dir: std::env::temp_dir(),
        name: "hubspot".into(),
    };
    let Connector { ticketing, crm } = section.build(&context).expect("builds");
    assert!(ticketing.is_none());
    assert_eq!(crm.map(|c| c.kind()), Some("hubspot"));
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let mut config = HubspotConfig::new(Secret::new(TOKEN));
    config.id_property = "".into();
    let err = HubspotConnector::new(config).expect_err("invalid");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("id_property"), "{err}");
}

#[test]
fn debug_output_shows_no_credential() {
    let connector = webhook_connector();
    let debug = format!("{connector:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains(APP_SECRET), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}
