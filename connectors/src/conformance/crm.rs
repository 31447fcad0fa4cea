//! The conformance suite every CRM connector passes against a local wiremock server.
//!
//! The same contract as the ticketing suite, for [`Crm`]: a connector's test implements
//! [`CrmSubject`] (mount the system's happy path, matching the credential; build the connector
//! for a [`Target`]) and [`run_crm_suite`] plays every case on a fresh [`Harness`], for each
//! of the three writing operations — `upsert_contact`, `log_activity` fresh, and
//! `log_activity` with `maybe_delivered` — and panics listing **all** failed cases at once:
//!
//! - 2xx → `upsert_contact` returns a non-empty id, both `log_activity` calls succeed, and
//!   `check()` passes;
//! - 5xx, 408 and 429 → `Retryable`, `Retry-After: 7` → `retry_after == Some(7 s)`; injected
//!   into every request (the first call fails) and into writes only (the first write fails);
//! - other 4xx → `Permanent` (404 only on writes: on a read it may mean "gone");
//! - no answer within the connector's timeout, or connection refused → `Retryable`;
//! - every activity id (the wamid, the idempotency key) is in what `log_activity` writes;
//! - the secret appears neither in the connector's `Debug` output nor in any error.
//!
//! The happy path must serve the contact [`CONTACT_ID`] with no entries logged yet, so the
//! `maybe_delivered` lookup finds nothing and writes both [`activities`].
//!
//! ```text
//! struct Hubspot;
//! #[async_trait::async_trait]
//! impl conformance::crm::CrmSubject for Hubspot { /* mount_happy_path, build */ }
//! #[tokio::test]
//! async fn hubspot_passes_the_crm_conformance_suite() {
//!     conformance::crm::run_crm_suite(&Hubspot).await
//! }
//! ```

use std::time::Duration;

use chrono::TimeZone as _;
use wiremock::{MockServer, ResponseTemplate};

use super::{conversation, Expect, Harness, Inject, Report, Target, MESSAGE_ID, SECRET, TIMEOUT};
use crate::{Activity, ConnectorError, Crm, CrmContactId, Direction, Secret};

/// The CRM's id of the suite's contact, passed to `log_activity`.
pub const CONTACT_ID: &str = "512";
/// The id of the suite's second (outbound) activity.
pub const OUTBOUND_ID: &str = "wamid.HBgMOTY4OTAwMDAwMDAxFQIAERgSQ09ORk9STUFOQ0VPVVQwMDIA";

/// A CRM connector under test.
#[async_trait::async_trait]
pub trait CrmSubject: Send + Sync {
    /// Mounts mocks that answer every call `upsert_contact`, `log_activity` (fresh and with
    /// `maybe_delivered`, for [`CONTACT_ID`], nothing logged yet) and `check` make, the way the
    /// real system documents them. Match the credential.
    async fn mount_happy_path(&self, server: &MockServer);

    /// Builds the connector for `target`.
    fn build(&self, target: &Target) -> Result<Box<dyn Crm>, ConnectorError>;
}

/// The messages the suite logs: the customer's ([`MESSAGE_ID`]) and the business's answer
/// ([`OUTBOUND_ID`]).
pub fn activities() -> Vec<Activity> {
    let at = |minute| {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 9, minute, 0)
            .single()
            .unwrap_or_else(chrono::Utc::now)
    };
    vec![
        Activity {
            id: MESSAGE_ID.to_owned(),
            direction: Direction::Inbound,
            at: at(30),
            text: "Where is my order #1001?".to_owned(),
        },
        Activity {
            id: OUTBOUND_ID.to_owned(),
            direction: Direction::Outbound,
            at: at(31),
            text: "It left our warehouse today.\nTracking: 1Z999".to_owned(),
        },
    ]
}

/// One writing operation of the CRM API.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Upsert,
    Log { maybe_delivered: bool },
}

const OPERATIONS: [Operation; 3] = [
    Operation::Upsert,
    Operation::Log {
        maybe_delivered: false,
    },
    Operation::Log {
        maybe_delivered: true,
    },
];

async fn start(subject: &dyn CrmSubject) -> Harness {
    let server = MockServer::start().await;
    subject.mount_happy_path(&server).await;
    Harness { server }
}

async fn perform(connector: &dyn Crm, operation: Operation) -> Result<(), ConnectorError> {
    match operation {
        Operation::Upsert => {
            let CrmContactId(id) = connector.upsert_contact(&conversation().contact).await?;
            if id.trim().is_empty() {
                return Err(ConnectorError::Permanent {
                    reason: "conformance: upsert_contact returned an empty id".to_owned(),
                });
            }
            Ok(())
        }
        Operation::Log { maybe_delivered } => {
            connector
                .log_activity(
                    &CrmContactId(CONTACT_ID.to_owned()),
                    &conversation(),
                    &activities(),
                    maybe_delivered,
                )
                .await
        }
    }
}

async fn run(
    subject: &dyn CrmSubject,
    target: &Target,
    operation: Operation,
) -> Result<(), ConnectorError> {
    let connector = subject.build(target)?;
    perform(connector.as_ref(), operation).await
}

/// Plays one injected failure against every operation and (for [`Inject::All`]) `check()`.
async fn failure_case(
    subject: &dyn CrmSubject,
    report: &mut Report,
    name: &str,
    inject: Inject,
    response: impl Fn() -> ResponseTemplate,
    expect: Expect,
) {
    for operation in OPERATIONS {
        let harness = start(subject).await;
        match inject {
            Inject::All => harness.fail_all(response()).await,
            Inject::Writes => harness.fail_writes(response()).await,
        }
        let result = run(subject, &harness.target(), operation).await;
        report.outcome(
            &format!("{operation:?} with {name} on {inject:?}"),
            result,
            expect,
        );
    }
    if let Inject::All = inject {
        let harness = start(subject).await;
        harness.fail_all(response()).await;
        let result = match subject.build(&harness.target()) {
            Ok(connector) => connector.check().await,
            Err(err) => Err(err),
        };
        report.outcome(&format!("check with {name}"), result, expect);
    }
}

/// Runs every case (see the module docs); panics listing all failures.
pub async fn run_crm_suite(subject: &dyn CrmSubject) {
    let mut report = Report::default();

    // 2xx → done, and every activity id is in what log_activity wrote.
    for operation in OPERATIONS {
        let harness = start(subject).await;
        match run(subject, &harness.target(), operation).await {
            Ok(()) => {
                if let Operation::Log { .. } = operation {
                    let bodies = harness.written_bodies().await;
                    for id in [MESSAGE_ID, OUTBOUND_ID] {
                        if !bodies.iter().any(|body| body.contains(id)) {
                            report.fail(format!(
                                "{operation:?}: no write carried the activity id {id} ({} writes)",
                                bodies.len()
                            ));
                        }
                    }
                }
            }
            Err(err) => report.fail(format!("{operation:?} on the happy path: {err}")),
        }
    }
    {
        let harness = start(subject).await;
        let result = match subject.build(&harness.target()) {
            Ok(connector) => connector.check().await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            report.fail(format!("check on the happy path: {err}"));
        }
    }

    // Retryable statuses, with and without Retry-After.
    for inject in [Inject::All, Inject::Writes] {
        for status in [500u16, 502, 503, 504, 408, 429] {
            failure_case(
                subject,
                &mut report,
                &format!("HTTP {status}"),
                inject,
                || ResponseTemplate::new(status).set_body_string("{\"message\":\"busy\"}"),
                Expect::Retryable(None),
            )
            .await;
        }
        for status in [429u16, 503] {
            failure_case(
                subject,
                &mut report,
                &format!("HTTP {status} + Retry-After: 7"),
                inject,
                || ResponseTemplate::new(status).insert_header("Retry-After", "7"),
                Expect::Retryable(Some(Duration::from_secs(7))),
            )
            .await;
        }
    }

    // Permanent statuses; 404 only on writes.
    for (inject, statuses) in [
        (Inject::All, &[400u16, 401, 403, 422][..]),
        (Inject::Writes, &[400u16, 401, 403, 404, 409, 413, 422][..]),
    ] {
        for &status in statuses {
            failure_case(
                subject,
                &mut report,
                &format!("HTTP {status}"),
                inject,
                || {
                    ResponseTemplate::new(status)
                        .set_body_string(format!("{{\"message\":\"error {status}\"}}"))
                },
                Expect::Permanent,
            )
            .await;
        }
    }

    // No answer within the timeout.
    failure_case(
        subject,
        &mut report,
        "an answer later than the timeout",
        Inject::All,
        || ResponseTemplate::new(200).set_delay(TIMEOUT + Duration::from_millis(1500)),
        Expect::Retryable(None),
    )
    .await;

    // Connection refused: a port that was just free.
    match std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
    {
        Ok(port) => {
            let target = Target {
                url: format!("http://127.0.0.1:{port}"),
                secret: Secret::new(SECRET),
                timeout: TIMEOUT,
            };
            for operation in OPERATIONS {
                let result = run(subject, &target, operation).await;
                report.outcome(
                    &format!("{operation:?} with the connection refused"),
                    result,
                    Expect::Retryable(None),
                );
            }
        }
        Err(err) => report.fail(format!("could not find a free port: {err}")),
    }

    // No secret in Debug output or in any error.
    {
        let harness = start(subject).await;
        match subject.build(&harness.target()) {
            Ok(connector) => {
                if format!("{connector:?}").contains(SECRET) {
                    report.fail("the connector's Debug output shows the secret".to_owned());
                }
            }
            Err(err) => report.fail(format!("build: {err}")),
        }
    }
    if report.reasons.iter().any(|reason| reason.contains(SECRET)) {
        report.fail("an error message shows the secret".to_owned());
    }

    assert!(
        report.failures.is_empty(),
        "{} CRM conformance case(s) failed:\n  {}",
        report.failures.len(),
        report.failures.join("\n  ")
    );
}
