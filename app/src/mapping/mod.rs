//! The integration wizard's field mapping, as one pure module compiled into both the browser (live preview) and the
//! server (ticket delivery): the Dark Web ID token catalog, the ConnectWise field catalog, template parsing and
//! rendering, truncation, validation and the ticket body. Only std, serde, serde_json and thiserror: no I/O.
//!
//! Decisions a caller should know:
//! - **Template syntax**: `[token]`; `[[` is a literal `[`, `]]` a literal `]` (a lone `]` is literal too). Token
//!   names are exact and lowercase. See [`parse`] for errors and positions.
//! - **Line breaks**: ConnectWise may flatten them (unconfirmed on current versions). Single-line fields (Text,
//!   Email, Date kinds) have every line break turned into one space and their ends trimmed, so what the preview
//!   shows and counts is what is sent. Long texts (Initial Description, Internal Analysis, Resolution) keep line
//!   breaks as `\n`; the default description puts one self-explanatory fact on each line so it still reads well if
//!   a site flattens them.
//! - **Lengths** are counted as ConnectWise (.NET, SQL Server `nvarchar`) counts: UTF-16 code units, i.e.
//!   characters except that an emoji outside the Basic Multilingual Plane counts 2. Truncation cuts on character
//!   boundaries and never separates a character from its combining marks or an emoji sequence. [`truncate_chars`]
//!   counts plain characters for callers that want that.
//! - **External Reference** (`externalXRef`) is reserved: every ticket carries the dedupe key
//!   `dwid:<uuid>/<integration id>` (see [`external_xref`], [`NewTicket::dedupe_key`]) so a retried delivery finds
//!   its ticket; it is not in [`FIELDS`] and a row naming it is an error.
//! - **Company** is always the organization's matched company ([`NewTicket::company_id`]); its row's value is
//!   empty.
//! - **Lists** are ids in [`NewTicket::fields`]; a list that depends on another field's choice (a board's
//!   statuses) is checked against that choice ([`FieldDef::parent`], [`Lookups`]).
//! - Values that render empty are not sent (ConnectWise defaults apply).

mod fields;
mod rows;
mod template;
mod ticket;
mod tokens;

#[cfg(test)]
mod tests;

pub use fields::{EXTERNAL_XREF_KEY, FIELDS, FieldDef, FieldKind, external_xref, field};
pub use rows::{
    COMPANY_PREVIEW, LookupItem, Lookups, MappingRow, Preview, RowError, default_rows, new_integration_rows, preview,
    preview_rows, validate,
};
pub use template::{
    Segment, TemplateError, connectwise_len, parse, render, suggest_token, truncate_chars, truncate_for_connectwise,
};
pub use ticket::{NewTicket, build_ticket};
pub use tokens::{Compromise, PasswordCriteria, RecordType, TOKENS, Token, obscure, token};
