//! The retry schedule: exponential backoff with jitter (the `backoff` crate), computed from the
//! attempt number so it can be persisted and survives restarts.

use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;

/// When to retry and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt (before jitter).
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// Time since the first attempt after which a failing job is dead-lettered.
    pub max_age: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`, never shorter than the remote system's
    /// `retry_after`. Doubles per attempt up to `max`, with ±50 % jitter.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let mut schedule = ExponentialBackoff {
            initial_interval: self.initial,
            current_interval: self.initial,
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: self.max,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        let mut delay = self.initial;
        for _ in 0..attempts.clamp(1, 64) {
            delay = schedule.next_backoff().unwrap_or(self.max);
        }
        delay.min(self.max).max(retry_after.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_with_attempts_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 10,
            max_age: Duration::from_secs(3600),
        };
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_millis(1500));
            let fourth = policy.delay(4, None);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(12));
            assert!(policy.delay(30, None) <= Duration::from_secs(60));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
