//! Connecting a proxy: the entry points (`rmi::connect`, [`ClientConfig::connect`]) and the
//! [`Directory`] they hand the client, which resolves names through the name server and binds
//! through a daemon's own object. Both are rmi calls the client makes itself; here, above the
//! client and the server, they are passed in rather than imported.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::client::ClientConfig;
use crate::daemon::builtin::DaemonObjectProxy;
use crate::describe::{BindError, Binding, TraitDescriptor};
use crate::proxy::{Binder, Directory, Proxy, ProxyCore};
use crate::uri::{IntoUri, ObjectUri, Uri};
use crate::Error;

/// Names through the name server, binding through `rmi.daemon`: what every proxy uses.
pub(crate) static DIRECTORY: NameServerDirectory = NameServerDirectory;

/// The [`Directory`] of rmi: `rminame:` and `rmimeta:` URIs resolved by the name server,
/// objects bound by their daemon's own object ([`DaemonObject`](crate::DaemonObject)).
pub(crate) struct NameServerDirectory;

impl Directory for NameServerDirectory {
    fn resolve<'a>(
        &'a self,
        uri: &'a Uri,
        config: &'a Arc<ClientConfig>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ObjectUri, Error>> {
        async move {
            match uri {
                Uri::Object(object) => Ok(object.clone()),
                Uri::Name(name) => crate::nameserver::resolve_name(name, config, timeout).await,
                Uri::Meta(meta) => crate::nameserver::resolve_meta(meta, config, timeout).await,
            }
        }
        .boxed()
    }

    fn daemon_trait(&self) -> &'static TraitDescriptor {
        DaemonObjectProxy::DESCRIPTOR
    }

    fn bind(
        &self,
        daemon: ProxyCore,
        id: String,
        trait_name: Option<String>,
    ) -> BoxFuture<'static, Result<Result<Binding, BindError>, Error>> {
        let daemon = DaemonObjectProxy::from_core(daemon);
        async move {
            match trait_name {
                Some(trait_name) => daemon.bind(id, trait_name).await,
                None => daemon.describe(id).await,
            }
        }
        .boxed()
    }
}

/// Connects a proxy of type `P` to `uri`, resolving `rminame:` URIs through the name server.
///
/// `GreeterProxy::connect(uri)` calls this; it is the same as `rmi::connect::<GreeterProxy>`.
///
/// # Errors
///
/// As [`ClientConfig::connect`] (an unparsable URI, a name server or daemon that cannot be
/// reached, an unknown object or another trait), and [`ErrorKind::BadKey`](crate::ErrorKind::BadKey) if the process's
/// default config ([`ClientConfig::process_default`]) cannot be read.
///
/// ```
/// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
/// # struct P; impl Ping for P { async fn ping(&self) {} }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(P)?;
/// daemon.spawn();
/// let pinger: PingProxy = rmi::connect(uri.to_string()).await?;
/// pinger.ping().await?;
/// # Ok(()) }
/// ```
pub async fn connect<P: Proxy>(uri: impl IntoUri) -> Result<P, Error> {
    ClientConfig::process_default()?.connect(uri).await
}

/// The typed entry point on a config: here, with the directory it passes in, so that the
/// client layer imports neither the name server nor the daemon's own object.
impl ClientConfig {
    /// Connects a proxy of type `P` to `uri` with this config.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidUri`](crate::ErrorKind::InvalidUri) if `uri` is text that does not parse; for a `rminame:` or
    ///   `rmimeta:` URI, [`ErrorKind::NameServerUnreachable`](crate::ErrorKind::NameServerUnreachable), [`ErrorKind::NameNotFound`](crate::ErrorKind::NameNotFound) or
    ///   [`ErrorKind::NoObjectWithTags`](crate::ErrorKind::NoObjectWithTags) if the name server cannot resolve it.
    /// - [`ErrorKind::Connect`](crate::ErrorKind::Connect) if the daemon cannot be reached within the timeout,
    ///   [`ErrorKind::Authentication`](crate::ErrorKind::Authentication) if the key or TLS handshake fails.
    /// - [`ErrorKind::UnknownObject`](crate::ErrorKind::UnknownObject) if the daemon has no such object, [`ErrorKind::WrongTrait`](crate::ErrorKind::WrongTrait) if it
    ///   serves another trait than `P`'s.
    pub async fn connect<P: Proxy>(&self, uri: impl IntoUri) -> Result<P, Error> {
        let binder = Binder::Typed(P::DESCRIPTOR);
        let target = uri.into_uri()?;
        let core =
            ProxyCore::connect(target, binder, self.timeout, self.to_arc(), &DIRECTORY).await?;
        Ok(P::from_core(core))
    }
}
