//! Autotask's query filters, as far as the sandbox needs them: items `{"op", "field", "value", "udf"}` and groups
//! `{"op": "and"|"or", "items": [...]}`; a top-level list is an `and`. Operators `eq noteq gt gte lt lte beginsWith
//! endsWith contains exist notExist in notIn` (vendor: "Making basic query calls to the REST API"). Strings compare
//! as on SQL Server: without case, and `eq`/`noteq` ignore trailing spaces.
//!
//! An item with an operator Autotask does not know is ignored, not refused (reported by client authors and listed
//! in the project's Autotask facts): the sandbox does the same, so a misspelt operator in a lookup shows as a lookup
//! that finds everything.

use serde_json::Value;

/// What the filter is evaluated against: a row, the entity's field names, its user-defined field names.
pub struct Target<'a> {
    pub row: &'a Value,
    pub fields: &'a [String],
    pub udfs: &'a [String],
    pub entity: &'a str,
}

/// Whether `row` passes every item of `filter`; an error (Autotask's sentence) for an unknown field.
pub fn matches(filter: &[Value], target: &Target<'_>) -> Result<bool, String> {
    Ok(group(filter, true, target)?.unwrap_or(true))
}

/// `None` when every item was ignored.
fn group(items: &[Value], and: bool, target: &Target<'_>) -> Result<Option<bool>, String> {
    let mut result: Option<bool> = None;
    for item in items {
        let Some(outcome) = evaluate(item, target)? else { continue };
        result = Some(match result {
            None => outcome,
            Some(so_far) if and => so_far && outcome,
            Some(so_far) => so_far || outcome,
        });
    }
    Ok(result)
}

fn evaluate(item: &Value, target: &Target<'_>) -> Result<Option<bool>, String> {
    let op = item.get("op").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    if let Some(items) = item.get("items").and_then(Value::as_array) {
        return match op.as_str() {
            "and" => group(items, true, target),
            "or" => group(items, false, target),
            _ => Ok(None),
        };
    }
    const KNOWN: &[&str] = &[
        "eq",
        "noteq",
        "gt",
        "gte",
        "lt",
        "lte",
        "beginswith",
        "endswith",
        "contains",
        "exist",
        "notexist",
        "in",
        "notin",
    ];
    if !KNOWN.contains(&op.as_str()) {
        return Ok(None);
    }
    let field = item.get("field").and_then(Value::as_str).unwrap_or_default();
    let udf = item.get("udf").and_then(Value::as_bool).unwrap_or(false);
    let actual = if udf {
        if !target.udfs.iter().any(|u| u.eq_ignore_ascii_case(field)) {
            return Err(format!("The user-defined field '{field}' does not exist for {}.", target.entity));
        }
        target
            .row
            .get("userDefinedFields")
            .and_then(Value::as_array)
            .and_then(|udfs| udfs.iter().find(|u| u["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(field))))
            .map(|u| u["value"].clone())
            .unwrap_or(Value::Null)
    } else {
        if !target.fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
            return Err(format!("Unable to find field '{field}' in the {} entity.", target.entity));
        }
        target
            .row
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v.clone()))
            .unwrap_or(Value::Null)
    };
    let expected = item.get("value").cloned().unwrap_or(Value::Null);
    Ok(Some(compare(&op, &actual, &expected)))
}

/// SQL Server's string equality: no case, trailing spaces ignored.
pub fn sql_eq(a: &str, b: &str) -> bool {
    a.trim_end_matches(' ').to_lowercase() == b.trim_end_matches(' ').to_lowercase()
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn equal(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::String(a), _) => text(expected).is_some_and(|b| sql_eq(a, &b)),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(a), Value::String(b)) => b.eq_ignore_ascii_case(&a.to_string()),
        _ => matches!((number(actual), number(expected)), (Some(a), Some(b)) if a == b),
    }
}

fn order(actual: &Value, expected: &Value) -> Option<std::cmp::Ordering> {
    match (actual, expected) {
        (Value::String(a), _) => Some(a.to_lowercase().cmp(&text(expected)?.to_lowercase())),
        _ => number(actual)?.partial_cmp(&number(expected)?),
    }
}

fn compare(op: &str, actual: &Value, expected: &Value) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let lower = |v: &Value| text(v).map(|s| s.to_lowercase());
    match op {
        "eq" => equal(actual, expected),
        "noteq" => !actual.is_null() && !equal(actual, expected),
        "gt" => order(actual, expected) == Some(Greater),
        "gte" => matches!(order(actual, expected), Some(Greater | Equal)),
        "lt" => order(actual, expected) == Some(Less),
        "lte" => matches!(order(actual, expected), Some(Less | Equal)),
        "beginswith" => matches!((lower(actual), lower(expected)), (Some(a), Some(b)) if a.starts_with(&b)),
        "endswith" => matches!((lower(actual), lower(expected)), (Some(a), Some(b)) if a.ends_with(&b)),
        "contains" => matches!((lower(actual), lower(expected)), (Some(a), Some(b)) if a.contains(&b)),
        "exist" => !actual.is_null() && actual.as_str() != Some(""),
        "notexist" => actual.is_null() || actual.as_str() == Some(""),
        "in" => expected.as_array().is_some_and(|list| list.iter().any(|e| equal(actual, e))),
        "notin" => !actual.is_null() && expected.as_array().is_some_and(|list| !list.iter().any(|e| equal(actual, e))),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(filter: Value, row: &Value) -> Result<bool, String> {
        let fields = ["id".to_string(), "companyName".to_string(), "isActive".to_string()];
        let udfs = ["DWID Reference".to_string()];
        let target = Target { row, fields: &fields, udfs: &udfs, entity: "Companies" };
        matches(filter.as_array().expect("list"), &target)
    }

    #[test]
    fn compares_as_sql_server_does() {
        let acme = json!({"id": 7, "companyName": "Acme Corporation", "isActive": true,
            "userDefinedFields": [{"name": "DWID Reference", "value": "dwid:ABC"}]});
        let yes = |f: Value| assert_eq!(check(f.clone(), &acme), Ok(true), "{f}");
        let no = |f: Value| assert_eq!(check(f.clone(), &acme), Ok(false), "{f}");
        yes(json!([{"op": "eq", "field": "companyName", "value": "ACME corporation  "}]));
        no(json!([{"op": "eq", "field": "companyName", "value": " Acme Corporation"}]));
        yes(
            json!([{"op": "eq", "field": "CompanyName", "value": "acme corporation"}, {"op": "eq", "field": "isActive", "value": true}]),
        );
        no(
            json!([{"op": "eq", "field": "companyName", "value": "Acme Corporation"}, {"op": "eq", "field": "isActive", "value": false}]),
        );
        yes(json!([{"op": "beginsWith", "field": "companyName", "value": "acme"}]));
        yes(json!([{"op": "gte", "field": "id", "value": 0}, {"op": "in", "field": "id", "value": [1, 7]}]));
        yes(
            json!([{"op": "or", "items": [{"op": "eq", "field": "id", "value": 1}, {"op": "eq", "field": "id", "value": "7"}]}]),
        );
        yes(json!([{"op": "eq", "field": "DWID Reference", "value": "dwid:abc ", "udf": true}]));
        no(json!([{"op": "eq", "field": "DWID Reference", "value": "dwid:abd", "udf": true}]));
        // A misspelt operator is ignored: the filter lets everything through.
        yes(json!([{"op": "equals", "field": "DWID Reference", "value": "dwid:abd", "udf": true}]));
        assert!(check(json!([{"op": "eq", "field": "nope", "value": 1}]), &acme).is_err());
        assert!(check(json!([{"op": "eq", "field": "Nope", "value": 1, "udf": true}]), &acme).is_err());
    }
}
