//! Hostile clients cannot exhaust a daemon's memory or lock out other clients: one that never
//! reads its replies is no longer read itself, and one address holding silent, slow and
//! half-sent connections while flooding new ones leaves room for clients on other addresses.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rmi::wire::{encode_request, Invoke};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use support::{resident_kib, TargetProxy, TargetServer};

/// Connects from `from` (any 127.x.y.z is this machine), says it is an rmi client and reads
/// the daemon's hello.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    let mut stream = socket.connect(to).await?;
    stream.write_all(b"RMI\x01").await?;
    let mut hello = [0u8; 9];
    stream.read_exact(&mut hello).await?;
    if hello[4] == 2 {
        return Err(std::io::Error::other("refused: the daemon is full"));
    }
    Ok(stream)
}

/// A request frame calling `echo("x")` on the object with `handle`.
fn echo_frame(handle: u64) -> Vec<u8> {
    let invoke = Invoke {
        handle,
        method: 0,
        format: rmi::wire::Format::Bincode,
        args: rmi::wire::Format::Bincode
            .encode(&("x".to_owned(),))
            .unwrap(),
    };
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + Duration::from_secs(600);
    let message = tarpc::ClientMessage::Request(tarpc::Request {
        context,
        id: 1,
        message: invoke,
    });
    let body = encode_request(&message).unwrap();
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    framed
}

/// Calls `echo` in a loop until `until`; the latency of each call, in order.
async fn good_client(uri: rmi::ObjectUri, until: Instant) -> Vec<Duration> {
    let target = TargetProxy::connect(&uri).await.unwrap();
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(target.echo("good".into()).await.unwrap(), "good");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

/// Held by the test that measures this process's memory and by the one that opens hundreds of
/// connections, so that the one does not count the other's.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_replies_cannot_grow_the_daemons_memory() {
    let _alone = MEMORY.lock().await;
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register_with_id("target", TargetServer).unwrap();
    daemon.spawn();
    // Bound once, so the attack knows the object's handle.
    let warm = TargetProxy::connect(&uri).await.unwrap();
    assert_eq!(warm.echo("warm".into()).await.unwrap(), "warm");
    let before = resident_kib();

    let attack_for = Duration::from_secs(6);
    let until = Instant::now() + attack_for;
    let addr = daemon.local_addr();
    let attack = tokio::spawn(async move {
        // Handle 1: the first object registered (0 is the daemon's own).
        let frame = echo_frame(1).repeat(256);
        let mut stream = connect_from("127.0.0.2", addr).await.unwrap();
        let mut sent = 0u64;
        while Instant::now() < until {
            match tokio::time::timeout(Duration::from_millis(200), stream.write_all(&frame)).await {
                Ok(Ok(())) => sent += 256,
                Ok(Err(_)) => break,
                Err(_) => {} // The daemon stopped reading: back-pressure, as it should.
            }
        }
        (sent, stream)
    });
    let latencies = good_client(uri.clone(), until).await;
    let (sent, stream) = attack.await.unwrap();
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    let p99 = p99(latencies.clone());
    eprintln!(
        "no-read attack: {sent} requests written in {attack_for:?}; daemon grew {grown_mib} MiB; good client {} calls, p99 {p99:?}",
        latencies.len()
    );
    assert!(grown_mib < 64, "the daemon grew by {grown_mib} MiB");
    assert!(
        latencies.len() > 50,
        "the good client made {} calls",
        latencies.len()
    );
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
    drop((stream, warm));
    // The attacker gone, its calls end and the connection closes.
    let all_closed = || async { daemon.connections() == 0 };
    assert!(
        support::eventually(Duration::from_secs(10), all_closed).await,
        "{} connections left open",
        daemon.connections()
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_and_flooding_connections_cannot_lock_out_another() {
    let _alone = MEMORY.lock().await;
    let daemon = rmi::Daemon::builder()
        .max_connections(200)
        .max_connections_per_address(50)
        .first_request_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(2))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(TargetServer).unwrap();
    daemon.spawn();
    let addr = daemon.local_addr();

    // From 127.0.0.2: silent connections, half-sent frames, a byte now and then, and a flood.
    let mut held = Vec::new();
    for i in 0..40 {
        let mut stream = connect_from("127.0.0.2", addr).await.unwrap();
        match i % 3 {
            0 => {}                                                    // silent
            1 => stream.write_all(&[0, 0, 1, 0, 7, 7]).await.unwrap(), // a frame begun
            _ => stream.write_all(&[0]).await.unwrap(),                // slowloris, below
        }
        held.push(stream);
    }
    // Past its cap of 50, each new connection of that address takes the place of its oldest
    // that has sent no complete request: none is refused, and the address never has more.
    let mut refused = 0;
    for _ in 0..300 {
        match connect_from("127.0.0.2", addr).await {
            Ok(stream) => held.push(stream),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(refused, 0, "the flood was refused rather than let in");
    assert!(daemon.connections() <= 50, "{}", daemon.connections());

    // From 127.0.0.1 a client still connects and is served, at once.
    let started = Instant::now();
    let target = TargetProxy::connect(&uri).await.unwrap();
    assert_eq!(
        target.echo("still here".into()).await.unwrap(),
        "still here"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // The slow, silent and half-sent connections are closed within their deadlines, however
    // often the slow ones send a byte.
    let dribble = Instant::now();
    while dribble.elapsed() < Duration::from_secs(4) {
        for stream in held.iter_mut().skip(2).step_by(3) {
            let _ = stream.write_all(&[0]).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let only_the_good_one = || async { daemon.connections() == 1 };
    assert!(
        support::eventually(Duration::from_secs(5), only_the_good_one).await,
        "only the good client's is left: {} open",
        daemon.connections()
    );
    assert_eq!(target.echo("after".into()).await.unwrap(), "after");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_even_when_a_client_never_takes_its_replies() {
    let daemon = rmi::Daemon::builder()
        .grace_period(Duration::from_millis(200))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    daemon.register_with_id("target", TargetServer).unwrap();
    let serving = daemon.spawn();
    let mut stream = connect_from("127.0.0.2", daemon.local_addr())
        .await
        .unwrap();
    // Requests until the daemon stops reading them, and no reply ever read.
    let frames = echo_frame(1).repeat(256);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let write = stream.write_all(&frames);
        let _ = tokio::time::timeout(Duration::from_millis(100), write).await;
    }
    let started = Instant::now();
    daemon.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns although the client takes no reply")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(stream);
}
