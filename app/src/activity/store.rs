//! Activity storage (server only). [`record`] takes the connection of the transaction that makes the change it
//! records, so the change and its record are committed together or not at all; [`page`] reads one partner's
//! activity newest first, by keyset (`id < before_id`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Actor, Filter, Kind, MAX_TEXT_CHARS};
use crate::db::{Db, StoreError, now_millis};

/// One stored activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: i64,
    pub partner_id: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub actor: String,
    pub address: Option<String>,
    pub kind: Kind,
    pub subject: String,
    pub detail: Option<String>,
}

fn capped(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// Records one activity of the partner, on `conn`: pass the transaction of the change it records (`&mut tx`).
pub async fn record(
    conn: &mut AnyConnection,
    partner_id: i64,
    actor: &Actor,
    kind: Kind,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO activity (partner_id, created_at, actor, address, kind, subject, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(partner_id)
    .bind(now_millis())
    .bind(capped(&actor.email))
    .bind(actor.address.as_deref().map(capped))
    .bind(kind.key())
    .bind(capped(subject))
    .bind(detail.map(capped))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an activity that goes with no other write (a sign-in failure, a test ticket sent to ConnectWise).
pub async fn record_alone(
    db: &Db,
    partner_id: i64,
    actor: &Actor,
    kind: Kind,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let mut conn = db.pool.acquire().await?;
    record(&mut conn, partner_id, actor, kind, subject, detail).await
}

fn from_row(row: &AnyRow) -> Result<Option<Activity>, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    // A kind this version does not know (written by a newer one) is left out rather than shown wrongly.
    let Some(kind) = Kind::from_key(&kind) else { return Ok(None) };
    Ok(Some(Activity {
        id: row.try_get("id")?,
        partner_id: row.try_get("partner_id")?,
        created_at: row.try_get("created_at")?,
        actor: row.try_get("actor")?,
        address: row.try_get("address")?,
        kind,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
    }))
}

/// Up to `limit` of the partner's activities, newest first, of the kinds `filter` lets through (all without
/// one), older than `before_id` when given; and whether there are more.
pub async fn page(
    db: &Db,
    partner_id: i64,
    filter: Option<Filter>,
    before_id: Option<i64>,
    limit: usize,
) -> Result<(Vec<Activity>, bool), StoreError> {
    let mut sql = String::from(
        "SELECT id, partner_id, created_at, actor, address, kind, subject, detail FROM activity \
         WHERE partner_id = $1",
    );
    if let Some(filter) = filter {
        // Keys are our own constants ([a-z_.]), never what the request wrote.
        let kinds: Vec<String> = filter.kinds().iter().map(|kind| format!("'{}'", kind.key())).collect();
        sql.push_str(&format!(" AND kind IN ({})", kinds.join(", ")));
    }
    if let Some(before) = before_id {
        sql.push_str(&format!(" AND id < {before}"));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(partner_id).fetch_all(&db.pool).await?;
    let more = rows.len() > limit;
    let activities =
        rows.iter().take(limit).map(from_row).filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()?;
    Ok((activities, more))
}
