//! Unit tests of the mapping module: fast, no I/O.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::template::{is_email, to_connectwise_date};
use super::*;
use crate::connectwise::catalog::{EXTERNAL_XREF_KEY, FIELDS, catalog, field};

// The mapping is exercised with ConnectWise's catalog, the fixed one.

fn validate(rows: &[MappingRow], lookups: Option<&Lookups>) -> Vec<RowError> {
    catalog().validate(rows, lookups)
}

fn preview(row: &MappingRow, compromise: &Compromise) -> Result<Preview, RowError> {
    catalog().preview(row, compromise)
}

fn preview_rows(rows: &[MappingRow], compromise: &Compromise) -> Vec<Result<Preview, RowError>> {
    catalog().preview_rows(rows, compromise)
}

fn build_ticket(
    rows: &[MappingRow],
    compromise: &Compromise,
    company_id: i64,
    dedupe_key: &str,
) -> Result<NewTicket, Vec<RowError>> {
    catalog().build_ticket(rows, compromise, company_id, dedupe_key)
}

fn default_rows() -> Vec<MappingRow> {
    catalog().default_rows()
}

fn new_integration_rows() -> Vec<MappingRow> {
    catalog().new_integration_rows()
}

fn item(id: i64, name: &str) -> LookupItem {
    LookupItem { id, name: name.to_owned() }
}

/// Two boards, both loaded; board 1 has a full set of lists, board 2 only a status.
fn lookups() -> Lookups {
    let per_board = |one: Vec<LookupItem>, two: Vec<LookupItem>| BTreeMap::from([(1, one), (2, two)]);
    Lookups {
        lists: BTreeMap::from([
            ("board".to_owned(), vec![item(1, "Service A"), item(2, "Security")]),
            ("priority".to_owned(), vec![item(4, "Priority 3 - Normal")]),
            ("source".to_owned(), vec![item(6, "Dark Web ID")]),
        ]),
        dependent: BTreeMap::from([
            ("status".to_owned(), per_board(vec![item(11, "New")], vec![item(21, "New (Security)")])),
            ("type".to_owned(), per_board(vec![item(31, "Security Incident")], vec![])),
            ("subType".to_owned(), per_board(vec![item(41, "Credential Exposure")], vec![])),
            ("item".to_owned(), per_board(vec![item(51, "Dark Web")], vec![])),
        ]),
    }
}

fn row(field: &str, value: &str) -> MappingRow {
    MappingRow::new(field, value)
}

fn rows_with(extra: &[(&str, &str)]) -> Vec<MappingRow> {
    let mut rows = default_rows();
    rows.extend(extra.iter().map(|(f, v)| row(f, v)));
    rows
}

fn messages(errors: &[RowError]) -> Vec<&str> {
    errors.iter().map(|e| e.message.as_str()).collect()
}

fn one_error(rows: &[MappingRow], lookups: Option<&Lookups>) -> RowError {
    let errors = validate(rows, lookups);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().expect("one error")
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens

#[test]
fn catalog_has_the_twelve_confirmed_tokens_with_descriptions() {
    let names: Vec<&str> = TOKENS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "uuid",
            "password",
            "obscured_password",
            "record_type",
            "source",
            "website",
            "organization_name",
            "compromise",
            "password_criteria",
            "search_value",
            "date_added",
            "date_found"
        ]
    );
    for t in TOKENS {
        assert!(t.description.ends_with('.') && t.description.len() > 20, "{}", t.name);
        assert!(!t.name.contains('[') && !t.name.contains(']'));
        assert_eq!(token(t.name), Some(t));
    }
}

#[test]
fn every_token_renders_its_value() {
    let c = Compromise::sample();
    let expected = [
        ("uuid", "5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a"),
        ("password", "Summer2024!"),
        ("obscured_password", "S*********!"),
        ("record_type", "Email"),
        ("source", "Hacking forum combolist (sample data)"),
        ("website", "portal.acme-corp.example"),
        ("organization_name", "Acme Corp"),
        ("compromise", "jane.doe@acme-corp.example"),
        ("password_criteria", "Matches"),
        ("search_value", "acme-corp.example"),
        ("date_added", "2025-03-14T09:26:53Z"),
        ("date_found", "2025-03-12T00:00:00Z"),
    ];
    assert_eq!(expected.len(), TOKENS.len());
    for (name, value) in expected {
        assert_eq!(c.token_value(name).as_deref(), Some(value), "{name}");
        assert_eq!(render(&format!("<[{name}]>"), &c).as_deref(), Ok(format!("<{value}>").as_str()), "{name}");
    }
    // Every catalog entry has a value (guards a token added to TOKENS but not to token_value).
    for t in TOKENS {
        assert!(c.token_value(t.name).is_some(), "{}", t.name);
    }
    assert_eq!(c.token_value("nope"), None);
    assert_eq!(c.token_value("UUID"), None);
}

#[test]
fn enums_render_and_serialize_as_dark_web_id_writes_them() {
    let c = Compromise {
        record_type: RecordType::Ip,
        password_criteria: PasswordCriteria::DoesntMatch,
        ..Compromise::sample()
    };
    assert_eq!(render("[record_type] [password_criteria]", &c).as_deref(), Ok("IP Doesn't Match"));
    let c2 = Compromise { record_type: RecordType::Domain, password_criteria: PasswordCriteria::NotApplicable, ..c };
    assert_eq!(render("[record_type] [password_criteria]", &c2).as_deref(), Ok("Domain N/A"));
    let value = serde_json::to_value(&c2).expect("serialize");
    assert_eq!(value["record_type"], "Domain");
    assert_eq!(value["password_criteria"], "N/A");
    let back: Compromise = serde_json::from_value(value).expect("deserialize");
    assert_eq!(back, c2);
    let ip: RecordType = serde_json::from_str("\"IP\"").expect("IP");
    assert_eq!(ip, RecordType::Ip);
    let dm: PasswordCriteria = serde_json::from_str("\"Doesn't Match\"").expect("Doesn't Match");
    assert_eq!(dm, PasswordCriteria::DoesntMatch);
}

#[test]
fn empty_values_render_as_empty_text() {
    let c = Compromise { password: None, website: None, ..Compromise::sample() };
    assert_eq!(c.token_value("password").as_deref(), Some(""));
    assert_eq!(c.token_value("obscured_password").as_deref(), Some(""));
    assert_eq!(render("p=[password];o=[obscured_password];w=[website];", &c).as_deref(), Ok("p=;o=;w=;"));
    let empty = Compromise { password: Some(String::new()), ..c };
    assert_eq!(render("[obscured_password]", &empty).as_deref(), Ok(""));
}

#[test]
fn obscured_password_keeps_first_and_last_character() {
    assert_eq!(obscure("password"), "p******d");
    assert_eq!(obscure("abcde"), "a***e");
    assert_eq!(obscure("abcd"), "****");
    assert_eq!(obscure("ab"), "**");
    assert_eq!(obscure(""), "");
    // Characters, not bytes: multi-byte passwords keep whole characters.
    assert_eq!(obscure("pässwörd"), "p******d");
    assert_eq!(obscure("ñandú"), "ñ***ú");
    assert_eq!(obscure("🔑secret🔒"), "🔑******🔒");
    assert_eq!(obscure("é€😀"), "***");
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing and escapes

#[test]
fn parse_splits_text_and_tokens() {
    assert_eq!(
        parse("Hi [uuid]!"),
        Ok(vec![Segment::Text("Hi ".into()), Segment::Token("uuid"), Segment::Text("!".into())])
    );
    assert_eq!(parse("[uuid][source]"), Ok(vec![Segment::Token("uuid"), Segment::Token("source")]));
    assert_eq!(parse(""), Ok(vec![]));
}

#[test]
fn double_brackets_are_literal_brackets() {
    let c = Compromise::sample();
    assert_eq!(render("[[uuid]]", &c).as_deref(), Ok("[uuid]"));
    assert_eq!(parse("[[uuid]]"), Ok(vec![Segment::Text("[uuid]".into())]));
    assert_eq!(render("[[[record_type]]]", &c).as_deref(), Ok("[Email]"));
    assert_eq!(render("[[ ", &c).as_deref(), Ok("[ "));
    // A lone `]` is literal; `]]` is one `]`.
    assert_eq!(render("a]b ]] [source]]", &c).as_deref(), Ok("a]b ] Hacking forum combolist (sample data)]"));
    assert_eq!(render("[[[[", &c).as_deref(), Ok("[["));
}

#[test]
fn unknown_tokens_are_errors_with_position_and_suggestion() {
    let err = parse("Hello [organisation_name]").expect_err("unknown");
    assert_eq!(err, TemplateError::UnknownToken { name: "organisation_name".into(), position: 6 });
    assert_eq!(err.to_string(), "Unknown token [organisation_name] at character 7. Did you mean [organization_name]?");
    // Positions count characters, not bytes.
    assert_eq!(parse("é–😀[foo]"), Err(TemplateError::UnknownToken { name: "foo".into(), position: 3 }));
    assert_eq!(suggest_token("UUID"), Some("uuid"));
    assert_eq!(suggest_token("obscured-password"), Some("obscured_password"));
    assert_eq!(suggest_token("date found"), Some("date_found"));
    assert_eq!(suggest_token("dat_found"), Some("date_found"));
    assert_eq!(suggest_token("org_name"), Some("organization_name"));
    assert_eq!(suggest_token("compromise_email"), Some("compromise"));
    assert_eq!(suggest_token("organisation"), Some("organization_name"));
    assert_eq!(suggest_token("passwd"), Some("password"));
    assert_eq!(suggest_token("xyzzy"), None);
    assert_eq!(suggest_token("email"), None);
    let err = parse("[xyzzy]").expect_err("unknown");
    assert!(err.to_string().starts_with("Unknown token [xyzzy] at character 1. Use one of the Dark Web ID tokens"));
    let err = parse("a []").expect_err("empty");
    assert_eq!(err, TemplateError::UnknownToken { name: String::new(), position: 2 });
    assert!(err.to_string().starts_with("Empty brackets"), "{err}");
    assert!(render("[Uuid]", &Compromise::sample()).is_err());
}

#[test]
fn unclosed_brackets_are_errors() {
    assert_eq!(parse("abc [uuid"), Err(TemplateError::UnclosedBracket { position: 4 }));
    assert_eq!(parse("["), Err(TemplateError::UnclosedBracket { position: 0 }));
    assert_eq!(parse("[abc [uuid]"), Err(TemplateError::UnclosedBracket { position: 0 }));
    assert_eq!(parse("[uu\nid]"), Err(TemplateError::UnclosedBracket { position: 0 }));
    let message = TemplateError::UnclosedBracket { position: 4 }.to_string();
    assert_eq!(
        message,
        "The \"[\" at character 5 is never closed: end the token with \"]\", or write \"[[\" for a literal \"[\"."
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation

#[test]
fn truncate_chars_cuts_on_character_boundaries() {
    assert_eq!(truncate_chars("hello", 5), ("hello".into(), None));
    assert_eq!(truncate_chars("hello", 10), ("hello".into(), None));
    assert_eq!(truncate_chars("hello", 3), ("hel".into(), Some("lo".into())));
    assert_eq!(truncate_chars("", 0), (String::new(), None));
    assert_eq!(truncate_chars("a", 0), (String::new(), Some("a".into())));
    // Accented and CJK text: 2- and 3-byte characters right at the limit.
    assert_eq!(truncate_chars("héllo", 2), ("hé".into(), Some("llo".into())));
    assert_eq!(truncate_chars("ééé", 3), ("ééé".into(), None));
    assert_eq!(truncate_chars("日本語テキスト", 3), ("日本語".into(), Some("テキスト".into())));
    // Emoji (4 bytes) right at the limit and one past it.
    assert_eq!(truncate_chars("abc😀", 4), ("abc😀".into(), None));
    assert_eq!(truncate_chars("abc😀", 3), ("abc".into(), Some("😀".into())));
    assert_eq!(truncate_chars("😀😀😀", 2), ("😀😀".into(), Some("😀".into())));
}

#[test]
fn truncation_never_splits_a_visible_character() {
    // A decomposed é (e + combining acute) stays whole.
    assert_eq!(truncate_chars("cafe\u{301}s", 4), ("caf".into(), Some("e\u{301}s".into())));
    assert_eq!(truncate_chars("cafe\u{301}s", 5), ("cafe\u{301}".into(), Some("s".into())));
    // Skin tone, ZWJ family and flag sequences.
    assert_eq!(truncate_chars("a👍🏽", 2), ("a".into(), Some("👍🏽".into())));
    let family = "👨\u{200D}👩\u{200D}👧";
    assert_eq!(truncate_chars(&format!("a{family}"), 3), ("a".into(), Some(family.into())));
    assert_eq!(truncate_chars("a🇫🇷🇩🇪", 2), ("a".into(), Some("🇫🇷🇩🇪".into())));
    assert_eq!(truncate_chars("a🇫🇷🇩🇪", 4), ("a🇫🇷".into(), Some("🇩🇪".into())));
}

#[test]
fn connectwise_lengths_count_utf16_units() {
    assert_eq!(connectwise_len("héllo"), 5);
    assert_eq!(connectwise_len("abc😀"), 5);
    assert_eq!(truncate_for_connectwise("abc😀", 5), ("abc😀".into(), None));
    assert_eq!(truncate_for_connectwise("abc😀", 4), ("abc".into(), Some("😀".into())));
    assert_eq!(truncate_for_connectwise("ééé😀", 4), ("ééé".into(), Some("😀".into())));
}

#[test]
fn truncation_is_total_on_mixed_text() {
    let s = "Ünïcödé 😀 e\u{301} 👨\u{200D}👩\u{200D}👧 🇫🇷 日本 done";
    let chars = s.chars().count();
    for max in 0..=chars + 2 {
        for (kept, cut, len) in [
            {
                let (k, c) = truncate_chars(s, max);
                let n = k.chars().count();
                (k, c, n)
            },
            {
                let (k, c) = truncate_for_connectwise(s, max);
                let n = connectwise_len(&k);
                (k, c, n)
            },
        ] {
            assert!(len <= max, "max {max}: {kept:?}");
            assert_eq!(format!("{kept}{}", cut.clone().unwrap_or_default()), s);
            assert_eq!(cut.is_none(), kept == s);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Field catalog

#[test]
fn field_catalog_matches_the_connectwise_api() {
    let keys: HashSet<&str> = FIELDS.iter().map(|f| &*f.key).collect();
    assert_eq!(keys.len(), FIELDS.len(), "duplicate keys");
    let labels: HashSet<&str> = FIELDS.iter().map(|f| &*f.label).collect();
    assert_eq!(labels.len(), FIELDS.len(), "duplicate labels");
    let expect = |key: &str, label: &str, kind: FieldKind, max: Option<usize>| {
        let f = field(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!((&*f.label, f.kind, f.max_len), (label, kind, max), "{key}");
    };
    expect("summary", "Summary", FieldKind::Text, Some(100));
    expect("company", "Company", FieldKind::Company, None);
    expect("initialDescription", "Initial Description", FieldKind::LongText, None);
    expect("initialInternalAnalysis", "Initial Internal Analysis", FieldKind::LongText, None);
    expect("initialResolution", "Initial Resolution", FieldKind::LongText, None);
    for (key, label) in [
        ("board", "Board"),
        ("status", "Status"),
        ("priority", "Priority"),
        ("type", "Type"),
        ("subType", "Sub Type"),
        ("item", "Item"),
        ("source", "Source"),
    ] {
        expect(key, label, FieldKind::Reference, None);
    }
    expect("contactName", "Contact Name", FieldKind::Text, Some(62));
    expect("contactEmailAddress", "Contact Email Address", FieldKind::Email, Some(250));
    expect("contactPhoneNumber", "Contact Phone Number", FieldKind::Text, Some(20));
    expect("contactPhoneExtension", "Contact Phone Extension", FieldKind::Text, Some(15));
    expect("contactEmailLookup", "Contact Email Lookup", FieldKind::Email, None);
    expect("addressLine1", "Address 1", FieldKind::Text, Some(50));
    expect("addressLine2", "Address 2", FieldKind::Text, Some(50));
    expect("city", "City", FieldKind::Text, Some(50));
    expect("stateIdentifier", "State", FieldKind::Text, Some(50));
    expect("zip", "Zip", FieldKind::Text, Some(12));
    expect("siteName", "Site Name", FieldKind::Text, Some(50));
    expect("poNumber", "PO Number", FieldKind::Text, Some(50));
    expect("automaticEmailCc", "Automatic Email CC Address", FieldKind::Email, Some(1000));
    for key in ["requiredDate", "estimatedStartDate", "dateResponded", "dateResolved", "dateResplan", "subDateAccepted"]
    {
        assert_eq!(field(key).map(|f| f.kind), Some(FieldKind::Date), "{key}");
    }
    expect("resources", "Resources", FieldKind::Text, None);
    assert_eq!(FIELDS.len(), 32);
    let required: Vec<&str> = FIELDS.iter().filter(|f| f.required).map(|f| &*f.key).collect();
    assert_eq!(required, ["summary", "company"]);
    // Reserved for exactly-once delivery.
    assert_eq!(field(EXTERNAL_XREF_KEY), None);
    assert_eq!(external_xref("abc", 7), "dwid:abc/7");
    assert!(FIELDS.iter().all(|f| f.help.ends_with('.')));
}

// ---------------------------------------------------------------------------------------------------------------
// Preview

#[test]
fn preview_of_the_default_rows() {
    let c = Compromise::sample();
    let rows = default_rows();
    let summary = preview(&rows[0], &c).expect("summary");
    assert_eq!(summary.text, "Dark Web ID: Email compromise for Acme Corp – jane.doe@acme-corp.example");
    assert_eq!(summary.length, 72);
    assert_eq!(summary.counter(), "72 / 100");
    assert!(!summary.is_cut());
    let description = preview(&rows[1], &c).expect("description");
    assert!(description.text.starts_with("Dark Web ID found a new compromise for Acme Corp.\n\nCompromised: jane.doe"));
    assert!(description.text.contains("Password (obscured): S*********!\n"));
    assert!(!description.text.contains("Summer2024!"), "plain password in the default description");
    assert!(!description.text.contains('['), "{}", description.text);
    assert_eq!(description.max, None);
    assert_eq!(description.counter(), description.length.to_string());
    let company = preview(&rows[2], &c).expect("company");
    assert_eq!(company.text, catalog().company_preview());
}

#[test]
fn preview_shows_what_is_cut_at_the_maximum() {
    let c = Compromise::sample();
    // 95 accented characters + the 26-character compromise: cut at 100, on a character boundary.
    let template = format!("{}[compromise]", "é".repeat(95));
    let p = preview(&row("summary", &template), &c).expect("preview");
    assert_eq!(p.length, 121);
    assert_eq!(p.counter(), "121 / 100");
    assert_eq!(p.text, format!("{}jane.", "é".repeat(95)));
    assert_eq!(p.cut.as_deref(), Some("doe@acme-corp.example"));
    // An emoji straddling the limit moves whole into the cut part (it counts 2 for ConnectWise).
    let p = preview(&row("summary", &format!("{}😀!", "a".repeat(99))), &c).expect("preview");
    assert_eq!((p.text.as_str(), p.cut.as_deref(), p.length), ("a".repeat(99).as_str(), Some("😀!"), 102));
    let p = preview(&row("summary", &format!("{}😀", "a".repeat(98))), &c).expect("preview");
    assert_eq!((p.cut, p.length), (None, 100));
}

#[test]
fn line_breaks_are_flattened_in_single_line_fields_and_kept_in_long_texts() {
    let c = Compromise::sample();
    let p = preview(&row("summary", "  New\r\n\n compromise:\n[record_type]  \n"), &c).expect("summary");
    assert_eq!(p.text, "New compromise: Email");
    let p = preview(&row("initialInternalAnalysis", "Line 1\r\nLine 2\rLine 3\n\n"), &c).expect("long");
    assert_eq!(p.text, "Line 1\nLine 2\nLine 3");
}

#[test]
fn preview_of_references_dates_and_emails() {
    let c = Compromise::sample();
    let p = preview(&row("board", " 12 "), &c).expect("board");
    assert_eq!((p.text.as_str(), p.max), ("12", None));
    let e = preview(&row("board", "Service A"), &c).expect_err("not an id");
    assert_eq!(e.message, "Choose a Board from the list: \"Service A\" is not one of the site's entries.");
    let p = preview(&row("requiredDate", "[date_found]"), &c).expect("date");
    assert_eq!(p.text, "2025-03-12T00:00:00Z");
    let domain = Compromise { record_type: RecordType::Domain, compromise: "acme-corp.example".into(), ..c.clone() };
    let e = preview(&row("contactEmailAddress", "[compromise]"), &domain).expect_err("not an email");
    assert!(e.message.contains("\"acme-corp.example\", which is not an email address"), "{}", e.message);
    let e = preview(&row("summary", "[nope]"), &c).expect_err("unknown token");
    assert_eq!((e.row, e.field.as_str()), (0, "summary"));
    let e = preview(&row("bogus", "x"), &c).expect_err("unknown field");
    assert!(e.message.contains("\"bogus\" is not a ConnectWise ticket field"));
    let all = preview_rows(&[row("summary", "ok"), row("city", "[nope]")], &c);
    assert!(all[0].is_ok());
    assert_eq!(all[1].as_ref().map_err(|e| e.row), Err(1));
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

#[test]
fn default_rows_validate_cleanly() {
    assert_eq!(validate(&default_rows(), None), vec![]);
    assert_eq!(validate(&default_rows(), Some(&lookups())), vec![]);
    let full = rows_with(&[
        ("board", "1"),
        ("status", "11"),
        ("priority", "4"),
        ("type", "31"),
        ("subType", "41"),
        ("item", "51"),
        ("source", "6"),
    ]);
    assert_eq!(validate(&full, Some(&lookups())), vec![]);
}

#[test]
fn unknown_and_reserved_fields_are_errors() {
    let e = one_error(&rows_with(&[("ticketOwner", "x")]), None);
    assert_eq!((e.row, e.field.as_str()), (3, "ticketOwner"));
    assert_eq!(
        e.message,
        "\"ticketOwner\" is not a ConnectWise ticket field this integration can set; choose a field from the list."
    );
    let e = one_error(&rows_with(&[("externalXRef", "[uuid]")]), None);
    assert!(e.message.starts_with("External Reference is set by Dark Web ID"), "{}", e.message);
    let e = one_error(&rows_with(&[("", "")]), None);
    assert_eq!(e.message, "Choose a ConnectWise field for this row.");
}

#[test]
fn duplicate_fields_are_errors() {
    let e = one_error(&rows_with(&[("summary", "Again")]), None);
    assert_eq!(e.row, 3);
    assert_eq!(e.message, "Summary is mapped twice (rows 1 and 4); remove one of them.");
}

#[test]
fn unknown_tokens_are_reported_with_the_closest_token() {
    let rows = vec![row("summary", "[record_typ] for [organisation] and [comprimise]")];
    let errors = validate(&rows, None);
    assert_eq!(
        messages(&errors),
        [
            "Unknown token [record_typ] at character 1. Did you mean [record_type]?",
            "Unknown token [organisation] at character 18. Did you mean [organization_name]?",
            "Unknown token [comprimise] at character 37. Did you mean [compromise]?",
        ]
    );
    assert!(errors.iter().all(|e| e.row == 0 && e.field == "summary"));
    let e = one_error(&[row("summary", "Compromise [uuid")], None);
    assert!(e.message.starts_with("The \"[\" at character 12 is never closed"), "{}", e.message);
}

#[test]
fn summary_is_required_and_never_empty() {
    let e = one_error(&[row("company", "")], None);
    assert!(e.is_form_level());
    assert_eq!((e.row, e.field.as_str()), (RowError::NO_ROW, "summary"));
    assert_eq!(e.message, "Add a Summary row: ConnectWise requires a summary on every ticket.");
    let e = one_error(&[row("summary", "  \n ")], None);
    assert_eq!(e.row, 0);
    assert!(e.message.starts_with("Summary is required"), "{}", e.message);
    let e = one_error(&[row("summary", " [website] [obscured_password] ")], None);
    assert!(e.message.starts_with("Summary could be empty"), "{}", e.message);
    assert_eq!(validate(&[row("summary", "[compromise]")], None), vec![]);
    let e = one_error(&rows_with(&[("city", " ")]), None);
    assert_eq!(e.message, "Enter a value for City, or remove the row.");
}

#[test]
fn a_literal_over_the_maximum_is_an_error() {
    let e = one_error(&[row("summary", &format!("{}[uuid]", "x".repeat(101)))], None);
    assert_eq!(
        e.message,
        "The fixed text of Summary is already 101 characters, over ConnectWise's maximum of 100; shorten it."
    );
    assert_eq!(validate(&[row("summary", &format!("{}[uuid]", "é".repeat(100)))], None), vec![]);
    // 51 emoji are 102 UTF-16 units for ConnectWise.
    let e = one_error(&[row("summary", &"😀".repeat(51))], None);
    assert!(e.message.contains("already 102 characters"), "{}", e.message);
    let e = one_error(&rows_with(&[("zip", "1234567890123")]), None);
    assert!(e.message.contains("maximum of 12"), "{}", e.message);
    // A token-free part is counted without the tokens; a long rendered value is cut, not an error.
    assert_eq!(validate(&rows_with(&[("zip", "[uuid]")]), None), vec![]);
}

#[test]
fn references_must_be_ids_from_the_site_lookups() {
    let l = lookups();
    // An empty list value is no error: it is left out, and ConnectWise applies its default.
    assert!(validate(&rows_with(&[("board", "")]), Some(&l)).is_empty());
    let e = one_error(&rows_with(&[("priority", "high")]), Some(&l));
    assert_eq!(e.message, "Choose a Priority from the list: \"high\" is not one of the site's entries.");
    // Zero and negative ids are ids (Autotask uses them); the site's list decides.
    assert_eq!(validate(&rows_with(&[("priority", "-4")]), None), vec![]);
    let e = one_error(&rows_with(&[("priority", "-4")]), Some(&l));
    assert_eq!(e.message, "Priority -4 is not a priority on this ConnectWise site; choose one from the list.");
    let e = one_error(&rows_with(&[("priority", "[uuid]")]), None);
    assert!(e.message.starts_with("Choose a Priority"));
    let e = one_error(&rows_with(&[("board", "99")]), Some(&l));
    assert_eq!(e.message, "Board 99 is not a service board on this ConnectWise site; choose one from the list.");
    let e = one_error(&rows_with(&[("priority", "5")]), Some(&l));
    assert_eq!(e.message, "Priority 5 is not a priority on this ConnectWise site; choose one from the list.");
    let e = one_error(&rows_with(&[("source", "7")]), Some(&l));
    assert_eq!(e.message, "Source 7 is not a service source on this ConnectWise site; choose one from the list.");
    // Without lookups only the form is checked.
    assert_eq!(validate(&rows_with(&[("board", "99"), ("priority", "5")]), None), vec![]);
}

#[test]
fn board_lists_follow_the_board_row() {
    let l = lookups();
    // The status of another board.
    let e = one_error(&rows_with(&[("board", "1"), ("status", "21")]), Some(&l));
    assert_eq!((e.row, e.field.as_str()), (4, "status"));
    assert_eq!(e.message, "Status 21 is not a status of the board \"Service A\"; choose one from that board's list.");
    assert_eq!(validate(&rows_with(&[("board", "2"), ("status", "21")]), Some(&l)), vec![]);
    // Board 2 has no types at all.
    let e = one_error(&rows_with(&[("board", "2"), ("type", "31")]), Some(&l));
    assert_eq!(e.message, "Type 31 is not a type of the board \"Security\"; choose one from that board's list.");
    let e = one_error(&rows_with(&[("board", "1"), ("subType", "1")]), Some(&l));
    assert!(e.message.starts_with("Sub Type 1 is not a sub type"), "{}", e.message);
    let e = one_error(&rows_with(&[("board", "1"), ("item", "1")]), Some(&l));
    assert!(e.message.starts_with("Item 1 is not an item"), "{}", e.message);
    // Without a Board row, with or without lookups.
    for lookups in [None, Some(&l)] {
        let errors =
            validate(&rows_with(&[("status", "11"), ("type", "31"), ("subType", "41"), ("item", "51")]), lookups);
        assert_eq!(errors.len(), 4);
        assert_eq!(errors[0].message, "Status belongs to a service board: add a Board row and choose the board first.");
    }
    // An unknown board is reported once, on the Board row; its dependents are not checked against it.
    let e = one_error(&rows_with(&[("board", "99"), ("status", "11")]), Some(&l));
    assert_eq!(e.field, "board");
    // A board whose lists are not loaded yet: its dependents wait to be judged until they are.
    let mut partly = l.clone();
    partly.lists.get_mut("board").expect("boards").push(item(3, "Projects"));
    assert_eq!(validate(&rows_with(&[("board", "3"), ("status", "11")]), Some(&partly)), vec![]);
    partly.merge(Lookups {
        lists: BTreeMap::new(),
        dependent: BTreeMap::from([("status".to_owned(), BTreeMap::from([(3, vec![item(71, "Open")])]))]),
    });
    let e = one_error(&rows_with(&[("board", "3"), ("status", "11")]), Some(&partly));
    assert_eq!(e.message, "Status 11 is not a status of the board \"Projects\"; choose one from that board's list.");
    assert_eq!(partly.choices("status", Some(1)), l.choices("status", Some(1)), "merging keeps other boards' lists");
}

#[test]
fn dates_are_a_date_token_or_iso_utc() {
    for ok in [
        "[date_found]",
        " [date_added] ",
        "2026-11-27T10:00:00Z",
        "2026-11-27T10:00:00.123Z",
        "2024-02-29T00:00:00+00:00",
    ] {
        assert_eq!(validate(&rows_with(&[("requiredDate", ok)]), None), vec![], "{ok}");
    }
    for bad in [
        "tomorrow",
        "2026-11-27",
        "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2026-11-27T10:00:00+02:00",
        "2026-11-27T10:00:00",
    ] {
        let e = one_error(&rows_with(&[("dateResolved", bad)]), None);
        assert_eq!(
            e.message,
            format!("\"{bad}\" is not an ISO-8601 UTC date; write it as 2026-11-27T10:00:00Z, or use [date_found].")
        );
    }
    for bad in ["[uuid]", "[date_found] [date_added]", "on [date_found]"] {
        let e = one_error(&rows_with(&[("requiredDate", bad)]), None);
        assert_eq!(
            e.message,
            "Required Date takes a single date: [date_added], [date_found], or a UTC date such as 2026-11-27T10:00:00Z."
        );
    }
}

#[test]
fn literal_emails_are_checked() {
    let ok = [("contactEmailAddress", "soc@acme.example"), ("contactEmailLookup", "[compromise]")];
    assert_eq!(validate(&rows_with(&ok), None), vec![]);
    let e = one_error(&rows_with(&[("contactEmailAddress", "soc at acme")]), None);
    assert_eq!(e.message, "\"soc at acme\" is not a valid email address.");
    assert_eq!(validate(&rows_with(&[("automaticEmailCc", "a@x.example; b@y.example")]), None), vec![]);
    let e = one_error(&rows_with(&[("automaticEmailCc", "a@x.example; nope")]), None);
    assert!(e.message.contains("separate addresses with semicolons"), "{}", e.message);
    for good in ["a@b.co", "first.last+tag@sub.example.com", "ü@exämple.de"] {
        assert!(is_email(good), "{good}");
    }
    for bad in ["", "a", "a@b", "@b.co", "a@.co", "a@b..co", "a b@c.co", "a@b.co@d.co", "a@-b.co", ".a@b.co"] {
        assert!(!is_email(bad), "{bad}");
    }
}

#[test]
fn company_is_automatic() {
    let e = one_error(&[row("summary", "x"), row("company", "Acme")], None);
    assert!(e.message.starts_with("Company is set automatically"), "{}", e.message);
    assert_eq!(validate(&[row("summary", "x")], None), vec![], "the Company row is optional");
}

#[test]
fn every_field_accepts_a_sensible_value() {
    let rows: Vec<MappingRow> = FIELDS
        .iter()
        .map(|f| {
            let value = match (f.kind, &*f.key) {
                (FieldKind::Company, _) => "",
                (FieldKind::Reference, "board") => "1",
                (FieldKind::Reference, "status") => "11",
                (FieldKind::Reference, "type") => "31",
                (FieldKind::Reference, "subType") => "41",
                (FieldKind::Reference, "item") => "51",
                (FieldKind::Reference, "priority") => "4",
                (FieldKind::Reference, _) => "6",
                (FieldKind::Date, _) => "[date_found]",
                (FieldKind::Email, _) => "[compromise]",
                _ => "[organization_name]",
            };
            row(&f.key, value)
        })
        .collect();
    assert_eq!(validate(&rows, Some(&lookups())), vec![]);
    let ticket = build_ticket(&rows, &Compromise::sample(), 250, "dwid:x").expect("ticket");
    for key in ticket.fields.keys() {
        assert!(field(key).is_some_and(|f| f.kind != FieldKind::Company), "unexpected property {key}");
    }
    assert_eq!(ticket.fields.len(), FIELDS.len() - 1, "every field but the company");
}

// ---------------------------------------------------------------------------------------------------------------
// Ticket body

#[test]
fn build_ticket_renders_every_row() {
    let rows = vec![
        row("summary", "DWID: [compromise]"),
        row("company", ""),
        row("board", "1"),
        row("status", "11"),
        row("priority", " 4 "),
        row("initialDescription", "Found [date_found]\r\nSource: [source]"),
        row("contactEmailAddress", "[compromise]"),
        row("automaticEmailCc", "soc@msp.example"),
        row("requiredDate", "[date_added]"),
        row("contactName", "[website]"),
    ];
    let c = Compromise { website: None, ..Compromise::sample() };
    let ticket = build_ticket(&rows, &c, 24, "dwid:5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a").expect("ticket");
    assert_eq!((ticket.company_id, ticket.dedupe_key.as_str()), (24, "dwid:5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a"));
    assert_eq!(
        serde_json::Value::Object(ticket.fields),
        json!({
            "summary": "DWID: jane.doe@acme-corp.example",
            "board": 1,
            "status": 11,
            "priority": 4,
            "initialDescription": "Found 2025-03-12T00:00:00Z\nSource: Hacking forum combolist (sample data)",
            "contactEmailAddress": "jane.doe@acme-corp.example",
            "automaticEmailCc": "soc@msp.example",
            "requiredDate": "2025-03-14T09:26:53Z",
        }),
        "contactName renders empty and is left out"
    );
}

#[test]
fn build_ticket_sets_company_and_xref_even_without_a_company_row() {
    let ticket = build_ticket(&[row("summary", "x")], &Compromise::sample(), 7, "dwid:1").expect("ticket");
    assert_eq!((ticket.company_id, ticket.dedupe_key.as_str()), (7, "dwid:1"));
    assert_eq!(ticket.fields.len(), 1);
}

#[test]
fn build_ticket_truncates_on_character_boundaries() {
    let c = Compromise {
        organization_name: "Société Générale 😀 Ünïcödé Corporation of Examples".into(),
        ..Compromise::sample()
    };
    let rows =
        vec![row("summary", &format!("{}[organization_name]", "ä".repeat(82))), row("zip", "[organization_name]")];
    let ticket = build_ticket(&rows, &c, 1, "dwid:1").expect("ticket");
    let summary = ticket.fields["summary"].as_str().expect("string");
    // 82 + 17 = 99 units: the emoji (2 units) would end at 101, so it moves whole into the cut part.
    assert_eq!(summary, format!("{}Société Générale ", "ä".repeat(82)));
    assert!(connectwise_len(summary) <= 100);
    assert_eq!(ticket.fields["zip"], json!("Société Géné"));
    // Exactly what the preview shows.
    assert_eq!(preview(&rows[0], &c).expect("preview").text, summary);
}

#[test]
fn build_ticket_normalizes_dates_and_drops_unusable_values() {
    let rows = vec![
        row("summary", "x"),
        row("requiredDate", "[date_found]"),
        row("estimatedStartDate", "[date_added]"),
        row("contactEmailAddress", "[compromise]"),
    ];
    let c = Compromise {
        record_type: RecordType::Domain,
        compromise: "acme-corp.example".into(),
        date_found: "2025-01-01T00:30:00+01:00".into(),
        date_added: "last week".into(),
        ..Compromise::sample()
    };
    let ticket = build_ticket(&rows, &c, 1, "dwid:1").expect("ticket");
    assert_eq!(ticket.fields.get("requiredDate"), Some(&json!("2024-12-31T23:30:00Z")));
    assert!(!ticket.fields.contains_key("estimatedStartDate"));
    assert!(!ticket.fields.contains_key("contactEmailAddress"));
}

#[test]
fn build_ticket_refuses_an_invalid_mapping_or_an_empty_summary() {
    let c = Compromise::sample();
    let errors = build_ticket(&[row("summary", "[nope]"), row("priority", "x")], &c, 1, "dwid:1").expect_err("invalid");
    assert_eq!(errors.len(), 2);
    let no_org = Compromise { organization_name: String::new(), ..c.clone() };
    let errors = build_ticket(&[row("summary", "[organization_name]")], &no_org, 1, "dwid:1").expect_err("empty");
    assert_eq!((errors[0].row, errors[0].field.as_str()), (0, "summary"));
    assert!(errors[0].message.starts_with("The Summary is empty"));
    for xref in ["", &format!("dwid:{}", "x".repeat(96))] {
        let errors = build_ticket(&[row("summary", "x")], &c, 1, xref).expect_err("xref");
        assert_eq!(errors[0].field, "externalXRef");
        assert!(errors[0].is_form_level());
    }
    assert!(build_ticket(&[row("summary", "x")], &c, 1, &format!("dwid:{}", "x".repeat(95))).is_ok());
}

#[test]
fn dates_convert_to_connectwise_utc() {
    let cases = [
        ("2025-03-14T09:26:53Z", Some("2025-03-14T09:26:53Z")),
        ("2025-03-14T09:26:53.123456Z", Some("2025-03-14T09:26:53Z")),
        ("2025-03-14 09:26:53+00:00", Some("2025-03-14T09:26:53Z")),
        ("2025-03-14", Some("2025-03-14T00:00:00Z")),
        ("2025-03-14T09:26", Some("2025-03-14T09:26:00Z")),
        ("2024-02-28T23:00:00-02:00", Some("2024-02-29T01:00:00Z")),
        ("2025-01-01T00:30:00+0100", Some("2024-12-31T23:30:00Z")),
        ("2024-02-30", None),
        ("2025-03-14T24:00:00Z", None),
        ("2025-03-14T09:26:53+25:00", None),
        ("14/03/2025", None),
        ("", None),
    ];
    for (input, expected) in cases {
        assert_eq!(to_connectwise_date(input).as_deref(), expected, "{input}");
    }
}

#[test]
fn mapping_types_round_trip_through_json() {
    let rows = default_rows();
    let json = serde_json::to_string(&rows).expect("serialize");
    assert_eq!(serde_json::from_str::<Vec<MappingRow>>(&json).expect("rows"), rows);
    let l = lookups();
    let json = serde_json::to_string(&l).expect("serialize");
    assert_eq!(serde_json::from_str::<Lookups>(&json).expect("lookups"), l);
}

#[test]
fn a_new_integration_starts_with_every_list_left_to_connectwise() {
    let rows = new_integration_rows();
    assert!(validate(&rows, None).is_empty(), "{:?}", validate(&rows, None));
    let ticket = build_ticket(&rows, &Compromise::sample(), 7, "dwid:x").expect("ticket");
    for key in ["board", "status", "priority", "type", "subType", "item", "source"] {
        assert!(rows.iter().any(|r| r.field == key), "{key} row");
        assert!(!ticket.fields.contains_key(key), "an empty {key} is not sent");
    }
    // Once chosen, a list is sent as its id.
    let mut rows = rows;
    rows.iter_mut().find(|r| r.field == "priority").expect("row").value = "3".into();
    let ticket = build_ticket(&rows, &Compromise::sample(), 7, "dwid:x").expect("ticket");
    assert_eq!(ticket.fields["priority"], serde_json::json!(3));
}
