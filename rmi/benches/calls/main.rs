//! What a call through rmi costs next to plain tarpc doing the same work over the same kind of
//! connection, with a raw tokio socket as the floor.
//!
//! `cargo bench -p rmi --bench calls [-- --json] [-- --quick]` measures `add(u64, u64) -> u64`
//! and an echo of 1 KiB in two settings:
//!
//! - **one process:** client and servers share one current-thread runtime on loopback, so
//!   the figures count the CPU work of both ends rather than thread hand-offs; sequential
//!   latency (`1x1`: one proxy, one call at a time) and throughput (`1x64`: one proxy, 64
//!   calls in flight);
//! - **two processes** (`procs.rs`): servers in one, clients in the other, both on tokio's
//!   multi-threaded runtime, as users deploy: sequential calls, a new connection per call,
//!   8 connections, and 64 calls in flight; then data: an echo of 1 MiB (`ByteBuf`), an
//!   echo of 64 KiB as a plain `Vec<u8>`, and streams of 64 KiB chunks (`Stream<Vec<u8>>`)
//!   from the server and to it (an upload), with MB/s beside calls/s.
//!
//! Each figure is the median of several timed runs, each sized to take about the same wall
//! time after a warm-up; the stacks' runs are interleaved (rmi, tarpc, tokio, tarpc, tokio,
//! rmi, …) so that noise on the machine hits them alike. The raw tokio rows at 1x64 pipeline
//! 64 requests before reading the 64 replies: a socket has no calls to keep in flight.
//!
//! `-- --only add/8x1` measures one two-process test alone; `-- --only add/8x1 --stack rmi
//! --calls 200000` makes that many calls with one stack, untimed, for a profiler or
//! `strace -c -f` to count system calls per call. With `--one-process` (`-- --one-process
//! --only add/1x64 --stack rmi --calls 20000`) client and server share one thread, so that
//! `valgrind --tool=callgrind` counts the instructions of a call at both ends.

mod procs;

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::{join_all, LocalBoxFuture};
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_bytes::ByteBuf;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Calls in flight at once for the throughput shape.
const IN_FLIGHT: usize = 64;
/// The shapes measured, as calls in flight on one proxy.
const DEPTHS: [usize; 2] = [1, IN_FLIGHT];
/// The stacks, in the order of the table's columns and of `bench`'s clients.
const STACKS: [&str; 3] = ["rmi", "tarpc", "tokio"];
const RMI: usize = 0;
const TARPC: usize = 1;
/// The goals: rmi's latency at most this times tarpc's, its throughput at least this times.
const MAX_LATENCY_RATIO: f64 = 1.10;
const MIN_THROUGHPUT_RATIO: f64 = 0.90;

// ---- The service, as rmi and as plain tarpc declare it ----

#[rmi::expose]
pub trait Bench {
    async fn add(&self, a: u64, b: u64) -> u64;
    async fn echo(&self, data: ByteBuf) -> ByteBuf;
    /// Bytes as a user writes them, with no `serde_bytes`.
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8>;
    /// `chunks` chunks of `size` bytes, each made anew (as a file's would be read).
    async fn download(&self, chunks: u64, size: u32) -> rmi::Stream<Vec<u8>>;
    /// Reads the chunks the client uploads: how many bytes.
    async fn upload(&self, chunks: rmi::Stream<Vec<u8>>) -> u64;
}

struct BenchImpl;

impl Bench for BenchImpl {
    async fn add(&self, a: u64, b: u64) -> u64 {
        a + b
    }
    async fn echo(&self, data: ByteBuf) -> ByteBuf {
        data
    }
    async fn echo_vec(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
    async fn download(&self, chunks: u64, size: u32) -> rmi::Stream<Vec<u8>> {
        rmi::Stream::iter((0..chunks).map(move |i| chunk(i, size)))
    }
    async fn upload(&self, mut chunks: rmi::Stream<Vec<u8>>) -> u64 {
        let mut bytes = 0;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => bytes += chunk.len() as u64,
                Err(e) => {
                    eprintln!("the upload broke: {e}");
                    break;
                }
            }
        }
        bytes
    }
}

/// Chunk `i` of a stream: `size` bytes, all `i as u8`.
fn chunk(i: u64, size: u32) -> Vec<u8> {
    vec![i as u8; size as usize]
}

#[tarpc::service]
trait PlainBench {
    async fn add(a: u64, b: u64) -> u64;
    async fn echo(data: ByteBuf) -> ByteBuf;
    async fn echo_vec(data: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct PlainBenchImpl;

impl PlainBench for PlainBenchImpl {
    async fn add(self, _: tarpc::context::Context, a: u64, b: u64) -> u64 {
        a + b
    }
    async fn echo(self, _: tarpc::context::Context, data: ByteBuf) -> ByteBuf {
        data
    }
    async fn echo_vec(self, _: tarpc::context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

// ---- What is measured ----

#[derive(Clone, Copy)]
enum Op {
    Add,
    /// An echo of 1 KiB as `serde_bytes::ByteBuf`.
    Echo1k,
    /// An echo of 1 MiB as `serde_bytes::ByteBuf`.
    Echo1m,
    /// An echo of 64 KiB as a plain `Vec<u8>`.
    EchoVec64k,
}

impl Op {
    /// The ops of the one-process table.
    const ALL: [Op; 2] = [Op::Add, Op::Echo1k];

    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Echo1k => "echo1k",
            Op::Echo1m => "echo1m",
            Op::EchoVec64k => "echo64k-vec",
        }
    }

    /// The bytes each call carries each way (an `add`'s arguments: two u64).
    fn bytes(self) -> usize {
        match self {
            Op::Add => 16,
            Op::Echo1k => 1024,
            Op::Echo1m => 1024 * 1024,
            Op::EchoVec64k => 64 * 1024,
        }
    }

    /// What the raw socket sends for this op: as many bytes as the RPC stacks' payload.
    fn raw_request(self) -> Bytes {
        Bytes::from(vec![0xa5; self.bytes()])
    }
}

fn shape(depth: usize) -> String {
    format!("1x{depth}")
}

fn payload(op: Op) -> ByteBuf {
    ByteBuf::from(vec![0xa5; op.bytes()])
}

/// A connected client of one stack.
trait Stack {
    /// Makes `calls` calls of `op` (a multiple of `depth`), `depth` of them in flight at once.
    fn run(&mut self, op: Op, depth: usize, calls: u64) -> LocalBoxFuture<'_, BenchResult<()>>;
}

/// The two methods as an RPC stack spells them. Clones share one connection, which is how
/// one proxy gets many calls in flight.
trait Rpc: Clone + 'static {
    async fn add(&self, a: u64, b: u64) -> BenchResult<u64>;
    async fn echo(&self, data: ByteBuf) -> BenchResult<ByteBuf>;
    async fn echo_vec(&self, data: Vec<u8>) -> BenchResult<Vec<u8>>;
}

impl Rpc for BenchProxy {
    async fn add(&self, a: u64, b: u64) -> BenchResult<u64> {
        Ok(BenchProxy::add(self, a, b).await?)
    }
    async fn echo(&self, data: ByteBuf) -> BenchResult<ByteBuf> {
        Ok(BenchProxy::echo(self, data).await?)
    }
    async fn echo_vec(&self, data: Vec<u8>) -> BenchResult<Vec<u8>> {
        Ok(BenchProxy::echo_vec(self, data).await?)
    }
}

impl Rpc for PlainBenchClient {
    async fn add(&self, a: u64, b: u64) -> BenchResult<u64> {
        Ok(PlainBenchClient::add(self, tarpc::context::current(), a, b).await?)
    }
    async fn echo(&self, data: ByteBuf) -> BenchResult<ByteBuf> {
        Ok(PlainBenchClient::echo(self, tarpc::context::current(), data).await?)
    }
    async fn echo_vec(&self, data: Vec<u8>) -> BenchResult<Vec<u8>> {
        Ok(PlainBenchClient::echo_vec(self, tarpc::context::current(), data).await?)
    }
}

impl<C: Rpc> Stack for C {
    fn run(&mut self, op: Op, depth: usize, calls: u64) -> LocalBoxFuture<'_, BenchResult<()>> {
        // `depth` loops over clones of the proxy, each one call at a time: exactly `depth`
        // calls in flight until the end. With a depth of 1 this is plain sequential calling.
        let per_loop = calls / depth as u64;
        let client: &C = self;
        let loops = (0..depth).map(move |_| call_loop(client.clone(), op, per_loop));
        Box::pin(async move { join_all(loops).await.into_iter().collect() })
    }
}

/// Makes `calls` calls of `op` one after another, checking each reply so that a broken
/// stack cannot look fast.
async fn call_loop<C: Rpc>(client: C, op: Op, calls: u64) -> BenchResult<()> {
    let data = payload(op);
    for i in 0..calls {
        let right = match op {
            Op::Add => client.add(i, 1).await? == i + 1,
            // Both stacks take the bytes by value, so both pay for this copy.
            Op::Echo1k | Op::Echo1m => client.echo(data.clone()).await? == data,
            Op::EchoVec64k => client.echo_vec(data.to_vec()).await? == *data,
        };
        if !right {
            return Err(format!("{}: wrong reply to call {i}", op.name()).into());
        }
    }
    Ok(())
}

/// A raw socket: each request is one length-prefixed frame that the server echoes, with no
/// RPC layer. Framing is the same codec as the RPC stacks', so this is their floor.
struct Raw {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
}

impl Stack for Raw {
    /// At depth 64 this pipelines: it writes 64 requests, then reads the 64 replies.
    fn run(&mut self, op: Op, depth: usize, calls: u64) -> LocalBoxFuture<'_, BenchResult<()>> {
        let request = op.raw_request();
        Box::pin(self.exchange(request, depth, calls / depth as u64))
    }
}

impl Raw {
    async fn exchange(&mut self, request: Bytes, depth: usize, rounds: u64) -> BenchResult<()> {
        for _ in 0..rounds {
            for _ in 0..depth {
                self.framed.feed(request.clone()).await?;
            }
            SinkExt::<Bytes>::flush(&mut self.framed).await?;
            for _ in 0..depth {
                let reply = self.framed.next().await.ok_or("raw: connection closed")??;
                if reply != request {
                    return Err("raw: wrong echo".into());
                }
            }
        }
        Ok(())
    }
}

// ---- Servers and connections (setup: failing here is a broken machine, hence `expect`) ----

/// Frames a socket as rmi does: no Nagle delay, length-delimited frames up to 16 MiB.
fn framed(stream: TcpStream) -> Framed<TcpStream, LengthDelimitedCodec> {
    stream.set_nodelay(true).expect("TCP_NODELAY on loopback");
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(rmi::MAX_FRAME_BYTES)
        .new_codec();
    Framed::new(stream, codec)
}

async fn connect(addr: SocketAddr) -> Framed<TcpStream, LengthDelimitedCodec> {
    framed(TcpStream::connect(addr).await.expect("connect on loopback"))
}

/// Listens on loopback and serves each connection in its own task, as tarpc's examples and
/// rmi's daemon do.
async fn listen<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("a bound listener's address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

async fn rmi_client() -> BenchProxy {
    let daemon = rmi::Daemon::bind("127.0.0.1:0")
        .await
        .expect("rmi daemon binds on loopback");
    let uri = daemon.register(BenchImpl).expect("register the object");
    daemon.spawn();
    BenchProxy::connect(&uri).await.expect("connect the proxy")
}

/// Serves plain tarpc on `stream`, one task per call, as rmi's daemon does.
fn tarpc_serve(stream: TcpStream) -> impl Future<Output = ()> + Send {
    let transport = tarpc::serde_transport::new(framed(stream), Bincode::default());
    BaseChannel::with_defaults(transport)
        .execute(PlainBenchImpl.serve())
        .for_each(|call| async {
            tokio::spawn(call);
        })
}

/// Echoes every frame on `stream`: the floor.
async fn raw_echo(stream: TcpStream) {
    let (replies, requests) = framed(stream).split();
    // `forward` flushes only when no further request is readable, so a pipeline of
    // requests is answered in one write, as an RPC server batches its replies.
    let _ = requests.map_ok(BytesMut::freeze).forward(replies).await;
}

async fn tarpc_client() -> PlainBenchClient {
    let addr = listen(tarpc_serve).await;
    let transport = tarpc::serde_transport::new(connect(addr).await, Bincode::default());
    PlainBenchClient::new(tarpc::client::Config::default(), transport).spawn()
}

async fn raw_client() -> Raw {
    Raw {
        framed: connect(listen(raw_echo).await).await,
    }
}

// ---- Measuring ----

const USAGE: &str = "usage: calls [--json] [--quick] [--one-process] \
    [--only OP/SHAPE [--stack rmi|tarpc|tokio --calls N]]";

struct Settings {
    runs: usize,
    /// How long the warm-up's last batch must take; it also sizes the runs.
    warmup: Duration,
    /// About how long each timed run takes.
    run_time: Duration,
    json: bool,
    /// Whether to measure the two-process shape too (`--one-process` leaves it out).
    two_processes: bool,
    /// `--only OP/SHAPE`: measure only that two-process test (`add/8x1`), no one-process rows;
    /// with `--one-process` and `--stack`, the one-process shape that `count_one_process` runs.
    only: Option<String>,
    /// `--stack NAME --calls N` (with `--only`): make N calls with that stack alone, once, and
    /// say how many were made, for `strace -c -f` or `perf` to count per call.
    count: Option<(usize, u64)>,
}

impl Settings {
    fn from_args(args: impl Iterator<Item = String>) -> BenchResult<Settings> {
        let mut settings = Settings {
            runs: 15,
            warmup: Duration::from_millis(100),
            run_time: Duration::from_millis(150),
            json: false,
            two_processes: true,
            only: None,
            count: None,
        };
        let (mut stack, mut calls) = (None, None);
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value; {USAGE}"));
            match arg.as_str() {
                "--only" => settings.only = Some(value()?),
                "--stack" => {
                    let name = value()?;
                    let index = STACKS.iter().position(|s| *s == name);
                    stack = Some(index.ok_or(format!("no stack {name:?}; {USAGE}"))?);
                }
                "--calls" => calls = Some(value()?.parse()?),
                "--json" => settings.json = true,
                // A smoke test for CI: a few seconds, figures only roughly right.
                "--quick" => {
                    settings.runs = 3;
                    settings.warmup = Duration::from_millis(10);
                    settings.run_time = Duration::from_millis(20);
                }
                // cargo passes it to every bench target.
                "--bench" => {}
                "--one-process" => settings.two_processes = false,
                other => return Err(format!("unknown argument {other:?}; {USAGE}").into()),
            }
        }
        settings.count = match (stack, calls, &settings.only) {
            (None, None, _) => None,
            (Some(stack), Some(calls), Some(_)) => Some((stack, calls)),
            _ => {
                return Err(format!("--stack and --calls go together, with --only; {USAGE}").into())
            }
        };
        Ok(settings)
    }
}

/// The median µs per call of each stack (in [`STACKS`] order) for one op and shape.
struct Row {
    op: Op,
    depth: usize,
    us_per_call: Vec<f64>,
    /// rmi's µs per call over tarpc's, the median over rounds of the two runs of one round.
    rmi_over_tarpc: f64,
}

impl Row {
    /// rmi against tarpc as the goals put it: the ratio of µs per call for sequential calls,
    /// of calls per second with calls in flight. It pairs the runs of each round: this
    /// machine's speed drifts by more than the gap between the stacks, and the two runs of
    /// one round see the same drift.
    fn ratio(&self) -> f64 {
        if self.depth == 1 {
            self.rmi_over_tarpc
        } else {
            1.0 / self.rmi_over_tarpc
        }
    }

    fn meets_goal(&self) -> bool {
        if self.depth == 1 {
            self.ratio() <= MAX_LATENCY_RATIO
        } else {
            self.ratio() >= MIN_THROUGHPUT_RATIO
        }
    }
}

async fn time_run(
    stack: &mut dyn Stack,
    op: Op,
    depth: usize,
    calls: u64,
) -> BenchResult<Duration> {
    let start = Instant::now();
    stack.run(op, depth, calls).await?;
    Ok(start.elapsed())
}

/// Warms `stack` up with doubling batches until one takes `settings.warmup`, and returns how
/// many calls (a multiple of `depth`) take about `settings.run_time`.
async fn calibrate(
    stack: &mut dyn Stack,
    op: Op,
    depth: usize,
    settings: &Settings,
) -> BenchResult<u64> {
    let depth = depth as u64;
    let mut calls = depth;
    loop {
        let elapsed = time_run(stack, op, depth as usize, calls).await?;
        if elapsed >= settings.warmup {
            let wanted = calls as f64 * settings.run_time.as_secs_f64() / elapsed.as_secs_f64();
            return Ok((wanted as u64).div_ceil(depth).max(1) * depth);
        }
        calls *= 2;
    }
}

/// Measures every stack on `op` at `depth`, interleaving their runs so that the machine's
/// drifts and bursts of load hit all of them alike.
async fn measure(
    stacks: &mut [Box<dyn Stack>],
    op: Op,
    depth: usize,
    settings: &Settings,
) -> BenchResult<Row> {
    let mut calls = Vec::new();
    for stack in stacks.iter_mut() {
        calls.push(calibrate(stack.as_mut(), op, depth, settings).await?);
    }
    let mut samples = vec![Vec::with_capacity(settings.runs); stacks.len()];
    for round in 0..settings.runs {
        // Each round starts with the next stack, so none always runs right after another.
        let count = stacks.len();
        for i in (0..count).map(|k| (round + k) % count) {
            let elapsed = time_run(stacks[i].as_mut(), op, depth, calls[i]).await?;
            samples[i].push(elapsed.as_secs_f64() * 1e6 / calls[i] as f64);
        }
    }
    let paired = samples[RMI]
        .iter()
        .zip(&samples[TARPC])
        .map(|(rmi, tarpc)| rmi / tarpc)
        .collect();
    Ok(Row {
        op,
        depth,
        rmi_over_tarpc: median(paired),
        us_per_call: samples.into_iter().map(median).collect(),
    })
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn bench(settings: &Settings) -> BenchResult<Vec<Row>> {
    // In `STACKS` order.
    let mut stacks: Vec<Box<dyn Stack>> = vec![
        Box::new(rmi_client().await),
        Box::new(tarpc_client().await),
        Box::new(raw_client().await),
    ];
    let mut rows = Vec::new();
    for op in Op::ALL {
        for depth in DEPTHS {
            rows.push(measure(&mut stacks, op, depth, settings).await?);
        }
    }
    Ok(rows)
}

// ---- Output ----

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    stack: &'a str,
    op: &'a str,
    shape: String,
    procs: u8,
    calls_per_s: f64,
    us_per_call: f64,
}

fn json_line(stack: &str, op: &str, shape: String, procs: u8, us: f64) -> BenchResult<()> {
    let line = JsonLine {
        stack,
        op,
        shape,
        procs,
        calls_per_s: 1e6 / us,
        us_per_call: us,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

fn print_json(rows: &[Row], two: &[procs::Row]) -> BenchResult<()> {
    for row in rows {
        for (stack, &us) in STACKS.iter().zip(&row.us_per_call) {
            json_line(stack, row.op.name(), shape(row.depth), 1, us)?;
        }
    }
    for row in two {
        for (stack, &per_s) in STACKS.iter().zip(&row.calls_per_s) {
            json_line(stack, row.test.op(), row.test.shape(), 2, 1e6 / per_s)?;
        }
    }
    Ok(())
}

/// A figure as the shape's goal reads it: µs per call when sequential, calls/s otherwise.
fn figure(depth: usize, us: f64) -> String {
    if depth == 1 {
        format!("{us:.2} µs")
    } else {
        format!("{:.0} k/s", 1e3 / us)
    }
}

fn print_table(rows: &[Row], settings: &Settings) {
    println!(
        "one current-thread runtime, loopback; median of {} runs; rmi/tarpc: median of the rounds' ratios; tokio 1x64 pipelines 64 requests",
        settings.runs
    );
    let header = ["op", "shape", STACKS[0], STACKS[1], STACKS[2], "rmi/tarpc"];
    print_line(header.map(String::from));
    for row in rows {
        let figure = |stack: usize| figure(row.depth, row.us_per_call[stack]);
        print_line([
            row.op.name().to_owned(),
            shape(row.depth),
            figure(0),
            figure(1),
            figure(2),
            format!("{:.3}", row.ratio()),
        ]);
    }
    println!(
        "goals: latency rmi/tarpc <= {MAX_LATENCY_RATIO:.2}: {}; throughput rmi/tarpc >= {MIN_THROUGHPUT_RATIO:.2}: {}",
        verdict(rows, 1),
        verdict(rows, IN_FLIGHT),
    );
}

fn print_line([op, shape, rmi, tarpc, tokio, ratio]: [String; 6]) {
    println!("{op:<8} {shape:<6} {rmi:>12} {tarpc:>12} {tokio:>12} {ratio:>10}");
}

/// Whether the goal of the shape with `depth` is met on every op, with the worst ratio.
fn verdict(rows: &[Row], depth: usize) -> String {
    let rows = rows.iter().filter(|row| row.depth == depth);
    let met = rows.clone().all(Row::meets_goal);
    let ratios = rows.map(Row::ratio);
    let worst = if depth == 1 {
        ratios.fold(f64::MIN, f64::max)
    } else {
        ratios.fold(f64::MAX, f64::min)
    };
    format!("{} (worst {worst:.3})", if met { "met" } else { "MISSED" })
}

/// The goal of a two-process test: rmi's calls/s at least this share of the floor's (or, for
/// 64 in flight, this multiple of tarpc's), and which it is measured against.
fn two_process_goal(test: procs::Test) -> (usize, f64) {
    use procs::Test;
    const FLOOR: usize = 2;
    match test {
        Test::Sequential(Op::Add) => (FLOOR, 0.70),
        Test::Sequential(Op::Echo1k) => (FLOOR, 0.65),
        Test::Sequential(Op::Echo1m | Op::EchoVec64k) | Test::StreamDown | Test::StreamUp => {
            (FLOOR, 0.75)
        }
        Test::ConnectAndCall => (FLOOR, 0.60),
        Test::Connections(_) => (FLOOR, 0.75),
        Test::InFlight(_) => (TARPC, 1.2),
    }
}

/// calls/s, or a dash for a stack without the test's shape.
fn per_s_cell(per_s: f64) -> String {
    if per_s.is_nan() {
        "—".into()
    } else {
        format!("{per_s:.0}")
    }
}

/// MB/s (10^6 bytes) of payload one way at `per_s` calls of `bytes` each, or nothing.
fn mb_per_s_cell(per_s: f64, bytes: Option<usize>) -> String {
    match bytes {
        Some(bytes) if !per_s.is_nan() => format!("{:.0}", per_s * bytes as f64 / 1e6),
        _ => String::new(),
    }
}

fn print_two_process_table(rows: &[procs::Row], settings: &Settings) {
    println!();
    println!(
        "two processes (servers | clients), multi-threaded runtimes, loopback; calls/s (stream: chunks/s of 64 KiB), median of {} runs; MB/s of payload one way; tokio 1x64 uses 64 connections",
        settings.runs
    );
    println!(
        "{:<12} {:<6} {:>10} {:>10} {:>10} {:>8} {:>8} {:>9} {:>10}  goal",
        "op", "shape", "rmi", "tarpc", "tokio", "rmi MB/s", "tok MB/s", "rmi/tokio", "rmi/tarpc"
    );
    for row in rows {
        let per_s = &row.calls_per_s;
        let (against, goal) = two_process_goal(row.test);
        let ratio = per_s[RMI] / per_s[against];
        let verdict = if ratio >= goal { "met" } else { "MISSED" };
        let bytes = row.test.bytes();
        let over_tarpc = per_s[RMI] / per_s[TARPC];
        println!(
            "{:<12} {:<6} {:>10} {:>10} {:>10} {:>8} {:>8} {:>9.3} {:>10}  {} >= {goal:.2}: {verdict}",
            row.test.op(),
            row.test.shape(),
            per_s_cell(per_s[RMI]),
            per_s_cell(per_s[TARPC]),
            per_s_cell(per_s[2]),
            mb_per_s_cell(per_s[RMI], bytes),
            mb_per_s_cell(per_s[2], bytes),
            per_s[RMI] / per_s[2],
            if over_tarpc.is_nan() { "—".into() } else { format!("{over_tarpc:.3}") },
            if against == TARPC {
                "rmi/tarpc"
            } else {
                "rmi/tokio"
            },
        );
    }
}

/// Makes `calls` calls of `only` (`add/1x64`) with one stack, client and server in this
/// process, untimed: for `valgrind --tool=callgrind` to count instructions per call.
async fn count_one_process(only: &str, stack: usize, calls: u64) -> BenchResult<()> {
    let wrong = || "with --one-process, --only takes OP/1xDEPTH, OP one of add, echo1k".to_owned();
    let (name, shape) = only.split_once('/').ok_or_else(wrong)?;
    let op = Op::ALL
        .into_iter()
        .find(|op| op.name() == name)
        .ok_or_else(wrong)?;
    let depth: usize = shape
        .strip_prefix("1x")
        .and_then(|d| d.parse().ok())
        .filter(|d| *d > 0)
        .ok_or_else(wrong)?;
    let mut client: Box<dyn Stack> = match stack {
        RMI => Box::new(rmi_client().await),
        TARPC => Box::new(tarpc_client().await),
        _ => Box::new(raw_client().await),
    };
    let calls = calls.div_ceil(depth as u64) * depth as u64;
    client.run(op, depth, calls).await?;
    eprintln!("{}: {calls} calls of {only} in one process", STACKS[stack]);
    Ok(())
}

async fn bench_two_processes(settings: &Settings) -> BenchResult<Vec<procs::Row>> {
    let tests: Vec<procs::Test> = procs::Test::ALL
        .into_iter()
        .filter(|test| {
            settings
                .only
                .as_ref()
                .is_none_or(|only| *only == test.name())
        })
        .collect();
    if tests.is_empty() {
        let names: Vec<String> = procs::Test::ALL.iter().map(|t| t.name()).collect();
        return Err(format!("--only takes one of {}", names.join(", ")).into());
    }
    let (_server, servers) = procs::start_servers().await?;
    if let Some((stack, calls)) = settings.count {
        let made = procs::count(&servers, tests[0], stack, calls).await?;
        eprintln!("{}: {made} calls of {}", STACKS[stack], tests[0].name());
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    for test in tests {
        rows.push(procs::measure(&servers, test, settings).await?);
    }
    Ok(rows)
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let multi_threaded = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a multi-threaded tokio runtime")
    };
    if args.iter().any(|arg| arg == "--serve") {
        return multi_threaded().block_on(procs::serve());
    }
    let settings = Settings::from_args(args.into_iter())?;
    if let (Some((stack, calls)), false) = (settings.count, settings.two_processes) {
        let only = settings.only.as_deref().unwrap_or_default();
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime")
            .block_on(count_one_process(only, stack, calls));
    }
    let one_process = if settings.only.is_some() {
        Vec::new()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime")
            .block_on(bench(&settings))?
    };
    let two_processes = if settings.two_processes {
        multi_threaded().block_on(bench_two_processes(&settings))?
    } else {
        Vec::new()
    };
    if settings.json {
        return print_json(&one_process, &two_processes);
    }
    if !one_process.is_empty() {
        print_table(&one_process, &settings);
    }
    if !two_processes.is_empty() {
        print_two_process_table(&two_processes, &settings);
    }
    Ok(())
}
