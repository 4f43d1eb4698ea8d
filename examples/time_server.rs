//! The time server (the seed's socket recipe): each client that connects gets the server's
//! current time, as `time.ctime()` writes it, then `\r\n`, and the connection is closed.
//!
//! `cargo run --example time_server` (port 9999; `--port 0` picks a free one), then
//! `cargo run --example time_client`, or `nc 127.0.0.1 9999`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{accept, peer, Address};
use tokio::io::AsyncWriteExt;

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
    loop {
        let (mut stream, addr) = accept(&listener).await;
        println!("Connected with {}", peer(addr));
        tokio::spawn(async move {
            let now = chrono::Local::now().format("%a %b %e %H:%M:%S %Y");
            if let Err(e) = stream.write_all(format!("{now}\r\n").as_bytes()).await {
                tracing::warn!("{}: {e}", peer(addr));
            }
        });
    }
}
