//! Helpers the test files share, as tokio's `tests/support/` holds them: each test file is a
//! crate of its own and includes this module with `mod support;`.
//!
//! A file uses some of the helpers only, so unused ones are not warned about.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmi::{Daemon, Expose, ObjectUri, Proxy};
use tokio::time::Instant;

/// How long a test waits, by default, for something the server does in the background.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How often [`eventually`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Asks `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
///
/// Bounded both ways: at most `limit / 20 ms + 1` looks, and a look that has not answered
/// by the deadline counts as `false`, so a hung call cannot hold the test.
pub async fn eventually<F, Fut>(limit: Duration, condition: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    let looks = limit.as_millis() / POLL_EVERY.as_millis() + 1;
    for _ in 0..looks {
        let answer = tokio::time::timeout_at(deadline, condition()).await;
        if answer == Ok(true) {
            return true;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    false
}

/// A daemon on an ephemeral loopback port, serving `object`, and the object's URI.
///
/// The exposed trait is inferred from `object` when it serves one.
pub async fn serve<P, O>(object: O) -> (Daemon, ObjectUri)
where
    P: Proxy,
    O: Send + Sync + 'static,
    Arc<O>: Expose<P>,
{
    let daemon = Daemon::bind("127.0.0.1:0")
        .await
        .expect("a daemon on loopback");
    let uri = daemon
        .register::<P, O>(object)
        .expect("the object registers");
    daemon.spawn();
    (daemon, uri)
}

/// [`serve`], and a proxy connected to the object.
pub async fn serve_and_connect<P, O>(object: O) -> (Daemon, P)
where
    P: Proxy,
    O: Send + Sync + 'static,
    Arc<O>: Expose<P>,
{
    let (daemon, uri) = serve::<P, O>(object).await;
    let proxy = rmi::connect::<P>(&uri).await.expect("the proxy connects");
    (daemon, proxy)
}

/// A count shared between an object and its test (clones count together): calls made,
/// items produced, instances alive.
#[derive(Clone, Debug, Default)]
pub struct Count(Arc<AtomicU64>);

impl Count {
    /// Adds `n` and returns the new count.
    pub fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::SeqCst) + n
    }

    /// Adds one and returns the new count.
    pub fn one_more(&self) -> u64 {
        self.add(1)
    }

    /// Takes one away.
    pub fn one_less(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The resident memory of this process (which hosts the daemon under test), in KiB.
pub fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux's /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in KiB")
}

/// A loopback relay to `target` whose daemon seems far away: what the daemon sends on each
/// connection reaches the client `delay` late (its hello first). Returns the relay's address;
/// it relays until the test's runtime ends.
pub async fn slow_relay(target: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a relay on loopback");
    let address = listener.local_addr().expect("the relay's address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, target, delay));
        }
    });
    address
}

async fn relay(client: tokio::net::TcpStream, target: std::net::SocketAddr, delay: Duration) {
    let Ok(daemon) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let _ = daemon.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_daemon, mut to_daemon) = daemon.into_split();
    let up = tokio::io::copy(&mut from_client, &mut to_daemon);
    let down = async {
        tokio::time::sleep(delay).await;
        tokio::io::copy(&mut from_daemon, &mut to_client).await
    };
    let _ = futures::future::join(up, down).await;
}

/// The object the attack tests aim at (`hostile.rs`, `fair.rs`): an echo, and a sum that takes
/// a nested value.
#[rmi::expose]
pub trait Target {
    async fn echo(&self, text: String) -> String;
    async fn total(&self, numbers: Vec<Vec<u64>>) -> u64;
}

/// The [`Target`] the attack tests register.
pub struct TargetServer;

impl Target for TargetServer {
    async fn echo(&self, text: String) -> String {
        text
    }
    async fn total(&self, numbers: Vec<Vec<u64>>) -> u64 {
        numbers.iter().flatten().sum()
    }
}
