//! Python programs on Pyro5 (the real one, from PyPI) with rmi-ns and rmi servers: the
//! cookbook's greeter client by `PYRONAME:server`, Pyro5's name server interface, and
//! `python -m Pyro5.nsc`.

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
