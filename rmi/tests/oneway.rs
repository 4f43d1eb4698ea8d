//! `#[oneway]`: the caller returns once the call is sent, without waiting for the method.

mod support;

use std::time::{Duration, Instant};

use support::Count;

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

struct RecorderImpl(Count);

impl Recorder for RecorderImpl {
    async fn record(&self, n: u64) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.add(n);
    }
    async fn explode(&self) {
        panic!("nobody is listening");
    }
    async fn recorded(&self) -> u64 {
        self.0.get()
    }
}

#[tokio::test]
async fn a_oneway_call_returns_before_the_method_runs() {
    let (daemon, recorder) = support::serve_and_connect(RecorderImpl(Count::default())).await;
    let uri = recorder.uri().clone();
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
    let all_recorded = || async { recorder.recorded().await.unwrap() == 6 };
    assert!(
        support::eventually(support::PATIENCE, all_recorded).await,
        "recorded {}",
        recorder.recorded().await.unwrap()
    );
    let described = rmi::DynamicProxy::connect(&uri).await.unwrap();
    let descriptor = described.descriptor();
    let record = descriptor.method("record").unwrap().1;
    assert_eq!(record.signature(), "#[oneway] fn record(n: u64) -> ()");
    daemon.shutdown().await;
}
