//! A counter, hosted three ways (shared, per connection, per call): the instance-mode demo.

use std::sync::atomic::{AtomicU64, Ordering};

/// The names the counter server registers its three counters under.
pub const SHARED: &str = "counter.shared";
/// One counter per client connection.
pub const SESSION: &str = "counter.session";
/// A fresh counter for every call.
pub const PER_CALL: &str = "counter.percall";

/// Counts.
#[rmi::expose]
pub trait Counter {
    /// Adds one and returns the new count.
    async fn next(&self) -> u64;
    /// Adds `n`, without the caller waiting.
    #[oneway]
    async fn add(&self, n: u64);
    /// The count.
    async fn total(&self) -> u64;
}

/// The counter object.
#[derive(Default)]
pub struct Count(AtomicU64);

impl Counter for Count {
    async fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    async fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }
    async fn total(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
