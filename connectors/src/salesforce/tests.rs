//! The Salesforce connector against wiremock, with requests and answers shaped like
//! Salesforce's REST API (see `/work/shared/reference/crm-and-ticketing.md` B.4 and the REST API
//! developer guide: OAuth client credentials flow, sObject rows by external id, query,
//! composite, sObject Collections, error bodies).

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{
    bearer_token, body_string_contains, method, path, query_param, query_param_contains,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::conformance::crm::{self as crm_suite, CrmSubject};
use crate::conformance::{self, Subject, Target};
use crate::{Attachment, BuildContext, ConnectorConfig, Secret, TicketRef};

const CLIENT_ID: &str = "3MVG9lKcPoNINVBIPJjdw1J9LLM82HnFVVX19KY1uA5mu0QqEWhqKpoW3svG3X";
const SECRET: &str = "sf-client-s3cret-4Q7";
const TOKEN: &str = "00D5g000004ABCd!AQ4AQFAKEaccessTOKEN.one";
const FRESH_TOKEN: &str = "00D5g000004ABCd!AQ4AQFAKEaccessTOKEN.two";
const ORG: &str = "00D5g000004ABCdEAG";
/// The connected app's run-as user.
const USER: &str = "0055g00000IntEgAAA";
const AGENT: &str = "0055g00000AgEntAAA";
const CONTACT: &str = "0035g00000XyZabAAB";
const OPEN_CASE: &str = "5005g00000OpEnCAAS";
const NEW_CASE: &str = "5005g00000NeWcAAAQ";
const DIGITS: &str = "96890000001";
const DATA: &str = "/services/data/v62.0";

fn data(rest: &str) -> String {
    format!("{DATA}{rest}")
}

fn sf_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn token_json(instance: &str, token: &str) -> Value {
    json!({
        "access_token": token,
        "signature": "5rW5yN0a3Gjd8Rh7Jf9qFkpYq0EobLYsQOWlx5M3FfU=",
        "instance_url": instance,
        "id": format!("https://login.salesforce.com/id/{ORG}/{USER}"),
        "token_type": "Bearer",
        "issued_at": "1795340400000",
        "scope": "api"
    })
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!([{
        "errorCode": "NOT_FOUND", "message": "The requested resource does not exist"
    }]))
}

fn query_result(records: Vec<Value>) -> Value {
    json!({ "totalSize": records.len(), "done": true, "records": records })
}

fn contact_describe(external: bool) -> Value {
    json!({
        "name": "Contact", "label": "Contact", "custom": false,
        "fields": [
            {"name": "Id", "type": "id", "externalId": false, "unique": false},
            {"name": "LastName", "type": "string", "externalId": false, "unique": false},
            {"name": "MobilePhone", "type": "phone", "externalId": false, "unique": false},
            {"name": "WhatsApp_Id__c", "type": "string", "length": 40, "custom": true,
             "externalId": external, "unique": true}
        ]
    })
}

fn picklist(values: &[&str]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|v| json!({"active": true, "defaultValue": false, "label": v, "value": v}))
            .collect(),
    )
}

fn case_describe(origins: &[&str], restricted: bool) -> Value {
    json!({
        "name": "Case", "label": "Case",
        "fields": [
            {"name": "Id", "type": "id"},
            {"name": "Origin", "type": "picklist", "restrictedPicklist": restricted,
             "picklistValues": picklist(origins)},
            {"name": "Status", "type": "picklist", "restrictedPicklist": false,
             "picklistValues": picklist(&["New", "Working", "Escalated", "Closed"])},
            {"name": "Priority", "type": "picklist", "restrictedPicklist": false,
             "picklistValues": picklist(&["High", "Medium", "Low"])}
        ]
    })
}

fn case_json(id: &str, status: &str, closed: Option<DateTime<Utc>>, description: &str) -> Value {
    json!({
        "attributes": {"type": "Case", "url": data(&format!("/sobjects/Case/{id}"))},
        "Id": id,
        "Status": status,
        "IsClosed": closed.is_some(),
        "ClosedDate": closed.map(sf_time),
        "Description": description
    })
}

fn comment_json(id: &str, case: &str, author: &str, body: &str, at: DateTime<Utc>) -> Value {
    json!({
        "attributes": {"type": "CaseComment", "url": data(&format!("/sobjects/CaseComment/{id}"))},
        "Id": id, "ParentId": case, "CommentBody": body, "CreatedById": author,
        "CreatedDate": sf_time(at)
    })
}

/// Answers a composite request like Salesforce: 201 with an id per create, 204 per update.
fn composite_answer(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let subrequests = body["compositeRequest"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let items: Vec<Value> = subrequests
        .iter()
        .enumerate()
        .map(|(i, sub)| {
            let url = sub["url"].as_str().unwrap_or_default();
            let reference = sub["referenceId"].clone();
            if sub["method"] == "PATCH" {
                return json!({"body": null, "httpHeaders": {}, "httpStatusCode": 204,
                              "referenceId": reference});
            }
            let id = if url.ends_with("/sobjects/Case") {
                NEW_CASE.to_owned()
            } else if url.ends_with("/sobjects/CaseComment") {
                format!("00a5g00000Cmt{i:02}AAA")
            } else {
                format!("0685g00000Fil{i:02}AAA")
            };
            json!({
                "body": {"id": id, "success": true, "errors": []},
                "httpHeaders": {"Location": format!("{url}/{id}")},
                "httpStatusCode": 201,
                "referenceId": reference
            })
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({ "compositeResponse": items }))
}

/// Answers an sObject Collections create like Salesforce: one result per record.
fn collection_answer(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let records = body["records"].as_array().cloned().unwrap_or_default();
    let results: Vec<Value> = (0..records.len())
        .map(|i| json!({"id": format!("00T5g00000Tsk{i:03}AA"), "success": true, "errors": []}))
        .collect();
    ResponseTemplate::new(200).set_body_json(Value::Array(results))
}

async fn mount_login(server: &MockServer, instance: &str, secret: &str, token: &str) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(format!("client_id={CLIENT_ID}")))
        .and(body_string_contains(format!("client_secret={secret}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_json(instance, token)))
        .mount(server)
        .await;
}

/// Mounts Salesforce's answers for `token`: no contact carries the number yet (the upsert
/// creates [`CONTACT`]), [`OPEN_CASE`] is open, every query finds nothing, writes succeed.
async fn mount_data(server: &MockServer, token: &str) {
    let contact = data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"));
    Mock::given(method("GET"))
        .and(path(data("/sobjects/Contact/describe")))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact_describe(true)))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(data("/sobjects/Case/describe")))
        .and(bearer_token(token))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(case_describe(&["Phone", "Email", "Web", "WhatsApp"], false)),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(contact.clone()))
        .and(bearer_token(token))
        .respond_with(not_found())
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(contact))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": CONTACT, "success": true, "errors": [], "created": true
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(data(&format!("/sobjects/Case/{OPEN_CASE}"))))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(200).set_body_json(case_json(
            OPEN_CASE,
            "Working",
            None,
            "Aisha (+96890000001) wrote on WhatsApp, 2026-11-01 10:00:00 UTC:\n\nHello\n\n\
             [wa:wamid.OLDER]",
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(data("/query")))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_result(vec![])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(data("/composite")))
        .and(bearer_token(token))
        .respond_with(composite_answer)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(data("/composite/sobjects")))
        .and(bearer_token(token))
        .respond_with(collection_answer)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(data("/sobjects/CaseComment")))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "00a5g00000NoTeAAAA", "success": true, "errors": []
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/oauth2/userinfo"))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sub": format!("https://login.salesforce.com/id/{ORG}/{USER}"),
            "user_id": USER, "organization_id": ORG, "name": "WhatsApp Integration"
        })))
        .mount(server)
        .await;
}

fn build(target: &Target) -> Result<SalesforceConnector, ConnectorError> {
    let mut config = SalesforceConfig::new(&target.url, CLIENT_ID, target.secret.clone());
    config.timeout_secs = target.timeout.as_secs().max(1);
    SalesforceConnector::new(config)
}

struct Salesforce;

#[async_trait::async_trait]
impl Subject for Salesforce {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount_login(server, &server.uri(), conformance::SECRET, TOKEN).await;
        mount_data(server, TOKEN).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError> {
        build(target)?
            .into_connector()
            .ticketing
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "no ticketing role".into(),
            })
    }

    fn contexts(&self) -> Vec<DeliveryContext> {
        // A recorded ticket is a Case Id (the suite's default "1" is not one).
        vec![
            DeliveryContext::default(),
            recorded(OPEN_CASE, false),
            recorded(OPEN_CASE, true),
        ]
    }
}

#[async_trait::async_trait]
impl CrmSubject for Salesforce {
    async fn mount_happy_path(&self, server: &MockServer) {
        <Self as Subject>::mount_happy_path(self, server).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn Crm>, ConnectorError> {
        build(target)?
            .into_connector()
            .crm
            .ok_or_else(|| ConnectorError::Permanent {
                reason: "no CRM role".into(),
            })
    }
}

#[tokio::test]
async fn salesforce_passes_the_conformance_suite() {
    conformance::run_suite(&Salesforce).await;
}

#[tokio::test]
async fn salesforce_passes_the_crm_conformance_suite() {
    crm_suite::run_crm_suite(&Salesforce).await;
}

fn config(server: &MockServer) -> SalesforceConfig {
    let mut config = SalesforceConfig::new(server.uri(), CLIENT_ID, Secret::new(SECRET));
    config.timeout_secs = 5;
    config
}

fn connector(server: &MockServer) -> SalesforceConnector {
    SalesforceConnector::new(config(server)).expect("builds")
}

async fn salesforce() -> MockServer {
    let server = MockServer::start().await;
    mount_login(&server, &server.uri(), SECRET, TOKEN).await;
    mount_data(&server, TOKEN).await;
    server
}

fn recorded(id: &str, maybe_delivered: bool) -> DeliveryContext {
    DeliveryContext {
        ticket: Some(TicketRef(id.to_owned())),
        maybe_delivered,
    }
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

/// The SOQL of every query sent, in order.
async fn queries(server: &MockServer) -> Vec<String> {
    requests(server, "GET", &data("/query"))
        .await
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// Answers queries whose SOQL contains `needle` with `records`, ahead of the default.
async fn mount_query(server: &MockServer, needle: &str, records: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(data("/query")))
        .and(query_param_contains("q", needle))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_result(records)))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn mount_case(server: &MockServer, case: Value) {
    let id = case["Id"].as_str().unwrap_or_default().to_owned();
    Mock::given(method("GET"))
        .and(path(data(&format!("/sobjects/Case/{id}"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(case))
        .with_priority(1)
        .mount(server)
        .await;
}

async fn composites(server: &MockServer) -> Vec<Value> {
    received(server, "POST", &data("/composite")).await
}

fn subrequests(composite: &Value) -> Vec<Value> {
    composite["compositeRequest"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn deliver(
    connector: &SalesforceConnector,
    message: &InboundMessage,
    context: &DeliveryContext,
) -> Result<Delivered, ConnectorError> {
    TicketSystem::deliver(connector, &conformance::conversation(), message, context).await
}

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

// ---- session ------------------------------------------------------------------------------

#[tokio::test]
async fn logs_in_with_client_credentials_and_calls_the_instance_url() {
    let login = MockServer::start().await;
    let instance = MockServer::start().await;
    mount_login(&login, &instance.uri(), SECRET, TOKEN).await;
    mount_data(&instance, TOKEN).await;
    let connector = connector(&login);

    let id = Crm::upsert_contact(&connector, &conformance::conversation().contact)
        .await
        .expect("upserts");
    assert_eq!(id, CrmContactId(CONTACT.into()));

    let logins = requests(&login, "POST", "/services/oauth2/token").await;
    assert_eq!(logins.len(), 1);
    let form: Vec<(String, String)> = url_pairs(&logins[0].body);
    assert!(form.contains(&("grant_type".into(), "client_credentials".into())));
    assert!(form.contains(&("client_id".into(), CLIENT_ID.into())));
    assert!(form.contains(&("client_secret".into(), SECRET.into())));
    assert_eq!(
        logins[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    // Data calls went to instance_url only, with the bearer token.
    assert!(login
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .all(|r| r.url.path() == "/services/oauth2/token"));
    let lookups = requests(
        &instance,
        "GET",
        &data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}")),
    )
    .await;
    assert_eq!(lookups.len(), 1);
    assert_eq!(
        lookups[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn caches_the_token_across_calls_and_roles() {
    let server = salesforce().await;
    let built = connector(&server).into_connector();
    let (ticketing, crm) = (built.ticketing.expect("ticketing"), built.crm.expect("crm"));
    crm.upsert_contact(&conformance::conversation().contact)
        .await
        .expect("upserts");
    ticketing
        .deliver(
            &conformance::conversation(),
            &conformance::message(),
            &recorded(OPEN_CASE, false),
        )
        .await
        .expect("delivers");
    assert_eq!(
        requests(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn logs_in_again_once_when_the_session_expired() {
    let server = MockServer::start().await;
    // The first login hands out a token Salesforce no longer accepts.
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_json(&server.uri(), TOKEN)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_login(&server, &server.uri(), SECRET, FRESH_TOKEN).await;
    Mock::given(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!([{
            "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"
        }])))
        .mount(&server)
        .await;
    mount_data(&server, FRESH_TOKEN).await;

    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers after one new login");
    assert_eq!(delivered.ticket, TicketRef(OPEN_CASE.into()));
    assert_eq!(
        requests(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        2
    );
    // The refused read was sent again with the fresh token.
    let reads = requests(
        &server,
        "GET",
        &data(&format!("/sobjects/Case/{OPEN_CASE}")),
    )
    .await;
    let tokens: Vec<&str> = reads
        .iter()
        .filter_map(|r| r.headers.get("authorization")?.to_str().ok())
        .collect();
    assert_eq!(
        tokens,
        [
            format!("Bearer {TOKEN}").as_str(),
            format!("Bearer {FRESH_TOKEN}").as_str()
        ]
    );
}

#[tokio::test]
async fn fails_permanently_when_a_fresh_token_is_refused_too() {
    let server = MockServer::start().await;
    mount_login(&server, &server.uri(), SECRET, TOKEN).await;
    Mock::given(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!([{
            "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"
        }])))
        .mount(&server)
        .await;
    let err = Crm::upsert_contact(&connector(&server), &conformance::conversation().contact)
        .await
        .expect_err("refused");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("fresh access token"), "{text}");
    assert!(text.contains("INVALID_SESSION_ID"), "{text}");
    assert!(
        !text.contains(DIGITS) && !text.contains("/services"),
        "{text}"
    );
    assert_eq!(
        requests(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn renews_a_token_once_its_expires_in_has_passed() {
    let server = MockServer::start().await;
    let mut token = token_json(&server.uri(), TOKEN);
    // Shorter than the renewal margin: already due for renewal.
    token["expires_in"] = json!(30);
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .mount(&server)
        .await;
    mount_data(&server, TOKEN).await;
    let connector = connector(&server);
    for _ in 0..2 {
        TicketSystem::note(&connector, &TicketRef(OPEN_CASE.into()), "Note")
            .await
            .expect("noted");
    }
    assert_eq!(
        requests(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn check_explains_a_wrong_client_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_client", "error_description": "invalid client credentials"
        })))
        .mount(&server)
        .await;
    let err = TicketSystem::check(&connector(&server))
        .await
        .expect_err("refused");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("check client_id and client_secret"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn check_explains_an_address_that_is_not_salesforce() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body>Welcome to our intranet</body></html>"),
        )
        .mount(&server)
        .await;
    let err = Crm::check(&connector(&server)).await.expect_err("refused");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("My Domain address"), "{err}");
    // A host without a Salesforce login at all.
    let empty = MockServer::start().await;
    let err = Crm::check(&connector(&empty)).await.expect_err("refused");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("no Salesforce login"), "{err}");
}

#[tokio::test]
async fn check_passes_and_reads_the_field_and_picklists() {
    let server = salesforce().await;
    let connector = connector(&server);
    TicketSystem::check(&connector).await.expect("ticketing ok");
    Crm::check(&connector).await.expect("crm ok");
    assert_eq!(
        requests(&server, "GET", &data("/sobjects/Case/describe"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn check_fails_without_an_external_id_field() {
    let server = salesforce().await;
    Mock::given(method("GET"))
        .and(path(data("/sobjects/Contact/describe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact_describe(false)))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = Crm::check(&connector(&server)).await.expect_err("fails");
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("not marked \"External ID\""),
        "{err}"
    );

    let mut other = config(&server);
    other.external_id_field = "Mobile_WhatsApp__c".into();
    let err = Crm::check(&SalesforceConnector::new(other).expect("builds"))
        .await
        .expect_err("fails");
    assert!(
        err.to_string().contains("has no field Mobile_WhatsApp__c"),
        "{err}"
    );
}

#[tokio::test]
async fn check_fails_when_a_restricted_origin_picklist_lacks_the_origin() {
    let server = salesforce().await;
    Mock::given(method("GET"))
        .and(path(data("/sobjects/Case/describe")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(case_describe(&["Phone", "Email"], true)),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = TicketSystem::check(&connector(&server))
        .await
        .expect_err("fails");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("case_origin = \"WhatsApp\" is not a value of the Case Origin picklist"),
        "{err}"
    );
}

// ---- contacts -----------------------------------------------------------------------------

#[tokio::test]
async fn finds_an_existing_contact_and_leaves_it_unchanged() {
    let server = salesforce().await;
    Mock::given(method("GET"))
        .and(path(data(&format!(
            "/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"
        ))))
        .and(query_param("fields", "Id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "attributes": {"type": "Contact", "url": data(&format!("/sobjects/Contact/{CONTACT}"))},
            "Id": CONTACT
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let id = Crm::upsert_contact(&connector(&server), &conformance::conversation().contact)
        .await
        .expect("found");
    assert_eq!(id.0, CONTACT);
    let writes: Vec<Request> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .collect();
    assert!(writes.is_empty(), "an existing contact was written");
}

#[tokio::test]
async fn creates_a_missing_contact_by_upsert_with_name_numbers_and_account() {
    let server = salesforce().await;
    let mut config = config(&server);
    config.account_id = Some("0015g00000AcCtAAAB".into());
    let mut contact = conformance::conversation().contact;
    contact.profile_name = Some("  Aisha   Al-Said bint Salim ".into());
    let id = Crm::upsert_contact(&SalesforceConnector::new(config).expect("builds"), &contact)
        .await
        .expect("created");
    assert_eq!(id.0, CONTACT);
    let upserts = received(
        &server,
        "PATCH",
        &data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}")),
    )
    .await;
    assert_eq!(
        upserts,
        [json!({
            "FirstName": "Aisha",
            "LastName": "Al-Said bint Salim",
            "Phone": "+96890000001",
            "MobilePhone": "+96890000001",
            "AccountId": "0015g00000AcCtAAAB"
        })]
    );
}

#[tokio::test]
async fn names_a_contact_without_a_profile_name_after_its_number() {
    let server = salesforce().await;
    let mut contact = conformance::conversation().contact;
    contact.profile_name = None;
    Crm::upsert_contact(&connector(&server), &contact)
        .await
        .expect("created");
    let upserts = received(
        &server,
        "PATCH",
        &data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}")),
    )
    .await;
    assert_eq!(upserts[0]["LastName"], "WhatsApp +96890000001");
    assert!(upserts[0].get("FirstName").is_none());
}

#[tokio::test]
async fn reads_the_id_back_after_an_upsert_answered_204() {
    let server = salesforce().await;
    let route = data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"));
    Mock::given(method("PATCH"))
        .and(path(route.clone()))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(1)
        .mount(&server)
        .await;
    // Missing at first, there after the upsert.
    Mock::given(method("GET"))
        .and(path(route.clone()))
        .respond_with(not_found())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(route.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Id": CONTACT})))
        .with_priority(2)
        .mount(&server)
        .await;
    let id = Crm::upsert_contact(&connector(&server), &conformance::conversation().contact)
        .await
        .expect("upserted");
    assert_eq!(id.0, CONTACT);
    assert_eq!(requests(&server, "GET", &route).await.len(), 2);
}

#[tokio::test]
async fn refuses_a_number_several_contacts_carry() {
    let server = salesforce().await;
    Mock::given(method("GET"))
        .and(path(data(&format!(
            "/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"
        ))))
        .respond_with(ResponseTemplate::new(300).set_body_json(json!([
            data("/sobjects/Contact/0035g00000DupAAAAA"),
            data("/sobjects/Contact/0035g00000DupBAAAA")
        ])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = Crm::upsert_contact(&connector(&server), &conformance::conversation().contact)
        .await
        .expect_err("ambiguous");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("several Contacts") && text.contains("Unique"),
        "{text}"
    );
    assert!(
        !text.contains(DIGITS) && !text.contains("/services"),
        "{text}"
    );
}

#[tokio::test]
async fn fails_permanently_for_a_contact_without_a_number_and_calls_nothing() {
    let server = salesforce().await;
    let contact = Contact {
        wa_id: None,
        user_id: Some("OM.1234567".into()),
        profile_name: Some("Aisha".into()),
    };
    let err = Crm::upsert_contact(&connector(&server), &contact)
        .await
        .expect_err("no number");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("BSUID"), "{err}");
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn upsert_errors_keep_salesforces_code_but_not_the_number() {
    let server = salesforce().await;
    Mock::given(method("PATCH"))
        .and(path(data(&format!(
            "/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"
        ))))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([{
            "message": "Mobile must be a local number, not 96890000001",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["MobilePhone"]
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = Crm::upsert_contact(&connector(&server), &conformance::conversation().contact)
        .await
        .expect_err("invalid");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("FIELD_CUSTOM_VALIDATION_EXCEPTION")
            && text.contains("(fields: MobilePhone)"),
        "{text}"
    );
    assert!(!text.contains(DIGITS), "{text}");
}

// ---- tasks --------------------------------------------------------------------------------

fn tasks_of(body: &Value) -> Vec<Value> {
    body["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn logs_messages_as_completed_tasks_in_one_collection_call() {
    let server = salesforce().await;
    Crm::log_activity(
        &connector(&server),
        &CrmContactId(CONTACT.into()),
        &conformance::conversation(),
        &crm_suite::activities(),
        false,
    )
    .await
    .expect("logged");
    assert!(
        queries(&server).await.is_empty(),
        "no lookup without maybe_delivered"
    );
    let calls = received(&server, "POST", &data("/composite/sobjects")).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["allOrNone"], true);
    let tasks = tasks_of(&calls[0]);
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[0],
        json!({
            "attributes": {"type": "Task"},
            "Subject": "WhatsApp message from Aisha (+96890000001)",
            "Description": format!(
                "Inbound WhatsApp message from Aisha (+96890000001) to +15550783881, \
                 2026-11-27 09:30:00 UTC\n\nWhere is my order #1001?\n\n[wa:{}]",
                conformance::MESSAGE_ID
            ),
            "WhoId": CONTACT,
            "ActivityDate": "2026-11-27",
            "Status": "Completed",
            "TaskSubtype": "Task"
        })
    );
    assert_eq!(
        tasks[1]["Subject"],
        "WhatsApp message to Aisha (+96890000001)"
    );
    let description = tasks[1]["Description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(
            "Outbound WhatsApp message from +15550783881 to Aisha (+96890000001), 2026-11-27 \
             09:31:00 UTC\n\nIt left our warehouse today.\nTracking: 1Z999"
        ),
        "{description}"
    );
    assert!(description.ends_with(&marker(crm_suite::OUTBOUND_ID)));
}

#[tokio::test]
async fn skips_tasks_already_logged_when_maybe_delivered() {
    let server = salesforce().await;
    mount_query(
        &server,
        "FROM Task",
        vec![json!({
            "attributes": {"type": "Task", "url": data("/sobjects/Task/00T5g00000OldAAAAA")},
            "Id": "00T5g00000OldAAAAA",
            "Description": format!("Inbound WhatsApp message …\n\n[wa:{}]", conformance::MESSAGE_ID)
        })],
    )
    .await;
    Crm::log_activity(
        &connector(&server),
        &CrmContactId(CONTACT.into()),
        &conformance::conversation(),
        &crm_suite::activities(),
        true,
    )
    .await
    .expect("logged");
    assert_eq!(
        queries(&server).await,
        [format!(
            "SELECT Id, Description FROM Task WHERE WhoId = '{CONTACT}' AND CreatedDate >= \
             2026-11-26T09:30:00Z ORDER BY CreatedDate DESC"
        )]
    );
    let calls = received(&server, "POST", &data("/composite/sobjects")).await;
    assert_eq!(calls.len(), 1);
    let tasks = tasks_of(&calls[0]);
    assert_eq!(tasks.len(), 1);
    assert!(tasks[0]["Description"]
        .as_str()
        .unwrap_or_default()
        .contains(crm_suite::OUTBOUND_ID));
}

#[tokio::test]
async fn writes_nothing_when_every_task_is_present_on_a_later_batch() {
    let server = salesforce().await;
    let task =
        |id: &str, wamid: &str| json!({"Id": id, "Description": format!("…\n\n[wa:{wamid}]")});
    let next = data("/query/01gD0000002HU6KIAW-2000");
    Mock::given(method("GET"))
        .and(path(data("/query")))
        .and(query_param_contains("q", "FROM Task"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 2, "done": false, "nextRecordsUrl": next,
            "records": [task("00T5g00000OldAAAAA", conformance::MESSAGE_ID)]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(next.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 2, "done": true,
            "records": [task("00T5g00000OldBAAAA", crm_suite::OUTBOUND_ID)]
        })))
        .mount(&server)
        .await;
    Crm::log_activity(
        &connector(&server),
        &CrmContactId(CONTACT.into()),
        &conformance::conversation(),
        &crm_suite::activities(),
        true,
    )
    .await
    .expect("nothing to do");
    assert_eq!(requests(&server, "GET", &next).await.len(), 1);
    assert!(received(&server, "POST", &data("/composite/sobjects"))
        .await
        .is_empty());
}

#[tokio::test]
async fn splits_more_than_200_messages_into_several_collection_calls() {
    let server = salesforce().await;
    let template = crm_suite::activities().remove(0);
    let activities: Vec<Activity> = (0..201)
        .map(|i| Activity {
            id: format!("wamid.BULK{i:04}"),
            ..template.clone()
        })
        .collect();
    Crm::log_activity(
        &connector(&server),
        &CrmContactId(CONTACT.into()),
        &conformance::conversation(),
        &activities,
        false,
    )
    .await
    .expect("logged");
    let sizes: Vec<usize> = received(&server, "POST", &data("/composite/sobjects"))
        .await
        .iter()
        .map(|call| tasks_of(call).len())
        .collect();
    assert_eq!(sizes, [200, 1]);
}

#[tokio::test]
async fn a_refused_task_batch_is_permanent_with_salesforces_message() {
    let server = salesforce().await;
    Mock::given(method("POST"))
        .and(path(data("/composite/sobjects")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
              "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
              "fields": []}]},
            {"success": false, "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY",
              "message": "Name ID: id value of incorrect type: 0035g00000XyZabAAB",
              "fields": ["WhoId"]}]}
        ])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = Crm::log_activity(
        &connector(&server),
        &CrmContactId(CONTACT.into()),
        &conformance::conversation(),
        &crm_suite::activities(),
        false,
    )
    .await
    .expect_err("refused");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("INVALID_CROSS_REFERENCE_KEY"), "{text}");
    assert!(text.contains("(fields: WhoId)"), "{text}");
    assert!(text.contains("none of 2 records written"), "{text}");
    assert!(!text.contains("ALL_OR_NONE"), "{text}");
}

#[tokio::test]
async fn refuses_a_contact_id_that_is_not_a_record_id() {
    let server = salesforce().await;
    let err = Crm::log_activity(
        &connector(&server),
        &CrmContactId("003' OR Id != '".into()),
        &conformance::conversation(),
        &crm_suite::activities(),
        true,
    )
    .await
    .expect_err("refused");
    assert!(!err.is_retryable());
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

// ---- cases --------------------------------------------------------------------------------

#[tokio::test]
async fn opens_a_case_with_the_first_message_and_its_file_in_one_composite() {
    let server = salesforce().await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &DeliveryContext::default(),
    )
    .await
    .expect("delivers");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(NEW_CASE.into()),
            opened_ticket: true,
            already_present: false
        }
    );
    assert_eq!(
        queries(&server).await,
        [format!(
            "SELECT Id, Status, IsClosed, ClosedDate FROM Case WHERE ContactId = '{CONTACT}' \
             AND Origin = 'WhatsApp' ORDER BY CreatedDate DESC LIMIT 20"
        )]
    );
    let calls = composites(&server).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["allOrNone"], true);
    let subs = subrequests(&calls[0]);
    assert_eq!(subs.len(), 2);
    assert_eq!(
        subs[0],
        json!({
            "method": "POST",
            "url": "/services/data/v62.0/sobjects/Case",
            "referenceId": "newCase",
            "body": {
                "Subject": "WhatsApp: Aisha (+96890000001)",
                "Description": format!(
                    "Aisha (+96890000001) sent a WhatsApp image message, 2026-11-27 09:30:00 \
                     UTC:\n\nWhere is my order #1001? (photo attached)\n\n[wa:{}]",
                    conformance::MESSAGE_ID
                ),
                "ContactId": CONTACT,
                "Origin": "WhatsApp",
                "Status": "New"
            }
        })
    );
    let file = &subs[1];
    assert_eq!(file["method"], "POST");
    assert_eq!(file["url"], "/services/data/v62.0/sobjects/ContentVersion");
    assert_eq!(file["body"]["Title"], "parcel.jpg");
    assert_eq!(file["body"]["PathOnClient"], "parcel.jpg");
    assert_eq!(file["body"]["FirstPublishLocationId"], "@{newCase.id}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file["body"]["VersionData"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(bytes, conformance::message().attachments[0].data);
}

#[tokio::test]
async fn sets_priority_and_owner_of_new_cases_from_the_config() {
    let server = salesforce().await;
    let mut config = config(&server);
    config.case_priority = Some("High".into());
    config.case_owner_id = Some("00G5g000001QueUEAA".into());
    config.case_origin = "Chat".into();
    deliver(
        &SalesforceConnector::new(config).expect("builds"),
        &conformance::message(),
        &DeliveryContext::default(),
    )
    .await
    .expect("delivers");
    let case = &subrequests(&composites(&server).await[0])[0]["body"];
    assert_eq!(case["Priority"], "High");
    assert_eq!(case["OwnerId"], "00G5g000001QueUEAA");
    assert_eq!(case["Origin"], "Chat");
    assert!(queries(&server).await[0].contains("AND Origin = 'Chat'"));
}

#[tokio::test]
async fn comments_on_the_recorded_open_case_without_lookup() {
    let server = salesforce().await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(OPEN_CASE.into()),
            opened_ticket: false,
            already_present: false
        }
    );
    assert!(queries(&server).await.is_empty());
    let reads = requests(
        &server,
        "GET",
        &data(&format!("/sobjects/Case/{OPEN_CASE}")),
    )
    .await;
    assert_eq!(reads.len(), 1);
    assert_eq!(
        reads[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == "fields")
            .map(|(_, v)| v.into_owned()),
        Some("Id,Status,IsClosed,ClosedDate".into())
    );
    // No contact lookup: the recorded case is enough.
    assert!(requests(
        &server,
        "GET",
        &data(&format!("/sobjects/Contact/WhatsApp_Id__c/{DIGITS}"))
    )
    .await
    .is_empty());
    let subs = subrequests(&composites(&server).await[0]);
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0]["url"], "/services/data/v62.0/sobjects/CaseComment");
    assert_eq!(subs[0]["body"]["ParentId"], OPEN_CASE);
    assert_eq!(subs[0]["body"]["IsPublished"], false);
    let body = subs[0]["body"]["CommentBody"].as_str().unwrap_or_default();
    assert!(
        body.starts_with("Aisha (+96890000001) sent a WhatsApp image message")
            && body.ends_with(&marker(conformance::MESSAGE_ID)),
        "{body}"
    );
    assert_eq!(subs[1]["body"]["FirstPublishLocationId"], OPEN_CASE);
}

#[tokio::test]
async fn publishes_comments_when_customer_messages_are_public() {
    let server = salesforce().await;
    let mut config = config(&server);
    config.customer_messages = CustomerMessages::Public;
    deliver(
        &SalesforceConnector::new(config).expect("builds"),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers");
    assert_eq!(
        subrequests(&composites(&server).await[0])[0]["body"]["IsPublished"],
        true
    );
}

#[tokio::test]
async fn reopens_a_recently_closed_case_in_the_same_transaction() {
    let server = salesforce().await;
    mount_case(
        &server,
        case_json(OPEN_CASE, "Closed", Some(days_ago(2)), "Hello"),
    )
    .await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers");
    assert_eq!(delivered.ticket, TicketRef(OPEN_CASE.into()));
    assert!(!delivered.opened_ticket);
    let subs = subrequests(&composites(&server).await[0]);
    let methods: Vec<(&str, &str)> = subs
        .iter()
        .map(|s| {
            (
                s["method"].as_str().unwrap_or_default(),
                s["url"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            (
                "PATCH",
                "/services/data/v62.0/sobjects/Case/5005g00000OpEnCAAS"
            ),
            ("POST", "/services/data/v62.0/sobjects/CaseComment"),
            ("POST", "/services/data/v62.0/sobjects/ContentVersion")
        ]
    );
    assert_eq!(subs[0]["body"], json!({"Status": "Working"}));
}

#[tokio::test]
async fn opens_a_new_case_when_the_case_was_closed_long_ago() {
    let server = salesforce().await;
    let old = case_json(OPEN_CASE, "Closed", Some(days_ago(45)), "Hello");
    mount_case(&server, old.clone()).await;
    mount_query(&server, "FROM Case", vec![old]).await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers");
    assert_eq!(delivered.ticket, TicketRef(NEW_CASE.into()));
    assert!(delivered.opened_ticket);
    assert_eq!(
        subrequests(&composites(&server).await[0])[0]["url"],
        "/services/data/v62.0/sobjects/Case"
    );
}

#[tokio::test]
async fn never_reopens_with_a_zero_window() {
    let server = salesforce().await;
    mount_case(
        &server,
        case_json(OPEN_CASE, "Closed", Some(days_ago(0)), "Hello"),
    )
    .await;
    let mut config = config(&server);
    config.reopen_within_days = 0;
    let delivered = deliver(
        &SalesforceConnector::new(config).expect("builds"),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect("delivers");
    assert!(delivered.opened_ticket);
}

#[tokio::test]
async fn continues_the_contacts_open_case_when_none_is_recorded() {
    let server = salesforce().await;
    mount_query(
        &server,
        "FROM Case",
        vec![
            case_json(OPEN_CASE, "Escalated", None, "Hello"),
            case_json("5005g00000OlDcAAAQ", "Closed", Some(days_ago(1)), "Older"),
        ],
    )
    .await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded("1", false),
    )
    .await
    .expect("delivers");
    assert_eq!(delivered.ticket, TicketRef(OPEN_CASE.into()));
    assert!(!delivered.opened_ticket && !delivered.already_present);
    let subs = subrequests(&composites(&server).await[0]);
    assert_eq!(subs[0]["body"]["ParentId"], OPEN_CASE);
}

#[tokio::test]
async fn writes_nothing_when_the_marker_is_in_a_comment_and_escapes_the_lookup() {
    let server = salesforce().await;
    let mut message = conformance::message();
    message.id = "wamid.HBgM_50%'x\\".into();
    mount_query(
        &server,
        "FROM CaseComment",
        vec![comment_json(
            "00a5g00000OldCmAAA",
            OPEN_CASE,
            USER,
            &format!("Hi\n\n{}", marker(&message.id)),
            days_ago(0),
        )],
    )
    .await;
    let delivered = deliver(&connector(&server), &message, &recorded(OPEN_CASE, true))
        .await
        .expect("delivers");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(OPEN_CASE.into()),
            opened_ticket: false,
            already_present: true
        }
    );
    assert_eq!(
        queries(&server).await,
        [format!(
            r"SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{OPEN_CASE}' AND CommentBody LIKE '%[wa:wamid.HBgM\_50\%\'x\\]%' LIMIT 10"
        )]
    );
    assert!(composites(&server).await.is_empty());
}

#[tokio::test]
async fn a_like_match_with_other_letter_case_is_not_the_message() {
    let server = salesforce().await;
    mount_query(
        &server,
        "FROM CaseComment",
        vec![comment_json(
            "00a5g00000OldCmAAA",
            OPEN_CASE,
            USER,
            &marker(&conformance::MESSAGE_ID.to_ascii_lowercase()),
            days_ago(0),
        )],
    )
    .await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, true),
    )
    .await
    .expect("delivers");
    assert!(!delivered.already_present);
    assert_eq!(composites(&server).await.len(), 1);
}

#[tokio::test]
async fn finds_the_case_an_earlier_attempt_opened() {
    let server = salesforce().await;
    mount_query(
        &server,
        "FROM Case ",
        vec![case_json(
            NEW_CASE,
            "New",
            None,
            &case_description(&conformance::conversation(), &conformance::message()),
        )],
    )
    .await;
    let delivered = deliver(
        &connector(&server),
        &conformance::message(),
        &DeliveryContext {
            ticket: None,
            maybe_delivered: true,
        },
    )
    .await
    .expect("delivers");
    assert_eq!(
        delivered,
        Delivered {
            ticket: TicketRef(NEW_CASE.into()),
            opened_ticket: true,
            already_present: true
        }
    );
    assert!(queries(&server).await[0]
        .starts_with("SELECT Id, Status, IsClosed, ClosedDate, Description FROM Case"));
    assert!(composites(&server).await.is_empty());
}

#[tokio::test]
async fn shortens_a_long_message_and_attaches_it_in_full() {
    let server = salesforce().await;
    let mut message = conformance::message();
    message.kind = "text".into();
    message.attachments.clear();
    message.text = "مرحبا ".repeat(700); // 4200 characters, 7700 bytes
    deliver(&connector(&server), &message, &recorded(OPEN_CASE, false))
        .await
        .expect("delivers");
    let subs = subrequests(&composites(&server).await[0]);
    assert_eq!(subs.len(), 2);
    let body = subs[0]["body"]["CommentBody"].as_str().unwrap_or_default();
    assert!(body.len() <= COMMENT_MAX_BYTES, "{} bytes", body.len());
    assert!(body.contains(FULL_TEXT_FILE), "{body}");
    assert!(body.ends_with(&marker(conformance::MESSAGE_ID)), "{body}");
    assert_eq!(subs[1]["body"]["Title"], FULL_TEXT_FILE);
    let full = base64::engine::general_purpose::STANDARD
        .decode(subs[1]["body"]["VersionData"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(String::from_utf8(full).expect("utf-8"), message.text.trim());
}

#[tokio::test]
async fn names_files_too_large_for_one_request_instead_of_sending_them() {
    let server = salesforce().await;
    let mut message = conformance::message();
    message.attachments.push(Attachment {
        filename: "../catalogue.pdf".into(),
        mime_type: "application/pdf".into(),
        data: vec![b'%'; INLINE_FILES_MAX_BYTES],
    });
    deliver(&connector(&server), &message, &recorded(OPEN_CASE, false))
        .await
        .expect("delivers");
    let subs = subrequests(&composites(&server).await[0]);
    assert_eq!(subs.len(), 2, "the comment and the photo only");
    let body = subs[0]["body"]["CommentBody"].as_str().unwrap_or_default();
    assert!(
        body.contains("File catalogue.pdf (application/pdf, 25.0 MB) was not attached"),
        "{body}"
    );
    assert_eq!(subs[1]["body"]["Title"], "parcel.jpg");
}

#[tokio::test]
async fn a_refused_subrequest_writes_nothing_and_is_classified() {
    let server = salesforce().await;
    Mock::given(method("POST"))
        .and(path(data("/composite")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"compositeResponse": [
            {"body": [{"errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       "message": "bad value for restricted picklist field: WhatsApp",
                       "fields": ["Origin"]}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "newCase"},
            {"body": [{"errorCode": "PROCESSING_HALTED",
                       "message": "The transaction was rolled back since another operation in the same transaction failed."}],
             "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "file0"}
        ]})))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = deliver(
        &connector(&server),
        &conformance::message(),
        &DeliveryContext::default(),
    )
    .await
    .expect_err("refused");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
            && text.contains("(fields: Origin)"),
        "{text}"
    );
    assert!(
        text.contains("nothing was written") && !text.contains("PROCESSING_HALTED"),
        "{text}"
    );
}

#[tokio::test]
async fn waits_an_hour_when_the_orgs_api_allowance_is_used_up() {
    let server = salesforce().await;
    Mock::given(method("POST"))
        .and(path(data("/composite")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{
            "message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect_err("limited");
    assert_eq!(
        err,
        ConnectorError::Retryable {
            retry_after: Some(DAILY_LIMIT_WAIT),
            reason: "salesforce: adding the message to the case: the org's API request \
                     allowance (rolling 24 hours) is used up (REQUEST_LIMIT_EXCEEDED: \
                     TotalRequests Limit exceeded.); retrying in 60 minutes"
                .into()
        }
    );
}

#[tokio::test]
async fn retries_503_honouring_retry_after() {
    let server = salesforce().await;
    Mock::given(method("POST"))
        .and(path(data("/composite")))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "120")
                .set_body_json(
                    json!([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
                ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = deliver(
        &connector(&server),
        &conformance::message(),
        &recorded(OPEN_CASE, false),
    )
    .await
    .expect_err("busy");
    assert!(matches!(
        err,
        ConnectorError::Retryable { retry_after: Some(wait), .. } if wait == Duration::from_secs(120)
    ));
}

/// The shared suites' write failures hit the token request first (it is a POST); this plays
/// the same statuses on the data writes after a successful login.
#[tokio::test]
async fn classifies_failed_data_writes_after_a_successful_login() {
    let cases: [(u16, Option<&str>, bool); 9] = [
        (500, None, true),
        (502, None, true),
        (503, Some("7"), true),
        (429, Some("7"), true),
        (408, None, true),
        (400, None, false),
        (404, None, false),
        (409, None, false),
        (413, None, false),
    ];
    for (status, retry_after, retryable) in cases {
        let server = salesforce().await;
        let mut failure = ResponseTemplate::new(status).set_body_json(json!([{
            "message": format!("error {status}"), "errorCode": "SOMETHING_WENT_WRONG"
        }]));
        if let Some(seconds) = retry_after {
            failure = failure.insert_header("Retry-After", seconds);
        }
        Mock::given(|r: &Request| {
            r.method.as_str() != "GET" && r.url.path() != "/services/oauth2/token"
        })
        .respond_with(failure)
        .with_priority(1)
        .mount(&server)
        .await;
        let connector = connector(&server);
        let conversation = conformance::conversation();
        let outcomes = [
            (
                "comment",
                deliver(
                    &connector,
                    &conformance::message(),
                    &recorded(OPEN_CASE, false),
                )
                .await
                .map(drop),
            ),
            (
                "new case",
                deliver(
                    &connector,
                    &conformance::message(),
                    &DeliveryContext::default(),
                )
                .await
                .map(drop),
            ),
            (
                "upsert",
                Crm::upsert_contact(&connector, &conversation.contact)
                    .await
                    .map(drop),
            ),
            (
                "tasks",
                Crm::log_activity(
                    &connector,
                    &CrmContactId(CONTACT.into()),
                    &conversation,
                    &crm_suite::activities(),
                    false,
                )
                .await,
            ),
            (
                "note",
                TicketSystem::note(&connector, &TicketRef(OPEN_CASE.into()), "x").await,
            ),
        ];
        for (operation, outcome) in outcomes {
            let err = outcome.expect_err("the write failed");
            assert_eq!(
                err.is_retryable(),
                retryable,
                "{operation} on {status}: {err}"
            );
            if let (Some(seconds), ConnectorError::Retryable { retry_after, .. }) =
                (retry_after, &err)
            {
                let expected = seconds.parse().ok().map(Duration::from_secs);
                assert_eq!(*retry_after, expected, "{operation} on {status}");
            }
            assert!(err.to_string().contains("SOMETHING_WENT_WRONG"), "{err}");
        }
        // One login served every operation.
        assert_eq!(
            requests(&server, "POST", "/services/oauth2/token")
                .await
                .len(),
            1,
            "{status}"
        );
    }
}

#[tokio::test]
async fn query_errors_carry_no_soql() {
    let server = salesforce().await;
    Mock::given(method("GET"))
        .and(path(data("/query")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([{
            "message": "\nAND Origin = 'WhatsApp' ORDER BY CreatedDate DESC LIMIT 20\n    ^\nERROR at Row:1:Column:84\nNo such column 'Origin' on entity 'Case'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
            "errorCode": "INVALID_FIELD"
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = deliver(
        &connector(&server),
        &conformance::message(),
        &DeliveryContext::default(),
    )
    .await
    .expect_err("invalid");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("INVALID_FIELD: No such column 'Origin'"),
        "{text}"
    );
    assert!(
        !text.contains("ORDER BY") && !text.contains(CONTACT),
        "{text}"
    );
}

#[tokio::test]
async fn note_writes_an_unpublished_case_comment() {
    let server = salesforce().await;
    TicketSystem::note(
        &connector(&server),
        &TicketRef(OPEN_CASE.into()),
        "Reply not sent: the 24-hour window is closed.",
    )
    .await
    .expect("noted");
    assert_eq!(
        received(&server, "POST", &data("/sobjects/CaseComment")).await,
        [json!({
            "ParentId": OPEN_CASE,
            "CommentBody": "Reply not sent: the 24-hour window is closed.",
            "IsPublished": false
        })]
    );
    let err = TicketSystem::note(&connector(&server), &TicketRef("42".into()), "x")
        .await
        .expect_err("not a case");
    assert!(!err.is_retryable());
}

// ---- replies ------------------------------------------------------------------------------

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, m, s)
        .single()
        .expect("time")
}

#[tokio::test]
async fn replies_since_starts_at_the_newest_reply_without_returning_it() {
    let server = salesforce().await;
    let newest = comment_json(
        "00a5g00000AgT01AAA",
        OPEN_CASE,
        AGENT,
        "Old reply",
        at(9, 0, 0),
    );
    mount_query(
        &server,
        "ORDER BY CreatedDate DESC, Id DESC LIMIT 1",
        vec![newest.clone()],
    )
    .await;
    mount_query(&server, "CreatedDate >= 2026-11-27T08:59:00Z", vec![newest]).await;
    let (replies, cursor) = TicketSystem::replies_since(&connector(&server), None)
        .await
        .expect("position");
    assert!(replies.is_empty());
    assert_eq!(
        cursor.as_deref(),
        Some("2026-11-27T09:00:00Z|00a5g00000AgT01AAA")
    );
    let condition =
        format!("IsPublished = true AND CreatedById != '{USER}' AND Parent.Origin = 'WhatsApp'");
    assert_eq!(
        queries(&server).await,
        [
            format!(
                "SELECT Id, CreatedDate FROM CaseComment WHERE {condition} ORDER BY CreatedDate \
                 DESC, Id DESC LIMIT 1"
            ),
            format!(
                "SELECT Id, ParentId, CommentBody, CreatedDate FROM CaseComment WHERE \
                 {condition} AND CreatedDate >= 2026-11-27T08:59:00Z ORDER BY CreatedDate, Id"
            )
        ]
    );
}

#[tokio::test]
async fn replies_since_returns_agents_published_comments_once_in_order() {
    let server = salesforce().await;
    let seen = comment_json(
        "00a5g00000AgT01AAA",
        OPEN_CASE,
        AGENT,
        "Old reply",
        at(9, 0, 0),
    );
    let first = comment_json(
        "00a5g00000AgT02AAA",
        OPEN_CASE,
        AGENT,
        "  Your parcel left today.  ",
        at(9, 30, 0),
    );
    let marked = comment_json(
        "00a5g00000AgT03AAA",
        OPEN_CASE,
        AGENT,
        "Copied from WhatsApp [wa:wamid.X]",
        at(9, 30, 0),
    );
    let second = comment_json(
        "00a5g00000AgT04AAA",
        NEW_CASE,
        AGENT,
        "Anything else?",
        at(9, 30, 30),
    );
    mount_query(
        &server,
        "CreatedDate >= 2026-11-27T08:59:00Z",
        vec![seen.clone(), first.clone(), marked.clone(), second.clone()],
    )
    .await;
    let connector = connector(&server);
    let (replies, cursor) =
        TicketSystem::replies_since(&connector, Some("2026-11-27T09:00:00Z|00a5g00000AgT01AAA"))
            .await
            .expect("replies");
    assert_eq!(
        replies,
        [
            AgentReply {
                id: "salesforce-casecomment-00a5g00000AgT02AAA".into(),
                ticket: TicketRef(OPEN_CASE.into()),
                text: "Your parcel left today.".into(),
                at: at(9, 30, 0),
            },
            AgentReply {
                id: "salesforce-casecomment-00a5g00000AgT04AAA".into(),
                ticket: TicketRef(NEW_CASE.into()),
                text: "Anything else?".into(),
                at: at(9, 30, 30),
            }
        ]
    );
    // The reply before the new window is forgotten, the ones inside it are remembered.
    assert_eq!(
        cursor.as_deref(),
        Some("2026-11-27T09:30:30Z|00a5g00000AgT02AAA,00a5g00000AgT04AAA")
    );

    // The next poll sees the same comments again in its window and returns none of them.
    mount_query(
        &server,
        "CreatedDate >= 2026-11-27T09:29:30Z",
        vec![first, marked, second],
    )
    .await;
    let (again, next) = TicketSystem::replies_since(&connector, cursor.as_deref())
        .await
        .expect("replies");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(next, cursor);
}

#[tokio::test]
async fn replies_since_reads_the_integration_user_from_userinfo_when_needed() {
    let server = MockServer::start().await;
    let mut token = token_json(&server.uri(), TOKEN);
    token.as_object_mut().map(|t| t.remove("id"));
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .mount(&server)
        .await;
    mount_data(&server, TOKEN).await;
    let connector = connector(&server);
    let (_, cursor) = TicketSystem::replies_since(&connector, None)
        .await
        .expect("position");
    assert_eq!(cursor.as_deref(), Some("1970-01-01T00:00:00Z|"));
    TicketSystem::replies_since(&connector, cursor.as_deref())
        .await
        .expect("replies");
    assert_eq!(
        requests(&server, "GET", "/services/oauth2/userinfo")
            .await
            .len(),
        1
    );
    assert!(queries(&server)
        .await
        .iter()
        .all(|q| q.contains(&format!("CreatedById != '{USER}'"))));
}

#[tokio::test]
async fn an_unreadable_cursor_restarts_from_now() {
    let server = salesforce().await;
    let (replies, cursor) = TicketSystem::replies_since(&connector(&server), Some("yesterday"))
        .await
        .expect("position");
    assert!(replies.is_empty());
    assert_eq!(cursor.as_deref(), Some("1970-01-01T00:00:00Z|"));
}

// ---- wiring -------------------------------------------------------------------------------

#[test]
fn builds_both_roles_or_only_the_configured_one_from_one_section() {
    let context = BuildContext {
        store_dir: std::path::PathBuf::from("/nonexistent"),
        name: "salesforce".into(),
    };
    let section = |roles: Value| {
        serde_json::from_value::<ConnectorConfig>(json!({
            "kind": "salesforce", "url": "https://acme.my.salesforce.com",
            "client_id": CLIENT_ID, "client_secret": SECRET, "roles": roles
        }))
        .expect("parses")
    };
    assert!(ConnectorConfig::KINDS.contains(&"salesforce"));
    let both = section(json!(["crm", "ticketing"]));
    assert!(both.validate().is_empty(), "{:?}", both.validate());
    let built = both.build(&context).expect("builds");
    assert_eq!(
        built.ticketing.as_ref().map(|t| t.kind()),
        Some("salesforce")
    );
    assert_eq!(built.crm.as_ref().map(|c| c.kind()), Some("salesforce"));
    assert!(!format!("{built:?}").contains(SECRET));

    let crm_only = section(json!(["crm"])).build(&context).expect("builds");
    assert!(crm_only.ticketing.is_none() && crm_only.crm.is_some());
    let ticketing_only = section(json!(["ticketing"]))
        .build(&context)
        .expect("builds");
    assert!(ticketing_only.ticketing.is_some() && ticketing_only.crm.is_none());

    let broken: ConnectorConfig = serde_json::from_value(json!({
        "kind": "salesforce", "url": "https://login.salesforce.com"
    }))
    .expect("parses");
    let fields: Vec<String> = broken.validate().into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["url", "client_id", "client_secret"]);
    assert!(broken.build(&context).is_err());
}

#[test]
fn entries_fit_salesforces_limits() {
    let mut contact = conformance::conversation().contact;
    contact.profile_name = Some("A".repeat(400));
    let subject = case_subject(&contact);
    assert_eq!(subject.chars().count(), 255);
    assert!(subject.ends_with("… (+96890000001)"), "{subject}");
    assert_eq!(
        contact_name(&conformance::conversation().contact, "+96890000001"),
        (None, "Aisha".to_owned())
    );
    let activity = Activity {
        text: "x".repeat(40_000),
        ..crm_suite::activities().remove(0)
    };
    let description = task_description(&conformance::conversation(), &activity);
    assert!(description.chars().count() <= DESCRIPTION_MAX_CHARS);
    assert!(description.ends_with(&marker(conformance::MESSAGE_ID)));
    assert!(description.contains("… (shortened)"));
}
