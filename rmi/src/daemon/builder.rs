//! [`DaemonBuilder`]: a daemon's key and limits, set before it listens.

use std::time::Duration;

use tokio::net::ToSocketAddrs;

use super::Daemon;
use crate::security::Key;
use crate::Error;

/// How long a client may take over the handshake unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a daemon is set up with.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The key clients must prove; none lets anyone call.
    pub(crate) key: Option<Key>,
    /// How long a client may take over the handshake.
    pub(crate) handshake_timeout: Duration,
}

/// Sets up a daemon: its key, then [`bind`](DaemonBuilder::bind).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::builder()
///     .key(rmi::Key::new("s3cret")?)
///     .bind("127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DaemonBuilder {
    /// `None`: the key `RMI_KEY_FILE` names, if any.
    key: Option<Option<Key>>,
    handshake_timeout: Duration,
}

impl DaemonBuilder {
    pub(crate) fn new() -> Self {
        DaemonBuilder {
            key: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Serves only clients that prove they hold `key` (and proves it holds it to them).
    /// Without this, the daemon uses the key in the file `RMI_KEY_FILE` names, if set.
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(Some(key));
        self
    }

    /// Serves anyone, even if `RMI_KEY_FILE` is set.
    pub fn no_key(mut self) -> Self {
        self.key = Some(None);
        self
    }

    /// How long a client may take over the handshake before it is dropped (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Listens on `addr` (port 0 picks a free port) with these settings.
    pub async fn bind(self, addr: impl ToSocketAddrs + std::fmt::Display) -> Result<Daemon, Error> {
        let key = match self.key {
            Some(key) => key,
            None => Key::from_env()?,
        };
        let settings = Settings {
            key,
            handshake_timeout: self.handshake_timeout,
        };
        Daemon::listen(addr, settings).await
    }
}
