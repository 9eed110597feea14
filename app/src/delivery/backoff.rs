//! When a transient failure is tried again: exponential backoff with "equal jitter", never sooner than
//! ConnectWise's `Retry-After`.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based), with `unit` a uniform random number in [0, 1).
    ///
    /// Without `Retry-After`: `d = min(max, base · 2^(attempt-1))`, then a uniform pick in [d/2, d] — spread, so
    /// deliveries that failed together do not come back together. With `Retry-After: s`: `s` plus up to a tenth of
    /// it (and at least a quarter second) of spread, so a throttled burst does not return as one burst.
    pub fn delay_with(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let unit = unit.clamp(0.0, 1.0);
        if let Some(after) = retry_after {
            let spread = (after / 10).max(Duration::from_millis(250));
            return after + spread.mul_f64(unit);
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let delay = self.base.saturating_mul(1u32 << exponent).min(self.max);
        delay / 2 + (delay / 2).mul_f64(unit)
    }

    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(attempt, retry_after, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff { base: Duration::from_secs(2), max: Duration::from_secs(600) };

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        assert_eq!(B.delay_with(1, None, 0.0), Duration::from_secs(1));
        assert_eq!(B.delay_with(1, None, 1.0), Duration::from_secs(2));
        assert_eq!(B.delay_with(3, None, 0.0), Duration::from_secs(4));
        assert_eq!(B.delay_with(3, None, 1.0), Duration::from_secs(8));
        assert_eq!(B.delay_with(40, None, 1.0), Duration::from_secs(600));
        assert_eq!(B.delay_with(40, None, 0.0), Duration::from_secs(300));
        for attempt in 1..50 {
            let d = B.delay(attempt, None);
            assert!(d <= Duration::from_secs(600) && d >= Duration::from_millis(1000), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let after = Some(Duration::from_secs(30));
        assert_eq!(B.delay_with(1, after, 0.0), Duration::from_secs(30));
        assert_eq!(B.delay_with(1, after, 1.0), Duration::from_secs(33));
        // Even when the backoff alone would be longer, Retry-After decides (the server said when).
        assert_eq!(B.delay_with(20, Some(Duration::from_secs(1)), 0.0), Duration::from_secs(1));
        assert_eq!(B.delay_with(1, Some(Duration::ZERO), 1.0), Duration::from_millis(250));
    }
}
