//! High availability: several `rmi-ns` over one real three-member etcd cluster, and clients,
//! daemons and Pyro's chain example carrying on while an etcd member and a name server are
//! killed with `kill -9`.
#![cfg(feature = "etcd")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmi::{ClientConfig, Endpoint, NameServerProxy, ObjectUri, RegisterOptions};
use rmi_examples::greeter::Server;
use rmi_tests::etcd::EtcdCluster;
use rmi_tests::{binary, example, run, stderr, stdout, NameServer, Running};

/// The longest a client may go without a successful lookup while one etcd member or one name
/// server is killed: the README's "High availability" section states it.
const FAIL_OVER_BOUND: Duration = Duration::from_secs(5);

fn name_servers(cluster: &EtcdCluster, count: usize) -> Vec<NameServer> {
    (0..count)
        .map(|_| NameServer::start_with(&["--storage", &cluster.storage()]))
        .collect()
}

/// `127.0.0.1:P1,127.0.0.1:P2,…`, as `RMI_NS_HOST` takes it.
fn host_list(servers: &[NameServer]) -> String {
    servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
#[ignore = "needs etcd: apt-get install etcd-server"]
fn two_name_servers_on_one_cluster_share_their_names() {
    let cluster = EtcdCluster::start(3).expect("an etcd cluster");
    let servers = name_servers(&cluster, 2);
    let (one, two) = (&servers[0], &servers[1]);
    let registered = one.nsc(&[
        "register",
        "shop.tea",
        "rmi:obj_1@127.0.0.1:4001",
        "--meta",
        "drinks,hot",
    ]);
    assert!(registered.status.success(), "{}", stderr(&registered));
    // Found at once through the other.
    let found = two.nsc(&["--json", "lookup", "shop.tea"]);
    assert!(found.status.success(), "{}", stderr(&found));
    let found = stdout(&found);
    assert!(
        found.contains("rmi:obj_1@127.0.0.1:4001") && found.contains("hot"),
        "{found}"
    );
    // A safe registration through one sees the other's.
    let taken = two.nsc(&["register", "shop.tea", "rmi:obj_2@127.0.0.1:4002", "--safe"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("already registered to rmi:obj_1@127.0.0.1:4001"),
        "{}",
        stderr(&taken)
    );
    let removed = two.nsc(&["remove", "shop.tea"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    let gone = one.nsc(&["lookup", "shop.tea"]);
    assert_eq!(gone.status.code(), Some(1), "{}", stdout(&gone));
    // Each rmi-ns says where it keeps the names when etcd is unreachable at start.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let storage = format!("etcd:http://127.0.0.1:{dead}");
    let refused = run(
        binary("rmi-ns").args(["--storage", &storage, "--host", "127.0.0.1", "--port", "0"]),
        "",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("cannot keep the names in etcd")
            && stderr(&refused).contains("etcd-server"),
        "{}",
        stderr(&refused)
    );
}

/// The longest time between two successful calls of each loop, and the errors seen.
#[derive(Default)]
struct Outages {
    longest: Duration,
    errors: Vec<String>,
}

/// Looks `names` up in turn until `stop`, recording the longest time without an answer.
async fn look_up_until(
    ns: NameServerProxy,
    names: Vec<(String, ObjectUri)>,
    stop: Arc<AtomicBool>,
    outages: Arc<Mutex<Outages>>,
) {
    let ns = ns.with_timeout(Duration::from_secs(2));
    let mut last_success = Instant::now();
    for (name, uri) in names.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match ns.lookup(name.clone()).await {
            Ok(Ok(found)) if &found == uri => {
                let mut outages = outages.lock().unwrap();
                outages.longest = outages.longest.max(last_success.elapsed());
                last_success = Instant::now();
            }
            other => outages
                .lock()
                .unwrap()
                .errors
                .push(format!("{name}: {other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut outages = outages.lock().unwrap();
    outages.longest = outages.longest.max(last_success.elapsed());
}

/// Registers `ack.N` for N = 0, 1, … until `stop`; returns the names acknowledged.
async fn register_until(ns: NameServerProxy, stop: Arc<AtomicBool>) -> Vec<(String, ObjectUri)> {
    let ns = ns.with_timeout(Duration::from_secs(5));
    let mut acknowledged = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = format!("ack.{n}");
        let uri: ObjectUri = format!("rmi:obj_{n}@127.0.0.1:4000").parse().unwrap();
        if let Ok(Ok(())) = ns.register(name.clone(), uri.clone()).await {
            acknowledged.push((name, uri));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged
}

#[test]
#[ignore = "needs etcd: apt-get install etcd-server"]
fn killing_an_etcd_member_then_a_name_server_loses_nothing() {
    let mut cluster = EtcdCluster::start(3).expect("an etcd cluster");
    let mut servers = name_servers(&cluster, 3);
    let endpoints: Vec<Endpoint> = servers
        .iter()
        .map(|s| Endpoint::new("127.0.0.1", s.port))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let outages = Arc::new(Mutex::new(Outages::default()));
    let config = ClientConfig::default();
    let locate = || config.locate_ns_among(&endpoints);

    // Two servers whose leased names (5 s: a lease that outlasts an etcd election) are renewed
    // through the list, a name without a lease, two clients looking them up, and one
    // registering new names all along.
    let (daemons, registering, looking) = runtime.block_on(async {
        let ns = locate().await.expect("a name server answers");
        let mut names = Vec::new();
        let mut daemons = Vec::new();
        for i in 0..2 {
            let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
            daemon.spawn();
            let lease = RegisterOptions::default().ttl(Duration::from_secs(5));
            let name = format!("leased.{i}");
            let uri = daemon
                .register_named(&ns, &name, Server, lease)
                .await
                .unwrap();
            names.push((name, uri));
            daemons.push(daemon);
        }
        let stable: ObjectUri = "rmi:obj_stable@127.0.0.1:4000".parse().unwrap();
        ns.register("stable".into(), stable.clone())
            .await
            .unwrap()
            .unwrap();
        names.push(("stable".into(), stable));
        let registering = tokio::spawn(register_until(locate().await.unwrap(), stop.clone()));
        let mut looking = Vec::new();
        for _ in 0..2 {
            looking.push(tokio::spawn(look_up_until(
                locate().await.unwrap(),
                names.clone(),
                stop.clone(),
                outages.clone(),
            )));
        }
        (daemons, registering, looking)
    });

    std::thread::sleep(Duration::from_secs(2));
    let leader = cluster.leader().expect("the cluster has a leader");
    eprintln!("killing etcd member {leader}, the leader");
    cluster.kill_9(leader);
    std::thread::sleep(Duration::from_secs(4));
    // Every client and daemon is bound to the first name server of the list.
    eprintln!("killing rmi-ns on port {}", servers[0].port);
    servers[0].process.kill_9();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);

    runtime.block_on(async {
        let acknowledged = registering.await.unwrap();
        for looking in looking {
            looking.await.unwrap();
        }
        let outages = std::mem::take(&mut *outages.lock().unwrap());
        eprintln!(
            "{} registrations acknowledged; longest time without a lookup: {:?}; {} failed lookups: {:?}",
            acknowledged.len(),
            outages.longest,
            outages.errors.len(),
            outages.errors
        );
        assert!(
            outages.longest < FAIL_OVER_BOUND,
            "lookups failed for {:?}: {:?}",
            outages.longest,
            outages.errors
        );
        assert!(acknowledged.len() > 50, "{}", acknowledged.len());
        let ns = locate().await.expect("a surviving name server answers");
        for (name, uri) in &acknowledged {
            assert_eq!(
                &ns.lookup(name.clone()).await.unwrap().unwrap(),
                uri,
                "{name}"
            );
        }
        for daemon in daemons {
            daemon.shutdown().await;
        }
    });
}

/// Runs `chain_client` with `list` as `RMI_NS_HOST`; whether it printed the whole round.
fn chain_round(list: &str) -> Result<(), String> {
    let output = run(example("chain_client").env("RMI_NS_HOST", list), "");
    let expected = "Result=[\"passed on from 1\", \"passed on from 2\", \"passed on from 3\", \"complete at 1\"]\n";
    if output.status.success() && stdout(&output) == expected {
        Ok(())
    } else {
        Err(format!("{}{}", stdout(&output), stderr(&output)))
    }
}

fn greet(list: &str) -> Result<(), String> {
    let output = run(
        example("greeter_client")
            .env("RMI_NS_HOST", list)
            .arg("Ruvika"),
        "",
    );
    if output.status.success() && stdout(&output) == "Hi welcome Ruvika\n" {
        Ok(())
    } else {
        Err(format!("{}{}", stdout(&output), stderr(&output)))
    }
}

#[test]
#[ignore = "needs etcd: apt-get install etcd-server"]
fn the_chain_and_the_greeter_keep_working_while_a_name_server_and_an_etcd_member_die() {
    let mut cluster = EtcdCluster::start(3).expect("an etcd cluster");
    let mut servers = name_servers(&cluster, 3);
    let list = host_list(&servers);
    let programs: Vec<Running> = (1..=3)
        .map(|n| {
            let (this, next) = (n.to_string(), (n % 3 + 1).to_string());
            let mut command = example("chain_server");
            command.env("RMI_NS_HOST", &list).args([
                this.as_str(),
                next.as_str(),
                "--name-ttl",
                "5",
            ]);
            let mut server = Running::start(&format!("chain_server {this}"), command);
            server.expect_line(&format!("server_{this} started"));
            server
        })
        .collect();
    let mut greeter = example("greeter_server");
    greeter.env("RMI_NS_HOST", &list).args(["--name-ttl", "5"]);
    let mut greeter = Running::start("greeter_server", greeter);
    greeter.expect_line("Ready.");
    chain_round(&list).expect("the chain goes round");
    greet(&list).expect("the greeter greets");

    // Rounds run one after another, from a thread, while the first name server (the one
    // every program is bound to) and then the etcd leader are killed.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = {
        let (list, stop) = (list.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut longest = Duration::ZERO;
            let mut last_success = Instant::now();
            let mut failures = Vec::new();
            let mut successes = 0;
            while !stop.load(Ordering::Relaxed) {
                match chain_round(&list).and_then(|()| greet(&list)) {
                    Ok(()) => {
                        longest = longest.max(last_success.elapsed());
                        last_success = Instant::now();
                        successes += 1;
                    }
                    Err(e) => failures.push(e),
                }
            }
            (longest, successes, failures)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("killing rmi-ns on port {}", servers[0].port);
    servers[0].process.kill_9();
    std::thread::sleep(Duration::from_secs(3));
    let leader = cluster.leader().expect("the cluster has a leader");
    eprintln!("killing etcd member {leader}, the leader");
    cluster.kill_9(leader);
    // Seven seconds since the first kill, longer than the servers' leases (5 s, a lease that
    // outlasts an etcd election): they were renewed through the survivors.
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let (longest, successes, failures) = rounds.join().expect("the rounds ran");
    eprintln!(
        "{successes} rounds; longest time without a round: {longest:?}; failures: {failures:?}"
    );
    assert!(successes >= 3, "{successes} rounds; {failures:?}");
    assert!(
        longest < FAIL_OVER_BOUND,
        "no round for {longest:?}: {failures:?}"
    );
    chain_round(&list).expect("the chain goes round after the kills");
    greet(&list).expect("the greeter greets after the kills");
    drop(programs);
}
