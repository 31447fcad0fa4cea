//! The `[connectors.<name>]` section of a Tryton connector.

use serde::Deserialize;

use crate::{ConfigProblem, Secret};

/// Default timeout of one JSON-RPC call, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// The contact mechanism type a WhatsApp number is stored as on a new party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MechanismType {
    /// `mobile` (default).
    #[default]
    Mobile,
    /// `phone`.
    Phone,
}

impl MechanismType {
    /// Tryton's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismType::Mobile => "mobile",
            MechanismType::Phone => "phone",
        }
    }
}

/// Which sale transition is reported as an `order.paid` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidWhen {
    /// The sale entered the state *Processing* (it was confirmed and Tryton processed it): the
    /// moment a shop that takes payment before confirming knows the order is paid. Default.
    #[default]
    Processing,
    /// The sale's invoice state became *Paid* (all its invoices are paid in accounting).
    InvoicePaid,
}

impl PaidWhen {
    /// The `ir.model.log` target Tryton writes for the transition, e.g. `state:processing`.
    pub fn log_target(self) -> &'static str {
        match self {
            PaidWhen::Processing => "state:processing",
            PaidWhen::InvoicePaid => "invoice_state:paid",
        }
    }

    /// The last part of the event id, `tryton-sale-<id>-<this>`.
    pub fn event_suffix(self) -> &'static str {
        match self {
            PaidWhen::Processing => "processing",
            PaidWhen::InvoicePaid => "paid",
        }
    }
}

/// Tryton (trytond 7.0 or later, tested with 8.2) over JSON-RPC with a user's password.
///
/// ```toml
/// [connectors.shop]
/// kind = "tryton"
/// url = "https://erp.example.com"     # where the Tryton client connects, without the database
/// database = "shop"                   # the database name of the Tryton login dialog
/// username = "wabridge"               # a Tryton user (see the module docs for its groups)
/// password = "…"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonConfig {
    /// The server's address, `http` or `https`, as the Tryton client connects to it; a path
    /// prefix is kept (a reverse proxy). Calls go to `<url>/<database>/rpc/`.
    pub url: String,
    /// The database name (what the Tryton client's login dialog calls *Database*).
    pub database: String,
    /// The Tryton user the connector logs in as.
    pub username: String,
    /// That user's password. Only sent in the login call; later calls carry the session.
    pub password: Secret,
    /// Timeout of one JSON-RPC call, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The type of the contact mechanism a new party gets for its WhatsApp number: `mobile`
    /// (default) or `phone`. Existing parties are found by a `mobile` **or** `phone` mechanism.
    #[serde(default)]
    pub mechanism_type: MechanismType,
    /// Which sale transition is an `order.paid` event: `processing` (default; the sale was
    /// confirmed) or `invoice_paid` (its invoices are paid).
    #[serde(default)]
    pub paid_when: PaidWhen,
}

fn check_url(problems: &mut Vec<ConfigProblem>, value: &str) {
    match reqwest::Url::parse(value.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => problems.push(ConfigProblem::new(
            "url",
            "must start with http:// or https://",
        )),
        Ok(url) if url.host_str().is_none() => {
            problems.push(ConfigProblem::new("url", "must name a host"))
        }
        Ok(url) if url.query().is_some() || url.fragment().is_some() => problems.push(
            ConfigProblem::new("url", "must not carry a query or fragment"),
        ),
        Ok(url) if url.path().trim_end_matches('/').ends_with("/rpc") => {
            problems.push(ConfigProblem::new(
                "url",
                "give the server's address without the database or /rpc/ (e.g. \
                 http://127.0.0.1:8000); the database goes in `database`",
            ))
        }
        Ok(_) => {}
        Err(err) => problems.push(ConfigProblem::new(
            "url",
            format!("is not a valid URL ({err}); expected e.g. http://127.0.0.1:8000"),
        )),
    }
}

impl TrytonConfig {
    /// A configuration with the required keys and the defaults for every optional one.
    pub fn new(
        url: impl Into<String>,
        database: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        TrytonConfig {
            url: url.into(),
            database: database.into(),
            username: username.into(),
            password,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            mechanism_type: MechanismType::default(),
            paid_when: PaidWhen::default(),
        }
    }

    /// Checks the section without any I/O and returns every problem found.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        check_url(&mut problems, &self.url);

        let database = self.database.trim();
        if database.is_empty() {
            problems.push(ConfigProblem::new(
                "database",
                "required: the Tryton database name (as in the Tryton client's login dialog)",
            ));
        } else if database
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
            || database == "."
            || database == ".."
        {
            problems.push(ConfigProblem::new(
                "database",
                "must be a database name without '/', '\\' or spaces",
            ));
        }

        let username = self.username.trim();
        if username.is_empty() {
            problems.push(ConfigProblem::new(
                "username",
                "required: the Tryton user to log in as",
            ));
        } else if username.chars().any(char::is_control) {
            problems.push(ConfigProblem::new(
                "username",
                "must not contain control characters",
            ));
        }

        if self.password.is_empty() {
            problems.push(ConfigProblem::new(
                "password",
                "required: the Tryton user's password",
            ));
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

    fn fields(config: &TrytonConfig) -> Vec<String> {
        config.validate().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn accepts_the_required_keys_and_fills_defaults() {
        let config: TrytonConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8000", "database": "shop", "username": "wabridge",
            "password": "pw"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(config.mechanism_type, MechanismType::Mobile);
        assert_eq!(config.paid_when, PaidWhen::Processing);
    }

    #[test]
    fn reads_every_key() {
        let config: TrytonConfig = serde_json::from_value(serde_json::json!({
            "url": "https://erp.example.com/tryton", "database": "shop", "username": "wabridge",
            "password": "pw", "timeout_secs": 5, "mechanism_type": "phone",
            "paid_when": "invoice_paid"
        }))
        .expect("parses");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.mechanism_type.as_str(), "phone");
        assert_eq!(config.paid_when.log_target(), "invoice_state:paid");
        assert_eq!(config.paid_when.event_suffix(), "paid");
    }

    #[test]
    fn rejects_unknown_keys_and_values() {
        let base = serde_json::json!({
            "url": "http://127.0.0.1:8000", "database": "shop", "username": "u", "password": "p"
        });
        for (key, value) in [
            ("passwd", "x"),
            ("mechanism_type", "fax"),
            ("paid_when", "shipped"),
        ] {
            let mut section = base.clone();
            section[key] = serde_json::Value::from(value);
            assert!(
                serde_json::from_value::<TrytonConfig>(section).is_err(),
                "{key} = {value}"
            );
        }
        // The required keys are required by the parser too.
        assert!(serde_json::from_value::<TrytonConfig>(serde_json::json!({
            "url": "http://127.0.0.1:8000", "database": "shop", "username": "u"
        }))
        .is_err());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut config = TrytonConfig::new("ftp://erp.example.com", "my db", " ", Secret::new(""));
        config.timeout_secs = 0;
        assert_eq!(
            fields(&config),
            ["url", "database", "username", "password", "timeout_secs"]
        );
    }

    #[test]
    fn rejects_a_database_or_rpc_path_in_the_url() {
        let config = TrytonConfig::new(
            "http://127.0.0.1:8000/shop/rpc/",
            "shop",
            "u",
            Secret::new("p"),
        );
        let problems = config.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "url");
        assert!(problems[0].message.contains("database"), "{problems:?}");
        for url in ["not a url", "http://127.0.0.1:8000/?db=shop"] {
            let config = TrytonConfig::new(url, "shop", "u", Secret::new("p"));
            assert_eq!(fields(&config), ["url"], "{url}");
        }
        let config = TrytonConfig::new("http://127.0.0.1:8000", "a/b", "u", Secret::new("p"));
        assert_eq!(fields(&config), ["database"]);
    }
}
