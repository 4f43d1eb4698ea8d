//! [`DaemonBuilder`]: a daemon's key and limits, set before it listens.

use std::time::Duration;

use tokio::net::ToSocketAddrs;

use std::sync::Arc;

use super::Daemon;
use crate::oneway::OnewayWatch;
use crate::security::tls::ServerTls;
use crate::security::Key;
use crate::wire::{LARGEST_FRAME_BYTES, MAX_FRAME_BYTES};
use crate::{Error, ErrorKind};

/// How long a client may take over the handshake unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections a daemon serves at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How many connections one client address may have at once unless told otherwise: well
/// under the 10,000 connections a daemon serves by default, so one address cannot take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 128;

/// How long a connection may send nothing before the daemon closes it, unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long after its handshake a connection has to send its first complete request.
pub const DEFAULT_FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send the rest of a request it has begun.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many calls may be in flight on one connection unless told otherwise.
pub const DEFAULT_MAX_CALLS_IN_FLIGHT: usize = 1024;

/// How long shutdown lets calls in flight finish unless told otherwise.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

use crate::wire::SMALLEST_FRAME_BYTES as SMALLEST_FRAME;

/// What a daemon is set up with.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The key clients must prove; none lets anyone call.
    pub(crate) key: Option<Key>,
    /// How long a client may take over the handshake.
    pub(crate) handshake_timeout: Duration,
    /// The largest frame read from a client.
    pub(crate) max_frame_bytes: usize,
    /// How many connections are served at once.
    pub(crate) max_connections: usize,
    /// How many connections one client address may have at once.
    pub(crate) max_connections_per_address: usize,
    /// How long after the handshake the first request must be complete.
    pub(crate) first_request_timeout: Duration,
    /// How long a request begun may take to arrive whole.
    pub(crate) request_timeout: Duration,
    /// How many calls may be in flight on one connection.
    pub(crate) max_calls_in_flight: usize,
    /// How long a connection may send nothing before the daemon closes it.
    pub(crate) idle_timeout: Option<Duration>,
    /// TLS, if the daemon speaks it.
    pub(crate) tls: Option<ServerTls>,
    /// The address written into URIs (`HOST` or `HOST:PORT`), if not the one listened on.
    pub(crate) advertise: Option<String>,
    /// How long shutdown lets calls in flight finish before it cancels them.
    pub(crate) grace_period: Duration,
    /// Where the failures of `#[oneway]` calls go: a count, and the user's hook.
    pub(crate) oneway: Arc<OnewayWatch>,
}

/// Sets up a daemon: its key and limits, then [`bind`](DaemonBuilder::bind).
///
/// Over a limit, only the client that went over it is told: a connection over
/// `max_connections` (or `max_connections_per_address`) is refused at its handshake
/// ([`ErrorKind::Connect`] says the daemon is full), a connection with `max_calls_in_flight`
/// calls in flight is not read until one is answered (its further calls wait; only requests
/// already read fail with [`ErrorKind::Busy`]), a frame over `max_frame_bytes` ends that
/// connection (proxies refuse such arguments themselves, as the daemon announces its limit),
/// and a connection that sends no complete request in time is closed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// use std::time::Duration;
/// let daemon = rmi::Daemon::builder()
///     .key(rmi::Key::new("s3cret")?)
///     .max_connections(100)
///     .max_calls_in_flight(64)
///     .max_frame_bytes(1024 * 1024)
///     .idle_timeout(Duration::from_secs(300))
///     .bind("127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DaemonBuilder {
    /// `None`: the key `RMI_KEY_FILE` names, if any.
    key: Option<Option<Key>>,
    /// `None`: TLS as `RMI_TLS_CERT` and `RMI_TLS_KEY` say, if set.
    tls: Option<Option<ServerTls>>,
    handshake_timeout: Duration,
    /// `None`: `RMI_MAX_FRAME_BYTES`, else 16 MiB.
    max_frame_bytes: Option<usize>,
    max_connections: usize,
    max_connections_per_address: usize,
    first_request_timeout: Duration,
    request_timeout: Duration,
    max_calls_in_flight: usize,
    idle_timeout: Option<Duration>,
    /// `None`: `RMI_ADVERTISE`, if set.
    advertise: Option<Option<String>>,
    grace_period: Duration,
    oneway: OnewayWatch,
    /// Where to serve the process's metrics: `Some(None)` for nowhere, `None` for what
    /// `RMI_METRICS` says.
    metrics: Option<Option<std::net::SocketAddr>>,
}

impl DaemonBuilder {
    pub(crate) fn new() -> Self {
        DaemonBuilder {
            key: None,
            tls: None,
            metrics: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame_bytes: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            first_request_timeout: DEFAULT_FIRST_REQUEST_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_calls_in_flight: DEFAULT_MAX_CALLS_IN_FLIGHT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            advertise: None,
            oneway: OnewayWatch::default(),
            grace_period: DEFAULT_GRACE_PERIOD,
        }
    }

    /// Writes `address` (`HOST` or `HOST:PORT`) into the daemon's URIs, and so into the name
    /// server, instead of the address it listens on: the address clients reach it at through
    /// NAT, a container's port mapping or another interface (Pyro's `NATHOST`/`NATPORT`).
    /// Without a port, the port listened on. Without this, `RMI_ADVERTISE` if set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::builder()
    ///     .advertise("203.0.113.7:7000")
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// assert_eq!(daemon.uri_for("x")?.to_string(), "rmi:x@203.0.113.7:7000");
    /// # Ok(()) }
    /// ```
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(Some(address.into()));
        self
    }

    /// How long [`shutdown`](Daemon::shutdown) lets the calls in flight finish (default 10 s);
    /// calls still running then are cancelled, and their callers told the daemon stopped.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace.min(crate::wire::MAX_TIMEOUT);
        self
    }

    /// Calls `hook` with each `#[oneway]` call that fails on this daemon (its method panicked,
    /// or its arguments did not decode): its caller already returned, so without a hook such
    /// a failure is only counted ([`Daemon::oneway_failures`]) and logged (a `tracing`
    /// warning, which needs a subscriber to be seen). The hook runs in the failed call's task;
    /// keep it short, or send the failure to a channel. See [`OnewayFailure`](crate::OnewayFailure).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::builder()
    ///     .on_oneway_failure(|failure: &rmi::OnewayFailure| eprintln!("{failure}"))
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// assert_eq!(daemon.oneway_failures(), 0);
    /// # Ok(()) }
    /// ```
    pub fn on_oneway_failure(
        mut self,
        hook: impl Fn(&crate::OnewayFailure) + Send + Sync + 'static,
    ) -> Self {
        self.oneway = OnewayWatch::new(Some(Box::new(hook)));
        self
    }

    /// The largest frame (one call with its arguments) read from a client, and the largest
    /// result (with its envelope) sent back: 16 MiB unless `RMI_MAX_FRAME_BYTES` says
    /// otherwise, at least 128 KiB, at most 4 GiB. Raise it to take larger values (and the
    /// clients' [`ClientConfig::max_frame_bytes`](crate::ClientConfig::max_frame_bytes) for
    /// larger results), or send them as a [`Stream`](crate::Stream), which carries any size.
    /// Each connection holds at most one frame of this size at a time.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = Some(bytes.clamp(SMALLEST_FRAME, LARGEST_FRAME_BYTES));
        self
    }

    /// How many connections are served at once (default 10,000). At the limit, a new
    /// connection takes the place of the oldest that has not yet sent a complete request; if
    /// every one has, it is refused at its handshake (clients retry within their connect
    /// timeout).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Serves this process's metrics (its daemons' calls, connections, and its proxies' calls)
    /// in Prometheus' text format at `http://ADDR/metrics` (see [`serve_metrics`]), from
    /// [`bind`](DaemonBuilder::bind) on; `None` serves none, even if `RMI_METRICS` names an
    /// address (by default, the address it names, unless the process serves its metrics
    /// already).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::builder()
    ///     .metrics(Some("127.0.0.1:9100".parse().unwrap()))
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`serve_metrics`]: crate::serve_metrics
    pub fn metrics(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// How many calls may be in flight on one connection (default 1024); a call counts until
    /// its reply is handed to the connection's writer. At the limit the daemon stops reading
    /// the connection, so more calls wait in the client's socket (and a client that does not
    /// read its replies costs no more memory).
    pub fn max_calls_in_flight(mut self, calls: usize) -> Self {
        self.max_calls_in_flight = calls.max(1);
        self
    }

    /// Closes connections that send nothing for `timeout` (after the replies of their calls
    /// in flight); proxies connect again on their next call. Default 5 minutes.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Keeps connections that send nothing open for as long as they stay connected.
    pub fn no_idle_timeout(mut self) -> Self {
        self.idle_timeout = None;
        self
    }

    /// How many connections one client address may have at once (default 128), so that one
    /// address cannot take every slot. At the limit, a new connection from that address takes
    /// the place of its oldest that has not yet sent a complete request (silent or slow
    /// connections cannot lock out the clients behind the same NAT); if every one has, it is
    /// refused at its handshake.
    pub fn max_connections_per_address(mut self, connections: usize) -> Self {
        self.max_connections_per_address = connections.max(1);
        self
    }

    /// How long after its handshake a connection has to send its first complete request
    /// (default 10 s): silent connections are closed then.
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.first_request_timeout = timeout;
        self
    }

    /// How long a client may take to send the rest of a request it has begun (default 30 s):
    /// a client sending a byte now and then ("slowloris") is closed then.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Serves only clients that prove they hold `key` (and proves it holds it to them).
    /// Without this, the daemon uses the key in the file `RMI_KEY_FILE` names, if set.
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(Some(key));
        self
    }

    /// Serves anyone, even if `RMI_KEY_FILE` is set.
    pub fn no_key(mut self) -> Self {
        self.key = Some(None);
        self
    }

    /// Speaks TLS as `tls` says: its URIs are then `rmis:`. Without this, the daemon speaks
    /// TLS if `RMI_TLS_CERT` and `RMI_TLS_KEY` name a certificate and its key.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(Some(tls));
        self
    }

    /// Speaks plain TCP, even if `RMI_TLS_CERT` is set.
    pub fn no_tls(mut self) -> Self {
        self.tls = Some(None);
        self
    }

    /// How long a client may take over the handshake before it is dropped (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Listens where the server `server` is connected to can call this process back: a
    /// daemon for callbacks (the objects a client passes as [`Remote`](crate::Remote)s).
    ///
    /// It listens on `host`, else `RMI_CALLBACK_HOST`, else the local address of the client's
    /// own connection to `server`, which that server can reach whatever the network between
    /// them; on `port`, else `RMI_CALLBACK_PORT`, else a free one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUri`] if `RMI_CALLBACK_PORT` is not a port number; otherwise as
    /// [`bind`](DaemonBuilder::bind).
    ///
    /// ```
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// # let daemon = rmi::Daemon::bind("127.0.0.2:0").await?;
    /// # let uri = daemon.register(P)?;
    /// # daemon.spawn();
    /// use rmi::Proxy;
    /// let server = PingProxy::connect(&uri).await?;
    /// let callbacks = rmi::Daemon::builder().bind_for_callbacks(&server, None, None).await?;
    /// // Where the server sees this client come from.
    /// assert_eq!(callbacks.local_addr().ip(), server.core().local_addr().unwrap().ip());
    /// # Ok(()) }
    /// ```
    pub async fn bind_for_callbacks(
        self,
        server: &impl crate::Proxy,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<Daemon, Error> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let host = match host
            .map(str::to_owned)
            .or_else(|| from_env(crate::net::CALLBACK_HOST_ENV))
        {
            Some(host) => crate::net::unbracket(host.trim()).to_owned(),
            None => server
                .core()
                .local_addr()
                .map_or_else(|| "127.0.0.1".to_owned(), |addr| addr.ip().to_string()),
        };
        let port = match (port, from_env(crate::net::CALLBACK_PORT_ENV)) {
            (Some(port), _) => port,
            (None, Some(text)) => text.trim().parse().map_err(|_| {
                Error::new(ErrorKind::InvalidUri {
                    uri: format!("{}={text}", crate::net::CALLBACK_PORT_ENV),
                    reason: "give a port number (0 picks a free one)".into(),
                })
            })?,
            (None, None) => 0,
        };
        self.bind((host.as_str(), port)).await
    }

    /// Listens on `addr` (port 0 picks a free port) with these settings: anything
    /// `TcpListener::bind` takes, such as `"127.0.0.1:0"`, `("0.0.0.0", 7000)` or a
    /// `SocketAddr`.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Listen`] if `addr` does not resolve, cannot be listened on (in use, not
    ///   this host's), or the address to advertise (`advertise`, `RMI_ADVERTISE`) does not
    ///   parse.
    /// - [`ErrorKind::BadKey`] or [`ErrorKind::Tls`] if no key or TLS was set here and the files
    ///   `RMI_KEY_FILE` or `RMI_TLS_*` name cannot be used.
    /// - [`ErrorKind::InvalidUri`] if `RMI_MAX_FRAME_BYTES` is not a number of bytes within the
    ///   limits (when no limit was set here), or `RMI_METRICS` is not an address.
    /// - [`ErrorKind::Listen`] too if the metrics cannot be served where asked.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Daemon, Error> {
        let metrics = match self.metrics {
            Some(metrics) => metrics,
            // `RMI_METRICS` is where metrics go unless the process serves them already (its
            // command line may have said where).
            None if crate::meters::served_at().is_some() => None,
            None => crate::meters::metrics_addr_from_env()?,
        };
        if let Some(metrics) = metrics {
            crate::meters::serve_metrics(metrics)?;
        }
        let key = match self.key {
            Some(key) => key,
            None => Key::from_env()?,
        };
        let tls = match self.tls {
            Some(tls) => tls,
            None => ServerTls::from_env()?,
        };
        let max_frame_bytes = match self.max_frame_bytes {
            Some(bytes) => bytes,
            None => crate::wire::frame_limit_from_env()
                .map_err(|reason| {
                    Error::new(ErrorKind::InvalidUri {
                        uri: crate::wire::FRAME_LIMIT_ENV.into(),
                        reason,
                    })
                })?
                .unwrap_or(MAX_FRAME_BYTES),
        };
        let settings = Settings {
            key,
            tls,
            handshake_timeout: self.handshake_timeout,
            max_frame_bytes,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            first_request_timeout: self.first_request_timeout,
            request_timeout: self.request_timeout,
            max_calls_in_flight: self.max_calls_in_flight,
            idle_timeout: self.idle_timeout,
            advertise: match self.advertise {
                Some(advertise) => advertise,
                None => std::env::var(crate::net::ADVERTISE_ENV)
                    .ok()
                    .filter(|text| !text.trim().is_empty()),
            },
            grace_period: self.grace_period,
            oneway: Arc::new(self.oneway),
        };
        Daemon::listen(addr, settings).await
    }
}
