//! What the socket demos share: their address flags, listening, and naming a peer the way the
//! Python programs of the cookbook chapter "Distributed Python" print it.
//!
//! These demos use plain tokio sockets, the layer under rmi, each speaking its Python
//! original's protocol byte for byte, so that `nc` or `socat` can be their client too.

pub mod echo;
pub mod file;
pub mod time;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// Where a server prints what happens: the demos print lines as they are, the tour prefixes
/// them.
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

/// Prints each line as it is.
pub fn print_lines() -> Say {
    Arc::new(|line| println!("{line}"))
}

/// `--host` and `--port`, with the demo's own default port.
#[derive(clap::Args, Clone, Debug)]
pub struct Address<const PORT: u16> {
    /// The address to listen on, or to connect to.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port; for a server, 0 picks a free one.
    #[arg(long, default_value_t = PORT)]
    pub port: u16,
}

impl<const PORT: u16> Address<PORT> {
    /// `HOST:PORT`, with brackets around an IPv6 host.
    pub fn target(&self) -> String {
        rmi::Endpoint::new(&self.host, self.port).to_string()
    }

    /// Listens here and prints `Listening on HOST:PORT` (the port picked, for port 0).
    pub async fn listen(&self) -> std::io::Result<TcpListener> {
        let listener = TcpListener::bind(self.target()).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", self.target()))
        })?;
        println!("Listening on {}", listener.local_addr()?);
        Ok(listener)
    }

    /// Connects here.
    pub async fn connect(&self) -> std::io::Result<TcpStream> {
        TcpStream::connect(self.target()).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot connect to {}: {e}; is the server running?",
                    self.target()
                ),
            )
        })
    }
}

/// A peer as Python prints a socket address: `('127.0.0.1', 54321)`.
pub fn peer(addr: SocketAddr) -> String {
    format!("('{}', {})", addr.ip(), addr.port())
}

/// Waits for the next connection; a failed accept (out of file descriptors, a connection
/// reset before it was taken) is logged and waited out rather than ending the server.
pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peers_print_as_python_tuples() {
        let addr = "127.0.0.1:54321".parse().unwrap();
        assert_eq!(super::peer(addr), "('127.0.0.1', 54321)");
        let addr = "[::1]:80".parse().unwrap();
        assert_eq!(super::peer(addr), "('::1', 80)");
    }
}
