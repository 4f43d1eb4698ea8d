//! One watchdog per daemon: a task that, every tick, wakes the connections whose read deadline
//! has come (the first request's, a request begun, the idle one, the moment to let go of the
//! read buffer), and keeps a coarse clock that connections read instead of the system's.
//!
//! A timer per connection costs its memory, and a wake-up of the thread driving tokio's
//! timers when it is first registered (an eventfd write per new connection). The watchdog
//! costs each connection an [`Alarm`]: a place in a list. The coarse clock lags by up to a
//! tick, so a limit is counted with a tick more ([`Alarm::span`]), and whether it has passed is
//! read from the system's clock: a limit ends up to two ticks late, never early (unless the
//! watchdog's task waits longer than a tick for a thread). The client's keeper
//! (`client/keeper.rs`) does the same for a runtime's calls.
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
    /// The tick, in milliseconds: what limits are counted with besides their own length.
    margin: Millis,
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
            margin: millis(tick),
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
        let start = !std::mem::replace(&mut watched.1, true);
        // Spawned after letting go of the lock: a runtime shutting down drops a task as it is
        // spawned, and the task's drop takes the lock.
        drop(watched);
        if start {
            // Made outside the task: dropped with it even if its runtime drops it unpolled.
            let running = Running {
                watchdog: self.clone(),
                stopped: false,
            };
            tokio::spawn(running.watch());
        }
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

    /// Has the armed alarm wake `waker`. A tick that unarms the alarm takes the waker after
    /// it unarms it, and may take one registered for the next deadline meanwhile: whoever
    /// finds the alarm armed registers again (cheap: the same waker is not cloned again).
    pub(crate) fn listen(&self, waker: &Waker) {
        self.armed.waker.register(waker);
    }

    /// The coarse clock of the connection's watchdog: up to a tick behind.
    pub(crate) fn now(&self) -> Millis {
        self.watchdog.now()
    }

    /// The system's clock, as the watchdog counts (it sets the coarse clock too): for the rare
    /// moments a limit may have passed.
    pub(crate) fn now_exact(&self) -> Millis {
        self.watchdog.read_clock()
    }

    /// `limit`, as deadlines from the coarse clock count it: a tick more, so that it is never
    /// cut short.
    pub(crate) fn span(&self, limit: Duration) -> Millis {
        millis(limit).saturating_add(self.watchdog.margin)
    }
}

/// `duration` in whole milliseconds, as the watchdog's clock counts (long ones saturate far
/// from [`UNARMED`]).
pub(crate) fn millis(duration: Duration) -> Millis {
    duration.as_millis().try_into().unwrap_or(Millis::MAX / 4)
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

    /// A waker that counts its wakes.
    struct Counted(std::sync::atomic::AtomicUsize);

    impl futures::task::ArcWake for Counted {
        fn wake_by_ref(counted: &Arc<Self>) {
            counted.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_waker_taken_for_an_earlier_deadline_is_registered_again() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Nothing here waits: the watchdog's own task never runs, and the test plays a tick.
        runtime.block_on(async {
            let watchdog = Watchdog::new(Duration::from_secs(3600));
            let alarm = watchdog.alarm();
            let counted = Arc::new(Counted(0.into()));
            let waker = futures::task::waker(counted.clone());
            alarm.arm(5, &waker);
            // A tick unarms the alarm due at 5; before it takes the waker, the connection
            // (on another thread) arms it for 10; the tick then takes that waker.
            let armed = &alarm.armed;
            assert!(armed
                .due
                .compare_exchange(5, UNARMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok());
            alarm.arm(10, &waker);
            armed
                .waker
                .take()
                .expect("the waker registered for 10")
                .wake();
            assert_eq!(counted.0.load(Ordering::Relaxed), 1);
            // Woken, the connection finds the alarm armed for 10, and registers again.
            assert_eq!(alarm.due(), Some(10));
            alarm.listen(&waker);
            armed
                .take_due(10)
                .expect("the tick at 10 has a waker")
                .wake();
            assert_eq!(counted.0.load(Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn a_task_dropped_as_it_is_spawned_does_not_hang_the_connection() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let watchdog = Watchdog::new(Duration::from_millis(10));
            // Outside a runtime, tokio drops the task's future, then panics.
            let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(watchdog.alarm());
            }));
            let _ = done.send((spawned.is_err(), watchdog.lock().1));
        });
        let (panicked, running) = finished
            .recv_timeout(Duration::from_secs(5))
            .expect("alarm() returned or panicked, rather than waiting on its own lock");
        assert!(panicked, "tokio::spawn outside a runtime panics");
        assert!(!running, "the dropped task marked the watchdog stopped");
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
