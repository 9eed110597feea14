//! Autotask PSA behind the ticketing interface: [`AtClient`] is its connector, [`AtSession`] its session, and
//! [`AtError`] maps onto the interface's kinds with its own sentences.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{AtClient, AtCredentials, AtError, AtFieldCatalog, AtFieldKind, AtSession};
use crate::mapping::{Catalog, LookupItem, Lookups, NewTicket};
use crate::request_budget::BudgetGate;
use crate::ticketing::{
    Company, Connection, Connector, ErrorKind, NewNote, Session, System, TicketFields, TicketingError,
};

impl From<AtError> for TicketingError {
    fn from(err: AtError) -> Self {
        let kind = match &err {
            AtError::Unauthorized { .. } => ErrorKind::Unauthorized,
            AtError::Forbidden { .. } => ErrorKind::Forbidden,
            AtError::NotFound { .. } => ErrorKind::NotFound,
            AtError::Validation { .. } => ErrorKind::Validation,
            AtError::RateLimited { retry_after, .. } => ErrorKind::RateLimited { retry_after: *retry_after },
            AtError::Transient { answered, .. } => ErrorKind::Transient { answered: *answered },
            AtError::UnexpectedResponse { .. } => ErrorKind::Unexpected,
            AtError::TooLarge { .. } => ErrorKind::TooLarge,
            AtError::SiteRefused { .. } => ErrorKind::Refused,
            AtError::BudgetRefused { refused } => ErrorKind::BudgetSpent { until: refused.retry_at() },
        };
        TicketingError {
            kind,
            sentence: crate::ticketing::bounded(err.to_string()),
            field_errors: err.field_errors().to_vec(),
        }
    }
}

impl AtCredentials {
    /// The interface's form: the API user and the dedupe field in clear, the secret and the tracking identifier
    /// as secrets (the identifier is what Autotask counts an integration's requests by).
    pub fn connection(&self) -> Connection {
        Connection {
            system: System::Autotask,
            settings: json!({ "username": self.username, "dedupe_udf": self.dedupe_udf }),
            secrets: json!({ "secret": self.secret, "integration_code": self.integration_code }),
            budget_scope: String::new(),
        }
    }

    /// Back from the interface's form.
    pub fn from_connection(connection: &Connection) -> Result<Self, TicketingError> {
        let unreadable = || {
            TicketingError::new(
                ErrorKind::Refused,
                "The integration's Autotask settings cannot be read: edit the integration and enter them again.",
            )
        };
        if connection.system != System::Autotask {
            return Err(unreadable());
        }
        let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut credentials = AtCredentials::new(
            &text(&connection.settings, "username").ok_or_else(unreadable)?,
            &text(&connection.secrets, "secret").ok_or_else(unreadable)?,
            &text(&connection.secrets, "integration_code").ok_or_else(unreadable)?,
        );
        if let Some(udf) = text(&connection.settings, "dedupe_udf") {
            credentials.dedupe_udf = udf;
        }
        Ok(credentials)
    }
}

#[async_trait::async_trait]
impl Connector for AtClient {
    fn system(&self) -> System {
        System::Autotask
    }

    fn call_timeout(&self) -> Duration {
        self.config().timeout
    }

    /// Every Autotask database has its own picklists and user-defined fields.
    fn fixed_catalog(&self) -> Option<Catalog> {
        None
    }

    /// With request budgets, the session asks the budget of the Autotask database (the `ci` zone discovery
    /// answers: Autotask's hourly limit is per database, shared by all of its API users) before every API request.
    async fn session(&self, connection: &Connection) -> Result<Box<dyn Session>, TicketingError> {
        let credentials = AtCredentials::from_connection(connection)?;
        let session = AtClient::session(self, &credentials).await?.with_slot_scope(&connection.budget_scope);
        let Some(budgets) = self.budgets() else { return Ok(Box::new(session)) };
        let account = account_of(&session);
        let budget = connection.request_budget()?;
        let key = crate::ticketing::budget_key(System::Autotask, &connection.budget_scope, &account, &budget)
            .ok_or_else(crate::ticketing::unscoped)?;
        Ok(Box::new(session.with_gate(Arc::new(BudgetGate::new(budgets.clone(), key, budget)))))
    }
}

/// The budget's account: the database zone discovery names (Autotask's hourly limit is per database), or the
/// user where it names none.
fn account_of(session: &AtSession) -> String {
    let host = session.zone().url.host_str().unwrap_or_default();
    match session.zone().database {
        Some(database) => format!("database {database} at {host}"),
        None => format!("user {} at {host}", session.user()),
    }
}

#[async_trait::async_trait]
impl Session for AtSession {
    fn budget_account(&self) -> String {
        account_of(self)
    }

    async fn test_connection(&self) -> Result<String, TicketingError> {
        Ok(AtSession::test_connection(self).await?)
    }

    async fn find_company_by_name(&self, name: &str) -> Result<Option<Company>, TicketingError> {
        Ok(AtSession::find_company_by_name(self, name).await?.map(|c| Company { id: c.id, name: c.name }))
    }

    async fn companies(&self) -> Result<Vec<Company>, TicketingError> {
        Ok(AtSession::companies(self).await?.into_iter().map(|c| Company { id: c.id, name: c.name }).collect())
    }

    /// The account's ticket fields and every picklist at once (Autotask answers them in one call): active values
    /// only, a dependent list (sub-issue types) kept under each of its parent's values, every parent value present.
    async fn fields(&self, _parents: &[(String, i64)]) -> Result<TicketFields, TicketingError> {
        let fields = self.ticket_fields().await?;
        Ok(TicketFields {
            catalog: super::catalog::mapping_catalog(&fields, self.dedupe_udf()),
            lookups: lookups(&fields),
        })
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<i64, TicketingError> {
        Ok(AtSession::create_ticket(self, ticket.company_id, &ticket.dedupe_key, &ticket.fields).await?)
    }

    async fn find_ticket(&self, dedupe_key: &str) -> Result<Option<i64>, TicketingError> {
        Ok(self.find_ticket_by_dedupe_key(dedupe_key).await?)
    }

    /// Autotask requires a title; an empty one becomes "Dark Web ID".
    async fn add_note(&self, ticket_id: i64, note: &NewNote) -> Result<i64, TicketingError> {
        let title = match note.title.trim() {
            "" => "Dark Web ID",
            title => title,
        };
        Ok(AtSession::add_note(self, ticket_id, title, &note.text).await?)
    }
}

/// The interface's lists from Autotask's field catalog.
pub fn lookups(catalog: &AtFieldCatalog) -> Lookups {
    let mut lookups = Lookups::default();
    for field in catalog.fields.iter().filter(|f| f.kind == AtFieldKind::PickList) {
        let items = |parent: Option<i64>| -> Vec<LookupItem> {
            field
                .choices
                .iter()
                .filter(|c| parent.is_none() || c.parent == parent)
                .map(|c| LookupItem { id: c.id, name: c.name.clone() })
                .collect()
        };
        match field.parent.as_deref().and_then(|p| catalog.get(p)) {
            None => {
                lookups.lists.insert(field.key.clone(), items(None));
            }
            Some(parent) => {
                let by_parent: BTreeMap<i64, Vec<LookupItem>> =
                    parent.choices.iter().map(|p| (p.id, items(Some(p.id)))).collect();
                lookups.dependent.insert(field.key.clone(), by_parent);
            }
        }
    }
    lookups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autotask::{AtChoice, AtField};

    fn choice(id: i64, name: &str, parent: Option<i64>) -> AtChoice {
        AtChoice { id, name: name.into(), parent, is_default: false }
    }

    fn picklist(key: &str, parent: Option<&str>, choices: Vec<AtChoice>) -> AtField {
        AtField {
            key: key.into(),
            label: key.into(),
            kind: AtFieldKind::PickList,
            max_len: None,
            required: false,
            parent: parent.map(Into::into),
            choices,
        }
    }

    #[test]
    fn sub_issue_types_are_kept_under_each_issue_type() {
        let catalog = AtFieldCatalog {
            fields: vec![
                picklist("issueType", None, vec![choice(1, "Security", None), choice(2, "Hardware", None)]),
                picklist(
                    "subIssueType",
                    Some("issueType"),
                    vec![choice(10, "Credential exposure", Some(1)), choice(11, "Phishing", Some(1))],
                ),
                picklist("priority", None, vec![choice(3, "High", None)]),
            ],
        };
        let lookups = lookups(&catalog);
        assert_eq!(lookups.choices("priority", None).len(), 1);
        assert_eq!(lookups.choices("subIssueType", Some(1)).len(), 2);
        assert_eq!(lookups.loaded_choices("subIssueType", 2), Some(&[][..]), "loaded, and none");
        assert!(lookups.choices("subIssueType", None).is_empty());
    }

    #[test]
    fn credentials_round_trip_through_the_connection_with_the_secret_apart() {
        let mut credentials = AtCredentials::new("api@msp.example", "s3cret", "CODE");
        credentials.dedupe_udf = "Our Reference".into();
        let connection = credentials.connection();
        assert!(!connection.settings.to_string().contains("s3cret"));
        assert!(!format!("{connection:?}").contains("s3cret"));
        assert_eq!(AtCredentials::from_connection(&connection).expect("back"), credentials);
        let wrong = Connection { system: System::ConnectWise, ..connection };
        assert_eq!(AtCredentials::from_connection(&wrong).expect_err("not Autotask").kind, ErrorKind::Refused);
    }
}
