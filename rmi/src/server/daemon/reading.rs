//! Reading a client's socket: a stream that reads as closed once the daemon's stop closes,
//! or once the client breaks its [`ReadLimits`] (too slow, too quiet), and that pauses while
//! the connection has as many calls in flight as allowed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::watchdog::{millis, Alarm, Millis};
use crate::stop::Stop;

/// How long a client may take, as the daemon reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    /// No byte for this long closes the connection.
    pub(crate) idle: Option<Duration>,
    /// The first request must be complete this long after the handshake.
    pub(crate) first_frame: Duration,
    /// A request begun must be complete within this (slow senders, "slowloris").
    pub(crate) frame: Duration,
}

impl ReadLimits {
    /// The shortest of the limits, and of the wait before a quiet connection's buffer goes.
    pub(crate) fn shortest(&self) -> Duration {
        [self.first_frame, self.frame, RELEASE_AFTER]
            .into_iter()
            .chain(self.idle)
            .min()
            .unwrap_or(RELEASE_AFTER)
    }
}

/// Passes reads and writes through until the daemon's stop ends (it is closed), or the client
/// breaks a [`ReadLimits`]; from then on reads return end of stream, so the RPC layer finishes
/// the calls in flight and closes the connection. Reading also pauses while the connection
/// has as many calls in flight as allowed (the client's requests then wait in its socket).
pub(crate) struct StopReading<S> {
    inner: S,
    stopped: Arc<AtomicBool>,
    wake_on_stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Whether `wake_on_stop` holds this task's waker. The stream is only ever read by its
    /// connection's task, whose waker does not change, so one registration is enough.
    registered: bool,
    room: Arc<crate::session::ConnectionState>,
    watch: Watch,
    peer: std::net::SocketAddr,
    /// The bytes read and written, counted (`rmi_bytes_received_total`, `…_sent_total`).
    received: metrics::Counter,
    sent: metrics::Counter,
}

/// Follows the frames going by (a 4-byte length, then that many bytes) and the clock, to
/// tell a client too slow or too quiet.
struct Watch {
    limits: ReadLimits,
    /// The watchdog's alarm, and its clock, which times are read from.
    alarm: Alarm,
    /// When bytes last arrived.
    last_read: Millis,
    /// When the request being read (or the first one) must be complete; none between frames.
    frame_deadline: Option<Millis>,
    first_done: bool,
    /// The connection's place, proven once its first request is complete (it keeps it then).
    unproven: Option<Arc<super::admission::Slot>>,
    header: [u8; 4],
    header_have: usize,
    payload_left: u64,
    /// Reading paused for room: the request in progress gets its time again after.
    paused: bool,
    /// Calls were in flight when reading found nothing: the idle clock starts again (read
    /// when the alarm next goes off, not at every read).
    busy: bool,
    /// Why the connection is closed, once it is.
    expired: Option<&'static str>,
    /// When the read buffer may go, if nothing more is read by then ([`RELEASE_AFTER`] after
    /// the last request).
    release_at: Option<Millis>,
    /// That moment passed: the connection's reader may let its buffer go.
    release_due: bool,
}

/// How long after its last request a quiet connection lets its read buffer go: an idle
/// connection then costs the daemon no buffer, and a busy one keeps its buffer between calls.
const RELEASE_AFTER: Duration = Duration::from_secs(2);

impl Watch {
    fn new(limits: ReadLimits, slot: Arc<super::admission::Slot>, alarm: Alarm) -> Self {
        let now = alarm.now();
        let first = now + alarm.span(limits.first_frame);
        Watch {
            limits,
            alarm,
            last_read: now,
            frame_deadline: Some(first),
            first_done: false,
            unproven: Some(slot),
            header: [0; 4],
            header_have: 0,
            payload_left: 0,
            paused: false,
            busy: false,
            expired: None,
            release_at: None,
            release_due: false,
        }
    }

    /// Why the connection was closed, as the metric of refused connections names it.
    fn expired_kind(&self) -> &'static str {
        match self.expired {
            Some(why) if why.starts_with("a request begun") => "slow",
            Some(why) if why.starts_with("no complete request") => "silent",
            _ => "idle",
        }
    }

    /// Reading goes on after a pause for room: what the client was given time for starts
    /// again from now.
    fn resume(&mut self) {
        let now = self.alarm.now();
        self.paused = false;
        self.last_read = now;
        if self.frame_deadline.is_some() && self.first_done {
            self.frame_deadline = Some(now + self.alarm.span(self.limits.frame));
        }
    }

    /// Follows `bytes`, just read.
    fn saw(&mut self, bytes: &[u8]) {
        let now = self.alarm.now();
        self.last_read = now;
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.payload_left == 0 {
                if self.header_have == 0 && self.first_done {
                    self.frame_deadline = Some(now + self.alarm.span(self.limits.frame));
                }
                self.header[self.header_have] = rest[0];
                self.header_have += 1;
                rest = &rest[1..];
                if self.header_have == 4 {
                    self.header_have = 0;
                    self.payload_left = u64::from(u32::from_be_bytes(self.header));
                    if self.payload_left == 0 {
                        self.frame_done(now);
                    }
                }
            } else {
                let take = rest.len().min(self.payload_left as usize);
                self.payload_left -= take as u64;
                rest = &rest[take..];
                if self.payload_left == 0 {
                    self.frame_done(now);
                }
            }
        }
    }

    fn frame_done(&mut self, now: Millis) {
        if let Some(slot) = self.unproven.take() {
            slot.prove();
        }
        self.first_done = true;
        self.frame_deadline = None;
        self.release_at = Some(now + millis(RELEASE_AFTER));
    }

    /// Whether a limit has run out; else arranges to be woken when one might.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let idle = self
                .limits
                .idle
                .map(|idle| self.last_read + self.alarm.span(idle));
            let Some(due) = [self.frame_deadline, idle, self.release_at]
                .into_iter()
                .flatten()
                .min()
            else {
                return false;
            };
            if self.alarm.due().is_some_and(|armed| due >= armed) {
                // The alarm goes off first: nothing to look at until then (this runs after
                // every read that found nothing).
                self.alarm.listen(cx.waker());
                return false;
            }
            let now = self.alarm.now_exact();
            if std::mem::take(&mut self.busy) {
                // Calls were in flight since the last look: not idle until now.
                self.last_read = now;
                continue;
            }
            if self.release_at.is_some_and(|at| at <= now) {
                // Quiet since the last request: not a limit, only a chance to free memory.
                self.release_at = None;
                self.release_due = true;
                continue;
            }
            if now >= due {
                self.expired = Some(if self.frame_deadline.is_some_and(|d| d <= due) {
                    if self.first_done {
                        "a request begun was not complete in time (a slow client)"
                    } else {
                        "no complete request in time after connecting (a silent client)"
                    }
                } else {
                    "idle for the idle timeout"
                });
                return true;
            }
            // The alarm is moved earlier at once, but never later: a deadline pushed back (by
            // every read, for the idle one) is found when the alarm goes off, so a read costs
            // nothing but reading the watchdog's clock.
            self.alarm.arm(due, cx.waker());
            return false;
        }
    }
}

impl<S> StopReading<S> {
    pub(crate) fn new(
        inner: S,
        stop: &Stop,
        limits: ReadLimits,
        room: Arc<crate::session::ConnectionState>,
        (peer, slot, alarm): (std::net::SocketAddr, Arc<super::admission::Slot>, Alarm),
        (received, sent): (metrics::Counter, metrics::Counter),
    ) -> Self {
        StopReading {
            inner,
            stopped: stop.closed_flag(),
            wake_on_stop: Box::pin(stop.closed_owned()),
            registered: false,
            room,
            watch: Watch::new(limits, slot, alarm),
            peer,
            received,
            sent,
        }
    }

    /// Whether the connection has been quiet since [`RELEASE_AFTER`] after its last request
    /// (asked once: it says so again only after another request).
    pub(crate) fn take_release(&mut self) -> bool {
        std::mem::take(&mut self.watch.release_due)
    }

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
        if this.stopped.load(Ordering::Acquire) || this.watch.expired.is_some() {
            return Poll::Ready(Ok(()));
        }
        if !this.room.poll_room(cx) {
            // As many calls in flight as allowed: read on once one is answered.
            this.watch.paused = true;
            return this.poll_stop(cx);
        }
        if this.watch.paused {
            // The daemon was the one not reading: the client's clocks start again.
            this.watch.resume();
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                if this.poll_stop(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                // A connection waiting for its calls' replies is not idle.
                if this.room.has_calls_in_flight() {
                    this.watch.busy = true;
                }
                if this.watch.poll_expired(cx) {
                    let (peer, why) = (this.peer, this.watch.expired.unwrap_or_default());
                    crate::meters::DaemonMeters::refused(this.watch.expired_kind());
                    if this.watch.first_done && this.watch.frame_deadline.is_none() {
                        tracing::debug!(%peer, "connection closed: {why}");
                    } else {
                        crate::throttle::warn_throttled!(%peer, "connection closed: {why}");
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                this.received.increment(read.len() as u64);
                this.watch.saw(read);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Implements `AsyncWrite` for a reading wrapper by passing every write to its `inner`
/// stream; with a field named, the bytes written are counted on it (a `metrics::Counter`).
macro_rules! writes_pass_through {
    ($wrapper:ident $(, $sent:ident)?) => {
        impl<S: AsyncWrite + Unpin> AsyncWrite for $wrapper<S> {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let written = Pin::new(&mut self.inner).poll_write(cx, buf);
                $(if let Poll::Ready(Ok(n)) = &written {
                    self.$sent.increment(*n as u64);
                })?
                written
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
                $(if let Poll::Ready(Ok(n)) = &written {
                    self.$sent.increment(*n as u64);
                })?
                written
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}

writes_pass_through!(StopReading, sent);
writes_pass_through!(Rewound);

/// A client's stream with the bytes read past its opening put back in front, read first: the
/// daemon reads a connection's first bytes in one read (an rmi client's opening and first
/// request come in one write), and hands the rest on.
pub(crate) struct Rewound<S> {
    /// Read ahead; freed once read.
    ahead: Vec<u8>,
    at: usize,
    inner: S,
}

/// How much a connection's first read takes: a small first request with its opening.
const FIRST_READ_BYTES: usize = 1024;

impl<S: AsyncRead + Unpin> Rewound<S> {
    /// Reads `inner`'s first four bytes (with what else has arrived): them, and the stream
    /// to read on from.
    pub(crate) async fn read_opening(mut inner: S) -> io::Result<([u8; 4], Rewound<S>)> {
        use tokio::io::AsyncReadExt;
        let mut ahead = Vec::with_capacity(FIRST_READ_BYTES);
        while ahead.len() < 4 {
            if inner.read_buf(&mut ahead).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let first = ahead[..4].try_into().expect("4 bytes");
        Ok((
            first,
            Rewound {
                ahead,
                at: 4,
                inner,
            },
        ))
    }
}

impl<S> Rewound<S> {
    /// Whether bytes past the opening arrived with it.
    pub(crate) fn has_read_ahead(&self) -> bool {
        self.at < self.ahead.len()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.ahead.len() {
            let n = (this.ahead.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.ahead[this.at..this.at + n]);
            this.at += n;
            if this.at == this.ahead.len() {
                this.ahead = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}
