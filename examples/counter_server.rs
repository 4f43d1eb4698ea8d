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
    let ns = rmi::locate_ns().await?;
    let daemon = args.listen.settings(rmi::Daemon::builder())?;
    let daemon = daemon.bind(args.listen.address()).await?;
    let lease = args.listen.lease()?;
    let (per_connection, per_call) = (rmi::Instances::PerConnection, rmi::Instances::PerCall);
    let session_id = args.listen.object_id_of(SESSION);
    let session = daemon.register_factory_with_id(session_id, per_connection, Count::default)?;
    daemon
        .register_name(&ns, SESSION, &session, lease.clone())
        .await?;
    let per_call_id = args.listen.object_id_of(PER_CALL);
    let per_call = daemon.register_factory_with_id(per_call_id, per_call, Count::default)?;
    daemon
        .register_name(&ns, PER_CALL, &per_call, lease.clone())
        .await?;
    let shared = daemon.register_with_id(args.listen.object_id_of(SHARED), Count::default())?;
    daemon.register_name(&ns, SHARED, &shared, lease).await?;
    println!("counters ready: {SHARED}, {SESSION}, {PER_CALL}");
    daemon.serve_until_signal().await?;
    Ok(())
}
