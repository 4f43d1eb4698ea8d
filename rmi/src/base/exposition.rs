//! Prometheus' text format, served over HTTP: the recorder that [`crate::serve_metrics`]
//! installs and the listener that answers `GET /metrics`.
//!
//! rmi's counters and histograms (every metric named `rmi_…`, its name server's and gateway's
//! among them) are atomics of its own: a histogram counts in fixed [`Buckets`]. Gauges and
//! every metric of other crates are left to metrics-exporter-prometheus's recorder, and
//! [`Exposition::render`] writes both. Why not the exporter's histograms: it keeps each
//! sample, with a reading of the clock, until its next upkeep, pinning crossbeam's epoch to
//! push it (about 210 instructions a sample by callgrind, paid at both ends of a measured
//! call: most of what metrics cost a small call); a bucket is counted with two atomic
//! additions, and its memory does not grow with the rate of calls. Its counters count their
//! generation beside their value: two atomic additions where one does.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

/// The prefix of the histograms counted in [`Buckets`]: rmi's own, those of its name server
/// and gateway among them.
const OURS: &str = "rmi_";

/// How often the exporter folds the samples of other histograms into their buckets, as its own
/// listener would.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a scraper may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A histogram's samples counted in buckets of fixed upper bounds (seconds), and their sum.
pub(crate) struct Buckets {
    /// The bounds in nanoseconds: a sample is compared as a whole number.
    bounds: Box<[u64]>,
    /// Samples at most each bound (not cumulative), then those above the last.
    counts: Box<[AtomicU64]>,
    /// The samples' sum, in nanoseconds (of seconds recorded).
    sum_nanos: AtomicU64,
}

impl Buckets {
    fn new(bounds: &[f64]) -> Self {
        Buckets {
            bounds: bounds.iter().map(|bound| nanos(*bound)).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// The cumulative count at each bound, then the count of all samples, and their sum.
    fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|count| {
                total += count.load(Ordering::Relaxed);
                total
            })
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (cumulative, sum)
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        let value = nanos(value);
        // Most calls take less than a millisecond: the first few bounds.
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(value, Ordering::Relaxed);
    }
}

/// `seconds` in whole nanoseconds; a negative or NaN sample is 0 (`as` saturates).
fn nanos(seconds: f64) -> u64 {
    (seconds * 1e9) as u64
}

/// One series of rmi's own metrics.
#[derive(Clone)]
enum Series {
    Counter(Arc<AtomicU64>),
    Histogram(Arc<Buckets>),
}

/// rmi's own series by key, and their descriptions: made by the [`Recorder`], read by the
/// [`Exposition`].
struct Own {
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Key, Series>>,
    descriptions: Mutex<HashMap<KeyName, SharedString>>,
}

impl Own {
    fn describe(&self, key: KeyName, description: SharedString) {
        let mut descriptions = self
            .descriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        descriptions.insert(key, description);
    }

    /// The series of `key`, made by `make` the first time.
    fn series(&self, key: &Key, make: impl FnOnce() -> Series) -> Series {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        // A key is cloned only the first time: a failure's outcome is counted through here
        // each time it happens.
        if let Some(found) = series.get(key) {
            return found.clone();
        }
        series.entry(key.clone()).or_insert_with(make).clone()
    }
}

/// The recorder `serve_metrics` installs: rmi's counters and histograms (every metric named
/// `rmi_…`) in atomics of its own, the rest in the exporter's recorder.
pub(crate) struct Recorder {
    exporter: PrometheusRecorder,
    own: Arc<Own>,
}

/// What the listener serves: the exporter's metrics and rmi's own, as text.
pub(crate) struct Exposition {
    exporter: PrometheusHandle,
    own: Arc<Own>,
}

/// A recorder over `exporter` that keeps rmi's counters, and its histograms in buckets of
/// upper `bounds`, and what renders them all.
pub(crate) fn recorder(
    exporter: PrometheusRecorder,
    bounds: &'static [f64],
) -> (Recorder, Exposition) {
    let own = Arc::new(Own {
        bounds,
        series: Mutex::default(),
        descriptions: Mutex::default(),
    });
    let exposition = Exposition {
        exporter: exporter.handle(),
        own: own.clone(),
    };
    (Recorder { exporter, own }, exposition)
}

fn ours(name: &str) -> bool {
    name.starts_with(OURS)
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        match ours(key.as_str()) {
            true => self.own.describe(key, description),
            false => self.exporter.describe_counter(key, unit, description),
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.exporter.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        match ours(key.as_str()) {
            true => self.own.describe(key, description),
            false => self.exporter.describe_histogram(key, unit, description),
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if !ours(key.name()) {
            return self.exporter.register_counter(key, metadata);
        }
        match self.own.series(key, || Series::Counter(Arc::default())) {
            Series::Counter(count) => Counter::from_arc(count),
            // The name is a histogram's: counting it too would write a family twice.
            Series::Histogram(_) => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.exporter.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if !ours(key.name()) {
            return self.exporter.register_histogram(key, metadata);
        }
        let bounds = self.own.bounds;
        match self
            .own
            .series(key, || Series::Histogram(Arc::new(Buckets::new(bounds))))
        {
            Series::Histogram(buckets) => Histogram::from_arc(buckets),
            Series::Counter(_) => Histogram::noop(),
        }
    }
}

impl Exposition {
    /// Every metric, in Prometheus' text format.
    pub(crate) fn render(&self) -> String {
        let mut text = self.exporter.render();
        let series = self
            .own
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let descriptions = self
            .own
            .descriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut family = None;
        // Keys are ordered by name first, so a metric's series come together.
        for (key, series) in series.iter() {
            let name = key.name();
            if family != Some(name) {
                if family.is_some() {
                    text.push('\n');
                }
                family = Some(name);
                if let Some(help) = descriptions.get(&KeyName::from(name.to_owned())) {
                    let _ = writeln!(text, "# HELP {name} {}", help.replace('\n', " "));
                }
                let kind = match series {
                    Series::Counter(_) => "counter",
                    Series::Histogram(_) => "histogram",
                };
                let _ = writeln!(text, "# TYPE {name} {kind}");
            }
            let mut labels = String::new();
            for label in key.labels() {
                let _ = write!(labels, "{}=\"{}\",", label.key(), escaped(label.value()));
            }
            match series {
                Series::Counter(count) => {
                    let count = count.load(Ordering::Relaxed);
                    let _ = writeln!(text, "{name}{} {count}", braced(&labels));
                }
                Series::Histogram(buckets) => {
                    self.write_histogram(&mut text, name, &labels, buckets)
                }
            }
        }
        if family.is_some() {
            text.push('\n');
        }
        text
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram, whose labels are `labels`
    /// (each followed by a comma).
    fn write_histogram(&self, text: &mut String, name: &str, labels: &str, buckets: &Buckets) {
        let (cumulative, sum) = buckets.snapshot();
        let bounds = self.own.bounds.iter().map(f64::to_string);
        for (bound, count) in bounds.chain(["+Inf".to_owned()]).zip(&cumulative) {
            let _ = writeln!(text, "{name}_bucket{{{labels}le=\"{bound}\"}} {count}");
        }
        let labels = braced(labels);
        let count = cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(text, "{name}_sum{labels} {sum}");
        let _ = writeln!(text, "{name}_count{labels} {count}");
    }

    /// Folds the samples of the exporter's histograms into their buckets (its listener's
    /// upkeep, which rmi's listener takes over).
    fn upkeep(&self) {
        self.exporter.run_upkeep();
    }
}

/// `labels`, each followed by a comma, as a series writes them: in braces, or nothing.
fn braced(labels: &str) -> String {
    match labels.trim_end_matches(',') {
        "" => String::new(),
        labels => format!("{{{labels}}}"),
    }
}

/// A label's value as the text format writes it: backslash, double quote and line feed escaped.
fn escaped(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// Answers every request on `listener` (any path) with the rendered metrics, and keeps the
/// exporter's upkeep, for as long as the runtime runs.
pub(crate) async fn serve(listener: tokio::net::TcpListener, exposition: Arc<Exposition>) {
    let upkeep = exposition.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.upkeep();
        }
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("the metrics listener could not accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let exposition = exposition.clone();
        let service = hyper::service::service_fn(move |_request| {
            let text = exposition.render();
            async move {
                let response = hyper::Response::builder()
                    .header("content-type", "text/plain; version=0.0.4")
                    .body(http_body_util::Full::new(bytes::Bytes::from(text)))
                    .expect("a response of fixed parts");
                Ok::<_, Infallible>(response)
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("a metrics connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.001, 0.01];

    #[test]
    fn samples_fall_in_the_first_bucket_they_fit_and_add_to_the_sum() {
        let buckets = Buckets::new(BOUNDS);
        for sample in [0.0005, 0.001, 0.005, 2.0, -1.0] {
            buckets.record(sample);
        }
        let (cumulative, sum) = buckets.snapshot();
        assert_eq!(cumulative, [3, 4, 5]);
        assert!((sum - 2.0065).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn rmi_counters_and_histograms_are_rendered_with_their_help_and_escaped_labels() {
        let exporter = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let (recorder, exposition) = recorder(exporter, BOUNDS);
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_histogram!("rmi_test_seconds", "How long tests take");
            metrics::histogram!("rmi_test_seconds", "method" => "say \"hi\"").record(0.002);
            metrics::histogram!("rmi_test_seconds", "method" => "say \"hi\"").record(0.5);
            metrics::counter!("rmi_test_total").increment(3);
        });
        let text = exposition.render();
        assert!(
            text.contains("# TYPE rmi_test_total counter\nrmi_test_total 3\n"),
            "{text}"
        );
        let expected = "# HELP rmi_test_seconds How long tests take\n\
             # TYPE rmi_test_seconds histogram\n\
             rmi_test_seconds_bucket{method=\"say \\\"hi\\\"\",le=\"0.001\"} 0\n\
             rmi_test_seconds_bucket{method=\"say \\\"hi\\\"\",le=\"0.01\"} 1\n\
             rmi_test_seconds_bucket{method=\"say \\\"hi\\\"\",le=\"+Inf\"} 2\n\
             rmi_test_seconds_sum{method=\"say \\\"hi\\\"\"} 0.502\n\
             rmi_test_seconds_count{method=\"say \\\"hi\\\"\"} 2\n\n";
        assert!(text.contains(expected), "{text}");
    }
}
