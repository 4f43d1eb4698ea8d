//! `rmi-ns`: the rmi name server.

use clap::Parser;

/// The rmi name server: maps names to object URIs, so clients can say `rminame:server`.
#[derive(Parser)]
#[command(name = "rmi-ns", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, env = "RMI_NS_HOST", default_value = rmi::DEFAULT_NS_HOST)]
    host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, env = "RMI_NS_PORT", default_value_t = rmi::DEFAULT_NS_PORT)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmi-ns: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), rmi::Error> {
    let host = args.host.trim_start_matches('[').trim_end_matches(']');
    let addr = rmi::Endpoint::new(host, args.port).to_string();
    let ns = rmi_nameserver::NameServerHost::bind(addr.as_str()).await?;
    println!("NS running on {}", ns.uri().endpoint());
    println!("URI = {}", ns.uri());
    let daemon = ns.daemon().clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            daemon.shutdown().await;
        }
    });
    ns.daemon().serve().await
}
