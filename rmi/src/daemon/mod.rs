//! The daemon: a TCP listener hosting many objects, each under an id.
//!
//! Each accepted connection runs in its own task, and each call in its own task (so one slow
//! or re-entrant call never holds up another). The object table is read on every call and
//! written only on (un)registration, so it is an [`ArcSwap`]: readers never lock.

mod builder;
pub(crate) mod builtin;
mod names;
mod objects;
mod stop;

pub(crate) use stop::Stop;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::task::TaskTracker;

use crate::dispatch::{Expose, Host, Hosted};
use crate::nameserver::{NameServerProxy, RegisterOptions};
use crate::proxy::Proxy;
use crate::security::handshake;
use crate::uri::{Endpoint, ObjectUri};
use crate::wire;
use crate::Error;
use builder::Settings;
pub use builder::{DaemonBuilder, DEFAULT_HANDSHAKE_TIMEOUT};
use objects::Objects;

/// The id of the object every daemon hosts about itself (its objects, binding, ping).
pub const DAEMON_OBJECT_ID: &str = "rmi.daemon";

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
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    settings: Settings,
    /// Connections being served (past their handshake or in it).
    connections: AtomicUsize,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    listener: Mutex<Option<TcpListener>>,
    objects: Objects,
    names: names::Names,
    stop: stop::Stop,
    tasks: TaskTracker,
}

impl Daemon {
    /// Listens on `addr`, such as `"127.0.0.1:0"` or a `SocketAddr` (port 0 picks a free
    /// port). URIs name the address actually bound. Clients must prove the key in the file
    /// `RMI_KEY_FILE` names, if it is set; [`Daemon::builder`] sets a key and limits.
    pub async fn bind(addr: impl ToSocketAddrs + std::fmt::Display) -> Result<Daemon, Error> {
        Daemon::builder().bind(addr).await
    }

    /// Sets up a daemon before it listens: its key, its limits.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::new()
    }

    async fn listen(
        addr: impl ToSocketAddrs + std::fmt::Display,
        settings: Settings,
    ) -> Result<Daemon, Error> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen {
                addr: shown.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: shown,
            source,
        })?;
        if local_addr.ip().is_unspecified() {
            tracing::warn!(
                "daemon bound to {local_addr}: its URIs name {local_addr}, which remote clients cannot reach; bind a concrete address"
            );
        }
        let shared = Arc::new(Shared {
            settings,
            connections: AtomicUsize::new(0),
            endpoint: Endpoint::from(local_addr),
            local_addr,
            listener: Mutex::new(Some(listener)),
            objects: Objects::default(),
            names: names::Names::default(),
            stop: stop::Stop::new(),
            tasks: TaskTracker::new(),
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
    fn host(&self, id: String, host: impl Hosted + 'static) -> Result<ObjectUri, Error> {
        let uri = self.uri_for(&id)?;
        let trait_name = host.descriptor().name.clone();
        self.shared.objects.insert(uri.id(), Arc::new(host))?;
        tracing::debug!(%uri, %trait_name, "registered");
        Ok(uri)
    }

    /// Hosts `object` and registers it in the name server `ns` as `name`, as `options` say.
    /// With a lease (`options.ttl`), the daemon renews it in the background, and registers
    /// the name again if the name server lost it; if this process dies, the name disappears
    /// within the lease. [`shutdown`](Daemon::shutdown) removes the name.
    ///
    /// ```no_run
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # async fn run() -> Result<(), rmi::Error> {
    /// use std::time::Duration;
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let ns = rmi::locate_ns().await?;
    /// let options = rmi::RegisterOptions::default().ttl(Duration::from_secs(10));
    /// let uri = daemon.register_named(&ns, "pinger", P, options).await?;
    /// daemon.serve().await?; // renews the lease until shut down
    /// # Ok(()) }
    /// ```
    pub async fn register_named<P, O>(
        &self,
        ns: &NameServerProxy,
        name: &str,
        object: O,
        options: RegisterOptions,
    ) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        let uri = self.register::<P, O>(object)?;
        let registered = names::register(ns, name, &uri, &options).await;
        if let Err(e) = registered {
            self.unregister(uri.id());
            return Err(e);
        }
        let named = names::Named {
            ns: ns.clone(),
            name: name.to_owned(),
            uri: uri.clone(),
            options,
        };
        if named.options.ttl.is_some() {
            self.shared.tasks.spawn(names::renew_until_stopped(
                named.clone(),
                self.shared.stop.clone(),
            ));
        }
        self.shared.names.add(named);
        Ok(uri)
    }

    /// Hosts an object whose instances `factory` makes: one per client connection, or one per
    /// call, as `instances` says (see [`Instances`](crate::Instances)). Returns its URI.
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
        self.host(
            new_object_id(),
            Host::<P, O>::with_factory(instances, factory),
        )
    }

    /// Stops hosting the object `id`; returns whether there was one. Calls already running
    /// on it finish; new ones get [`Error::UnknownObject`].
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

    /// Serves calls until [`shutdown`](Daemon::shutdown), then waits for the calls in flight.
    /// Fails with [`Error::AlreadyServing`] if it is already serving; returns at once if the
    /// daemon was shut down.
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
            return Err(Error::AlreadyServing);
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
                    match Connected::count(&self.shared) {
                        Some(connected) => {
                            self.shared
                                .tasks
                                .spawn(serve_connection(connected, stream, peer));
                        }
                        None => refuse_busy(&self.shared, stream, peer),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
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
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Runs [`serve`](Daemon::serve) in a background task.
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

    /// Stops accepting connections and calls, lets the calls in flight finish and returns
    /// when they have. Proxies connected to it try to connect again on their next call, and
    /// get [`Error::Connect`] while nothing listens there ([`Error::Disconnected`] if the call
    /// went out before they noticed the connection was closed).
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
        // Names first, so that no client is sent here while the daemon stops.
        self.shared.names.remove_all().await;
        self.shared.stop.stop();
        // A daemon never served closes its listener here; one serving closes it on stopping.
        drop(
            self.shared
                .listener
                .lock()
                .expect("listener lock poisoned")
                .take(),
        );
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

/// A connection counted among the daemon's, until dropped.
struct Connected(Arc<Shared>);

impl Connected {
    /// Counts one more connection, unless the daemon serves as many as it may.
    fn count(shared: &Arc<Shared>) -> Option<Connected> {
        let limit = shared.settings.max_connections;
        shared
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Connected(shared.clone()))
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells a client over the connection limit so, in a task of its own, and closes.
fn refuse_busy(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) {
    let limit = shared.settings.max_connections;
    tracing::warn!(%peer, "connection refused: {limit} connections served already, the most allowed");
    tokio::spawn(async move {
        let told = handshake::refuse_busy(&mut stream);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), told).await;
    });
}

/// Runs the handshake: whether the client may call.
async fn admit<S>(shared: &Shared, stream: &mut S, peer: SocketAddr) -> bool
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
    tracing::warn!(%peer, "connection refused: {refusal}");
    false
}

async fn serve_connection(connected: Connected, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let shared = &connected.0;
    let Some(tls) = &shared.settings.tls else {
        return serve_stream(&connected, stream, peer).await;
    };
    let timeout = shared.settings.handshake_timeout;
    let refusal = tokio::select! {
        _ = shared.stop.stopped() => return,
        accepted = tokio::time::timeout(timeout, tls.0.accept(stream)) => match accepted {
            Ok(Ok(stream)) => return serve_stream(&connected, stream, peer).await,
            Ok(Err(e)) => format!("the TLS handshake failed: {e}"),
            Err(_) => format!("no TLS handshake within {timeout:?}"),
        },
    };
    tracing::warn!(%peer, "connection refused: {refusal}");
}

/// Serves the calls of one connection, after its handshake.
async fn serve_stream<S>(connected: &Connected, mut stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = &connected.0;
    if !admit(shared, &mut stream, peer).await {
        return;
    }
    let settings = &shared.settings;
    // On shutdown (or after the idle timeout) the stream reads as closed: tarpc stops taking
    // requests, sends the replies of those in flight, then ends.
    let stream = stop::StopReading::new(stream, &shared.stop, settings.idle_timeout);
    let framed = wire::framed(stream, settings.max_frame_bytes);
    let transport = tarpc::serde_transport::new(framed, wire::ServerCodec::default());
    let mut requests = BaseChannel::with_defaults(transport).requests();
    // The instances made for this connection (`Instances::PerConnection`), dropped with it.
    let max_payload = wire::payload_limit(settings.max_frame_bytes);
    let stop = shared.stop.clone();
    let mut session =
        crate::dispatch::Session::new(settings.max_calls_in_flight, max_payload, stop);
    // Each call runs in a task of its own, spawned by its object, untracked: the channel ends
    // only after the replies of all its calls in flight are written, so waiting for the
    // connection tasks waits for the calls too.
    while let Some(request) = requests.next().await {
        match request {
            Ok(request) => shared.objects.execute(request, &mut session),
            Err(e) if client_went_away(&e) => {
                tracing::debug!("connection ended: {}", crate::proxy::error_chain(&e));
                break;
            }
            Err(e) => {
                tracing::warn!("connection dropped: {}", crate::proxy::error_chain(&e));
                break;
            }
        }
    }
}

/// Whether a connection's error is only its client leaving without a goodbye (killed, or
/// its network gone): routine for a server, not worth a warning.
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut next = Some(error);
    while let Some(e) = next {
        // tarpc holds the transport's error in an `Arc`, which is its own error type.
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

fn new_object_id() -> String {
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
