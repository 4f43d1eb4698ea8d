//! Trace context: which trace a call belongs to and which span made it, as the W3C's
//! [Trace Context](https://www.w3.org/TR/trace-context/) says (a 128-bit trace id, a 64-bit
//! parent span id, a sampled flag), so that one call through a chain of servers is one trace.
//!
//! Each call is a span on both sides: `rmi.call` where a proxy makes it, `rmi.serve` where a
//! daemon serves it, each a `tracing` span at level DEBUG with the fields `trace_id`,
//! `span_id`, `parent_id`, `object` (its URI, or the name the proxy was given), `method`,
//! `peer` (the client's address, where it is served) and `outcome` (as the metrics name it,
//! recorded at its end); the event that ends it (`called` or `served`) also says the `outcome`,
//! and how long the call took (`micros`). The context of the
//! span a task is in travels with every call it makes (in the request's tarpc context, whose
//! trace fields are W3C's), and the callee's span is its child.
//!
//! The span a task is in (`TraceContext::current`, `TraceContext::scope`) is kept with the
//! call it serves, in `serving`. A proxy's call is a span of its own only when it is logged:
//! otherwise the request names the task's span as its caller (a span that may be logged, where
//! a made-up id would name one that never is).
//!
//! With the `otel` feature, span ids are those OpenTelemetry gives the spans (through
//! `tracing-opentelemetry`, when its layer is installed), so that the exported spans and the
//! ids that travel agree; a call made inside a span of the program's own is its child.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

/// The trace context of a span: its trace, its own id, and whether the trace is sampled.
///
/// It travels with every call (as W3C's `traceparent` does in HTTP), so the callee's span is
/// a child of the caller's. Inside a served call, [`TraceContext::current`] is the serving
/// span's; [`TraceContext::scope`] makes calls join a trace of the program's own, such as one
/// an HTTP request came with.
///
/// ```
/// let parent = rmi::TraceContext::from_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// )
/// .expect("a valid traceparent");
/// assert_eq!(parent.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// let child = parent.child();
/// assert_eq!(child.trace_id(), parent.trace_id());
/// assert_ne!(child.span_id(), parent.span_id());
/// assert_eq!(parent.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id's high and low halves: a `u128` would align the struct, and every future
    /// that holds it, to 16 bytes.
    trace: [u64; 2],
    span_id: u64,
    sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled, with this as its first span.
    pub fn root() -> Self {
        TraceContext {
            trace: halves(nonzero(rand::random())),
            span_id: nonzero(rand::random()),
            sampled: true,
        }
    }

    /// A new span in this trace, for work this span causes.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: nonzero(rand::random()),
            ..*self
        }
    }

    /// The trace's id (never zero).
    pub fn trace_id(&self) -> u128 {
        u128::from(self.trace[0]) << 64 | u128::from(self.trace[1])
    }

    /// The span's id (never zero).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled: a tracer records its spans.
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The context in an HTTP `traceparent` header (`00-{trace id}-{span id}-{flags}`, in
    /// lowercase hex), or `None` if it is not one: another length, zero ids, version `ff`.
    /// A later version's longer header is read by its first four fields, as the
    /// specification asks.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut fields = header.splitn(5, '-');
        let version = fields.next()?;
        let (trace, span, flags) = (fields.next()?, fields.next()?, fields.next()?);
        let rest = fields.next();
        let hex = |field: &str, length: usize| {
            field.len() == length
                && field
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let known_version = version == "00";
        if !hex(version, 2) || version == "ff" || (known_version && rest.is_some()) {
            return None;
        }
        if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace: halves(trace_id),
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The context of `span`, a span of work caused by `parent` (such as a request that came
    /// with a `traceparent` header), or if `None`, the first span of a new trace. The span's
    /// fields `trace_id`, `span_id` and `parent_id`, if it declares them
    /// (`tracing::field::Empty`), are recorded. With the `otel` feature, `parent` is made the
    /// span's OpenTelemetry parent, and the ids are those OpenTelemetry gave it.
    ///
    /// ```
    /// let span = tracing::debug_span!(
    ///     "request",
    ///     trace_id = tracing::field::Empty,
    ///     span_id = tracing::field::Empty,
    ///     parent_id = tracing::field::Empty,
    /// );
    /// let incoming = rmi::TraceContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// );
    /// let context = rmi::TraceContext::of_span(&span, incoming);
    /// assert_eq!(context.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
    /// // Calls made in `context.scope(…)` are its children.
    /// ```
    pub fn of_span(span: &tracing::Span, parent: Option<TraceContext>) -> TraceContext {
        let parent = otel::join(span, parent);
        let context = otel::own(span).unwrap_or_else(|| match parent {
            Some(parent) => parent.child(),
            None => TraceContext::root(),
        });
        if !span.is_disabled() {
            let hex = |id: u128, width: usize| tracing::field::display(format!("{id:0width$x}"));
            span.record("trace_id", hex(context.trace_id(), 32));
            span.record("span_id", hex(context.span_id.into(), 16));
            if let Some(parent) = parent {
                span.record("parent_id", hex(parent.span_id.into(), 16));
            }
        }
        context
    }

    /// This context in a call's request (tarpc's trace fields are W3C's).
    pub(crate) fn to_wire(self) -> tarpc::trace::Context {
        tarpc::trace::Context {
            trace_id: self.trace_id().into(),
            span_id: self.span_id.into(),
            sampling_decision: if self.sampled {
                tarpc::trace::SamplingDecision::Sampled
            } else {
                tarpc::trace::SamplingDecision::Unsampled
            },
        }
    }

    /// The caller's span a request names, if it names one.
    pub(crate) fn from_wire(wire: &tarpc::trace::Context) -> Option<Self> {
        let trace_id = u128::from(wire.trace_id);
        let span_id = u64::from(wire.span_id);
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace: halves(trace_id),
            span_id,
            sampled: matches!(
                wire.sampling_decision,
                tarpc::trace::SamplingDecision::Sampled
            ),
        })
    }
}

/// `traceparent`'s form, as [`TraceContext::from_traceparent`] reads it.
impl std::fmt::Display for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = u8::from(self.sampled);
        write!(
            f,
            "00-{:032x}-{:016x}-{flags:02x}",
            self.trace_id(),
            self.span_id
        )
    }
}

fn halves(id: u128) -> [u64; 2] {
    [(id >> 64) as u64, id as u64]
}

fn nonzero<T: Default + PartialEq + From<u8>>(id: T) -> T {
    if id == T::default() {
        T::from(1)
    } else {
        id
    }
}

/// A span of a call, one side's: its `tracing` span (disabled unless DEBUG is logged for
/// rmi, or a tracer wants it), its context, and when it began (if it is logged: a clock is
/// read only then).
pub(crate) struct CallSpan {
    span: tracing::Span,
    /// The span's context: for a proxy's call, only if it is logged.
    pub(crate) context: Option<TraceContext>,
    started: Option<std::time::Instant>,
}

impl CallSpan {
    /// The span of a call a proxy makes to `object`'s `method`, a child of `parent` (the span
    /// the task is in), if it is logged.
    pub(crate) fn calling(
        object: &dyn std::fmt::Display,
        method: &str,
        parent: impl FnOnce() -> Option<TraceContext>,
    ) -> Self {
        let span = tracing::debug_span!(
            "rmi.call",
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_id = tracing::field::Empty,
            %object,
            %method,
            outcome = tracing::field::Empty,
        );
        if span.is_disabled() {
            return CallSpan {
                span,
                context: None,
                started: None,
            };
        }
        CallSpan::new(span, parent())
    }

    /// The span of a call a daemon serves: `object`'s `method`, for `peer`, whose request
    /// named `parent` as its caller's span.
    pub(crate) fn serving(
        object: &str,
        method: &str,
        peer: std::net::SocketAddr,
        parent: Option<TraceContext>,
    ) -> Self {
        let span = tracing::debug_span!(
            "rmi.serve",
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_id = tracing::field::Empty,
            %object,
            %method,
            %peer,
            outcome = tracing::field::Empty,
        );
        CallSpan::new(span, parent)
    }

    fn new(span: tracing::Span, parent: Option<TraceContext>) -> Self {
        CallSpan {
            context: Some(TraceContext::of_span(&span, parent)),
            started: (!span.is_disabled()).then(std::time::Instant::now),
            span,
        }
    }

    /// Whether the span is logged (DEBUG for rmi, or a tracer that wants it): only then is
    /// an outcome worth working out.
    pub(crate) fn is_logged(&self) -> bool {
        !self.span.is_disabled()
    }

    /// Runs `call` in this span's `tracing` span, if it is logged.
    pub(crate) fn instrument<F: Future>(&self, call: F) -> impl Future<Output = F::Output> {
        use tracing::Instrument;
        if self.span.is_disabled() {
            futures::future::Either::Left(call)
        } else {
            futures::future::Either::Right(call.instrument(self.span.clone()))
        }
    }

    /// Ends the span of a call a proxy made, which ended in `outcome`.
    pub(crate) fn called(&self, outcome: &str) {
        if let Some(started) = self.started {
            let micros = started.elapsed().as_micros() as u64;
            self.span.record("outcome", outcome);
            tracing::debug!(parent: &self.span, outcome, micros, "called");
        }
    }

    /// Ends the span of a call a daemon served, which ended in `outcome`.
    pub(crate) fn served(&self, outcome: &str) {
        if let Some(started) = self.started {
            let micros = started.elapsed().as_micros() as u64;
            self.span.record("outcome", outcome);
            tracing::debug!(parent: &self.span, outcome, micros, "served");
        }
    }
}

/// How many calls of each trace this process is serving, counted by the trace id's low bits:
/// a daemon that is stopping still serves the calls its calls in flight cause (a chain through
/// it, a re-entrant call), which carry their traces. Two traces may share a count: with `n`
/// calls in flight, a client's call runs during a stop with a chance of about n in 16,384, as
/// it could have just before. (Trace ids are random: a client cannot aim at a busy count
/// without knowing the traces in flight.) The counts are the process's, whichever of its
/// daemons serves the call.
static SERVING: [AtomicU32; 16_384] = [const { AtomicU32::new(0) }; 16_384];

fn serving_count(low: u64) -> &'static AtomicU32 {
    &SERVING[low as usize % SERVING.len()]
}

/// A call of a trace counted as served, until dropped.
pub(crate) struct Served(u64);

impl Served {
    pub(crate) fn new(context: &TraceContext) -> Self {
        serving_count(context.trace[1]).fetch_add(1, Ordering::Relaxed);
        Served(context.trace[1])
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        serving_count(self.0).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a request that named `caller` was caused by a call this process is serving.
pub(crate) fn is_caused_by_a_served_call(caller: &tarpc::trace::Context) -> bool {
    let trace_id = u128::from(caller.trace_id);
    trace_id != 0 && serving_count(trace_id as u64).load(Ordering::Relaxed) > 0
}

#[cfg(feature = "otel")]
mod otel {
    use super::TraceContext;
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// Makes `parent` (or, for a call not caused by one, the span the program is in) the
    /// OpenTelemetry parent of `span`; the parent to log.
    pub(super) fn join(span: &tracing::Span, parent: Option<TraceContext>) -> Option<TraceContext> {
        let Some(parent) = parent else {
            let current = tracing::Span::current().context();
            let context = current.span().span_context().clone();
            return context.is_valid().then(|| of(&context));
        };
        let flags = if parent.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(parent.trace_id().to_be_bytes()),
            opentelemetry::trace::SpanId::from_bytes(parent.span_id.to_be_bytes()),
            flags,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        Some(parent)
    }

    /// The ids OpenTelemetry gave `span`, if its layer is installed.
    pub(super) fn own(span: &tracing::Span) -> Option<TraceContext> {
        let context = span.context();
        let own = context.span().span_context().clone();
        own.is_valid().then(|| of(&own))
    }

    fn of(context: &SpanContext) -> TraceContext {
        TraceContext {
            trace: super::halves(u128::from_be_bytes(context.trace_id().to_bytes())),
            span_id: u64::from_be_bytes(context.span_id().to_bytes()),
            sampled: context.is_sampled(),
        }
    }
}

#[cfg(not(feature = "otel"))]
mod otel {
    use super::TraceContext;

    /// Without OpenTelemetry, the parent is the one given.
    pub(super) fn join(_: &tracing::Span, parent: Option<TraceContext>) -> Option<TraceContext> {
        parent
    }

    /// Without OpenTelemetry, rmi makes the span ids.
    pub(super) fn own(_: &tracing::Span) -> Option<TraceContext> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_what_the_specification_refuses() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = TraceContext::from_traceparent(header).unwrap();
        assert_eq!(context.to_string(), header);
        assert!(context.sampled());
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert!(!TraceContext::from_traceparent(unsampled).unwrap().sampled());
        // A later version may add fields; version 00 may not.
        assert!(TraceContext::from_traceparent(&format!("01-{}-extra", &header[3..])).is_some());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_wire_form_keeps_the_ids_and_the_sampled_flag() {
        let context = TraceContext::root().child();
        assert_eq!(TraceContext::from_wire(&context.to_wire()), Some(context));
        assert_eq!(TraceContext::from_wire(&Default::default()), None);
    }

    #[test]
    fn a_trace_counts_as_served_while_a_call_of_it_runs_and_another_does_not() {
        // Low bits no other test's random trace is likely to share.
        let trace = |low: u64| TraceContext {
            trace: [0x5eed, low],
            span_id: 1,
            sampled: true,
        };
        let (served, other) = (trace(16_384 * 7 + 4_321), trace(16_384 * 9 + 1_234));
        assert!(!is_caused_by_a_served_call(&served.to_wire()));
        let serving = Served::new(&served);
        assert!(is_caused_by_a_served_call(&served.to_wire()));
        assert!(!is_caused_by_a_served_call(&other.to_wire()));
        drop(serving);
        assert!(!is_caused_by_a_served_call(&served.to_wire()));
        assert!(!is_caused_by_a_served_call(&Default::default()));
    }

    #[test]
    fn a_served_call_s_span_is_the_child_of_its_caller_s() {
        let caller = TraceContext::root();
        let peer = "127.0.0.1:1".parse().unwrap();
        let served = CallSpan::serving("rmi:obj_1@127.0.0.1:2", "add", peer, Some(caller));
        let served = served.context.unwrap();
        assert_eq!(served.trace_id(), caller.trace_id());
        assert_ne!(served.span_id(), caller.span_id());
        let first = CallSpan::serving("rmi:obj_1@127.0.0.1:2", "add", peer, None);
        assert_ne!(first.context.unwrap().trace_id(), caller.trace_id());
    }
}
