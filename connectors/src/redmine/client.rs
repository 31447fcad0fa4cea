//! The REST calls the Redmine connector makes, each classified where it happens.
//!
//! Every answer goes through [`RedmineClient::send`]: transport failures via
//! [`ConnectorError::from_transport`], non-2xx via [`classify`] (401 and 422 explained,
//! everything else [`ConnectorError::from_status`] with `Retry-After`), and a 2xx whose body is
//! not what Redmine documents is permanent. No error carries a URL: search URLs hold phone
//! numbers.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::{ConnectorError, Secret};

/// The header Redmine reads the API key from.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-redmine-api-key");

/// The page size of issue listings (Redmine's maximum).
pub(crate) const PAGE: usize = 100;

/// An issue as the connector needs to see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Issue {
    /// The issue number.
    pub id: u64,
    /// Its subject.
    pub subject: String,
    /// Its status.
    pub status: Status,
    /// The first message (the connector's issues) or whatever the author wrote.
    #[serde(deserialize_with = "null_as_empty")]
    pub description: String,
    /// When it was last closed; kept by Redmine after a reopen, so read it with `status`.
    pub closed_on: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_on: Option<DateTime<Utc>>,
    /// Its journals, oldest first, when asked for with `include=journals`.
    pub journals: Vec<Journal>,
    /// Its custom fields (in listings only when the tracker has some).
    pub custom_fields: Vec<CustomValue>,
    /// Who it is assigned to (a user or group), if anyone.
    pub assigned_to: Option<Named>,
    /// Its priority.
    pub priority: Option<Named>,
    /// Its category, if any.
    pub category: Option<Named>,
}

/// An issue's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Status {
    /// The status id.
    pub id: u64,
    /// Whether the status counts as closed.
    pub is_closed: bool,
}

/// One journal (history entry) of an issue: a note, field changes, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Journal {
    /// Global and increasing over the whole Redmine.
    pub id: u64,
    /// Who wrote it.
    pub user: Option<Named>,
    /// The note, empty for pure field changes.
    #[serde(deserialize_with = "null_as_empty")]
    pub notes: String,
    /// Whether only roles with "View private notes" see it.
    pub private_notes: bool,
    /// When it was written.
    pub created_on: Option<DateTime<Utc>>,
}

/// A reference to another object (`{"id": 1, "name": "…"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Named {
    /// Its id.
    pub id: u64,
}

/// A custom field's value on an issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct CustomValue {
    /// The field's id.
    pub id: u64,
    /// The value (a string; lists for multi-value fields, which the connector does not use).
    pub value: Value,
}

/// What `GET /projects/{id}.json?include=trackers,enabled_modules` tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Project {
    /// The project's numeric id.
    pub id: u64,
    /// The trackers enabled in the project.
    pub trackers: Vec<Named>,
    /// The modules enabled in the project (`issue_tracking`, ...).
    pub enabled_modules: Vec<Module>,
}

/// An enabled project module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Module {
    /// Its name, e.g. `issue_tracking`.
    pub name: String,
}

/// One page of an issue listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct IssuePage {
    /// The issues of this page.
    pub issues: Vec<Issue>,
    /// How many match in all.
    pub total_count: usize,
}

/// One entry of a list of named things (issue priorities, categories).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Enumeration {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Whether it may be chosen (priorities; categories are always active).
    #[serde(default = "active")]
    pub active: bool,
}

fn active() -> bool {
    true
}

/// What Redmine did with an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Upload {
    /// Stored; attach it with this token.
    Stored(String),
    /// Refused for this file alone (too large, a forbidden extension): Redmine's words.
    Refused(String),
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    let snippet: String = body.chars().take(300).collect();
    ConnectorError::Permanent {
        reason: format!("{what}: unexpected answer from Redmine: {snippet}"),
    }
}

/// The messages of Redmine's `{"errors": [...]}` body, joined; `None` when there are none.
pub(crate) fn error_messages(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let messages: Vec<&str> = value
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

/// Classifies a non-2xx answer: 401 and 422 with an explanation an admin can act on, anything
/// else by [`ConnectorError::from_status`].
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    what: &str,
    body: &str,
) -> ConnectorError {
    match status {
        StatusCode::UNAUTHORIZED => ConnectorError::Permanent {
            reason: format!(
                "{what}: Redmine refused the API key (HTTP 401): check api_key, and that the \
                 REST API is enabled in Redmine (Administration → Settings → API)"
            ),
        },
        StatusCode::UNPROCESSABLE_ENTITY => ConnectorError::Permanent {
            reason: format!(
                "{what}: Redmine refused the data (HTTP 422): {}",
                error_messages(body).unwrap_or_else(|| body.chars().take(300).collect())
            ),
        },
        _ => ConnectorError::from_status(status, retry_after, what, body),
    }
}

/// Redmine's `updated_on` filter and the cursor's time format.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A thin client of Redmine's REST API: one method per call.
pub(crate) struct RedmineClient {
    http: reqwest::Client,
    /// The configured base address, its path ending in `/`.
    base: Url,
    /// The `X-Redmine-API-Key` value, marked sensitive; never printed.
    api_key: HeaderValue,
}

impl fmt::Debug for RedmineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedmineClient")
            .field("base", &self.base.as_str())
            .field("api_key", &"**redacted**")
            .finish()
    }
}

impl RedmineClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        api_key: &Secret,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let base = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("redmine: url is not valid: {err}"),
        })?;
        if base.cannot_be_a_base() {
            return Err(ConnectorError::Permanent {
                reason: "redmine: url cannot be a base address".to_owned(),
            });
        }
        let mut api_key = HeaderValue::from_str(api_key.expose().trim()).map_err(|_| {
            ConnectorError::Permanent {
                reason: "redmine: the API key contains characters not allowed in a header"
                    .to_owned(),
            }
        })?;
        api_key.set_sensitive(true);
        let http = crate::http_client("redmine", timeout)?;
        Ok(RedmineClient {
            http,
            base,
            api_key,
        })
    }

    /// `<base>/<segments…>`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .header(API_KEY_HEADER, self.api_key.clone())
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
            Err(classify(status, retry_after.as_ref(), what, &body))
        }
    }

    /// Sends, classifies and reads the 2xx body as `T` (a wrong shape is permanent).
    async fn send_as<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let body = self.send(request, what).await?;
        serde_json::from_str(&body).map_err(|_| unexpected(what, &body))
    }

    /// `GET /users/current.json`: the id of the API key's user. A wrong key is 401 here (other
    /// reads of a public project answer a wrong key as the anonymous user), and 403 says the
    /// REST API is disabled.
    pub(crate) async fn current_user(&self) -> Result<u64, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            user: Named,
        }
        let what = "redmine: reading the API key's user";
        let request = self.request(Method::GET, &["users", "current.json"]);
        let (status, retry_after, body) = self.exchange(request, what).await?;
        if status == StatusCode::FORBIDDEN {
            // Every user may read itself: 403 here is Redmine's answer with the API off.
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: Redmine refused API access (HTTP 403): enable the REST API in \
                     Redmine (Administration → Settings → API → Enable REST web service)"
                ),
            });
        }
        if !status.is_success() {
            return Err(classify(status, retry_after.as_ref(), what, &body));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        match answer.user.id {
            0 => Err(unexpected(what, "user without an id")),
            id => Ok(id),
        }
    }

    /// `GET /projects/{project}.json?include=trackers,enabled_modules`; a 404 says the project
    /// is missing (or hidden from the key's user) in words an admin understands.
    pub(crate) async fn project(&self, project: &str) -> Result<Project, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            project: Project,
        }
        let what = "redmine: reading the project";
        let request = self
            .request(Method::GET, &["projects", &format!("{project}.json")])
            .query(&[("include", "trackers,enabled_modules")]);
        let (status, retry_after, body) = self.exchange(request, what).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: there is no project `{project}` in Redmine, or the API key's user \
                     cannot see it (HTTP 404): check project (the identifier from the project's \
                     Settings) and the user's membership"
                ),
            });
        }
        if !status.is_success() {
            return Err(classify(status, retry_after.as_ref(), what, &body));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        Ok(answer.project)
    }

    /// `GET /issues/{id}.json`, with its journals when asked; `None` when Redmine answers 404
    /// (deleted, or not visible to the key's user).
    pub(crate) async fn issue(
        &self,
        id: u64,
        journals: bool,
    ) -> Result<Option<Issue>, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            issue: Issue,
        }
        let what = "redmine: reading the issue";
        let mut request = self.request(Method::GET, &["issues", &format!("{id}.json")]);
        if journals {
            request = request.query(&[("include", "journals")]);
        }
        let (status, retry_after, body) = self.exchange(request, what).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(classify(status, retry_after.as_ref(), what, &body));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        if answer.issue.id == 0 {
            return Err(unexpected(what, &body));
        }
        Ok(Some(answer.issue))
    }

    /// `GET /issues.json?project_id=…&status_id=*&subject=~<term>&sort=id:desc`: the project's
    /// issues (open or closed) whose subject contains `term`, newest first, at most [`PAGE`].
    pub(crate) async fn issues_with_subject(
        &self,
        project: &str,
        term: &str,
    ) -> Result<Vec<Issue>, ConnectorError> {
        let what = "redmine: searching the conversation's issues";
        let subject = format!("~{term}");
        let limit = PAGE.to_string();
        let page: IssuePage = self
            .send_as(
                self.request(Method::GET, &["issues.json"]).query(&[
                    ("project_id", project),
                    ("status_id", "*"),
                    ("subject", subject.as_str()),
                    ("sort", "id:desc"),
                    ("limit", limit.as_str()),
                ]),
                what,
            )
            .await?;
        Ok(page.issues)
    }

    /// `GET /issues.json?project_id=…&status_id=*&updated_on=>=<since>&sort=id`: one page (from
    /// `offset`) of the project's issues changed at or after `since`, by issue number (stable
    /// while issues change during the pagination). `since: None` lists the most recently
    /// changed issues first instead.
    pub(crate) async fn issues_updated(
        &self,
        project: &str,
        since: Option<DateTime<Utc>>,
        offset: usize,
        limit: usize,
    ) -> Result<IssuePage, ConnectorError> {
        let what = "redmine: listing changed issues";
        let offset = offset.to_string();
        let limit = limit.to_string();
        let mut query = vec![
            ("project_id", project.to_owned()),
            ("status_id", "*".to_owned()),
            ("offset", offset),
            ("limit", limit),
        ];
        match since {
            Some(since) => {
                query.push(("updated_on", format!(">={}", timestamp(since))));
                query.push(("sort", "id".to_owned()));
            }
            None => query.push(("sort", "updated_on:desc,id:desc".to_owned())),
        }
        self.send_as(
            self.request(Method::GET, &["issues.json"]).query(&query),
            what,
        )
        .await
    }

    /// `GET /issue_statuses.json`: the id of the first status that is not closed.
    pub(crate) async fn first_open_status(&self) -> Result<u64, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            issue_statuses: Vec<Status>,
        }
        let what = "redmine: reading the issue statuses";
        let answer: Answer = self
            .send_as(self.request(Method::GET, &["issue_statuses.json"]), what)
            .await?;
        answer
            .issue_statuses
            .iter()
            .find(|status| !status.is_closed && status.id != 0)
            .map(|status| status.id)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!("{what}: Redmine has no open status to reopen an issue with"),
            })
    }

    /// `GET /enumerations/issue_priorities.json`: the issue priorities, lowest first.
    pub(crate) async fn priorities(&self) -> Result<Vec<Enumeration>, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            issue_priorities: Vec<Enumeration>,
        }
        let what = "redmine: routing: reading the issue priorities";
        let answer: Answer = self
            .send_as(
                self.request(Method::GET, &["enumerations", "issue_priorities.json"]),
                what,
            )
            .await?;
        Ok(answer.issue_priorities)
    }

    /// `GET /projects/{project}/issue_categories.json`: the project's issue categories.
    pub(crate) async fn categories(
        &self,
        project: &str,
    ) -> Result<Vec<Enumeration>, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            issue_categories: Vec<Enumeration>,
        }
        let what = "redmine: routing: reading the issue categories";
        let answer: Answer = self
            .send_as(
                self.request(Method::GET, &["projects", project, "issue_categories.json"]),
                what,
            )
            .await?;
        Ok(answer.issue_categories)
    }

    /// `GET /users.json?name=<login>` (administrators only): the id of the active user whose
    /// login (or e-mail address) is exactly `login`.
    pub(crate) async fn user_with_login(&self, login: &str) -> Result<Option<u64>, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            users: Vec<User>,
        }
        #[derive(Deserialize)]
        struct User {
            id: u64,
            #[serde(default)]
            login: String,
            #[serde(default)]
            mail: String,
        }
        let what = "redmine: routing: looking up the assignee";
        let request = self
            .request(Method::GET, &["users.json"])
            .query(&[("name", login)]);
        let (status, retry_after, body) = self.exchange(request, what).await?;
        if status == StatusCode::FORBIDDEN {
            return Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: only an administrator's API key may look up a user by login                      (HTTP 403): give the assignee's numeric user id instead of `{login}`"
                ),
            });
        }
        if !status.is_success() {
            return Err(classify(status, retry_after.as_ref(), what, &body));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        Ok(answer
            .users
            .iter()
            .find(|user| {
                user.login.eq_ignore_ascii_case(login) || user.mail.eq_ignore_ascii_case(login)
            })
            .map(|user| user.id)
            .filter(|id| *id != 0))
    }

    /// `POST /issues.json` with the JSON body; returns the new issue's id.
    pub(crate) async fn create_issue(&self, body: &Value) -> Result<u64, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            issue: Named,
        }
        let what = "redmine: creating the issue";
        let answer: Answer = self
            .send_as(
                self.request(Method::POST, &["issues.json"]).json(body),
                what,
            )
            .await?;
        match answer.issue.id {
            0 => Err(unexpected(what, "issue without an id")),
            id => Ok(id),
        }
    }

    /// `PUT /issues/{id}.json` with the JSON body (a note, a status, uploads).
    pub(crate) async fn update_issue(
        &self,
        id: u64,
        body: &Value,
        what: &str,
    ) -> Result<(), ConnectorError> {
        self.send(
            self.request(Method::PUT, &["issues", &format!("{id}.json")])
                .json(body),
            what,
        )
        .await
        .map(drop)
    }

    /// `POST /uploads.json?filename=…` with the bytes: the token to attach them with, or why
    /// Redmine refused this file (422, or 413 from a proxy in front of it).
    pub(crate) async fn upload(
        &self,
        filename: &str,
        data: &[u8],
    ) -> Result<Upload, ConnectorError> {
        #[derive(Deserialize)]
        struct Answer {
            upload: Token,
        }
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let what = "redmine: uploading an attachment";
        let request = self
            .request(Method::POST, &["uploads.json"])
            .query(&[("filename", filename)])
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.to_vec());
        let (status, retry_after, body) = self.exchange(request, what).await?;
        match status {
            StatusCode::UNPROCESSABLE_ENTITY => {
                return Ok(Upload::Refused(
                    error_messages(&body).unwrap_or_else(|| "HTTP 422".to_owned()),
                ))
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                return Ok(Upload::Refused(
                    "the file is too large (HTTP 413)".to_owned(),
                ))
            }
            status if !status.is_success() => {
                return Err(classify(status, retry_after.as_ref(), what, &body))
            }
            _ => {}
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|_| unexpected(what, &body))?;
        if answer.upload.token.is_empty() {
            return Err(unexpected(what, &body));
        }
        Ok(Upload::Stored(answer.upload.token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(url: &str) -> RedmineClient {
        RedmineClient::new(url, &Secret::new("k"), Duration::from_secs(1)).expect("builds")
    }

    #[test]
    fn appends_paths_to_the_base_address() {
        for (url, expected) in [
            ("http://h:3300", "http://h:3300/issues/1.json"),
            ("http://h:3300/", "http://h:3300/issues/1.json"),
            ("https://h/redmine", "https://h/redmine/issues/1.json"),
            ("https://h/redmine/", "https://h/redmine/issues/1.json"),
        ] {
            assert_eq!(client(url).url(&["issues", "1.json"]).as_str(), expected);
        }
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(
            client("http://h").url(&["projects", "a/b c.json"]).as_str(),
            "http://h/projects/a%2Fb%20c.json"
        );
    }

    #[test]
    fn debug_hides_the_api_key() {
        let client = RedmineClient::new(
            "http://h",
            &Secret::new("s3cr3t-key"),
            Duration::from_secs(1),
        )
        .expect("builds");
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }

    #[test]
    fn reads_redmine_issues_with_nulls_and_journals() {
        let issue: Issue = serde_json::from_value(json!({
            "id": 4, "subject": "WhatsApp: Aisha (+96890000001)",
            "status": {"id": 5, "name": "Closed", "is_closed": true},
            "description": null, "closed_on": "2026-11-27T06:16:52Z",
            "updated_on": "2026-11-27T06:16:53Z",
            "journals": [{"id": 9, "user": {"id": 5, "name": "Alex Agent"}, "notes": null,
                          "created_on": "2026-11-27T06:16:52Z", "private_notes": false,
                          "details": []}]
        }))
        .expect("parses");
        assert_eq!(issue.description, "");
        assert!(issue.status.is_closed);
        assert_eq!(issue.journals[0].notes, "");
        assert_eq!(issue.journals[0].user, Some(Named { id: 5 }));
        assert_eq!(
            issue.closed_on.map(timestamp).as_deref(),
            Some("2026-11-27T06:16:52Z")
        );
    }

    #[test]
    fn explains_401_and_422() {
        let err = classify(StatusCode::UNAUTHORIZED, None, "redmine: x", "");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("check api_key"), "{err}");
        let err = classify(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            "redmine: x",
            r#"{"errors":["Subject cannot be blank","Tracker is not included in the list"]}"#,
        );
        assert_eq!(
            err,
            ConnectorError::Permanent {
                reason: "redmine: x: Redmine refused the data (HTTP 422): Subject cannot be \
                         blank; Tracker is not included in the list"
                    .into()
            }
        );
        assert!(classify(StatusCode::BAD_GATEWAY, None, "x", "").is_retryable());
    }
}
