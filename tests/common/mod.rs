//! Shared helpers for the end-to-end tests: start the real `wabridge` binary on loopback with
//! a generated configuration, sign and post webhooks, stop or kill it.
#![allow(dead_code)]

pub mod rt;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The app secret every test daemon uses.
pub const APP_SECRET: &str = "test-app-secret";
/// The verify token every test daemon uses.
pub const VERIFY_TOKEN: &str = "test-verify-token";
/// The business phone number id of generated webhooks.
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `sha256=<hex>` for a body.
pub fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a body to `<url>/webhooks/whatsapp` with the given signature header; returns the
/// HTTP status, or 0 when nothing answered.
pub async fn post_to(url: &str, body: &[u8], signature: Option<String>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(10))
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// The config file.
    pub config: PathBuf,
    /// The store directory.
    pub store: PathBuf,
    /// Extra environment for restarts.
    env: Vec<(String, String)>,
}

/// Writes a config with the given connector sections (and optional Graph URL) into `dir`.
pub fn write_config(dir: &Path, connectors: &str, graph_url: Option<&str>) -> PathBuf {
    let port = free_port();
    let admin = free_port();
    let store = dir.join("data");
    let graph = graph_url.unwrap_or("http://127.0.0.1:9");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 5

[store]
path = "{store}"

[whatsapp]
app_secrets = ["{APP_SECRET}"]
verify_token = "{VERIFY_TOKEN}"
access_token = "test-access-token"
graph_url = "{graph}"

[queue]
workers = 4
initial_backoff_ms = 200
max_backoff_secs = 2
max_attempts = 1000
recovery_grace_secs = 5
reply_poll_secs = 1

[admin]
listen = "127.0.0.1:{admin}"

[log]
level = "wabridge=debug,info"

{connectors}
"#,
        store = store.display()
    );
    let path = dir.join("wabridge.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn listen_url(config: &Path) -> String {
    let text = std::fs::read_to_string(config).expect("config");
    let line = text
        .lines()
        .find(|l| l.starts_with("listen = "))
        .expect("listen line");
    format!(
        "http://{}",
        line.trim_start_matches("listen = ").trim_matches('"')
    )
}

impl Daemon {
    /// Starts the daemon on `config` and waits until `/healthz` answers.
    pub fn start(config: &Path) -> Daemon {
        Self::start_with_env(config, Vec::new())
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(config: &Path, env: Vec<(String, String)>) -> Daemon {
        let text = std::fs::read_to_string(config).expect("config");
        let store = text
            .lines()
            .find(|l| l.starts_with("path = "))
            .map(|l| PathBuf::from(l.trim_start_matches("path = ").trim_matches('"')))
            .expect("store path");
        let mut daemon = Daemon {
            child: None,
            url: listen_url(config),
            config: config.to_path_buf(),
            store,
            env,
        };
        daemon.restart();
        daemon
    }

    /// Starts the process again (after [`Daemon::kill`]).
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_extension("log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_wabridge"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wabridge");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(true) = http_ok(&format!("{}/healthz", self.url)) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("wabridge exited at start: {status}; log: {}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "wabridge did not start; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Replaces the extra environment used by the next [`Daemon::restart`].
    pub fn set_env(&mut self, env: Vec<(String, String)>) {
        self.env = env;
    }

    /// Waits for the process to exit on its own (e.g. at a failure point).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wabridge did not exit; log: {}", tail(&self.log(), 30));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process id.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wabridge did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Posts a body signed with the test secret; returns the HTTP status (0 if no answer).
    pub async fn post(&self, body: &[u8]) -> u16 {
        self.post_with_signature(body, Some(sign(body))).await
    }

    /// Posts a body with the given signature header.
    pub async fn post_with_signature(&self, body: &[u8], signature: Option<String>) -> u16 {
        post_to(&self.url, body, signature).await
    }

    /// Runs a CLI subcommand against this daemon's config; returns (exit code, stdout).
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_wabridge"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(
                self.env
                    .iter()
                    .filter(|(k, _)| k != "WABRIDGE_FAILPOINT")
                    .cloned(),
            )
            .output()
            .expect("run wabridge");
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// `queue stats --json` through the CLI.
    pub fn stats(&self) -> serde_json::Value {
        let (code, out) = self.cli(&["queue", "stats", "--json"]);
        assert_eq!(code, 0, "queue stats failed: {out}");
        serde_json::from_str(&out).expect("stats JSON")
    }

    /// Waits until no job is queued and the inbox is empty.
    pub fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if stats["jobs"] == 0 && stats["inbox"] == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue not drained: {stats}; log tail: {}",
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// True when a plain blocking GET of the URL answers 200 (used while waiting for start-up,
/// outside any async runtime).
fn http_ok(url: &str) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let without = url.trim_start_matches("http://");
    let (host, path) = without.split_once('/').unwrap_or((without, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

/// The JSON bodies a mock Graph API received by POST (the sends), in order.
pub async fn posted_bodies(graph: &wiremock::MockServer) -> Vec<serde_json::Value> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).expect("json body"))
        .collect()
}

/// A text-message webhook, as Meta sends it.
pub fn text_webhook(from: &str, name: &str, wamid: &str, timestamp: i64, body: &str) -> Vec<u8> {
    let message = serde_json::json!({
        "id": wamid, "timestamp": timestamp.to_string(), "type": "text", "text": { "body": body }
    });
    let webhook = wabridge::whatsapp::message_webhook(PHONE_NUMBER_ID, from, name, message);
    serde_json::to_vec(&webhook).expect("json")
}

/// An image-message webhook referring to media `media_id` whose bytes hash to `sha256_b64`.
pub fn image_webhook(
    from: &str,
    wamid: &str,
    timestamp: i64,
    media_id: &str,
    sha256_b64: &str,
) -> Vec<u8> {
    let message = serde_json::json!({
        "id": wamid, "timestamp": timestamp.to_string(), "type": "image",
        "image": { "id": media_id, "mime_type": "image/jpeg", "sha256": sha256_b64, "caption": "my receipt" }
    });
    let webhook =
        wabridge::whatsapp::message_webhook(PHONE_NUMBER_ID, from, "Photo Sender", message);
    serde_json::to_vec(&webhook).expect("json")
}

/// Every webhook fixture file (Meta's examples and pywa's), with its path.
pub fn fixtures() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whatsapp");
    let mut files = Vec::new();
    for dir in ["meta-openapi/webhooks", "pywa"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixture dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path).expect("fixture");
            files.push((path, bytes));
        }
    }
    files
}
