//! `[connectors.<name>] kind = "redmine"`: the Redmine connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`RedmineConfig::reopen_within_days`].
pub const DEFAULT_REOPEN_WITHIN_DAYS: u32 = 30;
/// Default for [`RedmineConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default for [`RedmineConfig::private_messages`].
pub const DEFAULT_PRIVATE_MESSAGES: bool = false;

fn default_reopen_within_days() -> u32 {
    DEFAULT_REOPEN_WITHIN_DAYS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_private_messages() -> bool {
    DEFAULT_PRIVATE_MESSAGES
}

/// The longest project identifier Redmine accepts.
const MAX_IDENTIFIER_LEN: usize = 100;

/// Redmine 4/5 over its REST API (`<url>/issues.json`, ...), authenticated by an API key.
///
/// ```toml
/// [connectors.tracker]
/// kind = "redmine"
/// url = "https://redmine.example.com"  # Redmine's address, as in the browser
/// api_key = "…"                        # My account → API access key
/// project = "wa-support"               # the project's identifier
/// ```
///
/// The REST API must be enabled (Administration → Settings → API). The key's user needs, in
/// the project: view, add and edit issues, add notes, set notes as private, and (to reopen
/// closed issues) a workflow that allows the change back to an open status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedmineConfig {
    /// Redmine's base address, `http` or `https`, e.g. `https://redmine.example.com` or
    /// `https://example.com/redmine` when Redmine runs under a sub-path.
    pub url: String,
    /// The API access key of the user the connector writes as (My account → API access key),
    /// sent as `X-Redmine-API-Key`. Agents' notes are told apart from the connector's own by
    /// this user, so give the connector a user of its own.
    pub api_key: Secret,
    /// The identifier of the project new issues are opened in (Settings → Identifier, e.g.
    /// `wa-support`, not its display name), or its numeric id.
    pub project: String,
    /// The tracker of new issues (Administration → Trackers, the number in the address).
    /// Default: the project's first tracker.
    #[serde(default)]
    pub tracker_id: Option<u32>,
    /// The priority of new issues (Administration → Enumerations). Default: Redmine's default
    /// priority.
    #[serde(default)]
    pub priority_id: Option<u32>,
    /// A message for a closed issue reopens it if it was closed less than this many days ago;
    /// otherwise a new issue is opened. 0 never reopens.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,
    /// The status a reopened issue gets (Administration → Issue statuses). Default: the first
    /// status that is not closed (usually "New").
    #[serde(default)]
    pub reopen_status_id: Option<u32>,
    /// An issue custom field (of format Text or Link) that receives the customer's number in
    /// E.164 form (`+96890000001`) on new issues, for filters and reports. Default: none (the
    /// number is in the subject either way).
    #[serde(default)]
    pub phone_custom_field_id: Option<u32>,
    /// Write the customer's later messages as private notes (visible only to roles with "View
    /// private notes"). The first message is the issue's description, which cannot be private.
    #[serde(default = "default_private_messages")]
    pub private_messages: bool,
    /// Timeout of one HTTP call to Redmine, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl RedmineConfig {
    /// A configuration with the defaults for every optional key.
    pub fn new(url: impl Into<String>, api_key: Secret, project: impl Into<String>) -> Self {
        RedmineConfig {
            url: url.into(),
            api_key,
            project: project.into(),
            tracker_id: None,
            priority_id: None,
            reopen_within_days: default_reopen_within_days(),
            reopen_status_id: None,
            phone_custom_field_id: None,
            private_messages: default_private_messages(),
            timeout_secs: default_timeout_secs(),
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
            Ok(url)
                if url
                    .path()
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.ends_with(".json")) =>
            {
                problems.push(ConfigProblem::new(
                    "url",
                    "give Redmine's base address (as in the browser), not an API address",
                ))
            }
            Ok(_) => {}
            Err(err) => problems.push(ConfigProblem::new(
                "url",
                format!("is not a valid URL ({err}); expected e.g. https://redmine.example.com"),
            )),
        }

        let key = self.api_key.expose().trim();
        if key.is_empty() {
            problems.push(ConfigProblem::new(
                "api_key",
                "required: the API access key of Redmine's connector user (My account → API \
                 access key)",
            ));
        } else if !key.chars().all(|c| c.is_ascii_graphic()) {
            problems.push(ConfigProblem::new(
                "api_key",
                "must be the key exactly as Redmine shows it (no spaces or other characters)",
            ));
        }

        let project = self.project.trim();
        if project.is_empty() {
            problems.push(ConfigProblem::new(
                "project",
                "required: the identifier of the Redmine project new issues are opened in",
            ));
        } else if !is_project_reference(project) {
            problems.push(ConfigProblem::new(
                "project",
                format!(
                    "`{project}` is not a project identifier: use the identifier from the \
                     project's Settings (lowercase letters, digits, '-' and '_', starting with a \
                     letter, e.g. wa-support), not its display name"
                ),
            ));
        }

        for (field, value) in [
            ("tracker_id", self.tracker_id),
            ("priority_id", self.priority_id),
            ("reopen_status_id", self.reopen_status_id),
            ("phone_custom_field_id", self.phone_custom_field_id),
        ] {
            if value == Some(0) {
                problems.push(ConfigProblem::new(
                    field,
                    "must be a Redmine id (1 or more); leave it out for the default",
                ));
            }
        }

        if self.timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "timeout_secs",
                "must be at least 1 second",
            ));
        }

        problems
    }
}

/// A Redmine project identifier (`wa-support`) or a numeric project id.
fn is_project_reference(value: &str) -> bool {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    value.len() <= MAX_IDENTIFIER_LEN
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &RedmineConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    fn valid() -> RedmineConfig {
        RedmineConfig::new("http://127.0.0.1:3300", Secret::new("abc123"), "wa-support")
    }

    #[test]
    fn accepts_the_documented_config_and_fills_defaults() {
        let config: RedmineConfig = serde_json::from_value(serde_json::json!({
            "url": "https://redmine.example.com/redmine", "api_key": "0123abcd",
            "project": "wa-support"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.reopen_within_days, DEFAULT_REOPEN_WITHIN_DAYS);
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(!config.private_messages);
        assert_eq!(config.tracker_id, None);
        assert_eq!(config.phone_custom_field_id, None);
    }

    #[test]
    fn accepts_every_optional_key() {
        let config: RedmineConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:3300", "api_key": "k", "project": "7",
            "tracker_id": 3, "priority_id": 2, "reopen_within_days": 0, "reopen_status_id": 2,
            "phone_custom_field_id": 4, "private_messages": true, "timeout_secs": 5
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.tracker_id, Some(3));
        assert!(config.private_messages);
    }

    #[test]
    fn rejects_unknown_keys_and_a_missing_api_key() {
        let typo = serde_json::from_value::<RedmineConfig>(serde_json::json!({
            "url": "http://h", "api_key": "k", "project": "p", "projet": "x"
        }));
        assert!(typo.is_err());
        let missing = serde_json::from_value::<RedmineConfig>(serde_json::json!({
            "url": "http://h", "project": "p"
        }));
        assert!(missing.is_err());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = RedmineConfig::new("ftp://redmine.example.com", Secret::new(" "), "");
        config.tracker_id = Some(0);
        config.phone_custom_field_id = Some(0);
        config.timeout_secs = 0;
        assert_eq!(
            fields(&config),
            [
                "url",
                "api_key",
                "project",
                "tracker_id",
                "phone_custom_field_id",
                "timeout_secs"
            ]
        );
    }

    #[test]
    fn explains_a_display_name_given_as_project() {
        let mut config = valid();
        config.project = "WhatsApp Support".into();
        let problems = config.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "project");
        assert!(
            problems[0].message.contains("not its display name"),
            "{problems:?}"
        );
        for good in ["wa-support", "support_2", "42"] {
            config.project = good.into();
            assert!(config.validate().is_empty(), "{good}");
        }
        for bad in ["2support", "wa support", "Wa-Support", "-x"] {
            config.project = bad.into();
            assert_eq!(fields(&config), ["project"], "{bad}");
        }
    }

    #[test]
    fn rejects_an_api_address_and_a_key_with_spaces() {
        let mut config = valid();
        config.url = "https://redmine.example.com/issues.json".into();
        config.api_key = Secret::new("abc def");
        assert_eq!(fields(&config), ["url", "api_key"]);
        config.url = "not a url".into();
        config.api_key = Secret::new("abc");
        assert_eq!(fields(&config), ["url"]);
    }
}
