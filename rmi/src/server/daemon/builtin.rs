//! The object every daemon hosts about itself, under the id `rmi.daemon` and handle 0: it binds
//! proxies to objects and lists what the daemon hosts.

use std::sync::Weak;

use crate::describe::{BindError, Binding, ObjectInfo};

/// The daemon's own object: binding, listing, liveness.
#[crate::expose]
pub trait DaemonObject {
    /// Looks up the object `id` and checks it serves `trait_name`.
    async fn bind(&self, id: String, trait_name: String) -> Result<Binding, BindError>;
    /// Looks up the object `id`, whatever its trait: for callers without its Rust trait.
    async fn describe(&self, id: String) -> Result<Binding, BindError>;
    /// Every object the daemon hosts, sorted by id.
    async fn registered(&self) -> Vec<ObjectInfo>;
    /// Answers when the daemon is alive.
    async fn ping(&self);
    /// This process's metrics in Prometheus' text format, if it serves them (`RMI_METRICS`,
    /// `--metrics`, [`serve_metrics`](crate::serve_metrics)): what `rmi top` and the
    /// gateway's live panel read ([`live::Reading`](crate::live::Reading)).
    async fn metrics(&self) -> Option<String>;
}

pub(crate) struct DaemonObjectImpl {
    daemon: Weak<super::DaemonState>,
}

impl DaemonObjectImpl {
    pub(crate) fn new(
        daemon: Weak<super::DaemonState>,
    ) -> crate::hosted::Host<DaemonObjectProxy, Self> {
        crate::hosted::Host::new(DaemonObjectImpl { daemon })
    }
}

impl DaemonObject for DaemonObjectImpl {
    async fn bind(&self, id: String, trait_name: String) -> Result<Binding, BindError> {
        let daemon = self.daemon.upgrade().ok_or(BindError::NoSuchObject)?;
        let (handle, object) = daemon.objects.find(&id).ok_or(BindError::NoSuchObject)?;
        let descriptor = object.descriptor();
        if descriptor.name != trait_name {
            return Err(BindError::WrongTrait {
                found: descriptor.name.to_string(),
            });
        }
        Ok(Binding {
            handle,
            descriptor: descriptor.clone(),
        })
    }

    async fn describe(&self, id: String) -> Result<Binding, BindError> {
        let daemon = self.daemon.upgrade().ok_or(BindError::NoSuchObject)?;
        let (handle, object) = daemon.objects.find(&id).ok_or(BindError::NoSuchObject)?;
        Ok(Binding {
            handle,
            descriptor: object.descriptor().clone(),
        })
    }

    async fn registered(&self) -> Vec<ObjectInfo> {
        let Some(daemon) = self.daemon.upgrade() else {
            return Vec::new();
        };
        let mut objects: Vec<ObjectInfo> = daemon
            .objects
            .entries()
            .into_iter()
            .map(|entry| ObjectInfo {
                id: entry.id.to_string(),
                descriptor: entry.object.descriptor().clone(),
            })
            .collect();
        objects.sort_by(|a, b| a.id.cmp(&b.id));
        objects
    }

    async fn ping(&self) {}

    async fn metrics(&self) -> Option<String> {
        crate::meters::rendered()
    }
}
