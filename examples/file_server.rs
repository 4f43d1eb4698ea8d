//! The file server (the socket file-transfer recipe of the cookbook chapter "Distributed Python", done right): a client sends
//! `HelloServer!`; the server streams it the file it was started with, in chunks, then closes
//! the connection. Each client is served in a task of its own, so many download at once, and
//! one that goes away halfway costs the others nothing.
//!
//! `cargo run --example file_server -- mytext.txt` (port 60000; `--port 0` picks a free one),
//! then `cargo run --example file_client`, or
//! `printf HelloServer! | socat -t 30 - TCP:127.0.0.1:60000 > received.txt`.

use std::path::PathBuf;

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{file, print_lines, Address};

/// Serves one file to every client that asks.
#[derive(Parser)]
struct Args {
    /// The file to send.
    #[arg(default_value = "mytext.txt")]
    file: PathBuf,
    #[command(flatten)]
    address: Address<60000>,
    /// The size of each chunk sent, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    chunk_bytes: usize,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Refuse at once a file that cannot be read, rather than failing each client.
    let size = tokio::fs::metadata(&args.file)
        .await
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?
        .len();
    println!("Serving {} ({size} bytes)", args.file.display());
    let listener = args.address.listen().await?;
    file::serve(listener, args.file, args.chunk_bytes, print_lines()).await;
    Ok(())
}
