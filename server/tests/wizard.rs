//! The wizard's ConnectWise calls through the real router, against the ConnectWise sandbox started in this process
//! on a free port: test connection, company matching (every page), lookups per board, and "Save and Submit a Test
//! Compromise", with the integration's health recorded by every call and partners kept apart.

mod common;

use std::net::SocketAddr;

use app::activity::Actor;
use app::error::AppError;
use app::integrations::{Health, IntegrationRow, TestOutcome};
use app::mapping::{Compromise, RowError};
use common::{Harness, harness, save_integration, signed_in};
use http::StatusCode;
use serde_json::{Value, json};
use server::sandbox::{self, RunningSandbox, SandboxConfig};

async fn start_sandbox() -> RunningSandbox {
    let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    sandbox::spawn(config).await.expect("sandbox starts")
}

const SUMMARY: &str = "Dark Web ID: [record_type] compromise for [organization_name]";

/// The wizard's form for the sandbox's demo account, with a mapping onto the Help Desk board.
fn input(sb: &RunningSandbox, name: &str) -> Value {
    common::sandbox_input(&sb.url(), name, mapping("1", "2"))
}

/// Summary, Company, Board, Status (row 3) and Priority.
fn mapping(board: &str, status: &str) -> Value {
    json!([
        { "field": "summary", "value": SUMMARY },
        { "field": "company", "value": "" },
        { "field": "board", "value": board },
        { "field": "status", "value": status },
        { "field": "priority", "value": "3" },
    ])
}

/// The same form with the secrets left blank, as the wizard sends it when editing a saved integration.
fn blank_secrets(mut input: Value) -> Value {
    input["public_key"] = json!("");
    input["private_key"] = json!("");
    input
}

async fn add_organizations(h: &Harness, partner: i64, names: &[&str]) {
    for name in names {
        app::organizations::store::add(&h.state.db, partner, name, None, &Actor::operator("test"))
            .await
            .expect("organization");
    }
}

async fn save(h: &Harness, cookie: &str, body: Value) -> i64 {
    let (status, text) = save_integration(h, cookie, None, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    text.parse().expect("id")
}

async fn call(h: &Harness, endpoint: &str, args: Value, cookie: &str) -> (StatusCode, String) {
    let (status, _, body) = h.call_json(&format!("integrations/{endpoint}"), &args, Some(cookie)).await;
    (status, body)
}

fn app_error(body: &str) -> AppError {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not an AppError ({err}): {body}"))
}

async fn row(h: &Harness, cookie: &str, id: i64) -> IntegrationRow {
    let (status, _, body) = h.call("integrations/list", "", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows: Vec<IntegrationRow> = serde_json::from_str(&body).expect("rows");
    rows.into_iter().find(|r| r.id == id).expect("the integration is listed")
}

async fn sandbox_tickets(sb: &RunningSandbox) -> Vec<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let response = client.get(format!("{}/_sandbox/tickets", sb.url())).send().await.expect("tickets");
    response.json().await.expect("json")
}

async fn set_faults(sb: &RunningSandbox, faults: Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let response = client.post(format!("{}/_sandbox/faults", sb.url())).json(&faults).send().await.expect("faults");
    assert!(response.status().is_success(), "faults refused: {}", response.status());
}

async fn sandbox_calls(sb: &RunningSandbox) -> Value {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let response = client.get(format!("{}/_sandbox/stats", sb.url())).send().await.expect("stats");
    response.json().await.expect("json")
}

fn rendered_summary(organization: &str) -> String {
    let compromise = Compromise { organization_name: organization.into(), ..Compromise::sample() };
    app::mapping::render(SUMMARY, &compromise).expect("renders")
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

/// The wizard's calls count against the account's request budget too: once it is spent they answer with a sentence
/// saying when it refills, send nothing, and leave the health alone. A budget out of range is refused in words.
#[tokio::test]
async fn wizard_calls_answer_with_a_sentence_when_the_budget_is_spent() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let mut form = input(&sb, "CW");
    form["request_budget"] = json!({ "requests": 10, "window": "Hour" });
    let id = save(&h, &cookie, form.clone()).await;
    let form = blank_secrets(form);
    // Saving tried the keys: one request of the ten.
    for _ in 0..9 {
        let (status, body) = call(&h, "test_connection", json!({ "id": id, "input": form }), &cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let calls = sb.sandbox.stats().1;
    let (status, body) = call(&h, "test_connection", json!({ "id": id, "input": form }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let sentence = app_error(&body).to_string();
    assert!(
        sentence.contains("This ConnectWise account's request budget (10 requests per hour) is used up")
            && sentence.contains("refills at"),
        "{sentence}"
    );
    assert_eq!(sb.sandbox.stats().1, calls, "nothing was sent");
    let listed = row(&h, &cookie, id).await;
    assert_eq!(listed.health, Health::Healthy, "the last request that was sent succeeded");
    // The table shows the account's use of its budget this hour.
    assert_eq!(
        listed.requests,
        Some(app::integrations::RequestUse {
            this_hour: 10,
            hourly_allowance: 10,
            budget: "10 requests per hour".into(),
            spent: true
        })
    );

    // The saved budget comes back to the wizard; a budget out of range is refused before anything is saved.
    let (status, _, body) = h.call("integrations/get", &format!("id={id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let settings: app::integrations::IntegrationSettings = serde_json::from_str(&body).expect("settings");
    assert_eq!(
        settings.request_budget,
        Some(app::integrations::RequestBudgetInput { requests: 10, window: app::integrations::BudgetWindow::Hour })
    );
    let mut zero = input(&sb, "Zero");
    zero["request_budget"] = json!({ "requests": 0, "window": "Minute" });
    let (status, body) = save_integration(&h, &cookie, None, zero).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains(
            "The request budget must be between 10 and 100,000 requests per minute: a delivery needs a few requests in \
         one window."
        ),
        "{body}"
    );
}

/// A partner who names another MSP's ConnectWise site and company (without its keys) spends only their own request
/// budget: the other MSP's integrations keep theirs.
#[tokio::test]
async fn another_partner_cannot_spend_an_accounts_budget() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, owner) = signed_in(&h, "owner@example.com").await;
    let (_, intruder) = signed_in(&h, "intruder@example.com").await;
    let mut form = input(&sb, "CW");
    form["request_budget"] = json!({ "requests": 10, "window": "Hour" });
    let id = save(&h, &owner, form.clone()).await;

    let mut guess = form.clone();
    guess["private_key"] = json!("a-guess");
    for _ in 0..11 {
        let (status, _) = call(&h, "test_connection", json!({ "id": null, "input": guess }), &intruder).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }
    // Saving tried the keys: one request of the owner's ten.
    for _ in 0..9 {
        let (status, body) =
            call(&h, "test_connection", json!({ "id": id, "input": blank_secrets(form.clone()) }), &owner).await;
        assert_eq!(status, StatusCode::OK, "the owner's budget is untouched: {body}");
    }
}

#[tokio::test]
async fn test_connection_reports_the_version_or_the_clients_sentence_and_records_health() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let expected = format!("Connected to ConnectWise Manage {}.", sandbox::VERSION_NUMBER);

    // Before saving: no integration, no health.
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": input(&sb, "CW") }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<String>(&body).expect("sentence"), expected);

    let id = save(&h, &cookie, input(&sb, "CW")).await;
    assert_eq!(row(&h, &cookie, id).await.health, Health::NotChecked);

    // A wrong private key typed while editing: 502 with the client's sentence, and the saved integration's health
    // is left alone (it tells about what is saved, not about a draft).
    let mut wrong = input(&sb, "CW");
    wrong["private_key"] = json!("not-the-key");
    let (status, body) = call(&h, "test_connection", json!({ "id": id, "input": wrong }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let sentence = app_error(&body).to_string();
    assert!(sentence.starts_with("ConnectWise rejected the keys"), "{sentence}");
    assert!(!body.contains("not-the-key") && !body.contains(sandbox::DEMO_PRIVATE_KEY));
    assert_eq!(row(&h, &cookie, id).await.health, Health::NotChecked);

    // The saved settings failing (the site answers 500s): Unhealthy, with the sentence and its time.
    set_faults(&sb, json!({ "error_rate": 1.0 })).await;
    let (status, body) =
        call(&h, "test_connection", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let sentence = app_error(&body).to_string();
    let unhealthy = row(&h, &cookie, id).await;
    assert_eq!(unhealthy.health, Health::Unhealthy);
    assert_eq!(unhealthy.health_error.as_deref(), Some(sentence.as_str()));
    assert!(unhealthy.health_at.is_some());
    set_faults(&sb, json!({})).await;

    // A test of an unsaved form says nothing about the saved integration: its error is kept.
    let (status, _) = call(&h, "test_connection", json!({ "id": null, "input": input(&sb, "CW") }), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let kept = row(&h, &cookie, id).await;
    assert_eq!((kept.health, kept.health_error.as_deref()), (Health::Unhealthy, Some(sentence.as_str())));

    // The stored keys (blank fields) work: Healthy, the error cleared.
    let (status, body) =
        call(&h, "test_connection", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<String>(&body).expect("sentence"), expected);
    let healthy = row(&h, &cookie, id).await;
    assert_eq!((healthy.health, healthy.health_error), (Health::Healthy, None));

    // An integrator login with a wrong password names the login, not the keys.
    let mut integrator = input(&sb, "CW");
    integrator["auth_kind"] = json!("Integrator");
    integrator["username"] = json!(sandbox::DEMO_INTEGRATOR_USERNAME);
    integrator["password"] = json!("wrong password");
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": integrator }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(app_error(&body).to_string().starts_with("ConnectWise rejected the integrator login"), "{body}");

    // An unknown company ID with the keys typed: discovery fails and says which company.
    let mut unknown = input(&sb, "CW");
    unknown["company_id"] = json!("nosuchco");
    let (status, body) = call(&h, "test_connection", json!({ "id": id, "input": unknown }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(app_error(&body).to_string().contains("nosuchco"), "{body}");
    assert_eq!(row(&h, &cookie, id).await.health, Health::Healthy, "a draft leaves health alone");

    // Bad form input is the partner's to correct: 400, no request, health unchanged.
    for (field, value) in [("site", ""), ("company_id", ""), ("private_key", "")] {
        let mut bad = input(&sb, "CW");
        bad[field] = json!(value);
        let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": bad }), &cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(matches!(app_error(&body), AppError::Invalid(_)), "{body}");
    }
}

#[tokio::test]
async fn match_companies_reads_every_page_and_suggests_near_misses() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    add_organizations(
        &h,
        partner,
        &[
            "Acme Corporation",
            "Globex Inc",
            "Initech",
            "Stark Industries",
            "Umbrella Health",
            "wayne enterprises",
            // The last companies by name: on the third page of 1000.
            "Woodgrove Veterinary Inc.",
            "Woodgrove Veterinary",
            "Nobody Like Us",
        ],
    )
    .await;
    let id = save(&h, &cookie, input(&sb, "CW")).await;
    let (_, api_calls_before) = sb.sandbox.stats();

    let (status, body) =
        call(&h, "match_companies", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let matches: Vec<app::integrations::CompanyMatch> = serde_json::from_str(&body).expect("matches");
    let (_, api_calls_after) = sb.sandbox.stats();
    assert_eq!(api_calls_after - api_calls_before, 3, "2,109 companies at 1000 a page");

    let found: Vec<(&str, Option<&str>, Vec<&str>)> = matches
        .iter()
        .map(|m| {
            (m.organization_name.as_str(), m.company.as_deref(), m.suggestions.iter().map(String::as_str).collect())
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("Acme Corporation", Some("Acme Corporation"), vec![]),
            ("Globex Inc", None, vec!["Globex, Inc."]),
            ("Initech", Some("Initech"), vec![]),
            ("Nobody Like Us", None, vec![]),
            ("Stark Industries", Some("Stark Industries"), vec![]),
            ("Umbrella Health", Some("Umbrella Health"), vec![]),
            ("wayne enterprises", None, vec!["Wayne Enterprises"]),
            ("Woodgrove Veterinary", None, vec!["Woodgrove Veterinary LLC", "Woodgrove Veterinary Inc."]),
            ("Woodgrove Veterinary Inc.", Some("Woodgrove Veterinary Inc."), vec![]),
        ]
    );
    let orgs = app::organizations::store::list(&h.state.db, partner).await.expect("organizations");
    for m in &matches {
        let org = orgs.iter().find(|o| o.name == m.organization_name).expect("org");
        assert_eq!(m.organization_id, org.id);
    }
    assert_eq!(row(&h, &cookie, id).await.health, Health::Healthy);

    // Unsaved forms work too; a refused key is a 502, and a draft's failure leaves the saved integration's health.
    let (status, _) = call(&h, "match_companies", json!({ "id": null, "input": input(&sb, "New") }), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let mut wrong = input(&sb, "CW");
    wrong["public_key"] = json!("nope");
    let (status, body) = call(&h, "match_companies", json!({ "id": id, "input": wrong }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(row(&h, &cookie, id).await.health, Health::Healthy);
}

#[tokio::test]
async fn lookups_follow_the_chosen_board() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let id = save(&h, &cookie, input(&sb, "CW")).await;
    let lookups = |board: Option<i64>| {
        let h = &h;
        let cookie = cookie.clone();
        let parents: Vec<(&str, i64)> = board.map(|b| ("board", b)).into_iter().collect();
        let body = json!({ "id": id, "input": blank_secrets(input(&sb, "CW")), "parents": parents });
        async move {
            let (status, body) = call(h, "fields", body, &cookie).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let fields = serde_json::from_str::<app::ticketing::TicketFields>(&body).expect("fields");
            assert_eq!(fields.catalog, app::connectwise::catalog::catalog(), "ConnectWise's fixed catalog");
            fields.lookups
        }
    };
    let names = |items: &[app::mapping::LookupItem]| items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();

    let site = lookups(None).await;
    assert_eq!(names(site.choices("board", None)), ["Help Desk", "Security Operations"]);
    assert_eq!(site.choices("priority", None).len(), 5);
    assert_eq!(names(site.choices("source", None)), ["Call", "Email", "Portal", "Dark Web ID"]);
    assert!(site.dependent.is_empty(), "no board chosen: no board lists");

    let help_desk = lookups(Some(1)).await;
    assert_eq!(help_desk.lists, site.lists);
    assert_eq!(help_desk.dependent["status"].keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(names(help_desk.choices("status", Some(1))), ["New", "In Progress", "Waiting on Client", "Closed"]);
    assert_eq!(names(help_desk.choices("type", Some(1))), ["Incident", "Service Request", "Problem"]);
    assert_eq!(names(help_desk.choices("subType", Some(1))), ["Account Compromise", "Password Reset", "Other"]);
    assert_eq!(names(help_desk.choices("item", Some(1))), ["Email", "Workstation", "Network"]);

    let security = lookups(Some(2)).await;
    assert_eq!(security.dependent["status"].keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(names(security.choices("status", Some(2))), ["New", "Triage", "Contained", "Resolved"]);
    assert_eq!(security.choices("status", Some(2)).iter().map(|s| s.id).collect::<Vec<_>>(), [11, 12, 13, 14]);
    assert_eq!(names(security.choices("item", Some(2))), ["Dark Web ID", "Endpoint"]);

    // A board the site does not have: no board lists (validation then flags the Board row).
    let gone = lookups(Some(99)).await;
    assert_eq!(gone.lists, site.lists);
    assert!(gone.dependent.is_empty());
    let checked = row(&h, &cookie, id).await;
    assert_eq!((checked.health, checked.health_error), (Health::Healthy, None));
}

#[tokio::test]
async fn save_and_submit_test_creates_one_ticket_and_puts_connectwise_errors_on_their_rows() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    // Sorted by name: neither "Aardvark Partners" nor "Globex Inc" matches a company exactly; "Initech" does.
    add_organizations(&h, partner, &["Initech", "Globex Inc", "Aardvark Partners", "Stark Industries"]).await;

    // A new integration: saved, then the ticket is created for the first organization that matches.
    let (status, body) =
        call(&h, "save_and_test", json!({ "id": null, "input": input(&sb, "CW production") }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    let TestOutcome::Created { integration_id: id, ticket_id, organization, summary } = outcome else {
        panic!("not created: {body}");
    };
    assert_eq!(organization, "Initech");
    assert_eq!(summary, rendered_summary("Initech"));
    assert_eq!(summary, "Dark Web ID: Email compromise for Initech");
    let tickets = sandbox_tickets(&sb).await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let ticket = &tickets[0];
    assert_eq!(ticket["id"], json!(ticket_id));
    assert_eq!(ticket["summary"], json!(summary));
    assert_eq!(ticket["company"]["name"], json!("Initech"));
    assert_eq!(ticket["board"]["name"], json!("Help Desk"));
    assert_eq!(ticket["status"]["name"], json!("In Progress"));
    let xref = ticket["externalXRef"].as_str().expect("externalXRef");
    let (uuid, integration) =
        xref.strip_prefix("dwid:").and_then(|rest| rest.split_once('/')).expect("dwid:<uuid>/<integration id>");
    assert!(is_uuid_v4(uuid), "{xref}");
    assert_eq!(integration, id.to_string(), "{xref}");
    assert_ne!(uuid, Compromise::sample().uuid, "a fresh uuid for every test");
    let checked = row(&h, &cookie, id).await;
    assert_eq!((checked.name.as_str(), checked.health), ("CW production", Health::Healthy));

    // A status of the other board: saved, refused by ConnectWise, the error on the Status row, Unhealthy.
    let mut wrong = blank_secrets(input(&sb, "CW production"));
    wrong["mapping"] = mapping("1", "11");
    let (status, body) = call(&h, "save_and_test", json!({ "id": id, "input": wrong }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    let TestOutcome::Rejected { integration_id, message, row_errors } = outcome else {
        panic!("not rejected: {body}");
    };
    assert_eq!(integration_id, id);
    assert!(message.starts_with("ConnectWise refused the ticket: Status not found on board 'Help Desk'."), "{message}");
    assert!(
        message
            .ends_with(&app::integrations::wizard_service::check_mapping_hint(app::integrations::System::ConnectWise)),
        "{message}"
    );
    assert_eq!(
        row_errors,
        vec![RowError { row: 3, field: "status".into(), message: "Status not found on board 'Help Desk'.".into() }]
    );
    assert_eq!(sandbox_tickets(&sb).await.len(), 1, "no ticket stored");
    let unhealthy = row(&h, &cookie, id).await;
    assert_eq!(unhealthy.health, Health::Unhealthy);
    assert!(unhealthy.health_error.as_deref().is_some_and(|e| e.contains("Status not found")), "{unhealthy:?}");
    let (_, _, saved) = h.call("integrations/get", &format!("id={id}"), Some(&cookie)).await;
    let saved: app::integrations::IntegrationSettings = serde_json::from_str(&saved).expect("settings");
    assert_eq!(saved.mapping[3].value, "11", "the mapping was saved before the test");

    // Fixed (the status's own board): created, Healthy again.
    let mut fixed = blank_secrets(input(&sb, "CW production"));
    fixed["mapping"] = mapping("2", "11");
    let (status, body) = call(&h, "save_and_test", json!({ "id": id, "input": fixed }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    assert!(
        matches!(&outcome, TestOutcome::Created { integration_id, organization, .. }
        if *integration_id == id && organization == "Initech"),
        "{body}"
    );
    let tickets = sandbox_tickets(&sb).await;
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[1]["board"]["name"], json!("Security Operations"));
    assert_eq!(tickets[1]["status"]["name"], json!("New"));
    assert_ne!(tickets[1]["externalXRef"], tickets[0]["externalXRef"]);
    let healthy = row(&h, &cookie, id).await;
    assert_eq!((healthy.health, healthy.health_error), (Health::Healthy, None));

    // Keys ConnectWise rejects are tried before saving and not saved: the answer says so, and the integration keeps
    // its name and the keys that work.
    let before = row(&h, &cookie, id).await;
    let mut wrong_key = input(&sb, "CW renamed");
    wrong_key["private_key"] = json!("nope");
    let (status, body) = call(&h, "save_and_test", json!({ "id": id, "input": wrong_key }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = app_error(&body).to_string();
    assert!(
        message.starts_with("ConnectWise rejected the keys")
            && message.ends_with("Nothing was saved: correct the connection in step 3."),
        "{message}"
    );
    let kept = row(&h, &cookie, id).await;
    assert_eq!(kept.name, before.name);
    assert_eq!(sandbox_tickets(&sb).await.len(), 2);

    // Invalid input is not saved and makes no request.
    let mut invalid = input(&sb, "  ");
    invalid["private_key"] = json!("");
    let (status, body) = call(&h, "save_and_test", json!({ "id": id, "input": invalid }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(row(&h, &cookie, id).await.name, before.name);
}

#[tokio::test]
async fn save_and_submit_test_needs_an_organization_that_matches_exactly() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;

    // No organization uses the integration.
    let (status, body) = call(&h, "save_and_test", json!({ "id": null, "input": input(&sb, "CW") }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let TestOutcome::Rejected { integration_id: id, message, row_errors } =
        serde_json::from_str(&body).expect("outcome")
    else {
        panic!("not rejected: {body}");
    };
    assert_eq!(message, app::integrations::wizard_service::no_organization(app::integrations::System::ConnectWise));
    assert!(row_errors.is_empty());

    // Organizations with near misses only (more than are looked up one by one, so the list is read too).
    add_organizations(
        &h,
        partner,
        &["Globex Inc", "acme corporation", "Initech Inc", "Stark", "Umbrella", "Wayne Enterprises Ltd"],
    )
    .await;
    // An exact match that does not use this integration does not count.
    app::organizations::store::add(&h.state.db, partner, "Initech", Some(&[]), &Actor::operator("test"))
        .await
        .expect("organization");
    let (status, body) =
        call(&h, "save_and_test", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    assert_eq!(
        outcome,
        TestOutcome::Rejected {
            integration_id: id,
            message: "None of the organizations of this integration matches a ConnectWise company exactly. Rename \
                      one in step 4, or tick this integration for an organization that matches."
                .into(),
            row_errors: vec![],
        }
    );
    assert!(sandbox_tickets(&sb).await.is_empty());
    assert_eq!(row(&h, &cookie, id).await.health, Health::Healthy, "every request succeeded");

    // An exact match beyond the first five looked up by name (found in the company list) is used.
    add_organizations(&h, partner, &["Woodgrove Veterinary Inc."]).await;
    let (status, body) =
        call(&h, "save_and_test", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    assert!(
        matches!(&outcome, TestOutcome::Created { organization, .. } if organization == "Woodgrove Veterinary Inc."),
        "{body}"
    );
    let tickets = sandbox_tickets(&sb).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["company"]["name"], json!("Woodgrove Veterinary Inc."));
}

#[tokio::test]
async fn a_partner_cannot_use_another_partners_integration_in_the_wizard() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (first_id, first) = signed_in(&h, "first@example.com").await;
    let (_, second) = signed_in(&h, "second@example.com").await;
    add_organizations(&h, first_id, &["Initech"]).await;
    let id = save(&h, &first, input(&sb, "First's CW")).await;
    let (_, api_calls_before) = sb.sandbox.stats();

    // Blank secrets (the stored ones would be used) and full ones alike.
    for form in [blank_secrets(input(&sb, "Hijacked")), input(&sb, "Hijacked")] {
        for (endpoint, args) in [
            ("test_connection", json!({ "id": id, "input": form })),
            ("match_companies", json!({ "id": id, "input": form })),
            ("fields", json!({ "id": id, "input": form, "parents": [["board", 1]] })),
            ("save_and_test", json!({ "id": id, "input": form })),
        ] {
            let (status, body) = call(&h, endpoint, args, &second).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
            assert!(!body.contains("First's CW") && !body.contains("Initech"), "{endpoint}: {body}");
        }
    }
    assert_eq!(sb.sandbox.stats().1, api_calls_before, "no ConnectWise request was made");
    assert!(sandbox_tickets(&sb).await.is_empty());
    let untouched = row(&h, &first, id).await;
    assert_eq!((untouched.name.as_str(), untouched.health), ("First's CW", Health::NotChecked));

    // Without a session: 401.
    for endpoint in ["test_connection", "match_companies", "fields", "save_and_test"] {
        let args = json!({ "id": null, "input": input(&sb, "x"), "parents": [] });
        let (status, _, _) = h.call_json(&format!("integrations/{endpoint}"), &args, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
}

#[tokio::test]
async fn stored_keys_are_only_ever_sent_to_the_site_and_company_they_were_saved_for() {
    let sb = start_sandbox().await;
    // Another host, standing for one a stolen session would point the integration at.
    let elsewhere = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let id = save(&h, &cookie, input(&sb, "CW")).await;
    let before = sandbox_calls(&elsewhere).await;

    for (field, value) in [("site", elsewhere.url()), ("company_id", "othercompany".to_string())] {
        let mut moved = blank_secrets(input(&sb, "CW"));
        moved[field] = json!(value);
        for endpoint in ["test_connection", "match_companies", "fields", "save_and_test"] {
            let args = if endpoint == "fields" {
                json!({ "id": id, "input": moved, "parents": [] })
            } else {
                json!({ "id": id, "input": moved })
            };
            let (status, body) = call(&h, endpoint, args, &cookie).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{endpoint} with another {field}: {body}");
            assert!(app_error(&body).to_string().contains("enter the keys again"), "{body}");
        }
    }
    assert_eq!(sandbox_calls(&elsewhere).await, before, "nothing reached the other host");
    // Saving the move without keys is refused too; the stored integration is unchanged.
    let mut moved = blank_secrets(input(&sb, "CW"));
    moved["site"] = json!(elsewhere.url());
    let (status, _) = save_integration(&h, &cookie, Some(id), moved).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        call(&h, "test_connection", json!({ "id": id, "input": blank_secrets(input(&sb, "CW")) }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "the saved site still works with the stored keys");
}

// -------------------------------------------------------------------------------------------------------------
// Autotask: the same wizard calls against the Autotask sandbox.

async fn start_autotask() -> app::autotask::sandbox::RunningSandbox {
    let config =
        app::autotask::sandbox::SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    app::autotask::sandbox::spawn(config).await.expect("autotask sandbox starts")
}

/// The wizard's form for the Autotask sandbox's demo API user: a title, the company, the required lists, and an
/// issue type with one of its sub-issue types.
fn autotask_input(name: &str) -> Value {
    json!({
        "system": "Autotask",
        "name": name,
        "site": "",
        "company_id": "",
        "auth_kind": "ApiKeys",
        "public_key": "",
        "private_key": "",
        "username": "",
        "password": "",
        "autotask": {
            "username": app::autotask::demo::DEMO_USERNAME,
            "secret": app::autotask::demo::DEMO_SECRET,
            "integration_code": app::autotask::demo::DEMO_INTEGRATION_CODE,
            "dedupe_udf": "",
        },
        "mapping": [
            { "field": "title", "value": SUMMARY },
            { "field": "companyID", "value": "" },
            { "field": "description", "value": "Found in [source] on [date_found]." },
            { "field": "status", "value": "1" },
            { "field": "priority", "value": "1" },
            { "field": "queueID", "value": "29682833" },
            { "field": "issueType", "value": "3" },
            { "field": "subIssueType", "value": "10" },
            { "field": "udf:Customer Tier", "value": "1" },
        ],
    })
}

fn autotask_ticket_key(ticket: &Value) -> Option<String> {
    ticket["userDefinedFields"]
        .as_array()?
        .iter()
        .find(|u| u["name"] == app::integrations::DEFAULT_DEDUPE_UDF)
        .and_then(|u| u["value"].as_str())
        .map(str::to_owned)
}

/// An Autotask integration through the wizard's calls: test connection, the account's own fields (picklists,
/// sub-issue types per issue type, user-defined fields, the reference field kept out), save with the secrets
/// sealed and the catalog kept, the System column and the budget use, and a test ticket carrying its dedupe key.
#[tokio::test]
async fn an_autotask_integration_is_tested_saved_listed_and_sends_a_test_ticket() {
    let at = start_autotask().await;
    let url = at.url();
    let h = harness(&[("AUTOTASK_ZONE_DISCOVERY_URL", &url)]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    add_organizations(&h, partner, &["Acme Corporation", "Not In Autotask"]).await;
    let form = autotask_input("Autotask desk");

    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": form }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sentence: String = serde_json::from_str(&body).expect("sentence");
    assert!(sentence.starts_with("Connected to Autotask"), "{sentence}");

    let (status, body) = call(&h, "fields", json!({ "id": null, "input": form, "parents": [] }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields: app::ticketing::TicketFields = serde_json::from_str(&body).expect("fields");
    let catalog = &fields.catalog;
    assert_eq!((&*catalog.system, &*catalog.title), ("Autotask", "title"));
    let queue = catalog.field("queueID").expect("queue");
    assert!(queue.required && queue.kind == app::mapping::FieldKind::Reference);
    assert_eq!(catalog.field("title").and_then(|f| f.max_len), Some(255));
    assert!(catalog.field("udf:Customer Tier").is_some_and(|f| f.custom));
    assert!(catalog.field("udf:DWID Reference").is_none(), "the reference field is not mappable");
    assert_eq!(fields.lookups.choices("subIssueType", Some(3)).len(), 3, "active sub-issue types of Security");
    assert!(fields.lookups.choices("queueID", None).iter().all(|q| q.name != "Old Helpdesk"), "inactive left out");

    let (status, text) = save_integration(&h, &cookie, None, form.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let id: i64 = text.parse().expect("id");
    let (status, _, body) = h.call("integrations/get", &format!("id={id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !body.contains(app::autotask::demo::DEMO_SECRET) && !body.contains(app::autotask::demo::DEMO_INTEGRATION_CODE)
    );
    let settings: app::integrations::IntegrationSettings = serde_json::from_str(&body).expect("settings");
    assert_eq!(settings.system, app::integrations::System::Autotask);
    assert_eq!(settings.autotask_username, app::autotask::demo::DEMO_USERNAME);
    assert_eq!(settings.dedupe_udf, "DWID Reference");
    assert!(settings.credentials_set);
    assert_eq!(settings.catalog.as_ref().map(|c| &*c.system), Some("Autotask"));
    let stored = app::integrations::store::get(&h.state.db, partner, id).await.expect("stored");
    assert!(!stored.credentials_sealed.contains(app::autotask::demo::DEMO_SECRET));

    let listed = row(&h, &cookie, id).await;
    assert_eq!(listed.system, "Autotask");
    let requests = listed.requests.expect("the database's budget use is shown");
    assert_eq!(requests.budget, "5,000 requests per hour");
    assert!(requests.this_hour >= 1, "{requests:?}");

    // Editing: blank secrets keep the stored ones for the same API user, and the test ticket is created.
    let mut edit = form.clone();
    edit["autotask"]["secret"] = json!("");
    edit["autotask"]["integration_code"] = json!("");
    let (status, body) = call(&h, "save_and_test", json!({ "id": id, "input": edit }), &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome: TestOutcome = serde_json::from_str(&body).expect("outcome");
    let TestOutcome::Created { ticket_id, organization, summary, .. } = outcome else { panic!("created: {outcome:?}") };
    assert_eq!(organization, "Acme Corporation");
    assert_eq!(summary, rendered_summary("Acme Corporation"));
    let tickets = at.sandbox.tickets();
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!(ticket["id"].as_i64(), Some(ticket_id));
    assert_eq!(ticket["title"].as_str(), Some(summary.as_str()));
    assert_eq!((ticket["queueID"].as_i64(), ticket["subIssueType"].as_i64()), (Some(29682833), Some(10)));
    let key = autotask_ticket_key(ticket).expect("the dedupe key is written");
    assert!(key.starts_with("dwid:") && key.ends_with(&format!("/{id}")), "{key}");
    assert_eq!(row(&h, &cookie, id).await.health, Health::Healthy);

    // Another API user with blank secrets, another system, or a mapping Autotask would refuse: nothing saved.
    let mut other_user = edit.clone();
    other_user["autotask"]["username"] = json!("someone-else@msp.example");
    let (status, body) = save_integration(&h, &cookie, Some(id), other_user).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(app_error(&body).to_string().starts_with("The API user changed"), "{body}");
    let mut other_system = edit.clone();
    other_system["system"] = json!("ConnectWise");
    let (status, body) = save_integration(&h, &cookie, Some(id), other_system).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(app_error(&body).to_string().contains("ticketing system cannot be changed"), "{body}");
    let mut no_queue = edit.clone();
    no_queue["mapping"].as_array_mut().expect("rows").retain(|r| r["field"] != "queueID");
    let (status, body) = save_integration(&h, &cookie, Some(id), no_queue).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(app_error(&body).to_string(), "Add a Queue row: Autotask requires a queue on every ticket.");
    let mut wrong_sub = edit.clone();
    wrong_sub["mapping"][7]["value"] = json!("20");
    let (status, body) = save_integration(&h, &cookie, Some(id), wrong_sub).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        app_error(&body).to_string(),
        "Sub-issue type 20 is not a sub-issue type of the issue type \"Security\"; choose one from that issue \
         type's list."
    );
    let after = app::integrations::store::get(&h.state.db, partner, id).await.expect("stored");
    assert_eq!(after.mapping_json, stored.mapping_json, "refused saves changed nothing");
}

/// Autotask's refusals in words: a wrong secret, a missing tracking identifier (refused before any request).
#[tokio::test]
async fn autotask_connection_problems_are_named() {
    let at = start_autotask().await;
    let url = at.url();
    let h = harness(&[("AUTOTASK_ZONE_DISCOVERY_URL", &url)]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let mut wrong = autotask_input("Autotask desk");
    wrong["autotask"]["secret"] = json!("not-the-secret");
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": wrong }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let sentence = app_error(&body).to_string();
    assert!(sentence.to_lowercase().contains("secret"), "{sentence}");

    let mut no_code = autotask_input("Autotask desk");
    no_code["autotask"]["integration_code"] = json!(" ");
    let calls = at.sandbox.stats()["apiCalls"].as_u64();
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": no_code }), &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(app_error(&body).to_string().starts_with("Enter the API tracking identifier"), "{body}");
    assert_eq!(at.sandbox.stats()["apiCalls"].as_u64(), calls, "nothing was sent");
}

/// The wizard's PSA calls are limited per partner (each may name a new PSA account): beyond 60 a minute they are
/// refused in words, before anything is sent, and other partners are not affected.
#[tokio::test]
async fn wizard_psa_calls_are_limited_per_partner() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let (_, other) = signed_in(&h, "other@example.com").await;
    let form = input(&sb, "CW");
    for _ in 0..app::integrations::service::WIZARD_PSA_CALLS_PER_MINUTE {
        let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": form }), &cookie).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let sent = sb.sandbox.stats().1;
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": form }), &cookie).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        app_error(&body).to_string().starts_with("Too many requests to your PSA from the wizard. Please wait"),
        "{body}"
    );
    let (status, body) = call(&h, "fields", json!({ "id": null, "input": form, "parents": [] }), &cookie).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(sb.sandbox.stats().1, sent, "nothing was sent");
    let (status, body) = call(&h, "test_connection", json!({ "id": null, "input": form }), &other).await;
    assert_eq!(status, StatusCode::OK, "another partner is not limited: {body}");
}

/// Credentials are tried before they are saved: keys or a secret the PSA refuses are not stored (so nobody can save
/// another MSP's account with guessed secrets and have the delivery worker try them), and an Autotask integration
/// moved to another API user does not keep the fields read for the first one.
#[tokio::test]
async fn credentials_the_psa_refuses_are_not_saved() {
    let sb = start_sandbox().await;
    let at = start_autotask().await;
    let url = at.url();
    let h = harness(&[("AUTOTASK_ZONE_DISCOVERY_URL", &url)]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;

    let mut guessed = input(&sb, "Someone else's CW");
    guessed["private_key"] = json!("a-guess");
    let (status, body) = save_integration(&h, &cookie, None, guessed).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(app_error(&body).to_string().ends_with("Nothing was saved: correct the connection in step 3."), "{body}");
    assert_eq!(app::integrations::store::count(&h.state.db, partner).await.expect("count"), 0);

    let id = save(&h, &cookie, autotask_input("Autotask desk")).await;
    let before = app::integrations::store::get(&h.state.db, partner, id).await.expect("stored");
    let mut moved = autotask_input("Autotask desk");
    moved["autotask"]["username"] = json!("victim@othermsp.example");
    moved["autotask"]["secret"] = json!("a-guess");
    let (status, body) = save_integration(&h, &cookie, Some(id), moved).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(app::integrations::store::get(&h.state.db, partner, id).await.expect("stored"), before);
}
