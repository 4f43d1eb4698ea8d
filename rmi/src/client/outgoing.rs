//! The bytes a connection's socket did not take yet, in order: small pieces gathered in one
//! buffer, large payloads kept as the shared bytes they already are (not copied again).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio_util::bytes::{Buf, Bytes, BytesMut};

/// Pieces at least this long are queued as they are, not copied into the buffer.
const SHARED_BYTES: usize = 16 * 1024;

/// The largest buffer kept for the next batch; a larger one is let go once written.
const KEPT_BYTES: usize = 64 * 1024;

/// How many pieces one vectored write hands the socket at most.
const PIECES_PER_WRITE: usize = 16;

/// What waits to be written: `pieces` first, then `tail`.
#[derive(Default)]
pub(crate) struct Outgoing {
    pieces: VecDeque<Bytes>,
    /// Small frames gathered since the last large piece.
    tail: BytesMut,
}

impl Outgoing {
    pub(crate) fn is_empty(&self) -> bool {
        self.pieces.is_empty() && self.tail.is_empty()
    }

    /// Queues a copy of `bytes`.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.tail.extend_from_slice(bytes);
        }
    }

    /// Queues `bytes` (the unwritten end of a payload): as it is if large, else copied.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if bytes.len() < SHARED_BYTES {
            return self.push_copy(&bytes);
        }
        if !self.tail.is_empty() {
            self.pieces.push_back(self.tail.split().freeze());
        }
        self.pieces.push_back(bytes);
    }

    /// Writes everything out to `io` and flushes it.
    pub(crate) fn poll_write_to(
        &mut self,
        mut io: Pin<&mut (dyn AsyncWrite + Send)>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let mut slices = [IoSlice::new(&[]); PIECES_PER_WRITE];
            let mut count = 0;
            let pieces = self.pieces.iter().map(|piece| &piece[..]);
            for piece in pieces.chain([&self.tail[..]]).take(PIECES_PER_WRITE) {
                slices[count] = IoSlice::new(piece);
                count += 1;
            }
            let written = std::task::ready!(io.as_mut().poll_write_vectored(cx, &slices[..count]));
            match written {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.advance(n),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if self.tail.capacity() > KEPT_BYTES {
            self.tail = BytesMut::new();
        }
        io.poll_flush(cx)
    }

    /// Drops the first `n` bytes, which the socket took.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(piece) = self.pieces.front_mut() else {
                self.tail.advance(n);
                return;
            };
            if n < piece.len() {
                piece.advance(n);
                return;
            }
            n -= piece.len();
            self.pieces.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_go_out_in_order_and_whole() {
        let mut outgoing = Outgoing::default();
        let big = Bytes::from(vec![2u8; SHARED_BYTES * 3]);
        outgoing.push_copy(b"one");
        outgoing.push(big.clone());
        outgoing.push(Bytes::from_static(b"two"));
        outgoing.push(big.clone());
        let mut expected = b"one".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"two");
        expected.extend_from_slice(&big);
        // A socket that takes little at a time.
        let (near, far) = tokio::io::duplex(1000);
        let reading = tokio::spawn(async move {
            let mut far = far;
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut got)
                .await
                .unwrap();
            got
        });
        let mut near: Pin<Box<dyn AsyncWrite + Send>> = Box::pin(near);
        std::future::poll_fn(|cx| outgoing.poll_write_to(near.as_mut(), cx))
            .await
            .unwrap();
        assert!(outgoing.is_empty());
        drop(near);
        assert_eq!(reading.await.unwrap(), expected);
    }
}
