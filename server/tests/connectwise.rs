//! The ConnectWise client against the sandbox, both in this process over real HTTP on loopback; a tiny fake Manage
//! for what the sandbox never does (exact headers, 403, HTML, truncated bodies, redirects, a stalled answer); and the
//! outbound-safety rules (no traffic ever leaves loopback: refused names are refused before any connection).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::connectwise::{Auth, AuthKind, ClientConfig, Credentials, CwClient, CwError, CwSession, SitePolicy};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use server::sandbox::{self, Faults, RunningSandbox, SandboxConfig};

async fn start_sandbox() -> RunningSandbox {
    let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    sandbox::spawn(config).await.expect("sandbox starts")
}

fn client_with(policy: SitePolicy, timeout: Duration, client_id: Option<&str>) -> CwClient {
    CwClient::new(ClientConfig {
        client_id: client_id.map(Into::into),
        connect_timeout: Duration::from_secs(2),
        timeout,
        policy,
        limits: Default::default(),
    })
    .expect("client")
}

fn client() -> CwClient {
    client_with(SitePolicy::dev(), Duration::from_secs(10), Some(sandbox::DEMO_CLIENT_ID))
}

fn api_member(site: &str) -> Credentials {
    Credentials {
        site: site.into(),
        company_id: sandbox::DEMO_COMPANY_ID.into(),
        auth: Auth::ApiMember {
            public_key: sandbox::DEMO_PUBLIC_KEY.into(),
            private_key: sandbox::DEMO_PRIVATE_KEY.into(),
        },
    }
}

async fn session(sb: &RunningSandbox) -> CwSession {
    client().session(&api_member(&sb.url())).await.expect("session")
}

fn raw() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("raw client")
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

async fn stored_tickets(sb: &RunningSandbox) -> Vec<Value> {
    raw().get(format!("{}/_sandbox/tickets", sb.url())).send().await.expect("tickets").json().await.expect("json")
}

// ---------------------------------------------------------------------------------------------------------------
// Operations against the sandbox

#[tokio::test]
async fn test_connection_discovers_the_codebase_once_per_site() {
    let sb = start_sandbox().await;
    let client = client();
    let session = client.session(&api_member(&sb.url())).await.expect("session");
    assert_eq!(session.codebase().base.as_str(), format!("http://{}/v2025_1/apis/3.0/", sb.addr));
    let info = session.test_connection().await.expect("system/info");
    assert_eq!(info.version, sandbox::VERSION_NUMBER);
    // A second session on the same site and company uses the cached codebase.
    client.session(&api_member(&sb.url())).await.expect("second session").test_connection().await.expect("info");
    assert_eq!(sb.sandbox.stats(), (1, 2));
    // A company ID the site does not know: discovery answers with an empty body.
    let mut unknown = api_member(&sb.url());
    unknown.company_id = "nosuchco".into();
    let err = client.session(&unknown).await.expect_err("unknown company");
    assert!(matches!(&err, CwError::NotFound { what } if what.contains("nosuchco")), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn both_authentications_and_their_refusals() {
    let sb = start_sandbox().await;
    let client = client();
    let mut integrator = api_member(&sb.url());
    integrator.auth = Auth::Integrator {
        username: sandbox::DEMO_INTEGRATOR_USERNAME.into(),
        password: sandbox::DEMO_INTEGRATOR_PASSWORD.into(),
    };
    client.session(&integrator).await.expect("session").test_connection().await.expect("integrator login works");

    integrator.auth = Auth::Integrator { username: sandbox::DEMO_INTEGRATOR_USERNAME.into(), password: "wrong".into() };
    let err = client.session(&integrator).await.expect("session").test_connection().await.expect_err("refused");
    assert_eq!(err, CwError::Unauthorized { kind: AuthKind::Integrator });
    assert!(err.to_string().contains("integrator"));

    let mut wrong_key = api_member(&sb.url());
    wrong_key.auth = Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: "nope".into() };
    let err = client.session(&wrong_key).await.expect("session").test_connection().await.expect_err("refused");
    assert_eq!(err, CwError::Unauthorized { kind: AuthKind::ApiMember });
    assert!(err.to_string().contains("public and private key"));
    assert!(!err.is_retryable());

    // The API member's keys sent as an integrator login are refused too.
    let mut crossed = api_member(&sb.url());
    crossed.auth =
        Auth::Integrator { username: sandbox::DEMO_PUBLIC_KEY.into(), password: sandbox::DEMO_PRIVATE_KEY.into() };
    let err = client.session(&crossed).await.expect("session").test_connection().await.expect_err("refused");
    assert_eq!(err, CwError::Unauthorized { kind: AuthKind::Integrator });
}

#[tokio::test]
async fn a_missing_or_unknown_client_id_is_refused_with_401() {
    let sb = start_sandbox().await;
    let without = client_with(SitePolicy::dev(), Duration::from_secs(5), None);
    let err = without.session(&api_member(&sb.url())).await.expect("session").test_connection().await.expect_err("401");
    assert!(matches!(err, CwError::Unauthorized { .. }), "{err:?}");
    let unknown = client_with(SitePolicy::dev(), Duration::from_secs(5), Some("not-registered"));
    let err = unknown.session(&api_member(&sb.url())).await.expect("session").test_connection().await.expect_err("401");
    assert!(matches!(err, CwError::Unauthorized { .. }), "{err:?}");

    // On the wire: 401 with Manage's error body, whatever the credentials.
    let auth =
        Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: sandbox::DEMO_PRIVATE_KEY.into() }
            .authorization(sandbox::DEMO_COMPANY_ID);
    let response = raw()
        .get(format!("{}/v2025_1/apis/3.0/system/info", sb.url()))
        .header("authorization", auth)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or_default().contains("clientId"), "{body}");
}

#[tokio::test]
async fn every_lookup_of_the_wizard() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let boards = s.boards().await.expect("boards");
    assert_eq!(boards.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["Help Desk", "Security Operations"]);
    let names = |list: Vec<app::connectwise::Named>| list.into_iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.board_statuses(1).await.expect("statuses")),
        ["New", "In Progress", "Waiting on Client", "Closed"]
    );
    assert_eq!(names(s.board_statuses(2).await.expect("statuses")), ["New", "Triage", "Contained", "Resolved"]);
    assert_eq!(names(s.board_types(2).await.expect("types")), ["Breach", "Phishing", "Malware"]);
    assert_eq!(names(s.board_subtypes(1).await.expect("subtypes")), ["Account Compromise", "Password Reset", "Other"]);
    assert_eq!(names(s.board_items(2).await.expect("items")), ["Dark Web ID", "Endpoint"]);
    assert_eq!(s.priorities().await.expect("priorities").len(), 5);
    assert_eq!(names(s.sources().await.expect("sources")), ["Call", "Email", "Portal", "Dark Web ID"]);
    let err = s.board_statuses(999).await.expect_err("no such board");
    assert!(matches!(err, CwError::NotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn companies_are_read_past_25_and_past_1000_rows() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let (_, calls_before) = sb.sandbox.stats();
    let companies = s.companies().await.expect("companies");
    let expected = 1 + sandbox::data::DEMO_COMPANIES.len() + sandbox::data::GENERATED_COMPANIES;
    assert_eq!(companies.len(), expected);
    assert!(companies.len() > 2000);
    let (_, calls_after) = sb.sandbox.stats();
    assert_eq!(calls_after - calls_before, 3, "three pages of 1000");
    let ids: std::collections::HashSet<i64> = companies.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), expected, "no row twice");
    assert!(companies.windows(2).all(|w| w[0].name.to_lowercase() <= w[1].name.to_lowercase()), "orderBy name");

    // What a naive client gets: 25 rows and a Link to the next page; never more than 1000 per page.
    let auth =
        Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: sandbox::DEMO_PRIVATE_KEY.into() }
            .authorization(sandbox::DEMO_COMPANY_ID);
    let get = |query: &str| {
        raw()
            .get(format!("{}/v2025_1/apis/3.0/company/companies{query}", sb.url()))
            .header("authorization", auth.clone())
            .header("clientId", sandbox::DEMO_CLIENT_ID)
            .send()
    };
    let response = get("").await.expect("default page");
    let link = response.headers().get("link").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert_eq!(response.json::<Vec<Value>>().await.expect("json").len(), 25);
    let response = get("?pageSize=5000&page=3").await.expect("last page");
    let link = response.headers().get("link").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    assert!(!link.contains("rel=\"next\"") && link.contains("rel=\"prev\""), "{link}");
    assert_eq!(response.json::<Vec<Value>>().await.expect("json").len(), expected - 2000);
    let rows: Vec<Value> =
        get("?conditions=name%20like%20%22Initech*%22&fields=id,name").await.expect("like").json().await.expect("json");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].as_object().map(|o| o.len()), Some(2), "fields trims the rows: {}", rows[0]);
    let rows: Vec<Value> = get("?conditions=name%20like%20%22Initech*%22%20and%20name%20contains%20%22Hold%22")
        .await
        .expect("and")
        .json()
        .await
        .expect("json");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Initech Holdings");
}

#[tokio::test]
async fn finds_a_company_by_its_exact_name_only() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let acme = s.find_company_by_name("Acme Corporation").await.expect("lookup").expect("found");
    assert_eq!((acme.name.as_str(), acme.identifier.as_str()), ("Acme Corporation", "AcmeCorporation"));
    let globex = s.find_company_by_name("Globex, Inc.").await.expect("lookup").expect("found");
    assert_eq!(globex.name, "Globex, Inc.");
    assert_eq!(s.find_company_by_name("Globex Inc").await.expect("lookup"), None, "a near miss is not a match");
    let initech = s.find_company_by_name("initech").await.expect("lookup").expect("found without case");
    assert_eq!(initech.name, "Initech");
    assert_eq!(s.find_company_by_name("Acme").await.expect("lookup"), None);
    assert_eq!(s.find_company_by_name(r#"Evil" or name like "*"#).await.expect("quoted safely"), None);
}

fn full_ticket(xref: &str) -> Map<String, Value> {
    object(json!({
        "summary": "Dark Web ID: 3 new compromises for Acme Corporation",
        "company": { "identifier": "AcmeCorporation" },
        "board": { "name": "Security Operations" },
        "status": { "name": "Triage" },
        "type": { "name": "Breach" },
        "subType": { "name": "Credential Leak" },
        "item": { "name": "Dark Web ID" },
        "priority": { "id": 2 },
        "source": { "name": "Dark Web ID" },
        "initialDescription": "j.doe@acme.example found in a combo list.\nSource: pastebin",
        "externalXRef": xref,
        "contactEmailAddress": "it@acme.example",
        "requiredDate": "2026-11-27T10:00:00Z",
        "automaticEmailCcFlag": false,
    }))
}

#[tokio::test]
async fn creates_a_ticket_and_finds_it_by_external_reference() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let created = s.create_ticket(&full_ticket("dwid:0b7c6a52-1111-4e2f-9a5d-000000000001")).await.expect("created");
    assert!(created.id > 0);
    assert_eq!(created.body["board"]["name"], "Security Operations");
    assert_eq!(created.body["status"]["name"], "Triage");
    assert_eq!(created.body["status"]["id"], 12);
    assert_eq!(created.body["company"]["name"], "Acme Corporation");
    assert_eq!(created.body["priority"]["name"], "Priority 2 - Quick Response");
    assert!(created.body.get("initialDescription").is_none(), "POST-only, not returned");
    assert!(created.body["_info"]["dateEntered"].is_string());

    // Defaults: the first board, its first status, the default priority.
    let minimal = object(json!({ "summary": "Minimal", "company": { "id": 2 } }));
    let second = s.create_ticket(&minimal).await.expect("minimal ticket");
    assert_eq!(second.body["board"]["name"], "Help Desk");
    assert_eq!(second.body["status"]["name"], "New");
    assert_eq!(second.body["priority"]["name"], "Priority 3 - Normal Response");

    let stored = stored_tickets(&sb).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["initialDescription"], "j.doe@acme.example found in a combo list.\nSource: pastebin");
    assert_eq!(stored[0]["externalXRef"], "dwid:0b7c6a52-1111-4e2f-9a5d-000000000001");

    let found = s.find_ticket_by_external_xref("dwid:0b7c6a52-1111-4e2f-9a5d-000000000001").await.expect("lookup");
    assert_eq!(found, Some(created.id));
    assert_eq!(s.find_ticket_by_external_xref("dwid:unknown").await.expect("lookup"), None);

    // The sandbox's page lists them, newest first, escaped.
    let page = raw().get(sb.url()).send().await.expect("page").text().await.expect("html");
    let (newest, oldest) =
        (page.find("Minimal").expect("minimal shown"), page.find("3 new compromises").expect("shown"));
    assert!(newest < oldest, "newest first");
    assert!(page.contains("<tbody>"));
}

#[tokio::test]
async fn manage_validation_is_reported_field_by_field() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let expect_validation = |err: CwError| -> (String, Vec<(String, String)>) {
        assert!(!err.is_retryable());
        match err {
            CwError::Validation { message, errors } => {
                (message, errors.into_iter().map(|e| (e.field, e.code)).collect())
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    };
    let (_, fields) =
        expect_validation(s.create_ticket(&object(json!({ "initialDescription": "x" }))).await.expect_err("400"));
    assert_eq!(
        fields,
        [("summary".into(), "MissingRequiredField".into()), ("company".into(), "MissingRequiredField".into())]
    );

    let mut long = full_ticket("dwid:long");
    long.insert("summary".into(), json!("x".repeat(101)));
    long.insert("zip".into(), json!("1234567890123"));
    let (_, fields) = expect_validation(s.create_ticket(&long).await.expect_err("400"));
    assert!(fields.contains(&("summary".into(), "InvalidField".into())), "{fields:?}");
    assert!(fields.contains(&("zip".into(), "InvalidField".into())), "{fields:?}");

    let mut other_board = full_ticket("dwid:board");
    other_board.insert("board".into(), json!({ "name": "Help Desk" }));
    let err = s.create_ticket(&other_board).await.expect_err("Triage is not on Help Desk");
    assert!(err.to_string().contains("Status not found on board 'Help Desk'"), "{err}");
    let (_, fields) = expect_validation(err);
    for field in ["status/name", "type/name", "subType/name", "item/name"] {
        assert!(fields.contains(&(field.into(), "NotFound".into())), "{field}: {fields:?}");
    }

    let mut unknown_company = full_ticket("dwid:company");
    unknown_company.insert("company".into(), json!({ "identifier": "NoSuchCompany" }));
    let (_, fields) = expect_validation(s.create_ticket(&unknown_company).await.expect_err("400"));
    assert_eq!(fields, [("company/identifier".into(), "NotFound".into())]);

    let mut scalar = full_ticket("dwid:scalar");
    scalar.insert("company".into(), json!(24));
    let (message, _) = expect_validation(s.create_ticket(&scalar).await.expect_err("400"));
    assert!(message.contains("Error converting value 24") && message.contains("Path 'company'"), "{message}");

    let mut unknown_member = full_ticket("dwid:member");
    unknown_member.insert("colour".into(), json!("red"));
    let (message, _) = expect_validation(s.create_ticket(&unknown_member).await.expect_err("400"));
    assert!(message.contains("Could not find member 'colour' on object of type 'Ticket'"), "{message}");

    let mut bad_date = full_ticket("dwid:date");
    bad_date.insert("requiredDate".into(), json!("next tuesday"));
    expect_validation(s.create_ticket(&bad_date).await.expect_err("400"));

    assert!(stored_tickets(&sb).await.is_empty(), "nothing refused was stored");
}

// ---------------------------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn injected_faults_map_to_retryable_errors() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    sb.sandbox.set_faults(Faults { rate_limit_rate: 1.0, retry_after_secs: 7, ..Faults::default() }).await;
    let err = s.test_connection().await.expect_err("429");
    assert_eq!(err, CwError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    assert!(err.is_retryable());
    assert!(err.to_string().contains("7 s"));

    sb.sandbox.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).await;
    let err = s.create_ticket(&full_ticket("dwid:500")).await.expect_err("500");
    assert!(matches!(&err, CwError::Transient { reason } if reason.contains("500")), "{err:?}");
    assert!(err.is_retryable());
    assert!(stored_tickets(&sb).await.is_empty());

    // Set at run time over HTTP, as a person would; an unknown member is refused.
    let url = format!("{}/_sandbox/faults", sb.url());
    let response = raw().post(&url).body(r#"{"latency_ms": 250}"#).send().await.expect("set");
    assert_eq!(response.status(), StatusCode::OK);
    let faults: Faults = raw().get(&url).send().await.expect("get").json().await.expect("json");
    assert_eq!(faults, Faults { latency_ms: 250, ..Faults::default() }, "members left out are off");
    let started = Instant::now();
    s.test_connection().await.expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let response = raw().post(&url).body(r#"{"error_rate": 2}"#).send().await.expect("bad rate");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = raw().post(&url).body(r#"{"typo": 1}"#).send().await.expect("bad member");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    raw().post(&url).body("{}").send().await.expect("reset");
    assert_eq!(sb.sandbox.faults().await, Faults::default());
}

#[tokio::test]
async fn a_timeout_after_commit_leaves_a_ticket_the_retry_finds() {
    let sb = start_sandbox().await;
    let impatient = client_with(SitePolicy::dev(), Duration::from_millis(800), Some(sandbox::DEMO_CLIENT_ID));
    let s = impatient.session(&api_member(&sb.url())).await.expect("session");
    sb.sandbox.set_faults(Faults { timeout_after_commit_rate: 1.0, stall_secs: 30, ..Faults::default() }).await;
    let started = Instant::now();
    let err = s.create_ticket(&full_ticket("dwid:committed")).await.expect_err("times out");
    assert!(matches!(err, CwError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5), "the client's timeout, not the stall");
    assert_eq!(stored_tickets(&sb).await.len(), 1, "the ticket was created all the same");
    sb.sandbox.set_faults(Faults::default()).await;
    let found = s.find_ticket_by_external_xref("dwid:committed").await.expect("lookup");
    assert_eq!(found, stored_tickets(&sb).await[0]["id"].as_i64());
}

/// Every byte but letters and digits percent-encoded (for `conditions` in a raw query string).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A raw, authenticated API GET (`path_and_query` after `apis/3.0/`).
async fn api_get(sb: &RunningSandbox, path_and_query: &str) -> reqwest::Response {
    let auth =
        Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: sandbox::DEMO_PRIVATE_KEY.into() }
            .authorization(sandbox::DEMO_COMPANY_ID);
    raw()
        .get(format!("{}/{}apis/3.0/{path_and_query}", sb.url(), sandbox::CODEBASE))
        .header("authorization", auth)
        .header("clientId", sandbox::DEMO_CLIENT_ID)
        .send()
        .await
        .expect("response")
}

async fn sandbox_json(sb: &RunningSandbox, path: &str) -> Value {
    raw().get(format!("{}/_sandbox/{path}", sb.url())).send().await.expect(path).json().await.expect("json")
}

#[tokio::test]
async fn every_post_stalls_at_rate_one_yet_each_ticket_is_stored() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    sb.sandbox.set_faults(Faults { timeout_after_commit_rate: 1.0, stall_secs: 1, ..Faults::default() }).await;
    let started = Instant::now();
    let first = s.create_ticket(&full_ticket("dwid:stalled-1")).await.expect("answered after the stall");
    let second = s.create_ticket(&full_ticket("dwid:stalled-2")).await.expect("answered after the stall");
    assert!(started.elapsed() >= Duration::from_secs(2), "both stalled");
    let stored = stored_tickets(&sb).await;
    assert_eq!(stored.iter().map(|t| t["id"].as_i64()).collect::<Vec<_>>(), [Some(first.id), Some(second.id)]);
    assert_eq!(sb.sandbox.fault_counts().stalls, 2);
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!((stats["stalls"].as_u64(), stats["tickets"].as_u64()), (Some(2), Some(2)), "{stats}");
    assert_eq!((stats["faults500"].as_u64(), stats["faults429"].as_u64()), (Some(0), Some(0)), "{stats}");

    // A refused ticket is not stored, so never stalls; a rate of 0 never stalls.
    s.create_ticket(&object(json!({ "summary": "no company" }))).await.expect_err("400");
    sb.sandbox.set_faults(Faults { stall_secs: 30, ..Faults::default() }).await;
    s.create_ticket(&full_ticket("dwid:quick")).await.expect("no stall");
    assert_eq!(sb.sandbox.fault_counts().stalls, 2);

    // The rate is validated like the others.
    let url = format!("{}/_sandbox/faults", sb.url());
    let response = raw().post(&url).body(r#"{"timeout_after_commit_rate": 1.5}"#).send().await.expect("bad rate");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or_default().contains("timeout_after_commit_rate"), "{body}");
    let response = raw().post(&url).body(r#"{"timeout_after_commit": true}"#).send().await.expect("old member");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "the boolean is gone");
    let response = raw().post(&url).body(r#"{"timeout_after_commit_rate": 0.02}"#).send().await.expect("set");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sb.sandbox.faults().await, Faults { timeout_after_commit_rate: 0.02, ..Faults::default() });
}

#[tokio::test]
async fn bursts_of_429_answer_every_call_inside_and_none_outside() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    // A burst as long as its period never ends; a 1 ms burst in a very long period ended long ago.
    let always = Faults {
        rate_limit_burst_every_ms: 1_000_000_000,
        rate_limit_burst_ms: 1_000_000_000,
        retry_after_secs: 3,
        ..Faults::default()
    };
    sb.sandbox.set_faults(always.clone()).await;
    let err = s.test_connection().await.expect_err("429");
    assert_eq!(err, CwError::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    let response = api_get(&sb, "service/boards").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("3"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["message"], "Too many requests. Please try again in 3 seconds.", "the random 429's body");
    let never = Faults { rate_limit_burst_ms: 1, ..always };
    tokio::time::sleep(Duration::from_millis(5)).await;
    sb.sandbox.set_faults(never).await;
    s.test_connection().await.expect("outside the burst");
    assert_eq!(sb.sandbox.fault_counts().faults429, 2);

    // On the clock: 150 ms of 429s every 300 ms. Polling sees runs of each, and nothing else.
    sb.sandbox
        .set_faults(Faults { rate_limit_burst_every_ms: 300, rate_limit_burst_ms: 150, ..Faults::default() })
        .await;
    let mut statuses = Vec::new();
    let started = Instant::now();
    let count = |statuses: &[StatusCode], status: StatusCode| statuses.iter().filter(|s| **s == status).count();
    while started.elapsed() < Duration::from_millis(1_000)
        || (started.elapsed() < Duration::from_secs(10)
            && (count(&statuses, StatusCode::TOO_MANY_REQUESTS) < 5 || count(&statuses, StatusCode::OK) < 5))
    {
        statuses.push(api_get(&sb, "system/info").await.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let periods = started.elapsed().as_millis() / 300 + 1;
    let (limited, fine) = (count(&statuses, StatusCode::TOO_MANY_REQUESTS), count(&statuses, StatusCode::OK));
    assert_eq!(limited + fine, statuses.len(), "{statuses:?}");
    assert!(limited >= 5 && fine >= 5, "{statuses:?}");
    // The answer is a function of the time: at most one switch in and one out per period (a coin would flip often).
    let switches = statuses.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 2 && switches as u128 <= 2 * periods, "{periods} periods: {statuses:?}");
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!(stats["faults429"].as_u64(), Some(2 + limited as u64), "{stats}");

    // Burst members are validated with the rest and survive a GET.
    let url = format!("{}/_sandbox/faults", sb.url());
    let set = r#"{"rate_limit_burst_every_ms": 60000, "rate_limit_burst_ms": 5000, "error_rate": 0.05}"#;
    assert_eq!(raw().post(&url).body(set).send().await.expect("set").status(), StatusCode::OK);
    let faults: Faults = raw().get(&url).send().await.expect("get").json().await.expect("json");
    assert_eq!(
        (faults.rate_limit_burst_every_ms, faults.rate_limit_burst_ms, faults.error_rate),
        (60_000, 5_000, 0.05)
    );
}

#[tokio::test]
async fn faults_500_are_counted() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    sb.sandbox.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).await;
    for _ in 0..3 {
        s.test_connection().await.expect_err("500");
    }
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!((stats["faults500"].as_u64(), stats["faults429"].as_u64()), (Some(3), Some(0)), "{stats}");
    assert!(stats["apiCalls"].as_u64() >= Some(3));
}

#[tokio::test]
async fn external_references_are_found_through_the_index() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let a = s.create_ticket(&full_ticket("dwid:aaa")).await.expect("a").id;
    let b = s.create_ticket(&full_ticket("dwid:BBB")).await.expect("b").id;
    s.create_ticket(&object(json!({ "summary": "No reference", "company": { "id": 2 } }))).await.expect("c");
    assert_eq!(s.find_ticket_by_external_xref("dwid:aaa").await.expect("lookup"), Some(a));
    assert_eq!(s.find_ticket_by_external_xref("dwid:bbb").await.expect("lookup"), Some(b), "without case");
    assert_eq!(s.find_ticket_by_external_xref("dwid:unknown").await.expect("lookup"), None);

    let rows = |response: reqwest::Response| async move { response.json::<Vec<Value>>().await.expect("json") };
    let query = |conditions: &str| format!("service/tickets?conditions={}", encode(conditions));
    let unknown = api_get(&sb, &query(r#"externalXRef="dwid:unknown""#)).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(unknown.text().await.expect("body"), "[]");
    // Spaces and the field's case are free; the answer is the API's view of the ticket, as the generic path gives.
    let indexed = rows(api_get(&sb, &query(r#" ExternalXRef = "DWID:aaa" "#)).await).await;
    let generic = rows(api_get(&sb, &query(r#"externalXRef="dwid:aaa" and id > 0"#)).await).await;
    assert_eq!(indexed.len(), 1);
    assert_eq!(indexed, generic);
    assert_eq!(indexed[0]["id"].as_i64(), Some(a));
    assert!(indexed[0].get("initialDescription").is_none(), "POST-only, not returned");
    let projected = rows(api_get(&sb, &format!("{}&fields=id", query(r#"externalXRef="dwid:aaa""#))).await).await;
    assert_eq!(projected, [json!({ "id": a })]);
    // Other conditions on externalXRef take the generic path.
    let like = rows(api_get(&sb, &query(r#"externalXRef like "dwid:*""#)).await).await;
    assert_eq!(like.iter().map(|t| t["id"].as_i64()).collect::<Vec<_>>(), [Some(a), Some(b)]);
    let bad = api_get(&sb, &query(r#"externalXRef="#)).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_summary_reports_references_carried_by_more_than_one_ticket() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let empty = sandbox_json(&sb, "tickets/summary").await;
    assert_eq!(empty, json!({ "tickets": 0, "duplicates": [] }));
    s.create_ticket(&full_ticket("dwid:once")).await.expect("once");
    s.create_ticket(&full_ticket("dwid:twice")).await.expect("twice");
    s.create_ticket(&object(json!({ "summary": "No reference", "company": { "id": 2 } }))).await.expect("none");
    s.create_ticket(&object(json!({ "summary": "No reference", "company": { "id": 2 } }))).await.expect("none");
    assert_eq!(sandbox_json(&sb, "tickets/summary").await, json!({ "tickets": 4, "duplicates": [] }));
    s.create_ticket(&full_ticket("dwid:twice")).await.expect("again");
    s.create_ticket(&full_ticket("dwid:thrice")).await.expect("thrice");
    s.create_ticket(&full_ticket("dwid:thrice")).await.expect("thrice");
    s.create_ticket(&full_ticket("dwid:thrice")).await.expect("thrice");
    assert_eq!(
        sandbox_json(&sb, "tickets/summary").await,
        json!({
            "tickets": 8,
            "duplicates": [
                { "externalXRef": "dwid:thrice", "count": 3 },
                { "externalXRef": "dwid:twice", "count": 2 },
            ],
        })
    );
    assert_eq!(sb.sandbox.ticket_summary().await["duplicates"].as_array().map(Vec::len), Some(2));
}

// ---------------------------------------------------------------------------------------------------------------
// A fake Manage for answers the sandbox never gives. The company ID picks the behaviour: discovery answers with the
// codebase "{companyId}/", and every API call under it behaves as that name says.

#[derive(Clone, Default)]
struct Fake {
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn fake_company_info(Path(id): Path<String>) -> Response {
    if id == "htmldiscovery" {
        return axum::response::Html("<html><body>Sign in</body></html>").into_response();
    }
    axum::Json(json!({ "CompanyName": "Fake", "Codebase": format!("{id}/"), "IsCloud": "True" })).into_response()
}

/// `n` companies with the given name padding.
fn companies_page(page: usize, rows: usize, pad: usize) -> Value {
    let filler = "x".repeat(pad);
    Value::Array(
        (0..rows)
            .map(|i| json!({ "id": page * 1000 + i, "identifier": format!("C{page}-{i}"), "name": format!("Company {page}-{i} {filler}") }))
            .collect(),
    )
}

/// An endless list: every page is full and links to the next one.
fn endless_page(codebase: &str, page: usize, pad: usize) -> Response {
    let next = format!("</{codebase}/apis/3.0/company/companies?pageSize=1000&page={}>; rel=\"next\"", page + 1);
    ([(http::header::LINK, next)], axum::Json(companies_page(page, 1000, pad))).into_response()
}

async fn fake_api(
    State(fake): State<Fake>,
    Path((codebase, rest)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    fake.hits.lock().expect("lock").push(format!("{codebase}/{rest}"));
    let info = json!({ "version": "v2025.1.1", "isCloud": true });
    let page: usize = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    match codebase.as_str() {
        "endless" => endless_page(&codebase, page, 0),
        "widerows" => endless_page(&codebase, page, 60),
        "drip" => {
            tokio::time::sleep(Duration::from_millis(250)).await;
            endless_page(&codebase, page, 0)
        }
        "emptypages" => {
            let next =
                format!("</emptypages/apis/3.0/company/companies?pageSize=1000&page={}>; rel=\"next\"", page + 1);
            ([(http::header::LINK, next)], axum::Json(json!([]))).into_response()
        }
        "selflink" => {
            let same = "</selflink/apis/3.0/company/companies?pageSize=1000&page=1>; rel=\"next\"";
            ([(http::header::LINK, same)], axum::Json(companies_page(1, 10, 0))).into_response()
        }
        "huge" => {
            // A body that never ends: 64 KB chunks for as long as the client reads.
            let chunks = futures_util::stream::unfold(0u64, |n| async move {
                let chunk = if n == 0 { b"[".to_vec() } else { vec![b' '; 64 * 1024] };
                Some((Ok::<_, std::io::Error>(chunk), n + 1))
            });
            ([(http::header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(chunks)).into_response()
        }
        "headers" => {
            fake.headers.lock().expect("lock").push(headers);
            axum::Json(info).into_response()
        }
        "forbidden" => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"code": "Forbidden", "message": "You do not have access to system/info"})),
        )
            .into_response(),
        "html" => axum::response::Html("<!DOCTYPE html><html><body>Maintenance</body></html>").into_response(),
        "html500" => (StatusCode::BAD_GATEWAY, axum::response::Html("<html>Bad gateway</html>")).into_response(),
        "truncated" => {
            ([(http::header::CONTENT_TYPE, "application/json")], r#"{"version":"v2025.1.1","isCl"#).into_response()
        }
        "wrongshape" => axum::Json(json!([1, 2, 3])).into_response(),
        "garbage" => ([(http::header::CONTENT_TYPE, "application/json")], "Service Unavailable!").into_response(),
        "stall" => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            axum::Json(info).into_response()
        }
        "moved" if rest == "system/info" => {
            (StatusCode::FOUND, [(http::header::LOCATION, "/moved/apis/3.0/system/info2")]).into_response()
        }
        "moved" if rest == "system/info2" => axum::Json(info).into_response(),
        "moved" => {
            (StatusCode::TEMPORARY_REDIRECT, [(http::header::LOCATION, "/moved/apis/3.0/elsewhere")]).into_response()
        }
        "offsite" => {
            (StatusCode::FOUND, [(http::header::LOCATION, "http://169.254.169.254/latest/meta-data/")]).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_fake() -> (String, Fake) {
    let fake = Fake::default();
    let app = axum::Router::new()
        .route("/login/companyinfo/{id}", axum::routing::get(fake_company_info))
        .route("/{codebase}/apis/3.0/{*rest}", axum::routing::any(fake_api))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), fake)
}

fn fake_credentials(site: &str, company_id: &str, auth: Auth) -> Credentials {
    Credentials { site: site.into(), company_id: company_id.into(), auth }
}

#[tokio::test]
async fn sends_the_exact_headers_for_a_known_key_pair() {
    let (site, fake) = start_fake().await;
    let c = client();
    let keys = Auth::ApiMember { public_key: "PublicKey1".into(), private_key: "PrivateKey2".into() };
    c.session(&fake_credentials(&site, "headers", keys)).await.expect("session").test_connection().await.expect("ok");
    let integrator = Auth::Integrator { username: "ops".into(), password: "Pass w0rd:x".into() };
    c.session(&fake_credentials(&site, "headers", integrator))
        .await
        .expect("session")
        .test_connection()
        .await
        .expect("ok");
    let seen = fake.headers.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    let h = |i: usize, name: &str| seen[i].get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    // base64("headers+PublicKey1:PrivateKey2")
    assert_eq!(h(0, "authorization").as_deref(), Some("Basic aGVhZGVycytQdWJsaWNLZXkxOlByaXZhdGVLZXky"));
    assert_eq!(h(0, "accept").as_deref(), Some("application/vnd.connectwise.com+json; version=2025.1"));
    assert_eq!(h(0, "clientid").as_deref(), Some(sandbox::DEMO_CLIENT_ID));
    assert_eq!(h(0, "x-cw-usertype"), None);
    // base64("headers+ops:Pass w0rd:x")
    assert_eq!(h(1, "authorization").as_deref(), Some("Basic aGVhZGVycytvcHM6UGFzcyB3MHJkOng="));
    assert_eq!(h(1, "x-cw-usertype").as_deref(), Some("integrator"));
}

#[tokio::test]
async fn forbidden_html_truncated_and_garbage_answers() {
    let (site, _fake) = start_fake().await;
    let c = client();
    let keys = || Auth::ApiMember { public_key: "p".into(), private_key: "s".into() };
    let call = |company: &'static str| {
        let c = c.clone();
        let creds = fake_credentials(&site, company, keys());
        async move { c.session(&creds).await?.test_connection().await }
    };
    let err = call("forbidden").await.expect_err("403");
    assert!(matches!(&err, CwError::Forbidden { message } if message.contains("system/info")), "{err:?}");
    assert!(err.to_string().contains("security role") && !err.is_retryable());
    for (company, reason) in
        [("html", "HTML"), ("truncated", "truncated"), ("wrongshape", "unexpected shape"), ("garbage", "not JSON")]
    {
        let err = call(company).await.expect_err(company);
        assert!(matches!(&err, CwError::UnexpectedResponse { reason: r } if r.contains(reason)), "{company}: {err:?}");
        assert!(!err.is_retryable());
    }
    let err = call("html500").await.expect_err("502");
    assert!(matches!(&err, CwError::Transient { reason } if reason.contains("502")), "{err:?}");
    let err = c.session(&fake_credentials(&site, "htmldiscovery", keys())).await.expect_err("html discovery");
    assert!(matches!(&err, CwError::UnexpectedResponse { reason } if reason.contains("HTML")), "{err:?}");
}

#[tokio::test]
async fn a_stalled_answer_hits_the_timeout() {
    let (site, _fake) = start_fake().await;
    let c = client_with(SitePolicy::dev(), Duration::from_millis(600), Some("x"));
    let session = c
        .session(&fake_credentials(&site, "stall", Auth::ApiMember { public_key: "p".into(), private_key: "s".into() }))
        .await
        .expect("session");
    let started = Instant::now();
    let err = session.test_connection().await.expect_err("timeout");
    assert!(matches!(&err, CwError::Transient { reason } if reason.contains("no answer")), "{err:?}");
    assert!(err.is_retryable());
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(550) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn redirects_are_followed_on_get_within_the_site_only_and_never_on_post() {
    let (site, fake) = start_fake().await;
    let c = client();
    let keys = || Auth::ApiMember { public_key: "p".into(), private_key: "s".into() };
    let moved = c.session(&fake_credentials(&site, "moved", keys())).await.expect("session");
    moved.test_connection().await.expect("same-site GET redirect followed");
    let err = moved.create_ticket(&object(json!({ "summary": "x" }))).await.expect_err("POST redirect");
    assert!(matches!(&err, CwError::UnexpectedResponse { reason } if reason.contains("redirect")), "{err:?}");
    assert!(!fake.hits.lock().expect("lock").iter().any(|h| h.ends_with("elsewhere")), "the POST was not re-sent");
    let offsite = c.session(&fake_credentials(&site, "offsite", keys())).await.expect("session");
    let err = offsite.test_connection().await.expect_err("redirect to another site");
    assert!(matches!(&err, CwError::UnexpectedResponse { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Bounded work: a hostile or broken site cannot stream without end into the wizard or the worker

fn limited(limits: app::connectwise::Limits) -> CwClient {
    CwClient::new(ClientConfig {
        client_id: Some("x".into()),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        policy: SitePolicy::dev(),
        limits,
    })
    .expect("client")
}

fn keys() -> Auth {
    Auth::ApiMember { public_key: "p".into(), private_key: "s".into() }
}

fn page_hits(fake: &Fake, codebase: &str) -> usize {
    fake.hits.lock().expect("lock").iter().filter(|h| h.starts_with(&format!("{codebase}/company"))).count()
}

#[tokio::test]
async fn a_list_stops_at_its_row_cap_with_a_sentence() {
    let (site, fake) = start_fake().await;
    let limits = app::connectwise::Limits { max_list_rows: 5_000, ..Default::default() };
    let session = limited(limits).session(&fake_credentials(&site, "endless", keys())).await.expect("session");
    let err = session.companies().await.expect_err("endless list");
    assert!(
        matches!(&err, CwError::TooLarge { what, limit } if what == "the companies" && limit == "5000 rows"),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 5000 rows for the companies"), "{err}");
    assert!(!err.is_retryable());
    // The sixth page crossed the cap; nothing after it was asked for.
    assert_eq!(page_hits(&fake, "endless"), 6);
}

#[tokio::test]
async fn a_list_stops_at_its_byte_cap_over_all_pages() {
    let (site, fake) = start_fake().await;
    // Each page is about 130 KB; 300 KB in all allows two and stops inside the third.
    let limits = app::connectwise::Limits { max_list_bytes: 300 * 1024, ..Default::default() };
    let session = limited(limits).session(&fake_credentials(&site, "widerows", keys())).await.expect("session");
    let err = session.companies().await.expect_err("too many bytes");
    assert!(matches!(&err, CwError::TooLarge { limit, .. } if limit == "300 KB"), "{err:?}");
    assert_eq!(page_hits(&fake, "widerows"), 3);
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_body_cap() {
    let (site, _fake) = start_fake().await;
    let limits = app::connectwise::Limits { max_body_bytes: 1024 * 1024, ..Default::default() };
    let session = limited(limits).session(&fake_credentials(&site, "huge", keys())).await.expect("session");
    let started = Instant::now();
    let err = session.test_connection().await.expect_err("endless body");
    assert!(matches!(&err, CwError::TooLarge { limit, .. } if limit == "1 MB"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_endless_list_hits_the_operation_deadline() {
    let (site, fake) = start_fake().await;
    let limits = app::connectwise::Limits { operation_deadline: Duration::from_secs(1), ..Default::default() };
    let session = limited(limits).session(&fake_credentials(&site, "drip", keys())).await.expect("session");
    let started = Instant::now();
    let err = session.companies().await.expect_err("deadline");
    let elapsed = started.elapsed();
    assert!(matches!(&err, CwError::Transient { reason } if reason.contains("longer than 1 s")), "{err:?}");
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(page_hits(&fake, "drip") <= 5, "each page is 250 ms: at most 5 in a second");
}

#[tokio::test]
async fn empty_pages_linking_on_without_end_stop_at_the_page_cap() {
    let (site, fake) = start_fake().await;
    let limits = app::connectwise::Limits { max_list_rows: 5_000, ..Default::default() };
    let session = limited(limits).session(&fake_credentials(&site, "emptypages", keys())).await.expect("session");
    let err = session.companies().await.expect_err("endless empty pages");
    assert!(matches!(&err, CwError::TooLarge { limit, .. } if limit == "7 pages"), "{err:?}");
    assert_eq!(page_hits(&fake, "emptypages"), 7);
}

#[tokio::test]
async fn a_page_that_links_to_itself_is_refused_at_once() {
    let (site, fake) = start_fake().await;
    let session = client().session(&fake_credentials(&site, "selflink", keys())).await.expect("session");
    let err = session.companies().await.expect_err("loop");
    assert!(matches!(&err, CwError::UnexpectedResponse { reason } if reason.contains("same page")), "{err:?}");
    // The first page, then the page its link names, which links to itself.
    assert_eq!(page_hits(&fake, "selflink"), 2);
}

#[tokio::test]
async fn the_codebase_cache_is_bounded() {
    let (site, _fake) = start_fake().await;
    let c = client();
    let n = app::connectwise::CODEBASE_CACHE_ENTRIES + 100;
    for i in 0..n {
        c.session(&fake_credentials(&site, &format!("company{i}"), keys())).await.expect("session");
    }
    assert_eq!(c.cached_codebases(), app::connectwise::CODEBASE_CACHE_ENTRIES);
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound safety

fn production(policy: SitePolicy) -> CwClient {
    client_with(policy, Duration::from_secs(2), Some("x"))
}

#[tokio::test]
async fn production_refuses_local_and_private_sites_before_connecting() {
    let keys = || Auth::ApiMember { public_key: "p".into(), private_key: "s".into() };
    let policy = SitePolicy::production()
        .with_static_host("cw.evil.example", &["10.0.0.1".parse().expect("ip")])
        .with_static_host("metadata.evil.example", &["169.254.169.254".parse().expect("ip")])
        .with_static_host(
            "mixed.evil.example",
            &["93.184.215.14".parse().expect("ip"), "127.0.0.1".parse().expect("ip")],
        );
    let c = production(policy.clone());
    for (site, needle) in [
        ("cw.evil.example", "10.0.0.1"),
        ("metadata.evil.example", "169.254.169.254"),
        ("mixed.evil.example", "127.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("[::1]", "::1"),
        ("http://na.myconnectwise.net", "https"),
        ("https://user:pw@na.myconnectwise.net", "user name and password"),
        ("na.myconnectwise.net:8080", ":8080"),
        ("localhost", "full host name"),
        ("na.myconnectwise.net/v4_6_release/apis/3.0", "without a path"),
    ] {
        let started = Instant::now();
        let err = c.session(&fake_credentials(site, "acme", keys())).await.expect_err(site);
        assert!(matches!(&err, CwError::SiteRefused { reason } if reason.contains(needle)), "{site}: {err:?}");
        assert!(!err.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(1), "{site}: refused without a connection attempt");
    }
    // A real name that resolves to loopback.
    let refused = policy.resolve("localhost").await.expect_err("localhost resolves to loopback");
    assert!(refused.to_string().contains("localhost"), "{refused}");
    assert!(SitePolicy::dev().resolve("localhost").await.is_ok());
    let v4: IpAddr = "10.0.0.1".parse().expect("ip");
    assert!(!SitePolicy::production().allows_ip(v4) && !SitePolicy::dev().allows_ip(v4));
}

#[tokio::test]
async fn the_checked_address_is_the_one_connected_to() {
    // dev mode: a name mapped to the sandbox's loopback address is called there; the same name mapped to a private
    // address is refused, so the resolver (not the system's DNS) decides where the connection goes.
    let sb = start_sandbox().await;
    let port = sb.addr.port();
    let loopback = SitePolicy::dev().with_static_host("sandbox.test", &["127.0.0.1".parse().expect("ip")]);
    let c = client_with(loopback, Duration::from_secs(5), Some(sandbox::DEMO_CLIENT_ID));
    let mut creds = api_member(&format!("http://sandbox.test:{port}"));
    c.session(&creds).await.expect("session").test_connection().await.expect("reached through the resolver");

    let private = SitePolicy::dev().with_static_host("sandbox.test", &["10.0.0.1".parse().expect("ip")]);
    let c = client_with(private, Duration::from_secs(5), Some(sandbox::DEMO_CLIENT_ID));
    let err = c.session(&creds).await.expect_err("private address");
    assert!(matches!(&err, CwError::SiteRefused { reason } if reason.contains("10.0.0.1")), "{err:?}");

    // Production never talks plain http, even to a name that would resolve to a public address.
    let public = SitePolicy::production().with_static_host("cw.example.com", &["93.184.215.14".parse().expect("ip")]);
    creds.site = "http://cw.example.com".into();
    let err = production(public).session(&creds).await.expect_err("http");
    assert!(matches!(err, CwError::SiteRefused { .. }), "{err:?}");
}
