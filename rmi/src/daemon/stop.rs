//! A stream that reads as closed once the daemon shuts down.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The daemon's stop signal as connections read it: a flag checked on every read (one
/// atomic load: reads are on every call's path) and a token that wakes idle readers.
#[derive(Clone)]
pub(crate) struct Stop {
    stopped: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Stop {
    pub(crate) fn new() -> Self {
        Stop {
            stopped: Arc::new(AtomicBool::new(false)),
            token: CancellationToken::new(),
        }
    }

    /// Sets the flag, then wakes everything waiting for it.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether [`stop`](Stop::stop) has been called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Completes once [`stop`](Stop::stop) has been called.
    pub(crate) async fn stopped(&self) {
        self.token.cancelled().await
    }
}

/// Passes reads and writes through until the daemon stops, or the client has sent nothing
/// for the idle timeout; from then on reads return end of stream, so the RPC layer finishes
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
            stopped: stop.stopped.clone(),
            wake_on_stop: Box::pin(stop.token.clone().cancelled_owned()),
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
