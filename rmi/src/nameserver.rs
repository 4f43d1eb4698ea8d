//! The name server's interface, and finding one: [`locate_ns`].
//!
//! The name server is an ordinary rmi object: the `rmi-ns` binary hosts an implementation of
//! [`NameServer`] under the id [`NAME_SERVER_ID`], and clients call it through
//! [`NameServerProxy`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proxy::{Proxy, ProxyCore};
use crate::uri::{Endpoint, NameUri, ObjectUri};
use crate::wire::DEFAULT_TIMEOUT;
use crate::Error;

/// The object id of the name server on its daemon.
pub const NAME_SERVER_ID: &str = "rmi.nameserver";
/// The host a name server is looked for on when `RMI_NS_HOST` is not set.
pub const DEFAULT_NS_HOST: &str = "127.0.0.1";
/// The port a name server is looked for on when `RMI_NS_PORT` is not set.
pub const DEFAULT_NS_PORT: u16 = 9090;

/// Why the name server refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NsError {
    /// The name is not registered.
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
}

/// The name server: a map from names to object URIs.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = rmi::locate_ns().await?;
/// let uri: rmi::ObjectUri = "rmi:obj_00@127.0.0.1:7000".parse()?;
/// ns.register("server".into(), uri.clone()).await??;
/// assert_eq!(ns.lookup("server".into()).await??, uri);
/// # Ok(()) }
/// ```
#[crate::expose]
pub trait NameServer {
    /// Maps `name` to `uri`, replacing any earlier mapping.
    async fn register(&self, name: String, uri: ObjectUri) -> Result<(), NsError>;
    /// The URI registered under `name`.
    async fn lookup(&self, name: String) -> Result<ObjectUri, NsError>;
    /// Removes `name`; returns whether it was registered.
    async fn remove(&self, name: String) -> bool;
    /// Every registration whose name starts with `prefix` (all of them for `None`).
    async fn list(&self, prefix: Option<String>) -> BTreeMap<String, ObjectUri>;
    /// Answers when the name server is alive.
    async fn ping(&self);
}

/// Where the name server is expected: `RMI_NS_HOST` and `RMI_NS_PORT`, else
/// `127.0.0.1:9090`.
///
/// ```
/// let endpoint = rmi::ns_endpoint()?;
/// assert!(endpoint.port() > 0);
/// # Ok::<(), rmi::Error>(())
/// ```
pub fn ns_endpoint() -> Result<Endpoint, Error> {
    let host = std::env::var("RMI_NS_HOST").unwrap_or_else(|_| DEFAULT_NS_HOST.to_owned());
    let port = match std::env::var("RMI_NS_PORT") {
        Ok(text) => text
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| Error::InvalidUri {
                uri: format!("RMI_NS_PORT={text}"),
                reason: "RMI_NS_PORT must be a port number (1-65535)".into(),
            })?,
        Err(_) => DEFAULT_NS_PORT,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    format!("{}", Endpoint::new(host, port)).parse()
}

/// Connects to the name server configured by `RMI_NS_HOST` / `RMI_NS_PORT` (default
/// `127.0.0.1:9090`).
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// let ns = rmi::locate_ns().await?;
/// ns.ping().await?;
/// # Ok(()) }
/// ```
pub async fn locate_ns() -> Result<NameServerProxy, Error> {
    locate_ns_at(&ns_endpoint()?).await
}

/// Connects to the name server at `endpoint`.
pub async fn locate_ns_at(endpoint: &Endpoint) -> Result<NameServerProxy, Error> {
    let uri = ObjectUri::new(NAME_SERVER_ID, endpoint.clone())?;
    // Binds directly: `connect` would resolve names through this very function.
    ProxyCore::bind(uri, NameServerProxy::DESCRIPTOR, DEFAULT_TIMEOUT)
        .await
        .map(NameServerProxy::from_core)
        .map_err(|e| Error::NameServerUnreachable {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })
}

/// Resolves a `rminame:` URI to the object URI registered under its name.
pub(crate) async fn resolve(name: &NameUri) -> Result<ObjectUri, Error> {
    let endpoint = match name.name_server() {
        Some(endpoint) => endpoint.clone(),
        None => ns_endpoint()?,
    };
    let ns = locate_ns_at(&endpoint).await?;
    match ns.lookup(name.name().to_owned()).await? {
        Ok(uri) => Ok(uri),
        Err(NsError::NotFound(_)) => Err(Error::NameNotFound {
            name: name.name().to_owned(),
            name_server: endpoint.to_string(),
        }),
        Err(NsError::InvalidName { name, reason }) => Err(Error::InvalidUri {
            uri: format!("rminame:{name}"),
            reason,
        }),
    }
}
