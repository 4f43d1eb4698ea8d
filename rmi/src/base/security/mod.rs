//! Who may talk to whom: a shared [`Key`], proved on each connection before any call by an
//! HMAC-SHA256 challenge–response in both directions (see [`handshake`]). The key itself never
//! crosses the wire.

pub(crate) mod handshake;
pub(crate) mod tls;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::{Error, ErrorKind};

/// The environment variable naming the key file that daemons and proxies use by default.
pub const KEY_FILE_ENV: &str = "RMI_KEY_FILE";

/// A shared secret: a daemon with a key serves only clients that prove they hold the same
/// key, and proves it holds it in turn.
///
/// ```
/// let key = rmi::Key::new("correct horse battery staple")?;
/// assert_eq!(format!("{key:?}"), "Key(28 bytes)"); // never printed
/// # Ok::<(), rmi::Error>(())
/// ```
#[derive(Clone)]
pub struct Key(Arc<[u8]>);

impl Key {
    /// A key of these bytes; an empty key is refused.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadKey`] if `secret` is empty.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Key, Error> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(Error::new(ErrorKind::BadKey {
                origin: "the key given".into(),
                reason: "it is empty".into(),
            }));
        }
        Ok(Key(secret.into()))
    }

    /// The key in the file at `path`: its bytes, less any line breaks at its end (so that
    /// `echo secret > key` makes a key of `secret`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadKey`] if the file cannot be read, or holds nothing but line breaks.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("rmi-doc-key-{}", std::process::id()));
    /// std::fs::write(&path, "s3cret\n").unwrap();
    /// let key = rmi::Key::from_file(&path)?;
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), rmi::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, Error> {
        let path = path.as_ref();
        let bad = |reason: String| {
            Error::new(ErrorKind::BadKey {
                origin: format!("the key file {}", path.display()),
                reason,
            })
        };
        let mut bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Key::new(bytes).map_err(|_| bad("it is empty".into()))
    }

    /// The key in the file that `RMI_KEY_FILE` names, if it names one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadKey`] if `RMI_KEY_FILE` names a file that cannot be read or is empty.
    pub fn from_env() -> Result<Option<Key>, Error> {
        match std::env::var_os(KEY_FILE_ENV) {
            Some(path) if !path.is_empty() => Key::from_file(path).map(Some),
            _ => Ok(None),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}
