//! The Activity page through the real router on SQLite: every action done through its server function leaves one
//! row (an action that fails leaves none), sign-ins with their client address, never a secret or a password in the
//! page, each partner sees only its own, filtering and keyset paging, and the page itself.

mod common;

use axum::body::Body;
use common::{Harness, PRIVATE_KEY, PUBLIC_KEY, form, harness, integration_input, save_integration, signed_in};
use http::{Request, StatusCode, header};
use serde_json::json;

use app::activity::{ActivityPage, Actor, Kind, PAGE_SIZE};
use app::compromises::{ImportRecord, OrganizationRef};
use app::integrations::TestOutcome;
use app::mapping::{PasswordCriteria, RecordType};

/// A password an attacker guessed: it must never be stored or shown.
const GUESS: &str = "Guessed-Password-0042";

async fn activity(h: &Harness, cookie: &str, form: &str) -> ActivityPage {
    let (status, _, body) = h.call("activity/page", form, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{form}: {body}");
    serde_json::from_str(&body).expect("activity page")
}

fn kinds(page: &ActivityPage) -> Vec<Kind> {
    page.rows.iter().rev().map(|row| row.kind).collect()
}

async fn html(h: &Harness, cookie: &str, path: &str) -> String {
    let (status, _, body) = h.get(path, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn rows_in_table(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM activity").fetch_one(&h.state.db.pool).await.expect("count")
}

/// Failed sign-ins are recorded off the response path (so a partner's email is answered as fast as an unknown
/// one): waits until the table holds `n` rows, and checks it stays there.
async fn settles_at(h: &Harness, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while rows_in_table(h).await < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(rows_in_table(h).await, n);
}

/// `POST /api/sign_in` from a client behind one trusted proxy at `address`.
async fn sign_in_from(h: &Harness, email: &str, password: &str, address: &str) -> (StatusCode, Option<String>) {
    let request = Request::post("/api/sign_in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "same-origin")
        .header("x-forwarded-for", address)
        .body(Body::from(form(&[("email", email), ("password", password)])))
        .expect("request");
    let (status, headers, _) = h.send(request).await;
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (status, cookie)
}

async fn ok(h: &Harness, cookie: &str, endpoint: &str, form: &str) -> String {
    let (status, _, body) = h.call(endpoint, form, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{endpoint} {form}: {body}");
    body
}

#[tokio::test]
async fn sign_ins_are_recorded_with_the_client_address_and_never_the_password() {
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1"), ("SIGN_IN_MAX_FAILURES_PER_EMAIL", "2")]).await;
    h.partner("owner@example.com").await;

    for n in 1..=2 {
        let (status, _) = sign_in_from(&h, "Owner@Example.com", GUESS, "198.51.100.23").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        settles_at(&h, n).await;
    }
    // Over the limit: the first refusal is recorded, later ones are not (they cannot grow the log).
    for _ in 0..3 {
        let (status, _) = sign_in_from(&h, "owner@example.com", GUESS, "198.51.100.23").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    // An email that is no partner's has no Activity page: nothing is recorded.
    let (status, _) = sign_in_from(&h, "nobody@example.com", GUESS, "198.51.100.23").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    settles_at(&h, 3).await;

    let (status, cookie) = sign_in_from(&h, "owner@example.com", common::PASSWORD, "203.0.113.9").await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.expect("session cookie");

    let page = activity(&h, &cookie, "").await;
    assert_eq!(kinds(&page), [Kind::SignInFailed, Kind::SignInFailed, Kind::SignInFailed, Kind::SignedIn]);
    let what: Vec<&str> = page.rows.iter().map(|r| r.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "Signed in.",
            "Sign-in refused: too many attempts.",
            "Sign-in failed: wrong password.",
            "Sign-in failed: wrong password."
        ]
    );
    let addresses: Vec<Option<&str>> = page.rows.iter().map(|r| r.address.as_deref()).collect();
    assert_eq!(addresses, [Some("203.0.113.9"), Some("198.51.100.23"), Some("198.51.100.23"), Some("198.51.100.23")]);
    assert_eq!(page.rows[0].who, "owner@example.com");
    assert_eq!(page.rows[3].who, "Owner@Example.com", "the email as typed, once it was a valid one");
    assert!(page.rows.iter().all(|r| r.when.ends_with(" UTC")), "{:?}", page.rows);

    let body = html(&h, &cookie, "/activity").await;
    for shown in ["Sign-in refused: too many attempts.", "198.51.100.23", "203.0.113.9", "owner@example.com"] {
        assert!(body.contains(shown), "{shown} missing");
    }
    assert!(!body.contains(GUESS) && !body.contains(common::PASSWORD), "no password in the page");
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT actor || ' ' || kind || ' ' || subject || ' ' || COALESCE(detail, '') FROM activity",
    )
    .fetch_all(&h.state.db.pool)
    .await
    .expect("rows");
    assert!(stored.iter().all(|row| !row.contains(GUESS) && !row.contains("nobody")), "{stored:?}");
}

fn record(n: usize, organization: &str) -> ImportRecord {
    ImportRecord {
        uuid: format!("00000000-0000-4000-8000-{n:012}"),
        password: Some(format!("Leaked-{n}-Secret")),
        record_type: RecordType::Email,
        source: "Collection #1".into(),
        website: None,
        organization: OrganizationRef::ByName(organization.into()),
        compromise: format!("user{n}@example.com"),
        password_criteria: PasswordCriteria::Matches,
        search_value: "example.com".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    }
}

async fn fail_all(h: &Harness) -> Vec<i64> {
    sqlx::query_scalar("UPDATE deliveries SET state = 'failed', last_error = 'x' RETURNING id")
        .fetch_all(&h.state.db.pool)
        .await
        .expect("fail")
}

#[tokio::test]
async fn every_action_through_its_server_fn_is_recorded_and_a_failed_one_is_not() {
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;

    let org: app::organizations::Organization =
        serde_json::from_str(&ok(&h, &cookie, "organizations/add", &form(&[("name", "Acme")])).await).expect("org");
    let (status, body) = save_integration(&h, &cookie, None, integration_input("CW Prod")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: i64 = body.parse().expect("id");
    let (status, body) = save_integration(&h, &cookie, Some(id), integration_input("CW Production")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ok(&h, &cookie, "integrations/set_active", &format!("id={id}&active=true")).await;
    ok(&h, &cookie, "integrations/set_active", &format!("id={id}&active=false")).await;
    let link = |on: bool| format!("organization_id={}&integration_id={id}&associated={on}", org.id);
    ok(&h, &cookie, "integrations/associate", &link(false)).await;
    ok(&h, &cookie, "integrations/associate", &link(true)).await;
    ok(&h, &cookie, "organizations/rename", &format!("id={}&name=Acme+Corporation", org.id)).await;
    let token: app::api_tokens::CreatedToken =
        serde_json::from_str(&ok(&h, &cookie, "api-tokens/create", "name=SIEM").await).expect("token");
    ok(&h, &cookie, "api-tokens/revoke", &format!("id={}", token.token.id)).await;

    // Retry: one Failed delivery, then "Retry all failed".
    ok(&h, &cookie, "integrations/set_active", &format!("id={id}&active=true")).await;
    let records = [record(1, "Acme Corporation"), record(2, "Acme Corporation")];
    app::compromises::store::import(&h.state.db, &h.state.secrets, partner, &records).await.expect("import");
    let failed = fail_all(&h).await;
    assert_eq!(failed.len(), 2);
    ok(&h, &cookie, "deliveries/retry", &format!("integration_id={id}&delivery_id={}", failed[0])).await;
    ok(&h, &cookie, "deliveries/retry-failed", &format!("integration_id={id}")).await;

    // Actions that fail change nothing and record nothing.
    let before = activity(&h, &cookie, "").await;
    let (status, _) = save_integration(&h, &cookie, None, integration_input("cw production")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = h.call("organizations/add", &form(&[("name", "ACME CORPORATION")]), Some(&cookie)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) =
        h.call("deliveries/retry", &format!("integration_id={id}&delivery_id={}", failed[0]), Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer Failed");
    let (status, _, _) = h.call("integrations/remove", "id=999999", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(activity(&h, &cookie, "").await, before);

    ok(&h, &cookie, "integrations/remove", &format!("id={id}")).await;
    ok(&h, &cookie, "organizations/delete", &format!("id={}", org.id)).await;

    let page = activity(&h, &cookie, "").await;
    assert_eq!(
        kinds(&page),
        [
            Kind::SignedIn,
            Kind::OrganizationAdded,
            Kind::IntegrationCreated,
            Kind::IntegrationEdited,
            Kind::IntegrationEnabled,
            Kind::IntegrationDisabled,
            Kind::OrganizationUnlinked,
            Kind::OrganizationLinked,
            Kind::OrganizationRenamed,
            Kind::ApiTokenCreated,
            Kind::ApiTokenRevoked,
            Kind::IntegrationEnabled,
            Kind::DeliveryRetried,
            Kind::DeliveriesRetried,
            Kind::IntegrationRemoved,
            Kind::OrganizationDeleted,
        ]
    );
    assert!(page.rows.iter().all(|r| r.who == "owner@example.com"));
    let what: Vec<&str> = page.rows.iter().rev().map(|r| r.what.as_str()).collect();
    assert_eq!(what[3], "Edited the integration “CW Production” (renamed from “CW Prod”).");
    assert_eq!(what[6], "Unticked the integration “CW Production” for the organization “Acme”.");
    assert_eq!(what[8], "Renamed the organization “Acme” to “Acme Corporation”.");
    assert_eq!(what[9], format!("Created the API token “SIEM” ({}…).", token.token.prefix));
    assert_eq!(what[12], format!("Retried the failed delivery #{} of the integration “CW Production”.", failed[0]));
    assert_eq!(what[13], "Retried 1 failed delivery of the integration “CW Production” (Retry all failed).");
    assert_eq!(what[14], "Removed the integration “CW Production” and its stored keys.");

    // No secret in the page: not the ConnectWise keys, the API token, a leaked password or the partner's password.
    let body = html(&h, &cookie, "/activity").await;
    assert!(body.contains("Removed the integration “CW Production” and its stored keys."));
    for secret in [PRIVATE_KEY, PUBLIC_KEY, &token.value, &token.value[13..], "Leaked-1-Secret", common::PASSWORD] {
        assert!(!body.contains(secret), "{secret} is in the page");
    }
}

#[tokio::test]
async fn test_tickets_are_recorded_sent_or_refused() {
    let sb = server::sandbox::spawn(server::sandbox::SandboxConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "owner@example.com").await;
    let initech = app::organizations::store::add(&h.state.db, partner, "Initech", None, &Actor::operator("test"))
        .await
        .expect("org")
        .id;
    let mapping = json!([
        { "field": "summary", "value": "Dark Web ID: [compromise]" },
        { "field": "company", "value": "" },
        { "field": "board", "value": "1" },
        { "field": "status", "value": "2" },
        { "field": "priority", "value": "3" },
    ]);
    let input = common::sandbox_input(&sb.url(), "CW Sandbox", mapping);
    let (status, _, body) =
        h.call_json("integrations/save_and_test", &json!({ "id": null, "input": input }), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let TestOutcome::Created { integration_id, ticket_id, .. } = serde_json::from_str(&body).expect("outcome") else {
        panic!("not created: {body}");
    };
    // Without an organization the test ticket is refused, and that is recorded too.
    app::integrations::store::set_association(
        &h.state.db,
        partner,
        initech,
        integration_id,
        false,
        &Actor::operator("test"),
    )
    .await
    .expect("untick");
    let (status, _, body) = h
        .call_json("integrations/save_and_test", &json!({ "id": integration_id, "input": input }), Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(matches!(serde_json::from_str(&body).expect("outcome"), TestOutcome::Rejected { .. }), "{body}");

    let page = activity(&h, &cookie, "kind=integration").await;
    assert_eq!(
        kinds(&page),
        [Kind::IntegrationCreated, Kind::TestTicketSent, Kind::IntegrationEdited, Kind::TestTicketRefused]
    );
    let what: Vec<&str> = page.rows.iter().rev().map(|r| r.what.as_str()).collect();
    assert_eq!(
        what[1],
        format!("Sent a test ticket through “CW Sandbox”: ConnectWise ticket #{ticket_id} for “Initech”.")
    );
    assert!(what[3].starts_with("A test ticket through “CW Sandbox” was refused: No organization uses"), "{}", what[3]);
    let body = html(&h, &cookie, "/activity?kind=integration").await;
    assert!(body.contains(&format!("ticket #{ticket_id}")));
    assert!(!body.contains(server::sandbox::DEMO_PRIVATE_KEY), "the private key is never in the page");
}

#[tokio::test]
async fn each_partner_sees_only_its_own_filtered_and_paged() {
    let h = harness(&[]).await;
    let (first, cookie) = signed_in(&h, "first@example.com").await;
    let (_, other) = signed_in(&h, "second@example.com").await;
    let by = Actor::new("first@example.com", Some("192.0.2.10".parse().expect("ip")));
    for n in 0..PAGE_SIZE + 5 {
        app::activity::store::record_alone(&h.state.db, first, &by, Kind::OrganizationAdded, &format!("Org {n}"), None)
            .await
            .expect("record");
    }

    // The other partner sees its own sign-in and nothing of the first's.
    let theirs = activity(&h, &other, "").await;
    assert_eq!(kinds(&theirs), [Kind::SignedIn]);
    assert_eq!(theirs.rows[0].who, "second@example.com");
    let body = html(&h, &other, "/activity").await;
    assert!(!body.contains("first@example.com") && !body.contains("Org 1") && !body.contains("192.0.2.10"));
    assert!(
        activity(&h, &other, &format!("before_id={}", i64::MAX)).await.rows.len() == 1,
        "a keyset position does not open another partner's rows"
    );

    // Newest first, a page at a time.
    let newest = activity(&h, &cookie, "kind=organization").await;
    assert_eq!(newest.rows.len(), PAGE_SIZE);
    assert!(newest.more);
    assert_eq!(newest.rows[0].what, format!("Added the organization “Org {}”.", PAGE_SIZE + 4));
    let last = newest.rows.last().expect("rows").id;
    let older = activity(&h, &cookie, &format!("kind=organization&before_id={last}")).await;
    assert_eq!(older.rows.len(), 5);
    assert!(!older.more);
    assert_eq!(older.rows[4].what, "Added the organization “Org 0”.");
    let all = activity(&h, &cookie, "").await;
    assert_eq!(all.rows.len(), PAGE_SIZE);

    // Filters: a group, one kind, and an unknown one answered with a sentence.
    assert_eq!(kinds(&activity(&h, &cookie, "kind=sign_in").await), [Kind::SignedIn]);
    assert_eq!(kinds(&activity(&h, &cookie, "kind=sign_in.succeeded").await), [Kind::SignedIn]);
    assert!(activity(&h, &cookie, "kind=sign_in.failed").await.rows.is_empty());
    let (status, _, body) = h.call("activity/page", "kind=bogus", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("There is no kind of activity \\\"bogus\\\""), "{body}");

    // The page: filter in the URL, an Older link to the next keyset page, which ends with the oldest row.
    let body = html(&h, &cookie, "/activity?kind=sign_in").await;
    assert!(body.contains("Signed in.") && !body.contains("Org 1"));
    let body = html(&h, &cookie, "/activity?kind=organization").await;
    let older_link = format!("/activity?kind=organization&amp;before={last}");
    assert!(body.contains(&older_link) || body.contains(&older_link.replace("&amp;", "&")), "no Older link");
    let body = html(&h, &cookie, &format!("/activity?kind=organization&before={last}")).await;
    assert!(body.contains("“Org 0”") && !body.contains("“Org 54”"));
    assert!(body.contains("Newest"));

    // Signed in only.
    let (status, headers, _) = h.get("/activity", None).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/sign-in");
    let (status, _, _) = h.call("activity/page", "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
