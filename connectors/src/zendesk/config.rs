//! `[connectors.<name>] kind = "zendesk"`: the Zendesk Support connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`ZendeskConfig::reopen_within_days`].
pub const DEFAULT_REOPEN_WITHIN_DAYS: u32 = 30;
/// Default for [`ZendeskConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default for [`ZendeskConfig::webhook_tolerance_secs`].
pub const DEFAULT_WEBHOOK_TOLERANCE_SECS: u64 = 300;
/// Default for [`ZendeskConfig::tags`].
pub const DEFAULT_TAGS: &[&str] = &["whatsapp"];
/// The ticket priorities Zendesk knows.
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

fn default_reopen_within_days() -> u32 {
    DEFAULT_REOPEN_WITHIN_DAYS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_webhook_tolerance_secs() -> u64 {
    DEFAULT_WEBHOOK_TOLERANCE_SECS
}
fn default_tags() -> Vec<String> {
    DEFAULT_TAGS.iter().map(|tag| (*tag).to_owned()).collect()
}

/// How the customer's WhatsApp messages appear in the ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerMessages {
    /// Public comments authored by the customer (the ticket's requester), like an e-mail
    /// reply from the customer would be. The default.
    #[default]
    Public,
    /// Internal notes written by the API user: agents see them, the Help Center does not.
    Private,
}

/// Zendesk Support over its REST API (`https://<subdomain>.zendesk.com/api/v2/…`).
///
/// ```toml
/// [connectors.zendesk]
/// kind = "zendesk"
/// subdomain = "acme"                    # or: url = "https://support.acme.com"
/// email = "whatsapp-bot@acme.com"       # an agent or admin
/// api_token = "…"                       # Admin Center → Apps and integrations → Zendesk API
/// # oauth_token = "…"                   # instead of email + api_token
/// group_id = 360001234567               # optional: the group new tickets go to
/// webhook_secret = "…"                  # the signing secret of the "agent replied" webhook
/// ```
///
/// The API user must be an agent (or admin) who can create users, create and update tickets
/// in `group_id`, and upload attachments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    /// The account's subdomain: `acme` for `https://acme.zendesk.com`. Give this or `url`.
    #[serde(default)]
    pub subdomain: Option<String>,
    /// The account's address when it is not `https://<subdomain>.zendesk.com` (a host-mapped
    /// domain), without `/api/v2`. `https` only (plain `http` only for `localhost`, for tests).
    #[serde(default)]
    pub url: Option<String>,
    /// The e-mail address of the agent the API token belongs to (with `api_token`). Sent as
    /// HTTP Basic `<email>/token:<api_token>`.
    #[serde(default)]
    pub email: Option<String>,
    /// A Zendesk API token (Admin Center → Apps and integrations → APIs → Zendesk API).
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// An OAuth access token, sent as `Authorization: Bearer …`, instead of `email` +
    /// `api_token`. Needs the scopes `read` and `write`.
    #[serde(default)]
    pub oauth_token: Option<Secret>,
    /// `public` (default): customer messages are public comments authored by the customer.
    /// `private`: they are internal notes by the API user.
    #[serde(default)]
    pub customer_messages: CustomerMessages,
    /// A message on a solved ticket reopens it if the ticket was last updated less than this
    /// many days ago; otherwise a new (follow-up) ticket is opened. 0 never reopens. Closed
    /// or deleted tickets always get a new ticket.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,
    /// The group new tickets are assigned to; Zendesk's routing decides when unset.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// The brand new tickets belong to (accounts with several brands); the default brand
    /// when unset.
    #[serde(default)]
    pub brand_id: Option<u64>,
    /// Priority of new tickets: `low`, `normal`, `high` or `urgent`; none when unset.
    #[serde(default)]
    pub priority: Option<String>,
    /// Tags set on new tickets (default `["whatsapp"]`); use them in views and in the
    /// condition of the "agent replied" trigger.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// Timeout of one HTTP call to Zendesk, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The signing secret of the webhook that reports agents' replies (Admin Center → Apps
    /// and integrations → Webhooks → the webhook → Signing secret). Without it the connector
    /// accepts no webhooks (answered 404).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// How far the webhook's `X-Zendesk-Webhook-Signature-Timestamp` may be from wabridge's
    /// clock, in seconds, before the request is refused as replayed or forged.
    #[serde(default = "default_webhook_tolerance_secs")]
    pub webhook_tolerance_secs: u64,
}

impl ZendeskConfig {
    /// A configuration for `https://<subdomain>.zendesk.com` with the defaults for every
    /// optional key and no credentials yet.
    pub fn new(subdomain: impl Into<String>) -> Self {
        ZendeskConfig {
            subdomain: Some(subdomain.into()),
            url: None,
            email: None,
            api_token: None,
            oauth_token: None,
            customer_messages: CustomerMessages::default(),
            reopen_within_days: default_reopen_within_days(),
            group_id: None,
            brand_id: None,
            priority: None,
            tags: default_tags(),
            timeout_secs: default_timeout_secs(),
            webhook_secret: None,
            webhook_tolerance_secs: default_webhook_tolerance_secs(),
        }
    }

    /// The same with `url` instead of `subdomain`.
    pub fn with_url(url: impl Into<String>) -> Self {
        ZendeskConfig {
            subdomain: None,
            url: Some(url.into()),
            ..ZendeskConfig::new("")
        }
    }

    /// The account's base address (`https://acme.zendesk.com`), once [`Self::validate`]
    /// passed.
    pub fn base_url(&self) -> Option<String> {
        match (&self.url, &self.subdomain) {
            (Some(url), _) => Some(url.trim().to_owned()),
            (None, Some(subdomain)) => Some(format!("https://{}.zendesk.com", subdomain.trim())),
            (None, None) => None,
        }
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();

        match (&self.subdomain, &self.url) {
            (Some(_), Some(_)) => problems.push(ConfigProblem::new(
                "subdomain",
                "give either subdomain or url, not both",
            )),
            (None, None) => problems.push(ConfigProblem::new(
                "subdomain",
                "required: the Zendesk subdomain (acme for acme.zendesk.com), or url",
            )),
            (Some(subdomain), None) => {
                let subdomain = subdomain.trim();
                if subdomain.contains('.') || subdomain.contains('/') {
                    problems.push(ConfigProblem::new(
                        "subdomain",
                        "give only the subdomain (acme for https://acme.zendesk.com), or use url",
                    ));
                } else if subdomain.is_empty()
                    || subdomain.starts_with('-')
                    || subdomain.ends_with('-')
                    || !subdomain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    problems.push(ConfigProblem::new(
                        "subdomain",
                        "must be letters, digits and '-', e.g. acme",
                    ));
                }
            }
            (None, Some(url)) => {
                if let Some(message) = url_problem(url) {
                    problems.push(ConfigProblem::new("url", message));
                }
            }
        }

        let basic = self.email.is_some() || self.api_token.is_some();
        match (&self.oauth_token, basic) {
            (Some(_), true) => problems.push(ConfigProblem::new(
                "oauth_token",
                "give either email + api_token or oauth_token, not both",
            )),
            (None, false) => problems.push(ConfigProblem::new(
                "api_token",
                "required: email + api_token of an agent (or oauth_token)",
            )),
            (Some(token), false) => {
                if token.is_empty() {
                    problems.push(ConfigProblem::new("oauth_token", "must not be empty"));
                }
            }
            (None, true) => {
                match self.email.as_deref().map(str::trim) {
                    None => problems.push(ConfigProblem::new(
                        "email",
                        "required together with api_token: the agent's e-mail address",
                    )),
                    Some(email)
                        if !email.contains('@')
                            || email.contains(':')
                            || email.chars().any(char::is_whitespace) =>
                    {
                        problems.push(ConfigProblem::new(
                            "email",
                            "must be the agent's e-mail address, e.g. agent@acme.com",
                        ))
                    }
                    Some(_) => {}
                }
                match &self.api_token {
                    None => problems.push(ConfigProblem::new(
                        "api_token",
                        "required together with email",
                    )),
                    Some(token) if token.is_empty() => {
                        problems.push(ConfigProblem::new("api_token", "must not be empty"))
                    }
                    Some(_) => {}
                }
            }
        }

        if let Some(priority) = &self.priority {
            if !PRIORITIES.contains(&priority.trim()) {
                problems.push(ConfigProblem::new(
                    "priority",
                    "must be one of low, normal, high, urgent",
                ));
            }
        }

        if self
            .tags
            .iter()
            .any(|tag| tag.trim().is_empty() || tag.trim().chars().any(char::is_whitespace))
        {
            problems.push(ConfigProblem::new(
                "tags",
                "each tag must be one word without spaces (Zendesk splits tags at spaces)",
            ));
        }

        if self.timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "timeout_secs",
                "must be at least 1 second",
            ));
        }

        if let Some(secret) = &self.webhook_secret {
            if secret.is_empty() {
                problems.push(ConfigProblem::new(
                    "webhook_secret",
                    "must not be empty when set (leave it out to accept no webhooks)",
                ));
            }
        }
        if self.webhook_tolerance_secs == 0 {
            problems.push(ConfigProblem::new(
                "webhook_tolerance_secs",
                "must be at least 1 second",
            ));
        }

        problems
    }
}

/// What is wrong with a configured `url`, if anything.
fn url_problem(url: &str) -> Option<String> {
    let parsed = match reqwest::Url::parse(url.trim()) {
        Ok(parsed) => parsed,
        Err(err) => {
            return Some(format!(
                "is not a valid URL ({err}); expected e.g. https://acme.zendesk.com"
            ))
        }
    };
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if parsed.host_str().is_none() {
        return Some("must name a host".to_owned());
    }
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Some("must start with https:// (Zendesk answers HTTPS only)".to_owned()),
        _ => return Some("must start with https://".to_owned()),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Some("must not carry a query or fragment".to_owned());
    }
    if parsed.path().trim_end_matches('/').ends_with("/api/v2") {
        return Some("give the account's address; /api/v2 is appended by the connector".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &ZendeskConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    fn with_token(mut config: ZendeskConfig) -> ZendeskConfig {
        config.email = Some("agent@acme.com".into());
        config.api_token = Some(Secret::new("t0k3n"));
        config
    }

    #[test]
    fn accepts_a_token_config_and_fills_defaults() {
        let config: ZendeskConfig = serde_json::from_value(serde_json::json!({
            "subdomain": "acme", "email": "agent@acme.com", "api_token": "abc"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(
            config.base_url().as_deref(),
            Some("https://acme.zendesk.com")
        );
        assert_eq!(config.customer_messages, CustomerMessages::Public);
        assert_eq!(config.reopen_within_days, DEFAULT_REOPEN_WITHIN_DAYS);
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(
            config.webhook_tolerance_secs,
            DEFAULT_WEBHOOK_TOLERANCE_SECS
        );
        assert_eq!(config.tags, ["whatsapp"]);
    }

    #[test]
    fn accepts_an_oauth_token_and_a_url() {
        let mut config = ZendeskConfig::with_url("https://support.acme.com/");
        config.oauth_token = Some(Secret::new("oauth"));
        config.customer_messages = CustomerMessages::Private;
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        let parsed: ZendeskConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8080", "oauth_token": "x", "customer_messages": "private"
        }))
        .expect("parses");
        assert!(parsed.validate().is_empty(), "{:?}", parsed.validate());
        assert_eq!(parsed.customer_messages, CustomerMessages::Private);
    }

    #[test]
    fn rejects_unknown_keys_and_unknown_message_modes() {
        for value in [
            serde_json::json!({"subdomain": "acme", "oauth_token": "x", "subdomian": "x"}),
            serde_json::json!({"subdomain": "acme", "oauth_token": "x", "customer_messages": "loud"}),
        ] {
            assert!(serde_json::from_value::<ZendeskConfig>(value).is_err());
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = ZendeskConfig::new("acme.zendesk.com");
        config.priority = Some("asap".into());
        config.tags = vec!["whats app".into()];
        config.timeout_secs = 0;
        config.webhook_secret = Some(Secret::new(" "));
        config.webhook_tolerance_secs = 0;
        assert_eq!(
            fields(&config),
            [
                "subdomain",
                "api_token",
                "priority",
                "tags",
                "timeout_secs",
                "webhook_secret",
                "webhook_tolerance_secs"
            ]
        );
    }

    #[test]
    fn rejects_both_or_neither_address() {
        let mut config = with_token(ZendeskConfig::new("acme"));
        config.url = Some("https://acme.zendesk.com".into());
        assert_eq!(fields(&config), ["subdomain"]);
        config.subdomain = None;
        config.url = None;
        assert_eq!(fields(&config), ["subdomain"]);
    }

    #[test]
    fn rejects_plain_http_api_paths_and_bad_urls() {
        for url in [
            "http://acme.zendesk.com",
            "https://acme.zendesk.com/api/v2",
            "https://acme.zendesk.com/?x=1",
            "acme.zendesk.com",
        ] {
            let config = with_token(ZendeskConfig::with_url(url));
            assert_eq!(fields(&config), ["url"], "{url}");
        }
    }

    #[test]
    fn rejects_mixed_or_half_credentials() {
        let mut config = with_token(ZendeskConfig::new("acme"));
        config.oauth_token = Some(Secret::new("o"));
        assert_eq!(fields(&config), ["oauth_token"]);
        let mut config = ZendeskConfig::new("acme");
        config.api_token = Some(Secret::new("t"));
        assert_eq!(fields(&config), ["email"]);
        config.email = Some("not-an-address".into());
        assert_eq!(fields(&config), ["email"]);
        config.email = Some("agent@acme.com".into());
        config.api_token = None;
        assert_eq!(fields(&config), ["api_token"]);
    }
}
