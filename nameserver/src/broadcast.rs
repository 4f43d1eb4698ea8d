//! The discovery responder: answers `GET_NSURI` datagrams with the name server's URI, so
//! that `rmi::locate_ns()` finds it on the local network with nothing configured.

use std::net::{IpAddr, SocketAddr};

use rmi::{Endpoint, ObjectUri};
use tokio::net::UdpSocket;

/// Answers discovery requests on `socket` for the name server at `uri`, for ever.
pub async fn respond(socket: UdpSocket, uri: ObjectUri) {
    let mut request = [0u8; 64];
    loop {
        let (len, peer) = match socket.recv_from(&mut request).await {
            Ok(received) => received,
            Err(e) => {
                tracing::warn!("discovery responder: {e}");
                continue;
            }
        };
        if &request[..len] != rmi::DISCOVERY_REQUEST {
            tracing::debug!(%peer, "ignored a datagram that is not a discovery request");
            continue;
        }
        let answer = answer_for(&uri, peer).await.to_string();
        if let Err(e) = socket.send_to(answer.as_bytes(), peer).await {
            tracing::debug!(%peer, "cannot answer a discovery request: {e}");
        }
    }
}

/// The URI to hand to `peer`: the name server's own, or, when it listens on every address,
/// the one of the address the peer can reach it on.
async fn answer_for(uri: &ObjectUri, peer: SocketAddr) -> ObjectUri {
    let host: Option<IpAddr> = uri.endpoint().host().parse().ok();
    if !host.is_some_and(|ip| ip.is_unspecified()) {
        return uri.clone();
    }
    match local_address_towards(peer).await {
        Some(ip) => ObjectUri::new(
            uri.id(),
            Endpoint::new(ip.to_string(), uri.endpoint().port()),
        )
        .unwrap_or_else(|_| uri.clone()),
        None => uri.clone(),
    }
}

/// The local address the kernel would send from to reach `peer`.
async fn local_address_towards(peer: SocketAddr) -> Option<IpAddr> {
    let probe = UdpSocket::bind(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0))
        .await
        .ok()?;
    probe.connect(peer).await.ok()?;
    probe.local_addr().ok().map(|addr| addr.ip())
}
