//! The test harness shared by the route tests: the real router over a fresh SQLite database, and helpers to call
//! pages and server functions as the browser does.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, to_bytes};
use http::{Request, StatusCode, header};
use leptos::config::LeptosOptions;
use serde_json::json;
use tower::ServiceExt;

use app::config::Config;
use app::state::AppState;

pub const PASSWORD: &str = "correct horse battery";

pub struct Harness {
    pub router: Router,
    pub state: AppState,
}

/// The harness in dev mode unless `vars` set `APP_MODE` (the server's own default is production).
pub async fn harness(vars: &[(&str, &str)]) -> Harness {
    harness_on(app::testing::sqlite().await, vars)
}

/// The harness over a given database (e.g. a fresh PostgreSQL one).
pub fn harness_on(db: app::db::Db, vars: &[(&str, &str)]) -> Harness {
    let mut map: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.entry("APP_MODE".into()).or_insert_with(|| "dev".into());
    let config = Config::from_lookup(|name| map.get(name).cloned()).expect("config");
    let options = LeptosOptions::builder().output_name("dwid-integrations").build();
    let secrets = app::secrets::SecretBox::new(&[42u8; 32]);
    let state = AppState::new(options, db, config, secrets).expect("ticketing clients");
    Harness { router: server::routes::router(state.clone()), state }
}

impl Harness {
    pub async fn partner(&self, email: &str) -> i64 {
        app::auth::store::create_partner(&self.state.db, email, PASSWORD).await.expect("partner").id
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 10 << 20).await.expect("body");
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// Calls a server function the way the browser's server-fn client does (form-encoded POST).
    pub async fn call(
        &self,
        endpoint: &str,
        form: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::post(format!("/api/{endpoint}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header("sec-fetch-site", "same-origin");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(form.to_string())).expect("request")).await
    }

    /// Calls a server function whose input is JSON (the wizard's save).
    pub async fn call_json(
        &self,
        endpoint: &str,
        json: &serde_json::Value,
        cookie: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::post(format!("/api/{endpoint}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header("sec-fetch-site", "same-origin");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(json.to_string())).expect("request")).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::get(path).header(header::ACCEPT, "text/html");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).expect("request")).await
    }

    /// Signs in and returns the `Cookie` header value that carries the session.
    pub async fn sign_in(&self, email: &str) -> String {
        let (status, headers, body) =
            self.call("sign_in", &form(&[("email", email), ("password", PASSWORD)]), None).await;
        assert!(status.is_success(), "sign in: {status} {body}");
        let set_cookie = headers.get(header::SET_COOKIE).expect("cookie").to_str().expect("ascii");
        set_cookie.split(';').next().expect("pair").to_string()
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25").replace('&', "%26").replace('+', "%2B").replace(' ', "+").replace('@', "%40")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub const PUBLIC_KEY: &str = "PUBKEY-7f3a9c";
pub const PRIVATE_KEY: &str = "PRIVATE-SECRET-4b81e2";

pub fn integration_input(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "site": "http://127.0.0.1:3005",
        "company_id": "dwid_demo",
        "auth_kind": "ApiKeys",
        "public_key": PUBLIC_KEY,
        "private_key": PRIVATE_KEY,
        "username": "",
        "password": "",
        "mapping": [
            { "field": "summary", "value": "Dark Web ID: [compromise]" },
            { "field": "company", "value": "" }
        ]
    })
}

pub async fn save_integration(
    h: &Harness,
    cookie: &str,
    id: Option<i64>,
    body: serde_json::Value,
) -> (StatusCode, String) {
    let (status, _, text) = h.call_json("integrations/save", &json!({ "id": id, "input": body }), Some(cookie)).await;
    (status, text)
}

pub async fn signed_in(h: &Harness, email: &str) -> (i64, String) {
    let id = h.partner(email).await;
    (id, h.sign_in(email).await)
}

/// The wizard's form for the ConnectWise sandbox's demo account at `site`, with the given mapping rows.
pub fn sandbox_input(site: &str, name: &str, mapping: serde_json::Value) -> serde_json::Value {
    json!({
        "name": name,
        "site": site,
        "company_id": server::sandbox::DEMO_COMPANY_ID,
        "auth_kind": "ApiKeys",
        "public_key": server::sandbox::DEMO_PUBLIC_KEY,
        "private_key": server::sandbox::DEMO_PRIVATE_KEY,
        "username": "",
        "password": "",
        "mapping": mapping,
    })
}

/// One valid import record as an NDJSON line (without the newline) for the partner's organization `organization`.
pub fn ndjson_record(n: usize, organization: &str) -> String {
    json!({
        "uuid": format!("0e5b8c1a-1111-4222-8333-{n:012}"),
        "password": format!("Winter{n}!"),
        "record_type": "Email",
        "source": "Combolist (test)",
        "website": "https://shop.example",
        "organization_name": organization,
        "compromise": format!("user{n}@acme.example"),
        "password_criteria": "Matches",
        "search_value": "acme.example",
        "date_added": "2026-11-01T10:00:00Z",
        "date_found": "2026-10-30",
    })
    .to_string()
}
