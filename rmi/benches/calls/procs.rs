//! The deployment shape: servers in one process, clients in another, each on tokio's
//! multi-threaded runtime, over loopback.
//!
//! The bench runs itself again with `--serve` as the server process: it starts the three
//! servers, prints where they listen on stdout, and exits when its stdin closes (when the
//! client process ends, whatever the way).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_bytes::ByteBuf;
use tarpc::tokio_serde::formats::Bincode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::{
    connect, median, payload, raw_echo, tarpc_serve, BenchImpl, BenchProxy, BenchResult, Op,
    PlainBenchClient, Settings, STACKS,
};

/// One test of the deployment shape: two processes, as users deploy.
#[derive(Clone, Copy)]
pub enum Test {
    /// One connection, one call at a time.
    Sequential(Op),
    /// A new connection for each call: connecting, and the first call on it.
    ConnectAndCall,
    /// `n` connections, each with one call at a time.
    Connections(usize),
    /// `n` calls in flight: on one connection for rmi and tarpc, on `n` for the raw socket,
    /// which cannot multiplex.
    InFlight(usize),
    /// A stream of chunks of [`CHUNK_BYTES`] from the server: figures are chunks/s. tarpc
    /// has no streams; the raw socket sends the chunks as frames.
    StreamDown,
    /// The same to the server (an upload), which answers with the bytes it got.
    StreamUp,
}

/// The size of a stream's chunks.
pub const CHUNK_BYTES: u32 = 64 * 1024;

impl Test {
    pub const ALL: [Test; 9] = [
        Test::Sequential(Op::Add),
        Test::Sequential(Op::Echo1k),
        Test::ConnectAndCall,
        Test::Connections(8),
        Test::InFlight(64),
        Test::Sequential(Op::Echo1m),
        Test::Sequential(Op::EchoVec64k),
        Test::StreamDown,
        Test::StreamUp,
    ];

    pub fn op(self) -> &'static str {
        match self {
            Test::Sequential(op) => op.name(),
            Test::ConnectAndCall => "connect+add",
            Test::Connections(_) | Test::InFlight(_) => "add",
            Test::StreamDown => "stream-down",
            Test::StreamUp => "stream-up",
        }
    }

    pub fn shape(self) -> String {
        match self {
            Test::Sequential(_) | Test::ConnectAndCall | Test::StreamDown | Test::StreamUp => {
                "1x1".into()
            }
            Test::Connections(n) => format!("{n}x1"),
            Test::InFlight(n) => format!("1x{n}"),
        }
    }

    /// The payload bytes one call (or one chunk) carries each way, for MB/s; `None` for the
    /// tests of small calls.
    pub fn bytes(self) -> Option<usize> {
        match self {
            Test::Sequential(op @ (Op::Echo1m | Op::EchoVec64k)) => Some(op.bytes()),
            Test::StreamDown | Test::StreamUp => Some(CHUNK_BYTES as usize),
            _ => None,
        }
    }

    /// Whether `stack` has this test's shape (tarpc has no streams).
    pub fn measures(self, stack: usize) -> bool {
        !(matches!(self, Test::StreamDown | Test::StreamUp) && STACKS[stack] == "tarpc")
    }

    /// `op/shape`, as `--only` names it.
    pub fn name(self) -> String {
        format!("{}/{}", self.op(), self.shape())
    }

    /// Calls in flight at once: runs are sized in multiples of it.
    fn width(self) -> u64 {
        match self {
            Test::Sequential(_) | Test::ConnectAndCall | Test::StreamDown | Test::StreamUp => 1,
            Test::Connections(n) | Test::InFlight(n) => n as u64,
        }
    }
}

/// Where the server process listens, one line per stack.
#[derive(Clone)]
pub struct Servers {
    rmi: String,
    tarpc: SocketAddr,
    raw: SocketAddr,
    raw_chunks: SocketAddr,
}

/// The server process: runs until its stdin closes.
pub async fn serve() -> BenchResult<()> {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    let uri = daemon.register(BenchImpl)?;
    daemon.spawn();
    println!("rmi {uri}");
    println!("tarpc {}", super::listen(tarpc_serve).await);
    println!("raw {}", super::listen(raw_echo).await);
    println!("chunks {}", super::listen(raw_chunks).await);
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    while stdin.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Starts the server process and reads where it listens. The child dies with this process:
/// its stdin is a pipe from here.
pub async fn start_servers() -> BenchResult<(tokio::process::Child, Servers)> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the server process has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let rmi = announced(&mut lines, "rmi").await?;
    let tarpc = announced(&mut lines, "tarpc").await?.parse()?;
    let raw = announced(&mut lines, "raw").await?.parse()?;
    let raw_chunks = announced(&mut lines, "chunks").await?.parse()?;
    Ok((
        child,
        Servers {
            rmi,
            tarpc,
            raw,
            raw_chunks,
        },
    ))
}

/// The server process's next line, `STACK ADDRESS`: the address.
async fn announced(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stack: &str,
) -> BenchResult<String> {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| format!("the server process did not say where {stack} listens"))??
        .ok_or("the server process ended before it was ready")?;
    match line.strip_prefix(stack) {
        Some(address) => Ok(address.trim().to_owned()),
        None => Err(format!("expected `{stack} …` from the server process, got {line:?}").into()),
    }
}

/// The floor of a stream. Down: a request frame (`N` as 8 bytes, big-endian) answered with
/// `N` frames of [`CHUNK_BYTES`], each made anew as rmi's server makes its chunks. Up: a
/// request frame of 9 bytes (`u`, then `N`), then `N` frames from the client, answered with
/// the bytes they held (8 bytes, big-endian).
async fn raw_chunks(stream: tokio::net::TcpStream) {
    let mut framed = super::framed(stream);
    while let Some(Ok(request)) = framed.next().await {
        let served = match request.split_first() {
            Some((b'u', count)) => raw_upload(&mut framed, count).await,
            _ => raw_download(&mut framed, &request).await,
        };
        if served.is_none() {
            return;
        }
    }
}

async fn raw_download(framed: &mut RawFramed, count: &[u8]) -> Option<()> {
    let count = u64::from_be_bytes(count.try_into().ok()?);
    for i in 0..count {
        let chunk = Bytes::from(super::chunk(i, CHUNK_BYTES));
        framed.feed(chunk).await.ok()?;
    }
    SinkExt::<Bytes>::flush(framed).await.ok()
}

async fn raw_upload(framed: &mut RawFramed, count: &[u8]) -> Option<()> {
    let count = u64::from_be_bytes(count.try_into().ok()?);
    let mut bytes = 0u64;
    for _ in 0..count {
        bytes += framed.next().await?.ok()?.len() as u64;
    }
    let reply = Bytes::from(bytes.to_be_bytes().to_vec());
    framed.send(reply).await.ok()
}

type RawFramed = Framed<tokio::net::TcpStream, LengthDelimitedCodec>;

/// A connected client of one stack.
enum Client {
    Rmi(BenchProxy),
    Tarpc(PlainBenchClient),
    Raw(Framed<tokio::net::TcpStream, LengthDelimitedCodec>),
}

impl Servers {
    async fn connect(&self, stack: usize) -> BenchResult<Client> {
        Ok(match STACKS[stack] {
            "rmi" => Client::Rmi(BenchProxy::connect(&self.rmi).await?),
            "tarpc" => Client::Tarpc(
                PlainBenchClient::new(
                    tarpc::client::Config::default(),
                    tarpc::serde_transport::new(connect(self.tarpc).await, Bincode::default()),
                )
                .spawn(),
            ),
            _ => Client::Raw(connect(self.raw).await),
        })
    }

    /// A client of the stack for `test`: the raw socket's streams have their own server.
    async fn connect_for(&self, stack: usize, test: Test) -> BenchResult<Client> {
        match (test, STACKS[stack]) {
            (Test::StreamDown | Test::StreamUp, "tokio") => {
                Ok(Client::Raw(connect(self.raw_chunks).await))
            }
            _ => self.connect(stack).await,
        }
    }
}

impl Client {
    /// A second handle on the same connection, for the stacks that multiplex.
    fn share(&self) -> Option<Client> {
        match self {
            Client::Rmi(proxy) => Some(Client::Rmi(proxy.clone())),
            Client::Tarpc(client) => Some(Client::Tarpc(client.clone())),
            Client::Raw(_) => None,
        }
    }

    /// Makes `calls` calls of `op`, one after another, each reply checked. The large echoes
    /// pass their buffer along, each reply the next call's argument, as a program moving its
    /// data does: one allocation per call (the reply), as on the raw socket (its read). A
    /// copy made for every call, with the reply's allocation, left two large blocks free at
    /// once, and glibc's allocator gave them back to the system and took them again each
    /// time, a page fault per 4 KiB.
    async fn call_loop(&mut self, op: Op, calls: u64) -> BenchResult<()> {
        let data = payload(op);
        let mut passed = data.clone();
        let raw_request = op.raw_request();
        for i in 0..calls {
            let right = match (&mut *self, op) {
                (Client::Rmi(proxy), Op::Add) => proxy.add(i, 1).await? == i + 1,
                (Client::Rmi(proxy), Op::Echo1k) => proxy.echo(data.clone()).await? == data,
                (Client::Rmi(proxy), Op::Echo1m) => {
                    passed = proxy.echo(passed).await?;
                    passed == data
                }
                (Client::Rmi(proxy), Op::EchoVec64k) => {
                    passed = ByteBuf::from(proxy.echo_vec(passed.into_vec()).await?);
                    passed == data
                }
                (Client::Tarpc(client), Op::Add) => {
                    client.add(tarpc::context::current(), i, 1).await? == i + 1
                }
                (Client::Tarpc(client), Op::Echo1k) => {
                    client.echo(tarpc::context::current(), data.clone()).await? == data
                }
                (Client::Tarpc(client), Op::Echo1m) => {
                    passed = client.echo(tarpc::context::current(), passed).await?;
                    passed == data
                }
                (Client::Tarpc(client), Op::EchoVec64k) => {
                    let context = tarpc::context::current();
                    passed = ByteBuf::from(client.echo_vec(context, passed.into_vec()).await?);
                    passed == data
                }
                (Client::Raw(framed), _) => {
                    framed.send(raw_request.clone()).await?;
                    let reply = framed.next().await.ok_or("raw: connection closed")??;
                    reply == raw_request
                }
            };
            if !right {
                return Err(format!("{}: wrong reply to call {i}", op.name()).into());
            }
        }
        Ok(())
    }

    /// Reads a stream of `chunks` chunks from the server, checking each.
    async fn stream_down(&mut self, chunks: u64) -> BenchResult<()> {
        let mut received = 0;
        match self {
            Client::Rmi(proxy) => {
                let mut stream = proxy.download(chunks, CHUNK_BYTES).await?;
                while let Some(chunk) = stream.next().await {
                    check_chunk(received, &chunk?)?;
                    received += 1;
                }
            }
            Client::Raw(framed) => {
                framed
                    .send(Bytes::from(chunks.to_be_bytes().to_vec()))
                    .await?;
                while received < chunks {
                    let chunk = framed.next().await.ok_or("raw: connection closed")??;
                    check_chunk(received, &chunk)?;
                    received += 1;
                }
            }
            Client::Tarpc(_) => return Err("tarpc has no streams".into()),
        }
        if received != chunks {
            return Err(format!("stream: {received} chunks of {chunks}").into());
        }
        Ok(())
    }
}

impl Client {
    /// Sends a stream of `chunks` chunks to the server, each made anew as a file's would be
    /// read, and checks the bytes it says it got.
    async fn stream_up(&mut self, chunks: u64) -> BenchResult<()> {
        let got = match self {
            Client::Rmi(proxy) => {
                let made = (0..chunks).map(|i| super::chunk(i, CHUNK_BYTES));
                proxy.upload(rmi::Stream::iter(made)).await?
            }
            Client::Raw(framed) => {
                let mut request = vec![b'u'];
                request.extend_from_slice(&chunks.to_be_bytes());
                framed.feed(Bytes::from(request)).await?;
                for i in 0..chunks {
                    framed
                        .feed(Bytes::from(super::chunk(i, CHUNK_BYTES)))
                        .await?;
                }
                SinkExt::<Bytes>::flush(framed).await?;
                let reply = framed.next().await.ok_or("raw: connection closed")??;
                u64::from_be_bytes(reply[..].try_into()?)
            }
            Client::Tarpc(_) => return Err("tarpc has no streams".into()),
        };
        if got != chunks * u64::from(CHUNK_BYTES) {
            return Err(format!("upload: the server got {got} bytes").into());
        }
        Ok(())
    }
}

/// Checks chunk `i` of a stream, so that a broken stack cannot look fast.
fn check_chunk(i: u64, chunk: &[u8]) -> BenchResult<()> {
    let right = chunk.len() == CHUNK_BYTES as usize && chunk.iter().all(|&b| b == i as u8);
    if right {
        Ok(())
    } else {
        Err(format!("stream: wrong chunk {i}").into())
    }
}

/// What one stack keeps between the runs of one test: its connections, made once.
struct Prepared {
    stack: usize,
    clients: Vec<Client>,
}

async fn prepare(servers: &Servers, stack: usize, test: Test) -> BenchResult<Prepared> {
    let mut clients = Vec::new();
    match test {
        Test::Sequential(_) | Test::StreamDown | Test::StreamUp => {
            clients.push(servers.connect_for(stack, test).await?)
        }
        Test::ConnectAndCall => {}
        Test::Connections(n) => {
            for _ in 0..n {
                clients.push(servers.connect(stack).await?);
            }
        }
        Test::InFlight(n) => {
            let first = servers.connect(stack).await?;
            while clients.len() + 1 < n {
                match first.share() {
                    Some(shared) => clients.push(shared),
                    None => clients.push(servers.connect(stack).await?),
                }
            }
            clients.push(first);
        }
    }
    Ok(Prepared { stack, clients })
}

impl Prepared {
    /// Makes `calls` calls (a multiple of the test's width) and returns how long they took.
    async fn run(&mut self, servers: &Servers, test: Test, calls: u64) -> BenchResult<Duration> {
        let start = Instant::now();
        match test {
            Test::ConnectAndCall => {
                for _ in 0..calls {
                    let mut client = servers.connect(self.stack).await?;
                    client.call_loop(Op::Add, 1).await?;
                }
            }
            Test::Sequential(op) => self.clients[0].call_loop(op, calls).await?,
            Test::StreamDown => self.clients[0].stream_down(calls).await?,
            Test::StreamUp => self.clients[0].stream_up(calls).await?,
            Test::Connections(_) | Test::InFlight(_) => {
                // One task per connection (or per shared handle), as independent clients
                // are: the runtime spreads them over its threads.
                let per_task = calls / self.clients.len() as u64;
                let tasks: Vec<_> = std::mem::take(&mut self.clients)
                    .into_iter()
                    .map(|mut client| {
                        tokio::spawn(async move {
                            let result = client.call_loop(Op::Add, per_task).await;
                            result.map(|()| client).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                for task in tasks {
                    self.clients.push(task.await??);
                }
            }
        }
        Ok(start.elapsed())
    }
}

/// calls/s of each stack (in [`STACKS`] order) on one test, medians over interleaved rounds;
/// NaN for a stack without the test's shape.
pub struct Row {
    pub test: Test,
    pub calls_per_s: Vec<f64>,
}

pub async fn measure(servers: &Servers, test: Test, settings: &Settings) -> BenchResult<Row> {
    let mut prepared = Vec::new();
    let mut calls = Vec::new();
    for stack in 0..STACKS.len() {
        let mut stack = prepare(servers, stack, test).await?;
        if test.measures(stack.stack) {
            calls.push(calibrate(&mut stack, servers, test, settings).await?);
        } else {
            calls.push(0);
        }
        prepared.push(stack);
    }
    let mut samples = vec![Vec::with_capacity(settings.runs); STACKS.len()];
    for round in 0..settings.runs {
        for i in (0..STACKS.len()).map(|k| (round + k) % STACKS.len()) {
            if !test.measures(i) {
                samples[i].push(f64::NAN);
                continue;
            }
            let elapsed = prepared[i].run(servers, test, calls[i]).await?;
            samples[i].push(calls[i] as f64 / elapsed.as_secs_f64());
        }
    }
    Ok(Row {
        test,
        calls_per_s: samples.into_iter().map(median).collect(),
    })
}

/// Makes about `calls` calls of `test` with one stack, once and untimed; returns how many
/// were made (a multiple of the test's width).
pub async fn count(servers: &Servers, test: Test, stack: usize, calls: u64) -> BenchResult<u64> {
    let mut prepared = prepare(servers, stack, test).await?;
    let calls = calls.div_ceil(test.width()).max(1) * test.width();
    prepared.run(servers, test, calls).await?;
    Ok(calls)
}

/// Warms up with doubling batches until one takes `settings.warmup`; returns how many calls
/// take about `settings.run_time`.
async fn calibrate(
    stack: &mut Prepared,
    servers: &Servers,
    test: Test,
    settings: &Settings,
) -> BenchResult<u64> {
    let width = test.width();
    let mut calls = width;
    loop {
        let elapsed = stack.run(servers, test, calls).await?;
        if elapsed >= settings.warmup {
            let wanted = calls as f64 * settings.run_time.as_secs_f64() / elapsed.as_secs_f64();
            return Ok((wanted as u64).div_ceil(width).max(1) * width);
        }
        calls *= 2;
    }
}
