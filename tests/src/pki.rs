//! Certificates made on the fly for the TLS tests (rcgen): a CA and what it signs.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, and certificates it signs, written as PEM files in a directory of their own.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
    /// Removes the directory when the `Pki` goes.
    _removed_on_drop: crate::TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    /// A fresh CA, its certificate in `ca.pem` of a new directory.
    pub fn new(name: &str) -> Pki {
        let removed_on_drop = crate::temp_dir(&format!("tls-{name}"));
        let dir = removed_on_drop.path().to_path_buf();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Named apart from what it signs: OpenSSL (Python's ssl) takes a certificate whose
        // issuer is its own subject, rcgen's default name on both, for a self-signed one.
        params
            .distinguished_name
            .push(DnType::CommonName, format!("rmi test CA {name}"));
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            _removed_on_drop: removed_on_drop,
            ca,
            ca_key,
        }
    }

    /// The CA certificate's file.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `names` signed by the CA: (certificate file, key file).
    pub fn issue(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        let certificate = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, certificate.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}
