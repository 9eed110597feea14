//! Fixed-window rate limits kept in the database (server only), so every instance sharing it counts together.
//!
//! One row per counted thing (`rate_limits`): its count in the current window and when the window ends. A hit is
//! one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, atomic on both backends (a row lock on PostgreSQL,
//! the write lock on SQLite): N concurrent hits get the counts 1..N, so a limit cannot be raced by sending many
//! requests at once. Keys are keyed hashes of what is counted (see [`crate::secrets::SecretBox::keyed_hash`]).

use sqlx::Row;

use crate::db::{Db, StoreError};

/// The result of one hit: this hit's position in the window, and when the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub count: i64,
    pub expires_at: i64,
}

impl Hit {
    /// Whether this hit went over `max` hits per window.
    pub fn over(&self, max: u32) -> bool {
        self.count > i64::from(max)
    }

    /// Whole seconds until the window ends (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, now: i64) -> u64 {
        (((self.expires_at - now).max(0) as u64).div_ceil(1000)).max(1)
    }
}

/// Counts one hit on `key` at `now` (ms) in a window of `window_ms`, starting a new window when the last one ended.
pub async fn hit(db: &Db, key: &str, now: i64, window_ms: i64) -> Result<Hit, StoreError> {
    // Every right-hand side of the UPDATE reads the row as it was.
    let row = sqlx::query(
        "INSERT INTO rate_limits (key, count, expires_at) VALUES ($1, 1, $3) \
         ON CONFLICT (key) DO UPDATE SET \
         count = CASE WHEN rate_limits.expires_at <= $2 THEN 1 ELSE rate_limits.count + 1 END, \
         expires_at = CASE WHEN rate_limits.expires_at <= $2 THEN $3 ELSE rate_limits.expires_at END \
         RETURNING count, expires_at",
    )
    .bind(key)
    .bind(now)
    .bind(now + window_ms)
    .fetch_one(&db.pool)
    .await?;
    Ok(Hit { count: row.try_get("count")?, expires_at: row.try_get("expires_at")? })
}

/// Takes back one hit of the window `hit` was counted in (a request that turned out not to count, such as a
/// successful sign-in). Nothing happens once that window has ended.
pub async fn undo(db: &Db, key: &str, hit: Hit) -> Result<(), StoreError> {
    sqlx::query("UPDATE rate_limits SET count = count - 1 WHERE key = $1 AND expires_at = $2 AND count > 0")
        .bind(key)
        .bind(hit.expires_at)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forgets `key` altogether (a partner who signed in starts afresh from that client).
pub async fn reset(db: &Db, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_limits WHERE key = $1").bind(key).execute(&db.pool).await?;
    Ok(())
}

/// The count of `key` in its current window (0 when none), without counting a hit.
pub async fn peek(db: &Db, key: &str, now: i64) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT count FROM rate_limits WHERE key = $1 AND expires_at > $2")
        .bind(key)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|row| row.try_get("count")).transpose()?.unwrap_or(0))
}

/// Deletes the rows whose window has ended; returns how many. Cheap when there are none (an index on expires_at).
pub async fn purge(db: &Db, now: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM rate_limits WHERE expires_at <= $1").bind(now).execute(&db.pool).await?.rows_affected())
}

/// How many rows the table holds (for tests and the operator).
pub async fn rows(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM rate_limits").fetch_one(&db.pool).await?.try_get("n")?)
}
