//! The HTTP router: Leptos pages and server functions, static files, the session gate for pages, and the
//! tower-http layers (request tracing, compression, timeouts).

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{Method, StatusCode};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;
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
        .route(crate::api::IMPORT_PATH, post(crate::api::import_compromises))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), page_gate))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Paths anyone may load: the sign-in page, the built assets, server functions (each checks the session itself,
/// answering 401) and the health check.
fn is_public(path: &str) -> bool {
    path == "/sign-in" || path == "/healthz" || path.starts_with("/pkg/") || path.starts_with("/api/")
}

/// Sends a browser without a valid session to the sign-in page, and a signed-in one away from it.
async fn page_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if request.method() != Method::GET || (is_public(&path) && path != "/sign-in") {
        return next.run(request).await;
    }
    let partner = match session_token_from_headers(request.headers()) {
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
