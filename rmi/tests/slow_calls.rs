//! Quick calls share a connection with slow ones and still finish on time: a call that waits
//! runs in a task of its own, and a method that keeps the CPU busy without waiting holds up
//! its connection's other calls once at most (then its calls start in tasks of their own,
//! until 64 of them in a row were quick: a method is not marked for good by one call whose
//! thread the machine preempted).

mod support;

use std::time::{Duration, Instant};

#[rmi::expose]
pub trait Work {
    async fn quick(&self, n: u64) -> u64;
    /// Waits (an await): never holds up the others.
    async fn nap(&self, millis: u64) -> u64;
    /// Keeps its thread busy without awaiting, as CPU-heavy code does.
    async fn crunch(&self, millis: u64) -> u64;
}

struct WorkImpl;

impl Work for WorkImpl {
    async fn quick(&self, n: u64) -> u64 {
        n + 1
    }
    async fn nap(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
    async fn crunch(&self, millis: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(millis));
        millis
    }
}

async fn work() -> (rmi::Daemon, WorkProxy) {
    support::serve_and_connect(WorkImpl).await
}

/// Makes `count` quick calls one after another on `work` and returns the slowest one's time.
async fn slowest_quick_call(work: &WorkProxy, count: u64) -> Duration {
    let mut slowest = Duration::ZERO;
    for n in 0..count {
        let start = Instant::now();
        assert_eq!(work.quick(n).await.unwrap(), n + 1);
        slowest = slowest.max(start.elapsed());
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_calls_pass_a_call_that_waits() {
    let (daemon, work) = work().await;
    let napping = tokio::spawn({
        let work = work.clone();
        async move { work.nap(3000).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Were they queued behind the nap, the first would take about 3 s.
    let slowest = slowest_quick_call(&work, 100).await;
    assert!(
        !napping.is_finished(),
        "the quick calls ended after the call that waits"
    );
    assert!(
        slowest < Duration::from_millis(1000),
        "slowest quick call: {slowest:?}"
    );
    assert_eq!(napping.await.unwrap().unwrap(), 3000);
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_heavy_method_holds_up_its_connection_once_at_most() {
    let (daemon, work) = work().await;
    // The first call runs in the connection's task and holds it for its whole time.
    assert_eq!(work.crunch(300).await.unwrap(), 300);
    // From now on the method's calls start in tasks of their own.
    for _ in 0..2 {
        let crunching = tokio::spawn({
            let work = work.clone();
            async move { work.crunch(1500).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = Instant::now();
        let slowest = slowest_quick_call(&work, 20).await;
        if crunching.is_finished() {
            panic!(
                "the CPU-heavy call was not running alongside (the quick calls took {:?}): it returned {:?}",
                start.elapsed(),
                crunching.await
            );
        }
        assert!(
            slowest < Duration::from_millis(700),
            "a quick call waited {slowest:?} behind a CPU-heavy call on its connection"
        );
        assert_eq!(crunching.await.unwrap().unwrap(), 1500);
    }
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_marked_slow_starts_inline_again_after_quick_runs() {
    let (daemon, work) = work().await;
    assert_eq!(work.crunch(300).await.unwrap(), 300);
    // Quick runs of the marked method, each in a task of its own, fade its mark once 64 in a
    // row were quick (`pace.rs` counts exactly). On a busy machine a quick run inline may be
    // preempted past the budget and mark the method again: rounds are tried until a long
    // call is seen to run inline, holding up its connection as the first one did.
    for round in 1..=ROUNDS {
        for _ in 0..100 {
            assert_eq!(work.crunch(0).await.unwrap(), 0);
        }
        let crunching = tokio::spawn({
            let work = work.clone();
            async move { work.crunch(400).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let held = slowest_quick_call(&work, 1).await;
        assert_eq!(crunching.await.unwrap().unwrap(), 400);
        if held > Duration::from_millis(200) {
            daemon.shutdown().await;
            return;
        }
        eprintln!("round {round}: the quick call took {held:?}: the method was still marked");
    }
    panic!("after {ROUNDS} rounds of quick runs, the method still started in tasks of its own");
}

/// Rounds of quick runs tried before the mark must have faded.
const ROUNDS: u32 = 20;
