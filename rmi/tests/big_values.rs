//! Large values: bytes travel as byte strings, a value just under the limit round-trips, one
//! over it is refused on the caller's side before anything is sent (and before it is encoded
//! in full), and the limit can be raised on both sides.

mod support;

use std::time::{Duration, Instant};

use rmi::{ClientConfig, Daemon};
use support::Count;

#[rmi::expose]
pub trait Store {
    /// Keeps `data`; says how many bytes it got.
    async fn put(&self, data: Vec<u8>) -> u64;
    /// `len` bytes of 7.
    async fn get(&self, len: u64) -> Vec<u8>;
    /// The bytes back, or why not.
    async fn echo(&self, data: Vec<u8>) -> Result<Vec<u8>, String>;
    /// A fixed-size key and an optional boxed blob.
    async fn keyed(&self, key: [u8; 32], blob: Option<Box<[u8]>>) -> Option<Vec<u8>>;
}

#[derive(Default)]
struct Memory {
    calls: Count,
}

impl Store for Memory {
    async fn put(&self, data: Vec<u8>) -> u64 {
        self.calls.one_more();
        data.len() as u64
    }
    async fn get(&self, len: u64) -> Vec<u8> {
        vec![7; len as usize]
    }
    async fn echo(&self, data: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(data)
    }
    async fn keyed(&self, key: [u8; 32], blob: Option<Box<[u8]>>) -> Option<Vec<u8>> {
        blob.map(|blob| [&key[..], &blob[..]].concat())
    }
}

/// Room MessagePack takes around a byte string argument: the tuple's head and the string's.
const ARGUMENT_HEAD: usize = 8;

#[tokio::test]
async fn every_byte_type_travels_and_a_value_just_under_the_limit_round_trips() {
    let (_daemon, store) = support::serve_and_connect::<StoreProxy, _>(Memory::default()).await;
    let key = [9u8; 32];
    let joined = store.keyed(key, Some(vec![1u8; 5].into())).await.unwrap();
    assert_eq!(joined.unwrap().len(), 37);
    assert_eq!(store.keyed(key, None).await.unwrap(), None);

    let just_under = rmi::MAX_PAYLOAD_BYTES - ARGUMENT_HEAD;
    let started = Instant::now();
    assert_eq!(
        store.put(vec![1; just_under]).await.unwrap(),
        just_under as u64
    );
    let back = store.get(just_under as u64).await.unwrap();
    assert_eq!(back.len(), just_under);
    assert!(back.iter().all(|&b| b == 7));
    // In a `Result`, the bytes are inside `{"Ok": …}`: a few bytes more around them.
    let in_ok = just_under - 8;
    let echoed = store.echo(back[..in_ok].to_vec()).await.unwrap().unwrap();
    assert_eq!(echoed.len(), in_ok);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "three values of 16 MiB took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_json_caller_sends_and_gets_bytes_as_arrays_of_numbers() {
    let (_daemon, store) = support::serve_and_connect::<StoreProxy, _>(Memory::default()).await;
    let any = rmi::DynamicProxy::connect(store.uri()).await.unwrap();
    let echoed = any
        .call_json("echo", serde_json::json!([[1, 200, 3]]))
        .await
        .unwrap();
    assert_eq!(echoed, serde_json::json!({"Ok": [1, 200, 3]}));
    let keyed = any
        .call_json("keyed", serde_json::json!([vec![5; 32], [6, 7]]))
        .await
        .unwrap();
    assert_eq!(keyed.as_array().map(Vec::len), Some(34));
    // Large enough to be lent to a MessagePack encoding: in JSON, numbers all the same.
    let large = any
        .call_json("get", serde_json::json!([40_000]))
        .await
        .unwrap();
    let numbers = large.as_array().expect("an array of numbers");
    assert_eq!(numbers.len(), 40_000);
    assert!(numbers.iter().all(|n| n == 7));
}

#[tokio::test]
async fn a_value_over_the_limit_is_refused_before_it_is_sent_or_encoded_in_full() {
    let memory = Memory::default();
    let calls = memory.calls.clone();
    let (_daemon, store) = support::serve_and_connect::<StoreProxy, _>(memory).await;
    let huge = vec![1u8; 100 * 1024 * 1024];
    let started = Instant::now();
    let err = store.put(huge).await.unwrap_err();
    let took = started.elapsed();
    let rmi::ErrorKind::TooLarge {
        limit, sent, what, ..
    } = err.kind()
    else {
        panic!("expected TooLarge, got {err:?}")
    };
    assert_eq!((*limit as usize, *sent), (rmi::MAX_PAYLOAD_BYTES, false));
    assert_eq!(what, "the arguments of");
    let message = err.to_string();
    for needed in [
        "more than 16711680 bytes",
        "RMI_MAX_FRAME_BYTES",
        "DaemonBuilder::max_frame_bytes",
        "rmi::Stream",
        "nothing was sent",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
    assert!(!message.contains("same types"), "{message}");
    // Measuring a byte string does not read it: no 100 MiB encoding happened first.
    assert!(took < Duration::from_millis(500), "refusing took {took:?}");
    assert_eq!(
        calls.get(),
        0,
        "the daemon ran a call it should never have got"
    );
    // The connection is still good.
    assert_eq!(store.put(vec![1; 10]).await.unwrap(), 10);
}

#[tokio::test]
async fn a_result_over_the_limit_is_an_error_for_its_caller_only() {
    let daemon = Daemon::builder()
        .max_frame_bytes(1024 * 1024)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Memory::default()).unwrap();
    daemon.spawn();
    let store = StoreProxy::connect(&uri).await.unwrap();
    let err = store.get(2 * 1024 * 1024).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::TooLarge { sent: true, what, .. } if what == "the result of"),
        "{err:?}"
    );
    assert!(err.to_string().contains("rmi::Stream"), "{err}");
    assert_eq!(store.get(10).await.unwrap(), vec![7; 10]);
}

#[tokio::test]
async fn the_limit_can_be_raised_on_both_sides() {
    let limit = 48 * 1024 * 1024;
    let daemon = Daemon::builder()
        .max_frame_bytes(limit)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Memory::default()).unwrap();
    daemon.spawn();
    let big = 40 * 1024 * 1024;

    // A client with the default limit sends the value, but cannot read it back: the reply
    // ends its connection with an error that says what to raise.
    let default = StoreProxy::connect(&uri).await.unwrap();
    assert_eq!(default.put(vec![3; big]).await.unwrap(), big as u64);
    let err = default.get(big as u64).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("over the limit of 16777216 bytes on this side")
            && message.contains("ClientConfig::max_frame_bytes"),
        "{message}"
    );

    let raised = ClientConfig::new()
        .max_frame_bytes(limit)
        .connect::<StoreProxy>(&uri)
        .await
        .unwrap();
    let back = raised.echo(vec![5; big]).await.unwrap().unwrap();
    assert_eq!(back.len(), big);
    assert!(back.iter().all(|&b| b == 5));
}

#[rmi::expose]
pub trait Chunks {
    /// Three chunks of `size` bytes, or why not.
    async fn chunks(&self, size: usize) -> Result<rmi::Stream<Vec<u8>>, String>;
    /// The same, by a producer that may fail.
    async fn tried(&self, size: usize) -> rmi::Stream<Vec<u8>>;
}

struct ChunkMaker;

impl Chunks for ChunkMaker {
    async fn chunks(&self, size: usize) -> Result<rmi::Stream<Vec<u8>>, String> {
        Ok(rmi::Stream::iter(
            (0..3u8).map(move |i| vec![200 + i; size]),
        ))
    }
    async fn tried(&self, size: usize) -> rmi::Stream<Vec<u8>> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for i in 0..3u8 {
                let _ = sender.send(Ok::<_, String>(vec![200 + i; size])).await;
            }
        });
        rmi::Stream::try_new(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}

#[tokio::test]
async fn streams_of_bytes_travel_as_byte_strings() {
    let (_daemon, uri) = support::serve::<ChunksProxy, _>(ChunkMaker).await;
    let chunks = ChunksProxy::connect(&uri).await.unwrap();
    let mut stream = chunks.chunks(1000).await.unwrap().unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.push(chunk.unwrap());
    }
    assert_eq!(got, vec![vec![200; 1000], vec![201; 1000], vec![202; 1000]]);
    let mut tried = chunks.tried(1000).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = tried.next().await {
        got.push(chunk.unwrap());
    }
    assert_eq!(got.len(), 3);
}
