//! Whether a method's calls start in their connection's task or in tasks of their own.
//!
//! The daemon first polls a call in the task that read it (`session::ConnectionState::run_call`): most calls finish
//! without waiting, and then no other thread is woken. A call that keeps that task longer
//! than [`INLINE_BUDGET`] before it finishes or waits holds up the connection's other calls,
//! so its method is marked slow, and the method's calls start in tasks of their own until
//! [`QUICK_RUNS_TO_RETURN`] of them in a row were quick. A CPU-heavy (or blocking) method
//! thus stays marked; a quick method is marked only for a moment when its thread was
//! preempted in the middle of a call (on a busy machine, several times a second), which a
//! mark that never faded would turn into a task per call for good. A run in a task of its
//! own during which the machine preempted its thread is judged by the CPU time it took
//! rather than the time that passed (on Linux, where a thread's involuntary context
//! switches and CPU time can be read): on a busy machine, most runs would seem long, and
//! the mark would never fade.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long a call may run in its connection's task before it finishes or waits; one that
/// takes longer marks its method slow.
pub(crate) const INLINE_BUDGET: Duration = Duration::from_micros(500);

/// How many calls of a method marked slow must in a row finish or wait within
/// [`INLINE_BUDGET`], in tasks of their own, before its calls start in the connection's task
/// again.
pub(crate) const QUICK_RUNS_TO_RETURN: u32 = 64;

/// Where a call starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start<'a> {
    /// In the connection's task, always: answers that run no user code (refusals).
    Here,
    /// As the method's [`Pace`] says.
    Paced(&'a Arc<Pace>),
    /// In a task of its own, always: calls that wait by nature (stream pulls).
    OwnTask,
}

/// One method's mark: how many quick runs it still owes before it runs inline again.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    owed: AtomicU32,
}

impl Pace {
    /// Whether the method's next call starts in its connection's task.
    pub(crate) fn inline(&self) -> bool {
        self.owed.load(Ordering::Relaxed) == 0
    }

    /// Records one run of the method until it finished or first waited, taking `took`.
    pub(crate) fn ran(&self, took: Duration) {
        if took > INLINE_BUDGET {
            self.owed.store(QUICK_RUNS_TO_RETURN, Ordering::Relaxed);
        } else if !self.inline() {
            // Racing runs may both count: a mark fades one run early at worst.
            let _ = self
                .owed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// `call`, reporting to this mark how long its first poll took.
    pub(crate) fn timed<F: Future>(self: Arc<Self>, call: F) -> TimedFirstPoll<F> {
        TimedFirstPoll {
            call,
            pace: Some(self),
        }
    }
}

pin_project_lite::pin_project! {
    /// A call whose first poll is timed for its method's [`Pace`].
    pub(crate) struct TimedFirstPoll<F> {
        #[pin]
        call: F,
        pace: Option<Arc<Pace>>,
    }
}

impl<F: Future> Future for TimedFirstPoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(pace) = this.pace.take() else {
            return this.call.poll(cx);
        };
        let before = ThreadTimes::now();
        let started = Instant::now();
        let poll = this.call.poll(cx);
        let took = started.elapsed();
        match (before, ThreadTimes::now()) {
            (Some(before), Some(after)) if after.preemptions != before.preemptions => {
                pace.ran(after.cpu.saturating_sub(before.cpu));
            }
            _ => pace.ran(took),
        }
        poll
    }
}

/// What the machine says of this thread so far: how often it preempted it (involuntary
/// context switches) and the CPU time it used.
#[derive(Clone, Copy, Debug)]
struct ThreadTimes {
    preemptions: i64,
    cpu: Duration,
}

impl ThreadTimes {
    /// `None` where that cannot be read.
    fn now() -> Option<ThreadTimes> {
        #[cfg(target_os = "linux")]
        {
            let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
            // SAFETY: `getrusage` fills in the struct it is given when it returns 0, and only
            // then is it read.
            if unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } == 0 {
                let usage = unsafe { usage.assume_init() };
                let time = |t: libc::timeval| {
                    Duration::from_secs(t.tv_sec.max(0) as u64)
                        + Duration::from_micros(t.tv_usec.max(0) as u64)
                };
                #[allow(clippy::useless_conversion)] // `c_long` is `i32` on 32-bit targets.
                return Some(ThreadTimes {
                    preemptions: i64::from(usage.ru_nivcsw),
                    cpu: time(usage.ru_utime) + time(usage.ru_stime),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_micros(1);
    const LONG: Duration = Duration::from_millis(2);

    #[test]
    fn a_method_runs_inline_until_a_run_takes_too_long() {
        let pace = Pace::default();
        for _ in 0..1000 {
            pace.ran(QUICK);
        }
        assert!(pace.inline());
        pace.ran(LONG);
        assert!(!pace.inline());
    }

    #[test]
    fn a_mark_fades_after_enough_quick_runs_in_a_row() {
        let pace = Pace::default();
        pace.ran(LONG);
        for _ in 1..QUICK_RUNS_TO_RETURN {
            pace.ran(QUICK);
        }
        assert!(!pace.inline(), "one quick run short");
        pace.ran(QUICK);
        assert!(pace.inline());
    }

    #[test]
    fn a_long_run_starts_the_count_again() {
        let pace = Pace::default();
        pace.ran(LONG);
        for _ in 0..QUICK_RUNS_TO_RETURN - 1 {
            pace.ran(QUICK);
        }
        pace.ran(LONG);
        for _ in 0..QUICK_RUNS_TO_RETURN - 1 {
            pace.ran(QUICK);
        }
        assert!(!pace.inline());
    }

    #[test]
    fn this_threads_times_can_be_read_on_linux() {
        assert_eq!(ThreadTimes::now().is_some(), cfg!(target_os = "linux"));
    }

    #[tokio::test]
    async fn the_first_poll_of_a_timed_call_is_what_counts() {
        let pace = Arc::new(Pace::default());
        pace.ran(LONG);
        // A call that waits long after a quick first poll is a quick run.
        let call = Arc::clone(&pace).timed(tokio::time::sleep(Duration::from_millis(5)));
        call.await;
        assert_eq!(pace.owed.load(Ordering::Relaxed), QUICK_RUNS_TO_RETURN - 1);
        // One that keeps its thread busy is not.
        let busy = Arc::clone(&pace).timed(async { std::thread::sleep(LONG) });
        busy.await;
        assert_eq!(pace.owed.load(Ordering::Relaxed), QUICK_RUNS_TO_RETURN);
    }
}
