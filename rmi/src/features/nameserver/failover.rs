//! Several name servers sharing one set of names (`rmi-ns --storage etcd:…`): a list of them
//! in `RMI_NS_HOST`, the first that answers used, and the next ones taken over when it dies.

use std::sync::Arc;
use std::time::Duration;

use super::{NameServerProxy, DEFAULT_NS_PORT, NAME_SERVER_ID};
use crate::client::ClientConfig;
use crate::proxy::{Binder, Proxy, ProxyCore};
use crate::uri::{Endpoint, ObjectUri, Uri};
use crate::{Error, ErrorKind};

/// How long each name server of a list may take to connect and bind before the next is
/// tried: a host that is down must not hold up the ones after it for a whole call timeout.
pub const NS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Parses a list of name servers, `host[:port],host[:port],…`, as `RMI_NS_HOST` and
/// `rmi-nsc --ns-host` take it. An entry without a port gets `default_port`; an IPv6 address
/// with a port goes in brackets (`[::1]:9090`), one without a port may (`[::1]` or `::1`).
///
/// # Errors
///
/// [`ErrorKind::InvalidUri`], quoting `text`, if an entry is empty or an entry with a port is
/// not a valid `host:port`.
///
/// ```
/// let list = rmi::parse_ns_hosts("ns1:9000, ns2,[::1]:9002", 9090)?;
/// let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
/// assert_eq!(shown, ["ns1:9000", "ns2:9090", "[::1]:9002"]);
/// assert!(rmi::parse_ns_hosts("ns1,,ns2", 9090).is_err());
/// # Ok::<(), rmi::Error>(())
/// ```
pub fn parse_ns_hosts(text: &str, default_port: u16) -> Result<Vec<Endpoint>, Error> {
    let invalid = |reason: String| {
        Error::new(ErrorKind::InvalidUri {
            uri: text.to_owned(),
            reason,
        })
    };
    text.split(',')
        .map(str::trim)
        .map(|item| {
            if item.is_empty() {
                return Err(invalid(
                    "an empty entry in the list of name servers; write host[:port],host[:port],…"
                        .into(),
                ));
            }
            let has_port = match item.strip_prefix('[') {
                Some(rest) => rest.contains("]:"),
                // Two colons or more without brackets: a bare IPv6 address.
                None => item.matches(':').count() == 1,
            };
            if has_port {
                item.parse::<Endpoint>()
                    .map_err(|e| invalid(format!("'{item}': {e}")))
            } else {
                let host = crate::net::unbracket(item);
                Ok(Endpoint::new(host, default_port))
            }
        })
        .collect()
}

/// The name servers `RMI_NS_HOST` lists (with `RMI_NS_PORT`, else 9090, for entries without
/// a port), when either variable is set.
///
/// # Errors
///
/// [`ErrorKind::InvalidUri`] if `RMI_NS_PORT` is not a port number (1-65535), or `RMI_NS_HOST`
/// does not parse as [`parse_ns_hosts`] takes it.
///
/// ```
/// # std::env::remove_var("RMI_NS_HOST"); std::env::remove_var("RMI_NS_PORT");
/// assert_eq!(rmi::ns_endpoints_from_env()?, None);
/// # Ok::<(), rmi::Error>(())
/// ```
pub fn ns_endpoints_from_env() -> Result<Option<Vec<Endpoint>>, Error> {
    let host = std::env::var("RMI_NS_HOST").ok();
    let port = std::env::var("RMI_NS_PORT").ok();
    if host.is_none() && port.is_none() {
        return Ok(None);
    }
    let port = match port {
        Some(text) => super::locate::parse_port("RMI_NS_PORT", &text)?,
        None => DEFAULT_NS_PORT,
    };
    let host = host.unwrap_or_else(|| super::DEFAULT_NS_HOST.to_owned());
    parse_ns_hosts(&host, port).map(Some).map_err(|e| {
        Error::new(ErrorKind::InvalidUri {
            uri: format!("RMI_NS_HOST={host}"),
            reason: e.to_string(),
        })
    })
}

/// Connects to the first of `endpoints` that answers, each tried for at most
/// [`NS_CONNECT_TIMEOUT`] (or the config's connect timeout, if shorter); the proxy's calls
/// wait `timeout`. The proxy remembers the list: when its name server's connection ends,
/// its next call binds the next name server that answers.
pub(crate) async fn locate_ns_among_with(
    endpoints: &[Endpoint],
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<NameServerProxy, Error> {
    if let [only] = endpoints {
        return super::locate_ns_at_with(only, config, timeout).await;
    }
    let candidates = endpoints
        .iter()
        .map(|endpoint| {
            let uri = ObjectUri::new(NAME_SERVER_ID, endpoint.clone())?;
            Ok(Uri::Object(uri.with_tls(config.speaks_tls())))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let binder = Binder::Typed(NameServerProxy::DESCRIPTOR);
    ProxyCore::connect_any(
        candidates,
        binder,
        (timeout, NS_CONNECT_TIMEOUT.min(config.connect_timeout)),
        config.clone(),
        &crate::nameserver::DIRECTORY,
    )
    .await
    .map(NameServerProxy::from_core)
    .map_err(super::locate::unreachable(
        endpoints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    ))
}

/// A new connection for `ns` after a call on it failed: to the other name servers of its
/// list first (its own last), or to its own again when it has no list.
pub(crate) async fn reconnect(ns: &NameServerProxy) -> Result<NameServerProxy, Error> {
    let core = ns.core();
    let current = core.uri().endpoint().clone();
    let mut endpoints: Vec<Endpoint> = core
        .candidates()
        .iter()
        .filter_map(|uri| match uri {
            Uri::Object(object) => Some(object.endpoint().clone()),
            _ => None,
        })
        .collect();
    if let Some(at) = endpoints.iter().position(|e| *e == current) {
        endpoints.rotate_left(at + 1);
    }
    if endpoints.is_empty() {
        endpoints.push(current);
    }
    let config = core.config();
    locate_ns_among_with(&endpoints, config, config.timeout).await
}
