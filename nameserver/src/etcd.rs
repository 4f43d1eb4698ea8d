//! Names in an etcd cluster, shared by every name server pointed at it.
//!
//! Each name is one key, `PREFIXnames/NAME` (the prefix as given, then `names/`), whose value holds the URI, the tags and the
//! expiry (JSON), so that one write changes all three at once. A name with a lease is attached
//! to an etcd lease a little longer than its time to live: etcd deletes it even if every name
//! server is down, and reads hide it from its expiry on, as the other stores do. Reads are
//! linearizable (etcd's default), so a name registered through one name server is found at
//! once through another. Every read-then-write is one transaction that compares the key's
//! revision: two name servers racing never both win, nor undo each other's change.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use std::time::Instant;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};
use rmi::{NsError, ObjectUri, Tags};
use serde_json::json;

use crate::store::{holder, Entry, Store};
use crate::EtcdOpenError;

/// How long one request to etcd may take. A member that died is noticed at once on its
/// connection; a leader election (about one second with etcd's defaults) is waited out by
/// the retries.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an operation keeps trying the members after a failure, and the pause between
/// tries: long enough for etcd to elect a new leader (about a second with etcd's defaults),
/// short enough that a client's call does not time out.
const RETRY_BUDGET: Duration = Duration::from_secs(4);
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// A bound on the tries of one operation, whatever the clock says.
const MAX_TRIES: usize = 64;
/// How often a read-then-write is tried again when another name server changed the key in
/// between. Each retry means another writer made progress, so this is reached only under a
/// storm of writes to one name.
const RACE_ATTEMPTS: u32 = 32;
/// Added to an etcd lease: leases count in whole seconds, and a name server's clock may be a
/// little behind the one that registered the name. Reads go by the exact expiry.
const LEASE_SLACK_S: i64 = 1;

/// The names, kept in etcd. Each operation tries the members in turn until one answers
/// (`retried`), on the runtime of the call that made it.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use rmi_nameserver::{EtcdStore, NameServerImpl};
/// let endpoints = vec!["http://127.0.0.1:2379".to_owned()];
/// let store = EtcdStore::connect(&endpoints, "/rmi/").await?;
/// let server = NameServerImpl::new(store);
/// # Ok(()) }
/// ```
pub struct EtcdStore {
    /// One client per member: the store talks to one member at a time and moves to the next
    /// when a request to it fails, rather than leave the choice to a load balancer that may
    /// pick the dead member again.
    members: Vec<Client>,
    /// The member in use, an index into `members`.
    current: AtomicUsize,
    /// `PREFIX names/`: every key of a name starts with it.
    names: String,
    /// The endpoints, for messages.
    endpoints: String,
}

/// Why one try of an operation gave no answer: an etcd failure, worth another try, or the
/// operation's refusal (a name taken, a damaged entry), which is the answer.
enum TryFailed {
    Etcd(etcd_client::Error),
    Refused(NsError),
}

impl From<etcd_client::Error> for TryFailed {
    fn from(e: etcd_client::Error) -> TryFailed {
        TryFailed::Etcd(e)
    }
}

impl From<NsError> for TryFailed {
    fn from(e: NsError) -> TryFailed {
        TryFailed::Refused(e)
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://HOST:PORT`) and checks that it
    /// answers; names go under `prefix`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`EtcdOpenError`] if no endpoint is given, an endpoint cannot be connected to, or the
    /// cluster does not answer a read within the retry budget; its message says which.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<EtcdStore, EtcdOpenError> {
        let fail = |reason: String| EtcdOpenError {
            endpoints: endpoints.join(","),
            reason,
        };
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
            // A member cut off from its cluster refuses at once instead of waiting.
            .with_require_leader(true);
        if endpoints.is_empty() {
            return Err(fail("no endpoint given".into()));
        }
        let mut members = Vec::new();
        for endpoint in endpoints {
            let client = Client::connect([endpoint], Some(options.clone()))
                .await
                .map_err(|e| fail(format!("{endpoint}: {e}")))?;
            members.push(client);
        }
        let store = EtcdStore {
            members,
            current: AtomicUsize::new(0),
            names: format!("{prefix}names/"),
            endpoints: endpoints.join(","),
        };
        // One read now: an unreachable cluster is an error at start-up, not at the first call.
        let probe = store
            .retried("read the names", |client, names| async move {
                let options = GetOptions::new().with_prefix().with_count_only();
                client.kv_client().get(names, Some(options)).await?;
                Ok(())
            })
            .await;
        probe.map_err(|e| {
            fail(format!(
                "{e}; start etcd (Debian: etcd-server) or correct the endpoints"
            ))
        })?;
        Ok(store)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.names)
    }

    /// Runs `op` until it gives an answer, on the member in use, moving to the next member
    /// after each failure, for at most [`RETRY_BUDGET`] (but a try per member at least) and
    /// [`MAX_TRIES`].
    async fn retried<T, F, Fut>(&self, what: &str, op: F) -> Result<T, NsError>
    where
        F: Fn(Client, String) -> Fut,
        Fut: Future<Output = Result<T, TryFailed>>,
    {
        let started = Instant::now();
        let mut failures = Vec::new();
        loop {
            let at = self.current.load(Ordering::Relaxed) % self.members.len();
            match op(self.members[at].clone(), self.names.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(TryFailed::Refused(refusal)) => return Err(refusal),
                Err(TryFailed::Etcd(e)) => {
                    tracing::debug!(member = at, "etcd could not {what}: {e}");
                    failures.push(e.to_string());
                    // Others who failed on this member at the same time move on only once.
                    let next = (at + 1) % self.members.len();
                    let _ = self.current.compare_exchange(
                        at,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
            let tries = failures.len();
            let spent = started.elapsed() >= RETRY_BUDGET && tries >= self.members.len();
            if spent || tries >= MAX_TRIES {
                break;
            }
            // A member that refused is left at once; a pause only once all were tried, for
            // an election to end.
            if tries % self.members.len() == 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        let last = failures.last().cloned().unwrap_or_default();
        Err(NsError::Storage(format!(
            "etcd at {} could not {what} in {} tries over {:?}, the last: {last}; check that most of its members are up",
            self.endpoints,
            failures.len(),
            started.elapsed()
        )))
    }

    /// Reads `name`'s key: its stored entry (live or not) and its revision.
    async fn read(
        client: &Client,
        key: &str,
    ) -> Result<Option<(Result<Entry, NsError>, i64)>, etcd_client::Error> {
        let answer = client.kv_client().get(key, None).await?;
        Ok(answer
            .kvs()
            .first()
            .map(|kv| (decode(kv), kv.mod_revision())))
    }

    /// A lease that ends a little after `expires_ms`, or none.
    async fn lease_for(
        client: &Client,
        expires_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<PutOptions, etcd_client::Error> {
        let options = PutOptions::new();
        let Some(expires) = expires_ms else {
            return Ok(options);
        };
        let seconds = expires.saturating_sub(now_ms).div_ceil(1000) as i64 + LEASE_SLACK_S;
        let lease = client.lease_client().grant(seconds, None).await?;
        Ok(options.with_lease(lease.id()))
    }

    /// Writes `entry` as `key`, if the key is still at `revision` (0: absent).
    async fn write_if(
        client: &Client,
        key: &str,
        revision: i64,
        entry: &Entry,
        now_ms: u64,
    ) -> Result<bool, etcd_client::Error> {
        let options = Self::lease_for(client, entry.expires_ms, now_ms).await?;
        // An absent key has no create revision; a present one is compared by its last change.
        let compare = if revision == 0 {
            Compare::create_revision(key, CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(key, CompareOp::Equal, revision)
        };
        let txn =
            Txn::new()
                .when([compare])
                .and_then([TxnOp::put(key, encode(entry), Some(options))]);
        Ok(client.kv_client().txn(txn).await?.succeeded())
    }

    /// Changes the live entry `name` with `change` (which may decline), in a transaction
    /// against other writers; returns whether it was changed.
    async fn update(
        &self,
        what: &str,
        name: &str,
        now_ms: u64,
        change: impl Fn(&Entry) -> Option<Entry>,
    ) -> Result<bool, NsError> {
        let key = self.key(name);
        let change = &change;
        let key = &key;
        self.retried(what, |client, _| async move {
            for _ in 0..RACE_ATTEMPTS {
                let Some((current, revision)) = Self::read(&client, key).await? else {
                    return Ok(false);
                };
                let current = match current {
                    Ok(entry) if entry.is_live(now_ms) => entry,
                    Ok(_) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                let Some(changed) = change(&current) else {
                    return Ok(false);
                };
                if Self::write_if(&client, key, revision, &changed, now_ms).await? {
                    return Ok(true);
                }
            }
            Err(contended(key).into())
        })
        .await
    }
}

fn contended(key: &str) -> NsError {
    NsError::Storage(format!(
        "{key} changed {RACE_ATTEMPTS} times while this name server tried to change it; try again"
    ))
}

fn encode(entry: &Entry) -> String {
    json!({
        "uri": entry.uri.to_string(),
        "meta": entry.meta,
        "expires_ms": entry.expires_ms,
    })
    .to_string()
}

/// The entry a key holds; a damaged value is a storage error for that name only.
fn decode(kv: &KeyValue) -> Result<Entry, NsError> {
    let damaged = |reason: &str| {
        NsError::Storage(format!(
            "the value of {} in etcd is damaged: {reason}",
            String::from_utf8_lossy(kv.key())
        ))
    };
    let value: serde_json::Value =
        serde_json::from_slice(kv.value()).map_err(|e| damaged(&e.to_string()))?;
    let uri = value["uri"]
        .as_str()
        .ok_or_else(|| damaged("no uri"))?
        .parse::<ObjectUri>()
        .map_err(|e| damaged(&e.to_string()))?;
    let meta = match &value["meta"] {
        serde_json::Value::Array(tags) => tags
            .iter()
            .map(|tag| tag.as_str().map(str::to_owned))
            .collect::<Option<Tags>>()
            .ok_or_else(|| damaged("a tag is not text"))?,
        _ => return Err(damaged("no meta")),
    };
    let expires_ms = match &value["expires_ms"] {
        serde_json::Value::Null => None,
        other => Some(other.as_u64().ok_or_else(|| damaged("bad expires_ms"))?),
    };
    Ok(Entry {
        uri,
        meta,
        expires_ms,
    })
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn put(&self, name: &str, entry: &Entry, safe: bool, now_ms: u64) -> Result<(), NsError> {
        let key = &self.key(name);
        self.retried("register a name", |client, _| async move {
            if !safe {
                let options = Self::lease_for(&client, entry.expires_ms, now_ms).await?;
                client
                    .kv_client()
                    .put(key.as_str(), encode(entry), Some(options))
                    .await?;
                return Ok(());
            }
            // Safe: written only if the key is absent, or holds an expired entry or this very
            // URI, and still is at the revision read when the write lands.
            for _ in 0..RACE_ATTEMPTS {
                let (current, revision) = match Self::read(&client, key).await? {
                    Some((Ok(entry), revision)) => (Some(entry), revision),
                    // A damaged value holds nothing: it is overwritten.
                    Some((Err(_), revision)) => (None, revision),
                    None => (None, 0),
                };
                let live = current.filter(|e| e.is_live(now_ms));
                if let Some(holder) = holder(live.as_ref(), &entry.uri) {
                    return Err(NsError::Taken {
                        name: name.to_owned(),
                        holder,
                    }
                    .into());
                }
                if Self::write_if(&client, key, revision, entry, now_ms).await? {
                    return Ok(());
                }
            }
            Err(contended(key).into())
        })
        .await
    }

    async fn get(&self, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
        let key = &self.key(name);
        self.retried("look a name up", |client, _| async move {
            match Self::read(&client, key).await? {
                Some((Ok(entry), _)) => Ok(entry.is_live(now_ms).then_some(entry)),
                Some((Err(e), _)) => Err(e.into()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn renew(
        &self,
        name: &str,
        uri: &ObjectUri,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, NsError> {
        self.update("renew a lease", name, now_ms, |current| {
            (&current.uri == uri).then(|| Entry {
                expires_ms: Some(expires_ms),
                ..current.clone()
            })
        })
        .await
    }

    async fn set_meta(&self, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError> {
        self.update("set tags", name, now_ms, |current| {
            Some(Entry {
                meta: meta.clone(),
                ..current.clone()
            })
        })
        .await
    }

    async fn remove(&self, names: &[String]) -> Result<u64, NsError> {
        let keys: Vec<String> = names.iter().map(|name| self.key(name)).collect();
        let keys = &keys;
        self.retried("remove names", |client, _| async move {
            let mut removed = 0;
            for key in keys {
                removed += client
                    .kv_client()
                    .delete(key.as_str(), None)
                    .await?
                    .deleted() as u64;
            }
            Ok(removed)
        })
        .await
    }

    async fn entries(&self, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError> {
        self.retried("list the names", |client, names| async move {
            let options = GetOptions::new().with_prefix();
            let answer = client
                .kv_client()
                .get(names.as_str(), Some(options))
                .await?;
            let mut entries = BTreeMap::new();
            for kv in answer.kvs() {
                let name = String::from_utf8_lossy(&kv.key()[names.len()..]).into_owned();
                match decode(kv) {
                    Ok(entry) if entry.is_live(now_ms) => {
                        entries.insert(name, entry);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            Ok(entries)
        })
        .await
    }

    async fn remove_expired(&self, now_ms: u64) -> Result<u64, NsError> {
        // etcd deletes them when their leases end; this removes them as soon as they expire,
        // each only if no one registered it again meanwhile.
        self.retried("remove expired names", |client, names| async move {
            let options = GetOptions::new().with_prefix();
            let answer = client
                .kv_client()
                .get(names.as_str(), Some(options))
                .await?;
            let mut removed = 0;
            for kv in answer.kvs() {
                if !matches!(decode(kv), Ok(entry) if !entry.is_live(now_ms)) {
                    continue;
                }
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        kv.key(),
                        CompareOp::Equal,
                        kv.mod_revision(),
                    )])
                    .and_then([TxnOp::delete(kv.key(), None)]);
                let done = client.kv_client().txn(txn).await?;
                removed += done
                    .op_responses()
                    .iter()
                    .map(|op| match op {
                        TxnOpResponse::Delete(d) => d.deleted() as u64,
                        _ => 0,
                    })
                    .sum::<u64>();
            }
            Ok(removed)
        })
        .await
    }
}
