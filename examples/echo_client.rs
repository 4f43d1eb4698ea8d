//! The echo client: sends each line it reads until an empty one (or the end of input), and
//! prints the echo of each.
//!
//! `cargo run --example echo_client` (`--host`, `--port`; port 50007 by default).

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{echo::EchoClient, Address};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Sends lines to the echo server and prints what comes back.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    address: Address<50007>,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> std::io::Result<()> {
    let mut client = EchoClient::new(args.address.connect().await?);
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = input.next_line().await? {
        if line.is_empty() {
            break;
        }
        println!("Received: {}", client.echo(&line).await?);
    }
    Ok(())
}
