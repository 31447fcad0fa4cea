//! A local stand-in for the Cloud API's send endpoint that enforces a throughput limit the way
//! Meta documents it: more than `mps` messages for one number within one second is refused
//! with error `130429` (HTTP 400, Meta's error shape). Used by the rate-limit tests and by the
//! pacing benchmark (`cargo bench --bench pacing`); it is not part of the daemon.
//!
//! The limit is a strict sliding window over arrival times: no placement of a one-second
//! window may hold more than `mps` accepted messages. That is stricter than a token bucket
//! (which would let a burst and a second's refill through), so a sender that passes this fake
//! passes any reasonable reading of "80 messages per second".

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

/// What the fake saw.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Messages accepted (answered with a `wamid`).
    pub accepted: u64,
    /// Messages refused with `130429`.
    pub throttled: u64,
    /// Arrival times of the accepted messages, in order.
    pub accepted_at: Vec<Instant>,
}

#[derive(Default)]
struct Inner {
    counts: Counts,
    /// Per phone number id, the arrival times of the accepted messages in the last second.
    windows: HashMap<String, VecDeque<Instant>>,
}

/// The running fake. Dropping it does not stop the server task; it ends with the runtime.
#[derive(Clone)]
pub struct FakeGraph {
    addr: SocketAddr,
    mps: usize,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGraph {
    /// Starts the fake on an ephemeral loopback port, refusing more than `mps` messages per
    /// number within any one second.
    pub async fn start(mps: usize) -> std::io::Result<FakeGraph> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let fake = FakeGraph {
            addr: listener.local_addr()?,
            mps: mps.max(1),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(fake)
    }

    /// The base URL a [`crate::whatsapp::sender::Sender`] takes (with the API version).
    pub fn base_url(&self) -> String {
        format!("http://{}/v23.0", self.addr)
    }

    /// What the fake saw so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn send(
    State(fake): State<FakeGraph>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let now = Instant::now();
    let mut inner = fake.lock();
    let window = inner.windows.entry(phone_number_id).or_default();
    while window
        .front()
        .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
    {
        window.pop_front();
    }
    if window.len() >= fake.mps {
        inner.counts.throttled += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": {
                "message": "(#130429) Rate limit hit",
                "type": "OAuthException",
                "code": 130429,
                "error_data": { "messaging_product": "whatsapp",
                                "details": "Cloud API message throughput has been reached." },
                "fbtrace_id": "FakeGraph"
            }})),
        )
            .into_response();
    }
    window.push_back(now);
    inner.counts.accepted += 1;
    inner.counts.accepted_at.push(now);
    let n = inner.counts.accepted;
    let to = body.get("to").cloned().unwrap_or_default();
    Json(serde_json::json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": format!("wamid.FAKE{n}"), "message_status": "accepted" }]
    }))
    .into_response()
}
