//! The discovery responder: answers `GET_NSURI rmi` datagrams with the name server's URI, so
//! that `rmi::locate_ns()` finds it on the local network with nothing configured, and
//! Pyro5's `GET_NSURI` with its `PYRO:` URI, so that Python's `Pyro5.api.locate_ns()` does.

use rmi::{Daemon, ObjectUri};

use crate::pyro::PYRO_NAME_SERVER_ID;

/// The name server's URI to Pyro5, on the same port as `uri`.
fn pyro_uri(uri: &ObjectUri) -> String {
    let endpoint = uri.endpoint();
    format!("PYRO:{PYRO_NAME_SERVER_ID}@{endpoint}")
}
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
        let seen = daemon.uri_seen_from(&uri, Some(peer.ip()));
        let answer = match &request[..len] {
            rmi::DISCOVERY_REQUEST => seen.to_string(),
            rmi::PYRO_DISCOVERY_REQUEST => pyro_uri(&seen),
            _ => {
                tracing::debug!(%peer, "ignored a datagram that is not a discovery request");
                continue;
            }
        };
        if let Err(e) = socket.send_to(answer.as_bytes(), peer).await {
            tracing::debug!(%peer, "cannot answer a discovery request: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rmi_and_pyro5_requests_get_their_own_uri() {
        let daemon = Daemon::bind("127.0.0.1:0").await.unwrap();
        let uri = ObjectUri::new(rmi::NAME_SERVER_ID, daemon.local_addr().into()).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let responder = socket.local_addr().unwrap();
        let answering = tokio::spawn(respond(socket, daemon.clone(), uri.clone()));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut answer = [0u8; 128];
        for (request, expected) in [
            (rmi::DISCOVERY_REQUEST, uri.to_string()),
            (
                rmi::PYRO_DISCOVERY_REQUEST,
                format!("PYRO:Pyro.NameServer@{}", uri.endpoint()),
            ),
        ] {
            client.send_to(request, responder).await.unwrap();
            let received = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client.recv_from(&mut answer),
            )
            .await
            .expect("an answer within 5 s")
            .unwrap();
            assert_eq!(
                std::str::from_utf8(&answer[..received.0]).unwrap(),
                expected
            );
        }
        answering.abort();
    }
}
