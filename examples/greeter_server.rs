//! The greeter server: hosts a `Greeter`, registers it as `server` in the name server.
//!
//! `cargo run --example greeter_server` (start `cargo run --bin rmi-ns` first).

use clap::Parser;
use rmi_examples::{cli, greeter};

/// Hosts the greeter object and registers it as `server`.
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
    cli::serve_named(&args.listen, greeter::NAME, greeter::Server, |uri| {
        format!("Ready. Object uri = {uri}")
    })
    .await
}
