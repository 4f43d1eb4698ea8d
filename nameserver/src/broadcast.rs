//! The discovery responder: answers `GET_NSURI` datagrams with the name server's URI, so
//! that `rmi::locate_ns()` finds it on the local network with nothing configured.

use rmi::{Daemon, ObjectUri};
use tokio::net::UdpSocket;

/// Answers discovery requests on `socket` for the name server at `uri` on `daemon`, for ever:
/// with the URI as the asking peer can reach it ([`Daemon::uri_seen_from`]).
pub async fn respond(socket: UdpSocket, daemon: Daemon, uri: ObjectUri) {
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
        let answer = daemon.uri_seen_from(&uri, Some(peer.ip())).to_string();
        if let Err(e) = socket.send_to(answer.as_bytes(), peer).await {
            tracing::debug!(%peer, "cannot answer a discovery request: {e}");
        }
    }
}
