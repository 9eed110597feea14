//! The Autotask PSA REST client (server only): zone discovery, header authentication, the operations a ticketing
//! integration needs, one typed error ([`AtError`]), and the same outbound-safety rules as the ConnectWise client
//! (its [`SitePolicy`] and guarded resolver, plus [`zone::validate_zone_url`] for the zone Autotask names).
//!
//! ```ignore
//! let client = AtClient::new(systems::autotask_config(&config))?;
//! let session = client.session(&credentials).await?;   // zone discovery, cached per API user
//! let company = session.find_company_by_name("Acme Corporation").await?;
//! let id = session.create_ticket(company.id, "dwid:…", &fields).await?;
//! ```
//!
//! The client never retries by itself: [`AtError::is_retryable`] tells the caller what is worth trying again. A
//! ticket POST that got no answer may have created the ticket, so a retry first looks it up with
//! [`AtSession::find_ticket_by_dedupe_key`]. It does keep to Autotask's thread limit (at most
//! [`DEFAULT_THREAD_LIMIT`] calls in flight per API user and endpoint), queueing the rest.

pub mod catalog;
pub mod demo;
pub mod error;
pub mod sandbox;
mod ticketing;
pub mod zone;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

pub use catalog::{AtChoice, AtField, AtFieldCatalog, AtFieldKind};
pub use error::{AtError, AuthFailure, FieldError, Throttle};

use crate::connectwise::policy::{self, SitePolicy};
use crate::connectwise::{CwError, Limits};

/// Where zone discovery is asked by default (`AUTOTASK_ZONE_DISCOVERY_URL`).
pub const DEFAULT_ZONE_DISCOVERY_URL: &str = "https://webservices.autotask.net";
/// Autotask's largest page (`MaxRecords`), and the size of every page of a query.
pub const PAGE_SIZE: usize = 500;
/// The ticket user-defined field that holds the dashboard's dedupe key unless the partner names another.
pub use crate::ticketing::system::AUTOTASK_DEFAULT_DEDUPE_UDF as DEFAULT_DEDUPE_UDF;
/// Calls in flight per API user and endpoint. Autotask allows 3 per tracking identifier and endpoint for
/// integrations created since release 2023.1 (vendor: "API thread limiting",
/// ww1.autotask.net/help/DeveloperHelp/Content/APIs/General/ThreadLimiting.htm); zone look-ups are exempt.
pub const DEFAULT_THREAD_LIMIT: usize = 3;
/// A discovered zone is trusted this long, then asked for again (it changes when a database moves).
const ZONE_TTL: Duration = Duration::from_secs(3600);
/// API users whose zone is remembered (least recently used forgotten first).
pub const ZONE_CACHE_ENTRIES: usize = 1024;
/// Tracking identifiers and endpoints whose thread slots are kept.
const THREAD_SLOT_ENTRIES: usize = 4096;
/// The note type of a ticket note: a picklist whose values vary per Autotask instance; 1 exists in a default one.
pub const NOTE_TYPE: i64 = 1;
/// The note's `publish` value: 1 = All Autotask Users (vendor: TicketNotes entity,
/// ww1.autotask.net/help/DeveloperHelp/Content/APIs/REST/Entities/TicketNotesEntity.htm).
pub const NOTE_PUBLISH: i64 = 1;

/// How the client behaves; built from the application's configuration.
#[derive(Debug, Clone)]
pub struct AtConfig {
    /// The origin asked for zones (`https://webservices.autotask.net`; the sandbox's in dev mode).
    pub discovery_url: String,
    pub connect_timeout: Duration,
    /// The whole call: connecting, sending and reading the answer.
    pub timeout: Duration,
    pub policy: SitePolicy,
    pub limits: Limits,
    /// Calls in flight per API user and endpoint ([`DEFAULT_THREAD_LIMIT`]).
    pub thread_limit: usize,
}

/// One Autotask API user, as the partner gave it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AtCredentials {
    /// The API user's user name (`api@yourmsp.com`).
    pub username: String,
    pub secret: String,
    /// The API tracking identifier (sent as `ApiIntegrationCode`).
    pub integration_code: String,
    /// The ticket user-defined field that holds the dedupe key.
    #[serde(default = "default_dedupe_udf")]
    pub dedupe_udf: String,
}

fn default_dedupe_udf() -> String {
    DEFAULT_DEDUPE_UDF.to_string()
}

impl AtCredentials {
    pub fn new(username: &str, secret: &str, integration_code: &str) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
            integration_code: integration_code.into(),
            dedupe_udf: default_dedupe_udf(),
        }
    }
}

/// The secret never reaches a log through `{:?}`.
impl fmt::Debug for AtCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtCredentials")
            .field("username", &self.username)
            .field("secret", &"***")
            .field("integration_code", &"***")
            .field("dedupe_udf", &self.dedupe_udf)
            .finish()
    }
}

/// A company (`id`, `companyName`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtCompany {
    pub id: i64,
    pub name: String,
}

/// The zone an API user's database lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `zoneName` (e.g. "Pre-Release", "America East").
    pub name: String,
    /// The checked API base (`https://webservices5.autotask.net/ATServicesRest/`); calls go to `{url}V1.0/…`.
    pub url: Url,
    pub web_url: Option<String>,
    /// `ci`: the customer's database. Autotask's hourly request limit is per database, shared by every API user
    /// of it, so the request budget is kept per `ci` when discovery gives one.
    pub database: Option<i64>,
}

/// The `zoneInformation` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZoneInfo {
    #[serde(default)]
    zone_name: Option<String>,
    url: String,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    ci: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not build the Autotask HTTP client: {0}")]
pub struct BuildError(String);

/// The Autotask client: cheap to clone; one connection pool, zone cache and set of thread slots per process.
#[derive(Clone)]
pub struct AtClient {
    inner: Arc<Inner>,
    /// The request budgets shared by every process, once [`AtClient::with_budgets`] was called: sessions opened
    /// through the ticketing interface then ask before every API request.
    budgets: Option<crate::request_budget::RequestBudgets>,
}

struct Inner {
    http: reqwest::Client,
    config: AtConfig,
    discovery: Url,
    /// Lower-case user name → zone.
    zones: Mutex<LruCache<String, (Instant, Arc<Zone>)>>,
    /// (scope and tracking identifier, endpoint) → its thread slots. Entries in use are never dropped (a fresh
    /// one would let more calls than Autotask allows run at once); idle ones go when the map is full.
    threads: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
}

impl fmt::Debug for AtClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl AtClient {
    pub fn new(config: AtConfig) -> Result<Self, BuildError> {
        // reqwest is built without a default crypto provider: ring, installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let discovery = Url::parse(config.discovery_url.trim())
            .map_err(|_| BuildError(format!("the zone discovery address {:?} is not a URL", config.discovery_url)))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .https_only(config.policy.mode() == crate::connectwise_site::SiteMode::Production)
            .dns_resolver(Arc::new(policy::GuardedResolver { policy: config.policy.clone() }))
            .user_agent(concat!("dwid-partner-dashboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| BuildError(err.to_string()))?;
        let zones = NonZeroUsize::new(ZONE_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                discovery,
                zones: Mutex::new(LruCache::new(zones)),
                threads: Mutex::new(HashMap::new()),
            }),
            budgets: None,
        })
    }

    /// The same client, keeping every account's request budget in `budgets`.
    pub fn with_budgets(mut self, budgets: crate::request_budget::RequestBudgets) -> Self {
        self.budgets = Some(budgets);
        self
    }

    pub(crate) fn budgets(&self) -> Option<&crate::request_budget::RequestBudgets> {
        self.budgets.as_ref()
    }

    pub fn config(&self) -> &AtConfig {
        &self.inner.config
    }

    /// API users whose zone is cached now (at most [`ZONE_CACHE_ENTRIES`]).
    pub fn cached_zones(&self) -> usize {
        self.inner.zones.lock().map_or(0, |cache| cache.len())
    }

    /// Discovers the API user's zone (cached) and returns a session that makes authenticated calls.
    pub async fn session(&self, credentials: &AtCredentials) -> Result<AtSession, AtError> {
        let username = credentials.username.trim();
        let missing: Vec<(&str, &str)> = [
            ("username", username),
            ("secret", credentials.secret.as_str()),
            ("integration_code", credentials.integration_code.trim()),
            ("dedupe_udf", credentials.dedupe_udf.trim()),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_empty())
        .collect();
        if !missing.is_empty() {
            let errors = missing
                .iter()
                .map(|(field, _)| FieldError {
                    field: (*field).into(),
                    code: "Required".into(),
                    message: format!("Enter the {}.", field.replace('_', " ")),
                })
                .collect();
            return Err(AtError::Validation { message: "Some credentials are missing.".into(), errors });
        }
        let header = |value: &str, field: &str| {
            HeaderValue::from_str(value).map_err(|_| AtError::Validation {
                message: format!("The {} contains characters HTTP cannot carry.", field.replace('_', " ")),
                errors: vec![FieldError { field: field.into(), code: "Invalid".into(), message: String::new() }],
            })
        };
        let mut headers = HeaderMap::new();
        let mut code = header(credentials.integration_code.trim(), "integration_code")?;
        code.set_sensitive(true);
        headers.insert("ApiIntegrationCode", code);
        headers.insert("UserName", header(username, "username")?);
        let mut secret = header(&credentials.secret, "secret")?;
        secret.set_sensitive(true);
        headers.insert("Secret", secret);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let zone = self.zone(username).await?;
        Ok(AtSession {
            client: self.clone(),
            zone,
            headers,
            user_key: username.to_lowercase(),
            slot_key: credentials.integration_code.trim().to_string(),
            dedupe_udf: credentials.dedupe_udf.trim().to_string(),
            gate: Arc::new(crate::request_budget::Unlimited),
        })
    }

    /// `GET {discovery}/atservicesrest/v1.0/zoneInformation?user=…`, cached per user for [`ZONE_TTL`]. No tracking
    /// identifier is needed for it (vendor: "The API tracking identifier": all calls except zone look-ups need one).
    pub async fn zone(&self, username: &str) -> Result<Arc<Zone>, AtError> {
        let key = username.trim().to_lowercase();
        let cached = self.inner.zones.lock().ok().and_then(|mut cache| cache.get(&key).cloned());
        if let Some((at, zone)) = cached
            && at.elapsed() < ZONE_TTL
        {
            return Ok(zone);
        }
        let mut url = self
            .inner
            .discovery
            .join("/atservicesrest/v1.0/zoneInformation")
            .map_err(|_| unexpected("a zone discovery address that cannot be joined"))?;
        url.query_pairs_mut().append_pair("user", username.trim());
        let max = self.inner.config.limits.max_body_bytes;
        let answer = self.send(Method::GET, url, None, None, max).await?;
        let answer = answer.check(&[], || AtError::Unauthorized { failure: AuthFailure::UnknownUser })?;
        let info: ZoneInfo = answer.json()?;
        let mode = self.inner.config.policy.mode();
        let base = zone::validate_zone_url(&info.url, mode).map_err(|reason| AtError::SiteRefused { reason })?;
        let zone = Arc::new(Zone {
            name: info.zone_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| zone::zone_host_label(&base)),
            url: base,
            web_url: info.web_url,
            database: info.ci,
        });
        tracing::debug!(zone = %zone.name, url = %zone.url, "Autotask zone discovered");
        if let Ok(mut cache) = self.inner.zones.lock() {
            cache.put(key, (Instant::now(), zone.clone()));
        }
        Ok(zone)
    }

    /// The thread slots of a tracking identifier's endpoint.
    fn slots(&self, user: &str, endpoint: &str) -> Arc<Semaphore> {
        let limit = self.inner.config.thread_limit.max(1);
        let key = (user.to_string(), endpoint.to_string());
        match self.inner.threads.lock() {
            Ok(mut slots) => {
                if slots.len() >= THREAD_SLOT_ENTRIES && !slots.contains_key(&key) {
                    // Idle entries only: one held by a call in flight has another owner than the map.
                    slots.retain(|_, slot| Arc::strong_count(slot) > 1);
                }
                slots.entry(key).or_insert_with(|| Arc::new(Semaphore::new(limit))).clone()
            }
            Err(_) => Arc::new(Semaphore::new(limit)),
        }
    }

    /// One HTTP exchange: the URL checked by the policy, a thread slot held for API calls, no redirect followed,
    /// the timing logged, the body read up to `max_bytes` (and refused beyond).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        session: Option<&AtSession>,
        max_bytes: usize,
    ) -> Result<Answer, AtError> {
        let config = &self.inner.config;
        config.policy.check_url(&url).map_err(site_refused)?;
        if let Some(session) = session {
            session.gate.admit().await.map_err(|refused| AtError::BudgetRefused { refused })?;
        }
        let endpoint = endpoint_of(url.path());
        let _slot = match session {
            Some(session) => {
                let slots = self.slots(&session.slot_key, &endpoint);
                match tokio::time::timeout(config.timeout, slots.acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    Ok(Err(_)) => None,
                    Err(_) => {
                        tracing::warn!(endpoint, "no free Autotask thread slot in time");
                        return Err(AtError::RateLimited { retry_after: None, limit: Throttle::Threads });
                    }
                }
            }
            None => None,
        };
        let mut request = self.inner.http.request(method.clone(), url.clone());
        request = match session {
            Some(session) => request.headers(session.headers.clone()),
            None => request.header(ACCEPT, "application/json"),
        };
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let started = Instant::now();
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let mapped = map_transport_error(&err, config.timeout);
                tracing::warn!(%method, path = url.path(), elapsed_ms = started.elapsed().as_millis() as u64,
                    error = %err, "Autotask call failed");
                return Err(mapped);
            }
        };
        let status = response.status();
        if status.is_redirection() {
            tracing::info!(%method, path = url.path(), status = status.as_u16(), "Autotask answered with a redirect");
            return Err(unexpected(format!("a redirect (HTTP {}), which the client does not follow", status.as_u16())));
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > max_bytes {
                        tracing::warn!(%method, path = url.path(), status = status.as_u16(), max_bytes,
                            "Autotask answer too large: reading stopped");
                        return Err(AtError::TooLarge { what: describe(&endpoint), limit: describe_bytes(max_bytes) });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%method, path = url.path(), status = status.as_u16(), error = %err,
                        "Autotask answer broke off");
                    return Err(map_transport_error(&err, config.timeout));
                }
            }
        }
        tracing::info!(%method, path = url.path(), status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64, bytes = bytes.len(), "Autotask call");
        Ok(Answer { status, headers: response.headers().clone(), body: bytes, endpoint })
    }
}

/// An authenticated view of one Autotask API user's database.
#[derive(Clone)]
pub struct AtSession {
    client: AtClient,
    zone: Arc<Zone>,
    /// `ApiIntegrationCode`, `UserName`, `Secret` (marked sensitive), `Accept`.
    headers: HeaderMap,
    user_key: String,
    /// Whose thread slots the calls take: Autotask counts threads per tracking identifier and endpoint; with a
    /// scope (the partner) in front, so that another partner naming the same identifier never takes ours.
    slot_key: String,
    dedupe_udf: String,
    /// Asked before every API request (zone look-ups excepted: they are exempt from Autotask's limits).
    gate: Arc<dyn crate::request_budget::RequestGate>,
}

impl fmt::Debug for AtSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtSession").field("zone", &self.zone.url.as_str()).field("user", &self.user_key).finish()
    }
}

/// A query's answer: `{"items": [...], "pageDetails": {"nextPageUrl": …}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(default)]
    page_details: Option<PageDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageDetails {
    #[serde(default)]
    next_page_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CompanyRow {
    id: i64,
    #[serde(rename = "companyName", default)]
    company_name: String,
}

/// `{"itemId": N}`, the answer of every create.
#[derive(Debug, Deserialize)]
struct Created {
    #[serde(rename = "itemId")]
    item_id: i64,
}

/// One ticket of a dedupe lookup: its id and user-defined fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TicketRow {
    id: i64,
    #[serde(default)]
    user_defined_fields: Vec<Udf>,
}

#[derive(Debug, Deserialize)]
struct Udf {
    name: String,
    #[serde(default)]
    value: Value,
}

/// `ThresholdInformation`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThresholdInfo {
    external_request_threshold: u64,
    current_timeframe_request_count: u64,
}

impl AtSession {
    /// The same session, asking `gate` before every API request it sends.
    pub fn with_gate(mut self, gate: Arc<dyn crate::request_budget::RequestGate>) -> Self {
        self.gate = gate;
        self
    }

    /// The same session, its thread slots kept apart for `scope` (the partner): see [`AtSession::slot_key`].
    pub fn with_slot_scope(mut self, scope: &str) -> Self {
        self.slot_key = format!("{scope}\u{0}{}", self.slot_key);
        self
    }

    /// The API user (lower case).
    pub fn user(&self) -> &str {
        &self.user_key
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The user-defined field this session writes the dedupe key to.
    pub fn dedupe_udf(&self) -> &str {
        &self.dedupe_udf
    }

    /// "Test connection": the credentials, reading companies and tickets (one record each, so a missing right is
    /// named), and the dedupe user-defined field. Answers a sentence like "Connected to Autotask (zone Pre-Release
    /// / webservices5)."
    pub async fn test_connection(&self) -> Result<String, AtError> {
        let probe =
            json!({ "filter": [{ "op": "gte", "field": "id", "value": 0 }], "IncludeFields": ["id"], "MaxRecords": 1 });
        let _: Value = self.post_json("Companies/query", &probe, &[]).await?;
        let _: Value = self.post_json("Tickets/query", &probe, &[]).await?;
        let udfs = self.field_info("Tickets/entityInformation/userDefinedFields").await?;
        if !udfs.iter().any(|u| u.name.trim().eq_ignore_ascii_case(&self.dedupe_udf)) {
            return Err(AtError::NotFound {
                what: format!(
                    "the ticket user-defined field \"{}\" the dashboard keeps its reference in (create it in Autotask \
                     as a ticket UDF of type Text)",
                    self.dedupe_udf
                ),
            });
        }
        Ok(format!("Connected to Autotask (zone {} / {}).", self.zone.name, zone::zone_host_label(&self.zone.url)))
    }

    /// The active company named exactly `name`, if any. Autotask's `eq` compares as SQL Server does (without case,
    /// trailing spaces ignored), so the match is confirmed here; the lowest id wins among exact duplicates.
    pub async fn find_company_by_name(&self, name: &str) -> Result<Option<AtCompany>, AtError> {
        if name.trim().is_empty() {
            return Ok(None);
        }
        let body = json!({
            "filter": [
                { "op": "eq", "field": "companyName", "value": name },
                { "op": "eq", "field": "isActive", "value": true },
            ],
            "IncludeFields": ["id", "companyName"],
        });
        let mut rows: Vec<CompanyRow> = self.query_all("Companies", &body).await?;
        rows.retain(|c| c.company_name == name);
        rows.sort_by_key(|c| c.id);
        Ok(rows.into_iter().next().map(|c| AtCompany { id: c.id, name: c.company_name }))
    }

    /// Every active company, all pages, in id order.
    pub async fn companies(&self) -> Result<Vec<AtCompany>, AtError> {
        let body = json!({
            "filter": [{ "op": "eq", "field": "isActive", "value": true }],
            "IncludeFields": ["id", "companyName"],
        });
        let rows: Vec<CompanyRow> = self.query_all("Companies", &body).await?;
        Ok(rows.into_iter().map(|c| AtCompany { id: c.id, name: c.company_name }).collect())
    }

    /// The ticket fields a partner can map (see [`catalog`]): the standard ones and every user-defined field but
    /// the dedupe one, with active picklist values only.
    pub async fn ticket_fields(&self) -> Result<AtFieldCatalog, AtError> {
        let fields = self.field_info("Tickets/entityInformation/fields").await?;
        let udfs = self.field_info("Tickets/entityInformation/userDefinedFields").await?;
        Ok(catalog::build_catalog(&fields, &udfs, &self.dedupe_udf))
    }

    /// `POST V1.0/Tickets` for `company_id`, with the dedupe key in the dedupe user-defined field. `fields` holds
    /// neutral values keyed as [`AtField::key`] (strings for text and dates, numbers for picklist ids); `udf:<name>`
    /// keys go into `userDefinedFields`. Answers the new ticket's id. Never retried here: after an unanswered POST
    /// the ticket may exist, so look it up with [`Self::find_ticket_by_dedupe_key`] first.
    ///
    /// Why a user-defined field and not the ticket's `externalID`: the field exists in Autotask's swagger models,
    /// but no vendor page states that it can be written on create through REST and then queried, while UDFs are
    /// documented as creatable with the entity and queryable with `"udf": true` (vendor: REST API "User-defined
    /// fields (UDFs)" and "Making basic query calls to the REST API" > UDF comparison operator).
    pub async fn create_ticket(
        &self,
        company_id: i64,
        dedupe_key: &str,
        fields: &Map<String, Value>,
    ) -> Result<i64, AtError> {
        if dedupe_key.trim().is_empty() {
            return Err(AtError::Validation { message: "The ticket has no dedupe key.".into(), errors: vec![] });
        }
        let (body, udf_names) = ticket_body(company_id, &self.dedupe_udf, dedupe_key, fields);
        // Messages about a missing field name a field the body does not have: the standard ones are candidates too.
        let mut candidates: Vec<String> = body.keys().cloned().collect();
        candidates.extend(catalog::STANDARD_FIELDS.iter().map(|(key, _)| key.to_string()));
        candidates.extend(udf_names.iter().cloned());
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let created: Created = self
            .post_json("Tickets", &Value::Object(body), &candidates)
            .await
            .map_err(|err| udf_keys(err, &udf_names))?;
        Ok(created.item_id)
    }

    /// The id of the ticket whose dedupe field holds exactly `key`, if any (the lowest id if several do).
    ///
    /// Autotask ignores a filter item with an operator it does not know instead of refusing the query, so a broken
    /// filter would answer unrelated tickets: any ticket in the answer whose field does not equal `key` the way SQL
    /// Server compares (without case, trailing spaces ignored) means the filter did not apply, and that is an error,
    /// never "not found".
    pub async fn find_ticket_by_dedupe_key(&self, key: &str) -> Result<Option<i64>, AtError> {
        let body = json!({
            "filter": [{ "op": "eq", "field": self.dedupe_udf, "value": key, "udf": true }],
            "MaxRecords": PAGE_SIZE,
        });
        let page: QueryPage<TicketRow> = self.post_json("Tickets/query", &body, &[]).await?;
        let loose = |value: &str| value.trim_end_matches(' ').to_lowercase();
        let mut exact = Vec::new();
        for ticket in &page.items {
            let value = ticket
                .user_defined_fields
                .iter()
                .find(|u| u.name.eq_ignore_ascii_case(&self.dedupe_udf))
                .and_then(|u| u.value.as_str());
            match value {
                Some(value) if value == key => exact.push(ticket.id),
                Some(value) if loose(value) == loose(key) => {}
                _ => {
                    tracing::error!(ticket = ticket.id, "Autotask answered a dedupe lookup with an unrelated ticket");
                    return Err(unexpected(format!(
                        "tickets that do not carry the reference asked for (the filter on \"{}\" was not applied)",
                        self.dedupe_udf
                    )));
                }
            }
        }
        Ok(exact.into_iter().min())
    }

    /// `POST V1.0/Tickets/{id}/Notes` (a ticket note is created through its parent ticket only). Answers the note's
    /// id.
    pub async fn add_note(&self, ticket_id: i64, title: &str, description: &str) -> Result<i64, AtError> {
        let body = json!({
            "ticketID": ticket_id,
            "title": title,
            "description": description,
            "noteType": NOTE_TYPE,
            "publish": NOTE_PUBLISH,
        });
        let url = self.url(&format!("Tickets/{ticket_id}/Notes"))?;
        let answer = self.send(Method::POST, url, Some(&body)).await?;
        let created: Created = answer
            .check(&["title", "description", "noteType", "publish", "ticketID"], || AtError::NotFound {
                what: format!("ticket {ticket_id}"),
            })?
            .json()?;
        Ok(created.item_id)
    }

    /// `(used, limit)`: requests counted against the database's hourly threshold, and the threshold.
    pub async fn threshold(&self) -> Result<(u64, u64), AtError> {
        let url = self.url("ThresholdInformation")?;
        let answer = self.send(Method::GET, url, None).await?;
        let info: ThresholdInfo =
            answer.check(&[], || AtError::NotFound { what: "the threshold information".into() })?.json()?;
        Ok((info.current_timeframe_request_count, info.external_request_threshold))
    }

    async fn field_info(&self, path: &str) -> Result<Vec<catalog::FieldInfo>, AtError> {
        let url = self.url(path)?;
        let answer = self.send(Method::GET, url, None).await?;
        let answer = answer.check(&[], || AtError::NotFound { what: "the ticket field information".into() })?;
        Ok(answer.json::<catalog::FieldsAnswer>()?.fields)
    }

    async fn post_json<T: DeserializeOwned>(&self, path: &str, body: &Value, fields: &[&str]) -> Result<T, AtError> {
        let url = self.url(path)?;
        let answer = self.send(Method::POST, url, Some(body)).await?;
        let what = describe(&answer.endpoint);
        answer.check(fields, || AtError::NotFound { what })?.json()
    }

    /// Every page of a query, within the client's [`Limits`] (rows, bytes, pages, one deadline for all).
    async fn query_all<T: DeserializeOwned>(&self, entity: &str, body: &Value) -> Result<Vec<T>, AtError> {
        let limits = self.client.inner.config.limits;
        match tokio::time::timeout(limits.operation_deadline, self.query_pages(entity, body, limits)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(entity, deadline_secs = limits.operation_deadline.as_secs(), "Autotask query too slow");
                Err(AtError::Transient {
                    reason: format!(
                        "reading {} took longer than {} s",
                        describe(&entity.to_lowercase()),
                        limits.operation_deadline.as_secs()
                    ),
                    answered: true,
                })
            }
        }
    }

    /// A POST query's next page is asked for by POSTing the same body to `nextPageUrl` (a GET of it is refused).
    async fn query_pages<T: DeserializeOwned>(
        &self,
        entity: &str,
        body: &Value,
        limits: Limits,
    ) -> Result<Vec<T>, AtError> {
        let what = describe(&entity.to_lowercase());
        let mut url = self.url(&format!("{entity}/query"))?;
        let mut all = Vec::new();
        let mut bytes_left = limits.max_list_bytes;
        let mut visited = std::collections::HashSet::from([url.to_string()]);
        // Empty pages count too: a server answering `[]` with ever new next links stops here.
        let max_pages = limits.max_list_rows / PAGE_SIZE + 2;
        let mut page = 0usize;
        loop {
            page += 1;
            if page > max_pages {
                tracing::warn!(entity, max_pages, "Autotask query has too many pages");
                return Err(AtError::TooLarge { what, limit: format!("{max_pages} pages") });
            }
            let max = limits.max_body_bytes.min(bytes_left);
            let answer = self.client.send(Method::POST, url.clone(), Some(body), Some(self), max).await.map_err(
                |err| match err {
                    AtError::TooLarge { .. } if max < limits.max_body_bytes => {
                        AtError::TooLarge { what: what.clone(), limit: describe_bytes(limits.max_list_bytes) }
                    }
                    other => other,
                },
            )?;
            let answer = answer.check(&[], || AtError::NotFound { what: what.clone() })?;
            bytes_left -= answer.body.len().min(bytes_left);
            let page: QueryPage<T> = answer.json()?;
            if all.len() + page.items.len() > limits.max_list_rows {
                tracing::warn!(entity, max = limits.max_list_rows, "Autotask query too long");
                return Err(AtError::TooLarge { what, limit: format!("{} rows", limits.max_list_rows) });
            }
            all.extend(page.items);
            let next = page.page_details.and_then(|d| d.next_page_url).filter(|n| !n.trim().is_empty());
            let Some(next) = next else { return Ok(all) };
            let next = url.join(next.trim()).map_err(|_| unexpected(format!("a next-page link of {next:?}")))?;
            if next.origin() != self.zone.url.origin() {
                return Err(unexpected(format!(
                    "a next-page link to another host ({})",
                    next.origin().ascii_serialization()
                )));
            }
            if !visited.insert(next.to_string()) {
                return Err(unexpected(format!("a next-page link to the same page of {what} again")));
            }
            url = next;
        }
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Answer, AtError> {
        let max = self.client.inner.config.limits.max_body_bytes;
        self.client.send(method, url, body, Some(self), max).await
    }

    fn url(&self, path: &str) -> Result<Url, AtError> {
        self.zone.url.join(&format!("V1.0/{path}")).map_err(|_| unexpected(format!("a path of {path:?}")))
    }
}

/// The JSON of a new ticket, and the user-defined field names it carries. Members the client sets itself
/// (`id`, `companyID`, `userDefinedFields`) are not taken from `fields`; a `udf:` key naming the dedupe field is
/// dropped (the dedupe key wins).
fn ticket_body(
    company_id: i64,
    dedupe_udf: &str,
    dedupe_key: &str,
    fields: &Map<String, Value>,
) -> (Map<String, Value>, Vec<String>) {
    let mut body = Map::new();
    let mut udfs = Vec::new();
    let mut names = Vec::new();
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        if let Some(name) = key.strip_prefix(catalog::UDF_PREFIX) {
            if name.trim().eq_ignore_ascii_case(dedupe_udf) {
                continue;
            }
            // A UDF's value is a string on the wire, picklist UDFs included (the value's id as text).
            let value = match value {
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            };
            udfs.push(json!({ "name": name, "value": value }));
            names.push(name.to_string());
        } else if !["id", "companyid", "userdefinedfields"].contains(&key.to_ascii_lowercase().as_str()) {
            body.insert(key.clone(), value.clone());
        }
    }
    body.insert("companyID".into(), json!(company_id));
    udfs.push(json!({ "name": dedupe_udf, "value": dedupe_key }));
    names.push(dedupe_udf.to_string());
    body.insert("userDefinedFields".into(), Value::Array(udfs));
    (body, names)
}

/// Field errors naming a user-defined field get its catalog key (`udf:<name>`).
fn udf_keys(err: AtError, udf_names: &[String]) -> AtError {
    match err {
        AtError::Validation { message, errors } => AtError::Validation {
            message,
            errors: errors
                .into_iter()
                .map(|mut e| {
                    if udf_names.contains(&e.field) {
                        e.field = format!("{}{}", catalog::UDF_PREFIX, e.field);
                    }
                    e
                })
                .collect(),
        },
        other => other,
    }
}

/// The endpoint of an API path, lower case: `…/V1.0/Tickets/query` → `tickets`, `…/V1.0/Tickets/12/Notes` →
/// `tickets/notes` (a child collection). Autotask counts threads per endpoint; the sandbox uses the same names.
pub fn endpoint_of(path: &str) -> String {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect();
    let Some(at) = segments.iter().position(|s| s == "v1.0") else {
        return segments.last().cloned().unwrap_or_default();
    };
    let rest = &segments[at + 1..];
    match rest {
        [entity, id, child, ..] if id.bytes().all(|b| b.is_ascii_digit()) && child != "entityinformation" => {
            format!("{entity}/{child}")
        }
        [entity, ..] => entity.clone(),
        [] => String::new(),
    }
}

/// What a partner calls an endpoint (`tickets/notes` → "the ticket notes").
fn describe(endpoint: &str) -> String {
    match endpoint {
        "tickets/notes" => "the ticket notes".into(),
        "thresholdinformation" => "the threshold information".into(),
        "zoneinformation" => "the zone information".into(),
        "" => "the answer".into(),
        other => format!("the {}", other.replace('/', " ")),
    }
}

fn describe_bytes(bytes: usize) -> String {
    if bytes >= 1024 * 1024 { format!("{} MB", bytes / (1024 * 1024)) } else { format!("{} KB", bytes.div_ceil(1024)) }
}

fn unexpected(reason: impl Into<String>) -> AtError {
    AtError::UnexpectedResponse { reason: reason.into() }
}

fn site_refused(err: CwError) -> AtError {
    match err {
        CwError::SiteRefused { reason } => AtError::SiteRefused { reason },
        other => AtError::SiteRefused { reason: other.to_string() },
    }
}

fn map_transport_error(err: &reqwest::Error, timeout: Duration) -> AtError {
    if let Some(refused) = policy::refused_address(err) {
        return AtError::SiteRefused { reason: format!("{refused}; Autotask must be reachable on the internet.") };
    }
    let reason = if err.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f32())
    } else if err.is_connect() {
        "could not connect".into()
    } else if err.is_body() || err.is_decode() {
        "the connection broke off during the answer".into()
    } else {
        "the connection failed".into()
    };
    AtError::Transient { reason, answered: false }
}

/// An answer read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    endpoint: String,
}

/// The messages of `{"errors": ["…", …]}` (strings, or objects with a `message`); `None` when the body is not that.
fn error_messages(body: &[u8]) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    Some(
        errors
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some(s.clone()),
                other => other.get("message").and_then(Value::as_str).map(str::to_string),
            })
            .collect(),
    )
}

impl Answer {
    /// Maps a non-success status to its error; `fields` are the names a validation message may mention.
    fn check(self, fields: &[&str], not_found: impl FnOnce() -> AtError) -> Result<Self, AtError> {
        let status = self.status;
        if status.is_success() {
            return Ok(self);
        }
        let messages = error_messages(&self.body);
        let lower: Vec<String> = messages.iter().flatten().map(|m| m.to_lowercase()).collect();
        let entity = describe(&self.endpoint).trim_start_matches("the ").to_string();
        let err = match status.as_u16() {
            400 => match messages {
                Some(messages) if !messages.is_empty() => {
                    AtError::Validation { message: messages.join(" "), errors: error::name_fields(&messages, fields) }
                }
                _ => unexpected(format!("HTTP 400 with {}", describe_body(&self.headers, &self.body))),
            },
            // Failed authentication is a 401 with an empty body (vendor: "REST API security and authentication").
            401 if lower.iter().any(|m| m.contains("integrationcode") || m.contains("tracking identifier")) => {
                AtError::Unauthorized { failure: AuthFailure::IntegrationCode }
            }
            401 => AtError::Unauthorized { failure: AuthFailure::Credentials },
            403 => AtError::Forbidden { entity, message: messages.unwrap_or_default().join(" ") },
            404 if lower.iter().any(|m| m.contains("zone information could not be determined")) => {
                AtError::Unauthorized { failure: AuthFailure::UnknownUser }
            }
            404 => not_found(),
            408 => AtError::Transient { reason: "HTTP 408".into(), answered: true },
            429 => AtError::RateLimited {
                retry_after: retry_after(&self.headers),
                limit: error::throttle_of(&lower).unwrap_or(Throttle::Other),
            },
            500 => match messages {
                Some(messages) => match error::classify_500(&messages, fields) {
                    AtError::Forbidden { message, .. } => AtError::Forbidden { entity, message },
                    other => other,
                },
                None => AtError::Transient {
                    reason: format!("HTTP 500 with {}", describe_body(&self.headers, &self.body)),
                    answered: true,
                },
            },
            501..=599 => AtError::Transient { reason: format!("HTTP {}", status.as_u16()), answered: true },
            other => unexpected(format!("HTTP {other}")),
        };
        if !err.is_retryable() {
            tracing::warn!(status = status.as_u16(), endpoint = self.endpoint, error = %err, "Autotask refused a call");
        }
        Err(err)
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, AtError> {
        let html =
            header_str(&self.headers, CONTENT_TYPE.as_str()).is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
        if html {
            return Err(unexpected("an HTML page"));
        }
        serde_json::from_slice(&self.body).map_err(|err| {
            let text = String::from_utf8_lossy(&self.body);
            if text.trim_start().starts_with('<') {
                unexpected("an HTML page")
            } else if err.is_eof() {
                unexpected("a truncated answer")
            } else if err.is_data() {
                unexpected(format!("JSON of an unexpected shape: {err}"))
            } else {
                unexpected("an answer that is not JSON")
            }
        })
    }
}

fn describe_body(headers: &HeaderMap, body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    if header_str(headers, CONTENT_TYPE.as_str()).is_some_and(|ct| ct.contains("html"))
        || text.trim_start().starts_with('<')
    {
        "an HTML page"
    } else if text.trim().is_empty() {
        "no body"
    } else {
        "an unreadable body"
    }
}

/// `Retry-After` in seconds, capped at an hour.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = header_str(headers, "retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_hide_the_secret() {
        let creds = AtCredentials::new("api@msp.example", "TopSecret", "CODE");
        let debug = format!("{creds:?}");
        assert!(!debug.contains("TopSecret") && debug.contains("api@msp.example"), "{debug}");
        let parsed: AtCredentials =
            serde_json::from_str(r#"{"username":"u","secret":"s","integration_code":"c"}"#).expect("json");
        assert_eq!(parsed.dedupe_udf, DEFAULT_DEDUPE_UDF, "older stored credentials get the default field");
    }

    #[test]
    fn endpoints_are_named_as_autotask_counts_threads() {
        assert_eq!(endpoint_of("/ATServicesRest/V1.0/Tickets/query"), "tickets");
        assert_eq!(endpoint_of("/atservicesrest/v1.0/Tickets"), "tickets");
        assert_eq!(endpoint_of("/ATServicesRest/V1.0/Tickets/42/Notes"), "tickets/notes");
        assert_eq!(endpoint_of("/ATServicesRest/V1.0/Tickets/entityInformation/fields"), "tickets");
        assert_eq!(endpoint_of("/ATServicesRest/V1.0/Companies/query/next"), "companies");
        assert_eq!(endpoint_of("/atservicesrest/v1.0/zoneInformation"), "zoneinformation");
        assert_eq!(describe("tickets/notes"), "the ticket notes");
    }

    #[test]
    fn the_ticket_body_carries_the_dedupe_key_in_its_udf() {
        let fields: Map<String, Value> = serde_json::from_value(json!({
            "title": "Leak", "status": 1, "companyID": 999, "id": 5,
            "udf:Customer Tier": 1, "udf:Notes": "x", "udf:dwid reference": "spoofed", "dueDateTime": null,
        }))
        .expect("map");
        let (body, names) = ticket_body(42, "DWID Reference", "dwid:abc", &fields);
        assert_eq!(body["companyID"], 42);
        assert!(body.get("id").is_none() && body.get("dueDateTime").is_none());
        assert_eq!(
            body["userDefinedFields"],
            json!([
                {"name": "Customer Tier", "value": "1"},
                {"name": "Notes", "value": "x"},
                {"name": "DWID Reference", "value": "dwid:abc"},
            ])
        );
        assert_eq!(names, ["Customer Tier", "Notes", "DWID Reference"]);
        let err = udf_keys(
            AtError::Validation {
                message: "x".into(),
                errors: vec![FieldError { field: "Customer Tier".into(), code: String::new(), message: "x".into() }],
            },
            &names,
        );
        assert_eq!(err.field_errors()[0].field, "udf:Customer Tier");
    }

    #[test]
    fn error_bodies_are_read_as_strings_or_objects() {
        assert_eq!(error_messages(br#"{"errors":["a", {"message":"b"}]}"#), Some(vec!["a".into(), "b".into()]));
        assert_eq!(error_messages(b""), None);
        assert_eq!(error_messages(b"<html>"), None);
        assert_eq!(error_messages(br#"{"errors":[]}"#), Some(vec![]));
    }
}
