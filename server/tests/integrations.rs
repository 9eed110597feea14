//! Integration server functions through the real router: partner isolation, secrets that never leave the server,
//! status changes, removal, and organization association.

mod common;

use app::activity::Actor;
use common::{harness, integration_input as input, save_integration as save, signed_in};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_partner_cannot_read_edit_enable_test_or_remove_another_partners_integrations() {
    let h = harness(&[]).await;
    let (first_id, first) = signed_in(&h, "first@example.com").await;
    let (_, second) = signed_in(&h, "second@example.com").await;
    let org = app::organizations::store::add(&h.state.db, first_id, "First's Client", None, &Actor::operator("test"))
        .await
        .expect("org");
    let (status, body) = save(&h, &first, None, input("First's CW")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: i64 = body.parse().expect("id");

    let (status, _, body) = h.call("integrations/list", "", Some(&second)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    for (endpoint, form) in [
        ("integrations/get", format!("id={id}")),
        ("integrations/set_active", format!("id={id}&active=true")),
        ("integrations/remove", format!("id={id}")),
    ] {
        let (status, _, body) = h.call(endpoint, &form, Some(&second)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(!body.contains("First's CW"));
    }
    let (status, _) = save(&h, &second, Some(id), input("Hijacked")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = h
        .call(
            "integrations/associate",
            &format!("organization_id={}&integration_id={id}&associated=false", org.id),
            Some(&second),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nothing changed for the first partner.
    let (_, _, body) = h.call("integrations/list", "", Some(&first)).await;
    let rows: Vec<app::integrations::IntegrationRow> = serde_json::from_str(&body).expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].name.as_str(), rows[0].active), ("First's CW", false));
    assert_eq!(rows[0].organizations, vec!["First's Client".to_string()]);
}

#[tokio::test]
async fn integration_endpoints_answer_401_without_a_session() {
    let h = harness(&[]).await;
    for (endpoint, form) in [
        ("integrations/list", ""),
        ("integrations/get", "id=1"),
        ("integrations/set_active", "id=1&active=true"),
        ("integrations/remove", "id=1"),
        ("integrations/associate", "organization_id=1&integration_id=1&associated=true"),
    ] {
        assert_eq!(h.call(endpoint, form, None).await.0, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
    let (status, _, _) = h.call_json("integrations/save", &json!({ "id": null, "input": input("x") }), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_gets_a_clear_message_and_changes_nothing() {
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({ "name": "  " }), "Enter a name for the integration."),
        (json!({ "name": "x".repeat(101) }), "The name is too long: at most 100 characters."),
        (json!({ "private_key": "" }), "Enter the API member's private key."),
        (json!({ "site": "https://user:pw@na.myconnectwise.net" }), ""),
        (json!({ "company_id": "" }), ""),
    ];
    for (patch, expected) in cases {
        let mut body = input("CW");
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, text) = save(&h, &cookie, None, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        let err: app::error::AppError = serde_json::from_str(&text).expect("typed error");
        assert!(!err.to_string().is_empty());
        if !expected.is_empty() {
            assert_eq!(err.to_string(), expected);
        }
    }
    let (status, _) = save(&h, &cookie, None, input("CW")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = save(&h, &cookie, None, input("cw")).await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique per partner, ignoring case: {text}");
    let (_, _, body) = h.call("integrations/list", "", Some(&cookie)).await;
    assert_eq!(body.matches("\"id\"").count(), 1);
}

#[tokio::test]
async fn new_integrations_are_inactive_and_can_be_enabled_disabled_and_removed() {
    let h = harness(&[]).await;
    let (partner_id, cookie) = signed_in(&h, "owner@example.com").await;
    app::organizations::store::add(&h.state.db, partner_id, "Acme", None, &Actor::operator("test")).await.expect("org");
    let id: i64 = save(&h, &cookie, None, input("CW")).await.1.parse().expect("id");
    let rows = |body: String| serde_json::from_str::<Vec<app::integrations::IntegrationRow>>(&body).expect("rows");

    let list = rows(h.call("integrations/list", "", Some(&cookie)).await.2);
    assert_eq!((list[0].active, list[0].health), (false, app::integrations::Health::NotChecked));
    h.call("integrations/set_active", &format!("id={id}&active=true"), Some(&cookie)).await;
    assert!(rows(h.call("integrations/list", "", Some(&cookie)).await.2)[0].active);
    h.call("integrations/set_active", &format!("id={id}&active=false"), Some(&cookie)).await;
    assert!(!rows(h.call("integrations/list", "", Some(&cookie)).await.2)[0].active);

    let (status, _, _) = h.call("integrations/remove", &format!("id={id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(rows(h.call("integrations/list", "", Some(&cookie)).await.2).is_empty());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organization_integrations")
        .fetch_one(&h.state.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "associations go with the integration");
    let (status, _, _) = h.call("integrations/remove", &format!("id={id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn organizations_get_every_integration_by_default_or_exactly_the_ticked_ones() {
    let h = harness(&[]).await;
    let (_, cookie) = signed_in(&h, "owner@example.com").await;
    let a: i64 = save(&h, &cookie, None, input("CW A")).await.1.parse().expect("id");
    let b: i64 = save(&h, &cookie, None, input("CW B")).await.1.parse().expect("id");
    let org = |body: String| serde_json::from_str::<app::organizations::Organization>(&body).expect("org");

    let all = org(h.call("organizations/add", "name=Everything", Some(&cookie)).await.2);
    assert_eq!(all.integration_ids, vec![a, b]);
    // The add form's checkboxes: only the ticked one (the first box unticked leaves a gap in the indices).
    let (status, _, body) = h
        .call(
            "organizations/add",
            &format!("name=Only+B&choose_integrations=true&integration_ids[1]={b}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(org(body).integration_ids, vec![b]);
    let none = org(h.call("organizations/add", "name=None&choose_integrations=true", Some(&cookie)).await.2);
    assert!(none.integration_ids.is_empty());

    let (status, _, _) = h
        .call(
            "integrations/associate",
            &format!("organization_id={}&integration_id={a}&associated=true", none.id),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = h.call("organizations/list", "", Some(&cookie)).await;
    let list: Vec<app::organizations::Organization> = serde_json::from_str(&body).expect("list");
    let by_name = |name: &str| list.iter().find(|o| o.name == name).expect("org").integration_ids.clone();
    assert_eq!(by_name("None"), vec![a]);
    assert_eq!(by_name("Everything"), vec![a, b]);

    let (_, _, body) = h.call("integrations/list", "", Some(&cookie)).await;
    let rows: Vec<app::integrations::IntegrationRow> = serde_json::from_str(&body).expect("rows");
    assert_eq!(rows[0].organizations, ["Everything", "None"], "CW A serves these, sorted");
    assert_eq!(rows[1].organizations, ["Everything", "Only B"]);
}
