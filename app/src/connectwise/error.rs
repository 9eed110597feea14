//! The one error of the ConnectWise client. `Display` is a sentence a partner can act on; the technical cause goes
//! to `tracing` where the error is produced, never with credentials.

use std::time::Duration;

/// One field a validation error names, as ConnectWise reports it (`field` like `summary` or `status/name`): the
/// ticketing interface's own type.
pub use crate::ticketing::FieldError;

/// Which credentials a call used: the sentence for a refusal names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthKind {
    ApiMember,
    Integrator,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CwError {
    /// 401: wrong keys, company ID or login (or a missing/unknown `clientId`).
    #[error("{}", unauthorized_sentence(*.kind))]
    Unauthorized { kind: AuthKind },
    /// 403: the API member's security role lacks a right.
    #[error(
        "ConnectWise refused the request: the API member's security role lacks a right. It needs Company \
         Maintenance: Inquire All; Service Tickets: Inquire and Add All; Table Setup: Inquire All."
    )]
    Forbidden { message: String },
    /// 404 (or an empty discovery answer): `what` names the missing thing, e.g. `the company ID "acme"`.
    #[error("ConnectWise could not find {what}: check it and try again.")]
    NotFound { what: String },
    /// 400 with ConnectWise's field errors.
    #[error("{}", validation_sentence(.message, .errors))]
    Validation { message: String, errors: Vec<FieldError> },
    /// 429: throttled; `retry_after` from the `Retry-After` header when it has one.
    #[error("{}", rate_limited_sentence(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, a timeout, a refused or reset connection: worth retrying. After a timeout on a POST the ticket may have
    /// been created all the same.
    #[error("ConnectWise did not answer in time or had a temporary problem ({reason}); it will be tried again.")]
    Transient { reason: String },
    /// HTML, garbage, a truncated body, JSON of the wrong shape, an unexpected status or redirect.
    #[error(
        "ConnectWise answered with something that is not its API ({reason}): check that the site is your \
         ConnectWise Manage site."
    )]
    UnexpectedResponse { reason: String },
    /// An answer or a list beyond the client's limits (see `Limits`): reading stopped there.
    #[error(
        "ConnectWise sent more than {limit} for {what}, more than the dashboard reads from one site. Check that the \
         site is your ConnectWise Manage site, or ask support to raise the limit."
    )]
    TooLarge { what: String, limit: String },
    /// The site (or an address it resolves to, or a redirect target) is not allowed by the outbound-safety rules.
    #[error("The site cannot be used: {reason}")]
    SiteRefused { reason: String },
    /// The account's request budget refused the request: nothing was sent.
    #[error("{}", crate::ticketing::budget_sentence(crate::ticketing::System::ConnectWise, refused))]
    BudgetRefused { refused: crate::request_budget::Refused },
}

fn unauthorized_sentence(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::ApiMember => {
            "ConnectWise rejected the keys: check the company ID, and the public and private key of the API member."
        }
        AuthKind::Integrator => {
            "ConnectWise rejected the integrator login: check the company ID, the integrator user name and password."
        }
    }
}

fn validation_sentence(message: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return format!("ConnectWise refused the ticket: {message}");
    }
    let details: Vec<String> = errors.iter().map(|e| format!("{} ({})", e.message, e.field)).collect();
    format!("ConnectWise refused the ticket: {}", details.join("; "))
}

fn rate_limited_sentence(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!(
            "ConnectWise is throttling requests (too many in a minute); it will be tried again in {} s.",
            after.as_secs().max(1)
        ),
        None => "ConnectWise is throttling requests (too many in a minute); it will be tried again shortly.".into(),
    }
}

impl CwError {
    /// Whether trying the same call again later may succeed: throttling and transient failures. Never 400, 401,
    /// 403, 404, a refused site or an unexpected answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CwError::RateLimited { .. } | CwError::Transient { .. } | CwError::BudgetRefused { .. })
    }

    /// A transient failure in which ConnectWise never answered (a timeout, a refused or broken connection), as
    /// opposed to an answer such as a 5xx: after a POST, only then may ConnectWise still be creating the ticket.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, CwError::Transient { reason } if !reason.starts_with("HTTP "))
    }

    /// The field errors of a validation error (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            CwError::Validation { errors, .. } => errors,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_actionable_and_retry_is_classified() {
        let unauthorized = CwError::Unauthorized { kind: AuthKind::ApiMember };
        assert!(unauthorized.to_string().contains("public and private key"));
        assert!(CwError::Unauthorized { kind: AuthKind::Integrator }.to_string().contains("integrator"));
        let validation = CwError::Validation {
            message: "ticket object is invalid".into(),
            errors: vec![FieldError {
                field: "company".into(),
                code: "MissingRequiredField".into(),
                message: "company is required.".into(),
            }],
        };
        assert_eq!(validation.to_string(), "ConnectWise refused the ticket: company is required. (company)");
        assert!(CwError::RateLimited { retry_after: Some(Duration::from_secs(30)) }.to_string().contains("in 30 s"));
        assert!(CwError::RateLimited { retry_after: None }.is_retryable());
        assert!(CwError::Transient { reason: "timeout".into() }.is_retryable());
        assert!(CwError::Transient { reason: "no answer within 30 s".into() }.is_unanswered());
        assert!(!CwError::Transient { reason: "HTTP 503".into() }.is_unanswered());
        for err in [
            unauthorized,
            validation,
            CwError::Forbidden { message: String::new() },
            CwError::NotFound { what: "x".into() },
            CwError::UnexpectedResponse { reason: "html".into() },
            CwError::SiteRefused { reason: "x".into() },
            CwError::TooLarge { what: "the companies".into(), limit: "100000 rows".into() },
        ] {
            assert!(!err.is_retryable(), "{err:?}");
        }
    }
}
