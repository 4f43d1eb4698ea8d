//! Buffers of large frames, kept for the next large frame once the frames read into them are
//! dropped. Without it, each large frame is a fresh allocation: glibc gives memory freed at
//! the top of its heap back to the system once more than twice its mmap threshold is free,
//! so a loop of 1 MiB calls grew and trimmed the heap every call, and each byte of the next
//! frame was a page fault (a third of a 1 MiB echo's time). A frame is a view of its buffer
//! (`wire::decoding_frame`), so a buffer is reused only once no view of it is left.
//!
//! The pool is the process's, bounded in buffers and bytes: a connection that goes idle
//! keeps no large buffer of its own. A thread's encoding buffer goes through it too
//! (`wire::EncodeBuffer`): while the payloads written in it wait for their socket, another
//! takes its place.

use std::sync::Mutex;

use tokio_util::bytes::BytesMut;

/// Frames from this long are read into pooled buffers.
pub(crate) const POOLED_FRAME_BYTES: usize = 64 * 1024;

/// The most buffers kept.
const KEPT_BUFFERS: usize = 4;

/// The most bytes the kept buffers hold together; a larger buffer is not kept.
const KEPT_BYTES: usize = 32 * 1024 * 1024;

/// A spent buffer and the size of its allocation (a `BytesMut` says only what is left of it).
struct Spent {
    buffer: BytesMut,
    size: usize,
}

static POOL: Mutex<Vec<Spent>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<Spent>> {
    // Each change is one push or remove: a panic elsewhere leaves it whole.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty buffer with room for `capacity` bytes, made of a kept one no longer in use.
pub(crate) fn take(capacity: usize) -> Option<BytesMut> {
    let mut pool = pool();
    let found = pool
        .iter_mut()
        .position(|spent| spent.size >= capacity && spent.buffer.try_reclaim(capacity))?;
    Some(pool.swap_remove(found).buffer)
}

/// Keeps `buffer`, an allocation of `size` bytes whose frames may still be in use, for a
/// later [`take`]; the first in the pool makes room if need be (usually the oldest: [`take`]
/// swaps the last into the place it empties).
pub(crate) fn give(mut buffer: BytesMut, size: usize) {
    if size > KEPT_BYTES {
        return;
    }
    buffer.clear();
    let mut pool = pool();
    pool.push(Spent { buffer, size });
    while pool.len() > KEPT_BUFFERS
        || pool.iter().map(|spent| spent.size).sum::<usize>() > KEPT_BYTES
    {
        pool.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_once_its_frames_are_dropped() {
        let size = 2 * POOLED_FRAME_BYTES + 3;
        let mut buffer = BytesMut::with_capacity(size);
        buffer.extend_from_slice(&vec![7; size]);
        let frame = buffer.split_to(size - 1).freeze();
        let start = frame.as_ptr();
        give(buffer, size);
        assert!(take(size).is_none(), "a frame still uses it");
        drop(frame);
        let reused = take(size).expect("no frame uses it now");
        assert_eq!(
            reused.as_ptr(),
            start,
            "the same allocation, from its start"
        );
        assert!(reused.is_empty() && reused.capacity() >= size);
    }

    #[test]
    fn a_buffer_larger_than_the_pool_is_not_kept() {
        let buffer = BytesMut::with_capacity(16);
        give(buffer, KEPT_BYTES + 1);
        assert!(pool().iter().all(|spent| spent.size <= KEPT_BYTES));
    }
}
