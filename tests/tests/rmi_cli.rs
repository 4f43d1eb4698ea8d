//! `rmi call`, `rmi methods` and `rmi objects` against real servers: calls without Rust, and
//! what a daemon says about its objects.

use rmi_tests::{binary, example, run, stderr, stdout, NameServer, Running};

fn rmi(ns: &NameServer, args: &[&str]) -> std::process::Output {
    run(ns.client(binary("rmi")).args(args), "")
}

fn start(ns: &NameServer, example_name: &str, args: &[&str], ready: &str) -> Running {
    let mut command = ns.client(example(example_name));
    command.args(args);
    let mut server = Running::start(example_name, command);
    server.expect_line(ready);
    server
}

#[test]
fn rmi_call_takes_json_and_prints_json() {
    let ns = NameServer::start();
    let _greeter = start(&ns, "greeter_server", &[], "Ready.");
    let greeted = rmi(
        &ns,
        &["call", "rminame:server", "welcome_message", r#"["Ruvika"]"#],
    );
    assert!(greeted.status.success(), "{}", stderr(&greeted));
    assert_eq!(stdout(&greeted), "\"Hi welcome Ruvika\"\n");

    let wrong_type = rmi(&ns, &["call", "rminame:server", "welcome_message", "[5]"]);
    assert_eq!(wrong_type.status.code(), Some(1));
    assert!(
        stderr(&wrong_type).contains("argument `name: String` of 'welcome_message'"),
        "{}",
        stderr(&wrong_type)
    );
    assert!(
        stderr(&wrong_type).contains("expected a string"),
        "{}",
        stderr(&wrong_type)
    );

    let too_many = rmi(
        &ns,
        &["call", "rminame:server", "welcome_message", r#"["a", "b"]"#],
    );
    assert_eq!(too_many.status.code(), Some(1));
    assert!(
        stderr(&too_many).contains("takes 1 arguments, 2 given"),
        "{}",
        stderr(&too_many)
    );

    let no_method = rmi(&ns, &["call", "rminame:server", "shout", "[]"]);
    assert_eq!(no_method.status.code(), Some(1));
    assert!(stderr(&no_method).contains("Greeter has no such method; it has: welcome_message"));

    let not_json = rmi(
        &ns,
        &["call", "rminame:server", "welcome_message", "Ruvika"],
    );
    assert_eq!(not_json.status.code(), Some(1));
    assert!(stderr(&not_json).contains("are not JSON"));
}

#[test]
fn a_methods_own_error_prints_as_json_on_stderr() {
    let ns = NameServer::start();
    // Server 1 passes on to server 2, which does not exist: `process` returns its own error.
    let _one = start(&ns, "chain_server", &["1", "2"], "server_1 started");
    let failed = rmi(
        &ns,
        &[
            "call",
            "rminame:example.chainTopology.1",
            "process",
            r#"[["hello"]]"#,
        ],
    );
    assert_eq!(failed.status.code(), Some(1));
    let error: serde_json::Value =
        serde_json::from_str(&stderr(&failed)).expect("the error is JSON");
    assert_eq!(error["at"], "1");
    assert!(error["reason"]
        .as_str()
        .unwrap()
        .contains("example.chainTopology.2"));
    // Its Ok value prints bare.
    let closed = rmi(
        &ns,
        &[
            "call",
            "rminame:example.chainTopology.1",
            "process",
            r#"[["1"]]"#,
        ],
    );
    assert_eq!(stdout(&closed), "[\"complete at 1\"]\n");
}

#[test]
fn rmi_methods_and_objects_describe_what_a_daemon_hosts() {
    let ns = NameServer::start();
    let _greeter = start(&ns, "greeter_server", &[], "Ready.");
    let methods = rmi(&ns, &["methods", "rminame:server"]);
    assert!(methods.status.success(), "{}", stderr(&methods));
    let text = stdout(&methods);
    assert!(text.contains(" is a Greeter\n"), "{text}");
    assert!(
        text.contains("  fn welcome_message(name: String) -> String\n"),
        "{text}"
    );

    let endpoint = format!("127.0.0.1:{}", ns.port);
    let objects = rmi(&ns, &["objects", &endpoint]);
    assert!(objects.status.success(), "{}", stderr(&objects));
    let text = stdout(&objects);
    assert!(
        text.contains("rmi:rmi.nameserver@127.0.0.1:") && text.contains("is a NameServer"),
        "{text}"
    );
    assert!(
        text.contains("fn lookup(name: String) -> Result<ObjectUri, NsError>"),
        "{text}"
    );
    assert!(text.contains("is a DaemonObject"), "{text}");
}
