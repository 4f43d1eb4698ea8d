//! What rmi measures, through the [`metrics`] crate's facade (so that any exporter can be
//! plugged in), and Prometheus' text format served over HTTP ([`serve_metrics`]).
//!
//! Every label's values come from the code, never from what a client sends: objects are
//! named by their trait, methods by the trait's method names (`?` for an index the trait does
//! not have), outcomes by a fixed list. A call looks up nothing: the handles of each method's
//! meters are made once, when its object is registered (the server) or bound (a proxy).
//! Before a recorder is installed they are the facade's no-ops, so install it first
//! (`DaemonBuilder::metrics`, `RMI_METRICS`, or [`serve_metrics`] at the start of `main`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use metrics::{Counter, Gauge, Histogram};

use crate::base::exposition::{self, Exposition};
use crate::describe::TraitDescriptor;
use crate::wire::{Fault, Format, Payload, Reply};
use crate::{Error, ErrorKind};

/// Calls a daemon ran, by `object` (its trait), `method` and `outcome` (`ok`, `err` for a
/// method's own `Err`, or the fault: `bad_arguments`, `panicked`, `busy`, …).
pub const CALLS: &str = "rmi_calls_total";
/// How long each call took on the daemon, from its start to its reply, by `object` and
/// `method`.
pub const CALL_DURATION: &str = "rmi_call_duration_seconds";
/// Calls running on the daemon now.
pub const CALLS_IN_FLIGHT: &str = "rmi_calls_in_flight";
/// Connections a daemon has open now.
pub const CONNECTIONS_OPEN: &str = "rmi_connections_open";
/// Connections a daemon accepted.
pub const CONNECTIONS_ACCEPTED: &str = "rmi_connections_accepted_total";
/// Connections a daemon refused or closed before their calls, by `reason` (`full`,
/// `per_address`, `handshake`, `idle`, `slow`, `silent`).
pub const CONNECTIONS_REFUSED: &str = "rmi_connections_refused_total";
/// Bytes a daemon read from its clients (rmi's protocol; Pyro5 clients' are not counted).
pub const BYTES_RECEIVED: &str = "rmi_bytes_received_total";
/// Bytes a daemon wrote to its clients (rmi's protocol).
pub const BYTES_SENT: &str = "rmi_bytes_sent_total";
/// Items of streams, by `direction`: `out` (results pulled by clients), `in` (uploads).
pub const STREAM_ITEMS: &str = "rmi_stream_items_total";
/// Calls a proxy made, by `target` (the trait it calls), `method` and `outcome` (`ok`, or the
/// error's kind: `timeout`, `disconnected`, …).
pub const CLIENT_CALLS: &str = "rmi_client_calls_total";
/// How long each call of a proxy took, by `target` and `method`.
pub const CLIENT_CALL_DURATION: &str = "rmi_client_call_duration_seconds";

/// The bounds of the duration histograms' buckets, in seconds: 50 µs to 10 s.
const DURATION_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// The variable that names the address to serve metrics at (`host:port`).
pub const METRICS_ENV: &str = "RMI_METRICS";

/// Where this process serves its metrics, once it does.
static SERVED_AT: OnceLock<SocketAddr> = OnceLock::new();

/// Whether rmi measures: once it serves metrics, or is told a recorder of the user's own is
/// installed ([`measure`]). Until then a call reads no clock and touches no meter.
static MEASURING: AtomicBool = AtomicBool::new(false);

/// Has rmi measure its calls and connections into the recorder installed with
/// `metrics::set_global_recorder` (an exporter of your choice), as [`serve_metrics`] does into
/// its own. Call it after installing the recorder and before registering objects and
/// connecting proxies.
///
/// ```no_run
/// // With an exporter of your own installed as the global recorder:
/// rmi::meters::measure();
/// ```
pub fn measure() {
    MEASURING.store(true, Ordering::Relaxed);
    describe();
}

/// Whether rmi measures (see [`measure`]): what else measures alongside it (a name server's
/// store, a gateway's requests) asks this too.
///
/// ```
/// // Nothing asked this process to measure.
/// assert!(!rmi::meters::measuring());
/// ```
pub fn measuring() -> bool {
    MEASURING.load(Ordering::Relaxed)
}

/// Serves this process's metrics in Prometheus' text format at `http://ADDR/metrics` (any
/// path answers), and installs the recorder rmi's meters report to. Call it before objects
/// are registered and proxies bound: their meters are made then. Once per process; a second
/// call for the same address does nothing.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), rmi::Error> {
/// rmi::serve_metrics("127.0.0.1:9100".parse().unwrap())?;
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// // … register objects: `curl http://127.0.0.1:9100/metrics` shows their calls.
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`ErrorKind::Listen`] if the address cannot be listened on, or this process already serves
/// its metrics elsewhere (or another recorder is installed).
pub fn serve_metrics(addr: SocketAddr) -> Result<(), Error> {
    let listen_error = |reason: String| {
        Error::new(ErrorKind::Listen {
            addr: addr.to_string(),
            source: std::io::Error::other(reason),
        })
    };
    if let Some(served) = SERVED_AT.get() {
        return match *served == addr {
            true => Ok(()),
            false => Err(listen_error(format!(
                "this process serves its metrics at {served} already"
            ))),
        };
    }
    // The listener serves in its own task: bind here, so that a taken address is an error
    // rather than a log line.
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|e| listen_error(e.to_string()))?;
    let exporter = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&DURATION_BUCKETS)
        .map_err(|e| listen_error(e.to_string()))?
        .build_recorder();
    let (recorder, exposition) = exposition::recorder(exporter, &DURATION_BUCKETS);
    let exposition = Arc::new(exposition);
    // Installed first: with another recorder in place, nothing is served.
    metrics::set_global_recorder(recorder).map_err(|e| listen_error(e.to_string()))?;
    let serving = {
        let exposition = exposition.clone();
        move || async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => exposition::serve(listener, exposition).await,
                Err(e) => tracing::error!("metrics are not served at {addr}: {e}"),
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(serving())),
        Err(_) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| listen_error(e.to_string()))?;
            std::thread::Builder::new()
                .name("rmi-metrics".into())
                .spawn(move || runtime.block_on(serving()))
                .map_err(|e| listen_error(e.to_string()))?;
        }
    }
    let _ = RENDERER.set(exposition);
    let _ = SERVED_AT.set(addr);
    measure();
    Ok(())
}

/// What [`serve_metrics`] serves, read by [`rendered`].
static RENDERER: OnceLock<Arc<Exposition>> = OnceLock::new();

/// This process's metrics in Prometheus' text format, as [`serve_metrics`] serves them, if it
/// does: what a daemon's own object answers to `metrics` (the live view of `rmi top` and the
/// gateway's page).
///
/// ```
/// assert_eq!(rmi::meters::rendered(), None);
/// ```
pub fn rendered() -> Option<String> {
    RENDERER.get().map(|exposition| exposition.render())
}

/// Where this process serves its metrics, if it does.
///
/// ```
/// assert_eq!(rmi::meters::served_at(), None);
/// ```
pub fn served_at() -> Option<SocketAddr> {
    SERVED_AT.get().copied()
}

/// The address `RMI_METRICS` names, if set.
///
/// # Errors
///
/// [`ErrorKind::InvalidUri`] if it is set to something other than `host:port`.
pub(crate) fn metrics_addr_from_env() -> Result<Option<SocketAddr>, Error> {
    let Ok(text) = std::env::var(METRICS_ENV) else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| {
        Error::new(ErrorKind::InvalidUri {
            uri: text.clone(),
            reason: format!(
                "{METRICS_ENV} takes the address to serve metrics at, as IP:PORT (127.0.0.1:9100)"
            ),
        })
    })
}

/// Says what each metric is, for Prometheus' `# HELP` lines.
fn describe() {
    metrics::describe_counter!(
        CALLS,
        "Calls a daemon ran, by object (trait), method and outcome"
    );
    metrics::describe_histogram!(
        CALL_DURATION,
        metrics::Unit::Seconds,
        "How long calls took on the daemon"
    );
    metrics::describe_gauge!(
        CALLS_IN_FLIGHT,
        "Calls running on the daemon now that waited (a call done in its first step is not counted)"
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Connections the daemon has open");
    metrics::describe_counter!(CONNECTIONS_ACCEPTED, "Connections the daemon accepted");
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused or closed before their calls, by reason"
    );
    metrics::describe_counter!(
        BYTES_RECEIVED,
        metrics::Unit::Bytes,
        "Bytes the daemon read from its clients"
    );
    metrics::describe_counter!(
        BYTES_SENT,
        metrics::Unit::Bytes,
        "Bytes the daemon wrote to its clients"
    );
    metrics::describe_counter!(
        STREAM_ITEMS,
        "Items of streams, by direction (out: pulled; in: uploaded)"
    );
    metrics::describe_counter!(
        CLIENT_CALLS,
        "Calls proxies made, by target (trait), method and outcome"
    );
    metrics::describe_histogram!(
        CLIENT_CALL_DURATION,
        metrics::Unit::Seconds,
        "How long proxies' calls took"
    );
}

/// A daemon's meters of its connections and their bytes.
pub(crate) struct DaemonMeters {
    pub(crate) open: Gauge,
    pub(crate) accepted: Counter,
    pub(crate) received: Counter,
    pub(crate) sent: Counter,
}

impl DaemonMeters {
    /// A daemon's meters; no-ops unless rmi measures.
    pub(crate) fn new() -> Self {
        if !measuring() {
            return DaemonMeters {
                open: Gauge::noop(),
                accepted: Counter::noop(),
                received: Counter::noop(),
                sent: Counter::noop(),
            };
        }
        DaemonMeters {
            open: metrics::gauge!(CONNECTIONS_OPEN),
            accepted: metrics::counter!(CONNECTIONS_ACCEPTED),
            received: metrics::counter!(BYTES_RECEIVED),
            sent: metrics::counter!(BYTES_SENT),
        }
    }

    /// `count` items of streams gone `direction` (`out`: pulled by clients; `in`: uploaded).
    pub(crate) fn stream_items(direction: &'static str, count: usize) {
        if measuring() {
            metrics::counter!(STREAM_ITEMS, "direction" => direction).increment(count as u64);
        }
    }

    /// A connection refused or closed before its calls, for `reason`.
    pub(crate) fn refused(reason: &'static str) {
        if measuring() {
            metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
        }
    }
}

/// The meters of one method, on either side.
struct MethodMeters {
    /// The labels of its rarer outcomes, counted as they come.
    object: &'static str,
    method: &'static str,
    ok: Counter,
    err: Counter,
    duration: Histogram,
    /// Whether it is declared `-> Result<T, E>`: its `Err` counts as `err`.
    fallible: bool,
}

/// The meters of the methods of one trait, as a daemon serves it (`server`) or a proxy calls
/// it (`client`).
pub(crate) struct TraitMeters {
    methods: Box<[MethodMeters]>,
    calls: &'static str,
    /// The calls running (a daemon's; a proxy's are not counted so).
    in_flight: Option<Gauge>,
}

impl TraitMeters {
    /// The meters of a daemon's object of trait `descriptor`, if rmi measures.
    pub(crate) fn server(descriptor: &'static TraitDescriptor) -> Option<Arc<Self>> {
        measuring().then(|| {
            Arc::new(TraitMeters {
                in_flight: Some(metrics::gauge!(CALLS_IN_FLIGHT)),
                ..TraitMeters::new(descriptor, ("object", CALLS, CALL_DURATION))
            })
        })
    }

    /// The meters of a proxy of trait `descriptor`, if rmi measures.
    pub(crate) fn client(descriptor: &'static TraitDescriptor) -> Option<Self> {
        measuring()
            .then(|| TraitMeters::new(descriptor, ("target", CLIENT_CALLS, CLIENT_CALL_DURATION)))
    }

    /// `call`, of method `index` in `format`, measured: its outcome and duration recorded when
    /// it ends, and, while it waits, counted among the calls in flight.
    pub(crate) fn measure<F: Future<Output = Reply>>(
        self: Arc<Self>,
        index: u32,
        format: Format,
        call: F,
    ) -> Measured<F> {
        Measured {
            call,
            meters: self,
            index,
            format,
            stopwatch: Stopwatch::start(),
            waiting: false,
        }
    }

    fn new(
        descriptor: &'static TraitDescriptor,
        (role, calls, duration): (&'static str, &'static str, &'static str),
    ) -> Self {
        let object: &'static str = &descriptor.name;
        let methods = descriptor
            .methods
            .iter()
            .map(|m| {
                let method: &'static str = &m.name;
                let count = |outcome: &'static str| {
                    metrics::counter!(calls, role => object, "method" => method, "outcome" => outcome)
                };
                MethodMeters {
                    object,
                    method,
                    ok: count("ok"),
                    err: count("err"),
                    duration: metrics::histogram!(duration, role => object, "method" => method),
                    fallible: m.returns_result(),
                }
            })
            .collect();
        TraitMeters {
            methods,
            calls,
            in_flight: None,
        }
    }

    /// Records a call of method `index`, timed by `stopwatch`, that ended in `outcome`.
    pub(crate) fn record(&self, index: u32, stopwatch: Stopwatch, outcome: Outcome<'_>) {
        let Some(meters) = self.methods.get(index as usize) else {
            return;
        };
        meters.duration.record(stopwatch.seconds());
        match outcome {
            Outcome::Failed(kind) => {
                let role = if self.calls == CALLS {
                    "object"
                } else {
                    "target"
                };
                metrics::counter!(self.calls, role => meters.object, "method" => meters.method, "outcome" => kind)
                    .increment(1)
            }
            Outcome::Reply(format, payload) if meters.fallible && is_err(format, payload) => {
                meters.err.increment(1)
            }
            Outcome::Reply(..) => meters.ok.increment(1),
        }
    }
}

/// A call's duration being measured: a raw reading of the CPU's time-stamp counter
/// (`quanta`), a few nanoseconds, scaled to time only when the call ends. `std::time::Instant`
/// asks the kernel's clock, a few tens, and `quanta::Instant::now` looks for a thread's mock
/// clock first; a measured call reads the clock twice on each side.
#[derive(Clone, Copy)]
pub(crate) struct Stopwatch(u64);

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Stopwatch(counter().raw())
    }

    /// Seconds since it started.
    fn seconds(self) -> f64 {
        let counter = counter();
        counter.delta_as_nanos(self.0, counter.raw()) as f64 * 1e-9
    }
}

/// The calibrated counter every [`Stopwatch`] reads.
fn counter() -> &'static quanta::Clock {
    static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();
    COUNTER.get_or_init(quanta::Clock::new)
}

pin_project_lite::pin_project! {
    /// A daemon's call, measured ([`TraitMeters::measure`]). A call that ends in its first
    /// step (most do) never waited, so it is not counted in flight: it costs two clock
    /// readings, a counter and a histogram sample, no gauge.
    pub(crate) struct Measured<F> {
        #[pin]
        call: F,
        meters: Arc<TraitMeters>,
        index: u32,
        format: Format,
        stopwatch: Stopwatch,
        // Counted in flight (it waited once); uncounted when it ends or is dropped.
        waiting: bool,
    }

    impl<F> PinnedDrop for Measured<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.waiting {
                if let Some(gauge) = &this.meters.in_flight {
                    gauge.decrement(1.0);
                }
            }
        }
    }
}

impl<F: Future<Output = Reply>> Future for Measured<F> {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let this = self.project();
        let Poll::Ready(reply) = this.call.poll(cx) else {
            if !std::mem::replace(this.waiting, true) {
                if let Some(gauge) = &this.meters.in_flight {
                    gauge.increment(1.0);
                }
            }
            return Poll::Pending;
        };
        let outcome = Outcome::of(&reply, *this.format);
        this.meters.record(*this.index, *this.stopwatch, outcome);
        Poll::Ready(reply)
    }
}

/// How a call ended, as its meters count it.
pub(crate) enum Outcome<'a> {
    /// With a result, in its format (a method's `Err` among them).
    Reply(Format, &'a Payload),
    /// Without one: the fault's or error's kind, in snake case.
    Failed(&'static str),
}

impl<'a> Outcome<'a> {
    /// How `reply`, in `format`, ended.
    pub(crate) fn of(reply: &'a Reply, format: Format) -> Self {
        match reply {
            Ok(payload) => Outcome::Reply(format, payload),
            Err(fault) => Outcome::Failed(fault_kind(fault)),
        }
    }

    /// Its label: `ok`, `err` (a method's `Err`, if it is `fallible`: declared
    /// `-> Result<T, E>`), or the kind of the fault or error.
    pub(crate) fn label(&self, fallible: bool) -> &'static str {
        match *self {
            Outcome::Reply(format, payload) if fallible && is_err(format, payload) => "err",
            Outcome::Reply(..) => "ok",
            Outcome::Failed(kind) => kind,
        }
    }
}

/// The outcome label of a fault.
pub(crate) fn fault_kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::UnknownObject => "unknown_object",
        Fault::UnknownMethod => "unknown_method",
        Fault::BadArguments(_) | Fault::BadArgument { .. } => "bad_arguments",
        Fault::BadResult(_) => "bad_result",
        Fault::Panicked(_) => "panicked",
        Fault::UnknownStream | Fault::StreamBroken(_) => "stream",
        Fault::Busy => "busy",
        Fault::Stopping => "stopping",
        Fault::Cancelled => "cancelled",
        Fault::TooLarge { .. } => "too_large",
    }
}

/// The outcome label of an error a proxy's call returned.
pub(crate) fn error_kind(error: &Error) -> &'static str {
    match error.kind() {
        ErrorKind::Timeout { .. } => "timeout",
        ErrorKind::Disconnected { .. } => "disconnected",
        ErrorKind::Connect { .. } => "connect",
        ErrorKind::Busy { .. } => "busy",
        ErrorKind::Stopping { .. } => "stopping",
        ErrorKind::Cancelled { .. } => "cancelled",
        ErrorKind::Panicked { .. } => "panicked",
        ErrorKind::UnknownObject { .. } => "unknown_object",
        ErrorKind::UnknownMethod { .. } | ErrorKind::SignatureMismatch { .. } => "unknown_method",
        ErrorKind::BadArgument { .. } | ErrorKind::BadCall { .. } => "bad_arguments",
        ErrorKind::Codec { .. } | ErrorKind::Unencodable { .. } => "codec",
        ErrorKind::TooLarge { .. } => "too_large",
        ErrorKind::Raised { .. } => "raised",
        ErrorKind::Authentication { .. } | ErrorKind::Tls { .. } => "refused",
        _ => "other",
    }
}

/// Whether `payload`, a method's `Result` in `format`, is its `Err`: how each format writes
/// serde's `Result` (an enum of two newtype variants), read from its first bytes.
fn is_err(format: Format, payload: &Payload) -> bool {
    let bytes = payload.contiguous();
    match format {
        // The variant's index, a u32 in little-endian order (tarpc's bincode options).
        Format::Bincode => bytes.first() == Some(&1),
        // A map of one entry whose key is the variant's name.
        Format::MessagePack => bytes.get(..5) == Some(&[0x81, 0xa3, b'E', b'r', b'r']),
        Format::Json => bytes.starts_with(b"{\"Err\""),
        Format::Serpent => {
            let body = bytes.split(|b| *b == b'\n').nth(1).unwrap_or(&bytes);
            body.starts_with(b"{'Err'")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_err_is_told_in_every_format() {
        for format in [
            Format::Bincode,
            Format::MessagePack,
            Format::Json,
            Format::Serpent,
        ] {
            let ok: Result<String, String> = Ok("Err".into());
            let err: Result<String, String> = Err("Ok".into());
            assert!(!is_err(format, &format.encode(&ok).unwrap()), "{format:?}");
            assert!(is_err(format, &format.encode(&err).unwrap()), "{format:?}");
            let err: Result<u8, (u8, u8)> = Err((1, 2));
            assert!(is_err(format, &format.encode(&err).unwrap()), "{format:?}");
        }
    }
}
