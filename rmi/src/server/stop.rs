//! The three stages of a daemon's stop, and a call that ends at the second ([`UntilClosed`]).
//!
//! Shutting down first *drains*: the daemon stops accepting connections and new calls from
//! clients, while connections are still read so that calls in flight, and the re-entrant
//! calls they cause, complete. Then it *closes*: reads end, calls still running are
//! cancelled and answered so, and connections close once their replies are written. Last,
//! once the stop is over, it *abandons* the connections whose clients do not take their last
//! replies: they are dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// One stage of the stop: a flag checked on every read (one atomic load: reads are on every
/// call's path) and a token that wakes whatever waits for it.
#[derive(Clone)]
struct Stage {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Stage {
    fn new() -> Self {
        Stage {
            flag: Arc::new(AtomicBool::new(false)),
            token: CancellationToken::new(),
        }
    }

    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// The daemon's stop as its tasks see it: draining (no new connections nor client calls),
/// then closed (no more reads; calls still running are cancelled), then abandoned (replies
/// nobody takes are dropped). Cloned for every call that
/// may wait: one reference count, not a clone of each stage's token (which takes a lock).
#[derive(Clone)]
pub(crate) struct Stop(Arc<Stages>);

pub(crate) struct Stages {
    draining: Stage,
    closed: Stage,
    /// After the stop: connections whose clients do not take their last replies are dropped.
    abandoned: Stage,
}

impl std::ops::Deref for Stop {
    type Target = Stages;
    fn deref(&self) -> &Stages {
        &self.0
    }
}

impl Stop {
    /// The flag set when the stop closes, to check without locking (a connection's reader
    /// checks it on every read).
    pub(crate) fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.flag.clone()
    }

    pub(crate) fn new() -> Self {
        Stop(Arc::new(Stages {
            draining: Stage::new(),
            closed: Stage::new(),
            abandoned: Stage::new(),
        }))
    }

    /// Begins the stop: no new connections, no new calls but re-entrant ones.
    pub(crate) fn stop(&self) {
        self.draining.set();
    }

    /// Ends it: reads end, calls still running are cancelled. Implies [`stop`](Stop::stop).
    pub(crate) fn close(&self) {
        self.draining.set();
        self.closed.set();
    }

    /// Whether the stop has begun.
    pub(crate) fn is_stopped(&self) -> bool {
        self.draining.is_set()
    }

    /// Completes once the stop has begun.
    pub(crate) async fn stopped(&self) {
        self.draining.token.cancelled().await
    }

    /// Whether the stop has ended: calls still running are to be cancelled.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_set()
    }

    /// Completes once the stop has ended.
    pub(crate) fn closed_owned(&self) -> WaitForCancellationFutureOwned {
        self.closed.token.clone().cancelled_owned()
    }

    /// Gives up on the connections still open after the stop: they are dropped.
    pub(crate) fn abandon(&self) {
        self.close();
        self.abandoned.set();
    }

    /// Completes once the daemon gave up on its connections.
    pub(crate) fn abandoned_owned(&self) -> WaitForCancellationFutureOwned {
        self.abandoned.token.clone().cancelled_owned()
    }
}

pin_project_lite::pin_project! {
    /// A call that ends with [`Fault::Cancelled`](crate::wire::Fault::Cancelled) when the
    /// daemon's stop ends before it does. It registers for the stop's end only once it first
    /// waits, so a call that completes at once pays nothing for it.
    pub(crate) struct UntilClosed<F> {
        #[pin]
        call: F,
        stop: Stop,
        wake_on_close: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    }
}

impl<F> UntilClosed<F> {
    pub(crate) fn new(call: F, stop: &Stop) -> Self {
        UntilClosed {
            call,
            stop: stop.clone(),
            wake_on_close: None,
        }
    }
}

impl<F: Future<Output = crate::wire::Reply>> Future for UntilClosed<F> {
    type Output = crate::wire::Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(reply) = this.call.poll(cx) {
            return Poll::Ready(reply);
        }
        if this.stop.is_closed() {
            return Poll::Ready(Err(crate::wire::Fault::Cancelled));
        }
        let wake = this
            .wake_on_close
            .get_or_insert_with(|| Box::pin(this.stop.closed_owned()));
        match wake.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(crate::wire::Fault::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}
