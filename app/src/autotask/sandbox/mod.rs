//! The Autotask sandbox that ships with the product: an in-memory Autotask database behind the REST API the client
//! uses, with Autotask's limits and fault injection for tests and demos.
//!
//! It serves zone discovery (answering its own address as the zone), header authentication, the ticket's field
//! information and user-defined fields, company and ticket queries (filters, `IncludeFields`, `MaxRecords`, pages of
//! 500 continued by POSTing the same body to `nextPageUrl`), ticket creation with Autotask-like validation, ticket
//! notes and `ThresholdInformation`; paths match without case, as Autotask's. Its limits, as documented:
//! - an hourly request threshold per database (10,000 by default, `--hourly-limit`), latency added to every call
//!   once half of it is used (`--throttle-latency-ms`, twice that from three quarters), calls refused over it;
//! - at most 3 concurrent calls per endpoint and tracking identifier (`--thread-limit`); zone look-ups exempt.
//!
//! Sandbox-only endpoints: `GET /_sandbox/tickets` (every ticket as stored, with its notes), `GET /_sandbox/stats`
//! (calls per endpoint, usage, refusals and faults), `GET|POST /_sandbox/faults` (read or replace the faults).
//!
//! Run it with `server autotask-sandbox` (see `--help`), or in-process with [`spawn`] (tests).

pub mod data;
pub mod filter;
pub mod tickets;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub use super::demo::{
    DEMO_INTEGRATION_CODE, DEMO_RESTRICTED_USERNAME, DEMO_SANDBOX_ADDR, DEMO_SECRET, DEMO_USERNAME, DEMO_ZONE_NAME,
};
use super::endpoint_of;

/// The first ticket's id, and the first note's.
const FIRST_TICKET_ID: i64 = 7_000_001;
const FIRST_NOTE_ID: i64 = 9_000_001;
/// Rows a query answers at most, and when `MaxRecords` is not given.
pub const MAX_RECORDS: usize = 500;

/// Autotask's limits, scaled as tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttling {
    /// Requests per window per database (Autotask: 10,000 an hour).
    pub hourly_limit: u64,
    /// The rolling window (an hour on Autotask).
    pub window: Duration,
    /// Added to every call from 50% of the limit, twice that from 75%.
    pub latency_ms: u64,
    /// Concurrent calls per endpoint and tracking identifier (3 for integrations created since 2023.1).
    pub thread_limit: usize,
}

impl Default for Throttling {
    fn default() -> Self {
        Self { hourly_limit: 10_000, window: Duration::from_secs(3600), latency_ms: 500, thread_limit: 3 }
    }
}

/// The accepted account, the limits and the faults at start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    pub username: String,
    pub secret: String,
    pub integration_code: String,
    /// A second API user (same secret) whose security level cannot read or write tickets.
    pub restricted_username: String,
    /// The ticket UDF that holds the dedupe key (created in the sandbox's field list).
    pub dedupe_udf: String,
    /// Answered by discovery instead of the sandbox's own address (tests of the zone checks).
    pub zone_url: Option<String>,
    pub throttling: Throttling,
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3006)),
            username: DEMO_USERNAME.into(),
            secret: DEMO_SECRET.into(),
            integration_code: DEMO_INTEGRATION_CODE.into(),
            restricted_username: DEMO_RESTRICTED_USERNAME.into(),
            dedupe_udf: super::DEFAULT_DEDUPE_UDF.into(),
            zone_url: None,
            throttling: Throttling::default(),
            faults: Faults::default(),
        }
    }
}

/// Fault injection on API calls (never on zone discovery). `POST /_sandbox/faults` replaces the whole set: members
/// left out are off. A call is first checked for a 429 (burst, then `rate_limit_rate`), then a 500, then delayed by
/// `latency_ms`; a ticket POST that got through may then stall or fail after storing the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of API calls answered `500` with a server-fault message (0.0 to 1.0).
    pub error_rate: f64,
    /// Share of API calls answered `429` with `Retry-After: retry_after_secs`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// While `(ms since start) % rate_limit_burst_every_ms < rate_limit_burst_ms`, every API call is answered 429.
    pub rate_limit_burst_every_ms: u64,
    pub rate_limit_burst_ms: u64,
    /// Added to every API call.
    pub latency_ms: u64,
    /// Share of successful ticket POSTs that store the ticket, then stall `stall_secs` before answering (the
    /// client times out although the ticket exists).
    pub stall_after_commit_rate: f64,
    pub stall_secs: u64,
    /// Share of successful ticket POSTs that store the ticket, then answer 500 (a fault after the commit).
    pub error_after_commit_rate: f64,
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
            stall_after_commit_rate: 0.0,
            stall_secs: 120,
            error_after_commit_rate: 0.0,
        }
    }
}

impl Faults {
    /// Why the settings cannot be used (a rate outside 0.0 to 1.0), if they cannot.
    pub fn invalid(&self) -> Option<String> {
        [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("stall_after_commit_rate", self.stall_after_commit_rate),
            ("error_after_commit_rate", self.error_after_commit_rate),
        ]
        .into_iter()
        .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        .map(|(name, rate)| format!("{name} is {rate}; rates are between 0.0 and 1.0"))
    }

    fn in_burst(&self, elapsed: Duration) -> bool {
        let every = self.rate_limit_burst_every_ms;
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        every > 0 && self.rate_limit_burst_ms > 0 && ms % every < self.rate_limit_burst_ms
    }
}

fn chance(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// What a server fault answers (the sandbox's wording; the client retries it).
pub const FAULT_MESSAGE: &str = "An unexpected error has occurred. Please try again later.";

#[derive(Default)]
struct Store {
    tickets: Vec<Value>,
    notes: BTreeMap<i64, Vec<Value>>,
    next_ticket: i64,
    next_note: i64,
}

/// The sandbox's shared state: cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    addr: SocketAddr,
    faults: Mutex<Faults>,
    companies: Vec<Value>,
    ticket_fields: Vec<Value>,
    ticket_udfs: Vec<Value>,
    note_types: Vec<Value>,
    store: Mutex<Store>,
    /// When each counted call of the window was accepted.
    usage: Mutex<VecDeque<Instant>>,
    /// Calls in flight per endpoint.
    threads: Mutex<HashMap<String, usize>>,
    /// Calls per `METHOD endpoint-path`.
    calls: Mutex<BTreeMap<String, u64>>,
    started: Instant,
    zone_calls: AtomicU64,
    api_calls: AtomicU64,
    unauthorized: AtomicU64,
    over_limit: AtomicU64,
    thread_refusals: AtomicU64,
    faults500: AtomicU64,
    faults429: AtomicU64,
    stalls: AtomicU64,
    errors_after_commit: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sandbox {
    pub fn new(config: SandboxConfig, addr: SocketAddr) -> Self {
        let ticket_udfs = data::ticket_udfs(&config.dedupe_udf);
        Self {
            inner: Arc::new(Inner {
                faults: Mutex::new(config.faults.clone()),
                config,
                addr,
                companies: data::companies(),
                ticket_fields: data::ticket_fields(),
                ticket_udfs,
                note_types: data::note_types(),
                store: Mutex::new(Store { next_ticket: FIRST_TICKET_ID, next_note: FIRST_NOTE_ID, ..Store::default() }),
                usage: Mutex::default(),
                threads: Mutex::default(),
                calls: Mutex::default(),
                started: Instant::now(),
                zone_calls: AtomicU64::new(0),
                api_calls: AtomicU64::new(0),
                unauthorized: AtomicU64::new(0),
                over_limit: AtomicU64::new(0),
                thread_refusals: AtomicU64::new(0),
                faults500: AtomicU64::new(0),
                faults429: AtomicU64::new(0),
                stalls: AtomicU64::new(0),
                errors_after_commit: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// `http://127.0.0.1:PORT/ATServicesRest/`: what zone discovery answers.
    pub fn zone_url(&self) -> String {
        self.inner.config.zone_url.clone().unwrap_or_else(|| format!("http://{}/ATServicesRest/", self.inner.addr))
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.inner.faults) = faults;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// How many tickets are stored.
    pub fn ticket_count(&self) -> usize {
        lock(&self.inner.store).tickets.len()
    }

    /// Every stored ticket, oldest first, each with its `notes`.
    pub fn tickets(&self) -> Vec<Value> {
        let store = lock(&self.inner.store);
        store
            .tickets
            .iter()
            .map(|t| {
                let mut t = t.clone();
                let id = t["id"].as_i64().unwrap_or_default();
                t["notes"] = Value::Array(store.notes.get(&id).cloned().unwrap_or_default());
                t
            })
            .collect()
    }

    /// Calls in the current window, and the limit.
    pub fn usage(&self) -> (u64, u64) {
        (self.prune_usage() as u64, self.inner.config.throttling.hourly_limit)
    }

    /// Calls per `METHOD path` (ids as `{id}`), zone look-ups included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.calls).clone()
    }

    /// `GET /_sandbox/stats`.
    pub fn stats(&self) -> Value {
        let i = &self.inner;
        let (used, limit) = self.usage();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (tickets, notes) = {
            let store = lock(&i.store);
            (store.tickets.len(), store.notes.values().map(Vec::len).sum::<usize>())
        };
        json!({
            "zoneCalls": load(&i.zone_calls),
            "apiCalls": load(&i.api_calls),
            "byEndpoint": self.calls(),
            "usage": { "used": used, "limit": limit },
            "tickets": tickets,
            "notes": notes,
            "unauthorized": load(&i.unauthorized),
            "overLimit": load(&i.over_limit),
            "threadRefusals": load(&i.thread_refusals),
            "faults500": load(&i.faults500),
            "faults429": load(&i.faults429),
            "stalls": load(&i.stalls),
            "errorsAfterCommit": load(&i.errors_after_commit),
        })
    }

    fn prune_usage(&self) -> usize {
        let mut usage = lock(&self.inner.usage);
        let window = self.inner.config.throttling.window;
        while usage.front().is_some_and(|at| at.elapsed() >= window) {
            usage.pop_front();
        }
        usage.len()
    }

    fn count(&self, method: &Method, path: &str) {
        let key = format!("{method} {}", normalize(path));
        *lock(&self.inner.calls).entry(key).or_default() += 1;
    }
}

/// `/atservicesrest/v1.0/tickets/7000001/notes` → `/atservicesrest/v1.0/tickets/{id}/notes`.
fn normalize(path: &str) -> String {
    path.split('/')
        .map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// A sandbox serving in this process.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    pub handle: JoinHandle<()>,
    pub sandbox: Sandbox,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT`: the zone discovery address to configure (`AUTOTASK_ZONE_DISCOVERY_URL`).
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
            tracing::error!(error = %err, "the Autotask sandbox stopped");
        }
    });
    Ok(RunningSandbox { addr, handle, sandbox })
}

/// Serves until the process is stopped (the `autotask-sandbox` subcommand).
pub async fn serve(config: SandboxConfig) -> std::io::Result<()> {
    let running = spawn(config).await?;
    log_started(&running);
    running.handle.await.map_err(std::io::Error::other)
}

/// Logs the address and the credentials to use.
pub fn log_started(running: &RunningSandbox) {
    let c = running.sandbox.config();
    let t = &c.throttling;
    tracing::warn!(
        "\n\n  Autotask sandbox on {url} (zone discovery; tickets received: {url}/_sandbox/tickets)\n  \
         AUTOTASK_ZONE_DISCOVERY_URL={url}\n  In the wizard:\n    API user name:        {user}\n    secret:               \
         {secret}\n    tracking identifier:  {code}\n    (user without ticket rights: {restricted})\n  Limits: {limit} \
         requests per {window} s, +{latency} ms from 50%, {threads} threads per endpoint\n",
        url = running.url(),
        user = c.username,
        secret = c.secret,
        code = c.integration_code,
        restricted = c.restricted_username,
        limit = t.hourly_limit,
        window = t.window.as_secs(),
        latency = t.latency_ms,
        threads = t.thread_limit,
    );
}

/// The whole sandbox: its own endpoints, and the API dispatched on the lower-cased path.
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/_sandbox/tickets", get(sandbox_tickets))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route("/_sandbox/stats", get(stats))
        .fallback(api)
        .with_state(sandbox)
}

/// `{"errors": [...]}` with a status.
fn errors(status: StatusCode, messages: &[String]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    errors(status, &[message.into()])
}

async fn sandbox_tickets(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.tickets()).into_response()
}

async fn get_faults(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.faults()).into_response()
}

async fn set_faults(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("faults: {err}")),
    };
    if let Some(reason) = faults.invalid() {
        return error(StatusCode::BAD_REQUEST, reason);
    }
    tracing::info!(?faults, "Autotask sandbox: faults set");
    sb.set_faults(faults.clone());
    axum::Json(faults).into_response()
}

async fn stats(State(sb): State<Sandbox>) -> Response {
    axum::Json(sb.stats()).into_response()
}

const PREFIX: &str = "/atservicesrest/v1.0/";

/// A thread slot of an endpoint, given back when the call ends (also when the client goes away mid-call).
struct Slot {
    sandbox: Sandbox,
    endpoint: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut threads = lock(&self.sandbox.inner.threads);
        if let Some(n) = threads.get_mut(&self.endpoint) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Every API call: discovery, then authentication, the thread limit, the hourly threshold and faults, then the
/// endpoint.
async fn api(State(sb): State<Sandbox>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_ascii_lowercase();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return error(StatusCode::NOT_FOUND, format!("No resource at {}.", uri.path()));
    };
    let rest = rest.trim_end_matches('/').to_string();
    sb.count(&method, &path);
    if rest == "zoneinformation" {
        return zone_information(&sb, &method, &uri);
    }
    let inner = &sb.inner;
    inner.api_calls.fetch_add(1, Ordering::Relaxed);
    let config = &inner.config;

    // Failed authentication: 401 with an empty body (vendor: "REST API security and authentication"). A tracking
    // identifier that is missing or unknown: 500 "IntegrationCode is invalid." (as published client tests show;
    // the vendor page names the integration key among the 401 causes, and the client reads both).
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().trim().to_string();
    let user = header("UserName");
    let known_user =
        user.eq_ignore_ascii_case(&config.username) || user.eq_ignore_ascii_case(&config.restricted_username);
    if !known_user || headers.get("Secret").and_then(|v| v.to_str().ok()) != Some(config.secret.as_str()) {
        inner.unauthorized.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if header("ApiIntegrationCode") != config.integration_code {
        inner.unauthorized.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "IntegrationCode is invalid.");
    }

    // The thread limit per endpoint and tracking identifier (vendor: "API thread limiting"). What Autotask answers
    // beyond it is not on the vendor's pages; client authors report rejections citing "Itgenatr005" and a thread
    // threshold, which the sandbox answers as 429.
    let endpoint = endpoint_of(&path);
    let _slot = {
        let mut threads = lock(&inner.threads);
        let in_flight = threads.entry(endpoint.clone()).or_default();
        if *in_flight >= config.throttling.thread_limit {
            inner.thread_refusals.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Itgenatr005: The Autotask API thread threshold of {} threads has been exceeded for the {endpoint} \
                     endpoint.",
                    config.throttling.thread_limit
                ),
            );
        }
        *in_flight += 1;
        Slot { sandbox: sb.clone(), endpoint: endpoint.clone() }
    };

    // The hourly threshold: refused over it; slower from half of it (vendor: "REST API supportability, query
    // thresholds, and latency"). The vendor's pages say the API answers an error and suspends access, without the
    // status: the sandbox answers 429, as client authors handle it.
    let (used, latency) = {
        let used = sb.prune_usage() as u64;
        let t = &config.throttling;
        if used >= t.hourly_limit {
            inner.over_limit.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Request threshold exceeded: this database has made {used} API requests in the last {} minutes; \
                     the threshold is {}.",
                    t.window.as_secs() / 60,
                    t.hourly_limit
                ),
            );
        }
        lock(&inner.usage).push_back(Instant::now());
        let latency = if (used + 1) * 4 >= t.hourly_limit * 3 {
            t.latency_ms * 2
        } else if (used + 1) * 2 >= t.hourly_limit {
            t.latency_ms
        } else {
            0
        };
        (used + 1, latency)
    };
    if latency > 0 {
        tracing::debug!(used, latency, "Autotask sandbox: usage-based latency");
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let faults = sb.faults();
    if faults.in_burst(inner.started.elapsed()) || chance(faults.rate_limit_rate) {
        inner.faults429.fetch_add(1, Ordering::Relaxed);
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests. Please try again later.");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(faults.retry_after_secs));
        return response;
    }
    if chance(faults.error_rate) {
        inner.faults500.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::INTERNAL_SERVER_ERROR, FAULT_MESSAGE);
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }

    let restricted = user.eq_ignore_ascii_case(&config.restricted_username);
    if restricted && endpoint.starts_with("tickets") {
        return error(
            StatusCode::FORBIDDEN,
            "The API user's security level does not allow access to Tickets.".to_string(),
        );
    }

    let segments: Vec<&str> = rest.split('/').collect();
    let query = uri.query().unwrap_or_default();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["thresholdinformation"]) => axum::Json(json!({
            "externalRequestThreshold": config.throttling.hourly_limit,
            "requestThresholdTimeframe": config.throttling.window.as_secs() / 60,
            "currentTimeframeRequestCount": sb.prune_usage(),
        }))
        .into_response(),
        ("GET", ["tickets", "entityinformation", "fields"]) => {
            axum::Json(json!({ "fields": inner.ticket_fields })).into_response()
        }
        ("GET", ["tickets", "entityinformation", "userdefinedfields"]) => {
            axum::Json(json!({ "fields": inner.ticket_udfs })).into_response()
        }
        ("POST", ["tickets"]) => create_ticket(&sb, &body).await,
        ("GET", ["tickets", id]) => match id.parse::<i64>() {
            Ok(id) => match lock(&inner.store).tickets.iter().find(|t| t["id"].as_i64() == Some(id)) {
                Some(t) => axum::Json(json!({ "item": tickets::api_view(t) })).into_response(),
                None => axum::Json(json!({ "item": null })).into_response(),
            },
            Err(_) => error(StatusCode::NOT_FOUND, format!("No resource at {}.", uri.path())),
        },
        ("POST", ["tickets", id, "notes"]) => match id.parse::<i64>() {
            Ok(id) => create_note(&sb, id, &body),
            Err(_) => error(StatusCode::NOT_FOUND, format!("No resource at {}.", uri.path())),
        },
        ("POST" | "GET", [entity @ ("companies" | "tickets"), "query", tail @ ..]) => {
            let next = matches!(tail, ["next"]);
            if !(tail.is_empty() || next) {
                return error(StatusCode::NOT_FOUND, format!("No resource at {}.", uri.path()));
            }
            if method == Method::GET && next {
                // Reported by client authors: a POST query's next page cannot be fetched with GET.
                return error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "The requested resource does not support http method 'GET'.",
                );
            }
            let search = if method == Method::GET {
                let found =
                    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case("search"));
                found.map(|(_, v)| Bytes::from(v.into_owned())).unwrap_or_default()
            } else {
                body.clone()
            };
            let paging = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k.eq_ignore_ascii_case("paging"))
                .and_then(|(_, v)| v.parse::<i64>().ok());
            if next && paging.is_none() {
                return error(StatusCode::BAD_REQUEST, "The next page address is missing its paging value.");
            }
            run_query(&sb, entity, &search, paging)
        }
        _ => error(StatusCode::NOT_FOUND, format!("No resource at {} for {method}.", uri.path())),
    }
}

/// `GET …/zoneInformation?user=…`: exempt from thread limits and not counted against the threshold; no tracking
/// identifier needed.
fn zone_information(sb: &Sandbox, method: &Method, uri: &Uri) -> Response {
    sb.inner.zone_calls.fetch_add(1, Ordering::Relaxed);
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "The requested resource does not support this method.");
    }
    let user = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("user"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let c = &sb.inner.config;
    if !(user.eq_ignore_ascii_case(&c.username) || user.eq_ignore_ascii_case(&c.restricted_username)) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Zone information could not be determined");
    }
    axum::Json(json!({
        "zoneName": DEMO_ZONE_NAME,
        "url": sb.zone_url(),
        "webUrl": format!("http://{}/", sb.inner.addr),
        "ci": 0,
    }))
    .into_response()
}

/// A query: the filter (required), `IncludeFields`, `MaxRecords` (at most 500), rows after `paging` (the last id
/// of the previous page), in id order; `nextPageUrl` while more remain.
fn run_query(sb: &Sandbox, entity: &str, body: &[u8], after: Option<i64>) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        // Reported by client authors: POSTing to nextPageUrl without the query's body fails with a 500.
        return error(StatusCode::INTERNAL_SERVER_ERROR, "The query is missing: send the filter with every page.");
    }
    let query: Value = match serde_json::from_slice(body) {
        Ok(query) => query,
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("The query is not valid JSON: {err}")),
    };
    let member = |name: &str| {
        query.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v)
    };
    let filter = member("filter").and_then(Value::as_array).cloned().unwrap_or_default();
    if filter.is_empty() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "A query needs at least one filter item.");
    }
    let max = match member("MaxRecords").map(|m| m.as_u64()) {
        None => MAX_RECORDS,
        Some(Some(n)) if (1..=MAX_RECORDS as u64).contains(&n) => n as usize,
        Some(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("MaxRecords must be between 1 and {MAX_RECORDS}."),
            );
        }
    };
    let include: Vec<String> = member("IncludeFields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let inner = &sb.inner;
    let (entity_name, rows, fields, udfs): (&str, Vec<Value>, Vec<String>, Vec<String>) = if entity == "companies" {
        let fields = ["id", "companyName", "isActive", "companyType", "phone", "createDate"].map(String::from).to_vec();
        ("Companies", inner.companies.clone(), fields, Vec::new())
    } else {
        let fields = inner.ticket_fields.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect();
        let udfs = inner.ticket_udfs.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect();
        ("Tickets", lock(&inner.store).tickets.clone(), fields, udfs)
    };
    let mut found = Vec::new();
    let mut more = false;
    for row in rows.iter().filter(|r| after.is_none_or(|a| r["id"].as_i64().is_some_and(|id| id > a))) {
        let target = filter::Target { row, fields: &fields, udfs: &udfs, entity: entity_name };
        match filter::matches(&filter, &target) {
            Err(message) => return error(StatusCode::INTERNAL_SERVER_ERROR, message),
            Ok(false) => {}
            Ok(true) if found.len() == max => {
                more = true;
                break;
            }
            Ok(true) => found.push(row),
        }
    }
    let items: Vec<Value> = found
        .iter()
        .map(|row| {
            let view = if entity == "tickets" { tickets::api_view(row) } else { (*row).clone() };
            project(view, &include)
        })
        .collect();
    let next = more.then(|| {
        let last = found.last().and_then(|r| r["id"].as_i64()).unwrap_or_default();
        let zone = sb.zone_url();
        format!("{zone}V1.0/{entity_name}/query/next?paging={last}")
    });
    axum::Json(json!({
        "items": items,
        "pageDetails": { "count": items.len(), "requestCount": max, "prevPageUrl": null, "nextPageUrl": next },
    }))
    .into_response()
}

/// Keeps only the `IncludeFields` (names without case; `id` always).
fn project(row: Value, include: &[String]) -> Value {
    if include.is_empty() {
        return row;
    }
    let Value::Object(map) = row else { return row };
    Value::Object(
        map.into_iter().filter(|(k, _)| k == "id" || include.iter().any(|i| i.eq_ignore_ascii_case(k))).collect(),
    )
}

async fn create_ticket(sb: &Sandbox, body: &[u8]) -> Response {
    let inner = &sb.inner;
    let now = now_iso();
    let stored = {
        // The id is taken and the ticket stored under one lock: ids stay in order.
        let mut store = lock(&inner.store);
        let catalog =
            tickets::Catalog { companies: &inner.companies, fields: &inner.ticket_fields, udfs: &inner.ticket_udfs };
        match tickets::create(body, &catalog, store.next_ticket, &now) {
            Ok(ticket) => {
                store.next_ticket += 1;
                store.tickets.push(ticket.clone());
                ticket
            }
            Err(messages) => return errors(StatusCode::INTERNAL_SERVER_ERROR, &messages),
        }
    };
    let id = stored["id"].as_i64().unwrap_or_default();
    tracing::info!(id, title = stored["title"].as_str().unwrap_or_default(), "Autotask sandbox: ticket created");
    let faults = sb.faults();
    if chance(faults.error_after_commit_rate) {
        inner.errors_after_commit.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::INTERNAL_SERVER_ERROR, FAULT_MESSAGE);
    }
    if chance(faults.stall_after_commit_rate) {
        inner.stalls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(faults.stall_secs)).await;
    }
    axum::Json(json!({ "itemId": id })).into_response()
}

fn create_note(sb: &Sandbox, ticket_id: i64, body: &[u8]) -> Response {
    let inner = &sb.inner;
    let mut store = lock(&inner.store);
    if !store.tickets.iter().any(|t| t["id"].as_i64() == Some(ticket_id)) {
        return error(StatusCode::NOT_FOUND, format!("Ticket {ticket_id} was not found."));
    }
    let now = now_iso();
    match tickets::create_note(body, ticket_id, &inner.note_types, data::PUBLISH_VALUES, store.next_note, &now) {
        Ok(note) => {
            store.next_note += 1;
            let id = note["id"].as_i64().unwrap_or_default();
            store.notes.entry(ticket_id).or_default().push(note);
            axum::Json(json!({ "itemId": id })).into_response()
        }
        Err(messages) => errors(StatusCode::INTERNAL_SERVER_ERROR, &messages),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_counted_with_ids_folded() {
        assert_eq!(normalize("/atservicesrest/v1.0/tickets/7000001/notes"), "/atservicesrest/v1.0/tickets/{id}/notes");
        assert_eq!(normalize("/atservicesrest/v1.0/companies/query"), "/atservicesrest/v1.0/companies/query");
    }

    #[test]
    fn fault_rates_are_validated_and_bursts_follow_the_clock() {
        assert_eq!(Faults::default().invalid(), None);
        assert!(Faults { error_after_commit_rate: 1.5, ..Faults::default() }.invalid().is_some());
        let burst = Faults { rate_limit_burst_every_ms: 1_000, rate_limit_burst_ms: 200, ..Faults::default() };
        assert!(burst.in_burst(Duration::from_millis(100)) && !burst.in_burst(Duration::from_millis(300)));
        assert!(!Faults::default().in_burst(Duration::ZERO));
    }

    #[test]
    fn there_are_three_pages_of_companies() {
        let companies = data::companies();
        assert!(companies.len() > 2 * MAX_RECORDS && companies.len() <= 3 * MAX_RECORDS, "{}", companies.len());
        assert_eq!(companies[0]["id"], 0, "the MSP's own company is id 0");
    }
}
