//! Tasks, as Celery runs them, over rmi and its name server instead of a message broker.
//!
//! Workers ([`WorkerServer`]) register under `tasks.worker.<id>` with the metadata tag
//! [`WORKER_TAG`] and a lease. A [`TaskClient`] finds the live workers through the name server,
//! sends each task to the next one in turn, and hands back an [`AsyncResult`] at once (Celery's
//! `add.delay(5, 5)`), whose [`get`](AsyncResult::get) waits for the result. A worker that dies
//! with a task in hand makes the client send the task to another; after
//! [`MAX_ATTEMPTS`] workers failed, the task is reported lost. No result is silently dropped:
//! each `AsyncResult` gets exactly one answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The metadata tag every worker registers with.
pub const WORKER_TAG: &str = "tasks.worker";

/// How many workers a task is tried on before it is reported lost.
pub const MAX_ATTEMPTS: usize = 5;

/// How long a client trusts its list of workers before asking the name server again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A task as it travels to a worker: arguments and result are JSON text, so that any task's
/// values fit one method.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// Unique, as a UUID.
    pub id: String,
    /// Which task: `add`, …
    pub name: String,
    /// The arguments, a JSON array.
    pub args: String,
}

/// Why a worker did not run a task to a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TaskError {
    /// The worker has no task of that name.
    #[error("no task is named '{name}'; the workers know: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names the worker knows, comma-separated.
        known: String,
    },
    /// The arguments do not fit the task.
    #[error("the arguments of {name} do not fit: {reason}")]
    BadArguments {
        /// The task.
        name: String,
        /// What the decoder said.
        reason: String,
    },
    /// The task ran and failed.
    #[error("{name} failed: {reason}")]
    Failed {
        /// The task.
        name: String,
        /// Its error.
        reason: String,
    },
}

/// A worker: runs tasks.
#[rmi::expose]
pub trait Worker {
    /// Runs `task` and returns its result as JSON text.
    async fn run(&self, task: Task) -> Result<String, TaskError>;
    /// The names of the tasks this worker runs.
    async fn known(&self) -> Vec<String>;
}

type TaskFn = Box<dyn Fn(Value) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

/// The tasks a worker runs, by name.
#[derive(Default)]
pub struct Registry {
    tasks: BTreeMap<String, TaskFn>,
}

impl Registry {
    /// Adds the task `name`: `run` takes the arguments as a tuple (from the JSON array).
    pub fn task<A, R, F, Fut>(mut self, name: &str, run: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, String>> + Send + 'static,
    {
        let run = Arc::new(run);
        let task_name = name.to_owned();
        let erased: TaskFn = Box::new(move |args: Value| {
            let (run, name) = (run.clone(), task_name.clone());
            Box::pin(async move {
                let args: A =
                    serde_json::from_value(args).map_err(|e| TaskError::BadArguments {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?;
                let failed = |reason: String| TaskError::Failed {
                    name: name.clone(),
                    reason,
                };
                let result = run(args).await.map_err(failed)?;
                serde_json::to_value(result).map_err(|e| failed(e.to_string()))
            })
        });
        self.tasks.insert(name.to_owned(), erased);
        self
    }

    /// The demo's tasks: `add(x, y)`, `mul(x, y)`, `sleep(ms)` (returns `ms` after that
    /// long) and `fail(message)` (always fails).
    pub fn standard() -> Self {
        Registry::default()
            .task("add", |(x, y): (i64, i64)| async move {
                x.checked_add(y)
                    .ok_or_else(|| format!("{x} + {y} overflows"))
            })
            .task("mul", |(x, y): (i64, i64)| async move {
                x.checked_mul(y)
                    .ok_or_else(|| format!("{x} * {y} overflows"))
            })
            .task("sleep", |(ms,): (u64,)| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(ms)
            })
            .task("fail", |(message,): (String,)| async move {
                Err::<(), _>(message)
            })
    }

    /// The names of its tasks, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }
}

/// A worker object: runs the tasks of its registry and logs each as Celery does.
pub struct WorkerServer {
    registry: Registry,
    /// Where the log lines go (the tour prefixes them; the worker prints them).
    say: Box<dyn Fn(String) + Send + Sync>,
}

impl WorkerServer {
    /// A worker running the tasks of `registry`, printing its log.
    pub fn new(registry: Registry) -> Self {
        WorkerServer {
            registry,
            say: Box::new(|line| println!("{line}")),
        }
    }

    /// This worker, handing its log lines to `say`.
    pub fn with_say(mut self, say: impl Fn(String) + Send + Sync + 'static) -> Self {
        self.say = Box::new(say);
        self
    }
}

impl Worker for WorkerServer {
    async fn run(&self, task: Task) -> Result<String, TaskError> {
        let Some(run) = self.registry.tasks.get(&task.name) else {
            return Err(TaskError::Unknown {
                name: task.name,
                known: self.registry.names().join(", "),
            });
        };
        let args: Value =
            serde_json::from_str(&task.args).map_err(|e| TaskError::BadArguments {
                name: task.name.clone(),
                reason: e.to_string(),
            })?;
        (self.say)(format!("Task {}[{}] received", task.name, task.id));
        let started = Instant::now();
        match run(args).await {
            Ok(result) => {
                let secs = started.elapsed().as_secs_f64();
                (self.say)(format!(
                    "Task {}[{}] succeeded in {secs:.6}s: {result}",
                    task.name, task.id
                ));
                Ok(result.to_string())
            }
            Err(error) => {
                (self.say)(format!("Task {}[{}] raised: {error}", task.name, task.id));
                Err(error)
            }
        }
    }

    async fn known(&self) -> Vec<String> {
        self.registry.names()
    }
}

/// Why a task has no result.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    /// The task itself failed, or could not start.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// No worker is registered.
    #[error("no worker is registered with the tag {WORKER_TAG}; start one with `cargo run --example task_worker`")]
    NoWorkers,
    /// The task was sent to workers that all failed (died, went away) before answering.
    #[error("task {id} was not run: {attempts} workers failed, the last with: {last}")]
    Lost {
        /// The task's id.
        id: String,
        /// How many workers were tried.
        attempts: usize,
        /// The last worker's error.
        last: rmi::Error,
    },
    /// The name server could not be asked for workers.
    #[error(transparent)]
    Rmi(#[from] rmi::Error),
    /// The name server refused to list the workers.
    #[error("the name server refused to list the workers: {0}")]
    NameServer(#[from] rmi::NsError),
    /// The result is not JSON (a worker of another version?).
    #[error("the result of task {id} is not JSON: {reason}")]
    BadResult {
        /// The task's id.
        id: String,
        /// What the decoder said.
        reason: String,
    },
    /// The task's `AsyncResult` lost its sender (the client's runtime stopped).
    #[error("task {id} was abandoned: its client stopped")]
    Abandoned {
        /// The task's id.
        id: String,
    },
}

/// Sends tasks to the live workers.
#[derive(Clone)]
pub struct TaskClient {
    inner: Arc<Inner>,
}

struct Inner {
    ns: rmi::NameServerProxy,
    pool: tokio::sync::Mutex<Pool>,
}

/// The workers known, and which is next.
#[derive(Default)]
struct Pool {
    workers: Vec<WorkerProxy>,
    next: usize,
    refreshed: Option<Instant>,
}

/// A task sent: its id now, its result when [`get`](AsyncResult::get) is awaited.
pub struct AsyncResult {
    id: String,
    result: tokio::sync::oneshot::Receiver<Result<Value, TaskFailure>>,
}

impl AsyncResult {
    /// The task's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the task's result.
    pub async fn get(self) -> Result<Value, TaskFailure> {
        match self.result.await {
            Ok(result) => result,
            Err(_) => Err(TaskFailure::Abandoned { id: self.id }),
        }
    }
}

impl TaskClient {
    /// A client finding its workers through the name server `ns`.
    pub fn new(ns: rmi::NameServerProxy) -> Self {
        TaskClient {
            inner: Arc::new(Inner {
                ns,
                pool: tokio::sync::Mutex::new(Pool::default()),
            }),
        }
    }

    /// A client of the name server that [`rmi::locate_ns`] finds.
    pub async fn connect() -> Result<Self, rmi::Error> {
        Ok(TaskClient::new(rmi::locate_ns().await?))
    }

    /// Sends the task `name` with `args` (a tuple, or anything that encodes as a JSON array)
    /// and returns at once; the task runs on a worker meanwhile.
    pub fn delay(&self, name: &str, args: impl Serialize) -> AsyncResult {
        let id = new_task_id();
        let (answer, result) = tokio::sync::oneshot::channel();
        let args = serde_json::to_string(&args).unwrap_or_else(|_| "null".into());
        let task = Task {
            id: id.clone(),
            name: name.to_owned(),
            args,
        };
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _ = answer.send(inner.run(task).await);
        });
        AsyncResult { id, result }
    }
}

impl Inner {
    /// Runs `task` on a worker, trying another when one goes away.
    async fn run(&self, task: Task) -> Result<Value, TaskFailure> {
        let mut attempts = 0;
        loop {
            let worker = self.next_worker(attempts > 0).await?;
            attempts += 1;
            let last = match worker.run(task.clone()).await {
                Ok(Ok(result)) => {
                    return serde_json::from_str(&result).map_err(|e| TaskFailure::BadResult {
                        id: task.id,
                        reason: e.to_string(),
                    })
                }
                Ok(Err(failed)) => return Err(TaskFailure::Task(failed)),
                Err(e) if worker_gone(&e) => e,
                // A worker that did not answer in time may still be running the task: trying
                // another could run it twice, so the task is reported lost instead.
                Err(e) => {
                    return Err(TaskFailure::Lost {
                        id: task.id,
                        attempts,
                        last: e,
                    })
                }
            };
            tracing::warn!(task = %task.id, worker = %worker.uri(), "worker failed: {last}");
            self.forget(&worker).await;
            if attempts == MAX_ATTEMPTS {
                return Err(TaskFailure::Lost {
                    id: task.id,
                    attempts,
                    last,
                });
            }
        }
    }

    /// The next worker in turn, asking the name server again when the list is old or
    /// `refresh` says a worker just failed.
    async fn next_worker(&self, refresh: bool) -> Result<WorkerProxy, TaskFailure> {
        let mut pool = self.pool.lock().await;
        let stale = pool
            .refreshed
            .is_none_or(|at| at.elapsed() >= REFRESH_EVERY);
        if refresh || stale || pool.workers.is_empty() {
            self.refresh(&mut pool).await?;
        }
        if pool.workers.is_empty() {
            return Err(TaskFailure::NoWorkers);
        }
        pool.next = (pool.next + 1) % pool.workers.len();
        Ok(pool.workers[pool.next].clone())
    }

    /// Keeps the workers still registered, and connects to the new ones.
    async fn refresh(&self, pool: &mut Pool) -> Result<(), TaskFailure> {
        let tags = [WORKER_TAG.to_owned()].into();
        let registered = self.ns.lookup_all(tags).await??;
        let mut workers = Vec::with_capacity(registered.len());
        for registration in registered.into_values() {
            let known = pool.workers.iter().find(|w| w.uri() == registration.uri);
            match known {
                Some(worker) => workers.push(worker.clone()),
                // A registered worker that cannot be reached is dead, or about to be: its
                // lease will end.
                None => match WorkerProxy::connect(&registration.uri).await {
                    Ok(worker) => workers.push(worker.with_timeout(Duration::from_secs(3600))),
                    Err(e) => tracing::debug!(uri = %registration.uri, "skipping worker: {e}"),
                },
            }
        }
        if pool.refreshed.is_none() && !workers.is_empty() {
            // A new client starts at a random worker, so that one-shot clients spread too.
            pool.next = rand::random_range(0..workers.len());
        }
        pool.workers = workers;
        pool.refreshed = Some(Instant::now());
        Ok(())
    }

    async fn forget(&self, worker: &WorkerProxy) {
        let mut pool = self.pool.lock().await;
        pool.workers.retain(|w| w.uri() != worker.uri());
    }
}

/// Whether `error` means the worker is gone (and the task did not run to a result there).
fn worker_gone(error: &rmi::Error) -> bool {
    matches!(
        error.kind(),
        rmi::ErrorKind::Connect { .. }
            | rmi::ErrorKind::Disconnected { .. }
            | rmi::ErrorKind::UnknownObject { .. }
    )
}

/// A random UUID (version 4), as Celery's task ids.
pub fn new_task_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_version_4_uuids() {
        let id = new_task_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, new_task_id());
    }

    #[tokio::test]
    async fn a_worker_runs_known_tasks_and_says_why_not_others() {
        let worker = WorkerServer::new(Registry::standard());
        let task = |name: &str, args: &str| Task {
            id: new_task_id(),
            name: name.into(),
            args: args.into(),
        };
        assert_eq!(worker.run(task("add", "[5, 5]")).await.unwrap(), "10");
        assert!(matches!(
            worker.run(task("nope", "[]")).await,
            Err(TaskError::Unknown { known, .. }) if known == "add, fail, mul, sleep"
        ));
        assert!(matches!(
            worker.run(task("add", "[\"5\", 5]")).await,
            Err(TaskError::BadArguments { .. })
        ));
        assert!(matches!(
            worker.run(task("fail", "[\"no\"]")).await,
            Err(TaskError::Failed { reason, .. }) if reason == "no"
        ));
    }
}
