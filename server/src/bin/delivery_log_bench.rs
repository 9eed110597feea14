//! `delivery_log_bench`: the Delivery log's server time for one integration with a million deliveries. Not a
//! test: run it in release and read the report (the README quotes it):
//!
//! ```text
//! cargo run --release -p server --features app/ssr --bin delivery_log_bench -- \
//!     [--deliveries 1000000] [--organizations 200] [--iterations 50] [--warmups 5] \
//!     [--database-url postgres://user:pass@host:5432/postgres]
//! ```
//!
//! 1. Seeds a throw-away database (a temporary SQLite file by default; with `--database-url postgres://…` a fresh
//!    database created through that account and dropped at the end): one partner, `--organizations`
//!    organizations and one Active integration associated with all of them; `--deliveries` compromises imported
//!    through `compromises::store::import` in batches of 10,000 (so the outbox queues one delivery each, and the
//!    counters are kept as in production). Then states are set as after a year of work: 1% Failed, 1% Retrying,
//!    1% Pending, the rest Delivered (one `UPDATE` per state; the triggers keep the counts). On PostgreSQL,
//!    `VACUUM ANALYZE` follows, as autovacuum would.
//! 2. Signs in through the router and times `POST /api/deliveries/log` (the server function the page loads and
//!    its live refresh calls every 3 s: counts, organizations and one page of 50) over the real router
//!    (`routes::router(state)`, every layer) in this process: the first page, a page filtered by state (Failed),
//!    by organization, by both, and an older page (keyset). It also times the counts alone, as read now (the
//!    counters) and as read before (`COUNT(*) … GROUP BY state` over the integration's deliveries), and checks
//!    that both agree.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use clap::Parser;
use http::{Request, StatusCode, header};
use sqlx::Row;
use tower::ServiceExt;

use app::activity::Actor;
use app::compromises::{ImportRecord, OrganizationRef};
use app::db::Backend;
use app::delivery::DeliveryLog;
use app::integrations::store::{self as integrations};
use app::mapping::{PasswordCriteria, RecordType};
use app::state::AppState;

const EMAIL: &str = "bench@partner.example";
const PASSWORD: &str = "correct horse battery";

#[derive(Parser)]
#[command(about = "Delivery log server time at a million deliveries of one integration")]
struct Args {
    /// Deliveries of the integration (one per imported compromise).
    #[arg(long, default_value_t = 1_000_000)]
    deliveries: usize,
    /// Organizations of the partner, all associated with the integration.
    #[arg(long, default_value_t = 200)]
    organizations: usize,
    /// Timed requests per measurement.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Untimed requests before each measurement.
    #[arg(long, default_value_t = 5)]
    warmups: usize,
    /// A PostgreSQL account allowed to create databases; default: a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

fn record(n: usize, organization: i64) -> ImportRecord {
    ImportRecord {
        uuid: format!("c0000000-0000-4000-8000-{n:012}"),
        password: None,
        record_type: RecordType::Email,
        source: "Combolist 2026-11".into(),
        website: None,
        organization: OrganizationRef::ById(organization),
        compromise: format!("employee{n}@example.com"),
        password_criteria: PasswordCriteria::NotApplicable,
        search_value: "example.com".into(),
        date_added: "2026-11-27T08:00:00Z".into(),
        date_found: "2026-11-20T00:00:00Z".into(),
    }
}

struct Seeded {
    integration_id: i64,
    organization_id: i64,
}

async fn seed(state: &AppState, args: &Args) -> Result<Seeded, Box<dyn std::error::Error>> {
    let db = &state.db;
    let actor = Actor::operator("delivery_log_bench");
    let partner = app::auth::store::create_partner(db, EMAIL, PASSWORD).await?.id;
    let mut organizations = Vec::with_capacity(args.organizations);
    for i in 0..args.organizations {
        organizations
            .push(app::organizations::store::add(db, partner, &format!("Client {i:04} Ltd"), None, &actor).await?.id);
    }
    let write = server::bench::stand_in_integration("Help desk");
    let integration_id = integrations::create(db, partner, &write, &actor).await?;
    integrations::set_active(db, partner, integration_id, true, &actor).await?;
    let started = Instant::now();
    for start in (0..args.deliveries).step_by(10_000) {
        let batch: Vec<ImportRecord> = (start..(start + 10_000).min(args.deliveries))
            .map(|n| record(n, organizations[n % organizations.len()]))
            .collect();
        app::compromises::store::import(db, &state.secrets, partner, &batch).await?;
    }
    println!("imported {} compromises in {:.1} s", args.deliveries, started.elapsed().as_secs_f64());
    let started = Instant::now();
    // A year of work: most delivered, a few of each other state.
    for (state, remainder) in [("failed", 0), ("retrying", 1)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = '{state}', last_error = 'ConnectWise had a temporary problem (503).' \
             WHERE integration_id = $1 AND id % 100 = {remainder}"
        )))
        .bind(integration_id)
        .execute(&db.pool)
        .await?;
    }
    sqlx::query(
        "UPDATE deliveries SET state = 'delivered', ticket_id = id, delivered_at = updated_at \
         WHERE integration_id = $1 AND state = 'pending' AND id % 100 > 2",
    )
    .bind(integration_id)
    .execute(&db.pool)
    .await?;
    if db.backend == Backend::Postgres {
        sqlx::query("VACUUM ANALYZE").execute(&db.pool).await?;
    }
    println!("states set in {:.1} s", started.elapsed().as_secs_f64());
    Ok(Seeded { integration_id, organization_id: organizations[organizations.len() / 2] })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(sorted: &[Duration]) -> String {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    format!(
        "min {} / median {} / p95 {} / max {}",
        ms(percentile(sorted, 0.0)),
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.95)),
        ms(percentile(sorted, 1.0))
    )
}

async fn call_log(router: &Router, cookie: &str, form: &str) -> Result<(Duration, DeliveryLog), String> {
    let request = Request::post("/api/deliveries/log")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "same-origin")
        .header(header::COOKIE, cookie)
        .body(Body::from(form.to_owned()))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = to_bytes(response.into_body(), 64 << 20).await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if status != StatusCode::OK {
        return Err(format!("{form}: {status} {}", String::from_utf8_lossy(&body)));
    }
    Ok((elapsed, serde_json::from_slice(&body).map_err(|e| e.to_string())?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, scratch) = server::bench::Scratch::create(args.database_url.as_deref(), "log").await?;
    let result = run(&args, &url).await;
    scratch.remove().await;
    result
}

async fn run(args: &Args, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let state = server::bench::dev_state(url).await?;
    println!(
        "Delivery log benchmark on {:?}: {} deliveries of one integration over {} organizations ({} cores)",
        state.db.backend,
        args.deliveries,
        args.organizations,
        std::thread::available_parallelism()?.get()
    );
    let seeded = seed(&state, args).await?;

    let router = server::routes::router(state.clone());
    let response = router
        .clone()
        .oneshot(
            Request::post("/api/sign_in")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(format!(
                    "email={}&password={}",
                    EMAIL.replace('@', "%40"),
                    PASSWORD.replace(' ', "+")
                )))?,
        )
        .await?;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("sign in set no session cookie")?
        .to_string();

    let id = seeded.integration_id;
    let org = seeded.organization_id;
    let first = call_log(&router, &cookie, &format!("integration_id={id}")).await?.1;
    let older_than = first.rows.last().map(|r| r.id).ok_or("an empty first page")?;
    let cases = [
        ("first page (and the live refresh)", format!("integration_id={id}")),
        ("filtered by state (Failed)", format!("integration_id={id}&state=failed")),
        ("filtered by organization", format!("integration_id={id}&organization_id={org}")),
        ("filtered by state and organization", format!("integration_id={id}&state=retrying&organization_id={org}")),
        ("an older page (keyset)", format!("integration_id={id}&before_id={older_than}")),
    ];
    for (what, form) in &cases {
        let mut times = Vec::with_capacity(args.iterations);
        let mut rows = 0;
        for round in 0..args.warmups + args.iterations {
            let (elapsed, log) = call_log(&router, &cookie, form).await?;
            rows = log.rows.len();
            if round >= args.warmups {
                times.push(elapsed);
            }
        }
        times.sort();
        println!("POST /api/deliveries/log, {what}: {rows} rows");
        println!("  {}", summary(&times));
    }

    // The counts alone: the counters now, and the grouped count the log ran on every refresh before.
    let mut now = Vec::new();
    let mut before = Vec::new();
    let (mut from_counters, mut counted) = (Vec::new(), Vec::new());
    for round in 0..args.warmups + args.iterations {
        let t = Instant::now();
        let rows = sqlx::query("SELECT state, n FROM delivery_counts WHERE integration_id = $1 ORDER BY state")
            .bind(id)
            .fetch_all(&state.db.pool)
            .await?;
        let a = t.elapsed();
        let t = Instant::now();
        let grouped = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE integration_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(id)
        .fetch_all(&state.db.pool)
        .await?;
        let b = t.elapsed();
        if round >= args.warmups {
            now.push(a);
            before.push(b);
        }
        from_counters = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        counted = grouped
            .iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    }
    now.sort();
    before.sort();
    println!("state counts from the counters (now): {from_counters:?}");
    println!("  {}", summary(&now));
    println!("state counts by COUNT(*) … GROUP BY state (before): {counted:?}");
    println!("  {}", summary(&before));
    if from_counters != counted {
        return Err("the counters disagree with COUNT(*)".into());
    }
    state.db.pool.close().await;
    Ok(())
}
