//! The ticket built from a mapping and a compromise, in a form every PSA module turns into its own body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::fields::{EXTERNAL_XREF_KEY, field};
use super::rows::{MappingRow, Rendered, RowError, render_field, validate};
use super::template::connectwise_len;
use super::tokens::Compromise;

/// ConnectWise's maximum length of `externalXRef`.
const EXTERNAL_XREF_MAX: usize = 100;

/// A ticket ready to be created in any PSA: the mapped fields, the company and the dedupe key. The system's module
/// turns it into its own body (ConnectWise: references as `{"id": n}`, the key in `externalXRef`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTicket {
    /// The PSA company matched to the compromise's organization.
    pub company_id: i64,
    /// `dwid:<uuid>/<integration id>` (see [`super::external_xref`]): written into the ticket so that an attempt
    /// in doubt finds the ticket it may have created.
    pub dedupe_key: String,
    /// Field key → value: text, long text, emails and dates as strings (rendered, cut to length); list choices as
    /// their id (a JSON number). Only keys of the field catalog; never the company or the dedupe key.
    pub fields: Map<String, Value>,
}

/// Builds the ticket for one compromise.
///
/// - Only properties of the field catalog (the company and the dedupe key travel beside them).
/// - List choices are ids; the Company row's value is ignored: the company is `company_id`.
/// - Strings are rendered, line breaks handled per field kind (flattened to spaces for single-line fields, kept as
///   `\n` in the long texts), and cut to the field's maximum on character boundaries (counted as ConnectWise
///   counts, see [`super::connectwise_len`]), exactly as [`super::preview`] shows.
/// - Values that render empty are left out (ConnectWise then applies its defaults). So are an email field whose
///   value is not an email address for this compromise (e.g. `[compromise]` of a Domain record) and a date field
///   whose token value is not a date: losing one field is better than losing the ticket.
///
/// Errors: the mapping's own errors ([`validate`] without lookups), a Summary that renders empty for this
/// compromise, or an `external_xref` that is empty or longer than ConnectWise's 100 characters (cutting it would
/// break the duplicate-ticket check that looks it up).
pub fn build_ticket(
    rows: &[MappingRow],
    compromise: &Compromise,
    company_id: i64,
    external_xref: &str,
) -> Result<NewTicket, Vec<RowError>> {
    let mut errors = validate(rows, None);
    if external_xref.trim().is_empty() || connectwise_len(external_xref) > EXTERNAL_XREF_MAX {
        errors.push(RowError::new(
            RowError::NO_ROW,
            EXTERNAL_XREF_KEY,
            format!("The external reference must be 1 to {EXTERNAL_XREF_MAX} characters long."),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut ticket = Map::new();
    for (index, row) in rows.iter().enumerate() {
        let Some(def) = field(&row.field) else {
            continue; // unreachable after validate; never send an unknown property
        };
        match render_field(def, &row.value, compromise) {
            Err(message) => errors.push(RowError::new(index, def.key, message)),
            Ok(Rendered::Text { kept, .. }) if !kept.is_empty() => {
                ticket.insert(def.key.to_owned(), Value::String(kept));
            }
            Ok(Rendered::Reference(id)) => {
                ticket.insert(def.key.to_owned(), json!(id));
            }
            Ok(Rendered::Text { .. } | Rendered::Empty | Rendered::Company | Rendered::Omitted { .. }) => {}
        }
    }
    if !ticket.contains_key("summary") {
        let row = rows.iter().position(|r| r.field == "summary").unwrap_or(RowError::NO_ROW);
        errors.push(RowError::new(
            row,
            "summary",
            "The Summary is empty for this compromise; add text or a token that always has a value.",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewTicket { company_id, dedupe_key: external_xref.to_owned(), fields: ticket })
}
