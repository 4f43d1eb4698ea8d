//! Shutdown in two stages: draining (calls from clients refused at once, calls in flight and
//! the re-entrant calls they cause served), then closing after the grace period (calls still
//! running cancelled, their callers told so).

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[rmi::expose]
pub trait Relay {
    /// Thinks for `think_ms`, then passes the call on to the next relay `hops` times.
    async fn relay(&self, hops: u32, think_ms: u64) -> u32;
    /// Sleeps for `ms`.
    async fn sleep(&self, ms: u64) -> u64;
}

#[derive(Default)]
struct Server {
    next: Mutex<Option<RelayProxy>>,
}

impl Relay for Server {
    async fn relay(&self, hops: u32, think_ms: u64) -> u32 {
        tokio::time::sleep(Duration::from_millis(think_ms)).await;
        if hops == 0 {
            return 0;
        }
        let next = self.next.lock().unwrap().clone().expect("a next relay");
        next.relay(hops - 1, think_ms)
            .await
            .expect("the next relay answers")
            + 1
    }

    async fn sleep(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

async fn relay_daemon(grace: Duration) -> (rmi::Daemon, rmi::ObjectUri) {
    let daemon = rmi::Daemon::builder()
        .grace_period(grace)
        .bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let uri = daemon.register(Server::default()).unwrap();
    daemon.spawn();
    (daemon, uri)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentrant_call_in_flight_completes_while_new_client_calls_are_refused() {
    // A → B → A, with A shutting down while the first call thinks.
    let a = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let b = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let (server_a, server_b) = (
        std::sync::Arc::new(Server::default()),
        std::sync::Arc::new(Server::default()),
    );
    let uri_a = a.register(ArcServer(server_a.clone())).unwrap();
    let uri_b = b.register(ArcServer(server_b.clone())).unwrap();
    a.spawn();
    b.spawn();
    *server_a.next.lock().unwrap() = Some(RelayProxy::connect(&uri_b).await.unwrap());
    *server_b.next.lock().unwrap() = Some(RelayProxy::connect(&uri_a).await.unwrap());

    let client = RelayProxy::connect(&uri_a).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.relay(2, 300).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn({
        let a = a.clone();
        async move { a.shutdown().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A client's new call is refused at once, not after the drain.
    let started = Instant::now();
    let refused = client.sleep(0).await.unwrap_err();
    assert!(
        matches!(refused.kind(), rmi::ErrorKind::Stopping { .. }),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(refused.to_string().contains("stopping"), "{refused}");

    // The call in flight, and the call B makes back into A, complete.
    assert_eq!(call.await.unwrap().unwrap(), 2);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown ends once no call is in flight")
        .unwrap();
    b.shutdown().await;
}

/// Serves through a shared `Server`, so the test can set its next relay after registering.
struct ArcServer(std::sync::Arc<Server>);

impl Relay for ArcServer {
    async fn relay(&self, hops: u32, think_ms: u64) -> u32 {
        self.0.relay(hops, think_ms).await
    }
    async fn sleep(&self, ms: u64) -> u64 {
        self.0.sleep(ms).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_running_after_the_grace_period_is_cancelled_and_its_caller_told() {
    let (daemon, uri) = relay_daemon(Duration::from_millis(300)).await;
    let client = RelayProxy::connect(&uri).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.sleep(60_000).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    daemon.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    let cancelled = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("the caller hears at once")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(cancelled.kind(), rmi::ErrorKind::Cancelled { .. }),
        "{cancelled}"
    );
    assert!(
        cancelled.to_string().contains("grace period"),
        "{cancelled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_shutdown_waits_for_no_grace_period() {
    let (daemon, uri) = relay_daemon(Duration::from_secs(30)).await;
    let client = RelayProxy::connect(&uri).await.unwrap();
    assert_eq!(client.sleep(1).await.unwrap(), 1);
    let started = Instant::now();
    daemon.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_now_cancels_at_once() {
    let (daemon, uri) = relay_daemon(Duration::from_secs(30)).await;
    let client = RelayProxy::connect(&uri).await.unwrap();
    let call = tokio::spawn(async move { client.sleep(60_000).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    daemon.stop_now().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let error = call.await.unwrap().unwrap_err();
    assert!(
        matches!(error.kind(), rmi::ErrorKind::Cancelled { .. }),
        "{error}"
    );
}
