//! Decoding with a bound on nesting, for bincode and MessagePack.
//!
//! Both decoders read through [`Guarded`]. bincode decodes a recursive type (`enum Tree { Leaf, Node(Box<Tree>) }`) recursively, one
//! stack frame or more per level, and each level costs the sender one byte: a 16 MiB frame
//! could nest deep enough to overflow any thread's stack, which aborts the process. Every
//! level reads at least one byte through the reader, so the reader is where the depth is
//! watched: it measures how far the stack has grown since decoding began and fails the
//! decoding past [`MAX_STACK_BYTES`]. A clock-free, allocation-free check of one address per
//! read, whatever the types.

use std::cell::Cell;
use std::io;

use bincode::{BincodeRead, Options};
use serde::de::{DeserializeOwned, Visitor};

/// How much stack a decoding may use: ample for any sane value (a level takes a few hundred
/// bytes at most), far below a thread's stack (tokio's workers have 2 MiB).
pub(crate) const MAX_STACK_BYTES: usize = 256 * 1024;

/// Where the stack is now (its growth direction does not matter: distances are compared).
/// Inlined, it is the caller's frame: as good a mark, and one instruction.
#[inline(always)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Decodes a `T` from all of `bytes` with `options`, refusing trailing bytes and nesting
/// that would take more than [`MAX_STACK_BYTES`] of stack.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    options: impl Options,
) -> Result<T, bincode::Error> {
    let left = Cell::new(bytes.len());
    let reader = Guarded {
        slice: bytes,
        left: &left,
        base: stack_position(),
    };
    let mut deserializer = bincode::Deserializer::with_bincode_read(reader, options);
    let value = T::deserialize(&mut deserializer)?;
    if left.get() != 0 {
        return Err(Box::new(bincode::ErrorKind::Custom(format!(
            "{} bytes left over after the value: it was encoded from another type",
            left.get()
        ))));
    }
    Ok(value)
}

/// Decodes a `T` from all of `bytes`, written as MessagePack, refusing trailing bytes and
/// nesting that would take more than [`MAX_STACK_BYTES`] of stack.
pub(crate) fn decode_msgpack<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let left = Cell::new(bytes.len());
    let reader = Guarded {
        slice: bytes,
        left: &left,
        base: stack_position(),
    };
    let mut deserializer = rmp_serde::Deserializer::new(reader);
    // The stack is the bound that matters; a count of levels would refuse values that fit.
    deserializer.set_max_depth(usize::MAX);
    let value = T::deserialize(&mut deserializer)?;
    if left.get() != 0 {
        return Err(serde::de::Error::custom(format_args!(
            "{} bytes left over after the value: it was encoded from another type",
            left.get()
        )));
    }
    Ok(value)
}

/// A slice reader that fails once the stack has grown too far.
struct Guarded<'s, 'c> {
    slice: &'s [u8],
    left: &'c Cell<usize>,
    base: usize,
}

impl<'s> Guarded<'s, '_> {
    #[inline]
    fn check_depth(&self) -> io::Result<()> {
        if stack_position().abs_diff(self.base) > MAX_STACK_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the value is nested too deeply",
            ));
        }
        Ok(())
    }

    #[inline]
    fn take(&mut self, length: usize) -> bincode::Result<&'s [u8]> {
        self.check_depth()?;
        if length > self.slice.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let (taken, rest) = self.slice.split_at(length);
        self.slice = rest;
        self.left.set(rest.len());
        Ok(taken)
    }
}

impl io::Read for Guarded<'_, '_> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let taken = self.take(out.len()).map_err(|e| match *e {
            bincode::ErrorKind::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        })?;
        out.copy_from_slice(taken);
        Ok(out.len())
    }

    /// What bincode calls for each number and tag: kept short, as every value passes here.
    #[inline]
    fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        if out.len() > self.slice.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.check_depth()?;
        let (taken, rest) = self.slice.split_at(out.len());
        match out {
            [byte] => *byte = taken[0],
            _ => out.copy_from_slice(taken),
        }
        self.slice = rest;
        self.left.set(rest.len());
        Ok(())
    }
}

impl<'s> BincodeRead<'s> for Guarded<'s, '_> {
    fn forward_read_str<V: Visitor<'s>>(
        &mut self,
        length: usize,
        visitor: V,
    ) -> bincode::Result<V::Value> {
        let bytes = self.take(length)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Box::new(bincode::ErrorKind::InvalidUtf8Encoding(e)))?;
        visitor.visit_borrowed_str(text)
    }

    fn get_byte_buffer(&mut self, length: usize) -> bincode::Result<Vec<u8>> {
        self.take(length).map(<[u8]>::to_vec)
    }

    fn forward_read_bytes<V: Visitor<'s>>(
        &mut self,
        length: usize,
        visitor: V,
    ) -> bincode::Result<V::Value> {
        visitor.visit_borrowed_bytes(self.take(length)?)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    fn options() -> impl bincode::Options {
        bincode::DefaultOptions::new()
    }

    #[test]
    fn ordinary_values_decode_and_trailing_bytes_are_refused() {
        use bincode::Options;
        let bytes = options()
            .serialize(&("text".to_string(), 7u64, vec![1u8, 2]))
            .unwrap();
        let (text, n, v): (String, u64, Vec<u8>) = super::decode(&bytes, options()).unwrap();
        assert_eq!((text.as_str(), n, v.as_slice()), ("text", 7, &[1u8, 2][..]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(super::decode::<(String, u64, Vec<u8>)>(&longer, options()).is_err());
    }

    #[test]
    fn a_recursive_value_nested_past_the_bound_is_refused_not_a_crash() {
        // Each level is one byte (the variant `Node`), then `Leaf`: 10 million levels would
        // take gigabytes of stack.
        let mut bytes = vec![1u8; 10_000_000];
        bytes.push(0);
        let refused = super::decode::<Tree>(&bytes, options()).unwrap_err();
        assert!(
            refused.to_string().contains("nested too deeply"),
            "{refused}"
        );
        // A shallow tree is fine.
        let shallow = [1u8, 1, 1, 0];
        assert!(super::decode::<Tree>(&shallow, options()).is_ok());
    }

    #[test]
    fn messagepack_nested_past_the_bound_is_refused_not_a_crash() {
        // `Node(Box<Tree>)` is `{"Node": …}`: a one-entry map (0x81), the name, the value.
        let level = [&[0x81, 0xa4][..], b"Node"].concat();
        let mut bytes = level.repeat(2_000_000);
        bytes.extend([0xa4]);
        bytes.extend(b"Leaf");
        let refused = super::decode_msgpack::<Tree>(&bytes).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("nested too deeply"), "{message}");
        let shallow = rmp_serde::to_vec(&Tree::Node(Box::new(Tree::Leaf))).unwrap();
        assert!(super::decode_msgpack::<Tree>(&shallow).is_ok());
        let mut longer = shallow.clone();
        longer.push(0xc0);
        assert!(super::decode_msgpack::<Tree>(&longer).is_err());
    }
}
