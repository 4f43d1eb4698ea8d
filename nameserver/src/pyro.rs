//! The name server as Pyro5 sees it: the object `Pyro.NameServer` on `rmi-ns`'s port, with
//! the methods of Pyro5's own `NameServer` (`Pyro5/nameserver.py`) and their semantics, over
//! the same names rmi's clients use. Python's `locate_ns(host, port)`, `PYRONAME:` URIs and
//! `python -m Pyro5.nsc` reach it through the daemon's Pyro5 side.
//!
//! A name registered from Rust (`rmi:obj@host:port`) is `PYRO:obj@host:port` to Python: an
//! rmi daemon serves its objects to Pyro5 clients on the same port. A name registered from
//! Python keeps its `PYRO:` URI.

use std::collections::{BTreeMap, BTreeSet};

use rmi::{NameServer, NsError, ObjectUri, RegisterOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NameServerImpl;

/// The name server's object id in Pyro5 (`Pyro5.core.NAMESERVER_NAME`).
pub const PYRO_NAME_SERVER_ID: &str = "Pyro.NameServer";

/// A URI as Pyro5 reads and writes one: a `Pyro5.core.URI` object, which its serializers
/// carry as `{"__class__": "Pyro5.core.URI", "state": (protocol, object, sockname, host,
/// port)}`; text is read too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyroUri(pub ObjectUri);

impl Serialize for PyroUri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let endpoint = self.0.endpoint();
        let state = (
            "PYRO",
            self.0.id(),
            None::<()>,
            endpoint.host(),
            endpoint.port(),
        );
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("__class__", "Pyro5.core.URI")?;
        map.serialize_entry("state", &state)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for PyroUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Object {
                state: (String, String, Option<String>, String, u16),
            },
        }
        let text = match Form::deserialize(deserializer)? {
            Form::Text(text) => text,
            Form::Object {
                state: (protocol, id, _, host, port),
            } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("{protocol}:{id}@{host}:{port}")
            }
        };
        text.parse().map(PyroUri).map_err(serde::de::Error::custom)
    }
}

impl PyroUri {
    /// `uri` as Python sees it: `PYRO:` with the same object and endpoint.
    pub fn seen_from_python(uri: ObjectUri) -> Self {
        PyroUri(uri.with_pyro5(true))
    }
}

/// A flag as Python passes one: any value, true as Python's `bool()` makes it (Pyro5's own
/// `resolve` passes `0.0` for `return_metadata`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Truthy(pub bool);

impl<'de> Deserialize<'de> for Truthy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Truthy;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value Python reads as true or false")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Truthy, E> {
                Ok(Truthy(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Truthy, E> {
                Ok(Truthy(v != 0.0))
            }
            fn visit_str<E>(self, v: &str) -> Result<Truthy, E> {
                Ok(Truthy(!v.is_empty()))
            }
            fn visit_unit<E>(self) -> Result<Truthy, E> {
                Ok(Truthy(false))
            }
            fn visit_none<E>(self) -> Result<Truthy, E> {
                Ok(Truthy(false))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Truthy, D::Error> {
                Truthy::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Truthy, A::Error> {
                Ok(Truthy(
                    seq.next_element::<serde::de::IgnoredAny>()?.is_some(),
                ))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Truthy, A::Error> {
                Ok(Truthy(map.next_key::<serde::de::IgnoredAny>()?.is_some()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A lookup's answer: the URI, or with `return_metadata` the URI and its metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Looked {
    /// The URI.
    Uri(PyroUri),
    /// The URI and its metadata (a tuple, as Python returns it).
    WithMetadata((PyroUri, BTreeSet<String>)),
}

/// An entry of a listing: the URI as text, or with `return_metadata` the URI and its metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Listed {
    /// The URI, as text.
    Uri(String),
    /// The URI, as text, and its metadata (a tuple, as Python returns it).
    WithMetadata((String, BTreeSet<String>)),
}

/// Pyro5's name server interface, as Python calls it (`Pyro5.nameserver.NameServer`): the
/// keyword arguments Python leaves out are `None`.
#[rmi::expose]
pub trait PyroNameServer {
    /// The URI of `name`; with `return_metadata`, the URI and the name's metadata.
    async fn lookup(
        &self,
        name: String,
        return_metadata: Option<Truthy>,
    ) -> Result<Looked, NsError>;
    /// Maps `name` to `uri` (text or a URI object), replacing an earlier mapping unless `safe`.
    async fn register(
        &self,
        name: String,
        uri: PyroUri,
        safe: Option<Truthy>,
        metadata: Option<BTreeSet<String>>,
    ) -> Result<(), NsError>;
    /// Replaces the metadata of `name`.
    async fn set_metadata(
        &self,
        name: String,
        metadata: Option<BTreeSet<String>>,
    ) -> Result<(), NsError>;
    /// Removes `name`, or every name with `prefix`, or every name `regex` matches from its
    /// start: how many were removed. The name server's own name stays.
    async fn remove(
        &self,
        name: Option<String>,
        prefix: Option<String>,
        regex: Option<String>,
    ) -> Result<u64, NsError>;
    /// The names (with `prefix`, or matching `regex`), each with its URI as text, and its
    /// metadata with `return_metadata`.
    async fn list(
        &self,
        prefix: Option<String>,
        regex: Option<String>,
        return_metadata: Option<Truthy>,
    ) -> Result<BTreeMap<String, Listed>, NsError>;
    /// The names with all of `meta_all`, or any of `meta_any`; with their metadata unless
    /// `return_metadata` is false.
    async fn yplookup(
        &self,
        meta_all: Option<BTreeSet<String>>,
        meta_any: Option<BTreeSet<String>>,
        return_metadata: Option<Truthy>,
    ) -> Result<BTreeMap<String, Listed>, NsError>;
    /// How many names are registered, the name server's own among them.
    async fn count(&self) -> Result<u64, NsError>;
    /// Answers when the name server is alive.
    async fn ping(&self);
}

/// [`PyroNameServer`] over a name server's names.
#[derive(Clone)]
pub struct PyroNames {
    names: NameServerImpl,
    /// `PYRO:Pyro.NameServer@host:port`.
    own: ObjectUri,
}

impl PyroNames {
    /// Pyro5's view of `names`, whose daemon is at `endpoint`.
    ///
    /// # Errors
    ///
    /// None in practice: the name server's id is a valid object id.
    pub fn new(names: NameServerImpl, endpoint: rmi::Endpoint) -> Result<Self, rmi::Error> {
        let own = ObjectUri::new(PYRO_NAME_SERVER_ID, endpoint)?.with_pyro5(true);
        Ok(PyroNames { names, own })
    }

    /// `registrations` as Pyro5 lists them, and the name server's own name if `own`.
    fn listed(
        &self,
        registrations: BTreeMap<String, rmi::Registration>,
        with_metadata: bool,
        own: bool,
    ) -> BTreeMap<String, Listed> {
        let mut listed: BTreeMap<String, Listed> = registrations
            .into_iter()
            .map(|(name, registration)| {
                let uri = PyroUri::seen_from_python(registration.uri).0.to_string();
                (name, entry(uri, registration.meta, with_metadata))
            })
            .collect();
        if own {
            let uri = self.own.to_string();
            listed.insert(
                PYRO_NAME_SERVER_ID.into(),
                entry(uri, BTreeSet::new(), with_metadata),
            );
        }
        listed
    }
}

fn entry(uri: String, meta: BTreeSet<String>, with_metadata: bool) -> Listed {
    match with_metadata {
        true => Listed::WithMetadata((uri, meta)),
        false => Listed::Uri(uri),
    }
}

impl PyroNameServer for PyroNames {
    async fn lookup(
        &self,
        name: String,
        return_metadata: Option<Truthy>,
    ) -> Result<Looked, NsError> {
        let (uri, meta) = if name == PYRO_NAME_SERVER_ID {
            (PyroUri(self.own.clone()), BTreeSet::new())
        } else {
            let registration = self.names.registration(name).await?;
            (
                PyroUri::seen_from_python(registration.uri),
                registration.meta,
            )
        };
        Ok(match return_metadata.is_some_and(|flag| flag.0) {
            true => Looked::WithMetadata((uri, meta)),
            false => Looked::Uri(uri),
        })
    }

    async fn register(
        &self,
        name: String,
        uri: PyroUri,
        safe: Option<Truthy>,
        metadata: Option<BTreeSet<String>>,
    ) -> Result<(), NsError> {
        let options = RegisterOptions {
            safe: safe.is_some_and(|flag| flag.0),
            meta: metadata.unwrap_or_default(),
            ttl: None,
        };
        self.names.register_with(name, uri.0, options).await
    }

    async fn set_metadata(
        &self,
        name: String,
        metadata: Option<BTreeSet<String>>,
    ) -> Result<(), NsError> {
        self.names
            .set_meta(name, metadata.unwrap_or_default())
            .await
    }

    async fn remove(
        &self,
        name: Option<String>,
        prefix: Option<String>,
        regex: Option<String>,
    ) -> Result<u64, NsError> {
        match (name, prefix, regex) {
            (Some(name), _, _) if name != PYRO_NAME_SERVER_ID => {
                Ok(u64::from(self.names.remove(name).await?))
            }
            (Some(_), _, _) => Ok(0),
            (None, Some(prefix), _) => {
                let mut removed = 0;
                for name in self.names.list(Some(prefix)).await?.into_keys() {
                    removed += u64::from(self.names.remove(name).await?);
                }
                Ok(removed)
            }
            (None, None, Some(regex)) => self.names.remove_matching(regex).await,
            (None, None, None) => Ok(0),
        }
    }

    async fn list(
        &self,
        prefix: Option<String>,
        regex: Option<String>,
        return_metadata: Option<Truthy>,
    ) -> Result<BTreeMap<String, Listed>, NsError> {
        let own = match (&prefix, &regex) {
            (Some(prefix), _) => PYRO_NAME_SERVER_ID.starts_with(prefix.as_str()),
            (None, Some(regex)) => regex::Regex::new(&format!("^(?:{regex})"))
                .is_ok_and(|regex| regex.is_match(PYRO_NAME_SERVER_ID)),
            (None, None) => true,
        };
        let registrations = match regex {
            Some(regex) if prefix.is_none() => self.names.list_matching(regex).await?,
            _ => self.names.list(prefix).await?,
        };
        Ok(self.listed(
            registrations,
            return_metadata.is_some_and(|flag| flag.0),
            own,
        ))
    }

    async fn yplookup(
        &self,
        meta_all: Option<BTreeSet<String>>,
        meta_any: Option<BTreeSet<String>>,
        return_metadata: Option<Truthy>,
    ) -> Result<BTreeMap<String, Listed>, NsError> {
        let registrations = match (meta_all, meta_any) {
            (Some(all), _) if !all.is_empty() => self.names.lookup_all(all).await?,
            (_, Some(any)) if !any.is_empty() => self.names.lookup_any(any).await?,
            _ => BTreeMap::new(),
        };
        Ok(self.listed(
            registrations,
            return_metadata.is_none_or(|flag| flag.0),
            false,
        ))
    }

    async fn count(&self) -> Result<u64, NsError> {
        Ok(self.names.count().await? + 1)
    }

    async fn ping(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_travel_as_pyro5_writes_them() {
        let uri = PyroUri("rmi:obj_1@127.0.0.1:9090".parse().unwrap());
        let json = serde_json::to_string(&uri).unwrap();
        assert_eq!(
            json,
            r#"{"__class__":"Pyro5.core.URI","state":["PYRO","obj_1",null,"127.0.0.1",9090]}"#
        );
        let back: PyroUri = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0.to_string(), "PYRO:obj_1@127.0.0.1:9090");
        let text: PyroUri = serde_json::from_str(r#""PYRO:obj_2@[::1]:7000""#).unwrap();
        assert!(text.0.is_pyro5() && text.0.endpoint().host() == "::1");
    }
}
