//! The files client: uploads a file to the files server, downloads one from it, or lists
//! them, and says how fast.
//!
//! `cargo run --release --example files_client -- upload PATH [--name NAME]`,
//! `… download NAME [--out PATH]`, `… list`.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use rmi_examples::cli;
use rmi_examples::files::{self, FilesProxy};

/// Sends files to the files server and fetches them, as streams of 64 KiB chunks.
#[derive(Parser)]
struct Args {
    /// The files object: a URI, or a name in the name server.
    #[arg(long, default_value = "rminame:files")]
    uri: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends the file at PATH; the server stores it as NAME (the file's own name by default).
    Upload {
        path: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// Fetches NAME into --out (NAME in this directory by default).
    Download {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lists the stored files and their sizes.
    List,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // A file takes as long as it takes: the timeout bounds waiting, not the transfer's size.
    let store = FilesProxy::connect(args.uri.as_str())
        .await?
        .with_timeout(std::time::Duration::from_secs(3600));
    match args.command {
        Command::Upload { path, name } => {
            let name = match name {
                Some(name) => name,
                None => path
                    .file_name()
                    .ok_or_else(|| format!("{} names no file", path.display()))?
                    .to_string_lossy()
                    .into_owned(),
            };
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let started = Instant::now();
            let bytes = store.upload(name.clone(), files::chunks_of(file)).await??;
            println!("Uploaded {bytes} bytes as {name} {}", rate(bytes, started));
        }
        Command::Download { name, out } => {
            let out = out.unwrap_or_else(|| PathBuf::from(&name));
            let started = Instant::now();
            let mut chunks = store.download(name.clone()).await??;
            let mut file = tokio::fs::File::create(&out)
                .await
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            let mut bytes = 0;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
                bytes += chunk.len() as u64;
            }
            file.sync_all().await?;
            println!(
                "Downloaded {bytes} bytes into {} {}",
                out.display(),
                rate(bytes, started)
            );
        }
        Command::List => {
            for (name, bytes) in store.list().await?? {
                println!("{bytes:>12}  {name}");
            }
        }
    }
    Ok(())
}

/// `in 1.20 s (850 MB/s)`.
fn rate(bytes: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    format!(
        "in {secs:.2} s ({:.0} MB/s)",
        bytes as f64 / secs.max(1e-9) / 1e6
    )
}
