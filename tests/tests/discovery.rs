//! Finding the name server by UDP broadcast, for real: two network namespaces joined by a veth
//! pair, the name server in one, the client (`rmi-nsc`, or Python's `Pyro5.api.locate_ns()`) in
//! the other. Needs the rights to create network
//! namespaces (root or CAP_NET_ADMIN) and iproute2: ignored unless asked for
//! (`--include-ignored`, as `.ci/run` does); without them it fails and says why.

use std::process::{Command, Output};

use rmi_tests::netns::ip;
use rmi_tests::{binary_path, stderr, stdout, Running};

/// Two namespaces, `a` (10.231.0.1) and `b` (10.231.0.2), on one link; removed when dropped.
struct TestNet {
    a: String,
    b: String,
}

impl TestNet {
    fn create() -> Result<TestNet, String> {
        // Unique among the tests of this process, which run at once.
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = std::process::id() % 100_000;
        let net = TestNet {
            a: format!("rmi-a-{id}-{n}"),
            b: format!("rmi-b-{id}-{n}"),
        };
        let (veth_a, veth_b) = (format!("rva{id}{n}"), format!("rvb{id}{n}"));
        ip(&["netns", "add", &net.a])?;
        ip(&["netns", "add", &net.b])?;
        ip(&[
            "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
        ])?;
        ip(&["link", "set", &veth_a, "netns", &net.a])?;
        ip(&["link", "set", &veth_b, "netns", &net.b])?;
        for (ns, veth, address) in [
            (&net.a, &veth_a, "10.231.0.1/24"),
            (&net.b, &veth_b, "10.231.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", address, "dev", veth])?;
            ip(&["-n", ns, "link", "set", veth, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // The limited broadcast 255.255.255.255 leaves by the default route.
        ip(&["-n", &net.b, "route", "add", "default", "dev", &veth_b])?;
        Ok(net)
    }

    /// `program` run inside namespace `ns`.
    fn command(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(binary_path(program));
        command.env_remove("RMI_NS_HOST").env_remove("RMI_NS_PORT");
        command
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn start_name_server(net: &TestNet, bc_port: &str, extra: &[&str]) -> (Running, String) {
    let mut command = TestNet::command(&net.a, "rmi-ns");
    command
        .args(["--host", "10.231.0.1", "--port", "0", "--bc-port", bc_port])
        .args(extra);
    let mut ns = Running::start("rmi-ns in namespace a", command);
    let line = ns.expect_line("NS running on 10.231.0.1:");
    let port = line.rsplit(':').next().unwrap().trim().to_owned();
    (ns, port)
}

fn ping_from_b(net: &TestNet, bc_port: &str) -> Output {
    let mut command = TestNet::command(&net.b, "rmi-nsc");
    command
        .env("RMI_NS_BCPORT", bc_port)
        .args(["--json", "ping"]);
    rmi_tests::run(&mut command, "")
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn a_client_finds_the_name_server_by_broadcast_in_another_namespace() {
    let net = TestNet::create().unwrap_or_else(|why| panic!("cannot make the test network: {why}"));
    let (_ns, port) = start_name_server(&net, "9091", &[]);
    let found = ping_from_b(&net, "9091");
    assert!(found.status.success(), "{}", stderr(&found));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&found)).unwrap();
    assert_eq!(
        answer["uri"],
        format!("rmi:rmi.nameserver@10.231.0.1:{port}")
    );

    // A name server told not to answer is not found.
    let (_quiet, _) = start_name_server(&net, "9092", &["--no-broadcast"]);
    let not_found = ping_from_b(&net, "9092");
    assert_eq!(not_found.status.code(), Some(1));
    assert!(
        stderr(&not_found).contains("no name server answered the broadcast"),
        "{}",
        stderr(&not_found)
    );
}

#[test]
#[ignore = "needs network namespaces and Python's Pyro5: root, apt-get install iproute2 iptables; pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn pyro5s_locate_ns_finds_rmi_ns_by_broadcast() {
    let net = TestNet::create().unwrap_or_else(|why| panic!("cannot make the test network: {why}"));
    let (_ns, port) = start_name_server(&net, "9093", &[]);
    let python = std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &net.b, &python, "-c"])
        .arg("import Pyro5.api\nns = Pyro5.api.locate_ns()\nns.ping()\nprint(ns._pyroUri)")
        .env("PYRO_NS_BCPORT", "9093")
        .env_remove("PYRO_NS_HOST")
        .env_remove("PYRO_NS_PORT");
    let found = rmi_tests::run(&mut command, "");
    assert!(
        found.status.success(),
        "{python} with Pyro5 (RMI_TEST_PYTHON) did not find rmi-ns: {}",
        stderr(&found)
    );
    assert_eq!(
        stdout(&found),
        format!("PYRO:Pyro.NameServer@10.231.0.1:{port}\n")
    );
}
