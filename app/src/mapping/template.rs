//! Template syntax, rendering, truncation and the small text checks (dates, emails) the fields need.
//!
//! Syntax:
//! - `[name]` is replaced by the token's value; names are exact and lowercase (`[UUID]` is unknown, and the error
//!   suggests `[uuid]`).
//! - `[[` is a literal `[` and `]]` a literal `]`. A lone `]` outside a token is also a literal `]`, so only `[`
//!   ever needs escaping; `]]` exists so a partner can write brackets symmetrically (`[[uuid]]` → `[uuid]`).
//! - A `[` with no `]` before the end of the line, or before the next `[`, is [`TemplateError::UnclosedBracket`].
//!
//! Positions in errors count characters (Unicode scalar values) from 0; JavaScript string indices count UTF-16 code
//! units and differ only after characters outside the Basic Multilingual Plane (emoji).

use super::tokens::{Compromise, TOKENS, token};

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, escapes already resolved.
    Text(String),
    /// A catalog token, by name (without brackets).
    Token(&'static str),
}

/// Why a template cannot be rendered. `position` is the character index of the offending `[`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{}", unknown_token_message(.name, .position))]
    UnknownToken { name: String, position: usize },
    #[error(
        "The \"[\" at character {} is never closed: end the token with \"]\", or write \"[[\" for a literal \"[\".",
        .position + 1
    )]
    UnclosedBracket { position: usize },
}

fn unknown_token_message(name: &str, position: &usize) -> String {
    let at = position + 1;
    if name.trim().is_empty() {
        return format!(
            "Empty brackets \"[{name}]\" at character {at}: put a token name inside, or write \"[[\" for a literal \"[\"."
        );
    }
    match suggest_token(name) {
        Some(best) => format!("Unknown token [{name}] at character {at}. Did you mean [{best}]?"),
        None => format!(
            "Unknown token [{name}] at character {at}. Use one of the Dark Web ID tokens listed beside the mapping, \
             or write \"[[\" for a literal \"[\"."
        ),
    }
}

/// Parses a template, stopping at the first error.
pub fn parse(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let (segments, mut errors) = scan(template);
    if errors.is_empty() { Ok(segments) } else { Err(errors.swap_remove(0)) }
}

/// Renders a template for a compromise: every `[token]` replaced by its value, escapes resolved. Line breaks are
/// left as written; the field-specific handling happens in [`super::preview`] and [`super::build_ticket`].
pub fn render(template: &str, compromise: &Compromise) -> Result<String, TemplateError> {
    Ok(render_segments(&parse(template)?, compromise))
}

pub(crate) fn render_segments(segments: &[Segment], compromise: &Compromise) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Token(name) => out.push_str(&compromise.token_value(name).unwrap_or_default()),
        }
    }
    out
}

/// Parses the whole template, collecting every error: an unknown token is kept as literal text and an unclosed `[`
/// as a literal `[`, and scanning goes on, so validation can report every mistake in a row at once.
pub(crate) fn scan(template: &str) -> (Vec<Segment>, Vec<TemplateError>) {
    let chars: Vec<char> = template.chars().collect();
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '[' if next == Some('[') => {
                text.push('[');
                i += 2;
            }
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| matches!(c, ']' | '[' | '\n' | '\r'))
                    .map(|offset| i + 1 + offset)
                    .filter(|&j| chars[j] == ']');
                let Some(close) = close else {
                    errors.push(TemplateError::UnclosedBracket { position: i });
                    text.push('[');
                    i += 1;
                    continue;
                };
                let name: String = chars[i + 1..close].iter().collect();
                match token(&name) {
                    Some(known) => {
                        if !text.is_empty() {
                            segments.push(Segment::Text(std::mem::take(&mut text)));
                        }
                        segments.push(Segment::Token(known.name));
                    }
                    None => {
                        text.push('[');
                        text.push_str(&name);
                        text.push(']');
                        errors.push(TemplateError::UnknownToken { name, position: i });
                    }
                }
                i = close + 1;
            }
            ']' if next == Some(']') => {
                text.push(']');
                i += 2;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    (segments, errors)
}

/// The catalog token closest to a mistyped name, if one is plausibly meant: same name in another case or with
/// `-`/spaces for `_`; a small edit distance; a token the name contains (`compromise_email`); a token whose
/// beginning the name misspells (`organisation`); or a token the name abbreviates (`org_name`).
pub fn suggest_token(name: &str) -> Option<&'static str> {
    let wanted: String = name
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .chars()
        .map(|c| if c == '-' || c.is_whitespace() { '_' } else { c.to_ascii_lowercase() })
        .collect();
    if wanted.is_empty() {
        return None;
    }
    if let Some(exact) = token(&wanted) {
        return Some(exact.name);
    }
    let wanted_len = wanted.chars().count();
    let closest = TOKENS.iter().map(|t| (levenshtein(&wanted, t.name), t.name)).min_by_key(|&(d, _)| d);
    if let Some((distance, name)) = closest
        && distance <= 2.max(wanted_len / 3)
    {
        return Some(name);
    }
    if let Some(contained) =
        TOKENS.iter().filter(|t| t.name.len() >= 3 && wanted.contains(t.name)).max_by_key(|t| t.name.len())
    {
        return Some(contained.name);
    }
    if wanted_len < 3 {
        return None;
    }
    // A misspelt beginning of a longer name: `organisation` → `organization_name`.
    let prefix = TOKENS
        .iter()
        .filter(|t| t.name.chars().count() > wanted_len)
        .map(|t| (levenshtein(&wanted, &t.name.chars().take(wanted_len).collect::<String>()), t.name))
        .min_by_key(|&(d, _)| d);
    if let Some((distance, name)) = prefix
        && wanted_len >= 4
        && distance <= 1.max(wanted_len / 4)
    {
        return Some(name);
    }
    TOKENS.iter().filter(|t| is_subsequence(&wanted, t.name)).min_by_key(|t| t.name.len()).map(|t| t.name)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn is_subsequence(needle: &str, haystack: &str) -> bool {
    let mut hay = haystack.chars();
    needle.chars().all(|n| hay.any(|h| h == n))
}

// ---------------------------------------------------------------------------------------------------------------
// Lengths and truncation

/// Cuts `s` to at most `max` characters (Unicode scalar values), returning the kept text and the cut-off rest.
///
/// Never splits a character, and backs off so as not to separate a base character from the combining marks,
/// variation selectors, skin-tone modifiers or zero-width joiners that follow it, nor the two halves of a flag:
/// the kept part may therefore be a few characters shorter than `max`.
pub fn truncate_chars(s: &str, max: usize) -> (String, Option<String>) {
    truncate_by(s, max, |_| 1)
}

/// The length of `s` as ConnectWise counts it: UTF-16 code units, like .NET's `string.Length` and SQL Server's
/// `nvarchar`. Equal to the character count except that each character outside the Basic Multilingual Plane
/// (most emoji) counts 2.
pub fn connectwise_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Like [`truncate_chars`], with the budget counted as [`connectwise_len`] does, so that what is sent never exceeds
/// ConnectWise's maximum, even with emoji. Used by the preview and the ticket body.
pub fn truncate_for_connectwise(s: &str, max: usize) -> (String, Option<String>) {
    truncate_by(s, max, char::len_utf16)
}

fn truncate_by(s: &str, max: usize, cost: impl Fn(char) -> usize) -> (String, Option<String>) {
    let mut used = 0;
    let mut cut = None;
    for (index, c) in s.char_indices() {
        used += cost(c);
        if used > max {
            cut = Some(index);
            break;
        }
    }
    match cut {
        None => (s.to_owned(), None),
        Some(index) => {
            let index = cluster_start(s, index);
            (s[..index].to_owned(), Some(s[index..].to_owned()))
        }
    }
}

/// Moves a cut (a char boundary) back to the start of the visible character it would otherwise split.
fn cluster_start(s: &str, mut index: usize) -> usize {
    while index > 0 {
        let (Some(prev), Some(next)) = (s[..index].chars().next_back(), s[index..].chars().next()) else {
            break;
        };
        let split_pair = is_regional_indicator(prev)
            && is_regional_indicator(next)
            && s[..index].chars().rev().take_while(|&c| is_regional_indicator(c)).count() % 2 == 1;
        if is_extender(next) || prev == '\u{200D}' || split_pair {
            index -= prev.len_utf8();
        } else {
            break;
        }
    }
    index
}

fn is_extender(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F // combining diacritical marks
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F // more combining marks
        | 0x200D // zero-width joiner
        | 0xFE00..=0xFE0F | 0xE0100..=0xE01EF // variation selectors
        | 0x1F3FB..=0x1F3FF // emoji skin-tone modifiers
        | 0xE0020..=0xE007F // emoji tag sequences (subdivision flags)
    )
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

// ---------------------------------------------------------------------------------------------------------------
// Line breaks

/// Single-line fields: every line break (with the spaces around it) becomes one space, and the ends are trimmed,
/// so "a\n\nb" is "a b".
pub(crate) fn flatten_lines(s: &str) -> String {
    s.split(['\n', '\r']).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Multi-line fields: `\r\n` and `\r` become `\n`; trailing whitespace is trimmed.
pub(crate) fn normalize_lines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n").trim_end().to_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// Dates

/// A literal date as the mapping accepts it: a full date and time in UTC, e.g. `2026-11-27T10:00:00Z`
/// (fractions of a second and `+00:00` are accepted).
pub(crate) fn is_literal_utc(s: &str) -> bool {
    crate::dates::parse(s.trim()).is_ok_and(|d| d.has_time && d.offset == Some(0))
}

/// A date from compromise data in the form ConnectWise expects, `YYYY-MM-DDTHH:MM:SSZ`: other offsets are
/// converted to UTC, a date alone is midnight UTC and a time without a zone is taken as UTC. `None` if unreadable.
pub(crate) fn to_connectwise_date(s: &str) -> Option<String> {
    crate::dates::parse(s.trim()).ok()?.to_utc_string()
}

// ---------------------------------------------------------------------------------------------------------------
// Emails

/// A plausible single email address: `local@domain.tld`, no spaces, each domain label 1–63 letters, digits or
/// hyphens. Deliberately simple: ConnectWise has the final word.
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| !c.is_whitespace() && !c.is_control() && !"@<>()[]\\,;:\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok && s.len() <= 254
}
