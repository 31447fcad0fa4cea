//! `[connectors.<name>] kind = "salesforce"`: the Salesforce connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`SalesforceConfig::api_version`].
pub const DEFAULT_API_VERSION: &str = "v62.0";
/// Default for [`SalesforceConfig::external_id_field`].
pub const DEFAULT_EXTERNAL_ID_FIELD: &str = "WhatsApp_Id__c";
/// Default for [`SalesforceConfig::case_origin`].
pub const DEFAULT_CASE_ORIGIN: &str = "WhatsApp";
/// Default for [`SalesforceConfig::case_status_new`] (a value of Salesforce's standard
/// Case Status picklist).
pub const DEFAULT_CASE_STATUS_NEW: &str = "New";
/// Default for [`SalesforceConfig::case_status_reopened`] (a value of Salesforce's standard
/// Case Status picklist).
pub const DEFAULT_CASE_STATUS_REOPENED: &str = "Working";
/// Default for [`SalesforceConfig::reopen_within_days`].
pub const DEFAULT_REOPEN_WITHIN_DAYS: u32 = 30;
/// Default for [`SalesforceConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}
fn default_external_id_field() -> String {
    DEFAULT_EXTERNAL_ID_FIELD.to_owned()
}
fn default_roles() -> Vec<Role> {
    vec![Role::Crm, Role::Ticketing]
}
fn default_case_origin() -> String {
    DEFAULT_CASE_ORIGIN.to_owned()
}
fn default_case_status_new() -> String {
    DEFAULT_CASE_STATUS_NEW.to_owned()
}
fn default_case_status_reopened() -> String {
    DEFAULT_CASE_STATUS_REOPENED.to_owned()
}
fn default_reopen_within_days() -> u32 {
    DEFAULT_REOPEN_WITHIN_DAYS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// What a Salesforce section is used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Contacts upserted by WhatsApp number, every message a completed Task on the contact.
    Crm,
    /// A Case per conversation, every message a case comment, agents' public comments back to
    /// WhatsApp.
    Ticketing,
}

/// How the customer's messages appear in the case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerMessages {
    /// Private case comments (`IsPublished = false`): agents see them, the customer portal does
    /// not, and Salesforce sends the contact no "new comment" e-mail. The default.
    #[default]
    Private,
    /// Published case comments (`IsPublished = true`): also shown in an Experience Cloud
    /// portal. With "Enable Case Comment Notification to Contacts" on, Salesforce e-mails the
    /// contact a copy of their own WhatsApp message, so leave that off.
    Public,
}

/// Salesforce (Sales Cloud / Service Cloud) over its REST API, authenticated with the OAuth 2.0
/// client credentials flow of a connected app (or external client app).
///
/// ```toml
/// [connectors.salesforce]
/// kind = "salesforce"
/// url = "https://acme.my.salesforce.com"     # the org's My Domain address
/// client_id = "3MVG9…"                        # the app's Consumer Key
/// client_secret = "…"                         # the app's Consumer Secret
/// external_id_field = "WhatsApp_Id__c"        # Contact field: Text, External ID, Unique
/// roles = ["crm", "ticketing"]                # default: both
/// case_origin = "WhatsApp"                    # add this value to the Case Origin picklist
/// ```
///
/// Set-up in Salesforce: create the Contact field `external_id_field` (Text(40), "Unique" and
/// "External ID"); add `case_origin` to the Case Origin picklist; create a connected app with
/// OAuth enabled, the scope "Manage user data via APIs (api)", "Enable Client Credentials
/// Flow", and a "Run As" user (OAuth policies) with API access who can read and create
/// Contacts, Tasks, Cases, Case Comments and Files. That user's own case comments are never
/// taken for agents' replies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// The org's My Domain address, e.g. `https://acme.my.salesforce.com` (Setup → My
    /// Domain). The client credentials flow does not work through `login.salesforce.com`.
    /// `https` only (plain `http` only for `localhost`, for tests).
    #[serde(default)]
    pub url: Option<String>,
    /// The connected app's Consumer Key.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The connected app's Consumer Secret.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// The REST API version, e.g. `v62.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The Contact field holding the WhatsApp number as E.164 digits without `+` (e.g.
    /// `96890000001`). It must be a Text field marked "External ID" and "Unique".
    #[serde(default = "default_external_id_field")]
    pub external_id_field: String,
    /// What the section builds: `crm`, `ticketing`, or both (the default).
    #[serde(default = "default_roles")]
    pub roles: Vec<Role>,
    /// The Account new contacts are created under (an Account Id, `001…`). Optional: without
    /// it new contacts are private contacts without an account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The Case Origin of the cases wabridge opens. Cases of the contact with this origin are
    /// the conversation's cases (reused, reopened, polled for replies).
    #[serde(default = "default_case_origin")]
    pub case_origin: String,
    /// The Status of a new case.
    #[serde(default = "default_case_status_new")]
    pub case_status_new: String,
    /// The Status a closed case is set to when the customer writes again within
    /// `reopen_within_days`. Must be a status that is not "Closed".
    #[serde(default = "default_case_status_reopened")]
    pub case_status_reopened: String,
    /// A message on a closed case reopens it when the case was closed (`ClosedDate`) less than
    /// this many days ago; otherwise a new case is opened. 0 never reopens. Whether a case is
    /// closed is Salesforce's `IsClosed` (the "Closed" flag of its status), not a status name.
    #[serde(default = "default_reopen_within_days")]
    pub reopen_within_days: u32,
    /// Priority of new cases (a Case Priority picklist value, e.g. `Medium`); Salesforce's
    /// default when unset.
    #[serde(default)]
    pub case_priority: Option<String>,
    /// Owner of new cases: a user or queue Id (`005…` or `00G…`). When unset, Salesforce's
    /// case assignment rules (or the run-as user) decide.
    #[serde(default)]
    pub case_owner_id: Option<String>,
    /// `private` (default): customer messages are unpublished case comments. `public`:
    /// published ones.
    #[serde(default)]
    pub customer_messages: CustomerMessages,
    /// Timeout of one HTTP call to Salesforce, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// Whether `name` looks like a Salesforce field API name: a letter, then letters, digits and
/// single underscores (a custom field ends in `__c`, a packaged one has a `ns__` prefix).
pub(crate) fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && name.len() <= 80
}

/// Whether `id` looks like a Salesforce record Id: 15 or 18 letters and digits.
pub(crate) fn is_record_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `version` looks like `v62.0`.
fn is_api_version(version: &str) -> bool {
    let Some(number) = version.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = number.split_once('.') else {
        return false;
    };
    !major.is_empty()
        && major.len() <= 3
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor == "0"
        && major.parse::<u32>().is_ok_and(|m| m >= 31)
}

/// What is wrong with a configured `url`, if anything.
fn url_problem(url: &str) -> Option<String> {
    const EXAMPLE: &str = "https://acme.my.salesforce.com";
    let parsed = match reqwest::Url::parse(url.trim()) {
        Ok(parsed) => parsed,
        Err(err) => {
            return Some(format!(
                "is not a valid URL ({err}); expected e.g. {EXAMPLE}"
            ))
        }
    };
    let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
        return Some("must name a host".to_owned());
    };
    let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Some("must start with https:// (Salesforce answers HTTPS only)".into()),
        _ => return Some("must start with https://".into()),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || parsed.path() != "/" {
        return Some(format!(
            "give only the org's address, without a path, e.g. {EXAMPLE}"
        ));
    }
    if matches!(
        host.as_str(),
        "login.salesforce.com" | "test.salesforce.com"
    ) {
        return Some(format!(
            "must be the org's My Domain address (Setup → My Domain), e.g. {EXAMPLE}: the \
             client credentials flow does not work through {host}"
        ));
    }
    if host.ends_with(".lightning.force.com") {
        return Some(format!(
            "give the My Domain address ending in .my.salesforce.com, not the Lightning \
             address, e.g. {EXAMPLE}"
        ));
    }
    None
}

impl SalesforceConfig {
    /// A configuration for `url` with the client credentials and the defaults for every
    /// optional key.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>, secret: Secret) -> Self {
        SalesforceConfig {
            url: Some(url.into()),
            client_id: Some(client_id.into()),
            client_secret: Some(secret),
            api_version: default_api_version(),
            external_id_field: default_external_id_field(),
            roles: default_roles(),
            account_id: None,
            case_origin: default_case_origin(),
            case_status_new: default_case_status_new(),
            case_status_reopened: default_case_status_reopened(),
            reopen_within_days: default_reopen_within_days(),
            case_priority: None,
            case_owner_id: None,
            customer_messages: CustomerMessages::default(),
            timeout_secs: default_timeout_secs(),
        }
    }

    /// Whether the section builds the role.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();

        match self.url.as_deref() {
            None => problems.push(ConfigProblem::new(
                "url",
                "required: the org's My Domain address, e.g. https://acme.my.salesforce.com",
            )),
            Some(url) => {
                if let Some(message) = url_problem(url) {
                    problems.push(ConfigProblem::new("url", message));
                }
            }
        }

        match self.client_id.as_deref().map(str::trim) {
            None => problems.push(ConfigProblem::new(
                "client_id",
                "required: the connected app's Consumer Key",
            )),
            Some("") => problems.push(ConfigProblem::new("client_id", "must not be empty")),
            Some(id) if id.chars().any(|c| c.is_whitespace() || c.is_control()) => problems.push(
                ConfigProblem::new("client_id", "must not contain spaces or control characters"),
            ),
            Some(_) => {}
        }
        match &self.client_secret {
            None => problems.push(ConfigProblem::new(
                "client_secret",
                "required: the connected app's Consumer Secret",
            )),
            Some(secret) if secret.is_empty() => {
                problems.push(ConfigProblem::new("client_secret", "must not be empty"))
            }
            Some(secret) if secret.expose().trim().chars().any(char::is_control) => problems.push(
                ConfigProblem::new("client_secret", "must not contain control characters"),
            ),
            Some(_) => {}
        }

        if !is_api_version(self.api_version.trim()) {
            problems.push(ConfigProblem::new(
                "api_version",
                format!("must be a REST API version like {DEFAULT_API_VERSION} (v31.0 or later)"),
            ));
        }
        if !is_field_name(self.external_id_field.trim()) {
            problems.push(ConfigProblem::new(
                "external_id_field",
                "must be a Contact field's API name (letters, digits, '_'), e.g. WhatsApp_Id__c",
            ));
        }

        if self.roles.is_empty() {
            problems.push(ConfigProblem::new(
                "roles",
                "must name at least one role: \"crm\", \"ticketing\"",
            ));
        } else if self.roles.len() == 2 && self.roles[0] == self.roles[1] {
            problems.push(ConfigProblem::new("roles", "names a role twice"));
        }

        if let Some(account) = &self.account_id {
            if !is_record_id(account.trim()) || !account.trim().starts_with("001") {
                problems.push(ConfigProblem::new(
                    "account_id",
                    "must be an Account Id (15 or 18 characters starting with 001)",
                ));
            }
        }
        if let Some(owner) = &self.case_owner_id {
            let owner = owner.trim();
            if !is_record_id(owner) || !(owner.starts_with("005") || owner.starts_with("00G")) {
                problems.push(ConfigProblem::new(
                    "case_owner_id",
                    "must be a user Id (005…) or a queue Id (00G…), 15 or 18 characters",
                ));
            }
        }

        let picklist = |problems: &mut Vec<ConfigProblem>, field: &str, value: &str| {
            let value = value.trim();
            if value.is_empty() {
                problems.push(ConfigProblem::new(field, "must not be empty"));
            } else if value.chars().count() > 255 || value.chars().any(char::is_control) {
                problems.push(ConfigProblem::new(
                    field,
                    "must be a picklist value: one line, at most 255 characters",
                ));
            }
        };
        if self.has_role(Role::Ticketing) {
            picklist(&mut problems, "case_origin", &self.case_origin);
            picklist(&mut problems, "case_status_new", &self.case_status_new);
            picklist(
                &mut problems,
                "case_status_reopened",
                &self.case_status_reopened,
            );
            if let Some(priority) = &self.case_priority {
                picklist(&mut problems, "case_priority", priority);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &SalesforceConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    fn valid() -> SalesforceConfig {
        SalesforceConfig::new(
            "https://acme.my.salesforce.com",
            "3MVG9abc",
            Secret::new("s3cret"),
        )
    }

    #[test]
    fn accepts_the_credentials_and_fills_defaults() {
        let config: SalesforceConfig = serde_json::from_value(serde_json::json!({
            "url": "https://acme.my.salesforce.com", "client_id": "3MVG9abc",
            "client_secret": "s3cret"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.api_version, DEFAULT_API_VERSION);
        assert_eq!(config.external_id_field, DEFAULT_EXTERNAL_ID_FIELD);
        assert_eq!(config.roles, [Role::Crm, Role::Ticketing]);
        assert_eq!(config.case_origin, "WhatsApp");
        assert_eq!(config.case_status_new, "New");
        assert_eq!(config.case_status_reopened, "Working");
        assert_eq!(config.reopen_within_days, DEFAULT_REOPEN_WITHIN_DAYS);
        assert_eq!(config.customer_messages, CustomerMessages::Private);
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn reads_every_key() {
        let config: SalesforceConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8080", "client_id": "id", "client_secret": "s",
            "api_version": "v61.0", "external_id_field": "wa__WhatsApp_Number__c",
            "roles": ["ticketing"], "account_id": "001000000000001AAA",
            "case_origin": "Chat", "case_status_new": "New", "case_status_reopened": "Escalated",
            "reopen_within_days": 0, "case_priority": "High", "case_owner_id": "00G000000000001",
            "customer_messages": "public", "timeout_secs": 5
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert!(config.has_role(Role::Ticketing) && !config.has_role(Role::Crm));
        assert_eq!(config.customer_messages, CustomerMessages::Public);
    }

    #[test]
    fn rejects_unknown_keys_roles_and_message_modes() {
        for value in [
            serde_json::json!({"url": "https://a.my.salesforce.com", "clientid": "x"}),
            serde_json::json!({"roles": ["helpdesk"]}),
            serde_json::json!({"customer_messages": "loud"}),
        ] {
            assert!(serde_json::from_value::<SalesforceConfig>(value).is_err());
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let config: SalesforceConfig = serde_json::from_value(serde_json::json!({
            "api_version": "62", "external_id_field": "WhatsApp Id", "roles": [],
            "account_id": "003000000000001", "case_owner_id": "x", "timeout_secs": 0
        }))
        .expect("parses");
        assert_eq!(
            fields(&config),
            [
                "url",
                "client_id",
                "client_secret",
                "api_version",
                "external_id_field",
                "roles",
                "account_id",
                "case_owner_id",
                "timeout_secs"
            ]
        );
    }

    #[test]
    fn rejects_login_lightning_plain_http_and_paths() {
        for url in [
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            "https://acme.lightning.force.com",
            "http://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/services/data",
            "https://acme.my.salesforce.com/?x=1",
            "acme.my.salesforce.com",
        ] {
            let mut config = valid();
            config.url = Some(url.to_owned());
            assert_eq!(fields(&config), ["url"], "{url}");
        }
    }

    #[test]
    fn checks_case_options_only_for_the_ticketing_role() {
        let mut config = valid();
        config.case_origin = " ".into();
        config.case_status_reopened = "Re\nopened".into();
        assert_eq!(fields(&config), ["case_origin", "case_status_reopened"]);
        config.roles = vec![Role::Crm];
        assert!(config.validate().is_empty());
        config.roles = vec![Role::Crm, Role::Crm];
        assert_eq!(fields(&config), ["roles"]);
    }

    #[test]
    fn recognises_ids_versions_and_field_names() {
        assert!(is_record_id("5003000000D8cuIAAR") && is_record_id("5003000000D8cuI"));
        assert!(!is_record_id("1") && !is_record_id("500'OR'1'='1'xx"));
        assert!(is_api_version("v62.0") && !is_api_version("62.0") && !is_api_version("v62.1"));
        assert!(!is_api_version("v20.0"));
        assert!(is_field_name("WhatsApp_Id__c") && is_field_name("ns__Phone__c"));
        assert!(!is_field_name("Id'") && !is_field_name("_x") && !is_field_name("x_"));
    }
}
