//! The client layer: one connection's calls (`channel`), the task that keeps their deadlines
//! (`keeper`), the client's settings (`config`), a connection to a Pyro5 object (`pyro5`),
//! and the proxy core with binding and routing (`proxy`).
//!
//! Imports only from the base layer, but for the one deliberate recursion: binding and name
//! lookup are themselves rmi calls, to the daemon's own object and to the name server
//! (`rmi/tests/layers.rs` lists it).

pub(crate) mod channel;
pub(crate) mod config;
pub(crate) mod keeper;
pub(crate) mod proxy;
pub(crate) mod pyro5;

pub use config::{ClientConfig, DEFAULT_CONNECT_TIMEOUT};
