//! A stream that reads as closed once the daemon shuts down.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// Passes reads and writes through until the daemon stops; from then on reads return end of
/// stream, so the RPC layer finishes the calls in flight and closes the connection.
pub(crate) struct StopReading<S> {
    inner: S,
    stopped: Arc<AtomicBool>,
    wake_on_stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Whether `wake_on_stop` holds this task's waker. The stream is only ever read by its
    /// connection's task, whose waker does not change, so one registration is enough.
    registered: bool,
}

impl<S> StopReading<S> {
    pub(crate) fn new(inner: S, stop: &Stop) -> Self {
        StopReading {
            inner,
            stopped: stop.stopped.clone(),
            wake_on_stop: Box::pin(stop.token.clone().cancelled_owned()),
            registered: false,
        }
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
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending if !this.registered => {
                this.registered = true;
                match this.wake_on_stop.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(())),
                    Poll::Pending => Poll::Pending,
                }
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
