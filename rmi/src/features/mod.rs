//! Features built on both sides: streams (`stream`), remote references (`remote`), the
//! dynamic proxy (`dynamic`) and the name server's interface, lookup, the names a daemon
//! registers and the entry points that connect proxies by name (`nameserver`); with the `otel`
//! feature, spans exported over OTLP (`otel`).

pub(crate) mod dynamic;
pub(crate) mod nameserver;
#[cfg(feature = "otel")]
pub mod otel;
pub(crate) mod remote;
pub(crate) mod stream;
