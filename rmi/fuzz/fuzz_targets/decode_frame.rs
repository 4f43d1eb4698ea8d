//! Fuzzes the decoder a daemon runs on every frame a client sends, then the argument
//! decoders on whatever decodes: no input may panic them or make them allocate without bound.
//!
//! `cargo install cargo-fuzz`, then from `rmi/`: `cargo +nightly fuzz run decode_frame`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    if let Ok(tarpc::ClientMessage::Request(request)) = rmi::wire::decode_request(frame) {
        let invoke = request.message;
        let format = invoke.format;
        let _ = format.decode::<(String, u64)>(&invoke.args);
        let _ = format.decode::<(Vec<Vec<u64>>,)>(&invoke.args);
        let _ = format.decode::<serde_json::Value>(&invoke.args);
    }
});
