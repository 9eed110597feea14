//! The ticket built from a mapping and a compromise, in a form every PSA module turns into its own body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::catalog::Catalog;
use super::rows::{MappingRow, Rendered, RowError, render_field};
use super::template::connectwise_len;
use super::tokens::Compromise;

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

impl Catalog {
    /// Builds the ticket for one compromise.
    ///
    /// - Only fields of the catalog (the company and the dedupe key travel beside them).
    /// - List choices are ids; the Company row's value is ignored: the company is `company_id`.
    /// - Strings are rendered, line breaks handled per field kind (flattened to spaces for single-line fields,
    ///   kept as `\n` in the long texts), and cut to the field's maximum on character boundaries (counted as SQL
    ///   Server counts, see [`super::connectwise_len`]), exactly as [`Catalog::preview`] shows.
    /// - Values that render empty are left out (the PSA then applies its defaults). So are an email field whose
    ///   value is not an email address for this compromise (e.g. `[compromise]` of a Domain record), a date or
    ///   number field whose value is not one: losing one field is better than losing the ticket.
    ///
    /// Errors: the mapping's own errors ([`Catalog::validate`] without lookups), a title that renders empty for
    /// this compromise, or a `dedupe_key` that is empty or longer than the system keeps (cutting it would break
    /// the duplicate-ticket check that looks it up).
    pub fn build_ticket(
        &self,
        rows: &[MappingRow],
        compromise: &Compromise,
        company_id: i64,
        dedupe_key: &str,
    ) -> Result<NewTicket, Vec<RowError>> {
        let mut errors = self.validate(rows, None);
        if dedupe_key.trim().is_empty() || connectwise_len(dedupe_key) > self.dedupe_max {
            let key = self.reserved.as_ref().map_or("dedupe key", |r| &*r.key);
            errors.push(RowError::new(
                RowError::NO_ROW,
                key,
                format!("The ticket's Dark Web ID reference must be 1 to {} characters long.", self.dedupe_max),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut ticket = Map::new();
        for (index, row) in rows.iter().enumerate() {
            let Some(def) = self.field(&row.field) else {
                continue; // unreachable after validate; never send an unknown property
            };
            match render_field(def, &row.value, compromise) {
                Err(message) => errors.push(RowError::new(index, &def.key, message)),
                Ok(Rendered::Text { kept, .. }) if !kept.is_empty() => {
                    ticket.insert(def.key.to_string(), Value::String(kept));
                }
                Ok(Rendered::Reference(id)) => {
                    ticket.insert(def.key.to_string(), json!(id));
                }
                Ok(Rendered::Text { .. } | Rendered::Empty | Rendered::Company | Rendered::Omitted { .. }) => {}
            }
        }
        if !ticket.contains_key(&*self.title) {
            let row = rows.iter().position(|r| r.field == self.title).unwrap_or(RowError::NO_ROW);
            errors.push(RowError::new(
                row,
                &self.title,
                format!(
                    "The {} is empty for this compromise; add text or a token that always has a value.",
                    self.title_label()
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewTicket { company_id, dedupe_key: dedupe_key.to_owned(), fields: ticket })
    }

    /// The ticket's title as built (for messages such as the test ticket's).
    pub fn title_of<'t>(&self, ticket: &'t NewTicket) -> &'t str {
        ticket.fields.get(&*self.title).and_then(Value::as_str).unwrap_or_default()
    }
}
