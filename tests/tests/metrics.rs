//! Metrics as an operator scrapes them: `--metrics ADDR` on `rmi-ns` and a demo server, the
//! greeter's calls counted by object, method and outcome, the name server's calls and its
//! store's latency; and a real Prometheus server that scrapes the greeter and counts its
//! calls through its query API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rmi_tests::{eventually, example, run, stderr, system_tool, temp_dir, NameServer, Running};

/// A free port on loopback, as an address to serve metrics at.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The answer to `GET path` at `addr` (its body, after the headers).
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map_or(answer.clone(), |(_, body)| body.to_owned())
}

/// The value of the series `series` (name and labels as the page writes them).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// A name server and the greeter, each serving its metrics; their metrics addresses.
fn greeter_with_metrics() -> (NameServer, Running, SocketAddr, SocketAddr) {
    let ns_metrics = free_addr();
    let ns = NameServer::start_with(&["--metrics", &ns_metrics.to_string()]);
    let greeter_metrics = free_addr();
    let mut command = ns.client(example("greeter_server"));
    command.args(["--metrics", &greeter_metrics.to_string()]);
    let mut server = Running::start("greeter_server", command);
    server.expect_line("Ready.");
    (ns, server, ns_metrics, greeter_metrics)
}

#[test]
fn a_demo_server_and_the_name_server_serve_their_metrics() {
    let (ns, _server, ns_metrics, greeter_metrics) = greeter_with_metrics();
    for _ in 0..2 {
        let greeted = run(ns.client(example("greeter_client")).arg("Ruvika"), "");
        assert!(greeted.status.success(), "{}", stderr(&greeted));
    }
    let page = get(greeter_metrics, "/metrics");
    assert_eq!(
        sample(
            &page,
            r#"rmi_calls_total{object="Greeter",method="welcome_message",outcome="ok"}"#
        ),
        Some(2.0),
        "{page}"
    );
    assert!(
        sample(&page, "rmi_connections_accepted_total") >= Some(2.0),
        "{page}"
    );

    // The name server: the greeter's registration and the clients' lookups, as calls, and
    // the store's latency.
    let page = get(ns_metrics, "/metrics");
    assert!(
        sample(
            &page,
            r#"rmi_calls_total{object="NameServer",method="lookup",outcome="ok"}"#
        ) >= Some(2.0),
        "{page}"
    );
    assert!(
        sample(&page, r#"rmi_ns_store_duration_seconds_count{op="get"}"#) >= Some(2.0),
        "{page}"
    );
}

/// The Prometheus server, for the test that needs it.
fn prometheus() -> std::process::Command {
    system_tool("prometheus")
}

#[test]
#[ignore = "needs prometheus: apt-get install prometheus"]
fn a_prometheus_server_counts_the_greeters_calls() {
    let (ns, _server, _ns_metrics, greeter_metrics) = greeter_with_metrics();
    for _ in 0..3 {
        let greeted = run(ns.client(example("greeter_client")).arg("Ruvika"), "");
        assert!(greeted.status.success(), "{}", stderr(&greeted));
    }
    let dir = temp_dir("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: greeter\n    static_configs:\n      - targets: ['{greeter_metrics}']\n"
        ),
    )
    .unwrap();
    let web = free_addr();
    let mut command = prometheus();
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"));
    let _prometheus = Running::start_with_log("prometheus", command);
    let query =
        "/api/v1/query?query=rmi_calls_total%7Bobject%3D%22Greeter%22%2Coutcome%3D%22ok%22%7D";
    let mut answer = String::new();
    let counted = eventually(Duration::from_secs(30), || {
        answer = std::panic::catch_unwind(|| get(web, query)).unwrap_or_default();
        answer.contains(r#""method":"welcome_message""#) && answer.contains(r#","3"]"#)
    });
    assert!(counted, "Prometheus did not count 3 calls: {answer}");

    // Every query of the Grafana dashboard in docs/ is one Prometheus runs. `rate` needs two
    // scrapes in its window: a few more seconds of them.
    std::thread::sleep(Duration::from_millis(2500));
    let dashboard = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    for target in panels.iter().flat_map(|p| p["targets"].as_array().unwrap()) {
        let expr = target["expr"]
            .as_str()
            .unwrap()
            .replace("$__rate_interval", "1m");
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = get(web, &format!("/api/v1/query?query={encoded}"));
        assert!(answer.contains(r#""status":"success""#), "{expr}: {answer}");
        // The greeter's calls and durations are there, so their queries name real series.
        if expr.contains("rmi_calls_total[") || expr.contains("rmi_call_duration_seconds_bucket") {
            assert!(
                answer.contains(r#""method":"welcome_message""#),
                "{expr}: {answer}"
            );
        }
    }
}
