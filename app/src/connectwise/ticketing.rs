//! ConnectWise Manage behind the ticketing interface: [`CwClient`] is its connector, [`CwSession`] its session, and
//! [`CwError`] maps onto the interface's kinds with its own sentences.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::catalog::{EXTERNAL_XREF_KEY, field};
use super::{Auth, Credentials, CwClient, CwError, CwSession, Named};
use crate::mapping::{Catalog, FieldKind, LookupItem, Lookups, NewTicket};
use crate::request_budget::{AccountKey, Budget, BudgetGate};
use crate::ticketing::{
    Company, Connection, Connector, ErrorKind, NewNote, Session, System, TicketFields, TicketingError,
};

impl From<CwError> for TicketingError {
    fn from(err: CwError) -> Self {
        let kind = match &err {
            CwError::Unauthorized { .. } => ErrorKind::Unauthorized,
            CwError::Forbidden { .. } => ErrorKind::Forbidden,
            CwError::NotFound { .. } => ErrorKind::NotFound,
            CwError::Validation { .. } => ErrorKind::Validation,
            CwError::RateLimited { retry_after } => ErrorKind::RateLimited { retry_after: *retry_after },
            CwError::Transient { .. } => ErrorKind::Transient { answered: !err.is_unanswered() },
            CwError::UnexpectedResponse { .. } => ErrorKind::Unexpected,
            CwError::TooLarge { .. } => ErrorKind::TooLarge,
            CwError::SiteRefused { .. } => ErrorKind::Refused,
            CwError::BudgetRefused { refused } => ErrorKind::BudgetSpent { until: refused.retry_at() },
        };
        TicketingError {
            kind,
            sentence: crate::ticketing::bounded(err.to_string()),
            field_errors: err.field_errors().to_vec(),
        }
    }
}

impl Credentials {
    /// The interface's form: the site and company ID in clear, the keys or login as secrets.
    pub fn connection(&self) -> Connection {
        Connection {
            system: System::ConnectWise,
            settings: json!({ "site": self.site, "company_id": self.company_id }),
            secrets: serde_json::to_value(&self.auth).unwrap_or(Value::Null),
            budget_scope: String::new(),
        }
    }

    /// Back from the interface's form.
    pub fn from_connection(connection: &Connection) -> Result<Self, TicketingError> {
        let unreadable = || {
            TicketingError::new(
                ErrorKind::Refused,
                "The integration's ConnectWise settings cannot be read: edit the integration and enter them again.",
            )
        };
        if connection.system != System::ConnectWise {
            return Err(unreadable());
        }
        let setting = |key: &str| connection.settings.get(key).and_then(Value::as_str).map(str::to_owned);
        let auth: Auth = serde_json::from_value(connection.secrets.clone()).map_err(|_| unreadable())?;
        Ok(Credentials {
            site: setting("site").ok_or_else(unreadable)?,
            company_id: setting("company_id").ok_or_else(unreadable)?,
            auth,
        })
    }
}

#[async_trait::async_trait]
impl Connector for CwClient {
    fn system(&self) -> System {
        System::ConnectWise
    }

    fn call_timeout(&self) -> Duration {
        self.config().timeout
    }

    /// ConnectWise's ticket fields are the same on every site.
    fn fixed_catalog(&self) -> Option<Catalog> {
        Some(super::catalog::catalog())
    }

    /// With request budgets, the session asks the account's budget (site and company ID: integrations of one
    /// ConnectWise company share it) before every API request.
    async fn session(&self, connection: &Connection) -> Result<Box<dyn Session>, TicketingError> {
        let credentials = Credentials::from_connection(connection)?;
        let session = CwClient::session(self, &credentials).await?;
        let Some(budgets) = self.budgets() else { return Ok(Box::new(session)) };
        let budget = connection.request_budget()?;
        let key = account_key(&connection.budget_scope, &credentials.site, &credentials.company_id, &budget)
            .ok_or_else(crate::ticketing::unscoped)?;
        Ok(Box::new(session.with_gate(Arc::new(BudgetGate::new(budgets.clone(), key, budget)))))
    }
}

#[async_trait::async_trait]
impl Session for CwSession {
    fn budget_account(&self) -> String {
        let (site, company_id) = self.place();
        account_name(site, company_id)
    }

    async fn test_connection(&self) -> Result<String, TicketingError> {
        let info = CwSession::test_connection(self).await?;
        Ok(connected_sentence(&info.version))
    }

    async fn find_company_by_name(&self, name: &str) -> Result<Option<Company>, TicketingError> {
        Ok(CwSession::find_company_by_name(self, name).await?.map(|c| Company { id: c.id, name: c.name }))
    }

    async fn companies(&self) -> Result<Vec<Company>, TicketingError> {
        Ok(CwSession::companies(self).await?.into_iter().map(|c| Company { id: c.id, name: c.name }).collect())
    }

    /// The fixed catalog; boards, priorities and sources; with a `board` parent, that board's statuses, types,
    /// subtypes and items too (kept under the board's id). A board the site does not have (any more) gets no board
    /// lists: validating the mapping against these lookups then flags the Board row.
    async fn fields(&self, parents: &[(String, i64)]) -> Result<TicketFields, TicketingError> {
        let board_id = parents.iter().find(|(field, _)| field == "board").map(|(_, id)| *id);
        let (boards, priorities, sources) = tokio::try_join!(self.boards(), self.priorities(), self.sources())?;
        let mut lookups = Lookups::default();
        let known_board = board_id.filter(|b| boards.iter().any(|known| known.id == *b));
        lookups.lists.insert("board".into(), items(boards));
        lookups.lists.insert("priority".into(), items(priorities));
        lookups.lists.insert("source".into(), items(sources));
        if let Some(board) = known_board {
            let (statuses, types, subtypes, board_items) = tokio::try_join!(
                self.board_statuses(board),
                self.board_types(board),
                self.board_subtypes(board),
                self.board_items(board),
            )?;
            for (key, list) in [("status", statuses), ("type", types), ("subType", subtypes), ("item", board_items)] {
                lookups.dependent.entry(key.into()).or_default().insert(board, items(list));
            }
        }
        Ok(TicketFields { catalog: super::catalog::catalog(), lookups })
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<i64, TicketingError> {
        Ok(CwSession::create_ticket(self, &ticket_body(ticket)).await?.id)
    }

    async fn find_ticket(&self, dedupe_key: &str) -> Result<Option<i64>, TicketingError> {
        Ok(self.find_ticket_by_external_xref(dedupe_key).await?)
    }

    /// ConnectWise notes have no title: it leads the text, on a line of its own.
    async fn add_note(&self, ticket_id: i64, note: &NewNote) -> Result<i64, TicketingError> {
        let text = match note.title.trim() {
            "" => note.text.clone(),
            title => format!("{title}\n\n{}", note.text),
        };
        Ok(CwSession::add_note(self, ticket_id, &text).await?)
    }
}

/// The request budget's account: the partner's scope, and the site and company ID as saved (the partner's
/// integrations of one ConnectWise company share it; the key ignores case).
pub fn account_key(scope: &str, site: &str, company_id: &str, budget: &Budget) -> Option<AccountKey> {
    crate::ticketing::budget_key(System::ConnectWise, scope, &account_name(site, company_id), budget)
}

fn account_name(site: &str, company_id: &str) -> String {
    format!("{}/{}", site.trim(), company_id.trim())
}

/// The `POST service/tickets` body: list choices as references `{"id": n}`, the company as `{"id": company_id}`,
/// the dedupe key in `externalXRef`, and `automaticEmailCcFlag` set when `automaticEmailCc` is sent (Manage ignores
/// the addresses without it).
pub fn ticket_body(ticket: &NewTicket) -> Map<String, Value> {
    let mut body = Map::new();
    for (key, value) in &ticket.fields {
        let is_list = field(key).is_some_and(|def| def.kind == FieldKind::Reference);
        let value = match value.as_i64() {
            Some(id) if is_list => json!({ "id": id }),
            _ => value.clone(),
        };
        body.insert(key.clone(), value);
    }
    if body.contains_key("automaticEmailCc") {
        body.insert("automaticEmailCcFlag".to_owned(), Value::Bool(true));
    }
    body.insert("company".to_owned(), json!({ "id": ticket.company_id }));
    body.insert(EXTERNAL_XREF_KEY.to_owned(), Value::String(ticket.dedupe_key.clone()));
    body
}

fn items(named: Vec<Named>) -> Vec<LookupItem> {
    named.into_iter().map(|n| LookupItem { id: n.id, name: n.name }).collect()
}

/// `Connected to ConnectWise Manage v2025.1.` from the version `system/info` gives.
pub fn connected_sentence(version: &str) -> String {
    let version = version.trim();
    if version.is_empty() {
        "Connected to ConnectWise Manage.".to_owned()
    } else if version.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Connected to ConnectWise Manage v{version}.")
    } else {
        format!("Connected to ConnectWise Manage {version}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{Compromise, MappingRow};

    #[test]
    fn the_ticket_body_is_connectwise_shaped() {
        let rows = [
            ("summary", "DWID: [compromise]"),
            ("company", ""),
            ("board", "1"),
            ("status", "11"),
            ("priority", " 4 "),
            ("automaticEmailCc", "soc@msp.example"),
            ("requiredDate", "[date_added]"),
        ]
        .map(|(f, v)| MappingRow::new(f, v));
        let ticket = super::super::catalog::catalog()
            .build_ticket(&rows, &Compromise::sample(), 24, "dwid:5f0c/7")
            .expect("ticket");
        assert_eq!(
            Value::Object(ticket_body(&ticket)),
            json!({
                "summary": "DWID: jane.doe@acme-corp.example",
                "company": {"id": 24},
                "board": {"id": 1},
                "status": {"id": 11},
                "priority": {"id": 4},
                "automaticEmailCc": "soc@msp.example",
                "automaticEmailCcFlag": true,
                "requiredDate": "2025-03-14T09:26:53Z",
                "externalXRef": "dwid:5f0c/7",
            })
        );
    }

    #[test]
    fn the_connected_sentence_names_the_version() {
        assert_eq!(connected_sentence("v2025.1"), "Connected to ConnectWise Manage v2025.1.");
        assert_eq!(connected_sentence(" 2025.1.10431 "), "Connected to ConnectWise Manage v2025.1.10431.");
        assert_eq!(connected_sentence(""), "Connected to ConnectWise Manage.");
    }

    #[test]
    fn credentials_survive_the_interface_and_errors_keep_their_sentence() {
        let credentials = Credentials {
            site: "na.myconnectwise.net".into(),
            company_id: "acme".into(),
            auth: Auth::ApiMember { public_key: "pub".into(), private_key: "priv".into() },
        };
        let connection = credentials.connection();
        assert!(!format!("{connection:?}").contains("priv"));
        assert_eq!(Credentials::from_connection(&connection).expect("back"), credentials);
        let broken = Connection { secrets: json!({"Nope": 1}), ..connection };
        assert_eq!(Credentials::from_connection(&broken).expect_err("unreadable").kind, ErrorKind::Refused);

        let unanswered: TicketingError = CwError::Transient { reason: "no answer within 30 s".into() }.into();
        assert_eq!(unanswered.kind, ErrorKind::Transient { answered: false });
        let answered: TicketingError = CwError::Transient { reason: "HTTP 503".into() }.into();
        assert_eq!(answered.kind, ErrorKind::Transient { answered: true });
        let refused: TicketingError = CwError::Forbidden { message: String::new() }.into();
        assert_eq!(refused.to_string(), CwError::Forbidden { message: String::new() }.to_string());
    }
}
