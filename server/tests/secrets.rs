//! Secrets in logs: one test alone in its binary, because tracing caches per call site whether anyone listens, and
//! a test running beside it without a subscriber would hide lines from the capture.

mod common;

use std::sync::{Arc, Mutex};

use common::{PRIVATE_KEY, PUBLIC_KEY, harness, integration_input as input, save_integration as save, signed_in};
use http::StatusCode;
use serde_json::json;

/// Captures every log line written while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_are_sealed_at_rest_and_never_leave_the_server() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = harness(&[]).await;
    let (partner_id, cookie) = signed_in(&h, "owner@example.com").await;
    let mut responses = Vec::new();
    let (status, body) = save(&h, &cookie, None, input("CW")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: i64 = body.parse().expect("id");
    responses.push(body);
    responses.push(h.call("integrations/list", "", Some(&cookie)).await.2);
    let (_, _, settings) = h.call("integrations/get", &format!("id={id}"), Some(&cookie)).await;
    let parsed: app::integrations::IntegrationSettings = serde_json::from_str(&settings).expect("settings");
    assert!(parsed.credentials_set, "editing shows the keys as set");
    responses.push(settings);

    // Editing with blank key fields keeps the stored keys.
    let mut edited = input("CW renamed");
    edited["public_key"] = json!("");
    edited["private_key"] = json!("");
    let (status, body) = save(&h, &cookie, Some(id), edited).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    responses.push(body);

    for response in &responses {
        assert!(!response.contains(PRIVATE_KEY) && !response.contains(PUBLIC_KEY), "leaked in {response}");
    }
    let logged = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logged.contains("integration created"), "the capture works: {logged}");
    assert!(!logged.contains(PRIVATE_KEY) && !logged.contains(PUBLIC_KEY), "leaked in the log");

    let stored = app::integrations::store::get(&h.state.db, partner_id, id).await.expect("stored");
    assert!(stored.credentials_sealed.starts_with("v1:"));
    assert!(!stored.credentials_sealed.contains(PRIVATE_KEY) && !stored.credentials_sealed.contains(PUBLIC_KEY));
    let opened = app::integrations::service::open_credentials(&h.state, &stored).expect("opens");
    let app::integrations::service::PsaCredentials::ConnectWise(opened) = opened else {
        panic!("a ConnectWise integration's credentials: {opened:?}")
    };
    assert_eq!(
        opened.auth,
        app::connectwise::Auth::ApiMember { public_key: PUBLIC_KEY.into(), private_key: PRIVATE_KEY.into() }
    );
    assert_eq!(stored.name, "CW renamed");
}
