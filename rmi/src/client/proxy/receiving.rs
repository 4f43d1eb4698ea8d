//! Where the result being decoded came from, for a value in it that needs to know: a
//! `Stream<T>` in a result becomes a puller over the binding that received it. Set only while
//! a proxy decodes a result (`ProxyCore::call`), for that thread.

use std::cell::Cell;
use std::sync::Arc;

use super::Bound;
use crate::wire::Format;

scoped_tls::scoped_thread_local! {
    /// The binding the result being decoded came on.
    static BOUND: Arc<Bound>
}

thread_local! {
    /// The method and format of the result being decoded, set with [`BOUND`].
    static CALL: Cell<(usize, Format)> = const { Cell::new((0, Format::MessagePack)) };
}

/// Runs `decode`, the decoding of the result of `method` called on `bound` in `format`, so
/// that a stream in that result knows where to pull its items from.
pub(crate) fn receiving<R>(
    bound: &Arc<Bound>,
    method: usize,
    format: Format,
    decode: impl FnOnce() -> R,
) -> R {
    /// Puts back the call of an outer decoding, even if decoding unwinds.
    struct Restore((usize, Format));
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL.set(self.0);
        }
    }
    let _restore = Restore(CALL.replace((method, format)));
    BOUND.set(bound, decode)
}

/// The binding, method and format of the result being decoded on this thread, if one is.
pub(crate) fn origin() -> Option<(Arc<Bound>, usize, Format)> {
    if !BOUND.is_set() {
        return None;
    }
    let bound = BOUND.with(Arc::clone);
    let (method, format) = CALL.get();
    Some((bound, method, format))
}
