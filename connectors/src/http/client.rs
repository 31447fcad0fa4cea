//! Sends the compiled requests, each failure classified where it happens.
//!
//! Transport failures go through [`ConnectorError::from_transport`], non-2xx answers through
//! [`ConnectorError::from_status`] (`Retry-After` honoured; 401/403 with a hint about `auth`),
//! and a 2xx whose `id` cannot be read is permanent. Errors name the request by its field
//! (`http: ticket.create`), **never by its URL**: paths carry phone numbers.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

use super::config::{join, Call, HttpConfig};
use super::template::Values;
use crate::ConnectorError;

/// What a 2xx answer (or a 404 of an `empty_on_404` lookup) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A 2xx answer's body.
    Body(String),
    /// A 404 of a lookup with `empty_on_404`: nothing found.
    NotFound,
}

/// The HTTP client shared by both roles of one `[connectors.<name>]` section.
pub(crate) struct HttpClient {
    http: reqwest::Client,
    /// The configured base address, as written (requests append their path).
    base: String,
    /// The credential and the configured headers, all marked sensitive; never printed.
    headers: HeaderMap,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("headers", &names)
            .finish()
    }
}

fn permanent(reason: String) -> ConnectorError {
    ConnectorError::Permanent { reason }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ConnectorError> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| permanent("http: a header name is not valid".to_owned()))?;
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        permanent(format!(
            "http: the value of header {name} has characters a header cannot carry"
        ))
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

impl HttpClient {
    /// Builds the HTTP client from a configuration that passed validation (no network).
    pub(crate) fn new(config: &HttpConfig) -> Result<Self, ConnectorError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let (name, value) = header(name, value.expose())?;
            headers.insert(name, value);
        }
        if let Some(auth) = &config.auth {
            let credential = match (&auth.bearer, &auth.header, &auth.value, &auth.username) {
                (Some(token), _, _, _) => Some(header(
                    "authorization",
                    &format!("Bearer {}", token.expose().trim()),
                )?),
                (None, Some(name), Some(value), _) => Some(header(name, value.expose())?),
                (None, _, _, Some(user)) => {
                    let password = auth.password.as_ref().map_or("", |p| p.expose().trim());
                    let pair = format!("{}:{password}", user.trim());
                    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                    Some(header("authorization", &format!("Basic {encoded}"))?)
                }
                _ => None,
            };
            if let Some((name, value)) = credential {
                headers.insert(name, value);
            }
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let http = crate::http_client("http", timeout)?;
        Ok(HttpClient {
            http,
            base: config.url.trim().to_owned(),
            headers,
        })
    }

    /// Renders and sends `call`: the 2xx body, [`Answer::NotFound`] for a 404 of an
    /// `empty_on_404` lookup, else the classified error.
    pub(crate) async fn send(
        &self,
        call: &Call,
        values: &Values,
    ) -> Result<Answer, ConnectorError> {
        let what = format!("http: {}", call.field);
        let path = call
            .path
            .render(values)
            .map_err(|err| permanent(format!("{what}: path: {err}")))?;
        // The error would show the URL (a phone number): say only that it is not valid.
        let url = reqwest::Url::parse(&join(&self.base, &path))
            .map_err(|_| permanent(format!("{what}: the path does not make a valid URL")))?;
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .headers(self.headers.clone());
        if let Some(body) = &call.body {
            let body = body
                .render(values)
                .map_err(|err| permanent(format!("{what}: body: {err}")))?;
            if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&body) {
                return Err(permanent(format!(
                    "{what}: the body is not valid JSON with this message's values ({err})"
                )));
            }
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, &what))?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let body = response
            .text()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, &what))?;
        if status.is_success() {
            return Ok(Answer::Body(body));
        }
        if status == StatusCode::NOT_FOUND && call.empty_on_404 {
            return Ok(Answer::NotFound);
        }
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => permanent(format!(
                "{what}: the API refused the credential (HTTP {status}): check [auth] and the \
                 user's permissions: {}",
                body.chars().take(300).collect::<String>()
            )),
            _ => ConnectorError::from_status(status, retry_after.as_ref(), &what, &body),
        })
    }

    /// Sends a lookup: the id it read, `None` when it found nothing.
    pub(crate) async fn lookup(
        &self,
        call: &Call,
        values: &Values,
    ) -> Result<Option<String>, ConnectorError> {
        match self.send(call, values).await? {
            Answer::NotFound => Ok(None),
            Answer::Body(body) => read_id(call, &body),
        }
    }

    /// Sends a create: the id of what it created (a missing id is permanent).
    pub(crate) async fn create(
        &self,
        call: &Call,
        values: &Values,
    ) -> Result<String, ConnectorError> {
        let body = match self.send(call, values).await? {
            Answer::Body(body) => body,
            Answer::NotFound => String::new(),
        };
        read_id(call, &body)?.ok_or_else(|| {
            let path = call.id.as_ref().map_or("", |id| id.as_str());
            permanent(format!(
                "http: {}: the answer has no id at {path}: {}",
                call.field,
                snippet(&body)
            ))
        })
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

/// The id `call.id` selects in the answer `body`: `None` for an empty body or when it selects
/// nothing, `null` or `""`; a string or a number is the id; anything else is permanent.
pub(crate) fn read_id(call: &Call, body: &str) -> Result<Option<String>, ConnectorError> {
    let what = format!("http: {}", call.field);
    let Some(path) = &call.id else {
        return Ok(None);
    };
    if body.trim().is_empty() {
        return Ok(None);
    }
    let answer: Value = serde_json::from_str(body).map_err(|_| {
        permanent(format!(
            "{what}: the answer is not JSON, so its id cannot be read: {}",
            snippet(body)
        ))
    })?;
    let not_an_id = |kind: &str| {
        permanent(format!(
            "{what}: id {} selects {kind}, not a string or a number",
            path.as_str()
        ))
    };
    let found = path
        .first(&answer)
        .map_err(|err| permanent(format!("{what}: id: {err}")))?;
    match found {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(Value::Bool(_)) => Err(not_an_id("true or false")),
        Some(Value::Array(_)) => Err(not_an_id("an array")),
        Some(Value::Object(_)) => Err(not_an_id("an object")),
    }
}
