//! The time protocol of the cookbook chapter "Distributed Python": the server writes the time as `time.ctime()` does, then
//! `\r\n`, and closes the connection; the client reads at most 1024 bytes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{accept, peer, Say};

/// Tells every client that connects the time, each in a task of its own; never returns.
pub async fn serve(listener: TcpListener, say: Say) {
    loop {
        let (mut stream, addr) = accept(&listener).await;
        say(format!("Connected with {}", peer(addr)));
        tokio::spawn(async move {
            let line = format!("{}\r\n", ctime());
            if let Err(e) = stream.write_all(line.as_bytes()).await {
                tracing::warn!("{}: {e}", peer(addr));
            }
        });
    }
}

/// The local time as Python's `time.ctime()` writes it: `Mon Nov 23 19:47:34 2026`.
pub fn ctime() -> String {
    chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// Reads the time from a connected server, without the line's end.
pub async fn ask(stream: TcpStream) -> std::io::Result<String> {
    let mut time = Vec::new();
    stream.take(1024).read_to_end(&mut time).await?;
    Ok(String::from_utf8_lossy(&time).trim_end().to_owned())
}
