//! Streams: items as the server produces them, with back-pressure; dropping the stream stops
//! the producer; failures arrive after the items before them.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rmi::{Daemon, Stream};
use serde_json::json;
use support::Count;

#[rmi::expose]
pub trait Numbers {
    /// 1..=n.
    async fn count_to(&self, n: u64) -> Stream<u64>;
    /// Fed by a producer task through a channel of 8; counts what it produced.
    async fn produce(&self, n: u64) -> Stream<u64>;
    /// Items until the `fail_at`th, then a panic in the producer.
    async fn fragile(&self, fail_at: u64) -> Stream<u64>;
    /// A stream or the method's own error.
    async fn checked(&self, n: i64) -> Result<Stream<i64>, String>;
    /// What `other` streams, relayed.
    async fn relay(&self, other: String, n: u64) -> Stream<u64>;
    /// The sum of the items of a stream the client uploads.
    async fn take(&self, items: Stream<u64>) -> u64;
}

#[derive(Default)]
struct Source {
    produced: Count,
    running: Arc<AtomicBool>,
}

impl Numbers for Source {
    async fn count_to(&self, n: u64) -> Stream<u64> {
        Stream::iter(1..=n)
    }

    async fn produce(&self, n: u64) -> Stream<u64> {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let (produced, running) = (self.produced.clone(), self.running.clone());
        running.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            for i in 0..n {
                if sender.send(i).await.is_err() {
                    break;
                }
                produced.one_more();
            }
            running.store(false, Ordering::SeqCst);
        });
        Stream::from_receiver(receiver)
    }

    async fn fragile(&self, fail_at: u64) -> Stream<u64> {
        Stream::new(futures::stream::iter(0..).map(move |i| {
            assert!(i < fail_at, "ran out at {i}");
            i
        }))
    }

    async fn checked(&self, n: i64) -> Result<Stream<i64>, String> {
        if n < 0 {
            return Err(format!("{n} is negative"));
        }
        Ok(Stream::iter(0..n))
    }

    async fn relay(&self, other: String, n: u64) -> Stream<u64> {
        let other = NumbersProxy::connect(other).await.expect("other server");
        other.count_to(n).await.expect("other stream")
    }

    async fn take(&self, mut items: Stream<u64>) -> u64 {
        let mut sum = 0;
        while let Some(item) = items.next().await {
            sum += item.expect("an uploaded item");
        }
        sum
    }
}

/// A `Source` served, a proxy to it, and its count of items produced and its running flag.
async fn serve() -> (Daemon, NumbersProxy, Count, Arc<AtomicBool>) {
    let source = Source::default();
    let (produced, running) = (source.produced.clone(), source.running.clone());
    let (daemon, proxy) = support::serve_and_connect(source).await;
    (daemon, proxy, produced, running)
}

/// Waits (at most 5 s) for the producer to stop.
async fn producer_stops(running: &AtomicBool) -> bool {
    support::eventually(support::PATIENCE, || async {
        !running.load(Ordering::SeqCst)
    })
    .await
}

#[tokio::test]
async fn every_item_arrives_in_order() {
    let (_daemon, numbers, ..) = serve().await;
    let items: Vec<u64> = numbers
        .count_to(10_000)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (1..=10_000).collect::<Vec<_>>());
    let mut empty = numbers.count_to(0).await.unwrap();
    assert!(empty.next().await.is_none());
    assert!(empty.next().await.is_none(), "an ended stream stays ended");
}

#[tokio::test]
async fn a_slow_consumer_holds_the_producer_back() {
    let (_daemon, numbers, produced, _) = serve().await;
    let mut stream = numbers.produce(20_000).await.unwrap();
    let mut read = 0u64;
    let mut most_ahead = 0u64;
    while let Some(item) = stream.next().await {
        assert_eq!(item.unwrap(), read);
        read += 1;
        most_ahead = most_ahead.max(produced.get() - read);
        if read.is_multiple_of(500) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(read, 20_000);
    // Two batches of 256 in flight and the channel's 8, with room for timing.
    assert!(
        most_ahead <= 2 * 256 + 8 + 1,
        "the producer ran {most_ahead} items ahead"
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_the_producer() {
    let (_daemon, numbers, produced, running) = serve().await;
    let mut stream = numbers.produce(u64::MAX).await.unwrap();
    for expected in 0..10 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    drop(stream);
    assert!(producer_stops(&running).await, "the producer still runs");
    let stopped_at = produced.get();
    assert!(stopped_at < 2 * 256 + 10 + 8 + 1, "produced {stopped_at}");
    // The connection is still good for calls.
    assert_eq!(numbers.count_to(3).await.unwrap().count().await, 3);
}

#[tokio::test]
async fn a_client_gone_stops_the_producer() {
    let (_daemon, numbers, _, running) = serve().await;
    let uri = numbers.uri();
    // A client in a runtime of its own, which vanishes without closing its stream: only the
    // connection's end tells the server.
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let numbers = NumbersProxy::connect(&uri).await.unwrap();
            let mut stream = numbers.produce(u64::MAX).await.unwrap();
            stream.next().await.unwrap().unwrap();
            std::mem::forget(stream);
        });
    })
    .await
    .unwrap();
    assert!(producer_stops(&running).await, "the producer still runs");
}

#[tokio::test]
async fn a_panicking_producer_ends_the_stream_with_the_panic_after_its_items() {
    let (_daemon, numbers, ..) = serve().await;
    let mut stream = numbers.fragile(1000).await.unwrap();
    for expected in 0..1000 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    match stream
        .next()
        .await
        .map(|item| item.map_err(rmi::Error::into_kind))
    {
        Some(Err(rmi::ErrorKind::Panicked {
            method, message, ..
        })) => {
            assert_eq!(method, "fragile");
            assert_eq!(message, "ran out at 1000");
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
    assert_eq!(numbers.count_to(2).await.unwrap().count().await, 2);
}

#[tokio::test]
async fn a_method_may_return_its_own_error_or_a_stream() {
    let (_daemon, numbers, ..) = serve().await;
    assert_eq!(
        numbers.checked(-1).await.unwrap().unwrap_err(),
        "-1 is negative"
    );
    let stream = numbers.checked(4).await.unwrap().unwrap();
    let items: Vec<i64> = stream.map(Result::unwrap).collect().await;
    assert_eq!(items, [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_server_relays_a_stream_from_another() {
    let (_first, numbers, ..) = serve().await;
    let (_second, other, ..) = serve().await;
    let other_uri = other.uri().to_string();
    let items: Vec<u64> = numbers
        .relay(other_uri, 1000)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_stream_can_be_an_argument() {
    let (_daemon, numbers, ..) = serve().await;
    assert_eq!(
        numbers.take(Stream::iter(1..=10_000)).await.unwrap(),
        50_005_000
    );
    assert_eq!(numbers.take(Stream::iter([])).await.unwrap(), 0);
}

#[tokio::test]
async fn shutdown_ends_a_stream_whose_producer_is_silent() {
    #[rmi::expose]
    pub trait Quiet {
        async fn nothing(&self) -> Stream<u64>;
    }
    struct Silent(std::sync::Mutex<Vec<tokio::sync::mpsc::Sender<u64>>>);
    impl Quiet for Silent {
        async fn nothing(&self) -> Stream<u64> {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            self.0.lock().unwrap().push(sender); // kept: the stream never ends by itself
            Stream::from_receiver(receiver)
        }
    }
    let (daemon, quiet) =
        support::serve_and_connect::<QuietProxy, _>(Silent(Default::default())).await;
    let mut stream = quiet.nothing().await.unwrap();
    let reading = tokio::spawn(async move { stream.next().await.map(|r| r.is_ok()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), daemon.shutdown())
        .await
        .expect("shutdown does not wait for a silent stream");
    let ended = tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ended, None | Some(false)), "{ended:?}");
}

#[tokio::test]
async fn a_daemon_gone_ends_the_stream_with_an_error() {
    let (daemon, numbers, ..) = serve().await;
    let mut stream = numbers.produce(u64::MAX).await.unwrap();
    stream.next().await.unwrap().unwrap();
    let shutdown = tokio::spawn(async move { daemon.shutdown().await });
    let mut ended_with = None;
    for _ in 0..100_000 {
        match stream.next().await {
            Some(Ok(_)) => continue,
            other => {
                ended_with = Some(other);
                break;
            }
        }
    }
    match ended_with.map(|item| item.map(|item| item.map_err(rmi::Error::into_kind))) {
        Some(Some(Err(rmi::ErrorKind::Disconnected { method, .. }))) => {
            assert_eq!(method, "produce")
        }
        other => panic!("expected a disconnection, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap();
}

#[tokio::test]
async fn callers_without_rust_types_get_the_items_as_json() {
    let (_daemon, numbers, ..) = serve().await;
    let any = rmi::DynamicProxy::connect(numbers.uri()).await.unwrap();
    assert_eq!(
        any.call_json("count_to", json!([3])).await.unwrap(),
        json!([1, 2, 3])
    );
    assert_eq!(
        any.call_json("checked", json!([2])).await.unwrap(),
        json!({"Ok": [0, 1]})
    );
    assert_eq!(
        any.call_json("checked", json!([-1])).await.unwrap(),
        json!({"Err": "-1 is negative"})
    );
    match any
        .call_json_streaming("count_to", json!([2]))
        .await
        .unwrap()
    {
        rmi::JsonReply::Stream { items, in_ok } => {
            assert!(!in_ok);
            let items: Vec<_> = items.map(Result::unwrap).collect().await;
            assert_eq!(items, [json!(1), json!(2)]);
        }
        other => panic!("expected a stream, got {other:?}"),
    }
}
