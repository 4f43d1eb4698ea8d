//! The greeter server: hosts a `Greeter` and registers it in the name server as `server`.
//!
//! `cargo run --example greeter_server` (with `rmi-ns` running).

use clap::Parser;
use rmi_examples::{cli, greeter};

/// Hosts the greeter, registered as `server`.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    listen: cli::Listen,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let ns = rmi::locate_ns().await?;
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    let uri = daemon.register_with_id(args.listen.object_id(), greeter::Server)?;
    let uri = daemon
        .register_name(&ns, greeter::NAME, &uri, args.listen.lease()?)
        .await?;
    println!("Ready. Object uri = {uri}");
    // Until Ctrl-C or SIGTERM; then the name is removed and calls in flight finish.
    daemon.serve_until_signal().await?;
    Ok(())
}
