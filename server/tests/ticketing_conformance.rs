//! The ticketing interface's conformance suite: every system behind [`app::ticketing`] must pass the same tests, run
//! against its sandbox over real HTTP on loopback through the system's own connector. Adding a system means adding
//! one [`Subject`] arm here (its sandbox, its demo connection and a minimal valid ticket); every test then runs for
//! it too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::autotask::sandbox as at_sandbox;
use app::autotask::{AtClient, AtConfig, AtCredentials};
use app::connectwise::{Auth, ClientConfig, Credentials, CwClient, SitePolicy};
use app::mapping::{NewTicket, external_xref};
use app::request_budget::RequestBudgets;
use app::ticketing::{Connection, Connector, ErrorKind, NewNote, Session, System};
use serde_json::{Map, Value, json};
use server::sandbox::{self, RunningSandbox, SandboxConfig};

/// One system under test: its sandbox, its connector, and what the tests need to know about its demo data.
struct Subject {
    system: System,
    connector: Arc<dyn Connector>,
    connection: Connection,
    /// The same account with a wrong secret.
    wrong_secret: Connection,
    /// Where the sandbox's own view of tickets and notes is served (`/_sandbox/tickets`).
    sandbox_url: String,
    /// Keeps the sandbox running for the test.
    _sandbox: Box<dyn std::any::Any + Send>,
}

impl Subject {
    async fn connectwise(budgets: Option<RequestBudgets>) -> Subject {
        let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
        let sb = sandbox::spawn(config).await.expect("sandbox starts");
        let client = CwClient::new(ClientConfig {
            client_id: Some(sandbox::DEMO_CLIENT_ID.into()),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            policy: SitePolicy::dev(),
            limits: Default::default(),
        })
        .expect("client");
        let client = match budgets {
            Some(budgets) => client.with_budgets(budgets),
            None => client,
        };
        let credentials = |private_key: &str| Credentials {
            site: sb.url(),
            company_id: sandbox::DEMO_COMPANY_ID.into(),
            auth: Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: private_key.into() },
        };
        Subject {
            system: System::ConnectWise,
            connector: Arc::new(client),
            connection: credentials(sandbox::DEMO_PRIVATE_KEY).connection(),
            wrong_secret: credentials("not-the-key").connection(),
            sandbox_url: sb.url(),
            _sandbox: Box::new(sb),
        }
    }

    async fn autotask(budgets: Option<RequestBudgets>) -> Subject {
        let config = at_sandbox::SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
        let sb = at_sandbox::spawn(config).await.expect("sandbox starts");
        let client = AtClient::new(AtConfig {
            discovery_url: sb.url(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            policy: SitePolicy::dev(),
            limits: Default::default(),
            thread_limit: app::autotask::DEFAULT_THREAD_LIMIT,
        })
        .expect("client");
        let client = match budgets {
            Some(budgets) => client.with_budgets(budgets),
            None => client,
        };
        let credentials = |secret: &str| {
            AtCredentials::new(app::autotask::demo::DEMO_USERNAME, secret, app::autotask::demo::DEMO_INTEGRATION_CODE)
        };
        Subject {
            system: System::Autotask,
            connector: Arc::new(client),
            connection: credentials(app::autotask::demo::DEMO_SECRET).connection(),
            wrong_secret: credentials("not-the-secret").connection(),
            sandbox_url: sb.url(),
            _sandbox: Box::new(sb),
        }
    }

    /// Every system, each with its own sandbox.
    async fn all() -> Vec<Subject> {
        vec![Subject::connectwise(None).await, Subject::autotask(None).await]
    }

    /// Every system, its requests counted in `budgets`.
    async fn all_with_budgets(budgets: &RequestBudgets) -> Vec<Subject> {
        vec![Subject::connectwise(Some(budgets.clone())).await, Subject::autotask(Some(budgets.clone())).await]
    }

    /// API requests the sandbox received (discovery and zone look-ups not counted).
    fn api_calls(&self) -> u64 {
        if let Some(sb) = self._sandbox.downcast_ref::<RunningSandbox>() {
            sb.sandbox.stats().1
        } else if let Some(sb) = self._sandbox.downcast_ref::<at_sandbox::RunningSandbox>() {
            sb.sandbox.stats()["apiCalls"].as_u64().expect("apiCalls")
        } else {
            unreachable!("a sandbox of every system")
        }
    }

    async fn session(&self) -> Box<dyn Session> {
        self.connector.session(&self.connection).await.expect("session")
    }

    /// The smallest ticket the system accepts for a company, with the fields it requires.
    fn minimal_ticket(&self, company_id: i64, dedupe_key: &str) -> NewTicket {
        let fields = match self.system {
            System::ConnectWise => json!({ "summary": "Dark Web ID: conformance" }),
            System::Autotask => {
                let (status, priority, queue) = AUTOTASK_REQUIRED;
                json!({ "title": "Dark Web ID: conformance", "status": status, "priority": priority, "queueID": queue })
            }
        };
        NewTicket { company_id, dedupe_key: dedupe_key.to_owned(), fields: object(fields) }
    }

    /// A ticket the system refuses: its title is over the maximum length.
    fn invalid_ticket(&self, company_id: i64) -> (NewTicket, &'static str) {
        let (fields, field) = match self.system {
            System::ConnectWise => (json!({ "summary": "x".repeat(101) }), "summary"),
            System::Autotask => {
                let (status, priority, queue) = AUTOTASK_REQUIRED;
                (json!({ "title": "x".repeat(256), "status": status, "priority": priority, "queueID": queue }), "title")
            }
        };
        (NewTicket { company_id, dedupe_key: "dwid:invalid/1".into(), fields: object(fields) }, field)
    }

    async fn sandbox_tickets(&self) -> Vec<Value> {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}/_sandbox/tickets", self.sandbox_url))
            .send()
            .await
            .expect("tickets")
            .json()
            .await
            .expect("json")
    }

    async fn notes(&self, ticket_id: i64) -> Vec<String> {
        match self.system {
            System::ConnectWise => {
                let notes: Vec<Value> = reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("client")
                    .get(format!("{}/_sandbox/notes/{ticket_id}", self.sandbox_url))
                    .send()
                    .await
                    .expect("notes")
                    .json()
                    .await
                    .expect("json");
                notes.iter().filter_map(|n| n["text"].as_str().map(str::to_owned)).collect()
            }
            System::Autotask => {
                let ticket = self.sandbox_tickets().await.into_iter().find(|t| t["id"].as_i64() == Some(ticket_id));
                let notes = ticket.and_then(|t| t["notes"].as_array().cloned()).unwrap_or_default();
                notes.iter().filter_map(|n| n["description"].as_str().map(str::to_owned)).collect()
            }
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

const KNOWN_COMPANY: &str = "Acme Corporation";

/// Active status, priority and queue values of the Autotask sandbox's field information (Autotask requires the
/// three on a ticket).
const AUTOTASK_REQUIRED: (i64, i64, i64) = (1, 2, 29682833);

#[tokio::test]
async fn test_connection_names_the_system_and_a_wrong_secret_is_unauthorized() {
    for subject in Subject::all().await {
        let sentence = subject.session().await.test_connection().await.expect("connected");
        assert!(sentence.starts_with(&format!("Connected to {}", subject.system.short_label())), "{sentence}");

        let refused = match subject.connector.session(&subject.wrong_secret).await {
            Ok(session) => session.test_connection().await.expect_err("wrong secret"),
            Err(err) => err,
        };
        assert_eq!(refused.kind, ErrorKind::Unauthorized, "{}: {refused:?}", subject.system.label());
        assert!(!refused.is_retryable(), "a wrong secret is not retried");
        assert!(refused.sentence.ends_with('.') && refused.sentence.len() > 20, "{}", refused.sentence);
    }
}

#[tokio::test]
async fn companies_are_found_by_name_and_listed_across_pages() {
    for subject in Subject::all().await {
        let session = subject.session().await;
        let acme = session.find_company_by_name(KNOWN_COMPANY).await.expect("query").expect("found");
        assert_eq!(acme.name, KNOWN_COMPANY);
        // PSAs compare without case: what comes back is that very name, or a company the caller's exact check
        // then tells apart.
        if let Some(other) = session.find_company_by_name("ACME CORPORATION").await.expect("query") {
            let exact = app::integrations::matching::is_exact("ACME CORPORATION", &other.name);
            assert!(exact || other.id == acme.id, "{other:?}");
        }
        assert_eq!(session.find_company_by_name("No Such Company Ltd").await.expect("query"), None);

        let all = session.companies().await.expect("every page");
        assert!(all.len() > 1_000, "{}: {} companies, more than one page", subject.system.label(), all.len());
        assert!(all.iter().any(|c| c.id == acme.id && c.name == KNOWN_COMPANY));
        let mut ids: Vec<i64> = all.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "no company twice across pages");
    }
}

#[tokio::test]
async fn lookups_offer_the_lists_of_the_mapping() {
    for subject in Subject::all().await {
        let lookups = subject.session().await.fields(&[]).await.expect("fields").lookups;
        assert!(lookups.is_loaded());
        for (key, items) in &lookups.lists {
            assert!(!items.is_empty(), "{}: the list {key} is empty", subject.system.label());
            assert!(items.iter().all(|i| !i.name.trim().is_empty()), "{key}: {items:?}");
            let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), items.len(), "{key}: an id twice");
        }
    }
}

/// The catalog tells the truth about the PSA: a mapping of the fields a new integration starts with, every list
/// the catalog marks required chosen from the PSA's own lists, validates, and the ticket it builds is accepted; the
/// same mapping without a required list is refused by the catalog before anything is sent.
#[tokio::test]
async fn the_catalog_describes_what_the_psa_accepts() {
    for subject in Subject::all().await {
        let name = subject.system.label();
        let session = subject.session().await;
        let parents: Vec<(String, i64)> = Vec::new();
        let first = session.fields(&parents).await.expect("fields");
        let catalog = &first.catalog;
        let title = catalog.field(&catalog.title).expect("a title field");
        assert!(title.required && title.kind == app::mapping::FieldKind::Text, "{name}: {title:?}");
        assert_eq!(catalog.fields.iter().filter(|f| f.kind == app::mapping::FieldKind::Company).count(), 1);
        for def in catalog.fields.iter() {
            if let Some(parent) = def.parent.as_deref() {
                assert!(catalog.field(parent).is_some(), "{name}: {} depends on a field it does not list", def.key);
            }
        }

        // Choose the first entry of every list (a parent first, then its dependents with it loaded).
        let mut rows = catalog.new_integration_rows();
        let mut lookups = first.lookups.clone();
        for round in 0..2 {
            for row in rows.iter_mut() {
                let def = catalog.field(&row.field).expect("a catalog field").clone();
                if def.kind != app::mapping::FieldKind::Reference || !row.value.is_empty() {
                    continue;
                }
                let parent = def
                    .parent
                    .as_deref()
                    .and_then(|p| lookups.lists.get(p).and_then(|l| l.first()).map(|item| item.id));
                let choices = lookups.choices(&def.key, parent);
                if let Some(item) = choices.first() {
                    row.value = item.id.to_string();
                }
            }
            if round == 0 {
                let parents: Vec<(String, i64)> = rows
                    .iter()
                    .filter(|r| catalog.fields.iter().any(|f| f.parent.as_deref() == Some(r.field.as_str())))
                    .filter_map(|r| Some((r.field.clone(), r.value.parse().ok()?)))
                    .collect();
                lookups.merge(session.fields(&parents).await.expect("fields").lookups);
            }
        }
        assert_eq!(catalog.validate(&rows, Some(&lookups)), vec![], "{name}: {rows:?}");

        let company = session.find_company_by_name(KNOWN_COMPANY).await.expect("query").expect("found");
        let compromise = app::mapping::Compromise::sample();
        let key = external_xref(&compromise.uuid, 3);
        let ticket = catalog.build_ticket(&rows, &compromise, company.id, &key).expect("built");
        let id = session.create_ticket(&ticket).await.unwrap_or_else(|e| panic!("{name}: accepted: {e:?}"));
        assert_eq!(session.find_ticket(&key).await.expect("lookup"), Some(id));

        // A required list left empty is refused by the catalog, naming the field.
        if let Some(required) =
            catalog.fields.iter().find(|f| f.required && f.kind == app::mapping::FieldKind::Reference)
        {
            let mut missing = rows.clone();
            missing.retain(|r| r.field != required.key);
            let errors = catalog.validate(&missing, Some(&lookups));
            assert!(
                errors.iter().any(|e| e.field == required.key && e.message.contains(&*required.label)),
                "{name}: {errors:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_ticket_is_created_found_by_its_dedupe_key_and_takes_a_note() {
    for subject in Subject::all().await {
        let session = subject.session().await;
        let company = session.find_company_by_name(KNOWN_COMPANY).await.expect("query").expect("found");
        let key = external_xref("0b7c6a52-1111-4e2f-9a5d-000000000001", 7);
        assert_eq!(session.find_ticket(&key).await.expect("lookup"), None, "nothing before the POST");

        let id = session.create_ticket(&subject.minimal_ticket(company.id, &key)).await.expect("created");
        assert_eq!(session.find_ticket(&key).await.expect("lookup"), Some(id));
        // Another integration's key for the same compromise, or a key that only starts the same, finds nothing.
        let other = external_xref("0b7c6a52-1111-4e2f-9a5d-000000000001", 8);
        assert_eq!(session.find_ticket(&other).await.expect("lookup"), None);
        assert_eq!(session.find_ticket("dwid:0b7c6a52").await.expect("lookup"), None);
        let stored = subject.sandbox_tickets().await;
        assert_eq!(stored.len(), 1, "{}: one ticket", subject.system.label());

        let note = NewNote { title: "Another compromise".into(), text: "jane.doe@acme-corp.example".into() };
        let note_id = session.add_note(id, &note).await.expect("note added");
        assert!(note_id > 0);
        let notes = subject.notes(id).await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("jane.doe@acme-corp.example"), "{notes:?}");

        let missing = session.add_note(999_999, &note).await.expect_err("no such ticket");
        assert!(matches!(missing.kind, ErrorKind::NotFound | ErrorKind::Validation), "{missing:?}");
    }
}

#[tokio::test]
async fn a_refused_ticket_is_a_validation_error_naming_the_field() {
    for subject in Subject::all().await {
        let session = subject.session().await;
        let company = session.find_company_by_name(KNOWN_COMPANY).await.expect("query").expect("found");
        let (ticket, field) = subject.invalid_ticket(company.id);
        let err = session.create_ticket(&ticket).await.expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Validation, "{}: {err:?}", subject.system.label());
        assert!(!err.is_retryable() && !err.may_have_created(), "a refusal is final and created nothing");
        assert!(
            err.field_errors().iter().any(|f| f.field.eq_ignore_ascii_case(field)),
            "{}: the error names {field}: {err:?}",
            subject.system.label()
        );
        assert!(subject.sandbox_tickets().await.is_empty());
    }
}

#[tokio::test]
async fn a_spent_request_budget_sends_nothing_and_says_when_it_refills() {
    let budgets = RequestBudgets::new(app::testing::sqlite().await);
    for subject in Subject::all_with_budgets(&budgets).await {
        // Without a partner's scope a budgeted session is refused: a budget belongs to a partner.
        let unscoped = subject.connector.session(&subject.connection).await.err().expect("refused");
        assert_eq!(unscoped.kind, ErrorKind::Refused);
        let mut connection = subject.connection.clone();
        connection.budget_scope = "partner 1".into();
        connection.settings["request_budget"] = json!({ "requests": 3, "window_secs": 3600 });
        let session = subject.connector.session(&connection).await.expect("session");
        for _ in 0..3 {
            assert_eq!(session.find_ticket("dwid:none/1").await.expect("admitted"), None);
        }
        let sent = subject.api_calls();
        let err = session.find_ticket("dwid:none/1").await.expect_err("spent");
        assert!(matches!(err.kind, ErrorKind::BudgetSpent { until } if until > app::db::now_millis()), "{err:?}");
        assert!(err.is_retryable() && !err.may_have_created());
        assert!(
            err.sentence.starts_with(&format!(
                "This {} account's request budget (3 requests per hour) is used up",
                subject.system.short_label()
            )),
            "{}",
            err.sentence
        );
        assert_eq!(subject.api_calls(), sent, "{}: nothing was sent", subject.system.label());
    }
}
