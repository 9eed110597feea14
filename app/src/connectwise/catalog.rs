//! ConnectWise Manage's ticket fields a partner can map ("Available ConnectWise Fields"): a fixed table, from the
//! `service/tickets` schema (`../shared/connectwise-api.md`).

use std::borrow::Cow;

use crate::mapping::{Catalog, FieldDef, FieldKind, Reserved};

/// The ticket property Dark Web ID reserves: every ticket carries `externalXRef = "dwid:<uuid>/<integration id>"`
/// so a retried delivery finds the ticket it already created instead of making a second one. It is therefore not
/// in [`FIELDS`] and cannot be mapped; a row naming it gets an error that says why.
pub const EXTERNAL_XREF_KEY: &str = "externalXRef";

/// ConnectWise's maximum length of `externalXRef`.
const EXTERNAL_XREF_MAX: usize = 100;

/// Every mappable field, in palette order.
pub const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "summary",
        "Summary",
        FieldKind::Text,
        "The ticket's title; required, at most 100 characters (longer text is cut).",
    )
    .max(100)
    .required(),
    FieldDef::new(
        "company",
        "Company",
        FieldKind::Company,
        "Set automatically to the ConnectWise company matched to the compromise's organization.",
    )
    .required(),
    FieldDef::new(
        "initialDescription",
        "Initial Description",
        FieldKind::LongText,
        "The ticket's first note, visible to the customer; line breaks are kept.",
    ),
    FieldDef::new(
        "initialInternalAnalysis",
        "Initial Internal Analysis",
        FieldKind::LongText,
        "An internal note only your technicians see.",
    ),
    FieldDef::new("initialResolution", "Initial Resolution", FieldKind::LongText, "A first resolution note."),
    FieldDef::list(
        "board",
        "Board",
        "a service board",
        None,
        "The service board the ticket is created on; Status, Type, Sub Type and Item come from this board.",
    ),
    FieldDef::list("status", "Status", "a status", Some("board"), "A status of the chosen board."),
    FieldDef::list("priority", "Priority", "a priority", None, "The ticket priority."),
    FieldDef::list("type", "Type", "a type", Some("board"), "A type of the chosen board."),
    FieldDef::list("subType", "Sub Type", "a sub type", Some("board"), "A sub type of the chosen board."),
    FieldDef::list("item", "Item", "an item", Some("board"), "An item of the chosen board."),
    FieldDef::list("source", "Source", "a service source", None, "How the ticket was received (a service source)."),
    FieldDef::new("contactName", "Contact Name", FieldKind::Text, "The contact's name, at most 62 characters.").max(62),
    FieldDef::new(
        "contactEmailAddress",
        "Contact Email Address",
        FieldKind::Email,
        "The contact's email address, at most 250 characters.",
    )
    .max(250),
    FieldDef::new(
        "contactPhoneNumber",
        "Contact Phone Number",
        FieldKind::Text,
        "The contact's phone number, at most 20 characters.",
    )
    .max(20),
    FieldDef::new(
        "contactPhoneExtension",
        "Contact Phone Extension",
        FieldKind::Text,
        "The contact's phone extension, at most 15 characters.",
    )
    .max(15),
    FieldDef::new(
        "contactEmailLookup",
        "Contact Email Lookup",
        FieldKind::Email,
        "An email address ConnectWise uses to find and attach an existing contact.",
    ),
    FieldDef::new("addressLine1", "Address 1", FieldKind::Text, "The first address line, at most 50 characters.")
        .max(50),
    FieldDef::new("addressLine2", "Address 2", FieldKind::Text, "The second address line, at most 50 characters.")
        .max(50),
    FieldDef::new("city", "City", FieldKind::Text, "The city, at most 50 characters.").max(50),
    FieldDef::new("stateIdentifier", "State", FieldKind::Text, "The state or province, at most 50 characters.").max(50),
    FieldDef::new("zip", "Zip", FieldKind::Text, "The zip or postal code, at most 12 characters.").max(12),
    FieldDef::new("siteName", "Site Name", FieldKind::Text, "The company site's name, at most 50 characters.").max(50),
    FieldDef::new("poNumber", "PO Number", FieldKind::Text, "A purchase order number, at most 50 characters.").max(50),
    FieldDef::new(
        "automaticEmailCc",
        "Automatic Email CC Address",
        FieldKind::Email,
        "Addresses copied on ticket emails, separated by semicolons; at most 1000 characters.",
    )
    .max(1000),
    FieldDef::new(
        "requiredDate",
        "Required Date",
        FieldKind::Date,
        "When the work is due: [date_added], [date_found] or a UTC date such as 2026-11-27T10:00:00Z.",
    ),
    FieldDef::new(
        "estimatedStartDate",
        "Estimated Start Date",
        FieldKind::Date,
        "When work is expected to start: a date token or a UTC date.",
    ),
    FieldDef::new("dateResponded", "Date Responded", FieldKind::Date, "When the ticket was responded to."),
    FieldDef::new("dateResolved", "Date Resolved", FieldKind::Date, "When the ticket was resolved."),
    FieldDef::new("dateResplan", "Date ResPlan", FieldKind::Date, "When the resolution plan was made."),
    FieldDef::new("subDateAccepted", "Sub Date Accepted", FieldKind::Date, "When the sub-ticket was accepted."),
    FieldDef::new(
        "resources",
        "Resources",
        FieldKind::Text,
        "The members assigned to the ticket, as ConnectWise lists them.",
    ),
];

/// ConnectWise's catalog for the mapping.
pub fn catalog() -> Catalog {
    Catalog {
        system: Cow::Borrowed("ConnectWise"),
        account: Cow::Borrowed("site"),
        title: Cow::Borrowed("summary"),
        description: Cow::Borrowed("initialDescription"),
        fields: Cow::Borrowed(FIELDS),
        reserved: Some(Reserved { key: Cow::Borrowed(EXTERNAL_XREF_KEY), label: Cow::Borrowed("External Reference") }),
        dedupe_max: EXTERNAL_XREF_MAX,
    }
}

/// The catalog entry for a JSON property (exact, case-sensitive).
pub fn field(key: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.key == key)
}
