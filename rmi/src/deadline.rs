//! Deadlines that flow through nested calls: a method that calls another object while serving
//! a call gives that call no more time than its own caller has left.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    /// The deadline of the call this task serves.
    static SERVING_UNTIL: Instant;
}

/// Runs `call` with `deadline` as the deadline of the call being served.
pub(crate) fn scope<F: Future>(deadline: Instant, call: F) -> impl Future<Output = F::Output> {
    SERVING_UNTIL.scope(deadline, call)
}

/// The deadline of a call with `timeout`, and how long that gives it: the sooner of now +
/// `timeout` and the deadline of the call being served, if any.
pub(crate) fn for_call(timeout: Duration) -> (Instant, Duration) {
    let now = Instant::now();
    let own = now + timeout;
    match SERVING_UNTIL.try_with(|until| *until) {
        Ok(inherited) if inherited < own => (inherited, inherited.saturating_duration_since(now)),
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
    SERVING_UNTIL
        .try_with(|until| until.saturating_duration_since(Instant::now()))
        .ok()
}
