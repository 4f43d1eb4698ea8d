//! The counter server: one counter shared by all, one per client connection, one per call,
//! registered as `counter.shared`, `counter.session` and `counter.percall`.
//!
//! `cargo run --example counter_server`, then for example
//! `cargo run --bin rmi -- call rminame:counter.shared next`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::counter::{Count, PER_CALL, SESSION, SHARED};

/// Hosts a counter three ways.
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
    let daemon = args.listen.bind().await?;
    let ns = rmi::locate_ns().await?;
    let session = daemon.register_factory(rmi::Instances::PerConnection, Count::default)?;
    ns.register(SESSION.into(), session).await??;
    let per_call = daemon.register_factory(rmi::Instances::PerCall, Count::default)?;
    ns.register(PER_CALL.into(), per_call).await??;
    let options = rmi::RegisterOptions::default();
    daemon
        .register_named(&ns, SHARED, Count::default(), options)
        .await?;
    println!("counters ready: {SHARED}, {SESSION}, {PER_CALL}");
    daemon.serve().await?;
    Ok(())
}
