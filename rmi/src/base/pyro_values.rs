//! Values as Pyro5's serializers carry them, for both sides of a Pyro5 call: payloads read and
//! written (`rmi_serpent::Value`, for serpent, json and msgpack alike), Pyro5's references
//! (`URI`, `Proxy`) as their URI text, exceptions read back, and the Python names of methods.

use rmi_serpent::Value;

use crate::pyro_wire::Serializer;
use crate::wire::Format;

thread_local! {
    /// Set while values for a Pyro5 object are written (`writing_for_pyro5`).
    static WRITING_FOR_PYRO5: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `write`, which encodes values for a Pyro5 object (a call's arguments): an
/// `rmi::Remote` among them is written as a Pyro5 proxy ([`is_writing_for_pyro5`]).
pub(crate) fn writing_for_pyro5<R>(write: impl FnOnce() -> R) -> R {
    /// Puts the flag back as it was, even if `write` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WRITING_FOR_PYRO5.set(self.0);
        }
    }
    let _restore = Restore(WRITING_FOR_PYRO5.replace(true));
    write()
}

/// Whether this thread writes values for a Pyro5 object now.
pub(crate) fn is_writing_for_pyro5() -> bool {
    WRITING_FOR_PYRO5.get()
}

/// The rmi format that carries the arguments and result of a call in `serializer`.
pub(crate) fn format_of(serializer: Serializer) -> Format {
    match serializer {
        Serializer::Json => Format::Json,
        Serializer::Msgpack => Format::MessagePack,
        Serializer::Serpent | Serializer::Marshal => Format::Serpent,
    }
}

/// A payload in `serializer`, as a value (serpent read as text: its tuples and sets stay
/// tuples and sets, which serde would make lists).
pub(crate) fn decode(serializer: Serializer, data: &[u8]) -> Result<Value, String> {
    match serializer {
        Serializer::Serpent | Serializer::Marshal => std::str::from_utf8(data)
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|e: rmi_serpent::Error| e.to_string()),
        _ => format_of(serializer)
            .decode(data)
            .map_err(|e| e.to_string()),
    }
}

/// `value` in `serializer`.
pub(crate) fn encode(serializer: Serializer, value: &Value) -> Result<Vec<u8>, String> {
    format_of(serializer)
        .encode(value)
        .map(|payload| payload.contiguous().into_owned())
        .map_err(|e| e.to_string())
}

/// A dict of string keys.
pub(crate) fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The name a Python caller may also use for `method`: lowerCamelCase (`welcome_message` is
/// also `welcomeMessage`), as Pyro's examples name methods.
///
/// ```text
/// welcome_message → welcomeMessage    process → process    _x → _x
/// ```
pub(crate) fn python_name(method: &str) -> String {
    let mut name = String::with_capacity(method.len());
    let mut upper = false;
    for (i, c) in method.chars().enumerate() {
        match c {
            '_' if i > 0 => upper = true,
            c if upper => {
                name.extend(c.to_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    name
}

/// The items of a list, tuple or set (serpent writes an empty set as `()`).
pub(crate) fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// The URI a Pyro5 `URI` or `Proxy` stands for, as its serializers write them
/// (`{"__class__": "Pyro5.core.URI", "state": (protocol, object, sockname, host, port)}`,
/// `{"__class__": "Pyro5.client.Proxy", "state": (uri, …)}`); `None` for any other value.
pub(crate) fn reference_uri(value: &Value) -> Option<String> {
    let state = items(value.get("state")?)?;
    match value.get("__class__")?.as_str()? {
        "Pyro5.client.Proxy" => Some(state.first()?.as_str()?.to_owned()),
        "Pyro5.core.URI" => match state {
            [Value::Str(protocol), Value::Str(object), _, Value::Str(host), Value::Int(port)] => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                Some(format!("{protocol}:{object}@{host}:{port}"))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `value` with every Pyro5 reference in it replaced by its URI text (so that it decodes as
/// an `rmi::Remote`), and serpent's base64 dicts (how serpent writes `bytes`) by the bytes.
pub(crate) fn plain(value: Value) -> Value {
    if let Some(uri) = reference_uri(&value) {
        return Value::Str(uri);
    }
    if let Some(bytes) = base64_bytes(&value) {
        return Value::Bytes(bytes);
    }
    let all = |values: Vec<Value>| values.into_iter().map(plain).collect();
    match value {
        Value::List(values) => Value::List(all(values)),
        Value::Tuple(values) => Value::Tuple(all(values)),
        Value::Set(values) => Value::Set(all(values)),
        Value::Dict(entries) => Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (plain(k), plain(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The bytes of serpent's `{"data": "<base64>", "encoding": "base64"}`.
fn base64_bytes(value: &Value) -> Option<Vec<u8>> {
    let Value::Dict(entries) = value else {
        return None;
    };
    if entries.len() != 2 || value.get("encoding")?.as_str()? != "base64" {
        return None;
    }
    let bytes: serde_bytes::ByteBuf = serde::Deserialize::deserialize(value.clone()).ok()?;
    Some(bytes.into_vec())
}

/// An exception a Pyro5 daemon raised for a call, as its serializers write one
/// (`SerializerBase.class_to_dict`): its class, message and remote traceback.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Exception {
    /// The exception's class, with its module: `builtins.ZeroDivisionError`.
    pub(crate) class: String,
    /// Its message: its arguments, as `str()` of the exception shows them.
    pub(crate) message: String,
    /// The traceback the daemon sent (`_pyroTraceback`), empty if none.
    pub(crate) traceback: String,
    /// The error an rmi method returned, as an rmi daemon raises it to Pyro5 clients: its
    /// type's name and its value (the attributes `error_type` and `error_value`).
    pub(crate) error: Option<(String, Value)>,
}

impl Exception {
    /// The exception `value` is: a dict with `__exception__`, or anything else the daemon
    /// sent as one (its text).
    pub(crate) fn read(value: &Value) -> Exception {
        let class = value.get("__class__").and_then(Value::as_str);
        let Some(class) = class.filter(|_| value.get("__exception__").is_some()) else {
            return Exception {
                class: "builtins.Exception".into(),
                message: show(value),
                traceback: String::new(),
                error: None,
            };
        };
        let message = match value.get("args").and_then(items) {
            Some([one]) => show(one),
            Some(args) => format!("({})", args.iter().map(show).collect::<Vec<_>>().join(", ")),
            None => String::new(),
        };
        let attribute = |name| value.get("attributes").and_then(|a| a.get(name));
        let error = match (attribute("error_type"), attribute("error_value")) {
            (Some(Value::Str(error_type)), Some(error_value)) => {
                Some((error_type.clone(), error_value.clone()))
            }
            _ => None,
        };
        let traceback = attribute("_pyroTraceback")
            .map(|lines| match items(lines) {
                Some(lines) => lines.iter().map(show).collect(),
                None => show(lines),
            })
            .unwrap_or_default();
        Exception {
            class: class.to_owned(),
            message,
            traceback,
            error,
        }
    }
}

/// A value as Python's `str()` shows it: text as it is, anything else as a literal.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::Str(text) => text.clone(),
        other => rmi_serpent::to_string(other)
            .map(|text| text.lines().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names_are_lower_camel_case() {
        assert_eq!(python_name("welcome_message"), "welcomeMessage");
        assert_eq!(python_name("process"), "process");
        assert_eq!(python_name("get_next_stream_item"), "getNextStreamItem");
        assert_eq!(python_name("_private"), "_private");
    }

    #[test]
    fn references_read_as_their_uri() {
        let proxy: Value =
            "{'__class__': 'Pyro5.client.Proxy', 'state': ('PYRO:obj_1@127.0.0.1:5555', (), ('hear',), (), 'hello', 1)}"
                .parse()
                .unwrap();
        let uri: Value =
            "{'__class__': 'Pyro5.core.URI', 'state': ('PYRO', 'obj_2', None, '::1', 9090)}"
                .parse()
                .unwrap();
        let bytes: Value = "{'data': 'aGk=', 'encoding': 'base64'}".parse().unwrap();
        let plain = plain(Value::Tuple(vec![proxy, Value::List(vec![uri]), bytes]));
        assert_eq!(
            plain,
            Value::Tuple(vec![
                "PYRO:obj_1@127.0.0.1:5555".into(),
                Value::List(vec!["PYRO:obj_2@[::1]:9090".into()]),
                Value::Bytes(b"hi".to_vec()),
            ])
        );
    }

    #[test]
    fn an_exception_reads_as_its_class_message_and_traceback() {
        let raised: Value = "{'__class__': 'builtins.ZeroDivisionError', '__exception__': True, 'args': ('division by zero',), 'attributes': {'_pyroTraceback': ['Traceback:\\n', '  line 3\\n']}}"
            .parse()
            .unwrap();
        assert_eq!(
            Exception::read(&raised),
            Exception {
                class: "builtins.ZeroDivisionError".into(),
                message: "division by zero".into(),
                traceback: "Traceback:\n  line 3\n".into(),
                error: None,
            }
        );
        assert_eq!(Exception::read(&"odd".into()).message, "odd");
    }
}
