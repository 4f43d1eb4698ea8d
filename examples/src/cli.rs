//! What the demo programs share: logging, their listening address, error exits, and serving
//! a named object until Ctrl-C.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

/// Where a demo server listens (`--host`, `--port`) and how long its name outlives it
/// (`--name-ttl`).
#[derive(clap::Args)]
pub struct Listen {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The lease on the server's name, in seconds: renewed while it runs, so a server killed
    /// with `kill -9` disappears from the name server within this time.
    #[arg(long, default_value_t = 10.0)]
    pub name_ttl: f64,
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

/// Listens where `listen` says, hosts `object` under `name` (with a lease the daemon renews),
/// prints `ready(uri)`, then serves until Ctrl-C; shutting down removes the name.
pub async fn serve_named<P, O>(
    listen: &Listen,
    name: &str,
    object: O,
    ready: impl FnOnce(&rmi::ObjectUri) -> String,
) -> Result<(), Box<dyn std::error::Error>>
where
    P: rmi::Proxy,
    O: Send + Sync + 'static,
    Arc<O>: rmi::Expose<P>,
{
    let ns = rmi::locate_ns().await?;
    let daemon = listen.bind().await?;
    let uri = daemon
        .register_named(&ns, name, object, listen.lease()?)
        .await?;
    println!("{}", ready(&uri));
    serve_until_ctrl_c(&daemon).await
}

impl Listen {
    /// Registration options with the lease `--name-ttl` asks for.
    pub fn lease(&self) -> Result<rmi::RegisterOptions, String> {
        let ttl = Duration::try_from_secs_f64(self.name_ttl)
            .map_err(|_| format!("--name-ttl {}: give a number of seconds", self.name_ttl))?;
        Ok(rmi::RegisterOptions::default().ttl(ttl))
    }
}

/// Serves until Ctrl-C, then shuts the daemon down (which removes its names).
pub async fn serve_until_ctrl_c(daemon: &rmi::Daemon) -> Result<(), Box<dyn std::error::Error>> {
    let stopper = daemon.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stopper.shutdown().await;
        }
    });
    daemon.serve().await?;
    Ok(())
}
