//! `POST service/tickets` as Manage validates it: Json.NET's conversion errors first (unknown members, a reference
//! sent as a scalar, a wrong type: code `ConnectWiseApi`), then the object's validation (`InvalidObject` with one
//! entry per field: required fields, maximum lengths, references that do not exist or do not belong to the board).

use serde_json::{Map, Value, json};

use super::data::{Board, DEFAULT_PRIORITY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string with an optional maximum length.
    Str(Option<usize>),
    /// A reference (`{id}`, `{name}` or `{identifier}`) ConnectWise resolves.
    Reference(&'static str),
    /// A reference the sandbox accepts as given (contact, site, team...).
    OtherReference(&'static str),
    Bool,
    Date,
    Number,
    /// Accepted and ignored (`id`, `_info`).
    ReadOnly,
}

/// The members of a ticket this sandbox knows, with Manage's casing.
const MEMBERS: &[(&str, Kind)] = &[
    ("id", Kind::ReadOnly),
    ("_info", Kind::ReadOnly),
    ("summary", Kind::Str(Some(100))),
    ("recordType", Kind::Str(None)),
    ("company", Kind::Reference("CompanyReference")),
    ("board", Kind::Reference("BoardReference")),
    ("status", Kind::Reference("ServiceStatusReference")),
    ("priority", Kind::Reference("PriorityReference")),
    ("type", Kind::Reference("ServiceTypeReference")),
    ("subType", Kind::Reference("ServiceSubTypeReference")),
    ("item", Kind::Reference("ServiceItemReference")),
    ("source", Kind::Reference("ServiceSourceReference")),
    ("contact", Kind::OtherReference("ContactReference")),
    ("site", Kind::OtherReference("SiteReference")),
    ("team", Kind::OtherReference("ServiceTeamReference")),
    ("location", Kind::OtherReference("ServiceLocationReference")),
    ("department", Kind::OtherReference("SystemDepartmentReference")),
    ("severity", Kind::Str(None)),
    ("impact", Kind::Str(None)),
    ("initialDescription", Kind::Str(None)),
    ("initialInternalAnalysis", Kind::Str(None)),
    ("initialResolution", Kind::Str(None)),
    ("externalXRef", Kind::Str(Some(100))),
    ("contactName", Kind::Str(Some(62))),
    ("contactEmailAddress", Kind::Str(Some(250))),
    ("contactPhoneNumber", Kind::Str(Some(20))),
    ("contactPhoneExtension", Kind::Str(Some(15))),
    ("contactEmailLookup", Kind::Str(None)),
    ("addressLine1", Kind::Str(Some(50))),
    ("addressLine2", Kind::Str(Some(50))),
    ("city", Kind::Str(Some(50))),
    ("stateIdentifier", Kind::Str(Some(50))),
    ("zip", Kind::Str(Some(12))),
    ("siteName", Kind::Str(Some(50))),
    ("poNumber", Kind::Str(Some(50))),
    ("automaticEmailCc", Kind::Str(Some(1000))),
    ("automaticEmailCcFlag", Kind::Bool),
    ("automaticEmailContactFlag", Kind::Bool),
    ("automaticEmailResourceFlag", Kind::Bool),
    ("allowAllClientsPortalView", Kind::Bool),
    ("customerUpdatedFlag", Kind::Bool),
    ("skipCallback", Kind::Bool),
    ("closedFlag", Kind::Bool),
    ("approved", Kind::Bool),
    ("requiredDate", Kind::Date),
    ("estimatedStartDate", Kind::Date),
    ("dateResponded", Kind::Date),
    ("dateResolved", Kind::Date),
    ("dateResplan", Kind::Date),
    ("subDateAccepted", Kind::Date),
    ("budgetHours", Kind::Number),
    ("resources", Kind::Str(None)),
];

/// Only on a POST: stored and shown by the sandbox, never returned by the API.
pub const POST_ONLY: &[&str] = &["initialDescription", "initialInternalAnalysis", "initialResolution"];

/// A refusal: the HTTP status is always 400; the body is Manage's.
#[derive(Debug)]
pub struct Refusal(pub Value);

fn conversion(message: String) -> Refusal {
    Refusal(json!({ "code": "ConnectWiseApi", "message": message, "errors": null }))
}

fn field_error(code: &str, field: &str, message: String) -> Value {
    json!({ "code": code, "message": message, "resource": "ticket", "field": field })
}

/// What a ticket refers to: the sandbox's companies, boards, priorities and sources.
pub struct Catalog<'a> {
    pub companies: &'a [Value],
    pub boards: &'a [Board],
    pub priorities: &'a [Value],
    pub sources: &'a [Value],
}

/// Validates a POST body and builds the stored ticket (POST-only members included; [`api_view`] removes them).
pub fn create(body: &[u8], catalog: &Catalog<'_>, id: i64, now: &str) -> Result<Value, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        conversion(format!(
            "Unexpected character encountered while parsing value. Path '', line {}, position {}.",
            err.line(),
            err.column()
        ))
    })?;
    let Value::Object(input) = value else {
        return Err(conversion(format!(
            "Cannot deserialize the current JSON value {} into type 'Ticket'. Path '', line 1, position 1.",
            short(&value)
        )));
    };
    // Json.NET matches member names without case; normalise to Manage's casing.
    let mut ticket = Map::new();
    for (key, value) in input {
        let Some((name, kind)) = MEMBERS.iter().find(|(name, _)| name.eq_ignore_ascii_case(&key)) else {
            return Err(conversion(format!(
                "Could not find member '{key}' on object of type 'Ticket'. Path '{key}', line 1, position 1."
            )));
        };
        check_type(name, *kind, &value)?;
        if !value.is_null() && *kind != Kind::ReadOnly {
            ticket.insert((*name).to_string(), value);
        }
    }

    let mut errors = Vec::new();
    let text = |name: &str| ticket.get(name).map(as_text);
    if text("summary").is_none_or(|s| s.trim().is_empty()) {
        errors.push(field_error("MissingRequiredField", "summary", "summary is required.".into()));
    }
    if !ticket.contains_key("company") {
        errors.push(field_error("MissingRequiredField", "company", "company is required.".into()));
    }
    for (name, kind) in MEMBERS {
        if let (Kind::Str(Some(max)), Some(value)) = (kind, text(name))
            && value.chars().count() > *max
        {
            errors.push(field_error(
                "InvalidField",
                name,
                format!("The field {name} must be a string with a maximum length of {max}."),
            ));
        }
    }

    // References.
    let company = ticket
        .get("company")
        .and_then(|r| resolve(r, catalog.companies, &["id", "identifier", "name"], "company", "Company", &mut errors));
    let board = match ticket.get("board") {
        None => catalog.boards.first(),
        Some(r) => {
            let values: Vec<Value> = catalog.boards.iter().map(Board::json).collect();
            resolve(r, &values, &["id", "name"], "board", "Board", &mut errors)
                .and_then(|b| catalog.boards.iter().find(|x| Some(x.id) == b["id"].as_i64()))
        }
    };
    let mut resolved: Map<String, Value> = Map::new();
    if let Some(board) = board {
        for (member, kind, label) in [
            ("status", "statuses", "Status"),
            ("type", "types", "Type"),
            ("subType", "subtypes", "SubType"),
            ("item", "items", "Item"),
        ] {
            let children = board.children(kind).unwrap_or_default();
            let found = match ticket.get(member) {
                Some(r) => {
                    let found = resolve(r, &children, &["id", "name"], member, label, &mut errors);
                    if found.is_none()
                        && let Some(last) = errors.last_mut()
                    {
                        last["message"] = json!(format!("{label} not found on board '{}'.", board.name));
                    }
                    found
                }
                None if member == "status" => children.first().cloned(),
                None => None,
            };
            if let Some(found) = found {
                resolved.insert(member.into(), reference(&found, &["id", "name"]));
            }
        }
        resolved.insert("board".into(), board.reference());
    }
    let priority = match ticket.get("priority") {
        Some(r) => resolve(r, catalog.priorities, &["id", "name"], "priority", "Priority", &mut errors),
        None => catalog.priorities.iter().find(|p| p["id"].as_i64() == Some(DEFAULT_PRIORITY)).cloned(),
    };
    let source = ticket
        .get("source")
        .and_then(|r| resolve(r, catalog.sources, &["id", "name"], "source", "Source", &mut errors));
    if !errors.is_empty() {
        return Err(Refusal(
            json!({ "code": "InvalidObject", "message": "ticket object is invalid", "errors": errors }),
        ));
    }

    let mut stored = Map::new();
    stored.insert("id".into(), json!(id));
    stored.insert("recordType".into(), json!("ServiceTicket"));
    for (key, value) in &ticket {
        stored.insert(key.clone(), value.clone());
    }
    if let Some(company) = company {
        stored.insert("company".into(), reference(&company, &["id", "identifier", "name"]));
    }
    for (key, value) in resolved {
        stored.insert(key, value);
    }
    if let Some(priority) = priority {
        stored.insert("priority".into(), reference(&priority, &["id", "name", "sort"]));
    }
    if let Some(source) = source {
        stored.insert("source".into(), reference(&source, &["id", "name"]));
    }
    stored.insert("closedFlag".into(), json!(false));
    stored.insert(
        "_info".into(),
        json!({ "lastUpdated": now, "updatedBy": "APIMember", "dateEntered": now, "enteredBy": "APIMember" }),
    );
    Ok(Value::Object(stored))
}

/// The ticket as the API returns it (without the POST-only members).
pub fn api_view(stored: &Value) -> Value {
    let mut view = stored.clone();
    if let Some(map) = view.as_object_mut() {
        for key in POST_ONLY {
            map.remove(*key);
        }
    }
    view
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 40 {
        format!("{}...", &text[..text.char_indices().nth(40).map_or(text.len(), |(i, _)| i)])
    } else {
        text
    }
}

fn check_type(name: &str, kind: Kind, value: &Value) -> Result<(), Refusal> {
    if value.is_null() {
        return Ok(());
    }
    let ok = match kind {
        Kind::ReadOnly => true,
        // Json.NET turns numbers and booleans into strings; objects and arrays fail.
        Kind::Str(_) => !value.is_object() && !value.is_array(),
        Kind::Reference(_) | Kind::OtherReference(_) => value.is_object(),
        Kind::Bool => value.is_boolean(),
        Kind::Number => value.is_number(),
        Kind::Date => value.as_str().is_some_and(is_iso_datetime),
    };
    if ok {
        return Ok(());
    }
    let target = match kind {
        Kind::Reference(t) | Kind::OtherReference(t) => t,
        Kind::Bool => "System.Boolean",
        Kind::Number => "System.Double",
        Kind::Date => "System.DateTime",
        _ => "System.String",
    };
    Err(conversion(format!(
        "Error converting value {} to type '{target}'. Path '{name}', line 1, position 1.",
        short(value)
    )))
}

/// `2026-11-27T10:00:00Z`, optionally with fractions or an offset.
fn is_iso_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// Finds the item a reference names (by `id`, then `identifier`, then `name`, without case); records a `NotFound`
/// field error otherwise (field `member/key`).
fn resolve(
    reference: &Value,
    items: &[Value],
    keys: &[&str],
    member: &str,
    label: &str,
    errors: &mut Vec<Value>,
) -> Option<Value> {
    for key in keys {
        let Some(wanted) = reference.get(*key).filter(|v| !v.is_null()) else { continue };
        let found = items.iter().find(|item| match (&item[*key], wanted) {
            (Value::String(a), Value::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
            (a, b) => a == b,
        });
        return match found {
            Some(item) => Some(item.clone()),
            None => {
                errors.push(field_error("NotFound", &format!("{member}/{key}"), format!("{label} not found.")));
                None
            }
        };
    }
    errors.push(field_error("InvalidField", member, format!("{member} must be identified by {}.", keys.join(" or "))));
    None
}

/// A reference as Manage answers it: the named keys plus `_info`.
fn reference(item: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for key in keys {
        if let Some(v) = item.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    if let Some(info) = item.get("_info") {
        out.insert("_info".into(), info.clone());
    }
    Value::Object(out)
}
