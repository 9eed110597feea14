//! The built `server` binary, run as an operator would: configuration from the environment, `create-partner`,
//! demo seeding on a first dev run, data kept across restarts, production refusing to start without a key.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use app::db::Db;

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dwid-cli-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("LOG_LEVEL", "info")
        .current_dir(data_dir);
    command
}

fn create_partner(data_dir: &Path, email: &str, password: &str) -> Output {
    let mut child = command(data_dir)
        .args(["create-partner", "--email", email])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    child.wait_with_output().expect("wait")
}

async fn open(data_dir: &Path) -> Db {
    Db::connect(&format!("sqlite://{}/dwid.db", data_dir.display()), 1).await.expect("db")
}

#[tokio::test]
async fn create_partner_reads_the_password_from_stdin_and_refuses_duplicates() {
    let dir = temp_dir();
    let out = create_partner(&dir, "ops@msp.example", "a long passphrase");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created partner ops@msp.example"));

    let db = open(&dir).await;
    let partner = app::auth::store::authenticate(&db, "ops@msp.example", "a long passphrase").await.expect("query");
    assert!(partner.is_some(), "the password from stdin signs in");

    let again = create_partner(&dir, "OPS@msp.example", "another long passphrase");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let short = create_partner(&dir, "new@msp.example", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    assert_eq!(app::auth::store::count_partners(&db).await.expect("count"), 1, "nothing half-written");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, port: u16) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("log");
    let child = command(dir)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_PASSWORD", "demo password for the test")
        .env("CW_SANDBOX_ADDR", "off")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn server");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Ready once it accepts connections and has said so in the log.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !read_log(dir).contains("listening on") {
        assert!(Instant::now() < deadline, "server did not listen: {}", read_log(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

#[tokio::test]
async fn serve_honours_the_environment_seeds_once_and_keeps_data_across_restarts() {
    let dir = temp_dir();
    let port = free_port();
    {
        let _server = start(&dir, port);
        let log = read_log(&dir);
        assert!(log.contains(&format!("listening on http://127.0.0.1:{port}")), "{log}");
        assert!(log.contains("Demo partner created") && log.contains("demo@partner.example"), "{log}");
    }
    let db = open(&dir).await;
    let demo = app::auth::store::authenticate(&db, "demo@partner.example", "demo password for the test").await;
    let demo = demo.expect("query").expect("the printed credentials sign in");
    app::organizations::store::add(&db, demo.id, "Added Between Runs", None).await.expect("add");

    std::fs::write(dir.join("server.log"), "").expect("truncate log");
    {
        let _server = start(&dir, port);
        let log = read_log(&dir);
        assert!(!log.contains("Demo partner created"), "seeded only into an empty database: {log}");
    }
    let names: Vec<_> =
        app::organizations::store::list(&db, demo.id).await.expect("list").into_iter().map(|o| o.name).collect();
    assert!(names.contains(&"Added Between Runs".to_string()) && names.contains(&"Acme Corporation".to_string()));
}

#[test]
fn production_refuses_to_start_without_a_secrets_key_and_bad_config_is_named() {
    let dir = temp_dir();
    let out = command(&dir).env("APP_MODE", "production").output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secrets key file") && stderr.contains("SECRETS_KEY_FILE"), "{stderr}");

    let out = command(&dir).env("APP_MODE", "staging").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("APP_MODE must be dev or production"));
}
