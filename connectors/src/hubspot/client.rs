//! The HubSpot API calls the connector makes, each classified where it happens.
//!
//! Every answer goes through [`HubspotClient::exchange`] and [`classify`]: transport failures
//! via [`ConnectorError::from_transport`]; 401 and 403 as permanent with what to fix; 429 by
//! HubSpot's `policyName` (the daily limit waits for the next full hour, see
//! [`daily_limit_wait`]; the ten-secondly one honours `Retry-After`, else
//! `X-HubSpot-RateLimit-Interval-Milliseconds`); everything else via
//! [`ConnectorError::from_status`]. A 207 from a batch call is classified by the categories of
//! its errors, and a 2xx whose body is not what HubSpot documents is permanent.
//!
//! No URL the client builds carries a phone number (upserts and searches send them in bodies),
//! and transport errors are described without their URL anyway.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Timelike as _, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::{json, Value};

use crate::{ConnectorError, Secret};

/// The scopes a private app needs for what the connector does.
pub(crate) const SCOPES: &str =
    "crm.objects.contacts.read, crm.objects.contacts.write (and crm.objects.deals.read for deal \
     webhooks)";

/// Fallback wait after a ten-secondly 429 without `Retry-After` or interval header.
const SECONDLY_WAIT: Duration = Duration::from_secs(10);

/// Largest batch HubSpot accepts in one batch call.
pub(crate) const BATCH_LIMIT: usize = 100;

/// Page size of the v4 association list (HubSpot's maximum).
const ASSOCIATION_PAGE: &str = "500";

/// Guard against a paging cursor that never ends (500 × 2000 = one million entries).
const MAX_PAGES: usize = 2000;

/// One HTTP answer: status, the headers that classify it, the body.
pub(crate) struct Answer {
    status: StatusCode,
    retry_after: Option<HeaderValue>,
    interval_ms: Option<u64>,
    body: String,
}

/// A thin HubSpot client: one method per call.
pub(crate) struct HubspotClient {
    http: reqwest::Client,
    /// The API's base address (path `/` or a proxy prefix).
    base: Url,
    /// Segments of `objects_path`.
    objects: Vec<String>,
    /// Segments of `associations_path`.
    associations: Vec<String>,
    /// `Bearer <token>`, marked sensitive; never printed.
    authorization: HeaderValue,
}

impl fmt::Debug for HubspotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubspotClient")
            .field("base", &self.base.as_str())
            .field("objects", &self.objects.join("/"))
            .field("associations", &self.associations.join("/"))
            .field("authorization", &"**redacted**")
            .finish()
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .map(str::trim)
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
        .collect()
}

/// HubSpot ids: numbers in some answers (v4 `toObjectId`), strings in others.
pub(crate) fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

fn unexpected(what: &str, body: &str) -> ConnectorError {
    ConnectorError::Permanent {
        reason: format!("{what}: unexpected answer from HubSpot: {}", snippet(body)),
    }
}

/// HubSpot's own `message` of an error body, when it has one.
fn hubspot_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?.as_str()?.trim();
    (!message.is_empty()).then(|| message.chars().take(200).collect())
}

/// The scope names a 403 body lists (`errors[].context.*Scopes*`), deduplicated.
fn missing_scopes(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    let mut scopes: Vec<String> = Vec::new();
    for error in value["errors"].as_array().into_iter().flatten() {
        let Some(context) = error.get("context").and_then(Value::as_object) else {
            continue;
        };
        for (key, list) in context {
            if !key.to_ascii_lowercase().contains("scope") {
                continue;
            }
            for scope in list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_owned());
                }
            }
        }
    }
    scopes
}

/// How long to wait after HubSpot's **daily** limit: until the next full UTC hour that is at
/// least an hour away (1 to 2 hours).
///
/// HubSpot resets the daily limit at midnight in the *account's* time zone, which the
/// connector does not know. Every time zone's midnight falls on a full or half UTC hour, so
/// retrying on full hours finds the reset within an hour (half an hour late for :30 zones),
/// while costing at most ~24 attempts a day — well inside the queue's default budget (50
/// attempts, 72 h). Waiting for midnight UTC instead would be up to a day late for accounts
/// west of UTC.
pub fn daily_limit_wait(now: DateTime<Utc>) -> Duration {
    let earliest = now + chrono::Duration::hours(1);
    let floor = earliest
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(earliest);
    let at = if floor == earliest {
        earliest
    } else {
        floor + chrono::Duration::hours(1)
    };
    (at - now).to_std().unwrap_or(Duration::from_secs(3600))
}

/// Classifies a non-2xx answer (see the module docs).
pub(crate) fn classify(answer: &Answer, what: &str, now: DateTime<Utc>) -> ConnectorError {
    let body = &answer.body;
    match answer.status {
        StatusCode::UNAUTHORIZED => ConnectorError::Permanent {
            reason: format!(
                "{what}: HTTP 401: the HubSpot token is wrong or expired (a private app \
                 token, Settings → Integrations → Private apps){}",
                hubspot_message(body)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        },
        StatusCode::FORBIDDEN => {
            let named = missing_scopes(body);
            let scopes = if named.is_empty() {
                SCOPES.to_owned()
            } else {
                named.join(", ")
            };
            ConnectorError::Permanent {
                reason: format!(
                    "{what}: HTTP 403: the HubSpot private app lacks a scope; it needs \
                     {scopes}{}",
                    hubspot_message(body)
                        .map(|m| format!(" (HubSpot: {m})"))
                        .unwrap_or_default()
                ),
            }
        }
        StatusCode::TOO_MANY_REQUESTS => {
            let policy = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("policyName")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let header_wait = answer
                .retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            if policy.eq_ignore_ascii_case("DAILY") {
                let wait = daily_limit_wait(now).max(header_wait.unwrap_or_default());
                ConnectorError::Retryable {
                    retry_after: Some(wait),
                    reason: format!(
                        "{what}: HTTP 429: the HubSpot account's daily API limit is used up; \
                         retrying in {} min",
                        wait.as_secs() / 60
                    ),
                }
            } else {
                let wait = header_wait
                    .or(answer.interval_ms.map(Duration::from_millis))
                    .unwrap_or(SECONDLY_WAIT);
                ConnectorError::Retryable {
                    retry_after: Some(wait),
                    reason: format!("{what}: HTTP 429 Too Many Requests: {}", snippet(body)),
                }
            }
        }
        status => ConnectorError::from_status(status, answer.retry_after.as_ref(), what, body),
    }
}

/// Classifies the errors of a 207 batch answer: retryable when any error is (rate limits,
/// HubSpot-internal), permanent otherwise. `written` of `total` inputs succeeded.
pub(crate) fn batch_failure(
    what: &str,
    value: &Value,
    written: usize,
    total: usize,
) -> ConnectorError {
    let errors: Vec<&Value> = value["errors"].as_array().into_iter().flatten().collect();
    let retryable = errors.iter().any(|error| {
        let category = error["category"].as_str().unwrap_or_default();
        matches!(
            category,
            "RATE_LIMITS" | "RATE_LIMIT" | "INTERNAL_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT"
        )
    });
    let first = errors
        .first()
        .map(|error| {
            format!(
                "{}: {}",
                error["category"].as_str().unwrap_or("error"),
                error["message"].as_str().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no error details".to_owned());
    let reason = format!(
        "{what}: HTTP 207: {written} of {total} written, {} failed: {}",
        errors.len().max(total.saturating_sub(written)),
        snippet(&first)
    );
    if retryable {
        ConnectorError::Retryable {
            retry_after: None,
            reason,
        }
    } else {
        ConnectorError::Permanent { reason }
    }
}

/// An association type HubSpot defines between two object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AssociationType {
    /// `HUBSPOT_DEFINED`, usually.
    pub category: &'static str,
    /// The type id, e.g. 81 for communication → contact (looked up, never assumed).
    pub type_id: u64,
}

impl HubspotClient {
    /// Builds the HTTP client (no network).
    pub(crate) fn new(
        url: &str,
        objects_path: &str,
        associations_path: &str,
        token: &Secret,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let base = Url::parse(url.trim()).map_err(|err| ConnectorError::Permanent {
            reason: format!("hubspot: url is not valid: {err}"),
        })?;
        if base.cannot_be_a_base() {
            return Err(ConnectorError::Permanent {
                reason: "hubspot: url cannot be a base address".to_owned(),
            });
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose().trim()))
            .map_err(|_| ConnectorError::Permanent {
                reason: "hubspot: the token contains characters not allowed in a header".to_owned(),
            })?;
        authorization.set_sensitive(true);
        let http = crate::http_client("hubspot", timeout)?;
        Ok(HubspotClient {
            http,
            base,
            objects: segments(objects_path),
            associations: segments(associations_path),
            authorization,
        })
    }

    /// `<base>/<prefix…>/<segments…>`, each segment percent-encoded.
    fn url(&self, prefix: &[String], tail: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(prefix).extend(tail);
        }
        url
    }

    /// `<objects_path>/<segments…>`.
    pub(crate) fn objects_url(&self, tail: &[&str]) -> Url {
        self.url(&self.objects, tail)
    }

    /// `<associations_path>/<segments…>`.
    pub(crate) fn associations_url(&self, tail: &[&str]) -> Url {
        self.url(&self.associations, tail)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
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
        let headers: &HeaderMap = response.headers();
        let retry_after = headers.get(RETRY_AFTER).cloned();
        let interval_ms = headers
            .get("x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response
            .text()
            .await
            .map_err(|err| ConnectorError::from_transport(&err, what))?;
        Ok(Answer {
            status,
            retry_after,
            interval_ms,
            body,
        })
    }

    /// Sends and classifies: the status and parsed body of a 2xx answer, else the error.
    async fn send_json(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let answer = self.exchange(request, what).await?;
        if !answer.status.is_success() {
            return Err(classify(&answer, what, Utc::now()));
        }
        if answer.body.trim().is_empty() {
            return Ok((answer.status, Value::Null));
        }
        let value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        Ok((answer.status, value))
    }

    /// `GET <objects>/contacts?limit=1`: proves address, token and the contacts read scope.
    pub(crate) async fn read_one_contact(&self) -> Result<(), ConnectorError> {
        let what = "hubspot: reading contacts";
        let (_, value) = self
            .send_json(
                self.request(Method::GET, self.objects_url(&["contacts"]))
                    .query(&[("limit", "1"), ("archived", "false")]),
                what,
            )
            .await?;
        match value.get("results") {
            Some(Value::Array(_)) => Ok(()),
            _ => Err(unexpected(what, &value.to_string())),
        }
    }

    /// `GET <associations>/associations/{from}/{to}/labels`: the HubSpot-defined default
    /// (unlabelled) association type, else the first HubSpot-defined one.
    pub(crate) async fn association_type(
        &self,
        from: &str,
        to: &str,
    ) -> Result<AssociationType, ConnectorError> {
        let what = "hubspot: looking up the association type";
        let (_, value) = self
            .send_json(
                self.request(
                    Method::GET,
                    self.associations_url(&["associations", from, to, "labels"]),
                ),
                what,
            )
            .await?;
        let Some(results) = value.get("results").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        let hubspot_defined =
            |label: &&Value| label["category"].as_str() == Some("HUBSPOT_DEFINED");
        let unlabelled = |label: &&Value| {
            label
                .get("label")
                .is_none_or(|l| l.is_null() || l.as_str().is_some_and(str::is_empty))
        };
        let chosen = results
            .iter()
            .filter(hubspot_defined)
            .find(unlabelled)
            .or_else(|| results.iter().find(hubspot_defined));
        match chosen.and_then(|label| label["typeId"].as_u64()) {
            Some(type_id) => Ok(AssociationType {
                category: "HUBSPOT_DEFINED",
                type_id,
            }),
            None => Err(ConnectorError::Permanent {
                reason: format!(
                    "{what}: HubSpot defines no association from {from} to {to}: {}",
                    snippet(&value.to_string())
                ),
            }),
        }
    }

    /// `POST <objects>/contacts/batch/upsert` with one input: the contact's id and whether
    /// HubSpot created it.
    pub(crate) async fn upsert_contact(
        &self,
        id_property: &str,
        id: &str,
        properties: Value,
    ) -> Result<(String, bool), ConnectorError> {
        let what = "hubspot: upserting the contact";
        let body = json!({
            "inputs": [{ "idProperty": id_property, "id": id, "properties": properties }]
        });
        let (status, value) = self
            .send_json(
                self.request(
                    Method::POST,
                    self.objects_url(&["contacts", "batch", "upsert"]),
                )
                .json(&body),
                what,
            )
            .await?;
        let first = value["results"].as_array().and_then(|r| r.first());
        match first.and_then(|result| result.get("id")).and_then(id_of) {
            Some(contact) if status != StatusCode::MULTI_STATUS => {
                let created = first
                    .and_then(|result| result.get("new"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Ok((contact, created))
            }
            found => {
                if status == StatusCode::MULTI_STATUS || value.get("errors").is_some() {
                    Err(batch_failure(what, &value, usize::from(found.is_some()), 1))
                } else {
                    Err(unexpected(what, &value.to_string()))
                }
            }
        }
    }

    /// `PATCH <objects>/{type}/{id}` with the given properties.
    pub(crate) async fn update(
        &self,
        object_type: &str,
        id: &str,
        properties: Value,
        what: &str,
    ) -> Result<(), ConnectorError> {
        self.send_json(
            self.request(Method::PATCH, self.objects_url(&[object_type, id]))
                .json(&json!({ "properties": properties })),
            what,
        )
        .await
        .map(drop)
    }

    /// `POST <objects>/{type}/batch/create` with at most [`BATCH_LIMIT`] inputs.
    pub(crate) async fn batch_create(
        &self,
        object_type: &str,
        inputs: Vec<Value>,
    ) -> Result<(), ConnectorError> {
        let what = match object_type {
            "notes" => "hubspot: creating notes",
            _ => "hubspot: creating communications",
        };
        let total = inputs.len();
        let (status, value) = self
            .send_json(
                self.request(
                    Method::POST,
                    self.objects_url(&[object_type, "batch", "create"]),
                )
                .json(&json!({ "inputs": inputs })),
                what,
            )
            .await?;
        let written = value["results"].as_array().map_or(0, Vec::len);
        if status == StatusCode::MULTI_STATUS || value["numErrors"].as_u64().unwrap_or(0) > 0 {
            return Err(batch_failure(what, &value, written, total));
        }
        if written != total {
            return Err(unexpected(what, &value.to_string()));
        }
        Ok(())
    }

    /// `GET <associations>/objects/{from}/{id}/associations/{to}`, every page: the ids of
    /// the records of type `to` associated with the record.
    pub(crate) async fn associated_ids(
        &self,
        from: &str,
        id: &str,
        to: &str,
    ) -> Result<Vec<u64>, ConnectorError> {
        let what = "hubspot: listing the contact's entries";
        let url = self.associations_url(&["objects", from, id, "associations", to]);
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = self
                .request(Method::GET, url.clone())
                .query(&[("limit", ASSOCIATION_PAGE)]);
            if let Some(cursor) = &after {
                request = request.query(&[("after", cursor.as_str())]);
            }
            let (_, value) = self.send_json(request, what).await?;
            let Some(results) = value.get("results").and_then(Value::as_array) else {
                return Err(unexpected(what, &value.to_string()));
            };
            ids.extend(
                results
                    .iter()
                    .filter_map(|r| r.get("toObjectId").and_then(id_of))
                    .filter_map(|id| id.parse::<u64>().ok()),
            );
            let next = value["paging"]["next"]["after"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    value["paging"]["next"]["after"]
                        .as_u64()
                        .map(|n| n.to_string())
                });
            match next {
                Some(cursor) if Some(&cursor) != after.as_ref() && !results.is_empty() => {
                    after = Some(cursor)
                }
                _ => return Ok(ids),
            }
        }
        Err(ConnectorError::Permanent {
            reason: format!("{what}: more than {MAX_PAGES} pages; giving up"),
        })
    }

    /// `POST <objects>/{type}/batch/read` for at most [`BATCH_LIMIT`] ids: `(id, properties)`
    /// of those that exist (a 207 for missing ones is fine).
    pub(crate) async fn batch_read(
        &self,
        object_type: &str,
        ids: &[String],
        properties: &[&str],
        what: &str,
    ) -> Result<Vec<(String, Value)>, ConnectorError> {
        let inputs: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
        let (_, value) = self
            .send_json(
                self.request(
                    Method::POST,
                    self.objects_url(&[object_type, "batch", "read"]),
                )
                .json(&json!({ "properties": properties, "inputs": inputs })),
                what,
            )
            .await?;
        let Some(results) = value.get("results").and_then(Value::as_array) else {
            return Err(unexpected(what, &value.to_string()));
        };
        Ok(results
            .iter()
            .filter_map(|r| Some((r.get("id").and_then(id_of)?, r["properties"].clone())))
            .collect())
    }

    /// `GET <objects>/{type}/{id}?properties=…&associations=contacts`; `None` on 404 (deleted,
    /// merged away, or never there).
    pub(crate) async fn object_with_contacts(
        &self,
        object_type: &str,
        id: &str,
        properties: &[String],
    ) -> Result<Option<Value>, ConnectorError> {
        let what = "hubspot: reading the object a webhook names";
        let mut request = self.request(Method::GET, self.objects_url(&[object_type, id]));
        if !properties.is_empty() {
            request = request.query(&[("properties", properties.join(","))]);
        }
        if object_type != "contacts" {
            request = request.query(&[("associations", "contacts")]);
        }
        let answer = self.exchange(request, what).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(classify(&answer, what, Utc::now()));
        }
        let value: Value =
            serde_json::from_str(&answer.body).map_err(|_| unexpected(what, &answer.body))?;
        if !value.get("properties").is_some_and(Value::is_object) {
            return Err(unexpected(what, &answer.body));
        }
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn client(url: &str, objects: &str) -> HubspotClient {
        HubspotClient::new(
            url,
            objects,
            "/crm/v4",
            &Secret::new("pat-s3cret"),
            Duration::from_secs(1),
        )
        .expect("builds")
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            retry_after: None,
            interval_ms: None,
            body: body.to_owned(),
        }
    }

    #[test]
    fn joins_prefixes_and_encodes_segments() {
        let c = client("https://api.hubapi.com", "/crm/v3/objects/");
        assert_eq!(
            c.objects_url(&["contacts", "batch", "upsert"]).as_str(),
            "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
        );
        assert_eq!(
            c.associations_url(&["associations", "communications", "contacts", "labels"])
                .as_str(),
            "https://api.hubapi.com/crm/v4/associations/communications/contacts/labels"
        );
        let c = client("http://proxy/hs/", "/crm/objects/2026-03");
        assert_eq!(
            c.objects_url(&["deals", "1/2"]).as_str(),
            "http://proxy/hs/crm/objects/2026-03/deals/1%2F2"
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let debug = format!("{:?}", client("https://api.hubapi.com", "/crm/v3/objects"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn daily_limit_waits_until_a_full_hour_at_least_an_hour_away() {
        let at = |h, m, s| {
            Utc.with_ymd_and_hms(2026, 11, 27, h, m, s)
                .single()
                .expect("time")
        };
        assert_eq!(daily_limit_wait(at(10, 0, 0)), Duration::from_secs(3600));
        assert_eq!(
            daily_limit_wait(at(10, 15, 30)),
            Duration::from_secs(3600 + 44 * 60 + 30)
        );
        assert_eq!(daily_limit_wait(at(23, 59, 59)), Duration::from_secs(3601));
    }

    #[test]
    fn classifies_401_and_403_with_what_to_fix() {
        let now = Utc::now();
        let err = classify(
            &answer(
                401,
                r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#,
            ),
            "hubspot: x",
            now,
        );
        assert!(!err.is_retryable());
        assert!(
            err.to_string().contains("token is wrong or expired"),
            "{err}"
        );
        let err = classify(
            &answer(
                403,
                r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.deals.read"]}}],"category":"MISSING_SCOPES"}"#,
            ),
            "hubspot: x",
            now,
        );
        assert!(!err.is_retryable());
        assert!(
            err.to_string().contains("needs crm.objects.deals.read"),
            "{err}"
        );
        let err = classify(&answer(403, "forbidden"), "hubspot: x", now);
        assert!(
            err.to_string().contains("crm.objects.contacts.write"),
            "{err}"
        );
    }

    #[test]
    fn a_207_is_retryable_only_for_rate_limits_and_internal_errors() {
        let value = json!({"status": "COMPLETE", "results": [], "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid"}]});
        let err = batch_failure("hubspot: x", &value, 0, 1);
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("0 of 1 written"), "{err}");
        let value = json!({"errors": [{"category": "RATE_LIMITS", "message": "slow down"}]});
        assert!(batch_failure("hubspot: x", &value, 1, 2).is_retryable());
    }
}
