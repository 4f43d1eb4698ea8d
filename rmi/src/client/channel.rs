//! The client end of one connection: many calls in flight, each request written by the task
//! that makes the call when it is the only one writing (otherwise queued for a writer task), each reply read by one of the tasks waiting for replies.
//!
//! tarpc's client runs a dispatch task per connection: a call is handed to it through one
//! channel and its reply handed back through another, two hops between tasks (and often
//! between threads, each a futex wake-up) per call. Here the calling task writes its request
//! frame itself when the socket takes it at once, which it nearly always does; otherwise the
//! rest waits in a queue that a task writes out. The calls waiting for replies read them
//! themselves: the one being polled reads every reply there is, hands each to its call (waking
//! its caller), and stops at its own or when the socket is empty. A lone caller thus writes
//! and reads its socket itself, as a hand-written client would.
//!
//! Nobody holds the reader while waiting, so a call whose future is not being polled (kept
//! for later, say) holds up no other. While one call waits, the socket wakes it; while several
//! do, the socket wakes them all, and whichever is polled first reads for all.
//!
//! The frames are tarpc's (`ClientMessage` out, `Response` in, bincode with tarpc's options,
//! length-delimited): a daemon cannot tell this client from tarpc's.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bincode::Options;
use futures::StreamExt;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tarpc::{ClientMessage, Response, ServerError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, FramedRead};

use crate::keeper::{KeeperSlot, Kept, IDLE_LOOK};
use crate::outgoing::Outgoing;
use crate::security::handshake::{self, HELLO_BYTES};
use crate::uri::Endpoint;
use crate::wire::{self, Frames, Invoke, Payload, Reply};
use crate::Error;

/// Why a call got no reply.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Its deadline passed first.
    Deadline,
    /// The daemon gave up on it (tarpc's server error: its own deadline passed).
    Server(ServerError),
    /// The connection ended: with the error that ended it, or `None` when the daemon closed
    /// it.
    Lost(Option<Arc<io::Error>>),
    /// A Pyro5 daemon raised this exception for the call (`pyro5`).
    Raised(Box<crate::pyro_values::Exception>),
    /// A Pyro5 call's request or reply did not encode or decode (`pyro5`): why.
    Unreadable(String),
}

/// The client end of one connection. Clones share it; it closes when the last is dropped.
#[derive(Clone)]
pub(crate) struct Channel {
    shared: Arc<ChannelState>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("ended", &self.shared.ended.load(Ordering::Relaxed))
            .finish()
    }
}

type Reader = FramedRead<Pin<Box<dyn AsyncRead + Send>>, ReplyFrames>;

/// Where a channel stands with the daemon's hello.
pub(crate) enum Hello {
    /// Read, in the handshake: the largest frame the daemon reads.
    Read(usize),
    /// Still to come, after the first requests (a client without a key, at a daemon that
    /// took none before): the client's opening bytes go out with the first request, and the
    /// reader checks the hello before the first reply.
    Pending(Endpoint),
}

/// Replies as frames; on a channel whose hello is pending, the hello first.
struct ReplyFrames {
    hello: Option<Endpoint>,
    max_frame: Arc<AtomicUsize>,
    frames: Frames,
}

impl Decoder for ReplyFrames {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        if let Some(endpoint) = &self.hello {
            let Some(head) = src.get(..HELLO_BYTES) else {
                return Ok(None);
            };
            let head: [u8; HELLO_BYTES] = head.try_into().expect("sliced to its length");
            let max_frame = handshake::open_hello(&head, endpoint).map_err(|_| {
                io::Error::other(HelloRefused {
                    head: Some(head),
                    endpoint: endpoint.clone(),
                })
            })?;
            self.max_frame.store(max_frame, Ordering::Release);
            src.advance(HELLO_BYTES);
            self.hello = None;
        }
        self.frames.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        if let Some(endpoint) = self.hello.as_ref().filter(|_| src.len() < HELLO_BYTES) {
            return Err(io::Error::other(HelloRefused {
                head: None,
                endpoint: endpoint.clone(),
            }));
        }
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection in the middle of a reply",
            )),
        }
    }
}

/// A hello, read after the first requests went out, that refuses this client: the reader's
/// error, made back into the handshake's by [`HelloRefused::error`].
#[derive(Debug, thiserror::Error)]
#[error("{}", self.error())]
pub(crate) struct HelloRefused {
    /// The hello; `None` if the daemon closed the connection before it.
    head: Option<[u8; HELLO_BYTES]>,
    endpoint: Endpoint,
}

impl HelloRefused {
    /// The error the handshake gives for this hello.
    pub(crate) fn error(&self) -> Error {
        match &self.head {
            Some(head) => handshake::open_hello(head, &self.endpoint)
                .err()
                .unwrap_or_else(|| handshake::closed_before_hello(&self.endpoint, None)),
            None => handshake::closed_before_hello(&self.endpoint, None),
        }
    }

    /// The daemon the hello came from.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

struct ChannelState {
    writer: Mutex<Writer>,
    readers: Mutex<Readers>,
    next_id: AtomicU64,
    /// Set once the connection ended; [`Readers::ended`] says why.
    ended: AtomicBool,
    /// The largest frame the daemon reads, from its hello; 0 until that is read.
    max_frame: Arc<AtomicUsize>,
    /// The connection's place in its runtime's keeper, which fails calls whose deadline
    /// passed and closes the connection if that runtime shuts down first; set once, right
    /// after the connection is made (unset when made outside a runtime).
    keeper: OnceLock<KeeperSlot>,
    /// What the socket wakes while several calls wait: every one of them.
    wake_waiting: Waker,
}

/// The socket's waker while several calls wait: wakes them all, so that a caller that
/// stopped polling its call cannot leave the others unread.
struct WakeWaiting(Weak<ChannelState>);

impl std::task::Wake for WakeWaiting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.0.upgrade() {
            let mut readers = shared.lock_readers();
            readers.armed_for_all = false;
            readers.fired += 1;
            readers.wake_all();
        }
    }
}

impl Kept for ChannelState {
    fn expire(&self, now: Instant) -> Option<Instant> {
        self.lock_readers().expire(now)
    }

    fn close(&self) {
        ChannelState::close(self);
    }
}

struct Writer {
    io: Pin<Box<dyn AsyncWrite + Send>>,
    /// Bytes the socket did not take at once, in order; a task writes them out.
    queue: Outgoing,
    /// Whether that task runs: new frames go behind the queue, not before it.
    draining: bool,
    /// The client's opening bytes, when the handshake did not send them (a pending hello):
    /// they go out with the first frame, in the same write.
    opening: Option<&'static [u8]>,
}

/// The calls waiting for replies, and the reader they share.
struct Readers {
    /// `None` while a call reads (within one poll, never across a wait).
    reader: Option<Reader>,
    /// By request id (ours, so a fast hasher).
    calls: FxHashMap<u64, Slot>,
    /// Set when a call found the reader out: the reader wakes every waiting call when it
    /// puts it back, unless the socket will wake them all.
    missed: bool,
    /// Set while the socket will wake every waiting call when a reply comes
    /// ([`WakeWaiting`]): a waiting call polled meanwhile need not look.
    armed_for_all: bool,
    /// How many times the socket woke every waiting call: a read that saw it wake meanwhile
    /// did not leave it armed.
    fired: u64,
    /// Why the connection ended, once it did.
    ended: Option<Failure>,
    /// When the keeper looks at this connection next, to fail the calls past their
    /// deadline; `None` until a call asks it to (no call waits).
    keeper_wakes: Option<Instant>,
    /// How many looks in a row found no call waiting.
    keeper_idle: u32,
}

enum Slot {
    /// Waiting for its reply until its deadline, if it has one.
    Waiting(Option<Waker>, Option<Instant>),
    Answered(Result<Reply, ServerError>),
    /// Its deadline passed first (the keeper saw it).
    Expired,
}

/// tarpc's frame encoding: bincode with its default options.
fn bincode() -> impl Options {
    bincode::DefaultOptions::new()
}

impl Channel {
    /// A channel over a connected stream's halves, after the handshake or before the hello
    /// (`hello`). Replies longer than `max_reply` bytes end the connection.
    pub(crate) fn new<R, W>(read: R, write: W, max_reply: usize, hello: Hello) -> Channel
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let (hello, max_frame) = match hello {
            Hello::Read(max_frame) => (None, max_frame),
            Hello::Pending(endpoint) => (Some(endpoint), 0),
        };
        let opening = hello.is_some().then_some(&handshake::CLIENT_OPENING[..]);
        let max_frame = Arc::new(AtomicUsize::new(max_frame));
        let codec = ReplyFrames {
            hello,
            max_frame: max_frame.clone(),
            frames: Frames::new(max_reply),
        };
        let read: Pin<Box<dyn AsyncRead + Send>> = Box::pin(read);
        let shared = Arc::new_cyclic(|weak: &Weak<ChannelState>| ChannelState {
            writer: Mutex::new(Writer {
                io: Box::pin(write),
                queue: Outgoing::default(),
                draining: false,
                opening,
            }),
            readers: Mutex::new(Readers::new(Some(FramedRead::with_capacity(
                read,
                codec,
                2 * 1024,
            )))),
            next_id: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            max_frame,
            keeper: OnceLock::new(),
            wake_waiting: Waker::from(Arc::new(WakeWaiting(weak.clone()))),
        });
        shared.join_keeper();
        Channel { shared }
    }

    /// Sends `invoke` with `context` (its deadline and trace) and waits for the reply, at most
    /// until the deadline. Dropping the future before the reply cancels the call on the
    /// daemon.
    pub(crate) async fn call(
        &self,
        context: tarpc::context::Context,
        invoke: Invoke,
    ) -> Result<Reply, Failure> {
        let deadline = context.deadline;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let Invoke {
            handle,
            method,
            format,
            args,
        } = invoke;
        // The arguments follow the request's head as they are (`wire::with_frame`).
        let request = ClientMessage::Request(tarpc::Request {
            context,
            id,
            message: Invoke {
                handle,
                method,
                format,
                args: Payload::default(),
            },
        });
        // Registered before it is written, so that no reader can miss its reply.
        let kept = self.shared.keeper_keeps_deadlines();
        let (mut waiting, alone) = Waiting::new(&self.shared, id, kept.then_some(deadline))?;
        self.shared.send(&request, &args, alone)?;
        let reply = poll_fn(|cx| waiting.poll_reply(cx));
        if kept {
            // The keeper fails it at its deadline: no timer of its own per call.
            return reply.await;
        }
        match tokio::time::timeout_at(deadline.into(), reply).await {
            Ok(reply) => reply,
            Err(_) => Err(Failure::Deadline),
        }
    }

    /// The largest frame the daemon reads; `None` until its hello is read.
    pub(crate) fn max_frame(&self) -> Option<usize> {
        Some(self.shared.max_frame.load(Ordering::Acquire)).filter(|&max| max > 0)
    }

    /// Waits until the daemon's hello is read (it is before any reply): its frame limit.
    pub(crate) async fn hello(&self) -> Result<usize, Failure> {
        if let Some(max_frame) = self.max_frame() {
            return Ok(max_frame);
        }
        // The daemon says its hello only after the client's opening, which no request has
        // carried yet if this waits before the first.
        let opening_pending = self.shared.lock_writer().opening.is_some();
        if opening_pending {
            self.shared.send_frame(&[], &Payload::default(), 0, true)?;
        }
        // Waits as a call that sent nothing, so that it reads like any other.
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (mut waiting, _) = Waiting::new(&self.shared, id, None)?;
        let read = poll_fn(|cx| {
            if let Some(max_frame) = self.max_frame() {
                return Poll::Ready(Ok(max_frame));
            }
            match waiting.poll_reply(cx) {
                Poll::Ready(Err(failure)) => Poll::Ready(Err(failure)),
                _ => self
                    .max_frame()
                    .map_or(Poll::Pending, |max| Poll::Ready(Ok(max))),
            }
        })
        .await;
        // Nothing was sent: nothing to cancel.
        waiting.answered = true;
        waiting.shared.lock_readers().calls.remove(&id);
        read
    }

    /// Whether the connection has ended. When no call is waiting, nobody reads the socket:
    /// this looks, without waiting, whether the daemon closed it meanwhile.
    pub(crate) fn is_closed(&self) -> bool {
        if self.shared.ended.load(Ordering::Acquire) {
            return true;
        }
        let mut readers = self.shared.lock_readers();
        if !readers.calls.is_empty() {
            // Waiting calls read (and the socket wakes them): looking here would take the
            // socket's waker from them.
            return false;
        }
        if let Some(mut reader) = readers.reader.take() {
            let mut cx = Context::from_waker(Waker::noop());
            // Only replies to calls given up can be there: read past them.
            while let Poll::Ready(frame) = reader.poll_next_unpin(&mut cx) {
                if let Err(failure) = readers.take_frame(frame, None) {
                    readers.end(failure, &self.shared);
                    return true;
                }
            }
            readers.reader = Some(reader);
            // The socket now holds this look's waker, which wakes nobody.
            readers.armed_for_all = false;
        }
        false
    }
}

impl ChannelState {
    /// Gives the connection a place in its runtime's keeper. Made (so that the keeper can
    /// look at it) before it is registered, and registered under its own lock: a look that
    /// began before sees it as asked for, one after waits for the lock and finds
    /// `keeper_wakes` set.
    fn join_keeper(self: &Arc<Self>) {
        let mut readers = self.lock_readers();
        let kept: Weak<dyn Kept> = Arc::downgrade(self) as Weak<ChannelState>;
        if let Some((registration, looks_by)) = KeeperSlot::new(kept) {
            // A new connection's first call (its deadline is further out than the keeper's
            // next look, unless its timeout is short) need not ask the keeper.
            readers.keeper_wakes = looks_by;
            let _ = self.keeper.set(registration);
        }
    }

    /// Whether the keeper fails calls at their deadline (on a multi-threaded runtime); else
    /// each call keeps a timer of its own.
    fn keeper_keeps_deadlines(&self) -> bool {
        self.keeper.get().is_some_and(KeeperSlot::keeps_deadlines)
    }

    fn lock_readers(&self) -> MutexGuard<'_, Readers> {
        // A panic cannot leave the state half-changed: every change is one assignment.
        self.readers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `message` as one frame, ending with `payload` (empty for a message that does
    /// not end with one). A call alone on the connection writes it now, if the socket takes
    /// it; with others in flight, frames are queued and a task writes them out together,
    /// after the callers that are ready have queued theirs: one system call for many frames,
    /// as tarpc's dispatch task batches them. The payload is written from where it is: what
    /// the socket does not take of a large one is queued without a copy.
    fn send(
        self: &Arc<Self>,
        message: &ClientMessage<Invoke>,
        payload: &Payload,
        alone: bool,
    ) -> Result<(), Failure> {
        let payload_field = matches!(message, ClientMessage::Request(_)).then_some(payload);
        let sent = wire::with_frame(message, payload_field, |head, from| {
            self.send_frame(head, payload, from, alone)
        });
        sent.map_err(|e| Failure::Lost(Some(Arc::new(io::Error::other(e)))))?
    }

    /// Writes a frame: `head`, then `payload` from byte `from` on, as [`send`](Self::send)
    /// says.
    fn send_frame(
        self: &Arc<Self>,
        head: &[u8],
        payload: &Payload,
        from: usize,
        alone: bool,
    ) -> Result<(), Failure> {
        let mut writer = self.lock_writer();
        let with_opening;
        let head = match writer.opening.take() {
            Some(opening) => {
                with_opening = [opening, head].concat();
                &with_opening[..]
            }
            None => head,
        };
        let mut head_rest = head;
        let mut payload_from = from;
        if !writer.draining && alone {
            let mut rest = payload.slices_from(from);
            rest.insert(0, head);
            let mut cx = Context::from_waker(Waker::noop());
            match writer.write_from(&mut rest, &mut cx) {
                Poll::Ready(Ok(())) => return Ok(()),
                Poll::Ready(Err(e)) => {
                    drop(writer);
                    return Err(self.end_with(e));
                }
                Poll::Pending => {}
            }
            let unwritten: usize = rest.iter().map(|piece| piece.len()).sum();
            let head_unwritten = unwritten.saturating_sub(payload.len() - from);
            head_rest = &head[head.len() - head_unwritten..];
            payload_from = payload.len() - (unwritten - head_unwritten);
        }
        writer.queue.push_copy(head_rest);
        writer.queue.push_payload(payload, payload_from);
        if !writer.draining {
            writer.draining = true;
            tokio::spawn(drain(self.clone()));
        }
        Ok(())
    }

    /// Ends the connection for every call, because of `error`; the failure to report.
    fn end_with(self: &Arc<Self>, error: io::Error) -> Failure {
        let error = Arc::new(error);
        self.lock_readers()
            .end(Failure::Lost(Some(error.clone())), self);
        Failure::Lost(Some(error))
    }

    /// Closes the connection: the calls waiting fail, and the socket is let go.
    fn close(&self) {
        self.lock_readers().end(Failure::Lost(None), self);
        self.lock_writer().io = Box::pin(tokio::io::sink());
    }

    /// Tells the daemon that call `id` was given up; best effort.
    fn cancel(self: &Arc<Self>, id: u64) {
        if self.ended.load(Ordering::Acquire) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let cancel = ClientMessage::Cancel {
            trace_context: Default::default(),
            request_id: id,
        };
        let _ = self.send(&cancel, &Payload::default(), false);
    }
}

impl Writer {
    /// Writes the pieces of `rest` in order and flushes, advancing them past what was
    /// written.
    fn write_from(&mut self, rest: &mut [&[u8]], cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(first) = rest.iter().position(|piece| !piece.is_empty()) {
            let pending = &mut rest[first..];
            // One piece (a small call, its payload in the head) is a plain write.
            let written = if pending.len() == 1 {
                self.io.as_mut().poll_write(cx, pending[0])
            } else {
                let slices: SmallVec<[io::IoSlice<'_>; 4]> = pending
                    .iter()
                    .map(|piece| io::IoSlice::new(piece))
                    .collect();
                self.io.as_mut().poll_write_vectored(cx, &slices)
            };
            match std::task::ready!(written) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(mut n) => {
                    for piece in pending.iter_mut() {
                        let taken = n.min(piece.len());
                        *piece = &piece[taken..];
                        n -= taken;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.io.as_mut().poll_flush(cx)
    }

    /// Writes the queue out and flushes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.queue.poll_write_to(self.io.as_mut(), cx)
    }
}

/// Writes out the queue, then ends.
async fn drain(shared: Arc<ChannelState>) {
    let drained = poll_fn(|cx| {
        let mut writer = shared.lock_writer();
        let drained = std::task::ready!(writer.poll_drain(cx));
        writer.draining = false;
        Poll::Ready(drained)
    })
    .await;
    if let Err(e) = drained {
        shared.end_with(e);
    }
}

impl Readers {
    fn new(reader: Option<Reader>) -> Readers {
        Readers {
            reader,
            calls: FxHashMap::default(),
            missed: false,
            armed_for_all: false,
            fired: 0,
            ended: None,
            keeper_wakes: None,
            keeper_idle: 0,
        }
    }

    /// Files a frame the reader produced: a reply goes to its call (`Ok(Some)` if it is
    /// `mine`'s, else to its slot, waking its caller); the end of the stream or a broken frame
    /// is the connection's end.
    fn take_frame(
        &mut self,
        frame: Option<io::Result<BytesMut>>,
        mine: Option<u64>,
    ) -> Result<Option<Result<Reply, ServerError>>, Failure> {
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(Failure::Lost(Some(Arc::new(e)))),
            None => return Err(Failure::Lost(None)),
        };
        // The result's bytes are a view of the frame, not a copy.
        let frame = frame.freeze();
        let decoded = wire::decoding_frame(&frame, || bincode().deserialize(&frame));
        let response: Response<Reply> = decoded.map_err(|e| {
            Failure::Lost(Some(Arc::new(io::Error::new(
                io::ErrorKind::InvalidData,
                e,
            ))))
        })?;
        if Some(response.request_id) == mine {
            return Ok(Some(response.message));
        }
        // A reply to a call given up finds no slot: it is dropped.
        if let Some(slot) = self.calls.get_mut(&response.request_id) {
            if let Slot::Waiting(waker, _) =
                std::mem::replace(slot, Slot::Answered(response.message))
            {
                waker.into_iter().for_each(Waker::wake);
            }
        }
        Ok(None)
    }

    /// Ends the connection: every waiting call fails with (a copy of) `failure`.
    fn end(&mut self, failure: Failure, shared: &ChannelState) {
        shared.ended.store(true, Ordering::Release);
        self.reader = None;
        self.wake_all();
        self.ended.get_or_insert(failure);
    }

    /// Wakes every call waiting for its reply.
    fn wake_all(&mut self) {
        for slot in self.calls.values_mut() {
            if let Slot::Waiting(waker, _) = slot {
                waker.take().into_iter().for_each(Waker::wake);
            }
        }
    }

    /// Fails (and wakes) the calls whose deadline is past at `now`; when the keeper should
    /// look next: at the soonest deadline still ahead, or, with no call waiting, a while
    /// after the last that did, or not until asked (`None`).
    fn expire(&mut self, now: Instant) -> Option<Instant> {
        let mut soonest: Option<Instant> = None;
        for slot in self.calls.values_mut() {
            let Slot::Waiting(waker, Some(deadline)) = slot else {
                continue;
            };
            if *deadline <= now {
                waker.take().into_iter().for_each(Waker::wake);
                *slot = Slot::Expired;
            } else {
                soonest = Some(soonest.map_or(*deadline, |s| s.min(*deadline)));
            }
        }
        self.keeper_idle = if soonest.is_some() {
            0
        } else {
            self.keeper_idle + 1
        };
        // Calls come and go between the keeper's looks: while they do, it looks now and then
        // rather than be told of each new call; idle, it waits until asked.
        self.keeper_wakes = soonest.or((self.keeper_idle < 2).then(|| now + IDLE_LOOK));
        self.keeper_wakes
    }
}

impl Failure {
    fn copy(&self) -> Failure {
        match self {
            Failure::Deadline => Failure::Deadline,
            Failure::Server(e) => Failure::Server(e.clone()),
            Failure::Lost(e) => Failure::Lost(e.clone()),
            Failure::Raised(e) => Failure::Raised(e.clone()),
            Failure::Unreadable(e) => Failure::Unreadable(e.clone()),
        }
    }
}

/// One call waiting for its reply. Dropped before the reply, it cancels the call.
struct Waiting<'a> {
    shared: &'a Arc<ChannelState>,
    id: u64,
    answered: bool,
}

/// What one turn at the reader found.
enum Read {
    /// This call's reply; and whether the socket was read until empty after it.
    Mine(Result<Reply, ServerError>, bool),
    /// Nothing more for now.
    Empty,
    /// The connection's end.
    Ended(Failure),
}

impl<'a> Waiting<'a> {
    /// Call `id`, waiting until `deadline`; and whether it is the only call in flight.
    fn new(
        shared: &'a Arc<ChannelState>,
        id: u64,
        deadline: Option<Instant>,
    ) -> Result<(Self, bool), Failure> {
        let mut readers = shared.lock_readers();
        if let Some(failure) = &readers.ended {
            return Err(failure.copy());
        }
        readers.calls.insert(id, Slot::Waiting(None, deadline));
        if let Some(deadline) = deadline {
            if readers.keeper_wakes.is_none_or(|wakes| deadline < wakes) {
                readers.keeper_wakes = Some(deadline);
                if let Some(keeper) = shared.keeper.get() {
                    keeper.ask(deadline);
                }
            }
        }
        let waiting = Waiting {
            shared,
            id,
            answered: false,
        };
        Ok((waiting, readers.calls.len() == 1))
    }

    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Result<Reply, Failure>> {
        let mut readers = self.shared.lock_readers();
        if let Some(done) = self.answer_or_wait(&mut readers, cx) {
            return done;
        }
        if readers.armed_for_all {
            // The socket wakes every waiting call when a reply comes: nothing to read yet.
            return Poll::Pending;
        }
        let Some(mut reader) = readers.reader.take() else {
            // Another thread reads this moment; it wakes us when it puts the reader back.
            readers.missed = true;
            return Poll::Pending;
        };
        // Alone, this call is woken by the socket itself, and reads up to its own reply.
        // With others, it reads all there is, and leaves the socket to wake them all, so that
        // none depends on a caller that may stop polling.
        let alone = readers.calls.len() == 1;
        let fired = readers.fired;
        drop(readers);
        let read = if alone {
            self.read(&mut reader, cx, true)
        } else {
            let mut for_all = Context::from_waker(&self.shared.wake_waiting);
            self.read(&mut reader, &mut for_all, false)
        };
        let mut readers = self.shared.lock_readers();
        if readers.ended.is_none() {
            readers.reader = Some(reader);
        }
        readers.armed_for_all =
            !alone && matches!(read, Read::Empty | Read::Mine(_, true)) && readers.fired == fired;
        let done = match read {
            Read::Empty => None,
            Read::Mine(reply, _) => Some(reply.map_err(Failure::Server)),
            Read::Ended(failure) => {
                let copy = failure.copy();
                readers.end(failure, self.shared);
                Some(Err(copy))
            }
        };
        if done.is_some() {
            readers.calls.remove(&self.id);
            self.answered = true;
        }
        let missed = std::mem::take(&mut readers.missed);
        if !readers.armed_for_all && (missed || (alone && done.is_some())) {
            // Calls came while this one read alone: the socket wakes none of them. They poll
            // again, and one of them reads for all.
            readers.wake_all();
        }
        match done {
            Some(done) => Poll::Ready(done),
            None => Poll::Pending,
        }
    }

    /// The reply, if another call read it, or the connection's end; else leaves this call's
    /// waker for whoever reads next (`None`).
    fn answer_or_wait(
        &mut self,
        readers: &mut Readers,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Result<Reply, Failure>>> {
        let ended = readers.ended.as_ref().map(Failure::copy);
        match readers.calls.get_mut(&self.id) {
            Some(Slot::Waiting(waker, _)) if ended.is_none() => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                None
            }
            Some(Slot::Answered(_)) => {
                let Some(Slot::Answered(reply)) = readers.calls.remove(&self.id) else {
                    unreachable!("the slot was just seen answered")
                };
                self.answered = true;
                Some(Poll::Ready(reply.map_err(Failure::Server)))
            }
            Some(Slot::Expired) => {
                // Not answered: dropped, the call is cancelled on the daemon.
                readers.calls.remove(&self.id);
                Some(Poll::Ready(Err(Failure::Deadline)))
            }
            _ => {
                readers.calls.remove(&self.id);
                self.answered = true;
                Some(Poll::Ready(Err(ended.unwrap_or(Failure::Lost(None)))))
            }
        }
    }

    /// Reads replies, filing the others', until the socket is empty (or, `stop_at_mine`,
    /// this call's reply is read).
    fn read(&self, reader: &mut Reader, cx: &mut Context<'_>, stop_at_mine: bool) -> Read {
        let mut mine = None;
        loop {
            let Poll::Ready(frame) = reader.poll_next_unpin(cx) else {
                return match mine {
                    Some(reply) => Read::Mine(reply, true),
                    None => Read::Empty,
                };
            };
            let taken = self.shared.lock_readers().take_frame(frame, Some(self.id));
            match (taken, mine.take()) {
                (Ok(None), earlier) => mine = earlier,
                (Ok(Some(reply)), _) if stop_at_mine => return Read::Mine(reply, false),
                (Ok(Some(reply)), _) => mine = Some(reply),
                (Err(failure), None) => return Read::Ended(failure),
                (Err(failure), Some(reply)) => {
                    // The connection ended after this call's reply: the others fail.
                    self.shared.lock_readers().end(failure, self.shared);
                    return Read::Mine(reply, false);
                }
            }
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.shared.lock_readers().calls.remove(&self.id);
        self.shared.cancel(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Format, Payload};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn request() -> Invoke {
        Invoke {
            handle: 1,
            method: 0,
            format: Format::Bincode,
            args: Payload::default(),
        }
    }

    fn context(secs: u64) -> tarpc::context::Context {
        let mut context = tarpc::context::current();
        context.deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        context
    }

    /// A channel over an in-memory stream of `buffer` bytes, and the daemon's end of it.
    fn connected(buffer: usize) -> (Channel, tokio::io::DuplexStream) {
        let (client, server) = tokio::io::duplex(buffer);
        let (read, write) = tokio::io::split(client);
        let channel = Channel::new(read, write, 1 << 20, Hello::Read(1 << 20));
        (channel, server)
    }

    /// A server that reads `n` requests, then answers them in reverse order.
    async fn answer_reversed(mut server: tokio::io::DuplexStream, n: usize) {
        let mut ids = Vec::new();
        for _ in 0..n {
            let length = server.read_u32().await.unwrap() as usize;
            let mut frame = vec![0; length];
            server.read_exact(&mut frame).await.unwrap();
            match crate::wire::decode_request(&frame).unwrap() {
                ClientMessage::Request(request) => ids.push(request.id),
                other => panic!("nothing is cancelled: {other:?}"),
            }
        }
        for id in ids.into_iter().rev() {
            let reply: Response<Reply> = Response {
                request_id: id,
                message: Ok(Ok(Payload::from(id.to_le_bytes().to_vec()))),
            };
            let body = bincode().serialize(&reply).unwrap();
            server.write_u32(body.len() as u32).await.unwrap();
            server.write_all(&body).await.unwrap();
        }
        server.flush().await.unwrap();
    }

    #[tokio::test]
    async fn replies_reach_their_callers_in_any_order() {
        let (channel, server) = connected(64);
        let server = tokio::spawn(answer_reversed(server, 3));
        let calls = (0..3).map(|_| channel.call(context(5), request()));
        let replies = futures::future::join_all(calls).await;
        for (id, reply) in replies.into_iter().enumerate() {
            let payload = reply.unwrap().unwrap();
            assert_eq!(&payload.contiguous()[..], &(id as u64).to_le_bytes());
        }
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_call_not_being_polled_holds_up_no_other() {
        let (channel, server) = connected(64);
        let server = tokio::spawn(answer_reversed(server, 2));
        // Sent and waiting, then kept aside (as a stream keeps its next pull).
        let mut kept = Box::pin(channel.call(context(5), request()));
        assert!(futures::poll!(kept.as_mut()).is_pending());
        let second = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            channel.call(context(5), request()),
        );
        let payload = second
            .await
            .expect("held up by the call kept aside")
            .unwrap();
        assert_eq!(&payload.unwrap().contiguous()[..], &1u64.to_le_bytes());
        assert_eq!(
            &kept.await.unwrap().unwrap().contiguous()[..],
            &0u64.to_le_bytes()
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_connection_fails_every_waiting_call_and_the_next() {
        let (channel, server) = connected(64);
        let waiting = tokio::spawn({
            let channel = channel.clone();
            async move { channel.call(context(5), request()).await }
        });
        tokio::task::yield_now().await;
        drop(server);
        assert!(matches!(waiting.await.unwrap(), Err(Failure::Lost(_))));
        assert!(channel.is_closed());
        assert!(matches!(
            channel.call(context(5), request()).await,
            Err(Failure::Lost(_))
        ));
    }

    #[tokio::test]
    async fn an_idle_channel_notices_the_daemon_left() {
        let (channel, server) = connected(64);
        assert!(!channel.is_closed());
        drop(server);
        assert!(channel.is_closed());
    }

    // On a current-thread runtime each call keeps its own timer; on a multi-threaded one the
    // connection's keeper fails calls at their deadline.
    #[tokio::test]
    async fn a_call_past_its_deadline_is_cancelled_on_the_daemon() {
        past_its_deadline_cancelled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_keeper_fails_a_call_past_its_deadline_and_cancels_it() {
        let (channel, _) = connected(16);
        assert!(channel.shared.keeper_keeps_deadlines());
        past_its_deadline_cancelled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_sooner_than_the_keeper_looks_still_holds() {
        let (channel, _server) = connected(1024);
        // The keeper would next look at this call's deadline, a minute out...
        let mut kept = Box::pin(channel.call(context(60), request()));
        assert!(futures::poll!(kept.as_mut()).is_pending());
        // ...and is told of a sooner one.
        let mut soon = context(0);
        soon.deadline = Instant::now() + Duration::from_millis(50);
        let started = Instant::now();
        let failed = tokio::time::timeout(Duration::from_secs(5), channel.call(soon, request()));
        assert!(matches!(failed.await, Ok(Err(Failure::Deadline))));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            futures::poll!(kept.as_mut()).is_pending(),
            "the other call waits on"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_connections_first_call_is_failed_at_its_deadline_without_asking() {
        let (channel, _server) = connected(1024);
        let looks_by = channel.shared.lock_readers().keeper_wakes;
        let looks_by = looks_by.expect("the keeper looks at a new connection");
        // Later than the keeper's first look at the connection: the call asks nothing.
        let mut later = context(0);
        later.deadline = looks_by + Duration::from_millis(300);
        let failed = tokio::time::timeout(Duration::from_secs(10), channel.call(later, request()));
        assert!(matches!(failed.await, Ok(Err(Failure::Deadline))));
        assert!(Instant::now() < later.deadline + Duration::from_secs(2));
    }

    #[test]
    fn the_keeper_looks_again_a_while_after_the_last_call_then_sleeps() {
        let now = Instant::now();
        let mut readers = Readers::new(None);
        let later = now + Duration::from_secs(30);
        readers.calls.insert(1, Slot::Waiting(None, Some(later)));
        readers.calls.insert(2, Slot::Waiting(None, Some(now)));
        assert_eq!(readers.expire(now), Some(later));
        assert!(matches!(readers.calls[&2], Slot::Expired));
        readers.calls.clear();
        assert_eq!(readers.expire(now), Some(now + IDLE_LOOK));
        assert_eq!(readers.expire(now), None);
    }

    async fn past_its_deadline_cancelled() {
        let (channel, mut server) = connected(1024);
        let mut context = context(0);
        context.deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
        assert!(matches!(
            channel.call(context, request()).await,
            Err(Failure::Deadline)
        ));
        let mut messages = Vec::new();
        for _ in 0..2 {
            let length = server.read_u32().await.unwrap() as usize;
            let mut frame = vec![0; length];
            server.read_exact(&mut frame).await.unwrap();
            messages.push(crate::wire::decode_request(&frame).unwrap());
        }
        assert!(matches!(messages[0], ClientMessage::Request(_)));
        assert!(matches!(
            messages[1],
            ClientMessage::Cancel { request_id: 0, .. }
        ));
    }
}
