//! The daemon's side of streams: each connection's open streams (per-connection state, with
//! the server), the pulls that read them, and the streams clients upload.
//!
//! A pull is an ordinary call on the reserved handle [`STREAMS_HANDLE`]: method [`PULL`] with
//! `(stream id, most items)` answers with a [`Batch`] once at least one item is ready (or the
//! stream ended); method [`CLOSE`] with the stream id drops the stream and its producer. An
//! upload goes the other way: method [`PUSH`] carries the next batch of a stream that a call
//! took as an argument, and is answered once the method's stream has room for it (one
//! batch), which paces the client. Those names are the wire's (`wire`), shared with the
//! client's side (`stream::pull`, `stream::push`).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::StreamExt;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::error::panic_message;

pub(crate) use crate::wire::STREAMS_HANDLE;
use crate::wire::{Batch, Fault, Format, Invoke, Payload, Reply, CLOSE, PULL, PUSH};
use crate::Error;

/// The most bytes of items one batch gathers (one item larger than this goes alone).
pub(crate) const BATCH_BYTES: usize = 1024 * 1024;

/// The most streams open at once on one connection: a client that opens streams and never
/// reads them cannot make the server hold producers without end.
pub(crate) const MAX_OPEN_STREAMS: usize = 1024;

/// The open streams of one connection, dropped with it (and their producers with them).
#[derive(Default)]
pub(crate) struct OpenStreams {
    next_id: AtomicU64,
    open: Mutex<FxHashMap<u64, Arc<tokio::sync::Mutex<Producer>>>>,
    /// Streams the client uploads, by the client's id: made by whichever comes first, the
    /// call that takes the stream or its first push.
    uploads: Mutex<FxHashMap<u64, Upload>>,
}

/// One batch of an upload, as the method's stream receives it.
pub(crate) struct Pushed {
    pub(crate) items: Vec<Payload>,
    pub(crate) end: bool,
    /// What broke the client's producer, after these items.
    pub(crate) failure: Option<String>,
}

/// An upload's channel: pushes send into it, the method's stream reads it. It holds one
/// batch: a push waits (and so the client) until the method has taken the last.
struct Upload {
    /// Until the last batch is pushed.
    sender: Option<tokio::sync::mpsc::Sender<Pushed>>,
    /// Until the call takes it (which may come after the first pushes, or all of them: a
    /// call that starts in a task of its own decodes its arguments there).
    receiver: Option<tokio::sync::mpsc::Receiver<Pushed>>,
}

impl Upload {
    fn new() -> Upload {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        Upload {
            sender: Some(sender),
            receiver: Some(receiver),
        }
    }
}

impl OpenStreams {
    /// Opens a stream of `items`, each encoded in `format` and at most `max_item` long: its id.
    pub(crate) fn open<T: Serialize + Send + 'static>(
        &self,
        format: Format,
        max_item: usize,
        items: BoxStream<'static, Result<T, Error>>,
    ) -> Result<u64, String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= MAX_OPEN_STREAMS {
            return Err(format!(
                "this connection has {MAX_OPEN_STREAMS} streams open, the most it may; \
                 read streams to their end or drop them"
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let producer = Producer::encoding(items, format, max_item);
        open.insert(id, Arc::new(tokio::sync::Mutex::new(producer)));
        Ok(id)
    }

    /// The receiving end of upload `id`, for the argument being decoded.
    pub(crate) fn receive(&self, id: u64) -> Result<tokio::sync::mpsc::Receiver<Pushed>, String> {
        let mut uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
        if !uploads.contains_key(&id) && uploads.len() >= MAX_OPEN_STREAMS {
            return Err(format!(
                "this connection has {MAX_OPEN_STREAMS} uploads open, the most it may"
            ));
        }
        let upload = uploads.entry(id).or_insert_with(Upload::new);
        let receiver = upload
            .receiver
            .take()
            .ok_or_else(|| format!("stream {id} was taken by an argument already"));
        if upload.sender.is_none() {
            // Every batch was pushed before the call took the stream: they wait in it.
            uploads.remove(&id);
        }
        receiver
    }

    /// Hands a pushed batch to upload `id`'s stream, once it has room: `Ok` if the method
    /// still reads it, `UnknownStream` if it dropped it.
    async fn push(&self, id: u64, pushed: Pushed) -> Result<(), Fault> {
        let last = pushed.end || pushed.failure.is_some();
        crate::meters::DaemonMeters::stream_items("in", pushed.items.len());
        let sender = {
            let mut uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
            if !uploads.contains_key(&id) && uploads.len() >= MAX_OPEN_STREAMS {
                return Err(Fault::UnknownStream);
            }
            let upload = uploads.entry(id).or_insert_with(Upload::new);
            upload.sender.clone().ok_or(Fault::UnknownStream)?
        };
        let sent = sender.send(pushed).await;
        if sent.is_err() || last {
            let mut uploads = self.uploads.lock().unwrap_or_else(PoisonError::into_inner);
            match uploads.get_mut(&id) {
                // Not taken yet: the batches wait for the call, which removes it.
                Some(upload) if sent.is_ok() && upload.receiver.is_some() => upload.sender = None,
                _ => {
                    uploads.remove(&id);
                }
            }
        }
        sent.map_err(|_| Fault::UnknownStream)
    }

    fn get(&self, id: u64) -> Option<Arc<tokio::sync::Mutex<Producer>>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&id).cloned()
    }

    pub(crate) fn close(&self, id: u64) {
        let closed = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        // Dropped outside the lock: dropping a producer runs the user's code.
        drop(closed);
    }

    /// Answers a call on [`STREAMS_HANDLE`] (a pull, a push or a close), a pull's batch at most
    /// `batch_bytes` long.
    pub(crate) async fn handle_request(&self, invoke: Invoke, batch_bytes: usize) -> Reply {
        let bad = |e: crate::wire::CodecError| Fault::BadArguments(e.to_string());
        match invoke.method {
            PULL => {
                let (id, most): (u64, u32) = Format::Bincode
                    .decode(&invoke.args.contiguous())
                    .map_err(bad)?;
                let batch = self
                    .pull(id, most.clamp(1, 4096) as usize, batch_bytes)
                    .await?;
                Format::Bincode
                    .encode(&batch)
                    .map_err(|e| Fault::BadResult(e.to_string()))
            }
            CLOSE => {
                let (id,): (u64,) = Format::Bincode
                    .decode(&invoke.args.contiguous())
                    .map_err(bad)?;
                self.close(id);
                Format::Bincode
                    .encode(&())
                    .map_err(|e| Fault::BadResult(e.to_string()))
            }
            PUSH => {
                // The items are views of the request's frame, not copies.
                let args = invoke.args.to_bytes();
                let decoded = crate::wire::decoding_frame(&args, || {
                    Format::Bincode.decode::<(u64, Batch, Option<String>)>(&args)
                });
                let (id, batch, failure) = decoded.map_err(bad)?;
                let pushed = Pushed {
                    items: batch.items,
                    end: batch.end,
                    failure,
                };
                self.push(id, pushed).await?;
                Format::Bincode
                    .encode(&())
                    .map_err(|e| Fault::BadResult(e.to_string()))
            }
            _ => Err(Fault::UnknownMethod),
        }
    }

    /// The next items of stream `id`; a stream that ended or failed is closed.
    pub(crate) async fn pull(
        &self,
        id: u64,
        most: usize,
        batch_bytes: usize,
    ) -> Result<Batch, Fault> {
        let producer = self.get(id).ok_or(Fault::UnknownStream)?;
        // One pull at a time per stream, in order.
        let mut producer = producer.lock().await;
        let filled = producer.fill(most, batch_bytes).await;
        if let Ok(batch) = &filled {
            crate::meters::DaemonMeters::stream_items("out", batch.items.len());
        }
        if filled.as_ref().map_or(true, |batch| batch.end) {
            self.close(id);
        }
        filled
    }
}

/// What a producer's failure says to the reader (the error's own text for one made by
/// `Stream::try_new`).
fn stream_failure(error: &Error) -> String {
    match error.kind() {
        crate::ErrorKind::ProducerFailed { reason } => reason.clone(),
        _ => error.to_string(),
    }
}

/// A stream's items, encoded one by one: the item type erased.
trait Source: Send {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Payload, Fault>>>;
}

struct Encoded<T> {
    items: BoxStream<'static, Result<T, Error>>,
    format: Format,
    max_item: usize,
}

impl<T: Serialize> Source for Encoded<T> {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Payload, Fault>>> {
        let (format, max_item) = (self.format, self.max_item);
        self.items.poll_next_unpin(cx).map(|item| {
            item.map(|item| {
                let item = item.map_err(|e| Fault::StreamBroken(stream_failure(&e)))?;
                Ok(format.encode_item_within(&item, max_item)?)
            })
        })
    }
}

/// A stream's items gathered into batches as they are asked for: what a pull answers on the
/// daemon, and what a push carries from a client. Its item that did not fit in the last
/// batch, and a failure found after items already gathered, wait for the next.
pub(crate) struct Producer {
    source: Box<dyn Source>,
    /// An item that did not fit in the last batch.
    held: Option<Payload>,
    /// A failure found after items already gathered: the next pull reports it.
    failed: Option<Fault>,
    ended: bool,
}

impl Producer {
    /// The items of `items`, each encoded in `format` and at most `max_item` long.
    pub(crate) fn encoding<T: Serialize + Send + 'static>(
        items: BoxStream<'static, Result<T, Error>>,
        format: Format,
        max_item: usize,
    ) -> Producer {
        Producer::new(Box::new(Encoded {
            items,
            format,
            max_item,
        }))
    }

    /// The next batch: at most `most` items and `batch_bytes` bytes (but one item), once at
    /// least one is ready or the items end.
    pub(crate) async fn fill(&mut self, most: usize, batch_bytes: usize) -> Result<Batch, Fault> {
        let mut batch = Batch::default();
        std::future::poll_fn(|cx| self.poll_fill(cx, most, batch_bytes, &mut batch)).await?;
        Ok(batch)
    }

    fn new(source: Box<dyn Source>) -> Self {
        Producer {
            source,
            held: None,
            failed: None,
            ended: false,
        }
    }

    /// Gathers into `batch` the items ready now, waiting for the first: ready when the batch
    /// has one or more items and no more are ready, or is full, or the stream ended.
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        most: usize,
        batch_bytes: usize,
        batch: &mut Batch,
    ) -> Poll<Result<(), Fault>> {
        let mut bytes = batch.items.iter().map(|item| item.len()).sum::<usize>();
        loop {
            if let Some(fault) = self.failed.take() {
                if batch.items.is_empty() {
                    return Poll::Ready(Err(fault));
                }
                self.failed = Some(fault);
                return Poll::Ready(Ok(()));
            }
            if self.ended {
                batch.end = true;
                return Poll::Ready(Ok(()));
            }
            if batch.items.len() >= most {
                return Poll::Ready(Ok(()));
            }
            let item = match self.held.take() {
                Some(item) => item,
                None => match self.poll_source(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => continue,
                    Poll::Pending if batch.items.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(Ok(())),
                },
            };
            if !batch.items.is_empty() && bytes + item.len() > batch_bytes {
                self.held = Some(item);
                return Poll::Ready(Ok(()));
            }
            bytes += item.len();
            batch.items.push(item);
        }
    }

    /// The producer's next item; its end, failure or panic recorded as such (`None`).
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| self.source.poll_item(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(item)))) => Poll::Ready(Some(item)),
            Ok(Poll::Ready(None)) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Ok(Poll::Ready(Some(Err(fault)))) => {
                self.failed = Some(fault);
                self.ended = true;
                Poll::Ready(None)
            }
            Err(panic) => {
                self.failed = Some(Fault::Panicked(panic_message(&*panic)));
                self.ended = true;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer<T: Serialize + Send + 'static>(
        items: impl futures::Stream<Item = T> + Send + 'static,
    ) -> Producer {
        let items = items.map(Ok).boxed();
        Producer::new(Box::new(Encoded {
            items,
            format: Format::Bincode,
            max_item: crate::wire::MAX_PAYLOAD_BYTES,
        }))
    }

    async fn fill(producer: &mut Producer, most: usize) -> Result<Batch, Fault> {
        let mut batch = Batch::default();
        std::future::poll_fn(|cx| producer.poll_fill(cx, most, BATCH_BYTES, &mut batch)).await?;
        Ok(batch)
    }

    #[tokio::test]
    async fn an_upload_pushed_in_full_before_its_call_takes_it_is_all_there() {
        let streams = OpenStreams::default();
        let last = Pushed {
            items: vec![Payload::from(vec![1u8; 40])],
            end: true,
            failure: None,
        };
        streams.push(7, last).await.unwrap();
        let mut receiver = streams.receive(7).unwrap();
        let within = std::time::Duration::from_secs(5);
        let batch = tokio::time::timeout(within, receiver.recv()).await.unwrap();
        let batch = batch.expect("the batch pushed before the call took the stream");
        assert_eq!((batch.items.len(), batch.end), (1, true));
        assert!(
            streams.uploads.lock().unwrap().is_empty(),
            "the upload is let go"
        );
    }

    #[tokio::test]
    async fn batches_hold_at_most_what_was_asked_then_say_the_end() {
        let mut p = producer(futures::stream::iter(0..5u32));
        assert_eq!(fill(&mut p, 3).await.unwrap().items.len(), 3);
        let last = fill(&mut p, 3).await.unwrap();
        assert_eq!((last.items.len(), last.end), (2, true));
    }

    #[tokio::test]
    async fn a_failure_after_items_comes_with_the_next_pull() {
        let items = futures::stream::iter(0..3u32).map(|n| {
            assert!(n < 2, "producer broke at {n}");
            n
        });
        let mut p = producer(items);
        let first = fill(&mut p, 10).await.unwrap();
        assert_eq!((first.items.len(), first.end), (2, false));
        let failed = fill(&mut p, 10).await.unwrap_err();
        assert_eq!(failed, Fault::Panicked("producer broke at 2".into()));
    }

    #[tokio::test]
    async fn a_big_item_waits_for_the_next_batch() {
        let items = futures::stream::iter([vec![0u8; 10], vec![1u8; BATCH_BYTES]]);
        let mut p = producer(items);
        assert_eq!(fill(&mut p, 10).await.unwrap().items.len(), 1);
        let second = fill(&mut p, 10).await.unwrap();
        assert_eq!((second.items.len(), second.end), (1, true));
    }
}
