//! The wire: what one call and its reply look like, and how values are encoded.
//!
//! Every call is a tarpc request carrying an [`Invoke`]: the object's handle on that
//! connection's daemon, the method's index in the object's trait, and the arguments encoded as
//! one tuple. The reply is `Result<bytes, Fault>`: the encoded result, or why there is none.
//! Frames are length-delimited (4-byte big-endian length); rmi encodes tarpc's request and
//! response messages in them with bincode itself (`server::transport`, `client::channel`).
//!
//! Public for tools and tests that speak the protocol without a proxy (see
//! [`decode_request`]); `ARCHITECTURE.md` describes the whole exchange.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bincode::Options;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use smallvec::SmallVec;
use tarpc::ClientMessage;
use tokio_util::bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, FramedRead};

use crate::frame_pool::{self, POOLED_FRAME_BYTES};

/// The largest frame either side accepts unless told otherwise: 16 MiB. Raise (or lower) it
/// with `RMI_MAX_FRAME_BYTES` ([`FRAME_LIMIT_ENV`]) for both sides, or in code with
/// `DaemonBuilder::max_frame_bytes` and `ClientConfig::max_frame_bytes`.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The largest frame limit there can be: a frame's length is 4 bytes on the wire.
pub const LARGEST_FRAME_BYTES: usize = u32::MAX as usize;

/// The environment variable with the frame limit, in bytes, of the daemons and clients of a
/// process that set none in code.
pub const FRAME_LIMIT_ENV: &str = "RMI_MAX_FRAME_BYTES";

/// The frame limit `RMI_MAX_FRAME_BYTES` gives, if set: at least the smallest a daemon takes,
/// at most [`LARGEST_FRAME_BYTES`].
pub(crate) fn frame_limit_from_env() -> Result<Option<usize>, String> {
    let Ok(text) = std::env::var(FRAME_LIMIT_ENV) else {
        return Ok(None);
    };
    match text.trim().parse::<usize>() {
        Ok(bytes) if (SMALLEST_FRAME_BYTES..=LARGEST_FRAME_BYTES).contains(&bytes) => {
            Ok(Some(bytes))
        }
        _ => Err(format!(
            "{FRAME_LIMIT_ENV}={text}: give a number of bytes from {SMALLEST_FRAME_BYTES} to {LARGEST_FRAME_BYTES}"
        )),
    }
}

/// Room left in a frame for what surrounds a payload (request ids, deadline, handle, …).
pub(crate) const ENVELOPE_BYTES: usize = 64 * 1024;

/// The handle that calls about streams carry; never an object's (those are far below).
pub(crate) const STREAMS_HANDLE: u64 = u64::MAX;
/// On [`STREAMS_HANDLE`]: asks for the next items of a stream: `(id, most items)` →
/// [`Batch`].
pub(crate) const PULL: u32 = 0;
/// On [`STREAMS_HANDLE`]: drops a stream: `(id,)` → `()`.
pub(crate) const CLOSE: u32 = 1;
/// On [`STREAMS_HANDLE`]: the next items of a stream the client uploads (a call's argument):
/// `(id, Batch, failure)` → `()` once the daemon has room for them, or `UnknownStream` when the
/// method dropped the stream (the client stops). `failure` is what broke the client's
/// producer, after the batch's items.
pub(crate) const PUSH: u32 = 2;

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

/// How long a proxy waits for a call's reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The id of the object every daemon hosts about itself (its objects, binding, ping).
pub const DAEMON_OBJECT_ID: &str = "rmi.daemon";

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
/// costs no allocation. Longer ones are shared bytes: a payload decoded from a frame is a
/// view of the frame's buffer, not a copy (see `decoding_frame`). A value with large byte
/// strings in it is encoded in pieces: the byte strings it lent (`lend`) stay where they
/// are, and are written to the socket from there.
#[derive(Clone, Default)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Inline(SmallVec<[u8; INLINE_PAYLOAD]>),
    Shared(Bytes),
    /// The bytes, in order: what the encoder wrote, and the byte strings lent to it.
    Pieces(Arc<[Bytes]>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Inline(SmallVec::new())
    }
}

impl Payload {
    /// `bytes`, inline if short, else shared without a copy.
    fn from_small_vec(bytes: SmallVec<[u8; INLINE_PAYLOAD]>) -> Payload {
        if bytes.spilled() {
            Payload(Repr::Shared(Bytes::from(bytes.into_vec())))
        } else {
            Payload(Repr::Inline(bytes))
        }
    }

    /// A copy of `bytes`.
    fn copy_from(bytes: &[u8]) -> Payload {
        if bytes.len() <= INLINE_PAYLOAD {
            Payload(Repr::Inline(SmallVec::from_slice(bytes)))
        } else {
            Payload(Repr::Shared(Bytes::copy_from_slice(bytes)))
        }
    }

    /// How many bytes it holds.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline(bytes) => bytes.len(),
            Repr::Shared(bytes) => bytes.len(),
            Repr::Pieces(pieces) => pieces.iter().map(Bytes::len).sum(),
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in one slice: borrowed, unless the payload is in pieces (a value that lent
    /// large byte strings to its encoding); then a copy. Payloads decoded from a frame are
    /// never in pieces.
    pub fn contiguous(&self) -> Cow<'_, [u8]> {
        match &self.0 {
            Repr::Inline(bytes) => Cow::Borrowed(bytes),
            Repr::Shared(bytes) => Cow::Borrowed(bytes),
            Repr::Pieces(pieces) => Cow::Owned(pieces.concat()),
        }
    }

    /// The bytes as shared bytes: a view of a payload decoded from a frame, a copy of a short
    /// one or of one in pieces.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline(bytes) => Bytes::copy_from_slice(bytes),
            Repr::Shared(bytes) => bytes.clone(),
            Repr::Pieces(pieces) => Bytes::from(pieces.concat()),
        }
    }

    /// The shared pieces the bytes are made of, in order; `None` for a short payload held
    /// inline.
    pub(crate) fn shared_pieces(&self) -> Option<&[Bytes]> {
        match &self.0 {
            Repr::Inline(_) => None,
            Repr::Shared(bytes) => Some(std::slice::from_ref(bytes)),
            Repr::Pieces(pieces) => Some(pieces),
        }
    }

    /// The bytes as slices, in order, from byte `from` on.
    pub(crate) fn slices_from(&self, mut from: usize) -> SmallVec<[&[u8]; 4]> {
        let all: SmallVec<[&[u8]; 4]> = match &self.0 {
            Repr::Inline(bytes) => smallvec::smallvec![&bytes[..]],
            Repr::Shared(bytes) => smallvec::smallvec![&bytes[..]],
            Repr::Pieces(pieces) => pieces.iter().map(|piece| &piece[..]).collect(),
        };
        let rest = all.into_iter().filter_map(|piece| {
            let skipped = from.min(piece.len());
            from -= skipped;
            (skipped < piece.len()).then(|| &piece[skipped..])
        });
        rest.collect()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.contiguous() == other.contiguous()
    }
}

impl Eq for Payload {}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_PAYLOAD {
            Payload(Repr::Inline(SmallVec::from_slice(&bytes)))
        } else {
            Payload(Repr::Shared(Bytes::from(bytes)))
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

impl Serialize for Payload {
    /// A byte string. A large shared payload is lent to the encoding (a batch of a stream's
    /// items is not a copy of them); one in pieces is copied together first.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Repr::Shared(bytes) = &self.0 {
            lend(bytes);
        }
        serializer.serialize_bytes(&self.contiguous())
    }
}

thread_local! {
    /// The frame this thread is decoding, if any: payloads inside it are views of it.
    static FRAME: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// Runs `decode` with `frame` as the frame being decoded: a [`Payload`] longer than the
/// inline size that lies inside it is decoded as a view of it (no copy, no allocation).
pub(crate) fn decoding_frame<R>(frame: &Bytes, decode: impl FnOnce() -> R) -> R {
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FRAME.with_borrow_mut(|frame| *frame = self.0.take());
        }
    }
    let _restore = Restore(FRAME.with_borrow_mut(|held| held.replace(frame.clone())));
    decode()
}

/// `bytes` as a view of the frame being decoded, if it lies inside it.
fn view_of_frame(bytes: &[u8]) -> Option<Bytes> {
    FRAME.with_borrow(|frame| {
        let frame = frame.as_ref()?;
        let range = frame.as_ptr_range();
        let inside = range.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= range.end;
        inside.then(|| frame.slice_ref(bytes))
    })
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<Payload, E> {
                if bytes.len() > INLINE_PAYLOAD {
                    if let Some(view) = view_of_frame(bytes) {
                        return Ok(Payload(Repr::Shared(view)));
                    }
                }
                Ok(Payload::copy_from(bytes))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
                Ok(Payload::copy_from(bytes))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload::from(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
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
    /// A pull, push or close names a stream that is not open on this connection.
    UnknownStream,
    /// The connection has as many calls in flight as the daemon allows.
    Busy,
    /// A stream's producer failed (a method's, or one relayed from another server); what it
    /// said.
    StreamBroken(String),
    /// The daemon is stopping: it takes no new calls from clients (calls made by servers
    /// while they serve one, such as re-entrant calls, are still taken until it closes).
    Stopping,
    /// The daemon stopped while the call ran: its grace period ended first.
    Cancelled,
    /// The result (or a stream's item) encodes to more bytes than a frame of the connection
    /// carries: this many at most.
    TooLarge {
        /// The most bytes a result may take.
        limit: u64,
    },
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
    /// Serpent, Python literals ([`rmi_serpent`]): what Pyro5 clients send by default, and
    /// what the daemon's calls from them use.
    Serpent,
}

/// In JSON results, a stream is the object `{"rmi.stream": id}`, so that callers without
/// Rust types can tell it from a number.
pub(crate) const JSON_STREAM_MARKER: &str = "rmi.stream";

/// Why a value did not encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl From<EncodeError> for Fault {
    /// A result (or a stream's item) that did not encode, as the caller learns it.
    fn from(error: EncodeError) -> Fault {
        match error {
            EncodeError::Codec(e) => Fault::BadResult(e.to_string()),
            EncodeError::TooLarge(limit) => Fault::TooLarge {
                limit: limit as u64,
            },
        }
    }
}

/// Why a value was not encoded within a limit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// Its `Serialize` failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// It takes more than this many bytes (encoding stopped there).
    #[error("it takes more than {0} bytes")]
    TooLarge(usize),
}

impl Format {
    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] if `value`'s `Serialize` fails or the format cannot hold it.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Payload, CodecError> {
        // Nothing is over a limit of the whole address space: the error is the codec's.
        self.encode_within(value, usize::MAX).map_err(|e| match e {
            EncodeError::Codec(e) => e,
            too_large @ EncodeError::TooLarge(_) => CodecError(too_large.to_string()),
        })
    }

    /// Encodes `value` if it takes at most `limit` bytes. A MessagePack value is measured
    /// before it is written, and measuring stops at the limit: a value far too large is
    /// refused without being encoded.
    pub(crate) fn encode_within<T: Serialize + ?Sized>(
        self,
        value: &T,
        limit: usize,
    ) -> Result<Payload, EncodeError> {
        self.encode_shaped(value, limit, Shape::Pieces)
    }

    /// Encodes an item of a stream as [`encode_within`](Self::encode_within) does, but in one
    /// piece: a batch of items lends their bytes to its own encoding, which a payload in
    /// pieces cannot do (it would be copied together first).
    pub(crate) fn encode_item_within<T: Serialize + ?Sized>(
        self,
        value: &T,
        limit: usize,
    ) -> Result<Payload, EncodeError> {
        self.encode_shaped(value, limit, Shape::Whole)
    }

    fn encode_shaped<T: Serialize + ?Sized>(
        self,
        value: &T,
        limit: usize,
        shape: Shape,
    ) -> Result<Payload, EncodeError> {
        let encoded = self.encode_bounded(value, limit, shape)?;
        if encoded.len() > limit {
            return Err(EncodeError::TooLarge(limit));
        }
        Ok(encoded)
    }

    fn encode_bounded<T: Serialize + ?Sized>(
        self,
        value: &T,
        limit: usize,
        shape: Shape,
    ) -> Result<Payload, EncodeError> {
        let codec_error = |e: &dyn std::fmt::Display| CodecError(e.to_string());
        match self {
            Format::Bincode => {
                // Most values fit inline: write them straight into a stack buffer. Only a
                // value that overflows it (or fails) is encoded again, onto the heap.
                let mut inline = [0u8; INLINE_PAYLOAD];
                let mut unused = &mut inline[..];
                if bincode_options().serialize_into(&mut unused, value).is_ok() {
                    let len = INLINE_PAYLOAD - unused.len();
                    let inline = SmallVec::from_buf_and_len(inline, len);
                    return Ok(Payload(Repr::Inline(inline)));
                }
                in_pieces(limit, shape, |writer| {
                    bincode_options()
                        .serialize_into(writer, value)
                        .map_err(|e| codec_error(&e))
                })
            }
            Format::Json => {
                let mut bytes = SmallVec::new();
                serde_json::to_writer(&mut bytes, value).map_err(|e| codec_error(&e))?;
                Ok(Payload::from_small_vec(bytes))
            }
            Format::MessagePack => {
                // Most values fit inline: write them straight into a stack buffer.
                let mut inline = [0u8; INLINE_PAYLOAD];
                let mut unused = &mut inline[..];
                if rmp_serde::encode::write_named(&mut unused, value).is_ok() {
                    let len = INLINE_PAYLOAD - unused.len();
                    let inline = SmallVec::from_buf_and_len(inline, len);
                    return Ok(Payload(Repr::Inline(inline)));
                }
                in_pieces(limit, shape, |writer| {
                    rmp_serde::encode::write_named(writer, value).map_err(|e| codec_error(&e))
                })
            }
            Format::Serpent => {
                let bytes = rmi_serpent::to_vec(value).map_err(|e| codec_error(&e))?;
                Ok(Payload::from_small_vec(SmallVec::from_vec(bytes)))
            }
        }
    }

    /// Decodes a `T` from all of `bytes`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] if `bytes` are not a `T` in this format, leave bytes over after the
    /// value, or (bincode, MessagePack) nest too deep to decode safely.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Format::Bincode => crate::nesting::decode(bytes, bincode_options())
                .map_err(|e| CodecError(e.to_string())),
            Format::Json => serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string())),
            Format::MessagePack => {
                crate::nesting::decode_msgpack(bytes).map_err(|e| CodecError(e.to_string()))
            }
            Format::Serpent => {
                rmi_serpent::from_slice(bytes).map_err(|e| CodecError(e.to_string()))
            }
        }
    }
}

/// Encodes a value that `write` writes to the writer it is given, within `limit` bytes, in
/// pieces: the value's large byte strings ([`lend`]) are not copied but kept as pieces of
/// the payload. The value is measured first, and measuring stops at the limit: a value far
/// too large is refused without being encoded. Then what is not lent is written once into
/// a buffer of its size: grown by doubling, a 64 KiB value took a fresh 128 KiB mapping
/// (the allocator's threshold) and its page faults on every call. Measuring costs little
/// where it matters: a byte string is counted, not read.
fn in_pieces(
    limit: usize,
    shape: Shape,
    write: impl Fn(&mut dyn std::io::Write) -> Result<(), CodecError>,
) -> Result<Payload, EncodeError> {
    lending(shape == Shape::Pieces, || {
        let mut counted = Counted {
            bytes: 0,
            lent: 0,
            limit,
        };
        let measured = write(&mut counted);
        if counted.bytes > limit {
            return Err(EncodeError::TooLarge(limit));
        }
        measured?;
        Ok(encode_sized(counted.bytes - counted.lent, write)?)
    })
}

/// Whether a payload may be made of pieces ([`lend`]) or must be one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Pieces,
    Whole,
}

/// Byte strings at least this long are lent to an encoding ([`lend`]) rather than copied.
const LENT_BYTES: usize = 16 * 1024;

thread_local! {
    /// The byte strings lent to the value this thread encodes, while it encodes in pieces.
    static LENT: std::cell::RefCell<Option<Vec<Bytes>>> = const { std::cell::RefCell::new(None) };
}

/// Lends `bytes` to the value this thread is encoding, if it encodes in pieces and `bytes`
/// is large: when the serializer writes them, the payload takes them as a piece of its own
/// (a view, not a copy), written to the socket from where they are. Called by the
/// `Serialize` of a type that holds shared bytes, just before it writes them.
pub(crate) fn lend(bytes: &Bytes) {
    if bytes.len() >= LENT_BYTES {
        LENT.with_borrow_mut(|lent| {
            if let Some(lent) = lent {
                lent.push(bytes.clone());
            }
        });
    }
}

/// The lent byte strings that `bytes` is, if any (the same memory, not only equal bytes).
fn lent(bytes: &[u8]) -> Option<Bytes> {
    if bytes.len() < LENT_BYTES {
        return None;
    }
    LENT.with_borrow(|lent| {
        let same = |piece: &&Bytes| piece.as_ptr() == bytes.as_ptr() && piece.len() == bytes.len();
        lent.as_ref()?.iter().find(same).cloned()
    })
}

/// Runs `encode` with byte strings lent to it ([`lend`]) if `lend`, else with none, and lets
/// them go after.
fn lending<R>(lend: bool, encode: impl FnOnce() -> R) -> R {
    struct Restore(Option<Vec<Bytes>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENT.with_borrow_mut(|lent| *lent = self.0.take());
        }
    }
    let lent = lend.then(Vec::new);
    let _restore = Restore(LENT.with_borrow_mut(|held| std::mem::replace(held, lent)));
    encode()
}

/// Values up to this long are encoded in a buffer each thread keeps ([`encode_sized`]).
const KEPT_ENCODE_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    /// Where this thread encodes values.
    static ENCODE_BUFFER: std::cell::RefCell<EncodeBuffer> =
        std::cell::RefCell::new(EncodeBuffer { buffer: BytesMut::new(), size: 0 });
}

/// A payload that `write` writes, `copied` bytes of it not lent. A payload is let go once
/// written to its socket, and a fresh allocation of each payload cost a page fault per 4 KiB
/// on every call (the allocator gives large blocks back to the system), so payloads up to
/// [`KEPT_ENCODE_BYTES`] are written in the thread's own buffer, and each is a view of it.
fn encode_sized(
    copied: usize,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), CodecError>,
) -> Result<Payload, CodecError> {
    if copied > KEPT_ENCODE_BYTES {
        let mut writer = InPieces::new(BytesMut::with_capacity(copied));
        write(&mut writer)?;
        return Ok(writer.finish());
    }
    ENCODE_BUFFER.with_borrow_mut(|kept| {
        kept.make_room(copied);
        let mut writer = InPieces::new(std::mem::take(&mut kept.buffer));
        let written = write(&mut writer);
        let (payload, rest) = writer.finish_keeping_buffer();
        kept.buffer = rest;
        written.map(|()| payload)
    })
}

/// A thread's buffer for encoding, and the size of its allocation.
struct EncodeBuffer {
    buffer: BytesMut,
    size: usize,
}

impl EncodeBuffer {
    /// Makes room for `bytes`: in the buffer, if it has that much left, or once every payload
    /// written in it is dropped, all of it. Else the buffer goes to the process's pool
    /// (`frame_pool`), for when its payloads are written and dropped, and one from the pool
    /// whose payloads are, or a new one, takes its place: the items of a stream's batch live
    /// until the batch is written, and a new allocation for each took a page fault per
    /// 4 KiB.
    fn make_room(&mut self, bytes: usize) {
        self.buffer.clear();
        if self.buffer.try_reclaim(bytes) {
            return;
        }
        // Room for many payloads like it, so that the buffers in use stay few.
        let size = bytes
            .saturating_mul(16)
            .clamp(POOLED_FRAME_BYTES, KEPT_ENCODE_BYTES)
            .max(bytes);
        let next = frame_pool::take(size).unwrap_or_else(|| BytesMut::with_capacity(size));
        let spent = std::mem::replace(&mut self.buffer, next);
        if self.size > 0 {
            frame_pool::give(spent, self.size);
        }
        self.size = size;
    }
}

/// A writer that builds a [`Payload`] in pieces: what it is given is copied into `buffer`,
/// but a lent byte string ([`lend`]) becomes a piece as it is.
struct InPieces {
    buffer: BytesMut,
    pieces: SmallVec<[Bytes; 3]>,
}

impl InPieces {
    fn new(buffer: BytesMut) -> InPieces {
        InPieces {
            buffer,
            pieces: SmallVec::new(),
        }
    }

    /// Ends the piece being copied, if it has any bytes.
    fn end_piece(&mut self) {
        if !self.buffer.is_empty() {
            self.pieces.push(self.buffer.split().freeze());
        }
    }

    fn finish(self) -> Payload {
        self.finish_keeping_buffer().0
    }

    /// The payload, and the buffer's room left for the next.
    fn finish_keeping_buffer(mut self) -> (Payload, BytesMut) {
        self.end_piece();
        let payload = match self.pieces.len() {
            0 => Payload::default(),
            1 => Payload(Repr::Shared(self.pieces.remove(0))),
            _ => Payload(Repr::Pieces(self.pieces.into_iter().collect())),
        };
        (payload, self.buffer)
    }
}

impl std::io::Write for InPieces {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match lent(bytes) {
            Some(lent) => {
                self.end_piece();
                self.pieces.push(lent);
            }
            None => self.buffer.extend_from_slice(bytes),
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that only counts what it is given (and how much of it was lent), and fails once
/// past `limit`.
struct Counted {
    bytes: usize,
    lent: usize,
    limit: usize,
}

impl std::io::Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        if lent(bytes).is_some() {
            self.lent += bytes.len();
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// bincode with variable-length integers and, above all, trailing bytes refused: a value
/// that decodes from a prefix of its bytes was encoded from another type.
fn bincode_options() -> impl bincode::Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// `message` decoded from `frame` as a daemon decodes a request: tarpc's message in bincode,
/// made safe for any input. A frame that makes the decoder panic (a deadline too far out
/// overflows `Instant`) is an error for its connection, and a deadline further out than
/// [`MAX_TIMEOUT`] is brought in to it (no caller waits longer, and the daemon's timer for a
/// call that waits need not hold more). The arguments are a view of the frame.
fn decode_client_message(frame: &Bytes) -> std::io::Result<ClientMessage<Invoke>> {
    let decode = || decoding_frame(frame, || bincode::DefaultOptions::new().deserialize(frame));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(Ok(message)) => Ok(within_max_timeout(message)),
        Ok(Err(e)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a frame that does not decode (its values are out of range)",
        )),
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
/// # Errors
///
/// An [`std::io::Error`] of kind `InvalidData` if `frame` is not a bincode
/// `ClientMessage<Invoke>` or holds values out of range.
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
    decode_client_message(&Bytes::copy_from_slice(frame))
}

/// Encodes a message as a client sends it in one frame (without the length prefix).
///
/// # Errors
///
/// An [`std::io::Error`] of kind `InvalidData` if bincode cannot encode `message`.
pub fn encode_request(message: &ClientMessage<Invoke>) -> std::io::Result<Vec<u8>> {
    bincode::DefaultOptions::new()
        .serialize(message)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Payloads shorter than this are copied into their frame's head, so that a small call is
/// one piece, written in one `write`; longer ones are written from where they are.
pub(crate) const COPIED_PAYLOAD_BYTES: usize = 16 * 1024;

thread_local! {
    /// Where this thread builds the heads of frames (kept: no allocation per frame).
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Builds the frame of `message` and hands it to `write` as two parts: the head, and the
/// part of `payload` not in it (from byte `from` on, as `write`'s second argument says).
///
/// `payload` is the message's last field, a byte string, which `message` holds empty: the
/// head is the frame's length prefix, the message's bincode up to the payload, and the
/// payload's length (the one-byte length of the empty string replaced). A payload shorter
/// than [`COPIED_PAYLOAD_BYTES`] is copied into the head; a longer one is never copied into
/// the frame. With no payload, the head is the whole frame of `message`.
pub(crate) fn with_frame<M: Serialize, R>(
    message: &M,
    payload: Option<&Payload>,
    write: impl FnOnce(&[u8], usize) -> R,
) -> bincode::Result<R> {
    HEAD.with_borrow_mut(|head| {
        head.clear();
        head.extend_from_slice(&[0; LENGTH_BYTES]);
        bincode::DefaultOptions::new().serialize_into(&mut *head, message)?;
        let length = payload.map_or(0, Payload::len);
        if length > 0 {
            // An empty byte string ends the message: its length, 0, is one byte.
            debug_assert_eq!(head.last(), Some(&0));
            head.pop();
            push_varint(head, length as u64);
        }
        let from = match payload {
            Some(payload) if length < COPIED_PAYLOAD_BYTES => {
                head.extend_from_slice(&payload.contiguous());
                length
            }
            _ => 0,
        };
        let frame = head.len() - LENGTH_BYTES + length - from;
        let frame = u32::try_from(frame).unwrap_or(u32::MAX).to_be_bytes();
        head[..LENGTH_BYTES].copy_from_slice(&frame);
        let written = write(head, from);
        if head.capacity() > KEPT_HEAD_BYTES {
            *head = Vec::new();
        }
        Ok(written)
    })
}

/// The largest buffer for frame heads a thread keeps: room for any head with its payload
/// copied in, and the envelope.
const KEPT_HEAD_BYTES: usize = 2 * COPIED_PAYLOAD_BYTES;

/// Appends `n` as bincode's variable-length integer (its `VarintEncoding` of a u64).
fn push_varint(bytes: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => bytes.push(n as u8),
        251..=0xffff => {
            bytes.push(251);
            bytes.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            bytes.push(252);
            bytes.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            bytes.push(253);
            bytes.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Length-delimited frames (a 4-byte big-endian length, then that many bytes) of at most
/// `max_frame` bytes: a longer one is an error as soon as its length is read, and nothing of
/// that size is allocated. A frame from [`POOLED_FRAME_BYTES`] on is read into a buffer of
/// the process's pool (`frame_pool`), which is given back after it; after a smaller frame, the
/// buffer keeps room for another like it (up to [`KEEP_ROOM_BYTES`]): without it, a frame
/// that straddles the buffer's end takes two reads, one more system call.
pub(crate) struct Frames {
    max_frame: usize,
}

/// The most free room kept in a read buffer after a frame, for the next one.
const KEEP_ROOM_BYTES: usize = 8 * 1024;
/// A frame's length prefix.
const LENGTH_BYTES: usize = 4;

impl Frames {
    pub(crate) fn new(max_frame: usize) -> Frames {
        Frames { max_frame }
    }

    /// The error for a frame announced `length` bytes long, over the limit, saying what to do.
    fn too_long(&self, length: usize) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a frame of {length} bytes came, over the limit of {} bytes on this side; raise it on both sides ({FRAME_LIMIT_ENV}, or DaemonBuilder::max_frame_bytes and ClientConfig::max_frame_bytes), or send large data as an rmi::Stream",
                self.max_frame
            ),
        )
    }
}

/// Makes room in `src` for a whole frame of `needed` bytes (its length prefix included), of
/// which it holds the start: a large one in a pooled buffer if one is free.
fn make_room(src: &mut BytesMut, needed: usize) {
    if needed >= POOLED_FRAME_BYTES {
        if let Some(mut pooled) = frame_pool::take(needed) {
            pooled.extend_from_slice(src);
            *src = pooled;
            return;
        }
    }
    src.reserve(needed - src.len());
}

/// After a frame of `length` bytes was split off `src`: a large frame's buffer goes to the
/// pool (the frame still uses it; what followed it moves to a small buffer), a small one
/// keeps room for another like it.
fn after_frame(src: &mut BytesMut, length: usize) {
    if length + LENGTH_BYTES >= POOLED_FRAME_BYTES {
        let mut rest = BytesMut::with_capacity(src.len().max(KEEP_ROOM_BYTES));
        rest.extend_from_slice(src);
        let spent = std::mem::replace(src, rest);
        frame_pool::give(spent, length + LENGTH_BYTES);
    } else {
        src.reserve(length.min(KEEP_ROOM_BYTES) + LENGTH_BYTES);
    }
}

impl Decoder for Frames {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<BytesMut>> {
        let Some(prefix) = src.get(..LENGTH_BYTES) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(prefix.try_into().expect("sliced to its length")) as usize;
        if length > self.max_frame {
            return Err(self.too_long(length));
        }
        let needed = LENGTH_BYTES + length;
        if src.len() < needed {
            if src.capacity() < needed {
                make_room(src, needed);
            }
            return Ok(None);
        }
        src.advance(LENGTH_BYTES);
        let frame = src.split_to(length);
        after_frame(src, length);
        Ok(Some(frame))
    }
}

/// The daemon's reading of a connection: requests decoded from frames, each one's arguments
/// a view of its frame.
pub(crate) struct ServerFrames(Frames);

impl Decoder for ServerFrames {
    type Item = ClientMessage<Invoke>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<ClientMessage<Invoke>>> {
        match self.0.decode(src)? {
            Some(frame) => decode_client_message(&frame.freeze()).map(Some),
            None => Ok(None),
        }
    }
}

/// Reads `stream`'s requests, in frames of at most `max_frame` bytes. The daemon writes its
/// replies to the same stream itself (`FramedRead::get_mut`), each ending with its result's
/// bytes as they are ([`with_frame`]), so the connection has a read buffer only.
pub(crate) fn server_frames<S>(stream: S, max_frame: usize) -> FramedRead<S, ServerFrames>
where
    S: tokio::io::AsyncRead,
{
    // A small buffer to start with: it grows to what the connection's traffic needs, so an
    // idle connection costs the daemon little and a busy one no more reads than with a
    // large buffer.
    FramedRead::with_capacity(
        stream,
        ServerFrames(Frames::new(max_frame)),
        START_BUFFER_BYTES,
    )
}

/// The read buffer a connection starts with (`FramedRead::new` would take 8 KiB at once).
const START_BUFFER_BYTES: usize = 2 * 1024;

/// How many bytes of replies are gathered before they must be written.
pub(crate) const WRITE_BATCH_BYTES: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use tarpc::Response;

    /// `frames` as a stream of length-prefixed frames.
    fn framed(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for frame in frames {
            bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            bytes.extend_from_slice(frame);
        }
        bytes
    }

    /// Feeds `bytes` to a decoder `piece` bytes at a time, as reads would; the frames decoded.
    fn decode_in_pieces(bytes: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut frames = Frames::new(LARGEST_FRAME_BYTES);
        let mut src = BytesMut::new();
        let mut decoded = Vec::new();
        for chunk in bytes.chunks(piece) {
            src.extend_from_slice(chunk);
            while let Some(frame) = frames.decode(&mut src).unwrap() {
                decoded.push(frame.to_vec());
            }
        }
        assert!(src.is_empty(), "nothing left over");
        decoded
    }

    #[test]
    fn frames_small_and_large_arrive_whole_however_they_are_read() {
        let sent = vec![
            vec![1; 10],
            vec![2; 3 * POOLED_FRAME_BYTES],
            vec![],
            vec![3; POOLED_FRAME_BYTES - LENGTH_BYTES],
            vec![4; 2 * POOLED_FRAME_BYTES],
            vec![5; 7],
        ];
        let bytes = framed(&sent);
        for piece in [1, 3, 1000, 65_536, bytes.len()] {
            assert_eq!(
                decode_in_pieces(&bytes, piece),
                sent,
                "read {piece} at a time"
            );
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_from_its_length() {
        let mut frames = Frames::new(100);
        let mut src = BytesMut::from(&(101u32).to_be_bytes()[..]);
        let err = frames.decode(&mut src).unwrap_err();
        assert!(
            err.to_string()
                .contains("a frame of 101 bytes came, over the limit of 100 bytes"),
            "{err}"
        );
        assert!(src.capacity() < 101, "nothing of its size was allocated");
    }

    #[test]
    fn formats_round_trip_tuples() {
        for format in [Format::Bincode, Format::Json, Format::MessagePack] {
            let bytes = format.encode(&("a".to_string(), 5u64)).unwrap();
            let (a, b): (String, u64) = format.decode(&bytes.contiguous()).unwrap();
            assert_eq!((a.as_str(), b), ("a", 5));
        }
    }

    #[test]
    fn payloads_travel_as_byte_strings_inline_or_not() {
        for len in [0, 5, INLINE_PAYLOAD, INLINE_PAYLOAD + 1, 4096] {
            let payload = Payload::from(vec![7u8; len]);
            let framed = bincode_options().serialize(&payload).unwrap();
            let as_bytes: serde_bytes::ByteBuf = bincode_options().deserialize(&framed).unwrap();
            assert_eq!(as_bytes.len(), len);
            let back: Payload = bincode_options().deserialize(&framed).unwrap();
            assert_eq!(back, payload);
        }
    }

    #[test]
    fn a_batch_holds_its_large_items_as_they_are() {
        let item = Payload::from(vec![3u8; 100_000]);
        let small = Payload::from(vec![4u8; 100]);
        let batch = Batch {
            items: vec![small.clone(), item.clone(), small],
            end: true,
        };
        let payload = Format::Bincode.encode(&batch).unwrap();
        let pieces = payload.shared_pieces().unwrap();
        assert_eq!(pieces.len(), 3, "before, the large item, after");
        assert_eq!(
            pieces[1].as_ptr(),
            item.to_bytes().as_ptr(),
            "the same memory"
        );
        let written = bincode_options().serialize(&batch).unwrap();
        assert_eq!(&payload.contiguous()[..], &written[..]);
    }

    #[tokio::test]
    async fn a_payload_in_pieces_makes_the_same_frame_as_in_one() {
        let batch = Batch {
            items: vec![
                Payload::from(vec![5u8; 40_000]),
                Payload::from(vec![6u8; 30]),
            ],
            end: false,
        };
        let in_pieces = Format::Bincode.encode(&batch).unwrap();
        assert!(in_pieces.shared_pieces().unwrap().len() > 1);
        let in_one = Payload::from(in_pieces.contiguous().into_owned());
        let mut frames = Vec::new();
        for payload in [in_pieces, in_one] {
            let mut outgoing = crate::outgoing::Outgoing::default();
            let message = Response::<Reply> {
                request_id: 9,
                message: Ok(Ok(Payload::default())),
            };
            with_frame(&message, Some(&payload), |head, from| {
                outgoing.push_copy(head);
                outgoing.push_payload(&payload, from);
            })
            .unwrap();
            let mut written = Vec::new();
            std::future::poll_fn(|cx| outgoing.poll_write_to(std::pin::Pin::new(&mut written), cx))
                .await
                .unwrap();
            frames.push(written);
        }
        assert_eq!(frames[0], frames[1]);
        let decoded: Response<Reply> = bincode::DefaultOptions::new()
            .deserialize(&frames[0][LENGTH_BYTES..])
            .unwrap();
        let Ok(Ok(result)) = decoded.message else {
            panic!("not a result")
        };
        assert_eq!(
            result.len(),
            bincode_options().serialize(&batch).unwrap().len()
        );
    }

    #[test]
    fn decoding_the_wrong_type_is_an_error() {
        let bytes = Format::Json.encode(&("a",)).unwrap();
        assert!(Format::Json.decode::<(u64,)>(&bytes.contiguous()).is_err());
        let bytes = Format::Bincode.encode(&(1u8,)).unwrap();
        assert!(Format::Bincode
            .decode::<(String,)>(&bytes.contiguous())
            .is_err());
        // A prefix that happens to decode is not enough.
        let bytes = Format::Bincode.encode(&("far away", 7u64)).unwrap();
        assert!(Format::Bincode
            .decode::<(u8,)>(&bytes.contiguous())
            .is_err());
    }
}
