//! Integrations: the partner's ticketing integrations. For now the page and its empty state; the wizard, the table
//! and delivery build on it.

use leptos::prelude::*;
use leptos_router::components::A;

/// The Integrations page.
#[component]
pub fn IntegrationsPage() -> impl IntoView {
    view! {
        <leptos_meta::Title text="Integrations · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Integrations"</h1>
                <p class="page-header__lead">
                    "Create a ConnectWise Manage service ticket automatically for every new compromise of your organizations."
                </p>
            </div>
            <A href="/integrations/new" attr:class="button button--primary">"+ ADD NEW INTEGRATION"</A>
        </div>
        <section class="card empty-state">
            <p class="empty-state__title">"You have not added any integrations."</p>
            <p class="muted">"Add one to start sending new compromises to your ticketing system."</p>
        </section>
    }
}

/// Where "+ ADD NEW INTEGRATION" leads until the wizard lands.
#[component]
pub fn NewIntegrationPage() -> impl IntoView {
    view! {
        <leptos_meta::Title text="Add an integration · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Add an integration"</h1>
            </div>
        </div>
        <section class="card empty-state">
            <p class="empty-state__title">"The integration wizard is coming soon."</p>
            <p class="muted">"You will choose your ticketing system, connect ConnectWise Manage and map ticket fields here."</p>
            <A href="/integrations" attr:class="button">"Back to Integrations"</A>
        </section>
    }
}
