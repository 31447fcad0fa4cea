//! The "agent replied" webhook: a shared secret and the body the automation rule sends.
//!
//! Freshdesk does not sign webhooks. The automation rule's "Trigger webhook" action sends
//! the configured `webhook_secret` in the custom header `X-Wabridge-Secret` (or, where a
//! header cannot be set, as `?secret=` in the URL); it is compared in constant time.
//!
//! The body ([`AUTOMATION_BODY`]) carries the ticket id and `{{ticket.latest_public_comment}}`,
//! the reply as HTML. Freshdesk has no placeholder for the reply's id, so the reply's id is
//! derived from the ticket and the text (see [`replies`]).

use chrono::Utc;
use ring::{digest, hmac};
use serde_json::Value;

use super::client::id_of;
use super::MARKER_PREFIX;
use crate::{AgentReply, ConnectorError, TicketRef, WebhookRejection, WebhookRequest};

/// The header that carries the shared secret.
pub const SECRET_HEADER: &str = "x-wabridge-secret";
/// The query parameter that may carry it instead.
pub const SECRET_PARAMETER: &str = "secret";

/// The JSON body to give the automation rule's "Trigger webhook" action ("Advanced" content).
pub const AUTOMATION_BODY: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "reply": "{{ticket.latest_public_comment}}",
  "agent_email": "{{ticket.agent.email}}",
  "event": "{{triggered_event}}"
}"#;

fn unauthorized(why: &str) -> WebhookRejection {
    WebhookRejection::Unauthorized(format!("freshdesk webhook: {why}"))
}

/// The secret the request carries: the header, else the `secret` query parameter.
fn presented(request: &WebhookRequest<'_>) -> Option<String> {
    if let Some(value) = request
        .headers
        .get(SECRET_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        return Some(value.trim().to_owned());
    }
    let query = request.path_and_query.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    reqwest::Url::parse(&format!("http://wabridge.invalid/?{query}"))
        .ok()?
        .query_pairs()
        .find(|(name, _)| name == SECRET_PARAMETER)
        .map(|(_, value)| value.trim().to_owned())
}

/// Checks the shared secret in constant time: the expected secret is HMAC-SHA256-tagged under
/// a fresh random key and `ring` verifies the presented one against that tag in constant time
/// (so neither the content nor the length of the secret leaks through timing).
pub(crate) fn verify(secret: &str, request: &WebhookRequest<'_>) -> Result<(), WebhookRejection> {
    let presented = presented(request)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| unauthorized("missing X-Wabridge-Secret header (or ?secret=)"))?;
    let rng = ring::rand::SystemRandom::new();
    let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
        .map_err(|_| unauthorized("no randomness to compare the secret"))?;
    let expected = hmac::sign(&key, secret.trim().as_bytes());
    hmac::verify(&key, presented.as_bytes(), expected.as_ref())
        .map_err(|_| unauthorized("the shared secret does not match"))
}

/// Plain text of Freshdesk's HTML: the quoted history (`freshdesk_quote`) removed, line
/// breaks kept, tags dropped, entities decoded, blank lines collapsed.
pub fn html_to_text(html: &str) -> String {
    let html = match html.find("freshdesk_quote") {
        Some(at) => match html[..at].rfind('<') {
            Some(start) => &html[..start],
            None => &html[..at],
        },
        None => html,
    };
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = rest[open + 1..open + close]
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(
            tag.as_str(),
            "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "blockquote"
        ) {
            text.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    let text = decode_entities(&text);
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() && lines.last().is_none_or(|last| last.trim().is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn unreadable(why: &str) -> ConnectorError {
    ConnectorError::Permanent {
        reason: format!("freshdesk webhook: {why}"),
    }
}

/// Reads the reply out of an [`AUTOMATION_BODY`]. The reply's id is
/// `freshdesk-reply-<ticket>-<first 16 hex digits of SHA-256(text)>`: a webhook Freshdesk
/// delivers twice gives one reply, and so (a limit of this webhook) do two identical replies
/// on the same ticket. A text that carries a wabridge marker `[wa:…]` (a customer message)
/// gives no reply.
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
    let html = body.get("reply").and_then(Value::as_str).unwrap_or("");
    let text = html_to_text(html);
    if text.contains(MARKER_PREFIX) {
        tracing::debug!(ticket, "Ignored a customer message wabridge wrote.");
        return Ok(Vec::new());
    }
    if text.is_empty() {
        tracing::warn!(
            ticket,
            "An agent's reply has no text (attachments only?); nothing to send to WhatsApp."
        );
        return Ok(Vec::new());
    }
    let hash = digest::digest(&digest::SHA256, format!("{ticket}\n{text}").as_bytes());
    let hex: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(vec![AgentReply {
        id: format!("freshdesk-reply-{ticket}-{hex}"),
        ticket: TicketRef(ticket.to_string()),
        text,
        at: Utc::now(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_freshdesk_html_into_text() {
        assert_eq!(
            html_to_text(
                "<div>Hi Aisha,<br>your parcel ships <b>tomorrow</b> &amp; arrives Friday.</div>\
                 <div><br></div><p>R&#233;gards &#8211; Team&nbsp;A</p>\
                 <div class=\"freshdesk_quote\"><blockquote class=\"freshdesk_quote\">On Mon, \
                 Aisha wrote: where is it?</blockquote></div>"
            ),
            "Hi Aisha,\nyour parcel ships tomorrow & arrives Friday.\n\nRégards – Team A"
        );
        assert_eq!(html_to_text("plain 1 < 2 & 3"), "plain 1 < 2 & 3");
        assert_eq!(html_to_text("&#x1F44D; ok &unknown;"), "👍 ok &unknown;");
    }
}
