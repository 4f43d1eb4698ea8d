//! The echo protocol of the tutorial "how many clients at once?" (Python's `socketserver`): every byte a client sends comes back; the server serves
//! every client at the same time, each connection in a task of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::{accept, peer, Say};

/// Echoes what each client sends, logging each connection and its end; never returns.
pub async fn serve(listener: TcpListener, say: Say) {
    let open = Arc::new(AtomicU64::new(0));
    for number in 1u64.. {
        let (mut stream, addr) = accept(&listener).await;
        let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
        say(format!(
            "Connection {number} from {}: served by its own task ({now_open} open)",
            peer(addr)
        ));
        let (open, say) = (open.clone(), say.clone());
        tokio::spawn(async move {
            let (mut from, mut to) = stream.split();
            let outcome = tokio::io::copy(&mut from, &mut to).await;
            let left = open.fetch_sub(1, Ordering::SeqCst) - 1;
            let who = peer(addr);
            say(match outcome {
                Ok(bytes) => format!(
                    "Connection {number} from {who} ended after {bytes} bytes ({left} open)"
                ),
                Err(e) => format!("Connection {number} from {who} broke: {e} ({left} open)"),
            });
        });
    }
}

/// The client side: one line out, its echo back.
pub struct EchoClient {
    echoes: Lines<BufReader<OwnedReadHalf>>,
    to_server: OwnedWriteHalf,
}

impl EchoClient {
    /// A client on a connected stream.
    pub fn new(stream: TcpStream) -> Self {
        let (from_server, to_server) = stream.into_split();
        EchoClient {
            echoes: BufReader::new(from_server).lines(),
            to_server,
        }
    }

    /// Sends `line` and returns its echo.
    pub async fn echo(&mut self, line: &str) -> std::io::Result<String> {
        self.to_server
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        self.echoes
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::other("the server closed the connection"))
    }
}
