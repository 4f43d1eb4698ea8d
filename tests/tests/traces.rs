//! One chain call is one trace: the client's span and the spans of all three servers carry its
//! trace id, and each span's parent is the span of the call that caused it, as the programs
//! log them with `RUST_LOG=rmi=debug`.

use std::collections::HashMap;

use rmi_tests::{example, run, stderr, stdout, NameServer, Running};

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
    let outcome = rest.split("outcome=").nth(1)?;
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

#[test]
fn a_chain_call_is_one_trace_across_the_client_and_every_server() {
    let ns = NameServer::start();
    let mut servers: Vec<Running> = (1..=3)
        .map(|n| {
            let (this, next) = (n.to_string(), (n % 3 + 1).to_string());
            let mut command = ns.client(example("chain_server"));
            command
                .args([&this, &next])
                .env("RUST_LOG", "rmi=debug")
                .env("NO_COLOR", "1");
            let mut server = Running::start_with_log(&format!("chain_server {this}"), command);
            server.expect_line(&format!("server_{this} started"));
            server
        })
        .collect();
    let mut client = ns.client(example("chain_client"));
    client.env("RUST_LOG", "rmi=debug").env("NO_COLOR", "1");
    let output = run(&mut client, "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("complete at 1"),
        "{}",
        stdout(&output)
    );

    let client_log: Vec<String> = stderr(&output).lines().map(str::to_owned).collect();
    let client_spans = spans(&client_log);
    let roots = of_method(&client_spans, "rmi.call", "process");
    assert_eq!(roots.len(), 1, "the client's log: {client_log:#?}");
    let root = roots[0];
    let trace = root.get("trace_id").to_owned();
    assert_eq!(trace.len(), 32, "{root:?}");
    assert_eq!(
        root.get("parent_id"),
        "",
        "the client's call begins the trace: {root:?}"
    );
    assert_eq!(root.get("outcome"), "ok");

    // Server 1 serves the call and its return; 2 and 3 serve it once.
    let logs: Vec<Vec<Span>> = servers
        .iter_mut()
        .zip([2, 1, 1])
        .map(|(server, serves)| ended_spans(server, &trace, serves))
        .collect();

    // Which span called each server, by server: the client (1), 1 (2), 2 (3), 3 (1 again).
    let serves = |n: usize| -> Vec<&Span> {
        of_method(&logs[n], "rmi.serve", "process")
            .into_iter()
            .filter(|s| s.get("trace_id") == trace)
            .collect()
    };
    let calls = |n: usize| -> Vec<&Span> {
        of_method(&logs[n], "rmi.call", "process")
            .into_iter()
            .filter(|s| s.get("trace_id") == trace)
            .collect()
    };
    let first = serves(0);
    assert_eq!(
        first.len(),
        2,
        "server 1 serves the call and its return: {:#?}",
        logs[0]
    );
    let (at_1, back_at_1) = if first[0].get("parent_id") == root.get("span_id") {
        (first[0], first[1])
    } else {
        (first[1], first[0])
    };
    assert_eq!(at_1.get("parent_id"), root.get("span_id"), "{first:#?}");
    let call_1 = calls(0);
    assert_eq!(call_1.len(), 1, "{:#?}", logs[0]);
    assert_eq!(call_1[0].get("parent_id"), at_1.get("span_id"));

    let at_2 = serves(1);
    assert_eq!(at_2.len(), 1, "{:#?}", logs[1]);
    assert_eq!(at_2[0].get("parent_id"), call_1[0].get("span_id"));
    let call_2 = calls(1);
    assert_eq!(call_2.len(), 1, "{:#?}", logs[1]);
    assert_eq!(call_2[0].get("parent_id"), at_2[0].get("span_id"));

    let at_3 = serves(2);
    assert_eq!(at_3.len(), 1, "{:#?}", logs[2]);
    assert_eq!(at_3[0].get("parent_id"), call_2[0].get("span_id"));
    let call_3 = calls(2);
    assert_eq!(call_3.len(), 1, "{:#?}", logs[2]);
    assert_eq!(call_3[0].get("parent_id"), at_3[0].get("span_id"));
    assert_eq!(back_at_1.get("parent_id"), call_3[0].get("span_id"));

    // Each serving span names its object, its peer and its outcome.
    for span in [at_1, back_at_1, at_2[0], at_3[0]] {
        assert!(span.get("object").starts_with("rmi:obj_"), "{span:?}");
        assert!(span.get("peer").starts_with("127."), "{span:?}");
        assert_eq!(span.get("outcome"), "ok", "{span:?}");
    }
    // Every span id is distinct.
    let mut ids: Vec<&str> = [root, at_1, back_at_1, call_1[0], at_2[0], call_2[0]]
        .into_iter()
        .chain([at_3[0], call_3[0]])
        .map(|s| s.get("span_id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "{ids:?}");
}
