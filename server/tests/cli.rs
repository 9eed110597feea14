//! The built `server` binary, run as an operator would: configuration from the environment, `create-partner`,
//! demo seeding on a first dev run, data kept across restarts, production refusing to start without a key.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use app::activity::Actor;
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
        .env("APP_MODE", "dev")
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
        assert!(log.contains("DEV MODE (APP_MODE=dev)") && log.contains("Never expose this instance"), "{log}");
    }
    let db = open(&dir).await;
    let demo = app::auth::store::authenticate(&db, "demo@partner.example", "demo password for the test").await;
    let demo = demo.expect("query").expect("the printed credentials sign in");
    app::organizations::store::add(&db, demo.id, "Added Between Runs", None, &Actor::operator("test"))
        .await
        .expect("add");

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

#[tokio::test]
async fn api_tokens_and_file_imports_from_the_command_line() {
    let dir = temp_dir();
    assert!(create_partner(&dir, "ops@msp.example", "a long passphrase").status.success());
    let db = open(&dir).await;
    let partner = app::auth::store::partner_by_email(&db, "ops@msp.example").await.expect("query").expect("partner");
    let acme = app::organizations::store::add(&db, partner.id, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org");

    // create-api-token prints the token alone on stdout; only its hash is stored.
    let out = command(&dir)
        .args(["create-api-token", "--partner", "OPS@msp.example", "--name", "Nightly sync"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("dwid_") && token.len() == 53, "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only this once"));
    assert_eq!(app::api_tokens::store::authenticate(&db, &token).await.expect("auth"), Some(partner.id));
    let out = command(&dir)
        .args(["create-api-token", "--partner", "nobody@msp.example", "--name", "x"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no partner with the email"));

    // A CSV with an invalid record: every error with its record and line, nothing imported.
    let header = "uuid,password,record_type,source,website,organization_name,compromise,password_criteria,search_value,date_added,date_found";
    let row = |n: u32, org: &str, kind: &str| {
        format!(
            "6a1b2c3d-0000-4000-8000-{n:012},Pw{n}!,{kind},Combolist,,\"{org}\",user{n}@acme.example,N/A,acme.example,2026-11-01,2026-10-30"
        )
    };
    let bad = format!(
        "{header}\n{}\n{}\n{}\n",
        row(1, "Acme Corporation", "Email"),
        row(2, "Acme Corporation", "Phone"),
        row(3, "Nope Ltd", "Email")
    );
    std::fs::write(dir.join("bad.csv"), bad).expect("write");
    let out = command(&dir).args(["import", "--partner", "ops@msp.example", "bad.csv"]).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record 2, line 3: `record_type`"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM compromises").fetch_one(&db.pool).await.expect("count")
    };
    assert_eq!(count().await, 0);
    // Organizations are checked for the whole file before anything is stored.
    let unknown = format!("{header}\n{}\n{}\n", row(1, "Acme Corporation", "Email"), row(3, "Nope Ltd", "Email"));
    std::fs::write(dir.join("unknown.csv"), unknown).expect("write");
    let out = command(&dir).args(["import", "--partner", "ops@msp.example", "unknown.csv"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("record 2: `organization_name` \"Nope Ltd\""));
    assert_eq!(count().await, 0);

    // A valid file, then the same file again: the second run imports nothing new.
    let rows: Vec<String> = (1..=2500).map(|n| row(n, "Acme Corporation", "Email")).collect();
    std::fs::write(dir.join("good.csv"), format!("{header}\n{}\n", rows.join("\n"))).expect("write");
    let out = command(&dir).args(["import", "--partner", "ops@msp.example", "good.csv"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Imported 2500 new compromise(s)") && stdout.contains("(0 already imported"), "{stdout}");
    assert_eq!(count().await, 2500);
    let out = command(&dir).args(["import", "--partner", "ops@msp.example", "good.csv"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Imported 0 new compromise(s)"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(2500 already imported"));
    let _ = acme;
}
