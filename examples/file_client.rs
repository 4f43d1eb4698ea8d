//! The file client: says `HelloServer!` to the file server and writes what it sends to
//! `received.txt` (or `--out PATH`), byte for byte.
//!
//! `cargo run --example file_client` (`--host`, `--port`; port 60000 by default).

use std::path::PathBuf;

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{file, Address};

/// Downloads the file server's file.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    address: Address<60000>,
    /// Where to write the file.
    #[arg(long, default_value = "received.txt")]
    out: PathBuf,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> std::io::Result<()> {
    let stream = args.address.connect().await?;
    let mut out = tokio::fs::File::create(&args.out).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", args.out.display()),
        )
    })?;
    let received = file::download(stream, &mut out).await?;
    out.sync_all().await?;
    println!("Received {received} bytes into {}", args.out.display());
    Ok(())
}
