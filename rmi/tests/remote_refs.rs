//! Remote references: callbacks from server to client, and objects a server makes on the fly
//! and hands back.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use rmi::Remote;

#[rmi::expose]
pub trait Listener {
    async fn notify(&self, event: String);
}

#[rmi::expose]
pub trait Ticker {
    /// Calls `listener` back `times` times, then returns.
    async fn tick(&self, listener: Remote<ListenerProxy>, times: u32) -> Result<u32, String>;
}

struct TickerImpl;

impl Ticker for TickerImpl {
    async fn tick(&self, listener: Remote<ListenerProxy>, times: u32) -> Result<u32, String> {
        let listener = listener.connect().await.map_err(|e| e.to_string())?;
        for i in 0..times {
            listener
                .notify(format!("tick {i}"))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(times)
    }
}

struct Collector(tokio::sync::mpsc::UnboundedSender<String>);

impl Listener for Collector {
    async fn notify(&self, event: String) {
        let _ = self.0.send(event);
    }
}

#[tokio::test]
async fn a_server_calls_the_client_back() {
    let (server, ticker) = support::serve(TickerImpl).await;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (client, me) = support::serve(Collector(events)).await;

    let ticker = TickerProxy::connect(&ticker).await.unwrap();
    assert_eq!(
        ticker.tick(Remote::new(me.clone()), 3).await.unwrap(),
        Ok(3)
    );
    for i in 0..3 {
        assert_eq!(received.recv().await.unwrap(), format!("tick {i}"));
    }
    // A reference to an object of another trait is refused when the server connects it.
    let wrong = Remote::<ListenerProxy>::new(server.uri_for(rmi::DAEMON_OBJECT_ID).unwrap());
    let refused = ticker.tick(wrong, 1).await.unwrap().unwrap_err();
    assert!(
        refused.contains("is a DaemonObject, not a Listener"),
        "{refused}"
    );
    client.shutdown().await;
    server.shutdown().await;
}

#[rmi::expose]
pub trait Counter {
    async fn next(&self) -> u64;
}

#[derive(Default)]
struct Count(AtomicU64);

impl Counter for Count {
    async fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[rmi::expose]
pub trait Counters {
    /// Makes a new counter, hosts it, and hands back a reference to it.
    async fn open(&self) -> Result<Remote<CounterProxy>, String>;
}

struct CountersImpl(rmi::Daemon);

impl Counters for CountersImpl {
    async fn open(&self) -> Result<Remote<CounterProxy>, String> {
        let uri = self
            .0
            .register(Count::default())
            .map_err(|e| e.to_string())?;
        Ok(Remote::new(uri))
    }
}

#[tokio::test]
async fn a_server_hands_back_objects_it_makes() {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let factory = daemon.register(CountersImpl(daemon.clone())).unwrap();
    daemon.spawn();
    let counters = CountersProxy::connect(&factory).await.unwrap();
    let a = counters
        .open()
        .await
        .unwrap()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let b = counters
        .open()
        .await
        .unwrap()
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!((a.next().await.unwrap(), a.next().await.unwrap()), (1, 2));
    assert_eq!(b.next().await.unwrap(), 1);
    assert_ne!(a.uri(), b.uri());
    daemon.shutdown().await;
}
