//! Calls per second through the gateway (JSON and XML-RPC over HTTP/1.1 with keep-alive)
//! against direct rmi calls (a typed proxy, and a `DynamicProxy` with JSON), on the greeter's
//! `welcome_message`, one call at a time and 32 in flight. Everything runs in this process on
//! loopback: name server, daemon, gateway and clients.
//!
//! `cargo bench -p rmi-gateway --bench gateway` (`-- --quick` for a short smoke run).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmi_examples::greeter::{GreeterProxy, Server};
use rmi_gateway::{Config, Expose, Gateway};
use serde_json::json;

/// Runs `call` from `in_flight` tasks for `length`; returns calls per second.
async fn measure<F, Fut>(in_flight: usize, length: Duration, call: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    // Warm up: connections opened, caches filled.
    for _ in 0..in_flight.max(8) {
        call().await;
    }
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (call, done) = (call.clone(), done.clone());
            tokio::spawn(async move {
                while started.elapsed() < length {
                    call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a bench task does not panic");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let length = Duration::from_millis(if quick { 200 } else { 3000 });

    let (_ns_host, ns) = rmi_tests::in_process_name_server().await;
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register(Server).unwrap();
    daemon.spawn();
    ns.register("server".into(), uri.clone())
        .await
        .unwrap()
        .unwrap();

    let config = Config {
        expose: Expose::new(&["server".to_owned()]).unwrap(),
        ..Config::default()
    };
    let gateway = Gateway::new(ns, rmi::ClientConfig::new(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway.serve(listener, std::future::pending()));

    let typed = GreeterProxy::connect(&uri).await.unwrap();
    let dynamic = rmi::DynamicProxy::connect(&uri).await.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let json_url = format!("{base}/call/server/welcome_message");
    let xml_url = format!("{base}/RPC2/server");

    println!("{:<34} {:>9} {:>10}", "path", "in flight", "calls/s");
    for in_flight in [1, 32] {
        let proxy = typed.clone();
        let rate = measure(in_flight, length, move || {
            let proxy = proxy.clone();
            async move {
                let reply = proxy.welcome_message("Ruvika".into()).await.unwrap();
                assert_eq!(reply, "Hi welcome Ruvika");
            }
        })
        .await;
        report("rmi, typed proxy", in_flight, rate);

        let proxy = dynamic.clone();
        let rate = measure(in_flight, length, move || {
            let proxy = proxy.clone();
            async move {
                let reply = proxy
                    .call_json("welcome_message", json!(["Ruvika"]))
                    .await
                    .unwrap();
                assert_eq!(reply, json!("Hi welcome Ruvika"));
            }
        })
        .await;
        report("rmi, DynamicProxy (JSON)", in_flight, rate);

        let rate = over_http(in_flight, length, &http, &json_url, JSON_CALL, JSON_REPLY).await;
        report("gateway, POST /call (JSON)", in_flight, rate);
        let rate = over_http(in_flight, length, &http, &xml_url, XML_CALL, XML_REPLY).await;
        report("gateway, POST /RPC2 (XML-RPC)", in_flight, rate);
    }
}

const JSON_CALL: &str = r#"["Ruvika"]"#;
const JSON_REPLY: &str = "\"Hi welcome Ruvika\"";
const XML_CALL: &str =
    "<?xml version=\"1.0\"?><methodCall><methodName>welcome_message</methodName>\
    <params><param><value><string>Ruvika</string></value></param></params></methodCall>";
const XML_REPLY: &str = "<string>Hi welcome Ruvika</string>";

/// Calls per second of `POST url` with `body`, whose answer holds `reply`.
async fn over_http(
    in_flight: usize,
    length: Duration,
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    reply: &'static str,
) -> f64 {
    let (client, url) = (client.clone(), url.to_owned());
    measure(in_flight, length, move || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.post(&url).body(body).send().await.unwrap();
            assert!(response.status().is_success());
            let text = response.text().await.unwrap();
            assert!(text.contains(reply), "{text}");
        }
    })
    .await
}

fn report(path: &str, in_flight: usize, rate: f64) {
    println!("{path:<34} {in_flight:>9} {rate:>10.0}");
}
