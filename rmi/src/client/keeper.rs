//! One keeper per runtime: a task that fails the calls whose deadline passed, on every
//! connection made on that runtime, and closes those connections when the runtime shuts down.
//! It fails deadlines only on a multi-threaded runtime: on a current-thread one, which runs
//! tasks only while a thread blocks on it, each call keeps a timer of its own.
//!
//! A timer per call, or a task per connection, each cost a wake-up of another thread: tokio
//! wakes the thread that drives its timers whenever a timer is registered that comes before
//! the one it sleeps until, and a task spawned or aborted from outside a worker wakes a
//! worker. One task per runtime, looking at its connections only when a deadline comes (or
//! now and then while calls come and go), costs a connection nothing but a place in a map.
//!
//! Lock order: a connection's own lock, then the keeper's, never the other way round (the
//! keeper lets go of its lock before it looks at a connection).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;

/// What the keeper looks after: one connection.
pub(crate) trait Kept: Send + Sync {
    /// Fails the calls whose deadline is past at `now`; when this connection next needs a
    /// look (`None`: not until a call asks).
    fn expire(&self, now: Instant) -> Option<Instant>;
    /// The runtime shuts down: the connection closes, so that the daemon sees the client gone
    /// although the connection itself was leaked (as with tarpc's client, whose connection
    /// lives in a task).
    fn close(&self);
}

/// How long after finding no call waiting on a connection the keeper looks at it once more,
/// before it waits until told: calls that come and go meanwhile need not tell it.
pub(crate) const IDLE_LOOK: Duration = Duration::from_secs(1);

/// A connection's place in its runtime's keeper; dropping it lets go of the place.
pub(crate) struct KeeperSlot {
    keeper: Arc<Keeper>,
    key: u64,
}

struct Keeper {
    state: Mutex<State>,
    /// Tells the keeper task it should wake sooner than it sleeps until.
    told: Notify,
    /// Whether the keeper fails calls at their deadline: only on a multi-threaded runtime,
    /// which runs it whoever calls. A current-thread one runs its tasks only while a thread
    /// blocks on it, and a call made from elsewhere meanwhile would wait past its deadline;
    /// there, each call keeps a timer of its own.
    keeps_deadlines: bool,
}

struct State {
    kept: FxHashMap<u64, Weak<dyn Kept>>,
    next_key: u64,
    /// When the keeper task wakes next; `None`: when told.
    wakes: Option<Instant>,
    /// Set while the keeper looks at its connections: what is asked meanwhile goes to
    /// `asked`, and counts once the look ends.
    looking: bool,
    asked: Option<Instant>,
    /// Cleared when the keeper task is dropped (its runtime shut down).
    alive: bool,
}

/// The keepers of the runtimes running now. Runtime ids are unique among running runtimes
/// only: an entry whose keeper is gone belongs to a runtime that ended.
static KEEPERS: LazyLock<Mutex<HashMap<tokio::runtime::Id, Weak<Keeper>>>> =
    LazyLock::new(Mutex::default);

impl KeeperSlot {
    /// Gives `kept` a place in the current runtime's keeper (starting it if need be): the
    /// place, and when the keeper looks at it at the latest (`None`: the keeper keeps no
    /// deadlines, on a current-thread runtime). `None` outside a runtime, or when it shuts
    /// down.
    ///
    /// `kept` must be alive (a look skips what it cannot upgrade), and the caller should hold
    /// its lock until it has stored the time returned: a look that finds it then waits for
    /// that lock, and its `expire` sets the time anew.
    pub(crate) fn new(kept: Weak<dyn Kept>) -> Option<(KeeperSlot, Option<Instant>)> {
        let runtime = Handle::try_current().ok()?;
        let keeper = Keeper::of(&runtime)?;
        let mut state = keeper.lock();
        if !state.alive {
            return None;
        }
        let key = state.next_key;
        state.next_key += 1;
        state.kept.insert(key, kept);
        let looks_by = keeper.keeps_deadlines.then(|| match state.wakes {
            Some(wakes) if !state.looking => wakes,
            _ => {
                let at = Instant::now() + IDLE_LOOK;
                keeper.ask_locked(&mut state, at);
                at
            }
        });
        drop(state);
        Some((KeeperSlot { keeper, key }, looks_by))
    }

    /// Whether the keeper fails this connection's calls at their deadline.
    pub(crate) fn keeps_deadlines(&self) -> bool {
        self.keeper.keeps_deadlines
    }

    /// Asks the keeper to look at this connection at `at`, sooner than it would.
    pub(crate) fn ask(&self, at: Instant) {
        let mut state = self.keeper.lock();
        self.keeper.ask_locked(&mut state, at);
    }
}

impl Drop for KeeperSlot {
    fn drop(&mut self) {
        self.keeper.lock().kept.remove(&self.key);
    }
}

impl Keeper {
    /// The keeper of `runtime`, started now if it has none.
    fn of(runtime: &Handle) -> Option<Arc<Keeper>> {
        let id = runtime.id();
        let mut keepers = KEEPERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(keeper) = keepers.get(&id).and_then(Weak::upgrade) {
            if keeper.lock().alive {
                return Some(keeper);
            }
        }
        let keeper = Arc::new(Keeper {
            state: Mutex::new(State {
                kept: FxHashMap::default(),
                next_key: 0,
                wakes: None,
                looking: false,
                asked: None,
                alive: true,
            }),
            told: Notify::new(),
            keeps_deadlines: runtime.runtime_flavor() == RuntimeFlavor::MultiThread,
        });
        keepers.insert(id, Arc::downgrade(&keeper));
        drop(keepers);
        // Made outside the task: dropped with it even if the runtime drops it unpolled
        // (shutting down), which clears `alive` and the map's entry; hence spawned after
        // letting go of the map.
        let closing = CloseAllOnDrop(keeper.clone());
        runtime.spawn(async move { closing.keep().await });
        Some(keeper)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is a few assignments that cannot panic halfway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the keeper wakes by `at`.
    fn ask_locked(&self, state: &mut State, at: Instant) {
        if state.looking {
            state.asked = Some(state.asked.map_or(at, |asked| asked.min(at)));
        } else if state.wakes.is_none_or(|wakes| at < wakes) {
            state.wakes = Some(at);
            self.told.notify_one();
        }
    }

    /// The connections still there, for a look; from now, asks wait for its end.
    fn begin_look(&self) -> Vec<Arc<dyn Kept>> {
        let mut state = self.lock();
        state.looking = true;
        state.kept.values().filter_map(Weak::upgrade).collect()
    }

    /// Ends a look that found `soonest` as the next time a connection needs one.
    fn end_look(&self, soonest: Option<Instant>) {
        let mut state = self.lock();
        state.looking = false;
        state.wakes = soonest.into_iter().chain(state.asked.take()).min();
    }
}

/// The keeper task's hold on its keeper: when the runtime drops the task, every connection
/// made on that runtime closes.
struct CloseAllOnDrop(Arc<Keeper>);

impl CloseAllOnDrop {
    /// Sleeps until the next look is due, or until told of a sooner one; looks; again.
    async fn keep(self) {
        let keeper = &self.0;
        loop {
            // An ask made after `wakes` is read leaves a permit: the wait ends at once.
            let told = keeper.told.notified();
            let wakes = keeper.lock().wakes;
            match wakes {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = told => {}
                    }
                }
                None => told.await,
            }
            let kept = keeper.begin_look();
            let now = Instant::now();
            let soonest = kept.iter().filter_map(|k| k.expire(now)).min();
            // Dropped before the keeper's lock is taken again: the last hold on a connection
            // lets go of its place, which takes that lock.
            drop(kept);
            keeper.end_look(soonest);
        }
    }
}

impl Drop for CloseAllOnDrop {
    fn drop(&mut self) {
        let kept: Vec<Arc<dyn Kept>> = {
            let mut state = self.0.lock();
            state.alive = false;
            state.kept.values().filter_map(Weak::upgrade).collect()
        };
        kept.iter().for_each(|k| k.close());
        drop(kept);
        let mut keepers = KEEPERS.lock().unwrap_or_else(|e| e.into_inner());
        keepers.retain(|_, keeper| !std::ptr::eq(keeper.as_ptr(), Arc::as_ptr(&self.0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A connection whose calls all expire at `due`.
    struct Fake {
        due: Mutex<Option<Instant>>,
        looks: AtomicUsize,
        closed: AtomicBool,
    }

    impl Kept for Fake {
        fn expire(&self, now: Instant) -> Option<Instant> {
            self.looks.fetch_add(1, Ordering::SeqCst);
            let mut due = self.due.lock().unwrap();
            if due.is_some_and(|due| due <= now) {
                *due = None;
            }
            *due
        }

        fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    fn fake() -> Arc<Fake> {
        Arc::new(Fake {
            due: Mutex::new(None),
            looks: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    fn register(fake: &Arc<Fake>) -> (KeeperSlot, Option<Instant>) {
        let weak: Weak<Fake> = Arc::downgrade(fake);
        KeeperSlot::new(weak).expect("inside a runtime")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_of_one_runtime_share_its_keeper_and_an_ask_wakes_it() {
        let (a, b) = (fake(), fake());
        let (first, looks_by) = register(&a);
        let (second, _) = register(&b);
        assert!(Arc::ptr_eq(&first.keeper, &second.keeper));
        assert!(first.keeps_deadlines());
        let looks_by = looks_by.expect("a multi-threaded runtime's keeper keeps deadlines");
        assert!(looks_by <= Instant::now() + IDLE_LOOK);
        let soon = Instant::now() + Duration::from_millis(20);
        *b.due.lock().unwrap() = Some(soon);
        second.ask(soon);
        let started = Instant::now();
        while b.due.lock().unwrap().is_some() {
            assert!(started.elapsed() < Duration::from_secs(5), "never looked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(second);
        assert_eq!(first.keeper.lock().kept.len(), 1, "a place let go of");
    }

    #[test]
    fn a_runtime_shutting_down_closes_its_connections_and_the_next_gets_a_new_keeper() {
        let connection = fake();
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let registration = runtime.block_on(async {
                let (registration, looks_by) = register(&connection);
                assert!(
                    looks_by.is_none(),
                    "a current-thread runtime's calls keep timers"
                );
                assert!(!registration.keeps_deadlines());
                tokio::task::yield_now().await;
                registration
            });
            connection.closed.store(false, Ordering::SeqCst);
            drop(runtime);
            assert!(connection.closed.load(Ordering::SeqCst));
            assert!(!registration.keeper.lock().alive);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_registered_during_a_look_is_looked_at_by_the_time_given() {
        /// A connection whose first look lasts until the test lets it go, holding the keeper
        /// in it.
        struct Slow(AtomicUsize, Mutex<Option<std::sync::mpsc::Receiver<()>>>);
        impl Kept for Slow {
            fn expire(&self, _: Instant) -> Option<Instant> {
                self.0.fetch_add(1, Ordering::SeqCst);
                if let Some(release) = self.1.lock().unwrap().take() {
                    let _ = release.recv_timeout(Duration::from_secs(10));
                }
                None
            }
            fn close(&self) {}
        }
        let (release, released) = std::sync::mpsc::channel();
        let slow = Arc::new(Slow(AtomicUsize::new(0), Mutex::new(Some(released))));
        let slow_weak: Weak<Slow> = Arc::downgrade(&slow);
        let (slow_place, _) = KeeperSlot::new(slow_weak).unwrap();
        slow_place.ask(Instant::now());
        let started = Instant::now();
        while slow.0.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < Duration::from_secs(5), "never looked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The keeper is in its look: a new connection is told a time, and asked for.
        let late = fake();
        let (_late_place, looks_by) = register(&late);
        assert!(
            slow_place.keeper.lock().looking,
            "registered during the look"
        );
        let looks_by = looks_by.unwrap();
        release.send(()).unwrap();
        while late.looks.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < looks_by + Duration::from_secs(1),
                "not looked at by the time given"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn a_runtime_already_shut_down_gives_no_keeper() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        // The runtime drops the keeper task as it is spawned: in a thread, so that a
        // deadlock fails the test rather than hang it.
        let (done, registered) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _inside = handle.enter();
            let connection = fake();
            let weak: Weak<Fake> = Arc::downgrade(&connection);
            let _ = done.send(KeeperSlot::new(weak).is_none());
        });
        let none = registered
            .recv_timeout(Duration::from_secs(10))
            .expect("registering deadlocked");
        assert!(none, "a runtime shut down has no keeper");
    }
}
