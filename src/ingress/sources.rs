//! Authentication of CRM, shop and helpdesk events (`POST /events/{source}`).
//!
//! Each `[sources.<name>]` says how its requests prove where they come from: an HMAC-SHA256
//! signature in a header (hex or base64, optional prefix, over a configurable message such as
//! `{timestamp}.{body}`, with an optional timestamp header and tolerance against replays), or a
//! bearer token. One general mechanism covers Stripe-, Zendesk- and HubSpot-v3-style schemes.
//! Comparisons are constant-time; nothing about the secret reaches logs or errors.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::Deserialize;
use wabridge_connectors::Secret;

/// `[sources.<name>]`: one event source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `hmac-sha256` (signature header) or `bearer` (`Authorization: Bearer <secret>`).
    pub auth: AuthKind,
    /// The shared secret (HMAC key or bearer token).
    pub secret: Secret,
    /// hmac: the header carrying the signature, e.g. `X-Shop-Signature`.
    #[serde(default)]
    pub header: Option<String>,
    /// hmac: how the signature is written: `hex` or `base64`.
    #[serde(default = "SourceConfig::default_encoding")]
    pub encoding: Encoding,
    /// hmac: a prefix before the signature to strip, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// hmac: the signed message; placeholders `{body}`, `{timestamp}`, `{method}`, `{url}`.
    #[serde(default = "SourceConfig::default_message")]
    pub message: String,
    /// hmac: header carrying the request time (unix seconds or milliseconds).
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// hmac: largest accepted difference between that time and ours, in seconds.
    #[serde(default = "SourceConfig::default_tolerance_secs")]
    pub tolerance_secs: u64,
}

/// How a source authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// HMAC-SHA256 signature header (`auth = "hmac-sha256"`, or `"hmac"`).
    #[serde(rename = "hmac-sha256", alias = "hmac")]
    Hmac,
    /// Bearer token.
    Bearer,
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hex.
    Hex,
    /// Standard base64.
    Base64,
}

impl SourceConfig {
    fn default_encoding() -> Encoding {
        Encoding::Hex
    }
    fn default_message() -> String {
        "{body}".to_owned()
    }
    fn default_tolerance_secs() -> u64 {
        300
    }

    /// Pure checks: (field, message) for each problem.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.secret.is_empty() {
            problems.push(("secret".into(), "must not be empty".into()));
        }
        match self.auth {
            AuthKind::Hmac => {
                if self
                    .header
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("")
                    .is_empty()
                {
                    problems.push((
                        "header".into(),
                        "required with auth = \"hmac-sha256\": the header carrying the signature"
                            .into(),
                    ));
                }
                if !self.message.contains("{body}") {
                    problems.push((
                        "message".into(),
                        "must contain {body}: a signature that does not cover the body proves nothing"
                            .into(),
                    ));
                }
                if self.message.contains("{timestamp}") && self.timestamp_header.is_none() {
                    problems.push((
                        "timestamp_header".into(),
                        "required when message uses {timestamp}".into(),
                    ));
                }
            }
            AuthKind::Bearer => {
                for (field, set) in [
                    ("header", self.header.is_some()),
                    ("prefix", self.prefix.is_some()),
                    ("timestamp_header", self.timestamp_header.is_some()),
                ] {
                    if set {
                        problems.push((field.into(), "only applies to auth = \"hmac\"".into()));
                    }
                }
            }
        }
        problems
    }
}

/// Why an event request was refused (bounded, for metrics; never names the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature / token where one is required.
    #[error("missing credentials")]
    Missing,
    /// Not decodable as configured.
    #[error("malformed signature")]
    Malformed,
    /// Wrong signature or token.
    #[error("signature or token does not match")]
    Mismatch,
    /// The timestamp header is missing or unreadable.
    #[error("missing or unreadable timestamp")]
    BadTimestamp,
    /// The request is older or newer than the tolerance (replay protection).
    #[error("timestamp outside the accepted tolerance")]
    Stale,
}

impl AuthError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::Mismatch => "mismatch",
            AuthError::BadTimestamp => "bad_timestamp",
            AuthError::Stale => "stale",
        }
    }
}

/// What the verifier needs from a request.
pub struct EventRequest<'a> {
    /// A header by (case-insensitive) name.
    pub header: &'a dyn Fn(&str) -> Option<&'a [u8]>,
    /// `POST`
    pub method: &'a str,
    /// The URL as the sender signed it (scheme, host, path, query).
    pub url: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

/// A prepared verifier for one source.
pub struct SourceAuth {
    config: SourceConfig,
    key: hmac::Key,
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceAuth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SourceAuth {
    /// Prepares the key.
    pub fn new(config: SourceConfig) -> SourceAuth {
        let key = hmac::Key::new(hmac::HMAC_SHA256, config.secret.expose().as_bytes());
        SourceAuth { config, key }
    }

    /// Checks a request at time `now`.
    pub fn verify(&self, request: &EventRequest<'_>, now: DateTime<Utc>) -> Result<(), AuthError> {
        match self.config.auth {
            AuthKind::Bearer => {
                let given = (request.header)("authorization").ok_or(AuthError::Missing)?;
                let token = given
                    .strip_prefix(b"Bearer ")
                    .or_else(|| given.strip_prefix(b"bearer "))
                    .ok_or(AuthError::Malformed)?;
                if constant_time_eq(token.trim_ascii(), self.config.secret.expose().as_bytes()) {
                    Ok(())
                } else {
                    Err(AuthError::Mismatch)
                }
            }
            AuthKind::Hmac => {
                let timestamp = match &self.config.timestamp_header {
                    Some(name) => {
                        let raw = (request.header)(name).ok_or(AuthError::BadTimestamp)?;
                        let text = std::str::from_utf8(raw).map_err(|_| AuthError::BadTimestamp)?;
                        let value: i64 =
                            text.trim().parse().map_err(|_| AuthError::BadTimestamp)?;
                        // Milliseconds when the number is too large for seconds.
                        let secs = if value > 100_000_000_000 {
                            value / 1000
                        } else {
                            value
                        };
                        let skew = (now.timestamp() - secs).unsigned_abs();
                        if Duration::from_secs(skew)
                            > Duration::from_secs(self.config.tolerance_secs)
                        {
                            return Err(AuthError::Stale);
                        }
                        Some(text.trim().to_owned())
                    }
                    None => None,
                };
                let header = self.config.header.as_deref().unwrap_or_default();
                let given = (request.header)(header).ok_or(AuthError::Missing)?;
                let given = std::str::from_utf8(given)
                    .map_err(|_| AuthError::Malformed)?
                    .trim();
                let given = match &self.config.prefix {
                    Some(prefix) => given
                        .strip_prefix(prefix.as_str())
                        .ok_or(AuthError::Malformed)?,
                    None => given,
                };
                let signature = match self.config.encoding {
                    Encoding::Hex => hex::decode(given).map_err(|_| AuthError::Malformed)?,
                    Encoding::Base64 => base64::engine::general_purpose::STANDARD
                        .decode(given)
                        .map_err(|_| AuthError::Malformed)?,
                };
                let message = signed_message(
                    &self.config.message,
                    request,
                    timestamp.as_deref().unwrap_or(""),
                );
                hmac::verify(&self.key, &message, &signature).map_err(|_| AuthError::Mismatch)
            }
        }
    }
}

/// Expands the message template around the raw body bytes (never re-serialised).
fn signed_message(template: &str, request: &EventRequest<'_>, timestamp: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + request.body.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start..];
        let (value, len): (&[u8], usize) = if after.starts_with("{body}") {
            (request.body, 6)
        } else if after.starts_with("{timestamp}") {
            (timestamp.as_bytes(), 11)
        } else if after.starts_with("{method}") {
            (request.method.as_bytes(), 8)
        } else if after.starts_with("{url}") {
            (request.url.as_bytes(), 5)
        } else {
            (b"{", 1)
        };
        out.extend_from_slice(value);
        rest = &after[len..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Parses a section the way the daemon does (the `config` crate, TOML).
    fn config(toml_text: &str) -> SourceConfig {
        config::Config::builder()
            .add_source(config::File::from_str(toml_text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("source config")
    }

    fn sign_hex(secret: &str, message: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hex::encode(hmac::sign(&key, message).as_ref())
    }

    fn check(
        auth: &SourceAuth,
        headers: &[(&str, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let map: HashMap<String, Vec<u8>> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        let lookup = |name: &str| map.get(&name.to_ascii_lowercase()).map(Vec::as_slice);
        auth.verify(
            &EventRequest {
                header: &lookup,
                method: "POST",
                url: "https://bridge.example/events/shop",
                body,
            },
            now,
        )
    }

    #[test]
    fn hmac_over_the_raw_body_with_prefix() {
        let auth = SourceAuth::new(config(
            "auth = \"hmac-sha256\"\nsecret = \"s3cret\"\nheader = \"X-Sig\"\nprefix = \"sha256=\"\n",
        ));
        let body = br#"{"id":"evt_1","total":12.5}"#;
        let good = format!("sha256={}", sign_hex("s3cret", body));
        let now = Utc::now();
        assert_eq!(check(&auth, &[("X-Sig", good.clone())], body, now), Ok(()));
        assert_eq!(
            check(
                &auth,
                &[("X-Sig", good)],
                b"{\"id\":\"evt_1\",\"total\":99}",
                now
            ),
            Err(AuthError::Mismatch)
        );
        assert_eq!(check(&auth, &[], body, now), Err(AuthError::Missing));
        assert_eq!(
            check(&auth, &[("X-Sig", "md5=abc".into())], body, now),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn timestamped_base64_signature_rejects_replays_outside_the_tolerance() {
        let auth = SourceAuth::new(config(
            "auth = \"hmac\"\nsecret = \"k\"\nheader = \"X-Signature\"\nencoding = \"base64\"\n\
             message = \"{timestamp}{body}\"\ntimestamp_header = \"X-Timestamp\"\ntolerance_secs = 300\n",
        ));
        let now = Utc::now();
        let body = b"{\"ticket\":1}";
        let sign_at = |ts: i64| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
            let mut message = ts.to_string().into_bytes();
            message.extend_from_slice(body);
            base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, &message).as_ref())
        };
        let ts = now.timestamp();
        let headers = |ts: i64| {
            vec![
                ("X-Timestamp", ts.to_string()),
                ("X-Signature", sign_at(ts)),
            ]
        };
        assert_eq!(check(&auth, &headers(ts), body, now), Ok(()));
        assert_eq!(
            check(&auth, &headers(ts - 301), body, now),
            Err(AuthError::Stale)
        );
        // Milliseconds are understood too (HubSpot v3 sends them).
        let ms_headers = vec![
            ("X-Timestamp", (ts * 1000).to_string()),
            ("X-Signature", {
                let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
                let mut message = (ts * 1000).to_string().into_bytes();
                message.extend_from_slice(body);
                base64::engine::general_purpose::STANDARD
                    .encode(hmac::sign(&key, &message).as_ref())
            }),
        ];
        assert_eq!(check(&auth, &ms_headers, body, now), Ok(()));
        assert_eq!(
            check(&auth, &[("X-Signature", sign_at(ts))], body, now),
            Err(AuthError::BadTimestamp)
        );
    }

    #[test]
    fn method_and_url_can_be_part_of_the_signed_message() {
        let auth = SourceAuth::new(config(
            "auth = \"hmac\"\nsecret = \"k\"\nheader = \"X-Sig\"\nmessage = \"{method}{url}{body}\"\n",
        ));
        let body = b"[]";
        let good = sign_hex("k", b"POSThttps://bridge.example/events/shop[]");
        assert_eq!(check(&auth, &[("X-Sig", good)], body, Utc::now()), Ok(()));
    }

    #[test]
    fn bearer_token_is_compared_exactly() {
        let auth = SourceAuth::new(config("auth = \"bearer\"\nsecret = \"tok-123\"\n"));
        let now = Utc::now();
        assert_eq!(
            check(
                &auth,
                &[("Authorization", "Bearer tok-123".into())],
                b"{}",
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &auth,
                &[("Authorization", "Bearer tok-124".into())],
                b"{}",
                now
            ),
            Err(AuthError::Mismatch)
        );
        assert_eq!(check(&auth, &[], b"{}", now), Err(AuthError::Missing));
        assert_eq!(
            check(&auth, &[("Authorization", "Basic abc".into())], b"{}", now),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn validation_names_every_problem_and_debug_hides_the_secret() {
        let bad = config("auth = \"hmac\"\nsecret = \"\"\nmessage = \"{timestamp}\"\n");
        let fields: Vec<String> = bad.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["secret", "header", "message", "timestamp_header"]);
        let auth = SourceAuth::new(config("auth = \"bearer\"\nsecret = \"tok-123\"\n"));
        assert!(!format!("{auth:?}").contains("tok-123"));
    }
}
