//! CSV import batches, for the operator CLI (`server import FILE`); the HTTP API takes JSON and NDJSON only.
//!
//! The first row names the columns with the JSON field names (trimmed, without case); every further row becomes one
//! record object and goes through the same validation as a JSON record, so the messages are the same, with the
//! row's physical line: `record 3, line 4: ...`. An empty cell is an absent field, except `search_value` (required
//! but allowed to be empty: its empty cell is the empty string); an `organization_id` cell of digits is a number.

use std::path::Path;

use serde_json::{Map, Value};

use super::import::{
    Batch, ImportError, ImportRecord, KNOWN_FIELDS, Limits, RecordError, body_error, check_body, check_records,
    parse_json, parse_ndjson, strip_bom,
};

/// Parses a CSV batch: a header row, then one record per row.
///
/// A UTF-8 BOM is dropped; lines may end in CRLF; quoted cells may hold commas, doubled quotes and line breaks.
/// Blank rows (every cell empty or spaces) are skipped and not numbered. Records are numbered from 1 (the first data
/// row); `line` is the 1-based physical line where the row starts. All-or-nothing, like [`super::parse`].
pub fn parse_csv(body: &[u8], limits: &Limits) -> Result<Vec<ImportRecord>, ImportError> {
    check_body(body, limits)?;
    let body = strip_bom(body);
    if let Err(e) = std::str::from_utf8(body) {
        let line = line_of(body, e.valid_up_to());
        return Err(ImportError::Invalid(
            vec![RecordError {
                record: 0,
                line: Some(line),
                field: None,
                message: format!(
                    "the file is not UTF-8 text: line {line} holds an invalid byte sequence (save it as \"CSV UTF-8\")"
                ),
            }]
            .into(),
        ));
    }
    let mut rows = read_rows(body)?.into_iter();
    let Some(header) = rows.next() else {
        return Err(body_error("the batch holds no records"));
    };
    let columns = columns(&header)?;
    let rows: Vec<Row> = rows.collect();
    check_records(rows.len(), limits)?;
    let mut batch = Batch::default();
    for (index, row) in rows.iter().enumerate() {
        let record = index + 1;
        if row.cells.len() != columns.len() {
            batch.errors.push(RecordError {
                record,
                line: Some(row.line),
                field: None,
                message: format!(
                    "record {record}, line {}: has {} where the header names {}",
                    row.line,
                    count(row.cells.len(), "cell"),
                    count(columns.len(), "column")
                ),
            });
            continue;
        }
        let mut object = Map::new();
        for (name, cell) in columns.iter().zip(row.cells.iter()) {
            let value = match *name {
                // The one field that must be present but may be empty: its column with an empty cell is "".
                "search_value" => Value::String(cell.to_owned()),
                _ if cell.is_empty() => continue,
                "organization_id" => organization_id(cell),
                _ => Value::String(cell.to_owned()),
            };
            object.insert((*name).to_owned(), value);
        }
        batch.record(&Value::Object(object), record, Some(row.line));
    }
    batch.finish()
}

/// Parses an import file by its extension: `.csv` is CSV, `.json` a JSON array, `.ndjson` and `.jsonl` NDJSON
/// (without case). Any other name is sniffed from the first non-blank character: `[` is a JSON array, `{` NDJSON,
/// anything else CSV.
pub fn parse_file(name: &str, body: &[u8], limits: &Limits) -> Result<Vec<ImportRecord>, ImportError> {
    let extension = Path::new(name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => parse_csv(body, limits),
        Some("json") => parse_json(body, limits),
        Some("ndjson" | "jsonl") => parse_ndjson(body, limits),
        _ => match strip_bom(body).iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => parse_json(body, limits),
            Some(b'{') => parse_ndjson(body, limits),
            _ => parse_csv(body, limits),
        },
    }
}

/// One non-blank row of the file.
struct Row {
    /// 1-based physical line where the row starts.
    line: usize,
    cells: Vec<String>,
}

/// Every non-blank row of a UTF-8 body (the BOM already dropped).
fn read_rows(body: &[u8]) -> Result<Vec<Row>, ImportError> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut rows = Vec::new();
    let mut record = ::csv::StringRecord::new();
    // `Position::line` counts the line ends read so far, which is not where a row starts after a blank line or a
    // CRLF; count the newlines before the row's first byte instead (incrementally: the rows come in order).
    let (mut counted_to, mut newlines) = (0, 0);
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let at = e.position().map_or(body.len(), |p| usize::try_from(p.byte()).unwrap_or(body.len()));
            let line = line_of(body, at.min(body.len()));
            ImportError::Invalid(
                vec![RecordError {
                    record: 0,
                    line: Some(line),
                    field: None,
                    message: format!("malformed CSV at line {line}: {e}"),
                }]
                .into(),
            )
        })?;
        if !more {
            break;
        }
        if record.iter().all(|cell| cell.trim_ascii().is_empty()) {
            continue;
        }
        let from = record.position().map_or(0, |p| usize::try_from(p.byte()).unwrap_or(body.len())).min(body.len());
        // The reader skips blank lines (and the `\n` of a CRLF) as part of the next row.
        let start = from + body[from..].iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        if start >= counted_to {
            newlines += body[counted_to..start].iter().filter(|b| **b == b'\n').count();
            counted_to = start;
        }
        rows.push(Row { line: newlines + 1, cells: record.iter().map(str::to_owned).collect() });
    }
    Ok(rows)
}

/// The field each column holds, or every problem of the header row.
fn columns(header: &Row) -> Result<Vec<&'static str>, ImportError> {
    let line = header.line;
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.cells.len());
    let mut errors = Vec::new();
    let mut error = |field: Option<&str>, text: String| {
        errors.push(RecordError {
            record: 0,
            line: Some(line),
            field: field.map(str::to_owned),
            message: format!("header, line {line}: {text}"),
        });
    };
    for (index, cell) in header.cells.iter().enumerate() {
        let column = index + 1;
        let name = cell.trim();
        match KNOWN_FIELDS.iter().find(|known| known.eq_ignore_ascii_case(name)) {
            Some(known) => {
                if let Some(first) = columns.iter().position(|c| c == known) {
                    error(Some(known), format!("column {column} repeats `{known}` (column {})", first + 1));
                }
                columns.push(known);
            }
            None if name.is_empty() => {
                error(None, format!("column {column} has no name (known: {})", KNOWN_FIELDS.join(", ")));
                columns.push("");
            }
            None => {
                error(
                    Some(name),
                    format!("column {column} `{name}` is not a known field (known: {})", KNOWN_FIELDS.join(", ")),
                );
                columns.push("");
            }
        }
    }
    if errors.is_empty() { Ok(columns) } else { Err(ImportError::Invalid(errors.into())) }
}

/// An `organization_id` cell: a number when it is digits, else the text (which validation then refuses).
fn organization_id(cell: &str) -> Value {
    let digits = cell.trim();
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(id) = digits.parse::<i64>()
    {
        return Value::from(id);
    }
    Value::String(cell.to_owned())
}

/// The 1-based line holding byte `at`.
fn line_of(body: &[u8], at: usize) -> usize {
    1 + body[..at.min(body.len())].iter().filter(|b| **b == b'\n').count()
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
