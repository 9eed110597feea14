//! Steps 1–4: ticketing system, name, ConnectWise information, organizations and companies.

use leptos::prelude::*;

use super::{StepNav, StepTitle, Wizard};
use crate::connectwise_site::{SiteMode, validate_company_id, validate_site};
use crate::integrations::wizard_api::{MatchCompanies, TestConnection};
use crate::integrations::{AuthKind, BudgetWindow, RequestBudgetInput, name_key, validate_name};
use crate::organizations::RenameOrganization;

/// Systems shown as coming later; not selectable.
const COMING_SOON: &[&str] = &["Autotask", "Kaseya BMS", "HaloPSA", "Jira Service Management", "ServiceNow"];

#[component]
pub fn SystemStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let chosen = move || wizard.draft.with(|d| d.system_chosen);
    let next =
        Callback::new(move |()| if chosen() { Ok(()) } else { Err("Choose ConnectWise to continue.".to_string()) });
    view! {
        <StepTitle number=1>"Select your ticketing system"</StepTitle>
        <fieldset class="system-choices">
            <legend class="visually-hidden">"Ticketing system"</legend>
            <label class="system-card">
                <input
                    type="radio"
                    name="system"
                    value="connectwise"
                    prop:checked=chosen
                    on:change=move |_| wizard.draft.update(|d| d.system_chosen = true)
                />
                <span class="system-card__name">"ConnectWise"</span>
                <span class="system-card__note">"ConnectWise Manage (ConnectWise PSA) service tickets"</span>
            </label>
            {COMING_SOON
                .iter()
                .map(|name| {
                    view! {
                        <label class="system-card system-card--disabled">
                            <input type="radio" name="system" value=*name disabled/>
                            <span class="system-card__name">{*name}</span>
                            <span class="badge">"Coming soon"</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
        <StepNav number=1 next/>
    }
}

#[component]
pub fn NameStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    // The partner's other integrations, to say at once when a name is taken (the server checks again on save).
    let taken = LocalResource::new(crate::integrations::list_integrations);
    let next = Callback::new(move |()| {
        let name = validate_name(&wizard.draft.with(|d| d.input.name.clone()))?;
        let own = wizard.id.get_untracked();
        let clash = taken
            .get()
            .and_then(|list| list.ok())
            .is_some_and(|list| list.iter().any(|i| Some(i.id) != own && name_key(&i.name) == name_key(&name)));
        if clash {
            return Err(format!("An integration named \"{name}\" already exists. Choose another name."));
        }
        wizard.draft.update(|d| d.input.name = name);
        Ok(())
    });
    view! {
        <StepTitle number=2>"Integration name"</StepTitle>
        <p class="muted">
            "A name you will recognise in the Integrations table, e.g. the ConnectWise site it sends to. "
            "You can add several ConnectWise integrations, one per site for instance."
        </p>
        <div class="field field--narrow">
            <label for="integration-name">"Integration name"</label>
            <input
                id="integration-name"
                type="text"
                maxlength=crate::integrations::NAME_MAX_CHARS
                autocomplete="off"
                prop:value=move || wizard.draft.with(|d| d.input.name.clone())
                on:input=move |ev| wizard.draft.update(|d| d.input.name = event_target_value(&ev))
            />
        </div>
        <StepNav number=2 next/>
    }
}

/// The site checks the browser can make; the server checks again, with the production rules when they apply.
fn check_connection_fields(wizard: &Wizard) -> Result<(), String> {
    let (input, credentials_set) = wizard.draft.with(|d| (d.input.clone(), d.credentials_set));
    validate_site(&input.site, SiteMode::Dev).map_err(|e| e.to_string())?;
    validate_company_id(&input.company_id).map_err(|e| e.to_string())?;
    if let Some(budget) = &input.request_budget {
        budget.validate()?;
    }
    let missing = match input.auth_kind {
        AuthKind::ApiKeys => input.public_key.trim().is_empty() || input.private_key.trim().is_empty(),
        AuthKind::Integrator => input.username.trim().is_empty() || input.password.is_empty(),
    };
    if missing && !credentials_set {
        return Err(match input.auth_kind {
            AuthKind::ApiKeys => "Enter the API member's public and private key.".into(),
            AuthKind::Integrator => "Enter the integrator username and password.".into(),
        });
    }
    Ok(())
}

/// A text input bound to one field of the draft.
#[component]
fn DraftInput(
    id: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] placeholder: Option<Signal<String>>,
    get: fn(&crate::integrations::IntegrationInput) -> String,
    set: fn(&mut crate::integrations::IntegrationInput, String),
) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type=kind
                autocomplete="off"
                spellcheck="false"
                placeholder=move || placeholder.map(|p| p.get())
                prop:value=move || wizard.draft.with(|d| get(&d.input))
                on:input=move |ev| wizard.draft.update(|d| set(&mut d.input, event_target_value(&ev)))
            />
        </div>
    }
}

#[component]
pub fn ConnectionStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let test = ServerAction::<TestConnection>::new();
    let auth = move || wizard.draft.with(|d| d.input.auth_kind);
    let stored = Signal::derive(move || {
        if wizard.draft.with(|d| d.credentials_set) { "Stored: leave blank to keep".to_string() } else { String::new() }
    });
    let result = move || {
        test.value().get().map(|outcome| match outcome {
            Ok(message) => view! { <p class="notice notice--success" role="status">{message}</p> }.into_any(),
            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
        })
    };
    let check_error = RwSignal::new(None::<String>);
    let run_test = move |_| match check_connection_fields(&wizard) {
        Ok(()) => {
            check_error.set(None);
            test.dispatch(TestConnection { id: wizard.id.get_untracked(), input: wizard.input() });
        }
        Err(message) => check_error.set(Some(message)),
    };
    let next = Callback::new(move |()| check_connection_fields(&wizard));
    view! {
        <StepTitle number=3>"ConnectWise information"</StepTitle>
        <div class="wizard__columns">
            <div class="form">
                <DraftInput
                    id="cw-site"
                    label="Site"
                    get=|i| i.site.clone()
                    set=|i, v| i.site = v
                    placeholder=Signal::derive(|| "na.myconnectwise.net".to_string())
                />
                <DraftInput id="cw-company" label="Company ID" get=|i| i.company_id.clone() set=|i, v| i.company_id = v/>
                <fieldset class="radio-group">
                    <legend>"Authentication"</legend>
                    <label class="radio">
                        <input
                            type="radio"
                            name="auth"
                            prop:checked=move || auth() == AuthKind::ApiKeys
                            on:change=move |_| wizard.draft.update(|d| d.input.auth_kind = AuthKind::ApiKeys)
                        />
                        "API member keys"
                    </label>
                    <label class="radio">
                        <input
                            type="radio"
                            name="auth"
                            prop:checked=move || auth() == AuthKind::Integrator
                            on:change=move |_| wizard.draft.update(|d| d.input.auth_kind = AuthKind::Integrator)
                        />
                        "Username and password"
                    </label>
                </fieldset>
                {move || match auth() {
                    AuthKind::ApiKeys => view! {
                        <DraftInput id="cw-public-key" label="Public Key" get=|i| i.public_key.clone() set=|i, v| i.public_key = v placeholder=stored/>
                        <DraftInput id="cw-private-key" label="Private Key" kind="password" get=|i| i.private_key.clone() set=|i, v| i.private_key = v placeholder=stored/>
                    }
                        .into_any(),
                    AuthKind::Integrator => view! {
                        <DraftInput id="cw-username" label="Username" get=|i| i.username.clone() set=|i, v| i.username = v placeholder=stored/>
                        <DraftInput id="cw-password" label="Password" kind="password" get=|i| i.password.clone() set=|i, v| i.password = v placeholder=stored/>
                    }
                        .into_any(),
                }}
                <div>
                    <button type="button" class="button" on:click=run_test disabled=move || test.pending().get()>
                        {move || if test.pending().get() { "Testing…" } else { "Test connection" }}
                    </button>
                </div>
                {move || check_error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
                {result}
                <RequestBudgetSetting/>
            </div>
            <aside class="advice" aria-label="Advice">
                <h3>"Create an API member"</h3>
                <p>
                    "In ConnectWise Manage, go to System › Members › API Members and add a member for Dark Web ID, "
                    "then generate its API keys. Give its security role:"
                </p>
                <ul>
                    <li>"Company Maintenance: Inquire All"</li>
                    <li>"Service Tickets: Inquire and Add All"</li>
                    <li>"Table Setup: Inquire All"</li>
                </ul>
                <p class="muted">
                    "The Site is the address you sign in to (e.g. na.myconnectwise.net); the Company ID is the company "
                    "you enter on the ConnectWise sign-in page. Keys are encrypted when saved and never shown again."
                </p>
            </aside>
        </div>
        <StepNav number=3 next/>
    }
}

/// The ConnectWise default, as the wizard names it (the server's `ticketing::default_budget`).
const DEFAULT_BUDGET: RequestBudgetInput = RequestBudgetInput { requests: 1_000, window: BudgetWindow::Minute };

/// "Advanced settings": the PSA account's request budget, the default or the partner's own.
#[component]
fn RequestBudgetSetting() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let budget = move || wizard.draft.with(|d| d.input.request_budget);
    let set = move |budget: Option<RequestBudgetInput>| wizard.draft.update(|d| d.input.request_budget = budget);
    let error = move || budget().and_then(|b| b.validate().err());
    let custom = move || {
        budget().map(|b| {
            view! {
                <div class="budget">
                    <input
                        id="budget-requests"
                        type="number"
                        min="1"
                        max=crate::integrations::MAX_BUDGET_REQUESTS
                        inputmode="numeric"
                        aria-label="Requests"
                        prop:value=b.requests.to_string()
                        on:input=move |ev| {
                            let requests = event_target_value(&ev).trim().parse().unwrap_or(0);
                            set(Some(RequestBudgetInput { requests, ..b }));
                        }
                    />
                    <label for="budget-window">"requests per"</label>
                    <select
                        id="budget-window"
                        on:change=move |ev| {
                            let window =
                                if event_target_value(&ev) == "hour" { BudgetWindow::Hour } else { BudgetWindow::Minute };
                            set(budget().map(|b| RequestBudgetInput { window, ..b }));
                        }
                    >
                        <option value="minute" selected=b.window == BudgetWindow::Minute>"minute"</option>
                        <option value="hour" selected=b.window == BudgetWindow::Hour>"hour"</option>
                    </select>
                </div>
            }
        })
    };
    view! {
        <details class="advanced" open=move || budget().is_some()>
            <summary>"Advanced settings"</summary>
            <fieldset class="radio-group">
                <legend>"Request budget"</legend>
                <p class="muted">
                    "Every request Dark Web ID sends to this ConnectWise account, from all of its servers together, "
                    "counts against this budget. When it is used up, tickets wait until it refills, so your other "
                    "integrations keep their share of ConnectWise's limits."
                </p>
                <label class="radio">
                    <input
                        type="radio"
                        name="budget"
                        prop:checked=move || budget().is_none()
                        on:change=move |_| set(None)
                    />
                    "Default: 1,000 requests per minute"
                </label>
                <label class="radio">
                    <input
                        type="radio"
                        name="budget"
                        prop:checked=move || budget().is_some()
                        on:change=move |_| set(Some(DEFAULT_BUDGET))
                    />
                    "Custom"
                </label>
                {custom}
                {move || error().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            </fieldset>
        </details>
    }
}

#[component]
pub fn OrganizationsStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let rename = ServerAction::<RenameOrganization>::new();
    let matching = ServerAction::<MatchCompanies>::new();
    let refresh = move || matching.dispatch(MatchCompanies { id: wizard.id.get_untracked(), input: wizard.input() });
    // Look up on arrival (after hydration) and after each rename.
    Effect::new(move |_| {
        rename.version().get();
        refresh();
    });
    let rows = move || {
        matching.value().get().map(|result| match result {
            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
            Ok(list) => {
                let unmatched = list.iter().filter(|m| m.company.is_none()).count();
                view! {
                    <p class=if unmatched == 0 { "notice notice--success" } else { "notice notice--warning" } role="status">
                        {if unmatched == 0 {
                            "Every organization matches a ConnectWise company.".to_string()
                        } else {
                            let (noun, verb, owner) =
                                if unmatched == 1 { ("organization", "matches", "its") } else { ("organizations", "match", "their") };
                            format!(
                                "{unmatched} {noun} {verb} no ConnectWise company exactly: {owner} compromises cannot become tickets until the names match."
                            )
                        }}
                    </p>
                    <table class="table table--matches">
                        <thead>
                            <tr>
                                <th scope="col">"Organization"</th>
                                <th scope="col">"ConnectWise company"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list
                                .into_iter()
                                .map(|m| {
                                    let org = m.organization_name.clone();
                                    let company = match m.company {
                                        Some(company) => view! {
                                            <span class="match match--ok">"✓ " {company}</span>
                                        }
                                            .into_any(),
                                        None => view! {
                                            <div class="match match--missing">
                                                <span>"No company with exactly this name"</span>
                                                {m.suggestions
                                                    .into_iter()
                                                    .map(|suggestion| {
                                                        let id = m.organization_id;
                                                        let name = suggestion.clone();
                                                        view! {
                                                            <div class="match__suggestion">
                                                                "Did you mean “" {suggestion.clone()} "”? "
                                                                <button
                                                                    type="button"
                                                                    class="button button--small"
                                                                    aria-label=format!("Rename organization to match: {org} to {suggestion}")
                                                                    on:click=move |_| {
                                                                        rename.dispatch(RenameOrganization { id, name: name.clone() });
                                                                    }
                                                                >
                                                                    "Rename organization to match"
                                                                </button>
                                                            </div>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </div>
                                        }
                                            .into_any(),
                                    };
                                    view! {
                                        <tr>
                                            <td>{m.organization_name}</td>
                                            <td>{company}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }
        })
    };
    let rename_error = move || match rename.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    view! {
        <StepTitle number=4>"Organizations and ConnectWise companies"</StepTitle>
        <p class="muted">
            "A ticket is created in the ConnectWise company whose name is exactly the organization's name. "
            "Check every organization has one."
        </p>
        <Show when=move || matching.pending().get()>
            <p class="muted" role="status">"Looking up your ConnectWise companies…"</p>
        </Show>
        {rename_error}
        {rows}
        <StepNav number=4/>
    }
}
