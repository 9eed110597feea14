//! Storing an import batch (server only): organizations resolved, compromises inserted (a uuid already imported is
//! a no-op), and in the same transaction one delivery queued for every Active integration associated with each new
//! compromise's organization — the outbox the delivery workers drain.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{ImportError, ImportRecord, ImportSummary, OrganizationRef, RecordError};
use crate::db::{Backend, Db, StoreError, now_millis};
use crate::mapping::{Compromise, PasswordCriteria, RecordType};
use crate::secrets::SecretBox;

/// Rows per multi-row `INSERT` on SQLite. Its placeholders are anonymous `?`s: sqlx looks each numbered one
/// (`$n`) up by name, which SQLite answers by walking the statement's list of names, so a statement of 4,000
/// numbered parameters spent more time binding than inserting. The statement of a full chunk is the same text
/// every time, so it is prepared once per connection and reused.
const SQLITE_ROWS_PER_STATEMENT: usize = 250;

/// Deliveries per multi-row `INSERT` on SQLite (6 parameters each).
const SQLITE_DELIVERIES_PER_STATEMENT: usize = 500;

/// Records per statement on PostgreSQL: each column travels as one array parameter, so a statement's size is not
/// bounded by the parameter limit; this bounds the memory of one statement instead.
const POSTGRES_ROWS_PER_STATEMENT: usize = 10_000;

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
    let rows = prepare_rows(secrets, partner_id, records, &organizations)?;
    let now = now_millis();
    let mut summary = ImportSummary { received: records.len(), ..Default::default() };
    let mut tx = db.pool.begin().await?;
    let (imported, queued) = match db.backend {
        Backend::Postgres => insert_postgres(&mut tx, partner_id, &rows, now).await?,
        Backend::Sqlite => insert_sqlite(&mut tx, partner_id, &rows, now).await?,
    };
    summary.imported = imported;
    summary.duplicates = records.len() - imported;
    summary.deliveries_queued = queued;
    if summary.deliveries_queued > 0 && max_waiting < usize::MAX {
        // Read inside the transaction, after this batch's own deliveries were counted: the cap holds for the
        // result. The counters (kept by the deliveries' triggers) make this a read of a few rows, not a count of
        // every waiting delivery.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(c.n), 0) AS BIGINT) FROM delivery_counts c \
             JOIN integrations i ON i.id = c.integration_id \
             WHERE i.partner_id = $1 AND c.state IN ('pending', 'retrying')",
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

/// One compromise as stored: its organization resolved, its other fields as JSON, its password sealed.
struct NewCompromise<'a> {
    organization_id: i64,
    uuid: &'a str,
    record_type: &'static str,
    compromise: &'a str,
    details: String,
    sealed: Option<String>,
}

/// Everything that is not the database's work (JSON, sealing), done before the transaction opens.
fn prepare_rows<'a>(
    secrets: &SecretBox,
    partner_id: i64,
    records: &'a [ImportRecord],
    organizations: &[i64],
) -> Result<Vec<NewCompromise<'a>>, ImportFailed> {
    let context = password_context(partner_id);
    records
        .iter()
        .zip(organizations)
        .map(|(record, &organization_id)| {
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
            Ok(NewCompromise {
                organization_id,
                uuid: &record.uuid,
                record_type: record.record_type.as_str(),
                compromise: &record.compromise,
                details,
                sealed,
            })
        })
        .collect()
}

/// PostgreSQL: one statement per chunk. Each column is one array parameter (sent as an array literal in text,
/// since the `Any` driver binds no arrays), `UNNEST`ed into rows; the new compromises' ids feed the outbox's
/// `INSERT … SELECT` in the same statement, so a chunk is one round trip whatever its size. Returns (compromises
/// imported, deliveries queued).
async fn insert_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    partner_id: i64,
    rows: &[NewCompromise<'_>],
    now: i64,
) -> Result<(usize, usize), ImportFailed> {
    let (mut imported, mut queued) = (0, 0);
    for chunk in rows.chunks(POSTGRES_ROWS_PER_STATEMENT) {
        let organizations: Vec<String> = chunk.iter().map(|r| r.organization_id.to_string()).collect();
        let row = sqlx::query(
            "WITH input AS ( \
                 SELECT * FROM unnest($3::text::bigint[], $4::text::text[], $5::text::text[], $6::text::text[], \
                     $7::text::text[], $8::text::text[]) \
                 AS t(organization_id, uuid, record_type, compromise, details, password_sealed) \
             ), inserted AS ( \
                 INSERT INTO compromises (partner_id, organization_id, uuid, record_type, compromise, details, \
                     password_sealed, created_at) \
                 SELECT $1, organization_id, uuid, record_type, compromise, details, password_sealed, $2 FROM input \
                 ON CONFLICT (partner_id, uuid) DO NOTHING \
                 RETURNING id, organization_id \
             ), queued AS ( \
                 INSERT INTO deliveries (integration_id, compromise_id, organization_id, state, next_attempt_at, \
                     created_at, updated_at) \
                 SELECT oi.integration_id, c.id, c.organization_id, 'pending', $2, $2, $2 FROM inserted c \
                 JOIN organization_integrations oi ON oi.organization_id = c.organization_id \
                 JOIN integrations i ON i.id = oi.integration_id AND i.active = 1 \
                 RETURNING 1 \
             ) \
             SELECT (SELECT COUNT(*) FROM inserted) AS imported, (SELECT COUNT(*) FROM queued) AS queued",
        )
        .bind(partner_id)
        .bind(now)
        .bind(format!("{{{}}}", organizations.join(",")))
        .bind(text_array(chunk.iter().map(|r| Some(r.uuid))))
        .bind(text_array(chunk.iter().map(|r| Some(r.record_type))))
        .bind(text_array(chunk.iter().map(|r| Some(r.compromise))))
        .bind(text_array(chunk.iter().map(|r| Some(r.details.as_str()))))
        .bind(text_array(chunk.iter().map(|r| r.sealed.as_deref())))
        .fetch_one(&mut **tx)
        .await?;
        imported += row.try_get::<i64, _>("imported")? as usize;
        queued += row.try_get::<i64, _>("queued")? as usize;
    }
    Ok((imported, queued))
}

/// A PostgreSQL array literal of text values (`NULL` for none): every element double-quoted, with `\` and `"`
/// escaped by a backslash, so any text round-trips. It travels as a bound parameter, never inside the SQL.
fn text_array<'a>(items: impl Iterator<Item = Option<&'a str>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(text) => {
                out.push('"');
                for ch in text.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// SQLite: prepared multi-row `INSERT`s of anonymous parameters; the outbox rows are built here from the new
/// compromises' (id, organization) and the partner's Active associations, read inside the same transaction (its
/// first statement was a write, so it holds SQLite's write lock and reads the latest state). Returns (compromises
/// imported, deliveries queued).
async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    partner_id: i64,
    rows: &[NewCompromise<'_>],
    now: i64,
) -> Result<(usize, usize), ImportFailed> {
    let mut inserted: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(multi_row_insert(
            "INSERT INTO compromises (partner_id, organization_id, uuid, record_type, compromise, details, \
             password_sealed, created_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            chunk.len(),
            " ON CONFLICT (partner_id, uuid) DO NOTHING RETURNING id, organization_id",
        )));
        for row in chunk {
            query = query
                .bind(partner_id)
                .bind(row.organization_id)
                .bind(row.uuid)
                .bind(row.record_type)
                .bind(row.compromise)
                .bind(row.details.as_str())
                .bind(row.sealed.as_deref())
                .bind(now);
        }
        for row in query.fetch_all(&mut **tx).await? {
            inserted.push((row.try_get("id")?, row.try_get("organization_id")?));
        }
    }
    if inserted.is_empty() {
        return Ok((0, 0));
    }
    let mut integrations_of: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in sqlx::query(
        "SELECT oi.organization_id, oi.integration_id FROM organization_integrations oi \
         JOIN integrations i ON i.id = oi.integration_id WHERE i.partner_id = $1 AND i.active = 1 \
         ORDER BY oi.integration_id",
    )
    .bind(partner_id)
    .fetch_all(&mut **tx)
    .await?
    {
        integrations_of.entry(row.try_get("organization_id")?).or_default().push(row.try_get("integration_id")?);
    }
    let deliveries: Vec<(i64, i64, i64)> = inserted
        .iter()
        .flat_map(|&(compromise, organization)| {
            integrations_of
                .get(&organization)
                .into_iter()
                .flatten()
                .map(move |&integration| (integration, compromise, organization))
        })
        .collect();
    for chunk in deliveries.chunks(SQLITE_DELIVERIES_PER_STATEMENT) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(multi_row_insert(
            "INSERT INTO deliveries (integration_id, compromise_id, organization_id, state, next_attempt_at, \
             created_at, updated_at) VALUES ",
            "(?, ?, ?, 'pending', ?, ?, ?)",
            chunk.len(),
            "",
        )));
        for &(integration, compromise, organization) in chunk {
            query = query.bind(integration).bind(compromise).bind(organization).bind(now).bind(now).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok((inserted.len(), deliveries.len()))
}

/// `head` + `rows` copies of `values` separated by commas + `tail`.
fn multi_row_insert(head: &str, values: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (values.len() + 1) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(values);
    }
    sql.push_str(tail);
    sql
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
