//! Calls without Rust types: [`DynamicProxy`] binds any object, learns its trait from the
//! daemon, and calls its methods by name with JSON values (what `rmi call` does).

use serde_json::Value;

use crate::client::ClientConfig;
use crate::describe::TraitDescriptor;
use crate::meters::Outcome;
use crate::proxy::ProxyCore;
use crate::stream::Stream;

use crate::uri::{IntoUri, ObjectUri};
use crate::wire::JSON_STREAM_MARKER;
use crate::wire::{Format, Payload};
use crate::{Error, ErrorKind};

/// A proxy for any exposed object, called by method name with JSON arguments.
///
/// ```
/// #[rmi::expose]
/// pub trait Greeter {
///     async fn welcome_message(&self, name: String) -> String;
/// }
/// struct Server;
/// impl Greeter for Server {
///     async fn welcome_message(&self, name: String) -> String {
///         format!("Hi welcome {name}")
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rmi::Error> {
/// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
/// let uri = daemon.register(Server)?;
/// daemon.spawn();
/// let any = rmi::DynamicProxy::connect(&uri).await?;
/// assert_eq!(any.descriptor().name, "Greeter");
/// let reply = any.call_json("welcome_message", serde_json::json!(["Ruvika"])).await?;
/// assert_eq!(reply, serde_json::json!("Hi welcome Ruvika"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DynamicProxy {
    core: ProxyCore,
}

/// The dynamic proxy's entry point on a config: here, with the dynamic proxy, so that the
/// client layer does not import this feature.
impl ClientConfig {
    /// Connects a [`DynamicProxy`] to `uri` with this config.
    ///
    /// # Errors
    ///
    /// As [`ClientConfig::connect`]: [`ErrorKind::InvalidUri`] for text that does not parse, the
    /// name server's errors for a `rminame:` or `rmimeta:` URI, [`ErrorKind::Connect`] or
    /// [`ErrorKind::Authentication`] if the daemon cannot be reached or refuses the client, and
    /// [`ErrorKind::UnknownObject`] if it has no such object (any trait is accepted).
    pub async fn connect_dynamic(&self, uri: impl IntoUri) -> Result<DynamicProxy, Error> {
        let core = ProxyCore::connect(
            uri.into_uri()?,
            crate::proxy::Binder::Any,
            self.timeout,
            self.to_arc(),
            &crate::nameserver::DIRECTORY,
        )
        .await?;
        Ok(DynamicProxy::from_core(core))
    }
}

impl DynamicProxy {
    /// Connects to the object at `uri`, whatever trait it serves.
    ///
    /// # Errors
    ///
    /// As [`ClientConfig::connect_dynamic`], and [`ErrorKind::BadKey`] if the process's default
    /// config ([`ClientConfig::process_default`]) cannot be read.
    pub async fn connect(uri: impl IntoUri) -> Result<Self, Error> {
        ClientConfig::process_default()?.connect_dynamic(uri).await
    }

    pub(crate) fn from_core(core: ProxyCore) -> Self {
        DynamicProxy { core }
    }

    /// The object's trait, as its daemon describes it.
    pub fn descriptor(&self) -> TraitDescriptor {
        self.core.descriptor()
    }

    /// The object's URI.
    pub fn uri(&self) -> ObjectUri {
        self.core.uri()
    }

    /// Calls `method` with `args`, a JSON array of its arguments in order, and returns its
    /// result as JSON (a method declared `-> Result<T, E>` returns `{"Ok": …}` or `{"Err": …}`).
    ///
    /// A stream that the method returns is read to its end, its items gathered in a JSON
    /// array; [`call_json_streaming`](DynamicProxy::call_json_streaming) gives them as they
    /// come.
    ///
    /// # Errors
    ///
    /// As [`call_json_streaming`](DynamicProxy::call_json_streaming), and the error of a
    /// returned stream that breaks before its end ([`ErrorKind::StreamBroken`],
    /// [`ErrorKind::ProducerFailed`], [`ErrorKind::Disconnected`], …).
    pub async fn call_json(&self, method: &str, args: Value) -> Result<Value, Error> {
        match self.call_json_streaming(method, args).await? {
            JsonReply::Value(value) => Ok(value),
            JsonReply::Stream { mut items, in_ok } => {
                let mut gathered = Vec::new();
                while let Some(item) = items.next().await {
                    gathered.push(item?);
                }
                let gathered = Value::Array(gathered);
                Ok(if in_ok {
                    serde_json::json!({ "Ok": gathered })
                } else {
                    gathered
                })
            }
        }
    }

    /// Calls `method` as [`call_json`](DynamicProxy::call_json) does, but hands back a stream
    /// the method returns as a stream of JSON items, read as they come.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::BadCall`] if the trait has no such method, or `args` is not a JSON array of
    ///   as many arguments as it takes; [`ErrorKind::BadArgument`] if an argument does not fit its
    ///   parameter's type.
    /// - [`ErrorKind::Codec`] if the result is not JSON.
    /// - Any error of a call: [`ErrorKind::Timeout`], [`ErrorKind::Disconnected`],
    ///   [`ErrorKind::Panicked`], [`ErrorKind::Connect`] when binding again fails, …
    ///
    /// ```
    /// #[rmi::expose]
    /// pub trait Letters {
    ///     async fn spell(&self, word: String) -> rmi::Stream<char>;
    /// }
    /// struct Speller;
    /// impl Letters for Speller {
    ///     async fn spell(&self, word: String) -> rmi::Stream<char> {
    ///         rmi::Stream::iter(word.chars().collect::<Vec<_>>())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rmi::Error> {
    /// let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    /// let uri = daemon.register(Speller)?;
    /// daemon.spawn();
    /// let any = rmi::DynamicProxy::connect(&uri).await?;
    /// match any.call_json_streaming("spell", serde_json::json!(["ok"])).await? {
    ///     rmi::JsonReply::Stream { mut items, .. } => {
    ///         assert_eq!(items.next().await.transpose()?, Some(serde_json::json!("o")));
    ///         assert_eq!(items.next().await.transpose()?, Some(serde_json::json!("k")));
    ///         assert!(items.next().await.is_none());
    ///     }
    ///     rmi::JsonReply::Value(v) => panic!("not a stream: {v}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn call_json_streaming(&self, method: &str, args: Value) -> Result<JsonReply, Error> {
        let bad_call = |reason: String| {
            Error::new(ErrorKind::BadCall {
                uri: self.uri().to_string(),
                method: method.to_owned(),
                reason,
            })
        };
        let (bound, timeout) = self.core.bound().await?;
        let (index, descriptor) = bound.descriptor.method(method).ok_or_else(|| {
            let known: Vec<&str> = bound.descriptor.methods.iter().map(|m| &*m.name).collect();
            bad_call(format!(
                "{} has no such method; it has: {}",
                bound.descriptor.name,
                known.join(", ")
            ))
        })?;
        let given = match &args {
            Value::Array(values) => values.len(),
            _ => {
                return Err(bad_call(
                    "give the arguments as a JSON array, such as '[1, \"two\"]'".into(),
                ))
            }
        };
        // A Pyro5 object's methods say no parameters: Python checks them.
        if given != descriptor.params.len() && !bound.connection.is_pyro5() {
            return Err(bad_call(format!(
                "`{}` takes {} arguments, {} given",
                descriptor.signature(),
                descriptor.params.len(),
                given
            )));
        }
        let payload = Format::Json
            .encode(&args)
            .map_err(|e| bad_call(e.to_string()))?;
        let span = self.core.call_span(method);
        let sent = self
            .core
            .send(bound.clone(), timeout, index, Format::Json, payload);
        let sent = ProxyCore::in_span(&span, sent).await;
        if span.is_logged() {
            span.called(match &sent {
                Ok((_, result)) => {
                    Outcome::Reply(Format::Json, result).label(descriptor.returns_result())
                }
                Err(e) => crate::meters::error_kind(e),
            });
        }
        let (bound, result) = sent?;
        let value = decode_json(&result).map_err(|e| {
            Error::new(ErrorKind::Codec {
                uri: self.uri().to_string(),
                method: method.to_owned(),
                action: "decode the result of".into(),
                message: e,
            })
        })?;
        let stream = |id| Stream::received(bound.clone(), index, Format::Json, id);
        Ok(match stream_id(&value) {
            Some((id, in_ok)) => JsonReply::Stream {
                items: stream(id),
                in_ok,
            },
            None => JsonReply::Value(value),
        })
    }

    /// Sets how long each call waits for its reply.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.core.set_timeout(timeout);
        self
    }
}

/// What a method called with JSON returned.
#[derive(Debug)]
pub enum JsonReply {
    /// A value.
    Value(Value),
    /// A stream, read item by item.
    Stream {
        /// The items, as they come.
        items: Stream<Value>,
        /// Whether the method returned `Ok(stream)` (it is declared `-> Result<Stream<T>, E>`).
        in_ok: bool,
    },
}

/// The id of the stream a JSON result is, if it is one (`{"rmi.stream": id}`, perhaps as
/// `{"Ok": …}`), and whether it came as `Ok`.
fn stream_id(value: &Value) -> Option<(u64, bool)> {
    let marker = |value: &Value| {
        let object = value.as_object()?;
        if object.len() != 1 {
            return None;
        }
        object.get(JSON_STREAM_MARKER)?.as_u64()
    };
    match value.get("Ok") {
        Some(inner) => marker(inner).map(|id| (id, true)),
        None => marker(value).map(|id| (id, false)),
    }
}

fn decode_json(payload: &Payload) -> Result<Value, String> {
    serde_json::from_slice(&payload.contiguous()).map_err(|e| e.to_string())
}
