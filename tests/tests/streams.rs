//! Streams across processes: `feed_server` streams lines as a producer task makes them; this
//! process (or `feed_client`, or `rmi call`) reads them.

use std::time::Duration;

use rmi_examples::feed::{FeedProxy, FeedStats};
use rmi_tests::{binary, example, run, stdout, NameServer, Running};

/// How far a producer may run ahead of its reader: two pulls of 256 lines, the producer's
/// channel of 16, and the line in its hands.
const MOST_AHEAD: u64 = 2 * 256 + 16 + 1;

fn feed_server(ns: &NameServer) -> Running {
    let mut server = Running::start("feed_server", ns.client(example("feed_server")));
    server.expect_line("Feed ready");
    server
}

async fn feed(ns: &NameServer) -> FeedProxy {
    FeedProxy::connect(format!("rminame:feed@127.0.0.1:{}", ns.port))
        .await
        .unwrap()
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits (at most 10 s) until the feed's producers have all stopped.
async fn producers_stopped(feed: &FeedProxy) -> FeedStats {
    let mut stats = feed.stats().await.unwrap();
    for _ in 0..200 {
        if stats.producing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = feed.stats().await.unwrap();
    }
    stats
}

#[tokio::test]
async fn a_slow_consumer_reads_100_000_lines_while_the_server_s_memory_stays_bounded() {
    let ns = NameServer::start();
    let server = feed_server(&ns);
    let feed = feed(&ns).await;
    let before = resident_kib(server.pid());
    // 100,000 lines of 1 KiB: about 100 MiB in all, were the producer not held back.
    let mut lines = feed.lines(100_000, 1024, 0).await.unwrap();
    let (mut read, mut most_ahead, mut most_resident) = (0u64, 0u64, before);
    while let Some(line) = lines.next().await {
        let line = line.unwrap();
        read += 1;
        assert_eq!(line.n, read);
        assert_eq!(line.text.len(), 1024);
        if read % 100 == 0 {
            // The consumer is the slow side: 1 ms every 100 lines, 1 s in all at least.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if read % 5_000 == 0 {
            let produced = feed.stats().await.unwrap().produced;
            most_ahead = most_ahead.max(produced - read);
            most_resident = most_resident.max(resident_kib(server.pid()));
        }
    }
    assert_eq!(read, 100_000);
    assert!(
        most_ahead <= MOST_AHEAD,
        "the producer ran {most_ahead} lines ahead"
    );
    let grew_mib = (most_resident - before) / 1024;
    assert!(grew_mib < 32, "the server grew by {grew_mib} MiB");
    assert_eq!(producers_stopped(&feed).await.producing, 0);
}

#[tokio::test]
async fn dropping_a_stream_early_stops_the_producer() {
    let ns = NameServer::start();
    let _server = feed_server(&ns);
    let feed = feed(&ns).await;
    let mut lines = feed.lines(10_000_000, 0, 0).await.unwrap();
    for n in 1..=10 {
        assert_eq!(lines.next().await.unwrap().unwrap().n, n);
    }
    drop(lines);
    let stopped = producers_stopped(&feed).await;
    assert_eq!(stopped.producing, 0, "the producer still runs");
    assert!(stopped.produced <= 10 + MOST_AHEAD, "{stopped:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(feed.stats().await.unwrap().produced, stopped.produced);
}

#[tokio::test]
async fn a_client_killed_mid_stream_stops_the_producer() {
    let ns = NameServer::start();
    let _server = feed_server(&ns);
    let mut command = ns.client(example("feed_client"));
    command.args(["--count", "10000000", "--every-ms", "0", "--slow-ms", "10"]);
    let mut client = Running::start("feed_client", command);
    client.expect_line("line 3");
    let feed = feed(&ns).await;
    assert_eq!(feed.stats().await.unwrap().producing, 1);
    client.kill_9();
    assert_eq!(
        producers_stopped(&feed).await.producing,
        0,
        "the producer still runs"
    );
}

#[test]
fn feed_client_prints_lines_as_they_come_and_take_stops_early() {
    let ns = NameServer::start();
    let _server = feed_server(&ns);
    let output = run(
        ns.client(example("feed_client"))
            .args(["--count", "3", "--every-ms", "100"]),
        "",
    );
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{printed}");
    for (i, line) in lines[..3].iter().enumerate() {
        assert!(
            line.starts_with('+') && line.ends_with(&format!(" line {}", i + 1)),
            "{line}"
        );
    }
    assert_eq!(lines[3], "received 3 lines");
    let output = run(
        ns.client(example("feed_client")).args([
            "--count",
            "1000",
            "--every-ms",
            "0",
            "--take",
            "5",
            "--quiet",
        ]),
        "",
    );
    assert_eq!(stdout(&output), "stopped after 5 lines\n");
}

#[test]
fn rmi_call_prints_each_item_of_a_stream_on_its_own_line() {
    let ns = NameServer::start();
    let _server = feed_server(&ns);
    let output = run(
        ns.client(binary("rmi"))
            .args(["call", "rminame:feed", "lines", "[3, 0, 0]"]),
        "",
    );
    assert_eq!(
        stdout(&output),
        "{\"n\":1,\"text\":\"line 1\"}\n{\"n\":2,\"text\":\"line 2\"}\n{\"n\":3,\"text\":\"line 3\"}\n"
    );
}
