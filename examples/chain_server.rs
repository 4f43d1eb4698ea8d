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
    /// Milliseconds to think before passing a message on.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    #[command(flatten)]
    listen: cli::Listen,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let server = chain::ChainServer::new(&args.this, &args.next, None, |line| println!("{line}"))?
        .with_delay(std::time::Duration::from_millis(args.delay_ms));
    let ns = rmi::locate_ns().await?;
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    let uri = daemon.register_with_id(args.listen.object_id(), server)?;
    daemon
        .register_name(&ns, &chain::name_of(&args.this), &uri, args.listen.lease()?)
        .await?;
    println!("server_{} started", args.this);
    daemon.serve_until_signal().await?;
    Ok(())
}
