//! The per-contact consent ledger: every consent event ever recorded for one contact of one
//! business number, plus Meta's timestamp of the customer's last message.
//!
//! The ledger keeps the full history (for `contacts show` and audits) and derives the current
//! state from the events' own timestamps, never from the order they were recorded in, so a
//! webhook that arrives late cannot undo a newer decision of the customer. Between an opt-in and
//! an opt-out the latest one wins, and on equal timestamps the opt-out wins.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long Meta keeps the customer-service window open after the customer's last message.
pub const CUSTOMER_SERVICE_WINDOW: Duration = Duration::hours(24);

/// Where an opt-out came from. Recorded for audits; every source has the same effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    /// The customer wrote a stop keyword; the keyword as written.
    Keyword(String),
    /// The customer pressed an opt-out quick-reply button.
    Button,
    /// A `user_preferences` webhook recorded as a full opt-out.
    UserPreferences,
    /// Meta answered a send with error 131050 and it was recorded as a full opt-out.
    /// (Recording 131050 as [`ConsentEvent::MarketingStop`] instead only stops marketing.)
    #[serde(rename = "error_131050")]
    Error131050,
    /// An operator recorded the opt-out by hand.
    Admin,
}

impl OptOutSource {
    /// A bounded label for metrics and logs (the keyword itself is not included).
    pub fn kind(&self) -> &'static str {
        match self {
            OptOutSource::Keyword(_) => "keyword",
            OptOutSource::Button => "button",
            OptOutSource::UserPreferences => "user_preferences",
            OptOutSource::Error131050 => "error_131050",
            OptOutSource::Admin => "admin",
        }
    }
}

impl std::fmt::Display for OptOutSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptOutSource::Keyword(word) => write!(f, "the keyword \"{word}\""),
            OptOutSource::Button => f.write_str("the opt-out button"),
            OptOutSource::UserPreferences => f.write_str("WhatsApp's message preferences"),
            OptOutSource::Error131050 => f.write_str("Meta's error 131050"),
            OptOutSource::Admin => f.write_str("an operator"),
        }
    }
}

/// One consent-relevant fact about a contact, stamped with the time it happened (Meta's
/// timestamp where Meta reports it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConsentEvent {
    /// The customer agreed to receive business-initiated messages.
    OptIn {
        /// When the customer opted in.
        at: DateTime<Utc>,
        /// Where the opt-in was collected (web form, CRM field, keyword...).
        source: String,
        /// What proves it (form submission id, message id, CRM record...).
        evidence: String,
    },
    /// The customer asked to receive nothing more.
    OptOut {
        /// When the customer opted out.
        at: DateTime<Utc>,
        /// How the opt-out was expressed.
        source: OptOutSource,
    },
    /// The customer stopped marketing messages (Meta's `user_preferences`, or error 131050).
    MarketingStop {
        /// When marketing was stopped.
        at: DateTime<Utc>,
    },
    /// The customer resumed marketing messages (Meta's `user_preferences`).
    MarketingResume {
        /// When marketing was resumed.
        at: DateTime<Utc>,
    },
    /// Meta reported the number undeliverable (131026). Cleared by a later customer message.
    Undeliverable {
        /// When the failure was reported.
        at: DateTime<Utc>,
    },
}

impl ConsentEvent {
    /// When the event happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ConsentEvent::OptIn { at, .. }
            | ConsentEvent::OptOut { at, .. }
            | ConsentEvent::MarketingStop { at }
            | ConsentEvent::MarketingResume { at }
            | ConsentEvent::Undeliverable { at } => *at,
        }
    }
}

/// Everything the policy knows about one contact of one business number (stored per
/// phone_number_id + wa_id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// Every consent event, in the order it was recorded. Never pruned.
    #[serde(default)]
    pub history: Vec<ConsentEvent>,
    /// Meta's timestamp of the customer's latest message; opens the customer-service window.
    #[serde(default)]
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl ContactState {
    /// A contact with no history and no message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a consent event to the history. Idempotent: an event identical to one already
    /// recorded (a replayed webhook) is not stored twice. Returns whether the event was new.
    pub fn record(&mut self, event: ConsentEvent) -> bool {
        if self.history.contains(&event) {
            return false;
        }
        self.history.push(event);
        true
    }

    /// Notes a message from the customer at Meta's timestamp `at`. Keeps the latest timestamp,
    /// so a late or replayed webhook never moves the window backwards.
    pub fn record_inbound(&mut self, at: DateTime<Utc>) {
        self.last_inbound_at = Some(self.last_inbound_at.map_or(at, |prev| prev.max(at)));
    }

    /// The opt-out in effect, if any: the latest opt-out, when no opt-in is strictly later.
    /// Takes effect immediately, whatever its timestamp.
    pub fn opted_out(&self) -> Option<(DateTime<Utc>, &OptOutSource)> {
        let latest_out = self
            .history
            .iter()
            .filter_map(|event| match event {
                ConsentEvent::OptOut { at, source } => Some((*at, source)),
                _ => None,
            })
            .fold(
                None,
                |best: Option<(DateTime<Utc>, &OptOutSource)>, cur| match best {
                    Some(b) if b.0 >= cur.0 => Some(b),
                    _ => Some(cur),
                },
            )?;
        match self.latest_opt_in(None) {
            Some(opt_in) if opt_in > latest_out.0 => None,
            _ => Some(latest_out),
        }
    }

    /// When the opt-in in effect at `now` was given, if any: the latest opt-in at or before
    /// `now`, provided no opt-out (of any timestamp) is at the same time or later.
    pub fn opted_in(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let opt_in = self.latest_opt_in(Some(now))?;
        let superseded = self
            .history
            .iter()
            .any(|event| matches!(event, ConsentEvent::OptOut { at, .. } if *at >= opt_in));
        (!superseded).then_some(opt_in)
    }

    /// Since when marketing is stopped, if it is: the latest stop with no strictly later resume.
    pub fn marketing_stopped(&self) -> Option<DateTime<Utc>> {
        let stop = self.latest(|event| matches!(event, ConsentEvent::MarketingStop { .. }))?;
        let resume = self.latest(|event| matches!(event, ConsentEvent::MarketingResume { .. }));
        match resume {
            Some(resume) if resume > stop => None,
            _ => Some(stop),
        }
    }

    /// Since when the number is undeliverable (131026), if it is: the latest report, unless the
    /// customer has written strictly after it.
    pub fn undeliverable(&self) -> Option<DateTime<Utc>> {
        let since = self.latest(|event| matches!(event, ConsentEvent::Undeliverable { .. }))?;
        match self.last_inbound_at {
            Some(inbound) if inbound > since => None,
            _ => Some(since),
        }
    }

    /// Until when free-form messages may be sent: Meta's 24 hours after the customer's last
    /// message, minus `margin` (a negative margin counts as zero). `None` if the customer never
    /// wrote.
    pub fn window_open_until(&self, margin: Duration) -> Option<DateTime<Utc>> {
        let margin = margin.max(Duration::zero());
        self.last_inbound_at
            .map(|at| at + CUSTOMER_SERVICE_WINDOW - margin)
    }

    /// Whether free-form messages may be sent at `now` (see [`Self::window_open_until`]).
    pub fn window_open(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        self.window_open_until(margin)
            .is_some_and(|until| until > now)
    }

    fn latest_opt_in(&self, not_after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        self.latest(|event| {
            matches!(event, ConsentEvent::OptIn { at, .. } if not_after.is_none_or(|limit| *at <= limit))
        })
    }

    fn latest(&self, pick: impl Fn(&ConsentEvent) -> bool) -> Option<DateTime<Utc>> {
        self.history
            .iter()
            .filter(|event| pick(event))
            .map(ConsentEvent::at)
            .max()
    }
}

/// A time at Meta's precision (whole seconds). Consent recorded by wabridge itself (admin,
/// mapping) uses it, so it compares fairly with Meta's timestamps: on a tie the opt-out wins.
pub fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 21, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn opt_in(at: DateTime<Utc>) -> ConsentEvent {
        ConsentEvent::OptIn {
            at,
            source: "web form".into(),
            evidence: "form-42".into(),
        }
    }

    fn opt_out(at: DateTime<Utc>) -> ConsentEvent {
        ConsentEvent::OptOut {
            at,
            source: OptOutSource::Keyword("STOP".into()),
        }
    }

    #[test]
    fn opt_out_after_opt_in_disables() {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(0)));
        contact.record(opt_out(t(5)));
        assert!(contact.opted_out().is_some());
        assert_eq!(contact.opted_in(t(10)), None);
    }

    #[test]
    fn opt_in_after_opt_out_re_enables() {
        let mut contact = ContactState::new();
        contact.record(opt_out(t(0)));
        contact.record(opt_in(t(5)));
        assert!(contact.opted_out().is_none());
        assert_eq!(contact.opted_in(t(10)), Some(t(5)));
    }

    #[test]
    fn opt_out_wins_over_same_time_opt_in() {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(0)));
        contact.record(opt_out(t(0)));
        assert!(contact.opted_out().is_some());
        assert_eq!(contact.opted_in(t(1)), None);
    }

    #[test]
    fn late_arriving_old_opt_in_does_not_undo_newer_opt_out() {
        let mut contact = ContactState::new();
        contact.record(opt_out(t(10)));
        contact.record(opt_in(t(0)));
        assert!(contact.opted_out().is_some());
        assert_eq!(contact.opted_in(t(20)), None);
    }

    #[test]
    fn opt_in_stamped_in_the_future_is_not_yet_in_effect() {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(10)));
        assert_eq!(contact.opted_in(t(5)), None);
        assert_eq!(contact.opted_in(t(10)), Some(t(10)));
    }

    #[test]
    fn recording_the_same_event_twice_keeps_one_entry() {
        let mut contact = ContactState::new();
        assert!(contact.record(opt_in(t(0))));
        assert!(!contact.record(opt_in(t(0))));
        assert_eq!(contact.history.len(), 1);
    }

    #[test]
    fn history_is_kept_in_full() {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(0)));
        contact.record(opt_out(t(1)));
        contact.record(opt_in(t(2)));
        assert_eq!(contact.history.len(), 3);
    }

    #[test]
    fn marketing_stop_holds_until_a_later_resume() {
        let mut contact = ContactState::new();
        contact.record(ConsentEvent::MarketingStop { at: t(0) });
        assert_eq!(contact.marketing_stopped(), Some(t(0)));
        contact.record(ConsentEvent::MarketingResume { at: t(0) });
        assert_eq!(contact.marketing_stopped(), Some(t(0)), "stop wins a tie");
        contact.record(ConsentEvent::MarketingResume { at: t(1) });
        assert_eq!(contact.marketing_stopped(), None);
    }

    #[test]
    fn undeliverable_clears_when_the_customer_writes_later() {
        let mut contact = ContactState::new();
        contact.record(ConsentEvent::Undeliverable { at: t(0) });
        contact.record_inbound(t(0));
        assert_eq!(contact.undeliverable(), Some(t(0)));
        contact.record_inbound(t(1));
        assert_eq!(contact.undeliverable(), None);
    }

    #[test]
    fn inbound_never_moves_the_window_backwards() {
        let mut contact = ContactState::new();
        contact.record_inbound(t(10));
        contact.record_inbound(t(0));
        assert_eq!(contact.last_inbound_at, Some(t(10)));
    }

    #[test]
    fn window_closes_margin_before_24_hours() {
        let mut contact = ContactState::new();
        contact.record_inbound(t(0));
        let margin = Duration::minutes(5);
        assert_eq!(contact.window_open_until(margin), Some(t(24 * 60 - 5)));
        assert!(contact.window_open(t(24 * 60 - 6), margin));
        assert!(!contact.window_open(t(24 * 60 - 5), margin));
    }

    #[test]
    fn negative_margin_never_extends_the_window() {
        let mut contact = ContactState::new();
        contact.record_inbound(t(0));
        assert_eq!(
            contact.window_open_until(Duration::minutes(-30)),
            Some(t(24 * 60))
        );
    }

    #[test]
    fn round_trips_through_json() {
        let mut contact = ContactState::new();
        contact.record(opt_in(t(0)));
        contact.record(ConsentEvent::OptOut {
            at: t(1),
            source: OptOutSource::Error131050,
        });
        contact.record(ConsentEvent::MarketingStop { at: t(2) });
        contact.record_inbound(t(3));
        let json = serde_json::to_string(&contact).unwrap();
        assert!(json.contains("\"error_131050\""), "{json}");
        let back: ContactState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, contact);
    }
}
