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
    /// Wakes this process's delivery worker when deliveries become due (imports, Retry, Enable).
    pub deliveries: crate::delivery::worker::Wake,
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
