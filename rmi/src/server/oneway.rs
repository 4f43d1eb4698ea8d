//! Where the failures of `#[oneway]` calls go: nobody waits for their result, so the daemon
//! counts them ([`Daemon::oneway_failures`](crate::Daemon::oneway_failures)), hands each to
//! the hook set with [`DaemonBuilder::on_oneway_failure`](crate::DaemonBuilder::on_oneway_failure),
//! and logs it (a `tracing` warning, at most one line a second).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::describe::TraitDescriptor;
use crate::wire::Fault;
use crate::{Error, ErrorKind};

/// A `#[oneway]` call that failed on the daemon: its method panicked, or its arguments did
/// not decode. Its caller had its `Ok(())` already, so this is the only trace of it besides
/// the log.
///
/// ```
/// # #[rmi::expose] pub trait Log { #[oneway] async fn line(&self, text: String); }
/// # struct L; impl Log for L { async fn line(&self, text: String) { panic!("no room for {text}") } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), rmi::Error> {
/// let (tx, mut failures) = tokio::sync::mpsc::unbounded_channel();
/// let daemon = rmi::Daemon::builder()
///     .on_oneway_failure(move |failure: &rmi::OnewayFailure| {
///         let _ = tx.send(failure.to_string());
///     })
///     .bind("127.0.0.1:0")
///     .await?;
/// let uri = daemon.register(L)?;
/// daemon.spawn();
/// LogProxy::connect(&uri).await?.line("x".into()).await?; // Ok: sent
/// let failure = failures.recv().await.unwrap();
/// assert!(failure.contains("'line'") && failure.contains("no room for x"), "{failure}");
/// assert_eq!(daemon.oneway_failures(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct OnewayFailure {
    /// The URI of the object called.
    pub uri: String,
    /// The method called.
    pub method: String,
    /// What went wrong: [`ErrorKind::Panicked`], or [`ErrorKind::Codec`] / [`ErrorKind::BadArgument`] for
    /// arguments that did not decode.
    pub error: Error,
}

impl std::fmt::Display for OnewayFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oneway call failed: {}", self.error)
    }
}

/// What a daemon does with its oneway failures: counts them, and calls its hook.
#[derive(Default)]
pub(crate) struct OnewayWatch {
    failures: AtomicU64,
    hook: Option<Hook>,
}

type Hook = Box<dyn Fn(&OnewayFailure) + Send + Sync>;

impl std::fmt::Debug for OnewayWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnewayWatch")
            .field("failures", &self.failures())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl OnewayWatch {
    pub(crate) fn new(hook: Option<Hook>) -> Self {
        OnewayWatch {
            failures: AtomicU64::new(0),
            hook,
        }
    }

    /// How many oneway calls have failed.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Counts, logs and hands `failure` to the hook. A hook that panics is logged too: it
    /// runs in the failed call's own task, which nobody else shares.
    fn report(&self, failure: OnewayFailure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        crate::throttle::warn_throttled!(uri = %failure.uri, "{failure}");
        if let Some(hook) = &self.hook {
            if std::panic::catch_unwind(AssertUnwindSafe(|| hook(&failure))).is_err() {
                crate::throttle::warn_throttled!("the daemon's on_oneway_failure hook panicked");
            }
        }
    }
}

/// What a oneway call carries to report its failure: where to, and what it called.
#[derive(Debug)]
pub(crate) struct OnewayReport {
    pub(crate) watch: Arc<OnewayWatch>,
    pub(crate) uri: Option<Arc<String>>,
    pub(crate) descriptor: &'static TraitDescriptor,
}

impl OnewayReport {
    /// The report for a call of `method` on an object of `descriptor`, if that method is
    /// `#[oneway]`; other calls have their caller to report to.
    pub(crate) fn for_call(
        watch: &Arc<OnewayWatch>,
        uri: &Option<Arc<String>>,
        descriptor: &'static TraitDescriptor,
        method: u32,
    ) -> Option<Self> {
        let oneway = descriptor.methods.get(method as usize)?.oneway;
        oneway.then(|| OnewayReport {
            watch: Arc::clone(watch),
            uri: uri.clone(),
            descriptor,
        })
    }

    /// Reports that the call of `method` failed with `fault`.
    pub(crate) fn failed(self, method: u32, fault: Fault) {
        let uri = self
            .uri
            .as_deref()
            .map_or("(an object)", String::as_str)
            .to_owned();
        let descriptor = self.descriptor.methods.get(method as usize);
        let method = descriptor.map_or_else(|| format!("#{method}"), |m| m.name.to_string());
        let error = error_of(&uri, &method, descriptor, fault);
        self.watch.report(OnewayFailure { uri, method, error });
    }
}

/// The error a caller would have had for `fault`.
fn error_of(
    uri: &str,
    method: &str,
    descriptor: Option<&crate::MethodDescriptor>,
    fault: Fault,
) -> Error {
    let (uri, method) = (uri.to_owned(), method.to_owned());
    match fault {
        Fault::Panicked(message) => Error::new(ErrorKind::Panicked {
            uri,
            method,
            message,
        }),
        Fault::BadArgument { index, message } => Error::new(ErrorKind::BadArgument {
            uri,
            method,
            param: descriptor
                .and_then(|m| m.params.get(index as usize))
                .map_or_else(|| format!("#{index}"), ToString::to_string),
            message,
        }),
        Fault::BadArguments(message) => Error::new(ErrorKind::Codec {
            uri,
            method,
            action: "decode (on the server) the arguments of".into(),
            message,
        }),
        other => Error::new(ErrorKind::Codec {
            uri,
            method,
            action: "run (on the server)".into(),
            message: format!("{other:?}"),
        }),
    }
}
