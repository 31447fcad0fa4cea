//! The Graph API client: media downloads now, sends later. Errors are classified by Meta's
//! `error.code` (never by HTTP status alone: throughput limits arrive as 400), falling back to
//! the HTTP class (5xx → retry, other 4xx → permanent).

use std::time::Duration;

use serde::Deserialize;
use wabridge_connectors::{Attachment, Secret};

use crate::config::WhatsAppConfig;

/// A failed Graph API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// May succeed later.
    #[error("Graph API (retryable): {reason}")]
    Retryable {
        /// What happened.
        reason: String,
        /// Requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Will not succeed as is.
    #[error("Graph API: {reason}")]
    Permanent {
        /// What happened.
        reason: String,
        /// Meta's error code, when it sent one.
        code: Option<i64>,
    },
}

/// What to do about a Meta error code (reference table, section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Retry with backoff.
    Retry,
    /// Never retry the same request.
    Permanent,
}

/// Classifies a Meta error code; `None` when the code is not in the table.
pub fn classify_code(code: i64) -> Option<Verdict> {
    match code {
        // Throughput, pair, app and WABA limits; transient service errors.
        130429 | 131056 | 4 | 80007 | 131000 | 131016 | 131057 | 1 | 2 | 133016 => {
            Some(Verdict::Retry)
        }
        131047 | 131026 | 131049 | 131050 | 131051 | 131052 | 131053 | 132000 | 132001 | 132005
        | 132007 | 132008 | 132012 | 132015 | 132016 | 133010 | 190 | 0 | 3 | 10 | 100 | 131008
        | 131009 | 131021 | 131031 | 131048 | 131042 | 130472 | 130497 | 131030 | 368 => {
            Some(Verdict::Permanent)
        }
        200..=299 => Some(Verdict::Permanent),
        _ => None,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<serde_json::Value>,
}

/// Classifies a non-success Graph answer.
pub fn classify_response(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> GraphError {
    let parsed: Option<ErrorObject> = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = parsed.as_ref().and_then(|e| e.code);
    let detail = parsed
        .as_ref()
        .map(|e| {
            let details = e
                .error_data
                .as_ref()
                .and_then(|d| d.get("details"))
                .and_then(|d| d.as_str())
                .unwrap_or("");
            format!("{} {}", e.message.as_deref().unwrap_or(""), details)
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let reason = match code {
        Some(code) => format!("HTTP {status}, code {code}: {detail}"),
        None => format!("HTTP {status}: {detail}"),
    };
    let verdict = code.and_then(classify_code).unwrap_or(
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Verdict::Retry
        } else {
            Verdict::Permanent
        },
    );
    match verdict {
        Verdict::Retry => GraphError::Retryable {
            reason,
            retry_after,
        },
        Verdict::Permanent => GraphError::Permanent { reason, code },
    }
}

#[derive(Deserialize)]
struct MediaInfo {
    url: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
}

/// The Graph API client.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    media_max_bytes: u64,
}

impl GraphClient {
    /// A client for the configured Graph API.
    pub fn new(config: &WhatsAppConfig) -> Result<GraphClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            // Media URLs answer directly; a redirect is treated as an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(GraphClient {
            http,
            base: format!(
                "{}/{}",
                config.graph_url.trim_end_matches('/'),
                config.api_version
            ),
            token: config.access_token.clone(),
            media_max_bytes: config.media_max_bytes,
        })
    }

    /// Downloads a media object: `GET /{media-id}` for a short-lived URL, then that URL with
    /// the bearer token. Checks size and, when given, the base64 SHA-256 Meta announced.
    pub async fn download_media(
        &self,
        media_id: &str,
        filename: &str,
        mime_type: Option<&str>,
        sha256_base64: Option<&str>,
    ) -> Result<Attachment, GraphError> {
        let info: MediaInfo = {
            let response = self
                .http
                .get(format!("{}/{media_id}", self.base))
                .bearer_auth(self.token.expose())
                .send()
                .await
                .map_err(transport)?;
            let body = checked(response).await?;
            serde_json::from_slice(&body).map_err(|err| GraphError::Permanent {
                reason: format!("media info is not the documented JSON: {err}"),
                code: None,
            })?
        };
        if let Some(size) = info.file_size {
            if size > self.media_max_bytes {
                return Err(GraphError::Permanent {
                    reason: format!(
                        "media is {size} bytes, over whatsapp.media_max_bytes ({})",
                        self.media_max_bytes
                    ),
                    code: None,
                });
            }
        }
        let response = self
            .http
            .get(&info.url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(transport)?;
        let data = checked(response).await?;
        if data.len() as u64 > self.media_max_bytes {
            return Err(GraphError::Permanent {
                reason: format!(
                    "media is over whatsapp.media_max_bytes ({})",
                    self.media_max_bytes
                ),
                code: None,
            });
        }
        if let Some(expected) = sha256_base64 {
            use base64::Engine;
            let digest = ring::digest::digest(&ring::digest::SHA256, &data);
            let actual = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
            if actual != expected.trim() {
                return Err(GraphError::Retryable {
                    reason: "downloaded media does not match the announced sha256".into(),
                    retry_after: None,
                });
            }
        }
        Ok(Attachment {
            filename: filename.to_owned(),
            mime_type: mime_type
                .map(str::to_owned)
                .or(info.mime_type)
                .unwrap_or_else(|| "application/octet-stream".into()),
            data: data.to_vec(),
        })
    }
}

fn transport(err: reqwest::Error) -> GraphError {
    GraphError::Retryable {
        reason: format!(
            "Graph API unreachable: {}",
            wabridge_connectors::transport_reason(&err)
        ),
        retry_after: None,
    }
}

/// `Retry-After` in seconds, when the answer has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn checked(response: reqwest::Response) -> Result<Vec<u8>, GraphError> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        Ok(body.to_vec())
    } else {
        Err(classify_response(
            status,
            retry_after,
            &String::from_utf8_lossy(&body),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn throughput_limit_is_retried_although_it_arrives_as_400() {
        let body = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"x"}}"#;
        assert!(matches!(
            classify_response(StatusCode::BAD_REQUEST, None, body),
            GraphError::Retryable { .. }
        ));
    }

    #[test]
    fn undeliverable_is_permanent_and_unknown_codes_fall_back_to_http_class() {
        let body = r#"{"error":{"message":"Message undeliverable","code":131026}}"#;
        assert!(matches!(
            classify_response(StatusCode::BAD_REQUEST, None, body),
            GraphError::Permanent {
                code: Some(131026),
                ..
            }
        ));
        assert!(matches!(
            classify_response(StatusCode::BAD_GATEWAY, None, "<html>"),
            GraphError::Retryable { .. }
        ));
        let unknown = r#"{"error":{"message":"new","code":999999}}"#;
        assert!(matches!(
            classify_response(StatusCode::SERVICE_UNAVAILABLE, None, unknown),
            GraphError::Retryable { .. }
        ));
        assert!(matches!(
            classify_response(StatusCode::BAD_REQUEST, None, unknown),
            GraphError::Permanent { .. }
        ));
    }
}
