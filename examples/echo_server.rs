//! The echo server (the tutorial "how many clients at once?", with Python's `socketserver`): every client is served at the
//! same time, each connection in a task of its own, rather than one after the other. It logs
//! which connection it serves, and when each ends.
//!
//! `cargo run --example echo_server` (port 50007; `--port 0` picks a free one), then
//! `cargo run --example echo_client` in several terminals, or `nc 127.0.0.1 50007`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{echo, print_lines, Address};

/// Echoes what each client sends, to many clients at once.
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
    let listener = args.address.listen().await?;
    echo::serve(listener, print_lines()).await;
    Ok(())
}
