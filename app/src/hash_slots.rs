//! Bounded password hashing (server only).
//!
//! An argon2 verification takes ~19 MiB and tens of milliseconds of a core, on a blocking thread. Unbounded, 300
//! parallel sign-ins pin every core and take gigabytes. So at most `slots` verifications run at once (about the
//! core count); at most `max_waiting` requests wait for a slot, each for at most `wait`; the others are refused at
//! once with 429 and `Retry-After`, which costs nothing.
//!
//! Each slot owns the argon2 working memory it hashes in, allocated once and reused: the process holds at most
//! `slots` × 19 MiB for hashing, whatever the load. (Allocated per verification on ever different blocking threads,
//! glibc kept a freed 19 MiB block in each thread's arena: hundreds of MiB under a flood.) A slot moves into the
//! blocking task that hashes and is freed when the hash is done, even if the request was abandoned meanwhile.
//!
//! One slot is kept for clients with no recent sign-in attempt ("clean"): a flood from addresses that keep failing
//! queues behind the shared slots only, so a partner signing in from their own address is served next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which queue a request waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// At most a few sign-in attempts from this client address in the window (`CLEAN_ATTEMPTS`): may take the
    /// reserved slot, and waits in a waiting room of its own.
    Clean,
    /// Everyone else: the shared slots only.
    Suspect,
}

/// No slot within the wait, or too many already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Debug)]
pub struct HashSlots {
    shared: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    /// Requests waiting, per lane: a flood waiting in one lane never fills the other's waiting room.
    waiting_clean: AtomicUsize,
    waiting_suspect: AtomicUsize,
    in_use: Arc<AtomicUsize>,
    max_waiting: usize,
    wait: Duration,
    total: usize,
    /// Working memory of the slots not in use (at most one buffer per slot).
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
}

/// A slot and its argon2 working memory; dropping it frees both for the next verification.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_use: Arc<AtomicUsize>,
    memory: Vec<argon2::Block>,
    pool: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
}

impl Slot {
    /// The slot's argon2 working memory (empty the first time; grown to the hash's size and kept).
    pub fn memory(&mut self) -> &mut Vec<argon2::Block> {
        &mut self.memory
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(std::mem::take(&mut self.memory));
        }
        self.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A place in a waiting room, given back when dropped.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// How many were waiting before this one.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        Self { ahead: count.fetch_add(1, Ordering::SeqCst), count }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashSlots {
    pub fn new(slots: usize, max_waiting: usize, wait: Duration) -> Self {
        let slots = slots.max(1);
        let reserved = usize::from(slots >= 2);
        Self {
            shared: Arc::new(Semaphore::new(slots - reserved)),
            reserved: Arc::new(Semaphore::new(reserved)),
            waiting_clean: AtomicUsize::new(0),
            waiting_suspect: AtomicUsize::new(0),
            in_use: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            wait,
            total: slots,
            memory: Arc::new(Mutex::new(Vec::with_capacity(slots))),
        }
    }

    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(config.sign_in_max_concurrent_hashes, config.sign_in_max_waiting, config.sign_in_hash_wait)
    }

    /// Verifications running now (the `argon2 slots in use` gauge).
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    pub fn capacity(&self) -> usize {
        self.total
    }

    /// Requests waiting for a slot now, in both lanes.
    pub fn waiting(&self) -> usize {
        self.waiting_clean.load(Ordering::SeqCst) + self.waiting_suspect.load(Ordering::SeqCst)
    }

    /// Working-memory buffers made so far (never more than the slots).
    pub fn buffers(&self) -> usize {
        self.memory.lock().map_or(0, |pool| pool.len()) + self.in_use()
    }

    /// A slot, or `Busy` when none frees up within the wait or the waiting room is full.
    pub async fn acquire(&self, lane: Lane) -> Result<Slot, Busy> {
        let permit = match self.try_now(lane) {
            Some(permit) => permit,
            None => {
                let waiting = match lane {
                    Lane::Clean => &self.waiting_clean,
                    Lane::Suspect => &self.waiting_suspect,
                };
                // Counted out on drop: a request abandoned while waiting (the client hung up, and the server dropped
                // its future) must not keep its place in the waiting room for ever.
                let place = Waiting::enter(waiting);
                if place.ahead >= self.max_waiting {
                    return Err(Busy);
                }
                let waited = tokio::time::timeout(self.wait, self.wait_for(lane)).await;
                drop(place);
                match waited {
                    Ok(Some(permit)) => permit,
                    _ => return Err(Busy),
                }
            }
        };
        self.in_use.fetch_add(1, Ordering::SeqCst);
        let memory = self.memory.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_default();
        Ok(Slot { _permit: permit, in_use: self.in_use.clone(), memory, pool: self.memory.clone() })
    }

    fn try_now(&self, lane: Lane) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.shared.clone().try_acquire_owned() {
            return Some(permit);
        }
        match lane {
            Lane::Clean => self.reserved.clone().try_acquire_owned().ok(),
            Lane::Suspect => None,
        }
    }

    async fn wait_for(&self, lane: Lane) -> Option<OwnedSemaphorePermit> {
        match lane {
            Lane::Suspect => self.shared.clone().acquire_owned().await.ok(),
            Lane::Clean => tokio::select! {
                permit = self.reserved.clone().acquire_owned() => permit.ok(),
                permit = self.shared.clone().acquire_owned() => permit.ok(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abandoned_wait_gives_its_place_back() {
        let slots = Arc::new(HashSlots::new(1, 1, Duration::from_secs(30)));
        let held = slots.acquire(Lane::Suspect).await.expect("the slot");
        // A request waits, then its client hangs up: the server drops its future mid-wait.
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Lane::Suspect).await.is_ok() }
        });
        while slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        assert!(waiter.await.is_err(), "aborted");
        assert_eq!(slots.waiting(), 0, "the waiting room is empty again");
        // So the next request may wait (and gets the slot when it frees) instead of being refused at once.
        let next = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Lane::Suspect).await.is_ok() }
        });
        while slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert!(next.await.expect("join"), "served after waiting");
    }

    #[tokio::test]
    async fn at_most_the_slots_run_and_the_rest_wait_or_are_refused() {
        let slots = HashSlots::new(2, 1, Duration::from_millis(50));
        let a = slots.acquire(Lane::Suspect).await.expect("first");
        // The second slot is reserved for clean clients.
        let b = slots.acquire(Lane::Clean).await.expect("reserved");
        assert_eq!(slots.in_use(), 2);
        // One may wait (and times out); with one waiting, the next is refused at once.
        let waiting = tokio::spawn({
            let slots = Arc::new(slots);
            let inner = slots.clone();
            async move { (inner.acquire(Lane::Suspect).await.is_err(), slots) }
        });
        let (timed_out, slots) = waiting.await.expect("join");
        assert!(timed_out);
        drop(a);
        assert_eq!(slots.in_use(), 1);
        assert!(slots.acquire(Lane::Suspect).await.is_ok());
        drop(b);
    }

    #[tokio::test]
    async fn a_clean_client_gets_the_reserved_slot_while_suspects_queue() {
        let slots = Arc::new(HashSlots::new(2, 10, Duration::from_millis(200)));
        let held = slots.acquire(Lane::Suspect).await.expect("shared");
        // A suspect waits for the shared slot and times out; a clean client is served at once.
        assert_eq!(slots.acquire(Lane::Suspect).await.err(), Some(Busy));
        assert!(slots.acquire(Lane::Clean).await.is_ok());
        drop(held);
    }
}
