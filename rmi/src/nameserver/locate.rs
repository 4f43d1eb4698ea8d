//! Finding the name server: from `RMI_NS_HOST` / `RMI_NS_PORT`, at the default address, or by
//! UDP broadcast on the local network; and resolving `rminame:` and `rmimeta:` URIs with it.

use std::sync::Arc;

use crate::client::ClientConfig;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::seq::IteratorRandom;

use super::{NameServerProxy, NsError, NAME_SERVER_ID};
use crate::proxy::{Binder, Proxy, ProxyCore};
use crate::uri::{Endpoint, MetaUri, NameUri, ObjectUri, Uri};
use crate::wire::DEFAULT_TIMEOUT;
use crate::Error;

/// The host a name server is looked for on when `RMI_NS_HOST` is not set.
pub const DEFAULT_NS_HOST: &str = "127.0.0.1";
/// The port a name server is looked for on when `RMI_NS_PORT` is not set.
pub const DEFAULT_NS_PORT: u16 = 9090;
/// The UDP port name servers answer discovery broadcasts on, unless `RMI_NS_BCPORT` says.
pub const DEFAULT_NS_BCPORT: u16 = 9091;
/// What a client broadcasts to find a name server; the answer is the name server's URI.
pub const DISCOVERY_REQUEST: &[u8] = b"GET_NSURI";

/// How many discovery broadcasts are sent, and how long each waits for an answer.
const DISCOVERY_TRIES: u32 = 3;
const DISCOVERY_WAIT: Duration = Duration::from_millis(700);

/// The name server's address from `RMI_NS_HOST` and `RMI_NS_PORT`, when either is set (the
/// other then takes its default). When `RMI_NS_HOST` lists several name servers, the first;
/// [`ns_endpoints_from_env`](crate::ns_endpoints_from_env) gives them all.
///
/// ```
/// // With neither variable set there is nothing configured.
/// # std::env::remove_var("RMI_NS_HOST"); std::env::remove_var("RMI_NS_PORT");
/// assert_eq!(rmi::ns_endpoint_from_env()?, None);
/// # Ok::<(), rmi::Error>(())
/// ```
pub fn ns_endpoint_from_env() -> Result<Option<Endpoint>, Error> {
    let host = std::env::var("RMI_NS_HOST").ok();
    let port = std::env::var("RMI_NS_PORT").ok();
    if host.is_none() && port.is_none() {
        return Ok(None);
    }
    Ok(super::failover::ns_endpoints_from_env()?.and_then(|list| list.into_iter().next()))
}

pub(crate) fn parse_port(variable: &str, text: &str) -> Result<u16, Error> {
    text.parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| Error::InvalidUri {
            uri: format!("{variable}={text}"),
            reason: format!("{variable} must be a port number (1-65535)"),
        })
}

fn broadcast_port() -> Result<u16, Error> {
    match std::env::var("RMI_NS_BCPORT") {
        Ok(text) => parse_port("RMI_NS_BCPORT", &text),
        Err(_) => Ok(DEFAULT_NS_BCPORT),
    }
}

/// Connects to the name server: the one `RMI_NS_HOST` / `RMI_NS_PORT` name if set (the first
/// that answers, if `RMI_NS_HOST` lists several: see [`parse_ns_hosts`](crate::parse_ns_hosts)); otherwise
/// one at `127.0.0.1:9090`, else one that answers a UDP broadcast on the local network (port
/// `RMI_NS_BCPORT`, default 9091).
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// let ns = rmi::locate_ns().await?;
/// ns.ping().await?;
/// # Ok(()) }
/// ```
pub async fn locate_ns() -> Result<NameServerProxy, Error> {
    locate_ns_with(&ClientConfig::process_default()?).await
}

/// [`locate_ns`], connecting as `config` says.
pub(crate) async fn locate_ns_with(config: &Arc<ClientConfig>) -> Result<NameServerProxy, Error> {
    if let Some(endpoints) = super::failover::ns_endpoints_from_env()? {
        return super::failover::locate_ns_among_with(&endpoints, config).await;
    }
    let local = Endpoint::new(DEFAULT_NS_HOST, DEFAULT_NS_PORT);
    let local_error = match locate_ns_at_with(&local, config).await {
        Ok(ns) => return Ok(ns),
        Err(e) => e,
    };
    let port = broadcast_port()?;
    match discover(port).await {
        Some(uri) => locate_ns_at_with(uri.endpoint(), config).await,
        None => Err(Error::NameServerUnreachable {
            endpoint: format!("{local} or by broadcast on UDP port {port}"),
            reason: format!("{local_error}; and no name server answered the broadcast"),
        }),
    }
}

/// Connects to the name server at `endpoint`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = rmi::locate_ns_at(&"127.0.0.1:9090".parse()?).await?;
/// println!("{} names", ns.count().await??);
/// # Ok(()) }
/// ```
pub async fn locate_ns_at(endpoint: &Endpoint) -> Result<NameServerProxy, Error> {
    locate_ns_at_with(endpoint, &ClientConfig::process_default()?).await
}

/// [`locate_ns_at`], connecting as `config` says.
pub(crate) async fn locate_ns_at_with(
    endpoint: &Endpoint,
    config: &Arc<ClientConfig>,
) -> Result<NameServerProxy, Error> {
    let uri = ObjectUri::new(NAME_SERVER_ID, endpoint.clone())?;
    // Binds directly: `connect` resolves names through this very module.
    let binder = Binder::Typed(NameServerProxy::DESCRIPTOR);
    ProxyCore::connect(Uri::Object(uri), binder, DEFAULT_TIMEOUT, config.clone())
        .await
        .map(NameServerProxy::from_core)
        .map_err(|e| Error::NameServerUnreachable {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })
}

/// Broadcasts [`DISCOVERY_REQUEST`] and returns the first name server URI that answers.
async fn discover(port: u16) -> Option<ObjectUri> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .ok()?;
    socket.set_broadcast(true).ok()?;
    let target = SocketAddr::from((Ipv4Addr::BROADCAST, port));
    let mut answer = [0u8; 512];
    for _ in 0..DISCOVERY_TRIES {
        if let Err(e) = socket.send_to(DISCOVERY_REQUEST, target).await {
            tracing::debug!("discovery broadcast to {target} failed: {e}");
            return None;
        }
        let Ok(Ok((len, from))) =
            tokio::time::timeout(DISCOVERY_WAIT, socket.recv_from(&mut answer)).await
        else {
            continue;
        };
        match std::str::from_utf8(&answer[..len]).map(str::parse::<ObjectUri>) {
            Ok(Ok(uri)) if uri.id() == NAME_SERVER_ID => {
                tracing::debug!(%uri, %from, "name server discovered");
                return Some(uri);
            }
            _ => tracing::debug!(%from, "ignored a discovery answer that is not a name server URI"),
        }
    }
    None
}

/// The name server a `rminame:` or `rmimeta:` URI means: the one it names, else the default.
async fn name_server_for(
    endpoint: Option<&Endpoint>,
    config: &Arc<ClientConfig>,
) -> Result<(NameServerProxy, String), Error> {
    match endpoint {
        Some(endpoint) => Ok((
            locate_ns_at_with(endpoint, config).await?,
            endpoint.to_string(),
        )),
        None => {
            let ns = locate_ns_with(config).await?;
            let at = ns.uri().endpoint().to_string();
            Ok((ns, at))
        }
    }
}

/// Resolves a `rminame:` URI to the object URI registered under its name.
pub(crate) async fn resolve_name(
    name: &NameUri,
    config: &Arc<ClientConfig>,
) -> Result<ObjectUri, Error> {
    let (ns, at) = name_server_for(name.name_server(), config).await?;
    ns.lookup(name.name().to_owned())
        .await?
        .map_err(|e| ns_error(e, &at, || name.to_string()))
}

/// Resolves a `rmimeta:` URI to one of the objects carrying all its tags, picked at random so
/// that clients spread over the servers.
pub(crate) async fn resolve_meta(
    meta: &MetaUri,
    config: &Arc<ClientConfig>,
) -> Result<ObjectUri, Error> {
    let (ns, at) = name_server_for(meta.name_server(), config).await?;
    let matches = ns
        .lookup_all(meta.tags().clone())
        .await?
        .map_err(|e| ns_error(e, &at, || meta.to_string()))?;
    matches
        .into_values()
        .choose(&mut rand::rng())
        .map(|registration| registration.uri)
        .ok_or_else(|| Error::NoObjectWithTags {
            tags: meta.tags().iter().cloned().collect::<Vec<_>>().join(","),
            name_server: at,
        })
}

fn ns_error(error: NsError, at: &str, uri: impl Fn() -> String) -> Error {
    match error {
        NsError::NotFound(name) => Error::NameNotFound {
            name,
            name_server: at.to_owned(),
        },
        other => Error::InvalidUri {
            uri: uri(),
            reason: other.to_string(),
        },
    }
}
