//! The Tryton connector against a wiremock JSON-RPC fake whose answers were captured from a
//! real trytond 8.2.1 (party, sale, `phonenumbers`): the login triple, `Session` header checks
//! (401 with an empty body), Werkzeug's HTML 401 for a refused login, 404 for an unknown
//! database, `{"id", "result"}` / `{"id", "error"}` envelopes, `"party.": {…}` for dotted
//! fields, and `Decimal` / `datetime` / `date` objects.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::TimeZone as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
use crate::conformance::crm::{self, CrmSubject, CONTACT_ID, OUTBOUND_ID};
use crate::conformance::{self, Target, MESSAGE_ID};
use crate::{Connector, ConnectorConfig, Secret};

const DATABASE: &str = "crm";
const USERNAME: &str = "admin";
const PASSWORD: &str = "tryton-pw-7f3e";
const RPC_PATH: &str = "/crm/rpc/";

/// `{"__class__": "datetime", …}` as Tryton writes it.
fn datetime(second: u32, microsecond: u32) -> Value {
    json!({"__class__": "datetime", "year": 2026, "month": 11, "day": 27, "hour": 6,
           "minute": 44, "second": second, "microsecond": microsecond})
}

fn decimal(text: &str) -> Value {
    json!({"__class__": "Decimal", "decimal": text})
}

/// SQL `LIKE` with `%` and `_`, as Tryton's `like` operator.
fn like(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|skip| like(rest, &text[skip..])),
        Some(('_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && like(rest, &text[1..]),
    }
}

/// Evaluates the subset of Tryton domains the connector sends: leaves `[field, op, value]`
/// with `=`, `!=`, `in`, `>`, `<`, `like`; lists are AND unless they start with `"OR"`.
fn matches(record: &Value, domain: &Value) -> bool {
    let Some(items) = domain.as_array() else {
        return false;
    };
    if let (Some(Value::String(field)), Some(Value::String(op)), Some(value), 3) =
        (items.first(), items.get(1), items.get(2), items.len())
    {
        if field != "OR" && field != "AND" {
            let actual = record.get(field).unwrap_or(&Value::Null);
            return match op.as_str() {
                "=" => actual == value,
                "!=" => actual != value,
                "in" => value.as_array().is_some_and(|list| list.contains(actual)),
                ">" => actual.as_u64() > value.as_u64(),
                "<" => actual.as_u64() < value.as_u64(),
                "like" => match (actual.as_str(), value.as_str()) {
                    (Some(text), Some(pattern)) => like(
                        &pattern.chars().collect::<Vec<_>>(),
                        &text.chars().collect::<Vec<_>>(),
                    ),
                    _ => false,
                },
                _ => false,
            };
        }
    }
    match items.first() {
        Some(Value::String(or)) if or == "OR" => items[1..].iter().any(|d| matches(record, d)),
        Some(Value::String(and)) if and == "AND" => items[1..].iter().all(|d| matches(record, d)),
        _ => items.iter().all(|d| matches(record, d)),
    }
}

/// What the fake Tryton holds.
#[derive(Default)]
struct State {
    parties: Vec<Value>,
    mechanisms: Vec<Value>,
    notes: Vec<Value>,
    sales: Vec<Value>,
    logs: Vec<Value>,
    /// Sessions Tryton accepts; `common.db.login` adds one.
    sessions: Vec<String>,
    logins: usize,
    /// When set, sessions are refused even right after login (a user that may not log in).
    refuse_sessions: bool,
    /// Party creates still to refuse as "not unique" (another process won the race: its party
    /// exists, ours is not created).
    racing_creates: usize,
}

impl State {
    fn next_id(records: &[Value]) -> u64 {
        records
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .max()
            .unwrap_or(0)
            + 1
    }

    fn add_party(&mut self, name: &str, mechanisms: &[(&str, &str, &str)]) -> u64 {
        let id = Self::next_id(&self.parties);
        self.parties.push(json!({"id": id, "name": name}));
        for (kind, value, compact) in mechanisms {
            let mechanism = Self::next_id(&self.mechanisms);
            self.mechanisms.push(json!({
                "id": mechanism, "party": id, "type": kind, "value": value,
                "value_compact": compact, "sequence": 10
            }));
        }
        id
    }

    fn add_note(&mut self, party: u64, message: &str) {
        let id = Self::next_id(&self.notes);
        self.notes.push(json!({
            "id": id, "resource": format!("party.party,{party}"), "message": message
        }));
    }

    fn add_log(&mut self, resource: &str, target: &str, at: Value) -> u64 {
        let id = Self::next_id(&self.logs);
        self.logs.push(json!({
            "id": id, "resource": resource, "event": "transition", "target": target,
            "create_date": at, "action": "State : Processing", "user": 1
        }));
        id
    }

    fn table(&mut self, model: &str) -> Option<&mut Vec<Value>> {
        Some(match model {
            "party.party" => &mut self.parties,
            "party.contact_mechanism" => &mut self.mechanisms,
            "ir.note" => &mut self.notes,
            "sale.sale" => &mut self.sales,
            "ir.model.log" => &mut self.logs,
            _ => return None,
        })
    }
}

/// A JSON-RPC answer with Tryton's envelope.
fn answer(id: &Value, result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": id, "result": result}))
}

fn error_answer(id: &Value, error: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": id, "error": error}))
}

/// Werkzeug's page for a refused login, as trytond 8.2.1 sends it.
fn login_refused() -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header("Content-Type", "text/html; charset=utf-8")
        .set_body_string(
            "<!doctype html>\n<html lang=en>\n<title>401 Unauthorized</title>\n\
             <h1>Unauthorized</h1>\n<p>The server could not verify that you are authorized to \
             access the URL requested.</p>\n",
        )
}

/// trytond's answer to a call with a missing, expired or unknown session.
fn session_refused() -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header("WWW-Authenticate", "Basic realm=\"Tryton\"")
        .insert_header("Content-Type", "text/plain; charset=utf-8")
}

/// The fake Tryton server: one database, one user.
#[derive(Clone)]
struct Fake {
    password: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn new(password: &str) -> Self {
        Fake {
            password: password.to_owned(),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("state"))
    }

    fn authorized(&self, request: &Request, state: &State) -> bool {
        let Some(header) = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(token) = header.strip_prefix("Session ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return false;
        };
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        !state.refuse_sessions
            && state
                .sessions
                .iter()
                .any(|session| decoded == format!("{USERNAME}:1:{session}"))
    }

    fn search_read(state: &mut State, model: &str, params: &[Value]) -> Option<Value> {
        let domain = params.first().cloned().unwrap_or(json!([]));
        let limit = params.get(2).and_then(Value::as_u64);
        let descending = params
            .get(3)
            .and_then(|o| o.get(0))
            .is_some_and(|first| first == &json!(["id", "DESC"]));
        let fields: Vec<String> = params
            .get(4)
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut records: Vec<Value> = state
            .table(model)?
            .iter()
            .filter(|r| matches(r, &domain))
            .cloned()
            .collect();
        if descending {
            records.reverse();
        }
        if let Some(limit) = limit {
            records.truncate(limit as usize);
        }
        Some(Value::Array(
            records
                .into_iter()
                .map(|record| {
                    let mut out = serde_json::Map::new();
                    out.insert("id".into(), record["id"].clone());
                    for field in &fields {
                        let key = match field.split_once('.') {
                            Some((head, _)) => format!("{head}."),
                            None => field.clone(),
                        };
                        out.insert(
                            key.clone(),
                            record.get(&key).cloned().unwrap_or(Value::Null),
                        );
                    }
                    Value::Object(out)
                })
                .collect(),
        ))
    }

    fn create(state: &mut State, model: &str, values: &[Value]) -> Result<Value, Value> {
        let mut ids = Vec::new();
        for value in values {
            match model {
                "party.party" if state.racing_creates > 0 => {
                    state.racing_creates -= 1;
                    let mobile = value["contact_mechanisms"][0][1][0]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    state.add_party("Created elsewhere", &[("mobile", &mobile, &mobile)]);
                    return Err(json!([
                        "UserError",
                        ["The code on party must be unique.", "", null]
                    ]));
                }
                "party.party" => {
                    let name = value["name"].as_str().unwrap_or_default().to_owned();
                    let id = state.add_party(&name, &[]);
                    for create in value["contact_mechanisms"].as_array().into_iter().flatten() {
                        for mechanism in create[1].as_array().into_iter().flatten() {
                            let next = State::next_id(&state.mechanisms);
                            // Tryton with `phonenumbers` formats `value`, `value_compact` is E.164.
                            state.mechanisms.push(json!({
                                "id": next, "party": id, "type": mechanism["type"],
                                "value": mechanism["value"], "value_compact": mechanism["value"],
                                "sequence": null
                            }));
                        }
                    }
                    ids.push(json!(id));
                }
                "ir.note" => {
                    let resource = value["resource"].as_str().unwrap_or_default();
                    let party = resource
                        .strip_prefix("party.party,")
                        .and_then(|id| id.parse::<u64>().ok())
                        .filter(|id| state.parties.iter().any(|p| p["id"] == json!(id)));
                    let Some(party) = party else {
                        // What trytond answers for a note on a party that does not exist.
                        return Err(json!(["UserError", [
                            "A value is required for field \"Resource\" in record \"(1)\" of \"Note\".",
                            "", null]]));
                    };
                    state.add_note(party, value["message"].as_str().unwrap_or_default());
                    ids.push(json!(State::next_id(&state.notes) - 1));
                }
                _ => {
                    return Err(json!([
                        format!("'{model}'"),
                        "Traceback (most recent call last)"
                    ]))
                }
            }
        }
        Ok(Value::Array(ids))
    }
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let id = body["id"].clone();
        let rpc = body["method"].as_str().unwrap_or_default();
        let params = body["params"].as_array().cloned().unwrap_or_default();
        let mut state = self.state.lock().expect("state");
        if rpc == "common.db.login" {
            if params.first() == Some(&json!(USERNAME))
                && params.get(1).map(|p| &p["password"]) == Some(&json!(self.password))
            {
                state.logins += 1;
                let session = format!("5e55{:060}", state.logins);
                state.sessions.push(session.clone());
                return answer(&id, json!([1, session, null]));
            }
            return login_refused();
        }
        if !self.authorized(request, &state) {
            return session_refused();
        }
        let Some((model, call)) = rpc
            .strip_prefix("model.")
            .and_then(|rest| rest.rsplit_once('.'))
        else {
            return ResponseTemplate::new(403);
        };
        let args = &params[..params.len().saturating_sub(1)];
        match call {
            "search_count" => {
                let domain = args.first().cloned().unwrap_or(json!([]));
                match state.table(model) {
                    Some(table) => answer(
                        &id,
                        json!(table.iter().filter(|r| matches(r, &domain)).count()),
                    ),
                    None => error_answer(&id, json!([format!("'{model}'"), ""])),
                }
            }
            "search_read" => match Fake::search_read(&mut state, model, args) {
                Some(records) => answer(&id, records),
                None => error_answer(&id, json!([format!("'{model}'"), ""])),
            },
            "create" => {
                let values = args
                    .first()
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                match Fake::create(&mut state, model, &values) {
                    Ok(ids) => answer(&id, ids),
                    Err(error) => error_answer(&id, error),
                }
            }
            _ => ResponseTemplate::new(403),
        }
    }
}

async fn mount(server: &MockServer, fake: &Fake) {
    Mock::given(method("POST"))
        .and(path(RPC_PATH))
        .respond_with(fake.clone())
        .mount(server)
        .await;
}

/// A fake with party [`CONTACT_ID`] (Aisha, +96890000001 as `phonenumbers` stores it) and
/// nothing else.
fn fake_with_aisha(password: &str) -> Fake {
    let fake = Fake::new(password);
    fake.with(|state| {
        state
            .parties
            .push(json!({"id": 511, "name": "Wabridge Test Shop"}));
        let id = state.add_party("Aisha", &[("mobile", "+968 9000 0001", "+96890000001")]);
        assert_eq!(id.to_string(), CONTACT_ID);
    });
    fake
}

struct Tryton;

#[async_trait::async_trait]
impl CrmSubject for Tryton {
    async fn mount_happy_path(&self, server: &MockServer) {
        mount(server, &fake_with_aisha(conformance::SECRET)).await;
    }

    fn build(&self, target: &Target) -> Result<Box<dyn Crm>, ConnectorError> {
        let mut config = TrytonConfig::new(&target.url, DATABASE, USERNAME, target.secret.clone());
        config.timeout_secs = target.timeout.as_secs().max(1);
        Ok(Box::new(TrytonConnector::new(config)?))
    }
}

#[tokio::test]
async fn tryton_passes_the_crm_conformance_suite() {
    crm::run_crm_suite(&Tryton).await;
}

async fn start(fake: &Fake) -> MockServer {
    let server = MockServer::start().await;
    mount(&server, fake).await;
    server
}

fn config(server: &MockServer) -> TrytonConfig {
    let mut config = TrytonConfig::new(server.uri(), DATABASE, USERNAME, Secret::new(PASSWORD));
    config.timeout_secs = 5;
    config
}

fn connector(server: &MockServer) -> TrytonConnector {
    TrytonConnector::new(config(server)).expect("builds")
}

/// The JSON-RPC requests received, in order: (method, params, Authorization header).
async fn rpc_calls(server: &MockServer) -> Vec<(String, Value, Option<String>)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (
                body["method"].as_str().unwrap_or_default().to_owned(),
                body["params"].clone(),
                r.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )
        })
        .collect()
}

async fn params_of(server: &MockServer, rpc: &str) -> Vec<Value> {
    rpc_calls(server)
        .await
        .into_iter()
        .filter(|(m, _, _)| m == rpc)
        .map(|(_, params, _)| params)
        .collect()
}

fn party_512() -> CrmContactId {
    CrmContactId(CONTACT_ID.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Session

#[tokio::test]
async fn logs_in_once_and_sends_the_session_on_every_call() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    connector.check().await.expect("checked");
    connector
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("upserted");
    let calls = rpc_calls(&server).await;
    let methods: Vec<&str> = calls.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        [
            "common.db.login",
            "model.party.party.search_count",
            "model.party.contact_mechanism.search_read"
        ]
    );
    assert_eq!(calls[0].1, json!([USERNAME, {"password": PASSWORD}, "en"]));
    assert_eq!(calls[0].2, None);
    let session = format!("5e55{:060}", 1);
    let expected = format!(
        "Session {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:1:{session}"))
    );
    for (rpc, params, auth) in &calls[1..] {
        assert_eq!(auth.as_deref(), Some(expected.as_str()), "{rpc}");
        // The context is always the last parameter.
        assert_eq!(params.as_array().and_then(|p| p.last()), Some(&json!({})));
    }
}

#[tokio::test]
async fn logs_in_again_once_when_the_session_expired() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    connector.check().await.expect("checked");
    // Tryton forgets the session (expired, revoked, or the database was restored).
    fake.with(|state| state.sessions.clear());
    let id = connector
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("upserted after a new login");
    assert_eq!(id, party_512());
    let methods: Vec<String> = rpc_calls(&server)
        .await
        .into_iter()
        .map(|(m, _, _)| m)
        .collect();
    assert_eq!(
        methods,
        [
            "common.db.login",
            "model.party.party.search_count",
            "model.party.contact_mechanism.search_read",
            "common.db.login",
            "model.party.contact_mechanism.search_read",
        ]
    );
}

#[tokio::test]
async fn a_session_refused_right_after_login_is_permanent_and_not_retried_in_a_loop() {
    let fake = fake_with_aisha(PASSWORD);
    fake.with(|state| state.refuse_sessions = true);
    let server = start(&fake).await;
    let err = connector(&server)
        .check()
        .await
        .expect_err("the session is refused");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("refused the session"), "{err}");
    assert_eq!(fake.with(|state| state.logins), 1);

    // A session that worked, then is refused even after a new login: two logins, no more.
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    connector.check().await.expect("checked");
    fake.with(|state| state.refuse_sessions = true);
    let err = connector.check().await.expect_err("refused");
    assert!(!err.is_retryable());
    assert_eq!(fake.with(|state| state.logins), 2);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_says_so() {
    let server = start(&fake_with_aisha("the-real-password")).await;
    let err = connector(&server).check().await.expect_err("refused");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("refused the login of user `admin` on database `crm`")
            && text.contains("username or the password is wrong"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn an_unknown_database_is_permanent_and_named() {
    let server = start(&fake_with_aisha(PASSWORD)).await;
    let mut config = config(&server);
    config.database = "shop".into();
    // Tryton answers 404 for a database it does not have (here: nothing mounted there).
    let err = TrytonConnector::new(config)
        .expect("builds")
        .check()
        .await
        .expect_err("no such database");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("has no database `shop`"), "{err}");
}

#[tokio::test]
async fn too_many_failed_logins_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_string(
            "<!doctype html>\n<html lang=en>\n<title>429 Too Many Requests</title>",
        ))
        .mount(&server)
        .await;
    let err = connector(&server).check().await.expect_err("blocked");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("too many failed attempts"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Contacts

#[tokio::test]
async fn finds_the_party_by_the_e164_value_compact_of_a_phone_mechanism() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let id = connector(&server)
        .upsert_contact(&conformance::conversation().contact)
        .await
        .expect("found");
    assert_eq!(id, party_512());
    assert_eq!(
        params_of(&server, "model.party.contact_mechanism.search_read").await,
        [json!([
            [
                ["type", "in", ["mobile", "phone"]],
                ["value_compact", "=", "+96890000001"]
            ],
            0,
            1,
            [["id", "ASC"]],
            ["party"],
            {}
        ])]
    );
    assert!(params_of(&server, "model.party.party.create")
        .await
        .is_empty());
}

#[tokio::test]
async fn creates_a_missing_party_with_its_mobile_then_finds_it() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    let contact = Contact {
        wa_id: Some("4915112345678".into()),
        user_id: Some("DE.99".into()),
        profile_name: Some("  Max Mustermann ".into()),
    };
    let created = connector.upsert_contact(&contact).await.expect("created");
    assert_eq!(created, CrmContactId("513".into()));
    assert_eq!(
        params_of(&server, "model.party.party.create").await,
        [json!([[{
            "name": "Max Mustermann",
            "contact_mechanisms": [["create", [{"type": "mobile", "value": "+4915112345678"}]]]
        }], {}])]
    );
    let found = connector.upsert_contact(&contact).await.expect("found");
    assert_eq!(found, created);
    assert_eq!(
        params_of(&server, "model.party.party.create").await.len(),
        1
    );
}

#[tokio::test]
async fn a_create_that_loses_a_race_finds_the_party_the_winner_created() {
    let fake = fake_with_aisha(PASSWORD);
    fake.with(|state| state.racing_creates = 1);
    let server = start(&fake).await;
    let contact = Contact {
        wa_id: Some("4915112345679".into()),
        user_id: None,
        profile_name: Some("Max".into()),
    };
    let party = connector(&server)
        .upsert_contact(&contact)
        .await
        .expect("found after the race");
    assert_eq!(party, CrmContactId("513".into()));
    assert_eq!(
        params_of(&server, "model.party.party.create").await.len(),
        1,
        "no second create: the lookup found it"
    );
}

#[tokio::test]
async fn names_a_party_without_profile_name_after_the_number_and_uses_mechanism_type() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let mut config = config(&server);
    config.mechanism_type = MechanismType::Phone;
    let connector = TrytonConnector::new(config).expect("builds");
    connector
        .upsert_contact(&Contact {
            wa_id: Some("96891234567".into()),
            user_id: None,
            profile_name: Some(" ".into()),
        })
        .await
        .expect("created");
    assert_eq!(
        params_of(&server, "model.party.party.create").await,
        [json!([[{
            "name": "WhatsApp +96891234567",
            "contact_mechanisms": [["create", [{"type": "phone", "value": "+96891234567"}]]]
        }], {}])]
    );
}

#[tokio::test]
async fn a_contact_without_a_number_fails_permanently_before_any_call() {
    let server = start(&fake_with_aisha(PASSWORD)).await;
    for (contact, words) in [
        (
            Contact {
                wa_id: None,
                user_id: Some("OM.1349120865530".into()),
                profile_name: Some("Aisha".into()),
            },
            "only a BSUID",
        ),
        (
            Contact {
                wa_id: None,
                user_id: None,
                profile_name: None,
            },
            "neither",
        ),
        (
            Contact {
                wa_id: Some("+968 9000".into()),
                user_id: None,
                profile_name: None,
            },
            "not digits",
        ),
    ] {
        let err = connector(&server)
            .upsert_contact(&contact)
            .await
            .expect_err("no usable number");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(words), "{err}");
    }
    assert!(rpc_calls(&server).await.is_empty());
}

#[tokio::test]
async fn a_number_tryton_refuses_is_permanent_with_trytons_words() {
    let server = MockServer::start().await;
    let fake = fake_with_aisha(PASSWORD);
    Mock::given(method("POST"))
        .and(path(RPC_PATH))
        .and(wiremock::matchers::body_partial_json(
            json!({"method": "model.party.party.create"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 3, "error": [
                "UserError",
                ["The phone number \"+15550783881\" for party \"P3\" is not valid.", "", null]
            ]})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &fake).await;
    let err = connector(&server)
        .upsert_contact(&Contact {
            wa_id: Some("15550783881".into()),
            user_id: None,
            profile_name: None,
        })
        .await
        .expect_err("refused");
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains(
            "Tryton refused: The phone number \"+15550783881\" for party \"P3\" is not valid."
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Notes

#[tokio::test]
async fn logs_one_note_per_message_in_one_create_call() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    connector(&server)
        .log_activity(
            &party_512(),
            &conformance::conversation(),
            &crm::activities(),
            false,
        )
        .await
        .expect("logged");
    assert_eq!(
        params_of(&server, "model.ir.note.create").await,
        [json!([[
            {"resource": "party.party,512", "message":
                format!("Inbound WhatsApp message from Aisha (+96890000001) to +15550783881, \
                         2026-11-27 09:30:00 UTC\nWhere is my order #1001?\n[wa:{MESSAGE_ID}]")},
            {"resource": "party.party,512", "message":
                format!("Outbound WhatsApp message from +15550783881 to Aisha (+96890000001), \
                         2026-11-27 09:31:00 UTC\nIt left our warehouse today.\nTracking: 1Z999\n\
                         [wa:{OUTBOUND_ID}]")},
        ], {}])]
    );
    // Fresh: no lookup.
    assert!(params_of(&server, "model.ir.note.search_read")
        .await
        .is_empty());
    let messages: Vec<String> = fake.with(|state| {
        state
            .notes
            .iter()
            .map(|n| n["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    });
    assert_eq!(messages.len(), 2);
    assert!(messages[0].ends_with(&format!("[wa:{MESSAGE_ID}]")));
    assert!(messages[1].ends_with(&format!("[wa:{OUTBOUND_ID}]")));
}

#[tokio::test]
async fn skips_messages_already_noted_when_maybe_delivered() {
    let fake = fake_with_aisha(PASSWORD);
    fake.with(|state| {
        state.add_note(512, "a note a salesperson wrote");
        state.add_note(
            512,
            &format!("Inbound WhatsApp message …\nhi\n[wa:{MESSAGE_ID}]"),
        );
        // The same marker on another party does not count.
        state.add_note(511, &format!("[wa:{OUTBOUND_ID}]"));
    });
    let server = start(&fake).await;
    connector(&server)
        .log_activity(
            &party_512(),
            &conformance::conversation(),
            &crm::activities(),
            true,
        )
        .await
        .expect("logged");
    assert_eq!(
        params_of(&server, "model.ir.note.search_read").await,
        [json!([
            [
                ["resource", "=", "party.party,512"],
                [
                    "OR",
                    ["message", "like", format!("%[wa:{MESSAGE_ID}]%")],
                    ["message", "like", format!("%[wa:{OUTBOUND_ID}]%")]
                ]
            ],
            0,
            null,
            [["id", "ASC"]],
            ["message"],
            {}
        ])]
    );
    let created = params_of(&server, "model.ir.note.create").await;
    assert_eq!(created.len(), 1);
    let notes = created[0][0].as_array().cloned().unwrap_or_default();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["message"]
        .as_str()
        .is_some_and(|m| m.ends_with(&format!("[wa:{OUTBOUND_ID}]"))));
}

#[tokio::test]
async fn writes_nothing_when_every_message_is_already_noted() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    let conversation = conformance::conversation();
    let activities = crm::activities();
    connector
        .log_activity(&party_512(), &conversation, &activities, false)
        .await
        .expect("logged");
    // The retry of a call whose answer was lost.
    connector
        .log_activity(&party_512(), &conversation, &activities, true)
        .await
        .expect("nothing to do");
    assert_eq!(params_of(&server, "model.ir.note.create").await.len(), 1);
    assert_eq!(fake.with(|state| state.notes.len()), 2);
}

#[tokio::test]
async fn a_message_given_twice_is_noted_once() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let mut twice = crm::activities();
    twice.push(twice[0].clone());
    connector(&server)
        .log_activity(&party_512(), &conformance::conversation(), &twice, false)
        .await
        .expect("logged");
    assert_eq!(fake.with(|state| state.notes.len()), 2);
}

#[tokio::test]
async fn refuses_a_contact_id_that_is_not_a_party_id_and_reports_a_missing_party() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    let conversation = conformance::conversation();
    for id in ["", "0", "party-512", "-3"] {
        let err = connector
            .log_activity(
                &CrmContactId(id.into()),
                &conversation,
                &crm::activities(),
                false,
            )
            .await
            .expect_err("not a party id");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("not a Tryton party id"), "{err}");
    }
    assert!(rpc_calls(&server).await.is_empty());
    let err = connector
        .log_activity(
            &CrmContactId("999".into()),
            &conversation,
            &crm::activities(),
            false,
        )
        .await
        .expect_err("no such party");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Tryton refused"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn classifies_json_rpc_errors_and_http_failures() {
    let cases = [
        (
            ResponseTemplate::new(200).set_body_json(
                json!({"id": 2, "error": ["ConcurrencyException", "Records were modified in the meanwhile"]}),
            ),
            true,
            "concurrent change",
        ),
        (
            ResponseTemplate::new(200).set_body_json(
                json!({"id": 2, "error": ["database is locked", "Traceback (most recent call last):\n…"]}),
            ),
            true,
            "database is locked",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 2, "error": ["'notes'", ""]})),
            false,
            "Tryton failed: 'notes'",
        ),
        (
            ResponseTemplate::new(504).set_body_string(
                "<!doctype html>\n<html lang=en>\n<title>504 Gateway Timeout</title>",
            ),
            true,
            "504 Gateway Timeout",
        ),
        (
            ResponseTemplate::new(200).set_body_string("not json"),
            false,
            "unexpected answer",
        ),
    ];
    for (response, retryable, words) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(RPC_PATH))
            .and(wiremock::matchers::body_partial_json(
                json!({"method": "model.ir.note.create"}),
            ))
            .respond_with(response)
            .with_priority(1)
            .mount(&server)
            .await;
        mount(&server, &fake_with_aisha(PASSWORD)).await;
        let err = connector(&server)
            .log_activity(
                &party_512(),
                &conformance::conversation(),
                &crm::activities(),
                false,
            )
            .await
            .expect_err("fails");
        assert_eq!(err.is_retryable(), retryable, "{err}");
        assert!(err.to_string().contains(words), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// Two confirmed sales as Tryton's `search_read` returns them: 41 with a contact on the sale,
/// 42 without (its party's mechanisms give the phone), plus a transition to another state.
fn fake_with_sales() -> Fake {
    let fake = fake_with_aisha(PASSWORD);
    fake.with(|state| {
        let omar = state.add_party(
            "Omar",
            &[
                ("phone", "+968 2400 0000", "+96824000000"),
                ("mobile", "0912 3456", "0912 3456"),
            ],
        );
        state.sales.push(json!({
            "id": 41, "number": "SO41", "reference": "web-1001", "state": "processing",
            "invoice_state": "none", "total_amount": decimal("12.500"),
            "sale_date": {"__class__": "date", "year": 2026, "month": 11, "day": 27},
            "party": 512, "party.": {"name": "Aisha", "id": 512},
            "currency.": {"code": "OMR", "id": 1},
            "contact.": {"type": "mobile", "value_compact": "+96891234567", "id": 9},
        }));
        state.sales.push(json!({
            "id": 42, "number": "SO42", "reference": null, "state": "done",
            "invoice_state": "paid", "total_amount": decimal("3.250"),
            "sale_date": {"__class__": "date", "year": 2026, "month": 11, "day": 27},
            "party": omar, "party.": {"name": "Omar", "id": omar},
            "currency.": {"code": "OMR", "id": 1}, "contact.": null,
        }));
        state.add_log("sale.sale,41", "state:confirmed", datetime(10, 0));
    });
    fake
}

#[tokio::test]
async fn with_no_cursor_returns_no_event_and_the_newest_log_id() {
    let fake = fake_with_sales();
    fake.with(|state| {
        state.add_log("sale.sale,41", "state:processing", datetime(18, 661_246));
    });
    let server = start(&fake).await;
    let (events, cursor) = connector(&server).events_since(None).await.expect("polled");
    assert!(events.is_empty());
    assert_eq!(cursor.as_deref(), Some("log:2"));
    // An empty log starts at 0; an unreadable cursor starts from now too.
    let (events, cursor) = connector(&start(&fake_with_aisha(PASSWORD)).await)
        .events_since(Some("2026-11-27T06:44:18Z/7"))
        .await
        .expect("polled");
    assert!(events.is_empty());
    assert_eq!(cursor.as_deref(), Some("log:0"));
}

#[tokio::test]
async fn reports_each_sale_that_entered_processing_once_in_the_order_paid_shape() {
    let fake = fake_with_sales();
    let server = start(&fake).await;
    let connector = connector(&server);
    let (events, cursor) = connector.events_since(None).await.expect("polled");
    assert!(events.is_empty());
    assert_eq!(cursor.as_deref(), Some("log:1"));

    fake.with(|state| {
        state.add_log("sale.sale,41", "state:processing", datetime(18, 661_246));
        state.add_log("sale.party,3", "state:processing", datetime(19, 0));
        state.add_log("sale.sale,42", "state:done", datetime(20, 0));
        state.add_log("sale.sale,42", "state:processing", datetime(20, 0));
    });
    let (events, next) = connector
        .events_since(cursor.as_deref())
        .await
        .expect("polled");
    assert_eq!(next.as_deref(), Some("log:5"));
    assert_eq!(
        events,
        [
            SourceEvent {
                id: "tryton-sale-41-processing".into(),
                event: json!({
                    "event": "order.paid",
                    "id": "tryton-sale-41-processing",
                    "order": {"id": 41, "number": "SO41", "reference": "web-1001",
                              "total": "12.500", "currency": "OMR", "state": "processing",
                              "invoice_state": "none", "sale_date": "2026-11-27"},
                    // The sale's own contact wins over the party's mechanisms.
                    "customer": {"id": 512, "name": "Aisha", "phone": "+96891234567"},
                    "transition": "state:processing",
                    "occurred_at": "2026-11-27T06:44:18.661246Z",
                }),
            },
            SourceEvent {
                id: "tryton-sale-42-processing".into(),
                event: json!({
                    "event": "order.paid",
                    "id": "tryton-sale-42-processing",
                    "order": {"id": 42, "number": "SO42", "reference": null,
                              "total": "3.250", "currency": "OMR", "state": "done",
                              "invoice_state": "paid", "sale_date": "2026-11-27"},
                    // The mobile (mechanism_type) wins over the phone, kept as stored.
                    "customer": {"id": 513, "name": "Omar", "phone": "0912 3456"},
                    "transition": "state:processing",
                    "occurred_at": "2026-11-27T06:44:20.000000Z",
                }),
            },
        ]
    );
    assert_eq!(
        params_of(&server, "model.ir.model.log.search_read").await[1],
        json!([
            [
                ["id", ">", 1],
                ["event", "=", "transition"],
                ["target", "=", "state:processing"],
                ["resource", "like", "sale.sale,%"]
            ],
            0,
            100,
            [["id", "ASC"]],
            ["resource", "create_date"],
            {}
        ])
    );

    // Nothing new: nothing reported, the cursor stays.
    let (events, again) = connector
        .events_since(next.as_deref())
        .await
        .expect("polled");
    assert!(events.is_empty());
    assert_eq!(again, next);
}

#[tokio::test]
async fn reports_invoice_paid_transitions_when_configured() {
    let fake = fake_with_sales();
    fake.with(|state| {
        state.add_log("sale.sale,41", "state:processing", datetime(18, 0));
        state.add_log("sale.sale,42", "invoice_state:paid", datetime(30, 5));
    });
    let server = start(&fake).await;
    let mut config = config(&server);
    config.paid_when = PaidWhen::InvoicePaid;
    let (events, next) = TrytonConnector::new(config)
        .expect("builds")
        .events_since(Some("log:0"))
        .await
        .expect("polled");
    assert_eq!(next.as_deref(), Some("log:3"));
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["tryton-sale-42-paid"]);
    assert_eq!(events[0].event["transition"], "invoice_state:paid");
    assert_eq!(
        events[0].event["occurred_at"],
        "2026-11-27T06:44:30.000005Z"
    );
}

#[tokio::test]
async fn a_customer_without_phone_gets_null_and_a_deleted_sale_is_skipped() {
    let fake = fake_with_sales();
    fake.with(|state| {
        let nobody = state.add_party("No Phone", &[("email", "a@example.com", "a@example.com")]);
        state.sales.push(json!({
            "id": 43, "number": "SO43", "reference": null, "state": "processing",
            "invoice_state": "none", "total_amount": 7,
            "sale_date": null, "party": nobody, "party.": {"name": "No Phone", "id": nobody},
            "currency.": {"code": "EUR", "id": 2}, "contact.": null,
        }));
        state.add_log("sale.sale,99", "state:processing", datetime(18, 0));
        state.add_log("sale.sale,43", "state:processing", datetime(19, 0));
    });
    let server = start(&fake).await;
    let (events, next) = connector(&server)
        .events_since(Some("log:1"))
        .await
        .expect("polled");
    assert_eq!(next.as_deref(), Some("log:3"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "tryton-sale-43-processing");
    assert_eq!(events[0].event["customer"]["phone"], Value::Null);
    assert_eq!(events[0].event["order"]["total"], "7");
    assert_eq!(events[0].event["order"]["sale_date"], Value::Null);
}

#[tokio::test]
async fn an_event_the_shipped_order_paid_mapping_reads() {
    // The paths of mappings/order_paid.toml: $.event, $.id, $.customer.phone,
    // $.customer.name, $.order.number, $.order.total, $.order.currency.
    let fake = fake_with_sales();
    fake.with(|state| {
        state.add_log("sale.sale,41", "state:processing", datetime(18, 0));
    });
    let server = start(&fake).await;
    let (events, _) = connector(&server)
        .events_since(Some("log:1"))
        .await
        .expect("polled");
    let event = &events[0].event;
    assert_eq!(event["event"], "order.paid");
    assert!(event["id"].is_string());
    for (pointer, want) in [
        ("/customer/phone", "+96891234567"),
        ("/customer/name", "Aisha"),
        ("/order/number", "SO41"),
        ("/order/total", "12.500"),
        ("/order/currency", "OMR"),
    ] {
        assert_eq!(event.pointer(pointer), Some(&json!(want)), "{pointer}");
    }
}

// ---------------------------------------------------------------------------------------------
// Construction

#[test]
fn builds_from_a_connector_section_as_a_crm() {
    let section: ConnectorConfig = serde_json::from_value(json!({
        "kind": "tryton", "url": "http://127.0.0.1:8000", "database": "shop",
        "username": "wabridge", "password": PASSWORD
    }))
    .expect("parses");
    assert!(section.validate().is_empty(), "{:?}", section.validate());
    assert!(ConnectorConfig::KINDS.contains(&"tryton"));
    let context = crate::BuildContext {
        store_dir: std::env::temp_dir(),
        name: "shop".into(),
    };
    let Connector { ticketing, crm } = section.build(&context).expect("builds");
    assert!(ticketing.is_none());
    assert_eq!(crm.map(|c| c.kind()), Some("tryton"));
}

#[test]
fn refuses_to_build_from_an_invalid_config() {
    let config = TrytonConfig::new("http://127.0.0.1:8000", "", USERNAME, Secret::new(PASSWORD));
    let err = TrytonConnector::new(config).expect_err("invalid");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("database"), "{err}");
}

#[tokio::test]
async fn debug_output_shows_neither_password_nor_session() {
    let fake = fake_with_aisha(PASSWORD);
    let server = start(&fake).await;
    let connector = connector(&server);
    connector.check().await.expect("logged in");
    let debug = format!("{connector:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(!debug.contains("5e55"), "{debug}");
    let session =
        base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:1:5e55{:060}", 1));
    assert!(!debug.contains(&session), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");
}

#[test]
fn note_text_without_business_number_or_name() {
    let conversation = Conversation {
        phone_number_id: "1".into(),
        display_phone_number: None,
        contact: Contact {
            wa_id: Some("96890000001".into()),
            user_id: None,
            profile_name: None,
        },
    };
    let activity = Activity {
        id: "wamid.X".into(),
        direction: Direction::Outbound,
        at: chrono::Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("a time"),
        text: "Thanks!\n\n".into(),
    };
    assert_eq!(
        note_text(&conversation, &activity),
        "Outbound WhatsApp message to +96890000001, 2026-01-02 03:04:05 UTC\nThanks!\n[wa:wamid.X]"
    );
    assert_eq!(
        event_id(7, PaidWhen::Processing),
        "tryton-sale-7-processing"
    );
    assert_eq!(event_phone("0049 151 1234"), Some("+491511234".into()));
    assert_eq!(event_phone("n/a"), None);
}
