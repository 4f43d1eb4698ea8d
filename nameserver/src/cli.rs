//! What the command lines `rmi-ns`, `rmi-nsc` and `rmi` share: the `--key-file` flag.

use std::path::PathBuf;

/// `--key-file` (or `RMI_KEY_FILE`): a file holding a key, which a server asks its clients to
/// prove and a client proves.
///
/// Each binary flattens it into its arguments and says in its own words whose key it is:
/// `#[command(mut_arg("key_file", |arg| arg.help("…")))]` on its `Parser`.
#[derive(clap::Args, Debug, Default)]
pub struct KeyFile {
    /// The file, if one was given.
    #[arg(long, env = rmi::KEY_FILE_ENV, global = true)]
    pub key_file: Option<PathBuf>,
}

impl KeyFile {
    /// The key in the file, if one was given: what a server asks its clients to prove.
    ///
    /// # Errors
    ///
    /// [`rmi::ErrorKind::BadKey`] if the file cannot be read or is empty.
    pub fn key(&self) -> Result<Option<rmi::Key>, rmi::Error> {
        self.key_file
            .as_deref()
            .map(rmi::Key::from_file)
            .transpose()
    }

    /// The process's client settings (`RMI_TLS_*`, `RMI_CONNECT_TIMEOUT`) with this key, for a
    /// client program.
    ///
    /// # Errors
    ///
    /// As [`rmi::ClientConfig::from_env`] (bad `RMI_*` settings), and [`rmi::ErrorKind::BadKey`]
    /// if the key file cannot be read or is empty.
    pub fn client_config(&self) -> Result<rmi::ClientConfig, rmi::Error> {
        rmi::ClientConfig::from_env()?.key_file(self.key_file.as_deref())
    }
}
