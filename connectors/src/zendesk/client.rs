//! The Zendesk Support API calls the connector makes, each classified where it happens.
//!
//! Every answer goes through [`ZendeskClient::exchange`]: transport failures via
//! [`ConnectorError::from_transport`], non-2xx via [`ConnectorError::from_status`] (honouring
//! `Retry-After`) with Zendesk's error body reduced to its messages, and a 2xx whose body is
//! not what the API documents is permanent. Lists use cursor pagination (`page[size]`,
//! `meta.has_more`, `meta.after_cursor`).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::{json, Value};

use crate::{Attachment, ConnectorError, Secret};

/// Page size of list calls (Zendesk's maximum).
const PAGE_SIZE: &str = "100";
/// At most this many pages are read from one list (a ticket holds at most 5000 comments).
const MAX_PAGES: usize = 60;

/// How the connector authenticates.
pub(crate) enum Credentials<'a> {
    /// HTTP Basic `<email>/token:<api_token>`.
    ApiToken { email: &'a str, token: &'a Secret },
    /// `Authorization: Bearer <token>`.
    OAuth(&'a Secret),
}

/// A ticket as the connector needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketState {
    /// The ticket id.
    pub id: u64,
    /// `new`, `open`, `pending`, `hold`, `solved` or `closed`.
    pub status: String,
    /// The requester (the customer), whose id authors public customer comments.
    pub requester_id: Option<u64>,
    /// When it last changed (for a solved ticket: about when it was solved).
    pub updated_at: Option<DateTime<Utc>>,
    /// The group it is assigned to.
    pub group_id: Option<u64>,
    /// The agent it is assigned to.
    pub assignee_id: Option<u64>,
    /// `low`, `normal`, `high`, `urgent`, or none.
    pub priority: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// Where a marker was found among a ticket's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkerFound {
    /// The marker is in the ticket's first comment (its description): the message opened it.
    pub in_first_comment: bool,
}

/// The user the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Me {
    /// `None` when Zendesk answered as an anonymous visitor.
    pub id: Option<u64>,
    /// `end-user`, `agent` or `admin`.
    pub role: String,
}

/// A thin client of the Zendesk Support API: one method per call.
pub(crate) struct ZendeskClient {
    http: reqwest::Client,
    /// `<url>/api/v2` with no trailing slash.
    base: Url,
    /// The `Authorization` value, marked sensitive; never printed.
    authorization: HeaderValue,
}

impl fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("base", &self.base.as_str())
            .field("authorization", &"**redacted**")
            .finish()
    }
}

/// A Zendesk id: a JSON number (or, in webhook bodies, a string of digits).
pub(crate) fn id_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn time_of(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn ticket_state(value: &Value) -> Option<TicketState> {
    Some(TicketState {
        id: id_of(value.get("id")?)?,
        status: value.get("status")?.as_str()?.to_owned(),
        requester_id: value.get("requester_id").and_then(id_of),
        updated_at: time_of(value.get("updated_at")),
        group_id: value.get("group_id").and_then(id_of),
        assignee_id: value.get("assignee_id").and_then(id_of),
        priority: value
            .get("priority")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tags: value
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    })
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    let snippet: String = body.chars().take(300).collect();
    ConnectorError::Permanent {
        reason: format!("{what}: unexpected answer from Zendesk: {snippet}"),
    }
}

/// The messages of a Zendesk error body, e.g. `RecordInvalid: Record validation errors:
/// Status: closed prevents ticket update`. Zendesk answers `{"error": "...", "description":
/// "...", "details": {"<field>": [{"description": "...", "error": "..."}]}}` for most errors,
/// `{"error": {"title": "...", "message": "..."}}` for some, and text/plain for others (e.g.
/// the per-user rate limit); text that is not JSON is returned as it is.
pub(crate) fn error_summary(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    match value.get("error") {
        Some(Value::String(error)) => parts.push(error.clone()),
        Some(Value::Object(error)) => {
            for key in ["title", "message"] {
                if let Some(text) = error.get(key).and_then(Value::as_str) {
                    parts.push(text.to_owned());
                }
            }
        }
        _ => {}
    }
    if let Some(description) = value.get("description").and_then(Value::as_str) {
        parts.push(description.to_owned());
    }
    if let Some(details) = value.get("details").and_then(Value::as_object) {
        let messages: Vec<&str> = details
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|detail| detail.get("description").and_then(Value::as_str))
            .collect();
        if !messages.is_empty() {
            parts.push(messages.join("; "));
        }
    }
    if parts.is_empty() {
        body.trim().to_owned()
    } else {
        parts.join(": ")
    }
}

/// Classifies a non-2xx answer with Zendesk's error messages as the body.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    what: &str,
    body: &str,
) -> ConnectorError {
    ConnectorError::from_status(status, retry_after, what, &error_summary(body))
}

/// One HTTP answer: status, `Retry-After` and the body as text.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<HeaderValue>,
    pub body: String,
}

impl Answer {
    /// The classified error of a non-2xx answer.
    pub(crate) fn error(&self, what: &str) -> ConnectorError {
        classify(self.status, self.retry_after.as_ref(), what, &self.body)
    }
}

impl ZendeskClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        credentials: Credentials<'_>,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let mut base = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("zendesk: url is not valid: {err}"),
        })?;
        {
            let mut segments =
                base.path_segments_mut()
                    .map_err(|()| ConnectorError::Permanent {
                        reason: "zendesk: url cannot be a base address".to_owned(),
                    })?;
            segments.pop_if_empty().extend(["api", "v2"]);
        }
        let raw = match credentials {
            Credentials::ApiToken { email, token } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}/token:{}",
                    email.trim(),
                    token.expose().trim()
                ))
            ),
            Credentials::OAuth(token) => format!("Bearer {}", token.expose().trim()),
        };
        let mut authorization =
            HeaderValue::from_str(&raw).map_err(|_| ConnectorError::Permanent {
                reason: "zendesk: the credential contains characters not allowed in a header"
                    .to_owned(),
            })?;
        authorization.set_sensitive(true);
        let http = crate::http_client("zendesk", timeout)?;
        Ok(ZendeskClient {
            http,
            base,
            authorization,
        })
    }

    /// `<base>/api/v2/<segments…>`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
    }

    /// Sends; a transport failure is classified, any HTTP answer is returned as it is.
    async fn exchange(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        let response = request
            .send()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        let status = response.status();
        let headers = response.headers();
        let retry_after = headers.get(RETRY_AFTER).cloned();
        let remaining = headers
            .get("x-rate-limit-remaining")
            .or_else(|| headers.get("ratelimit-remaining"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(remaining) = remaining.filter(|r| *r < 10) {
            tracing::debug!(
                remaining,
                "Zendesk's per-minute rate limit is nearly used up."
            );
        }
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

    /// Sends and classifies: the JSON body of a 2xx answer, else the classified error.
    async fn send_json(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let answer = self.exchange(request, what).await?;
        if !answer.status.is_success() {
            return Err(answer.error(what));
        }
        serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))
    }

    /// `GET /users/me.json`: the user the credentials belong to. Zendesk answers 200 with an
    /// anonymous user (`"id": null`) when the request carries no usable credentials.
    pub(crate) async fn me(&self) -> Result<Me, ConnectorError> {
        let what = "zendesk: reading the API user";
        let answer = self
            .exchange(
                self.request(Method::GET, self.url(&["users", "me.json"])),
                what,
            )
            .await?;
        match answer.status {
            StatusCode::UNAUTHORIZED => {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "{what}: Zendesk refused the credentials (HTTP 401: {}): check email \
                         and api_token (or oauth_token), and that token access is enabled in \
                         Admin Center → Apps and integrations → Zendesk API",
                        error_summary(&answer.body)
                    ),
                })
            }
            StatusCode::FORBIDDEN => {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "{what}: Zendesk denied access (HTTP 403: {}): the user needs to be an \
                         agent or admin, and an OAuth token needs the read and write scopes",
                        error_summary(&answer.body)
                    ),
                })
            }
            status if !status.is_success() => return Err(answer.error(what)),
            _ => {}
        }
        let value: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        let Some(user) = value.get("user").filter(|u| u.is_object()) else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(Me {
            id: user.get("id").and_then(id_of),
            role: user
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// `GET /tickets/{id}.json`; `None` when Zendesk answers 404 (no such ticket, deleted,
    /// or not visible to the API user).
    pub(crate) async fn ticket(&self, id: u64) -> Result<Option<TicketState>, ConnectorError> {
        let what = "zendesk: reading the ticket";
        let answer = self
            .exchange(
                self.request(Method::GET, self.url(&["tickets", &format!("{id}.json")])),
                what,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.error(what));
        }
        let value: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        value
            .get("ticket")
            .and_then(ticket_state)
            .map(Some)
            .ok_or_else(|| unexpected(what, &answer.body))
    }

    /// Reads every page of a cursor-paginated list, handing each page's `key` array to
    /// `each`; `each` returns `false` to stop early.
    async fn for_each_page(
        &self,
        url: Url,
        key: &str,
        what: &str,
        mut each: impl FnMut(&[Value]) -> bool,
    ) -> Result<(), ConnectorError> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut page = url.clone();
            {
                let mut query = page.query_pairs_mut();
                query.append_pair("page[size]", PAGE_SIZE);
                if let Some(cursor) = &after {
                    query.append_pair("page[after]", cursor);
                }
            }
            let value = self
                .send_json(self.request(Method::GET, page), what)
                .await?;
            let Some(items) = value.get(key).and_then(Value::as_array) else {
                return Err(unexpected(what, &value.to_string()));
            };
            if !each(items) {
                return Ok(());
            }
            let more = value["meta"]["has_more"].as_bool().unwrap_or(false);
            match value["meta"]["after_cursor"].as_str() {
                Some(cursor) if more && !cursor.is_empty() => after = Some(cursor.to_owned()),
                _ => return Ok(()),
            }
        }
        tracing::warn!(what, "Stopped reading a Zendesk list after too many pages.");
        Ok(())
    }

    /// `GET /tickets.json?external_id=…`: every ticket carrying this external id, oldest
    /// first (Zendesk reads them from its database, not from the search index, so a ticket
    /// created a moment ago is found).
    pub(crate) async fn tickets_with_external_id(
        &self,
        external_id: &str,
    ) -> Result<Vec<TicketState>, ConnectorError> {
        let what = "zendesk: listing the conversation's tickets";
        let mut url = self.url(&["tickets.json"]);
        url.query_pairs_mut()
            .append_pair("external_id", external_id);
        let mut tickets = Vec::new();
        self.for_each_page(url, "tickets", what, |items| {
            tickets.extend(items.iter().filter_map(ticket_state));
            true
        })
        .await?;
        tickets.sort_by_key(|ticket| ticket.id);
        Ok(tickets)
    }

    /// `GET /tickets/{id}/comments.json` (oldest first): whether a comment's text holds
    /// `marker`, and whether that comment is the ticket's first.
    pub(crate) async fn find_marker(
        &self,
        ticket: u64,
        marker: &str,
    ) -> Result<Option<MarkerFound>, ConnectorError> {
        let what = "zendesk: looking up the message marker";
        let url = self.url(&["tickets", &ticket.to_string(), "comments.json"]);
        let mut index = 0usize;
        let mut found = None;
        self.for_each_page(url, "comments", what, |comments| {
            for comment in comments {
                let holds = ["body", "plain_body", "html_body"].iter().any(|key| {
                    comment
                        .get(*key)
                        .and_then(Value::as_str)
                        .is_some_and(|text| text.contains(marker))
                });
                if holds {
                    found = Some(MarkerFound {
                        in_first_comment: index == 0,
                    });
                    return false;
                }
                index += 1;
            }
            true
        })
        .await?;
        Ok(found)
    }

    /// `GET /groups.json` (every page): the account's groups that are not deleted, as (id,
    /// name).
    pub(crate) async fn groups(&self) -> Result<Vec<(u64, String)>, ConnectorError> {
        let what = "zendesk: routing: listing the groups";
        let mut groups = Vec::new();
        self.for_each_page(self.url(&["groups.json"]), "groups", what, |items| {
            groups.extend(items.iter().filter_map(|group| {
                if group.get("deleted").and_then(Value::as_bool) == Some(true) {
                    return None;
                }
                Some((
                    group.get("id").and_then(id_of)?,
                    group.get("name")?.as_str()?.to_owned(),
                ))
            }));
            true
        })
        .await?;
        Ok(groups)
    }

    /// `GET /users/search.json?query=<email>`: the id of the agent or admin with exactly this
    /// e-mail address.
    pub(crate) async fn agent_with_email(
        &self,
        email: &str,
    ) -> Result<Option<u64>, ConnectorError> {
        let what = "zendesk: routing: looking up the assignee";
        let mut url = self.url(&["users", "search.json"]);
        url.query_pairs_mut().append_pair("query", email);
        let value = self.send_json(self.request(Method::GET, url), what).await?;
        let Some(users) = value.get("users").and_then(Value::as_array) else {
            return Err(unexpected(what, "a search answer without users"));
        };
        Ok(users
            .iter()
            .filter(|user| {
                user.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.trim().eq_ignore_ascii_case(email))
                    && user.get("role").and_then(Value::as_str) != Some("end-user")
            })
            .find_map(|user| user.get("id").and_then(id_of)))
    }

    /// `GET /tickets/{id}/comments.json` (every page): the text of the newest comment holding
    /// `marker` (its `body` and `plain_body`).
    pub(crate) async fn newest_comment_with(
        &self,
        ticket: u64,
        marker: &str,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        let what = "zendesk: routing: looking up the last routing note";
        let url = self.url(&["tickets", &ticket.to_string(), "comments.json"]);
        let mut newest = None;
        self.for_each_page(url, "comments", what, |comments| {
            for comment in comments {
                let texts: Vec<String> = ["body", "plain_body"]
                    .iter()
                    .filter_map(|key| comment.get(*key).and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect();
                if texts.iter().any(|text| text.contains(marker)) {
                    newest = Some(texts);
                }
            }
            true
        })
        .await?;
        Ok(newest)
    }

    /// `GET /users/search.json?external_id=…`: the id of the user with this external id.
    pub(crate) async fn user_with_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<u64>, ConnectorError> {
        let what = "zendesk: looking up the requester";
        let mut url = self.url(&["users", "search.json"]);
        url.query_pairs_mut()
            .append_pair("external_id", external_id);
        let value = self.send_json(self.request(Method::GET, url), what).await?;
        let Some(users) = value.get("users").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(users
            .iter()
            .find(|user| {
                user.get("external_id")
                    .and_then(Value::as_str)
                    .is_none_or(|id| id.eq_ignore_ascii_case(external_id))
            })
            .and_then(|user| user.get("id"))
            .and_then(id_of))
    }

    /// `POST /users/create_or_update.json` with `{"user": user}` (matched on `external_id`):
    /// the user's id. When Zendesk refuses the phone number (422: another user has it as a
    /// direct line), the user is created once more without it.
    pub(crate) async fn create_or_update_user(&self, user: &Value) -> Result<u64, ConnectorError> {
        let what = "zendesk: creating the requester";
        let url = self.url(&["users", "create_or_update.json"]);
        let mut answer = self
            .exchange(
                self.request(Method::POST, url.clone())
                    .json(&json!({ "user": user })),
                what,
            )
            .await?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY
            && user.get("phone").is_some()
            && error_summary(&answer.body).to_lowercase().contains("phone")
        {
            tracing::warn!(
                "Zendesk refused the requester's phone number; creating the requester without it."
            );
            let mut without_phone = user.clone();
            if let Some(fields) = without_phone.as_object_mut() {
                fields.remove("phone");
            }
            answer = self
                .exchange(
                    self.request(Method::POST, url)
                        .json(&json!({ "user": without_phone })),
                    what,
                )
                .await?;
        }
        if !answer.status.is_success() {
            return Err(answer.error(what));
        }
        let value: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        value["user"]
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| unexpected(what, &answer.body))
    }

    /// `POST /uploads.json?filename=…[&token=…]` with the file's bytes: the upload token to
    /// put in `comment.uploads`. With `token`, the file joins that earlier upload.
    pub(crate) async fn upload(
        &self,
        attachment: &Attachment,
        token: Option<&str>,
    ) -> Result<String, ConnectorError> {
        let what = "zendesk: uploading an attachment";
        let mut url = self.url(&["uploads.json"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("filename", &attachment.filename);
            if let Some(token) = token {
                query.append_pair("token", token);
            }
        }
        let mime = attachment.mime_type.trim();
        let mime = if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        };
        let value = self
            .send_json(
                self.request(Method::POST, url)
                    .header(CONTENT_TYPE, mime)
                    .body(attachment.data.clone()),
                what,
            )
            .await?;
        value["upload"]
            .get("token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| unexpected(what, &value.to_string()))
    }

    /// `POST /tickets.json` with `{"ticket": …}`: the new ticket's id.
    pub(crate) async fn create_ticket(&self, body: &Value) -> Result<u64, ConnectorError> {
        let what = "zendesk: creating the ticket";
        let value = self
            .send_json(
                self.request(Method::POST, self.url(&["tickets.json"]))
                    .json(body),
                what,
            )
            .await?;
        value["ticket"]
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| unexpected(what, &value.to_string()))
    }

    /// `PUT /tickets/{id}.json` with `{"ticket": …}` (a comment, a status change).
    pub(crate) async fn update_ticket(
        &self,
        ticket: u64,
        body: &Value,
        what: &str,
    ) -> Result<(), ConnectorError> {
        self.send_json(
            self.request(
                Method::PUT,
                self.url(&["tickets", &format!("{ticket}.json")]),
            )
            .json(body),
            what,
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str, credentials: Credentials<'_>) -> ZendeskClient {
        ZendeskClient::new(url, credentials, Duration::from_secs(1)).expect("builds")
    }

    #[test]
    fn appends_api_v2_to_the_base_path() {
        let token = Secret::new("t");
        for (url, expected) in [
            (
                "https://acme.zendesk.com",
                "https://acme.zendesk.com/api/v2/tickets/1.json",
            ),
            (
                "https://acme.zendesk.com/",
                "https://acme.zendesk.com/api/v2/tickets/1.json",
            ),
            (
                "http://127.0.0.1:9/zd/",
                "http://127.0.0.1:9/zd/api/v2/tickets/1.json",
            ),
        ] {
            let client = client(url, Credentials::OAuth(&token));
            assert_eq!(client.url(&["tickets", "1.json"]).as_str(), expected);
        }
    }

    #[test]
    fn builds_basic_auth_from_email_and_token_and_hides_it() {
        let token = Secret::new("s3cr3t");
        let client = client(
            "https://acme.zendesk.com",
            Credentials::ApiToken {
                email: "agent@acme.com",
                token: &token,
            },
        );
        // base64("agent@acme.com/token:s3cr3t")
        assert_eq!(
            client.authorization.to_str().ok(),
            Some("Basic YWdlbnRAYWNtZS5jb20vdG9rZW46czNjcjN0")
        );
        assert!(client.authorization.is_sensitive());
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("YWdlbnRA"),
            "{debug}"
        );
    }

    #[test]
    fn summarises_zendesk_error_bodies() {
        let invalid = r#"{"error":"RecordInvalid","description":"Record validation errors",
            "details":{"base":[{"description":"Status: closed prevents ticket update",
            "error":"ClosedPreventsUpdate"}]}}"#;
        assert_eq!(
            error_summary(invalid),
            "RecordInvalid: Record validation errors: Status: closed prevents ticket update"
        );
        assert_eq!(
            error_summary(r#"{"error":"Couldn't authenticate you"}"#),
            "Couldn't authenticate you"
        );
        assert_eq!(
            error_summary(r#"{"error":{"title":"Forbidden","message":"You do not have access"}}"#),
            "Forbidden: You do not have access"
        );
        assert_eq!(
            error_summary("You have exceeded the rate limit for updating a single unique user\n"),
            "You have exceeded the rate limit for updating a single unique user"
        );
    }

    #[test]
    fn reads_ids_as_numbers_or_digit_strings() {
        assert_eq!(id_of(&serde_json::json!(35436)), Some(35436));
        assert_eq!(id_of(&serde_json::json!("35436")), Some(35436));
        assert_eq!(id_of(&serde_json::json!("")), None);
        assert_eq!(id_of(&serde_json::json!(null)), None);
    }
}
