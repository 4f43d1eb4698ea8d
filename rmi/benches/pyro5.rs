//! A Python Pyro5 client calling an rmi daemon, against the same client calling a Pyro5
//! daemon written in Python: `add`, an echo of 1 KiB of text, and `add` from 8 client threads,
//! in rounds that alternate the two servers; calls per second, medians.
//!
//! `RMI_TEST_PYTHON=/path/to/venv/bin/python cargo bench -p rmi --bench pyro5` (a Python with
//! Pyro5; `.ci/run` makes one). `-- --secs S` sets each round's length (default 2),
//! `-- --rounds N` their number (default 5), `-- --serializer NAME` the client's (default
//! serpent).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[rmi::expose]
pub trait Bench {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn echo(&self, text: String) -> String;
}

struct BenchServer;

impl Bench for BenchServer {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn echo(&self, text: String) -> String {
        text
    }
}

/// The Pyro5 daemon in Python, with the same two methods; prints its URI.
const PYTHON_SERVER: &str = r#"
import Pyro5.api
@Pyro5.api.expose
class Bench:
    def add(self, a, b):
        return a + b
    def echo(self, text):
        return text
daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
print(daemon.register(Bench()), flush=True)
daemon.requestLoop()
"#;

/// The client: `threads` threads, each with its own proxy, calling for `secs` seconds; prints
/// the calls made per second.
const PYTHON_CLIENT: &str = r#"
import sys, threading, time
import Pyro5.api
uri, test, threads, secs, serializer = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
Pyro5.config.SERIALIZER = serializer
text = "x" * 1024
counts = []
def run(start, stop):
    proxy = Pyro5.api.Proxy(uri)
    proxy._pyroBind()
    start.wait()
    n = 0
    while time.perf_counter() < stop[0]:
        if test == "echo":
            assert proxy.echo(text) == text
        else:
            assert proxy.add(n, 1) == n + 1
        n += 1
    counts.append(n)
start, stop = threading.Barrier(threads + 1), [0.0]
workers = [threading.Thread(target=run, args=(start, stop)) for _ in range(threads)]
for w in workers:
    w.start()
stop[0] = time.perf_counter() + secs
start.wait()
began = time.perf_counter()
for w in workers:
    w.join()
print(sum(counts) / (time.perf_counter() - began))
"#;

struct Settings {
    secs: f64,
    rounds: usize,
    serializer: String,
}

fn settings() -> Result<Settings, String> {
    let mut settings = Settings {
        secs: 2.0,
        rounds: 5,
        serializer: "serpent".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} takes a value"));
        match arg.as_str() {
            "--secs" => settings.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--rounds" => {
                settings.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?
            }
            "--serializer" => settings.serializer = value()?,
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(settings)
}

fn python() -> String {
    std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the client once against `uri`: calls per second.
async fn client(uri: &str, test: &str, threads: usize, settings: &Settings) -> f64 {
    let out = tokio::process::Command::new(python())
        .arg("-c")
        .arg(PYTHON_CLIENT)
        .args([
            uri,
            test,
            &threads.to_string(),
            &settings.secs.to_string(),
            &settings.serializer,
        ])
        .output()
        .await
        .expect("the Python client runs");
    assert!(
        out.status.success(),
        "the Python client failed: {}\nPoint RMI_TEST_PYTHON at a Python with Pyro5 (pip install Pyro5).",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("calls per second")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let settings = settings().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let daemon = rmi::Daemon::bind("127.0.0.1:0")
        .await
        .expect("a daemon on loopback");
    let rmi_uri = daemon.register(BenchServer).expect("register");
    daemon.spawn();
    let rmi_uri = rmi_uri.to_string().replacen("rmi:", "PYRO:", 1);

    let mut server = tokio::process::Command::new(python())
        .arg("-c")
        .arg(PYTHON_SERVER)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the Python server runs");
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let pyro_uri = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the Python server printed its URI within 30 s")
        .expect("its stdout")
        .expect("a URI (is Pyro5 installed? set RMI_TEST_PYTHON)");

    println!(
        "Python Pyro5 5.x client ({}), {} rounds of {} s, servers alternating; calls/s, medians",
        settings.serializer, settings.rounds, settings.secs
    );
    println!(
        "{:<22} {:>12} {:>12} {:>10}",
        "test", "rmi server", "Pyro5 server", "rmi/Pyro5"
    );
    for (name, test, threads) in [
        ("add", "add", 1),
        ("echo 1 KiB of text", "echo", 1),
        ("add, 8 client threads", "add", 8),
    ] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..settings.rounds {
            ours.push(client(&rmi_uri, test, threads, &settings).await);
            theirs.push(client(&pyro_uri, test, threads, &settings).await);
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{name:<22} {ours:>12.0} {theirs:>12.0} {:>10.2}",
            ours / theirs
        );
    }
}
