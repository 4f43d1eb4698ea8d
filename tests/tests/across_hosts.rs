//! Deployments across machines, each machine a network namespace on one LAN (no default
//! route, so nothing reaches a host unless configured or discovered), the programs set up as
//! a user would: `RMI_HOST` per host, and nothing else where broadcasts reach.

use std::process::Command;
use std::time::{Duration, Instant};

use rmi_tests::netns::Lan;
use rmi_tests::{binary_path, example_path, run, stderr, stdout, Running};

/// `rmi-ns` on host `i` of `lan`, listening on the host's address (`RMI_HOST`), default port.
fn name_server(lan: &Lan, i: usize) -> Running {
    let mut command = lan.command(i, &binary_path("rmi-ns"));
    command.env("RMI_HOST", lan.addr(i));
    let mut ns = Running::start("rmi-ns", command);
    ns.expect_line(&format!("NS running on {}:9090", lan.addr(i)));
    ns
}

/// An example on host `i`, with `RMI_HOST` set to the host's address and nothing else.
fn example_on(lan: &Lan, i: usize, name: &str) -> Command {
    let mut command = lan.command(i, &example_path(name));
    command.env("RMI_HOST", lan.addr(i));
    command
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn the_chain_runs_across_four_hosts_with_rmi_host_as_the_only_setting() {
    let lan = Lan::new(5);
    let _ns = name_server(&lan, 0);
    let mut servers = Vec::new();
    for (host, (this, next)) in [(1, ("1", "2")), (2, ("2", "3")), (3, ("3", "1"))] {
        let mut command = example_on(&lan, host, "chain_server");
        command.args([this, next]);
        let mut server = Running::start(&format!("chain_server {this}"), command);
        // Found by broadcast on the LAN, with no default route.
        server.expect_line(&format!("server_{this} started"));
        servers.push(server);
    }
    let output = run(&mut example_on(&lan, 4, "chain_client"), "");
    assert_eq!(
        stdout(&output),
        "Result=[\"passed on from 1\", \"passed on from 2\", \"passed on from 3\", \"complete at 1\"]\n",
        "{}",
        stderr(&output)
    );
    servers[0].expect_line("Back at 1; the chain is closed!");
    servers[1].expect_line("2 forwarding the message to the object 3");
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn a_server_behind_nat_advertises_the_routers_address_and_is_called_by_name() {
    const PORT: u16 = 7001;
    let mut lan = Lan::new(2);
    let _ns = name_server(&lan, 0);
    let (private, private_addr, router) = lan.nat(&[PORT]);
    // Behind the router: broadcasts do not cross it, so the name server is configured.
    let mut command = rmi_tests::netns::in_namespace(&private, &example_path("greeter_server"));
    command
        .env("RMI_HOST", &private_addr)
        .env("RMI_NS_HOST", lan.addr(0))
        .args(["--port", &PORT.to_string(), "--advertise"])
        .arg(format!("{router}:{PORT}"));
    let mut server = Running::start("greeter_server behind NAT", command);
    let ready = server.expect_line("Ready. Object uri = ");
    assert!(ready.ends_with(&format!("@{router}:{PORT}")), "{ready}");

    let mut client = example_on(&lan, 1, "greeter_client");
    client.arg("Ruvika");
    let output = run(&mut client, "");
    assert_eq!(
        stdout(&output),
        "Hi welcome Ruvika\n",
        "{}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn chat_members_on_other_hosts_are_called_back_without_a_callback_host() {
    let lan = Lan::new(3);
    let _ns = name_server(&lan, 0);
    let mut server = Running::start("chat_server", example_on(&lan, 0, "chat_server"));
    server.expect_line("Chat ready.");
    let member = |host: usize, nick: &str| {
        let mut command = lan.command(host, &example_path("chat_client"));
        command.args(["--nick", nick]);
        let mut client = Running::start(nick, command);
        client.expect_line(&format!("as {nick}"));
        client
    };
    let mut alice = member(1, "alice");
    let mut bob = member(2, "bob");
    alice.expect_line("* bob joined");
    alice.type_in("hello from host 1\n");
    bob.expect_line("[alice] hello from host 1");
    bob.type_in("hi from host 2\n");
    alice.expect_line("[bob] hi from host 2");
    assert!(bob.end_input().success());
    alice.expect_line("* bob left");
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn a_name_server_host_that_drops_every_packet_fails_a_client_within_its_timeout() {
    let lan = Lan::new(2);
    lan.iptables(0, &["-A", "INPUT", "-j", "DROP"]);
    let mut client = lan.command(1, &example_path("chain_client"));
    client
        .env("RMI_NS_HOST", lan.addr(0))
        .args(["--timeout-ms", "2000"]);
    let started = Instant::now();
    let output = run(&mut client, "");
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let error = stderr(&output);
    assert!(
        error.contains(&format!("name server at {}:9090", lan.addr(0))),
        "{error}"
    );
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn sigterm_lets_calls_in_flight_and_their_reentrant_calls_finish_and_removes_the_name_at_once() {
    let lan = Lan::new(3);
    let _ns = name_server(&lan, 0);
    let mut servers = Vec::new();
    for (this, next) in [("1", "2"), ("2", "1")] {
        let mut command = example_on(&lan, 1, "chain_server");
        command.args([this, next, "--delay-ms", "1000", "--name-ttl", "60"]);
        let mut server = Running::start(&format!("chain_server {this}"), command);
        server.expect_line(&format!("server_{this} started"));
        servers.push(server);
    }
    // A first round: each server looks the next one up by name, on first use.
    let first = run(&mut example_on(&lan, 2, "chain_client"), "");
    assert!(first.status.success(), "{}", stderr(&first));
    servers[0].expect_line("Back at 1; the chain is closed!");
    let mut client = Running::start_with_log("chain_client", example_on(&lan, 2, "chain_client"));
    // Server 1 is thinking about its call; the chain will come back to it through server 2.
    servers[0].expect_line("1 forwarding the message to the object 2");
    rmi_tests::send_signal(servers[0].pid(), libc::SIGTERM).expect("chain_server 1 is there");
    // The name goes at once, long before its 60 s lease would end.
    let nsc = || {
        let mut command = lan.command(2, &binary_path("rmi-nsc"));
        command.env("RMI_NS_HOST", lan.addr(0)).args(["list"]);
        stdout(&run(&mut command, ""))
    };
    assert!(
        rmi_tests::eventually(Duration::from_secs(2), || !nsc()
            .contains("example.chainTopology.1")),
        "{}",
        nsc()
    );
    assert!(nsc().contains("example.chainTopology.2"));
    // The call in flight, and the re-entrant call 2 → 1 it makes, complete.
    servers[0].expect_line("Back at 1; the chain is closed!");
    client.expect_line("Result=[\"passed on from 1\", \"passed on from 2\", \"complete at 1\"]");
    let status = servers[0].wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "server 1 exits cleanly on SIGTERM");
    // A client now is refused or finds no name, at once: nothing hangs.
    let started = Instant::now();
    let output = run(&mut example_on(&lan, 2, "chain_client"), "");
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn tasks_spread_over_workers_on_two_hosts_one_listening_on_every_address() {
    let lan = Lan::new(4);
    let _ns = name_server(&lan, 0);
    // One worker listens on 0.0.0.0: its URI names the address it reaches the name server
    // from, never 0.0.0.0.
    let mut everywhere = example_on(&lan, 1, "task_worker");
    everywhere.env("RMI_HOST", "0.0.0.0");
    let mut first = Running::start_with_log("task_worker on 0.0.0.0", everywhere);
    let ready = first.expect_line("ready at rmi:");
    assert!(ready.contains(&format!("@{}:", lan.addr(1))), "{ready}");
    let mut second = Running::start_with_log("task_worker", example_on(&lan, 2, "task_worker"));
    second.expect_line("ready at rmi:obj_");
    // One-shot clients start at a random worker: both get work within a few submissions.
    for attempt in 0..40 {
        let mut submit = example_on(&lan, 3, "task_submit");
        submit.args(["add", "5", "5"]);
        let output = run(&mut submit, "");
        assert_eq!(
            stdout(&output).lines().nth(1),
            Some("10"),
            "{}",
            stderr(&output)
        );
        let ran = |w: &mut Running| w.printed_so_far().iter().any(|l| l.contains("succeeded"));
        if attempt >= 1 && ran(&mut first) && ran(&mut second) {
            return;
        }
    }
    panic!("40 one-shot submissions all went to the same worker");
}

/// The connections established to port 9090 on host `i` of `lan`, as `ss` sees them.
fn established_to_name_server(lan: &Lan, i: usize) -> usize {
    let output = Command::new("ip")
        .args([
            "netns",
            "exec",
            lan.host(i),
            "ss",
            "-Htn",
            "state",
            "established",
        ])
        .arg("( sport = :9090 )")
        .output()
        .expect("ss (iproute2) runs");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
#[ignore = "needs network namespaces: root, apt-get install iproute2 iptables"]
fn a_peer_that_vanishes_without_a_word_is_noticed_within_the_documented_bound() {
    let lan = Lan::new(2);
    let _ns = name_server(&lan, 0);
    // A server on host 1 keeps a connection to the name server (its lease's renewals).
    let mut server = example_on(&lan, 1, "greeter_server");
    server.env("RMI_NS_HOST", lan.addr(0));
    let mut server = Running::start("greeter_server", server);
    server.expect_line("Ready.");
    assert!(
        rmi_tests::eventually(Duration::from_secs(5), || established_to_name_server(
            &lan, 0
        ) >= 1),
        "the server's connection to the name server is not up"
    );
    // Host 1 vanishes: its packets stop, no FIN, no RST (power lost, a link cut).
    lan.iptables(1, &["-A", "INPUT", "-j", "DROP"]);
    lan.iptables(1, &["-A", "OUTPUT", "-j", "DROP"]);
    let cut = Instant::now();
    // The name server (which has nothing to send on that idle connection) notices by TCP
    // keepalive, within the documented bound: without it, only its 5-minute idle timeout.
    let bound = rmi::DEAD_PEER_NOTICED_WITHIN + Duration::from_secs(5);
    let noticed = rmi_tests::eventually(bound, || established_to_name_server(&lan, 0) == 0);
    let after = cut.elapsed();
    assert!(
        noticed,
        "still established {after:?} after the peer vanished"
    );
    eprintln!("the vanished peer's connection was closed {after:?} after the cut");
}
