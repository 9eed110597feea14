//! The integration service (server only): validates what the wizard sends, seals credentials before they reach
//! the store, opens them for PSA calls, and records health from every call's outcome.
//!
//! Per system, an integration keeps its settings in clear (ConnectWise: the site and company ID in their columns;
//! Autotask: the API user and the dedupe field in `settings`) and its secrets sealed (`credentials_sealed`: the
//! ConnectWise keys or login; Autotask's secret and tracking identifier), bound to the partner and the system.

use serde_json::{Value, json};

use crate::autotask::AtCredentials;
use crate::connectwise::{Auth, Credentials};
use crate::connectwise_site::{SiteMode, validate_company_id, validate_site};
use crate::db::Db;
use crate::error::AppError;
use crate::mapping::{Catalog, MappingRow};
use crate::request_budget::{AccountKey, Budget, RequestBudgets};
use crate::state::AppState;
use crate::ticketing::{Connection, ErrorKind, System, TicketingError};

use super::store::{self, IntegrationWrite, StoredIntegration};
use super::{
    AuthKind, DEFAULT_DEDUPE_UDF, IntegrationInput, IntegrationRow, IntegrationSettings, RequestBudgetInput,
    RequestUse, validate_name,
};

/// The associated data sealed credentials are bound to: a secret moved onto another partner's row, or read as
/// another system's, cannot be opened.
fn credentials_context(partner_id: i64, system: System) -> String {
    match system {
        System::ConnectWise => format!("dwid:partner:{partner_id}:connectwise-credentials"),
        System::Autotask => format!("dwid:partner:{partner_id}:autotask-credentials"),
    }
}

/// An integration's credentials, whichever system it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsaCredentials {
    ConnectWise(Credentials),
    Autotask(AtCredentials),
}

impl PsaCredentials {
    pub fn system(&self) -> System {
        match self {
            PsaCredentials::ConnectWise(_) => System::ConnectWise,
            PsaCredentials::Autotask(_) => System::Autotask,
        }
    }

    /// The ticketing interface's connection (without a budget scope).
    pub fn connection(&self) -> Connection {
        match self {
            PsaCredentials::ConnectWise(c) => c.connection(),
            PsaCredentials::Autotask(c) => c.connection(),
        }
    }

    /// What is sealed: the secrets alone.
    fn sealed_json(&self) -> Result<String, AppError> {
        let value = match self {
            PsaCredentials::ConnectWise(c) => serde_json::to_value(&c.auth),
            PsaCredentials::Autotask(c) => Ok(json!({ "secret": c.secret, "integration_code": c.integration_code })),
        };
        value.map(|v| v.to_string()).map_err(|_| AppError::Internal)
    }
}

/// The Autotask part of an integration's `settings`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct AutotaskSettings {
    username: String,
    dedupe_udf: String,
    /// The database whose request budget the integration spends, as zone discovery named it at the last save.
    #[serde(default)]
    account: Option<String>,
}

fn settings_value(stored: &StoredIntegration) -> Value {
    serde_json::from_str(&stored.settings_json).unwrap_or(Value::Null)
}

fn autotask_settings(stored: &StoredIntegration) -> Option<AutotaskSettings> {
    serde_json::from_value(settings_value(stored).get("autotask")?.clone()).ok()
}

/// The catalog a stored integration's tickets are built with: the system's own when it is the same for every
/// account (ConnectWise), else the one read from the PSA when the integration was saved. `None`: unreadable.
pub fn stored_catalog(ticketing: &crate::systems::Ticketing, stored: &StoredIntegration) -> Option<Catalog> {
    let system = System::from_db(&stored.system)?;
    ticketing
        .fixed_catalog(system)
        .or_else(|| serde_json::from_value(settings_value(stored).get("catalog")?.clone()).ok())
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
/// (ConnectWise: the site and company ID; Autotask: the database zone discovery named at the last save).
fn budget_account(stored: &StoredIntegration) -> Option<(AccountKey, Budget)> {
    let system = System::from_db(&stored.system)?;
    let budget = match stored_budget(stored) {
        Some(b) => Budget::new(b.requests, std::time::Duration::from_secs(b.window.seconds())).ok()?,
        None => crate::ticketing::default_budget(system),
    };
    let scope = budget_scope(stored.partner_id);
    let key = match system {
        System::ConnectWise => crate::connectwise::account_key(&scope, &stored.site, &stored.company_id, &budget)?,
        System::Autotask => {
            crate::ticketing::budget_key(system, &scope, &autotask_settings(stored)?.account?, &budget)?
        }
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
    let autotask = autotask_settings(&stored).unwrap_or_default();
    let catalog = serde_json::from_value(settings_value(&stored).get("catalog").cloned().unwrap_or(Value::Null)).ok();
    Ok(IntegrationSettings {
        id: stored.id,
        system: System::from_db(&stored.system).unwrap_or_default(),
        mapping: parse_mapping(&stored),
        name: stored.name,
        site: stored.site,
        company_id: stored.company_id,
        auth_kind: stored.auth_kind,
        credentials_set: !stored.credentials_sealed.is_empty(),
        request_budget,
        autotask_username: autotask.username,
        dedupe_udf: autotask.dedupe_udf,
        catalog,
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

pub fn open_credentials(state: &AppState, stored: &StoredIntegration) -> Result<PsaCredentials, AppError> {
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
pub fn connection_for(partner_id: i64, credentials: &PsaCredentials, budget: Option<RequestBudgetInput>) -> Connection {
    let mut connection = credentials.connection();
    connection.budget_scope = budget_scope(partner_id);
    if let (Some(budget), Some(settings)) = (budget, connection.settings.as_object_mut()) {
        settings.insert(
            "request_budget".into(),
            json!({ "requests": budget.requests, "window_secs": budget.window.seconds() }),
        );
    }
    connection
}

pub fn budget_scope(partner_id: i64) -> String {
    format!("partner {partner_id}")
}

/// The request budget kept in the integration's settings, if it set one.
pub fn stored_budget(stored: &StoredIntegration) -> Option<RequestBudgetInput> {
    serde_json::from_value(settings_value(stored).get("request_budget")?.clone()).ok()
}

pub fn open_stored_credentials(
    secrets: &crate::secrets::SecretBox,
    stored: &StoredIntegration,
) -> Result<PsaCredentials, AppError> {
    let unreadable = |what: &str| {
        tracing::error!(integration_id = stored.id, what, "stored credentials are unreadable");
        AppError::Internal
    };
    let system = System::from_db(&stored.system).ok_or_else(|| unreadable("unknown system"))?;
    let json =
        secrets.open(&stored.credentials_sealed, &credentials_context(stored.partner_id, system)).map_err(|err| {
            tracing::error!(integration_id = stored.id, error = %err, "cannot open stored credentials");
            AppError::Internal
        })?;
    match system {
        System::ConnectWise => {
            let auth: Auth = serde_json::from_str(&json).map_err(|_| unreadable("connectwise secrets"))?;
            Ok(PsaCredentials::ConnectWise(Credentials {
                site: stored.site.clone(),
                company_id: stored.company_id.clone(),
                auth,
            }))
        }
        System::Autotask => {
            let secrets: Value = serde_json::from_str(&json).map_err(|_| unreadable("autotask secrets"))?;
            let text = |key: &str| secrets.get(key).and_then(Value::as_str).map(str::to_owned);
            let settings = autotask_settings(stored).ok_or_else(|| unreadable("autotask settings"))?;
            let mut credentials = AtCredentials::new(
                &settings.username,
                &text("secret").ok_or_else(|| unreadable("autotask secret"))?,
                &text("integration_code").ok_or_else(|| unreadable("autotask tracking identifier"))?,
            );
            credentials.dedupe_udf = settings.dedupe_udf;
            Ok(PsaCredentials::Autotask(credentials))
        }
    }
}

/// Validates the form and returns the credentials it describes (for "Test connection" before saving, too), and the
/// saved integration when these are exactly its saved settings: only then does a call's outcome belong to its
/// health.
///
/// Stored secrets fill blank secret fields only for the place they were saved for (ConnectWise: the site and
/// company ID; Autotask: the API user): a changed one gets the secrets typed again, so a stored secret is never
/// sent anywhere it was not given for. An integration's system cannot change.
pub async fn credentials_for(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: &IntegrationInput,
) -> Result<(PsaCredentials, Option<StoredIntegration>), AppError> {
    if let Some(budget) = &input.request_budget {
        budget.validate().map_err(AppError::Invalid)?;
    }
    let existing = match id {
        Some(id) => Some(store::get(&state.db, partner_id, id).await?),
        None => None,
    };
    if let Some(stored) = &existing
        && stored.system != input.system.as_db()
    {
        return Err(AppError::invalid(format!(
            "An integration's ticketing system cannot be changed: add a new integration for {}.",
            input.system.label()
        )));
    }
    let (credentials, same_place) = match input.system {
        System::ConnectWise => connectwise_credentials(state, input, existing.as_ref())?,
        System::Autotask => autotask_credentials(state, input, existing.as_ref())?,
    };
    let saved = match existing {
        Some(stored) if same_place => {
            // Blanks filled from the store, or typed afresh: the saved integration's own settings only if equal.
            let unchanged = open_credentials(state, &stored).is_ok_and(|c| c == credentials);
            unchanged.then_some(stored)
        }
        _ => None,
    };
    Ok((credentials, saved))
}

/// The stored integration's credentials when blank secret fields may take them, refused when the place changed.
fn stored_for_blanks(
    state: &AppState,
    existing: Option<&StoredIntegration>,
    same_place: bool,
    blanks: bool,
    changed: &str,
) -> Result<Option<PsaCredentials>, AppError> {
    match existing {
        Some(_) if blanks && !same_place => Err(AppError::invalid(changed.to_owned())),
        // Opened only when needed, so secrets typed afresh repair an integration whose stored ones cannot be read.
        Some(stored) if blanks => Ok(Some(open_credentials(state, stored)?)),
        _ => Ok(None),
    }
}

/// ConnectWise's step 3: the site and company ID, and the keys or the login. Answers the credentials and whether
/// the place is the saved one.
fn connectwise_credentials(
    state: &AppState,
    input: &IntegrationInput,
    existing: Option<&StoredIntegration>,
) -> Result<(PsaCredentials, bool), AppError> {
    let site = validate_site(&input.site, site_mode(state)).map_err(|err| AppError::invalid(err.to_string()))?;
    let company_id = validate_company_id(&input.company_id).map_err(|err| AppError::invalid(err.to_string()))?;
    let site = site.to_string();
    let same_place = existing.is_some_and(|s| s.site == site && s.company_id.eq_ignore_ascii_case(&company_id));
    let blanks = match input.auth_kind {
        AuthKind::ApiKeys => input.public_key.trim().is_empty() || input.private_key.trim().is_empty(),
        AuthKind::Integrator => input.username.trim().is_empty() || input.password.is_empty(),
    };
    let stored = stored_for_blanks(
        state,
        existing,
        same_place,
        blanks,
        "The site or company ID changed: enter the keys again. Stored keys are only used with the site they were \
         saved for.",
    )?;
    let stored_auth = match stored {
        Some(PsaCredentials::ConnectWise(c)) => Some(c.auth),
        _ => None,
    };
    let auth = credentials_from_input(input, stored_auth.as_ref())?;
    Ok((PsaCredentials::ConnectWise(Credentials { site, company_id, auth }), same_place))
}

/// The longest API user name and dedupe field name taken (Autotask's own limits are lower).
const AUTOTASK_NAME_MAX: usize = 200;

/// Autotask's step 3: the API user, its secret and tracking identifier, and the dedupe field.
fn autotask_credentials(
    state: &AppState,
    input: &IntegrationInput,
    existing: Option<&StoredIntegration>,
) -> Result<(PsaCredentials, bool), AppError> {
    let typed = &input.autotask;
    let username = typed.username.trim();
    if username.is_empty() {
        return Err(AppError::invalid("Enter the Autotask API user's name (an API-only resource's username)."));
    }
    if username.chars().count() > AUTOTASK_NAME_MAX || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            "The API user's name is the username of an Autotask API-only resource, such as dwid-api@msp.example: \
             no spaces.",
        ));
    }
    let dedupe_udf = match typed.dedupe_udf.trim() {
        "" => DEFAULT_DEDUPE_UDF,
        name => name,
    };
    if dedupe_udf.chars().count() > AUTOTASK_NAME_MAX || dedupe_udf.chars().any(char::is_control) {
        return Err(AppError::invalid("Enter the name of a ticket user-defined field of Autotask."));
    }
    let same_place =
        existing.and_then(autotask_settings).is_some_and(|saved| saved.username.eq_ignore_ascii_case(username));
    let blanks = typed.secret.is_empty() || typed.integration_code.trim().is_empty();
    let stored = stored_for_blanks(
        state,
        existing,
        same_place,
        blanks,
        "The API user changed: enter its secret and tracking identifier again. Stored secrets are only used with the \
         API user they were saved for.",
    )?;
    let stored = match stored {
        Some(PsaCredentials::Autotask(c)) => Some(c),
        _ => None,
    };
    let secret = match (typed.secret.as_str(), &stored) {
        ("", Some(stored)) => stored.secret.clone(),
        ("", None) => return Err(AppError::invalid("Enter the API user's secret.")),
        // Secrets are taken as typed: spaces may be part of them.
        (secret, _) => secret.to_owned(),
    };
    let code = match (typed.integration_code.trim(), &stored) {
        ("", Some(stored)) => stored.integration_code.clone(),
        ("", None) => {
            return Err(AppError::invalid(
                "Enter the API tracking identifier: Autotask refuses API requests without it (Admin › Resources › the \
                 API user › API Tracking Identifier).",
            ));
        }
        (code, _) => code.to_owned(),
    };
    let mut credentials = AtCredentials::new(username, &secret, &code);
    credentials.dedupe_udf = dedupe_udf.to_owned();
    Ok((PsaCredentials::Autotask(credentials), same_place))
}

/// The wizard's PSA calls a partner may make in a minute, all servers together: enough for any wizard session, few
/// enough that nobody can use the dashboard to probe PSA accounts or fill the request-budget table.
pub const WIZARD_PSA_CALLS_PER_MINUTE: u32 = 60;

/// Counts one wizard call that reaches a PSA for the partner, refusing it beyond [`WIZARD_PSA_CALLS_PER_MINUTE`].
pub async fn limit_psa_calls(state: &AppState, partner_id: i64) -> Result<(), AppError> {
    let now = crate::db::now_millis();
    let key = state.secrets.keyed_hash("wizard-psa-calls", partner_id.to_string().as_bytes());
    let hit = crate::rate_limit::hit(&state.db, &key, now, 60_000).await?;
    if hit.over(WIZARD_PSA_CALLS_PER_MINUTE) {
        tracing::warn!(partner_id, "wizard PSA calls over the limit");
        return Err(AppError::TooManyCalls { retry_after_secs: hit.retry_after_secs(now) });
    }
    Ok(())
}

/// What the mapping was checked against at save, and what the integration keeps of it.
struct Checked {
    /// Kept with the integration when the system's fields differ per account.
    catalog: Option<Catalog>,
    /// The PSA account whose budget the integration spends, when only the PSA can tell it (Autotask's database).
    account: Option<String>,
}

fn first_error(errors: Vec<crate::mapping::RowError>) -> Result<(), AppError> {
    match errors.into_iter().next() {
        Some(first) => Err(AppError::invalid(first.message)),
        None => Ok(()),
    }
}

/// Credentials that are new or changed are tried before they are saved: the PSA refusing them (unknown user, wrong
/// secret, no permission, a missing reference field, a host the policy refuses) refuses the save, so that nobody
/// can save someone else's account with guessed secrets and have the delivery worker try them. A PSA that cannot
/// be reached does not stop the save (its health will show it).
async fn verify_credentials(
    state: &AppState,
    partner_id: i64,
    input: &IntegrationInput,
    credentials: &PsaCredentials,
) -> Result<(), AppError> {
    let connection = connection_for(partner_id, credentials, input.request_budget);
    let outcome = async { state.ticketing.session(&connection).await?.test_connection().await }.await;
    match outcome {
        Ok(_) => Ok(()),
        Err(err)
            if matches!(
                err.kind,
                ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::NotFound | ErrorKind::Refused
            ) =>
        {
            Err(AppError::Psa(format!("{err} Nothing was saved: correct the connection in step 3.")))
        }
        Err(err) => {
            tracing::warn!(partner_id, error = %err, "saving credentials the PSA could not check now");
            Ok(())
        }
    }
}

/// Checks the mapping against the system's catalog. A system whose fields differ per account (Autotask) is asked
/// for them (and its lists, so every chosen entry is checked too); if it cannot answer for a moment (a transient
/// error or its limits) and the credentials are the saved ones, the fields read at the last save are used.
async fn check_mapping(
    state: &AppState,
    partner_id: i64,
    input: &IntegrationInput,
    credentials: &PsaCredentials,
    saved: Option<&StoredIntegration>,
) -> Result<Checked, AppError> {
    if let Some(catalog) = state.ticketing.fixed_catalog(input.system) {
        first_error(catalog.validate(&input.mapping, None))?;
        return Ok(Checked { catalog: None, account: None });
    }
    let connection = connection_for(partner_id, credentials, input.request_budget);
    let read = async {
        let session = state.ticketing.session(&connection).await?;
        let fields = match session.fields(&[]).await {
            // Throttled for a moment (Autotask's thread or request limits): asked once more, so that a partner's
            // save does not fail for a second's congestion.
            Err(err)
                if err.is_retryable() && err.wait(crate::db::now_millis()).is_none_or(|w| w <= SAVE_RETRY_WAIT) =>
            {
                let wait = err.wait(crate::db::now_millis()).unwrap_or(SAVE_RETRY_WAIT);
                tokio::time::sleep(wait).await;
                session.fields(&[]).await?
            }
            read => read?,
        };
        Ok::<_, TicketingError>((fields, session.budget_account()))
    }
    .await;
    match read {
        Ok((fields, account)) => {
            first_error(fields.catalog.validate(&input.mapping, Some(&fields.lookups)))?;
            Ok(Checked { catalog: Some(fields.catalog), account: Some(account) })
        }
        Err(err) => {
            let kept = saved.filter(|_| err.is_retryable()).and_then(|stored| {
                let catalog: Catalog = serde_json::from_value(settings_value(stored).get("catalog")?.clone()).ok()?;
                Some((catalog, autotask_settings(stored)?.account))
            });
            let Some((catalog, account)) = kept else {
                return Err(AppError::Psa(format!(
                    "The {} ticket fields could not be read to check the mapping, so nothing was saved: {err}",
                    input.system.short_label()
                )));
            };
            tracing::warn!(error = %err, "saving with the ticket fields read at the last save");
            first_error(catalog.validate(&input.mapping, None))?;
            Ok(Checked { catalog: Some(catalog), account })
        }
    }
}

/// The longest a save waits to ask a throttled PSA for its fields once more.
const SAVE_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a save counts against the partner's wizard PSA calls ([`limit_psa_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// When it calls the PSA itself (new or changed credentials, a system whose fields are read).
    IfItCalls,
    /// Always, once: the caller goes on to call the PSA ("Save and Submit a Test Compromise").
    Always,
}

pub async fn save(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: IntegrationInput,
    actor: &crate::activity::Actor,
) -> Result<i64, AppError> {
    save_counted(state, partner_id, id, input, actor, Count::IfItCalls).await
}

/// [`save`], counting the PSA calls as `count` says.
pub async fn save_counted(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: IntegrationInput,
    actor: &crate::activity::Actor,
    count: Count,
) -> Result<i64, AppError> {
    let name = validate_name(&input.name).map_err(AppError::Invalid)?;
    let (credentials, saved) = credentials_for(state, partner_id, id, &input).await?;
    let fixed = state.ticketing.fixed_catalog(input.system);
    if let Some(catalog) = &fixed {
        first_error(catalog.validate(&input.mapping, None))?;
    }
    let unchanged = saved.is_some();
    if count == Count::Always || !unchanged || fixed.is_none() {
        limit_psa_calls(state, partner_id).await?;
    }
    if !unchanged {
        verify_credentials(state, partner_id, &input, &credentials).await?;
    }
    let checked = check_mapping(state, partner_id, &input, &credentials, saved.as_ref()).await?;
    let system = credentials.system();
    let sealed =
        state.secrets.seal(&credentials.sealed_json()?, &credentials_context(partner_id, system)).map_err(|err| {
            tracing::error!(error = %err, "cannot seal credentials");
            AppError::Internal
        })?;
    let mapping_json = serde_json::to_string(&input.mapping).map_err(|_| AppError::Internal)?;
    let mut settings = json!({ "request_budget": input.request_budget });
    if let PsaCredentials::Autotask(at) = &credentials {
        let kept = AutotaskSettings {
            username: at.username.clone(),
            dedupe_udf: at.dedupe_udf.clone(),
            account: checked.account,
        };
        settings["autotask"] = serde_json::to_value(kept).map_err(|_| AppError::Internal)?;
    }
    if let Some(catalog) = &checked.catalog {
        settings["catalog"] = serde_json::to_value(catalog).map_err(|_| AppError::Internal)?;
    }
    let settings_json = settings.to_string();
    let (site, company_id, auth_kind) = match &credentials {
        PsaCredentials::ConnectWise(c) => (c.site.as_str(), c.company_id.as_str(), input.auth_kind),
        PsaCredentials::Autotask(_) => ("", "", AuthKind::ApiKeys),
    };
    let write = IntegrationWrite {
        name: &name,
        system: system.as_db(),
        site,
        company_id,
        auth_kind,
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
