//! The conformance suite every HTTP connector passes against a local wiremock server.
//!
//! A connector's test implements [`Subject`]: it mounts the system's happy path (mocks that
//! answer like the real system documents, matching the credential so an unauthenticated call
//! falls through to wiremock's 404) and builds the connector for a [`Target`]. [`run_suite`]
//! then plays every case on a fresh [`Harness`], injecting failures with higher-priority mocks,
//! and panics listing **all** failed cases at once:
//!
//! - 2xx → delivered (for each of [`Subject::contexts`]) and `check()` passes;
//! - 5xx, 408 and 429 → `Retryable`, `Retry-After: 7` → `retry_after == Some(7 s)`; on the first
//!   call and on the first write;
//! - other 4xx → `Permanent`;
//! - no answer within the connector's timeout, or connection refused → `Retryable`;
//! - the idempotency key (the message id) is in what is written to the system;
//! - the secret appears neither in the connector's `Debug` output nor in any error.
//!
//! ```text
//! struct Rt;
//! #[async_trait::async_trait]
//! impl conformance::Subject for Rt { /* mount_happy_path, build */ }
//! #[tokio::test]
//! async fn rt_passes_the_conformance_suite() { conformance::run_suite(&Rt).await }
//! ```
//!
//! CRM connectors pass the same cases through [`crm::run_crm_suite`].

pub mod crm;

use std::time::Duration;

use chrono::TimeZone as _;
use wiremock::matchers::any;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::{
    Attachment, ConnectorError, Contact, Conversation, DeliveryContext, InboundMessage, Secret,
    TicketRef, TicketSystem,
};

/// The credential the suite hands to the connector; it must never show up in output.
pub const SECRET: &str = "conformance-s3cret-9f2c41d7";
/// The id of the message the suite delivers (the idempotency key).
pub const MESSAGE_ID: &str = "wamid.HBgMOTY4OTAwMDAwMDAxFQIAEhggQ09ORk9STUFOQ0UwMDAx";
/// The ticket id the default contexts pretend the daemon recorded.
pub const KNOWN_TICKET: &str = "1";
/// The timeout the suite asks the connector to use.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Where the connector under test must point.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL of the mock server (no trailing slash), as an admin would configure it.
    pub url: String,
    /// The credential to configure ([`SECRET`]).
    pub secret: Secret,
    /// The per-call timeout to configure.
    pub timeout: Duration,
}

/// A connector under test.
#[async_trait::async_trait]
pub trait Subject: Send + Sync {
    /// Mounts mocks that answer every call `deliver` (for each of [`Subject::contexts`]) and
    /// `check` make, the way the real system documents them. Match the credential.
    async fn mount_happy_path(&self, server: &MockServer);

    /// Builds the connector for `target`.
    fn build(&self, target: &Target) -> Result<Box<dyn TicketSystem>, ConnectorError>;

    /// The delivery contexts to exercise; by default a new conversation, a recorded ticket
    /// ([`KNOWN_TICKET`]), and the same after a possible earlier delivery.
    fn contexts(&self) -> Vec<DeliveryContext> {
        vec![
            DeliveryContext::default(),
            DeliveryContext {
                ticket: Some(TicketRef(KNOWN_TICKET.to_owned())),
                maybe_delivered: false,
            },
            DeliveryContext {
                ticket: Some(TicketRef(KNOWN_TICKET.to_owned())),
                maybe_delivered: true,
            },
        ]
    }
}

/// The conversation the suite delivers into.
pub fn conversation() -> Conversation {
    Conversation {
        phone_number_id: "106540352242922".to_owned(),
        display_phone_number: Some("15550783881".to_owned()),
        contact: Contact {
            wa_id: Some("96890000001".to_owned()),
            user_id: None,
            profile_name: Some("Aisha".to_owned()),
        },
    }
}

/// The message the suite delivers: text and one small attachment, id [`MESSAGE_ID`].
pub fn message() -> InboundMessage {
    InboundMessage {
        id: MESSAGE_ID.to_owned(),
        timestamp: chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 30, 0)
            .single()
            .unwrap_or_else(chrono::Utc::now),
        kind: "image".to_owned(),
        text: "Where is my order #1001? (photo attached)".to_owned(),
        attachments: vec![Attachment {
            filename: "parcel.jpg".to_owned(),
            mime_type: "image/jpeg".to_owned(),
            data: vec![
                0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
            ],
        }],
    }
}

/// Matches requests that may write (every method but GET and HEAD).
struct Writes;

impl Match for Writes {
    fn matches(&self, request: &Request) -> bool {
        request.method != wiremock::http::Method::GET
            && request.method != wiremock::http::Method::HEAD
    }
}

/// One mock server with the subject's happy path mounted.
pub struct Harness {
    /// The server; mount more mocks on it as needed.
    pub server: MockServer,
}

impl Harness {
    /// Starts a server and mounts the subject's happy path.
    pub async fn start(subject: &dyn Subject) -> Self {
        let server = MockServer::start().await;
        subject.mount_happy_path(&server).await;
        Harness { server }
    }

    /// Where the connector must point.
    pub fn target(&self) -> Target {
        Target {
            url: self.server.uri(),
            secret: Secret::new(SECRET),
            timeout: TIMEOUT,
        }
    }

    /// Answers every request with `response`, ahead of the happy path.
    pub async fn fail_all(&self, response: ResponseTemplate) {
        Mock::given(any())
            .respond_with(response)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Answers every write (non-GET) with `response`, ahead of the happy path.
    pub async fn fail_writes(&self, response: ResponseTemplate) {
        Mock::given(Writes)
            .respond_with(response)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// The bodies of the writes received so far, as text.
    pub async fn written_bodies(&self) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| Writes.matches(request))
            .map(|request| String::from_utf8_lossy(&request.body).into_owned())
            .collect()
    }
}

/// Which requests a failure is injected into.
#[derive(Debug, Clone, Copy)]
enum Inject {
    All,
    Writes,
}

/// What a case expects of the outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Retryable(Option<Duration>),
    Permanent,
}

/// The failures of the suite, collected so every one is reported.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    reasons: Vec<String>,
}

impl Report {
    fn fail(&mut self, case: String) {
        self.failures.push(case);
    }

    fn outcome(&mut self, case: &str, result: Result<(), ConnectorError>, expect: Expect) {
        match (&result, expect) {
            (Err(ConnectorError::Retryable { retry_after, .. }), Expect::Retryable(want)) => {
                if want.is_some() && *retry_after != want {
                    self.fail(format!(
                        "{case}: retry_after {retry_after:?}, expected {want:?}"
                    ));
                }
            }
            (Err(ConnectorError::Permanent { .. }), Expect::Permanent) => {}
            (other, want) => self.fail(format!("{case}: got {other:?}, expected {want:?}")),
        }
        if let Err(err) = result {
            self.reasons.push(err.to_string());
        }
    }
}

async fn deliver(
    subject: &dyn Subject,
    harness: &Harness,
    context: &DeliveryContext,
) -> Result<(), ConnectorError> {
    let connector = subject.build(&harness.target())?;
    connector
        .deliver(&conversation(), &message(), context)
        .await
        .map(drop)
}

async fn check(subject: &dyn Subject, harness: &Harness) -> Result<(), ConnectorError> {
    subject.build(&harness.target())?.check().await
}

/// Plays one injected failure against every context and (for [`Inject::All`]) `check()`.
async fn failure_case(
    subject: &dyn Subject,
    report: &mut Report,
    name: &str,
    inject: Inject,
    response: impl Fn() -> ResponseTemplate,
    expect: Expect,
) {
    for context in subject.contexts() {
        let harness = Harness::start(subject).await;
        match inject {
            Inject::All => harness.fail_all(response()).await,
            Inject::Writes => harness.fail_writes(response()).await,
        }
        let result = deliver(subject, &harness, &context).await;
        report.outcome(
            &format!("deliver {context:?} with {name} on {inject:?}"),
            result,
            expect,
        );
    }
    if let Inject::All = inject {
        let harness = Harness::start(subject).await;
        harness.fail_all(response()).await;
        let result = check(subject, &harness).await;
        report.outcome(&format!("check with {name}"), result, expect);
    }
}

/// Runs every case (see the module docs); panics listing all failures.
pub async fn run_suite(subject: &dyn Subject) {
    let mut report = Report::default();

    // 2xx → delivered, and the idempotency key is in what was written.
    for context in subject.contexts() {
        let harness = Harness::start(subject).await;
        match deliver(subject, &harness, &context).await {
            Ok(()) => {
                let bodies = harness.written_bodies().await;
                if !bodies.iter().any(|body| body.contains(MESSAGE_ID)) {
                    report.fail(format!(
                        "deliver {context:?}: no write carried the message id ({} writes)",
                        bodies.len()
                    ));
                }
            }
            Err(err) => report.fail(format!("deliver {context:?} on the happy path: {err}")),
        }
    }
    {
        let harness = Harness::start(subject).await;
        if let Err(err) = check(subject, &harness).await {
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

    // Permanent statuses. A 404 on a read may mean "gone, open a new one", so 404 is only
    // injected into writes.
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
    {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port());
        match port {
            Ok(port) => {
                let target = Target {
                    url: format!("http://127.0.0.1:{port}"),
                    secret: Secret::new(SECRET),
                    timeout: TIMEOUT,
                };
                for context in subject.contexts() {
                    let result = match subject.build(&target) {
                        Ok(connector) => connector
                            .deliver(&conversation(), &message(), &context)
                            .await
                            .map(drop),
                        Err(err) => Err(err),
                    };
                    report.outcome(
                        &format!("deliver {context:?} with the connection refused"),
                        result,
                        Expect::Retryable(None),
                    );
                }
            }
            Err(err) => report.fail(format!("could not find a free port: {err}")),
        }
    }

    // No secret in Debug output or in any error.
    {
        let harness = Harness::start(subject).await;
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
        "{} conformance case(s) failed:\n  {}",
        report.failures.len(),
        report.failures.join("\n  ")
    );
}
