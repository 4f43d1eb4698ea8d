//! The feed server: hosts a `Feed`, whose `lines` method streams numbered lines as a producer
//! makes them, and registers it as `feed`.
//!
//! `cargo run --example feed_server`, then `cargo run --example feed_client` or
//! `cargo run --bin rmi -- call rminame:feed lines '[3, 0, 500]'`.

use clap::Parser;
use rmi_examples::{cli, feed};

/// Hosts the feed object and registers it as `feed`.
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
    let feed = feed::FeedServer::default();
    let uri = daemon.register_with_id(args.listen.object_id(), feed)?;
    let uri = daemon
        .register_name(&ns, feed::NAME, &uri, args.listen.lease()?)
        .await?;
    println!("Feed ready. Object uri = {uri}");
    daemon.serve_until_signal().await?;
    Ok(())
}
