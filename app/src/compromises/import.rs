//! Parsing and validation of compromise import batches.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::mapping::{Compromise, PasswordCriteria, RecordType};

/// The most characters (not bytes) any one text field may hold.
///
/// Every field ends up in a ConnectWise ticket (Summary, description or notes) and in the database; the longest
/// legitimate values (a URL, a breach name, an email address) are far shorter. The cap rejects garbage, such as a
/// whole file pasted into one cell, before it reaches a ticket, and bounds a batch's memory to the body limit.
pub const MAX_FIELD_CHARS: usize = 1_000;

/// The fields a record may carry: the guide's tokens, with the organization given by name or by id.
pub(super) const KNOWN_FIELDS: &[&str] = &[
    "uuid",
    "password",
    "record_type",
    "source",
    "website",
    "organization_name",
    "organization_id",
    "compromise",
    "password_criteria",
    "search_value",
    "date_added",
    "date_found",
];

/// Which organization a record belongs to; serialized as `organization_name` or `organization_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationRef {
    #[serde(rename = "organization_name")]
    ByName(String),
    #[serde(rename = "organization_id")]
    ById(i64),
}

/// One validated compromise of an import batch.
///
/// `uuid` is lowercase; `date_added` and `date_found` are `YYYY-MM-DDTHH:MM:SSZ` in UTC; an empty `password` or
/// `website` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub uuid: String,
    pub password: Option<String>,
    pub record_type: RecordType,
    pub source: String,
    pub website: Option<String>,
    #[serde(flatten)]
    pub organization: OrganizationRef,
    pub compromise: String,
    pub password_criteria: PasswordCriteria,
    pub search_value: String,
    pub date_added: String,
    pub date_found: String,
}

impl ImportRecord {
    /// The compromise as templates see it, with the organization's name resolved by the caller.
    pub fn to_compromise(&self, organization_name: &str) -> Compromise {
        Compromise {
            uuid: self.uuid.clone(),
            password: self.password.clone(),
            record_type: self.record_type,
            source: self.source.clone(),
            website: self.website.clone(),
            organization_name: organization_name.to_owned(),
            compromise: self.compromise.clone(),
            password_criteria: self.password_criteria,
            search_value: self.search_value.clone(),
            date_added: self.date_added.clone(),
            date_found: self.date_found.clone(),
        }
    }
}

/// Batch limits. The HTTP layer should also cap the body before buffering it; this check is the backstop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_records: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_records: 10_000, max_body_bytes: 10 * 1024 * 1024 }
    }
}

/// Which limit a batch exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    BodyBytes,
    Records,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::BodyBytes => "body size in bytes",
            LimitKind::Records => "number of records",
        })
    }
}

/// One problem with one record (or, with `record == 0`, with the body as a whole).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// 1-based position of the record in the batch; 0 for the body as a whole.
    pub record: usize,
    /// 1-based line for NDJSON (and for malformed JSON), `None` for a record of a JSON array.
    pub line: Option<usize>,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// A complete sentence naming the record or line, ready to show.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The most problems a refusal lists: a reply stays small however broken the batch (a 2 MB body could otherwise
/// produce hundreds of megabytes of messages). [`Problems::total`] still counts them all.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The problems found in a batch: the first [`MAX_REPORTED_ERRORS`] of them, in record order, and how many in all.
/// Reads as the slice of those listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problems {
    listed: Vec<RecordError>,
    total: usize,
}

impl Problems {
    pub fn push(&mut self, error: RecordError) {
        self.total += 1;
        if self.listed.len() < MAX_REPORTED_ERRORS {
            self.listed.push(error);
        }
    }

    /// How many problems were found, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn len(&self) -> usize {
        self.listed.len()
    }
}

impl std::ops::Deref for Problems {
    type Target = [RecordError];

    fn deref(&self) -> &[RecordError] {
        &self.listed
    }
}

impl From<Vec<RecordError>> for Problems {
    fn from(errors: Vec<RecordError>) -> Self {
        let mut problems = Problems::default();
        for error in errors {
            problems.push(error);
        }
        problems
    }
}

/// Why a batch was refused. Nothing of a refused batch may be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Maps to 413 Payload Too Large.
    #[error("the {kind} is {actual}, above the limit of {max}")]
    TooLarge { kind: LimitKind, actual: usize, max: usize },
    /// Maps to 422 Unprocessable Content; holds the errors found, in record order (the first
    /// [`MAX_REPORTED_ERRORS`], and how many in all).
    #[error("the batch is invalid ({}); nothing was imported", describe_count(.0))]
    Invalid(Problems),
    /// Maps to 415 Unsupported Media Type.
    #[error("unsupported format {0}: send a JSON array (application/json) or NDJSON (application/x-ndjson)")]
    UnsupportedFormat(String),
}

fn describe_count(problems: &Problems) -> String {
    if problems.total() > problems.len() {
        format!("{} errors, the first {} listed", problems.total(), problems.len())
    } else {
        format!("{} error(s)", problems.total())
    }
}

/// Parses a body by its `Content-Type`: `application/json` is a JSON array; `application/x-ndjson`,
/// `application/jsonl` (and their aliases) are NDJSON; anything else or none is sniffed (`[` first → JSON array,
/// otherwise NDJSON). `text/csv` is refused with [`ImportError::UnsupportedFormat`].
pub fn parse(body: &[u8], content_type: Option<&str>, limits: &Limits) -> Result<Vec<ImportRecord>, ImportError> {
    let media = content_type.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => parse_json(body, limits),
        Some(
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonl"
            | "application/jsonlines"
            | "application/x-jsonlines",
        ) => parse_ndjson(body, limits),
        Some(other @ ("text/csv" | "application/csv")) => Err(ImportError::UnsupportedFormat(other.to_owned())),
        _ => {
            if strip_bom(body).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                parse_json(body, limits)
            } else {
                parse_ndjson(body, limits)
            }
        }
    }
}

/// Parses a JSON array of record objects.
pub fn parse_json(body: &[u8], limits: &Limits) -> Result<Vec<ImportRecord>, ImportError> {
    check_body(body, limits)?;
    let malformed = |e: serde_json::Error| {
        let message = format!("malformed JSON at line {}, column {}: {}", e.line(), e.column(), json_error_text(&e));
        ImportError::Invalid(vec![RecordError { record: 0, line: Some(e.line()), field: None, message }].into())
    };
    // Count the records before building any of them: a cheap pass that allocates nothing per element.
    // (Not an array, or malformed: the full parse below says exactly what is wrong.)
    if let Ok(items) = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(strip_bom(body)) {
        check_records(items.len(), limits)?;
    }
    let value: Value = serde_json::from_slice(strip_bom(body)).map_err(malformed)?;
    let Value::Array(items) = value else {
        return Err(body_error("expected a JSON array of records (send one object per line as NDJSON instead)"));
    };
    check_records(items.len(), limits)?;
    let mut batch = Batch::default();
    for (index, item) in items.iter().enumerate() {
        batch.record(item, index + 1, None);
    }
    batch.finish()
}

/// Parses NDJSON: one record object per line; blank lines are skipped and CRLF line ends are accepted.
pub fn parse_ndjson(body: &[u8], limits: &Limits) -> Result<Vec<ImportRecord>, ImportError> {
    check_body(body, limits)?;
    let lines: Vec<(usize, &[u8])> = strip_bom(body)
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    check_records(lines.len(), limits)?;
    let mut batch = Batch::default();
    for (index, (line_no, line)) in lines.into_iter().enumerate() {
        let record = index + 1;
        match serde_json::from_slice::<Value>(line) {
            Ok(value) => batch.record(&value, record, Some(line_no)),
            Err(e) => batch.errors.push(RecordError {
                record,
                line: Some(line_no),
                field: None,
                message: format!(
                    "record {record}, line {line_no}: malformed JSON at column {}: {}",
                    e.column(),
                    json_error_text(&e)
                ),
            }),
        }
    }
    batch.finish()
}

/// Normalises an ISO-8601 date (`2025-03-14`, taken as midnight UTC) or date-time with a time zone
/// (`2025-03-14T09:26:53Z`, `2025-03-14 11:26+02:00`, fractions of a second dropped) to `YYYY-MM-DDTHH:MM:SSZ`.
///
/// A date-time without a time zone is refused: guessing one would shift the date by hours.
pub fn normalize_date(text: &str) -> Result<String, String> {
    use crate::dates::DateError;
    let bad = || "is not an ISO-8601 date or date-time (e.g. 2025-03-14 or 2025-03-14T09:26:53Z)".to_owned();
    let date = crate::dates::parse(text.trim()).map_err(|err| match err {
        DateError::Syntax => bad(),
        DateError::NotACalendarDate { year, month, day } => {
            format!("is not a real calendar date ({year:04}-{month:02}-{day:02})")
        }
        DateError::ImpossibleTime { hour, minute, second } => {
            format!("has an impossible time of day ({hour:02}:{minute:02}:{second:02})")
        }
        DateError::ImpossibleOffset => "has an impossible time-zone offset".to_owned(),
    })?;
    if date.has_time && date.offset.is_none() {
        return Err("has a time but no time zone; add Z for UTC or an offset such as +02:00".to_owned());
    }
    date.to_utc_string().ok_or_else(|| "is outside the years 0000 to 9999 once converted to UTC".to_owned())
}

pub(super) fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

pub(super) fn check_body(body: &[u8], limits: &Limits) -> Result<(), ImportError> {
    if body.len() > limits.max_body_bytes {
        return Err(ImportError::TooLarge {
            kind: LimitKind::BodyBytes,
            actual: body.len(),
            max: limits.max_body_bytes,
        });
    }
    Ok(())
}

pub(super) fn check_records(count: usize, limits: &Limits) -> Result<(), ImportError> {
    if count > limits.max_records {
        return Err(ImportError::TooLarge { kind: LimitKind::Records, actual: count, max: limits.max_records });
    }
    if count == 0 {
        return Err(body_error("the batch holds no records"));
    }
    Ok(())
}

pub(super) fn body_error(message: &str) -> ImportError {
    ImportError::Invalid(vec![RecordError { record: 0, line: None, field: None, message: message.to_owned() }].into())
}

/// serde_json's message without its trailing " at line L column C" (the caller reports the position itself).
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}

/// The records and errors of a batch so far.
#[derive(Default)]
pub(super) struct Batch {
    records: Vec<ImportRecord>,
    pub(super) errors: Problems,
    /// Normalised uuid → the record that first carried it.
    seen: HashMap<String, usize>,
}

impl Batch {
    pub(super) fn record(&mut self, value: &Value, record: usize, line: Option<usize>) {
        let mut check = Check { record, line, errors: &mut self.errors };
        let Value::Object(map) = value else {
            check.error(None, "is not a JSON object".to_owned());
            return;
        };
        let Some(parsed) = check.record(map) else { return };
        match self.seen.get(&parsed.uuid) {
            Some(first) => {
                check.error(Some("uuid"), format!("repeats the uuid {} of record {first}", parsed.uuid));
            }
            None => {
                self.seen.insert(parsed.uuid.clone(), record);
                self.records.push(parsed);
            }
        }
    }

    pub(super) fn finish(self) -> Result<Vec<ImportRecord>, ImportError> {
        if self.errors.is_empty() { Ok(self.records) } else { Err(ImportError::Invalid(self.errors)) }
    }
}

/// Validation of one record, pushing every problem found.
struct Check<'a> {
    record: usize,
    line: Option<usize>,
    errors: &'a mut Problems,
}

impl Check<'_> {
    fn error(&mut self, field: Option<&str>, text: String) {
        let place = match self.line {
            Some(line) => format!("record {}, line {line}", self.record),
            None => format!("record {}", self.record),
        };
        let message = match field {
            Some(field) => format!("{place}: `{field}` {text}"),
            None => format!("{place}: {text}"),
        };
        self.errors.push(RecordError {
            record: self.record,
            line: self.line,
            field: field.map(str::to_owned),
            message,
        });
    }

    fn record(&mut self, map: &Map<String, Value>) -> Option<ImportRecord> {
        let before = self.errors.total();
        for key in map.keys().filter(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
            // An unknown name is quoted shortened: it comes from the caller and could be megabytes long.
            let shown: String =
                if key.chars().count() > 64 { key.chars().take(64).chain(['…']).collect() } else { key.clone() };
            self.error(Some(&shown), format!("is not a known field (known: {})", KNOWN_FIELDS.join(", ")));
        }
        let uuid = self.required(map, "uuid", true).and_then(|u| {
            let u = u.trim().to_ascii_lowercase();
            is_uuid(&u).then_some(u).or_else(|| {
                self.error(Some("uuid"), "is not a UUID (8-4-4-4-12 hexadecimal digits)".to_owned());
                None
            })
        });
        let password = self.optional(map, "password");
        let record_type = self.required(map, "record_type", true).and_then(|t| match t.trim() {
            "Email" => Some(RecordType::Email),
            "Domain" => Some(RecordType::Domain),
            "IP" => Some(RecordType::Ip),
            _ => {
                self.error(Some("record_type"), format!("is {t:?}; expected \"Email\", \"Domain\" or \"IP\""));
                None
            }
        });
        let source = self.required(map, "source", true);
        let website = self.optional(map, "website");
        let organization = self.organization(map);
        let compromise = self.required(map, "compromise", true);
        let password_criteria = self.required(map, "password_criteria", true).and_then(|c| match c.trim() {
            "N/A" => Some(PasswordCriteria::NotApplicable),
            "Matches" => Some(PasswordCriteria::Matches),
            "Doesn't Match" => Some(PasswordCriteria::DoesntMatch),
            _ => {
                self.error(
                    Some("password_criteria"),
                    format!("is {c:?}; expected \"N/A\", \"Matches\" or \"Doesn't Match\""),
                );
                None
            }
        });
        let search_value = self.required(map, "search_value", false);
        let date_added = self.date(map, "date_added");
        let date_found = self.date(map, "date_found");
        if self.errors.total() != before {
            return None;
        }
        Some(ImportRecord {
            uuid: uuid?,
            password: password?,
            record_type: record_type?,
            source: source?,
            website: website?,
            organization: organization?,
            compromise: compromise?,
            password_criteria: password_criteria?,
            search_value: search_value?,
            date_added: date_added?,
            date_found: date_found?,
        })
    }

    /// `Ok(None)` when absent or null, the string when one within the cap, `Err` (reported) otherwise.
    fn string(&mut self, map: &Map<String, Value>, name: &str) -> Result<Option<String>, ()> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let chars = s.chars().count();
                if chars > MAX_FIELD_CHARS {
                    self.error(
                        Some(name),
                        format!("is {chars} characters long; at most {MAX_FIELD_CHARS} are allowed"),
                    );
                    Err(())
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some(_) => {
                self.error(Some(name), "must be a string".to_owned());
                Err(())
            }
        }
    }

    fn required(&mut self, map: &Map<String, Value>, name: &str, non_empty: bool) -> Option<String> {
        match self.string(map, name) {
            Ok(Some(s)) if non_empty && s.trim().is_empty() => {
                self.error(Some(name), "must not be empty".to_owned());
                None
            }
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                self.error(Some(name), "is required".to_owned());
                None
            }
            Err(()) => None,
        }
    }

    /// `Some(None)` when absent, null or empty; `None` when reported as invalid.
    fn optional(&mut self, map: &Map<String, Value>, name: &str) -> Option<Option<String>> {
        self.string(map, name).ok().map(|s| s.filter(|s| !s.is_empty()))
    }

    fn date(&mut self, map: &Map<String, Value>, name: &str) -> Option<String> {
        let text = self.required(map, name, true)?;
        normalize_date(&text).map_err(|why| self.error(Some(name), format!("{text:?} {why}"))).ok()
    }

    fn organization(&mut self, map: &Map<String, Value>) -> Option<OrganizationRef> {
        let by_name = map.get("organization_name").is_some_and(|v| !v.is_null());
        let by_id = map.get("organization_id").is_some_and(|v| !v.is_null());
        match (by_name, by_id) {
            (true, true) => {
                self.error(
                    Some("organization_id"),
                    "is given together with `organization_name`; give exactly one of them".to_owned(),
                );
                None
            }
            (false, false) => {
                self.error(
                    Some("organization_name"),
                    "or `organization_id` is required (give exactly one of them)".to_owned(),
                );
                None
            }
            (true, false) => self.required(map, "organization_name", true).map(OrganizationRef::ByName),
            (false, true) => match map.get("organization_id").and_then(Value::as_i64) {
                Some(id) if id > 0 => Some(OrganizationRef::ById(id)),
                _ => {
                    self.error(Some("organization_id"), "must be a positive integer".to_owned());
                    None
                }
            },
        }
    }
}

/// `8-4-4-4-12` hexadecimal digits (any version; Dark Web ID's ids are opaque).
fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}
