//! Pyro5's wire protocol, version 502, as Pyro5's `protocol.py` defines it: a 40-byte header,
//! then annotation chunks, then the payload in the serializer the header names.
//!
//! The header, big-endian (`struct` format `!4sHBBHHII16sHH`): `PYRO`, the protocol version,
//! the message type, the serializer id, flags, a sequence number (a reply repeats its
//! request's), the payload's length, the annotations' length, a 16-byte correlation id, two
//! reserved bytes, and the magic number 0x4dc5. Each annotation chunk is a 4-letter id, a
//! 4-byte length and its bytes.

use std::io::Read;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The first four bytes of every Pyro5 message.
pub(crate) const TAG: [u8; 4] = *b"PYRO";
/// The protocol version Pyro5 speaks (and the only one served).
pub(crate) const VERSION: u16 = 502;
const MAGIC: u16 = 0x4dc5;
/// The header's length.
pub(crate) const HEADER_BYTES: usize = 40;

/// A message's type, the header's third field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect = 1,
    ConnectOk = 2,
    ConnectFail = 3,
    Invoke = 4,
    Result = 5,
    Ping = 6,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Connect,
            2 => Kind::ConnectOk,
            3 => Kind::ConnectFail,
            4 => Kind::Invoke,
            5 => Kind::Result,
            6 => Kind::Ping,
            _ => return None,
        })
    }
}

/// The header's flags.
pub(crate) mod flags {
    /// The payload is an exception.
    pub(crate) const EXCEPTION: u16 = 1;
    /// The payload is zlib-compressed.
    pub(crate) const COMPRESSED: u16 = 1 << 1;
    /// The caller waits for no reply.
    pub(crate) const ONEWAY: u16 = 1 << 2;
    /// Several calls in one message (Pyro's batch proxy).
    pub(crate) const BATCH: u16 = 1 << 3;
    /// The result is an iterator: its items are fetched with `get_next_stream_item`.
    pub(crate) const ITEM_STREAM: u16 = 1 << 4;
    /// The header carries a correlation id.
    pub(crate) const CORRELATION_ID: u16 = 1 << 6;
}

/// Pyro5's serializers, by the id the header gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Serializer {
    /// Python literals, Pyro5's default.
    Serpent = 1,
    Marshal = 2,
    Json = 3,
    Msgpack = 4,
}

impl Serializer {
    /// The serializer of `id`, if Pyro5 has one by that id.
    pub(crate) fn of(id: u8) -> Option<Serializer> {
        Some(match id {
            1 => Serializer::Serpent,
            2 => Serializer::Marshal,
            3 => Serializer::Json,
            4 => Serializer::Msgpack,
            _ => return None,
        })
    }
}

/// An annotation chunk: its 4-letter id and its bytes.
pub(crate) type Annotation = ([u8; 4], Vec<u8>);

/// One message: its header's fields, its annotations and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) kind: Kind,
    /// The serializer id as sent (see [`Serializer::of`]).
    pub(crate) serializer: u8,
    pub(crate) flags: u16,
    pub(crate) seq: u16,
    pub(crate) correlation_id: [u8; 16],
    pub(crate) annotations: Vec<Annotation>,
    pub(crate) data: Vec<u8>,
}

/// Why bytes are not a Pyro5 message the daemon reads.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("not a Pyro5 message: it began with {0:02x?}")]
    NotPyro([u8; 4]),
    #[error("Pyro protocol version {0}, but only version {VERSION} (Pyro5) is served: Pyro4 clients cannot call rmi; use Pyro5 (its Pyro5.compatibility.Pyro4 layer keeps Pyro4's API)")]
    Version(u16),
    #[error("the header's magic number is {0:#06x}, not 0x4dc5")]
    Magic(u16),
    #[error("unknown message type {0}")]
    Kind(u8),
    #[error("a message of {size} bytes, over the daemon's limit of {limit}")]
    TooLarge { size: u64, limit: usize },
    #[error("the annotation chunks do not add up to their length")]
    Annotations,
    #[error("the compressed payload does not inflate: {0}")]
    Inflate(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Message {
    /// A message of `kind` answering `request` (same sequence number, serializer and
    /// correlation id), with `data` and `flags`.
    pub(crate) fn answer(request: &Message, kind: Kind, flags: u16, data: Vec<u8>) -> Message {
        Message {
            kind,
            serializer: request.serializer,
            flags: flags | (request.flags & flags::CORRELATION_ID),
            seq: request.seq,
            correlation_id: request.correlation_id,
            annotations: Vec::new(),
            data,
        }
    }

    /// Reads one message whose first four bytes (`PYRO`) were read already, refusing one of
    /// more than `limit` bytes before reading its payload. A compressed payload is inflated
    /// (to at most `limit` bytes).
    pub(crate) async fn read_rest<S: AsyncRead + Unpin>(
        stream: &mut S,
        limit: usize,
    ) -> Result<Message, WireError> {
        let mut header = [0u8; HEADER_BYTES];
        header[..4].copy_from_slice(&TAG);
        stream.read_exact(&mut header[4..]).await?;
        let mut message = Message::from_header(&header)?;
        let data_len = u32::from_be_bytes(header[12..16].try_into().expect("4 bytes")) as u64;
        let annotations_len =
            u32::from_be_bytes(header[16..20].try_into().expect("4 bytes")) as u64;
        let size = data_len + annotations_len;
        if size > limit as u64 {
            return Err(WireError::TooLarge { size, limit });
        }
        let mut annotations = vec![0u8; annotations_len as usize];
        stream.read_exact(&mut annotations).await?;
        message.annotations = parse_annotations(&annotations)?;
        message.data = vec![0u8; data_len as usize];
        stream.read_exact(&mut message.data).await?;
        if message.flags & flags::COMPRESSED != 0 {
            message.data = inflate(&message.data, limit)?;
            message.flags &= !flags::COMPRESSED;
        }
        Ok(message)
    }

    /// Reads one message, `PYRO` included.
    pub(crate) async fn read<S: AsyncRead + Unpin>(
        stream: &mut S,
        limit: usize,
    ) -> Result<Message, WireError> {
        let mut tag = [0u8; 4];
        stream.read_exact(&mut tag).await?;
        if tag != TAG {
            return Err(WireError::NotPyro(tag));
        }
        Message::read_rest(stream, limit).await
    }

    /// The message's fields from its header (its lengths are read by the caller).
    fn from_header(header: &[u8; HEADER_BYTES]) -> Result<Message, WireError> {
        let u16_at = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        if header[..4] != TAG {
            return Err(WireError::NotPyro(header[..4].try_into().expect("4 bytes")));
        }
        if u16_at(4) != VERSION {
            return Err(WireError::Version(u16_at(4)));
        }
        if u16_at(38) != MAGIC {
            return Err(WireError::Magic(u16_at(38)));
        }
        Ok(Message {
            kind: Kind::of(header[6]).ok_or(WireError::Kind(header[6]))?,
            serializer: header[7],
            flags: u16_at(8),
            seq: u16_at(10),
            correlation_id: header[20..36].try_into().expect("16 bytes"),
            annotations: Vec::new(),
            data: Vec::new(),
        })
    }

    /// The message as bytes: header, annotations, payload.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let annotations_len: usize = self.annotations.iter().map(|(_, a)| 8 + a.len()).sum();
        let mut bytes = Vec::with_capacity(HEADER_BYTES + annotations_len + self.data.len());
        bytes.extend_from_slice(&TAG);
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        bytes.push(self.kind as u8);
        bytes.push(self.serializer);
        bytes.extend_from_slice(&self.flags.to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&len32(self.data.len()).to_be_bytes());
        bytes.extend_from_slice(&len32(annotations_len).to_be_bytes());
        bytes.extend_from_slice(&self.correlation_id);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC.to_be_bytes());
        for (id, annotation) in &self.annotations {
            bytes.extend_from_slice(id);
            bytes.extend_from_slice(&len32(annotation.len()).to_be_bytes());
            bytes.extend_from_slice(annotation);
        }
        bytes.extend_from_slice(&self.data);
        bytes
    }
}

/// A length as the header holds it (the daemon never writes 4 GiB in one message).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The annotation chunks of `bytes`, which must be exactly whole chunks.
fn parse_annotations(mut bytes: &[u8]) -> Result<Vec<Annotation>, WireError> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        let Some((head, rest)) = bytes.split_at_checked(8) else {
            return Err(WireError::Annotations);
        };
        let len = u32::from_be_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
        let Some((data, rest)) = rest.split_at_checked(len) else {
            return Err(WireError::Annotations);
        };
        chunks.push((head[..4].try_into().expect("4 bytes"), data.to_vec()));
        bytes = rest;
    }
    Ok(chunks)
}

/// Inflates a zlib payload to at most `limit` bytes: a small message cannot become a large
/// one in memory.
fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| WireError::Inflate(e.to_string()))?;
    if inflated.len() > limit {
        return Err(WireError::TooLarge {
            size: inflated.len() as u64,
            limit,
        });
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            kind: Kind::Invoke,
            serializer: Serializer::Serpent as u8,
            flags: flags::CORRELATION_ID,
            seq: 7,
            correlation_id: [9; 16],
            annotations: vec![(*b"CORR", b"xyz".to_vec())],
            data: b"('obj', 'ping', (), {})".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_message_reads_back_as_written() {
        let bytes = message().to_bytes();
        // Python: struct.pack('!4sHBBHHII16sHH', b'PYRO', 502, 4, 1, 64, 7, 23, 11, b'\t'*16, 0, 0x4dc5)
        assert_eq!(&bytes[..8], b"PYRO\x01\xf6\x04\x01");
        assert_eq!(&bytes[38..40], &[0x4d, 0xc5]);
        let read = Message::read(&mut &bytes[..], 1 << 20).await.unwrap();
        assert_eq!(read, message());
    }

    #[tokio::test]
    async fn bad_headers_and_sizes_are_refused_before_the_payload() {
        let bytes = message().to_bytes();
        let mut old = bytes.clone();
        old[4..6].copy_from_slice(&501u16.to_be_bytes());
        let error = Message::read(&mut &old[..], 1 << 20).await.unwrap_err();
        assert!(
            error.to_string().contains("Pyro4 clients cannot call rmi"),
            "{error}"
        );
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        let error = Message::read(&mut &huge[..], 1 << 20).await.unwrap_err();
        assert!(matches!(error, WireError::TooLarge { .. }), "{error}");
        let mut torn = bytes.clone();
        torn[16..20].copy_from_slice(&9u32.to_be_bytes());
        torn.insert(40, 0);
        let error = Message::read(&mut &torn[..], 1 << 20).await.unwrap_err();
        assert!(matches!(error, WireError::Annotations), "{error}");
    }

    proptest::proptest! {
        /// Any bytes after `PYRO`, a damaged header among them, read as a message or an
        /// error, never a panic, and never a payload over the limit.
        #[test]
        fn any_bytes_read_as_a_message_or_an_error(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            flip in 0usize..40,
        ) {
            let mut message = message().to_bytes();
            message[flip.max(4)] ^= 0x5a;
            for input in [&bytes[..], &message[4..]] {
                let read = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
                    .block_on(Message::read_rest(&mut &input[..], 64));
                if let Ok(read) = read {
                    proptest::prop_assert!(read.data.len() <= 64);
                }
            }
        }
    }

    #[tokio::test]
    async fn a_compressed_payload_inflates_within_the_limit() {
        use std::io::Write;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&[b'a'; 4096]).unwrap();
        let mut compressed = message();
        compressed.flags |= flags::COMPRESSED;
        compressed.data = zlib.finish().unwrap();
        let bytes = compressed.to_bytes();
        let read = Message::read(&mut &bytes[..], 1 << 20).await.unwrap();
        assert_eq!(read.data, vec![b'a'; 4096]);
        assert_eq!(read.flags & flags::COMPRESSED, 0);
        let error = Message::read(&mut &bytes[..], 1024).await.unwrap_err();
        assert!(
            matches!(error, WireError::TooLarge { .. }),
            "a zlib bomb: {error}"
        );
    }
}
