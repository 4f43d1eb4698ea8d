//! [`Blob`]: bytes that travel as one byte string.
//!
//! serde writes a `Vec<u8>` as a sequence of numbers: in MessagePack that is one marker per
//! byte above 127 (1.5 times the size on average), encoded and decoded one byte at a time.
//! `#[expose]` sends every parameter and result whose type is `Vec<u8>`, `[u8; N]`,
//! `Box<[u8]>` or `serde_bytes::ByteBuf` (alone, or in the `Ok` of a `Result`, an `Option` or
//! a `Stream`) as one byte string (MessagePack `bin`). On the way out the bytes are moved,
//! not copied, into a [`LentBlob`], and a large one is written to the socket from where it
//! is; on the way in, they are read into a [`Blob`], copied in one piece.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio_util::bytes::Bytes as SharedBytes;

/// A byte container (`Vec<u8>`, `[u8; N]`, `Box<[u8]>`) written as one byte string.
///
/// Generated code wraps byte parameters and results in it; it reads a sequence of numbers
/// as well (what a JSON caller sends, as `serde_json` writes a `Vec<u8>`), so callers without
/// Rust types still work. In a struct of your own, `#[serde(with = "serde_bytes")]` on the
/// field does the same.
///
/// ```
/// use rmi::__private::Blob;
/// let packed = rmp_serde::to_vec(&Blob(vec![200u8; 4])).unwrap();
/// assert_eq!(packed, [0xc4, 4, 200, 200, 200, 200]); // bin 8, length 4, the bytes
/// let Blob(back): Blob<Vec<u8>> = rmp_serde::from_slice(&packed).unwrap();
/// assert_eq!(back, [200; 4]);
/// let Blob(numbers): Blob<Vec<u8>> = serde_json::from_str("[1,2,3]").unwrap();
/// assert_eq!(numbers, [1, 2, 3]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blob<T>(pub T);

impl<T> Blob<T> {
    /// The bytes inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde_bytes::Serialize> Serialize for Blob<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Serialize::serialize(&self.0, serializer)
    }
}

impl<'de, T: serde_bytes::Deserialize<'de>> Deserialize<'de> for Blob<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_bytes::Deserialize::deserialize(deserializer).map(Blob)
    }
}

/// Bytes on their way out, moved out of the container that held them. A large byte string
/// is lent to the encoding (`wire::lend`): the payload holds it as it is, and it is written
/// to the socket from there, never copied. It reads back from the wire as it was written.
///
/// ```
/// use rmi::__private::{Blob, LentBlob};
/// let packed = rmp_serde::to_vec(&LentBlob::from(vec![200u8; 4])).unwrap();
/// assert_eq!(packed, [0xc4, 4, 200, 200, 200, 200]);
/// let Blob(back): Blob<Vec<u8>> = rmp_serde::from_slice(&packed).unwrap();
/// assert_eq!(back, [200; 4]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LentBlob(SharedBytes);

impl<T: OwnedBytes> From<T> for LentBlob {
    fn from(bytes: T) -> LentBlob {
        LentBlob(bytes.into_shared())
    }
}

impl Serialize for LentBlob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::wire::lend(&self.0);
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for LentBlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Blob(bytes): Blob<Vec<u8>> = Blob::deserialize(deserializer)?;
        Ok(LentBlob::from(bytes))
    }
}

/// A container that `#[expose]` sends as one byte string: it gives its bytes up as shared
/// bytes, without a copy where it owns them on the heap.
#[diagnostic::on_unimplemented(
    message = "`#[expose]` sends `{Self}` as bytes, but it is not a byte container rmi knows",
    note = "rmi sends `Vec<u8>`, `[u8; N]`, `Box<[u8]>` and `serde_bytes::ByteBuf` as byte strings; a type of your own with one of these names must be renamed, or imported under another name"
)]
pub trait OwnedBytes: Sized {
    /// The bytes, as shared bytes.
    fn into_shared(self) -> SharedBytes;
}

impl OwnedBytes for Vec<u8> {
    fn into_shared(self) -> SharedBytes {
        SharedBytes::from(self)
    }
}

impl OwnedBytes for Box<[u8]> {
    fn into_shared(self) -> SharedBytes {
        SharedBytes::from(self)
    }
}

impl<const N: usize> OwnedBytes for [u8; N] {
    fn into_shared(self) -> SharedBytes {
        SharedBytes::copy_from_slice(&self)
    }
}

impl OwnedBytes for serde_bytes::ByteBuf {
    fn into_shared(self) -> SharedBytes {
        SharedBytes::from(self.into_vec())
    }
}

/// How a parameter or result of type `T` travels, as `#[expose]` chose from its type as
/// written: the forms it takes on the wire, and the ways into and out of them. Generated
/// code uses it only for types with bytes in them; every other type travels as it is.
pub trait WireForm<T> {
    /// What is encoded in `T`'s place on the way out.
    type Sent;
    /// What is decoded in `T`'s place on the way in.
    type Form;
    /// `value` as it goes on the wire.
    fn to_wire(value: T) -> Self::Sent;
    /// The value back from the wire.
    fn from_wire(form: Self::Form) -> T;
}

/// `Vec<u8>`, `[u8; N]`, `Box<[u8]>`, `serde_bytes::ByteBuf`: a [`LentBlob`] out, a [`Blob`]
/// in.
pub struct Bytes;

impl<T: OwnedBytes> WireForm<T> for Bytes {
    type Sent = LentBlob;
    type Form = Blob<T>;
    fn to_wire(value: T) -> LentBlob {
        LentBlob::from(value)
    }
    fn from_wire(form: Blob<T>) -> T {
        form.0
    }
}

/// `Result<bytes, E>`: the bytes as [`Bytes`] has them, the error as it is.
pub struct BytesInOk;

impl<T: OwnedBytes, E> WireForm<Result<T, E>> for BytesInOk {
    type Sent = Result<LentBlob, E>;
    type Form = Result<Blob<T>, E>;
    fn to_wire(value: Result<T, E>) -> Self::Sent {
        value.map(LentBlob::from)
    }
    fn from_wire(form: Self::Form) -> Result<T, E> {
        form.map(Blob::into_inner)
    }
}

/// `Option<bytes>`: the bytes as [`Bytes`] has them.
pub struct BytesInSome;

impl<T: OwnedBytes> WireForm<Option<T>> for BytesInSome {
    type Sent = Option<LentBlob>;
    type Form = Option<Blob<T>>;
    fn to_wire(value: Option<T>) -> Self::Sent {
        value.map(LentBlob::from)
    }
    fn from_wire(form: Self::Form) -> Option<T> {
        form.map(Blob::into_inner)
    }
}

/// `rmi::Stream<bytes>`: each item in a [`Blob`] (implemented with the stream).
pub struct BytesInStream;

/// `Result<rmi::Stream<bytes>, E>`: the stream's items in [`Blob`]s, the error as it is.
pub struct BytesStreamInOk;

#[cfg(test)]
mod tests {
    use super::{Blob, LentBlob};
    use crate::wire::{EncodeError, Format};

    #[test]
    fn every_byte_type_round_trips_as_one_byte_string_in_every_format() {
        let bytes: Vec<u8> = (0..=255).collect();
        for format in [Format::MessagePack, Format::Bincode, Format::Json] {
            let encoded = format.encode(&(Blob(bytes.clone()),)).unwrap();
            let (Blob(back),): (Blob<Vec<u8>>,) = format.decode(&encoded.contiguous()).unwrap();
            assert_eq!(back, bytes);
            let boxed = format
                .encode(&Blob(bytes.clone().into_boxed_slice()))
                .unwrap();
            let Blob(back): Blob<Box<[u8]>> = format.decode(&boxed.contiguous()).unwrap();
            assert_eq!(&back[..], &bytes[..]);
            let array = format.encode(&Blob([7u8; 32])).unwrap();
            let Blob(back): Blob<[u8; 32]> = format.decode(&array.contiguous()).unwrap();
            assert_eq!(back, [7; 32]);
        }
        // In MessagePack: a 3-byte head (bin 16 and its length), then the bytes as they are.
        let encoded = Format::MessagePack.encode(&Blob(bytes.clone())).unwrap();
        assert_eq!(encoded.len(), 3 + 256);
    }

    #[test]
    fn large_bytes_are_lent_to_the_payload_not_copied() {
        let bytes = vec![9u8; 100_000];
        let sent = LentBlob::from(bytes.clone());
        let value = ("name", sent.clone(), 7u32);
        let payload = Format::MessagePack.encode(&value).unwrap();
        let pieces = payload.shared_pieces().unwrap();
        assert_eq!(pieces.len(), 3, "before, the bytes, after");
        assert_eq!(pieces[1].as_ptr(), sent.0.as_ptr(), "the same memory");
        let written = rmp_serde::to_vec_named(&("name", Blob(&bytes[..]), 7u32)).unwrap();
        assert_eq!(&payload.contiguous()[..], &written[..]);
        let (name, Blob(back), n): (String, Blob<Vec<u8>>, u32) =
            Format::MessagePack.decode(&payload.contiguous()).unwrap();
        assert_eq!((name.as_str(), back, n), ("name", bytes, 7));
        // An item of a stream is one piece: its batch lends it whole.
        let item = Format::MessagePack
            .encode_item_within(&sent, usize::MAX)
            .unwrap();
        assert_eq!(item.shared_pieces().unwrap().len(), 1);
        // Small ones are copied: one piece.
        let small = Format::MessagePack
            .encode(&(LentBlob::from(vec![1u8; 100]),))
            .unwrap();
        assert_eq!(small.shared_pieces().unwrap().len(), 1);
    }

    #[test]
    fn lent_bytes_count_against_the_limit() {
        let sent = LentBlob::from(vec![9u8; 100_000]);
        let refused = Format::MessagePack.encode_within(&(sent,), 50_000);
        assert!(matches!(refused, Err(EncodeError::TooLarge(50_000))));
    }

    #[test]
    fn a_sequence_of_numbers_still_reads_as_bytes() {
        let numbers = Format::MessagePack.encode(&vec![1u8, 200, 3]).unwrap();
        let Blob(back): Blob<Vec<u8>> = Format::MessagePack.decode(&numbers.contiguous()).unwrap();
        assert_eq!(back, [1, 200, 3]);
    }
}
