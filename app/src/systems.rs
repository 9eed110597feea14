//! The registry of ticketing systems (server only): one [`Connector`] per [`System`], built once per process from
//! the configuration. Registering a system is one line in [`Ticketing::from_config`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::request_budget::RequestBudgets;
use crate::ticketing::{Connection, Connector, ErrorKind, Session, System, TicketingError};

/// A system's client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("could not build the {system} client: {reason}")]
pub struct BuildError {
    pub system: &'static str,
    pub reason: String,
}

/// Every system's connector; cheap to clone.
#[derive(Clone)]
pub struct Ticketing {
    connectors: Arc<BTreeMap<System, Arc<dyn Connector>>>,
}

impl std::fmt::Debug for Ticketing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.connectors.keys()).finish()
    }
}

impl Ticketing {
    pub fn new(connectors: impl IntoIterator<Item = Arc<dyn Connector>>) -> Self {
        Self { connectors: Arc::new(connectors.into_iter().map(|c| (c.system(), c)).collect()) }
    }

    /// Every system, configured from `config`, counting its answers in `metrics` and every account's requests in
    /// `budgets`.
    pub fn from_config(config: &Config, metrics: &Metrics, budgets: RequestBudgets) -> Result<Self, BuildError> {
        let connectwise = crate::connectwise::CwClient::new(connectwise_config(config))
            .map_err(|err| BuildError { system: "ConnectWise", reason: err.to_string() })?
            .with_metrics(metrics)
            .with_budgets(budgets.clone());
        let autotask = crate::autotask::AtClient::new(autotask_config(config))
            .map_err(|err| BuildError { system: "Autotask", reason: err.to_string() })?
            .with_budgets(budgets);
        Ok(Self::new([Arc::new(connectwise) as Arc<dyn Connector>, Arc::new(autotask)]))
    }

    pub fn connector(&self, system: System) -> Result<&Arc<dyn Connector>, TicketingError> {
        self.connectors.get(&system).ok_or_else(|| {
            TicketingError::new(
                ErrorKind::Refused,
                format!("{} is not available on this server: contact support.", system.label()),
            )
        })
    }

    /// A session for the connection, by its system's connector.
    pub async fn session(&self, connection: &Connection) -> Result<Box<dyn Session>, TicketingError> {
        self.connector(connection.system)?.session(connection).await
    }

    /// The system's ticket fields when every account has the same ([`Connector::fixed_catalog`]).
    pub fn fixed_catalog(&self, system: System) -> Option<crate::mapping::Catalog> {
        self.connectors.get(&system).and_then(|c| c.fixed_catalog())
    }

    /// The longest one call of this system can take ([`Connector::call_timeout`]).
    pub fn call_timeout(&self, system: System) -> Duration {
        self.connectors.get(&system).map_or_else(|| self.longest_call(), |c| c.call_timeout())
    }

    /// The longest one call of any system can take.
    pub fn longest_call(&self) -> Duration {
        self.connectors.values().map(|c| c.call_timeout()).max().unwrap_or(Duration::from_secs(30))
    }
}

/// The ConnectWise client's settings from the application's configuration.
pub fn connectwise_config(config: &Config) -> crate::connectwise::ClientConfig {
    crate::connectwise::ClientConfig {
        client_id: config.connectwise_client_id.clone(),
        connect_timeout: config.connectwise_connect_timeout,
        timeout: config.connectwise_timeout,
        policy: site_policy(config),
        limits: limits(config),
    }
}

/// The Autotask client's settings: Autotask's zone discovery address, the PSA timeouts and limits.
pub fn autotask_config(config: &Config) -> crate::autotask::AtConfig {
    crate::autotask::AtConfig {
        discovery_url: config.autotask_zone_discovery_url.clone(),
        connect_timeout: config.connectwise_connect_timeout,
        timeout: config.connectwise_timeout,
        policy: site_policy(config),
        limits: limits(config),
        thread_limit: crate::autotask::DEFAULT_THREAD_LIMIT,
    }
}

/// Which hosts a PSA client may call: the production rules, or dev mode's (loopback allowed).
fn site_policy(config: &Config) -> crate::connectwise::SitePolicy {
    use crate::connectwise::SitePolicy;
    if config.is_production() { SitePolicy::production() } else { SitePolicy::dev() }
}

/// How much a PSA client reads from one account.
fn limits(config: &Config) -> crate::connectwise::Limits {
    crate::connectwise::Limits {
        max_list_rows: config.connectwise_max_list_rows,
        operation_deadline: config.connectwise_operation_deadline,
        ..crate::connectwise::Limits::default()
    }
}
