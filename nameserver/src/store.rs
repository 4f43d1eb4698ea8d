//! Where the name server keeps its names: in memory, in a SQLite database, or in etcd (the
//! `etcd` feature: several name servers sharing one replicated store).

use std::collections::BTreeMap;
use std::sync::Mutex;

use rmi::{NsError, ObjectUri, Tags};

pub use crate::sqlite::SqliteStore;

/// One registration as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The object the name points at.
    pub uri: ObjectUri,
    /// Its metadata tags.
    pub meta: Tags,
    /// When its lease runs out, in milliseconds since the Unix epoch; `None` for no lease.
    pub expires_ms: Option<u64>,
}

impl Entry {
    /// Whether the entry is still live at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|expires| expires > now_ms)
    }
}

/// A place to keep names. Every change is complete (and, for a durable store, on disk) when
/// the method's future completes. Expired entries are invisible to every read. A store that
/// does blocking I/O does it off the runtime's threads (`tokio::task::spawn_blocking`), as
/// [`SqliteStore`] does.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces `name`; with `safe`, refuses when a live entry of another URI holds it.
    ///
    /// # Errors
    ///
    /// [`NsError::Taken`] when `safe` is set and a live entry of another URI holds `name`;
    /// [`NsError::Storage`] if a durable store cannot be read or written.
    async fn put(&self, name: &str, entry: &Entry, safe: bool, now_ms: u64) -> Result<(), NsError>;
    /// The live entry of `name`.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be read, or holds a damaged entry; a
    /// name with no live entry is `Ok(None)`, not an error.
    async fn get(&self, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError>;
    /// Moves the lease of `name` to `expires_ms`, if it is live and points at `uri`.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be read or written; a name that is not
    /// live or points elsewhere is `Ok(false)`.
    async fn renew(
        &self,
        name: &str,
        uri: &ObjectUri,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, NsError>;
    /// Replaces the tags of the live entry `name`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be read or written.
    async fn set_meta(&self, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError>;
    /// Removes `names`; returns how many there were.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be written.
    async fn remove(&self, names: &[String]) -> Result<u64, NsError>;
    /// Every live entry, by name.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be read, or holds a damaged entry.
    async fn entries(&self, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError>;
    /// Deletes the entries whose lease ran out by `now_ms`; returns how many.
    ///
    /// # Errors
    ///
    /// [`NsError::Storage`] if a durable store cannot be written.
    async fn remove_expired(&self, now_ms: u64) -> Result<u64, NsError>;
}

/// Names in memory: fast, and gone when the name server stops.
#[derive(Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, Entry>>);

impl MemoryStore {
    fn names(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The URI that holds `name` against a safe registration of `uri`, if any.
pub(crate) fn holder(current: Option<&Entry>, uri: &ObjectUri) -> Option<String> {
    current.filter(|e| &e.uri != uri).map(|e| e.uri.to_string())
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn put(&self, name: &str, entry: &Entry, safe: bool, now_ms: u64) -> Result<(), NsError> {
        let mut names = self.names();
        let live = names.get(name).filter(|e| e.is_live(now_ms));
        if let (true, Some(holder)) = (safe, holder(live, &entry.uri)) {
            return Err(NsError::Taken {
                name: name.to_owned(),
                holder,
            });
        }
        names.insert(name.to_owned(), entry.clone());
        Ok(())
    }

    async fn get(&self, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
        Ok(self
            .names()
            .get(name)
            .filter(|e| e.is_live(now_ms))
            .cloned())
    }

    async fn renew(
        &self,
        name: &str,
        uri: &ObjectUri,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, NsError> {
        let mut names = self.names();
        match names.get_mut(name) {
            Some(entry) if entry.is_live(now_ms) && &entry.uri == uri => {
                entry.expires_ms = Some(expires_ms);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_meta(&self, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError> {
        let mut names = self.names();
        match names.get_mut(name) {
            Some(entry) if entry.is_live(now_ms) => {
                entry.meta = meta.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, names: &[String]) -> Result<u64, NsError> {
        let mut stored = self.names();
        Ok(names
            .iter()
            .filter(|name| stored.remove(*name).is_some())
            .count() as u64)
    }

    async fn entries(&self, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError> {
        Ok(self
            .names()
            .iter()
            .filter(|(_, e)| e.is_live(now_ms))
            .map(|(name, e)| (name.clone(), e.clone()))
            .collect())
    }

    async fn remove_expired(&self, now_ms: u64) -> Result<u64, NsError> {
        let mut names = self.names();
        let before = names.len();
        names.retain(|_, e| e.is_live(now_ms));
        Ok((before - names.len()) as u64)
    }
}
