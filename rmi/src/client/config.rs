//! [`ClientConfig`]: how proxies connect: the key they prove to daemons, TLS, their timeouts
//! and the largest reply they read. Proxies made from
//! one config use it for everything they connect to on their behalf (binding again, the name
//! server that resolves their `rminame:` URIs).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::security::tls::ClientTls;
use crate::security::Key;
use crate::wire::{DEFAULT_TIMEOUT, LARGEST_FRAME_BYTES, MAX_FRAME_BYTES, SMALLEST_FRAME_BYTES};
use crate::{Error, ErrorKind};

/// How a client connects: the key it proves to daemons, if any.
///
/// `GreeterProxy::connect(uri)` uses the process's default, which takes its key from the file
/// that `RMI_KEY_FILE` names; a config of your own connects with another.
///
/// ```
/// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
/// # struct P; impl Ping for P { async fn ping(&self) {} }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// let key = rmi::Key::new("s3cret")?;
/// let daemon = rmi::Daemon::builder().key(key.clone()).bind("127.0.0.1:0").await?;
/// let uri = daemon.register(P)?;
/// daemon.spawn();
/// // Without the key, the daemon refuses the connection before any call.
/// let refused = rmi::ClientConfig::new().connect::<PingProxy>(&uri).await.unwrap_err();
/// assert!(matches!(refused.kind(), rmi::ErrorKind::Authentication { .. }));
/// let client = rmi::ClientConfig::new().key(key);
/// client.connect::<PingProxy>(&uri).await?.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) key: Option<Key>,
    pub(crate) tls: Option<ClientTls>,
    /// The timeout of the proxies it connects: finding, connecting and binding included.
    pub(crate) timeout: Duration,
    /// The most that opening one connection (TCP, TLS, handshake) may take.
    pub(crate) connect_timeout: Duration,
    /// The longest reply frame read; arguments are held to the daemon's own limit.
    pub(crate) max_frame_bytes: usize,
}

/// How long opening a connection may take unless `RMI_CONNECT_TIMEOUT` or
/// [`ClientConfig::connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            key: None,
            tls: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_frame_bytes: MAX_FRAME_BYTES,
        }
    }
}

impl ClientConfig {
    /// A config without a key: for daemons without one.
    pub fn new() -> Self {
        ClientConfig::default()
    }

    /// The longest reply (a result and its envelope) this client reads: 16 MiB unless
    /// `RMI_MAX_FRAME_BYTES` says otherwise, at least 128 KiB, at most 4 GiB. A longer reply
    /// ends its connection with an error that says so. The arguments a proxy sends are held
    /// to the limit of the daemon it calls (`DaemonBuilder::max_frame_bytes`), which tells
    /// it when it connects. Raise both to send larger values, or send them as a
    /// [`Stream`](crate::Stream), which carries any size.
    ///
    /// ```
    /// let config = rmi::ClientConfig::new().max_frame_bytes(64 * 1024 * 1024);
    /// # drop(config);
    /// ```
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes.clamp(SMALLEST_FRAME_BYTES, LARGEST_FRAME_BYTES);
        self
    }

    /// A config with the key in the file `RMI_KEY_FILE` names, if set, TLS as `RMI_TLS_CA`
    /// (with `RMI_TLS_CERT` and `RMI_TLS_KEY`) say, if set, the connect timeout
    /// `RMI_CONNECT_TIMEOUT` gives in seconds, and the frame limit `RMI_MAX_FRAME_BYTES`
    /// gives in bytes, if set.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidUri`] if `RMI_CONNECT_TIMEOUT` is not a number of seconds greater
    ///   than 0, or `RMI_MAX_FRAME_BYTES` is not a number of bytes within the limits.
    /// - [`ErrorKind::BadKey`] if the key file `RMI_KEY_FILE` names cannot be read or is empty.
    /// - [`ErrorKind::Tls`] if the TLS files the `RMI_TLS_*` variables name cannot be used.
    pub fn from_env() -> Result<Self, Error> {
        let connect_timeout = crate::net::seconds_from_env(crate::net::CONNECT_TIMEOUT_ENV)
            .map_err(|reason| {
                Error::new(ErrorKind::InvalidUri {
                    uri: crate::net::CONNECT_TIMEOUT_ENV.into(),
                    reason,
                })
            })?;
        let max_frame_bytes = crate::wire::frame_limit_from_env().map_err(|reason| {
            Error::new(ErrorKind::InvalidUri {
                uri: crate::wire::FRAME_LIMIT_ENV.into(),
                reason,
            })
        })?;
        Ok(ClientConfig {
            key: Key::from_env()?,
            tls: ClientTls::from_env()?,
            connect_timeout: connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            max_frame_bytes: max_frame_bytes.unwrap_or(MAX_FRAME_BYTES),
            ..ClientConfig::default()
        })
    }

    /// This config, giving the proxies it connects `timeout` (default 30 s): how long each
    /// call waits, and how long connecting may take in all (finding the name server, the
    /// lookup, connecting, the handshake and binding).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = rmi::ClientConfig::new().timeout(Duration::from_secs(2));
    /// # let _ = config;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(crate::wire::MAX_TIMEOUT);
        self
    }

    /// This config, giving up on opening a connection (TCP, TLS and the handshake) after
    /// `timeout` (default 5 s, or `RMI_CONNECT_TIMEOUT`): a host that drops packets is given
    /// up on then rather than after the call's whole timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.min(crate::wire::MAX_TIMEOUT);
        self
    }

    /// This config, connecting over TLS as `tls` says (to every daemon).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// This config, proving `key` to daemons.
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// This config, proving the key in the file at `path`, if one is given.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadKey`] if the file cannot be read or is empty.
    ///
    /// ```
    /// let none = rmi::ClientConfig::new().key_file(None)?;
    /// # Ok::<(), rmi::Error>(())
    /// ```
    pub fn key_file(self, path: Option<&std::path::Path>) -> Result<Self, Error> {
        match path {
            Some(path) => Ok(self.key(Key::from_file(path)?)),
            None => Ok(self),
        }
    }

    /// Whether this config connects over TLS (to every daemon).
    ///
    /// ```
    /// assert!(!rmi::ClientConfig::new().speaks_tls());
    /// ```
    pub fn speaks_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The process's default: [`from_env`](ClientConfig::from_env), read once.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadKey`], quoting `from_env`'s error, if `from_env` failed (a bad key file, TLS
    /// file or timeout variable); every later call fails the same way.
    pub fn process_default() -> Result<Arc<ClientConfig>, Error> {
        static DEFAULT: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                ClientConfig::from_env()
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|reason| {
                Error::new(ErrorKind::BadKey {
                    origin: format!("${}", crate::security::KEY_FILE_ENV),
                    reason,
                })
            })
    }

    /// This config, shared by what is connected with it.
    pub(crate) fn to_arc(&self) -> Arc<ClientConfig> {
        Arc::new(self.clone())
    }
}
