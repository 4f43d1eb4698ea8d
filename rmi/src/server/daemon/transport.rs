//! The daemon's end of one connection's socket: requests read in frames (`wire::ServerFrames`),
//! replies written as they come, each result's bytes from where they are.
//!
//! A reply's head (request id, outcome, the result's length) is encoded into the thread's kept
//! buffer and copied into the write queue; a result of 16 KiB or more is queued as the shared bytes it
//! was encoded into, and written from there with the heads around it in one vectored write:
//! no copy of the result between its encoding and the socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use tarpc::{ClientMessage, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

use super::reading::StopReading;
use crate::outgoing::Outgoing;
use crate::wire::{self, Invoke, Payload, Reply, ServerFrames};

/// Requests in, replies out, over one socket.
pub(crate) struct Transport<S> {
    reading: FramedRead<StopReading<S>, ServerFrames>,
    writing: Outgoing,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport<S> {
    pub(crate) fn new(stream: StopReading<S>, max_frame: usize) -> Self {
        Transport {
            reading: wire::server_frames(stream, max_frame),
            writing: Outgoing::default(),
        }
    }

    /// Queues `bytes` to go out before the first reply, with it in one write (or alone at the
    /// next flush, which ends every round of the connection's task).
    pub(crate) fn queue_first(&mut self, bytes: &[u8]) {
        self.writing.push_copy(bytes);
    }

    fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Transport { reading, writing } = self;
        writing.poll_write_to(Pin::new(reading.get_mut()), cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Transport<S> {
    type Item = io::Result<ClientMessage<Invoke>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let reading = &mut self.get_mut().reading;
        let next = Pin::new(&mut *reading).poll_next(cx);
        if next.is_pending() && reading.get_mut().take_release() && reading.read_buffer().is_empty()
        {
            // Quiet for a while: the buffer goes, and the next request's read makes another.
            *reading.read_buffer_mut() = tokio_util::bytes::BytesMut::new();
        }
        next
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Response<Reply>> for Transport<S> {
    type Error = io::Error;

    /// Ready while the replies waiting are fewer than a batch; else writes them first.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.writing.len() < wire::WRITE_BATCH_BYTES {
            return Poll::Ready(Ok(()));
        }
        this.poll_write_all(cx)
    }

    fn start_send(self: Pin<&mut Self>, reply: Response<Reply>) -> io::Result<()> {
        let writing = &mut self.get_mut().writing;
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        let written = match reply.message {
            Ok(Ok(result)) => {
                // The head is the reply with an empty result; the result follows it.
                let head = Response::<Reply> {
                    request_id: reply.request_id,
                    message: Ok(Ok(Payload::default())),
                };
                wire::with_frame(&head, Some(&result), |head, from| {
                    writing.push_copy(head);
                    writing.push_payload(&result, from);
                })
            }
            message => {
                let reply = Response::<Reply> {
                    request_id: reply.request_id,
                    message,
                };
                wire::with_frame(&reply, None, |frame, _| writing.push_copy(frame))
            }
        };
        written.map_err(invalid)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_all(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_write_all(cx))?;
        Pin::new(this.reading.get_mut()).poll_shutdown(cx)
    }
}
