//! The integration wizard's field mapping, as one pure module compiled into both the browser (live preview) and the
//! server (ticket delivery): the Dark Web ID token catalog, template parsing and rendering, truncation, validation
//! and the neutral ticket, all driven by the chosen system's [`Catalog`] (each PSA module builds its own: see
//! `connectwise::catalog`, `autotask::catalog`). Only std, serde, serde_json and thiserror: no I/O.
//!
//! Decisions a caller should know:
//! - **Template syntax**: `[token]`; `[[` is a literal `[`, `]]` a literal `]` (a lone `]` is literal too). Token
//!   names are exact and lowercase. See [`parse`] for errors and positions.
//! - **Line breaks**: a PSA may flatten them (unconfirmed on current ConnectWise versions). Single-line fields
//!   (Text, Email, Date, Number kinds) have every line break turned into one space and their ends trimmed, so what
//!   the preview shows and counts is what is sent. Long texts keep line breaks as `\n`; the default description
//!   puts one self-explanatory fact on each line so it still reads well if a site flattens them.
//! - **Lengths** are counted as both PSAs (.NET, SQL Server `nvarchar`) count: UTF-16 code units, i.e. characters
//!   except that an emoji outside the Basic Multilingual Plane counts 2. Truncation cuts on character boundaries
//!   and never separates a character from its combining marks or an emoji sequence. [`truncate_chars`] counts
//!   plain characters for callers that want that.
//! - **The dedupe key** `dwid:<uuid>/<integration id>` (see [`external_xref`], [`NewTicket::dedupe_key`]) is
//!   written by each system's module where it can be queried; a field it occupies is [`Catalog::reserved`] and a
//!   row naming it is an error.
//! - **Company** is always the organization's matched company ([`NewTicket::company_id`]); its row's value is
//!   empty.
//! - **Required fields** ([`FieldDef::required`]) need a row with a value; **lists** are ids in
//!   [`NewTicket::fields`]; a list that depends on another field's choice (a board's statuses, an issue type's
//!   sub-issue types) is checked against that choice ([`FieldDef::parent`], [`Lookups`]).
//! - Values that render empty are not sent (the PSA's defaults apply).

mod catalog;
mod rows;
mod template;
mod ticket;
mod tokens;

#[cfg(all(test, feature = "ssr"))]
mod tests;

pub use catalog::{Catalog, FieldDef, FieldKind, Reserved};
pub use rows::{LookupItem, Lookups, MappingRow, Preview, RowError};
pub use template::{
    Segment, TemplateError, connectwise_len, parse, render, suggest_token, truncate_chars, truncate_for_connectwise,
};
pub use ticket::NewTicket;

/// The dedupe key of the ticket for one compromise and one integration: `dwid:<uuid>/<integration id>`. It names
/// the integration too, so two integrations that send the same compromise to the same PSA company each find their
/// own ticket when they look it up.
pub fn external_xref(uuid: &str, integration_id: i64) -> String {
    format!("dwid:{uuid}/{integration_id}")
}
pub use tokens::{Compromise, PasswordCriteria, RecordType, TOKENS, Token, obscure, token};
