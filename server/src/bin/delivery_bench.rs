//! `delivery_bench`: compromise import rate and end-to-end ticket delivery throughput, on SQLite and PostgreSQL.
//! Not a test: run it in release and read the report (the README quotes it):
//!
//! ```text
//! cargo run --release -p server --features app/ssr --bin delivery_bench -- \
//!     [--compromises 100000] [--organizations 200] [--integrations 2] [--concurrency 32] [--latency-ms 20] \
//!     [--backend sqlite|postgres|both] [--system connectwise|autotask]
//! ```
//!
//! PostgreSQL needs `TEST_DATABASE_URL` (an account that may create databases; a fresh one is made).
//!
//! Per backend:
//! 1. Import: `--compromises` records over `--organizations` organizations, as NDJSON batches of 10,000 parsed
//!    and stored exactly as `POST /api/v1/compromises` does (with the outbox fan-out to `--integrations` Active
//!    integrations): records per second.
//! 2. Sandbox capacity: the system's sandbox (a separate process, each call delayed `--latency-ms` like a remote
//!    PSA) is sent ticket POSTs directly through the system's client, `--concurrency` in flight, for 10% of the
//!    delivery count: tickets per second — the ceiling for delivery. Autotask's client keeps to Autotask's 3 calls
//!    in flight per endpoint and tracking identifier, so its ceiling is 3 / latency whatever `--concurrency` says;
//!    its sandbox runs without the hourly limit (a bench sends more than 10,000 requests an hour).
//! 3. Delivery: the delivery worker (the same code the server runs, `--concurrency` attempts in flight) drains
//!    the outbox into the sandbox: deliveries per second, and that as a share of the capacity.
//!
//! Peak memory is this process's high-water mark (VmHWM): import, outbox and worker, not the sandbox. On PostgreSQL
//! the bench runs `VACUUM ANALYZE` between the import and the delivery, as autovacuum would shortly after a bulk
//! load.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::compromises::Limits;
use app::config::Config;
use app::connectwise::{Auth, Credentials};
use app::db::Db;
use app::delivery::backoff::Backoff;
use app::delivery::worker::{self, Deps, WorkerConfig};
use app::integrations::{AuthKind, System};
use app::mapping::MappingRow;
use app::state::AppState;
use app::ticketing::Connection;
use server::sandbox;

struct Args {
    system: System,
    compromises: usize,
    organizations: usize,
    integrations: usize,
    concurrency: usize,
    latency_ms: u64,
    backends: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: delivery_bench [--compromises N] [--organizations N] [--integrations N] [--concurrency N] \
         [--latency-ms N] [--backend sqlite|postgres|both] [--system connectwise|autotask]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut args = Args {
        system: System::ConnectWise,
        compromises: 100_000,
        organizations: 200,
        integrations: 2,
        concurrency: 32,
        latency_ms: 20,
        backends: vec!["sqlite".into(), "postgres".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let number = || value.parse::<usize>().ok().filter(|n| *n > 0).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--compromises" => args.compromises = number(),
            "--organizations" => args.organizations = number().min(sandbox::data::GENERATED_COMPANIES),
            "--integrations" => args.integrations = number(),
            "--concurrency" => args.concurrency = number(),
            "--latency-ms" => args.latency_ms = value.parse().unwrap_or_else(|_| usage()),
            "--system" => args.system = System::from_db(&value).unwrap_or_else(|| usage()),
            "--backend" => {
                args.backends = match value.as_str() {
                    "both" => vec!["sqlite".into(), "postgres".into()],
                    "sqlite" | "postgres" => vec![value.clone()],
                    _ => usage(),
                }
            }
            // Internal: run as the sandbox process.
            "--sandbox-port" => {
                serve_sandbox(value.parse().unwrap_or_else(|_| usage()));
            }
            _ => usage(),
        }
    }
    args
}

/// The sandbox process: `--sandbox-port P --latency-ms L --system S` (the parent passes them, in that order).
fn serve_sandbox(port: u16) -> ! {
    let after = |flag: &str| std::env::args().skip_while(|a| a != flag).nth(1);
    let latency = after("--latency-ms").and_then(|v| v.parse().ok()).unwrap_or(0);
    let system = after("--system").and_then(|v| System::from_db(&v)).unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|err| {
        eprintln!("sandbox runtime: {err}");
        std::process::exit(1)
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let served = match system {
        System::ConnectWise => runtime.block_on(sandbox::serve(sandbox::SandboxConfig {
            addr,
            faults: sandbox::Faults { latency_ms: latency, ..Default::default() },
            ..Default::default()
        })),
        System::Autotask => {
            use app::autotask::sandbox as at;
            runtime.block_on(at::serve(at::SandboxConfig {
                addr,
                // No hourly limit: the bench measures delivery, not Autotask's threshold.
                throttling: at::Throttling { hourly_limit: 1_000_000_000, latency_ms: 0, ..Default::default() },
                faults: at::Faults { latency_ms: latency, ..Default::default() },
                ..Default::default()
            }))
        }
    };
    if let Err(err) = served {
        eprintln!("sandbox: {err}");
        std::process::exit(1)
    }
    std::process::exit(0)
}

struct SandboxProcess(Child);

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sandbox(latency_ms: u64, system: System) -> Result<(SandboxProcess, String), Box<dyn std::error::Error>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "--sandbox-port",
            &port.to_string(),
            "--latency-ms",
            &latency_ms.to_string(),
            "--system",
            system.as_db(),
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("the sandbox did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((SandboxProcess(child), format!("http://127.0.0.1:{port}")))
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn company_names(n: usize, system: System) -> Vec<String> {
    match system {
        System::ConnectWise => sandbox::data::companies()
            .into_iter()
            .skip(1) // the MSP's own company
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .take(n)
            .collect(),
        // The generated companies (the demo ones include near misses and an inactive duplicate).
        System::Autotask => app::autotask::sandbox::data::companies()
            .into_iter()
            .skip(1 + app::autotask::sandbox::data::DEMO_COMPANIES.len())
            .filter_map(|c| c["companyName"].as_str().map(str::to_owned))
            .take(n)
            .collect(),
    }
}

const DESCRIPTION: &str = "[organization_name]: [compromise] found in [source] on [date_found]; password \
                           [obscured_password] ([password_criteria] the password policy).";

fn mapping(name: &str, system: System) -> Vec<MappingRow> {
    let title = format!("{name}: [record_type] compromise of [compromise]");
    match system {
        System::ConnectWise => vec![
            MappingRow::new("summary", title),
            MappingRow::new("company", ""),
            MappingRow::new("board", "1"),
            MappingRow::new("initialDescription", DESCRIPTION),
        ],
        System::Autotask => vec![
            MappingRow::new("title", title),
            MappingRow::new("companyID", ""),
            MappingRow::new("status", "1"),
            MappingRow::new("priority", "2"),
            MappingRow::new("queueID", "29682833"),
            MappingRow::new("description", DESCRIPTION),
        ],
    }
}

/// The demo account of the system's sandbox at `site`, as the wizard would send it.
fn demo_input(system: System, site: &str, name: &str) -> app::integrations::IntegrationInput {
    let mut input = app::integrations::IntegrationInput {
        system,
        name: name.to_owned(),
        mapping: mapping(name, system),
        // The largest budget the wizard takes: the bench measures delivery, not the budget's waits.
        request_budget: Some(app::integrations::RequestBudgetInput {
            requests: app::integrations::MAX_BUDGET_REQUESTS,
            window: app::integrations::BudgetWindow::Minute,
        }),
        ..Default::default()
    };
    match system {
        System::ConnectWise => {
            input.site = site.to_owned();
            input.company_id = sandbox::DEMO_COMPANY_ID.into();
            input.auth_kind = AuthKind::ApiKeys;
            input.public_key = sandbox::DEMO_PUBLIC_KEY.into();
            input.private_key = sandbox::DEMO_PRIVATE_KEY.into();
        }
        System::Autotask => {
            input.autotask = app::integrations::AutotaskInput {
                username: app::autotask::demo::DEMO_USERNAME.into(),
                secret: app::autotask::demo::DEMO_SECRET.into(),
                integration_code: app::autotask::demo::DEMO_INTEGRATION_CODE.into(),
                dedupe_udf: String::new(),
            };
        }
    }
    input
}

/// The demo account's connection, without a request budget: the capacity probe measures the PSA alone.
fn demo_connection(system: System, site: &str) -> Connection {
    match system {
        System::ConnectWise => Credentials {
            site: site.to_owned(),
            company_id: sandbox::DEMO_COMPANY_ID.into(),
            auth: Auth::ApiMember {
                public_key: sandbox::DEMO_PUBLIC_KEY.into(),
                private_key: sandbox::DEMO_PRIVATE_KEY.into(),
            },
        }
        .connection(),
        System::Autotask => app::autotask::AtCredentials::new(
            app::autotask::demo::DEMO_USERNAME,
            app::autotask::demo::DEMO_SECRET,
            app::autotask::demo::DEMO_INTEGRATION_CODE,
        )
        .connection(),
    }
}

async fn database(backend: &str) -> Result<Db, Box<dyn std::error::Error>> {
    match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("dwid-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("bench-{}.db", rand::random::<u32>()));
            Ok(Db::connect(&format!("sqlite://{}", path.display()), 8).await?)
        }
        _ => app::testing::postgres().await.ok_or_else(|| "set TEST_DATABASE_URL to bench PostgreSQL".into()),
    }
}

struct Report {
    backend: String,
    import_rate: f64,
    capacity: f64,
    delivery_rate: f64,
    deliveries: usize,
    peak_mib: f64,
}

async fn run(backend: &str, args: &Args) -> Result<Report, Box<dyn std::error::Error>> {
    let (_sandbox, site) = start_sandbox(args.latency_ms, args.system)?;
    let db = database(backend).await?;
    let mut config = Config::from_lookup(|name| (name == "APP_MODE").then(|| "dev".to_string()))?;
    config.connectwise_timeout = Duration::from_secs(30);
    config.autotask_zone_discovery_url = site.clone();
    let secrets = app::secrets::SecretBox::new(&[7u8; 32]);
    let state = AppState::new(
        leptos::config::LeptosOptions::builder().output_name("dwid-integrations").build(),
        db.clone(),
        config.clone(),
        secrets.clone(),
    )?;
    let partner = app::auth::store::create_partner(&db, "bench@msp.example", "a long enough password").await?;
    let organizations = company_names(args.organizations, args.system);
    for name in &organizations {
        app::organizations::store::add(&db, partner.id, name, None, &app::activity::Actor::operator("delivery_bench"))
            .await?;
    }
    let mut integration_ids = Vec::new();
    for i in 0..args.integrations {
        let name = format!("Bench desk {}", i + 1);
        let input = demo_input(args.system, &site, &name);
        let id = app::integrations::service::save(
            &state,
            partner.id,
            None,
            input,
            &app::activity::Actor::operator("delivery_bench"),
        )
        .await
        .map_err(|e| e.to_string())?;
        app::integrations::store::set_active(
            &db,
            partner.id,
            id,
            true,
            &app::activity::Actor::operator("delivery_bench"),
        )
        .await?;
        integration_ids.push(id);
    }

    // 1. Import.
    let batch = 10_000;
    let limits = Limits { max_records: batch, max_body_bytes: 64 << 20 };
    let started = Instant::now();
    let mut queued = 0;
    for start in (0..args.compromises).step_by(batch) {
        let body = server::bench::ndjson_batch(start, batch.min(args.compromises - start), &organizations);
        let records = app::compromises::parse_ndjson(&body, &limits).map_err(|e| e.to_string())?;
        queued += app::compromises::store::import(&db, &secrets, partner.id, &records).await?.deliveries_queued;
    }
    let import_rate = args.compromises as f64 / started.elapsed().as_secs_f64();
    eprintln!("[{backend}] imported {} compromises ({queued} deliveries queued): {import_rate:.0}/s", args.compromises);
    if db.backend == app::db::Backend::Postgres {
        // What autovacuum does within a minute of a bulk load, done now so that delivery is measured on a settled
        // table rather than racing the vacuum of 300,000 new rows for the two cores (see the README).
        let settle = Instant::now();
        sqlx::query("VACUUM ANALYZE compromises").execute(&db.pool).await?;
        sqlx::query("VACUUM ANALYZE deliveries").execute(&db.pool).await?;
        eprintln!("[{backend}] VACUUM ANALYZE after the bulk import: {:.1} s", settle.elapsed().as_secs_f64());
    }

    // 2. The sandbox's capacity at the same concurrency, with the same kind of ticket.
    // Straight to the sandbox, without a request budget: this measures the PSA, not the dashboard.
    let direct: Box<dyn app::ticketing::Connector> = match args.system {
        System::ConnectWise => Box::new(app::connectwise::CwClient::new(app::systems::connectwise_config(&config))?),
        System::Autotask => {
            Box::new(app::autotask::AtClient::new(app::systems::autotask_config(&config)).map_err(|e| e.to_string())?)
        }
    };
    let catalog = match direct.fixed_catalog() {
        Some(catalog) => catalog,
        None => direct.session(&demo_connection(args.system, &site)).await?.fields(&[]).await?.catalog,
    };
    let session: Arc<dyn app::ticketing::Session> =
        Arc::from(direct.session(&demo_connection(args.system, &site)).await?);
    let company = session.find_company_by_name(&organizations[0]).await?.ok_or("no company")?;
    let rows = mapping("Raw", args.system);
    let probe = (queued / 10).max(1_000);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (session, rows, next, catalog) = (session.clone(), rows.clone(), next.clone(), catalog.clone());
        let company_id = company.id;
        let organization = organizations[0].clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= probe {
                    break Ok::<(), String>(());
                }
                let compromise = app::mapping::Compromise {
                    uuid: format!("a0000000-0000-4000-8000-{i:012}"),
                    organization_name: organization.clone(),
                    ..app::mapping::Compromise::sample()
                };
                let xref = format!("bench-raw:{i}");
                let ticket =
                    catalog.build_ticket(&rows, &compromise, company_id, &xref).map_err(|e| format!("{e:?}"))?;
                session.create_ticket(&ticket).await.map_err(|e| e.to_string())?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let capacity = probe as f64 / started.elapsed().as_secs_f64();
    eprintln!("[{backend}] sandbox capacity at {} in flight: {capacity:.0} tickets/s", args.concurrency);

    // 3. Delivery by the worker.
    let worker_config = WorkerConfig {
        concurrency: args.concurrency,
        per_integration: args.concurrency.div_ceil(args.integrations),
        lease: Duration::from_secs(300),
        poll: Duration::from_millis(200),
        max_attempts: 25,
        backoff: Backoff { base: Duration::from_secs(1), max: Duration::from_secs(30) },
        shutdown_grace: Duration::from_secs(35),
        heartbeat: Duration::from_secs(2),
        stale_after: Duration::from_secs(8),
    };
    let deps = Deps {
        db: db.clone(),
        ticketing: state.ticketing.clone(),
        secrets: secrets.clone(),
        wake: Default::default(),
        metrics: Default::default(),
    };
    let started = Instant::now();
    let handle = worker::spawn(deps, worker_config);
    let mut last_report = Instant::now();
    loop {
        let left = app::delivery::store::outstanding(&db).await?;
        if left == 0 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            let done = queued as i64 - left;
            eprintln!(
                "[{backend}]   {done}/{queued} delivered ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        // Counting is not free (a scan of the outstanding rows): often enough for a 1% error, no more.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = started.elapsed();
    handle.shutdown().await;
    let failed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered'").fetch_one(&db.pool).await?;
    if failed > 0 {
        return Err(format!("{failed} deliveries did not end Delivered").into());
    }
    let delivery_rate = queued as f64 / elapsed.as_secs_f64();
    eprintln!(
        "[{backend}] delivered {queued} tickets in {:.1} s: {delivery_rate:.0}/s ({:.0}% of capacity)",
        elapsed.as_secs_f64(),
        100.0 * delivery_rate / capacity
    );
    Ok(Report {
        backend: backend.to_owned(),
        import_rate,
        capacity,
        delivery_rate,
        deliveries: queued,
        peak_mib: peak_memory_mib(),
    })
}

const ROW_MARK: &str = "ROW ";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Arguments first: `--sandbox-port` turns this process into the sandbox, on a runtime of its own.
    let args = args();
    tokio::runtime::Runtime::new()?.block_on(bench(args))
}

async fn bench(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let [backend] = args.backends.as_slice() {
        // One backend per process, so that each peak memory figure is its own.
        let r = run(backend, &args).await?;
        println!(
            "{ROW_MARK}| {} | {:.0} | {:.0} | {:.0} | {:.0}% | {} | {:.0} MiB |",
            r.backend,
            r.import_rate,
            r.capacity,
            r.delivery_rate,
            100.0 * r.delivery_rate / r.capacity,
            r.deliveries,
            r.peak_mib
        );
        return Ok(());
    }
    println!(
        "delivery_bench: {}, {} compromises, {} organizations, {} integrations, {} in flight, sandbox latency {} ms",
        args.system.label(),
        args.compromises,
        args.organizations,
        args.integrations,
        args.concurrency,
        args.latency_ms
    );
    let mut rows = Vec::new();
    for backend in &args.backends {
        let mut child_args: Vec<String> = std::env::args().skip(1).collect();
        if let Some(at) = child_args.iter().position(|a| a == "--backend") {
            child_args.drain(at..(at + 2).min(child_args.len()));
        }
        child_args.extend(["--backend".to_owned(), backend.clone()]);
        let out = Command::new(std::env::current_exe()?).args(&child_args).stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            return Err(format!("the {backend} run failed").into());
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        rows.extend(text.lines().filter_map(|l| l.strip_prefix(ROW_MARK)).map(str::to_owned));
    }
    println!();
    println!(
        "| Backend | Import (records/s) | Sandbox capacity (tickets/s) | Delivery (tickets/s) | Share | Deliveries \
         | Peak memory |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
