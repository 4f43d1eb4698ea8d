//! The base layer: what both sides of a call share, depending on nothing above it — errors,
//! URIs, trait descriptors, the wire format and its decoding limits, bytes as byte strings,
//! the bytes a socket has yet to take and the buffers kept for them (`frame_pool`), the
//! handshake, keys and TLS (`security`), this host on the network, log throttling, and what a
//! served call knows about itself.
//!
//! Imports nothing from the layers above (`rmi/tests/layers.rs` checks it).

pub(crate) mod blob;
pub(crate) mod describe;
pub(crate) mod error;
pub(crate) mod exposition;
pub(crate) mod frame_pool;
pub mod live;
pub mod meters;
pub(crate) mod nesting;
pub(crate) mod net;
pub(crate) mod outgoing;
pub(crate) mod pyro_values;
pub(crate) mod pyro_wire;
pub(crate) mod security;
pub(crate) mod serving;
pub(crate) mod throttle;
pub(crate) mod trace;
pub(crate) mod uri;
pub mod wire;
