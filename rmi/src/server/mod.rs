//! The server layer: where a call starts (`pace`), running it on an object (`dispatch`, with
//! the per-connection state), the daemon's side of streams (`stream_host`), where `#[oneway]`
//! failures go (`oneway`), and the daemon itself (`daemon`: listener, connections, shutdown).
//!
//! Imports from the base and client layers only (`rmi/tests/layers.rs` checks it).

pub(crate) mod daemon;
pub(crate) mod dispatch;
pub(crate) mod oneway;
pub(crate) mod pace;
pub(crate) mod stop;
pub(crate) mod stream_host;
