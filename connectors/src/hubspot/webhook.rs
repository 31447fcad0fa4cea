//! HubSpot webhooks: the v3 signature, and the notifications a webhook body holds.
//!
//! **Signature v3.** HubSpot sends `X-HubSpot-Signature-v3` =
//! `base64(HMAC-SHA256(app secret, METHOD + URI + body + timestamp))` and
//! `X-HubSpot-Request-Timestamp` (epoch milliseconds, the exact header text is signed). `URI`
//! is the full URL HubSpot called — scheme, host, path and query — with these percent-encodings
//! decoded, as HubSpot documents: `%3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A *
//! %2C , %3B ;` (others stay encoded). A request more than five minutes away from when wabridge
//! received it (either direction) is rejected, as is a missing or malformed header. The MAC is
//! compared in constant time (`ring::hmac::verify`).

use chrono::{DateTime, TimeZone as _, Utc};
use reqwest::Url;
use serde_json::Value;

use crate::{WebhookRejection, WebhookRequest};

/// The signature header (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
/// The timestamp header, epoch milliseconds.
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
/// How far the timestamp may be from the time of receipt, in milliseconds (HubSpot: 5 min).
pub const TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// The percent-encodings HubSpot decodes in the URI before signing.
const DECODED: [(&str, char); 12] = [
    ("3A", ':'),
    ("2F", '/'),
    ("3F", '?'),
    ("40", '@'),
    ("21", '!'),
    ("24", '$'),
    ("27", '\''),
    ("28", '('),
    ("29", ')'),
    ("2A", '*'),
    ("2C", ','),
    ("3B", ';'),
];

/// Decodes the percent-encodings HubSpot lists (hex digits in either case); leaves every other
/// `%XX` as it is.
pub fn decode_uri(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        let decoded = code.and_then(|code| {
            DECODED
                .iter()
                .find(|(hex, _)| hex.eq_ignore_ascii_case(code))
                .map(|(_, c)| *c)
        });
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The URI HubSpot signed: `public_url`'s scheme, host and port; its path when it has one
/// (a proxy may have stripped a prefix before wabridge), else the path received; always the
/// query received. Then [`decode_uri`].
pub fn signed_uri(public_url: &Url, path_and_query: &str) -> String {
    let origin = public_url.origin().ascii_serialization();
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let public_path = public_url.path();
    let path = if public_path.is_empty() || public_path == "/" {
        path
    } else {
        public_path
    };
    let mut uri = format!("{origin}{path}");
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    decode_uri(&uri)
}

fn unauthorized(reason: &str) -> WebhookRejection {
    WebhookRejection::Unauthorized(reason.to_owned())
}

/// Verifies a request against the app secret (see the module docs).
pub fn verify(
    app_secret: &[u8],
    public_url: &Url,
    request: &WebhookRequest<'_>,
) -> Result<(), WebhookRejection> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let signature = header(SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized("missing X-HubSpot-Signature-v3 header"))?;
    let timestamp = header(TIMESTAMP_HEADER)
        .ok_or_else(|| unauthorized("missing X-HubSpot-Request-Timestamp header"))?;
    let sent_ms: i64 = timestamp
        .parse()
        .map_err(|_| unauthorized("X-HubSpot-Request-Timestamp is not epoch milliseconds"))?;
    let skew = request
        .received_at
        .timestamp_millis()
        .saturating_sub(sent_ms);
    if skew.abs() > TOLERANCE_MS {
        return Err(unauthorized(
            "X-HubSpot-Request-Timestamp is more than 5 minutes from the time of receipt",
        ));
    }
    use base64::Engine as _;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| unauthorized("X-HubSpot-Signature-v3 is not base64"))?;

    let uri = signed_uri(public_url, request.path_and_query);
    let method = request.method.trim().to_ascii_uppercase();
    let mut message =
        Vec::with_capacity(method.len() + uri.len() + request.body.len() + timestamp.len());
    message.extend_from_slice(method.as_bytes());
    message.extend_from_slice(uri.as_bytes());
    message.extend_from_slice(request.body);
    message.extend_from_slice(timestamp.as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret);
    ring::hmac::verify(&key, &message, &signature)
        .map_err(|_| unauthorized("X-HubSpot-Signature-v3 does not match"))
}

/// One entry of a webhook body, as HubSpot sends it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notification {
    /// `eventId` as text (it is a number).
    pub event_id: String,
    /// `subscriptionType`, e.g. `deal.propertyChange`.
    pub subscription_type: String,
    /// `objectId` as text.
    pub object_id: String,
    /// `objectTypeId` of generic (`object.*`) subscriptions, e.g. `0-3`.
    pub object_type_id: Option<String>,
    /// `propertyName` of property changes.
    pub property_name: Option<String>,
    /// `propertyValue` of property changes (HubSpot sends it as a string).
    pub property_value: Option<Value>,
    /// `portalId`.
    pub portal_id: Option<Value>,
    /// `changeSource`, e.g. `CRM_UI`.
    pub change_source: Option<String>,
    /// `occurredAt` (epoch ms).
    pub occurred_at: Option<DateTime<Utc>>,
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one notification; `Err` names what is missing.
pub(crate) fn notification(value: &Value) -> Result<Notification, &'static str> {
    let event_id = value.get("eventId").and_then(text_of).ok_or("no eventId")?;
    let subscription_type = value
        .get("subscriptionType")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("no subscriptionType")?
        .to_owned();
    let object_id = value
        .get("objectId")
        .and_then(text_of)
        .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("no numeric objectId")?;
    Ok(Notification {
        event_id,
        subscription_type,
        object_id,
        object_type_id: value.get("objectTypeId").and_then(text_of),
        property_name: value
            .get("propertyName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        property_value: value.get("propertyValue").cloned(),
        portal_id: value.get("portalId").cloned(),
        change_source: value
            .get("changeSource")
            .and_then(Value::as_str)
            .map(str::to_owned),
        occurred_at: value
            .get("occurredAt")
            .and_then(Value::as_i64)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    })
}

impl Notification {
    /// The object type to fetch (API path segment), or why the notification is not handled.
    pub(crate) fn object_type(&self) -> Result<String, &'static str> {
        let (prefix, action) = self
            .subscription_type
            .split_once('.')
            .ok_or("unknown subscription type")?;
        if !matches!(action, "creation" | "propertyChange") {
            return Err("only creation and propertyChange notifications become events");
        }
        let by_type_id = |id: &str| match id {
            "0-1" => "contacts".to_owned(),
            "0-2" => "companies".to_owned(),
            "0-3" => "deals".to_owned(),
            "0-5" => "tickets".to_owned(),
            other => other.to_owned(),
        };
        match prefix {
            "contact" => Ok("contacts".to_owned()),
            "deal" => Ok("deals".to_owned()),
            "ticket" => Ok("tickets".to_owned()),
            "company" => Ok("companies".to_owned()),
            "object" => match self.object_type_id.as_deref() {
                Some(id)
                    if id.split('-').all(|part| {
                        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
                    }) =>
                {
                    Ok(by_type_id(id))
                }
                _ => Err("generic notification without a valid objectTypeId"),
            },
            _ => Err("unsupported object type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_only_the_listed_encodings() {
        assert_eq!(
            decode_uri("https://h/p%3Aa%2fb?x=%40%21%24%27%28%29%2A%2C%3B%3F&y=%20%26%3D%"),
            "https://h/p:a/b?x=@!$'()*,;?&y=%20%26%3D%"
        );
    }

    #[test]
    fn signs_the_public_origin_with_the_received_path_or_the_public_path() {
        let public = Url::parse("https://wabridge.example.com").expect("url");
        assert_eq!(
            signed_uri(&public, "/connectors/hubspot/webhook?a=1"),
            "https://wabridge.example.com/connectors/hubspot/webhook?a=1"
        );
        let public =
            Url::parse("https://example.com:8443/wa/connectors/hubspot/webhook").expect("url");
        assert_eq!(
            signed_uri(&public, "/connectors/hubspot/webhook"),
            "https://example.com:8443/wa/connectors/hubspot/webhook"
        );
    }

    #[test]
    fn reads_a_notification_and_its_object_type() {
        let n = notification(&json!({
            "eventId": 567890123, "subscriptionId": 234567, "portalId": 12345678,
            "appId": 987654, "occurredAt": 1708986598741_i64,
            "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
            "objectId": 65059681032_i64, "propertyName": "dealstage",
            "propertyValue": "closedwon", "changeSource": "CRM_UI", "sourceId": "userId:45678"
        }))
        .expect("reads");
        assert_eq!(n.event_id, "567890123");
        assert_eq!(n.object_id, "65059681032");
        assert_eq!(n.object_type(), Ok("deals".to_owned()));
        assert_eq!(
            n.occurred_at.map(|t| t.to_rfc3339()),
            Some("2024-02-26T22:29:58.741+00:00".to_owned())
        );
        let generic = notification(&json!({
            "eventId": 1, "subscriptionType": "object.propertyChange", "objectTypeId": "0-123",
            "objectId": 5
        }))
        .expect("reads");
        assert_eq!(generic.object_type(), Ok("0-123".to_owned()));
        let deletion = notification(&json!({
            "eventId": 2, "subscriptionType": "deal.deletion", "objectId": 5
        }))
        .expect("reads");
        assert!(deletion.object_type().is_err());
        assert_eq!(
            notification(&json!({"eventId": 3, "subscriptionType": "deal.creation"})),
            Err("no numeric objectId")
        );
    }
}
