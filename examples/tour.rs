//! The tour: a name server, the greeter and a chain ring, all in this process on loopback
//! ports, with their clients; it prints what happens, step by step.
//!
//! `cargo run --release --example tour`

use rmi_examples::{chain, chat, cli, clock, feed, greeter, rosetta, sockets, tasks};
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
    socket_demos().await?;
    task_demo(&ns_endpoint).await?;
    rosetta_demo().await?;
    chat_demo().await?;
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
    let clock = clock::ClockProxy::connect(&clock_uri).await?;
    // The client listens where the server can reach it: its own end of the connection.
    let client = rmi::Daemon::builder()
        .bind_for_callbacks(&clock, None, None)
        .await?;
    let me = client.register(TickPrinter)?;
    client.spawn();
    println!("    client: hosts its listener at {me}");
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

/// Prints a server's lines, indented and marked as the server's.
fn server_says(who: &'static str) -> sockets::Say {
    std::sync::Arc::new(move |line| println!("    {who}: {line}"))
}

/// A loopback listener on a free port, as the socket demos' `--port 0` makes.
async fn loopback() -> TourResult<(tokio::net::TcpListener, sockets::Address<0>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let address = sockets::Address {
        host: "127.0.0.1".into(),
        port,
    };
    Ok((listener, address))
}

async fn socket_demos() -> TourResult {
    step("9. Socket demos (plain tokio, the layer under rmi): time, a file, many clients at once");
    let (listener, time_server) = loopback().await?;
    let serving = tokio::spawn(sockets::time::serve(listener, server_says("time server")));
    let time = sockets::time::ask(time_server.connect().await?).await?;
    println!("    client: Time connection server:{time}");
    serving.abort();

    let dir = std::env::temp_dir().join(format!("rmi-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("mytext.txt");
    std::fs::write(&file, "a line of mytext.txt\n".repeat(10_000))?;
    let (listener, file_server) = loopback().await?;
    let serving = tokio::spawn(sockets::file::serve(
        listener,
        file.clone(),
        64 * 1024,
        server_says("file server"),
    ));
    let downloads = (0..2).map(|_| async {
        let mut copy = Vec::new();
        let received = sockets::file::download(file_server.connect().await?, &mut copy).await?;
        std::io::Result::Ok((received, copy == std::fs::read(&file)?))
    });
    for outcome in futures::future::join_all(downloads).await {
        let (received, same) = outcome?;
        println!("    client: received {received} bytes, the same as the file: {same}");
    }
    serving.abort();
    std::fs::remove_dir_all(&dir)?;

    let (listener, echo_server) = loopback().await?;
    let serving = tokio::spawn(sockets::echo::serve(listener, server_says("echo server")));
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(sockets::echo::EchoClient::new(echo_server.connect().await?));
    }
    for (n, client) in clients.iter_mut().enumerate() {
        let echo = client.echo(&format!("hello from client {}", n + 1)).await?;
        println!("    client {}: Received: {echo}", n + 1);
    }
    drop(clients);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    serving.abort();
    Ok(())
}

async fn task_demo(ns_endpoint: &rmi::Endpoint) -> TourResult {
    step("10. Tasks (what Celery does): workers found by metadata, tasks spread over them");
    let ns = rmi::locate_ns_at(ns_endpoint).await?;
    let mut workers = Vec::new();
    for who in ["worker 1", "worker 2"] {
        let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
        let worker = tasks::WorkerServer::new(tasks::Registry::standard())
            .with_say(move |line| println!("    {who}: {line}"));
        let options = rmi::RegisterOptions::default().meta([tasks::WORKER_TAG]);
        let name = format!("{}.{}", tasks::WORKER_TAG, workers.len() + 1);
        daemon.register_named(&ns, &name, worker, options).await?;
        daemon.spawn();
        workers.push(daemon);
    }
    let client = tasks::TaskClient::new(ns);
    for (x, y) in [(5, 5), (2, 3)] {
        let task = client.delay("add", (x, y));
        let id = task.id().to_owned();
        println!(
            "    client: add.delay({x}, {y}) -> {id}: {}",
            task.get().await?
        );
    }
    let failed = client.delay("nope", ()).get().await;
    if let Err(failure) = failed {
        println!("    client: an unknown task: {failure}");
    }
    for daemon in workers {
        daemon.shutdown().await;
    }
    Ok(())
}

async fn rosetta_demo() -> TourResult {
    step("11. Two objects in one daemon, and a typed remote error (Rosetta Code)");
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    let string = daemon.register_with_id(rosetta::STRING, rosetta::StringServer)?;
    let math = daemon.register_with_id(rosetta::MATH, rosetta::MathServer)?;
    daemon.spawn();
    let string = rosetta::StringToolsProxy::connect(&string).await?;
    let upper = string.make_upper("my name is eren".into()).await?;
    println!("    client: Server responded: {upper}");
    let math = rosetta::MathProxy::connect(&math).await?;
    for (a, b) in [(10, 5), (1, 0)] {
        match math.div(a, b).await? {
            Ok(quotient) => println!("    client: Server responded the result: {quotient}"),
            Err(error) => println!("    client: Server raised: MathError::{error:?}: {error}"),
        }
    }
    daemon.shutdown().await;
    Ok(())
}

/// A chat member that prints what it hears, marked with its own nick.
struct TourMember(&'static str);

impl chat::Member for TourMember {
    async fn hear(&self, from: String, text: String) {
        println!("    {}: [{from}] {text}", self.0);
    }
    async fn notice(&self, text: String) {
        println!("    {}: * {text}", self.0);
    }
}

async fn chat_demo() -> TourResult {
    step("12. Group chat (what Spread does): members are called back with each line");
    let server = rmi::Daemon::bind("127.0.0.1:0").await?;
    let rooms =
        chat::ChatServer::new(server.clone()).with_say(|line| println!("    server: {line}"));
    let room = server.register(rooms)?;
    server.spawn();
    let chat = chat::ChatRoomProxy::connect(&room).await?;
    let (mut seats, mut members) = (Vec::new(), Vec::new());
    for nick in ["alice", "bob", "carol"] {
        let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
        let me = daemon.register(TourMember(nick))?;
        daemon.spawn();
        let seat = chat
            .join("lobby".into(), nick.into(), rmi::Remote::new(me))
            .await??;
        if nick == "alice" {
            println!("    alice: the server made my seat at {}", seat.uri());
        }
        seats.push(seat.connect().await?);
        members.push(daemon);
    }
    let heard = seats[0].say("hello all".into()).await?;
    println!("    (alice's line reached {heard} members)");
    // Carol vanishes: her daemon stops. The next line drops her; the others go on.
    if let Some(carol) = members.pop() {
        carol.shutdown().await;
    }
    let heard = seats[1].say("where is carol?".into()).await?;
    println!("    (bob's line reached {heard} member)");
    for daemon in members {
        daemon.shutdown().await;
    }
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
