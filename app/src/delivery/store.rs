//! Delivery storage (server only): claiming due deliveries under a lease, recording outcomes, and the Delivery
//! log's queries.
//!
//! A claim is one statement: the due rows (Pending or Retrying, due, unleased or with an expired lease, of an
//! Active integration) are picked — on PostgreSQL `FOR UPDATE SKIP LOCKED`, so several server processes never
//! pick the same row — and leased to the claiming worker until `lease_until`. A worker that dies simply lets its
//! leases expire; every outcome is written only while the writer still holds the lease (`lease_owner` matches),
//! so a worker that lost its lease cannot overwrite a newer attempt.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DeliveryLog, DeliveryRow, DeliveryState, LOG_PAGE_SIZE, LogFilter, StateCounts};
use crate::activity::{self, Actor, Kind};
use crate::db::{Backend, Db, StoreError, now_millis};
use crate::integrations::service::format_time;

/// A delivery leased to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    /// The lease this claim holds (`lease_owner`): every outcome is written only while it still holds it.
    pub token: String,
    pub integration_id: i64,
    /// The integration's partner: the worker takes turns between partners.
    pub partner_id: i64,
    pub compromise_id: i64,
    /// Attempts including this one, since the delivery was queued or last retried by the partner.
    pub attempts: i64,
    /// A previous attempt may have created the ticket: look it up by externalXRef before posting.
    pub lookup_first: bool,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        ticket_id: i64,
    },
    /// Try again at `at` (ms since the epoch). `in_doubt`: a POST may have created the ticket.
    Retry {
        at: i64,
        error: String,
        in_doubt: bool,
    },
    /// Not retried (400/401/403/404, no matching company, a mapping that cannot build this ticket, too many
    /// attempts). Retry on the log puts it back.
    Failed {
        error: String,
        in_doubt: bool,
    },
    /// Shutting down before the attempt was made: back to the queue as it was, not counted as an attempt.
    Released {
        in_doubt: bool,
    },
    /// Nothing was sent (the PSA account's request budget is spent): shown as Retrying with `error` (which says
    /// when the budget refills), tried again at `at`, not counted as an attempt.
    Wait {
        at: i64,
        error: String,
        in_doubt: bool,
    },
}

/// What a claim leaves alone: integrations and partners that already hold their share of this process's slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclude {
    pub integrations: Vec<i64>,
    pub partners: Vec<i64>,
}

/// Leases up to `limit` due deliveries to `owner` (a token unique to this claim, `worker#n`) until
/// `now + lease_ms`, skipping what `exclude` names. Oldest due first.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    limit: usize,
    lease_ms: i64,
    exclude: &Exclude,
) -> Result<Vec<Claim>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let not_in = |column: &str, ids: &[i64]| {
        if ids.is_empty() {
            return String::new();
        }
        // Integers only, inlined.
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!(" AND {column} NOT IN ({})", ids.join(","))
    };
    let exclude_sql =
        format!("{}{}", not_in("d.integration_id", &exclude.integrations), not_in("i.partner_id", &exclude.partners));
    let pick = format!(
        "SELECT d.id, i.partner_id FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
         WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at <= $3 AND d.lease_until <= $3 \
         AND i.active = 1{exclude_sql} ORDER BY d.next_attempt_at, d.id LIMIT $4"
    );
    // lookup_first is the doubt an earlier attempt left. A claim alone puts nothing in doubt: the worker marks a
    // delivery in doubt (`arm`) before its POST can start, so a dead worker's deliveries that never came near a POST
    // are taken over at once, without waiting for its POSTs to end.
    let set = "lease_owner = $1, lease_until = $2, attempts = attempts + 1, lookup_first = in_doubt, updated_at = $3";
    let sql = match db.backend {
        // The pick runs once (a CTE is not re-planned as a subquery can be), locking what it returns and skipping
        // rows another process is claiming; READ COMMITTED re-checks the conditions on the latest version.
        Backend::Postgres => format!(
            "WITH picked AS ({pick} FOR UPDATE OF d SKIP LOCKED) UPDATE deliveries SET {set} FROM picked \
             WHERE deliveries.id = picked.id \
             RETURNING deliveries.id, deliveries.integration_id, picked.partner_id, deliveries.compromise_id, \
             deliveries.attempts - deliveries.attempts_base AS attempts, deliveries.lookup_first"
        ),
        // SQLite serialises writers: the statement holds the write lock from pick to lease.
        // (SQLite's RETURNING may read other tables through a subquery only.)
        Backend::Sqlite => format!(
            "UPDATE deliveries SET {set} WHERE id IN (SELECT id FROM ({pick})) \
             RETURNING id, integration_id, (SELECT partner_id FROM integrations WHERE id = integration_id) AS partner_id, \
             compromise_id, attempts - attempts_base AS attempts, lookup_first"
        ),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&db.pool)
        .await?;
    let mut claims: Vec<Claim> = rows
        .iter()
        .map(|row| {
            Ok(Claim {
                id: row.try_get("id")?,
                token: owner.to_owned(),
                integration_id: row.try_get("integration_id")?,
                partner_id: row.try_get("partner_id")?,
                compromise_id: row.try_get("compromise_id")?,
                attempts: row.try_get("attempts")?,
                lookup_first: row.try_get::<i64, _>("lookup_first")? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    claims.sort_by_key(|c| c.id);
    Ok(claims)
}

/// Marks claimed deliveries in doubt before their POSTs may start: from here on the next attempt (after a crash, a
/// takeover or an expired lease) looks the ticket up first, and a dead worker's delivery waits until its POSTs have
/// ended. Only rows the claim `owner` still holds; returns their ids.
pub async fn arm(db: &Db, owner: &str, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Integers only, inlined.
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "UPDATE deliveries SET in_doubt = 1 WHERE id IN ({}) AND lease_owner = $1 AND state IN ('pending', 'retrying') \
         RETURNING id",
        list.join(",")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).fetch_all(&db.pool).await?;
    Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, sqlx::Error>>()?)
}

/// Records an attempt's outcome, if `owner` still holds the lease. Returns whether it did.
pub async fn finish(db: &Db, id: i64, owner: &str, outcome: &Outcome) -> Result<bool, StoreError> {
    let now = now_millis();
    let query = match outcome {
        Outcome::Delivered { ticket_id } => sqlx::query(
            // lease_owner stays: which worker delivered it.
            "UPDATE deliveries SET state = 'delivered', ticket_id = $1, in_doubt = 0, last_error = NULL, \
             lease_until = 0, delivered_at = $2, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4 AND state IN ('pending', 'retrying')",
        )
        .bind(*ticket_id)
        .bind(now)
        .bind(id)
        .bind(owner),
        Outcome::Retry { at, error, in_doubt } => sqlx::query(
            "UPDATE deliveries SET state = 'retrying', next_attempt_at = $1, last_error = $2, in_doubt = $3, \
             lease_owner = NULL, lease_until = 0, updated_at = $4 WHERE id = $5 AND lease_owner = $6 \
             AND state IN ('pending', 'retrying')",
        )
        .bind(*at)
        .bind(error.clone())
        .bind(i64::from(*in_doubt))
        .bind(now)
        .bind(id)
        .bind(owner),
        Outcome::Failed { error, in_doubt } => sqlx::query(
            "UPDATE deliveries SET state = 'failed', last_error = $1, in_doubt = $2, lease_owner = NULL, \
             lease_until = 0, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state IN ('pending', 'retrying')",
        )
        .bind(error.clone())
        .bind(i64::from(*in_doubt))
        .bind(now)
        .bind(id)
        .bind(owner),
        Outcome::Wait { at, error, in_doubt } => sqlx::query(
            "UPDATE deliveries SET state = 'retrying', next_attempt_at = $1, last_error = $2, in_doubt = $3, \
             attempts = attempts - 1, lease_owner = NULL, lease_until = 0, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND state IN ('pending', 'retrying')",
        )
        .bind(*at)
        .bind(error.clone())
        .bind(i64::from(*in_doubt))
        .bind(now)
        .bind(id)
        .bind(owner),
        Outcome::Released { in_doubt } => sqlx::query(
            "UPDATE deliveries SET in_doubt = $1, attempts = attempts - 1, lease_owner = NULL, lease_until = 0, \
             updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state IN ('pending', 'retrying')",
        )
        .bind(i64::from(*in_doubt))
        .bind(now)
        .bind(id)
        .bind(owner),
    };
    Ok(query.execute(&db.pool).await?.rows_affected() == 1)
}

/// Records many Delivered outcomes `(delivery id, ticket id)` in one statement, for the rows `owner` still
/// holds. Returns how many rows it updated.
pub async fn finish_delivered(db: &Db, owner: &str, delivered: &[(i64, i64)]) -> Result<u64, StoreError> {
    if delivered.is_empty() {
        return Ok(0);
    }
    // Integers only, inlined: one statement however many rows.
    let cases: String = delivered.iter().map(|(id, ticket)| format!(" WHEN {id} THEN {ticket}")).collect();
    let ids: Vec<String> = delivered.iter().map(|(id, _)| id.to_string()).collect();
    let sql = format!(
        "UPDATE deliveries SET state = 'delivered', ticket_id = CASE id{cases} END, in_doubt = 0, \
         last_error = NULL, lease_until = 0, delivered_at = $1, updated_at = $1 \
         WHERE id IN ({}) AND lease_owner = $2 AND state IN ('pending', 'retrying')",
        ids.join(",")
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_millis()).bind(owner).execute(&db.pool).await?;
    Ok(result.rows_affected())
}

/// Ends the leases of a worker's claims (`$3` = `owner#%`) at `$1`; one in doubt becomes due no sooner than `$2`.
const RELEASE_LEASES: &str = "UPDATE deliveries SET lease_owner = NULL, lease_until = 0, updated_at = $1, \
     next_attempt_at = CASE WHEN in_doubt = 1 AND next_attempt_at < $2 THEN $2 ELSE next_attempt_at END \
     WHERE lease_owner LIKE $3 AND state IN ('pending', 'retrying')";

/// Ends every lease a worker still holds (its claims are `owner#n`): a clean shutdown. A delivery in doubt (its
/// POST may still be on its way to ConnectWise) becomes due no sooner than `in_doubt_delay_ms` from now, so the
/// next worker's lookup does not race a ticket ConnectWise is still creating.
pub async fn release_all(db: &Db, owner: &str, in_doubt_delay_ms: i64) -> Result<u64, StoreError> {
    let now = now_millis();
    let result = sqlx::query(RELEASE_LEASES)
        .bind(now)
        .bind(now + in_doubt_delay_ms)
        .bind(format!("{owner}#%"))
        .execute(&db.pool)
        .await?;
    Ok(result.rows_affected())
}

/// Registers a delivery worker's heartbeat row (`delivery_workers`, migration 0009), alive as of `now`.
pub async fn register_worker(db: &Db, worker: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO delivery_workers (id, heartbeat_at, state, started_at) VALUES ($1, $2, 'alive', $2)")
        .bind(worker)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Renews a worker's heartbeat. `false`: the row is no longer alive — another worker declared this one dead (and
/// took its leases), so it must stop posting at once.
pub async fn renew_heartbeat(db: &Db, worker: &str, now: i64) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE delivery_workers SET heartbeat_at = $1 WHERE id = $2 AND state = 'alive'")
        .bind(now)
        .bind(worker)
        .execute(&db.pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A clean shutdown: the worker's heartbeat row goes (after its leases were released).
pub async fn unregister_worker(db: &Db, worker: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM delivery_workers WHERE id = $1").bind(worker).execute(&db.pool).await?;
    Ok(())
}

/// A worker declared dead, and how many leases were taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub worker: String,
    /// Its last heartbeat (ms since the epoch).
    pub heartbeat_at: i64,
    pub leases: u64,
}

/// Declares dead every worker whose heartbeat is older than `stale_ms` at `now`, and in the same transaction
/// takes back the leases it held, without waiting for them to end. The deliveries go back to the queue, marked in
/// doubt by their claim, so the next attempt looks the ticket up before posting; one in doubt becomes due no
/// sooner than `heartbeat_at + settle_ms`, by when every POST the dead worker may have started has ended (a worker
/// starts a POST only while its heartbeat is fresh: see the worker). Dead rows older than a day are pruned.
///
/// A worker declared dead that was only slow finds out at its next renewal ([`renew_heartbeat`]) and stops.
pub async fn take_over_stale(db: &Db, now: i64, stale_ms: i64, settle_ms: i64) -> Result<Vec<TakenOver>, StoreError> {
    // Cheap when nobody is stale (a read of the small table by its index), so every worker can ask often.
    let stale: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM delivery_workers WHERE state = 'alive' AND heartbeat_at < $1")
            .bind(now - stale_ms)
            .fetch_one(&db.pool)
            .await?;
    if stale == 0 {
        return Ok(Vec::new());
    }
    let mut tx = db.pool.begin().await?;
    // Only one worker declares a given worker dead (the row changes once); a renewal that got in first keeps it
    // alive (READ COMMITTED re-checks the condition on the renewed row).
    let dead = sqlx::query(
        "UPDATE delivery_workers SET state = 'dead' WHERE state = 'alive' AND heartbeat_at < $1 RETURNING id, heartbeat_at",
    )
    .bind(now - stale_ms)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| Ok((row.try_get::<String, _>("id")?, row.try_get::<i64, _>("heartbeat_at")?)))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let mut taken = Vec::with_capacity(dead.len());
    for (worker, heartbeat_at) in dead {
        // lease_owner goes too, so that nothing the dead worker still tries to write lands.
        let result = sqlx::query(RELEASE_LEASES)
            .bind(now)
            .bind(heartbeat_at + settle_ms)
            .bind(format!("{worker}#%"))
            .execute(&mut *tx)
            .await?;
        taken.push(TakenOver { worker, heartbeat_at, leases: result.rows_affected() });
    }
    sqlx::query("DELETE FROM delivery_workers WHERE state = 'dead' AND heartbeat_at < $1")
        .bind(now - 86_400_000)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(taken)
}

/// The integration's name and whether it is Active, if it is the partner's.
async fn integration_of(db: &Db, partner_id: i64, integration_id: i64) -> Result<(String, bool), StoreError> {
    let row = sqlx::query("SELECT name, active FROM integrations WHERE id = $1 AND partner_id = $2")
        .bind(integration_id)
        .bind(partner_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(crate::integrations::store::not_found)?;
    Ok((row.try_get("name")?, row.try_get::<i64, _>("active")? != 0))
}

/// The stored states a shown state covers, given whether the integration is Active (empty: matches nothing).
fn stored_states(state: DeliveryState, active: bool) -> &'static [&'static str] {
    match (state, active) {
        (DeliveryState::Delivered, _) => &["delivered"],
        (DeliveryState::Failed, _) => &["failed"],
        (DeliveryState::Paused, false) => &["pending", "retrying"],
        (DeliveryState::Pending, true) => &["pending"],
        (DeliveryState::Retrying, true) => &["retrying"],
        _ => &[],
    }
}

/// Every stored state.
const STORED_STATES: [&str; 4] = ["pending", "retrying", "delivered", "failed"];

fn row_from(row: &AnyRow, active: bool) -> Result<DeliveryRow, sqlx::Error> {
    let stored: String = row.try_get("state")?;
    let state = DeliveryState::shown(&stored, active);
    let next: i64 = row.try_get("next_attempt_at")?;
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        record_type: row.try_get("record_type")?,
        compromise: row.try_get("compromise")?,
        organization_id: row.try_get("organization_id")?,
        organization: row.try_get("organization")?,
        state,
        attempts: row.try_get("attempts")?,
        ticket_id: row.try_get("ticket_id")?,
        next_attempt: (state == DeliveryState::Retrying).then(|| format_time(next)),
        last_error: row.try_get("last_error")?,
        created: format_time(row.try_get("created_at")?),
        updated: format_time(row.try_get("updated_at")?),
    })
}

/// One page of the partner's integration's Delivery log.
///
/// Each part reads an index, so the page costs the same at a million deliveries as at ten: the counts are the
/// trigger-kept `delivery_counts` rows; the organizations are one probe per organization of the partner into
/// `deliveries_organization_log`; the page is, for each stored state the filter covers (all four without a state
/// filter), the newest `LOG_PAGE_SIZE + 1` ids from `deliveries_log_state` (integration, state, id) or, with an
/// organization, `deliveries_organization_log` (organization, integration, state, id), merged: at most four short
/// index ranges, never a scan of the integration's deliveries.
pub async fn log(db: &Db, partner_id: i64, integration_id: i64, filter: &LogFilter) -> Result<DeliveryLog, StoreError> {
    let (name, active) = integration_of(db, partner_id, integration_id).await?;
    let counts = counts(db, integration_id, active).await?;
    let organizations = sqlx::query(
        "SELECT o.id, o.name FROM organizations o WHERE o.partner_id = $1 AND EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.organization_id = o.id AND d.integration_id = $2) ORDER BY o.name_key, o.id",
    )
    .bind(partner_id)
    .bind(integration_id)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("id")?, row.try_get("name")?)))
    .collect::<Result<Vec<(i64, String)>, sqlx::Error>>()?;
    let mut log = DeliveryLog {
        integration_id,
        integration_name: name,
        active,
        counts,
        rows: Vec::new(),
        more: false,
        organizations,
    };
    let states: &[&str] = match filter.state {
        Some(state) => stored_states(state, active),
        None => &STORED_STATES,
    };
    if states.is_empty() {
        return Ok(log);
    }
    let limit = LOG_PAGE_SIZE + 1;
    // Integers and fixed state names only, inlined.
    let before = filter.before_id.map(|before| format!(" AND id < {before}")).unwrap_or_default();
    let organization = filter.organization_id.map(|org| format!(" AND organization_id = {org}")).unwrap_or_default();
    let page = states
        .iter()
        .enumerate()
        .map(|(i, state)| {
            format!(
                "SELECT id FROM (SELECT id FROM deliveries WHERE integration_id = $1 AND state = '{state}'\
                 {organization}{before} ORDER BY id DESC LIMIT {limit}) AS s{i}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let sql = format!(
        "SELECT d.id, d.state, d.attempts, d.ticket_id, d.next_attempt_at, d.last_error, d.created_at, \
         d.updated_at, d.organization_id, c.uuid, c.record_type, c.compromise, o.name AS organization \
         FROM deliveries d JOIN compromises c ON c.id = d.compromise_id \
         JOIN organizations o ON o.id = d.organization_id WHERE d.id IN ({page}) \
         ORDER BY d.id DESC LIMIT {limit}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(integration_id).fetch_all(&db.pool).await?;
    log.more = rows.len() > LOG_PAGE_SIZE;
    log.rows = rows.iter().take(LOG_PAGE_SIZE).map(|r| row_from(r, active)).collect::<Result<_, _>>()?;
    Ok(log)
}

/// The integration's deliveries per shown state, from the counters its deliveries' triggers keep
/// (`delivery_counts`, migration 0008): at most four rows, however many deliveries.
async fn counts(db: &Db, integration_id: i64, active: bool) -> Result<StateCounts, StoreError> {
    let rows = sqlx::query("SELECT state, n FROM delivery_counts WHERE integration_id = $1")
        .bind(integration_id)
        .fetch_all(&db.pool)
        .await?;
    let mut counts = StateCounts::default();
    for row in &rows {
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        match DeliveryState::shown(&state, active) {
            DeliveryState::Pending => counts.pending += n,
            DeliveryState::Retrying => counts.retrying += n,
            DeliveryState::Delivered => counts.delivered += n,
            DeliveryState::Failed => counts.failed += n,
            DeliveryState::Paused => counts.paused += n,
        }
    }
    Ok(counts)
}

/// Puts Failed deliveries of the partner's integration back in the queue, due now: one (`delivery_id`) or all.
/// Returns how many. A retry that puts anything back is recorded (by `actor`) in the same transaction.
pub async fn retry_failed(
    db: &Db,
    partner_id: i64,
    integration_id: i64,
    delivery_id: Option<i64>,
    actor: &Actor,
) -> Result<u64, StoreError> {
    let (name, _) = integration_of(db, partner_id, integration_id).await?;
    let now = now_millis();
    let mut sql = String::from(
        // A fresh round of attempts (the log still shows them all; in_doubt stays, so it looks up first).
        "UPDATE deliveries SET state = 'pending', attempts_base = attempts, next_attempt_at = $1, updated_at = $1 \
         WHERE integration_id = $2 AND state = 'failed'",
    );
    if let Some(id) = delivery_id {
        sql.push_str(&format!(" AND id = {id}"));
    }
    let mut tx = db.pool.begin().await?;
    let result = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(integration_id).execute(&mut *tx).await?;
    let count = result.rows_affected();
    match delivery_id {
        Some(_) if count == 0 => {
            return Err(StoreError::NotFound(
                "That delivery is no longer Failed (it may have been retried already). The log shows its state now."
                    .into(),
            ));
        }
        Some(id) => {
            let id = id.to_string();
            activity::store::record(&mut tx, partner_id, actor, Kind::DeliveryRetried, &name, Some(&id)).await?;
        }
        None if count > 0 => {
            let count = count.to_string();
            activity::store::record(&mut tx, partner_id, actor, Kind::DeliveriesRetried, &name, Some(&count)).await?;
        }
        None => {}
    }
    tx.commit().await?;
    Ok(count)
}

/// Deliveries not yet Delivered or Failed, over every integration (tests, the bench, shutdown logs).
pub async fn outstanding(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'retrying')")
        .fetch_one(&db.pool)
        .await?)
}

/// What the metrics read at scrape time: deliveries by stored state, and the due queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// `(state, count)` for every stored state (`pending`, `retrying`, `delivered`, `failed`), 0 included.
    pub by_state: Vec<(String, i64)>,
    /// Deliveries of Active integrations due now and not claimed (what a worker would claim next).
    pub due: i64,
    /// When the longest-waiting of those became due.
    pub oldest_due_at: Option<i64>,
}

pub async fn queue_stats(db: &Db, now: i64) -> Result<QueueStats, StoreError> {
    // The trigger-kept counters (migration 0008): a row per integration and state, not a count of every delivery.
    let rows = sqlx::query(
        "SELECT state, CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM delivery_counts GROUP BY state ORDER BY state",
    )
    .fetch_all(&db.pool)
    .await?;
    // Every stored state, at 0 when it has no delivery.
    let mut by_state: Vec<(String, i64)> =
        ["pending", "retrying", "delivered", "failed"].iter().map(|state| (state.to_string(), 0)).collect();
    for row in &rows {
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        match by_state.iter_mut().find(|(known, _)| *known == state) {
            Some(entry) => entry.1 = n,
            None => by_state.push((state, n)),
        }
    }
    let due = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(d.next_attempt_at) AS oldest FROM deliveries d \
         JOIN integrations i ON i.id = d.integration_id \
         WHERE d.state IN ('pending', 'retrying') AND d.next_attempt_at <= $1 AND d.lease_until <= $1 \
         AND i.active = 1",
    )
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    Ok(QueueStats { by_state, due: due.try_get("n")?, oldest_due_at: due.try_get("oldest")? })
}
