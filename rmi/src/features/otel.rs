//! OpenTelemetry: the spans of calls (`rmi.call`, `rmi.serve`, and the program's own) exported
//! over OTLP/HTTP to a collector (Jaeger, Tempo, the OpenTelemetry Collector), with the ids
//! that travel in the calls, so that a chain of calls is one trace there too.
//!
//! Configured by OpenTelemetry's own variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (such as
//! `http://collector:4318`; nothing is exported unless it, or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, is set), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`,
//! the default, or `http/json`), `OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY` (how often
//! spans are sent, in ms). Which spans: [`FILTER_ENV`] (`RMI_OTEL`), `tracing` filter
//! directives, by default [`DEFAULT_FILTER`].

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The variable naming which spans are exported, as `tracing` filter directives.
pub const FILTER_ENV: &str = "RMI_OTEL";

/// The spans exported unless [`FILTER_ENV`] says otherwise: every call's (they are at DEBUG),
/// and the program's own at INFO and above.
pub const DEFAULT_FILTER: &str = "info,rmi=debug,rmi_gateway=debug";

/// The variables that name where spans go: without either, nothing is exported.
const ENDPOINT_ENV: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Spans being exported: dropping it sends those not sent yet, then stops.
#[must_use = "spans not sent yet are sent when this is dropped"]
pub struct Exporting(Option<SdkTracerProvider>);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: the last spans were not all exported: {e}");
            }
        }
    }
}

/// Logs to stderr as `log` filters (as `RUST_LOG` says, for instance), and,
/// if `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports spans over OTLP as `service` (unless
/// `OTEL_SERVICE_NAME` names it). Installs the process's `tracing` subscriber; keep what it
/// returns until the program ends.
///
/// ```no_run
/// let log = tracing_subscriber::EnvFilter::new("warn");
/// let _exporting = rmi::otel::init_logging(log, "greeter_server")
///     .expect("a valid OTLP configuration");
/// // … serve; spans are sent as they end, and the last when `_exporting` is dropped.
/// ```
///
/// # Errors
///
/// The exporter cannot be built (an endpoint that is not a URL, a protocol this build lacks),
/// or a subscriber is installed already.
pub fn init_logging(log: EnvFilter, service: &str) -> Result<Exporting, String> {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(log);
    let provider = ENDPOINT_ENV
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        .then(|| provider(service))
        .transpose()?;
    let export = provider.as_ref().map(|provider| {
        let spans = std::env::var(FILTER_ENV).unwrap_or_else(|_| DEFAULT_FILTER.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("rmi"))
            .with_filter(EnvFilter::new(spans))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(export)
        .try_init()
        .map_err(|e| format!("cannot install the log's subscriber: {e}"))?;
    Ok(Exporting(provider))
}

fn provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot export spans over OTLP: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
