#![recursion_limit = "512"]
//! The dashboard's server: configuration at start, the HTTP routes, demo data and operator commands.

pub mod api;
pub mod bench;
pub mod cli;
pub mod keys;
pub mod routes;
pub mod sandbox;
pub mod seed;

use app::config::{Config, Mode};
use app::db::Db;
use app::state::AppState;
use leptos::config::LeptosOptions;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] app::config::ConfigError),
    #[error(transparent)]
    Database(#[from] app::db::ConnectError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("could not read the Leptos configuration: {0}")]
    Leptos(String),
    #[error("could not seed the demo data: {0}")]
    Seed(String),
    #[error(transparent)]
    Ticketing(#[from] app::systems::BuildError),
    #[error("could not listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// Everything `serve` needs, built from the configuration: database (migrated), secrets key, demo data in dev mode.
pub async fn build_state(config: Config, leptos_options: LeptosOptions) -> Result<AppState, StartError> {
    let db = Db::connect(&config.database_url, config.database_max_connections).await?;
    tracing::info!(database = %app::db::redact_url(&config.database_url), "database ready");
    let key = keys::load_or_create(&config)?;
    if config.mode == Mode::Dev {
        seed::seed_demo_if_empty(&db).await.map_err(|err| StartError::Seed(err.to_string()))?;
    }
    if config.connectwise_client_id.is_none() {
        tracing::warn!("CONNECTWISE_CLIENT_ID is not set: ConnectWise will refuse calls without a clientId");
    }
    let secrets = app::secrets::SecretBox::new(&key);
    Ok(AppState::new(leptos_options, db, config, secrets)?)
}
