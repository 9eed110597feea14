//! The ConnectWise Manage sandbox that ships with the product: an in-memory Manage that honours what the client uses
//! (codebase discovery, Basic auth with `clientId`, `conditions`/`fields`/paging with `Link` headers, two boards,
//! ticket creation with Manage's validation and error bodies), with fault injection for tests and demos.
//!
//! Run it with `server cw-sandbox` (see `--help`), or in-process with [`spawn`] (tests, the dev server).
//!
//! Sandbox-only endpoints: `GET /` (the tickets received, newest first), `GET /_sandbox/tickets` (every stored
//! ticket as created, JSON), `GET /_sandbox/tickets/summary` (how many tickets, and the `externalXRef`s carried by
//! more than one), `GET|POST /_sandbox/faults` (read or replace the fault settings), `GET /_sandbox/stats` (calls,
//! tickets and the faults answered).

pub mod conditions;
pub mod data;
mod page;
pub mod tickets;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

pub use app::connectwise::demo::{
    DEMO_CLIENT_ID, DEMO_COMPANY_ID, DEMO_INTEGRATOR_PASSWORD, DEMO_INTEGRATOR_USERNAME, DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY, DEMO_SANDBOX_ADDR,
};

/// The codebase the sandbox answers with (`/v2025_1/apis/3.0/...`).
pub const CODEBASE: &str = "v2025_1/";
pub const VERSION_CODE: &str = "v2025.1";
pub const VERSION_NUMBER: &str = "v4.6.10431";
/// Page size when none is asked for, and the largest allowed (as Manage).
pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 1000;
/// The id of the first ticket created.
const FIRST_TICKET_ID: i64 = 250_001;

/// Who the sandbox accepts, and its faults at start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    pub integrator_username: String,
    pub integrator_password: String,
    pub client_id: String,
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3005)),
            company_id: DEMO_COMPANY_ID.into(),
            public_key: DEMO_PUBLIC_KEY.into(),
            private_key: DEMO_PRIVATE_KEY.into(),
            integrator_username: DEMO_INTEGRATOR_USERNAME.into(),
            integrator_password: DEMO_INTEGRATOR_PASSWORD.into(),
            client_id: DEMO_CLIENT_ID.into(),
            faults: Faults::default(),
        }
    }
}

/// Fault injection, applied to API calls (`/v2025_1/apis/3.0/...`) only. `POST /_sandbox/faults` replaces the whole
/// set: members left out are off. Faults combine: a call is first checked for a 429 (burst, then `rate_limit_rate`),
/// then for a 500, before it reaches the API; a ticket POST that got through may then stall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of API calls answered `500` (0.0 to 1.0).
    pub error_rate: f64,
    /// Share of API calls answered `429` with `Retry-After: retry_after_secs`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Bursts of 429s: while `(milliseconds since the sandbox started) % rate_limit_burst_every_ms <
    /// rate_limit_burst_ms`, every API call is answered `429` with `Retry-After: retry_after_secs`. 0 = off.
    pub rate_limit_burst_every_ms: u64,
    pub rate_limit_burst_ms: u64,
    /// Added to every API call.
    pub latency_ms: u64,
    /// Share of successful `POST service/tickets` (0.0 to 1.0; 1.0 = every one) that store the ticket, then stall
    /// `stall_secs` before answering (past the client's timeout): the client sees a timeout although the ticket
    /// exists.
    pub timeout_after_commit_rate: f64,
    pub stall_secs: u64,
    /// Status ids that the lists still offer but a ticket POST refuses, as Manage does for a status an
    /// administrator removed from its board after the wizard loaded the lists.
    #[serde(default)]
    pub removed_statuses: Vec<i64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 30,
            rate_limit_burst_every_ms: 0,
            rate_limit_burst_ms: 0,
            latency_ms: 0,
            timeout_after_commit_rate: 0.0,
            stall_secs: 120,
            removed_statuses: Vec::new(),
        }
    }
}

impl Faults {
    /// Why the settings cannot be used (a rate outside 0.0 to 1.0), if they cannot.
    pub fn invalid(&self) -> Option<String> {
        [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("timeout_after_commit_rate", self.timeout_after_commit_rate),
        ]
        .into_iter()
        .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        .map(|(name, rate)| format!("{name} is {rate}; rates are between 0.0 and 1.0"))
    }

    /// Whether `elapsed` since the start falls in a burst of 429s.
    fn in_burst(&self, elapsed: Duration) -> bool {
        let every = self.rate_limit_burst_every_ms;
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        every > 0 && self.rate_limit_burst_ms > 0 && ms % every < self.rate_limit_burst_ms
    }
}

/// Draws `true` with probability `rate` (never for 0.0, always for 1.0).
fn chance(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// How many answers each fault gave (`GET /_sandbox/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// API calls answered `500` by fault injection.
    pub faults500: u64,
    /// API calls answered `429` (random and bursts).
    pub faults429: u64,
    /// Ticket POSTs stored, then stalled.
    pub stalls: u64,
}

/// A ticket as received.
#[derive(Debug, Clone)]
struct StoredTicket {
    received: String,
    ticket: Value,
}

/// A note on a ticket, as `POST service/tickets/{id}/notes` stored it.
struct StoredNote {
    ticket_id: i64,
    note: Value,
}

/// The stored tickets, with an index by `externalXRef` (how a delivery worker looks a ticket up).
#[derive(Default)]
struct Store {
    tickets: Vec<StoredTicket>,
    /// `externalXRef` in lowercase (conditions compare strings without case) → positions in `tickets`, in order.
    by_xref: HashMap<String, Vec<usize>>,
    /// The keys of `by_xref` carried by more than one ticket.
    duplicated: BTreeSet<String>,
    notes: Vec<StoredNote>,
}

impl Store {
    fn push(&mut self, stored: StoredTicket) {
        if let Some(xref) = stored.ticket.get("externalXRef").and_then(Value::as_str) {
            let key = xref.to_lowercase();
            let positions = self.by_xref.entry(key.clone()).or_default();
            positions.push(self.tickets.len());
            if positions.len() == 2 {
                self.duplicated.insert(key);
            }
        }
        self.tickets.push(stored);
    }
}

/// The sandbox's shared state: cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    /// The address actually bound (the `SiteUrl` of discovery).
    addr: SocketAddr,
    faults: RwLock<Faults>,
    companies: Vec<Value>,
    boards: Vec<data::Board>,
    priorities: Vec<Value>,
    sources: Vec<Value>,
    store: RwLock<Store>,
    next_ticket_id: AtomicI64,
    discovery_calls: AtomicU64,
    api_calls: AtomicU64,
    /// When the sandbox started (the clock of the 429 bursts).
    started: Instant,
    faults500: AtomicU64,
    faults429: AtomicU64,
    stalls: AtomicU64,
}

impl Sandbox {
    pub fn new(config: SandboxConfig, addr: SocketAddr) -> Self {
        Self {
            inner: Arc::new(Inner {
                faults: RwLock::new(config.faults.clone()),
                config,
                addr,
                companies: data::companies(),
                boards: data::boards(),
                priorities: data::priorities(),
                sources: data::sources(),
                store: RwLock::default(),
                next_ticket_id: AtomicI64::new(FIRST_TICKET_ID),
                discovery_calls: AtomicU64::new(0),
                api_calls: AtomicU64::new(0),
                started: Instant::now(),
                faults500: AtomicU64::new(0),
                faults429: AtomicU64::new(0),
                stalls: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    pub async fn set_faults(&self, faults: Faults) {
        *self.inner.faults.write().await = faults;
    }

    pub async fn faults(&self) -> Faults {
        self.inner.faults.read().await.clone()
    }

    /// Every stored ticket, oldest first, as created (POST-only members included).
    pub async fn tickets(&self) -> Vec<Value> {
        self.inner.store.read().await.tickets.iter().map(|t| t.ticket.clone()).collect()
    }

    /// How many `login/companyinfo` and API calls were received.
    pub fn stats(&self) -> (u64, u64) {
        (self.inner.discovery_calls.load(Ordering::Relaxed), self.inner.api_calls.load(Ordering::Relaxed))
    }

    /// How many answers each fault gave.
    pub fn fault_counts(&self) -> FaultCounts {
        FaultCounts {
            faults500: self.inner.faults500.load(Ordering::Relaxed),
            faults429: self.inner.faults429.load(Ordering::Relaxed),
            stalls: self.inner.stalls.load(Ordering::Relaxed),
        }
    }

    /// How many tickets are stored (without taking the store's lock).
    pub fn ticket_count(&self) -> u64 {
        u64::try_from(self.inner.next_ticket_id.load(Ordering::Relaxed) - FIRST_TICKET_ID).unwrap_or_default()
    }

    /// `{"tickets": n, "duplicates": [{"externalXRef": x, "count": k}, ...]}`: the `externalXRef`s carried by more
    /// than one ticket (compared without case, as ConnectWise's conditions do; shown as the first ticket has it),
    /// ordered by `externalXRef`. Tickets without one are counted but never duplicates.
    pub async fn ticket_summary(&self) -> Value {
        let store = self.inner.store.read().await;
        let duplicates: Vec<Value> = store
            .duplicated
            .iter()
            .filter_map(|key| store.by_xref.get(key))
            .filter_map(|positions| {
                let first = store.tickets.get(*positions.first()?)?;
                Some(json!({ "externalXRef": first.ticket["externalXRef"], "count": positions.len() }))
            })
            .collect();
        json!({ "tickets": store.tickets.len(), "duplicates": duplicates })
    }
}

/// A sandbox serving in this process.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    pub handle: JoinHandle<()>,
    pub sandbox: Sandbox,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT`: what a partner types as the site in dev mode.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Binds `config.addr` and serves the sandbox on a task of the current runtime.
pub async fn spawn(config: SandboxConfig) -> std::io::Result<RunningSandbox> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let sandbox = Sandbox::new(config, addr);
    let app = router(sandbox.clone());
    let handle = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the ConnectWise sandbox stopped");
        }
    });
    Ok(RunningSandbox { addr, handle, sandbox })
}

/// The whole sandbox site.
pub fn router(sandbox: Sandbox) -> Router {
    let api = Router::new()
        .route("/system/info", get(system_info))
        .route("/company/companies", get(list_companies))
        .route("/company/companies/{id}", get(get_company))
        .route("/service/boards", get(list_boards))
        .route("/service/boards/{id}", get(get_board))
        .route("/service/boards/{id}/{kind}", get(list_board_children))
        .route("/service/priorities", get(list_priorities))
        .route("/service/sources", get(list_sources))
        .route("/service/tickets", get(list_tickets).post(create_ticket))
        .route("/service/tickets/{id}", get(get_ticket))
        .route("/service/tickets/{id}/notes", get(list_notes).post(create_note))
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(sandbox.clone(), api_gate));
    Router::new()
        .route("/", get(page::index))
        .route("/login/companyinfo/{company_id}", get(company_info))
        .route("/_sandbox/tickets", get(sandbox_tickets))
        .route("/_sandbox/notes/{id}", get(list_notes))
        .route("/_sandbox/tickets/summary", get(sandbox_tickets_summary))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route("/_sandbox/stats", get(stats))
        .nest(&format!("/{}apis/3.0", CODEBASE), api)
        .with_state(sandbox)
}

/// Manage's error body.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "code": code, "message": message.into(), "errors": null }))).into_response()
}

async fn company_info(State(sb): State<Sandbox>, Path(company_id): Path<String>) -> Response {
    sb.inner.discovery_calls.fetch_add(1, Ordering::Relaxed);
    if !company_id.eq_ignore_ascii_case(&sb.inner.config.company_id) {
        // Manage answers an unknown company with an empty body (or a 404 on some sites).
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "").into_response();
    }
    axum::Json(json!({
        "CompanyName": data::OWNER_COMPANY,
        "Codebase": CODEBASE,
        "VersionCode": VERSION_CODE,
        "VersionNumber": VERSION_NUMBER,
        "CompanyID": sb.inner.config.company_id,
        "IsCloud": false,
        "SiteUrl": sb.inner.addr.to_string(),
    }))
    .into_response()
}

/// Faults, then `clientId` and Basic authentication, for every API call; every answer gets a request id.
async fn api_gate(State(sb): State<Sandbox>, request: Request, next: Next) -> Response {
    let n = sb.inner.api_calls.fetch_add(1, Ordering::Relaxed);
    let faults = sb.faults().await;
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let mut response = match authenticate(&sb.inner.config, request.headers()) {
        Err(response) => *response,
        Ok(()) if faults.in_burst(sb.inner.started.elapsed()) || chance(faults.rate_limit_rate) => {
            sb.inner.faults429.fetch_add(1, Ordering::Relaxed);
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({
                    "error": "ConnectWiseAPI",
                    "message": format!("Too many requests. Please try again in {} seconds.", faults.retry_after_secs),
                })),
            )
                .into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(faults.retry_after_secs));
            r
        }
        Ok(()) if chance(faults.error_rate) => {
            sb.inner.faults500.fetch_add(1, Ordering::Relaxed);
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UnexpectedServerError",
                "An unexpected server error has occurred (sandbox fault injection).",
            )
        }
        Ok(()) => next.run(request).await,
    };
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&format!("sbx-{:08x}-{n:06}", std::process::id())) {
        headers.insert("x-cw-request-id", id);
    }
    headers.insert("api-current-version", HeaderValue::from_static("2025.1"));
    response
}

fn authenticate(config: &SandboxConfig, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    let client_id = text("clientid");
    if client_id.is_empty() {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "clientId must be provided: register one at developer.connectwise.com and send it in the clientId header.",
        )));
    }
    if client_id != config.client_id {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("clientId '{client_id}' is not valid."),
        )));
    }
    let unauthenticated = || {
        Box::new(error(
            StatusCode::UNAUTHORIZED,
            "ConnectWiseApi",
            "UserNotAuthenticated: the company ID, public key or private key is not valid.",
        ))
    };
    let decoded = text("authorization")
        .strip_prefix("Basic ")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(unauthenticated)?;
    let (login, secret) = decoded.split_once(':').ok_or_else(unauthenticated)?;
    let (company, user) = login.split_once('+').ok_or_else(unauthenticated)?;
    let integrator = text("x-cw-usertype").eq_ignore_ascii_case("integrator");
    let (expected_user, expected_secret) = if integrator {
        (&config.integrator_username, &config.integrator_password)
    } else {
        (&config.public_key, &config.private_key)
    };
    if company.eq_ignore_ascii_case(&config.company_id) && user == expected_user && secret == expected_secret {
        Ok(())
    } else {
        Err(unauthenticated())
    }
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> Response {
    error(StatusCode::NOT_FOUND, "NotFound", format!("The resource {} was not found.", uri.path()))
}

async fn system_info() -> Response {
    axum::Json(json!({
        "version": VERSION_NUMBER,
        "isCloud": false,
        "serverTimeZone": "Eastern Standard Time",
        "licenseBits": [],
        "cloudRegion": "NA",
    }))
    .into_response()
}

/// `conditions`, `fields`, `orderBy` (by one field), `page` and `pageSize` over a list, with `Link` headers.
fn list(items: &[Value], query: &HashMap<String, String>, uri: &Uri, headers: &HeaderMap) -> Response {
    let q = |name: &str| query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let filter = match q("conditions").map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => match conditions::parse(text) {
            Ok(expr) => Some(expr),
            Err(reason) => {
                return error(StatusCode::BAD_REQUEST, "InvalidObject", format!("conditions are not valid: {reason}"));
            }
        },
    };
    let mut rows: Vec<&Value> =
        items.iter().filter(|item| filter.as_ref().is_none_or(|f| conditions::matches(f, item))).collect();
    if let Some(order) = q("orderBy") {
        let mut parts = order.split_whitespace();
        let field: Vec<String> = parts.next().unwrap_or("id").split('/').map(str::to_string).collect();
        let descending = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        rows.sort_by(|a, b| {
            let key = |v: &Value| conditions::lookup(v, &field).cloned().unwrap_or(Value::Null);
            let ordering = match (key(a), key(b)) {
                (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                (Value::Number(x), Value::Number(y)) => {
                    x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(std::cmp::Ordering::Equal)
                }
                _ => std::cmp::Ordering::Equal,
            };
            if descending { ordering.reverse() } else { ordering }
        });
    }
    let page_size = match q("pageSize").map(|p| p.trim().parse::<usize>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if n > 0 => n.min(MAX_PAGE_SIZE),
        Some(_) => return error(StatusCode::BAD_REQUEST, "InvalidObject", "pageSize must be a positive number."),
    };
    let page = match q("page").map(|p| p.trim().parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "InvalidObject", "page must be a positive number."),
    };
    let total = rows.len();
    let last_page = total.div_ceil(page_size).max(1);
    let fields: Option<Vec<Vec<String>>> = q("fields")
        .filter(|f| !f.trim().is_empty())
        .map(|f| f.split(',').map(|p| p.trim().split('/').map(str::to_string).collect()).collect());
    let body: Vec<Value> = rows
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|item| match &fields {
            Some(fields) => project(item, fields),
            None => item.clone(),
        })
        .collect();
    let mut response = axum::Json(body).into_response();
    if last_page > 1 {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        let link_to = |n: usize, rel: &str| {
            let mut params: Vec<String> = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty() && !p.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("page")))
                .map(str::to_string)
                .collect();
            params.push(format!("page={n}"));
            format!("<http://{host}{}?{}>; rel=\"{rel}\"", uri.path(), params.join("&"))
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link_to(1, "first"));
            links.push(link_to(page - 1, "prev"));
        }
        if page < last_page {
            links.push(link_to(page + 1, "next"));
            links.push(link_to(last_page, "last"));
        }
        if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// Keeps only the named fields (`board/name` keeps `board.name`).
fn project(item: &Value, fields: &[Vec<String>]) -> Value {
    let mut out = Value::Object(serde_json::Map::new());
    for path in fields {
        let Some(value) = conditions::lookup(item, path) else { continue };
        let mut target = &mut out;
        let mut source = item;
        for (i, key) in path.iter().enumerate() {
            let canonical = source
                .as_object()
                .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(key)))
                .cloned()
                .unwrap_or_else(|| key.clone());
            source = source.get(&canonical).unwrap_or(&Value::Null);
            let Some(map) = target.as_object_mut() else { break };
            if i + 1 == path.len() {
                map.insert(canonical, value.clone());
                break;
            }
            target = map.entry(canonical).or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}

type ListQuery = Query<HashMap<String, String>>;

async fn list_companies(
    State(sb): State<Sandbox>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    list(&sb.inner.companies, &q, &uri, &headers)
}

async fn get_company(State(sb): State<Sandbox>, Path(id): Path<i64>) -> Response {
    match sb.inner.companies.iter().find(|c| c["id"].as_i64() == Some(id)) {
        Some(company) => axum::Json(company.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", format!("Company {id} not found")),
    }
}

async fn list_boards(
    State(sb): State<Sandbox>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let boards: Vec<Value> = sb.inner.boards.iter().map(data::Board::json).collect();
    list(&boards, &q, &uri, &headers)
}

async fn get_board(State(sb): State<Sandbox>, Path(id): Path<i64>) -> Response {
    match sb.inner.boards.iter().find(|b| b.id == id) {
        Some(board) => axum::Json(board.json()).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", format!("Board {id} not found")),
    }
}

async fn list_board_children(
    State(sb): State<Sandbox>,
    Path((id, kind)): Path<(i64, String)>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let Some(board) = sb.inner.boards.iter().find(|b| b.id == id) else {
        return error(StatusCode::NOT_FOUND, "NotFound", format!("Board {id} not found"));
    };
    match board.children(&kind.to_ascii_lowercase()) {
        Some(children) => list(&children, &q, &uri, &headers),
        None => api_not_found(OriginalUri(uri)).await,
    }
}

async fn list_priorities(
    State(sb): State<Sandbox>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    list(&sb.inner.priorities, &q, &uri, &headers)
}

async fn list_sources(
    State(sb): State<Sandbox>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    list(&sb.inner.sources, &q, &uri, &headers)
}

async fn create_ticket(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let removed = sb.faults().await.removed_statuses;
    if !removed.is_empty()
        && let Ok(ticket) = serde_json::from_slice::<Value>(&body)
        && let Some(status) = ticket.pointer("/status/id").and_then(Value::as_i64)
        && removed.contains(&status)
    {
        let errors = json!([{ "code": "InvalidObject", "message": "Status not found on board.", "resource": "ticket",
                              "field": "status" }]);
        let body = json!({ "code": "InvalidObject", "message": "ticket object is invalid", "errors": errors });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let catalog = tickets::Catalog {
        companies: &sb.inner.companies,
        boards: &sb.inner.boards,
        priorities: &sb.inner.priorities,
        sources: &sb.inner.sources,
    };
    let now = now_iso();
    let stored = {
        // The id is taken and the ticket stored under one lock: ids stay in order.
        let mut store = sb.inner.store.write().await;
        let id = sb.inner.next_ticket_id.load(Ordering::Relaxed);
        match tickets::create(&body, &catalog, id, &now) {
            Ok(ticket) => {
                store.push(StoredTicket { received: now.clone(), ticket: ticket.clone() });
                sb.inner.next_ticket_id.store(id + 1, Ordering::Relaxed);
                ticket
            }
            Err(tickets::Refusal(body)) => return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
        }
    };
    tracing::info!(
        id = stored["id"].as_i64().unwrap_or_default(),
        summary = stored["summary"].as_str().unwrap_or_default(),
        "sandbox: ticket created"
    );
    let faults = sb.faults().await;
    if chance(faults.timeout_after_commit_rate) {
        sb.inner.stalls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(faults.stall_secs)).await;
    }
    (StatusCode::CREATED, axum::Json(tickets::api_view(&stored))).into_response()
}

async fn list_tickets(
    State(sb): State<Sandbox>,
    Query(q): ListQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let views: Vec<Value> = {
        let store = sb.inner.store.read().await;
        match xref_lookup(&q) {
            // Only the tickets carrying that reference: `list` still filters, orders, pages and projects them.
            Some(key) => store
                .by_xref
                .get(&key)
                .into_iter()
                .flatten()
                .filter_map(|&i| store.tickets.get(i))
                .map(|t| tickets::api_view(&t.ticket))
                .collect(),
            None => store.tickets.iter().map(|t| tickets::api_view(&t.ticket)).collect(),
        }
    };
    list(&views, &q, &uri, &headers)
}

/// The index key when `conditions` is exactly one equality on `externalXRef` with a string
/// (`externalXRef="dwid:..."`, spaces and the field's case free), as a delivery worker asks; `None` otherwise.
fn xref_lookup(query: &HashMap<String, String>) -> Option<String> {
    // The same `conditions` parameter `list` reads.
    let text = query.iter().find(|(k, _)| k.eq_ignore_ascii_case("conditions")).map(|(_, v)| v.trim())?;
    match conditions::parse(text).ok()? {
        conditions::Expr::Compare { field, op: conditions::Op::Eq, value: conditions::Literal::Str(value) } if matches!(field.as_slice(), [name] if name.eq_ignore_ascii_case("externalXRef")) => {
            Some(value.to_lowercase())
        }
        _ => None,
    }
}

async fn get_ticket(State(sb): State<Sandbox>, Path(id): Path<i64>) -> Response {
    let store = sb.inner.store.read().await;
    match store.tickets.iter().find(|t| t.ticket["id"].as_i64() == Some(id)) {
        Some(t) => axum::Json(tickets::api_view(&t.ticket)).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", format!("Ticket {id} not found")),
    }
}

/// `POST service/tickets/{id}/notes`: `text` is required, and at least one of `detailDescriptionFlag`,
/// `internalAnalysisFlag` and `resolutionFlag` must be true — Manage refuses a note that belongs to none of the
/// three sections (the ServiceNote model of the REST reference; client libraries such as ConnectWiseManageAPI's
/// New-CWMTicketNote pass one of the flags for that reason).
async fn create_note(State(sb): State<Sandbox>, Path(id): Path<i64>, body: Bytes) -> Response {
    let Ok(Value::Object(mut note)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "InvalidObject", "The note could not be read as a JSON object.");
    };
    let text = note.get("text").and_then(Value::as_str).unwrap_or_default();
    if text.trim().is_empty() {
        return validation("text", "Text is required.");
    }
    let flagged = ["detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag"]
        .iter()
        .any(|flag| note.get(*flag).and_then(Value::as_bool) == Some(true));
    if !flagged {
        return validation(
            "detailDescriptionFlag",
            "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true.",
        );
    }
    let mut store = sb.inner.store.write().await;
    if !store.tickets.iter().any(|t| t.ticket["id"].as_i64() == Some(id)) {
        return error(StatusCode::NOT_FOUND, "NotFound", format!("Ticket {id} not found"));
    }
    let note_id = i64::try_from(store.notes.len()).unwrap_or(i64::MAX - 1) + 1;
    note.insert("id".into(), json!(note_id));
    note.insert("ticketId".into(), json!(id));
    note.insert("dateCreated".into(), json!(now_iso()));
    store.notes.push(StoredNote { ticket_id: id, note: Value::Object(note.clone()) });
    (StatusCode::CREATED, axum::Json(Value::Object(note))).into_response()
}

async fn list_notes(State(sb): State<Sandbox>, Path(id): Path<i64>) -> Response {
    let store = sb.inner.store.read().await;
    let notes: Vec<Value> = store.notes.iter().filter(|n| n.ticket_id == id).map(|n| n.note.clone()).collect();
    axum::Json(notes).into_response()
}

fn validation(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "code": "InvalidObject",
            "message": "note object is invalid",
            "errors": [{ "code": "Required", "message": message, "resource": "note", "field": field }],
        })),
    )
        .into_response()
}

async fn sandbox_tickets(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.tickets().await).into_response()
}

async fn sandbox_tickets_summary(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.ticket_summary().await).into_response()
}

async fn get_faults(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.faults().await).into_response()
}

async fn set_faults(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => return error(StatusCode::BAD_REQUEST, "InvalidObject", format!("faults: {err}")),
    };
    if let Some(reason) = faults.invalid() {
        return error(StatusCode::BAD_REQUEST, "InvalidObject", reason);
    }
    tracing::info!(?faults, "sandbox: faults set");
    sb.set_faults(faults.clone()).await;
    axum::Json(faults).into_response()
}

/// Counters only: no lock, nothing cloned.
async fn stats(State(sb): State<Sandbox>) -> Response {
    let (discovery, api) = sb.stats();
    let FaultCounts { faults500, faults429, stalls } = sb.fault_counts();
    axum::Json(json!({
        "discoveryCalls": discovery,
        "apiCalls": api,
        "tickets": sb.ticket_count(),
        "faults500": faults500,
        "faults429": faults429,
        "stalls": stalls,
    }))
    .into_response()
}

/// The current UTC time as `2026-11-27T10:00:00Z`.
pub fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Renders the received tickets for the page (newest first).
async fn tickets_for_page(sb: &Sandbox) -> Vec<(String, Value)> {
    sb.inner.store.read().await.tickets.iter().rev().map(|t| (t.received.clone(), t.ticket.clone())).collect()
}

/// Serves until the process is stopped (the `cw-sandbox` subcommand).
pub async fn serve(config: SandboxConfig) -> std::io::Result<()> {
    let running = spawn(config).await?;
    log_started(&running);
    running.handle.await.map_err(std::io::Error::other)
}

/// Logs the site and the credentials to type into the wizard.
pub fn log_started(running: &RunningSandbox) {
    let c = running.sandbox.config();
    tracing::warn!(
        "\n\n  ConnectWise sandbox on {url} (tickets received: {url}/)\n  In the wizard:\n    site:        {url}\n    \
         company ID:  {company}\n    public key:  {public}\n    private key: {private}\n    or integrator {user} / {pass}\n  \
         clientId expected: {client}\n",
        url = running.url(),
        company = c.company_id,
        public = c.public_key,
        private = c.private_key,
        user = c.integrator_username,
        pass = c.integrator_password,
        client = c.client_id,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equality_on_external_xref_alone_uses_the_index() {
        let lookup = |conditions: &str| {
            let query = HashMap::from([("Conditions".to_string(), conditions.to_string())]);
            xref_lookup(&query)
        };
        assert_eq!(lookup(r#"externalXRef="dwid:ABC""#).as_deref(), Some("dwid:abc"));
        assert_eq!(lookup(r#"  externalxref = "dwid:a \"q\"" "#).as_deref(), Some(r#"dwid:a "q""#));
        assert_eq!(lookup(r#"(externalXRef="x")"#).as_deref(), Some("x"));
        for generic in [
            r#"externalXRef="x" and id=1"#,
            r#"externalXRef!="x""#,
            r#"externalXRef like "x*""#,
            r#"externalXRef=5"#,
            r#"summary="x""#,
            r#"a/externalXRef="x""#,
            r#"externalXRef="#,
            "",
        ] {
            assert_eq!(lookup(generic), None, "{generic}");
        }
        assert_eq!(xref_lookup(&HashMap::new()), None);
    }

    #[test]
    fn bursts_follow_the_clock() {
        let burst = Faults { rate_limit_burst_every_ms: 1_000, rate_limit_burst_ms: 200, ..Faults::default() };
        let at = Duration::from_millis;
        assert!(burst.in_burst(at(0)) && burst.in_burst(at(199)) && burst.in_burst(at(5_100)));
        assert!(!burst.in_burst(at(200)) && !burst.in_burst(at(999)) && !burst.in_burst(at(5_200)));
        assert!(!Faults::default().in_burst(at(0)));
        assert!(!Faults { rate_limit_burst_ms: 0, ..burst.clone() }.in_burst(at(0)));
        assert!(!Faults { rate_limit_burst_every_ms: 0, ..burst }.in_burst(at(0)));
    }

    #[test]
    fn rates_are_validated() {
        assert_eq!(Faults::default().invalid(), None);
        let ok = Faults { error_rate: 1.0, rate_limit_rate: 0.5, timeout_after_commit_rate: 0.02, ..Faults::default() };
        assert_eq!(ok.invalid(), None);
        let bad = Faults { timeout_after_commit_rate: 1.01, ..Faults::default() };
        assert_eq!(bad.invalid().as_deref(), Some("timeout_after_commit_rate is 1.01; rates are between 0.0 and 1.0"));
        assert!(Faults { error_rate: -0.1, ..Faults::default() }.invalid().is_some());
        assert!(Faults { rate_limit_rate: f64::NAN, ..Faults::default() }.invalid().is_some());
    }

    #[test]
    fn formats_utc_time() {
        let now = now_iso();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }
}
