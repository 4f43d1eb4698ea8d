//! Serde support for [serpent](https://pypi.org/project/serpent/), the format of Python
//! literal expressions that Pyro5 speaks by default: what Python's `serpent.dumps` writes
//! and `ast.literal_eval` reads.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Greeting {
//!     name: String,
//!     times: (u32, f64),
//!     tags: Option<Vec<String>>,
//! }
//!
//! let hello = Greeting { name: "Wörld".into(), times: (3, 0.5), tags: None };
//! let text = rmi_serpent::to_string(&hello)?;
//! assert_eq!(
//!     text,
//!     "# serpent utf-8 python3.2\n{'name':'Wörld','times':(3,0.5),'tags':None}"
//! );
//! assert_eq!(rmi_serpent::from_str::<Greeting>(&text)?, hello);
//! # Ok::<(), rmi_serpent::Error>(())
//! ```
//!
//! | Rust (serde) | Python, as written | read back from |
//! |---|---|---|
//! | `bool` | `True`, `False` | the same |
//! | integers, up to `i128`/`u128` | `int` | `int` (beyond `i128`: an error) |
//! | `f32`, `f64` | `float` as `repr` writes it; ±infinity `1e30000`; NaN `{'__class__':'float','value':'nan'}` | the same, or an `int` |
//! | `String`, `&str`, `char` | `str` as `repr` writes it | `str` (any quoting, escapes, prefixes, joined literals) |
//! | bytes (`serde_bytes`) | `{'data': '<base64>', 'encoding': 'base64'}`, as serpent writes bytes | that dict, a `b'…'` literal, a `str`, or a list of ints |
//! | `None`, `()`, unit struct | `None` | `None` |
//! | `Some(x)`, newtype struct | `x` | `x` |
//! | `Vec`, sequences | `list` | `list`, `tuple` or `set` |
//! | tuples, tuple structs | `tuple` (`(x,)` for one) | `tuple`, `list` or `set` |
//! | maps, structs | `dict` | `dict` |
//! | unit variant | its name as a `str` | the same |
//! | other variants | `{'Variant': value}` | the same |
//!
//! A Rust array (`[T; N]`) is a tuple to serde, so it is written as a `tuple`.
//!
//! [`Value`] holds any of it, sets and complex numbers included, for code that learns the
//! types at run time (`text.parse::<Value>()`).
//!
//! Reading is safe on hostile text: only literals are read (no names, calls or operators
//! beyond a sign and a complex sum), containers nest at most [`MAX_DEPTH`] levels, and the
//! result is never much larger than the text.
//!
//! What Pyro5 sends through serpent: class instances as dicts with a `'__class__'` key (an
//! exception adds `'__exception__': True`, `'args'` and `'attributes'`), and a
//! `Pyro5.core.URI` as `{'__class__': 'Pyro5.core.URI', 'state': (…)}`. Those are dicts here;
//! the protocol layer gives them meaning.

#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod de;
mod error;
mod parse;
mod repr;
mod ser;
mod value;

pub use error::{Error, Result};
pub use parse::MAX_DEPTH;
pub use ser::HEADER;
pub use value::Value;

/// `value` as a serpent document: [`HEADER`], then the literal.
///
/// # Errors
///
/// [`Error::Message`] if `value`'s `Serialize` fails.
///
/// ```
/// assert_eq!(rmi_serpent::to_string(&(1, "a"))?, "# serpent utf-8 python3.2\n(1,'a')");
/// # Ok::<(), rmi_serpent::Error>(())
/// ```
pub fn to_string<T: ?Sized + serde::Serialize>(value: &T) -> Result<String> {
    let mut writer = ser::Writer::new();
    value.serialize(&mut writer)?;
    Ok(writer.out)
}

/// `value` as a serpent document, in UTF-8 bytes (what goes on Pyro5's wire).
///
/// # Errors
///
/// As [`to_string`].
///
/// ```
/// assert_eq!(rmi_serpent::to_vec(&vec![true])?, b"# serpent utf-8 python3.2\n[True]");
/// # Ok::<(), rmi_serpent::Error>(())
/// ```
pub fn to_vec<T: ?Sized + serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    to_string(value).map(String::into_bytes)
}

/// Reads a `T` from a serpent document (the header line is optional).
///
/// # Errors
///
/// [`Error::Syntax`] if the text is not a serpent literal, [`Error::TooDeep`] if it nests
/// deeper than [`MAX_DEPTH`], [`Error::Message`] if the value does not fit `T`.
///
/// ```
/// let v: Vec<Option<i64>> = rmi_serpent::from_str("[1, None, -3]")?;
/// assert_eq!(v, [Some(1), None, Some(-3)]);
/// # Ok::<(), rmi_serpent::Error>(())
/// ```
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    T::deserialize(parse::parse(text)?)
}

/// Reads a `T` from a serpent document in UTF-8 bytes.
///
/// # Errors
///
/// As [`from_str`], and [`Error::Syntax`] if the bytes are not UTF-8 or hold a NUL (which
/// Python's serpent refuses too).
///
/// ```
/// let bytes: serde_bytes::ByteBuf =
///     rmi_serpent::from_slice(b"{'data': 'aGk=', 'encoding': 'base64'}")?;
/// assert_eq!(bytes.as_ref(), b"hi");
/// # Ok::<(), rmi_serpent::Error>(())
/// ```
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Syntax {
        at: e.valid_up_to(),
        reason: "not UTF-8".into(),
    })?;
    if let Some(at) = text.find('\0') {
        return Err(Error::Syntax {
            at,
            reason: "a NUL byte (serpent data never holds one)".into(),
        });
    }
    from_str(text)
}
