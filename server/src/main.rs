#![recursion_limit = "512"]
//! `server`: runs the Partner Dashboard, and the operator commands beside it.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

use app::config::Config;
use app::db::Db;
use server::StartError;

#[derive(Parser)]
#[command(name = "server", about = "Dark Web ID Partner Dashboard: ConnectWise Manage ticketing integrations")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard (the default). Configured by the environment; see .env.example.
    Serve,
    /// Create a partner account. The password is read from standard input when it is not a terminal, otherwise
    /// prompted for (twice).
    CreatePartner {
        #[arg(long)]
        email: String,
    },
    /// Serve the ConnectWise Manage sandbox on 127.0.0.1 (every flag defaults to the demo account).
    CwSandbox(SandboxArgs),
    /// Serve the Autotask PSA sandbox on 127.0.0.1 (every flag defaults to the demo account and Autotask's limits).
    AutotaskSandbox(AutotaskSandboxArgs),
    /// Create an API token for a partner's import API calls and print it (it is shown only once).
    CreateApiToken {
        /// The partner's email.
        #[arg(long)]
        partner: String,
        /// What the token is for, e.g. "Dark Web ID sync".
        #[arg(long)]
        name: String,
    },
    /// Import compromises for a partner from a file: a JSON array, NDJSON or CSV (by extension, else sniffed).
    /// The whole file is validated first; nothing is imported when any record is invalid.
    Import {
        /// The partner's email.
        #[arg(long)]
        partner: String,
        /// The file to import.
        file: std::path::PathBuf,
    },
}

/// The sandbox's account and its faults at start (change them at run time with `POST /_sandbox/faults`).
#[derive(clap::Args)]
struct SandboxArgs {
    #[arg(long, default_value_t = 3005)]
    port: u16,
    #[arg(long, default_value = server::sandbox::DEMO_COMPANY_ID)]
    company_id: String,
    #[arg(long, default_value = server::sandbox::DEMO_PUBLIC_KEY)]
    public_key: String,
    #[arg(long, default_value = server::sandbox::DEMO_PRIVATE_KEY)]
    private_key: String,
    #[arg(long, default_value = server::sandbox::DEMO_CLIENT_ID)]
    client_id: String,
    #[arg(long, default_value = server::sandbox::DEMO_INTEGRATOR_USERNAME)]
    integrator_username: String,
    #[arg(long, default_value = server::sandbox::DEMO_INTEGRATOR_PASSWORD)]
    integrator_password: String,
    /// Share of API calls answered 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of API calls answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_rate: f64,
    #[arg(long, default_value_t = 30)]
    retry_after_secs: u64,
    /// Bursts of 429s: every this many milliseconds (since the sandbox started), every API call is answered 429 for
    /// --rate-limit-burst-ms (0 = off).
    #[arg(long, default_value_t = 0)]
    rate_limit_burst_every_ms: u64,
    /// How long each burst of 429s lasts, in milliseconds.
    #[arg(long, default_value_t = 0)]
    rate_limit_burst_ms: u64,
    /// Milliseconds added to every API call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of new tickets (0.0 to 1.0) stored, then stalled --stall-secs before the answer (the client times out).
    #[arg(long, default_value_t = 0.0)]
    timeout_after_commit_rate: f64,
    #[arg(long, default_value_t = 120)]
    stall_secs: u64,
}

impl SandboxArgs {
    fn into_config(self) -> server::sandbox::SandboxConfig {
        server::sandbox::SandboxConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            company_id: self.company_id,
            public_key: self.public_key,
            private_key: self.private_key,
            integrator_username: self.integrator_username,
            integrator_password: self.integrator_password,
            client_id: self.client_id,
            faults: server::sandbox::Faults {
                error_rate: self.error_rate.clamp(0.0, 1.0),
                rate_limit_rate: self.rate_limit_rate.clamp(0.0, 1.0),
                retry_after_secs: self.retry_after_secs,
                rate_limit_burst_every_ms: self.rate_limit_burst_every_ms,
                rate_limit_burst_ms: self.rate_limit_burst_ms,
                latency_ms: self.latency_ms,
                timeout_after_commit_rate: self.timeout_after_commit_rate.clamp(0.0, 1.0),
                stall_secs: self.stall_secs,
                removed_statuses: Vec::new(),
            },
        }
    }
}

/// The Autotask sandbox's account, limits and faults at start (faults change at run time with
/// `POST /_sandbox/faults`).
#[derive(clap::Args)]
struct AutotaskSandboxArgs {
    #[arg(long, default_value_t = 3006)]
    port: u16,
    #[arg(long, default_value = app::autotask::demo::DEMO_USERNAME)]
    username: String,
    #[arg(long, default_value = app::autotask::demo::DEMO_SECRET)]
    secret: String,
    #[arg(long, default_value = app::autotask::demo::DEMO_INTEGRATION_CODE)]
    integration_code: String,
    /// Requests allowed per window (Autotask: 10,000 an hour per database).
    #[arg(long, default_value_t = 10_000)]
    hourly_limit: u64,
    /// The rolling window of --hourly-limit, in seconds.
    #[arg(long, default_value_t = 3600)]
    window_secs: u64,
    /// Milliseconds added to every call from 50% of the limit (twice that from 75%).
    #[arg(long, default_value_t = 500)]
    throttle_latency_ms: u64,
    /// Concurrent calls per endpoint (Autotask: 3 for integrations created since 2023.1).
    #[arg(long, default_value_t = 3)]
    thread_limit: usize,
    /// Share of API calls answered 500 with a server fault (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Milliseconds added to every API call.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

impl AutotaskSandboxArgs {
    fn into_config(self) -> app::autotask::sandbox::SandboxConfig {
        use app::autotask::sandbox::{Faults, SandboxConfig, Throttling};
        SandboxConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            username: self.username,
            secret: self.secret,
            integration_code: self.integration_code,
            throttling: Throttling {
                hourly_limit: self.hourly_limit,
                window: std::time::Duration::from_secs(self.window_secs.max(1)),
                latency_ms: self.throttle_latency_ms,
                thread_limit: self.thread_limit.max(1),
            },
            faults: Faults {
                error_rate: self.error_rate.clamp(0.0, 1.0),
                latency_ms: self.latency_ms,
                ..Faults::default()
            },
            ..SandboxConfig::default()
        }
    }
}

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::CreatePartner { email } => create_partner(config, &email).await,
            Command::CreateApiToken { partner, name } => server::cli::create_api_token(config, &partner, &name).await,
            Command::Import { partner, file } => server::cli::import(config, &partner, &file).await,
            Command::CwSandbox(args) => server::sandbox::serve(args.into_config()).await.map_err(|err| err.to_string()),
            Command::AutotaskSandbox(args) => {
                app::autotask::sandbox::serve(args.into_config()).await.map_err(|err| err.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    if !config.is_production() {
        tracing::warn!(
            "\n\
             ************************************************************************************\n\
             *  DEV MODE (APP_MODE=dev): demo partner, PSA sandboxes, plain-HTTP cookies,        *\n\
             *  loopback PSA hosts allowed. Never expose this instance; unset APP_MODE (the      *\n\
             *  default is production) for any real deployment.                                  *\n\
             ************************************************************************************"
        );
    }
    let leptos = get_configuration(None).map_err(|err| StartError::Leptos(err.to_string()).to_string())?;
    let addr = leptos.leptos_options.site_addr;
    // Dev mode: the ConnectWise sandbox in-process, with the demo account (CW_SANDBOX_ADDR=off disables it).
    let _sandbox = match config.cw_sandbox_addr.filter(|_| !config.is_production()) {
        Some(sandbox_addr) => {
            let sandbox_config = server::sandbox::SandboxConfig {
                addr: sandbox_addr,
                client_id: config
                    .connectwise_client_id
                    .clone()
                    .unwrap_or_else(|| server::sandbox::DEMO_CLIENT_ID.into()),
                ..Default::default()
            };
            // The dashboard still starts without it (a sandbox left running on the port, say): the demo just
            // points at whichever sandbox answers there.
            match server::sandbox::spawn(sandbox_config).await {
                Ok(running) => {
                    server::sandbox::log_started(&running);
                    Some(running)
                }
                Err(err) => {
                    tracing::warn!(
                        "could not start the ConnectWise sandbox on {sandbox_addr}: {err} (set CW_SANDBOX_ADDR to \
                         another address, or off)"
                    );
                    None
                }
            }
        }
        None => None,
    };
    // Dev mode: the Autotask sandbox too (AT_SANDBOX_ADDR=off disables it); zone discovery asks it.
    let _autotask_sandbox = match config.at_sandbox_addr.filter(|_| !config.is_production()) {
        Some(sandbox_addr) => {
            let sandbox_config = app::autotask::sandbox::SandboxConfig { addr: sandbox_addr, ..Default::default() };
            match app::autotask::sandbox::spawn(sandbox_config).await {
                Ok(running) => {
                    tracing::info!(
                        "Autotask sandbox on {}: API user {}, secret {}, tracking identifier {}",
                        running.url(),
                        app::autotask::demo::DEMO_USERNAME,
                        app::autotask::demo::DEMO_SECRET,
                        app::autotask::demo::DEMO_INTEGRATION_CODE
                    );
                    Some(running)
                }
                Err(err) => {
                    tracing::warn!(
                        "could not start the Autotask sandbox on {sandbox_addr}: {err} (set AT_SANDBOX_ADDR to \
                         another address, or off)"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let state = server::build_state(config, leptos.leptos_options).await.map_err(|err| err.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr: addr.to_string(), source }.to_string())?;
    let worker = state.config.delivery_worker.then(|| {
        app::delivery::worker::spawn(
            app::delivery::worker::Deps {
                db: state.db.clone(),
                ticketing: state.ticketing.clone(),
                secrets: state.secrets.clone(),
                wake: state.deliveries.clone(),
                metrics: state.metrics.clone(),
            },
            app::delivery::worker::WorkerConfig::from_config(&state.config),
        )
    });
    // The metrics on their own address (METRICS_ADDR), never on the dashboard's.
    let metrics_listener = match state.config.metrics_addr {
        Some(metrics_addr) => Some(
            tokio::net::TcpListener::bind(metrics_addr)
                .await
                .map_err(|source| StartError::Listen { addr: metrics_addr.to_string(), source }.to_string())?,
        ),
        None => None,
    };
    let metrics_app = server::routes::metrics_router(state.clone());
    let app = server::routes::router(state);
    tracing::info!("Partner Dashboard listening on http://{addr}");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if let Some(listener) = metrics_listener {
        tracing::info!("metrics on http://{}/metrics", listener.local_addr().map_err(|err| err.to_string())?);
        let mut metrics_stopped = stopped.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, metrics_app)
                .with_graceful_shutdown(async move {
                    let _ = metrics_stopped.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "the metrics listener failed");
            }
        });
    }
    let stop = std::sync::Arc::new(stop);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = on_signal.send(true);
    });
    // The worker stops together with the HTTP server: its attempts in flight finish or are released.
    let mut worker_stopped = stopped.clone();
    let worker_done = tokio::spawn(async move {
        let _ = worker_stopped.wait_for(|stop| *stop).await;
        if let Some(worker) = worker {
            worker.shutdown().await;
        }
    });
    let mut http_stopped = stopped;
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = http_stopped.wait_for(|stop| *stop).await;
        })
        .await;
    let _ = stop.send(true);
    let _ = worker_done.await;
    served.map_err(|err| err.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn create_partner(config: Config, email: &str) -> Result<(), String> {
    let password = read_password().map_err(|err| format!("could not read the password: {err}"))?;
    let db = Db::connect(&config.database_url, 2).await.map_err(|err| err.to_string())?;
    let partner = app::auth::store::create_partner(&db, email, &password).await.map_err(|err| err.to_string())?;
    println!("Created partner {} (id {}).", partner.email, partner.id);
    Ok(())
}

fn read_password() -> std::io::Result<String> {
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("Password (at least 12 characters): ")?;
    let second = rpassword::prompt_password("Repeat the password: ")?;
    if first != second {
        return Err(std::io::Error::other("the passwords do not match"));
    }
    Ok(first)
}
