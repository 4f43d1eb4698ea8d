//! Property tests of the frame decoder, as the daemon runs it on every frame a client sends:
//! random bytes and mutations of real frames never panic it, and whatever decodes is handed
//! to the argument decoders, which never panic either. (`rmi/fuzz` holds the same property
//! as a cargo-fuzz target, for longer runs.)

use proptest::prelude::*;
use rmi::wire::{decode_request, encode_request, Format, Invoke, Payload};

/// A real request frame's bytes, for a call with `args` encoded in `format`.
fn real_frame(handle: u64, method: u32, format: Format, args: Vec<u8>) -> Vec<u8> {
    let message = tarpc::ClientMessage::Request(tarpc::Request {
        context: tarpc::context::current(),
        id: 42,
        message: Invoke {
            handle,
            method,
            format,
            args: Payload::from(args),
        },
    });
    encode_request(&message).unwrap()
}

/// Decodes `frame` as the daemon does, and its arguments as several methods would.
fn decode_all_the_way(frame: &[u8]) {
    if let Ok(tarpc::ClientMessage::Request(request)) = decode_request(frame) {
        let invoke = request.message;
        let format = invoke.format;
        let _ = format.decode::<(String, u64)>(&invoke.args.contiguous());
        let _ = format.decode::<(Vec<Vec<u64>>,)>(&invoke.args.contiguous());
        let _ = format.decode::<(Option<String>, Vec<(u8, String)>)>(&invoke.args.contiguous());
        let _ = format.decode::<serde_json::Value>(&invoke.args.contiguous());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all_the_way(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic_the_decoder(
        handle in any::<u64>(),
        method in any::<u32>(),
        json in any::<bool>(),
        args in proptest::collection::vec(any::<u8>(), 0..64),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let format = if json { Format::Json } else { Format::Bincode };
        let mut frame = real_frame(handle, method, format, args);
        // The unmutated frame decodes to what was sent.
        prop_assert!(decode_request(&frame).is_ok());
        for (at, byte) in flips {
            let at = at % frame.len();
            frame[at] ^= byte;
        }
        decode_all_the_way(&frame);
        frame.truncate(cut % (frame.len() + 1));
        decode_all_the_way(&frame);
    }
}
