//! The HTTP router: Leptos pages and server functions, static files, the session gate for pages, and the layers
//! around them: request ids and tracing, request metrics, compression, timeouts, the cross-site request guard,
//! signed no-JavaScript errors and the security headers. Also the metrics router, served on `METRICS_ADDR`.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use app::auth::{session_token_from_headers, store::session_partner};
use app::state::AppState;
use app::{App, shell};

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let timeout = state.config.request_timeout;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(crate::api::IMPORT_PATH, post(crate::api::import_compromises))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), page_gate))
        .layer(middleware::from_fn_with_state(state.clone(), error_channel))
        .layer(middleware::from_fn_with_state(state.clone(), same_origin_only))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outermost: a request id for every request (a safe incoming one is kept), returned on the response.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn_with_state(state.clone(), drop_unsafe_request_id))
        .with_state(state)
}

const REQUEST_ID: &str = "x-request-id";

/// The route label of requests no route matched (static files apart).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template a request matched (`/integrations/{id}/edit/{step}`, `/api/sign_in`), never the raw path,
/// so that the metrics' labels stay a closed set.
fn route_of(request: &Request) -> &str {
    match request.extensions().get::<MatchedPath>() {
        Some(matched) => matched.as_str(),
        None if request.uri().path().starts_with("/pkg/") => "/pkg/{file}",
        None => UNMATCHED_ROUTE,
    }
}

/// The span around a request: every line logged while serving it, the ConnectWise client's included, carries its
/// id (and its route and method).
fn request_span(request: &Request) -> tracing::Span {
    let request_id = header_str(request.headers(), REQUEST_ID).unwrap_or_default();
    tracing::info_span!("request", request_id, method = %request.method(), route = route_of(request))
}

/// Counts every request by route template and final status.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_of(&request).to_owned();
    let response = next.run(request).await;
    state.metrics.http_request(&route, response.status().as_u16());
    response
}

/// An incoming `x-request-id` is kept (to follow a request through a proxy's logs and ours) only behind a trusted
/// proxy (`TRUSTED_PROXY_HOPS` > 0, whose load balancer sets it) and only when it is short and plain: 1 to 64
/// letters, digits, `-`, `_`, `.`. Anything else is removed, so a fresh one is made: a client cannot forge log
/// lines, flood the logs, or pass another request's id as its own.
async fn drop_unsafe_request_id(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let ids: Vec<&HeaderValue> = request.headers().get_all(REQUEST_ID).iter().collect();
    let replace = match ids.as_slice() {
        [] => false,
        _ if state.config.trusted_proxy_hops == 0 => true,
        [id] => !is_safe_request_id(id.as_bytes()),
        _ => true,
    };
    if replace {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

pub fn is_safe_request_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Ready for traffic: the database answers and every migration of this binary is applied (503 with the reason
/// otherwise). `/healthz` only says the process is up.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.readiness().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => {
            tracing::warn!(reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}")).into_response()
        }
    }
}

/// `GET /metrics` in the Prometheus text format, for the separate `METRICS_ADDR` listener only (no session, no
/// page layers). The delivery gauges and the hashing slots are read at scrape time.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let now = app::db::now_millis();
    match app::delivery::store::queue_stats(&state.db, now).await {
        Ok(stats) => {
            let age = stats.oldest_due_at.map_or(0, |at| (now - at).max(0));
            state.metrics.set_queue(&stats.by_state, stats.due, std::time::Duration::from_millis(age as u64));
        }
        // The rest is still worth serving; the delivery gauges keep their last values.
        Err(err) => tracing::error!(error = %err, "could not read the delivery queue for the metrics"),
    }
    state.metrics.set_hash_slots(state.sign_in_slots.in_use(), state.sign_in_slots.capacity());
    ([(header::CONTENT_TYPE, app::metrics::CONTENT_TYPE)], state.metrics.encode()).into_response()
}

/// Paths anyone may load: the sign-in page, the built assets, server functions (each checks the session itself,
/// answering 401) and the health and readiness checks.
fn is_public(path: &str) -> bool {
    path == "/sign-in"
        || path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
}

/// Sends a browser without a valid session to the sign-in page, and a signed-in one away from it.
async fn page_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    // HEAD too: axum answers it with the GET handler, which renders the page.
    if !matches!(*request.method(), Method::GET | Method::HEAD) || (is_public(&path) && path != "/sign-in") {
        return next.run(request).await;
    }
    let partner = match session_token_from_headers(request.headers(), state.config.is_production()) {
        Some(token) => match session_partner(&state.db, &token).await {
            Ok(partner) => partner,
            Err(err) => {
                tracing::error!(error = %err, "session lookup failed");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
        None => None,
    };
    match (partner.is_some(), path == "/sign-in") {
        (true, true) => Redirect::to("/integrations").into_response(),
        (false, false) => Redirect::to("/sign-in").into_response(),
        _ => next.run(request).await,
    }
}

/// Refuses state-changing requests that a browser sent from another site (CSRF, login CSRF).
///
/// Browsers mark every request with `Sec-Fetch-Site` (which pages cannot forge) and every cross-origin or POST
/// request with `Origin`. A request must be `same-origin` by the first or come from the dashboard's own origin by
/// the second (`PUBLIC_URL`, else the `Host` it was sent to). A request with neither header is not from a current
/// browser; it is let through only without cookies, so it carries no session to abuse. The import API
/// authenticates by bearer token alone and is exempt.
async fn same_origin_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method();
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || request.uri().path() == crate::api::IMPORT_PATH
    {
        return next.run(request).await;
    }
    let headers = request.headers();
    let allowed = match (header_str(headers, "sec-fetch-site"), header_str(headers, header::ORIGIN.as_str())) {
        (Some(site), _) => site.eq_ignore_ascii_case("same-origin"),
        (None, Some(origin)) => is_own_origin(origin, state.config.public_origin.as_deref(), headers),
        (None, None) => !headers.contains_key(header::COOKIE),
    };
    if allowed {
        next.run(request).await
    } else {
        tracing::warn!(path = %request.uri().path(), "cross-site request refused");
        (StatusCode::FORBIDDEN, "Cross-site request refused: use the dashboard itself to make changes.").into_response()
    }
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Whether `origin` is the dashboard's: `PUBLIC_URL` when set, else the request's own `Host` (any scheme, as the
/// scheme is the proxy's business).
fn is_own_origin(origin: &str, public_origin: Option<&str>, headers: &http::HeaderMap) -> bool {
    let Some(origin) = app::config::parse_origin(origin) else { return false };
    match public_origin {
        Some(public) => origin == public,
        None => header_str(headers, header::HOST.as_str()).is_some_and(|host| {
            origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
        }),
    }
}

const ERR_PARAMS: [&str; 3] = ["__path", "__err", "__sig"];

/// Signs and checks the no-JavaScript error channel.
///
/// When a form posts without JavaScript and its server function fails, Leptos redirects back with the error in the
/// query (`?__path=…&__err=…`), and the page shows it. Unsigned, anyone could link to the sign-in page with a
/// sentence of their own in it. So the redirect gets `__sig`, a keyed hash of path and error under the secrets key,
/// and a page request whose error is not signed is sent to the same address without it.
async fn error_channel(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The signature binds the error to the page it is shown on and to the session that caused it (none on the
    // sign-in page): a signed link taken from one partner's failed form shows nothing on another's screen.
    let session = session_token_from_headers(request.headers(), state.config.is_production()).unwrap_or_default();
    if request.method() == Method::GET {
        let query = request.uri().query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        if pairs.iter().any(|(key, _)| ERR_PARAMS.contains(&key.as_str())) {
            let page = request.uri().path();
            let value = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, v)| v.as_str());
            let signed = match (value("__path"), value("__err"), value("__sig")) {
                (Some(path), Some(err), Some(sig)) => {
                    state.secrets.verify_keyed_hash("form error", &signed_text(page, path, err, &session), sig)
                }
                _ => false,
            };
            if !signed {
                let rest: Vec<&(String, String)> =
                    pairs.iter().filter(|(key, _)| !ERR_PARAMS.contains(&key.as_str())).collect();
                // Never a protocol-relative target: `//evil.example/x` is a path here, but another site to a browser.
                let mut target = format!("/{}", page.trim_start_matches(['/', '\\']));
                if !rest.is_empty() {
                    target.push('?');
                    target.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(rest).finish());
                }
                return Redirect::to(&target).into_response();
            }
        }
        return next.run(request).await;
    }
    let mut response = next.run(request).await;
    if let Some(location) = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok())
        && location.contains("__err=")
        && let Some(signed) = sign_location(&state, location, &session)
        && let Ok(value) = HeaderValue::from_str(&signed)
    {
        response.headers_mut().insert(header::LOCATION, value);
        // The server function set the error's own status (400, 429…) over the form redirect; a browser follows a
        // Location only on a 3xx, so a form posted without JavaScript would show a bare error body instead.
        *response.status_mut() = StatusCode::SEE_OTHER;
    }
    response
}

/// What `__sig` signs: the page, the server function's path, the error, and the session (empty when none).
fn signed_text(page: &str, path: &str, err: &str, session: &str) -> Vec<u8> {
    format!("{page}\n{path}\n{err}\n{session}").into_bytes()
}

/// The redirect target with `__sig` added for its page, `__path`, `__err` and the session.
fn sign_location(state: &AppState, location: &str, session: &str) -> Option<String> {
    let (target, query) = location.split_once('?')?;
    // Leptos redirects to the Referer, an absolute URL: its path is the page.
    let page = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    let query = query.split('#').next().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let value = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, v)| v.as_str());
    let sig = state.secrets.keyed_hash("form error", &signed_text(page, value("__path")?, value("__err")?, session));
    let (base, fragment) = match location.split_once('#') {
        Some((base, fragment)) => (base, format!("#{fragment}")),
        None => (location, String::new()),
    };
    Some(format!("{base}&__sig={sig}{fragment}"))
}

/// Security headers on every response. Pages set their own Content-Security-Policy with the render's script nonce
/// (`app::shell`); everything else gets one that allows nothing.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/pkg/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Same-origin referrers only: the no-JavaScript form flow redirects back to the Referer.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(headers, header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
    if !is_asset {
        // Pages and answers are per partner: never stored by a browser or a shared cache.
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if state.config.is_production() {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains");
    }
    response
}
