//! The time client: connects to the time server, reads the time and prints
//! `Time connection server:<time>`.
//!
//! `cargo run --example time_client` (`--host`, `--port`; port 9999 by default).

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::Address;
use tokio::io::AsyncReadExt;

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
    let stream = args.address.connect().await?;
    // As the seed: at most 1024 bytes, until the server closes.
    let mut time = Vec::new();
    stream.take(1024).read_to_end(&mut time).await?;
    let time = String::from_utf8_lossy(&time);
    println!("Time connection server:{}", time.trim_end());
    Ok(())
}
