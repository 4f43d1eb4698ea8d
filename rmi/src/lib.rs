//! # rmi: remote method invocation for Rust
//!
//! Put `#[rmi::expose]` on a trait; host objects that implement it in a [`Daemon`]; call
//! them from another process through the generated `<Trait>Proxy`, by URI
//! (`rmi:obj_…@host:port`) or by name through the name server (`rminame:server`).
//!
//! ```no_run
//! #[rmi::expose]
//! pub trait Greeter {
//!     async fn welcome_message(&self, name: String) -> String;
//! }
//!
//! struct Server;
//! impl Greeter for Server {
//!     async fn welcome_message(&self, name: String) -> String {
//!         format!("Hi welcome {name}")
//!     }
//! }
//!
//! # async fn server() -> Result<(), Box<dyn std::error::Error>> {
//! // The server.
//! let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
//! let uri = daemon.register(Server)?;
//! rmi::locate_ns().await?.register("server".into(), uri).await??;
//! daemon.serve().await?;
//! # Ok(()) }
//! # async fn client() -> Result<(), rmi::Error> {
//! // The client, in another process.
//! let greeter = GreeterProxy::connect("rminame:server").await?;
//! println!("{}", greeter.welcome_message("Ruvika".into()).await?);
//! # Ok(()) }
//! ```
//!
//! See `ARCHITECTURE.md` in the repository for how a call travels.

#![warn(missing_docs)]
// Every public function that returns a `Result` says when it fails (`# Errors`).
#![warn(clippy::missing_errors_doc)]

// Lets `#[expose]`, which names `::rmi`, be used inside this crate too.
extern crate self as rmi;

// The layers, bottom first, each a folder (ARCHITECTURE.md, "Layers of `rmi`"): a module
// imports only from its own layer or those below, which `tests/layers.rs` checks. Each
// module is also named here, so that paths read `crate::error::Error`.
mod base;
mod client;
mod features;
mod server;

pub use base::live;
pub use base::meters;
pub use base::wire;
use base::{
    blob, describe, error, frame_pool, nesting, net, outgoing, pyro_values, pyro_wire, security,
    serving, throttle, trace, uri,
};
use client::{channel, keeper, proxy, pyro5};
#[cfg(feature = "otel")]
pub use features::otel;
use features::{dynamic, nameserver, remote, stream};
use server::{daemon, expose, hosted, oneway, pace, session, stop, stream_calls, stream_host};

pub use client::{ClientConfig, DEFAULT_CONNECT_TIMEOUT};
pub use daemon::builtin::{DaemonObject, DaemonObjectProxy};
pub use daemon::new_object_id;
pub use daemon::{
    Daemon, DaemonBuilder, DAEMON_OBJECT_ID, DEFAULT_FIRST_REQUEST_TIMEOUT, DEFAULT_GRACE_PERIOD,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    DEFAULT_REQUEST_TIMEOUT,
};
pub use describe::{BindError, Binding, MethodDescriptor, ObjectInfo, Param, TraitDescriptor};
pub use dynamic::{DynamicProxy, JsonReply};
pub use error::{Error, ErrorKind, Result};
pub use expose::Expose;
pub use hosted::Instances;
pub use meters::{serve_metrics, METRICS_ENV};
pub use nameserver::connect;
pub use nameserver::{
    locate_ns, locate_ns_at, ns_endpoint_from_env, NameServer, NameServerProxy, NsError,
    RegisterOptions, Registration, Tags, DEFAULT_NS_BCPORT, DEFAULT_NS_HOST, DEFAULT_NS_PORT,
    DISCOVERY_REQUEST, NAME_SERVER_ID, PYRO_DISCOVERY_REQUEST,
};
pub use nameserver::{ns_endpoints_from_env, parse_ns_hosts, NS_CONNECT_TIMEOUT};
pub use net::{
    host_from_env, is_loopback_host, unbracket, ADVERTISE_ENV, CALLBACK_HOST_ENV,
    CALLBACK_PORT_ENV, CONNECT_TIMEOUT_ENV, DEAD_PEER_NOTICED_WITHIN, HOST_ENV,
};
pub use oneway::OnewayFailure;
pub use proxy::{Proxy, ProxyCore};
pub use remote::Remote;
pub use security::tls::{ClientTls, ServerTls, TLS_ENV};
pub use security::{Key, KEY_FILE_ENV};
pub use serving::time_left;
pub use stream::Stream;
pub use throttle::{one_line, Throttle};
pub use trace::TraceContext;
pub use uri::{
    check_name, check_object_id, check_tag, Endpoint, IntoUri, MetaUri, NameUri, ObjectUri, Uri,
    META_SCHEME, NAME_SCHEME, OBJECT_SCHEME, PYRO_NAME_SCHEME, PYRO_OBJECT_SCHEME,
    TLS_OBJECT_SCHEME,
};
pub use wire::{
    DEFAULT_TIMEOUT, FRAME_LIMIT_ENV, LARGEST_FRAME_BYTES, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES,
    MAX_TIMEOUT,
};

/// Makes a trait callable over the network.
///
/// On `trait Greeter` it generates:
/// - `GreeterProxy`, a `Clone + Send + Sync` client: `GreeterProxy::connect(uri)`, then each
///   method as in the trait with its result wrapped in `Result<_, rmi::Error>`;
/// - the server dispatch, for every type that implements `Greeter`, so that
///   [`Daemon::register`] accepts it.
///
/// Each method is an `async fn` taking `&self` and owned arguments; arguments and results are
/// any serde types. A method returning `Result<T, E>` hands the caller `E` itself, typed, as
/// the inner error of `Result<Result<T, E>, rmi::Error>`. The trait's futures must be `Send`.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// pub enum MathError { DivideByZero }
///
/// #[rmi::expose]
/// pub trait Math {
///     async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
/// }
///
/// struct Calculator;
/// impl Math for Calculator {
///     async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
///         a.checked_div(b).ok_or(MathError::DivideByZero)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Calculator)?;
/// daemon.spawn();
/// let math = MathProxy::connect(&uri).await?;
/// assert_eq!(math.div(10, 5).await?.unwrap(), 2);
/// assert!(matches!(math.div(1, 0).await?, Err(MathError::DivideByZero)));
/// daemon.shutdown().await;
/// # Ok(()) }
/// ```
///
/// A method's error may be [`rmi::Error`] itself, for a server that forwards calls to
/// others: it arrives as the same variant, naming the server where it arose ([`Error::hop`]).
///
/// # `#[oneway]`
///
/// Mark a method `#[oneway]` when its caller need not wait for it to run: the proxy returns
/// `Ok(())` once the call is handed to its connection (written or queued, not yet received), and the daemon runs the method in a task of its own, which
/// the caller's leaving does not cancel. A oneway method returns nothing (`-> ()`). Oneway
/// calls are not ordered with respect to each other. As nobody waits for them, their failures
/// (a panic, arguments that do not decode) never reach the caller: the daemon counts them
/// ([`Daemon::oneway_failures`]), hands each to the hook set with
/// [`DaemonBuilder::on_oneway_failure`] as an [`OnewayFailure`], and logs it as a `tracing`
/// warning.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[rmi::expose]
/// pub trait Audit {
///     /// Records `line`; the caller does not wait for it.
///     #[oneway]
///     async fn record(&self, line: String);
///     async fn count(&self) -> u64;
/// }
///
/// #[derive(Default)]
/// struct Log(AtomicU64);
/// impl Audit for Log {
///     async fn record(&self, line: String) {
///         assert!(!line.is_empty(), "an empty line");
///         self.0.fetch_add(1, Ordering::SeqCst);
///     }
///     async fn count(&self) -> u64 {
///         self.0.load(Ordering::SeqCst)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::builder()
///     .on_oneway_failure(|failure: &rmi::OnewayFailure| eprintln!("{failure}"))
///     .bind("127.0.0.1:0")
///     .await?;
/// let uri = daemon.register(Log::default())?;
/// daemon.spawn();
/// let audit = AuditProxy::connect(&uri).await?;
/// audit.record("hello".into()).await?; // returns once handed to the connection
/// audit.record(String::new()).await?; // Ok too: the panic happens on the server
/// # while audit.count().await? < 1 || daemon.oneway_failures() < 1 {
/// #     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// # }
/// assert_eq!(daemon.oneway_failures(), 1);
/// # daemon.shutdown().await;
/// # Ok(()) }
/// ```
///
/// What cannot travel is refused at compile time, pointing at the offending code: generic
/// methods, `&mut self` or `self` receivers, reference arguments, `impl Trait`, `Self`,
/// non-`async` methods, and names the proxy reserves (`connect`, `uri`, `timeout`,
/// `with_timeout`, `clone`, `core`, `from_core`). A type without serde is reported at the
/// type as written (the tests in `tests/ui` show each message):
///
/// ```compile_fail
/// pub struct Point { x: i32 } // no #[derive(Serialize, Deserialize)]
///
/// #[rmi::expose]
/// pub trait Plotter {
///     async fn plot(&self, point: Point); // error: `Point: Serialize` is not satisfied
/// }
/// ```
pub use rmi_macros::expose;

/// The `tracing` filter directives a program should log with: `rust_log` (what `RUST_LOG`
/// says), else `warn`. For `EnvFilter::new`.
///
/// ```
/// assert_eq!(rmi::log_filter(Some("info")), "info");
/// assert_eq!(rmi::log_filter(Some(" ")), "warn");
/// assert_eq!(rmi::log_filter(None), "warn");
/// ```
pub fn log_filter(rust_log: Option<&str>) -> String {
    let user = rust_log
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .unwrap_or("warn");
    user.to_owned()
}

/// The README's Rust code blocks, which `cargo test --doc` compiles (and runs, unless
/// `no_run`), so that what it shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// What generated code calls. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::blob::{
        Blob, Bytes, BytesInOk, BytesInSome, BytesInStream, BytesStreamInOk, LentBlob, OwnedBytes,
        WireForm,
    };
    pub use crate::expose::{
        assert_serde, run_method, run_oneway_method, unknown_method, Args, Call, Expose,
    };
    pub use crate::nameserver::connect;
    pub use crate::proxy::ProxyCore;
    pub use crate::wire::Reply;
    pub use futures::future::Either;
}
