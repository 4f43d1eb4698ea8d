//! Instance modes and oneway calls across processes: `counter_server` hosts a counter shared
//! by all, one per client connection and one per call; this process is the client.

use std::time::Duration;

use rmi_examples::counter::{CounterProxy, PER_CALL, SESSION, SHARED};
use rmi_tests::{example, NameServer, Running};

async fn counter(ns: &NameServer, name: &str) -> CounterProxy {
    CounterProxy::connect(format!("rminame:{name}@127.0.0.1:{}", ns.port))
        .await
        .unwrap()
}

async fn nexts(counter: &CounterProxy, n: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(counter.next().await.unwrap());
    }
    seen
}

#[tokio::test]
async fn each_instance_mode_and_oneway_work_across_processes() {
    let ns = NameServer::start();
    let mut server = Running::start("counter_server", ns.client(example("counter_server")));
    server.expect_line("counters ready");

    let (a, b) = (counter(&ns, SHARED).await, counter(&ns, SHARED).await);
    assert_eq!(nexts(&a, 2).await, [1, 2]);
    assert_eq!(nexts(&b, 1).await, [3]);

    let (a, b) = (counter(&ns, SESSION).await, counter(&ns, SESSION).await);
    assert_eq!(nexts(&a, 3).await, [1, 2, 3]);
    assert_eq!(nexts(&b, 2).await, [1, 2]);
    assert_eq!(nexts(&a.clone(), 1).await, [4]);

    let c = counter(&ns, PER_CALL).await;
    assert_eq!(nexts(&c, 3).await, [1, 1, 1]);

    // Oneway: the caller does not wait; the server adds all the same.
    let shared = counter(&ns, SHARED).await;
    for _ in 0..10 {
        shared.add(10).await.unwrap();
    }
    let mut total = 0;
    for _ in 0..40 {
        total = shared.total().await.unwrap();
        if total == 103 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total, 103);
}
