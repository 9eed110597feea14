//! Integrations: the partner's ticketing integrations. Shared DTOs and validation, the server functions, the
//! Integrations table (with live health), and on the server the store and the credential sealing.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub mod matching;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
mod table;
mod wizard;
pub mod wizard_api;
#[cfg(feature = "ssr")]
pub mod wizard_service;

pub use table::IntegrationsPage;
pub use wizard::WizardPage;
pub use wizard_api::{CompanyMatch, TestOutcome};

pub use crate::ticketing::System;

pub const NAME_MAX_CHARS: usize = 100;

/// The health of an integration, from the most recent ConnectWise request it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    NotChecked,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_db(self) -> &'static str {
        match self {
            Health::NotChecked => "not_checked",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    pub fn from_db(value: &str) -> Self {
        match value {
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            _ => Health::NotChecked,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Health::NotChecked => "Not checked",
            Health::Healthy => "Healthy",
            Health::Unhealthy => "Unhealthy",
        }
    }
}

/// How the integration signs in to ConnectWise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AuthKind {
    /// An API member's public and private key (recommended by the guide).
    #[default]
    ApiKeys,
    /// An integrator username and password.
    Integrator,
}

impl AuthKind {
    pub fn as_db(self) -> &'static str {
        match self {
            AuthKind::ApiKeys => "api_keys",
            AuthKind::Integrator => "integrator",
        }
    }

    pub fn from_db(value: &str) -> Self {
        if value == "integrator" { AuthKind::Integrator } else { AuthKind::ApiKeys }
    }
}

/// A row of the Integrations table. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IntegrationRow {
    pub id: i64,
    pub name: String,
    pub system: String,
    pub active: bool,
    pub health: Health,
    pub health_error: Option<String>,
    /// When health was last recorded, formatted on the server in UTC (identical in SSR and hydration).
    pub health_at: Option<String>,
    pub organizations: Vec<String>,
    /// The PSA account's requests this hour against its budget, when the system keeps one.
    #[serde(default)]
    pub requests: Option<RequestUse>,
}

/// An account's use of its request budget this UTC hour, for the Integrations table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestUse {
    pub this_hour: u64,
    /// What the budget allows in a whole hour (60 × a per-minute budget).
    pub hourly_allowance: u64,
    /// The budget as set, e.g. "1,000 requests per minute".
    pub budget: String,
    /// Whether the current window's budget is used up (deliveries wait).
    pub spent: bool,
}

impl RequestUse {
    pub fn percent(&self) -> u64 {
        self.this_hour.min(self.hourly_allowance) * 100 / self.hourly_allowance.max(1)
    }
}

/// What the wizard saves. Blank secret fields keep the stored values when editing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IntegrationInput {
    /// Fixed once saved.
    #[serde(default)]
    pub system: System,
    pub name: String,
    /// ConnectWise: the site, company ID and keys or login below.
    pub site: String,
    pub company_id: String,
    pub auth_kind: AuthKind,
    pub public_key: String,
    pub private_key: String,
    pub username: String,
    pub password: String,
    pub mapping: Vec<crate::mapping::MappingRow>,
    /// The PSA account's request budget; `None`: the system's default.
    #[serde(default)]
    pub request_budget: Option<RequestBudgetInput>,
    /// Autotask: the API user, its secret and tracking identifier, and the dedupe field.
    #[serde(default)]
    pub autotask: AutotaskInput,
}

/// Secrets never reach a log through `{:?}`.
impl std::fmt::Debug for IntegrationInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |secret: &str| if secret.is_empty() { "" } else { "***" };
        f.debug_struct("IntegrationInput")
            .field("system", &self.system)
            .field("name", &self.name)
            .field("site", &self.site)
            .field("company_id", &self.company_id)
            .field("auth_kind", &self.auth_kind)
            .field("public_key", &self.public_key)
            .field("private_key", &masked(&self.private_key))
            .field("username", &self.username)
            .field("password", &masked(&self.password))
            .field("mapping", &self.mapping)
            .field("request_budget", &self.request_budget)
            .field("autotask", &self.autotask)
            .finish()
    }
}

/// Step 3 for Autotask. Blank secret and tracking identifier keep the stored ones (for the same API user).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AutotaskInput {
    /// The API user's name (an API-only resource), e.g. `dwid-api@msp.example`.
    pub username: String,
    pub secret: String,
    /// The API tracking identifier (integration code) of the API user.
    pub integration_code: String,
    /// The ticket user-defined field (Text) the dedupe key is written to; blank: `DWID Reference`.
    pub dedupe_udf: String,
}

/// Secrets never reach a log through `{:?}`.
impl std::fmt::Debug for AutotaskInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutotaskInput")
            .field("username", &self.username)
            .field("secret", &"***")
            .field("integration_code", &"***")
            .field("dedupe_udf", &self.dedupe_udf)
            .finish()
    }
}

/// The user-defined field Autotask tickets carry their Dark Web ID reference in, unless the partner names another.
pub use crate::ticketing::system::AUTOTASK_DEFAULT_DEDUPE_UDF as DEFAULT_DEDUPE_UDF;

/// The window of a request budget, as the wizard offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum BudgetWindow {
    #[default]
    Minute,
    Hour,
}

impl BudgetWindow {
    pub fn seconds(self) -> u64 {
        match self {
            BudgetWindow::Minute => 60,
            BudgetWindow::Hour => 3_600,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BudgetWindow::Minute => "minute",
            BudgetWindow::Hour => "hour",
        }
    }
}

/// "At most `requests` requests per `window`" to the PSA account, for every process together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBudgetInput {
    pub requests: u32,
    pub window: BudgetWindow,
}

/// The smallest budget the wizard takes: one delivery attempt may need a few requests (look the ticket up, find
/// the company, post), and each must fit in one window, or a delivery would wait forever.
pub const MIN_BUDGET_REQUESTS: u32 = 10;

/// The largest budget the wizard takes: beyond it the PSA's own limits (ConnectWise throttles, Autotask suspends
/// the whole database over 10,000 an hour) are long reached.
pub const MAX_BUDGET_REQUESTS: u32 = 100_000;

impl RequestBudgetInput {
    /// Whether the budget can be used, in words when not.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_BUDGET_REQUESTS..=MAX_BUDGET_REQUESTS).contains(&self.requests) {
            return Err(format!(
                "The request budget must be between {MIN_BUDGET_REQUESTS} and 100,000 requests per {}: a delivery \
                 needs a few requests in one window.",
                self.window.label()
            ));
        }
        Ok(())
    }
}

/// A saved integration as the wizard edits it: never any secret, only whether one is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationSettings {
    pub id: i64,
    #[serde(default)]
    pub system: System,
    pub name: String,
    pub site: String,
    pub company_id: String,
    pub auth_kind: AuthKind,
    pub credentials_set: bool,
    pub mapping: Vec<crate::mapping::MappingRow>,
    #[serde(default)]
    pub request_budget: Option<RequestBudgetInput>,
    /// Autotask: the API user and the dedupe field (the secret and tracking identifier stay sealed).
    #[serde(default)]
    pub autotask_username: String,
    #[serde(default)]
    pub dedupe_udf: String,
    /// The ticket fields as read from the PSA at the last save, for a system whose accounts differ (Autotask).
    #[serde(default)]
    pub catalog: Option<crate::mapping::Catalog>,
}

/// A valid integration name, trimmed: 1–100 characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    crate::names::validate(name, NAME_MAX_CHARS, "Enter a name for the integration.")
}

pub use crate::names::key as name_key;

#[server(endpoint = "integrations/list")]
pub async fn list_integrations() -> Result<Vec<IntegrationRow>, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            service::list(&crate::state::db(), partner.id).await
        }
        .await,
    )
}

#[server(endpoint = "integrations/get")]
pub async fn get_integration(id: i64) -> Result<IntegrationSettings, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            let mut settings = service::settings(&state.db, partner.id, id).await?;
            // The wizard renders the mapping at once with the system's own fields when they are fixed.
            if settings.catalog.is_none() {
                settings.catalog = state.ticketing.fixed_catalog(settings.system);
            }
            Ok(settings)
        }
        .await,
    )
}

/// Creates (`id` = None) or updates an integration; returns its id. New integrations are Inactive.
#[server(endpoint = "integrations/save", input = server_fn::codec::Json)]
pub async fn save_integration(id: Option<i64>, input: IntegrationInput) -> Result<i64, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            service::save(&state, partner.id, id, input, &crate::activity::Actor::of_request(&partner.email)).await
        }
        .await,
    )
}

#[server(endpoint = "integrations/set_active")]
pub async fn set_integration_active(id: i64, active: bool) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            store::set_active(&crate::state::db(), partner.id, id, active, &actor).await?;
            if active {
                crate::state::wake_deliveries();
            }
            Ok(())
        }
        .await,
    )
}

/// Removes an integration with its stored secrets and associations.
#[server(endpoint = "integrations/remove")]
pub async fn remove_integration(id: i64) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            Ok(store::remove(&crate::state::db(), partner.id, id, &actor).await?)
        }
        .await,
    )
}

/// Ticks or unticks one integration for one organization.
#[server(endpoint = "integrations/associate")]
pub async fn set_organization_integration(
    organization_id: i64,
    integration_id: i64,
    associated: bool,
) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let db = crate::state::db();
            let actor = crate::activity::Actor::of_request(&partner.email);
            Ok(store::set_association(&db, partner.id, organization_id, integration_id, associated, &actor).await?)
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  CW production ").as_deref(), Ok("CW production"));
        assert!(validate_name(" ").is_err());
        assert!(validate_name(&"ü".repeat(100)).is_ok());
        assert!(validate_name(&"ü".repeat(101)).is_err());
        assert_eq!(name_key("CW Prod"), name_key("cw prod"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut input =
            IntegrationInput { private_key: "cw-private".into(), password: "cw-password".into(), ..Default::default() };
        input.autotask.secret = "at-secret".into();
        input.autotask.integration_code = "at-code".into();
        let shown = format!("{input:?}");
        for secret in ["cw-private", "cw-password", "at-secret", "at-code"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn stored_enums_round_trip() {
        for health in [Health::NotChecked, Health::Healthy, Health::Unhealthy] {
            assert_eq!(Health::from_db(health.as_db()), health);
        }
        for kind in [AuthKind::ApiKeys, AuthKind::Integrator] {
            assert_eq!(AuthKind::from_db(kind.as_db()), kind);
        }
    }
}
