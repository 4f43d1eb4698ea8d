//! A chaos run: rmi's programs on hosts of their own (network namespaces), called without a
//! pause while faults strike at random, then a check of everything that happened.
//!
//! ```sh
//! cargo run --release -p rmi-tests --bin chaos -- --secs 60            # as root
//! cargo run --release -p rmi-tests --bin chaos -- --secs 60 --seed 7   # replays run 7's faults
//! ```
//!
//! Three server hosts each run a member of a three-member etcd cluster, an `rmi-ns` over it, and
//! a `chain_server` of the ring 1 → 2 → 3 → 1 (Pyro's chain example); the first also runs the
//! greeter, the second a ledger, an object that records the id of every call it runs, the third
//! a task worker (the Celery demo). A fourth host runs the client: it calls the chain, the
//! greeter and the ledger, submits tasks and registers names, without a pause, each call with a
//! deadline of 2 s. (A task whose worker dies under it is run again elsewhere, by the tasks
//! demo's design, as Celery's late acknowledgement does: at most once is the ledger's proof.)
//!
//! Faults come one after another, chosen by a seeded random generator: `kill -9` of a program
//! and its restart, SIGSTOP and SIGCONT (a hung process), a host's link cut and mended, a
//! host's packets dropped at random (iptables' `statistic` match), an etcd member killed and
//! restarted. The last 10 s are free of faults. The run passes if
//! - every call returned the right answer, or a typed error within its deadline: none hung
//!   and none was wrong;
//! - no call ran twice (the ledger's record: at most once, across reconnects too);
//! - no registration the name servers acknowledged was lost;
//! - every program's memory and file descriptors stayed bounded;
//! - each kind of call succeeded again once the faults stopped.
//!
//! It needs root, `ip`, `iptables` and `etcd` (Debian: iproute2, iptables, etcd-server), and
//! builds `rmi-ns` with names in etcd (`protoc`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use rmi_examples::chain::{name_of, ChainProxy};
use rmi_examples::greeter::GreeterProxy;
use rmi_tests::netns::Lan;
use rmi_tests::{send_signal, Running};
use serde::{Deserialize, Serialize};

/// Runs rmi's programs on network-namespace hosts while faults strike, and checks the outcome.
#[derive(Parser)]
struct Args {
    /// How long the client calls, in seconds; faults strike in all but the last 10.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// The seed of the faults' random choices: the same seed replays the same faults.
    #[arg(long)]
    seed: Option<u64>,
    /// (internal) The role this process plays on its host: `ledger FILE` or `client`.
    #[arg(long, hide = true, num_args = 1..=2)]
    role: Option<Vec<String>>,
    /// (internal) The address a ledger listens on.
    #[arg(long, hide = true)]
    host: Option<String>,
}

/// Each call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long past its deadline a call may take before it counts as hung.
const HANG_MARGIN: Duration = Duration::from_secs(3);
/// The end of the run without faults, in which every kind of call must succeed again.
const CALM: Duration = Duration::from_secs(10);
/// The leases of the servers' names.
const NAME_TTL: &str = "5";
/// The most memory and file descriptors any program may hold.
const MAX_RSS_KIB: u64 = 256 * 1024;
const MAX_FDS: u64 = 512;
/// The ledger's name.
const LEDGER: &str = "chaos.ledger";

/// An object that records the id of every call it runs, one line each, before answering.
#[rmi::expose]
pub trait Ledger {
    /// Records `id`; returns `id * 2 + 1`.
    async fn record(&self, id: u64) -> u64;
}

struct FileLedger(Mutex<std::fs::File>);

impl Ledger for FileLedger {
    async fn record(&self, id: u64) -> u64 {
        let mut file = self.0.lock().unwrap();
        // Written before the answer, in one write: a kill after it keeps the line.
        file.write_all(format!("{id}\n").as_bytes())
            .expect("the ledger file takes a line");
        id * 2 + 1
    }
}

fn main() {
    let args = Args::parse();
    match args.role.as_deref() {
        Some([role, file]) if role == "ledger" => serve_ledger(Path::new(file), &args),
        Some([role]) if role == "client" => run_client(args.secs),
        Some(other) => panic!("unknown role {other:?}"),
        None => {
            let passed = orchestrate(&args);
            std::process::exit(if passed { 0 } else { 1 });
        }
    }
}

#[tokio::main]
async fn serve_ledger(file: &Path, args: &Args) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("the ledger file opens");
    let host = args.host.as_deref().expect("a ledger is given --host");
    let daemon = rmi::Daemon::bind((host, 0))
        .await
        .expect("the ledger listens");
    let ns = rmi::locate_ns().await.expect("a name server answers");
    let options = rmi::RegisterOptions::default().ttl(Duration::from_secs(5));
    let ledger = FileLedger(Mutex::new(file));
    let uri = daemon
        .register_named(&ns, LEDGER, ledger, options)
        .await
        .expect("the ledger registers");
    println!("Ledger ready at {uri}");
    daemon
        .serve_until_signal()
        .await
        .expect("the ledger serves");
}

// ---- The client: calls without a pause, and tallies what each call did ----

/// What one kind of call did.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    calls: u64,
    ok: u64,
    /// Errors by kind (`Timeout`, `Disconnected`, …).
    errors: BTreeMap<String, u64>,
    /// Calls answered with the wrong value: what came.
    wrong: Vec<String>,
    /// Calls still unanswered past their deadline and the margin.
    hung: u64,
    /// The longest time without a success, in seconds.
    longest_stall: f64,
    /// Seconds from the last success to the end of the run.
    since_last_ok: f64,
}

/// What the client reports at its end.
#[derive(Default, Serialize, Deserialize)]
struct Report {
    chain: Tally,
    greeter: Tally,
    ledger: Tally,
    tasks: Tally,
    registrations: Tally,
    /// The ids of the ledger calls answered right (each ran once at least).
    ledger_answered: Vec<u64>,
    /// Names whose registration was acknowledged, and those of them not found at the end.
    acknowledged: u64,
    lost: Vec<String>,
}

/// The kind of an error (an `rmi::ErrorKind`, a task's failure), as its variant's name.
fn variant_of(kind: &impl std::fmt::Debug) -> String {
    let debug = format!("{kind:?}");
    let name = debug.split(|c: char| !c.is_alphanumeric()).next();
    name.unwrap_or("?").to_owned()
}

/// The kind of an rmi error.
fn kind_of(error: &rmi::Error) -> String {
    variant_of(error.kind())
}

/// Calls `call` (its number as argument) without a pause until `end`, tallying each outcome:
/// `Ok(None)` a right answer, `Ok(Some(what))` a wrong one, `Err(kind)` a typed error.
async fn keep_calling<F, Fut>(end: Instant, mut call: F) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, String>>,
{
    let mut tally = Tally::default();
    let mut last_ok = Instant::now();
    let mut n = 0;
    while Instant::now() < end {
        n += 1;
        tally.calls += 1;
        match tokio::time::timeout(CALL_TIMEOUT + HANG_MARGIN, call(n)).await {
            Ok(Ok(None)) => {
                tally.ok += 1;
                tally.longest_stall = tally.longest_stall.max(last_ok.elapsed().as_secs_f64());
                last_ok = Instant::now();
            }
            Ok(Ok(Some(wrong))) => tally.wrong.push(wrong),
            Ok(Err(kind)) => {
                *tally.errors.entry(kind).or_default() += 1;
                // A failed call may have failed fast: no busy loop against a dead server.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => tally.hung += 1,
        }
    }
    tally.longest_stall = tally.longest_stall.max(last_ok.elapsed().as_secs_f64());
    tally.since_last_ok = last_ok.elapsed().as_secs_f64();
    tally
}

/// A proxy kept between calls, made again after a failure.
struct Kept<P>(tokio::sync::Mutex<Option<P>>);

impl<P: rmi::Proxy> Kept<P> {
    async fn get(&self, config: &rmi::ClientConfig, uri: &str) -> Result<P, String> {
        let mut kept = self.0.lock().await;
        if let Some(proxy) = &*kept {
            return Ok(proxy.clone());
        }
        let proxy: P = config.connect(uri).await.map_err(|e| kind_of(&e))?;
        *kept = Some(proxy.clone());
        Ok(proxy)
    }

    async fn forget(&self) {
        *self.0.lock().await = None;
    }
}

/// `result`, forgetting `kept`'s proxy if it failed; the error as its kind.
async fn forgetting<P: rmi::Proxy, T>(
    kept: &Kept<P>,
    result: Result<T, rmi::Error>,
) -> Result<T, String> {
    if result.is_err() {
        kept.forget().await;
    }
    result.map_err(|e| kind_of(&e))
}

#[tokio::main]
async fn run_client(secs: u64) {
    let config = rmi::ClientConfig::from_env()
        .expect("the client's settings")
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(1));
    let end = Instant::now() + Duration::from_secs(secs);
    let chain_uri = format!("rminame:{}", name_of("1"));
    let greeter_uri = format!("rminame:{}", rmi_examples::greeter::NAME);
    let ledger_uri = format!("rminame:{LEDGER}");

    let chain_proxy = Kept::<ChainProxy>(Default::default());
    let chain = keep_calling(end, |_| async {
        let proxy = chain_proxy.get(&config, &chain_uri).await?;
        let result = forgetting(&chain_proxy, proxy.process(vec!["hello".into()]).await).await?;
        let expected = [
            "passed on from 1",
            "passed on from 2",
            "passed on from 3",
            "complete at 1",
        ];
        match result {
            Ok(round) if round == expected => Ok(None),
            Ok(round) => Ok(Some(format!("{round:?}"))),
            // A link of the ring could not reach the next, and said so: a typed error.
            Err(_) => Err("ChainError".into()),
        }
    });

    let greeter_proxy = Kept::<GreeterProxy>(Default::default());
    let greeter = keep_calling(end, |n| {
        let (config, greeter_proxy, greeter_uri) = (&config, &greeter_proxy, &greeter_uri);
        async move {
            let proxy = greeter_proxy.get(config, greeter_uri).await?;
            let name = format!("caller {n}");
            let hi = forgetting(greeter_proxy, proxy.welcome_message(name.clone()).await).await?;
            Ok((hi != format!("Hi welcome {name}")).then_some(hi))
        }
    });

    let answered = Mutex::new(Vec::new());
    let ledger_proxy = Kept::<LedgerProxy>(Default::default());
    let ledger = keep_calling(end, |n| {
        let (config, ledger_proxy, ledger_uri, answered) =
            (&config, &ledger_proxy, &ledger_uri, &answered);
        async move {
            let proxy = ledger_proxy.get(config, ledger_uri).await?;
            let got = forgetting(ledger_proxy, proxy.record(n).await).await?;
            if got == n * 2 + 1 {
                answered.lock().unwrap().push(n);
                Ok(None)
            } else {
                Ok(Some(format!("record({n}) = {got}")))
            }
        }
    });

    let ns = config.locate_ns().await.expect("a name server answers");
    let task_client = rmi_examples::tasks::TaskClient::new(ns);
    let tasks = keep_calling(end, |n| {
        let task_client = &task_client;
        async move {
            let pending = task_client.delay("add", (n, n));
            // A task has no deadline of its own (it may run long): the client's is this wait.
            match tokio::time::timeout(CALL_TIMEOUT, pending.get()).await {
                Ok(Ok(sum)) if sum == serde_json::json!(2 * n) => Ok(None),
                Ok(Ok(other)) => Ok(Some(format!("add({n}, {n}) = {other}"))),
                Ok(Err(failure)) => Err(format!("TaskFailure {}", variant_of(&failure))),
                Err(_) => Err("TaskTimeout".into()),
            }
        }
    });

    let acknowledged = Mutex::new(Vec::new());
    let registrations = keep_calling(end, |n| {
        let (config, acknowledged) = (&config, &acknowledged);
        async move {
            let ns = config.locate_ns().await.map_err(|e| kind_of(&e))?;
            let name = format!("chaos.name.{n}");
            let uri: rmi::ObjectUri = format!("rmi:obj_{n}@10.0.0.1:1").parse().expect("a URI");
            match ns
                .register(name.clone(), uri)
                .await
                .map_err(|e| kind_of(&e))?
            {
                Ok(()) => {
                    acknowledged.lock().unwrap().push(name);
                    // Names come a few a second, not as fast as etcd takes them.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(None)
                }
                Err(e) => Err(format!("NsError {e}")),
            }
        }
    });

    let (chain, greeter, ledger, tasks, registrations) =
        tokio::join!(chain, greeter, ledger, tasks, registrations);
    let acknowledged = acknowledged.into_inner().unwrap();
    let lost = lost_names(&config, &acknowledged).await;
    let report = Report {
        chain,
        greeter,
        ledger,
        tasks,
        registrations,
        ledger_answered: answered.into_inner().unwrap(),
        acknowledged: acknowledged.len() as u64,
        lost,
    };
    println!("REPORT {}", serde_json::to_string(&report).unwrap());
}

/// The acknowledged names the name servers no longer know, each looked up until it is found
/// or 10 s pass.
async fn lost_names(config: &rmi::ClientConfig, names: &[String]) -> Vec<String> {
    let mut lost = Vec::new();
    let ns = config.locate_ns().await;
    let mut listed = None;
    let give_up = Instant::now() + Duration::from_secs(10);
    while listed.is_none() && Instant::now() < give_up {
        if let Ok(ns) = &ns {
            if let Ok(Ok(names)) = ns.list(Some("chaos.name.".into())).await {
                listed = Some(names);
            }
        }
        if listed.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let Some(listed) = listed else {
        return vec!["(the name servers could not be asked)".into()];
    };
    for name in names {
        if !listed.contains_key(name) {
            lost.push(name.clone());
        }
    }
    lost
}

// ---- The orchestrator: the hosts, the programs, the faults, the check ----

/// One program on one host, which faults may kill and restart.
struct Program {
    name: String,
    host: usize,
    command: Box<dyn Fn() -> Command>,
    /// What it prints once ready.
    ready: String,
    running: Option<Running>,
}

/// How many times a program that exits at its start is started again, a second apart, as
/// systemd's `Restart=on-failure` would (a server cannot register while etcd elects a leader).
const START_TRIES: u32 = 20;

impl Program {
    /// Starts the program and waits until it is ready; again if it exits first. Returns how
    /// many starts failed.
    fn start(&mut self) -> u32 {
        let mut failed = 0;
        loop {
            let mut running = Running::start_with_log(&self.name, (self.command)());
            match running.wait_for_line(&self.ready) {
                Ok(_) => {
                    self.running = Some(running);
                    return failed;
                }
                Err(why) if failed + 1 < START_TRIES => {
                    failed += 1;
                    println!(
                        "   {} failed to start ({failed}): {}",
                        self.name,
                        last_words(&why)
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Running::pid)
    }

    fn kill_9(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.kill_9();
        }
    }
}

/// The end of what a program printed before it failed to start.
fn last_words(why: &str) -> &str {
    let tail = why.len().saturating_sub(240);
    why.get(tail..).unwrap_or(why)
}

/// The faults injected, by kind, and how often a program restarted after one failed to start.
#[derive(Default)]
struct Faults {
    injected: BTreeMap<&'static str, u64>,
    failed_starts: u32,
}

/// The most memory (KiB) and file descriptors each program held.
type Peaks = Mutex<BTreeMap<String, (u64, u64)>>;

fn orchestrate(args: &Args) -> bool {
    let seed = args.seed.unwrap_or_else(rand::random);
    println!(
        "chaos: seed {seed} (--seed {seed} replays these faults), {} s",
        args.secs
    );
    let programs_dir = build_programs();
    let etcd = which("etcd").expect("the `etcd` program (Debian: etcd-server) is on the PATH");
    let lan = Lan::new(4);
    let addr = |i: usize| lan.addr(i);
    let work = tempfile::Builder::new()
        .prefix("rmi-chaos-")
        .tempdir()
        .expect("a temporary directory");
    let ns_list = (0..3)
        .map(|i| format!("{}:9090", addr(i)))
        .collect::<Vec<_>>()
        .join(",");
    let storage = format!(
        "etcd:{}",
        (0..3)
            .map(|i| format!("http://{}:2379", addr(i)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cluster = (0..3)
        .map(|i| format!("m{i}=http://{}:2380", addr(i)))
        .collect::<Vec<_>>()
        .join(",");

    let ledger_file = work.path().join("ledger");
    let example = |name: &str| programs_dir.join("examples").join(name);
    let me = std::env::current_exe().expect("the program knows its path");
    let on = |host: usize, name: String, program: &Path, args: Vec<String>, ready: &str| {
        let (host_ns, program) = (lan.host(host).to_owned(), program.to_owned());
        let (ns_list, ready) = (ns_list.clone(), ready.to_owned());
        Program {
            name,
            host,
            command: Box::new(move || {
                let mut command = rmi_tests::netns::in_namespace(&host_ns, &program);
                command.env("RMI_NS_HOST", &ns_list).args(&args);
                command
            }),
            ready,
            running: None,
        }
    };
    let mut programs: Vec<Program> = Vec::new();
    for i in 0..3 {
        let (client, peer) = (
            format!("http://{}:2379", addr(i)),
            format!("http://{}:2380", addr(i)),
        );
        let data = work.path().join(format!("m{i}")).display().to_string();
        let args = [
            ("--name", format!("m{i}")),
            ("--data-dir", data),
            ("--listen-client-urls", client.clone()),
            ("--advertise-client-urls", client),
            ("--listen-peer-urls", peer.clone()),
            ("--initial-advertise-peer-urls", peer),
            ("--initial-cluster", cluster.clone()),
            ("--initial-cluster-token", "rmi-chaos".into()),
            ("--initial-cluster-state", "new".into()),
        ];
        let args = args
            .into_iter()
            .flat_map(|(k, v)| [k.to_owned(), v])
            .collect();
        let ready = "ready to serve client requests";
        programs.push(on(i, format!("etcd m{i}"), &etcd, args, ready));
    }
    for i in 0..3 {
        let args = ["--host", &addr(i), "--port", "9090", "--storage", &storage];
        let args = args.map(str::to_owned).to_vec();
        let rmi_ns = programs_dir.join("rmi-ns");
        programs.push(on(i, format!("rmi-ns {i}"), &rmi_ns, args, "NS running on"));
    }
    // A server of the demos on host `i`, with a lease on its name.
    let leased = |i: usize, before: &[String]| {
        let mut args = before.to_vec();
        args.extend([
            "--host".into(),
            addr(i),
            "--name-ttl".into(),
            NAME_TTL.into(),
        ]);
        args
    };
    for n in 1..=3usize {
        let args = leased(n - 1, &[n.to_string(), (n % 3 + 1).to_string()]);
        let ready = format!("server_{n} started");
        let name = format!("chain_server {n}");
        programs.push(on(n - 1, name, &example("chain_server"), args, &ready));
    }
    let greeter = example("greeter_server");
    programs.push(on(
        0,
        "greeter_server".into(),
        &greeter,
        leased(0, &[]),
        "Ready.",
    ));
    let worker = example("task_worker");
    programs.push(on(
        2,
        "task_worker".into(),
        &worker,
        leased(2, &[]),
        "Worker ",
    ));
    let ledger = vec![
        "--role".into(),
        "ledger".into(),
        ledger_file.display().to_string(),
        "--host".into(),
        addr(1),
    ];
    programs.push(on(1, "ledger".into(), &me, ledger, "Ledger ready"));
    start_etcd(&mut programs[0..3]);
    for program in &mut programs[3..] {
        program.start();
        println!("   {} started on host {}", program.name, program.host);
    }

    let peaks: Peaks = Default::default();
    let mut client = {
        let mut command = lan.command(3, &me);
        command.env("RMI_NS_HOST", &ns_list).args([
            "--role",
            "client",
            "--secs",
            &args.secs.to_string(),
        ]);
        Running::start_with_log("client", command)
    };
    let started = Instant::now();
    let faults_end = started + Duration::from_secs(args.secs).saturating_sub(CALM);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut faults = Faults::default();
    while Instant::now() < faults_end {
        sample(&programs, &peaks);
        let pause = Duration::from_millis(rng.random_range(500..2000));
        std::thread::sleep(pause.min(faults_end.saturating_duration_since(Instant::now())));
        if Instant::now() >= faults_end {
            break;
        }
        strike(
            &mut rng,
            &lan,
            &mut programs,
            &mut faults,
            &peaks,
            faults_end,
        );
    }
    // Calm: every program up, every link mended, no loss; the client goes on.
    for program in &mut programs {
        if program.running.is_none() {
            faults.failed_starts += program.start();
        }
    }
    while Instant::now() < started + Duration::from_secs(args.secs) {
        sample(&programs, &peaks);
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = client.expect_line("REPORT ");
    let report: Report = serde_json::from_str(report.trim_start_matches("REPORT "))
        .expect("the client's report reads");
    let ran = std::fs::read_to_string(&ledger_file).unwrap_or_default();
    check(&report, &ran, &faults, &peaks.into_inner().unwrap())
}

/// Starts the etcd members together (each waits for the others to elect a leader).
fn start_etcd(members: &mut [Program]) {
    let mut started: Vec<Running> = members
        .iter()
        .map(|m| Running::start_with_log(&m.name, (m.command)()))
        .collect();
    for (member, running) in members.iter_mut().zip(started.iter_mut()) {
        running.expect_line(&member.ready);
    }
    for (member, running) in members.iter_mut().zip(started) {
        member.running = Some(running);
        println!("   {} started on host {}", member.name, member.host);
    }
}

/// Injects one fault at random, waits a moment, and heals it.
fn strike(
    rng: &mut rand::rngs::StdRng,
    lan: &Lan,
    programs: &mut [Program],
    faults: &mut Faults,
    peaks: &Peaks,
    faults_end: Instant,
) {
    let last = faults_end.saturating_duration_since(Instant::now());
    let hold = Duration::from_millis(rng.random_range(500..3000)).min(last);
    let host = rng.random_range(0..3);
    let kind = match rng.random_range(0..5) {
        0 => {
            // Any program but etcd's members (their own kind of fault).
            let at = rng.random_range(3..programs.len());
            let program = &mut programs[at];
            println!("   kill -9 {} (restarted after {hold:?})", program.name);
            program.kill_9();
            wait_sampling(hold, programs, peaks);
            faults.failed_starts += programs[at].start();
            "kill -9 and restart"
        }
        1 => {
            let at = rng.random_range(0..programs.len());
            let pid = programs[at].pid();
            println!("   SIGSTOP {} for {hold:?}", programs[at].name);
            if let Some(pid) = pid {
                let _ = send_signal(pid, libc::SIGSTOP);
                wait_sampling(hold, programs, peaks);
                let _ = send_signal(pid, libc::SIGCONT);
            }
            "stop and continue"
        }
        2 => {
            println!("   link of host {host} down for {hold:?}");
            lan.set_link(host, false);
            wait_sampling(hold, programs, peaks);
            lan.set_link(host, true);
            "link down and up"
        }
        3 => {
            let loss = rng.random_range(10..40);
            println!("   {loss}% of host {host}'s packets dropped for {hold:?}");
            let probability = format!("0.{loss:02}");
            let rule = |action: &str, chain: &str| {
                lan.iptables(
                    host,
                    &[
                        action,
                        chain,
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        &probability,
                        "-j",
                        "DROP",
                    ],
                )
            };
            rule("-A", "INPUT");
            rule("-A", "OUTPUT");
            wait_sampling(hold, programs, peaks);
            rule("-D", "INPUT");
            rule("-D", "OUTPUT");
            "packet loss"
        }
        _ => {
            let member = &mut programs[host];
            println!("   kill -9 {} (restarted after {hold:?})", member.name);
            member.kill_9();
            wait_sampling(hold, programs, peaks);
            faults.failed_starts += programs[host].start();
            "etcd member killed"
        }
    };
    *faults.injected.entry(kind).or_default() += 1;
}

/// Waits `hold`, sampling the programs' memory and descriptors.
fn wait_sampling(hold: Duration, programs: &[Program], peaks: &Peaks) {
    let until = Instant::now() + hold;
    while Instant::now() < until {
        sample(programs, peaks);
        std::thread::sleep(Duration::from_millis(200).min(until - Instant::now().min(until)));
    }
}

/// Records each running program's resident memory (KiB) and open descriptors, if higher.
fn sample(programs: &[Program], peaks: &Peaks) {
    let mut peaks = peaks.lock().unwrap();
    for program in programs {
        let Some(pid) = program.pid() else { continue };
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let peak = peaks.entry(program.name.clone()).or_default();
        *peak = (peak.0.max(rss), peak.1.max(fds));
    }
}

/// Prints what happened and whether the run passed.
fn check(
    report: &Report,
    ran: &str,
    faults: &Faults,
    peaks: &BTreeMap<String, (u64, u64)>,
) -> bool {
    let mut failures = Vec::new();
    let faults_line: Vec<String> = faults
        .injected
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "faults: {}; starts that failed (and were tried again): {}",
        faults_line.join(", "),
        faults.failed_starts
    );
    for (name, tally) in [
        ("chain", &report.chain),
        ("greeter", &report.greeter),
        ("ledger", &report.ledger),
        ("tasks", &report.tasks),
        ("registrations", &report.registrations),
    ] {
        let errors: Vec<String> = tally
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "{name}: {} calls, {} right, errors: {}; longest stall {:.1} s",
            tally.calls,
            tally.ok,
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            },
            tally.longest_stall
        );
        if !tally.wrong.is_empty() {
            failures.push(format!(
                "{name}: {} wrong answers: {:?}",
                tally.wrong.len(),
                tally.wrong
            ));
        }
        if tally.hung > 0 {
            failures.push(format!(
                "{name}: {} calls hung past their deadline",
                tally.hung
            ));
        }
        if tally.ok == 0 || tally.since_last_ok > CALM.as_secs_f64() {
            failures.push(format!(
                "{name}: no success in the calm at the end ({:.1} s since the last)",
                tally.since_last_ok
            ));
        }
    }
    let mut times_ran: BTreeMap<u64, u32> = BTreeMap::new();
    for id in ran.lines().filter_map(|l| l.trim().parse().ok()) {
        *times_ran.entry(id).or_default() += 1;
    }
    let twice: Vec<u64> = times_ran
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    let unrecorded: Vec<u64> = report
        .ledger_answered
        .iter()
        .filter(|id| !times_ran.contains_key(id))
        .copied()
        .collect();
    println!(
        "at most once: {} ledger calls ran, {} of them twice; {} answered, {} of them unrecorded",
        times_ran.len(),
        twice.len(),
        report.ledger_answered.len(),
        unrecorded.len()
    );
    if !twice.is_empty() {
        failures.push(format!("calls that ran twice: {twice:?}"));
    }
    if !unrecorded.is_empty() {
        failures.push(format!("calls answered but not run: {unrecorded:?}"));
    }
    println!(
        "registrations: {} acknowledged, {} lost",
        report.acknowledged,
        report.lost.len()
    );
    if !report.lost.is_empty() {
        failures.push(format!("acknowledged names lost: {:?}", report.lost));
    }
    for (name, (rss, fds)) in peaks {
        println!(
            "   {name}: at most {} MiB resident, {fds} descriptors",
            rss / 1024
        );
        if *rss > MAX_RSS_KIB || *fds > MAX_FDS {
            failures.push(format!(
                "{name} held {} MiB and {fds} descriptors",
                rss / 1024
            ));
        }
    }
    if failures.is_empty() {
        println!("PASS");
        true
    } else {
        for failure in &failures {
            println!("FAIL: {failure}");
        }
        false
    }
}

/// Builds `rmi-ns` (with names in etcd) and the examples with this program's profile; the
/// directory they are in.
fn build_programs() -> PathBuf {
    let exe = std::env::current_exe().expect("the program knows its path");
    let dir = exe.parent().expect("target/<profile>").to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "rmi-nameserver",
            "-p",
            "rmi-examples",
        ])
        .args(["--bins", "--examples", "--features", "rmi-nameserver/etcd"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building rmi-ns and the examples failed");
    dir
}

/// The path of `program` on the PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}
