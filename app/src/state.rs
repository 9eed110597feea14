//! The state every server function and background task shares (server only).

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::connectwise::CwClient;
use crate::db::Db;
use crate::secrets::SecretBox;

/// Passed to the router and provided to every server function as context; no globals.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub config: Arc<Config>,
    /// The ConnectWise client (one connection pool and codebase cache for the process).
    pub connectwise: CwClient,
    /// Seals and opens the ConnectWise credentials partners store.
    pub secrets: SecretBox,
    /// Bounds the password hashing sign-in does (slots, waiting room).
    pub sign_in_slots: Arc<crate::auth::slots::HashSlots>,
    /// Wakes this process's delivery worker when deliveries become due (imports, Retry, Enable).
    pub deliveries: crate::delivery::worker::Wake,
    /// The process's Prometheus metrics (served on `METRICS_ADDR`).
    pub metrics: crate::metrics::Metrics,
}

impl AppState {
    /// The state of one process; what is derived from the configuration (the sign-in hashing slots, the worker's
    /// wake-up, the metrics, which the ConnectWise client reports into) is made here, so every caller builds it the
    /// same way.
    pub fn new(
        leptos_options: LeptosOptions,
        db: Db,
        config: Config,
        connectwise: CwClient,
        secrets: SecretBox,
    ) -> Self {
        let sign_in_slots = Arc::new(crate::auth::slots::HashSlots::from_config(&config));
        let metrics = crate::metrics::Metrics::new();
        Self {
            leptos_options,
            db,
            config: Arc::new(config),
            connectwise: connectwise.with_metrics(&metrics),
            secrets,
            sign_in_slots,
            deliveries: Default::default(),
            metrics,
        }
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

/// The ConnectWise client of the current request (server functions only).
pub fn connectwise() -> CwClient {
    leptos::prelude::expect_context::<AppState>().connectwise
}

/// Wakes the delivery worker of this process (server functions only).
pub fn wake_deliveries() {
    if let Some(state) = leptos::prelude::use_context::<AppState>() {
        state.deliveries.wake();
    }
}
