//! The Dark Web ID token catalog and the compromise record the tokens read from.

use serde::{Deserialize, Serialize};

/// One "Available Dark Web ID Token": written `[name]` in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The name without brackets, e.g. `"uuid"`.
    pub name: &'static str,
    /// One sentence for the palette.
    pub description: &'static str,
}

/// Every token a template may use, in the order of the Dark Web ID ConnectWise integration guide.
///
/// The issue speaks of 13 tokens; the guide's list as far as it could be confirmed holds these 12, so no 13th is
/// invented here. Adding one is a new entry below plus an arm in [`Compromise::token_value`] (a test checks that
/// every catalog entry renders).
pub const TOKENS: &[Token] = &[
    Token { name: "uuid", description: "The unique identifier of the compromise record in Dark Web ID." },
    Token {
        name: "password",
        description: "The exposed password in plain text (empty when none was exposed); prefer [obscured_password], \
                      since everyone who can open the ticket can read it.",
    },
    Token {
        name: "obscured_password",
        description: "The exposed password with all but its first and last character masked, e.g. \"S*********!\" \
                      (fully masked when shorter than 5 characters, empty when none was exposed).",
    },
    Token { name: "record_type", description: "What was compromised: \"Email\", \"Domain\" or \"IP\"." },
    Token { name: "source", description: "The breach, paste or dark-web source where the compromise was found." },
    Token {
        name: "website",
        description: "The website or service the exposed credentials belong to, when known (otherwise empty).",
    },
    Token {
        name: "organization_name",
        description: "The name of the Dark Web ID organization the compromise belongs to.",
    },
    Token { name: "compromise", description: "The compromised email address, domain or IP address itself." },
    Token {
        name: "password_criteria",
        description: "Whether the exposed password matches the organization's password criteria: \"Matches\", \
                      \"Doesn't Match\" or \"N/A\".",
    },
    Token {
        name: "search_value",
        description: "The monitored domain, email address or IP address that found this compromise.",
    },
    Token {
        name: "date_added",
        description: "When Dark Web ID added the compromise, in ISO-8601 UTC (e.g. 2025-03-14T09:26:53Z).",
    },
    Token { name: "date_found", description: "When the compromise was found on the dark web, in ISO-8601 UTC." },
];

/// The catalog entry for a token name (exact, case-sensitive, without brackets).
pub fn token(name: &str) -> Option<&'static Token> {
    TOKENS.iter().find(|t| t.name == name)
}

/// Tokens whose value may be empty for a real compromise (used to warn when a Summary could render empty).
pub(crate) const OPTIONAL_TOKENS: &[&str] = &["password", "obscured_password", "website"];

/// Tokens whose value is a date: the only tokens a Date field accepts.
pub(crate) const DATE_TOKENS: &[&str] = &["date_added", "date_found"];

/// What kind of value was compromised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    Email,
    Domain,
    #[serde(rename = "IP")]
    Ip,
}

impl RecordType {
    /// The text the `[record_type]` token renders.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Email => "Email",
            RecordType::Domain => "Domain",
            RecordType::Ip => "IP",
        }
    }
}

/// Whether the exposed password matches the organization's password criteria.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasswordCriteria {
    #[serde(rename = "N/A")]
    NotApplicable,
    Matches,
    #[serde(rename = "Doesn't Match")]
    DoesntMatch,
}

impl PasswordCriteria {
    /// The text the `[password_criteria]` token renders.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordCriteria::NotApplicable => "N/A",
            PasswordCriteria::Matches => "Matches",
            PasswordCriteria::DoesntMatch => "Doesn't Match",
        }
    }
}

/// One compromise as templates see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compromise {
    pub uuid: String,
    /// Never logged; `[obscured_password]` is the safe rendering.
    pub password: Option<String>,
    pub record_type: RecordType,
    pub source: String,
    pub website: Option<String>,
    pub organization_name: String,
    /// The compromised email address, domain or IP.
    pub compromise: String,
    pub password_criteria: PasswordCriteria,
    pub search_value: String,
    /// ISO-8601, UTC expected (e.g. `2025-03-14T09:26:53Z`).
    pub date_added: String,
    /// ISO-8601, UTC expected.
    pub date_found: String,
}

impl Compromise {
    /// A realistic, deterministic test compromise for the live preview and "Submit a Test Compromise".
    ///
    /// Deterministic so the server render and the hydrated preview agree. Its `uuid` is fixed: a caller that creates
    /// a real ticket from it should set a fresh `uuid` per submission (`Compromise { uuid, ..Compromise::sample() }`),
    /// because delivery deduplicates on `externalXRef = dwid:<uuid>/<integration id>`.
    pub fn sample() -> Self {
        Compromise {
            uuid: "5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a".to_owned(),
            password: Some("Summer2024!".to_owned()),
            record_type: RecordType::Email,
            source: "Hacking forum combolist (sample data)".to_owned(),
            website: Some("portal.acme-corp.example".to_owned()),
            organization_name: "Acme Corp".to_owned(),
            compromise: "jane.doe@acme-corp.example".to_owned(),
            password_criteria: PasswordCriteria::Matches,
            search_value: "acme-corp.example".to_owned(),
            date_added: "2025-03-14T09:26:53Z".to_owned(),
            date_found: "2025-03-12T00:00:00Z".to_owned(),
        }
    }

    /// The value of a token (name without brackets), or `None` for a name not in [`TOKENS`].
    /// Absent optional values render as an empty string.
    pub fn token_value(&self, name: &str) -> Option<String> {
        let value = match name {
            "uuid" => self.uuid.clone(),
            "password" => self.password.clone().unwrap_or_default(),
            "obscured_password" => self.password.as_deref().map(obscure).unwrap_or_default(),
            "record_type" => self.record_type.as_str().to_owned(),
            "source" => self.source.clone(),
            "website" => self.website.clone().unwrap_or_default(),
            "organization_name" => self.organization_name.clone(),
            "compromise" => self.compromise.clone(),
            "password_criteria" => self.password_criteria.as_str().to_owned(),
            "search_value" => self.search_value.clone(),
            "date_added" => self.date_added.clone(),
            "date_found" => self.date_found.clone(),
            _ => return None,
        };
        Some(value)
    }
}

/// Passwords shorter than this are masked entirely: showing two of four characters reveals too much.
const OBSCURE_MIN_CHARS: usize = 5;

/// `"Summer2024!"` → `"S*********!"`; counts characters, not bytes, so multi-byte passwords never split.
pub fn obscure(password: &str) -> String {
    let count = password.chars().count();
    if count < OBSCURE_MIN_CHARS {
        return "*".repeat(count);
    }
    let mut chars = password.chars();
    let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else {
        return "*".repeat(count);
    };
    let mut out = String::with_capacity(count + 8);
    out.push(first);
    out.push_str(&"*".repeat(count - 2));
    out.push(last);
    out
}
