//! Runs each attack of a hostile client in turn against a fresh daemon process, while a good
//! client calls it, and prints what the daemon went through:
//!
//! ```sh
//! cargo run --release -p rmi-tests --bin hostile -- --secs 20
//! ```
//!
//! For each attack: the daemon's resident memory before and at the end, the lines it logged,
//! and the good client's calls and their 99th percentile latency. Then two measures: what an
//! idle connection costs the daemon, and many clients at once (`--clients` connections, 100
//! from each loopback address, each making `--calls` calls, every answer checked).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rmi::wire::{encode_request, Format, Invoke};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Attacks a daemon as hostile clients would, one attack at a time, and prints a table.
#[derive(Parser)]
struct Args {
    /// How long each attack lasts, in seconds.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Only the attacks (and measures: `idle connections`) whose names contain this.
    #[arg(long)]
    only: Option<String>,
    /// How many idle connections to measure the cost of one with (each process needs as
    /// many file descriptors: `ulimit -n`).
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// How many clients call at once in the "many clients" measure (file descriptors:
    /// `ulimit -n`).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// How many calls each of those clients makes, one after another.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// (internal) Serve the target daemon, as the attacks' victim.
    #[arg(long, hide = true)]
    serve: bool,
}

#[rmi::expose]
pub trait Target {
    async fn echo(&self, text: String) -> String;
}

struct Server;

impl Target for Server {
    async fn echo(&self, text: String) -> String {
        text
    }
}

/// The attacks, by name.
const ATTACKS: [&str; 6] = [
    "no-read pipelining",
    "silent connections",
    "half-sent frames",
    "slowloris",
    "connection flood",
    "garbage frames",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.serve {
        return serve().await;
    }
    let secs = Duration::from_secs(args.secs);
    println!("| attack | daemon RSS before | at the end | lines logged | good calls | good p99 |");
    println!("|---|---|---|---|---|---|");
    for attack in ATTACKS {
        if args
            .only
            .as_deref()
            .is_some_and(|only| !attack.contains(only))
        {
            continue;
        }
        let row = run_attack(attack, secs).await?;
        println!("{row}");
    }
    if args.only.as_deref().is_none_or(|only| IDLE.contains(only)) {
        let (count, kib, reused) = idle_cost(args.idle).await?;
        println!(
            "\nAn idle connection (one call made, then nothing) costs the daemon {kib:.1} KiB ({count} connections); {reused:.1} KiB each for {count} more, once the first were quiet for 3 s."
        );
    }
    if args.only.as_deref().is_none_or(|only| MANY.contains(only)) {
        let many = many_clients(args.clients, args.calls).await?;
        println!(
            "\n{} clients at once, {} calls each: {} right answers, {} wrong, {} failed, in {:.1} s ({:.0} calls/s).",
            args.clients,
            args.calls,
            many.right,
            many.wrong,
            many.failed,
            many.took.as_secs_f64(),
            many.right as f64 / many.took.as_secs_f64()
        );
        if many.wrong + many.failed > 0 {
            return Err(format!("{} wrong and {} failed answers", many.wrong, many.failed).into());
        }
    }
    Ok(())
}

/// The name `--only` selects the measure of many clients by.
const MANY: &str = "many clients";

/// What [`many_clients`] counted.
#[derive(Default)]
struct Many {
    right: u64,
    wrong: u64,
    failed: u64,
    took: Duration,
}

/// `clients` connections at once, 100 from each loopback address (under the per-address cap),
/// each making `calls` echo calls one after another; every reply checked against the first.
async fn many_clients(clients: usize, calls: usize) -> Result<Many, Box<dyn std::error::Error>> {
    let (mut victim, addr, _) = start_victim()?;
    let expected = {
        let mut stream = connect_from("127.0.2.1", addr).await?;
        stream.write_all(&echo_frame()).await?;
        read_frame(&mut stream).await?
    };
    let expected = Arc::new(expected);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut counted = Many::default();
                let from = format!("127.0.{}.{}", 3 + i / 25_000, 1 + (i / 100) % 250);
                let Ok(mut stream) = connect_from(&from, addr).await else {
                    counted.failed = calls as u64;
                    return counted;
                };
                for _ in 0..calls {
                    let answered = async {
                        stream.write_all(&echo_frame()).await?;
                        read_frame(&mut stream).await
                    };
                    match answered.await {
                        Ok(reply) if reply == *expected => counted.right += 1,
                        Ok(_) => counted.wrong += 1,
                        Err(_) => {
                            counted.failed += 1;
                            break;
                        }
                    }
                }
                counted
            })
        })
        .collect();
    let mut many = Many::default();
    for task in tasks {
        let counted = task.await?;
        many.right += counted.right;
        many.wrong += counted.wrong;
        many.failed += counted.failed;
    }
    many.took = started.elapsed();
    let _ = victim.kill();
    let _ = victim.wait();
    Ok(many)
}

/// Reads one frame's body.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// The name `--only` selects the measure of idle connections by.
const IDLE: &str = "idle connections";

/// Starts the victim daemon: its process, address and the lines it logs, counted.
fn start_victim(
) -> Result<(std::process::Child, SocketAddr, Arc<AtomicU64>), Box<dyn std::error::Error>> {
    let mut victim = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(victim.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let addr: SocketAddr = line.trim().parse()?;
    let logged = Arc::new(AtomicU64::new(0));
    let stderr = victim.stderr.take().expect("piped");
    let counter = logged.clone();
    std::thread::spawn(move || {
        for _ in BufReader::new(stderr).lines().map_while(Result::ok) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok((victim, addr, logged))
}

/// What `count` idle connections, each past its first call, cost the daemon: KiB each, just
/// after their calls, and of `count` more made once the first had been quiet for 3 s (their
/// read buffers let go by then, for the new ones to reuse).
async fn idle_cost(count: usize) -> Result<(usize, f64, f64), Box<dyn std::error::Error>> {
    let (mut victim, addr, _) = start_victim()?;
    let mut held = Vec::with_capacity(2 * count);
    let mut kib_each = Vec::new();
    for round in 0..2 {
        let before = resident_kib(victim.id());
        for i in round * count..(round + 1) * count {
            // 100 connections per source address, under the per-address limit.
            let from = format!("127.0.{}.{}", 1 + i / 25_000, 1 + (i / 100) % 250);
            let mut stream = connect_from(&from, addr).await?;
            stream.write_all(&echo_frame()).await?;
            let mut length = [0u8; 4];
            stream.read_exact(&mut length).await?;
            let mut reply = vec![0u8; u32::from_be_bytes(length) as usize];
            stream.read_exact(&mut reply).await?;
            held.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = resident_kib(victim.id());
        kib_each.push(after.saturating_sub(before) as f64 / count as f64);
        if round == 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    let _ = victim.kill();
    let _ = victim.wait();
    Ok((count, kib_each[0], kib_each[1]))
}

/// The victim: a daemon with default settings, logging as the demos do.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(rmi::log_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        )))
        .with_writer(std::io::stderr)
        .init();
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    daemon.register_with_id("target", Server)?;
    println!("{}", daemon.local_addr());
    daemon.serve_until_signal().await?;
    Ok(())
}

/// One attack against a fresh daemon: its row of the table.
async fn run_attack(attack: &str, secs: Duration) -> Result<String, Box<dyn std::error::Error>> {
    let (mut victim, addr, logged) = start_victim()?;
    let uri: rmi::ObjectUri = format!("rmi:target@{addr}").parse()?;
    let good = TargetProxy::connect(&uri).await?;
    let before = resident_kib(victim.id());
    let until = Instant::now() + secs;
    let attacking = tokio::spawn(attack_until(attack.to_owned(), addr, until));
    let mut latencies = Vec::new();
    let mut failed = 0u64;
    while Instant::now() < until {
        let started = Instant::now();
        match good.echo("good".into()).await {
            Ok(_) => latencies.push(started.elapsed()),
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = resident_kib(victim.id());
    attacking.abort();
    let _ = victim.kill();
    let _ = victim.wait();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    let calls = if failed > 0 {
        format!("{} ({failed} failed)", latencies.len())
    } else {
        latencies.len().to_string()
    };
    Ok(format!(
        "| {attack} | {:.1} MiB | {:.1} MiB | {} | {calls} | {:.1} ms |",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        logged.load(Ordering::Relaxed),
        p99.as_secs_f64() * 1000.0
    ))
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Connects from `127.0.0.2` (the good client uses `127.0.0.1`) and reads the hello.
async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    connect_from("127.0.0.2", addr).await
}

/// Connects from `from` (any `127.x.y.z` is this machine), says it is an rmi client
/// (`RMI` 0x01) and reads the hello.
async fn connect_from(from: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().map_err(std::io::Error::other)?)?;
    let mut stream = socket.connect(addr).await?;
    stream.write_all(b"RMI\x01").await?;
    let mut hello = [0u8; 9];
    stream.read_exact(&mut hello).await?;
    Ok(stream)
}

/// A request frame calling `echo` on the daemon's first object.
fn echo_frame() -> Vec<u8> {
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + Duration::from_secs(10);
    let message = tarpc::ClientMessage::Request(tarpc::Request {
        context,
        id: 1,
        message: Invoke {
            handle: 1,
            method: 0,
            format: Format::Bincode,
            args: Format::Bincode.encode(&("x".to_owned(),)).expect("encodes"),
        },
    });
    let body = encode_request(&message).expect("encodes");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Runs `attack` until `until`.
async fn attack_until(attack: String, addr: SocketAddr, until: Instant) {
    let mut held = Vec::new();
    while Instant::now() < until {
        match attack.as_str() {
            "no-read pipelining" => {
                let Ok(mut stream) = connect(addr).await else {
                    continue;
                };
                let frames = echo_frame().repeat(256);
                while Instant::now() < until {
                    let write = stream.write_all(&frames);
                    let _ = tokio::time::timeout(Duration::from_millis(200), write).await;
                }
            }
            "silent connections" | "half-sent frames" | "slowloris" => {
                if let Ok(mut stream) = connect(addr).await {
                    if attack != "silent connections" {
                        let _ = stream.write_all(&[0, 0, 1, 0, 1]).await;
                    }
                    held.push(stream);
                }
                if attack == "slowloris" {
                    for stream in &mut held {
                        let _ = stream.write_all(&[0]).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            "connection flood" => {
                if let Ok(stream) = connect(addr).await {
                    held.push(stream);
                }
            }
            _ => {
                // Garbage: a frame of random bytes, with a line break inside.
                if let Ok(mut stream) = connect(addr).await {
                    let mut garbage = vec![0, 0, 0, 40];
                    garbage.extend((0..40u8).map(|i| i.wrapping_mul(37) ^ b'\n'));
                    let _ = stream.write_all(&garbage).await;
                }
            }
        }
    }
}
