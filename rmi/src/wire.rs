//! The wire: what one call and its reply look like, and how values are encoded.
//!
//! Every call is a tarpc request carrying an [`Invoke`]: the object's handle on that
//! connection's daemon, the method's index in the object's trait, and the arguments encoded as
//! one tuple. The reply is `Result<bytes, Fault>`: the encoded result, or why there is none.
//! Frames are length-delimited (4-byte big-endian length) and bincode-encoded by tarpc.

use std::time::Duration;

use bincode::Options;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{ClientMessage, Response};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The largest frame either side accepts: 16 MiB.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// How long a proxy waits for a call's reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The handle of the daemon's own object, present on every daemon and never unregistered.
pub(crate) const DAEMON_HANDLE: u64 = 0;

/// One call: which object, which method, and the encoded arguments.
#[derive(Debug, Serialize, Deserialize)]
pub struct Invoke {
    /// The object's handle, from binding its id (ids are long strings; handles are 8 bytes).
    pub handle: u64,
    /// The method's index in the server's trait descriptor.
    pub method: u32,
    /// How `args` is encoded, and how the result must be.
    pub format: Format,
    /// The arguments as one tuple.
    pub args: ByteBuf,
}

impl tarpc::RequestName for Invoke {
    fn name(&self) -> &str {
        "invoke"
    }
}

/// The outcome of a call as it travels back.
pub type Reply = Result<ByteBuf, Fault>;

/// Why a call produced no result. The proxy turns it into an [`Error`](crate::Error) that
/// names the URI and the method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// The handle names no object (it was unregistered).
    UnknownObject,
    /// The object's trait has no method with that index.
    UnknownMethod,
    /// The arguments did not decode as the method's parameters.
    BadArguments(String),
    /// The result could not be encoded.
    BadResult(String),
    /// The method panicked; the message is the panic's.
    Panicked(String),
}

/// The encoding of arguments and results inside a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// bincode: what typed proxies use.
    Bincode,
    /// JSON: for callers that have no Rust types, such as a command line.
    Json,
}

/// Why a value did not encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl Format {
    /// Encodes `value`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        match self {
            Format::Bincode => bincode_options()
                .serialize(value)
                .map_err(|e| CodecError(e.to_string())),
            Format::Json => serde_json::to_vec(value).map_err(|e| CodecError(e.to_string())),
        }
    }

    /// Decodes a `T` from all of `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Format::Bincode => bincode_options()
                .deserialize(bytes)
                .map_err(|e| CodecError(e.to_string())),
            Format::Json => serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string())),
        }
    }
}

/// bincode with variable-length integers and, above all, trailing bytes refused: a value
/// that decodes from a prefix of its bytes was encoded from another type.
fn bincode_options() -> impl bincode::Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// The client end of a connection.
pub(crate) type ClientTransport = tarpc::serde_transport::Transport<
    TcpStream,
    Response<Reply>,
    ClientMessage<Invoke>,
    Bincode<Response<Reply>, ClientMessage<Invoke>>,
>;

/// Frames a socket: length-delimited frames of at most [`MAX_FRAME_BYTES`], no Nagle delay.
pub(crate) fn framed<S>(stream: S) -> Framed<S, LengthDelimitedCodec>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec();
    Framed::new(stream, codec)
}

/// Wraps a connected socket as the client end of a connection.
pub(crate) fn client_transport(stream: TcpStream) -> ClientTransport {
    // Small request/reply frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    tarpc::serde_transport::new(framed(stream), Bincode::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_tuples() {
        for format in [Format::Bincode, Format::Json] {
            let bytes = format.encode(&("a".to_string(), 5u64)).unwrap();
            let (a, b): (String, u64) = format.decode(&bytes).unwrap();
            assert_eq!((a.as_str(), b), ("a", 5));
        }
    }

    #[test]
    fn decoding_the_wrong_type_is_an_error() {
        let bytes = Format::Json.encode(&("a",)).unwrap();
        assert!(Format::Json.decode::<(u64,)>(&bytes).is_err());
        let bytes = Format::Bincode.encode(&(1u8,)).unwrap();
        assert!(Format::Bincode.decode::<(String,)>(&bytes).is_err());
        // A prefix that happens to decode is not enough.
        let bytes = Format::Bincode.encode(&("far away", 7u64)).unwrap();
        assert!(Format::Bincode.decode::<(u8,)>(&bytes).is_err());
    }
}
