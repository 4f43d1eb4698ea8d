//! `#[oneway]`: the caller returns once the call is sent, without waiting for the method.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[rmi::expose]
pub trait Recorder {
    /// Takes its time, then records `n`.
    #[oneway]
    async fn record(&self, n: u64);
    /// Panics: no one waits for it, so the server logs it.
    #[oneway]
    async fn explode(&self);
    async fn recorded(&self) -> u64;
}

struct RecorderImpl(Arc<AtomicU64>);

impl Recorder for RecorderImpl {
    async fn record(&self, n: u64) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.fetch_add(n, Ordering::SeqCst);
    }
    async fn explode(&self) {
        panic!("nobody is listening");
    }
    async fn recorded(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_oneway_call_returns_before_the_method_runs() {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register(RecorderImpl(Arc::default())).unwrap();
    daemon.spawn();
    let recorder = RecorderProxy::connect(&uri).await.unwrap();
    let start = Instant::now();
    for n in [1, 2, 3] {
        recorder.record(n).await.unwrap();
    }
    recorder.explode().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(recorder.recorded().await.unwrap(), 0);
    // The methods run on the server all the same, and a panic there harms no one.
    let mut recorded = 0;
    for _ in 0..40 {
        recorded = recorder.recorded().await.unwrap();
        if recorded == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded, 6);
    let described = rmi::DynamicProxy::connect(&uri).await.unwrap();
    let descriptor = described.descriptor();
    let record = descriptor.method("record").unwrap().1;
    assert_eq!(record.signature(), "#[oneway] fn record(n: u64) -> ()");
    daemon.shutdown().await;
}
