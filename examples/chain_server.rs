//! One server of the chain topology: `cargo run --example chain_server -- 1 2` hosts chain
//! server 1, which passes messages on to server 2. Start `2 3` and `3 1` in other terminals.

use clap::Parser;
use rmi_examples::{chain, cli};

/// Hosts one link of the chain, registered as `example.chainTopology.<THIS>`.
#[derive(Parser)]
struct Args {
    /// This server's name.
    this: String,
    /// The name of the server to pass messages on to.
    next: String,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() {
    cli::init_logging();
    let args = Args::parse();
    cli::exit_on_error(run(args).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr = rmi::Endpoint::new(&args.host, args.port).to_string();
    let daemon = rmi::Daemon::bind(addr.as_str()).await?;
    let server = chain::ChainServer::new(&args.this, &args.next, None, |line| println!("{line}"))?;
    let uri = daemon.register(server)?;
    let name = chain::name_of(&args.this);
    rmi::locate_ns()
        .await?
        .register(name.clone(), uri)
        .await??;
    println!("server_{} started", args.this);
    tokio::spawn(cli::shutdown_on_ctrl_c(daemon.clone(), vec![name]));
    daemon.serve().await?;
    Ok(())
}
