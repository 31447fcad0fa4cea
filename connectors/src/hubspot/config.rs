//! `[connectors.<name>] kind = "hubspot"`: the HubSpot CRM connector's configuration.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default for [`HubspotConfig::url`].
pub const DEFAULT_URL: &str = "https://api.hubapi.com";
/// Default for [`HubspotConfig::objects_path`].
pub const DEFAULT_OBJECTS_PATH: &str = "/crm/v3/objects";
/// Default for [`HubspotConfig::associations_path`].
pub const DEFAULT_ASSOCIATIONS_PATH: &str = "/crm/v4";
/// Default for [`HubspotConfig::id_property`].
pub const DEFAULT_ID_PROPERTY: &str = "whatsapp_id";
/// Default for [`HubspotConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn default_url() -> String {
    DEFAULT_URL.to_owned()
}
fn default_objects_path() -> String {
    DEFAULT_OBJECTS_PATH.to_owned()
}
fn default_associations_path() -> String {
    DEFAULT_ASSOCIATIONS_PATH.to_owned()
}
fn default_id_property() -> String {
    DEFAULT_ID_PROPERTY.to_owned()
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// The HubSpot object every WhatsApp message becomes on the contact's timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityObject {
    /// A Communication with `hs_communication_channel_type = WHATS_APP`: shown as a WhatsApp
    /// message on the timeline (the object HubSpot made for this).
    #[default]
    Communications,
    /// A Note (`hs_note_body`): for accounts or apps that cannot use Communications.
    Notes,
}

impl ActivityObject {
    /// The object type in API paths: `communications` or `notes`.
    pub fn object_type(self) -> &'static str {
        match self {
            ActivityObject::Communications => "communications",
            ActivityObject::Notes => "notes",
        }
    }

    /// The property holding the entry's text.
    pub fn body_property(self) -> &'static str {
        match self {
            ActivityObject::Communications => "hs_communication_body",
            ActivityObject::Notes => "hs_note_body",
        }
    }
}

/// HubSpot CRM over its REST API with a private app access token.
///
/// ```toml
/// [connectors.hubspot]
/// kind = "hubspot"
/// token = "pat-eu1-…"                 # private app access token
/// id_property = "whatsapp_id"         # a unique contact property (create it first)
/// # For deal/contact webhooks as an event source (optional, both or neither):
/// app_secret = "…"                    # the app's client secret (signs X-HubSpot-Signature-v3)
/// public_url = "https://wabridge.example.com/connectors/hubspot/webhook"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotConfig {
    /// The private app access token (Settings → Integrations → Private apps), sent as
    /// `Authorization: Bearer <token>`. Scopes: `crm.objects.contacts.read`,
    /// `crm.objects.contacts.write`, and `crm.objects.deals.read` for deal webhooks.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The API's base address, `http` or `https`, without a path prefix.
    #[serde(default = "default_url")]
    pub url: String,
    /// Path prefix of the CRM objects API: `<objects_path>/contacts/batch/upsert`, … The
    /// default is the long-lived `/crm/v3/objects`; HubSpot's date-versioned paths work too,
    /// e.g. `/crm/objects/2026-03`.
    #[serde(default = "default_objects_path")]
    pub objects_path: String,
    /// Path prefix of the v4 associations API: `<associations_path>/associations/{from}/{to}/labels`
    /// (the association type ids, looked up once) and
    /// `<associations_path>/objects/contacts/{id}/associations/{to}` (a contact's entries).
    #[serde(default = "default_associations_path")]
    pub associations_path: String,
    /// The contact property the connector upserts on, holding the WhatsApp number as E.164
    /// digits without `+` (e.g. `96890000001`). It must exist in HubSpot as a property with
    /// **unique values** (Settings → Properties → Create property → "Require unique values").
    #[serde(default = "default_id_property")]
    pub id_property: String,
    /// Optional second unique contact property holding the WhatsApp BSUID. When set, contacts
    /// whose number Meta withholds are upserted on it, and contacts with both get it filled.
    /// When unset, a message from a contact without a phone number fails permanently (it is
    /// dead-lettered with a reason saying to set this key).
    #[serde(default)]
    pub bsuid_property: Option<String>,
    /// What each message becomes: `communications` (default; a WhatsApp message on the
    /// timeline) or `notes`.
    #[serde(default)]
    pub activity: ActivityObject,
    /// HubSpot owner id (`hubspot_owner_id`) to assign the logged messages to. Optional.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Timeout of one HTTP call to HubSpot, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The client secret of the HubSpot app whose webhook subscriptions call wabridge; it
    /// signs every notification (`X-HubSpot-Signature-v3`). Give it with `public_url` to take
    /// HubSpot webhooks as events; leave both out otherwise (webhooks are then answered 404).
    #[serde(default)]
    pub app_secret: Option<Secret>,
    /// The URL HubSpot calls, exactly as set as the app's webhook target URL, e.g.
    /// `https://wabridge.example.com/connectors/hubspot/webhook`. HubSpot signs this URL, so
    /// its scheme, host and port must be what HubSpot sees (not the daemon's listen address).
    /// Its path is used when it has one (a proxy may strip a prefix); otherwise the path
    /// wabridge received.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Extra properties to fetch for the object a webhook notification names (besides the
    /// built-in list per object type and the changed property), e.g. `["deal_currency_code",
    /// "order_number"]`. They appear under `$.object` in the events.
    #[serde(default)]
    pub event_properties: Vec<String>,
}

/// Whether `name` looks like a HubSpot property's internal name: a letter, then letters,
/// digits and `_`.
pub(crate) fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_path(problems: &mut Vec<ConfigProblem>, field: &str, value: &str, example: &str) {
    let path = value.trim();
    if !path.starts_with('/')
        || path.contains(['?', '#', ' ', '\\'])
        || path
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
    {
        problems.push(ConfigProblem::new(
            field,
            format!("must be a path starting with '/', e.g. {example}"),
        ));
    }
}

fn check_url(problems: &mut Vec<ConfigProblem>, field: &str, value: &str, example: &str) {
    match reqwest::Url::parse(value.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => problems.push(ConfigProblem::new(
            field,
            "must start with http:// or https://",
        )),
        Ok(url) if url.host_str().is_none() => {
            problems.push(ConfigProblem::new(field, "must name a host"))
        }
        Ok(url) if url.query().is_some() || url.fragment().is_some() => problems.push(
            ConfigProblem::new(field, "must not carry a query or fragment"),
        ),
        Ok(_) => {}
        Err(err) => problems.push(ConfigProblem::new(
            field,
            format!("is not a valid URL ({err}); expected e.g. {example}"),
        )),
    }
}

impl HubspotConfig {
    /// A configuration with `token` and the defaults for every optional key.
    pub fn new(token: Secret) -> Self {
        HubspotConfig {
            token: Some(token),
            url: default_url(),
            objects_path: default_objects_path(),
            associations_path: default_associations_path(),
            id_property: default_id_property(),
            bsuid_property: None,
            activity: ActivityObject::default(),
            owner_id: None,
            timeout_secs: default_timeout_secs(),
            app_secret: None,
            public_url: None,
            event_properties: Vec::new(),
        }
    }

    /// Whether webhooks are configured (`app_secret` and `public_url`).
    pub fn takes_webhooks(&self) -> bool {
        self.app_secret.is_some() && self.public_url.is_some()
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();

        match &self.token {
            None => problems.push(ConfigProblem::new(
                "token",
                "required: a HubSpot private app access token (Settings → Integrations → \
                 Private apps)",
            )),
            Some(token) if token.is_empty() => {
                problems.push(ConfigProblem::new("token", "must not be empty"))
            }
            Some(token) if token.expose().trim().chars().any(|c| c.is_control()) => problems.push(
                ConfigProblem::new("token", "must not contain control characters"),
            ),
            Some(_) => {}
        }

        check_url(&mut problems, "url", &self.url, DEFAULT_URL);
        if let Ok(url) = reqwest::Url::parse(self.url.trim()) {
            if url.path().trim_end_matches('/').contains("/crm") {
                problems.push(ConfigProblem::new(
                    "url",
                    "give the API's base address (https://api.hubapi.com); API paths go in \
                     objects_path and associations_path",
                ));
            }
        }
        check_path(
            &mut problems,
            "objects_path",
            &self.objects_path,
            DEFAULT_OBJECTS_PATH,
        );
        check_path(
            &mut problems,
            "associations_path",
            &self.associations_path,
            DEFAULT_ASSOCIATIONS_PATH,
        );

        if !is_property_name(self.id_property.trim()) {
            problems.push(ConfigProblem::new(
                "id_property",
                "must be a contact property's internal name (letters, digits, '_'), e.g. \
                 whatsapp_id",
            ));
        }
        if let Some(bsuid) = &self.bsuid_property {
            if !is_property_name(bsuid.trim()) {
                problems.push(ConfigProblem::new(
                    "bsuid_property",
                    "must be a contact property's internal name (letters, digits, '_'), e.g. \
                     whatsapp_bsuid",
                ));
            } else if bsuid.trim() == self.id_property.trim() {
                problems.push(ConfigProblem::new(
                    "bsuid_property",
                    "must differ from id_property (a number and a BSUID are different values)",
                ));
            }
        }

        if let Some(owner) = &self.owner_id {
            let owner = owner.trim();
            if owner.is_empty() || !owner.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(ConfigProblem::new(
                    "owner_id",
                    "must be a HubSpot owner id (digits), see GET /crm/v3/owners",
                ));
            }
        }

        if self.timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "timeout_secs",
                "must be at least 1 second",
            ));
        }

        match (&self.app_secret, &self.public_url) {
            (Some(secret), Some(url)) => {
                if secret.is_empty() {
                    problems.push(ConfigProblem::new("app_secret", "must not be empty"));
                }
                check_url(
                    &mut problems,
                    "public_url",
                    url,
                    "https://wabridge.example.com/connectors/hubspot/webhook",
                );
            }
            (Some(_), None) => problems.push(ConfigProblem::new(
                "public_url",
                "required with app_secret: the URL HubSpot calls (it is part of what HubSpot \
                 signs)",
            )),
            (None, Some(_)) => problems.push(ConfigProblem::new(
                "app_secret",
                "required with public_url: the HubSpot app's client secret, to verify \
                 X-HubSpot-Signature-v3",
            )),
            (None, None) => {}
        }

        for (index, name) in self.event_properties.iter().enumerate() {
            if !is_property_name(name.trim()) {
                problems.push(ConfigProblem::new(
                    format!("event_properties[{index}]"),
                    "must be a property's internal name (letters, digits, '_')",
                ));
            }
        }

        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &HubspotConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn accepts_a_token_and_fills_defaults() {
        let config: HubspotConfig = serde_json::from_value(serde_json::json!({
            "token": "pat-eu1-0000"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.url, DEFAULT_URL);
        assert_eq!(config.objects_path, DEFAULT_OBJECTS_PATH);
        assert_eq!(config.associations_path, DEFAULT_ASSOCIATIONS_PATH);
        assert_eq!(config.id_property, DEFAULT_ID_PROPERTY);
        assert_eq!(config.activity, ActivityObject::Communications);
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(!config.takes_webhooks());
    }

    #[test]
    fn reads_every_key() {
        let config: HubspotConfig = serde_json::from_value(serde_json::json!({
            "token": "pat", "url": "http://127.0.0.1:9", "objects_path": "/crm/objects/2026-03",
            "associations_path": "/crm/v4", "id_property": "wa_number",
            "bsuid_property": "wa_bsuid", "activity": "notes", "owner_id": "123",
            "timeout_secs": 5, "app_secret": "s", "public_url": "https://w.example.com/hook",
            "event_properties": ["deal_currency_code"]
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.activity, ActivityObject::Notes);
        assert!(config.takes_webhooks());
    }

    #[test]
    fn rejects_unknown_keys_and_activities() {
        assert!(serde_json::from_value::<HubspotConfig>(serde_json::json!({
            "token": "t", "tokn": "x"
        }))
        .is_err());
        assert!(serde_json::from_value::<HubspotConfig>(serde_json::json!({
            "token": "t", "activity": "emails"
        }))
        .is_err());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = HubspotConfig::new(Secret::new(" "));
        config.url = "ftp://api.hubapi.com".into();
        config.objects_path = "crm/v3/objects".into();
        config.associations_path = "/crm/../v4".into();
        config.id_property = "whatsapp id".into();
        config.bsuid_property = Some("9bsuid".into());
        config.owner_id = Some("me".into());
        config.timeout_secs = 0;
        config.app_secret = Some(Secret::new("s"));
        config.event_properties = vec!["ok".into(), "not ok".into()];
        assert_eq!(
            fields(&config),
            [
                "token",
                "url",
                "objects_path",
                "associations_path",
                "id_property",
                "bsuid_property",
                "owner_id",
                "timeout_secs",
                "public_url",
                "event_properties[1]"
            ]
        );
    }

    #[test]
    fn requires_a_token() {
        let config: HubspotConfig = serde_json::from_value(serde_json::json!({})).expect("parses");
        assert_eq!(fields(&config), ["token"]);
    }

    #[test]
    fn webhooks_need_both_secret_and_public_url() {
        let mut config = HubspotConfig::new(Secret::new("t"));
        config.public_url = Some("https://w.example.com/hook".into());
        assert_eq!(fields(&config), ["app_secret"]);
        config.app_secret = Some(Secret::new("s"));
        config.public_url = Some("https://w.example.com/hook?x=1".into());
        assert_eq!(fields(&config), ["public_url"]);
    }

    #[test]
    fn rejects_an_api_path_in_the_url_and_equal_properties() {
        let mut config = HubspotConfig::new(Secret::new("t"));
        config.url = "https://api.hubapi.com/crm/v3/objects".into();
        config.bsuid_property = Some("whatsapp_id".into());
        assert_eq!(fields(&config), ["url", "bsuid_property"]);
    }
}
