//! The chain topology across processes: one `chain_server` per link, then `chain_client`.

use rmi_tests::{example, run, stderr, stdout, NameServer, Running};

fn start_ring(ns: &NameServer, length: usize) -> Vec<Running> {
    (1..=length)
        .map(|n| {
            let (this, next) = (n.to_string(), (n % length + 1).to_string());
            let mut command = ns.client(example("chain_server"));
            command.args([&this, &next]);
            let mut server = Running::start(&format!("chain_server {this}"), command);
            server.expect_line(&format!("server_{this} started"));
            server
        })
        .collect()
}

#[test]
fn the_message_goes_round_the_ring_of_three() {
    let ns = NameServer::start();
    let mut servers = start_ring(&ns, 3);
    let output = run(&mut ns.client(example("chain_client")), "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Result=[\"passed on from 1\", \"passed on from 2\", \"passed on from 3\", \"complete at 1\"]\n"
    );
    servers[0].expect_line("1 forwarding the message to the object 2");
    servers[1].expect_line("2 forwarding the message to the object 3");
    servers[2].expect_line("3 forwarding the message to the object 1");
    servers[0].expect_line("Back at 1; the chain is closed!");

    // Run it again: the servers reuse the proxies they looked up (Pyro's own example breaks here).
    let again = run(&mut ns.client(example("chain_client")), "");
    assert_eq!(stdout(&again), stdout(&output));
}

#[test]
fn a_ring_of_any_length_works() {
    let ns = NameServer::start();
    let _servers = start_ring(&ns, 5);
    let output = run(ns.client(example("chain_client")).arg("3"), "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Result=[\"passed on from 3\", \"passed on from 4\", \"passed on from 5\", \"passed on from 1\", \"passed on from 2\", \"complete at 3\"]\n"
    );
}

#[test]
fn a_broken_ring_reports_where_it_broke() {
    let ns = NameServer::start();
    // Server 1 passes on to 2, which never started.
    let mut command = ns.client(example("chain_server"));
    command.args(["1", "2"]);
    let mut server = Running::start("chain_server 1", command);
    server.expect_line("server_1 started");
    let output = run(&mut ns.client(example("chain_client")), "");
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("server 1 could not pass the message on")
            && error.contains("example.chainTopology.2"),
        "{error}"
    );
}

#[test]
fn a_deadline_that_runs_out_mid_chain_stops_the_chain() {
    let ns = NameServer::start();
    // Each server thinks for 300 ms before passing the message on; the round may take 500 ms.
    let mut servers: Vec<Running> = (1..=3)
        .map(|n| {
            let (this, next) = (n.to_string(), (n % 3 + 1).to_string());
            let mut command = ns.client(example("chain_server"));
            command.args([this.as_str(), next.as_str(), "--delay-ms", "300"]);
            let mut server = Running::start(&format!("chain_server {this}"), command);
            server.expect_line(&format!("server_{this} started"));
            server
        })
        .collect();
    let started = std::time::Instant::now();
    let output = run(
        ns.client(example("chain_client"))
            .args(["--timeout-ms", "500"]),
        "",
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("timed out after"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    servers[0].expect_line("1 forwarding the message to the object 2");
    servers[1].expect_line("2 forwarding the message to the object 3");
    // Server 2 got only what was left of the 500 ms: its work was cancelled before it passed
    // the message on, so server 3 never saw it.
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    let third = servers[2].printed_so_far();
    assert_eq!(
        third,
        ["server_3 started"],
        "server 3 was reached: {third:?}"
    );
}
