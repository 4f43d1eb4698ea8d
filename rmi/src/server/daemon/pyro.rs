//! The daemon's Pyro5 side: a connection that opens with `PYRO` is a Pyro5 client (Python's
//! `Pyro5.api.Proxy`), served here with Pyro5's protocol (`pyro_wire`) on the daemon's own
//! port and objects: `PYRO:<id>@host:port` names the object `rmi:<id>@host:port` does.
//!
//! Like Pyro5's own daemon (`Pyro5/server.py`), it answers the client's `CONNECT` with the
//! object's metadata (its methods and oneway methods), then runs each `INVOKE` and answers
//! `PING`. A call runs as an rmi client's does (`Hosted::start`, in a session of this
//! connection), with its arguments and result in the client's serializer: serpent, json or
//! msgpack (marshal is refused). Python names work too: a method `welcome_message` is also
//! `welcomeMessage` ([`python_name`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use rmi_serpent::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Connected, DaemonState};
use crate::describe::{MethodDescriptor, TraitDescriptor};
use crate::pyro_wire::{flags, Kind, Message, Serializer, WireError};
use crate::session::{Request, Session};
use crate::wire::{Fault, Format, Invoke, Payload};

/// The id of the daemon's own object in Pyro5 (`Pyro5.core.DAEMON_NAME`).
const DAEMON_ID: &str = "Pyro.Daemon";

/// The methods of Pyro5's daemon object that a Pyro5 client may call.
const DAEMON_METHODS: [&str; 6] = [
    "get_metadata",
    "get_next_stream_item",
    "close_stream",
    "info",
    "ping",
    "registered",
];

/// The read buffer of a Pyro5 connection.
const READ_BUFFER_BYTES: usize = 4096;

/// How long a call from a Pyro5 client may run: Pyro5 sends no deadline.
const CALL_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Serves a Pyro5 client whose first four bytes (`PYRO`) were read, until it leaves, breaks
/// the protocol or the daemon stops. `secure` says the connection is TLS.
pub(super) async fn serve<S>(connected: &Connected, stream: S, peer: SocketAddr, secure: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = &*connected.0;
    // A message is read in parts (tag, header, annotations, payload): buffered, a small
    // one takes one read from the socket, not four.
    let mut stream = tokio::io::BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let Some(connect) = read(shared, &mut stream, None, peer).await else {
        return;
    };
    let (answer, accepted) = handshake(shared, &connect, secure);
    if stream.write_all(&answer.to_bytes()).await.is_err() || !accepted {
        return;
    }
    let mut session = super::new_session(shared);
    let mut next = read(shared, &mut stream, Some(&connect), peer).await;
    while let Some(message) = next {
        let answer = match message.kind {
            Kind::Ping => Some(Message::answer(&message, Kind::Ping, 0, b"pong".to_vec())),
            Kind::Invoke => invoke(shared, &mut session, &message).await,
            other => {
                crate::throttle::warn_throttled!(%peer, "Pyro5 connection dropped: a {other:?} message where calls were expected");
                break;
            }
        };
        if let Some(answer) = answer {
            if stream.write_all(&answer.to_bytes()).await.is_err() {
                break;
            }
        }
        next = read(shared, &mut stream, Some(&message), peer).await;
    }
    session.connection.close_replies();
}

/// Reads the next message: the first (`after` is `None`, its `PYRO` read already) within the
/// handshake timeout, the others within the idle timeout, if any. `None` when the client
/// left, was too slow, broke the protocol, or the daemon stops.
async fn read<S>(
    shared: &DaemonState,
    stream: &mut S,
    after: Option<&Message>,
    peer: SocketAddr,
) -> Option<Message>
where
    S: AsyncRead + Unpin,
{
    let settings = &shared.settings;
    let limit = settings.max_frame_bytes;
    let (reading, timeout) = match after {
        None => (
            futures::future::Either::Left(Message::read_rest(stream, limit)),
            Some(settings.handshake_timeout),
        ),
        Some(_) => (
            futures::future::Either::Right(Message::read(stream, limit)),
            settings.idle_timeout,
        ),
    };
    let timeout = timeout.unwrap_or(Duration::MAX);
    let outcome = tokio::select! {
        _ = shared.stop.stopped() => return None,
        outcome = tokio::time::timeout(timeout, reading) => outcome,
    };
    let why = match outcome {
        Ok(Ok(message)) => return Some(message),
        Ok(Err(WireError::Io(e))) => {
            tracing::debug!(%peer, "Pyro5 connection ended: {e}");
            return None;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) if after.is_none() => format!("no CONNECT message within {timeout:?}"),
        Err(_) => {
            tracing::debug!(%peer, "Pyro5 connection idle for {timeout:?}: closed");
            return None;
        }
    };
    crate::throttle::warn_throttled!(%peer, "Pyro5 connection dropped: {why}");
    None
}

/// The answer to a client's `CONNECT`, and whether it was accepted: `CONNECTOK` with the
/// object's metadata, as Pyro5's daemon answers (`{"handshake": "hello", "meta": …}`), or
/// `CONNECTFAIL` with the reason.
fn handshake(shared: &DaemonState, connect: &Message, secure: bool) -> (Message, bool) {
    let accepted = (|| {
        if connect.kind != Kind::Connect {
            return Err(format!(
                "a {:?} message before CONNECT: is this a Pyro5 client?",
                connect.kind
            ));
        }
        let serializer = served_serializer(connect.serializer)?;
        if shared.settings.key.is_some() && !secure {
            return Err("this daemon requires a key, which Pyro5 clients cannot prove; reach it over TLS (Pyro5's SSL settings), or call it from rmi".into());
        }
        let data = decode(serializer, &connect.data).map_err(|e| e.to_string())?;
        let object = data
            .get("object")
            .and_then(Value::as_str)
            .ok_or("the CONNECT message names no object")?;
        let meta = metadata(shared, object).ok_or("unknown object")?;
        let answer = dict([("handshake", Value::from("hello")), ("meta", meta)]);
        encode(serializer, &answer)
    })();
    match accepted {
        Ok(data) => (Message::answer(connect, Kind::ConnectOk, 0, data), true),
        Err(reason) => {
            tracing::debug!("Pyro5 connection refused: {reason}");
            // A serializer the daemon does not serve still gets its reason, in serpent.
            let serializer = Serializer::of(connect.serializer)
                .filter(|s| served_serializer(*s as u8).is_ok())
                .unwrap_or(Serializer::Serpent);
            let data = encode(serializer, &Value::Str(reason)).unwrap_or_default();
            let mut answer = Message::answer(connect, Kind::ConnectFail, 0, data);
            answer.serializer = serializer as u8;
            (answer, false)
        }
    }
}

/// The serializer of `id`, if the daemon serves it.
fn served_serializer(id: u8) -> Result<Serializer, String> {
    match Serializer::of(id) {
        Some(Serializer::Marshal) => Err(
            "the rmi daemon does not read marshal: use serpent (Pyro5's default), json or msgpack"
                .into(),
        ),
        Some(serializer) => Ok(serializer),
        None => Err(format!(
            "unknown serializer id {id}: use serpent (Pyro5's default), json or msgpack"
        )),
    }
}

/// The rmi format that carries the arguments and result of a call in `serializer`.
fn format_of(serializer: Serializer) -> Format {
    match serializer {
        Serializer::Json => Format::Json,
        Serializer::Msgpack => Format::MessagePack,
        Serializer::Serpent | Serializer::Marshal => Format::Serpent,
    }
}

/// A payload in `serializer`, as a value.
fn decode(serializer: Serializer, data: &[u8]) -> Result<Value, crate::wire::CodecError> {
    format_of(serializer).decode(data)
}

/// `value` in `serializer`.
fn encode(serializer: Serializer, value: &Value) -> Result<Vec<u8>, String> {
    format_of(serializer)
        .encode(value)
        .map(|payload| payload.contiguous().into_owned())
        .map_err(|e| e.to_string())
}

/// A dict of string keys.
fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
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

/// The methods a Python caller may call by `name`: its Rust name or its [`python_name`].
fn find_method<'d>(
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
fn metadata(shared: &DaemonState, id: &str) -> Option<Value> {
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

/// Runs one `INVOKE` and makes its answer: `RESULT`, with the exception flag if it failed;
/// none for a oneway call.
async fn invoke(shared: &DaemonState, session: &mut Session, message: &Message) -> Option<Message> {
    let oneway = message.flags & flags::ONEWAY != 0;
    let serializer = Serializer::of(message.serializer).unwrap_or(Serializer::Serpent);
    let outcome = match served_serializer(message.serializer) {
        Ok(_) if message.flags & flags::BATCH != 0 => Err(exception(
            "Pyro5.errors.PyroError",
            "batched calls (Pyro5's BatchProxy) are not served by rmi: make the calls one by one"
                .into(),
            None,
        )),
        Ok(serializer) => call(shared, session, serializer, message).await,
        Err(reason) => Err(exception(SERIALIZE_ERROR, reason, None)),
    };
    if oneway {
        return None;
    }
    let (flag, data, stream) = match outcome {
        Ok(Returned::Value(data)) => (0, Ok(data), None),
        // As Pyro5's daemon answers an iterator: the stream's id in an annotation.
        Ok(Returned::Stream(id)) => (
            flags::ITEM_STREAM,
            encode(serializer, &Value::None),
            Some(id),
        ),
        Err(raised) => (flags::EXCEPTION, encode(serializer, &raised), None),
    };
    let (flag, data) = match data {
        Ok(data) => (flag, data),
        Err(reason) => {
            let raised = exception(SERIALIZE_ERROR, reason, None);
            let data = encode(serializer, &raised).unwrap_or_default();
            (flags::EXCEPTION, data)
        }
    };
    let mut answer = Message::answer(message, Kind::Result, flag, data);
    if let Some(id) = stream {
        answer
            .annotations
            .push((*b"STRM", id.to_string().into_bytes()));
    }
    Some(answer)
}

/// What a call returned: a value in the client's serializer, or a stream (by its id on the
/// connection) that the client reads item by item.
enum Returned {
    Value(Vec<u8>),
    Stream(u64),
}

/// Runs the call `message` carries: its result in `serializer`, or the exception to raise.
async fn call(
    shared: &DaemonState,
    session: &mut Session,
    serializer: Serializer,
    message: &Message,
) -> Result<Returned, Value> {
    let PyroCall {
        object,
        method,
        args,
        kwargs,
    } = decode_call(serializer, &message.data)?;
    if object == DAEMON_ID {
        return match (method.as_str(), &args[..]) {
            ("get_next_stream_item", [id]) => next_item(shared, session, id).await,
            ("close_stream", [id]) => {
                if let Some(id) = stream_id(id) {
                    session.connection.streams.close(id);
                }
                encode(serializer, &Value::None)
                    .map(Returned::Value)
                    .map_err(Raised::from)
            }
            _ => daemon_object(shared, &method, &args)
                .map_err(Raised::from)
                .and_then(|result| {
                    encode(serializer, &result)
                        .map(Returned::Value)
                        .map_err(Raised::from)
                }),
        }
        .map_err(|e| match e {
            Raised::Exception(raised) => raised,
            Raised::Unencodable(reason) => exception(SERIALIZE_ERROR, reason, None),
        });
    }
    let Some((handle, hosted)) = shared.objects.find(&object) else {
        return Err(exception(DAEMON_ERROR, "unknown object".into(), None));
    };
    let descriptor = hosted.descriptor();
    let Some((index, described)) = find_method(descriptor, &method) else {
        return Err(exception(
            "builtins.AttributeError",
            format!("remote object '{object}' has no exposed attribute or method '{method}'"),
            None,
        ));
    };
    let args = positional(described, args, kwargs)?;
    let format = format_of(serializer);
    // A method of no parameters takes `()`, which MessagePack writes as nil, not `[]`.
    let args = match args.is_empty() && format == Format::MessagePack {
        true => Value::None,
        false => Value::Tuple(args),
    };
    let args = format
        .encode(&args)
        .map_err(|e| exception(SERIALIZE_ERROR, e.to_string(), None))?;
    let reply = run(session, handle, &*hosted, index, format, args).await;
    let uri = format!("rmi:{object}@{}", shared.endpoint);
    match reply {
        Ok(payload) => result(serializer, described, &payload.contiguous(), &uri),
        Err(fault) => Err(fault_exception(&fault, described, &uri)),
    }
}

/// What a Pyro5 `INVOKE` asks for.
struct PyroCall {
    object: String,
    method: String,
    args: Vec<Value>,
    kwargs: Vec<(Value, Value)>,
}

/// A call's object id, method name, positional and keyword arguments, from its payload:
/// a tuple in serpent and msgpack, a dict in json (Pyro5's `dumpsCall`).
fn decode_call(serializer: Serializer, data: &[u8]) -> Result<PyroCall, Value> {
    let bad = |why: String| exception(SERIALIZE_ERROR, format!("not a Pyro5 call: {why}"), None);
    let call = decode(serializer, data).map_err(|e| bad(e.to_string()))?;
    let parts = match (serializer, call) {
        (Serializer::Json, call) => ["object", "method", "params", "kwargs"]
            .map(|key| call.get(key).cloned().unwrap_or(Value::None)),
        (_, Value::List(parts) | Value::Tuple(parts)) if parts.len() == 4 => {
            parts.try_into().expect("4 parts")
        }
        (_, other) => {
            return Err(bad(format!(
                "{other:?} is not (object, method, args, kwargs)"
            )))
        }
    };
    let [object, method, args, kwargs] = parts;
    let (Value::Str(object), Value::Str(method)) = (object, method) else {
        return Err(bad("the object id and method name must be strings".into()));
    };
    let args = match args {
        Value::List(args) | Value::Tuple(args) => args,
        other => return Err(bad(format!("the arguments are {other:?}, not a sequence"))),
    };
    let kwargs = match kwargs {
        Value::Dict(kwargs) => kwargs,
        Value::None => Vec::new(),
        other => {
            return Err(bad(format!(
                "the keyword arguments are {other:?}, not a dict"
            )))
        }
    };
    Ok(PyroCall {
        object,
        method,
        args,
        kwargs,
    })
}

/// The arguments in the method's order: the positional ones, then the keyword ones by
/// parameter name, `None` for an `Option` left out; a `TypeError` as Python raises one for
/// a call that does not fit.
fn positional(
    method: &MethodDescriptor,
    mut args: Vec<Value>,
    kwargs: Vec<(Value, Value)>,
) -> Result<Vec<Value>, Value> {
    let type_error = |why: String| {
        exception(
            "builtins.TypeError",
            format!("{}() {why}", method.name),
            None,
        )
    };
    let params = &method.params;
    if args.len() > params.len() {
        return Err(type_error(format!(
            "takes {} positional arguments but {} were given",
            params.len(),
            args.len()
        )));
    }
    let mut kwargs: Vec<(String, Value)> = kwargs
        .into_iter()
        .map(|(k, v)| match k {
            Value::Str(k) => Ok((k, v)),
            k => Err(type_error(format!("keywords must be strings, not {k:?}"))),
        })
        .collect::<Result<_, _>>()?;
    for param in &params[args.len()..] {
        match kwargs.iter().position(|(k, _)| *k == param.name) {
            Some(at) => args.push(kwargs.swap_remove(at).1),
            // An `Option` left out is `None`, as a Python default of `None` would be.
            None if param.ty.trim_start().starts_with("Option<") => args.push(Value::None),
            None => {
                return Err(type_error(format!(
                    "missing required argument: '{}'",
                    param.name
                )))
            }
        }
    }
    if let Some((unknown, _)) = kwargs.first() {
        return Err(type_error(format!(
            "got an unexpected keyword argument '{unknown}'"
        )));
    }
    Ok(args)
}

/// Runs method `index` of `hosted` (`handle`) with `args` in this connection's session, as a
/// call from an rmi client runs, and waits for its reply.
async fn run(
    session: &mut Session,
    handle: u64,
    hosted: &dyn crate::hosted::Hosted,
    index: u32,
    format: Format,
    args: Payload,
) -> crate::wire::Reply {
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + CALL_DEADLINE;
    let request = Request {
        context,
        id: 0,
        invoke: Invoke {
            handle,
            method: index,
            format,
            args,
        },
    };
    hosted.start(handle, request, session);
    let connection = &session.connection;
    let mut replies = VecDeque::new();
    std::future::poll_fn(|cx| {
        connection.register_task(cx.waker());
        connection.take_replies(&mut replies);
        match replies.pop_front() {
            // A call's reply is an error of tarpc's only when the daemon ended the call.
            Some((response, _in_flight)) => {
                Poll::Ready(response.message.unwrap_or(Err(Fault::Cancelled)))
            }
            None => Poll::Pending,
        }
    })
    .await
}

/// A method's result as the client's serializer carries it. A method declared
/// `-> Result<T, E>` returns `T`, or raises its `E` (see [`error_exception`]).
fn result(
    serializer: Serializer,
    method: &MethodDescriptor,
    payload: &[u8],
    uri: &str,
) -> Result<Returned, Value> {
    let (fallible, stream) = (method.returns_result(), method.returns_stream());
    if !fallible && !stream {
        return Ok(Returned::Value(payload.to_vec()));
    }
    let unencodable = |e: String| exception(SERIALIZE_ERROR, e, None);
    let mut value = decode(serializer, payload).map_err(|e| unencodable(e.to_string()))?;
    if fallible {
        let Value::Dict(mut entries) = value else {
            return Err(unencodable(format!("{value:?} is not a Result")));
        };
        let (tag, inner) = entries
            .pop()
            .ok_or_else(|| unencodable("an empty Result".into()))?;
        if tag.as_str() == Some("Err") {
            let error_type = method.error_type().unwrap_or("Error");
            // Named as Python names a class: its last path segment.
            let error_type = error_type.rsplit("::").next().unwrap_or(error_type);
            return Err(error_exception(error_type, inner, &method.name, uri));
        }
        value = inner;
    }
    match stream {
        true => stream_id(&value)
            .map(Returned::Stream)
            .ok_or_else(|| unencodable(format!("{value:?} is not a stream"))),
        false => encode(serializer, &value)
            .map(Returned::Value)
            .map_err(unencodable),
    }
}

/// The id of the stream `value` is: an integer, or in JSON `{"rmi.stream": id}`; in a call
/// for an item, the id as the client got it, in text.
fn stream_id(value: &Value) -> Option<u64> {
    match value {
        Value::Int(id) => u64::try_from(*id).ok(),
        Value::Str(id) => id.parse().ok(),
        Value::Dict(entries) => match &entries[..] {
            [(key, id)] if key.as_str() == Some(crate::stream::JSON_MARKER) => stream_id(id),
            _ => None,
        },
        _ => None,
    }
}

/// Why a call on the daemon object did not answer.
enum Raised {
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
async fn next_item(
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

const SERIALIZE_ERROR: &str = "Pyro5.errors.SerializeError";
const DAEMON_ERROR: &str = "Pyro5.errors.DaemonError";

/// A serialized exception, as Pyro5 writes one (`SerializerBase.class_to_dict`): its class,
/// its message as its only argument, and attributes, the remote traceback among them.
fn exception(class: &str, message: String, attributes: Option<Vec<(Value, Value)>>) -> Value {
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
/// matches its kind, any other `E` as a `RuntimeError` whose message names the type and
/// says the value, with attributes `error_type` (`"MathError"`) and `error_value` (the value as
/// data).
fn error_exception(error_type: &str, value: Value, method: &str, uri: &str) -> Value {
    if error_type == "Error" {
        if let Ok(error) = <crate::Error as serde::Deserialize>::deserialize(value.clone()) {
            return rmi_error_exception(&error);
        }
    }
    let said = match &value {
        Value::Str(text) => text.clone(),
        other => rmi_serpent::to_string(other)
            .map(|text| text.lines().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    };
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
fn rmi_error_exception(error: &crate::Error) -> Value {
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
        _ => "Pyro5.errors.PyroError",
    };
    exception(class, error.to_string(), None)
}

/// A fault of the call itself (not the method's own `Err`) as the Python exception Pyro5
/// raises for the like.
fn fault_exception(fault: &Fault, method: &MethodDescriptor, uri: &str) -> Value {
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

/// A call on Pyro5's daemon object (`Pyro.Daemon`): `get_metadata`, `ping`, `info` and
/// `registered`, as Pyro5's `DaemonObject` answers them.
fn daemon_object(shared: &DaemonState, method: &str, args: &[Value]) -> Result<Value, Value> {
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
    fn keyword_arguments_fill_parameters_by_name() {
        let method: MethodDescriptor = MethodDescriptor {
            name: "add".into(),
            params: vec![
                crate::Param {
                    name: "a".into(),
                    ty: "i64".into(),
                },
                crate::Param {
                    name: "b".into(),
                    ty: "i64".into(),
                },
            ]
            .into(),
            result: "i64".into(),
            oneway: false,
            doc: "".into(),
        };
        let args = positional(
            &method,
            vec![Value::Int(1)],
            vec![("b".into(), Value::Int(2))],
        );
        assert_eq!(args.unwrap(), vec![Value::Int(1), Value::Int(2)]);
        let missing = positional(&method, vec![Value::Int(1)], vec![]).unwrap_err();
        assert!(format!("{missing:?}").contains("missing required argument: 'b'"));
        let unknown = positional(
            &method,
            vec![],
            vec![
                ("a".into(), Value::Int(1)),
                ("b".into(), Value::Int(2)),
                ("c".into(), Value::Int(3)),
            ],
        )
        .unwrap_err();
        assert!(format!("{unknown:?}").contains("unexpected keyword argument 'c'"));
    }
}
