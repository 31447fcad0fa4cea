//! Property test of guarantee 4: random interleavings of customer messages, consent events,
//! template status and category changes, clock jumps and send attempts. A deliberately simple
//! reference model, recomputed from the raw list of facts at every send and written without
//! looking at `decide`, says what is forbidden; the test asserts that `decide` never allows a
//! forbidden send and never blocks a permitted one.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

/// One raw fact, exactly as it happened (timestamps may be out of order).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fact {
    Inbound(DateTime<Utc>),
    OptIn(DateTime<Utc>),
    OptOut(DateTime<Utc>),
    MarketingStop(DateTime<Utc>),
    MarketingResume(DateTime<Utc>),
    Undeliverable(DateTime<Utc>),
}

#[derive(Debug, Clone)]
enum ParamTweak {
    Exact,
    TrailingZeroButton,
    BodyPlusOne,
    BodyMinusOne,
    HeaderPlusOne,
    DropButtons,
}

#[derive(Debug, Clone)]
enum Step {
    Inbound {
        delay: i64,
    },
    OptIn {
        delay: i64,
    },
    OptOut {
        delay: i64,
        source: u8,
    },
    MarketingStop {
        delay: i64,
    },
    MarketingResume {
        delay: i64,
    },
    Undeliverable {
        delay: i64,
    },
    TemplateStatus {
        index: usize,
        status: TemplateStatus,
    },
    TemplateCategory {
        index: usize,
        category: Category,
    },
    Jump {
        seconds: i64,
    },
    JumpToWindowEdge {
        offset: i64,
    },
    SendFreeForm {
        origin: Origin,
    },
    SendTemplate {
        index: usize,
        business_initiated: bool,
        tweak: ParamTweak,
    },
}

const STATUSES: [&str; 11] = [
    "APPROVED",
    "APPROVED",
    "APPROVED",
    "APPROVED",
    "PENDING",
    "PAUSED",
    "PAUSED",
    "REJECTED",
    "DISABLED",
    "DELETED",
    "IN_APPEAL",
];
const CATEGORIES: [&str; 4] = ["MARKETING", "UTILITY", "AUTHENTICATION", "NEW_KIND"];
const ORIGINS: [Origin; 3] = [
    Origin::AgentReply,
    Origin::BotReply,
    Origin::OptOutConfirmation,
];
const TWEAKS: [ParamTweak; 11] = [
    ParamTweak::Exact,
    ParamTweak::Exact,
    ParamTweak::Exact,
    ParamTweak::Exact,
    ParamTweak::Exact,
    ParamTweak::Exact,
    ParamTweak::TrailingZeroButton,
    ParamTweak::BodyPlusOne,
    ParamTweak::BodyMinusOne,
    ParamTweak::HeaderPlusOne,
    ParamTweak::DropButtons,
];

/// One step, drawn from a flat tuple of plain ranges (nested `prop_oneof!` is ~30x slower to
/// generate in debug builds, and this test must stay fast under `cargo test`).
///
/// Event timestamps are the clock minus a delay: 0 often (ties), sometimes hours late,
/// sometimes a little in the future (clock skew).
fn step() -> impl Strategy<Value = Step> {
    (
        0u8..32,
        0u8..8,
        0i64..7_200,
        0u8..=254,
        0usize..3,
        0i64..=48 * 3_600,
        any::<bool>(),
    )
        .prop_map(|(kind, delay_kind, late, pick, index, jump, flag)| {
            let delay = match delay_kind {
                0..=3 => 0,
                4..=6 => late,
                _ => -(late % 300) - 1,
            };
            match kind {
                0..=2 => Step::Inbound { delay },
                3..=4 => Step::OptIn { delay },
                5..=6 => Step::OptOut {
                    delay,
                    source: pick % 5,
                },
                7 => Step::MarketingStop { delay },
                8 => Step::MarketingResume { delay },
                9 => Step::Undeliverable { delay },
                10..=11 => Step::TemplateStatus {
                    index,
                    status: TemplateStatus::from(STATUSES[usize::from(pick) % STATUSES.len()]),
                },
                12 => Step::TemplateCategory {
                    index,
                    category: Category::from(CATEGORIES[usize::from(pick) % CATEGORIES.len()]),
                },
                13..=15 => Step::Jump { seconds: jump },
                16 => Step::JumpToWindowEdge {
                    offset: i64::from(pick % 5) - 2,
                },
                17..=20 => Step::SendFreeForm {
                    origin: ORIGINS[usize::from(pick) % ORIGINS.len()],
                },
                _ => Step::SendTemplate {
                    index,
                    business_initiated: flag,
                    tweak: TWEAKS[usize::from(pick) % TWEAKS.len()].clone(),
                },
            }
        })
}

// ---- The reference model: what is forbidden, from the raw facts alone. ----

fn times(facts: &[Fact], pick: fn(&Fact) -> Option<DateTime<Utc>>) -> Vec<DateTime<Utc>> {
    facts.iter().filter_map(pick).collect()
}

fn ins(f: &Fact) -> Option<DateTime<Utc>> {
    match f {
        Fact::OptIn(at) => Some(*at),
        _ => None,
    }
}

fn outs(f: &Fact) -> Option<DateTime<Utc>> {
    match f {
        Fact::OptOut(at) => Some(*at),
        _ => None,
    }
}

fn inbounds(f: &Fact) -> Option<DateTime<Utc>> {
    match f {
        Fact::Inbound(at) => Some(*at),
        _ => None,
    }
}

/// Opted out: some opt-out is at least as late as every opt-in.
fn ref_opted_out(facts: &[Fact]) -> bool {
    let opt_ins = times(facts, ins);
    times(facts, outs)
        .iter()
        .any(|out| opt_ins.iter().all(|opt_in| opt_in <= out))
}

/// Opted in at `now`: some opt-in not after `now` that every opt-out precedes.
fn ref_opted_in(facts: &[Fact], now: DateTime<Utc>) -> bool {
    let opt_outs = times(facts, outs);
    times(facts, ins)
        .iter()
        .any(|opt_in| *opt_in <= now && opt_outs.iter().all(|out| out < opt_in))
}

/// Marketing stopped: some stop at least as late as every resume.
fn ref_marketing_stopped(facts: &[Fact]) -> bool {
    let resumes: Vec<_> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::MarketingResume(at) => Some(*at),
            _ => None,
        })
        .collect();
    facts.iter().any(|f| match f {
        Fact::MarketingStop(stop) => resumes.iter().all(|resume| resume <= stop),
        _ => false,
    })
}

/// Undeliverable: some 131026 report that no customer message came strictly after.
fn ref_undeliverable(facts: &[Fact]) -> bool {
    let messages = times(facts, inbounds);
    facts.iter().any(|f| match f {
        Fact::Undeliverable(at) => messages.iter().all(|message| message <= at),
        _ => false,
    })
}

/// Window open: some customer message less than 24 h minus the margin ago.
fn ref_window_open(facts: &[Fact], now: DateTime<Utc>, margin: Duration) -> bool {
    let margin_seconds = margin.num_seconds().max(0);
    times(facts, inbounds)
        .iter()
        .any(|message| (now - *message).num_seconds() < 24 * 3_600 - margin_seconds)
}

fn trimmed(buttons: &[usize]) -> Vec<usize> {
    let mut buttons = buttons.to_vec();
    while buttons.last() == Some(&0) {
        buttons.pop();
    }
    buttons
}

/// What the reference says about a send: the reasons it may not go out now (empty = permitted).
fn ref_forbidden(
    intent: &Intent,
    facts: &[Fact],
    now: DateTime<Utc>,
    margin: Duration,
) -> Vec<&'static str> {
    let mut why = Vec::new();
    let window = ref_window_open(facts, now, margin);
    if ref_undeliverable(facts) {
        why.push("undeliverable");
    }
    match intent {
        Intent::FreeForm { origin } => {
            if ref_opted_out(facts) && *origin != Origin::OptOutConfirmation {
                why.push("opted_out");
            }
            if !window {
                why.push("window_closed");
            }
        }
        Intent::Template {
            template,
            params,
            business_initiated,
        } => {
            if ref_opted_out(facts) {
                why.push("opted_out");
            }
            if template.status != TemplateStatus::Approved {
                why.push("not_approved");
            }
            if params.body != template.body_params
                || params.header != template.header_params
                || trimmed(&params.buttons) != trimmed(&template.button_params)
            {
                why.push("param_mismatch");
            }
            if (*business_initiated || !window) && !ref_opted_in(facts, now) {
                why.push("no_opt_in");
            }
            let marketing_like =
                matches!(template.category, Category::Marketing | Category::Other(_));
            if marketing_like && ref_marketing_stopped(facts) {
                why.push("marketing_opt_out");
            }
        }
    }
    why
}

fn opt_out_source(n: u8) -> OptOutSource {
    match n {
        0 => OptOutSource::Keyword("STOP".into()),
        1 => OptOutSource::Button,
        2 => OptOutSource::UserPreferences,
        3 => OptOutSource::Error131050,
        _ => OptOutSource::Admin,
    }
}

fn initial_catalog() -> Vec<TemplateInfo> {
    let make = |name: &str, category, status, body, header, buttons: Vec<usize>| TemplateInfo {
        name: name.into(),
        language: "en_US".into(),
        category,
        status,
        body_params: body,
        header_params: header,
        button_params: buttons,
    };
    vec![
        make(
            "spring_sale",
            Category::Marketing,
            TemplateStatus::Approved,
            1,
            1,
            vec![0, 1],
        ),
        make(
            "order_update",
            Category::Utility,
            TemplateStatus::Approved,
            2,
            0,
            vec![],
        ),
        make(
            "login_code",
            Category::Authentication,
            TemplateStatus::Paused,
            1,
            0,
            vec![1],
        ),
    ]
}

fn tweak(expected: ParamCounts, how: &ParamTweak) -> ParamCounts {
    let mut got = expected;
    match how {
        ParamTweak::Exact => {}
        ParamTweak::TrailingZeroButton => got.buttons.push(0),
        ParamTweak::BodyPlusOne => got.body += 1,
        ParamTweak::BodyMinusOne => got.body = got.body.saturating_sub(1),
        ParamTweak::HeaderPlusOne => got.header += 1,
        ParamTweak::DropButtons => got.buttons.clear(),
    }
    got
}

#[derive(Default)]
struct Tally {
    allowed: usize,
    blocked: usize,
    deferred: usize,
}

fn run(steps: &[Step], margin_minutes: i64, tally: &mut Tally) -> Result<(), TestCaseError> {
    let config = PolicyConfig {
        window_margin: Duration::minutes(margin_minutes),
    };
    let mut clock = Utc
        .with_ymd_and_hms(2026, 5, 21, 0, 0, 0)
        .single()
        .ok_or_else(|| TestCaseError::fail("bad start time"))?;
    let mut contact = ContactState::new();
    let mut facts: Vec<Fact> = Vec::new();
    let mut catalog = initial_catalog();
    let at = |clock: DateTime<Utc>, delay: i64| clock - Duration::seconds(delay);

    for step in steps {
        match step {
            Step::Inbound { delay } => {
                let t = at(clock, *delay);
                contact.record_inbound(t);
                facts.push(Fact::Inbound(t));
            }
            Step::OptIn { delay } => {
                let t = at(clock, *delay);
                contact.record(ConsentEvent::OptIn {
                    at: t,
                    source: "web form".into(),
                    evidence: format!("form-{}", facts.len()),
                });
                facts.push(Fact::OptIn(t));
            }
            Step::OptOut { delay, source } => {
                let t = at(clock, *delay);
                contact.record(ConsentEvent::OptOut {
                    at: t,
                    source: opt_out_source(*source),
                });
                facts.push(Fact::OptOut(t));
            }
            Step::MarketingStop { delay } => {
                let t = at(clock, *delay);
                contact.record(ConsentEvent::MarketingStop { at: t });
                facts.push(Fact::MarketingStop(t));
            }
            Step::MarketingResume { delay } => {
                let t = at(clock, *delay);
                contact.record(ConsentEvent::MarketingResume { at: t });
                facts.push(Fact::MarketingResume(t));
            }
            Step::Undeliverable { delay } => {
                let t = at(clock, *delay);
                contact.record(ConsentEvent::Undeliverable { at: t });
                facts.push(Fact::Undeliverable(t));
            }
            Step::TemplateStatus { index, status } => catalog[*index].status = status.clone(),
            Step::TemplateCategory { index, category } => {
                catalog[*index].category = category.clone()
            }
            Step::Jump { seconds } => clock += Duration::seconds(*seconds),
            Step::JumpToWindowEdge { offset } => {
                if let Some(edge) = contact.last_inbound_at {
                    let target = edge + Duration::hours(24) - config.window_margin
                        + Duration::seconds(*offset);
                    clock = clock.max(target);
                }
            }
            Step::SendFreeForm { origin } => {
                let intent = Intent::FreeForm { origin: *origin };
                check(&intent, &contact, &facts, clock, &config, tally)?;
            }
            Step::SendTemplate {
                index,
                business_initiated,
                tweak: how,
            } => {
                let template = catalog[*index].clone();
                let params = tweak(template.expected_params(), how);
                let intent = Intent::Template {
                    template,
                    params,
                    business_initiated: *business_initiated,
                };
                check(&intent, &contact, &facts, clock, &config, tally)?;
            }
        }
    }
    let json = serde_json::to_string(&contact).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: ContactState =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, contact);
    Ok(())
}

fn check(
    intent: &Intent,
    contact: &ContactState,
    facts: &[Fact],
    now: DateTime<Utc>,
    config: &PolicyConfig,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let decision = decide(intent, contact, now, config);
    let forbidden = ref_forbidden(intent, facts, now, config.window_margin);
    let context = || format!("{intent:?} at {now}: decide {decision:?}, reference {forbidden:?}");
    match &decision {
        Decision::Allow => {
            tally.allowed += 1;
            // No forbidden send is ever allowed.
            prop_assert!(forbidden.is_empty(), "{}", context());
        }
        Decision::Block(reason) => {
            tally.blocked += 1;
            // No over-blocking: a permitted send goes out.
            prop_assert!(!forbidden.is_empty(), "{}", context());
            // Every block names a reason the reference agrees with.
            let agreed = match reason {
                BlockReason::TemplateNotSendable { .. } => "not_approved",
                BlockReason::OptedOut { .. }
                | BlockReason::Undeliverable { .. }
                | BlockReason::WindowClosed { .. }
                | BlockReason::ParamMismatch { .. }
                | BlockReason::NoOptIn
                | BlockReason::MarketingOptOut { .. } => reason.kind(),
            };
            prop_assert!(forbidden.contains(&agreed), "{}", context());
        }
        Decision::Defer { reason, .. } => {
            tally.deferred += 1;
            // Deferred only when the template's review state is the sole obstacle.
            prop_assert_eq!(&forbidden, &vec!["not_approved"], "{}", context());
            let Intent::Template { template, .. } = intent else {
                return Err(TestCaseError::fail(context()));
            };
            let expected = match template.status {
                TemplateStatus::Paused => "template_paused",
                TemplateStatus::Pending => "template_pending",
                _ => "not deferrable",
            };
            prop_assert_eq!(reason.kind(), expected, "{}", context());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn no_forbidden_send_is_ever_allowed_and_consent_never_over_blocks(
        steps in prop::collection::vec(step(), 1..80),
        margin_minutes in prop_oneof![Just(0i64), Just(5), 0i64..120],
    ) {
        let mut tally = Tally::default();
        run(&steps, margin_minutes, &mut tally)?;
    }
}

/// The generator reaches every kind of outcome (otherwise the property above proves little).
#[test]
fn generated_histories_reach_allow_block_and_defer() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::with_cases(200));
    let mut tally = Tally::default();
    for _ in 0..200 {
        let tree = (prop::collection::vec(step(), 1..80))
            .new_tree(&mut runner)
            .expect("strategy generates");
        run(&tree.current(), 5, &mut tally).expect("property holds");
    }
    assert!(tally.allowed > 100, "allowed {}", tally.allowed);
    assert!(tally.blocked > 100, "blocked {}", tally.blocked);
    assert!(tally.deferred > 10, "deferred {}", tally.deferred);
}
