//! Request budgets per PSA account on real databases — a SQLite file and, when `TEST_DATABASE_URL` is set, a
//! fresh PostgreSQL database — with several pools (as several server processes have) and with several OS
//! processes: this test binary started again with `DWID_BUDGET_CHILD_URL` set runs only [`admission_child`].
//!
//! The concurrent tests fail with any read-then-write admission: their tasks ask at once, so two of them would read
//! the same count and both be admitted.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use app::db::{Db, now_millis};
use app::metrics::{BudgetDecision, Metrics};
use app::request_budget::{AccountKey, Budget, BudgetGate, Refused, RequestBudgets, RequestGate, Spent, Unlimited};

/// 2026-03-01 13:42:17.250 UTC: a fixed clock, so that no window ends during a test.
const NOW: i64 = 1_772_372_537_250;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
/// 13:00 and 13:42 UTC that day.
const HOUR_START: i64 = 1_772_370_000_000;
const MINUTE_START: i64 = HOUR_START + 42 * MINUTE;

/// The database URL of every backend available, each a fresh database.
async fn databases() -> Vec<(&'static str, String)> {
    let dir = std::env::temp_dir().join("dwid-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("budget-{}-{}.db", std::process::id(), rand::random::<u64>()));
    let mut urls = vec![("sqlite", format!("sqlite://{}", path.display()))];
    if let Some(db) = app::testing::postgres().await {
        let name: String =
            sqlx::query_scalar("SELECT current_database()::text").fetch_one(&db.pool).await.expect("name");
        let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        let base = admin.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap_or(admin);
        urls.push(("postgres", format!("{base}/{name}")));
    }
    urls
}

/// `n` pools on one database, as `n` server processes hold.
async fn pools(url: &str, n: usize) -> Vec<Db> {
    let mut pools = Vec::new();
    for _ in 0..n {
        pools.push(Db::connect(url, 4).await.expect("connect"));
    }
    pools
}

async fn stored_used(db: &Db, key: &AccountKey, window_start_ms: i64) -> Option<i64> {
    sqlx::query_scalar("SELECT used FROM psa_request_counts WHERE account_key = $1 AND window_start = $2")
        .bind(key.as_str())
        .bind(window_start_ms / 1000)
        .fetch_optional(&db.pool)
        .await
        .expect("used")
}

async fn rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM psa_request_counts").fetch_one(&db.pool).await.expect("rows")
}

#[tokio::test]
async fn admits_exactly_the_budget_then_refuses_until_the_window_ends() {
    for (backend, url) in databases().await {
        let db = Db::connect(&url, 4).await.expect("connect");
        let metrics = Metrics::new();
        let budgets = RequestBudgets::new(db.clone()).with_metrics(metrics.request_budget_decisions());
        let key = AccountKey::new("connectwise", "na.myconnectwise.net/acme");
        let budget = Budget::per_minute(5).expect("budget");
        let window_ends = MINUTE_START + MINUTE;
        for n in 1..=5 {
            let admitted = budgets.admit(&key, budget, NOW + i64::from(n)).await.expect("admitted");
            assert_eq!((admitted.used, admitted.remaining, admitted.window_ends), (n, 5 - n, window_ends), "{backend}");
        }
        let refused = budgets.admit(&key, budget, NOW + 10_000).await.expect_err("spent");
        assert_eq!(refused, Refused::Spent(Spent { until: window_ends, budget }), "{backend}");
        assert_eq!(refused.retry_at(), window_ends);
        assert!(
            refused.to_string().contains("(5 requests per minute) is used up. It refills at 13:43 UTC"),
            "{refused}"
        );
        // Still spent at the window's last millisecond, and nothing more was counted.
        assert!(budgets.admit(&key, budget, window_ends - 1).await.is_err(), "{backend}");
        assert_eq!(stored_used(&db, &key, MINUTE_START).await, Some(5), "{backend}");
        // Another account (the same company on another site) has a budget of its own.
        let other = AccountKey::new("connectwise", "eu.myconnectwise.net/acme");
        assert_eq!(budgets.admit(&other, budget, NOW).await.expect("other account").used, 1, "{backend}");
        // Spellings that differ by case are one account.
        let same = AccountKey::new("connectwise", "NA.myconnectwise.net/ACME");
        assert!(matches!(budgets.admit(&same, budget, NOW).await, Err(Refused::Spent(_))), "{backend}");
        // The next window starts afresh, at the time the refusal named.
        let next = budgets.admit(&key, budget, refused.retry_at()).await.expect("next window");
        assert_eq!((next.used, next.remaining, next.window_ends), (1, 4, window_ends + MINUTE), "{backend}");
        // Decisions by system, never by account.
        let decisions = metrics.request_budget_decisions();
        assert_eq!(decisions.get("connectwise", BudgetDecision::Admitted), 7, "{backend}");
        assert_eq!(decisions.get("connectwise", BudgetDecision::Refused), 3, "{backend}");
        assert!(
            metrics
                .encode()
                .contains("dwid_psa_request_budget_decisions_total{system=\"connectwise\",decision=\"admitted\"} 7")
        );
    }
}

/// Three pools (three processes' worth) with twelve tasks each ask at once; every admitted request got its own
/// count (1, 2, … in some order), so none was admitted on a count another had read too.
async fn admit_concurrently(url: &str, budget: Budget, attempts_per_task: usize) -> (Vec<u32>, usize) {
    let key = AccountKey::new("autotask", "29683741");
    let mut tasks = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(36));
    for db in pools(url, 3).await {
        let budgets = RequestBudgets::new(db);
        for _ in 0..12 {
            let (budgets, key, start) = (budgets.clone(), key.clone(), start.clone());
            tasks.spawn(async move {
                start.wait().await;
                let (mut used, mut refused) = (Vec::new(), 0);
                for _ in 0..attempts_per_task {
                    match budgets.admit(&key, budget, NOW).await {
                        Ok(admitted) => used.push(admitted.used),
                        Err(Refused::Spent(spent)) => {
                            assert_eq!(spent.until, budget.window_at(NOW).1);
                            refused += 1;
                        }
                        Err(err) => panic!("{err}"),
                    }
                }
                (used, refused)
            });
        }
    }
    let (mut used, mut refused) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        let (u, r) = result.expect("task");
        used.extend(u);
        refused += r;
    }
    used.sort_unstable();
    (used, refused)
}

async fn stored(url: &str, budget: Budget) -> i64 {
    let db = Db::connect(url, 1).await.expect("connect");
    let (start, _) = budget.window_at(NOW);
    stored_used(&db, &AccountKey::new("autotask", "29683741"), start * 1000).await.expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admission_from_three_pools_uses_the_budget_exactly() {
    for (backend, url) in databases().await {
        // Demand (720) beyond the budget (150): exactly the budget is admitted, each request with its own count.
        let budget = Budget::per_hour(150).expect("budget");
        let (used, refused) = admit_concurrently(&url, budget, 20).await;
        assert_eq!(used, (1..=150).collect::<Vec<u32>>(), "{backend}");
        assert_eq!(refused, 720 - 150, "{backend}");
        assert_eq!(stored(&url, budget).await, 150, "{backend}");
    }
}

/// A large budget is reserved in chunks (2,000 a minute: 10 at a time), and still never exceeded: three
/// processes asking beyond it are admitted exactly 2,000, each request with its own number in the window's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunked_reservations_use_a_large_budget_exactly() {
    for (backend, url) in databases().await {
        let budget = Budget::per_minute(2_000).expect("budget");
        assert_eq!(budget.chunk(), 10);
        let (used, refused) = admit_concurrently(&url, budget, 70).await;
        assert_eq!(used, (1..=2_000).collect::<Vec<u32>>(), "{backend}");
        assert_eq!(refused, 36 * 70 - 2_000, "{backend}");
        assert_eq!(stored(&url, budget).await, 2_000, "{backend}: nothing reserved beyond the budget");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admission_within_the_budget_admits_everything() {
    for (backend, url) in databases().await {
        let budget = Budget::per_hour(5_000).expect("budget");
        let (used, refused) = admit_concurrently(&url, budget, 10).await;
        // Reserved 25 at a time (three processes): every request has its own number, and at most 24 per process
        // are reserved and not (yet) used.
        assert_eq!(used.len(), 360, "{backend}");
        assert_eq!(used.iter().copied().collect::<HashSet<u32>>().len(), 360, "{backend}: no number twice");
        assert_eq!(refused, 0, "{backend}");
        let stored = stored(&url, budget).await;
        assert!((360..=360 + 3 * 24).contains(&stored), "{backend}: {stored}");
    }
}

#[tokio::test]
async fn usage_is_this_hours_requests_out_of_the_hourly_allowance() {
    for (backend, url) in databases().await {
        let db = Db::connect(&url, 4).await.expect("connect");
        let budgets = RequestBudgets::new(db);
        let cw = AccountKey::new("connectwise", "na.myconnectwise.net/acme");
        let per_minute = Budget::per_minute(10).expect("budget");
        let at = AccountKey::new("autotask", "29683741");
        // Up to 400 a window a budget is reserved one request at a time, so the figures are exact.
        let per_hour = Budget::per_hour(300).expect("budget");
        let idle = AccountKey::new("autotask", "11111111");
        for (at_time, n) in [(HOUR_START - 1_000, 2), (HOUR_START + 5 * MINUTE, 3), (NOW, 4)] {
            for _ in 0..n {
                budgets.admit(&cw, per_minute, at_time).await.expect("admitted");
            }
        }
        for _ in 0..7 {
            budgets.admit(&at, per_hour, NOW).await.expect("admitted");
        }
        let accounts = [(cw.clone(), per_minute), (at.clone(), per_hour), (idle.clone(), per_hour)];
        let usage = budgets.usage(&accounts, NOW).await.expect("usage");
        assert_eq!(usage.len(), 3, "{backend}");
        // Per minute: this hour's minutes (13:05 and 13:42, not 12:59), out of 60 windows' worth.
        let u = usage[&cw];
        assert_eq!((u.this_hour, u.hourly_allowance, u.this_window), (7, 600, 4), "{backend}");
        assert_eq!((u.window_ends, u.percent_of_hour(), u.spent()), (MINUTE_START + MINUTE, 1, false), "{backend}");
        let u = usage[&at];
        assert_eq!((u.this_hour, u.hourly_allowance, u.this_window), (7, 300, 7), "{backend}");
        assert_eq!(u.window_ends, HOUR_START + HOUR, "{backend}");
        let u = usage[&idle];
        assert_eq!((u.this_hour, u.this_window, u.budget), (0, 0, per_hour), "{backend}");
        // An hour later the per-hour account starts again at 0.
        let later = budgets.usage(&accounts, NOW + HOUR).await.expect("usage");
        assert_eq!((later[&at].this_hour, later[&cw].this_hour), (0, 0), "{backend}");
        assert!(budgets.usage(&[], NOW).await.expect("usage").is_empty());
    }
}

#[tokio::test]
async fn windows_older_than_a_day_are_pruned() {
    const DAY: i64 = 24 * HOUR;
    for (backend, url) in databases().await {
        let db = Db::connect(&url, 4).await.expect("connect");
        let key = AccountKey::new("autotask", "29683741");
        let budget = Budget::per_minute(10).expect("budget");
        {
            // Newest first: the first admission prunes (nothing older than a day before it), and this process then
            // does not prune again for an hour of its clock.
            let budgets = RequestBudgets::new(db.clone());
            for at_time in [NOW, NOW - DAY + MINUTE, NOW - 2 * DAY + MINUTE, NOW - 2 * DAY, NOW - 3 * DAY] {
                budgets.admit(&key, budget, at_time).await.expect("admitted");
            }
        }
        assert_eq!(rows(&db).await, 5, "{backend}");
        let budgets = RequestBudgets::new(db.clone());
        assert_eq!(budgets.prune(NOW).await.expect("prune"), 3, "{backend}");
        assert_eq!(rows(&db).await, 2, "{backend}");
        assert_eq!(budgets.prune(NOW).await.expect("prune"), 0, "{backend}");

        // An admission opening a window prunes (a fresh process: its first chance).
        let budgets = RequestBudgets::new(db.clone());
        budgets.admit(&key, budget, NOW + DAY - MINUTE).await.expect("admitted");
        assert_eq!(rows(&db).await, 2, "{backend}: the window of 13:42 yesterday is kept, the one of 13:43 is gone");
        assert_eq!(stored_used(&db, &key, MINUTE_START).await, Some(1), "{backend}");
        // Within the hour this process does not prune again (this one would have pruned 13:42 yesterday).
        budgets.admit(&key, budget, NOW + DAY).await.expect("admitted");
        assert_eq!(rows(&db).await, 3, "{backend}");
    }
}

#[tokio::test]
async fn the_budget_gate_admits_at_the_clocks_time() {
    // Three requests an hour; not in the last seconds of an hour, so that the window cannot end during the test.
    if now_millis() % HOUR > HOUR - 10_000 {
        tokio::time::sleep(Duration::from_secs(11)).await;
    }
    let db = app::testing::sqlite().await;
    let metrics = Metrics::new();
    let budgets = RequestBudgets::new(db.clone()).with_metrics(metrics.request_budget_decisions());
    let gate: std::sync::Arc<dyn RequestGate> = std::sync::Arc::new(BudgetGate::new(
        budgets,
        AccountKey::new("autotask", "29683741"),
        Budget::per_hour(3).expect("budget"),
    ));
    for _ in 0..3 {
        gate.admit().await.expect("admitted");
    }
    let now = now_millis();
    match gate.admit().await {
        Err(Refused::Spent(spent)) => assert_eq!(spent.until, now - now % HOUR + HOUR),
        other => panic!("{other:?}"),
    }
    for _ in 0..1_000 {
        Unlimited.admit().await.expect("unlimited");
    }
    // A database that does not answer refuses: no request goes uncounted.
    db.pool.close().await;
    match gate.admit().await {
        Err(refused @ Refused::Unavailable { retry_at }) => {
            assert!(retry_at > now, "{refused}");
            assert!(refused.to_string().contains("could not be checked"), "{refused}");
        }
        other => panic!("{other:?}"),
    }
    let decisions = metrics.request_budget_decisions();
    assert_eq!(
        [BudgetDecision::Admitted, BudgetDecision::Refused, BudgetDecision::Unavailable]
            .map(|d| decisions.get("autotask", d)),
        [3, 1, 1]
    );
}

const CHILD_URL: &str = "DWID_BUDGET_CHILD_URL";
const CHILD_START_AT: &str = "DWID_BUDGET_CHILD_START_AT";
/// The budget the child processes share, and what each asks for (8 tasks × 60).
const SHARED_BUDGET: u32 = 300;
const CHILD_TASKS: usize = 8;
const CHILD_ATTEMPTS: usize = 60;

/// The admission loop of one child process: nothing unless started by [`three_processes_share_one_budget`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_child() {
    let Ok(url) = std::env::var(CHILD_URL) else { return };
    let start_at: i64 = std::env::var(CHILD_START_AT).expect("start").parse().expect("start time");
    let budgets = RequestBudgets::new(Db::connect(&url, 4).await.expect("connect"));
    let key = AccountKey::new("autotask", "29683741");
    let budget = Budget::per_hour(SHARED_BUDGET).expect("budget");
    // The processes start asking together.
    tokio::time::sleep(Duration::from_millis(u64::try_from(start_at - now_millis()).unwrap_or(0))).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CHILD_TASKS {
        let (budgets, key) = (budgets.clone(), key.clone());
        tasks.spawn(async move {
            let mut used = Vec::new();
            for _ in 0..CHILD_ATTEMPTS {
                match budgets.admit(&key, budget, NOW).await {
                    Ok(admitted) => used.push(admitted.used),
                    Err(Refused::Spent(_)) => {}
                    Err(err) => panic!("{err}"),
                }
            }
            used
        });
    }
    let mut used = Vec::new();
    while let Some(result) = tasks.join_next().await {
        used.extend(result.expect("task"));
    }
    let used: Vec<String> = used.iter().map(u32::to_string).collect();
    // On a line of its own (the test harness has written "test admission_child ... " before it).
    println!("\nBUDGET-CHILD used={}", used.join(","));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_budget() {
    let exe = std::env::current_exe().expect("test binary");
    for (backend, url) in databases().await {
        // Migrated before the children start.
        let db = Db::connect(&url, 1).await.expect("connect");
        let start_at = now_millis() + 3_000;
        let children: Vec<std::process::Child> = (0..3)
            .map(|_| {
                Command::new(&exe)
                    .args(["admission_child", "--exact", "--nocapture", "--test-threads=1"])
                    .env(CHILD_URL, &url)
                    .env(CHILD_START_AT, start_at.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("child process")
            })
            .collect();
        let mut per_child = Vec::new();
        let mut all_used = Vec::new();
        for child in children {
            let output =
                tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{backend} child: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
            let line = stdout
                .lines()
                .find_map(|line| line.split_once("BUDGET-CHILD used=").map(|(_, used)| used))
                .unwrap_or_else(|| panic!("{backend}: no report from the child:\n{stdout}"));
            let used: Vec<u32> = line.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().expect("count")).collect();
            per_child.push(used.len());
            all_used.extend(used);
        }
        eprintln!("{backend}: admitted per process {per_child:?}");
        all_used.sort_unstable();
        // 1,440 asked for 300: exactly 300 admitted, each with its own count, none twice.
        assert_eq!(all_used, (1..=SHARED_BUDGET).collect::<Vec<u32>>(), "{backend}: {per_child:?}");
        assert_eq!(all_used.iter().collect::<HashSet<_>>().len(), SHARED_BUDGET as usize);
        assert_eq!(
            stored_used(&db, &AccountKey::new("autotask", "29683741"), HOUR_START).await,
            Some(i64::from(SHARED_BUDGET)),
            "{backend}"
        );
    }
}
