//! The progress lines a busy task logs every `metrics.log.interval.ms`.

use std::time::{Duration, Instant};

/// When a task's next progress line is due, and what the last one counted.
///
/// A line is due once the interval has passed and something moved since
/// the last one. An idle task waits for work no longer than until its
/// next line is due ([`Progress::wait`]), so the line that shows the last
/// records done comes on time, not a whole idle wait later: a reader of
/// the lines (the broker benchmark) can tell when the work ended.
pub(super) struct Progress {
    interval: Duration,
    last: Instant,
    logged: u64,
}

impl Progress {
    /// Lines every `interval`; none with `Duration::ZERO`.
    pub fn new(interval: Duration) -> Progress {
        Progress {
            interval,
            last: Instant::now(),
            logged: 0,
        }
    }

    /// `Some(records per second since the last line)` when a line counting
    /// `done` records is due now (`busy`: work is under way even though
    /// `done` did not move); the caller logs it.
    pub fn due(&mut self, done: u64, busy: bool) -> Option<f64> {
        let elapsed = self.last.elapsed();
        if self.interval.is_zero() || elapsed < self.interval || (done == self.logged && !busy) {
            return None;
        }
        let rate = done.saturating_sub(self.logged) as f64 / elapsed.as_secs_f64();
        self.logged = done;
        self.last = Instant::now();
        Some(rate)
    }

    /// How long an idle task may wait for work (`idle`, at most) before a
    /// line counting `done` is due (`busy` as for [`Progress::due`]).
    pub fn wait(&self, idle: Duration, done: u64, busy: bool) -> Duration {
        if self.interval.is_zero() || (done == self.logged && !busy) {
            return idle;
        }
        idle.min(self.interval.saturating_sub(self.last.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_due_after_the_interval_when_something_moved() {
        let mut p = Progress::new(Duration::from_millis(200));
        assert_eq!(p.due(5, false), None, "not before the interval");
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(p.due(0, false), None, "nothing moved");
        assert!(
            p.due(0, true).is_some(),
            "busy: a line even without progress"
        );
        std::thread::sleep(Duration::from_millis(210));
        let rate = p.due(10, false).expect("due");
        assert!(rate > 0.0 && rate <= 10.0 / 0.21, "{rate}");
        assert_eq!(p.due(20, false), None, "the interval starts again");
    }

    #[test]
    fn an_idle_wait_ends_when_a_line_is_due() {
        let idle = Duration::from_millis(100);
        let p = Progress::new(Duration::from_millis(50));
        assert_eq!(
            p.wait(idle, 0, false),
            idle,
            "nothing to report: the whole wait"
        );
        for (done, busy) in [(7, false), (0, true)] {
            let wait = p.wait(idle, done, busy);
            assert!(wait <= Duration::from_millis(50), "{wait:?}");
        }
        assert_eq!(
            Progress::new(Duration::ZERO).wait(idle, 7, true),
            idle,
            "lines off"
        );
    }
}
