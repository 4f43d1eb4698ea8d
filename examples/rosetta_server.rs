//! The Rosetta server: one daemon hosting two objects, registered as `string` (`make_upper`)
//! and `math` (`div`), as the Rosetta Code Pyro server does; and a third, `handler` (`echo`,
//! `div`, `foo_function`), the XML-RPC variant's, for clients that come through `rmi-gateway`.
//!
//! `cargo run --example rosetta_server` (start `cargo run --bin rmi-ns` first), then
//! `cargo run --example rosetta_client`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::rosetta::{HandlerServer, MathServer, StringServer, HANDLER, MATH, STRING};

/// Hosts the `string`, `math` and `handler` objects.
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
    let daemon = args.listen.bind().await?;
    let lease = args.listen.lease()?;
    let string = daemon
        .register_named(&ns, STRING, StringServer, lease.clone())
        .await?;
    let math = daemon
        .register_named(&ns, MATH, MathServer, lease.clone())
        .await?;
    let handler = daemon
        .register_named(&ns, HANDLER, HandlerServer, lease)
        .await?;
    println!("Ready. {STRING} = {string}");
    println!("Ready. {MATH} = {math}");
    println!("Ready. {HANDLER} = {handler}");
    cli::serve_until_ctrl_c(&daemon).await
}
