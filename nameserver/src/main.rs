//! `rmi-ns`: the rmi name server.

use clap::Parser;
use rmi_nameserver::cli::KeyFile;
use rmi_nameserver::{Config, NameServerHost, Storage};

/// The rmi name server: maps names to object URIs, so clients can say `rminame:server`.
#[derive(Parser)]
#[command(name = "rmi-ns", version)]
#[command(mut_arg("key_file", |arg| arg.help(KEY_FILE_HELP)))]
struct Args {
    /// The address to listen on; without it, `RMI_HOST`, else 127.0.0.1.
    #[arg(long, env = "RMI_NS_HOST")]
    host: Option<String>,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, env = "RMI_NS_PORT", default_value_t = rmi::DEFAULT_NS_PORT)]
    port: u16,
    /// Where to keep the names: `memory`; `sqlite:PATH` to keep them across restarts;
    /// `etcd:http://HOST:PORT[,http://HOST:PORT…]` to share them with other name servers
    /// (built with `--features etcd`).
    #[arg(long, env = "RMI_NS_STORAGE", default_value = "memory")]
    storage: Storage,
    /// What the keys of the names start with in etcd (with `--storage etcd:…`).
    #[arg(long, env = "RMI_NS_ETCD_PREFIX", default_value = rmi_nameserver::DEFAULT_ETCD_PREFIX)]
    etcd_prefix: String,
    /// The UDP port to answer discovery broadcasts on.
    #[arg(long, env = "RMI_NS_BCPORT", default_value_t = rmi::DEFAULT_NS_BCPORT)]
    bc_port: u16,
    /// Do not answer discovery broadcasts.
    #[arg(long)]
    no_broadcast: bool,
    /// Serve metrics (calls, connections, store latency) in Prometheus' text format at
    /// http://ADDR/metrics.
    #[arg(long, env = rmi::METRICS_ENV, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    key_file: KeyFile,
}

const KEY_FILE_HELP: &str = "A file holding the key clients must prove (HMAC challenge–response); \
    without one, anyone who can reach the name server can register and remove names";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let log = tracing_subscriber::EnvFilter::new(rmi::log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
    ));
    #[cfg(feature = "otel")]
    let _exporting = match rmi::otel::init_logging(log, "rmi-ns") {
        Ok(exporting) => exporting,
        Err(e) => {
            eprintln!("rmi-ns: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    #[cfg(not(feature = "otel"))]
    tracing_subscriber::fmt()
        .with_env_filter(log)
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmi-ns: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let host = args.host.unwrap_or_else(rmi::host_from_env);
    if host.contains(',') {
        return Err(format!(
            "--host (or RMI_NS_HOST) is '{host}', a list of name servers, which clients take; rmi-ns listens on one address: give it with --host"
        )
        .into());
    }
    let host = rmi::unbracket(&host);
    if let Some(metrics) = args.metrics {
        rmi::serve_metrics(metrics)?;
    }
    let key = args.key_file.key()?;
    let storage = match args.storage {
        Storage::Etcd { endpoints, .. } => Storage::Etcd {
            endpoints,
            prefix: args.etcd_prefix,
        },
        other => other,
    };
    let config = Config {
        addr: rmi::Endpoint::new(host, args.port).to_string(),
        storage,
        broadcast_port: (!args.no_broadcast).then_some(args.bc_port),
        key,
    };
    let open = config.key.is_none();
    let ns = NameServerHost::start(config).await?;
    println!("NS running on {}", ns.uri().endpoint());
    println!("URI = {}", ns.uri());
    if open {
        eprintln!(
            "rmi-ns: warning: no key (--key-file or RMI_KEY_FILE): anyone who can reach {} can register and remove names",
            ns.uri().endpoint()
        );
    }
    // Until Ctrl-C or SIGTERM: then calls in flight finish (a second signal stops at once).
    ns.daemon().serve_until_signal().await?;
    Ok(())
}
