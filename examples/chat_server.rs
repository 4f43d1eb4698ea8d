//! The chat server: rooms whose members are called back with what the others say, registered
//! as `chat` (what Spread's daemon does for group messaging). Each member gets a seat, an
//! object the server makes for it when it joins.
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
    let ns = rmi::locate_ns().await?;
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    // The server makes each member's seat in its own daemon.
    let rooms = chat::ChatServer::new(daemon.clone());
    let uri = daemon.register_with_id(args.listen.object_id(), rooms)?;
    let uri = daemon
        .register_name(&ns, chat::NAME, &uri, args.listen.lease()?)
        .await?;
    println!("Chat ready. Object uri = {uri}");
    daemon.serve_until_signal().await?;
    Ok(())
}
