//! Uploads: a `Stream<T>` among a call's arguments. The client pushes its items to the
//! daemon in batches while the call runs; the method reads them as a stream.
//!
//! The client side: encoding the arguments registers the upload (`proxy::sending`); once the
//! call is sent, [`push`] gathers the items into batches and sends each as a `PUSH` call on
//! the streams' handle, the next batch gathered while the last travels. The daemon answers a
//! push once the method's stream has room for it (it holds one batch besides the one the
//! method reads), so the producer is at most four batches (plus what its own channel holds)
//! ahead of the method: the one it reads, one waiting, one push waiting for room, and the
//! one being gathered. A push answered
//! `UnknownStream` (the method dropped the stream) or the call's end stops the producer.
//!
//! The daemon's side: [`Receiver`], the stream the method reads, over the upload's channel
//! (`stream_host::OpenStreams::receive`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::proxy::{call_error, Bound};
use crate::stream_host::{Producer, Pushed, BATCH_BYTES};
use crate::wire::{Batch, Fault, Format, Payload, PUSH, STREAMS_HANDLE};
use crate::{Error, ErrorKind};

/// How many items one push carries at most.
const PUSH_ITEMS: usize = 256;

/// Pushes `items` as upload `id` of the call to `method` on `bound`, each item encoded in
/// `format`, each push waiting at most `timeout` for its answer. Ends at the items' end, or
/// when the method drops its stream, or on an error (the call reports what matters).
pub(crate) async fn push<T: Serialize + Send + 'static>(
    bound: Arc<Bound>,
    method: usize,
    id: u64,
    items: BoxStream<'static, Result<T, Error>>,
    format: Format,
    timeout: Duration,
) {
    // The call that carries the upload may be the connection's first: its items may be as
    // large as the daemon's hello says, once it is read.
    let max_item = bound.connection.learn_max_payload(timeout).await;
    let mut producer = Producer::encoding(items, format, max_item);
    let batch_bytes = BATCH_BYTES.min(max_item);
    let mut in_flight: Option<futures::future::BoxFuture<'static, bool>> = None;
    loop {
        // The next batch is gathered while the last one travels: the last push is polled
        // first, so that its frame is written before the producer runs (a producer that is
        // always ready would otherwise fill the next batch before the last one left).
        let last = async {
            match in_flight.take() {
                Some(pushed) => pushed.await,
                None => true,
            }
        };
        let (taken, filled) = futures::join!(last, producer.fill(PUSH_ITEMS, batch_bytes));
        if !taken {
            return;
        }
        let (batch, failure) = match filled {
            Ok(batch) => (batch, None),
            Err(fault) => (Batch::default(), Some(failure_text(fault))),
        };
        let done = batch.end || failure.is_some();
        let pushed = push_batch(bound.clone(), method, id, batch, failure, timeout);
        if done {
            pushed.await;
            return;
        }
        in_flight = Some(Box::pin(pushed));
    }
}

/// What the method is told when the client's producer broke.
fn failure_text(fault: Fault) -> String {
    match fault {
        Fault::StreamBroken(reason) | Fault::BadResult(reason) | Fault::Panicked(reason) => reason,
        Fault::TooLarge { limit } => {
            format!("an item took more than {limit} bytes, the most one message carries here")
        }
        other => format!("{other:?}"),
    }
}

/// Sends one batch; whether the method still reads the stream.
async fn push_batch(
    bound: Arc<Bound>,
    method: usize,
    id: u64,
    batch: Batch,
    failure: Option<String>,
    timeout: Duration,
) -> bool {
    let args = match Format::Bincode.encode(&(id, &batch, &failure)) {
        Ok(args) => args,
        Err(e) => {
            tracing::warn!("an upload to {} stopped: {e}", bound.uri_text);
            return false;
        }
    };
    let sent = bound.request(STREAMS_HANDLE, PUSH, Format::Bincode, args, timeout);
    match sent.await {
        // The method dropped its stream: nothing more to send.
        Ok(Err(Fault::UnknownStream)) => false,
        reply => match call_error::outcome(&bound, method, reply) {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!("an upload stopped: {error}");
                false
            }
        },
    }
}

/// The daemon's end of an upload: the batches the client pushes, item by item.
pub(crate) struct Receiver {
    batches: tokio::sync::mpsc::Receiver<Pushed>,
    format: Format,
    items: VecDeque<Payload>,
    /// What broke the client's producer, given after the items before it.
    failure: Option<String>,
    ended: bool,
    /// The object and method serving the call, for errors.
    origin: String,
}

impl Receiver {
    /// The upload `id` among the arguments of the call being served.
    pub(crate) fn for_argument(id: u64) -> Result<Receiver, String> {
        let json = crate::serving::with(|serving| serving.format == Format::Json);
        if json == Some(true) {
            return Err(
                "a stream argument is sent by a typed proxy (an rmi::Stream), not in JSON".into(),
            );
        }
        let (batches, format) = crate::stream_calls::receive_upload(id)?;
        let origin = crate::serving::with(|serving| serving.object.clone())
            .flatten()
            .map(|uri| uri.to_string())
            .unwrap_or_default();
        Ok(Receiver {
            batches,
            format,
            items: VecDeque::new(),
            failure: None,
            ended: false,
            origin,
        })
    }

    pub(crate) fn poll_item<T: DeserializeOwned>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, Error>>> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Poll::Ready(Some(
                    self.format
                        .decode(&item.contiguous())
                        .map_err(|e| self.broken(format!("an item did not decode: {e}"))),
                ));
            }
            if let Some(failure) = self.failure.take() {
                self.ended = true;
                return Poll::Ready(Some(Err(self.broken(failure))));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match std::task::ready!(self.batches.poll_recv(cx)) {
                Some(pushed) => {
                    self.items.extend(pushed.items);
                    self.ended = pushed.end;
                    self.failure = pushed.failure;
                }
                None => {
                    self.ended = true;
                    let reason = "the client's connection ended before the stream did";
                    return Poll::Ready(Some(Err(self.broken(reason.into()))));
                }
            }
        }
    }

    fn broken(&self, reason: String) -> Error {
        Error::new(ErrorKind::UploadBroken {
            uri: self.origin.clone(),
            reason,
        })
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uploaded to {}", self.origin)
    }
}
