//! Demo data for the dev mode: on a first run with an empty database, one demo partner with a few organizations.

use app::auth::store::{count_partners, create_partner};
use app::db::Db;

pub const DEMO_EMAIL: &str = "demo@partner.example";

/// Organizations of the demo partner. Most match a company of the ConnectWise sandbox exactly; "Globex Inc" does
/// not (the sandbox has "Globex, Inc."), so the wizard has a near miss to show.
pub const DEMO_ORGANIZATIONS: &[&str] =
    &["Acme Corporation", "Globex Inc", "Initech", "Stark Industries", "Umbrella Health"];

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Partner(#[from] app::auth::store::CreatePartnerError),
    #[error(transparent)]
    Store(#[from] app::db::StoreError),
}

/// Seeds the demo partner when there are no partners at all, and prints the credentials. `DEMO_PASSWORD` fixes the
/// password (tests and demos); otherwise a random one is generated and shown once.
pub async fn seed_demo_if_empty(db: &Db) -> Result<bool, SeedError> {
    if count_partners(db).await? > 0 {
        return Ok(false);
    }
    let password = std::env::var("DEMO_PASSWORD").ok().filter(|p| !p.is_empty()).unwrap_or_else(random_password);
    let partner = create_partner(db, DEMO_EMAIL, &password).await?;
    for name in DEMO_ORGANIZATIONS {
        app::organizations::store::add(db, partner.id, name, None, &app::activity::Actor::operator("demo data"))
            .await?;
    }
    tracing::warn!(
        "\n\n  Demo partner created (dev mode, empty database).\n  Sign in with\n    email:    {}\n    password: {}\n",
        partner.email,
        password
    );
    Ok(true)
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..16).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}
