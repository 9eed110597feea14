use serde_json::{Value, json};

use super::*;
use crate::mapping::{Compromise, PasswordCriteria, RecordType};

fn uuid(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

fn rec(i: u64) -> Value {
    json!({
        "uuid": uuid(i),
        "password": "Summer2024!",
        "record_type": "Email",
        "source": "Combolist",
        "website": "portal.example",
        "organization_name": "Acme Corp",
        "compromise": format!("user{i}@acme.example"),
        "password_criteria": "Doesn't Match",
        "search_value": "acme.example",
        "date_added": "2025-03-14T09:26:53Z",
        "date_found": "2025-03-12",
    })
}

fn array(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&Value::Array(records.to_vec())).expect("json")
}

fn ndjson(records: &[Value]) -> Vec<u8> {
    records.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes()
}

fn errors(result: Result<Vec<ImportRecord>, ImportError>) -> Vec<RecordError> {
    match result {
        Err(ImportError::Invalid(errors)) => errors.to_vec(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The single error of a one-record array whose record is `value`.
fn one_error(value: Value) -> RecordError {
    let errs = errors(parse_json(&array(&[value]), &Limits::default()));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().expect("one")
}

fn with(field: &str, value: Value) -> Value {
    let mut r = rec(1);
    r[field] = value;
    r
}

fn without(field: &str) -> Value {
    let mut r = rec(1);
    r.as_object_mut().expect("object").remove(field);
    r
}

#[test]
fn valid_array_parses_every_field() {
    let records = parse_json(&array(&[rec(1), rec(2)]), &Limits::default()).expect("valid");
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r.uuid, uuid(1));
    assert_eq!(r.password.as_deref(), Some("Summer2024!"));
    assert_eq!(r.record_type, RecordType::Email);
    assert_eq!(r.source, "Combolist");
    assert_eq!(r.website.as_deref(), Some("portal.example"));
    assert_eq!(r.organization, OrganizationRef::ByName("Acme Corp".into()));
    assert_eq!(r.compromise, "user1@acme.example");
    assert_eq!(r.password_criteria, PasswordCriteria::DoesntMatch);
    assert_eq!(r.search_value, "acme.example");
    assert_eq!(r.date_added, "2025-03-14T09:26:53Z");
    assert_eq!(r.date_found, "2025-03-12T00:00:00Z");
}

#[test]
fn valid_ndjson_skips_blank_lines_and_accepts_crlf_and_bom() {
    let body = format!("\u{feff}{}\r\n\r\n   \n{}\r\n\n", rec(1), rec(2));
    let records = parse_ndjson(body.as_bytes(), &Limits::default()).expect("valid");
    assert_eq!(records.iter().map(|r| r.uuid.clone()).collect::<Vec<_>>(), vec![uuid(1), uuid(2)]);
}

#[test]
fn parse_dispatches_on_content_type_and_sniffs() {
    let limits = Limits::default();
    let arr = array(&[rec(1)]);
    let nd = ndjson(&[rec(1), rec(2)]);
    assert_eq!(parse(&arr, Some("application/json; charset=utf-8"), &limits).expect("json").len(), 1);
    assert_eq!(parse(&nd, Some("application/x-ndjson"), &limits).expect("ndjson").len(), 2);
    assert_eq!(parse(&nd, Some("Application/JSONL"), &limits).expect("jsonl").len(), 2);
    assert_eq!(parse(&arr, None, &limits).expect("sniffed array").len(), 1);
    assert_eq!(parse(&nd, Some("text/plain"), &limits).expect("sniffed ndjson").len(), 2);
    // A JSON array declared as NDJSON is one line holding an array, not an object.
    assert!(matches!(parse(&nd, Some("application/json"), &limits), Err(ImportError::Invalid(_))));
    assert!(matches!(parse(b"a,b\n", Some("text/csv"), &limits), Err(ImportError::UnsupportedFormat(_))));
}

#[test]
fn organization_by_id_and_serde_form() {
    let mut r = without("organization_name");
    r["organization_id"] = json!(42);
    let records = parse_json(&array(&[r]), &Limits::default()).expect("valid");
    assert_eq!(records[0].organization, OrganizationRef::ById(42));
    let v = serde_json::to_value(&records[0]).expect("serialize");
    assert_eq!(v["organization_id"], json!(42));
    assert!(v.get("organization_name").is_none());
    let back: ImportRecord = serde_json::from_value(v).expect("deserialize");
    assert_eq!(back, records[0]);
}

#[test]
fn uuid_is_required_valid_and_lowercased() {
    let e = one_error(without("uuid"));
    assert_eq!(e.field.as_deref(), Some("uuid"));
    assert_eq!(e.message, "record 1: `uuid` is required");
    let e = one_error(with("uuid", json!("not-a-uuid")));
    assert_eq!(e.message, "record 1: `uuid` is not a UUID (8-4-4-4-12 hexadecimal digits)");
    assert!(one_error(with("uuid", json!("00000000-0000-4000-8000-00000000000g"))).message.contains("not a UUID"));
    assert!(one_error(with("uuid", json!(12))).message.contains("must be a string"));
    let r = with("uuid", json!("5F0C2A7E-93D4-4B1E-A6F8-2C71E0D94B3A"));
    let records = parse_json(&array(&[r]), &Limits::default()).expect("valid");
    assert_eq!(records[0].uuid, "5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a");
}

#[test]
fn record_type_must_be_known() {
    for (text, expected) in [("Email", RecordType::Email), ("Domain", RecordType::Domain), ("IP", RecordType::Ip)] {
        let records = parse_json(&array(&[with("record_type", json!(text))]), &Limits::default()).expect("valid");
        assert_eq!(records[0].record_type, expected);
    }
    let e = one_error(with("record_type", json!("ip")));
    assert_eq!(e.field.as_deref(), Some("record_type"));
    assert_eq!(e.message, "record 1: `record_type` is \"ip\"; expected \"Email\", \"Domain\" or \"IP\"");
    assert_eq!(one_error(without("record_type")).message, "record 1: `record_type` is required");
}

#[test]
fn password_criteria_must_be_known() {
    for text in ["N/A", "Matches", "Doesn't Match"] {
        let records = parse_json(&array(&[with("password_criteria", json!(text))]), &Limits::default()).expect("valid");
        assert_eq!(records[0].password_criteria.as_str(), text);
    }
    let e = one_error(with("password_criteria", json!("Doesnt Match")));
    assert_eq!(e.field.as_deref(), Some("password_criteria"));
    assert!(e.message.starts_with("record 1: `password_criteria` is \"Doesnt Match\"; expected"), "{}", e.message);
}

#[test]
fn compromise_and_source_must_not_be_empty() {
    assert_eq!(one_error(with("compromise", json!("  "))).message, "record 1: `compromise` must not be empty");
    assert_eq!(one_error(without("source")).message, "record 1: `source` is required");
    assert_eq!(one_error(with("source", json!(null))).message, "record 1: `source` is required");
    // search_value must be present but may be empty.
    assert!(parse_json(&array(&[with("search_value", json!(""))]), &Limits::default()).is_ok());
    assert_eq!(one_error(without("search_value")).message, "record 1: `search_value` is required");
}

#[test]
fn optional_password_and_website() {
    let mut r = without("password");
    r["website"] = json!("");
    let records = parse_json(&array(&[r]), &Limits::default()).expect("valid");
    assert_eq!(records[0].password, None);
    assert_eq!(records[0].website, None);
    assert!(one_error(with("website", json!(3))).message.contains("`website` must be a string"));
}

#[test]
fn dates_are_normalised_to_utc() {
    let ok = [
        ("2025-03-14", "2025-03-14T00:00:00Z"),
        ("2025-03-14T09:26:53Z", "2025-03-14T09:26:53Z"),
        ("2025-03-14t09:26:53.123456z", "2025-03-14T09:26:53Z"),
        ("2025-03-14 09:26Z", "2025-03-14T09:26:00Z"),
        ("2025-03-14T01:00:00+02:00", "2025-03-13T23:00:00Z"),
        ("2025-12-31T23:30:00-0100", "2026-01-01T00:30:00Z"),
        ("2024-02-29T12:00:00+05", "2024-02-29T07:00:00Z"),
        ("2000-03-01T00:00:00+00:01", "2000-02-29T23:59:00Z"),
    ];
    for (input, expected) in ok {
        assert_eq!(normalize_date(input).as_deref(), Ok(expected), "{input}");
    }
    let bad = [
        "2025-03-14T09:26:53",
        "2025-02-29",
        "2025-13-01",
        "2025-3-14",
        "14/03/2025",
        "2025-03-14T24:00:00Z",
        "2025-03-14T09:26:53Zjunk",
        "2025-03-14T09:26:53+25:00",
        "2025-03-14T09:26:53.Z",
        "0000-01-01T00:00:00+01:00",
        "2025-03-14T09:2é",
        "",
    ];
    for input in bad {
        assert!(normalize_date(input).is_err(), "{input} should be refused");
    }
    let e = one_error(with("date_added", json!("2025-03-14T09:26:53")));
    assert_eq!(e.field.as_deref(), Some("date_added"));
    assert!(e.message.starts_with("record 1: `date_added` \"2025-03-14T09:26:53\" has a time but no time zone"));
    let e = one_error(with("date_found", json!("yesterday")));
    assert!(e.message.contains("is not an ISO-8601 date"), "{}", e.message);
}

#[test]
fn exactly_one_organization() {
    let mut both = rec(1);
    both["organization_id"] = json!(7);
    let e = one_error(both);
    assert_eq!(e.field.as_deref(), Some("organization_id"));
    assert!(e.message.contains("exactly one"));
    let e = one_error(without("organization_name"));
    assert!(e.message.contains("`organization_name` or `organization_id` is required"), "{}", e.message);
    let mut neg = without("organization_name");
    neg["organization_id"] = json!(-3);
    assert!(one_error(neg).message.contains("must be a positive integer"));
    let mut text = without("organization_name");
    text["organization_id"] = json!("7");
    assert!(one_error(text).message.contains("must be a positive integer"));
    // null counts as absent.
    let mut null_id = rec(1);
    null_id["organization_id"] = json!(null);
    assert!(parse_json(&array(&[null_id]), &Limits::default()).is_ok());
}

#[test]
fn string_length_is_capped_in_characters() {
    let at_cap = "é".repeat(MAX_FIELD_CHARS);
    assert!(parse_json(&array(&[with("source", json!(at_cap))]), &Limits::default()).is_ok());
    let e = one_error(with("source", json!("x".repeat(MAX_FIELD_CHARS + 1))));
    assert_eq!(e.message, "record 1: `source` is 1001 characters long; at most 1000 are allowed");
    assert!(one_error(with("password", json!("p".repeat(5000)))).message.contains("`password` is 5000 characters"));
}

#[test]
fn unknown_fields_are_named() {
    let e = one_error(with("obscured_password", json!("S***!")));
    assert_eq!(e.field.as_deref(), Some("obscured_password"));
    assert!(e.message.starts_with("record 1: `obscured_password` is not a known field"), "{}", e.message);
}

#[test]
fn non_object_records_are_refused() {
    let errs = errors(parse_json(b"[1, {\"a\": 2}]", &Limits::default()));
    assert_eq!(errs[0].message, "record 1: is not a JSON object");
    assert_eq!(errs[1].record, 2);
    assert!(errors(parse_json(b"{}", &Limits::default()))[0].message.contains("expected a JSON array"));
    assert_eq!(errors(parse_json(b"[]", &Limits::default()))[0].message, "the batch holds no records");
    assert_eq!(errors(parse_ndjson(b"\n \r\n", &Limits::default()))[0].message, "the batch holds no records");
}

#[test]
fn all_errors_are_collected_with_record_and_line() {
    let mut bad2 = with("record_type", json!("Phone"));
    bad2["date_found"] = json!("later");
    bad2["extra"] = json!(1);
    let body = format!("{}\n\n{}\n{}\n", rec(1), bad2, without("uuid"));
    let errs = errors(parse_ndjson(body.as_bytes(), &Limits::default()));
    let summary: Vec<(usize, Option<usize>, Option<&str>)> =
        errs.iter().map(|e| (e.record, e.line, e.field.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (2, Some(3), Some("extra")),
            (2, Some(3), Some("record_type")),
            (2, Some(3), Some("date_found")),
            (3, Some(4), Some("uuid")),
        ]
    );
    assert!(errs[1].message.starts_with("record 2, line 3: `record_type`"), "{}", errs[1].message);
    assert_eq!(errs[3].message, "record 3, line 4: `uuid` is required");

    let errs =
        errors(parse_json(&array(&[rec(1), without("source"), rec(3), without("compromise")]), &Limits::default()));
    assert_eq!(errs.iter().map(|e| e.record).collect::<Vec<_>>(), vec![2, 4]);
    assert!(errs.iter().all(|e| e.line.is_none()));
    assert_eq!(errs[1].message, "record 4: `compromise` is required");
}

#[test]
fn duplicate_uuids_are_an_error() {
    let mut upper = rec(1);
    upper["uuid"] = json!(uuid(1).to_uppercase());
    let errs = errors(parse_json(&array(&[rec(1), rec(2), upper]), &Limits::default()));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].record, 3);
    assert_eq!(errs[0].field.as_deref(), Some("uuid"));
    assert_eq!(errs[0].message, format!("record 3: `uuid` repeats the uuid {} of record 1", uuid(1)));
    let errs = errors(parse_ndjson(&ndjson(&[rec(5), rec(5)]), &Limits::default()));
    assert_eq!(errs[0].message, format!("record 2, line 2: `uuid` repeats the uuid {} of record 1", uuid(5)));
}

#[test]
fn limits_give_too_large() {
    let records: Vec<Value> = (0..5).map(rec).collect();
    let limits = Limits { max_records: 4, ..Limits::default() };
    for result in [parse_json(&array(&records), &limits), parse_ndjson(&ndjson(&records), &limits)] {
        assert_eq!(result, Err(ImportError::TooLarge { kind: LimitKind::Records, actual: 5, max: 4 }));
    }
    let body = array(&records);
    let limits = Limits { max_body_bytes: body.len() - 1, ..Limits::default() };
    assert_eq!(
        parse(&body, None, &limits),
        Err(ImportError::TooLarge { kind: LimitKind::BodyBytes, actual: body.len(), max: body.len() - 1 })
    );
    assert!(parse(&body, None, &Limits { max_body_bytes: body.len(), max_records: 5 }).is_ok());
    assert_eq!(Limits::default(), Limits { max_records: 10_000, max_body_bytes: 10 * 1024 * 1024 });
}

#[test]
fn malformed_json_reports_its_position() {
    let errs = errors(parse_json(b"[\n  {\"uuid\": \"x\",\n  \"source\" 1}\n]", &Limits::default()));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].record, 0);
    assert_eq!(errs[0].line, Some(3));
    assert!(errs[0].message.starts_with("malformed JSON at line 3, column 12: expected `:`"), "{}", errs[0].message);

    let body = format!("{}\n{{\"uuid\": \n{}\n", rec(1), rec(2));
    let errs = errors(parse_ndjson(body.as_bytes(), &Limits::default()));
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].record, errs[0].line), (2, Some(2)));
    assert!(errs[0].message.starts_with("record 2, line 2: malformed JSON at column"), "{}", errs[0].message);
}

#[test]
fn to_compromise_fills_the_template_record() {
    let records = parse_json(&array(&[rec(1)]), &Limits::default()).expect("valid");
    let c: Compromise = records[0].to_compromise("Acme Corporation");
    assert_eq!(c.organization_name, "Acme Corporation");
    assert_eq!(c.uuid, uuid(1));
    assert_eq!(c.token_value("date_found").as_deref(), Some("2025-03-12T00:00:00Z"));
    assert_eq!(c.token_value("password_criteria").as_deref(), Some("Doesn't Match"));
}

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const SNIPPETS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "\n",
    "\r\n",
    "\"extra\":1,",
    "\\u0000",
    "é",
    "🦀",
    "\u{feff}",
    "1e999",
    "-0",
    "\"2025-02-30\"",
    "\"IP\"",
    "\"N/A\"",
    "+02:00",
    "T",
    "Z",
    "\"uuid\":\"00000000-0000-4000-8000-000000000001\",",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut body = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(body.len() + 1);
        match rng.below(7) {
            0 => body.truncate(at),
            1 => {
                if at < body.len() {
                    body[at] = rng.next() as u8;
                }
            }
            2 => body.insert(at, rng.next() as u8),
            3 => {
                let end = (at + rng.below(40)).min(body.len());
                body.drain(at..end);
            }
            4 => {
                let snippet = SNIPPETS[rng.below(SNIPPETS.len())].as_bytes();
                body.splice(at..at, snippet.iter().copied());
            }
            5 => {
                let end = (at + rng.below(200)).min(body.len());
                let chunk = body[at..end].to_vec();
                body.splice(at..at, chunk);
            }
            _ => body = (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        }
    }
    body
}

/// How many records the body holds, counted independently of the parser that `parse` would pick.
fn expected_count(body: &[u8], content_type: Option<&str>) -> usize {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let as_array = match content_type {
        Some("application/json") => true,
        Some("application/x-ndjson") => false,
        _ => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['),
    };
    if as_array {
        serde_json::from_slice::<Vec<Value>>(body).expect("an accepted array is valid JSON").len()
    } else {
        body.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count()
    }
}

#[test]
fn property_parse_never_panics_and_never_returns_a_partial_batch() {
    let records: Vec<Value> = (1..=6).map(rec).collect();
    let bases = [array(&records), ndjson(&records)];
    let content_types = [None, Some("application/json"), Some("application/x-ndjson"), Some("text/plain")];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    #[cfg(feature = "ssr")]
    let mut csv = csv_tests::Fuzz::new(&records);
    for _ in 0..2_000 {
        #[cfg(feature = "ssr")]
        csv.step(&mut rng);
        let base = rng.below(bases.len());
        let body = mutate(&mut rng, &bases[base]);
        let content_type = content_types[rng.below(content_types.len())];
        let limits = if rng.below(10) == 0 {
            Limits { max_records: rng.below(8), max_body_bytes: rng.below(2_000) }
        } else {
            Limits::default()
        };
        match parse(&body, content_type, &limits) {
            Ok(parsed) => {
                accepted += 1;
                assert_eq!(parsed.len(), expected_count(&body, content_type), "partial batch for {body:?}");
                assert!(!parsed.is_empty() && parsed.len() <= limits.max_records);
                // Every accepted record is in normal form: it survives a round trip unchanged.
                let again = parse_json(&serde_json::to_vec(&parsed).expect("serialize"), &Limits::default());
                assert_eq!(again.as_ref(), Ok(&parsed));
            }
            Err(ImportError::Invalid(errs)) => {
                refused += 1;
                assert!(!errs.is_empty());
                assert!(errs.iter().all(|e| !e.message.is_empty()));
            }
            Err(ImportError::TooLarge { actual, max, .. }) => {
                refused += 1;
                assert!(actual > max);
            }
            Err(ImportError::UnsupportedFormat(f)) => panic!("unexpected UnsupportedFormat {f}"),
        }
    }
    // The generator must exercise both outcomes, or the property says little.
    assert!(accepted > 20 && refused > 500, "accepted {accepted}, refused {refused}");
    #[cfg(feature = "ssr")]
    csv.check_coverage();
}

/// CSV (`parse_csv`, `parse_file`): server-only, as the `csv` crate.
#[cfg(feature = "ssr")]
mod csv_tests {
    use super::super::import::KNOWN_FIELDS;
    use super::*;

    /// The records as CSV: a header naming every known field, then one row each (absent and null are empty cells).
    pub(super) fn to_csv(records: &[Value]) -> Vec<u8> {
        let mut writer = ::csv::Writer::from_writer(Vec::new());
        writer.write_record(KNOWN_FIELDS).expect("header");
        for record in records {
            let cells = KNOWN_FIELDS.iter().map(|name| match record.get(*name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            });
            writer.write_record(cells).expect("row");
        }
        writer.into_inner().expect("flush")
    }

    /// Records with every kind of cell: quotes, commas, line breaks, an organization by id, absent optionals.
    fn tricky() -> Vec<Value> {
        let mut quoted = rec(2);
        quoted["source"] = json!("Combo, \"list\"\nsecond line");
        quoted["compromise"] = json!("o'brien@acme.example");
        let mut by_id = without("organization_name");
        by_id["uuid"] = json!(uuid(3));
        by_id["organization_id"] = json!(42);
        by_id.as_object_mut().expect("object").remove("password");
        by_id["website"] = json!("");
        vec![rec(1), quoted, by_id]
    }

    const HEADER: &str = "uuid,record_type,source,organization_name,compromise,password_criteria,search_value,\
                          date_added,date_found";

    /// One row of [`HEADER`] for `uuid(i)`.
    fn row(i: u64) -> String {
        format!("{},Email,Combolist,Acme Corp,user{i}@acme.example,N/A,acme.example,2025-03-14,2025-03-12", uuid(i))
    }

    #[test]
    fn csv_round_trip_equals_the_same_records_as_json() {
        let records = tricky();
        let from_json = parse_json(&array(&records), &Limits::default()).expect("json");
        let body = to_csv(&records);
        let from_csv = parse_csv(&body, &Limits::default()).expect("csv");
        assert_eq!(from_csv, from_json);
        assert_eq!(from_csv[1].source, "Combo, \"list\"\nsecond line");
        assert_eq!(from_csv[2].organization, OrganizationRef::ById(42));
        assert_eq!((from_csv[2].password.as_deref(), from_csv[2].website.as_deref()), (None, None));
        // An empty search_value cell is the empty search value (the field may be empty), not a missing field.
        let mut empty_search = rec(4);
        empty_search["search_value"] = json!("");
        let from_csv = parse_csv(&to_csv(&[empty_search.clone()]), &Limits::default()).expect("csv");
        assert_eq!(from_csv, parse_json(&array(&[empty_search]), &Limits::default()).expect("json"));
    }

    #[test]
    fn parse_file_picks_the_format_by_extension_then_sniffs() {
        let limits = Limits::default();
        let records = tricky();
        let expected = parse_json(&array(&records), &limits).expect("json");
        let (csv, arr, nd) = (to_csv(&records), array(&records), ndjson(&records));
        for (name, body) in [
            ("batch.csv", &csv),
            ("BATCH.CSV", &csv),
            ("batch.json", &arr),
            ("dir.v2/batch.ndjson", &nd),
            ("batch.jsonl", &nd),
            ("batch.txt", &csv),
            ("batch", &arr),
            ("batch.dat", &nd),
        ] {
            assert_eq!(parse_file(name, body, &limits).as_ref(), Ok(&expected), "{name}");
        }
        let spaced = [b" \r\n\t".as_slice(), &arr].concat();
        assert_eq!(parse_file("export", &spaced, &limits).as_ref(), Ok(&expected));
        // The extension wins over the content: an array named .csv is a CSV with a bad header.
        let errs = errors(parse_file("batch.csv", &arr, &limits));
        assert!(errs[0].message.starts_with("header, line 1: column 1 "), "{}", errs[0].message);
        assert!(matches!(parse_file("batch.json", &nd, &limits), Err(ImportError::Invalid(_))));
        assert_eq!(errors(parse_file("empty", b"", &limits))[0].message, "the batch holds no records");
    }

    #[test]
    fn quoted_cells_and_line_breaks_keep_their_physical_lines() {
        let body = format!(
            "{HEADER}\n\
             {},Email,\"Combo, \"\"list\"\"\nline two\nline three\",Acme Corp,a@acme.example,N/A,,2025-03-14,2025-03-12\n\
             \n\
             {}\n\
             {},Phone,Combolist,Acme Corp,c@acme.example,N/A,acme.example,2025-03-14,2025-03-12\n",
            uuid(1),
            row(2),
            uuid(3)
        );
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].record, errs[0].line, errs[0].field.as_deref()), (3, Some(7), Some("record_type")));
        assert_eq!(
            errs[0].message,
            "record 3, line 7: `record_type` is \"Phone\"; expected \"Email\", \"Domain\" or \"IP\""
        );
        let fixed = body.replace("Phone", "IP");
        let records = parse_csv(fixed.as_bytes(), &Limits::default()).expect("valid");
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].source, "Combo, \"list\"\nline two\nline three");
        assert_eq!(records[0].search_value, "");
        assert_eq!(records[2].record_type, RecordType::Ip);
    }

    #[test]
    fn every_error_names_its_record_and_line() {
        let mut lines = vec![HEADER.to_owned(), row(1)];
        lines.push(row(2).replace("2025-03-12", "2025-02-30").replace("user2@acme.example", ""));
        lines.push(String::new());
        lines.push(row(1).to_uppercase().replace("EMAIL", "Email").replace("N/A", "Matches"));
        lines.push(row(4).replace(",acme.example,", ",,"));
        let body = lines.join("\n");
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        let summary: Vec<(usize, Option<usize>, Option<&str>)> =
            errs.iter().map(|e| (e.record, e.line, e.field.as_deref())).collect();
        assert_eq!(
            summary,
            vec![(2, Some(3), Some("compromise")), (2, Some(3), Some("date_found")), (3, Some(5), Some("uuid"))]
        );
        assert_eq!(errs[0].message, "record 2, line 3: `compromise` is required");
        assert!(errs[1].message.starts_with("record 2, line 3: `date_found` \"2025-02-30\" is not a real"));
        assert_eq!(errs[2].message, format!("record 3, line 5: `uuid` repeats the uuid {} of record 1", uuid(1)));
    }

    #[test]
    fn organization_id_cells() {
        let header = HEADER.replace("organization_name", "organization_name,organization_id");
        let cells = |name: &str, id: &str| row(1).replace("Acme Corp", &format!("{name},{id}"));
        let parse_one =
            |name: &str, id: &str| parse_csv(format!("{header}\n{}\n", cells(name, id)).as_bytes(), &Limits::default());
        assert_eq!(parse_one("", "42").expect("id")[0].organization, OrganizationRef::ById(42));
        assert_eq!(parse_one("", " 7 ").expect("id")[0].organization, OrganizationRef::ById(7));
        assert_eq!(parse_one("Acme", "").expect("name")[0].organization, OrganizationRef::ByName("Acme".into()));
        for bad in ["abc", "0", "-3", "1.5", "99999999999999999999"] {
            let errs = errors(parse_one("", bad));
            assert_eq!(errs.len(), 1, "{bad}: {errs:#?}");
            assert_eq!(errs[0].message, "record 1, line 2: `organization_id` must be a positive integer", "{bad}");
        }
        assert!(errors(parse_one("Acme", "3"))[0].message.contains("give exactly one of them"));
        assert!(errors(parse_one("", ""))[0].message.contains("`organization_name` or `organization_id` is required"));
    }

    #[test]
    fn unknown_duplicate_and_unnamed_headers_are_refused() {
        let body = format!(" UUID ,Record_Type,colour,{}\n{}\n", &HEADER[17..], row(1));
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].record, errs[0].line, errs[0].field.as_deref()), (0, Some(1), Some("colour")));
        assert_eq!(
            errs[0].message,
            format!("header, line 1: column 3 `colour` is not a known field (known: {})", KNOWN_FIELDS.join(", "))
        );

        let body = format!("{HEADER},Source\n{},x\n", row(1));
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].field.as_deref(), Some("source"));
        assert_eq!(errs[0].message, "header, line 1: column 10 repeats `source` (column 3)");

        let body = format!("\n\n{HEADER},\n{},\n", row(1));
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        assert!(errs[0].message.starts_with("header, line 3: column 10 has no name (known: uuid, "), "{errs:#?}");

        // Case and spaces do not matter.
        let body = format!("{}\n{}\n", HEADER.to_uppercase().replace(',', " , "), row(1));
        assert_eq!(parse_csv(body.as_bytes(), &Limits::default()).expect("valid").len(), 1);
    }

    #[test]
    fn a_row_with_the_wrong_number_of_cells_is_an_error_for_that_record() {
        let body = format!("{HEADER}\n{}\n{},extra\nshort,row\n{}\nalone\n", row(1), row(2), row(3));
        let errs = errors(parse_csv(body.as_bytes(), &Limits::default()));
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "record 2, line 3: has 10 cells where the header names 9 columns",
                "record 3, line 4: has 2 cells where the header names 9 columns",
                "record 5, line 6: has 1 cell where the header names 9 columns",
            ]
        );
        assert!(errs.iter().all(|e| e.field.is_none()));
    }

    #[test]
    fn bom_crlf_and_blank_lines() {
        let body = format!(
            "\u{feff}{HEADER}\r\n\r\n{}\r\n   \r\n,,,,,,,,\r\n{}\r\n\r\n",
            row(1),
            row(2).replace("Email", "\"Email\"")
        );
        let records = parse_csv(body.as_bytes(), &Limits::default()).expect("valid");
        assert_eq!(records.iter().map(|r| r.uuid.clone()).collect::<Vec<_>>(), vec![uuid(1), uuid(2)]);
        // Lines still count from the BOM's line, CRLF counted once.
        let bad = body.replace(&uuid(2), "nope");
        let errs = errors(parse_csv(bad.as_bytes(), &Limits::default()));
        assert_eq!(errs[0].message, "record 2, line 6: `uuid` is not a UUID (8-4-4-4-12 hexadecimal digits)");
        // A lone CR ends a line too (old Mac exports).
        let cr = format!("{HEADER}\r{}\r{}", row(1), row(2));
        assert_eq!(parse_csv(cr.as_bytes(), &Limits::default()).expect("valid").len(), 2);
    }

    #[test]
    fn invalid_utf8_is_a_clear_error() {
        let mut body = format!("{HEADER}\n{}\n", row(1)).into_bytes();
        body.extend_from_slice(b"\xff\xfeLatin-1 caf\xe9\n");
        let errs = errors(parse_csv(&body, &Limits::default()));
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].record, errs[0].line), (0, Some(3)));
        assert_eq!(
            errs[0].message,
            "the file is not UTF-8 text: line 3 holds an invalid byte sequence (save it as \"CSV UTF-8\")"
        );
    }

    #[test]
    fn csv_limits_and_empty_batches() {
        let body = to_csv(&(1..=5).map(rec).collect::<Vec<_>>());
        let limits = Limits { max_records: 4, ..Limits::default() };
        assert_eq!(
            parse_csv(&body, &limits),
            Err(ImportError::TooLarge { kind: LimitKind::Records, actual: 5, max: 4 })
        );
        // The body size is checked first, before anything is read.
        let mut garbage = body.clone();
        garbage.push(0xff);
        let limits = Limits { max_body_bytes: body.len(), ..Limits::default() };
        assert_eq!(
            parse_csv(&garbage, &limits),
            Err(ImportError::TooLarge { kind: LimitKind::BodyBytes, actual: body.len() + 1, max: body.len() })
        );
        assert_eq!(parse_csv(&body, &Limits { max_body_bytes: body.len(), max_records: 5 }).map(|r| r.len()), Ok(5));
        for empty in [b"".as_slice(), b"\xEF\xBB\xBF", b"\n\r\n  \n", HEADER.as_bytes(), b"uuid,source\r\n,\r\n\r\n"] {
            assert_eq!(errors(parse_csv(empty, &Limits::default()))[0].message, "the batch holds no records");
        }
    }

    /// How many data rows a CSV holds, counted independently of `parse_csv`'s own row reading.
    fn data_rows(body: &[u8]) -> usize {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
        let rows = reader
            .byte_records()
            .map(|r| r.expect("a slice reads"))
            .filter(|r| !r.iter().all(|cell| cell.trim_ascii().is_empty()))
            .count();
        rows.saturating_sub(1)
    }

    /// The CSV part of the fuzz loop: mutated CSVs never panic and never give a partial batch.
    pub(super) struct Fuzz {
        bases: Vec<Vec<u8>>,
        accepted: usize,
        refused: usize,
    }

    impl Fuzz {
        pub(super) fn new(records: &[Value]) -> Self {
            let mut tricky_records = records.to_vec();
            tricky_records.extend(tricky().into_iter().zip(101..).map(|(mut r, i)| {
                r["uuid"] = json!(uuid(i));
                r
            }));
            let plain = to_csv(records);
            let crlf_bom =
                [b"\xEF\xBB\xBF".as_slice(), &String::from_utf8_lossy(&plain).replace('\n', "\r\n").into_bytes()]
                    .concat();
            Fuzz { bases: vec![plain, to_csv(&tricky_records), crlf_bom], accepted: 0, refused: 0 }
        }

        pub(super) fn step(&mut self, rng: &mut Rng) {
            let base = rng.below(self.bases.len());
            let body = mutate(rng, &self.bases[base]);
            let limits = if rng.below(10) == 0 {
                Limits { max_records: rng.below(10), max_body_bytes: rng.below(3_000) }
            } else {
                Limits::default()
            };
            let result =
                if rng.below(2) == 0 { parse_csv(&body, &limits) } else { parse_file("f.csv", &body, &limits) };
            match result {
                Ok(parsed) => {
                    self.accepted += 1;
                    assert!(std::str::from_utf8(&body).is_ok());
                    assert_eq!(
                        parsed.len(),
                        data_rows(&body),
                        "partial batch for {:?}",
                        String::from_utf8_lossy(&body)
                    );
                    assert!(
                        !parsed.is_empty() && parsed.len() <= limits.max_records && body.len() <= limits.max_body_bytes
                    );
                    let again = parse_json(&serde_json::to_vec(&parsed).expect("serialize"), &Limits::default());
                    assert_eq!(again.as_ref(), Ok(&parsed));
                }
                Err(ImportError::Invalid(errs)) => {
                    self.refused += 1;
                    assert!(!errs.is_empty() && errs.iter().all(|e| !e.message.is_empty()));
                    assert!(errs.iter().all(|e| e.line.is_some() || e.record == 0));
                }
                Err(ImportError::TooLarge { actual, max, .. }) => {
                    self.refused += 1;
                    assert!(actual > max);
                }
                Err(ImportError::UnsupportedFormat(f)) => panic!("unexpected UnsupportedFormat {f}"),
            }
        }

        pub(super) fn check_coverage(&self) {
            assert!(
                self.accepted > 20 && self.refused > 500,
                "CSV: accepted {}, refused {}",
                self.accepted,
                self.refused
            );
        }
    }
}
