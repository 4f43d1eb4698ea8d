//! The socket file-transfer recipe of the cookbook chapter "Distributed Python", done right: the client says `HelloServer!`; the
//! server streams its file in chunks and then closes, whatever other clients do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{accept, peer, Say};

/// What a client says to ask for the file.
pub const GREETING: &str = "HelloServer!";

/// How long a client may take to say it.
const GREETING_WAIT: Duration = Duration::from_secs(10);

/// Sends `file` to every client that asks, each in a task of its own, `chunk_bytes` at a
/// time; never returns.
pub async fn serve(listener: TcpListener, file: PathBuf, chunk_bytes: usize, say: Say) {
    let file: Arc<Path> = file.into();
    loop {
        let (stream, addr) = accept(&listener).await;
        say(format!("Got connection from {}", peer(addr)));
        let (file, say) = (file.clone(), say.clone());
        tokio::spawn(async move {
            match send_file(stream, addr, &file, chunk_bytes.max(1), &say).await {
                Ok(sent) => say(format!("Done sending {sent} bytes to {}", peer(addr))),
                Err(e) => say(format!("{} went away: {e}", peer(addr))),
            }
        });
    }
}

/// Waits for the greeting, then sends the file; returns how many bytes were sent.
async fn send_file(
    mut stream: TcpStream,
    addr: SocketAddr,
    file: &Path,
    chunk_bytes: usize,
    say: &Say,
) -> std::io::Result<u64> {
    tokio::time::timeout(GREETING_WAIT, read_greeting(&mut stream))
        .await
        .map_err(|_| {
            std::io::Error::other(format!("no {GREETING:?} within {GREETING_WAIT:?}"))
        })??;
    say(format!("{} said {GREETING}", peer(addr)));
    let mut file = tokio::fs::File::open(file).await?;
    let mut chunk = vec![0u8; chunk_bytes];
    let mut sent = 0u64;
    loop {
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        stream.write_all(&chunk[..read]).await?;
        sent += read as u64;
    }
    stream.shutdown().await?;
    Ok(sent)
}

/// Reads until the client has said the greeting; anything else is an error.
async fn read_greeting(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<()> {
    let expected = GREETING.as_bytes();
    let mut heard = Vec::with_capacity(expected.len());
    let mut buffer = [0u8; 64];
    while heard.len() < expected.len() {
        let want = expected.len() - heard.len();
        let read = stream.read(&mut buffer[..want]).await?;
        if read == 0 {
            let message = format!("the client left without saying {GREETING:?}");
            return Err(std::io::Error::other(message));
        }
        heard.extend_from_slice(&buffer[..read]);
        if !expected.starts_with(&heard) {
            let message = format!(
                "the client said {:?}, not {GREETING:?}",
                String::from_utf8_lossy(&heard)
            );
            return Err(std::io::Error::other(message));
        }
    }
    Ok(())
}

/// Asks a connected server for its file and copies it into `out`; returns its size.
pub async fn download(
    mut stream: TcpStream,
    out: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<u64> {
    stream.write_all(GREETING.as_bytes()).await?;
    let received = tokio::io::copy(&mut stream, out).await?;
    out.flush().await?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_greeting_must_be_exact() {
        let mut said: &[u8] = b"HelloServer!";
        assert!(read_greeting(&mut said).await.is_ok());
        let mut said: &[u8] = b"Hello there";
        let refused = read_greeting(&mut said).await.unwrap_err();
        assert!(
            refused.to_string().contains("not \"HelloServer!\""),
            "{refused}"
        );
        let mut said: &[u8] = b"Hello";
        assert!(read_greeting(&mut said).await.is_err());
    }
}
