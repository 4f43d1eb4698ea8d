//! # rmi-gateway: rmi objects over HTTP
//!
//! The objects in a name server, called by programs that know nothing of rmi (what Pyro's
//! `httpgateway` does):
//!
//! - `POST /call/{name}/{method}` with a JSON array of arguments answers the result as JSON; a
//!   method that returns a stream answers newline-delimited JSON, one item per line as the
//!   server makes it.
//! - `GET /objects` lists the exposed names, each with its trait and methods.
//! - `POST /RPC2` speaks XML-RPC: `system.listMethods`, `system.methodSignature`,
//!   `system.methodHelp`, `system.multicall` (several calls in one request), and
//!   `object.method`; `POST /RPC2/{name}` offers one object's methods
//!   by their own names.
//! - `GET /` is a web page that lists the objects and calls them, keeps a history of the calls
//!   made from it, and shows a live panel of every exposed method's calls.
//! - `GET /live` is the panel's figures: for each exposed name, each method's calls and errors
//!   a second and its p50 and p99 durations, now and over the last minutes, read from the
//!   metrics of its daemon.
//!
//! Only names that `--expose` allows are reachable ([`Expose`]). Failures are an HTTP status
//! with a JSON body `{"kind": …, "message": …}` ([`GatewayError`]), or XML-RPC faults.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = rmi::ClientConfig::from_env()?;
//! let ns = client.locate_ns().await?;
//! let config = rmi_gateway::Config {
//!     expose: rmi_gateway::Expose::new(&["server|string|math".to_owned()])?,
//!     ..rmi_gateway::Config::default()
//! };
//! let gateway = rmi_gateway::Gateway::new(ns, client, config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// Every public function that returns a `Result` says when it fails (`# Errors`).
#![warn(clippy::missing_errors_doc)]

mod error;
mod expose;
mod http;
mod live;
mod objects;
mod rpc2;
mod serve;
mod timer;
pub mod xmlrpc;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use error::{fault, GatewayError};
pub use expose::Expose;

/// The default limit on a request's body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// What the gateway bounds, so that no client (or crowd of them) can take it over: its
/// connections, how long a request may take to arrive, and the work in flight. The defaults
/// follow nginx's and hyper's where they have one.
///
/// ```
/// let limits = rmi_gateway::Limits::default();
/// assert_eq!(limits.max_connections, 1024);
/// assert_eq!(limits.header_timeout, std::time::Duration::from_secs(10));
/// ```
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections from one client address at once; more are answered 503 and closed.
    pub max_connections_per_address: usize,
    /// How long a request's headers may take to arrive, and how long a kept-alive connection
    /// may wait for its next request: slow or idle connections are closed then.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive once its headers have (a stalled
    /// upload is answered 408).
    pub body_timeout: Duration,
    /// Requests handled at once; more wait their turn for up to a second, then are answered
    /// 503. Bodies over 64 KiB (or of unknown length) also take turns, one per core, from
    /// before they are read to their answer, as a decoded body can take many times its size.
    pub max_requests_in_flight: usize,
    /// Calls in one XML-RPC `system.multicall`.
    pub max_multicall: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_address: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_requests_in_flight: 256,
            max_multicall: 256,
        }
    }
}

/// How a gateway behaves: what it exposes, who may use it, its limits.
///
/// ```
/// let config = rmi_gateway::Config::default();
/// assert!(!config.expose.allows("server")); // nothing unless allowed
/// assert_eq!(config.max_body, rmi_gateway::DEFAULT_MAX_BODY);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The names that may be reached.
    pub expose: Expose,
    /// A bearer token every request but `GET /` must carry (`Authorization: Bearer TOKEN`).
    pub token: Option<String>,
    /// Host names (besides IP addresses and `localhost`) that requests may name in their
    /// `Host` header: the names the gateway is reached by. Others are refused, so that a site
    /// whose name is made to resolve to the gateway's address (DNS rebinding) cannot use it.
    pub allowed_hosts: Vec<String>,
    /// The longest request body read, in bytes; longer ones are answered 413.
    pub max_body: usize,
    /// How long a call (and finding its object) may take.
    pub timeout: Duration,
    /// Whether answers may show the objects' `rmi:` URIs (in `GET /objects` and in error
    /// messages). Off by default: a URI is an internal address, and a daemon without a key
    /// could be called there directly, around `expose` and the token.
    pub show_uris: bool,
    /// The gateway's bounds on connections and work.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            expose: Expose::nothing(),
            token: None,
            allowed_hosts: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            timeout: rmi::DEFAULT_TIMEOUT,
            show_uris: false,
            limits: Limits::default(),
        }
    }
}

/// An HTTP gateway to the objects of one name server.
///
/// ```no_run
/// # async fn run(ns: rmi::NameServerProxy) -> std::io::Result<()> {
/// let gateway = rmi_gateway::Gateway::new(ns, rmi::ClientConfig::new(), Default::default());
/// // An axum router, to serve yourself or to nest in a bigger application.
/// let app: axum::Router = gateway.router();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<GatewayState>,
}

/// What every request handler reads.
pub(crate) struct GatewayState {
    pub(crate) objects: Arc<objects::Objects>,
    /// The live panel's readings of the daemons (`GET /live`).
    pub(crate) live: Arc<live::Live>,
    pub(crate) token: Option<String>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) max_body: usize,
    pub(crate) limits: Limits,
    /// Requests being handled: at most `limits.max_requests_in_flight`.
    pub(crate) in_flight: tokio::sync::Semaphore,
    /// Big bodies being read, decoded and called with (JSON, XML): one per core, as decoding
    /// is all computation and its result may be many times the body's size.
    pub(crate) decoding: tokio::sync::Semaphore,
}

impl Gateway {
    /// A gateway to the objects `ns` names, connecting to them as `client` says (key, TLS).
    pub fn new(ns: rmi::NameServerProxy, client: rmi::ClientConfig, config: Config) -> Gateway {
        let objects = Arc::new(objects::Objects::new(ns, client, &config));
        Gateway {
            shared: Arc::new(GatewayState {
                objects,
                live: Default::default(),
                token: config.token.filter(|t| !t.is_empty()),
                allowed_hosts: config.allowed_hosts,
                max_body: config.max_body,
                in_flight: tokio::sync::Semaphore::new(config.limits.max_requests_in_flight),
                decoding: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, usize::from),
                ),
                limits: config.limits,
            }),
        }
    }

    /// The gateway's routes, as an axum router.
    pub fn router(&self) -> axum::Router {
        http::router(self.shared.clone())
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, within the config's
    /// [`Limits`]; requests under way are finished.
    ///
    /// # Errors
    ///
    /// None in practice: a connection that cannot be accepted (out of file descriptors) is
    /// logged and retried after a pause, and `Ok(())` is returned once `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve::serve(
            listener,
            self.router(),
            self.shared.limits.clone(),
            shutdown,
        )
        .await
    }
}
