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
            Ok(store::add(&crate::state::db(), partner.id, &name, chosen).await?)
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
            Ok(store::rename(&crate::state::db(), partner.id, id, &name).await?)
        }
        .await,
    )
}

#[server(endpoint = "organizations/delete")]
pub async fn delete_organization(id: i64) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            Ok(store::delete(&crate::state::db(), partner.id, id).await?)
        }
        .await,
    )
}

/// The Organizations page: list (sorted, counted), add, rename, delete with confirmation.
#[component]
pub fn OrganizationsPage() -> impl IntoView {
    let add = ServerAction::<AddOrganization>::new();
    // Bumped by a row after a rename or delete, so the list reloads.
    let changed = RwSignal::new(0u32);
    let organizations = Resource::new(move || (add.version().get(), changed.get()), |_| list_organizations());
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
                    "Your Dark Web ID client organizations. Their names must match the ConnectWise company names exactly."
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
                    organizations.await.map(|list| view! { <OrganizationTable list all changed/> })
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
fn OrganizationTable(list: Vec<Organization>, all: Vec<(i64, String)>, changed: RwSignal<u32>) -> impl IntoView {
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
                        <OrganizationRow org all=all.clone() changed/>
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
fn OrganizationRow(org: Organization, all: Vec<(i64, String)>, changed: RwSignal<u32>) -> impl IntoView {
    let mode = RwSignal::new(RowMode::View);
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
