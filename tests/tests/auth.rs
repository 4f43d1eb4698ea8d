//! Shared-key authentication across processes: the calc demo (Python's
//! `multiprocessing.connection` with an `authkey`), and a name server with a key.

use rmi_tests::{binary, example, run, stderr, stdout, temp_dir, NameServer, Running, TempDir};

/// Writes `secret` to a key file in `dir`.
fn key_file(dir: &TempDir, name: &str, secret: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.display().to_string()
}

fn calc_server(key: &str) -> (Running, u16) {
    let mut command = example("calc_server");
    command.args(["--key-file", key, "--port", "0"]);
    let mut server = Running::start_with_log("calc_server", command);
    let line = server.expect_line("Listening on 127.0.0.1:");
    let port = line.rsplit(':').next().unwrap().parse().unwrap();
    (server, port)
}

#[test]
fn the_calc_client_with_the_key_gets_its_sums() {
    let dir = temp_dir("calc-key");
    let key = key_file(&dir, "key", "open sesame");
    let (_server, port) = calc_server(&key);
    let output = run(
        example("calc_client").args(["--key-file", &key, "--port", &port.to_string()]),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "11\nmark帅哥\n");
}

#[test]
fn with_another_key_both_sides_say_why_the_connection_was_refused() {
    let dir = temp_dir("calc-wrong-key");
    let key = key_file(&dir, "key", "open sesame");
    let wrong = key_file(&dir, "wrong", "open barley");
    let (mut server, port) = calc_server(&key);
    let output = run(
        example("calc_client").args(["--key-file", &wrong, "--port", &port.to_string()]),
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let said = stderr(&output);
    assert!(
        said.contains(&format!(
            "not allowed to talk to the daemon at 127.0.0.1:{port}: the daemon refused our key"
        )),
        "{said}"
    );
    server.expect_line("connection refused: wrong key");
    // The server goes on serving those with the key.
    let output = run(
        example("calc_client").args(["--key-file", &key, "--port", &port.to_string()]),
        "",
    );
    assert_eq!(stdout(&output), "11\nmark帅哥\n");
}

#[test]
fn a_name_server_with_a_key_serves_only_clients_with_it() {
    let dir = temp_dir("ns-key");
    let key = key_file(&dir, "key", "name server secret");
    let ns = NameServer::start_with(&["--key-file", &key]);

    let mut nsc = ns.client(binary("rmi-nsc"));
    nsc.arg("list");
    let refused = run(&mut nsc, "");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("requires a key"),
        "{}",
        stderr(&refused)
    );

    let mut nsc = ns.client(binary("rmi-nsc"));
    nsc.args(["--key-file", &key, "ping"]);
    let allowed = run(&mut nsc, "");
    assert!(allowed.status.success(), "{}", stderr(&allowed));

    // A server and a client that take the key from RMI_KEY_FILE.
    let mut server = ns.client(example("greeter_server"));
    server.env("RMI_KEY_FILE", &key);
    let mut server = Running::start("greeter_server", server);
    server.expect_line("Ready. Object uri = ");
    let mut client = ns.client(example("greeter_client"));
    client.env("RMI_KEY_FILE", &key).arg("Ruvika");
    assert_eq!(stdout(&run(&mut client, "")), "Hi welcome Ruvika\n");
}

#[test]
fn a_name_server_without_a_key_warns_that_anyone_can_connect() {
    let mut ns = binary("rmi-ns");
    ns.args(["--port", "0", "--no-broadcast"]);
    let mut ns = Running::start_with_log("rmi-ns", ns);
    ns.expect_line("warning: no key (--key-file or RMI_KEY_FILE): anyone who can reach 127.0.0.1:");
}
