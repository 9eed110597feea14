//! Partner sign-in: validation, the server functions, the sign-in page and (on the server) sessions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
/// The sign-in hashing slots (a lower module, so that `state` can hold them without depending on `auth`).
pub use crate::hash_slots as slots;
#[cfg(feature = "ssr")]
pub mod store;

/// The name of the session cookie in dev mode (plain HTTP on a developer's machine).
pub const SESSION_COOKIE: &str = "dwid_session";
/// The name of the session cookie in production. Browsers accept a `__Host-` cookie only when it is Secure, has
/// `Path=/` and no `Domain`, so no other host (a sibling subdomain, say) can set or overwrite it.
pub const SESSION_COOKIE_PRODUCTION: &str = "__Host-dwid_session";

/// The session cookie's name in this mode.
pub fn session_cookie_name(production: bool) -> &'static str {
    if production { SESSION_COOKIE_PRODUCTION } else { SESSION_COOKIE }
}
/// What a partner is told for any wrong email or password, and nothing more.
pub const INVALID_CREDENTIALS: &str = "Invalid email or password";

/// The signed-in partner, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerInfo {
    pub email: String,
}

/// The form an email is compared in: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible email address, trimmed; the message says what is wrong.
pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if valid { Ok(email.to_string()) } else { Err(format!("{email:?} is not a valid email address.")) }
}

pub fn validate_new_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < 12 {
        Err("The password must have at least 12 characters.".into())
    } else if length > 256 {
        Err("The password must have at most 256 characters.".into())
    } else {
        Ok(())
    }
}

#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    crate::error::respond(ssr::sign_in(email, password).await)
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    crate::error::respond(ssr::sign_out().await)
}

/// The signed-in partner; 401 without a session.
#[server(endpoint = "current_partner")]
pub async fn current_partner() -> Result<PartnerInfo, AppError> {
    let partner = crate::error::respond(require_partner().await)?;
    Ok(PartnerInfo { email: partner.email })
}

#[cfg(feature = "ssr")]
pub use ssr::{require_partner, session_token_from_headers};

#[cfg(feature = "ssr")]
mod ssr {
    use http::HeaderValue;
    use http::header::{COOKIE, SET_COOKIE};
    use http::request::Parts;
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    use std::net::IpAddr;

    use super::slots::Lane;
    use super::store::{self, Checked, Partner};
    use super::{INVALID_CREDENTIALS, normalize_email, session_cookie_name, validate_email};
    use crate::activity::{self, Actor};
    use crate::db::now_millis;
    use crate::error::AppError;
    use crate::metrics::SignInResult;
    use crate::rate_limit::{self, Hit};
    use crate::state::AppState;

    /// The longest password ever checked: new ones have at most 256 characters, so anything longer is wrong without
    /// spending a hash on it.
    const MAX_PASSWORD_BYTES: usize = 1024;

    /// Attempts from one client address in the window that may use the hashing slot kept for clean clients.
    const CLEAN_ATTEMPTS: i64 = 3;

    /// The session token in a request's `Cookie` headers: the value of the one cookie with the session's name in
    /// this mode. Two cookies of that name (one planted by another host, say) are ambiguous and count as none.
    pub fn session_token_from_headers(headers: &http::HeaderMap, production: bool) -> Option<String> {
        let name = session_cookie_name(production);
        let mut values = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(cookie, _)| *cookie == name)
            .map(|(_, value)| value);
        let first = values.next()?;
        values.next().is_none().then(|| first.to_string())
    }

    /// The partner of the current request's session, or `Unauthorized`. Every server function but sign-in starts
    /// here, and scopes every query to the partner it returns.
    pub async fn require_partner() -> Result<Partner, AppError> {
        let state = expect_context::<AppState>();
        let parts = use_context::<Parts>().ok_or(AppError::Unauthorized)?;
        let token =
            session_token_from_headers(&parts.headers, state.config.is_production()).ok_or(AppError::Unauthorized)?;
        store::session_partner(&state.db, &token).await?.ok_or(AppError::Unauthorized)
    }

    fn set_cookie(value: String) {
        if let (Some(options), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(&value)) {
            options.append_header(SET_COOKIE, value);
        }
    }

    fn session_cookie(production: bool, value: &str, max_age_secs: u64) -> String {
        let name = session_cookie_name(production);
        let secure = if production { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
    }

    /// The three counters one sign-in attempt is counted under, as keyed hashes (no email or address is stored).
    struct Counters {
        /// Per client address: one address guessing many emails.
        ip: String,
        /// Per (email, client address): the tight limit, which only ever locks out the client that keeps failing.
        pair: String,
        /// Per email from anywhere, over a longer window: a slow ceiling on guessing one partner's password from
        /// many addresses.
        email: String,
    }

    pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
        let state = expect_context::<AppState>();
        let parts = use_context::<Parts>().ok_or(AppError::Internal)?;
        let config = &state.config;
        // Nothing is counted, stored or logged for text that is not an email address (at most 254 characters).
        let email = validate_email(&email).map_err(|_| {
            state.metrics.sign_in(SignInResult::Failure);
            AppError::invalid("Enter your email address, like name@example.com.")
        })?;
        let email_key = normalize_email(&email);
        let client = crate::client_address::from_parts(config.trusted_proxy_hops, &parts);
        let client_key = client.map_or_else(|| "unknown".to_owned(), crate::client_address::limit_key);
        let counters = Counters {
            ip: state.secrets.keyed_hash("sign-in ip", client_key.as_bytes()),
            pair: state.secrets.keyed_hash("sign-in email+ip", format!("{email_key}\n{client_key}").as_bytes()),
            email: state.secrets.keyed_hash("sign-in email", email_key.as_bytes()),
        };
        let now = now_millis();
        rate_limit::purge(&state.db, now).await?;
        // Every attempt is counted before its password is checked, each count one atomic statement: N parallel
        // guesses get the counts 1..N, and only those within every limit are checked. An attempt refused by one
        // limit is taken back from those before it: it checked no password.
        let window = config.sign_in_window.as_millis() as i64;
        let global_window = config.sign_in_global_window.as_millis() as i64;
        let limits = [
            (&counters.ip, window, config.sign_in_max_failures_per_ip, "client address"),
            (&counters.pair, window, config.sign_in_max_failures_per_email, "email and client address"),
            (&counters.email, global_window, config.sign_in_max_failures_per_email_global, "email"),
        ];
        let mut hits: Vec<(&String, Hit)> = Vec::with_capacity(limits.len());
        for (key, window, max, what) in limits {
            let hit = rate_limit::hit(&state.db, key, now, window).await?;
            if hit.over(max) {
                undo(&state, &hits).await;
                state.metrics.sign_in(SignInResult::Throttled);
                tracing::warn!(limit = what, "sign-in refused: too many attempts");
                // The first refusal of a window goes on the partner's Activity page (later ones would let an
                // attacker grow it without bound).
                if hit.count == i64::from(max) + 1 {
                    record_failure(&state, None, &email, client, "throttled");
                }
                return Err(AppError::RateLimited { retry_after_secs: hit.retry_after_secs(now) });
            }
            hits.push((key, hit));
        }
        let ip = hits[0].1;
        // The first few attempts from an address in the window may use the slot kept for clean clients. A flood
        // from many addresses spends those few at once (refusals for a busy slot count here), and is then queued
        // behind the shared slots only, while a partner signing in from their own address is served next.
        let lane = if ip.count <= CLEAN_ATTEMPTS { Lane::Clean } else { Lane::Suspect };
        let checked = if password.len() > MAX_PASSWORD_BYTES {
            store::lookup(&state.db, &email).await?.map_or(Checked::UnknownEmail, Checked::WrongPassword)
        } else {
            let Ok(slot) = state.sign_in_slots.acquire(lane).await else {
                // Not checked, so not counted against the email; it still counts for the client address, so that
                // an address cannot stay "clean" by being refused.
                undo(&state, &hits[1..]).await;
                state.metrics.sign_in(SignInResult::Throttled);
                tracing::warn!("sign-in refused: every password-hashing slot is busy");
                return Err(AppError::Busy { retry_after_secs: 2 });
            };
            store::check_credentials(&state.db, &email, &password, slot).await?
        };
        let partner = match checked {
            Checked::Ok(partner) => partner,
            Checked::WrongPassword(partner) => {
                state.metrics.sign_in(SignInResult::Failure);
                tracing::info!(client = %crate::client_address::display(client), "sign-in failed");
                record_failure(&state, Some(partner), &email, client, "wrong password");
                return Err(AppError::invalid(INVALID_CREDENTIALS));
            }
            // An email that is no partner's has no Activity page to go on.
            Checked::UnknownEmail => {
                state.metrics.sign_in(SignInResult::Failure);
                tracing::info!(client = %crate::client_address::display(client), "sign-in failed");
                return Err(AppError::invalid(INVALID_CREDENTIALS));
            }
        };
        // A successful sign-in is not a failure: this client starts afresh for this email, and the other counters
        // take it back.
        rate_limit::reset(&state.db, &counters.pair).await?;
        rate_limit::undo(&state.db, &counters.ip, ip).await?;
        rate_limit::undo(&state.db, &counters.email, hits[2].1).await?;
        let ttl = config.session_ttl;
        let actor = Actor::new(&partner.email, client);
        let token = store::create_session(&state.db, partner.id, ttl.as_millis() as i64, &actor).await?;
        set_cookie(session_cookie(config.is_production(), &token, ttl.as_secs()));
        state.metrics.sign_in(SignInResult::Success);
        tracing::info!(partner_id = partner.id, client = %crate::client_address::display(client), "partner signed in");
        leptos_axum::redirect("/integrations");
        Ok(())
    }

    /// Records a failed sign-in on the Activity page of the partner whose email was typed (`email`, already
    /// validated and at most 254 characters; `partner` when already known), if there is one. Never the password.
    ///
    /// Off the response path: a known email must be answered as fast as an unknown one (which has no page to record
    /// on), or the time taken would tell which emails are partners'. A failure to record is logged.
    fn record_failure(
        state: &AppState,
        partner: Option<Partner>,
        email: &str,
        client: Option<IpAddr>,
        why: &'static str,
    ) {
        let db = state.db.clone();
        let email = email.to_owned();
        tokio::spawn(async move {
            let partner = match partner {
                Some(partner) => partner,
                None => match store::lookup(&db, &email).await {
                    Ok(Some(partner)) => partner,
                    Ok(None) => return,
                    Err(err) => {
                        tracing::error!(error = %err, "could not look up the partner of a refused sign-in");
                        return;
                    }
                },
            };
            let actor = Actor::new(&email, client);
            let kind = activity::Kind::SignInFailed;
            if let Err(err) = activity::store::record_alone(&db, partner.id, &actor, kind, "", Some(why)).await {
                tracing::error!(error = %err, "could not record a failed sign-in");
            }
        });
    }

    async fn undo(state: &AppState, hits: &[(&String, Hit)]) {
        for (key, hit) in hits {
            if let Err(err) = rate_limit::undo(&state.db, key, *hit).await {
                tracing::error!(error = %err, "could not take back a sign-in count");
            }
        }
    }

    pub async fn sign_out() -> Result<(), AppError> {
        let state = expect_context::<AppState>();
        let production = state.config.is_production();
        if let Some(parts) = use_context::<Parts>()
            && let Some(token) = session_token_from_headers(&parts.headers, production)
        {
            store::delete_session(&state.db, &token).await?;
        }
        set_cookie(session_cookie(production, "", 0));
        leptos_axum::redirect("/sign-in");
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_the_one_session_cookie_of_the_mode() {
            let mut headers = http::HeaderMap::new();
            headers.append(COOKIE, HeaderValue::from_static("a=1; dwid_session=abc; b=2"));
            assert_eq!(session_token_from_headers(&headers, false).as_deref(), Some("abc"));
            assert_eq!(session_token_from_headers(&headers, true), None, "production reads only the __Host- cookie");
            assert_eq!(session_token_from_headers(&http::HeaderMap::new(), false), None);
            let mut production = http::HeaderMap::new();
            production.append(COOKIE, HeaderValue::from_static("__Host-dwid_session=abc"));
            assert_eq!(session_token_from_headers(&production, true).as_deref(), Some("abc"));
        }

        #[test]
        fn two_session_cookies_are_ambiguous() {
            let mut headers = http::HeaderMap::new();
            headers.append(COOKIE, HeaderValue::from_static("dwid_session=planted"));
            headers.append(COOKIE, HeaderValue::from_static("dwid_session=abc"));
            assert_eq!(session_token_from_headers(&headers, false), None);
        }

        #[test]
        fn production_cookies_are_host_prefixed_and_secure() {
            assert_eq!(
                session_cookie(true, "t", 60),
                "__Host-dwid_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
            );
            assert_eq!(session_cookie(false, "t", 60), "dwid_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
        }
    }
}

/// The sign-in page: the only page reachable without a session.
#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = move || match action.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    view! {
        <leptos_meta::Title text="Sign in · Dark Web ID Partner Dashboard"/>
        <div class="auth-page">
            <section class="auth-card" aria-labelledby="sign-in-title">
                <div class="brand brand--large">
                    <span class="brand__mark" aria-hidden="true">"ID"</span>
                    <span class="brand__name">"Dark Web ID"</span>
                </div>
                <h1 id="sign-in-title">"Sign in to the Partner Dashboard"</h1>
                <ActionForm action=action attr:class="form">
                    <div class="field">
                        <label for="sign-in-email">"Email"</label>
                        <input id="sign-in-email" type="email" name="email" autocomplete="username" required/>
                    </div>
                    <div class="field">
                        <label for="sign-in-password">"Password"</label>
                        <input
                            id="sign-in-password"
                            type="password"
                            name="password"
                            autocomplete="current-password"
                            required
                        />
                    </div>
                    {error}
                    <button type="submit" class="button button--primary button--block" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </section>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_normalized() {
        assert_eq!(validate_email("  Demo@Example.com ").as_deref(), Ok("Demo@Example.com"));
        assert_eq!(normalize_email("  Demo@Example.com "), "demo@example.com");
        for bad in ["", "demo", "demo@", "@example.com", "demo@example", "de mo@example.com", "demo@.com"] {
            assert!(validate_email(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("twelve chars").is_ok());
        assert!(validate_new_password(&"x".repeat(257)).is_err());
    }
}
