//! `cw_bench`: the ConnectWise sandbox's raw capacity and the client's overhead per call. Not a test: run it in
//! release (`cargo run --release -p server --bin cw_bench -- [--tickets N] [--calls M] [--concurrency C]`) and read
//! the report. Everything runs in this process on loopback: the sandbox and the load share the machine's cores.
//!
//! 1. Capacity: `--tickets` ticket creations (`POST service/tickets`, full Manage validation) sent by a bare HTTP
//!    client with `--concurrency` requests in flight; tickets per second and latency percentiles.
//! 2. Overhead: `--calls` sequential `system/info` calls, once through a bare HTTP client and once through
//!    [`CwClient`] (URL policy check, guarded DNS, headers, body cap, error mapping, tracing); the difference per call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::connectwise::{Auth, ClientConfig, Credentials, CwClient, SitePolicy};
use server::sandbox::{self, SandboxConfig};

struct Args {
    tickets: usize,
    calls: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut args = Args { tickets: 20_000, calls: 2_000, concurrency: 16 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<usize>().ok());
        match (flag.as_str(), value) {
            ("--tickets", Some(v)) => args.tickets = v,
            ("--calls", Some(v)) => args.calls = v,
            ("--concurrency", Some(v)) => args.concurrency = v.max(1),
            _ => {
                eprintln!("usage: cw_bench [--tickets N] [--calls M] [--concurrency C]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let running =
        sandbox::spawn(SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() }).await?;
    let base = format!("{}/{}apis/3.0", running.url(), sandbox::CODEBASE);
    let auth =
        Auth::ApiMember { public_key: sandbox::DEMO_PUBLIC_KEY.into(), private_key: sandbox::DEMO_PRIVATE_KEY.into() }
            .authorization(sandbox::DEMO_COMPANY_ID);
    let raw = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(64).build()?;
    let get_raw = |url: String| {
        raw.get(url)
            .header("authorization", auth.clone())
            .header("clientId", sandbox::DEMO_CLIENT_ID)
            .header("accept", app::connectwise::ACCEPT_VERSIONED)
            .send()
    };
    println!("ConnectWise sandbox benchmark ({} cores available)", std::thread::available_parallelism()?.get());

    // 1. Capacity.
    let ticket = serde_json::json!({
        "summary": "Dark Web ID: 3 new compromises for Acme Corporation",
        "company": { "identifier": "AcmeCorporation" },
        "board": { "name": "Security Operations" },
        "status": { "name": "Triage" },
        "priority": { "id": 2 },
        "initialDescription": "j.doe@acme.example found in a combo list. ".repeat(10),
        "externalXRef": "dwid:bench",
    })
    .to_string();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (raw, url, auth, ticket, next) =
            (raw.clone(), format!("{base}/service/tickets"), auth.clone(), ticket.clone(), next.clone());
        let total = args.tickets;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t = Instant::now();
                let response = raw
                    .post(&url)
                    .header("authorization", auth.clone())
                    .header("clientId", sandbox::DEMO_CLIENT_ID)
                    .header("content-type", "application/json")
                    .body(ticket.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    Ok(r) => return Err(format!("unexpected status {}", r.status())),
                    Err(err) => return Err(err.to_string()),
                }
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let stored = running.sandbox.tickets().await.len();
    println!(
        "capacity: {} tickets created in {:.2} s at concurrency {} = {:.0} tickets/s (p50 {}, p99 {}); {} stored",
        latencies.len(),
        elapsed.as_secs_f64(),
        args.concurrency,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        stored,
    );

    // 2. Client overhead, sequential so the numbers are per call rather than per core.
    let client = CwClient::new(ClientConfig {
        client_id: Some(sandbox::DEMO_CLIENT_ID.into()),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        policy: SitePolicy::dev(),
        limits: Default::default(),
    })?;
    let credentials = Credentials {
        site: running.url(),
        company_id: sandbox::DEMO_COMPANY_ID.into(),
        auth: Auth::ApiMember {
            public_key: sandbox::DEMO_PUBLIC_KEY.into(),
            private_key: sandbox::DEMO_PRIVATE_KEY.into(),
        },
    };
    let session = client.session(&credentials).await?;
    // Warm both connection pools.
    for _ in 0..50 {
        session.test_connection().await?;
        get_raw(format!("{base}/system/info")).await?.bytes().await?;
    }
    let mut raw_times = Vec::with_capacity(args.calls);
    let mut client_times = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        let t = Instant::now();
        let body = get_raw(format!("{base}/system/info")).await?.bytes().await?;
        let _: serde_json::Value = serde_json::from_slice(&body)?;
        raw_times.push(t.elapsed());
        let t = Instant::now();
        session.test_connection().await?;
        client_times.push(t.elapsed());
    }
    raw_times.sort();
    client_times.sort();
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
    let (raw_mean, client_mean) = (mean(&raw_times), mean(&client_times));
    println!(
        "overhead: system/info x{}: bare reqwest mean {} (p50 {}), CwClient mean {} (p50 {}); client overhead {:.1} µs per call",
        args.calls,
        ms(raw_mean),
        ms(percentile(&raw_times, 0.5)),
        ms(client_mean),
        ms(percentile(&client_times, 0.5)),
        (client_mean.as_secs_f64() - raw_mean.as_secs_f64()) * 1e6,
    );
    let t = Instant::now();
    let companies = session.companies().await?;
    println!("listing: all {} companies (3 pages of 1000) through CwClient in {}", companies.len(), ms(t.elapsed()));
    running.handle.abort();
    Ok(())
}
