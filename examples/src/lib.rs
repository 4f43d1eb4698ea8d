//! The objects behind rmi's demos, shared by the example programs and the tour.
//!
//! Run the demos from the repository root: `cargo run --example greeter_server`, … (see the
//! README).

pub mod calc;
pub mod chain;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod counter;
pub mod feed;
pub mod files;
pub mod greeter;
pub mod rosetta;
pub mod sockets;
pub mod tasks;
