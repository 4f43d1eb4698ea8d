//! The greeter across processes: `rmi-ns`, `greeter_server` and `greeter_client`.

use rmi_tests::{example, run, stderr, stdout, NameServer, Running};

#[test]
fn the_greeter_greets_across_processes() {
    let ns = NameServer::start();
    let mut server = Running::start("greeter_server", ns.client(example("greeter_server")));
    let ready = server.expect_line("Ready. Object uri = rmi:obj_");
    let uri = ready.trim_start_matches("Ready. Object uri = ");
    let id = uri.trim_start_matches("rmi:").split('@').next().unwrap();
    assert_eq!(id.len(), 36, "{uri}");
    assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()), "{uri}");

    let by_argument = run(ns.client(example("greeter_client")).arg("Ruvika"), "");
    assert!(by_argument.status.success(), "{}", stderr(&by_argument));
    assert_eq!(stdout(&by_argument), "Hi welcome Ruvika\n");

    let by_prompt = run(&mut ns.client(example("greeter_client")), "Ruvika\n");
    assert!(by_prompt.status.success(), "{}", stderr(&by_prompt));
    assert_eq!(stdout(&by_prompt), "What is your name? Hi welcome Ruvika\n");
}

#[test]
fn the_client_says_why_it_cannot_greet() {
    let ns = NameServer::start();
    let no_server = run(ns.client(example("greeter_client")).arg("x"), "");
    assert_eq!(no_server.status.code(), Some(1));
    assert!(
        stderr(&no_server).contains("the name 'server' is not registered"),
        "{}",
        stderr(&no_server)
    );
    drop(ns);

    let mut nowhere = example("greeter_client");
    // A port nothing listens on: the name server is down.
    nowhere.env("RMI_NS_PORT", "1").arg("x");
    let no_ns = run(&mut nowhere, "");
    assert_eq!(no_ns.status.code(), Some(1));
    assert!(
        stderr(&no_ns).contains("cannot reach the name server at 127.0.0.1:1"),
        "{}",
        stderr(&no_ns)
    );
}
