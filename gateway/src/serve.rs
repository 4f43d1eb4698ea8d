//! Serving HTTP/1.1 within [`Limits`]: connections counted in all and by client address (more
//! are answered 503 and closed), and hyper's header timeout, which also closes a kept-alive
//! connection that sends no next request. The body's own timeout and the requests in flight
//! are the router's (`http::admit`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::Limits;

/// What a client over a connection cap is told before the connection closes.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 98\r\n\r\n{\"kind\":\"busy\",\"message\":\"the gateway serves as many connections as it allows; retry in a moment\"}";

/// How long a connection over the cap may take to be told so.
const TELL_FULL_WITHIN: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown`, then lets the requests under way finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counts = Arc::new(Counts::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(counted) = Counted::admit(&counts, peer.ip(), &limits) else {
            crate::error::warn_refused(
                "connection_refused",
                peer,
                "the gateway is at its connection limit (in all, or for that address)",
            );
            tokio::spawn(tell_full(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(crate::timer::CoarseTimer)
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(counted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers 503 on a connection over the cap, then closes it.
async fn tell_full(mut stream: TcpStream) {
    let _ = tokio::time::timeout(TELL_FULL_WITHIN, stream.write_all(FULL)).await;
}

/// The connections being served, in all and by client address.
#[derive(Default)]
struct Counts {
    by_address: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One connection counted until dropped.
struct Counted {
    counts: Arc<Counts>,
    peer: IpAddr,
}

impl Counted {
    fn admit(counts: &Arc<Counts>, peer: IpAddr, limits: &Limits) -> Option<Counted> {
        let mut guard = counts.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let (all, by_address) = &mut *guard;
        let from_peer = by_address.entry(peer).or_insert(0);
        if *all >= limits.max_connections || *from_peer >= limits.max_connections_per_address {
            if *from_peer == 0 {
                by_address.remove(&peer);
            }
            return None;
        }
        *from_peer += 1;
        *all += 1;
        Some(Counted {
            counts: counts.clone(),
            peer,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut guard = self
            .counts
            .by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (all, by_address) = &mut *guard;
        *all -= 1;
        if let Some(from_peer) = by_address.get_mut(&self.peer) {
            *from_peer -= 1;
            if *from_peer == 0 {
                by_address.remove(&self.peer);
            }
        }
    }
}

/// The address a request came from, as [`serve`] records it (none when the router is served
/// some other way).
pub(crate) fn peer_of<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["kind"], "busy");
    }

    #[test]
    fn connections_are_counted_in_all_and_by_address() {
        let counts = Arc::new(Counts::default());
        let limits = Limits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let home: IpAddr = "127.0.0.1".parse().unwrap();
        let away: IpAddr = "127.0.0.2".parse().unwrap();
        let a = Counted::admit(&counts, home, &limits).unwrap();
        let _b = Counted::admit(&counts, home, &limits).unwrap();
        assert!(Counted::admit(&counts, home, &limits).is_none());
        let _c = Counted::admit(&counts, away, &limits).unwrap();
        assert!(Counted::admit(&counts, away, &limits).is_none(), "3 in all");
        drop(a);
        assert!(Counted::admit(&counts, home, &limits).is_some());
    }
}
