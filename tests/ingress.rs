//! End-to-end: the real binary on loopback, the embedded `files` destination, real sled on disk.

mod common;

use std::time::Duration;

use common::*;

const ARCHIVE: &str = "[connectors.archive]\nkind = \"files\"\n";

fn transcript(daemon: &Daemon, contact: &str) -> String {
    let path = daemon
        .store
        .join("transcripts")
        .join(PHONE_NUMBER_ID)
        .join(format!("{contact}.txt"));
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_echoes_the_challenge_and_refuses_a_wrong_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let client = reqwest::Client::new();
    let ok = client
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
            daemon.url
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.challenge=1",
    ] {
        let refused = client
            .get(format!("{}/webhooks/whatsapp?{query}", daemon.url))
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status().as_u16(), 403, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn returns_401_on_bad_signature_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let body = text_webhook(
        "16505551234",
        "Eve",
        "wamid.FORGED",
        1_749_416_383,
        "forged",
    );
    assert_eq!(daemon.post_with_signature(&body, None).await, 401);
    let wrong = sign(b"something else");
    assert_eq!(daemon.post_with_signature(&body, Some(wrong)).await, 401);
    assert_eq!(
        daemon
            .post_with_signature(&body, Some("sha256=nothex".into()))
            .await,
        401
    );
    let stats = daemon.stats();
    assert_eq!(stats["inbox"], 0);
    assert_eq!(stats["jobs"], 0);
    assert_eq!(stats["quarantined"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(transcript(&daemon, "16505551234"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_3_mib_is_refused_with_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    assert_eq!(daemon.post(&big).await, 413);
    assert_eq!(daemon.stats()["inbox"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_with_a_valid_signature_is_acknowledged_and_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let broken = br#"{"object":"whatsapp_business_account","entry":[{"changes":"#;
    assert_eq!(daemon.post(broken).await, 200);
    let wrong_shape = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":"not a list"}}]}]}"#;
    assert_eq!(daemon.post(wrong_shape).await, 200);
    daemon.wait_idle(Duration::from_secs(10));
    let (code, out) = daemon.cli(&["quarantine", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let entries: serde_json::Value = serde_json::from_str(&out).expect("json");
    let entries = entries.as_array().expect("array");
    assert_eq!(entries.len(), 2, "{out}");
    use base64::Engine;
    let first = base64::engine::general_purpose::STANDARD
        .decode(
            entries[0]["quarantined"]["body_base64"]
                .as_str()
                .expect("base64"),
        )
        .expect("decodes");
    assert_eq!(first, broken.to_vec(), "the exact bytes are kept");
    assert!(entries[1]["quarantined"]["reason"]
        .as_str()
        .expect("reason")
        .contains("messages"));
    assert_eq!(daemon.stats()["quarantined"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_posted_twice_is_written_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let body = text_webhook(
        "96890000001",
        "Aisha",
        "wamid.TWICE",
        1_749_416_383,
        "Where is my order #1001?",
    );
    assert_eq!(daemon.post(&body).await, 200);
    assert_eq!(daemon.post(&body).await, 200);
    daemon.wait_idle(Duration::from_secs(10));
    let text = transcript(&daemon, "96890000001");
    assert_eq!(
        text.matches("Where is my order #1001?").count(),
        1,
        "{text}"
    );
    assert!(text.contains("Aisha (+96890000001)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_are_written_in_timestamp_order_within_one_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    // One webhook carrying two messages, the later one first (Meta does not promise order).
    let mut body: serde_json::Value = serde_json::from_slice(&text_webhook(
        "96890000002",
        "Omar",
        "wamid.SECOND",
        1_749_416_400,
        "second",
    ))
    .expect("json");
    let first: serde_json::Value = serde_json::from_slice(&text_webhook(
        "96890000002",
        "Omar",
        "wamid.FIRST",
        1_749_416_300,
        "first",
    ))
    .expect("json");
    let msg = first["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    body["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .expect("messages")
        .push(msg);
    assert_eq!(
        daemon.post(&serde_json::to_vec(&body).expect("json")).await,
        200
    );
    daemon.wait_idle(Duration::from_secs(10));
    let text = transcript(&daemon, "96890000002");
    let a = text.find("first").expect("first");
    let b = text.find("second").expect("second");
    assert!(a < b, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_is_acknowledged_and_none_is_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let fixtures = fixtures();
    assert!(fixtures.len() > 80, "fixtures missing: {}", fixtures.len());
    for (path, body) in &fixtures {
        assert_eq!(daemon.post(body).await, 200, "{}", path.display());
    }
    // Media messages point at a Graph API that is not there: their jobs keep retrying, so
    // only the inbox is awaited here.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while daemon.stats()["inbox"] != 0 {
        assert!(std::time::Instant::now() < deadline, "inbox not drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = daemon.stats();
    assert_eq!(stats["quarantined"], 0, "{stats}");
    let (_, out) = daemon.cli(&["quarantine", "list"]);
    assert!(out.contains("Quarantine is empty."), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn image_is_downloaded_through_the_graph_api_and_saved_beside_the_transcript() {
    use base64::Engine;
    use sha2::Digest;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let graph = MockServer::start().await;
    let jpeg = b"\xff\xd8\xff\xe0 not really a jpeg".to_vec();
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&jpeg));
    Mock::given(method("GET"))
        .and(path("/v23.0/1037543291543636"))
        .and(header("authorization", "Bearer test-access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/whatsapp_business/attachments/?mid=1037543291543636", graph.uri()),
            "mime_type": "image/jpeg",
            "sha256": sha,
            "file_size": jpeg.len(),
            "id": "1037543291543636"
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .and(header("authorization", "Bearer test-access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(jpeg.clone()))
        .mount(&graph)
        .await;

    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, Some(&graph.uri())));
    let body = image_webhook(
        "96890000003",
        "wamid.IMAGE",
        1_749_416_383,
        "1037543291543636",
        &sha,
    );
    assert_eq!(daemon.post(&body).await, 200);
    daemon.wait_idle(Duration::from_secs(15));
    let text = transcript(&daemon, "96890000003");
    assert!(text.contains("my receipt"), "{text}");
    assert!(
        text.contains(&format!("(image/jpeg, {} bytes)", jpeg.len())),
        "{text}"
    );
    let media_dir = daemon
        .store
        .join("transcripts")
        .join(PHONE_NUMBER_ID)
        .join("96890000003.media");
    let saved: Vec<_> = std::fs::read_dir(&media_dir)
        .expect("media dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(std::fs::read(saved[0].path()).expect("read"), jpeg);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_daemon_cleanly_and_accepted_work_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), ARCHIVE, None);
    let mut daemon = Daemon::start(&config);
    let body = text_webhook(
        "96890000004",
        "Sara",
        "wamid.TERM",
        1_749_416_383,
        "before stop",
    );
    assert_eq!(daemon.post(&body).await, 200);
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "log: {}", daemon.log());
    // With the daemon stopped, the CLI opens the store directly (stats asserts exit 0).
    let stats = daemon.stats();
    assert_eq!(stats["dead"], 0, "{stats}");
    daemon.restart();
    daemon.wait_idle(Duration::from_secs(10));
    assert_eq!(
        transcript(&daemon, "96890000004")
            .matches("before stop")
            .count(),
        1
    );
}

#[test]
fn validate_lists_every_problem_with_file_line_and_exits_78() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nowhere\"\n\n[whatsapp]\napp_secrets = []\nverify_token = \"v\"\naccess_token = \"a\"\n\n[connectors.helpdesk]\nkind = \"rt\"\nurl = \"ftp://x\"\nqueue = \"\"\n",
    )
    .expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(78));
    let err = String::from_utf8_lossy(&output.stderr);
    let file = path.display().to_string();
    assert!(err.contains(&format!("{file}:2: server.listen")), "{err}");
    assert!(
        err.contains(&format!("{file}:5: whatsapp.app_secrets")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:11: connectors.helpdesk.url")),
        "{err}"
    );
    assert!(err.contains("connectors.helpdesk.queue"), "{err}");

    // serve refuses to start on the same file, with the same report.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(78));
}

#[test]
fn shipped_sample_config_is_valid() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["validate", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/wabridge.toml"))
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_posts_a_signed_webhook_that_lands_in_the_transcript() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, None));
    let (code, out) = daemon.cli(&[
        "simulate",
        "--from",
        "+96890000001",
        "--name",
        "Test",
        "--text",
        "Hello from simulate",
    ]);
    assert_eq!(code, 0, "{out}");
    daemon.wait_idle(Duration::from_secs(10));
    let path = daemon
        .store
        .join("transcripts")
        .join("100000000000001")
        .join("96890000001.txt");
    let text = std::fs::read_to_string(path).expect("transcript");
    assert!(
        text.contains("Hello from simulate") && text.contains("Test (+96890000001)"),
        "{text}"
    );
}

fn failpoint(name: &str) -> Vec<(String, String)> {
    vec![("WABRIDGE_FAILPOINT".to_owned(), name.to_owned())]
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_the_remote_write_and_before_recording_it_writes_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), ARCHIVE, None);
    let mut daemon = Daemon::start_with_env(&config, failpoint("after_remote_success"));
    let body = text_webhook(
        "96890000005",
        "Nour",
        "wamid.CRASH1",
        1_749_416_383,
        "written then crashed",
    );
    assert_eq!(daemon.post(&body).await, 200);
    // The worker writes the transcript entry, then the process dies before recording it.
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert_eq!(
        transcript(&daemon, "96890000005")
            .matches("written then crashed")
            .count(),
        1
    );
    daemon.set_env(Vec::new());
    daemon.restart();
    daemon.wait_idle(Duration::from_secs(10));
    let text = transcript(&daemon, "96890000005");
    assert_eq!(text.matches("written then crashed").count(), 1, "{text}");
    assert!(
        daemon.log().contains("already in the ticket"),
        "the lookup found it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_the_inbox_write_and_before_the_flush_is_not_acknowledged_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), ARCHIVE, None);
    let mut daemon = Daemon::start_with_env(&config, failpoint("after_commit_before_flush"));
    let body = text_webhook(
        "96890000006",
        "Huda",
        "wamid.CRASH2",
        1_749_416_383,
        "not yet flushed",
    );
    // No 200: the process dies between the write and the flush that would cover it.
    assert_eq!(daemon.post(&body).await, 0);
    assert!(!daemon.wait_exit(Duration::from_secs(20)).success());
    daemon.set_env(Vec::new());
    daemon.restart();
    // Meta retries what it did not get a 200 for.
    assert_eq!(daemon.post(&body).await, 200);
    daemon.wait_idle(Duration::from_secs(10));
    let text = transcript(&daemon, "96890000006");
    assert_eq!(text.matches("not yet flushed").count(), 1, "{text}");
}

#[test]
fn mapping_test_prints_the_exact_request_and_validate_names_a_bad_mapping_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"event": "order.paid", "id": "evt_1001",
            "order": {"number": "55012", "total": "12.500", "currency": "OMR"},
            "customer": {"name": "Aisha", "phone": "+96891234567"}}"#,
    )
    .expect("event");
    let mapping = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/order_paid.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["mapping", "test", mapping])
        .arg(&event)
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("\"name\": \"order_confirmation\""), "{out}");
    assert!(out.contains("\"to\": \"96891234567\""), "{out}");

    // A broken mapping stops `validate` (and `serve`) with file, line and field.
    let config = write_config(dir.path(), "[connectors.archive]\nkind = \"files\"\n", None);
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).expect("dir");
    std::fs::write(
        mappings.join("broken.toml"),
        "name = \"broken\"\nsource = \"shop\"\nrecipient = \"$.[\"\ntemplate = \"t\"\nlanguage = \"en\"\nidempotency_key = [\"$.id\"]\n",
    )
    .expect("mapping");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{err}");
    assert!(err.contains("broken.toml:3: recipient"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_keyword_opts_out_and_an_admin_opt_in_is_recorded_with_evidence() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v23.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.OK" }] }),
        ))
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(&write_config(dir.path(), ARCHIVE, Some(&graph.uri())));
    let now = chrono::Utc::now().timestamp();
    let hello = text_webhook("96890000007", "Maha", "wamid.C1", now - 60, "Hello");
    assert_eq!(daemon.post(&hello).await, 200);
    let stop = text_webhook("96890000007", "Maha", "wamid.C2", now - 30, "إيقاف");
    assert_eq!(daemon.post(&stop).await, 200);
    daemon.wait_idle(Duration::from_secs(10));

    // The opt-out is confirmed in the customer's language while the window is open.
    let sent: Vec<serde_json::Value> = posted_bodies(&graph).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]["text"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("ابدأ"),
        "{sent:?}"
    );

    // While the daemon runs, the CLI goes through the admin API.
    let (code, out) = daemon.cli(&["contacts", "show", "+968 9000 0007"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("opted out:      yes"), "{out}");
    assert!(out.contains("24-hour window: open until"), "{out}");
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96890000007",
        "--source",
        "web-form",
        "--evidence",
        "form #4411",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = daemon.cli(&[
        "contacts",
        "opt-in",
        "+96890000007",
        "--source",
        "x",
        "--evidence",
        " ",
    ]);
    assert_ne!(code, 0, "empty evidence refused: {out}");

    // Stopped, the CLI reads the store directly and sees the same ledger.
    assert_eq!(daemon.terminate().code(), Some(0));
    let (code, out) = daemon.cli(&["contacts", "show", "+96890000007", "--json"]);
    assert_eq!(code, 0, "{out}");
    let views: serde_json::Value = serde_json::from_str(&out).expect("json");
    let history = views[0]["state"]["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{out}");
    assert_eq!(views[0]["key"], format!("{PHONE_NUMBER_ID}:96890000007"));
    assert!(
        out.contains("form #4411") && out.contains("web-form"),
        "{out}"
    );
    assert_eq!(
        views[0]["state"]["last_inbound_at"]
            .as_str()
            .map(|s| !s.is_empty()),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn template_catalog_is_synced_at_start_and_kept_current_by_status_webhooks() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/555000/message_templates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{
                "id": "1001", "name": "order_confirmation", "language": "en_US",
                "status": "APPROVED", "category": "UTILITY",
                "components": [{ "type": "BODY", "text": "Hi {{1}}, order {{2}} of {{3}} is confirmed." }]
            }],
            "paging": { "cursors": { "before": "A", "after": "B" } }
        })))
        .mount(&graph)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let numbers = format!(
        "{ARCHIVE}\n[[whatsapp.numbers]]\nphone_number_id = \"{PHONE_NUMBER_ID}\"\nwaba_id = \"555000\"\nmps = 80\n"
    );
    let config = write_config(dir.path(), &numbers, Some(&graph.uri()));
    let daemon = Daemon::start(&config);
    let list = |daemon: &Daemon| -> serde_json::Value {
        let (code, out) = daemon.cli(&["templates", "list", "--json"]);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).expect("json")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while list(&daemon).as_array().map_or(0, Vec::len) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "catalog not synced: {}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catalog = list(&daemon);
    assert_eq!(catalog[0]["status"], "APPROVED");
    assert_eq!(catalog[0]["body_params"], 3);

    let paused = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "555000", "time": 1764000000, "changes": [{
            "field": "message_template_status_update",
            "value": { "event": "PAUSED", "message_template_id": 1001,
                       "message_template_name": "order_confirmation",
                       "message_template_language": "en_US", "reason": "NONE" }
        }]}]
    });
    assert_eq!(
        daemon
            .post(&serde_json::to_vec(&paused).expect("json"))
            .await,
        200
    );
    daemon.wait_idle(Duration::from_secs(10));
    let catalog = list(&daemon);
    assert_eq!(catalog[0]["status"], "PAUSED", "{catalog}");
    let (code, out) = daemon.cli(&["templates", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("order_confirmation\ten_US\tUTILITY\tPAUSED"),
        "{out}"
    );
}
