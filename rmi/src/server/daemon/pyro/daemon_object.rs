//! Pyro5's daemon object (`Pyro.Daemon`: metadata, pings, item streams), the metadata a
//! client gets when it connects, and the Python names of methods.

use rmi_serpent::Value;

use super::exceptions::{exception, DAEMON_ERROR};
use super::values::stream_id;
use super::{DaemonState, Returned};
use crate::describe::{MethodDescriptor, TraitDescriptor};
use crate::pyro_values::{dict, python_name};
use crate::session::Session;
use crate::wire::Fault;

/// The id of the daemon's own object in Pyro5 (`Pyro5.core.DAEMON_NAME`).
pub(super) const DAEMON_ID: &str = "Pyro.Daemon";

/// The methods of Pyro5's daemon object that a Pyro5 client may call.
pub(super) const DAEMON_METHODS: [&str; 6] = [
    "get_metadata",
    "get_next_stream_item",
    "close_stream",
    "info",
    "ping",
    "registered",
];

/// The methods a Python caller may call by `name`: its Rust name or its Python name (`pyro_values::python_name`).
pub(super) fn find_method<'d>(
    descriptor: &'d TraitDescriptor,
    name: &str,
) -> Option<(u32, &'d MethodDescriptor)> {
    let index = descriptor
        .methods
        .iter()
        .position(|m| m.name == name || python_name(&m.name) == name)?;
    Some((index as u32, &descriptor.methods[index]))
}

/// Pyro5's metadata of object `id`: its methods and oneway methods, each under both its
/// names, and no attributes; `None` if the daemon has no such object.
pub(super) fn metadata(shared: &DaemonState, id: &str) -> Option<Value> {
    let names = |methods: &mut dyn Iterator<Item = &str>| {
        let mut names: Vec<Value> = Vec::new();
        for method in methods {
            let python = python_name(method);
            if python != method {
                names.push(python.into());
            }
            names.push(method.into());
        }
        Value::Set(names)
    };
    let (methods, oneway) = if id == DAEMON_ID {
        (
            names(&mut DAEMON_METHODS.into_iter()),
            Value::Set(Vec::new()),
        )
    } else {
        let (_, object) = shared.objects.find(id)?;
        let methods = &object.descriptor().methods;
        (
            names(&mut methods.iter().map(|m| &*m.name)),
            names(&mut methods.iter().filter(|m| m.oneway).map(|m| &*m.name)),
        )
    };
    Some(dict([
        ("methods", methods),
        ("oneway", oneway),
        ("attrs", Value::Set(Vec::new())),
    ]))
}

/// Why a call on the daemon object did not answer.
pub(super) enum Raised {
    /// An exception for the client.
    Exception(Value),
    /// Its answer did not encode.
    Unencodable(String),
}

impl From<Value> for Raised {
    fn from(raised: Value) -> Self {
        Raised::Exception(raised)
    }
}

impl From<String> for Raised {
    fn from(reason: String) -> Self {
        Raised::Unencodable(reason)
    }
}

/// The next item of stream `id` (`get_next_stream_item`), as it was encoded (in the
/// serializer of the call that returned the stream); `StopIteration` once there is none,
/// as a Python iterator ends.
pub(super) async fn next_item(
    shared: &DaemonState,
    session: &Session,
    id: &Value,
) -> Result<Returned, Raised> {
    let terminated = || {
        exception(
            "Pyro5.errors.PyroError",
            "item stream terminated".into(),
            None,
        )
    };
    let id = stream_id(id).ok_or_else(terminated)?;
    let streams = &session.connection.streams;
    let batch_bytes = crate::stream_host::BATCH_BYTES.min(session.connection.max_payload);
    let pulled = tokio::select! {
        pulled = streams.pull(id, 1, batch_bytes) => pulled,
        _ = shared.stop.stopped() => return Err(terminated().into()),
    };
    match pulled {
        Ok(batch) => match batch.items.into_iter().next() {
            Some(item) => Ok(Returned::Value(item.contiguous().into_owned())),
            None => Err(exception("builtins.StopIteration", String::new(), None).into()),
        },
        Err(Fault::UnknownStream) => Err(terminated().into()),
        Err(Fault::StreamBroken(reason)) => {
            Err(exception("builtins.RuntimeError", reason, None).into())
        }
        Err(fault) => Err(exception("Pyro5.errors.PyroError", format!("{fault:?}"), None).into()),
    }
}

/// A call on Pyro5's daemon object (`Pyro.Daemon`): `get_metadata`, `ping`, `info` and
/// `registered`, as Pyro5's `DaemonObject` answers them.
pub(super) fn daemon_object(
    shared: &DaemonState,
    method: &str,
    args: &[Value],
) -> Result<Value, Value> {
    match (method, args) {
        ("get_metadata", [Value::Str(id)]) => metadata(shared, id)
            .ok_or_else(|| exception(DAEMON_ERROR, "unknown object".into(), None)),
        ("ping", []) => Ok(Value::None),
        ("info", []) => Ok(format!(
            "rmi daemon bound on {}, with {} objects registered (Pyro5 protocol {})",
            shared.endpoint,
            shared.objects.entries().len() + 1,
            crate::pyro_wire::VERSION
        )
        .into()),
        ("registered", []) => {
            let mut ids: Vec<Value> = vec![DAEMON_ID.into()];
            ids.extend(
                shared
                    .objects
                    .entries()
                    .into_iter()
                    .map(|e| Value::from(&*e.id)),
            );
            Ok(Value::List(ids))
        }
        _ => Err(exception(
            "builtins.AttributeError",
            format!(
                "the daemon object has no method '{method}' taking {} arguments",
                args.len()
            ),
            None,
        )),
    }
}
