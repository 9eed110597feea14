//! Sign-in under a flood: `cargo run --release -p server --bin sign_in_bench` (builds and runs the real `server`
//! binary beside it, so `cargo build --release -p server` first).
//!
//! Starts `target/release/server` on a fresh SQLite database (dev mode, one trusted proxy hop so each attacker can
//! have an address of its own), then for `--secs` seconds keeps `--attackers` failed sign-ins in flight — each
//! attacker a host of its own address, guessing the passwords of random emails — while a legitimate partner signs in
//! from a fresh address every half second and `/healthz` is fetched every 100 ms. Reports what the server answered,
//! its peak resident memory (VmHWM of the server process), and the legitimate sign-ins' and health checks'
//! latencies. Nothing here is a pass/fail test: the figures go in the README.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Failed sign-ins kept in flight.
    #[arg(long, default_value_t = 300)]
    attackers: usize,
    /// How long the flood lasts.
    #[arg(long, default_value_t = 15)]
    secs: u64,
    /// The server binary (default: `server` beside this one).
    #[arg(long)]
    server: Option<PathBuf>,
}

const PASSWORD: &str = "the partners real password";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("server"),
    };
    let dir = std::env::temp_dir().join(format!("dwid-sign-in-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server(
        Command::new(&binary)
            .env("APP_MODE", "dev")
            .env("DATA_DIR", &dir)
            .env("DEMO_PASSWORD", PASSWORD)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("TRUSTED_PROXY_HOPS", "1")
            .env("CW_SANDBOX_ADDR", "off")
            .env("DELIVERY_WORKER", "false")
            .env("LOG_LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("the server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(flood(&args, &base))?;
    let rss = peak_rss_kib(pid);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "Sign-in flood: {} failed sign-ins kept in flight for {} s against {binary:?} ({} cores)",
        args.attackers,
        args.secs,
        std::thread::available_parallelism()?.get()
    );
    println!(
        "attack answers: {} in all; {} checked (400), {} throttled by the limits (429), {} refused busy (429), {} other",
        report.total, report.checked, report.throttled, report.busy, report.other
    );
    println!("server peak RSS (VmHWM): {:.1} MiB", rss.unwrap_or(0) as f64 / 1024.0);
    print_latencies("legitimate sign-in (fresh address, right password)", &report.legit, report.legit_failed);
    print_latencies("GET /healthz", &report.health, 0);
    Ok(())
}

#[derive(Default)]
struct Report {
    total: u64,
    checked: u64,
    throttled: u64,
    busy: u64,
    other: u64,
    legit: Vec<Duration>,
    legit_failed: usize,
    health: Vec<Duration>,
}

async fn flood(args: &Args, base: &str) -> Result<Report, Box<dyn std::error::Error>> {
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(512).build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..args.attackers {
        let (client, stop, counts, url) = (client.clone(), stop.clone(), counts.clone(), format!("{base}/api/sign_in"));
        attackers.spawn(async move {
            let address = format!("198.18.{}.{}", n / 250, n % 250 + 1);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = format!("email=user{}%40victim{n}.example&password=guess{i}", i % 7);
                let answer = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/json")
                    .header("sec-fetch-site", "same-origin")
                    .header("x-forwarded-for", &address)
                    .body(body)
                    .send()
                    .await;
                let slot = match answer {
                    Ok(response) if response.status() == 400 => 0,
                    Ok(response) if response.status() == 429 => {
                        let text = response.text().await.unwrap_or_default();
                        if text.contains("Busy") { 2 } else { 1 }
                    }
                    _ => 3,
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
                counts[4].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Let the flood build up before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = tokio::spawn({
        let (client, stop, url) = (client.clone(), stop.clone(), format!("{base}/healthz"));
        async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                    samples.push(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        }
    });
    let mut legit = Vec::new();
    let mut legit_failed = 0;
    let end = Instant::now() + Duration::from_secs(args.secs);
    let mut n = 0;
    while Instant::now() < end {
        n += 1;
        let started = Instant::now();
        let answer = client
            .post(format!("{base}/api/sign_in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("sec-fetch-site", "same-origin")
            .header("x-forwarded-for", format!("203.0.113.{}", n % 250 + 1))
            .body(format!("email=demo%40partner.example&password={}", PASSWORD.replace(' ', "+")))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => legit.push(started.elapsed()),
            Ok(response) => {
                legit_failed += 1;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                eprintln!("legitimate sign-in refused: {status} {}", text.chars().take(200).collect::<String>());
            }
            Err(err) => {
                legit_failed += 1;
                eprintln!("legitimate sign-in failed: {err}");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    while attackers.join_next().await.is_some() {}
    let health = health.await?;
    Ok(Report {
        checked: counts[0].load(Ordering::Relaxed),
        throttled: counts[1].load(Ordering::Relaxed),
        busy: counts[2].load(Ordering::Relaxed),
        other: counts[3].load(Ordering::Relaxed),
        total: counts[4].load(Ordering::Relaxed),
        legit,
        legit_failed,
        health,
    })
}

fn print_latencies(what: &str, samples: &[Duration], failed: usize) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
    println!(
        "{what}: {} ok, {failed} failed; min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        sorted.len(),
        at(0.0).as_secs_f64() * 1000.0,
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0
    );
}

/// The peak resident set of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
