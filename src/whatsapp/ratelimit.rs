//! Send-side rate limits for the Cloud API: a sliding window per business number (throughput,
//! Meta's 80 messages/s by default, up to 1,000) and a token bucket per (number, recipient)
//! pair (Meta's pair limit: a burst of 45, then about one message per 6 s).
//!
//! Guarantees:
//! - **Never more than the number's rate within any one second at Meta's end**, however that
//!   second is placed and whatever the network does. A send holds one of the number's `rate`
//!   permits from before its request leaves until one [`WINDOW`] after its answer came back.
//!   Meta received the request somewhere between those two instants, so two sends on the same
//!   permit arrive at least a window apart. (A token bucket allows a burst plus a second's
//!   refill, almost twice the rate, in one second; and pacing by departure time alone lets a
//!   slow burst and a prompt next burst land in the same second.) The cost is throughput:
//!   each permit cycles once per window plus one round trip, so a number runs at
//!   `rate / (1 s + round trip)` (99.6 % of the rate at 4 ms; BENCHMARKS.md).
//! - [`RateLimiter::acquire`] returns only when both limits allow a message. The pair slot is
//!   reserved under a short lock and slept for **without** holding it; the number's permits
//!   are a fair (FIFO) semaphore.
//! - A recipient over its pair limit delays only the sends to that recipient: the pair slot is
//!   awaited first and the number's slot is taken only afterwards, so a waiting recipient does
//!   not hold throughput that others could use.
//! - Memory is bounded: a recipient whose bucket has refilled is indistinguishable from a new
//!   one and is forgotten, so the map holds at most the recipients messaged within the last
//!   `pair_burst × pair_interval` (4.5 minutes with the defaults).
//!
//! The buckets are GCRA ("virtual scheduling"): each key stores the theoretical arrival time of
//! its next message. A reservation is not returned when its caller is cancelled while waiting;
//! that only makes the limiter more conservative.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use serde::Deserialize;
use tokio::time::Instant;

/// Meta's highest per-number throughput, in messages per second.
pub const MAX_MESSAGES_PER_SECOND: u32 = 1000;

/// After a send's answer, how long its permit stays taken: Meta counts messages per second.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The lowest rate [`RateLimiter::slow_down`] goes to, in messages per second.
const MIN_SLOWED_RATE: usize = 1;

/// The recipient map is swept of refilled entries when it reaches this size (then twice the
/// size that survived the sweep).
const SWEEP_AT_LEAST: usize = 1024;

/// Send-rate limits (a `[whatsapp.rate_limit]`-style section).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Messages per second per business number (Meta: 80 by default, 1,000 after the
    /// automatic upgrade, 20 for coexistence numbers). The burst equals the rate.
    #[serde(default = "RateLimitConfig::default_messages_per_second")]
    pub messages_per_second: u32,
    /// Messages that may go to one recipient at once before the pair limit paces them.
    #[serde(default = "RateLimitConfig::default_pair_burst")]
    pub pair_burst: u32,
    /// Milliseconds between messages to one recipient once the burst is spent.
    #[serde(default = "RateLimitConfig::default_pair_interval_ms")]
    pub pair_interval_ms: u64,
    /// Seconds a number stays at half rate after Meta reported its throughput limit (130429).
    #[serde(default = "RateLimitConfig::default_slow_down_secs")]
    pub slow_down_secs: u64,
}

impl RateLimitConfig {
    fn default_messages_per_second() -> u32 {
        80
    }
    fn default_pair_burst() -> u32 {
        45
    }
    fn default_pair_interval_ms() -> u64 {
        6_000
    }
    fn default_slow_down_secs() -> u64 {
        60
    }

    /// Every problem with these values, as `(field, message)` pairs; empty when valid.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.messages_per_second == 0 || self.messages_per_second > MAX_MESSAGES_PER_SECOND {
            problems.push((
                "messages_per_second",
                format!(
                    "must be between 1 and {MAX_MESSAGES_PER_SECOND} (Meta's highest throughput), not {}",
                    self.messages_per_second
                ),
            ));
        }
        if self.pair_burst == 0 {
            problems.push(("pair_burst", "must be at least 1".to_owned()));
        }
        if self.pair_interval_ms == 0 {
            problems.push((
                "pair_interval_ms",
                "must be at least 1 (Meta paces a recipient at about 6000)".to_owned(),
            ));
        }
        problems
    }

    /// The spacing between messages to one recipient once the burst is spent.
    pub fn pair_interval(&self) -> Duration {
        Duration::from_millis(self.pair_interval_ms.max(1))
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            messages_per_second: Self::default_messages_per_second(),
            pair_burst: Self::default_pair_burst(),
            pair_interval_ms: Self::default_pair_interval_ms(),
            slow_down_secs: Self::default_slow_down_secs(),
        }
    }
}

/// One GCRA bucket: `tat` is the theoretical arrival time of the next message.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tat: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket { tat: now }
    }

    /// Reserves the next slot for a bucket emitting one message per `interval` with `burst`
    /// messages of tolerance; returns when that slot starts.
    fn reserve(&mut self, now: Instant, interval: Duration, burst: u32) -> Instant {
        let tolerance = interval * burst.saturating_sub(1);
        let tat = self.tat.max(now);
        let at = tat.checked_sub(tolerance).unwrap_or(now).max(now);
        self.tat = tat + interval;
        at
    }

    /// Spends the whole burst so the next slot is `wait` from now.
    fn drain(&mut self, now: Instant, wait: Duration, interval: Duration, burst: u32) {
        let tolerance = interval * burst.saturating_sub(1);
        self.tat = self.tat.max(now + wait + tolerance);
    }

    /// Whether the bucket is full again (equivalent to a new one).
    fn is_idle(&self, now: Instant) -> bool {
        self.tat <= now
    }
}

/// A business number's throughput permits.
struct NumberState {
    /// One permit per message in flight or answered within the last [`WINDOW`].
    permits: Arc<Semaphore>,
    /// Spreads the sends evenly at the rate (a small burst only), so that they do not reach
    /// Meta in clumps whose answers, and so whose permits, come back late.
    pacing: Bucket,
    /// Permits currently usable: the configured rate, less what slow-downs hold back.
    effective: usize,
}

/// The right to send one message for a number; hold it until the request's answer arrived.
/// Dropping it keeps the permit taken for one more [`WINDOW`].
#[derive(Debug)]
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(WINDOW).await;
                drop(permit);
            });
        }
    }
}

#[derive(Default)]
struct State {
    numbers: HashMap<String, NumberState>,
    recipients: HashMap<(String, String), Bucket>,
    sweep_at: usize,
}

/// Rate limits shared by every send (wrap it in an `Arc`).
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Numbers with their own rate (`[[whatsapp.numbers]] mps`).
    rates: HashMap<String, u32>,
    state: Arc<Mutex<State>>,
}

/// Shows the limits, not the recipients (personal data).
impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter with these limits (run [`RateLimitConfig::validate`] first; out-of-range values
    /// are clamped here).
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_number_rates(config, HashMap::new())
    }

    /// A limiter where some numbers have their own rate (messages per second), the others
    /// `config.messages_per_second`.
    pub fn with_number_rates(config: RateLimitConfig, rates: HashMap<String, u32>) -> Self {
        RateLimiter {
            config,
            rates,
            state: Arc::new(Mutex::new(State {
                sweep_at: SWEEP_AT_LEAST,
                ..State::default()
            })),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Waits until both the number's throughput and the recipient's pair limit allow one
    /// message, and takes that permit. `recipient` is the phone number or BSUID as sent. Hold
    /// the returned [`Permit`] until the request's answer arrived.
    pub async fn acquire(&self, phone_number_id: &str, recipient: &str) -> Permit {
        // The pair slot first: a recipient that must wait holds no throughput meanwhile.
        let pair_at = {
            let now = Instant::now();
            let mut state = self.lock();
            state.sweep(now);
            state
                .recipients
                .entry((phone_number_id.to_owned(), recipient.to_owned()))
                .or_insert_with(|| Bucket::new(now))
                .reserve(now, self.config.pair_interval(), self.pair_burst())
        };
        tokio::time::sleep_until(pair_at).await;

        let capacity = self.configured_capacity(phone_number_id);
        let permits = Arc::clone(&self.lock().number(phone_number_id, capacity).permits);
        // The semaphore is never closed, so acquiring only fails if it were.
        let permit = Permit {
            permit: permits.acquire_owned().await.ok(),
        };
        let paced_at = {
            let now = Instant::now();
            let mut state = self.lock();
            let rate = capacity as f64;
            state.number(phone_number_id, capacity).pacing.reserve(
                now,
                Duration::from_secs_f64(1.0 / rate),
                smoothing_burst(capacity),
            )
        };
        tokio::time::sleep_until(paced_at).await;
        permit
    }

    /// Meta reported the number's throughput limit (130429): halve its rate (again, if already
    /// slowed; never below 1 message/s) for `slow_down_secs`, and let nothing else go for one
    /// [`WINDOW`] (Meta's count of the current second is spent).
    pub fn slow_down(&self, phone_number_id: &str) {
        let capacity = self.configured_capacity(phone_number_id);
        let (permits, effective, held) = {
            let mut state = self.lock();
            let number = state.number(phone_number_id, capacity);
            let lowered = (number.effective / 2).max(MIN_SLOWED_RATE);
            let held = number.effective - lowered;
            number.effective = lowered;
            (Arc::clone(&number.permits), lowered, held)
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cool_down = Duration::from_secs(self.config.slow_down_secs);
        // Every permit free now is taken at once, so nothing else leaves in this window. Of
        // them, the slowed-down share is held for the cool-down and the rest for one window;
        // what of that share is in flight now is taken as it comes back.
        let free = permits.available_permits().min(effective + held);
        let Ok(mut taken) = Arc::clone(&permits).try_acquire_many_owned(to_u32(free)) else {
            return;
        };
        let held_now = held.min(free);
        let held_later = held - held_now;
        let share = taken.split(held_now);
        runtime.spawn(async move {
            tokio::time::sleep(WINDOW).await;
            drop(taken);
            if let Some(share) = share {
                tokio::time::sleep(cool_down.saturating_sub(WINDOW)).await;
                drop(share);
            }
        });
        if held_later > 0 {
            runtime.spawn(async move {
                if let Ok(share) = permits.acquire_many_owned(to_u32(held_later)).await {
                    tokio::time::sleep(cool_down).await;
                    drop(share);
                }
            });
        }
        let state = Arc::clone(&self.state);
        runtime.spawn({
            let phone_number_id = phone_number_id.to_owned();
            async move {
                tokio::time::sleep(cool_down).await;
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(number) = state.numbers.get_mut(&phone_number_id) {
                    number.effective = (number.effective + held).min(capacity);
                }
            }
        });
    }

    /// Meta reported the pair limit for this recipient (131056): its next message waits `wait`,
    /// and the ones after follow at the pair interval. Other recipients are not affected.
    pub fn delay_recipient(&self, phone_number_id: &str, recipient: &str, wait: Duration) {
        let now = Instant::now();
        let mut state = self.lock();
        state
            .recipients
            .entry((phone_number_id.to_owned(), recipient.to_owned()))
            .or_insert_with(|| Bucket::new(now))
            .drain(now, wait, self.config.pair_interval(), self.pair_burst());
    }

    /// How many recipients are currently tracked (those not yet back to a full burst).
    pub fn tracked_recipients(&self) -> usize {
        let now = Instant::now();
        let mut state = self.lock();
        state.sweep_now(now);
        state.recipients.len()
    }

    /// Messages per [`WINDOW`] configured for the number.
    fn configured_capacity(&self, phone_number_id: &str) -> usize {
        let rate = self
            .rates
            .get(phone_number_id)
            .copied()
            .unwrap_or(self.config.messages_per_second);
        rate.clamp(1, MAX_MESSAGES_PER_SECOND) as usize
    }

    fn pair_burst(&self) -> u32 {
        self.config.pair_burst.max(1)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if it ever did, the state is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn number(&mut self, phone_number_id: &str, capacity: usize) -> &mut NumberState {
        self.numbers
            .entry(phone_number_id.to_owned())
            .or_insert_with(|| NumberState {
                permits: Arc::new(Semaphore::new(capacity)),
                pacing: Bucket::new(Instant::now()),
                effective: capacity,
            })
    }

    /// Forgets refilled recipients once the map has grown; amortised O(1) per call.
    fn sweep(&mut self, now: Instant) {
        if self.recipients.len() >= self.sweep_at {
            self.sweep_now(now);
        }
    }

    fn sweep_now(&mut self, now: Instant) {
        self.recipients.retain(|_, bucket| !bucket.is_idle(now));
        self.sweep_at = (self.recipients.len() * 2).max(SWEEP_AT_LEAST);
    }
}

/// The pacing burst: 50 ms worth of messages, at least 4 (4 at 80/s, 50 at 1,000/s). It is
/// also the slack that lets a send that left a little late (a timer tick, a slow answer
/// freeing its permit) be made up by the next ones instead of shifting all later slots.
fn smoothing_burst(capacity: usize) -> u32 {
    to_u32((capacity / 20).max(4))
}

/// Permit counts are at most [`MAX_MESSAGES_PER_SECOND`], so they fit.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(MAX_MESSAGES_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limiter(messages_per_second: u32) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(RateLimitConfig {
            messages_per_second,
            ..RateLimitConfig::default()
        }))
    }

    /// Sends `n` messages to distinct recipients of one number, one after another.
    async fn send_to_many(limiter: &RateLimiter, number: &str, n: usize) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            limiter.acquire(number, &format!("r{i}")).await;
        }
        start.elapsed()
    }

    #[test]
    fn defaults_follow_meta_limits_and_validation_lists_every_problem() {
        let config = RateLimitConfig::default();
        assert_eq!(config.messages_per_second, 80);
        assert_eq!(config.pair_burst, 45);
        assert_eq!(config.pair_interval(), Duration::from_secs(6));
        assert!(config.validate().is_empty());
        let bad = RateLimitConfig {
            messages_per_second: 1001,
            pair_burst: 0,
            pair_interval_ms: 0,
            slow_down_secs: 0,
        };
        let fields: Vec<_> = bad.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["messages_per_second", "pair_burst", "pair_interval_ms"]
        );
        let parsed: RateLimitConfig = serde_json::from_str(r#"{"messages_per_second":20}"#)
            .expect("a partial section parses");
        assert_eq!(parsed.pair_burst, 45);
        assert!(serde_json::from_str::<RateLimitConfig>(r#"{"rate":20}"#).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn sends_to_one_number_are_spread_evenly_at_its_rate() {
        let limiter = limiter(80);
        let elapsed = send_to_many(&limiter, "n1", 400).await;
        // The pacing burst (4) at once, then one every 12.5 ms (the timer rounds each wait up
        // to a millisecond; the schedule itself does not drift).
        let even = Duration::from_micros(12_500) * 396;
        assert!(
            elapsed >= even && elapsed <= even + Duration::from_millis(3),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_burst_goes_at_once_and_numbers_do_not_share_a_rate() {
        let limiter = limiter(1000);
        // 50 ms worth at once, then one per millisecond.
        assert_eq!(send_to_many(&limiter, "n1", 50).await, Duration::ZERO);
        assert_eq!(
            send_to_many(&limiter, "n1", 30).await,
            Duration::from_millis(30)
        );
        assert_eq!(send_to_many(&limiter, "n2", 50).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_senders_share_the_number_rate() {
        let limiter = limiter(100);
        let start = Instant::now();
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move { limiter.acquire("n1", &format!("r{i}")).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task ran");
        }
        // 200 beyond the burst at 100/s.
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_recipients_46th_message_waits_6s_while_another_recipient_is_not_delayed() {
        let limiter = limiter(1000);
        let start = Instant::now();
        for _ in 0..45 {
            limiter.acquire("n1", "alice").await;
        }
        // Within the number's pacing burst (50 at 1,000/s).
        assert_eq!(start.elapsed(), Duration::ZERO);
        let bob_from = Instant::now();

        let slow = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                limiter.acquire("n1", "alice").await;
                Instant::now()
            })
        };
        tokio::task::yield_now().await;
        limiter.acquire("n1", "bob").await;
        assert!(
            bob_from.elapsed() <= Duration::from_millis(1),
            "bob waited for alice"
        );

        let alice_sent_at = slow.await.expect("task ran");
        assert_eq!(alice_sent_at - start, Duration::from_secs(6));
        // The 47th follows 6 s later still.
        limiter.acquire("n1", "alice").await;
        assert_eq!(start.elapsed(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_halves_throughput_then_recovers_after_the_cool_down() {
        let limiter = limiter(10);
        limiter.slow_down("n1");
        // The current window is spent, then 5 go per window: the 20th message leaves in the
        // fourth window after the first (paced within it).
        let slowed = send_to_many(&limiter, "n1", 20).await;
        assert!(
            slowed >= WINDOW * 4 && slowed < WINDOW * 4 + Duration::from_millis(500),
            "{slowed:?}"
        );

        tokio::time::sleep(Duration::from_secs(60)).await;
        // Full rate again: 10 per window.
        let restored = send_to_many(&limiter, "n1", 20).await;
        assert!(restored >= WINDOW && restored < WINDOW * 2, "{restored:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_slow_downs_keep_halving_but_not_below_one_per_second() {
        let limiter = limiter(8);
        for _ in 0..10 {
            limiter.slow_down("n1");
        }
        // One per window, after the spent one.
        let elapsed = send_to_many(&limiter, "n1", 3).await;
        assert_eq!(elapsed, WINDOW * 3);
        // Another number keeps its rate: 4 at once, then 125 ms apart.
        assert_eq!(
            send_to_many(&limiter, "n2", 8).await,
            Duration::from_millis(500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_one_second_window_ever_holds_more_than_the_rate() {
        let limiter = limiter(80);
        let start = Instant::now();
        let mut times = Vec::new();
        for round in 0..6 {
            for i in 0..100 {
                limiter.acquire("n1", &format!("r{round}-{i}")).await;
                times.push(Instant::now() - start);
            }
            // Irregular pauses: the worst case for a token bucket (refill, then a burst).
            tokio::time::sleep(Duration::from_millis(300 * round)).await;
        }
        for (i, at) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|later| **later < *at + Duration::from_secs(1))
                .count();
            assert!(in_window <= 80, "{in_window} sends within 1 s from {at:?}");
        }
        // Sustained: 600 sends, 80 per window, plus the pauses.
        let pauses: u32 = (0..6).map(|r| 300 * r).sum();
        assert!(
            times[times.len() - 1] <= WINDOW * 7 + Duration::from_millis(u64::from(pauses)),
            "{:?}",
            times[times.len() - 1]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delay_recipient_holds_only_that_recipient() {
        let limiter = limiter(80);
        let start = Instant::now();
        limiter.delay_recipient("n1", "alice", Duration::from_secs(30));
        limiter.acquire("n1", "bob").await;
        limiter.acquire("n2", "alice").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("n1", "alice").await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        // Then paced at the pair interval, not another burst.
        limiter.acquire("n1", "alice").await;
        assert_eq!(start.elapsed(), Duration::from_secs(36));
    }

    #[tokio::test(start_paused = true)]
    async fn refilled_recipients_are_forgotten() {
        let limiter = limiter(1000);
        for i in 0..3000 {
            limiter.acquire("n1", &format!("r{i}")).await;
        }
        assert!(limiter.tracked_recipients() > 0);
        // One message each refills after one pair interval.
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(limiter.tracked_recipients(), 0);
        // The sweep inside `acquire` bounds the map without anyone calling the accessor.
        for i in 0..3000 {
            limiter.acquire("n1", &format!("s{i}")).await;
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_secs(7)).await;
            }
        }
        assert!(limiter.lock().recipients.len() < 2 * SWEEP_AT_LEAST);
    }
}
