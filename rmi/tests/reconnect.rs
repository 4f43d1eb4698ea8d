//! A daemon that goes away and comes back under a live proxy: the call in flight fails with a
//! clear error, none hangs, and the next call works again.

mod support;

use std::time::Duration;

use support::Count;

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
        matches!(failed.kind(), rmi::ErrorKind::Disconnected { .. }),
        "{failed}"
    );

    // While it is down, calls say so without hanging.
    let down = client.block_on(proxy.wait(1)).unwrap_err();
    assert!(
        matches!(down.kind(), rmi::ErrorKind::Connect { .. }),
        "{down}"
    );

    // It comes back on the same address: the same proxy works again.
    let (_second, again) = daemon_on_own_runtime(&uri.endpoint().to_string());
    assert_eq!(again, uri);
    assert_eq!(client.block_on(proxy.wait(2)).unwrap(), 2);
    assert_eq!(client.block_on(proxy.clone().wait(3)).unwrap(), 3);
}

#[rmi::expose]
pub trait Named {
    async fn name(&self) -> String;
}

/// Says its name and counts its calls.
struct NamedImpl(&'static str, Count);

impl Named for NamedImpl {
    async fn name(&self) -> String {
        self.1.one_more();
        self.0.to_owned()
    }
}

/// A daemon on its own runtime hosting `objects` (id, name), registered in that order; the
/// URI and call count of the last.
fn named_on_own_runtime(
    addr: &str,
    objects: &[(&str, &'static str)],
) -> (tokio::runtime::Runtime, rmi::ObjectUri, Count) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let calls = Count::default();
    let uri = runtime.block_on(async {
        let daemon = rmi::Daemon::bind(addr).await.unwrap();
        let mut uri = None;
        for (id, name) in objects {
            uri = Some(
                daemon
                    .register_with_id(*id, NamedImpl(name, calls.clone()))
                    .unwrap(),
            );
        }
        daemon.spawn();
        uri.unwrap()
    });
    (runtime, uri, calls)
}

/// A process remembers the bindings it made, so a second proxy to an object skips the bind;
/// a remembered handle must never reach another object.
#[test]
fn a_new_proxy_to_a_restarted_daemon_reaches_the_new_object_once() {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first, uri, _) = named_on_own_runtime("127.0.0.1:0", &[("named", "first")]);
    let proxy = client.block_on(NamedProxy::connect(&uri)).unwrap();
    assert_eq!(client.block_on(proxy.name()).unwrap(), "first");
    let again = client.block_on(NamedProxy::connect(&uri)).unwrap();
    assert_eq!(client.block_on(again.name()).unwrap(), "first");
    drop((proxy, again));
    // Waits until the first daemon's tasks are gone, its listener with them.
    first.shutdown_timeout(Duration::from_secs(5));

    // Another object comes first this time: were handles counted from the same start in
    // every daemon, the remembered handle would reach it.
    let objects = [("decoy", "decoy"), ("named", "second")];
    let (_second, same, calls) = named_on_own_runtime(&uri.endpoint().to_string(), &objects);
    assert_eq!(same, uri);
    let proxy = client.block_on(NamedProxy::connect(&uri)).unwrap();
    assert_eq!(client.block_on(proxy.name()).unwrap(), "second");
    assert_eq!(calls.get(), 1, "the call ran once");
}

#[tokio::test]
async fn a_new_proxy_to_an_object_registered_again_reaches_the_new_one() {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let calls = Count::default();
    let uri = daemon
        .register_with_id("named", NamedImpl("old", calls.clone()))
        .unwrap();
    let _serving = daemon.spawn();
    let old = NamedProxy::connect(&uri).await.unwrap();
    assert_eq!(old.name().await.unwrap(), "old");

    assert!(daemon.unregister("named"));
    daemon
        .register_with_id("named", NamedImpl("new", calls.clone()))
        .unwrap();
    let new = NamedProxy::connect(&uri).await.unwrap();
    assert_eq!(new.name().await.unwrap(), "new");
    assert_eq!(calls.get(), 2, "each call ran once");
}
