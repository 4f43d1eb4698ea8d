//! The server layer: what generated code runs (`expose`), objects with their types erased
//! (`hosted`), one connection's state (`session`), where a call starts (`pace`), the
//! daemon's side of streams (`stream_host`, and `stream_calls`, which calls use), where
//! `#[oneway]` failures go (`oneway`), the stages of a daemon's stop (`stop`), and the daemon itself (`daemon`: listener,
//! connections, shutdown).
//!
//! Imports from the base and client layers only (`rmi/tests/layers.rs` checks it).

pub(crate) mod daemon;
pub(crate) mod expose;
pub(crate) mod hosted;
pub(crate) mod oneway;
pub(crate) mod pace;
pub(crate) mod session;
pub(crate) mod stop;
pub(crate) mod stream_calls;
pub(crate) mod stream_host;
