//! The delivery worker (server only): runs inside every server process and drains the outbox.
//!
//! One loop claims due deliveries (as many as there are free slots, skipping integrations at their limit) and
//! runs each attempt as a task:
//!
//! 1. If an earlier attempt may have created the ticket (`lookup_first`), look it up by its dedupe key and
//!    record it as Delivered when found — this is what makes delivery exactly-once across timeouts, lost
//!    connections and killed processes.
//! 2. Resolve the organization's PSA company by exact name (cached per integration, looked up on a miss).
//! 3. Build the ticket from the integration's mapping and `POST` it.
//!
//! Transient failures (5xx, timeouts, 429) come back after an exponential backoff with jitter, never sooner than
//! `Retry-After`; 400/401/403/404 fail at once with the PSA's reason. Every PSA request's outcome
//! becomes the integration's health. On shutdown no new work is claimed, attempts in flight get a grace period to
//! finish, and whatever remains is released (its POST, if sent, is looked up by the next attempt).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::backoff::Backoff;
use super::external_xref;
use super::store::{self, Claim, Outcome};
use crate::db::{Db, now_millis};
use crate::integrations::matching::is_exact;
use crate::integrations::store::StoredIntegration;
use crate::mapping::{Catalog, Compromise, MappingRow};
use crate::metrics::AttemptOutcome;
use crate::secrets::SecretBox;
use crate::systems::Ticketing;
use crate::ticketing::{Connection, ErrorKind, Session, TicketingError};

pub use crate::wake::Wake;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Attempts in flight in this process.
    pub concurrency: usize,
    /// Attempts in flight per integration in this process.
    pub per_integration: usize,
    /// How long a claim lasts; longer than a PSA call can take, so only a dead worker's lease expires.
    pub lease: Duration,
    /// How often to look for due work when not woken (other processes' imports, retries coming due).
    pub poll: Duration,
    /// Transient failures tried this many times in all before the delivery fails.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long a shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
    /// How often the worker renews its heartbeat row.
    pub heartbeat: Duration,
    /// A worker whose heartbeat is older than this is declared dead, and its leases are taken over.
    pub stale_after: Duration,
}

impl WorkerConfig {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            concurrency: config.delivery_concurrency,
            per_integration: config.delivery_per_integration,
            lease: config.delivery_lease,
            poll: config.delivery_poll,
            max_attempts: config.delivery_max_attempts,
            backoff: Backoff { base: config.delivery_retry_base, max: config.delivery_retry_max },
            shutdown_grace: config.connectwise_timeout + Duration::from_secs(5),
            heartbeat: config.delivery_heartbeat,
            stale_after: config.delivery_worker_stale,
        }
    }

    /// A POST is started only while the worker's last accepted heartbeat renewal is younger than this: one and a
    /// half renewal intervals, so one slow renewal does not stop the worker, and well under `stale_after` (at
    /// least three intervals), so a worker that can still post is never declared dead.
    pub fn post_fresh_for(&self) -> Duration {
        self.heartbeat * 3 / 2
    }
}

/// How long a ticket POST may take from the moment the worker decides to send it until it has ended: the wait for
/// the request budget (at most `ADMIT_TIMEOUT`), on Autotask the wait for one of its thread slots (at most one call
/// timeout), the call itself, and a second.
pub fn post_budget(call_timeout: Duration) -> Duration {
    call_timeout * 2 + crate::request_budget::ADMIT_TIMEOUT + Duration::from_secs(1)
}

/// What the worker needs from the application.
#[derive(Clone)]
pub struct Deps {
    pub db: Db,
    /// Every ticketing system's client.
    pub ticketing: Ticketing,
    pub secrets: SecretBox,
    pub wake: Wake,
    /// Where attempts are counted (the process's metrics; `Default` for a worker nobody scrapes).
    pub metrics: crate::metrics::Metrics,
}

/// A running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub owner: String,
}

impl WorkerHandle {
    /// Stops claiming, lets attempts in flight finish (within the grace period), releases the rest.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "the delivery worker ended abnormally");
        }
    }
}

/// Starts the worker on the current runtime.
pub fn spawn(deps: Deps, mut config: WorkerConfig) -> WorkerHandle {
    // A lease shorter than a whole attempt would have every claim released unused (configuration refuses it too).
    let shortest = deps.ticketing.longest_call() * 5;
    if config.lease < shortest {
        tracing::warn!(lease = ?config.lease, ?shortest, "delivery lease raised to 5 × the longest PSA call timeout");
        config.lease = shortest;
    }
    let new_owner = || format!("worker-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let owner = new_owner();
    let (stop, stopped) = watch::channel(false);
    let first = owner.clone();
    let task = tokio::spawn(async move {
        let mut owner = first;
        loop {
            let worker = Worker {
                deps: deps.clone(),
                config: config.clone(),
                owner: owner.clone(),
                integrations: Mutex::new(HashMap::new()),
                health: HealthRecorder::default(),
                delivered: std::sync::Mutex::new(Vec::new()),
                claims: std::sync::atomic::AtomicU64::new(0),
                stopping: std::sync::atomic::AtomicBool::new(false),
                heartbeat: Heartbeat::default(),
            };
            tracing::info!(owner, "delivery worker started");
            match Arc::new(worker).run(stopped.clone()).await {
                Ended::Stopped => break,
                // Declared dead by another worker (this process was paused, or cut off from the database, for
                // longer than `stale_after`): its claims were taken over. It starts again under a new name, with
                // nothing held.
                Ended::DeclaredDead => {
                    owner = new_owner();
                    tokio::time::sleep(config.heartbeat).await;
                }
            }
        }
    });
    WorkerHandle { stop, task, owner }
}

/// Why a worker's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Shutdown.
    Stopped,
    /// Another worker found this one's heartbeat stale and took its claims.
    DeclaredDead,
}

/// This worker's heartbeat, as this process knows it.
#[derive(Default)]
struct Heartbeat {
    /// When the last renewal that the database accepted was sent (this process's monotonic clock). `None` until
    /// the worker is registered.
    renewed: std::sync::Mutex<Option<std::time::Instant>>,
    /// Set when a renewal finds the row declared dead: nothing more is posted.
    dead: std::sync::atomic::AtomicBool,
    /// Wakes the worker's loop when it is declared dead.
    declared: tokio::sync::Notify,
}

impl Heartbeat {
    /// Whether a POST may start now: not declared dead, and the last accepted renewal is younger than `fresh_for`.
    fn may_post(&self, fresh_for: Duration) -> bool {
        !self.dead.load(std::sync::atomic::Ordering::SeqCst)
            && self.renewed.lock().ok().and_then(|r| *r).is_some_and(|at| at.elapsed() < fresh_for)
    }
}

struct Worker {
    deps: Deps,
    config: WorkerConfig,
    owner: String,
    /// Prepared integrations by id, with the `updated_at` they were prepared from.
    integrations: Mutex<HashMap<i64, (i64, Arc<Prepared>)>>,
    health: HealthRecorder,
    /// Delivered outcomes not yet written: `(claim token, delivery id, ticket id)`, written in batches.
    delivered: std::sync::Mutex<Vec<(String, i64, i64)>>,
    /// Numbers this worker's claims: each claim's lease is `owner#n`, so a stale copy of a delivery can never write
    /// over a newer claim of the same row by this same worker.
    claims: std::sync::atomic::AtomicU64,
    /// Set once shutdown begins: no POST starts after it.
    stopping: std::sync::atomic::AtomicBool,
    heartbeat: Heartbeat,
}

/// An integration ready to deliver: opened credentials, parsed mapping, and its company cache.
struct Prepared {
    connection: Result<Connection, String>,
    /// The system's catalog and the mapping's rows.
    mapping: Result<(Catalog, Vec<MappingRow>), String>,
    /// Organization name → the PSA's company id, for names that matched exactly.
    companies: Mutex<HashMap<String, i64>>,
}

/// A claimed delivery waiting for a slot of its integration.
struct Queued {
    claim: Claim,
    /// The integration as prepared, and the `updated_at` it was prepared from.
    integration: Option<(i64, Arc<Prepared>)>,
    compromise: Result<Compromise, String>,
    lease_until: i64,
    /// Marked in doubt in the database (`store::arm`): only then may its attempt start (and post).
    armed: bool,
}

/// What one marking asked for and what it marked in doubt, as (claim token, delivery id).
#[derive(Default)]
struct Armed {
    asked: std::collections::HashSet<(String, i64)>,
    armed: std::collections::HashSet<(String, i64)>,
}

/// Whose turn it is: the partner served last, and per partner the integration served last.
#[derive(Debug, Default)]
struct Turns {
    last_partner: Option<i64>,
    last_integration: HashMap<i64, i64>,
}

impl Turns {
    /// The partners in order, starting after the one served last.
    fn partner_order(&self, partners: impl Iterator<Item = i64>) -> Vec<i64> {
        let mut partners: Vec<i64> = partners.collect();
        rotate_after(&mut partners, self.last_partner);
        partners
    }

    /// The partner's integrations (sorted) in order, starting after the one served last.
    fn integration_order(&self, partner: i64, ids: &[i64]) -> Vec<i64> {
        let mut ids = ids.to_vec();
        rotate_after(&mut ids, self.last_integration.get(&partner).copied());
        ids
    }

    fn served(&mut self, partner: i64, integration: i64) {
        self.last_partner = Some(partner);
        self.last_integration.insert(partner, integration);
    }
}

/// Rotates a sorted list so that it starts with the first element after `last`.
fn rotate_after(sorted: &mut [i64], last: Option<i64>) {
    if let Some(last) = last {
        let start = sorted.partition_point(|id| *id <= last);
        sorted.rotate_left(start % sorted.len().max(1));
    }
}

impl Worker {
    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) -> Ended {
        // The heartbeat runs beside the loop for as long as this worker does.
        let heartbeat = tokio::spawn(self.clone().keep_heartbeat());
        let mut ended = Ended::Stopped;
        let mut tasks: JoinSet<i64> = JoinSet::new();
        // Which integration each running attempt belongs to, so that even a panicked one frees its slot.
        let mut task_integrations: HashMap<tokio::task::Id, i64> = HashMap::new();
        // Per integration: claimed and waiting, and attempts running.
        let mut queued: HashMap<i64, VecDeque<Queued>> = HashMap::new();
        let mut running: HashMap<i64, usize> = HashMap::new();
        // Claims and outcome writes run beside the loop, never in its way: a commit that waits on the disk (an
        // fsync on PostgreSQL) must not leave finished slots empty meanwhile.
        let mut claiming: Option<tokio::task::JoinHandle<Result<Vec<Queued>, crate::db::StoreError>>> = None;
        let mut writes: JoinSet<()> = JoinSet::new();
        // Deliveries are marked in doubt in batches, a little ahead of their turn, beside the loop: what a dead
        // worker held but had not come near posting is then taken over at once.
        let mut arming: Option<tokio::task::JoinHandle<Result<Armed, crate::db::StoreError>>> = None;
        let mut arm_after = std::time::Instant::now();
        // Set when a claim found less than it asked for: wait for a wake-up or the next poll before asking again.
        let mut nothing_due = false;
        // Delivered outcomes are written in batches at least every tick; health every fifth tick.
        let mut flush = tokio::time::interval(Duration::from_millis(100));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        // Claims run ahead of the attempts (up to four times the concurrency is held), so a finished attempt's slot
        // is refilled at once and each claim statement (a commit, an fsync on PostgreSQL) serves many deliveries.
        let window = self.config.concurrency * 4;
        let per_integration_window = self.config.per_integration * 4;
        let per_partner_window = (window / 2).max(1);
        // Which partner each integration with claimed work belongs to, and whose turn is next.
        let mut partner_of: HashMap<i64, i64> = HashMap::new();
        let mut turns = Turns::default();
        let mut last_probe = std::time::Instant::now();
        let mut probing = false;
        let poll = tokio::time::sleep(self.config.poll);
        tokio::pin!(poll);
        loop {
            if *stopped.borrow() {
                break;
            }
            self.dispatch(&mut queued, &mut running, &mut tasks, &mut task_integrations, &partner_of, &mut turns).await;
            partner_of.retain(|id, _| queued.contains_key(id) || running.contains_key(id));
            if arming.is_none() && std::time::Instant::now() >= arm_after {
                arming = self.clone().arm_ahead(&queued);
            }
            if self.delivered_len() >= self.config.concurrency.div_ceil(4) {
                writes.spawn(self.clone().write_delivered());
            }
            let held = tasks.len() + queued.values().map(VecDeque::len).sum::<usize>();
            // Refill once a quarter of the window is free (or everything is idle). While the window is full, look
            // every poll interval for other partners' due work all the same: a partner whose attempts are slow
            // (a site taking its time) must not hold the others' tickets back until its own finish.
            let room = window.saturating_sub(held);
            let refill = held == 0 || room >= window / 4;
            let probe = !refill && last_probe.elapsed() >= self.config.poll;
            // Nothing is claimed without a fresh heartbeat (not yet registered, or the database is not answering).
            let alive = self.heartbeat.may_post(self.config.post_fresh_for());
            if claiming.is_none() && !nothing_due && alive && (refill || probe) {
                let held_by =
                    |id: &i64| running.get(id).copied().unwrap_or(0) + queued.get(id).map_or(0, VecDeque::len);
                let mut integrations: Vec<i64> = running.keys().chain(queued.keys()).copied().collect();
                integrations.sort_unstable();
                integrations.dedup();
                // A partner holding half the window waits for the others' due work first (see `claim`).
                let mut by_partner: HashMap<i64, usize> = HashMap::new();
                for id in &integrations {
                    if let Some(partner) = partner_of.get(id) {
                        *by_partner.entry(*partner).or_default() += held_by(id);
                    }
                }
                let exclude = store::Exclude {
                    partners: by_partner
                        .into_iter()
                        .filter(|(_, n)| *n >= per_partner_window)
                        .map(|(p, _)| p)
                        .collect(),
                    integrations: integrations.into_iter().filter(|id| held_by(id) >= per_integration_window).collect(),
                };
                // A probe only makes sense when someone is left out; it takes a little, for the others only.
                if refill || !exclude.partners.is_empty() {
                    last_probe = std::time::Instant::now();
                    probing = !refill;
                    let (limit, fill) =
                        if refill { (room.max(1), true) } else { (self.config.concurrency.div_ceil(4), false) };
                    let worker = self.clone();
                    claiming = Some(tokio::spawn(async move { worker.claim(limit, exclude, fill).await }));
                }
            }
            tokio::select! {
                biased;
                _ = stopped.changed() => {}
                _ = self.heartbeat.declared.notified() => {
                    ended = Ended::DeclaredDead;
                    break;
                }
                claimed = async {
                    match claiming.as_mut() {
                        Some(claim) => claim.await,
                        None => std::future::pending().await,
                    }
                }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(Ok(batch)) => {
                            // A probe finding little says nothing about the partner it left out.
                            nothing_due = !probing && batch.len() < self.config.concurrency.div_ceil(4);
                            for item in batch {
                                partner_of.insert(item.claim.integration_id, item.claim.partner_id);
                                queued.entry(item.claim.integration_id).or_default().push_back(item);
                            }
                        }
                        Ok(Err(err)) => {
                            tracing::error!(error = %err, "could not claim deliveries");
                            nothing_due = true;
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "the claim task ended abnormally");
                            nothing_due = true;
                        }
                    }
                    if nothing_due {
                        poll.as_mut().reset(tokio::time::Instant::now() + self.config.poll);
                    }
                }
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    self.finished(done, &mut running, &mut task_integrations)
                }
                armed = async {
                    match arming.as_mut() {
                        Some(arm) => arm.await,
                        None => std::future::pending().await,
                    }
                }, if arming.is_some() => {
                    arming = None;
                    match armed {
                        Ok(Ok(Armed { asked, armed })) => {
                            // By claim: a delivery released and claimed again meanwhile is another claim.
                            let key = |item: &Queued| (item.claim.token.clone(), item.claim.id);
                            for queue in queued.values_mut() {
                                // Asked for and not marked: the lease is no longer this claim's (taken over); drop it.
                                queue.retain(|item| armed.contains(&key(item)) || !asked.contains(&key(item)));
                                for item in queue.iter_mut() {
                                    item.armed |= armed.contains(&key(item));
                                }
                            }
                            queued.retain(|_, q| !q.is_empty());
                        }
                        Ok(Err(err)) => {
                            tracing::error!(error = %err, "could not mark deliveries in doubt before posting");
                            arm_after = std::time::Instant::now() + Duration::from_millis(200);
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "the marking task ended abnormally");
                            arm_after = std::time::Instant::now() + Duration::from_millis(200);
                        }
                    }
                }
                Some(_) = writes.join_next(), if !writes.is_empty() => {}
                _ = flush.tick() => {
                    writes.spawn(self.clone().write_delivered());
                    ticks += 1;
                    if ticks.is_multiple_of(5) {
                        let worker = self.clone();
                        writes.spawn(async move { worker.health.flush(&worker.deps.db).await });
                        self.release_paused(&mut queued).await;
                    }
                }
                _ = self.deps.wake.woken(), if nothing_due => nothing_due = false,
                _ = &mut poll, if nothing_due => nothing_due = false,
            }
        }
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        // A claim still running: its deliveries are released below with the rest.
        if let Some(claim) = claiming.take() {
            match claim.await {
                Ok(Ok(batch)) => {
                    for item in batch {
                        queued.entry(item.claim.integration_id).or_default().push_back(item);
                    }
                }
                Ok(Err(err)) => tracing::error!(error = %err, "could not claim deliveries"),
                Err(err) => tracing::error!(error = %err, "the claim task ended abnormally"),
            }
        }
        if let Some(arm) = arming.take() {
            let _ = arm.await;
        }
        while writes.join_next().await.is_some() {}
        // Shutting down: nothing new starts; claimed-but-waiting deliveries go back to the queue untouched.
        for item in queued.into_values().flatten() {
            self.release(&item.claim).await;
        }
        let pending = tasks.len();
        if pending > 0 {
            tracing::info!(pending, "delivery worker stopping: waiting for attempts in flight");
        }
        // Declared dead: whatever is in flight was taken over; stop at once (an attempt stopped mid-POST is in doubt,
        // which the taker's lookup settles).
        let grace = tokio::time::sleep(match ended {
            Ended::Stopped => self.config.shutdown_grace,
            Ended::DeclaredDead => Duration::ZERO,
        });
        tokio::pin!(grace);
        while !tasks.is_empty() {
            tokio::select! {
                Some(done) = tasks.join_next_with_id() => self.finished(done, &mut running, &mut task_integrations),
                _ = &mut grace => {
                    tracing::warn!(left = tasks.len(), "grace period over: releasing the attempts still in flight");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        self.clone().write_delivered().await;
        let in_doubt_delay = (self.deps.ticketing.longest_call() * 2).as_millis() as i64;
        match store::release_all(&self.deps.db, &self.owner, in_doubt_delay).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released leased deliveries"),
            Err(err) => tracing::error!(error = %err, "could not release leased deliveries (their leases expire)"),
        }
        self.health.flush(&self.deps.db).await;
        heartbeat.abort();
        match ended {
            Ended::Stopped => {
                if let Err(err) = store::unregister_worker(&self.deps.db, &self.owner).await {
                    tracing::error!(error = %err, "could not remove the worker's heartbeat row");
                }
                tracing::info!("delivery worker stopped");
            }
            Ended::DeclaredDead => tracing::warn!(owner = self.owner, "delivery worker declared dead: stopped"),
        }
        ended
    }

    /// Registers the worker's heartbeat row and renews it every `heartbeat`; and every quarter of that (at most
    /// every half second) declares dead the workers whose heartbeat is stale, taking their claims over. A renewal
    /// that finds this worker declared dead stops its posting at once and ends its run.
    async fn keep_heartbeat(self: Arc<Self>) {
        let every = (self.config.heartbeat / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stale_ms = self.config.stale_after.as_millis() as i64;
        let settle_ms = self.takeover_settle().as_millis() as i64;
        let mut registered = false;
        let mut last_sent: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if last_sent.is_none_or(|at| at.elapsed() >= self.config.heartbeat) {
                // The instant before the renewal is sent: the row says at least this fresh.
                let sent = std::time::Instant::now();
                last_sent = Some(sent);
                let now = now_millis();
                let renewed = if registered {
                    store::renew_heartbeat(&self.deps.db, &self.owner, now).await
                } else {
                    match store::register_worker(&self.deps.db, &self.owner, now).await {
                        Ok(()) => Ok(true),
                        // Registered by an attempt whose answer was lost: renew it next time.
                        Err(crate::db::StoreError::Db(err)) if crate::db::is_unique_violation(&err) => {
                            registered = true;
                            continue;
                        }
                        Err(err) => Err(err),
                    }
                };
                match renewed {
                    Ok(true) => {
                        registered = true;
                        if let Ok(mut renewed) = self.heartbeat.renewed.lock() {
                            *renewed = Some(sent);
                        }
                    }
                    Ok(false) => {
                        self.heartbeat.dead.store(true, std::sync::atomic::Ordering::SeqCst);
                        self.heartbeat.declared.notify_one();
                        tracing::error!(
                            owner = self.owner,
                            "this worker's heartbeat was declared dead: it stops posting"
                        );
                        return;
                    }
                    Err(err) => tracing::warn!(error = %err, "could not renew the worker's heartbeat"),
                }
            }
            match store::take_over_stale(&self.deps.db, now_millis(), stale_ms, settle_ms).await {
                Ok(taken) => {
                    for dead in &taken {
                        tracing::warn!(
                            worker = dead.worker,
                            leases = dead.leases,
                            "a delivery worker's heartbeat went stale: declared dead, its claims taken over"
                        );
                    }
                    if taken.iter().any(|dead| dead.leases > 0) {
                        self.deps.wake.wake();
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not look for dead workers"),
            }
        }
    }

    /// How long after a dead worker's last heartbeat the deliveries it held in doubt may be looked up: it started
    /// no POST once its heartbeat was older than `post_fresh_for`, and a POST ends within `post_budget`.
    fn takeover_settle(&self) -> Duration {
        self.config.post_fresh_for() + post_budget(self.deps.ticketing.longest_call())
    }

    /// Starts waiting deliveries while their integration and the process have free slots, taking partners in turn
    /// and, within a partner, its integrations in turn: a partner with a large backlog (over one integration or
    /// many) gets one start in each round, as does every other partner with work waiting.
    async fn dispatch(
        self: &Arc<Self>,
        queued: &mut HashMap<i64, VecDeque<Queued>>,
        running: &mut HashMap<i64, usize>,
        tasks: &mut JoinSet<i64>,
        task_integrations: &mut HashMap<tokio::task::Id, i64>,
        partner_of: &HashMap<i64, i64>,
        turns: &mut Turns,
    ) {
        // Leases run out while deliveries wait: release those first, whatever their integration's load.
        let now = now_millis();
        let min_left = self.min_lease_left_ms();
        for queue in queued.values_mut() {
            let (keep, expired): (VecDeque<Queued>, VecDeque<Queued>) =
                std::mem::take(queue).into_iter().partition(|item| item.lease_until - now >= min_left);
            *queue = keep;
            for item in expired {
                self.release(&item.claim).await;
            }
        }
        let mut by_partner: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
        for id in queued.keys() {
            by_partner.entry(partner_of.get(id).copied().unwrap_or(0)).or_default().push(*id);
        }
        for ids in by_partner.values_mut() {
            ids.sort_unstable();
        }
        let mut progress = true;
        while progress && tasks.len() < self.config.concurrency {
            progress = false;
            for partner in turns.partner_order(by_partner.keys().copied()) {
                if tasks.len() >= self.config.concurrency {
                    break;
                }
                // The last free slot goes only to a partner with no attempt in flight: however slow one partner's
                // site is, another partner's ticket starts as soon as it is claimed.
                let partner_running: usize = running
                    .iter()
                    .filter(|(id, _)| partner_of.get(id).copied().unwrap_or(0) == partner)
                    .map(|(_, n)| *n)
                    .sum();
                if self.config.concurrency >= 2 && tasks.len() + 1 >= self.config.concurrency && partner_running > 0 {
                    continue;
                }
                let ids = &by_partner[&partner];
                // In queue order, and only once marked in doubt.
                let startable = |id: &i64| {
                    running.get(id).copied().unwrap_or(0) < self.config.per_integration
                        && queued.get(id).and_then(VecDeque::front).is_some_and(|item| item.armed)
                };
                let Some(id) = turns.integration_order(partner, ids).into_iter().find(startable) else { continue };
                let Some(item) = queued.get_mut(&id).and_then(VecDeque::pop_front) else { continue };
                progress = true;
                turns.served(partner, id);
                *running.entry(id).or_default() += 1;
                let worker = self.clone();
                let integration = item.integration.map(|(_, prepared)| prepared);
                // Each attempt is its own span: every log line of it, the PSA client's included, names
                // the delivery.
                let span = tracing::info_span!(
                    "delivery",
                    delivery_id = item.claim.id,
                    integration_id = item.claim.integration_id
                );
                let handle = tasks.spawn(
                    async move {
                        let integration_id = item.claim.integration_id;
                        worker.deliver(item.claim, integration, item.compromise, item.lease_until).await;
                        integration_id
                    }
                    .instrument(span),
                );
                task_integrations.insert(handle.id(), id);
            }
        }
        queued.retain(|_, q| !q.is_empty());
    }

    /// Marks in doubt, in one statement per claim, the deliveries whose turn comes next: the first `2 ×
    /// per_integration` of each integration's queue (two waves of its slots, so that a marking still under way never
    /// holds a freed slot back). Per integration, not in all, so that a partner whose turn comes is never kept
    /// waiting behind another's marked backlog. Returns the task (what it asked for,
    /// and what it marked), or None when nothing needs marking.
    fn arm_ahead(
        self: Arc<Self>,
        queued: &HashMap<i64, VecDeque<Queued>>,
    ) -> Option<tokio::task::JoinHandle<Result<Armed, crate::db::StoreError>>> {
        let wanted: Vec<(String, i64)> = queued
            .values()
            .flat_map(|queue| queue.iter().take(self.config.per_integration.max(1) * 2))
            .filter(|item| !item.armed)
            .map(|item| (item.claim.token.clone(), item.claim.id))
            .collect();
        if wanted.is_empty() {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut by_token: HashMap<String, Vec<i64>> = HashMap::new();
            for (token, id) in wanted {
                by_token.entry(token).or_default().push(id);
            }
            let mut done = Armed::default();
            for (token, ids) in by_token {
                done.armed
                    .extend(store::arm(&self.deps.db, &token, &ids).await?.into_iter().map(|id| (token.clone(), id)));
                done.asked.extend(ids.into_iter().map(|id| (token.clone(), id)));
            }
            Ok(done)
        }))
    }

    /// An attempt makes at most four PSA calls, each bounded by the client's timeout. (Leases are at least
    /// five timeouts long, so a claim may wait up to one timeout for a slot.)
    fn min_lease_left_ms(&self) -> i64 {
        (self.deps.ticketing.longest_call() * 4 + Duration::from_millis(250)).as_millis() as i64
    }

    fn delivered_len(&self) -> usize {
        self.delivered.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Writes the Delivered outcomes gathered since the last turn. Until then a delivered row is still leased and
    /// in doubt: if this process dies first, the next attempt finds the ticket by its externalXRef.
    async fn write_delivered(self: Arc<Self>) {
        let buffer: Vec<(String, i64, i64)> = match self.delivered.lock() {
            Ok(mut buffer) => std::mem::take(&mut *buffer),
            Err(_) => return,
        };
        let mut by_claim: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for (token, id, ticket) in buffer {
            by_claim.entry(token).or_default().push((id, ticket));
        }
        for (token, batch) in by_claim {
            match store::finish_delivered(&self.deps.db, &token, &batch).await {
                Ok(n) if n as usize == batch.len() => {}
                Ok(n) => tracing::warn!(
                    lost = batch.len() - n as usize,
                    "leases lost before delivered tickets were recorded (the next attempt finds them)"
                ),
                Err(err) => tracing::error!(error = %err, count = batch.len(), "could not record delivered tickets"),
            }
        }
    }

    /// Gives a claimed delivery back untouched (not counted as an attempt, its doubt as it was).
    async fn release(&self, claim: &Claim) {
        let outcome = Outcome::Released { in_doubt: claim.lookup_first };
        if let Err(err) = store::finish(&self.deps.db, claim.id, &claim.token, &outcome).await {
            tracing::error!(delivery_id = claim.id, error = %err, "could not release a delivery (its lease expires)");
        }
    }

    /// Releases the waiting deliveries of integrations that were disabled or edited since they were claimed (they
    /// pause, or are claimed again with the new settings).
    async fn release_paused(&self, queued: &mut HashMap<i64, VecDeque<Queued>>) {
        let ids: Vec<i64> = queued.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let current = match crate::integrations::store::updated_at(&self.deps.db, &ids).await {
            Ok(current) => current,
            Err(err) => {
                tracing::error!(error = %err, "could not check integrations");
                return;
            }
        };
        for id in ids {
            let live = current.iter().find(|(i, _, _)| *i == id).map(|(_, stamp, active)| (*stamp, *active));
            let Some(queue) = queued.get_mut(&id) else { continue };
            let stale = |item: &Queued| match (live, &item.integration) {
                (Some((stamp, true)), Some((prepared, _))) => stamp != *prepared,
                _ => true,
            };
            if !queue.iter().any(stale) {
                continue;
            }
            let (stale_items, keep): (VecDeque<Queued>, VecDeque<Queued>) =
                std::mem::take(queue).into_iter().partition(stale);
            *queue = keep;
            for item in stale_items {
                self.release(&item.claim).await;
            }
        }
        queued.retain(|_, q| !q.is_empty());
    }

    fn finished(
        &self,
        done: Result<(tokio::task::Id, i64), tokio::task::JoinError>,
        running: &mut HashMap<i64, usize>,
        task_integrations: &mut HashMap<tokio::task::Id, i64>,
    ) {
        let task = match &done {
            Ok((id, _)) => *id,
            Err(err) => {
                // A panicked attempt: its lease expires and the next attempt looks the ticket up first.
                tracing::error!(error = %err, "a delivery attempt ended abnormally");
                err.id()
            }
        };
        if let Some(integration_id) = task_integrations.remove(&task)
            && let Some(n) = running.get_mut(&integration_id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&integration_id);
            }
        }
    }

    /// Claims up to `limit` deliveries, with their compromises and integrations loaded (one query each).
    ///
    /// Partners holding their share of the window are left out first, so that another partner's due work is
    /// claimed even behind a large, older backlog; what room remains then goes to everyone.
    async fn claim(
        &self,
        limit: usize,
        exclude: store::Exclude,
        fill: bool,
    ) -> Result<Vec<Queued>, crate::db::StoreError> {
        let now = now_millis();
        let lease_ms = self.config.lease.as_millis() as i64;
        let n = self.claims.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("{}#{n}", self.owner);
        let mut claims = store::claim(&self.deps.db, &token, now, limit, lease_ms, &exclude).await?;
        if fill && claims.len() < limit && !exclude.partners.is_empty() {
            let everyone = store::Exclude { partners: Vec::new(), ..exclude };
            claims.extend(store::claim(&self.deps.db, &token, now, limit - claims.len(), lease_ms, &everyone).await?);
        }
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let loaded = async {
            let compromise_ids: Vec<i64> = claims.iter().map(|c| c.compromise_id).collect();
            let compromises =
                crate::compromises::store::load_for_delivery(&self.deps.db, &self.deps.secrets, &compromise_ids)
                    .await?;
            let mut integration_ids: Vec<i64> = claims.iter().map(|c| c.integration_id).collect();
            integration_ids.sort_unstable();
            integration_ids.dedup();
            Ok::<_, crate::db::StoreError>((compromises, self.prepare(&integration_ids).await?))
        }
        .await;
        let (compromises, prepared) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                // Claimed but not loadable now: give them back rather than hold them for a whole lease.
                for claim in &claims {
                    self.release(claim).await;
                }
                return Err(err);
            }
        };
        Ok(claims
            .into_iter()
            .map(|claim| Queued {
                // Several integrations' deliveries of one compromise can share a batch.
                compromise: compromises
                    .get(&claim.compromise_id)
                    .cloned()
                    .unwrap_or_else(|| Err("The compromise no longer exists.".to_owned())),
                integration: prepared.get(&claim.integration_id).cloned(),
                lease_until: now + lease_ms,
                // Already in doubt from an earlier attempt: nothing to mark.
                armed: claim.lookup_first,
                claim,
            })
            .collect())
    }

    /// The prepared form of each integration, rebuilt when it changed since it was prepared.
    async fn prepare(&self, ids: &[i64]) -> Result<HashMap<i64, (i64, Arc<Prepared>)>, crate::db::StoreError> {
        let stamps = crate::integrations::store::updated_at(&self.deps.db, ids).await?;
        let mut cache = self.integrations.lock().await;
        let mut out = HashMap::with_capacity(ids.len());
        for (id, updated_at, _) in stamps {
            let fresh = match cache.get(&id) {
                Some((stamp, prepared)) if *stamp == updated_at => prepared.clone(),
                _ => {
                    let Some(stored) = crate::integrations::store::get_by_id(&self.deps.db, id).await? else {
                        continue;
                    };
                    let prepared = Arc::new(self.prepared(&stored));
                    cache.insert(id, (updated_at, prepared.clone()));
                    prepared
                }
            };
            out.insert(id, (updated_at, fresh));
        }
        Ok(out)
    }

    fn prepared(&self, stored: &StoredIntegration) -> Prepared {
        let connection = crate::integrations::service::open_connection(&self.deps.secrets, stored).map_err(|_| {
            "The integration's stored keys cannot be read: edit the integration and enter them again.".to_owned()
        });
        let unreadable =
            || "The integration's field mapping is unreadable: edit the integration and save it again.".to_owned();
        let rows = serde_json::from_str::<Vec<MappingRow>>(&stored.mapping_json).map_err(|_| unreadable());
        let catalog = crate::integrations::service::stored_catalog(&self.deps.ticketing, stored).ok_or_else(unreadable);
        let mapping = catalog.and_then(|catalog| Ok((catalog, rows?)));
        Prepared { connection, mapping, companies: Mutex::new(HashMap::new()) }
    }

    async fn deliver(
        &self,
        claim: Claim,
        integration: Option<Arc<Prepared>>,
        compromise: Result<Compromise, String>,
        lease_until: i64,
    ) {
        let started = std::time::Instant::now();
        let outcome = match (integration, compromise) {
            // Removed while claimed: its deliveries are gone with it.
            (None, _) => return,
            (Some(_), Err(error)) => Outcome::Failed { error, in_doubt: claim.lookup_first },
            (Some(integration), Ok(compromise)) => self.attempt(&claim, &integration, &compromise, lease_until).await,
        };
        let counted = match &outcome {
            Outcome::Delivered { .. } => Some(AttemptOutcome::Delivered),
            Outcome::Retry { .. } => Some(AttemptOutcome::Retry),
            Outcome::Failed { .. } => Some(AttemptOutcome::Failed),
            Outcome::Released { .. } | Outcome::Wait { .. } => None,
        };
        if let Some(counted) = counted {
            self.deps.metrics.delivery_attempt(counted, started.elapsed());
        }
        match &outcome {
            Outcome::Delivered { ticket_id } => {
                tracing::debug!(delivery_id = claim.id, ticket_id, "delivered")
            }
            Outcome::Retry { error, .. } => {
                tracing::info!(delivery_id = claim.id, attempts = claim.attempts, error, "delivery will be retried")
            }
            Outcome::Failed { error, .. } => tracing::warn!(delivery_id = claim.id, error, "delivery failed"),
            Outcome::Wait { error, .. } => tracing::debug!(delivery_id = claim.id, error, "waiting for the budget"),
            Outcome::Released { .. } => {}
        }
        if let Outcome::Delivered { ticket_id } = outcome
            && let Ok(mut buffer) = self.delivered.lock()
        {
            buffer.push((claim.token.clone(), claim.id, ticket_id));
            return;
        }
        match store::finish(&self.deps.db, claim.id, &claim.token, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(delivery_id = claim.id, "lease lost before the outcome was recorded"),
            // The lease expires; the next attempt looks the ticket up first (in_doubt was set at claim).
            Err(err) => tracing::error!(delivery_id = claim.id, error = %err, "could not record a delivery outcome"),
        }
    }

    async fn attempt(
        &self,
        claim: &Claim,
        integration: &Prepared,
        compromise: &Compromise,
        lease_until: i64,
    ) -> Outcome {
        let connection = match &integration.connection {
            Ok(connection) => connection,
            Err(error) => return Outcome::Failed { error: error.clone(), in_doubt: claim.lookup_first },
        };
        let (catalog, rows) = match &integration.mapping {
            Ok((catalog, rows)) => (catalog, rows),
            Err(error) => return Outcome::Failed { error: error.clone(), in_doubt: claim.lookup_first },
        };
        let system = connection.system;
        let call_timeout = self.deps.ticketing.call_timeout(system);
        let xref = external_xref(&compromise.uuid, claim.integration_id);
        let not_posted = |err: TicketingError| self.classify(claim, err, claim.lookup_first, false);
        let session = match self.recorded(claim, self.deps.ticketing.session(connection).await) {
            Ok(session) => session,
            Err(err) => return not_posted(err),
        };
        if claim.lookup_first {
            match self.recorded(claim, session.find_ticket(&xref).await) {
                Ok(Some(ticket_id)) => {
                    tracing::info!(
                        delivery_id = claim.id,
                        ticket_id,
                        "ticket found by its dedupe key: not posted again"
                    );
                    return Outcome::Delivered { ticket_id };
                }
                Ok(None) => {}
                Err(err) => return not_posted(err),
            }
        }
        let company_id = match self.company(claim, integration, session.as_ref(), &compromise.organization_name).await {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Outcome::Failed {
                    error: format!(
                        "No {} company is named exactly \"{}\": rename the organization or the company so the names \
                         match, then Retry.",
                        system.short_label(),
                        compromise.organization_name
                    ),
                    in_doubt: claim.lookup_first,
                };
            }
            Err(err) => return not_posted(err),
        };
        let ticket = match catalog.build_ticket(rows, compromise, company_id, &xref) {
            Ok(ticket) => ticket,
            Err(errors) => {
                let reasons: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
                return Outcome::Failed {
                    error: format!("The field mapping cannot build this ticket: {}", reasons.join(" ")),
                    in_doubt: claim.lookup_first,
                };
            }
        };
        // Shutting down: no new POST (one started now could outlive the grace period). Nor without a fresh
        // heartbeat: a worker that may be declared dead before its POST ends must not start one (another worker
        // could take the delivery over and post it too).
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst)
            || !self.heartbeat.may_post(self.config.post_fresh_for())
        {
            return Outcome::Released { in_doubt: claim.lookup_first };
        }
        // The POST must end (answer or timeout) while the lease holds, or another worker could post too. Slow
        // calls before it count as an attempt, so a site that is always this slow ends Failed, not Pending forever.
        // Before the POST is sent the client may still wait for the request budget (at most ADMIT_TIMEOUT) and,
        // on Autotask, for one of its thread slots (at most one call timeout): all of it must fit in the lease.
        if lease_until - now_millis() < post_budget(call_timeout).as_millis() as i64 {
            let slow = TicketingError::new(
                ErrorKind::Transient { answered: true },
                format!(
                    "{} answered too slowly to post the ticket in time; it will be tried again.",
                    system.short_label()
                ),
            );
            return self.classify(claim, slow, claim.lookup_first, false);
        }
        match self.recorded(claim, session.create_ticket(&ticket).await) {
            Ok(ticket_id) => Outcome::Delivered { ticket_id },
            Err(err) => {
                if err.field_errors().iter().any(|f| f.field.to_ascii_lowercase().starts_with("company")) {
                    integration.companies.lock().await.remove(&compromise.organization_name);
                }
                // Only an answer that says "not created" clears this POST's doubt; a timeout, a 5xx or an
                // unreadable answer (even a 2xx one) may hide a created ticket. An earlier POST's doubt stays.
                let created_maybe = err.may_have_created();
                let unanswered = err.is_unanswered();
                let err = match err.kind {
                    // Retried, so that the lookup settles it, instead of failing a delivery that may have worked.
                    ErrorKind::Unexpected => TicketingError::new(
                        ErrorKind::Transient { answered: true },
                        format!(
                            "The answer to the ticket could not be read, so it is looked up before trying again. {}",
                            err.sentence
                        ),
                    ),
                    _ => err,
                };
                self.classify(claim, err, created_maybe || claim.lookup_first, unanswered)
            }
        }
    }

    /// The company id for an organization name: from the cache, else looked up (exact name only).
    async fn company(
        &self,
        claim: &Claim,
        integration: &Prepared,
        session: &dyn Session,
        name: &str,
    ) -> Result<Option<i64>, TicketingError> {
        if let Some(id) = integration.companies.lock().await.get(name) {
            return Ok(Some(*id));
        }
        let found = self.recorded(claim, session.find_company_by_name(name).await)?;
        match found {
            Some(company) if is_exact(name, &company.name) => {
                integration.companies.lock().await.insert(name.to_owned(), company.id);
                Ok(Some(company.id))
            }
            _ => Ok(None),
        }
    }

    /// Notes a PSA call's outcome as the integration's health and hands it back. A spent request budget says
    /// nothing of the PSA (no request was sent): the health stays as it was.
    fn recorded<T>(&self, claim: &Claim, outcome: Result<T, TicketingError>) -> Result<T, TicketingError> {
        let health = match &outcome {
            Ok(_) => Ok(()),
            Err(err) if !err.tells_of_the_psa() => return outcome,
            Err(err) => Err(err.to_string()),
        };
        self.health.note(claim.integration_id, health);
        outcome
    }

    /// The outcome of a failed attempt. `unanswered_post`: the ticket POST got no answer at all, so the PSA may
    /// still be creating the ticket.
    fn classify(&self, claim: &Claim, err: TicketingError, in_doubt: bool, unanswered_post: bool) -> Outcome {
        if !err.is_retryable() {
            return Outcome::Failed { error: err.to_string(), in_doubt };
        }
        // Nothing was sent: wait for the budget to refill, without counting an attempt (a backlog larger than a
        // window's budget must not give up after `max_attempts` windows). A little spread, so that the waiting
        // deliveries do not all ask at the same instant.
        if let ErrorKind::BudgetSpent { until } = err.kind {
            // Spread over up to half the wait (at least a second, at most a minute), so that a backlog does not come
            // back all at once when the budget refills.
            let now = now_millis();
            let spread_max = ((until - now) / 2).clamp(1_000, 60_000) as u64;
            let spread = rand::random::<u64>() % spread_max;
            return Outcome::Wait { at: until.max(now) + spread as i64, error: err.to_string(), in_doubt };
        }
        let attempts = u32::try_from(claim.attempts).unwrap_or(u32::MAX);
        if attempts >= self.config.max_attempts {
            return Outcome::Failed { error: format!("Gave up after {attempts} attempts. {err}"), in_doubt };
        }
        let retry_after = match err.kind {
            ErrorKind::RateLimited { retry_after } => Some(retry_after.unwrap_or(Duration::from_secs(5))),
            _ => None,
        };
        let mut delay = self.config.backoff.delay(attempts, retry_after);
        if unanswered_post {
            // The PSA may still be creating a ticket it did not answer for: look it up only after that had
            // time to finish.
            delay = delay.max(self.deps.ticketing.longest_call() * 2);
        }
        Outcome::Retry { at: now_millis() + delay.as_millis() as i64, error: err.to_string(), in_doubt }
    }
}

/// The latest PSA outcome per integration, written to the integration at most twice a second: every
/// attempt counts, without a database write per request.
#[derive(Default)]
struct HealthRecorder {
    latest: std::sync::Mutex<HashMap<i64, Noted>>,
}

/// When a request was made, and its outcome.
type Noted = (i64, Result<(), String>);

impl HealthRecorder {
    fn note(&self, integration_id: i64, outcome: Result<(), String>) {
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(integration_id, (now_millis(), outcome));
        }
    }

    async fn flush(&self, db: &Db) {
        let batch: Vec<(i64, Noted)> = match self.latest.lock() {
            Ok(mut latest) => latest.drain().collect(),
            Err(_) => return,
        };
        for (integration_id, (at, outcome)) in batch {
            let outcome = outcome.as_ref().map(|_| ()).map_err(String::as_str);
            if let Err(err) = crate::integrations::store::record_health_at(db, integration_id, outcome, at).await {
                tracing::error!(integration_id, error = %err, "could not record health");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_go_round_partners_and_their_integrations() {
        let mut turns = Turns::default();
        assert_eq!(turns.partner_order([1, 2, 3].into_iter()), vec![1, 2, 3]);
        turns.served(1, 10);
        assert_eq!(turns.partner_order([1, 2, 3].into_iter()), vec![2, 3, 1]);
        turns.served(3, 30);
        assert_eq!(turns.partner_order([1, 2, 3].into_iter()), vec![1, 2, 3]);
        // A partner gone from the list: the next one after it still comes first.
        turns.served(2, 20);
        assert_eq!(turns.partner_order([1, 3].into_iter()), vec![3, 1]);
        assert_eq!(turns.integration_order(1, &[10, 11, 12]), vec![11, 12, 10]);
        assert_eq!(turns.integration_order(4, &[40, 41]), vec![40, 41]);
        let mut empty: [i64; 0] = [];
        rotate_after(&mut empty, Some(5));
    }
}
