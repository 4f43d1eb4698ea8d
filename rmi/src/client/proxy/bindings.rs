//! The bindings this process made, so that a new proxy to an object already bound skips the
//! `bind` round trip: connecting costs the connection and the first call, nothing more; and
//! the daemons that took a client without a key (`NO_KEY`), so that a new connection to one
//! need not wait for its hello.
//!
//! Remembering a handle is safe because a daemon's handles start at a random number
//! (`daemon::objects`): a handle from an earlier daemon at the same address, or from an
//! object unregistered since, means nothing to the daemon, which refuses the call
//! (`UnknownObject`) without running it. The proxy then forgets the binding, binds, and sends
//! the call again (`ProxyCore::send`).

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use super::bind::Route;
use crate::describe::TraitDescriptor;
use crate::uri::{Endpoint, ObjectUri};

/// An object, and the trait it was bound as (by the descriptor's address: two traits of one
/// name in two crates are two keys).
type Key = (ObjectUri, usize);

/// A remembered binding: the object's handle and the routes of the trait's methods.
type Remembered = (u64, Box<[Route]>);

static BINDINGS: LazyLock<Mutex<HashMap<Key, Remembered>>> = LazyLock::new(Default::default);

/// At most this many bindings are remembered; past it, the memory starts afresh.
const MOST: usize = 4096;

fn key(object: &ObjectUri, descriptor: &'static TraitDescriptor) -> Key {
    (object.clone(), std::ptr::from_ref(descriptor) as usize)
}

fn bindings() -> std::sync::MutexGuard<'static, HashMap<Key, Remembered>> {
    // Each change is one insert or remove: a panic elsewhere leaves it whole.
    BINDINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handle and routes `object` was last bound with as `descriptor`, if remembered.
pub(crate) fn recall(
    object: &ObjectUri,
    descriptor: &'static TraitDescriptor,
) -> Option<(u64, Box<[Route]>)> {
    let bindings = bindings();
    let (handle, routes) = bindings.get(&key(object, descriptor))?;
    Some((*handle, routes.clone()))
}

/// Remembers a binding the daemon just answered.
pub(crate) fn remember(
    object: &ObjectUri,
    descriptor: &'static TraitDescriptor,
    handle: u64,
    routes: &[Route],
) {
    let mut bindings = bindings();
    if bindings.len() >= MOST {
        bindings.clear();
    }
    bindings.insert(key(object, descriptor), (handle, routes.into()));
}

/// Daemons (by address) that took a client without a key: a new connection to one sends its
/// first request without waiting for the daemon's hello (`bind::Connection::hello`).
static NO_KEY: LazyLock<Mutex<HashSet<Endpoint>>> = LazyLock::new(Default::default);

fn no_key() -> std::sync::MutexGuard<'static, HashSet<Endpoint>> {
    NO_KEY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the daemon at `endpoint` took a client without a key last time.
pub(crate) fn takes_no_key(endpoint: &Endpoint) -> bool {
    no_key().contains(endpoint)
}

/// Remembers that the daemon at `endpoint` takes clients without a key.
pub(crate) fn remember_no_key(endpoint: &Endpoint) {
    let mut daemons = no_key();
    if daemons.len() >= MOST {
        daemons.clear();
    }
    daemons.insert(endpoint.clone());
}

/// Forgets it: its hello refused such a client (it has a key now, or is full).
pub(crate) fn forget_no_key(endpoint: &Endpoint) {
    no_key().remove(endpoint);
}

/// Forgets a binding the daemon no longer knows.
pub(crate) fn forget(object: &ObjectUri, descriptor: &'static TraitDescriptor) {
    bindings().remove(&key(object, descriptor));
}
