//! The files server: hosts a `Files` store over a directory (`--dir`, `./files` by default)
//! and registers it as `files`.
//!
//! `cargo run --release --example files_server`, then `cargo run --release --example
//! files_client -- upload PATH` and `… download NAME --out PATH`.

use std::path::PathBuf;

use clap::Parser;
use rmi_examples::{cli, files};

/// Hosts the files store and registers it as `files`.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    listen: cli::Listen,
    /// The directory the files are stored in (made if missing).
    #[arg(long, default_value = "files")]
    dir: PathBuf,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let ns = rmi::locate_ns().await?;
    let store = files::FileStore::new(&args.dir)
        .map_err(|e| format!("cannot use {} for files: {e}", args.dir.display()))?;
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    let uri = daemon.register_with_id(args.listen.object_id(), store)?;
    let uri = daemon
        .register_name(&ns, files::NAME, &uri, args.listen.lease()?)
        .await?;
    println!("Files ready in {}. Object uri = {uri}", args.dir.display());
    daemon.serve_until_signal().await?;
    Ok(())
}
