//! `wabridge doctor`: checks, with real read calls, that everything the configuration points at
//! answers and accepts its credentials, and says what is wrong in words a non-developer can act
//! on. Exits 0 when every check passed, 1 otherwise.
//!
//! Checks:
//! - every business number: `GET /{phone-number-id}` with the access token (the token is valid
//!   and sees the number);
//! - every WhatsApp Business Account: `GET /{waba-id}/subscribed_apps` (an app is subscribed to
//!   its webhooks; otherwise Meta delivers no message at all);
//! - every connector's roles: its own `check()` (a harmless read with its credentials).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use wabridge_connectors::ConnectorError;

use crate::config::Config;

/// One check's result.
struct Check {
    what: String,
    outcome: Result<String, String>,
}

/// Runs every check and prints a report.
pub async fn doctor(config: &Config) -> ExitCode {
    let mut checks = Vec::new();
    checks.extend(whatsapp_checks(config).await);
    checks.extend(connector_checks(config).await);

    let failed = checks.iter().filter(|c| c.outcome.is_err()).count();
    for check in &checks {
        match &check.outcome {
            Ok(detail) => println!("[ok]   {}: {detail}", check.what),
            Err(problem) => println!("[FAIL] {}: {problem}", check.what),
        }
    }
    if failed == 0 {
        println!("All {} check(s) passed.", checks.len());
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} check(s) failed.", checks.len());
        ExitCode::FAILURE
    }
}

async fn whatsapp_checks(config: &Config) -> Vec<Check> {
    let whatsapp = &config.whatsapp;
    let mut checks = Vec::new();
    if whatsapp.numbers.is_empty() {
        checks.push(Check {
            what: "WhatsApp numbers".into(),
            outcome: Err(
                "no [[whatsapp.numbers]] is configured: wabridge can receive messages \
                          but cannot send any (no agent replies, no templates). Add the number's \
                          phone_number_id and waba_id from WhatsApp Manager → API Setup."
                    .into(),
            ),
        });
        return checks;
    }
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            checks.push(Check {
                what: "HTTP client".into(),
                outcome: Err(err.to_string()),
            });
            return checks;
        }
    };
    let base = format!(
        "{}/{}",
        whatsapp.graph_url.trim_end_matches('/'),
        whatsapp.api_version
    );
    for number in &whatsapp.numbers {
        let what = format!("WhatsApp number {}", number.phone_number_id);
        let url = format!(
            "{base}/{}?fields=display_phone_number,verified_name,quality_rating",
            number.phone_number_id
        );
        let outcome = graph_get(&http, &url, whatsapp.access_token.expose())
            .await
            .map(|body| {
                format!(
                    "the access token works; the number is {} \"{}\" (quality {})",
                    body["display_phone_number"].as_str().unwrap_or("?"),
                    body["verified_name"].as_str().unwrap_or("?"),
                    body["quality_rating"].as_str().unwrap_or("unknown"),
                )
            })
            .map_err(|problem| {
                problem.explain(&format!("phone number id {}", number.phone_number_id))
            });
        checks.push(Check { what, outcome });
    }
    for waba in whatsapp.waba_ids() {
        let what = format!("webhook subscription of WhatsApp account {waba}");
        let url = format!("{base}/{waba}/subscribed_apps");
        let outcome = match graph_get(&http, &url, whatsapp.access_token.expose()).await {
            Ok(body) => {
                let apps: Vec<String> = body["data"]
                    .as_array()
                    .map(|apps| {
                        apps.iter()
                            .map(|app| {
                                app["whatsapp_business_api_data"]["name"]
                                    .as_str()
                                    .or_else(|| app["name"].as_str())
                                    .unwrap_or("an app")
                                    .to_owned()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if apps.is_empty() {
                    Err(format!(
                        "no app is subscribed to this account's webhooks, so Meta delivers no \
                         message to wabridge. Subscribe your app (POST /{waba}/subscribed_apps \
                         with the same token, or the App Dashboard → WhatsApp → Configuration)."
                    ))
                } else {
                    Ok(format!("subscribed: {}", apps.join(", ")))
                }
            }
            Err(problem) => Err(problem.explain(&format!("WhatsApp account id {waba}"))),
        };
        checks.push(Check { what, outcome });
    }
    checks
}

/// Why a Graph API read failed.
enum GraphProblem {
    Unreachable(String),
    Token,
    UnknownId,
    Other(String),
}

impl GraphProblem {
    fn explain(self, id: &str) -> String {
        match self {
            GraphProblem::Unreachable(reason) => format!(
                "Meta's Graph API could not be reached ({reason}); check the network and \
                 whatsapp.graph_url"
            ),
            GraphProblem::Token => "Meta refused the access token (invalid or expired). Create \
                                    a permanent System User token with the whatsapp_business_messaging \
                                    and whatsapp_business_management permissions and put it in \
                                    whatsapp.access_token."
                .into(),
            GraphProblem::UnknownId => format!(
                "Meta does not know {id}, or the token cannot see it: check the id in \
                 WhatsApp Manager and that the token's system user has this account assigned."
            ),
            GraphProblem::Other(reason) => format!("Meta answered: {reason}"),
        }
    }
}

async fn graph_get(http: &reqwest::Client, url: &str, token: &str) -> Result<Value, GraphProblem> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|err| GraphProblem::Unreachable(wabridge_connectors::transport_reason(&err)))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|err| GraphProblem::Unreachable(wabridge_connectors::transport_reason(&err)))?;
    if status.is_success() {
        return Ok(body);
    }
    let code = body["error"]["code"].as_i64();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no message")
        .to_owned();
    Err(match code {
        Some(190) => GraphProblem::Token,
        _ if status == reqwest::StatusCode::UNAUTHORIZED => GraphProblem::Token,
        Some(100) | Some(803) => GraphProblem::UnknownId,
        _ => GraphProblem::Other(format!("HTTP {status}: {message}")),
    })
}

async fn connector_checks(config: &Config) -> Vec<Check> {
    let connectors = match crate::app::build_connectors(config) {
        Ok(connectors) => connectors,
        Err(err) => {
            return vec![Check {
                what: "connectors".into(),
                outcome: Err(format!("{err:#}")),
            }]
        }
    };
    let mut checks = Vec::new();
    let mut names: Vec<&String> = config.connectors.keys().collect();
    names.sort();
    for name in names {
        if let Some(ticketing) = connectors.ticketing.get(name) {
            checks.push(Check {
                what: format!("connector \"{name}\" ({}, ticketing)", ticketing.kind()),
                outcome: ticketing
                    .check()
                    .await
                    .map(|()| "reachable, credentials accepted".to_owned())
                    .map_err(explain_connector),
            });
        }
        if let Some(crm) = connectors.crm.get(name) {
            checks.push(Check {
                what: format!("connector \"{name}\" ({}, CRM)", crm.kind()),
                outcome: crm
                    .check()
                    .await
                    .map(|()| "reachable, credentials accepted".to_owned())
                    .map_err(explain_connector),
            });
        }
    }
    checks
}

fn explain_connector(err: ConnectorError) -> String {
    match err {
        ConnectorError::Permanent { reason } => reason,
        ConnectorError::Retryable { reason, .. } => format!(
            "could not be reached or answered with a temporary error ({reason}); check the \
             address and that the system is running"
        ),
    }
}
