//! The time server (the socket time server of the cookbook chapter "Distributed Python"): each client that connects gets the server's
//! current time, as `time.ctime()` writes it, then `\r\n`, and the connection is closed.
//!
//! `cargo run --example time_server` (port 9999; `--port 0` picks a free one), then
//! `cargo run --example time_client`, or `nc 127.0.0.1 9999`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{print_lines, time, Address};

/// Tells each client the time.
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
    let listener = args.address.listen().await?;
    time::serve(listener, print_lines()).await;
    Ok(())
}
