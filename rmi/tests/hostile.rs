//! Bad input never hurts the daemon: while good clients call it, others send garbage,
//! truncated frames, absurd lengths, nothing at all, a byte a second, unknown objects and
//! methods, arguments of the wrong types and deeply nested values, or connect and vanish.
//! Every good call's result is right, memory stays bounded, and the connection count
//! returns to zero.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmi::wire::{encode_request, Format, Invoke};
use support::{resident_kib, Count, TargetProxy, TargetServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Held by the tests that measure this process's memory or use much of it, so that none
/// counts another's.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Connects, says it is an rmi client, and reads the daemon's 9-byte hello, as a client must
/// before it sends.
async fn raw(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"RMI\x01").await.unwrap();
    let mut hello = [0u8; 9];
    stream.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello[..4], b"RMI\x01");
    stream
}

/// Whether the daemon closed the connection within `limit` (reading to its end).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(body);
    framed
}

/// Reads one reply frame's body.
async fn read_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await.unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

/// A request frame for `invoke`.
fn request(invoke: Invoke) -> Vec<u8> {
    request_until(invoke, std::time::Instant::now() + Duration::from_secs(10))
}

/// A request frame for `invoke` with `deadline`.
fn request_until(invoke: Invoke, deadline: std::time::Instant) -> Vec<u8> {
    numbered_request(invoke, 1, deadline)
}

/// A request frame for `invoke` with request id `id` and `deadline`.
fn numbered_request(invoke: Invoke, id: u64, deadline: std::time::Instant) -> Vec<u8> {
    let mut context = tarpc::context::current();
    context.deadline = deadline;
    let message = tarpc::ClientMessage::Request(tarpc::Request {
        context,
        id,
        message: invoke,
    });
    frame(&encode_request(&message).unwrap())
}

/// Calls the daemon the right way, over and over, checking every result, until `stop`.
async fn good_client(uri: rmi::ObjectUri, stop: Arc<AtomicBool>, calls: Count) {
    let target = TargetProxy::connect(&uri).await.unwrap();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let text = format!("call {n}");
        assert_eq!(target.echo(text.clone()).await.unwrap(), text);
        assert_eq!(
            target.total(vec![vec![n, 1], vec![2]]).await.unwrap(),
            n + 3
        );
        calls.one_more();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_hurt_no_one() {
    let _alone = MEMORY.lock().await;
    let daemon = rmi::Daemon::builder()
        .no_key()
        .handshake_timeout(Duration::from_secs(2))
        .idle_timeout(Duration::from_secs(2))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register_with_id("target", TargetServer).unwrap();
    daemon.spawn();
    let addr = daemon.local_addr();
    let before = resident_kib();

    let (stop, calls) = (Arc::new(AtomicBool::new(false)), Count::default());
    let good: Vec<_> = (0..4)
        .map(|_| tokio::spawn(good_client(uri.clone(), stop.clone(), calls.clone())))
        .collect();

    // Random bytes: the frame they make is refused, and the connection with it.
    let mut random = raw(addr).await;
    let noise: Vec<u8> = (0..64 * 1024).map(|_| rand::random::<u8>()).collect();
    let _ = random.write_all(&noise).await;
    assert!(closed_within(&mut random, Duration::from_secs(5)).await);

    // A length prefix that claims 4 GiB: refused as soon as it is read, nothing allocated.
    let mut huge = raw(addr).await;
    huge.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    assert!(closed_within(&mut huge, Duration::from_secs(5)).await);

    // A truncated frame, then nothing: the idle timeout closes it.
    let mut truncated = raw(addr).await;
    truncated
        .write_all(&frame(&[7u8; 100])[..30])
        .await
        .unwrap();
    // Connects and says nothing: closed after the idle timeout.
    let mut silent = raw(addr).await;
    // Connects and never says a byte: the handshake's time is all it gets.
    let _mute = TcpStream::connect(addr).await.unwrap();

    // A byte a second: it costs the daemon one connection, no one else anything.
    let slow = tokio::spawn(async move {
        let mut slow = raw(addr).await;
        for byte in frame(&[1u8; 64]).into_iter().take(3) {
            if slow.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    // Well-framed requests for an unknown object, an unknown method, arguments that are not
    // the method's: each is answered with an error, and the connection goes on.
    let mut odd = raw(addr).await;
    let unknown_object = Invoke {
        handle: 999_999,
        method: 0,
        format: Format::Bincode,
        args: Format::Bincode.encode(&("x".to_string(),)).unwrap(),
    };
    odd.write_all(&request(unknown_object)).await.unwrap();
    assert!(!read_reply(&mut odd).await.is_empty());
    // A deadline ten years out (tarpc's timers hold two): brought in, and answered.
    let ten_years = std::time::Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    let far = Invoke {
        handle: 999_999,
        method: 0,
        format: Format::Bincode,
        args: Format::Bincode.encode(&("x".to_string(),)).unwrap(),
    };
    odd.write_all(&request_until(far, ten_years)).await.unwrap();
    assert!(!read_reply(&mut odd).await.is_empty());
    drop(odd);
    let any = rmi::DynamicProxy::connect(&uri).await.unwrap();
    let wrong_type = any.call_json("echo", serde_json::json!([42])).await;
    assert!(
        matches!(
            wrong_type.as_ref().map_err(|e| e.kind()),
            Err(rmi::ErrorKind::BadArgument { .. })
        ),
        "{wrong_type:?}"
    );
    let no_such = any.call_json("__del__", serde_json::json!([])).await;
    assert!(
        matches!(
            no_such.as_ref().map_err(|e| e.kind()),
            Err(rmi::ErrorKind::BadCall { .. })
        ),
        "{no_such:?}"
    );
    // Deeply nested values: a JSON argument 64 levels deep (of the wrong shape), and raw
    // JSON arguments 100,000 levels deep, past any parser's patience.
    let mut nested = serde_json::json!(1);
    for _ in 0..64 {
        nested = serde_json::json!([nested]);
    }
    let nested = any.call_json("total", serde_json::json!([nested])).await;
    assert!(
        matches!(
            nested.as_ref().map_err(|e| e.kind()),
            Err(rmi::ErrorKind::BadArgument { .. })
        ),
        "{nested:?}"
    );
    let mut deep = raw(addr).await;
    let depth = 100_000;
    let args = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_call = Invoke {
        handle: 1,
        method: 0,
        format: Format::Json,
        args: rmi::wire::Payload::from(args.into_bytes()),
    };
    deep.write_all(&request(deep_call)).await.unwrap();
    assert!(!read_reply(&mut deep).await.is_empty());
    drop(deep);

    // A hundred clients that connect and vanish.
    for _ in 0..100 {
        drop(TcpStream::connect(addr).await.unwrap());
    }

    assert!(closed_within(&mut truncated, Duration::from_secs(10)).await);
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    slow.await.unwrap();

    stop.store(true, Ordering::Relaxed);
    for client in good {
        client.await.unwrap();
    }
    assert!(calls.get() > 0);
    drop(any);

    // Every connection ends; memory stayed bounded.
    let all_closed = || async { daemon.connections() == 0 };
    assert!(
        support::eventually(Duration::from_secs(10), all_closed).await,
        "{} connections left open",
        daemon.connections()
    );
    let grew_mib = resident_kib().saturating_sub(before) / 1024;
    assert!(grew_mib < 64, "memory grew by {grew_mib} MiB");
}

/// A recursive type: bincode decodes it one level per byte.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Tree {
    Leaf,
    Node(Box<Tree>),
}

#[rmi::expose]
pub trait Trees {
    async fn depth(&self, tree: Tree) -> u32;
}

struct Measurer;

impl Trees for Measurer {
    async fn depth(&self, tree: Tree) -> u32 {
        let mut depth = 0;
        let mut at = &tree;
        while let Tree::Node(next) = at {
            depth += 1;
            at = next;
        }
        depth
    }
}

#[tokio::test]
async fn a_recursive_value_nested_millions_deep_is_refused_not_a_crash() {
    let _alone = MEMORY.lock().await;
    let daemon = rmi::Daemon::builder()
        .no_key()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Measurer).unwrap();
    daemon.spawn();
    let trees = TreesProxy::connect(&uri).await.unwrap();
    let small = Tree::Node(Box::new(Tree::Node(Box::new(Tree::Leaf))));
    assert_eq!(trees.depth(small).await.unwrap(), 2);

    // 8 million levels, one byte each: far more than any stack holds. A proxy could not even
    // encode such a value (encoding recurses too), so the frame is made by hand.
    let daemon_object = rmi::ObjectUri::new(rmi::DAEMON_OBJECT_ID, uri.endpoint().clone()).unwrap();
    let bound = rmi::DaemonObjectProxy::connect(&daemon_object)
        .await
        .unwrap()
        .bind(uri.id().to_owned(), "Trees".into())
        .await
        .unwrap()
        .unwrap();
    let mut args = vec![1u8; 8_000_000];
    args.push(0);
    let deep = Invoke {
        handle: bound.handle,
        method: 0,
        format: Format::Bincode,
        args: rmi::wire::Payload::from(args),
    };
    let mut raw = raw(daemon.local_addr()).await;
    raw.write_all(&request(deep)).await.unwrap();
    let reply = read_reply(&mut raw).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("nested too deeply"), "{reply}");

    // The daemon lives, and serves.
    let small = Tree::Node(Box::new(Tree::Leaf));
    assert_eq!(trees.depth(small).await.unwrap(), 1);
}

#[tokio::test]
async fn over_the_limits_only_that_client_is_refused() {
    #[rmi::expose]
    pub trait Slow {
        async fn wait(&self, ms: u64);
    }
    struct Sleeper;
    impl Slow for Sleeper {
        async fn wait(&self, ms: u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    let daemon = rmi::Daemon::builder()
        .no_key()
        .max_connections(2)
        .max_calls_in_flight(2)
        .max_frame_bytes(256 * 1024)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Sleeper).unwrap();
    daemon.spawn();

    // Calls in flight: the third on one connection waits, unread, until one of the first two
    // is answered (the daemon stops reading a connection at its limit).
    let slow = SlowProxy::connect(&uri).await.unwrap();
    let started = std::time::Instant::now();
    let (a, b, c) = tokio::join!(slow.wait(300), slow.wait(300), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        slow.wait(1).await.map(|()| started.elapsed())
    });
    assert!(a.is_ok() && b.is_ok());
    let waited = c.unwrap();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");

    // A second connection is fine once it has sent a request (before that, a newcomer may
    // take its place); a third is refused at its handshake, saying why, once its connect
    // timeout ends its retries: at connect, or, as this process called the daemon before and
    // sends a new proxy's first call without waiting for the hello, with that call.
    let other = SlowProxy::connect(&uri).await.unwrap();
    other.wait(1).await.unwrap();
    let impatient = rmi::ClientConfig::from_env()
        .unwrap()
        .connect_timeout(Duration::from_millis(300));
    let refused = match impatient.connect::<SlowProxy>(&uri).await {
        Ok(third) => third.wait(1).await.unwrap_err(),
        Err(refused) => refused,
    };
    assert!(
        refused
            .to_string()
            .contains("as many connections as it allows"),
        "{refused}"
    );
    other.wait(1).await.unwrap();

    // Arguments over the daemon's frame limit are refused by the proxy, clearly.
    #[rmi::expose]
    pub trait Sink {
        async fn take(&self, bytes: Vec<u8>) -> usize;
        async fn give(&self, size: usize) -> Vec<u8>;
    }
    struct Taker;
    impl Sink for Taker {
        async fn take(&self, bytes: Vec<u8>) -> usize {
            bytes.len()
        }
        async fn give(&self, size: usize) -> Vec<u8> {
            vec![7; size]
        }
    }
    let small = rmi::Daemon::builder()
        .no_key()
        .max_frame_bytes(256 * 1024)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let sink_uri = small.register(Taker).unwrap();
    small.spawn();
    let sink = SinkProxy::connect(&sink_uri).await.unwrap();
    assert_eq!(sink.take(vec![0; 1000]).await.unwrap(), 1000);
    let too_big = sink.take(vec![0; 1024 * 1024]).await.unwrap_err();
    assert!(
        too_big.to_string().contains("take more than 196608 bytes"),
        "{too_big}"
    );
    assert_eq!(sink.take(vec![0; 10]).await.unwrap(), 10);
    // A new proxy's first call goes out before the daemon's hello is read; one larger than
    // any daemon surely takes waits for the hello, and is sent or refused as it says.
    let fresh = SinkProxy::connect(&sink_uri).await.unwrap();
    let too_big = fresh.take(vec![0; 1024 * 1024]).await.unwrap_err();
    assert!(
        too_big.to_string().contains("take more than 196608 bytes"),
        "{too_big}"
    );
    let fresh = SinkProxy::connect(&sink_uri).await.unwrap();
    assert_eq!(fresh.take(vec![0; 150 * 1024]).await.unwrap(), 150 * 1024);
    // A result over the limit is that call's error; a call beside it on the same connection
    // goes on.
    let (big, small) = tokio::join!(sink.give(1024 * 1024), sink.give(100));
    let big = big.unwrap_err();
    assert!(
        big.to_string().contains("take more than 196608 bytes"),
        "{big}"
    );
    assert_eq!(small.unwrap().len(), 100);
}

#[tokio::test]
async fn a_client_that_closes_mid_frame_gets_the_replies_it_was_owed() {
    let (daemon, uri) = support::serve::<TargetProxy, _>(TargetServer).await;
    let daemon_object = rmi::ObjectUri::new(rmi::DAEMON_OBJECT_ID, uri.endpoint().clone()).unwrap();
    let bound = rmi::DaemonObjectProxy::connect(&daemon_object)
        .await
        .unwrap()
        .bind(uri.id().to_owned(), "Target".into())
        .await
        .unwrap()
        .unwrap();
    let echo = |text: &str| Invoke {
        handle: bound.handle,
        method: 0,
        format: Format::Json,
        args: rmi::wire::Payload::from(serde_json::to_vec(&[text]).unwrap()),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut sent = numbered_request(echo("first"), 1, deadline);
    sent.extend(numbered_request(echo("second"), 2, deadline));
    let third = numbered_request(echo("third"), 3, deadline);
    sent.extend(&third[..third.len() / 2]);

    let mut client = raw(daemon.local_addr()).await;
    client.write_all(&sent).await.unwrap();
    client.shutdown().await.unwrap(); // the write side closes mid-frame; it still reads
    let mut replies = Vec::new();
    for _ in 0..2 {
        let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut client))
            .await
            .expect("a reply owed, within 5 s");
        replies.push(String::from_utf8_lossy(&reply).into_owned());
    }
    let answered = |text: &str| replies.iter().any(|r| r.contains(&format!("\"{text}\"")));
    assert!(answered("first") && answered("second"), "{replies:?}");
    assert!(
        closed_within(&mut client, Duration::from_secs(5)).await,
        "the daemon closes once the replies are written"
    );
    daemon.shutdown().await;
}

/// Opens `most` connections to `addr`, then one more every few milliseconds, and holds them
/// all until `stop` (10 s at most): silent ones say nothing; slow ones ("slowloris") begin a
/// request and send a byte of it now and then, never finishing it.
async fn crowd(addr: std::net::SocketAddr, slow: bool, most: usize, stop: Arc<AtomicBool>) {
    let open = || async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        if slow {
            // The opening, and the length of a request of 100 bytes.
            stream.write_all(b"RMI\x01\0\0\0\x64").await.ok()?;
        }
        Some(stream)
    };
    let mut held = Vec::new();
    for _ in 0..most {
        held.extend(open().await);
    }
    for round in 0..2000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        held.extend(open().await);
        if slow && round % 10 == 0 {
            for stream in &mut held {
                let _ = stream.try_write(b"x");
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_an_address_full_of_silent_or_slow_connections_is_served() {
    for slow in [false, true] {
        let daemon = rmi::Daemon::builder()
            .no_key()
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let uri = daemon.register(TargetServer).unwrap();
        daemon.spawn();
        let stop = Arc::new(AtomicBool::new(false));
        // More than the 128 connections one address may have, from the good client's own.
        let attack = tokio::spawn(crowd(daemon.local_addr(), slow, 200, stop.clone()));
        let full = support::eventually(Duration::from_secs(10), || async {
            daemon.connections() >= rmi::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
        });
        assert!(full.await, "the crowd never filled the address's places");
        let mut right = 0;
        let mut failures = Vec::new();
        for n in 0..20 {
            // A new connection for each call, as new processes of the same host make.
            let called = async {
                let target = TargetProxy::connect(&uri).await?;
                target.echo(format!("call {n}")).await
            };
            match called.await {
                Ok(echo) if echo == format!("call {n}") => right += 1,
                Ok(echo) => failures.push(format!("call {n}: wrong answer {echo}")),
                Err(e) => failures.push(format!("call {n}: {e}")),
            }
        }
        stop.store(true, Ordering::Relaxed);
        attack.await.unwrap();
        let kind = if slow { "slow" } else { "silent" };
        assert_eq!(right, 20, "beside {kind} connections: {failures:?}");
        daemon.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_refused_as_the_daemon_is_full_tries_again_within_its_connect_timeout() {
    let daemon = rmi::Daemon::builder()
        .no_key()
        .max_connections(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(TargetServer).unwrap();
    daemon.spawn();
    // The one place, taken by a client that has called (so it keeps it).
    let first = TargetProxy::connect(&uri).await.unwrap();
    assert_eq!(first.echo("one".into()).await.unwrap(), "one");
    let leaving = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(first);
    });
    let patient = rmi::ClientConfig::from_env()
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let second = async {
        let second = patient.connect::<TargetProxy>(&uri).await?;
        second.echo("two".into()).await
    };
    assert_eq!(second.await.unwrap(), "two");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "served at once: {waited:?}"
    );
    leaving.await.unwrap();
}
