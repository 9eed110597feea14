//! The ConnectWise Manage REST client (server only): codebase discovery, both authentications, the operations the
//! wizard and the delivery worker use, one typed error, and the outbound-safety rules of [`policy`].
//!
//! ```ignore
//! let client = CwClient::new(client_config)?;              // see `crate::systems` for the one built from Config
//! let session = client.session(&credentials).await?;   // discovery, cached per site and company
//! let company = session.find_company_by_name("Acme Corporation").await?;
//! ```
//!
//! The client never retries by itself: [`CwError::is_retryable`] tells the caller (the delivery worker) what is
//! worth trying again, and a timeout after a POST may have created the ticket, so a retry first looks the ticket up
//! by its `externalXRef`.

pub mod catalog;
pub mod demo;
pub mod error;
pub mod policy;
mod ticketing;

pub use ticketing::{account_key, connected_sentence, ticket_body};

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use lru::LruCache;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use error::{AuthKind, CwError, FieldError};
pub use policy::SitePolicy;

use crate::connectwise_site::{Site, SiteMode, validate_company_id, validate_site};
use crate::metrics::StatusClass;

/// The model version every call pins.
pub const API_VERSION: &str = "2025.1";
/// The `Accept` header of every API call.
pub const ACCEPT_VERSIONED: &str = "application/vnd.connectwise.com+json; version=2025.1";
/// Rows per page when listing (ConnectWise's maximum; its default of 25 is the classic silent truncation).
pub const PAGE_SIZE: usize = 1000;
/// A discovered codebase is trusted this long, then asked for again (it changes when a site is upgraded).
const CODEBASE_TTL: Duration = Duration::from_secs(3600);
/// Same-site redirects followed on GET (never on POST).
const MAX_REDIRECTS: usize = 5;
/// Sites whose discovered codebase is remembered; the least recently used is forgotten first, so partners typing
/// ever new sites into the wizard cannot grow the cache without end.
pub const CODEBASE_CACHE_ENTRIES: usize = 1024;

/// What one operation may read from a site, so that a hostile or broken site cannot stream gigabytes into the
/// wizard or the worker. Every list asks for three narrow fields (`id,identifier,name`): a page of 1000 rows is
/// about 100 KB, and the largest lists partners have (companies) hold tens of thousands of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest single answer.
    pub max_body_bytes: usize,
    /// Rows of one list, over all its pages.
    pub max_list_rows: usize,
    /// Bytes of one list, over all its pages.
    pub max_list_bytes: usize,
    /// One operation (a whole list, every page), whatever each call's own timeout.
    pub operation_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_list_rows: 100_000,
            max_list_bytes: 64 * 1024 * 1024,
            operation_deadline: Duration::from_secs(120),
        }
    }
}

/// How the client behaves; [`crate::systems`] builds it from the application's configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The `clientId` header (ConnectWise's registered id of this product); omitted when `None`.
    pub client_id: Option<String>,
    pub connect_timeout: Duration,
    /// The whole call: connecting, sending and reading the answer.
    pub timeout: Duration,
    pub policy: SitePolicy,
    pub limits: Limits,
}

/// The credentials a partner gave.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Auth {
    /// An API member's keys (recommended).
    ApiMember { public_key: String, private_key: String },
    /// An integrator login (`x-cw-usertype: integrator`).
    Integrator { username: String, password: String },
}

impl Auth {
    pub fn kind(&self) -> AuthKind {
        match self {
            Auth::ApiMember { .. } => AuthKind::ApiMember,
            Auth::Integrator { .. } => AuthKind::Integrator,
        }
    }

    /// `Basic base64("{companyId}+{user}:{secret}")`.
    pub fn authorization(&self, company_id: &str) -> String {
        let (user, secret) = match self {
            Auth::ApiMember { public_key, private_key } => (public_key, private_key),
            Auth::Integrator { username, password } => (username, password),
        };
        let raw = format!("{company_id}+{user}:{secret}");
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// Secrets never reach a log through `{:?}`.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::ApiMember { public_key, .. } => {
                f.debug_struct("ApiMember").field("public_key", public_key).field("private_key", &"***").finish()
            }
            Auth::Integrator { username, .. } => {
                f.debug_struct("Integrator").field("username", username).field("password", &"***").finish()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    /// As the partner typed it (`na.myconnectwise.net`; `http://127.0.0.1:3005` for the sandbox in dev mode).
    pub site: String,
    pub company_id: String,
    pub auth: Auth,
}

/// `system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub version: String,
    #[serde(default)]
    pub is_cloud: bool,
    #[serde(default)]
    pub server_time_zone: Option<String>,
    #[serde(default)]
    pub cloud_region: Option<String>,
}

/// A company (`fields=id,identifier,name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: i64,
    pub identifier: String,
    pub name: String,
}

/// A board, status, type, subtype, item, priority or source (`fields=id,name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: i64,
    pub name: String,
}

/// A created ticket: its id and the whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedTicket {
    pub id: i64,
    pub body: Value,
}

/// What discovery found for a site and company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codebase {
    pub company_name: String,
    pub codebase: String,
    pub is_cloud: bool,
    /// `https://{api host}/{codebase}apis/3.0/`.
    pub base: Url,
}

/// The `login/companyinfo` answer. `IsCloud` comes as `true` or as `"True"`.
#[derive(Debug, Deserialize)]
struct CompanyInfo {
    #[serde(rename = "CompanyName", default)]
    company_name: Option<String>,
    #[serde(rename = "Codebase")]
    codebase: String,
    #[serde(rename = "IsCloud", default, deserialize_with = "bool_or_string")]
    is_cloud: bool,
    #[serde(rename = "SiteUrl", default)]
    site_url: Option<String>,
}

fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) => Ok(s.trim().eq_ignore_ascii_case("true")),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!("IsCloud is {other}"))),
    }
}

/// Parses a `login/companyinfo` body: `None` when the company is unknown (an empty body or `null`).
fn parse_company_info(body: &[u8]) -> Result<Option<CompanyInfo>, CwError> {
    let text = std::str::from_utf8(body).map_err(|_| unexpected("the company information is not text"))?;
    if text.trim().is_empty() || text.trim() == "null" || text.trim() == "{}" {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|err| decode_error(body, &err))
}

/// The ConnectWise client: cheap to clone, one connection pool and one codebase cache per process.
#[derive(Clone)]
pub struct CwClient {
    inner: Arc<Inner>,
    /// Answers by status class (the process's metrics once [`CwClient::with_metrics`] was called).
    responses: crate::metrics::ConnectWiseResponses,
    /// The request budgets shared by every process, once [`CwClient::with_budgets`] was called: sessions opened
    /// through the ticketing interface then ask before every API request.
    budgets: Option<crate::request_budget::RequestBudgets>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    codebases: Mutex<LruCache<CodebaseKey, (Instant, Arc<Codebase>)>>,
}

/// A site's origin and a lower-case company ID.
type CodebaseKey = (String, String);

impl fmt::Debug for CwClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CwClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not build the ConnectWise HTTP client: {0}")]
pub struct BuildError(String);

impl CwClient {
    pub fn new(config: ClientConfig) -> Result<Self, BuildError> {
        // reqwest is built without a default crypto provider: ring, installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .https_only(config.policy.mode() == SiteMode::Production)
            .dns_resolver(Arc::new(policy::GuardedResolver { policy: config.policy.clone() }))
            .user_agent(concat!("dwid-partner-dashboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| BuildError(err.to_string()))?;
        let entries = NonZeroUsize::new(CODEBASE_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            inner: Arc::new(Inner { http, config, codebases: Mutex::new(LruCache::new(entries)) }),
            responses: Default::default(),
            budgets: None,
        })
    }

    /// Sites and companies whose codebase is cached now (at most [`CODEBASE_CACHE_ENTRIES`]).
    pub fn cached_codebases(&self) -> usize {
        self.inner.codebases.lock().map_or(0, |cache| cache.len())
    }

    /// The same client, counting its answers in `metrics`.
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.responses = metrics.connectwise_responses();
        self
    }

    /// The same client, keeping every account's request budget in `budgets`.
    pub fn with_budgets(mut self, budgets: crate::request_budget::RequestBudgets) -> Self {
        self.budgets = Some(budgets);
        self
    }

    pub(crate) fn budgets(&self) -> Option<&crate::request_budget::RequestBudgets> {
        self.budgets.as_ref()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Discovers the site's codebase (cached) and returns a session that makes authenticated calls.
    pub async fn session(&self, credentials: &Credentials) -> Result<CwSession, CwError> {
        let policy = &self.inner.config.policy;
        let site = validate_site(&credentials.site, policy.mode())
            .map_err(|err| CwError::SiteRefused { reason: err.to_string() })?;
        let company_id = validate_company_id(&credentials.company_id)
            .map_err(|err| CwError::SiteRefused { reason: err.to_string() })?;
        let codebase = self.codebase(&site, &company_id).await?;
        let mut authorization = HeaderValue::from_str(&credentials.auth.authorization(&company_id)).map_err(|_| {
            CwError::SiteRefused { reason: "the credentials contain characters HTTP cannot carry.".into() }
        })?;
        authorization.set_sensitive(true);
        Ok(CwSession {
            client: self.clone(),
            codebase,
            authorization,
            kind: credentials.auth.kind(),
            gate: Arc::new(crate::request_budget::Unlimited),
            place: (credentials.site.clone(), credentials.company_id.clone()),
        })
    }

    /// `login/companyinfo/{companyId}`, cached per site and company for [`CODEBASE_TTL`].
    pub async fn codebase(&self, site: &Site, company_id: &str) -> Result<Arc<Codebase>, CwError> {
        let key = (site.origin(), company_id.to_ascii_lowercase());
        let cached = self.inner.codebases.lock().ok().and_then(|mut cache| cache.get(&key).cloned());
        if let Some((at, codebase)) = cached
            && at.elapsed() < CODEBASE_TTL
        {
            return Ok(codebase);
        }
        let url = Url::parse(&format!("{}/login/companyinfo/{}", site.origin(), company_id))
            .map_err(|_| CwError::SiteRefused { reason: "the site is not a valid address.".into() })?;
        let answer = self.send(Method::GET, url, None, None, self.inner.config.limits.max_body_bytes).await?;
        let not_found = || CwError::NotFound { what: format!("the company ID \"{company_id}\" on {}", site.host) };
        if answer.status == StatusCode::NOT_FOUND {
            return Err(not_found());
        }
        let answer = answer.check(AuthKind::ApiMember, not_found)?;
        let info = parse_company_info(&answer.body)?.ok_or_else(not_found)?;
        let codebase = discovered(site, info, self.inner.config.policy.mode())?;
        tracing::debug!(site = %site, company_id, codebase = %codebase.codebase, base = %codebase.base, "codebase discovered");
        let codebase = Arc::new(codebase);
        if let Ok(mut cache) = self.inner.codebases.lock() {
            cache.put(key, (Instant::now(), codebase.clone()));
        }
        Ok(codebase)
    }

    /// One HTTP exchange: the URL checked by the policy, same-site redirects followed on GET only, the timing and
    /// `x-cw-request-id` logged, the body read up to `max_bytes` (and refused beyond).
    async fn send(
        &self,
        method: Method,
        mut url: Url,
        body: Option<&Value>,
        session: Option<&CwSession>,
        max_bytes: usize,
    ) -> Result<Answer, CwError> {
        let config = &self.inner.config;
        for hop in 0..=MAX_REDIRECTS {
            config.policy.check_url(&url)?;
            if let Some(session) = session {
                session.gate.admit().await.map_err(|refused| CwError::BudgetRefused { refused })?;
            }
            let mut request = self.inner.http.request(method.clone(), url.clone());
            if let Some(session) = session {
                request = request.header(AUTHORIZATION, session.authorization.clone()).header(ACCEPT, ACCEPT_VERSIONED);
                if session.kind == AuthKind::Integrator {
                    request = request.header("x-cw-usertype", "integrator");
                }
                if let Some(client_id) = &config.client_id {
                    request = request.header("clientId", client_id);
                }
            } else {
                request = request.header(ACCEPT, "application/json");
            }
            if let Some(body) = body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
            }
            let started = Instant::now();
            let result = request.send().await;
            let mut response = match result {
                Ok(response) => response,
                Err(err) => {
                    self.responses.record(StatusClass::TransportError);
                    let mapped = map_transport_error(&err, config.timeout);
                    tracing::warn!(%method, path = url.path(), elapsed_ms = started.elapsed().as_millis() as u64,
                        error = %err, "ConnectWise call failed");
                    return Err(mapped);
                }
            };
            let status = response.status();
            self.responses.record(StatusClass::of(status.as_u16()));
            // ConnectWise's own id of the call (our request's id is in the span around it).
            let cw_request_id = header_str(response.headers(), "x-cw-request-id").unwrap_or_default().to_string();
            if status.is_redirection() {
                let location = header_str(response.headers(), LOCATION.as_str()).unwrap_or_default().to_string();
                tracing::info!(%method, path = url.path(), status = status.as_u16(), cw_request_id, location,
                    "ConnectWise answered with a redirect");
                let target = url.join(&location).ok().filter(|t| t.origin() == url.origin());
                match target {
                    Some(target) if method == Method::GET && hop < MAX_REDIRECTS => {
                        url = target;
                        continue;
                    }
                    _ => {
                        return Err(unexpected(format!(
                            "a redirect (HTTP {}) to {location}; redirects are not followed on a POST or to another \
                             site, so use the API host of the site",
                            status.as_u16()
                        )));
                    }
                }
            }
            let mut bytes = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > max_bytes {
                            tracing::warn!(%method, path = url.path(), status = status.as_u16(), cw_request_id,
                                max_bytes, "ConnectWise answer too large: reading stopped");
                            return Err(CwError::TooLarge { what: what_of(&url), limit: describe_bytes(max_bytes) });
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(%method, path = url.path(), status = status.as_u16(), cw_request_id,
                            error = %err, "ConnectWise answer broke off");
                        return Err(map_transport_error(&err, config.timeout));
                    }
                }
            }
            tracing::info!(%method, path = url.path(), status = status.as_u16(), cw_request_id,
                elapsed_ms = started.elapsed().as_millis() as u64, bytes = bytes.len(), "ConnectWise call");
            return Ok(Answer { status, headers: response.headers().clone(), body: bytes });
        }
        Err(unexpected("too many redirects"))
    }
}

/// The API base from a discovery answer: `SiteUrl` when present, the `api-` host of a cloud site otherwise.
fn discovered(site: &Site, info: CompanyInfo, mode: SiteMode) -> Result<Codebase, CwError> {
    let codebase = info.codebase.trim().to_string();
    let segment = codebase.strip_suffix('/').unwrap_or_default();
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(unexpected(format!("a codebase of {codebase:?}")));
    }
    let api_site = match info.site_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(site_url) => {
            let with_scheme = if site_url.contains("://") {
                site_url.to_string()
            } else {
                format!("{}://{site_url}", site.scheme.as_str())
            };
            validate_site(&with_scheme, mode)
                .map_err(|err| CwError::SiteRefused { reason: format!("its API host {site_url}: {err}") })?
        }
        None if info.is_cloud && site.host.ends_with(".myconnectwise.net") && !site.host.starts_with("api-") => {
            Site { host: format!("api-{}", site.host), ..site.clone() }
        }
        None => site.clone(),
    };
    let base = Url::parse(&format!("{}/{codebase}apis/3.0/", api_site.origin()))
        .map_err(|_| unexpected(format!("a codebase of {codebase:?}")))?;
    Ok(Codebase { company_name: info.company_name.unwrap_or_default(), codebase, is_cloud: info.is_cloud, base })
}

/// An authenticated view of one ConnectWise site and company.
#[derive(Clone)]
pub struct CwSession {
    client: CwClient,
    codebase: Arc<Codebase>,
    authorization: HeaderValue,
    kind: AuthKind,
    /// Asked before every API request (discovery excepted: it is not an API call and names no account yet).
    gate: Arc<dyn crate::request_budget::RequestGate>,
    /// The site and company ID as the partner saved them (the request budget's account).
    place: (String, String),
}

impl fmt::Debug for CwSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CwSession").field("base", &self.codebase.base.as_str()).field("kind", &self.kind).finish()
    }
}

impl CwSession {
    /// The same session, asking `gate` before every API request it sends.
    pub fn with_gate(mut self, gate: Arc<dyn crate::request_budget::RequestGate>) -> Self {
        self.gate = gate;
        self
    }

    /// The site and company ID as saved.
    pub fn place(&self) -> (&str, &str) {
        (&self.place.0, &self.place.1)
    }

    pub fn codebase(&self) -> &Codebase {
        &self.codebase
    }

    /// "Test connection": `system/info`, which any valid API member may read.
    pub async fn test_connection(&self) -> Result<SystemInfo, CwError> {
        self.get_one("system/info", &[], "the system information").await
    }

    /// The companies named exactly `name` (ConnectWise compares without case; an exact-case match comes first).
    pub async fn find_company_by_name(&self, name: &str) -> Result<Option<Company>, CwError> {
        let conditions = format!("name={}", quote(name));
        let mut found: Vec<Company> = self
            .list_all("company/companies", &[("conditions", &conditions), ("fields", "id,identifier,name")])
            .await?;
        found.retain(|c| c.name.trim().eq_ignore_ascii_case(name.trim()));
        found.sort_by_key(|c| (c.name != name, c.id));
        Ok(found.into_iter().next())
    }

    /// Every company, all pages.
    pub async fn companies(&self) -> Result<Vec<Company>, CwError> {
        self.list_all("company/companies", &[("fields", "id,identifier,name"), ("orderBy", "name asc")]).await
    }

    pub async fn boards(&self) -> Result<Vec<Named>, CwError> {
        self.list_all("service/boards", &[("fields", "id,name")]).await
    }

    pub async fn board_statuses(&self, board_id: i64) -> Result<Vec<Named>, CwError> {
        self.list_all(&format!("service/boards/{board_id}/statuses"), &[("fields", "id,name")]).await
    }

    pub async fn board_types(&self, board_id: i64) -> Result<Vec<Named>, CwError> {
        self.list_all(&format!("service/boards/{board_id}/types"), &[("fields", "id,name")]).await
    }

    pub async fn board_subtypes(&self, board_id: i64) -> Result<Vec<Named>, CwError> {
        self.list_all(&format!("service/boards/{board_id}/subtypes"), &[("fields", "id,name")]).await
    }

    pub async fn board_items(&self, board_id: i64) -> Result<Vec<Named>, CwError> {
        self.list_all(&format!("service/boards/{board_id}/items"), &[("fields", "id,name")]).await
    }

    pub async fn priorities(&self) -> Result<Vec<Named>, CwError> {
        self.list_all("service/priorities", &[("fields", "id,name")]).await
    }

    pub async fn sources(&self) -> Result<Vec<Named>, CwError> {
        self.list_all("service/sources", &[("fields", "id,name")]).await
    }

    /// `POST service/tickets` with the body as given. Never redirected, never retried here: after a
    /// [`CwError::Transient`] the ticket may exist, so look it up with [`Self::find_ticket_by_external_xref`].
    pub async fn create_ticket(&self, ticket: &Map<String, Value>) -> Result<CreatedTicket, CwError> {
        let url = self.url("service/tickets", &[])?;
        let body = Value::Object(ticket.clone());
        let max = self.client.inner.config.limits.max_body_bytes;
        let answer = self.client.send(Method::POST, url, Some(&body), Some(self), max).await?;
        let answer = answer.check(self.kind, || CwError::NotFound { what: "the ticket service".into() })?;
        let body: Value = answer.json()?;
        let id = body.get("id").and_then(Value::as_i64).ok_or_else(|| unexpected("a created ticket without an id"))?;
        Ok(CreatedTicket { id, body })
    }

    /// Adds a note to the ticket's Detail Description section (`POST service/tickets/{id}/notes`; Manage wants one of
    /// the three section flags set); answers the note's id. Never retried here.
    pub async fn add_note(&self, ticket_id: i64, text: &str) -> Result<i64, CwError> {
        let url = self.url(&format!("service/tickets/{ticket_id}/notes"), &[])?;
        let body = serde_json::json!({ "text": text, "detailDescriptionFlag": true });
        let max = self.client.inner.config.limits.max_body_bytes;
        let answer = self.client.send(Method::POST, url, Some(&body), Some(self), max).await?;
        let answer = answer.check(self.kind, || CwError::NotFound { what: format!("ticket {ticket_id}") })?;
        let body: Value = answer.json()?;
        body.get("id").and_then(Value::as_i64).ok_or_else(|| unexpected("a created note without an id"))
    }

    /// The id of the ticket whose `externalXRef` is exactly `xref`, if any (idempotent retries).
    pub async fn find_ticket_by_external_xref(&self, xref: &str) -> Result<Option<i64>, CwError> {
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let conditions = format!("externalXRef={}", quote(xref));
        let url = self.url("service/tickets", &[("conditions", &conditions), ("fields", "id"), ("pageSize", "2")])?;
        let found: Vec<Id> = self.get_url(url, "tickets").await?.0;
        Ok(found.first().map(|t| t.id))
    }

    async fn get_one<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)], what: &str) -> Result<T, CwError> {
        let url = self.url(path, query)?;
        Ok(self.get_url(url, what).await?.0)
    }

    async fn get_url<T: DeserializeOwned>(&self, url: Url, what: &str) -> Result<(T, HeaderMap), CwError> {
        let max = self.client.inner.config.limits.max_body_bytes;
        let (value, headers, _) = self.get_limited(url, what, max).await?;
        Ok((value, headers))
    }

    /// A GET whose answer may be at most `max_bytes`; also returns the answer's size.
    async fn get_limited<T: DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
        max_bytes: usize,
    ) -> Result<(T, HeaderMap, usize), CwError> {
        let answer = self.client.send(Method::GET, url, None, Some(self), max_bytes).await?;
        let answer = answer.check(self.kind, || CwError::NotFound { what: what.to_string() })?;
        let size = answer.body.len();
        Ok((answer.json()?, answer.headers, size))
    }

    /// Every page of a list: `pageSize=1000`, following `Link: <…>; rel="next"` (on the same site only), within the
    /// client's [`Limits`]: rows and bytes over all pages, and one deadline for the whole list.
    async fn list_all<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, CwError> {
        let limits = self.client.inner.config.limits;
        match tokio::time::timeout(limits.operation_deadline, self.list_pages(path, query, limits)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(path, deadline_secs = limits.operation_deadline.as_secs(), "ConnectWise list too slow");
                Err(CwError::Transient {
                    reason: format!(
                        "reading {} took longer than {} s",
                        describe_path(path),
                        limits.operation_deadline.as_secs()
                    ),
                })
            }
        }
    }

    async fn list_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        limits: Limits,
    ) -> Result<Vec<T>, CwError> {
        let page_size = PAGE_SIZE.to_string();
        let mut params = query.to_vec();
        params.push(("pageSize", &page_size));
        params.push(("page", "1"));
        let mut url = self.url(path, &params)?;
        let mut all = Vec::new();
        let mut bytes_left = limits.max_list_bytes;
        let mut visited = std::collections::HashSet::from([url.to_string()]);
        // Pages too are capped (empty ones included): a site answering `[]` with ever new next links stops here.
        let max_pages = limits.max_list_rows / PAGE_SIZE + 2;
        let mut page = 0usize;
        loop {
            page += 1;
            if page > max_pages {
                tracing::warn!(path, max_pages, "ConnectWise list has too many pages");
                return Err(CwError::TooLarge { what: describe_path(path), limit: format!("{max_pages} pages") });
            }
            let max = limits.max_body_bytes.min(bytes_left);
            let (rows, headers, size): (Vec<T>, HeaderMap, usize) =
                self.get_limited(url.clone(), path, max).await.map_err(|err| match err {
                    // The list as a whole is what was too large.
                    CwError::TooLarge { .. } if max < limits.max_body_bytes => {
                        CwError::TooLarge { what: describe_path(path), limit: describe_bytes(limits.max_list_bytes) }
                    }
                    other => other,
                })?;
            bytes_left -= size.min(bytes_left);
            let count = rows.len();
            if all.len() + count > limits.max_list_rows {
                tracing::warn!(path, rows = all.len() + count, max = limits.max_list_rows, "ConnectWise list too long");
                return Err(CwError::TooLarge {
                    what: describe_path(path),
                    limit: format!("{} rows", limits.max_list_rows),
                });
            }
            all.extend(rows);
            let link = headers.get_all("link").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
            let next = match next_link(&link) {
                Some(next) => Some(url.join(&next).map_err(|_| unexpected(format!("a next-page link of {next:?}")))?),
                // No Link header at all but a full page: ask for the next page rather than stop short.
                None if link.trim().is_empty() && count == PAGE_SIZE => {
                    let mut params = params.clone();
                    let next_page = (page + 1).to_string();
                    params.retain(|(k, _)| *k != "page");
                    params.push(("page", &next_page));
                    Some(self.url(path, &params)?)
                }
                None => None,
            };
            match next {
                // A site that links a page to itself (or back) would loop until the deadline: stop at once.
                Some(next) if !visited.insert(next.to_string()) => {
                    return Err(unexpected(format!("a next-page link to the same page of {path} again")));
                }
                Some(next) if next.origin() == self.codebase.base.origin() => url = next,
                Some(next) => return Err(unexpected(format!("a next-page link to another site ({next})"))),
                None => return Ok(all),
            }
        }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, CwError> {
        let mut url = self.codebase.base.join(path).map_err(|_| unexpected(format!("a path of {path:?}")))?;
        if !query.is_empty() {
            let encoded: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            url.set_query(Some(&encoded.join("&")));
        }
        Ok(url)
    }
}

/// A condition's string literal: double quotes, with `\` and `"` escaped.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (spaces as `%20`, never `+`).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        is_next.then(|| target.to_string())
    })
}

/// A read answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// ConnectWise's error body: `{"code":…,"message":…,"errors":[{"code","message","resource","field"}]}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<ErrorItem>>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

impl Answer {
    /// Maps a non-success status to its error.
    fn check(self, kind: AuthKind, not_found: impl FnOnce() -> CwError) -> Result<Self, CwError> {
        let status = self.status;
        if status.is_success() {
            return Ok(self);
        }
        let error_body = || serde_json::from_slice::<ErrorBody>(&self.body).ok();
        Err(match status.as_u16() {
            400 => match error_body() {
                Some(body) => CwError::Validation {
                    message: body.message.or(body.code).unwrap_or_else(|| "the request is invalid".into()),
                    errors: body
                        .errors
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| FieldError {
                            field: e.field.unwrap_or_default(),
                            code: e.code.unwrap_or_default(),
                            message: e.message.unwrap_or_default(),
                        })
                        .collect(),
                },
                None => unexpected(format!("HTTP 400 with {}", describe_body(&self.headers, &self.body))),
            },
            401 => CwError::Unauthorized { kind },
            403 => CwError::Forbidden { message: error_body().and_then(|b| b.message).unwrap_or_default() },
            404 => not_found(),
            // "HTTP …" marks an answer (see CwError::is_unanswered).
            408 => CwError::Transient { reason: "HTTP 408".into() },
            429 => CwError::RateLimited { retry_after: retry_after(&self.headers) },
            500..=599 => CwError::Transient { reason: format!("HTTP {}", status.as_u16()) },
            other => unexpected(format!("HTTP {other}")),
        })
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, CwError> {
        if header_str(&self.headers, CONTENT_TYPE.as_str()).is_some_and(|ct| ct.to_ascii_lowercase().contains("html")) {
            return Err(unexpected("an HTML page"));
        }
        serde_json::from_slice(&self.body).map_err(|err| decode_error(&self.body, &err))
    }
}

fn decode_error(body: &[u8], err: &serde_json::Error) -> CwError {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        unexpected("an HTML page")
    } else if err.is_eof() {
        unexpected("a truncated answer")
    } else if err.is_data() {
        unexpected(format!("JSON of an unexpected shape: {err}"))
    } else {
        unexpected("an answer that is not JSON")
    }
}

fn describe_body(headers: &HeaderMap, body: &[u8]) -> &'static str {
    let html = header_str(headers, CONTENT_TYPE.as_str()).is_some_and(|ct| ct.contains("html"))
        || String::from_utf8_lossy(body).trim_start().starts_with('<');
    if html { "an HTML page" } else { "an unreadable body" }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110), capped at an hour; a date in the past means now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(header_str(headers, "retry-after")?, std::time::SystemTime::now())
}

fn retry_after_at(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    const LONGEST: Duration = Duration::from_secs(3600);
    let value = value.trim();
    let after = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(after.min(LONGEST))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a partner calls the list at `path` (`company/companies` → "the companies").
fn describe_path(path: &str) -> String {
    let last = path.rsplit('/').find(|segment| !segment.is_empty() && !segment.bytes().all(|b| b.is_ascii_digit()));
    format!("the {}", last.unwrap_or(path))
}

/// The list or object a URL reads, for a sentence.
fn what_of(url: &Url) -> String {
    let path = url.path();
    describe_path(path.split("/apis/3.0/").nth(1).unwrap_or(path))
}

fn describe_bytes(bytes: usize) -> String {
    if bytes >= 1024 * 1024 { format!("{} MB", bytes / (1024 * 1024)) } else { format!("{} KB", bytes.div_ceil(1024)) }
}

fn unexpected(reason: impl Into<String>) -> CwError {
    CwError::UnexpectedResponse { reason: reason.into() }
}

fn map_transport_error(err: &reqwest::Error, timeout: Duration) -> CwError {
    if let Some(refused) = policy::refused_address(err) {
        return CwError::SiteRefused { reason: format!("{refused}; ConnectWise must be reachable on the internet.") };
    }
    if err.is_timeout() {
        CwError::Transient { reason: format!("no answer within {} s", timeout.as_secs_f32()) }
    } else if err.is_connect() {
        CwError::Transient { reason: "could not connect".into() }
    } else if err.is_body() || err.is_decode() {
        CwError::Transient { reason: "the connection broke off during the answer".into() }
    } else {
        CwError::Transient { reason: "the connection failed".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_is_basic_of_company_plus_user() {
        let auth = Auth::ApiMember { public_key: "pub".into(), private_key: "priv".into() };
        // base64("acme+pub:priv")
        assert_eq!(auth.authorization("acme"), "Basic YWNtZStwdWI6cHJpdg==");
        let debug = format!("{auth:?}");
        assert!(!debug.contains("priv\""), "{debug}");
        let integrator = Auth::Integrator { username: "u".into(), password: "secret-pass".into() };
        assert!(!format!("{integrator:?}").contains("secret-pass"));
    }

    #[test]
    fn company_info_accepts_is_cloud_as_bool_or_string_and_empty_as_unknown() {
        let info = parse_company_info(
            br#"{"CompanyName":"Acme","Codebase":"v2025_1/","IsCloud":"True","SiteUrl":"api-na.myconnectwise.net"}"#,
        )
        .expect("parse")
        .expect("known");
        assert!(info.is_cloud);
        let info =
            parse_company_info(br#"{"Codebase":"v4_6_release/","IsCloud":false}"#).expect("parse").expect("known");
        assert!(!info.is_cloud);
        assert!(parse_company_info(b"").expect("empty").is_none());
        assert!(parse_company_info(b"null").expect("null").is_none());
        assert!(matches!(parse_company_info(b"<html>"), Err(CwError::UnexpectedResponse { .. })));
    }

    #[test]
    fn discovery_uses_site_url_or_the_api_host_of_a_cloud_site() {
        let site = validate_site("na.myconnectwise.net", SiteMode::Production).expect("site");
        let info = |site_url: Option<&str>, cloud: bool| CompanyInfo {
            company_name: None,
            codebase: "v2025_1/".into(),
            is_cloud: cloud,
            site_url: site_url.map(Into::into),
        };
        let cb = discovered(&site, info(Some("api-na.myconnectwise.net"), true), SiteMode::Production).expect("ok");
        assert_eq!(cb.base.as_str(), "https://api-na.myconnectwise.net/v2025_1/apis/3.0/");
        let cb = discovered(&site, info(None, true), SiteMode::Production).expect("ok");
        assert_eq!(cb.base.as_str(), "https://api-na.myconnectwise.net/v2025_1/apis/3.0/");
        let onprem = validate_site("cw.example.com", SiteMode::Production).expect("site");
        let cb = discovered(&onprem, info(None, false), SiteMode::Production).expect("ok");
        assert_eq!(cb.base.as_str(), "https://cw.example.com/v2025_1/apis/3.0/");
        // A hostile discovery answer cannot point the client at a private address or another path.
        let err = discovered(&site, info(Some("169.254.169.254"), true), SiteMode::Production).expect_err("refused");
        assert!(matches!(err, CwError::SiteRefused { .. }), "{err:?}");
        let bad = CompanyInfo { codebase: "../admin/".into(), ..info(None, false) };
        assert!(matches!(discovered(&site, bad, SiteMode::Production), Err(CwError::UnexpectedResponse { .. })));
    }

    #[test]
    fn link_headers_and_encoding() {
        let link = r#"<https://h/v/apis/3.0/company/companies?page=1>; rel="first", <https://h/v/apis/3.0/company/companies?page=3>; rel="next", <https://h/x?page=9>; rel="last""#;
        assert_eq!(next_link(link).as_deref(), Some("https://h/v/apis/3.0/company/companies?page=3"));
        assert_eq!(next_link(r#"<https://h/x?page=1>; rel="first""#), None);
        assert_eq!(encode(r#"name="Globex, Inc.""#), "name%3D%22Globex%2C%20Inc.%22");
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_800_000);
        assert_eq!(retry_after_at(" 30 ", now), Some(Duration::from_secs(30)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after_at(&later, now), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after_at(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after_at("86400", now), Some(Duration::from_secs(3600)), "capped at an hour");
        assert_eq!(retry_after_at("soon", now), None);
    }
}
