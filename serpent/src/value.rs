//! [`Value`]: any Python value serpent carries, for code that does not know the type ahead.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The newtype name under which a [`Value::Set`] serializes, so that this crate's serializer
/// writes a set literal; any other serializer sees a sequence.
pub(crate) const SET_MARKER: &str = "\0rmi_serpent::Set";
/// The same for [`Value::Complex`], written `(re+imj)`; elsewhere a pair of floats.
pub(crate) const COMPLEX_MARKER: &str = "\0rmi_serpent::Complex";

/// A Python value as serpent writes it.
///
/// Integers are `i128`: a Python integer beyond that range is refused when read (with an
/// error that says so). A `dict` keeps its entries in order, with keys of any kind.
///
/// Parse text into a `Value` with [`str::parse`], which keeps tuples, sets and complex
/// numbers as they are. Through serde (`from_str::<Value>`, or a `Value` inside a struct)
/// they arrive as lists, as serde has no tuple or set of unknown length.
///
/// ```
/// use rmi_serpent::Value;
/// let v: Value = "{'a': (1, 2.5), 'b': None}".parse()?;
/// assert_eq!(
///     v,
///     Value::Dict(vec![
///         (Value::from("a"), Value::Tuple(vec![Value::Int(1), Value::Float(2.5)])),
///         (Value::from("b"), Value::None),
///     ])
/// );
/// # Ok::<(), rmi_serpent::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int`.
    Int(i128),
    /// A `float` (`1e30000` is infinity; serpent writes NaN as a dict, read back as NaN).
    Float(f64),
    /// A `complex`: real and imaginary parts.
    Complex(f64, f64),
    /// A `str`.
    Str(String),
    /// A `bytes` literal (`b'…'`). serpent itself writes bytes as a base64 dict, which reads
    /// as a [`Value::Dict`] and deserializes into bytes where bytes are asked for.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `set` (or `frozenset`).
    Set(Vec<Value>),
    /// A `dict`, in order.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// The string, if this is one.
    ///
    /// ```
    /// assert_eq!(rmi_serpent::Value::from("hi").as_str(), Some("hi"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under the string key `key`, if this is a dict that has it.
    ///
    /// ```
    /// let v: rmi_serpent::Value = "{'x': 1}".parse()?;
    /// assert_eq!(v.get("x"), Some(&rmi_serpent::Value::Int(1)));
    /// # Ok::<(), rmi_serpent::Error>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl std::str::FromStr for Value {
    type Err = crate::Error;

    /// Parses a serpent document, header optional.
    fn from_str(text: &str) -> crate::Result<Value> {
        crate::parse::parse(text)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::None => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(small) => serializer.serialize_i64(small),
                Err(_) => serializer.serialize_i128(*i),
            },
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Complex(re, im) => {
                serializer.serialize_newtype_struct(COMPLEX_MARKER, &(re, im))
            }
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => serialize_seq(serializer, items),
            Value::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Set(items) => serializer.serialize_newtype_struct(SET_MARKER, &AsSeq(items)),
            Value::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct AsSeq<'a>(&'a [Value]);

impl Serialize for AsSeq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_seq(serializer, self.0)
    }
}

fn serialize_seq<S: Serializer>(serializer: S, items: &[Value]) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(items.len()))?;
    for item in items {
        seq.serialize_element(item)?;
    }
    seq.end()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} is beyond i128")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Dict(entries))
    }
}
