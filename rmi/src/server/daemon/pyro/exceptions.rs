//! What fails reaches Python as the exception Pyro5 raises for the like: serialized as
//! Pyro5 serializes exceptions (`SerializerBase.class_to_dict`), with a remote traceback.

use rmi_serpent::Value;

use crate::describe::MethodDescriptor;
use crate::pyro_values::dict;
use crate::wire::Fault;

pub(super) const SERIALIZE_ERROR: &str = "Pyro5.errors.SerializeError";

pub(super) const DAEMON_ERROR: &str = "Pyro5.errors.DaemonError";

/// A serialized exception, as Pyro5 writes one (`SerializerBase.class_to_dict`): its class,
/// its message as its only argument, and attributes, the remote traceback among them.
pub(super) fn exception(
    class: &str,
    message: String,
    attributes: Option<Vec<(Value, Value)>>,
) -> Value {
    let mut attributes = attributes.unwrap_or_default();
    let traceback = format!("Traceback (the rmi daemon, in Rust):\n{class}: {message}\n");
    attributes.push(("_pyroTraceback".into(), Value::List(vec![traceback.into()])));
    dict([
        ("__class__", class.into()),
        ("__exception__", Value::Bool(true)),
        ("args", Value::Tuple(vec![message.into()])),
        ("attributes", Value::Dict(attributes)),
    ])
}

/// A method's `Err(value)` as a Python exception: an `rmi::Error` as the Pyro5 error that
/// matches its kind, a name server's `NsError` as a `NamingError`, any other `E` as a `RuntimeError` whose message names the type and
/// says the value, with attributes `error_type` (`"MathError"`) and `error_value` (the value as
/// data).
pub(super) fn error_exception(error_type: &str, value: Value, method: &str, uri: &str) -> Value {
    if error_type == "Error" {
        if let Ok(error) = <crate::Error as serde::Deserialize>::deserialize(value.clone()) {
            return rmi_error_exception(&error);
        }
    }
    if error_type == "NsError" {
        if let Ok(error) = <crate::error::NsError as serde::Deserialize>::deserialize(value.clone())
        {
            return exception("Pyro5.errors.NamingError", error.to_string(), None);
        }
    }
    let said = crate::pyro_values::show(&value);
    let attributes = vec![
        ("error_type".into(), error_type.into()),
        ("error_value".into(), value),
        ("rmi_method".into(), format!("{uri}/{method}").into()),
    ];
    exception(
        "builtins.RuntimeError",
        format!("{error_type}: {said}"),
        Some(attributes),
    )
}

/// An `rmi::Error` a method returned, as the Pyro5 error that matches its kind.
pub(super) fn rmi_error_exception(error: &crate::Error) -> Value {
    use crate::ErrorKind::*;
    let class = match error.kind() {
        Timeout { .. } | Cancelled { .. } => "Pyro5.errors.TimeoutError",
        Connect { .. }
        | NameServerUnreachable { .. }
        | Disconnected { .. }
        | Busy { .. }
        | Stopping { .. } => "Pyro5.errors.CommunicationError",
        NameNotFound { .. } | NameServerRefused { .. } | NoObjectWithTags { .. } => {
            "Pyro5.errors.NamingError"
        }
        Authentication { .. } | BadKey { .. } | Tls { .. } => "Pyro5.errors.SecurityError",
        UnknownObject { .. } => DAEMON_ERROR,
        UnknownMethod { .. } => "builtins.AttributeError",
        BadArgument { .. } | BadCall { .. } | SignatureMismatch { .. } | WrongTrait { .. } => {
            "builtins.TypeError"
        }
        Codec { .. } => SERIALIZE_ERROR,
        // Raised by a Python object this method called: raised again as its own class.
        Raised { class, message, .. } => return exception(class, message.clone(), None),
        _ => "Pyro5.errors.PyroError",
    };
    exception(class, error.to_string(), None)
}

/// A fault of the call itself (not the method's own `Err`) as the Python exception Pyro5
/// raises for the like.
pub(super) fn fault_exception(fault: &Fault, method: &MethodDescriptor, uri: &str) -> Value {
    let (class, message) = match fault {
        Fault::UnknownObject => (DAEMON_ERROR, "unknown object".to_owned()),
        Fault::UnknownMethod => (
            "builtins.AttributeError",
            format!("no method '{}'", method.name),
        ),
        Fault::BadArguments(why) => ("builtins.TypeError", format!("{}(): {why}", method.name)),
        Fault::BadArgument { index, message } => {
            let name = method.params.get(*index as usize).map_or("?", |p| &*p.name);
            (
                "builtins.TypeError",
                format!("{}(): argument '{name}': {message}", method.name),
            )
        }
        Fault::BadResult(why) => (
            SERIALIZE_ERROR,
            format!("the result of {}() did not serialize: {why}", method.name),
        ),
        Fault::Panicked(why) => (
            "builtins.RuntimeError",
            format!("{}() panicked in {uri}: {why}", method.name),
        ),
        Fault::TooLarge { limit } => (
            "Pyro5.errors.MessageTooLargeError",
            format!(
                "the result of {}() is over the daemon's limit of {limit} bytes",
                method.name
            ),
        ),
        Fault::Busy => (
            "Pyro5.errors.CommunicationError",
            "the daemon runs as many calls on this connection as it allows; retry later".to_owned(),
        ),
        Fault::Stopping => (
            "Pyro5.errors.ConnectionClosedError",
            "the daemon is stopping".to_owned(),
        ),
        Fault::Cancelled => (
            "Pyro5.errors.TimeoutError",
            format!("{}() was cancelled", method.name),
        ),
        Fault::UnknownStream | Fault::StreamBroken(_) => (
            "Pyro5.errors.PyroError",
            "item stream terminated".to_owned(),
        ),
    };
    exception(class, message, None)
}
