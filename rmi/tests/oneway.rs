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

#[tokio::test]
async fn a_failed_oneway_call_is_counted_and_handed_to_the_hook() {
    let (tx, mut failures) = tokio::sync::mpsc::unbounded_channel();
    let daemon = rmi::Daemon::builder()
        .on_oneway_failure(move |failure: &rmi::OnewayFailure| {
            let _ = tx.send((
                failure.uri.clone(),
                failure.method.clone(),
                failure.error.to_string(),
                matches!(failure.error.kind(), rmi::ErrorKind::Panicked { .. }),
            ));
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(RecorderImpl(Count::default())).unwrap();
    daemon.spawn();
    let recorder = RecorderProxy::connect(&uri).await.unwrap();
    assert_eq!(daemon.oneway_failures(), 0);
    recorder.explode().await.unwrap(); // the caller hears nothing
    let (at, method, message, panicked) = failures.recv().await.unwrap();
    assert_eq!(
        (at.as_str(), method.as_str(), panicked),
        (uri.to_string().as_str(), "explode", true)
    );
    assert!(message.contains("nobody is listening"), "{message}");
    let counted = || async { daemon.oneway_failures() == 1 };
    assert!(support::eventually(support::PATIENCE, counted).await);
    // A call that succeeds counts nothing.
    recorder.record(1).await.unwrap();
    let recorded = || async { recorder.recorded().await.unwrap() == 1 };
    assert!(support::eventually(support::PATIENCE, recorded).await);
    assert_eq!(daemon.oneway_failures(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn oneway_arguments_that_do_not_decode_are_counted() {
    let (tx, mut failures) = tokio::sync::mpsc::unbounded_channel();
    let daemon = rmi::Daemon::builder()
        .on_oneway_failure(move |failure: &rmi::OnewayFailure| {
            let _ = tx.send(failure.error.to_string());
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(RecorderImpl(Count::default())).unwrap();
    daemon.spawn();
    let dynamic = rmi::DynamicProxy::connect(&uri).await.unwrap();
    // A string where the server's `record` takes a u64: the caller is told Ok all the same.
    dynamic
        .call_json("record", serde_json::json!(["seven"]))
        .await
        .unwrap();
    let message = failures.recv().await.unwrap();
    assert!(message.contains("`n: u64`"), "{message}");
    let counted = || async { daemon.oneway_failures() == 1 };
    assert!(support::eventually(support::PATIENCE, counted).await);
    daemon.shutdown().await;
}
