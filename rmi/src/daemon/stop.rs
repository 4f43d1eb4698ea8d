//! The two stages of a daemon's stop, and a stream that reads as closed at the second.
//!
//! Shutting down first *drains*: the daemon stops accepting connections and new calls from
//! clients, while connections are still read so that calls in flight, and the re-entrant
//! calls they cause, complete. Then it *closes*: reads end, calls still running are
//! cancelled and answered so, and connections close once their replies are written.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
/// then closed (no more reads; calls still running are cancelled).
#[derive(Clone)]
pub(crate) struct Stop {
    draining: Stage,
    closed: Stage,
}

impl Stop {
    pub(crate) fn new() -> Self {
        Stop {
            draining: Stage::new(),
            closed: Stage::new(),
        }
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
}

/// Passes reads and writes through until the daemon's stop ends (it is closed), or the client
/// has sent nothing for the idle timeout; from then on reads return end of stream, so the RPC layer finishes
/// the calls in flight and closes the connection.
pub(crate) struct StopReading<S> {
    inner: S,
    stopped: Arc<AtomicBool>,
    wake_on_stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Whether `wake_on_stop` holds this task's waker. The stream is only ever read by its
    /// connection's task, whose waker does not change, so one registration is enough.
    registered: bool,
    idle: Option<Idle>,
}

/// When a connection that sends nothing is closed.
struct Idle {
    timeout: Duration,
    /// When bytes last arrived: a read costs a clock reading, not a timer reset.
    last_read: Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Idle {
    fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        Idle {
            timeout,
            last_read: now,
            timer: Box::pin(tokio::time::sleep_until((now + timeout).into())),
            expired: false,
        }
    }

    /// Whether the connection has been idle for the timeout; else arranges to be woken when
    /// it might have been.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let due = self.last_read + self.timeout;
            if Instant::now() >= due {
                self.expired = true;
                return true;
            }
            self.timer.as_mut().reset(due.into());
        }
        false
    }
}

impl<S> StopReading<S> {
    pub(crate) fn new(inner: S, stop: &Stop, idle_timeout: Option<Duration>) -> Self {
        StopReading {
            inner,
            stopped: stop.closed.flag.clone(),
            wake_on_stop: Box::pin(stop.closed_owned()),
            registered: false,
            idle: idle_timeout.map(Idle::new),
        }
    }
}

impl<S> StopReading<S> {
    /// After a read found nothing: arranges to be woken on shutdown (once), and says whether
    /// the daemon stopped meanwhile.
    fn poll_stop(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.registered {
            self.registered = true;
            if self.wake_on_stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StopReading<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.stopped.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        if this.idle.is_none() {
            // Every call's path: no clock, no timer.
            return match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Pending => this.poll_stop(cx),
                other => other,
            };
        }
        if this.idle.as_ref().is_some_and(|idle| idle.expired) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                if this.poll_stop(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                if let Some(idle) = &mut this.idle {
                    if idle.poll_expired(cx) {
                        tracing::debug!("connection idle for {:?}: closing it", idle.timeout);
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                if let Some(idle) = &mut this.idle {
                    if buf.filled().len() > before {
                        idle.last_read = Instant::now();
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StopReading<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// A call that ends with [`Fault::Cancelled`](crate::wire::Fault::Cancelled) when the
    /// daemon's stop ends before it does. It registers for the stop's end only once it first
    /// waits, so a call that completes at once pays one atomic load.
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
