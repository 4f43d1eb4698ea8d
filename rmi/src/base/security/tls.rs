//! TLS (rustls): a daemon's certificate and key, the CA a client checks it against, and, for
//! mutual TLS, the client's certificate and the CA the daemon checks that against.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;
use tokio::net::TcpStream;

use crate::uri::Endpoint;
use crate::{Error, ErrorKind};

/// The environment variables that set TLS up by default: a daemon's certificate chain and
/// key (PEM files), the CA a client checks daemons against, and the CA a daemon checks
/// client certificates against (mutual TLS, where clients present `RMI_TLS_CERT`/`KEY`).
pub const TLS_ENV: [&str; 4] = [
    "RMI_TLS_CERT",
    "RMI_TLS_KEY",
    "RMI_TLS_CA",
    "RMI_TLS_CLIENT_CA",
];

fn tls_error(what: impl std::fmt::Display, reason: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Tls {
        what: what.to_string(),
        reason: reason.to_string(),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let what = format!("the certificate file {}", path.display());
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(&what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&what, e))?;
    if certificates.is_empty() {
        return Err(tls_error(what, "it holds no PEM certificate"));
    }
    Ok(certificates)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| tls_error(format!("the key file {}", path.display()), e))
}

fn roots(ca: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca)? {
        roots
            .add(certificate)
            .map_err(|e| tls_error(format!("the CA file {}", ca.display()), e))?;
    }
    Ok(roots)
}

/// A daemon's side of TLS.
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// let tls = rmi::ServerTls::from_pem_files("server.pem", "server.key")?;
/// let daemon = rmi::Daemon::builder().tls(tls).bind("0.0.0.0:7000").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls(pub(crate) tokio_rustls::TlsAcceptor);

impl ServerTls {
    /// Presents the certificate chain in `certificate` (PEM) with the key in `key` (PEM).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] if a file cannot be read, holds no PEM certificate or key, or the key
    /// does not fit the certificate.
    pub fn from_pem_files(
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        ServerTls::build(certificate.as_ref(), key.as_ref(), None)
    }

    /// As [`from_pem_files`](ServerTls::from_pem_files), and serves only clients whose
    /// certificate the CA in `client_ca` signed (mutual TLS).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] as for `from_pem_files`, and if `client_ca` cannot be read or holds no
    /// usable CA certificate.
    pub fn with_client_ca(
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        ServerTls::build(certificate.as_ref(), key.as_ref(), Some(client_ca.as_ref()))
    }

    fn build(certificate: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, Error> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("the TLS versions", e))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(ca)?),
                    provider(),
                )
                .build()
                .map_err(|e| tls_error(format!("the client CA file {}", ca.display()), e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certificates(certificate)?, private_key(key)?)
            .map_err(|e| {
                tls_error(
                    format!("the certificate {} with its key", certificate.display()),
                    e,
                )
            })?;
        Ok(ServerTls(Arc::new(config).into()))
    }

    /// From `RMI_TLS_CERT` and `RMI_TLS_KEY` (and `RMI_TLS_CLIENT_CA`), if both are set.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] if only some of the variables are set (`RMI_TLS_CERT` without
    /// `RMI_TLS_KEY`, say), or if the files they name cannot be used.
    pub fn from_env() -> Result<Option<Self>, Error> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        match (
            var("RMI_TLS_CERT"),
            var("RMI_TLS_KEY"),
            var("RMI_TLS_CLIENT_CA"),
        ) {
            (Some(certificate), Some(key), None) => {
                ServerTls::from_pem_files(certificate, key).map(Some)
            }
            (Some(certificate), Some(key), Some(ca)) => {
                ServerTls::with_client_ca(certificate, key, ca).map(Some)
            }
            (None, None, None) => Ok(None),
            // Half a setting must not quietly mean plain TCP.
            _ => Err(tls_error(
                "the environment",
                "RMI_TLS_CERT and RMI_TLS_KEY go together, and RMI_TLS_CLIENT_CA needs both",
            )),
        }
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

/// A client's side of TLS: the CA that signed the daemons' certificates, and, for mutual
/// TLS, the client's own certificate.
///
/// ```no_run
/// # async fn run() -> Result<(), rmi::Error> {
/// # #[rmi::expose] pub trait Ping { async fn ping(&self); }
/// let tls = rmi::ClientTls::from_ca_file("ca.pem")?;
/// let pinger: PingProxy = rmi::ClientConfig::new().tls(tls).connect("rmis:pinger@server.example:7000").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientTls(tokio_rustls::TlsConnector);

impl ClientTls {
    /// Trusts daemons whose certificate the CA in `ca` (PEM) signed, for their host name or
    /// address.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] if `ca` cannot be read or holds no usable PEM certificate.
    pub fn from_ca_file(ca: impl AsRef<Path>) -> Result<Self, Error> {
        ClientTls::build(ca.as_ref(), None)
    }

    /// As [`from_ca_file`](ClientTls::from_ca_file), presenting the certificate in
    /// `certificate` with its key (for daemons that require client certificates).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] if a file cannot be read or holds no usable PEM certificate or key, or
    /// the key does not fit the certificate.
    pub fn with_identity(
        ca: impl AsRef<Path>,
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        ClientTls::build(ca.as_ref(), Some((certificate.as_ref(), key.as_ref())))
    }

    fn build(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, Error> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("the TLS versions", e))?
            .with_root_certificates(roots(ca)?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((certificate, key)) => builder
                .with_client_auth_cert(certificates(certificate)?, private_key(key)?)
                .map_err(|e| {
                    tls_error(
                        format!("the client certificate {}", certificate.display()),
                        e,
                    )
                })?,
        };
        Ok(ClientTls(Arc::new(config).into()))
    }

    /// From `RMI_TLS_CA` (and `RMI_TLS_CERT` with `RMI_TLS_KEY`, for mutual TLS), if set.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tls`] if `RMI_TLS_CA` is set and the files named cannot be used.
    pub fn from_env() -> Result<Option<Self>, Error> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        match (var("RMI_TLS_CA"), var("RMI_TLS_CERT"), var("RMI_TLS_KEY")) {
            (Some(ca), Some(certificate), Some(key)) => {
                ClientTls::with_identity(ca, certificate, key).map(Some)
            }
            (Some(ca), _, _) => ClientTls::from_ca_file(ca).map(Some),
            _ => Ok(None),
        }
    }

    /// Runs the TLS handshake with the daemon at `endpoint`, checking its certificate.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        endpoint: &Endpoint,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
        let name = ServerName::try_from(endpoint.host().to_owned()).map_err(|e| {
            Error::new(ErrorKind::Connect {
                endpoint: endpoint.to_string(),
                reason: format!(
                    "'{}' cannot be checked against a certificate: {e}",
                    endpoint.host()
                ),
                cause: crate::error::cause(e),
            })
        })?;
        self.0
            .connect(name, stream)
            .await
            .map_err(|e| handshake_failed(&e, endpoint))
    }
}

/// The error for a client's TLS handshake that failed with `e`: a daemon that does not speak
/// TLS is a connection error, with the URI to use; a certificate refused, an authentication one.
fn handshake_failed(e: &std::io::Error, endpoint: &Endpoint) -> Error {
    let plain = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => true,
        _ => e.kind() == std::io::ErrorKind::UnexpectedEof,
    };
    if plain {
        return Error::new(ErrorKind::Connect {
            endpoint: endpoint.to_string(),
            reason: format!(
                "the TLS handshake failed ({e}): the daemon does not seem to speak TLS; give the client its rmi: URI (a client speaks TLS to rmis: URIs, and to a bare address, such as RMI_NS_HOST's, only when it has RMI_TLS_CA)"
            ),
            cause: None,
        });
    }
    Error::new(ErrorKind::Authentication {
        endpoint: endpoint.to_string(),
        reason: format!("the TLS handshake failed: {e}"),
    })
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}
