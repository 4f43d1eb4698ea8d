//! The bytes a connection's socket did not take yet, in order: small pieces gathered in one
//! buffer, large payloads kept as the shared bytes they already are (not copied again).
//! Both ends of a connection write through it: the client its requests, the daemon its
//! replies.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio_util::bytes::{Buf, Bytes, BytesMut};

use crate::wire::Payload;

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
    /// How many bytes wait, in all.
    len: usize,
}

impl Outgoing {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes wait to be written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues a copy of `bytes`.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Queues `payload` from byte `from` on: its large pieces as they are (views, not
    /// copies), the rest copied.
    pub(crate) fn push_payload(&mut self, payload: &Payload, mut from: usize) {
        let Some(pieces) = payload.shared_pieces() else {
            return self.push_copy(&payload.contiguous()[from..]);
        };
        for piece in pieces {
            let skipped = from.min(piece.len());
            from -= skipped;
            if skipped < piece.len() {
                self.push_shared(piece.slice(skipped..));
            }
        }
    }

    /// Queues `piece`: a large one as it is, a small one copied.
    fn push_shared(&mut self, piece: Bytes) {
        if piece.len() < SHARED_BYTES {
            return self.push_copy(&piece);
        }
        if !self.tail.is_empty() {
            self.pieces.push_back(self.tail.split().freeze());
        }
        self.len += piece.len();
        self.pieces.push_back(piece);
    }

    /// Writes everything out to `io` and flushes it.
    pub(crate) fn poll_write_to<W: AsyncWrite + ?Sized>(
        &mut self,
        mut io: Pin<&mut W>,
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
            // One piece is a plain write.
            let written = if count == 1 {
                std::task::ready!(io.as_mut().poll_write(cx, &slices[0]))
            } else {
                std::task::ready!(io.as_mut().poll_write_vectored(cx, &slices[..count]))
            };
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
        self.len -= n;
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
        let big = Payload::from(vec![2u8; SHARED_BYTES * 3]);
        outgoing.push_copy(b"one");
        outgoing.push_payload(&big, 0);
        outgoing.push_payload(&Payload::from(b"two".to_vec()), 0);
        outgoing.push_payload(&big, 5);
        let mut expected = b"one".to_vec();
        expected.extend_from_slice(&big.contiguous());
        expected.extend_from_slice(b"two");
        expected.extend_from_slice(&big.contiguous()[5..]);
        assert_eq!(outgoing.len(), expected.len());
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
