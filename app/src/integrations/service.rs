//! The integration service (server only): validates what the wizard sends, seals credentials before they reach
//! the store, opens them for ConnectWise calls, and records health from every call's outcome.

use crate::connectwise::{Auth, Credentials};
use crate::connectwise_site::{SiteMode, validate_company_id, validate_site};
use crate::db::Db;
use crate::error::AppError;
use crate::mapping::MappingRow;
use crate::request_budget::{AccountKey, Budget, RequestBudgets};
use crate::state::AppState;
use crate::ticketing::{Connection, System, TicketingError};

use super::store::{self, IntegrationWrite, StoredIntegration};
use super::{
    AuthKind, CONNECTWISE, IntegrationInput, IntegrationRow, IntegrationSettings, RequestBudgetInput, RequestUse,
    validate_name,
};

/// The associated data sealed credentials are bound to: a secret moved onto another partner's row cannot be
/// opened.
fn credentials_context(partner_id: i64) -> String {
    format!("dwid:partner:{partner_id}:connectwise-credentials")
}

/// `2026-11-27 15:43 UTC` (now in [`crate::dates`], shared with the Activity page).
pub use crate::dates::format_millis as format_time;

fn system_label(system: &str) -> String {
    System::from_db(system).map_or_else(|| system.to_string(), |s| s.short_label().to_string())
}

pub async fn list(db: &Db, partner_id: i64) -> Result<Vec<IntegrationRow>, AppError> {
    let integrations = store::list(db, partner_id).await?;
    let accounts: Vec<Option<(AccountKey, Budget)>> = integrations.iter().map(|(i, _)| budget_account(i)).collect();
    let keyed: Vec<(AccountKey, Budget)> = accounts.iter().flatten().cloned().collect();
    // The table still shows without the figures if they cannot be read.
    let usage = match RequestBudgets::new(db.clone()).usage(&keyed, crate::db::now_millis()).await {
        Ok(usage) => usage,
        Err(err) => {
            tracing::warn!(error = %err, "could not read request budget use");
            Default::default()
        }
    };
    Ok(integrations
        .into_iter()
        .zip(accounts)
        .map(|((i, organizations), account)| IntegrationRow {
            requests: account.and_then(|(key, _)| usage.get(&key)).map(|u| RequestUse {
                this_hour: u.this_hour,
                hourly_allowance: u.hourly_allowance,
                budget: u.budget.to_string(),
                spent: u.spent(),
            }),
            id: i.id,
            name: i.name,
            system: system_label(&i.system),
            active: i.active,
            health: i.health,
            health_error: i.health_error,
            health_at: i.health_at.map(format_time),
            organizations,
        })
        .collect())
}

/// The request budget account of a stored integration and its budget, when it can be told without asking the PSA
/// (ConnectWise: the site and company ID).
fn budget_account(stored: &StoredIntegration) -> Option<(AccountKey, Budget)> {
    let system = System::from_db(&stored.system)?;
    let budget = match stored_budget(stored) {
        Some(b) => Budget::new(b.requests, std::time::Duration::from_secs(b.window.seconds())).ok()?,
        None => crate::ticketing::default_budget(system),
    };
    let key = match system {
        System::ConnectWise => crate::connectwise::account_key(
            &budget_scope(stored.partner_id),
            &stored.site,
            &stored.company_id,
            &budget,
        )?,
        // Its account is the database that zone discovery names.
        System::Autotask => return None,
    };
    Some((key, budget))
}

fn parse_mapping(stored: &StoredIntegration) -> Vec<MappingRow> {
    serde_json::from_str(&stored.mapping_json).unwrap_or_else(|err| {
        tracing::error!(integration_id = stored.id, error = %err, "stored mapping is unreadable");
        Vec::new()
    })
}

pub async fn settings(db: &Db, partner_id: i64, id: i64) -> Result<IntegrationSettings, AppError> {
    let stored = store::get(db, partner_id, id).await?;
    let request_budget = stored_budget(&stored);
    Ok(IntegrationSettings {
        id: stored.id,
        mapping: parse_mapping(&stored),
        name: stored.name,
        site: stored.site,
        company_id: stored.company_id,
        auth_kind: stored.auth_kind,
        credentials_set: !stored.credentials_sealed.is_empty(),
        request_budget,
    })
}

fn site_mode(state: &AppState) -> SiteMode {
    if state.config.is_production() { SiteMode::Production } else { SiteMode::Dev }
}

/// The credentials from the form; blank secret fields fall back to `existing` (the stored ones, when editing an
/// integration that signs in the same way).
fn credentials_from_input(input: &IntegrationInput, existing: Option<&Auth>) -> Result<Auth, AppError> {
    let keep = |typed: &str, stored: Option<&str>, what: &str| -> Result<String, AppError> {
        let typed = typed.trim();
        if !typed.is_empty() {
            Ok(typed.to_string())
        } else {
            stored.map(str::to_string).ok_or_else(|| AppError::invalid(format!("Enter the {what}.")))
        }
    };
    match input.auth_kind {
        AuthKind::ApiKeys => {
            let (public, private) = match existing {
                Some(Auth::ApiMember { public_key, private_key }) => {
                    (Some(public_key.as_str()), Some(private_key.as_str()))
                }
                _ => (None, None),
            };
            Ok(Auth::ApiMember {
                public_key: keep(&input.public_key, public, "API member's public key")?,
                private_key: keep(&input.private_key, private, "API member's private key")?,
            })
        }
        AuthKind::Integrator => {
            let (user, pass) = match existing {
                Some(Auth::Integrator { username, password }) => (Some(username.as_str()), Some(password.as_str())),
                _ => (None, None),
            };
            Ok(Auth::Integrator {
                username: keep(&input.username, user, "integrator username")?,
                // Passwords are taken as typed: spaces may be part of them.
                password: if input.password.is_empty() {
                    pass.map(str::to_string).ok_or_else(|| AppError::invalid("Enter the integrator password."))?
                } else {
                    input.password.clone()
                },
            })
        }
    }
}

pub fn open_credentials(state: &AppState, stored: &StoredIntegration) -> Result<Credentials, AppError> {
    open_stored_credentials(&state.secrets, stored)
}

/// The stored integration's connection for the ticketing interface, its secrets opened.
pub fn open_connection(
    secrets: &crate::secrets::SecretBox,
    stored: &StoredIntegration,
) -> Result<Connection, AppError> {
    Ok(connection_for(stored.partner_id, &open_stored_credentials(secrets, stored)?, stored_budget(stored)))
}

/// The interface's connection for these credentials of the partner, with the integration's request budget when
/// it set one. Budgets are the partner's own (see [`Connection::budget_scope`]).
pub fn connection_for(partner_id: i64, credentials: &Credentials, budget: Option<RequestBudgetInput>) -> Connection {
    let mut connection = credentials.connection();
    connection.budget_scope = budget_scope(partner_id);
    if let (Some(budget), Some(settings)) = (budget, connection.settings.as_object_mut()) {
        settings.insert(
            "request_budget".into(),
            serde_json::json!({ "requests": budget.requests, "window_secs": budget.window.seconds() }),
        );
    }
    connection
}

pub fn budget_scope(partner_id: i64) -> String {
    format!("partner {partner_id}")
}

/// The request budget kept in the integration's settings, if it set one.
pub fn stored_budget(stored: &StoredIntegration) -> Option<RequestBudgetInput> {
    let settings: serde_json::Value = serde_json::from_str(&stored.settings_json).ok()?;
    serde_json::from_value(settings.get("request_budget")?.clone()).ok()
}

pub fn open_stored_credentials(
    secrets: &crate::secrets::SecretBox,
    stored: &StoredIntegration,
) -> Result<Credentials, AppError> {
    let json = secrets.open(&stored.credentials_sealed, &credentials_context(stored.partner_id)).map_err(|err| {
        tracing::error!(integration_id = stored.id, error = %err, "cannot open stored credentials");
        AppError::Internal
    })?;
    let auth: Auth = serde_json::from_str(&json).map_err(|err| {
        tracing::error!(integration_id = stored.id, error = %err, "stored credentials are unreadable");
        AppError::Internal
    })?;
    Ok(Credentials { site: stored.site.clone(), company_id: stored.company_id.clone(), auth })
}

/// Validates the form and returns the credentials it describes (for "Test connection" before saving, too), and the
/// saved integration when these are exactly its saved settings: only then does a call's outcome belong to its
/// health.
///
/// Stored keys fill blank key fields only for the site and company they were saved for: a changed site gets the
/// keys typed again, so a stored secret is never sent to a host it was not given for.
pub async fn credentials_for(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: &IntegrationInput,
) -> Result<(Credentials, Option<StoredIntegration>), AppError> {
    let site = validate_site(&input.site, site_mode(state)).map_err(|err| AppError::invalid(err.to_string()))?;
    let company_id = validate_company_id(&input.company_id).map_err(|err| AppError::invalid(err.to_string()))?;
    if let Some(budget) = &input.request_budget {
        budget.validate().map_err(AppError::Invalid)?;
    }
    let site = site.to_string();
    let existing = match id {
        Some(id) => Some(store::get(&state.db, partner_id, id).await?),
        None => None,
    };
    let same_place =
        existing.as_ref().is_some_and(|s| s.site == site && s.company_id.eq_ignore_ascii_case(&company_id));
    let blanks = match input.auth_kind {
        AuthKind::ApiKeys => input.public_key.trim().is_empty() || input.private_key.trim().is_empty(),
        AuthKind::Integrator => input.username.trim().is_empty() || input.password.is_empty(),
    };
    if blanks && existing.is_some() && !same_place {
        return Err(AppError::invalid(
            "The site or company ID changed: enter the keys again. Stored keys are only used with the site they were \
             saved for.",
        ));
    }
    // Opened only when needed, so keys typed afresh repair an integration whose stored ones cannot be read.
    let stored_auth = match &existing {
        Some(stored) if same_place && blanks => Some(open_credentials(state, stored)?.auth),
        _ => None,
    };
    let auth = credentials_from_input(input, stored_auth.as_ref())?;
    let saved = match existing {
        Some(stored) if same_place => {
            let unchanged = match stored_auth {
                Some(stored_auth) => stored_auth == auth,
                None => open_credentials(state, &stored).is_ok_and(|c| c.auth == auth),
            };
            unchanged.then_some(stored)
        }
        _ => None,
    };
    Ok((Credentials { site, company_id, auth }, saved))
}

pub async fn save(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: IntegrationInput,
    actor: &crate::activity::Actor,
) -> Result<i64, AppError> {
    let name = validate_name(&input.name).map_err(AppError::Invalid)?;
    let (credentials, _) = credentials_for(state, partner_id, id, &input).await?;
    if let Some(first) = crate::mapping::validate(&input.mapping, None).first() {
        return Err(AppError::invalid(first.message.clone()));
    }
    let auth_json = serde_json::to_string(&credentials.auth).map_err(|_| AppError::Internal)?;
    let sealed = state.secrets.seal(&auth_json, &credentials_context(partner_id)).map_err(|err| {
        tracing::error!(error = %err, "cannot seal credentials");
        AppError::Internal
    })?;
    let mapping_json = serde_json::to_string(&input.mapping).map_err(|_| AppError::Internal)?;
    if let Some(budget) = &input.request_budget {
        budget.validate().map_err(AppError::Invalid)?;
    }
    let settings_json = serde_json::json!({ "request_budget": input.request_budget }).to_string();
    let write = IntegrationWrite {
        name: &name,
        system: CONNECTWISE,
        site: &credentials.site,
        company_id: &credentials.company_id,
        auth_kind: input.auth_kind,
        credentials_sealed: &sealed,
        mapping_json: &mapping_json,
        settings_json: &settings_json,
    };
    match id {
        Some(id) => {
            store::update(&state.db, partner_id, id, &write, actor).await?;
            tracing::info!(partner_id, integration_id = id, "integration updated");
            Ok(id)
        }
        None => {
            let max = state.config.max_integrations_per_partner;
            if store::count(&state.db, partner_id).await? >= max as i64 {
                return Err(AppError::Conflict(format!(
                    "You have reached the limit of {max} integrations. Remove one you no longer use, or contact \
                     support to raise the limit."
                )));
            }
            let id = store::create(&state.db, partner_id, &write, actor).await?;
            tracing::info!(partner_id, integration_id = id, "integration created");
            Ok(id)
        }
    }
}

/// Records an integration's health from the outcome of a PSA call and hands the outcome back, with the error as a
/// sentence the partner can act on.
pub async fn recorded<T>(
    db: &Db,
    integration_id: Option<i64>,
    outcome: Result<T, TicketingError>,
) -> Result<T, AppError> {
    // A spent request budget sent nothing: it says nothing of the PSA's health.
    let says_nothing = matches!(&outcome, Err(err) if !err.tells_of_the_psa());
    if let Some(id) = integration_id.filter(|_| !says_nothing) {
        let health = match &outcome {
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = store::record_health(db, id, health.as_ref().map(|_| ()).map_err(String::as_str)).await {
            tracing::error!(integration_id = id, error = %err, "could not record health");
        }
    }
    outcome.map_err(|err| AppError::Psa(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_795_794_180_000), "2026-11-27 15:43 UTC");
    }

    #[test]
    fn blank_secret_fields_keep_the_stored_ones_of_the_same_kind() {
        let stored = Auth::ApiMember { public_key: "pub".into(), private_key: "priv".into() };
        let mut input = IntegrationInput { auth_kind: AuthKind::ApiKeys, ..Default::default() };
        assert_eq!(credentials_from_input(&input, Some(&stored)).expect("kept"), stored);
        input.private_key = "new".into();
        assert_eq!(
            credentials_from_input(&input, Some(&stored)).expect("replaced"),
            Auth::ApiMember { public_key: "pub".into(), private_key: "new".into() }
        );
        // Switching to a username and password needs both.
        input.auth_kind = AuthKind::Integrator;
        input.username = "api-user".into();
        let err = credentials_from_input(&input, Some(&stored)).expect_err("password required");
        assert_eq!(err.to_string(), "Enter the integrator password.");
        // A new integration needs every field.
        let err = credentials_from_input(&IntegrationInput::default(), None).expect_err("keys required");
        assert_eq!(err.to_string(), "Enter the API member's public key.");
    }
}
