//! Binding: resolving a URI, connecting to its daemon, and asking the daemon for the object's
//! handle and trait, then matching the client's methods to the server's.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::ProxyCore;
use crate::channel::{Channel, Failure, Hello};
use crate::client::ClientConfig;
use crate::describe::{BindError, Binding, MethodDescriptor, TraitDescriptor};
use crate::pyro5::{Metadata, Pyro5Channel, Refused};
use crate::pyro_values::{plain, python_name};
use crate::security::handshake;
use crate::uri::{Endpoint, ObjectUri, Uri};
use crate::wire::{self, Invoke, DAEMON_HANDLE, DAEMON_OBJECT_ID};
use crate::{Error, ErrorKind};
use rmi_serpent::Value;

/// What binding needs from the layers above the client: resolving names and tags (the name
/// server, a feature) and calling a daemon's own object (a server's). Both are rmi calls the
/// client makes itself. The features layer passes one in wherever a proxy is made
/// (`nameserver::connect`), so that the client imports neither.
pub(crate) trait Directory: Send + Sync + 'static {
    /// The object `uri` (a `rminame:` or `rmimeta:` URI) means, found within `timeout`.
    fn resolve<'a>(
        &'a self,
        uri: &'a Uri,
        config: &'a Arc<ClientConfig>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ObjectUri, Error>>;

    /// The trait of every daemon's own object.
    fn daemon_trait(&self) -> &'static TraitDescriptor;

    /// Asks `daemon`, a core over a daemon's own object, for its object `id`: one serving
    /// `trait_name` when given (a typed proxy binds), else whatever it serves.
    fn bind(
        &self,
        daemon: ProxyCore,
        id: String,
        trait_name: Option<String>,
    ) -> BoxFuture<'static, Result<Result<Binding, BindError>, Error>>;
}

/// What is left until `deadline` (nothing once it passed).
pub(crate) fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Where a local method goes on the server.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// The server's index of the method.
    To(u32),
    /// The server's trait has no method of that name.
    Missing,
    /// The server's method has other types; its signature.
    Mismatch(String),
}

/// What a proxy binds as.
#[derive(Clone, Debug)]
pub(crate) enum Binder {
    /// A typed proxy of this trait: the object must serve it.
    Typed(&'static TraitDescriptor),
    /// Any trait: the proxy takes the server's descriptor (calls without Rust types).
    Any,
}

/// The first pause before connecting again to a daemon at its connection limit; each next
/// one is twice as long, up to [`FULL_LONGEST_PAUSE`].
const FULL_FIRST_PAUSE: Duration = Duration::from_millis(20);
const FULL_LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// How far opening a connection got.
#[derive(Clone, Copy)]
enum Phase {
    Tcp,
    Tls,
    Hello,
}

impl From<u8> for Phase {
    fn from(phase: u8) -> Phase {
        match phase {
            0 => Phase::Tcp,
            1 => Phase::Tls,
            _ => Phase::Hello,
        }
    }
}

impl Phase {
    /// Why opening got no further than this phase within `timeout`, with what to check.
    fn silence(self, timeout: Duration) -> String {
        match self {
            Phase::Tcp => format!(
                "no answer within {timeout:?}: the host may be down or unreachable, or a firewall drops the packets"
            ),
            Phase::Tls => format!(
                "the TLS handshake got no answer within {timeout:?}: the daemon may not speak TLS (a plain daemon's URI is rmi:, not rmis:)"
            ),
            Phase::Hello => format!(
                "it accepted the connection but sent no hello within {timeout:?}: if it is a TLS daemon, connect with its rmis: URI and give the client the CA that signed its certificate (RMI_TLS_CA); else it may not be an rmi daemon, or be overloaded"
            ),
        }
    }
}

/// A connection to one daemon.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    pub(crate) transport: Transport,
    /// This side's address of the connection: one the daemon can reach this host at.
    pub(crate) local: Option<std::net::SocketAddr>,
}

/// What a connection speaks.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    /// rmi's protocol: one TCP stream carrying many calls at once.
    Rmi(Channel),
    /// Pyro5's, to one Pyro5 object (`PYRO:`): its calls take turns.
    Pyro5 {
        channel: Arc<Pyro5Channel>,
        /// The object's methods that the proxy's methods call (`Route::To` indexes them).
        methods: Arc<[Pyro5Method]>,
    },
}

/// A method of a Pyro5 object, as a proxy calls it.
#[derive(Debug)]
pub(crate) struct Pyro5Method {
    /// Its name in Python.
    name: String,
    /// Whether the call returns once sent (Python's `@oneway`, or the trait's `#[oneway]`).
    oneway: bool,
    /// For a method declared `-> Result<T, E>`, the name of `E` as Python names a class (its
    /// last path segment): Python returns `T`, and raises `E` as an rmi daemon does.
    error_type: Option<String>,
}

impl Pyro5Method {
    /// The result of a call, as the proxy's method declares it: `T`, or `Ok(T)` and `Err(E)`
    /// (`E` raised as an rmi daemon raises a method's error to Pyro5 clients).
    fn result(&self, outcome: Result<Value, Failure>) -> Result<Value, Failure> {
        let Some(error_type) = &self.error_type else {
            return outcome.map(plain);
        };
        let tagged = |tag: &str, value| Value::Dict(vec![(tag.into(), plain(value))]);
        match outcome {
            Ok(value) => Ok(tagged("Ok", value)),
            Err(Failure::Raised(raised)) => match raised.error {
                Some((raised_type, value)) if raised_type == *error_type => {
                    Ok(tagged("Err", value))
                }
                _ => Err(Failure::Raised(raised)),
            },
            Err(failure) => Err(failure),
        }
    }
}

impl Connection {
    /// Connects to the daemon of `object` (over TLS if `config` says so) and runs the
    /// handshake, within `timeout` and the config's connect timeout. A daemon at its
    /// connection limit is tried again, after pauses that grow (with jitter, so that refused
    /// clients do not come back all at once), for as long as the timeout lets it, as gRPC
    /// clients retry UNAVAILABLE.
    pub(crate) async fn open(
        object: &ObjectUri,
        timeout: Duration,
        config: &ClientConfig,
    ) -> Result<Self, Error> {
        let timeout = timeout.min(config.connect_timeout);
        let give_up = Instant::now() + timeout;
        let mut pause = FULL_FIRST_PAUSE;
        loop {
            match Connection::open_once(object, left(give_up), config).await {
                Err(e) if handshake::is_full(&e) => {
                    let jittered = pause.mul_f64(rand::random_range(0.5..=1.0));
                    if left(give_up) <= jittered {
                        return Err(e);
                    }
                    tracing::debug!(%object, "the daemon is full; trying again in {jittered:?}");
                    tokio::time::sleep(jittered).await;
                    pause = (pause * 2).min(FULL_LONGEST_PAUSE);
                }
                opened => return opened,
            }
        }
    }

    /// One try of [`open`](Connection::open), within `timeout`.
    async fn open_once(
        object: &ObjectUri,
        timeout: Duration,
        config: &ClientConfig,
    ) -> Result<Self, Error> {
        let endpoint = object.endpoint();
        let connect_error = |reason: String, cause: Option<crate::error::Cause>| {
            Error::new(ErrorKind::Connect {
                endpoint: endpoint.to_string(),
                reason,
                cause,
            })
        };
        if object.tls() && config.tls.is_none() {
            return Err(connect_error(
                "its URI (rmis:) says the daemon speaks TLS; give the client the CA that signed the daemon's certificate (RMI_TLS_CA, or ClientConfig::tls)".into(),
                None,
            ));
        }
        // How far opening got, for the error if the timeout ends it.
        let reached = AtomicU8::new(Phase::Tcp as u8);
        let opening = async {
            let (stream, local) = connect_tcp(endpoint).await?;
            // The URI's scheme says whether the daemon speaks TLS (`rmis:`); a client with a
            // CA still speaks plain rmi to a `rmi:` daemon.
            let channel = match (&config.tls, object.tls()) {
                (Some(tls), true) => {
                    reached.store(Phase::Tls as u8, Ordering::Relaxed);
                    let mut stream = tls.connect(stream, endpoint).await?;
                    reached.store(Phase::Hello as u8, Ordering::Relaxed);
                    let hello = Connection::hello(&mut stream, config, endpoint).await?;
                    let (read, write) = tokio::io::split(stream);
                    Transport::Rmi(Channel::new(read, write, config.max_frame_bytes, hello))
                }
                _ => {
                    reached.store(Phase::Hello as u8, Ordering::Relaxed);
                    let mut stream = stream;
                    let hello = Connection::hello(&mut stream, config, endpoint).await?;
                    let (read, write) = stream.into_split();
                    Transport::Rmi(Channel::new(read, write, config.max_frame_bytes, hello))
                }
            };
            Ok(Connection {
                transport: channel,
                local,
            })
        };
        let opened = tokio::time::timeout(timeout, opening).await;
        opened.map_err(|_| {
            let reason = Phase::from(reached.load(Ordering::Relaxed)).silence(timeout);
            connect_error(reason, None)
        })?
    }

    /// Runs the handshake, or, for a client without a key at a daemon that took none before,
    /// leaves the hello to be read with the first reply: the first request then goes out at
    /// once, not a round of waking later.
    async fn hello<S>(
        stream: &mut S,
        config: &ClientConfig,
        endpoint: &Endpoint,
    ) -> Result<Hello, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        if config.key.is_none() && super::bindings::takes_no_key(endpoint) {
            return Ok(Hello::Pending(endpoint.clone()));
        }
        let max_frame = handshake::connect(stream, config.key.as_ref(), endpoint).await?;
        if config.key.is_none() {
            super::bindings::remember_no_key(endpoint);
        }
        Ok(Hello::Read(max_frame))
    }

    /// The largest frame the daemon reads, once known (an rmi daemon says it in its hello).
    pub(crate) fn max_frame(&self) -> Option<usize> {
        match &self.transport {
            Transport::Rmi(channel) => channel.max_frame(),
            Transport::Pyro5 { channel, .. } => Some(channel.max_frame()),
        }
    }

    /// The largest arguments the daemon takes; before its hello is read, the most any daemon
    /// takes.
    pub(crate) fn max_payload(&self) -> usize {
        wire::payload_limit(self.max_frame().unwrap_or(wire::SMALLEST_FRAME_BYTES))
    }

    /// The largest arguments the daemon takes, waiting at most `timeout` for its hello if it
    /// is not read yet (a connection's first request goes out before the hello is read).
    pub(crate) async fn learn_max_payload(&self, timeout: Duration) -> usize {
        if let Transport::Rmi(channel) = &self.transport {
            if channel.max_frame().is_none() {
                let _ = tokio::time::timeout(timeout, channel.hello()).await;
            }
        }
        self.max_payload()
    }

    /// Whether the connection has ended: calls on it cannot succeed.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.transport {
            Transport::Rmi(channel) => channel.is_closed(),
            Transport::Pyro5 { channel, .. } => channel.is_closed(),
        }
    }

    /// Whether the connection is to a Pyro5 object.
    pub(crate) fn is_pyro5(&self) -> bool {
        matches!(self.transport, Transport::Pyro5 { .. })
    }
}

/// Connects to `endpoint`: the stream and this side's address of it.
async fn connect_tcp(
    endpoint: &Endpoint,
) -> Result<(tokio::net::TcpStream, Option<std::net::SocketAddr>), Error> {
    let stream = tokio::net::TcpStream::connect(endpoint.connect_target())
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Connect {
                endpoint: endpoint.to_string(),
                reason: format!("{e}{}", crate::error::DAEMON_ADVICE),
                cause: crate::error::cause(e),
            })
        })?;
    // Small request/reply frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    crate::net::watch_peer(&stream);
    let local = stream.local_addr().ok();
    Ok((stream, local))
}

/// One object bound on one connection.
pub(crate) struct Bound {
    pub(crate) uri: ObjectUri,
    pub(crate) uri_text: String,
    pub(crate) connection: Connection,
    pub(crate) handle: u64,
    pub(crate) descriptor: Cow<'static, TraitDescriptor>,
    pub(crate) routes: Box<[Route]>,
    /// Set when the daemon no longer knows the handle: the next call binds again.
    pub(crate) stale: AtomicBool,
    /// Set while the handle is a remembered one (`bindings`) that no reply has confirmed:
    /// a call refused as `UnknownObject` then binds and is sent again.
    pub(crate) remembered: AtomicBool,
}

impl Bound {
    /// Sends `Invoke { handle, method, format, args }` on this binding's connection, with a
    /// deadline `timeout` away, or sooner: a call made while serving one inherits what is
    /// left of its deadline (`serving::for_call`). A transport error comes with how long was
    /// waited. Every call a proxy or a stream makes is sent here.
    pub(crate) async fn request(
        &self,
        handle: u64,
        method: u32,
        format: wire::Format,
        args: wire::Payload,
        timeout: Duration,
    ) -> Result<wire::Reply, (Failure, Duration)> {
        let (context, waited) = crate::serving::for_call(timeout);
        let channel = match &self.connection.transport {
            Transport::Rmi(channel) => channel,
            Transport::Pyro5 { channel, methods } => {
                // Streams are rmi's: a Pyro5 object has none to pull from or push to.
                let method = (handle != wire::STREAMS_HANDLE).then_some(method as usize);
                let called = (&**channel, method.and_then(|method| methods.get(method)));
                return self
                    .request_pyro5(called, format, args, context.deadline)
                    .await
                    .map_err(|e| (e, waited));
            }
        };
        let invoke = Invoke {
            handle,
            method,
            format,
            args,
        };
        channel.call(context, invoke).await.map_err(|e| (e, waited))
    }

    /// Calls `method` of this binding's Pyro5 object with `args` (in `format`) on `channel`
    /// by `deadline`: its result in `format`.
    async fn request_pyro5(
        &self,
        (channel, method): (&Pyro5Channel, Option<&Pyro5Method>),
        format: wire::Format,
        args: wire::Payload,
        deadline: Instant,
    ) -> Result<wire::Reply, Failure> {
        let Some(method) = method else {
            return Ok(Err(wire::Fault::UnknownStream));
        };
        let args = match format.decode::<Value>(&args.contiguous()) {
            // A method of no parameters takes `()`, which MessagePack writes as nil.
            Ok(Value::None) => Vec::new(),
            Ok(Value::List(args) | Value::Tuple(args)) => args,
            Ok(other) => vec![other],
            Err(e) => return Err(Failure::Unreadable(e.to_string())),
        };
        let id = self.uri.id();
        let outcome = channel
            .call(id, &method.name, args, method.oneway, deadline)
            .await;
        format
            .encode(&method.result(outcome)?)
            .map(Ok)
            .map_err(|e| Failure::Unreadable(e.to_string()))
    }

    /// Whether calls need a new binding: the connection ended, or the handle went stale.
    pub(crate) fn is_broken(&self) -> bool {
        self.connection.is_closed() || self.stale.load(Ordering::Acquire)
    }

    /// Resolves `uri`, connects to its daemon and binds the object there, by `deadline`.
    /// Each step is bounded by what is left of it (the connection also by the config's
    /// connect timeout), so no step needs a timer of its own around it.
    pub(crate) async fn bind(
        uri: &Uri,
        binder: &Binder,
        deadline: Instant,
        config: &Arc<ClientConfig>,
        directory: &'static dyn Directory,
    ) -> Result<Bound, Error> {
        let object = match uri {
            Uri::Object(object) => object.clone(),
            name => directory.resolve(name, config, left(deadline)).await?,
        };
        if object.is_pyro5() {
            return Bound::bind_pyro5(object, binder, deadline, config).await;
        }
        let connection = Connection::open(&object, left(deadline), config).await?;
        let daemon_trait = directory.daemon_trait();
        if object.id() == DAEMON_OBJECT_ID {
            // The daemon's own object needs no binding, but a proxy of another trait is as
            // wrong for it as for any object.
            if let Binder::Typed(descriptor) = binder {
                if descriptor.name != daemon_trait.name {
                    return Err(Error::new(ErrorKind::WrongTrait {
                        uri: object.to_string(),
                        expected: descriptor.name.to_string(),
                        found: daemon_trait.name.to_string(),
                    }));
                }
            }
            return Ok(Bound::daemon_object(&object, connection, daemon_trait));
        }
        if let Binder::Typed(descriptor) = binder {
            if let Some((handle, routes)) = super::bindings::recall(&object, descriptor) {
                let bound = Bound::new(
                    object,
                    connection,
                    handle,
                    Cow::Borrowed(*descriptor),
                    routes,
                );
                bound.remembered.store(true, Ordering::Release);
                return Ok(bound);
            }
        }
        let daemon = ProxyCore::fixed(
            Bound::daemon_object(&object, connection.clone(), daemon_trait),
            left(deadline),
            config.clone(),
            directory,
        );
        let unknown = || {
            Error::new(ErrorKind::UnknownObject {
                uri: object.to_string(),
                id: object.id().to_owned(),
            })
        };
        let id = object.id().to_owned();
        let (binding, descriptor, routes) = match binder {
            Binder::Typed(descriptor) => {
                let binding = directory
                    .bind(daemon, id, Some(descriptor.name.to_string()))
                    .await?
                    .map_err(|e| match e {
                        BindError::NoSuchObject => unknown(),
                        BindError::WrongTrait { found } => Error::new(ErrorKind::WrongTrait {
                            uri: object.to_string(),
                            expected: descriptor.name.to_string(),
                            found,
                        }),
                    })?;
                let routes = route(descriptor, &binding.descriptor);
                super::bindings::remember(&object, descriptor, binding.handle, &routes);
                (binding, Cow::Borrowed(*descriptor), routes)
            }
            Binder::Any => {
                let binding = directory
                    .bind(daemon, id, None)
                    .await?
                    .map_err(|_| unknown())?;
                let routes = identity_routes(&binding.descriptor);
                let descriptor = Cow::Owned(binding.descriptor.clone());
                (binding, descriptor, routes)
            }
        };
        Ok(Bound::new(
            object,
            connection,
            binding.handle,
            descriptor,
            routes,
        ))
    }

    /// Connects to the Pyro5 object `object` by `deadline`, and matches the proxy's methods
    /// (as `binder` says) to those the object exposes, by their names in Rust or in Python
    /// (`welcome_message` calls `welcomeMessage`). Pyro5 says no types, so none are checked.
    async fn bind_pyro5(
        object: ObjectUri,
        binder: &Binder,
        deadline: Instant,
        config: &ClientConfig,
    ) -> Result<Bound, Error> {
        let endpoint = object.endpoint();
        let timeout = left(deadline).min(config.connect_timeout);
        let opening = async {
            let (socket, local) = connect_tcp(endpoint).await?;
            let opened = Pyro5Channel::open(socket, object.id(), config.max_frame_bytes).await;
            Ok::<_, Error>((opened, local))
        };
        let silent = || {
            Error::new(ErrorKind::Connect {
                endpoint: endpoint.to_string(),
                reason: format!("no answer to Pyro5's CONNECT within {timeout:?}: is a Pyro5 daemon listening there?"),
                cause: None,
            })
        };
        let (opened, local) = tokio::time::timeout(timeout, opening)
            .await
            .map_err(|_| silent())??;
        let (channel, metadata) = opened.map_err(|refused| match refused {
            Refused::UnknownObject => Error::new(ErrorKind::UnknownObject {
                uri: object.to_string(),
                id: object.id().to_owned(),
            }),
            Refused::Other(reason) => Error::new(ErrorKind::Connect {
                endpoint: endpoint.to_string(),
                reason,
                cause: None,
            }),
        })?;
        let (descriptor, routes, methods) = pyro5_routes(binder, &metadata);
        let transport = Transport::Pyro5 {
            channel: Arc::new(channel),
            methods,
        };
        let connection = Connection { transport, local };
        Ok(Bound::new(object, connection, 0, descriptor, routes))
    }

    /// The own object of `object`'s daemon, which needs no binding: its handle is fixed and
    /// both sides share its descriptor, `daemon_trait`.
    fn daemon_object(
        object: &ObjectUri,
        connection: Connection,
        daemon_trait: &'static TraitDescriptor,
    ) -> Bound {
        let uri = ObjectUri::new(DAEMON_OBJECT_ID, object.endpoint().clone())
            .expect("the daemon object's id is valid")
            .with_tls(object.tls());
        let routes = identity_routes(daemon_trait);
        Bound::new(
            uri,
            connection,
            DAEMON_HANDLE,
            Cow::Borrowed(daemon_trait),
            routes,
        )
    }

    fn new(
        uri: ObjectUri,
        connection: Connection,
        handle: u64,
        descriptor: Cow<'static, TraitDescriptor>,
        routes: Box<[Route]>,
    ) -> Bound {
        Bound {
            uri_text: uri.to_string(),
            uri,
            connection,
            handle,
            descriptor,
            routes,
            stale: AtomicBool::new(false),
            remembered: AtomicBool::new(false),
        }
    }
}

/// The parameters of a Pyro5 object's method, which Python does not say.
const UNSAID_PARAMS: &[crate::describe::Param] = &[crate::describe::Param {
    name: Cow::Borrowed("*args"),
    ty: Cow::Borrowed("?"),
}];

/// For a proxy binding as `binder` to a Pyro5 object that serves `metadata`: its
/// descriptor, the route of each of its methods, and the object's methods they call.
fn pyro5_routes(
    binder: &Binder,
    metadata: &Metadata,
) -> (
    Cow<'static, TraitDescriptor>,
    Box<[Route]>,
    Arc<[Pyro5Method]>,
) {
    let oneway = |name: &str| metadata.oneway.iter().any(|m| m == name);
    let descriptor = match binder {
        Binder::Typed(descriptor) => Cow::Borrowed(*descriptor),
        // Any method the object exposes, of parameters and result Python does not say.
        Binder::Any => Cow::Owned(TraitDescriptor {
            name: "Pyro5 object".into(),
            methods: metadata
                .methods
                .iter()
                .map(|name| MethodDescriptor {
                    name: name.clone().into(),
                    params: Cow::Borrowed(UNSAID_PARAMS),
                    result: "?".into(),
                    oneway: oneway(name),
                    doc: "".into(),
                })
                .collect(),
        }),
    };
    let mut methods = Vec::new();
    let routes = descriptor
        .methods
        .iter()
        .map(|method| {
            let python = python_name(&method.name);
            let exposed = metadata
                .methods
                .iter()
                .find(|name| **name == method.name || **name == python);
            match exposed {
                Some(name) => {
                    let error_type = method.error_type().map(|error_type| {
                        let last = error_type.rsplit("::").next().unwrap_or(error_type);
                        last.trim().to_owned()
                    });
                    methods.push(Pyro5Method {
                        oneway: method.oneway || oneway(name),
                        name: name.clone(),
                        error_type,
                    });
                    Route::To(methods.len() as u32 - 1)
                }
                None => Route::Missing,
            }
        })
        .collect();
    (descriptor, routes, methods.into())
}

fn identity_routes(descriptor: &TraitDescriptor) -> Box<[Route]> {
    (0..descriptor.methods.len() as u32)
        .map(Route::To)
        .collect()
}

/// Maps each method of the client's trait to the server's index of the same method.
fn route(client: &TraitDescriptor, server: &TraitDescriptor) -> Box<[Route]> {
    client
        .methods
        .iter()
        .map(
            |method: &MethodDescriptor| match server.method(&method.name) {
                Some((index, theirs)) if method.same_types(theirs) => Route::To(index as u32),
                Some((_, theirs)) => Route::Mismatch(theirs.signature()),
                None => Route::Missing,
            },
        )
        .collect()
}
