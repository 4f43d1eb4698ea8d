//! A task worker: runs the demo's tasks (`add`, `mul`, `sleep`, `fail`) for any client, and
//! registers with the name server as `tasks.worker.<id>`, tagged `tasks.worker`, with a lease.
//! Start as many as you like; clients spread their tasks over all of them.
//!
//! `cargo run --example task_worker` (start `cargo run --bin rmi-ns` first), then
//! `cargo run --example task_submit -- add 5 5`.

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::tasks::{Registry, WorkerServer, WORKER_TAG};

/// Runs tasks for the clients that send them.
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
    let id = args.listen.object_id();
    let name = format!("{WORKER_TAG}.{id}");
    let registry = Registry::standard();
    let known = registry.names().join(", ");
    // Registered by metadata: clients find every worker by the tag.
    let options = args.listen.lease()?.meta([WORKER_TAG]);
    let uri = daemon.register_with_id(id, WorkerServer::new(registry))?;
    let uri = daemon.register_name(&ns, &name, &uri, options).await?;
    println!("Worker {name} ready at {uri}; tasks: {known}");
    daemon.serve_until_signal().await?;
    Ok(())
}
