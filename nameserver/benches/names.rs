//! How many lookups and registrations per second `rmi-ns` serves, with its memory store, with
//! its SQLite store (which commits and syncs every registration before answering), and, built
//! with `--features etcd` where the `etcd` program is installed, with its etcd store over a
//! three-member cluster on loopback (each registration a Raft commit, each lookup a
//! linearizable read).
//!
//! `cargo bench -p rmi-nameserver --bench names [-- --json] [-- --quick]`: one proxy with 64
//! calls in flight against a name server in the same process on loopback; each figure is the
//! median of several runs.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rmi::{NameServerProxy, ObjectUri};
use rmi_nameserver::{Config, NameServerHost, Storage};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const IN_FLIGHT: usize = 64;
/// Names registered before lookups start, and looked up in turn.
const NAMES: usize = 1000;

struct Settings {
    runs: usize,
    run_time: Duration,
    json: bool,
}

impl Settings {
    fn from_args() -> BenchResult<Settings> {
        let mut settings = Settings {
            runs: 5,
            run_time: Duration::from_millis(500),
            json: false,
        };
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--json" => settings.json = true,
                "--quick" => {
                    settings.runs = 1;
                    settings.run_time = Duration::from_millis(100);
                }
                "--bench" => {}
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: names [--json] [--quick]"
                    )
                    .into())
                }
            }
        }
        Ok(settings)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Lookup,
    Register,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Register => "register",
        }
    }
}

fn uri(i: usize) -> ObjectUri {
    format!("rmi:obj_{i}@127.0.0.1:4000")
        .parse()
        .expect("a valid URI")
}

/// Calls `op` from `IN_FLIGHT` loops until `run_time` has passed; returns calls per second.
async fn run(ns: &NameServerProxy, op: Op, run_time: Duration) -> BenchResult<f64> {
    let start = Instant::now();
    let loops = (0..IN_FLIGHT).map(|lane| {
        let ns = ns.clone();
        async move {
            let mut calls = 0usize;
            while start.elapsed() < run_time {
                let i = (lane + calls * IN_FLIGHT) % NAMES;
                match op {
                    Op::Lookup => {
                        ns.lookup(format!("bench.{i}")).await??;
                    }
                    Op::Register => ns.register(format!("bench.{i}"), uri(i)).await??,
                }
                calls += 1;
            }
            Ok::<usize, Box<dyn std::error::Error>>(calls)
        }
    });
    let mut total = 0;
    for calls in join_all(loops).await {
        total += calls?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn measure(storage: Storage, settings: &Settings) -> BenchResult<Vec<(Op, f64)>> {
    let host = NameServerHost::start(Config {
        storage,
        ..Config::memory("127.0.0.1:0")
    })
    .await?;
    host.daemon().spawn();
    let ns = rmi::locate_ns_at(host.uri().endpoint()).await?;
    for i in 0..NAMES {
        ns.register(format!("bench.{i}"), uri(i)).await??;
    }
    let mut figures = Vec::new();
    for op in [Op::Lookup, Op::Register] {
        let mut samples = Vec::new();
        for _ in 0..settings.runs {
            samples.push(run(&ns, op, settings.run_time).await?);
        }
        figures.push((op, median(samples)));
    }
    host.shutdown().await;
    Ok(figures)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let settings = Settings::from_args()?;
    let dir = std::env::temp_dir().join(format!("rmi-bench-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    #[allow(unused_mut)]
    let mut stores = vec![
        ("memory", Storage::Memory),
        ("sqlite", Storage::Sqlite(dir.join("names.db"))),
    ];
    // Kept until the end: dropping it stops the cluster.
    #[cfg(feature = "etcd")]
    let _cluster = match rmi_nameserver::local_etcd::EtcdCluster::start(3) {
        Ok(cluster) => {
            stores.push((
                "etcd",
                Storage::Etcd {
                    endpoints: cluster.endpoints(),
                    prefix: rmi_nameserver::DEFAULT_ETCD_PREFIX.to_owned(),
                },
            ));
            Some(cluster)
        }
        Err(why) => {
            eprintln!("no etcd row: {why}");
            None
        }
    };
    if !settings.json {
        println!(
            "one proxy, {IN_FLIGHT} calls in flight, loopback; median of {} runs",
            settings.runs
        );
        println!("{:<8} {:<10} {:>12}", "store", "op", "calls/s");
    }
    for (label, storage) in stores {
        for (op, per_s) in measure(storage, &settings).await? {
            if settings.json {
                println!(
                    "{}",
                    serde_json::json!({ "store": label, "op": op.name(), "ops_per_s": per_s })
                );
            } else {
                println!("{label:<8} {:<10} {:>12.0}", op.name(), per_s);
            }
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
