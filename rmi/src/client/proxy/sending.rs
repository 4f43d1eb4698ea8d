//! The streams in the arguments being encoded: a `Stream<T>` among a call's arguments is an
//! upload, whose items the proxy pushes to the daemon once the call is sent. A thread-local,
//! set only while a proxy encodes a call's arguments (`ProxyCore::call`, `call_oneway`).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::Bound;

/// Pushes one upload's items to the daemon that `Bound` names, within the call's timeout;
/// made by the stream when it is encoded (`stream::push`).
pub(crate) type Upload =
    Box<dyn FnOnce(Arc<Bound>, usize, Duration) -> BoxFuture<'static, ()> + Send>;

thread_local! {
    /// `Some` while arguments are encoded: the uploads found in them.
    static UPLOADS: RefCell<Option<Vec<Upload>>> = const { RefCell::new(None) };
}

/// Runs `encode`, the encoding of a call's arguments, and returns its result with the uploads
/// that streams among the arguments registered.
pub(crate) fn sending<R>(encode: impl FnOnce() -> R) -> (R, Vec<Upload>) {
    /// Puts back what was there (a call's arguments encoded inside another's: a stream's
    /// `Serialize` making a call), even if encoding unwinds.
    struct Restore(Option<Vec<Upload>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            UPLOADS.set(self.0.take());
        }
    }
    let _restore = Restore(UPLOADS.replace(Some(Vec::new())));
    let encoded = encode();
    let uploads = UPLOADS.with_borrow_mut(Option::take).unwrap_or_default();
    (encoded, uploads)
}

/// Registers the upload `make` builds from `items` with the arguments being encoded on this
/// thread; gives `items` back if none are (the stream is not an argument of a call).
pub(crate) fn register<I>(items: I, make: impl FnOnce(I) -> Upload) -> Result<(), I> {
    UPLOADS.with_borrow_mut(|uploads| match uploads {
        Some(uploads) => {
            uploads.push(make(items));
            Ok(())
        }
        None => Err(items),
    })
}
