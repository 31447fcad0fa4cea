//! Command-line interface: argument parsing and the commands other than `serve`.

pub mod doctor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::{self, ops, ReplayRequest};
use crate::config::{self, Config};
use crate::store::{Store, StoreError};

/// Exit code for configuration errors (`EX_CONFIG`).
pub const EX_CONFIG: u8 = 78;

/// wabridge: WhatsApp Business Cloud API ⇄ ticketing and CRM systems.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "wabridge.toml")]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve,
    /// Check the configuration; list every problem (exit 78 if any).
    Validate,
    /// Check with real calls that the WhatsApp token, the webhook subscription and every
    /// connector's credentials work; say what is wrong (exit 1 if anything is).
    Doctor,
    /// Post a correctly signed text-message webhook to a running daemon.
    Simulate {
        /// Customer phone number, E.164 (`+96890000001`).
        #[arg(long)]
        from: String,
        /// Customer profile name.
        #[arg(long, default_value = "Test Customer")]
        name: String,
        /// Message text.
        #[arg(long)]
        text: String,
        /// Business phone number id.
        #[arg(long, default_value = "100000000000001")]
        phone_number_id: String,
        /// Daemon base URL (default: from `server.listen`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Dead letters: jobs that will not be retried.
    Dlq {
        /// list | replay
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Webhook bodies that could not be parsed.
    Quarantine {
        /// list
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The job queue.
    Queue {
        /// stats
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Consent and the 24-hour window per contact.
    Contacts {
        /// show | opt-in | opt-out
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Every outbound decision (sent, blocked and why, deferred, failed).
    Audit {
        /// Only this contact (`+96890000001`).
        #[arg(long)]
        contact: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The template catalog.
    Templates {
        /// list | sync
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Mapping files (CRM/shop events → template sends).
    Mapping {
        /// test
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// The routing rules (`[routing] file`).
    Route {
        /// test
        #[command(subcommand)]
        command: RouteCommand,
    },
}

/// `wabridge route …`
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Show which rules match a webhook's messages and what would happen. Sends nothing.
    Test {
        /// A webhook body as Meta sends it (JSON).
        webhook: PathBuf,
        /// Evaluate at this time (RFC 3339, e.g. `2026-11-27T19:30:00+04:00`; default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

/// `wabridge contacts …`
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Consent history, opt-in/opt-out state and the 24-hour window of a contact.
    Show {
        /// The customer's number (`+96890000001`).
        phone: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record a documented opt-in.
    OptIn {
        /// The customer's number.
        phone: String,
        /// Where it was collected (`web-form`, `checkout`, `paper`...).
        #[arg(long)]
        source: String,
        /// What proves it (form submission id, document reference...).
        #[arg(long)]
        evidence: String,
        /// The business number id (needed when the contact is known on several).
        #[arg(long)]
        phone_number_id: Option<String>,
    },
    /// Record an opt-out on the customer's behalf (takes effect at once).
    OptOut {
        /// The customer's number.
        phone: String,
        /// The business number id (needed when the contact is known on several).
        #[arg(long)]
        phone_number_id: Option<String>,
    },
}

/// `wabridge templates …`
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Name, language, category, status, quality and parameter counts of every template.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the catalog from Meta now (needs a `waba_id` in `[[whatsapp.numbers]]`).
    Sync,
}

/// `wabridge mapping …`
#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Print the exact Graph API request a mapping makes of an event, or why it makes none.
    /// Sends nothing.
    Test {
        /// The mapping file.
        mapping: PathBuf,
        /// The event, as JSON.
        event: PathBuf,
    },
}

/// `wabridge dlq …`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back in their queues.
    Replay {
        /// The dead letter id (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Replay all of them.
        #[arg(long)]
        all: bool,
    },
}

/// `wabridge quarantine …`
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined bodies.
    List {
        /// Print JSON (with the exact body, base64).
        #[arg(long)]
        json: bool,
    },
}

/// `wabridge queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts of the inbox, jobs, retries, dead letters and quarantine.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Loads the configuration or prints every problem.
pub fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|problems| {
        eprintln!("{problems}");
        ExitCode::from(EX_CONFIG)
    })
}

/// Loads the configuration and checks the mapping files (with their examples), printing every
/// problem of both: what `serve` and `validate` run before anything else.
pub fn load_checked(path: &std::path::Path) -> Result<Config, ExitCode> {
    let config = load_config(path)?;
    let dir = config.mappings_dir();
    if dir.is_dir() {
        let problems = crate::mapping::validate_dir(&dir);
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!(
                "{} problem(s) in the mapping files in {}",
                problems.len(),
                dir.display()
            );
            return Err(ExitCode::from(EX_CONFIG));
        }
    } else if config.mappings.dir != std::path::Path::new("mappings") {
        eprintln!(
            "{}: mappings.dir: {} is not a directory",
            path.display(),
            dir.display()
        );
        return Err(ExitCode::from(EX_CONFIG));
    }
    if let Some(file) = config.routing_file() {
        let problems = match crate::routing::load_file(&file) {
            Ok(routing) => routing.check_examples(),
            Err(problems) => problems,
        };
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!(
                "{} problem(s) in the routing file {}",
                problems.len(),
                file.display()
            );
            return Err(ExitCode::from(EX_CONFIG));
        }
    }
    Ok(config)
}

/// `wabridge mapping test <mapping> <event>`
pub fn mapping_test(mapping: &std::path::Path, event: &std::path::Path) -> ExitCode {
    let loaded = match crate::mapping::load_file(mapping) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    let event: serde_json::Value = match std::fs::read(event)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(event) => event,
        Err(err) => {
            eprintln!("{}: {err}", event.display());
            return ExitCode::FAILURE;
        }
    };
    println!("{}", loaded.dry_run(&event));
    ExitCode::SUCCESS
}

/// `wabridge validate`
pub fn validate(path: &std::path::Path) -> ExitCode {
    match load_checked(path) {
        Ok(config) => {
            let names: Vec<String> = config
                .connectors
                .keys()
                .map(|name| name.to_string())
                .collect();
            for (name, section) in &config.connectors {
                for warning in section.warnings() {
                    println!(
                        "{}: warning: connectors.{name}.{}: {}",
                        path.display(),
                        warning.field,
                        warning.message
                    );
                }
            }
            println!("{}: OK (connectors: {})", path.display(), names.join(", "));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Where an admin command runs: on the store directly, or through the running daemon.
enum Target {
    Direct(Store),
    Daemon(admin::Client),
}

fn target(config: &Config) -> anyhow::Result<Target> {
    match Store::open(&config.store.path) {
        Ok(store) => Ok(Target::Direct(store)),
        Err(StoreError::Locked(_)) => Ok(Target::Daemon(admin::Client::new(config)?)),
        Err(err) => Err(err.into()),
    }
}

/// `wabridge dlq|quarantine|queue …`
pub async fn admin_command(config: &Config, command: Command) -> anyhow::Result<()> {
    let target = target(config)?;
    match command {
        Command::Dlq {
            command: DlqCommand::List { json },
        } => {
            let entries = match &target {
                Target::Direct(store) => ops::dlq_list(store)?,
                Target::Daemon(client) => client.dlq_list().await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("No dead letters.");
            } else {
                for entry in entries {
                    println!(
                        "{}\t{}\t{}\tattempts={}\t{}",
                        entry.id,
                        entry.dead.dead_at.format("%Y-%m-%d %H:%M:%S"),
                        crate::logging::conversation(&entry.dead.queue),
                        entry.dead.job.attempts,
                        entry.dead.reason
                    );
                }
            }
        }
        Command::Dlq {
            command: DlqCommand::Replay { id, all },
        } => {
            let request = ReplayRequest { id, all };
            let result = match &target {
                Target::Direct(store) => {
                    let result = ops::dlq_replay(store, &request)?;
                    store.durable().await?;
                    result
                }
                Target::Daemon(client) => client.dlq_replay(&request).await?,
            };
            println!("Replayed {} dead letter(s).", result.replayed.len());
            if !result.not_found.is_empty() {
                anyhow::bail!("no dead letter with id {:?}", result.not_found);
            }
        }
        Command::Quarantine {
            command: QuarantineCommand::List { json },
        } => {
            let entries = match &target {
                Target::Direct(store) => ops::quarantine_list(store)?,
                Target::Daemon(client) => client.quarantine_list().await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("Quarantine is empty.");
            } else {
                for entry in entries {
                    println!(
                        "{}\t{}\t{} bytes\t{}",
                        entry.id,
                        entry.quarantined.received_at.format("%Y-%m-%d %H:%M:%S"),
                        entry.quarantined.body.len(),
                        entry.quarantined.reason
                    );
                }
            }
        }
        Command::Queue {
            command: QueueCommand::Stats { json },
        } => {
            let stats = match &target {
                Target::Direct(store) => ops::stats(store)?,
                Target::Daemon(client) => client.stats().await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("inbox (not yet dispatched): {}", stats.inbox);
                println!("jobs queued:                {}", stats.jobs);
                println!("conversations with work:    {}", stats.queues);
                println!("waiting for a retry:        {}", stats.waiting_retry);
                println!("dead letters:               {}", stats.dead);
                println!("quarantined bodies:         {}", stats.quarantined);
                let mut per: Vec<_> = stats.per_destination.into_iter().collect();
                per.sort();
                for (destination, count) in per {
                    println!("  {destination}: {count} job(s)");
                }
            }
        }
        Command::Contacts {
            command: ContactsCommand::Show { phone, json },
        } => {
            let views = match &target {
                Target::Direct(store) => ops::contacts_show(store, &phone)?,
                Target::Daemon(client) => client.contacts_show(&phone).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                println!("No record of this contact.");
            } else {
                let decisions = match &target {
                    Target::Direct(store) => ops::audit_list(store, Some(&phone))?,
                    Target::Daemon(client) => client.audit_list(Some(&phone)).await?,
                };
                for view in views {
                    print_contact(&view, config.policy.window_margin());
                    let recent: Vec<_> = decisions
                        .iter()
                        .filter(|d| d.contact.as_deref() == Some(view.key.as_str()))
                        .collect();
                    println!("  recent decisions:");
                    if recent.is_empty() {
                        println!("    none");
                    }
                    for decision in recent.iter().rev().take(10).rev() {
                        println!(
                            "    {}  {}  {}: {}",
                            decision.at.format("%Y-%m-%d %H:%M:%S"),
                            decision.decision,
                            decision.subject,
                            with_delivery(&decision.reason, decision.delivery.as_deref())
                        );
                    }
                }
            }
        }
        Command::Contacts {
            command:
                ContactsCommand::OptIn {
                    phone,
                    source,
                    evidence,
                    phone_number_id,
                },
        } => {
            let request = admin::ConsentRequest {
                phone,
                phone_number_id,
                action: admin::ConsentAction::OptIn,
                source: Some(source),
                evidence: Some(evidence),
            };
            consent(&target, &request).await?;
        }
        Command::Contacts {
            command:
                ContactsCommand::OptOut {
                    phone,
                    phone_number_id,
                },
        } => {
            let request = admin::ConsentRequest {
                phone,
                phone_number_id,
                action: admin::ConsentAction::OptOut,
                source: None,
                evidence: None,
            };
            consent(&target, &request).await?;
        }
        Command::Audit { contact, json } => {
            let entries = match &target {
                Target::Direct(store) => ops::audit_list(store, contact.as_deref())?,
                Target::Daemon(client) => client.audit_list(contact.as_deref()).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("No outbound decisions recorded.");
            } else {
                for entry in entries {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        entry.at.format("%Y-%m-%d %H:%M:%S"),
                        entry
                            .contact
                            .as_deref()
                            .map(crate::logging::conversation)
                            .unwrap_or_else(|| "-".into()),
                        entry.decision,
                        entry.subject,
                        with_delivery(&entry.reason, entry.delivery.as_deref())
                    );
                }
            }
        }
        Command::Templates {
            command: TemplatesCommand::List { json },
        } => {
            let templates = match &target {
                Target::Direct(store) => ops::templates_list(store)?,
                Target::Daemon(client) => client.templates_list().await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&templates)?);
            } else if templates.is_empty() {
                println!(
                    "No templates known; run `wabridge templates sync` (needs a waba_id in [[whatsapp.numbers]])."
                );
            } else {
                println!("name\tlanguage\tcategory\tstatus\tquality\theader/body/buttons params");
                for t in templates {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}/{}/{:?}",
                        t.name,
                        t.language,
                        t.category,
                        t.status,
                        t.quality.as_deref().unwrap_or("-"),
                        t.header_params,
                        t.body_params,
                        t.button_params
                    );
                }
            }
        }
        Command::Templates {
            command: TemplatesCommand::Sync,
        } => {
            let count = match &target {
                Target::Direct(store) => ops::templates_sync(store, &config.whatsapp).await?,
                Target::Daemon(client) => client.templates_sync().await?,
            };
            println!("Synced {count} template(s).");
        }
        Command::Serve
        | Command::Validate
        | Command::Doctor
        | Command::Route { .. }
        | Command::Simulate { .. }
        | Command::Mapping { .. } => {
            anyhow::bail!("not an admin command")
        }
    }
    Ok(())
}

async fn consent(target: &Target, request: &admin::ConsentRequest) -> anyhow::Result<()> {
    let view = match target {
        Target::Direct(store) => {
            let view = ops::contacts_consent(store, request)?.map_err(|m| anyhow::anyhow!(m))?;
            store.durable().await?;
            view
        }
        Target::Daemon(client) => client.contacts_consent(request).await?,
    };
    println!("Recorded for {}.", crate::logging::conversation(&view.key));
    Ok(())
}

fn print_contact(view: &admin::ContactView, margin: chrono::Duration) {
    let now = chrono::Utc::now();
    let state = &view.state;
    println!("{}", view.key);
    match state.opted_out() {
        Some((at, source)) => println!("  opted out:      yes, {at} ({source})"),
        None => println!("  opted out:      no"),
    }
    match state.opted_in(now) {
        Some(at) => println!("  opted in:       yes, {at}"),
        None => println!("  opted in:       no recorded opt-in"),
    }
    if let Some(at) = state.marketing_stopped() {
        println!("  marketing:      stopped {at}");
    }
    match (state.last_inbound_at, state.window_open_until(margin)) {
        (Some(last), Some(until)) if until > now => {
            println!("  24-hour window: open until {until} (last message {last})")
        }
        (Some(last), _) => println!("  24-hour window: closed (last message {last})"),
        (None, _) => println!("  24-hour window: closed (the customer never wrote)"),
    }
    println!("  history:");
    for event in &state.history {
        println!("    {}", serde_json::to_string(event).unwrap_or_default());
    }
}

/// `wabridge simulate`: one signed text-message webhook, as Meta would send it.
pub async fn simulate(
    config: &Config,
    from: &str,
    name: &str,
    text: &str,
    phone_number_id: &str,
    url: Option<String>,
) -> anyhow::Result<()> {
    let digits: String = from.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6
        || from
            .chars()
            .any(|c| !(c.is_ascii_digit() || "+ -".contains(c)))
    {
        anyhow::bail!("--from must be a phone number like +96890000001");
    }
    use rand::Rng;
    let nonce: u64 = rand::thread_rng().gen();
    let body = crate::whatsapp::message_webhook(
        phone_number_id,
        &digits,
        name,
        serde_json::json!({
            "id": format!("wamid.SIMULATED{nonce:016X}"),
            "timestamp": chrono::Utc::now().timestamp().to_string(),
            "type": "text",
            "text": { "body": text }
        }),
    );
    let raw = serde_json::to_vec(&body)?;
    let secret = config
        .whatsapp
        .app_secrets
        .first()
        .ok_or_else(|| anyhow::anyhow!("no app secret configured"))?;
    let url = url.unwrap_or_else(|| format!("http://{}", config.server.listen));
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/whatsapp", url.trim_end_matches('/')))
        .header("content-type", "application/json")
        .header(
            crate::whatsapp::signature::HEADER,
            crate::whatsapp::signature::sign(secret, &raw),
        )
        .body(raw)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("the daemon at {url} does not answer: {err}"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("the daemon answered {status}");
    }
    println!("Delivered a signed webhook to {url} ({status}).");
    Ok(())
}

/// An audit reason followed by the message's furthest status, when Meta reported one.
fn with_delivery(reason: &str, delivery: Option<&str>) -> String {
    match delivery {
        Some(status) => format!("{reason} [now: {status}]"),
        None => reason.to_owned(),
    }
}

/// `wabridge route test <webhook.json> [--at <time>]`: the routing decision for every customer
/// message of the webhook, with the conversation's stored state when the daemon is stopped
/// (while it runs, the store is locked and each message is evaluated as a new conversation).
pub fn route_test(config: &Config, webhook: &std::path::Path, at: Option<&str>) -> ExitCode {
    let Some(file) = config.routing_file() else {
        eprintln!(
            "{}: no [routing] file is configured (add [routing] file = \"mappings/routing.toml\")",
            config.file.display()
        );
        return ExitCode::from(EX_CONFIG);
    };
    let routing = match crate::routing::load_file(&file) {
        Ok(routing) => routing,
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    let now = match at {
        None => chrono::Utc::now(),
        Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(at) => at.with_timezone(&chrono::Utc),
            Err(err) => {
                eprintln!("--at {text}: not an RFC 3339 time ({err})");
                return ExitCode::FAILURE;
            }
        },
    };
    let envelope = match std::fs::read(webhook)
        .map_err(|e| e.to_string())
        .and_then(|raw| crate::whatsapp::model::parse(&raw).map_err(|e| e.to_string()))
    {
        Ok(envelope) => envelope,
        Err(err) => {
            eprintln!("{}: {err}", webhook.display());
            return ExitCode::FAILURE;
        }
    };
    // Never creates a store: only reads one that exists and is not in use.
    let store = config
        .store
        .path
        .exists()
        .then(|| Store::open(&config.store.path).ok())
        .flatten();
    if store.is_none() {
        println!("(the store is in use or missing: every conversation is evaluated as new)");
    }
    let mut messages = 0;
    for event in envelope.events() {
        let crate::whatsapp::model::Event::Message {
            conversation,
            message,
        } = event
        else {
            continue;
        };
        messages += 1;
        let key = conversation.key();
        let state: crate::routing::ConversationState = store
            .as_ref()
            .and_then(|store| store.routing_state(&key).ok().flatten())
            .unwrap_or_default();
        let first_message = store
            .as_ref()
            .and_then(|store| store.contact(&key).ok().flatten())
            .and_then(|contact| contact.last_inbound_at)
            .is_none_or(|last| now - last > crate::sync::NEW_CONVERSATION_AFTER);
        let inbound = crate::sync::inbound_of(&message, first_message);
        println!(
            "Message {} from {}:",
            message.id,
            crate::logging::conversation(&key)
        );
        println!("{}", routing.decide(&inbound, &state, now));
    }
    if messages == 0 {
        eprintln!("{}: no customer message in this webhook", webhook.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
