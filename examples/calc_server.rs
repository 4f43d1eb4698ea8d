//! The calc server (Python's `multiprocessing.connection` Listener with an `authkey`):
//! serves only clients that prove they hold its key, and adds what they send.
//!
//! `cargo run --example calc_server -- --key-file K` (port 25000; `--port 0` picks a free
//! one), then `cargo run --example calc_client -- --key-file K`.

use clap::Parser;
use rmi_examples::calc::{Calculator, KeyAndAddress, ID};
use rmi_examples::cli;

/// Adds numbers and texts for clients that hold the key.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    calc: KeyAndAddress,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let daemon = rmi::Daemon::builder()
        .key(args.calc.key()?)
        .bind(args.calc.address.target().as_str())
        .await?;
    daemon.register_with_id(ID, Calculator)?;
    println!("Listening on {}", daemon.local_addr());
    daemon.serve_until_signal().await?;
    Ok(())
}
