//! The rmi name server: an in-memory map from names to object URIs, served as the rmi object
//! `rmi.nameserver` (see [`rmi::NameServer`]). The `rmi-ns` binary runs it; [`NameServerHost`]
//! runs it inside another program (the tour, tests).

use std::collections::BTreeMap;
use std::sync::RwLock;

use rmi::{check_name, Daemon, NameServer, NameServerProxy, NsError, ObjectUri};

/// The names, held in memory.
#[derive(Default)]
pub struct MemoryNameServer {
    names: RwLock<BTreeMap<String, ObjectUri>>,
}

impl MemoryNameServer {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ObjectUri>> {
        self.names
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, ObjectUri>> {
        self.names
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn checked(name: String) -> Result<String, NsError> {
    match check_name(&name) {
        Ok(()) => Ok(name),
        Err(reason) => Err(NsError::InvalidName { name, reason }),
    }
}

impl NameServer for MemoryNameServer {
    async fn register(&self, name: String, uri: ObjectUri) -> Result<(), NsError> {
        let name = checked(name)?;
        tracing::info!(%name, %uri, "registered");
        self.write().insert(name, uri);
        Ok(())
    }

    async fn lookup(&self, name: String) -> Result<ObjectUri, NsError> {
        let name = checked(name)?;
        self.read()
            .get(&name)
            .cloned()
            .ok_or(NsError::NotFound(name))
    }

    async fn remove(&self, name: String) -> bool {
        let removed = self.write().remove(&name).is_some();
        if removed {
            tracing::info!(%name, "removed");
        }
        removed
    }

    async fn list(&self, prefix: Option<String>) -> BTreeMap<String, ObjectUri> {
        let prefix = prefix.unwrap_or_default();
        self.read()
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .map(|(name, uri)| (name.clone(), uri.clone()))
            .collect()
    }

    async fn ping(&self) {}
}

/// A name server running on its own daemon.
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// let ns = rmi_nameserver::NameServerHost::bind("127.0.0.1:0").await?;
/// println!("NS running on {}", ns.uri().endpoint());
/// ns.daemon().serve().await?;
/// # Ok(()) }
/// ```
pub struct NameServerHost {
    daemon: Daemon,
    uri: ObjectUri,
}

impl NameServerHost {
    /// Listens on `addr` and hosts an empty name server as `rmi.nameserver`.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs + std::fmt::Display,
    ) -> Result<Self, rmi::Error> {
        let daemon = Daemon::bind(addr).await?;
        let uri = daemon.register_with_id::<NameServerProxy, _>(
            rmi::NAME_SERVER_ID,
            MemoryNameServer::default(),
        )?;
        Ok(NameServerHost { daemon, uri })
    }

    /// The daemon hosting the name server: `serve`, `spawn` or `shutdown` it.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// `rmi:rmi.nameserver@HOST:PORT`.
    pub fn uri(&self) -> &ObjectUri {
        &self.uri
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(port: u16) -> ObjectUri {
        format!("rmi:obj_1@127.0.0.1:{port}").parse().unwrap()
    }

    #[tokio::test]
    async fn registers_looks_up_lists_and_removes() {
        let ns = MemoryNameServer::default();
        ns.register("a.one".into(), uri(1)).await.unwrap();
        ns.register("a.two".into(), uri(2)).await.unwrap();
        ns.register("b".into(), uri(3)).await.unwrap();
        assert_eq!(ns.lookup("a.two".into()).await, Ok(uri(2)));
        let a: Vec<String> = ns.list(Some("a.".into())).await.into_keys().collect();
        assert_eq!(a, ["a.one", "a.two"]);
        assert_eq!(ns.list(None).await.len(), 3);
        assert!(ns.remove("a.one".into()).await);
        assert!(!ns.remove("a.one".into()).await);
        assert_eq!(
            ns.lookup("a.one".into()).await,
            Err(NsError::NotFound("a.one".into()))
        );
    }

    #[tokio::test]
    async fn bad_names_are_refused_and_nothing_is_stored() {
        let ns = MemoryNameServer::default();
        for bad in ["", "two words", "tab\there", &"x".repeat(257)] {
            let err = ns.register(bad.into(), uri(1)).await.unwrap_err();
            assert!(matches!(err, NsError::InvalidName { .. }), "{bad:?}");
        }
        assert!(ns.list(None).await.is_empty());
    }
}
