//! The Delivery log's server functions through the real router on SQLite: rows, counts, filters, keyset paging,
//! Paused while Inactive, Retry (one and all), partner isolation, and the answers without a session or with an
//! unknown state. No delivery worker runs here, so deliveries stay where the test puts them.

mod common;

use common::{Harness, harness, integration_input, save_integration, signed_in};
use http::StatusCode;

use app::activity::Actor;
use app::compromises::{ImportRecord, OrganizationRef};
use app::delivery::{DeliveryLog, DeliveryState, LOG_PAGE_SIZE};
use app::mapping::{PasswordCriteria, RecordType};

fn record(n: usize, organization: &str) -> ImportRecord {
    ImportRecord {
        uuid: format!("00000000-0000-4000-8000-{n:012}"),
        password: None,
        record_type: RecordType::Email,
        source: "Collection #1".into(),
        website: None,
        organization: OrganizationRef::ByName(organization.into()),
        compromise: format!("user{n}@example.com"),
        password_criteria: PasswordCriteria::NotApplicable,
        search_value: "example.com".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    }
}

/// A partner with Acme and Globex, and an Active integration associated with both. Returns (partner id, cookie,
/// integration id, Acme's id, Globex's id).
async fn setup(h: &Harness, email: &str) -> (i64, String, i64, i64, i64) {
    let (partner, cookie) = signed_in(h, email).await;
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("acme")
        .id;
    let globex = app::organizations::store::add(&h.state.db, partner, "Globex Inc", None, &Actor::operator("test"))
        .await
        .expect("globex")
        .id;
    let (status, body) = save_integration(h, &cookie, None, integration_input("CW Log")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let integration: i64 = body.parse().expect("id");
    app::integrations::store::set_active(&h.state.db, partner, integration, true, &Actor::operator("test"))
        .await
        .expect("active");
    (partner, cookie, integration, acme, globex)
}

async fn import(h: &Harness, partner: i64, records: &[ImportRecord]) {
    let summary =
        app::compromises::store::import(&h.state.db, &h.state.secrets, partner, records).await.expect("import");
    assert_eq!(summary.imported, records.len());
}

async fn log(h: &Harness, cookie: &str, form: &str) -> DeliveryLog {
    let (status, _, body) = h.call("deliveries/log", form, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{form}: {body}");
    serde_json::from_str(&body).expect("log")
}

async fn fail(h: &Harness, delivery_id: i64) {
    sqlx::query("UPDATE deliveries SET state = 'failed', last_error = 'x' WHERE id = $1")
        .bind(delivery_id)
        .execute(&h.state.db.pool)
        .await
        .expect("fail");
}

#[tokio::test]
async fn the_log_lists_newest_first_with_counts_and_filters() {
    let h = harness(&[]).await;
    let (partner, cookie, id, acme, globex) = setup(&h, "owner@example.com").await;

    let empty = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!((empty.integration_name.as_str(), empty.active), ("CW Log", true));
    assert_eq!((empty.rows.len(), empty.counts.total(), empty.more), (0, 0, false));
    assert!(empty.organizations.is_empty(), "only organizations with deliveries are offered");

    let records: Vec<ImportRecord> =
        (1..=5).map(|n| record(n, if n <= 3 { "Acme Corporation" } else { "Globex Inc" })).collect();
    import(&h, partner, &records).await;

    let all = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!(all.counts.pending, 5);
    assert_eq!(all.counts.total(), 5);
    assert_eq!(all.rows.len(), 5);
    assert!(all.rows.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all.rows[0].compromise, "user5@example.com");
    assert_eq!((all.rows[0].organization.as_str(), all.rows[0].organization_id), ("Globex Inc", globex));
    assert_eq!(all.rows[0].record_type, "Email");
    assert_eq!(all.rows[0].uuid, "00000000-0000-4000-8000-000000000005");
    assert!(all.rows.iter().all(|r| r.state == DeliveryState::Pending && r.attempts == 0));
    assert_eq!(all.organizations, vec![(acme, "Acme Corporation".to_string()), (globex, "Globex Inc".to_string())]);

    // By organization.
    let only_globex = log(&h, &cookie, &format!("integration_id={id}&organization_id={globex}")).await;
    assert_eq!(only_globex.rows.len(), 2);
    assert!(only_globex.rows.iter().all(|r| r.organization_id == globex));
    assert_eq!(only_globex.counts.total(), 5, "the counts are the integration's, whatever the filter");

    // By state: one Failed, the rest Pending.
    let failed_id = all.rows[1].id;
    fail(&h, failed_id).await;
    let failed = log(&h, &cookie, &format!("integration_id={id}&state=failed")).await;
    assert_eq!((failed.counts.failed, failed.counts.pending), (1, 4));
    assert_eq!(failed.rows.len(), 1);
    assert_eq!((failed.rows[0].id, failed.rows[0].state), (failed_id, DeliveryState::Failed));
    assert_eq!(failed.rows[0].last_error.as_deref(), Some("x"));
    let pending = log(&h, &cookie, &format!("integration_id={id}&state=pending&organization_id={acme}")).await;
    assert_eq!(pending.rows.len(), 3);
    assert!(pending.rows.iter().all(|r| r.state == DeliveryState::Pending && r.organization_id == acme));
    let delivered = log(&h, &cookie, &format!("integration_id={id}&state=delivered")).await;
    assert!(delivered.rows.is_empty());
    let paused = log(&h, &cookie, &format!("integration_id={id}&state=paused")).await;
    assert!(paused.rows.is_empty(), "nothing is Paused while the integration is Active");

    // Inactive: what waits is Paused (and resumes on Enable); Failed stays Failed.
    app::integrations::store::set_active(&h.state.db, partner, id, false, &Actor::operator("test"))
        .await
        .expect("inactive");
    let inactive = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert!(!inactive.active);
    assert_eq!((inactive.counts.paused, inactive.counts.pending, inactive.counts.failed), (4, 0, 1));
    assert_eq!(inactive.rows.iter().filter(|r| r.state == DeliveryState::Paused).count(), 4);
    let paused = log(&h, &cookie, &format!("integration_id={id}&state=paused")).await;
    assert_eq!(paused.rows.len(), 4);
    let pending = log(&h, &cookie, &format!("integration_id={id}&state=pending")).await;
    assert!(pending.rows.is_empty());
    app::integrations::store::set_active(&h.state.db, partner, id, true, &Actor::operator("test"))
        .await
        .expect("active again");
    assert_eq!(log(&h, &cookie, &format!("integration_id={id}")).await.counts.pending, 4);

    // An empty state value is no filter; an unknown one is refused.
    assert_eq!(log(&h, &cookie, &format!("integration_id={id}&state=")).await.rows.len(), 5);
    let (status, _, body) = h.call("deliveries/log", &format!("integration_id={id}&state=lost"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("There is no delivery state") && body.contains("lost"), "{body}");
}

#[tokio::test]
async fn older_deliveries_come_page_by_page() {
    let h = harness(&[]).await;
    let (partner, cookie, id, _, _) = setup(&h, "pages@example.com").await;
    let total = LOG_PAGE_SIZE + 3;
    let records: Vec<ImportRecord> = (1..=total).map(|n| record(n, "Acme Corporation")).collect();
    import(&h, partner, &records).await;

    let first = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!((first.rows.len(), first.more), (LOG_PAGE_SIZE, true));
    let last = first.rows.last().expect("rows").id;
    let second = log(&h, &cookie, &format!("integration_id={id}&before_id={last}")).await;
    assert_eq!((second.rows.len(), second.more), (3, false));
    assert!(second.rows.iter().all(|r| r.id < last));
    let mut ids: Vec<i64> = first.rows.iter().chain(&second.rows).map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), total, "no delivery is skipped or shown twice");
    assert_eq!(second.rows.last().expect("oldest").compromise, "user1@example.com");
    // Paging keeps the filter.
    let filtered = log(&h, &cookie, &format!("integration_id={id}&state=pending&before_id={last}")).await;
    assert_eq!(filtered.rows.len(), 3);
}

#[tokio::test]
async fn retry_puts_failed_deliveries_back_in_the_queue() {
    let h = harness(&[]).await;
    let (partner, cookie, id, _, _) = setup(&h, "retry@example.com").await;
    import(&h, partner, &(1..=4).map(|n| record(n, "Acme Corporation")).collect::<Vec<_>>()).await;
    let rows = log(&h, &cookie, &format!("integration_id={id}")).await.rows;
    for row in &rows[..3] {
        fail(&h, row.id).await;
    }

    // One.
    let one = rows[0].id;
    let (status, _, body) =
        h.call("deliveries/retry", &format!("integration_id={id}&delivery_id={one}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!((after.counts.failed, after.counts.pending), (2, 2));
    let retried = after.rows.iter().find(|r| r.id == one).expect("row");
    assert_eq!(retried.state, DeliveryState::Pending);
    // Twice: it is no longer Failed, and the answer says so.
    let (status, _, body) =
        h.call("deliveries/retry", &format!("integration_id={id}&delivery_id={one}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("no longer Failed"), "{body}");

    // All the others.
    let (status, _, body) = h.call("deliveries/retry-failed", &format!("integration_id={id}"), Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
    let after = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!((after.counts.failed, after.counts.pending), (0, 4));
    let (status, _, body) = h.call("deliveries/retry-failed", &format!("integration_id={id}"), Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "0"));
}

#[tokio::test]
async fn another_partner_gets_404_and_no_session_gets_401() {
    let h = harness(&[]).await;
    let (partner, cookie, id, _, _) = setup(&h, "owner@example.com").await;
    import(&h, partner, &[record(1, "Acme Corporation")]).await;
    let delivery = log(&h, &cookie, &format!("integration_id={id}")).await.rows[0].id;
    fail(&h, delivery).await;
    let (_, other) = signed_in(&h, "other@example.com").await;

    let calls = [
        ("deliveries/log", format!("integration_id={id}")),
        ("deliveries/retry", format!("integration_id={id}&delivery_id={delivery}")),
        ("deliveries/retry-failed", format!("integration_id={id}")),
    ];
    for (endpoint, form) in &calls {
        let (status, _, body) = h.call(endpoint, form, Some(&other)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(!body.contains("CW Log") && !body.contains("example.com"), "{endpoint}: {body}");
        let (status, _, body) = h.call(endpoint, form, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{endpoint}: {body}");
    }
    // An unknown state is checked after the session: still 401 without one.
    let (status, _, _) = h.call("deliveries/log", &format!("integration_id={id}&state=lost"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nothing changed for the owner.
    let owner = log(&h, &cookie, &format!("integration_id={id}")).await;
    assert_eq!(owner.counts.failed, 1);

    // The page itself renders for the owner, and sends a stranger to sign in.
    let (status, _, html) = h.get(&format!("/integrations/{id}/deliveries"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for expected in ["Delivery log · ", "CW Log", "user1@example.com", "Retry all failed (1)", "<tbody>"] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let (status, _, _) = h.get(&format!("/integrations/{id}/deliveries"), None).await;
    assert!(status.is_redirection(), "{status}");
}
