//! The hardening promises of the README's "Security" section, one test per point, through the real router (and, for
//! start-up, the real binary). Each was written to fail on the code before its fix.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::activity::Actor;
use axum::body::Body;
use base64::Engine;
use common::{Harness, PASSWORD, form, harness};
use http::{HeaderMap, Request, StatusCode, header};

const BIN: &str = env!("CARGO_BIN_EXE_server");

/// POSTs a form to a server function with the given extra headers (no `Sec-Fetch-Site` unless given).
async fn post(h: &Harness, endpoint: &str, body: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::post(format!("/api/{endpoint}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    h.send(request.body(Body::from(body.to_string())).expect("request")).await
}

/// A sign-in attempt from `client` (behind one trusted proxy, which appended it to `X-Forwarded-For`).
async fn sign_in_from(
    h: &Harness,
    email: &str,
    password: &str,
    forwarded_for: &str,
) -> (StatusCode, HeaderMap, String) {
    let body = form(&[("email", email), ("password", password)]);
    post(h, "sign_in", &body, &[("sec-fetch-site", "same-origin"), ("x-forwarded-for", forwarded_for)]).await
}

fn message(body: &str) -> String {
    serde_json::from_str::<app::error::AppError>(body).map(|e| e.to_string()).unwrap_or_else(|_| body.to_string())
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dwid-security-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ---- Sign-in under attack -------------------------------------------------------------------------------------

#[tokio::test]
async fn password_hashing_is_bounded_and_the_rest_get_429_with_retry_after() {
    let h = harness(&[
        ("TRUSTED_PROXY_HOPS", "1"),
        ("SIGN_IN_MAX_CONCURRENT_HASHES", "1"),
        ("SIGN_IN_MAX_WAITING", "2"),
        ("SIGN_IN_HASH_WAIT_MS", "100"),
    ])
    .await;
    // Watch how many verifications run at once while 40 failed sign-ins from 40 addresses arrive together.
    let slots = h.state.sign_in_slots.clone();
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn({
        let watching = watching.clone();
        async move {
            let mut peak = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(slots.in_use());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            peak
        }
    });
    let h = std::sync::Arc::new(h);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let h = h.clone();
        tasks.spawn(async move {
            sign_in_from(&h, &format!("guess{n}@example.com"), "wrong password", &format!("203.0.113.{n}")).await
        });
    }
    let answers = tasks.join_all().await;
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let peak = watcher.await.expect("watcher");
    assert!(peak <= 1, "at most one verification at a time, saw {peak}");
    let busy: Vec<_> = answers.iter().filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!busy.is_empty(), "requests beyond the slots and the waiting room are refused");
    for (_, headers, body) in &busy {
        assert!(headers.contains_key(header::RETRY_AFTER), "429 carries Retry-After");
        assert_eq!(message(body), "Signing in is busy right now. Please try again in a few seconds.");
    }
    let checked = answers.iter().filter(|(status, _, _)| *status == StatusCode::BAD_REQUEST).count();
    assert!(checked >= 1 && checked + busy.len() == 40, "{checked} checked, {} busy", busy.len());
}

#[tokio::test]
async fn parallel_guesses_cannot_race_past_the_limit() {
    let h = harness(&[
        ("TRUSTED_PROXY_HOPS", "1"),
        ("SIGN_IN_MAX_FAILURES_PER_EMAIL", "5"),
        ("SIGN_IN_MAX_CONCURRENT_HASHES", "32"),
        ("SIGN_IN_MAX_WAITING", "64"),
        ("SIGN_IN_HASH_WAIT_MS", "60000"),
    ])
    .await;
    h.partner("owner@example.com").await;
    let h = std::sync::Arc::new(h);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let h = h.clone();
        tasks.spawn(async move {
            sign_in_from(&h, "owner@example.com", &format!("wrong password {n}"), "198.51.100.7").await.0
        });
    }
    let statuses = tasks.join_all().await;
    let evaluated = statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((evaluated, refused), (5, 15), "exactly the per-email limit is checked: {statuses:?}");
}

#[tokio::test]
async fn an_attacker_who_knows_the_email_cannot_keep_the_owner_out() {
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1"), ("SIGN_IN_MAX_FAILURES_PER_EMAIL", "3")]).await;
    h.partner("owner@example.com").await;
    for _ in 0..10 {
        sign_in_from(&h, "owner@example.com", "wrong password", "203.0.113.66").await;
    }
    let (status, _, _) = sign_in_from(&h, "owner@example.com", PASSWORD, "203.0.113.66").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the attacker's address is locked for this email");
    let (status, headers, body) = sign_in_from(&h, "owner@example.com", PASSWORD, "198.51.100.20").await;
    assert!(status.is_success(), "the owner, from their own address, signs in: {status} {body}");
    assert!(headers.contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn a_slower_global_ceiling_stops_guessing_one_email_from_many_addresses() {
    let h = harness(&[
        ("TRUSTED_PROXY_HOPS", "1"),
        ("SIGN_IN_MAX_FAILURES_PER_EMAIL", "3"),
        ("SIGN_IN_MAX_FAILURES_PER_EMAIL_GLOBAL", "8"),
    ])
    .await;
    h.partner("owner@example.com").await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        for _ in 0..3 {
            statuses.push(sign_in_from(&h, "owner@example.com", "wrong", &format!("203.0.113.{n}")).await.0);
        }
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count();
    assert_eq!(checked, 8, "no more than the global ceiling is checked: {statuses:?}");
    let (_, headers, body) = sign_in_from(&h, "owner@example.com", PASSWORD, "198.51.100.20").await;
    assert!(message(&body).starts_with("Too many failed sign-in attempts"), "{body}");
    let retry_after: u64 = headers[header::RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after > 15 * 60 && retry_after <= 60 * 60, "the global window is an hour: {retry_after}");
}

#[tokio::test]
async fn the_client_address_is_read_from_the_right_after_the_trusted_hops() {
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1"), ("SIGN_IN_MAX_FAILURES_PER_IP", "3")]).await;
    h.partner("owner@example.com").await;
    // The attacker forges a fresh left-hand entry each time; the proxy's entry (the real address) is on the right.
    for n in 0..3 {
        let (status, _, _) =
            sign_in_from(&h, &format!("nobody{n}@example.com"), "wrong", &format!("10.9.9.{n}, 203.0.113.9")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _, _) = sign_in_from(&h, "nobody9@example.com", "wrong", "10.9.9.99, 203.0.113.9").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "forging the left of X-Forwarded-For does not help");
    // Another real client behind the same proxy is someone else.
    let (status, _, body) = sign_in_from(&h, "owner@example.com", PASSWORD, "203.0.113.9, 198.51.100.4").await;
    assert!(status.is_success(), "{status} {body}");
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1"), ("SIGN_IN_MAX_FAILURES_PER_IP", "2")]).await;
    for (n, address) in ["2001:db8:7:1::a", "2001:db8:7:1:ffff::b"].iter().enumerate() {
        let (status, _, _) = sign_in_from(&h, &format!("x{n}@example.com"), "wrong", address).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _, _) = sign_in_from(&h, "x9@example.com", "wrong", "2001:db8:7:1:1234:5678:9abc:def0").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the same /64 is the same client");
    let (status, _, _) = sign_in_from(&h, "x9@example.com", "wrong", "2001:db8:7:2::a").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "another /64 is another client");
}

#[tokio::test]
async fn the_failure_ledger_stays_small_hashed_and_purged() {
    let h = harness(&[("TRUSTED_PROXY_HOPS", "1")]).await;
    // Not an email: refused with a sentence, nothing counted or stored.
    for bad in ["not an email".to_string(), format!("{}@example.com", "a".repeat(300))] {
        let (status, _, body) = sign_in_from(&h, &bad, "wrong", "203.0.113.5").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message(&body), "Enter your email address, like name@example.com.");
    }
    assert_eq!(app::rate_limit::rows(&h.state.db).await.expect("rows"), 0);
    // Counted under keyed hashes: no email or address in the clear.
    sign_in_from(&h, "victim@example.com", "wrong", "203.0.113.5").await;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM rate_limits").fetch_all(&h.state.db.pool).await.expect("keys");
    assert_eq!(keys.len(), 3, "one row per counter, not per attempt");
    for key in &keys {
        assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    }
    // Further attempts reuse the rows; ended windows are purged.
    for _ in 0..3 {
        sign_in_from(&h, "victim@example.com", "wrong", "203.0.113.5").await;
    }
    assert_eq!(app::rate_limit::rows(&h.state.db).await.expect("rows"), 3);
    app::rate_limit::hit(&h.state.db, "ended", 1_000, 1_000).await.expect("old row");
    assert_eq!(app::rate_limit::rows(&h.state.db).await.expect("rows"), 4);
    sign_in_from(&h, "victim@example.com", "wrong", "203.0.113.5").await;
    assert_eq!(app::rate_limit::rows(&h.state.db).await.expect("rows"), 3, "the ended window was purged");
}

// ---- Safe defaults --------------------------------------------------------------------------------------------

/// Runs the binary with only these variables, for at most 20 s; `None` when it was still running (it served).
fn run_briefly(dir: &std::path::Path, vars: &[(&str, &str)]) -> Option<std::process::Output> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("CW_SANDBOX_ADDR", "off")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_server_started_without_app_mode_behaves_as_production() {
    let dir = temp_dir();
    let out = run_briefly(&dir, &[]).expect("refuses to start instead of serving in dev mode");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SECRETS_KEY_FILE"), "production needs its key: {stderr}");
    assert!(!dir.join("secrets.key").exists(), "no dev key was generated");
    assert!(!dir.join("dwid.db").exists() || !stderr.contains("Demo partner"), "no demo data");
}

#[cfg(unix)]
#[test]
fn production_refuses_a_secrets_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let key = dir.join("secrets.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run_briefly(&dir, &[("APP_MODE", "production")]).expect("refuses to start");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can be read by other users") && stderr.contains("chmod 600"), "{stderr}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_sqlite_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir().join("data");
    let file = dir.join("dwid.db");
    app::db::Db::connect(&format!("sqlite://{}", file.display()), 2).await.expect("connect");
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&file), 0o600);
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let h = harness(&[]).await;
    let partner = h.partner("owner@example.com").await;
    let session = h.sign_in("owner@example.com").await;
    let add = |n: u32| format!("name=Org+{n}");
    let refused: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        // A browser always sends one of the two on a POST: a cookie without either is not from our page.
        &[],
    ];
    for (n, headers) in refused.iter().enumerate() {
        let mut headers = headers.to_vec();
        headers.push(("cookie", &session));
        headers.push(("host", "dash.example.com"));
        let (status, _, _) = post(&h, "organizations/add", &add(n as u32), &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert!(app::organizations::store::list(&h.state.db, partner).await.expect("list").is_empty(), "nothing changed");
    // Login CSRF: a foreign page cannot sign a browser in to an account of the attacker's choosing.
    let body = form(&[("email", "owner@example.com"), ("password", PASSWORD)]);
    let (status, headers, _) = post(&h, "sign_in", &body, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // The dashboard's own pages: by Sec-Fetch-Site, or by an Origin equal to the Host.
    let allowed: [&[(&str, &str)]; 2] =
        [&[("sec-fetch-site", "same-origin")], &[("origin", "https://dash.example.com")]];
    for (n, headers) in allowed.iter().enumerate() {
        let mut headers = headers.to_vec();
        headers.push(("cookie", &session));
        headers.push(("host", "dash.example.com"));
        let (status, _, body) = post(&h, "organizations/add", &add(10 + n as u32), &headers).await;
        assert_eq!(status, StatusCode::OK, "{headers:?} {body}");
    }
}

#[tokio::test]
async fn public_url_pins_the_origin() {
    let h = harness(&[("PUBLIC_URL", "https://dash.example.com")]).await;
    h.partner("owner@example.com").await;
    let session = h.sign_in("owner@example.com").await;
    for (origin, expected) in
        [("https://dash.example.com", StatusCode::OK), ("http://dash.example.com", StatusCode::FORBIDDEN)]
    {
        let headers = [("origin", origin), ("cookie", session.as_str()), ("host", "dash.example.com")];
        let (status, _, _) = post(&h, "organizations/list", "", &headers).await;
        assert_eq!(status, expected, "{origin}");
    }
}

#[tokio::test]
async fn the_production_session_cookie_is_host_prefixed() {
    let dir = temp_dir();
    let h = harness(&[("APP_MODE", "production"), ("DATA_DIR", dir.to_str().expect("utf8"))]).await;
    h.partner("owner@example.com").await;
    let (status, headers, _) =
        h.call("sign_in", &form(&[("email", "owner@example.com"), ("password", PASSWORD)]), None).await;
    assert!(status.is_success());
    let cookie = headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(cookie.starts_with("__Host-dwid_session="), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    let session = cookie.split(';').next().expect("pair").to_string();
    let (status, _, _) = h.get("/integrations", Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    // The unprefixed name, which any subdomain could set, is not read in production.
    let plain = session.replace("__Host-", "");
    let (status, _, _) = h.get("/integrations", Some(&plain)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn two_session_cookies_are_no_session() {
    let h = harness(&[]).await;
    h.partner("attacker@example.com").await;
    h.partner("victim@example.com").await;
    let attacker = h.sign_in("attacker@example.com").await;
    let victim = h.sign_in("victim@example.com").await;
    // A cookie planted by another host arrives first; the first one must not win.
    let both = format!("{attacker}; {victim}");
    let (status, headers, _) = h.get("/integrations", Some(&both)).await;
    assert_eq!(
        (status, headers.get(header::LOCATION).map(|v| v.to_str().expect("ascii"))),
        (StatusCode::SEE_OTHER, Some("/sign-in"))
    );
    let (status, _, _) = h.call("current_partner", "", Some(&both)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_no_javascript_error_channel_cannot_carry_an_attackers_sentence() {
    let h = harness(&[]).await;
    h.partner("owner@example.com").await;
    let forged = app::error::AppError::Invalid("Your account is locked. Call +1 555 0100 to unlock it.".into());
    let err = base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&forged).expect("json"));
    let link = format!("/sign-in?__path=%2Fapi%2Fsign_in&__err={err}");
    let (status, headers, body) = h.get(&link, None).await;
    assert!(!body.contains("Call +1 555 0100"), "the forged sentence is not shown");
    assert_eq!(
        (status, headers.get(header::LOCATION).map(|v| v.to_str().expect("ascii"))),
        (StatusCode::SEE_OTHER, Some("/sign-in"))
    );
    // A real failure without JavaScript still shows its own message after the redirect.
    let request = Request::post("/api/sign_in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, "http://dash.example.com/sign-in")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form(&[("email", "owner@example.com"), ("password", "wrong password")])))
        .expect("request");
    let (status, headers, _) = h.send(request).await;
    assert!(status.is_redirection(), "{status}");
    let location = headers[header::LOCATION].to_str().expect("ascii");
    assert!(location.contains("__err=") && location.contains("__sig="), "{location}");
    let path = &location[location.find("/sign-in").expect("path")..];
    let (status, _, body) = h.get(path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Invalid email or password"), "{body}");
}

#[tokio::test]
async fn the_error_channel_never_redirects_to_another_site() {
    let h = harness(&[]).await;
    for link in ["//evil.example/sign-in?__err=x", "/\\evil.example/sign-in?__err=x", "///evil.example?__err=x"] {
        let (status, headers, _) = h.get(link, None).await;
        let location = headers.get(header::LOCATION).map(|v| v.to_str().expect("ascii").to_owned());
        assert_eq!(status, StatusCode::SEE_OTHER, "{link}");
        let location = location.expect("location");
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\"),
            "{link} → {location}"
        );
    }
}

#[tokio::test]
async fn a_signed_error_shows_only_on_its_page_and_to_its_session() {
    let h = harness(&[]).await;
    let (_, mallory) = common::signed_in(&h, "mallory@example.com").await;
    let (_, victim) = common::signed_in(&h, "victim@example.com").await;
    // Mallory's own failed form (a duplicate organization name carrying her sentence) yields a signed redirect.
    let sentence = "Your account is locked. Call +1 555 0100";
    for _ in 0..2 {
        let request = Request::post("/api/organizations/add")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, "http://dash.example.com/organizations")
            .header(header::COOKIE, &mallory)
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(form(&[("name", sentence)])))
            .expect("request");
        h.send(request).await;
    }
    let request = Request::post("/api/organizations/add")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, "http://dash.example.com/organizations")
        .header(header::COOKIE, &mallory)
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form(&[("name", sentence)])))
        .expect("request");
    let (status, headers, _) = h.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().expect("ascii").to_owned();
    let link = &location[location.find("/organizations").expect("page")..];
    // Mallory sees her error on her page...
    let (status, _, _) = h.get(link, Some(&mallory)).await;
    assert_eq!(status, StatusCode::OK, "the signature holds for the session that caused it, on its page");
    // ...but the victim following her link does not, and neither does the link moved to another page.
    let (status, headers, _) = h.get(link, Some(&victim)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/organizations");
    let moved = link.replacen("/organizations", "/settings", 1);
    let (status, headers, _) = h.get(&moved, Some(&mallory)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/settings");
}

#[tokio::test]
async fn head_requests_meet_the_page_gate_too() {
    let h = harness(&[]).await;
    let request = Request::head("/integrations").body(Body::empty()).expect("request");
    let (status, headers, _) = h.send(request).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/sign-in");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let h = harness(&[]).await;
    let (_, headers, body) = h.get("/sign-in", None).await;
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    assert!(body.contains(&format!("nonce=\"{nonce}\"")), "the page's scripts carry the policy's nonce");
    assert!(!body.contains("<script>"), "no inline script without a nonce");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none(), "no HSTS on a dev machine's plain http");
    let (_, other, _) = h.get("/sign-in", None).await;
    assert_ne!(other[header::CONTENT_SECURITY_POLICY], headers[header::CONTENT_SECURITY_POLICY], "a nonce per page");
    let (_, headers, _) = h.get("/healthz", None).await;
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");

    let dir = temp_dir();
    let production = harness(&[("APP_MODE", "production"), ("DATA_DIR", dir.to_str().expect("utf8"))]).await;
    let (_, headers, _) = production.get("/sign-in", None).await;
    assert!(headers[header::STRICT_TRANSPORT_SECURITY].to_str().expect("ascii").starts_with("max-age="));
}

// ---- Bounded work per request ---------------------------------------------------------------------------------

async fn import(h: &Harness, token: &str, body: String) -> (StatusCode, HeaderMap, String) {
    let request = Request::post(server::api::IMPORT_PATH)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .expect("request");
    h.send(request).await
}

#[tokio::test]
async fn an_invalid_import_reports_at_most_100_errors_and_their_total() {
    let h = harness(&[]).await;
    let partner = h.partner("owner@example.com").await;
    let token =
        app::api_tokens::store::create(&h.state.db, partner, "test", &Actor::operator("test")).await.expect("token").1;
    // 2 MB of broken records: a long unknown field name and four missing fields each.
    let line = format!("{{\"{}\":1}}\n", "x".repeat(190));
    let body = line.repeat(10_000);
    assert!(body.len() > 1_900_000);
    let (status, _, reply) = import(&h, &token, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.len() < 100_000, "the reply stays small: {} bytes", reply.len());
    let json: serde_json::Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(json["errors"].as_array().expect("errors").len(), 100);
    let total = json["error_count"].as_u64().expect("count");
    assert!(total > 10_000, "every error is counted: {total}");
    assert!(json["error"].as_str().expect("sentence").contains(&format!("{total} errors, the first 100 listed")));
}

#[tokio::test]
async fn the_import_api_is_rate_limited_per_token() {
    let h = harness(&[("IMPORT_REQUESTS_PER_MINUTE", "3")]).await;
    let partner = h.partner("owner@example.com").await;
    let by = Actor::operator("test");
    let first = app::api_tokens::store::create(&h.state.db, partner, "first", &by).await.expect("token").1;
    let second = app::api_tokens::store::create(&h.state.db, partner, "second", &by).await.expect("token").1;
    for _ in 0..3 {
        let (status, _, _) = import(&h, &first, "{}\n".into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "counted, then validated");
    }
    let (status, headers, reply) = import(&h, &first, "{}\n".into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    let retry_after: u64 = headers[header::RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert!(reply.contains("at most 3 a minute"), "{reply}");
    let (status, _, _) = import(&h, &second, "{}\n".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "another token has its own budget");
    // Padding the token does not make it another token's budget.
    for padded in [format!(" {first}"), format!("\t{first}  ")] {
        let (status, _, reply) = import(&h, &padded, "{}\n".into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{padded:?}: {reply}");
    }
}

// ---- Fair work per tenant: per-partner caps --------------------------------------------------------------------

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&h.state.db.pool).await.expect("count")
}

#[tokio::test]
async fn integrations_per_partner_are_capped_with_a_clear_message() {
    let h = harness(&[("MAX_INTEGRATIONS_PER_PARTNER", "2")]).await;
    let (_, cookie) = common::signed_in(&h, "owner@example.com").await;
    for name in ["Desk 1", "Desk 2"] {
        let (status, body) = common::save_integration(&h, &cookie, None, common::integration_input(name)).await;
        assert!(status.is_success(), "{status} {body}");
    }
    let (status, body) = common::save_integration(&h, &cookie, None, common::integration_input("Desk 3")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("limit of 2 integrations"), "{body}");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM integrations").await, 2, "nothing was created");
    // Editing an existing one is not adding one.
    let id: i64 = count(&h, "SELECT MIN(id) FROM integrations").await;
    let (status, body) = common::save_integration(&h, &cookie, Some(id), common::integration_input("Desk 1b")).await;
    assert!(status.is_success(), "{status} {body}");
    // The cap is per partner.
    let (_, other) = common::signed_in(&h, "other@example.com").await;
    let (status, body) = common::save_integration(&h, &other, None, common::integration_input("Desk 1")).await;
    assert!(status.is_success(), "{status} {body}");
}

#[tokio::test]
async fn organizations_per_partner_are_capped_with_a_clear_message() {
    let h = harness(&[("MAX_ORGANIZATIONS_PER_PARTNER", "2")]).await;
    let (_, cookie) = common::signed_in(&h, "owner@example.com").await;
    for name in ["Acme", "Globex"] {
        let (status, _, body) = h.call("organizations/add", &form(&[("name", name)]), Some(&cookie)).await;
        assert!(status.is_success(), "{status} {body}");
    }
    let (status, _, body) = h.call("organizations/add", &form(&[("name", "Initech")]), Some(&cookie)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("limit of 2 organizations"), "{body}");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM organizations").await, 2);
}

#[tokio::test]
async fn deliveries_waiting_per_partner_are_capped_and_the_batch_is_refused_whole() {
    let h = harness(&[("MAX_QUEUED_DELIVERIES_PER_PARTNER", "5"), ("DELIVERY_WORKER", "false")]).await;
    let (partner, cookie) = common::signed_in(&h, "owner@example.com").await;
    let operator = app::activity::Actor::operator("test");
    app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &operator).await.expect("org");
    let (status, body) = common::save_integration(&h, &cookie, None, common::integration_input("Desk")).await;
    assert!(status.is_success(), "{status} {body}");
    let id: i64 = serde_json::from_str(&body).expect("id");
    app::integrations::store::set_active(&h.state.db, partner, id, true, &operator).await.expect("enable");
    let token = app::api_tokens::store::create(&h.state.db, partner, "test", &operator).await.expect("token").1;

    let batch =
        |range: std::ops::Range<usize>| range.map(|n| common::ndjson_record(n, "Acme Corporation") + "\n").collect();
    let (status, _, reply) = import(&h, &token, batch(0..4)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // Two more would make 6 waiting: the whole batch is refused, so it can be sent again as it is.
    let (status, headers, reply) = import(&h, &token, batch(4..6)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    assert_eq!(headers[header::RETRY_AFTER], "60");
    assert!(message(&reply).contains("6 tickets waiting to be sent, over your limit of 5"), "{reply}");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM compromises").await, 4, "nothing of the batch was stored");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM deliveries").await, 4);
    // One more fits exactly.
    let (status, _, reply) = import(&h, &token, batch(4..5)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(count(&h, "SELECT COUNT(*) FROM deliveries").await, 5);
}
