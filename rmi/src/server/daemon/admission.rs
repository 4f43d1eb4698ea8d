//! Who may connect: the daemon's caps on connections, in all and from one address, and who
//! makes room when one is reached.
//!
//! A connection that has not yet sent a complete first request (it is silent, or sends it
//! slowly) is *unproven*. When a cap is reached, a new connection takes the place of the
//! oldest unproven connection that counts against that cap, rather than being refused: silent
//! or slow connections from a shared address (a NAT, an office, a Kubernetes node) cannot
//! lock out the clients behind the same address. A newcomer is refused only when every
//! connection it would count against has proven itself.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The connections a daemon serves, counted against its caps.
#[derive(Default)]
pub(crate) struct Admission {
    counts: Mutex<Counts>,
    /// How many are counted now, readable without the lock.
    open: AtomicUsize,
}

#[derive(Default)]
struct Counts {
    all: usize,
    by_address: HashMap<IpAddr, Address>,
    /// Every address's unproven connections, oldest first. Entries that proved themselves
    /// or closed are skipped when met, and swept out as the queue grows.
    unproven: VecDeque<Arc<Slot>>,
}

#[derive(Default)]
struct Address {
    count: usize,
    /// This address's unproven connections, oldest first (as `Counts::unproven`).
    unproven: VecDeque<Arc<Slot>>,
}

/// One connection's place among the counted.
pub(crate) struct Slot {
    peer: IpAddr,
    state: AtomicU8,
    evicted: Notify,
}

const UNPROVEN: u8 = 0;
const PROVEN: u8 = 1;
const EVICTED: u8 = 2;
const CLOSED: u8 = 3;

/// Why a connection was not admitted, in words for the log, and which cap it met: the
/// daemon's (`"full"`) or its address's (`"per_address"`), as the metric of refusals says.
pub(crate) struct Full(pub(crate) String, pub(crate) &'static str);

impl Slot {
    /// The connection sent a complete request: from now on it keeps its place.
    pub(crate) fn prove(&self) {
        let _ = self
            .state
            .compare_exchange(UNPROVEN, PROVEN, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Resolves once a newcomer took this connection's place: its task ends it then.
    pub(crate) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Takes the place of this connection if it is still unproven.
    fn evict(&self) -> bool {
        self.state
            .compare_exchange(UNPROVEN, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn is_unproven(&self) -> bool {
        self.state.load(Ordering::Acquire) == UNPROVEN
    }
}

impl Admission {
    /// How many connections are counted now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a connection from `peer`, making room if a cap is reached (`max_all` in all,
    /// `max_per_address` from one address) by evicting the oldest unproven connection that
    /// counts against it; else why not. Call [`close`](Admission::close) with the slot when
    /// the connection ends.
    pub(crate) fn admit(
        &self,
        peer: IpAddr,
        max_all: usize,
        max_per_address: usize,
    ) -> Result<Arc<Slot>, Full> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = None;
        let from_peer = counts.by_address.get_mut(&peer).map_or(0, |a| a.count);
        if from_peer >= max_per_address {
            let address = counts.by_address.get_mut(&peer).expect("counted");
            let Some(victim) = evict_oldest(&mut address.unproven) else {
                return Err(Full(
                    format!(
                        "{max_per_address} connections from {peer} served already, each of which sent a request, the most allowed from one address"
                    ),
                    "per_address",
                ));
            };
            counts.release(victim.peer);
            evicted = Some(victim);
        } else if counts.all >= max_all {
            let Some(victim) = evict_oldest(&mut counts.unproven) else {
                return Err(Full(
                    format!(
                        "{max_all} connections served already, each of which sent a request, the most allowed"
                    ),
                    "full",
                ));
            };
            counts.release(victim.peer);
            evicted = Some(victim);
        }
        let slot = Arc::new(Slot {
            peer,
            state: AtomicU8::new(UNPROVEN),
            evicted: Notify::new(),
        });
        counts.all += 1;
        let all = counts.all;
        push_unproven(&mut counts.unproven, slot.clone(), all);
        let address = counts.by_address.entry(peer).or_default();
        address.count += 1;
        let count = address.count;
        push_unproven(&mut address.unproven, slot.clone(), count);
        self.open.store(all, Ordering::Relaxed);
        drop(counts);
        if let Some(victim) = evicted {
            crate::throttle::warn_throttled!(
                peer = %victim.peer,
                "connection closed before its first request: its place was taken by a new connection, as the daemon is at its connection limit"
            );
            victim.evicted.notify_one();
        }
        Ok(slot)
    }

    /// The connection of `slot` ended: it no longer counts (unless it was evicted, when it
    /// stopped counting then).
    pub(crate) fn close(&self, slot: &Slot) {
        if slot.state.swap(CLOSED, Ordering::AcqRel) == EVICTED {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.release(slot.peer);
        self.open.store(counts.all, Ordering::Relaxed);
    }
}

impl Counts {
    /// One connection from `peer` fewer.
    fn release(&mut self, peer: IpAddr) {
        self.all -= 1;
        if let std::collections::hash_map::Entry::Occupied(mut entry) = self.by_address.entry(peer)
        {
            entry.get_mut().count -= 1;
            if entry.get().count == 0 {
                entry.remove();
            }
        }
    }
}

/// Takes the oldest connection in `queue` that is still unproven, dropping the entries of
/// those that proved themselves or closed on the way.
fn evict_oldest(queue: &mut VecDeque<Arc<Slot>>) -> Option<Arc<Slot>> {
    while let Some(slot) = queue.pop_front() {
        if slot.evict() {
            return Some(slot);
        }
    }
    None
}

/// Queues `slot`, and sweeps out what no longer waits once the queue holds more than twice
/// the `counted` connections (so that it stays in proportion, at O(1) a connection).
fn push_unproven(queue: &mut VecDeque<Arc<Slot>>, slot: Arc<Slot>, counted: usize) {
    if queue.len() >= 2 * counted + 8 {
        queue.retain(|s| s.is_unproven());
    }
    queue.push_back(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn admitted(admission: &Admission, peer: IpAddr, all: usize, each: usize) -> Arc<Slot> {
        admission
            .admit(peer, all, each)
            .unwrap_or_else(|Full(why, _)| panic!("refused: {why}"))
    }

    #[test]
    fn a_newcomer_takes_the_place_of_the_oldest_unproven_connection_of_its_address() {
        let admission = Admission::default();
        let first = admitted(&admission, HOME, 10, 2);
        let second = admitted(&admission, HOME, 10, 2);
        let third = admitted(&admission, HOME, 10, 2);
        assert_eq!(first.state.load(Ordering::Acquire), EVICTED);
        assert!(second.is_unproven() && third.is_unproven());
        assert_eq!(admission.open(), 2);
        // The evicted one's end does not count twice.
        admission.close(&first);
        assert_eq!(admission.open(), 2);
    }

    #[test]
    fn proven_connections_keep_their_places_and_the_newcomer_is_refused() {
        let admission = Admission::default();
        let first = admitted(&admission, HOME, 10, 2);
        let second = admitted(&admission, HOME, 10, 2);
        first.prove();
        second.prove();
        let Err(Full(why, "per_address")) = admission.admit(HOME, 10, 2) else {
            panic!("admitted past the cap");
        };
        assert!(why.contains("2 connections from 127.0.0.1"), "{why}");
        // Another address is not concerned.
        admitted(&admission, AWAY, 10, 2);
        admission.close(&first);
        admitted(&admission, HOME, 10, 2);
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn at_the_daemon_wide_cap_the_oldest_unproven_of_any_address_makes_room() {
        let admission = Admission::default();
        let away = admitted(&admission, AWAY, 2, 5);
        let home = admitted(&admission, HOME, 2, 5);
        home.prove();
        let newcomer = admitted(&admission, HOME, 2, 5);
        assert_eq!(away.state.load(Ordering::Acquire), EVICTED);
        assert!(newcomer.is_unproven());
        newcomer.prove();
        assert!(admission.admit(AWAY, 2, 5).is_err());
        admission.close(&home);
        admission.close(&newcomer);
        admission.close(&away);
        assert_eq!(admission.open(), 0);
        let counts = admission.counts.lock().unwrap();
        assert!(counts.by_address.is_empty());
    }

    #[test]
    fn the_queues_stay_in_proportion_to_the_connections() {
        let admission = Admission::default();
        for _ in 0..1000 {
            let slot = admitted(&admission, HOME, 10, 10);
            slot.prove();
            admission.close(&slot);
        }
        let keep = admitted(&admission, HOME, 10, 10);
        let counts = admission.counts.lock().unwrap();
        assert!(counts.unproven.len() <= 16, "{}", counts.unproven.len());
        assert!(keep.is_unproven());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_told() {
        let admission = Admission::default();
        let first = admitted(&admission, HOME, 10, 1);
        let _second = admitted(&admission, HOME, 10, 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), first.evicted())
            .await
            .expect("the evicted connection is woken");
    }
}
