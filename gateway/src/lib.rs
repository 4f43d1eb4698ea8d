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
//! - `GET /` is a web page that lists the objects and calls them.
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
mod objects;
mod rpc2;
pub mod xmlrpc;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use error::{fault, GatewayError};
pub use expose::Expose;

/// The default limit on a request's body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            expose: Expose::nothing(),
            token: None,
            allowed_hosts: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            timeout: rmi::DEFAULT_TIMEOUT,
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
    pub(crate) objects: objects::Objects,
    pub(crate) token: Option<String>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) max_body: usize,
}

impl Gateway {
    /// A gateway to the objects `ns` names, connecting to them as `client` says (key, TLS).
    pub fn new(ns: rmi::NameServerProxy, client: rmi::ClientConfig, config: Config) -> Gateway {
        let objects = objects::Objects::new(ns, client, config.expose, config.timeout);
        Gateway {
            shared: Arc::new(GatewayState {
                objects,
                token: config.token.filter(|t| !t.is_empty()),
                allowed_hosts: config.allowed_hosts,
                max_body: config.max_body,
            }),
        }
    }

    /// The gateway's routes, as an axum router.
    pub fn router(&self) -> axum::Router {
        http::router(self.shared.clone())
    }

    /// Serves HTTP on `listener` until `shutdown` completes; requests under way are finished.
    ///
    /// # Errors
    ///
    /// None in practice: the `std::io::Result` is axum's, whose server retries a connection
    /// it failed to accept rather than return an error, and returns `Ok(())` once `shutdown`
    /// completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
