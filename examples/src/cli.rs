//! What the demo programs share: logging, their flags for where to listen, and error exits.
//! The rmi calls themselves are in each program, where they can be read.

use std::future::Future;
use std::time::Duration;

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise. tarpc's lines about deadlines
/// that ran out are left out unless `RUST_LOG` names tarpc: the caller already has the error.
/// With the `otel` feature, the spans are also exported over OTLP if
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, until what it returns is dropped.
fn init_logging() -> impl Sized {
    let filter = rmi::log_filter(std::env::var("RUST_LOG").ok().as_deref());
    #[cfg(feature = "otel")]
    {
        let program = std::env::args().next().unwrap_or_default();
        let program = std::path::Path::new(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let log = tracing_subscriber::EnvFilter::new(filter);
        exit_on_error(rmi::otel::init_logging(log, &program.unwrap_or_default()))
    }
    #[cfg(not(feature = "otel"))]
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init()
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

/// Where a demo server listens and what its URIs say (`--host`, `--port`, `--advertise`),
/// its objects' ids (`--id`), how long its name outlives it (`--name-ttl`), how long it
/// lets calls finish when stopped (`--grace-secs`) and where it serves metrics (`--metrics`).
#[derive(clap::Args)]
pub struct Listen {
    /// The address to listen on: this host's address for clients on other machines,
    /// 0.0.0.0 for every address.
    #[arg(long, env = "RMI_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The address (HOST or HOST:PORT) written into the URIs and registered in the name
    /// server, when clients reach this server at another one (NAT, containers).
    #[arg(long, env = "RMI_ADVERTISE")]
    pub advertise: Option<String>,
    /// The object's id (with `--port`, a restarted server keeps its URI); by default a new
    /// random one. A server hosting several objects gives each `ID.<object>`.
    #[arg(long)]
    pub id: Option<String>,
    /// The lease on the server's name, in seconds: renewed while it runs, so a server killed
    /// with `kill -9` disappears from the name server within this time.
    #[arg(long, default_value_t = 10.0)]
    pub name_ttl: f64,
    /// On Ctrl-C or SIGTERM, how long calls in flight may take to finish before they are
    /// cancelled; a second signal stops at once.
    #[arg(long, default_value_t = 10.0)]
    pub grace_secs: f64,
    /// Serve metrics (calls by object, method and outcome; durations; connections) in
    /// Prometheus' text format at http://ADDR/metrics.
    #[arg(long, env = rmi::METRICS_ENV, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

impl Listen {
    /// `builder` with what the flags say of the daemon: its grace period, the address its
    /// URIs name, and where metrics are served. The program builds and binds the daemon itself, where it can be read.
    pub fn settings(&self, builder: rmi::DaemonBuilder) -> Result<rmi::DaemonBuilder, String> {
        let builder = builder
            .grace_period(seconds("--grace-secs", self.grace_secs)?)
            .metrics(self.metrics);
        Ok(match &self.advertise {
            Some(advertise) => builder.advertise(advertise),
            None => builder,
        })
    }

    /// The address to listen on: `--host` (brackets of an IPv6 address taken off) and `--port`.
    pub fn address(&self) -> (&str, u16) {
        (rmi::unbracket(&self.host), self.port)
    }

    /// The id of the server's object: `--id`, else a new one.
    pub fn object_id(&self) -> String {
        self.id.clone().unwrap_or_else(rmi::new_object_id)
    }

    /// The id of the server's object `part`, for servers hosting several: `ID.part`.
    pub fn object_id_of(&self, part: &str) -> String {
        match &self.id {
            Some(id) => format!("{id}.{part}"),
            None => rmi::new_object_id(),
        }
    }

    /// Registration options with the lease `--name-ttl` asks for.
    pub fn lease(&self) -> Result<rmi::RegisterOptions, String> {
        Ok(rmi::RegisterOptions::default().ttl(seconds("--name-ttl", self.name_ttl)?))
    }
}

fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} {value}: give a number of seconds"))
}

/// Sets up logging, runs a demo's `main` body and exits with its error, if any.
pub async fn run_main<F, E>(body: F)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let _logging = init_logging();
    exit_on_error(body.await);
}
