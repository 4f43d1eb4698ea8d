//! `rmi-gateway`: the objects of a name server, called over HTTP with JSON, with XML-RPC, and
//! from a web page.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rmi_gateway::{Config, Expose, Gateway, Limits, DEFAULT_MAX_BODY};

/// mimalloc, not glibc's allocator: under load, each HTTP request's buffers are allocated on
/// one worker thread and freed on another, and glibc's per-thread arenas then contend for
/// their locks (most of the gateway's futex calls under wrk, traced with `perf record -e
/// syscalls:sys_enter_futex`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An HTTP gateway to rmi objects: `POST /call/NAME/METHOD` with a JSON array of arguments,
/// `GET /objects`, XML-RPC at `/RPC2` and `/RPC2/NAME`, and a web page at `/`.
///
/// Only the names --expose allows are reachable. The rmi key and TLS settings are those of the
/// other tools (--key-file or RMI_KEY_FILE; RMI_TLS_CA, RMI_TLS_CERT, RMI_TLS_KEY). Log with
/// RMI_LOG or RUST_LOG (such as `RMI_LOG=debug`).
#[derive(Parser)]
#[command(name = "rmi-gateway", version)]
struct Args {
    /// The HTTP address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, env = "RMI_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// A regular expression of the names that may be reached (matched whole; give it several
    /// times for several). Without one, no name is reachable.
    #[arg(long, value_name = "REGEX")]
    expose: Vec<String>,
    /// A file holding a bearer token that every request but `GET /` must carry
    /// (`Authorization: Bearer TOKEN`).
    #[arg(long, env = "RMI_GATEWAY_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A host name the gateway is reached by, besides IP addresses and localhost (give it
    /// several times for several); requests naming another host are refused.
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// The longest request body accepted, in bytes; longer ones are answered 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
    /// How long a call may take, in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// The name server's host (default: found through RMI_NS_HOST/RMI_NS_PORT, 127.0.0.1:9090,
    /// or a discovery broadcast).
    #[arg(long, env = "RMI_NS_HOST")]
    ns_host: Option<String>,
    /// The name server's port.
    #[arg(long, env = "RMI_NS_PORT")]
    ns_port: Option<u16>,
    /// A file holding the key of the name server and the daemons.
    #[arg(long, env = "RMI_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Show the objects' rmi: URIs in `GET /objects` and in error messages (internal
    /// addresses, hidden by default).
    #[arg(long)]
    show_uris: bool,
    /// The most connections served at once; more are answered 503.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// The most connections from one client address at once; more are answered 503.
    #[arg(long, default_value_t = Limits::default().max_connections_per_address)]
    max_connections_per_address: usize,
    /// Seconds a request's headers may take, and a kept-alive connection may wait for its
    /// next request.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a request's body may take once its headers arrived.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
    /// The most requests handled at once; more wait a second for their turn, then are
    /// answered 503.
    #[arg(long, default_value_t = Limits::default().max_requests_in_flight)]
    max_requests_in_flight: usize,
    /// The most calls in one XML-RPC system.multicall.
    #[arg(long, default_value_t = Limits::default().max_multicall)]
    max_multicall: usize,
    /// Serve metrics (requests by route and status, their durations, the calls behind them)
    /// in Prometheus' text format at http://ADDR/metrics.
    #[arg(long, env = rmi::METRICS_ENV, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

/// `seconds`, given as the option `name`, as a positive duration.
fn seconds(name: &str, seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| format!("--{name} {seconds}: give a number of seconds"))
}

#[tokio::main]
async fn main() -> ExitCode {
    // RMI_LOG first, as the gateway's own setting; RUST_LOG as every other binary reads it.
    let filter = ["RMI_LOG", "RUST_LOG"]
        .iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| "warn".into());
    #[cfg(feature = "otel")]
    let _exporting = match rmi::otel::init_logging(filter, "rmi-gateway") {
        Ok(exporting) => exporting,
        Err(e) => {
            eprintln!("rmi-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(not(feature = "otel"))]
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmi-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(metrics) = args.metrics {
        rmi::serve_metrics(metrics)?;
    }
    let expose = Expose::new(&args.expose).map_err(|e| format!("--expose: {e}"))?;
    let timeout = seconds("timeout", args.timeout)?;
    let limits = Limits {
        max_connections: args.max_connections.max(1),
        max_connections_per_address: args.max_connections_per_address.max(1),
        header_timeout: seconds("header-timeout", args.header_timeout)?,
        body_timeout: seconds("body-timeout", args.body_timeout)?,
        max_requests_in_flight: args.max_requests_in_flight.max(1),
        max_multicall: args.max_multicall.max(1),
    };
    let token = match &args.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", path.display()).into());
            }
            Some(token)
        }
        None => None,
    };
    let client = rmi::ClientConfig::from_env()?.key_file(args.key_file.as_deref())?;
    let ns = if args.ns_host.is_none() && args.ns_port.is_none() {
        client.locate_ns().await?
    } else {
        let host = args.ns_host.as_deref().unwrap_or(rmi::DEFAULT_NS_HOST);
        let host = rmi::unbracket(host);
        let port = args.ns_port.unwrap_or(rmi::DEFAULT_NS_PORT);
        client.locate_ns_at(&rmi::Endpoint::new(host, port)).await?
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    if args.expose.is_empty() {
        eprintln!("rmi-gateway: warning: no --expose: no name is reachable");
    }
    if token.is_none() && !addr.ip().is_loopback() {
        eprintln!("rmi-gateway: warning: no --token-file: anyone who can reach {addr} can call the exposed objects");
    }
    let config = Config {
        expose,
        token,
        allowed_hosts: args.allow_host,
        max_body: args.max_body,
        timeout,
        show_uris: args.show_uris,
        limits,
    };
    let gateway = Gateway::new(ns.clone(), client, config);
    println!("Gateway listening on http://{addr}");
    println!("Name server: {}", ns.uri());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        // Requests under way get a moment to finish; a stream may never end, so it does not
        // hold the gateway up for longer.
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            std::process::exit(0);
        });
    };
    gateway.serve(listener, shutdown).await?;
    Ok(())
}
