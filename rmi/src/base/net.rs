//! This host on the network: the address it is reached at from elsewhere, its interfaces'
//! broadcast addresses, and the environment variables that place a deployment's processes and
//! bound how long reaching them may take (`RMI_CONNECT_TIMEOUT`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// Where servers listen unless told otherwise (`--host`): one variable per host, the
/// address other machines reach this one at. Default `127.0.0.1`.
pub const HOST_ENV: &str = "RMI_HOST";
/// The address (`HOST` or `HOST:PORT`) a daemon writes into its URIs and registers in the
/// name server, when it is not the one it listens on: NAT, containers, multi-homed hosts.
pub const ADVERTISE_ENV: &str = "RMI_ADVERTISE";
/// Where a client's callback daemon listens, instead of the local address of the client's
/// connection to its server.
pub const CALLBACK_HOST_ENV: &str = "RMI_CALLBACK_HOST";
/// The port a client's callback daemon listens on, instead of a free one.
pub const CALLBACK_PORT_ENV: &str = "RMI_CALLBACK_PORT";
/// How long connecting to a daemon (TCP, TLS and the handshake) may take, in seconds.
pub const CONNECT_TIMEOUT_ENV: &str = "RMI_CONNECT_TIMEOUT";

/// The host servers listen on: `RMI_HOST`, else `127.0.0.1`.
///
/// ```
/// # std::env::remove_var("RMI_HOST");
/// assert_eq!(rmi::host_from_env(), "127.0.0.1");
/// ```
pub fn host_from_env() -> String {
    std::env::var(HOST_ENV)
        .ok()
        .filter(|host| !host.trim().is_empty())
        .map(|host| unbracket(host.trim()).to_owned())
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// `host` without the brackets of an IPv6 literal (`[::1]` → `::1`).
///
/// ```
/// assert_eq!(rmi::unbracket("[::1]"), "::1");
/// assert_eq!(rmi::unbracket("10.0.0.1"), "10.0.0.1");
/// ```
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Whether `host` names this machine only: `localhost`, or an address in `127.0.0.0/8` or
/// `::1`. A URI with such a host is useless to other machines.
///
/// ```
/// assert!(rmi::is_loopback_host("127.0.0.2"));
/// assert!(rmi::is_loopback_host("[::1]"));
/// assert!(rmi::is_loopback_host("localhost"));
/// assert!(!rmi::is_loopback_host("10.0.0.1"));
/// ```
pub fn is_loopback_host(host: &str) -> bool {
    let host = unbracket(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The source address this host uses towards `peer` (the route's source, as the kernel
/// picks it), or towards the default route when `peer` is `None`. No packet is sent:
/// connecting a UDP socket only consults the routing table.
pub(crate) fn outward_address(peer: Option<IpAddr>, v6: bool) -> Option<IpAddr> {
    // A documentation address stands for "anywhere": only its route matters.
    let target: SocketAddr = match peer {
        Some(ip) => SocketAddr::new(ip, 9),
        None if v6 => "[2001:db8::1]:9".parse().ok()?,
        None => "192.0.2.1:9".parse().ok()?,
    };
    let bind: SocketAddr = if target.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The first address of an up, non-loopback interface: the host's address when it has no
/// route at all.
fn first_interface_address(v6: bool) -> Option<IpAddr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .filter(|iface| !iface.is_loopback() && iface.ip().is_ipv6() == v6)
        .map(|iface| iface.ip())
        .find(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
}

/// What a daemon bound to a wildcard address (`0.0.0.0`, `::`) names in its URIs: the source
/// address of the route towards `peer` (the name server), else of the default route, else an
/// interface's address, else loopback; with the reason, for the log.
pub(crate) fn address_for_wildcard(peer: Option<IpAddr>, v6: bool) -> (IpAddr, String) {
    if let Some(peer) = peer {
        if let Some(ip) = outward_address(Some(peer), v6 && peer.is_ipv6()) {
            return (ip, format!("the address this host reaches {peer} from"));
        }
    }
    if let Some(ip) = outward_address(None, v6) {
        return (ip, "the source address of the default route".into());
    }
    if let Some(ip) = first_interface_address(v6) {
        return (ip, "the address of the first network interface".into());
    }
    let loopback = if v6 {
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::from(Ipv4Addr::LOCALHOST)
    };
    (loopback, "loopback: this host has no network".into())
}

/// The broadcast address of every up IPv4 interface but loopback: where a discovery request
/// goes besides `255.255.255.255`, which needs a default route.
pub(crate) fn broadcast_addresses() -> Vec<Ipv4Addr> {
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut found: Vec<Ipv4Addr> = interfaces
        .into_iter()
        .filter(|iface| !iface.is_loopback())
        .filter_map(|iface| match iface.addr {
            if_addrs::IfAddr::V4(v4) => subnet_broadcast(v4.ip, v4.netmask),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The broadcast address of the subnet of `ip` with `netmask`, computed rather than read
/// from the interface: an address added without `brd` has none. None for point-to-point
/// subnets (/31, /32), which have no broadcast address.
fn subnet_broadcast(ip: Ipv4Addr, netmask: Ipv4Addr) -> Option<Ipv4Addr> {
    let mask = u32::from(netmask);
    if mask.leading_ones() >= 31 {
        return None;
    }
    Some(Ipv4Addr::from(u32::from(ip) | !mask))
}

/// Parses a seconds value from the environment variable `name`, if set.
pub(crate) fn seconds_from_env(name: &str) -> Result<Option<std::time::Duration>, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| format!("{name}={text}: give a number of seconds greater than 0"))
}

/// How long a connection may stay silent before TCP asks whether its peer is still there
/// (keepalive), how often it asks again, and how many unanswered asks end the connection.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 4;
/// How long data written may go unacknowledged before the connection is ended
/// (`TCP_USER_TIMEOUT`, Linux): a peer that vanished mid-call is noticed then, not after
/// TCP's own 15 minutes of retransmissions.
const UNACKNOWLEDGED_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest a connection to a peer that vanished without a word (power lost, a link cut)
/// stays open, idle or not: keepalive asks after 10 s of silence, and an
/// unanswered ask, or data unacknowledged for 30 s, ends it. A hung process whose kernel
/// still answers is not noticed this way; the calls' own deadlines bound what waits on it.
pub const DEAD_PEER_NOTICED_WITHIN: std::time::Duration = std::time::Duration::from_secs(45);

/// Has TCP watch `stream`'s peer ([`DEAD_PEER_NOTICED_WITHIN`]), so that a proxy, a lease's
/// renewals or a daemon learn of a vanished peer without a call having to time out. A
/// failure to set it (an unusual socket) only loses that watch.
pub(crate) fn watch_peer(stream: &tokio::net::TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = socket.set_tcp_keepalive(&keepalive) {
        tracing::debug!("cannot set TCP keepalive: {e}");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = socket.set_tcp_user_timeout(Some(UNACKNOWLEDGED_LIMIT)) {
        tracing::debug!("cannot set TCP_USER_TIMEOUT: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_watch_their_peer_within_the_documented_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        watch_peer(&stream);
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(UNACKNOWLEDGED_LIMIT)
        );
        let asked = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES;
        assert!(asked.max(UNACKNOWLEDGED_LIMIT) < DEAD_PEER_NOTICED_WITHIN);
    }

    #[test]
    fn the_route_to_loopback_starts_at_loopback() {
        let ip = outward_address(Some(IpAddr::from(Ipv4Addr::LOCALHOST)), false);
        assert_eq!(ip, Some(IpAddr::from(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn a_wildcard_daemon_never_names_the_wildcard() {
        let (ip, why) = address_for_wildcard(None, false);
        assert!(!ip.is_unspecified(), "{ip} ({why})");
    }

    #[test]
    fn a_subnets_broadcast_address_has_every_host_bit_set() {
        let b = |ip: &str, mask: &str| subnet_broadcast(ip.parse().unwrap(), mask.parse().unwrap());
        assert_eq!(
            b("10.1.2.3", "255.255.255.0"),
            Some("10.1.2.255".parse().unwrap())
        );
        assert_eq!(
            b("172.16.5.1", "255.255.240.0"),
            Some("172.16.15.255".parse().unwrap())
        );
        assert_eq!(b("10.0.0.1", "255.255.255.254"), None);
    }

    #[test]
    fn broadcast_addresses_leave_out_loopback() {
        assert!(broadcast_addresses().iter().all(|ip| !ip.is_loopback()));
    }
}
