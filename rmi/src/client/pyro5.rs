//! A connection to a Pyro5 object, as Pyro5's own proxy makes one (`Pyro5/client.py`): a
//! `CONNECT` naming the object, answered with its metadata (its methods and oneway methods),
//! then one `INVOKE` at a time, each answered by the `RESULT` of the same sequence number.
//! Values travel in serpent, which every Pyro5 daemon reads (`pyro_values`).
//!
//! Pyro5 carries no deadline: a call whose deadline passes is given up here, and the
//! connection with it, since its reply may still come; the proxy binds again at its next call.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rmi_serpent::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

use crate::channel::Failure;
use crate::pyro_values::{decode, dict, encode, items, Exception};
use crate::pyro_wire::{flags, Kind, Message, Serializer, WireError};

/// How this client writes its payloads: serpent, the serializer every Pyro5 daemon reads
/// (json and msgpack are options a daemon may turn off, or lack the module for).
const SERIALIZER: Serializer = Serializer::Serpent;

/// What a Pyro5 object says it serves, in its `CONNECTOK`.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    /// The names of its exposed methods, sorted.
    pub(crate) methods: Vec<String>,
    /// Those of them that are oneway.
    pub(crate) oneway: Vec<String>,
}

/// Why a Pyro5 daemon did not take the connection.
#[derive(Debug)]
pub(crate) enum Refused {
    /// It has no object by that id.
    UnknownObject,
    /// Anything else: the daemon's reason, or what went wrong on the way.
    Other(String),
}

/// One connection to a Pyro5 daemon, for the calls to one object; they take turns.
#[derive(Debug)]
pub(crate) struct Pyro5Channel {
    /// The connection while it is in step with the daemon; `None` once a call was given up
    /// half-way or the connection failed.
    turn: Mutex<Option<Connected>>,
    /// Set when the connection is gone: the proxy binds again.
    closed: AtomicBool,
    /// The largest reply read.
    max_frame: usize,
}

/// The socket, and the sequence number of the last message sent.
#[derive(Debug)]
struct Connected {
    socket: BufReader<TcpStream>,
    seq: u16,
}

impl Pyro5Channel {
    /// Connects to object `id` over `socket` (connected to its daemon): sends `CONNECT` and
    /// reads the answer, the object's metadata.
    pub(crate) async fn open(
        socket: TcpStream,
        id: &str,
        max_frame: usize,
    ) -> Result<(Pyro5Channel, Metadata), Refused> {
        let mut socket = BufReader::new(socket);
        let payload = dict([("handshake", "hello".into()), ("object", id.into())]);
        let connect = message(Kind::Connect, 0, 0, &payload).map_err(Refused::Other)?;
        let lost = |e: WireError| Refused::Other(e.to_string());
        socket
            .get_mut()
            .write_all(&connect.to_bytes())
            .await
            .map_err(|e| Refused::Other(e.to_string()))?;
        let answer = Message::read(&mut socket, max_frame).await.map_err(lost)?;
        let value = payload_of(&answer).map_err(Refused::Other)?;
        let metadata = match answer.kind {
            Kind::ConnectOk => read_metadata(value.get("meta").unwrap_or(&Value::None)),
            Kind::ConnectFail => {
                let reason = value
                    .as_str()
                    .map_or_else(|| format!("{value:?}"), str::to_owned);
                return Err(match reason.as_str() {
                    "unknown object" => Refused::UnknownObject,
                    _ => Refused::Other(format!("the Pyro5 daemon refused: {reason}")),
                });
            }
            other => {
                return Err(Refused::Other(format!(
                    "a {other:?} message where CONNECTOK was expected: is it a Pyro5 daemon?"
                )))
            }
        };
        let channel = Pyro5Channel {
            turn: Mutex::new(Some(Connected { socket, seq: 0 })),
            closed: AtomicBool::new(false),
            max_frame,
        };
        Ok((channel, metadata))
    }

    /// Whether the connection is gone: calls on it cannot succeed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The largest reply this connection reads.
    pub(crate) fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Calls `method` of object `id` with `args` by `deadline`, after the calls before it
    /// on this connection: its result, or the exception it raised (`Failure::Raised`). A
    /// oneway call returns `None` once written.
    pub(crate) async fn call(
        &self,
        id: &str,
        method: &str,
        args: Vec<Value>,
        oneway: bool,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let exchange = async {
            let mut turn = Turn {
                slot: self.turn.lock().await,
                closed: &self.closed,
                in_step: false,
            };
            let connected = turn.slot.as_mut().ok_or(Failure::Lost(None))?;
            let outcome = connected
                .exchange(id, method, args, oneway, self.max_frame)
                .await;
            turn.in_step = outcome.is_ok();
            outcome.map_err(lost)?
        };
        tokio::time::timeout_at(deadline.into(), exchange)
            .await
            .map_err(|_| Failure::Deadline)?
    }
}

impl Connected {
    /// Writes the call and reads its reply. The outer error is the connection's (it is out
    /// of step after it), the inner one the call's.
    async fn exchange(
        &mut self,
        id: &str,
        method: &str,
        args: Vec<Value>,
        oneway: bool,
        max_frame: usize,
    ) -> Result<Result<Value, Failure>, WireError> {
        self.seq = self.seq.wrapping_add(1);
        let call = Value::Tuple(vec![
            id.into(),
            method.into(),
            Value::Tuple(args),
            Value::Dict(Vec::new()),
        ]);
        let flags = if oneway { flags::ONEWAY } else { 0 };
        let call = match message(Kind::Invoke, flags, self.seq, &call) {
            Ok(call) => call,
            Err(reason) => return Ok(Err(unreadable(reason))),
        };
        self.socket.get_mut().write_all(&call.to_bytes()).await?;
        if oneway {
            return Ok(Ok(Value::None));
        }
        let reply = Message::read(&mut self.socket, max_frame).await?;
        if reply.kind != Kind::Result || reply.seq != self.seq {
            return Err(WireError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the Pyro5 daemon answered call {} with a {:?} message of sequence {}",
                    self.seq, reply.kind, reply.seq
                ),
            )));
        }
        let value = match payload_of(&reply) {
            Ok(value) => value,
            Err(reason) => return Ok(Err(unreadable(reason))),
        };
        Ok(if reply.flags & flags::EXCEPTION != 0 {
            Err(Failure::Raised(Box::new(Exception::read(&value))))
        } else if reply.flags & flags::ITEM_STREAM != 0 {
            Err(unreadable(
                "the method returned an iterator (Pyro5's item streaming), which rmi proxies do not read: return a list".into(),
            ))
        } else {
            Ok(value)
        })
    }
}

/// A call's turn on the connection. Dropped before the reply was read (the deadline passed,
/// or the connection failed), it leaves the connection out of step: it is closed.
struct Turn<'a> {
    slot: MutexGuard<'a, Option<Connected>>,
    closed: &'a AtomicBool,
    in_step: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.in_step {
            *self.slot = None;
            self.closed.store(true, Ordering::Release);
        }
    }
}

/// A message of `kind` carrying `payload` in serpent.
fn message(kind: Kind, flags: u16, seq: u16, payload: &Value) -> Result<Message, String> {
    Ok(Message {
        kind,
        serializer: SERIALIZER as u8,
        flags,
        seq,
        correlation_id: [0; 16],
        annotations: Vec::new(),
        data: encode(SERIALIZER, payload)?,
    })
}

/// The payload of a message from the daemon, in the serializer it names.
fn payload_of(message: &Message) -> Result<Value, String> {
    let serializer = Serializer::of(message.serializer)
        .ok_or_else(|| format!("an unknown serializer (id {})", message.serializer))?;
    decode(serializer, &message.data)
}

/// The object's methods and oneway methods, from its metadata.
fn read_metadata(meta: &Value) -> Metadata {
    // Sets in Python, in no order: sorted, so that a listing reads the same each time.
    let names = |key: &str| -> Vec<String> {
        let mut names: Vec<String> = meta
            .get(key)
            .and_then(items)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    Metadata {
        methods: names("methods"),
        oneway: names("oneway"),
    }
}

/// The failure of a call whose request or reply did not encode or decode, though the
/// connection is still in step.
fn unreadable(reason: String) -> Failure {
    Failure::Unreadable(reason)
}

/// The failure of a call whose connection failed.
fn lost(error: WireError) -> Failure {
    let error = match error {
        WireError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Failure::Lost(None),
        WireError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    };
    Failure::Lost(Some(Arc::new(error)))
}
