//! The rmi name server: names mapped to object URIs, with metadata tags, leases and
//! discovery, served as the rmi object `rmi.nameserver` (see [`rmi::NameServer`]). The
//! `rmi-ns` binary runs it; [`NameServerHost`] runs it inside another program.

#![warn(missing_docs)]
// Every public function that returns a `Result` says when it fails (`# Errors`).
#![warn(clippy::missing_errors_doc)]

pub mod broadcast;
pub mod cli;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "etcd")]
pub mod local_etcd;
pub mod pyro;
mod server;
mod sqlite;
pub mod store;
pub mod timed;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use rmi::{Daemon, NameServerProxy, ObjectUri};
use tokio::task::JoinHandle;

#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use server::NameServerImpl;
pub use sqlite::OpenError;
pub use store::{Entry, MemoryStore, SqliteStore, Store};

/// How often expired leases are deleted from the store (reads hide them at once).
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Where the names are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: gone when the name server stops.
    Memory,
    /// In a SQLite database at this path: kept across restarts.
    Sqlite(PathBuf),
    /// In an etcd cluster, shared with the other name servers pointed at it (needs the
    /// `etcd` feature).
    Etcd {
        /// The cluster's members, `http://HOST:PORT`.
        endpoints: Vec<String>,
        /// What every key starts with ([`DEFAULT_ETCD_PREFIX`] unless `--etcd-prefix` says).
        prefix: String,
    },
}

/// What the names' keys start with in etcd unless `--etcd-prefix` says.
pub const DEFAULT_ETCD_PREFIX: &str = "/rmi/";

/// How to build `rmi-ns` with etcd support, for the messages of a build without it.
const ETCD_BUILD_HINT: &str = "this rmi-ns was built without etcd support; build it with `cargo build --release -p rmi-nameserver --features etcd` (which needs protoc: apt-get install protobuf-compiler)";

impl std::str::FromStr for Storage {
    type Err = String;

    /// `memory`, `sqlite:PATH` or `etcd:http://HOST:PORT[,http://HOST:PORT…]`.
    ///
    /// ```
    /// use rmi_nameserver::Storage;
    /// assert_eq!("memory".parse(), Ok(Storage::Memory));
    /// let etcd = "etcd:http://10.0.0.1:2379,http://10.0.0.2:2379".parse::<Storage>();
    /// if cfg!(feature = "etcd") {
    ///     let Ok(Storage::Etcd { endpoints, prefix }) = etcd else { panic!("{etcd:?}") };
    ///     assert_eq!(endpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    ///     assert_eq!(prefix, "/rmi/");
    /// } else {
    ///     assert!(etcd.unwrap_err().contains("--features etcd"));
    /// }
    /// ```
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "memory" => Ok(Storage::Memory),
            Some(("sqlite", path)) if !path.is_empty() => Ok(Storage::Sqlite(path.into())),
            Some(("etcd", _)) if !cfg!(feature = "etcd") => {
                Err(format!("'{text}': {ETCD_BUILD_HINT}"))
            }
            Some(("etcd", list)) => {
                let endpoints: Vec<String> = list.split(',').map(|e| e.trim().to_owned()).collect();
                match endpoints.iter().find(|e| {
                    !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 9
                }) {
                    Some(bad) => Err(format!(
                        "'{bad}' in '{text}' is not an etcd endpoint: write etcd:http://HOST:PORT[,http://HOST:PORT…]"
                    )),
                    None => Ok(Storage::Etcd {
                        endpoints,
                        prefix: DEFAULT_ETCD_PREFIX.to_owned(),
                    }),
                }
            }
            _ => Err(format!(
                "'{text}' is not a storage: use 'memory', 'sqlite:PATH' or 'etcd:http://HOST:PORT[,…]'"
            )),
        }
    }
}

/// How to run a name server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on (`127.0.0.1:9090`; port 0 picks a free one).
    pub addr: String,
    /// Where the names are kept.
    pub storage: Storage,
    /// The UDP port to answer discovery broadcasts on; `None` for no responder.
    pub broadcast_port: Option<u16>,
    /// The key clients must prove; `None` lets anyone register and remove names.
    pub key: Option<rmi::Key>,
}

impl Config {
    /// In memory, on `addr`, without a discovery responder.
    pub fn memory(addr: impl Into<String>) -> Config {
        Config {
            addr: addr.into(),
            storage: Storage::Memory,
            broadcast_port: None,
            key: None,
        }
    }
}

/// Why a name server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its daemon could not listen.
    #[error(transparent)]
    Listen(#[from] rmi::Error),
    /// Its database could not be used.
    #[error(transparent)]
    Storage(#[from] OpenError),
    /// Its etcd cluster could not be used.
    #[error(transparent)]
    Etcd(#[from] EtcdOpenError),
}

/// Why an etcd cluster could not be used as a name server's store.
#[derive(Debug, thiserror::Error)]
#[error("cannot keep the names in etcd at {endpoints}: {reason}")]
pub struct EtcdOpenError {
    /// The endpoints given.
    pub endpoints: String,
    /// What went wrong, and what to do.
    pub reason: String,
}

/// A name server running on its own daemon, with its background tasks.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = rmi_nameserver::NameServerHost::start(rmi_nameserver::Config::memory("127.0.0.1:0")).await?;
/// println!("NS running on {}", ns.uri().endpoint());
/// ns.serve().await?;
/// # Ok(()) }
/// ```
pub struct NameServerHost {
    daemon: Daemon,
    uri: ObjectUri,
    tasks: Vec<JoinHandle<()>>,
}

impl NameServerHost {
    /// Starts an in-memory name server on `addr`, without a discovery responder.
    ///
    /// # Errors
    ///
    /// [`StartError::Listen`] if its daemon cannot listen on `addr` (an [`rmi::ErrorKind::Listen`]),
    /// or the `RMI_TLS_*` or `RMI_MAX_FRAME_BYTES` settings it reads cannot be used.
    pub async fn bind(addr: &str) -> Result<Self, StartError> {
        Self::start(Config::memory(addr)).await
    }

    /// Opens the storage, listens, and starts the lease sweeper and the discovery responder.
    ///
    /// # Errors
    ///
    /// - [`StartError::Storage`] if the SQLite database cannot be opened (see
    ///   [`SqliteStore::open`]); [`StartError::Etcd`] if the etcd cluster cannot be used, or
    ///   this build lacks the `etcd` feature.
    /// - [`StartError::Listen`] with the [`rmi::Error`] of binding the daemon
    ///   ([`DaemonBuilder::bind`](rmi::DaemonBuilder::bind)).
    ///
    /// A discovery port that is taken is logged, not returned.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let server = match &config.storage {
            Storage::Memory => NameServerImpl::new(MemoryStore::default()),
            Storage::Sqlite(path) => NameServerImpl::new(SqliteStore::open(path)?),
            #[cfg(feature = "etcd")]
            Storage::Etcd { endpoints, prefix } => {
                NameServerImpl::new(EtcdStore::connect(endpoints, prefix).await?)
            }
            #[cfg(not(feature = "etcd"))]
            Storage::Etcd { endpoints, .. } => {
                return Err(StartError::Etcd(EtcdOpenError {
                    endpoints: endpoints.join(","),
                    reason: ETCD_BUILD_HINT.to_owned(),
                }))
            }
        };
        let daemon = match &config.key {
            Some(key) => Daemon::builder().key(key.clone()),
            None => Daemon::builder().no_key(),
        };
        let daemon = daemon.bind(config.addr.as_str()).await?;
        let uri =
            daemon.register_with_id::<NameServerProxy, _>(rmi::NAME_SERVER_ID, server.clone())?;
        // The same names, to Python: Pyro5's name server interface.
        let pyro_names = pyro::PyroNames::new(server.clone(), uri.endpoint().clone())?;
        daemon.register_with_id::<pyro::PyroNameServerProxy, _>(
            pyro::PYRO_NAME_SERVER_ID,
            pyro_names,
        )?;
        let mut tasks = vec![tokio::spawn(server.sweep_expired(SWEEP_PERIOD))];
        if let Some(port) = config.broadcast_port {
            tasks.extend(start_responder(&daemon, &uri, port).await);
        }
        Ok(NameServerHost { daemon, uri, tasks })
    }

    /// The daemon hosting the name server.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// `rmi:rmi.nameserver@HOST:PORT`.
    pub fn uri(&self) -> &ObjectUri {
        &self.uri
    }

    /// Serves until [`shutdown`](NameServerHost::shutdown).
    ///
    /// # Errors
    ///
    /// [`rmi::ErrorKind::AlreadyServing`] if its daemon is already serving (see
    /// [`Daemon::serve`]).
    pub async fn serve(&self) -> Result<(), rmi::Error> {
        self.daemon.serve().await
    }

    /// Stops serving and the background tasks.
    pub async fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.daemon.shutdown().await;
    }
}

impl Drop for NameServerHost {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the discovery responder on UDP `port`, unless the name server listens on loopback
/// only (no other host could reach it) or the port is taken (another name server answers).
async fn start_responder(daemon: &Daemon, uri: &ObjectUri, port: u16) -> Option<JoinHandle<()>> {
    if daemon.local_addr().ip().is_loopback() {
        tracing::info!("listening on loopback only: no discovery responder");
        return None;
    }
    match tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(socket) => Some(tokio::spawn(broadcast::respond(
            socket,
            daemon.clone(),
            uri.clone(),
        ))),
        Err(e) => {
            tracing::warn!("no discovery responder on UDP port {port}: {e}");
            None
        }
    }
}
