//! The daemon's end of one connection: reads requests, starts each one, writes the replies.
//!
//! rmi keeps tarpc's messages and frames on the daemon's side too, but not its server loop
//! (`BaseChannel`). That loop keeps a timer wheel per connection for the requests' deadlines
//! (about 6 KiB, even while the connection is idle), and gives every request a deadline
//! entry, an abort registration and a trip through a response channel. Here a call answered
//! in the connection's task (most are: `ConnectionState::run_call`) costs none of that; only a
//! call that waits gets a task, a deadline timer and an abort handle, which a `Cancel` from
//! the client uses.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::task::Poll;

use futures::{Sink, Stream};
use tarpc::{ClientMessage, Response};

use super::objects::Objects;
use crate::session::{ConnectionState, QueuedReply, Session};
use crate::wire::{Invoke, Reply};

/// The most requests read in a row before the replies ready are written.
const READ_BATCH: usize = 64;

/// Serves the requests of one connection (its frames already decoded by `transport`) until
/// its reads end and every call has been answered, or reading or writing fails.
pub(crate) async fn serve_calls<T>(
    transport: T,
    objects: &Objects,
    session: &mut Session,
) -> io::Result<()>
where
    T: Stream<Item = io::Result<ClientMessage<Invoke>>> + Sink<Response<Reply>, Error = io::Error>,
{
    let connection = session.connection.clone();
    // However the serving ends (even dropped, when the daemon abandons the connection), the
    // replies still queued go: each holds the connection's state.
    let _drop_replies = DropRepliesAtEnd(&connection);
    let mut transport = pin!(transport);
    let mut reading = true;
    let mut writing: VecDeque<QueuedReply> = VecDeque::new();
    let mut read_error: Option<io::Error> = None;
    poll_fn(|cx| loop {
        connection.register_task(cx.waker());
        let mut progress = false;
        let mut budget = READ_BATCH;
        connection.begin_reading();
        while reading && budget > 0 {
            match transport.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(ClientMessage::Request(request)))) => {
                    objects.route(request.into(), session);
                }
                Poll::Ready(Some(Ok(ClientMessage::Cancel { request_id, .. }))) => {
                    connection.cancel(request_id);
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) if client_gone(&e) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Err(e))) => {
                    // A frame cut short or unreadable: nothing more can be read, but the
                    // calls read before it are owed their replies, and the client may still
                    // read them. Reported once they are written.
                    reading = false;
                    connection.end_reads();
                    read_error = Some(e);
                }
                Poll::Ready(None) => {
                    reading = false;
                    connection.end_reads();
                }
                Poll::Pending => break,
            }
            budget -= 1;
            progress = true;
        }
        connection.take_replies(&mut writing);
        while let Some((response, in_flight)) = writing.pop_front() {
            match transport.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    writing.push_front((response, in_flight));
                    break;
                }
            }
            if let Err(e) = transport.as_mut().start_send(response) {
                return Poll::Ready(Err(e));
            }
            // Handed to the writer: the call is answered, and counts no more.
            drop(in_flight);
            progress = true;
        }
        let flushed = match transport.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => false,
        };
        if !reading && flushed && writing.is_empty() && !connection.has_calls_in_flight() {
            return Poll::Ready(read_error.take().map_or(Ok(()), Err));
        }
        if !progress {
            return Poll::Pending;
        }
        if connection.take_spawned() {
            // Yields, so that another worker wakes (see `take_spawned`).
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
    })
    .await
}

/// Whether a read error means the client cannot take replies any more (the connection reset
/// or aborted), rather than a bad or cut-short frame from a client that may still read.
fn client_gone(error: &io::Error) -> bool {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let inner = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<io::Error>());
    [Some(error), inner]
        .into_iter()
        .flatten()
        .any(|e| matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe))
}

struct DropRepliesAtEnd<'a>(&'a ConnectionState);

impl Drop for DropRepliesAtEnd<'_> {
    fn drop(&mut self) {
        self.0.close_replies();
    }
}
