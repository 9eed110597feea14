//! The import API: `POST /api/v1/compromises`, authorised by a partner's API token (`Authorization: Bearer
//! dwid_…`), taking a JSON array or NDJSON. The batch is validated as a whole and stored all-or-nothing; the reply
//! says how many records were new, how many were already imported (no-ops) and how many deliveries were queued.
//!
//! Errors are JSON `{"error": sentence, "errors": [{record, line, field, message}…], "error_count": n}`: 401
//! without a valid token, 413 over the body or record limit (checked before the body is read, and records counted
//! before any is built), 415 for a format other than JSON/NDJSON, 422 for invalid records (the first 100 problems,
//! each naming its record and line, and how many in all), 429 with `Retry-After` over the token's requests per
//! minute, 500 when storing failed (nothing was imported).

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use app::compromises::store::ImportFailed;
use app::compromises::{ImportError, Limits, RecordError};
use app::metrics::ImportRefusal;
use app::state::AppState;

pub const IMPORT_PATH: &str = "/api/v1/compromises";

fn error(status: StatusCode, message: &str, errors: &[RecordError]) -> Response {
    error_counted(status, message, errors, errors.len())
}

fn error_counted(status: StatusCode, message: &str, errors: &[RecordError], count: usize) -> Response {
    (status, axum::Json(json!({ "error": message, "errors": errors, "error_count": count }))).into_response()
}

/// Why an import was refused, for the metrics.
fn refusal(err: &ImportError) -> ImportRefusal {
    match err {
        ImportError::TooLarge { .. } => ImportRefusal::TooLarge,
        ImportError::Invalid(_) => ImportRefusal::Invalid,
        ImportError::UnsupportedFormat(_) => ImportRefusal::UnsupportedFormat,
    }
}

fn rejected(err: &ImportError) -> Response {
    let status = match err {
        ImportError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ImportError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ImportError::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    };
    let (errors, count) = match err {
        ImportError::Invalid(problems) => (&problems[..], problems.total()),
        _ => (&[][..], 0),
    };
    let message = match err {
        ImportError::TooLarge { .. } => format!("The batch is too large: {err}. Nothing was imported; split it."),
        _ => format!("{}{}", capitalise(&err.to_string()), if errors.is_empty() { "." } else { ":" }),
    };
    error_counted(status, &message, errors, count)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "The service is unavailable; try again shortly.", &[])
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message, &[]);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"dwid\""));
    response
}

pub async fn import_compromises(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (response, refused) = import(&state, &headers, body).await;
    if let Some(reason) = refused {
        state.metrics.import_refused(reason);
    }
    response
}

/// The import and, when nothing was imported, why (for the metrics).
async fn import(state: &AppState, headers: &HeaderMap, body: Body) -> (Response, Option<ImportRefusal>) {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        // The token as authentication reads it: padding cannot make a second rate-limit key for the same token.
        .map(str::trim)
    else {
        let response = unauthorized("Send an API token as `Authorization: Bearer dwid_…` (create one under Settings).");
        return (response, Some(ImportRefusal::Unauthorized));
    };
    let partner_id = match app::api_tokens::store::authenticate(&state.db, token).await {
        Ok(Some(partner_id)) => partner_id,
        Ok(None) => {
            return (unauthorized("The API token is not valid, or was revoked."), Some(ImportRefusal::Unauthorized));
        }
        Err(err) => {
            tracing::error!(error = %err, "API token lookup failed");
            return (unavailable(), Some(ImportRefusal::Unavailable));
        }
    };
    // Requests per token per minute, counted across every instance before the body is read.
    let now = app::db::now_millis();
    let key = state.secrets.keyed_hash("import api token", token.as_bytes());
    if let Err(err) = app::rate_limit::purge(&state.db, now).await {
        tracing::warn!(error = %err, "could not purge ended rate-limit windows");
    }
    match app::rate_limit::hit(&state.db, &key, now, 60_000).await {
        Ok(hit) if hit.over(state.config.import_requests_per_minute) => {
            let retry_after = hit.retry_after_secs(now);
            tracing::warn!(partner_id, "import refused: too many requests for this token");
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many requests for this API token: at most {} a minute. Nothing was imported; send this batch \
                     again in {retry_after} s (or send fewer, larger batches).",
                    state.config.import_requests_per_minute
                ),
                &[],
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return (response, Some(ImportRefusal::RateLimited));
        }
        Ok(_) => {}
        Err(err) => {
            tracing::error!(error = %err, "import rate limit failed");
            return (unavailable(), Some(ImportRefusal::Unavailable));
        }
    }
    let limits =
        Limits { max_records: state.config.import_max_records, max_body_bytes: state.config.import_max_body_bytes };
    let too_large = |actual: usize| {
        let response = rejected(&ImportError::TooLarge {
            kind: app::compromises::LimitKind::BodyBytes,
            actual,
            max: limits.max_body_bytes,
        });
        (response, Some(ImportRefusal::TooLarge))
    };
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && length > limits.max_body_bytes
    {
        return too_large(length);
    }
    // Never buffers more than the limit (plus one byte, to know it was exceeded).
    let bytes = match axum::body::to_bytes(body, limits.max_body_bytes + 1).await {
        Ok(bytes) if bytes.len() > limits.max_body_bytes => return too_large(bytes.len()),
        Ok(bytes) => bytes,
        Err(_) => return too_large(limits.max_body_bytes + 1),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let records = match app::compromises::parse(&bytes, content_type, &limits) {
        Ok(records) => records,
        Err(err) => return (rejected(&err), Some(refusal(&err))),
    };
    let max_waiting = state.config.max_queued_deliveries_per_partner;
    match app::compromises::store::import_within(&state.db, &state.secrets, partner_id, &records, max_waiting).await {
        Ok(summary) => {
            tracing::info!(
                partner_id,
                received = summary.received,
                imported = summary.imported,
                duplicates = summary.duplicates,
                deliveries = summary.deliveries_queued,
                "compromises imported"
            );
            if summary.deliveries_queued > 0 {
                state.deliveries.wake();
            }
            state.metrics.import_stored(summary.imported as u64, summary.duplicates as u64);
            ((StatusCode::OK, axum::Json(summary)).into_response(), None)
        }
        Err(ImportFailed::Rejected(err)) => (rejected(&err), Some(refusal(&err))),
        Err(full @ ImportFailed::QueueFull { .. }) => {
            tracing::warn!(partner_id, error = %full, "import refused: the partner's delivery queue is full");
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, &full.to_string(), &[]);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(60u32));
            (response, Some(ImportRefusal::QueueFull))
        }
        Err(err) => {
            tracing::error!(partner_id, error = %err, "import failed");
            let response = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The batch could not be stored; nothing was imported. Try again.",
                &[],
            );
            (response, Some(ImportRefusal::Unavailable))
        }
    }
}
