//! Import, outbox and claim tests, run against SQLite and PostgreSQL alike.
#![cfg(feature = "ssr")]

use std::collections::HashSet;

use app::activity::Actor;
use app::compromises::store::{self as compromises, ImportFailed};
use app::compromises::{ImportError, ImportRecord, OrganizationRef};
use app::db::{Db, now_millis};
use app::delivery::store::{self as deliveries, Exclude, Outcome};
use app::delivery::{DeliveryState, LogFilter};
use app::integrations::AuthKind;
use app::integrations::store::{self as integrations, IntegrationWrite};
use app::mapping::{PasswordCriteria, RecordType};
use app::secrets::SecretBox;
use app::testing::all_backends;

const LEASE: i64 = 60_000;

async fn partner(db: &Db, email: &str) -> i64 {
    app::auth::store::create_partner(db, email, "a long enough password").await.expect("partner").id
}

async fn organization(db: &Db, partner_id: i64, name: &str) -> i64 {
    app::organizations::store::add(db, partner_id, name, Some(&[]), &Actor::operator("test"))
        .await
        .expect("organization")
        .id
}

async fn integration(db: &Db, partner_id: i64, name: &str, active: bool, orgs: &[i64]) -> i64 {
    let write = IntegrationWrite {
        name,
        system: "connectwise",
        site: "na.myconnectwise.net",
        company_id: "acme",
        auth_kind: AuthKind::ApiKeys,
        credentials_sealed: "v1:00",
        mapping_json: "[]",
        settings_json: "{}",
    };
    let id = integrations::create(db, partner_id, &write, &Actor::operator("test")).await.expect("integration");
    // create() associates every organization; keep only the ones asked for.
    for (org, _) in app::organizations::store::associations(db, partner_id).await.expect("associations") {
        integrations::set_association(db, partner_id, org, id, orgs.contains(&org), &Actor::operator("test"))
            .await
            .expect("association");
    }
    integrations::set_active(db, partner_id, id, active, &Actor::operator("test")).await.expect("active");
    id
}

fn record(n: u32, organization: OrganizationRef) -> ImportRecord {
    ImportRecord {
        uuid: format!("00000000-0000-4000-8000-{n:012}"),
        password: n.is_multiple_of(2).then(|| format!("Secret{n}!")),
        record_type: RecordType::Email,
        source: "Collection #1".into(),
        website: None,
        organization,
        compromise: format!("user{n}@acme.example"),
        password_criteria: PasswordCriteria::Matches,
        search_value: "acme.example".into(),
        date_added: "2026-11-01T10:00:00Z".into(),
        date_found: "2026-10-30T00:00:00Z".into(),
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&db.pool).await.expect("count")
}

#[tokio::test]
async fn import_queues_one_delivery_per_active_associated_integration_and_ignores_known_uuids() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "import@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let b = organization(&db, p, "Initech").await;
        let both = integration(&db, p, "Both", true, &[a, b]).await;
        let _inactive = integration(&db, p, "Inactive", false, &[a, b]).await;
        let only_a = integration(&db, p, "Only A", true, &[a]).await;

        let batch = vec![
            record(1, OrganizationRef::ByName("acme corporation".into())),
            record(2, OrganizationRef::ById(a)),
            record(3, OrganizationRef::ByName("Initech".into())),
        ];
        let summary = compromises::import(&db, &secrets, p, &batch).await.expect("import");
        assert_eq!((summary.received, summary.imported, summary.duplicates), (3, 3, 0));
        // Acme: 2 compromises × (Both, Only A); Initech: 1 × Both. The Inactive integration gets nothing.
        assert_eq!(summary.deliveries_queued, 5, "{:?}", db.backend);
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM deliveries WHERE integration_id = {both}")).await, 3);
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM deliveries WHERE integration_id = {only_a}")).await, 2);

        // The same uuids again (plus one new): no-ops, counted as duplicates.
        let mut again = batch.clone();
        again.push(record(4, OrganizationRef::ById(b)));
        let summary = compromises::import(&db, &secrets, p, &again).await.expect("import again");
        assert_eq!((summary.imported, summary.duplicates, summary.deliveries_queued), (1, 3, 1));
        assert_eq!(count(&db, "SELECT COUNT(*) FROM compromises").await, 4);

        // Passwords are sealed at rest and opened for delivery.
        let stored: Vec<Option<String>> =
            sqlx::query_scalar("SELECT password_sealed FROM compromises").fetch_all(&db.pool).await.expect("rows");
        assert!(stored.iter().flatten().all(|s| s.starts_with("v1:") && !s.contains("Secret")));
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM compromises ORDER BY id").fetch_all(&db.pool).await.expect("ids");
        let loaded = compromises::load_for_delivery(&db, &secrets, &ids).await.expect("load");
        let second = loaded[&ids[1]].as_ref().expect("readable");
        assert_eq!(second.password.as_deref(), Some("Secret2!"));
        assert_eq!(second.organization_name, "Acme Corporation");
        assert_eq!(second.compromise, "user2@acme.example");
        // Another partner's key context cannot open them.
        let other = SecretBox::new(&[8u8; 32]);
        assert!(compromises::load_for_delivery(&db, &other, &ids[1..2]).await.expect("load")[&ids[1]].is_err());
    }
}

#[tokio::test]
async fn a_batch_naming_unknown_organizations_is_refused_whole() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "refuse@example.com").await;
        let other = partner(&db, "other@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let foreign = organization(&db, other, "Foreign Org").await;
        integration(&db, p, "Main", true, &[a]).await;
        let batch = vec![
            record(1, OrganizationRef::ById(a)),
            record(2, OrganizationRef::ByName("Nobody Inc".into())),
            record(3, OrganizationRef::ById(foreign)),
        ];
        let Err(ImportFailed::Rejected(ImportError::Invalid(errors))) =
            compromises::import(&db, &secrets, p, &batch).await
        else {
            panic!("expected a rejection");
        };
        assert_eq!(errors.iter().map(|e| e.record).collect::<Vec<_>>(), [2, 3]);
        assert!(errors[0].message.starts_with("record 2: `organization_name` \"Nobody Inc\" is not one of your"));
        assert_eq!(count(&db, "SELECT COUNT(*) FROM compromises").await, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM deliveries").await, 0);
    }
}

#[tokio::test]
async fn claims_are_leased_fenced_and_expire() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "claims@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let i = integration(&db, p, "Main", true, &[a]).await;
        let batch: Vec<ImportRecord> = (1..=3).map(|n| record(n, OrganizationRef::ById(a))).collect();
        compromises::import(&db, &secrets, p, &batch).await.expect("import");

        let now = now_millis();
        let first = deliveries::claim(&db, "A", now, 2, LEASE, &Exclude::default()).await.expect("claim");
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| c.attempts == 1 && !c.lookup_first && c.integration_id == i));
        let second = deliveries::claim(&db, "B", now, 10, LEASE, &Exclude::default()).await.expect("claim");
        assert_eq!(second.len(), 1, "leased rows are not claimed twice");
        assert!(deliveries::claim(&db, "C", now, 10, LEASE, &Exclude::default()).await.expect("claim").is_empty());
        // An integration at its limit is skipped.
        deliveries::finish(&db, second[0].id, "B", &Outcome::Released { in_doubt: false }).await.expect("release");
        let busy = Exclude { integrations: vec![i], ..Default::default() };
        assert!(deliveries::claim(&db, "C", now, 10, LEASE, &busy).await.expect("claim").is_empty());
        // So is a partner holding its share; the claim says whose each delivery is.
        let partner_busy = Exclude { partners: vec![p], ..Default::default() };
        assert!(deliveries::claim(&db, "C", now, 10, LEASE, &partner_busy).await.expect("claim").is_empty());
        let other = Exclude { partners: vec![p + 1000], ..Default::default() };
        let mine = deliveries::claim(&db, "C", now, 10, LEASE, &other).await.expect("claim");
        assert_eq!(mine.iter().map(|c| c.partner_id).collect::<Vec<_>>(), vec![p]);
        deliveries::finish(&db, mine[0].id, "C", &Outcome::Released { in_doubt: false }).await.expect("release");

        // Only the lease holder records an outcome.
        assert!(!deliveries::finish(&db, first[0].id, "B", &Outcome::Delivered { ticket_id: 1 }).await.expect("f"));
        assert!(deliveries::finish(&db, first[0].id, "A", &Outcome::Delivered { ticket_id: 7 }).await.expect("f"));

        // A dead worker's lease expires; the next claimer must look the ticket up first if it was marked in doubt
        // (its POST could have started), and need not if it was not.
        assert_eq!(deliveries::arm(&db, "A", &[first[1].id]).await.expect("arm"), vec![first[1].id]);
        let later = now + LEASE + 1;
        let reclaimed = deliveries::claim(&db, "B", later, 10, LEASE, &Exclude::default()).await.expect("claim");
        let ids: HashSet<i64> = reclaimed.iter().map(|c| c.id).collect();
        assert_eq!(ids, HashSet::from([first[1].id, second[0].id]));
        let expired = reclaimed.iter().find(|c| c.id == first[1].id).expect("expired claim");
        assert!(expired.lookup_first && expired.attempts == 2);
        let released = reclaimed.iter().find(|c| c.id == second[0].id).expect("released claim");
        assert!(!released.lookup_first && released.attempts == 1, "a release is not an attempt: {released:?}");
        assert!(!deliveries::finish(&db, first[1].id, "A", &Outcome::Delivered { ticket_id: 8 }).await.expect("f"));

        // Retry later, and fail.
        let at = later + 5_000;
        let retry = Outcome::Retry { at, error: "ConnectWise had a temporary problem".into(), in_doubt: true };
        assert!(deliveries::finish(&db, first[1].id, "B", &retry).await.expect("f"));
        let failed = Outcome::Failed { error: "ConnectWise refused the ticket: x".into(), in_doubt: false };
        assert!(deliveries::finish(&db, second[0].id, "B", &failed).await.expect("f"));
        assert!(
            deliveries::claim(&db, "C", later, 10, LEASE, &Exclude::default()).await.expect("claim").is_empty(),
            "not due yet"
        );
        let due = deliveries::claim(&db, "C", at, 10, LEASE, &Exclude::default()).await.expect("claim");
        assert_eq!(due.iter().map(|c| (c.id, c.lookup_first)).collect::<Vec<_>>(), [(first[1].id, true)]);

        let log = deliveries::log(&db, p, i, &LogFilter::default()).await.expect("log");
        assert_eq!((log.counts.delivered, log.counts.failed, log.counts.retrying), (1, 1, 1));
        let delivered = log.rows.iter().find(|r| r.id == first[0].id).expect("row");
        assert_eq!((delivered.state, delivered.ticket_id), (DeliveryState::Delivered, Some(7)));
        // A delivered row is final: no stale writer can turn it back.
        let stale = Outcome::Retry { at, error: "late".into(), in_doubt: false };
        assert!(!deliveries::finish(&db, first[0].id, "A", &stale).await.expect("f"));
        // Retry puts a Failed one back, due now, once, with a fresh round of attempts.
        assert_eq!(
            deliveries::retry_failed(&db, p, i, Some(second[0].id), &Actor::operator("test")).await.expect("retry"),
            1
        );
        assert!(deliveries::retry_failed(&db, p, i, Some(second[0].id), &Actor::operator("test")).await.is_err());
        let again = deliveries::claim(&db, "D#1", at, 10, LEASE, &Exclude::default()).await.expect("claim");
        assert_eq!(again.iter().map(|c| (c.id, c.attempts)).collect::<Vec<_>>(), [(second[0].id, 1)]);
        // A stale copy of an older claim by the same worker cannot release the newer claim of the same row.
        let newer = deliveries::claim(&db, "D#2", at + LEASE + 1, 10, LEASE, &Exclude::default()).await.expect("claim");
        assert!(newer.iter().any(|c| c.id == second[0].id && c.token == "D#2"));
        let release = Outcome::Released { in_doubt: false };
        assert!(!deliveries::finish(&db, second[0].id, "D#1", &release).await.expect("f"));
        assert!(deliveries::finish(&db, second[0].id, "D#2", &release).await.expect("f"));
        // A clean shutdown releases every claim of the worker; rows in doubt come back only after a delay.
        assert_eq!(deliveries::release_all(&db, "D", 60_000).await.expect("release"), 1);
        let in_doubt_due: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT next_attempt_at FROM deliveries WHERE id = {}",
            first[1].id
        )))
        .fetch_one(&db.pool)
        .await
        .expect("due");
        assert!(in_doubt_due >= now_millis() + 50_000, "a released in-doubt delivery waits");
        let other = partner(&db, "stranger@example.com").await;
        assert!(
            deliveries::retry_failed(&db, other, i, None, &Actor::operator("test")).await.is_err(),
            "another partner's integration"
        );
    }
}

#[tokio::test]
async fn disabled_integrations_pause_and_removed_ones_cancel() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "pause@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let i = integration(&db, p, "Main", true, &[a]).await;
        let batch: Vec<ImportRecord> = (1..=2).map(|n| record(n, OrganizationRef::ById(a))).collect();
        compromises::import(&db, &secrets, p, &batch).await.expect("import");
        integrations::set_active(&db, p, i, false, &Actor::operator("test")).await.expect("disable");
        let now = now_millis();
        assert!(deliveries::claim(&db, "A", now, 10, LEASE, &Exclude::default()).await.expect("claim").is_empty());
        let log = deliveries::log(&db, p, i, &LogFilter::default()).await.expect("log");
        assert_eq!(log.counts.paused, 2);
        assert!(log.rows.iter().all(|r| r.state == DeliveryState::Paused));
        let paused = LogFilter { state: Some(DeliveryState::Paused), ..Default::default() };
        assert_eq!(deliveries::log(&db, p, i, &paused).await.expect("log").rows.len(), 2);

        integrations::set_active(&db, p, i, true, &Actor::operator("test")).await.expect("enable");
        assert_eq!(deliveries::claim(&db, "A", now, 10, LEASE, &Exclude::default()).await.expect("claim").len(), 2);

        integrations::remove(&db, p, i, &Actor::operator("test")).await.expect("remove");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM deliveries").await, 0, "removing cancels its deliveries");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM compromises").await, 2, "the compromises stay");
    }
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_delivery() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "race@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        integration(&db, p, "One", true, &[a]).await;
        integration(&db, p, "Two", true, &[a]).await;
        let batch: Vec<ImportRecord> = (1..=150).map(|n| record(n, OrganizationRef::ById(a))).collect();
        let summary = compromises::import(&db, &secrets, p, &batch).await.expect("import");
        assert_eq!(summary.deliveries_queued, 300);
        let now = now_millis();
        let mut workers = Vec::new();
        for w in 0..6 {
            let db = db.clone();
            workers.push(tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut mine = Vec::new();
                loop {
                    let batch =
                        deliveries::claim(&db, &owner, now, 7, LEASE, &Exclude::default()).await.expect("claim");
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.id));
                }
            }));
        }
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.expect("worker"));
        }
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 300, "{:?}: every delivery claimed once", db.backend);
        assert_eq!(unique.len(), 300);
    }
}

/// The trigger-kept counters (`delivery_counts`) equal a real count of the deliveries, per integration and state.
async fn assert_counts_exact(db: &Db, step: &str) {
    let counted: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT integration_id, state, COUNT(*) FROM deliveries GROUP BY integration_id, state \
         ORDER BY integration_id, state",
    )
    .fetch_all(&db.pool)
    .await
    .expect("count");
    let kept: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT integration_id, state, n FROM delivery_counts WHERE n <> 0 ORDER BY integration_id, state",
    )
    .fetch_all(&db.pool)
    .await
    .expect("counters");
    assert_eq!(kept, counted, "{:?}, after {step}", db.backend);
}

#[tokio::test]
async fn state_counts_stay_exact_through_every_change() {
    let secrets = SecretBox::new(&[9u8; 32]);
    let actor = Actor::operator("test");
    for db in all_backends().await {
        let p = partner(&db, "counts@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let b = organization(&db, p, "Initech").await;
        let one = integration(&db, p, "One", true, &[a, b]).await;
        let two = integration(&db, p, "Two", true, &[a]).await;
        assert_counts_exact(&db, "nothing").await;

        let batch: Vec<ImportRecord> =
            (1..=40).map(|n| record(n, OrganizationRef::ById(if n % 4 == 0 { b } else { a }))).collect();
        assert_eq!(compromises::import(&db, &secrets, p, &batch).await.expect("import").deliveries_queued, 70);
        assert_counts_exact(&db, "enqueue at import").await;
        compromises::import(&db, &secrets, p, &batch).await.expect("import again");
        assert_counts_exact(&db, "a re-import of the same uuids").await;

        let now = now_millis();
        let claims = deliveries::claim(&db, "w#1", now, 12, LEASE, &Exclude::default()).await.expect("claim");
        assert_eq!(claims.len(), 12);
        assert_counts_exact(&db, "claim").await;
        assert!(deliveries::finish(&db, claims[0].id, "w#1", &Outcome::Delivered { ticket_id: 1 }).await.expect("f"));
        assert_counts_exact(&db, "delivered").await;
        let retry = Outcome::Retry { at: now, error: "503".into(), in_doubt: true };
        assert!(deliveries::finish(&db, claims[1].id, "w#1", &retry).await.expect("f"));
        assert_counts_exact(&db, "retry").await;
        let failed = Outcome::Failed { error: "400".into(), in_doubt: false };
        for claim in &claims[2..5] {
            assert!(deliveries::finish(&db, claim.id, "w#1", &failed).await.expect("f"));
        }
        assert_counts_exact(&db, "failed").await;
        let wait = Outcome::Wait { at: now, error: "budget".into(), in_doubt: false };
        assert!(deliveries::finish(&db, claims[5].id, "w#1", &wait).await.expect("f"));
        assert!(deliveries::finish(&db, claims[6].id, "w#1", &Outcome::Released { in_doubt: false }).await.expect("f"));
        assert_counts_exact(&db, "wait and release").await;
        let many: Vec<(i64, i64)> = claims[7..11].iter().map(|c| (c.id, c.id + 100)).collect();
        assert_eq!(deliveries::finish_delivered(&db, "w#1", &many).await.expect("batch"), 4);
        assert_counts_exact(&db, "delivered in a batch").await;
        // A stale writer changes nothing, and nothing in the counts.
        assert!(!deliveries::finish(&db, claims[0].id, "w#1", &failed).await.expect("f"));
        assert_eq!(deliveries::release_all(&db, "w", 1_000).await.expect("release all"), 1);
        assert_counts_exact(&db, "stale writes and release_all").await;

        let failed_of_one: i64 =
            count(&db, &format!("SELECT COUNT(*) FROM deliveries WHERE integration_id = {one} AND state = 'failed'"))
                .await;
        assert_eq!(deliveries::retry_failed(&db, p, one, None, &actor).await.expect("retry") as i64, failed_of_one);
        assert_counts_exact(&db, "retry all failed").await;
        // A hand-written change, as an operator (or a test) might make.
        sqlx::query("UPDATE deliveries SET state = 'failed' WHERE id % 3 = 0").execute(&db.pool).await.expect("u");
        assert_counts_exact(&db, "an UPDATE of many rows").await;
        let failed_id: i64 =
            count(&db, &format!("SELECT MIN(id) FROM deliveries WHERE integration_id = {two} AND state = 'failed'"))
                .await;
        deliveries::retry_failed(&db, p, two, Some(failed_id), &actor).await.expect("retry one");
        assert_counts_exact(&db, "retry one").await;

        // The log reads its counts from the counters, Paused while disabled.
        let log = deliveries::log(&db, p, one, &LogFilter::default()).await.expect("log");
        let real = count(&db, &format!("SELECT COUNT(*) FROM deliveries WHERE integration_id = {one}")).await;
        assert_eq!(log.counts.total(), real);
        integrations::set_active(&db, p, one, false, &actor).await.expect("disable");
        let paused = deliveries::log(&db, p, one, &LogFilter::default()).await.expect("log");
        let waiting = count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM deliveries WHERE integration_id = {one} AND state IN ('pending', 'retrying')"
            ),
        )
        .await;
        assert_eq!((paused.counts.paused, paused.counts.pending, paused.counts.retrying), (waiting, 0, 0));
        assert_counts_exact(&db, "disable").await;

        // Deleting an organization removes its compromises' deliveries; removing an integration its counters.
        app::organizations::store::delete(&db, p, b, &actor).await.expect("delete organization");
        assert_counts_exact(&db, "organization deleted").await;
        integrations::remove(&db, p, two, &actor).await.expect("remove");
        assert_counts_exact(&db, "integration removed").await;
        assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM delivery_counts WHERE integration_id = {two}")).await, 0);
        let log = deliveries::log(&db, p, one, &LogFilter::default()).await.expect("log");
        let real = count(&db, &format!("SELECT COUNT(*) FROM deliveries WHERE integration_id = {one}")).await;
        assert_eq!(log.counts.total(), real);
    }
}

#[tokio::test]
async fn log_pages_merge_states_and_follow_every_filter() {
    let secrets = SecretBox::new(&[9u8; 32]);
    for db in all_backends().await {
        let p = partner(&db, "pages@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        let b = organization(&db, p, "Initech").await;
        let i = integration(&db, p, "Main", true, &[a, b]).await;
        integration(&db, p, "Other", true, &[a, b]).await;
        let batch: Vec<ImportRecord> =
            (1..=230).map(|n| record(n, OrganizationRef::ById(if n % 3 == 0 { b } else { a }))).collect();
        compromises::import(&db, &secrets, p, &batch).await.expect("import");
        // Every state, interleaved by id.
        for (state, remainder) in [("delivered", 1), ("failed", 2), ("retrying", 3)] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET state = '{state}' WHERE id % 5 = {remainder}"
            )))
            .execute(&db.pool)
            .await
            .expect("state");
        }
        let filters = [
            (None, None, ""),
            (Some(DeliveryState::Failed), None, " AND state = 'failed'"),
            (Some(DeliveryState::Pending), None, " AND state = 'pending'"),
            (None, Some(b), ""),
            (Some(DeliveryState::Retrying), Some(a), " AND state = 'retrying'"),
        ];
        for (state, organization, state_sql) in filters {
            let org_sql = organization.map(|o| format!(" AND organization_id = {o}")).unwrap_or_default();
            let expected: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM deliveries WHERE integration_id = {i}{state_sql}{org_sql} ORDER BY id DESC"
            )))
            .fetch_all(&db.pool)
            .await
            .expect("expected");
            assert!(!expected.is_empty());
            let mut seen = Vec::new();
            let mut before_id = None;
            loop {
                let filter = LogFilter { state, organization_id: organization, before_id };
                let page = deliveries::log(&db, p, i, &filter).await.expect("log");
                assert!(page.rows.len() <= app::delivery::LOG_PAGE_SIZE);
                seen.extend(page.rows.iter().map(|r| r.id));
                if !page.more {
                    break;
                }
                before_id = page.rows.last().map(|r| r.id);
            }
            assert_eq!(seen, expected, "{:?}: state {state:?}, organization {organization:?}", db.backend);
        }
    }
}

#[tokio::test]
async fn a_stale_workers_leases_are_taken_over_and_a_fresh_workers_are_not() {
    let secrets = SecretBox::new(&[9u8; 32]);
    const STALE: i64 = 8_000;
    for db in all_backends().await {
        let p = partner(&db, "heartbeats@example.com").await;
        let a = organization(&db, p, "Acme Corporation").await;
        integration(&db, p, "Main", true, &[a]).await;
        let batch: Vec<ImportRecord> = (1..=6).map(|n| record(n, OrganizationRef::ById(a))).collect();
        compromises::import(&db, &secrets, p, &batch).await.expect("import");
        let now = now_millis();
        // "old" last renewed 9 s ago (paused, or killed); "fresh" just now. Both hold claims with the default lease.
        deliveries::register_worker(&db, "worker-1-old", now - 9_000).await.expect("register");
        deliveries::register_worker(&db, "worker-2-fresh", now).await.expect("register");
        let lease = 300_000;
        let old = deliveries::claim(&db, "worker-1-old#0", now, 2, lease, &Exclude::default()).await.expect("c");
        let fresh = deliveries::claim(&db, "worker-2-fresh#0", now, 2, lease, &Exclude::default()).await.expect("c");
        assert_eq!((old.len(), fresh.len()), (2, 2));
        // The old worker had come near posting one of its two (marked in doubt), not the other.
        assert_eq!(deliveries::arm(&db, "worker-1-old#0", &[old[0].id]).await.expect("arm"), vec![old[0].id]);
        assert!(deliveries::arm(&db, "worker-9-other#0", &[old[1].id]).await.expect("arm").is_empty(), "not its lease");
        // Nobody is stale yet at the old worker's last renewal + 8 s: nothing is taken.
        let settle = 30_000;
        let early = deliveries::take_over_stale(&db, now - 1_000, STALE, settle).await.expect("take over");
        assert!(early.is_empty(), "{early:?}");

        // Now the old worker is stale: declared dead, its two leases taken back, the fresh worker's left alone.
        let taken = deliveries::take_over_stale(&db, now, STALE, settle).await.expect("take over");
        assert_eq!(
            taken,
            vec![deliveries::TakenOver { worker: "worker-1-old".into(), heartbeat_at: now - 9_000, leases: 2 }]
        );
        assert!(deliveries::take_over_stale(&db, now, STALE, settle).await.expect("again").is_empty(), "declared once");
        // The one it never came near posting is claimed again at once, without a lookup; the fresh worker's stay.
        let next = deliveries::claim(&db, "worker-3-new#0", now, 10, lease, &Exclude::default()).await.expect("c");
        let ids: HashSet<i64> = next.iter().map(|c| c.id).collect();
        assert!(ids.contains(&old[1].id), "a dead worker's untouched claim comes back at once");
        assert!(next.iter().any(|c| c.id == old[1].id && !c.lookup_first && c.attempts == 2));
        assert!(fresh.iter().all(|c| !ids.contains(&c.id)), "a fresh worker's claims stay with it");
        // The one in doubt waits until its last heartbeat + the settle delay (every POST it may have started has
        // ended), then is looked up before any POST.
        assert!(!ids.contains(&old[0].id), "not before its POST has ended");
        let due = deliveries::claim(&db, "worker-3-new#1", now - 9_000 + settle, 10, lease, &Exclude::default())
            .await
            .expect("claim");
        assert!(due.iter().any(|c| c.id == old[0].id && c.lookup_first && c.attempts == 2), "{due:?}");

        // The dead worker can no longer write anything; its next renewal tells it it was declared dead.
        let late = Outcome::Delivered { ticket_id: 99 };
        assert!(!deliveries::finish(&db, old[0].id, "worker-1-old#0", &late).await.expect("finish"));
        assert!(!deliveries::renew_heartbeat(&db, "worker-1-old", now_millis()).await.expect("renew"));
        assert!(deliveries::renew_heartbeat(&db, "worker-2-fresh", now_millis()).await.expect("renew"));
        assert!(deliveries::finish(&db, fresh[0].id, "worker-2-fresh#0", &late).await.expect("finish"));

        // A clean shutdown removes the row.
        deliveries::unregister_worker(&db, "worker-2-fresh").await.expect("unregister");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM delivery_workers WHERE id = 'worker-2-fresh'").await, 0);
        assert!(!deliveries::renew_heartbeat(&db, "worker-2-fresh", now_millis()).await.expect("renew"));
    }
}
