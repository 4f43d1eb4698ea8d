//! [`Error`]: everything that can go wrong between a proxy and a daemon, by kind.

use std::time::Duration;

/// What went wrong in rmi. Each message says what happened, names the URI and method where
/// there is one, and says what to do about it.
///
/// A remote method's *own* error is not here: a method declared `-> Result<T, E>` returns
/// `Result<Result<T, E>, rmi::Error>` on the proxy, so `E` arrives typed.
///
/// ```
/// let err = "rmi:nowhere".parse::<rmi::Uri>().unwrap_err();
/// assert!(matches!(err, rmi::Error::InvalidUri { .. }));
/// assert!(err.to_string().contains("'rmi:nowhere'"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
    /// No connection could be made to a daemon.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// `HOST:PORT`.
        endpoint: String,
        /// What the OS said.
        reason: String,
    },
    /// The name server could not be reached or did not answer.
    #[error("cannot reach the name server at {endpoint}: {reason}; start one with `cargo run --bin rmi-ns`, or point RMI_NS_HOST and RMI_NS_PORT at a running one")]
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
    #[error("the name server at {name_server} refused: {source}")]
    NameServerRefused {
        /// `HOST:PORT` of the name server.
        name_server: String,
        /// What it said.
        #[source]
        source: crate::NsError,
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
    /// The connection failed while the call was in flight.
    #[error(
        "the connection to {uri} broke during '{method}': {reason}; the daemon may have stopped"
    )]
    Disconnected {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What the transport said.
        reason: String,
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
        action: &'static str,
        /// What the codec said.
        message: String,
    },
    /// A value could not be encoded on this side, so nothing was sent: its `Serialize` failed.
    #[error("cannot encode {what} {uri} '{method}' ({type_name}): {reason}; nothing was sent")]
    Unencodable {
        /// The object's URI.
        uri: String,
        /// The method called.
        method: String,
        /// What was being encoded: `the arguments of`.
        what: &'static str,
        /// The Rust type that did not encode.
        type_name: &'static str,
        /// What its `Serialize` said.
        reason: String,
    },
    /// `serve` called on a daemon that is already serving or was shut down.
    #[error("this daemon is already serving, or was shut down; call `serve` once per daemon")]
    AlreadyServing,
}

impl Error {
    /// What went wrong, without the advice on what to do: for quoting inside another error's
    /// message, which gives its own advice.
    pub(crate) fn reason(&self) -> String {
        match self {
            Error::Connect { reason, .. } | Error::NameServerUnreachable { reason, .. } => {
                reason.clone()
            }
            other => other.to_string(),
        }
    }
}

/// A `Result` whose error is [`rmi::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
