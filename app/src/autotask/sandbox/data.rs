//! The sandbox's seed data: companies (the MSP's own as id 0, as in Autotask; the demo organizations with near
//! misses in case and trailing spaces, names with `&`, inactive ones; enough others for three pages of 500), and the
//! ticket's field information and user-defined fields in the shape of `entityInformation/fields` (picklist values
//! as strings, retired values kept with `isActive: false`, sub-issue types carrying their issue type).

use serde_json::{Value, json};

/// The MSP's own company (id 0).
pub const OWNER_COMPANY: &str = "DWID Demo MSP";

/// Companies with their active flag, in id order from 1. Near misses sit beside the exact names: SQL Server's
/// comparison finds all of them for `eq`, only our code tells them apart.
pub const DEMO_COMPANIES: &[(&str, bool)] = &[
    ("Acme Corporation", true),
    ("ACME CORPORATION", true),
    ("Acme Corporation ", true),
    ("Globex, Inc.", true),
    ("Initech", true),
    ("Initech Holdings", true),
    ("Stark Industries", false),
    ("Stark Industries", true),
    ("Smith & Jones Dental", true),
    ("AT&T Authorized Retailer #12", true),
    ("Umbrella Health", true),
    ("Wayne Enterprises", true),
    ("Cyberdyne Systems", false),
];

/// Generated companies beyond the demo ones: with them over 1,200, so three pages of 500.
pub const GENERATED_COMPANIES: usize = 1250;

const FIRST: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Adventure",
    "Blue Yonder",
    "Coho",
    "Litware",
    "Lucerne",
    "Proseware",
    "Southridge",
    "Trey",
    "Wide World",
    "Woodgrove",
    "Alpine",
    "Fourth Coffee",
    "Humongous",
    "Relecloud",
    "Wingtip",
    "Datum",
    "Bellows",
    "Lamna",
    "Olympia",
    "Pinecrest",
    "Riverbend",
];
const SECOND: &[&str] = &[
    "Traders",
    "Logistics",
    "Dental",
    "Law",
    "Accounting",
    "Manufacturing",
    "Realty",
    "Insurance",
    "Clinic",
    "Engineering",
    "Foods",
    "Motors",
    "Media",
    "Outfitters",
    "Pharmacy",
    "Energy",
    "Architects",
    "Hotels",
    "Construction",
    "Consulting",
    "Labs",
    "Schools",
    "Credit Union",
    "Veterinary",
    "Bakery",
];
const THIRD: &[&str] = &["LLC", "Inc.", "Group", "Partners", "Ltd", "& Co."];

/// Every company, ids from 0 (the owner), in id order.
pub fn companies() -> Vec<Value> {
    let mut rows = vec![company(0, OWNER_COMPANY, true, 1)];
    for (i, (name, active)) in DEMO_COMPANIES.iter().enumerate() {
        rows.push(company(i as i64 + 1, name, *active, 1));
    }
    let first_generated = rows.len() as i64;
    for i in 0..GENERATED_COMPANIES {
        let name = format!(
            "{} {} {}",
            FIRST[i % FIRST.len()],
            SECOND[(i / FIRST.len()) % SECOND.len()],
            THIRD[(i / (FIRST.len() * SECOND.len())) % THIRD.len()]
        );
        rows.push(company(first_generated + i as i64, &name, true, 1));
    }
    rows
}

fn company(id: i64, name: &str, active: bool, company_type: i64) -> Value {
    json!({
        "id": id,
        "companyName": name,
        "isActive": active,
        "companyType": company_type,
        "phone": format!("555-{:04}", id % 10_000),
        "createDate": "2024-03-01T00:00:00Z",
    })
}

/// A picklist value as Autotask lists it.
fn pick(value: i64, label: &str, active: bool, default: bool, parent: Option<i64>) -> Value {
    json!({
        "value": value.to_string(),
        "label": label,
        "isDefaultValue": default,
        "sortOrder": 0,
        "parentValue": parent.map(|p| p.to_string()).unwrap_or_default(),
        "isActive": active,
        "isSystem": false,
    })
}

fn field(name: &str, data_type: &str, length: i64, required: bool, read_only: bool) -> Value {
    json!({
        "name": name,
        "dataType": data_type,
        "length": length,
        "isRequired": required,
        "isReadOnly": read_only,
        "isQueryable": true,
        "isReference": false,
        "referenceEntityType": "",
        "isPickList": false,
        "picklistValues": null,
        "picklistParentValueField": "",
        "isSupportedWebhookField": false,
    })
}

fn picklist(name: &str, required: bool, values: Vec<Value>, parent_field: &str) -> Value {
    let mut f = field(name, "integer", 0, required, false);
    f["isPickList"] = json!(true);
    f["picklistValues"] = Value::Array(values);
    f["picklistParentValueField"] = json!(parent_field);
    f
}

fn reference(name: &str, entity: &str, required: bool) -> Value {
    let mut f = field(name, "integer", 0, required, false);
    f["isReference"] = json!(true);
    f["referenceEntityType"] = json!(entity);
    f
}

/// `Tickets/entityInformation/fields`.
pub fn ticket_fields() -> Vec<Value> {
    vec![
        field("id", "long", 0, false, true),
        field("ticketNumber", "string", 50, false, true),
        field("createDate", "datetime", 0, false, true),
        reference("companyID", "Company", true),
        reference("contactID", "Contact", false),
        reference("assignedResourceID", "Resource", false),
        reference("assignedResourceRoleID", "Role", false),
        field("title", "string", 255, true, false),
        field("description", "string", 8000, false, false),
        picklist(
            "status",
            true,
            vec![
                pick(1, "New", true, true, None),
                pick(5, "Complete", true, false, None),
                pick(7, "Waiting Customer", true, false, None),
                pick(8, "In Progress", true, false, None),
                pick(13, "Escalated (retired)", false, false, None),
            ],
            "",
        ),
        picklist(
            "priority",
            true,
            vec![
                pick(4, "Critical", true, false, None),
                pick(1, "High", true, false, None),
                pick(2, "Medium", true, true, None),
                pick(3, "Low", true, false, None),
                pick(5, "Planning (retired)", false, false, None),
            ],
            "",
        ),
        picklist(
            "queueID",
            false,
            vec![
                pick(5, "Client Portal", true, false, None),
                pick(6, "Post Sale", true, false, None),
                pick(8, "Monitoring Alert", true, false, None),
                pick(29682833, "Security Operations", true, false, None),
                pick(29682834, "Level I Support", true, false, None),
                pick(29682799, "Old Helpdesk", false, false, None),
            ],
            "",
        ),
        picklist(
            "issueType",
            false,
            vec![
                pick(3, "Security", true, false, None),
                pick(4, "Network", true, false, None),
                pick(5, "Hardware", true, false, None),
                pick(9, "Legacy Issue", false, false, None),
            ],
            "",
        ),
        picklist(
            "subIssueType",
            false,
            vec![
                pick(10, "Credential Leak", true, false, Some(3)),
                pick(11, "Phishing", true, false, Some(3)),
                pick(12, "Malware", true, false, Some(3)),
                pick(13, "Retired Sub-issue", false, false, Some(3)),
                pick(20, "Outage", true, false, Some(4)),
                pick(21, "Slow Network", true, false, Some(4)),
                pick(30, "Laptop", true, false, Some(5)),
            ],
            "issueType",
        ),
        picklist(
            "ticketType",
            false,
            vec![
                pick(1, "Service Request", true, true, None),
                pick(2, "Incident", true, false, None),
                pick(3, "Problem", true, false, None),
                pick(4, "Change Request", true, false, None),
                pick(5, "Alert", true, false, None),
            ],
            "",
        ),
        picklist(
            "source",
            false,
            vec![
                pick(-1, "Client Portal", true, false, None),
                pick(2, "Phone", true, false, None),
                pick(3, "Fax", false, false, None),
                pick(4, "Email", true, false, None),
                pick(6, "Monitoring Alert", true, false, None),
                pick(15, "Dark Web ID", true, false, None),
            ],
            "",
        ),
        picklist(
            "ticketCategory",
            false,
            vec![
                pick(2, "Standard", true, true, None),
                pick(3, "AEM Alert", true, false, None),
                pick(4, "RMA", false, false, None),
                pick(100, "Dark Web ID", true, false, None),
            ],
            "",
        ),
        field("dueDateTime", "datetime", 0, false, false),
    ]
}

/// `Tickets/entityInformation/userDefinedFields`: the dedupe field and a few a partner may map.
pub fn ticket_udfs(dedupe_udf: &str) -> Vec<Value> {
    let mut tier = field("Customer Tier", "string", 100, false, false);
    tier["isPickList"] = json!(true);
    tier["picklistValues"] = json!([
        pick(1, "Gold", true, false, None),
        pick(2, "Silver", true, false, None),
        pick(3, "Bronze", false, false, None),
    ]);
    vec![
        field(dedupe_udf, "string", 100, false, false),
        tier,
        field("Breach Date", "datetime", 0, false, false),
        field("Security Notes", "string", 8000, false, false),
    ]
}

/// `Tickets/{id}/Notes/entityInformation/fields`, as far as the sandbox validates notes.
pub fn note_types() -> Vec<Value> {
    vec![
        pick(1, "Task Summary", true, true, None),
        pick(2, "Task Detail", true, false, None),
        pick(3, "Resolution", true, false, None),
        pick(4, "Retired Note Type", false, false, None),
    ]
}

/// The note `publish` values: 1 is All Autotask Users (vendor: TicketNotes entity); 2 is an internal-only value.
pub const PUBLISH_VALUES: &[i64] = &[1, 2];
