//! One connection's state on the daemon: the requests read from it ([`Request`]), the
//! instances made for it ([`Session`]), and what its calls share while they run
//! ([`ConnectionState`]: its open streams, its calls in flight and their limit, the replies
//! waiting to be written; [`CallInFlight`]: one call, counted until its reply is handed over).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::future::{AbortHandle, Abortable};
use rustc_hash::FxHashMap;

use crate::oneway::OnewayWatch;
use crate::pace::Start;
use crate::stop::Stop;
use crate::stream_host::OpenStreams;
use crate::wire::{Fault, Invoke, Reply};

/// One request as the daemon read it from a connection.
pub(crate) struct Request {
    /// Its deadline and trace.
    pub(crate) context: tarpc::context::Context,
    /// Its id on the connection, which its reply (or a `Cancel`) names.
    pub(crate) id: u64,
    pub(crate) invoke: Invoke,
}

impl From<tarpc::Request<Invoke>> for Request {
    fn from(request: tarpc::Request<Invoke>) -> Self {
        Request {
            context: request.context,
            id: request.id,
            invoke: request.message,
        }
    }
}

/// A reply waiting for the connection's task to write it, counted in flight until then.
pub(crate) type QueuedReply = (tarpc::Response<Reply>, CallInFlight);

/// What belongs to one connection, and is dropped with it: the instances made for it by
/// [`Instances::PerConnection`](crate::Instances::PerConnection) factories, by handle, and what its calls share.
pub(crate) struct Session {
    instances: std::collections::HashMap<u64, Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) connection: Arc<ConnectionState>,
}

impl Session {
    /// The instance made for this connection by the object of `handle`, made by `make` at
    /// its first call.
    pub(crate) fn instance(
        &mut self,
        handle: u64,
        make: impl FnOnce() -> Arc<dyn std::any::Any + Send + Sync>,
    ) -> Arc<dyn std::any::Any + Send + Sync> {
        Arc::clone(self.instances.entry(handle).or_insert_with(make))
    }

    /// A connection's session, allowing `max_in_flight` calls at once and results of at most
    /// `max_payload` bytes; its calls about streams end when `stop` does. `peer` is the
    /// client's address.
    pub(crate) fn new(
        max_in_flight: usize,
        max_payload: usize,
        stop: Stop,
        calls: tokio_util::task::TaskTracker,
        oneway: Arc<OnewayWatch>,
        peer: std::net::SocketAddr,
    ) -> Self {
        Session {
            instances: Default::default(),
            connection: Arc::new(ConnectionState {
                calls,
                streams: OpenStreams::default(),
                in_flight: AtomicUsize::new(0),
                max_in_flight,
                task: futures::task::AtomicWaker::new(),
                replies: Mutex::new(Replies::default()),
                cancels: Mutex::new(FxHashMap::default()),
                reads_ended: AtomicBool::new(false),
                spawned: AtomicBool::new(false),
                max_payload,
                stop,
                oneway,
                pyro5: false,
                peer,
            }),
        }
    }

    /// This new session, for a Pyro5 client's calls.
    pub(crate) fn for_pyro5(mut self) -> Self {
        Arc::get_mut(&mut self.connection)
            .expect("a new session's connection is not shared yet")
            .pyro5 = true;
        self
    }
}

/// What the calls of one connection share (each holds it while it runs): the streams they
/// returned, and how many are in flight.
pub(crate) struct ConnectionState {
    pub(crate) streams: OpenStreams,
    /// Whether the client speaks Pyro5 (Python's `Pyro5.api.Proxy`): an `rmi::Remote` in a
    /// result then travels as a Pyro5 proxy.
    pub(crate) pyro5: bool,
    /// The client's address, which the spans of its calls name.
    pub(crate) peer: std::net::SocketAddr,
    /// Where the daemon tracks the calls that run in tasks of their own, which shutdown
    /// waits for.
    calls: tokio_util::task::TaskTracker,
    /// Calls begun and not yet answered: a call counts until its reply is handed to the
    /// connection's writer, so a client that does not read its replies stops being read.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    /// The connection's task: woken when a reply is queued, when a call ends while as many
    /// are in flight as allowed, and when one ends after the reads did.
    task: futures::task::AtomicWaker,
    /// Replies of calls that ran in tasks of their own, for the connection's task to write.
    replies: Mutex<Replies>,
    /// How to abort each call running in a task of its own, by request id: a `Cancel` from
    /// the client names it.
    cancels: Mutex<FxHashMap<u64, AbortHandle>>,
    /// Set when the connection's reads ended: the task then waits for the last call.
    reads_ended: AtomicBool,
    /// Set when a call got a task of its own, until the connection's task next yields.
    spawned: AtomicBool,
    /// The largest result (or stream item) the connection's frames carry.
    pub(crate) max_payload: usize,
    /// The daemon's stop: a pull waiting for items ends with it.
    pub(crate) stop: Stop,
    /// Where the failures of its `#[oneway]` calls go.
    pub(crate) oneway: Arc<OnewayWatch>,
}

impl ConnectionState {
    /// Counts one more call in flight, unless there are as many as allowed.
    pub(crate) fn begin_call(self: &Arc<Self>) -> Option<CallInFlight> {
        // Only the connection's task begins calls, so a load then an add cannot overshoot.
        if self.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(CallInFlight(Arc::clone(self)))
    }

    /// Counts one more call in flight, even past the limit: for answers that run nothing.
    pub(crate) fn force_call(self: &Arc<Self>) -> CallInFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallInFlight(Arc::clone(self))
    }

    /// Runs `call` (of request `id`, whose caller gives up at `deadline`).
    ///
    /// It is first polled here, in the connection's task: most calls finish without waiting,
    /// and their reply is then written by the task that read the request, with no other
    /// thread woken. A call that waits moves to a task of its own, which its deadline or a
    /// `Cancel` from the client aborts. `start` says where it starts: the calls of a method
    /// that held up its connection start in tasks of their own for a while (see [`Pace`](super::pace::Pace)).
    fn run_call<F>(self: &Arc<Self>, id: u64, deadline: Instant, call: F, start: Start<'_>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let started = Instant::now();
        if deadline <= started {
            // Its caller gave up already: nothing is run, nothing answered.
            return;
        }
        let pace = match start {
            Start::OwnTask => return self.spawn(id, deadline, call),
            Start::Paced(pace) if !pace.inline() => {
                return self.spawn(id, deadline, Arc::clone(pace).timed(call))
            }
            Start::Paced(pace) => Some(pace),
            Start::Here => None,
        };
        let mut call = Box::pin(call);
        // A waker that does nothing: a call still pending is polled again by its own task
        // at once, which registers that task's waker.
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        let finished = call.as_mut().poll(&mut cx).is_ready();
        if let Some(pace) = pace {
            pace.ran(started.elapsed());
        }
        if !finished {
            self.spawn(id, deadline, call);
        }
    }

    /// Runs `call` in a task of its own, until it ends, its deadline passes, or the client
    /// cancels it. Only such a call is tracked for shutdown: one answered in the connection's
    /// task is over before `run_call` returns, and tracking it would cost every call a shared
    /// counter's update.
    fn spawn<F>(self: &Arc<Self>, id: u64, deadline: Instant, call: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (abort, registration) = AbortHandle::new_pair();
        self.lock_cancels().insert(id, abort);
        let connection = Arc::clone(self);
        let call = async move {
            let until_deadline = tokio::time::timeout_at(deadline.into(), call);
            let _ = Abortable::new(until_deadline, registration).await;
            connection.lock_cancels().remove(&id);
        };
        tokio::spawn(self.calls.track_future(call));
        self.spawned.store(true, Ordering::Relaxed);
    }

    /// Whether a call got a task of its own since the last time this was asked.
    ///
    /// The connection's task then yields once: tokio puts a task spawned on a worker in that
    /// worker's LIFO slot, which no other worker may steal, and wakes no other worker for
    /// it. Were the call CPU-heavy, it would hold its worker while the others sleep and
    /// nobody serves the timers and sockets; a task that yields is queued where others can
    /// take it, and another worker is woken to do so.
    pub(crate) fn take_spawned(&self) -> bool {
        self.spawned.swap(false, Ordering::Relaxed)
    }

    fn lock_cancels(&self) -> std::sync::MutexGuard<'_, FxHashMap<u64, AbortHandle>> {
        self.cancels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client gave up on call `id`: it is aborted if it still runs (one answered in the
    /// connection's task has already been).
    pub(crate) fn cancel(&self, id: u64) {
        if let Some(abort) = self.lock_cancels().remove(&id) {
            abort.abort();
        }
    }

    /// The connection's task begins reading requests; it calls
    /// [`take_replies`](Self::take_replies) when it is done.
    pub(crate) fn begin_reading(&self) {
        self.lock_replies().reading = true;
    }

    /// Moves the queued replies into `out`, for the connection's task to write; replies
    /// queued from now on wake it.
    pub(crate) fn take_replies(&self, out: &mut std::collections::VecDeque<QueuedReply>) {
        let mut replies = self.lock_replies();
        replies.reading = false;
        out.append(&mut replies.queue);
    }

    fn lock_replies(&self) -> std::sync::MutexGuard<'_, Replies> {
        self.replies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection's task registers to be woken by replies and ending calls.
    pub(crate) fn register_task(&self, waker: &std::task::Waker) {
        self.task.register(waker);
    }

    /// The connection's reads ended: from now on every call that ends wakes its task.
    pub(crate) fn end_reads(&self) {
        self.reads_ended.store(true, Ordering::Release);
    }

    /// The connection's task ended: replies still queued, and any queued later, are
    /// dropped (each holds the state: kept, they would keep it alive).
    pub(crate) fn close_replies(&self) {
        let queued = {
            let mut replies = self.lock_replies();
            replies.closed = true;
            std::mem::take(&mut replies.queue)
        };
        drop(queued);
    }

    /// Whether a call is in flight on the connection.
    pub(crate) fn has_calls_in_flight(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Whether requests may be read: fewer calls than allowed are in flight. When not, the
    /// task of `cx` is woken once one ends. Reading stops here, before the socket, so a
    /// client's requests wait in its own socket buffer, not in the daemon's memory.
    pub(crate) fn poll_room(&self, cx: &mut std::task::Context<'_>) -> bool {
        if self.in_flight.load(Ordering::Acquire) < self.max_in_flight {
            return true;
        }
        self.task.register(cx.waker());
        // A call may have ended between the load and the registration.
        self.in_flight.load(Ordering::Acquire) < self.max_in_flight
    }
}

/// The replies waiting for the connection's task.
#[derive(Default)]
struct Replies {
    queue: std::collections::VecDeque<QueuedReply>,
    /// Set while the connection's task reads requests: it takes the queue right after, so a
    /// reply queued meanwhile (most are: by a call answered in that task) wakes nobody.
    reading: bool,
    /// Set when the connection's task ended: a reply is then dropped, not queued.
    closed: bool,
}

/// One call counted in flight on its connection, until dropped: when its reply is sent, or
/// when it is cancelled, even before it started.
pub(crate) struct CallInFlight(Arc<ConnectionState>);

impl std::ops::Deref for CallInFlight {
    type Target = ConnectionState;
    fn deref(&self) -> &ConnectionState {
        &self.0
    }
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        if before >= self.0.max_in_flight || self.0.reads_ended.load(Ordering::Acquire) {
            self.0.task.wake();
        }
    }
}

impl CallInFlight {
    /// The connection the call came on.
    pub(crate) fn connection(&self) -> Arc<ConnectionState> {
        Arc::clone(&self.0)
    }

    /// Answers `request` with what `serve` makes of it, counted in flight until the reply is
    /// handed to the connection's task (see [`ConnectionState::run_call`] for where it runs).
    pub(crate) fn run<F, Fut>(self, request: Request, serve: F, start: Start<'_>)
    where
        F: FnOnce(tarpc::context::Context, Invoke) -> Fut + Send + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let connection = Arc::clone(&self.0);
        let Request {
            context,
            id,
            invoke,
        } = request;
        let deadline = context.deadline;
        let call = async move {
            let reply = serve(context, invoke).await;
            self.reply(id, reply);
        };
        connection.run_call(id, deadline, call, start);
    }

    /// Queues the reply for the connection's task, which counts the call answered once it
    /// has written it.
    fn reply(self, id: u64, reply: Reply) {
        let connection = Arc::clone(&self.0);
        let response = tarpc::Response {
            request_id: id,
            message: Ok(reply),
        };
        let mut replies = connection.lock_replies();
        if replies.closed {
            return;
        }
        replies.queue.push_back((response, self));
        let wake = !replies.reading;
        drop(replies);
        if wake {
            connection.task.wake();
        }
    }
}

/// Answers `request` with `fault` without running anything. The answer counts among the
/// calls in flight of `connection` until it is handed over (even past the limit), so that a
/// client that does not read its replies cannot pile up refusals either.
pub(crate) fn refuse(connection: &Arc<ConnectionState>, request: Request, fault: Fault) {
    let serve = move |_context, _invoke| std::future::ready(Err(fault));
    connection.force_call().run(request, serve, Start::Here);
}
