//! The server side of a call: from an [`Invoke`](crate::wire::Invoke) to the user's method.
//!
//! `#[expose]` implements [`Expose<P>`] for every type that implements the trait whose proxy
//! is `P`; the generated `dispatch` is a `match` on the method index whose arms call
//! [`invoke`]. All decoding, encoding and panic handling lives here, not in generated code.
//! Here too: the per-connection state (`ConnectionState`, `CallInFlight`, `Session`), and
//! the streams a connection hosts (`host_stream`, `start_stream_call`, over
//! `stream_host::OpenStreams`).

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;
use rustc_hash::FxHashMap;
use serde::{de::DeserializeOwned, Serialize};

use crate::describe::TraitDescriptor;
use crate::error::panic_message;
use crate::oneway::{OnewayReport, OnewayWatch};
use crate::pace::{Pace, Start};
use crate::proxy::Proxy;
use crate::serving::{self, Serving};
use crate::stop::{Stop, UntilClosed};
use crate::stream_host::{self, OpenStreams};
use crate::wire::{Batch, Fault, Format, Invoke, Payload, Reply};

/// A call as the object sees it: the method index and the encoded arguments.
#[derive(Debug)]
pub struct Call {
    pub(crate) method: u32,
    pub(crate) format: Format,
    pub(crate) args: Payload,
    /// The largest result the connection's frames carry.
    pub(crate) max_result: usize,
    /// For a `#[oneway]` method: where its failure goes, as nobody waits for it.
    pub(crate) oneway: Option<OnewayReport>,
}

impl Call {
    /// The index of the method called, in the trait's declaration order.
    pub fn method(&self) -> u32 {
        self.method
    }
}

/// A shared object that serves the trait whose proxy is `P`.
///
/// `#[expose]` implements it for `Arc<T>` for every `T: Trait + Send + Sync + 'static`; you
/// never implement it by hand. `P` lets one type serve several exposed traits: name the one to
/// register with [`Daemon::register::<FooProxy, _>`](crate::Daemon::register) when a type
/// implements more than one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not serve an exposed trait",
    label = "this object's type implements no `#[rmi::expose]` trait, or is not `Send + Sync + 'static`",
    note = "implement a trait marked `#[rmi::expose]` for the object's type, or name the proxy of the one to serve: `register::<GreeterProxy, _>(object)`"
)]
pub trait Expose<P: Proxy>: Send + Sync + 'static {
    /// Runs `call` on this object. The future is a concrete type (nested `Either`s over the
    /// methods' futures), so a call costs no allocation beyond its task.
    fn dispatch(self, call: Call) -> impl Future<Output = Reply> + Send + 'static;
}

/// Decodes the arguments of `call`, runs `method` on them and encodes its result; a panic in
/// `method` becomes a `Panicked` fault for this caller only.
pub async fn run_method<A, R, F, Fut>(call: Call, method: F) -> Reply
where
    A: Args + Send + 'static,
    R: Serialize,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let (format, max_result) = (call.format, call.max_result);
    // Decoding and encoding run user code too (`Deserialize` and `Serialize` impls), so they
    // are inside the guard with the method: any panic is this caller's error only.
    let run = async move {
        let args: A = match format {
            Format::Json => A::from_json(&call.args)?,
            Format::Bincode | Format::MessagePack => format
                .decode(&call.args)
                .map_err(|e| Fault::BadArguments(e.to_string()))?,
        };
        let result = method(args).await;
        Ok(format.encode_within(&result, max_result)?)
    };
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(reply) => reply,
        Err(panic) => Err(Fault::Panicked(panic_message(&*panic))),
    }
}

/// Runs a `#[oneway]` method: answers at once, and runs the method in a task of its own, which
/// the caller's leaving does not cancel. No one waits for its failures: the daemon counts
/// them, hands them to its `on_oneway_failure` hook and logs them (see [`crate::OnewayFailure`]).
pub fn run_oneway_method<A, F, Fut>(
    mut call: Call,
    method: F,
) -> impl Future<Output = Reply> + Send + 'static
where
    A: Args + Send + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let format = call.format;
    let index = call.method;
    let report = call.oneway.take();
    tokio::spawn(async move {
        if let Err(fault) = run_method(call, method).await {
            match report {
                Some(report) => report.failed(index, fault),
                None => {
                    crate::throttle::warn_throttled!(
                        method = index,
                        "oneway call failed: {fault:?}"
                    )
                }
            }
        }
    });
    std::future::ready(
        format
            .encode(&())
            .map_err(|e| Fault::BadResult(e.to_string())),
    )
}

/// A method's arguments as one tuple. Besides the tuple's own decoding (MessagePack, from
/// typed proxies), a JSON array decodes element by element, so that an argument that does not fit
/// is reported with its position, which the caller turns into the parameter's name.
pub trait Args: DeserializeOwned {
    /// Decodes a JSON array of exactly the tuple's length.
    fn from_json(bytes: &[u8]) -> Result<Self, Fault>;
}

/// The JSON array of arguments of a call, checked to hold `arity` of them.
fn json_array(bytes: &[u8], arity: usize) -> Result<Vec<serde_json::Value>, Fault> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Fault::BadArguments(format!("the arguments are not a JSON array: {e}")))?;
    if values.len() != arity {
        return Err(Fault::BadArguments(format!(
            "{} arguments given, {arity} expected",
            values.len()
        )));
    }
    Ok(values)
}

fn json_argument<T: DeserializeOwned>(index: u32, value: serde_json::Value) -> Result<T, Fault> {
    serde_json::from_value(value).map_err(|e| Fault::BadArgument {
        index,
        message: e.to_string(),
    })
}

macro_rules! args_for_tuples {
    ($( ($($name:ident : $index:tt),*) ),* $(,)?) => {$(
        impl<$($name: DeserializeOwned),*> Args for ($($name,)*) {
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_json(bytes: &[u8]) -> Result<Self, Fault> {
                let arity = <[u32]>::len(&[$($index),*]);
                let mut values = json_array(bytes, arity)?.into_iter();
                Ok(($(
                    json_argument::<$name>($index, values.next().unwrap_or_default())?,
                )*))
            }
        }
    )*};
}

args_for_tuples! {
    (),
    (A0: 0),
    (A0: 0, A1: 1),
    (A0: 0, A1: 1, A2: 2),
    (A0: 0, A1: 1, A2: 2, A3: 3),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13, A14: 14),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13, A14: 14, A15: 15),
}

/// The reply to a method index the trait does not have.
pub fn unknown_method() -> std::future::Ready<Reply> {
    std::future::ready(Err(Fault::UnknownMethod))
}

/// Compiles only for types that can travel as an argument or a result: generated code calls
/// it for each one, at the type as the user wrote it, so a missing derive is reported there.
pub fn assert_serde<T: Serialize + DeserializeOwned + Send + 'static>() {}

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
/// [`Instances::PerConnection`] factories, by handle, and what its calls share.
pub(crate) struct Session {
    instances: std::collections::HashMap<u64, Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) connection: Arc<ConnectionState>,
}

impl Session {
    /// A connection's session, allowing `max_in_flight` calls at once and results of at most
    /// `max_payload` bytes; its calls about streams end when `stop` does.
    pub(crate) fn new(
        max_in_flight: usize,
        max_payload: usize,
        stop: Stop,
        calls: tokio_util::task::TaskTracker,
        oneway: Arc<OnewayWatch>,
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
            }),
        }
    }
}

/// What the calls of one connection share (each holds it while it runs): the streams they
/// returned, and how many are in flight.
pub(crate) struct ConnectionState {
    pub(crate) streams: OpenStreams,
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
    /// that held up its connection start in tasks of their own for a while (see [`Pace`]).
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
    /// task is over before `answer` returns, and tracking it would cost every call a shared
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

/// An object as a daemon holds it: its trait, and how to run a call on it, types erased.
pub(crate) trait Hosted: Send + Sync {
    fn descriptor(&self) -> &'static TraitDescriptor;
    /// Names the object's URI, which errors its methods return record as where they arose.
    fn set_uri(&mut self, uri: Arc<String>);
    /// Runs `request` on the object (of `handle`, on a connection whose instances are in
    /// `session`) and queues the reply: in the connection's task if the method finishes
    /// without waiting, else in a task of its own (`ConnectionState::run_call`).
    fn start(&self, handle: u64, request: Request, session: &mut Session);
}

/// Which instance of an object serves a call.
///
/// ```
/// # #[rmi::expose] pub trait Counter { async fn next(&self) -> u64; }
/// # #[derive(Default)] struct Count(std::sync::atomic::AtomicU64);
/// # impl Counter for Count { async fn next(&self) -> u64 { self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// // Each client connection counts on its own.
/// let uri = daemon.register_factory(rmi::Instances::PerConnection, Count::default)?;
/// daemon.spawn();
/// let (a, b) = (CounterProxy::connect(&uri).await?, CounterProxy::connect(&uri).await?);
/// assert_eq!((a.next().await?, a.next().await?, b.next().await?), (1, 2, 1));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instances {
    /// One instance made for each client connection (Pyro's `session`): a client's state,
    /// shared by the clones of its proxy.
    PerConnection,
    /// A fresh instance for every call (Pyro's `percall`).
    PerCall,
}

/// Where a hosted object's instances come from.
enum Source<O> {
    /// One instance for every call (the default).
    Shared(Arc<O>),
    /// Made by the factory as [`Instances`] says.
    Factory(Instances, Box<dyn Fn() -> O + Send + Sync>),
}

/// Erases an `Expose<P>` object into a [`Hosted`] one.
pub(crate) struct Host<P, O> {
    source: Source<O>,
    /// The object's URI, once the daemon hosts it.
    uri: Option<Arc<String>>,
    /// Per method, whether its calls start in tasks of their own (see [`Pace`]).
    paces: Box<[Arc<Pace>]>,
    proxy: PhantomData<fn() -> P>,
}

impl<P: Proxy, O> Host<P, O> {
    pub(crate) fn new(object: O) -> Self {
        Self::from_source(Source::Shared(Arc::new(object)))
    }

    pub(crate) fn with_factory(
        instances: Instances,
        factory: impl Fn() -> O + Send + Sync + 'static,
    ) -> Self {
        Self::from_source(Source::Factory(instances, Box::new(factory)))
    }

    fn from_source(source: Source<O>) -> Self {
        let methods = P::DESCRIPTOR.methods.len();
        Host {
            source,
            uri: None,
            paces: (0..methods).map(|_| Arc::default()).collect(),
            proxy: PhantomData,
        }
    }
}

impl<P, O> Host<P, O>
where
    O: Send + Sync + 'static,
{
    /// The instance that serves a call.
    fn instance(&self, handle: u64, session: &mut Session) -> Arc<O> {
        match &self.source {
            Source::Shared(object) => Arc::clone(object),
            Source::Factory(Instances::PerCall, factory) => Arc::new(factory()),
            Source::Factory(Instances::PerConnection, factory) => {
                let instance = session
                    .instances
                    .entry(handle)
                    .or_insert_with(|| Arc::new(factory()));
                match Arc::clone(instance).downcast::<O>() {
                    Ok(instance) => instance,
                    // Handles are never reused, so a session's entry is always of this type;
                    // should it not be, a fresh instance is the safe answer.
                    Err(_) => Arc::new(factory()),
                }
            }
        }
    }
}

impl<P: Proxy, O> Hosted for Host<P, O>
where
    Arc<O>: Expose<P>,
    O: Send + Sync + 'static,
{
    fn descriptor(&self) -> &'static TraitDescriptor {
        P::DESCRIPTOR
    }

    fn set_uri(&mut self, uri: Arc<String>) {
        self.uri = Some(uri);
    }

    fn start(&self, handle: u64, request: Request, session: &mut Session) {
        let Some(in_flight) = session.connection.begin_call() else {
            return refuse(&session.connection, request, Fault::Busy);
        };
        let connection = in_flight.connection();
        let object = self.instance(handle, session);
        let uri = self.uri.clone();
        let method = request.invoke.method;
        let serve = move |context: tarpc::context::Context, invoke: Invoke| {
            // Calls this method makes inherit what is left of its caller's deadline, and a
            // stream it returns is hosted on its caller's connection.
            let oneway =
                OnewayReport::for_call(&connection.oneway, &uri, P::DESCRIPTOR, invoke.method);
            let call = Call {
                method: invoke.method,
                format: invoke.format,
                args: invoke.args,
                max_result: connection.max_payload,
                oneway,
            };
            // A call still running when the daemon's grace period ends is cancelled.
            let stop = connection.stop.clone();
            let serving = Serving {
                deadline: context.deadline,
                trace: Serving::trace_of(&context),
                connection,
                format: call.format,
                object: uri,
            };
            UntilClosed::new(serving::scope(serving, object.dispatch(call)), &stop)
        };
        let start = self
            .paces
            .get(method as usize)
            .map_or(Start::Here, Start::Paced);
        in_flight.run(request, serve, start);
    }
}

/// Answers `request` with `fault` without running anything. The answer counts among the
/// calls in flight of `connection` until it is handed over (even past the limit), so that a
/// client that does not read its replies cannot pile up refusals either.
pub(crate) fn refuse(connection: &Arc<ConnectionState>, request: Request, fault: Fault) {
    let serve = move |_context, _invoke| std::future::ready(Err(fault));
    connection.force_call().run(request, serve, Start::Here);
}

// ---- The streams a connection hosts ----

/// Hosts `items` on the connection of the call being served, in that call's format.
pub(crate) fn host_stream<T: Serialize + Send + 'static>(
    items: futures::stream::BoxStream<'static, Result<T, crate::Error>>,
) -> Result<u64, String> {
    crate::serving::with(|serving| {
        let connection = serving.connection.downcast_ref::<ConnectionState>()?;
        Some(
            connection
                .streams
                .open(serving.format, connection.max_payload, items),
        )
    })
    .flatten()
    .ok_or_else(|| {
        "an rmi::Stream is sent as a method's result or a call's argument, nowhere else".to_owned()
    })?
}

/// The receiving end of the stream the client uploads as `id`, an argument of the call being
/// served, with that call's format (its items').
pub(crate) fn receive_upload(
    id: u64,
) -> Result<(tokio::sync::mpsc::Receiver<stream_host::Pushed>, Format), String> {
    crate::serving::with(|serving| {
        let connection = serving.connection.downcast_ref::<ConnectionState>()?;
        Some(connection.streams.receive(id).map(|r| (r, serving.format)))
    })
    .flatten()
    .ok_or_else(|| {
        "an rmi::Stream is received as a method's result or argument, inside a call".to_owned()
    })?
}

/// Answers a call on the streams' reserved handle (`wire::STREAMS_HANDLE`): a pull, a close
/// or a push.
/// A pull counts among the connection's calls in flight; it ends (as the stream's end)
/// when the daemon stops.
pub(crate) fn start_stream_call(connection: &Arc<ConnectionState>, request: Request) {
    let Some(in_flight) = connection.begin_call() else {
        return refuse(connection, request, Fault::Busy);
    };
    let call = in_flight.connection();
    let serve = move |_context, invoke: Invoke| async move {
        let stop = call.stop.clone();
        let batch_bytes = stream_host::BATCH_BYTES.min(call.max_payload);
        tokio::select! {
            answer = call.streams.handle_request(invoke, batch_bytes) => answer,
            () = stop.stopped() => Format::Bincode
                .encode(&Batch { items: Vec::new(), end: true })
                .map_err(|e| Fault::BadResult(e.to_string())),
        }
    };
    // A pull runs the producer, user code that may take its time, and waits for its
    // items: always in a task of its own.
    in_flight.run(request, serve, Start::OwnTask);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<A: Serialize>(args: &A) -> Call {
        Call {
            method: 0,
            format: Format::Bincode,
            args: Format::Bincode.encode(args).unwrap(),
            max_result: crate::wire::MAX_PAYLOAD_BYTES,
            oneway: None,
        }
    }

    #[tokio::test]
    async fn runs_the_method_on_decoded_arguments() {
        let reply = run_method(
            call(&(2u64, 3u64)),
            |(a, b): (u64, u64)| async move { a + b },
        )
        .await;
        let sum: u64 = Format::Bincode.decode(&reply.unwrap()).unwrap();
        assert_eq!(sum, 5);
    }

    #[tokio::test]
    async fn bad_arguments_and_panics_are_faults() {
        let reply = run_method(call(&(1u8,)), |(_s, _t): (String, String)| async move {}).await;
        assert!(matches!(reply, Err(Fault::BadArguments(_))));
        let reply = run_method(call(&()), |(): ()| async move {
            if true {
                panic!("boom {}", 7);
            }
        })
        .await;
        assert_eq!(reply, Err(Fault::Panicked("boom 7".into())));
    }
}
