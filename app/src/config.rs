//! The one typed configuration, read from the environment (see `.env.example` for every variable).
//!
//! Leptos' own settings (site address, site root, output name) stay in `[[workspace.metadata.leptos]]` and the
//! `LEPTOS_*` variables; everything the product decides lives here.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// For a developer's machine (`APP_MODE=dev`, as `make run` sets): seeds a demo partner into an empty database,
    /// plain-HTTP cookies, the PSA sandboxes and loopback PSA hosts allowed.
    Dev,
    /// The default: `__Host-` Secure cookies, HSTS, no demo data, a secrets key readable by its owner only.
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub database_url: String,
    pub database_max_connections: u32,
    pub data_dir: PathBuf,
    /// Where the 32-byte key that encrypts stored ConnectWise secrets is read from.
    pub secrets_key_file: PathBuf,
    pub log_filter: String,
    pub session_ttl: Duration,
    pub request_timeout: Duration,
    /// How many reverse proxies in front of the server append to `X-Forwarded-For` (`TRUSTED_PROXY_HOPS`, 0 = the
    /// client address is the socket's peer). The client is the entry this many places from the right.
    pub trusted_proxy_hops: usize,
    /// The origin browsers load the dashboard from (`PUBLIC_URL`, e.g. `https://dash.example.com`); state-changing
    /// requests from any other origin are refused. Unset: the request's own `Host`.
    pub public_origin: Option<String>,
    /// Sign-in attempts allowed per (email, client address) and per client address within `sign_in_window`, and
    /// per email from anywhere within the longer `sign_in_global_window`.
    pub sign_in_max_failures_per_email: u32,
    pub sign_in_max_failures_per_ip: u32,
    pub sign_in_window: Duration,
    pub sign_in_max_failures_per_email_global: u32,
    pub sign_in_global_window: Duration,
    /// Password hashes (argon2, ~19 MiB and tens of ms of a core each) computed at once, how many requests may wait
    /// for one, and how long: beyond either, sign-in answers 429 with `Retry-After`.
    pub sign_in_max_concurrent_hashes: usize,
    pub sign_in_max_waiting: usize,
    pub sign_in_hash_wait: Duration,
    /// The `clientId` header sent to ConnectWise (`CONNECTWISE_CLIENT_ID`); dev mode defaults to the sandbox's.
    pub connectwise_client_id: Option<String>,
    pub connectwise_connect_timeout: Duration,
    /// The whole of one ConnectWise call.
    pub connectwise_timeout: Duration,
    /// Rows one ConnectWise list may have over all its pages, and how long reading one may take.
    pub connectwise_max_list_rows: usize,
    pub connectwise_operation_deadline: Duration,
    /// Where dev mode serves the ConnectWise sandbox in-process (`CW_SANDBOX_ADDR`, `off` disables; never in
    /// production).
    pub cw_sandbox_addr: Option<std::net::SocketAddr>,
    /// Where the Autotask client asks for an API user's zone (`AUTOTASK_ZONE_DISCOVERY_URL`, an origin; default
    /// `https://webservices.autotask.net`; the Autotask sandbox's address in dev mode when pointed at it).
    pub autotask_zone_discovery_url: String,
    /// Where dev mode serves the Autotask sandbox in-process (`AT_SANDBOX_ADDR`, `off` disables; never in
    /// production). Zone discovery then asks it unless `AUTOTASK_ZONE_DISCOVERY_URL` says otherwise.
    pub at_sandbox_addr: Option<std::net::SocketAddr>,
    /// Run the delivery worker in this process (`DELIVERY_WORKER`, default true).
    pub delivery_worker: bool,
    /// Ticket deliveries in flight per process, and per integration per process.
    pub delivery_concurrency: usize,
    pub delivery_per_integration: usize,
    /// How long a worker's claim on a delivery lasts (at least 5 × the ConnectWise timeout).
    pub delivery_lease: Duration,
    /// How often a worker looks for due deliveries it was not told about.
    pub delivery_poll: Duration,
    /// How often a worker renews its heartbeat row (`DELIVERY_HEARTBEAT_MS`, default 2 s).
    pub delivery_heartbeat: Duration,
    /// A worker whose heartbeat is older than this is declared dead and its leases are taken over at once
    /// (`DELIVERY_WORKER_STALE_SECS`, default 8 s; at least 3 heartbeats).
    pub delivery_worker_stale: Duration,
    /// Attempts in all before a transiently failing delivery is marked Failed.
    pub delivery_max_attempts: u32,
    /// Backoff after the first transient failure, and the longest backoff.
    pub delivery_retry_base: Duration,
    pub delivery_retry_max: Duration,
    /// Per partner: integrations, organizations, and deliveries waiting (Pending or Retrying) at most. Reaching one
    /// refuses the change with a sentence that names the limit.
    pub max_integrations_per_partner: usize,
    pub max_organizations_per_partner: usize,
    pub max_queued_deliveries_per_partner: usize,
    /// Import API limits: records per batch and body size.
    pub import_max_records: usize,
    pub import_max_body_bytes: usize,
    /// Import API requests allowed per API token per minute (429 with `Retry-After` beyond).
    pub import_requests_per_minute: u32,
    /// Where `GET /metrics` is served (`METRICS_ADDR`, e.g. `127.0.0.1:9090`); off when unset. Never on the
    /// dashboard's own address, so the metrics need no session and reach only those who can reach this one.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
    #[error("{0}")]
    Replaced(&'static str),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds the configuration from any variable source (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Production unless told otherwise: a deployment that forgets the variable must not run with demo data and
        // plain-HTTP cookies.
        let mode = match get("APP_MODE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("dev") | Some("development") => Mode::Dev,
            None | Some("production") | Some("prod") => Mode::Production,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "APP_MODE",
                    expected: "dev or production",
                    value: other.into(),
                });
            }
        };
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = get("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}/dwid.db", data_dir.display()));
        let secrets_key_file =
            get("SECRETS_KEY_FILE").map(PathBuf::from).unwrap_or_else(|| data_dir.join("secrets.key"));
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => value.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError::Invalid {
                    name,
                    expected: "a positive whole number",
                    value,
                }),
            }
        };
        let connectwise_client_id = get("CONNECTWISE_CLIENT_ID")
            .map(|id| id.trim().to_string())
            .or_else(|| (mode == Mode::Dev).then(|| crate::connectwise::demo::DEMO_CLIENT_ID.to_string()));
        let cw_sandbox_addr = match (mode, get("CW_SANDBOX_ADDR").map(|v| v.trim().to_ascii_lowercase())) {
            (_, Some(off)) if off == "off" || off == "false" || off == "none" => None,
            (Mode::Production, None) => None,
            (Mode::Production, Some(value)) => {
                return Err(ConfigError::Invalid {
                    name: "CW_SANDBOX_ADDR",
                    expected: "off in production (the sandbox is for dev mode only)",
                    value,
                });
            }
            (Mode::Dev, value) => {
                let value = value.unwrap_or_else(|| crate::connectwise::demo::DEMO_SANDBOX_ADDR.to_string());
                Some(value.parse().map_err(|_| ConfigError::Invalid {
                    name: "CW_SANDBOX_ADDR",
                    expected: "an address and port like 127.0.0.1:3005, or off",
                    value,
                })?)
            }
        };
        let at_sandbox_addr = match (mode, get("AT_SANDBOX_ADDR").map(|v| v.trim().to_ascii_lowercase())) {
            (_, Some(off)) if off == "off" || off == "false" || off == "none" => None,
            (Mode::Production, None) => None,
            (Mode::Production, Some(value)) => {
                return Err(ConfigError::Invalid {
                    name: "AT_SANDBOX_ADDR",
                    expected: "off in production (the sandbox is for dev mode only)",
                    value,
                });
            }
            (Mode::Dev, value) => {
                let value = value.unwrap_or_else(|| crate::autotask::demo::DEMO_SANDBOX_ADDR.to_string());
                Some(value.parse::<std::net::SocketAddr>().map_err(|_| ConfigError::Invalid {
                    name: "AT_SANDBOX_ADDR",
                    expected: "an address and port like 127.0.0.1:3006, or off",
                    value,
                })?)
            }
        };
        let autotask_zone_discovery_url = match get("AUTOTASK_ZONE_DISCOVERY_URL") {
            // Dev mode asks the in-process sandbox for zones, unless told otherwise.
            None => match at_sandbox_addr {
                Some(addr) => format!("http://{addr}"),
                None => crate::autotask::DEFAULT_ZONE_DISCOVERY_URL.to_string(),
            },
            Some(value) => parse_origin(&value)
                .filter(|origin| mode == Mode::Dev || origin.starts_with("https://"))
                .ok_or(ConfigError::Invalid {
                    name: "AUTOTASK_ZONE_DISCOVERY_URL",
                    expected: "an origin like https://webservices.autotask.net (https in production)",
                    value,
                })?,
        };
        let connectwise_timeout = Duration::from_secs(number("CONNECTWISE_TIMEOUT_SECS", 30)?);
        let delivery_lease = Duration::from_secs(number("DELIVERY_LEASE_SECS", 300)?);
        if delivery_lease < connectwise_timeout * 5 {
            return Err(ConfigError::Invalid {
                name: "DELIVERY_LEASE_SECS",
                expected: "at least 5 × CONNECTWISE_TIMEOUT_SECS (an attempt makes up to four ConnectWise calls)",
                value: delivery_lease.as_secs().to_string(),
            });
        }
        let delivery_heartbeat = Duration::from_millis(number("DELIVERY_HEARTBEAT_MS", 2000)?.max(100));
        let delivery_worker_stale = Duration::from_secs(number("DELIVERY_WORKER_STALE_SECS", 8)?);
        if delivery_worker_stale < delivery_heartbeat * 3 {
            return Err(ConfigError::Invalid {
                name: "DELIVERY_WORKER_STALE_SECS",
                expected: "at least 3 × DELIVERY_HEARTBEAT_MS (a live worker must not be declared dead)",
                value: delivery_worker_stale.as_secs().to_string(),
            });
        }
        if get("TRUST_PROXY_HEADERS").is_some() {
            return Err(ConfigError::Replaced(
                "TRUST_PROXY_HEADERS was replaced by TRUSTED_PROXY_HOPS: set it to the number of reverse proxies in \
                 front of the server that append to X-Forwarded-For (1 for one load balancer), and remove \
                 TRUST_PROXY_HEADERS",
            ));
        }
        let public_origin = match get("PUBLIC_URL") {
            None => None,
            Some(value) => Some(parse_origin(&value).ok_or(ConfigError::Invalid {
                name: "PUBLIC_URL",
                expected: "the dashboard's origin, like https://dash.example.com (scheme, host and optional port only)",
                value,
            })?),
        };
        let whole = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => value.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    name,
                    expected: "a whole number (0 or more)",
                    value,
                }),
            }
        };
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2) as u64;
        let delivery_worker = match get("DELIVERY_WORKER").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("1") | Some("true") | Some("yes") | Some("on") => true,
            Some("0") | Some("false") | Some("no") | Some("off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DELIVERY_WORKER",
                    expected: "true or false",
                    value: other.into(),
                });
            }
        };
        let metrics_addr = match get("METRICS_ADDR").map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(off) if off == "off" || off == "false" || off == "none" => None,
            Some(value) => Some(value.parse().map_err(|_| ConfigError::Invalid {
                name: "METRICS_ADDR",
                expected: "an address and port like 127.0.0.1:9090, or off",
                value,
            })?),
        };
        Ok(Self {
            mode,
            database_url,
            database_max_connections: number("DATABASE_MAX_CONNECTIONS", 10)? as u32,
            data_dir,
            secrets_key_file,
            log_filter: get("LOG_LEVEL").or_else(|| get("RUST_LOG")).unwrap_or_else(|| "info".into()),
            session_ttl: Duration::from_secs(number("SESSION_TTL_HOURS", 12)? * 3600),
            request_timeout: Duration::from_secs(number("REQUEST_TIMEOUT_SECS", 30)?),
            trusted_proxy_hops: whole("TRUSTED_PROXY_HOPS", 0)?.min(16) as usize,
            public_origin,
            sign_in_max_failures_per_email: number("SIGN_IN_MAX_FAILURES_PER_EMAIL", 5)?.min(1_000_000) as u32,
            sign_in_max_failures_per_ip: number("SIGN_IN_MAX_FAILURES_PER_IP", 20)?.min(1_000_000) as u32,
            sign_in_window: Duration::from_secs(number("SIGN_IN_WINDOW_MINUTES", 15)? * 60),
            sign_in_max_failures_per_email_global: number("SIGN_IN_MAX_FAILURES_PER_EMAIL_GLOBAL", 50)?.min(1_000_000)
                as u32,
            sign_in_global_window: Duration::from_secs(number("SIGN_IN_GLOBAL_WINDOW_MINUTES", 60)? * 60),
            sign_in_max_concurrent_hashes: number("SIGN_IN_MAX_CONCURRENT_HASHES", cores)?.min(256) as usize,
            sign_in_max_waiting: whole("SIGN_IN_MAX_WAITING", 32)?.min(10_000) as usize,
            sign_in_hash_wait: Duration::from_millis(number("SIGN_IN_HASH_WAIT_MS", 2000)?),
            connectwise_client_id,
            connectwise_connect_timeout: Duration::from_secs(number("CONNECTWISE_CONNECT_TIMEOUT_SECS", 5)?),
            connectwise_timeout,
            connectwise_max_list_rows: number("CONNECTWISE_MAX_LIST_ROWS", 100_000)? as usize,
            connectwise_operation_deadline: Duration::from_secs(number("CONNECTWISE_OPERATION_DEADLINE_SECS", 120)?),
            cw_sandbox_addr,
            autotask_zone_discovery_url,
            at_sandbox_addr,
            delivery_worker,
            delivery_concurrency: number("DELIVERY_CONCURRENCY", 16)? as usize,
            delivery_per_integration: number("DELIVERY_PER_INTEGRATION", 8)? as usize,
            delivery_lease,
            delivery_poll: Duration::from_millis(number("DELIVERY_POLL_MS", 1000)?),
            delivery_heartbeat,
            delivery_worker_stale,
            delivery_max_attempts: number("DELIVERY_MAX_ATTEMPTS", 25)?.min(1000) as u32,
            delivery_retry_base: Duration::from_millis(number("DELIVERY_RETRY_BASE_MS", 2000)?),
            delivery_retry_max: Duration::from_secs(number("DELIVERY_RETRY_MAX_SECS", 900)?),
            max_integrations_per_partner: number("MAX_INTEGRATIONS_PER_PARTNER", 1_000)? as usize,
            max_organizations_per_partner: number("MAX_ORGANIZATIONS_PER_PARTNER", 50_000)? as usize,
            max_queued_deliveries_per_partner: number("MAX_QUEUED_DELIVERIES_PER_PARTNER", 1_000_000)? as usize,
            import_max_records: number("IMPORT_MAX_RECORDS", 10_000)? as usize,
            import_max_body_bytes: (number("IMPORT_MAX_BODY_MB", 10)? * 1024 * 1024) as usize,
            import_requests_per_minute: number("IMPORT_REQUESTS_PER_MINUTE", 60)?.min(1_000_000) as u32,
            metrics_addr,
        })
    }

    pub fn is_production(&self) -> bool {
        self.mode == Mode::Production
    }
}

/// `scheme://host[:port]` of a URL with nothing after the authority (a trailing `/` is allowed), lower-cased; `None`
/// for anything else.
pub fn parse_origin(value: &str) -> Option<String> {
    let value = value.trim().trim_end_matches('/');
    let (scheme, authority) = value.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let valid_authority = !authority.is_empty()
        && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && !authority.starts_with(':');
    ((scheme == "http" || scheme == "https") && valid_authority)
        .then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_a_production_sqlite_setup() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.mode, Mode::Production, "a server started without APP_MODE behaves as production");
        assert_eq!(c.cw_sandbox_addr, None);
        assert_eq!(c.database_url, "sqlite://data/dwid.db");
        assert_eq!(c.secrets_key_file, PathBuf::from("data/secrets.key"));
        assert_eq!(c.session_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.trusted_proxy_hops, 0);
        assert_eq!(c.public_origin, None);
        assert_eq!(config(&[("APP_MODE", "dev")]).expect("dev").mode, Mode::Dev);
    }

    #[test]
    fn proxy_hops_replace_the_old_flag_and_origins_are_checked() {
        let err = config(&[("TRUST_PROXY_HEADERS", "true")]).expect_err("replaced");
        assert!(err.to_string().contains("TRUSTED_PROXY_HOPS"), "{err}");
        assert_eq!(config(&[("TRUSTED_PROXY_HOPS", "2")]).expect("hops").trusted_proxy_hops, 2);
        let c = config(&[("PUBLIC_URL", "HTTPS://Dash.Example.com/")]).expect("origin");
        assert_eq!(c.public_origin.as_deref(), Some("https://dash.example.com"));
        for bad in ["dash.example.com", "https://dash.example.com/path", "ftp://x", "https://a@b"] {
            assert!(config(&[("PUBLIC_URL", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_every_variable() {
        let c = config(&[
            ("APP_MODE", "production"),
            ("DATABASE_URL", "postgres://u:p@db/app"),
            ("DATA_DIR", "/var/lib/dwid"),
            ("SESSION_TTL_HOURS", "2"),
            ("TRUSTED_PROXY_HOPS", "1"),
            ("SIGN_IN_MAX_FAILURES_PER_EMAIL", "3"),
        ])
        .expect("valid");
        assert!(c.is_production());
        assert_eq!(c.database_url, "postgres://u:p@db/app");
        assert_eq!(c.secrets_key_file, PathBuf::from("/var/lib/dwid/secrets.key"));
        assert_eq!(c.session_ttl, Duration::from_secs(7200));
        assert_eq!(c.trusted_proxy_hops, 1);
        assert_eq!(c.sign_in_max_failures_per_email, 3);
    }

    #[test]
    fn per_partner_caps() {
        let defaults = config(&[]).expect("defaults");
        assert_eq!(defaults.max_integrations_per_partner, 1_000);
        assert_eq!(defaults.max_organizations_per_partner, 50_000);
        assert_eq!(defaults.max_queued_deliveries_per_partner, 1_000_000);
        let custom = config(&[
            ("MAX_INTEGRATIONS_PER_PARTNER", "3"),
            ("MAX_ORGANIZATIONS_PER_PARTNER", "10"),
            ("MAX_QUEUED_DELIVERIES_PER_PARTNER", "100"),
        ])
        .expect("custom");
        assert_eq!((custom.max_integrations_per_partner, custom.max_organizations_per_partner), (3, 10));
        assert_eq!(custom.max_queued_deliveries_per_partner, 100);
        let err = config(&[("MAX_INTEGRATIONS_PER_PARTNER", "0")]).expect_err("zero");
        assert!(err.to_string().contains("MAX_INTEGRATIONS_PER_PARTNER"), "{err}");
    }

    #[test]
    fn rejects_bad_values_with_the_variable_name() {
        let err = config(&[("APP_MODE", "staging")]).expect_err("bad mode");
        assert!(err.to_string().contains("APP_MODE"));
        let err = config(&[("SESSION_TTL_HOURS", "-1")]).expect_err("bad number");
        assert!(err.to_string().contains("SESSION_TTL_HOURS"));
        let err = config(&[("TRUSTED_PROXY_HOPS", "maybe")]).expect_err("bad number");
        assert!(err.to_string().contains("TRUSTED_PROXY_HOPS"));
    }

    #[test]
    fn connectwise_settings_and_the_dev_sandbox() {
        let dev = config(&[("APP_MODE", "dev")]).expect("defaults");
        assert_eq!(dev.connectwise_client_id.as_deref(), Some(crate::connectwise::demo::DEMO_CLIENT_ID));
        assert_eq!(dev.connectwise_connect_timeout, Duration::from_secs(5));
        assert_eq!(dev.connectwise_timeout, Duration::from_secs(30));
        assert_eq!(dev.cw_sandbox_addr, Some("127.0.0.1:3005".parse().expect("addr")));
        assert_eq!(config(&[("APP_MODE", "dev"), ("CW_SANDBOX_ADDR", "off")]).expect("off").cw_sandbox_addr, None);
        let custom = config(&[
            ("APP_MODE", "dev"),
            ("CW_SANDBOX_ADDR", "127.0.0.1:4005"),
            ("CONNECTWISE_CLIENT_ID", "abc"),
            ("CONNECTWISE_CONNECT_TIMEOUT_SECS", "2"),
            ("CONNECTWISE_TIMEOUT_SECS", "10"),
        ])
        .expect("custom");
        assert_eq!(custom.cw_sandbox_addr, Some("127.0.0.1:4005".parse().expect("addr")));
        assert_eq!(custom.connectwise_client_id.as_deref(), Some("abc"));
        assert_eq!(custom.connectwise_timeout, Duration::from_secs(10));
        assert_eq!(dev.connectwise_max_list_rows, 100_000);
        assert_eq!(dev.connectwise_operation_deadline, Duration::from_secs(120));
        let bounded = config(&[("CONNECTWISE_MAX_LIST_ROWS", "5000"), ("CONNECTWISE_OPERATION_DEADLINE_SECS", "30")])
            .expect("bounded");
        assert_eq!(bounded.connectwise_max_list_rows, 5000);
        assert_eq!(bounded.connectwise_operation_deadline, Duration::from_secs(30));
        let production = config(&[("APP_MODE", "production")]).expect("production");
        assert_eq!(production.cw_sandbox_addr, None);
        assert_eq!(production.connectwise_client_id, None);
        let err = config(&[("APP_MODE", "production"), ("CW_SANDBOX_ADDR", "127.0.0.1:3005")]).expect_err("prod");
        assert!(err.to_string().contains("CW_SANDBOX_ADDR"));
        let err = config(&[("APP_MODE", "dev"), ("CW_SANDBOX_ADDR", "nowhere")]).expect_err("bad addr");
        assert!(err.to_string().contains("CW_SANDBOX_ADDR"));
        let err = config(&[("CONNECTWISE_TIMEOUT_SECS", "0")]).expect_err("zero");
        assert!(err.to_string().contains("CONNECTWISE_TIMEOUT_SECS"));
    }

    #[test]
    fn autotask_zone_discovery_defaults_to_autotask_and_is_https_in_production() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.autotask_zone_discovery_url, "https://webservices.autotask.net");
        assert_eq!(c.at_sandbox_addr, None, "no sandbox in production");
        let dev = config(&[("APP_MODE", "dev")]).expect("dev");
        assert_eq!(dev.at_sandbox_addr, Some("127.0.0.1:3006".parse().expect("addr")));
        assert_eq!(dev.autotask_zone_discovery_url, "http://127.0.0.1:3006", "dev mode asks the sandbox");
        assert!(config(&[("APP_MODE", "production"), ("AT_SANDBOX_ADDR", "127.0.0.1:3006")]).is_err());
        let off = config(&[("APP_MODE", "dev"), ("AT_SANDBOX_ADDR", "off")]).expect("off");
        assert_eq!(
            (off.at_sandbox_addr, off.autotask_zone_discovery_url.as_str()),
            (None, "https://webservices.autotask.net")
        );
        let dev = config(&[("APP_MODE", "dev"), ("AUTOTASK_ZONE_DISCOVERY_URL", "http://127.0.0.1:3006/")]);
        assert_eq!(dev.expect("dev").autotask_zone_discovery_url, "http://127.0.0.1:3006");
        let err = config(&[("AUTOTASK_ZONE_DISCOVERY_URL", "http://webservices.autotask.net")]).expect_err("http");
        assert!(err.to_string().contains("AUTOTASK_ZONE_DISCOVERY_URL"), "{err}");
        assert!(config(&[("AUTOTASK_ZONE_DISCOVERY_URL", "https://x/zone")]).is_err(), "an origin only");
    }

    #[test]
    fn delivery_and_import_settings() {
        let dev = config(&[]).expect("defaults");
        assert!(dev.delivery_worker);
        assert_eq!((dev.delivery_concurrency, dev.delivery_per_integration), (16, 8));
        assert_eq!(dev.delivery_lease, Duration::from_secs(300));
        assert_eq!(
            (dev.delivery_heartbeat, dev.delivery_worker_stale),
            (Duration::from_secs(2), Duration::from_secs(8))
        );
        assert_eq!((dev.import_max_records, dev.import_max_body_bytes), (10_000, 10 << 20));
        let custom = config(&[
            ("DELIVERY_WORKER", "off"),
            ("DELIVERY_CONCURRENCY", "4"),
            ("CONNECTWISE_TIMEOUT_SECS", "2"),
            ("DELIVERY_LEASE_SECS", "10"),
            ("DELIVERY_RETRY_BASE_MS", "50"),
            ("IMPORT_MAX_BODY_MB", "1"),
        ])
        .expect("custom");
        assert!(!custom.delivery_worker);
        assert_eq!(custom.delivery_concurrency, 4);
        assert_eq!(custom.delivery_lease, Duration::from_secs(10));
        assert_eq!(custom.delivery_retry_base, Duration::from_millis(50));
        assert_eq!(custom.import_max_body_bytes, 1 << 20);
        // A lease shorter than an attempt can take is refused, naming both settings.
        let err = config(&[("DELIVERY_LEASE_SECS", "60")]).expect_err("short lease");
        assert!(
            err.to_string().contains("DELIVERY_LEASE_SECS") && err.to_string().contains("CONNECTWISE_TIMEOUT_SECS")
        );
        // A worker could be declared dead between two of its renewals: refused.
        let err = config(&[("DELIVERY_HEARTBEAT_MS", "3000")]).expect_err("stale within 3 heartbeats");
        assert!(err.to_string().contains("DELIVERY_WORKER_STALE_SECS"));
        let err = config(&[("DELIVERY_WORKER", "sometimes")]).expect_err("bad flag");
        assert!(err.to_string().contains("DELIVERY_WORKER"));
    }

    #[test]
    fn metrics_are_off_unless_given_an_address() {
        assert_eq!(config(&[]).expect("defaults").metrics_addr, None);
        assert_eq!(config(&[("METRICS_ADDR", "off")]).expect("off").metrics_addr, None);
        let on = config(&[("METRICS_ADDR", " 0.0.0.0:9090 ")]).expect("on");
        assert_eq!(on.metrics_addr, Some("0.0.0.0:9090".parse().expect("addr")));
        let err = config(&[("METRICS_ADDR", "9090")]).expect_err("no host");
        assert!(err.to_string().contains("METRICS_ADDR"), "{err}");
    }
}
