//! Deadlines flow down a chain of calls, and a caller that gives up cancels the work.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[rmi::expose]
pub trait Hop {
    /// Passes the call on (or, at the end of the chain, works for `work_ms`), and returns what
    /// was left of its deadline when it started.
    async fn hop(&self, work_ms: u64) -> Result<Vec<u64>, String>;
}

struct Link {
    next: Option<rmi::ObjectUri>,
    finished: Arc<AtomicBool>,
}

impl Hop for Link {
    async fn hop(&self, work_ms: u64) -> Result<Vec<u64>, String> {
        let left = rmi::time_left().map_or(0, |d| d.as_millis() as u64);
        match &self.next {
            Some(next) => {
                let next = HopProxy::connect(next).await.map_err(|e| e.to_string())?;
                let mut lefts = next.hop(work_ms).await.map_err(|e| e.to_string())??;
                lefts.insert(0, left);
                Ok(lefts)
            }
            None => {
                tokio::time::sleep(Duration::from_millis(work_ms)).await;
                self.finished.store(true, Ordering::SeqCst);
                Ok(vec![left])
            }
        }
    }
}

/// Three daemons in a row, a → b → c; returns the first's URI, the daemons and c's flag.
async fn chain() -> (rmi::ObjectUri, Vec<rmi::Daemon>, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let mut next = None;
    let mut daemons = Vec::new();
    for _ in 0..3 {
        let link = Link {
            next: next.take(),
            finished: finished.clone(),
        };
        let (daemon, uri) = support::serve(link).await;
        next = Some(uri);
        daemons.push(daemon);
    }
    (next.unwrap(), daemons, finished)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_calls_inherit_what_is_left_of_the_deadline() {
    let (first, daemons, _) = chain().await;
    let proxy = HopProxy::connect(&first)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let lefts = proxy.hop(0).await.unwrap().unwrap();
    // Each link saw at most the client's 5 s, never the 30 s its own proxy would allow.
    assert_eq!(lefts.len(), 3);
    assert!(
        lefts.iter().all(|left| *left <= 5_000 && *left > 4_000),
        "{lefts:?}"
    );
    assert!(lefts.windows(2).all(|w| w[0] >= w[1]), "{lefts:?}");
    for daemon in daemons {
        daemon.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_runs_out_mid_chain_stops_the_work_everywhere() {
    let (first, daemons, finished) = chain().await;
    let proxy = HopProxy::connect(&first)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let outcome = proxy.hop(1_500).await;
    // The nested calls share the client's deadline, so whichever notices first reports it:
    // the client's own call, or a link's call to the next (returned as the method's error).
    let timed_out = match &outcome {
        Err(error) => matches!(error.kind(), rmi::ErrorKind::Timeout { .. }),
        Ok(Err(message)) => message.contains("timed out"),
        _ => false,
    };
    assert!(timed_out, "{outcome:?}");
    assert!(
        start.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        start.elapsed()
    );
    // The last link's work was cancelled with the call, not left to finish.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "the work went on after its caller gave up"
    );
    for daemon in daemons {
        daemon.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_drops_its_call_cancels_the_work_everywhere() {
    let (first, daemons, finished) = chain().await;
    let proxy = HopProxy::connect(&first)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    // Given up long before its deadline: only the `Cancel` the proxy sends can stop the work.
    let given_up = tokio::time::timeout(Duration::from_millis(300), proxy.hop(1_500)).await;
    assert!(given_up.is_err(), "{given_up:?}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "the work went on after its caller dropped the call"
    );
    // The connection is still good.
    assert_eq!(proxy.hop(0).await.unwrap().unwrap().len(), 3);
    for daemon in daemons {
        daemon.shutdown().await;
    }
}
