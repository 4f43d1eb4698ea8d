//! The requests in flight, bounded: a count each request takes a place in, without a lock
//! while there is room. tokio's `Semaphore` takes a lock each time a permit is given back,
//! which the runtime's workers, answering requests at once, contend for (under wrk, about a
//! third of a futex call more per request).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::Notify;

/// At most `limit` requests at once.
pub(crate) struct InFlight {
    taken: AtomicUsize,
    limit: usize,
    /// Requests waiting for a place: a place given back wakes one only if there are some.
    waiting: AtomicUsize,
    freed: Notify,
}

/// A request's place; dropping it gives the place back.
pub(crate) struct Place<'a>(&'a InFlight);

impl InFlight {
    pub(crate) fn new(limit: usize) -> Self {
        InFlight {
            taken: AtomicUsize::new(0),
            limit,
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// A place, if one is free now.
    pub(crate) fn try_enter(&self) -> Option<Place<'_>> {
        let mut taken = self.taken.load(SeqCst);
        while taken < self.limit {
            match self
                .taken
                .compare_exchange_weak(taken, taken + 1, SeqCst, SeqCst)
            {
                Ok(_) => return Some(Place(self)),
                Err(now) => taken = now,
            }
        }
        None
    }

    /// A place, waiting at most `within` for one to be given back.
    pub(crate) async fn enter(&self, within: Duration) -> Option<Place<'_>> {
        if let Some(place) = self.try_enter() {
            return Some(place);
        }
        self.waiting.fetch_add(1, SeqCst);
        let _waiting = Waiting(&self.waiting);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Listening before looking: a place given back after the look wakes this wait.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(place) = self.try_enter() {
                return Some(place);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_enter();
            }
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let in_flight = self.0;
        in_flight.taken.fetch_sub(1, SeqCst);
        if in_flight.waiting.load(SeqCst) > 0 {
            in_flight.freed.notify_one();
        }
    }
}

/// A request counted among those waiting until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let in_flight = InFlight::new(2);
        let first = in_flight.try_enter().expect("a first place");
        let _second = in_flight.try_enter().expect("a second place");
        assert!(in_flight.try_enter().is_none(), "no third");
        drop(first);
        assert!(
            in_flight.try_enter().is_some(),
            "the first's place, given back"
        );
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_place_given_back_or_none_in_time() {
        let in_flight = std::sync::Arc::new(InFlight::new(1));
        let held = in_flight.try_enter().unwrap();
        let timed_out = in_flight.enter(Duration::from_millis(50)).await;
        assert!(timed_out.is_none(), "none free within the wait");
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.enter(Duration::from_secs(5)).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(
            waiter.await.unwrap(),
            "the waiter took the place given back"
        );
        assert_eq!(in_flight.waiting.load(SeqCst), 0);
        assert_eq!(
            in_flight.taken.load(SeqCst),
            0,
            "the waiter's place, given back"
        );
    }
}
