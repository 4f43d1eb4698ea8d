//! The greeter server: hosts a `Greeter`, registers it as `server` in the name server.
//!
//! `cargo run --example greeter_server` (start `cargo run --bin rmi-ns` first).

use clap::Parser;
use rmi_examples::{cli, greeter};

/// Hosts the greeter object and registers it as `server`.
#[derive(Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() {
    cli::init_logging();
    let args = Args::parse();
    cli::exit_on_error(run(args).await);
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr = rmi::Endpoint::new(&args.host, args.port).to_string();
    let daemon = rmi::Daemon::bind(addr.as_str()).await?;
    let uri = daemon.register(greeter::Server)?;
    rmi::locate_ns()
        .await?
        .register(greeter::NAME.into(), uri.clone())
        .await??;
    println!("Ready. Object uri = {uri}");
    tokio::spawn(cli::shutdown_on_ctrl_c(
        daemon.clone(),
        vec![greeter::NAME.into()],
    ));
    daemon.serve().await?;
    Ok(())
}
