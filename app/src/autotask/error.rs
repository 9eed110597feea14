//! The one error of the Autotask client. `Display` is a sentence a partner can act on; the technical cause goes to
//! `tracing` where the error is produced, never with the secret.
//!
//! Autotask answers most refusals as HTTP 500 with `{"errors": ["…"]}`, so the status alone does not say whether
//! trying again can help: [`classify_500`] reads the messages.

use std::time::Duration;

pub use crate::connectwise::FieldError;

/// Why Autotask refused the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthFailure {
    /// Zone discovery does not know the user name ("Zone information could not be determined").
    UnknownUser,
    /// HTTP 401 (empty body): the user name and secret do not match, or the tracking identifier is not accepted.
    /// Autotask does not say which of the three it was.
    Credentials,
    /// The API tracking identifier (`ApiIntegrationCode`) is missing or unknown ("IntegrationCode is invalid").
    IntegrationCode,
}

/// Which of Autotask's limits refused the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Throttle {
    /// The concurrent-request limit per endpoint and tracking identifier (3 for integrations created since 2023.1).
    Threads,
    /// The database's hourly request threshold (10,000 by default, shared by every integration of the MSP).
    Hourly,
    /// A 429 that says neither.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    #[error("{}", unauthorized_sentence(*.failure))]
    Unauthorized { failure: AuthFailure },
    /// The API user's security level lacks a right; `entity` names what it could not read or write ("tickets").
    #[error("{}", forbidden_sentence(.entity))]
    Forbidden { entity: String, message: String },
    /// `what` names the missing thing, e.g. `ticket 12345`.
    #[error("Autotask could not find {what}: check it and try again.")]
    NotFound { what: String },
    /// A refusal of the data (most often HTTP 500 with `{"errors": [...]}`); `errors` name the fields the messages
    /// mention (an empty `field` when a message names none).
    #[error("{}", validation_sentence(.message, .errors))]
    Validation { message: String, errors: Vec<FieldError> },
    #[error("{}", rate_limited_sentence(*.retry_after, *.limit))]
    RateLimited { retry_after: Option<Duration>, limit: Throttle },
    /// A 5xx fault, a timeout, a refused or reset connection: worth retrying. `answered` is false when Autotask
    /// never answered: after a POST the ticket may have been created all the same.
    #[error("Autotask did not answer in time or had a temporary problem ({reason}); it will be tried again.")]
    Transient { reason: String, answered: bool },
    /// HTML, garbage, a truncated body, JSON of the wrong shape, an unexpected status or redirect.
    #[error("Autotask answered with something that is not its API ({reason}).")]
    UnexpectedResponse { reason: String },
    /// An answer or a list beyond the client's limits: reading stopped there.
    #[error(
        "Autotask sent more than {limit} for {what}, more than the dashboard reads from one account. Ask support to \
         raise the limit."
    )]
    TooLarge { what: String, limit: String },
    /// The zone Autotask named (or an address it resolves to) is not allowed by the outbound-safety rules.
    #[error("The Autotask zone cannot be used: {reason}")]
    SiteRefused { reason: String },
    /// The account's request budget refused the request: nothing was sent.
    #[error("{}", crate::ticketing::budget_sentence(crate::ticketing::System::Autotask, refused))]
    BudgetRefused { refused: crate::request_budget::Refused },
}

fn unauthorized_sentence(failure: AuthFailure) -> &'static str {
    match failure {
        AuthFailure::UnknownUser => {
            "Autotask does not know the API user: check the user name (the API user's email-style user name, for \
             example api@yourmsp.com)."
        }
        AuthFailure::Credentials => {
            "Autotask rejected the credentials: check the API user's secret, and that the API tracking identifier \
             (integration code) belongs to this API user."
        }
        AuthFailure::IntegrationCode => {
            "Autotask rejected the API tracking identifier (integration code): copy it again from the API user's \
             page in Autotask."
        }
    }
}

fn forbidden_sentence(entity: &str) -> String {
    let what = if entity.is_empty() { "the request".to_string() } else { entity.to_string() };
    format!(
        "Autotask refused access to {what}: the API user's security level must allow reading companies, and reading \
         and adding tickets and ticket notes. Check the API user's security level in Autotask."
    )
}

fn validation_sentence(message: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return format!("Autotask refused the request: {message}");
    }
    let details: Vec<String> = errors
        .iter()
        .map(|e| if e.field.is_empty() { e.message.clone() } else { format!("{} ({})", e.message, e.field) })
        .collect();
    format!("Autotask refused the request: {}", details.join("; "))
}

fn rate_limited_sentence(retry_after: Option<Duration>, limit: Throttle) -> String {
    let when = match retry_after {
        Some(after) => format!("it will be tried again in {} s", after.as_secs().max(1)),
        None => "it will be tried again later".into(),
    };
    match limit {
        Throttle::Threads => {
            format!("Autotask is limiting concurrent requests (3 at a time per endpoint for an integration); {when}.")
        }
        Throttle::Hourly => format!(
            "Autotask's hourly API request limit for this Autotask database is used up (10,000 requests an hour by \
             default, shared by every integration of the MSP), so Autotask refuses API calls until the hour's usage \
             drops; {when}."
        ),
        Throttle::Other => format!("Autotask is throttling requests; {when}."),
    }
}

impl AtError {
    /// Whether trying the same call again later may succeed: throttling and transient failures only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AtError::RateLimited { .. } | AtError::Transient { .. } | AtError::BudgetRefused { .. })
    }

    /// A transient failure in which Autotask never answered (a timeout, a refused or broken connection): after a
    /// POST, only then may Autotask still have created the ticket.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, AtError::Transient { answered: false, .. })
    }

    /// The field errors of a validation error (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            AtError::Validation { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// What an HTTP 500 with these `errors` messages means. Autotask reports refusals of the data (a missing required
/// field, an inactive picklist value, a bad tracking identifier) as HTTP 500 with the reason in `errors`; a fault of
/// its own comes without a body, with an HTML page, or with a generic message. Retrying a refusal only burns the
/// MSP's shared hourly budget, so only recognised fault wording (or no readable reason at all) counts as transient.
pub(crate) fn classify_500(messages: &[String], candidates: &[&str]) -> AtError {
    let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
    let any = |needles: &[&str]| lower.iter().any(|m| needles.iter().any(|n| m.contains(n)));
    if messages.iter().all(|m| m.trim().is_empty()) {
        return AtError::Transient { reason: "HTTP 500".into(), answered: true };
    }
    if any(&["zone information could not be determined"]) {
        return AtError::Unauthorized { failure: AuthFailure::UnknownUser };
    }
    if any(&["integrationcode", "integration code", "tracking identifier"]) {
        return AtError::Unauthorized { failure: AuthFailure::IntegrationCode };
    }
    if let Some(limit) = throttle_of(&lower) {
        return AtError::RateLimited { retry_after: None, limit };
    }
    if any(&["permission", "not authorized", "access denied", "does not have access"]) {
        return AtError::Forbidden { entity: String::new(), message: messages.join(" ") };
    }
    const FAULTS: &[&str] = &[
        "unexpected error",
        "internal server error",
        "object reference not set",
        "timed out",
        "timeout",
        "deadlock",
        "try again",
        "temporarily unavailable",
        "service unavailable",
    ];
    if lower.iter().all(|m| FAULTS.iter().any(|f| m.contains(f))) {
        return AtError::Transient { reason: format!("HTTP 500: {}", messages.join(" ")), answered: true };
    }
    AtError::Validation { message: messages.join(" "), errors: name_fields(messages, candidates) }
}

/// Whether these (lower-case) messages tell of one of Autotask's limits, and which.
pub(crate) fn throttle_of(lower: &[String]) -> Option<Throttle> {
    let any = |needles: &[&str]| lower.iter().any(|m| needles.iter().any(|n| m.contains(n)));
    if any(&["thread threshold", "thread limit", "itgenatr005"]) {
        Some(Throttle::Threads)
    } else if any(&["request threshold", "requests per hour", "hourly", "threshold exceeded"]) {
        Some(Throttle::Hourly)
    } else {
        None
    }
}

/// One [`FieldError`] per message, naming the candidate field the message mentions (as a whole word, without case;
/// the longest name first, so `subIssueType` wins over `issueType`), or none.
pub(crate) fn name_fields(messages: &[String], candidates: &[&str]) -> Vec<FieldError> {
    let mut sorted: Vec<&str> = candidates.iter().copied().filter(|c| !c.is_empty()).collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.len()));
    messages
        .iter()
        .map(|message| {
            let lower = message.to_lowercase();
            let field = sorted.iter().find(|c| mentions(&lower, &c.to_lowercase())).map(|c| c.to_string());
            FieldError { field: field.unwrap_or_default(), code: String::new(), message: message.clone() }
        })
        .collect()
}

/// `needle` in `text` with no letter or digit right before or after it.
fn mentions(text: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !word(before) && !word(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_500_is_read_for_its_meaning() {
        let fields = ["title", "status", "issueType", "subIssueType", "DWID Reference"];
        let err = classify_500(&strings(&["Value 13 of field subIssueType is inactive."]), &fields);
        assert_eq!(err.field_errors()[0].field, "subIssueType");
        assert!(!err.is_retryable());
        let err = classify_500(&strings(&["The user-defined field 'DWID Reference' is too long."]), &fields);
        assert_eq!(err.field_errors()[0].field, "DWID Reference");
        let err = classify_500(&strings(&["Something about nothing."]), &fields);
        assert!(matches!(&err, AtError::Validation { .. }) && err.field_errors()[0].field.is_empty(), "{err:?}");
        assert_eq!(
            classify_500(&strings(&["IntegrationCode is invalid."]), &fields),
            AtError::Unauthorized { failure: AuthFailure::IntegrationCode }
        );
        assert_eq!(
            classify_500(&strings(&["Zone information could not be determined"]), &fields),
            AtError::Unauthorized { failure: AuthFailure::UnknownUser }
        );
        let fault = classify_500(&strings(&["An unexpected error has occurred. Please try again."]), &fields);
        assert!(fault.is_retryable() && !fault.is_unanswered(), "{fault:?}");
        assert!(classify_500(&[], &fields).is_retryable(), "no reason at all: a fault");
        let threads = classify_500(&strings(&["Itgenatr005: the thread threshold of 3 threads was exceeded"]), &fields);
        assert_eq!(threads, AtError::RateLimited { retry_after: None, limit: Throttle::Threads });
        assert!(matches!(
            classify_500(&strings(&["User does not have permission to query Tickets."]), &fields),
            AtError::Forbidden { .. }
        ));
    }

    #[test]
    fn fields_are_named_as_whole_words() {
        let named = name_fields(&strings(&["issueTypes are fine", "Missing field: status."]), &["issueType", "status"]);
        assert_eq!(named[0].field, "", "issueTypes is not issueType");
        assert_eq!(named[1].field, "status");
    }

    #[test]
    fn sentences_are_actionable_and_retry_is_classified() {
        let unknown = AtError::Unauthorized { failure: AuthFailure::UnknownUser };
        assert!(unknown.to_string().starts_with("Autotask does not know the API user"), "{unknown}");
        assert!(AtError::Unauthorized { failure: AuthFailure::Credentials }.to_string().contains("secret"));
        let code = AtError::Unauthorized { failure: AuthFailure::IntegrationCode }.to_string();
        assert!(code.contains("tracking identifier"), "{code}");
        let hourly = AtError::RateLimited { retry_after: None, limit: Throttle::Hourly };
        assert!(hourly.to_string().contains("every integration") && hourly.is_retryable());
        let threads = AtError::RateLimited { retry_after: Some(Duration::from_secs(2)), limit: Throttle::Threads };
        assert!(threads.to_string().contains("in 2 s"), "{threads}");
        assert!(AtError::Transient { reason: "no answer".into(), answered: false }.is_unanswered());
        for err in [
            unknown,
            AtError::Forbidden { entity: "tickets".into(), message: String::new() },
            AtError::NotFound { what: "x".into() },
            AtError::Validation { message: "x".into(), errors: vec![] },
            AtError::UnexpectedResponse { reason: "html".into() },
            AtError::TooLarge { what: "the companies".into(), limit: "100000 rows".into() },
            AtError::SiteRefused { reason: "x".into() },
        ] {
            assert!(!err.is_retryable(), "{err:?}");
        }
    }
}
