//! Python programs on Pyro5 (the real one, from PyPI) with rmi-ns and rmi servers: the
//! cookbook's greeter client by `PYRONAME:server`, Pyro5's name server interface, and
//! `python -m Pyro5.nsc`, and a chain ring of Python and Rust servers run by the cookbook's
//! Python chain client.

use std::path::PathBuf;
use std::process::Command;

use rmi_tests::{binary, example, run, stderr, stdout, NameServer, Running};

/// The Python that `RMI_TEST_PYTHON` names (`python3` if unset).
fn python() -> Command {
    Command::new(std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// A Python program of `tests/python/`.
fn program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs `command` with `input`; its stdout, after checking it succeeded.
fn run_python(command: &mut Command, input: &str) -> String {
    let out = run(command, input);
    assert!(
        out.status.success(),
        "Python failed: {}\nInstall Pyro5 (`pip install Pyro5 msgpack`; .ci/run makes a virtual \
         environment with it) and point RMI_TEST_PYTHON at that Python.",
        stderr(&out)
    );
    stdout(&out)
}

/// A name server and the Rust greeter registered in it as `server`.
fn greeter() -> (NameServer, Running) {
    let ns = NameServer::start();
    let mut server = Running::start("greeter_server", ns.client(example("greeter_server")));
    server.expect_line("Ready. Object uri = rmi:obj_");
    (ns, server)
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn the_cookbooks_python_client_greets_the_rust_greeter_by_its_name() {
    let (ns, _server) = greeter();
    for serializer in ["serpent", "json", "msgpack"] {
        let mut client = python();
        client
            .arg(program("pyro_client.py"))
            .env("PYRO_NS_HOST", "127.0.0.1")
            .env("PYRO_NS_PORT", ns.port.to_string())
            .env("PYRO_SERIALIZER", serializer);
        let out = run_python(&mut client, "unused\nRuvika\n");
        assert_eq!(
            out,
            "What is the Pyro uri of the greeting object? What is your name? Hi welcome Ruvika\n",
            "{serializer}"
        );
    }
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn pyro5s_name_server_interface_works_against_rmi_ns() {
    let (ns, _server) = greeter();
    let port = ns.port.to_string();
    let out = run_python(
        python().args([program("names.py").to_str().unwrap(), "127.0.0.1", &port]),
        "",
    );
    let expected = [
        "lookup True PYRO".to_owned(),
        "PYRONAME Hi welcome Ruvika".to_owned(),
        "registered PYRO:obj_abc@127.0.0.1:5555 ['a', 'b']".to_owned(),
        "list ['Pyro.NameServer', 'python.thing', 'server']".to_owned(),
        "prefix {'python.thing': 'PYRO:obj_abc@127.0.0.1:5555'}".to_owned(),
        "yplookup {'python.thing': 'PYRO:obj_abc@127.0.0.1:5555'}".to_owned(),
        "set_metadata {'python.thing': ('PYRO:obj_abc@127.0.0.1:5555', ['c'])}".to_owned(),
        "safe NamingError".to_owned(),
        "count 3".to_owned(),
        format!("self PYRO:Pyro.NameServer@127.0.0.1:{port}"),
        "NamingError the name 'nobody' is not registered".to_owned(),
        "remove 1 0 2".to_owned(),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");

    // A name registered from Python is found from Rust, as the Pyro5 object it is.
    run_python(
        python().args([
            "-c",
            "import sys, Pyro5.api; Pyro5.api.locate_ns('127.0.0.1', int(sys.argv[1])).register('python.kept', 'PYRO:obj_kept@127.0.0.1:5555')",
            &port,
        ]),
        "",
    );
    let found = ns.nsc(&["lookup", "python.kept"]);
    assert!(
        stdout(&found).contains("PYRO:obj_kept@127.0.0.1:5555"),
        "{}",
        stdout(&found)
    );

    // A `PYRONAME:` URI resolves from Rust as from Python.
    let by_pyroname = format!("PYRONAME:server@127.0.0.1:{port}");
    let greeted = run(
        ns.client(binary("rmi"))
            .args(["call", &by_pyroname, "welcome_message", r#"["Ruvika"]"#]),
        "",
    );
    assert!(greeted.status.success(), "{}", stderr(&greeted));
    assert_eq!(stdout(&greeted), "\"Hi welcome Ruvika\"\n");
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn pyro5s_nsc_lists_rmis_names() {
    let (ns, _server) = greeter();
    let port = ns.port.to_string();
    let out = run_python(
        python().args(["-m", "Pyro5.nsc", "-n", "127.0.0.1", "-p", &port, "list"]),
        "",
    );
    assert!(out.contains("server --> PYRO:obj_"), "{out}");
    assert!(
        out.contains("Pyro.NameServer --> PYRO:Pyro.NameServer@127.0.0.1"),
        "{out}"
    );
}

/// The cookbook's chain server `n` → `next` in Python, registered in `ns`.
fn python_chain_server(ns: &NameServer, n: &str, next: &str) -> Running {
    let mut command = python();
    command
        .arg(program("server_chain.py"))
        .args([n, next])
        .env("PYRO_NS_HOST", "127.0.0.1")
        .env("PYRO_NS_PORT", ns.port.to_string())
        .env("PYTHONUNBUFFERED", "1");
    let mut server = Running::start(&format!("server_chain.py {n}"), command);
    server.expect_line(&format!("server_{n} started"));
    server
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn a_mixed_chain_ring_runs_python_to_rust_to_rust_and_back_to_python() {
    let ns = NameServer::start();
    let mut one = python_chain_server(&ns, "1", "2");
    let mut rust = ["2", "3"].map(|this| {
        let next = if this == "2" { "3" } else { "1" };
        let mut command = ns.client(example("chain_server"));
        command.args([this, next]);
        let mut server = Running::start(&format!("chain_server {this}"), command);
        server.expect_line(&format!("server_{this} started"));
        server
    });
    let mut client = python();
    client
        .arg(program("client_chain.py"))
        .env("PYRO_NS_HOST", "127.0.0.1")
        .env("PYRO_NS_PORT", ns.port.to_string());
    let out = run_python(&mut client, "");
    assert_eq!(
        out,
        "Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']\n"
    );
    one.expect_line("1 forwarding the message to the object 2");
    rust[0].expect_line("2 forwarding the message to the object 3");
    rust[1].expect_line("3 forwarding the message to the object 1");
    one.expect_line("Back at 1; the chain is closed!");
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn a_python_member_chats_with_a_rust_member_through_the_rust_chat_server() {
    let ns = NameServer::start();
    let mut server = Running::start("chat_server", ns.client(example("chat_server")));
    server.expect_line("Chat ready");
    let mut alice = {
        let mut command = ns.client(example("chat_client"));
        command.args(["--nick", "alice"]);
        let mut alice = Running::start("alice", command);
        alice.expect_line("Joined lobby as alice; members: alice");
        alice
    };
    let mut bob = {
        let mut command = python();
        command
            .arg(program("chat_member.py"))
            .arg("bob")
            .env("PYRO_NS_HOST", "127.0.0.1")
            .env("PYRO_NS_PORT", ns.port.to_string());
        let mut bob = Running::start("chat_member.py bob", command);
        bob.expect_line("Joined lobby as bob; members: alice, bob");
        bob
    };
    alice.expect_line("* bob joined");

    // The server calls the Python member back, and the Python member says through its seat.
    alice.type_in("hello bob\n");
    bob.expect_line("[alice] hello bob");
    bob.type_in("hi alice\n");
    alice.expect_line("[bob] hi alice");

    // At the end of his input, bob leaves through his seat.
    assert!(bob.end_input().success());
    alice.expect_line("* bob left");
    server.expect_line("bob left lobby");
}

#[test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 msgpack (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn the_rmi_command_calls_a_python_object_by_the_name_python_registered() {
    let ns = NameServer::start();
    let mut command = python();
    command
        .arg(program("store_server.py"))
        .env("PYRO_NS_HOST", "127.0.0.1")
        .env("PYRO_NS_PORT", ns.port.to_string());
    let mut store = Running::start("store_server.py", command);
    store.expect_line("Ready. Object uri = PYRO:obj_");
    let call = |uri: &str, method: &str, args: &str| {
        run(
            ns.client(binary("rmi")).args(["call", uri, method, args]),
            "",
        )
    };
    let greeted = call("rminame:python.store", "welcomeMessage", r#"["Ruvika"]"#);
    assert!(greeted.status.success(), "{}", stderr(&greeted));
    assert_eq!(stdout(&greeted), "\"Hi welcome Ruvika\"\n");
    // By its Python name, as Python programs write it.
    let pyroname = format!("PYRONAME:python.store@127.0.0.1:{}", ns.port);
    assert_eq!(stdout(&call(&pyroname, "div", "[7, 2]")), "3.5\n");
    let raised = call("rminame:python.store", "div", "[1, 0]");
    assert!(!raised.status.success());
    assert!(
        stderr(&raised).contains("'div' on PYRO:obj_")
            && stderr(&raised).contains("raised builtins.ZeroDivisionError: division by zero"),
        "{}",
        stderr(&raised)
    );
    let methods = run(
        ns.client(binary("rmi"))
            .args(["methods", "rminame:python.store"]),
        "",
    );
    assert_eq!(
        stdout(&methods).lines().skip(1).collect::<Vec<_>>(),
        [
            "  fn div(*args: ?) -> ?",
            "  fn welcomeMessage(*args: ?) -> ?"
        ],
        "{}",
        stdout(&methods)
    );
}
