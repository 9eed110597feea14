//! The Integrations page: the table of the partner's integrations with status, live health, organizations and
//! operations.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{Health, IntegrationRow, RemoveIntegration, RequestUse, SetIntegrationActive, list_integrations};
use crate::numbers::thousands;
use crate::ui::ErrorNotice;

/// How often health badges and organization counts refresh while the page is open.
const POLL_MS: u64 = 4000;

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let set_active = ServerAction::<SetIntegrationActive>::new();
    let remove = ServerAction::<RemoveIntegration>::new();
    let integrations =
        Resource::new(move || (set_active.version().get(), remove.version().get()), |_| list_integrations());
    // Which row asks "Remove …?": kept here, so the table re-rendered by a poll keeps the question open.
    let confirming = RwSignal::new(None::<i64>);

    // Poll after hydration only (an Effect never runs on the server), and stop when the page is left.
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || integrations.refetch(), std::time::Duration::from_millis(POLL_MS))
        {
            on_cleanup(move || handle.clear());
        }
    });

    view! {
        <leptos_meta::Title text="Integrations · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Integrations"</h1>
                <p class="page-header__lead">
                    "Create a ticket in your PSA (ConnectWise Manage or Autotask) automatically for every new compromise of your organizations."
                </p>
            </div>
            <A href="/integrations/new" attr:class="button button--primary">"+ ADD NEW INTEGRATION"</A>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading integrations…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorNotice errors/> }>
                {move || Suspend::new(async move {
                    integrations.await.map(|rows| view! { <IntegrationTable rows set_active remove confirming/> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn IntegrationTable(
    rows: Vec<IntegrationRow>,
    set_active: ServerAction<SetIntegrationActive>,
    remove: ServerAction<RemoveIntegration>,
    confirming: RwSignal<Option<i64>>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <section class="card empty-state">
                <p class="empty-state__title">"You have not added any integrations."</p>
                <p class="muted">"Add one to start sending new compromises to your ticketing system."</p>
            </section>
        }
        .into_any();
    }
    let action_error = move || {
        let err = match (set_active.value().get(), remove.value().get()) {
            (Some(Err(err)), _) | (_, Some(Err(err))) => err,
            _ => return None,
        };
        Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> })
    };
    view! {
        {action_error}
        <section class="card card--flush">
            <table class="table table--integrations">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"System"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Health"</th>
                        <th scope="col">"Requests this hour"</th>
                        <th scope="col">"Organizations"</th>
                        <th scope="col" class="table__actions">"Operations"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.clone() key=|row| row.clone() let:row>
                        <IntegrationTableRow row set_active remove confirming/>
                    </For>
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

/// "1,234 / 60,000" with a meter, and why in a tooltip; "Budget used up" when deliveries wait for it.
fn requests_cell(requests: Option<RequestUse>) -> impl IntoView {
    let Some(use_) = requests else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let percent = use_.percent();
    let title = format!(
        "Requests to the PSA account this hour, from every server, out of what its budget ({}) allows in an hour.",
        use_.budget
    );
    view! {
        <span class="requests" title=title>
            <span class="requests__figures">
                {format!("{} / {}", thousands(use_.this_hour), thousands(use_.hourly_allowance))}
            </span>
            <meter class="requests__meter" min="0" max="100" high="80" value=percent.to_string()>
                {format!("{percent}%")}
            </meter>
            {use_.spent.then(|| view! { <span class="requests__spent">"Budget used up: tickets wait"</span> })}
        </span>
    }
    .into_any()
}

#[component]
fn IntegrationTableRow(
    row: IntegrationRow,
    set_active: ServerAction<SetIntegrationActive>,
    remove: ServerAction<RemoveIntegration>,
    confirming: RwSignal<Option<i64>>,
) -> impl IntoView {
    let id = row.id;
    let name = row.name.clone();
    let active = row.active;
    let status = if active { "Active" } else { "Inactive" };
    let toggle_label = if active { "Disable" } else { "Enable" };
    view! {
        <tr>
            <td class="integration-name">{row.name.clone()}</td>
            <td>{row.system.clone()}</td>
            <td>
                <span class=if active { "status status--active" } else { "status status--inactive" }>{status}</span>
            </td>
            <td>
                <HealthBadge health=row.health error=row.health_error.clone() at=row.health_at.clone() system=row.system.clone()/>
            </td>
            <td>{requests_cell(row.requests.clone())}</td>
            <td>
                <OrganizationCount names=row.organizations.clone()/>
            </td>
            <td class="table__actions">
                <Show
                    when=move || confirming.get() == Some(id)
                    fallback=move || {
                        view! {
                            <div class="operations">
                                <button
                                    type="button"
                                    class="link-button"
                                    disabled=move || set_active.pending().get()
                                    on:click=move |_| {
                                        set_active.dispatch(SetIntegrationActive { id, active: !active });
                                    }
                                >
                                    {toggle_label}
                                </button>
                                <span class="operations__sep" aria-hidden="true">"|"</span>
                                <a class="link-button" href=format!("/integrations/{id}/edit")>"Edit"</a>
                                <span class="operations__sep" aria-hidden="true">"|"</span>
                                <a class="link-button" href=format!("/integrations/{id}/deliveries")>"Delivery log"</a>
                                <span class="operations__sep" aria-hidden="true">"|"</span>
                                <button type="button" class="link-button link-button--danger" on:click=move |_| confirming.set(Some(id))>
                                    "Remove"
                                </button>
                            </div>
                        }
                    }
                >
                    <div class="confirm confirm--inline" role="group" aria-label=format!("Confirm removing {name}")>
                        <span>{format!("Remove {name}? Its stored keys are deleted.")}</span>
                        <button
                            type="button"
                            class="button button--danger button--small"
                            disabled=move || remove.pending().get()
                            on:click=move |_| {
                                remove.dispatch(RemoveIntegration { id });
                            }
                        >
                            "Yes, remove"
                        </button>
                        <button type="button" class="button button--small" on:click=move |_| confirming.set(None)>
                            "Cancel"
                        </button>
                    </div>
                </Show>
            </td>
        </tr>
    }
}

/// Healthy (blue check) / Unhealthy (red X) / Not checked, with the last error and its time on hover or focus.
#[component]
fn HealthBadge(health: Health, error: Option<String>, at: Option<String>, system: String) -> impl IntoView {
    let (class, icon) = match health {
        Health::Healthy => ("health health--healthy", "✓"),
        Health::Unhealthy => ("health health--unhealthy", "✕"),
        Health::NotChecked => ("health health--unknown", "–"),
    };
    let detail = match (health, error, at) {
        (Health::NotChecked, _, _) => format!("No request has been made to {system} yet."),
        (Health::Healthy, _, Some(at)) => format!("Last {system} request succeeded at {at}."),
        (Health::Unhealthy, Some(error), Some(at)) => format!("{error} (at {at})"),
        (_, error, at) => {
            format!("{}{}", error.unwrap_or_default(), at.map(|a| format!(" (at {a})")).unwrap_or_default())
        }
    };
    view! {
        <span class=class tabindex="0">
            <span class="health__icon" role="img" aria-label=health.label()>{icon}</span>
            <span class="health__label" aria-hidden="true">{health.label()}</span>
            <span class="tooltip" role="tooltip">{detail}</span>
        </span>
    }
}

/// The number of associated organizations; hover or focus lists their names.
#[component]
fn OrganizationCount(names: Vec<String>) -> impl IntoView {
    let count = names.len();
    let label = format!("{count} organization{}", if count == 1 { "" } else { "s" });
    view! {
        <span class="org-count" tabindex="0" aria-label=label.clone()>
            <span class="org-count__number">{count}</span>
            <span class="tooltip" role="tooltip">
                {if names.is_empty() {
                    view! { <span>"No organizations: tick this integration on the Organizations page."</span> }.into_any()
                } else {
                    view! {
                        <ul class="tooltip__list">
                            {names.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
                        </ul>
                    }
                        .into_any()
                }}
            </span>
        </span>
    }
}
