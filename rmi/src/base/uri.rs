//! Object addresses: `rmi:OBJID@HOST:PORT` (`rmis:` over TLS), `rminame:NAME[@NSHOST:NSPORT]`
//! and `rmimeta:TAG,TAG[@NSHOST:NSPORT]` (tags come back sorted).
//!
//! A [`Uri`] parses from and displays as the same text, so a URI printed by a server can be
//! pasted into a client. Parsing rejects anything it cannot round-trip, with an error that
//! quotes the input and says what is wrong.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, ErrorKind};

/// The scheme of a direct object address.
pub const OBJECT_SCHEME: &str = "rmi:";
/// The scheme of a direct object address at a daemon that speaks TLS.
pub const TLS_OBJECT_SCHEME: &str = "rmis:";
/// The scheme of an object of a Pyro5 daemon (Python's, or an rmi daemon's as Pyro5 clients
/// see it): what a name registered from Python points at.
pub const PYRO_OBJECT_SCHEME: &str = "PYRO:";
/// Pyro5's scheme of a name resolved through the name server: read as `rminame:`, so that a
/// `PYRONAME:` URI from Python's side resolves in Rust too.
pub const PYRO_NAME_SCHEME: &str = "PYRONAME:";
/// The scheme of an address resolved through the name server.
pub const NAME_SCHEME: &str = "rminame:";
/// The scheme of an address resolved by metadata tags through the name server.
pub const META_SCHEME: &str = "rmimeta:";

/// Where an object lives: directly at a daemon, or under a name in the name server.
///
/// ```
/// use rmi::Uri;
/// let uri: Uri = "rmi:obj_0123456789abcdef0123456789abcdef@127.0.0.1:9000".parse()?;
/// assert_eq!(uri.to_string(), "rmi:obj_0123456789abcdef0123456789abcdef@127.0.0.1:9000");
/// let named: Uri = "rminame:server@[::1]:9090".parse()?;
/// assert!(matches!(named, Uri::Name(_)));
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `rmi:OBJID@HOST:PORT`: an object hosted by the daemon at `HOST:PORT`.
    Object(ObjectUri),
    /// `rminame:NAME` or `rminame:NAME@NSHOST:NSPORT`: looked up in a name server.
    Name(NameUri),
    /// `rmimeta:TAG1,TAG2` or `rmimeta:TAG1,TAG2@NSHOST:NSPORT`: any one object carrying all
    /// the tags, picked at random by the name server's client.
    Meta(MetaUri),
}

/// Objects found by metadata, `rmimeta:TAG1,TAG2[@NSHOST:NSPORT]`.
///
/// ```
/// let uri: rmi::MetaUri = "rmimeta:tasks.worker,fast".parse()?;
/// assert_eq!(uri.tags().len(), 2);
/// assert_eq!(uri.to_string(), "rmimeta:fast,tasks.worker");
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaUri {
    tags: std::collections::BTreeSet<String>,
    name_server: Option<Endpoint>,
}

impl MetaUri {
    /// The tags every matching object carries.
    pub fn tags(&self) -> &std::collections::BTreeSet<String> {
        &self.tags
    }

    /// The name server given in the URI, if any.
    pub fn name_server(&self) -> Option<&Endpoint> {
        self.name_server.as_ref()
    }
}

impl fmt::Display for MetaUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        write!(f, "{META_SCHEME}{}", tags.join(","))?;
        match &self.name_server {
            Some(ns) => write!(f, "@{ns}"),
            None => Ok(()),
        }
    }
}

impl FromStr for MetaUri {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text.parse::<Uri>()? {
            Uri::Meta(meta) => Ok(meta),
            _ => Err(invalid(text, "expected a rmimeta: URI")),
        }
    }
}

/// A direct object address, `rmi:OBJID@HOST:PORT`.
///
/// ```
/// use rmi::{ObjectUri, Endpoint};
/// let uri = ObjectUri::new("greeter", Endpoint::new("::1", 7000))?;
/// assert_eq!(uri.to_string(), "rmi:greeter@[::1]:7000");
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectUri {
    id: String,
    endpoint: Endpoint,
    /// The daemon speaks TLS (`rmis:`).
    tls: bool,
    /// The object is a Pyro5 one (`PYRO:`), which rmi proxies do not call.
    pyro5: bool,
}

/// A name to resolve, `rminame:NAME[@NSHOST:NSPORT]`.
///
/// ```
/// let uri: rmi::NameUri = "rminame:server".parse()?;
/// assert_eq!(uri.name(), "server");
/// assert!(uri.name_server().is_none());
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameUri {
    name: String,
    name_server: Option<Endpoint>,
}

/// A host and a port. IPv6 hosts display in brackets: `[::1]:9090`.
///
/// ```
/// let e: rmi::Endpoint = "[::1]:9090".parse()?;
/// assert_eq!(e.host(), "::1");
/// assert_eq!(e.port(), 9090);
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// An endpoint from a host (name, IPv4 or IPv6 address, without brackets) and a port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` in the form `tokio::net::TcpStream::connect` accepts.
    pub(crate) fn connect_target(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    fn parse_in(text: &str, whole: &str) -> Result<Self, Error> {
        let bad = |reason: &str| invalid(whole, reason);
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 host opened with '[' has no closing ']'"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected ':PORT' after the bracketed IPv6 host"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("'{host}' in brackets is not an IPv6 address")));
            }
            (host, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT after '@'"))?;
            if host.contains(':') {
                return Err(bad(
                    "an IPv6 host must be written in brackets, as [::1]:PORT",
                ));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')))
        {
            return Err(bad(&format!("the host contains the character {c:?}")));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(&format!("'{port}' is not a port number (1-65535)")))?;
        Ok(Endpoint::new(host, port))
    }
}

impl Endpoint {
    /// Parses `HOST` or `HOST:PORT` (an IPv6 host in brackets when a port follows; a bare
    /// IPv6 address is a host), with `default_port` when no port is given.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUri`], quoting `text`, if the host is empty or holds a character a
    /// host may not, or the port is not a number from 1 to 65535.
    ///
    /// ```
    /// use rmi::Endpoint;
    /// assert_eq!(Endpoint::parse_or_port("10.0.0.1", 9090)?, Endpoint::new("10.0.0.1", 9090));
    /// assert_eq!(Endpoint::parse_or_port("ns1:7000", 9090)?, Endpoint::new("ns1", 7000));
    /// assert_eq!(Endpoint::parse_or_port("[::1]", 9090)?, Endpoint::new("::1", 9090));
    /// assert_eq!(Endpoint::parse_or_port("fe80::1", 9090)?, Endpoint::new("fe80::1", 9090));
    /// # Ok::<(), rmi::Error>(())
    /// ```
    pub fn parse_or_port(text: &str, default_port: u16) -> Result<Endpoint, Error> {
        let text = text.trim();
        let bracketed_without_port = text.starts_with('[') && text.ends_with(']');
        let bare_ipv6 = !text.starts_with('[') && text.matches(':').count() > 1;
        let host_only = bracketed_without_port || bare_ipv6 || !text.contains(':');
        if !host_only {
            return text.parse();
        }
        let host = crate::net::unbracket(text);
        // Checked as a whole, so a bad host is refused with the same words as in a URI.
        let checked = Endpoint::new(host, default_port.max(1)).to_string();
        let parsed = Endpoint::parse_in(&checked, text)?;
        Ok(Endpoint::new(parsed.host, default_port))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Endpoint::parse_in(s, s)
    }
}

impl From<std::net::SocketAddr> for Endpoint {
    fn from(addr: std::net::SocketAddr) -> Self {
        Endpoint::new(addr.ip().to_string(), addr.port())
    }
}

impl ObjectUri {
    /// An object address; fails if `id` is not a valid object id (see [`check_object_id`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidObjectId`] if [`check_object_id`] refuses `id`.
    pub fn new(id: impl Into<String>, endpoint: Endpoint) -> Result<Self, Error> {
        let id = id.into();
        check_object_id(&id).map_err(|reason| {
            Error::new(ErrorKind::InvalidObjectId {
                id: id.clone(),
                reason,
            })
        })?;
        Ok(ObjectUri {
            id,
            endpoint,
            tls: false,
            pyro5: false,
        })
    }

    /// This address, at a daemon that speaks TLS or not.
    ///
    /// ```
    /// let uri = rmi::ObjectUri::new("pinger", "127.0.0.1:7000".parse()?)?.with_tls(true);
    /// assert_eq!(uri.to_string(), "rmis:pinger@127.0.0.1:7000");
    /// assert_eq!(uri.to_string().parse::<rmi::ObjectUri>()?, uri);
    /// # Ok::<(), rmi::Error>(())
    /// ```
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Whether the daemon speaks TLS (the URI is `rmis:`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// This address as a Pyro5 object (`PYRO:`) or an rmi one: an rmi daemon serves each of
    /// its objects under both (its Pyro5 clients use the first).
    ///
    /// ```
    /// let uri: rmi::ObjectUri = "rmi:obj_1@127.0.0.1:7000".parse()?;
    /// assert_eq!(uri.clone().with_pyro5(true).to_string(), "PYRO:obj_1@127.0.0.1:7000");
    /// assert!("PYRO:obj_1@127.0.0.1:7000".parse::<rmi::ObjectUri>()?.is_pyro5());
    /// # Ok::<(), rmi::Error>(())
    /// ```
    pub fn with_pyro5(mut self, pyro5: bool) -> Self {
        self.pyro5 = pyro5;
        if pyro5 {
            self.tls = false;
        }
        self
    }

    /// Whether the URI is `PYRO:`: a Pyro5 object, which Python registered.
    pub fn is_pyro5(&self) -> bool {
        self.pyro5
    }

    /// The object id, for example `obj_0123…` or `rmi.nameserver`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The daemon's address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl NameUri {
    /// A name to look up, in the default name server or in the one at `name_server`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUri`] if [`check_name`] refuses `name`.
    pub fn new(name: impl Into<String>, name_server: Option<Endpoint>) -> Result<Self, Error> {
        let name = name.into();
        let text = format!("{NAME_SCHEME}{name}");
        check_name(&name).map_err(|reason| invalid(&text, &reason))?;
        Ok(NameUri { name, name_server })
    }

    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name server given in the URI, if any.
    pub fn name_server(&self) -> Option<&Endpoint> {
        self.name_server.as_ref()
    }
}

/// Checks an object id: 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
///
/// A message saying what is wrong if `id` is empty, longer than 128 bytes, or holds another
/// character.
///
/// ```
/// assert!(rmi::check_object_id("obj_00ff").is_ok());
/// assert!(rmi::check_object_id("no spaces").is_err());
/// ```
pub fn check_object_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the object id is empty".into());
    }
    if id.len() > 128 {
        return Err(format!(
            "the object id is {} bytes long; at most 128",
            id.len()
        ));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "the object id contains {c:?}; use only letters, digits, '.', '_' and '-'"
        )),
        None => Ok(()),
    }
}

/// Checks a metadata tag: 1 to 256 bytes, no white space, control characters or commas.
///
/// # Errors
///
/// A message saying what is wrong if `tag` is empty, longer than 256 bytes, or holds white
/// space, a control character or a comma.
///
/// ```
/// assert!(rmi::check_tag("tasks.worker").is_ok());
/// assert!(rmi::check_tag("a,b").is_err());
/// ```
pub fn check_tag(tag: &str) -> Result<(), String> {
    check_word("tag", tag, ',')
}

/// Checks a name for the name server: non-empty, at most 256 bytes, no white space, control
/// characters or `@`.
///
/// # Errors
///
/// A message saying what is wrong if `name` is empty, longer than 256 bytes, or holds white
/// space, a control character or `@`.
///
/// ```
/// assert!(rmi::check_name("example.chainTopology.1").is_ok());
/// assert!(rmi::check_name("two words").is_err());
/// ```
pub fn check_name(name: &str) -> Result<(), String> {
    check_word("name", name, '@')
}

/// Checks `text`, a `what` (`name`, `tag`): 1 to 256 bytes, no white space, control
/// characters or `forbidden` (the character that separates it from what follows).
fn check_word(what: &str, text: &str, forbidden: char) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if text.len() > 256 {
        return Err(format!(
            "the {what} is {} bytes long; at most 256",
            text.len()
        ));
    }
    match text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == forbidden)
    {
        Some(c) => Err(format!(
            "the {what} contains {c:?}; {what}s may not hold white space, control characters or '{forbidden}'"
        )),
        None => Ok(()),
    }
}

fn invalid(uri: &str, reason: &str) -> Error {
    Error::new(ErrorKind::InvalidUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    })
}

impl FromStr for Uri {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        // Pyro5 reads its scheme in any case.
        let pyro5 = text
            .get(..PYRO_OBJECT_SCHEME.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(PYRO_OBJECT_SCHEME))
            .map(|scheme| &text[scheme.len()..]);
        let object = match (
            text.strip_prefix(OBJECT_SCHEME),
            text.strip_prefix(TLS_OBJECT_SCHEME),
            pyro5,
        ) {
            (Some(rest), _, _) => Some((rest, false, false)),
            (_, Some(rest), _) => Some((rest, true, false)),
            (_, _, Some(rest)) => Some((rest, false, true)),
            _ => None,
        };
        if let Some((rest, tls, pyro5)) = object {
            let (id, endpoint) = rest
                .split_once('@')
                .ok_or_else(|| invalid(text, "expected rmi:OBJID@HOST:PORT; there is no '@'"))?;
            check_object_id(id).map_err(|reason| invalid(text, &reason))?;
            let endpoint = Endpoint::parse_in(endpoint, text)?;
            Ok(Uri::Object(ObjectUri {
                id: id.to_owned(),
                endpoint,
                tls,
                pyro5,
            }))
        } else if let Some(rest) = text.strip_prefix(NAME_SCHEME).or_else(|| {
            text.get(..PYRO_NAME_SCHEME.len())
                .filter(|scheme| scheme.eq_ignore_ascii_case(PYRO_NAME_SCHEME))
                .map(|scheme| &text[scheme.len()..])
        }) {
            let (name, name_server) = match rest.split_once('@') {
                Some((name, ns)) => (name, Some(Endpoint::parse_in(ns, text)?)),
                None => (rest, None),
            };
            check_name(name).map_err(|reason| invalid(text, &reason))?;
            Ok(Uri::Name(NameUri {
                name: name.to_owned(),
                name_server,
            }))
        } else if let Some(rest) = text.strip_prefix(META_SCHEME) {
            let (tags, name_server) = match rest.split_once('@') {
                Some((tags, ns)) => (tags, Some(Endpoint::parse_in(ns, text)?)),
                None => (rest, None),
            };
            let tags = tags
                .split(',')
                .map(|tag| {
                    check_tag(tag)
                        .map(|()| tag.to_owned())
                        .map_err(|reason| invalid(text, &reason))
                })
                .collect::<Result<_, _>>()?;
            Ok(Uri::Meta(MetaUri { tags, name_server }))
        } else {
            Err(invalid(
                text,
                "a URI starts with 'rmi:' (rmi:OBJID@HOST:PORT; 'rmis:' over TLS; 'PYRO:' for a Pyro5 object), 'rminame:' (rminame:NAME) or 'rmimeta:' (rmimeta:TAG,TAG)",
            ))
        }
    }
}

impl FromStr for NameUri {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text.parse::<Uri>()? {
            Uri::Name(name) => Ok(name),
            _ => Err(invalid(text, "expected a rminame: URI")),
        }
    }
}

impl FromStr for ObjectUri {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text.parse::<Uri>()? {
            Uri::Object(object) => Ok(object),
            _ => Err(invalid(text, "expected a rmi: URI")),
        }
    }
}

impl fmt::Display for ObjectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.pyro5, self.tls) {
            (true, _) => PYRO_OBJECT_SCHEME,
            (false, true) => TLS_OBJECT_SCHEME,
            (false, false) => OBJECT_SCHEME,
        };
        write!(f, "{scheme}{}@{}", self.id, self.endpoint)
    }
}

impl fmt::Display for NameUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME_SCHEME}{}", self.name)?;
        match &self.name_server {
            Some(ns) => write!(f, "@{ns}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Object(o) => o.fmt(f),
            Uri::Name(n) => n.fmt(f),
            Uri::Meta(m) => m.fmt(f),
        }
    }
}

impl From<ObjectUri> for Uri {
    fn from(uri: ObjectUri) -> Self {
        Uri::Object(uri)
    }
}

impl From<NameUri> for Uri {
    fn from(uri: NameUri) -> Self {
        Uri::Name(uri)
    }
}

/// Anything a proxy can be connected to: a [`Uri`], an [`ObjectUri`], or URI text.
///
/// ```
/// use rmi::IntoUri;
/// let uri = "rminame:server".into_uri()?;
/// assert_eq!(uri.to_string(), "rminame:server");
/// # Ok::<(), rmi::Error>(())
/// ```
pub trait IntoUri {
    /// Parses or converts into a [`Uri`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUri`] if text does not parse as a URI; a value that is already a URI
    /// converts without error.
    fn into_uri(self) -> Result<Uri, Error>;
}

impl IntoUri for Uri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(self)
    }
}
impl IntoUri for &Uri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(self.clone())
    }
}
impl IntoUri for ObjectUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Object(self))
    }
}
impl IntoUri for &ObjectUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Object(self.clone()))
    }
}
impl IntoUri for NameUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Name(self))
    }
}
impl IntoUri for &NameUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Name(self.clone()))
    }
}
impl IntoUri for MetaUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Meta(self))
    }
}
impl IntoUri for &MetaUri {
    fn into_uri(self) -> Result<Uri, Error> {
        Ok(Uri::Meta(self.clone()))
    }
}
impl IntoUri for &str {
    fn into_uri(self) -> Result<Uri, Error> {
        self.parse()
    }
}
impl IntoUri for String {
    fn into_uri(self) -> Result<Uri, Error> {
        self.parse()
    }
}
impl IntoUri for &String {
    fn into_uri(self) -> Result<Uri, Error> {
        self.parse()
    }
}

macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_text!(Uri, ObjectUri, NameUri, MetaUri, Endpoint);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "rmi:obj_0123456789abcdef0123456789abcdef@127.0.0.1:9000",
            "rmi:rmi.nameserver@localhost:9090",
            "rmi:x@[::1]:1",
            "rminame:server",
            "rminame:example.chainTopology.1@10.0.0.1:9090",
            "rminame:名前@[::1]:9090",
            "rmimeta:tasks.worker",
            "rmimeta:a,b@127.0.0.1:9090",
        ] {
            let uri: Uri = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(uri.to_string(), text);
            let json = serde_json::to_string(&uri).unwrap();
            assert_eq!(serde_json::from_str::<Uri>(&json).unwrap(), uri);
        }
    }

    #[test]
    fn pyro5_uris_read_as_what_they_name() {
        let object: Uri = "PYRO:obj_1@127.0.0.1:5555".parse().unwrap();
        assert!(matches!(&object, Uri::Object(o) if o.is_pyro5() && o.id() == "obj_1"));
        assert_eq!(object.to_string(), "PYRO:obj_1@127.0.0.1:5555");
        let name: Uri = "PYRONAME:server@127.0.0.1:9090".parse().unwrap();
        assert_eq!(name.to_string(), "rminame:server@127.0.0.1:9090");
    }

    #[test]
    fn rejects_bad_input_and_quotes_it() {
        for (text, says) in [
            ("", "starts with"),
            ("http://x@h:1", "starts with"),
            ("rmi:x", "no '@'"),
            ("rmi:@h:1", "empty"),
            ("rmi:a b@h:1", "' '"),
            ("rmi:x@h", "HOST:PORT"),
            ("rmi:x@:1", "host is empty"),
            ("rmi:x@h:0", "not a port"),
            ("rmi:x@h:65536", "not a port"),
            ("rmi:x@h:port", "not a port"),
            ("rmi:x@::1:80", "brackets"),
            ("rmi:x@[::1:80", "closing"),
            ("rmi:x@[nope]:80", "not an IPv6"),
            ("rmi:x@h/x:1", "'/'"),
            ("rminame:", "empty"),
            ("rminame:a\tb", "white space"),
            ("rminame:a@b@c:1", "'@'"),
            ("rmimeta:", "empty"),
            ("rmimeta:a,,b", "empty"),
            ("rmimeta:a b", "white space"),
        ] {
            let err = text.parse::<Uri>().expect_err(text).to_string();
            assert!(
                err.contains(&format!("'{text}'")),
                "{err} does not quote {text}"
            );
            assert!(err.contains(says), "{err} does not say {says}");
        }
    }

    #[test]
    fn long_names_and_ids_are_refused() {
        assert!(check_name(&"n".repeat(256)).is_ok());
        assert!(check_name(&"n".repeat(257)).is_err());
        assert!(check_object_id(&"o".repeat(129)).is_err());
    }
}
