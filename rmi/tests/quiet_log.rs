//! A flood of bad connections leaves a short log: warnings about peers are written at most
//! once a second per kind, each on one line, whatever the peers sent.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[rmi::expose]
pub trait Quiet {
    async fn ping(&self);
}

struct Server;

impl Quiet for Server {
    async fn ping(&self) {}
}

/// The log, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_connections_writes_a_few_lines() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(rmi::log_filter(None)))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (daemon, uri) = support::serve(Server).await;
    let addr = daemon.local_addr();

    let flood_for = Duration::from_secs(3);
    let started = Instant::now();
    let mut connections = 0;
    while started.elapsed() < flood_for {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            continue;
        };
        let mut hello = [0u8; 9];
        let opened = stream.write_all(b"RMI\x01").await;
        if opened.is_err() || stream.read_exact(&mut hello).await.is_err() {
            continue;
        }
        // A frame of garbage with line breaks and escape codes in it.
        let body = b"\n\x1b[31mnot a request\r\n\0\0";
        let mut garbage = (body.len() as u32).to_be_bytes().to_vec();
        garbage.extend_from_slice(body);
        let _ = stream.write_all(&garbage).await;
        let _ = stream.read(&mut hello).await;
        connections += 1;
    }
    // The daemon still serves.
    QuietProxy::connect(&uri)
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
    daemon.shutdown().await;

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(connections > 100, "only {connections} bad connections");
    assert!(
        lines.len() <= 12,
        "{connections} bad connections in {flood_for:?} wrote {} lines:\n{text}",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("connection dropped")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains("suppressed=")), "{text}");
    // Each line is one event: it starts with its timestamp.
    for line in &lines {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a split line: {line:?}"
        );
    }
}
