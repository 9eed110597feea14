//! API token storage (server only). A token is `dwid_` + 48 hex digits of randomness; only its SHA-256 is stored
//! (the token is high-entropy, so a fast hash is enough: nothing to brute-force), with its first 13 characters as
//! a prefix the Settings page shows.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::ApiToken;
use crate::activity::{self, Actor, Kind};
use crate::db::{Db, StoreError, now_millis};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "dwid_";
/// Characters of the token shown in lists: `dwid_` and 8 hex digits.
pub const SHOWN_PREFIX_CHARS: usize = 13;
/// Skip rewriting `last_used_at` when it is this recent: one write a minute per token, not one per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

pub fn not_found() -> StoreError {
    StoreError::NotFound("That API token no longer exists. Reload the page to see the current list.".into())
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

fn from_row(row: &AnyRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Creates a token named `name` (already validated) and returns it with the token itself, which is never
/// retrievable again. The activity records its name and shown prefix, never the token.
pub async fn create(db: &Db, partner_id: i64, name: &str, actor: &Actor) -> Result<(ApiToken, String), StoreError> {
    let token = generate();
    let prefix: String = token.chars().take(SHOWN_PREFIX_CHARS).collect();
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query(
        "INSERT INTO api_tokens (partner_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, name, prefix, created_at, last_used_at, revoked_at",
    )
    .bind(partner_id)
    .bind(name)
    .bind(&prefix)
    .bind(hash(&token))
    .bind(now_millis())
    .fetch_one(&mut *tx)
    .await?;
    activity::store::record(&mut tx, partner_id, actor, Kind::ApiTokenCreated, name, Some(&prefix)).await?;
    tx.commit().await?;
    Ok((from_row(&row)?, token))
}

/// The partner's tokens, newest first (revoked ones included, marked).
pub async fn list(db: &Db, partner_id: i64) -> Result<Vec<ApiToken>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens WHERE partner_id = $1 \
         ORDER BY id DESC",
    )
    .bind(partner_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Revokes a token of the partner; revoking a revoked one is a no-op (and not recorded again).
pub async fn revoke(db: &Db, partner_id: i64, id: i64, actor: &Actor) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND partner_id = $3 AND revoked_at IS NULL \
         RETURNING name, prefix",
    )
    .bind(now_millis())
    .bind(id)
    .bind(partner_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = revoked {
        let (name, prefix): (String, String) = (row.try_get("name")?, row.try_get("prefix")?);
        activity::store::record(&mut tx, partner_id, actor, Kind::ApiTokenRevoked, &name, Some(&prefix)).await?;
        tx.commit().await?;
        return Ok(());
    }
    drop(tx);
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE id = $1 AND partner_id = $2")
        .bind(id)
        .bind(partner_id)
        .fetch_one(&db.pool)
        .await?;
    if exists == 0 { Err(not_found()) } else { Ok(()) }
}

/// The partner a presented token belongs to, when it is a live token; records its use.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<i64>, StoreError> {
    let token = token.trim();
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let row =
        sqlx::query("SELECT id, partner_id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(&db.pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let now = now_millis();
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(row.try_get::<i64, _>("id")?)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(row.try_get("partner_id")?))
}
