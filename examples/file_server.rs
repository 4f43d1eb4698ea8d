//! The file server (the seed's file-transfer recipe, done right): a client sends
//! `HelloServer!`; the server streams it the file it was started with, in chunks, then closes
//! the connection. Each client is served in a task of its own, so many download at once, and
//! one that goes away halfway costs the others nothing.
//!
//! `cargo run --example file_server -- mytext.txt` (port 60000; `--port 0` picks a free one),
//! then `cargo run --example file_client`, or
//! `printf HelloServer! | socat -t 30 - TCP:127.0.0.1:60000 > received.txt`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::sockets::{accept, peer, Address};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a client says to ask for the file.
const GREETING: &[u8] = b"HelloServer!";

/// How long a client may take to say it.
const GREETING_WAIT: Duration = Duration::from_secs(10);

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
    let file: Arc<Path> = args.file.into();
    let chunk_bytes = args.chunk_bytes.max(1);
    loop {
        let (stream, addr) = accept(&listener).await;
        println!("Got connection from {}", peer(addr));
        let file = file.clone();
        tokio::spawn(async move {
            match serve(stream, addr, &file, chunk_bytes).await {
                Ok(sent) => println!("Done sending {sent} bytes to {}", peer(addr)),
                Err(e) => println!("{} went away: {e}", peer(addr)),
            }
        });
    }
}

/// Waits for the greeting, then sends the file; returns how many bytes were sent.
async fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    file: &Path,
    chunk_bytes: usize,
) -> std::io::Result<u64> {
    tokio::time::timeout(GREETING_WAIT, read_greeting(&mut stream))
        .await
        .map_err(|_| other(format!("no {:?} within {GREETING_WAIT:?}", greeting())))??;
    println!("{} said {}", peer(addr), greeting());
    let mut file = tokio::fs::File::open(file).await?;
    let mut chunk = vec![0u8; chunk_bytes];
    let mut sent = 0u64;
    loop {
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        stream.write_all(&chunk[..read]).await?;
        sent += read as u64;
    }
    stream.shutdown().await?;
    Ok(sent)
}

/// Reads until the client has said `HelloServer!`; anything else ends the connection.
async fn read_greeting(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut heard = Vec::with_capacity(GREETING.len());
    while heard.len() < GREETING.len() {
        let mut byte = [0u8; 64];
        let want = GREETING.len() - heard.len();
        let read = stream.read(&mut byte[..want]).await?;
        if read == 0 {
            return Err(other(format!(
                "the client left without saying {:?}",
                greeting()
            )));
        }
        heard.extend_from_slice(&byte[..read]);
        if !GREETING.starts_with(&heard) {
            return Err(other(format!(
                "the client said {:?}, not {:?}",
                String::from_utf8_lossy(&heard),
                greeting()
            )));
        }
    }
    Ok(())
}

fn greeting() -> &'static str {
    std::str::from_utf8(GREETING).expect("the greeting is text")
}

fn other(message: String) -> std::io::Error {
    std::io::Error::other(message)
}
