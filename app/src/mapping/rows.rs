//! Mapping rows: their live preview, their validation against the catalogs and the site's lookups, and the
//! defaults a new integration starts with.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, FieldDef, FieldKind};
use super::template::{
    Segment, connectwise_len, flatten_lines, is_email, is_literal_utc, normalize_lines, render_segments, scan,
    to_connectwise_date, truncate_for_connectwise,
};
use super::tokens::{Compromise, DATE_TOKENS, OPTIONAL_TOKENS};
use crate::names::with_article;

/// One row of the field mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRow {
    /// A [`FieldDef::key`], e.g. `"summary"`.
    pub field: String,
    /// The template text; for a Reference field the chosen id as decimal text; empty for Company.
    pub value: String,
}

impl MappingRow {
    pub fn new(field: impl Into<String>, value: impl Into<String>) -> Self {
        MappingRow { field: field.into(), value: value.into() }
    }
}

/// A problem on one mapping row, in words a partner can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RowError {
    /// The row's index (0-based) in the rows given, or [`RowError::NO_ROW`] for a problem of the mapping as a whole
    /// (no Summary row, a bad external reference). On the wire [`RowError::NO_ROW`] is `null`: `usize::MAX` of the
    /// 64-bit server would not fit the browser's 32-bit `usize`.
    #[serde(with = "row_index")]
    pub row: usize,
    /// The row's field key (as given, even if unknown).
    pub field: String,
    pub message: String,
}

impl RowError {
    /// The `row` of an error that belongs to no row.
    pub const NO_ROW: usize = usize::MAX;

    pub(crate) fn new(row: usize, field: &str, message: impl Into<String>) -> Self {
        RowError { row, field: field.to_owned(), message: message.into() }
    }

    /// Whether the error belongs to the mapping as a whole rather than to one row.
    pub fn is_form_level(&self) -> bool {
        self.row == Self::NO_ROW
    }
}

/// `RowError::row` as JSON: the index, or `null` for [`RowError::NO_ROW`], the same on every platform.
mod row_index {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::RowError;

    pub fn serialize<S: Serializer>(row: &usize, serializer: S) -> Result<S::Ok, S::Error> {
        match u64::try_from(*row) {
            Ok(index) if *row != RowError::NO_ROW => serializer.serialize_some(&index),
            _ => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?
            .and_then(|index| usize::try_from(index).ok())
            .unwrap_or(RowError::NO_ROW))
    }
}

/// One entry of a PSA list (a board, a status, a priority, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupItem {
    pub id: i64,
    pub name: String,
}

/// The entries the mapping's list fields choose from, as the wizard loaded them from the PSA.
///
/// A list whose entries depend on another field's choice (a ConnectWise board's statuses, an Autotask issue type's
/// sub-issue types; see [`super::FieldDef::parent`]) is kept per parent id, and only for the parents loaded so far:
/// a parent that is not there yet means "not loaded", not "no entries".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookups {
    /// Field key → its entries, for lists that depend on nothing.
    pub lists: BTreeMap<String, Vec<LookupItem>>,
    /// Field key → parent's id → its entries.
    pub dependent: BTreeMap<String, BTreeMap<i64, Vec<LookupItem>>>,
}

impl Lookups {
    /// Whether any list has been loaded.
    pub fn is_loaded(&self) -> bool {
        !self.lists.is_empty()
    }

    /// The entries of a list field; for a dependent one, those of `parent` (empty when it is not loaded).
    pub fn choices(&self, key: &str, parent: Option<i64>) -> &[LookupItem] {
        let found = match parent {
            None => self.lists.get(key),
            Some(parent) => self.dependent.get(key).and_then(|by_parent| by_parent.get(&parent)),
        };
        found.map(Vec::as_slice).unwrap_or_default()
    }

    /// The entries of a dependent list for `parent`, if they have been loaded.
    pub fn loaded_choices(&self, key: &str, parent: i64) -> Option<&[LookupItem]> {
        self.dependent.get(key).and_then(|by_parent| by_parent.get(&parent)).map(Vec::as_slice)
    }

    /// Adds what `newer` loaded: its plain lists replace ours, its dependent lists join ours parent by parent.
    pub fn merge(&mut self, newer: Lookups) {
        for (key, items) in newer.lists {
            self.lists.insert(key, items);
        }
        for (key, by_parent) in newer.dependent {
            self.dependent.entry(key).or_default().extend(by_parent);
        }
    }
}

/// What a row renders to for one compromise, exactly as the ticket would carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The text sent (after line-break handling and truncation); for a Reference the id; for Company a note.
    pub text: String,
    /// The length before truncation, counted as ConnectWise counts ([`super::connectwise_len`]: characters, except
    /// that an emoji outside the Basic Multilingual Plane counts 2). Over `max` when something is cut.
    pub length: usize,
    pub max: Option<usize>,
    /// What is cut off to fit `max`, if anything.
    pub cut: Option<String>,
}

impl Preview {
    /// `"87 / 100"`, or `"87"` for a field without a maximum.
    pub fn counter(&self) -> String {
        match self.max {
            Some(max) => format!("{} / {max}", self.length),
            None => self.length.to_string(),
        }
    }

    /// Whether the value is too long and will be cut.
    pub fn is_cut(&self) -> bool {
        self.cut.is_some()
    }
}

/// How a row's value goes into the ticket. Shared by [`preview`] and [`super::build_ticket`] so that the preview
/// shows exactly what is delivered.
pub(crate) enum Rendered {
    /// Nothing to send (an empty value).
    Empty,
    Text {
        full: String,
        kept: String,
        cut: Option<String>,
    },
    Reference(i64),
    Company,
    /// The value is not acceptable for this compromise; delivery leaves the field out rather than lose the ticket,
    /// the preview shows the reason.
    Omitted {
        reason: String,
    },
}

/// Renders one row's value for a compromise. `Err` is a partner-facing message (a template or id mistake).
pub(crate) fn render_field(def: &FieldDef, value: &str, compromise: &Compromise) -> Result<Rendered, String> {
    match def.kind {
        FieldKind::Company => return Ok(Rendered::Company),
        // No choice: the field is left out and the PSA applies its default.
        FieldKind::Reference if value.trim().is_empty() => return Ok(Rendered::Empty),
        FieldKind::Reference => return parse_id(def, value).map(Rendered::Reference),
        FieldKind::Text | FieldKind::LongText | FieldKind::Email | FieldKind::Date | FieldKind::Number => {}
    }
    let (segments, errors) = scan(value);
    if let Some(error) = errors.into_iter().next() {
        return Err(error.to_string());
    }
    let raw = render_segments(&segments, compromise);
    let mut full = if def.kind == FieldKind::LongText { normalize_lines(&raw) } else { flatten_lines(&raw) };
    if full.is_empty() {
        return Ok(Rendered::Empty);
    }
    if def.kind == FieldKind::Date {
        match to_connectwise_date(&full) {
            Some(date) => full = date,
            None => {
                return Ok(Rendered::Omitted {
                    reason: format!("\"{full}\" is not a date, so {} would be left out of the ticket.", def.label),
                });
            }
        }
    }
    if def.kind == FieldKind::Number && !is_number(&full) {
        return Ok(Rendered::Omitted {
            reason: format!("\"{full}\" is not a number, so {} would be left out of the ticket.", def.label),
        });
    }
    let (kept, cut) = match def.max_len {
        Some(max) => truncate_for_connectwise(&full, max),
        None => (full.clone(), None),
    };
    if def.kind == FieldKind::Email && !email_list_ok(def, &kept) {
        return Ok(Rendered::Omitted {
            reason: format!(
                "With this compromise the value is \"{kept}\", which is not an email address, so {} would be left \
                 out of the ticket.",
                def.label
            ),
        });
    }
    Ok(Rendered::Text { full, kept, cut })
}

fn email_list_ok(def: &FieldDef, value: &str) -> bool {
    if def.key == "automaticEmailCc" {
        let mut parts = value.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()).peekable();
        parts.peek().is_some() && parts.all(is_email)
    } else {
        is_email(value.trim())
    }
}

fn parse_id(def: &FieldDef, value: &str) -> Result<i64, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("Choose a {} from the list.", def.label));
    }
    match value.parse::<i64>() {
        // Any integer: PSAs use zero and negative values too (Autotask's ticket source "Client Portal" is -1).
        Ok(id) => Ok(id),
        _ => Err(format!("Choose a {} from the list: \"{value}\" is not one of the site's entries.", def.label)),
    }
}

/// A sentence's "Autotask's" for the system.
fn possessive(system: &str) -> String {
    format!("{system}'s")
}

impl Catalog {
    /// Renders one row with a compromise (the wizard uses [`Compromise::sample`]). The error's `row` is 0; use
    /// [`Catalog::preview_rows`] for errors that carry their row index.
    pub fn preview(&self, row: &MappingRow, compromise: &Compromise) -> Result<Preview, RowError> {
        let error = |message: String| RowError::new(0, &row.field, message);
        let def = self.field(&row.field).ok_or_else(|| error(self.unknown_field_message(&row.field)))?;
        match render_field(def, &row.value, compromise).map_err(error)? {
            Rendered::Empty => Ok(Preview { text: String::new(), length: 0, max: def.max_len, cut: None }),
            Rendered::Text { full, kept, cut } => {
                Ok(Preview { text: kept, length: connectwise_len(&full), max: def.max_len, cut })
            }
            Rendered::Reference(id) => {
                let text = id.to_string();
                Ok(Preview { length: text.chars().count(), text, max: None, cut: None })
            }
            Rendered::Company => {
                let text = self.company_preview();
                Ok(Preview { length: text.chars().count(), text, max: None, cut: None })
            }
            Rendered::Omitted { reason } => Err(error(reason)),
        }
    }

    /// The preview text of the automatic Company row.
    pub fn company_preview(&self) -> String {
        format!("The {} company matched to the organization", self.system)
    }

    /// [`Catalog::preview`] for every row, errors carrying their row index.
    pub fn preview_rows(&self, rows: &[MappingRow], compromise: &Compromise) -> Vec<Result<Preview, RowError>> {
        rows.iter()
            .enumerate()
            .map(|(index, row)| self.preview(row, compromise).map_err(|e| RowError { row: index, ..e }))
            .collect()
    }

    fn unknown_field_message(&self, key: &str) -> String {
        let system = &self.system;
        match &self.reserved {
            _ if key.trim().is_empty() => format!("Choose a {system} field for this row."),
            Some(reserved) if reserved.key == key => format!(
                "{} is set by Dark Web ID on every ticket (to avoid duplicate tickets) and cannot be mapped; remove \
                 this row.",
                reserved.label
            ),
            _ => format!(
                "\"{key}\" is not a {system} ticket field this integration can set; choose a field from the list."
            ),
        }
    }

    /// The id chosen in the row of field `key`, when that row is sound and, with `lookups`, one of the list's
    /// entries; with its name when known.
    fn chosen_parent(&self, rows: &[MappingRow], key: &str, lookups: Option<&Lookups>) -> Option<(i64, String)> {
        let def = self.field(key)?;
        let row = rows.iter().find(|r| r.field == key)?;
        let id = parse_id(def, &row.value).ok()?;
        match lookups {
            Some(l) => l.choices(key, None).iter().find(|item| item.id == id).map(|item| (id, item.name.clone())),
            None => Some((id, String::new())),
        }
    }

    /// Checks a mapping before it is saved. With `lookups`, list ids are checked against the PSA's lists (a
    /// dependent list, such as a board's statuses, against the entries of the parent chosen in the mapping, when
    /// they are loaded); without, only their form. Every field the system requires needs a row with a value.
    /// Errors come in row order, form-level errors (a missing required field) last.
    pub fn validate(&self, rows: &[MappingRow], lookups: Option<&Lookups>) -> Vec<RowError> {
        let mut errors = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let system = &self.system;

        for (index, row) in rows.iter().enumerate() {
            let key = row.field.as_str();
            let push = |errors: &mut Vec<RowError>, message: String| errors.push(RowError::new(index, key, message));
            let Some(def) = self.field(key) else {
                push(&mut errors, self.unknown_field_message(key));
                continue;
            };
            if let Some(&first) = seen.get(key) {
                push(
                    &mut errors,
                    format!(
                        "{} is mapped twice (rows {} and {}); remove one of them.",
                        def.label,
                        first + 1,
                        index + 1
                    ),
                );
                continue;
            }
            seen.insert(key, index);

            match def.kind {
                FieldKind::Company => {
                    if !row.value.trim().is_empty() {
                        push(
                            &mut errors,
                            format!(
                                "{} is set automatically to the organization's matched {system} company; leave its \
                                 value empty.",
                                def.label
                            ),
                        );
                    }
                }
                FieldKind::Reference if row.value.trim().is_empty() => {
                    if def.required {
                        push(
                            &mut errors,
                            format!("Choose {}: {} requires one on every ticket.", def.noun_or_value(), system),
                        );
                    }
                    // Otherwise left empty: not sent, the PSA's default applies.
                }
                FieldKind::Reference => {
                    let id = match parse_id(def, &row.value) {
                        Ok(id) => id,
                        Err(message) => {
                            push(&mut errors, message);
                            continue;
                        }
                    };
                    if let Some(parent) = def.parent.as_deref().and_then(|p| self.field(p))
                        && !rows.iter().any(|r| r.field == parent.key)
                    {
                        push(
                            &mut errors,
                            format!(
                                "{} belongs to {}: add a {} row and choose the {} first.",
                                def.label,
                                parent.noun_or_value(),
                                parent.label,
                                parent.label.to_lowercase()
                            ),
                        );
                        continue;
                    }
                    if let Some(lookups) = lookups
                        && let Some(message) = self.check_lookup(def, id, rows, lookups)
                    {
                        push(&mut errors, message);
                    }
                }
                FieldKind::Text | FieldKind::LongText | FieldKind::Email | FieldKind::Date | FieldKind::Number => {
                    for message in self.check_template(def, &row.value) {
                        push(&mut errors, message);
                    }
                }
            }
        }

        for def in self.fields.iter().filter(|f| f.required && f.kind != FieldKind::Company) {
            if seen.contains_key(&*def.key) {
                continue;
            }
            let message = if def.key == self.title {
                format!(
                    "Add a {} row: {system} requires {} on every ticket.",
                    def.label,
                    with_article(&def.label.to_lowercase())
                )
            } else {
                format!("Add a {} row: {system} requires {} on every ticket.", def.label, def.noun_or_value())
            };
            errors.push(RowError::new(RowError::NO_ROW, &def.key, message));
        }
        errors
    }

    fn check_lookup(&self, def: &FieldDef, id: i64, rows: &[MappingRow], lookups: &Lookups) -> Option<String> {
        let Some(parent_key) = def.parent.as_deref() else {
            let found = lookups.choices(&def.key, None).iter().any(|item| item.id == id);
            return (!found).then(|| {
                format!(
                    "{} {id} is not {} on this {} {}; choose one from the list.",
                    def.label,
                    def.noun_or_value(),
                    self.system,
                    self.account
                )
            });
        };
        // An unknown parent is reported on its own row, and a parent whose lists are not loaded yet cannot be
        // judged: its dependents are not checked against it.
        let (parent_id, parent_name) = self.chosen_parent(rows, parent_key, Some(lookups))?;
        let choices = lookups.loaded_choices(&def.key, parent_id)?;
        let parent_word = self.field(parent_key).map_or(parent_key.to_owned(), |p| p.label.to_lowercase());
        (!choices.iter().any(|item| item.id == id)).then(|| {
            format!(
                "{} {id} is not {} of the {parent_word} \"{parent_name}\"; choose one from that {parent_word}'s list.",
                def.label,
                def.noun_or_value()
            )
        })
    }

    fn check_template(&self, def: &FieldDef, value: &str) -> Vec<String> {
        let (segments, template_errors) = scan(value);
        let mut messages: Vec<String> = template_errors.iter().map(ToString::to_string).collect();
        let tokens: Vec<&str> =
            segments.iter().filter_map(|s| if let Segment::Token(name) = s { Some(*name) } else { None }).collect();
        let literal: String = segments
            .iter()
            .filter_map(|s| if let Segment::Text(text) = s { Some(text.as_str()) } else { None })
            .collect();
        let literal = if def.kind == FieldKind::LongText { normalize_lines(&literal) } else { flatten_lines(&literal) };
        let is_title = def.key == self.title;

        if literal.is_empty() && tokens.is_empty() {
            if template_errors.is_empty() {
                messages.push(if is_title {
                    format!(
                        "{} is required: enter the ticket's title, for example \"Dark Web ID: [record_type] \
                         compromise for [organization_name]\".",
                        def.label
                    )
                } else {
                    format!("Enter a value for {}, or remove the row.", def.label)
                });
            }
            return messages;
        }
        if is_title && literal.is_empty() && tokens.iter().all(|t| OPTIONAL_TOKENS.contains(t)) {
            messages.push(format!(
                "{} could be empty for a compromise without a password or website: add some text or a token that \
                 always has a value, such as [compromise].",
                def.label
            ));
        }
        if let Some(max) = def.max_len {
            let length = connectwise_len(&literal);
            if length > max {
                messages.push(format!(
                    "The fixed text of {} is already {length} characters, over {} maximum of {max}; shorten it.",
                    def.label,
                    possessive(&self.system)
                ));
            }
        }
        match def.kind {
            FieldKind::Date => {
                let only_one_date_token =
                    tokens.len() == 1 && DATE_TOKENS.contains(&tokens[0]) && literal.trim().is_empty();
                if !tokens.is_empty() && !only_one_date_token {
                    messages.push(format!(
                        "{} takes a single date: [date_added], [date_found], or a UTC date such as \
                         2026-11-27T10:00:00Z.",
                        def.label
                    ));
                } else if tokens.is_empty() && !is_literal_utc(&literal) {
                    messages.push(format!(
                        "\"{literal}\" is not an ISO-8601 UTC date; write it as 2026-11-27T10:00:00Z, or use \
                         [date_found]."
                    ));
                }
            }
            FieldKind::Number if !tokens.is_empty() || !is_number(&literal) => {
                messages.push(format!("{} takes a number, such as 3 or 2.5.", def.label));
            }
            FieldKind::Email if tokens.is_empty() && !email_list_ok(def, &literal) => {
                messages.push(if def.key == "automaticEmailCc" {
                    format!(
                        "\"{literal}\" is not a list of email addresses; separate addresses with semicolons, e.g. \
                         soc@example.com; noc@example.com."
                    )
                } else {
                    format!("\"{literal}\" is not a valid email address.")
                });
            }
            _ => {}
        }
        messages
    }

    /// The rows every mapping starts from: the title and description with Dark Web ID's defaults, and the
    /// automatic company.
    pub fn default_rows(&self) -> Vec<MappingRow> {
        let mut rows = vec![
            MappingRow::new(&*self.title, DEFAULT_TITLE),
            MappingRow::new(&*self.description, DEFAULT_DESCRIPTION),
        ];
        rows.extend(self.fields.iter().filter(|f| f.kind == FieldKind::Company).map(|f| MappingRow::new(&*f.key, "")));
        rows
    }

    /// What a new integration starts with in the wizard: the [`Catalog::default_rows`], then a row for each of
    /// the system's own lists (Board, Status, … ; Queue, Issue type, …) and for every other field it requires, to
    /// be chosen from its live lookups; an optional list left empty is not sent, and the PSA applies its default.
    pub fn new_integration_rows(&self) -> Vec<MappingRow> {
        let mut rows = self.default_rows();
        for def in self.fields.iter() {
            let wanted = (def.kind == FieldKind::Reference && !def.custom) || def.required;
            if wanted && !rows.iter().any(|r| r.field == def.key) {
                rows.push(MappingRow::new(&*def.key, ""));
            }
        }
        rows
    }
}

fn is_number(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty() && text.parse::<f64>().is_ok_and(f64::is_finite) && !text.contains(['e', 'E', 'x'])
}

const DEFAULT_TITLE: &str = "Dark Web ID: [record_type] compromise for [organization_name] – [compromise]";

/// One fact a line, each readable on its own, so the note still reads well should a PSA flatten line breaks.
/// The plain-text `[password]` is left out on purpose: ticket notes are widely visible.
const DEFAULT_DESCRIPTION: &str = "Dark Web ID found a new compromise for [organization_name].

Compromised: [compromise] ([record_type])
Monitored search value: [search_value]
Source: [source]
Website: [website]
Password (obscured): [obscured_password]
Password criteria: [password_criteria]
Date found: [date_found]
Date added to Dark Web ID: [date_added]
Dark Web ID record: [uuid]

Recommended next steps: reset this password everywhere it is used, turn on multi-factor authentication, and review \
the account for unusual activity.";
