//! [`Remote`]: a reference to a remote object that travels as an argument or a result, for
//! callbacks (a client hosts an object and hands the server a reference to it) and for objects
//! a server creates on the fly and hands back (Pyro's autoproxy).

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::nameserver::connect;
use crate::proxy::Proxy;
use crate::uri::ObjectUri;
use crate::Error;

/// A reference to a remote object serving the trait whose proxy is `P`: its URI, typed.
/// [`connect`](Remote::connect) turns it into a proxy.
///
/// ```
/// use rmi::Remote;
///
/// #[rmi::expose]
/// pub trait Listener {
///     async fn notify(&self, event: String);
/// }
///
/// #[rmi::expose]
/// pub trait Publisher {
///     /// Calls `listener` back with each event.
///     async fn subscribe(&self, listener: Remote<ListenerProxy>) -> Result<(), String>;
/// }
///
/// struct Hub;
/// impl Publisher for Hub {
///     async fn subscribe(&self, listener: Remote<ListenerProxy>) -> Result<(), String> {
///         let listener = listener.connect().await.map_err(|e| e.to_string())?;
///         listener.notify("welcome".into()).await.map_err(|e| e.to_string())
///     }
/// }
///
/// struct Printer(tokio::sync::mpsc::UnboundedSender<String>);
/// impl Listener for Printer {
///     async fn notify(&self, event: String) {
///         let _ = self.0.send(event);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let hub = server.register(Hub)?;
/// server.spawn();
/// // The client hosts its listener in a daemon of its own and passes a reference.
/// let client = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
/// let me = client.register(Printer(events))?;
/// client.spawn();
/// PublisherProxy::connect(&hub).await?.subscribe(Remote::new(me)).await??;
/// assert_eq!(received.recv().await.as_deref(), Some("welcome"));
/// # Ok(()) }
/// ```
pub struct Remote<P> {
    uri: ObjectUri,
    proxy: PhantomData<fn() -> P>,
}

impl<P: Proxy> Remote<P> {
    /// A reference to the object at `uri`, which serves the trait of `P`.
    pub fn new(uri: ObjectUri) -> Self {
        Remote {
            uri,
            proxy: PhantomData,
        }
    }

    /// The object's URI.
    pub fn uri(&self) -> &ObjectUri {
        &self.uri
    }

    /// Connects a proxy to the object (checking that it serves `P`'s trait).
    ///
    /// # Errors
    ///
    /// As [`rmi::connect`](crate::connect): [`ErrorKind::Connect`](crate::ErrorKind::Connect) if its daemon cannot be
    /// reached, [`ErrorKind::UnknownObject`](crate::ErrorKind::UnknownObject) if the daemon no longer hosts it, and
    /// [`ErrorKind::WrongTrait`](crate::ErrorKind::WrongTrait) if it serves another trait.
    pub async fn connect(&self) -> Result<P, Error> {
        connect::<P>(&self.uri).await
    }
}

impl<P> Clone for Remote<P> {
    fn clone(&self) -> Self {
        Remote {
            uri: self.uri.clone(),
            proxy: PhantomData,
        }
    }
}

impl<P> PartialEq for Remote<P> {
    fn eq(&self, other: &Self) -> bool {
        self.uri == other.uri
    }
}

impl<P> Eq for Remote<P> {}

impl<P> fmt::Debug for Remote<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({})", self.uri)
    }
}

impl<P> Serialize for Remote<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if to_pyro5_client() {
            return self.as_pyro5_proxy(serializer);
        }
        self.uri.serialize(serializer)
    }
}

impl<P> Remote<P> {
    /// The reference as a Pyro5 `Proxy`, as Pyro5's serializers write one (`class_to_dict`,
    /// with `Proxy.__getstate__`): a Python caller gets a proxy, as from Pyro's autoproxy.
    /// Its methods are left out: the proxy asks for them at its first call.
    fn as_pyro5_proxy<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let uri = self.uri.clone().with_pyro5(true).to_string();
        let none: [&str; 0] = [];
        let state = (uri, none, none, none, "hello", None::<&str>);
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("__class__", "Pyro5.client.Proxy")?;
        map.serialize_entry("state", &state)?;
        map.end()
    }
}

/// Whether the value being written goes to Python: the arguments of a call to a Pyro5 object,
/// or the result of a call from a Pyro5 client.
fn to_pyro5_client() -> bool {
    if crate::pyro_values::is_writing_for_pyro5() {
        return true;
    }
    crate::serving::with(|serving| {
        let connection = serving
            .connection
            .downcast_ref::<crate::session::ConnectionState>();
        connection.is_some_and(|connection| connection.pyro5)
    })
    .unwrap_or(false)
}

impl<'de, P> Deserialize<'de> for Remote<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Remote {
            uri: ObjectUri::deserialize(deserializer)?,
            proxy: PhantomData,
        })
    }
}
