//! Compromise import: the pure parsing and validation of an import batch (JSON array or NDJSON).
//!
//! A batch is all-or-nothing: [`parse`] returns every record of the body or an error, never a partial list. Every
//! validation error of every record is collected, each naming its record (1-based) and, for line-oriented formats,
//! its line (1-based), so a partner can fix a whole file in one round trip.
//!
//! No I/O and no server-only crates here: the HTTP handler and the CLI map [`ImportError::TooLarge`] to 413,
//! [`ImportError::Invalid`] to 422 and [`ImportError::UnsupportedFormat`] to 415.

mod import;

pub use import::{
    ImportError, ImportRecord, LimitKind, Limits, MAX_FIELD_CHARS, OrganizationRef, RecordError, normalize_date, parse,
    parse_json, parse_ndjson,
};

#[cfg(test)]
mod tests;
