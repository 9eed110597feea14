//! Observability: `/metrics` on `METRICS_ADDR` only (the real binary), in the Prometheus text format, with each
//! family moving when its event happens (through the real router, the import API and the delivery worker against
//! the ConnectWise sandbox); `/readyz`; request ids on every response and on every log line of a request or a
//! delivery attempt.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use common::{Harness, form, harness, save_integration, signed_in};
use http::{Request, StatusCode, header};
use serde_json::json;
use server::sandbox::{self, RunningSandbox, SandboxConfig};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// `GET /metrics` through the metrics router (what `METRICS_ADDR` serves).
async fn scrape(h: &Harness) -> String {
    let response = server::routes::metrics_router(h.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).expect("content type").to_str().expect("ascii");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert_valid_exposition(&text);
    text
}

/// The value of the sample whose name and labels are exactly `series` (0 when the series is absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().expect("numeric value"))
        })
        .unwrap_or(0.0)
}

/// A line check of the Prometheus text format: every sample belongs to a family declared by `# TYPE` (histogram
/// samples by their `_bucket`/`_sum`/`_count` suffix), names are valid, label sets are closed, values are numbers.
fn assert_valid_exposition(text: &str) {
    let mut families: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            families.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "{line}");
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                assert!(labels.ends_with('}'), "{line}");
                name
            }
            None => series,
        };
        assert!(
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                && !name.as_bytes()[0].is_ascii_digit(),
            "{line}"
        );
        let declared = families.iter().any(|(family, kind)| {
            name == family
                || (kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| base == family)))
        });
        assert!(declared, "sample without a # TYPE before it: {line}");
    }
    assert!(!families.is_empty(), "no families in\n{text}");
}

async fn start_sandbox() -> RunningSandbox {
    let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    sandbox::spawn(config).await.expect("sandbox starts")
}

/// The logs of this test binary, as the server's subscriber writes them (plain text, spans and their fields).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init()
            .expect("subscriber");
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().expect("logs")).into_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// The families move with their events

#[tokio::test]
async fn sign_ins_are_counted_by_result() {
    let h = harness(&[("SIGN_IN_MAX_FAILURES_PER_EMAIL", "2")]).await;
    h.partner("ops@msp.example").await;
    let before = scrape(&h).await;
    for family in ["dwid_sign_ins_total", "dwid_sign_in_hash_slots_in_use", "dwid_sign_in_hash_slots"] {
        assert!(before.contains(&format!("# TYPE {family} ")), "{family}");
    }
    assert_eq!(sample(&before, "dwid_sign_in_hash_slots_in_use"), 0.0);
    assert_eq!(
        sample(&before, "dwid_sign_in_hash_slots"),
        h.state.sign_in_slots.capacity() as f64,
        "the capacity is read at scrape time"
    );

    h.sign_in("ops@msp.example").await;
    let wrong = form(&[("email", "ops@msp.example"), ("password", "not the password")]);
    let (status, _, _) = h.call("sign_in", &wrong, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = scrape(&h).await;
    assert_eq!(sample(&text, r#"dwid_sign_ins_total{result="success"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_sign_ins_total{result="failure"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_sign_ins_total{result="throttled"}"#), 0.0);

    // The per-(email, address) limit of 2 is reached: the next attempts are refused before any password check.
    let (status, _, _) = h.call("sign_in", &wrong, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = h.call("sign_in", &wrong, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let text = scrape(&h).await;
    assert_eq!(sample(&text, r#"dwid_sign_ins_total{result="failure"}"#), 2.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_sign_ins_total{result="throttled"}"#), 1.0, "{text}");
}

#[tokio::test]
async fn imports_count_records_batches_and_refusals() {
    let h = harness(&[]).await;
    let partner = h.partner("import@msp.example").await;
    app::organizations::store::add(
        &h.state.db,
        partner,
        "Acme Corporation",
        None,
        &app::activity::Actor::operator("test"),
    )
    .await
    .expect("organization");
    let token =
        app::api_tokens::store::create(&h.state.db, partner, "metrics", &app::activity::Actor::operator("test"))
            .await
            .expect("token")
            .1;
    let post = |token: Option<&str>, body: String| {
        let mut request = Request::post(server::api::IMPORT_PATH).header(header::CONTENT_TYPE, "application/x-ndjson");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::from(body)).expect("request")
    };
    let record = |n: usize| {
        json!({
            "uuid": format!("0e5b8c1a-1111-4222-8333-{n:012}"),
            "password": format!("Winter{n}!"),
            "record_type": "Email",
            "source": "Combolist (test)",
            "website": "https://shop.example",
            "organization_name": "Acme Corporation",
            "compromise": format!("user{n}@acme.example"),
            "password_criteria": "Matches",
            "search_value": "acme.example",
            "date_added": "2026-11-01T10:00:00Z",
            "date_found": "2026-10-30",
        })
        .to_string()
    };
    let batch = (1..=3).map(record).collect::<Vec<_>>().join("\n");
    let (status, _, body) = h.send(post(Some(&token), batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Again with one new record: two duplicates.
    let batch = (2..=4).map(record).collect::<Vec<_>>().join("\n");
    let (status, _, body) = h.send(post(Some(&token), batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = h.send(post(None, record(9))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = h.send(post(Some(&token), "{\"uuid\": 1}".into())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let text = scrape(&h).await;
    assert_eq!(sample(&text, "dwid_import_batches_total"), 2.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_import_records_total{kind="new"}"#), 4.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_import_records_total{kind="duplicate"}"#), 2.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_import_refusals_total{reason="unauthorized"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_import_refusals_total{reason="invalid"}"#), 1.0, "{text}");
    // Nothing was delivered (no integration): nothing is queued either.
    assert_eq!(sample(&text, "dwid_delivery_queue_depth"), 0.0);
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_not_raw_path() {
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "routes@msp.example").await;
    // (The page of an integration that does not exist streams its 404 when the lookup wins the race with the
    // first chunk, else 200: the status label may differ, the route label may not.)
    for id in [41, 42] {
        h.get(&format!("/integrations/{id}/deliveries"), Some(&cookie)).await;
    }
    let (status, _, _) = h.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/no/such/page-1", "/no/such/page-2"] {
        let (status, _, _) = h.get(path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let text = scrape(&h).await;
    let per_template: f64 = text
        .lines()
        .filter(|line| line.starts_with(r#"dwid_http_requests_total{route="/integrations/{id}/deliveries","#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(per_template, 2.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_http_requests_total{route="/healthz",status="200"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_http_requests_total{route="/api/sign_in",status="200"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_http_requests_total{route="unmatched",status="404"}"#), 2.0, "{text}");
    assert!(!text.contains("/integrations/41") && !text.contains("page-1"), "raw paths are no labels:\n{text}");
}

#[tokio::test]
async fn a_delivery_to_the_sandbox_moves_the_queue_attempt_and_connectwise_families() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "deliver@msp.example").await;
    let acme = app::organizations::store::add(
        &h.state.db,
        partner,
        "Acme Corporation",
        None,
        &app::activity::Actor::operator("test"),
    )
    .await
    .expect("org")
    .id;
    let mapping = json!([
        { "field": "summary", "value": "Dark Web ID: [compromise]" },
        { "field": "company", "value": "" },
        { "field": "board", "value": "1" },
    ]);
    let (status, body) = save_integration(&h, &cookie, None, common::sandbox_input(&sb.url(), "Desk", mapping)).await;
    assert!(status.is_success(), "{status} {body}");
    let id: i64 = body.parse().expect("id");
    app::integrations::store::set_active(&h.state.db, partner, id, true, &app::activity::Actor::operator("test"))
        .await
        .expect("enable");
    let record = app::compromises::ImportRecord {
        uuid: "6f1c2d3e-0000-4000-8000-000000000001".into(),
        password: Some("Hunter1!x".into()),
        record_type: app::mapping::RecordType::Email,
        source: "Collection #1".into(),
        website: None,
        organization: app::compromises::OrganizationRef::ById(acme),
        compromise: "user1@acme.example".into(),
        password_criteria: app::mapping::PasswordCriteria::Matches,
        search_value: "acme.example".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    };
    app::compromises::store::import(&h.state.db, &h.state.secrets, partner, &[record]).await.expect("import");

    let queued = scrape(&h).await;
    assert_eq!(sample(&queued, r#"dwid_deliveries{state="pending"}"#), 1.0, "{queued}");
    assert_eq!(sample(&queued, "dwid_delivery_queue_depth"), 1.0, "{queued}");
    assert!(sample(&queued, "dwid_delivery_oldest_due_age_seconds") >= 0.0);
    let cw_2xx_before = sample(&queued, r#"dwid_connectwise_responses_total{class="2xx"}"#);

    deliver_everything(&h).await;
    assert_eq!(sb.sandbox.tickets().await.len(), 1);

    let text = scrape(&h).await;
    assert_eq!(sample(&text, r#"dwid_deliveries{state="delivered"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"dwid_deliveries{state="pending"}"#), 0.0, "{text}");
    assert_eq!(sample(&text, "dwid_delivery_queue_depth"), 0.0);
    assert_eq!(sample(&text, "dwid_delivery_oldest_due_age_seconds"), 0.0);
    assert_eq!(sample(&text, r#"dwid_delivery_attempt_duration_seconds_count{outcome="delivered"}"#), 1.0, "{text}");
    assert!(sample(&text, r#"dwid_delivery_attempt_duration_seconds_sum{outcome="delivered"}"#) > 0.0);
    assert_eq!(
        sample(&text, r#"dwid_delivery_attempt_duration_seconds_bucket{outcome="delivered",le="+Inf"}"#),
        1.0,
        "{text}"
    );
    // The company lookup and the POST (discovery was made, and cached, when saving tried the keys): at least two 2xx
    // answers from the sandbox.
    assert!(sample(&text, r#"dwid_connectwise_responses_total{class="2xx"}"#) >= cw_2xx_before + 2.0, "{text}");
}

#[tokio::test]
async fn connectwise_failures_are_counted_by_class() {
    let sb = start_sandbox().await;
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "classes@msp.example").await;
    let mut wrong = common::sandbox_input(&sb.url(), "CW", json!([]));
    wrong["private_key"] = json!("not-the-key");
    let (status, _, body) =
        h.call_json("integrations/test_connection", &json!({ "id": null, "input": wrong }), Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    // Nothing listens on a port just freed: no answer at all.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let nowhere = common::sandbox_input(&format!("http://{closed}"), "CW", json!([]));
    let (status, _, body) =
        h.call_json("integrations/test_connection", &json!({ "id": null, "input": nowhere }), Some(&cookie)).await;
    assert!(status.is_server_error(), "{status} {body}");
    let text = scrape(&h).await;
    assert!(sample(&text, r#"dwid_connectwise_responses_total{class="4xx"}"#) >= 1.0, "401: {text}");
    assert!(sample(&text, r#"dwid_connectwise_responses_total{class="transport_error"}"#) >= 1.0, "{text}");
}

// ---------------------------------------------------------------------------------------------------------------
// Readiness

#[tokio::test]
async fn readyz_needs_every_migration_applied_and_the_database() {
    let h = harness(&[]).await;
    let (status, _, body) = h.get("/readyz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"), "public: no session needed");

    let latest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&h.state.db.pool)
        .await
        .expect("latest");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(latest)
        .execute(&h.state.db.pool)
        .await
        .expect("forget a migration");
    let (status, _, body) = h.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, format!("not ready: migrations not applied: {latest}"));
    let (status, _, _) = h.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "the process itself is alive");

    h.state.db.pool.close().await;
    let (status, _, body) = h.get("/readyz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "not ready: the database is unreachable"));
}

#[tokio::test]
async fn readyz_on_postgres() {
    let Some(db) = app::testing::postgres().await else { return };
    let h = common::harness_on(db, &[]);
    let (status, _, body) = h.get("/readyz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MIN(version) FROM _sqlx_migrations)")
        .execute(&h.state.db.pool)
        .await
        .expect("forget a migration");
    let (status, _, body) = h.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.starts_with("not ready: migrations not applied: "), "{body}");
}

/// Runs the delivery worker until no delivery is outstanding, then stops it.
async fn deliver_everything(h: &Harness) {
    let deps = app::delivery::worker::Deps {
        db: h.state.db.clone(),
        ticketing: h.state.ticketing.clone(),
        secrets: h.state.secrets.clone(),
        wake: h.state.deliveries.clone(),
        metrics: h.state.metrics.clone(),
    };
    let config = app::delivery::worker::WorkerConfig {
        poll: Duration::from_millis(100),
        ..app::delivery::worker::WorkerConfig::from_config(&h.state.config)
    };
    let worker = app::delivery::worker::spawn(deps, config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while app::delivery::store::outstanding(&h.state.db).await.expect("outstanding") > 0 {
        assert!(Instant::now() < deadline, "the delivery was not made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Request ids

fn request_id(headers: &http::HeaderMap) -> String {
    headers.get("x-request-id").expect("x-request-id").to_str().expect("ascii").to_owned()
}

async fn healthz_with(h: &Harness, id: Option<&str>) -> String {
    let mut request = Request::get("/healthz");
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let (status, headers, _) = h.send(request.body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    request_id(&headers)
}

#[tokio::test]
async fn every_response_has_a_request_id_and_only_safe_ones_are_kept() {
    // Without a trusted proxy in front, a client's own id is never taken.
    let direct = harness(&[]).await;
    let id = healthz_with(&direct, Some("lb-7f3a.9c_01")).await;
    assert_ne!(id, "lb-7f3a.9c_01");
    assert_eq!(id.len(), 36, "a fresh one: {id}");
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1")]).await;
    let first = healthz_with(&h, None).await;
    let second = healthz_with(&h, None).await;
    assert_ne!(first, second, "unique per request");
    for id in [&first, &second] {
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert!(server::routes::is_safe_request_id(id.as_bytes()));
    }
    // Pages, refusals and unknown paths too.
    let (status, headers, _) = h.get("/integrations", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!request_id(&headers).is_empty());
    let wrong = form(&[("email", "nobody@msp.example"), ("password", "not the password")]);
    let (status, headers, _) = h.call("sign_in", &wrong, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!request_id(&headers).is_empty());

    assert_eq!(healthz_with(&h, Some("lb-7f3a.9c_01")).await, "lb-7f3a.9c_01", "a safe incoming id is echoed");
    for unsafe_id in ["has space", "semi;colon", "quote\"d", &"x".repeat(65), "new%0Aline"] {
        let id = healthz_with(&h, Some(unsafe_id)).await;
        assert_ne!(id, unsafe_id);
        assert_eq!(id.len(), 36, "replaced by a fresh one: {id}");
    }
    // Two ids are ambiguous: replaced.
    let request = Request::get("/healthz")
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .body(Body::empty())
        .expect("request");
    let (_, headers, _) = h.send(request).await;
    assert_eq!(headers.get_all("x-request-id").iter().count(), 1);
    assert_eq!(request_id(&headers).len(), 36);
}

#[tokio::test]
async fn every_log_line_of_a_request_or_a_delivery_attempt_names_it() {
    capture_logs();
    let sb = start_sandbox().await;
    // Behind a trusted proxy, whose request id is kept.
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1")]).await;
    let (partner, cookie) = signed_in(&h, "logs@msp.example").await;
    let id = "obs-test-5e1d";
    let request = Request::post("/api/integrations/test_connection")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "same-origin")
        .header(header::COOKIE, &cookie)
        .header("x-request-id", id)
        .body(Body::from(json!({ "id": null, "input": common::sandbox_input(&sb.url(), "CW", json!([])) }).to_string()))
        .expect("request");
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(request_id(&headers), id);
    let lines = logs();
    let calls: Vec<&str> =
        lines.lines().filter(|l| l.contains("ConnectWise call") && l.contains(&format!("\"{id}\""))).collect();
    // Discovery and system/info, each in the request's span with its route.
    assert!(calls.len() >= 2, "ConnectWise calls logged with the request id:\n{lines}");
    let span = format!(r#"request{{request_id="{id}" method=POST route="/api/integrations/test_connection"}}"#);
    assert!(calls.iter().all(|l| l.contains(&span)), "{calls:?}");

    // A delivery attempt is no request: its ConnectWise calls carry the delivery id instead.
    let acme = app::organizations::store::add(
        &h.state.db,
        partner,
        "Acme Corporation",
        None,
        &app::activity::Actor::operator("test"),
    )
    .await
    .expect("org")
    .id;
    let mapping = json!([
        { "field": "summary", "value": "Dark Web ID: [compromise]" },
        { "field": "company", "value": "" },
        { "field": "board", "value": "1" },
    ]);
    // (A spare integration first: the logs are captured for the whole test binary, and another test delivers as
    // integration 1; this one's span must be its own.)
    let spare = common::sandbox_input(&sb.url(), "Spare", mapping.clone());
    assert!(save_integration(&h, &cookie, None, spare).await.0.is_success());
    let (status, body) = save_integration(&h, &cookie, None, common::sandbox_input(&sb.url(), "Desk", mapping)).await;
    assert!(status.is_success(), "{body}");
    let integration: i64 = body.parse().expect("id");
    app::integrations::store::set_active(
        &h.state.db,
        partner,
        integration,
        true,
        &app::activity::Actor::operator("test"),
    )
    .await
    .expect("enable");
    let record = app::compromises::ImportRecord {
        uuid: "6f1c2d3e-0000-4000-8000-00000000a0a0".into(),
        password: None,
        record_type: app::mapping::RecordType::Email,
        source: "Collection #1".into(),
        website: None,
        organization: app::compromises::OrganizationRef::ById(acme),
        compromise: "user@acme.example".into(),
        password_criteria: app::mapping::PasswordCriteria::Matches,
        search_value: "acme.example".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    };
    app::compromises::store::import(&h.state.db, &h.state.secrets, partner, &[record]).await.expect("import");
    let delivery_id: i64 = sqlx::query_scalar("SELECT id FROM deliveries WHERE integration_id = $1")
        .bind(integration)
        .fetch_one(&h.state.db.pool)
        .await
        .expect("delivery");
    deliver_everything(&h).await;
    let lines = logs();
    let span = format!("delivery{{delivery_id={delivery_id} integration_id={integration}}}");
    let posts: Vec<&str> =
        lines.lines().filter(|l| l.contains(&span) && l.contains("ConnectWise call") && l.contains("POST")).collect();
    assert_eq!(posts.len(), 1, "the ticket POST logged in the attempt's span:\n{lines}");
}

// ---------------------------------------------------------------------------------------------------------------
// The real binary: metrics on METRICS_ADDR only

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dwid-obs-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// A plain HTTP/1.1 GET: status, head (lower-cased) and body.
fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn the_binary_serves_metrics_on_metrics_addr_only() {
    let dir = temp_dir();
    let (port, metrics_port) = (free_port(), free_port());
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("log");
    let child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", &dir)
        .env("LOG_LEVEL", "info")
        .env("APP_MODE", "dev")
        .env("CW_SANDBOX_ADDR", "off")
        .env("DEMO_PASSWORD", "demo password for the test")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn server");
    let _running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_log(&dir).contains("listening on") || TcpStream::connect(("127.0.0.1", metrics_port)).is_err() {
        assert!(Instant::now() < deadline, "server did not listen: {}", read_log(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(read_log(&dir).contains(&format!("metrics on http://127.0.0.1:{metrics_port}/metrics")));

    // One request on the dashboard first, so that its family has a series.
    let (status, head, body) = http_get(port, "/readyz");
    assert_eq!((status, body.as_str()), (200, "ready"));
    assert!(head.contains("x-request-id: "), "{head}");

    let (status, head, body) = http_get(metrics_port, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert_valid_exposition(&body);
    for family in [
        "dwid_deliveries",
        "dwid_delivery_queue_depth",
        "dwid_delivery_oldest_due_age_seconds",
        "dwid_delivery_attempt_duration_seconds",
        "dwid_connectwise_responses_total",
        "dwid_import_records_total",
        "dwid_import_batches_total",
        "dwid_import_refusals_total",
        "dwid_sign_ins_total",
        "dwid_sign_in_hash_slots_in_use",
        "dwid_http_requests_total",
    ] {
        assert!(body.contains(&format!("# TYPE {family} ")), "{family} missing:\n{body}");
    }
    assert_eq!(sample(&body, r#"dwid_http_requests_total{route="/readyz",status="200"}"#), 1.0, "{body}");

    // Not on the dashboard's address (a page like any unknown one: the sign-in redirect), and nothing else on the
    // metrics address.
    let (status, _, body) = http_get(port, "/metrics");
    assert_ne!(status, 200);
    assert!(!body.contains("# TYPE"), "{body}");
    let (status, _, _) = http_get(metrics_port, "/healthz");
    assert_eq!(status, 404);
    let (status, _, _) = http_get(metrics_port, "/sign-in");
    assert_eq!(status, 404);
}
