//! Descriptions of exposed traits: what a daemon says about the objects it hosts.
//!
//! `#[expose]` writes one [`TraitDescriptor`] per trait as a `static`. A proxy sends its trait's
//! name when it binds; the daemon answers with the object's descriptor, and the proxy matches
//! its methods to the server's by name and signature, so a mismatch is a clear error rather
//! than a value that decodes into garbage.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An exposed trait: its name and methods, in declaration order.
///
/// ```
/// use rmi::{MethodDescriptor, TraitDescriptor};
/// use std::borrow::Cow;
/// static GREETER: TraitDescriptor = TraitDescriptor {
///     name: Cow::Borrowed("Greeter"),
///     methods: Cow::Borrowed(&[MethodDescriptor {
///         name: Cow::Borrowed("welcome_message"),
///         params: Cow::Borrowed(&[rmi::Param { name: Cow::Borrowed("name"), ty: Cow::Borrowed("String") }]),
///         result: Cow::Borrowed("String"),
///         oneway: false,
///         doc: Cow::Borrowed("`Hi welcome <name>`."),
///     }]),
/// };
/// assert_eq!(GREETER.methods[0].signature(), "fn welcome_message(name: String) -> String");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraitDescriptor {
    /// The trait's name, without its module path (`Greeter`).
    pub name: Cow<'static, str>,
    /// Its methods; a method's position is its index on the wire.
    pub methods: Cow<'static, [MethodDescriptor]>,
}

/// One method of an exposed trait.
///
/// ```
/// use rmi::MethodDescriptor;
/// use std::borrow::Cow;
/// let ping = MethodDescriptor {
///     name: Cow::Borrowed("ping"),
///     params: Cow::Borrowed(&[]),
///     result: Cow::Borrowed("()"),
///     oneway: true,
///     doc: Cow::Borrowed(""),
/// };
/// assert_eq!(ping.signature(), "#[oneway] fn ping() -> ()");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodDescriptor {
    /// The method's name.
    pub name: Cow<'static, str>,
    /// Its parameters after `&self`.
    pub params: Cow<'static, [Param]>,
    /// Its result type as written in the trait (`()` when there is none).
    pub result: Cow<'static, str>,
    /// Whether callers return as soon as the call is sent (`#[oneway]`).
    pub oneway: bool,
    /// Its doc comment as written in the trait, without the `///` (empty when there is none):
    /// for tools that describe methods to people, such as XML-RPC's `system.methodHelp`.
    /// Ignored when matching a proxy's methods to the server's.
    #[serde(default)]
    pub doc: Cow<'static, str>,
}

/// One parameter of a method.
///
/// ```
/// use std::borrow::Cow;
/// let p = rmi::Param { name: Cow::Borrowed("x"), ty: Cow::Borrowed("u64") };
/// assert_eq!(p.to_string(), "x: u64");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The parameter's name.
    pub name: Cow<'static, str>,
    /// Its type as written in the trait.
    pub ty: Cow<'static, str>,
}

impl MethodDescriptor {
    /// The method as Rust would write it, without `async` and `&self`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(Param::to_string).collect();
        let oneway = if self.oneway { "#[oneway] " } else { "" };
        format!(
            "{oneway}fn {}({}) -> {}",
            self.name,
            params.join(", "),
            self.result
        )
    }

    /// Whether the method is declared `-> Result<T, E>` (`std::result::Result` too): its
    /// result travels as `{"Ok": …}` or `{"Err": …}`.
    ///
    /// ```
    /// # fn method(result: &'static str) -> rmi::MethodDescriptor {
    /// #     rmi::MethodDescriptor { name: "m".into(), params: Vec::new().into(), result: result.into(), oneway: false, doc: "".into() }
    /// # }
    /// assert!(method("Result<i64, MathError>").returns_result());
    /// assert!(method("std::result::Result<(), String>").returns_result());
    /// assert!(!method("ResultSet").returns_result());
    /// assert!(!method("Vec<Result<u8, E>>").returns_result());
    /// ```
    pub fn returns_result(&self) -> bool {
        let ty = &*self.result;
        let path = ty.split_once('<').map_or(ty, |(path, _)| path).trim();
        path == "Result" || path.ends_with("::Result")
    }

    /// The error type `E` of a method declared `-> Result<T, E>`, as written.
    ///
    /// ```
    /// # fn method(result: &'static str) -> rmi::MethodDescriptor {
    /// #     rmi::MethodDescriptor { name: "m".into(), params: Vec::new().into(), result: result.into(), oneway: false, doc: "".into() }
    /// # }
    /// assert_eq!(method("Result<Vec<(u8, u16)>, rmi::Error>").error_type(), Some("rmi::Error"));
    /// assert_eq!(method("Result<HashMap<String, u8>, MathError>").error_type(), Some("MathError"));
    /// assert_eq!(method("Vec<u8>").error_type(), None);
    /// ```
    pub fn error_type(&self) -> Option<&str> {
        if !self.returns_result() {
            return None;
        }
        let (_, args) = self.result.split_once('<')?;
        let args = args.trim_end().strip_suffix('>')?;
        let mut depth = 0i32;
        let comma = args.char_indices().find(|&(_, c)| {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' | ')' | ']' => depth -= 1,
                _ => {}
            }
            c == ',' && depth == 0
        })?;
        Some(args[comma.0 + 1..].trim())
    }

    /// Whether the method returns a stream (`rmi::Stream<T>`, perhaps inside a `Result`).
    ///
    /// ```
    /// # fn method(result: &'static str) -> rmi::MethodDescriptor {
    /// #     rmi::MethodDescriptor { name: "m".into(), params: Vec::new().into(), result: result.into(), oneway: false, doc: "".into() }
    /// # }
    /// assert!(method("rmi::Stream<Line>").returns_stream());
    /// assert!(method("Result<Stream<u8>, E>").returns_stream());
    /// assert!(!method("Streamer").returns_stream());
    /// ```
    pub fn returns_stream(&self) -> bool {
        let ty = &*self.result;
        ty.match_indices("Stream<")
            .any(|(at, _)| at == 0 || matches!(ty.as_bytes()[at - 1], b':' | b'<' | b' ' | b'('))
    }

    /// Whether a call encoded by `self` decodes as `other`: same parameter and result types.
    /// Parameter names may differ.
    pub fn same_types(&self, other: &MethodDescriptor) -> bool {
        self.result == other.result
            && self.oneway == other.oneway
            && self.params.len() == other.params.len()
            && self
                .params
                .iter()
                .zip(other.params.iter())
                .all(|(a, b)| a.ty == b.ty)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.ty)
    }
}

impl TraitDescriptor {
    /// The method called `name`, with its index.
    pub fn method(&self, name: &str) -> Option<(usize, &MethodDescriptor)> {
        self.methods
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
    }
}

/// What a daemon says about one object it hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's id.
    pub id: String,
    /// The trait it serves, with its methods.
    pub descriptor: TraitDescriptor,
}

/// The answer to a bind: the object's handle on this daemon and its trait.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Binding {
    /// What calls to the object carry instead of its id.
    pub handle: u64,
    /// The trait the object serves.
    pub descriptor: TraitDescriptor,
}

/// Why a bind failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BindError {
    /// No object has that id.
    #[error("no such object")]
    NoSuchObject,
    /// The object serves another trait.
    #[error("the object is a {found}")]
    WrongTrait {
        /// The trait the object serves.
        found: String,
    },
}
