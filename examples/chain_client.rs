//! The chain client: sends `["hello"]` into the ring at server 1 and prints what comes back.
//!
//! `cargo run --example chain_client` (with the chain servers running).

use clap::Parser;
use rmi_examples::{chain, cli};

/// Sends a message around the chain.
#[derive(Parser)]
struct Args {
    /// The server to start at.
    #[arg(default_value = "1")]
    start: String,
    /// How long the whole round may take, in milliseconds, finding the name server and
    /// connecting included; every server down the chain gets only what is left of it.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let uri = format!("{}{}", rmi::NAME_SCHEME, chain::name_of(&args.start));
    let timeout = std::time::Duration::from_millis(args.timeout_ms);
    let started = std::time::Instant::now();
    let client = rmi::ClientConfig::from_env()?.timeout(timeout);
    let first: chain::ChainProxy = client.connect(uri).await?;
    // What connecting took is taken from the call's time.
    let first = first.with_timeout(timeout.saturating_sub(started.elapsed()));
    let result = first.process(vec!["hello".into()]).await??;
    println!("Result={result:?}");
    Ok(())
}
