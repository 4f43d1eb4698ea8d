//! A store whose operations are timed: `rmi_ns_store_duration_seconds{op}`, a histogram, and
//! `rmi_ns_store_errors_total{op}`, through the `metrics` facade that rmi's own meters use.
//! The name server's operations themselves are counted as the calls they are
//! (`rmi_calls_total{object="NameServer",…}`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use metrics::{Counter, Histogram};
use rmi::{NsError, ObjectUri, Tags};

use crate::store::{Entry, Store};

/// How long each store operation took, by `op`.
pub const STORE_DURATION: &str = "rmi_ns_store_duration_seconds";
/// Store operations that failed (`NsError::Storage`), by `op`.
pub const STORE_ERRORS: &str = "rmi_ns_store_errors_total";

/// The meters of one operation.
struct Op(Histogram, Counter);

impl Op {
    fn new(op: &'static str) -> Self {
        Op(
            metrics::histogram!(STORE_DURATION, "op" => op),
            metrics::counter!(STORE_ERRORS, "op" => op),
        )
    }

    async fn time<T>(&self, run: impl Future<Output = Result<T, NsError>>) -> Result<T, NsError> {
        let started = Instant::now();
        let result = run.await;
        self.0.record(started.elapsed().as_secs_f64());
        if matches!(result, Err(NsError::Storage(_))) {
            self.1.increment(1);
        }
        result
    }
}

/// `inner`, each operation timed.
pub(crate) struct Timed {
    inner: Box<dyn Store>,
    put: Op,
    get: Op,
    renew: Op,
    set_meta: Op,
    remove: Op,
    entries: Op,
    remove_expired: Op,
}

impl Timed {
    pub(crate) fn new(inner: impl Store) -> Self {
        Timed {
            inner: Box::new(inner),
            put: Op::new("put"),
            get: Op::new("get"),
            renew: Op::new("renew"),
            set_meta: Op::new("set_meta"),
            remove: Op::new("remove"),
            entries: Op::new("entries"),
            remove_expired: Op::new("remove_expired"),
        }
    }
}

#[async_trait::async_trait]
impl Store for Timed {
    async fn put(&self, name: &str, entry: &Entry, safe: bool, now_ms: u64) -> Result<(), NsError> {
        self.put
            .time(self.inner.put(name, entry, safe, now_ms))
            .await
    }

    async fn get(&self, name: &str, now_ms: u64) -> Result<Option<Entry>, NsError> {
        self.get.time(self.inner.get(name, now_ms)).await
    }

    async fn renew(
        &self,
        name: &str,
        uri: &ObjectUri,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<bool, NsError> {
        let renewing = self.inner.renew(name, uri, expires_ms, now_ms);
        self.renew.time(renewing).await
    }

    async fn set_meta(&self, name: &str, meta: &Tags, now_ms: u64) -> Result<bool, NsError> {
        self.set_meta
            .time(self.inner.set_meta(name, meta, now_ms))
            .await
    }

    async fn remove(&self, names: &[String]) -> Result<u64, NsError> {
        self.remove.time(self.inner.remove(names)).await
    }

    async fn entries(&self, now_ms: u64) -> Result<BTreeMap<String, Entry>, NsError> {
        self.entries.time(self.inner.entries(now_ms)).await
    }

    async fn remove_expired(&self, now_ms: u64) -> Result<u64, NsError> {
        self.remove_expired
            .time(self.inner.remove_expired(now_ms))
            .await
    }
}
