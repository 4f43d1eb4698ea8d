//! The echo server (the seed's "how many clients at once?"): every client is served at the
//! same time, each connection in a task of its own, rather than one after the other. It logs
//! which connection it serves, and when each ends.
//!
//! `cargo run --example echo_server` (port 50007; `--port 0` picks a free one), then
//! `cargo run --example echo_client` in several terminals, or `nc 127.0.0.1 50007`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{accept, peer, Address};

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
    let open = Arc::new(AtomicU64::new(0));
    for number in 1u64.. {
        let (mut stream, addr) = accept(&listener).await;
        let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
        println!(
            "Connection {number} from {}: served by its own task ({now_open} open)",
            peer(addr)
        );
        let open = open.clone();
        tokio::spawn(async move {
            let (mut from, mut to) = stream.split();
            let outcome = tokio::io::copy(&mut from, &mut to).await;
            let left = open.fetch_sub(1, Ordering::SeqCst) - 1;
            match outcome {
                Ok(bytes) => println!(
                    "Connection {number} from {} ended after {bytes} bytes ({left} open)",
                    peer(addr)
                ),
                Err(e) => println!(
                    "Connection {number} from {} broke: {e} ({left} open)",
                    peer(addr)
                ),
            }
        });
    }
    Ok(())
}
