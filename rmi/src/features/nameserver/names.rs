//! The names a daemon registers for its objects ([`Daemon::register_named`],
//! [`Daemon::register_name`]): their leases, renewed in the background, and their removal on
//! shutdown. Written here, above the daemon, because registering is a call to the name
//! server: the daemon knows only that shutdown removes them first.

use std::sync::Arc;
use std::time::Duration;

use super::{NameServerProxy, NsError, RegisterOptions};
use crate::expose::Expose;
use crate::proxy::Proxy;
use crate::uri::ObjectUri;
use crate::ErrorKind;
use crate::{Daemon, Error};

/// How long shutdown waits for the name server to remove one name.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest interval between renewals.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_millis(50);

impl Daemon {
    /// Hosts `object` and registers it in the name server `ns` as `name`, as `options` say.
    /// With a lease (`options.ttl`), the daemon renews it in the background, and registers
    /// the name again if the name server lost it; if this process dies, the name disappears
    /// within the lease. [`shutdown`](Daemon::shutdown) removes the name.
    ///
    /// # Errors
    ///
    /// As [`register`](Daemon::register) and [`register_name`](Daemon::register_name); if
    /// registering the name fails, the object is unregistered again.
    ///
    /// ```no_run
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # async fn run() -> Result<(), rmi::Error> {
    /// use std::time::Duration;
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let ns = rmi::locate_ns().await?;
    /// let options = rmi::RegisterOptions::default().ttl(Duration::from_secs(10));
    /// let uri = daemon.register_named(&ns, "pinger", P, options).await?;
    /// daemon.serve().await?; // renews the lease until shut down
    /// # Ok(()) }
    /// ```
    pub async fn register_named<P, O>(
        &self,
        ns: &NameServerProxy,
        name: &str,
        object: O,
        options: RegisterOptions,
    ) -> Result<ObjectUri, Error>
    where
        P: Proxy,
        O: Send + Sync + 'static,
        Arc<O>: Expose<P>,
    {
        let uri = self.register::<P, O>(object)?;
        let registered = self.register_name(ns, name, &uri, options).await;
        if registered.is_err() {
            self.unregister(uri.id());
        }
        registered
    }

    /// Registers the object at `uri`, which this daemon hosts, in the name server `ns` as
    /// `name`, with a lease renewed as [`register_named`](Daemon::register_named) does, and
    /// removed on shutdown. Returns the URI registered: for a daemon listening on every
    /// address, the one with the address this host reaches the name server from.
    ///
    /// With [`register_with_id`](Daemon::register_with_id), a server restarted with the same
    /// id and port keeps its URI, so even `rmi:` proxies to it reconnect.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NameServerRefused`] with the name server's [`NsError`] (an invalid name, tag
    /// or lease, a name taken with `safe` set, its storage failing); the call's own error
    /// ([`ErrorKind::Timeout`], [`ErrorKind::Disconnected`], …) if the name server does not answer.
    ///
    /// ```no_run
    /// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
    /// # struct P; impl Ping for P { async fn ping(&self) {} }
    /// # async fn run() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:7000").await?;
    /// let ns = rmi::locate_ns().await?;
    /// let uri = daemon.register_with_id("pinger", P)?;
    /// daemon.register_name(&ns, "pinger", &uri, rmi::RegisterOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_name(
        &self,
        ns: &NameServerProxy,
        name: &str,
        uri: &ObjectUri,
        options: RegisterOptions,
    ) -> Result<ObjectUri, Error> {
        let uri = self.uri_towards(uri, ns.uri().endpoint()).await;
        register(ns, name, &uri, &options).await?;
        let named = Named {
            ns: ns.clone(),
            name: name.to_owned(),
            uri: uri.clone(),
            options,
        };
        let renewal = named
            .options
            .ttl
            .map(|_| self.spawn_until_stopped(named.clone().renew()));
        self.before_stopping(async move {
            // Renewing now could register the name again once it is removed.
            renewal.iter().for_each(tokio::task::AbortHandle::abort);
            named.remove().await;
        });
        Ok(uri)
    }
}

/// One name a daemon registered.
#[derive(Clone)]
struct Named {
    ns: NameServerProxy,
    name: String,
    uri: ObjectUri,
    options: RegisterOptions,
}

impl Named {
    /// Removes the name from its name server within [`REMOVE_TIMEOUT`]; a name server that
    /// does not answer in time lets the lease (if any) remove it.
    async fn remove(self) {
        let removal = self.ns.with_timeout(REMOVE_TIMEOUT);
        match removal.remove(self.name.clone()).await {
            Ok(Ok(_)) => tracing::debug!(name = %self.name, "name removed"),
            Ok(Err(e)) => tracing::warn!(name = %self.name, "name not removed: {e}"),
            Err(e) => tracing::warn!(name = %self.name, "name not removed: {e}"),
        }
    }

    /// Renews the lease every third of its time to live, for as long as the daemon runs
    /// (which stops it). A name the name server lost (it restarted, or the lease ran out
    /// while it was unreachable) is registered again.
    async fn renew(mut self) {
        let Some(ttl) = self.options.ttl else {
            return;
        };
        let interval = (ttl / 3).max(MIN_RENEWAL_INTERVAL);
        loop {
            tokio::time::sleep(interval).await;
            // A renewal waits at most a third of the lease, however long the proxy's calls
            // may: a hung name server then leaves time to move to another and register there
            // before the lease runs out.
            let renewed = self
                .ns
                .with_timeout(interval)
                .renew(self.name.clone(), self.uri.clone(), ttl)
                .await;
            match renewed {
                Ok(Ok(())) => {}
                Ok(Err(NsError::NotFound(_))) => {
                    tracing::info!(name = %self.name, "lease lost; registering the name again");
                    self.register_again(interval).await;
                }
                Ok(Err(e)) => tracing::warn!(name = %self.name, "lease not renewed: {e}"),
                Err(e) => {
                    tracing::warn!(name = %self.name, "lease not renewed: {e}");
                    // The connection broke: the name server may have restarted, or died with
                    // others of its list still up. Reconnect (to the others first) and
                    // register again; if none answers, try again at the next renewal.
                    if let Ok(ns) = super::reconnect(&self.ns).await {
                        self.ns = ns;
                        self.register_again(interval).await;
                    }
                }
            }
        }
    }

    /// Registers the name again, waiting at most `within`.
    async fn register_again(&self, within: Duration) {
        let ns = self.ns.with_timeout(within);
        if let Err(e) = register(&ns, &self.name, &self.uri, &self.options).await {
            tracing::warn!(name = %self.name, "cannot register the name again: {e}");
        }
    }
}

/// Registers `uri` as `name` with `options`.
async fn register(
    ns: &NameServerProxy,
    name: &str,
    uri: &ObjectUri,
    options: &RegisterOptions,
) -> Result<(), Error> {
    warn_if_unreachable(ns, name, uri);
    ns.register_with(name.to_owned(), uri.clone(), options.clone())
        .await?
        .map_err(|source| {
            Error::new(ErrorKind::NameServerRefused {
                name_server: ns.uri().endpoint().to_string(),
                source,
            })
        })
}

/// Warns when a loopback URI goes into a name server on another host: clients elsewhere
/// would be sent to their own machine.
fn warn_if_unreachable(ns: &NameServerProxy, name: &str, uri: &ObjectUri) {
    let ns_host = ns.uri().endpoint().host().to_owned();
    if crate::net::is_loopback_host(uri.endpoint().host())
        && !crate::net::is_loopback_host(&ns_host)
    {
        tracing::warn!(
            name,
            %uri,
            "registering a loopback URI in the name server at {ns_host}: clients on other machines cannot reach it; listen on this host's address (RMI_HOST or --host), or advertise one (RMI_ADVERTISE or --advertise)"
        );
    }
}
