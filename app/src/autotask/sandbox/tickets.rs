//! `POST V1.0/Tickets` and `POST V1.0/Tickets/{id}/Notes` as the sandbox validates them. Every refusal is a list of
//! messages, answered as HTTP 500 `{"errors": [...]}` (Autotask reports refusals of the data that way). The
//! messages name the field they are about; their wording is the sandbox's own.
//!
//! Ticket rules: `companyID`, `title`, `status`, `priority` required (the field information's `isRequired`), and a
//! `queueID` unless both `assignedResourceID` and `assignedResourceRoleID` are given; string lengths; picklist
//! values must exist and be active, a sub-issue type must belong to the issue type; dates are ISO 8601; user-defined
//! fields must exist, fit and (picklists) name an active value. Member names match without case; members the
//! sandbox does not know and read-only ones are ignored.

use serde_json::{Map, Value, json};

use crate::autotask::catalog::as_id;

/// What a ticket refers to.
pub struct Catalog<'a> {
    pub companies: &'a [Value],
    pub fields: &'a [Value],
    pub udfs: &'a [Value],
}

/// A date and time: `2026-11-27T10:00:00Z`, optionally with fractions or an offset, or a bare date.
pub fn is_iso_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    date && (b.len() == 10 || (b.len() >= 19 && b[10] == b'T' && digits(11..13) && b[13] == b':' && digits(14..16)))
}

fn active_value(field: &Value, value: i64) -> Result<Option<i64>, String> {
    let name = field["name"].as_str().unwrap_or_default();
    let found =
        field["picklistValues"].as_array().and_then(|values| values.iter().find(|v| as_id(&v["value"]) == Some(value)));
    match found {
        None => Err(format!("Value {value} does not exist for field {name}.")),
        Some(v) if !v["isActive"].as_bool().unwrap_or(true) => {
            Err(format!("Value {value} of field {name} is inactive."))
        }
        Some(v) => Ok(as_id(&v["parentValue"])),
    }
}

/// Validates a ticket and builds the stored one (every user-defined field listed, unset ones `null`).
pub fn create(body: &[u8], catalog: &Catalog<'_>, id: i64, now: &str) -> Result<Value, Vec<String>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| vec![format!("The request body is not valid JSON: {err}")])?;
    let Value::Object(input) = value else { return Err(vec!["The request body must be a ticket object.".into()]) };
    let mut ticket = Map::new();
    let mut udf_input = None;
    for (key, value) in input {
        if key.eq_ignore_ascii_case("userDefinedFields") {
            udf_input = Some(value);
            continue;
        }
        let Some(field) =
            catalog.fields.iter().find(|f| f["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&key)))
        else {
            continue;
        };
        if field["isReadOnly"].as_bool().unwrap_or(false) || value.is_null() {
            continue;
        }
        ticket.insert(field["name"].as_str().unwrap_or_default().to_string(), value);
    }

    let mut errors = Vec::new();
    let present = |name: &str| ticket.get(name).is_some_and(|v| !v.as_str().is_some_and(|s| s.trim().is_empty()));
    for field in catalog.fields.iter().filter(|f| f["isRequired"].as_bool().unwrap_or(false)) {
        let name = field["name"].as_str().unwrap_or_default();
        if !present(name) {
            errors.push(format!("Missing required field: {name} is required."));
        }
    }
    let assigned = present("assignedResourceID") && present("assignedResourceRoleID");
    if !(present("queueID") || assigned) {
        errors
            .push("A ticket needs a queueID, or both an assignedResourceID and an assignedResourceRoleID.".to_string());
    }
    let mut parents: Map<String, Value> = Map::new();
    for (name, value) in &ticket {
        let Some(field) = catalog.fields.iter().find(|f| f["name"] == *name) else { continue };
        let data_type = field["dataType"].as_str().unwrap_or_default();
        if field["isPickList"].as_bool().unwrap_or(false) {
            match as_id(value) {
                None => errors.push(format!("Field {name} must be a picklist value id, not {value}.")),
                Some(id) => match active_value(field, id) {
                    Ok(parent) => {
                        if let Some(parent) = parent {
                            parents.insert(name.clone(), json!(parent));
                        }
                    }
                    Err(message) => errors.push(message),
                },
            }
        } else if data_type == "string" {
            let max = field["length"].as_u64().unwrap_or(0) as usize;
            match value.as_str() {
                None => errors.push(format!("Field {name} must be text.")),
                Some(s) if max > 0 && s.chars().count() > max => {
                    errors.push(format!("Field {name} exceeds the maximum length of {max} characters."));
                }
                Some(_) => {}
            }
        } else if data_type == "datetime" {
            if !value.as_str().is_some_and(is_iso_datetime) {
                errors.push(format!("Field {name} must be a date and time (ISO 8601), not {value}."));
            }
        } else if as_id(value).is_none() {
            errors.push(format!("Field {name} must be a whole number, not {value}."));
        }
    }
    if let (Some(parent), Some(issue)) = (parents.get("subIssueType"), ticket.get("issueType").and_then(as_id))
        && as_id(parent) != Some(issue)
    {
        errors.push(format!(
            "The subIssueType {} does not belong to the issueType {issue}.",
            ticket.get("subIssueType").map(Value::to_string).unwrap_or_default()
        ));
    } else if ticket.contains_key("subIssueType") && !ticket.contains_key("issueType") {
        errors.push("A subIssueType needs its issueType.".into());
    }
    if let Some(company) = ticket.get("companyID").and_then(as_id) {
        match catalog.companies.iter().find(|c| c["id"].as_i64() == Some(company)) {
            None => errors.push(format!("The companyID {company} does not exist.")),
            Some(c) if !c["isActive"].as_bool().unwrap_or(true) => {
                errors.push(format!("The companyID {company} belongs to an inactive company."));
            }
            Some(_) => {}
        }
    }
    let udfs = user_defined_fields(udf_input, catalog.udfs, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut stored = Map::new();
    stored.insert("id".into(), json!(id));
    stored.insert(
        "ticketNumber".into(),
        json!(format!("T{}.{:04}", now.get(0..10).unwrap_or("").replace('-', ""), id % 10_000)),
    );
    stored.insert("createDate".into(), json!(now));
    for (key, value) in ticket {
        stored.insert(key, value);
    }
    stored.insert("userDefinedFields".into(), Value::Array(udfs));
    Ok(Value::Object(stored))
}

/// The user-defined fields of a new ticket, checked: every defined one listed, `null` unless given.
fn user_defined_fields(input: Option<Value>, defs: &[Value], errors: &mut Vec<String>) -> Vec<Value> {
    let mut values: Vec<(String, Value)> =
        defs.iter().map(|d| (d["name"].as_str().unwrap_or_default().to_string(), Value::Null)).collect();
    let items = match input {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push("userDefinedFields must be a list of {name, value}.".into());
            Vec::new()
        }
    };
    for item in items {
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            errors.push("Each of userDefinedFields needs a name.".into());
            continue;
        };
        let Some(def) = defs.iter().find(|d| d["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))) else {
            errors.push(format!("The user-defined field '{name}' does not exist for Tickets."));
            continue;
        };
        let def_name = def["name"].as_str().unwrap_or_default();
        let value = match item.get("value").cloned().unwrap_or(Value::Null) {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                errors.push(format!("The value of the user-defined field '{def_name}' must be text, not {other}."));
                continue;
            }
        };
        if def["isPickList"].as_bool().unwrap_or(false) {
            let active = def["picklistValues"].as_array().is_some_and(|vs| {
                vs.iter().any(|v| v["value"].as_str() == Some(value.trim()) && v["isActive"].as_bool().unwrap_or(true))
            });
            if !active {
                errors.push(format!(
                    "Value {value} of the user-defined field '{def_name}' is not an active picklist value."
                ));
                continue;
            }
        } else if def["dataType"] == "datetime" && !is_iso_datetime(&value) {
            errors.push(format!("The user-defined field '{def_name}' must be a date and time (ISO 8601)."));
            continue;
        } else if let Some(max) = def["length"].as_u64().filter(|m| *m > 0)
            && value.chars().count() as u64 > max
        {
            errors.push(format!("The user-defined field '{def_name}' exceeds the maximum length of {max} characters."));
            continue;
        }
        if let Some(slot) = values.iter_mut().find(|(n, _)| n == def_name) {
            slot.1 = Value::String(value);
        }
    }
    values.into_iter().map(|(name, value)| json!({ "name": name, "value": value })).collect()
}

/// The ticket as the API returns it: without `userDefinedFields` when none has a value (vendor: REST API
/// "User-defined fields (UDFs)", Considerations).
pub fn api_view(stored: &Value) -> Value {
    let mut view = stored.clone();
    let empty = view["userDefinedFields"].as_array().is_some_and(|u| u.iter().all(|f| f["value"].is_null()));
    if empty && let Some(map) = view.as_object_mut() {
        map.remove("userDefinedFields");
    }
    view
}

/// Validates a ticket note and builds the stored one.
pub fn create_note(
    body: &[u8],
    ticket_id: i64,
    note_types: &[Value],
    publish: &[i64],
    id: i64,
    now: &str,
) -> Result<Value, Vec<String>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| vec![format!("The request body is not valid JSON: {err}")])?;
    let Value::Object(input) = value else { return Err(vec!["The request body must be a note object.".into()]) };
    let get = |name: &str| input.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut errors = Vec::new();
    let text = |name: &str, max: usize, errors: &mut Vec<String>| -> String {
        match get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                if s.chars().count() > max {
                    errors.push(format!("Field {name} exceeds the maximum length of {max} characters."));
                }
                s
            }
            _ => {
                errors.push(format!("Missing required field: {name} is required."));
                String::new()
            }
        }
    };
    // Titles are required when the ticket category says so (vendor: TicketNotes entity); the sandbox always does.
    let title = text("title", 250, &mut errors);
    let description = text("description", 32_000, &mut errors);
    let note_type = get("noteType").as_ref().and_then(as_id);
    match note_type {
        None => errors.push("Missing required field: noteType is required.".into()),
        Some(t) => {
            let found = note_types.iter().find(|v| as_id(&v["value"]) == Some(t));
            match found {
                None => errors.push(format!("Value {t} does not exist for field noteType.")),
                Some(v) if !v["isActive"].as_bool().unwrap_or(true) => {
                    errors.push(format!("Value {t} of field noteType is inactive."));
                }
                Some(_) => {}
            }
        }
    }
    let published = get("publish").as_ref().and_then(as_id);
    match published {
        None => errors.push("Missing required field: publish is required.".into()),
        Some(p) if !publish.contains(&p) => errors.push(format!("Value {p} does not exist for field publish.")),
        Some(_) => {}
    }
    if let Some(given) = get("ticketID").as_ref().and_then(as_id)
        && given != ticket_id
    {
        errors.push(format!("The ticketID {given} does not match the ticket {ticket_id} in the address."));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(json!({
        "id": id,
        "ticketID": ticket_id,
        "title": title,
        "description": description,
        "noteType": note_type,
        "publish": published,
        "createDateTime": now,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autotask::sandbox::data;

    fn catalog_parts() -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        (data::companies(), data::ticket_fields(), data::ticket_udfs("DWID Reference"))
    }

    fn try_create(body: Value) -> Result<Value, Vec<String>> {
        let (companies, fields, udfs) = catalog_parts();
        let catalog = Catalog { companies: &companies, fields: &fields, udfs: &udfs };
        create(body.to_string().as_bytes(), &catalog, 1, "2026-11-27T10:00:00Z")
    }

    #[test]
    fn a_valid_ticket_is_stored_with_every_udf() {
        let ticket = try_create(json!({
            "companyID": 1, "Title": "Leak", "status": 1, "priority": 2, "queueID": 29682833,
            "issueType": 3, "subIssueType": 10, "dueDateTime": "2026-11-28T10:00:00Z", "colour": "red",
            "userDefinedFields": [{"name": "dwid reference", "value": "dwid:1"}, {"name": "Customer Tier", "value": 1}],
        }))
        .expect("valid");
        assert_eq!(ticket["title"], "Leak");
        assert!(ticket.get("colour").is_none());
        assert_eq!(ticket["userDefinedFields"][0], json!({"name": "DWID Reference", "value": "dwid:1"}));
        assert_eq!(ticket["userDefinedFields"][1], json!({"name": "Customer Tier", "value": "1"}));
        assert_eq!(ticket["userDefinedFields"][2]["value"], Value::Null);
    }

    #[test]
    fn refusals_name_their_field() {
        let errors = try_create(json!({"description": "x"})).expect_err("refused");
        for needle in
            ["companyID is required", "title is required", "status is required", "priority is required", "queueID"]
        {
            assert!(errors.iter().any(|e| e.contains(needle)), "{needle}: {errors:?}");
        }
        let errors = try_create(json!({
            "companyID": 1, "title": "x".repeat(256), "status": 13, "priority": 99, "queueID": 29682799,
            "issueType": 4, "subIssueType": 10, "dueDateTime": "tomorrow",
            "userDefinedFields": [{"name": "Customer Tier", "value": "3"}, {"name": "Nope", "value": "x"}],
        }))
        .expect_err("refused");
        for needle in [
            "title exceeds the maximum length of 255",
            "Value 13 of field status is inactive",
            "Value 99 does not exist for field priority",
            "Value 29682799 of field queueID is inactive",
            "subIssueType 10 does not belong to the issueType 4",
            "dueDateTime must be a date",
            "'Customer Tier' is not an active picklist value",
            "'Nope' does not exist",
        ] {
            assert!(errors.iter().any(|e| e.contains(needle)), "{needle}: {errors:?}");
        }
        let inactive = try_create(json!({"companyID": 7, "title": "x", "status": 1, "priority": 2, "queueID": 5}));
        assert!(inactive.expect_err("inactive company")[0].contains("inactive company"));
    }

    #[test]
    fn notes_need_a_title_and_valid_picklists() {
        let types = data::note_types();
        let ok = create_note(
            br#"{"title":"t","description":"d","noteType":1,"publish":1}"#,
            5,
            &types,
            data::PUBLISH_VALUES,
            9,
            "now",
        );
        assert_eq!(ok.expect("valid")["ticketID"], 5);
        let errors = create_note(
            br#"{"description":"d","noteType":4,"publish":7,"ticketID":6}"#,
            5,
            &types,
            data::PUBLISH_VALUES,
            9,
            "now",
        )
        .expect_err("refused");
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
