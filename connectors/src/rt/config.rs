//! `[connectors.<name>] kind = "rt"`: the Request Tracker connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`RtConfig::requestor_domain`].
pub const DEFAULT_REQUESTOR_DOMAIN: &str = "whatsapp.invalid";
/// Default for [`RtConfig::reopen_within_days`].
pub const DEFAULT_REOPEN_WITHIN_DAYS: u32 = 30;
/// Default for [`RtConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default for [`RtConfig::update_requestor`].
pub const DEFAULT_UPDATE_REQUESTOR: bool = true;

fn default_requestor_domain() -> String {
    DEFAULT_REQUESTOR_DOMAIN.to_owned()
}
fn default_reopen_within_days() -> u32 {
    DEFAULT_REOPEN_WITHIN_DAYS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_update_requestor() -> bool {
    DEFAULT_UPDATE_REQUESTOR
}

/// Default of [`RtPriorities::low`]: RT 5's default label "Low".
pub const DEFAULT_PRIORITY_LOW: i64 = 0;
/// Default of [`RtPriorities::normal`]: RT 5's default label "Medium".
pub const DEFAULT_PRIORITY_NORMAL: i64 = 50;
/// Default of [`RtPriorities::high`]: RT 5's default label "High".
pub const DEFAULT_PRIORITY_HIGH: i64 = 100;
/// Default of [`RtPriorities::urgent`]: RT 5's default scale ends at "High" (100).
pub const DEFAULT_PRIORITY_URGENT: i64 = 100;

fn default_priority_low() -> i64 {
    DEFAULT_PRIORITY_LOW
}
fn default_priority_normal() -> i64 {
    DEFAULT_PRIORITY_NORMAL
}
fn default_priority_high() -> i64 {
    DEFAULT_PRIORITY_HIGH
}
fn default_priority_urgent() -> i64 {
    DEFAULT_PRIORITY_URGENT
}

/// The RT priority (a number) each routing priority is written as: `[connectors.<name>.priorities]`.
///
/// RT stores priorities as numbers and shows them through `%PriorityAsString`, whose RT 5 default
/// is `Low => 0, Medium => 50, High => 100`; a number between two labels shows as the lower one
/// (75 shows as "Medium"). The defaults match that scale, so `urgent` equals `high` unless the
/// site configured a label above 100. Give numbers, never labels: REST2 silently stores an
/// unknown label as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtPriorities {
    /// The number for `low` (default 0).
    #[serde(default = "default_priority_low")]
    pub low: i64,
    /// The number for `normal` (default 50).
    #[serde(default = "default_priority_normal")]
    pub normal: i64,
    /// The number for `high` (default 100); a hand-over raises the priority to at least this.
    #[serde(default = "default_priority_high")]
    pub high: i64,
    /// The number for `urgent` (default 100).
    #[serde(default = "default_priority_urgent")]
    pub urgent: i64,
}

impl Default for RtPriorities {
    fn default() -> Self {
        RtPriorities {
            low: DEFAULT_PRIORITY_LOW,
            normal: DEFAULT_PRIORITY_NORMAL,
            high: DEFAULT_PRIORITY_HIGH,
            urgent: DEFAULT_PRIORITY_URGENT,
        }
    }
}

/// Request Tracker 5 over REST2 (`<url>/REST/2.0/…`).
///
/// ```toml
/// [connectors.helpdesk]
/// kind = "rt"
/// url = "https://rt.example.com"     # RT's WebBaseURL + WebPath, without /REST/2.0
/// token = "1-14-8dc8…"               # or: username = "…" + password = "…"
/// queue = "WhatsApp"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// RT's base address (WebBaseURL plus WebPath), `http` or `https`, e.g.
    /// `https://rt.example.com` or `https://example.com/rt`. `/REST/2.0` is appended.
    pub url: String,
    /// An RT auth token (Settings → Auth Tokens), sent as `Authorization: token <token>`.
    /// Give either this or `username` + `password`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// RT user name for HTTP Basic authentication (with `password`), instead of `token`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password of `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The queue new tickets are opened in (name or numeric id); the user needs CreateTicket,
    /// ShowTicket, CommentOnTicket and ModifyTicket there.
    pub queue: String,
    /// Domain of the requestor e-mail addresses the connector makes up for customers:
    /// `wa+<digits>@<domain>`, or `wa-<bsuid>@<domain>` when the number is withheld. RT can
    /// only search users by e-mail address, so the address is how a conversation's tickets are
    /// found again. Keep the default (a reserved, never-delivered domain) unless RT's mail
    /// setup needs another.
    #[serde(default = "default_requestor_domain")]
    pub requestor_domain: String,
    /// A message on a resolved ticket reopens it if it was resolved less than this many days
    /// ago; otherwise a new ticket is opened. 0 never reopens. Rejected or deleted tickets
    /// always get a new ticket.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,
    /// Timeout of one HTTP call to RT, in seconds (RT needs ~0.3 s per call).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// When a ticket is opened, set the requestor's RealName to the WhatsApp profile name and
    /// MobilePhone to the E.164 number (one extra call per new ticket; failures only warn).
    #[serde(default = "default_update_requestor")]
    pub update_requestor: bool,
    /// Routing: the RT number each priority (`low`, `normal`, `high`, `urgent`) is written as.
    #[serde(default)]
    pub priorities: RtPriorities,
    /// Routing: the name (or id) of a ticket custom field that receives the routing's tags. It
    /// must accept several free-text values ("Enter multiple values"), be applied to every queue
    /// routing may move tickets to, and the connector's user needs ModifyCustomField and
    /// SeeCustomField. RT has no tags of its own: without this key the tags are written into the
    /// routing's internal comment instead.
    #[serde(default)]
    pub tags_custom_field: Option<String>,
}

impl RtConfig {
    /// A configuration with the defaults for every optional key.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        RtConfig {
            url: url.into(),
            token: None,
            username: None,
            password: None,
            queue: queue.into(),
            requestor_domain: default_requestor_domain(),
            reopen_within_days: default_reopen_within_days(),
            timeout_secs: default_timeout_secs(),
            update_requestor: default_update_requestor(),
            priorities: RtPriorities::default(),
            tags_custom_field: None,
        }
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();

        match reqwest::Url::parse(self.url.trim()) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => problems.push(
                ConfigProblem::new("url", "must start with http:// or https://"),
            ),
            Ok(url) if url.host_str().is_none() => {
                problems.push(ConfigProblem::new("url", "must name a host"))
            }
            Ok(url) if url.query().is_some() || url.fragment().is_some() => problems.push(
                ConfigProblem::new("url", "must not carry a query or fragment"),
            ),
            Ok(url) if url.path().trim_end_matches('/').ends_with("/REST/2.0") => {
                problems.push(ConfigProblem::new(
                    "url",
                    "give RT's base address; /REST/2.0 is appended by the connector",
                ))
            }
            Ok(_) => {}
            Err(err) => problems.push(ConfigProblem::new(
                "url",
                format!("is not a valid URL ({err}); expected e.g. https://rt.example.com"),
            )),
        }

        let token = self.token.as_ref();
        let basic = self.username.is_some() || self.password.is_some();
        match (token, basic) {
            (Some(_), true) => problems.push(ConfigProblem::new(
                "token",
                "give either token or username + password, not both",
            )),
            (None, false) => problems.push(ConfigProblem::new(
                "token",
                "required: an RT auth token (or username + password)",
            )),
            (Some(token), false) => {
                if token.is_empty() {
                    problems.push(ConfigProblem::new("token", "must not be empty"));
                }
            }
            (None, true) => {
                match self.username.as_deref().map(str::trim) {
                    None => problems.push(ConfigProblem::new(
                        "username",
                        "required together with password",
                    )),
                    Some("") => problems.push(ConfigProblem::new("username", "must not be empty")),
                    Some(name) if name.contains(':') => {
                        problems.push(ConfigProblem::new("username", "must not contain ':'"))
                    }
                    Some(_) => {}
                }
                match &self.password {
                    None => problems.push(ConfigProblem::new(
                        "password",
                        "required together with username",
                    )),
                    Some(password) if password.is_empty() => {
                        problems.push(ConfigProblem::new("password", "must not be empty"))
                    }
                    Some(_) => {}
                }
            }
        }

        if self.queue.trim().is_empty() {
            problems.push(ConfigProblem::new(
                "queue",
                "required: the RT queue new tickets are opened in",
            ));
        }

        let domain = self.requestor_domain.trim();
        if domain.is_empty()
            || domain.starts_with(['.', '-'])
            || domain.ends_with(['.', '-'])
            || domain.contains("..")
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            problems.push(ConfigProblem::new(
                "requestor_domain",
                "must be a domain name (letters, digits, '.', '-'), e.g. whatsapp.invalid",
            ));
        }

        if self.timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "timeout_secs",
                "must be at least 1 second",
            ));
        }

        let p = &self.priorities;
        if !(p.low <= p.normal && p.normal <= p.high && p.high <= p.urgent) {
            problems.push(ConfigProblem::new(
                "priorities",
                format!(
                    "must rise from low to urgent (low <= normal <= high <= urgent); got {}, {}, \
                     {}, {}",
                    p.low, p.normal, p.high, p.urgent
                ),
            ));
        }

        if self
            .tags_custom_field
            .as_deref()
            .is_some_and(|field| field.trim().is_empty())
        {
            problems.push(ConfigProblem::new(
                "tags_custom_field",
                "must name a ticket custom field (or be left out)",
            ));
        }

        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &RtConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn accepts_a_token_config_and_fills_defaults() {
        let config: RtConfig = serde_json::from_value(serde_json::json!({
            "url": "https://rt.example.com/rt", "token": "1-14-abc", "queue": "General"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.requestor_domain, DEFAULT_REQUESTOR_DOMAIN);
        assert_eq!(config.reopen_within_days, DEFAULT_REOPEN_WITHIN_DAYS);
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(config.update_requestor);
    }

    #[test]
    fn accepts_basic_auth() {
        let mut config = RtConfig::new("http://127.0.0.1:8181", "General");
        config.username = Some("root".into());
        config.password = Some(Secret::new("password"));
        assert!(config.validate().is_empty(), "{:?}", config.validate());
    }

    #[test]
    fn reads_routing_keys_with_per_field_defaults() {
        let config: RtConfig = serde_json::from_value(serde_json::json!({
            "url": "https://rt.example.com", "token": "t", "queue": "General",
            "priorities": {"high": 80}, "tags_custom_field": "Tags"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(
            config.priorities,
            RtPriorities {
                low: 0,
                normal: 50,
                high: 80,
                urgent: 100
            }
        );
        assert_eq!(config.tags_custom_field.as_deref(), Some("Tags"));
        assert_eq!(RtConfig::new("u", "q").priorities, RtPriorities::default());
    }

    #[test]
    fn rejects_unordered_priorities_and_an_empty_tags_field() {
        let mut config = RtConfig::new("https://rt.example.com", "General");
        config.token = Some(Secret::new("t"));
        config.priorities.high = 10;
        config.tags_custom_field = Some(" ".into());
        assert_eq!(fields(&config), ["priorities", "tags_custom_field"]);
        let parsed = serde_json::from_value::<RtConfig>(serde_json::json!({
            "url": "https://rt.example.com", "token": "t", "queue": "General",
            "priorities": {"hihg": 80}
        }));
        assert!(parsed.is_err());
    }

    #[test]
    fn rejects_unknown_keys() {
        let parsed = serde_json::from_value::<RtConfig>(serde_json::json!({
            "url": "https://rt.example.com", "token": "t", "queue": "General", "queu": "x"
        }));
        assert!(parsed.is_err());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = RtConfig::new("ftp://rt.example.com", " ");
        config.requestor_domain = "bad domain".into();
        config.timeout_secs = 0;
        assert_eq!(
            fields(&config),
            ["url", "token", "queue", "requestor_domain", "timeout_secs"]
        );
    }

    #[test]
    fn rejects_token_and_basic_together() {
        let mut config = RtConfig::new("https://rt.example.com", "General");
        config.token = Some(Secret::new("t"));
        config.username = Some("root".into());
        config.password = Some(Secret::new("p"));
        assert_eq!(fields(&config), ["token"]);
    }

    #[test]
    fn rejects_half_of_basic_auth() {
        let mut config = RtConfig::new("https://rt.example.com", "General");
        config.password = Some(Secret::new("p"));
        assert_eq!(fields(&config), ["username"]);
        config.password = None;
        config.username = Some("root".into());
        assert_eq!(fields(&config), ["password"]);
    }

    #[test]
    fn rejects_a_url_that_already_ends_in_rest2() {
        let mut config = RtConfig::new("https://rt.example.com/REST/2.0/", "General");
        config.token = Some(Secret::new("t"));
        assert_eq!(fields(&config), ["url"]);
        config.url = "not a url".into();
        assert_eq!(fields(&config), ["url"]);
    }
}
