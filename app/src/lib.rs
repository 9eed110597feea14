#![recursion_limit = "512"]
//! The Dark Web ID Partner Dashboard: shared components and server functions, compiled for the server (`ssr`) and
//! the browser (`hydrate`). One module per concern; server-only code sits behind `ssr`.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Outlet, ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::path;

pub mod activity;
pub mod activity_page;
pub mod api_tokens;
pub mod auth;
pub mod compromises;
pub mod connectwise_site;
pub mod dates;
pub mod delivery;
pub mod error;
pub mod integrations;
pub mod mapping;
pub mod names;
pub mod numbers;
pub mod organizations;
pub mod settings;
pub mod ticketing;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod autotask;
#[cfg(feature = "ssr")]
pub mod client_address;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod connectwise;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod hash_slots;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod rate_limit;
#[cfg(feature = "ssr")]
pub mod request_budget;
#[cfg(feature = "ssr")]
pub mod secrets;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod systems;
#[cfg(feature = "ssr")]
pub mod testing;
#[cfg(feature = "ssr")]
pub mod wake;

use auth::{SignInPage, SignOut};
use integrations::{IntegrationsPage, WizardPage};
use organizations::OrganizationsPage;
use settings::SettingsPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy, allowing only this render's scripts (by their nonce: the hydration script
/// and the streamed resources), the site's own files, and WebAssembly compilation for the hydrated app.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    if let (Some(response), Some(nonce)) = (use_context::<leptos_axum::ResponseOptions>(), leptos::nonce::use_nonce())
        && let Ok(policy) = http::HeaderValue::from_str(&format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'"
        ))
    {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, policy);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/dwid-integrations.css"/>
        <Title text="Dark Web ID Partner Dashboard"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/sign-in") view=SignInPage/>
                <ParentRoute path=path!("") view=DashboardLayout>
                    <Route path=path!("") view=|| view! { <Redirect path="/integrations"/> }/>
                    <Route path=path!("integrations") view=IntegrationsPage/>
                    <Route path=path!("integrations/new") view=|| view! { <Redirect path="/integrations/new/1"/> }/>
                    <Route path=path!("integrations/new/:step") view=WizardPage/>
                    <Route path=path!("integrations/:id/edit") view=EditRedirect/>
                    <Route path=path!("integrations/:id/edit/:step") view=WizardPage/>
                    <Route path=path!("integrations/:id/deliveries") view=delivery::DeliveryLogPage/>
                    <Route path=path!("organizations") view=OrganizationsPage/>
                    <Route path=path!("settings") view=SettingsPage/>
                    <Route path=path!("activity") view=activity_page::ActivityLogPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The frame of every signed-in page: brand, navigation, the partner's email and Sign out.
#[component]
fn DashboardLayout() -> impl IntoView {
    let partner = Resource::new(|| (), |_| auth::current_partner());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="topbar">
            <div class="topbar__inner">
                <a class="brand" href="/integrations">
                    <span class="brand__mark" aria-hidden="true">"ID"</span>
                    <span class="brand__name">"Dark Web ID"</span>
                    <span class="brand__product">"Partner Dashboard"</span>
                </a>
                <nav class="topnav" aria-label="Main">
                    <A href="/integrations">"Integrations"</A>
                    <A href="/organizations">"Organizations"</A>
                    <A href="/settings">"Settings"</A>
                    <A href="/activity">"Activity"</A>
                </nav>
                <div class="topbar__account">
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            partner.await.ok().map(|p| view! { <span class="topbar__email">{p.email}</span> })
                        })}
                    </Transition>
                    <ActionForm action=sign_out>
                        <button type="submit" class="button button--ghost">"Sign out"</button>
                    </ActionForm>
                </div>
            </div>
        </header>
        <main class="content">
            <Outlet/>
        </main>
    }
}

/// `/integrations/:id/edit` opens the wizard's first step.
#[component]
fn EditRedirect() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    view! { <Redirect path=format!("/integrations/{id}/edit/1")/> }
}

/// Any unknown address: a 404 with a way back.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found · Dark Web ID Partner Dashboard"/>
        <div class="auth-page">
            <section class="auth-card">
                <h1>"Page not found"</h1>
                <p class="muted">"There is nothing at this address. It may have moved, or the link may be mistyped."</p>
                <a class="button button--primary" href="/integrations">"Go to Integrations"</a>
            </section>
        </div>
    }
}
