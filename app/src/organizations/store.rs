//! Organization storage; every query is scoped to one partner (server only).

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Organization, name_key};
use crate::activity::{self, Actor, Kind};
use crate::db::{Db, StoreError, is_unique_violation, now_millis};

fn duplicate(name: &str) -> StoreError {
    StoreError::Conflict(format!("An organization named \"{name}\" already exists."))
}

pub fn not_found() -> StoreError {
    StoreError::NotFound("That organization no longer exists. Reload the page to see the current list.".into())
}

fn from_row(row: &AnyRow) -> Result<Organization, sqlx::Error> {
    Ok(Organization { id: row.try_get("id")?, name: row.try_get("name")?, integration_ids: Vec::new() })
}

/// The partner's organizations, sorted by name (case-insensitive), each with its integrations' ids.
pub async fn list(db: &Db, partner_id: i64) -> Result<Vec<Organization>, StoreError> {
    let rows = sqlx::query("SELECT id, name FROM organizations WHERE partner_id = $1 ORDER BY name_key, id")
        .bind(partner_id)
        .fetch_all(&db.pool)
        .await?;
    let mut associations = associations(db, partner_id).await?;
    rows.iter()
        .map(|row| {
            let mut org = from_row(row)?;
            org.integration_ids = associations.remove(&org.id).unwrap_or_default();
            Ok(org)
        })
        .collect()
}

/// How many organizations the partner has (for the per-partner cap).
pub async fn count(db: &Db, partner_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE partner_id = $1")
        .bind(partner_id)
        .fetch_one(&db.pool)
        .await?)
}

/// Adds an organization (`name` already validated) and associates it with the given integrations of the
/// partner, or with every one of them when `integration_ids` is `None` (the default for new organizations).
pub async fn add(
    db: &Db,
    partner_id: i64,
    name: &str,
    integration_ids: Option<&[i64]>,
    actor: &Actor,
) -> Result<Organization, StoreError> {
    let now = now_millis();
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query(
        "INSERT INTO organizations (partner_id, name, name_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id, name",
    )
    .bind(partner_id)
    .bind(name)
    .bind(name_key(name))
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| if is_unique_violation(&err) { duplicate(name) } else { err.into() })?;
    let mut org = from_row(&row)?;
    let partner_integrations: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM integrations WHERE partner_id = $1 ORDER BY id")
            .bind(partner_id)
            .fetch_all(&mut *tx)
            .await?;
    for id in partner_integrations.into_iter().filter(|id| integration_ids.is_none_or(|wanted| wanted.contains(id))) {
        sqlx::query("INSERT INTO organization_integrations (organization_id, integration_id) VALUES ($1, $2)")
            .bind(org.id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        org.integration_ids.push(id);
    }
    activity::store::record(&mut tx, partner_id, actor, Kind::OrganizationAdded, &org.name, None).await?;
    tx.commit().await?;
    Ok(org)
}

/// Renames one of the partner's organizations; another partner's id is reported as not found.
pub async fn rename(db: &Db, partner_id: i64, id: i64, name: &str, actor: &Actor) -> Result<Organization, StoreError> {
    let mut tx = db.pool.begin().await?;
    // The name before, read under the row's write lock (a transaction that reads first may not write on SQLite
    // when another connection wrote in between).
    let before: String =
        sqlx::query_scalar("UPDATE organizations SET updated_at = $1 WHERE id = $2 AND partner_id = $3 RETURNING name")
            .bind(now_millis())
            .bind(id)
            .bind(partner_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(not_found)?;
    let row = sqlx::query(
        "UPDATE organizations SET name = $1, name_key = $2, updated_at = $3 \
         WHERE id = $4 AND partner_id = $5 RETURNING id, name",
    )
    .bind(name)
    .bind(name_key(name))
    .bind(now_millis())
    .bind(id)
    .bind(partner_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|err| if is_unique_violation(&err) { duplicate(name) } else { err.into() })?;
    let mut org = row.as_ref().map(from_row).transpose()?.ok_or_else(not_found)?;
    if before != org.name {
        activity::store::record(&mut tx, partner_id, actor, Kind::OrganizationRenamed, &org.name, Some(&before))
            .await?;
    }
    tx.commit().await?;
    org.integration_ids = associations(db, partner_id).await?.remove(&org.id).unwrap_or_default();
    Ok(org)
}

pub async fn delete(db: &Db, partner_id: i64, id: i64, actor: &Actor) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    let name: String = sqlx::query_scalar("DELETE FROM organizations WHERE id = $1 AND partner_id = $2 RETURNING name")
        .bind(id)
        .bind(partner_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_found)?;
    activity::store::record(&mut tx, partner_id, actor, Kind::OrganizationDeleted, &name, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Ids of the partner's integrations associated with each of its organizations.
pub async fn associations(db: &Db, partner_id: i64) -> Result<BTreeMap<i64, Vec<i64>>, StoreError> {
    let rows = sqlx::query(
        "SELECT oi.organization_id, oi.integration_id FROM organization_integrations oi \
         JOIN organizations o ON o.id = oi.organization_id WHERE o.partner_id = $1 \
         ORDER BY oi.organization_id, oi.integration_id",
    )
    .bind(partner_id)
    .fetch_all(&db.pool)
    .await?;
    let mut map: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for row in &rows {
        map.entry(row.try_get("organization_id")?).or_default().push(row.try_get("integration_id")?);
    }
    Ok(map)
}
