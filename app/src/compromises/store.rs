//! Storing an import batch (server only): organizations resolved, compromises inserted (a uuid already imported is
//! a no-op), and in the same transaction one delivery queued for every Active integration associated with each new
//! compromise's organization — the outbox the delivery workers drain.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{ImportError, ImportRecord, ImportSummary, OrganizationRef, RecordError};
use crate::db::{Db, StoreError, now_millis};
use crate::mapping::{Compromise, PasswordCriteria, RecordType};
use crate::secrets::SecretBox;

/// Rows per multi-row `INSERT`: 8 parameters each, well inside both backends' limits.
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    /// The batch refers to organizations the partner does not have; nothing was imported.
    #[error(transparent)]
    Rejected(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not seal a compromise's password")]
    Seal,
    /// The batch would leave more deliveries waiting than the partner may have; nothing was imported.
    #[error(
        "Nothing was imported: this batch would leave {waiting} tickets waiting to be sent, over your limit of {max}. \
         Send it again once the waiting tickets have gone out (the Delivery log shows them), or contact support to \
         raise the limit."
    )]
    QueueFull { waiting: i64, max: usize },
}

impl From<sqlx::Error> for ImportFailed {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

/// The fields of a compromise stored as JSON beside its indexed columns (the password is sealed apart).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Details {
    source: String,
    website: Option<String>,
    password_criteria: PasswordCriteria,
    search_value: String,
    date_added: String,
    date_found: String,
}

/// The associated data a compromise's password is sealed with: bound to its partner.
pub fn password_context(partner_id: i64) -> String {
    format!("dwid:partner:{partner_id}:compromise-password")
}

fn record_type_from_db(text: &str) -> RecordType {
    match text {
        "Domain" => RecordType::Domain,
        "IP" => RecordType::Ip,
        _ => RecordType::Email,
    }
}

/// Imports a validated batch for the partner in one transaction: all of it, or nothing.
///
/// Every record's organization must be the partner's (by id, or by name compared as the Organizations page does,
/// without case); otherwise the batch is rejected with one error per such record.
pub async fn import(
    db: &Db,
    secrets: &SecretBox,
    partner_id: i64,
    records: &[ImportRecord],
) -> Result<ImportSummary, ImportFailed> {
    import_within(db, secrets, partner_id, records, usize::MAX).await
}

/// [`import`], refused as a whole ([`ImportFailed::QueueFull`]) when afterwards more than `max_waiting` of the
/// partner's deliveries would be waiting (Pending or Retrying): a partner's backlog stays bounded.
pub async fn import_within(
    db: &Db,
    secrets: &SecretBox,
    partner_id: i64,
    records: &[ImportRecord],
    max_waiting: usize,
) -> Result<ImportSummary, ImportFailed> {
    let organizations = resolve_organizations(db, partner_id, records).await?;
    let context = password_context(partner_id);
    let now = now_millis();
    let mut summary = ImportSummary { received: records.len(), ..Default::default() };
    let mut tx = db.pool.begin().await?;
    for (chunk_index, chunk) in records.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO compromises (partner_id, organization_id, uuid, record_type, compromise, details, \
             password_sealed, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 8;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
        }
        sql.push_str(" ON CONFLICT (partner_id, uuid) DO NOTHING RETURNING id");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, record) in chunk.iter().enumerate() {
            let organization_id = organizations[chunk_index * ROWS_PER_STATEMENT + i];
            let details = Details {
                source: record.source.clone(),
                website: record.website.clone(),
                password_criteria: record.password_criteria,
                search_value: record.search_value.clone(),
                date_added: record.date_added.clone(),
                date_found: record.date_found.clone(),
            };
            let details = serde_json::to_string(&details).map_err(|_| ImportFailed::Seal)?;
            let sealed = match &record.password {
                Some(password) => Some(secrets.seal(password, &context).map_err(|_| ImportFailed::Seal)?),
                None => None,
            };
            query = query
                .bind(partner_id)
                .bind(organization_id)
                .bind(record.uuid.clone())
                .bind(record.record_type.as_str())
                .bind(record.compromise.clone())
                .bind(details)
                .bind(sealed)
                .bind(now);
        }
        let inserted: Vec<i64> =
            query.fetch_all(&mut *tx).await?.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?;
        summary.imported += inserted.len();
        summary.duplicates += chunk.len() - inserted.len();
        if inserted.is_empty() {
            continue;
        }
        // Integer ids from the database, inlined: no injection possible, and no parameter-count limit to mind.
        let ids: Vec<String> = inserted.iter().map(i64::to_string).collect();
        let queued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO deliveries (integration_id, compromise_id, organization_id, state, next_attempt_at, \
             created_at, updated_at) \
             SELECT oi.integration_id, c.id, c.organization_id, 'pending', $1, $1, $1 FROM compromises c \
             JOIN organization_integrations oi ON oi.organization_id = c.organization_id \
             JOIN integrations i ON i.id = oi.integration_id AND i.active = 1 \
             WHERE c.id IN ({})",
            ids.join(",")
        )))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        summary.deliveries_queued += queued.rows_affected() as usize;
    }
    if summary.deliveries_queued > 0 && max_waiting < usize::MAX {
        // Counted inside the transaction, after this batch's own deliveries: the cap holds for the result.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
             WHERE i.partner_id = $1 AND d.state IN ('pending', 'retrying')",
        )
        .bind(partner_id)
        .fetch_one(&mut *tx)
        .await?;
        if waiting > max_waiting as i64 {
            return Err(ImportFailed::QueueFull { waiting, max: max_waiting });
        }
    }
    tx.commit().await?;
    Ok(summary)
}

/// Checks that every record's organization is the partner's, reporting each one that is not (a file import checks
/// the whole file this way before importing it in chunks).
pub async fn check_organizations(db: &Db, partner_id: i64, records: &[ImportRecord]) -> Result<(), ImportFailed> {
    resolve_organizations(db, partner_id, records).await.map(|_| ())
}

/// The organization id of every record, in order, or the batch's errors.
async fn resolve_organizations(db: &Db, partner_id: i64, records: &[ImportRecord]) -> Result<Vec<i64>, ImportFailed> {
    let rows = sqlx::query("SELECT id, name_key FROM organizations WHERE partner_id = $1")
        .bind(partner_id)
        .fetch_all(&db.pool)
        .await?;
    let mut by_key: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in &rows {
        by_key.insert(row.try_get("name_key")?, row.try_get("id")?);
    }
    let ids: std::collections::HashSet<i64> = by_key.values().copied().collect();
    let mut resolved = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let record_no = index + 1;
        match &record.organization {
            OrganizationRef::ById(id) if ids.contains(id) => resolved.push(*id),
            OrganizationRef::ById(id) => errors.push(RecordError {
                record: record_no,
                line: None,
                field: Some("organization_id".into()),
                message: format!("record {record_no}: `organization_id` {id} is not one of your organizations"),
            }),
            OrganizationRef::ByName(name) => match by_key.get(&crate::organizations::name_key(name.trim())) {
                Some(id) => resolved.push(*id),
                None => errors.push(RecordError {
                    record: record_no,
                    line: None,
                    field: Some("organization_name".into()),
                    message: format!(
                        "record {record_no}: `organization_name` {name:?} is not one of your organizations (add it on \
                         the Organizations page first)"
                    ),
                }),
            },
        }
    }
    if errors.is_empty() { Ok(resolved) } else { Err(ImportError::Invalid(errors.into()).into()) }
}

/// One stored compromise as the delivery worker renders it.
pub async fn load_for_delivery(
    db: &Db,
    secrets: &SecretBox,
    compromise_ids: &[i64],
) -> Result<HashMap<i64, Result<Compromise, String>>, StoreError> {
    if compromise_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = compromise_ids.iter().map(i64::to_string).collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.id, c.partner_id, c.uuid, c.record_type, c.compromise, c.details, c.password_sealed, o.name \
         FROM compromises c JOIN organizations o ON o.id = c.organization_id WHERE c.id IN ({})",
        ids.join(",")
    )))
    .fetch_all(&db.pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let partner_id: i64 = row.try_get("partner_id")?;
        let details: String = row.try_get("details")?;
        let sealed: Option<String> = row.try_get("password_sealed")?;
        let record_type: String = row.try_get("record_type")?;
        let compromise = (|| -> Result<Compromise, String> {
            let details: Details =
                serde_json::from_str(&details).map_err(|_| "The stored compromise is unreadable.".to_owned())?;
            let password = match sealed {
                Some(sealed) => Some(secrets.open(&sealed, &password_context(partner_id)).map_err(|_| {
                    "The compromise's stored password cannot be decrypted (was the secrets key changed?).".to_owned()
                })?),
                None => None,
            };
            Ok(Compromise {
                uuid: row.try_get("uuid").map_err(|e| e.to_string())?,
                password,
                record_type: record_type_from_db(&record_type),
                source: details.source,
                website: details.website,
                organization_name: row.try_get("name").map_err(|e| e.to_string())?,
                compromise: row.try_get("compromise").map_err(|e| e.to_string())?,
                password_criteria: details.password_criteria,
                search_value: details.search_value,
                date_added: details.date_added,
                date_found: details.date_found,
            })
        })();
        out.insert(id, compromise);
    }
    Ok(out)
}
