//! A feed of numbered lines, streamed to the client as a producer task makes them: the
//! streaming demo.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The name the feed server registers.
pub const NAME: &str = "feed";

/// The longest line the feed makes, in bytes.
pub const MAX_LINE: u32 = 1 << 20;

/// How many lines a producer may make before the client has asked for them: the channel
/// between the producer task and the stream.
const AHEAD: usize = 16;

/// One line of the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Its number, from 1.
    pub n: u64,
    /// `line N`, padded with dots to the size asked for.
    pub text: String,
}

/// What the feed's producers have done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStats {
    /// Lines made so far, by all producers.
    pub produced: u64,
    /// Producers running now.
    pub producing: u32,
}

/// Lines, streamed.
#[rmi::expose]
pub trait Feed {
    /// `count` lines of at least `size` bytes, one every `every_ms` milliseconds, made by a
    /// producer task that waits while the client does not read.
    async fn lines(&self, count: u64, size: u32, every_ms: u64) -> rmi::Stream<Line>;
    /// How many lines were made, and how many producers run.
    async fn stats(&self) -> FeedStats;
}

/// The feed object.
#[derive(Default)]
pub struct FeedServer {
    produced: Arc<AtomicU64>,
    producing: Arc<AtomicU32>,
}

impl Feed for FeedServer {
    async fn lines(&self, count: u64, size: u32, every_ms: u64) -> rmi::Stream<Line> {
        let (sender, receiver) = tokio::sync::mpsc::channel(AHEAD);
        let producer = Producer {
            produced: self.produced.clone(),
            producing: Running::new(self.producing.clone()),
        };
        let size = size.min(MAX_LINE) as usize;
        let every = Duration::from_millis(every_ms);
        tokio::spawn(producer.run(sender, count, size, every));
        rmi::Stream::from_receiver(receiver)
    }

    async fn stats(&self) -> FeedStats {
        FeedStats {
            produced: self.produced.load(Ordering::SeqCst),
            producing: self.producing.load(Ordering::SeqCst),
        }
    }
}

struct Producer {
    produced: Arc<AtomicU64>,
    producing: Running,
}

impl Producer {
    /// Makes the lines until there are `count` or the client dropped the stream (the send
    /// fails).
    async fn run(
        self,
        sender: tokio::sync::mpsc::Sender<Line>,
        count: u64,
        size: usize,
        every: Duration,
    ) {
        for n in 1..=count {
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
            let mut text = format!("line {n}");
            if text.len() < size {
                text.extend(std::iter::repeat_n('.', size - text.len()));
            }
            if sender.send(Line { n, text }).await.is_err() {
                tracing::info!(n, "the client dropped the stream: producer stops");
                return;
            }
            self.produced.fetch_add(1, Ordering::SeqCst);
        }
        drop(self.producing);
    }
}

/// Counts a running producer, until dropped (however the producer ends).
struct Running(Arc<AtomicU32>);

impl Running {
    fn new(count: Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
