//! Throw-away databases for tests and benchmarks (server only): a temporary SQLite file, and a fresh PostgreSQL
//! database when `TEST_DATABASE_URL` names a server (an account allowed to create databases). With
//! `REQUIRE_POSTGRES=1` (the test command) an unreachable PostgreSQL is a failure, not a skip.

use crate::db::{Backend, Db};

pub async fn sqlite() -> Db {
    let dir = std::env::temp_dir().join("dwid-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}-{}.db", std::process::id(), rand::random::<u64>()));
    Db::connect(&format!("sqlite://{}", path.display()), 4).await.expect("sqlite test database")
}

pub async fn postgres() -> Option<Db> {
    let Some(admin_url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var("REQUIRE_POSTGRES").is_err(), "REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not");
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL store tests skipped");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("dwid_test_{}_{}", std::process::id(), rand::random::<u32>());
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("cannot reach TEST_DATABASE_URL: {err}"));
    // The name is ours: digits and underscores only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
    let db = Db::connect(&format!("{base}/{name}"), 4).await.expect("postgres test database");
    assert_eq!(db.backend, Backend::Postgres);
    Some(db)
}

/// One fresh database per backend available.
pub async fn all_backends() -> Vec<Db> {
    let mut dbs = vec![sqlite().await];
    dbs.extend(postgres().await);
    dbs
}
