//! The REST2 calls the RT connector makes, each classified where it happens.
//!
//! Every answer goes through [`RtClient::send`]: transport failures via
//! [`ConnectorError::from_transport`], non-2xx via [`ConnectorError::from_status`] (with
//! `Retry-After`), and a 2xx whose body is not what REST2 documents is permanent.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::{json, Value};

use crate::{ConnectorError, Secret};

/// How the connector authenticates.
pub(crate) enum Credentials<'a> {
    /// `Authorization: token <token>`.
    Token(&'a Secret),
    /// HTTP Basic.
    Basic {
        username: &'a str,
        password: &'a Secret,
    },
}

/// A ticket as the connector needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketState {
    /// The effective id (RT follows merges when loading a ticket).
    pub id: String,
    /// Lifecycle status, e.g. `new`, `open`, `resolved`.
    pub status: String,
    /// When it was last resolved (RT's epoch "not set" value becomes `None`).
    pub resolved: Option<DateTime<Utc>>,
    /// When it last changed.
    pub last_updated: Option<DateTime<Utc>>,
    /// The queue's id (REST2 names the queue by id, not by name).
    pub queue: Option<String>,
    /// The owner's user name (`Nobody` when nobody owns it).
    pub owner: Option<String>,
    /// The priority, a number.
    pub priority: Option<i64>,
    /// The ticket custom fields the user may see, with their values.
    pub custom_fields: Vec<CustomFieldValues>,
}

/// One ticket custom field and its values, as `GET /ticket/{id}` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomFieldValues {
    /// The field's id.
    pub id: String,
    /// The field's name.
    pub name: String,
    /// Its values on the ticket.
    pub values: Vec<String>,
}

impl CustomFieldValues {
    /// Whether `field` (a name, case-insensitive, or an id) names this field.
    pub(crate) fn is(&self, field: &str) -> bool {
        let field = field.trim();
        self.id == field || self.name.eq_ignore_ascii_case(field)
    }
}

/// The newest text part holding some marker: its content and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundText {
    /// The text.
    pub content: String,
    /// When it was written.
    pub created: Option<DateTime<Utc>>,
}

/// A thin REST2 client: one method per call.
pub(crate) struct RtClient {
    http: reqwest::Client,
    /// `<url>/REST/2.0` with no trailing slash.
    base: Url,
    /// The `Authorization` value, marked sensitive; never printed.
    authorization: HeaderValue,
}

impl fmt::Debug for RtClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtClient")
            .field("base", &self.base.as_str())
            .field("authorization", &"**redacted**")
            .finish()
    }
}

/// The `value` of RT's JSON ids, which are strings in collections and numbers elsewhere.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// An RT number, which REST2 sends as a string (`"50"`) or a number.
fn number_of(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The ticket custom fields of a ticket's JSON.
fn custom_fields_of(value: Option<&Value>) -> Vec<CustomFieldValues> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|field| {
            Some(CustomFieldValues {
                id: field.get("id").and_then(id_of)?,
                name: field.get("name").and_then(Value::as_str)?.to_owned(),
                values: field
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// RT's timestamps; `1970-01-01T00:00:00Z` means "not set".
fn rt_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value?.as_str()?).ok()?;
    let parsed = parsed.with_timezone(&Utc);
    (parsed.timestamp() > 0).then_some(parsed)
}

/// A TicketSQL string literal.
pub(crate) fn sql_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    let snippet: String = body.chars().take(300).collect();
    ConnectorError::Permanent {
        reason: format!("{what}: unexpected answer from RT: {snippet}"),
    }
}

impl RtClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        credentials: Credentials<'_>,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let mut base = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("rt: url is not valid: {err}"),
        })?;
        {
            let mut segments =
                base.path_segments_mut()
                    .map_err(|()| ConnectorError::Permanent {
                        reason: "rt: url cannot be a base address".to_owned(),
                    })?;
            segments.pop_if_empty().extend(["REST", "2.0"]);
        }
        let raw = match credentials {
            Credentials::Token(token) => format!("token {}", token.expose().trim()),
            Credentials::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    username.trim(),
                    password.expose()
                ))
            ),
        };
        let mut authorization =
            HeaderValue::from_str(&raw).map_err(|_| ConnectorError::Permanent {
                reason: "rt: the credential contains characters not allowed in a header".to_owned(),
            })?;
        authorization.set_sensitive(true);
        let http = crate::http_client("rt", timeout)?;
        Ok(RtClient {
            http,
            base,
            authorization,
        })
    }

    /// `<base>/REST/2.0/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .header(AUTHORIZATION, self.authorization.clone())
    }

    /// Sends; a transport failure is classified, any HTTP answer is returned as it is.
    async fn exchange(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, Option<HeaderValue>, String), ConnectorError> {
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
        Ok((status, retry_after, body))
    }

    /// Sends and classifies: the body of a 2xx answer, else the classified error.
    async fn send(&self, request: RequestBuilder, what: &str) -> Result<String, ConnectorError> {
        let (status, retry_after, body) = self.exchange(request, what).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ConnectorError::from_status(
                status,
                retry_after.as_ref(),
                what,
                &body,
            ))
        }
    }

    async fn send_json(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<Value, ConnectorError> {
        let body = self.send(request, what).await?;
        serde_json::from_str(&body).map_err(|_| unexpected(what, &body))
    }

    /// `GET /queue/{queue}`: proves address, credentials and the queue.
    pub(crate) async fn queue(&self, queue: &str) -> Result<(), ConnectorError> {
        let what = "rt: reading the queue";
        let value = self
            .send_json(self.request(Method::GET, &["queue", queue]), what)
            .await?;
        match value.get("id") {
            Some(_) => Ok(()),
            None => Err(unexpected(what, &value.to_string())),
        }
    }

    /// `GET /ticket/{id}`; `None` when RT answers 404 (no such ticket, or not visible).
    pub(crate) async fn ticket(&self, id: &str) -> Result<Option<TicketState>, ConnectorError> {
        let what = "rt: reading the ticket";
        let (status, retry_after, body) = self
            .exchange(self.request(Method::GET, &["ticket", id]), what)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ConnectorError::from_status(
                status,
                retry_after.as_ref(),
                what,
                &body,
            ));
        }
        let value: Value = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        let (Some(id), Some(status)) = (
            value.get("id").and_then(id_of),
            value.get("Status").and_then(Value::as_str),
        ) else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(Some(TicketState {
            id,
            status: status.to_owned(),
            resolved: rt_time(value.get("Resolved")),
            last_updated: rt_time(value.get("LastUpdated")),
            queue: value.get("Queue").and_then(|q| q.get("id")).and_then(id_of),
            owner: value
                .get("Owner")
                .and_then(|o| o.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            priority: number_of(value.get("Priority")),
            custom_fields: custom_fields_of(value.get("CustomFields")),
        }))
    }

    /// `GET /{kind}/{name}` (a queue or a user, by name or id): the record, or `None` when RT
    /// answers 404 (no such record, or the user may not see it).
    async fn record(
        &self,
        kind: &str,
        name: &str,
        what: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let (status, retry_after, body) = self
            .exchange(self.request(Method::GET, &[kind, name]), what)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ConnectorError::from_status(
                status,
                retry_after.as_ref(),
                what,
                &body,
            ));
        }
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|_| unexpected(what, &body))
    }

    /// `GET /queue/{name}`: the queue's id; `None` when there is no such queue or the user may
    /// not see it (SeeQueue).
    pub(crate) async fn queue_id(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let what = "rt: routing: reading the queue";
        match self.record("queue", name, what).await? {
            None => Ok(None),
            Some(value) => value
                .get("id")
                .and_then(id_of)
                .map(Some)
                .ok_or_else(|| unexpected(what, "a queue without id")),
        }
    }

    /// `GET /user/{name}` (a user name or id): the user's name; `None` when there is no such
    /// user or the connector's user may not see it.
    pub(crate) async fn user_name(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let what = "rt: routing: reading the user";
        match self.record("user", name, what).await? {
            None => Ok(None),
            Some(value) => value
                .get("Name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .map(|name| Some(name.to_owned()))
                .ok_or_else(|| unexpected(what, "a user without a name")),
        }
    }

    /// `PUT /ticket/{id}` with the fields: RT's messages. RT answers 200 also when it refused a
    /// change (an unknown queue or user, no right), with a message saying so; the caller reads
    /// the ticket again to know what took.
    pub(crate) async fn update_ticket(
        &self,
        ticket: &str,
        fields: &Value,
    ) -> Result<Vec<String>, ConnectorError> {
        let what = "rt: routing: updating the ticket";
        let value = self
            .send_json(
                self.request(Method::PUT, &["ticket", ticket]).json(fields),
                what,
            )
            .await?;
        Ok(value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    /// `POST /ticket/{id}/attachments` with a JSON filter `Content LIKE <marker>`: the newest
    /// text part of the ticket holding `marker` (RT 5 returns a text part's content as text).
    pub(crate) async fn newest_text_with(
        &self,
        ticket: &str,
        marker: &str,
    ) -> Result<Option<FoundText>, ConnectorError> {
        let what = "rt: routing: looking up the last routing comment";
        let filter = json!([
            { "field": "ContentType", "operator": "=", "value": "text/plain" },
            { "field": "Content", "operator": "LIKE", "value": marker, "case_sensitive": 1 },
        ]);
        let value = self
            .send_json(
                self.request(Method::POST, &["ticket", ticket, "attachments"])
                    .query(&[
                        ("fields", "Content,Created"),
                        ("orderby", "id"),
                        ("order", "DESC"),
                        ("per_page", "1"),
                    ])
                    .json(&filter),
                what,
            )
            .await?;
        let Some(items) = value.get("items").and_then(Value::as_array) else {
            return Err(unexpected(what, "a search answer without items"));
        };
        Ok(items.first().map(|item| FoundText {
            content: item
                .get("Content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            created: rt_time(item.get("Created")),
        }))
    }

    /// `POST /ticket` with the JSON body; returns the new ticket's id.
    pub(crate) async fn create_ticket(&self, body: &Value) -> Result<String, ConnectorError> {
        let what = "rt: creating the ticket";
        let value = self
            .send_json(self.request(Method::POST, &["ticket"]).json(body), what)
            .await?;
        value
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| unexpected(what, &value.to_string()))
    }

    /// `POST /ticket/{id}/comment` with the JSON body (a private comment).
    pub(crate) async fn comment(&self, ticket: &str, body: &Value) -> Result<(), ConnectorError> {
        let what = "rt: adding the comment";
        self.send(
            self.request(Method::POST, &["ticket", ticket, "comment"])
                .json(body),
            what,
        )
        .await
        .map(drop)
    }

    /// Correspond transactions on tickets with an id above `after`, oldest first (at most
    /// 50): (transaction id, ticket id, created).
    pub(crate) async fn correspondence_after(
        &self,
        after: u64,
    ) -> Result<Vec<(u64, String, Option<DateTime<Utc>>)>, ConnectorError> {
        let what = "rt: looking for agents' replies";
        let mut url = self.url(&["transactions"]);
        url.query_pairs_mut()
            .append_pair("fields", "ObjectId,ObjectType,Created")
            .append_pair("orderby", "id")
            .append_pair("order", "ASC")
            .append_pair("per_page", "50");
        let filter = json!([
            { "field": "Type", "value": "Correspond" },
            { "field": "ObjectType", "value": "RT::Ticket" },
            { "field": "id", "operator": ">", "value": after.to_string() }
        ]);
        let body = self
            .send(
                self.http
                    .post(url)
                    .header(AUTHORIZATION, self.authorization.clone())
                    .json(&filter),
                what,
            )
            .await?;
        let value: Value = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        let mut found = Vec::new();
        for item in value["items"].as_array().into_iter().flatten() {
            let (Some(id), Some(ticket)) = (
                id_of(&item["id"]).and_then(|i| i.parse::<u64>().ok()),
                id_of(&item["ObjectId"]),
            ) else {
                continue;
            };
            found.push((id, ticket, rt_time(item.get("Created"))));
        }
        Ok(found)
    }

    /// The id of the newest transaction (0 when there is none).
    pub(crate) async fn newest_transaction(&self) -> Result<u64, ConnectorError> {
        let what = "rt: reading the newest transaction";
        let mut url = self.url(&["transactions"]);
        url.query_pairs_mut()
            .append_pair("orderby", "id")
            .append_pair("order", "DESC")
            .append_pair("per_page", "1");
        let body = self
            .send(
                self.http
                    .post(url)
                    .header(AUTHORIZATION, self.authorization.clone())
                    .json(&json!([{ "field": "ObjectType", "value": "RT::Ticket" }])),
                what,
            )
            .await?;
        let value: Value = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        Ok(value["items"][0]
            .get("id")
            .and_then(id_of)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0))
    }

    /// The plain-text content of a transaction.
    pub(crate) async fn transaction_text(&self, id: u64) -> Result<String, ConnectorError> {
        let what = "rt: reading a reply";
        let id = id.to_string();
        let mut url = self.url(&["transaction", &id, "attachments"]);
        url.query_pairs_mut()
            .append_pair("fields", "ContentType,Content")
            .append_pair("per_page", "20");
        let body = self
            .send(
                self.http
                    .get(url)
                    .header(AUTHORIZATION, self.authorization.clone()),
                what,
            )
            .await?;
        let value: Value = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        let text = value["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|part| part["ContentType"].as_str() == Some("text/plain"))
            .filter_map(|part| part["Content"].as_str())
            .map(str::trim)
            .find(|content| !content.is_empty())
            .unwrap_or_default()
            .to_owned();
        Ok(text)
    }

    /// `PUT /ticket/{id}` `{"Status": status}`.
    pub(crate) async fn set_status(
        &self,
        ticket: &str,
        status: &str,
    ) -> Result<(), ConnectorError> {
        let what = "rt: changing the ticket status";
        let value = self
            .send_json(
                self.request(Method::PUT, &["ticket", ticket])
                    .json(&json!({ "Status": status })),
                what,
            )
            .await?;
        // RT answers 200 with a list of (localised) messages, also when it refused the change;
        // the comment that follows is delivered either way, so this is only logged.
        tracing::debug!(ticket, answer = %value, "RT answered the status change.");
        Ok(())
    }

    /// `PUT /user/{name}` with the given fields.
    pub(crate) async fn update_user(
        &self,
        name: &str,
        fields: &Value,
    ) -> Result<(), ConnectorError> {
        self.send(
            self.request(Method::PUT, &["user", name]).json(fields),
            "rt: updating the requestor",
        )
        .await
        .map(drop)
    }

    /// `GET /tickets?query=…`: the newest active ticket (`__Active__` statuses of its
    /// lifecycle) in `queue` whose requestor has this e-mail address.
    pub(crate) async fn newest_active_ticket(
        &self,
        queue: &str,
        requestor: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let what = "rt: searching the requestor's open tickets";
        let query = format!(
            "Queue = {} AND Requestor.EmailAddress = {} AND Status = '__Active__'",
            sql_quote(queue),
            sql_quote(requestor)
        );
        let value = self
            .send_json(
                self.request(Method::GET, &["tickets"]).query(&[
                    ("query", query.as_str()),
                    ("orderby", "id"),
                    ("order", "DESC"),
                    ("per_page", "1"),
                    ("fields", "Status"),
                ]),
                what,
            )
            .await?;
        let Some(items) = value.get("items").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(items
            .first()
            .and_then(|item| item.get("id"))
            .and_then(id_of))
    }

    /// `POST /ticket/{id}/attachments` with a JSON filter `Content LIKE <marker>` on the
    /// text parts: the id of the oldest transaction of the ticket whose text holds `marker`.
    /// One call whatever the ticket's length; the database does the scan.
    pub(crate) async fn transaction_with(
        &self,
        ticket: &str,
        marker: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let what = "rt: looking up the message marker";
        let filter = json!([
            { "field": "ContentType", "operator": "=", "value": "text/plain" },
            // LIKE wraps the value in %…%. Case-sensitive, so RT does not wrap both sides in
            // LOWER(), which would never match on MySQL, where Content is a binary column.
            { "field": "Content", "operator": "LIKE", "value": marker, "case_sensitive": 1 },
        ]);
        let value = self
            .send_json(
                self.request(Method::POST, &["ticket", ticket, "attachments"])
                    .query(&[
                        ("fields", "TransactionId"),
                        ("orderby", "id"),
                        ("order", "ASC"),
                        ("per_page", "1"),
                    ])
                    .json(&filter),
                what,
            )
            .await?;
        let Some(items) = value.get("items").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        match items.first() {
            None => Ok(None),
            Some(item) => item
                .get("TransactionId")
                .and_then(id_of)
                .map(Some)
                .ok_or_else(|| unexpected(what, &value.to_string())),
        }
    }

    /// `GET /transaction/{id}`: its `Type` (`Create`, `Comment`, `Correspond`, ...).
    pub(crate) async fn transaction_type(&self, id: &str) -> Result<String, ConnectorError> {
        let what = "rt: reading the transaction";
        let value = self
            .send_json(self.request(Method::GET, &["transaction", id]), what)
            .await?;
        value
            .get("Type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| unexpected(what, &value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rest2_to_the_base_path() {
        let token = Secret::new("t");
        for (url, expected) in [
            ("http://h:8181", "http://h:8181/REST/2.0/ticket/1"),
            ("http://h:8181/", "http://h:8181/REST/2.0/ticket/1"),
            ("https://h/rt/", "https://h/rt/REST/2.0/ticket/1"),
        ] {
            let client =
                RtClient::new(url, Credentials::Token(&token), Duration::from_secs(1)).unwrap();
            assert_eq!(client.url(&["ticket", "1"]).as_str(), expected);
        }
    }

    #[test]
    fn encodes_path_segments() {
        let token = Secret::new("t");
        let client = RtClient::new(
            "http://h",
            Credentials::Token(&token),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            client.url(&["queue", "Support / WA"]).as_str(),
            "http://h/REST/2.0/queue/Support%20%2F%20WA"
        );
    }

    #[test]
    fn debug_hides_the_credential() {
        let token = Secret::new("s3cr3t-token");
        let client = RtClient::new(
            "http://h",
            Credentials::Token(&token),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }

    #[test]
    fn reads_rt_ids_and_times() {
        assert_eq!(id_of(&json!("12")), Some("12".into()));
        assert_eq!(id_of(&json!(12)), Some("12".into()));
        assert_eq!(id_of(&json!("root")), None);
        assert_eq!(rt_time(Some(&json!("1970-01-01T00:00:00Z"))), None);
        assert!(rt_time(Some(&json!("2026-11-27T03:34:29Z"))).is_some());
    }

    #[test]
    fn reads_rt_numbers_and_custom_fields() {
        assert_eq!(number_of(Some(&json!("50"))), Some(50));
        assert_eq!(number_of(Some(&json!(75))), Some(75));
        assert_eq!(number_of(Some(&json!("High"))), None);
        let fields = custom_fields_of(Some(&json!([
            {"type": "customfield", "id": "3", "name": "Tags", "values": ["vip", "billing"]},
            {"type": "customfield", "id": 4, "name": "Empty", "values": []},
        ])));
        assert_eq!(fields.len(), 2);
        assert!(fields[0].is("tags") && fields[0].is("3") && !fields[0].is("4"));
        assert_eq!(fields[0].values, ["vip", "billing"]);
        assert!(fields[1].is("4"));
    }

    #[test]
    fn quotes_ticketsql_literals() {
        assert_eq!(sql_quote("O'Brien\\x"), "'O\\'Brien\\\\x'");
    }
}
