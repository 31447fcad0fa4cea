//! The policy gate: one pure function, [`decide`], answers for every outbound message "may this
//! be sent now, and if not, why" — [`Decision::Allow`], [`Decision::Block`] with a reason an
//! agent can read, or [`Decision::Defer`] until something outside the business changes.
//!
//! What it guarantees (DESIGN.md, guarantee 4), given the contact's [`ContactState`] and `now`:
//! - **Opt-out wins over everything.** An opted-out contact gets nothing, except a free-form
//!   opt-out confirmation while the customer-service window is open. The latest of opt-in and
//!   opt-out wins, by their own timestamps; on a tie the opt-out wins.
//! - **Business-initiated sends need a recorded opt-in** in effect at `now`. A template sent as a
//!   reply inside the window does not, but one sent after the window closed counts as
//!   business-initiated whatever the caller says.
//! - **Marketing respects the marketing opt-out** (`user_preferences` stop, until a later
//!   resume); a template of a category this version does not know is treated as marketing.
//! - **Free-form only inside the 24-hour window**, computed from Meta's timestamp of the
//!   customer's last message minus a safety margin (never less than zero).
//! - **Templates only when APPROVED with the right parameter counts.** PAUSED or PENDING defer
//!   until the template is approved again; any other status blocks.
//! - A number Meta reported undeliverable (131026) gets nothing until the customer writes again.
//!
//! The module is pure: no I/O, no store, no clock. The caller loads the contact, passes `now`,
//! stores the [`AuditRecord`], and must ask again right before sending (and again for a deferred
//! send), so an opt-out recorded meanwhile takes effect immediately.

mod ledger;
mod template;

#[cfg(test)]
mod proptests;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use ledger::{
    whole_seconds, ConsentEvent, ContactState, OptOutSource, CUSTOMER_SERVICE_WINDOW,
};
pub use template::{Category, ParamCounts, TemplateInfo, TemplateStatus};

/// The default safety margin: free-form sends stop this long before Meta closes the window.
pub const DEFAULT_WINDOW_MARGIN: Duration = Duration::minutes(5);

/// Policy settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Free-form sends stop this long before Meta's 24-hour window closes, so a message queued
    /// at the last second is not refused with 131047. Default 5 minutes; a negative value is
    /// rejected by [`PolicyConfig::validate`] and counts as zero in [`decide`].
    pub window_margin: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            window_margin: DEFAULT_WINDOW_MARGIN,
        }
    }
}

impl PolicyConfig {
    /// Checks the settings without I/O.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        if self.window_margin < Duration::zero() {
            return Err(PolicyConfigError::NegativeWindowMargin);
        }
        if self.window_margin >= CUSTOMER_SERVICE_WINDOW {
            return Err(PolicyConfigError::WindowMarginTooLarge);
        }
        Ok(())
    }
}

/// An invalid [`PolicyConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    /// A negative margin would send free-form messages after Meta closed the window.
    #[error("policy.window_margin must not be negative")]
    NegativeWindowMargin,
    /// A margin of 24 hours or more would never allow a free-form message.
    #[error("policy.window_margin must be shorter than 24 hours")]
    WindowMarginTooLarge,
}

/// Who produced a free-form message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A human agent replied from the ticket or CRM.
    AgentReply,
    /// The bot or an auto-reply answered.
    BotReply,
    /// The short confirmation that an opt-out was recorded.
    OptOutConfirmation,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::AgentReply => "agent reply",
            Origin::BotReply => "bot reply",
            Origin::OptOutConfirmation => "opt-out confirmation",
        }
    }
}

/// What the caller wants to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Intent {
    /// A non-template ("service") message: text, media, interactive...
    FreeForm {
        /// Who produced it.
        origin: Origin,
    },
    /// A template message.
    Template {
        /// The template as Meta last reported it.
        template: TemplateInfo,
        /// The parameter counts of the rendered send.
        params: ParamCounts,
        /// True when the business starts the conversation (order paid, reminder...); false for
        /// a template sent as a reply inside the window.
        business_initiated: bool,
    },
}

impl Intent {
    /// A one-line description for the audit log (no message content, no phone number).
    pub fn summary(&self) -> String {
        match self {
            Intent::FreeForm { origin } => format!("free-form {}", origin.label()),
            Intent::Template {
                template,
                business_initiated,
                ..
            } => format!(
                "template {} ({}, {}), {}",
                template.name,
                template.language,
                template.category,
                if *business_initiated {
                    "business-initiated"
                } else {
                    "reply"
                }
            ),
        }
    }
}

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Send it.
    Allow,
    /// Never send it as it is; dead-letter it and show the reason in the ticket.
    Block(BlockReason),
    /// Not now: keep it and ask again later.
    Defer {
        /// When to ask again; `None` when it depends on an event (a template webhook).
        until: Option<DateTime<Utc>>,
        /// Why it waits.
        reason: DeferReason,
    },
}

impl Decision {
    /// Whether the send may go out.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// A bounded label for metrics: `allow`, or the block or defer reason's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Block(reason) => reason.kind(),
            Decision::Defer { reason, .. } => reason.kind(),
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Allow => f.write_str("Allowed."),
            Decision::Block(reason) => reason.fmt(f),
            Decision::Defer { reason, .. } => reason.fmt(f),
        }
    }
}

/// Why a send is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BlockReason {
    /// The customer opted out.
    OptedOut {
        /// When.
        at: DateTime<Utc>,
        /// How.
        source: OptOutSource,
    },
    /// Meta reported the number undeliverable (131026) and the customer has not written since.
    Undeliverable {
        /// When Meta reported it.
        since: DateTime<Utc>,
    },
    /// A free-form message outside the customer-service window.
    WindowClosed {
        /// When the window closed (margin included); `None` if the customer never wrote.
        closed_at: Option<DateTime<Utc>>,
        /// Whether the customer has opted in, so that a template could reopen the conversation.
        opted_in: bool,
    },
    /// The template's status forbids sending it.
    TemplateNotSendable {
        /// Template name.
        template: String,
        /// Its status.
        status: TemplateStatus,
    },
    /// The send's parameter counts differ from the template's.
    ParamMismatch {
        /// Template name.
        template: String,
        /// What the template takes.
        expected: ParamCounts,
        /// What the send carries.
        got: ParamCounts,
    },
    /// A business-initiated template without an opt-in in effect.
    NoOptIn,
    /// A marketing template to a customer who stopped marketing messages.
    MarketingOptOut {
        /// When marketing was stopped.
        since: DateTime<Utc>,
    },
}

impl BlockReason {
    /// A bounded label for metrics and the dead-letter list.
    pub fn kind(&self) -> &'static str {
        match self {
            BlockReason::OptedOut { .. } => "opted_out",
            BlockReason::Undeliverable { .. } => "undeliverable",
            BlockReason::WindowClosed { .. } => "window_closed",
            BlockReason::TemplateNotSendable { .. } => "template_not_sendable",
            BlockReason::ParamMismatch { .. } => "param_mismatch",
            BlockReason::NoOptIn => "no_opt_in",
            BlockReason::MarketingOptOut { .. } => "marketing_opt_out",
        }
    }

    /// The agent-facing explanation, naming templates from `catalog` that could reopen a closed
    /// window (see [`reopening_templates`]). Same as `Display` for every other reason.
    pub fn explain(&self, catalog: &[TemplateInfo]) -> String {
        match self {
            BlockReason::WindowClosed {
                closed_at,
                opted_in,
            } => {
                let names: Vec<&str> = reopening_templates(catalog)
                    .into_iter()
                    .map(|template| template.name.as_str())
                    .take(3)
                    .collect();
                window_closed_text(*closed_at, *opted_in, Some(&names))
            }
            BlockReason::OptedOut { .. }
            | BlockReason::Undeliverable { .. }
            | BlockReason::TemplateNotSendable { .. }
            | BlockReason::ParamMismatch { .. }
            | BlockReason::NoOptIn
            | BlockReason::MarketingOptOut { .. } => self.to_string(),
        }
    }
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockReason::OptedOut { at, source } => write!(
                f,
                "The customer opted out at {} (via {source}); nothing may be sent until they opt in again.",
                when(*at)
            ),
            BlockReason::Undeliverable { since } => write!(
                f,
                "Meta reported this number undeliverable at {} (131026: not on WhatsApp, terms not accepted or an outdated app); nothing is sent until the customer writes again.",
                when(*since)
            ),
            BlockReason::WindowClosed {
                closed_at,
                opted_in,
            } => f.write_str(&window_closed_text(*closed_at, *opted_in, None)),
            BlockReason::TemplateNotSendable { template, status } => write!(
                f,
                "Template {template} is {status} at Meta and cannot be sent; use another template."
            ),
            BlockReason::ParamMismatch {
                template,
                expected,
                got,
            } => write!(
                f,
                "Template {template} takes {expected} parameters but the message has {got}; fix the mapping."
            ),
            BlockReason::NoOptIn => f.write_str(
                "The customer has not opted in to messages from the business; a business-initiated template needs a recorded opt-in.",
            ),
            BlockReason::MarketingOptOut { since } => write!(
                f,
                "The customer stopped marketing messages at {}; only utility or authentication templates may be sent.",
                when(*since)
            ),
        }
    }
}

impl std::error::Error for BlockReason {}

/// Why a send waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeferReason {
    /// Meta paused the template for low quality; it waits for an APPROVED webhook.
    TemplatePaused {
        /// Template name.
        template: String,
    },
    /// The template is still in review; it waits for an APPROVED webhook.
    TemplatePending {
        /// Template name.
        template: String,
    },
}

impl DeferReason {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DeferReason::TemplatePaused { .. } => "template_paused",
            DeferReason::TemplatePending { .. } => "template_pending",
        }
    }
}

impl std::fmt::Display for DeferReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeferReason::TemplatePaused { template } => write!(
                f,
                "Template {template} is paused by Meta for low quality; the message waits until it is approved again."
            ),
            DeferReason::TemplatePending { template } => write!(
                f,
                "Template {template} is still in review at Meta; the message waits until it is approved."
            ),
        }
    }
}

/// One decision, as the caller stores it in the audit tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the decision was taken (the `now` passed to [`decide`]).
    pub at: DateTime<Utc>,
    /// The contact's store key (phone number id + wa_id).
    pub contact_key: String,
    /// What was to be sent ([`Intent::summary`]).
    pub intent_summary: String,
    /// The answer.
    pub decision: Decision,
}

impl AuditRecord {
    /// Builds the record of one decision.
    pub fn new(
        at: DateTime<Utc>,
        contact_key: impl Into<String>,
        intent: &Intent,
        decision: Decision,
    ) -> Self {
        Self {
            at,
            contact_key: contact_key.into(),
            intent_summary: intent.summary(),
            decision,
        }
    }
}

/// Decides whether `intent` may be sent to `contact` at `now`. See the module documentation for
/// the rules; the checks run from the most to the least final, so a send that can never go out
/// is blocked rather than deferred.
pub fn decide(
    intent: &Intent,
    contact: &ContactState,
    now: DateTime<Utc>,
    config: &PolicyConfig,
) -> Decision {
    match intent {
        Intent::FreeForm { origin } => decide_free_form(*origin, contact, now, config),
        Intent::Template {
            template,
            params,
            business_initiated,
        } => decide_template(template, params, *business_initiated, contact, now, config),
    }
}

fn decide_free_form(
    origin: Origin,
    contact: &ContactState,
    now: DateTime<Utc>,
    config: &PolicyConfig,
) -> Decision {
    if let Some((at, source)) = contact.opted_out() {
        match origin {
            Origin::OptOutConfirmation => {}
            Origin::AgentReply | Origin::BotReply => {
                return Decision::Block(BlockReason::OptedOut {
                    at,
                    source: source.clone(),
                })
            }
        }
    }
    if let Some(since) = contact.undeliverable() {
        return Decision::Block(BlockReason::Undeliverable { since });
    }
    if contact.window_open(now, config.window_margin) {
        Decision::Allow
    } else {
        Decision::Block(BlockReason::WindowClosed {
            closed_at: contact.window_open_until(config.window_margin),
            opted_in: contact.opted_in(now).is_some() && contact.opted_out().is_none(),
        })
    }
}

fn decide_template(
    template: &TemplateInfo,
    params: &ParamCounts,
    business_initiated: bool,
    contact: &ContactState,
    now: DateTime<Utc>,
    config: &PolicyConfig,
) -> Decision {
    if let Some((at, source)) = contact.opted_out() {
        return Decision::Block(BlockReason::OptedOut {
            at,
            source: source.clone(),
        });
    }
    if let Some(since) = contact.undeliverable() {
        return Decision::Block(BlockReason::Undeliverable { since });
    }
    let wait = match &template.status {
        TemplateStatus::Approved => None,
        TemplateStatus::Paused => Some(DeferReason::TemplatePaused {
            template: template.name.clone(),
        }),
        TemplateStatus::Pending => Some(DeferReason::TemplatePending {
            template: template.name.clone(),
        }),
        TemplateStatus::Rejected
        | TemplateStatus::Disabled
        | TemplateStatus::Deleted
        | TemplateStatus::Other(_) => {
            return Decision::Block(BlockReason::TemplateNotSendable {
                template: template.name.clone(),
                status: template.status.clone(),
            })
        }
    };
    let expected = template.expected_params();
    if !expected.matches(params) {
        return Decision::Block(BlockReason::ParamMismatch {
            template: template.name.clone(),
            expected,
            got: params.clone(),
        });
    }
    // A "reply" after the window closed starts a conversation all the same.
    let starts_conversation = business_initiated || !contact.window_open(now, config.window_margin);
    if starts_conversation && contact.opted_in(now).is_none() {
        return Decision::Block(BlockReason::NoOptIn);
    }
    if template.category.respects_marketing_opt_out() {
        if let Some(since) = contact.marketing_stopped() {
            return Decision::Block(BlockReason::MarketingOptOut { since });
        }
    }
    match wait {
        None => Decision::Allow,
        Some(reason) => Decision::Defer {
            until: None,
            reason,
        },
    }
}

/// The templates an agent could send to reopen a closed window: approved ones, utility first,
/// then unknown categories, then marketing, each group in catalog order. Authentication
/// templates are left out: they carry only a one-time code.
pub fn reopening_templates(catalog: &[TemplateInfo]) -> Vec<&TemplateInfo> {
    let mut usable: Vec<(u8, &TemplateInfo)> = catalog
        .iter()
        .filter(|template| template.status == TemplateStatus::Approved)
        .filter_map(|template| {
            let rank = match template.category {
                Category::Utility => 0,
                Category::Other(_) => 1,
                Category::Marketing => 2,
                Category::Authentication => return None,
            };
            Some((rank, template))
        })
        .collect();
    usable.sort_by_key(|(rank, _)| *rank);
    usable.into_iter().map(|(_, template)| template).collect()
}

fn when(at: DateTime<Utc>) -> impl std::fmt::Display {
    at.format("%H:%M UTC on %Y-%m-%d")
}

fn window_closed_text(
    closed_at: Option<DateTime<Utc>>,
    opted_in: bool,
    names: Option<&[&str]>,
) -> String {
    let opening = match closed_at {
        Some(at) => format!("The customer's 24-hour window closed at {}", when(at)),
        None => "The customer has not written yet, so there is no 24-hour window".to_owned(),
    };
    if !opted_in {
        return format!(
            "{opening}; the customer has not opted in to business-initiated messages, so wait for them to write again."
        );
    }
    match names {
        None => format!("{opening}; send an approved template to reopen the conversation."),
        Some([]) => format!(
            "{opening}; no approved template is available to reopen the conversation, so ask an administrator to create one."
        ),
        Some([only]) => {
            format!("{opening}; send an approved template such as {only} to reopen the conversation.")
        }
        Some([first @ .., last]) => format!(
            "{opening}; send an approved template such as {} or {last} to reopen the conversation.",
            first.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 21, 14, 3, 0).unwrap() + Duration::minutes(minutes)
    }

    const DAY: i64 = 24 * 60;

    fn config() -> PolicyConfig {
        PolicyConfig::default()
    }

    fn wrote_at(at: DateTime<Utc>) -> ContactState {
        let mut contact = ContactState::new();
        contact.record_inbound(at);
        contact
    }

    fn opt_in(at: DateTime<Utc>) -> ConsentEvent {
        ConsentEvent::OptIn {
            at,
            source: "checkout form".into(),
            evidence: "order 1001".into(),
        }
    }

    fn opt_out(at: DateTime<Utc>) -> ConsentEvent {
        ConsentEvent::OptOut {
            at,
            source: OptOutSource::Keyword("STOP".into()),
        }
    }

    fn opted_in_contact() -> ContactState {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(-DAY)));
        contact
    }

    fn template(name: &str, category: Category, status: TemplateStatus) -> TemplateInfo {
        TemplateInfo {
            name: name.into(),
            language: "en_US".into(),
            category,
            status,
            body_params: 2,
            header_params: 0,
            button_params: vec![0, 1],
        }
    }

    fn send(template: TemplateInfo, business_initiated: bool) -> Intent {
        let params = template.expected_params();
        Intent::Template {
            template,
            params,
            business_initiated,
        }
    }

    fn utility(status: TemplateStatus) -> Intent {
        send(template("order_update", Category::Utility, status), true)
    }

    fn marketing(business_initiated: bool) -> Intent {
        send(
            template("spring_sale", Category::Marketing, TemplateStatus::Approved),
            business_initiated,
        )
    }

    fn free(origin: Origin) -> Intent {
        Intent::FreeForm { origin }
    }

    fn block_kind(decision: &Decision) -> &'static str {
        match decision {
            Decision::Block(reason) => reason.kind(),
            Decision::Allow | Decision::Defer { .. } => "not blocked",
        }
    }

    #[test]
    fn agent_reply_allowed_inside_window() {
        let contact = wrote_at(t(0));
        assert_eq!(
            decide(&free(Origin::AgentReply), &contact, t(60), &config()),
            Decision::Allow
        );
    }

    #[test]
    fn agent_reply_blocked_after_window_with_margin() {
        let contact = wrote_at(t(0));
        let last_allowed = t(DAY - 5) - Duration::seconds(1);
        assert!(decide(&free(Origin::AgentReply), &contact, last_allowed, &config()).is_allowed());
        let decision = decide(&free(Origin::AgentReply), &contact, t(DAY - 5), &config());
        assert_eq!(
            decision,
            Decision::Block(BlockReason::WindowClosed {
                closed_at: Some(t(DAY - 5)),
                opted_in: false,
            })
        );
    }

    #[test]
    fn bot_reply_follows_the_same_window() {
        let contact = wrote_at(t(0));
        assert!(decide(&free(Origin::BotReply), &contact, t(DAY - 6), &config()).is_allowed());
        assert_eq!(
            block_kind(&decide(
                &free(Origin::BotReply),
                &contact,
                t(DAY),
                &config()
            )),
            "window_closed"
        );
    }

    #[test]
    fn window_margin_is_configurable() {
        let contact = wrote_at(t(0));
        let config = PolicyConfig {
            window_margin: Duration::hours(1),
        };
        assert!(decide(&free(Origin::AgentReply), &contact, t(DAY - 61), &config).is_allowed());
        assert!(!decide(&free(Origin::AgentReply), &contact, t(DAY - 60), &config).is_allowed());
    }

    #[test]
    fn negative_margin_is_rejected_and_never_extends_the_window() {
        let config = PolicyConfig {
            window_margin: Duration::minutes(-30),
        };
        assert_eq!(
            config.validate(),
            Err(PolicyConfigError::NegativeWindowMargin)
        );
        let contact = wrote_at(t(0));
        assert!(!decide(&free(Origin::AgentReply), &contact, t(DAY), &config).is_allowed());
        assert!(PolicyConfig::default().validate().is_ok());
        assert_eq!(PolicyConfig::default().window_margin, Duration::minutes(5));
    }

    #[test]
    fn agent_reply_blocked_when_customer_never_wrote() {
        let decision = decide(
            &free(Origin::AgentReply),
            &opted_in_contact(),
            t(0),
            &config(),
        );
        assert_eq!(
            decision,
            Decision::Block(BlockReason::WindowClosed {
                closed_at: None,
                opted_in: true,
            })
        );
    }

    #[test]
    fn opted_out_contact_gets_no_agent_reply_even_inside_window() {
        let mut contact = wrote_at(t(0));
        contact.record(opt_out(t(0)));
        let decision = decide(&free(Origin::AgentReply), &contact, t(1), &config());
        assert_eq!(block_kind(&decision), "opted_out");
    }

    #[test]
    fn opt_out_confirmation_allowed_inside_window_after_opt_out() {
        let mut contact = wrote_at(t(0));
        contact.record(opt_out(t(0)));
        assert!(decide(&free(Origin::OptOutConfirmation), &contact, t(1), &config()).is_allowed());
    }

    #[test]
    fn opt_out_confirmation_blocked_after_window() {
        let mut contact = wrote_at(t(0));
        contact.record(opt_out(t(0)));
        let decision = decide(
            &free(Origin::OptOutConfirmation),
            &contact,
            t(DAY),
            &config(),
        );
        assert_eq!(block_kind(&decision), "window_closed");
    }

    #[test]
    fn opt_out_wins_over_same_time_opt_in() {
        let mut contact = wrote_at(t(0));
        contact.record(opt_in(t(0)));
        contact.record(opt_out(t(0)));
        assert_eq!(
            block_kind(&decide(
                &utility(TemplateStatus::Approved),
                &contact,
                t(1),
                &config()
            )),
            "opted_out"
        );
    }

    #[test]
    fn opt_out_takes_effect_immediately_on_business_initiated_templates() {
        let mut contact = opted_in_contact();
        assert!(decide(
            &utility(TemplateStatus::Approved),
            &contact,
            t(0),
            &config()
        )
        .is_allowed());
        contact.record(opt_out(t(0)));
        assert_eq!(
            block_kind(&decide(
                &utility(TemplateStatus::Approved),
                &contact,
                t(0),
                &config()
            )),
            "opted_out"
        );
    }

    #[test]
    fn opt_in_after_opt_out_re_enables_business_initiated_templates() {
        let mut contact = ContactState::new();
        contact.record(opt_out(t(0)));
        contact.record(opt_in(t(10)));
        assert!(decide(
            &utility(TemplateStatus::Approved),
            &contact,
            t(20),
            &config()
        )
        .is_allowed());
    }

    #[test]
    fn opt_out_wins_over_a_paused_template_defer() {
        let mut contact = opted_in_contact();
        contact.record(opt_out(t(0)));
        assert_eq!(
            block_kind(&decide(
                &utility(TemplateStatus::Paused),
                &contact,
                t(1),
                &config()
            )),
            "opted_out"
        );
    }

    #[test]
    fn undeliverable_blocks_everything_until_customer_writes() {
        let mut contact = opted_in_contact();
        contact.record_inbound(t(0));
        contact.record(ConsentEvent::Undeliverable { at: t(1) });
        for intent in [
            free(Origin::AgentReply),
            free(Origin::OptOutConfirmation),
            utility(TemplateStatus::Approved),
        ] {
            assert_eq!(
                block_kind(&decide(&intent, &contact, t(2), &config())),
                "undeliverable"
            );
        }
        contact.record_inbound(t(3));
        assert!(decide(&free(Origin::AgentReply), &contact, t(4), &config()).is_allowed());
    }

    #[test]
    fn business_initiated_template_needs_opt_in() {
        let contact = wrote_at(t(0));
        assert_eq!(
            decide(
                &utility(TemplateStatus::Approved),
                &contact,
                t(1),
                &config()
            ),
            Decision::Block(BlockReason::NoOptIn)
        );
    }

    #[test]
    fn business_initiated_template_allowed_with_opt_in_outside_window() {
        let contact = opted_in_contact();
        assert!(decide(
            &utility(TemplateStatus::Approved),
            &contact,
            t(0),
            &config()
        )
        .is_allowed());
    }

    #[test]
    fn reply_template_inside_window_needs_no_opt_in() {
        let contact = wrote_at(t(0));
        let reply = send(
            template("order_update", Category::Utility, TemplateStatus::Approved),
            false,
        );
        assert!(decide(&reply, &contact, t(1), &config()).is_allowed());
    }

    #[test]
    fn reply_template_after_window_needs_opt_in() {
        let contact = wrote_at(t(0));
        let reply = send(
            template("order_update", Category::Utility, TemplateStatus::Approved),
            false,
        );
        assert_eq!(
            decide(&reply, &contact, t(DAY), &config()),
            Decision::Block(BlockReason::NoOptIn)
        );
    }

    #[test]
    fn marketing_blocked_after_user_preferences_stop_until_resume() {
        let mut contact = opted_in_contact();
        assert!(decide(&marketing(true), &contact, t(0), &config()).is_allowed());
        contact.record(ConsentEvent::MarketingStop { at: t(1) });
        assert_eq!(
            decide(&marketing(true), &contact, t(2), &config()),
            Decision::Block(BlockReason::MarketingOptOut { since: t(1) })
        );
        contact.record(ConsentEvent::MarketingResume { at: t(3) });
        assert!(decide(&marketing(true), &contact, t(4), &config()).is_allowed());
    }

    #[test]
    fn marketing_stop_applies_to_replies_inside_window_too() {
        let mut contact = wrote_at(t(0));
        contact.record(ConsentEvent::MarketingStop { at: t(0) });
        assert_eq!(
            block_kind(&decide(&marketing(false), &contact, t(1), &config())),
            "marketing_opt_out"
        );
    }

    #[test]
    fn marketing_stop_does_not_block_utility_templates_or_agent_replies() {
        let mut contact = opted_in_contact();
        contact.record_inbound(t(0));
        contact.record(ConsentEvent::MarketingStop { at: t(0) });
        assert!(decide(
            &utility(TemplateStatus::Approved),
            &contact,
            t(1),
            &config()
        )
        .is_allowed());
        assert!(decide(&free(Origin::AgentReply), &contact, t(1), &config()).is_allowed());
    }

    #[test]
    fn unknown_category_is_treated_as_marketing() {
        let mut contact = opted_in_contact();
        contact.record(ConsentEvent::MarketingStop { at: t(0) });
        let intent = send(
            template(
                "new_kind",
                Category::Other("SOMETHING_NEW".into()),
                TemplateStatus::Approved,
            ),
            true,
        );
        assert_eq!(
            block_kind(&decide(&intent, &contact, t(1), &config())),
            "marketing_opt_out"
        );
    }

    #[test]
    fn paused_template_defers() {
        assert_eq!(
            decide(
                &utility(TemplateStatus::Paused),
                &opted_in_contact(),
                t(0),
                &config()
            ),
            Decision::Defer {
                until: None,
                reason: DeferReason::TemplatePaused {
                    template: "order_update".into()
                },
            }
        );
    }

    #[test]
    fn pending_template_defers() {
        let decision = decide(
            &utility(TemplateStatus::Pending),
            &opted_in_contact(),
            t(0),
            &config(),
        );
        assert_eq!(decision.kind(), "template_pending");
    }

    #[test]
    fn paused_template_to_contact_without_opt_in_blocks_instead_of_deferring() {
        assert_eq!(
            decide(
                &utility(TemplateStatus::Paused),
                &ContactState::new(),
                t(0),
                &config()
            ),
            Decision::Block(BlockReason::NoOptIn)
        );
    }

    #[test]
    fn rejected_disabled_deleted_and_unknown_statuses_block() {
        for status in [
            TemplateStatus::Rejected,
            TemplateStatus::Disabled,
            TemplateStatus::Deleted,
            TemplateStatus::Other("IN_APPEAL".into()),
        ] {
            let decision = decide(
                &utility(status.clone()),
                &opted_in_contact(),
                t(0),
                &config(),
            );
            assert_eq!(
                decision,
                Decision::Block(BlockReason::TemplateNotSendable {
                    template: "order_update".into(),
                    status,
                })
            );
        }
    }

    #[test]
    fn param_mismatch_blocks_with_expected_and_got() {
        let info = template("order_update", Category::Utility, TemplateStatus::Approved);
        let got = ParamCounts {
            body: 1,
            header: 0,
            buttons: vec![0, 1],
        };
        let intent = Intent::Template {
            template: info.clone(),
            params: got.clone(),
            business_initiated: true,
        };
        let decision = decide(&intent, &opted_in_contact(), t(0), &config());
        assert_eq!(
            decision,
            Decision::Block(BlockReason::ParamMismatch {
                template: "order_update".into(),
                expected: info.expected_params(),
                got,
            })
        );
        assert_eq!(
            decision.to_string(),
            "Template order_update takes 2 body, 0 header, 1 button parameters but the message has 1 body, 0 header, 1 button; fix the mapping."
        );
    }

    #[test]
    fn window_closed_message_names_reopening_templates() {
        let mut contact = opted_in_contact();
        contact.record_inbound(t(-DAY));
        let Decision::Block(reason) = decide(
            &free(Origin::AgentReply),
            &contact,
            t(0),
            &PolicyConfig {
                window_margin: Duration::zero(),
            },
        ) else {
            panic!("expected a block");
        };
        let catalog = [
            template("spring_sale", Category::Marketing, TemplateStatus::Approved),
            template("order_update", Category::Utility, TemplateStatus::Approved),
        ];
        assert_eq!(
            reason.explain(&catalog),
            "The customer's 24-hour window closed at 14:03 UTC on 2026-05-21; send an approved template such as order_update or spring_sale to reopen the conversation."
        );
        assert_eq!(
            reason.explain(&catalog[..0]),
            "The customer's 24-hour window closed at 14:03 UTC on 2026-05-21; no approved template is available to reopen the conversation, so ask an administrator to create one."
        );
    }

    #[test]
    fn window_closed_message_says_no_template_can_help_without_opt_in() {
        let contact = wrote_at(t(-DAY));
        let decision = decide(&free(Origin::AgentReply), &contact, t(0), &config());
        assert!(
            decision.to_string().contains("has not opted in"),
            "{decision}"
        );
    }

    #[test]
    fn reopening_templates_lists_approved_non_marketing_first() {
        let catalog = [
            template("sale", Category::Marketing, TemplateStatus::Approved),
            template("paused_update", Category::Utility, TemplateStatus::Paused),
            template("otp", Category::Authentication, TemplateStatus::Approved),
            template("order_update", Category::Utility, TemplateStatus::Approved),
            template("odd", Category::Other("X".into()), TemplateStatus::Approved),
        ];
        let names: Vec<&str> = reopening_templates(&catalog)
            .iter()
            .map(|template| template.name.as_str())
            .collect();
        assert_eq!(names, ["order_update", "odd", "sale"]);
    }

    #[test]
    fn every_reason_has_a_distinct_bounded_kind() {
        let reasons = [
            BlockReason::OptedOut {
                at: t(0),
                source: OptOutSource::Button,
            },
            BlockReason::Undeliverable { since: t(0) },
            BlockReason::WindowClosed {
                closed_at: None,
                opted_in: false,
            },
            BlockReason::TemplateNotSendable {
                template: "x".into(),
                status: TemplateStatus::Rejected,
            },
            BlockReason::ParamMismatch {
                template: "x".into(),
                expected: ParamCounts::default(),
                got: ParamCounts::default(),
            },
            BlockReason::NoOptIn,
            BlockReason::MarketingOptOut { since: t(0) },
        ];
        let mut kinds: Vec<&str> = reasons.iter().map(BlockReason::kind).collect();
        kinds.push(
            DeferReason::TemplatePaused {
                template: "x".into(),
            }
            .kind(),
        );
        kinds.push(
            DeferReason::TemplatePending {
                template: "x".into(),
            }
            .kind(),
        );
        kinds.push(Decision::Allow.kind());
        let count = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), count);
        for reason in &reasons {
            assert!(reason.to_string().ends_with('.'), "{reason}");
        }
    }

    #[test]
    fn audit_record_serializes_the_decision_and_round_trips() {
        let mut contact = wrote_at(t(0));
        contact.record(opt_out(t(0)));
        let intent = utility(TemplateStatus::Approved);
        let decision = decide(&intent, &contact, t(1), &config());
        let record = AuditRecord::new(t(1), "1234567890:4915112345678", &intent, decision);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["decision"]["block"]["kind"], "opted_out");
        assert_eq!(json["decision"]["block"]["source"]["keyword"], "STOP");
        assert_eq!(
            json["intent_summary"],
            "template order_update (en_US, UTILITY), business-initiated"
        );
        let back: AuditRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        assert_eq!(serde_json::to_value(Decision::Allow).unwrap(), "allow");
    }
}
