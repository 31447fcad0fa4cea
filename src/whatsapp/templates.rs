//! The template catalog as Meta holds it: `GET /{waba-id}/message_templates`, every page.
//!
//! Each template is reduced to what sending needs: name, language, category, status, quality,
//! and the parameters its header, body and buttons expect (counted from the `{{1}}` /
//! `{{name}}` placeholders, a media header counting as one parameter).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use wabridge_connectors::Secret;

use super::graph::{classify_response, GraphError};

/// One template of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Meta's template id.
    pub id: String,
    /// Template name.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION` (verbatim; new values kept).
    pub category: String,
    /// `APPROVED`, `PAUSED`, `REJECTED`, ... (verbatim).
    pub status: String,
    /// Quality score when Meta reports one (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    pub quality: Option<String>,
    /// `POSITIONAL` or `NAMED`.
    pub parameter_format: String,
    /// Parameters the header expects (0 or 1: one text placeholder or one media object).
    pub header_params: usize,
    /// Parameters the body expects.
    pub body_params: usize,
    /// Parameters each button expects, by button index (URL buttons with a placeholder: 1).
    pub button_params: Vec<usize>,
    /// The raw components, for display and later checks.
    pub components: serde_json::Value,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<RawTemplate>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct RawTemplate {
    id: String,
    name: String,
    language: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    quality_score: Option<QualityScore>,
    #[serde(default)]
    parameter_format: Option<String>,
    #[serde(default)]
    components: serde_json::Value,
}

#[derive(Deserialize)]
struct QualityScore {
    #[serde(default)]
    score: Option<String>,
}

/// Distinct `{{…}}` placeholders in a text.
fn placeholders(text: &str) -> usize {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() {
            names.insert(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    names.len()
}

impl From<&Template> for crate::mapping::CatalogTemplate {
    fn from(t: &Template) -> Self {
        crate::mapping::CatalogTemplate {
            name: t.name.clone(),
            language: t.language.clone(),
            body_params: t.body_params,
            header_params: t.header_params,
            button_params: t.button_params.clone(),
        }
    }
}

impl Template {
    /// What the policy gate needs to know about this template.
    pub fn info(&self) -> crate::policy::TemplateInfo {
        crate::policy::TemplateInfo {
            name: self.name.clone(),
            language: self.language.clone(),
            category: crate::policy::Category::from(self.category.as_str()),
            status: crate::policy::TemplateStatus::from(self.status.as_str()),
            body_params: self.body_params,
            header_params: self.header_params,
            button_params: self.button_params.clone(),
        }
    }

    fn from_raw(raw: RawTemplate) -> Template {
        let mut header_params = 0;
        let mut body_params = 0;
        let mut button_params = Vec::new();
        for component in raw.components.as_array().into_iter().flatten() {
            let kind = component["type"]
                .as_str()
                .unwrap_or("")
                .to_ascii_uppercase();
            let text = component["text"].as_str().unwrap_or("");
            match kind.as_str() {
                "HEADER" => {
                    let format = component["format"].as_str().unwrap_or("TEXT");
                    header_params = if format.eq_ignore_ascii_case("TEXT") {
                        placeholders(text)
                    } else {
                        // IMAGE, VIDEO, DOCUMENT, LOCATION headers take one parameter.
                        1
                    };
                }
                "BODY" => body_params = placeholders(text),
                "BUTTONS" => {
                    for button in component["buttons"].as_array().into_iter().flatten() {
                        let url = button["url"].as_str().unwrap_or("");
                        button_params.push(placeholders(url));
                    }
                }
                _ => {}
            }
        }
        Template {
            id: raw.id,
            name: raw.name,
            language: raw.language,
            category: raw.category,
            status: raw.status,
            quality: raw.quality_score.and_then(|q| q.score),
            parameter_format: raw
                .parameter_format
                .unwrap_or_else(|| "POSITIONAL".to_owned()),
            header_params,
            body_params,
            button_params,
            components: raw.components,
        }
    }
}

/// A change Meta announced by webhook, applied to the catalog entry it concerns.
impl Template {
    /// An entry for a template the catalog does not know yet (from a webhook): its parameter
    /// counts are unknown until the next sync.
    pub fn placeholder(id: Option<u64>, name: &str, language: &str) -> Template {
        Template {
            id: id.map(|i| i.to_string()).unwrap_or_default(),
            name: name.to_owned(),
            language: language.to_owned(),
            category: String::new(),
            status: String::new(),
            quality: None,
            parameter_format: "POSITIONAL".to_owned(),
            header_params: 0,
            body_params: 0,
            button_params: Vec::new(),
            components: serde_json::Value::Null,
        }
    }

    /// Applies a `message_template_status_update` event (`APPROVED`, `PAUSED`, ...).
    /// `REINSTATED` means approved again; `FLAGGED` is a quality warning, not a status.
    pub fn apply_status_event(&mut self, event: &str) {
        match event.to_ascii_uppercase().as_str() {
            "FLAGGED" => self.quality = Some("RED".to_owned()),
            "REINSTATED" => self.status = "APPROVED".to_owned(),
            other => self.status = other.to_owned(),
        }
    }
}

/// Reads the whole catalog of a WhatsApp Business Account, following `paging.next`.
pub async fn fetch_catalog(
    http: &reqwest::Client,
    graph_url: &str,
    api_version: &str,
    waba_id: &str,
    token: &Secret,
) -> Result<Vec<Template>, GraphError> {
    let mut url = format!(
        "{}/{api_version}/{waba_id}/message_templates?limit=100&fields=id,name,language,status,category,quality_score,parameter_format,components",
        graph_url.trim_end_matches('/')
    );
    let mut templates = Vec::new();
    // A bound on pages so a server that keeps answering `next` cannot loop us forever.
    for _ in 0..1000 {
        let response = http
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|err| GraphError::Retryable {
                reason: format!(
                    "template catalog: {}",
                    wabridge_connectors::transport_reason(&err)
                ),
                retry_after: None,
            })?;
        let status = response.status();
        let retry_after = super::graph::retry_after(response.headers());
        let body = response.text().await.map_err(|err| GraphError::Retryable {
            reason: format!(
                "template catalog: {}",
                wabridge_connectors::transport_reason(&err)
            ),
            retry_after: None,
        })?;
        if !status.is_success() {
            return Err(classify_response(status, retry_after, &body));
        }
        let page: Page = serde_json::from_str(&body).map_err(|err| GraphError::Permanent {
            reason: format!("template catalog is not the documented JSON: {err}"),
            code: None,
        })?;
        templates.extend(page.data.into_iter().map(Template::from_raw));
        match page.paging.and_then(|p| p.next) {
            Some(next) if !next.is_empty() => url = next,
            _ => return Ok(templates),
        }
    }
    Err(GraphError::Permanent {
        reason: "template catalog: more than 1000 pages".into(),
        code: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn order_confirmation() -> serde_json::Value {
        serde_json::json!({
            "id": "1001", "name": "order_confirmation", "language": "en_US",
            "status": "APPROVED", "category": "UTILITY",
            "quality_score": { "score": "GREEN" },
            "components": [
                { "type": "HEADER", "format": "TEXT", "text": "Order {{1}}" },
                { "type": "BODY", "text": "Hi {{1}}, your order {{2}} of {{3}} is confirmed. {{2}} ships soon." },
                { "type": "BUTTONS", "buttons": [
                    { "type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}" },
                    { "type": "QUICK_REPLY", "text": "Stop" }
                ]}
            ]
        })
    }

    #[tokio::test]
    async fn follows_every_page_and_counts_parameters() {
        let server = MockServer::start().await;
        let next = format!("{}/v23.0/555/message_templates?after=CURSOR2", server.uri());
        Mock::given(method("GET"))
            .and(path("/v23.0/555/message_templates"))
            .and(query_param("after", "CURSOR2"))
            .and(header("authorization", "Bearer tok"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": [{
                    "id": "1002", "name": "spring_sale", "language": "ar",
                    "status": "PAUSED", "category": "MARKETING", "parameter_format": "NAMED",
                    "components": [
                        { "type": "HEADER", "format": "IMAGE" },
                        { "type": "BODY", "text": "{{first_name}}, 20% off until {{date}}" }
                    ]
                }],
                "paging": { "cursors": { "before": "B", "after": "A" } }
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v23.0/555/message_templates"))
            .and(header("authorization", "Bearer tok"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": [order_confirmation()],
                "paging": { "cursors": { "before": "B", "after": "CURSOR2" }, "next": next }
            })))
            .mount(&server)
            .await;
        let templates = fetch_catalog(
            &reqwest::Client::new(),
            &server.uri(),
            "v23.0",
            "555",
            &Secret::new("tok"),
        )
        .await
        .expect("catalog");
        assert_eq!(templates.len(), 2);
        let first = &templates[0];
        assert_eq!(
            (
                first.name.as_str(),
                first.status.as_str(),
                first.quality.as_deref()
            ),
            ("order_confirmation", "APPROVED", Some("GREEN"))
        );
        assert_eq!((first.header_params, first.body_params), (1, 3));
        assert_eq!(first.button_params, vec![1, 0]);
        let info = first.info();
        assert_eq!(info.status, crate::policy::TemplateStatus::Approved);
        assert_eq!(info.category, crate::policy::Category::Utility);
        let second = &templates[1];
        assert_eq!(second.info().status, crate::policy::TemplateStatus::Paused);
        assert_eq!(second.parameter_format, "NAMED");
        assert_eq!((second.header_params, second.body_params), (1, 2));
    }

    #[tokio::test]
    async fn expired_token_is_permanent_and_names_code_190() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": { "message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463 }
            })))
            .mount(&server)
            .await;
        let err = fetch_catalog(
            &reqwest::Client::new(),
            &server.uri(),
            "v23.0",
            "555",
            &Secret::new("secret-token"),
        )
        .await
        .expect_err("401");
        assert!(matches!(
            err,
            GraphError::Permanent {
                code: Some(190),
                ..
            }
        ));
        assert!(!err.to_string().contains("secret-token"));
    }
}
