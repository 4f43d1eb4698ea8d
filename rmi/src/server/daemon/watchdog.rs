//! One watchdog per daemon: a task that, every tick, wakes the connections whose read deadline
//! has come (the first request's, a request begun, the idle one, the moment to let go of the
//! read buffer), and keeps a coarse clock that connections read instead of the system's.
//!
//! A timer per connection costs its memory, and a wake-up of the thread driving tokio's
//! timers when it is first registered (an eventfd write per new connection). The watchdog
//! costs each connection an [`Alarm`]: a place in a list, and a deadline is late by at most one
//! tick. The client's keeper (`client/keeper.rs`) does the same for a runtime's calls.
//!
//! The watchdog runs while the daemon has connections and for [`IDLE_TICKS`] after the last
//! one: connections that come and go one after another do not wake it each time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// A moment, in milliseconds since the watchdog began: what its coarse clock reads.
pub(crate) type Millis = u64;

/// No deadline armed (or it went off).
const UNARMED: Millis = Millis::MAX;

/// How many ticks with no connection the watchdog runs on before it stops.
const IDLE_TICKS: u32 = 20;

/// The watchdog of one daemon's connections.
pub(crate) struct Watchdog {
    tick: Duration,
    began: Instant,
    /// The coarse clock: set each tick, and when a connection begins.
    now: AtomicU64,
    /// The connections' alarms, and whether the task runs.
    watched: Mutex<(Vec<Arc<Armed>>, bool)>,
}

/// A connection's alarm: when the watchdog must wake it, and whom to wake.
struct Armed {
    due: AtomicU64,
    waker: AtomicWaker,
    /// The connection ended: the next tick forgets the alarm.
    gone: AtomicBool,
}

/// A connection's place in its daemon's watchdog; dropping it gives the place up.
pub(crate) struct Alarm {
    armed: Arc<Armed>,
    watchdog: Arc<Watchdog>,
}

impl Watchdog {
    /// A watchdog whose deadlines are late by at most `tick`.
    pub(crate) fn new(tick: Duration) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            tick,
            began: Instant::now(),
            now: AtomicU64::new(0),
            watched: Mutex::default(),
        })
    }

    /// The tick for read deadlines as short as `shortest`: a tenth of it, within 10–250 ms.
    pub(crate) fn tick_for(shortest: Duration) -> Duration {
        (shortest / 10).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    /// A new connection's alarm, unarmed; starts the watchdog's task if it was not running
    /// (which needs a tokio runtime).
    pub(crate) fn alarm(self: &Arc<Self>) -> Alarm {
        let armed = Arc::new(Armed {
            due: AtomicU64::new(UNARMED),
            waker: AtomicWaker::new(),
            gone: AtomicBool::new(false),
        });
        self.read_clock();
        let mut watched = self.lock();
        watched.0.push(armed.clone());
        if !watched.1 {
            watched.1 = true;
            // Made outside the task: dropped with it even if its runtime drops it unpolled.
            let running = Running {
                watchdog: self.clone(),
                stopped: false,
            };
            tokio::spawn(running.watch());
        }
        drop(watched);
        Alarm {
            armed,
            watchdog: self.clone(),
        }
    }

    /// The coarse clock.
    pub(crate) fn now(&self) -> Millis {
        self.now.load(Ordering::Relaxed)
    }

    /// Sets the coarse clock from the system's.
    fn read_clock(&self) -> Millis {
        let now = self.began.elapsed().as_millis() as Millis;
        self.now.fetch_max(now, Ordering::Relaxed);
        now
    }

    fn lock(&self) -> MutexGuard<'_, (Vec<Arc<Armed>>, bool)> {
        // Every change under the lock is a push, a retain or a flag: none panics halfway.
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The watchdog's task, running: when its runtime drops it, the watchdog is marked stopped,
/// so that the next connection starts another.
struct Running {
    watchdog: Arc<Watchdog>,
    /// The task marked the watchdog stopped itself, under the lock a new connection takes.
    stopped: bool,
}

impl Running {
    /// The task: each tick, forgets the alarms of connections gone and wakes those due; stops
    /// after [`IDLE_TICKS`] with none.
    async fn watch(mut self) {
        let watchdog = self.watchdog.clone();
        let mut ticks = tokio::time::interval(watchdog.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle = 0;
        loop {
            ticks.tick().await;
            let now = watchdog.read_clock();
            let mut watched = watchdog.lock();
            watched
                .0
                .retain(|armed| !armed.gone.load(Ordering::Relaxed));
            if watched.0.is_empty() {
                idle += 1;
                if idle >= IDLE_TICKS {
                    watched.1 = false;
                    self.stopped = true;
                    return;
                }
                continue;
            }
            idle = 0;
            let due: Vec<Waker> = watched.0.iter().filter_map(|a| a.take_due(now)).collect();
            drop(watched);
            due.into_iter().for_each(Waker::wake);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            self.watchdog.lock().1 = false;
        }
    }
}

impl Armed {
    /// The waker to wake, if the alarm was due by `now` (it is unarmed then).
    fn take_due(&self, now: Millis) -> Option<Waker> {
        let due = self.due.load(Ordering::Acquire);
        if due > now {
            return None;
        }
        self.due
            .compare_exchange(due, UNARMED, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        self.waker.take()
    }
}

impl Alarm {
    /// When the alarm goes off, if it is armed.
    pub(crate) fn due(&self) -> Option<Millis> {
        Some(self.armed.due.load(Ordering::Acquire)).filter(|&due| due != UNARMED)
    }

    /// Arms the alarm to wake `waker` at `due`, or sooner if it is armed sooner.
    pub(crate) fn arm(&self, due: Millis, waker: &Waker) {
        // Registered first: a tick between the two finds the deadline with its waker.
        self.armed.waker.register(waker);
        self.armed.due.fetch_min(due, Ordering::AcqRel);
    }

    /// The coarse clock of the connection's watchdog.
    pub(crate) fn now(&self) -> Millis {
        self.watchdog.now()
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.armed.gone.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;

    /// Waits until `alarm` goes off, arming it for `after` milliseconds from now.
    async fn rung(alarm: &Alarm, after: Millis) {
        let mut armed = false;
        poll_fn(|cx| {
            if std::mem::replace(&mut armed, true) {
                return if alarm.due().is_none() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            alarm.arm(alarm.now() + after, cx.waker());
            Poll::Pending
        })
        .await;
    }

    #[tokio::test]
    async fn an_armed_alarm_wakes_its_connection_within_a_tick() {
        let watchdog = Watchdog::new(Duration::from_millis(10));
        let alarm = watchdog.alarm();
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), rung(&alarm, 50))
            .await
            .expect("the watchdog woke the connection");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(40), "woke after {waited:?}");
        assert_eq!(alarm.due(), None, "an alarm that went off is unarmed");
    }

    #[tokio::test]
    async fn the_sooner_deadline_counts() {
        let watchdog = Watchdog::new(Duration::from_millis(10));
        let alarm = watchdog.alarm();
        let waker = futures::task::noop_waker();
        let now = alarm.now();
        alarm.arm(now + 10_000, &waker);
        alarm.arm(now + 100, &waker);
        alarm.arm(now + 5_000, &waker);
        assert_eq!(alarm.due(), Some(now + 100));
    }

    #[tokio::test]
    async fn the_watchdog_forgets_connections_gone_and_stops_when_none_are_left() {
        let watchdog = Watchdog::new(Duration::from_millis(10));
        drop(watchdog.alarm());
        let kept = watchdog.alarm();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(watchdog.lock().0.len(), 1, "the alarm dropped is forgotten");
        assert!(watchdog.lock().1, "it runs while a connection is watched");
        drop(kept);
        tokio::time::sleep(Duration::from_millis(10 * (u64::from(IDLE_TICKS) + 5))).await;
        assert!(!watchdog.lock().1, "it stopped once idle");
        let _again = watchdog.alarm();
        assert!(watchdog.lock().1, "a new connection starts it again");
    }

    #[test]
    fn a_watchdog_whose_runtime_ended_starts_again_in_another() {
        let watchdog = Watchdog::new(Duration::from_millis(10));
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let alarm = first.block_on(async { watchdog.alarm() });
        drop(first);
        assert!(!watchdog.lock().1, "its task ended with its runtime");
        drop(alarm);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        second.block_on(async {
            let alarm = watchdog.alarm();
            tokio::time::timeout(Duration::from_secs(5), rung(&alarm, 20))
                .await
                .expect("the new runtime's watchdog woke the connection");
        });
    }
}
