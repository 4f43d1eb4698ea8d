//! The daemon's Pyro5 side: a connection that opens with `PYRO` is a Pyro5 client (Python's
//! `Pyro5.api.Proxy`), served here with Pyro5's protocol (`pyro_wire`) on the daemon's own
//! port and objects: `PYRO:<id>@host:port` names the object `rmi:<id>@host:port` does.
//!
//! Like Pyro5's own daemon (`Pyro5/server.py`), it answers the client's `CONNECT` with the
//! object's metadata (its methods and oneway methods), then runs each `INVOKE` and answers
//! `PING`. A call runs as an rmi client's does (`Hosted::start`, in a session of this
//! connection), with its arguments and result in the client's serializer (`values`); what
//! fails reaches Python as the exception Pyro5 would raise (`exceptions`); Pyro5's own
//! daemon object, the metadata and the Python names of methods are in `daemon_object`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use rmi_serpent::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Connected, DaemonState};
use crate::describe::MethodDescriptor;
use crate::pyro_values::{decode, dict, encode, format_of, plain};
use crate::pyro_wire::{flags, Kind, Message, Serializer, WireError};
use crate::session::{Request, Session};
use crate::wire::{Fault, Format, Invoke, Payload};
use daemon_object::{daemon_object, find_method, metadata, next_item, Raised, DAEMON_ID};
use exceptions::{error_exception, exception, fault_exception, DAEMON_ERROR, SERIALIZE_ERROR};
use values::{decode_call, positional, served_serializer, stream_id, PyroCall};

mod daemon_object;
mod exceptions;
mod values;

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
    connected.prove();
    let (answer, accepted) = handshake(shared, &connect, secure);
    if stream.write_all(&answer.to_bytes()).await.is_err() || !accepted {
        return;
    }
    let mut session = super::new_session(shared, peer).for_pyro5();
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

/// The largest `CONNECT` read from a client only to refuse it.
const REFUSED_CONNECT_BYTES: usize = 64 * 1024;

/// Refuses a Pyro5 client the daemon has no room for: reads its `CONNECT` (unread, it would
/// turn the close into a reset that loses the answer) and answers `CONNECTFAIL` with `why`,
/// which Pyro5 raises as a `CommunicationError`.
pub(super) async fn refuse<S>(stream: &mut S, why: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(connect) = Message::read(stream, REFUSED_CONNECT_BYTES).await else {
        return;
    };
    let why = format!("the daemon is full: {why}; retry later");
    let data = encode(Serializer::Serpent, &Value::Str(why)).unwrap_or_default();
    let mut answer = Message::answer(&connect, Kind::ConnectFail, 0, data);
    answer.serializer = Serializer::Serpent as u8;
    let _ = stream.write_all(&answer.to_bytes()).await;
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

/// Runs one `INVOKE` and makes its answer: `RESULT`, with the exception flag if it failed;
/// none for a oneway call.
async fn invoke(shared: &DaemonState, session: &mut Session, message: &Message) -> Option<Message> {
    let oneway = message.flags & flags::ONEWAY != 0;
    let serializer = Serializer::of(message.serializer).unwrap_or(Serializer::Serpent);
    let batch = message.flags & flags::BATCH != 0;
    let outcome = match served_serializer(message.serializer) {
        Ok(serializer) => match decode_call(serializer, &message.data) {
            Ok(call) if batch => run_batch(shared, session, serializer, call).await,
            Ok(call) => run_call(shared, session, serializer, call).await,
            Err(raised) => Err(raised),
        },
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
    let flag = if batch { flag | flags::BATCH } else { flag };
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

/// Runs the calls of a batch (Pyro5's `BatchProxy`: the method `<batch>`, whose arguments are
/// `(method, args, kwargs)` triples) one after the other, as Pyro5's daemon does: the list of
/// their results, ending at the first exception, which takes its place wrapped as Pyro5 wraps
/// it (`core._ExceptionWrapper`), for the client to raise when it gets there.
async fn run_batch(
    shared: &DaemonState,
    session: &mut Session,
    serializer: Serializer,
    batch: PyroCall,
) -> Result<Returned, Value> {
    let mut results = Vec::with_capacity(batch.args.len());
    for triple in batch.args {
        let call = batch_call(&batch.object, triple)?;
        let outcome = match run_call(shared, session, serializer, call).await {
            Ok(Returned::Value(data)) => {
                decode(serializer, &data).map_err(|e| exception(SERIALIZE_ERROR, e, None))
            }
            Ok(Returned::Stream(_)) => Err(exception(
                "Pyro5.errors.PyroError",
                "a stream cannot be the result of a batched call: call the method on its own"
                    .into(),
                None,
            )),
            Err(raised) => Err(raised),
        };
        match outcome {
            Ok(value) => results.push(value),
            Err(raised) => {
                results.push(dict([
                    ("__class__", "Pyro5.core._ExceptionWrapper".into()),
                    ("exception", raised),
                ]));
                break;
            }
        }
    }
    encode(serializer, &Value::List(results))
        .map(Returned::Value)
        .map_err(|e| exception(SERIALIZE_ERROR, e, None))
}

/// One call of a batch on `object`, from its `(method, args, kwargs)`.
fn batch_call(object: &str, triple: Value) -> Result<PyroCall, Value> {
    let bad = || {
        exception(
            SERIALIZE_ERROR,
            "a batched call is not (method, args, kwargs)".into(),
            None,
        )
    };
    let (Value::List(parts) | Value::Tuple(parts)) = triple else {
        return Err(bad());
    };
    let Ok([Value::Str(method), args, kwargs]) = <[Value; 3]>::try_from(parts) else {
        return Err(bad());
    };
    let args = match args {
        Value::List(args) | Value::Tuple(args) => args,
        _ => return Err(bad()),
    };
    let kwargs = match kwargs {
        Value::Dict(kwargs) => kwargs,
        Value::None => Vec::new(),
        _ => return Err(bad()),
    };
    Ok(PyroCall {
        object: object.to_owned(),
        method,
        args,
        kwargs,
    })
}

/// Runs one call: its result in `serializer`, or the exception to raise.
async fn run_call(
    shared: &DaemonState,
    session: &mut Session,
    serializer: Serializer,
    call: PyroCall,
) -> Result<Returned, Value> {
    let PyroCall {
        object,
        method,
        args,
        kwargs,
    } = call;
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
    // A Pyro5 proxy or URI among them is the `Remote` it stands for.
    let args = positional(described, args, kwargs)?
        .into_iter()
        .map(plain)
        .collect::<Vec<_>>();
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
    // A Pyro5 client sends no trace context: its call begins a trace.
    let mut context = tarpc::context::current();
    context.trace_context = Default::default();
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
