//! Compromise import: the pure parsing and validation of an import batch (JSON array or NDJSON).
//!
//! A batch is all-or-nothing: [`parse`] returns every record of the body or an error, never a partial list. Every
//! validation error of every record is collected, each naming its record (1-based) and, for line-oriented formats,
//! its line (1-based), so a partner can fix a whole file in one round trip.
//!
//! No I/O here: the HTTP handler and the CLI map [`ImportError::TooLarge`] to 413, [`ImportError::Invalid`] to 422
//! and [`ImportError::UnsupportedFormat`] to 415. CSV (`parse_csv`, and `parse_file`, which picks the format by the
//! file's extension) is for the operator CLI only and needs the `ssr` feature (the `csv` crate); the HTTP API takes
//! JSON and NDJSON.

#[cfg(feature = "ssr")]
mod csv;
mod import;
#[cfg(feature = "ssr")]
pub mod store;

pub use import::{
    ImportError, ImportRecord, LimitKind, Limits, MAX_FIELD_CHARS, MAX_REPORTED_ERRORS, OrganizationRef, Problems,
    RecordError, normalize_date, parse, parse_json, parse_ndjson,
};

#[cfg(feature = "ssr")]
pub use self::csv::{parse_csv, parse_file};

use serde::{Deserialize, Serialize};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Records in the batch.
    pub received: usize,
    /// New compromises stored.
    pub imported: usize,
    /// Records whose uuid was already imported (nothing done for them).
    pub duplicates: usize,
    /// Deliveries queued (one per new compromise and Active associated integration).
    pub deliveries_queued: usize,
}

#[cfg(test)]
mod tests;
