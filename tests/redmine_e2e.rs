//! End to end with the real binary and a real Redmine 5 (started by `scripts/redmine-setup.sh`,
//! which `scripts/test.sh` runs): the issue's fixed `[connectors.tracker]` section, a WhatsApp
//! conversation as one issue (subject with the name and the E.164 number, every message once and
//! in order), an agent's note going back to the customer, and `wabridge doctor`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The test Redmine's address and keys.
struct Redmine {
    url: String,
    key: String,
    agent_key: String,
    project: String,
    http: reqwest::Client,
}

impl Redmine {
    /// Reads `target/redmine-test.env`; fails loudly when it is missing: these tests never skip.
    fn from_env() -> Redmine {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redmine-test.env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|err| {
            panic!(
                "{}: {err}. Start the test Redmine first: bash scripts/redmine-setup.sh",
                file.display()
            )
        });
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.trim_start_matches("export ").split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let var = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing in {}", file.display()))
        };
        Redmine {
            url: var("WABRIDGE_TEST_REDMINE_URL"),
            key: var("WABRIDGE_TEST_REDMINE_KEY"),
            agent_key: var("WABRIDGE_TEST_REDMINE_AGENT_KEY"),
            project: var("WABRIDGE_TEST_REDMINE_PROJECT"),
            http: reqwest::Client::new(),
        }
    }

    /// The issue's fixed interface.
    fn section(&self, api_key: &str) -> String {
        format!(
            "[connectors.tracker]\nkind = \"redmine\"\nurl = \"{}\"\napi_key = \"{api_key}\"\nproject = \"{}\"\n",
            self.url, self.project
        )
    }

    async fn get(&self, path_and_query: &str) -> Value {
        self.http
            .get(format!("{}{path_and_query}", self.url))
            .header("X-Redmine-API-Key", &self.key)
            .send()
            .await
            .expect("redmine answers")
            .json()
            .await
            .expect("json")
    }

    /// Every issue of the project whose subject holds `e164`.
    async fn issues_of(&self, e164: &str) -> Vec<Value> {
        let query = format!(
            "/issues.json?project_id={}&status_id=*&limit=100&subject=~{}",
            self.project,
            e164.replace('+', "%2B")
        );
        self.get(&query).await["issues"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The description and the notes of an issue, in order.
    async fn entries(&self, id: i64) -> Vec<String> {
        let issue = self
            .get(&format!("/issues/{id}.json?include=journals"))
            .await;
        let mut entries = vec![issue["issue"]["description"]
            .as_str()
            .unwrap_or("")
            .to_owned()];
        for journal in issue["issue"]["journals"].as_array().into_iter().flatten() {
            if let Some(notes) = journal["notes"].as_str().filter(|n| !n.is_empty()) {
                entries.push(notes.to_owned());
            }
        }
        entries
    }

    /// Writes a public note as the agent user.
    async fn agent_note(&self, id: i64, text: &str) {
        let status = self
            .http
            .put(format!("{}/issues/{id}.json", self.url))
            .header("X-Redmine-API-Key", &self.agent_key)
            .json(&serde_json::json!({ "issue": { "notes": text } }))
            .send()
            .await
            .expect("redmine answers")
            .status();
        assert!(status.is_success(), "agent note: {status}");
    }
}

/// A customer number no earlier run used.
fn unique_number() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("9689{:07}", nanos % 10_000_000)
}

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.REPLY1" }]
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "display_phone_number": "+1 555-078-3881", "verified_name": "Acme Shop",
            "quality_rating": "GREEN", "id": PHONE_NUMBER_ID
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{ "whatsapp_business_api_data": { "id": "67084", "name": "wabridge" } }]
        })))
        .mount(&graph)
        .await;
    graph
}

fn numbers() -> String {
    format!("[[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\nwaba_id = \"555000\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_is_one_issue_in_order_and_an_agents_note_goes_back() {
    let redmine = Redmine::from_env();
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!("{}\n{}", redmine.section(&redmine.key), numbers()),
        Some(&graph.uri()),
    );
    let daemon = Daemon::start(&config);
    let customer = unique_number();
    let e164 = format!("+{customer}");
    let now = chrono::Utc::now().timestamp();
    let texts = [
        "Hello, my order 55012 has not arrived",
        "It was paid on Monday",
        "Can you check? شكرا",
    ];
    for (i, text) in texts.iter().enumerate() {
        let webhook = text_webhook(
            &customer,
            "Aisha",
            &format!("wamid.RM{customer}{i}"),
            now + i as i64,
            text,
        );
        assert_eq!(daemon.post(&webhook).await, 200);
    }
    // Meta redelivers the second message: nothing new in Redmine.
    let again = text_webhook(
        &customer,
        "Aisha",
        &format!("wamid.RM{customer}1"),
        now + 1,
        texts[1],
    );
    assert_eq!(daemon.post(&again).await, 200);
    daemon.wait_idle(Duration::from_secs(30));

    let issues = redmine.issues_of(&e164).await;
    assert_eq!(issues.len(), 1, "{issues:?}");
    let subject = issues[0]["subject"].as_str().unwrap_or("");
    assert!(
        subject.contains("Aisha") && subject.contains(&e164),
        "{subject}"
    );
    let id = issues[0]["id"].as_i64().expect("issue id");
    let entries = redmine.entries(id).await;
    assert_eq!(entries.len(), 3, "{entries:#?}");
    for (entry, text) in entries.iter().zip(texts) {
        assert!(entry.contains(text), "{entry} lacks {text}");
    }

    // An agent answers with a public note: it reaches the customer on WhatsApp, once.
    redmine
        .agent_note(id, "We found it: it ships tomorrow morning.")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent = posted_bodies(&graph).await;
        if let Some(reply) = sent.iter().find(|b| b["type"] == "text") {
            assert_eq!(reply["to"], customer.as_str());
            assert_eq!(
                reply["text"]["body"],
                "We found it: it ships tomorrow morning."
            );
            break;
        }
        if Instant::now() > deadline {
            let log = daemon.log();
            let warnings: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("eply"))
                .collect();
            panic!(
                "the agent's note was not sent; entries: {:#?}; warnings: {warnings:#?}; log tail: {}",
                redmine.entries(id).await,
                tail(&log, 15)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.wait_idle(Duration::from_secs(15));
    let texts_sent = posted_bodies(&graph)
        .await
        .into_iter()
        .filter(|b| b["type"] == "text")
        .count();
    assert_eq!(texts_sent, 1, "the reply was sent more than once");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_with_the_right_key_and_fails_naming_the_tracker_with_a_wrong_one() {
    let redmine = Redmine::from_env();
    let graph = graph().await;
    let doctor = |api_key: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            dir.path(),
            &format!("{}\n{}", redmine.section(api_key), numbers()),
            Some(&graph.uri()),
        );
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
            .args(["doctor", "--config"])
            .arg(&config)
            .output()
            .expect("run wabridge doctor");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = doctor(&redmine.key);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Acme Shop") && out.contains("subscribed: wabridge"),
        "{out}"
    );
    assert!(
        out.contains("[ok]   connector \"tracker\" (redmine"),
        "{out}"
    );

    let (code, out) = doctor("0000000000000000000000000000000000000000");
    assert_ne!(code, Some(0), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("[FAIL] connector \"tracker\""))
        .unwrap_or_else(|| panic!("no failing tracker line: {out}"));
    assert!(line.to_lowercase().contains("key"), "{line}");
    assert!(
        !out.contains("0000000000000000"),
        "the key is never printed: {out}"
    );
}
