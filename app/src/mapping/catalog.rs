//! What a ticketing system lets the mapping fill: its fields ([`FieldDef`]) and the few facts the mapping's
//! sentences and checks need ([`Catalog`]). Each system's module builds its own catalog (ConnectWise's is a fixed
//! table, Autotask's is read from the API's field information); this module only knows the shape.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// How a field's value is written and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldKind {
    /// A single-line string; line breaks are flattened to spaces.
    Text,
    /// A multi-line string; line breaks are kept (as `\n`).
    LongText,
    /// An email address (or, for ConnectWise's `automaticEmailCc`, several separated by `;`).
    Email,
    /// An ISO-8601 UTC date and time: a date token or a literal such as `2026-11-27T10:00:00Z`.
    Date,
    /// A number (an Autotask numeric user-defined field): a literal such as `3` or `2.5`.
    Number,
    /// An entry chosen from the PSA's lists; the row value is the id as decimal text.
    Reference,
    /// The organization's matched PSA company, set automatically; the row value is empty.
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
            FieldKind::Number => "Number",
            FieldKind::Reference => "List",
            FieldKind::Company => "Automatic",
        }
    }

    /// Whether the value is a template with `[token]`s (false for lists and the automatic company).
    pub fn is_template(self) -> bool {
        !matches!(self, FieldKind::Reference | FieldKind::Company)
    }
}

/// One ticket field a partner can map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// The system's name for the field (`"summary"`, `"queueID"`, `"udf:Customer Tier"`); also
    /// [`super::MappingRow::field`].
    pub key: Cow<'static, str>,
    /// The wizard's label, e.g. `"Summary"`.
    pub label: Cow<'static, str>,
    pub kind: FieldKind,
    /// The system's maximum length, counted as SQL Server counts (see [`super::connectwise_len`]).
    pub max_len: Option<usize>,
    /// The system refuses a ticket without it.
    pub required: bool,
    /// One sentence for the palette.
    pub help: Cow<'static, str>,
    /// For a list (Reference) field: what one entry is, with its article ("a service board"), for messages.
    pub noun: Cow<'static, str>,
    /// For a list whose entries depend on another field's choice (a board's statuses): that field's key.
    pub parent: Option<Cow<'static, str>>,
    /// A field the partner's own PSA defines (an Autotask user-defined field).
    #[serde(default)]
    pub custom: bool,
}

impl FieldDef {
    /// A field with no maximum, optional, not a list.
    pub const fn new(key: &'static str, label: &'static str, kind: FieldKind, help: &'static str) -> Self {
        FieldDef {
            key: Cow::Borrowed(key),
            label: Cow::Borrowed(label),
            kind,
            max_len: None,
            required: false,
            help: Cow::Borrowed(help),
            noun: Cow::Borrowed(""),
            parent: None,
            custom: false,
        }
    }

    /// A list field: `noun` names one entry ("a priority"); `parent` is the field whose choice its entries depend
    /// on.
    pub const fn list(
        key: &'static str,
        label: &'static str,
        noun: &'static str,
        parent: Option<&'static str>,
        help: &'static str,
    ) -> Self {
        FieldDef {
            key: Cow::Borrowed(key),
            label: Cow::Borrowed(label),
            kind: FieldKind::Reference,
            max_len: None,
            required: false,
            help: Cow::Borrowed(help),
            noun: Cow::Borrowed(noun),
            parent: match parent {
                Some(p) => Some(Cow::Borrowed(p)),
                None => None,
            },
            custom: false,
        }
    }

    pub const fn max(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// What one entry is: the noun for a list ("a queue"), else "a Customer Tier value", "an Impact value".
    pub fn noun_or_value(&self) -> String {
        if self.noun.is_empty() {
            crate::names::with_article(&format!("{} value", self.label))
        } else {
            self.noun.to_string()
        }
    }
}

/// A property the dashboard writes itself on every ticket and a row may not name (ConnectWise's `externalXRef`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub key: Cow<'static, str>,
    pub label: Cow<'static, str>,
}

/// One system's ticket fields and the words the mapping's sentences use for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The system's short name in sentences: "ConnectWise", "Autotask".
    pub system: Cow<'static, str>,
    /// What one PSA account is called: "site" (ConnectWise), "account".
    pub account: Cow<'static, str>,
    /// The key of the ticket's title (required, never empty): `summary`, `title`.
    pub title: Cow<'static, str>,
    /// The key of the ticket's main text, which a new integration fills with the default description.
    pub description: Cow<'static, str>,
    /// Every mappable field, in palette order.
    pub fields: Cow<'static, [FieldDef]>,
    /// A property a row may not name, because the dedupe key is written there.
    pub reserved: Option<Reserved>,
    /// The longest dedupe key the system keeps (see [`super::external_xref`]).
    pub dedupe_max: usize,
}

impl Catalog {
    /// The field of a key (exact, case-sensitive).
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The title field's label ("Summary", "Title").
    pub fn title_label(&self) -> &str {
        self.field(&self.title).map_or(&*self.title, |f| &f.label)
    }
}
