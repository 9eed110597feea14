//! The state every server function and background task shares (server only). It sits low in the module graph:
//! it holds handles (database, configuration, the ticketing systems, the worker's wake-up) and imports none of the
//! features that read it.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::db::Db;
use crate::secrets::SecretBox;
use crate::systems::Ticketing;

/// Passed to the router and provided to every server function as context; no globals.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub config: Arc<Config>,
    /// Every ticketing system's client (one connection pool and discovery cache each, for the process).
    pub ticketing: Ticketing,
    /// Every PSA account's request budget, counted in the database for all processes.
    pub budgets: crate::request_budget::RequestBudgets,
    /// Seals and opens the PSA credentials partners store.
    pub secrets: SecretBox,
    /// Bounds the password hashing sign-in does (slots, waiting room).
    pub sign_in_slots: Arc<crate::hash_slots::HashSlots>,
    /// Wakes this process's delivery worker when deliveries become due (imports, Retry, Enable).
    pub deliveries: crate::wake::Wake,
    /// The process's Prometheus metrics (served on `METRICS_ADDR`).
    pub metrics: crate::metrics::Metrics,
}

impl AppState {
    /// The state of one process; what is derived from the configuration (the ticketing clients, the sign-in hashing
    /// slots, the worker's wake-up, the metrics the clients report into) is made here, so every caller builds it the
    /// same way.
    pub fn new(
        leptos_options: LeptosOptions,
        db: Db,
        config: Config,
        secrets: SecretBox,
    ) -> Result<Self, crate::systems::BuildError> {
        let sign_in_slots = Arc::new(crate::hash_slots::HashSlots::from_config(&config));
        let metrics = crate::metrics::Metrics::new();
        let budgets =
            crate::request_budget::RequestBudgets::new(db.clone()).with_metrics(metrics.request_budget_decisions());
        let ticketing = Ticketing::from_config(&config, &metrics, budgets.clone())?;
        Ok(Self {
            budgets,
            leptos_options,
            db,
            config: Arc::new(config),
            ticketing,
            secrets,
            sign_in_slots,
            deliveries: Default::default(),
            metrics,
        })
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The database of the current request (server functions only).
pub fn db() -> Db {
    leptos::prelude::expect_context::<AppState>().db
}

/// Wakes the delivery worker of this process (server functions only).
pub fn wake_deliveries() {
    if let Some(state) = leptos::prelude::use_context::<AppState>() {
        state.deliveries.wake();
    }
}
