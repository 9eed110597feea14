//! Integration storage; every query is scoped to one partner (server only). Credentials arrive here already
//! sealed: this layer never sees a plaintext secret.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AuthKind, Health, name_key};
use crate::activity::{self, Actor, Kind};
use crate::db::{Db, StoreError, is_unique_violation, now_millis};

/// One integration as stored (sealed credentials and mapping JSON included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIntegration {
    pub id: i64,
    pub partner_id: i64,
    pub name: String,
    pub system: String,
    pub active: bool,
    pub site: String,
    pub company_id: String,
    pub auth_kind: AuthKind,
    pub credentials_sealed: String,
    pub mapping_json: String,
    /// Per-system settings in clear (JSON object), e.g. the request budget.
    pub settings_json: String,
    pub health: Health,
    pub health_error: Option<String>,
    pub health_at: Option<i64>,
}

/// What create and update write.
#[derive(Debug, Clone)]
pub struct IntegrationWrite<'a> {
    pub name: &'a str,
    pub system: &'a str,
    pub site: &'a str,
    pub company_id: &'a str,
    pub auth_kind: AuthKind,
    pub credentials_sealed: &'a str,
    pub mapping_json: &'a str,
    /// A JSON object (`"{}"` for none).
    pub settings_json: &'a str,
}

const COLUMNS: &str = "id, partner_id, name, system, active, site, company_id, auth_kind, credentials_sealed, \
                       mapping, settings, health, health_error, health_at";

fn duplicate(name: &str) -> StoreError {
    StoreError::Conflict(format!("An integration named \"{name}\" already exists. Choose another name."))
}

pub fn not_found() -> StoreError {
    StoreError::NotFound("That integration no longer exists. Reload the page to see the current list.".into())
}

fn from_row(row: &AnyRow) -> Result<StoredIntegration, sqlx::Error> {
    let auth: String = row.try_get("auth_kind")?;
    let health: String = row.try_get("health")?;
    Ok(StoredIntegration {
        id: row.try_get("id")?,
        partner_id: row.try_get("partner_id")?,
        name: row.try_get("name")?,
        system: row.try_get("system")?,
        active: row.try_get::<i64, _>("active")? != 0,
        site: row.try_get("site")?,
        company_id: row.try_get("company_id")?,
        auth_kind: AuthKind::from_db(&auth),
        credentials_sealed: row.try_get("credentials_sealed")?,
        mapping_json: row.try_get("mapping")?,
        settings_json: row.try_get("settings")?,
        health: Health::from_db(&health),
        health_error: row.try_get("health_error")?,
        health_at: row.try_get("health_at")?,
    })
}

/// The partner's integrations sorted by name, each with the names of its organizations (sorted).
pub async fn list(db: &Db, partner_id: i64) -> Result<Vec<(StoredIntegration, Vec<String>)>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM integrations WHERE partner_id = $1 ORDER BY name_key, id"
    )))
    .bind(partner_id)
    .fetch_all(&db.pool)
    .await?;
    let links = sqlx::query(
        "SELECT oi.integration_id, o.name FROM organization_integrations oi \
         JOIN organizations o ON o.id = oi.organization_id \
         WHERE o.partner_id = $1 ORDER BY o.name_key, o.id",
    )
    .bind(partner_id)
    .fetch_all(&db.pool)
    .await?;
    let mut names: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for link in &links {
        names.entry(link.try_get("integration_id")?).or_default().push(link.try_get("name")?);
    }
    rows.iter()
        .map(|row| {
            let integration = from_row(row)?;
            let orgs = names.remove(&integration.id).unwrap_or_default();
            Ok((integration, orgs))
        })
        .collect()
}

pub async fn get(db: &Db, partner_id: i64, id: i64) -> Result<StoredIntegration, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM integrations WHERE id = $1 AND partner_id = $2"
    )))
    .bind(id)
    .bind(partner_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()?.ok_or_else(not_found)
}

/// How many integrations the partner has (for the per-partner cap).
pub async fn count(db: &Db, partner_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM integrations WHERE partner_id = $1")
        .bind(partner_id)
        .fetch_one(&db.pool)
        .await?)
}

/// Creates an Inactive integration and associates it with every organization of the partner.
pub async fn create(db: &Db, partner_id: i64, write: &IntegrationWrite<'_>, actor: &Actor) -> Result<i64, StoreError> {
    let now = now_millis();
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query(
        "INSERT INTO integrations (partner_id, name, name_key, system, active, site, company_id, auth_kind, \
         credentials_sealed, mapping, settings, health, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10, 'not_checked', $11, $11) RETURNING id",
    )
    .bind(partner_id)
    .bind(write.name)
    .bind(name_key(write.name))
    .bind(write.system)
    .bind(write.site)
    .bind(write.company_id)
    .bind(write.auth_kind.as_db())
    .bind(write.credentials_sealed)
    .bind(write.mapping_json)
    .bind(write.settings_json)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| if is_unique_violation(&err) { duplicate(write.name) } else { err.into() })?;
    let id: i64 = row.try_get("id")?;
    sqlx::query(
        "INSERT INTO organization_integrations (organization_id, integration_id) \
         SELECT id, $1 FROM organizations WHERE partner_id = $2",
    )
    .bind(id)
    .bind(partner_id)
    .execute(&mut *tx)
    .await?;
    activity::store::record(&mut tx, partner_id, actor, Kind::IntegrationCreated, write.name, None).await?;
    tx.commit().await?;
    Ok(id)
}

// Each transaction below that records an activity starts with a write: on SQLite a transaction that reads first
// and writes later fails at once (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between, such as the
// delivery worker recording health.

pub async fn update(
    db: &Db,
    partner_id: i64,
    id: i64,
    write: &IntegrationWrite<'_>,
    actor: &Actor,
) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    // The name before the change, read under the row's write lock.
    let before: String =
        sqlx::query_scalar("UPDATE integrations SET updated_at = $1 WHERE id = $2 AND partner_id = $3 RETURNING name")
            .bind(now_millis())
            .bind(id)
            .bind(partner_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(not_found)?;
    sqlx::query(
        "UPDATE integrations SET name = $1, name_key = $2, site = $3, company_id = $4, auth_kind = $5, \
         credentials_sealed = $6, mapping = $7, settings = $8, updated_at = $9 WHERE id = $10 AND partner_id = $11",
    )
    .bind(write.name)
    .bind(name_key(write.name))
    .bind(write.site)
    .bind(write.company_id)
    .bind(write.auth_kind.as_db())
    .bind(write.credentials_sealed)
    .bind(write.mapping_json)
    .bind(write.settings_json)
    .bind(now_millis())
    .bind(id)
    .bind(partner_id)
    .execute(&mut *tx)
    .await
    .map_err(|err| if is_unique_violation(&err) { duplicate(write.name) } else { err.into() })?;
    let renamed = (before != write.name).then_some(before.as_str());
    activity::store::record(&mut tx, partner_id, actor, Kind::IntegrationEdited, write.name, renamed).await?;
    tx.commit().await?;
    Ok(())
}

/// Enables or disables the integration; a change is recorded, a repeated click is not.
pub async fn set_active(db: &Db, partner_id: i64, id: i64, active: bool, actor: &Actor) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    let changed: Option<String> = sqlx::query_scalar(
        "UPDATE integrations SET active = $1, updated_at = $2 WHERE id = $3 AND partner_id = $4 AND active <> $1 \
         RETURNING name",
    )
    .bind(i64::from(active))
    .bind(now_millis())
    .bind(id)
    .bind(partner_id)
    .fetch_optional(&mut *tx)
    .await?;
    match changed {
        Some(name) => {
            let kind = if active { Kind::IntegrationEnabled } else { Kind::IntegrationDisabled };
            activity::store::record(&mut tx, partner_id, actor, kind, &name, None).await?;
            tx.commit().await?;
            Ok(())
        }
        None => {
            drop(tx);
            // Already so, or not the partner's.
            get(db, partner_id, id).await.map(|_| ())
        }
    }
}

/// Removes the integration, its sealed credentials and its associations.
pub async fn remove(db: &Db, partner_id: i64, id: i64, actor: &Actor) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "DELETE FROM organization_integrations WHERE integration_id = \
         (SELECT id FROM integrations WHERE id = $1 AND partner_id = $2)",
    )
    .bind(id)
    .bind(partner_id)
    .execute(&mut *tx)
    .await?;
    let name: String = sqlx::query_scalar("DELETE FROM integrations WHERE id = $1 AND partner_id = $2 RETURNING name")
        .bind(id)
        .bind(partner_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_found)?;
    activity::store::record(&mut tx, partner_id, actor, Kind::IntegrationRemoved, &name, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Records the outcome of the most recent ConnectWise request: Healthy clears the error, Unhealthy keeps the
/// message until a later request succeeds.
pub async fn record_health(db: &Db, id: i64, outcome: Result<(), &str>) -> Result<(), StoreError> {
    record_health_at(db, id, outcome, now_millis()).await
}

/// [`record_health`] for a request made at `at`: an outcome older than the recorded one is ignored, so writers in
/// several processes leave the most recent outcome in place.
pub async fn record_health_at(db: &Db, id: i64, outcome: Result<(), &str>, at: i64) -> Result<(), StoreError> {
    let (health, error) = match outcome {
        Ok(()) => (Health::Healthy, None),
        Err(message) => (Health::Unhealthy, Some(message)),
    };
    sqlx::query(
        "UPDATE integrations SET health = $1, health_error = $2, health_at = $3 \
         WHERE id = $4 AND (health_at IS NULL OR health_at <= $3)",
    )
    .bind(health.as_db())
    .bind(error)
    .bind(at)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Any partner's integration by id (the delivery worker, which serves every partner).
pub async fn get_by_id(db: &Db, id: i64) -> Result<Option<StoredIntegration>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM integrations WHERE id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// `(id, updated_at, active)` of the integrations that still exist among `ids`.
pub async fn updated_at(db: &Db, ids: &[i64]) -> Result<Vec<(i64, i64, bool)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, updated_at, active FROM integrations WHERE id IN ({})",
        list.join(",")
    )))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("updated_at")?, r.try_get::<i64, _>("active")? != 0)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Associates (or dissociates) one organization and one integration, both the partner's. A change is recorded; a
/// box ticked twice is not.
pub async fn set_association(
    db: &Db,
    partner_id: i64,
    organization_id: i64,
    integration_id: i64,
    associated: bool,
    actor: &Actor,
) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    // Only between the partner's own organization and integration; whether both are is checked after.
    let owned = "EXISTS (SELECT 1 FROM organizations WHERE id = $1 AND partner_id = $3) \
                 AND EXISTS (SELECT 1 FROM integrations WHERE id = $2 AND partner_id = $3)";
    let sql = if associated {
        format!(
            "INSERT INTO organization_integrations (organization_id, integration_id) SELECT $1, $2 WHERE {owned} \
             ON CONFLICT DO NOTHING"
        )
    } else {
        format!("DELETE FROM organization_integrations WHERE organization_id = $1 AND integration_id = $2 AND {owned}")
    };
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(organization_id)
        .bind(integration_id)
        .bind(partner_id)
        .execute(&mut *tx)
        .await?;
    let names = sqlx::query(
        "SELECT (SELECT name FROM organizations WHERE id = $1 AND partner_id = $3) AS organization_name, \
                (SELECT name FROM integrations WHERE id = $2 AND partner_id = $3) AS integration_name",
    )
    .bind(organization_id)
    .bind(integration_id)
    .bind(partner_id)
    .fetch_one(&mut *tx)
    .await?;
    let organization: String =
        names.try_get::<Option<String>, _>("organization_name")?.ok_or_else(crate::organizations::store::not_found)?;
    let integration: String = names.try_get::<Option<String>, _>("integration_name")?.ok_or_else(not_found)?;
    if result.rows_affected() > 0 {
        let kind = if associated { Kind::OrganizationLinked } else { Kind::OrganizationUnlinked };
        activity::store::record(&mut tx, partner_id, actor, kind, &organization, Some(&integration)).await?;
    }
    tx.commit().await?;
    Ok(())
}
