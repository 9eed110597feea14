//! The delivery worker end to end: compromises imported into the store, the worker running in this process, the
//! ConnectWise sandbox (in this process, on a free port) receiving the tickets — including its faults.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use app::activity::Actor;
use app::compromises::{ImportRecord, OrganizationRef};
use app::delivery::worker::{self, Deps, WorkerConfig, WorkerHandle};
use app::delivery::{DeliveryState, LogFilter, backoff::Backoff};
use app::integrations::Health;
use app::mapping::{PasswordCriteria, RecordType};
use common::{Harness, harness, save_integration, signed_in};
use serde_json::{Value, json};
use server::sandbox::{self, Faults, RunningSandbox, SandboxConfig};

async fn start_sandbox(faults: Faults) -> RunningSandbox {
    let config = SandboxConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), faults, ..Default::default() };
    sandbox::spawn(config).await.expect("sandbox starts")
}

fn input(sb: &RunningSandbox, name: &str) -> Value {
    common::sandbox_input(
        &sb.url(),
        name,
        json!([
            { "field": "summary", "value": "Dark Web ID: [record_type] compromise of [compromise]" },
            { "field": "company", "value": "" },
            { "field": "board", "value": "1" },
            { "field": "initialDescription", "value": "Found in [source]. Password: [obscured_password]" },
        ]),
    )
}

/// A partner with "Acme Corporation" (a sandbox company) and "Globex Inc" (no exact match), and `n` active
/// integrations on the sandbox serving both.
async fn setup(h: &Harness, sb: &RunningSandbox, n: usize) -> (i64, Vec<i64>, i64, i64) {
    let (partner, ids, acme) = partner_with_integrations(h, "worker@example.com", sb, n).await;
    let globex = app::organizations::store::add(&h.state.db, partner, "Globex Inc", None, &Actor::operator("test"))
        .await
        .expect("org")
        .id;
    (partner, ids, acme, globex)
}

fn record(n: usize, organization: i64) -> ImportRecord {
    ImportRecord {
        uuid: format!("6f1c2d3e-0000-4000-8000-{n:012}"),
        password: Some(format!("Hunter{n}!x")),
        record_type: RecordType::Email,
        source: "Collection #1".into(),
        website: Some("https://shop.example".into()),
        organization: OrganizationRef::ById(organization),
        compromise: format!("user{n}@acme.example"),
        password_criteria: PasswordCriteria::Matches,
        search_value: "acme.example".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    }
}

async fn import(h: &Harness, partner: i64, records: &[ImportRecord]) {
    app::compromises::store::import(&h.state.db, &h.state.secrets, partner, records).await.expect("import");
}

fn config(h: &Harness) -> WorkerConfig {
    WorkerConfig {
        concurrency: 8,
        per_integration: 4,
        poll: Duration::from_millis(100),
        max_attempts: 10,
        backoff: Backoff { base: Duration::from_millis(100), max: Duration::from_millis(500) },
        ..WorkerConfig::from_config(&h.state.config)
    }
}

fn start(h: &Harness, config: WorkerConfig) -> WorkerHandle {
    let deps = Deps {
        db: h.state.db.clone(),
        ticketing: h.state.ticketing.clone(),
        secrets: h.state.secrets.clone(),
        wake: h.state.deliveries.clone(),
        metrics: h.state.metrics.clone(),
    };
    worker::spawn(deps, config)
}

/// Waits until no delivery is Pending or Retrying.
async fn settled(h: &Harness, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = app::delivery::store::outstanding(&h.state.db).await.expect("outstanding");
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} deliveries still outstanding");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// externalXRef → number of tickets carrying it.
async fn tickets_by_xref(sb: &RunningSandbox) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for ticket in sb.sandbox.tickets().await {
        *map.entry(ticket["externalXRef"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    map
}

async fn log(h: &Harness, partner: i64, integration: i64) -> app::delivery::DeliveryLog {
    app::delivery::store::log(&h.state.db, partner, integration, &LogFilter::default()).await.expect("log")
}

#[tokio::test]
async fn every_compromise_becomes_one_ticket_per_integration() {
    every_compromise_once(harness(&[]).await).await;
}

#[tokio::test]
async fn every_compromise_becomes_one_ticket_per_integration_on_postgres() {
    if let Some(db) = app::testing::postgres().await {
        every_compromise_once(common::harness_on(db, &[])).await;
    }
}

async fn every_compromise_once(h: Harness) {
    let sb = start_sandbox(Faults::default()).await;
    let (partner, ids, acme, _) = setup(&h, &sb, 2).await;
    let worker = start(&h, config(&h));
    let records: Vec<ImportRecord> = (1..=20).map(|n| record(n, acme)).collect();
    import(&h, partner, &records).await;
    h.state.deliveries.wake();
    settled(&h, Duration::from_secs(20)).await;
    worker.shutdown().await;

    let tickets = sb.sandbox.tickets().await;
    for id in &ids {
        let log = log(&h, partner, *id).await;
        let failed: Vec<_> = log.rows.iter().filter(|r| r.state != DeliveryState::Delivered).collect();
        assert!(failed.is_empty(), "{failed:?}");
    }
    assert_eq!(tickets.len(), 40);
    let by_xref = tickets_by_xref(&sb).await;
    for r in &records {
        for id in &ids {
            assert_eq!(by_xref.get(&format!("dwid:{}/{id}", r.uuid)), Some(&1), "{} / {id}", r.uuid);
        }
    }
    let first =
        tickets.iter().find(|t| t["externalXRef"] == format!("dwid:{}/{}", records[0].uuid, ids[0])).expect("ticket");
    assert_eq!(first["summary"], "Dark Web ID: Email compromise of user1@acme.example");
    assert_eq!(first["company"]["name"], "Acme Corporation");
    assert_eq!(first["board"]["id"], 1);
    assert_eq!(first["initialDescription"], "Found in Collection #1. Password: H*******x");
    for id in &ids {
        let log = log(&h, partner, *id).await;
        assert_eq!(log.counts.delivered, 20);
        assert!(
            log.rows.iter().all(|r| r.state == DeliveryState::Delivered && r.ticket_id.is_some() && r.attempts == 1)
        );
        let stored = app::integrations::store::get(&h.state.db, partner, *id).await.expect("integration");
        assert_eq!(stored.health, Health::Healthy);
    }
}

#[tokio::test]
async fn a_timeout_after_the_ticket_was_stored_does_not_duplicate_it() {
    // Every POST is stored, then stalls past the client's 1 s timeout: each attempt looks the ticket up next time.
    let faults = Faults { timeout_after_commit_rate: 1.0, stall_secs: 3, ..Default::default() };
    let sb = start_sandbox(faults).await;
    let h = harness(&[("CONNECTWISE_TIMEOUT_SECS", "1"), ("DELIVERY_LEASE_SECS", "10")]).await;
    let (partner, ids, acme, _) = setup(&h, &sb, 1).await;
    let worker = start(&h, config(&h));
    let records: Vec<ImportRecord> = (1..=4).map(|n| record(n, acme)).collect();
    import(&h, partner, &records).await;
    h.state.deliveries.wake();
    settled(&h, Duration::from_secs(30)).await;
    worker.shutdown().await;

    let by_xref = tickets_by_xref(&sb).await;
    assert_eq!(by_xref.len(), 4);
    assert!(by_xref.values().all(|n| *n == 1), "{by_xref:?}");
    let log = log(&h, partner, ids[0]).await;
    assert_eq!(log.counts.delivered, 4);
    // The first attempt timed out; the second found the ticket instead of posting again.
    assert!(log.rows.iter().all(|r| r.attempts == 2), "{:?}", log.rows);
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after_and_refusals_fail_with_the_reason() {
    let faults = Faults { rate_limit_rate: 1.0, retry_after_secs: 1, ..Default::default() };
    let sb = start_sandbox(faults).await;
    let h = harness(&[]).await;
    let (partner, ids, acme, globex) = setup(&h, &sb, 1).await;
    let worker = start(&h, config(&h));
    import(&h, partner, &[record(1, acme), record(2, globex)]).await;
    h.state.deliveries.wake();
    // Throttled: Retrying, not before Retry-After, and the integration is Unhealthy meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = log(&h, partner, ids[0]).await;
        if log.counts.retrying == 2 {
            let row = &log.rows[0];
            assert!(row.last_error.as_deref().unwrap_or_default().contains("throttling"), "{row:?}");
            assert!(row.next_attempt.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "never throttled: {:?}", log.counts);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stored = app::integrations::store::get(&h.state.db, partner, ids[0]).await.expect("integration");
    assert_eq!(stored.health, Health::Unhealthy);
    sb.sandbox.set_faults(Faults::default()).await;
    settled(&h, Duration::from_secs(20)).await;
    worker.shutdown().await;

    let log = log(&h, partner, ids[0]).await;
    assert_eq!((log.counts.delivered, log.counts.failed), (1, 1));
    let failed = log.rows.iter().find(|r| r.state == DeliveryState::Failed).expect("failed");
    assert_eq!(failed.organization, "Globex Inc");
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("No ConnectWise company is named exactly \"Globex Inc\""),
        "{failed:?}"
    );
    assert_eq!(sb.sandbox.tickets().await.len(), 1);
    let stored = app::integrations::store::get(&h.state.db, partner, ids[0]).await.expect("integration");
    assert_eq!(stored.health, Health::Healthy, "the last request succeeded");
}

#[tokio::test]
async fn refused_tickets_are_not_retried() {
    let sb = start_sandbox(Faults::default()).await;
    let h = harness(&[]).await;
    let (partner, cookie) = signed_in(&h, "refused@example.com").await;
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &Actor::operator("test"))
        .await
        .expect("org")
        .id;
    // Board 2 has no status 1: the sandbox answers 400 with a field error, as Manage does.
    let mut body = input(&sb, "Wrong status");
    body["mapping"] = json!([
        { "field": "summary", "value": "Dark Web ID: [compromise]" },
        { "field": "company", "value": "" },
        { "field": "board", "value": "2" },
        { "field": "status", "value": "1" },
    ]);
    let (status, text) = save_integration(&h, &cookie, None, body).await;
    assert!(status.is_success(), "{status} {text}");
    let id: i64 = serde_json::from_str(&text).expect("id");
    app::integrations::store::set_active(&h.state.db, partner, id, true, &Actor::operator("test"))
        .await
        .expect("enable");
    let worker = start(&h, config(&h));
    import(&h, partner, &[record(1, acme)]).await;
    h.state.deliveries.wake();
    settled(&h, Duration::from_secs(10)).await;
    worker.shutdown().await;
    let log = log(&h, partner, id).await;
    let row = &log.rows[0];
    assert_eq!((row.state, row.attempts), (DeliveryState::Failed, 1), "{row:?}");
    assert!(row.last_error.as_deref().unwrap_or_default().starts_with("ConnectWise refused the ticket"), "{row:?}");
    assert!(sb.sandbox.tickets().await.is_empty());
}

#[tokio::test]
async fn shutdown_lets_posts_in_flight_finish_and_starts_no_new_one() {
    // Every API call takes 1.5 s: each attempt looks its company up, then posts.
    let faults = Faults { latency_ms: 1500, ..Default::default() };
    let sb = start_sandbox(faults).await;
    let h = harness(&[]).await;
    let (partner, ids, acme, _) = setup(&h, &sb, 1).await;

    // Stopped while the company lookups are in flight: they finish, no POST starts, both go back untouched.
    let worker = start(&h, config(&h));
    import(&h, partner, &[record(1, acme), record(2, acme)]).await;
    h.state.deliveries.wake();
    wait_for_api_calls(&sb, 1).await;
    worker.shutdown().await;
    assert!(sb.sandbox.tickets().await.is_empty());
    let paused = log(&h, partner, ids[0]).await;
    assert!(paused.rows.iter().all(|r| r.state == DeliveryState::Pending && r.attempts == 0), "{:?}", paused.rows);
    assert_eq!(leased(&h).await, 0, "no lease left behind");

    // Stopped while the POSTs are in flight: they finish and are recorded.
    let worker = start(&h, config(&h));
    h.state.deliveries.wake();
    let before = sb.sandbox.stats().1;
    // A new worker: two company lookups (its cache starts empty), then the two POSTs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.sandbox.stats().1 < before + 4 {
        assert!(Instant::now() < deadline, "never posted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await;
    let log = log(&h, partner, ids[0]).await;
    assert_eq!(log.counts.delivered, 2, "{:?}", log.rows);
    assert_eq!(sb.sandbox.tickets().await.len(), 2);
    assert_eq!(leased(&h).await, 0, "no lease left behind");
}

async fn leased(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE lease_until > 0")
        .fetch_one(&h.state.db.pool)
        .await
        .expect("count")
}

/// Waits until the sandbox has received `n` API calls (counted when they arrive, before its latency).
async fn wait_for_api_calls(sb: &RunningSandbox, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.sandbox.stats().1 < n {
        assert!(Instant::now() < deadline, "no API call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A partner with "Acme Corporation" and `n` active integrations on `sb`.
async fn partner_with_integrations(h: &Harness, email: &str, sb: &RunningSandbox, n: usize) -> (i64, Vec<i64>, i64) {
    let (partner, cookie) = signed_in(h, email).await;
    let operator = Actor::operator("test");
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &operator)
        .await
        .expect("org")
        .id;
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, body) = save_integration(h, &cookie, None, input(sb, &format!("Desk {i}"))).await;
        assert!(status.is_success(), "{status} {body}");
        let id: i64 = serde_json::from_str(&body).expect("id");
        app::integrations::store::set_active(&h.state.db, partner, id, true, &operator).await.expect("enable");
        ids.push(id);
    }
    (partner, ids, acme)
}

#[tokio::test]
async fn one_partners_huge_slow_backlog_does_not_delay_another_partners_ticket() {
    fairness(harness(&[]).await).await;
}

#[tokio::test]
async fn one_partners_huge_slow_backlog_does_not_delay_another_partners_ticket_on_postgres() {
    if let Some(db) = app::testing::postgres().await {
        fairness(common::harness_on(db, &[])).await;
    }
}

async fn fairness(h: Harness) {
    // Partner A: 10,000 deliveries (2,000 compromises × 5 integrations) to a site that takes 3 s per call, so that
    // every slot of the process is busy with A's attempts for 6 s at a time.
    let slow = start_sandbox(Faults { latency_ms: 3000, ..Default::default() }).await;
    let fast = start_sandbox(Faults::default()).await;
    let (a, _, a_acme) = partner_with_integrations(&h, "a@example.com", &slow, 5).await;
    let (b, b_ids, b_acme) = partner_with_integrations(&h, "b@example.com", &fast, 1).await;
    let records: Vec<ImportRecord> = (0..2000).map(|n| record(n, a_acme)).collect();
    import(&h, a, &records).await;
    let worker = start(&h, config(&h));
    h.state.deliveries.wake();
    // A's attempts are under way (every slot of the process is A's) before B's compromise arrives.
    wait_for_api_calls(&slow, 8).await;

    import(&h, b, &[record(9999, b_acme)]).await;
    h.state.deliveries.wake();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    while fast.sandbox.tickets().await.is_empty() {
        assert!(Instant::now() < deadline, "partner B's ticket waited behind partner A's backlog for 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    let outstanding = app::delivery::store::outstanding(&h.state.db).await.expect("outstanding");
    worker.shutdown().await;
    println!("partner B's ticket after {waited:?}, with {outstanding} of partner A's deliveries outstanding");
    assert!(outstanding >= 9_000, "A's backlog is still there: {outstanding}");
    assert_eq!(log(&h, b, b_ids[0]).await.counts.delivered, 1);
}

/// Three workers, each with its own database pool, HTTP clients and budget keeper (as three server processes
/// would have), share one integration whose ConnectWise account allows 10 requests an hour: together they send at
/// most 10, the rest wait as Retrying with the time the budget refills, without counting attempts or turning the
/// integration Unhealthy.
#[tokio::test]
async fn workers_together_stay_within_the_accounts_request_budget() {
    let path = std::env::temp_dir().join(format!("dwid-budget-{}-{}.db", std::process::id(), rand::random::<u64>()));
    let url = format!("sqlite://{}", path.display());
    let h = common::harness_on(app::db::Db::connect(&url, 4).await.expect("db"), &[]);
    let sb = start_sandbox(Faults::default()).await;
    let (partner, cookie) = signed_in(&h, "budget@example.com").await;
    let operator = Actor::operator("test");
    let acme = app::organizations::store::add(&h.state.db, partner, "Acme Corporation", None, &operator)
        .await
        .expect("org")
        .id;
    let mut form = input(&sb, "Budgeted desk");
    form["request_budget"] = json!({ "requests": 10, "window": "Hour" });
    let (status, body) = save_integration(&h, &cookie, None, form).await;
    assert!(status.is_success(), "{status} {body}");
    let id: i64 = serde_json::from_str(&body).expect("id");
    app::integrations::store::set_active(&h.state.db, partner, id, true, &operator).await.expect("enable");

    let mut workers = Vec::new();
    for _ in 0..3 {
        let db = app::db::Db::connect(&url, 4).await.expect("another pool");
        let metrics = app::metrics::Metrics::new();
        let budgets = app::request_budget::RequestBudgets::new(db.clone());
        let ticketing = app::systems::Ticketing::from_config(&h.state.config, &metrics, budgets).expect("clients");
        let deps = Deps { db, ticketing, secrets: h.state.secrets.clone(), wake: Default::default(), metrics };
        workers.push(worker::spawn(deps, config(&h)));
    }
    let records: Vec<ImportRecord> = (1..=20).map(|n| record(n, acme)).collect();
    import(&h, partner, &records).await;

    // Settled: every delivery is Delivered or waits for the budget.
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = log(&h, partner, id).await;
        let ready = log.rows.iter().filter(|e| e.state == DeliveryState::Pending).count();
        let waiting = log.rows.iter().filter(|e| e.state == DeliveryState::Retrying).count();
        let delivered = log.rows.iter().filter(|e| e.state == DeliveryState::Delivered).count();
        if ready == 0 && waiting + delivered == 20 && waiting > 0 {
            break log;
        }
        assert!(Instant::now() < deadline, "not settled: {ready} pending, {waiting} waiting, {delivered} delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    for worker in workers {
        worker.shutdown().await;
    }

    let (_, api_calls) = sb.sandbox.stats();
    assert!(api_calls <= 10, "{api_calls} API calls for a budget of 10");
    let delivered = log.rows.iter().filter(|e| e.state == DeliveryState::Delivered).count();
    assert_eq!(delivered, sb.sandbox.tickets().await.len());
    assert!((1..10).contains(&delivered), "{delivered} delivered: a company lookup and a POST each count");
    let used: i64 =
        sqlx::query_scalar("SELECT SUM(used) FROM psa_request_counts").fetch_one(&h.state.db.pool).await.expect("sum");
    assert_eq!(used, 10, "the budget is used up, and not beyond");
    for entry in log.rows.iter().filter(|e| e.state == DeliveryState::Retrying) {
        let error = entry.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("request budget (10 requests per hour) is used up") && error.contains("refills at"),
            "{error}"
        );
        assert_eq!(entry.attempts, 0, "waiting for the budget is not an attempt");
        assert!(entry.next_attempt.is_some(), "{entry:?}");
    }
    let row = app::integrations::store::get(&h.state.db, partner, id).await.expect("integration");
    assert_ne!(row.health, Health::Unhealthy, "a spent budget says nothing about ConnectWise");
}

#[tokio::test]
async fn a_worker_declared_dead_stops_posting_and_starts_again_under_a_new_name() {
    declared_dead(harness(&[("CONNECTWISE_TIMEOUT_SECS", "1")]).await).await;
}

#[tokio::test]
async fn a_worker_declared_dead_stops_posting_and_starts_again_under_a_new_name_on_postgres() {
    if let Some(db) = app::testing::postgres().await {
        declared_dead(common::harness_on(db, &[("CONNECTWISE_TIMEOUT_SECS", "1")])).await;
    }
}

/// A worker whose renewals stopped reaching the database for 9 s (as another worker sees it) is declared dead
/// while it delivers: its claims are taken over, its next renewal tells it, it stops posting and starts again under a
/// new name; every compromise still becomes exactly one ticket.
async fn declared_dead(h: Harness) {
    let sb = start_sandbox(Faults { latency_ms: 30, ..Default::default() }).await;
    let (partner, ids, acme, _) = setup(&h, &sb, 1).await;
    // Renewals every 300 ms; it declares nobody dead itself within the test (stale after 60 s).
    let config =
        WorkerConfig { heartbeat: Duration::from_millis(300), stale_after: Duration::from_secs(60), ..config(&h) };
    let worker = start(&h, config);
    let records: Vec<ImportRecord> = (1..=120).map(|n| record(n, acme)).collect();
    import(&h, partner, &records).await;
    h.state.deliveries.wake();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sb.sandbox.ticket_count() < 10 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let db = &h.state.db;
    // Another worker's view: this one's heartbeat is 9 s old. It declares it dead and takes its claims; those in
    // doubt come back once its POSTs have ended (here 3 s from now), the rest at once.
    let taken = loop {
        let now = app::db::now_millis();
        sqlx::query("UPDATE delivery_workers SET heartbeat_at = $1 WHERE state = 'alive'")
            .bind(now - 9_000)
            .execute(&db.pool)
            .await
            .expect("age the heartbeat");
        let taken = app::delivery::store::take_over_stale(db, now, 8_000, 12_000).await.expect("take over");
        if let Some(dead) = taken.into_iter().next() {
            break dead;
        }
    };
    assert!(taken.leases > 0, "it held claims: {taken:?}");
    // Its next renewal finds it dead: it stops and starts again under a new name.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<String> = sqlx::query_scalar("SELECT id FROM delivery_workers WHERE state = 'alive'")
            .fetch_all(&db.pool)
            .await
            .expect("workers");
        if alive.iter().any(|id| *id != taken.worker) {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not start again: {alive:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state: String = sqlx::query_scalar("SELECT state FROM delivery_workers WHERE id = $1")
        .bind(&taken.worker)
        .fetch_one(&db.pool)
        .await
        .expect("old row");
    assert_eq!(state, "dead");
    settled(&h, Duration::from_secs(30)).await;
    worker.shutdown().await;
    // Exactly once: had the old worker gone on posting what it held, the taken-over deliveries would have been
    // posted twice.
    let by_xref = tickets_by_xref(&sb).await;
    for r in &records {
        assert_eq!(by_xref.get(&format!("dwid:{}/{}", r.uuid, ids[0])), Some(&1), "{}", r.uuid);
    }
    assert_eq!(sb.sandbox.ticket_count(), 120);
    // A clean shutdown removes the new name's row.
    let alive: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM delivery_workers WHERE state = 'alive'")
        .fetch_one(&db.pool)
        .await
        .expect("workers");
    assert_eq!(alive, 0);
}
