//! [`Blob`]: bytes that travel as one byte string.
//!
//! serde writes a `Vec<u8>` as a sequence of numbers: in MessagePack that is one marker per
//! byte above 127 (1.5 times the size on average), encoded and decoded one byte at a time.
//! `#[expose]` sends every parameter and result whose type is `Vec<u8>`, `[u8; N]` or
//! `Box<[u8]>` (alone, or in the `Ok` of a `Result`, an `Option` or a `Stream`) inside a
//! `Blob`, which writes it as one byte string (MessagePack `bin`), copied in one piece.
//! `serde_bytes::ByteBuf` and `bytes::Bytes` already write themselves so.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte container (`Vec<u8>`, `[u8; N]`, `Box<[u8]>`) written as one byte string.
///
/// Generated code wraps byte parameters and results in it; it reads a sequence of numbers
/// as well (what a JSON caller sends, or what a `Vec<u8>` was before), so callers without
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

/// How a parameter or result of type `T` travels, as `#[expose]` chose from its type as
/// written: the form it takes on the wire, and the way into and out of it. Generated code
/// uses it only for types with bytes in them; every other type travels as it is.
pub trait WireForm<T> {
    /// What is encoded in `T`'s place.
    type Form;
    /// `value` as it goes on the wire.
    fn to_wire(value: T) -> Self::Form;
    /// The value back from the wire.
    fn from_wire(form: Self::Form) -> T;
}

/// `Vec<u8>`, `[u8; N]`, `Box<[u8]>`: in a [`Blob`].
pub struct Bytes;

impl<T> WireForm<T> for Bytes {
    type Form = Blob<T>;
    fn to_wire(value: T) -> Blob<T> {
        Blob(value)
    }
    fn from_wire(form: Blob<T>) -> T {
        form.0
    }
}

/// `Result<bytes, E>`: the bytes in a [`Blob`], the error as it is.
pub struct BytesInOk;

impl<T, E> WireForm<Result<T, E>> for BytesInOk {
    type Form = Result<Blob<T>, E>;
    fn to_wire(value: Result<T, E>) -> Self::Form {
        value.map(Blob)
    }
    fn from_wire(form: Self::Form) -> Result<T, E> {
        form.map(Blob::into_inner)
    }
}

/// `Option<bytes>`: the bytes in a [`Blob`].
pub struct BytesInSome;

impl<T> WireForm<Option<T>> for BytesInSome {
    type Form = Option<Blob<T>>;
    fn to_wire(value: Option<T>) -> Self::Form {
        value.map(Blob)
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
    use super::Blob;
    use crate::wire::Format;

    #[test]
    fn every_byte_type_round_trips_as_one_byte_string_in_every_format() {
        let bytes: Vec<u8> = (0..=255).collect();
        for format in [Format::MessagePack, Format::Bincode, Format::Json] {
            let encoded = format.encode(&(Blob(bytes.clone()),)).unwrap();
            let (Blob(back),): (Blob<Vec<u8>>,) = format.decode(&encoded).unwrap();
            assert_eq!(back, bytes);
            let boxed = format
                .encode(&Blob(bytes.clone().into_boxed_slice()))
                .unwrap();
            let Blob(back): Blob<Box<[u8]>> = format.decode(&boxed).unwrap();
            assert_eq!(&back[..], &bytes[..]);
            let array = format.encode(&Blob([7u8; 32])).unwrap();
            let Blob(back): Blob<[u8; 32]> = format.decode(&array).unwrap();
            assert_eq!(back, [7; 32]);
        }
        // In MessagePack: a 3-byte head (bin 16 and its length), then the bytes as they are.
        let encoded = Format::MessagePack.encode(&Blob(bytes.clone())).unwrap();
        assert_eq!(encoded.len(), 3 + 256);
    }

    #[test]
    fn a_sequence_of_numbers_still_reads_as_bytes() {
        let numbers = Format::MessagePack.encode(&vec![1u8, 200, 3]).unwrap();
        let Blob(back): Blob<Vec<u8>> = Format::MessagePack.decode(&numbers).unwrap();
        assert_eq!(back, [1, 200, 3]);
    }
}
