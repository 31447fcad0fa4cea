//! The "agent replied" webhook: Zendesk's signature check and the body the trigger sends.
//!
//! Zendesk signs every webhook request: `X-Zendesk-Webhook-Signature` is
//! `base64(HMAC-SHA256(signing secret, X-Zendesk-Webhook-Signature-Timestamp + raw body))`,
//! the timestamp being ISO 8601 (`2021-03-25T05:09:27Z`). The connector recomputes it with
//! the configured `webhook_secret`, compares in constant time, and refuses timestamps further
//! than `webhook_tolerance_secs` from its clock (a replayed or pre-signed request).
//!
//! The trigger's JSON body ([`TRIGGER_BODY`]) carries one public comment. Zendesk escapes
//! placeholder values for JSON bodies; every value may arrive as a string.

use chrono::{DateTime, NaiveDateTime, Utc};
use ring::hmac;
use serde_json::Value;

use super::client::id_of;
use super::MARKER_PREFIX;
use crate::{AgentReply, ConnectorError, TicketRef, WebhookRejection, WebhookRequest};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";
/// The header with the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";

/// The JSON body to give the trigger's "Notify by → Active webhook" action.
pub const TRIGGER_BODY: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "comment_id": "{{ticket.latest_comment.id}}",
  "comment": "{{ticket.latest_comment.value}}",
  "public": "{{ticket.latest_comment.is_public}}",
  "author_id": "{{ticket.latest_comment.author.id}}",
  "requester_id": "{{ticket.requester.id}}",
  "author_role": "{{current_user.role}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}"
}"#;

fn unauthorized(why: &str) -> WebhookRejection {
    WebhookRejection::Unauthorized(format!("zendesk webhook: {why}"))
}

/// Checks the signature and the timestamp of a pushed request.
pub(crate) fn verify(
    secret: &[u8],
    tolerance: chrono::Duration,
    request: &WebhookRequest<'_>,
) -> Result<(), WebhookRejection> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let signature = header(SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized("missing X-Zendesk-Webhook-Signature header"))?;
    let timestamp = header(TIMESTAMP_HEADER)
        .ok_or_else(|| unauthorized("missing X-Zendesk-Webhook-Signature-Timestamp header"))?;
    let signed_at = parse_time(timestamp)
        .ok_or_else(|| unauthorized("the signature timestamp is not an ISO 8601 time"))?;
    if (request.received_at - signed_at).abs() > tolerance {
        return Err(unauthorized(
            "the signature timestamp is outside the tolerance (replayed, or a clock is wrong)",
        ));
    }
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature)
        .map_err(|_| unauthorized("the signature is not base64"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = Vec::with_capacity(timestamp.len() + request.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(request.body);
    hmac::verify(&key, &signed, &signature)
        .map_err(|_| unauthorized("the signature does not match the signing secret"))
}

/// Zendesk's timestamps: RFC 3339, or ISO 8601 without seconds (`2013-12-12T05:35Z`, the
/// form of `{{ticket.updated_at_with_timestamp}}`).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let naive = text.strip_suffix('Z')?;
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())
        .map(|time| time.and_utc())
}

fn text_of(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn unreadable(why: &str) -> ConnectorError {
    ConnectorError::Permanent {
        reason: format!("zendesk webhook: {why}"),
    }
}

/// Reads the reply out of a [`TRIGGER_BODY`]. Gives no reply for a comment that is not public,
/// that an end user wrote, that is authored by the ticket's requester (wabridge writes the
/// customer's messages as the requester, through an agent's credentials, so `current_user`
/// is an agent then), or that carries a wabridge marker `[wa:…]`.
pub(crate) fn replies(body: &[u8]) -> Result<Vec<AgentReply>, ConnectorError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|err| unreadable(&format!("the body is not JSON ({err})")))?;
    if !body.is_object() {
        return Err(unreadable("the body is not a JSON object"));
    }
    let ticket = body
        .get("ticket_id")
        .and_then(id_of)
        .ok_or_else(|| unreadable("ticket_id is missing or not a number"))?;
    let comment = body
        .get("comment_id")
        .and_then(id_of)
        .ok_or_else(|| unreadable("comment_id is missing or not a number"))?;

    let role = text_of(&body, "author_role")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if matches!(role.as_str(), "end-user" | "end user" | "enduser") {
        tracing::debug!(ticket, comment, "Ignored a comment written by an end user.");
        return Ok(Vec::new());
    }
    if text_of(&body, "public").is_some_and(|public| public.eq_ignore_ascii_case("false")) {
        tracing::debug!(ticket, comment, "Ignored an internal note.");
        return Ok(Vec::new());
    }
    let author = body.get("author_id").and_then(id_of);
    if author.is_some() && author == body.get("requester_id").and_then(id_of) {
        tracing::debug!(
            ticket,
            comment,
            "Ignored a comment authored by the requester."
        );
        return Ok(Vec::new());
    }
    let text = text_of(&body, "comment").unwrap_or_default();
    if text.contains(MARKER_PREFIX) {
        tracing::debug!(ticket, comment, "Ignored a comment wabridge wrote.");
        return Ok(Vec::new());
    }
    if text.is_empty() {
        tracing::warn!(
            ticket,
            comment,
            "An agent's reply has no text (attachments only?); nothing to send to WhatsApp."
        );
        return Ok(Vec::new());
    }
    let at = ["created_at", "updated_at"]
        .iter()
        .find_map(|key| text_of(&body, key).as_deref().and_then(parse_time))
        .unwrap_or_else(Utc::now);
    Ok(vec![AgentReply {
        id: format!("zendesk-comment-{comment}"),
        ticket: TicketRef(ticket.to_string()),
        text,
        at,
    }])
}
