//! A coarse timer for hyper's header timeout. hyper moves a connection's header timer at
//! every request; with tokio's timer that is a move in the timer wheel, which cost about a
//! tenth of the gateway's requests a second under wrk. Here moving it is an atomic store:
//! one ticker thread a process wakes the sleepers whose deadline passed, every [`TICK`], so a
//! timeout fires up to a tick late.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// How often the ticker looks at the sleepers.
const TICK: Duration = Duration::from_millis(250);

/// A [`hyper::rt::Timer`] whose sleeps are checked every [`TICK`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CoarseTimer;

/// One sleeper's deadline and waker, shared with the ticker.
struct Slot {
    /// Milliseconds since [`epoch`].
    deadline_ms: AtomicU64,
    waker: AtomicWaker,
}

/// A sleep of [`CoarseTimer`].
pub(crate) struct CoarseSleep {
    slot: Arc<Slot>,
    /// Whether the ticker knows the slot (it is told at the first wait).
    watched: bool,
}

/// The sleepers the ticker looks at.
fn sleepers() -> &'static Mutex<Vec<Weak<Slot>>> {
    static SLEEPERS: OnceLock<Mutex<Vec<Weak<Slot>>>> = OnceLock::new();
    SLEEPERS.get_or_init(|| {
        std::thread::Builder::new()
            .name("rmi-gateway-timer".into())
            .spawn(tick)
            .expect("the timer thread starts");
        Mutex::new(Vec::new())
    })
}

/// Every [`TICK`], wakes the sleepers whose deadline passed and forgets those dropped.
fn tick() {
    loop {
        std::thread::sleep(TICK);
        let now = now_ms();
        let mut sleepers = sleepers().lock().unwrap_or_else(|p| p.into_inner());
        sleepers.retain(|weak| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            if slot.deadline_ms.load(Ordering::Acquire) <= now {
                slot.waker.wake();
            }
            true
        });
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

fn ms_at(deadline: Instant) -> u64 {
    deadline.saturating_duration_since(epoch()).as_millis() as u64
}

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep {
            slot: Arc::new(Slot {
                deadline_ms: AtomicU64::new(ms_at(deadline)),
                waker: AtomicWaker::new(),
            }),
            watched: false,
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<CoarseSleep>() {
            Some(coarse) => coarse
                .slot
                .deadline_ms
                .store(ms_at(new_deadline), Ordering::Release),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let due = |slot: &Slot| slot.deadline_ms.load(Ordering::Acquire) <= now_ms();
        if due(&self.slot) {
            return Poll::Ready(());
        }
        self.slot.waker.register(cx.waker());
        if !self.watched {
            self.watched = true;
            let watched = Arc::downgrade(&self.slot);
            sleepers()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(watched);
        }
        // The deadline may have passed while the waker was being left.
        if due(&self.slot) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn a_sleep_ends_within_a_tick_of_its_deadline_and_moves_when_reset() {
        let timer = CoarseTimer;
        let started = Instant::now();
        timer.sleep(Duration::from_millis(300)).await;
        let slept = started.elapsed();
        assert!(slept >= Duration::from_millis(300), "{slept:?}");
        assert!(slept < Duration::from_millis(300) + TICK * 3, "{slept:?}");

        let mut sleep = timer.sleep(Duration::from_secs(3600));
        let started = Instant::now();
        timer.reset(&mut sleep, Instant::now() + Duration::from_millis(100));
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .expect("the reset sleep ends");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
