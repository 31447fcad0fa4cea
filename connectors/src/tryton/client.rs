//! Tryton's JSON-RPC as the connector speaks it: the session, the envelope, the classification
//! of every answer, and the value encodings.
//!
//! Every call is `POST <url>/<database>/rpc/` with the body `{"id": n, "method": "…",
//! "params": […]}` (exactly these three keys: otherwise Tryton answers without the envelope).
//! `common.db.login` with `[username, {"password": …}, language]` answers `[user id, session,
//! bus url]`; later calls carry `Authorization: Session base64(username:user id:session)`.
//!
//! How answers are classified (checked against trytond 8.2.1):
//! - `200` with `result`: success (`null` included).
//! - `200` with `error`: Tryton raised. `["UserError", [message, description, domain]]` (access
//!   rights, validation, a missing record) and `UserWarning`/`LoginException` are permanent;
//!   `ConcurrencyException` and server exceptions that name a database lock or serialization
//!   failure are retryable; any other server exception (`[text, traceback]`) is permanent.
//! - `401`: on the login, a wrong username or password (permanent); on any other call, the
//!   session expired or was revoked: the client logs in again **once** and repeats the call.
//! - `404`: the database does not exist (Tryton answers 404 for an unknown database).
//! - `429`: on the login, too many failed logins (Tryton blocks the user for a while); retryable.
//! - everything else through [`ConnectorError::from_status`] (5xx, 408 and 429 retryable,
//!   honouring `Retry-After`), transport failures through [`ConnectorError::from_transport`].
//!
//! The password is only in the login body; no error repeats a request, and Tryton's HTML
//! error pages are reduced to their title.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::{ConnectorError, Secret};

/// The language asked for at login (Tryton's messages in errors come in it).
const LANGUAGE: &str = "en";

fn snippet(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Tryton's error pages are Werkzeug HTML: keep their `<title>`, else the text as it is.
fn readable(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.starts_with('<') {
        let lower = trimmed.to_ascii_lowercase();
        if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>")) {
            if start + 7 <= end {
                return snippet(trimmed[start + 7..end].trim());
            }
        }
        return String::new();
    }
    snippet(trimmed)
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    ConnectorError::Permanent {
        reason: format!("{what}: unexpected answer from Tryton: {}", snippet(body)),
    }
}

/// Server exceptions worth retrying: a locked or busy database, a serialization failure.
fn transient(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "database is locked",
        "could not serialize",
        "deadlock",
        "lock timeout",
        "lock not available",
        "could not obtain lock",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Classifies the `error` member of a JSON-RPC answer (see the module docs).
pub(crate) fn rpc_error(what: &str, error: &Value) -> ConnectorError {
    let kind = error.get(0).and_then(Value::as_str).unwrap_or_default();
    let args = error.get(1).unwrap_or(&Value::Null);
    let text = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    match kind {
        "UserError" => {
            let message = text(args.get(0));
            let description = text(args.get(1));
            // "The code on party must be unique": two creates at once drew the same number
            // from a sequence (sqlite has no row locks), or created the same record. Again, the
            // next attempt (which looks up first) succeeds.
            let conflict = message.contains("must be unique");
            let detail = if description.is_empty() {
                message
            } else {
                format!("{message} ({description})")
            };
            let reason = format!("{what}: Tryton refused: {}", snippet(&detail));
            if conflict {
                ConnectorError::Retryable {
                    retry_after: Some(std::time::Duration::from_secs(2)),
                    reason,
                }
            } else {
                ConnectorError::Permanent { reason }
            }
        }
        "UserWarning" => ConnectorError::Permanent {
            reason: format!(
                "{what}: Tryton asks to confirm a warning: {}",
                snippet(&text(args.get(1)))
            ),
        },
        "LoginException" => ConnectorError::Permanent {
            reason: format!(
                "{what}: Tryton asks for more than a password to log in ({}); the connector \
                 logs in with a password only",
                snippet(&text(args.get(1)))
            ),
        },
        "ConcurrencyException" => ConnectorError::Retryable {
            retry_after: None,
            reason: format!(
                "{what}: Tryton reports a concurrent change: {}",
                snippet(&text(Some(args)))
            ),
        },
        _ => {
            // A server exception: `[str(exception), traceback]`.
            let message = match error.get(0) {
                Some(Value::String(s)) => s.lines().next().unwrap_or_default().to_owned(),
                Some(other) => other.to_string(),
                None => error.to_string(),
            };
            let traceback = text(error.get(1));
            let reason = format!("{what}: Tryton failed: {}", snippet(&message));
            if transient(&message) || transient(&traceback) {
                ConnectorError::Retryable {
                    retry_after: None,
                    reason,
                }
            } else {
                ConnectorError::Permanent { reason }
            }
        }
    }
}

/// What one exchange produced, before the session logic.
enum Reply {
    /// The `result` member.
    Result(Value),
    /// HTTP 401: not (or no longer) logged in.
    Unauthorized,
    /// Any other status but 2xx and 404: the status, `Retry-After` and the body, readable.
    Status(StatusCode, Option<HeaderValue>, String),
}

impl Reply {
    /// The error for a [`Reply::Status`] (see the module docs); `None` for the others.
    fn status_error(&self, what: &str) -> Option<ConnectorError> {
        match self {
            Reply::Status(status, retry_after, body) => Some(ConnectorError::from_status(
                *status,
                retry_after.as_ref(),
                what,
                body,
            )),
            Reply::Result(_) | Reply::Unauthorized => None,
        }
    }
}

/// A Tryton JSON-RPC client for one database and one user, holding one session.
pub(crate) struct TrytonClient {
    http: reqwest::Client,
    /// `<url>/<database>/rpc/`.
    endpoint: Url,
    /// `url` as configured, for messages.
    server: String,
    database: String,
    username: String,
    password: Secret,
    /// `Session base64(username:user id:session)`, marked sensitive; `None` before the first
    /// login and after Tryton refused it.
    session: Mutex<Option<HeaderValue>>,
    next_id: AtomicU64,
}

impl fmt::Debug for TrytonClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrytonClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("session", &"**redacted**")
            .finish()
    }
}

impl TrytonClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        database: &str,
        username: &str,
        password: &Secret,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let mut endpoint = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("tryton: url is not valid: {err}"),
        })?;
        if endpoint.cannot_be_a_base() {
            return Err(ConnectorError::Permanent {
                reason: "tryton: url cannot be a base address".to_owned(),
            });
        }
        if let Ok(mut path) = endpoint.path_segments_mut() {
            path.pop_if_empty().extend([database.trim(), "rpc", ""]);
        }
        let http = crate::http_client("tryton", timeout)?;
        Ok(TrytonClient {
            http,
            endpoint,
            server: url.trim().trim_end_matches('/').to_owned(),
            database: database.trim().to_owned(),
            username: username.trim().to_owned(),
            password: password.clone(),
            session: Mutex::new(None),
            next_id: AtomicU64::new(1),
        })
    }

    /// One POST of the JSON-RPC envelope, classified (a 401 is left to the caller).
    async fn send(
        &self,
        method: &str,
        params: &Value,
        session: Option<&HeaderValue>,
        what: &str,
    ) -> Result<Reply, ConnectorError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .json(&json!({ "id": id, "method": method, "params": params }));
        if let Some(session) = session {
            request = request.header(AUTHORIZATION, session.clone());
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
        match status {
            s if s.is_success() => {
                let value: Value =
                    serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
                if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
                    return Err(rpc_error(what, error));
                }
                match value.get("result") {
                    Some(result) => Ok(Reply::Result(result.clone())),
                    None => Err(unexpected(what, &body)),
                }
            }
            StatusCode::UNAUTHORIZED => Ok(Reply::Unauthorized),
            StatusCode::NOT_FOUND => Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: HTTP 404: Tryton at {} has no database `{}` (check `database`: the \
                     name in the Tryton client's login dialog; and that `url` is the Tryton \
                     server)",
                    self.server, self.database
                ),
            }),
            status => Ok(Reply::Status(status, retry_after, readable(&body))),
        }
    }

    /// Logs in: the `Authorization` value of the new session.
    async fn login(&self) -> Result<HeaderValue, ConnectorError> {
        let what = "tryton: logging in";
        let params = json!([
            self.username,
            { "password": self.password.expose() },
            LANGUAGE
        ]);
        let result = match self.send("common.db.login", &params, None, what).await? {
            Reply::Result(result) => result,
            Reply::Unauthorized => {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "{what}: Tryton refused the login of user `{}` on database `{}`: the \
                         username or the password is wrong (check `username` and `password`)",
                        self.username, self.database
                    ),
                })
            }
            reply @ Reply::Status(StatusCode::TOO_MANY_REQUESTS, ..) => {
                let retry_after = match reply.status_error(what) {
                    Some(ConnectorError::Retryable { retry_after, .. }) => retry_after,
                    _ => None,
                };
                return Err(ConnectorError::Retryable {
                    retry_after,
                    reason: format!(
                        "{what}: HTTP 429: Tryton blocks the logins of user `{}` for a while \
                         after too many failed attempts",
                        self.username
                    ),
                });
            }
            reply @ Reply::Status(..) => {
                return Err(reply
                    .status_error(what)
                    .unwrap_or_else(|| unexpected(what, "")))
            }
        };
        let user = result.get(0).and_then(Value::as_u64);
        let session = result
            .get(1)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let (Some(user), Some(session)) = (user, session) else {
            return Err(unexpected(what, &result.to_string()));
        };
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{user}:{session}", self.username));
        let mut header = HeaderValue::from_str(&format!("Session {token}")).map_err(|_| {
            ConnectorError::Permanent {
                reason: format!("{what}: Tryton's session is not usable in a header"),
            }
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// The current session, logging in when there is none; `true` when it was just made.
    async fn session(&self) -> Result<(HeaderValue, bool), ConnectorError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref() {
            return Ok((session.clone(), false));
        }
        let session = self.login().await?;
        *current = Some(session.clone());
        Ok((session, true))
    }

    /// Drops `session` when it is still the current one (another call may have replaced it).
    async fn forget(&self, session: &HeaderValue) {
        let mut current = self.session.lock().await;
        if current.as_ref() == Some(session) {
            *current = None;
        }
    }

    /// Calls `method` with `params` in the session; on a 401 logs in again once and repeats.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: Value,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let (session, fresh) = self.session().await?;
        let mut reply = self.send(method, &params, Some(&session), what).await?;
        if matches!(reply, Reply::Unauthorized) && !fresh {
            // The session expired or was revoked: one new login, one more try.
            self.forget(&session).await;
            let (session, _) = self.session().await?;
            reply = self.send(method, &params, Some(&session), what).await?;
        }
        match reply {
            Reply::Result(result) => return Ok(result),
            Reply::Status(..) => {
                return Err(reply
                    .status_error(what)
                    .unwrap_or_else(|| unexpected(what, "")))
            }
            Reply::Unauthorized => {}
        }
        Err(ConnectorError::Permanent {
            reason: format!(
                "{what}: HTTP 401: Tryton refused the session it had just opened for user `{}` \
                 (is the user active and allowed to log in?)",
                self.username
            ),
        })
    }

    /// `model.<model>.<method>` with `args` followed by an empty context.
    pub(crate) async fn model(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let mut params = args;
        params.push(json!({}));
        self.call(
            &format!("model.{model}.{method}"),
            Value::Array(params),
            what,
        )
        .await
    }

    /// `search_read(domain, offset 0, limit, order, fields)`: the records as JSON objects.
    pub(crate) async fn search_read(
        &self,
        model: &str,
        domain: Value,
        limit: Option<usize>,
        order: Value,
        fields: &[&str],
        what: &str,
    ) -> Result<Vec<Value>, ConnectorError> {
        let result = self
            .model(
                model,
                "search_read",
                vec![domain, json!(0), json!(limit), order, json!(fields)],
                what,
            )
            .await?;
        match result {
            Value::Array(records) if records.iter().all(Value::is_object) => Ok(records),
            other => Err(unexpected(what, &other.to_string())),
        }
    }

    /// `create([values…])`: the new ids, one per value, in order.
    pub(crate) async fn create(
        &self,
        model: &str,
        values: Vec<Value>,
        what: &str,
    ) -> Result<Vec<u64>, ConnectorError> {
        let count = values.len();
        let result = self
            .model(model, "create", vec![Value::Array(values)], what)
            .await?;
        let ids: Vec<u64> = result
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if ids.len() != count {
            return Err(unexpected(what, &result.to_string()));
        }
        Ok(ids)
    }
}

/// A Tryton `Decimal` as text, exactly as Tryton wrote it (`{"__class__": "Decimal",
/// "decimal": "12.500"}` → `12.500`); plain JSON numbers and numeric strings are accepted too.
pub(crate) fn decimal_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::Object(map) if map.get("__class__").and_then(Value::as_str) == Some("Decimal") => {
            map.get("decimal")?.as_str()?.trim().to_owned()
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let valid = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    valid.then_some(text)
}

fn field(map: &serde_json::Map<String, Value>, key: &str) -> Option<u32> {
    map.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// A Tryton `datetime` (`{"__class__": "datetime", "year": …, "microsecond": …}`, naive UTC)
/// or an ISO 8601 text.
pub(crate) fn datetime_of(value: &Value) -> Option<NaiveDateTime> {
    match value {
        Value::Object(map) if map.get("__class__").and_then(Value::as_str) == Some("datetime") => {
            let year = map.get("year").and_then(Value::as_i64)?;
            NaiveDate::from_ymd_opt(
                i32::try_from(year).ok()?,
                field(map, "month")?,
                field(map, "day")?,
            )?
            .and_hms_micro_opt(
                field(map, "hour").unwrap_or(0),
                field(map, "minute").unwrap_or(0),
                field(map, "second").unwrap_or(0),
                field(map, "microsecond").unwrap_or(0),
            )
        }
        Value::String(s) => {
            let s = s.trim().trim_end_matches('Z');
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .ok()
        }
        _ => None,
    }
}

/// A Tryton `date` (`{"__class__": "date", …}`) as `YYYY-MM-DD`.
pub(crate) fn date_text(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) if map.get("__class__").and_then(Value::as_str) == Some("date") => {
            let year = map.get("year").and_then(Value::as_i64)?;
            let date = NaiveDate::from_ymd_opt(
                i32::try_from(year).ok()?,
                field(map, "month")?,
                field(map, "day")?,
            )?;
            Some(date.format("%Y-%m-%d").to_string())
        }
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .ok()
            .map(|d| d.format("%Y-%m-%d").to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike as _;

    use super::*;

    #[test]
    fn reads_decimals_as_tryton_writes_them() {
        assert_eq!(
            decimal_text(&json!({"__class__": "Decimal", "decimal": "12.500"})).as_deref(),
            Some("12.500")
        );
        assert_eq!(decimal_text(&json!(3.25)).as_deref(), Some("3.25"));
        assert_eq!(decimal_text(&json!("-1.0")).as_deref(), Some("-1.0"));
        assert_eq!(decimal_text(&json!({"__class__": "Decimal"})), None);
        assert_eq!(decimal_text(&json!("12,5")), None);
        assert_eq!(decimal_text(&json!(null)), None);
    }

    #[test]
    fn reads_datetimes_with_microseconds_and_dates() {
        let value = json!({"__class__": "datetime", "year": 2026, "month": 11, "day": 27,
                           "hour": 6, "minute": 44, "second": 18, "microsecond": 661246});
        let at = datetime_of(&value).expect("a datetime");
        assert_eq!(
            at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            "2026-11-27 06:44:18.661246"
        );
        assert_eq!(
            datetime_of(&json!("2026-11-27T06:44:18.5Z")).map(|at| at.nanosecond()),
            Some(500_000_000)
        );
        assert_eq!(
            datetime_of(&json!({"__class__": "datetime", "year": 2026, "month": 13, "day": 1})),
            None
        );
        assert_eq!(
            date_text(&json!({"__class__": "date", "year": 2026, "month": 11, "day": 27}))
                .as_deref(),
            Some("2026-11-27")
        );
    }

    #[test]
    fn classifies_json_rpc_errors() {
        let user_error = rpc_error(
            "x",
            &json!([
                "UserError",
                ["The phone number \"+1555\" is not valid.", "", null]
            ]),
        );
        assert!(!user_error.is_retryable());
        assert!(
            user_error.to_string().contains("is not valid"),
            "{user_error}"
        );
        assert!(!rpc_error("x", &json!(["UserWarning", ["w", "Check it", ""]])).is_retryable());
        assert!(
            !rpc_error("x", &json!(["LoginException", ["totp", "Code", "char"]])).is_retryable()
        );
        assert!(rpc_error(
            "x",
            &json!(["ConcurrencyException", "Records were modified"])
        )
        .is_retryable());
        assert!(rpc_error("x", &json!(["database is locked", "Traceback …"])).is_retryable());
        let unique = rpc_error(
            "x",
            &json!(["UserError", ["The code on party must be unique.", "", null]]),
        );
        assert!(unique.is_retryable(), "{unique:?}");
        let key_error = rpc_error(
            "x",
            &json!(["'notes'", "Traceback (most recent call last)"]),
        );
        assert!(!key_error.is_retryable());
        assert_eq!(
            key_error.to_string(),
            "permanent: x: Tryton failed: 'notes'"
        );
    }

    #[test]
    fn reduces_html_error_pages_to_their_title() {
        assert_eq!(
            readable("<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>"),
            "405 Method Not Allowed"
        );
        assert_eq!(readable("{\"message\":\"busy\"}"), "{\"message\":\"busy\"}");
    }
}
