//! The feed client: asks the feed for lines and prints each one as it arrives.
//!
//! `cargo run --example feed_client -- --count 5 --every-ms 500` (start `feed_server`
//! first).

use std::time::{Duration, Instant};

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::feed::FeedProxy;

/// Reads lines from the feed as they come.
#[derive(Parser)]
struct Args {
    /// The feed: a URI, or a name in the name server.
    #[arg(long, default_value = "rminame:feed")]
    uri: String,
    /// How many lines to ask for.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// Pad each line with dots to this many bytes.
    #[arg(long, default_value_t = 0)]
    size: u32,
    /// How long the producer waits between lines, in milliseconds.
    #[arg(long, default_value_t = 200)]
    every_ms: u64,
    /// How long this client takes over each line, in milliseconds (a slow consumer).
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
    /// Stop reading after this many lines, dropping the stream (which stops the producer).
    #[arg(long)]
    take: Option<u64>,
    /// Print only the summary, not each line.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), rmi::Error> {
    let feed = FeedProxy::connect(args.uri.as_str()).await?;
    let started = Instant::now();
    let mut lines = feed.lines(args.count, args.size, args.every_ms).await?;
    let mut received = 0u64;
    while let Some(line) = lines.next().await {
        let line = line?;
        received += 1;
        if !args.quiet {
            println!("+{:.2}s {}", started.elapsed().as_secs_f64(), line.text);
        }
        if args.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.slow_ms)).await;
        }
        if args.take == Some(received) {
            println!("stopped after {received} lines");
            return Ok(());
        }
    }
    println!("received {received} lines");
    Ok(())
}
