//! What a task serving a call knows of it: its deadline, which calls it makes inherit, and
//! its connection's open streams, where a [`Stream`](crate::Stream) it returns is hosted.
//! (Its span, which the calls it makes also carry on, is `trace`'s.)

use std::future::Future;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::trace::TraceContext;
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
}

tokio::task_local! {
    static SERVING: Serving;
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
