//! Trying again: exponential backoff with jitter, a [`Retry`] that gives up
//! after a timeout, and renewing credentials before retrying an operation
//! they were refused for.
//!
//! A leaf: it knows no task, pool, client or secret provider. Callers say
//! what failed, how to tell an authentication failure, and how to renew
//! (a [`Renew`] hook the worker makes from a connector's config).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first wait of an exponential backoff, before jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// The wait before attempt `attempt + 1` (0 is the first retry): 100 ms
/// doubled per attempt, at most `cap`, times a random factor in [0.5, 1)
/// so that many callers failing at once do not retry in step.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let capped = BACKOFF_BASE.saturating_mul(1 << attempt.min(10)).min(cap);
    capped.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// Retrying one failing operation: [`backoff`] capped by `delay_max`
/// (`errors.retry.delay.max.ms`), for at most `timeout`
/// (`errors.retry.timeout`; `None`: for ever).
#[derive(Default)]
pub struct Retry {
    since: Option<Instant>,
    attempt: u32,
}

impl Retry {
    /// The wait before the next attempt, or `None` when `timeout` has run
    /// out since the first failure.
    pub fn next_delay(
        &mut self,
        timeout: Option<Duration>,
        delay_max: Duration,
    ) -> Option<Duration> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if timeout.is_some_and(|t| since.elapsed() >= t) {
            return None;
        }
        let delay = backoff(self.attempt, delay_max);
        self.attempt += 1;
        Some(match timeout {
            Some(t) => delay.min(t.saturating_sub(since.elapsed())),
            None => delay,
        })
    }

    /// The operation worked: the next failure starts afresh.
    pub fn reset(&mut self) {
        *self = Retry::default();
    }

    /// How long this operation has been failing.
    pub fn failing_for(&self) -> Duration {
        self.since.map(|s| s.elapsed()).unwrap_or_default()
    }
}

/// A host capability's way to get a resource's settings again with every
/// placeholder re-resolved (`true`: read the secrets past their cache, as
/// after an authentication failure). Made by the worker, which knows the
/// connector's config and the providers; `crate::sql` and `crate::blob`
/// only call it.
pub type Renew<S> = Arc<dyn Fn(bool) -> Result<S, String> + Send + Sync>;

/// How long an operation that fails authentication keeps renewing its
/// credentials and retrying before the failure stands. It covers the
/// window of an AWS rotation in which the database already has the new
/// password and AWSCURRENT still holds the old one.
pub const AUTH_RENEWAL_PATIENCE: Duration = Duration::from_secs(30);

/// The longest wait between two attempts of [`retry_on_auth_failure`].
const AUTH_RETRY_DELAY_MAX: Duration = Duration::from_secs(5);

/// Runs `op`; while it fails with an authentication error (`auth_failure`
/// gives its message), renews the credentials (`renew`: true when they
/// changed) and runs it again, for up to [`AUTH_RENEWAL_PATIENCE`], or until
/// `stop` (the calling task's stop flag) is set: then the failure stands at
/// once. `what` names the resource in the log.
pub fn retry_on_auth_failure<T, E>(
    what: &str,
    stop: &AtomicBool,
    mut op: impl FnMut() -> Result<T, E>,
    auth_failure: impl Fn(&E) -> Option<String>,
    mut renew: impl FnMut() -> Result<bool, String>,
) -> Result<T, E> {
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let outcome = op();
        let failure = outcome.as_ref().err().and_then(&auth_failure);
        match failure {
            None if attempt > 0 && outcome.is_ok() => {
                tracing::info!(
                    "{what}: succeeded with renewed credentials (attempt {})",
                    attempt + 1
                );
                return outcome;
            }
            Some(e) if start.elapsed() < AUTH_RENEWAL_PATIENCE && !stop.load(Ordering::Relaxed) => {
                if attempt == 0 {
                    tracing::warn!("{what}: {e}; renewing the credentials from their secrets");
                }
            }
            _ => return outcome,
        }
        attempt += 1;
        // Renewed here, or (false) perhaps just now by a rotation noticed
        // elsewhere: either way the next attempt uses the newest login;
        // without news, wait a little first.
        match renew() {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!("{what}: renewing the credentials failed: {e}"),
        }
        let until = Instant::now() + backoff(attempt, AUTH_RETRY_DELAY_MAX);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(STOP_CHECK.min(until.saturating_duration_since(Instant::now())));
        }
    }
}

/// How often a wait between attempts looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_varies_and_stays_within_half_to_all_of_the_step() {
        let cap = Duration::from_secs(60);
        let step = Duration::from_millis(800); // attempt 3: 100 ms × 2³
        let delays: Vec<Duration> = (0..200).map(|_| backoff(3, cap)).collect();
        for d in &delays {
            assert!(
                *d >= step / 2 && *d < step,
                "{d:?} outside [400 ms, 800 ms)"
            );
        }
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 100,
            "only {} distinct delays in 200: the jitter does not vary",
            distinct.len()
        );
        let (low, high) = (
            delays.iter().filter(|d| **d < step * 3 / 4).count(),
            delays.iter().filter(|d| **d >= step * 3 / 4).count(),
        );
        assert!(
            low > 20 && high > 20,
            "{low} below, {high} above the middle"
        );
        // The cap bounds the step before jitter; large attempts do not overflow.
        let capped = Duration::from_millis(300);
        for attempt in [4, 10, 31, u32::MAX] {
            let d = backoff(attempt, capped);
            assert!(d >= capped / 2 && d < capped, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retries_stop_at_the_timeout_and_delays_stay_under_the_cap() {
        let (timeout, delay_max) = (Some(Duration::from_millis(300)), Duration::from_millis(80));
        let mut r = Retry::default();
        let mut waited = Duration::ZERO;
        while let Some(d) = r.next_delay(timeout, delay_max) {
            assert!(d <= delay_max, "{d:?}");
            std::thread::sleep(d);
            waited += d;
            assert!(waited < Duration::from_secs(5), "must give up");
        }
        assert!(r.failing_for() >= Duration::from_millis(300));
        r.reset();
        assert_eq!(r.failing_for(), Duration::ZERO);
        assert!(r.next_delay(timeout, delay_max).is_some());
        let mut forever = Retry::default();
        for _ in 0..50 {
            let d = forever.next_delay(None, Duration::from_secs(60)).unwrap();
            assert!(d <= Duration::from_secs(60));
        }
    }

    #[test]
    fn auth_failures_renew_and_retry_until_the_operation_works() {
        let (mut calls, mut renewals) = (0, 0);
        let outcome: Result<&str, String> = retry_on_auth_failure(
            "test resource",
            &AtomicBool::new(false),
            || {
                calls += 1;
                if calls < 3 {
                    Err("password authentication failed".to_owned())
                } else {
                    Ok("done")
                }
            },
            |e| e.contains("authentication").then(|| e.clone()),
            || {
                renewals += 1;
                Ok(true)
            },
        );
        assert_eq!(outcome, Ok("done"));
        assert_eq!((calls, renewals), (3, 2));
        // Another error stands at once, without renewing.
        let mut renewed = false;
        let outcome: Result<(), String> = retry_on_auth_failure(
            "test resource",
            &AtomicBool::new(false),
            || Err("table missing".to_owned()),
            |e| e.contains("authentication").then(|| e.clone()),
            || {
                renewed = true;
                Ok(true)
            },
        );
        assert_eq!(outcome, Err("table missing".to_owned()));
        assert!(!renewed);
    }

    #[test]
    fn a_stopping_task_leaves_the_renewal_loop_at_once() {
        let stop = Arc::new(AtomicBool::new(false));
        let setter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                stop.store(true, Ordering::SeqCst);
            })
        };
        let start = Instant::now();
        let mut calls = 0;
        let outcome: Result<(), String> = retry_on_auth_failure(
            "test resource",
            &stop,
            || {
                calls += 1;
                Err("password authentication failed".to_owned())
            },
            |e| Some(e.clone()),
            || Ok(false),
        );
        setter.join().unwrap();
        assert_eq!(outcome, Err("password authentication failed".to_owned()));
        assert!(calls > 1, "it retried while the task ran");
        assert!(
            start.elapsed() < AUTH_RENEWAL_PATIENCE / 3,
            "left {:?} after the start, not at the stop",
            start.elapsed()
        );
    }
}
