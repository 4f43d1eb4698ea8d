//! Writing serpent: a serde [`Serializer`] that writes the text Python's serpent writes for
//! the same value (serpent.py, `Serializer.serialize`), which `ast.literal_eval` reads.
//!
//! Rust's data model maps onto Python's: a sequence is a `list`, a tuple a `tuple`, a map or
//! struct a `dict`, `None` and `()` are `None`, bytes serpent's base64 dict, an enum variant
//! its name or `{'Variant': value}` (as serde_json tags them).

use base64::Engine;
use serde::ser::{self, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::repr;
use crate::value::{COMPLEX_MARKER, SET_MARKER};

/// The line serpent starts every document with (serpent.py, `Serializer.serialize`).
pub const HEADER: &str = "# serpent utf-8 python3.2\n";

/// Writes serpent into a string.
pub(crate) struct Writer {
    pub(crate) out: String,
    /// Set by a set's marker: the next sequence is written as a set literal.
    set_next: bool,
    /// Set by a complex's marker: the next tuple is written `(re+imj)`.
    complex_next: bool,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            out: String::from(HEADER),
            set_next: false,
            complex_next: false,
        }
    }
}

/// A list, tuple, set or dict being written: its closing bracket, how many items so far,
/// and how a one-item tuple ends.
pub(crate) struct Container<'a> {
    writer: &'a mut Writer,
    items: usize,
    kind: Kind,
    /// The closing text after the container (a variant's `}`), if any.
    then: &'static str,
}

#[derive(PartialEq)]
enum Kind {
    List,
    Tuple,
    /// A set: `{a,b}`; empty, `()` as serpent writes it.
    Set,
    Dict,
    /// A complex: a pair of floats written `(re+imj)`.
    Complex,
}

impl<'a> Container<'a> {
    fn open(writer: &'a mut Writer, kind: Kind, then: &'static str) -> Self {
        writer.out.push(match kind {
            Kind::List => '[',
            Kind::Tuple | Kind::Complex => '(',
            Kind::Set | Kind::Dict => '{',
        });
        Container {
            writer,
            items: 0,
            kind,
            then,
        }
    }

    fn item<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        if self.items > 0 {
            self.writer
                .out
                .push(if self.kind == Kind::Complex { '+' } else { ',' });
        }
        self.items += 1;
        let at = self.writer.out.len();
        value.serialize(&mut *self.writer)?;
        if self.kind == Kind::Complex && self.items == 2 {
            // `+-2.0` reads back, but serpent writes `-2.0`.
            if self.writer.out[at..].starts_with('-') {
                self.writer.out.remove(at - 1);
            }
            self.writer.out.push('j');
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        let out = &mut self.writer.out;
        match self.kind {
            Kind::List => out.push(']'),
            Kind::Tuple if self.items == 1 => out.push_str(",)"),
            Kind::Tuple | Kind::Complex => out.push(')'),
            Kind::Set if self.items == 0 => {
                // There is no literal of an empty set; serpent writes an empty tuple.
                out.pop();
                out.push_str("()");
            }
            Kind::Set | Kind::Dict => out.push('}'),
        }
        out.push_str(self.then);
        Ok(())
    }
}

impl<'a> Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Container<'a>;
    type SerializeTuple = Container<'a>;
    type SerializeTupleStruct = Container<'a>;
    type SerializeTupleVariant = Container<'a>;
    type SerializeMap = Container<'a>;
    type SerializeStruct = Container<'a>;
    type SerializeStructVariant = Container<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push_str(if v { "True" } else { "False" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        // Widened through its shortest decimal, so 0.1f32 is 0.1, not 0.10000000149011612.
        self.serialize_f64(v.to_string().parse().unwrap_or(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        if v.is_nan() {
            // No literal is NaN; serpent writes this dict.
            self.out.push_str("{'__class__':'float','value':'nan'}");
        } else if v.is_infinite() {
            // A literal that overflows to infinity when Python reads it.
            self.out
                .push_str(if v > 0.0 { "1e30000" } else { "-1e30000" });
        } else {
            repr::float(v, &mut self.out);
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        repr::string(v, &mut self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        // serpent.py, `_translate_byte_type`: `repr({'data': b64, 'encoding': 'base64'})`.
        self.out.push_str("{'data': '");
        base64::engine::general_purpose::STANDARD.encode_string(v, &mut self.out);
        self.out.push_str("', 'encoding': 'base64'}");
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push_str("None");
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        self.set_next = name == SET_MARKER;
        self.complex_next = name == COMPLEX_MARKER;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.variant_key(variant);
        value.serialize(&mut *self)?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Container<'a>> {
        let kind = if std::mem::take(&mut self.set_next) {
            Kind::Set
        } else {
            Kind::List
        };
        Ok(Container::open(self, kind, ""))
    }
    fn serialize_tuple(self, _: usize) -> Result<Container<'a>> {
        let kind = if std::mem::take(&mut self.complex_next) {
            Kind::Complex
        } else {
            Kind::Tuple
        };
        Ok(Container::open(self, kind, ""))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Container<'a>> {
        Ok(Container::open(self, Kind::Tuple, ""))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Container<'a>> {
        self.variant_key(variant);
        Ok(Container::open(self, Kind::Tuple, "}"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Container<'a>> {
        Ok(Container::open(self, Kind::Dict, ""))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Container<'a>> {
        Ok(Container::open(self, Kind::Dict, ""))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Container<'a>> {
        self.variant_key(variant);
        Ok(Container::open(self, Kind::Dict, "}"))
    }
}

impl Writer {
    /// Opens `{'Variant':`, the dict of one entry an enum's variant with a value is.
    fn variant_key(&mut self, variant: &str) {
        self.out.push('{');
        repr::string(variant, &mut self.out);
        self.out.push(':');
    }
}

/// The serde traits of a container whose items are values one after another.
macro_rules! items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Container<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
                self.item(value)
            }
            fn end(self) -> Result<()> {
                self.close()
            }
        }
    )*};
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The serde traits of a container whose items are named fields, written as a dict.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Container<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                ser::SerializeMap::serialize_entry(self, key, value)
            }
            fn end(self) -> Result<()> {
                self.close()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Container<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.item(key)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.writer.out.push(':');
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<()> {
        self.close()
    }
}
