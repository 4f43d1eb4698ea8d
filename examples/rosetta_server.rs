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
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    let lease = args.listen.lease()?;
    let string = daemon.register_with_id(args.listen.object_id_of(STRING), StringServer)?;
    let string = daemon
        .register_name(&ns, STRING, &string, lease.clone())
        .await?;
    let math = daemon.register_with_id(args.listen.object_id_of(MATH), MathServer)?;
    let math = daemon
        .register_name(&ns, MATH, &math, lease.clone())
        .await?;
    let handler = daemon.register_with_id(args.listen.object_id_of(HANDLER), HandlerServer)?;
    let handler = daemon.register_name(&ns, HANDLER, &handler, lease).await?;
    println!("Ready. {STRING} = {string}");
    println!("Ready. {MATH} = {math}");
    println!("Ready. {HANDLER} = {handler}");
    daemon.serve_until_signal().await?;
    Ok(())
}
