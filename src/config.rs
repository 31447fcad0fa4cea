//! Configuration: `wabridge.toml` read by the `config` crate, every key overridable by a
//! `WABRIDGE__SECTION__KEY` environment variable.
//!
//! Loading is two steps, as everywhere in wabridge: [`load`] parses and runs the pure
//! validation, collecting **every** problem with the file line and field path it concerns;
//! building the parts (opening the store, the connectors) happens later in `app`. The daemon
//! refuses to start when any problem is found, and `wabridge validate` runs the same code.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use wabridge_connectors::{ConnectorConfig, Secret};

/// Prefix of environment overrides: `WABRIDGE__SERVER__LISTEN=127.0.0.1:9000`.
pub const ENV_PREFIX: &str = "WABRIDGE";

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// `[server]`
    pub server: ServerConfig,
    /// `[store]`
    pub store: StoreConfig,
    /// `[whatsapp]`
    pub whatsapp: WhatsAppConfig,
    /// `[queue]`
    pub queue: QueueConfig,
    /// `[admin]`
    pub admin: AdminConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[mappings]`
    pub mappings: MappingsConfig,
    /// `[routing]`: the routing and bot rules, when configured.
    pub routing: Option<RoutingConfig>,
    /// `[policy]`
    pub policy: crate::sync::consent::PolicySettings,
    /// `[sources.<name>]`: CRM/shop/helpdesk systems allowed to post events.
    pub sources: BTreeMap<String, crate::ingress::sources::SourceConfig>,
    /// `[connectors.<name>]`, by name.
    pub connectors: BTreeMap<String, ConnectorConfig>,
}

/// `[server]`: the public HTTP listener (Meta's webhook, health).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on, e.g. `127.0.0.1:8080`. Put a TLS proxy in front: Meta
    /// only calls HTTPS endpoints.
    #[serde(default = "ServerConfig::default_listen")]
    pub listen: String,
    /// Seconds that in-flight jobs get to finish on SIGTERM before the daemon exits anyway
    /// (unfinished jobs simply stay queued).
    #[serde(default = "ServerConfig::default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    fn default_listen() -> String {
        "127.0.0.1:8080".to_owned()
    }
    fn default_shutdown_grace_secs() -> u64 {
        10
    }
}

/// `[store]`: where the embedded database lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The sled directory (created if missing). One daemon per directory.
    #[serde(default = "StoreConfig::default_path")]
    pub path: PathBuf,
}

impl StoreConfig {
    fn default_path() -> PathBuf {
        PathBuf::from("./data")
    }
}

/// `[whatsapp]`: the Meta app and the Graph API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppConfig {
    /// App secrets that sign webhooks (`X-Hub-Signature-256`). Several during a rotation; in
    /// the environment, comma-separated: `WABRIDGE__WHATSAPP__APP_SECRETS=s1,s2`.
    #[serde(deserialize_with = "secrets_from_string_or_list")]
    pub app_secrets: Vec<Secret>,
    /// The token Meta echoes in the subscription handshake (`hub.verify_token`).
    pub verify_token: Secret,
    /// A system-user access token for the Graph API (media downloads, sends).
    pub access_token: Secret,
    /// Graph API base URL.
    #[serde(default = "WhatsAppConfig::default_graph_url")]
    pub graph_url: String,
    /// Graph API version, e.g. `v23.0`.
    #[serde(default = "WhatsAppConfig::default_api_version")]
    pub api_version: String,
    /// The business numbers (`[[whatsapp.numbers]]`): the first one sends template messages
    /// decided by mappings; every WABA listed has its template catalog synced.
    #[serde(default)]
    pub numbers: Vec<NumberConfig>,
    /// Outbound pacing shared by every number (`[whatsapp.rate_limit]`: per-recipient pair
    /// limit, slow-down after 130429; `messages_per_second` is the default for numbers without
    /// their own `mps`).
    #[serde(default)]
    pub rate_limit: crate::whatsapp::ratelimit::RateLimitConfig,
    /// Minutes between template catalog syncs (webhooks keep it current in between).
    #[serde(default = "WhatsAppConfig::default_templates_sync_minutes")]
    pub templates_sync_minutes: u64,
    /// Largest media file downloaded from Meta, in bytes (larger ones are noted, not attached).
    #[serde(default = "WhatsAppConfig::default_media_max_bytes")]
    pub media_max_bytes: u64,
}

impl WhatsAppConfig {
    fn default_graph_url() -> String {
        "https://graph.facebook.com".to_owned()
    }
    fn default_api_version() -> String {
        "v23.0".to_owned()
    }
    fn default_media_max_bytes() -> u64 {
        100 * 1024 * 1024
    }
    fn default_templates_sync_minutes() -> u64 {
        60
    }
}

/// `[[whatsapp.numbers]]`: one business phone number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// Meta's `phone_number_id`.
    pub phone_number_id: String,
    /// The WhatsApp Business Account it belongs to (its template catalog is synced).
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Messages per second for this number (80 by default; up to 1,000 once Meta upgraded it).
    #[serde(default)]
    pub mps: Option<u32>,
}

impl WhatsAppConfig {
    /// The number template sends go from: the first configured one.
    pub fn sending_number(&self) -> Option<&str> {
        self.numbers.first().map(|n| n.phone_number_id.as_str())
    }

    /// Every distinct WABA id configured.
    pub fn waba_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .numbers
            .iter()
            .filter_map(|n| n.waba_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// `[queue]`: retries and dead letters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Jobs run at the same time (each for a different conversation and destination).
    #[serde(default = "QueueConfig::default_workers")]
    pub workers: usize,
    /// First retry delay in milliseconds; doubles with each attempt (with jitter).
    #[serde(default = "QueueConfig::default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest retry delay in seconds.
    #[serde(default = "QueueConfig::default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Attempts before a job goes to the dead letters.
    #[serde(default = "QueueConfig::default_max_attempts")]
    pub max_attempts: u32,
    /// Hours after its first attempt when a still-failing job goes to the dead letters.
    #[serde(default = "QueueConfig::default_max_age_hours")]
    pub max_age_hours: u64,
    /// Seconds that jobs found at start-up (left by a previous process, maybe mid-request)
    /// wait before their first attempt, so a request the previous process had in flight has
    /// finished remotely before wabridge looks up whether it took effect.
    #[serde(default = "QueueConfig::default_recovery_grace_secs")]
    pub recovery_grace_secs: u64,
    /// Seconds between two looks for agents' replies in the ticketing systems.
    #[serde(default = "QueueConfig::default_reply_poll_secs")]
    pub reply_poll_secs: u64,
}

impl QueueConfig {
    fn default_workers() -> usize {
        4
    }
    fn default_initial_backoff_ms() -> u64 {
        1_000
    }
    fn default_max_backoff_secs() -> u64 {
        600
    }
    fn default_max_attempts() -> u32 {
        50
    }
    fn default_max_age_hours() -> u64 {
        72
    }
    fn default_recovery_grace_secs() -> u64 {
        30
    }
    fn default_reply_poll_secs() -> u64 {
        10
    }

    /// The retry schedule these settings describe.
    pub fn retry_policy(&self) -> crate::queue::RetryPolicy {
        crate::queue::RetryPolicy {
            initial: Duration::from_millis(self.initial_backoff_ms),
            max: Duration::from_secs(self.max_backoff_secs),
            max_attempts: self.max_attempts,
            max_age: Duration::from_secs(self.max_age_hours * 3600),
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            workers: Self::default_workers(),
            initial_backoff_ms: Self::default_initial_backoff_ms(),
            max_backoff_secs: Self::default_max_backoff_secs(),
            max_attempts: Self::default_max_attempts(),
            max_age_hours: Self::default_max_age_hours(),
            recovery_grace_secs: Self::default_recovery_grace_secs(),
            reply_poll_secs: Self::default_reply_poll_secs(),
        }
    }
}

/// `[admin]`: the localhost API the CLI uses while the daemon runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback address of the admin API.
    #[serde(default = "AdminConfig::default_listen")]
    pub listen: String,
    /// Bearer token for the admin API. When absent, one is generated at start and written to
    /// `<store.path>/admin.token` (mode 0600), where the CLI finds it.
    #[serde(default)]
    pub token: Option<Secret>,
}

impl AdminConfig {
    fn default_listen() -> String {
        "127.0.0.1:8081".to_owned()
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Self::default_listen(),
            token: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `wabridge=debug,info`. `RUST_LOG` wins when set.
    #[serde(default = "LogConfig::default_level")]
    pub level: String,
    /// Redact phone numbers and message bodies in logs. Only turn off on a test system.
    #[serde(default = "LogConfig::default_redact")]
    pub redact: bool,
}

impl LogConfig {
    fn default_level() -> String {
        "info".to_owned()
    }
    fn default_redact() -> bool {
        true
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: Self::default_level(),
            redact: Self::default_redact(),
        }
    }
}

/// `[mappings]`: where the admin-edited mapping files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingsConfig {
    /// Directory of `*.toml` mapping files, relative to the configuration file's directory.
    #[serde(default = "MappingsConfig::default_dir")]
    pub dir: PathBuf,
}

impl MappingsConfig {
    fn default_dir() -> PathBuf {
        PathBuf::from("mappings")
    }
}

/// `[routing]`: departments, business hours, menus and auto-replies (see `mappings/routing.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The routing file, relative to the configuration file's directory, e.g.
    /// `mappings/routing.toml`.
    pub file: PathBuf,
}

impl Default for MappingsConfig {
    fn default() -> Self {
        MappingsConfig {
            dir: Self::default_dir(),
        }
    }
}

impl Config {
    /// The routing file, resolved against the configuration file's directory, when configured.
    pub fn routing_file(&self) -> Option<PathBuf> {
        let file = &self.routing.as_ref()?.file;
        if file.is_absolute() {
            return Some(file.clone());
        }
        Some(
            self.file
                .parent()
                .map(|dir| dir.join(file))
                .unwrap_or_else(|| file.clone()),
        )
    }

    /// The mappings directory, resolved against the configuration file's directory.
    pub fn mappings_dir(&self) -> PathBuf {
        if self.mappings.dir.is_absolute() {
            return self.mappings.dir.clone();
        }
        self.file
            .parent()
            .map(|dir| dir.join(&self.mappings.dir))
            .unwrap_or_else(|| self.mappings.dir.clone())
    }
}

/// One configuration problem, located in the file when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line in the config file (1-based), when the field is written there.
    pub line: Option<usize>,
    /// Field path, e.g. `connectors.helpdesk.url`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in one configuration file.
#[derive(Debug)]
pub struct Problems {
    /// The file.
    pub file: PathBuf,
    /// The problems, in file order where known.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for problem in &self.problems {
            match problem.line {
                Some(line) => writeln!(f, "{file}:{line}: {}: {}", problem.path, problem.message)?,
                None => writeln!(f, "{file}: {}: {}", problem.path, problem.message)?,
            }
        }
        write!(
            f,
            "{} problem{} in {file}",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Problems {}

const SECTIONS: &[&str] = &[
    "server",
    "store",
    "whatsapp",
    "queue",
    "admin",
    "log",
    "mappings",
    "routing",
    "policy",
    "sources",
    "connectors",
];

/// Reads, overrides from the environment and validates. Returns every problem at once.
pub fn load(file: &Path) -> Result<Config, Problems> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    load_with_env(file, env)
}

/// [`load`] with an explicit environment (tests).
pub fn load_with_env(file: &Path, env: Vec<(String, String)>) -> Result<Config, Problems> {
    let fail = |problems: Vec<Problem>| Problems {
        file: file.to_path_buf(),
        problems,
    };
    let text = std::fs::read_to_string(file).map_err(|err| {
        fail(vec![Problem {
            line: None,
            path: "(file)".into(),
            message: format!("cannot read the configuration file: {err}"),
        }])
    })?;
    let source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.into_iter().collect()));
    let raw = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(source)
        .build()
        .map_err(|err| {
            fail(vec![Problem {
                line: toml_error_line(&err.to_string()),
                path: "(syntax)".into(),
                message: err.to_string(),
            }])
        })?;

    let mut problems = Vec::new();
    let locate = |path: &str| locate_nearest(&text, path);

    let top: BTreeMap<String, config::Value> = raw.clone().try_deserialize().unwrap_or_default();
    for key in top.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(Problem {
                line: locate(key),
                path: key.clone(),
                message: format!("unknown section; expected one of {}", SECTIONS.join(", ")),
            });
        }
    }

    fn section<T: for<'de> Deserialize<'de>>(
        raw: &config::Config,
        key: &str,
        text: &str,
        problems: &mut Vec<Problem>,
        default: Option<T>,
    ) -> Option<T> {
        match raw.get::<T>(key) {
            Ok(value) => Some(value),
            Err(config::ConfigError::NotFound(_)) if default.is_some() => default,
            Err(err) => {
                let (path, message) = describe_serde_error(key, &err.to_string());
                problems.push(Problem {
                    line: locate_nearest(text, &path),
                    path,
                    message,
                });
                None
            }
        }
    }
    // Sections whose every key has a default may be left out entirely.
    let empty = || serde_json::from_str::<ServerConfig>("{}").ok();
    let server = section(&raw, "server", &text, &mut problems, empty());
    let store = section(
        &raw,
        "store",
        &text,
        &mut problems,
        serde_json::from_str("{}").ok(),
    );
    let whatsapp: Option<WhatsAppConfig> = section(&raw, "whatsapp", &text, &mut problems, None);
    let queue = section(
        &raw,
        "queue",
        &text,
        &mut problems,
        Some(QueueConfig::default()),
    );
    let admin = section(
        &raw,
        "admin",
        &text,
        &mut problems,
        Some(AdminConfig::default()),
    );
    let log = section(
        &raw,
        "log",
        &text,
        &mut problems,
        Some(LogConfig::default()),
    );
    let policy: Option<crate::sync::consent::PolicySettings> = section(
        &raw,
        "policy",
        &text,
        &mut problems,
        Some(crate::sync::consent::PolicySettings::default()),
    );
    if let Some(policy) = &policy {
        for (field, message) in policy.validate() {
            let path = format!("policy.{field}");
            problems.push(Problem {
                line: locate(&path),
                path,
                message,
            });
        }
    }
    let mappings = section(
        &raw,
        "mappings",
        &text,
        &mut problems,
        Some(MappingsConfig::default()),
    );
    let routing = if raw.get::<config::Value>("routing").is_ok() {
        section::<RoutingConfig>(&raw, "routing", &text, &mut problems, None)
    } else {
        None
    };

    let mut connectors = BTreeMap::new();
    let names: BTreeMap<String, config::Value> = raw.get("connectors").unwrap_or_default();
    if names.is_empty() {
        problems.push(Problem {
            line: None,
            path: "connectors".into(),
            message: "no destination configured; add e.g. [connectors.archive] kind = \"files\""
                .into(),
        });
    }
    for name in names.keys() {
        let key = format!("connectors.{name}");
        if name == crate::sync::dispatch::OUTBOX || name.contains('/') {
            problems.push(Problem {
                line: locate(&key),
                path: key.clone(),
                message: format!(
                    "\"{name}\" cannot name a connector (reserved for outbound sends, or contains '/')"
                ),
            });
            continue;
        }
        let kind: Option<String> = raw.get(&format!("{key}.kind")).ok();
        match kind {
            None => problems.push(Problem {
                line: locate(&key),
                path: format!("{key}.kind"),
                message: format!("missing; one of {}", ConnectorConfig::KINDS.join(", ")),
            }),
            Some(kind) if !ConnectorConfig::KINDS.contains(&kind.as_str()) => {
                problems.push(Problem {
                    line: locate(&format!("{key}.kind")),
                    path: format!("{key}.kind"),
                    message: format!(
                        "unknown connector kind \"{kind}\"; one of {}",
                        ConnectorConfig::KINDS.join(", ")
                    ),
                })
            }
            Some(_) => {
                if let Some(config) =
                    section::<ConnectorConfig>(&raw, &key, &text, &mut problems, None)
                {
                    for p in config.validate() {
                        let path = format!("{key}.{}", p.field);
                        problems.push(Problem {
                            line: locate(&path).or_else(|| locate(&key)),
                            path,
                            message: p.message,
                        });
                    }
                    connectors.insert(name.clone(), config);
                }
            }
        }
    }

    let mut sources = BTreeMap::new();
    let source_names: BTreeMap<String, config::Value> = raw.get("sources").unwrap_or_default();
    for name in source_names.keys() {
        let key = format!("sources.{name}");
        if let Some(source) =
            section::<crate::ingress::sources::SourceConfig>(&raw, &key, &text, &mut problems, None)
        {
            for (field, message) in source.validate() {
                let path = format!("{key}.{field}");
                problems.push(Problem {
                    line: locate(&path),
                    path,
                    message,
                });
            }
            sources.insert(name.clone(), source);
        }
    }
    if !sources.is_empty() {
        if let Some(whatsapp) = &whatsapp {
            if whatsapp.numbers.is_empty() {
                problems.push(Problem {
                    line: locate("whatsapp"),
                    path: "whatsapp.numbers".into(),
                    message: "required when [sources] are configured: add [[whatsapp.numbers]] with the phone_number_id template sends go from".into(),
                });
            }
        }
    }
    if let Some(server) = &server {
        check_addr(&mut problems, &text, "server.listen", &server.listen);
    }
    if let Some(admin) = &admin {
        if let Some(addr) = check_addr(&mut problems, &text, "admin.listen", &admin.listen) {
            if !addr.ip().is_loopback() {
                problems.push(Problem {
                    line: locate("admin.listen"),
                    path: "admin.listen".into(),
                    message: "the admin API must listen on a loopback address".into(),
                });
            }
        }
    }
    if let Some(whatsapp) = &whatsapp {
        for p in whatsapp.validate() {
            problems.push(Problem {
                line: locate(&p.0),
                path: p.0,
                message: p.1,
            });
        }
    }
    if let Some(queue) = &queue {
        if queue.workers == 0 {
            problems.push(Problem {
                line: locate("queue.workers"),
                path: "queue.workers".into(),
                message: "must be at least 1".into(),
            });
        }
        if queue.max_attempts == 0 {
            problems.push(Problem {
                line: locate("queue.max_attempts"),
                path: "queue.max_attempts".into(),
                message: "must be at least 1".into(),
            });
        }
    }
    if let Some(log) = &log {
        if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
            problems.push(Problem {
                line: locate("log.level"),
                path: "log.level".into(),
                message: format!("\"{}\" is not a valid log filter", log.level),
            });
        }
    }

    match (server, store, whatsapp, queue, admin, log, mappings, policy) {
        (
            Some(server),
            Some(store),
            Some(whatsapp),
            Some(queue),
            Some(admin),
            Some(log),
            Some(mappings),
            Some(policy),
        ) if problems.is_empty() => Ok(Config {
            file: file.to_path_buf(),
            server,
            store,
            whatsapp,
            queue,
            admin,
            log,
            mappings,
            routing,
            policy,
            sources,
            connectors,
        }),
        _ => {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(fail(problems))
        }
    }
}

impl WhatsAppConfig {
    /// Pure checks: (field path, message) for each problem.
    fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.app_secrets.is_empty() || self.app_secrets.iter().any(Secret::is_empty) {
            problems.push((
                "whatsapp.app_secrets".into(),
                "at least one non-empty app secret is required (Meta App Dashboard > App settings > Basic)".into(),
            ));
        }
        if self.verify_token.is_empty() {
            problems.push(("whatsapp.verify_token".into(), "must not be empty".into()));
        }
        if self.access_token.is_empty() {
            problems.push(("whatsapp.access_token".into(), "must not be empty".into()));
        }
        for (index, number) in self.numbers.iter().enumerate() {
            let path = format!("whatsapp.numbers[{index}]");
            let digits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit());
            if !digits(&number.phone_number_id) {
                problems.push((
                    format!("{path}.phone_number_id"),
                    format!(
                        "\"{}\" is not a phone number id (digits)",
                        number.phone_number_id
                    ),
                ));
            }
            if let Some(waba) = &number.waba_id {
                if !digits(waba) {
                    problems.push((
                        format!("{path}.waba_id"),
                        format!("\"{waba}\" is not a WhatsApp Business Account id (digits)"),
                    ));
                }
            }
            if let Some(mps) = number.mps {
                if mps == 0 || mps > crate::whatsapp::ratelimit::MAX_MESSAGES_PER_SECOND {
                    problems.push((
                        format!("{path}.mps"),
                        format!(
                            "{mps} is outside 1..={}",
                            crate::whatsapp::ratelimit::MAX_MESSAGES_PER_SECOND
                        ),
                    ));
                }
            }
        }
        for (field, message) in self.rate_limit.validate() {
            problems.push((format!("whatsapp.rate_limit.{field}"), message));
        }
        if self.templates_sync_minutes == 0 {
            problems.push((
                "whatsapp.templates_sync_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        if !(self.graph_url.starts_with("https://") || self.graph_url.starts_with("http://")) {
            problems.push((
                "whatsapp.graph_url".into(),
                format!("\"{}\" is not an http(s) URL", self.graph_url),
            ));
        }
        let version_ok = self
            .api_version
            .strip_prefix('v')
            .map(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .unwrap_or(false);
        if !version_ok {
            problems.push((
                "whatsapp.api_version".into(),
                format!(
                    "\"{}\" is not a Graph API version like v23.0",
                    self.api_version
                ),
            ));
        }
        problems
    }
}

fn check_addr(
    problems: &mut Vec<Problem>,
    text: &str,
    path: &str,
    value: &str,
) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(Problem {
                line: locate_nearest(text, path),
                path: path.into(),
                message: format!("\"{value}\" is not an address like 127.0.0.1:8080"),
            });
            None
        }
    }
}

/// Accepts `["a", "b"]` in the file or `a,b` from the environment.
fn secrets_from_string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(Secret::new).collect(),
    })
}

/// Turns a `config` error into a field path and a message without the crate's decorations.
fn describe_serde_error(section: &str, message: &str) -> (String, String) {
    // config appends " for key `a.b`" (sometimes with a source origin); serde names unknown
    // and missing fields in backticks.
    let mut text = message.to_owned();
    let mut path = section.to_owned();
    if let Some(idx) = text.find(" for key `") {
        let rest = &text[idx + 10..];
        if let Some(end) = rest.find('`') {
            path = rest[..end].to_owned();
        }
        text.truncate(idx);
    }
    for (marker, close) in [
        ("unknown field `", '`'),
        ("missing field `", '`'),
        ("missing configuration field \"", '"'),
    ] {
        if let Some(idx) = text.find(marker) {
            let rest = &text[idx + marker.len()..];
            if let Some(end) = rest.find(close) {
                let field = rest[..end].rsplit('.').next().unwrap_or_default();
                if !path.ends_with(&format!(".{field}")) {
                    path = format!("{path}.{field}");
                }
            }
        }
    }
    (path, text)
}

fn toml_error_line(message: &str) -> Option<usize> {
    // toml errors read "TOML parse error at line 3, column 7".
    let idx = message.find("line ")?;
    message[idx + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// [`locate_line`] for the path, else for its nearest enclosing table (a missing key is
/// reported at its section's header).
fn locate_nearest(text: &str, path: &str) -> Option<usize> {
    let mut path = path;
    loop {
        if let Some(line) = locate_line(text, path) {
            return Some(line);
        }
        path = &path[..path.rfind('.')?];
    }
}

/// Finds the line (1-based) where a dotted path is written: `connectors.helpdesk.url` is the
/// `url = …` line under `[connectors.helpdesk]`; a table path is its header line.
pub fn locate_line(text: &str, path: &str) -> Option<usize> {
    let mut table = String::new();
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let header = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            table = header.replace(['"', ' '], "");
            if table == path {
                return Some(idx + 1);
            }
            continue;
        }
        let Some((key, _)) = trimmed.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        let full = if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        };
        if full == path {
            return Some(idx + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"

[store]
path = "./data"

[whatsapp]
app_secrets = ["s1"]
verify_token = "vt"
access_token = "at"

[connectors.archive]
kind = "files"
"#;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn loads_a_good_file_with_defaults() {
        let file = write(GOOD);
        let config = load_with_env(file.path(), vec![]).expect("valid");
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.whatsapp.api_version, "v23.0");
        assert_eq!(config.queue.workers, 4);
        assert!(config.log.redact);
        assert!(config.connectors.contains_key("archive"));
    }

    #[test]
    fn environment_overrides_file_and_splits_secret_lists() {
        let file = write(GOOD);
        let config = load_with_env(
            file.path(),
            vec![
                ("WABRIDGE__SERVER__LISTEN".into(), "127.0.0.1:9000".into()),
                ("WABRIDGE__WHATSAPP__APP_SECRETS".into(), "s1,s2".into()),
                ("WABRIDGE__QUEUE__WORKERS".into(), "7".into()),
                ("WABRIDGE__WHATSAPP__VERIFY_TOKEN".into(), "0123".into()),
            ],
        )
        .expect("valid");
        assert_eq!(config.server.listen, "127.0.0.1:9000");
        let secrets: Vec<&str> = config
            .whatsapp
            .app_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["s1", "s2"]);
        assert_eq!(config.queue.workers, 7);
        assert_eq!(config.whatsapp.verify_token.expose(), "0123");
    }

    #[test]
    fn reports_every_problem_with_line_and_path() {
        let file = write(
            r#"[server]
listen = "not an address"

[whatsapp]
app_secrets = []
verify_token = "vt"
access_token = "at"
api_version = "23"

[queue]
workers = 0

[connectors.helpdesk]
kind = "zammad"

[connectors.archive]
kind = "files"
colour = "blue"
"#,
        );
        let problems = load_with_env(file.path(), vec![])
            .expect_err("invalid")
            .problems;
        let seen: Vec<(Option<usize>, &str)> =
            problems.iter().map(|p| (p.line, p.path.as_str())).collect();
        assert!(seen.contains(&(Some(2), "server.listen")), "{seen:?}");
        assert!(
            seen.contains(&(Some(5), "whatsapp.app_secrets")),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(Some(8), "whatsapp.api_version")),
            "{seen:?}"
        );
        assert!(seen.contains(&(Some(11), "queue.workers")), "{seen:?}");
        assert!(
            seen.contains(&(Some(14), "connectors.helpdesk.kind")),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(Some(18), "connectors.archive.colour")),
            "{seen:?}"
        );
        assert_eq!(problems.len(), 6, "{problems:?}");
    }

    #[test]
    fn outbox_is_not_a_connector_name() {
        let file = write(&format!("{GOOD}\n[connectors.outbox]\nkind = \"files\"\n"));
        let problems = load_with_env(file.path(), vec![])
            .expect_err("invalid")
            .problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "connectors.outbox");
    }

    #[test]
    fn missing_required_key_is_named() {
        let file = write("[whatsapp]\nverify_token = \"x\"\naccess_token = \"y\"\n[connectors.a]\nkind = \"files\"\n");
        let problems = load_with_env(file.path(), vec![])
            .expect_err("invalid")
            .problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "whatsapp.app_secrets", "{problems:?}");
        assert_eq!(problems[0].line, Some(1));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let file = write(GOOD);
        let config = load_with_env(file.path(), vec![]).expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("\"vt\"") && !debug.contains("\"at\"") && !debug.contains("\"s1\"")
        );
        assert!(debug.contains("**redacted**"));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let file = write("[server]\nlisten = \n");
        let problems = load_with_env(file.path(), vec![])
            .expect_err("invalid")
            .problems;
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
    }
}
