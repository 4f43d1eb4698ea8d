//! Objects with their types erased: a daemon holds each registered object as a [`Hosted`]
//! (a [`Host`] of the object, or of a factory of [`Instances`]), which starts a call on it
//! without knowing its type.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::describe::TraitDescriptor;
use crate::expose::{Call, Expose};
use crate::meters::{Outcome, TraitMeters};
use crate::oneway::OnewayReport;
use crate::pace::{Pace, Start};
use crate::proxy::Proxy;
use crate::serving::{self, Serving};
use crate::session::{refuse, Request, Session};
use crate::stop::UntilClosed;
use crate::trace::{CallSpan, Served, TraceContext};
use crate::wire::{Fault, Invoke};
use futures::future::Either;

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
    /// One instance, shared by every call on every connection (the default).
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
    /// Its calls, counted and timed, if rmi measures.
    meters: Option<Arc<TraitMeters>>,
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
            meters: TraitMeters::server(P::DESCRIPTOR),
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
                let instance = session.instance(handle, || Arc::new(factory()));
                match instance.downcast::<O>() {
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
        let meters = self.meters.clone();
        let method = request.invoke.method;
        let serve = move |context: tarpc::context::Context, invoke: Invoke| {
            // Calls this method makes inherit what is left of its caller's deadline, and a
            // stream it returns is hosted on its caller's connection.
            let oneway =
                OnewayReport::for_call(&connection.oneway, &uri, P::DESCRIPTOR, invoke.method);
            let described = P::DESCRIPTOR.methods.get(invoke.method as usize);
            let span = CallSpan::serving(
                uri.as_deref()
                    .map_or(crate::wire::DAEMON_OBJECT_ID, |uri| uri),
                described.map_or("", |m| &m.name),
                connection.peer,
                TraceContext::from_wire(&context.trace_context),
            );
            let call = Call {
                method: invoke.method,
                format: invoke.format,
                args: invoke.args,
                max_result: connection.max_payload,
                oneway,
            };
            // A call still running when the daemon's grace period ends is cancelled.
            let stop = connection.stop.clone();
            let trace = span.context.unwrap_or_else(TraceContext::root);
            let serving = Serving {
                deadline: context.deadline,
                connection,
                format: call.format,
                object: uri,
                span: trace,
                _served: Served::new(&trace),
            };
            let (method, format) = (call.method, call.format);
            let reply = object.dispatch(call);
            let reply = match meters {
                Some(meters) => Either::Left(meters.measure(method, format, reply)),
                None => Either::Right(reply),
            };
            // Only a logged span has its end logged, and its future entered.
            let reply = match span.is_logged() {
                true => Either::Left(async move {
                    let reply = span.instrument(reply).await;
                    let fallible = described.is_some_and(|m| m.returns_result());
                    span.served(Outcome::of(&reply, format).label(fallible));
                    reply
                }),
                false => Either::Right(reply),
            };
            UntilClosed::new(serving::scope(serving, reply), &stop)
        };
        let start = self
            .paces
            .get(method as usize)
            .map_or(Start::Here, Start::Paced);
        in_flight.run(request, serve, start);
    }
}
