//! What a task serving a call knows of it: its deadline, which calls it makes inherit, and
//! its connection's open streams, where a [`Stream`](crate::Stream) it returns is hosted.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::dispatch::CallInFlight;
use crate::wire::Format;

/// The call a task serves.
pub(crate) struct Serving {
    /// When the caller stops waiting.
    pub(crate) deadline: Instant,
    /// The call's place among its connection's calls in flight (and its open streams).
    pub(crate) connection: CallInFlight,
    /// How the call's arguments and result are encoded (and a returned stream's items).
    pub(crate) format: Format,
}

tokio::task_local! {
    static SERVING: Serving;
}

/// Runs `call` as the serving of `serving`.
pub(crate) fn scope<F: Future>(serving: Serving, call: F) -> impl Future<Output = F::Output> {
    SERVING.scope(serving, call)
}

/// Runs `f` on the call being served, if this task serves one.
pub(crate) fn with<R>(f: impl FnOnce(&Serving) -> R) -> Option<R> {
    SERVING.try_with(f).ok()
}

/// The deadline of a call with `timeout`, and how long that gives it: the sooner of now +
/// `timeout` and the deadline of the call being served, if any.
pub(crate) fn for_call(timeout: Duration) -> (Instant, Duration) {
    let now = Instant::now();
    let own = now + timeout;
    match with(|serving| serving.deadline) {
        Some(inherited) if inherited < own => (inherited, inherited.saturating_duration_since(now)),
        _ => (own, timeout),
    }
}

/// What is left of the deadline of the call this task serves, if it serves one.
///
/// ```
/// // Outside a served call there is no deadline.
/// assert_eq!(rmi::time_left(), None);
/// ```
pub fn time_left() -> Option<Duration> {
    with(|serving| serving.deadline.saturating_duration_since(Instant::now()))
}
