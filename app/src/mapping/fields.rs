//! The catalog of ConnectWise ticket fields a partner can map ("Available ConnectWise Fields").

use serde::{Deserialize, Serialize};

/// How a field's value is written and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldKind {
    /// A single-line string; line breaks are flattened to spaces.
    Text,
    /// A multi-line string without a maximum length; line breaks are kept (as `\n`).
    LongText,
    /// An email address (or, for `automaticEmailCc`, several separated by `;`).
    Email,
    /// An ISO-8601 UTC date and time: a date token or a literal such as `2026-11-27T10:00:00Z`.
    Date,
    /// A setup table entry chosen from the site's lookups; the row value is the id as decimal text, sent as
    /// `{"id": n}`.
    Reference,
    /// The organization's matched ConnectWise company, set automatically; the row value is empty.
    Company,
}

impl FieldKind {
    /// A short name for the palette ("Text", "Date", …).
    pub fn label(self) -> &'static str {
        match self {
            FieldKind::Text => "Text",
            FieldKind::LongText => "Long text",
            FieldKind::Email => "Email",
            FieldKind::Date => "Date",
            FieldKind::Reference => "List",
            FieldKind::Company => "Automatic",
        }
    }

    /// Whether the value is a template with `[token]`s (false for lists and the automatic company).
    pub fn is_template(self) -> bool {
        matches!(self, FieldKind::Text | FieldKind::LongText | FieldKind::Email | FieldKind::Date)
    }
}

/// One ConnectWise ticket field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// The ticket's JSON property, e.g. `"summary"`; also [`super::MappingRow::field`].
    pub key: &'static str,
    /// The wizard's label, e.g. `"Summary"`.
    pub label: &'static str,
    pub kind: FieldKind,
    /// ConnectWise's maximum length, counted as ConnectWise counts (see [`super::connectwise_len`]).
    pub max_len: Option<usize>,
    /// ConnectWise refuses a ticket without it.
    pub required: bool,
    /// One sentence for the palette.
    pub help: &'static str,
    /// For a list (Reference) field: what one entry is, with its article ("a service board"), for messages.
    pub noun: &'static str,
    /// For a list whose entries depend on another field's choice (a board's statuses): that field's key.
    pub parent: Option<&'static str>,
}

const fn def(
    key: &'static str,
    label: &'static str,
    kind: FieldKind,
    max_len: Option<usize>,
    help: &'static str,
) -> FieldDef {
    FieldDef { key, label, kind, max_len, required: false, help, noun: "", parent: None }
}

/// A list field: `noun` names one entry ("a priority"); `parent` is the field whose choice its entries depend on.
const fn list(
    key: &'static str,
    label: &'static str,
    noun: &'static str,
    parent: Option<&'static str>,
    help: &'static str,
) -> FieldDef {
    FieldDef { key, label, kind: FieldKind::Reference, max_len: None, required: false, help, noun, parent }
}

/// The ticket property Dark Web ID reserves: every ticket carries `externalXRef = "dwid:<uuid>/<integration id>"`
/// so a retried delivery finds the ticket it already created instead of making a second one. It is therefore not
/// in [`FIELDS`] and cannot be mapped; a row naming it gets an error that says why.
pub const EXTERNAL_XREF_KEY: &str = "externalXRef";

/// The reserved external reference of the ticket for one compromise and one integration:
/// `dwid:<uuid>/<integration id>`. It names the integration too, so two integrations that send the same
/// compromise to the same ConnectWise company each find their own ticket when they look it up.
pub fn external_xref(uuid: &str, integration_id: i64) -> String {
    format!("dwid:{uuid}/{integration_id}")
}

/// Every mappable field, in palette order.
pub const FIELDS: &[FieldDef] = &[
    FieldDef {
        key: "summary",
        label: "Summary",
        kind: FieldKind::Text,
        max_len: Some(100),
        required: true,
        help: "The ticket's title; required, at most 100 characters (longer text is cut).",
        noun: "",
        parent: None,
    },
    FieldDef {
        key: "company",
        label: "Company",
        kind: FieldKind::Company,
        max_len: None,
        required: true,
        help: "Set automatically to the ConnectWise company matched to the compromise's organization.",
        noun: "",
        parent: None,
    },
    def(
        "initialDescription",
        "Initial Description",
        FieldKind::LongText,
        None,
        "The ticket's first note, visible to the customer; line breaks are kept.",
    ),
    def(
        "initialInternalAnalysis",
        "Initial Internal Analysis",
        FieldKind::LongText,
        None,
        "An internal note only your technicians see.",
    ),
    def("initialResolution", "Initial Resolution", FieldKind::LongText, None, "A first resolution note."),
    list(
        "board",
        "Board",
        "a service board",
        None,
        "The service board the ticket is created on; Status, Type, Sub Type and Item come from this board.",
    ),
    list("status", "Status", "a status", Some("board"), "A status of the chosen board."),
    list("priority", "Priority", "a priority", None, "The ticket priority."),
    list("type", "Type", "a type", Some("board"), "A type of the chosen board."),
    list("subType", "Sub Type", "a sub type", Some("board"), "A sub type of the chosen board."),
    list("item", "Item", "an item", Some("board"), "An item of the chosen board."),
    list("source", "Source", "a service source", None, "How the ticket was received (a service source)."),
    def("contactName", "Contact Name", FieldKind::Text, Some(62), "The contact's name, at most 62 characters."),
    def(
        "contactEmailAddress",
        "Contact Email Address",
        FieldKind::Email,
        Some(250),
        "The contact's email address, at most 250 characters.",
    ),
    def(
        "contactPhoneNumber",
        "Contact Phone Number",
        FieldKind::Text,
        Some(20),
        "The contact's phone number, at most 20 characters.",
    ),
    def(
        "contactPhoneExtension",
        "Contact Phone Extension",
        FieldKind::Text,
        Some(15),
        "The contact's phone extension, at most 15 characters.",
    ),
    def(
        "contactEmailLookup",
        "Contact Email Lookup",
        FieldKind::Email,
        None,
        "An email address ConnectWise uses to find and attach an existing contact.",
    ),
    def("addressLine1", "Address 1", FieldKind::Text, Some(50), "The first address line, at most 50 characters."),
    def("addressLine2", "Address 2", FieldKind::Text, Some(50), "The second address line, at most 50 characters."),
    def("city", "City", FieldKind::Text, Some(50), "The city, at most 50 characters."),
    def("stateIdentifier", "State", FieldKind::Text, Some(50), "The state or province, at most 50 characters."),
    def("zip", "Zip", FieldKind::Text, Some(12), "The zip or postal code, at most 12 characters."),
    def("siteName", "Site Name", FieldKind::Text, Some(50), "The company site's name, at most 50 characters."),
    def("poNumber", "PO Number", FieldKind::Text, Some(50), "A purchase order number, at most 50 characters."),
    def(
        "automaticEmailCc",
        "Automatic Email CC Address",
        FieldKind::Email,
        Some(1000),
        "Addresses copied on ticket emails, separated by semicolons; at most 1000 characters.",
    ),
    def(
        "requiredDate",
        "Required Date",
        FieldKind::Date,
        None,
        "When the work is due: [date_added], [date_found] or a UTC date such as 2026-11-27T10:00:00Z.",
    ),
    def(
        "estimatedStartDate",
        "Estimated Start Date",
        FieldKind::Date,
        None,
        "When work is expected to start: a date token or a UTC date.",
    ),
    def("dateResponded", "Date Responded", FieldKind::Date, None, "When the ticket was responded to."),
    def("dateResolved", "Date Resolved", FieldKind::Date, None, "When the ticket was resolved."),
    def("dateResplan", "Date ResPlan", FieldKind::Date, None, "When the resolution plan was made."),
    def("subDateAccepted", "Sub Date Accepted", FieldKind::Date, None, "When the sub-ticket was accepted."),
    def(
        "resources",
        "Resources",
        FieldKind::Text,
        None,
        "The members assigned to the ticket, as ConnectWise lists them.",
    ),
];

/// The catalog entry for a JSON property (exact, case-sensitive).
pub fn field(key: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.key == key)
}
