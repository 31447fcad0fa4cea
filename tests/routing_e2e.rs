//! End to end with the real binary, a real Request Tracker 5 and the shipped
//! `mappings/routing.toml` (its business hours opened around the clock, so the test does not
//! depend on the day it runs): the first message is greeted with the menu, a menu choice moves
//! the ticket to its department's queue and hands over to a person, after which the bot is
//! silent until the ticket is resolved; hours and location are answered in Arabic; "agent" and
//! "موظف" hand over. Every bot reply is in the ticket.

mod common;

use std::time::Duration;

use common::rt::Rt;
use common::*;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn graph() -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.BOT" }]
        })))
        .mount(&graph)
        .await;
    graph
}

/// The shipped routing file, open every day all day and without holidays (and without its
/// examples, which check the shipped hours).
fn routing_file(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/routing.toml"
    ))
    .expect("shipped routing file");
    let shipped = shipped
        .split("\n[[example]]")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut text = String::new();
    let mut in_holidays = false;
    for line in shipped.lines() {
        if in_holidays {
            in_holidays = !line.trim_start().starts_with(']');
            continue;
        }
        let day = ["sunday", "monday", "tuesday", "wednesday", "thursday"]
            .iter()
            .any(|d| line.starts_with(&format!("{d} = ")));
        if day {
            continue;
        }
        if line.starts_with("holidays = [") {
            in_holidays = true;
            for d in [
                "sunday",
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
            ] {
                text.push_str(&format!("{d} = \"00:00-23:59\"\n"));
            }
            text.push_str("holidays = []\n");
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    assert!(text.contains("friday = \"00:00-23:59\""), "{text}");
    let file = dir.join("routing.toml");
    std::fs::write(&file, text).expect("write routing file");
    file
}

/// A customer number no earlier run used.
fn unique_number(salt: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("9689{:07}", (nanos / 1000 + salt) % 10_000_000)
}

/// Texts sent to `customer` so far (text bodies and interactive bodies).
async fn sent_to(graph: &MockServer, customer: &str) -> Vec<String> {
    posted_bodies(graph)
        .await
        .into_iter()
        .filter(|b| b["to"] == customer)
        .map(|b| {
            b["text"]["body"]
                .as_str()
                .or_else(|| b["interactive"]["body"]["text"].as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

struct Chat<'a> {
    daemon: &'a Daemon,
    customer: String,
    name: &'static str,
    n: u32,
}

impl Chat<'_> {
    async fn say(&mut self, text: &str) {
        self.n += 1;
        let webhook = text_webhook(
            &self.customer,
            self.name,
            &format!("wamid.RO{}{}", self.customer, self.n),
            chrono::Utc::now().timestamp(),
            text,
        );
        assert_eq!(self.daemon.post(&webhook).await, 200);
        self.daemon.wait_idle(Duration::from_secs(30));
    }
}

async fn queue_name(rt: &Rt, ticket: u64) -> String {
    let fields = rt.ticket(ticket).await;
    let id = match &fields["Queue"] {
        Value::Object(link) => link
            .get("id")
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default(),
        other => other.to_string(),
    };
    let queue = rt.get(&format!("queue/{id}")).await;
    queue["Name"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_routing_greets_routes_hands_over_and_stays_silent_until_resolved() {
    let rt = Rt::from_env();
    for queue in ["Orders", "Appointments", "General"] {
        rt.ensure_queue(queue).await;
    }
    let graph = graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let routing = routing_file(dir.path());
    let extra = format!(
        "[connectors.helpdesk]\nkind = \"rt\"\nurl = \"{}\"\ntoken = \"{}\"\nqueue = \"General\"\ntimeout_secs = 10\n\n\
         [[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\n\
         [routing]\nfile = \"{}\"\n",
        rt.url,
        rt.token,
        routing.display()
    );
    let config = write_config(dir.path(), &extra, Some(&graph.uri()));
    let daemon = Daemon::start(&config);

    // A: greeted with the menu; "1" goes to Orders and to a person; then silence.
    let mut a = Chat {
        daemon: &daemon,
        customer: unique_number(1),
        name: "Aisha",
        n: 0,
    };
    a.say("Hello").await;
    let sent = sent_to(&graph, &a.customer).await;
    assert_eq!(sent.len(), 1, "{sent:?}\n{}", tail(&daemon.log(), 30));
    assert!(
        sent[0].contains("1. Orders") && sent[0].contains("0. Talk to a person"),
        "{sent:?}"
    );
    let email = format!("wa+{}@whatsapp.invalid", a.customer);
    let tickets = rt.tickets_of(&email).await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let ticket = tickets[0].0;
    assert_eq!(queue_name(&rt, ticket).await, "General");

    a.say("1").await;
    let sent = sent_to(&graph, &a.customer).await;
    assert_eq!(sent.len(), 3, "intro and hand-over: {sent:?}");
    assert!(sent[2].contains("A member of our team"), "{sent:?}");
    assert_eq!(queue_name(&rt, ticket).await, "Orders");
    let fields = rt.ticket(ticket).await;
    assert_eq!(fields["Status"], "open", "{fields}");
    let texts = rt.texts(ticket).await;
    assert!(
        texts
            .iter()
            .any(|t| t.contains("wabridge bot → customer") && t.contains("1. Orders")),
        "the menu is in the ticket: {texts:#?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("customer chose Orders")),
        "the hand-over is explained in the ticket: {texts:#?}"
    );

    a.say("what are your opening hours?").await;
    assert_eq!(
        sent_to(&graph, &a.customer).await.len(),
        3,
        "the bot keeps quiet after the hand-over"
    );

    // An agent resolves the ticket: the next message is answered by the bot again.
    rt.set_status(ticket, "resolved").await;
    a.say("hello").await;
    let sent = sent_to(&graph, &a.customer).await;
    assert_eq!(sent.len(), 4, "{sent:?}\n{}", tail(&daemon.log(), 30));
    assert!(sent[3].contains("1. Orders"), "{sent:?}");

    // B: Arabic questions answered in Arabic, then "موظف" hands over.
    let mut b = Chat {
        daemon: &daemon,
        customer: unique_number(2),
        name: "Omar",
        n: 0,
    };
    b.say("ساعات العمل؟").await;
    b.say("وين موقعكم؟").await;
    b.say("موظف").await;
    b.say("الموقع").await;
    let sent = sent_to(&graph, &b.customer).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        sent[0].contains("00:00") && sent[0].contains("أوقات العمل"),
        "{sent:?}"
    );
    assert!(sent[1].contains("الخوير"), "{sent:?}");
    assert!(sent[2].contains("سيرد عليك"), "{sent:?}");

    // C: "agent" at once.
    let mut c = Chat {
        daemon: &daemon,
        customer: unique_number(3),
        name: "Chris",
        n: 0,
    };
    c.say("I need an agent please").await;
    c.say("hello?").await;
    let sent = sent_to(&graph, &c.customer).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("A member of our team"), "{sent:?}");
}

#[test]
fn route_test_shows_the_rules_and_sends_nothing_and_validate_names_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "[connectors.archive]\nkind = \"files\"\n\n[routing]\nfile = \"{}\"\n",
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/routing.toml")
    );
    // The Graph API address points nowhere: a send would fail loudly.
    let config = write_config(dir.path(), &extra, None);
    let webhook = dir.path().join("webhook.json");
    std::fs::write(
        &webhook,
        text_webhook(
            "96890000001",
            "Aisha",
            "wamid.RT1",
            1_790_000_000,
            "وين موقعكم؟",
        ),
    )
    .expect("write webhook");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run wabridge");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    // Sunday 10:00 in Muscat: open.
    let webhook_arg = webhook.display().to_string();
    let (code, out) = run(&[
        "route",
        "test",
        &webhook_arg,
        "--at",
        "2026-11-29T10:00:00+04:00",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("routing.toml:") && out.contains("location"),
        "{out}"
    );
    assert!(out.contains("الخوير"), "the Arabic answer: {out}");
    assert!(out.contains(": open"), "{out}");
    // Friday evening: closed, the away message is part of what would happen.
    let (code, out) = run(&[
        "route",
        "test",
        &webhook_arg,
        "--at",
        "2026-11-27T20:00:00+04:00",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("closed"), "{out}");
    assert!(
        !dir.path().join("data").exists(),
        "route test created no store"
    );

    // A broken routing file: validate names the line and refuses.
    let broken = dir.path().join("routing.toml");
    std::fs::write(
        &broken,
        "default_language = \"fr\"\n[hours]\ntimezone = \"Asia/Muskat\"\n",
    )
    .expect("write");
    let text = std::fs::read_to_string(&config).expect("config").replace(
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/routing.toml"),
        &broken.display().to_string(),
    );
    std::fs::write(&config, text).expect("config");
    let (code, out) = run(&["validate"]);
    assert_eq!(code, Some(78), "{out}");
    assert!(out.contains("routing.toml:1: default_language"), "{out}");
    assert!(out.contains("routing.toml:3: hours.timezone"), "{out}");
}
