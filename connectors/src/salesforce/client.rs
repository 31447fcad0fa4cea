//! The Salesforce REST API calls the connector makes, each classified where it happens.
//!
//! **Session.** An access token comes from the OAuth 2.0 client credentials flow (`POST
//! <url>/services/oauth2/token`), is cached and shared by both roles, and is replaced when the
//! token response's `expires_in` (if any) has passed or when a call is answered 401
//! (`INVALID_SESSION_ID`: the session timed out or was revoked). The call is then sent once
//! more with a fresh token; a second 401 is permanent. Calls go to the token response's
//! `instance_url`. The integration user's id is the last segment of the token response's
//! identity URL (`id`), else read from `/services/oauth2/userinfo`.
//!
//! **Errors.** Salesforce answers errors as an array `[{"message", "errorCode", "fields"}]`
//! (`statusCode` instead of `errorCode` inside sObject Collections results). `[classify]`:
//! `REQUEST_LIMIT_EXCEEDED` (403, the org's rolling 24-hour API allowance, or too many
//! concurrent long requests) is retryable after [`DAILY_LIMIT_WAIT`] or
//! [`CONCURRENT_LIMIT_WAIT`]; `UNABLE_TO_LOCK_ROW` (another transaction holds the record) is
//! retryable; everything else goes through [`ConnectorError::from_status`] (5xx, 408, 429
//! retryable honouring `Retry-After`; other 4xx permanent) with Salesforce's codes and
//! messages as the reason. Token errors (`invalid_client`, `invalid_grant`, …) are permanent
//! and say what to fix.
//!
//! **No phone numbers in errors.** Reasons never carry a URL (the external id in upsert paths
//! is the number) or a SOQL query: transport errors are described without their URL, query
//! errors lose the lines where Salesforce echoes the query, and runs of seven or more digits
//! in Salesforce's messages are replaced by `[number]`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::{Mutex, OnceCell};

use crate::{ConnectorError, Secret};

/// How long to wait after the org's daily API request allowance is used up. The allowance is
/// a rolling 24-hour window, so capacity comes back gradually; an hour keeps retries rare.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(3600);
/// How long to wait after Salesforce refused a request for too many concurrent long-running
/// requests (also `REQUEST_LIMIT_EXCEEDED`, message "ConcurrentPerOrgLongTxn Limit exceeded").
pub const CONCURRENT_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Records per sObject Collections create (Salesforce's maximum).
pub(crate) const COLLECTION_LIMIT: usize = 200;
/// Subrequests per composite request (Salesforce's maximum).
pub(crate) const COMPOSITE_LIMIT: usize = 25;
/// At most this many query result batches are read for one query (2000 records each).
const MAX_PAGES: usize = 50;
/// A token is replaced this long before the expiry its response announced.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A logged-in session: the bearer token and where to send calls.
struct Session {
    /// `Bearer <access token>`, marked sensitive; never printed.
    authorization: HeaderValue,
    /// The token response's `instance_url`.
    instance: Url,
    /// The integration (run-as) user's id, from the token response's identity URL.
    user_id: Option<String>,
    /// When the token response said the token expires, minus [`EXPIRY_MARGIN`].
    expires_at: Option<Instant>,
    /// Which login this is (so a 401 forgets only the token it was answered for).
    serial: u64,
}

#[derive(Default)]
struct SessionState {
    current: Option<Arc<Session>>,
    logins: u64,
}

/// Where a call goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// `<instance>/services/data/<version>/<segments…>`, each segment percent-encoded.
    Data(&'a [&'a str]),
    /// A path under `<instance>/services/` Salesforce handed out (`nextRecordsUrl`) or a
    /// fixed one (`/services/oauth2/userinfo`).
    Path(&'a str),
}

/// One HTTP answer: status, `Retry-After`, body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<HeaderValue>,
    pub body: String,
}

/// One subrequest's answer within a composite response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubResponse {
    /// The subrequest's `referenceId`.
    pub reference: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its body (`{"id", "success", "errors"}` for a create, `null` for a 204).
    pub body: Value,
}

/// One error Salesforce reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// `errorCode` (or `statusCode` in sObject Collections results).
    pub code: String,
    /// `message`.
    pub message: String,
    /// `fields`.
    pub fields: Vec<String>,
}

/// The errors of a Salesforce error body (an array, or a single object); empty when the body
/// is not one.
pub(crate) fn api_errors(body: &str) -> Vec<ApiError> {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    errors_of(&value)
}

fn errors_of(value: &Value) -> Vec<ApiError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|item| {
            let code = item
                .get("errorCode")
                .or_else(|| item.get("statusCode"))
                .and_then(Value::as_str)?;
            Some(ApiError {
                code: code.to_owned(),
                message: item
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                fields: item
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|fields| {
                        fields
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Replaces every run of seven or more digits that stands alone (not part of a record Id) by
/// `[number]`: Salesforce's messages may quote a field value, and the value may be a phone
/// number.
pub(crate) fn redact_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() >= 7 && word.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("[number]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A query error's message without the lines where Salesforce echoes the query (`SELECT …`,
/// the `^` pointer, `ERROR at Row:…`): only its explanation remains.
fn query_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() <= 1 {
        return lines.first().map(|l| (*l).to_owned()).unwrap_or_default();
    }
    match lines.iter().rposition(|l| l.starts_with("ERROR at Row")) {
        Some(at) => lines[at + 1..].join(" "),
        None => lines.last().map(|l| (*l).to_owned()).unwrap_or_default(),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let collapsed: Vec<&str> = text.split_whitespace().collect();
    collapsed.join(" ").chars().take(max).collect()
}

/// What a Salesforce error body says, on one line, without query text or phone numbers:
/// `REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)`.
pub(crate) fn error_summary(body: &str, from_query: bool) -> String {
    summarize(&api_errors(body), body, from_query)
}

fn summarize(errors: &[ApiError], body: &str, from_query: bool) -> String {
    if errors.is_empty() {
        return redact_numbers(&one_line(body, 200));
    }
    let parts: Vec<String> = errors
        .iter()
        .take(5)
        .map(|error| {
            let message = if from_query {
                query_message(&error.message)
            } else {
                error.message.clone()
            };
            let mut part = format!("{}: {}", error.code, one_line(&message, 300));
            if !error.fields.is_empty() {
                part.push_str(&format!(" (fields: {})", error.fields.join(", ")));
            }
            part
        })
        .collect();
    redact_numbers(&parts.join("; "))
}

fn minutes(wait: Duration) -> u64 {
    wait.as_secs().div_ceil(60)
}

/// Classifies a non-2xx answer to a data call (see the module docs). `from_query` marks
/// answers to SOQL queries, whose messages echo the query.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    what: &str,
    body: &str,
    from_query: bool,
) -> ConnectorError {
    let errors = api_errors(body);
    let summary = summarize(&errors, body, from_query);
    let has = |code: &str| errors.iter().any(|e| e.code == code);
    if has("REQUEST_LIMIT_EXCEEDED") {
        let concurrent = errors
            .iter()
            .any(|e| e.message.to_ascii_lowercase().contains("concurrent"));
        let asked = retry_after
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let wait = asked.unwrap_or(if concurrent {
            CONCURRENT_LIMIT_WAIT
        } else {
            DAILY_LIMIT_WAIT
        });
        let why = if concurrent {
            "too many long-running requests are running in the org at once"
        } else {
            "the org's API request allowance (rolling 24 hours) is used up"
        };
        return ConnectorError::Retryable {
            retry_after: Some(wait),
            reason: format!(
                "{what}: {why} ({summary}); retrying in {} minutes",
                minutes(wait)
            ),
        };
    }
    if has("UNABLE_TO_LOCK_ROW") {
        return ConnectorError::Retryable {
            retry_after: None,
            reason: format!("{what}: another transaction holds the record ({summary})"),
        };
    }
    if status == StatusCode::FORBIDDEN
        && (has("API_DISABLED_FOR_ORG") || has("API_CURRENTLY_DISABLED"))
    {
        return ConnectorError::Permanent {
            reason: format!(
                "{what}: the connected app's run-as user may not use the API ({summary}): give \
                 it the \"API Enabled\" permission (the org's edition must include API access)"
            ),
        };
    }
    ConnectorError::from_status(status, retry_after, what, &summary)
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    ConnectorError::Permanent {
        reason: format!(
            "{what}: unexpected answer from Salesforce: {}",
            redact_numbers(&one_line(body, 200))
        ),
    }
}

/// The user id at the end of an identity URL (`…/id/<org id>/<user id>`).
fn user_of_identity(identity: &str) -> Option<String> {
    let last = identity.trim().trim_end_matches('/').rsplit('/').next()?;
    super::config::is_record_id(last).then(|| last.to_owned())
}

/// A string or number field of a token response (`expires_in` comes as either).
fn seconds_of(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Classifies a refused login, with what to fix.
fn login_error(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    what: &str,
    body: &str,
) -> ConnectorError {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = value["error"].as_str().unwrap_or_default();
    let description = redact_numbers(&one_line(
        value["error_description"].as_str().unwrap_or_default(),
        200,
    ));
    let detail = if description.is_empty() {
        error.to_owned()
    } else {
        format!("{error}: {description}")
    };
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return ConnectorError::from_status(status, retry_after, what, &error_summary(body, false));
    }
    let lower = description.to_ascii_lowercase();
    let advice = match error {
        "invalid_client_id" => Some(
            "Salesforce does not know client_id: copy the connected app's Consumer Key exactly"
                .to_owned(),
        ),
        "invalid_client" => Some(
            "Salesforce refused the client credentials: check client_id and client_secret (the \
             connected app's Consumer Key and Consumer Secret)"
                .to_owned(),
        ),
        "invalid_grant" if lower.contains("client credentials user") => Some(
            "the connected app has no run-as user for the client credentials flow: in its OAuth \
             policies enable \"Client Credentials Flow\" and choose a \"Run As\" user"
                .to_owned(),
        ),
        "invalid_grant" if lower.contains("domain") => Some(
            "url must be the org's My Domain address (Setup → My Domain), e.g. \
             https://acme.my.salesforce.com"
                .to_owned(),
        ),
        "invalid_grant" => Some(
            "Salesforce refused the login: check that the connected app's run-as user is active \
             and allowed to use the app"
                .to_owned(),
        ),
        "unsupported_grant_type" => Some(
            "the connected app does not allow the client credentials flow: enable \"Client \
             Credentials Flow\" in its OAuth settings"
                .to_owned(),
        ),
        _ if status == StatusCode::NOT_FOUND => Some(
            "there is no Salesforce login at this address: url must be the org's My Domain \
             address, e.g. https://acme.my.salesforce.com"
                .to_owned(),
        ),
        _ => None,
    };
    match advice {
        Some(advice) if detail.is_empty() => ConnectorError::Permanent {
            reason: format!("{what}: {advice} (HTTP {status})"),
        },
        Some(advice) => ConnectorError::Permanent {
            reason: format!("{what}: {advice} (HTTP {status}, {detail})"),
        },
        None => ConnectorError::from_status(status, retry_after, what, &error_summary(body, false)),
    }
}

/// A thin Salesforce REST client: one method per call, one shared session.
pub(crate) struct SalesforceClient {
    http: reqwest::Client,
    /// The configured My Domain address (the token endpoint's host).
    login: Url,
    /// `v62.0`.
    version: String,
    client_id: String,
    client_secret: Secret,
    session: Mutex<SessionState>,
    /// The integration user's id, read once.
    own_user: OnceCell<String>,
}

impl fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("login", &self.login.as_str())
            .field("version", &self.version)
            .field("client_secret", &self.client_secret)
            .field("session", &"**redacted**")
            .finish()
    }
}

impl SalesforceClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        version: &str,
        client_id: &str,
        client_secret: &Secret,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let login = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("salesforce: url is not valid: {err}"),
        })?;
        if login.cannot_be_a_base() {
            return Err(ConnectorError::Permanent {
                reason: "salesforce: url cannot be a base address".to_owned(),
            });
        }
        let http = crate::http_client("salesforce", timeout)?;
        Ok(SalesforceClient {
            http,
            login,
            version: version.trim().to_owned(),
            client_id: client_id.trim().to_owned(),
            client_secret: client_secret.clone(),
            session: Mutex::new(SessionState::default()),
            own_user: OnceCell::new(),
        })
    }

    /// The path of a data resource as composite subrequests name it:
    /// `/services/data/v62.0/sobjects/Case`.
    pub(crate) fn data_path(&self, segments: &[&str]) -> String {
        let mut path = format!("/services/data/{}", self.version);
        for segment in segments {
            path.push('/');
            path.push_str(segment);
        }
        path
    }

    fn url(&self, instance: &Url, target: Target<'_>) -> Result<Url, ConnectorError> {
        match target {
            Target::Data(segments) => {
                let mut url = instance.clone();
                url.set_query(None);
                if let Ok(mut path) = url.path_segments_mut() {
                    path.pop_if_empty()
                        .extend(["services", "data", self.version.as_str()])
                        .extend(segments);
                }
                Ok(url)
            }
            Target::Path(path) => {
                let path = path.trim();
                if !path.starts_with("/services/") || path.contains("..") || path.contains("//") {
                    return Err(ConnectorError::Permanent {
                        reason: "salesforce: Salesforce handed out an unexpected resource path"
                            .to_owned(),
                    });
                }
                instance.join(path).map_err(|_| ConnectorError::Permanent {
                    reason: "salesforce: Salesforce handed out an unusable resource path"
                        .to_owned(),
                })
            }
        }
    }

    /// The current session, logging in when there is none or it expired.
    async fn session(&self) -> Result<Arc<Session>, ConnectorError> {
        let mut state = self.session.lock().await;
        if let Some(session) = &state.current {
            if session.expires_at.is_none_or(|at| Instant::now() < at) {
                return Ok(Arc::clone(session));
            }
        }
        state.logins += 1;
        let session = Arc::new(self.login(state.logins).await?);
        state.current = Some(Arc::clone(&session));
        Ok(session)
    }

    /// Forgets the session `serial` (answered 401), unless another call already replaced it.
    async fn forget(&self, serial: u64) {
        let mut state = self.session.lock().await;
        if state.current.as_ref().is_some_and(|s| s.serial == serial) {
            state.current = None;
        }
    }

    /// `POST <url>/services/oauth2/token` with the client credentials.
    async fn login(&self, serial: u64) -> Result<Session, ConnectorError> {
        let what = "salesforce: logging in";
        let mut url = self.login.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().extend(["services", "oauth2", "token"]);
        }
        let response = self
            .http
            .post(url)
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose().trim()),
            ])
            .send()
            .await
            .map_err(|err| match ConnectorError::from_transport(&err, what) {
                ConnectorError::Retryable {
                    retry_after,
                    reason,
                } if err.is_connect() => ConnectorError::Retryable {
                    retry_after,
                    reason: format!(
                        "{reason}; check that url is the org's My Domain address, e.g. \
                         https://acme.my.salesforce.com"
                    ),
                },
                other => other,
            })?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let body = response
            .text()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        if !status.is_success() {
            return Err(login_error(status, retry_after.as_ref(), what, &body));
        }
        let not_salesforce = || ConnectorError::Permanent {
            reason: format!(
                "{what}: the address in url did not answer like Salesforce (no access token in \
                 its HTTP {status} answer): url must be the org's My Domain address, e.g. \
                 https://acme.my.salesforce.com"
            ),
        };
        let value: Value = serde_json::from_str(&body).map_err(|_| not_salesforce())?;
        let token = value
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(not_salesforce)?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ConnectorError::Permanent {
                    reason: format!("{what}: the access token is not usable in a header"),
                }
            })?;
        authorization.set_sensitive(true);
        let instance = match value.get("instance_url").and_then(Value::as_str) {
            Some(text) => {
                let parsed = Url::parse(text.trim()).ok().filter(|u| {
                    !u.cannot_be_a_base()
                        && u.host_str().is_some()
                        && (u.scheme() == "https"
                            || (u.scheme() == "http" && self.login.scheme() == "http"))
                });
                parsed.ok_or_else(|| ConnectorError::Permanent {
                    reason: format!("{what}: the token response's instance_url is not usable"),
                })?
            }
            None => self.login.clone(),
        };
        let user_id = value
            .get("id")
            .and_then(Value::as_str)
            .and_then(user_of_identity);
        let expires_at = seconds_of(value.get("expires_in"))
            .map(|secs| Instant::now() + Duration::from_secs(secs).saturating_sub(EXPIRY_MARGIN));
        tracing::debug!(serial, "Logged in to Salesforce.");
        Ok(Session {
            authorization,
            instance,
            user_id,
            expires_at,
            serial,
        })
    }

    async fn send_once(
        &self,
        session: &Session,
        method: &Method,
        target: Target<'_>,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        let url = self.url(&session.instance, target)?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, session.authorization.clone())
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let body = response
            .text()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Sends with the session's token; on a 401 logs in again and sends once more. Any other
    /// answer is returned as it is.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        target: Target<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        let bytes = match body {
            Some(body) => {
                Some(
                    serde_json::to_vec(body).map_err(|err| ConnectorError::Permanent {
                        reason: format!("{what}: could not encode the request: {err}"),
                    })?,
                )
            }
            None => None,
        };
        let session = self.session().await?;
        let answer = self
            .send_once(&session, &method, target, query, bytes.as_deref(), what)
            .await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        tracing::debug!("Salesforce refused the access token; logging in again.");
        self.forget(session.serial).await;
        let session = self.session().await?;
        let answer = self
            .send_once(&session, &method, target, query, bytes.as_deref(), what)
            .await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: Salesforce refused a fresh access token (HTTP 401, {}): the \
                     connected app's run-as user may be inactive, frozen or without API access",
                    error_summary(&answer.body, false)
                ),
            });
        }
        Ok(answer)
    }

    /// Sends and returns the status and JSON of a 2xx answer (`null` when empty), else the
    /// classified error.
    async fn send_json(
        &self,
        method: Method,
        target: Target<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let answer = self.exchange(method, target, query, body, what).await?;
        if !answer.status.is_success() {
            return Err(classify(
                answer.status,
                answer.retry_after.as_ref(),
                what,
                &answer.body,
                false,
            ));
        }
        if answer.body.trim().is_empty() {
            return Ok((answer.status, Value::Null));
        }
        let value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        Ok((answer.status, value))
    }

    /// Logs in (or reuses the session): proves `url`, `client_id` and `client_secret`.
    pub(crate) async fn ensure_session(&self) -> Result<(), ConnectorError> {
        self.session().await.map(drop)
    }

    /// The integration (run-as) user's id: from the token response, else
    /// `GET /services/oauth2/userinfo`. Read once.
    pub(crate) async fn own_user(&self) -> Result<String, ConnectorError> {
        self.own_user
            .get_or_try_init(|| async {
                if let Some(user) = self.session().await?.user_id.clone() {
                    return Ok(user);
                }
                let what = "salesforce: reading the integration user";
                let (_, value) = self
                    .send_json(
                        Method::GET,
                        Target::Path("/services/oauth2/userinfo"),
                        &[],
                        None,
                        what,
                    )
                    .await?;
                value
                    .get("user_id")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|id| super::config::is_record_id(id))
                    .map(str::to_owned)
                    .ok_or_else(|| unexpected(what, &value.to_string()))
            })
            .await
            .cloned()
    }

    /// `GET sobjects/<object>/describe`.
    pub(crate) async fn describe(&self, object: &str) -> Result<Value, ConnectorError> {
        let what = match object {
            "Case" => "salesforce: describing Case",
            _ => "salesforce: describing Contact",
        };
        let (_, value) = self
            .send_json(
                Method::GET,
                Target::Data(&["sobjects", object, "describe"]),
                &[],
                None,
                what,
            )
            .await?;
        if !value.get("fields").is_some_and(Value::is_array) {
            return Err(unexpected(what, &value.to_string()));
        }
        Ok(value)
    }

    fn duplicates(what: &str, field: &str) -> ConnectorError {
        ConnectorError::Permanent {
            reason: format!(
                "{what}: several Contacts carry this WhatsApp number in {field} (HTTP 300): \
                 merge them, and mark {field} as Unique"
            ),
        }
    }

    /// `GET sobjects/Contact/<field>/<value>?fields=Id`: the contact's Id, `None` when no
    /// contact has the value.
    pub(crate) async fn contact_by_external_id(
        &self,
        field: &str,
        value: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let what = "salesforce: looking up the contact";
        let answer = self
            .exchange(
                Method::GET,
                Target::Data(&["sobjects", "Contact", field, value]),
                &[("fields", "Id")],
                None,
                what,
            )
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::MULTIPLE_CHOICES => return Err(Self::duplicates(what, field)),
            status if !status.is_success() => {
                return Err(classify(
                    status,
                    answer.retry_after.as_ref(),
                    what,
                    &answer.body,
                    false,
                ))
            }
            _ => {}
        }
        let record: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        record
            .get("Id")
            .and_then(Value::as_str)
            .filter(|id| super::config::is_record_id(id))
            .map(|id| Some(id.to_owned()))
            .ok_or_else(|| unexpected(what, &answer.body))
    }

    /// `PATCH sobjects/Contact/<field>/<value>` (upsert by external id): the contact's Id and
    /// whether Salesforce created it (201) or updated one (200, or 204 on older API versions,
    /// then the Id is read by the external id).
    pub(crate) async fn upsert_contact(
        &self,
        field: &str,
        value: &str,
        body: &Value,
    ) -> Result<(String, bool), ConnectorError> {
        let what = "salesforce: upserting the contact";
        let answer = self
            .exchange(
                Method::PATCH,
                Target::Data(&["sobjects", "Contact", field, value]),
                &[],
                Some(body),
                what,
            )
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                let result: Value = serde_json::from_str(&answer.body)
                    .map_err(|_| unexpected(what, &answer.body))?;
                let id = result
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| super::config::is_record_id(id))
                    .ok_or_else(|| unexpected(what, &answer.body))?;
                let created = answer.status == StatusCode::CREATED
                    || result.get("created").and_then(Value::as_bool) == Some(true);
                Ok((id.to_owned(), created))
            }
            StatusCode::NO_CONTENT => match self.contact_by_external_id(field, value).await? {
                Some(id) => Ok((id, false)),
                None => Err(ConnectorError::Retryable {
                    retry_after: None,
                    reason: format!("{what}: the updated contact could not be read back"),
                }),
            },
            StatusCode::MULTIPLE_CHOICES => Err(Self::duplicates(what, field)),
            status => Err(classify(
                status,
                answer.retry_after.as_ref(),
                what,
                &answer.body,
                false,
            )),
        }
    }

    /// `GET sobjects/<object>/<id>?fields=…`; `None` on 404 (deleted, or never there).
    pub(crate) async fn record(
        &self,
        object: &str,
        id: &str,
        fields: &[&str],
        what: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let fields = fields.join(",");
        let answer = self
            .exchange(
                Method::GET,
                Target::Data(&["sobjects", object, id]),
                &[("fields", fields.as_str())],
                None,
                what,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(classify(
                answer.status,
                answer.retry_after.as_ref(),
                what,
                &answer.body,
                false,
            ));
        }
        let value: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        if !value.is_object() {
            return Err(unexpected(what, &answer.body));
        }
        Ok(Some(value))
    }

    /// `GET query?q=<soql>` and its further batches (`nextRecordsUrl`) until `enough` says so
    /// or every record is read: the records, in Salesforce's order.
    pub(crate) async fn query(
        &self,
        soql: &str,
        what: &str,
        enough: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut records = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let answer = match &next {
                None => {
                    self.exchange(
                        Method::GET,
                        Target::Data(&["query"]),
                        &[("q", soql)],
                        None,
                        what,
                    )
                    .await?
                }
                Some(path) => {
                    self.exchange(Method::GET, Target::Path(path), &[], None, what)
                        .await?
                }
            };
            if !answer.status.is_success() {
                return Err(classify(
                    answer.status,
                    answer.retry_after.as_ref(),
                    what,
                    &answer.body,
                    true,
                ));
            }
            let value: Value =
                serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
            let Some(batch) = value.get("records").and_then(Value::as_array) else {
                return Err(unexpected(what, &answer.body));
            };
            records.extend(batch.iter().cloned());
            let done = value.get("done").and_then(Value::as_bool).unwrap_or(true);
            match value.get("nextRecordsUrl").and_then(Value::as_str) {
                Some(path) if !done && !enough(&records) => next = Some(path.to_owned()),
                _ => return Ok(records),
            }
        }
        Err(ConnectorError::Permanent {
            reason: format!("{what}: more than {MAX_PAGES} batches of query results; giving up"),
        })
    }

    /// `POST sobjects/<object>`: the new record's Id.
    pub(crate) async fn create(
        &self,
        object: &str,
        body: &Value,
        what: &str,
    ) -> Result<String, ConnectorError> {
        let (_, value) = self
            .send_json(
                Method::POST,
                Target::Data(&["sobjects", object]),
                &[],
                Some(body),
                what,
            )
            .await?;
        value
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| super::config::is_record_id(id))
            .map(str::to_owned)
            .ok_or_else(|| unexpected(what, &value.to_string()))
    }

    /// `POST composite/sobjects` with `allOrNone`: at most [`COLLECTION_LIMIT`] records
    /// (each with `attributes.type`) created in one transaction, or none.
    pub(crate) async fn create_collection(
        &self,
        records: Vec<Value>,
        what: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let total = records.len();
        let body = json!({ "allOrNone": true, "records": records });
        let (_, value) = self
            .send_json(
                Method::POST,
                Target::Data(&["composite", "sobjects"]),
                &[],
                Some(&body),
                what,
            )
            .await?;
        let Some(results) = value.as_array() else {
            return Err(unexpected(what, &value.to_string()));
        };
        let mut ids = Vec::with_capacity(results.len());
        let mut failed: Vec<ApiError> = Vec::new();
        for result in results {
            if result.get("success").and_then(Value::as_bool) == Some(true) {
                if let Some(id) = result.get("id").and_then(Value::as_str) {
                    ids.push(id.to_owned());
                }
            } else {
                failed.extend(errors_of(result.get("errors").unwrap_or(&Value::Null)));
            }
        }
        if !failed.is_empty() || ids.len() != total {
            // With allOrNone every record but the culprit reports the rollback.
            let culprits: Vec<ApiError> = failed
                .iter()
                .filter(|e| e.code != "ALL_OR_NONE_OPERATION_ROLLED_BACK")
                .cloned()
                .collect();
            let errors = if culprits.is_empty() {
                failed
            } else {
                culprits
            };
            if errors.is_empty() {
                return Err(unexpected(what, &value.to_string()));
            }
            let body = errors_json(&errors);
            let err = classify(StatusCode::BAD_REQUEST, None, what, &body, false);
            return Err(with_context(
                err,
                &format!("none of {total} records written"),
            ));
        }
        Ok(ids)
    }

    /// `POST composite` with `allOrNone`: at most [`COMPOSITE_LIMIT`] subrequests in one
    /// transaction, or none. The subrequests' answers, in order.
    pub(crate) async fn composite(
        &self,
        requests: Vec<Value>,
        what: &str,
    ) -> Result<Vec<SubResponse>, ConnectorError> {
        let total = requests.len();
        let body = json!({ "allOrNone": true, "compositeRequest": requests });
        let (_, value) = self
            .send_json(
                Method::POST,
                Target::Data(&["composite"]),
                &[],
                Some(&body),
                what,
            )
            .await?;
        let Some(items) = value.get("compositeResponse").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        let responses: Vec<SubResponse> = items
            .iter()
            .map(|item| SubResponse {
                reference: item
                    .get("referenceId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                status: item
                    .get("httpStatusCode")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                body: item.get("body").cloned().unwrap_or(Value::Null),
            })
            .collect();
        let failed: Vec<&SubResponse> = responses
            .iter()
            .filter(|r| !(200..300).contains(&r.status))
            .collect();
        if failed.is_empty() && responses.len() == total {
            return Ok(responses);
        }
        // With allOrNone the other subrequests report PROCESSING_HALTED.
        let culprit = failed
            .iter()
            .find(|r| {
                errors_of(&r.body)
                    .iter()
                    .any(|e| e.code != "PROCESSING_HALTED")
            })
            .or_else(|| failed.first());
        match culprit {
            Some(culprit) => {
                let status =
                    StatusCode::from_u16(culprit.status).unwrap_or(StatusCode::BAD_REQUEST);
                let err = classify(status, None, what, &culprit.body.to_string(), false);
                Err(with_context(err, "nothing was written"))
            }
            None => Err(unexpected(what, &value.to_string())),
        }
    }
}

fn errors_json(errors: &[ApiError]) -> String {
    Value::Array(
        errors
            .iter()
            .map(|e| json!({ "errorCode": e.code, "message": e.message, "fields": e.fields }))
            .collect(),
    )
    .to_string()
}

/// Appends `(context)` to an error's reason.
fn with_context(err: ConnectorError, context: &str) -> ConnectorError {
    match err {
        ConnectorError::Retryable {
            retry_after,
            reason,
        } => ConnectorError::Retryable {
            retry_after,
            reason: format!("{reason} ({context})"),
        },
        ConnectorError::Permanent { reason } => ConnectorError::Permanent {
            reason: format!("{reason} ({context})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> SalesforceClient {
        SalesforceClient::new(
            url,
            "v62.0",
            "3MVG9",
            &Secret::new("sf-s3cret"),
            Duration::from_secs(1),
        )
        .expect("builds")
    }

    #[test]
    fn builds_data_urls_with_encoded_segments() {
        let c = client("https://acme.my.salesforce.com");
        let instance = Url::parse("https://acme.my.salesforce.com").expect("url");
        let url = c
            .url(
                &instance,
                Target::Data(&["sobjects", "Contact", "WhatsApp_Id__c", "968/9"]),
            )
            .expect("url");
        assert_eq!(
            url.as_str(),
            "https://acme.my.salesforce.com/services/data/v62.0/sobjects/Contact/WhatsApp_Id__c/968%2F9"
        );
        assert_eq!(
            c.data_path(&["sobjects", "Case"]),
            "/services/data/v62.0/sobjects/Case"
        );
        let next = c
            .url(
                &instance,
                Target::Path("/services/data/v62.0/query/01gD0000002HU6KIAW-2000"),
            )
            .expect("url");
        assert_eq!(
            next.as_str(),
            "https://acme.my.salesforce.com/services/data/v62.0/query/01gD0000002HU6KIAW-2000"
        );
        for bad in [
            "https://evil.example/x",
            "/other/x",
            "/services/../x",
            "//evil/services/",
        ] {
            assert!(c.url(&instance, Target::Path(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let debug = format!("{:?}", client("https://acme.my.salesforce.com"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn reads_error_arrays_and_redacts_numbers() {
        let body = r#"[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]"#;
        assert_eq!(
            error_summary(body, false),
            "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)"
        );
        let body = r#"[{"message":"duplicate value found: WhatsApp_Id__c duplicates value 96890000001 on record with id: 0035g00000ABCdeAAF","errorCode":"DUPLICATE_VALUE","fields":[]}]"#;
        let summary = error_summary(body, false);
        assert!(!summary.contains("96890000001"), "{summary}");
        assert!(summary.contains("0035g00000ABCdeAAF"), "{summary}");
        assert_eq!(
            redact_numbers("+96890000001, 1234, 5003000000D8cuIAAR"),
            "+[number], 1234, 5003000000D8cuIAAR"
        );
    }

    #[test]
    fn query_errors_lose_the_echoed_query() {
        let body = r#"[{"message":"\nSELECT Id FROM Case WHERE ContactId = '003000000000001' AND Origni = 'WhatsApp'\n                                                        ^\nERROR at Row:1:Column:57\nNo such column 'Origni' on entity 'Case'.","errorCode":"INVALID_FIELD"}]"#;
        let summary = error_summary(body, true);
        assert_eq!(
            summary,
            "INVALID_FIELD: No such column 'Origni' on entity 'Case'."
        );
    }

    #[test]
    fn request_limit_exceeded_waits_long_and_lock_contention_retries() {
        let daily =
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        match classify(StatusCode::FORBIDDEN, None, "salesforce: x", daily, false) {
            ConnectorError::Retryable {
                retry_after,
                reason,
            } => {
                assert_eq!(retry_after, Some(DAILY_LIMIT_WAIT));
                assert!(reason.contains("allowance"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let concurrent = r#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, None, "x", concurrent, false),
            ConnectorError::Retryable { retry_after: Some(w), .. } if w == CONCURRENT_LIMIT_WAIT
        ));
        let locked = r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]"#;
        assert!(classify(StatusCode::BAD_REQUEST, None, "x", locked, false).is_retryable());
        let invalid = r#"[{"message":"bad value for restricted picklist field: Chat","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Origin"]}]"#;
        let err = classify(
            StatusCode::BAD_REQUEST,
            None,
            "salesforce: x",
            invalid,
            false,
        );
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            "{err}"
        );
        let disabled = r#"[{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}]"#;
        let err = classify(
            StatusCode::FORBIDDEN,
            None,
            "salesforce: x",
            disabled,
            false,
        );
        assert!(
            !err.is_retryable() && err.to_string().contains("API Enabled"),
            "{err}"
        );
    }

    #[test]
    fn login_errors_say_what_to_fix() {
        let cases = [
            (
                400,
                r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
                "Consumer Secret",
            ),
            (
                400,
                r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
                "Consumer Key",
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"no client credentials user enabled"}"#,
                "Run As",
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"request not supported on this domain"}"#,
                "My Domain",
            ),
            (
                400,
                r#"{"error":"unsupported_grant_type","error_description":"grant type not supported"}"#,
                "Client Credentials Flow",
            ),
            (404, "<html>Not Found</html>", "My Domain"),
        ];
        for (status, body, words) in cases {
            let status = StatusCode::from_u16(status).expect("status");
            let err = login_error(status, None, "salesforce: logging in", body);
            assert!(!err.is_retryable(), "{body}");
            assert!(err.to_string().contains(words), "{err}");
        }
        let busy = login_error(StatusCode::SERVICE_UNAVAILABLE, None, "x", "");
        assert!(busy.is_retryable());
    }

    #[test]
    fn finds_the_user_in_the_identity_url() {
        assert_eq!(
            user_of_identity(
                "https://login.salesforce.com/id/00D5g000004ABCdEAG/0055g00000AbCdEAAV"
            ),
            Some("0055g00000AbCdEAAV".to_owned())
        );
        assert_eq!(user_of_identity("https://login.salesforce.com/id/"), None);
    }
}
