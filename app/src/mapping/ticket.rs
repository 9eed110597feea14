//! The `POST service/tickets` body built from a mapping and a compromise.

use serde_json::{Map, Value, json};

use super::fields::{EXTERNAL_XREF_KEY, field};
use super::rows::{MappingRow, Rendered, RowError, render_field, validate};
use super::template::connectwise_len;
use super::tokens::Compromise;

/// ConnectWise's maximum length of `externalXRef`.
const EXTERNAL_XREF_MAX: usize = 100;

/// Builds the ticket JSON for one compromise.
///
/// - Only properties of the field catalog, plus `company`, `externalXRef` and `automaticEmailCcFlag` (set to
///   `true` when `automaticEmailCc` is sent), never anything else.
/// - References are objects `{"id": n}`; `company` is `{"id": company_id}` whatever the Company row says.
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
) -> Result<Map<String, Value>, Vec<RowError>> {
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
                ticket.insert(def.key.to_owned(), json!({ "id": id }));
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
    if ticket.contains_key("automaticEmailCc") {
        ticket.insert("automaticEmailCcFlag".to_owned(), Value::Bool(true));
    }
    ticket.insert("company".to_owned(), json!({ "id": company_id }));
    ticket.insert(EXTERNAL_XREF_KEY.to_owned(), Value::String(external_xref.to_owned()));
    Ok(ticket)
}
