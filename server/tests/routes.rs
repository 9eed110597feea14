//! Route tests: the real router (pages, server functions, session gate) on a real SQLite database, driven with
//! `oneshot` requests.

mod common;

use app::activity::Actor;
use common::{PASSWORD, form, harness};
use http::{StatusCode, header};

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_safe_cookie() {
    let h = harness(&[]).await;
    h.partner("owner@example.com").await;

    let (status, headers, _) = h.get("/organizations", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/sign-in");
    let (status, _, body) = h.get("/sign-in", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Sign in to the Partner Dashboard"));

    let (status, headers, _) =
        h.call("sign_in", &form(&[("email", "OWNER@example.com"), ("password", PASSWORD)]), None).await;
    assert!(status.is_success(), "{status}");
    let cookie = headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(cookie.starts_with("dwid_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "dev mode serves plain http: {cookie}");
    let session = cookie.split(';').next().expect("pair");

    let (status, _, body) = h.get("/integrations", Some(session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("You have not added any integrations."));
    assert!(body.contains("owner@example.com"), "the header shows the partner's email");
    let (status, headers, _) = h.get("/sign-in", Some(session)).await;
    assert_eq!((status, &headers[header::LOCATION]), (StatusCode::SEE_OTHER, &"/integrations".parse().expect("hv")));

    let (status, _, body) = h.get("/no-such-page", Some(session)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Page not found"));

    // Sign out ends the session on the server, not just in the browser.
    let (status, headers, _) = h.call("sign_out", "", Some(session)).await;
    assert!(status.is_success(), "{status}");
    assert!(headers[header::SET_COOKIE].to_str().expect("ascii").contains("Max-Age=0"));
    let (status, _, _) = h.get("/integrations", Some(session)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = h.call("organizations/list", "", Some(session)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn production_cookies_are_secure() {
    let dir = std::env::temp_dir();
    let h = harness(&[("APP_MODE", "production"), ("DATA_DIR", dir.to_str().expect("utf8"))]).await;
    h.partner("owner@example.com").await;
    let (_, headers, _) =
        h.call("sign_in", &form(&[("email", "owner@example.com"), ("password", PASSWORD)]), None).await;
    assert!(headers[header::SET_COOKIE].to_str().expect("ascii").contains("; Secure"));
}

#[tokio::test]
async fn a_wrong_password_says_only_invalid_email_or_password() {
    let h = harness(&[]).await;
    h.partner("owner@example.com").await;
    for (email, password) in [("owner@example.com", "wrong password"), ("nobody@example.com", PASSWORD)] {
        let (status, headers, body) = h.call("sign_in", &form(&[("email", email), ("password", password)]), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(headers.get(header::SET_COOKIE).is_none());
        let err: app::error::AppError = serde_json::from_str(&body).expect("typed error");
        assert_eq!(err.to_string(), "Invalid email or password");
    }
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_email_and_per_address() {
    let h = harness(&[("SIGN_IN_MAX_FAILURES_PER_EMAIL", "3"), ("SIGN_IN_MAX_FAILURES_PER_IP", "5")]).await;
    h.partner("owner@example.com").await;
    h.partner("other@example.com").await;
    let attempt = |email: &'static str, password: &'static str| {
        let body = form(&[("email", email), ("password", password)]);
        let h = &h;
        async move { h.call("sign_in", &body, None).await.0 }
    };
    for _ in 0..3 {
        assert_eq!(attempt("owner@example.com", "wrong password").await, StatusCode::BAD_REQUEST);
    }
    // The email is locked, even with the right password...
    assert_eq!(attempt("owner@example.com", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    let (_, _, body) = h.call("sign_in", &form(&[("email", "owner@example.com"), ("password", PASSWORD)]), None).await;
    let err: app::error::AppError = serde_json::from_str(&body).expect("typed error");
    assert_eq!(err.to_string(), "Too many failed sign-in attempts. Please wait 15 minute(s) and try again.");
    // ...while another email from the same address still may sign in, until the address itself is locked.
    assert!(attempt("other@example.com", PASSWORD).await.is_success());
    for _ in 0..2 {
        assert_eq!(attempt("nobody@example.com", "wrong password").await, StatusCode::BAD_REQUEST);
    }
    assert_eq!(attempt("other@example.com", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn server_functions_answer_401_without_a_session() {
    let h = harness(&[]).await;
    let id = h.partner("owner@example.com").await;
    app::organizations::store::add(&h.state.db, id, "Secret Client", None, &Actor::operator("test"))
        .await
        .expect("org");
    for (endpoint, body) in [
        ("current_partner", ""),
        ("organizations/list", ""),
        ("organizations/add", "name=X"),
        ("organizations/rename", "id=1&name=X"),
        ("organizations/delete", "id=1"),
    ] {
        for cookie in [None, Some("dwid_session=forged"), Some(&*format!("dwid_session={}", "ab".repeat(32)))] {
            let (status, _, text) = h.call(endpoint, body, cookie).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{endpoint} {cookie:?}");
            assert!(!text.contains("Secret Client"));
        }
    }
    assert_eq!(app::organizations::store::list(&h.state.db, id).await.expect("list").len(), 1, "nothing changed");
}

#[tokio::test]
async fn a_partner_cannot_see_or_change_another_partners_organizations() {
    let h = harness(&[]).await;
    let first = h.partner("first@example.com").await;
    h.partner("second@example.com").await;
    let secret = app::organizations::store::add(&h.state.db, first, "First's Client", None, &Actor::operator("test"))
        .await
        .expect("org");
    let second = h.sign_in("second@example.com").await;

    let (status, _, body) = h.call("organizations/list", "", Some(&second)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "[]");
    let (status, _, _) = h.call("organizations/rename", &format!("id={}&name=Stolen", secret.id), Some(&second)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = h.call("organizations/delete", &format!("id={}", secret.id), Some(&second)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let still = app::organizations::store::list(&h.state.db, first).await.expect("list");
    assert_eq!(still, vec![secret]);
}

#[tokio::test]
async fn organization_input_is_validated_with_clear_messages() {
    let h = harness(&[]).await;
    h.partner("owner@example.com").await;
    let session = h.sign_in("owner@example.com").await;
    let (status, _, body) = h.call("organizations/add", "name=++Acme++", Some(&session)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""name":"Acme""#), "trimmed: {body}");
    for (name, expected) in [
        ("+++", "Enter the organization's name."),
        (&*"x".repeat(256), "The name is too long: at most 255 characters."),
        ("ACME", "An organization named \"ACME\" already exists."),
    ] {
        let (status, _, body) = h.call("organizations/add", &format!("name={name}"), Some(&session)).await;
        assert!(status.is_client_error(), "{status}");
        let err: app::error::AppError = serde_json::from_str(&body).expect("typed error");
        assert_eq!(err.to_string(), expected);
    }
    let (_, _, body) = h.call("organizations/list", "", Some(&session)).await;
    assert_eq!(body.matches("\"id\"").count(), 1, "only the valid one was added: {body}");
}
