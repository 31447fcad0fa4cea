//! Reading a real Request Tracker 5 over REST2, to check what the daemon wrote, and a TCP proxy
//! that can cut RT off (an outage) and bring it back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use tokio::task::JoinSet;

/// Connection facts of the test RT, from the environment or `target/rt-test.env`.
#[derive(Clone)]
pub struct Rt {
    /// Base URL, e.g. `http://127.0.0.1:8181`.
    pub url: String,
    /// Auth token of root.
    pub token: String,
    http: reqwest::Client,
}

impl Rt {
    /// Reads `WABRIDGE_TEST_RT_URL`/`WABRIDGE_TEST_RT_TOKEN`, or the file `scripts/rt-setup.sh`
    /// writes. Fails loudly when neither is there: these tests never skip.
    pub fn from_env() -> Rt {
        let mut vars: HashMap<String, String> = HashMap::new();
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rt-test.env");
        if let Ok(text) = std::fs::read_to_string(&file) {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        for key in ["WABRIDGE_TEST_RT_URL", "WABRIDGE_TEST_RT_TOKEN"] {
            if let Ok(value) = std::env::var(key) {
                vars.insert(key.to_owned(), value);
            }
        }
        let (Some(url), Some(token)) = (
            vars.get("WABRIDGE_TEST_RT_URL"),
            vars.get("WABRIDGE_TEST_RT_TOKEN"),
        ) else {
            panic!(
                "no test Request Tracker: run `bash scripts/rt-setup.sh` first (or the README's \
                 test command, which does it)"
            );
        };
        Rt {
            url: url.clone(),
            token: token.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// A GET on REST2 (`path_and_query` after `/REST/2.0/`); panics on a non-2xx answer.
    pub async fn get(&self, path_and_query: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/REST/2.0/{path_and_query}", self.url))
            .header("authorization", format!("token {}", self.token))
            .send()
            .await
            .expect("RT answers");
        assert!(
            response.status().is_success(),
            "RT {path_and_query}: {}",
            response.status()
        );
        response.json().await.expect("RT JSON")
    }

    /// Tickets whose requestor is `email`: (id, subject, status).
    pub async fn tickets_of(&self, email: &str) -> Vec<(u64, String, String)> {
        let query = format!("Requestor.EmailAddress = '{email}'");
        let url = format!(
            "tickets?query={}&fields=Subject,Status&per_page=100&orderby=id",
            urlencode(&query)
        );
        let value = self.get(&url).await;
        value["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["id"]
                        .as_u64()
                        .or_else(|| t["id"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap_or(0),
                    t["Subject"].as_str().unwrap_or("").to_owned(),
                    t["Status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// Ids of the ticket's transactions that are history entries people write (Create,
    /// Comment, Correspond) — not the EmailRecord copies of notifications RT sends.
    async fn entry_transactions(&self, ticket: u64) -> std::collections::HashSet<String> {
        let mut ids = std::collections::HashSet::new();
        let mut page = 1;
        loop {
            let value = self
                .get(&format!(
                    "ticket/{ticket}/history?fields=Type&per_page=100&page={page}"
                ))
                .await;
            let items = value["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                if matches!(
                    item["Type"].as_str(),
                    Some("Create" | "Comment" | "Correspond")
                ) {
                    ids.insert(id_string(&item["id"]));
                }
            }
            if items.is_empty() || page >= value["pages"].as_u64().unwrap_or(1) {
                return ids;
            }
            page += 1;
        }
    }

    /// Every attachment (MIME part) of the ticket's history entries, in creation order:
    /// (content type, file name, decoded content).
    pub async fn parts(&self, ticket: u64) -> Vec<(String, String, Vec<u8>)> {
        let entries = self.entry_transactions(ticket).await;
        let mut parts = Vec::new();
        let mut page = 1;
        loop {
            let value = self
                .get(&format!(
                    "ticket/{ticket}/attachments?fields=ContentType,Filename,Content,TransactionId&per_page=100&page={page}&orderby=id"
                ))
                .await;
            let items = value["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                let transaction = match &item["TransactionId"] {
                    Value::Object(link) => id_string(&link.get("id").cloned().unwrap_or_default()),
                    other => id_string(other),
                };
                if !entries.contains(&transaction) {
                    continue;
                }
                let content_type = item["ContentType"].as_str().unwrap_or("").to_owned();
                let mut content = item["Content"].as_str().unwrap_or("").to_owned();
                if !content_type.starts_with("text/") {
                    // Binary parts read exactly from the single-attachment resource.
                    let single = self
                        .get(&format!("attachment/{}", id_string(&item["id"])))
                        .await;
                    content = single["Content"].as_str().unwrap_or("").to_owned();
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(content.replace(['\n', '\r'], ""))
                    .unwrap_or_else(|_| content.as_bytes().to_vec());
                parts.push((
                    content_type,
                    item["Filename"].as_str().unwrap_or("").to_owned(),
                    bytes,
                ));
            }
            let pages = value["pages"].as_u64().unwrap_or(1);
            if items.is_empty() || page >= pages {
                break;
            }
            page += 1;
        }
        parts
    }

    /// The `[wa:<id>]` markers in a ticket's text parts, in the order they were written.
    pub async fn markers(&self, ticket: u64) -> Vec<String> {
        let mut markers = Vec::new();
        for (content_type, _, bytes) in self.parts(ticket).await {
            if !content_type.starts_with("text/") {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let mut rest: &str = &text;
            while let Some(start) = rest.find("[wa:") {
                let after = &rest[start + 4..];
                let Some(end) = after.find(']') else { break };
                markers.push(after[..end].to_owned());
                rest = &after[end..];
            }
        }
        markers
    }

    /// An agent's public reply in a ticket (RT "Correspond").
    pub async fn correspond(&self, ticket: u64, text: &str) {
        let response = self
            .http
            .post(format!("{}/REST/2.0/ticket/{ticket}/correspond", self.url))
            .header("authorization", format!("token {}", self.token))
            .json(&serde_json::json!({ "Content": text, "ContentType": "text/plain" }))
            .send()
            .await
            .expect("RT answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Creates the queue `name` when RT has none of that name.
    pub async fn ensure_queue(&self, name: &str) {
        let existing = self
            .get(&format!(
                "queues?query={}",
                urlencode(&format!(r#"[{{"field":"Name","value":"{name}"}}]"#))
            ))
            .await;
        if existing["count"].as_u64().unwrap_or(0) > 0 {
            return;
        }
        let response = self
            .http
            .post(format!("{}/REST/2.0/queue", self.url))
            .header("authorization", format!("token {}", self.token))
            .json(&serde_json::json!({ "Name": name }))
            .send()
            .await
            .expect("RT answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// A ticket's fields (Queue, Owner, Priority, Status, ...) as RT's REST2 shows them.
    pub async fn ticket(&self, ticket: u64) -> Value {
        self.get(&format!("ticket/{ticket}")).await
    }

    /// The text of every history entry of a ticket, in order.
    pub async fn texts(&self, ticket: u64) -> Vec<String> {
        self.parts(ticket)
            .await
            .into_iter()
            .filter(|(content_type, _, _)| content_type.starts_with("text/"))
            .map(|(_, _, bytes)| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    /// Sets a ticket's status (e.g. `resolved`).
    pub async fn set_status(&self, ticket: u64, status: &str) {
        let response = self
            .http
            .put(format!("{}/REST/2.0/ticket/{ticket}", self.url))
            .header("authorization", format!("token {}", self.token))
            .json(&serde_json::json!({ "Status": status }))
            .send()
            .await
            .expect("RT answers");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

fn id_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A TCP proxy on a fixed loopback port in front of RT. `down()` closes the port and cuts
/// every open connection (RT "stopped"); `up()` listens again.
pub struct Proxy {
    /// The address clients use.
    pub addr: SocketAddr,
    target: SocketAddr,
    state: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy to `target` (`host:port`), up.
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target.parse().expect("target address");
        let port = super::free_port();
        let proxy = Proxy {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            target,
            state: Arc::new(Mutex::new(None)),
        };
        proxy.up().await;
        proxy
    }

    /// Listens and forwards.
    pub async fn up(&self) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(self.addr).expect("bind proxy port");
        let listener = socket.listen(128).expect("listen");
        let target = self.target;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.state.lock().expect("lock") = Some(task);
    }

    /// Stops listening and cuts every connection (aborting the task drops them all).
    pub async fn down(&self) {
        let task = self.state.lock().expect("lock").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}
