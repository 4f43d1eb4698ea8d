//! The name server binary and the tour, as a user runs them.

use rmi_tests::{binary, example, run, stderr, stdout, NameServer};

#[test]
fn the_tour_shows_every_step_and_ends_cleanly() {
    let output = run(&mut example("tour"), "");
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    for expected in [
        "NS running on 127.0.0.1:",
        "URI = rmi:rmi.nameserver@127.0.0.1:",
        "server: Ready. Object uri = rmi:obj_",
        "welcome_message(\"Ruvika\") returned \"Hi welcome Ruvika\"",
        "server 1: Back at 1; the chain is closed!",
        "client: Result=[\"passed on from 1\", \"passed on from 2\", \"passed on from 3\", \"complete at 1\"]",
        "the name 'nobody' is not registered",
        "is a Chain, not a Greeter",
        "example.chainTopology.3 -> rmi:obj_",
        "client: callback received tick 3",
        "fn process(message: Vec<String>) -> Result<Vec<String>, ChainError>",
        "returned {\"Ok\":[\"complete at 1\"]}",
        "client: +0.2",
        "received line 4",
        "read 3 of 1,000,000 lines and dropped the stream; the producer had made",
        "client: Time connection server:",
        "client: received 210000 bytes, the same as the file: true",
        "echo server: Connection 3 from ('127.0.0.1', ",
        "(3 open)",
        "client 3: Received: hello from client 3",
        "succeeded in ",
        "client: add.delay(5, 5) -> ",
        "client: an unknown task: no task is named 'nope'",
        "client: Server responded: MY NAME IS EREN",
        "client: Server raised: MathError::DivisionByZero { dividend: 1 }",
        "carol: [alice] hello all",
        "alice: [bob] where is carol?",
        "bob: * carol left (unreachable)",
        "(bob's line reached 1 member)",
        "Tour complete.",
    ] {
        assert!(text.contains(expected), "the tour did not print {expected:?}:\n{text}");
    }
}

#[test]
fn the_name_server_says_where_it_runs_and_why_it_cannot() {
    let ns = NameServer::start();
    let mut taken = binary("rmi-ns");
    taken.args(["--port", &ns.port.to_string()]);
    let output = run(&mut taken, "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("cannot listen on 127.0.0.1:{}", ns.port)),
        "{}",
        stderr(&output)
    );

    let help = run(binary("rmi-ns").arg("--help"), "");
    assert!(help.status.success());
    assert!(stdout(&help).contains("--port") && stdout(&help).contains("RMI_NS_PORT"));
}
