//! Names in a SQLite database: every change is committed (and synced) before the call that made
//! it returns, so a restart, even after `kill -9`, finds every registration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmi::{NsError, ObjectUri, Tags};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::store::{holder, Entry, Store};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS rmi_names (
        name TEXT PRIMARY KEY NOT NULL,
        uri TEXT NOT NULL,
        expires_ms INTEGER
    );
    CREATE TABLE IF NOT EXISTS rmi_meta (
        name TEXT NOT NULL REFERENCES rmi_names(name) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (name, tag)
    );
";

/// Why a database could not be opened as a name server's store.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {path} as the name server's database: {reason}")]
pub struct OpenError {
    path: PathBuf,
    reason: String,
}

/// A SQLite database holding the names. Opening it takes an exclusive lock: a second name
/// server on the same file is refused at start-up.
pub struct SqliteStore {
    db: Arc<Mutex<Connection>>,
}

fn storage(e: rusqlite::Error) -> NsError {
    NsError::Storage(e.to_string())
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the file cannot be opened or created, is not a SQLite database (it is
    /// left untouched), is locked by another name server, or its tables cannot be created.
    pub fn open(path: &Path) -> Result<SqliteStore, OpenError> {
        let fail = |reason: String| OpenError {
            path: path.to_owned(),
            reason,
        };
        let explain = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => fail(
                "it is locked by another name server; stop that one or use another file".into(),
            ),
            Some(rusqlite::ErrorCode::NotADatabase) => {
                fail("it is not a SQLite database; it was left untouched".into())
            }
            _ => fail(e.to_string()),
        };
        let db = Connection::open(path).map_err(explain)?;
        db.busy_timeout(std::time::Duration::ZERO)
            .map_err(explain)?;
        // Read before writing anything: a file that is not a database is left untouched.
        db.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(explain)?;
        // Hold the database for as long as this name server runs: a second one is refused.
        db.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             BEGIN EXCLUSIVE; COMMIT;",
        )
        .map_err(explain)?;
        db.execute_batch(SCHEMA).map_err(explain)?;
        Ok(SqliteStore {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `work` on the database, on a blocking thread: SQLite reads and writes (and syncs)
    /// the disk, which must not hold up the runtime's threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, NsError> + Send + 'static,
    ) -> Result<T, NsError> {
        let db = self.db.clone();
        let run = move || work(&mut db.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        tokio::task::spawn_blocking(run)
            .await
            .unwrap_or_else(|e| Err(NsError::Storage(format!("the storage task failed: {e}"))))
    }
}

fn read_entry(db: &Connection, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
    let row: Option<(String, Option<i64>)> = db
        .query_row(
            "SELECT uri, expires_ms FROM rmi_names WHERE name = ?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(storage)?;
    let Some((uri, expires)) = row else {
        return Ok(None);
    };
    let entry = Entry {
        uri: parse_uri(&uri)?,
        meta: read_meta(db, name)?,
        expires_ms: expires.map(|ms| ms as u64),
    };
    Ok(entry.is_live(now_ms).then_some(entry))
}

fn read_meta(db: &Connection, name: &str) -> Result<Tags, NsError> {
    let mut query = db
        .prepare_cached("SELECT tag FROM rmi_meta WHERE name = ?1")
        .map_err(storage)?;
    let tags = query
        .query_map([name], |row| row.get::<_, String>(0))
        .map_err(storage)?;
    tags.collect::<Result<_, _>>().map_err(storage)
}

fn write_meta(db: &Connection, name: &str, meta: &Tags) -> Result<(), NsError> {
    db.execute("DELETE FROM rmi_meta WHERE name = ?1", [name])
        .map_err(storage)?;
    let mut insert = db
        .prepare_cached("INSERT INTO rmi_meta (name, tag) VALUES (?1, ?2)")
        .map_err(storage)?;
    for tag in meta {
        insert.execute(params![name, tag]).map_err(storage)?;
    }
    Ok(())
}

fn parse_uri(text: &str) -> Result<ObjectUri, NsError> {
    text.parse()
        .map_err(|e: rmi::Error| NsError::Storage(format!("a stored URI is damaged: {e}")))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn put(&self, name: &str, entry: &Entry, safe: bool, now_ms: u64) -> Result<(), NsError> {
        let (name, entry) = (name.to_owned(), entry.clone());
        self.run(move |db| put(db, &name, &entry, safe, now_ms))
            .await
    }

    async fn get(&self, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
        let name = name.to_owned();
        self.run(move |db| get(db, &name, now_ms)).await
    }

    async fn renew(
        &self,
        name: &str,
        uri: &ObjectUri,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, NsError> {
        let (name, uri) = (name.to_owned(), uri.clone());
        self.run(move |db| renew(db, &name, &uri, expires_ms, now_ms))
            .await
    }

    async fn set_meta(&self, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError> {
        let (name, meta) = (name.to_owned(), meta.clone());
        self.run(move |db| set_meta(db, &name, &meta, now_ms)).await
    }

    async fn remove(&self, names: &[String]) -> Result<u64, NsError> {
        let names = names.to_vec();
        self.run(move |db| remove(db, &names)).await
    }

    async fn entries(&self, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError> {
        self.run(move |db| entries(db, now_ms)).await
    }

    async fn remove_expired(&self, now_ms: u64) -> Result<u64, NsError> {
        self.run(move |db| remove_expired(db, now_ms)).await
    }
}

// The operations, run on a blocking thread with the database locked (`SqliteStore::run`).

fn put(
    db: &mut Connection,
    name: &str,
    entry: &Entry,
    safe: bool,
    now_ms: u64,
) -> Result<(), NsError> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    if safe {
        if let Some(holder) = holder(read_entry(&tx, name, now_ms)?.as_ref(), &entry.uri) {
            return Err(NsError::Taken {
                name: name.to_owned(),
                holder,
            });
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO rmi_names (name, uri, expires_ms) VALUES (?1, ?2, ?3)",
        params![
            name,
            entry.uri.to_string(),
            entry.expires_ms.map(|ms| ms as i64)
        ],
    )
    .map_err(storage)?;
    write_meta(&tx, name, &entry.meta)?;
    tx.commit().map_err(storage)
}

fn get(db: &mut Connection, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
    read_entry(db, name, now_ms)
}

fn renew(
    db: &mut Connection,
    name: &str,
    uri: &ObjectUri,
    expires_ms: u64,
    now_ms: u64,
) -> Result<bool, NsError> {
    let changed = db
        .execute(
            "UPDATE rmi_names SET expires_ms = ?1 WHERE name = ?2 AND uri = ?3
             AND (expires_ms IS NULL OR expires_ms > ?4)",
            params![expires_ms as i64, name, uri.to_string(), now_ms as i64],
        )
        .map_err(storage)?;
    Ok(changed > 0)
}

fn set_meta(db: &mut Connection, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    if read_entry(&tx, name, now_ms)?.is_none() {
        return Ok(false);
    }
    write_meta(&tx, name, meta)?;
    tx.commit().map_err(storage)?;
    Ok(true)
}

fn remove(db: &mut Connection, names: &[String]) -> Result<u64, NsError> {
    let tx = db.transaction().map_err(storage)?;
    let mut removed = 0;
    {
        let mut delete = tx
            .prepare_cached("DELETE FROM rmi_names WHERE name = ?1")
            .map_err(storage)?;
        for name in names {
            removed += delete.execute([name]).map_err(storage)? as u64;
        }
    }
    tx.commit().map_err(storage)?;
    Ok(removed)
}

fn entries(db: &mut Connection, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError> {
    let mut entries = BTreeMap::new();
    let mut names = db
        .prepare_cached(
            "SELECT name, uri, expires_ms FROM rmi_names
             WHERE expires_ms IS NULL OR expires_ms > ?1",
        )
        .map_err(storage)?;
    let rows = names
        .query_map([now_ms as i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })
        .map_err(storage)?;
    for row in rows {
        let (name, uri, expires) = row.map_err(storage)?;
        let entry = Entry {
            uri: parse_uri(&uri)?,
            meta: Tags::new(),
            expires_ms: expires.map(|ms| ms as u64),
        };
        entries.insert(name, entry);
    }
    let mut tags = db
        .prepare_cached("SELECT name, tag FROM rmi_meta")
        .map_err(storage)?;
    let rows = tags
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(storage)?;
    for row in rows {
        let (name, tag) = row.map_err(storage)?;
        if let Some(entry) = entries.get_mut(&name) {
            entry.meta.insert(tag);
        }
    }
    Ok(entries)
}

fn remove_expired(db: &mut Connection, now_ms: u64) -> Result<u64, NsError> {
    let removed = db
        .execute(
            "DELETE FROM rmi_names WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            [now_ms as i64],
        )
        .map_err(storage)?;
    Ok(removed as u64)
}
