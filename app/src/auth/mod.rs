//! Partner sign-in: validation, the server functions, the sign-in page and (on the server) sessions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod store;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "dwid_session";
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

    use super::store::{self, Partner};
    use super::{INVALID_CREDENTIALS, SESSION_COOKIE, normalize_email};
    use crate::error::AppError;
    use crate::state::AppState;

    /// The session token in a request's `Cookie` header, if any.
    pub fn session_token_from_headers(headers: &http::HeaderMap) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_string())
    }

    /// The partner of the current request's session, or `Unauthorized`. Every server function but sign-in starts
    /// here, and scopes every query to the partner it returns.
    pub async fn require_partner() -> Result<Partner, AppError> {
        let state = expect_context::<AppState>();
        let parts = use_context::<Parts>().ok_or(AppError::Unauthorized)?;
        let token = session_token_from_headers(&parts.headers).ok_or(AppError::Unauthorized)?;
        store::session_partner(&state.db, &token).await?.ok_or(AppError::Unauthorized)
    }

    fn client_address(state: &AppState, parts: &Parts) -> String {
        if state.config.trust_proxy_headers
            && let Some(forwarded) = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
            && let Some(first) = forwarded.split(',').next().map(str::trim).filter(|s| !s.is_empty())
        {
            return first.to_string();
        }
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    fn set_cookie(value: String) {
        if let (Some(options), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(&value)) {
            options.append_header(SET_COOKIE, value);
        }
    }

    pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
        let state = expect_context::<AppState>();
        let parts = use_context::<Parts>().ok_or(AppError::Internal)?;
        let config = &state.config;
        let window = config.sign_in_window.as_millis() as i64;
        let email_key = format!("email:{}", normalize_email(&email));
        let ip_key = format!("ip:{}", client_address(&state, &parts));
        for (key, max) in
            [(&email_key, config.sign_in_max_failures_per_email), (&ip_key, config.sign_in_max_failures_per_ip)]
        {
            if let Some(retry_after_secs) = store::sign_in_blocked_for(&state.db, key, max, window).await? {
                tracing::warn!(key = %key, "sign-in refused: too many failures");
                return Err(AppError::RateLimited { retry_after_secs });
            }
        }
        let Some(partner) = store::authenticate(&state.db, &email, &password).await? else {
            store::record_sign_in_failure(&state.db, &[email_key, ip_key], window).await?;
            tracing::info!("sign-in failed");
            return Err(AppError::invalid(INVALID_CREDENTIALS));
        };
        store::clear_sign_in_failures(&state.db, &email_key).await?;
        let ttl = config.session_ttl;
        let token = store::create_session(&state.db, partner.id, ttl.as_millis() as i64).await?;
        let secure = if config.is_production() { "; Secure" } else { "" };
        set_cookie(format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            ttl.as_secs()
        ));
        tracing::info!(partner_id = partner.id, "partner signed in");
        leptos_axum::redirect("/integrations");
        Ok(())
    }

    pub async fn sign_out() -> Result<(), AppError> {
        let state = expect_context::<AppState>();
        if let Some(parts) = use_context::<Parts>()
            && let Some(token) = session_token_from_headers(&parts.headers)
        {
            store::delete_session(&state.db, &token).await?;
        }
        let secure = if state.config.is_production() { "; Secure" } else { "" };
        set_cookie(format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"));
        leptos_axum::redirect("/sign-in");
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_the_session_cookie_among_others() {
            let mut headers = http::HeaderMap::new();
            headers.append(COOKIE, HeaderValue::from_static("a=1; dwid_session=abc; b=2"));
            assert_eq!(session_token_from_headers(&headers).as_deref(), Some("abc"));
            let empty = http::HeaderMap::new();
            assert_eq!(session_token_from_headers(&empty), None);
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
