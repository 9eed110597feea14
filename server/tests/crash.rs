//! Crash safety and scale-out of ticket delivery, with the real `server` binary:
//!
//! - 500 compromises into two integrations; the server is killed with SIGKILL three times while it delivers and
//!   started again; afterwards the ConnectWise sandbox holds exactly one ticket per (compromise, integration) —
//!   on SQLite without faults, and on PostgreSQL with the sandbox answering 5% of calls with 500, stalling 2% of
//!   ticket POSTs past the client's timeout after storing the ticket, and throttling in bursts of 429s.
//! - Two server processes on one PostgreSQL database deliver a shared backlog, with no duplicate.
//!
//! The sandbox runs in this test process, so it outlives every server it serves.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::activity::Actor;
use app::compromises::{ImportRecord, OrganizationRef};
use app::config::Config;
use app::db::Db;
use app::integrations::{AuthKind, IntegrationInput};
use app::mapping::{MappingRow, PasswordCriteria, RecordType};
use app::state::AppState;
use server::sandbox::{self, Faults, RunningSandbox, SandboxConfig};

const BIN: &str = env!("CARGO_BIN_EXE_server");
const KEY_HEX: &str = "5e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f";
/// Sandbox companies: organizations with these names match exactly.
const ORGANIZATIONS: &[&str] =
    &["Acme Corporation", "Initech", "Stark Industries", "Umbrella Health", "Wayne Enterprises"];

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dwid-crash-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("secrets.key"), KEY_HEX).expect("key");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The environment every server of a run shares: short ConnectWise timeout and lease, quick retries.
fn env(dir: &Path, database_url: &str) -> Vec<(String, String)> {
    [
        ("APP_MODE", "dev"),
        ("DATA_DIR", &dir.display().to_string()),
        ("DATABASE_URL", database_url),
        ("SECRETS_KEY_FILE", &dir.join("secrets.key").display().to_string()),
        ("CW_SANDBOX_ADDR", "off"),
        ("LOG_LEVEL", "info"),
        ("CONNECTWISE_TIMEOUT_SECS", "1"),
        ("DELIVERY_LEASE_SECS", "8"),
        ("DELIVERY_POLL_MS", "100"),
        ("DELIVERY_RETRY_BASE_MS", "100"),
        ("DELIVERY_RETRY_MAX_SECS", "1"),
        ("DELIVERY_CONCURRENCY", "8"),
        ("DELIVERY_PER_INTEGRATION", "4"),
        ("DELIVERY_MAX_ATTEMPTS", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, vars: &[(String, String)], name: &str) -> Server {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log");
        let child = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn server");
        let server = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start: {}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, and the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_sandbox(faults: Faults) -> RunningSandbox {
    let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), faults, ..Default::default() };
    sandbox::spawn(config).await.expect("sandbox")
}

/// A partner with the organizations, two Active integrations on the sandbox serving all of them, and `n`
/// compromises imported; returns the integration ids and the records.
async fn prepare(
    db: &Db,
    dir: &Path,
    database_url: &str,
    sb: &RunningSandbox,
    n: usize,
) -> (Vec<i64>, Vec<ImportRecord>) {
    let vars: HashMap<String, String> = env(dir, database_url).into_iter().collect();
    let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("config");
    let key: [u8; 32] = hex::decode(KEY_HEX).expect("hex").try_into().expect("32 bytes");
    let state = AppState::new(
        leptos::config::LeptosOptions::builder().output_name("dwid-integrations").build(),
        db.clone(),
        config,
        app::secrets::SecretBox::new(&key),
    )
    .expect("ticketing clients");
    let partner =
        app::auth::store::create_partner(db, "crash@msp.example", "a long enough password").await.expect("partner");
    let mut orgs = Vec::new();
    for name in ORGANIZATIONS {
        orgs.push(
            app::organizations::store::add(db, partner.id, name, None, &Actor::operator("test")).await.expect("org").id,
        );
    }
    let mut ids = Vec::new();
    for name in ["Service desk", "Security board"] {
        let input = IntegrationInput {
            name: name.into(),
            site: sb.url(),
            company_id: sandbox::DEMO_COMPANY_ID.into(),
            auth_kind: AuthKind::ApiKeys,
            public_key: sandbox::DEMO_PUBLIC_KEY.into(),
            private_key: sandbox::DEMO_PRIVATE_KEY.into(),
            username: String::new(),
            password: String::new(),
            mapping: vec![
                MappingRow::new("summary", format!("{name}: [record_type] compromise of [compromise]")),
                MappingRow::new("company", ""),
                MappingRow::new("initialDescription", "Found in [source] on [date_found]."),
            ],
            request_budget: None,
        };
        let id = app::integrations::service::save(&state, partner.id, None, input, &Actor::operator("test"))
            .await
            .expect("save");
        app::integrations::store::set_active(db, partner.id, id, true, &Actor::operator("test")).await.expect("enable");
        ids.push(id);
    }
    let records: Vec<ImportRecord> = (0..n)
        .map(|i| ImportRecord {
            uuid: format!("c0ffee00-{:04x}-4000-8000-{:012x}", rand::random::<u16>(), i),
            password: Some(format!("Pw{i}-secret")),
            record_type: RecordType::Email,
            source: "Combolist 2026".into(),
            website: None,
            organization: OrganizationRef::ById(orgs[i % orgs.len()]),
            compromise: format!("person{i}@example.com"),
            password_criteria: PasswordCriteria::DoesntMatch,
            search_value: "example.com".into(),
            date_added: "2026-11-27T08:00:00Z".into(),
            date_found: "2026-11-20T00:00:00Z".into(),
        })
        .collect();
    let summary = app::compromises::store::import(db, &state.secrets, partner.id, &records).await.expect("import");
    assert_eq!(summary.deliveries_queued, 2 * n);
    (ids, records)
}

async fn outstanding(db: &Db) -> i64 {
    app::delivery::store::outstanding(db).await.expect("outstanding")
}

async fn wait_until_settled(db: &Db, servers: &[&Server], within: Duration) {
    let deadline = Instant::now() + within;
    while outstanding(db).await > 0 {
        if Instant::now() > deadline {
            let logs: Vec<String> = servers.iter().map(|s| s.log_text()).collect();
            let tail: Vec<&str> = logs.iter().flat_map(|l| l.lines().rev().take(30)).collect();
            panic!("{} deliveries outstanding; logs:\n{}", outstanding(db).await, tail.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exactly one ticket per (compromise, integration), and each delivery records that ticket's id.
async fn assert_exactly_once(db: &Db, sb: &RunningSandbox, ids: &[i64], records: &[ImportRecord]) {
    let tickets = sb.sandbox.tickets().await;
    let mut by_xref: HashMap<String, Vec<i64>> = HashMap::new();
    for t in &tickets {
        by_xref
            .entry(t["externalXRef"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(t["id"].as_i64().unwrap_or_default());
    }
    let duplicates: Vec<(&String, &Vec<i64>)> = by_xref.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(duplicates.is_empty(), "duplicate tickets: {duplicates:?}");
    assert_eq!(tickets.len(), records.len() * ids.len(), "one ticket per (compromise, integration)");
    let rows = sqlx::query(
        "SELECT c.uuid, d.integration_id, d.state, d.ticket_id FROM deliveries d JOIN compromises c ON c.id = d.compromise_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("deliveries");
    assert_eq!(rows.len(), records.len() * ids.len());
    for row in &rows {
        use sqlx::Row;
        let uuid: String = row.get("uuid");
        let integration: i64 = row.get("integration_id");
        let state: String = row.get("state");
        let ticket: Option<i64> = row.get("ticket_id");
        let xref = app::mapping::external_xref(&uuid, integration);
        assert_eq!(state, "delivered", "{xref}");
        assert_eq!(by_xref.get(&xref).map(|v| v[0]), ticket, "{xref}: the recorded ticket is the one in ConnectWise");
    }
}

/// Kills the server with SIGKILL each time the sandbox has received another share of the tickets, restarting it.
async fn run_with_kills(db: &Db, dir: &Path, vars: &[(String, String)], sb: &RunningSandbox, total: usize) -> Server {
    let mut server = Server::start(dir, vars, "server");
    for (kill, share) in [0.15, 0.40, 0.65].into_iter().enumerate() {
        let target = (total as f64 * share) as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while sb.sandbox.ticket_count() < target {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: stuck at {} tickets: {}",
                sb.sandbox.ticket_count(),
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE lease_until > 0")
            .fetch_one(&db.pool)
            .await
            .expect("leased");
        eprintln!("kill {} at {} tickets ({leased} deliveries leased)", kill + 1, sb.sandbox.ticket_count());
        server.kill();
        server = Server::start(dir, vars, "server");
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_and_duplicates_nothing_on_sqlite() {
    let sb = start_sandbox(Faults { latency_ms: 15, ..Default::default() }).await;
    let dir = temp_dir();
    let url = format!("sqlite://{}/dwid.db", dir.display());
    let db = Db::connect(&url, 2).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &sb, 500).await;
    let vars = env(&dir, &url);
    let server = run_with_kills(&db, &dir, &vars, &sb, 1000).await;
    wait_until_settled(&db, &[&server], Duration::from_secs(180)).await;
    assert!(server.terminate().success(), "a clean exit on SIGTERM");
    assert_exactly_once(&db, &sb, &ids, &records).await;
}

/// A fresh PostgreSQL database URL when TEST_DATABASE_URL is set (REQUIRE_POSTGRES makes it mandatory).
async fn postgres_url() -> Option<String> {
    let db = app::testing::postgres().await?;
    let name: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&db.pool).await.expect("name");
    let admin = std::env::var("TEST_DATABASE_URL").ok()?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
    Some(format!("{base}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_faults_loses_and_duplicates_nothing_on_postgres() {
    let Some(url) = postgres_url().await else { return };
    let faults = Faults {
        latency_ms: 15,
        error_rate: 0.05,
        timeout_after_commit_rate: 0.02,
        stall_secs: 2,
        rate_limit_burst_every_ms: 3_000,
        rate_limit_burst_ms: 300,
        retry_after_secs: 1,
        ..Default::default()
    };
    let sb = start_sandbox(faults).await;
    let dir = temp_dir();
    let db = Db::connect(&url, 4).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &sb, 500).await;
    let vars = env(&dir, &url);
    let server = run_with_kills(&db, &dir, &vars, &sb, 1000).await;
    wait_until_settled(&db, &[&server], Duration::from_secs(240)).await;
    assert!(server.terminate().success());
    let counts = sb.sandbox.fault_counts();
    eprintln!("faults injected: {counts:?}");
    assert!(counts.faults500 > 0 && counts.faults429 > 0 && counts.stalls > 0, "every fault happened: {counts:?}");
    assert_exactly_once(&db, &sb, &ids, &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_the_backlog_without_duplicates() {
    let Some(url) = postgres_url().await else { return };
    let sb = start_sandbox(Faults { latency_ms: 20, error_rate: 0.02, ..Default::default() }).await;
    let dir = temp_dir();
    let db = Db::connect(&url, 4).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &sb, 400).await;
    // Paused while the servers start, so that neither has a head start on the backlog.
    let partner: i64 = sqlx::query_scalar("SELECT id FROM partners").fetch_one(&db.pool).await.expect("partner");
    for id in &ids {
        app::integrations::store::set_active(&db, partner, *id, false, &Actor::operator("test"))
            .await
            .expect("disable");
    }
    let vars = env(&dir, &url);
    let first = Server::start(&dir, &vars, "first");
    let second = Server::start(&dir, &vars, "second");
    for id in &ids {
        app::integrations::store::set_active(&db, partner, *id, true, &Actor::operator("test")).await.expect("enable");
    }
    wait_until_settled(&db, &[&first, &second], Duration::from_secs(180)).await;
    assert!(first.terminate().success() && second.terminate().success());
    assert_exactly_once(&db, &sb, &ids, &records).await;
    // Both processes took part: delivered rows name the worker that delivered them.
    // Delivered rows keep the claim that delivered them (`worker-<pid>-<n>#<claim>`): count per worker.
    let claims: Vec<(String, i64)> =
        sqlx::query_as("SELECT lease_owner, COUNT(*) FROM deliveries WHERE state = 'delivered' GROUP BY lease_owner")
            .fetch_all(&db.pool)
            .await
            .expect("owners");
    let mut per_worker: HashMap<String, i64> = HashMap::new();
    for (claim, n) in claims {
        *per_worker.entry(claim.split('#').next().unwrap_or_default().to_owned()).or_default() += n;
    }
    let owners: Vec<(String, i64)> = per_worker.into_iter().collect();
    eprintln!("deliveries per worker: {owners:?}");
    assert_eq!(owners.len(), 2, "{owners:?}");
    assert!(owners.iter().all(|(_, n)| *n >= 80), "each delivered at least a tenth: {owners:?}");
}
