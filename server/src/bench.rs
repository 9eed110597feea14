//! What the bench binaries share (`server/src/bin/*_bench.rs`): a throw-away database, and compromise records as the
//! import API receives them. Not used by the server itself.

use app::config::Config;
use app::db::{Backend, Db};
use app::integrations::AuthKind;
use app::integrations::store::IntegrationWrite;
use app::state::AppState;

/// Where a bench's throw-away database lives, to remove it at the end.
pub enum Scratch {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Scratch {
    /// A fresh database: a temporary SQLite file named after `purpose` (`render`, `import`, …), or, with
    /// `database_url` (an account allowed to create databases), a new PostgreSQL database. Answers its URL.
    pub async fn create(
        database_url: Option<&str>,
        purpose: &str,
    ) -> Result<(String, Scratch), Box<dyn std::error::Error>> {
        let tag = format!("{}_{}", std::process::id(), rand::random::<u32>());
        match database_url {
            None => {
                let dir = std::env::temp_dir().join("dwid-bench");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("{purpose}-{tag}.db"));
                Ok((format!("sqlite://{}", path.display()), Scratch::Sqlite(path)))
            }
            Some(admin_url) if Backend::from_url(admin_url) == Some(Backend::Postgres) => {
                sqlx::any::install_default_drivers();
                let name = format!("dwid_bench_{tag}");
                let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await?;
                // The name is ours: letters, digits and underscores only.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
                let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(admin_url);
                Ok((format!("{base}/{name}"), Scratch::Postgres { admin_url: admin_url.to_string(), name }))
            }
            Some(_) => Err("--database-url must be a postgres:// URL (SQLite is the default)".into()),
        }
    }

    /// Removes the database (its files, or drops it); a failure is printed, not returned.
    pub async fn remove(&self) {
        match self {
            Scratch::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Scratch::Postgres { admin_url, name } => {
                let dropped = async {
                    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .execute(&mut admin)
                        .await
                }
                .await;
                if let Err(err) = dropped {
                    eprintln!("could not drop the bench database {name}: {err}");
                }
            }
        }
    }
}

/// Records `start..start + count` as one NDJSON body for the import API, spread over `organizations` by name.
pub fn ndjson_batch(start: usize, count: usize, organizations: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 420);
    for i in start..start + count {
        let line = serde_json::json!({
            "uuid": format!("b0000000-0000-4000-8000-{i:012}"),
            "password": format!("Winter{i}!"),
            "record_type": "Email",
            "source": "Combolist 2026-11",
            "website": "https://portal.example.com",
            "organization_name": organizations[i % organizations.len()],
            "compromise": format!("employee{i}@example.com"),
            "password_criteria": "Doesn't Match",
            "search_value": "example.com",
            "date_added": "2026-11-27T08:00:00Z",
            "date_found": "2026-11-20T00:00:00Z",
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The application's state on the database at `url`, in dev mode, as a server would have it.
pub async fn dev_state(url: &str) -> Result<AppState, Box<dyn std::error::Error>> {
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.to_string()),
        "APP_MODE" => Some("dev".to_string()),
        _ => None,
    })?;
    let db = Db::connect(url, config.database_max_connections).await?;
    let options = leptos::config::LeptosOptions::builder().output_name("dwid-integrations").build();
    let secrets = app::secrets::SecretBox::new(&[42u8; 32]);
    Ok(AppState::new(options, db, config, secrets)?)
}

/// A ConnectWise integration written straight to the store, for benches that never call the PSA: no mapping, a
/// placeholder instead of sealed keys.
pub fn stand_in_integration(name: &str) -> IntegrationWrite<'_> {
    IntegrationWrite {
        name,
        system: app::integrations::System::ConnectWise.as_db(),
        site: "https://na.myconnectwise.net",
        company_id: "bench",
        auth_kind: AuthKind::ApiKeys,
        credentials_sealed: "v1:00",
        mapping_json: "[]",
        settings_json: "{}",
    }
}
