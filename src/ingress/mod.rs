//! HTTP ingress: Meta's webhook (handshake and notifications) and health.
//!
//! Guarantees: a body is answered `200` only after it is on disk ([`Inbox::accept`]); a
//! missing or wrong signature is answered `401` and nothing is stored; a body over 3 MiB is
//! answered `413`. Parsing happens later, in the dispatcher, so a signed but malformed body is
//! acknowledged and quarantined, never dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use wabridge_connectors::Secret;

pub mod sources;

use crate::store::{EventInbox, Inbox};
use crate::whatsapp::signature;

/// Largest webhook body accepted (Meta: payloads up to 3 MB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Counters served at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Meta's webhook bodies stored and acknowledged.
    pub accepted: AtomicU64,
    /// Meta's webhook bodies refused for their signature.
    pub rejected_signature: AtomicU64,
    /// Meta's webhook bodies that could not be stored (answered 503).
    pub store_errors: AtomicU64,
    /// CRM/shop events (`POST /events/{source}`).
    pub events: Counters,
    /// Requests connectors' systems pushed (`POST /connectors/{name}/webhook`).
    pub connector_webhooks: Counters,
}

/// Accepted, refused and unstored requests of one kind.
#[derive(Debug, Default)]
pub struct Counters {
    /// Stored and acknowledged.
    pub accepted: AtomicU64,
    /// Refused: not authenticated.
    pub rejected: AtomicU64,
    /// Could not be stored (answered 503).
    pub store_errors: AtomicU64,
}

/// What the routes need.
#[derive(Clone)]
pub struct IngressState {
    /// App secrets (any may sign).
    pub secrets: Arc<Vec<Secret>>,
    /// The subscription handshake token.
    pub verify_token: Secret,
    /// Where accepted bodies go.
    pub inbox: Arc<dyn Inbox>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Event sources by name, and where their events go.
    pub sources: HashMap<String, Arc<sources::SourceAuth>>,
    /// Where authenticated events go.
    pub events: Option<Arc<dyn EventInbox>>,
    /// Connectors whose systems push webhooks (`POST /connectors/{name}/webhook`); their
    /// verified bodies go to `events`.
    pub connectors: Option<Arc<crate::sync::Connectors>>,
}

/// What the routes use, prepared once (keyed signature states) and shared.
struct Shared {
    verifier: signature::Verifier,
    verify_token: Secret,
    inbox: Arc<dyn Inbox>,
    metrics: Arc<Metrics>,
    sources: HashMap<String, Arc<sources::SourceAuth>>,
    events: Option<Arc<dyn EventInbox>>,
    connectors: Option<Arc<crate::sync::Connectors>>,
}

/// The public router.
pub fn router(state: IngressState) -> Router {
    let shared = Arc::new(Shared {
        verifier: signature::Verifier::new(&state.secrets),
        verify_token: state.verify_token,
        inbox: state.inbox,
        metrics: state.metrics,
        sources: state.sources,
        events: state.events,
        connectors: state.connectors,
    });
    Router::new()
        .route("/webhooks/whatsapp", get(handshake).post(receive))
        .route("/events/{source}", axum::routing::post(receive_event))
        .route(
            "/connectors/{name}/webhook",
            axum::routing::post(receive_connector_webhook),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn handshake(
    State(state): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_bytes);
    let challenge = query.get("hub.challenge");
    let token_ok = token
        .map(|t| constant_time_eq(t, state.verify_token.expose().as_bytes()))
        .unwrap_or(false);
    match (mode, token_ok, challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            tracing::info!("Webhook subscription verified.");
            (StatusCode::OK, challenge.clone())
        }
        _ => {
            tracing::warn!("Webhook handshake refused: wrong mode or verify token.");
            (StatusCode::FORBIDDEN, "forbidden".to_owned())
        }
    }
}

async fn receive(State(state): State<Arc<Shared>>, request: Request) -> impl IntoResponse {
    // The whole request, not the header-map and body extractors: no copy of the headers.
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body over 3 MiB"),
    };
    let header = parts.headers.get(signature::HEADER).map(|v| v.as_bytes());
    if let Err(err) = state.verifier.verify(header, &body) {
        state
            .metrics
            .rejected_signature
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = err.kind(), "Webhook refused: {err}.");
        return (StatusCode::UNAUTHORIZED, "invalid signature");
    }
    match state.inbox.accept(&body).await {
        Ok(()) => {
            state.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, "ok")
        }
        Err(err) => {
            state.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "Webhook not stored; answered 503 so Meta retries.");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored")
        }
    }
}

async fn receive_event(
    State(state): State<Arc<Shared>>,
    axum::extract::Path(source): axum::extract::Path<String>,
    request: Request,
) -> impl IntoResponse {
    let (Some(auth), Some(events)) = (state.sources.get(&source), &state.events) else {
        return (StatusCode::NOT_FOUND, "unknown event source");
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body over 3 MiB"),
    };
    let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
    let scheme = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let url = format!("{scheme}://{host}{}", parts.uri);
    let checked = auth.verify(
        &sources::EventRequest {
            header: &header,
            method: parts.method.as_str(),
            url: &url,
            body: &body,
        },
        chrono::Utc::now(),
    );
    if let Err(err) = checked {
        state
            .metrics
            .events
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(source = %source, reason = err.kind(), "Event refused: {err}.");
        return (StatusCode::UNAUTHORIZED, "not authenticated");
    }
    match events.accept_event(&source, &body).await {
        Ok(()) => {
            state
                .metrics
                .events
                .accepted
                .fetch_add(1, Ordering::Relaxed);
            (StatusCode::ACCEPTED, "accepted")
        }
        Err(err) => {
            state
                .metrics
                .events
                .store_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "Event not stored; answered 503.");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored")
        }
    }
}

/// A request a connector's system pushed: verified by the connector (401, stored nowhere, when
/// it fails; 404 when the connector takes no webhooks), then stored durably before the 200.
async fn receive_connector_webhook(
    State(state): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    request: Request,
) -> impl IntoResponse {
    let (Some(connectors), Some(events)) = (&state.connectors, &state.events) else {
        return (StatusCode::NOT_FOUND, "no such connector webhook");
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body over 3 MiB"),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let verdict = connectors.verify_webhook(
        &name,
        &wabridge_connectors::WebhookRequest {
            method: parts.method.as_str(),
            path_and_query,
            headers: &parts.headers,
            body: &body,
            received_at: chrono::Utc::now(),
        },
    );
    match verdict {
        Ok(()) => {}
        Err(wabridge_connectors::WebhookRejection::NotSupported) => {
            return (StatusCode::NOT_FOUND, "no such connector webhook");
        }
        Err(wabridge_connectors::WebhookRejection::Unauthorized(reason)) => {
            state
                .metrics
                .connector_webhooks
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(connector = %name, "Connector webhook refused: {reason}.");
            return (StatusCode::UNAUTHORIZED, "not authenticated");
        }
    }
    match events.accept_webhook(&name, &body).await {
        Ok(()) => {
            state
                .metrics
                .connector_webhooks
                .accepted
                .fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, "accepted")
        }
        Err(err) => {
            state
                .metrics
                .connector_webhooks
                .store_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "Connector webhook not stored; answered 503.");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored")
        }
    }
}

async fn metrics(State(state): State<Arc<Shared>>) -> String {
    let m = &state.metrics;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut text = format!(
        "# TYPE wabridge_webhooks_accepted_total counter\nwabridge_webhooks_accepted_total {}\n\
         # TYPE wabridge_webhooks_rejected_total counter\nwabridge_webhooks_rejected_total{{reason=\"signature\"}} {}\n\
         # TYPE wabridge_webhooks_store_errors_total counter\nwabridge_webhooks_store_errors_total {}\n",
        load(&m.accepted),
        load(&m.rejected_signature),
        load(&m.store_errors),
    );
    for (name, help) in [
        ("accepted", "stored and acknowledged"),
        ("rejected", "refused: not authenticated"),
        ("store_errors", "not stored (answered 503)"),
    ] {
        text.push_str(&format!(
            "# HELP wabridge_pushed_{name}_total CRM/shop events and connector webhooks {help}\n\
             # TYPE wabridge_pushed_{name}_total counter\n"
        ));
        for (kind, counters) in [("event", &m.events), ("connector", &m.connector_webhooks)] {
            let counter = match name {
                "accepted" => &counters.accepted,
                "rejected" => &counters.rejected,
                _ => &counters.store_errors,
            };
            text.push_str(&format!(
                "wabridge_pushed_{name}_total{{kind=\"{kind}\"}} {}\n",
                load(counter)
            ));
        }
    }
    text
}

/// Compares without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
