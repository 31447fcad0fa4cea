//! End-to-end against a real Request Tracker 5: the real binary on loopback, signed webhooks,
//! real sled on disk, RT started by `scripts/rt-setup.sh` (the README's test command runs it).
//! These tests fail, never skip, when RT is not there.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::rt::{Proxy, Rt};
use common::*;

/// A phone number no other test run has used (RT keeps tickets between runs).
fn unique_number(slot: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("9{:09}{:02}", (nanos / 1000) % 1_000_000_000, slot % 100)
}

fn email(number: &str) -> String {
    format!("wa+{number}@whatsapp.invalid")
}

fn rt_section(url: &str, token: &str, queue: &str) -> String {
    format!(
        "[connectors.helpdesk]\nkind = \"rt\"\nurl = \"{url}\"\ntoken = \"{token}\"\nqueue = \"{queue}\"\ntimeout_secs = 10\n"
    )
}

/// Posts until acknowledged, as Meta does: a body that got no 200 is sent again.
async fn post_until_acknowledged(url: &str, body: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while post_to(url, body, Some(sign(body))).await != 200 {
        assert!(Instant::now() < deadline, "never acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_become_tickets_with_every_message_once_and_in_order() {
    use base64::Engine;
    use sha2::Digest;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let rt = Rt::from_env();
    let graph = MockServer::start().await;
    let png = b"\x89PNG\r\n\x1a\n fake image bytes for RT".to_vec();
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&png));
    Mock::given(method("GET"))
        .and(path("/v23.0/555000111"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "url": format!("{}/media/555000111", graph.uri()),
            "mime_type": "image/jpeg", "sha256": sha, "file_size": png.len(), "id": "555000111"
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/555000111"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(png.clone()))
        .mount(&graph)
        .await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &rt_section(&rt.url, &rt.token, "General"),
        Some(&graph.uri()),
    );
    let daemon = Daemon::start(&config);
    let aisha = unique_number(1);
    let omar = unique_number(2);
    let t0 = 1_764_000_000;
    for i in 0..3 {
        let body = text_webhook(
            &aisha,
            "Aisha Al-Balushi",
            &format!("wamid.A{aisha}{i}"),
            t0 + i,
            &format!("Aisha message {i}"),
        );
        assert_eq!(daemon.post(&body).await, 200);
        let body = text_webhook(
            &omar,
            "Omar",
            &format!("wamid.O{omar}{i}"),
            t0 + i,
            &format!("Omar message {i}"),
        );
        assert_eq!(daemon.post(&body).await, 200);
    }
    let image = image_webhook(
        &aisha,
        &format!("wamid.A{aisha}img"),
        t0 + 10,
        "555000111",
        &sha,
    );
    assert_eq!(daemon.post(&image).await, 200);
    // Meta redelivers: the same body again is harmless.
    assert_eq!(daemon.post(&image).await, 200);
    daemon.wait_idle(Duration::from_secs(120));

    let tickets = rt.tickets_of(&email(&aisha)).await;
    assert_eq!(tickets.len(), 1, "one ticket per conversation: {tickets:?}");
    let (ticket, subject, _) = &tickets[0];
    assert!(
        subject.contains("Aisha Al-Balushi") && subject.contains(&format!("+{aisha}")),
        "{subject}"
    );
    let markers = rt.markers(*ticket).await;
    let expected: Vec<String> = (0..3)
        .map(|i| format!("wamid.A{aisha}{i}"))
        .chain([format!("wamid.A{aisha}img")])
        .collect();
    assert_eq!(markers, expected, "every message once, in order");
    let parts = rt.parts(*ticket).await;
    let texts: String = parts
        .iter()
        .filter(|p| p.0.starts_with("text/"))
        .map(|p| String::from_utf8_lossy(&p.2).into_owned())
        .collect();
    assert!(
        texts.contains("Aisha message 0") && texts.contains("my receipt"),
        "{texts}"
    );
    let image_part = parts
        .iter()
        .find(|p| p.0 == "image/jpeg")
        .expect("the image is attached");
    assert_eq!(image_part.2, png, "attachment bytes as downloaded");
    assert!(image_part.1.ends_with(".jpg"), "file name {}", image_part.1);

    let omar_tickets = rt.tickets_of(&email(&omar)).await;
    assert_eq!(omar_tickets.len(), 1);
    assert_eq!(
        rt.markers(omar_tickets[0].0).await,
        (0..3)
            .map(|i| format!("wamid.O{omar}{i}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_after_the_ticket_was_resolved_reopens_it() {
    let rt = Rt::from_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(
        dir.path(),
        &rt_section(&rt.url, &rt.token, "General"),
        None,
    ));
    let number = unique_number(3);
    let t0 = 1_764_000_000;
    assert_eq!(
        daemon
            .post(&text_webhook(
                &number,
                "Lina",
                &format!("wamid.R{number}1"),
                t0,
                "first"
            ))
            .await,
        200
    );
    daemon.wait_idle(Duration::from_secs(60));
    let tickets = rt.tickets_of(&email(&number)).await;
    assert_eq!(tickets.len(), 1);
    rt.set_status(tickets[0].0, "resolved").await;
    assert_eq!(
        daemon
            .post(&text_webhook(
                &number,
                "Lina",
                &format!("wamid.R{number}2"),
                t0 + 60,
                "back again"
            ))
            .await,
        200
    );
    daemon.wait_idle(Duration::from_secs(60));
    let tickets = rt.tickets_of(&email(&number)).await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0].2, "open");
    assert_eq!(rt.markers(tickets[0].0).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_rt_error_dead_letters_and_replay_delivers_after_the_fix() {
    let rt = Rt::from_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &rt_section(&rt.url, &rt.token, "NoSuchQueue"),
        None,
    );
    let mut daemon = Daemon::start(&config);
    let number = unique_number(4);
    let body = text_webhook(
        &number,
        "Dana",
        &format!("wamid.D{number}"),
        1_764_000_000,
        "lost queue",
    );
    assert_eq!(daemon.post(&body).await, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.stats()["dead"] != 1 {
        assert!(
            Instant::now() < deadline,
            "no dead letter: {}",
            daemon.stats()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out) = daemon.cli(&["dlq", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("NoSuchQueue") || out.contains("403") || out.contains("queue"),
        "{out}"
    );
    assert!(
        !out.contains(&number),
        "phone numbers are redacted in the listing: {out}"
    );

    // The admin fixes the configuration, restarts, and replays.
    daemon.terminate();
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("NoSuchQueue", "General");
    std::fs::write(&config, text).expect("config");
    daemon.restart();
    let (code, out) = daemon.cli(&["dlq", "replay", "--all"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Replayed 1"), "{out}");
    daemon.wait_idle(Duration::from_secs(60));
    assert_eq!(daemon.stats()["dead"], 0);
    let tickets = rt.tickets_of(&email(&number)).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        rt.markers(tickets[0].0).await,
        vec![format!("wamid.D{number}")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rt_outage_only_delays_delivery_and_keeps_order() {
    let rt = Rt::from_env();
    let target = rt.url.trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(&target).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &rt_section(&format!("http://{}", proxy.addr), &rt.token, "General"),
        None,
    );
    let daemon = Daemon::start(&config);
    proxy.down().await;
    let numbers = [unique_number(5), unique_number(6)];
    let t0 = 1_764_000_000;
    for i in 0..5 {
        for number in &numbers {
            let body = text_webhook(
                number,
                "Outage",
                &format!("wamid.U{number}{i}"),
                t0 + i,
                &format!("during outage {i}"),
            );
            assert_eq!(daemon.post(&body).await, 200, "accepted while RT is down");
        }
    }
    // The jobs fail and wait for their retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = daemon.stats();
        if stats["waiting_retry"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(stats["jobs"], 10, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "no retry scheduled: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.up().await;
    daemon.wait_idle(Duration::from_secs(120));
    for number in &numbers {
        let tickets = rt.tickets_of(&email(number)).await;
        assert_eq!(tickets.len(), 1, "{tickets:?}");
        assert_eq!(
            rt.markers(tickets[0].0).await,
            (0..5)
                .map(|i| format!("wamid.U{number}{i}"))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(daemon.stats()["dead"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_load_loses_nothing_and_duplicates_nothing() {
    const CONVERSATIONS: u64 = 10;
    const PER_CONVERSATION: i64 = 20;
    let rt = Rt::from_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &rt_section(&rt.url, &rt.token, "General"), None);
    let mut daemon = Daemon::start(&config);
    let numbers: Vec<String> = (0..CONVERSATIONS).map(|c| unique_number(10 + c)).collect();
    let t0 = 1_764_000_000;
    let expected: HashMap<String, Vec<String>> = numbers
        .iter()
        .map(|n| {
            let ids = (0..PER_CONVERSATION)
                .map(|i| format!("wamid.K{n}{i:03}"))
                .collect();
            (n.clone(), ids)
        })
        .collect();

    // One sender per conversation, in order, each message re-sent until acknowledged...
    let mut senders = tokio::task::JoinSet::new();
    for number in numbers.clone() {
        let url = daemon.url.clone();
        senders.spawn(async move {
            for i in 0..PER_CONVERSATION {
                let wamid = format!("wamid.K{number}{i:03}");
                let body = text_webhook(
                    &number,
                    "Crash Test",
                    &wamid,
                    t0 + i,
                    &format!("message {i}"),
                );
                post_until_acknowledged(&url, &body).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    // ...while the daemon is SIGKILLed and restarted every couple of seconds.
    let mut kills = 0;
    while !senders.is_empty() || kills < 3 {
        tokio::time::sleep(Duration::from_millis(1500 + 300 * (kills % 3))).await;
        daemon.kill();
        kills += 1;
        daemon.restart();
        while let Some(done) = senders.try_join_next() {
            done.expect("sender");
        }
    }
    // One more kill while the backlog is being delivered to RT.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.kill();
    daemon.restart();
    daemon.wait_idle(Duration::from_secs(900));
    for number in &numbers {
        let tickets = rt.tickets_of(&email(number)).await;
        assert_eq!(tickets.len(), 1, "one ticket for {number}: {tickets:?}");
        let markers = rt.markers(tickets[0].0).await;
        assert_eq!(
            &markers, &expected[number],
            "exactly once and in order for {number}"
        );
    }
    assert_eq!(daemon.stats()["dead"], 0);
    eprintln!("crash test: {kills} SIGKILLs during the load, one during delivery");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_rt_wrote_and_before_it_was_recorded_is_repaired_by_lookup() {
    let rt = Rt::from_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &rt_section(&rt.url, &rt.token, "General"), None);
    let failpoint = vec![(
        "WABRIDGE_FAILPOINT".to_owned(),
        "after_remote_success".to_owned(),
    )];
    let mut daemon = Daemon::start_with_env(&config, failpoint.clone());
    let number = unique_number(7);
    let t0 = 1_764_000_000;
    // The first message opens the ticket; the process dies before recording that.
    let first = text_webhook(&number, "Reem", &format!("wamid.F{number}1"), t0, "first");
    assert_eq!(daemon.post(&first).await, 200);
    assert!(!daemon.wait_exit(Duration::from_secs(60)).success());
    // After a restart the second message is written, and the daemon dies again.
    daemon.restart();
    let second = text_webhook(
        &number,
        "Reem",
        &format!("wamid.F{number}2"),
        t0 + 5,
        "second",
    );
    assert_eq!(daemon.post(&second).await, 200);
    assert!(!daemon.wait_exit(Duration::from_secs(60)).success());
    daemon.set_env(Vec::new());
    daemon.restart();
    daemon.wait_idle(Duration::from_secs(120));
    let tickets = rt.tickets_of(&email(&number)).await;
    assert_eq!(tickets.len(), 1, "no second ticket: {tickets:?}");
    assert_eq!(
        rt.markers(tickets[0].0).await,
        vec![format!("wamid.F{number}1"), format!("wamid.F{number}2")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_reply_in_rt_reaches_whatsapp_inside_the_window_and_is_explained_outside() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let rt = Rt::from_env();
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.REPLY1" }]
        })))
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &rt_section(&rt.url, &rt.token, "General"),
        Some(&graph.uri()),
    );
    let daemon = Daemon::start(&config);
    let now = chrono::Utc::now().timestamp();
    let open = unique_number(20);
    let closed = unique_number(21);
    let body = text_webhook(
        &open,
        "Nadia",
        &format!("wamid.W{open}"),
        now - 60,
        "Is my order on its way?",
    );
    assert_eq!(daemon.post(&body).await, 200);
    // This customer last wrote two days ago: the 24-hour window is closed.
    let body = text_webhook(
        &closed,
        "Salim",
        &format!("wamid.W{closed}"),
        now - 2 * 86_400,
        "Hello?",
    );
    assert_eq!(daemon.post(&body).await, 200);
    daemon.wait_idle(Duration::from_secs(60));
    let open_ticket = rt.tickets_of(&email(&open)).await[0].0;
    let closed_ticket = rt.tickets_of(&email(&closed)).await[0].0;

    rt.correspond(open_ticket, "Yes, it ships tomorrow.").await;
    rt.correspond(closed_ticket, "Sorry for the delay!").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let sent = loop {
        let sent: Vec<serde_json::Value> = posted_bodies(&graph).await;
        if !sent.is_empty() {
            break sent;
        }
        assert!(
            Instant::now() < deadline,
            "no reply sent: {}",
            tail(&daemon.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The blocked one is explained inside its ticket.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts: String = rt
            .parts(closed_ticket)
            .await
            .iter()
            .filter(|p| p.0.starts_with("text/"))
            .map(|p| String::from_utf8_lossy(&p.2).into_owned())
            .collect();
        if texts.contains("was NOT sent") {
            assert!(texts.contains("24-hour window"), "{texts}");
            break;
        }
        assert!(Instant::now() < deadline, "no note in the ticket: {texts}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The agent then asks for a template from the ticket; this one is not in the catalog, so
    // the ticket says so and nothing is sent.
    rt.correspond(closed_ticket, "/template reopen_chat lang=en 1=Salim")
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts: String = rt
            .parts(closed_ticket)
            .await
            .iter()
            .filter(|p| p.0.starts_with("text/"))
            .map(|p| String::from_utf8_lossy(&p.2).into_owned())
            .collect();
        if texts.matches("was NOT sent").count() >= 2 {
            assert!(texts.contains("reopen_chat"), "{texts}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no note for the template command: {texts}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    daemon.wait_idle(Duration::from_secs(30));
    let sent_now: Vec<serde_json::Value> = posted_bodies(&graph).await;
    assert_eq!(
        sent_now.len(),
        1,
        "only the reply inside the window is sent: {sent:?}"
    );
    assert_eq!(sent_now[0]["to"], open.as_str());
    assert_eq!(sent_now[0]["type"], "text");
    assert_eq!(sent_now[0]["text"]["body"], "Yes, it ships tomorrow.");
    let (_, out) = daemon.cli(&["audit"]);
    assert!(
        out.contains("\tsent\tagent reply") && out.contains("\tblock\tagent reply"),
        "{out}"
    );
}
