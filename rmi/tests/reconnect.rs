//! A daemon that goes away and comes back under a live proxy: the call in flight fails with a
//! clear error, none hangs, and the next call works again.

use std::time::Duration;

#[rmi::expose]
pub trait Slow {
    async fn wait(&self, ms: u64) -> u64;
}

struct SlowImpl;

impl Slow for SlowImpl {
    async fn wait(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// A daemon on its own runtime and thread: dropping the runtime kills it abruptly, as a
/// crash would, with calls in flight.
fn daemon_on_own_runtime(addr: &str) -> (tokio::runtime::Runtime, rmi::ObjectUri) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let uri = runtime.block_on(async {
        let daemon = rmi::Daemon::bind(addr).await.unwrap();
        let uri = daemon.register_with_id("slow", SlowImpl).unwrap();
        daemon.spawn();
        uri
    });
    (runtime, uri)
}

#[test]
fn a_daemon_restarted_at_the_same_address_serves_the_same_proxy_again() {
    let (first, uri) = daemon_on_own_runtime("127.0.0.1:0");
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = client.block_on(SlowProxy::connect(&uri)).unwrap();
    assert_eq!(client.block_on(proxy.wait(1)).unwrap(), 1);

    // The daemon dies with a call in flight: that call fails at once, clearly.
    let in_flight = client.spawn({
        let proxy = proxy.clone();
        async move { proxy.wait(5_000).await }
    });
    std::thread::sleep(Duration::from_millis(200));
    first.shutdown_background();
    let failed = client
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), in_flight).await })
        .expect("the call in flight hung")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(failed, rmi::Error::Disconnected { .. }),
        "{failed}"
    );

    // While it is down, calls say so without hanging.
    let down = client.block_on(proxy.wait(1)).unwrap_err();
    assert!(matches!(down, rmi::Error::Connect { .. }), "{down}");

    // It comes back on the same address: the same proxy works again.
    let (_second, again) = daemon_on_own_runtime(&uri.endpoint().to_string());
    assert_eq!(again, uri);
    assert_eq!(client.block_on(proxy.wait(2)).unwrap(), 2);
    assert_eq!(client.block_on(proxy.clone().wait(3)).unwrap(), 3);
}
