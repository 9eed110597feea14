//! Store tests, run against SQLite and PostgreSQL alike.
#![cfg(feature = "ssr")]

use app::activity::Actor;
use app::auth::store as auth;
use app::db::{Db, StoreError};
use app::organizations::store as orgs;
use app::testing::all_backends;

async fn partner(db: &Db, email: &str) -> i64 {
    auth::create_partner(db, email, "a long enough password").await.expect("partner").id
}

#[tokio::test]
async fn partners_have_unique_case_insensitive_emails_and_hashed_passwords() {
    for db in all_backends().await {
        let p = auth::create_partner(&db, " Owner@Example.com ", "a long enough password").await.expect("created");
        assert_eq!(p.email, "Owner@Example.com");
        let dup = auth::create_partner(&db, "owner@example.COM", "another long password").await;
        assert!(matches!(dup, Err(auth::CreatePartnerError::Exists(_))), "{:?}: {dup:?}", db.backend);
        let short = auth::create_partner(&db, "x@example.com", "short").await;
        assert!(matches!(short, Err(auth::CreatePartnerError::Invalid(_))));

        let stored: String = sqlx::query_scalar("SELECT password_hash FROM partners WHERE id = $1")
            .bind(p.id)
            .fetch_one(&db.pool)
            .await
            .expect("hash");
        assert!(stored.starts_with("$argon2id$") && !stored.contains("a long enough password"));

        assert_eq!(auth::authenticate(&db, "OWNER@example.com", "a long enough password").await.expect("ok"), Some(p));
        assert_eq!(auth::authenticate(&db, "owner@example.com", "wrong password!!").await.expect("ok"), None);
        assert_eq!(auth::authenticate(&db, "nobody@example.com", "a long enough password").await.expect("ok"), None);
        assert_eq!(auth::count_partners(&db).await.expect("count"), 1);
    }
}

#[tokio::test]
async fn sessions_expire_and_end_on_sign_out() {
    for db in all_backends().await {
        let id = partner(&db, "s@example.com").await;
        let token = auth::create_session(&db, id, 60_000, &Actor::operator("test")).await.expect("session");
        assert_eq!(auth::session_partner(&db, &token).await.expect("lookup").map(|p| p.id), Some(id));
        assert_eq!(auth::session_partner(&db, "not-a-token").await.expect("lookup"), None);
        assert_eq!(auth::session_partner(&db, &"0".repeat(64)).await.expect("lookup"), None);

        let expired = auth::create_session(&db, id, -1, &Actor::operator("test")).await.expect("session");
        assert_eq!(auth::session_partner(&db, &expired).await.expect("lookup"), None, "expired session");

        auth::delete_session(&db, &token).await.expect("delete");
        assert_eq!(auth::session_partner(&db, &token).await.expect("lookup"), None, "signed out");
        // Only the hash of a token is stored.
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
            .bind(&token)
            .fetch_one(&db.pool)
            .await
            .expect("count");
        assert_eq!(stored, 0);
    }
}

#[tokio::test]
async fn rate_limits_count_atomically_per_key_and_window() {
    use app::rate_limit;
    for db in all_backends().await {
        let now = 1_000_000;
        // 20 concurrent hits on one key get the counts 1..=20, each exactly once.
        let hits = futures_join(&db, "k", now).await;
        let mut counts: Vec<i64> = hits.iter().map(|h| h.count).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=20).collect::<Vec<_>>(), "{:?}", db.backend);
        assert!(hits.iter().filter(|h| h.over(5)).count() == 15);
        let other = rate_limit::hit(&db, "other", now, 60_000).await.expect("hit");
        assert_eq!(other.count, 1);
        assert_eq!(other.retry_after_secs(now), 60);
        // undo takes back one hit of the same window; reset forgets the key.
        rate_limit::undo(&db, "other", other).await.expect("undo");
        assert_eq!(rate_limit::peek(&db, "other", now).await.expect("peek"), 0);
        rate_limit::reset(&db, "k").await.expect("reset");
        assert_eq!(rate_limit::peek(&db, "k", now).await.expect("peek"), 0);
        // A new window starts once the last one ended, and ended windows are purged.
        rate_limit::hit(&db, "k", now, 60_000).await.expect("hit");
        let later = rate_limit::hit(&db, "k", now + 60_000, 60_000).await.expect("hit");
        assert_eq!((later.count, later.expires_at), (1, now + 120_000));
        assert_eq!(rate_limit::purge(&db, now + 60_001).await.expect("purge"), 1, "only `other` had ended");
        assert_eq!(rate_limit::rows(&db).await.expect("rows"), 1);
    }
}

async fn futures_join(db: &Db, key: &str, now: i64) -> Vec<app::rate_limit::Hit> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let db = db.clone();
        let key = key.to_string();
        tasks.spawn(async move { app::rate_limit::hit(&db, &key, now, 60_000).await.expect("hit") });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn organizations_are_sorted_unique_per_partner_and_scoped() {
    for db in all_backends().await {
        let a = partner(&db, "a@example.com").await;
        let b = partner(&db, "b@example.com").await;
        for name in ["globex", "Acme", "Ärzte Praxis", "Initech"] {
            orgs::add(&db, a, name, None, &Actor::operator("test")).await.expect("add");
        }
        let names: Vec<_> = orgs::list(&db, a).await.expect("list").into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["Acme", "globex", "Initech", "Ärzte Praxis"], "{:?}", db.backend);

        // Case-insensitive uniqueness, Unicode included; another partner may use the same name.
        assert!(matches!(
            orgs::add(&db, a, "ACME", None, &Actor::operator("test")).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            orgs::add(&db, a, "ärzte praxis", None, &Actor::operator("test")).await,
            Err(StoreError::Conflict(_))
        ));
        let b_acme = orgs::add(&db, b, "Acme", None, &Actor::operator("test")).await.expect("other partner");

        let acme = orgs::list(&db, a).await.expect("list").remove(0);
        let renamed =
            orgs::rename(&db, a, acme.id, "Acme Corporation", &Actor::operator("test")).await.expect("rename");
        assert_eq!(renamed.name, "Acme Corporation");
        assert!(matches!(
            orgs::rename(&db, a, acme.id, "Globex", &Actor::operator("test")).await,
            Err(StoreError::Conflict(_))
        ));
        // Changing only the case of its own name is allowed.
        orgs::rename(&db, a, acme.id, "ACME Corporation", &Actor::operator("test")).await.expect("case change");

        // Partner B cannot touch partner A's organization, and learns nothing about it.
        assert!(matches!(
            orgs::rename(&db, b, acme.id, "Hijacked", &Actor::operator("test")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(orgs::delete(&db, b, acme.id, &Actor::operator("test")).await, Err(StoreError::NotFound(_))));
        assert_eq!(orgs::list(&db, b).await.expect("list"), vec![b_acme]);

        orgs::delete(&db, a, acme.id, &Actor::operator("test")).await.expect("delete");
        assert!(matches!(orgs::delete(&db, a, acme.id, &Actor::operator("test")).await, Err(StoreError::NotFound(_))));
        assert_eq!(orgs::list(&db, a).await.expect("list").len(), 3);
    }
}

fn write(name: &str) -> app::integrations::store::IntegrationWrite<'_> {
    app::integrations::store::IntegrationWrite {
        name,
        system: "connectwise",
        site: "https://na.myconnectwise.net",
        company_id: "acme",
        auth_kind: app::integrations::AuthKind::ApiKeys,
        credentials_sealed: "v1:00",
        mapping_json: "[]",
        settings_json: "{}",
    }
}

#[tokio::test]
async fn integrations_are_scoped_associated_and_keep_their_health() {
    use app::integrations::Health;
    use app::integrations::store as ints;
    for db in all_backends().await {
        let a = partner(&db, "a@example.com").await;
        let b = partner(&db, "b@example.com").await;
        let acme = orgs::add(&db, a, "Acme", None, &Actor::operator("test")).await.expect("org");
        orgs::add(&db, b, "Other", None, &Actor::operator("test")).await.expect("org");

        let first = ints::create(&db, a, &write("CW Prod"), &Actor::operator("test")).await.expect("create");
        assert!(matches!(
            ints::create(&db, a, &write("cw prod"), &Actor::operator("test")).await,
            Err(StoreError::Conflict(_))
        ));
        ints::create(&db, b, &write("CW Prod"), &Actor::operator("test")).await.expect("same name, other partner");
        let globex = orgs::add(&db, a, "Globex", None, &Actor::operator("test")).await.expect("org");
        assert_eq!(globex.integration_ids, vec![first], "a new organization gets every integration");

        let listed = ints::list(&db, a).await.expect("list");
        assert_eq!(listed.len(), 1, "{:?}", db.backend);
        let (stored, names) = &listed[0];
        assert_eq!((stored.active, stored.health), (false, Health::NotChecked));
        assert_eq!(names, &["Acme".to_string(), "Globex".to_string()], "created with every organization");

        ints::record_health(&db, first, Err("ConnectWise rejected the keys")).await.expect("health");
        let stored = ints::get(&db, a, first).await.expect("get");
        assert_eq!(stored.health, Health::Unhealthy);
        assert_eq!(stored.health_error.as_deref(), Some("ConnectWise rejected the keys"));
        assert!(stored.health_at.is_some());
        ints::record_health(&db, first, Ok(())).await.expect("health");
        let stored = ints::get(&db, a, first).await.expect("get");
        assert_eq!((stored.health, stored.health_error), (Health::Healthy, None));

        // Partner B reaches none of it.
        assert!(matches!(ints::get(&db, b, first).await, Err(StoreError::NotFound(_))));
        assert!(matches!(
            ints::set_active(&db, b, first, true, &Actor::operator("test")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            ints::update(&db, b, first, &write("x"), &Actor::operator("test")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            ints::set_association(&db, b, acme.id, first, false, &Actor::operator("test")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(ints::remove(&db, b, first, &Actor::operator("test")).await, Err(StoreError::NotFound(_))));

        ints::set_active(&db, a, first, true, &Actor::operator("test")).await.expect("enable");
        assert!(ints::get(&db, a, first).await.expect("get").active);
        ints::set_association(&db, a, acme.id, first, false, &Actor::operator("test")).await.expect("untick");
        ints::set_association(&db, a, acme.id, first, false, &Actor::operator("test")).await.expect("untick twice");
        ints::set_association(&db, a, globex.id, first, true, &Actor::operator("test"))
            .await
            .expect("tick twice is fine");
        assert_eq!(ints::list(&db, a).await.expect("list")[0].1, vec!["Globex".to_string()]);

        ints::remove(&db, a, first, &Actor::operator("test")).await.expect("remove");
        assert!(ints::list(&db, a).await.expect("list").is_empty());
        assert!(orgs::list(&db, a).await.expect("orgs").iter().all(|o| o.integration_ids.is_empty()));
    }
}
