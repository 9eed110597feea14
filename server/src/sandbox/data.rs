//! The sandbox's seed data: companies (those of the demo organizations, near misses, and enough others to need
//! several pages even at `pageSize=1000`), two service boards with their own statuses, types, subtypes and items,
//! priorities and sources. Shapes follow ConnectWise Manage's answers (`_info` included).

use serde_json::{Value, json};

/// Companies the demo organizations match (exactly, or as a near miss: "Globex, Inc." is not "Globex Inc").
pub const DEMO_COMPANIES: &[&str] = &[
    "Acme Corporation",
    "Globex, Inc.",
    "Initech",
    "Initech Holdings",
    "Stark Industries",
    "Umbrella Health",
    "Wayne Enterprises",
    "Cyberdyne Systems",
];

/// Generated companies beyond the demo ones: over 2,000, so even `pageSize=1000` takes three pages.
pub const GENERATED_COMPANIES: usize = 2100;

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
    "Margie's",
    "Proseware",
    "Southridge",
    "Trey",
    "Wide World",
    "Woodgrove",
    "Alpine",
    "Fourth Coffee",
    "Graphic",
    "Humongous",
    "Relecloud",
    "Wingtip",
    "Datum",
    "Bellows",
    "Consolidated",
    "Lamna",
    "Nod",
    "Olympia",
    "Pinecrest",
    "Riverbend",
    "Summit",
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
    "Bank",
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
];
const THIRD: &[&str] = &["LLC", "Inc.", "Group", "Partners", "Ltd", "Co."];

pub const OWNER_COMPANY: &str = "DWID Demo MSP";

const UPDATED: &str = "2025-01-15T09:30:00Z";

fn info(href: &str) -> Value {
    json!({ "lastUpdated": UPDATED, "updatedBy": "sandbox", "_href": href })
}

fn identifier(name: &str, id: i64, demo: bool) -> String {
    let clean: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    if demo { clean.chars().take(25).collect() } else { format!("{}{id}", clean.chars().take(18).collect::<String>()) }
}

/// Every company, ids from 1 (the MSP's own company, as on a real site), sorted by id.
pub fn companies() -> Vec<Value> {
    let mut names: Vec<(String, bool)> = vec![(OWNER_COMPANY.to_string(), true)];
    names.extend(DEMO_COMPANIES.iter().map(|n| (n.to_string(), true)));
    for i in 0..GENERATED_COMPANIES {
        let first = FIRST[i % FIRST.len()];
        let second = SECOND[(i / FIRST.len()) % SECOND.len()];
        let third = THIRD[(i / (FIRST.len() * SECOND.len())) % THIRD.len()];
        names.push((format!("{first} {second} {third}"), false));
    }
    names
        .into_iter()
        .enumerate()
        .map(|(index, (name, demo))| {
            let id = index as i64 + 1;
            json!({
                "id": id,
                "identifier": identifier(&name, id, demo),
                "name": name,
                "status": { "id": 1, "name": "Active", "_info": info("company/companies/statuses/1") },
                "types": [{ "id": if id == 1 { 5 } else { 1 }, "name": if id == 1 { "Owner" } else { "Client" } }],
                "phoneNumber": format!("555{:07}", id),
                "website": "",
                "deletedFlag": false,
                "dateAcquired": "2020-03-01T00:00:00Z",
                "_info": info(&format!("company/companies/{id}")),
            })
        })
        .collect()
}

/// A service board and what belongs to it.
#[derive(Debug, Clone)]
pub struct Board {
    pub id: i64,
    pub name: &'static str,
    pub statuses: Vec<(i64, &'static str)>,
    pub types: Vec<(i64, &'static str)>,
    pub subtypes: Vec<(i64, &'static str)>,
    pub items: Vec<(i64, &'static str)>,
}

impl Board {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "location": { "id": 2, "name": "Main" },
            "department": { "id": 10, "identifier": "Services", "name": "Services" },
            "inactiveFlag": false,
            "projectFlag": false,
            "_info": info(&format!("service/boards/{}", self.id)),
        })
    }

    pub fn reference(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "_info": { "board_href": format!("service/boards/{}", self.id) } })
    }

    /// The board's statuses, types, subtypes or items as ConnectWise lists them.
    pub fn children(&self, kind: &str) -> Option<Vec<Value>> {
        let (list, singular) = match kind {
            "statuses" => (&self.statuses, "status"),
            "types" => (&self.types, "type"),
            "subtypes" => (&self.subtypes, "subtype"),
            "items" => (&self.items, "item"),
            _ => return None,
        };
        Some(
            list.iter()
                .enumerate()
                .map(|(sort, (id, name))| {
                    let mut v = json!({
                        "id": id,
                        "name": name,
                        "board": { "id": self.id, "name": self.name },
                        "inactiveFlag": false,
                        "_info": info(&format!("service/boards/{}/{kind}/{id}", self.id)),
                    });
                    if singular == "status" {
                        v["sortOrder"] = json!(sort);
                        v["defaultFlag"] = json!(sort == 0);
                        v["closedStatus"] = json!(name.contains("Closed") || name.contains("Resolved"));
                    }
                    v
                })
                .collect(),
        )
    }
}

pub fn boards() -> Vec<Board> {
    vec![
        Board {
            id: 1,
            name: "Help Desk",
            statuses: vec![(1, "New"), (2, "In Progress"), (3, "Waiting on Client"), (4, "Closed")],
            types: vec![(1, "Incident"), (2, "Service Request"), (3, "Problem")],
            subtypes: vec![(1, "Account Compromise"), (2, "Password Reset"), (3, "Other")],
            items: vec![(1, "Email"), (2, "Workstation"), (3, "Network")],
        },
        Board {
            id: 2,
            name: "Security Operations",
            statuses: vec![(11, "New"), (12, "Triage"), (13, "Contained"), (14, "Resolved")],
            types: vec![(11, "Breach"), (12, "Phishing"), (13, "Malware")],
            subtypes: vec![(11, "Credential Leak"), (12, "Data Exposure")],
            items: vec![(11, "Dark Web ID"), (12, "Endpoint")],
        },
    ]
}

pub const DEFAULT_PRIORITY: i64 = 3;

pub fn priorities() -> Vec<Value> {
    [
        (1, "Priority 1 - Emergency Response", "Red"),
        (2, "Priority 2 - Quick Response", "Orange"),
        (3, "Priority 3 - Normal Response", "Yellow"),
        (4, "Priority 4 - Schedule Maintenance", "Green"),
        (5, "Priority 5 - Next Time", "Blue"),
    ]
    .iter()
    .map(|(id, name, color)| {
        json!({
            "id": id, "name": name, "color": color, "sortOrder": id, "defaultFlag": *id == DEFAULT_PRIORITY,
            "_info": info(&format!("service/priorities/{id}")),
        })
    })
    .collect()
}

pub fn sources() -> Vec<Value> {
    [(1, "Call"), (2, "Email"), (3, "Portal"), (4, "Dark Web ID")]
        .iter()
        .map(|(id, name)| {
            json!({ "id": id, "name": name, "defaultFlag": *id == 1, "_info": info(&format!("service/sources/{id}")) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_names_and_identifiers_are_unique() {
        let companies = companies();
        assert!(companies.len() > 2000);
        let names: std::collections::HashSet<&str> =
            companies.iter().filter_map(|c| c["name"].as_str()).map(str::trim).collect();
        assert_eq!(names.len(), companies.len());
        let ids: std::collections::HashSet<&str> = companies.iter().filter_map(|c| c["identifier"].as_str()).collect();
        assert_eq!(ids.len(), companies.len());
        assert!(names.contains("Globex, Inc.") && !names.contains("Globex Inc"));
    }
}
