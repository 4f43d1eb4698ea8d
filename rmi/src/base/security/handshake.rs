//! The handshake that opens every connection, before any call.
//!
//! The client speaks first: `RMI` 0x01 ([`CLIENT_OPENING`]), so that a daemon tells an rmi
//! client from a Pyro5 one, which opens with `PYRO` ([`Opening::of`]). A client that need not
//! wait for the hello sends its first request right behind these bytes, in the same write.
//! The daemon then answers with its hello: `RMI` 0x01, a mode byte, and the largest frame it reads (4 bytes,
//! big-endian), so that a client refuses too large a call itself, clearly. Mode 2 (the daemon
//! serves as many connections as it may): the daemon closes. Mode 0 (the daemon has no key):
//! done. Mode 1: 32 random bytes follow (the daemon's challenge); the client answers with 32
//! random bytes of its own and `HMAC-SHA256(key, "rmi client" ‖ daemon's ‖ client's)`; the
//! daemon checks it and answers 0 (refused, then closes) or 1 and
//! `HMAC-SHA256(key, "rmi server" ‖ client's ‖ daemon's)`, which the client checks. Each side
//! thus knows the other holds the key, the key never travels, and fresh challenges on both
//! sides make a recorded exchange useless to replay.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Key;
use crate::uri::Endpoint;
use crate::{Error, ErrorKind};

const MAGIC: [u8; 4] = *b"RMI\x01";

/// What an rmi client sends first, before anything else on a connection.
pub(crate) const CLIENT_OPENING: [u8; 4] = MAGIC;

/// What a connection's first four bytes say its client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// An rmi client: the handshake goes on.
    Rmi,
    /// A Pyro5 client: its first message has begun (`PYRO`, the start of its header).
    Pyro5,
    /// Neither: the bytes, for the log.
    Unknown([u8; 4]),
}

impl Opening {
    /// What `first`, a connection's first four bytes, say.
    pub(crate) fn of(first: [u8; 4]) -> Opening {
        match &first {
            b"PYRO" => Opening::Pyro5,
            _ if first == CLIENT_OPENING => Opening::Rmi,
            _ => Opening::Unknown(first),
        }
    }
}
const OPEN: u8 = 0;
const KEYED: u8 = 1;
const BUSY: u8 = 2;
const REFUSED: u8 = 0;
const ACCEPTED: u8 = 1;
const NONCE: usize = 32;
const PROOF: usize = 32;
const CLIENT_LABEL: &[u8] = b"rmi client";
const SERVER_LABEL: &[u8] = b"rmi server";

/// Why a daemon refused a connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The client left without answering the challenge.
    #[error("it did not answer the key challenge: it has no key, or is not an rmi client")]
    NoAnswer,
    /// The client's answer is not made with the daemon's key.
    #[error("wrong key: its answer to the challenge was not made with this daemon's key")]
    WrongKey,
    /// The connection failed during the handshake.
    #[error("the handshake failed: {0}")]
    Io(#[from] std::io::Error),
}

fn proof(key: &Key, label: &[u8], first: &[u8], second: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac
}

/// The daemon's first words: magic, mode, and its frame limit.
fn hello(mode: u8, max_frame: usize) -> Vec<u8> {
    let mut hello = MAGIC.to_vec();
    hello.push(mode);
    hello.extend_from_slice(&u32::try_from(max_frame).unwrap_or(u32::MAX).to_be_bytes());
    hello
}

/// The hello of a daemon without a key, which asks nothing more of the client.
pub(crate) fn keyless_hello(max_frame: usize) -> Vec<u8> {
    hello(OPEN, max_frame)
}

/// Tells a client the daemon serves as many connections as it may.
pub(crate) async fn refuse_busy<S: AsyncWrite + Unpin>(stream: &mut S) -> std::io::Result<()> {
    stream.write_all(&hello(BUSY, 0)).await?;
    stream.shutdown().await
}

/// The daemon's side, once the client's opening said rmi ([`Opening::of`]): challenges
/// the client when the daemon has a key.
pub(crate) async fn accept<S>(
    stream: &mut S,
    key: Option<&Key>,
    max_frame: usize,
) -> Result<(), Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(key) = key else {
        stream.write_all(&hello(OPEN, max_frame)).await?;
        stream.flush().await?;
        return Ok(());
    };
    let challenge: [u8; NONCE] = rand::random();
    let mut hello = hello(KEYED, max_frame);
    hello.extend_from_slice(&challenge);
    stream.write_all(&hello).await?;
    stream.flush().await?;
    let mut answer = [0u8; NONCE + PROOF];
    if let Err(e) = stream.read_exact(&mut answer).await {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        return Err(match e.kind() {
            UnexpectedEof | ConnectionReset | BrokenPipe => Refusal::NoAnswer,
            _ => Refusal::Io(e),
        });
    }
    let (their_challenge, their_proof) = answer.split_at(NONCE);
    let expected = proof(key, CLIENT_LABEL, &challenge, their_challenge);
    if expected.verify_slice(their_proof).is_err() {
        // Said, so that the client can tell a wrong key from a broken network.
        let _ = stream.write_all(&[REFUSED]).await;
        let _ = stream.flush().await;
        return Err(Refusal::WrongKey);
    }
    let mine = proof(key, SERVER_LABEL, their_challenge, &challenge).finalize();
    let mut accepted = vec![ACCEPTED];
    accepted.extend_from_slice(&mine.into_bytes());
    stream.write_all(&accepted).await?;
    stream.flush().await?;
    Ok(())
}

/// The client's side: reads the daemon's hello, then, if the daemon has a key, answers its
/// challenge and checks its proof. Returns the largest frame the daemon reads.
pub(crate) async fn connect<S>(
    stream: &mut S,
    key: Option<&Key>,
    endpoint: &Endpoint,
) -> Result<usize, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(&CLIENT_OPENING)
        .await
        .map_err(|e| closed_before_hello(endpoint, Some(e)))?;
    let (mode, max_frame) = read_hello(stream, endpoint).await?;
    if let Some(key) = key_for(mode, key, endpoint)? {
        prove_both_ways(stream, key, endpoint).await?;
    }
    Ok(max_frame)
}

/// How long the daemon's hello is.
pub(crate) const HELLO_BYTES: usize = 9;

/// The daemon's hello: its mode byte and its frame limit.
async fn read_hello<S>(stream: &mut S, endpoint: &Endpoint) -> Result<(u8, usize), Error>
where
    S: AsyncRead + Unpin,
{
    let mut head = [0u8; HELLO_BYTES];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| closed_before_hello(endpoint, Some(e)))?;
    parse_hello(&head, endpoint)
}

/// What a client without a key makes of the daemon's hello, read after it sent its first
/// request: the daemon's frame limit, or why the two cannot talk.
pub(crate) fn open_hello(head: &[u8; HELLO_BYTES], endpoint: &Endpoint) -> Result<usize, Error> {
    let (mode, max_frame) = parse_hello(head, endpoint)?;
    key_for(mode, None, endpoint)?;
    Ok(max_frame)
}

/// The error for a connection closed before the daemon's hello.
pub(crate) fn closed_before_hello(endpoint: &Endpoint, error: Option<std::io::Error>) -> Error {
    let how = error
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    Error::new(ErrorKind::Connect {
        endpoint: endpoint.to_string(),
        reason: format!(
            "the daemon closed the connection before its hello{how}: it may speak TLS (give the client RMI_TLS_CA), or not be an rmi daemon"
        ),
        cause: error.and_then(crate::error::cause),
    })
}

/// The mode byte and frame limit of a hello.
fn parse_hello(head: &[u8; HELLO_BYTES], endpoint: &Endpoint) -> Result<(u8, usize), Error> {
    if head[..4] != MAGIC {
        return Err(Error::new(ErrorKind::Connect {
            endpoint: endpoint.to_string(),
            reason: format!(
                "it is not an rmi daemon (it began with {:02x?})",
                &head[..5]
            ),
            cause: None,
        }));
    }
    let max_frame = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
    Ok((head[4], max_frame))
}

/// Why a daemon at its connection limit refused this client. The client retries such a
/// refusal (the daemon read nothing) within its connect timeout: see [`is_full`].
const FULL: &str = "the daemon is full: it serves as many connections as it allows, in all or from this address, each of which has sent a request; retry later";

/// Whether `error` is a daemon's refusal for being at its connection limit: nothing was read,
/// so trying again later is safe.
pub(crate) fn is_full(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connect { reason, .. } if reason == FULL)
}

/// What the daemon's `mode` asks of this client holding `key`: nothing more (`None`), to
/// prove the key (`Some`), or an error saying why the two cannot talk.
fn key_for<'k>(
    mode: u8,
    key: Option<&'k Key>,
    endpoint: &Endpoint,
) -> Result<Option<&'k Key>, Error> {
    let refused = |reason: &str| refused(endpoint, reason.to_owned());
    match (mode, key) {
        (BUSY, _) => Err(Error::new(ErrorKind::Connect {
            endpoint: endpoint.to_string(),
            reason: FULL.into(),
            cause: None,
        })),
        (OPEN, None) => Ok(None),
        (OPEN, Some(_)) => Err(refused(
            "the daemon has no key, so it cannot prove it holds ours; give it the same key, or connect without one",
        )),
        (KEYED, None) => Err(refused(
            "the daemon requires a key; give this client the daemon's key (--key-file or RMI_KEY_FILE)",
        )),
        (KEYED, Some(key)) => Ok(Some(key)),
        (mode, _) => Err(refused(&format!(
            "unknown handshake mode {mode}: is the daemon a newer rmi?"
        ))),
    }
}

/// Answers the daemon's challenge with this client's proof of `key`, and checks the daemon's
/// proof in return.
async fn prove_both_ways<S>(stream: &mut S, key: &Key, endpoint: &Endpoint) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let broken = |e: std::io::Error| {
        Error::new(ErrorKind::Connect {
            endpoint: endpoint.to_string(),
            reason: format!("the connection broke during the handshake: {e}"),
            cause: crate::error::cause(e),
        })
    };
    let mut challenge = [0u8; NONCE];
    stream.read_exact(&mut challenge).await.map_err(broken)?;
    let mine: [u8; NONCE] = rand::random();
    let mut answer = mine.to_vec();
    answer.extend_from_slice(
        &proof(key, CLIENT_LABEL, &challenge, &mine)
            .finalize()
            .into_bytes(),
    );
    stream.write_all(&answer).await.map_err(broken)?;
    stream.flush().await.map_err(broken)?;
    let mut status = [0u8; 1];
    stream.read_exact(&mut status).await.map_err(broken)?;
    if status[0] != ACCEPTED {
        return Err(refused(
            endpoint,
            "the daemon refused our key: the client's and the daemon's keys differ".into(),
        ));
    }
    let mut theirs = [0u8; PROOF];
    stream.read_exact(&mut theirs).await.map_err(broken)?;
    proof(key, SERVER_LABEL, &mine, &challenge)
        .verify_slice(&theirs)
        .map_err(|_| {
            refused(
                endpoint,
                "the daemon did not prove it holds the key: it is not the daemon you expect".into(),
            )
        })
}

/// The error for a handshake the two sides' keys do not allow.
fn refused(endpoint: &Endpoint, reason: String) -> Error {
    Error::new(ErrorKind::Authentication {
        endpoint: endpoint.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn handshake(
        server: Option<&Key>,
        client: Option<&Key>,
    ) -> (Result<(), Refusal>, Result<usize, Error>) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let endpoint = Endpoint::new("127.0.0.1", 1);
        let (served, connected) = tokio::join!(
            async {
                let mut first = [0u8; 4];
                a.read_exact(&mut first).await.unwrap();
                assert_eq!(Opening::of(first), Opening::Rmi);
                let result = accept(&mut a, server, 4096).await;
                drop(a);
                result
            },
            async {
                let result = connect(&mut b, client, &endpoint).await;
                drop(b);
                result
            }
        );
        (served, connected)
    }

    #[tokio::test]
    async fn same_key_or_no_key_on_both_sides_connects() {
        let key = Key::new("k").unwrap();
        let (served, connected) = handshake(Some(&key), Some(&key)).await;
        assert!(served.is_ok());
        assert_eq!(connected.unwrap(), 4096, "the daemon's frame limit");
        let (served, connected) = handshake(None, None).await;
        assert!(served.is_ok() && connected.is_ok());
    }

    #[tokio::test]
    async fn a_wrong_or_missing_key_is_refused_on_both_sides() {
        let (ours, theirs) = (Key::new("right").unwrap(), Key::new("wrong").unwrap());
        let (served, connected) = handshake(Some(&ours), Some(&theirs)).await;
        assert!(matches!(served, Err(Refusal::WrongKey)));
        assert!(connected.unwrap_err().to_string().contains("keys differ"));
        let (served, connected) = handshake(Some(&ours), None).await;
        assert!(matches!(served, Err(Refusal::NoAnswer)));
        assert!(connected
            .unwrap_err()
            .to_string()
            .contains("requires a key"));
        let (_, connected) = handshake(None, Some(&ours)).await;
        assert!(connected.unwrap_err().to_string().contains("has no key"));
    }
}
