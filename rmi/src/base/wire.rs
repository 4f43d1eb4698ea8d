//! The wire: what one call and its reply look like, and how values are encoded.
//!
//! Every call is a tarpc request carrying an [`Invoke`]: the object's handle on that
//! connection's daemon, the method's index in the object's trait, and the arguments encoded as
//! one tuple. The reply is `Result<bytes, Fault>`: the encoded result, or why there is none.
//! Frames are length-delimited (4-byte big-endian length) and bincode-encoded by tarpc.
//!
//! Public for tools and tests that speak the protocol without a proxy (see
//! [`decode_request`]); `ARCHITECTURE.md` describes the whole exchange.

use std::time::Duration;

use bincode::Options;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use smallvec::SmallVec;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{ClientMessage, Response};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

/// The largest frame either side accepts: 16 MiB.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Room left in a frame for what surrounds a payload (request ids, deadline, handle, …).
pub(crate) const ENVELOPE_BYTES: usize = 64 * 1024;

/// The handle that calls about streams carry; never an object's (those are far below).
pub(crate) const STREAMS_HANDLE: u64 = u64::MAX;
/// On [`STREAMS_HANDLE`]: asks for the next items of a stream: `(id, most items)` →
/// [`Batch`].
pub(crate) const PULL: u32 = 0;
/// On [`STREAMS_HANDLE`]: drops a stream: `(id,)` → `()`.
pub(crate) const CLOSE: u32 = 1;

/// Items of a stream, as a pull answers them (always bincode; each item in the stream's own
/// format).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Batch {
    pub(crate) items: Vec<Payload>,
    /// No items follow: the stream is closed on the server.
    pub(crate) end: bool,
}

/// The smallest frame limit a daemon accepts (room for the envelope and some arguments):
/// arguments that fit in it fit in any daemon's.
pub(crate) const SMALLEST_FRAME_BYTES: usize = 2 * ENVELOPE_BYTES;

/// The largest encoded arguments or result: a frame's limit, less room for the envelope.
pub const MAX_PAYLOAD_BYTES: usize = MAX_FRAME_BYTES - ENVELOPE_BYTES;

/// The largest payload that fits in frames of `max_frame` bytes.
pub(crate) fn payload_limit(max_frame: usize) -> usize {
    max_frame.saturating_sub(ENVELOPE_BYTES)
}

/// The longest timeout a proxy accepts; longer ones are cut to it (timers cannot go further).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Refuses a payload too large for one frame, saying so, rather than letting the transport
/// fail and close the connection for every call on it.
pub(crate) fn check_size(payload: &Payload, limit: usize) -> Result<(), String> {
    if payload.len() > limit {
        Err(format!(
            "it is {} bytes, more than the limit of {limit} bytes per value",
            payload.len()
        ))
    } else {
        Ok(())
    }
}

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
    pub args: Payload,
}

impl tarpc::RequestName for Invoke {
    fn name(&self) -> &str {
        "invoke"
    }
}

/// The outcome of a call as it travels back.
pub type Reply = Result<Payload, Fault>;

/// How many bytes of arguments or result travel without a heap allocation.
const INLINE_PAYLOAD: usize = 24;

/// Encoded arguments or an encoded result: a byte string on the wire. Most calls carry a few
/// numbers or a short string, so up to 24 bytes are held inline: the nested encoding then
/// costs no allocation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(SmallVec<[u8; INLINE_PAYLOAD]>);

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload(SmallVec::from_vec(bytes))
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
                Ok(Payload(SmallVec::from_slice(bytes)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(SmallVec::from_vec(bytes)))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

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
    /// One argument (JSON calls decode them one by one) did not decode as its parameter.
    BadArgument {
        /// The parameter's position.
        index: u32,
        /// What the decoder said.
        message: String,
    },
    /// The result could not be encoded.
    BadResult(String),
    /// The method panicked; the message is the panic's.
    Panicked(String),
    /// A pull names a stream that is not open on this connection.
    UnknownStream,
    /// The connection has as many calls in flight as the daemon allows.
    Busy,
    /// A stream relayed from another server failed there; what it said.
    StreamBroken(String),
    /// The daemon is stopping: it takes no new calls from clients (calls made by servers
    /// while they serve one, such as re-entrant calls, are still taken until it closes).
    Stopping,
    /// The daemon stopped while the call ran: its grace period ended first.
    Cancelled,
}

/// The encoding of arguments and results inside a call. The daemon answers in the format it
/// was called in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// bincode: compact, but not self-describing. Types that need to see what comes next
    /// (`serde_json::Value`, `#[serde(flatten)]`, internally tagged and untagged enums) and
    /// structs that differ by a field between client and server do not decode. Kept for
    /// callers that send it and for rmi's own control messages.
    Bincode,
    /// JSON: for callers that have no Rust types, such as a command line.
    Json,
    /// MessagePack, structs as maps of field names: what typed proxies use. Self-describing,
    /// so every type serde can write and read travels, and a struct may gain `Option` (or
    /// `#[serde(default)]`) fields on one side before the other.
    MessagePack,
}

/// Why a value did not encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl Format {
    /// Encodes `value`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Payload, CodecError> {
        let codec_error = |e: &dyn std::fmt::Display| CodecError(e.to_string());
        match self {
            Format::Bincode => {
                // Most values fit inline: write them straight into a stack buffer. Only a
                // value that overflows it (or fails) is encoded again, onto the heap.
                let mut inline = [0u8; INLINE_PAYLOAD];
                let mut unused = &mut inline[..];
                if bincode_options().serialize_into(&mut unused, value).is_ok() {
                    let len = INLINE_PAYLOAD - unused.len();
                    return Ok(Payload(SmallVec::from_buf_and_len(inline, len)));
                }
                // Sized first, then written once: no reallocation for large values.
                let bytes = bincode_options()
                    .serialize(value)
                    .map_err(|e| codec_error(&e))?;
                Ok(Payload(SmallVec::from_vec(bytes)))
            }
            Format::Json => {
                let mut bytes = SmallVec::new();
                serde_json::to_writer(&mut bytes, value).map_err(|e| codec_error(&e))?;
                Ok(Payload(bytes))
            }
            Format::MessagePack => {
                // Written once: inline while it fits, then on the heap.
                let mut bytes = SmallVec::new();
                rmp_serde::encode::write_named(&mut bytes, value).map_err(|e| codec_error(&e))?;
                Ok(Payload(bytes))
            }
        }
    }

    /// Decodes a `T` from all of `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Format::Bincode => crate::nesting::decode(bytes, bincode_options())
                .map_err(|e| CodecError(e.to_string())),
            Format::Json => serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string())),
            Format::MessagePack => {
                crate::nesting::decode_msgpack(bytes).map_err(|e| CodecError(e.to_string()))
            }
        }
    }
}

/// bincode with variable-length integers and, above all, trailing bytes refused: a value
/// that decodes from a prefix of its bytes was encoded from another type.
fn bincode_options() -> impl bincode::Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// The daemon's codec: tarpc's bincode, made safe for any input. A frame that makes the
/// decoder panic (a deadline too far out overflows `Instant`) is an error for its connection,
/// and a deadline further out than [`MAX_TIMEOUT`] is brought in to it (no caller waits
/// longer, and the daemon's timer for a call that waits need not hold more).
#[derive(Default)]
pub(crate) struct ServerCodec(Bincode<ClientMessage<Invoke>, Response<Reply>>);

impl tarpc::tokio_serde::Deserializer<ClientMessage<Invoke>> for ServerCodec {
    type Error = std::io::Error;

    fn deserialize(
        self: std::pin::Pin<&mut Self>,
        src: &tokio_util::bytes::BytesMut,
    ) -> std::io::Result<ClientMessage<Invoke>> {
        let inner = std::pin::Pin::new(&mut self.get_mut().0);
        let decoded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.deserialize(src)))
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a frame that does not decode (its values are out of range)",
                    )
                })??;
        Ok(within_max_timeout(decoded))
    }
}

impl tarpc::tokio_serde::Serializer<Response<Reply>> for ServerCodec {
    type Error = std::io::Error;

    fn serialize(
        self: std::pin::Pin<&mut Self>,
        item: &Response<Reply>,
    ) -> std::io::Result<tokio_util::bytes::Bytes> {
        std::pin::Pin::new(&mut self.get_mut().0).serialize(item)
    }
}

/// `message`, its deadline no further out than [`MAX_TIMEOUT`] from now.
fn within_max_timeout(mut message: ClientMessage<Invoke>) -> ClientMessage<Invoke> {
    if let ClientMessage::Request(request) = &mut message {
        let latest = std::time::Instant::now() + MAX_TIMEOUT;
        if request.context.deadline > latest {
            request.context.deadline = latest;
        }
    }
    message
}

/// Decodes one frame (without its length prefix) as a daemon does: a tarpc
/// `ClientMessage<Invoke>`. Whatever the bytes, it returns an error or a message, never
/// panics, and allocates no more than the bytes can fill: the fuzz target and the property
/// tests hold it to that.
///
/// ```
/// let frame = rmi::wire::encode_request(&tarpc::ClientMessage::Cancel {
///     trace_context: Default::default(),
///     request_id: 7,
/// })?;
/// assert!(matches!(
///     rmi::wire::decode_request(&frame)?,
///     tarpc::ClientMessage::Cancel { request_id: 7, .. }
/// ));
/// assert!(rmi::wire::decode_request(&[0xff; 3]).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn decode_request(frame: &[u8]) -> std::io::Result<ClientMessage<Invoke>> {
    use tarpc::tokio_serde::Deserializer;
    let mut codec = ServerCodec::default();
    std::pin::Pin::new(&mut codec).deserialize(&tokio_util::bytes::BytesMut::from(frame))
}

/// Encodes a message as a client sends it in one frame (without the length prefix).
pub fn encode_request(message: &ClientMessage<Invoke>) -> std::io::Result<Vec<u8>> {
    use tarpc::tokio_serde::Serializer;
    // A client's codec: it writes what a daemon's reads.
    let mut codec = Bincode::<Response<Reply>, ClientMessage<Invoke>>::default();
    std::pin::Pin::new(&mut codec)
        .serialize(message)
        .map(|bytes| bytes.to_vec())
}

/// Frames a socket: [`Frames`] of at most `max_frame` bytes.
pub(crate) fn framed<S>(stream: S, max_frame: usize) -> Framed<S, Frames>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    // Small buffers to start with: they grow to what the connection's traffic needs and
    // keep that size, so an idle connection costs the daemon little and a busy one no more
    // reads than with large buffers. Replies are still written in batches of up to
    // `WRITE_BATCH_BYTES` (the buffer grows to hold them).
    let mut framed = Framed::with_capacity(stream, Frames::new(max_frame), START_BUFFER_BYTES);
    framed.set_backpressure_boundary(WRITE_BATCH_BYTES);
    framed
}

/// Length-delimited frames of at most `max_frame` bytes: a longer one is an error as soon as
/// its length is read, and nothing of that size is allocated. After each frame read, the
/// buffer keeps room for another like it (up to [`KEEP_ROOM_BYTES`]): without it, a frame
/// that straddles the buffer's end takes two reads, one more system call.
pub(crate) struct Frames(LengthDelimitedCodec);

/// The most free room kept in a read buffer after a frame, for the next one.
const KEEP_ROOM_BYTES: usize = 8 * 1024;
/// A frame's length prefix.
const LENGTH_BYTES: usize = 4;

impl Frames {
    pub(crate) fn new(max_frame: usize) -> Frames {
        Frames(
            LengthDelimitedCodec::builder()
                .max_frame_length(max_frame)
                .new_codec(),
        )
    }
}

impl Decoder for Frames {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<BytesMut>> {
        let frame = self.0.decode(src)?;
        if let Some(frame) = &frame {
            src.reserve(frame.len().min(KEEP_ROOM_BYTES) + LENGTH_BYTES);
        }
        Ok(frame)
    }
}

impl Encoder<Bytes> for Frames {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> std::io::Result<()> {
        self.0.encode(frame, dst)
    }
}

/// The daemon's requests and replies over a framed socket, decoded and encoded with
/// [`ServerCodec`].
pub(crate) type ServerTransport<S> = tarpc::tokio_serde::Framed<
    Framed<S, Frames>,
    ClientMessage<Invoke>,
    Response<Reply>,
    ServerCodec,
>;

/// Frames `stream` as [`framed`] does and decodes its requests.
pub(crate) fn server_transport<S>(stream: S, max_frame: usize) -> ServerTransport<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    tarpc::tokio_serde::Framed::new(framed(stream, max_frame), ServerCodec::default())
}

/// The read and write buffers a connection starts with. (`Framed::from_parts` would grow
/// them to 8 KiB each at once: `with_capacity` keeps them to this.)
const START_BUFFER_BYTES: usize = 2 * 1024;

/// How many bytes of replies (or requests) are gathered before they must be written.
const WRITE_BATCH_BYTES: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_tuples() {
        for format in [Format::Bincode, Format::Json, Format::MessagePack] {
            let bytes = format.encode(&("a".to_string(), 5u64)).unwrap();
            let (a, b): (String, u64) = format.decode(&bytes).unwrap();
            assert_eq!((a.as_str(), b), ("a", 5));
        }
    }

    #[test]
    fn payloads_travel_as_byte_strings_inline_or_not() {
        for len in [0, 5, INLINE_PAYLOAD, INLINE_PAYLOAD + 1, 4096] {
            let payload = Payload(SmallVec::from_vec(vec![7u8; len]));
            let framed = bincode_options().serialize(&payload).unwrap();
            let as_bytes: serde_bytes::ByteBuf = bincode_options().deserialize(&framed).unwrap();
            assert_eq!(as_bytes.len(), len);
            let back: Payload = bincode_options().deserialize(&framed).unwrap();
            assert_eq!(back, payload);
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
