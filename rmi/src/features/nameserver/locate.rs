//! Finding the name server: from `RMI_NS_HOST` / `RMI_NS_PORT`, at the default address, or by
//! UDP broadcast on the local network; and resolving `rminame:` and `rmimeta:` URIs with it.

use std::sync::Arc;

use crate::client::ClientConfig;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::seq::IteratorRandom;

use super::{NameServerProxy, NsError, NAME_SERVER_ID};
use crate::proxy::{Binder, Proxy, ProxyCore};
use crate::uri::{Endpoint, MetaUri, NameUri, ObjectUri, Uri};
use crate::{Error, ErrorKind};

/// The host a name server is looked for on when `RMI_NS_HOST` is not set.
pub const DEFAULT_NS_HOST: &str = "127.0.0.1";
/// The port a name server is looked for on when `RMI_NS_PORT` is not set.
pub const DEFAULT_NS_PORT: u16 = 9090;
/// The UDP port name servers answer discovery broadcasts on, unless `RMI_NS_BCPORT` says.
pub const DEFAULT_NS_BCPORT: u16 = 9091;
/// What an rmi client broadcasts to find a name server; the answer is the name server's URI.
/// (Pyro5's clients send [`PYRO_DISCOVERY_REQUEST`].)
pub const DISCOVERY_REQUEST: &[u8] = b"GET_NSURI rmi";
/// What Pyro5's `locate_ns()` broadcasts; `rmi-ns` answers it with its `PYRO:` URI
/// (`PYRO:Pyro.NameServer@HOST:PORT`).
pub const PYRO_DISCOVERY_REQUEST: &[u8] = b"GET_NSURI";

/// How many discovery broadcasts are sent, and how long each waits for an answer.
const DISCOVERY_TRIES: u32 = 3;
const DISCOVERY_WAIT: Duration = Duration::from_millis(700);

/// The name server's address from `RMI_NS_HOST` and `RMI_NS_PORT`, when either is set (the
/// other then takes its default). When `RMI_NS_HOST` lists several name servers, the first;
/// [`ns_endpoints_from_env`](crate::ns_endpoints_from_env) gives them all.
///
/// # Errors
///
/// [`ErrorKind::InvalidUri`] if `RMI_NS_PORT` is not a port number (1-65535), or `RMI_NS_HOST`
/// is not a list of `host[:port]` entries.
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
        .ok_or_else(|| {
            Error::new(ErrorKind::InvalidUri {
                uri: format!("{variable}={text}"),
                reason: format!("{variable} must be a port number (1-65535)"),
            })
        })
}

fn broadcast_port() -> Result<u16, Error> {
    match std::env::var("RMI_NS_BCPORT") {
        Ok(text) => parse_port("RMI_NS_BCPORT", &text),
        Err(_) => Ok(DEFAULT_NS_BCPORT),
    }
}

/// The name server's entry points on a config: here, with name resolution, so that the
/// client layer does not import this feature.
impl ClientConfig {
    /// Connects to the name server as [`rmi::locate_ns`](crate::locate_ns) does, with this
    /// config.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUri`] if `RMI_NS_HOST`, `RMI_NS_PORT` or `RMI_NS_BCPORT` does not
    /// parse; [`ErrorKind::NameServerUnreachable`] if no name server answers, at the addresses
    /// those name or else at `127.0.0.1:9090` or by broadcast.
    pub async fn locate_ns(&self) -> Result<NameServerProxy, Error> {
        locate_ns_with(&self.to_arc(), self.timeout).await
    }

    /// Connects to the name server at `endpoint` with this config.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NameServerUnreachable`], with the reason, if it cannot be connected to or
    /// bound within the timeout (nothing listens there, the handshake fails, or the daemon
    /// there is not a name server).
    pub async fn locate_ns_at(&self, endpoint: &Endpoint) -> Result<NameServerProxy, Error> {
        locate_ns_at_with(endpoint, &self.to_arc(), self.timeout).await
    }

    /// Connects to the first of the name servers `endpoints` that answers, with this config;
    /// the proxy moves to the next that answers when its name server's connection ends.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NameServerUnreachable`], with each one's reason, if none of them answers.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rmi::Error> {
    /// let list = rmi::parse_ns_hosts("ns1:9090,ns2:9090", rmi::DEFAULT_NS_PORT)?;
    /// let ns = rmi::ClientConfig::from_env()?.locate_ns_among(&list).await?;
    /// ns.ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn locate_ns_among(&self, endpoints: &[Endpoint]) -> Result<NameServerProxy, Error> {
        super::locate_ns_among_with(endpoints, &self.to_arc(), self.timeout).await
    }
}

/// Connects to the name server: the one `RMI_NS_HOST` / `RMI_NS_PORT` name if set (the first
/// that answers, if `RMI_NS_HOST` lists several: see [`parse_ns_hosts`](crate::parse_ns_hosts)); otherwise
/// one at `127.0.0.1:9090`, else one that answers a UDP broadcast on the local network (port
/// `RMI_NS_BCPORT`, default 9091), sent to `255.255.255.255` and to the broadcast address of
/// every network interface, so that it needs no default route.
///
/// # Errors
///
/// - [`ErrorKind::BadKey`] if the process's default config cannot be read.
/// - [`ErrorKind::InvalidUri`] if `RMI_NS_HOST`, `RMI_NS_PORT` or `RMI_NS_BCPORT` does not parse.
/// - [`ErrorKind::NameServerUnreachable`] if no name server answers.
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// let ns = rmi::locate_ns().await?;
/// ns.ping().await?;
/// # Ok(()) }
/// ```
pub async fn locate_ns() -> Result<NameServerProxy, Error> {
    let config = ClientConfig::process_default()?;
    let timeout = config.timeout;
    locate_ns_with(&config, timeout).await
}

/// [`locate_ns`], connecting as `config` says, within `timeout`.
pub(crate) async fn locate_ns_with(
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<NameServerProxy, Error> {
    let deadline = Instant::now() + timeout;
    if let Some(endpoints) = super::failover::ns_endpoints_from_env()? {
        return super::failover::locate_ns_among_with(&endpoints, config, timeout).await;
    }
    let local = Endpoint::new(DEFAULT_NS_HOST, DEFAULT_NS_PORT);
    let local_error = match locate_ns_at_with(&local, config, timeout).await {
        Ok(ns) => return Ok(ns),
        Err(e) => e,
    };
    let port = broadcast_port()?;
    match discover(port, deadline).await {
        Ok(uri) => locate_ns_at_with(uri.endpoint(), config, left(deadline)).await,
        Err(tried) => Err(not_found(&local, &local_error, port, &tried)),
    }
}

/// Neither the name server at `local` (which failed with `local_error`) nor discovery on
/// `port` (which `tried`) found one. The local failure is quoted by its reason alone, so that
/// the advice (start a name server) is given once, by this error.
fn not_found(local: &Endpoint, local_error: &Error, port: u16, tried: &str) -> Error {
    Error::new(ErrorKind::NameServerUnreachable {
        endpoint: format!("{local} or by broadcast on UDP port {port}"),
        reason: format!(
            "nothing answers at {local} ({}); and no name server answered the broadcast: {tried}{}",
            local_error.reason(),
            crate::error::NS_START_ADVICE
        ),
    })
}

/// Connects to the name server at `endpoint`.
///
/// # Errors
///
/// [`ErrorKind::BadKey`] if the process's default config cannot be read;
/// [`ErrorKind::NameServerUnreachable`] if no name server can be connected to and bound there.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = rmi::locate_ns_at(&"127.0.0.1:9090".parse()?).await?;
/// println!("{} names", ns.count().await??);
/// # Ok(()) }
/// ```
pub async fn locate_ns_at(endpoint: &Endpoint) -> Result<NameServerProxy, Error> {
    let config = ClientConfig::process_default()?;
    let timeout = config.timeout;
    locate_ns_at_with(endpoint, &config, timeout).await
}

/// [`locate_ns_at`], connecting as `config` says; the proxy's calls wait `timeout`, and so
/// may connecting (bounded also by the config's connect timeout).
pub(crate) async fn locate_ns_at_with(
    endpoint: &Endpoint,
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<NameServerProxy, Error> {
    // An address has no scheme: the config says whether to speak TLS to it.
    let uri = ObjectUri::new(NAME_SERVER_ID, endpoint.clone())?.with_tls(config.speaks_tls());
    // Binds directly: `connect` resolves names through this very module.
    let binder = Binder::Typed(NameServerProxy::DESCRIPTOR);
    ProxyCore::connect(
        Uri::Object(uri),
        binder,
        timeout,
        config.clone(),
        &crate::nameserver::DIRECTORY,
    )
    .await
    .map(NameServerProxy::from_core)
    .map_err(unreachable(endpoint.to_string()))
}

/// Why no name server at `endpoint` (one address, or a list) could be bound: `e`'s reason,
/// with the advice that fits it. Only where nothing listens is the advice to start one; a
/// refusal (a key, TLS) or a silence already says what to check.
pub(super) fn unreachable(endpoint: String) -> impl FnOnce(Error) -> Error {
    move |e| {
        let advice = if e.nothing_listens() {
            crate::error::NS_START_ADVICE
        } else {
            ""
        };
        Error::new(ErrorKind::NameServerUnreachable {
            endpoint,
            reason: format!("{}{advice}", e.reason()),
        })
    }
}

/// What is left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Broadcasts [`DISCOVERY_REQUEST`] to `255.255.255.255` and to every interface's broadcast
/// address, and returns the first name server URI that answers by `deadline`; else what was
/// tried, and why each failed.
async fn discover(port: u16, deadline: Instant) -> Result<ObjectUri, String> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .set_broadcast(true)
        .map_err(|e| format!("cannot broadcast: {e}"))?;
    let mut targets = vec![Ipv4Addr::BROADCAST];
    targets.extend(crate::net::broadcast_addresses());
    let mut failures: Vec<(Ipv4Addr, String)> = Vec::new();
    let mut answer = [0u8; 512];
    for _ in 0..DISCOVERY_TRIES {
        failures.clear();
        for ip in &targets {
            if let Err(e) = socket.send_to(DISCOVERY_REQUEST, (*ip, port)).await {
                tracing::debug!("discovery broadcast to {ip}:{port} failed: {e}");
                failures.push((*ip, e.to_string()));
            }
        }
        if failures.len() == targets.len() {
            break;
        }
        let wait = DISCOVERY_WAIT.min(left(deadline));
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Ok((len, from))) =
            tokio::time::timeout_at(until, socket.recv_from(&mut answer)).await
        {
            match std::str::from_utf8(&answer[..len]).map(str::parse::<ObjectUri>) {
                Ok(Ok(uri)) if uri.id() == NAME_SERVER_ID => {
                    tracing::debug!(%uri, %from, "name server discovered");
                    return Ok(uri);
                }
                _ => {
                    tracing::debug!(%from, "ignored a discovery answer that is not a name server URI")
                }
            }
        }
        if left(deadline).is_zero() {
            break;
        }
    }
    let sent: Vec<String> = targets
        .iter()
        .filter(|ip| failures.iter().all(|(failed, _)| failed != *ip))
        .map(|ip| format!("{ip}:{port}"))
        .collect();
    let mut what = Vec::new();
    if !sent.is_empty() {
        what.push(format!("sent to {} with no answer", sent.join(", ")));
    }
    for (ip, why) in &failures {
        what.push(format!("cannot send to {ip}:{port}: {why}"));
    }
    Err(what.join("; "))
}

/// The name server a `rminame:` or `rmimeta:` URI means: the one it names, else the default.
async fn name_server_for(
    endpoint: Option<&Endpoint>,
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<(NameServerProxy, String), Error> {
    match endpoint {
        Some(endpoint) => Ok((
            locate_ns_at_with(endpoint, config, timeout).await?,
            endpoint.to_string(),
        )),
        None => {
            let ns = locate_ns_with(config, timeout).await?;
            let at = ns.uri().endpoint().to_string();
            Ok((ns, at))
        }
    }
}

/// Resolves a `rminame:` URI to the object URI registered under its name.
pub(crate) async fn resolve_name(
    name: &NameUri,
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<ObjectUri, Error> {
    let deadline = Instant::now() + timeout;
    let (ns, at) = name_server_for(name.name_server(), config, timeout).await?;
    // Finding the name server took part of the timeout: the lookup gets what is left.
    ns.with_timeout(left(deadline))
        .lookup(name.name().to_owned())
        .await?
        .map_err(|e| ns_error(e, &at))
}

/// Resolves a `rmimeta:` URI to one of the objects carrying all its tags, picked at random so
/// that clients spread over the servers.
pub(crate) async fn resolve_meta(
    meta: &MetaUri,
    config: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<ObjectUri, Error> {
    let deadline = Instant::now() + timeout;
    let (ns, at) = name_server_for(meta.name_server(), config, timeout).await?;
    let matches = ns
        .with_timeout(left(deadline))
        .lookup_all(meta.tags().clone())
        .await?
        .map_err(|e| ns_error(e, &at))?;
    matches
        .into_values()
        .choose(&mut rand::rng())
        .map(|registration| registration.uri)
        .ok_or_else(|| {
            Error::new(ErrorKind::NoObjectWithTags {
                tags: meta.tags().iter().cloned().collect::<Vec<_>>().join(","),
                name_server: at,
            })
        })
}

/// The error for the name server at `at` refusing a lookup: a name it does not know is
/// `NameNotFound`; any other refusal is the name server's own, kept as the source.
fn ns_error(error: NsError, at: &str) -> Error {
    match error {
        NsError::NotFound(name) => Error::new(ErrorKind::NameNotFound {
            name,
            name_server: at.to_owned(),
        }),
        other => Error::new(ErrorKind::NameServerRefused {
            name_server: at.to_owned(),
            source: other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_other_than_not_found_is_the_name_servers_not_a_bad_uri() {
        let invalid = NsError::InvalidName {
            name: "a b".into(),
            reason: "spaces".into(),
        };
        let refused = ns_error(invalid, "10.0.0.1:9090");
        assert!(
            matches!(refused.kind(), ErrorKind::NameServerRefused { name_server, source: NsError::InvalidName { .. }, .. } if name_server == "10.0.0.1:9090"),
            "{refused}"
        );
        let missing = ns_error(NsError::NotFound("x".into()), "10.0.0.1:9090");
        assert!(
            matches!(missing.kind(), ErrorKind::NameNotFound { .. }),
            "{missing}"
        );
    }

    /// A loopback endpoint where nothing listens.
    fn nothing_listening() -> Endpoint {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Endpoint::new("127.0.0.1", port)
    }

    fn assert_advice_once(message: &str) {
        assert_eq!(message.matches("start one with").count(), 1, "{message}");
        assert_eq!(message.matches("cannot reach").count(), 1, "{message}");
        assert!(!message.contains("is a daemon running there"), "{message}");
        assert!(
            message.contains("cargo install --path nameserver"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_failed_discovery_gives_its_advice_once() {
        let config = ClientConfig::process_default().unwrap();
        let local = nothing_listening();
        let local_error = locate_ns_at_with(&local, &config, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_advice_once(&local_error.to_string());
        let error = not_found(
            &local,
            &local_error,
            9091,
            "sent to 255.255.255.255:9091 with no answer",
        );
        assert_advice_once(&error.to_string());
    }

    #[tokio::test]
    async fn a_list_of_dead_name_servers_gives_its_advice_once() {
        let config = ClientConfig::process_default().unwrap();
        let list = [nothing_listening(), nothing_listening()];
        let error = super::super::locate_ns_among_with(&list, &config, Duration::from_secs(2))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert_advice_once(&message);
        assert_eq!(message.matches("cannot connect").count(), 0, "{message}");
    }
}
