//! The name server object: checks every request, keeps leases, and answers from a [`Store`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmi::{
    check_name, check_tag, NameServer, NsError, ObjectUri, RegisterOptions, Registration, Tags,
};

use crate::store::{Entry, Store};

/// The shortest and the longest lease a registration may ask for.
const MIN_TTL: Duration = Duration::from_millis(100);
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest compiled regular expression accepted from a client.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The name server, over any [`Store`].
#[derive(Clone)]
pub struct NameServerImpl {
    store: Arc<dyn Store>,
}

/// Milliseconds since the Unix epoch: leases are wall-clock times, so that they survive a
/// restart of the name server.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn checked_name(name: &str) -> Result<(), NsError> {
    check_name(name).map_err(|reason| NsError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn checked_tags(tags: &Tags) -> Result<(), NsError> {
    for tag in tags {
        check_tag(tag).map_err(|reason| NsError::InvalidTag {
            tag: tag.clone(),
            reason,
        })?;
    }
    Ok(())
}

fn checked_ttl(ttl: Duration) -> Result<u64, NsError> {
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        Ok(now_ms() + ttl.as_millis() as u64)
    } else {
        Err(NsError::InvalidTtl { ttl })
    }
}

/// A regular expression matched from the start of a name, as Pyro's name server does.
fn anchored(regex: &str) -> Result<regex::Regex, NsError> {
    let build = |pattern: &str| {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    // Checked as written first, so that an error speaks of the client's own pattern.
    build(regex)
        .and_then(|_| build(&format!("^(?:{regex})")))
        .map_err(|e| NsError::InvalidRegex {
            regex: regex.to_owned(),
            reason: one_line(&e.to_string()),
        })
}

/// The regex crate's multi-line message (pattern, caret, reason) as its last line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or(message)
        .trim_start_matches("error: ")
        .to_owned()
}

fn registration(entry: Entry, now_ms: u64) -> Registration {
    Registration {
        uri: entry.uri,
        meta: entry.meta,
        ttl_left: entry
            .expires_ms
            .map(|expires| Duration::from_millis(expires.saturating_sub(now_ms))),
    }
}

impl NameServerImpl {
    /// A name server keeping its names in `store`, each of its operations timed
    /// (`rmi_ns_store_duration_seconds{op}`) if rmi measures (`rmi::meters::measuring`).
    pub fn new(store: impl Store) -> Self {
        let store: Arc<dyn Store> = match rmi::meters::measuring() {
            true => Arc::new(crate::timed::Timed::new(store)),
            false => Arc::new(store),
        };
        NameServerImpl { store }
    }

    /// Every live registration whose name and entry pass `keep`.
    async fn select(
        &self,
        keep: impl Fn(&str, &Entry) -> bool + Send + 'static,
    ) -> Result<BTreeMap<String, Registration>, NsError> {
        let now = now_ms();
        let entries = self.store.entries(now).await?;
        Ok(entries
            .into_iter()
            .filter(|(name, entry)| keep(name, entry))
            .map(|(name, entry)| (name, registration(entry, now)))
            .collect())
    }

    /// Deletes expired entries every `period`, for ever: reads already hide them, this frees
    /// their space.
    pub async fn sweep_expired(self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let now = now_ms();
            match self.store.remove_expired(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} expired names removed"),
                Err(e) => tracing::warn!("cannot remove expired names: {e}"),
            }
        }
    }
}

impl NameServer for NameServerImpl {
    async fn register(&self, name: String, uri: ObjectUri) -> Result<(), NsError> {
        self.register_with(name, uri, RegisterOptions::default())
            .await
    }

    async fn register_with(
        &self,
        name: String,
        uri: ObjectUri,
        options: RegisterOptions,
    ) -> Result<(), NsError> {
        checked_name(&name)?;
        checked_tags(&options.meta)?;
        let expires_ms = options.ttl.map(checked_ttl).transpose()?;
        let entry = Entry {
            uri,
            meta: options.meta,
            expires_ms,
        };
        tracing::info!(%name, uri = %entry.uri, "register");
        let now = now_ms();
        self.store.put(&name, &entry, options.safe, now).await
    }

    async fn renew(&self, name: String, uri: ObjectUri, ttl: Duration) -> Result<(), NsError> {
        checked_name(&name)?;
        let expires_ms = checked_ttl(ttl)?;
        let now = now_ms();
        let renewed = self.store.renew(&name, &uri, expires_ms, now).await?;
        renewed.then_some(()).ok_or(NsError::NotFound(name))
    }

    async fn lookup(&self, name: String) -> Result<ObjectUri, NsError> {
        Ok(self.registration(name).await?.uri)
    }

    async fn registration(&self, name: String) -> Result<Registration, NsError> {
        checked_name(&name)?;
        let now = now_ms();
        let entry = self.store.get(&name, now).await?;
        entry
            .map(|entry| registration(entry, now))
            .ok_or(NsError::NotFound(name))
    }

    async fn remove(&self, name: String) -> Result<bool, NsError> {
        checked_name(&name)?;
        tracing::info!(%name, "remove");
        let removed = self.store.remove(&[name]).await?;
        Ok(removed > 0)
    }

    async fn list(
        &self,
        prefix: Option<String>,
    ) -> Result<BTreeMap<String, Registration>, NsError> {
        let prefix = prefix.unwrap_or_default();
        self.select(move |name, _| name.starts_with(&prefix)).await
    }

    async fn list_matching(
        &self,
        regex: String,
    ) -> Result<BTreeMap<String, Registration>, NsError> {
        let regex = anchored(&regex)?;
        self.select(move |name, _| regex.is_match(name)).await
    }

    async fn remove_matching(&self, regex: String) -> Result<u64, NsError> {
        let names: Vec<String> = self.list_matching(regex).await?.into_keys().collect();
        tracing::info!(count = names.len(), "remove matching");
        self.store.remove(&names).await
    }

    async fn set_meta(&self, name: String, meta: Tags) -> Result<(), NsError> {
        checked_name(&name)?;
        checked_tags(&meta)?;
        let now = now_ms();
        let set = self.store.set_meta(&name, &meta, now).await?;
        set.then_some(()).ok_or(NsError::NotFound(name))
    }

    async fn lookup_all(&self, meta: Tags) -> Result<BTreeMap<String, Registration>, NsError> {
        checked_tags(&meta)?;
        self.select(move |_, entry| meta.is_subset(&entry.meta))
            .await
    }

    async fn lookup_any(&self, meta: Tags) -> Result<BTreeMap<String, Registration>, NsError> {
        checked_tags(&meta)?;
        self.select(move |_, entry| !meta.is_disjoint(&entry.meta))
            .await
    }

    async fn count(&self) -> Result<u64, NsError> {
        let now = now_ms();
        let entries = self.store.entries(now).await?;
        Ok(entries.len() as u64)
    }

    async fn ping(&self) {}
}
