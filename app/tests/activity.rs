//! The audit log's store, on SQLite and PostgreSQL alike: what each change records, in the change's own
//! transaction (a change that fails records nothing), newest first, filtered by kind, paged by keyset, per partner.
#![cfg(feature = "ssr")]

use app::activity::store::{self as activity, Activity};
use app::activity::{Actor, Filter, Group, Kind};
use app::db::{Db, StoreError};
use app::integrations::AuthKind;
use app::integrations::store::{self as integrations, IntegrationWrite};
use app::organizations::store as orgs;
use app::testing::all_backends;

fn owner() -> Actor {
    Actor::new("owner@example.com", Some("203.0.113.7".parse().expect("ip")))
}

async fn partner(db: &Db, email: &str) -> i64 {
    app::auth::store::create_partner(db, email, "a long enough password").await.expect("partner").id
}

async fn all(db: &Db, partner_id: i64) -> Vec<Activity> {
    activity::page(db, partner_id, None, None, 1000).await.expect("page").0
}

/// (kind, subject, detail) of the partner's activity, oldest first.
async fn trail(db: &Db, partner_id: i64) -> Vec<(Kind, String, Option<String>)> {
    let mut rows: Vec<_> = all(db, partner_id).await.into_iter().map(|a| (a.kind, a.subject, a.detail)).collect();
    rows.reverse();
    rows
}

fn write<'a>(name: &'a str) -> IntegrationWrite<'a> {
    IntegrationWrite {
        name,
        system: "connectwise",
        site: "https://cw.example.com",
        company_id: "acme",
        auth_kind: AuthKind::ApiKeys,
        credentials_sealed: "sealed-not-a-secret",
        mapping_json: "[]",
        settings_json: "{}",
    }
}

#[tokio::test]
async fn each_change_records_who_what_and_from_where() {
    for db in all_backends().await {
        let p = partner(&db, "owner@example.com").await;
        let by = owner();
        let acme = orgs::add(&db, p, "Acme", None, &by).await.expect("org");
        let cw = integrations::create(&db, p, &write("CW Prod"), &by).await.expect("create");
        integrations::update(&db, p, cw, &write("CW Production"), &by).await.expect("rename");
        integrations::update(&db, p, cw, &write("CW Production"), &by).await.expect("edit");
        integrations::set_active(&db, p, cw, true, &by).await.expect("enable");
        integrations::set_active(&db, p, cw, true, &by).await.expect("enable again: no change, no record");
        integrations::set_association(&db, p, acme.id, cw, false, &by).await.expect("untick");
        integrations::set_association(&db, p, acme.id, cw, false, &by).await.expect("untick again: no record");
        integrations::set_association(&db, p, acme.id, cw, true, &by).await.expect("tick");
        orgs::rename(&db, p, acme.id, "Acme Corporation", &by).await.expect("rename org");
        let (token, value) = app::api_tokens::store::create(&db, p, "SIEM", &by).await.expect("token");
        app::api_tokens::store::revoke(&db, p, token.id, &by).await.expect("revoke");
        app::api_tokens::store::revoke(&db, p, token.id, &by).await.expect("revoke again: no record");
        integrations::set_active(&db, p, cw, false, &by).await.expect("disable");
        integrations::remove(&db, p, cw, &by).await.expect("remove");
        orgs::delete(&db, p, acme.id, &by).await.expect("delete org");
        app::auth::store::create_session(&db, p, 60_000, &by).await.expect("sign in");

        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            trail(&db, p).await,
            vec![
                (Kind::OrganizationAdded, "Acme".into(), None),
                (Kind::IntegrationCreated, "CW Prod".into(), None),
                (Kind::IntegrationEdited, "CW Production".into(), some("CW Prod")),
                (Kind::IntegrationEdited, "CW Production".into(), None),
                (Kind::IntegrationEnabled, "CW Production".into(), None),
                (Kind::OrganizationUnlinked, "Acme".into(), some("CW Production")),
                (Kind::OrganizationLinked, "Acme".into(), some("CW Production")),
                (Kind::OrganizationRenamed, "Acme Corporation".into(), some("Acme")),
                (Kind::ApiTokenCreated, "SIEM".into(), Some(token.prefix.clone())),
                (Kind::ApiTokenRevoked, "SIEM".into(), Some(token.prefix.clone())),
                (Kind::IntegrationDisabled, "CW Production".into(), None),
                (Kind::IntegrationRemoved, "CW Production".into(), None),
                (Kind::OrganizationDeleted, "Acme Corporation".into(), None),
                (Kind::SignedIn, "".into(), None),
            ],
            "{:?}",
            db.backend
        );
        let rows = all(&db, p).await;
        assert!(rows.iter().all(|a| a.actor == "owner@example.com" && a.address.as_deref() == Some("203.0.113.7")));
        assert!(rows.iter().all(|a| a.partner_id == p));
        // The token is shown once and never stored: not even in the activity.
        let stored: Vec<String> = sqlx::query_scalar("SELECT subject || ' ' || COALESCE(detail, '') FROM activity")
            .fetch_all(&db.pool)
            .await
            .expect("texts");
        assert!(stored.iter().all(|text| !text.contains(&value[13..])), "{stored:?}");
    }
}

#[tokio::test]
async fn a_change_that_fails_records_nothing() {
    for db in all_backends().await {
        let p = partner(&db, "owner@example.com").await;
        let other = partner(&db, "other@example.com").await;
        let by = owner();
        let acme = orgs::add(&db, p, "Acme", None, &by).await.expect("org");
        orgs::add(&db, p, "Globex", None, &by).await.expect("org");
        let cw = integrations::create(&db, p, &write("CW Prod"), &by).await.expect("create");
        integrations::create(&db, p, &write("CW Test"), &by).await.expect("create");
        let before = all(&db, p).await.len();

        // Refused by the database inside the transaction, after the activity could have been written.
        let dup = orgs::add(&db, p, "ACME", None, &by).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let dup = orgs::rename(&db, p, acme.id, "globex", &by).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let dup = integrations::create(&db, p, &write("cw prod"), &by).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let dup = integrations::update(&db, p, cw, &write("CW TEST"), &by).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        // Another partner's rows: not found, nothing changed, nothing recorded for anyone.
        assert!(integrations::set_active(&db, other, cw, true, &by).await.is_err());
        assert!(integrations::remove(&db, other, cw, &by).await.is_err());
        assert!(integrations::set_association(&db, other, acme.id, cw, false, &by).await.is_err());
        assert!(orgs::delete(&db, other, acme.id, &by).await.is_err());
        assert!(app::delivery::store::retry_failed(&db, other, cw, None, &by).await.is_err());
        assert!(app::delivery::store::retry_failed(&db, p, cw, Some(999_999), &by).await.is_err());
        // Nothing to retry: no record of a retry that did nothing.
        assert_eq!(app::delivery::store::retry_failed(&db, p, cw, None, &by).await.expect("none"), 0);

        assert_eq!(all(&db, p).await.len(), before, "{:?}: {:?}", db.backend, trail(&db, p).await);
        assert!(all(&db, other).await.is_empty());
        assert_eq!(integrations::get(&db, p, cw).await.expect("still there").name, "CW Prod");

        // A record written in a transaction that is rolled back is gone with it.
        let mut tx = db.pool.begin().await.expect("tx");
        activity::record(&mut tx, p, &by, Kind::OrganizationAdded, "Rolled back", None).await.expect("record");
        tx.rollback().await.expect("rollback");
        assert_eq!(all(&db, p).await.len(), before);
    }
}

#[tokio::test]
async fn pages_are_newest_first_per_partner_filtered_and_keyset_paged() {
    for db in all_backends().await {
        let p = partner(&db, "owner@example.com").await;
        let other = partner(&db, "other@example.com").await;
        let by = owner();
        for n in 0..7 {
            let kind = if n % 2 == 0 { Kind::SignInFailed } else { Kind::OrganizationAdded };
            activity::record_alone(&db, p, &by, kind, &format!("#{n}"), Some("wrong password")).await.expect("record");
        }
        activity::record_alone(&db, other, &Actor::operator("x"), Kind::SignedIn, "theirs", None).await.expect("r");

        let (first, more) = activity::page(&db, p, None, None, 3).await.expect("page");
        let subjects = |rows: &[Activity]| rows.iter().map(|a| a.subject.clone()).collect::<Vec<_>>();
        assert_eq!(subjects(&first), ["#6", "#5", "#4"], "{:?}", db.backend);
        assert!(more);
        let (second, more) = activity::page(&db, p, None, Some(first[2].id), 3).await.expect("page");
        assert_eq!(subjects(&second), ["#3", "#2", "#1"]);
        assert!(more);
        let (last, more) = activity::page(&db, p, None, Some(second[2].id), 3).await.expect("page");
        assert_eq!(subjects(&last), ["#0"]);
        assert!(!more);

        let failed = Some(Filter::Kind(Kind::SignInFailed));
        let (rows, more) = activity::page(&db, p, failed, None, 10).await.expect("page");
        assert_eq!(subjects(&rows), ["#6", "#4", "#2", "#0"]);
        assert!(!more);
        let (rows, more) = activity::page(&db, p, failed, Some(rows[1].id), 1).await.expect("page");
        assert_eq!(subjects(&rows), ["#2"]);
        assert!(more);
        let orgs_only = Some(Filter::Group(Group::Organizations));
        assert_eq!(subjects(&activity::page(&db, p, orgs_only, None, 10).await.expect("page").0), ["#5", "#3", "#1"]);
        let tokens_only = Some(Filter::Group(Group::ApiTokens));
        assert!(activity::page(&db, p, tokens_only, None, 10).await.expect("page").0.is_empty());

        assert_eq!(subjects(&all(&db, other).await), ["theirs"], "each partner sees only its own");
    }
}
