//! Warnings about misbehaving peers, at most one line a second of each kind: a flood of bad
//! connections must not flood the log too. The line after a quiet spell says how many were
//! left out. The failures of tasks nobody awaits are written so too (`spawn_and_warn!`).
//! And [`one_line`]: a peer's text made safe for one log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// How often one kind of warning may be written, in milliseconds.
const PERIOD_MS: u64 = 1000;

/// The rate of one kind of warning: at most one line a second, and the count of those left
/// out. rmi's daemons keep their logs short with it; it is public for services built beside
/// them (`rmi-gateway` throttles its refusals with it).
///
/// ```
/// static REFUSED: rmi::Throttle = rmi::Throttle::new();
/// assert_eq!(REFUSED.allow(), Some(0)); // the first line is written
/// assert_eq!(REFUSED.allow(), None); // the next, within a second, is counted instead
/// ```
pub struct Throttle {
    /// Milliseconds since the process's first warning when the next line may be written.
    next_ms: AtomicU64,
    /// Lines left out since the last one written.
    suppressed: AtomicU64,
}

impl Throttle {
    /// A throttle that allows a line at once.
    pub const fn new() -> Self {
        Throttle {
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now, with how many were left out before it.
    pub fn allow(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(next, now + PERIOD_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

/// `tracing::warn!`, at most once a second for this call site; the line written counts the
/// ones left out (`suppressed = N`).
macro_rules! warn_throttled {
    ($($arg:tt)+) => {{
        static THROTTLE: $crate::throttle::Throttle = $crate::throttle::Throttle::new();
        if let Some(suppressed) = THROTTLE.allow() {
            if suppressed > 0 {
                tracing::warn!(suppressed, $($arg)+);
            } else {
                tracing::warn!($($arg)+);
            }
        }
    }};
}
pub(crate) use warn_throttled;

/// Runs a future in a task of its own that nobody awaits, as a oneway call's sending (by the
/// proxy) and its running (by the daemon) are: its failure (`Err(text)`) can only be logged,
/// so it is, with [`warn_throttled!`] at the call site (its own throttle and log target).
macro_rules! spawn_and_warn {
    ($work:expr) => {{
        let work = $work;
        tokio::spawn(async move {
            let outcome: Result<(), String> = work.await;
            if let Err(why) = outcome {
                $crate::throttle::warn_throttled!("{why}");
            }
        });
    }};
}
pub(crate) use spawn_and_warn;

/// `text` on one line: a peer's bytes quoted in an error must not break the log's lines.
///
/// ```
/// assert_eq!(rmi::one_line("bad\nline"), "bad line");
/// ```
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_the_count_of_the_rest() {
        let throttle = Throttle::new();
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.allow(), None);
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(throttle.allow(), Some(1000));
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(one_line("bad\nframe\r\u{1b}[31m"), "bad frame  [31m");
    }
}
