//! A list of name servers (`RMI_NS_HOST=a:9090,b:9090`, `rmi-nsc --ns-host`): the first that
//! answers is used, and a proxy whose name server dies moves on to the next. These run without
//! etcd: two in-memory name servers do not share names, but show where calls go.

use std::time::{Duration, Instant};

use rmi::{ClientConfig, Endpoint, NameServerProxy, Proxy, RegisterOptions};
use rmi_examples::greeter::Server;
use rmi_tests::{binary, run, stderr, stdout, NameServer};

/// A loopback port nothing listens on (bound by the OS, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn a_dead_name_server_first_in_the_list_is_skipped() {
    let ns = NameServer::start();
    let list = format!("127.0.0.1:{},127.0.0.1:{}", dead_port(), ns.port);
    let started = Instant::now();
    let registered = run(
        binary("rmi-nsc").env("RMI_NS_HOST", &list).args([
            "register",
            "shop.tea",
            "rmi:obj_1@127.0.0.1:4001",
        ]),
        "",
    );
    assert!(registered.status.success(), "{}", stderr(&registered));
    let found = run(
        binary("rmi-nsc").args(["--ns-host", &list, "lookup", "shop.tea"]),
        "",
    );
    assert!(found.status.success(), "{}", stderr(&found));
    assert!(
        stdout(&found).contains("rmi:obj_1@127.0.0.1:4001"),
        "{}",
        stdout(&found)
    );
    // A refused connection is skipped at once, not after a timeout.
    assert!(started.elapsed() < Duration::from_secs(10));

    // Entries without a port take --ns-port; a list where none answers names them all.
    let dead = dead_port();
    let nowhere = run(
        binary("rmi-nsc").args([
            "--ns-host",
            "127.0.0.1,[::1]",
            "--ns-port",
            &dead.to_string(),
            "ping",
        ]),
        "",
    );
    assert_eq!(nowhere.status.code(), Some(1));
    let error = stderr(&nowhere);
    assert!(
        error.contains(&format!("127.0.0.1:{dead},[::1]:{dead}")),
        "{error}"
    );

    // rmi-ns listens on one address: a list is refused with what to do.
    let refused = run(binary("rmi-ns").args(["--host", &list, "--port", "0"]), "");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("give it with --host"),
        "{}",
        stderr(&refused)
    );
}

async fn name_server() -> rmi_nameserver::NameServerHost {
    let host = rmi_nameserver::NameServerHost::bind("127.0.0.1:0")
        .await
        .expect("a name server on loopback");
    host.daemon().spawn();
    host
}

/// Calls `ping` until it answers, for at most 5 s; returns where it answered.
async fn answering(ns: &NameServerProxy) -> Endpoint {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ns.ping().await {
            Ok(()) => return ns.core().uri().endpoint().clone(),
            Err(e) if Instant::now() > deadline => panic!("no name server answers: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_server_proxy_and_a_daemons_lease_move_on_when_the_name_server_dies() {
    let (first, second) = (name_server().await, name_server().await);
    let list = [
        Endpoint::new("127.0.0.1", dead_port()),
        first.uri().endpoint().clone(),
        second.uri().endpoint().clone(),
    ];
    let ns = ClientConfig::default()
        .locate_ns_among(&list)
        .await
        .expect("a name server of the list answers");
    assert_eq!(&ns.core().uri().endpoint(), &first.uri().endpoint());

    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    daemon.spawn();
    let lease = RegisterOptions::default().ttl(Duration::from_millis(300));
    let uri = daemon
        .register_named(&ns, "greeter", Server, lease)
        .await
        .unwrap();

    first.shutdown().await;
    drop(first);
    // The proxy's next call binds the next name server of the list that answers.
    assert_eq!(&answering(&ns).await, second.uri().endpoint());
    // The daemon's renewals moved there too: not finding the name (the two name servers do
    // not share names), they registered it again.
    let direct = rmi::locate_ns_at(second.uri().endpoint()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while direct.lookup("greeter".into()).await.unwrap().is_err() {
        assert!(
            Instant::now() < deadline,
            "the lease was not renewed on the second name server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(direct.lookup("greeter".into()).await.unwrap(), Ok(uri));
    daemon.shutdown().await;
    second.shutdown().await;
}

/// A hung name server (a stopped process: its kernel still accepts connections and acks, but
/// nothing answers) must not make a name lapse: the lease's renewal gives up within a third of
/// the lease and moves to the next name server of the list, which has the name within the
/// lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_name_server_does_not_make_a_name_lapse() {
    let (hung, other) = (NameServer::start(), NameServer::start());
    let list = [
        Endpoint::new("127.0.0.1", hung.port),
        Endpoint::new("127.0.0.1", other.port),
    ];
    let ns = ClientConfig::default()
        .locate_ns_among(&list)
        .await
        .expect("a name server of the list answers");
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    daemon.spawn();
    let ttl = Duration::from_secs(3);
    let lease = RegisterOptions::default().ttl(ttl);
    let uri = daemon
        .register_named(&ns, "greeter", Server, lease)
        .await
        .unwrap();

    rmi_tests::send_signal(hung.process.pid(), libc::SIGSTOP).expect("SIGSTOP");
    let stopped_at = Instant::now();
    let direct = rmi::locate_ns_at(&list[1]).await.unwrap();
    let mut found = false;
    // Bounded: at most 2 lease times of looks, 50 ms apart.
    while stopped_at.elapsed() < 2 * ttl {
        if direct.lookup("greeter".into()).await.unwrap() == Ok(uri.clone()) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = stopped_at.elapsed();
    rmi_tests::send_signal(hung.process.pid(), libc::SIGCONT).expect("SIGCONT");
    assert!(
        found,
        "the name was not on the other name server {waited:?} after the first hung"
    );
    // Within the lease: the renewal that hung gave up after a third of it, and the name was
    // registered on the other at once.
    assert!(waited < ttl + Duration::from_millis(500), "{waited:?}");
    daemon.shutdown().await;
}
