//! The chat server: rooms whose members are called back with what the others say, registered
//! as `chat` (what Spread's daemon does for group messaging).
//!
//! `cargo run --example chat_server` (start `cargo run --bin rmi-ns` first), then
//! `cargo run --example chat_client -- --nick alice` in several terminals.

use clap::Parser;
use rmi_examples::{chat, cli};

/// Hosts the chat rooms and registers them as `chat`.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    listen: cli::Listen,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    cli::serve_named(
        &args.listen,
        chat::NAME,
        chat::ChatServer::default(),
        |uri| format!("Chat ready. Object uri = {uri}"),
    )
    .await
}
