//! One chain call is one trace: the client's span and the spans of all three servers carry its
//! trace id, and each span's parent is the span of the call that caused it, as the programs
//! log them with `RUST_LOG=rmi=debug`, and as they export them over OTLP (`otel` feature).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmi_tests::{example, run, stderr, stdout, NameServer, Running, PATIENCE};
use serde_json::Value;

/// One span's end as a program logged it: the innermost span of a `called` or `served` line.
#[derive(Debug, Clone)]
struct Span {
    kind: String,
    fields: HashMap<String, String>,
}

impl Span {
    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }
}

/// The spans in `log` that ended (a `called` or `served` event), innermost span of each line.
fn spans(log: &[String]) -> Vec<Span> {
    log.iter()
        .filter(|line| line.contains(": called") || line.contains(": served"))
        .filter_map(|line| innermost(line))
        .collect()
}

fn innermost(line: &str) -> Option<Span> {
    let start = line.rfind("rmi.call{").max(line.rfind("rmi.serve{"))?;
    let rest = &line[start..];
    let open = rest.find('{')?;
    let close = rest.find('}')?;
    let fields = rest[open + 1..close]
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect();
    let mut fields: HashMap<String, String> = fields;
    let outcome = rest.rsplit("outcome=").next()?;
    let outcome = outcome.split_whitespace().next()?.trim_matches('"');
    fields.insert("outcome".into(), outcome.to_owned());
    Some(Span {
        kind: rest[..open].to_owned(),
        fields,
    })
}

/// The spans `server` has logged once it has logged `serves` ends of serving `trace`.
fn ended_spans(server: &mut Running, trace: &str, serves: usize) -> Vec<Span> {
    for _ in 0..10 {
        let ended = spans(server.printed_so_far());
        let served = ended
            .iter()
            .filter(|s| s.kind == "rmi.serve" && s.get("trace_id") == trace)
            .count();
        if served >= serves {
            return ended;
        }
        server.expect_line(": served");
    }
    panic!("the server did not log {serves} served calls of trace {trace}")
}

fn of_method<'a>(spans: &'a [Span], kind: &str, method: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.kind == kind && s.get("method") == method)
        .collect()
}

/// Starts the chain's three servers with `env`, their logs captured.
fn start_ring(ns: &NameServer, env: &[(&str, &str)]) -> Vec<Running> {
    (1..=3)
        .map(|n| {
            let (this, next) = (n.to_string(), (n % 3 + 1).to_string());
            let mut command = ns.client(example("chain_server"));
            command.args([&this, &next]).envs(env.iter().copied());
            command.env("OTEL_SERVICE_NAME", format!("chain_server_{this}"));
            let mut server = Running::start_with_log(&format!("chain_server {this}"), command);
            server.expect_line(&format!("server_{this} started"));
            server
        })
        .collect()
}

/// Runs `chain_client` with `env`: its log.
fn run_client(ns: &NameServer, env: &[(&str, &str)]) -> Vec<String> {
    let mut client = ns.client(example("chain_client"));
    client.envs(env.iter().copied());
    let output = run(&mut client, "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("complete at 1"),
        "{}",
        stdout(&output)
    );
    stderr(&output).lines().map(str::to_owned).collect()
}

/// The client's `process` span: the trace's first.
fn root_of(client: &[Span]) -> &Span {
    let roots = of_method(client, "rmi.call", "process");
    assert_eq!(roots.len(), 1, "the client's spans: {client:#?}");
    let root = roots[0];
    assert_eq!(root.get("trace_id").len(), 32, "{root:?}");
    assert_eq!(
        root.get("parent_id"),
        "",
        "the client's call begins the trace: {root:?}"
    );
    root
}

/// Checks that `servers`' spans of `process` (server 1, 2, 3) make one trace with `root`, each
/// the child of the span that caused it: the client → 1 → 2 → 3 → 1. The serving spans.
fn check_chain<'a>(root: &Span, servers: &'a [Vec<Span>]) -> Vec<&'a Span> {
    let trace = root.get("trace_id");
    let in_trace = |n: usize, kind: &str| -> Vec<&Span> {
        of_method(&servers[n], kind, "process")
            .into_iter()
            .filter(|s| s.get("trace_id") == trace)
            .collect()
    };
    let first = in_trace(0, "rmi.serve");
    assert_eq!(
        first.len(),
        2,
        "server 1 serves the call and its return: {:#?}",
        servers[0]
    );
    let (at_1, back_at_1) = if first[0].get("parent_id") == root.get("span_id") {
        (first[0], first[1])
    } else {
        (first[1], first[0])
    };
    assert_eq!(at_1.get("parent_id"), root.get("span_id"), "{first:#?}");
    // The one span of `kind` server `n` logged, a child of `caller`.
    let child_of = |caller: &Span, n: usize, kind: &str| -> &'a Span {
        let spans = in_trace(n, kind);
        assert_eq!(spans.len(), 1, "server {} {kind}: {:#?}", n + 1, servers[n]);
        let parent = spans[0].get("parent_id");
        assert_eq!(parent, caller.get("span_id"), "server {} {kind}", n + 1);
        spans[0]
    };
    let mut caller = at_1;
    let mut serving = vec![at_1];
    for n in 0..servers.len() {
        if n > 0 {
            caller = child_of(caller, n, "rmi.serve");
            serving.push(caller);
        }
        caller = child_of(caller, n, "rmi.call");
    }
    assert_eq!(back_at_1.get("parent_id"), caller.get("span_id"));
    serving.push(back_at_1);
    let mut ids: Vec<&str> = servers
        .iter()
        .flatten()
        .filter(|s| s.get("trace_id") == trace)
        .map(|s| s.get("span_id"))
        .collect();
    ids.push(root.get("span_id"));
    let spans = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), spans, "every span id is distinct: {ids:?}");
    serving
}

#[test]
fn a_chain_call_is_one_trace_across_the_client_and_every_server() {
    let ns = NameServer::start();
    let env = [("RUST_LOG", "rmi=debug"), ("NO_COLOR", "1")];
    let mut servers = start_ring(&ns, &env);
    let client = spans(&run_client(&ns, &env));
    let root = root_of(&client);
    assert_eq!(root.get("outcome"), "ok");
    // Server 1 serves the call and its return; 2 and 3 serve it once.
    let logs: Vec<Vec<Span>> = servers
        .iter_mut()
        .zip([2, 1, 1])
        .map(|(server, serves)| ended_spans(server, root.get("trace_id"), serves))
        .collect();
    // Each serving span names its object, its peer and its outcome.
    for span in check_chain(root, &logs) {
        assert!(span.get("object").starts_with("rmi:obj_"), "{span:?}");
        assert!(span.get("peer").starts_with("127."), "{span:?}");
        assert_eq!(span.get("outcome"), "ok", "{span:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "otel"),
    ignore = "needs the otel feature: cargo test -p rmi-tests --features otel --test traces"
)]
fn a_chain_call_is_one_trace_in_the_spans_exported_over_otlp() {
    if !cfg!(feature = "otel") {
        panic!(
            "the programs export spans only when built with their otel feature: \
             cargo test -p rmi-tests --features otel --test traces"
        );
    }
    let collector = Collector::start();
    let endpoint = collector.url.clone();
    let ns = NameServer::start();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let _servers = start_ring(&ns, &env);
    run_client(&ns, &env);

    // The spans arrive in batches, a tenth of a second apart: wait for the whole chain.
    let deadline = Instant::now() + PATIENCE;
    let (client, servers) = loop {
        let by_service = collector.spans_by_service();
        let of = |service: &str| by_service.get(service).cloned().unwrap_or_default();
        let client = of("chain_client");
        let servers: Vec<Vec<Span>> = (1..=3).map(|n| of(&format!("chain_server_{n}"))).collect();
        let served = |n: usize| servers[n].iter().filter(|s| s.kind == "rmi.serve").count();
        let whole = !client.is_empty() && served(0) >= 2 && served(1) >= 1 && served(2) >= 1;
        if whole || Instant::now() > deadline {
            break (client, servers);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let root = root_of(&client);
    check_chain(root, &servers);
}

/// An OTLP/HTTP collector that keeps what it is sent as JSON (`http/json`).
struct Collector {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || answer_exports(stream, &kept));
            }
        });
        Collector { url, received }
    }

    /// The spans received so far, by the service that sent them.
    fn spans_by_service(&self) -> HashMap<String, Vec<Span>> {
        let mut by_service: HashMap<String, Vec<Span>> = HashMap::new();
        for export in self.received.lock().unwrap().iter() {
            for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                let service = attributes(&resource["resource"]["attributes"])
                    .remove("service.name")
                    .unwrap_or_default();
                let spans = resource["scopeSpans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|scope| scope["spans"].as_array().into_iter().flatten())
                    .map(otlp_span);
                by_service.entry(service).or_default().extend(spans);
            }
        }
        by_service
    }
}

/// Reads OTLP export requests from `stream` (HTTP/1.1, with Content-Length) into `kept`, and
/// answers each with an empty success.
fn answer_exports(stream: TcpStream, kept: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("a socket"));
    let mut writer = stream;
    for _ in 0..1000 {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(export) = serde_json::from_slice(&body) {
            kept.lock().unwrap().push(export);
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// OTLP's key–value attributes as strings.
fn attributes(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|attribute| {
            let value = &attribute["value"];
            let text = value["stringValue"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| value.as_object()?.values().next().map(|v| v.to_string()))?;
            Some((attribute["key"].as_str()?.to_owned(), text))
        })
        .collect()
}

/// A span as OTLP's JSON gives it, with the fields the logged ones have.
fn otlp_span(span: &Value) -> Span {
    let mut fields = attributes(&span["attributes"]);
    for (field, key) in [
        ("trace_id", "traceId"),
        ("span_id", "spanId"),
        ("parent_id", "parentSpanId"),
    ] {
        let id = span[key].as_str().unwrap_or_default().to_ascii_lowercase();
        fields.insert(field.to_owned(), id);
    }
    Span {
        kind: span["name"].as_str().unwrap_or_default().to_owned(),
        fields,
    }
}
