//! `import_bench`: how fast compromises are imported, through the same parser and store as
//! `POST /api/v1/compromises`, fan-out to the outbox included. Not a test: run it in release and read the report
//! (the README quotes it):
//!
//! ```text
//! cargo run --release -p server --features app/ssr --bin import_bench -- \
//!     [--compromises 200000] [--batch 10000] [--organizations 200] [--integrations 2] \
//!     [--database-url postgres://user:pass@host:5432/postgres]
//! ```
//!
//! Seeds a throw-away database (a temporary SQLite file by default; with `--database-url postgres://…` a fresh
//! database created through that account and dropped at the end) with one partner, `--organizations`
//! organizations and `--integrations` Active integrations associated with every one of them. Then imports
//! `--compromises` new records as NDJSON bodies of `--batch` records, each parsed (`compromises::parse_ndjson`)
//! and stored (`compromises::store::import_within`, with the default waiting-deliveries cap, as the API does) one
//! after the other: records per second over the whole run, and the parse and store shares. Finally the first
//! batch is imported again (every uuid known: nothing changes) to time the idempotent path, and the bench checks
//! that the database holds exactly one compromise per record and one delivery per (compromise, integration).

use std::time::{Duration, Instant};

use clap::Parser;

use app::activity::Actor;
use app::compromises::Limits;
use app::db::{Backend, Db};
use app::integrations::store::{self as integrations};

#[derive(Parser)]
#[command(about = "Compromise import rate (parse + store + outbox fan-out) on SQLite or PostgreSQL")]
struct Args {
    /// New records imported in total.
    #[arg(long, default_value_t = 200_000)]
    compromises: usize,
    /// Records per NDJSON body (the API's default limit is 10,000).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Organizations of the partner (records go round them).
    #[arg(long, default_value_t = 200)]
    organizations: usize,
    /// Active integrations, each associated with every organization: deliveries per record.
    #[arg(long, default_value_t = 2)]
    integrations: usize,
    /// A PostgreSQL account allowed to create databases; default: a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the database at the end (its URL is printed), to look at it.
    #[arg(long)]
    keep: bool,
}

async fn count(db: &Db, sql: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&db.pool).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (url, scratch) = server::bench::Scratch::create(args.database_url.as_deref(), "import").await?;
    let result = run(&args, &url).await;
    if args.keep {
        println!("kept {}", app::db::redact_url(&url));
    } else {
        scratch.remove().await;
    }
    result
}

async fn run(args: &Args, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::connect(url, 8).await?;
    let secrets = app::secrets::SecretBox::new(&[7u8; 32]);
    let actor = Actor::operator("import_bench");
    let partner = app::auth::store::create_partner(&db, "bench@msp.example", "a long enough password").await?.id;
    let organizations: Vec<String> = (0..args.organizations).map(|i| format!("Client {i:04} Ltd")).collect();
    for name in &organizations {
        app::organizations::store::add(&db, partner, name, None, &actor).await?;
    }
    for i in 0..args.integrations {
        let name = format!("Bench desk {}", i + 1);
        let write = server::bench::stand_in_integration(&name);
        // A new integration is associated with every organization.
        let id = integrations::create(&db, partner, &write, &actor).await?;
        integrations::set_active(&db, partner, id, true, &actor).await?;
    }
    if db.backend == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&db.pool).await?;
    }
    println!(
        "import_bench on {:?}: {} records in NDJSON bodies of {}, {} organizations, {} Active integrations \
         ({} cores)",
        db.backend,
        args.compromises,
        args.batch,
        args.organizations,
        args.integrations,
        std::thread::available_parallelism()?.get()
    );

    // The cap the API applies by default (config `MAX_QUEUED_DELIVERIES_PER_PARTNER`), large enough not to refuse.
    let max_waiting = 1_000_000_000;
    let limits = Limits { max_records: args.batch, max_body_bytes: 64 << 20 };
    let (mut parse_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    let mut batch_times = Vec::new();
    let mut queued = 0;
    for start in (0..args.compromises).step_by(args.batch) {
        // Building the body is the client's work: not timed.
        let body = server::bench::ndjson_batch(start, args.batch.min(args.compromises - start), &organizations);
        let t = Instant::now();
        let records = app::compromises::parse_ndjson(&body, &limits).map_err(|e| e.to_string())?;
        let parsed = t.elapsed();
        let summary = app::compromises::store::import_within(&db, &secrets, partner, &records, max_waiting).await?;
        let stored = t.elapsed() - parsed;
        parse_time += parsed;
        store_time += stored;
        batch_times.push(parsed + stored);
        if summary.imported != records.len() {
            return Err(format!("batch at {start}: {} of {} imported", summary.imported, records.len()).into());
        }
        queued += summary.deliveries_queued;
    }
    let timed = parse_time + store_time;
    let rate = args.compromises as f64 / timed.as_secs_f64();
    batch_times.sort();
    println!(
        "imported {} records, {queued} deliveries queued, in {:.2} s: {rate:.0} records/s ({:.0} deliveries/s)",
        args.compromises,
        timed.as_secs_f64(),
        queued as f64 / timed.as_secs_f64()
    );
    println!(
        "  parse {:.2} s ({:.0}%), store {:.2} s; per batch min {:.0} / median {:.0} / max {:.0} ms",
        parse_time.as_secs_f64(),
        100.0 * parse_time.as_secs_f64() / timed.as_secs_f64(),
        store_time.as_secs_f64(),
        batch_times.first().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        batch_times.get(batch_times.len() / 2).copied().unwrap_or_default().as_secs_f64() * 1000.0,
        batch_times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );

    // The first batch again: every uuid is known, nothing may change.
    let body = server::bench::ndjson_batch(0, args.batch.min(args.compromises), &organizations);
    let t = Instant::now();
    let records = app::compromises::parse_ndjson(&body, &limits).map_err(|e| e.to_string())?;
    let summary = app::compromises::store::import_within(&db, &secrets, partner, &records, max_waiting).await?;
    let again = t.elapsed();
    println!(
        "re-import of {} known records: {:.0} ms ({:.0} records/s), {} imported, {} duplicates, {} queued",
        records.len(),
        again.as_secs_f64() * 1000.0,
        records.len() as f64 / again.as_secs_f64(),
        summary.imported,
        summary.duplicates,
        summary.deliveries_queued
    );
    let compromises = count(&db, "SELECT COUNT(*) FROM compromises").await?;
    let deliveries = count(&db, "SELECT COUNT(*) FROM deliveries").await?;
    let expected = (args.compromises * args.integrations) as i64;
    if compromises != args.compromises as i64 || deliveries != expected || summary.imported != 0 {
        return Err(format!("the database holds {compromises} compromises and {deliveries} deliveries").into());
    }
    println!("checked: {compromises} compromises, {deliveries} deliveries");
    db.pool.close().await;
    Ok(())
}
