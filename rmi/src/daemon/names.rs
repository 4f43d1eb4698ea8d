//! The names a daemon registered for its objects: their leases, renewed in the background,
//! and their removal on shutdown.

use std::sync::Mutex;
use std::time::Duration;

use super::stop::Stop;
use crate::nameserver::{NameServerProxy, NsError, RegisterOptions};
use crate::uri::ObjectUri;
use crate::Error;

/// How long shutdown waits for the name server to remove one name.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest interval between renewals.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_millis(50);

/// One name this daemon registered.
#[derive(Clone)]
pub(crate) struct Named {
    pub(crate) ns: NameServerProxy,
    pub(crate) name: String,
    pub(crate) uri: ObjectUri,
    pub(crate) options: RegisterOptions,
}

/// The names to remove on shutdown.
#[derive(Default)]
pub(crate) struct Names(Mutex<Vec<Named>>);

impl Names {
    pub(crate) fn add(&self, named: Named) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(named);
    }

    /// Removes every name from its name server, each within [`REMOVE_TIMEOUT`]; a name server
    /// that does not answer in time lets the lease (if any) remove it.
    pub(crate) async fn remove_all(&self) {
        let names = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for named in names {
            let removal = named.ns.clone().with_timeout(REMOVE_TIMEOUT);
            match removal.remove(named.name.clone()).await {
                Ok(Ok(_)) => tracing::debug!(name = %named.name, "name removed"),
                Ok(Err(e)) => tracing::warn!(name = %named.name, "name not removed: {e}"),
                Err(e) => tracing::warn!(name = %named.name, "name not removed: {e}"),
            }
        }
    }
}

/// Registers `uri` as `name` with `options`.
pub(crate) async fn register(
    ns: &NameServerProxy,
    name: &str,
    uri: &ObjectUri,
    options: &RegisterOptions,
) -> Result<(), Error> {
    warn_if_unreachable(ns, name, uri);
    ns.register_with(name.to_owned(), uri.clone(), options.clone())
        .await?
        .map_err(|source| Error::NameServerRefused {
            name_server: ns.uri().endpoint().to_string(),
            source,
            hop: Default::default(),
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

/// Renews the lease of `named` every third of its time to live until the daemon stops. A name
/// the name server lost (it restarted, or the lease ran out while it was unreachable) is
/// registered again.
pub(crate) async fn renew_until_stopped(mut named: Named, stop: Stop) {
    let Some(ttl) = named.options.ttl else {
        return;
    };
    let interval = (ttl / 3).max(MIN_RENEWAL_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.stopped() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let renewed = named
            .ns
            .renew(named.name.clone(), named.uri.clone(), ttl)
            .await;
        match renewed {
            Ok(Ok(())) => {}
            Ok(Err(NsError::NotFound(_))) => {
                tracing::info!(name = %named.name, "lease lost; registering the name again");
                if let Err(e) = register(&named.ns, &named.name, &named.uri, &named.options).await {
                    tracing::warn!(name = %named.name, "cannot register the name again: {e}");
                }
            }
            Ok(Err(e)) => tracing::warn!(name = %named.name, "lease not renewed: {e}"),
            Err(e) => {
                tracing::warn!(name = %named.name, "lease not renewed: {e}");
                // The connection broke: the name server may have restarted, or died with
                // others of its list still up. Reconnect (to the others first) and register
                // again; if none answers, try again at the next renewal.
                if let Ok(ns) = crate::nameserver::reconnect(&named.ns).await {
                    named.ns = ns;
                    if let Err(e) =
                        register(&named.ns, &named.name, &named.uri, &named.options).await
                    {
                        tracing::warn!(name = %named.name, "cannot register the name again: {e}");
                    }
                }
            }
        }
    }
}
