//! The time client: connects to the time server, reads the time and prints
//! `Time connection server:<time>`.
//!
//! `cargo run --example time_client` (`--host`, `--port`; port 9999 by default).

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{time, Address};

/// Asks the time server for the time.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    address: Address<9999>,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> std::io::Result<()> {
    let time = time::ask(args.address.connect().await?).await?;
    println!("Time connection server:{time}");
    Ok(())
}
