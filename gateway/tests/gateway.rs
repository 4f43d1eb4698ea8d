//! `rmi-gateway` across processes, driven by clients this project did not write: Python's
//! `xmlrpc.client` (the XML-RPC client of Rosetta Code's "Distributed programming" in Python), reqwest, curl, and headless Chromium through
//! WebDriver. Every server listens on a free loopback port and every client is pointed at the
//! test's own name server.
//!
//! Tests that need a tool beyond the Rust toolchain and python3 are `#[ignore = "needs …"]`;
//! run with `--include-ignored` (as `.ci/run` does), they fail, naming the package, when the
//! tool is missing.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rmi_tests::{
    binary, example, run, stderr, stdout, temp_dir, NameServer, Running, TempDir, PATIENCE,
};
use serde_json::{json, Value};

/// The names the test gateways expose: the demos' objects, and `ghost`, which nobody registers.
const EXPOSE: &str = "server|string|math|handler|feed|ghost";

/// A name server, the demo servers, a name registered outside `--expose` (`hidden`), and a
/// gateway exposing [`EXPOSE`].
struct Setup {
    gateway: Gateway,
    _ns: NameServer,
    _servers: Vec<Running>,
}

struct Gateway {
    process: Running,
    /// `http://127.0.0.1:PORT`, as the gateway printed it.
    url: String,
}

impl Setup {
    fn start(gateway_args: &[&str]) -> Setup {
        let ns = NameServer::start();
        let mut greeter = Running::start("greeter_server", ns.client(example("greeter_server")));
        greeter.expect_line("Ready. Object uri = ");
        let mut rosetta = Running::start("rosetta_server", ns.client(example("rosetta_server")));
        let handler = rosetta.expect_line("Ready. handler = ");
        let handler = handler.trim_start_matches("Ready. handler = ").trim();
        let mut feed = Running::start("feed_server", ns.client(example("feed_server")));
        feed.expect_line("Feed ready");
        let registered = ns.nsc(&["register", "hidden", handler]);
        assert!(registered.status.success(), "{}", stderr(&registered));
        let mut args = vec!["--expose", EXPOSE];
        args.extend_from_slice(gateway_args);
        let gateway = start_gateway(&ns, &args);
        Setup {
            gateway,
            _ns: ns,
            _servers: vec![greeter, rosetta, feed],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }
}

/// Starts `rmi-gateway --listen 127.0.0.1:0 ARGS` against `ns` and reads the address it
/// printed.
fn start_gateway(ns: &NameServer, args: &[&str]) -> Gateway {
    let mut command = ns.client(binary("rmi-gateway"));
    command.args(["--listen", "127.0.0.1:0"]).args(args);
    let mut process = Running::start("rmi-gateway", command);
    let line = process.expect_line("Gateway listening on http://127.0.0.1:");
    let url = line
        .trim()
        .trim_start_matches("Gateway listening on ")
        .to_owned();
    Gateway { process, url }
}

/// A system program such as `curl`; the test fails, naming its Debian package, without it.
fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this test needs {name}: apt-get install {package} (.ci/run installs it)"
    );
    Command::new(name)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// `POST url` with `body`: the status and the body as JSON.
fn post(url: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let response = http().post(url).body(body).send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {url} answered {status} with non-JSON {text:?}: {e}"));
    (status, value)
}

/// Asserts an error answer: its status, its kind, and a message that contains `says`.
fn assert_error(answer: (u16, Value), status: u16, kind: &str, says: &str) {
    let (got, body) = answer;
    assert_eq!((got, body["kind"].as_str()), (status, Some(kind)), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} does not say {says:?}");
}

#[test]
fn the_rosetta_xmlrpc_client_calls_the_rosetta_handler_through_the_gateway() {
    let setup = Setup::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/xmlrpc_client.py");
    let output = run(
        tool("python3", "python3")
            .arg(script)
            .arg(setup.url("/RPC2/handler")),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).lines().collect::<Vec<_>>(),
        [
            "Server supports these functions: div echo foo_function system.listMethods system.methodHelp system.methodSignature system.multicall",
            "Server responded: We sent this data to server",
            "Server says: 8 / 4 is: 2",
            "Server says: foo_function returned True",
        ]
    );
}

/// Rosetta Code's "Distributed programming", its HTTP variant: Python's `http.client` GETs
/// the page; a path the gateway does not have is a 404 with a JSON reason.
#[test]
fn the_rosetta_http_client_gets_the_page() {
    let setup = Setup::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/http_client.py");
    let port = setup.gateway.url.rsplit(':').next().unwrap().to_owned();
    let get = |path: &str| {
        let output = run(
            tool("python3", "python3").args([script, "127.0.0.1", &port, path]),
            "",
        );
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let page = get("/");
    assert!(
        page.starts_with("Server Status: 200\nServer Message: <!doctype html>"),
        "{page}"
    );
    assert!(page.contains("<title>rmi gateway</title>"), "{page}");
    let missing = get("/somefile");
    assert!(
        missing.starts_with("Server Status: 404\nServer Message: {\"kind\":\"not_found\""),
        "{missing}"
    );
}

/// Python's `xmlrpc.client` at `/RPC2`: `object.method` names, introspection, faults with
/// their codes, a stream gathered into an array, and the gateway serving on after each fault.
#[test]
fn xmlrpc_at_rpc2_lists_describes_calls_and_faults() {
    let setup = Setup::start(&[]);
    let script = r#"
import sys, xmlrpc.client
rpc = xmlrpc.client.ServerProxy(sys.argv[1])
methods = rpc.system.listMethods()
assert "math.div" in methods and "handler.echo" in methods and "string.make_upper" in methods, methods
assert "server.welcome_message" in methods and "system.methodHelp" in methods, methods
assert not any(m.startswith("hidden.") for m in methods), methods
assert rpc.system.methodSignature("math.div") == [["int", "int", "int"]], rpc.system.methodSignature("math.div")
assert rpc.system.methodSignature("handler.foo_function") == [["boolean"]]
help = rpc.system.methodHelp("math.div")
assert help == "`a / b`, or why not.\n\nfn div(a: i64, b: i64) -> Result<i64, MathError>", help
assert rpc.system.methodHelp("system.listMethods")
assert rpc.math.div(9, 3) == 3
assert rpc.math.div(2**31 - 1, -1) == -(2**31 - 1)
def fault(call, code, says):
    try:
        call()
    except xmlrpc.client.Fault as f:
        assert f.faultCode == code and says in f.faultString, (f.faultCode, f.faultString)
    else:
        raise AssertionError("no fault")
fault(lambda: rpc.math.div(1, 0), -32500, '{"DivisionByZero":{"dividend":1}}')
fault(lambda: rpc.math.nope(), -32601, "has no method 'nope'")
fault(lambda: rpc.hidden.echo("x"), -32601, "not exposed")
fault(lambda: rpc.ghost.echo("x"), -32601, "not registered")
fault(lambda: rpc.math.div("eight", 4), -32602, "a: i64")
fault(lambda: rpc.math.div(8), -32602, "takes 2 arguments")
fault(lambda: rpc.nodot(), -32601, "OBJECT.METHOD")
fault(lambda: rpc.system.methodHelp(), -32602, "one string")
multi = xmlrpc.client.MultiCall(rpc)
multi.math.div(8, 4)
multi.math.div(1, 0)
multi.string.make_upper("a")
multi.system.multicall([])
results = multi()
assert results[0] == 2 and results[2] == "A", list(results)
fault(lambda: results[1], -32500, "DivisionByZero")
fault(lambda: results[3], -32602, "cannot be nested")
lines = rpc.feed.lines(3, 0, 0)
assert [line["n"] for line in lines] == [1, 2, 3], lines
assert rpc.server.welcome_message("Ruvika") == "Hi welcome Ruvika"
assert rpc.string.make_upper("ok <&> é") == "OK <&> É"
print("all good")
"#;
    let output = run(
        tool("python3", "python3")
            .args(["-c", script])
            .arg(setup.url("/RPC2")),
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "all good\n");
}

#[test]
fn xmlrpc_requests_that_are_not_calls_get_faults() {
    let setup = Setup::start(&[]);
    let send = |body: &str| {
        let response = http()
            .post(setup.url("/RPC2"))
            .body(body.to_owned())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "faults are answers");
        response.text().unwrap()
    };
    let fault_code = |xml: &str| {
        let at = xml.find("<int>").expect("a fault code") + 5;
        xml[at..xml[at..].find('<').unwrap() + at].to_owned()
    };
    assert_eq!(fault_code(&send("not xml <")), "-32700");
    assert_eq!(fault_code(&send("<methodResponse/>")), "-32600");
    let call = "<methodCall><methodName>math.div</methodName><params>\
                <param><value><int>8</int></value></param>\
                <param><value><int>4</int></value></param></params></methodCall>";
    assert!(send(call).contains("<value><int>2</int></value>"));
}

/// JSON over HTTP with reqwest: a call, a listing, and each error with its status and kind,
/// after which the gateway still serves.
#[test]
fn json_calls_and_their_errors() {
    let setup = Setup::start(&["--max-body", "1024"]);
    let call = |path: &str| setup.url(&format!("/call/{path}"));
    assert_eq!(
        post(&call("server/welcome_message"), r#"["Ruvika"]"#),
        (200, json!("Hi welcome Ruvika"))
    );
    assert_eq!(post(&call("math/div"), "[8, 4]"), (200, json!(2)));
    assert_eq!(post(&call("handler/foo_function"), ""), (200, json!(true)));

    let objects: Value = http()
        .get(setup.url("/objects"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["feed", "handler", "math", "server", "string"]);
    let math = &objects[2];
    assert_eq!(math["trait"], "Math");
    assert_eq!(
        math["methods"][0],
        json!({
            "name": "div",
            "params": [{"name": "a", "type": "i64"}, {"name": "b", "type": "i64"}],
            "result": "Result<i64, MathError>",
            "signature": "fn div(a: i64, b: i64) -> Result<i64, MathError>",
            "doc": "`a / b`, or why not.",
            "stream": false,
            "oneway": false,
        })
    );
    assert_eq!(objects[0]["methods"][0]["stream"], true);

    // Each one a clear error; the gateway serves the next request as if nothing happened.
    let refused = [
        ("math/div", "[8, 4", 400, "bad_request", "not JSON"),
        (
            "math/div",
            r#"{"a": 8}"#,
            400,
            "bad_request",
            "an object, not an array",
        ),
        ("math/div", r#"["8", 4]"#, 400, "bad_arguments", "a: i64"),
        ("math/div", "[8]", 400, "bad_arguments", "takes 2 arguments"),
        ("math/nope", "[]", 404, "unknown_method", "it has: div"),
        (
            "ghost/echo",
            "[]",
            404,
            "unknown_name",
            "'ghost' is not registered",
        ),
        ("hidden/echo", r#"["x"]"#, 403, "not_exposed", "--expose"),
        ("nobody/echo", r#"["x"]"#, 403, "not_exposed", "--expose"),
    ];
    for (path, body, status, kind, says) in refused {
        assert_error(post(&call(path), body), status, kind, says);
    }
    let big = format!("[\"{}\"]", "x".repeat(2000));
    assert_error(
        post(&call("server/welcome_message"), big),
        413,
        "too_large",
        "1024 bytes",
    );
    let (status, body) = post(&call("math/div"), "[1, 0]");
    assert_eq!(
        (status, &body["kind"]),
        (422, &json!("method_error")),
        "{body}"
    );
    assert_eq!(body["error"], json!({"DivisionByZero": {"dividend": 1}}));
    let (status, body) = post(&setup.url("/nowhere"), "");
    assert_eq!((status, &body["kind"]), (404, &json!("not_found")));
    let wrong_verb = http().get(call("math/div")).send().unwrap();
    assert_eq!(wrong_verb.status().as_u16(), 405);

    // A page of another origin cannot make a visitor's browser call the gateway; its own can.
    let from = |origin: &str| {
        let response = http()
            .post(call("server/welcome_message"))
            .header("Origin", origin)
            .body(r#"["Ruvika"]"#)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    assert_error(
        from("http://evil.example"),
        403,
        "cross_origin",
        "other origins",
    );
    assert_error(from("null"), 403, "cross_origin", "other origins");
    assert_eq!(from(&setup.gateway.url), (200, json!("Hi welcome Ruvika")));
    // A site whose name resolves to the gateway's address (DNS rebinding) is refused too.
    let port = setup.gateway.url.rsplit(':').next().unwrap().to_owned();
    let rebound = http()
        .post(call("server/welcome_message"))
        .header("Host", format!("evil.example:{port}"))
        .body(r#"["Ruvika"]"#)
        .send()
        .unwrap();
    let status = rebound.status().as_u16();
    let answer = (status, rebound.json::<Value>().unwrap());
    assert_error(answer, 403, "unknown_host", "--allow-host evil.example");

    // After all that, it serves as before.
    assert_eq!(
        post(&call("string/make_upper"), r#"["ok"]"#),
        (200, json!("OK"))
    );
    assert!(setup.gateway.process.pid() > 0);
}

#[test]
fn a_bearer_token_guards_everything_but_the_page() {
    let dir = temp_dir("gateway-token");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let setup = Setup::start(&["--token-file", token_file.to_str().unwrap()]);
    let url = setup.url("/call/server/welcome_message");
    let attempt = |header: Option<&str>| {
        let mut request = http().post(&url).body(r#"["Ruvika"]"#);
        if let Some(value) = header {
            request = request.header("Authorization", value);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers().get("www-authenticate").cloned();
        (status, challenge, response.json::<Value>().unwrap())
    };
    let (status, challenge, body) = attempt(None);
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
    assert_eq!(challenge.unwrap(), "Bearer");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    let (status, _, body) = attempt(Some("Bearer wrong"));
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
    let (status, _, body) = attempt(Some("Basic czNjcmV0LXRva2Vu"));
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = attempt(Some("Bearer s3cret-token"));
    assert_eq!((status, body), (200, json!("Hi welcome Ruvika")));
    // The scheme's case does not matter (RFC 7235).
    let (status, _, body) = attempt(Some("bearer s3cret-token"));
    assert_eq!((status, body), (200, json!("Hi welcome Ruvika")));
    let xmlrpc = http()
        .post(setup.url("/RPC2"))
        .body("<methodCall/>")
        .send()
        .unwrap();
    assert_eq!(xmlrpc.status().as_u16(), 401);
    let objects = http().get(setup.url("/objects")).send().unwrap();
    assert_eq!(objects.status().as_u16(), 401);
    let page = http().get(setup.url("/")).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    // No other site may frame the page, and it runs only its own code.
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

/// A TCP connection to the gateway of `setup` from the loopback address `source`, so that it
/// counts against another address than the test's own client.
fn raw_from(source: &str, setup: &Setup) -> std::net::TcpStream {
    let to: std::net::SocketAddr = setup
        .gateway
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// What the gateway writes on `stream` until it closes it (or `PATIENCE` passes), and how
/// long that took.
fn until_closed(stream: &mut std::net::TcpStream) -> (String, Duration) {
    use std::io::Read;
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn slow_idle_and_crowding_clients_are_let_go_and_a_good_client_is_served() {
    use std::io::Write;
    let setup = Setup::start(&[
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--max-connections-per-address",
        "8",
        "--max-multicall",
        "4",
    ]);
    let good = setup.url("/call/server/welcome_message");
    let host = setup.gateway.url.trim_start_matches("http://").to_owned();

    // A kept-alive connection that sends no next request, one that never finishes its
    // headers, and one that stalls in its body: closed after their timeouts (1 s here).
    let mut idle = raw_from("127.0.0.2", &setup);
    write!(idle, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut half = raw_from("127.0.0.2", &setup);
    write!(
        half,
        "POST /call/server/welcome_message HTTP/1.1\r\nHost: {host}\r\n"
    )
    .unwrap();
    let mut stalled = raw_from("127.0.0.2", &setup);
    write!(
        stalled,
        "POST /call/server/welcome_message HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n[\"Ru"
    )
    .unwrap();
    let (page, idle_for) = until_closed(&mut idle);
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.80}");
    assert!(idle_for < Duration::from_secs(4), "idle for {idle_for:?}");
    let (nothing, half_for) = until_closed(&mut half);
    assert!(
        half_for < Duration::from_secs(4),
        "half-sent for {half_for:?}: {nothing}"
    );
    let (answer, stalled_for) = until_closed(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(
        stalled_for < Duration::from_secs(4),
        "stalled for {stalled_for:?}"
    );

    // A crowd from one address: past its 8 connections, the next are told 503 and closed,
    // while a client from another address is served throughout. The crowd comes from an
    // address of its own: the gateway forgets a closed connection just after closing it, so
    // the connections above could still be counted for a moment.
    let crowd: Vec<_> = (0..8).map(|_| raw_from("127.0.0.3", &setup)).collect();
    let mut over = raw_from("127.0.0.3", &setup);
    let (busy, _) = until_closed(&mut over);
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(busy.contains("retry"), "{busy}");
    for _ in 0..5 {
        assert_eq!(
            post(&good, r#"["Ruvika"]"#),
            (200, json!("Hi welcome Ruvika"))
        );
    }
    drop(crowd);

    // Content-Length and chunked together could be read two ways (request smuggling): read
    // as chunked (RFC 9112, 6.1), answered, and the connection closed, so that nothing rides
    // behind it; the second request sent behind it is never answered.
    let mut ambiguous = raw_from("127.0.0.1", &setup);
    write!(
        ambiguous,
        "POST /call/server/welcome_message HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\na\r\n[\"Ruvika\"]\r\n0\r\n\r\nGET /objects HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let (answer, took) = until_closed(&mut ambiguous);
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(answer.contains("Hi welcome Ruvika"), "{answer}");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");

    // One system.multicall carries at most --max-multicall calls.
    let call = "<value><struct><member><name>methodName</name><value>server.welcome_message</value></member><member><name>params</name><value><array><data><value>Ruvika</value></data></array></value></member></struct></value>";
    let multicall = |count: usize| {
        format!(
            "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>{}</data></array></value></param></params></methodCall>",
            call.repeat(count)
        )
    };
    let answer = http()
        .post(setup.url("/RPC2"))
        .body(multicall(4))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(answer.matches("Hi welcome Ruvika").count(), 4, "{answer}");
    let answer = http()
        .post(setup.url("/RPC2"))
        .body(multicall(5))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(answer.contains("at most 4"), "{answer}");
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux's /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in KiB")
}

#[test]
fn many_big_bodies_at_once_leave_the_gateway_bounded() {
    let setup = Setup::start(&["--max-body", "1100000"]);
    let pid = setup.gateway.process.pid();
    let url = setup.url("/call/server/welcome_message");
    // A megabyte of empty arrays: a third of a million JSON values once decoded.
    let body = format!("[{}[]]", "[],".repeat(349_000));
    let before = resident_kib(pid);
    // The highest resident memory seen, every 20 ms, while the bodies come.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            // Bounded: at most 100 s of looks.
            for _ in 0..5000 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                peak = peak.max(resident_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    for _round in 0..3 {
        let senders: Vec<_> = (0..64)
            .map(|_| {
                let (url, body) = (url.clone(), body.clone());
                std::thread::spawn(move || {
                    http()
                        .post(&url)
                        .body(body)
                        .send()
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        for sender in senders {
            let status = sender.join().unwrap().unwrap();
            // Refused: not the greeter's one string, or the gateway busy.
            assert!(matches!(status, 400 | 503), "{status}");
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("64 bodies of 1 MiB at once, 3 times: the gateway grew {grown_mib} MiB at most");
    assert!(grown_mib < 160, "the gateway grew {grown_mib} MiB");
    assert_eq!(
        post(&url, r#"["Ruvika"]"#),
        (200, json!("Hi welcome Ruvika"))
    );
}

#[test]
fn internal_addresses_stay_inside_unless_shown() {
    let setup = Setup::start(&[]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("rmi:obj_1@127.0.0.1:{dead}");
    let registered = setup._ns.nsc(&["register", "ghost", &gone]);
    assert!(registered.status.success(), "{}", stderr(&registered));
    let objects: Value = http()
        .get(setup.url("/objects"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = objects.to_string();
    assert!(!text.contains("rmi:obj"), "{text}");
    assert!(!text.contains(&format!(":{dead}")), "{text}");
    let (status, body) = post(&setup.url("/call/ghost/anything"), "[]");
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("'ghost'"), "{message}");
    assert!(
        !message.contains("rmi:obj") && !message.contains(&format!(":{dead}")),
        "{message}"
    );

    // Told to, it shows them.
    let shown = start_gateway(&setup._ns, &["--expose", EXPOSE, "--show-uris"]);
    let objects: Value = http()
        .get(format!("{}/objects", shown.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(objects.to_string().contains("rmi:obj"), "{objects}");
}

/// Polls the feed's `stats` through the gateway until no producer runs; returns how many
/// lines were made.
fn producers_stopped(setup: &Setup) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, stats) = post(&setup.url("/call/feed/stats"), "[]");
        assert_eq!(status, 200, "{stats}");
        if stats["producing"] == 0 {
            return stats["produced"].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the producer still runs 10 s after the HTTP client went away: {stats}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stream_arrives_as_ndjson_and_stops_its_producer_when_the_client_goes_away() {
    let setup = Setup::start(&[]);
    let lines = setup.url("/call/feed/lines");
    let response = http().post(&lines).body("[3, 4, 0]").send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        response.text().unwrap(),
        "{\"n\":1,\"text\":\"line 1\"}\n{\"n\":2,\"text\":\"line 2\"}\n{\"n\":3,\"text\":\"line 3\"}\n"
    );

    // A line every 20 ms, a million of them: each line arrives as it is made.
    let started = Instant::now();
    let response = http().post(&lines).body("[1000000, 0, 20]").send().unwrap();
    let mut reader = BufReader::new(response);
    for n in 1..=5 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let item: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(item["n"], n);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let (_, stats) = post(&setup.url("/call/feed/stats"), "[]");
    assert_eq!(stats["producing"], 1, "{stats}");
    drop(reader);
    let produced = producers_stopped(&setup);
    assert!(produced < 1000, "the producer made {produced} lines");
}

#[test]
fn the_gateway_explains_its_flags_and_refuses_bad_ones() {
    let help = run(binary("rmi-gateway").arg("--help"), "");
    assert!(help.status.success());
    for flag in [
        "--listen",
        "--expose",
        "--token-file",
        "--max-body",
        "--ns-host",
        "--key-file",
    ] {
        assert!(stdout(&help).contains(flag), "--help lacks {flag}");
    }
    let ns = NameServer::start();
    let bad = run(
        ns.client(binary("rmi-gateway"))
            .args(["--listen", "127.0.0.1:0", "--expose", "("]),
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("rmi-gateway: --expose: regex parse error"),
        "{}",
        stderr(&bad)
    );
    // Nothing exposed: every name is refused, and the listing is empty.
    let gateway = start_gateway(&ns, &[]);
    let objects: Value = http()
        .get(format!("{}/objects", gateway.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(objects, json!([]));
}

#[test]
fn with_the_rmi_key_the_gateway_reaches_daemons_that_ask_for_it() {
    let dir = temp_dir("gateway-key");
    let key = dir.path().join("key");
    std::fs::write(&key, "open sesame\n").unwrap();
    let key = key.to_str().unwrap();
    let ns = NameServer::start_with(&["--key-file", key]);
    let mut command = ns.client(example("greeter_server"));
    command.env("RMI_KEY_FILE", key);
    let mut greeter = Running::start("greeter_server", command);
    greeter.expect_line("Ready. Object uri = ");
    let gateway = start_gateway(&ns, &["--expose", "server", "--key-file", key]);
    assert_eq!(
        post(
            &format!("{}/call/server/welcome_message", gateway.url),
            r#"["Ruvika"]"#
        ),
        (200, json!("Hi welcome Ruvika"))
    );
    // Without the key, the gateway cannot reach the name server, and says so.
    let refused = run(
        ns.client(binary("rmi-gateway"))
            .args(["--listen", "127.0.0.1:0", "--expose", "server"]),
        "",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("rmi-gateway: cannot reach the name server"),
        "{}",
        stderr(&refused)
    );
}

#[test]
#[ignore = "needs curl: apt-get install curl"]
fn curl_calls_lists_streams_and_gets_errors() {
    let setup = Setup::start(&[]);
    let curl = |args: &[&str]| {
        let output = run(tool("curl", "curl").args(["-sS"]).args(args), "");
        assert!(
            output.status.success(),
            "curl {args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    };
    let url = |path: &str| setup.url(path);
    assert_eq!(
        curl(&["-d", r#"["Ruvika"]"#, &url("/call/server/welcome_message")]),
        "\"Hi welcome Ruvika\""
    );
    let objects: Value = serde_json::from_str(&curl(&[&url("/objects")])).unwrap();
    assert_eq!(objects[3]["name"], "server");
    assert_eq!(
        curl(&["-N", "-d", "[2, 0, 0]", &url("/call/feed/lines")]),
        "{\"n\":1,\"text\":\"line 1\"}\n{\"n\":2,\"text\":\"line 2\"}\n"
    );
    let with_status = ["-w", "\n%{http_code}", "-d"];
    let answer = curl(&[&with_status[..], &["[1, 0]", &url("/call/math/div")]].concat());
    assert!(answer.ends_with("\n422"), "{answer}");
    assert!(
        answer.contains(r#""error":{"DivisionByZero":{"dividend":1}}"#),
        "{answer}"
    );
    let answer = curl(&[&with_status[..], &["[8,", &url("/call/math/div")]].concat());
    assert!(
        answer.ends_with("\n400") && answer.contains("\"kind\":\"bad_request\""),
        "{answer}"
    );
    let answer = curl(&[&with_status[..], &["[]", &url("/call/hidden/echo")]].concat());
    assert!(
        answer.ends_with("\n403") && answer.contains("\"kind\":\"not_exposed\""),
        "{answer}"
    );
    // Rosetta Code's "Distributed programming", its HTTP variant: a plain GET of the page.
    let page = curl(&[&url("/")]);
    assert!(page.contains("<title>rmi gateway</title>"), "{page}");

    // curl killed halfway through a stream: the producer stops.
    let mut reader = Running::start("curl", {
        let mut command = tool("curl", "curl");
        command.args([
            "-sS",
            "-N",
            "-d",
            "[1000000, 0, 20]",
            &url("/call/feed/lines"),
        ]);
        command
    });
    reader.expect_line("{\"n\":3,");
    reader.kill_9();
    let produced = producers_stopped(&setup);
    assert!(produced < 1000, "the producer made {produced} lines");
    assert_eq!(
        curl(&["-d", r#"["still here"]"#, &url("/call/string/make_upper")]),
        "\"STILL HERE\""
    );
}

/// A WebDriver session on chromedriver, spoken to with plain HTTP and JSON.
struct WebDriver {
    _driver: Running,
    session: String,
    _profile: TempDir,
}

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl WebDriver {
    fn start() -> WebDriver {
        tool("chromium", "chromium chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut command = tool("chromedriver", "chromium-driver");
        command.arg(format!("--port={port}"));
        let mut driver = Running::start("chromedriver", command);
        driver.expect_line("started successfully");
        let profile = temp_dir("gateway-chromium");
        let mut webdriver = WebDriver {
            _driver: driver,
            session: format!("http://127.0.0.1:{port}/session"),
            _profile: profile,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1000,1750",
                format!("--user-data-dir={}", webdriver._profile.path().display()),
            ],
        }}}});
        let created = webdriver.send("POST", "", capabilities);
        let id = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        webdriver.session = format!("{}/{id}", webdriver.session);
        webdriver
    }

    /// Sends a WebDriver command; returns its `value`, failing on a WebDriver error.
    fn send(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => http().get(&url),
            "DELETE" => http().delete(&url),
            _ => http().post(&url).body(body.to_string()),
        };
        let answer: Value = request.send().unwrap().json().unwrap();
        let value = answer["value"].clone();
        assert!(value.get("error").is_none(), "{method} {path}: {value}");
        value
    }

    /// The element `css` selects, waiting (bounded) until the page has made it.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = format!("{}/element", self.session);
            let body = json!({"using": "css selector", "value": css});
            let answer: Value = http()
                .post(&url)
                .body(body.to_string())
                .send()
                .unwrap()
                .json()
                .unwrap();
            if let Some(id) = answer["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {answer}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl WebDriver {
    /// Types `args` into the page's form for `name`'s `method` and presses its Call button;
    /// returns the element where the form shows the answer.
    fn call_from_page(&self, name: &str, method: &str, args: &str) -> String {
        let form = format!(r#"form[data-name="{name}"][data-method="{method}"]"#);
        let input = self.find(&format!("{form} textarea"));
        self.send("POST", &format!("/element/{input}/clear"), json!({}));
        let typed = json!({ "text": args });
        self.send("POST", &format!("/element/{input}/value"), typed);
        let button = self.find(&format!("{form} button"));
        self.send("POST", &format!("/element/{button}/click"), json!({}));
        self.find(&format!("{form} pre.result"))
    }

    /// Saves what the browser shows as `file` in the tests' temporary folder (docs/ holds a
    /// copy of each).
    fn screenshot(&self, file: &str) {
        let png = self.send("GET", "/screenshot", json!(null));
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
    }

    /// Waits (bounded) until `element` shows `text`.
    fn wait_for_text(&self, element: &str, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let shown = self.send("GET", &format!("/element/{element}/text"), json!(null));
            if shown.as_str().unwrap_or_default().contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page shows {shown}, not {text:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = http().delete(&self.session).send();
    }
}

#[test]
#[ignore = "needs chromium: apt-get install chromium chromium-driver"]
fn chromium_calls_welcome_message_from_the_web_page() {
    let setup = Setup::start(&[]);
    let browser = WebDriver::start();
    browser.send("POST", "/url", json!({"url": setup.url("/")}));
    let greet = browser.call_from_page("server", "welcome_message", r#"["Ruvika"]"#);
    browser.wait_for_text(&greet, "Hi welcome Ruvika");
    let shown = browser.send("GET", &format!("/element/{greet}/text"), json!(null));
    assert_eq!(shown, "\"Hi welcome Ruvika\"");

    // A stream's items as they come, and a method's own error.
    let lines = browser.call_from_page("feed", "lines", "[3, 0, 100]");
    let div = browser.call_from_page("math", "div", "[1, 0]");
    browser.wait_for_text(&lines, "(end of stream: 3 items)");
    browser.wait_for_text(&div, "method_error: 'div' returned an error");
    browser.wait_for_text(&greet, "Hi welcome Ruvika");

    browser.screenshot("gateway-screenshot.png");
}

#[test]
fn a_request_s_traceparent_is_honoured_and_answered() {
    let ns = NameServer::start();
    let mut command = ns.client(example("greeter_server"));
    command.env("RUST_LOG", "rmi=debug").env("NO_COLOR", "1");
    let mut greeter = Running::start_with_log("greeter_server", command);
    greeter.expect_line("Ready. Object uri = ");
    let gateway = start_gateway(&ns, &["--expose", "server"]);
    let url = format!("{}/call/server/welcome_message", gateway.url);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let response = http()
        .post(&url)
        .header("traceparent", incoming)
        .body(r#"["Ruvika"]"#)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answered = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let answered = rmi::TraceContext::from_traceparent(&answered)
        .unwrap_or_else(|| panic!("not a traceparent: {answered:?}"));
    assert_eq!(answered.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_ne!(
        answered.span_id(),
        0x00f067aa0ba902b7,
        "the gateway's own span"
    );
    // The call the request made is served in the same trace, a child of the gateway's span
    // (the gateway does not log its own calls' spans: the request names the gateway's).
    let served = greeter.expect_line("method=welcome_message");
    assert!(
        served.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "{served}"
    );
    let parent = format!("parent_id={:016x}", answered.span_id());
    assert!(served.contains(&parent), "{served} names {parent}");

    // Without one, the request begins a trace, and is told which.
    let response = http().post(&url).body(r#"["Ruvika"]"#).send().unwrap();
    let answered = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let fresh = rmi::TraceContext::from_traceparent(&answered).unwrap();
    assert_ne!(fresh.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
    let served = greeter.expect_line("method=welcome_message");
    assert!(
        served.contains(&format!("trace_id={:032x}", fresh.trace_id())),
        "{served}"
    );
}

/// A name server, the greeter serving its metrics, the Rosetta objects not serving theirs,
/// and a gateway exposing `server` (the greeter) and `handler`.
fn live_setup() -> (NameServer, Vec<Running>, Gateway) {
    let ns = NameServer::start();
    let mut command = ns.client(example("greeter_server"));
    command.args(["--metrics", "127.0.0.1:0"]);
    let mut greeter = Running::start("greeter_server", command);
    greeter.expect_line("Ready. Object uri = ");
    let mut rosetta = Running::start("rosetta_server", ns.client(example("rosetta_server")));
    rosetta.expect_line("Ready. handler = ");
    let gateway = start_gateway(&ns, &["--expose", "server|handler"]);
    (ns, vec![greeter, rosetta], gateway)
}

/// `GET /live` until `done` says its answer is what the test waits for (bounded).
fn live_until(gateway: &Gateway, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let live: Value = http()
            .get(format!("{}/live", gateway.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if done(&live) {
            return live;
        }
        assert!(Instant::now() < deadline, "/live never showed it: {live}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_live_figures_show_each_method_s_calls_and_why_a_daemon_has_none() {
    let (_ns, _servers, gateway) = live_setup();
    let url = format!("{}/call/server/welcome_message", gateway.url);
    let calls = || {
        for _ in 0..20 {
            assert_eq!(post(&url, r#"["Ruvika"]"#).0, 200);
        }
    };
    calls();
    let method = |live: &Value| {
        let server = live["names"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == "server")?;
        server["methods"]
            .as_array()?
            .iter()
            .find(|m| m["method"] == "welcome_message")
            .cloned()
    };
    // The first reading only counts; the figures are the rates between readings.
    let live = live_until(&gateway, |live| {
        calls();
        method(live).is_some_and(|m| m["calls_per_second"].as_f64() > Some(0.0))
    });
    let welcome = method(&live).unwrap();
    assert_eq!(welcome["object"], "Greeter");
    assert!(welcome["calls"].as_u64() >= Some(20), "{welcome}");
    assert!(
        welcome["p99"]
            .as_f64()
            .is_some_and(|p99| p99 > 0.0 && p99 < 10.0),
        "{welcome}"
    );
    assert_eq!(welcome["errors_per_second"], 0.0);
    let history = welcome["history"]["calls_per_second"].as_array().unwrap();
    assert!(!history.is_empty(), "{welcome}");
    let handler = live["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "handler")
        .expect("the handler is listed");
    let missing = handler["missing"].as_str().unwrap_or_default();
    assert!(missing.contains("RMI_METRICS"), "{handler}");
    assert!(
        !live.to_string().contains("rmi:obj_"),
        "no internal address: {live}"
    );
}

#[test]
#[ignore = "needs chromium: apt-get install chromium chromium-driver"]
fn chromium_shows_the_live_panel_the_call_history_and_a_curl_command() {
    let (_ns, _servers, gateway) = live_setup();
    let browser = WebDriver::start();
    browser.send("POST", "/url", json!({"url": format!("{}/", gateway.url)}));
    for name in ["Ruvika", "Olga", "Ada"] {
        let greet = browser.call_from_page("server", "welcome_message", &format!(r#"["{name}"]"#));
        browser.wait_for_text(&greet, &format!("Hi welcome {name}"));
    }
    // Each call is in the form's history, newest first, with its status and time.
    let form = r#"form[data-name="server"][data-method="welcome_message"]"#;
    let history = browser.find(&format!("{form} ol.history"));
    browser.wait_for_text(&history, "200");
    let shown = browser.send("GET", &format!("/element/{history}/text"), json!(null));
    let shown = shown.as_str().unwrap_or_default();
    assert_eq!(shown.matches("welcome_message(").count(), 3, "{shown}");
    assert!(
        shown.find("Ada").unwrap() < shown.find("Ruvika").unwrap(),
        "{shown}"
    );
    // Copy as curl: the command, which a shell runs as the page did.
    let copy = browser.find(&format!("{form} ol.history li button"));
    browser.send("POST", &format!("/element/{copy}/click"), json!({}));
    let curl = browser.find(&format!("{form} ol.history li pre.curl"));
    browser.wait_for_text(&curl, "curl -X POST");
    let command = browser.send("GET", &format!("/element/{curl}/text"), json!(null));
    let command = command.as_str().unwrap().to_owned();
    assert!(
        command.contains("/call/server/welcome_message"),
        "{command}"
    );
    let output = run(Command::new("sh").args(["-c", &command]), "");
    assert_eq!(stdout(&output), "\"Hi welcome Ada\"", "{}", stderr(&output));

    // The live panel: a row for the method, with its calls a second, once read twice.
    let url = format!("{}/call/server/welcome_message", gateway.url);
    let row = r#"#live-rows tr[data-name="server"][data-method="welcome_message"]"#;
    let deadline = Instant::now() + PATIENCE;
    let row = loop {
        assert_eq!(post(&url, r#"["Ruvika"]"#).0, 200);
        let found = browser.send(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": row}),
        );
        if let Some(id) = found[0][ELEMENT].as_str() {
            let text = browser.send("GET", &format!("/element/{id}/text"), json!(null));
            if !text.as_str().unwrap_or_default().contains(" 0.0 ") {
                break id.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no live row with calls: {found}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let text = browser.send("GET", &format!("/element/{row}/text"), json!(null));
    assert!(text.as_str().unwrap().contains("welcome_message"), "{text}");
    let handler = browser.find(r#"#live-rows tr[data-name="handler"]"#);
    browser.wait_for_text(&handler, "RMI_METRICS");
    // A few more readings, for the plots.
    for _ in 0..3 {
        for _ in 0..10 {
            assert_eq!(post(&url, r#"["Ruvika"]"#).0, 200);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    browser.screenshot("gateway-live.png");

    // Search: only what matches stays shown.
    let search = browser.find("#search");
    browser.send(
        "POST",
        &format!("/element/{search}/value"),
        json!({"text": "welcome"}),
    );
    let hidden = browser.find(r#"section.object[data-name="handler"]"#);
    let displayed = browser.send("GET", &format!("/element/{hidden}/displayed"), json!(null));
    assert_eq!(displayed, json!(false));
}
