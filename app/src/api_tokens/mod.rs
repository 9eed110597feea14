//! Per-partner API tokens for the compromise import API (`Authorization: Bearer dwid_…`): the type the Settings
//! page lists, name validation and the server functions. Storage in [`store`] (server only).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod store;

pub const NAME_MAX_CHARS: usize = 100;

/// A token as listed: never the token itself, which is shown once when created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `dwid_` and the token's first 8 hex digits.
    pub prefix: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A token just created: the only time its value is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub value: String,
}

/// A valid token name, trimmed: 1–100 characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    crate::names::validate(name, NAME_MAX_CHARS, "Enter a name for the token, e.g. the system that will use it.")
}

#[server(endpoint = "api-tokens/list")]
pub async fn list_api_tokens() -> Result<Vec<ApiToken>, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            Ok(store::list(&crate::state::db(), partner.id).await?)
        }
        .await,
    )
}

#[server(endpoint = "api-tokens/create")]
pub async fn create_api_token(name: String) -> Result<CreatedToken, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let name = validate_name(&name).map_err(AppError::Invalid)?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            let (token, value) = store::create(&crate::state::db(), partner.id, &name, &actor).await?;
            tracing::info!(partner_id = partner.id, token_id = token.id, prefix = token.prefix, "API token created");
            Ok(CreatedToken { token, value })
        }
        .await,
    )
}

#[server(endpoint = "api-tokens/revoke")]
pub async fn revoke_api_token(id: i64) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            store::revoke(&crate::state::db(), partner.id, id, &actor).await?;
            tracing::info!(partner_id = partner.id, token_id = id, "API token revoked");
            Ok(())
        }
        .await,
    )
}
