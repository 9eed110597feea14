//! The Autotask client against the Autotask sandbox, both in this process over real HTTP on loopback: every
//! operation, every kind of error, Autotask's limits, and the outbound-safety rules for the zone Autotask names (no
//! traffic ever leaves loopback: refused zones are refused before any connection).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use app::autotask::sandbox::{self, Faults, RunningSandbox, SandboxConfig, Throttling};
use app::autotask::{AtClient, AtConfig, AtCredentials, AtError, AtFieldKind, AtSession, AuthFailure, Throttle};
use app::connectwise::SitePolicy;
use http::StatusCode;
use serde_json::{Map, Value, json};

async fn start_with(config: SandboxConfig) -> RunningSandbox {
    sandbox::spawn(SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..config }).await.expect("sandbox")
}

async fn start_sandbox() -> RunningSandbox {
    start_with(SandboxConfig::default()).await
}

fn client_with(discovery: &str, policy: SitePolicy, timeout: Duration, thread_limit: usize) -> AtClient {
    AtClient::new(AtConfig {
        discovery_url: discovery.into(),
        connect_timeout: Duration::from_secs(2),
        timeout,
        policy,
        limits: Default::default(),
        thread_limit,
    })
    .expect("client")
}

fn client(sb: &RunningSandbox) -> AtClient {
    client_with(&sb.url(), SitePolicy::dev(), Duration::from_secs(10), 3)
}

fn demo() -> AtCredentials {
    AtCredentials::new(sandbox::DEMO_USERNAME, sandbox::DEMO_SECRET, sandbox::DEMO_INTEGRATION_CODE)
}

async fn session(sb: &RunningSandbox) -> AtSession {
    client(sb).session(&demo()).await.expect("session")
}

fn raw() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("raw client")
}

/// A raw API call with the demo account's headers (`path` after `V1.0/`).
fn api(sb: &RunningSandbox, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    api_as(sb, method, path, sandbox::DEMO_INTEGRATION_CODE, sandbox::DEMO_SECRET)
}

fn api_as(
    sb: &RunningSandbox,
    method: reqwest::Method,
    path: &str,
    code: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    raw()
        .request(method, format!("{}/ATServicesRest/V1.0/{path}", sb.url()))
        .header("ApiIntegrationCode", code)
        .header("UserName", sandbox::DEMO_USERNAME)
        .header("Secret", secret)
}

async fn sandbox_json(sb: &RunningSandbox, path: &str) -> Value {
    raw().get(format!("{}/_sandbox/{path}", sb.url())).send().await.expect(path).json().await.expect("json")
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// A ticket the sandbox accepts: Security Operations queue, Security / Credential Leak.
fn fields() -> Map<String, Value> {
    object(json!({
        "title": "Dark Web ID: 3 new compromises for Acme Corporation",
        "description": "j.doe@acme.example found in a combo list.\nSource: pastebin",
        "status": 1,
        "priority": 2,
        "queueID": 29682833,
        "issueType": 3,
        "subIssueType": 10,
        "ticketType": 2,
        "source": 15,
        "ticketCategory": 100,
        "dueDateTime": "2026-11-28T10:00:00Z",
        "udf:Customer Tier": 1,
        "udf:Breach Date": "2026-11-01T00:00:00Z",
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// Connection and credentials

#[tokio::test]
async fn test_connection_discovers_the_zone_once_per_user() {
    let sb = start_sandbox().await;
    let c = client(&sb);
    let s = c.session(&demo()).await.expect("session");
    assert_eq!(s.zone().url.as_str(), format!("http://{}/ATServicesRest/", sb.addr));
    assert_eq!(s.zone().name, sandbox::DEMO_ZONE_NAME);
    let sentence = s.test_connection().await.expect("connected");
    assert_eq!(sentence, "Connected to Autotask (zone Sandbox / 127).");
    // Another session for the same user (any case) uses the cached zone.
    let mut again = demo();
    again.username = sandbox::DEMO_USERNAME.to_uppercase();
    c.session(&again).await.expect("second session").test_connection().await.expect("connected");
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!(stats["zoneCalls"], 1, "{stats}");
    assert_eq!(c.cached_zones(), 1);
}

#[tokio::test]
async fn each_credential_mistake_gets_its_own_sentence() {
    let sb = start_sandbox().await;
    let c = client(&sb);

    let mut unknown = demo();
    unknown.username = "nobody@demo-msp.example".into();
    let err = c.session(&unknown).await.expect_err("unknown user");
    assert_eq!(err, AtError::Unauthorized { failure: AuthFailure::UnknownUser });
    assert!(err.to_string().starts_with("Autotask does not know the API user"), "{err}");
    assert!(!err.is_retryable());

    let mut wrong_secret = demo();
    wrong_secret.secret = "wrong".into();
    let err = c.session(&wrong_secret).await.expect("zone needs no secret").test_connection().await.expect_err("401");
    assert_eq!(err, AtError::Unauthorized { failure: AuthFailure::Credentials });
    assert!(err.to_string().contains("secret"), "{err}");

    let mut bad_code = demo();
    bad_code.integration_code = "NOTTHECODE".into();
    let err = c.session(&bad_code).await.expect("session").test_connection().await.expect_err("bad code");
    assert_eq!(err, AtError::Unauthorized { failure: AuthFailure::IntegrationCode });
    assert!(err.to_string().contains("tracking identifier"), "{err}");
    assert!(!err.is_retryable());

    // On the wire: a wrong secret is a 401 with an empty body; a bad tracking identifier a 500 with a reason.
    let get = reqwest::Method::GET;
    let response = api_as(&sb, get.clone(), "ThresholdInformation", sandbox::DEMO_INTEGRATION_CODE, "x").send().await;
    let response = response.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.bytes().await.expect("body").is_empty());
    let response = api_as(&sb, get, "ThresholdInformation", "x", sandbox::DEMO_SECRET).send().await;
    let response = response.expect("response");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"errors": ["IntegrationCode is invalid."]}));

    let mut empty = demo();
    empty.secret = String::new();
    empty.integration_code = " ".into();
    let err = c.session(&empty).await.expect_err("missing");
    let named: Vec<&str> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(named, ["secret", "integration_code"]);
}

#[tokio::test]
async fn a_user_without_ticket_rights_is_told_so() {
    let sb = start_sandbox().await;
    let mut restricted = demo();
    restricted.username = sandbox::DEMO_RESTRICTED_USERNAME.into();
    let s = client(&sb).session(&restricted).await.expect("session");
    let err = s.test_connection().await.expect_err("no ticket rights");
    assert!(matches!(&err, AtError::Forbidden { entity, .. } if entity == "tickets"), "{err:?}");
    assert!(err.to_string().contains("refused access to tickets") && err.to_string().contains("security level"));
    assert!(!err.is_retryable());
    assert!(s.companies().await.expect("companies are readable").len() > 1000);
}

#[tokio::test]
async fn test_connection_requires_the_dedupe_field() {
    let sb = start_sandbox().await;
    let mut other = demo();
    other.dedupe_udf = "Not There".into();
    let err = client(&sb).session(&other).await.expect("session").test_connection().await.expect_err("no field");
    assert!(matches!(&err, AtError::NotFound { what } if what.contains("\"Not There\"")), "{err:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Companies

#[tokio::test]
async fn companies_are_read_across_pages_of_500() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let companies = s.companies().await.expect("companies");
    let all = sandbox::data::companies();
    let active = all.iter().filter(|c| c["isActive"] == true).count();
    assert_eq!(companies.len(), active);
    assert!(companies.len() > 1200);
    assert!(companies.windows(2).all(|w| w[0].id < w[1].id), "id order, no row twice");
    assert!(!companies.iter().any(|c| c.name == "Cyberdyne Systems"), "inactive companies are left out");
    let calls = sb.sandbox.calls();
    assert_eq!(calls.get("POST /atservicesrest/v1.0/companies/query"), Some(&1));
    assert_eq!(calls.get("POST /atservicesrest/v1.0/companies/query/next"), Some(&2), "{calls:?}");

    // What a naive client gets: a GET of the next page is refused, a POST without the body fails.
    let first: Value = api(&sb, reqwest::Method::POST, "Companies/query")
        .json(&json!({"filter": [{"op": "gte", "field": "id", "value": 0}]}))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(500));
    let next = first["pageDetails"]["nextPageUrl"].as_str().expect("a next page").to_string();
    let headers = |r: reqwest::RequestBuilder| {
        r.header("ApiIntegrationCode", sandbox::DEMO_INTEGRATION_CODE)
            .header("UserName", sandbox::DEMO_USERNAME)
            .header("Secret", sandbox::DEMO_SECRET)
    };
    let got = headers(raw().get(&next)).send().await.expect("get");
    assert_eq!(got.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bodiless = headers(raw().post(&next)).send().await.expect("post");
    assert_eq!(bodiless.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_company_name_must_match_exactly() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let find = |name: &'static str| {
        let s = s.clone();
        async move { s.find_company_by_name(name).await.expect("lookup").map(|c| (c.id, c.name)) }
    };
    // Autotask's eq finds all three Acme rows (no case, trailing spaces ignored); only one is the name asked for.
    assert_eq!(find("Acme Corporation").await, Some((1, "Acme Corporation".into())));
    assert_eq!(find("ACME CORPORATION").await, Some((2, "ACME CORPORATION".into())));
    assert_eq!(find("Acme Corporation ").await, Some((3, "Acme Corporation ".into())));
    assert_eq!(find("acme corporation").await, None, "a near miss is not a match");
    assert_eq!(find("Smith & Jones Dental").await.map(|c| c.0), Some(9));
    assert_eq!(find("AT&T Authorized Retailer #12").await.map(|c| c.0), Some(10));
    assert_eq!(find("Stark Industries").await.map(|c| c.0), Some(8), "the active one of two");
    assert_eq!(find("Cyberdyne Systems").await, None, "inactive");
    assert_eq!(find("Globex Inc").await, None);
    assert_eq!(find("").await, None);
    let raw_rows: Value = api(&sb, reqwest::Method::POST, "Companies/query")
        .json(&json!({"filter": [{"op": "eq", "field": "companyName", "value": "acme corporation"}]}))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(raw_rows["items"].as_array().map(Vec::len), Some(3), "what Autotask's eq answers: {raw_rows}");
}

// ---------------------------------------------------------------------------------------------------------------
// Fields

#[tokio::test]
async fn ticket_fields_list_active_choices_and_parents() {
    let sb = start_sandbox().await;
    let catalog = session(&sb).await.ticket_fields().await.expect("fields");
    let keys: Vec<&str> = catalog.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "title",
            "description",
            "status",
            "priority",
            "queueID",
            "issueType",
            "subIssueType",
            "ticketType",
            "source",
            "ticketCategory",
            "dueDateTime",
            "udf:Customer Tier",
            "udf:Breach Date",
            "udf:Security Notes",
        ]
    );
    let title = catalog.get("title").expect("title");
    assert_eq!((title.kind, title.max_len, title.required), (AtFieldKind::Text, Some(255), true));
    let description = catalog.get("description").expect("description");
    assert_eq!((description.kind, description.max_len), (AtFieldKind::LongText, Some(8000)));
    let ids = |key: &str| catalog.get(key).expect(key).choices.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids("status"), [1, 5, 7, 8], "the retired status is hidden");
    assert!(!ids("queueID").contains(&29682799) && catalog.get("queueID").expect("queue").required);
    assert_eq!(ids("source"), [-1, 2, 4, 6, 15]);
    let sub = catalog.get("subIssueType").expect("sub-issue types");
    assert_eq!(sub.parent.as_deref(), Some("issueType"));
    let with_parents: Vec<(i64, Option<i64>)> = sub.choices.iter().map(|c| (c.id, c.parent)).collect();
    assert_eq!(
        with_parents,
        [(10, Some(3)), (11, Some(3)), (12, Some(3)), (20, Some(4)), (21, Some(4)), (30, Some(5))]
    );
    assert!(catalog.get("status").expect("status").choices.iter().any(|c| c.id == 1 && c.is_default));
    let tier = catalog.get("udf:Customer Tier").expect("udf");
    assert_eq!(tier.kind, AtFieldKind::PickList);
    assert_eq!(tier.choices.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Gold", "Silver"]);
    assert_eq!(catalog.get("udf:Breach Date").expect("date").kind, AtFieldKind::Date);
    assert!(catalog.get("udf:DWID Reference").is_none(), "the dedupe field is the client's own");
}

// ---------------------------------------------------------------------------------------------------------------
// Tickets and notes

#[tokio::test]
async fn creates_tickets_finds_each_by_its_key_and_adds_notes() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let first = s.create_ticket(1, "dwid:0b7c6a52-0001", &fields()).await.expect("created");
    let second = s.create_ticket(1, "dwid:0b7c6a52-0002", &fields()).await.expect("created");
    // A key that only differs in case, as SQL Server compares: found by Autotask's eq, not by the client.
    let upper = s.create_ticket(1, "DWID:0B7C6A52-0001", &fields()).await.expect("created");
    assert!(first < second && second < upper);

    assert_eq!(s.find_ticket_by_dedupe_key("dwid:0b7c6a52-0001").await.expect("lookup"), Some(first));
    assert_eq!(s.find_ticket_by_dedupe_key("dwid:0b7c6a52-0002").await.expect("lookup"), Some(second));
    assert_eq!(s.find_ticket_by_dedupe_key("DWID:0B7C6A52-0001").await.expect("lookup"), Some(upper));
    assert_eq!(s.find_ticket_by_dedupe_key("dwid:0b7c6a52-0003").await.expect("lookup"), None);

    // The filter really filters: the right query answers one ticket, a misspelt operator would answer all three.
    let query = |op: &str| {
        api(&sb, reqwest::Method::POST, "Tickets/query").json(&json!({
            "filter": [{"op": op, "field": "DWID Reference", "value": "dwid:0b7c6a52-0002", "udf": true}]
        }))
    };
    let count = |v: Value| v["items"].as_array().map(Vec::len);
    assert_eq!(count(query("eq").send().await.expect("eq").json().await.expect("json")), Some(1));
    assert_eq!(count(query("equals").send().await.expect("typo").json().await.expect("json")), Some(3));

    let note = s.add_note(first, "Dark Web ID update", "2 more compromises found.").await.expect("note");
    assert!(note > 0);
    let err = s.add_note(42, "x", "y").await.expect_err("no such ticket");
    assert!(matches!(&err, AtError::NotFound { what } if what == "ticket 42"), "{err:?}");

    let stored = sandbox_json(&sb, "tickets").await;
    let t = &stored[0];
    assert_eq!(t["id"], first);
    assert_eq!(
        (t["companyID"].as_i64(), t["queueID"].as_i64(), t["subIssueType"].as_i64()),
        (Some(1), Some(29682833), Some(10))
    );
    let udfs = t["userDefinedFields"].as_array().expect("udfs");
    assert!(udfs.contains(&json!({"name": "DWID Reference", "value": "dwid:0b7c6a52-0001"})), "{udfs:?}");
    assert!(udfs.contains(&json!({"name": "Customer Tier", "value": "1"})), "{udfs:?}");
    assert_eq!(t["notes"][0]["title"], "Dark Web ID update");
    assert_eq!((t["notes"][0]["noteType"].as_i64(), t["notes"][0]["publish"].as_i64()), (Some(1), Some(1)));
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!((stats["tickets"].as_u64(), stats["notes"].as_u64()), (Some(3), Some(1)), "{stats}");
}

#[tokio::test]
async fn refusals_arrive_as_500_name_their_fields_and_are_not_retried() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    let field_names = |err: &AtError| -> Vec<String> { err.field_errors().iter().map(|e| e.field.clone()).collect() };

    let err = s.create_ticket(1, "dwid:v1", &object(json!({"description": "x"}))).await.expect_err("refused");
    assert!(matches!(err, AtError::Validation { .. }) && !err.is_retryable(), "{err:?}");
    let names = field_names(&err);
    for field in ["title", "status", "priority", "queueID"] {
        assert!(names.iter().any(|n| n == field), "{field}: {names:?}");
    }
    assert!(err.to_string().starts_with("Autotask refused the request:"), "{err}");

    let mut bad = fields();
    bad.insert("status".into(), json!(13));
    bad.insert("subIssueType".into(), json!(20));
    bad.insert("title".into(), json!("x".repeat(256)));
    bad.insert("udf:Customer Tier".into(), json!(3));
    let err = s.create_ticket(1, "dwid:v2", &bad).await.expect_err("refused");
    let names = field_names(&err);
    for field in ["status", "subIssueType", "title", "udf:Customer Tier"] {
        assert!(names.iter().any(|n| n == field), "{field}: {names:?} {err}");
    }
    assert!(err.to_string().contains("Value 13 of field status is inactive"), "{err}");

    let err = s.create_ticket(999_999, "dwid:v3", &fields()).await.expect_err("no such company");
    assert_eq!(field_names(&err), ["companyID"]);
    let err = s.add_note(1, "", "description").await.expect_err("no such ticket, no title");
    assert!(matches!(err, AtError::NotFound { .. }), "{err:?}");

    assert!(sandbox_json(&sb, "tickets").await.as_array().is_some_and(Vec::is_empty), "nothing refused was stored");
    let first = s.create_ticket(1, "dwid:ok", &fields()).await.expect("created");
    let err = s.add_note(first, "  ", "description").await.expect_err("title required");
    assert_eq!(field_names(&err), ["title"]);
}

// ---------------------------------------------------------------------------------------------------------------
// Faults: what the delivery worker's exactly-once logic has to handle

#[tokio::test]
async fn server_faults_are_retryable_and_refusals_are_not() {
    let sb = start_sandbox().await;
    let s = session(&sb).await;
    sb.sandbox.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    let err = s.create_ticket(1, "dwid:f1", &fields()).await.expect_err("500");
    assert!(matches!(&err, AtError::Transient { answered: true, .. }), "{err:?}");
    assert!(err.is_retryable() && !err.is_unanswered());
    assert!(sandbox_json(&sb, "tickets").await.as_array().is_some_and(Vec::is_empty));

    // A fault after the commit: answered 500 although the ticket exists; the lookup finds it.
    sb.sandbox.set_faults(Faults { error_after_commit_rate: 1.0, ..Faults::default() });
    let err = s.create_ticket(1, "dwid:f2", &fields()).await.expect_err("500 after commit");
    assert!(err.is_retryable(), "{err:?}");
    sb.sandbox.set_faults(Faults::default());
    let found = s.find_ticket_by_dedupe_key("dwid:f2").await.expect("lookup").expect("created all the same");
    assert_eq!(sandbox_json(&sb, "tickets").await[0]["id"], found);

    sb.sandbox.set_faults(Faults { rate_limit_rate: 1.0, retry_after_secs: 7, ..Faults::default() });
    let err = s.threshold().await.expect_err("429");
    assert_eq!(err, AtError::RateLimited { retry_after: Some(Duration::from_secs(7)), limit: Throttle::Other });
    assert!(err.is_retryable() && err.to_string().contains("7 s"));

    // Set at run time over HTTP; rates are checked and unknown members refused.
    let url = format!("{}/_sandbox/faults", sb.url());
    assert_eq!(raw().post(&url).body(r#"{"latency_ms": 50}"#).send().await.expect("set").status(), StatusCode::OK);
    assert_eq!(sb.sandbox.faults(), Faults { latency_ms: 50, ..Faults::default() }, "members left out are off");
    let bad = raw().post(&url).body(r#"{"error_rate": 2}"#).send().await.expect("bad rate");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let typo = raw().post(&url).body(r#"{"eror_rate": 0.1}"#).send().await.expect("typo");
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);
    let stats = sandbox_json(&sb, "stats").await;
    assert_eq!((stats["faults500"].as_u64(), stats["faults429"].as_u64()), (Some(1), Some(1)), "{stats}");
    assert_eq!(stats["errorsAfterCommit"], 1);
}

#[tokio::test]
async fn an_unanswered_post_may_have_created_the_ticket() {
    let sb = start_sandbox().await;
    let impatient = client_with(&sb.url(), SitePolicy::dev(), Duration::from_millis(800), 3);
    let s = impatient.session(&demo()).await.expect("session");
    sb.sandbox.set_faults(Faults { stall_after_commit_rate: 1.0, stall_secs: 30, ..Faults::default() });
    let started = Instant::now();
    let err = s.create_ticket(1, "dwid:stalled", &fields()).await.expect_err("times out");
    assert!(err.is_unanswered() && err.is_retryable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the client's timeout, not the stall");
    sb.sandbox.set_faults(Faults::default());
    let found = s.find_ticket_by_dedupe_key("dwid:stalled").await.expect("lookup");
    assert_eq!(found, sandbox_json(&sb, "tickets").await[0]["id"].as_i64());
}

// ---------------------------------------------------------------------------------------------------------------
// Autotask's limits

#[tokio::test]
async fn the_hourly_threshold_slows_then_refuses() {
    let throttling = Throttling { hourly_limit: 8, latency_ms: 200, ..Throttling::default() };
    let sb = start_with(SandboxConfig { throttling, ..SandboxConfig::default() }).await;
    let s = session(&sb).await;
    let mut elapsed = Vec::new();
    for n in 1..=8u64 {
        let started = Instant::now();
        assert_eq!(s.threshold().await.expect("under the limit"), (n, 8), "zone look-ups are not counted");
        elapsed.push(started.elapsed());
    }
    let ms = |d: &Duration| d.as_millis();
    assert!(elapsed[..3].iter().all(|d| ms(d) < 200), "below half: no latency {elapsed:?}");
    assert!(elapsed[3..5].iter().all(|d| (200..400).contains(&ms(d))), "from half: +200 ms {elapsed:?}");
    assert!(elapsed[5..].iter().all(|d| ms(d) >= 400), "from three quarters: +400 ms {elapsed:?}");
    let err = s.threshold().await.expect_err("over the limit");
    assert_eq!(err, AtError::RateLimited { retry_after: None, limit: Throttle::Hourly });
    assert!(err.is_retryable() && err.to_string().contains("shared by every integration"), "{err}");
    let response = api(&sb, reqwest::Method::GET, "ThresholdInformation").send().await.expect("raw");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sandbox_json(&sb, "stats").await["overLimit"], 2);
}

#[tokio::test]
async fn the_hourly_window_rolls() {
    let throttling = Throttling { hourly_limit: 2, window: Duration::from_millis(600), latency_ms: 0, thread_limit: 3 };
    let sb = start_with(SandboxConfig { throttling, ..SandboxConfig::default() }).await;
    let s = session(&sb).await;
    s.threshold().await.expect("1");
    s.threshold().await.expect("2");
    assert!(matches!(s.threshold().await, Err(AtError::RateLimited { limit: Throttle::Hourly, .. })));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.threshold().await.expect("the window moved on"), (1, 2));
}

#[tokio::test]
async fn three_threads_per_endpoint_and_the_client_keeps_to_them() {
    let sb = start_sandbox().await;
    sb.sandbox.set_faults(Faults { latency_ms: 300, ..Faults::default() });
    // Four raw calls at once on one endpoint: the fourth is refused.
    let calls = (0..4).map(|_| {
        api(&sb, reqwest::Method::POST, "Companies/query")
            .json(&json!({"filter": [{"op": "eq", "field": "id", "value": 1}]}))
            .send()
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(calls).await.into_iter().map(|r| r.expect("response").status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 1, "{statuses:?}");
    assert_eq!(sandbox_json(&sb, "stats").await["threadRefusals"], 1);

    // Eight lookups through one client: it queues them three at a time, none is refused.
    let s = session(&sb).await;
    let lookups = (0..8).map(|_| s.find_company_by_name("Initech"));
    for found in futures_util::future::join_all(lookups).await {
        assert_eq!(found.expect("lookup").map(|c| c.id), Some(5));
    }
    assert_eq!(sandbox_json(&sb, "stats").await["threadRefusals"], 1, "the client kept to the limit");

    // A client allowed more threads than Autotask gives is refused, and told why.
    let greedy = client_with(&sb.url(), SitePolicy::dev(), Duration::from_secs(10), 6).session(&demo()).await;
    let greedy = greedy.expect("session");
    let lookups = (0..6).map(|_| greedy.find_company_by_name("Initech"));
    let refused: Vec<AtError> =
        futures_util::future::join_all(lookups).await.into_iter().filter_map(Result::err).collect();
    assert!(!refused.is_empty());
    for err in refused {
        assert_eq!(err, AtError::RateLimited { retry_after: None, limit: Throttle::Threads });
        assert!(err.to_string().contains("3 at a time"), "{err}");
    }
}

/// Thread slots are the partner's own: a session of another partner naming the same API user and tracking identifier
/// (with a wrong secret) is not queued behind ours, and ours are not taken by it.
#[tokio::test]
async fn thread_slots_are_kept_per_partner() {
    let sb = start_sandbox().await;
    sb.sandbox.set_faults(Faults { latency_ms: 1_000, ..Faults::default() });
    let client = client(&sb);
    let ours = client.session(&demo()).await.expect("session").with_slot_scope("partner 1");
    let mut guess = demo();
    guess.secret = "a-guess".into();
    let theirs = client.session(&guess).await.expect("session").with_slot_scope("partner 2");
    // Our three slots of the endpoint are busy...
    let busy: Vec<_> = (0..3).map(|_| ours.find_company_by_name("Initech")).collect();
    let busy = futures_util::future::join_all(busy);
    // ...and the other partner's call is answered (refused) without waiting for one of them.
    let other = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let answer = theirs.find_company_by_name("Initech").await;
        (answer, started.elapsed())
    };
    let (found, (answer, waited)) = tokio::join!(busy, other);
    assert!(found.into_iter().all(|f| f.is_ok()));
    assert!(matches!(answer, Err(AtError::Unauthorized { .. })), "{answer:?}");
    assert!(waited < Duration::from_millis(1_500), "not queued behind our calls: {waited:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound safety: the zone Autotask names is checked like a partner-supplied host

#[tokio::test]
async fn a_zone_outside_autotask_is_refused() {
    for zone in [
        "https://webservices5.autotask.net.evil.example/ATServicesRest/",
        "http://10.0.0.1/ATServicesRest/",
        "https://169.254.169.254/latest/",
    ] {
        let sb = start_with(SandboxConfig { zone_url: Some(zone.into()), ..SandboxConfig::default() }).await;
        let err = client(&sb).session(&demo()).await.expect_err(zone);
        assert!(
            matches!(&err, AtError::SiteRefused { reason } if reason.contains("not an Autotask address")),
            "{zone}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn production_refuses_plain_http_and_local_addresses_before_connecting() {
    let sb = start_sandbox().await;
    // The sandbox's own discovery address: http and loopback, refused before any connection.
    let prod = client_with(&sb.url(), SitePolicy::production(), Duration::from_secs(2), 3);
    let err = prod.session(&demo()).await.expect_err("http in production");
    assert!(matches!(&err, AtError::SiteRefused { .. }), "{err:?}");
    // Autotask's real discovery host, resolved (for this test) to loopback: the guarded resolver refuses it.
    let policy =
        SitePolicy::production().with_static_host("webservices.autotask.net", &["127.0.0.1".parse().expect("ip")]);
    let prod = client_with(app::autotask::DEFAULT_ZONE_DISCOVERY_URL, policy, Duration::from_secs(2), 3);
    let started = Instant::now();
    let err = prod.session(&demo()).await.expect_err("loopback in production");
    assert!(matches!(&err, AtError::SiteRefused { reason } if reason.contains("127.0.0.1")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sandbox_json(&sb, "stats").await["zoneCalls"], 0, "nothing reached the sandbox");
}
