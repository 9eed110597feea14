//! The wizard's calls to ConnectWise, made through the server: test the connection, match organizations with
//! companies, load the site's lookups, and save and submit a test compromise. Every call made for a saved
//! integration records its health.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::IntegrationInput;
use crate::error::AppError;
use crate::mapping::RowError;
use crate::ticketing::TicketFields;

/// One organization beside the ConnectWise company whose name matches it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyMatch {
    pub organization_id: i64,
    pub organization_name: String,
    /// The ConnectWise company with exactly this name, if any.
    pub company: Option<String>,
    /// Near misses (case, spacing, punctuation, suffixes like "Inc."), best first, when there is no exact match.
    pub suggestions: Vec<String>,
}

/// What "Save and Submit a Test Compromise" came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestOutcome {
    /// The integration was saved and ConnectWise created the ticket.
    Created { integration_id: i64, ticket_id: i64, organization: String, summary: String },
    /// The integration was saved, but ConnectWise (or a missing company match) refused the ticket: `message` says
    /// why, and `row_errors` put ConnectWise's field errors on the mapping rows they name.
    Rejected { integration_id: i64, message: String, row_errors: Vec<RowError> },
}

/// "Test connection": the ConnectWise version on success, the client's sentence otherwise.
#[server(endpoint = "integrations/test_connection", input = server_fn::codec::Json)]
pub async fn test_connection(id: Option<i64>, input: IntegrationInput) -> Result<String, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            super::wizard_service::test_connection(&state, partner.id, id, &input).await
        }
        .await,
    )
}

/// The partner's organizations beside their exactly matching ConnectWise companies (all pages read).
#[server(endpoint = "integrations/match_companies", input = server_fn::codec::Json)]
pub async fn match_companies(id: Option<i64>, input: IntegrationInput) -> Result<Vec<CompanyMatch>, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            super::wizard_service::match_companies(&state, partner.id, id, &input).await
        }
        .await,
    )
}

/// The PSA's ticket fields and lists (ConnectWise: boards, priorities and sources, plus the statuses, types,
/// subtypes and items of the board among `parents`; Autotask: every picklist at once).
#[server(endpoint = "integrations/fields", input = server_fn::codec::Json)]
pub async fn fetch_fields(
    id: Option<i64>,
    input: IntegrationInput,
    parents: Vec<(String, i64)>,
) -> Result<TicketFields, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            super::wizard_service::fields(&state, partner.id, id, &input, &parents).await
        }
        .await,
    )
}

/// Saves the integration, then creates a real ticket from a test compromise of one of its organizations.
#[server(endpoint = "integrations/save_and_test", input = server_fn::codec::Json)]
pub async fn save_and_submit_test(id: Option<i64>, input: IntegrationInput) -> Result<TestOutcome, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            let actor = crate::activity::Actor::of_request(&partner.email);
            super::wizard_service::save_and_submit_test(&state, partner.id, id, input, &actor).await
        }
        .await,
    )
}
