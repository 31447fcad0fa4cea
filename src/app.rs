//! Wiring: builds the parts from the configuration and runs them until a shutdown signal.
//!
//! Shutdown (SIGTERM or SIGINT): stop accepting webhooks, let jobs in flight finish within
//! `server.shutdown_grace_secs` (unfinished ones stay queued), flush, exit 0.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use wabridge_connectors::BuildContext;

use crate::cli::{self, Cli, Command};
use crate::config::Config;
use crate::ingress::{self, IngressState, Metrics};
use crate::store::Store;
use crate::sync::{Connectors, Runner, RunnerParts};
use crate::whatsapp::graph::GraphClient;
use crate::{admin, logging};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Validate => return cli::validate(&cli.config),
        Command::Mapping {
            command: cli::MappingCommand::Test { mapping, event },
        } => return cli::mapping_test(mapping, event),
        _ => {}
    }
    let load = match cli.command {
        Command::Serve | Command::Doctor | Command::Route { .. } => cli::load_checked,
        _ => cli::load_config,
    };
    let config = match load(&cli.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    logging::init(&config.log.level, config.log.redact);
    let result = match cli.command {
        Command::Route {
            command: cli::RouteCommand::Test { webhook, at },
        } => return cli::route_test(&config, &webhook, at.as_deref()),
        Command::Serve => serve(config).await,
        Command::Doctor => return cli::doctor::doctor(&config).await,
        Command::Simulate {
            from,
            name,
            text,
            phone_number_id,
            url,
        } => cli::simulate(&config, &from, &name, &text, &phone_number_id, url).await,
        command => cli::admin_command(&config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `wabridge serve`
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.store.path)
        .with_context(|| format!("opening the store at {}", config.store.path.display()))?;

    let connectors = Arc::new(build_connectors(&config)?);
    let graph = GraphClient::new(&config.whatsapp).context("building the Graph API client")?;
    let mappings = {
        let dir = config.mappings_dir();
        if dir.is_dir() {
            crate::mapping::load_dir(&dir).map_err(|problems| {
                anyhow::anyhow!("{} problem(s) in the mapping files", problems.len())
            })?
        } else {
            crate::mapping::MappingSet::default()
        }
    };
    // The catalog the last run synced: a mapping whose parameters do not fit is refused now,
    // not at its first send.
    let refused = check_mappings_against_catalog(&mappings, &store)?;
    if !refused.is_empty() {
        for problem in &refused {
            eprintln!("{problem}");
        }
        anyhow::bail!(
            "{} mapping problem(s) against the template catalog (wabridge templates list)",
            refused.len()
        );
    }
    let mappings = Arc::new(mappings);
    let routing = match config.routing_file() {
        Some(file) => Some(Arc::new(crate::routing::load_file(&file).map_err(
            |problems| {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                anyhow::anyhow!("{} problem(s) in the routing file", problems.len())
            },
        )?)),
        None => None,
    };
    let limiter = Arc::new(crate::whatsapp::ratelimit::RateLimiter::with_number_rates(
        config.whatsapp.rate_limit.clone(),
        config
            .whatsapp
            .numbers
            .iter()
            .filter_map(|n| n.mps.map(|mps| (n.phone_number_id.clone(), mps)))
            .collect(),
    ));
    let sender = crate::whatsapp::sender::Sender::new(&config.whatsapp, limiter)
        .context("building the Graph API sender")?;
    let runner = Runner::new(RunnerParts {
        store: store.clone(),
        connectors: Arc::clone(&connectors),
        graph,
        sender,
        retry: config.queue.retry_policy(),
        workers: config.queue.workers,
        recovery_grace: Duration::from_secs(config.queue.recovery_grace_secs),
        consent: config.policy.clone(),
        mappings: Arc::clone(&mappings),
        routing,
        phone_number_id: config.whatsapp.sending_number().map(str::to_owned),
        reply_poll: Duration::from_secs(config.queue.reply_poll_secs.max(1)),
    });

    let public = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let admin_listener = tokio::net::TcpListener::bind(&config.admin.listen)
        .await
        .with_context(|| format!("listening on {} (admin)", config.admin.listen))?;
    let admin_token = admin::token(&config, true).context("preparing the admin token")?;

    let (shutdown_tx, shutdown) = watch::channel(false);
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);

    let dispatcher = tokio::spawn(runner.clone().run_dispatcher(shutdown.clone()));
    let workers = tokio::spawn(runner.clone().run_workers(shutdown.clone(), grace));
    let replies = tokio::spawn(runner.clone().run_reply_poller(shutdown.clone()));
    let crm_events = tokio::spawn(runner.clone().run_event_poller(shutdown.clone()));

    let admin_app = admin::router(
        store.clone(),
        admin_token,
        runner.wake.clone(),
        config.whatsapp.clone(),
    );
    let catalog = tokio::spawn(sync_templates(
        store.clone(),
        config.whatsapp.clone(),
        mappings,
        shutdown.clone(),
    ));
    let mut admin_shutdown = shutdown.clone();
    let admin_server = tokio::spawn(async move {
        axum::serve(admin_listener, admin_app)
            .with_graceful_shutdown(async move {
                let _ = admin_shutdown.changed().await;
            })
            .await
    });

    let state = IngressState {
        secrets: Arc::new(config.whatsapp.app_secrets.clone()),
        verify_token: config.whatsapp.verify_token.clone(),
        inbox: Arc::new(store.clone()),
        metrics: Arc::new(Metrics::default()),
        sources: config
            .sources
            .iter()
            .map(|(name, source)| {
                (
                    name.clone(),
                    Arc::new(crate::ingress::sources::SourceAuth::new(source.clone())),
                )
            })
            .collect(),
        events: Some(Arc::new(store.clone())),
        connectors: Some(Arc::clone(&connectors)),
    };
    tracing::info!(
        listen = %config.server.listen,
        admin = %config.admin.listen,
        destinations = ?runner.destination_names(),
        store = %config.store.path.display(),
        "wabridge is serving."
    );
    let mut public_shutdown = shutdown.clone();
    let public_server = tokio::spawn(async move {
        axum::serve(public, ingress::router(state))
            .with_graceful_shutdown(async move {
                let _ = public_shutdown.changed().await;
            })
            .await
    });

    wait_for_signal().await;
    tracing::info!("Shutting down: no new webhooks; finishing jobs in flight.");
    let _ = shutdown_tx.send(true);
    let _ = public_server.await;
    let _ = admin_server.await;
    let _ = dispatcher.await;
    let _ = workers.await;
    let _ = catalog.await;
    let _ = replies.await;
    let _ = crm_events.await;
    store.durable().await.context("final flush")?;
    tracing::info!("Stopped.");
    Ok(())
}

/// Builds every `[connectors.<name>]` section (no network calls).
pub fn build_connectors(config: &Config) -> anyhow::Result<Connectors> {
    let mut connectors = Connectors::default();
    for (name, section) in &config.connectors {
        let built = section
            .build(&BuildContext {
                store_dir: config.store.path.clone(),
                name: name.clone(),
            })
            .map_err(|err| anyhow::anyhow!("connector {name}: {err}"))?;
        if let Some(ticketing) = built.ticketing {
            connectors
                .ticketing
                .insert(name.clone(), Arc::from(ticketing));
        }
        if let Some(crm) = built.crm {
            connectors.crm.insert(name.clone(), Arc::from(crm));
        }
    }
    Ok(connectors)
}

/// Checks the mappings against the stored template catalog: logs what may still change (a
/// template not created or approved yet) and returns the mismatches (parameters that do not
/// fit an existing template). Nothing to check while no catalog was synced.
fn check_mappings_against_catalog(
    mappings: &crate::mapping::MappingSet,
    store: &Store,
) -> anyhow::Result<Vec<crate::mapping::MappingProblem>> {
    let catalog: Vec<crate::mapping::CatalogTemplate> = store
        .templates()
        .context("reading the template catalog")?
        .iter()
        .map(Into::into)
        .collect();
    if catalog.is_empty() {
        return Ok(Vec::new());
    }
    let (wrong, pending) = mappings.catalog_problems(&catalog);
    for problem in pending {
        tracing::warn!(problem = %problem, "A mapping's template is not in the catalog yet; its sends wait in the dead letters until it is approved.");
    }
    Ok(wrong)
}

/// Keeps the template catalog current: at start, then every `templates_sync_minutes`
/// (webhooks update it in between). Failures are logged and retried at the next round.
/// After each sync the mappings are checked against the new catalog.
async fn sync_templates(
    store: Store,
    whatsapp: crate::config::WhatsAppConfig,
    mappings: Arc<crate::mapping::MappingSet>,
    mut shutdown: watch::Receiver<bool>,
) {
    if whatsapp.waba_ids().is_empty() {
        return;
    }
    let every = Duration::from_secs(whatsapp.templates_sync_minutes * 60);
    loop {
        match admin::ops::templates_sync(&store, &whatsapp).await {
            Ok(count) => {
                tracing::info!(templates = count, "Template catalog synced.");
                match check_mappings_against_catalog(&mappings, &store) {
                    Ok(wrong) => {
                        for problem in wrong {
                            tracing::error!(problem = %problem, "A mapping does not fit its template in the new catalog; its sends will be refused until the mapping is fixed.");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), "Checking the mappings against the catalog failed.")
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "Template catalog sync failed; retrying at the next round.")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
