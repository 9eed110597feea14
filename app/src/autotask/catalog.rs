//! The ticket fields a partner can map, read from Autotask's field information: the standard fields the dashboard
//! fills and every ticket user-defined field, with only the *active* picklist values (Autotask keeps retired values
//! in the field information, flagged `isActive: false`, and refuses them on create).
//!
//! A plain structure the neutral ticketing catalog is built from: keys are Autotask's field names (`queueID`) or
//! `udf:<name>` for a user-defined field, exactly the keys [`super::AtSession::create_ticket`] takes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mapping::{Catalog, FieldDef, FieldKind, Reserved};

/// The standard ticket fields offered for mapping, with the label shown to partners.
pub const STANDARD_FIELDS: &[(&str, &str)] = &[
    ("title", "Title"),
    ("description", "Description"),
    ("status", "Status"),
    ("priority", "Priority"),
    ("queueID", "Queue"),
    ("issueType", "Issue type"),
    ("subIssueType", "Sub-issue type"),
    ("ticketType", "Ticket type"),
    ("source", "Source"),
    ("ticketCategory", "Ticket category"),
    ("dueDateTime", "Due date"),
];

/// The prefix of a user-defined field's key.
pub const UDF_PREFIX: &str = "udf:";

/// Strings longer than this are edited as long text.
const LONG_TEXT_FROM: usize = 256;

/// The most user-defined fields offered, and picklist values kept per field. Real sites stay far below both; an
/// answer beyond them (a misbehaving or hostile zone) is cut rather than stored with the integration and sent to the
/// browser whole.
pub const MAX_UDFS: usize = 200;
pub const MAX_PICKLIST_VALUES: usize = 2_000;
/// Picklist values kept over all fields together (what the wizard's lists carry to the browser).
pub const MAX_TOTAL_VALUES: usize = 20_000;
/// Labels and names longer than this are cut (Autotask's own are at most 128).
const MAX_LABEL_CHARS: usize = 200;

fn bounded(text: &str) -> String {
    text.chars().take(MAX_LABEL_CHARS).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AtFieldKind {
    Text,
    LongText,
    Date,
    PickList,
    Number,
}

/// One picklist value (active only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtChoice {
    pub id: i64,
    pub name: String,
    /// The parent field's value this one belongs to (a sub-issue type's issue type).
    pub parent: Option<i64>,
    /// Autotask's default for the field (`isDefaultValue`).
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtField {
    /// `title`, `queueID`, ... or `udf:<name>`.
    pub key: String,
    pub label: String,
    pub kind: AtFieldKind,
    /// Characters, for text.
    pub max_len: Option<usize>,
    /// Autotask refuses a ticket without it. For a user-defined field this is the MSP's own setting: Autotask does
    /// not enforce UDFs that are required in its UI through the API (vendor: REST API "User-defined fields (UDFs)",
    /// Conditions and requirements).
    pub required: bool,
    /// The key of the field whose value filters this one's choices (`issueType` for `subIssueType`).
    pub parent: Option<String>,
    pub choices: Vec<AtChoice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtFieldCatalog {
    pub fields: Vec<AtField>,
}

impl AtFieldCatalog {
    pub fn get(&self, key: &str) -> Option<&AtField> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// One entry of `entityInformation/fields` or `entityInformation/userDefinedFields`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub data_type: Option<String>,
    #[serde(default)]
    pub length: Option<i64>,
    #[serde(default)]
    pub is_required: bool,
    #[serde(default)]
    pub is_pick_list: bool,
    #[serde(default)]
    pub picklist_values: Option<Vec<PicklistValue>>,
    #[serde(default)]
    pub picklist_parent_value_field: Option<String>,
}

/// Autotask sends picklist values and parent values as strings (`"value": "5"`, `"parentValue": ""`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    pub value: Value,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub is_default_value: bool,
    /// Missing means active.
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub parent_value: Option<Value>,
}

fn yes() -> bool {
    true
}

/// `{"fields": [...]}`.
#[derive(Debug, Deserialize)]
pub struct FieldsAnswer {
    pub fields: Vec<FieldInfo>,
}

/// A whole number sent as a number or a string; `None` for anything else (an empty parent value included).
pub fn as_id(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn kind_of(info: &FieldInfo) -> AtFieldKind {
    if info.is_pick_list {
        return AtFieldKind::PickList;
    }
    match info.data_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("datetime" | "date") => AtFieldKind::Date,
        Some("integer" | "long" | "short" | "double" | "decimal" | "float") => AtFieldKind::Number,
        _ if info.length.is_some_and(|l| l >= LONG_TEXT_FROM as i64) => AtFieldKind::LongText,
        _ => AtFieldKind::Text,
    }
}

fn field(key: String, label: String, info: &FieldInfo, required: bool, parent: Option<String>) -> AtField {
    let kind = kind_of(info);
    let max_len = match kind {
        AtFieldKind::Text | AtFieldKind::LongText => {
            info.length.and_then(|l| usize::try_from(l).ok()).filter(|l| *l > 0)
        }
        _ => None,
    };
    let mut seen = std::collections::HashSet::new();
    let choices = info
        .picklist_values
        .iter()
        .flatten()
        .filter(|v| v.is_active)
        // One entry per id: a value listed twice would be offered twice.
        .filter(|v| as_id(&v.value).is_some_and(|id| seen.insert(id)))
        .take(MAX_PICKLIST_VALUES)
        .filter_map(|v| {
            Some(AtChoice {
                id: as_id(&v.value)?,
                name: bounded(&v.label),
                parent: v.parent_value.as_ref().and_then(as_id),
                is_default: v.is_default_value,
            })
        })
        .collect();
    AtField { key, label, kind, max_len, required, parent, choices }
}

/// The catalog from the ticket's field information and its user-defined fields. The dedupe UDF (`dedupe_udf`) is
/// left out: the client writes it itself.
pub fn build_catalog(fields: &[FieldInfo], udfs: &[FieldInfo], dedupe_udf: &str) -> AtFieldCatalog {
    let mut out = Vec::new();
    for (key, label) in STANDARD_FIELDS {
        let Some(info) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(key)) else { continue };
        // The field information marks queueID optional, yet Autotask refuses a ticket with neither a queue nor both
        // a primary resource and role; the dashboard sets no resource, so the queue is required here.
        let required = info.is_required || *key == "queueID";
        // Only another standard field can be a parent (whatever else an answer names is ignored).
        let parent = info
            .picklist_parent_value_field
            .as_deref()
            .and_then(|p| STANDARD_FIELDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(p.trim())))
            .map(|(k, _)| *k)
            .filter(|k| k != key)
            .map(str::to_string)
            .or_else(|| (*key == "subIssueType").then(|| "issueType".to_string()));
        out.push(field((*key).to_string(), (*label).to_string(), info, required, parent));
    }
    let mut seen = std::collections::HashSet::new();
    let offered = udfs
        .iter()
        .filter(|u| !u.name.trim().eq_ignore_ascii_case(dedupe_udf.trim()))
        // A name twice would be two rows for one field.
        .filter(|u| seen.insert(u.name.clone()))
        .filter(|u| !u.name.trim().is_empty() && u.name.chars().count() <= MAX_LABEL_CHARS)
        .take(MAX_UDFS);
    for info in offered {
        let label = info.label.clone().filter(|l| !l.trim().is_empty()).unwrap_or_else(|| info.name.clone());
        out.push(field(format!("{UDF_PREFIX}{}", info.name), bounded(&label), info, info.is_required, None));
    }
    // Over the total, later fields' lists are cut (standard fields come first).
    let mut budget = MAX_TOTAL_VALUES;
    for field in &mut out {
        field.choices.truncate(budget);
        budget -= field.choices.len();
    }
    AtFieldCatalog { fields: out }
}

/// The key of the automatic company row (Autotask's `companyID`).
pub const COMPANY_KEY: &str = "companyID";

/// The longest dedupe key written: a ticket UDF of type Text holds at least this many characters.
const DEDUPE_MAX: usize = 100;

/// What one entry of a standard list is, and the palette's sentence.
fn words(key: &str) -> (&'static str, &'static str) {
    match key {
        "title" => ("", "The ticket's title; required, at most 255 characters (longer text is cut)."),
        "description" => ("", "The ticket's description; line breaks are kept, at most 8,000 characters."),
        "status" => ("a status", "The ticket's status; required."),
        "priority" => ("a priority", "The ticket's priority; required."),
        "queueID" => ("a queue", "The queue the ticket lands in; required, since the dashboard assigns no resource."),
        "issueType" => ("an issue type", "The issue type; Sub-issue type offers the sub-issue types of this one."),
        "subIssueType" => ("a sub-issue type", "A sub-issue type of the chosen issue type."),
        "ticketType" => ("a ticket type", "Service request, incident, problem, …"),
        "source" => ("a source", "How the ticket was received."),
        "ticketCategory" => ("a ticket category", "The ticket category, which sets the ticket's layout."),
        "dueDateTime" => ("", "When the ticket is due: [date_added], [date_found] or a UTC date."),
        _ => ("", ""),
    }
}

/// The mapping's catalog of an account, from its field catalog; `dedupe_udf` names the reserved user-defined field.
pub fn mapping_catalog(fields: &AtFieldCatalog, dedupe_udf: &str) -> Catalog {
    let mut defs = vec![FieldDef {
        key: Cow::Borrowed(COMPANY_KEY),
        label: Cow::Borrowed("Company"),
        kind: FieldKind::Company,
        max_len: None,
        required: true,
        help: Cow::Borrowed("Set automatically to the Autotask company matched to the compromise's organization."),
        noun: Cow::Borrowed(""),
        parent: None,
        custom: false,
    }];
    for field in &fields.fields {
        let custom = field.key.starts_with(UDF_PREFIX);
        let (noun, help) = words(&field.key);
        let kind = match field.kind {
            AtFieldKind::Text => FieldKind::Text,
            AtFieldKind::LongText => FieldKind::LongText,
            AtFieldKind::Date => FieldKind::Date,
            AtFieldKind::PickList => FieldKind::Reference,
            AtFieldKind::Number => FieldKind::Number,
        };
        let help = if custom {
            Cow::Owned(format!("A user-defined ticket field of your Autotask ({}).", kind.label().to_lowercase()))
        } else {
            Cow::Borrowed(help)
        };
        defs.push(FieldDef {
            key: Cow::Owned(field.key.clone()),
            label: Cow::Owned(field.label.clone()),
            kind,
            max_len: field.max_len,
            required: field.required,
            help,
            noun: Cow::Borrowed(noun),
            parent: field.parent.clone().map(Cow::Owned),
            custom,
        });
    }
    let dedupe_udf = dedupe_udf.trim();
    Catalog {
        system: Cow::Borrowed("Autotask"),
        account: Cow::Borrowed("account"),
        title: Cow::Borrowed("title"),
        description: Cow::Borrowed("description"),
        fields: Cow::Owned(defs),
        reserved: Some(Reserved {
            key: Cow::Owned(format!("{UDF_PREFIX}{dedupe_udf}")),
            label: Cow::Owned(format!("\"{dedupe_udf}\" (the field Dark Web ID keeps its reference in)")),
        }),
        dedupe_max: DEDUPE_MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn infos(value: Value) -> Vec<FieldInfo> {
        serde_json::from_value::<FieldsAnswer>(value).expect("fields").fields
    }

    #[test]
    fn active_values_only_with_parents_and_lengths() {
        let fields = infos(json!({"fields": [
            {"name": "title", "dataType": "string", "length": 255, "isRequired": true, "isPickList": false},
            {"name": "description", "dataType": "string", "length": 8000, "isRequired": false},
            {"name": "queueID", "dataType": "integer", "isPickList": true, "picklistValues": [
                {"value": "5", "label": "Client Portal", "isActive": true, "isDefaultValue": true, "parentValue": ""},
                {"value": "6", "label": "Retired Queue", "isActive": false, "parentValue": ""}]},
            {"name": "issueType", "dataType": "integer", "isPickList": true, "picklistValues": [
                {"value": "3", "label": "Security", "isActive": true}]},
            {"name": "subIssueType", "dataType": "integer", "isPickList": true, "picklistParentValueField": "issueType",
             "picklistValues": [
                {"value": "10", "label": "Credential Leak", "isActive": true, "parentValue": "3"},
                {"value": "13", "label": "Retired", "isActive": false, "parentValue": "3"}]},
            {"name": "dueDateTime", "dataType": "datetime"},
            {"name": "companyID", "dataType": "integer", "isRequired": true}
        ]}));
        let udfs = infos(json!({"fields": [
            {"name": "DWID Reference", "dataType": "string", "length": 100},
            {"name": "Customer Tier", "dataType": "string", "isPickList": true, "isRequired": true, "picklistValues": [
                {"value": "1", "label": "Gold", "isActive": true}, {"value": "3", "label": "Bronze", "isActive": false}]}
        ]}));
        let catalog = build_catalog(&fields, &udfs, "dwid reference");
        let keys: Vec<&str> = catalog.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["title", "description", "queueID", "issueType", "subIssueType", "dueDateTime", "udf:Customer Tier"]
        );
        let title = catalog.get("title").expect("title");
        assert_eq!((title.kind, title.max_len, title.required), (AtFieldKind::Text, Some(255), true));
        assert_eq!(catalog.get("description").expect("d").kind, AtFieldKind::LongText);
        let queue = catalog.get("queueID").expect("queue");
        assert!(queue.required, "required in practice");
        assert_eq!(queue.choices, [AtChoice { id: 5, name: "Client Portal".into(), parent: None, is_default: true }]);
        let sub = catalog.get("subIssueType").expect("sub");
        assert_eq!(sub.parent.as_deref(), Some("issueType"));
        assert_eq!(sub.choices.iter().map(|c| (c.id, c.parent)).collect::<Vec<_>>(), [(10, Some(3))]);
        assert_eq!(catalog.get("dueDateTime").expect("due").kind, AtFieldKind::Date);
        let tier = catalog.get("udf:Customer Tier").expect("udf");
        assert_eq!((tier.kind, tier.required, tier.choices.len()), (AtFieldKind::PickList, true, 1));
    }

    #[test]
    fn the_mapping_catalog_marks_required_lists_and_reserves_the_reference_field() {
        use crate::mapping::{Compromise, MappingRow};
        let fields = infos(json!({"fields": [
            {"name": "title", "dataType": "string", "length": 255, "isRequired": true},
            {"name": "description", "dataType": "string", "length": 8000},
            {"name": "queueID", "dataType": "integer", "isPickList": true, "picklistValues": [
                {"value": "5", "label": "Client Portal", "isActive": true}]},
        ]}));
        let udfs = infos(json!({"fields": [
            {"name": "DWID Reference", "dataType": "string", "length": 100},
            {"name": "Risk Score", "dataType": "integer"},
        ]}));
        let catalog = mapping_catalog(&build_catalog(&fields, &udfs, "DWID Reference"), "DWID Reference");
        let row = |f: &str, v: &str| MappingRow::new(f, v);
        let base = vec![row("title", "DWID: [compromise]"), row("companyID", "")];
        let messages = |rows: &[MappingRow]| -> Vec<String> {
            catalog.validate(rows, None).into_iter().map(|e| e.message).collect()
        };
        assert_eq!(messages(&base), ["Add a Queue row: Autotask requires a queue on every ticket."]);
        let mut rows = base.clone();
        rows.push(row("queueID", ""));
        assert_eq!(messages(&rows), ["Choose a queue: Autotask requires one on every ticket."]);
        rows[2].value = "5".into();
        assert!(messages(&rows).is_empty());
        rows.push(row("udf:DWID Reference", "x"));
        assert_eq!(
            messages(&rows),
            [
                "\"DWID Reference\" (the field Dark Web ID keeps its reference in) is set by Dark Web ID on every ticket \
              (to avoid duplicate tickets) and cannot be mapped; remove this row."
            ]
        );
        rows.pop();
        rows.push(row("udf:Risk Score", "high"));
        assert_eq!(messages(&rows), ["Risk Score takes a number, such as 3 or 2.5."]);
        rows.last_mut().expect("row").value = "3".into();
        let ticket = catalog.build_ticket(&rows, &Compromise::sample(), 42, "dwid:x/1").expect("ticket");
        assert_eq!(ticket.fields["udf:Risk Score"], json!("3"));
        assert_eq!(ticket.fields["queueID"], json!(5));
        assert_eq!(catalog.title_of(&ticket), "DWID: jane.doe@acme-corp.example");
        // A new integration starts with the title, description, company and the standard lists.
        let keys: Vec<String> = catalog.new_integration_rows().into_iter().map(|r| r.field).collect();
        assert_eq!(keys, ["title", "description", "companyID", "queueID"]);
    }

    #[test]
    fn an_oversized_answer_is_cut() {
        let values: Vec<Value> =
            (0..5_000).map(|i| json!({"value": i.to_string(), "label": "x".repeat(1_000), "isActive": true})).collect();
        let fields = infos(json!({"fields": [{"name": "queueID", "isPickList": true, "picklistValues": values}]}));
        let udfs: Vec<Value> = (0..1_000).map(|i| json!({"name": format!("UDF {i}"), "dataType": "string"})).collect();
        let udfs = infos(json!({ "fields": udfs }));
        let catalog = build_catalog(&fields, &udfs, "DWID Reference");
        let queue = catalog.get("queueID").expect("queue");
        assert_eq!(queue.choices.len(), MAX_PICKLIST_VALUES);
        assert!(queue.choices.iter().all(|c| c.name.chars().count() == 200));
        assert_eq!(catalog.fields.len(), 1 + MAX_UDFS);
    }
}
