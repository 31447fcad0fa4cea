//! `[connectors.<name>] kind = "freshdesk"`: the Freshdesk connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`FreshdeskConfig::reopen_within_days`].
pub const DEFAULT_REOPEN_WITHIN_DAYS: u32 = 30;
/// Default for [`FreshdeskConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default for [`FreshdeskConfig::priority`]: Low.
pub const DEFAULT_PRIORITY: u8 = 1;
/// Default for [`FreshdeskConfig::source`]: Chat.
pub const DEFAULT_SOURCE: u8 = 7;
/// Default for [`FreshdeskConfig::tags`].
pub const DEFAULT_TAGS: &[&str] = &["whatsapp"];

fn default_reopen_within_days() -> u32 {
    DEFAULT_REOPEN_WITHIN_DAYS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}
fn default_source() -> u8 {
    DEFAULT_SOURCE
}
fn default_tags() -> Vec<String> {
    DEFAULT_TAGS.iter().map(|tag| (*tag).to_owned()).collect()
}

/// How the customer's WhatsApp messages appear in the ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerMessages {
    /// The first message is the ticket's description, later ones public incoming notes by
    /// the customer (the requester), as Freshdesk shows a customer's replies. The default.
    #[default]
    Public,
    /// Private notes: the ticket's description only names the conversation, and every
    /// message, the first included, is a private note.
    Private,
}

/// Freshdesk over its API v2 (`https://<domain>.freshdesk.com/api/v2/…`).
///
/// ```toml
/// [connectors.freshdesk]
/// kind = "freshdesk"
/// domain = "acme"                       # acme.freshdesk.com; or: url = "https://acme.freshdesk.com"
/// api_key = "…"                         # Profile settings → View API key (an agent's key)
/// group_id = 80000123456                # optional: the group new tickets go to
/// webhook_secret = "…"                  # a long random string, also set in the automation rule
/// ```
///
/// The API key's agent needs to create contacts and tickets, add notes and update tickets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshdeskConfig {
    /// The helpdesk's Freshdesk domain: `acme` for `https://acme.freshdesk.com`. Give this or
    /// `url`.
    #[serde(default)]
    pub domain: Option<String>,
    /// The helpdesk's address, without `/api/v2`, e.g. `https://acme.freshdesk.com`. Freshdesk
    /// answers the API on its own domain only (not on a custom CNAME) and over HTTPS only
    /// (plain `http` is accepted for `localhost`, for tests).
    #[serde(default)]
    pub url: Option<String>,
    /// An agent's API key (Profile settings → View API key), sent as HTTP Basic
    /// `<api_key>:X`.
    pub api_key: Secret,
    /// `public` (default): customer messages are the description and public incoming notes
    /// by the customer. `private`: private notes.
    #[serde(default)]
    pub customer_messages: CustomerMessages,
    /// A message on a resolved ticket reopens it if the ticket was last updated less than
    /// this many days ago; otherwise a new ticket is opened. 0 never reopens. Closed, deleted
    /// or spam tickets always get a new ticket.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,
    /// The group new tickets are assigned to; Freshdesk's automations decide when unset.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// Priority of new tickets: 1 Low (default), 2 Medium, 3 High, 4 Urgent.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Source of new tickets: 7 Chat (default); any source id the helpdesk knows (1 Email,
    /// 2 Portal, 3 Phone, ...).
    #[serde(default = "default_source")]
    pub source: u8,
    /// Tags set on new tickets (default `["whatsapp"]`); use them in the automation rule
    /// that reports agents' replies.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// Timeout of one HTTP call to Freshdesk, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The shared secret the "agent replied" automation sends in the `X-Wabridge-Secret`
    /// header (or, where headers cannot be set, as `?secret=` in the webhook URL). At least
    /// 16 characters. Without it the connector accepts no webhooks (answered 404).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

/// The shortest accepted [`FreshdeskConfig::webhook_secret`].
pub const MIN_WEBHOOK_SECRET_LEN: usize = 16;

impl FreshdeskConfig {
    /// A configuration for `https://<domain>.freshdesk.com` with the defaults for every
    /// optional key.
    pub fn new(domain: impl Into<String>, api_key: Secret) -> Self {
        FreshdeskConfig {
            domain: Some(domain.into()),
            url: None,
            api_key,
            customer_messages: CustomerMessages::default(),
            reopen_within_days: default_reopen_within_days(),
            group_id: None,
            priority: default_priority(),
            source: default_source(),
            tags: default_tags(),
            timeout_secs: default_timeout_secs(),
            webhook_secret: None,
        }
    }

    /// The same with `url` instead of `domain`.
    pub fn with_url(url: impl Into<String>, api_key: Secret) -> Self {
        FreshdeskConfig {
            domain: None,
            url: Some(url.into()),
            ..FreshdeskConfig::new("", api_key)
        }
    }

    /// The helpdesk's base address (`https://acme.freshdesk.com`), once [`Self::validate`]
    /// passed.
    pub fn base_url(&self) -> Option<String> {
        match (&self.url, &self.domain) {
            (Some(url), _) => Some(url.trim().to_owned()),
            (None, Some(domain)) => Some(format!("https://{}.freshdesk.com", domain.trim())),
            (None, None) => None,
        }
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();

        match (&self.domain, &self.url) {
            (Some(_), Some(_)) => problems.push(ConfigProblem::new(
                "domain",
                "give either domain or url, not both",
            )),
            (None, None) => problems.push(ConfigProblem::new(
                "domain",
                "required: the Freshdesk domain (acme for acme.freshdesk.com), or url",
            )),
            (Some(domain), None) => {
                let domain = domain.trim();
                if domain.contains('.') || domain.contains('/') {
                    problems.push(ConfigProblem::new(
                        "domain",
                        "give only the name before .freshdesk.com (acme), or use url",
                    ));
                } else if domain.is_empty()
                    || domain.starts_with('-')
                    || domain.ends_with('-')
                    || !domain
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    problems.push(ConfigProblem::new(
                        "domain",
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

        if self.api_key.is_empty() {
            problems.push(ConfigProblem::new(
                "api_key",
                "required: an agent's API key (Profile settings → View API key)",
            ));
        } else if self.api_key.expose().contains(':') {
            problems.push(ConfigProblem::new("api_key", "must not contain ':'"));
        }

        if !(1..=4).contains(&self.priority) {
            problems.push(ConfigProblem::new(
                "priority",
                "must be 1 (Low), 2 (Medium), 3 (High) or 4 (Urgent)",
            ));
        }
        if self.source == 0 {
            problems.push(ConfigProblem::new(
                "source",
                "must be a Freshdesk source id, e.g. 7 (Chat)",
            ));
        }

        if self
            .tags
            .iter()
            .any(|tag| tag.trim().is_empty() || tag.contains(','))
        {
            problems.push(ConfigProblem::new(
                "tags",
                "each tag must be non-empty and contain no ','",
            ));
        }

        if self.timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "timeout_secs",
                "must be at least 1 second",
            ));
        }

        if let Some(secret) = &self.webhook_secret {
            let secret = secret.expose();
            if secret.trim().chars().count() < MIN_WEBHOOK_SECRET_LEN {
                problems.push(ConfigProblem::new(
                    "webhook_secret",
                    "must be at least 16 characters (a long random string); leave it out to \
                     accept no webhooks",
                ));
            } else if !secret
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '&' | '#' | '%' | '+'))
            {
                problems.push(ConfigProblem::new(
                    "webhook_secret",
                    "use printable ASCII without spaces, '&', '#', '%' or '+' (it travels in a \
                     header or a URL)",
                ));
            }
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
                "is not a valid URL ({err}); expected e.g. https://acme.freshdesk.com"
            ))
        }
    };
    if parsed.host_str().is_none() {
        return Some("must name a host".to_owned());
    }
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Some("must start with https:// (Freshdesk answers HTTPS only)".to_owned())
        }
        _ => return Some("must start with https://".to_owned()),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Some("must not carry a query or fragment".to_owned());
    }
    if parsed.path().trim_end_matches('/').ends_with("/api/v2") {
        return Some(
            "give the helpdesk's address; /api/v2 is appended by the connector".to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &FreshdeskConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn accepts_a_minimal_config_and_fills_defaults() {
        let config: FreshdeskConfig = serde_json::from_value(serde_json::json!({
            "domain": "acme", "api_key": "abcdefghij"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(
            config.base_url().as_deref(),
            Some("https://acme.freshdesk.com")
        );
        assert_eq!(config.customer_messages, CustomerMessages::Public);
        assert_eq!(config.reopen_within_days, DEFAULT_REOPEN_WITHIN_DAYS);
        assert_eq!(config.priority, DEFAULT_PRIORITY);
        assert_eq!(config.source, DEFAULT_SOURCE);
        assert_eq!(config.tags, ["whatsapp"]);
        assert_eq!(config.webhook_secret, None);
    }

    #[test]
    fn accepts_a_url_private_messages_and_a_webhook_secret() {
        let config: FreshdeskConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9000", "api_key": "k", "customer_messages": "private",
            "webhook_secret": "s3cr3t-0123456789abcdef"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.customer_messages, CustomerMessages::Private);
    }

    #[test]
    fn rejects_unknown_keys_and_a_missing_api_key() {
        for value in [
            serde_json::json!({"domain": "acme", "api_key": "k", "domian": "x"}),
            serde_json::json!({"domain": "acme"}),
        ] {
            assert!(serde_json::from_value::<FreshdeskConfig>(value).is_err());
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = FreshdeskConfig::new("acme.freshdesk.com", Secret::new(" "));
        config.priority = 5;
        config.source = 0;
        config.tags = vec![String::new()];
        config.timeout_secs = 0;
        config.webhook_secret = Some(Secret::new("short"));
        assert_eq!(
            fields(&config),
            [
                "domain",
                "api_key",
                "priority",
                "source",
                "tags",
                "timeout_secs",
                "webhook_secret"
            ]
        );
    }

    #[test]
    fn rejects_both_or_neither_address_and_bad_urls() {
        let mut config = FreshdeskConfig::new("acme", Secret::new("k"));
        config.url = Some("https://acme.freshdesk.com".into());
        assert_eq!(fields(&config), ["domain"]);
        config.domain = None;
        config.url = None;
        assert_eq!(fields(&config), ["domain"]);
        for url in [
            "http://acme.freshdesk.com",
            "https://acme.freshdesk.com/api/v2/",
            "acme",
        ] {
            let config = FreshdeskConfig::with_url(url, Secret::new("k"));
            assert_eq!(fields(&config), ["url"], "{url}");
        }
    }

    #[test]
    fn rejects_webhook_secrets_that_do_not_travel_safely() {
        let mut config = FreshdeskConfig::new("acme", Secret::new("k"));
        config.webhook_secret = Some(Secret::new("0123456789abcdef&x"));
        assert_eq!(fields(&config), ["webhook_secret"]);
        config.webhook_secret = Some(Secret::new("0123456789 abcdef"));
        assert_eq!(fields(&config), ["webhook_secret"]);
    }
}
