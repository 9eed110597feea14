//! The one error type every server function returns.
//!
//! Each variant renders a sentence a partner can act on. Causes (database errors, stack details) are logged with
//! `tracing` where they happen and never travel to the browser: the `Internal` variant carries no detail.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session: the partner must sign in (HTTP 401).
    #[error("Your session has ended. Please sign in again.")]
    Unauthorized,
    /// Input the partner can correct; the message says how (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The thing does not exist for this partner (HTTP 404). Another partner's data is reported the same way.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing data, e.g. a duplicate name (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; `retry_after_secs` says when to try again (HTTP 429).
    #[error("Too many failed sign-in attempts. Please wait {} minute(s) and try again.", retry_after_secs.div_ceil(60).max(1))]
    RateLimited { retry_after_secs: u64 },
    /// Too many requests at once (every password-hashing slot busy); try again shortly (HTTP 429).
    #[error("Signing in is busy right now. Please try again in a few seconds.")]
    Busy { retry_after_secs: u64 },
    /// Too many PSA calls from the wizard in a minute (each may name a new account); try again then (HTTP 429).
    #[error("Too many requests to your PSA from the wizard. Please wait {retry_after_secs} seconds and try again.")]
    TooManyCalls { retry_after_secs: u64 },
    /// The PSA answered with an error, or could not be reached; the sentence says what to check (HTTP 502).
    #[error("{0}")]
    Psa(String),
    /// A failure on our side; the cause was logged on the server (HTTP 500).
    #[error("Something went wrong on our side. Please try again; if it keeps happening, contact support.")]
    Internal,
    /// The browser could not talk to the server, or the reply was unreadable.
    #[error("Could not reach the server. Check your connection and try again.")]
    Network,
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// The HTTP status a server function answers with when it fails with this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Invalid(_) => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::RateLimited { .. } | Self::Busy { .. } | Self::TooManyCalls { .. } => 429,
            Self::Psa(_) => 502,
            Self::Internal | Self::Network => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::Network
            }
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                Self::Invalid("The form was incomplete. Please fill in every field and try again.".into())
            }
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use crate::db::StoreError;

    impl From<StoreError> for AppError {
        fn from(err: StoreError) -> Self {
            match err {
                StoreError::Db(cause) => {
                    tracing::error!(error = %cause, "database error");
                    AppError::Internal
                }
                StoreError::Conflict(message) => AppError::Conflict(message),
                StoreError::NotFound(message) => AppError::NotFound(message),
            }
        }
    }

    /// Sets the HTTP status of the current server-function response from the error, so an API caller sees 401,
    /// 404, 409… rather than a generic 500.
    pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(err) = &result
            && let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
            && let Ok(status) = http::StatusCode::from_u16(err.status())
        {
            options.set_status(status);
            if let AppError::RateLimited { retry_after_secs }
            | AppError::Busy { retry_after_secs }
            | AppError::TooManyCalls { retry_after_secs } = err
            {
                options.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(*retry_after_secs));
            }
        }
        result
    }
}

#[cfg(feature = "ssr")]
pub use ssr::respond;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_message_rounds_up_to_minutes() {
        let err = AppError::RateLimited { retry_after_secs: 61 };
        assert_eq!(err.to_string(), "Too many failed sign-in attempts. Please wait 2 minute(s) and try again.");
        let err = AppError::RateLimited { retry_after_secs: 0 };
        assert!(err.to_string().contains("wait 1 minute"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::from_server_fn_error(ServerFnErrorErr::ServerError("password=hunter2".into()));
        assert_eq!(err, AppError::Internal);
        assert!(!err.to_string().contains("hunter2"));
    }
}
