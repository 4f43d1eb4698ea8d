//! Uploads: a `Stream` as a call's argument. The method reads the items as the client's
//! producer makes them; the producer is never more than a bounded amount ahead; dropping
//! either end stops the other; a broken producer or connection is the method's error.

mod support;

use std::time::Duration;

use futures::StreamExt;
use rmi::Stream;
use support::Count;

#[rmi::expose]
pub trait Sink {
    /// Reads `stop_after` items (all, if `None`), waiting `pause` after each; how many it read.
    async fn read(&self, items: Stream<u64>, stop_after: Option<u64>, pause_ms: u64) -> u64;
    /// The bytes of every chunk, in all; an error reading the stream is the method's error.
    async fn store(&self, chunks: Stream<Vec<u8>>) -> Result<u64, String>;
    /// Holds its thread for `hold_ms` first (so the daemon starts its calls in tasks of their
    /// own, after the pushes that follow them may have come), then counts the items.
    async fn count_late(&self, items: Stream<u64>, hold_ms: u64) -> u64;
}

#[derive(Default)]
struct Reader {
    read: Count,
}

impl Sink for Reader {
    async fn count_late(&self, mut items: Stream<u64>, hold_ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(hold_ms));
        let mut count = 0;
        while let Some(item) = items.next().await {
            item.expect("an uploaded item");
            count += 1;
        }
        count
    }

    async fn read(&self, mut items: Stream<u64>, stop_after: Option<u64>, pause_ms: u64) -> u64 {
        let mut read = 0;
        while stop_after.is_none_or(|stop| read < stop) {
            match items.next().await {
                Some(Ok(item)) => assert_eq!(item, read, "items in order"),
                Some(Err(e)) => panic!("the upload broke: {e}"),
                None => break,
            }
            read += 1;
            self.read.one_more();
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        read
    }

    async fn store(&self, mut chunks: Stream<Vec<u8>>) -> Result<u64, String> {
        let mut bytes = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            assert!(
                chunk.iter().all(|&b| b == chunk[0]),
                "a chunk arrived whole"
            );
            bytes += chunk.len() as u64;
            self.read.one_more();
        }
        Ok(bytes)
    }
}

/// Items 0, 1, 2, … counting each one the producer makes.
fn counted(made: &Count, n: u64) -> Stream<u64> {
    let made = made.clone();
    Stream::iter((0..n).inspect(move |_| {
        made.one_more();
    }))
}

#[tokio::test]
async fn chunks_of_bytes_arrive_whole_and_in_order() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    let chunks = (0..64u8).map(|i| vec![i; 64 * 1024]);
    let stored = sink.store(Stream::iter(chunks)).await.unwrap().unwrap();
    assert_eq!(stored, 64 * 64 * 1024);
}

/// A new connection's first request goes out before the daemon's hello (its frame limit) is
/// read; an upload that is that first request must still carry items as large as the daemon
/// takes, not only as large as any daemon takes.
#[tokio::test]
async fn an_upload_on_a_new_connection_carries_large_items() {
    let (daemon, uri) = support::serve::<SinkProxy, _>(Reader::default()).await;
    // The daemon's hello comes late through the relay, as from a daemon far away.
    let relay = support::slow_relay(daemon.local_addr(), Duration::from_millis(300)).await;
    let uri: rmi::ObjectUri = format!("rmi:{}@{relay}", uri.id()).parse().unwrap();
    // Binding once makes this process remember the object's handle: a proxy in another
    // runtime (so on a connection of its own) then sends the upload as its first request.
    rmi::connect::<SinkProxy>(&uri).await.unwrap();
    // The daemon runs on this test's runtime: the other runtime waits on a blocking thread.
    let stored = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let sink = rmi::connect::<SinkProxy>(&uri).await.unwrap();
            let chunks = (0..4u8).map(|i| vec![i; 256 * 1024]);
            sink.store(Stream::iter(chunks)).await
        })
    })
    .await
    .unwrap();
    assert_eq!(stored.unwrap(), Ok(4 * 256 * 1024));
}

#[tokio::test]
async fn every_item_arrives_when_the_pushes_come_before_the_call_starts() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    for round in 0..30u64 {
        let n = round % 3;
        let counted = sink.count_late(Stream::iter(0..n), 2).await.unwrap();
        assert_eq!(counted, n, "round {round}");
    }
}

#[tokio::test]
async fn the_producer_is_never_far_ahead_of_the_method() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    let made = Count::default();
    let reading = sink.read(counted(&made, 1_000_000), Some(20), 10);
    assert_eq!(reading.await.unwrap(), 20);
    // A push holds at most 256 items: the method reads one batch, one waits for it in the
    // daemon, one push waits for room, and the next is gathered.
    assert!(
        made.get() <= 4 * 256,
        "the producer made {} items for a method that read 20",
        made.get()
    );
}

#[tokio::test]
async fn the_method_dropping_its_stream_stops_the_producer() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    let made = Count::default();
    let read = sink
        .read(counted(&made, u64::MAX), Some(5), 0)
        .await
        .unwrap();
    assert_eq!(read, 5);
    // The call returned: the producer is dropped with it, and makes no more.
    let after = made.get();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(made.get(), after, "the producer went on after the call");
}

#[tokio::test]
async fn the_caller_leaving_ends_the_methods_stream() {
    let reader = Reader::default();
    let read = reader.read.clone();
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(reader).await;
    let made = Count::default();
    let err = sink
        .with_timeout(Duration::from_millis(300))
        .read(counted(&made, u64::MAX), None, 5)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Timeout { .. }),
        "{err}"
    );
    // The daemon cancels the call: its reading stops.
    let stopped = support::eventually(support::PATIENCE, || {
        let read = read.clone();
        async move {
            let before = read.get();
            tokio::time::sleep(Duration::from_millis(50)).await;
            read.get() == before
        }
    })
    .await;
    assert!(stopped, "the method still reads an upload its caller left");
}

#[tokio::test]
async fn a_broken_producer_is_the_methods_error() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    let chunks = futures::stream::iter(0..10u8).map(|i| {
        assert!(i < 3, "the file went away");
        vec![i; 10]
    });
    let err = sink.store(Stream::new(chunks)).await.unwrap().unwrap_err();
    assert!(err.contains("the file went away"), "{err}");
}

#[tokio::test]
async fn a_failing_producer_is_named_as_the_callers() {
    let (_daemon, sink) = support::serve_and_connect::<SinkProxy, _>(Reader::default()).await;
    let chunks = futures::stream::iter([Ok(vec![1u8; 10]), Err("disk gone")]);
    let err = sink
        .store(Stream::try_new(chunks))
        .await
        .unwrap()
        .unwrap_err();
    let expected = format!(
        "the stream a caller sent as an argument to {} broke on the caller's side: disk gone",
        sink.uri()
    );
    assert_eq!(err, expected);
}

#[tokio::test]
async fn a_json_caller_cannot_upload() {
    let (_daemon, uri) = support::serve::<SinkProxy, _>(Reader::default()).await;
    let dynamic = rmi::DynamicProxy::connect(&uri).await.unwrap();
    let err = dynamic
        .call_json("store", serde_json::json!([7]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("typed proxy"), "{err}");
}
