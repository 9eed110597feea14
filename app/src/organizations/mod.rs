//! Organizations: the partner's Dark Web ID client organizations. Validation, server functions and the page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::ui::ErrorNotice;

#[cfg(feature = "ssr")]
pub mod store;

pub const NAME_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    /// The partner's integrations that create tickets for this organization's compromises.
    pub integration_ids: Vec<i64>,
}

/// A valid organization name, trimmed: 1–255 characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    crate::names::validate(name, NAME_MAX_CHARS, "Enter the organization's name.")
}

pub use crate::names::key as name_key;

#[server(endpoint = "organizations/list")]
pub async fn list_organizations() -> Result<Vec<Organization>, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            Ok(store::list(&crate::state::db(), partner.id).await?)
        }
        .await,
    )
}

/// Adds an organization. With `choose_integrations` it is associated with exactly the ticked `integration_ids`;
/// without (an API caller that does not say), with every integration of the partner.
#[server(endpoint = "organizations/add")]
pub async fn add_organization(
    name: String,
    #[server(default)] choose_integrations: bool,
    #[server(default)] integration_ids: Vec<i64>,
) -> Result<Organization, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let name = validate_name(&name).map_err(AppError::Invalid)?;
            let chosen = choose_integrations.then_some(integration_ids.as_slice());
            let state = leptos::prelude::expect_context::<crate::state::AppState>();
            let max = state.config.max_organizations_per_partner;
            if store::count(&state.db, partner.id).await? >= max as i64 {
                return Err(AppError::Conflict(format!(
                    "You have reached the limit of {max} organizations. Delete one you no longer monitor, or contact \
                     support to raise the limit."
                )));
            }
            let actor = crate::activity::Actor::of_request(&partner.email);
            Ok(store::add(&state.db, partner.id, &name, chosen, &actor).await?)
        }
        .await,
    )
}

#[server(endpoint = "organizations/rename")]
pub async fn rename_organization(id: i64, name: String) -> Result<Organization, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let name = validate_name(&name).map_err(AppError::Invalid)?;
            Ok(store::rename(
                &crate::state::db(),
                partner.id,
                id,
                &name,
                &crate::activity::Actor::of_request(&partner.email),
            )
            .await?)
        }
        .await,
    )
}

#[server(endpoint = "organizations/delete")]
pub async fn delete_organization(id: i64) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            Ok(store::delete(&crate::state::db(), partner.id, id, &crate::activity::Actor::of_request(&partner.email))
                .await?)
        }
        .await,
    )
}

/// What "Simulate compromise" did (dev mode only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Simulation {
    pub summary: crate::compromises::ImportSummary,
    /// The dev ConnectWise sandbox's page of received tickets, when this server runs one.
    pub sandbox_url: Option<String>,
    /// The dev Autotask sandbox's received tickets, when this server runs one.
    #[serde(default)]
    pub autotask_sandbox_url: Option<String>,
}

/// Whether the page offers dev tools ("Simulate compromise"): in dev mode only.
#[server(endpoint = "organizations/dev_tools")]
pub async fn dev_tools_enabled() -> Result<bool, AppError> {
    crate::error::respond(
        async {
            crate::auth::require_partner().await?;
            Ok(!expect_context::<crate::state::AppState>().config.is_production())
        }
        .await,
    )
}

/// Dev mode: imports one sample compromise for the organization, as the import API would, and wakes the delivery
/// worker, so a partner sees a ticket arrive without an API client. Refused in production.
#[server(endpoint = "organizations/simulate")]
pub async fn simulate_compromise(id: i64) -> Result<Simulation, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            let simulation = simulation::simulate(&state, partner.id, id).await?;
            tracing::info!(
                partner_id = partner.id,
                organization_id = id,
                deliveries = simulation.summary.deliveries_queued,
                "compromise simulated"
            );
            Ok(simulation)
        }
        .await,
    )
}

/// The service behind "Simulate compromise" (server only).
#[cfg(feature = "ssr")]
pub mod simulation {
    use super::Simulation;
    use crate::compromises::store::ImportFailed;
    use crate::compromises::{ImportRecord, OrganizationRef};
    use crate::error::AppError;
    use crate::state::AppState;

    pub const PRODUCTION_REFUSAL: &str = "Simulating a compromise is only available in dev mode.";

    /// Imports one sample compromise (a fresh uuid, today's dates) for the partner's organization `organization_id`,
    /// queueing one delivery per Active associated integration, and wakes the delivery worker.
    pub async fn simulate(state: &AppState, partner_id: i64, organization_id: i64) -> Result<Simulation, AppError> {
        if state.config.is_production() {
            return Err(AppError::invalid(PRODUCTION_REFUSAL));
        }
        let organization = super::store::list(&state.db, partner_id)
            .await?
            .into_iter()
            .find(|o| o.id == organization_id)
            .ok_or_else(super::store::not_found)?;
        let record = sample_record(organization_id, &organization.name, time::OffsetDateTime::now_utc());
        let max_waiting = state.config.max_queued_deliveries_per_partner;
        let imported =
            crate::compromises::store::import_within(&state.db, &state.secrets, partner_id, &[record], max_waiting)
                .await;
        let summary = match imported {
            Ok(summary) => summary,
            Err(full @ ImportFailed::QueueFull { .. }) => return Err(AppError::Conflict(full.to_string())),
            // Deleted between the lookup and the import.
            Err(ImportFailed::Rejected(_)) => return Err(super::store::not_found().into()),
            Err(ImportFailed::Store(err)) => return Err(err.into()),
            Err(err @ ImportFailed::Seal) => {
                tracing::error!(partner_id, error = %err, "simulated import failed");
                return Err(AppError::Internal);
            }
        };
        if summary.deliveries_queued > 0 {
            state.deliveries.wake();
        }
        // A sandbox listening on every interface is reached on this machine's loopback.
        let reachable = |mut addr: std::net::SocketAddr| {
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            addr
        };
        let sandbox_url = state.config.cw_sandbox_addr.map(|addr| format!("http://{}/", reachable(addr)));
        let autotask_sandbox_url =
            state.config.at_sandbox_addr.map(|addr| format!("http://{}/_sandbox/tickets", reachable(addr)));
        Ok(Simulation { summary, sandbox_url, autotask_sandbox_url })
    }

    /// The sample compromise, re-dated to `now` and addressed to an `.example` domain named after the organization.
    pub fn sample_record(organization_id: i64, organization_name: &str, now: time::OffsetDateTime) -> ImportRecord {
        let sample = crate::mapping::Compromise::sample();
        let domain = format!("{}.example", slug(organization_name));
        let stamp = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        let day = time::macros::format_description!("[year]-[month]-[day]T00:00:00Z");
        ImportRecord {
            uuid: crate::integrations::wizard_service::uuid_v4(),
            password: sample.password,
            record_type: sample.record_type,
            source: sample.source,
            website: Some(format!("portal.{domain}")),
            organization: OrganizationRef::ById(organization_id),
            compromise: format!("jane.doe@{domain}"),
            password_criteria: sample.password_criteria,
            search_value: domain,
            date_added: now.format(&stamp).unwrap_or(sample.date_added),
            date_found: now.format(&day).unwrap_or(sample.date_found),
        }
    }

    /// `Acme Corporation` → `acme-corporation`: lowercase ASCII letters and digits joined by single hyphens.
    fn slug(name: &str) -> String {
        let words: Vec<String> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        if words.is_empty() { "client".to_owned() } else { words.join("-") }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_sample_is_a_valid_record_of_today_for_the_organization() {
            let now = time::macros::datetime!(2026-05-04 13:14:15 UTC);
            let record = sample_record(7, "Acme Corporation", now);
            assert_eq!(record.organization, OrganizationRef::ById(7));
            assert_eq!(record.compromise, "jane.doe@acme-corporation.example");
            assert_eq!(record.date_added, "2026-05-04T13:14:15Z");
            assert_eq!(record.date_found, "2026-05-04T00:00:00Z");
            assert_ne!(record.uuid, sample_record(7, "Acme Corporation", now).uuid, "a fresh uuid each time");
            // It passes the import API's own validation.
            let line = serde_json::to_vec(&record).expect("json");
            let parsed = crate::compromises::parse_ndjson(&line, &Default::default()).expect("valid");
            assert_eq!(parsed, vec![record]);
            assert_eq!(slug("  Ärzte & Co. GmbH "), "rzte-co-gmbh");
            assert_eq!(slug("!!!"), "client");
        }
    }
}

/// The Organizations page: list (sorted, counted), add, rename, delete with confirmation; in dev mode, "Simulate
/// compromise" on each row.
#[component]
pub fn OrganizationsPage() -> impl IntoView {
    let add = ServerAction::<AddOrganization>::new();
    // Bumped by a row after a rename or delete, so the list reloads.
    let changed = RwSignal::new(0u32);
    let organizations = Resource::new(move || (add.version().get(), changed.get()), |_| list_organizations());
    let dev = Resource::new(|| (), |_| dev_tools_enabled());
    // The partner's integrations, for the "Integrations" checkboxes (ids and names only).
    let integrations = Resource::new(
        || (),
        |_| async {
            crate::integrations::list_integrations()
                .await
                .map(|rows| rows.into_iter().map(|r| (r.id, r.name)).collect::<Vec<_>>())
        },
    );

    let add_error = move || match add.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    let add_form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = add.value().get()
            && let Some(form) = add_form.get()
        {
            form.reset();
        }
    });

    view! {
        <leptos_meta::Title text="Organizations · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Organizations"</h1>
                <p class="page-header__lead">
                    "Your Dark Web ID client organizations. Their names must match the company names in your PSA exactly."
                </p>
            </div>
        </div>
        <section class="card" aria-labelledby="add-organization-title">
            <h2 id="add-organization-title" class="card__title">"Add an organization"</h2>
            <ActionForm action=add node_ref=add_form attr:class="inline-form">
                <div class="field field--grow">
                    <label for="new-organization-name">"Organization name"</label>
                    <input
                        id="new-organization-name"
                        name="name"
                        type="text"
                        maxlength=NAME_MAX_CHARS
                        required
                        autocomplete="off"
                        placeholder="e.g. Acme Corporation"
                    />
                </div>
                <button type="submit" class="button button--primary" disabled=move || add.pending().get()>
                    "Add organization"
                </button>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        integrations.await.ok().filter(|list| !list.is_empty()).map(|list| view! { <NewOrganizationIntegrations list/> })
                    })}
                </Transition>
            </ActionForm>
            {add_error}
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading organizations…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorNotice errors/> }>
                {move || Suspend::new(async move {
                    let all = integrations.await.unwrap_or_default();
                    let dev = dev.await.unwrap_or(false);
                    organizations.await.map(|list| view! { <OrganizationTable list all dev changed/> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// "Integrations" of the add form: one checkbox per integration, all ticked, as a new organization gets every
/// integration by default.
#[component]
fn NewOrganizationIntegrations(list: Vec<(i64, String)>) -> impl IntoView {
    view! {
        <fieldset class="checkbox-group">
            <legend>"Integrations"</legend>
            <input type="hidden" name="choose_integrations" value="true"/>
            {list
                .into_iter()
                .enumerate()
                .map(|(index, (id, name))| {
                    view! {
                        <label class="checkbox">
                            <input type="checkbox" name=format!("integration_ids[{index}]") value=id checked/>
                            {name}
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}

#[component]
fn OrganizationTable(
    list: Vec<Organization>,
    all: Vec<(i64, String)>,
    dev: bool,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let count = list.len();
    if count == 0 {
        return view! {
            <section class="card empty-state">
                <p>"You have not added any organizations."</p>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="card card--flush" aria-labelledby="organization-list-title">
            <div class="card__header">
                <h2 id="organization-list-title" class="card__title">"Your organizations"</h2>
                <span class="count-badge">
                    {format!("{count} organization{}", if count == 1 { "" } else { "s" })}
                </span>
            </div>
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Integrations"</th>
                        <th scope="col" class="table__actions">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || list.clone() key=|org| (org.id, org.name.clone()) let:org>
                        <OrganizationRow org all=all.clone() dev changed/>
                    </For>
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowMode {
    View,
    Rename,
    ConfirmDelete,
}

#[component]
fn OrganizationRow(org: Organization, all: Vec<(i64, String)>, dev: bool, changed: RwSignal<u32>) -> impl IntoView {
    let mode = RwSignal::new(RowMode::View);
    let simulate = ServerAction::<SimulateCompromise>::new();
    // The last simulation's outcome, shown under the row until dismissed.
    let simulated = RwSignal::new(None::<Result<Simulation, AppError>>);
    Effect::new(move |_| {
        if let Some(result) = simulate.value().get() {
            simulated.set(Some(result));
        }
    });
    let rename = ServerAction::<RenameOrganization>::new();
    let delete = ServerAction::<DeleteOrganization>::new();
    Effect::new(move |_| {
        if matches!(rename.value().get(), Some(Ok(_))) || matches!(delete.value().get(), Some(Ok(()))) {
            mode.set(RowMode::View);
            changed.update(|n| *n += 1);
        }
    });
    let error = move || {
        let err = match (rename.value().get(), delete.value().get()) {
            (Some(Err(err)), _) if mode.get() == RowMode::Rename => err,
            (_, Some(Err(err))) if mode.get() == RowMode::ConfirmDelete => err,
            _ => return None,
        };
        Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> })
    };
    let id = org.id;
    let name = org.name.clone();
    let input_id = format!("rename-organization-{id}");
    view! {
        <tr>
            <td>
                {
                    let name = name.clone();
                    move || match mode.get() {
                        RowMode::Rename => {
                            let label = format!("New name for {name}");
                            let input_id = input_id.clone();
                            let value = name.clone();
                            view! {
                                <ActionForm action=rename attr:class="inline-form">
                                    <input type="hidden" name="id" value=id/>
                                    <div class="field field--grow">
                                        <label for=input_id.clone()>{label}</label>
                                        <input
                                            id=input_id
                                            name="name"
                                            type="text"
                                            value=value
                                            maxlength=NAME_MAX_CHARS
                                            required
                                            autofocus
                                        />
                                    </div>
                                    <button type="submit" class="button button--primary" disabled=move || rename.pending().get()>
                                        "Save"
                                    </button>
                                    <button type="button" class="button" on:click=move |_| mode.set(RowMode::View)>
                                        "Cancel"
                                    </button>
                                </ActionForm>
                                {error}
                            }
                                .into_any()
                        }
                        RowMode::ConfirmDelete => {
                            view! {
                                <div class="confirm" role="group" aria-label=format!("Confirm deleting {name}")>
                                    <p>
                                        <strong>{format!("Delete {name}?")}</strong>
                                        " Its integrations will no longer create tickets for it. This cannot be undone."
                                    </p>
                                    <ActionForm action=delete attr:class="confirm__actions">
                                        <input type="hidden" name="id" value=id/>
                                        <button type="submit" class="button button--danger" disabled=move || delete.pending().get()>
                                            "Yes, delete"
                                        </button>
                                        <button type="button" class="button" on:click=move |_| mode.set(RowMode::View)>
                                            "Cancel"
                                        </button>
                                    </ActionForm>
                                    {error}
                                </div>
                            }
                                .into_any()
                        }
                        RowMode::View => view! { <span class="org-name">{name.clone()}</span> }.into_any(),
                    }
                }
            </td>
            <td>
                <IntegrationToggles organization=org.clone() all/>
            </td>
            <td class="table__actions">
                <Show when=move || mode.get() == RowMode::View>
                    {dev.then(|| {
                        view! {
                            <button
                                type="button"
                                class="button button--small button--dev"
                                title="Dev mode: import a sample compromise for this organization"
                                aria-label=format!("Simulate a compromise for {}", org.name)
                                disabled=move || simulate.pending().get()
                                on:click=move |_| {
                                    simulate.dispatch(SimulateCompromise { id });
                                }
                            >
                                "Simulate compromise"
                            </button>
                        }
                    })}
                    <button
                        type="button"
                        class="button button--small"
                        aria-label=format!("Rename {}", org.name)
                        on:click=move |_| mode.set(RowMode::Rename)
                    >
                        "Rename"
                    </button>
                    <button
                        type="button"
                        class="button button--small button--danger-outline"
                        aria-label=format!("Delete {}", org.name)
                        on:click=move |_| mode.set(RowMode::ConfirmDelete)
                    >
                        "Delete"
                    </button>
                </Show>
            </td>
        </tr>
        {move || simulated.get().map(|result| view! { <SimulationMessage result simulated/> })}
    }
}

/// The row under an organization after "Simulate compromise": what was queued and where to watch it arrive.
#[component]
fn SimulationMessage(
    result: Result<Simulation, AppError>,
    simulated: RwSignal<Option<Result<Simulation, AppError>>>,
) -> impl IntoView {
    let (class, body) = match result {
        Err(err) => ("notice notice--error simulation", view! { <span>{err.to_string()}</span> }.into_any()),
        Ok(Simulation { summary, .. }) if summary.deliveries_queued == 0 => (
            "notice notice--warning simulation",
            view! {
                <span>
                    <strong>"Compromise imported, but no ticket was queued. "</strong>
                    "No enabled integration is associated with this organization: enable one on the "
                    <a href="/integrations">"Integrations page"</a>
                    " and tick it for this organization."
                </span>
            }
            .into_any(),
        ),
        Ok(Simulation { summary, sandbox_url, autotask_sandbox_url }) => {
            let n = summary.deliveries_queued;
            let queued = if n == 1 { "1 ticket queued".to_owned() } else { format!("{n} tickets queued") };
            let it = if n == 1 { "it" } else { "them" };
            let watch = sandbox_url.map(|url| {
                view! {
                    " "
                    <a href=url target="_blank" rel="noopener noreferrer">
                        {format!("Watch {it} arrive in the ConnectWise sandbox")}
                    </a>
                }
            });
            let watch_autotask = autotask_sandbox_url.map(|url| {
                view! {
                    " · "
                    <a href=url target="_blank" rel="noopener noreferrer">"the Autotask sandbox"</a>
                }
            });
            (
                "notice notice--success simulation",
                view! {
                    <span>
                        <strong>{format!("Compromise imported: {queued}")}</strong>
                        " (one per enabled integration)."
                        {watch}
                        {watch_autotask}
                    </span>
                }
                .into_any(),
            )
        }
    };
    view! {
        <tr class="table__message-row">
            <td colspan="3">
                <div class=class role="status">
                    {body}
                    <button type="button" class="link-button simulation__dismiss" on:click=move |_| simulated.set(None)>
                        "Dismiss"
                    </button>
                </div>
            </td>
        </tr>
    }
}

/// One checkbox per integration; ticking or unticking saves at once, and a failure puts the box back.
#[component]
fn IntegrationToggles(organization: Organization, all: Vec<(i64, String)>) -> impl IntoView {
    if all.is_empty() {
        return view! { <span class="muted">"No integrations yet"</span> }.into_any();
    }
    let org_id = organization.id;
    let boxes = all
        .into_iter()
        .map(|(integration_id, name)| {
            let toggle = ServerAction::<crate::integrations::SetOrganizationIntegration>::new();
            let initially = organization.integration_ids.contains(&integration_id);
            let ticked = RwSignal::new(initially);
            let requested = RwSignal::new(ticked.get_untracked());
            Effect::new(move |_| {
                if let Some(Err(_)) = toggle.value().get() {
                    ticked.set(!requested.get_untracked());
                }
            });
            let error = move || match toggle.value().get() {
                Some(Err(err)) => {
                    Some(view! { <span class="form-error form-error--inline" role="alert">{err.to_string()}</span> })
                }
                _ => None,
            };
            view! {
                <label class="checkbox">
                    <input
                        type="checkbox"
                        checked=initially
                        prop:checked=move || ticked.get()
                        on:change=move |ev| {
                            let associated = event_target_checked(&ev);
                            ticked.set(associated);
                            requested.set(associated);
                            toggle.dispatch(crate::integrations::SetOrganizationIntegration {
                                organization_id: org_id,
                                integration_id,
                                associated,
                            });
                        }
                    />
                    {name}
                </label>
                {error}
            }
        })
        .collect_view();
    view! {
        <div class="checkbox-group checkbox-group--compact" role="group" aria-label=format!("Integrations of {}", organization.name)>
            {boxes}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Acme Corp  ").as_deref(), Ok("Acme Corp"));
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"é".repeat(255)).is_ok(), "255 characters, even multi-byte, are allowed");
        assert!(validate_name(&"é".repeat(256)).is_err());
        assert!(validate_name("Acme\nCorp").is_err());
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(name_key(" ACME Corp "), name_key("acme corp"));
        assert_eq!(name_key("Ärzte GmbH"), name_key("ärzte gmbh"));
    }
}
