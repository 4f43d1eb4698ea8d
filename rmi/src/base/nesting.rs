//! Decoding with a bound on nesting, for bincode and MessagePack.
//!
//! bincode always reads through [`Guarded`]; MessagePack does when a scan finds the value
//! deeper than [`SHALLOW_LEVELS`] or malformed (most values are decoded straight from the slice).
//!
//! bincode decodes a recursive type (`enum Tree { Leaf, Node(Box<Tree>) }`) recursively, one
//! stack frame or more per level, and each level costs the sender one byte: a 16 MiB frame
//! could nest deep enough to overflow any thread's stack, which aborts the process. Every
//! level reads at least one byte through the reader, so the reader is where the depth is
//! watched: it measures how far the stack has grown since decoding began and fails the
//! decoding past [`MAX_STACK_BYTES`]. A clock-free, allocation-free check of one address per
//! read, whatever the types.

use std::cell::Cell;
use std::io;

use smallvec::SmallVec;

use bincode::{BincodeRead, Options};
use serde::de::{Deserialize, DeserializeOwned, Visitor};

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

/// How many levels of MessagePack nesting are decoded straight from the slice. Values this
/// shallow cannot take much stack whatever their types, and nearly every value is.
const SHALLOW_LEVELS: usize = 64;

/// Decodes a `T` from all of `bytes`, written as MessagePack, refusing trailing bytes and
/// nesting that would take more than [`MAX_STACK_BYTES`] of stack.
///
/// rmp-serde's own limit counts arrays and maps but not enums, so it cannot bound the stack.
/// Instead the bytes are first scanned, without recursion, for how deep the value nests: a
/// value at most [`SHALLOW_LEVELS`] deep decodes straight from the slice (no copy, no check
/// per read); a deeper or malformed one is decoded through [`Guarded`], which measures the
/// stack as it reads.
pub(crate) fn decode_msgpack<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    match msgpack_scan(bytes) {
        Scan::Shallow(end) if end == bytes.len() => {}
        Scan::Shallow(_) => return Err(left_over()),
        Scan::DeepOrMalformed => return decode_msgpack_guarded(bytes),
    }
    let mut shallow = rmp_serde::Deserializer::from_read_ref(bytes);
    shallow.set_max_depth(usize::MAX);
    let value = T::deserialize(&mut shallow)?;
    // The value must have taken every byte: a type that reads less is another type.
    match serde::de::IgnoredAny::deserialize(&mut shallow) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == io::ErrorKind::UnexpectedEof =>
        {
            Ok(value)
        }
        _ => Err(left_over()),
    }
}

/// What [`msgpack_scan`] found.
#[derive(Debug, PartialEq)]
enum Scan {
    /// One well-formed value, at most [`SHALLOW_LEVELS`] deep, ending at this offset.
    Shallow(usize),
    /// Deeper, or not MessagePack: the careful decoder will say which.
    DeepOrMalformed,
}

/// Finds where the first MessagePack value in `bytes` ends, iteratively, giving up past
/// [`SHALLOW_LEVELS`] levels of arrays and maps (enums and structs are maps or arrays too).
fn msgpack_scan(bytes: &[u8]) -> Scan {
    // Items left in each open array or map (a map's entry is two items).
    let mut open: SmallVec<[u64; SHALLOW_LEVELS]> = SmallVec::new();
    let mut at = 0usize;
    loop {
        let Some(item) = msgpack_item(bytes, at) else {
            return Scan::DeepOrMalformed;
        };
        at = match at.checked_add(item.length) {
            Some(end) if end <= bytes.len() => end,
            _ => return Scan::DeepOrMalformed,
        };
        if item.children > 0 {
            if open.len() == SHALLOW_LEVELS {
                return Scan::DeepOrMalformed;
            }
            open.push(item.children);
            continue;
        }
        // The item is whole: so is every container it was the last item of.
        loop {
            match open.last_mut() {
                None => return Scan::Shallow(at),
                Some(left) if *left > 1 => {
                    *left -= 1;
                    break;
                }
                Some(_) => {
                    open.pop();
                }
            }
        }
    }
}

/// One MessagePack item's head: its length in bytes (head and contents, not children) and
/// how many items follow inside it.
struct Item {
    length: usize,
    children: u64,
}

/// The item at `at`, or `None` if the bytes end first or hold a reserved marker.
fn msgpack_item(bytes: &[u8], at: usize) -> Option<Item> {
    let marker = *bytes.get(at)?;
    // The big-endian number of `width` bytes after the marker.
    let number = |width: usize| -> Option<u64> {
        let field = bytes.get(at + 1..at + 1 + width)?;
        Some(field.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    };
    let scalar = |length: usize| {
        Some(Item {
            length,
            children: 0,
        })
    };
    // A string, byte string or extension: head, then `size` bytes (plus a type byte for ext).
    let sized = |width: usize, extra: usize| {
        let size = usize::try_from(number(width)?).ok()?;
        scalar((1 + width + extra).checked_add(size)?)
    };
    let container = |head: usize, count: u64, per_entry: u64| {
        Some(Item {
            length: head,
            children: count * per_entry,
        })
    };
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => scalar(1),
        0x80..=0x8f => container(1, u64::from(marker & 0x0f), 2),
        0x90..=0x9f => container(1, u64::from(marker & 0x0f), 1),
        0xa0..=0xbf => scalar(1 + usize::from(marker & 0x1f)),
        0xc4 | 0xd9 => sized(1, 0),
        0xc5 | 0xda => sized(2, 0),
        0xc6 | 0xdb => sized(4, 0),
        0xc7 => sized(1, 1),
        0xc8 => sized(2, 1),
        0xc9 => sized(4, 1),
        0xcc | 0xd0 => scalar(2),
        0xcd | 0xd1 => scalar(3),
        0xca | 0xce | 0xd2 => scalar(5),
        0xcb | 0xcf | 0xd3 => scalar(9),
        0xd4..=0xd8 => scalar(2 + (1 << (marker - 0xd4))),
        0xdc => container(3, number(2)?, 1),
        0xdd => container(5, number(4)?, 1),
        0xde => container(3, number(2)?, 2),
        0xdf => container(5, number(4)?, 2),
        0xc1 => None,
    }
}

/// [`decode_msgpack`] for a value nested deeper than [`SHALLOW_LEVELS`], or malformed.
fn decode_msgpack_guarded<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let left = Cell::new(bytes.len());
    let reader = Guarded {
        slice: bytes,
        left: &left,
        base: stack_position(),
    };
    let mut deserializer = rmp_serde::Deserializer::new(reader);
    // The stack is the bound that matters here, not the count of levels.
    deserializer.set_max_depth(usize::MAX);
    let value = T::deserialize(&mut deserializer)?;
    if left.get() != 0 {
        return Err(left_over());
    }
    Ok(value)
}

fn left_over() -> rmp_serde::decode::Error {
    serde::de::Error::custom("bytes left over after the value: it was encoded from another type")
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
        for depth in [1, super::SHALLOW_LEVELS + 10, 200] {
            let mut tree = Tree::Leaf;
            for _ in 0..depth {
                tree = Tree::Node(Box::new(tree));
            }
            let bytes = rmp_serde::to_vec(&tree).unwrap();
            assert!(
                super::decode_msgpack::<Tree>(&bytes).is_ok(),
                "{depth} levels"
            );
            let mut longer = bytes.clone();
            longer.push(0xc0);
            assert!(
                super::decode_msgpack::<Tree>(&longer).is_err(),
                "{depth} levels"
            );
            assert!(super::decode_msgpack::<Tree>(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn mutated_messagepack_decodes_or_fails_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let value =
            serde_json::json!({"a": [1, "two", {"three": [3.5, null]}], "b": "x".repeat(40)});
        let bytes = rmp_serde::to_vec(&value).unwrap();
        for _ in 0..5000 {
            let mut mutated = bytes.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..mutated.len());
                mutated[at] = rng.random();
            }
            mutated.truncate(rng.random_range(0..=mutated.len()));
            let _ = super::decode_msgpack::<serde_json::Value>(&mutated);
            let _ = super::decode_msgpack::<(Vec<String>, Option<u8>)>(&mutated);
            let _ = super::decode_msgpack::<Tree>(&mutated);
        }
    }

    #[test]
    fn the_scan_finds_where_every_kind_of_value_ends() {
        use super::{msgpack_scan, Scan, SHALLOW_LEVELS};
        let value = serde_json::json!({
            "n": [0, -1, -33, 200, 70000, 5_000_000_000u64, -5_000_000_000i64, 1.5, null, true],
            "s": ["", "x".repeat(31), "y".repeat(300), "z".repeat(70_000)],
            "m": {"a": {"b": [[], {}]}},
        });
        let mut bytes = rmp_serde::to_vec(&value).unwrap();
        bytes.extend(rmp_serde::to_vec(&serde_bytes::ByteBuf::from(vec![1u8; 300])).unwrap());
        let first = rmp_serde::to_vec(&value).unwrap().len();
        assert_eq!(msgpack_scan(&bytes), Scan::Shallow(first));
        assert_eq!(
            msgpack_scan(&bytes[first..]),
            Scan::Shallow(bytes.len() - first)
        );
        for cut in [1, first / 2, first - 1] {
            assert_eq!(msgpack_scan(&bytes[..cut]), Scan::DeepOrMalformed, "{cut}");
        }
        let deep = [vec![0x91u8; SHALLOW_LEVELS + 1], vec![0xc0]].concat();
        assert_eq!(msgpack_scan(&deep), Scan::DeepOrMalformed);
        let fits = [vec![0x91u8; SHALLOW_LEVELS], vec![0xc0]].concat();
        assert_eq!(msgpack_scan(&fits), Scan::Shallow(fits.len()));
        assert_eq!(msgpack_scan(&[0xc1]), Scan::DeepOrMalformed);
        assert_eq!(
            msgpack_scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Scan::DeepOrMalformed
        );
    }
}
