//! The Settings page's API tokens and the import API they open, through the real router on SQLite: create, list,
//! use, revoke; partner isolation; the import API's refusals (401, 413, 415, 422) and idempotent re-sends; and the
//! Organizations page's dev-only "Simulate compromise".

mod common;

use axum::body::Body;
use common::{Harness, form, harness, integration_input, save_integration, signed_in};
use http::{Request, StatusCode, header};
use serde_json::{Value, json};

use app::activity::Actor;
use app::api_tokens::CreatedToken;
use app::organizations::Simulation;
use app::settings::{EXAMPLE_RECORD, IMPORT_PATH, TokenList};

async fn create_token(h: &Harness, cookie: &str, name: &str) -> CreatedToken {
    let (status, _, body) = h.call("api-tokens/create", &form(&[("name", name)]), Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("created token")
}

async fn token_list(h: &Harness, cookie: &str) -> (TokenList, String) {
    let (status, _, body) = h.call("settings/tokens", "", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (serde_json::from_str(&body).expect("token list"), body)
}

/// `POST /api/v1/compromises` with an optional bearer token and content type.
async fn import(h: &Harness, token: Option<&str>, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let mut request = Request::post(IMPORT_PATH).header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let (status, _, text) = h.send(request.body(body.into()).expect("request")).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn count(h: &Harness, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&h.state.db.pool)
        .await
        .expect("count")
}

/// An integration of the partner, Active or not; new integrations serve every organization of the partner.
async fn integration(h: &Harness, cookie: &str, partner: i64, name: &str, active: bool) -> i64 {
    let (status, body) = save_integration(h, cookie, None, integration_input(name)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: i64 = body.parse().expect("id");
    app::integrations::store::set_active(&h.state.db, partner, id, active, &Actor::operator("test"))
        .await
        .expect("set active");
    id
}

#[tokio::test]
async fn a_token_is_shown_once_listed_by_prefix_works_for_the_import_api_until_revoked() {
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org");

    let created = create_token(&h, &cookie, "  SIEM export  ").await;
    assert_eq!(created.token.name, "SIEM export", "the name is trimmed");
    assert!(created.value.starts_with("dwid_") && created.value.len() == 53, "{}", created.value);
    assert_eq!(created.token.prefix, created.value[..13]);

    // The list (the page's, and the api_tokens one) never carries the value or its hash.
    let hash = app::api_tokens::store::hash(&created.value);
    let (list, body) = token_list(&h, &cookie).await;
    let (_, _, raw) = h.call("api-tokens/list", "", Some(&cookie)).await;
    for text in [&body, &raw] {
        assert!(!text.contains(&created.value) && !text.contains(&created.value[13..]), "{text}");
        assert!(!text.contains(&hash), "{text}");
    }
    assert_eq!(list.tokens.len(), 1);
    let view = &list.tokens[0];
    assert_eq!((view.name.as_str(), view.prefix.as_str()), ("SIEM export", &created.value[..13]));
    assert!(view.created.ends_with(" UTC"), "formatted on the server: {}", view.created);
    assert_eq!((view.last_used.as_deref(), view.revoked.as_deref()), (None, None));
    // Without a Host header (as here) the example names a placeholder host.
    assert_eq!(list.import_url, format!("http://your-dashboard.example{IMPORT_PATH}"));

    // The usage example the page shows is accepted as it is.
    let (status, reply) = import(&h, Some(&created.value), "application/x-ndjson", EXAMPLE_RECORD).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply, json!({ "received": 1, "imported": 1, "duplicates": 0, "deliveries_queued": 0 }));
    let (list, _) = token_list(&h, &cookie).await;
    assert!(list.tokens[0].last_used.as_deref().is_some_and(|t| t.ends_with(" UTC")), "{:?}", list.tokens[0]);

    let (status, _, body) = h.call("api-tokens/revoke", &format!("id={}", created.token.id), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (list, _) = token_list(&h, &cookie).await;
    assert_eq!(list.tokens.len(), 1, "a revoked token stays listed");
    assert!(list.tokens[0].revoked.is_some());
    let (status, reply) =
        import(&h, Some(&created.value), "application/x-ndjson", common::ndjson_record(1, "Acme Corporation")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert_eq!(count(&h, "compromises").await, 1, "nothing imported with a revoked token");
}

#[tokio::test]
async fn tokens_belong_to_their_partner_and_need_a_name_and_a_session() {
    let h = harness(&[]).await;
    let (_, first) = signed_in(&h, "first@example.com").await;
    let (_, second) = signed_in(&h, "second@example.com").await;
    let created = create_token(&h, &first, "First's importer").await;

    let (list, _) = token_list(&h, &second).await;
    assert!(list.tokens.is_empty());
    let (status, _, body) = h.call("api-tokens/revoke", &format!("id={}", created.token.id), Some(&second)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (list, _) = token_list(&h, &first).await;
    assert_eq!(list.tokens[0].revoked, None, "still active");

    for name in ["", "   "] {
        let (status, _, body) = h.call("api-tokens/create", &form(&[("name", name)]), Some(&first)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("Enter a name for the token, e.g. the system that will use it."), "{body}");
    }
    let (list, _) = token_list(&h, &first).await;
    assert_eq!(list.tokens.len(), 1, "nothing created");

    for (endpoint, form) in [
        ("settings/tokens", ""),
        ("api-tokens/list", ""),
        ("api-tokens/create", "name=x"),
        ("api-tokens/revoke", "id=1"),
    ] {
        assert_eq!(h.call(endpoint, form, None).await.0, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    // The page itself is behind sign-in, and renders for a partner.
    let (status, headers, _) = h.get("/settings", None).await;
    assert_eq!(
        (status, headers.get(header::LOCATION).and_then(|v| v.to_str().ok())),
        (StatusCode::SEE_OTHER, Some("/sign-in"))
    );
    let (status, _, page) = h.get("/settings", Some(&first)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("API tokens") && page.contains("Create token"), "{page}");
}

#[tokio::test]
async fn the_import_api_refuses_bad_requests_and_stores_nothing() {
    let h = harness(&[("IMPORT_MAX_BODY_MB", "1")]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org");
    let token = create_token(&h, &cookie, "Importer").await.value;
    let good = common::ndjson_record(1, "Acme Corporation");

    // No token, a malformed one, an unknown one.
    let (status, reply) = import(&h, None, "application/x-ndjson", good.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert!(reply["error"].as_str().is_some_and(|e| e.contains("Authorization: Bearer")), "{reply}");
    for bad in ["not-a-token", &format!("dwid_{}", "0".repeat(48))] {
        let (status, reply) = import(&h, Some(bad), "application/x-ndjson", good.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    }

    // An invalid batch: every error names its record (and line), and nothing of the batch is stored.
    let mut broken: Value = serde_json::from_str(&common::ndjson_record(3, "Acme Corporation")).expect("json");
    broken["record_type"] = json!("Phone");
    let body = format!("{good}\n{}\n{}\n", common::ndjson_record(2, "Nobody Ltd"), broken);
    let (status, reply) = import(&h, Some(&token), "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    let errors = reply["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{reply}");
    for error in errors {
        let record = error["record"].as_u64().expect("record number");
        assert!(record == 2 || record == 3, "only the bad records are blamed: {error}");
        assert!(error["message"].as_str().is_some_and(|m| m.starts_with(&format!("record {record}"))), "{error}");
    }
    assert!(errors.iter().any(|e| e["record"] == 3 && e["field"] == "record_type"), "{reply}");
    // The record naming an unknown organization is reported once the rest is valid.
    let body = format!("{good}\n{}\n", common::ndjson_record(2, "Nobody Ltd"));
    let (status, reply) = import(&h, Some(&token), "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["errors"][0]["record"], 2, "{reply}");
    assert_eq!(reply["errors"][0]["field"], "organization_name", "{reply}");
    assert_eq!(count(&h, "compromises").await, 0, "nothing of a refused batch is stored");

    // Over the body limit (1 MiB here).
    let big = format!("{good}\n").repeat((1 << 20) / good.len() + 10);
    assert!(big.len() > 1 << 20);
    let (status, reply) = import(&h, Some(&token), "application/x-ndjson", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");

    // CSV is for the operator CLI, not the API.
    let (status, reply) = import(&h, Some(&token), "text/csv", "uuid,record_type\n".to_string()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    assert_eq!(count(&h, "compromises").await, 0);
    assert_eq!(count(&h, "deliveries").await, 0);
}

#[tokio::test]
async fn a_valid_batch_is_imported_once_and_queues_one_delivery_per_active_integration() {
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org");
    integration(&h, &cookie, partner, "Desk A", true).await;
    integration(&h, &cookie, partner, "Desk B", true).await;
    integration(&h, &cookie, partner, "Desk C (off)", false).await;
    let token = create_token(&h, &cookie, "Importer").await.value;
    let body: String = (1..=3).map(|n| common::ndjson_record(n, "acme corporation") + "\n").collect();

    let (status, reply) = import(&h, Some(&token), "application/x-ndjson", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply, json!({ "received": 3, "imported": 3, "duplicates": 0, "deliveries_queued": 6 }));
    assert_eq!((count(&h, "compromises").await, count(&h, "deliveries").await), (3, 6));

    // Re-sending the same batch (a retry after a timeout) is a no-op.
    let (status, reply) = import(&h, Some(&token), "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply, json!({ "received": 3, "imported": 0, "duplicates": 3, "deliveries_queued": 0 }));
    assert_eq!((count(&h, "compromises").await, count(&h, "deliveries").await), (3, 6));
}

#[tokio::test]
async fn simulate_imports_a_sample_for_the_organization_and_queues_one_delivery_per_active_integration() {
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org")
        .id;
    let a = integration(&h, &cookie, partner, "Desk A", true).await;
    integration(&h, &cookie, partner, "Desk B", true).await;
    integration(&h, &cookie, partner, "Desk C (off)", false).await;
    // Active, but not serving Acme.
    let d = integration(&h, &cookie, partner, "Desk D", true).await;
    app::integrations::store::set_association(&h.state.db, partner, acme, d, false, &Actor::operator("test"))
        .await
        .expect("untick");
    let globex =
        app::organizations::store::add(&h.state.db, partner, "Globex Inc", Some(&[][..]), &Actor::operator("test"))
            .await
            .expect("org")
            .id;

    let (status, _, body) = h.call("organizations/dev_tools", "", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "true"));
    let (_, _, page) = h.get("/organizations", Some(&cookie)).await;
    assert!(page.contains("Simulate compromise"), "dev mode offers the button: {page}");

    let (status, _, body) = h.call("organizations/simulate", &format!("id={acme}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let simulation: Simulation = serde_json::from_str(&body).expect("simulation");
    assert_eq!((simulation.summary.imported, simulation.summary.deliveries_queued), (1, 2));
    assert_eq!(simulation.sandbox_url.as_deref(), Some("http://127.0.0.1:3005/"));
    assert_eq!(simulation.autotask_sandbox_url.as_deref(), Some("http://127.0.0.1:3006/_sandbox/tickets"));
    let delivered_to: Vec<i64> =
        sqlx::query_scalar("SELECT integration_id FROM deliveries WHERE organization_id = $1 ORDER BY integration_id")
            .bind(acme)
            .fetch_all(&h.state.db.pool)
            .await
            .expect("deliveries");
    assert_eq!(delivered_to.len(), 2);
    assert!(delivered_to.contains(&a) && !delivered_to.contains(&d), "{delivered_to:?}");

    // Each press is a new compromise (a fresh uuid), not a duplicate.
    let (_, _, body) = h.call("organizations/simulate", &format!("id={acme}"), Some(&cookie)).await;
    let again: Simulation = serde_json::from_str(&body).expect("simulation");
    assert_eq!((again.summary.imported, again.summary.duplicates, again.summary.deliveries_queued), (1, 0, 2));

    // No Active integration serves Globex: imported, nothing queued.
    let (_, _, body) = h.call("organizations/simulate", &format!("id={globex}"), Some(&cookie)).await;
    let none: Simulation = serde_json::from_str(&body).expect("simulation");
    assert_eq!((none.summary.imported, none.summary.deliveries_queued), (1, 0));

    // Another partner's organization does not exist for this one; nor does a session-less caller get anywhere.
    let (_, other) = signed_in(&h, "other@example.com").await;
    let (status, _, body) = h.call("organizations/simulate", &format!("id={acme}"), Some(&other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(h.call("organizations/simulate", &format!("id={acme}"), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&h, "compromises").await, 3);
}

#[tokio::test]
async fn simulate_is_refused_in_production() {
    let h = harness(&[("APP_MODE", "production")]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org")
        .id;

    let (status, _, body) = h.call("organizations/dev_tools", "", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "false"));
    let (status, _, body) = h.call("organizations/simulate", &format!("id={acme}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains(app::organizations::simulation::PRODUCTION_REFUSAL), "{body}");
    assert_eq!((count(&h, "compromises").await, count(&h, "deliveries").await), (0, 0));
    // The page renders no Simulate button.
    let (status, _, page) = h.get("/organizations", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Acme Corporation") && !page.contains("Simulate"), "{page}");
}
