//! What the demo programs share: logging, their listening address, error exits, and serving
//! a named object until Ctrl-C.

use std::future::Future;

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Ends the program with the error's message and exit code 1.
fn exit_on_error<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Where a demo server listens: `--host` and `--port`.
#[derive(clap::Args)]
pub struct Listen {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

impl Listen {
    /// A daemon listening where the flags say.
    pub async fn bind(&self) -> Result<rmi::Daemon, rmi::Error> {
        let addr = rmi::Endpoint::new(&self.host, self.port).to_string();
        rmi::Daemon::bind(addr.as_str()).await
    }
}

/// Sets up logging, runs a demo's `main` body and exits with its error, if any.
pub async fn run_main<F, E>(body: F)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    init_logging();
    exit_on_error(body.await);
}

/// Registers `uri` as `name` in the name server, says `ready`, then serves until Ctrl-C and
/// removes the name on the way out.
pub async fn serve_named(
    daemon: rmi::Daemon,
    name: String,
    uri: rmi::ObjectUri,
    ready: String,
) -> Result<(), Box<dyn std::error::Error>> {
    rmi::locate_ns()
        .await?
        .register(name.clone(), uri)
        .await??;
    println!("{ready}");
    tokio::spawn(shutdown_on_ctrl_c(daemon.clone(), vec![name]));
    daemon.serve().await?;
    Ok(())
}

/// Waits for Ctrl-C, then shuts `daemon` down and removes `names` from the name server.
async fn shutdown_on_ctrl_c(daemon: rmi::Daemon, names: Vec<String>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    if let Ok(ns) = rmi::locate_ns().await {
        for name in names {
            let _ = ns.remove(name).await;
        }
    }
    daemon.shutdown().await;
}
