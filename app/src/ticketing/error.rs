//! The one error of the ticketing interface. Each system maps its own error into it, keeping its own sentence
//! (which names the system and says what to do); callers decide by [`ErrorKind`] alone.

use std::time::Duration;

/// One field a refusal names, as the PSA reports it (`summary`, `status/name`, `companyID`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// What kind of failure, for the caller's decisions (retry, look up first, fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The credentials were refused.
    Unauthorized,
    /// The account lacks a permission.
    Forbidden,
    /// The thing asked for (a company ID, a ticket, a board) does not exist.
    NotFound,
    /// The PSA refused the request's content (a ticket field); `field_errors` name the fields when it said.
    Validation,
    /// The PSA is throttling; `retry_after` when it said how long.
    RateLimited { retry_after: Option<Duration> },
    /// A temporary problem: `answered` is false when no answer came at all (a timeout, a broken connection), so
    /// that after a POST the ticket may still be being created.
    Transient { answered: bool },
    /// An answer that is not the PSA's API (HTML, garbage, the wrong shape).
    Unexpected,
    /// More than the dashboard reads from one PSA.
    TooLarge,
    /// The address may not be called (outbound-safety rules) or is not valid.
    Refused,
    /// The integration's own request budget for this PSA account is spent until this time (ms since the epoch).
    BudgetSpent { until: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sentence}")]
pub struct TicketingError {
    pub kind: ErrorKind,
    /// A sentence a partner can act on.
    pub sentence: String,
    pub field_errors: Vec<FieldError>,
}

impl TicketingError {
    pub fn new(kind: ErrorKind, sentence: impl Into<String>) -> Self {
        Self { kind, sentence: sentence.into(), field_errors: Vec::new() }
    }

    /// Whether the same call may succeed later: throttling, a spent budget, temporary problems.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::RateLimited { .. } | ErrorKind::Transient { .. } | ErrorKind::BudgetSpent { .. })
    }

    /// No answer came at all: after a POST the PSA may still be creating the ticket.
    pub fn is_unanswered(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient { answered: false })
    }

    /// After a ticket POST: whether the ticket may exist despite the error (no answer, a temporary fault, or an
    /// answer we could not read, even a 2xx one). Only a clear refusal says "not created".
    pub fn may_have_created(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient { .. } | ErrorKind::Unexpected)
    }

    /// How long the PSA (or the budget) asked us to wait, if it said.
    pub fn wait(&self, now_millis: i64) -> Option<Duration> {
        match self.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            ErrorKind::BudgetSpent { until } => {
                Some(Duration::from_millis(until.saturating_sub(now_millis).max(0) as u64))
            }
            _ => None,
        }
    }

    /// Whether the error tells nothing about the PSA (a spent request budget: nothing was sent), so that an
    /// integration's health stays as it was.
    pub fn tells_of_the_psa(&self) -> bool {
        !matches!(self.kind, ErrorKind::BudgetSpent { .. })
    }

    /// The field errors of a refusal (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        &self.field_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_retry_and_doubt() {
        let e = |kind| TicketingError::new(kind, "s");
        assert!(e(ErrorKind::RateLimited { retry_after: None }).is_retryable());
        assert!(e(ErrorKind::BudgetSpent { until: 10 }).is_retryable());
        assert_eq!(e(ErrorKind::BudgetSpent { until: 10_000 }).wait(4_000), Some(Duration::from_secs(6)));
        assert_eq!(e(ErrorKind::BudgetSpent { until: 10 }).wait(4_000), Some(Duration::ZERO));
        assert!(e(ErrorKind::Transient { answered: false }).is_unanswered());
        assert!(!e(ErrorKind::Transient { answered: true }).is_unanswered());
        assert!(e(ErrorKind::Unexpected).may_have_created());
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Validation,
            ErrorKind::Unexpected,
            ErrorKind::TooLarge,
            ErrorKind::Refused,
        ] {
            assert!(!e(kind).is_retryable(), "{kind:?}");
        }
        assert!(!e(ErrorKind::Validation).may_have_created());
        assert_eq!(e(ErrorKind::Forbidden).to_string(), "s");
    }
}
