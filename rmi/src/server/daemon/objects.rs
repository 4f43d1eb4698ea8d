//! The object table: id → handle → object. Read by every call without locking.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use crate::hosted::Hosted;
use crate::session::{refuse, Request, Session};
use crate::stream_host::STREAMS_HANDLE;
use crate::wire::{Fault, DAEMON_HANDLE};
use crate::{Error, ErrorKind};

#[derive(Clone, Default)]
struct Table {
    /// Looked up on every call: a fast hasher, as handles are ours, not an attacker's choice.
    by_handle: FxHashMap<u64, Entry>,
    by_id: HashMap<String, u64>,
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) id: Arc<str>,
    pub(crate) object: Arc<dyn Hosted>,
}

/// The objects of one daemon. Handles are never reused, so a handle bound before an
/// unregistration can never reach an object registered after it under the same id.
pub(crate) struct Objects {
    table: ArcSwap<Table>,
    /// Serializes writers; readers go through `table` alone.
    write: Mutex<()>,
    next_handle: AtomicU64,
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            table: ArcSwap::from_pointee(Table::default()),
            write: Mutex::new(()),
            // A random start, so that a handle of an earlier daemon at the same address
            // (which a client may remember: `proxy::bindings`) reaches nothing here. Far
            // below `STREAMS_HANDLE` (`u64::MAX`), and never `DAEMON_HANDLE` (0).
            next_handle: AtomicU64::new(DAEMON_HANDLE + 1 + (rand::random::<u64>() >> 2)),
        }
    }
}

impl Objects {
    /// Starts `request` on the object whose handle it names, or refuses it if there is none.
    pub(crate) fn route(&self, request: Request, session: &mut Session) {
        if session.connection.stop.is_stopped()
            && !crate::trace::is_caused_by_a_served_call(&request.context.trace_context)
        {
            // Stopping: calls that calls in flight here caused (re-entrant ones, a chain
            // through this daemon) still run; a client is told at once, so it can go elsewhere.
            return refuse(&session.connection, request, Fault::Stopping);
        }
        let handle = request.invoke.handle;
        if handle == STREAMS_HANDLE {
            return crate::stream_calls::start_stream_call(&session.connection, request);
        }
        match self.table.load().by_handle.get(&handle) {
            Some(entry) => entry.object.start(handle, request, session),
            None => refuse(&session.connection, request, Fault::UnknownObject),
        }
    }

    /// The handle and object registered as `id`.
    pub(crate) fn find(&self, id: &str) -> Option<(u64, Arc<dyn Hosted>)> {
        let table = self.table.load();
        let handle = *table.by_id.get(id)?;
        Some((handle, table.by_handle[&handle].object.clone()))
    }

    /// Every object with its id, in no particular order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.table.load().by_handle.values().cloned().collect()
    }

    pub(crate) fn insert_daemon_object(&self, object: impl Hosted + 'static) {
        self.write_with(|table| {
            table.add(DAEMON_HANDLE, super::DAEMON_OBJECT_ID, Arc::new(object));
            Ok(())
        })
        .expect("a new table has room for the daemon object");
    }

    pub(crate) fn insert(&self, id: &str, object: Arc<dyn Hosted>) -> Result<u64, Error> {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.write_with(|table| {
            if table.by_id.contains_key(id) {
                return Err(Error::new(ErrorKind::DuplicateObjectId {
                    id: id.to_owned(),
                }));
            }
            table.add(handle, id, object);
            Ok(handle)
        })
    }

    pub(crate) fn remove(&self, id: &str) -> bool {
        if id == super::DAEMON_OBJECT_ID {
            return false;
        }
        self.write_with(|table| {
            let handle = table.by_id.remove(id);
            if let Some(handle) = handle {
                table.by_handle.remove(&handle);
            }
            Ok(handle.is_some())
        })
        .unwrap_or(false)
    }

    /// Copies the table, changes the copy and publishes it, one writer at a time.
    fn write_with<T>(
        &self,
        change: impl FnOnce(&mut Table) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _writer = self.write.lock().expect("object table lock poisoned");
        let mut table = Table::clone(&self.table.load());
        let result = change(&mut table)?;
        self.table.store(Arc::new(table));
        Ok(result)
    }
}

impl Table {
    fn add(&mut self, handle: u64, id: &str, object: Arc<dyn Hosted>) {
        self.by_id.insert(id.to_owned(), handle);
        self.by_handle.insert(
            handle,
            Entry {
                id: id.into(),
                object,
            },
        );
    }
}
