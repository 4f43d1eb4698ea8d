//! A daemon's and its proxies' metrics, scraped over HTTP in Prometheus' text format: calls by
//! object, method and outcome, their durations, connections, bytes, stream items, and a
//! proxy's calls by target.
//! One test: a process has one recorder.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
pub struct DivideByZero(i64);

#[rmi::expose]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: i64, b: i64) -> Result<i64, DivideByZero>;
    async fn explode(&self);
    async fn count(&self, n: u32) -> rmi::Stream<u32>;
    async fn hold(&self);
}

/// Lets the calls of `hold` return.
static RELEASE: tokio::sync::Notify = tokio::sync::Notify::const_new();

struct Server;

impl Calculator for Server {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn div(&self, a: i64, b: i64) -> Result<i64, DivideByZero> {
        a.checked_div(b).ok_or(DivideByZero(a))
    }
    async fn explode(&self) {
        panic!("boom");
    }
    async fn count(&self, n: u32) -> rmi::Stream<u32> {
        rmi::Stream::iter(0..n)
    }
    async fn hold(&self) {
        RELEASE.notified().await;
    }
}

/// The metrics page at `addr`.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).await.unwrap();
    page
}

/// The value of the sample `name{labels}` (labels as written, in order), if the page has it.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn calls_connections_and_a_proxys_calls_are_counted_and_served() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let daemon = rmi::Daemon::builder()
        .metrics(Some(addr))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Server).unwrap();
    daemon.spawn();
    let calculator = CalculatorProxy::connect(&uri).await.unwrap();
    for _ in 0..3 {
        assert_eq!(calculator.add(2, 3).await.unwrap(), 5);
    }
    assert_eq!(calculator.div(6, 3).await.unwrap(), Ok(2));
    assert_eq!(calculator.div(6, 0).await.unwrap(), Err(DivideByZero(6)));
    assert!(calculator.explode().await.is_err());
    let mut items = calculator.count(5).await.unwrap();
    let mut counted = Vec::new();
    while let Some(item) = items.next().await {
        counted.push(item.unwrap());
    }
    assert_eq!(counted, [0, 1, 2, 3, 4]);

    let page = scrape(addr).await;
    let calls = |method: &str, outcome: &str| {
        sample(
            &page,
            &format!(
                "rmi_calls_total{{object=\"Calculator\",method=\"{method}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(calls("add", "ok"), Some(3.0), "{page}");
    assert_eq!(calls("div", "ok"), Some(1.0), "{page}");
    assert_eq!(calls("div", "err"), Some(1.0), "{page}");
    assert_eq!(calls("explode", "panicked"), Some(1.0), "{page}");
    assert_eq!(
        sample(
            &page,
            "rmi_call_duration_seconds_count{object=\"Calculator\",method=\"add\"}"
        ),
        Some(3.0),
        "{page}"
    );
    assert_eq!(sample(&page, "rmi_calls_in_flight"), Some(0.0), "{page}");
    assert_eq!(sample(&page, "rmi_connections_open"), Some(1.0), "{page}");
    assert!(
        sample(&page, "rmi_connections_accepted_total") >= Some(1.0),
        "{page}"
    );
    let client = |method: &str, outcome: &str| {
        sample(
            &page,
            &format!("rmi_client_calls_total{{target=\"Calculator\",method=\"{method}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(client("add", "ok"), Some(3.0), "{page}");
    assert_eq!(client("div", "err"), Some(1.0), "{page}");
    assert_eq!(client("explode", "panicked"), Some(1.0), "{page}");
    assert_eq!(
        sample(&page, "rmi_stream_items_total{direction=\"out\"}"),
        Some(5.0),
        "{page}"
    );
    assert!(
        sample(&page, "rmi_bytes_received_total") > Some(100.0),
        "{page}"
    );
    assert!(
        sample(&page, "rmi_bytes_sent_total") > Some(100.0),
        "{page}"
    );
    assert!(page.contains("# HELP rmi_calls_total"), "{page}");
    assert!(
        page.contains(
            "rmi_call_duration_seconds_bucket{object=\"Calculator\",method=\"add\",le=\"0.001\"}"
        ),
        "{page}"
    );

    // A call that waits is counted in flight while it waits.
    let held = tokio::spawn({
        let calculator = calculator.clone();
        async move { calculator.hold().await }
    });
    let in_flight = |page: &str| sample(page, "rmi_calls_in_flight");
    let mut page = scrape(addr).await;
    for _ in 0..100 {
        if in_flight(&page) == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = scrape(addr).await;
    }
    assert_eq!(in_flight(&page), Some(1.0), "{page}");
    RELEASE.notify_one();
    held.await.unwrap().unwrap();
    assert_eq!(in_flight(&scrape(addr).await), Some(0.0));

    // A second address for the same process is refused, saying where its metrics are.
    let elsewhere = rmi::serve_metrics("127.0.0.1:1".parse().unwrap()).unwrap_err();
    assert!(
        elsewhere
            .to_string()
            .contains(&format!("serves its metrics at {addr} already")),
        "{elsewhere}"
    );
    daemon.shutdown().await;
}
