//! [`Stream`]: a method's result that arrives item by item, with back-pressure.
//!
//! A method returns `rmi::Stream<T>`. On the server, returning it hosts its items on the
//! caller's connection under a stream id (see `server::stream_host`); the reply carries only the id. On
//! the client, the proxy's result is a stream that pulls the items in batches over the same
//! connection (see [`pull`]), one batch in flight at a time: the producer is polled only to
//! fill a batch the client asked for, so it never runs more than two batches ahead of the
//! consumer. Dropping the client's stream closes the server's, which drops the producer.

mod pull;
mod push;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::StreamExt;
use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::blob::{Blob, BytesInStream, BytesStreamInOk, LentBlob, OwnedBytes, WireForm};
use crate::proxy::Bound;
use crate::wire::Format;
use crate::{Error, ErrorKind};

/// The serde name of a stream on the wire: a newtype around its id.
const WIRE_NAME: &str = "rmi.Stream";

/// A stream of `T`s that a remote method returns, read item by item as the server produces
/// them.
///
/// On the server, make one from any [`futures::Stream`] ([`Stream::new`]), an iterator
/// ([`Stream::iter`]) or the receiving end of a channel fed by a producer task
/// ([`Stream::from_receiver`]). On the client, read it with [`next`](Stream::next) (or as a
/// [`futures::Stream`] of `Result<T, rmi::Error>`).
///
/// Back-pressure: the server polls the producer of a result only to fill a batch (up to 256
/// items or 1 MiB) the client asked for, and the client asks for the next batch only when it has
/// started on the last one, so a producer never runs more than two batches ahead of a slow
/// consumer. Dropping the client's stream drops the server's producer, as does the client's
/// connection ending. Waiting for an item has no timeout of its own (wrap
/// [`next`](Stream::next) in `tokio::time::timeout` for one), but inherits the deadline of
/// the call being served, if any.
///
/// A stream travels on the connection of its call: once the connection breaks, the stream's
/// next item is the error.
///
/// **Uploads.** A stream may also be a call's argument: the client's proxy pushes its items
/// to the daemon while the call runs, and the method reads them as they come, with the same
/// back-pressure (a push is answered once the method's stream has room for it, so the
/// client's producer is at most four batches ahead). When the method drops the stream (or
/// returns), the client's producer is dropped; when the caller gives up (or its connection
/// ends), the method's stream ends with an error. Only typed proxies upload: a JSON caller
/// (the `rmi` command, the gateway) cannot pass a stream.
///
/// ```
/// #[rmi::expose]
/// pub trait Files {
///     /// Stores a file sent in chunks; how many bytes it got.
///     async fn upload(&self, name: String, chunks: rmi::Stream<Vec<u8>>) -> u64;
/// }
///
/// struct Store;
/// impl Files for Store {
///     async fn upload(&self, _name: String, mut chunks: rmi::Stream<Vec<u8>>) -> u64 {
///         let mut bytes = 0;
///         while let Some(chunk) = chunks.next().await {
///             bytes += chunk.map(|chunk| chunk.len() as u64).unwrap_or(0);
///         }
///         bytes
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Store)?;
/// daemon.spawn();
/// let files = FilesProxy::connect(&uri).await?;
/// let chunks = (0..4).map(|_| vec![0u8; 64 * 1024]);
/// assert_eq!(files.upload("a.bin".into(), rmi::Stream::iter(chunks)).await?, 256 * 1024);
/// # Ok(()) }
/// ```
///
/// A result:
///
/// ```
/// #[rmi::expose]
/// pub trait Numbers {
///     async fn count_to(&self, n: u64) -> rmi::Stream<u64>;
/// }
///
/// struct Counter;
/// impl Numbers for Counter {
///     async fn count_to(&self, n: u64) -> rmi::Stream<u64> {
///         rmi::Stream::iter(1..=n)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Counter)?;
/// daemon.spawn();
/// let numbers = NumbersProxy::connect(&uri).await?;
/// let mut stream = numbers.count_to(1000).await?;
/// let mut sum = 0;
/// while let Some(n) = stream.next().await {
///     sum += n?;
/// }
/// assert_eq!(sum, 500_500);
/// # Ok(()) }
/// ```
pub struct Stream<T> {
    // A mutex only because `Serialize` takes `&self` and hosting moves the items out; it is
    // locked once, when the server encodes the result. Reading uses `get_mut`.
    state: Mutex<State<T>>,
}

enum State<T> {
    /// Made on this side and not yet sent: the items.
    Local(BoxStream<'static, Result<T, Error>>),
    /// Sent as a method's result: hosted on the caller's connection under this id.
    Hosted(u64),
    /// Received as a method's result: pulls the items from the server.
    Received(pull::Puller),
    /// Received as a call's argument, on the daemon: the items the client pushes.
    Uploaded(push::Receiver),
    /// Could not be sent, for this reason (given again if encoding is tried again).
    Unsent(String),
}

impl<T: Send + 'static> Stream<T> {
    /// A stream of the items `items` produces. The server polls it only when the client
    /// wants more, and drops it when the client drops its end.
    ///
    /// ```
    /// use futures::StreamExt;
    /// let evens = rmi::Stream::new(futures::stream::iter(0..10u32).filter(|n| std::future::ready(n % 2 == 0)));
    /// # drop(evens);
    /// ```
    pub fn new(items: impl futures::Stream<Item = T> + Send + 'static) -> Self {
        Stream::from_state(State::Local(items.map(Ok).boxed()))
    }

    /// A stream of what `items` yields, which may fail: the first error ends the stream, and
    /// the reader's next item is that error (an [`ErrorKind::ProducerFailed`] with its text; a
    /// client reading the stream from a server gets an [`ErrorKind::StreamBroken`] with it).
    ///
    /// ```
    /// let lines = rmi::Stream::try_new(futures::stream::iter([Ok("a"), Err("disk gone")]));
    /// # drop(lines);
    /// ```
    pub fn try_new<E: fmt::Display>(
        items: impl futures::Stream<Item = Result<T, E>> + Send + 'static,
    ) -> Self {
        let items = items.map(|item| item.map_err(|e| producer_failed(e.to_string())));
        Stream::from_state(State::Local(items.boxed()))
    }

    /// A stream of the items of `items`.
    ///
    /// ```
    /// let letters = rmi::Stream::iter(vec!["a", "b", "c"]);
    /// # drop(letters);
    /// ```
    pub fn iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Stream::new(futures::stream::iter(items))
    }

    /// A stream of what a producer task sends on a bounded channel. The channel's capacity
    /// bounds how far the producer runs ahead; when the client drops the stream, the
    /// receiver is dropped and the producer's next `send` fails, which is its cue to stop.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (sender, receiver) = tokio::sync::mpsc::channel(16);
    /// tokio::spawn(async move {
    ///     for tick in 0u64.. {
    ///         if sender.send(tick).await.is_err() {
    ///             break; // the client dropped the stream
    ///         }
    ///     }
    /// });
    /// let ticks = rmi::Stream::from_receiver(receiver);
    /// # drop(ticks);
    /// # }
    /// ```
    pub fn from_receiver(mut receiver: tokio::sync::mpsc::Receiver<T>) -> Self {
        Stream::new(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}

impl<T> Stream<T> {
    /// The stream `id` that `method` returned on `bound`, its items in `format`.
    pub(crate) fn received(bound: Arc<Bound>, method: usize, format: Format, id: u64) -> Self {
        Stream::from_state(State::Received(pull::Puller::new(
            bound, method, format, id,
        )))
    }

    /// The same stream, each item passed through `f`. A received stream is read as `T`
    /// (its items decode as `T`), then passed; a hosted one is an id and has no items here.
    fn map_items<U: Send + 'static>(self, f: fn(T) -> U) -> Stream<U>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Stream::from_state(match state {
            State::Local(items) => State::Local(items.map(move |item| item.map(f)).boxed()),
            state @ (State::Received(_) | State::Uploaded(_)) => {
                let received = Stream::<T>::from_state(state);
                State::Local(received.map(move |item| item.map(f)).boxed())
            }
            State::Hosted(id) => State::Hosted(id),
            State::Unsent(reason) => State::Unsent(reason),
        })
    }

    fn from_state(state: State<T>) -> Self {
        Stream {
            state: Mutex::new(state),
        }
    }

    fn state(&mut self) -> &mut State<T> {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: DeserializeOwned> Stream<T> {
    /// The next item: `None` at the end of the stream. After an error (the connection
    /// broke, the producer panicked, an item did not decode), the stream ends.
    ///
    /// The same as [`futures::StreamExt::next`], without the import.
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        match self.state() {
            State::Local(items) => items.poll_next_unpin(cx),
            State::Received(puller) => puller.poll_item(cx),
            State::Uploaded(receiver) => receiver.poll_item(cx),
            // A stream sent away, or lost in sending, has no items left here.
            State::Hosted(_) | State::Unsent(_) => Poll::Ready(None),
        }
    }
}

impl<T: DeserializeOwned> futures::Stream for Stream<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            State::Local(_) => f.write_str("Stream(local)"),
            State::Hosted(id) => write!(f, "Stream(hosted as {id})"),
            State::Received(puller) => write!(f, "Stream({puller:?})"),
            State::Uploaded(receiver) => write!(f, "Stream({receiver:?})"),
            State::Unsent(reason) => write!(f, "Stream(unsent: {reason})"),
        }
    }
}

/// Sending a stream hosts its items on the connection of the call being served; the wire
/// carries the id. A received stream sent on (a server returning what another server
/// returned) is hosted likewise, relaying its items.
impl<T: Serialize + DeserializeOwned + Send + 'static> Serialize for Stream<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Encoding may run more than once (measured, then written): send once.
        let hosted = match std::mem::replace(&mut *state, State::Hosted(0)) {
            State::Hosted(id) => Ok(id),
            State::Unsent(reason) => Err(reason),
            State::Local(items) => send(items),
            // A stream received and sent on: relayed, item by item.
            state @ (State::Received(_) | State::Uploaded(_)) => {
                send(Stream::<T>::from_state(state).boxed())
            }
        };
        *state = match &hosted {
            Ok(id) => State::Hosted(*id),
            Err(reason) => State::Unsent(reason.clone()),
        };
        let id = hosted.map_err(serde::ser::Error::custom)?;
        let json = crate::serving::with(|serving| serving.format == Format::Json);
        if json == Some(true) {
            use serde::ser::SerializeMap;
            let mut marker = serializer.serialize_map(Some(1))?;
            marker.serialize_entry(crate::wire::JSON_STREAM_MARKER, &id)?;
            return marker.end();
        }
        serializer.serialize_newtype_struct(WIRE_NAME, &id)
    }
}

/// A stream of bytes travels with each item as one byte string.
impl<T: OwnedBytes + DeserializeOwned + Send + 'static> WireForm<Stream<T>> for BytesInStream
where
    Blob<T>: DeserializeOwned,
{
    type Sent = Stream<LentBlob>;
    type Form = Stream<Blob<T>>;
    fn to_wire(stream: Stream<T>) -> Stream<LentBlob> {
        stream.map_items(LentBlob::from)
    }
    fn from_wire(stream: Stream<Blob<T>>) -> Stream<T> {
        stream.map_items(Blob::into_inner)
    }
}

/// The error a producer's failure is carried in: its text (it arose here).
fn producer_failed(reason: String) -> Error {
    Error::new(ErrorKind::ProducerFailed { reason })
}

/// Sends `items`: as an upload when a proxy encodes a call's arguments (the items are
/// pushed once the call is sent), else as a result, hosted on the connection of the call
/// being served. The id that travels in its place.
fn send<T: Serialize + Send + 'static>(
    items: BoxStream<'static, Result<T, Error>>,
) -> Result<u64, String> {
    static NEXT_UPLOAD: AtomicU64 = AtomicU64::new(1);
    let id = NEXT_UPLOAD.fetch_add(1, Ordering::Relaxed);
    // Items travel in the format typed proxies use for arguments.
    let format = Format::MessagePack;
    let upload = |items| -> crate::proxy::sending::Upload {
        Box::new(move |bound, method, timeout| {
            Box::pin(push::push(bound, method, id, items, format, timeout))
        })
    };
    match crate::proxy::sending::register(items, upload) {
        Ok(()) => Ok(id),
        Err(items) => crate::stream_calls::host_stream(items),
    }
}

/// A method's stream of bytes, or its error: the stream's items as byte strings.
impl<T: OwnedBytes + DeserializeOwned + Send + 'static, E> WireForm<Result<Stream<T>, E>>
    for BytesStreamInOk
where
    Blob<T>: DeserializeOwned,
{
    type Sent = Result<Stream<LentBlob>, E>;
    type Form = Result<Stream<Blob<T>>, E>;
    fn to_wire(result: Result<Stream<T>, E>) -> Self::Sent {
        result.map(BytesInStream::to_wire)
    }
    fn from_wire(form: Self::Form) -> Result<Stream<T>, E> {
        form.map(BytesInStream::from_wire)
    }
}

/// A stream is received as the result of a call (it pulls its items over the connection the
/// result came on) or, on a daemon, as a call's argument (the client pushes its items).
impl<'de, T> Deserialize<'de> for Stream<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Id;
        impl<'de> serde::de::Visitor<'de> for Id {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stream id")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
                u64::deserialize(d)
            }
            fn visit_u64<E: serde::de::Error>(self, id: u64) -> Result<u64, E> {
                Ok(id)
            }
        }
        let id = deserializer.deserialize_newtype_struct(WIRE_NAME, Id)?;
        let state = if crate::proxy::receiving::origin().is_some() {
            State::Received(pull::Puller::for_received(id).map_err(serde::de::Error::custom)?)
        } else {
            State::Uploaded(push::Receiver::for_argument(id).map_err(serde::de::Error::custom)?)
        };
        Ok(Stream::from_state(state))
    }
}
