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

/// The greeter, serving its metrics, and its daemon's `HOST:PORT`.
fn greeter_with_metrics(ns: &NameServer) -> (Running, String) {
    let mut command = ns.client(example("greeter_server"));
    command.args(["--metrics", "127.0.0.1:0"]);
    let mut greeter = Running::start("greeter_server", command);
    let endpoint = endpoint_in(&greeter.expect_line("Ready. Object uri = "));
    (greeter, endpoint)
}

/// The daemon's `HOST:PORT` in a demo's "Ready. Object uri = rmi:…@HOST:PORT" line.
fn endpoint_in(ready: &str) -> String {
    ready.rsplit('@').next().unwrap().trim().to_owned()
}

#[test]
fn rmi_top_prints_each_method_s_rates_and_says_when_a_daemon_has_no_metrics() {
    let ns = NameServer::start();
    let (_greeter, endpoint) = greeter_with_metrics(&ns);
    let mut command = ns.client(binary("rmi"));
    command.args(["top", &endpoint, "--interval", "2", "--count", "1"]);
    let mut top = Running::start("rmi top", command);
    // Calls all through its two seconds, however long it takes to start.
    let calling = std::time::Instant::now();
    while calling.elapsed() < std::time::Duration::from_secs(3) {
        let called = rmi(
            &ns,
            &["call", "rminame:server", "welcome_message", r#"["x"]"#],
        );
        assert!(called.status.success(), "{}", stderr(&called));
    }
    let status = top.wait_for_exit(rmi_tests::PATIENCE);
    assert!(status.success());
    let printed = top.printed_so_far().join("\n");
    assert!(
        printed.contains(&format!("rmi top {endpoint}")),
        "{printed}"
    );
    let row = printed
        .lines()
        .find(|l| l.starts_with("Greeter") && l.contains("welcome_message"))
        .unwrap_or_else(|| panic!("no row for welcome_message: {printed}"));
    let calls_per_second: f64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(calls_per_second > 0.0, "{row}");

    let mut rosetta = Running::start("rosetta_server", ns.client(example("rosetta_server")));
    let handler = rosetta.expect_line("Ready. handler = ");
    let output = rmi(&ns, &["top", &endpoint_in(&handler), "--count", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not serve its metrics: start it with RMI_METRICS"),
        "{}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs tmux: apt-get install tmux"]
fn rmi_top_refreshes_in_a_terminal() {
    let ns = NameServer::start();
    let (_greeter, endpoint) = greeter_with_metrics(&ns);
    // A tmux server of the test's own, with a terminal of 120 columns.
    let socket = format!("rmi-top-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let mut command = rmi_tests::system_tool("tmux");
        command.args(["-L", &socket]).args(args);
        run(&mut command, "")
    };
    let top = format!(
        "{} top {endpoint} --interval 0.5",
        rmi_tests::binary_path("rmi").display()
    );
    let started = tmux(&["new-session", "-d", "-x", "120", "-y", "20", &top]);
    assert!(started.status.success(), "{}", stderr(&started));
    let deadline = std::time::Instant::now() + rmi_tests::PATIENCE;
    let mut frames = Vec::new();
    let screen = loop {
        let called = rmi(
            &ns,
            &["call", "rminame:server", "welcome_message", r#"["x"]"#],
        );
        assert!(called.status.success(), "{}", stderr(&called));
        let screen = stdout(&tmux(&["capture-pane", "-p"]));
        let busy = screen
            .lines()
            .find(|l| l.starts_with("Greeter") && l.contains("welcome_message"))
            .and_then(|row| row.split_whitespace().nth(2)?.parse::<f64>().ok())
            .is_some_and(|calls| calls > 0.0);
        frames.push(screen.clone());
        if busy {
            break screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rmi top showed no calls: {frames:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = tmux(&["kill-server"]);
    // Each refresh replaced the last: one header on the screen.
    assert_eq!(screen.matches("rmi top ").count(), 1, "{screen}");
    assert!(
        screen.contains("calls/s") && screen.contains("p99"),
        "{screen}"
    );
}
