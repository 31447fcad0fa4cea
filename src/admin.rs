//! Operations on the queue and quarantine (`wabridge dlq|quarantine|queue …`), and the small
//! admin HTTP API that serves them while the daemon runs.
//!
//! sled allows one process per directory. When the daemon is not running, the CLI opens the
//! store directly; when it is, the CLI calls this API on the loopback address `admin.listen`
//! with the bearer token from `admin.token` or `<store.path>/admin.token`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use wabridge_connectors::Secret;

use crate::config::{Config, WhatsAppConfig};
use crate::queue::{JobQueue, Stats};
use crate::store::{AuditEntry, DeadLetter, Quarantined, Store, StoreError};
use crate::whatsapp::templates::Template;

/// File name of the generated admin token inside the store directory.
pub const TOKEN_FILE: &str = "admin.token";

/// A dead letter as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadEntry {
    /// Id to replay it with.
    pub id: u64,
    /// The record.
    pub dead: DeadLetter,
}

/// A quarantined body as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Its id.
    pub id: u64,
    /// The record.
    pub quarantined: Quarantined,
}

/// A replay request: one id, or all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// The dead letter to replay.
    pub id: Option<u64>,
    /// Replay every dead letter.
    #[serde(default)]
    pub all: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayResult {
    /// Dead letters put back in their queues.
    pub replayed: Vec<u64>,
    /// Ids asked for that were not found.
    pub not_found: Vec<u64>,
}

/// A consent change asked by an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// The customer's number (any format; digits are kept).
    pub phone: String,
    /// The business number id; may be left out when the contact is known on one number only.
    pub phone_number_id: Option<String>,
    /// `opt_in` or `opt_out`.
    pub action: ConsentAction,
    /// Where the opt-in was collected (`web-form`, `paper`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// What proves it (a form submission id, a signed document reference, ...).
    #[serde(default)]
    pub evidence: Option<String>,
}

/// What an admin records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAction {
    /// Documented opt-in.
    OptIn,
    /// Opt-out on the customer's behalf.
    OptOut,
}

/// A conversation's consent state, as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactView {
    /// `{phone_number_id}:{contact}`
    pub key: String,
    /// The ledger.
    pub state: crate::policy::ContactState,
}

/// The operations, over an open store.
pub mod ops {
    use super::*;

    fn digits(phone: &str) -> String {
        phone.chars().filter(char::is_ascii_digit).collect()
    }

    /// The consent state of a contact on every business number it is known on.
    pub fn contacts_show(store: &Store, phone: &str) -> Result<Vec<ContactView>, StoreError> {
        store
            .contact_keys(&digits(phone))?
            .into_iter()
            .map(|key| {
                let state = store.contact(&key)?.unwrap_or_default();
                Ok(ContactView { key, state })
            })
            .collect()
    }

    /// Records an admin's opt-in or opt-out; `Err(message)` when the request is incomplete.
    pub fn contacts_consent(
        store: &Store,
        request: &ConsentRequest,
    ) -> Result<Result<ContactView, String>, StoreError> {
        let contact = digits(&request.phone);
        if contact.len() < 6 {
            return Ok(Err("the phone number must have at least 6 digits".into()));
        }
        let key = match &request.phone_number_id {
            Some(id) => format!("{id}:{contact}"),
            None => {
                let mut keys = store.contact_keys(&contact)?;
                if keys.len() != 1 {
                    return Ok(Err(format!(
                        "the contact is known on {} business numbers; pass --phone-number-id",
                        keys.len()
                    )));
                }
                keys.remove(0)
            }
        };
        let at = crate::policy::whole_seconds(Utc::now());
        let event = match request.action {
            ConsentAction::OptIn => {
                let (Some(source), Some(evidence)) = (&request.source, &request.evidence) else {
                    return Ok(Err("an opt-in needs --source and --evidence".into()));
                };
                if source.trim().is_empty() || evidence.trim().is_empty() {
                    return Ok(Err("an opt-in needs a non-empty source and evidence".into()));
                }
                crate::policy::ConsentEvent::OptIn {
                    at,
                    source: source.clone(),
                    evidence: evidence.clone(),
                }
            }
            ConsentAction::OptOut => crate::policy::ConsentEvent::OptOut {
                at,
                source: crate::policy::OptOutSource::Admin,
            },
        };
        let state = store.record_consent(&key, event)?;
        Ok(Ok(ContactView { key, state }))
    }

    /// Every dead letter.
    pub fn dlq_list(store: &Store) -> Result<Vec<DeadEntry>, StoreError> {
        Ok(store
            .dead_letters()?
            .into_iter()
            .map(|(id, dead)| DeadEntry { id, dead })
            .collect())
    }

    /// Replays one or all dead letters.
    pub fn dlq_replay(store: &Store, request: &ReplayRequest) -> Result<ReplayResult, StoreError> {
        let ids: Vec<u64> = if request.all {
            store
                .dead_letters()?
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        } else {
            request.id.into_iter().collect()
        };
        let mut result = ReplayResult {
            replayed: Vec::new(),
            not_found: Vec::new(),
        };
        for id in ids {
            match store.replay(id, Utc::now())? {
                Some(_) => result.replayed.push(id),
                None => result.not_found.push(id),
            }
        }
        Ok(result)
    }

    /// Every quarantined body.
    pub fn quarantine_list(store: &Store) -> Result<Vec<QuarantineEntry>, StoreError> {
        Ok(store
            .quarantined()?
            .into_iter()
            .map(|(id, quarantined)| QuarantineEntry { id, quarantined })
            .collect())
    }

    /// Queue counts.
    pub fn stats(store: &Store) -> Result<Stats, StoreError> {
        store.stats(Utc::now())
    }

    /// Outbound decisions, oldest first, optionally for one contact.
    pub fn audit_list(store: &Store, phone: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let digits = phone.map(digits);
        let mut entries = store.audit_entries(digits.as_deref())?;
        for entry in &mut entries {
            if let Some(wamid) = &entry.wamid {
                entry.delivery = store.status(wamid)?.map(|status| status.status);
            }
        }
        Ok(entries)
    }

    /// The stored template catalog.
    pub fn templates_list(store: &Store) -> Result<Vec<Template>, StoreError> {
        store.templates()
    }

    /// Reads the catalog from Meta (every page) and replaces the stored one.
    pub async fn templates_sync(store: &Store, config: &WhatsAppConfig) -> anyhow::Result<usize> {
        let wabas = config.waba_ids();
        if wabas.is_empty() {
            anyhow::bail!("no waba_id in [[whatsapp.numbers]]: no template catalog to read");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let mut catalog = Vec::new();
        for waba_id in &wabas {
            catalog.extend(
                crate::whatsapp::templates::fetch_catalog(
                    &http,
                    &config.graph_url,
                    &config.api_version,
                    waba_id,
                    &config.access_token,
                )
                .await?,
            );
        }
        store.replace_templates(&catalog)?;
        store.durable().await?;
        Ok(catalog.len())
    }
}

#[derive(Clone)]
struct AdminState {
    store: Store,
    token: Secret,
    wake: Arc<Notify>,
    whatsapp: Arc<WhatsAppConfig>,
}

/// The admin router (bind it to loopback only).
pub fn router(store: Store, token: Secret, wake: Arc<Notify>, whatsapp: WhatsAppConfig) -> Router {
    Router::new()
        .route("/admin/dlq", get(dlq_list))
        .route("/admin/dlq/replay", post(dlq_replay))
        .route("/admin/quarantine", get(quarantine_list))
        .route("/admin/queue/stats", get(stats))
        .route("/admin/contacts/show", post(contacts_show))
        .route("/admin/contacts/consent", post(contacts_consent))
        .route("/admin/audit", post(audit_list))
        .route("/admin/templates", get(templates_list))
        .route("/admin/templates/sync", post(templates_sync))
        .with_state(AdminState {
            store,
            token,
            wake,
            whatsapp: Arc::new(whatsapp),
        })
}

type ApiResult<T> = Result<Json<T>, (StatusCode, String)>;

fn authorize(state: &AdminState, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let expected = format!("Bearer {}", state.token.expose());
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "admin token required".into()))
    }
}

fn internal(err: StoreError) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

async fn dlq_list(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> ApiResult<Vec<DeadEntry>> {
    authorize(&state, &headers)?;
    ops::dlq_list(&state.store).map(Json).map_err(internal)
}

async fn dlq_replay(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(request): Json<ReplayRequest>,
) -> ApiResult<ReplayResult> {
    authorize(&state, &headers)?;
    let result = ops::dlq_replay(&state.store, &request).map_err(internal)?;
    state.wake.notify_one();
    Ok(Json(result))
}

async fn quarantine_list(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> ApiResult<Vec<QuarantineEntry>> {
    authorize(&state, &headers)?;
    ops::quarantine_list(&state.store)
        .map(Json)
        .map_err(internal)
}

async fn stats(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult<Stats> {
    authorize(&state, &headers)?;
    ops::stats(&state.store).map(Json).map_err(internal)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShowRequest {
    phone: String,
}

async fn contacts_show(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(request): Json<ShowRequest>,
) -> ApiResult<Vec<ContactView>> {
    authorize(&state, &headers)?;
    ops::contacts_show(&state.store, &request.phone)
        .map(Json)
        .map_err(internal)
}

async fn contacts_consent(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(request): Json<ConsentRequest>,
) -> ApiResult<ContactView> {
    authorize(&state, &headers)?;
    match ops::contacts_consent(&state.store, &request).map_err(internal)? {
        Ok(view) => Ok(Json(view)),
        Err(message) => Err((StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditRequest {
    phone: Option<String>,
}

async fn audit_list(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(request): Json<AuditRequest>,
) -> ApiResult<Vec<AuditEntry>> {
    authorize(&state, &headers)?;
    ops::audit_list(&state.store, request.phone.as_deref())
        .map(Json)
        .map_err(internal)
}

async fn templates_list(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> ApiResult<Vec<Template>> {
    authorize(&state, &headers)?;
    ops::templates_list(&state.store)
        .map(Json)
        .map_err(internal)
}

async fn templates_sync(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult<usize> {
    authorize(&state, &headers)?;
    ops::templates_sync(&state.store, &state.whatsapp)
        .await
        .map(Json)
        .map_err(|err| (StatusCode::BAD_GATEWAY, format!("{err:#}")))
}

/// The admin token: the configured one, else the one generated into the store directory
/// (created with mode 0600 when `create` and missing).
pub fn token(config: &Config, create: bool) -> std::io::Result<Secret> {
    if let Some(token) = &config.admin.token {
        return Ok(token.clone());
    }
    let path = token_path(&config.store.path);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim())),
        _ if create => {
            use rand::Rng;
            let bytes: [u8; 24] = rand::thread_rng().gen();
            let token = hex::encode(bytes);
            std::fs::create_dir_all(&config.store.path)?;
            write_private(&path, &token)?;
            Ok(Secret::new(token))
        }
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is empty", path.display()),
        )),
        Err(err) => Err(err),
    }
}

fn token_path(store: &Path) -> PathBuf {
    store.join(TOKEN_FILE)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A client of the admin API, for the CLI while the daemon runs.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl Client {
    /// A client for the configured admin address.
    pub fn new(config: &Config) -> anyhow::Result<Client> {
        let token = token(config, false).map_err(|err| {
            anyhow::anyhow!(
                "the admin token is not readable ({err}); set admin.token in the config"
            )
        })?;
        Ok(Client {
            http: reqwest::Client::new(),
            base: format!("http://{}", config.admin.listen),
            token,
        })
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request.bearer_auth(self.token.expose()).send().await.map_err(|err| {
            anyhow::anyhow!("the store is locked by a running daemon, but its admin API at {} does not answer: {err}", self.base)
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("admin API answered {status}: {body}");
        }
        Ok(response.json().await?)
    }

    /// `GET /admin/dlq`
    pub async fn dlq_list(&self) -> anyhow::Result<Vec<DeadEntry>> {
        self.call(self.http.get(format!("{}/admin/dlq", self.base)))
            .await
    }

    /// `POST /admin/dlq/replay`
    pub async fn dlq_replay(&self, request: &ReplayRequest) -> anyhow::Result<ReplayResult> {
        self.call(
            self.http
                .post(format!("{}/admin/dlq/replay", self.base))
                .json(request),
        )
        .await
    }

    /// `GET /admin/quarantine`
    pub async fn quarantine_list(&self) -> anyhow::Result<Vec<QuarantineEntry>> {
        self.call(self.http.get(format!("{}/admin/quarantine", self.base)))
            .await
    }

    /// `POST /admin/contacts/show`
    pub async fn contacts_show(&self, phone: &str) -> anyhow::Result<Vec<ContactView>> {
        self.call(
            self.http
                .post(format!("{}/admin/contacts/show", self.base))
                .json(&ShowRequest {
                    phone: phone.to_owned(),
                }),
        )
        .await
    }

    /// `POST /admin/contacts/consent`
    pub async fn contacts_consent(&self, request: &ConsentRequest) -> anyhow::Result<ContactView> {
        self.call(
            self.http
                .post(format!("{}/admin/contacts/consent", self.base))
                .json(request),
        )
        .await
    }

    /// `POST /admin/audit`
    pub async fn audit_list(&self, phone: Option<&str>) -> anyhow::Result<Vec<AuditEntry>> {
        self.call(
            self.http
                .post(format!("{}/admin/audit", self.base))
                .json(&AuditRequest {
                    phone: phone.map(str::to_owned),
                }),
        )
        .await
    }

    /// `GET /admin/templates`
    pub async fn templates_list(&self) -> anyhow::Result<Vec<Template>> {
        self.call(self.http.get(format!("{}/admin/templates", self.base)))
            .await
    }

    /// `POST /admin/templates/sync`
    pub async fn templates_sync(&self) -> anyhow::Result<usize> {
        self.call(
            self.http
                .post(format!("{}/admin/templates/sync", self.base)),
        )
        .await
    }

    /// `GET /admin/queue/stats`
    pub async fn stats(&self) -> anyhow::Result<Stats> {
        self.call(self.http.get(format!("{}/admin/queue/stats", self.base)))
            .await
    }
}
