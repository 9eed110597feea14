//! The server side of the wizard's PSA calls (server only), through the ticketing interface. See `wizard_api` for
//! the contract.
//!
//! Every call made for a saved integration records its health through [`service::recorded`]: Healthy when every
//! PSA request of the call succeeded, Unhealthy with the client's sentence otherwise (a ticket the PSA refused
//! included). Input the partner must correct is `AppError::Invalid` and makes no request.

use std::collections::HashMap;

use rand::RngCore;

use crate::activity::{self, Actor, Kind};
use crate::error::AppError;
use crate::mapping::{self, Compromise, MappingRow, RowError};
use crate::organizations::Organization;
use crate::state::AppState;
use crate::ticketing::{Company, Connection, ErrorKind, FieldError, Session, System, TicketFields, TicketingError};

use super::IntegrationInput;
use super::matching::{self, CompanyNames};
use super::service::{self, recorded};
use super::store;
use super::wizard_api::{CompanyMatch, TestOutcome};

/// Appended to the PSA's sentence when it refuses the test ticket (the guide's hint).
pub fn check_mapping_hint(system: System) -> String {
    let name = system.short_label();
    format!("Check the field mapping: each {name} field must hold a value this {name} account accepts.")
}

/// "Save and Submit a Test Compromise" when no organization of the integration has an exact company match.
pub fn no_matching_organization(system: System) -> String {
    format!(
        "None of the organizations of this integration matches a {} company exactly. Rename one in step 4, or tick \
         this integration for an organization that matches.",
        system.short_label()
    )
}

/// "Save and Submit a Test Compromise" when the integration serves no organization at all.
pub fn no_organization(system: System) -> String {
    format!(
        "No organization uses this integration yet. Tick this integration for an organization whose name matches a \
         {} company exactly (on the Organizations page), then test again.",
        system.short_label()
    )
}

/// "Save and Submit a Test Compromise" when the mapping cannot make a ticket of the test compromise (the rows say
/// why). Rare: saving already checked the mapping.
pub const MAPPING_CANNOT_BUILD: &str =
    "The field mapping cannot make a ticket of the test compromise: correct the rows marked, then test again.";

/// Organizations looked up one by one (`find_company_by_name`) before the whole company list is read instead: a
/// partner with hundreds of unmatched organizations costs a few pages, not hundreds of requests.
const LOOKUPS_BY_NAME: usize = 5;

/// "Test connection": discovery and `system/info`.
pub async fn test_connection(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: &IntegrationInput,
) -> Result<String, AppError> {
    let (credentials, stored) = service::credentials_for(state, partner_id, id, input).await?;
    service::limit_psa_calls(state, partner_id).await?;
    let connection = service::connection_for(partner_id, &credentials, input.request_budget);
    let outcome = async { state.ticketing.session(&connection).await?.test_connection().await }.await;
    recorded(&state.db, stored.map(|s| s.id), outcome).await
}

/// Every organization of the partner beside the PSA company named exactly like it, or near misses.
pub async fn match_companies(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: &IntegrationInput,
) -> Result<Vec<CompanyMatch>, AppError> {
    let (credentials, stored) = service::credentials_for(state, partner_id, id, input).await?;
    service::limit_psa_calls(state, partner_id).await?;
    let organizations = crate::organizations::store::list(&state.db, partner_id).await?;
    let connection = service::connection_for(partner_id, &credentials, input.request_budget);
    let outcome = async { state.ticketing.session(&connection).await?.companies().await }.await;
    let companies = recorded(&state.db, stored.map(|s| s.id), outcome).await?;
    Ok(company_matches(organizations, companies))
}

fn company_matches(organizations: Vec<Organization>, companies: Vec<Company>) -> Vec<CompanyMatch> {
    let names = CompanyNames::new(companies.into_iter().map(|c| c.name));
    organizations
        .into_iter()
        .map(|org| {
            let found = names.find(&org.name);
            CompanyMatch {
                organization_id: org.id,
                organization_name: org.name,
                company: found.exact,
                suggestions: found.suggestions,
            }
        })
        .collect()
}

/// The ticket fields and the lists the mapping's list fields choose from (see [`Session::fields`]); lists that
/// depend on another field for the `parents` chosen (field key → id, e.g. the board).
pub async fn fields(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: &IntegrationInput,
    parents: &[(String, i64)],
) -> Result<TicketFields, AppError> {
    let (credentials, stored) = service::credentials_for(state, partner_id, id, input).await?;
    service::limit_psa_calls(state, partner_id).await?;
    let connection = service::connection_for(partner_id, &credentials, input.request_budget);
    let outcome = async { state.ticketing.session(&connection).await?.fields(parents).await }.await;
    recorded(&state.db, stored.map(|s| s.id), outcome).await
}

/// Saves the integration, then creates a real ticket from a test compromise of the first organization (by name)
/// of the integration whose name matches a PSA company exactly.
pub async fn save_and_submit_test(
    state: &AppState,
    partner_id: i64,
    id: Option<i64>,
    input: IntegrationInput,
    actor: &Actor,
) -> Result<TestOutcome, AppError> {
    let mapping = input.mapping.clone();
    // Counted once, by the save: the test ticket's calls belong to it.
    let integration_id = service::save_counted(state, partner_id, id, input, actor, service::Count::Always).await?;
    // Saved: from here on every failure is answered with the integration's id, so the wizard carries on with it
    // (a retry updates it rather than trying to create it again).
    let outcome = match submit_saved(state, partner_id, integration_id, &mapping).await {
        Ok(outcome) => outcome,
        Err(err) => TestOutcome::Rejected { integration_id, message: err.to_string(), row_errors: Vec::new() },
    };
    record_test(state, partner_id, integration_id, actor, &outcome).await;
    Ok(outcome)
}

/// Puts the test ticket on the Activity page. Nothing in the database changed with it (the ticket is in the
/// PSA), so it is recorded on its own; a failure to record is logged, and the partner still sees the
/// outcome.
async fn record_test(state: &AppState, partner_id: i64, integration_id: i64, actor: &Actor, outcome: &TestOutcome) {
    let recorded = async {
        let stored = store::get(&state.db, partner_id, integration_id).await?;
        let system = System::from_db(&stored.system).unwrap_or_default();
        let (kind, detail) = match outcome {
            TestOutcome::Created { ticket_id, organization, .. } => {
                (Kind::TestTicketSent, format!("{} ticket #{ticket_id} for “{organization}”", system.short_label()))
            }
            TestOutcome::Rejected { message, .. } => (Kind::TestTicketRefused, message.clone()),
        };
        let name = stored.name;
        activity::store::record_alone(&state.db, partner_id, actor, kind, &name, Some(&detail)).await
    }
    .await;
    if let Err(err) = recorded {
        tracing::error!(integration_id, error = %err, "could not record the test ticket");
    }
}

async fn submit_saved(
    state: &AppState,
    partner_id: i64,
    integration_id: i64,
    mapping: &[MappingRow],
) -> Result<TestOutcome, AppError> {
    // Exactly what was saved (blank secrets already replaced by the stored ones), as delivery will read it.
    let stored = store::get(&state.db, partner_id, integration_id).await?;
    let connection = service::open_connection(&state.secrets, &stored)?;
    let system = connection.system;
    let catalog = service::stored_catalog(&state.ticketing, &stored).ok_or(AppError::Internal)?;
    let organizations: Vec<Organization> = crate::organizations::store::list(&state.db, partner_id)
        .await?
        .into_iter()
        .filter(|org| org.integration_ids.contains(&integration_id))
        .collect();
    let rejected = |message: &str, row_errors: Vec<RowError>| TestOutcome::Rejected {
        integration_id,
        message: message.to_owned(),
        row_errors,
    };
    if organizations.is_empty() {
        return Ok(rejected(&no_organization(system), Vec::new()));
    }

    let submitted = match submit_test(state, integration_id, &connection, &catalog, &organizations, mapping).await {
        Ok(submitted) => {
            // A refused ticket is a failed request too: Unhealthy, with the PSA's sentence, until a request
            // succeeds. The refusal itself is answered below, as a `Rejected` outcome.
            let health = match &submitted {
                Submitted::Refused(err) => Err(err.clone()),
                _ => Ok(()),
            };
            let _: Result<(), AppError> = recorded(&state.db, Some(integration_id), health).await;
            submitted
        }
        Err(err) => return recorded(&state.db, Some(integration_id), Err(err)).await,
    };
    Ok(match submitted {
        Submitted::NoMatch => rejected(&no_matching_organization(system), Vec::new()),
        Submitted::Mapping(errors) => rejected(MAPPING_CANNOT_BUILD, errors),
        Submitted::Refused(err) => rejected(
            &format!("{err} {}", check_mapping_hint(system)),
            row_errors(err.field_errors(), mapping, system.short_label()),
        ),
        Submitted::Created { ticket_id, organization, summary } => {
            TestOutcome::Created { integration_id, ticket_id, organization, summary }
        }
    })
}

/// What submitting the test compromise came to, when every request that was made succeeded (or ConnectWise
/// the PSA refused the ticket with a validation error).
enum Submitted {
    NoMatch,
    Mapping(Vec<RowError>),
    Created {
        ticket_id: i64,
        organization: String,
        summary: String,
    },
    /// `create_ticket`'s [`ErrorKind::Validation`] refusal.
    Refused(TicketingError),
}

async fn submit_test(
    state: &AppState,
    integration_id: i64,
    connection: &Connection,
    catalog: &mapping::Catalog,
    organizations: &[Organization],
    rows: &[MappingRow],
) -> Result<Submitted, TicketingError> {
    let session = state.ticketing.session(connection).await?;
    let Some((organization, company)) = first_matching(session.as_ref(), organizations).await? else {
        return Ok(Submitted::NoMatch);
    };
    let uuid = uuid_v4();
    let compromise =
        Compromise { uuid: uuid.clone(), organization_name: organization.name.clone(), ..Compromise::sample() };
    let ticket =
        match catalog.build_ticket(rows, &compromise, company.id, &mapping::external_xref(&uuid, integration_id)) {
            Ok(ticket) => ticket,
            Err(errors) => return Ok(Submitted::Mapping(errors)),
        };
    let summary = catalog.title_of(&ticket).to_owned();
    match session.create_ticket(&ticket).await {
        Ok(ticket_id) => {
            tracing::info!(ticket_id, company_id = company.id, uuid, "test compromise ticket created");
            Ok(Submitted::Created { ticket_id, organization: organization.name.clone(), summary })
        }
        Err(err) if err.kind == ErrorKind::Validation => Ok(Submitted::Refused(err)),
        Err(err) => Err(err),
    }
}

/// The first organization (in the order given) whose name matches a PSA company exactly, with the company.
async fn first_matching<'a>(
    session: &dyn Session,
    organizations: &'a [Organization],
) -> Result<Option<(&'a Organization, Company)>, TicketingError> {
    for org in organizations.iter().take(LOOKUPS_BY_NAME) {
        // PSAs compare names without case: keep only an exact match.
        if let Some(company) = session.find_company_by_name(&org.name).await?
            && matching::is_exact(&org.name, &company.name)
        {
            return Ok(Some((org, company)));
        }
    }
    let rest = organizations.get(LOOKUPS_BY_NAME..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(None);
    }
    let companies = session.companies().await?;
    let mut by_name: HashMap<&str, &Company> = HashMap::new();
    for company in &companies {
        by_name.entry(company.name.trim()).or_insert(company);
    }
    Ok(rest.iter().find_map(|org| by_name.get(org.name.trim()).map(|company| (org, (*company).clone()))))
}

/// The PSA's field errors on the mapping rows they name: the row whose field key equals the part of the error's
/// field before any `/` (ConnectWise's `status/id` → the Status row), without case, or the user-defined field of
/// that name (Autotask's `udf:<name>` rows); others belong to no row.
pub fn row_errors(errors: &[FieldError], rows: &[MappingRow], system: &str) -> Vec<RowError> {
    errors
        .iter()
        .map(|error| {
            let key = error.field.split_once('/').map_or(error.field.as_str(), |(head, _)| head).trim();
            let message = if !error.message.trim().is_empty() {
                error.message.clone()
            } else if error.code.trim().is_empty() {
                format!("{system} refused this value.")
            } else {
                format!("{system} refused this value ({}).", error.code)
            };
            let names = |r: &MappingRow| {
                r.field.eq_ignore_ascii_case(key)
                    || r.field.split_once(':').is_some_and(|(_, name)| name.eq_ignore_ascii_case(key))
            };
            let row = rows.iter().enumerate().find(|(_, r)| !key.is_empty() && names(r));
            match row {
                Some((index, row)) => RowError { row: index, field: row.field.clone(), message },
                None => RowError { row: RowError::NO_ROW, field: error.field.clone(), message },
            }
        })
        .collect()
}

/// A fresh random UUID (version 4, RFC 9562 variant) as `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
pub fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_random_version_4() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(groups[2].starts_with('4'), "{a}");
        assert!(matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')), "{a}");
        assert!(mapping::external_xref(&a, i64::MAX).len() <= 100);
    }

    #[test]
    fn field_errors_land_on_the_rows_they_name() {
        let rows = vec![
            MappingRow::new("summary", "[compromise]"),
            MappingRow::new("company", ""),
            MappingRow::new("board", "1"),
            MappingRow::new("status", "11"),
            MappingRow::new("subType", "2"),
        ];
        let error = |field: &str, message: &str| FieldError {
            field: field.into(),
            code: "NotFound".into(),
            message: message.into(),
        };
        let found = row_errors(
            &[
                error("status/id", "Status not found on board 'Help Desk'."),
                error("SUBTYPE/name", "SubType not found."),
                error("summary", "The field summary must be a string with a maximum length of 100."),
                error("company", "company is required."),
                error("priority/id", "Priority not found."),
                error("", ""),
            ],
            &rows,
            "ConnectWise",
        );
        assert_eq!(
            found,
            vec![
                RowError { row: 3, field: "status".into(), message: "Status not found on board 'Help Desk'.".into() },
                RowError { row: 4, field: "subType".into(), message: "SubType not found.".into() },
                RowError {
                    row: 0,
                    field: "summary".into(),
                    message: "The field summary must be a string with a maximum length of 100.".into()
                },
                RowError { row: 1, field: "company".into(), message: "company is required.".into() },
                RowError { row: RowError::NO_ROW, field: "priority/id".into(), message: "Priority not found.".into() },
                RowError {
                    row: RowError::NO_ROW,
                    field: String::new(),
                    message: "ConnectWise refused this value (NotFound).".into()
                },
            ]
        );
    }

    #[test]
    fn autotask_field_errors_land_on_their_rows_user_defined_ones_too() {
        let rows = vec![
            MappingRow::new("title", "[compromise]"),
            MappingRow::new("queueID", "5"),
            MappingRow::new("udf:Customer Tier", "3"),
        ];
        let error = |field: &str| FieldError { field: field.into(), code: String::new(), message: String::new() };
        let found = row_errors(&[error("QueueID"), error("Customer Tier")], &rows, "Autotask");
        assert_eq!(
            found.iter().map(|e| (e.row, e.field.as_str())).collect::<Vec<_>>(),
            [(1, "queueID"), (2, "udf:Customer Tier")]
        );
        assert_eq!(found[0].message, "Autotask refused this value.");
    }

    #[test]
    fn row_errors_cross_the_wire_with_no_row_as_null() {
        // `usize::MAX` would not fit the browser's 32-bit `usize`: the whole answer would fail to decode there.
        let errors = vec![
            RowError { row: 3, field: "status".into(), message: "Status not found.".into() },
            RowError { row: RowError::NO_ROW, field: "priority/id".into(), message: "Priority not found.".into() },
        ];
        let json = serde_json::to_string(&errors).expect("json");
        assert!(json.contains(r#""row":3,"#) && json.contains(r#""row":null,"#), "{json}");
        assert_eq!(serde_json::from_str::<Vec<RowError>>(&json).expect("decoded"), errors);
        let outcome = TestOutcome::Rejected { integration_id: 7, message: "m".into(), row_errors: errors };
        let json = serde_json::to_string(&outcome).expect("json");
        assert_eq!(serde_json::from_str::<TestOutcome>(&json).expect("decoded"), outcome);
    }

    #[test]
    fn organizations_are_matched_against_every_company() {
        let org = |id: i64, name: &str| Organization { id, name: name.into(), integration_ids: vec![] };
        let company = |id: i64, name: &str| Company { id, name: name.into() };
        let matches = company_matches(
            vec![org(1, "Acme Corporation"), org(2, "Globex Inc")],
            vec![company(1, "Acme Corporation"), company(2, "Globex, Inc.")],
        );
        assert_eq!(
            matches,
            vec![
                CompanyMatch {
                    organization_id: 1,
                    organization_name: "Acme Corporation".into(),
                    company: Some("Acme Corporation".into()),
                    suggestions: vec![],
                },
                CompanyMatch {
                    organization_id: 2,
                    organization_name: "Globex Inc".into(),
                    company: None,
                    suggestions: vec!["Globex, Inc.".into()],
                },
            ]
        );
    }
}
