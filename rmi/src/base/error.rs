//! [`Error`]: everything that can go wrong in rmi (URIs, keys, listening, connecting, names,
//! calls, streams), by kind; [`NsError`], a name server's refusal; and the helpers that turn
//! panics and error chains into one line.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a caught panic says: its message, if it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// An error and its sources, as one line. A source whose words the line already holds (an
/// error that quotes its cause) is not repeated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let words = e.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = e.source();
    }
    text
}

/// Why the name server refused a request. (Here, with the other errors: `Error` carries it.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum NsError {
    /// The name is not registered (or its lease ran out).
    #[error("the name '{0}' is not registered")]
    NotFound(String),
    /// The name cannot be used (see [`check_name`](crate::check_name)).
    #[error("invalid name '{name}': {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A safe registration found the name held by another URI.
    #[error("the name '{name}' is already registered to {holder}; remove it first, or register without --safe to replace it")]
    Taken {
        /// The name.
        name: String,
        /// The URI that holds it, as text (as a URI travels; `error` is below `uri`).
        holder: String,
    },
    /// A metadata tag that cannot be used.
    #[error("invalid metadata tag '{tag}': {reason}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A regular expression that does not compile.
    #[error("invalid regular expression '{regex}': {reason}")]
    InvalidRegex {
        /// The expression as given.
        regex: String,
        /// What the regex engine said.
        reason: String,
    },
    /// A lease of zero or absurd length.
    #[error("invalid time to live {ttl:?}: a lease lasts from 100 ms to 1 day")]
    InvalidTtl {
        /// The time to live asked for.
        ttl: Duration,
    },
    /// The name server's storage failed; nothing was changed.
    #[error("the name server's storage failed: {0}")]
    Storage(String),
}

/// The error beneath an [`ErrorKind::Connect`] or [`ErrorKind::Disconnected`] (an I/O error, say),
/// returned by its `source()` so that code can inspect it, not only read it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `error` as a [`Cause`].
pub(crate) fn cause(error: impl std::error::Error + Send + Sync + 'static) -> Option<Cause> {
    Some(Box::new(error))
}

/// What went wrong in rmi: its kind ([`Error::kind`]), and the server it arose on if it came
/// back from one ([`Error::hop`]). Each message says what happened, names the URI and method
/// where there is one, and says what to do about it.
///
/// A remote method's *own* error is not here: a method declared `-> Result<T, E>` returns
/// `Result<Result<T, E>, rmi::Error>` on the proxy, so `E` arrives typed.
///
/// Match on the kind, as on [`std::io::Error`]'s:
///
/// ```
/// let err = "rmi:nowhere".parse::<rmi::Uri>().unwrap_err();
/// assert!(matches!(err.kind(), rmi::ErrorKind::InvalidUri { .. }));
/// assert!(err.to_string().contains("'rmi:nowhere'"));
/// ```
///
/// An `rmi::Error` can itself be a remote method's error: a server that forwards calls
/// declares `-> Result<T, rmi::Error>` and returns what its own calls failed with, `?` and all.
/// The error crosses the wire as the same kind with the same fields, and records where it
/// arose: the URI of the object whose method first returned it ([`Error::hop`]), which its
/// message ends with (`… (from rmi:obj_…@host:port)`). Forwarded again down a chain of servers,
/// it keeps that first hop. What cannot travel as it is (the OS error inside
/// [`ErrorKind::Listen`]) travels as its kind and message.
///
/// ```
/// #[rmi::expose]
/// pub trait Front {
///     /// Looks `name` up in a name server that does not run.
///     async fn find(&self, name: String) -> Result<rmi::ObjectUri, rmi::Error>;
/// }
///
/// struct Forwarder;
/// impl Front for Forwarder {
///     async fn find(&self, name: String) -> Result<rmi::ObjectUri, rmi::Error> {
///         let name_server = "10.0.0.1:9090".into();
///         Err(rmi::Error::new(rmi::ErrorKind::NameNotFound { name, name_server }))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Forwarder)?;
/// daemon.spawn();
/// let front = FrontProxy::connect(&uri).await?;
/// let err = front.find("bank".into()).await?.unwrap_err();
/// assert!(matches!(err.kind(), rmi::ErrorKind::NameNotFound { name, .. } if name == "bank"));
/// assert_eq!(err.hop(), Some(uri.to_string().as_str()));
/// assert!(err.to_string().ends_with(&format!(" (from {uri})")));
/// # daemon.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize, Deserialize)]
pub struct Error {
    /// Boxed: an `Error` is two words, so a `Result` of a small value stays small.
    kind: Box<ErrorKind>,
    #[serde(default)]
    hop: Hop,
}

impl Error {
    /// An error of `kind` that arose in this process (`From<ErrorKind>` does the same).
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind: Box::new(kind),
            hop: Hop::default(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, taken out of the error.
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// Where the error arose when it came from a remote method that returned it (a server
    /// forwarding a failure of its own calls): the URI of the object whose method first
    /// returned it. `None` for an error that arose in this process.
    ///
    /// ```
    /// let err = "rmi:nowhere".parse::<rmi::Uri>().unwrap_err();
    /// assert_eq!(err.hop(), None);
    /// ```
    pub fn hop(&self) -> Option<&str> {
        self.hop.0.as_deref().map(String::as_str)
    }

    /// The URI of the object called, for the kinds of error that concern one call or object.
    ///
    /// ```
    /// let err = rmi::Error::from(rmi::ErrorKind::Busy {
    ///     uri: "rmi:obj_1@127.0.0.1:4000".into(),
    ///     method: "add".into(),
    /// });
    /// assert_eq!(err.uri(), Some("rmi:obj_1@127.0.0.1:4000"));
    /// assert_eq!(err.method(), Some("add"));
    /// ```
    pub fn uri(&self) -> Option<&str> {
        use ErrorKind::*;
        match &*self.kind {
            InvalidUri { uri, .. }
            | UnknownObject { uri, .. }
            | WrongTrait { uri, .. }
            | UnknownMethod { uri, .. }
            | SignatureMismatch { uri, .. }
            | Timeout { uri, .. }
            | Stopping { uri, .. }
            | Cancelled { uri, .. }
            | Busy { uri, .. }
            | Disconnected { uri, .. }
            | Panicked { uri, .. }
            | StreamClosed { uri, .. }
            | StreamBroken { uri, .. }
            | UploadBroken { uri, .. }
            | BadArgument { uri, .. }
            | BadCall { uri, .. }
            | Codec { uri, .. }
            | TooLarge { uri, .. }
            | Unencodable { uri, .. }
            | Raised { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// The method called, for the kinds of error that concern one call.
    pub fn method(&self) -> Option<&str> {
        use ErrorKind::*;
        match &*self.kind {
            UnknownMethod { method, .. }
            | SignatureMismatch { method, .. }
            | Timeout { method, .. }
            | Stopping { method, .. }
            | Cancelled { method, .. }
            | Busy { method, .. }
            | Disconnected { method, .. }
            | Panicked { method, .. }
            | StreamClosed { method, .. }
            | StreamBroken { method, .. }
            | BadArgument { method, .. }
            | BadCall { method, .. }
            | Codec { method, .. }
            | TooLarge { method, .. }
            | Unencodable { method, .. }
            | Raised { method, .. } => Some(method),
            _ => None,
        }
    }

    /// Whether nothing listened where this error tried to connect (the connection was
    /// refused): then the advice is to start a daemon there, not to check TLS or a key.
    pub(crate) fn nothing_listens(&self) -> bool {
        matches!(&*self.kind, ErrorKind::Connect { reason, .. } if reason.ends_with(DAEMON_ADVICE))
    }

    /// What went wrong, without the advice on what to do: for quoting inside another error's
    /// message, which gives its own advice.
    pub(crate) fn reason(&self) -> String {
        match &*self.kind {
            ErrorKind::Connect { reason, .. } | ErrorKind::NameServerUnreachable { reason, .. } => {
                let reason = reason.strip_suffix(DAEMON_ADVICE).unwrap_or(reason);
                reason
                    .strip_suffix(NS_START_ADVICE)
                    .unwrap_or(reason)
                    .to_owned()
            }
            _ => self.to_string(),
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.kind, self.hop)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// The kinds of [`Error`], each with what its message says.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URI that does not parse.
    #[error("invalid URI '{uri}': {reason}")]
    InvalidUri {
        /// The text as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object id that cannot be used.
    #[error("invalid object id '{id}': {reason}")]
    InvalidObjectId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `register_with_id` with an id already in use on that daemon.
    #[error("an object is already registered as '{id}' on this daemon; unregister it first or choose another id")]
    DuplicateObjectId {
        /// The id in use.
        id: String,
    },
    /// The daemon could not listen on its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why the OS refused. Received from a server, its kind and message.
        #[source]
        #[serde(with = "io_error")]
        source: std::io::Error,
    },
    /// No connection could be made to a daemon.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// `HOST:PORT`.
        endpoint: String,
        /// What the OS said.
        reason: String,
        /// The error beneath, as this error's `source()`, on the side where it happened
        /// (across the wire only `reason` travels).
        #[source]
        #[serde(skip)]
        cause: Option<Cause>,
    },
    /// The name server could not be reached or did not answer.
    #[error("cannot reach the name server at {endpoint}: {reason}")]
    NameServerUnreachable {
        /// `HOST:PORT` of the name server tried.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// A `rminame:` URI whose name is not registered.
    #[error("the name '{name}' is not registered in the name server at {name_server}; check the name, and that its server is running and registered it")]
    NameNotFound {
        /// The name looked up.
        name: String,
        /// `HOST:PORT` of the name server asked.
        name_server: String,
    },
    /// The name server refused a registration or another request.
    #[error("the name server{} refused: {source}", at(.name_server))]
    NameServerRefused {
        /// `HOST:PORT` of the name server; empty when not known (made from an [`NsError`] by `?`).
        name_server: String,
        /// What it said.
        #[source]
        source: NsError,
    },
    /// A `rmimeta:` URI that no registered object matches.
    #[error("no object registered in the name server at {name_server} carries all of the tags {tags}; check the tags, and that such servers are running")]
    NoObjectWithTags {
        /// The tags asked for, comma-separated.
        tags: String,
        /// `HOST:PORT` of the name server asked.
        name_server: String,
    },
    /// The handshake found that client and daemon do not share a key.
    #[error("not allowed to talk to the daemon at {endpoint}: {reason}")]
    Authentication {
        /// `HOST:PORT` of the daemon.
        endpoint: String,
        /// What the handshake found.
        reason: String,
    },
    /// A key that cannot be used.
    #[error("cannot use {origin} as a key: {reason}")]
    BadKey {
        /// Where the key came from: a file, or the key given.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up from these files.
    #[error("cannot use {what} for TLS: {reason}")]
    Tls {
        /// What was being used: a certificate, key or CA file.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The daemon has no object with the URI's id.
    #[error("no object '{id}' is registered at {uri}; it was never registered there, or it was unregistered")]
    UnknownObject {
        /// The object's URI.
        uri: String,
        /// The object id.
        id: String,
    },
    /// A proxy of one trait was bound to an object of another.
    #[error(
        "{uri} is a {found}, not a {expected}; connect a {found}Proxy to it, or check the URI"
    )]
    WrongTrait {
        /// The object's URI.
        uri: String,
        /// The trait of the proxy.
        expected: String,
        /// The trait of the object.
        found: String,
    },
    /// The object's trait has no such method (client and server built from different traits).
    #[error("{uri} has no method '{method}'; the server's {trait_name} lacks it: build client and server from the same trait")]
    UnknownMethod {
        /// The object's URI.
        uri: String,
        /// The trait, as the server knows it.
        trait_name: String,
        /// The method called.
        method: String,
    },
    /// The method exists on both sides with different argument or result types.
    #[error("method '{method}' of {uri} has different types on each side: the client has `{client}`, the server `{server}`; build client and server from the same trait")]
    SignatureMismatch {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// The client's signature.
        client: String,
        /// The server's signature.
        server: String,
    },
    /// No reply within the proxy's timeout.
    #[error("call to '{method}' on {uri} timed out after {after:?}; if the method is slow, raise the timeout with `with_timeout`")]
    Timeout {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The daemon is shutting down and takes no new calls; other servers may.
    #[error("{uri} refused '{method}': its daemon is stopping; call another server, or retry once it is back")]
    Stopping {
        /// The object called.
        uri: String,
        /// The method called.
        method: String,
    },
    /// The daemon stopped while the call ran: its grace period ended before the method did.
    /// The method may have had some of its effects.
    #[error("'{method}' on {uri} was cancelled: its daemon stopped, and its grace period ended before the call finished; the call may have had some of its effects")]
    Cancelled {
        /// The object called.
        uri: String,
        /// The method called.
        method: String,
    },
    /// The daemon refused the call: this connection has as many calls in flight as it allows.
    #[error("{uri} refused '{method}': this connection has as many calls in flight as the daemon allows; wait for some to finish, or raise its max_calls_in_flight")]
    Busy {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
    },
    /// The connection failed while the call was in flight: the daemon stopped or was killed,
    /// or the network failed. The call may or may not have run.
    #[error("the connection to {uri} was lost during '{method}': {reason}; check that its server is still running, then retry (the proxy reconnects on its next call)")]
    Disconnected {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What the transport said.
        reason: String,
        /// The transport's error, as this error's `source()`, on the side where it happened
        /// (across the wire only `reason` travels).
        #[source]
        #[serde(skip)]
        cause: Option<Cause>,
    },
    /// The remote method panicked. The daemon goes on serving.
    #[error("the remote method '{method}' on {uri} panicked: {message}")]
    Panicked {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// The panic message.
        message: String,
    },
    /// The server no longer has the stream being read: it was closed there.
    #[error("the stream returned by '{method}' on {uri} is no longer open on the server; call '{method}' again for a new one")]
    StreamClosed {
        /// The object's URI.
        uri: String,
        /// The method that returned the stream.
        method: String,
    },
    /// A stream that the server relays from another server failed there.
    #[error("the stream returned by '{method}' on {uri} broke on the server's side: {reason}")]
    StreamBroken {
        /// The object's URI.
        uri: String,
        /// The method that returned the stream.
        method: String,
        /// What the server said.
        reason: String,
    },
    /// The producer of a stream made here failed (an `Err` from [`Stream::try_new`]'s items):
    /// the reader's last item.
    ///
    /// [`Stream::try_new`]: crate::Stream::try_new
    #[error("the stream's producer failed: {reason}")]
    ProducerFailed {
        /// What the producer said.
        reason: String,
    },
    /// A stream a caller sent as an argument broke before its end: the caller's producer
    /// failed, or its connection ended, or an item did not decode.
    #[error(
        "the stream a caller sent as an argument to {uri} broke on the caller's side: {reason}"
    )]
    UploadBroken {
        /// The URI of the object whose method reads the stream.
        uri: String,
        /// What broke it.
        reason: String,
    },
    /// One argument of a call made with JSON values does not fit its parameter's type.
    #[error("argument `{param}` of '{method}' on {uri} does not fit: {message}")]
    BadArgument {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// The parameter, as `name: Type`.
        param: String,
        /// What the decoder said.
        message: String,
    },
    /// A call made with JSON values has the wrong number of arguments or no method of that name.
    #[error("cannot call '{method}' on {uri}: {reason}")]
    BadCall {
        /// The object's URI.
        uri: String,
        /// The method asked for.
        method: String,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be encoded or decoded (the types of the two sides disagree).
    #[error(
        "cannot {action} {uri} '{method}': {message}; do client and server use the same types?"
    )]
    Codec {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What was being done: `encode the arguments of`, `decode the result of`, …
        action: Cow<'static, str>,
        /// What the codec said.
        message: String,
    },
    /// A call's arguments, its result or a stream's item take more bytes than one message
    /// may carry between these two sides. Arguments that are too large are refused before
    /// anything is sent, and before they are encoded in full.
    #[error(
        "{what} '{method}' on {uri} take more than {limit} bytes, the most one message carries here{}; raise the limit on both sides ({}, or DaemonBuilder::max_frame_bytes and ClientConfig::max_frame_bytes), or send the data as an rmi::Stream, which carries any size",
        if *.sent { "" } else { " (nothing was sent)" },
        crate::wire::FRAME_LIMIT_ENV
    )]
    TooLarge {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What was too large: `the arguments of`, `the result of`, `an item of the stream of`.
        what: Cow<'static, str>,
        /// The most bytes it may take.
        limit: u64,
        /// Whether the call was sent (a result or an item too large) or not (arguments).
        sent: bool,
    },
    /// A value could not be encoded on this side, so nothing was sent: its `Serialize` failed.
    #[error("cannot encode {what} {uri} '{method}' ({type_name}): {reason}; nothing was sent")]
    Unencodable {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What was being encoded: `the arguments of`.
        what: Box<str>,
        /// The Rust type that did not encode.
        type_name: Box<str>,
        /// What its `Serialize` said.
        reason: String,
    },
    /// `serve` called on a daemon that is already serving or was shut down.
    #[error("this daemon is already serving, or was shut down; call `serve` once per daemon")]
    AlreadyServing,
    /// A Pyro5 object (in Python) raised an exception for the call: its class, message and
    /// traceback, as the Python daemon sent them.
    ///
    /// ```
    /// let err = rmi::Error::from(rmi::ErrorKind::Raised {
    ///     uri: "PYRO:obj_1@127.0.0.1:5555".into(),
    ///     method: "div".into(),
    ///     class: "builtins.ZeroDivisionError".into(),
    ///     message: "division by zero".into(),
    ///     traceback: "Traceback (most recent call last): …".into(),
    /// });
    /// assert_eq!(
    ///     err.to_string(),
    ///     "'div' on PYRO:obj_1@127.0.0.1:5555 raised builtins.ZeroDivisionError: division by zero"
    /// );
    /// ```
    #[error("'{method}' on {uri} raised {class}: {message}")]
    Raised {
        /// The object's URI.
        uri: String,
        /// The method called (its Python name).
        method: String,
        /// The exception's class, with its module: `builtins.ZeroDivisionError`.
        class: String,
        /// Its message, as Python's `str()` of it.
        message: String,
        /// The traceback on the Python side, as the daemon sent it (empty if it sent none).
        traceback: String,
    },
}

/// Where an [`Error`] arose: nowhere yet (`Hop::default()`, an error of this process), or the
/// URI of the remote object whose method returned it ([`Error::hop`] reads it). Its `Display` is
/// what the error's message ends with: nothing, or ` (from URI)`.
///
/// Serialized inside a call being served, a `Hop` not yet set becomes the URI of the object
/// serving the call: that is how an error records the server it arose on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hop(Option<Arc<String>>);

impl Hop {
    /// The hop of an error that arose at the object `uri`.
    #[cfg(test)]
    pub(crate) fn at(uri: impl std::fmt::Display) -> Self {
        Hop(Some(Arc::new(uri.to_string())))
    }
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(uri) => write!(f, " (from {uri})"),
            None => Ok(()),
        }
    }
}

impl Serialize for Hop {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // An error leaving this process for the first time records the object serving.
        let here = || crate::serving::with(|serving| serving.object.clone()).flatten();
        self.0.clone().or_else(here).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Hop {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Hop(
            Option::<String>::deserialize(deserializer)?.map(Into::into)
        ))
    }
}

/// ` at HOST:PORT` for a known name server, else nothing.
fn at(name_server: &str) -> String {
    if name_server.is_empty() {
        String::new()
    } else {
        format!(" at {name_server}")
    }
}

/// The name server's refusal, for `?` on a call that returns `Result<_, NsError>` (such as
/// `ns.register(name, uri).await??`) in a function returning [`rmi::Result`](crate::Result).
///
/// ```
/// let err: rmi::Error = rmi::NsError::NotFound("bank".into()).into();
/// assert!(matches!(err.kind(), rmi::ErrorKind::NameServerRefused { source: rmi::NsError::NotFound(_), .. }));
/// assert_eq!(err.to_string(), "the name server refused: the name 'bank' is not registered");
/// ```
impl From<NsError> for Error {
    fn from(source: NsError) -> Self {
        ErrorKind::NameServerRefused {
            name_server: String::new(),
            source,
        }
        .into()
    }
}

/// An OS error as it crosses the wire: its kind (by name) and its message.
mod io_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct IoError {
        kind: String,
        message: String,
    }

    pub(super) fn serialize<S: Serializer>(
        error: &std::io::Error,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        IoError {
            kind: format!("{:?}", error.kind()),
            message: error.to_string(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::io::Error, D::Error> {
        let IoError { kind, message } = IoError::deserialize(d)?;
        Ok(std::io::Error::new(kind_named(&kind), message))
    }

    /// The kinds a listener's failure has; others arrive as `Other`, with their message.
    fn kind_named(name: &str) -> std::io::ErrorKind {
        use std::io::ErrorKind::*;
        [
            AddrInUse,
            AddrNotAvailable,
            PermissionDenied,
            InvalidInput,
            NotFound,
            TimedOut,
        ]
        .into_iter()
        .find(|kind| format!("{kind:?}") == name)
        .unwrap_or(Other)
    }
}

/// The advice a refused connection's reason ends with; left out where the error is quoted in
/// another that gives its own (an unreachable name server: start one).
pub(crate) const DAEMON_ADVICE: &str = "; is a daemon running there?";

/// The advice for a name server that nothing answers for (rather than one that refused this
/// client, or speaks TLS): to start one, or to point at a running one.
pub(crate) const NS_START_ADVICE: &str = "; start one with `rmi-ns` (install it with `cargo install --path nameserver` from the rmi repository, or run `cargo run --bin rmi-ns` inside it), or point RMI_NS_HOST and RMI_NS_PORT at a running one";

/// A `Result` whose error is [`rmi::Error`](crate::Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Format;

    /// `error` after a trip through each format, outside any call served (so its hop stays).
    fn round_trips(error: &Error) -> Vec<Error> {
        [Format::Bincode, Format::Json]
            .into_iter()
            .map(|format| {
                format
                    .decode(&format.encode(error).unwrap().contiguous())
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn every_kind_of_field_crosses_and_keeps_its_message() {
        let errors = [
            Error {
                kind: Box::new(ErrorKind::Listen {
                    addr: "127.0.0.1:80".into(),
                    source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
                }),
                hop: Hop::at("rmi:obj_1@127.0.0.1:4000"),
            },
            Error::new(ErrorKind::Codec {
                uri: "rmi:obj_1@127.0.0.1:4000".into(),
                method: "f".into(),
                action: "decode the result of".into(),
                message: "bad".into(),
            }),
            Error::new(ErrorKind::Timeout {
                uri: "rmi:obj_1@127.0.0.1:4000".into(),
                method: "f".into(),
                after: Duration::from_millis(1500),
            }),
            NsError::Storage("disk full".into()).into(),
            Error {
                kind: Box::new(ErrorKind::AlreadyServing),
                hop: Hop::at("rmi:x@h:1"),
            },
        ];
        for error in &errors {
            for back in round_trips(error) {
                assert_eq!(back.to_string(), error.to_string());
                assert_eq!(back.hop(), error.hop());
                let (back, error) = (back.kind(), error.kind());
                assert_eq!(std::mem::discriminant(back), std::mem::discriminant(error));
            }
        }
        let listen = round_trips(&errors[0]).remove(0);
        match listen.into_kind() {
            ErrorKind::Listen { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_from_ns_error_names_the_name_server_only_when_known() {
        let err: Error = NsError::NotFound("bank".into()).into();
        assert_eq!(
            err.to_string(),
            "the name server refused: the name 'bank' is not registered"
        );
        let err = Error::new(ErrorKind::NameServerRefused {
            name_server: "127.0.0.1:9090".into(),
            source: NsError::NotFound("bank".into()),
        });
        assert_eq!(
            err.to_string(),
            "the name server at 127.0.0.1:9090 refused: the name 'bank' is not registered"
        );
    }

    /// The README's registration line, `??` and all, in a function returning `rmi::Result`.
    #[allow(dead_code)]
    async fn register(uri: crate::ObjectUri) -> Result<()> {
        crate::locate_ns()
            .await?
            .register("server".into(), uri)
            .await??;
        Ok(())
    }
}
