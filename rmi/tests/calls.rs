//! Calls through a real daemon and proxy on loopback: values, concurrency, re-entrancy,
//! panics and every kind of error.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::Count;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Dot(Point),
    Line { from: Point, to: Point },
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum MathError {
    #[error("division of {0} by zero")]
    DivideByZero(i64),
}

#[rmi::expose]
pub trait Kitchen {
    async fn add(&self, a: u64, b: u64) -> u64;
    async fn shapes(
        &self,
        shapes: Vec<Shape>,
        tags: BTreeMap<String, Option<(u8, String)>>,
    ) -> (usize, Vec<Shape>);
    async fn nothing(&self);
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    async fn explode(&self, message: String) -> u8;
    async fn sleep_ms(&self, ms: u64) -> u64;
    async fn count(&self) -> u64;
}

#[derive(Default)]
struct KitchenImpl {
    calls: Count,
}

impl Kitchen for KitchenImpl {
    async fn add(&self, a: u64, b: u64) -> u64 {
        self.calls.one_more();
        a + b
    }
    async fn shapes(
        &self,
        shapes: Vec<Shape>,
        tags: BTreeMap<String, Option<(u8, String)>>,
    ) -> (usize, Vec<Shape>) {
        (tags.len(), shapes.into_iter().rev().collect())
    }
    async fn nothing(&self) {}
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivideByZero(a))
    }
    async fn explode(&self, message: String) -> u8 {
        panic!("{message}")
    }
    async fn sleep_ms(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    async fn count(&self) -> u64 {
        self.calls.get()
    }
}

#[rmi::expose]
pub trait Other {
    async fn add(&self, a: u64, b: u64) -> u64;
}

async fn kitchen() -> (rmi::Daemon, KitchenProxy) {
    support::serve_and_connect(KitchenImpl::default()).await
}

#[tokio::test]
async fn values_of_every_serde_shape_travel() {
    let (daemon, kitchen) = kitchen().await;
    assert_eq!(kitchen.add(2, 3).await.unwrap(), 5);
    kitchen.nothing().await.unwrap();
    let shapes = vec![
        Shape::Dot(Point { x: 1, y: -1 }),
        Shape::Line {
            from: Point { x: 0, y: 0 },
            to: Point { x: 3, y: 4 },
        },
        Shape::Nothing,
    ];
    let tags = BTreeMap::from([
        ("a".to_string(), Some((1, "one".to_string()))),
        ("b".to_string(), None),
    ]);
    let (n, back) = kitchen.shapes(shapes.clone(), tags).await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(back, shapes.into_iter().rev().collect::<Vec<_>>());
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_methods_own_error_arrives_typed() {
    let (daemon, kitchen) = kitchen().await;
    assert_eq!(kitchen.div(10, 5).await.unwrap(), Ok(2));
    assert_eq!(
        kitchen.div(1, 0).await.unwrap(),
        Err(MathError::DivideByZero(1))
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_panic_fails_only_its_call() {
    let (daemon, kitchen) = kitchen().await;
    let err = kitchen.explode("kaboom".into()).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Panicked { message, method, .. } if message == "kaboom" && method == "explode"),
        "{err}"
    );
    assert!(err.to_string().contains(&kitchen.uri().to_string()));
    // The same connection and the daemon go on.
    assert_eq!(kitchen.add(1, 1).await.unwrap(), 2);
    let other = KitchenProxy::connect(kitchen.uri()).await.unwrap();
    assert_eq!(other.add(2, 2).await.unwrap(), 4);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_proxies_many_calls_all_right() {
    let (daemon, kitchen) = kitchen().await;
    let uri = kitchen.uri().clone();
    let mut clients = Vec::new();
    for p in 0..64u64 {
        let uri = uri.clone();
        clients.push(tokio::spawn(async move {
            let proxy = KitchenProxy::connect(&uri).await.unwrap();
            let calls = (0..200u64).map(|i| {
                let proxy = proxy.clone();
                async move { (i, proxy.add(p * 1000, i).await.unwrap()) }
            });
            for (i, sum) in futures::future::join_all(calls).await {
                assert_eq!(sum, p * 1000 + i);
            }
        }));
    }
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(kitchen.count().await.unwrap(), 64 * 200);
    daemon.shutdown().await;
}

#[tokio::test]
async fn timeouts_are_per_proxy() {
    let (daemon, kitchen) = kitchen().await;
    assert_eq!(kitchen.timeout(), rmi::DEFAULT_TIMEOUT);
    let impatient = kitchen.clone().with_timeout(Duration::from_millis(100));
    let err = impatient.sleep_ms(2_000).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Timeout { after, .. } if *after == Duration::from_millis(100)),
        "{err}"
    );
    assert_eq!(kitchen.sleep_ms(10).await.unwrap(), 10);
    daemon.shutdown().await;
}

#[tokio::test]
async fn binding_to_the_wrong_trait_names_both() {
    let (daemon, kitchen) = kitchen().await;
    let err = OtherProxy::connect(kitchen.uri()).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::WrongTrait { expected, found, .. } if expected == "Other" && found == "Kitchen"),
        "{err}"
    );
    assert!(err.to_string().contains("Kitchen") && err.to_string().contains("Other"));
    daemon.shutdown().await;
}

#[tokio::test]
async fn unknown_objects_and_dead_servers_are_told_apart() {
    let (daemon, kitchen) = kitchen().await;
    let missing = daemon.uri_for("nobody").unwrap();
    let err = KitchenProxy::connect(&missing).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::UnknownObject { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rmi:nobody@"));

    // Unregistered under a live proxy: the next call says so.
    assert!(daemon.unregister(kitchen.uri().id()));
    let err = kitchen.add(1, 2).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::UnknownObject { .. }),
        "{err}"
    );

    let port = daemon.local_addr().port();
    daemon.shutdown().await;
    let err = KitchenProxy::connect(format!("rmi:x@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Connect { .. }),
        "{err}"
    );
    // A proxy whose daemon went away tries to reconnect, and says why it cannot.
    let err = kitchen.add(1, 2).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Connect { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn ids_are_checked_and_unique() {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon
        .register_with_id("kitchen", KitchenImpl::default())
        .unwrap();
    assert_eq!(
        uri.to_string(),
        format!("rmi:kitchen@127.0.0.1:{}", daemon.local_addr().port())
    );
    let err = daemon
        .register_with_id("kitchen", KitchenImpl::default())
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::DuplicateObjectId { .. }),
        "{err}"
    );
    let err = daemon
        .register_with_id("bad id", KitchenImpl::default())
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::InvalidObjectId { .. }),
        "{err}"
    );
    let err = daemon
        .register_with_id(rmi::DAEMON_OBJECT_ID, KitchenImpl::default())
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::DuplicateObjectId { .. }),
        "{err}"
    );
    assert!(!daemon.unregister(rmi::DAEMON_OBJECT_ID));
    let generated = daemon.register(KitchenImpl::default()).unwrap();
    assert!(generated.id().starts_with("obj_") && generated.id().len() == 36);
}

#[tokio::test]
async fn the_daemon_lists_its_objects() {
    let (daemon, kitchen) = kitchen().await;
    let uri = daemon.uri_for(rmi::DAEMON_OBJECT_ID).unwrap();
    let info = rmi::DaemonObjectProxy::connect(&uri).await.unwrap();
    info.ping().await.unwrap();
    let objects = info.registered().await.unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o.id.as_str()).collect();
    assert!(ids.contains(&kitchen.uri().id()) && ids.contains(&rmi::DAEMON_OBJECT_ID));
    let kitchen_info = objects.iter().find(|o| o.id == kitchen.uri().id()).unwrap();
    assert_eq!(kitchen_info.descriptor.name, "Kitchen");
    let div = kitchen_info.descriptor.method("div").unwrap().1;
    assert_eq!(
        div.signature(),
        "fn div(a: i64, b: i64) -> Result<i64, MathError>"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish() {
    let (daemon, kitchen) = kitchen().await;
    let slow = tokio::spawn({
        let kitchen = kitchen.clone();
        async move { kitchen.sleep_ms(300).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(5), daemon.shutdown())
        .await
        .unwrap();
    assert_eq!(slow.await.unwrap().unwrap(), 300);
    assert!(KitchenProxy::connect(kitchen.uri()).await.is_err());
}

/// A method that calls another daemon that calls back into the first: A → B → A.
#[rmi::expose]
pub trait Relay {
    async fn relay(&self, hops: Vec<String>) -> Vec<String>;
}

struct RelayImpl {
    name: String,
    next_uri: rmi::ObjectUri,
    next: tokio::sync::OnceCell<RelayProxy>,
}

impl Relay for RelayImpl {
    async fn relay(&self, mut hops: Vec<String>) -> Vec<String> {
        if hops.contains(&self.name) {
            hops.push(format!("back at {}", self.name));
            return hops;
        }
        hops.push(self.name.clone());
        // Looked up on first use: the next object need not exist when this one starts.
        let next = self
            .next
            .get_or_init(|| async { RelayProxy::connect(&self.next_uri).await.unwrap() })
            .await;
        next.relay(hops).await.unwrap()
    }
}

#[tokio::test]
async fn re_entrant_calls_do_not_deadlock() {
    let a = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let b = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let relay = |name: &str, next_uri: rmi::ObjectUri| RelayImpl {
        name: name.into(),
        next_uri,
        next: Default::default(),
    };
    let a_uri = a
        .register_with_id("a", relay("A", b.uri_for("b").unwrap()))
        .unwrap();
    b.register_with_id("b", relay("B", a_uri.clone())).unwrap();
    a.spawn();
    b.spawn();
    let proxy = RelayProxy::connect(&a_uri).await.unwrap();
    for _ in 0..3 {
        let hops = tokio::time::timeout(Duration::from_secs(10), proxy.relay(vec![]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hops, ["A", "B", "back at A"]);
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// A type whose decoding panics: user code that runs on the server for every call.
#[derive(Debug, Serialize)]
pub struct Fragile(u8);

impl<'de> Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u8::deserialize(deserializer)?;
        if value == 13 {
            panic!("unlucky {value}");
        }
        Ok(Fragile(value))
    }
}

#[rmi::expose]
pub trait Edges {
    async fn take(&self, fragile: Fragile) -> u8;
    async fn blob(&self, bytes: usize) -> serde_bytes::ByteBuf;
}

struct EdgesImpl;

impl Edges for EdgesImpl {
    async fn take(&self, fragile: Fragile) -> u8 {
        fragile.0
    }
    async fn blob(&self, bytes: usize) -> serde_bytes::ByteBuf {
        serde_bytes::ByteBuf::from(vec![7; bytes])
    }
}

#[tokio::test]
async fn panics_in_decoding_and_oversized_values_fail_only_their_call() {
    let (daemon, edges) = support::serve_and_connect::<EdgesProxy, _>(EdgesImpl).await;
    let edges = edges.with_timeout(Duration::from_secs(5));
    let err = edges.take(Fragile(13)).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Panicked { message, .. } if message == "unlucky 13"),
        "{err}"
    );
    assert_eq!(edges.take(Fragile(12)).await.unwrap(), 12);

    let err = edges.blob(rmi::MAX_PAYLOAD_BYTES + 1).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::TooLarge { sent: true, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("more than 16711680 bytes"),
        "{err}"
    );
    // The connection that carried it is fine.
    assert_eq!(edges.blob(3).await.unwrap().len(), 3);
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_endless_timeout_is_cut_not_a_panic() {
    let (daemon, kitchen) = kitchen().await;
    let patient = kitchen.clone().with_timeout(Duration::MAX);
    assert_eq!(patient.timeout(), rmi::MAX_TIMEOUT);
    assert_eq!(patient.add(1, 2).await.unwrap(), 3);
    daemon.shutdown().await;
    // Shut down: serving returns at once.
    assert!(daemon.serve().await.is_ok());
}

#[tokio::test]
async fn a_refused_connection_keeps_the_os_error_as_its_source() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let uri = format!("rmi:obj_gone@127.0.0.1:{port}");
    let err = KitchenProxy::connect(uri.as_str()).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Connect { .. }),
        "{err}"
    );
    let source = std::error::Error::source(&err).expect("the OS error is the source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    // The message quotes it once, with the advice.
    assert!(
        err.to_string().contains("is a daemon running there?"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_lost_in_a_call_is_disconnected_naming_no_shutdown() {
    let (daemon, kitchen) = kitchen().await;
    assert!(kitchen.add(1, 2).await.is_ok());
    daemon.stop_now().await;
    let err = kitchen.add(1, 2).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            rmi::ErrorKind::Disconnected { .. } | rmi::ErrorKind::Connect { .. }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("shutdown"), "{err}");
}
