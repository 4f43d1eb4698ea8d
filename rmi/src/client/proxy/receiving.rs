//! Where the result being decoded came from, for a value in it that needs to know: a
//! `Stream<T>` in a result becomes a puller over the binding that received it. A
//! thread-local, set only while a proxy decodes a result (`ProxyCore::call`).

use std::cell::Cell;
use std::sync::Arc;

use super::Bound;
use crate::wire::Format;

/// Where the result being decoded came from: the binding, the method, the format.
#[derive(Clone, Copy)]
struct Origin {
    /// Valid while [`receiving`] runs, which is the only time it is read.
    bound: *const Arc<Bound>,
    method: usize,
    format: Format,
}

thread_local! {
    static RECEIVING: Cell<Option<Origin>> = const { Cell::new(None) };
}

/// Runs `decode`, the decoding of the result of `method` called on `bound` in `format`, so
/// that a stream in that result knows where to pull its items from.
pub(crate) fn receiving<R>(
    bound: &Arc<Bound>,
    method: usize,
    format: Format,
    decode: impl FnOnce() -> R,
) -> R {
    /// Puts back the previous origin, even if decoding unwinds.
    struct Restore(Option<Origin>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RECEIVING.set(self.0);
        }
    }
    let origin = Origin {
        bound,
        method,
        format,
    };
    let _restore = Restore(RECEIVING.replace(Some(origin)));
    decode()
}

/// The binding, method and format of the result being decoded on this thread, if one is.
pub(crate) fn origin() -> Option<(Arc<Bound>, usize, Format)> {
    let origin = RECEIVING.get()?;
    // SAFETY: `origin` is set only while `receiving` runs, and `receiving` borrows the binding
    // for all of that time.
    let bound = unsafe { Arc::clone(&*origin.bound) };
    Some((bound, origin.method, origin.format))
}
