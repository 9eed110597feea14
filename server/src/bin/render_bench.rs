//! `render_bench`: the server-side render time of the Integrations page for a large partner, and the size of the
//! release browser bundle. Not a test: run it in release and read the report:
//!
//! ```text
//! cargo run --release -p server --features app/ssr --bin render_bench -- \
//!     [--integrations 500] [--organizations 5000] [--iterations 50] [--warmups 5] \
//!     [--database-url postgres://user:pass@host:5432/postgres] [--wasm target/site/pkg/dwid-integrations.wasm]
//! ```
//!
//! 1. Seeds a throw-away database (a temporary SQLite file under the OS temp dir by default; with `--database-url
//!    postgres://…` a fresh database created through that account, as `app::testing` does, and dropped at the end)
//!    with one partner, `--integrations` integrations (store functions: sealed dummy credentials, a mix of
//!    Active/Inactive and Healthy/Unhealthy/Not checked) and `--organizations` organizations each associated with 1–3
//!    integrations chosen at random (fixed seed). Organizations and associations are written with batched multi-row
//!    INSERTs in one transaction: the same rows `organizations::store::add` writes, without one transaction and one
//!    integration-id query per organization.
//! 2. Signs in through the router (`POST /api/sign_in`) and times, over the real router (`routes::router(state)`,
//!    every layer included) in this process: `GET /integrations` (the full server-rendered HTML, whole body read),
//!    the same with a browser's `Accept-Encoding` (the compression layer's cost and the bytes on the wire),
//!    `POST /api/integrations/list` (the JSON the page polls every 4 s) and, to split database from rendering, the
//!    `integrations::service::list` call both of them make.
//! 3. Reports the size of the release wasm (`cargo leptos build --release`), raw and `gzip -9`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use clap::Parser;
use http::{Request, StatusCode, header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower::ServiceExt;

use app::connectwise::Auth;
use app::db::Backend;
use app::integrations::store::{self as integrations, IntegrationWrite};
use app::integrations::{AuthKind, System};
use app::state::AppState;

const EMAIL: &str = "bench@partner.example";
const PASSWORD: &str = "correct horse battery";
/// What Chromium sends; the compression layer answers with Brotli.
const BROWSER_ENCODINGS: &str = "gzip, deflate, br, zstd";

#[derive(Parser)]
#[command(about = "Server-side render time of the Integrations page, and the release wasm size")]
struct Args {
    /// Integrations of the partner.
    #[arg(long, default_value_t = 500)]
    integrations: usize,
    /// Organizations of the partner, each associated with 1–3 integrations.
    #[arg(long, default_value_t = 5_000)]
    organizations: usize,
    /// Timed requests per measurement.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Untimed requests before each measurement.
    #[arg(long, default_value_t = 5)]
    warmups: usize,
    /// A PostgreSQL account allowed to create databases (e.g. postgres://dwid_test:dwid_test@127.0.0.1:5432/postgres):
    /// a throw-away database is created through it and dropped at the end. Default: a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// The release wasm bundle (default: target/site/pkg/dwid-integrations.wasm in the workspace).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Also write one rendered page to this file, to inspect what makes it large.
    #[arg(long)]
    save_html: Option<PathBuf>,
}

const COMPANIES: [&str; 20] = [
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Massive Dynamic",
    "Oceanic",
    "Pied Piper",
    "Aperture",
    "Müller & Söhne",
    "Gringotts",
];
const TRADES: [&str; 10] = [
    "Dental",
    "Legal",
    "Logistics",
    "Accounting",
    "Medical Group",
    "Construction",
    "Realty",
    "Consulting",
    "Manufacturing",
    "Insurance",
];
const SUFFIXES: [&str; 5] = ["Inc.", "LLC", "Ltd", "& Co.", "GmbH"];
const REGIONS: [&str; 5] = ["North America", "EU", "APAC", "UK", "Sandbox"];

fn organization_name(i: usize) -> String {
    format!(
        "{} {} {:04} {}",
        COMPANIES[i % COMPANIES.len()],
        TRADES[(i / COMPANIES.len()) % TRADES.len()],
        i,
        SUFFIXES[i % SUFFIXES.len()]
    )
}

struct Seeded {
    partner_id: i64,
    associations: usize,
    per_integration: (usize, usize),
}

async fn seed(state: &AppState, args: &Args) -> Result<Seeded, Box<dyn std::error::Error>> {
    let db = &state.db;
    let partner_id = app::auth::store::create_partner(db, EMAIL, PASSWORD).await?.id;
    let context = format!("dwid:partner:{partner_id}:connectwise-credentials");
    let mapping = serde_json::json!([
        { "field": "summary", "value": "Dark Web ID: [compromise_count] new compromises for [organization]" },
        { "field": "initialDescription", "value": "[compromise_details]" },
        { "field": "company", "value": "" },
        { "field": "board", "value": "1" },
        { "field": "status", "value": "16" },
        { "field": "priority", "value": "8" }
    ])
    .to_string();

    // Integrations through the store (one transaction each; there are no organizations yet, so none is associated).
    let mut integration_ids = Vec::with_capacity(args.integrations);
    for i in 0..args.integrations {
        let auth = Auth::ApiMember { public_key: format!("PUB{i:05}"), private_key: format!("PRIVATE-{i:05}-secret") };
        let sealed = state.secrets.seal(&serde_json::to_string(&auth)?, &context)?;
        let name = format!("ConnectWise {} {:03}", REGIONS[i % REGIONS.len()], i);
        let company_id = format!("msp{i:03}");
        let write = IntegrationWrite {
            name: &name,
            system: System::ConnectWise.as_db(),
            site: "https://na.myconnectwise.net",
            company_id: &company_id,
            auth_kind: AuthKind::ApiKeys,
            credentials_sealed: &sealed,
            mapping_json: &mapping,
            settings_json: "{}",
        };
        let id = integrations::create(db, partner_id, &write, &app::activity::Actor::operator("render_bench")).await?;
        // Half Active; three in five Healthy, one Unhealthy (with ConnectWise's error), one never checked.
        if i % 2 == 0 {
            integrations::set_active(db, partner_id, id, true, &app::activity::Actor::operator("render_bench")).await?;
        }
        match i % 5 {
            0..=2 => integrations::record_health(db, id, Ok(())).await?,
            3 => {
                integrations::record_health(
                    db,
                    id,
                    Err("ConnectWise refused the ticket: status \"New (portal)\" is not on board \"Help Desk\" (400)."),
                )
                .await?
            }
            _ => {}
        }
        integration_ids.push(id);
    }

    // Organizations and associations: batched INSERTs in one transaction (see the module comment).
    let mut rng = StdRng::seed_from_u64(0x0d1d);
    let now = app::db::now_millis();
    let mut tx = db.pool.begin().await?;
    let mut org_ids = Vec::with_capacity(args.organizations);
    for chunk in (0..args.organizations).collect::<Vec<_>>().chunks(200) {
        let values = (0..chunk.len())
            .map(|k| format!("($1, ${}, ${}, $2, $2)", 3 + 2 * k, 4 + 2 * k))
            .collect::<Vec<_>>()
            .join(", ");
        // $1 = partner, $2 = time, then one (name, name_key) pair per organization.
        let sql = format!(
            "INSERT INTO organizations (partner_id, name, name_key, created_at, updated_at) VALUES {values} \
             RETURNING id"
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(partner_id).bind(now);
        for &i in chunk {
            let name = organization_name(i);
            query = query.bind(name.clone()).bind(app::organizations::name_key(&name));
        }
        org_ids.extend(query.fetch_all(&mut *tx).await?);
    }
    let mut pairs = Vec::new();
    let mut per_integration = vec![0usize; integration_ids.len()];
    for &org in &org_ids {
        if integration_ids.is_empty() {
            break;
        }
        let k = rng.gen_range(1..=3).min(integration_ids.len());
        for index in rand::seq::index::sample(&mut rng, integration_ids.len(), k) {
            per_integration[index] += 1;
            pairs.push((org, integration_ids[index]));
        }
    }
    for chunk in pairs.chunks(400) {
        let values =
            (0..chunk.len()).map(|k| format!("(${}, ${})", 1 + 2 * k, 2 + 2 * k)).collect::<Vec<_>>().join(", ");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO organization_integrations (organization_id, integration_id) VALUES {values}"
        )));
        for &(org, integration) in chunk {
            query = query.bind(org).bind(integration);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    if db.backend == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&db.pool).await?;
    }
    let min = per_integration.iter().copied().min().unwrap_or(0);
    let max = per_integration.iter().copied().max().unwrap_or(0);
    Ok(Seeded { partner_id, associations: pairs.len(), per_integration: (min, max) })
}

/// One request through the router: time to the response head, time to the last body byte, body bytes.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Duration, Duration, Vec<u8>, String) {
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.expect("the router is infallible");
    let head = started.elapsed();
    let status = response.status();
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_string();
    let body = to_bytes(response.into_body(), 256 << 20).await.expect("read the response body");
    (status, head, started.elapsed(), body.to_vec(), encoding)
}

struct Series {
    head: Vec<Duration>,
    total: Vec<Duration>,
    bytes: usize,
    encoding: String,
}

async fn measure(
    router: &Router,
    args: &Args,
    request: impl Fn() -> Request<Body>,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Series, String> {
    let mut series = Series { head: Vec::new(), total: Vec::new(), bytes: 0, encoding: String::new() };
    for round in 0..args.warmups + args.iterations {
        let (status, head, total, body, encoding) = send(router, request()).await;
        if status != StatusCode::OK {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&body)));
        }
        if round == 0 {
            check(&body)?;
        }
        if round >= args.warmups {
            series.head.push(head);
            series.total.push(total);
            series.bytes = body.len();
            series.encoding = encoding;
        }
    }
    series.head.sort();
    series.total.sort();
    Ok(series)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "min {} / median {} / p95 {} / max {}",
        ms(percentile(sorted, 0.0)),
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.95)),
        ms(percentile(sorted, 1.0)),
    )
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB ({bytes} bytes)", bytes as f64 / 1024.0)
}

fn report(what: &str, series: &Series, args: &Args) {
    println!("{what} x{} (after {} warm-ups):", args.iterations, args.warmups);
    println!("  whole body   {}", summary(&series.total));
    println!("  head only    {}", summary(&series.head));
    println!("  body size    {} {}", kib(series.bytes), series.encoding);
}

fn wasm_report(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        println!("wasm: {} is missing: run `cargo leptos build --release` first (skipped)", path.display());
        return;
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| app::integrations::service::format_time(d.as_millis() as i64))
        .unwrap_or_default();
    let gzip = std::fs::File::open(path).and_then(|file| {
        std::process::Command::new("gzip").arg("-9c").stdin(file).output().and_then(|out| {
            if out.status.success() { Ok(out.stdout.len()) } else { Err(std::io::Error::other("gzip failed")) }
        })
    });
    let gzip = match gzip {
        Ok(bytes) => kib(bytes),
        Err(err) => format!("unavailable ({err})"),
    };
    println!("wasm {} (built {modified}):", path.display());
    println!("  raw          {}", kib(meta.len() as usize));
    println!("  gzip -9      {gzip}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, scratch) = server::bench::Scratch::create(args.database_url.as_deref(), "render").await?;
    let result = run(&args, &url).await;
    scratch.remove().await;
    result?;
    let wasm = args.wasm.clone().unwrap_or_else(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
        workspace.join("target/site/pkg/dwid-integrations.wasm")
    });
    wasm_report(&wasm);
    Ok(())
}

async fn run(args: &Args, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let state = server::bench::dev_state(url).await?;
    println!(
        "Integrations page render benchmark ({} cores available, {:?} database)",
        std::thread::available_parallelism()?.get(),
        state.db.backend
    );

    let started = Instant::now();
    let seeded = seed(&state, args).await?;
    println!(
        "seeded in {:.1} s: {} integrations, {} organizations, {} associations ({}–{} organizations per integration)",
        started.elapsed().as_secs_f64(),
        args.integrations,
        args.organizations,
        seeded.associations,
        seeded.per_integration.0,
        seeded.per_integration.1,
    );

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
                )))
                .expect("sign-in request"),
        )
        .await
        .expect("the router is infallible");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = to_bytes(response.into_body(), 1 << 20).await?;
    if !status.is_success() {
        return Err(format!("sign in: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("sign in set no session cookie")?
        .to_string();

    let expected_rows = args.integrations;
    let last_name =
        format!("ConnectWise {} {:03}", REGIONS[(expected_rows.max(1) - 1) % REGIONS.len()], expected_rows.max(1) - 1);
    let page = || {
        Request::get("/integrations")
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("page request")
    };
    let html = measure(&router, args, page, |body| {
        let text = String::from_utf8_lossy(body);
        let rows = text.matches("class=\"integration-name\"").count();
        if rows != expected_rows || !text.contains(&last_name) || !text.contains("</html>") {
            return Err(format!("the page has {rows} integration rows, expected {expected_rows}"));
        }
        if let Some(path) = &args.save_html {
            std::fs::write(path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    })
    .await?;
    report("GET /integrations (SSR HTML, no compression)", &html, args);

    let compressed = measure(
        &router,
        args,
        || {
            let mut request = page();
            request.headers_mut().insert(header::ACCEPT_ENCODING, http::HeaderValue::from_static(BROWSER_ENCODINGS));
            request
        },
        |_| Ok(()),
    )
    .await?;
    report("GET /integrations with a browser's Accept-Encoding (br)", &compressed, args);

    let poll = |encoding: Option<&'static str>| {
        let mut request = Request::post("/api/integrations/list")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header("sec-fetch-site", "same-origin")
            .header(header::COOKIE, &cookie);
        if let Some(encoding) = encoding {
            request = request.header(header::ACCEPT_ENCODING, encoding);
        }
        request.body(Body::empty()).expect("list request")
    };
    let list = measure(
        &router,
        args,
        || poll(None),
        |body| {
            let rows: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            if rows.len() != expected_rows {
                return Err(format!("the list has {} rows, expected {expected_rows}", rows.len()));
            }
            Ok(())
        },
    )
    .await?;
    report("POST /api/integrations/list (JSON poll, no compression)", &list, args);
    let list_compressed = measure(&router, args, || poll(Some(BROWSER_ENCODINGS)), |_| Ok(())).await?;
    report("POST /api/integrations/list with a browser's Accept-Encoding (br)", &list_compressed, args);

    // The database part of both: the store query and the mapping to rows, without HTTP or rendering.
    let mut times = Vec::with_capacity(args.iterations);
    for round in 0..args.warmups + args.iterations {
        let t = Instant::now();
        let rows = app::integrations::service::list(&state.db, seeded.partner_id).await?;
        if round >= args.warmups {
            times.push(t.elapsed());
        }
        assert_eq!(rows.len(), expected_rows, "service::list rows");
    }
    times.sort();
    println!("integrations::service::list x{} (database + rows, no HTTP):", args.iterations);
    println!("  {}", summary(&times));

    state.db.pool.close().await;
    Ok(())
}
