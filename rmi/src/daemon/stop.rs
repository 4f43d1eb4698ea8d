//! A stream that reads as closed once the daemon shuts down.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Passes reads and writes through until `stop` fires; from then on reads return end of
/// stream, so the RPC layer finishes the calls in flight and closes the connection.
pub(crate) struct StopReading<S> {
    inner: S,
    token: CancellationToken,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set once `stop` has fired: from then on every read is end of stream.
    stopped: bool,
}

impl<S> StopReading<S> {
    pub(crate) fn new(inner: S, stop: CancellationToken) -> Self {
        StopReading {
            inner,
            stop: Box::pin(stop.clone().cancelled_owned()),
            token: stop,
            stopped: false,
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
        if this.stopped || this.token.is_cancelled() {
            this.stopped = true;
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => Poll::Ready(result),
            // Only an idle reader needs waking on shutdown: register for it now, not on every
            // read (reads are on every call's path).
            Poll::Pending => {
                if this.stop.as_mut().poll(cx).is_ready() {
                    this.stopped = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
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
