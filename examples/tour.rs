//! The tour: a name server, the greeter and a chain ring, all in this process on loopback
//! ports, with their clients; it prints what happens, step by step.
//!
//! `cargo run --release --example tour`

use rmi_examples::{chain, cli, clock, feed, greeter};
use rmi_nameserver::NameServerHost;

type TourResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() {
    cli::run_main(tour()).await;
}

async fn tour() -> TourResult {
    println!("rmi tour: a name server, a greeter and a chain ring, in one process on loopback.");
    let ns = name_server().await?;
    let ns_endpoint = ns.uri().endpoint().clone();
    let greeter_daemon = greeter(&ns_endpoint).await?;
    let ring = chain_ring(&ns_endpoint, 3).await?;
    errors(&ns_endpoint, &greeter_daemon).await?;
    listing(&ns_endpoint).await?;
    callbacks().await?;
    without_rust(&ns_endpoint).await?;
    streams().await?;
    step("Shutting down");
    for daemon in ring {
        daemon.shutdown().await;
    }
    ns.daemon().shutdown().await;
    println!("    every daemon stopped after finishing its calls");
    println!("\nTour complete.");
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

/// A `rminame:` URI resolved through the tour's own name server.
fn named(name: &str, ns: &rmi::Endpoint) -> TourResult<rmi::NameUri> {
    Ok(rmi::NameUri::new(name, Some(ns.clone()))?)
}

async fn name_server() -> TourResult<NameServerHost> {
    step("1. The name server (what `cargo run --bin rmi-ns` runs)");
    let ns = NameServerHost::bind("127.0.0.1:0").await?;
    ns.daemon().spawn();
    println!("    NS running on {}", ns.uri().endpoint());
    println!("    URI = {}", ns.uri());
    Ok(ns)
}

async fn greeter(ns_endpoint: &rmi::Endpoint) -> TourResult<rmi::Daemon> {
    step("2. The greeter: a server registers an object by name, a client calls it");
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    let uri = daemon.register(greeter::Server)?;
    let ns = rmi::locate_ns_at(ns_endpoint).await?;
    ns.register(greeter::NAME.into(), uri.clone()).await??;
    daemon.spawn();
    println!("    server: Ready. Object uri = {uri}");
    let name = named(greeter::NAME, ns_endpoint)?;
    let proxy = greeter::GreeterProxy::connect(&name).await?;
    println!(
        "    client: GreeterProxy::connect(\"{name}\") found {}",
        proxy.uri()
    );
    let greeting = proxy.welcome_message("Ruvika".into()).await?;
    println!("    client: welcome_message(\"Ruvika\") returned {greeting:?}");
    Ok(daemon)
}

async fn chain_ring(ns_endpoint: &rmi::Endpoint, length: usize) -> TourResult<Vec<rmi::Daemon>> {
    step(&format!(
        "3. The chain topology: {length} servers in a ring, each calling the next"
    ));
    let ns = rmi::locate_ns_at(ns_endpoint).await?;
    let mut daemons = Vec::new();
    for n in 1..=length {
        let (this, next) = (n.to_string(), (n % length + 1).to_string());
        let prefix = format!("    server {this}: ");
        let server =
            chain::ChainServer::new(&this, &next, Some(ns_endpoint.clone()), move |line| {
                println!("{prefix}{line}")
            })?;
        let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
        let uri = daemon.register(server)?;
        ns.register(chain::name_of(&this), uri).await??;
        daemon.spawn();
        println!("    server {this}: server_{this} started");
        daemons.push(daemon);
    }
    let first = chain::ChainProxy::connect(&named(&chain::name_of("1"), ns_endpoint)?).await?;
    println!("    client: process([\"hello\"]) on server 1");
    let result = first.process(vec!["hello".into()]).await??;
    println!("    client: Result={result:?}");
    println!("    (server 1 was called again while its first call was still running)");
    Ok(daemons)
}

async fn errors(ns_endpoint: &rmi::Endpoint, greeter_daemon: &rmi::Daemon) -> TourResult {
    step("4. Errors say what happened and what to do");
    let missing = greeter::GreeterProxy::connect(&named("nobody", ns_endpoint)?).await;
    report("an unknown name", missing.map(|_| ()));
    let chain_one = named(&chain::name_of("1"), ns_endpoint)?;
    let wrong = greeter::GreeterProxy::connect(&chain_one).await;
    report("a proxy of the wrong trait", wrong.map(|_| ()));
    let bad = greeter::GreeterProxy::connect("rmi:obj_1@localhost").await;
    report("a malformed URI", bad.map(|_| ()));
    let proxy = greeter::GreeterProxy::connect(&named(greeter::NAME, ns_endpoint)?).await?;
    greeter_daemon.shutdown().await;
    let down = proxy.welcome_message("again".into()).await;
    report("a server that went away", down.map(|_| ()));
    let ns = rmi::locate_ns_at(ns_endpoint).await?;
    ns.remove(greeter::NAME.into()).await??;
    println!(
        "    (the stopped greeter's name '{}' is removed from the name server)",
        greeter::NAME
    );
    Ok(())
}

/// Prints each tick a clock calls back with.
struct TickPrinter;

impl clock::Listener for TickPrinter {
    async fn tick(&self, n: u32) {
        println!("    client: callback received tick {n}");
    }
}

async fn callbacks() -> TourResult {
    step("6. Callbacks: the client hosts an object, the server calls it back");
    let server = rmi::Daemon::bind("127.0.0.1:0").await?;
    let clock_uri = server.register(clock::ClockServer)?;
    server.spawn();
    let client = rmi::Daemon::bind("127.0.0.1:0").await?;
    let me = client.register(TickPrinter)?;
    client.spawn();
    println!("    client: hosts its listener at {me}");
    let clock = clock::ClockProxy::connect(&clock_uri).await?;
    let delivered = clock.subscribe(rmi::Remote::new(me), 3).await??;
    println!("    client: subscribe returned after {delivered} ticks");
    client.shutdown().await;
    server.shutdown().await;
    Ok(())
}

async fn without_rust(ns_endpoint: &rmi::Endpoint) -> TourResult {
    step("7. Introspection and calls without Rust types (what `rmi methods` / `rmi call` do)");
    let chain_one = named(&chain::name_of("1"), ns_endpoint)?;
    let any = rmi::DynamicProxy::connect(&chain_one).await?;
    println!("    {} is a {}", any.uri(), any.descriptor().name);
    for method in any.descriptor().methods.iter() {
        println!("      {}", method.signature());
    }
    let args = serde_json::json!([["1"]]);
    let result = any.call_json("process", args.clone()).await?;
    println!("    process({args}) returned {result}");
    Ok(())
}

async fn streams() -> TourResult {
    step("8. Streams: items printed as the server produces them");
    let server = rmi::Daemon::bind("127.0.0.1:0").await?;
    let feed_uri = server.register(feed::FeedServer::default())?;
    server.spawn();
    let feed = feed::FeedProxy::connect(&feed_uri).await?;
    let started = std::time::Instant::now();
    let mut lines = feed.lines(4, 0, 250).await?;
    while let Some(line) = lines.next().await {
        let at = started.elapsed().as_secs_f64();
        println!("    client: +{at:.2}s received {}", line?.text);
    }
    let mut lines = feed.lines(1_000_000, 0, 0).await?;
    for _ in 0..3 {
        lines.next().await.transpose()?;
    }
    drop(lines);
    let mut stats = feed.stats().await?;
    for _ in 0..100 {
        if stats.producing == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stats = feed.stats().await?;
    }
    println!(
        "    client: read 3 of 1,000,000 lines and dropped the stream; the producer had made {} lines, and stopped",
        stats.produced - 4
    );
    server.shutdown().await;
    Ok(())
}

fn report(what: &str, outcome: Result<(), rmi::Error>) {
    match outcome {
        Ok(()) => println!("    {what}: unexpectedly worked"),
        Err(e) => println!("    {what}:\n      {e}"),
    }
}

async fn listing(ns_endpoint: &rmi::Endpoint) -> TourResult {
    step("5. What the name server knows");
    let ns = rmi::locate_ns_at(ns_endpoint).await?;
    for (name, registration) in ns.list(None).await?? {
        println!("    {name} -> {}", registration.uri);
    }
    Ok(())
}
