//! Request budgets per PSA account (server only), counted in the database so that every server process sharing it
//! stays within one budget together.
//!
//! Autotask suspends a whole database (every integration of that MSP, not only ours) that goes over 10,000 requests
//! an hour; ConnectWise cloud throttles too. So each PSA account gets a [`Budget`] — so many requests per fixed
//! window ([`Budget::AUTOTASK_DEFAULT`]: 5,000 an hour, [`Budget::CONNECTWISE_DEFAULT`]: 1,000 a minute) — and
//! every request to the PSA asks leave first ([`RequestGate::admit`]); a refusal says when the budget refills
//! ([`Spent::until`]).
//!
//! A low module: it knows the database, the metrics and nothing of integrations, deliveries or PSA systems.
//!
//! # Accounts
//! An [`AccountKey`] names the PSA account a budget belongs to, as the caller builds it: a system name written in the
//! code and the account's identity at that system (`autotask:<database>`, `connectwise:<site>/<company>`). **Two
//! integrations of the same PSA account must build the same key, and then share one budget** (the PSA counts per
//! account, not per integration). The account part is lower-cased, so spellings that differ only by case share too.
//! Every caller of a key should pass the same [`Budget`]: each admission is checked against the budget it brings.
//!
//! # Counting
//! Windows are fixed and aligned to the Unix epoch (an hour's windows start on the UTC hour), and a window's length
//! divides an hour evenly, so windows tile each UTC hour. A row of `psa_request_counts` counts the requests admitted
//! for one account in one window. Admission is one statement,
//!
//! ```sql
//! INSERT INTO psa_request_counts (account_key, window_start, used) VALUES ($1, $2, 1)
//! ON CONFLICT (account_key, window_start) DO UPDATE SET used = psa_request_counts.used + 1
//! WHERE psa_request_counts.used < $3
//! RETURNING used
//! ```
//!
//! atomic on both backends (PostgreSQL locks the row and re-checks the `WHERE` on its latest version; SQLite holds
//! the write lock for the statement): it returns the new count when it admitted, and no row when the window's budget
//! is used up. There is no read-then-write race: however many processes and tasks ask at once, a window admits
//! exactly `requests`.
//!
//! A fixed window admits its whole budget however late in the window the requests come, so any span of one window's
//! length that straddles a boundary may see up to twice the budget (the end of one window and the start of the
//! next). Autotask's default of 5,000 an hour keeps even that worst case at its 10,000.
//!
//! Every request costs one small upsert. No requests are reserved in advance by a process (a local chunk): the
//! upsert is cheap beside the PSA call it guards (a millisecond against a hundred or more), while chunks would let
//! reserved, unused requests go to waste at each window's end, let one process hold requests another is waiting for,
//! and make the usage shown larger than what was sent.
//!
//! A database that does not answer refuses ([`Refused::Unavailable`]): an account suspended by its PSA costs more
//! than a delivery retried a few seconds later.
//!
//! Windows older than a day are deleted: by [`RequestBudgets::prune`], and at most once an hour per process by an
//! admission that opens a new window.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::Row;

use crate::db::{Db, StoreError, now_millis};
use crate::metrics::{BudgetDecision, RequestBudgetDecisions};
use crate::numbers::thousands;

const HOUR_SECS: u64 = 3_600;
/// The most requests a budget may allow in one window.
pub const MAX_REQUESTS: u32 = 1_000_000;
/// Windows that started longer ago than this are pruned.
const KEEP_SECS: i64 = 86_400;
/// How often (ms) a process prunes from [`RequestBudgets::admit`].
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// When a request refused because the database did not answer may be tried again (ms from the refusal).
const UNAVAILABLE_RETRY_MS: i64 = 5_000;
/// Account keys per `usage` query (well under either backend's limit on bound parameters).
const USAGE_CHUNK: usize = 500;

/// So many requests per fixed window. Valid by construction: at least 1 and at most [`MAX_REQUESTS`] requests, in
/// a window of whole seconds that divides an hour evenly (1 second … 1 hour: 1 minute, 5, 15, 30 minutes, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Budget {
    requests: u32,
    window: Duration,
}

/// Why a budget cannot be used, in a sentence for the wizard's advanced settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBudget(pub &'static str);

impl Budget {
    /// Autotask: 5,000 requests an hour, half of the 10,000 at which Autotask suspends the database, so that other
    /// integrations of the same MSP keep their share (and a fixed window's worst case stays within it).
    pub const AUTOTASK_DEFAULT: Budget = Budget { requests: 5_000, window: Duration::from_secs(HOUR_SECS) };
    /// ConnectWise: 1,000 requests a minute.
    pub const CONNECTWISE_DEFAULT: Budget = Budget { requests: 1_000, window: Duration::from_secs(60) };

    pub fn new(requests: u32, window: Duration) -> Result<Self, InvalidBudget> {
        if requests == 0 {
            return Err(InvalidBudget("The request budget must allow at least 1 request."));
        }
        if requests > MAX_REQUESTS {
            return Err(InvalidBudget("The request budget can allow at most 1,000,000 requests in one window."));
        }
        let secs = window.as_secs();
        if window.subsec_nanos() != 0 || secs == 0 || secs > HOUR_SECS || !HOUR_SECS.is_multiple_of(secs) {
            return Err(InvalidBudget(
                "The request budget's period must be a whole number of seconds that divides an hour evenly, such as \
                 1 minute, 5 minutes, 15 minutes or 1 hour.",
            ));
        }
        Ok(Self { requests, window })
    }

    pub fn per_hour(requests: u32) -> Result<Self, InvalidBudget> {
        Self::new(requests, Duration::from_secs(HOUR_SECS))
    }

    pub fn per_minute(requests: u32) -> Result<Self, InvalidBudget> {
        Self::new(requests, Duration::from_secs(60))
    }

    pub fn requests(&self) -> u32 {
        self.requests
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn window_secs(&self) -> i64 {
        // At most an hour (checked by `new`).
        self.window.as_secs() as i64
    }

    /// What the budget allows in a whole hour: its requests times the windows in an hour.
    pub fn hourly_allowance(&self) -> u64 {
        u64::from(self.requests) * (HOUR_SECS / self.window.as_secs())
    }

    /// The window holding `now` (ms since the epoch): its start in Unix seconds, and its end in ms.
    pub fn window_at(&self, now: i64) -> (i64, i64) {
        let secs = now.div_euclid(1000);
        let start = secs - secs.rem_euclid(self.window_secs());
        (start, (start + self.window_secs()) * 1000)
    }
}

/// "5,000 requests per hour", "1,000 requests per minute", "1 request per 5 minutes", "10 requests per 30 seconds".
impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = thousands(u64::from(self.requests));
        let noun = if self.requests == 1 { "request" } else { "requests" };
        let secs = self.window.as_secs();
        match secs {
            3_600 => write!(f, "{requests} {noun} per hour"),
            60 => write!(f, "{requests} {noun} per minute"),
            1 => write!(f, "{requests} {noun} per second"),
            s if s % 60 == 0 => write!(f, "{requests} {noun} per {} minutes", s / 60),
            s => write!(f, "{requests} {noun} per {s} seconds"),
        }
    }
}

/// The PSA account a budget belongs to: `<system>:<account>`, e.g. `autotask:<database>` or
/// `connectwise:<site>/<company>`. Integrations of one account must build the same key (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    system: &'static str,
    key: String,
}

impl AccountKey {
    /// `system` is a name written in the code (`autotask`, `connectwise`): it labels the metrics, so it must never
    /// come from input. `account` identifies the account at that system; it is trimmed and lower-cased.
    pub fn new(system: &'static str, account: &str) -> Self {
        Self { system, key: format!("{system}:{}", account.trim().to_lowercase()) }
    }

    pub fn system(&self) -> &'static str {
        self.system
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// A request admitted: it was counted in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Requests admitted in this window, this one included.
    pub used: u32,
    /// Requests the window admits after this one.
    pub remaining: u32,
    /// When the window ends (ms since the epoch).
    pub window_ends: i64,
}

/// The budget of the current window is used up: nothing more is admitted until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// When the budget refills: the end of the current window (ms since the epoch).
    pub until: i64,
    pub budget: Budget,
}

impl Spent {
    /// When the budget refills, as a partner is shown it: "14:00 UTC" (with seconds when the window has them).
    pub fn refills_at(&self) -> String {
        utc_clock(self.until)
    }
}

impl fmt::Display for Spent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "This PSA account's request budget ({}) is used up. It refills at {}; please try again then.",
            self.budget,
            self.refills_at()
        )
    }
}

impl std::error::Error for Spent {}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The window's budget is used up.
    #[error(transparent)]
    Spent(#[from] Spent),
    /// The count could not be kept (the database did not answer; the cause was logged). Not admitted, so that no
    /// request goes uncounted; may be tried again at `retry_at` (ms since the epoch).
    #[error(
        "The PSA account's request budget could not be checked, so the request was not sent. Please try again in a \
         few seconds."
    )]
    Unavailable { retry_at: i64 },
}

impl Refused {
    /// When asking again may be admitted (ms since the epoch): when the budget refills, or a few seconds on.
    pub fn retry_at(&self) -> i64 {
        match self {
            Self::Spent(spent) => spent.until,
            Self::Unavailable { retry_at } => *retry_at,
        }
    }
}

/// An account's use of its budget, for the Integrations table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub budget: Budget,
    /// Requests admitted in the current UTC clock hour: every window that started in it (for a per-minute budget,
    /// the sum of this hour's minutes so far; for a per-hour budget, the current window).
    pub this_hour: u64,
    /// What the budget allows in a whole hour ([`Budget::hourly_allowance`]): `this_hour` is shown out of this.
    pub hourly_allowance: u64,
    /// Requests admitted in the current window, out of [`Budget::requests`].
    pub this_window: u64,
    /// When the current window ends (ms since the epoch).
    pub window_ends: i64,
}

impl Usage {
    /// `this_hour` as a whole percentage of the hourly allowance (at most 100).
    pub fn percent_of_hour(&self) -> u8 {
        let allowance = self.hourly_allowance.max(1);
        (self.this_hour.min(allowance) * 100 / allowance) as u8
    }

    /// Whether the current window's budget is used up.
    pub fn spent(&self) -> bool {
        self.this_window >= u64::from(self.budget.requests)
    }
}

/// The request budgets of every PSA account, counted in the database. Cheap to clone (clones share the pruning
/// schedule and the metrics).
#[derive(Debug, Clone)]
pub struct RequestBudgets {
    db: Db,
    decisions: Option<RequestBudgetDecisions>,
    /// When this process may next prune from `admit` (ms since the epoch).
    next_prune: Arc<AtomicI64>,
    /// Requests this process reserved in the database and has not handed out yet: account key → (window start,
    /// how many). See [`Budget::chunk`].
    reserved: Arc<std::sync::Mutex<HashMap<String, Reservation>>>,
    /// One chunk reservation at a time in this process: tasks that find none left wait for the one being made
    /// instead of each reserving a chunk (which would reserve far more than they need).
    reserving: Arc<tokio::sync::Mutex<()>>,
}

/// Requests of one window a process holds: `left` of those numbered up to `top` in the window's count.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    window_start: i64,
    left: u32,
    top: u32,
}

/// Reserves `$4` requests at once, only if all of them fit the window's budget `$3`.
const ADMIT_SQL: &str = "INSERT INTO psa_request_counts (account_key, window_start, used) VALUES ($1, $2, $4) \
     ON CONFLICT (account_key, window_start) DO UPDATE SET used = psa_request_counts.used + $4 \
     WHERE psa_request_counts.used + $4 <= $3 \
     RETURNING used";

impl Budget {
    /// How many requests a process reserves in one database write: 1 for budgets up to 400 a window, then one
    /// 200th of the budget, at most 50. Counted when reserved, so N processes together never exceed the budget;
    /// what a process has not used when the window ends is lost (at most `chunk - 1` per process and window), and
    /// the table's figures may run ahead by as much. It spares the database a write per PSA request on busy
    /// accounts (the delivery bench: 87% of the sandbox's capacity with a write per request on SQLite).
    pub fn chunk(&self) -> u32 {
        (self.requests / 200).clamp(1, 50)
    }
}

impl RequestBudgets {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            decisions: None,
            next_prune: Arc::new(AtomicI64::new(i64::MIN)),
            reserved: Arc::new(std::sync::Mutex::new(HashMap::new())),
            reserving: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Counts every decision in the process's metrics (by the key's system).
    pub fn with_metrics(mut self, decisions: RequestBudgetDecisions) -> Self {
        self.decisions = Some(decisions);
        self
    }

    /// Admits one request to `key`'s account at `now` (ms since the epoch) if its `budget` for the window holding
    /// `now` is not used up, counting it in the database. Atomic across tasks and processes.
    pub async fn admit(&self, key: &AccountKey, budget: Budget, now: i64) -> Result<Admitted, Refused> {
        let (start, window_ends) = budget.window_at(now);
        let from_reserved =
            |used: u32| Ok(Admitted { used, remaining: budget.requests.saturating_sub(used), window_ends });
        let answer = match self.take_reserved(key, start) {
            Some(used) => from_reserved(used),
            None if budget.chunk() == 1 => self.reserve(key, budget, start, window_ends, now).await,
            None => {
                let _one_at_a_time = self.reserving.lock().await;
                match self.take_reserved(key, start) {
                    Some(used) => from_reserved(used),
                    None => self.reserve(key, budget, start, window_ends, now).await,
                }
            }
        };
        if let Some(decisions) = &self.decisions {
            let decision = match &answer {
                Ok(_) => BudgetDecision::Admitted,
                Err(Refused::Spent(_)) => BudgetDecision::Refused,
                Err(Refused::Unavailable { .. }) => BudgetDecision::Unavailable,
            };
            decisions.record(key.system(), decision);
        }
        answer
    }

    /// One request from this process's reservation for the window, if it holds any (its number in the window's
    /// count); what it holds for an older window is dropped.
    fn take_reserved(&self, key: &AccountKey, window_start: i64) -> Option<u32> {
        let mut reserved = self.reserved.lock().ok()?;
        let entry = reserved.get_mut(key.as_str())?;
        if entry.window_start != window_start || entry.left == 0 {
            reserved.remove(key.as_str());
            return None;
        }
        entry.left -= 1;
        Some(entry.top - entry.left)
    }

    /// Reserves a chunk (or, when a whole chunk no longer fits, one request) in the database; keeps the rest of
    /// the chunk for this process's next requests.
    async fn reserve(
        &self,
        key: &AccountKey,
        budget: Budget,
        start: i64,
        window_ends: i64,
        now: i64,
    ) -> Result<Admitted, Refused> {
        let mut chunk = budget.chunk();
        loop {
            let counted: Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(ADMIT_SQL)
                .bind(key.as_str())
                .bind(start)
                .bind(i64::from(budget.requests))
                .bind(i64::from(chunk))
                .fetch_optional(&self.db.pool)
                .await;
            match counted {
                Ok(Some(used)) => {
                    let used = u32::try_from(used).unwrap_or(u32::MAX);
                    if chunk > 1
                        && let Ok(mut reserved) = self.reserved.lock()
                    {
                        let reservation = Reservation { window_start: start, left: chunk - 1, top: used };
                        reserved.insert(key.as_str().to_owned(), reservation);
                    }
                    if used == chunk {
                        // This request opened a window: a moment to forget old ones (at most once an hour per
                        // process; the gate bounds the whole admission by ADMIT_TIMEOUT).
                        self.prune_now_and_then(now).await;
                    }
                    // This request is the first of the chunk.
                    let number = used.saturating_sub(chunk - 1);
                    return Ok(Admitted {
                        used: number,
                        remaining: budget.requests.saturating_sub(number),
                        window_ends,
                    });
                }
                Ok(None) if chunk > 1 => chunk = 1,
                Ok(None) => return Err(Refused::Spent(Spent { until: window_ends, budget })),
                Err(err) => {
                    tracing::error!(error = %err, system = key.system(), "could not count a PSA request: not admitted");
                    return Err(Refused::Unavailable { retry_at: now + UNAVAILABLE_RETRY_MS });
                }
            }
        }
    }

    /// Prunes, unless this process did so less than an hour ago.
    async fn prune_now_and_then(&self, now: i64) {
        let due = self.next_prune.load(Ordering::Relaxed);
        if now < due
            || self
                .next_prune
                .compare_exchange(due, now + PRUNE_EVERY_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(err) = self.prune(now).await {
            tracing::warn!(error = %err, "could not prune old request budget windows");
        }
    }

    /// Deletes the counts of windows that started more than a day before `now` (ms); returns how many.
    pub async fn prune(&self, now: i64) -> Result<u64, StoreError> {
        let cutoff = now.div_euclid(1000) - KEEP_SECS;
        let result = sqlx::query("DELETE FROM psa_request_counts WHERE window_start < $1")
            .bind(cutoff)
            .execute(&self.db.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Each account's use of its budget at `now` (ms): this UTC hour's and the current window's (see [`Usage`]).
    /// Accounts that sent nothing this hour are there at 0.
    pub async fn usage(
        &self,
        accounts: &[(AccountKey, Budget)],
        now: i64,
    ) -> Result<HashMap<AccountKey, Usage>, StoreError> {
        let now_secs = now.div_euclid(1000);
        let hour_start = now_secs - now_secs.rem_euclid(HOUR_SECS as i64);
        let keys: Vec<&str> = {
            let mut seen = HashSet::new();
            accounts.iter().map(|(key, _)| key.as_str()).filter(|key| seen.insert(*key)).collect()
        };
        // Per account key: (window start, used) of this hour's windows.
        let mut windows: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for chunk in keys.chunks(USAGE_CHUNK) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT account_key, window_start, used FROM psa_request_counts \
                 WHERE window_start >= $1 AND window_start < $2 AND account_key IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hour_start).bind(hour_start + HOUR_SECS as i64);
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&self.db.pool).await? {
                let key: String = row.try_get("account_key")?;
                windows.entry(key).or_default().push((row.try_get("window_start")?, row.try_get("used")?));
            }
        }
        Ok(accounts
            .iter()
            .map(|(key, budget)| {
                let (start, window_ends) = budget.window_at(now);
                let rows = windows.get(key.as_str()).map(Vec::as_slice).unwrap_or_default();
                let count = |used: i64| u64::try_from(used).unwrap_or_default();
                let usage = Usage {
                    budget: *budget,
                    this_hour: rows.iter().map(|(_, used)| count(*used)).sum(),
                    hourly_allowance: budget.hourly_allowance(),
                    this_window: rows.iter().filter(|(s, _)| *s == start).map(|(_, used)| count(*used)).sum(),
                    window_ends,
                };
                (key.clone(), usage)
            })
            .collect())
    }
}

/// Leave to send one request to a PSA. Its HTTP client asks before every request it sends (retries and pages
/// included) and sends nothing when refused.
#[async_trait::async_trait]
pub trait RequestGate: Send + Sync {
    async fn admit(&self) -> Result<(), Refused>;
}

/// One PSA account's budget, at the clock's time.
#[derive(Debug, Clone)]
pub struct BudgetGate {
    pub budgets: RequestBudgets,
    pub account_key: AccountKey,
    pub budget: Budget,
}

impl BudgetGate {
    pub fn new(budgets: RequestBudgets, account_key: AccountKey, budget: Budget) -> Self {
        Self { budgets, account_key, budget }
    }
}

#[async_trait::async_trait]
impl RequestGate for BudgetGate {
    /// At most [`ADMIT_TIMEOUT`]: a database that does not answer in time refuses (nothing is sent), so that a
    /// caller's time budget for a request (the delivery worker's lease) stays predictable.
    async fn admit(&self) -> Result<(), Refused> {
        let now = now_millis();
        match tokio::time::timeout(ADMIT_TIMEOUT, self.budgets.admit(&self.account_key, self.budget, now)).await {
            Ok(answer) => answer.map(|_| ()),
            Err(_) => {
                tracing::warn!(system = self.account_key.system(), "the request budget did not answer in time");
                Err(Refused::Unavailable { retry_at: now_millis() + UNAVAILABLE_RETRY_MS })
            }
        }
    }
}

/// The longest [`BudgetGate::admit`] takes.
pub const ADMIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Admits every request: for tests and sandboxes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

#[async_trait::async_trait]
impl RequestGate for Unlimited {
    async fn admit(&self) -> Result<(), Refused> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl<G: RequestGate + ?Sized> RequestGate for Arc<G> {
    async fn admit(&self) -> Result<(), Refused> {
        (**self).admit().await
    }
}

/// The UTC time of day of `ms` (since the epoch): "14:00 UTC", or "14:00:30 UTC" when the seconds are not 0.
fn utc_clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if s == 0 { format!("{h:02}:{m:02} UTC") } else { format!("{h:02}:{m:02}:{s:02} UTC") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_validated_with_a_sentence() {
        assert_eq!(Budget::per_hour(5_000), Ok(Budget::AUTOTASK_DEFAULT));
        assert_eq!(Budget::per_minute(1_000), Ok(Budget::CONNECTWISE_DEFAULT));
        assert!(Budget::new(10, Duration::from_secs(15 * 60)).is_ok());
        assert!(Budget::new(10, Duration::from_secs(1)).is_ok());
        let zero = Budget::per_hour(0).expect_err("0 requests");
        assert!(zero.to_string().contains("at least 1 request"), "{zero}");
        assert!(Budget::per_hour(MAX_REQUESTS + 1).expect_err("too many").to_string().contains("at most 1,000,000"));
        for window in [
            Duration::ZERO,
            Duration::from_millis(1_500),
            Duration::from_secs(7 * 60),
            Duration::from_secs(7_200),
            Duration::from_millis(500),
        ] {
            let err = Budget::new(10, window).expect_err("bad window");
            assert!(err.to_string().contains("divides an hour evenly"), "{window:?}: {err}");
        }
    }

    #[test]
    fn budgets_read_as_sentences() {
        assert_eq!(Budget::AUTOTASK_DEFAULT.to_string(), "5,000 requests per hour");
        assert_eq!(Budget::CONNECTWISE_DEFAULT.to_string(), "1,000 requests per minute");
        assert_eq!(Budget::new(1, Duration::from_secs(300)).expect("ok").to_string(), "1 request per 5 minutes");
        assert_eq!(Budget::new(10, Duration::from_secs(30)).expect("ok").to_string(), "10 requests per 30 seconds");
        assert_eq!(Budget::per_hour(1_000_000).expect("ok").to_string(), "1,000,000 requests per hour");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn windows_are_aligned_to_the_clock() {
        // 2026-03-01 13:42:17.250 UTC
        let now = 1_772_372_537_250;
        let (start, end) = Budget::AUTOTASK_DEFAULT.window_at(now);
        assert_eq!(start % 3_600, 0);
        assert!(start * 1000 <= now && now < end && end - start * 1000 == 3_600_000);
        assert_eq!(utc_clock(end), "14:00 UTC");
        let (start, end) = Budget::CONNECTWISE_DEFAULT.window_at(now);
        assert_eq!((start % 60, end - start * 1000), (0, 60_000));
        assert_eq!(utc_clock(end), "13:43 UTC");
        assert_eq!(utc_clock(now), "13:42:17 UTC");
        assert_eq!(Budget::CONNECTWISE_DEFAULT.hourly_allowance(), 60_000);
        assert_eq!(Budget::AUTOTASK_DEFAULT.hourly_allowance(), 5_000);
        // The end of a window is the start of the next.
        assert_eq!(Budget::CONNECTWISE_DEFAULT.window_at(end).0 * 1000, end);
    }

    #[test]
    fn refusals_say_when_the_budget_refills() {
        let spent = Spent { until: 1_772_373_600_000, budget: Budget::AUTOTASK_DEFAULT };
        assert_eq!(
            spent.to_string(),
            "This PSA account's request budget (5,000 requests per hour) is used up. It refills at 14:00 UTC; please \
             try again then."
        );
        assert_eq!(Refused::from(spent).retry_at(), spent.until);
        assert_eq!(Refused::from(spent).to_string(), spent.to_string());
    }

    #[test]
    fn account_keys_name_the_system_and_ignore_case() {
        let key = AccountKey::new("connectwise", " NA.myconnectwise.net/Acme ");
        assert_eq!(key.as_str(), "connectwise:na.myconnectwise.net/acme");
        assert_eq!(key.system(), "connectwise");
        assert_eq!(key, AccountKey::new("connectwise", "na.myconnectwise.net/acme"));
    }

    #[test]
    fn usage_percentages() {
        let usage = Usage {
            budget: Budget::AUTOTASK_DEFAULT,
            this_hour: 1_250,
            hourly_allowance: 5_000,
            this_window: 1_250,
            window_ends: 0,
        };
        assert_eq!(usage.percent_of_hour(), 25);
        assert!(!usage.spent());
        assert!(Usage { this_hour: 6_000, this_window: 5_000, ..usage }.spent());
        assert_eq!(Usage { this_hour: 6_000, ..usage }.percent_of_hour(), 100);
    }
}
