//! What a task serving a call knows of it: its deadline, which calls it makes inherit, its
//! connection's open streams, where a [`Stream`](crate::Stream) it returns is hosted, and its
//! span; and the span a task is in, which the calls it makes name as their caller
//! ([`TraceContext::current`], [`TraceContext::scope`]).

use std::future::Future;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::trace::{Served, TraceContext};
use crate::wire::Format;

/// The call a task serves.
pub(crate) struct Serving {
    /// When the caller stops waiting.
    pub(crate) deadline: Instant,
    /// The connection the call came on (its open streams, its limits): the daemon's
    /// `session::ConnectionState`, typed by the code that reads it, so that this module,
    /// which errors and proxies read too, sits below the server.
    pub(crate) connection: Arc<dyn std::any::Any + Send + Sync>,
    /// How the call's arguments and result are encoded (and a returned stream's items).
    pub(crate) format: Format,
    /// The URI of the object serving the call: where an `rmi::Error` it returns arose.
    pub(crate) object: Option<Arc<String>>,
    /// The call's span: the calls it makes are its children.
    pub(crate) span: TraceContext,
    /// Counts the call among those of its trace this process serves, until it ends.
    pub(crate) _served: Served,
}

tokio::task_local! {
    static SERVING: Serving;
    /// A span of the task's own, inside or outside a served call: a proxy's call that is
    /// logged, or one given to [`TraceContext::scope`].
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// The context of the span this task is in, if any: the call it is making (if it is
    /// logged), one given to [`TraceContext::scope`], or the call it serves.
    ///
    /// ```
    /// // Outside a call there is none.
    /// assert_eq!(rmi::TraceContext::current(), None);
    /// ```
    pub fn current() -> Option<Self> {
        CURRENT
            .try_with(|current| *current)
            .ok()
            .or_else(|| with(|serving| serving.span))
    }

    /// Runs `work` in this span: the calls it makes are this span's children.
    ///
    /// ```
    /// # async fn f() {
    /// let request = rmi::TraceContext::root();
    /// request
    ///     .scope(async {
    ///         assert_eq!(rmi::TraceContext::current(), Some(request));
    ///         // Calls made here carry `request`'s trace.
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub fn scope<F: Future>(self, work: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, work)
    }
}

/// Runs `call`, a proxy's call whose span is logged as `span`, in that span: its requests
/// name `span` as their caller.
pub(crate) fn in_call_span<F: Future>(
    span: TraceContext,
    call: F,
) -> impl Future<Output = F::Output> {
    CURRENT.scope(span, call)
}

/// Runs `call` as the serving of `serving`.
pub(crate) fn scope<F: Future>(serving: Serving, call: F) -> impl Future<Output = F::Output> {
    SERVING.scope(serving, call)
}

/// Runs `f` on the call being served, if this task serves one.
pub(crate) fn with<R>(f: impl FnOnce(&Serving) -> R) -> Option<R> {
    SERVING.try_with(f).ok()
}

/// The context of a call with `timeout` made by this task: its deadline is the sooner of now +
/// `timeout` and the deadline of the call being served, if any, and it names the span this
/// task is in (the proxy's call, inside the call being served) as its caller, or a new trace.
/// Also how long the deadline gives the call.
pub(crate) fn for_call(timeout: Duration) -> (tarpc::context::Context, Duration) {
    let mut context = blank_context();
    let now = Instant::now();
    let own = now + timeout;
    // The caller's span: a logged proxy call's own, else the span the task is in (so that the
    // callee's parent is a span someone may have logged), else a new trace.
    let caller = TraceContext::current().unwrap_or_else(TraceContext::root);
    context.trace_context = caller.to_wire();
    let (deadline, waited) = match with(|serving| serving.deadline) {
        Some(inherited) => {
            if inherited < own {
                (inherited, inherited.saturating_duration_since(now))
            } else {
                (own, timeout)
            }
        }
        None => (own, timeout),
    };
    context.deadline = deadline;
    (context, waited)
}

/// What is left of the deadline of the call this task serves, if it serves one.
///
/// ```
/// // Outside a served call there is no deadline.
/// assert_eq!(rmi::time_left(), None);
/// ```
pub fn time_left() -> Option<Duration> {
    with(|serving| serving.deadline.saturating_duration_since(Instant::now()))
}

/// A context to fill in, with no trace yet. tarpc's `Context` cannot be built field by field
/// outside tarpc, and `context::current()` asks the tracing span (and OpenTelemetry) for a
/// deadline and trace each time: one is made once, and copied.
fn blank_context() -> tarpc::context::Context {
    static BLANK: std::sync::LazyLock<tarpc::context::Context> = std::sync::LazyLock::new(|| {
        let mut blank = tarpc::context::current();
        blank.trace_context = Default::default();
        blank
    });
    *BLANK
}
