//! The client side of streams: pulling a received stream's items in batches, one pull in
//! flight at a time, and closing the server's end when the stream is dropped unfinished.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use crate::proxy::{call_error, Bound};
use crate::wire::{self, Batch, Fault, Format, Payload, CLOSE, MAX_TIMEOUT, PULL, STREAMS_HANDLE};
use crate::Error;

/// How many items one pull asks for.
const PULL_ITEMS: u32 = 256;

type PullFuture = Pin<Box<dyn Future<Output = Result<Batch, Error>> + Send>>;

/// A received stream: its id on its connection, the items pulled, and the pull in flight.
pub(crate) struct Puller {
    bound: Arc<Bound>,
    method: usize,
    format: Format,
    id: u64,
    buffer: VecDeque<Payload>,
    pull: Option<PullFuture>,
    /// The server has closed the stream (it ended or failed): nothing more to pull.
    closed: bool,
    /// An error to give once the items before it are read.
    error: Option<Error>,
}

impl Puller {
    /// The stream `id` in the result being decoded.
    pub(crate) fn for_received(id: u64) -> Result<Self, &'static str> {
        let (bound, method, format) = crate::proxy::receiving::origin()
            .ok_or("an rmi::Stream can only be received as the result of a call")?;
        Ok(Puller::new(bound, method, format, id))
    }

    /// The stream `id` that `method` returned on `bound`, its items in `format`.
    pub(crate) fn new(bound: Arc<Bound>, method: usize, format: Format, id: u64) -> Self {
        Puller {
            bound,
            method,
            format,
            id,
            buffer: VecDeque::new(),
            pull: None,
            closed: false,
            error: None,
        }
    }

    /// The next item, decoded.
    pub(crate) fn poll_item<T: DeserializeOwned>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, Error>>> {
        self.poll_payload(cx).map(|item| {
            item.map(|payload| {
                payload.and_then(|payload| {
                    self.format.decode(&payload.contiguous()).map_err(|e| {
                        call_error::codec(
                            &self.bound,
                            self.method,
                            "decode an item of",
                            e.to_string(),
                        )
                    })
                })
            })
        })
    }

    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Payload, Error>>> {
        loop {
            if let Some(pull) = self.pull.as_mut() {
                if let Poll::Ready(pulled) = pull.as_mut().poll(cx) {
                    self.pull = None;
                    match pulled {
                        Ok(batch) => {
                            self.buffer.extend(batch.items);
                            self.closed = batch.end;
                        }
                        Err(e) => {
                            self.closed = true;
                            self.error = Some(e);
                        }
                    }
                }
            }
            // One pull in flight while the consumer reads the last batch: the next items
            // travel while it works, and the producer runs at most two batches ahead.
            if self.pull.is_none() && !self.closed && self.buffer.len() < PULL_ITEMS as usize {
                self.pull = Some(self.start_pull());
                continue;
            }
            if let Some(item) = self.buffer.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if let Some(error) = self.error.take() {
                return Poll::Ready(Some(Err(error)));
            }
            if self.closed {
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
    }

    fn start_pull(&self) -> PullFuture {
        let bound = self.bound.clone();
        let (method, id) = (self.method, self.id);
        Box::pin(async move {
            let reply = send(&bound, method, PULL, &(id, PULL_ITEMS)).await?;
            // The items are views of the reply, not copies.
            let reply = reply.to_bytes();
            let batch = wire::decoding_frame(&reply, || Format::Bincode.decode::<Batch>(&reply));
            batch.map_err(|e| {
                call_error::codec(&bound, method, "decode the items of", e.to_string())
            })
        })
    }
}

/// Sends a call about the stream to the server's [`STREAMS_HANDLE`]; waits as long as the
/// call being served allows, if any, else without end (the connection's end stops it).
async fn send<A: serde::Serialize>(
    bound: &Bound,
    method: usize,
    stream_method: u32,
    args: &A,
) -> Result<Payload, Error> {
    let args = Format::Bincode
        .encode(args)
        .map_err(|e| call_error::codec(bound, method, "encode a pull of", e.to_string()))?;
    let sent = bound.request(
        STREAMS_HANDLE,
        stream_method,
        Format::Bincode,
        args,
        MAX_TIMEOUT,
    );
    match sent.await {
        Ok(Err(Fault::TooLarge { limit })) => {
            let what = "an item of the stream of";
            Err(call_error::too_large(
                bound,
                method,
                what,
                limit as usize,
                true,
            ))
        }
        reply => call_error::outcome(bound, method, reply),
    }
}

impl Drop for Puller {
    /// Closes the server's end of a stream dropped before its end, which drops the producer.
    fn drop(&mut self) {
        if self.closed || self.bound.connection.is_closed() {
            return;
        }
        // Dropping the pull in flight cancels it on the server.
        self.pull = None;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime, no connection either: the server drops it with the connection.
        };
        let (bound, method, id) = (self.bound.clone(), self.method, self.id);
        runtime.spawn(async move {
            if let Err(e) = send(&bound, method, CLOSE, &(id,)).await {
                tracing::debug!("closing a stream: {e}");
            }
        });
    }
}

impl fmt::Debug for Puller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} from '{}' on {}",
            self.id,
            crate::proxy::method_name(&self.bound, self.method),
            self.bound.uri_text
        )
    }
}
