//! The Freshdesk API v2 calls the connector makes, each classified where it happens.
//!
//! Every answer goes through [`FreshdeskClient::exchange`]: transport failures via
//! [`ConnectorError::from_transport`], non-2xx via [`ConnectorError::from_status`] (honouring
//! `Retry-After`) with Freshdesk's error body reduced to its messages, and a 2xx whose body is
//! not what the API documents is permanent. Writes with files are `multipart/form-data`
//! (`attachments[]`), built here; lists are paged with `page`/`per_page` and the `Link:
//! <…>; rel="next"` header.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::{Map, Value};

use crate::{Attachment, ConnectorError, Secret};

/// Page size of list calls (Freshdesk's maximum).
const PER_PAGE: &str = "100";
/// At most this many pages of a ticket's conversations are read.
const MAX_PAGES: u32 = 50;

/// A ticket as the connector needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketState {
    /// The ticket id.
    pub id: u64,
    /// 2 Open, 3 Pending, 4 Resolved, 5 Closed, or a custom status (6 and up).
    pub status: u64,
    /// The requester (the customer), whose id authors public incoming notes.
    pub requester_id: Option<u64>,
    /// When it last changed (for a resolved ticket: about when it was resolved).
    pub updated_at: Option<DateTime<Utc>>,
    /// In the trash or marked as spam.
    pub discarded: bool,
    /// The description as HTML and as text, when the call returned it (viewing a ticket
    /// does, listing tickets does not).
    pub description: Option<String>,
    /// The group it is assigned to.
    pub group_id: Option<u64>,
    /// The agent it is assigned to.
    pub responder_id: Option<u64>,
    /// 1 Low, 2 Medium, 3 High, 4 Urgent.
    pub priority: Option<u64>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// Where a marker was found in a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkerFound {
    /// The marker is in the ticket's description: the message opened it.
    pub in_description: bool,
}

/// A thin client of the Freshdesk API v2: one method per call.
pub(crate) struct FreshdeskClient {
    http: reqwest::Client,
    /// `<url>/api/v2` with no trailing slash.
    base: Url,
    /// The `Authorization` value, marked sensitive; never printed.
    authorization: HeaderValue,
}

impl fmt::Debug for FreshdeskClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshdeskClient")
            .field("base", &self.base.as_str())
            .field("authorization", &"**redacted**")
            .finish()
    }
}

/// A Freshdesk id: a JSON number (or a string of digits).
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
    let description = ["description", "description_text"]
        .iter()
        .filter_map(|key| value.get(*key).and_then(Value::as_str))
        .collect::<Vec<_>>();
    Some(TicketState {
        id: id_of(value.get("id")?)?,
        status: id_of(value.get("status")?)?,
        requester_id: value.get("requester_id").and_then(id_of),
        updated_at: time_of(value.get("updated_at")),
        discarded: [value.get("deleted"), value.get("spam")]
            .iter()
            .any(|flag| flag.and_then(Value::as_bool).unwrap_or(false)),
        description: (!description.is_empty()).then(|| description.join("\n")),
        group_id: value.get("group_id").and_then(id_of),
        responder_id: value.get("responder_id").and_then(id_of),
        priority: value.get("priority").and_then(id_of),
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
        reason: format!("{what}: unexpected answer from Freshdesk: {snippet}"),
    }
}

/// The messages of a Freshdesk error body, e.g. `Validation failed: mobile: It should be a
/// unique value (duplicate_value)`. Freshdesk answers `{"description": "...", "errors":
/// [{"field": "...", "message": "...", "code": "..."}]}` for invalid requests and `{"code":
/// "...", "message": "..."}` for others; text that is not JSON is returned as it is.
pub(crate) fn error_summary(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(description) = value.get("description").and_then(Value::as_str) {
        parts.push(description.to_owned());
    }
    if let (Some(code), Some(message)) = (
        value.get("code").and_then(Value::as_str),
        value.get("message").and_then(Value::as_str),
    ) {
        parts.push(format!("{code}: {message}"));
    }
    if let Some(errors) = value.get("errors").and_then(Value::as_array) {
        let messages: Vec<String> = errors
            .iter()
            .map(|error| {
                let field = error.get("field").and_then(Value::as_str).unwrap_or("");
                let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                let code = error.get("code").and_then(Value::as_str).unwrap_or("");
                match (field.is_empty(), code.is_empty()) {
                    (true, true) => message.to_owned(),
                    (true, false) => format!("{message} ({code})"),
                    (false, true) => format!("{field}: {message}"),
                    (false, false) => format!("{field}: {message} ({code})"),
                }
            })
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

/// One HTTP answer: status, `Retry-After`, whether a next page exists, and the body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<HeaderValue>,
    pub next_page: bool,
    pub body: String,
}

impl Answer {
    /// The classified error of a non-2xx answer.
    pub(crate) fn error(&self, what: &str) -> ConnectorError {
        ConnectorError::from_status(
            self.status,
            self.retry_after.as_ref(),
            what,
            &error_summary(&self.body),
        )
    }

    fn json(&self, what: &str) -> Result<Value, ConnectorError> {
        serde_json::from_str(&self.body).map_err(|_| unexpected(what, &self.body))
    }
}

/// The fields of a write, in order: sent as a JSON object, or as form fields next to files.
pub(crate) type Fields = Vec<(&'static str, Value)>;

/// A `multipart/form-data` body (RFC 7578) of `fields` and files as `attachments[]`.
pub(crate) struct Multipart {
    /// The `Content-Type` header value, with the boundary.
    pub content_type: String,
    /// The encoded body.
    pub body: Vec<u8>,
}

/// A form-data name or file name inside a quoted header parameter: `"`, CR and LF
/// percent-encoded, as browsers do.
fn quoted(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl Multipart {
    /// Encodes `fields` (arrays as repeated `name[]` parts) and `attachments`.
    pub(crate) fn encode(
        fields: &[(&'static str, Value)],
        attachments: &[Attachment],
    ) -> Result<Self, ConnectorError> {
        let mut random = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
            |_| ConnectorError::Retryable {
                retry_after: None,
                reason: "freshdesk: no randomness for a multipart boundary".to_owned(),
            },
        )?;
        let boundary: String = std::iter::once("wabridge-".to_owned())
            .chain(random.iter().map(|b| format!("{b:02x}")))
            .collect();
        let mut body = Vec::new();
        let mut text_part = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                    quoted(name)
                )
                .as_bytes(),
            );
            body.extend_from_slice(value.as_bytes());
            body.extend_from_slice(b"\r\n");
        };
        for (name, value) in fields {
            match value {
                Value::Array(items) => {
                    let name = format!("{name}[]");
                    for item in items {
                        text_part(&name, &form_text(item));
                    }
                }
                Value::Null => {}
                other => text_part(name, &form_text(other)),
            }
        }
        for attachment in attachments {
            let mime = attachment.mime_type.trim();
            let mime = if mime.is_empty() || mime.contains(['\r', '\n']) {
                "application/octet-stream"
            } else {
                mime
            };
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"attachments[]\"; \
                     filename=\"{}\"\r\nContent-Type: {mime}\r\n\r\n",
                    quoted(&attachment.filename)
                )
                .as_bytes(),
            );
            body.extend_from_slice(&attachment.data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok(Multipart {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            body,
        })
    }
}

/// A JSON value as a form field's text.
fn form_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl FreshdeskClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        api_key: &Secret,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let mut base = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("freshdesk: url is not valid: {err}"),
        })?;
        {
            let mut segments =
                base.path_segments_mut()
                    .map_err(|()| ConnectorError::Permanent {
                        reason: "freshdesk: url cannot be a base address".to_owned(),
                    })?;
            segments.pop_if_empty().extend(["api", "v2"]);
        }
        let raw = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:X", api_key.expose().trim()))
        );
        let mut authorization =
            HeaderValue::from_str(&raw).map_err(|_| ConnectorError::Permanent {
                reason: "freshdesk: the API key contains characters not allowed in a header"
                    .to_owned(),
            })?;
        authorization.set_sensitive(true);
        let http = crate::http_client("freshdesk", timeout)?;
        Ok(FreshdeskClient {
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

    /// A write: JSON when there are no files, else `multipart/form-data`.
    fn write(
        &self,
        method: Method,
        url: Url,
        fields: &[(&'static str, Value)],
        attachments: &[Attachment],
    ) -> Result<RequestBuilder, ConnectorError> {
        let request = self.request(method, url);
        if attachments.is_empty() {
            let object: Map<String, Value> = fields
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect();
            return Ok(request.json(&Value::Object(object)));
        }
        let multipart = Multipart::encode(fields, attachments)?;
        Ok(request
            .header(CONTENT_TYPE, multipart.content_type)
            .body(multipart.body))
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
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(remaining) = remaining.filter(|r| *r < 20) {
            tracing::debug!(remaining, "Freshdesk's rate limit is nearly used up.");
        }
        let next_page = headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("rel=\"next\""));
        let body = response
            .text()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        Ok(Answer {
            status,
            retry_after,
            next_page,
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
        answer.json(what)
    }

    /// `GET /agents/me`: proves the address and the API key. Explains the answers an admin
    /// sees when they are wrong.
    pub(crate) async fn me(&self) -> Result<(), ConnectorError> {
        let what = "freshdesk: reading the API key's agent";
        let answer = self
            .exchange(self.request(Method::GET, self.url(&["agents", "me"])), what)
            .await?;
        let explain = |why: &str| ConnectorError::Permanent {
            reason: format!(
                "{what}: {why} (HTTP {}: {})",
                answer.status.as_u16(),
                error_summary(&answer.body)
            ),
        };
        match answer.status {
            StatusCode::UNAUTHORIZED => Err(explain(
                "Freshdesk refused the API key: copy it again from Profile settings → View API key",
            )),
            StatusCode::FORBIDDEN => Err(explain(
                "Freshdesk denied access: the API key must belong to an agent, and the helpdesk \
                 must allow API access",
            )),
            StatusCode::NOT_FOUND => Err(explain(
                "no Freshdesk helpdesk answers at this address: check domain or url",
            )),
            status if !status.is_success() => Err(answer.error(what)),
            _ => {
                let value = answer.json(what)?;
                if value.get("id").and_then(id_of).is_some() {
                    Ok(())
                } else {
                    Err(unexpected(what, &answer.body))
                }
            }
        }
    }

    /// `GET /tickets/{id}` (with its description); `None` when Freshdesk answers 404.
    pub(crate) async fn ticket(&self, id: u64) -> Result<Option<TicketState>, ConnectorError> {
        let what = "freshdesk: reading the ticket";
        let answer = self
            .exchange(
                self.request(Method::GET, self.url(&["tickets", &id.to_string()])),
                what,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(answer.error(what));
        }
        let value = answer.json(what)?;
        ticket_state(&value)
            .map(Some)
            .ok_or_else(|| unexpected(what, &answer.body))
    }

    /// `GET /tickets?requester_id=…&order_by=created_at&order_type=desc`: the requester's
    /// newest tickets (one page of 100; Freshdesk lists tickets created in the last 30 days
    /// unless asked otherwise), newest first.
    pub(crate) async fn tickets_of(
        &self,
        requester: u64,
    ) -> Result<Vec<TicketState>, ConnectorError> {
        let what = "freshdesk: listing the requester's tickets";
        let mut url = self.url(&["tickets"]);
        url.query_pairs_mut()
            .append_pair("requester_id", &requester.to_string())
            .append_pair("order_by", "created_at")
            .append_pair("order_type", "desc")
            .append_pair("per_page", PER_PAGE);
        let value = self.send_json(self.request(Method::GET, url), what).await?;
        let Some(tickets) = value.as_array() else {
            return Err(unexpected(what, &value.to_string()));
        };
        let mut tickets: Vec<TicketState> = tickets.iter().filter_map(ticket_state).collect();
        tickets.sort_by_key(|ticket| std::cmp::Reverse(ticket.id));
        Ok(tickets)
    }

    /// Whether `marker` is in the ticket's description or in one of its conversations
    /// (`GET /tickets/{id}/conversations`, every page). `markers` are the forms the marker may
    /// take (as written, HTML-escaped).
    pub(crate) async fn find_marker(
        &self,
        ticket: &TicketState,
        markers: &[String],
    ) -> Result<Option<MarkerFound>, ConnectorError> {
        let holds = |text: &str| markers.iter().any(|marker| text.contains(marker.as_str()));
        let description = match &ticket.description {
            Some(description) => Some(description.clone()),
            None => self
                .ticket(ticket.id)
                .await?
                .and_then(|fresh| fresh.description),
        };
        if description.as_deref().is_some_and(holds) {
            return Ok(Some(MarkerFound {
                in_description: true,
            }));
        }
        let what = "freshdesk: looking up the message marker";
        for page in 1..=MAX_PAGES {
            let mut url = self.url(&["tickets", &ticket.id.to_string(), "conversations"]);
            url.query_pairs_mut()
                .append_pair("per_page", PER_PAGE)
                .append_pair("page", &page.to_string());
            let answer = self.exchange(self.request(Method::GET, url), what).await?;
            if !answer.status.is_success() {
                return Err(answer.error(what));
            }
            let value = answer.json(what)?;
            let Some(conversations) = value.as_array() else {
                return Err(unexpected(what, &answer.body));
            };
            let found = conversations.iter().any(|conversation| {
                ["body", "body_text"].iter().any(|key| {
                    conversation
                        .get(*key)
                        .and_then(Value::as_str)
                        .is_some_and(holds)
                })
            });
            if found {
                return Ok(Some(MarkerFound {
                    in_description: false,
                }));
            }
            if !answer.next_page || conversations.is_empty() {
                return Ok(None);
            }
        }
        tracing::warn!("Stopped reading a Freshdesk ticket's conversations after too many pages.");
        Ok(None)
    }

    /// `GET /contacts?unique_external_id=…`: the id of the contact with this external id.
    pub(crate) async fn contact_with_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<u64>, ConnectorError> {
        let what = "freshdesk: looking up the requester";
        let mut url = self.url(&["contacts"]);
        url.query_pairs_mut()
            .append_pair("unique_external_id", external_id);
        let value = self.send_json(self.request(Method::GET, url), what).await?;
        let Some(contacts) = value.as_array() else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(contacts
            .first()
            .and_then(|contact| contact.get("id"))
            .and_then(id_of))
    }

    /// `POST /contacts`: the new contact's id; on 409 (the mobile number or external id
    /// belongs to a contact already) that contact's id from `additional_info.user_id`.
    pub(crate) async fn create_contact(&self, contact: &Value) -> Result<u64, ConnectorError> {
        let what = "freshdesk: creating the requester";
        let answer = self
            .exchange(
                self.request(Method::POST, self.url(&["contacts"]))
                    .json(contact),
                what,
            )
            .await?;
        if answer.status == StatusCode::CONFLICT {
            let existing = serde_json::from_str::<Value>(&answer.body)
                .ok()
                .and_then(|value| {
                    value["errors"]
                        .as_array()?
                        .iter()
                        .find_map(|error| error["additional_info"].get("user_id").and_then(id_of))
                });
            if let Some(id) = existing {
                return Ok(id);
            }
        }
        if !answer.status.is_success() {
            return Err(answer.error(what));
        }
        answer
            .json(what)?
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| unexpected(what, &answer.body))
    }

    /// `POST /tickets` (JSON, or multipart with `attachments[]`): the new ticket's id.
    pub(crate) async fn create_ticket(
        &self,
        fields: &[(&'static str, Value)],
        attachments: &[Attachment],
    ) -> Result<u64, ConnectorError> {
        let what = "freshdesk: creating the ticket";
        let request = self.write(Method::POST, self.url(&["tickets"]), fields, attachments)?;
        self.send_json(request, what)
            .await?
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| unexpected(what, "a ticket without id"))
    }

    /// `POST /tickets/{id}/notes` (JSON, or multipart with `attachments[]`).
    pub(crate) async fn add_note(
        &self,
        ticket: u64,
        fields: &[(&'static str, Value)],
        attachments: &[Attachment],
        what: &str,
    ) -> Result<(), ConnectorError> {
        let url = self.url(&["tickets", &ticket.to_string(), "notes"]);
        let request = self.write(Method::POST, url, fields, attachments)?;
        self.send_json(request, what).await.map(drop)
    }

    /// `GET /groups` (every page): the helpdesk's groups as (id, name).
    pub(crate) async fn groups(&self) -> Result<Vec<(u64, String)>, ConnectorError> {
        let what = "freshdesk: routing: listing the groups";
        let mut groups = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self.url(&["groups"]);
            url.query_pairs_mut()
                .append_pair("per_page", PER_PAGE)
                .append_pair("page", &page.to_string());
            let answer = self.exchange(self.request(Method::GET, url), what).await?;
            if !answer.status.is_success() {
                return Err(answer.error(what));
            }
            let value = answer.json(what)?;
            let Some(items) = value.as_array() else {
                return Err(unexpected(what, "a group list that is not a list"));
            };
            groups.extend(items.iter().filter_map(|group| {
                Some((
                    group.get("id").and_then(id_of)?,
                    group.get("name")?.as_str()?.to_owned(),
                ))
            }));
            if !answer.next_page || items.is_empty() {
                break;
            }
        }
        Ok(groups)
    }

    /// `GET /agents?email=…`: the id of the agent with exactly this e-mail address.
    pub(crate) async fn agent_with_email(
        &self,
        email: &str,
    ) -> Result<Option<u64>, ConnectorError> {
        let what = "freshdesk: routing: looking up the agent";
        let mut url = self.url(&["agents"]);
        url.query_pairs_mut().append_pair("email", email);
        let value = self.send_json(self.request(Method::GET, url), what).await?;
        let Some(agents) = value.as_array() else {
            return Err(unexpected(what, "an agent list that is not a list"));
        };
        Ok(agents
            .iter()
            .filter(|agent| {
                agent["contact"]
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|found| found.trim().eq_ignore_ascii_case(email))
            })
            .find_map(|agent| agent.get("id").and_then(id_of)))
    }

    /// `GET /tickets/{id}/conversations` (every page): the newest conversation holding
    /// `marker`, as its `body` (HTML) and `body_text`.
    pub(crate) async fn newest_note_with(
        &self,
        ticket: u64,
        marker: &str,
    ) -> Result<Option<(String, String)>, ConnectorError> {
        let what = "freshdesk: routing: looking up the last routing note";
        let mut newest = None;
        for page in 1..=MAX_PAGES {
            let mut url = self.url(&["tickets", &ticket.to_string(), "conversations"]);
            url.query_pairs_mut()
                .append_pair("per_page", PER_PAGE)
                .append_pair("page", &page.to_string());
            let answer = self.exchange(self.request(Method::GET, url), what).await?;
            if !answer.status.is_success() {
                return Err(answer.error(what));
            }
            let value = answer.json(what)?;
            let Some(conversations) = value.as_array() else {
                return Err(unexpected(what, "a conversation list that is not a list"));
            };
            for conversation in conversations {
                let text = |key: &str| {
                    conversation
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let (body, body_text) = (text("body"), text("body_text"));
                if body.contains(marker) || body_text.contains(marker) {
                    newest = Some((body, body_text));
                }
            }
            if !answer.next_page || conversations.is_empty() {
                break;
            }
        }
        Ok(newest)
    }

    /// `PUT /tickets/{id}` with the JSON fields.
    pub(crate) async fn update_ticket(
        &self,
        ticket: u64,
        fields: &Value,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let url = self.url(&["tickets", &ticket.to_string()]);
        self.send_json(self.request(Method::PUT, url).json(fields), what)
            .await
            .map(drop)
    }

    /// `PUT /tickets/{id}` `{"status": status}`.
    pub(crate) async fn set_status(&self, ticket: u64, status: u64) -> Result<(), ConnectorError> {
        let what = "freshdesk: reopening the ticket";
        let url = self.url(&["tickets", &ticket.to_string()]);
        let request = self.write(Method::PUT, url, &[("status", Value::from(status))], &[])?;
        self.send_json(request, what).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_api_v2_and_hides_the_key() {
        let key = Secret::new("k3y-abc");
        let client =
            FreshdeskClient::new("https://acme.freshdesk.com/", &key, Duration::from_secs(1))
                .expect("builds");
        assert_eq!(
            client.url(&["tickets", "1", "notes"]).as_str(),
            "https://acme.freshdesk.com/api/v2/tickets/1/notes"
        );
        // base64("k3y-abc:X")
        assert_eq!(
            client.authorization.to_str().ok(),
            Some("Basic azN5LWFiYzpY")
        );
        assert!(!format!("{client:?}").contains("azN5"));
    }

    #[test]
    fn summarises_freshdesk_error_bodies() {
        assert_eq!(
            error_summary(
                r#"{"description":"Validation failed","errors":[{"field":"mobile",
                "message":"It should be a unique value","code":"duplicate_value",
                "additional_info":{"user_id":123}}]}"#
            ),
            "Validation failed: mobile: It should be a unique value (duplicate_value)"
        );
        assert_eq!(
            error_summary(
                r#"{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}"#
            ),
            "invalid_credentials: You have to be logged in to perform this action."
        );
        assert_eq!(error_summary(" busy \n"), "busy");
    }

    #[test]
    fn encodes_multipart_fields_arrays_and_files() {
        let fields: Fields = vec![
            ("subject", Value::from("Hi \"there\"")),
            ("status", Value::from(2)),
            ("private", Value::from(false)),
            ("tags", serde_json::json!(["whatsapp", "vip"])),
            ("group_id", Value::Null),
        ];
        let files = [Attachment {
            filename: "a\"b\r\n.jpg".into(),
            mime_type: "image/jpeg".into(),
            data: vec![0, 1, 2, 255],
        }];
        let multipart = Multipart::encode(&fields, &files).expect("encodes");
        let boundary = multipart
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let mut expected = Vec::new();
        for (name, value) in [
            ("subject", "Hi \"there\""),
            ("status", "2"),
            ("private", "false"),
            ("tags[]", "whatsapp"),
            ("tags[]", "vip"),
        ] {
            expected.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        expected.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"attachments[]\"; \
                 filename=\"a%22b%0D%0A.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        expected.extend_from_slice(&[0, 1, 2, 255]);
        expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert_eq!(multipart.body, expected);
        // A fresh boundary every time.
        let again = Multipart::encode(&fields, &files).expect("encodes");
        assert_ne!(again.content_type, multipart.content_type);
    }
}
