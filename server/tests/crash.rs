//! Crash safety and scale-out of ticket delivery, with the real `server` binary:
//!
//! - 500 compromises into two integrations; the server is killed with SIGKILL three times while it delivers and
//!   started again; afterwards the ConnectWise sandbox holds exactly one ticket per (compromise, integration) —
//!   on SQLite without faults, and on PostgreSQL with the sandbox answering 5% of calls with 500, stalling 2% of
//!   ticket POSTs past the client's timeout after storing the ticket, and throttling in bursts of 429s.
//! - Two server processes on one PostgreSQL database deliver a shared backlog, with no duplicate.
//! - The same with Autotask: SIGKILLs during delivery with the Autotask sandbox failing and stalling calls, and two
//!   servers sharing an Autotask backlog.
//!
//! The sandbox runs in this test process, so it outlives every server it serves.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::activity::Actor;
use app::autotask::sandbox as at_sandbox;
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

/// The environment every server of a run shares: short ConnectWise timeout, quick retries, and the default lease
/// (300 s) and heartbeats (renewed every 2 s, stale after 8 s): a killed server's claims come back through
/// heartbeats, not by their lease running out.
fn env(dir: &Path, database_url: &str) -> Vec<(String, String)> {
    [
        ("APP_MODE", "dev"),
        ("DATA_DIR", &dir.display().to_string()),
        ("DATABASE_URL", database_url),
        ("SECRETS_KEY_FILE", &dir.join("secrets.key").display().to_string()),
        ("CW_SANDBOX_ADDR", "off"),
        ("AT_SANDBOX_ADDR", "off"),
        ("LOG_LEVEL", "info"),
        ("CONNECTWISE_TIMEOUT_SECS", "1"),
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

/// The PSA a run delivers to: a ConnectWise or an Autotask sandbox.
enum Psa {
    ConnectWise(RunningSandbox),
    Autotask(at_sandbox::RunningSandbox),
}

impl Psa {
    async fn connectwise(faults: Faults) -> Psa {
        let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), faults, ..Default::default() };
        Psa::ConnectWise(sandbox::spawn(config).await.expect("sandbox"))
    }

    async fn autotask(faults: at_sandbox::Faults) -> Psa {
        let config =
            at_sandbox::SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), faults, ..Default::default() };
        Psa::Autotask(at_sandbox::spawn(config).await.expect("sandbox"))
    }

    fn ticket_count(&self) -> u64 {
        match self {
            Psa::ConnectWise(sb) => sb.sandbox.ticket_count(),
            Psa::Autotask(sb) => sb.sandbox.ticket_count() as u64,
        }
    }

    /// Every stored ticket's dedupe key and id.
    async fn tickets(&self) -> Vec<(String, i64)> {
        let key_of = |t: &serde_json::Value| -> String {
            match self {
                Psa::ConnectWise(_) => t["externalXRef"].as_str().unwrap_or_default().to_owned(),
                Psa::Autotask(_) => t["userDefinedFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|u| u["name"] == app::integrations::DEFAULT_DEDUPE_UDF)
                    .and_then(|u| u["value"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            }
        };
        let tickets = match self {
            Psa::ConnectWise(sb) => sb.sandbox.tickets().await,
            Psa::Autotask(sb) => sb.sandbox.tickets(),
        };
        tickets.iter().map(|t| (key_of(t), t["id"].as_i64().unwrap_or_default())).collect()
    }

    /// What the servers need to reach it beside the common environment.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Psa::ConnectWise(_) => Vec::new(),
            Psa::Autotask(sb) => vec![("AUTOTASK_ZONE_DISCOVERY_URL".to_owned(), sb.url())],
        }
    }

    /// An integration of the demo account with a small mapping (the fields the system requires).
    fn input(&self, name: &str) -> IntegrationInput {
        let mut input = IntegrationInput {
            name: name.into(),
            // The largest request budget the wizard takes: a run must measure crash recovery, not the budget's waits
            // (1,000 a minute by default, which a run spends in seconds, so everything would wait for the next minute).
            request_budget: Some(app::integrations::RequestBudgetInput {
                requests: app::integrations::MAX_BUDGET_REQUESTS,
                window: app::integrations::BudgetWindow::Minute,
            }),
            ..Default::default()
        };
        match self {
            Psa::ConnectWise(sb) => {
                input.site = sb.url();
                input.company_id = sandbox::DEMO_COMPANY_ID.into();
                input.auth_kind = AuthKind::ApiKeys;
                input.public_key = sandbox::DEMO_PUBLIC_KEY.into();
                input.private_key = sandbox::DEMO_PRIVATE_KEY.into();
                input.mapping = vec![
                    MappingRow::new("summary", format!("{name}: [record_type] compromise of [compromise]")),
                    MappingRow::new("company", ""),
                    MappingRow::new("initialDescription", "Found in [source] on [date_found]."),
                ];
            }
            Psa::Autotask(_) => {
                input.system = app::integrations::System::Autotask;
                input.autotask = app::integrations::AutotaskInput {
                    username: app::autotask::demo::DEMO_USERNAME.into(),
                    secret: app::autotask::demo::DEMO_SECRET.into(),
                    integration_code: app::autotask::demo::DEMO_INTEGRATION_CODE.into(),
                    dedupe_udf: String::new(),
                };
                input.mapping = vec![
                    MappingRow::new("title", format!("{name}: [record_type] compromise of [compromise]")),
                    MappingRow::new("companyID", ""),
                    MappingRow::new("description", "Found in [source] on [date_found]."),
                    MappingRow::new("status", "1"),
                    MappingRow::new("priority", "2"),
                    MappingRow::new("queueID", "29682833"),
                ];
            }
        }
        input
    }
}

/// A partner with the organizations, two Active integrations on the sandbox serving all of them, and `n`
/// compromises imported; returns the integration ids and the records.
async fn prepare(db: &Db, dir: &Path, database_url: &str, psa: &Psa, n: usize) -> (Vec<i64>, Vec<ImportRecord>) {
    let vars: HashMap<String, String> = env(dir, database_url).into_iter().chain(psa.env()).collect();
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
        // The sandbox's faults (bursts of 429s, 500s) may meet the save's own calls: try again after a moment.
        let mut tries = 0;
        let id = loop {
            match app::integrations::service::save(&state, partner.id, None, psa.input(name), &Actor::operator("test"))
                .await
            {
                Ok(id) => break id,
                Err(err) if tries < 5 && err.to_string().contains("tried again") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                }
                Err(err) => panic!("save: {err:?}"),
            }
        };
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
async fn assert_exactly_once(db: &Db, psa: &Psa, ids: &[i64], records: &[ImportRecord]) {
    let tickets = psa.tickets().await;
    let mut by_xref: HashMap<String, Vec<i64>> = HashMap::new();
    for (key, id) in &tickets {
        by_xref.entry(key.clone()).or_default().push(*id);
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
        assert_eq!(by_xref.get(&xref).map(|v| v[0]), ticket, "{xref}: the recorded ticket is the one in the PSA");
    }
}

/// Kills the server with SIGKILL each time the sandbox has received another share of the tickets, restarting it.
async fn run_with_kills(db: &Db, dir: &Path, vars: &[(String, String)], sb: &Psa, total: usize) -> Server {
    let mut server = Server::start(dir, vars, "server");
    for (kill, share) in [0.15, 0.40, 0.65].into_iter().enumerate() {
        let target = (total as f64 * share) as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while sb.ticket_count() < target {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: stuck at {} tickets: {}",
                sb.ticket_count(),
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The deliveries the server holds (claimed: in flight, or waiting for a slot) as it is killed.
        let claimed: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.uuid, d.integration_id FROM deliveries d JOIN compromises c ON c.id = d.compromise_id \
             WHERE d.lease_until > 0 AND d.state IN ('pending', 'retrying')",
        )
        .fetch_all(&db.pool)
        .await
        .expect("leased");
        server.kill();
        // Whatever the sandbox was still doing for the killed server ends first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before: std::collections::HashSet<String> = sb.tickets().await.into_iter().map(|(key, _)| key).collect();
        let waiting: std::collections::HashSet<String> = claimed
            .iter()
            .map(|(uuid, integration)| app::mapping::external_xref(uuid, *integration))
            .filter(|xref| !before.contains(xref))
            .collect();
        eprintln!(
            "kill {} at {} tickets: {} deliveries claimed, {} of them without a ticket",
            kill + 1,
            sb.ticket_count(),
            claimed.len(),
            waiting.len()
        );
        let restarted = Instant::now();
        server = Server::start(dir, vars, "server");
        // The claims come back through the heartbeats, long before the 300 s lease would end.
        let resumed = first_ticket_of(sb, &waiting, Duration::from_secs(60)).await;
        match resumed {
            Some(after) => {
                eprintln!(
                    "kill {}: first ticket of a delivery the killed server had claimed {:.2} s after the restart",
                    kill + 1,
                    after.duration_since(restarted).as_secs_f64()
                );
                assert!(
                    after.duration_since(restarted) <= Duration::from_secs(10),
                    "a dead server's deliveries resume within 10 s of the restart: {:?}",
                    after.duration_since(restarted)
                );
            }
            None => assert!(waiting.is_empty(), "no claimed delivery was resumed within 60 s: {}", server.log_text()),
        }
    }
    server
}

/// When the first ticket carrying one of `keys` reached the sandbox (polled), or None if none did within `within`
/// (or `keys` is empty).
async fn first_ticket_of(sb: &Psa, keys: &std::collections::HashSet<String>, within: Duration) -> Option<Instant> {
    if keys.is_empty() {
        return None;
    }
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if sb.tickets().await.iter().any(|(key, _)| keys.contains(key)) {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The environment of a run's servers: the common one and what reaches the PSA.
fn run_env(dir: &Path, database_url: &str, psa: &Psa) -> Vec<(String, String)> {
    env(dir, database_url).into_iter().chain(psa.env()).collect()
}

/// 500 compromises into two integrations on SQLite, three SIGKILLs while delivering; Autotask's `faults` start
/// once the integrations are saved (a save reads Autotask's fields).
async fn sigkill_on_sqlite(psa: Psa, faults: Option<at_sandbox::Faults>) {
    let dir = temp_dir();
    let url = format!("sqlite://{}/dwid.db", dir.display());
    let db = Db::connect(&url, 2).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &psa, 500).await;
    if let (Psa::Autotask(sb), Some(faults)) = (&psa, &faults) {
        sb.sandbox.set_faults(faults.clone());
    }
    let vars = run_env(&dir, &url, &psa);
    let server = run_with_kills(&db, &dir, &vars, &psa, 1000).await;
    wait_until_settled(&db, &[&server], Duration::from_secs(180)).await;
    assert!(server.terminate().success(), "a clean exit on SIGTERM");
    if let Psa::Autotask(sb) = &psa {
        let stats = sb.sandbox.stats();
        eprintln!("Autotask sandbox: {stats}");
        if faults.is_some() {
            for fault in ["faults500", "faults429", "stalls"] {
                assert!(stats[fault].as_u64() > Some(0), "{fault} happened: {stats}");
            }
        }
    }
    assert_exactly_once(&db, &psa, &ids, &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_and_duplicates_nothing_on_sqlite() {
    sigkill_on_sqlite(Psa::connectwise(Faults { latency_ms: 15, ..Default::default() }).await, None).await;
}

/// Autotask answering 3% of calls with 500, storing 2% of tickets and then stalling past the client's timeout
/// (an attempt in doubt, settled by the dedupe field), and throttling in bursts of 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_autotask_delivery_with_faults_loses_and_duplicates_nothing() {
    let faults = at_sandbox::Faults {
        latency_ms: 10,
        error_rate: 0.03,
        stall_after_commit_rate: 0.02,
        stall_secs: 2,
        rate_limit_burst_every_ms: 3_000,
        rate_limit_burst_ms: 200,
        retry_after_secs: 1,
        ..Default::default()
    };
    let psa = Psa::autotask(at_sandbox::Faults::default()).await;
    sigkill_on_sqlite(psa, Some(faults)).await;
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
    let psa = Psa::connectwise(faults).await;
    let dir = temp_dir();
    let db = Db::connect(&url, 4).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &psa, 500).await;
    let vars = run_env(&dir, &url, &psa);
    let server = run_with_kills(&db, &dir, &vars, &psa, 1000).await;
    wait_until_settled(&db, &[&server], Duration::from_secs(240)).await;
    assert!(server.terminate().success());
    let Psa::ConnectWise(sb) = &psa else { unreachable!("a ConnectWise run") };
    let counts = sb.sandbox.fault_counts();
    eprintln!("faults injected: {counts:?}");
    assert!(counts.faults500 > 0 && counts.faults429 > 0 && counts.stalls > 0, "every fault happened: {counts:?}");
    assert_exactly_once(&db, &psa, &ids, &records).await;
}

/// Two server processes on one PostgreSQL database deliver `n` compromises into two integrations.
async fn two_servers_share(url: String, psa: Psa, n: usize) {
    let dir = temp_dir();
    let db = Db::connect(&url, 4).await.expect("db");
    let (ids, records) = prepare(&db, &dir, &url, &psa, n).await;
    // Paused while the servers start, so that neither has a head start on the backlog.
    let partner: i64 = sqlx::query_scalar("SELECT id FROM partners").fetch_one(&db.pool).await.expect("partner");
    for id in &ids {
        app::integrations::store::set_active(&db, partner, *id, false, &Actor::operator("test"))
            .await
            .expect("disable");
    }
    let vars = run_env(&dir, &url, &psa);
    let first = Server::start(&dir, &vars, "first");
    let second = Server::start(&dir, &vars, "second");
    for id in &ids {
        app::integrations::store::set_active(&db, partner, *id, true, &Actor::operator("test")).await.expect("enable");
    }
    wait_until_settled(&db, &[&first, &second], Duration::from_secs(180)).await;
    assert!(first.terminate().success() && second.terminate().success());
    assert_exactly_once(&db, &psa, &ids, &records).await;
    // Both processes took part. Delivered rows keep the claim that delivered them (`worker-<pid>-<n>#<claim>`):
    // count per worker.
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
    let tenth = (2 * n / 10) as i64;
    assert!(owners.iter().all(|(_, n)| *n >= tenth), "each delivered at least a tenth: {owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_the_backlog_without_duplicates() {
    let Some(url) = postgres_url().await else { return };
    let psa = Psa::connectwise(Faults { latency_ms: 20, error_rate: 0.02, ..Default::default() }).await;
    two_servers_share(url, psa, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_an_autotask_backlog_without_duplicates() {
    let Some(url) = postgres_url().await else { return };
    let psa = Psa::autotask(at_sandbox::Faults { latency_ms: 20, error_rate: 0.02, ..Default::default() }).await;
    two_servers_share(url, psa, 300).await;
}
