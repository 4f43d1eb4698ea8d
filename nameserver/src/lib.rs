//! The rmi name server: names mapped to object URIs, with metadata tags, leases and
//! discovery, served as the rmi object `rmi.nameserver` (see [`rmi::NameServer`]). The
//! `rmi-ns` binary runs it; [`NameServerHost`] runs it inside another program.

pub mod broadcast;
mod server;
mod sqlite;
pub mod store;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use rmi::{Daemon, NameServerProxy, ObjectUri};
use tokio::task::JoinHandle;

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
}

impl std::str::FromStr for Storage {
    type Err = String;

    /// `memory` or `sqlite:PATH`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "memory" => Ok(Storage::Memory),
            Some(("sqlite", path)) if !path.is_empty() => Ok(Storage::Sqlite(path.into())),
            _ => Err(format!(
                "'{text}' is not a storage: use 'memory' or 'sqlite:PATH'"
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
    pub async fn bind(addr: &str) -> Result<Self, StartError> {
        Self::start(Config::memory(addr)).await
    }

    /// Opens the storage, listens, and starts the lease sweeper and the discovery responder.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let server = match &config.storage {
            Storage::Memory => NameServerImpl::new(MemoryStore::default()),
            Storage::Sqlite(path) => NameServerImpl::new(SqliteStore::open(path)?),
        };
        let daemon = match &config.key {
            Some(key) => Daemon::builder().key(key.clone()),
            None => Daemon::builder().no_key(),
        };
        let daemon = daemon.bind(config.addr.as_str()).await?;
        let uri =
            daemon.register_with_id::<NameServerProxy, _>(rmi::NAME_SERVER_ID, server.clone())?;
        let mut tasks = vec![tokio::spawn(server.sweep_expired(SWEEP_PERIOD))];
        if let Some(port) = config.broadcast_port {
            tasks.extend(start_responder(&uri, daemon.local_addr().ip(), port).await);
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
async fn start_responder(uri: &ObjectUri, ip: IpAddr, port: u16) -> Option<JoinHandle<()>> {
    if ip.is_loopback() {
        tracing::info!("listening on loopback only: no discovery responder");
        return None;
    }
    match tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(socket) => Some(tokio::spawn(broadcast::respond(socket, uri.clone()))),
        Err(e) => {
            tracing::warn!("no discovery responder on UDP port {port}: {e}");
            None
        }
    }
}
