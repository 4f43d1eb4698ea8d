//! The objects behind the gateway: a proxy to each exposed name (kept for a while, so that a
//! call costs one round trip, not a lookup and a bind), calls by name with JSON, and the
//! listing of what is exposed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::expose::Expose;
use crate::{Config, GatewayError};

/// How long a proxy is kept before the name is looked up again: a name moved to another
/// object is followed within this time (and at once when the old object is gone).
const PROXY_TTL: Duration = Duration::from_secs(5);

/// What a call returned.
pub(crate) enum Outcome {
    /// A value (a method's `Ok` value when it returns a `Result`).
    Value(Value),
    /// A stream, read item by item.
    Stream(rmi::Stream<Value>),
}

/// The exposed objects, reached through one name server.
pub(crate) struct Objects {
    ns: rmi::NameServerProxy,
    client: rmi::ClientConfig,
    expose: Expose,
    timeout: Duration,
    /// Whether answers may name the objects' URIs (`Config::show_uris`).
    show_uris: bool,
    proxies: Mutex<HashMap<String, (rmi::DynamicProxy, Instant)>>,
    /// The live panel's links to each daemon's own object, by endpoint.
    daemon_proxies: Mutex<HashMap<String, rmi::DaemonObjectProxy>>,
}

impl Objects {
    pub(crate) fn new(
        ns: rmi::NameServerProxy,
        client: rmi::ClientConfig,
        config: &Config,
    ) -> Objects {
        Objects {
            ns,
            client,
            expose: config.expose.clone(),
            timeout: config.timeout,
            show_uris: config.show_uris,
            proxies: Mutex::new(HashMap::new()),
            daemon_proxies: Mutex::new(HashMap::new()),
        }
    }

    /// `error`, met reaching or calling `name`, with the internal addresses taken out of its
    /// message unless the gateway shows them: the object's URI and address become its name,
    /// the name server's address "the name server".
    fn told(&self, name: &str, error: GatewayError) -> GatewayError {
        let GatewayError::Rmi(rmi_error) = &error else {
            return error;
        };
        if self.show_uris {
            return error;
        }
        let mut message = rmi_error.to_string();
        if let rmi::ErrorKind::Connect { endpoint, .. } = rmi_error.kind() {
            message = message.replace(endpoint, &format!("the server of '{name}'"));
        }
        if let Some(uri) = rmi_error.uri() {
            message = message.replace(uri, &format!("'{name}'"));
            if let Ok(parsed) = uri.parse::<rmi::ObjectUri>() {
                let endpoint = parsed.endpoint().to_string();
                message = message.replace(&endpoint, &format!("the server of '{name}'"));
            }
        }
        message = message.replace(&self.ns.uri().endpoint().to_string(), "the name server");
        // Any address left (another daemon named in a chain of calls, say).
        message = addresses()
            .replace_all(&message, "(an internal address)")
            .into_owned();
        GatewayError::Hidden {
            kind: error.kind(),
            message,
        }
    }

    /// A proxy to the object registered as `name`, if the gateway exposes it.
    pub(crate) async fn object(&self, name: &str) -> Result<rmi::DynamicProxy, GatewayError> {
        // Checked before anything else, so that the answer for a name outside --expose says
        // nothing about whether it exists.
        if !self.expose.allows(name) {
            return Err(GatewayError::NotExposed { name: name.into() });
        }
        if let Some((proxy, since)) = self.proxies().get(name) {
            if since.elapsed() < PROXY_TTL {
                return Ok(proxy.clone());
            }
        }
        let connecting = async {
            let uri = self
                .ns
                .lookup(name.to_owned())
                .await?
                .map_err(|e| match e {
                    rmi::NsError::NotFound(name) => GatewayError::UnknownName { name },
                    other => GatewayError::BadRequest(other.to_string()),
                })?;
            let proxy = self.client.connect_dynamic(uri).await?;
            Ok::<_, GatewayError>(proxy.with_timeout(self.timeout))
        };
        let proxy = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| {
                GatewayError::Rmi(rmi::Error::new(rmi::ErrorKind::Timeout {
                    uri: format!("{}{name}", rmi::NAME_SCHEME),
                    method: "bind".into(),
                    after: self.timeout,
                }))
            })??;
        self.proxies()
            .insert(name.to_owned(), (proxy.clone(), Instant::now()));
        Ok(proxy)
    }

    fn daemon_proxies(&self) -> std::sync::MutexGuard<'_, HashMap<String, rmi::DaemonObjectProxy>> {
        self.daemon_proxies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the daemons' own objects' proxies whose endpoint `keep` says.
    pub(crate) fn keep_daemons(&self, keep: impl Fn(&str) -> bool) {
        self.daemon_proxies().retain(|endpoint, _| keep(endpoint));
    }

    fn proxies(&self) -> std::sync::MutexGuard<'_, HashMap<String, (rmi::DynamicProxy, Instant)>> {
        // A panic while the map was held leaves it consistent: entries are whole values.
        self.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `method` of the object `name` with `args`, its arguments in order.
    pub(crate) async fn call(
        &self,
        name: &str,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, GatewayError> {
        let proxy = self.object(name).await.map_err(|e| self.told(name, e))?;
        let result = call_on(&proxy, name, method, args).await;
        if result.as_ref().is_err_and(GatewayError::object_gone) {
            self.proxies().remove(name);
        }
        result.map_err(|e| self.told(name, e))
    }

    /// The exposed names the name server has, sorted.
    pub(crate) async fn names(&self) -> Result<Vec<String>, GatewayError> {
        let all = self
            .ns
            .list(None)
            .await?
            .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        Ok(all
            .into_keys()
            .filter(|name| self.expose.allows(name))
            .collect())
    }

    /// Each exposed name the name server has: its trait and its daemon's endpoint, or why it
    /// cannot be reached.
    pub(crate) async fn daemons(&self) -> Vec<(String, String, Result<String, String>)> {
        let Ok(names) = self.names().await else {
            return Vec::new();
        };
        let found = names.into_iter().map(|name| async move {
            match self.object(&name).await {
                Ok(proxy) => {
                    let trait_name = proxy.descriptor().name.to_string();
                    (name, trait_name, Ok(proxy.uri().endpoint().to_string()))
                }
                Err(e) => {
                    let why = self.told(&name, e).to_string();
                    (name, String::new(), Err(why))
                }
            }
        });
        futures::future::join_all(found).await
    }

    /// The calls the daemon at `endpoint` has served, as its metrics count them; or why they
    /// cannot be read. Its own object's proxy is kept for the next reading.
    pub(crate) async fn metrics_of(&self, endpoint: &str) -> Result<rmi::live::Reading, String> {
        let kept = self.daemon_proxies().get(endpoint).cloned();
        let reading = async {
            let daemon = match kept {
                Some(daemon) => daemon,
                None => {
                    let uri = format!("{}{}@{endpoint}", rmi::OBJECT_SCHEME, rmi::DAEMON_OBJECT_ID);
                    let daemon: rmi::DaemonObjectProxy = self.client.connect(uri).await?;
                    self.daemon_proxies()
                        .insert(endpoint.to_owned(), daemon.clone());
                    daemon
                }
            };
            daemon.metrics().await
        };
        match tokio::time::timeout(self.timeout, reading).await {
            Ok(Ok(Some(text))) => Ok(rmi::live::Reading::parse(&text)),
            Ok(Ok(None)) => Err(crate::live::METRICS_OFF.to_owned()),
            Ok(Err(e)) if self.show_uris => Err(format!("its metrics cannot be read: {e}")),
            _ => Err("its metrics cannot be read: its daemon does not answer".to_owned()),
        }
    }

    /// Every exposed name with its object's trait and methods, or why it cannot be reached.
    pub(crate) async fn list(&self) -> Result<Vec<Value>, GatewayError> {
        let names = self.names().await?;
        let described = names.iter().map(|name| async move {
            match self.object(name).await {
                Ok(proxy) => describe(name, &proxy, self.show_uris),
                Err(error) => json!({ "name": name, "error": self.told(name, error).body() }),
            }
        });
        Ok(futures::future::join_all(described).await)
    }
}

async fn call_on(
    proxy: &rmi::DynamicProxy,
    name: &str,
    method: &str,
    args: Vec<Value>,
) -> Result<Outcome, GatewayError> {
    let descriptor = proxy.descriptor();
    let Some((_, found)) = descriptor.method(method) else {
        return Err(GatewayError::unknown_method(name, &descriptor, method));
    };
    let fallible = found.returns_result();
    match proxy
        .call_json_streaming(method, Value::Array(args))
        .await?
    {
        rmi::JsonReply::Stream { items, .. } => Ok(Outcome::Stream(items)),
        rmi::JsonReply::Value(value) if fallible => match value {
            Value::Object(mut map) if map.len() == 1 => {
                if let Some(error) = map.remove("Err") {
                    return Err(GatewayError::MethodError {
                        method: method.into(),
                        error,
                    });
                }
                Ok(Outcome::Value(
                    map.remove("Ok").unwrap_or(Value::Object(map)),
                ))
            }
            other => Ok(Outcome::Value(other)),
        },
        rmi::JsonReply::Value(value) => Ok(Outcome::Value(value)),
    }
}

/// Object URIs (`rmi:`, `rmis:`, `PYRO:`) and `HOST:PORT` addresses in a message.
fn addresses() -> &'static regex::Regex {
    static ADDRESSES: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    ADDRESSES.get_or_init(|| {
        regex::Regex::new(
            r"(?:rmis?|PYRO):\S+@\S+|\[[0-9A-Fa-f:.]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}:\d+",
        )
        .expect("a valid pattern")
    })
}

/// An object as `GET /objects` lists it: with its URI only if `show_uri`.
fn describe(name: &str, proxy: &rmi::DynamicProxy, show_uri: bool) -> Value {
    let descriptor = proxy.descriptor();
    let methods: Vec<Value> = descriptor
        .methods
        .iter()
        .map(|m| {
            let params: Vec<Value> = m
                .params
                .iter()
                .map(|p| json!({ "name": p.name, "type": p.ty }))
                .collect();
            json!({
                "name": m.name,
                "params": params,
                "result": m.result,
                "signature": m.signature(),
                "doc": m.doc,
                "stream": m.returns_stream(),
                "oneway": m.oneway,
            })
        })
        .collect();
    let mut described = json!({
        "name": name,
        "trait": descriptor.name,
        "methods": methods,
    });
    if show_uri {
        described["uri"] = Value::from(proxy.uri().to_string());
    }
    described
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_in_messages() {
        let message = "the call to rmi:obj_1@10.0.0.5:4001 via rmis:x@[::1]:9 at 192.168.1.2:80 timed out after 5s: error 2";
        let hidden = addresses().replace_all(message, "X");
        assert_eq!(
            hidden,
            "the call to X via X at X timed out after 5s: error 2"
        );
    }

    #[test]
    fn expose_matches_whole_names() {
        let expose = Expose::new(&["a.b".into()]).unwrap();
        assert!(expose.allows("a.b") && expose.allows("axb"));
        assert!(!expose.allows("a.bc") && !expose.allows("xa.b"));
        assert!(Expose::new(&["(".into()]).is_err());
    }
}
