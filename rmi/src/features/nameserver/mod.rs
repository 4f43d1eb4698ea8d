//! The name server's interface ([`NameServer`]), the values it deals in, finding one
//! ([`locate_ns`], in `locate`), and connecting proxies by URI or name ([`connect()`], in
//! `connect`).
//!
//! The name server is an ordinary rmi object: the `rmi-ns` binary hosts an implementation of
//! [`NameServer`] under the id [`NAME_SERVER_ID`], and clients call it through
//! [`NameServerProxy`].

mod connect;
mod failover;
mod locate;
mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::uri::ObjectUri;

pub use connect::connect;
pub(crate) use connect::DIRECTORY;
pub(crate) use failover::{locate_ns_among_with, reconnect};
pub use failover::{ns_endpoints_from_env, parse_ns_hosts, NS_CONNECT_TIMEOUT};
pub use locate::{
    locate_ns, locate_ns_at, ns_endpoint_from_env, DEFAULT_NS_BCPORT, DEFAULT_NS_HOST,
    DEFAULT_NS_PORT, DISCOVERY_REQUEST, PYRO_DISCOVERY_REQUEST,
};
pub(crate) use locate::{locate_ns_at_with, resolve_meta, resolve_name};

/// The object id of the name server on its daemon.
pub const NAME_SERVER_ID: &str = "rmi.nameserver";

/// A set of metadata tags, such as `tasks.worker`.
pub type Tags = BTreeSet<String>;

pub use crate::error::NsError;

/// One registration as the name server hands it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The object the name points at.
    pub uri: ObjectUri,
    /// Its metadata tags.
    pub meta: Tags,
    /// What is left of its lease; `None` for a registration without one.
    pub ttl_left: Option<Duration>,
}

/// How to register a name: see [`NameServer::register_with`].
///
/// ```
/// use std::time::Duration;
/// let options = rmi::RegisterOptions::default()
///     .safe()
///     .meta(["tasks.worker"])
///     .ttl(Duration::from_secs(10));
/// assert!(options.safe && options.meta.contains("tasks.worker"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterOptions {
    /// Refuse to replace a name that is already registered (to another URI).
    pub safe: bool,
    /// Metadata tags to attach.
    pub meta: Tags,
    /// A lease: the registration disappears unless renewed within this time.
    pub ttl: Option<Duration>,
}

impl RegisterOptions {
    /// Refuses to replace an existing registration of another URI.
    pub fn safe(mut self) -> Self {
        self.safe = true;
        self
    }

    /// Attaches metadata tags.
    pub fn meta<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.meta = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Gives the registration a lease of `ttl`; renew it with [`NameServer::renew`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// The name server: names mapped to object URIs, with metadata tags and leases.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ns = rmi::locate_ns().await?;
/// let uri: rmi::ObjectUri = "rmi:obj_00@127.0.0.1:7000".parse()?;
/// ns.register("server".into(), uri.clone()).await??;
/// assert_eq!(ns.lookup("server".into()).await??, uri);
/// # Ok(()) }
/// ```
#[crate::expose]
pub trait NameServer {
    /// Maps `name` to `uri`, replacing any earlier mapping, with no metadata and no lease.
    async fn register(&self, name: String, uri: ObjectUri) -> Result<(), NsError>;
    /// Maps `name` to `uri` as `options` say (safe, metadata, lease).
    async fn register_with(
        &self,
        name: String,
        uri: ObjectUri,
        options: RegisterOptions,
    ) -> Result<(), NsError>;
    /// Extends the lease of `name` to `ttl` from now, if it still maps to `uri`.
    async fn renew(&self, name: String, uri: ObjectUri, ttl: Duration) -> Result<(), NsError>;
    /// The URI registered under `name`.
    async fn lookup(&self, name: String) -> Result<ObjectUri, NsError>;
    /// The whole registration of `name`: URI, metadata, lease.
    async fn registration(&self, name: String) -> Result<Registration, NsError>;
    /// Removes `name`; returns whether it was registered.
    async fn remove(&self, name: String) -> Result<bool, NsError>;
    /// Every registration whose name starts with `prefix` (all of them for `None`).
    async fn list(&self, prefix: Option<String>)
        -> Result<BTreeMap<String, Registration>, NsError>;
    /// Every registration whose name matches `regex` from its start.
    async fn list_matching(&self, regex: String)
        -> Result<BTreeMap<String, Registration>, NsError>;
    /// Removes every name that matches `regex` from its start; returns how many.
    async fn remove_matching(&self, regex: String) -> Result<u64, NsError>;
    /// Replaces the metadata tags of `name`.
    async fn set_meta(&self, name: String, meta: Tags) -> Result<(), NsError>;
    /// Registrations that carry every one of `meta`.
    async fn lookup_all(&self, meta: Tags) -> Result<BTreeMap<String, Registration>, NsError>;
    /// Registrations that carry at least one of `meta`.
    async fn lookup_any(&self, meta: Tags) -> Result<BTreeMap<String, Registration>, NsError>;
    /// How many names are registered.
    async fn count(&self) -> Result<u64, NsError>;
    /// Answers when the name server is alive.
    async fn ping(&self);
}
