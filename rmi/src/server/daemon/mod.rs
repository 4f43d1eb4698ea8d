//! The daemon: a TCP listener hosting many objects, each under an id.
//!
//! Each accepted connection runs in its own task, which answers the calls that finish without
//! waiting; a call that waits gets a task of its own (so one slow or re-entrant call never
//! holds up another). The object table is read on every call and
//! written only on (un)registration, so it is an [`ArcSwap`](arc_swap::ArcSwap): readers never lock.

mod admission;
mod builder;
pub(crate) mod builtin;
mod connection;
mod objects;
mod pyro;
mod reading;
mod transport;
mod watchdog;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::task::TaskTracker;

use crate::expose::Expose;
use crate::hosted::{Host, Hosted};
use crate::proxy::Proxy;
use crate::security::handshake::{self, Opening};
use crate::stop::Stop;
use crate::uri::{Endpoint, ObjectUri};
use crate::wire;
use crate::{Error, ErrorKind};
use builder::Settings;
pub use builder::{
    DaemonBuilder, DEFAULT_FIRST_REQUEST_TIMEOUT, DEFAULT_GRACE_PERIOD, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_REQUEST_TIMEOUT,
};
use objects::Objects;

pub use crate::wire::DAEMON_OBJECT_ID;

/// Hosts objects and serves calls to them.
///
/// Cloning a `Daemon` gives another handle to the same daemon: register objects or shut it
/// down from anywhere while one task runs [`serve`](Daemon::serve).
///
/// ```no_run
/// #[rmi::expose]
/// pub trait Greeter {
///     async fn welcome_message(&self, name: String) -> String;
/// }
/// struct Server;
/// impl Greeter for Server {
///     async fn welcome_message(&self, name: String) -> String {
///         format!("Hi welcome {name}")
///     }
/// }
///
/// # async fn run() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Server)?;
/// println!("Ready. Object uri = {uri}");
/// daemon.serve().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Daemon {
    shared: Arc<DaemonState>,
}

pub(crate) struct DaemonState {
    settings: Settings,
    /// Connections being served (past their handshake or in it), in all and by client
    /// address, and who makes room at a cap.
    admission: admission::Admission,
    /// The address in its URIs: advertised, listened on, or for a wildcard address, the
    /// host's outward address.
    endpoint: Endpoint,
    /// Bound to a wildcard address with nothing advertised: each name server is given a URI
    /// with the address this host reaches it from.
    wildcard: bool,
    local_addr: SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    objects: Objects,
    /// What shutdown awaits first, in order (see [`Daemon::before_stopping`]).
    before_stopping: Mutex<Vec<BoxFuture<'static, ()>>>,
    stop: Stop,
    /// The connections' tasks.
    tasks: TaskTracker,
    /// The calls in flight, on every connection: shutdown waits for them, within its grace.
    pub(crate) calls: TaskTracker,
    /// Its connections, counted.
    meters: crate::meters::DaemonMeters,
    /// Wakes connections at their read deadlines.
    watchdog: Arc<watchdog::Watchdog>,
}

impl DaemonState {
    fn lock_before_stopping(&self) -> std::sync::MutexGuard<'_, Vec<BoxFuture<'static, ()>>> {
        self.before_stopping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Daemon {
    /// Listens on `addr`, such as `"127.0.0.1:0"` or a `SocketAddr` (port 0 picks a free
    /// port). URIs name the address actually bound. Clients must prove the key in the file
    /// `RMI_KEY_FILE` names, if it is set; [`Daemon::builder`] sets a key and limits.
    ///
    /// # Errors
    ///
    /// As [`DaemonBuilder::bind`]: [`ErrorKind::Listen`] if `addr` cannot be listened on, and
    /// [`ErrorKind::BadKey`], [`ErrorKind::Tls`] or [`ErrorKind::InvalidUri`] if the `RMI_*` variables
    /// name a key, TLS files or a frame limit that cannot be used.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Daemon, Error> {
        Daemon::builder().bind(addr).await
    }

    /// Sets up a daemon before it listens: its key, its limits.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::new()
    }

    async fn listen(addr: impl ToSocketAddrs, settings: Settings) -> Result<Daemon, Error> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(|source| {
                Error::new(ErrorKind::Listen {
                    addr: "the address given".into(),
                    source,
                })
            })?
            .collect();
        let shown = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let listen_error = |source| {
            Error::new(ErrorKind::Listen {
                addr: shown.clone(),
                source,
            })
        };
        let listener = TcpListener::bind(&addrs[..]).await.map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let (endpoint, wildcard) = advertised(settings.advertise.as_deref(), local_addr)?;
        let watchdog = watchdog::Watchdog::new(watchdog::Watchdog::tick_for(
            read_limits(&settings).shortest(),
        ));
        let shared = Arc::new(DaemonState {
            settings,
            admission: admission::Admission::default(),
            endpoint,
            wildcard,
            local_addr,
            listener: Mutex::new(Some(listener)),
            objects: Objects::default(),
            before_stopping: Mutex::default(),
            stop: Stop::new(),
            tasks: TaskTracker::new(),
            calls: TaskTracker::new(),
            meters: crate::meters::DaemonMeters::new(),
            watchdog,
        });
        shared
            .objects
            .insert_daemon_object(builtin::DaemonObjectImpl::new(Arc::downgrade(&shared)));
        Ok(Daemon { shared })
    }

    /// Hosts `object` under a new id (`obj_` and 32 hex digits) and returns its URI.
    ///
    /// `P` is the proxy type of the exposed trait; it is inferred when `object` implements
    /// one exposed trait. For a type that implements several, name the one to serve:
    /// `daemon.register::<GreeterProxy, _>(server)`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DuplicateObjectId`] only if the new random id is already in use, which in
    /// practice does not happen.
    pub fn register<P, O>(&self, object: O) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        self.register_with_id::<P, O>(new_object_id(), object)
    }

    /// Hosts `object` under `id`; fails if the id is taken or not a valid id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidObjectId`] if `id` is not a valid object id (see
    /// [`check_object_id`](crate::check_object_id)); [`ErrorKind::DuplicateObjectId`] if an object
    /// is already registered under it.
    ///
    /// ```no_run
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # async fn run() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let uri = daemon.register_with_id("pinger", P)?;
    /// assert_eq!(uri.id(), "pinger");
    /// # Ok(()) }
    /// ```
    pub fn register_with_id<P, O>(
        &self,
        id: impl Into<String>,
        object: O,
    ) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        self.host(id.into(), Host::<P, O>::new(object))
    }

    /// Hosts `host` under `id`.
    fn host(&self, id: String, mut host: impl Hosted + 'static) -> Result<ObjectUri, Error> {
        let uri = self.uri_for(&id)?;
        host.set_uri(Arc::new(uri.to_string()));
        let trait_name = host.descriptor().name.clone();
        self.shared.objects.insert(uri.id(), Arc::new(host))?;
        tracing::debug!(%uri, %trait_name, "registered");
        Ok(uri)
    }

    /// `uri` as a name server at `ns_endpoint` should hand it out: for a wildcard daemon, with
    /// the address this host reaches `ns_endpoint` from.
    pub(crate) async fn uri_towards(&self, uri: &ObjectUri, ns_endpoint: &Endpoint) -> ObjectUri {
        if !self.shared.wildcard {
            return uri.clone();
        }
        let peer = tokio::net::lookup_host(ns_endpoint.connect_target())
            .await
            .ok()
            .and_then(|mut found| found.next())
            .map(|addr| addr.ip());
        let seen = self.uri_seen_from(uri, peer);
        if seen != *uri {
            tracing::info!(endpoint = %seen.endpoint(), "registering with {ns_endpoint}: the address this host reaches it from");
        }
        seen
    }

    /// `uri` (one of this daemon's) as `peer` can reach it. A daemon that listens on every
    /// address with nothing advertised names the address this host reaches `peer` from, rather
    /// than the one chosen at bind: on a host with several networks, each peer gets an address
    /// on its own. Any other daemon's URIs are the same from everywhere.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let uri = daemon.uri_for("greeter")?;
    /// assert_eq!(daemon.uri_seen_from(&uri, Some("127.0.0.2".parse().unwrap())), uri);
    /// # Ok(()) }
    /// ```
    pub fn uri_seen_from(&self, uri: &ObjectUri, peer: Option<IpAddr>) -> ObjectUri {
        if !self.shared.wildcard {
            return uri.clone();
        }
        let v6 = self.shared.local_addr.is_ipv6();
        let (ip, why) = crate::net::address_for_wildcard(peer, v6);
        if ip.is_loopback() {
            // The name server is on this host: what it hands out must still reach this host
            // from elsewhere, so the address chosen at bind (the default route's) stays.
            return uri.clone();
        }
        let endpoint = Endpoint::new(ip.to_string(), self.shared.local_addr.port());
        tracing::debug!(%endpoint, ?peer, "{why}");
        ObjectUri::new(uri.id(), endpoint)
            .expect("the id was valid")
            .with_tls(uri.tls())
    }

    /// Hosts an object whose instances `factory` makes: one per client connection, or one per
    /// call, as `instances` says (see [`Instances`](crate::Instances)). Returns its URI.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DuplicateObjectId`] only if the new random id is already in use, which in
    /// practice does not happen.
    pub fn register_factory<P, O>(
        &self,
        instances: crate::Instances,
        factory: impl Fn() -> O + Send + Sync + 'static,
    ) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        self.register_factory_with_id(new_object_id(), instances, factory)
    }

    /// [`register_factory`](Daemon::register_factory) under `id`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidObjectId`] if `id` is not a valid object id;
    /// [`ErrorKind::DuplicateObjectId`] if an object is already registered under it.
    pub fn register_factory_with_id<P, O>(
        &self,
        id: impl Into<String>,
        instances: crate::Instances,
        factory: impl Fn() -> O + Send + Sync + 'static,
    ) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        self.host(id.into(), Host::<P, O>::with_factory(instances, factory))
    }

    /// Stops hosting the object `id`; returns whether there was one. Calls already running
    /// on it finish; new ones get [`ErrorKind::UnknownObject`].
    ///
    /// ```
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// daemon.register_with_id("pinger", P)?;
    /// assert!(daemon.unregister("pinger"));
    /// assert!(!daemon.unregister("pinger"));
    /// # Ok(()) }
    /// ```
    pub fn unregister(&self, id: &str) -> bool {
        self.shared.objects.remove(id)
    }

    /// The URI that an object registered as `id` has on this daemon.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidObjectId`] if `id` is not a valid object id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let port = daemon.local_addr().port();
    /// assert_eq!(daemon.uri_for("x")?.to_string(), format!("rmi:x@127.0.0.1:{port}"));
    /// # Ok(()) }
    /// ```
    pub fn uri_for(&self, id: &str) -> Result<ObjectUri, Error> {
        let tls = self.shared.settings.tls.is_some();
        Ok(ObjectUri::new(id, self.shared.endpoint.clone())?.with_tls(tls))
    }

    /// The socket address the daemon listens on: with port 0, the port it picked.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// assert_ne!(daemon.local_addr().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// How many `#[oneway]` calls have failed on this daemon (their method panicked, or their
    /// arguments did not decode). Their callers never hear of it: this count, the hook set with
    /// [`DaemonBuilder::on_oneway_failure`] and the log are where such failures go.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// assert_eq!(daemon.oneway_failures(), 0);
    /// # Ok(()) }
    /// ```
    pub fn oneway_failures(&self) -> u64 {
        self.shared.settings.oneway.failures()
    }

    /// Serves calls until [`shutdown`](Daemon::shutdown), then waits for the calls in flight.
    /// Fails with [`ErrorKind::AlreadyServing`] if it is already serving; returns at once if the
    /// daemon was shut down.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyServing`] if another call to `serve` (or [`spawn`](Daemon::spawn)) is
    /// serving this daemon; failures to accept a connection are logged, not returned.
    ///
    /// ```
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let serving = tokio::spawn({
    ///     let daemon = daemon.clone();
    ///     async move { daemon.serve().await }
    /// });
    /// daemon.shutdown().await;
    /// serving.await.unwrap()?;
    /// # Ok(()) }
    /// ```
    pub async fn serve(&self) -> Result<(), Error> {
        let taken = self
            .shared
            .listener
            .lock()
            .expect("listener lock poisoned")
            .take();
        let Some(listener) = taken else {
            // Shut down before it served (the listener is closed): there is nothing to serve.
            if self.shared.stop.is_stopped() {
                return Ok(());
            }
            return Err(Error::new(ErrorKind::AlreadyServing));
        };
        tracing::info!(addr = %self.shared.local_addr, "daemon serving");
        loop {
            let accepted = tokio::select! {
                _ = self.shared.stop.stopped() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "connection accepted");
                    match Connected::count(&self.shared, peer.ip()) {
                        Ok(connected) => {
                            let slot = connected.1.clone();
                            self.shared.tasks.spawn(async move {
                                // A connection still unproven when a newcomer needs its place
                                // ends (`admission`): nothing it sent was a whole request.
                                tokio::select! {
                                    biased;
                                    () = slot.evicted() => {}
                                    () = serve_tcp(connected, stream, peer) => {}
                                }
                            });
                        }
                        Err(why) => refuse_busy(stream, peer, why),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    crate::throttle::warn_throttled!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        tracing::info!(addr = %self.shared.local_addr, "daemon stopped");
        Ok(())
    }

    /// How many client connections the daemon serves now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// assert_eq!(daemon.connections(), 0);
    /// # Ok(()) }
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.admission.open()
    }

    /// Runs [`serve`](Daemon::serve) in a background task.
    ///
    /// The daemon then serves until [`shutdown`](Daemon::shutdown) (or the end of the tokio
    /// runtime), whether or not handles to it remain: keep one to stop it. Awaiting the
    /// returned handle waits for the end of serving.
    ///
    /// ```
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let uri = daemon.register(P)?;
    /// daemon.spawn();
    /// PingProxy::connect(&uri).await?.ping().await?;
    /// daemon.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn spawn(&self) -> tokio::task::JoinHandle<Result<(), Error>> {
        let daemon = self.clone();
        tokio::spawn(async move { daemon.serve().await })
    }

    /// Stops the daemon within its grace period ([`DaemonBuilder::grace_period`], default
    /// 10 s), as [`shutdown_within`](Daemon::shutdown_within) does.
    ///
    /// ```
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let uri = daemon.register(P)?;
    /// daemon.spawn();
    /// let pinger = PingProxy::connect(&uri).await?;
    /// daemon.shutdown().await;
    /// // Nothing listens there now: the proxy cannot reconnect, and says so.
    /// assert!(pinger.ping().await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) {
        self.shutdown_within(self.shared.settings.grace_period)
            .await
    }

    /// Runs `task` in the background until the daemon stops (shutdown waits for it to end),
    /// or until aborted with the handle returned.
    pub(crate) fn spawn_until_stopped(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        let stop = self.shared.stop.clone();
        self.shared
            .tasks
            .spawn(async move {
                tokio::select! {
                    () = stop.stopped() => {}
                    () = task => {}
                }
            })
            .abort_handle()
    }

    /// Has shutdown await `step` first, before it stops anything (after the steps added
    /// before it): removing a name from its name server.
    pub(crate) fn before_stopping(&self, step: impl Future<Output = ()> + Send + 'static) {
        self.shared.lock_before_stopping().push(Box::pin(step));
    }

    /// Stops the daemon, letting calls in flight finish for at most `grace`:
    ///
    /// 1. removes its names from the name server, so no client is sent here any more;
    /// 2. stops accepting connections; a new call from a client fails at once with
    ///    [`ErrorKind::Stopping`], while calls that servers make as part of a call in flight
    ///    (a chain through this daemon, a re-entrant call A → B → A) are still served;
    /// 3. once no call is in flight, or `grace` has passed, closes: calls still running are
    ///    cancelled and their callers get [`ErrorKind::Cancelled`]; connections close once their
    ///    replies are written.
    ///
    /// Returns when all that is done. Proxies connected to it try to connect again on their
    /// next call, and get [`ErrorKind::Connect`] while nothing listens there.
    pub async fn shutdown_within(&self, grace: std::time::Duration) {
        let steps = std::mem::take(&mut *self.shared.lock_before_stopping());
        for step in steps {
            step.await;
        }
        self.stop_accepting();
        self.shared.calls.close();
        let grace = grace.min(crate::wire::MAX_TIMEOUT);
        if tokio::time::timeout(grace, self.shared.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period of {grace:?} over: cancelling the calls still running");
        }
        self.close().await;
    }

    /// Stops the daemon at once: what a second Ctrl-C asks. Calls still running are
    /// cancelled, and their callers told so ([`ErrorKind::Cancelled`]).
    pub async fn stop_now(&self) {
        self.stop_accepting();
        self.close().await;
    }

    /// The stop's first stage: no new connections, no new calls from clients.
    fn stop_accepting(&self) {
        self.shared.stop.stop();
        // A daemon never served closes its listener here; one serving closes it on stopping.
        drop(
            self.shared
                .listener
                .lock()
                .expect("listener lock poisoned")
                .take(),
        );
    }

    /// Ends reading, cancels the calls still running, and waits (briefly) for the connections
    /// to write their last replies and close.
    async fn close(&self) {
        self.shared.stop.close();
        self.shared.tasks.close();
        if tokio::time::timeout(CLOSE_TIMEOUT, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open {CLOSE_TIMEOUT:?} after the daemon closed: their clients do not read their replies; dropping them"
            );
            self.shared.stop.abandon();
            self.shared.tasks.wait().await;
        }
    }

    /// Serves until the process is asked to stop (SIGINT, that is Ctrl-C, or SIGTERM, what
    /// systemd and `docker stop` send), then shuts down within the grace period; a second
    /// signal stops at once. What a server's `main` ends with.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyServing`], as [`serve`](Daemon::serve), if the daemon is already
    /// serving.
    ///
    /// ```no_run
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # async fn run() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// daemon.register(P)?;
    /// daemon.serve_until_signal().await?; // returns after Ctrl-C or SIGTERM
    /// # Ok(()) }
    /// ```
    pub async fn serve_until_signal(&self) -> Result<(), Error> {
        let stopper = self.clone();
        let signals = tokio::spawn(async move {
            let signal = stop_signal().await;
            tracing::info!("{signal}: stopping (again to stop at once)");
            let graceful = stopper.clone();
            let stopping = tokio::spawn(async move { graceful.shutdown().await });
            let again = stop_signal().await;
            tracing::warn!("{again} again: stopping at once");
            stopper.stop_now().await;
            stopping.abort();
        });
        // `serve` returns once the daemon closed, after its names were removed.
        let served = self.serve().await;
        signals.abort();
        served
    }
}

/// How long closing waits for connections to write their last replies.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Completes on the first SIGINT or SIGTERM; says which.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The address a daemon listening on `local` writes into its URIs, and whether it listens
/// on a wildcard address with nothing advertised (then each name server gets the address
/// this host reaches it from).
fn advertised(advertise: Option<&str>, local: SocketAddr) -> Result<(Endpoint, bool), Error> {
    if let Some(text) = advertise {
        let endpoint = Endpoint::parse_or_port(text, local.port()).map_err(|e| {
            Error::new(ErrorKind::Listen {
                addr: local.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("cannot advertise {text:?}: {e}"),
                ),
            })
        })?;
        return Ok((endpoint, false));
    }
    if !local.ip().is_unspecified() {
        return Ok((Endpoint::from(local), false));
    }
    let (ip, why) = crate::net::address_for_wildcard(None, local.is_ipv6());
    let endpoint = Endpoint::new(ip.to_string(), local.port());
    tracing::info!(
        "daemon listens on {local} (every address); its URIs name {endpoint}, {why}; set RMI_ADVERTISE or --advertise to name another"
    );
    Ok((endpoint, true))
}

/// A connection counted among the daemon's, and its client address's, until dropped.
struct Connected(Arc<DaemonState>, Arc<admission::Slot>);

impl Connected {
    /// Counts one more connection from `peer`, in the place of an unproven one if the daemon
    /// serves as many as it may in all or from that address; else why not.
    fn count(shared: &Arc<DaemonState>, peer: IpAddr) -> Result<Connected, String> {
        let settings = &shared.settings;
        let max_all = settings.max_connections;
        let max_per_address = settings.max_connections_per_address;
        match shared.admission.admit(peer, max_all, max_per_address) {
            Ok(slot) => {
                shared.meters.accepted.increment(1);
                shared.meters.open.increment(1.0);
                Ok(Connected(shared.clone(), slot))
            }
            Err(admission::Full(why, cap)) => {
                crate::meters::DaemonMeters::refused(cap);
                Err(why)
            }
        }
    }

    /// The connection sent a complete request: it keeps its place from now on.
    fn prove(&self) {
        self.1.prove();
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.meters.open.decrement(1.0);
        self.0.admission.close(&self.1);
    }
}

/// How long a refused connection is watched for a Pyro5 client's first bytes (Pyro5 clients
/// speak first, at once), before it is told in rmi's words.
const PYRO5_LOOK: std::time::Duration = std::time::Duration::from_millis(100);

/// Tells a client over the connection limit so, in a task of its own, and closes: in Pyro5's
/// protocol (a `CONNECTFAIL`) if it speaks first with `PYRO`, else in rmi's hello.
fn refuse_busy(mut stream: TcpStream, peer: SocketAddr, why: String) {
    crate::throttle::warn_throttled!(%peer, "connection refused: {why}");
    tokio::spawn(async move {
        let telling = async {
            let mut first = [0u8; 4];
            let peeked = tokio::time::timeout(PYRO5_LOOK, stream.peek(&mut first)).await;
            if matches!(peeked, Ok(Ok(4))) && first == crate::pyro_wire::TAG {
                pyro::refuse(&mut stream, &why).await;
            } else {
                let _ = handshake::refuse_busy(&mut stream).await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), telling).await;
    });
}

/// Runs the handshake: whether the client may call.
async fn admit<S>(shared: &DaemonState, stream: &mut S, peer: SocketAddr) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = &shared.settings;
    let handshake = handshake::accept(stream, settings.key.as_ref(), settings.max_frame_bytes);
    let refusal = tokio::select! {
        _ = shared.stop.stopped() => return false,
        outcome = tokio::time::timeout(settings.handshake_timeout, handshake) => match outcome {
            Ok(Ok(())) => return true,
            Ok(Err(refusal)) => refusal.to_string(),
            Err(_) => format!("no handshake within {:?}", settings.handshake_timeout),
        },
    };
    crate::throttle::warn_throttled!(%peer, "connection refused: {}", crate::throttle::one_line(&refusal));
    crate::meters::DaemonMeters::refused("handshake");
    false
}

/// The first byte of every TLS connection: a handshake record (RFC 8446, 5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves one TCP connection: over TLS if the daemon speaks it.
async fn serve_tcp(connected: Connected, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    crate::net::watch_peer(&stream);
    match &connected.0.settings.tls {
        None => serve_io(&connected, stream, peer, false).await,
        // Boxed: a TLS connection's state is several times a plain one's, and a future is as
        // large as its largest branch, so every plain connection would carry its room.
        Some(tls) => Box::pin(serve_tls(&connected, tls, stream, peer)).await,
    }
}

/// Serves one TCP connection over TLS, after its handshake.
async fn serve_tls(
    connected: &Connected,
    tls: &crate::security::tls::ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let shared = &connected.0;
    let timeout = shared.settings.handshake_timeout;
    let accepting = async {
        // A plain client (rmi's `RMI` 0x01, Pyro5's `PYRO`) is let go at once, not left
        // waiting for a TLS record that never completes: it is told the connection closed
        // before the hello, which suggests TLS.
        let mut first = [0u8; 1];
        stream.peek(&mut first).await?;
        if first[0] != TLS_HANDSHAKE_RECORD {
            return Err(std::io::Error::other(format!(
                "it speaks plainly (it began with {:02x?}) to a TLS daemon; its client needs the daemon's rmis: URI and the CA (RMI_TLS_CA)",
                first[0]
            )));
        }
        tls.0.accept(stream).await
    };
    let refusal = tokio::select! {
        _ = shared.stop.stopped() => return,
        accepted = tokio::time::timeout(timeout, accepting) => match accepted {
            Ok(Ok(stream)) => return serve_io(connected, stream, peer, true).await,
            Ok(Err(e)) => format!("the TLS handshake failed: {e}"),
            Err(_) => format!("no TLS handshake within {timeout:?}"),
        },
    };
    crate::throttle::warn_throttled!(%peer, "connection refused: {}", crate::throttle::one_line(&refusal));
}

/// Reads what the client speaks from its first bytes, within the handshake timeout, and
/// the stream to read on from; `None` (the connection is let go) if it left, said nothing in
/// time, or speaks neither rmi nor Pyro5.
async fn opening<S>(
    shared: &DaemonState,
    stream: S,
    peer: SocketAddr,
) -> Option<(Opening, reading::Rewound<S>)>
where
    S: AsyncRead + Unpin,
{
    let timeout = shared.settings.handshake_timeout;
    let refusal = tokio::select! {
        _ = shared.stop.stopped() => return None,
        read = tokio::time::timeout(timeout, reading::Rewound::read_opening(stream)) => match read {
            Ok(Ok((first, stream))) => match Opening::of(first) {
                Opening::Unknown(first) if first[0] == TLS_HANDSHAKE_RECORD => {
                    "it speaks TLS, which this daemon does not (give the daemon a certificate, or the client the daemon's rmi: URI)".to_owned()
                }
                Opening::Unknown(first) => format!(
                    "it speaks neither rmi nor Pyro5 (it began with {first:02x?})"
                ),
                opening => return Some((opening, stream)),
            },
            // A port scan or a health check: routine.
            Ok(Err(e)) => {
                tracing::debug!(%peer, "connection closed before its first bytes: {e}");
                return None;
            }
            Err(_) => format!("it sent nothing within {timeout:?}"),
        },
    };
    crate::throttle::warn_throttled!(%peer, "connection refused: {refusal}");
    None
}

/// How long the daemon's clients may take, as it reads them.
fn read_limits(settings: &Settings) -> reading::ReadLimits {
    reading::ReadLimits {
        idle: settings.idle_timeout,
        first_frame: settings.first_request_timeout,
        frame: settings.request_timeout,
    }
}

/// A new session for a connection of this daemon.
fn new_session(shared: &DaemonState, peer: SocketAddr) -> crate::session::Session {
    let settings = &shared.settings;
    crate::session::Session::new(
        settings.max_calls_in_flight,
        wire::payload_limit(settings.max_frame_bytes),
        shared.stop.clone(),
        shared.calls.clone(),
        settings.oneway.clone(),
        peer,
    )
}

/// Serves one connection: an rmi client's calls after its handshake, or a Pyro5 client's
/// (`pyro`). `secure` says the connection is TLS.
async fn serve_io<S>(connected: &Connected, stream: S, peer: SocketAddr, secure: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = &connected.0;
    let mut stream = match opening(shared, stream, peer).await {
        Some((Opening::Rmi, stream)) => stream,
        Some((Opening::Pyro5, stream)) => {
            return pyro::serve(connected, stream, peer, secure).await
        }
        Some((Opening::Unknown(_), _)) | None => return,
    };
    let settings = &shared.settings;
    // A client that sent its first request behind its opening waits for no hello: without a
    // key to prove, the hello goes out with the first reply, in one write.
    let hello_with_reply = settings.key.is_none() && stream.has_read_ahead();
    if !hello_with_reply && !admit(shared, &mut stream, peer).await {
        return;
    }
    // On shutdown (or after the idle timeout) the stream reads as closed (`StopReading`):
    // `connection::serve_calls` stops reading requests, writes the replies of those in flight,
    // then ends. The instances made for this connection (`Instances::PerConnection`) are
    // the session's, dropped with it.
    let mut session = new_session(shared, peer);
    let limits = read_limits(settings);
    let room = session.connection.clone();
    let place = (peer, connected.1.clone(), shared.watchdog.alarm());
    let counted = (shared.meters.received.clone(), shared.meters.sent.clone());
    let stream = reading::StopReading::new(stream, &shared.stop, limits, room, place, counted);
    let mut transport = transport::Transport::new(stream, settings.max_frame_bytes);
    if hello_with_reply {
        transport.queue_first(&handshake::keyless_hello(settings.max_frame_bytes));
    }
    // A call that finishes without waiting is answered right here; one that waits runs in a
    // task of its own, tracked in `shared.calls` (see `ConnectionState::run_call`).
    // Once the daemon gives up on connections that do not take their last replies, the
    // connection is dropped with them.
    let served = tokio::select! {
        biased;
        served = connection::serve_calls(transport, &shared.objects, &mut session) => served,
        () = shared.stop.abandoned_owned() => Ok(()),
    };
    match served {
        Ok(()) => {}
        Err(e) if client_went_away(&e) => {
            tracing::debug!("connection ended: {}", crate::error::error_chain(&e));
        }
        Err(e) => {
            let why = crate::throttle::one_line(&crate::error::error_chain(&e));
            crate::throttle::warn_throttled!(%peer, "connection dropped: {why}");
        }
    }
}

/// Whether a connection's error is only its client leaving without a goodbye (killed, or
/// its network gone): routine for a server, not worth a warning.
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut next = Some(error);
    while let Some(e) = next {
        // An error shared in an `Arc` (as tarpc's transports hold it) is looked into too.
        let io = e
            .downcast_ref::<std::io::Error>()
            .or_else(|| e.downcast_ref::<Arc<std::io::Error>>().map(|io| &**io));
        next = match io {
            Some(io)
                if matches!(
                    io.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                ) =>
            {
                return true
            }
            // The codec wraps the socket's error in one of kind `Other`: look inside.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

/// A fresh object id: `obj_` and 32 random hex digits, what [`Daemon::register`] uses.
///
/// ```
/// let id = rmi::new_object_id();
/// assert!(id.starts_with("obj_") && id.len() == 36);
/// ```
pub fn new_object_id() -> String {
    format!("obj_{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_that_left_is_told_from_a_broken_connection() {
        use std::io::{Error, ErrorKind};
        use std::sync::Arc;
        let reset = Error::from(ErrorKind::ConnectionReset);
        assert!(super::client_went_away(&reset));
        // As tarpc wraps it: the transport's error shared in an `Arc`.
        #[derive(Debug, thiserror::Error)]
        #[error("could not read from the transport")]
        struct Read(#[source] Arc<Error>);
        assert!(super::client_went_away(&Read(Arc::new(reset))));
        let too_big = Read(Arc::new(Error::new(
            ErrorKind::InvalidData,
            "frame too big",
        )));
        assert!(!super::client_went_away(&too_big));
        // As the codec wraps the socket's error.
        let wrapped = Error::other(Error::from(ErrorKind::ConnectionReset));
        assert!(super::client_went_away(&Read(Arc::new(wrapped))));
    }

    #[test]
    fn object_ids_are_obj_and_32_hex_digits() {
        let id = super::new_object_id();
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("obj_"));
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, super::new_object_id());
    }
}
