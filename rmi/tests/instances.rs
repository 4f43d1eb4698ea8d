//! Instance modes: one shared instance, one per client connection, or a fresh one per call.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use support::Count as Alive;

#[rmi::expose]
pub trait Counter {
    async fn next(&self) -> u64;
}

struct Count {
    count: AtomicU64,
    alive: Alive,
}

impl Count {
    fn new(alive: &Alive) -> Count {
        alive.one_more();
        Count {
            count: AtomicU64::new(0),
            alive: alive.clone(),
        }
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        self.alive.one_less();
    }
}

impl Counter for Count {
    async fn next(&self) -> u64 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
}

async fn counts(proxy: &CounterProxy, n: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(proxy.next().await.unwrap());
    }
    seen
}

#[tokio::test]
async fn each_mode_gives_the_state_it_should() {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let alive = Alive::default();
    let shared = daemon.register(Count::new(&alive)).unwrap();
    let session = daemon
        .register_factory(rmi::Instances::PerConnection, {
            let alive = alive.clone();
            move || Count::new(&alive)
        })
        .unwrap();
    let per_call = daemon
        .register_factory(rmi::Instances::PerCall, {
            let alive = alive.clone();
            move || Count::new(&alive)
        })
        .unwrap();
    daemon.spawn();

    let (a, b) = (
        CounterProxy::connect(&shared).await.unwrap(),
        CounterProxy::connect(&shared).await.unwrap(),
    );
    assert_eq!(counts(&a, 2).await, [1, 2]);
    assert_eq!(counts(&b, 2).await, [3, 4]);

    let (a, b) = (
        CounterProxy::connect(&session).await.unwrap(),
        CounterProxy::connect(&session).await.unwrap(),
    );
    assert_eq!(counts(&a, 3).await, [1, 2, 3]);
    assert_eq!(counts(&b, 2).await, [1, 2]);
    // A clone shares its connection, and so its session.
    assert_eq!(counts(&a.clone(), 1).await, [4]);

    let c = CounterProxy::connect(&per_call).await.unwrap();
    assert_eq!(counts(&c, 3).await, [1, 1, 1]);

    // The shared instance and the two sessions' are alive; per-call ones are gone.
    assert_eq!(alive.get(), 3);
    // A session's instance goes with its connection.
    drop((a, b));
    assert!(
        support::eventually(support::PATIENCE, || async { alive.get() == 1 }).await,
        "session instances outlived their connections: {} alive",
        alive.get()
    );
    daemon.shutdown().await;
}
